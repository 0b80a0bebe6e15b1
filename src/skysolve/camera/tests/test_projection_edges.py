"""Edges of the lens projections' domains: no direction gets a wrong pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.camera import projection as proj


@pytest.mark.parametrize("name", proj.PROJECTIONS)
def test_straight_behind_the_lens_has_no_single_plane_point(name):
    code = proj.code_of(name)
    px, py = proj.vectors_to_plane(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 2.0]]), code)
    # the antipode of the axis is no point (a fisheye images it as its whole edge circle)
    assert np.isnan(px[0]) and np.isnan(py[0])
    assert px[1] == 0.0 and py[1] == 0.0  # the axis itself is the centre
    if name in ("equidistant", "equisolid"):  # just off the antipode: the edge circle
        t = np.pi - 1e-9
        px, py = proj.vectors_to_plane(np.array([np.sin(t), 0.0, np.cos(t)]), code)
        assert px == pytest.approx(float(proj.radius_of_angle(t, code))) and py == 0.0


@pytest.mark.parametrize("code, widest_deg", [(1, 360.0), (2, 360.0), (4, 180.0)])
def test_fov_of_a_width_beyond_the_projections_image_is_its_whole_field(code, widest_deg):
    # equidistant images radii up to f pi, equisolid 2 f, orthographic f: a width of
    # 8 f reaches beyond each, and sees twice the projection's largest angle
    assert math.degrees(proj.fov_from_focal(100.0, 800.0, code)) == pytest.approx(widest_deg)
    # and at exactly the image's edge, the same
    edge = {1: math.pi, 2: 2.0, 4: 1.0}[code]
    assert math.degrees(proj.fov_from_focal(100.0, 200.0 * edge, code)) == pytest.approx(
        widest_deg)
