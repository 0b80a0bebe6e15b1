"""Frames whose stars are all wide defocused rings: the disc's matched filter
(:mod:`skysolve.extraction.rings`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve

from skysolve.extraction import extract_centroids
from skysolve.extraction.rings import disc_kernel, ring_footprints, ring_radius
from skysolve.geometry import angle_between
from skysolve.simulate import degrade as dg
from skysolve.tests.fields import camera_field


@pytest.mark.parametrize("radius", [3.0, 7.5, 16.0])
def test_the_disc_kernel_covers_the_disc(radius):
    """Sum 1, odd-sized and centred, its area that of the disc, and flat inside it."""
    k = disc_kernel(radius)
    assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1.0)
    assert np.allclose(k, k[::-1, ::-1]) and np.allclose(k, k.T)
    inner = k[k.shape[0] // 2, k.shape[0] // 2]
    assert np.count_nonzero(k) * inner > 0.95 and 1.0 / inner == pytest.approx(
        math.pi * radius ** 2, rel=0.02)


@pytest.mark.parametrize("outer", [8.0, 11.0, 16.0])
def test_ring_radius_reads_an_annulus_back(outer):
    """The second moment of an annulus of outer radius R and inner R/2 (measured on
    the area-sampled ring the simulation draws) gives R back; the brightest pixel's
    distance alone gives it too, and the larger of the two is taken."""
    k = dg.annulus_kernel(outer)
    half = k.shape[0] // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    width2 = float((k * x ** 2).sum())
    assert ring_radius(width2) == pytest.approx(outer, rel=0.03)
    assert ring_radius(0.0, 0.75 * outer) == pytest.approx(outer)
    assert ring_radius(width2, 0.5 * outer) == pytest.approx(outer, rel=0.03)


def test_ring_footprints_take_the_disc_about_each_peak():
    """Two blobs of a filtered image, small at their peaks: each grows to the pixels
    within the radius of its own peak, the nearer peak's where the discs overlap, and
    the unusable pixels left out."""
    h, w = 60, 80
    det = np.zeros((h, w), np.float32)
    det[20, 20], det[20, 21] = 5.0, 4.0
    det[25, 34] = 6.0
    labels = np.zeros((h, w), np.int32)
    labels[20, 20:22], labels[25, 34] = 1, 2
    idx = np.flatnonzero(labels)
    usable = np.ones((h, w), bool)
    usable[20, 10] = False
    grown, pixels = ring_footprints(det, labels, idx, 8.0, usable)
    assert np.array_equal(pixels, np.flatnonzero(grown))
    rows, cols = np.divmod(pixels, w)
    lab = grown.ravel()[pixels]
    d1, d2 = np.hypot(rows - 20, cols - 20), np.hypot(rows - 25, cols - 34)
    assert np.all(np.minimum(d1, d2) <= 8.0)
    assert np.array_equal(lab == 1, d1 < d2)
    expect = (np.hypot(*np.mgrid[-20:h - 20, -20:w - 20]) <= 8.0) \
        | (np.hypot(*np.mgrid[-25:h - 25, -34:w - 34]) <= 8.0)
    expect[20, 10] = False
    assert np.array_equal(grown > 0, expect)


def _defocused_field(seed, radius):
    """A 1024x768 14 deg Gaia field whose stars are rings of outer radius ``radius`` px
    (inner half of it) on a sky of 800 e, photon and read noise added after the
    optics blurred them (so the noise is white); its attitude and the stars' truth."""
    rng = np.random.default_rng(seed)
    light, attitude, truth = camera_field(rng, psf=1.0, background_e=0.0, read_noise_e=0.0,
                                          noise=False, full_well_e=None, adc_bits=None)
    blurred = fftconvolve(light, dg.annulus_kernel(radius), mode="same")
    image = rng.poisson(np.maximum(blurred, 0.0) + 800.0) + rng.normal(0.0, 10.0, light.shape)
    return image.astype(np.float32), attitude, truth


def _keeps_whole_rings(small_db, seed, radius, near, far, miss_arcsec):
    """The field of :func:`_defocused_field`: at least ``near`` centroids within 1.5 px of
    a star brighter than magnitude 7, at most ``far`` more than 5 px from any, and a
    solve within ``miss_arcsec`` of the pointing."""
    image, attitude, truth = _defocused_field(seed, radius)
    res = extract_centroids(image)
    bright = truth.mag < 7.0
    xy = res.as_array()
    d = np.hypot(xy[:, None, 0] - truth.x[bright], xy[:, None, 1] - truth.y[bright]).min(axis=1)
    assert (d < 1.5).sum() >= near
    assert (d > 5.0).sum() <= far
    sol = small_db.solve_from_centroids(res, fov_estimate_deg=14.0)
    assert sol, sol.status
    assert np.degrees(angle_between(sol.rotation_matrix_icrs_to_camera[2],
                                    attitude[2])) * 3600 < miss_arcsec


def test_rings_wider_than_the_gaussian_filter_are_found_whole(small_db):
    """Rings of 11 px outer radius: the widest Gaussian filter (4 px) kept 9 of its 15
    detections within 1.5 px of a star brighter than magnitude 7 and 5 more than 5 px
    from any (arcs), and solved 16" off. The disc's pass keeps whole rings: 17 within
    1.5 px (at least 15), none beyond 5, and a solve within 10" (3.3")."""
    _keeps_whole_rings(small_db, 0, 11.0, 15, 0, 10.0)


def test_rings_read_small_from_their_arcs_are_filtered_at_their_peaks_reach(small_db):
    """Rings of 16 px, few of them whole above the Gaussian pass's threshold: 38
    detections, 35 of them more than 5 px from a star brighter than magnitude 7 (arcs),
    and no solve, with or without a disc as wide as the reference's second moment reads
    (rings of 9.9 px: the arcs among it keep it small). Its brightest pixels lie 11.4 px
    from their centroids, rings of 15.3 px: that disc keeps 5 rings within 1.5 px of
    their stars, at most 1 beyond 5, and solves within 30" (10")."""
    _keeps_whole_rings(small_db, 1, 16.0, 5, 1, 30.0)
