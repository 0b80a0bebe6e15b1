"""astrometry.net's scale hints (:mod:`skysolve.io.scale_units`)."""

from __future__ import annotations

import math

import pytest
from astropy.io import fits

from skysolve.io.scale_units import guess_scale, scale_range


def test_a_scale_is_guessed_from_each_kind_of_header():
    """Each header states or implies 1.5"/px: a scale keyword, a WCS (a CD matrix rotated
    by 30 deg, or CDELT), or a 3.76 um pixel behind a 517.05 mm lens."""
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    d = 1.5 / 3600.0
    cases = [({"SECPIX": 1.5}, "SECPIX"), ({"PIXSCALE": "1.5"}, "PIXSCALE"),
             ({"CD1_1": -d * c, "CD1_2": d * s, "CD2_1": d * s, "CD2_2": d * c}, "CD1_1"),
             ({"CDELT1": -d, "CDELT2": d}, "CDELT1"),
             ({"FOCALLEN": 206.264806 * 3.76 / 1.5, "XPIXSZ": 3.76}, "FOCALLEN, XPIXSZ")]
    for cards, keys in cases:
        scale, source = guess_scale(fits.Header(cards))
        assert scale == pytest.approx(1.5, rel=1e-9) and source.startswith(keys), cards


def test_no_scale_is_guessed_from_a_header_without_one():
    for cards in ({}, {"SECPIX": 0.0}, {"PIXSCALE": "n/a", "FOCALLEN": 200.0},
                  {"CDELT1": 1e-4}, {"XPIXSZ": 3.76}, {"CD1_1": 1e-4, "CD2_2": 0.0}):
        assert guess_scale(fits.Header(cards)) is None, cards


def test_a_range_in_each_unit_and_one_value_widened():
    assert scale_range(10.0, 12.0, "degw") == {"fov_range_deg": (10.0, 12.0)}
    assert scale_range(600.0, 720.0, "AMW") == {"fov_range_deg": (10.0, 12.0)}
    assert scale_range(40.0, 40.0, "app") == {
        "pixel_scale_range_arcsec": pytest.approx((39.6, 40.4))}
    assert scale_range(None, None, None) == {}
    with pytest.raises(ValueError, match="furlongs"):
        scale_range(1.0, 2.0, "furlongs")
    with pytest.raises(ValueError, match="above"):
        scale_range(3.0, 2.0, "dw")


@pytest.mark.parametrize("projection, focal_mm, expected_deg", [
    # a 36 mm width wider than the whole image of the projection (r = 2 f for equisolid,
    # f pi for equidistant, f for orthographic) sees all it images: twice its largest
    # angle, as CameraModel.fov_deg says of such a frame
    ("equisolid", 8.0, 360.0),          # the classic circular 8 mm fisheye: 18 > 2 x 8
    ("equidistant", 5.0, 360.0),        # 18 > pi x 5
    ("orthographic", 15.0, 180.0),      # 18 > 15
])
def test_a_fisheye_focal_length_shorter_than_half_the_width_is_its_whole_field(
        projection, focal_mm, expected_deg):
    hint = scale_range(focal_mm, focal_mm, "focalmm", projection)
    lo, hi = hint["fov_range_deg"]
    assert lo == pytest.approx(expected_deg) and hi == pytest.approx(expected_deg)


def test_a_fisheye_focal_range_reaching_past_the_image_circle_is_capped():
    # 6-20 mm equisolid: 20 mm is 2 x 2 asin(18 / 40) = 106.97 deg, 6 mm all it images
    lo, hi = scale_range(6.0, 20.0, "focalmm", "equisolid")["fov_range_deg"]
    assert lo == pytest.approx(4.0 * math.degrees(math.asin(18.0 / 40.0)))
    assert hi == pytest.approx(360.0)
    lo, hi = scale_range(4.0, 30.0, "focalmm", "equidistant")["fov_range_deg"]
    assert lo == pytest.approx(math.degrees(36.0 / 30.0)) and hi == pytest.approx(360.0)


def test_an_8mm_circular_fisheye_solves_with_its_focal_length_hint(wide_db):
    """An 8 mm equisolid circular fisheye on a 36 mm wide sensor of 1500 x 1000 px (f =
    333 px): its focalmm hint was (nan, nan) and the solve refused it; it solves."""
    from skysolve.camera import CameraModel
    from skysolve.simulate import random_attitudes, simulate_centroids
    from skysolve.sky.catalogs import load_hipparcos

    w, h = 1500, 1000
    f = 8.0 / (36.0 / w)
    cam = CameraModel(f, w, h, projection="equisolid")
    sim = simulate_centroids(load_hipparcos(), cam, random_attitudes(1, rng=0)[0],
                             num_stars=80, seed=0, image_circle_deg=90.0, epoch_year=2025.0)
    hint = scale_range(8.0, 8.0, "focalmm", "equisolid")
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection="equisolid", **hint)
    assert res, res
    assert res.camera_model.focal_length_px == pytest.approx(f, rel=1e-3)
