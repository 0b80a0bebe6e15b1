"""An all-sky camera: a circular fisheye inscribed in a 4:3 frame, solved with no scale.

Its horizontal field of view across the frame (dark corners included) is far
beyond 180 deg, while its stars span no more than the database's largest field.
"""

from __future__ import annotations

import math

import pytest

from skysolve import CameraModel, load_hipparcos
from skysolve.camera import projection as _proj
from skysolve.simulate import random_attitudes, simulate_centroids


@pytest.mark.parametrize("projection", ["equidistant", "equisolid", "stereographic"])
def test_circular_fisheye_solves_without_a_scale(wide_db, projection):
    w, h = 1600, 1200
    # a 185 deg image circle filling the frame's height
    f = 0.5 * h / _proj.scalar_radius_of_angle(math.radians(92.5), _proj.code_of(projection))
    cam = CameraModel(f, w, h, projection=projection)
    assert cam.fov_deg > 210.0
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=80, centroid_noise_px=0.2,
                             seed=0, image_circle_deg=92.5, horizon_deg=5)
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection=projection)
    assert res, res
    assert math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2]))) < 0.05
    assert res.camera_model.focal_length_px == pytest.approx(f, rel=1e-3)


def test_circular_fisheye_scale_hint_is_not_refused(wide_db):
    w, h = 1600, 1200
    f = 0.5 * h / _proj.scalar_radius_of_angle(math.radians(92.5), _proj.EQUISOLID)
    cam = CameraModel(f, w, h, projection="equisolid")  # 297.6 deg across the frame
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=80, centroid_noise_px=0.2,
                             seed=0, image_circle_deg=92.5, horizon_deg=5)
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection="equisolid", fov_estimate_deg=297.0,
                                       fov_max_error_deg=5.0)
    assert res, res
