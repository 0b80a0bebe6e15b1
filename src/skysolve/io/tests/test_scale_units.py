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
