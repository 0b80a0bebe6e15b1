"""Frames whose stars are all smeared into trails: the trail's matched filter
(:mod:`skysolve.extraction.smear`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.extraction import extract_centroids
from skysolve.extraction.smear import Smear, convolve, frame_smear, smear_kernel
from skysolve.geometry import angle_between, radec_to_vector
from skysolve.io.images import read_image
from skysolve.simulate import degrade as dg
from skysolve.tests.realframes import ALT40, ALT60, DATA, FOV_DEG, REFERENCE


def _trails(lengths, angles_deg, width=1.0, peak_snr=20.0):
    """Measurements of blobs shaped like trails (brightest first): second moments of a
    line of each length along each angle, widened by a PSF of sigma ``width``, less
    the pixel's own extent (as :func:`.blobs._measure_blobs` gives them)."""
    lengths = np.asarray(lengths, dtype=float)
    a = np.radians(np.asarray(angles_deg, dtype=float))
    major, minor = lengths ** 2 / 12.0 + width ** 2, np.full(len(a), width ** 2)
    n = len(a)
    return {"cxx": major * np.cos(a) ** 2 + minor * np.sin(a) ** 2 - 1.0 / 12.0,
            "cyy": major * np.sin(a) ** 2 + minor * np.cos(a) ** 2 - 1.0 / 12.0,
            "cxy": (major - minor) * np.cos(a) * np.sin(a),
            "peak": np.full(n, peak_snr), "sigma": np.ones(n), "npix": np.full(n, 40),
            "flux": np.linspace(1000.0, 100.0, n)}


def test_frame_smear_reads_the_trails_length_and_direction():
    """Six trails along 30 deg (+-2), the three brightest 30, 28 and 20 px long (a
    fainter trail's ends sink below the threshold: it measures shorter): 30 px along
    30 deg, 1 px across."""
    meas = _trails([30, 28, 20, 12, 10, 8], [30, 32, 28, 31, 29, 30])
    smear = frame_smear(meas, np.arange(6))
    assert smear.length == pytest.approx(30.0, rel=1e-6)
    assert math.degrees(smear.angle) == pytest.approx(30.0, abs=0.5)
    assert smear.width == pytest.approx(1.0, rel=1e-6)
    assert smear.lengths() == (smear.length,)
    # (the brightest by flux, whatever the order given)
    again = frame_smear(meas, np.arange(6)[::-1])
    assert (again.lengths(), again.angle, again.width) == (smear.lengths(), smear.angle,
                                                          smear.width)


def test_a_satellite_among_the_trails_does_not_set_the_smear_alone():
    """The brightest blob a satellite's trail, 150 px at 24 deg, among the stars' trails
    of 30 px at 30 deg: the direction is the stars' (the median's), and their length is
    tried as well as the satellite's."""
    meas = _trails([150, 30, 28, 25, 22, 20], [24, 30, 30, 31, 29, 30])
    smear = frame_smear(meas, np.arange(6))
    assert math.degrees(smear.angle) == pytest.approx(30.0, abs=0.6)
    assert smear.lengths() == pytest.approx((150.0, 30.0), rel=1e-6)


@pytest.mark.parametrize("case", ["random directions", "round", "short", "two", "faint"])
def test_no_smear_is_read_where_the_blobs_show_none(case):
    meas = {"random directions": _trails([30] * 6, [0, 30, 60, 90, 120, 150]),
            "round": _trails([1.5] * 6, [30] * 6),
            # (sharp stars, sigma 0.5 px: 7 px trails are 4 times as long as wide)
            "short": _trails([7] * 6, [30] * 6, width=0.5),
            "two": _trails([30] * 2, [30] * 2),
            "faint": _trails([30] * 6, [30] * 6, peak_snr=4.0)}[case]
    assert frame_smear(meas, np.arange(len(meas["peak"]))) is None


def test_the_kernel_is_a_trail():
    """Sum 1, centred, its second moments those of a 30 px line widened by sigma 1
    (30^2 / 12 + 1 along, 1 across); symmetric, so that convolving is correlating."""
    k = smear_kernel(Smear(30.0, math.radians(30.0), 1.0))
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert k.sum() == pytest.approx(1.0)
    y, x = np.mgrid[:k.shape[0], :k.shape[1]]
    x = x - k.shape[1] // 2
    y = y - k.shape[0] // 2
    assert abs((k * x).sum()) < 1e-9 and abs((k * y).sum()) < 1e-9
    c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
    along, across = x * c + y * s, -x * s + y * c
    assert (k * along ** 2).sum() == pytest.approx(30.0 ** 2 / 12.0 + 1.0, rel=0.03)
    assert (k * across ** 2).sum() == pytest.approx(1.0, rel=0.05)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-12)
    # no length: the PSF alone, a round Gaussian
    point = smear_kernel(Smear(30.0, 0.5, 1.2), 0.0)
    assert point.sum() == pytest.approx(1.0) and np.isfinite(point).all()
    np.testing.assert_allclose(point, point.T, atol=1e-12)


def test_convolve_draws_a_point_as_the_kernel_with_the_noise_even_up_to_the_edges():
    """About a sloping sky: a point inside comes out as the kernel on the sky; white
    noise comes out with the kernel's root sum of squares everywhere, the edges
    included (replicated edges had put 3 times as much there, for a 32 px trail)."""
    k = smear_kernel(Smear(12.0, math.radians(-40.0), 0.8))
    sky = 100.0 + np.linspace(0.0, 30.0, 70)[None, :] + np.zeros((60, 1))
    point = sky.copy()
    point[30, 35] += 1000.0
    out = convolve(point, k, sky) - sky
    hy, hx = k.shape[0] // 2, k.shape[1] // 2
    np.testing.assert_allclose(out[30 - hy:31 + hy, 35 - hx:36 + hx], 1000.0 * k, atol=2e-3)
    big = smear_kernel(Smear(32.0, 0.0, 1.0))
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (400, 120, 120))
    filtered = np.array([convolve(n, big, np.zeros((120, 120))) for n in noise[:40]])
    rss = math.sqrt(float(np.sum(big ** 2)))
    by_column = filtered.std(axis=(0, 1)) / rss  # 4,800 samples a column: +-1 %
    assert by_column[0] == pytest.approx(1.0, abs=0.05)
    assert by_column[10] == pytest.approx(1.0, abs=0.05)
    assert by_column[60] == pytest.approx(1.0, abs=0.05)


def _near(res, stars, radius=2.0):
    xy = res.as_array()
    return np.hypot(xy[:, None, 0] - stars[:, 0], xy[:, None, 1] - stars[:, 1]).min(axis=1) < radius


@pytest.mark.parametrize("name, strength, seed, before", [(ALT40, 4.0, 1, 3), (ALT40, 5.0, 2, 0),
                                                          (ALT60, 5.0, 0, 0)])
def test_real_frames_smeared_over_32_to_40_px_keep_their_stars_and_solve(small_db, name,
                                                                       strength, seed,
                                                                       before):
    """The real frames smeared over 8 x ``strength`` px in a random direction: their
    trails broke into pieces, of which ``before`` lay within 2 px of the frame's
    stars (3-sigma stars of the unsmeared frame), and no solve. With the trail's
    matched filter: 12, 6 and 16 such stars, at most 3 centroids more than 8 px from
    any (hot pixels; none of the edges' noise, which a filter over replicated edges
    amplified there: 7 such on the first), and solves within 60"."""
    image = read_image(DATA / name)
    stars = extract_centroids(image, sigma_threshold=3.0).as_array()
    res = extract_centroids(dg.smear(image, strength, seed=seed))
    assert _near(res, stars).sum() >= max(4, 3 * before)
    assert (~_near(res, stars, 8.0)).sum() <= 3
    sol = small_db.solve_from_centroids(res, fov_estimate_deg=FOV_DEG)
    assert sol, sol.status
    miss = angle_between(radec_to_vector(sol.ra_deg, sol.dec_deg),
                         radec_to_vector(*REFERENCE[name]))
    assert np.degrees(miss) * 3600 < 60.0
