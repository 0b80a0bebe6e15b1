"""Saturated blobs merged from several stars are listed after the single stars.

An 8-bit stretch clips a wide lens's bright stars and the knots of its Milky Way
(unresolved faint stars, or two stars a few pixels apart) alike; a knot's broad
light then outshines the single stars' clipped cores, and its position is none of
its stars'. Known answers: the positions the stars were drawn at, and the attitude
an all-sky frame was rendered at.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import skysolve
from skysolve import CameraModel, SolverDatabase, extract_centroids
from skysolve.camera import projection as _proj
from skysolve.extraction import filters
from skysolve.geometry import radec_roll_to_rotation
from skysolve.simulate import degrade as dg
from skysolve.simulate import render_starfield


def _gauss(img: np.ndarray, x: float, y: float, amp: float, sigma: float = 1.2) -> None:
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    img += amp * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)


def _clipped_field(seed: int, jpeg: bool):
    """A 512 x 512 frame of 30 single saturated stars, 8 saturated pairs 4.5 px apart at
    30-60 deg to the grid (each pair twice a single star's light) and one star bleeding
    along its column; clipped at 60,000 (or stretched to 8 bits and JPEG'd). Returns
    the image and the single stars' and the pairs' array positions."""
    rng = np.random.default_rng(seed)
    img = rng.normal(1000.0, 10.0, (512, 512))
    # (at random, 30 px apart at least: stars on a regular grid are lines of like dots,
    # which the trail test drops)
    spots = np.empty((0, 2))
    while len(spots) < 39:
        p = rng.uniform(30.0, 482.0, 2)
        if not len(spots) or np.hypot(*(spots - p).T).min() > 30.0:
            spots = np.vstack([spots, p])
    singles = spots[:30]
    for x, y in singles:
        _gauss(img, x, y, 2e5)
    pairs = spots[30:38]
    for (x, y), ang in zip(pairs, rng.uniform(30.0, 60.0, 8) * rng.choice([-1, 1], 8),
                           strict=True):
        dx, dy = 2.25 * math.cos(math.radians(ang)), 2.25 * math.sin(math.radians(ang))
        _gauss(img, x - dx, y - dy, 2e5)
        _gauss(img, x + dx, y + dy, 2e5)
    # a star bleeding charge up and down its column: long along the grid, kept in place
    bx, by = spots[38]
    _gauss(img, bx, by, 2e5)
    img[int(by) - 6:int(by) + 7, int(bx)] = 6e4
    img = np.minimum(img, 6e4)
    if jpeg:
        img = dg.jpeg(img, 1.0, seed=seed)
    return img, singles, pairs


def _nearest(xy: np.ndarray, points: np.ndarray, shape) -> np.ndarray:
    """Distance (px) of each centred ``xy`` to the nearest array-pixel ``points``."""
    h, w = shape
    p = points - 0.5 * np.array([w, h])
    return np.min(np.hypot(xy[:, None, 0] - p[None, :, 0], xy[:, None, 1] - p[None, :, 1]),
                  axis=1)


@pytest.mark.parametrize("jpeg", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_merged_saturated_stars_follow_the_single_ones(seed, jpeg):
    # (before: the 8 pairs, twice a single star's light, led the list)
    img, singles, pairs = _clipped_field(seed, jpeg)
    found = extract_centroids(img)
    xy = found.as_array()[:, :2]
    near_single = _nearest(xy, singles, img.shape) < 1.0
    near_pair = _nearest(xy, pairs, img.shape) < 1.5
    # every single star is found, and the first 30 (with the bleeding star: 31) are them
    assert np.count_nonzero(near_single) == 30
    assert np.count_nonzero(near_single[:31]) == 30
    # the pairs are kept, after them, flagged doubtful
    flags = np.asarray(found.flags)
    assert np.count_nonzero(near_pair) == 8
    assert np.flatnonzero(near_pair).min() >= 31
    assert (flags[near_pair] == "doubtful").all()
    assert found.saturated[near_pair].all()
    # the star bleeding along its column is a saturated star, not doubtful
    assert np.count_nonzero(flags == "doubtful") == 8
    # without demote_doubtful: brightest first, the pairs ahead
    plain = extract_centroids(img, demote_doubtful=False).as_array()[:, :2]
    assert (_nearest(plain[:8], pairs, img.shape) < 1.5).all()


def test_a_lone_saturated_star_is_not_doubtful():
    # round flat tops and stars bleeding along a column or a row keep their places
    m = {"saturated": np.array([True, True, True, False]),
         "elong": np.array([1.1, 3.0, 3.0, 3.0]),
         # round; long along the column; long at 45 deg; unsaturated and long
         "cxx": np.array([2.0, 1.0, 2.0, 2.0]), "cyy": np.array([2.0, 9.0, 2.0, 2.0]),
         "cxy": np.array([0.0, 0.0, 1.6, 1.6])}
    out = filters.merged_saturated(m, np.arange(4))
    assert out.tolist() == [False, False, True, False]
    assert filters.merged_saturated(m, np.arange(0)).shape == (0,)


@pytest.fixture(scope="module")
def allsky_db():
    """An all-sky Gaia database (140-180 deg), in a fraction of a second."""
    return SolverDatabase.generate_from_gaia(max_fov_deg=180.0, min_fov_deg=140.0,
                                             progress=False)


@pytest.mark.parametrize("seed, recipe", [(10, "jpeg"), (6, ["light_dome", "jpeg"])])
def test_an_all_sky_jpeg_stretched_hard_solves(allsky_db, seed, recipe):
    # A 180 deg equisolid lens's circle (504 px) in a 1024 x 1024 frame of Gaia stars,
    # stretched hard to 8 bits (white point 63 sigmas above the sky, gamma 0.5) and
    # JPEG'd at quality 40: its bright stars and its Milky Way's knots all clip, and
    # the knots' broad light led the list (11-15 of the brightest 24 detections).
    # (before: no match on both)
    f = 504.0 / _proj.scalar_radius_of_angle(math.radians(90.0), _proj.code_of("equisolid"))
    cam = CameraModel(f, 1024, 1024, projection="equisolid")
    R = radec_roll_to_rotation(30.0 * seed, -60.0 + 11.0 * seed, 20.0 * seed)
    img, _ = render_starfield(skysolve.load_gaia(), cam, R, image_circle_deg=90.0,
                              horizon_deg=5.0, psf=1.2, background_e=300.0, read_noise_e=8.0,
                              bias_adu=100.0, zeropoint_mag=15.0, vignetting=0.5,
                              full_well_e=60000.0, adc_bits=16, faint_star_depth_mag=1.0,
                              seed=seed)
    frame = dg.degrade(img, recipe, "strong", seed=seed)
    res = skysolve.solve_image(frame, database=allsky_db, projection="equisolid")
    assert res, res
    err = math.degrees(math.acos(min(1.0, float(res.rotation_matrix_icrs_to_camera[2] @ R[2]))))
    assert err < 0.05  # (a pixel is ~0.2 deg)
