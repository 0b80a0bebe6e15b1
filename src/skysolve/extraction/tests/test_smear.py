"""Frames whose stars are all smeared into trails: the trail's matched filter
(:mod:`skysolve.extraction.smear`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.extraction import extract_centroids
from skysolve.extraction.smear import (
    Smear,
    aligned_moments,
    convolve,
    convolve_field,
    frame_smear,
    smear_kernel,
)
from skysolve.geometry import angle_between, radec_to_vector
from skysolve.io.images import read_image
from skysolve.simulate import degrade as dg
from skysolve.tests.fields import camera_field
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


#: A 1024x768 frame whose sky turns by 0.03 rad about a pole above its top right corner.
FRAME = (768, 1024)
CENTRE = (511.5, 383.5)
POLE, TURN = (1400.0, -250.0), 0.03


def _about_the_pole(xs, ys, width=1.0, shorten=None):
    """Measurements of blobs at ``(xs, ys)`` shaped like the trails of the turn about
    ``POLE``: ``TURN`` times their distance from it long (times ``shorten``, a fainter
    trail's ends below the threshold), at right angles to the line to it."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    lengths = TURN * np.hypot(xs - POLE[0], ys - POLE[1])
    if shorten is not None:
        lengths = lengths * np.asarray(shorten)
    angles = np.degrees(np.arctan2(xs - POLE[0], -(ys - POLE[1])))
    return {**_trails(lengths, angles, width), "cx": xs, "cy": ys}


def _true_trails(x, y):
    """The turn's trail vectors at ``(x, y)``: the geometry, not :meth:`Smear.trails`."""
    return -TURN * (np.asarray(y) - POLE[1]), TURN * (np.asarray(x) - POLE[0])


def test_frame_smear_reads_trails_that_turn_about_the_pole():
    """Twelve trails across the frame, 21-48 px long and turning by 33 deg across it, the
    fainter ones measured up to a third short: the field of the turn, its trail the
    true one everywhere in the frame (1 % in length, 0.3 deg in direction), the pole's
    trails shortest. Without the frame's shape they make one smear, of one direction."""
    rng = np.random.default_rng(3)
    xs, ys = rng.uniform(20, 1004, 12), rng.uniform(20, 748, 12)
    shorten = np.r_[1.0, 1.0, 1.0, rng.uniform(0.67, 1.0, 9)]
    meas = _about_the_pole(xs, ys, shorten=shorten)
    smear = frame_smear(meas, np.arange(12), FRAME)
    assert smear is not None and abs(smear.spin) == pytest.approx(TURN, rel=0.01)
    gx, gy = np.meshgrid(np.linspace(0, 1023, 9), np.linspace(0, 767, 7))
    dx, dy = smear.trails(gx, gy)
    tx, ty = _true_trails(gx, gy)
    np.testing.assert_allclose(np.hypot(dx, dy), np.hypot(tx, ty), rtol=0.01)
    assert np.degrees(np.abs(np.arcsin((dx * ty - dy * tx) / np.hypot(dx, dy)
                                       / np.hypot(tx, ty)))).max() < 0.3
    assert smear.centre == CENTRE and smear.width == pytest.approx(1.0, rel=1e-6)
    assert frame_smear(meas, np.arange(12)).spin == 0.0


def test_a_satellite_among_turning_trails_does_not_turn_the_field():
    """Fourteen trails of the turn and six bright pieces of a satellite's trail among
    them, 10-20 px long along a line across the trails: the field of the turn (3 % in
    spin). Tracks alone, any direction, make none."""
    rng = np.random.default_rng(6)
    xs, ys = rng.uniform(20, 1004, 14), rng.uniform(20, 748, 14)
    trails = _about_the_pole(xs, ys)
    along = np.linspace(100.0, 900.0, 6)
    tx, ty = along, 700.0 - 0.6 * along
    across = np.full(6, np.degrees(np.arctan2(-0.6, 1.0)))
    tracks = {**_trails(rng.uniform(10, 20, 6), across), "cx": tx, "cy": ty}
    meas = {k: np.r_[tracks[k] * (3.0 if k == "flux" else 1.0), trails[k]] for k in trails}
    smear = frame_smear(meas, np.arange(20), FRAME)
    assert smear is not None and abs(smear.spin) == pytest.approx(TURN, rel=0.03)
    alone = {**_trails(rng.uniform(10, 40, 20), rng.uniform(0, 180, 20)),
             "cx": rng.uniform(20, 1004, 20), "cy": rng.uniform(20, 748, 20)}
    assert frame_smear(alone, np.arange(20), FRAME) is None


def test_pieces_of_a_ring_make_no_turning_field():
    """Twelve blobs 40 px long along a circle of 300 px about the frame's centre (the
    rim of an all-sky lens's circle against a dark border) follow a turn about it, by
    0.13 rad; at one distance from it, they are no stars' trails. Their pieces spread
    over 240-360 px from it are."""
    a = np.linspace(0.0, 2.0 * np.pi, 12, endpoint=False)
    for radius, made in ((np.full(12, 300.0), False), (np.linspace(240.0, 360.0, 12), True)):
        xs, ys = CENTRE[0] + radius * np.cos(a), CENTRE[1] + radius * np.sin(a)
        meas = {**_trails(np.full(12, 40.0), np.degrees(a) + 90.0), "cx": xs, "cy": ys}
        smear = frame_smear(meas, np.arange(12), FRAME)
        assert (smear is not None and smear.spin != 0.0) == made


def test_a_smear_along_one_direction_does_not_turn():
    """Trails along 30 deg with the +-2 deg scatter of measured ones, across the frame:
    the uniform smear, with or without the frame's shape."""
    rng = np.random.default_rng(4)
    meas = {**_trails([30, 29, 28] + [20] * 9, 30 + rng.uniform(-2, 2, 12)),
            "cx": rng.uniform(20, 1004, 12), "cy": rng.uniform(20, 748, 12)}
    smear = frame_smear(meas, np.arange(12), FRAME)
    plain = frame_smear(meas, np.arange(12))
    assert smear.spin == 0.0 and plain.spin == 0.0
    assert (smear.length, smear.angle, smear.width) == (plain.length, plain.angle, plain.width)
    assert math.degrees(smear.angle) == pytest.approx(30.0, abs=1.0)


def test_a_turning_field_is_filtered_with_its_trail_in_each_tile():
    """Points on a turning field's tiles come out as their own trails: second moments
    along the true trail there those of its length (within the 2 px a tile's kernel
    may differ by) plus the width's, across it the width's (and the ends' pixel of
    turn); white noise comes out with
    the centre kernel's root sum of squares in every tile."""
    smear = Smear(float(np.hypot(*_true_trails(*CENTRE))),
                  float(np.arctan2(*_true_trails(*CENTRE)[::-1])), 1.0, spin=TURN,
                  centre=CENTRE)
    points = [(104, 104), (524, 384), (944, 664), (104, 664)]
    image = np.zeros(FRAME)
    for x, y in points:
        image[y, x] = 1000.0
    out, kernel = convolve_field(image, smear, np.zeros(FRAME))
    np.testing.assert_allclose(kernel, smear_kernel(smear))
    for x, y in points:
        box = out[y - 40:y + 41, x - 40:x + 41].astype(float)
        v, u = np.mgrid[-40:41, -40:41]
        tx, ty = _true_trails(x, y)
        length = float(np.hypot(tx, ty))
        along, across = (u * tx + v * ty) / length, (-u * ty + v * tx) / length
        measured = np.sqrt(12.0 * ((box * along ** 2).sum() / box.sum() - 1.0))
        assert measured == pytest.approx(length, abs=2.0)  # (a tile's ends: 1 px at most)
        # (across, the ends' pixel adds up to (2 px)^2 / 12)
        assert 0.98 < (box * across ** 2).sum() / box.sum() < 1.0 + 4.0 / 12.0
    rng = np.random.default_rng(5)
    noise, _ = convolve_field(rng.normal(0.0, 1.0, FRAME), smear, np.zeros(FRAME))
    rss = np.sqrt(np.sum(kernel ** 2))
    for rows, cols in ((slice(100, 300), slice(100, 400)), (slice(500, 700), slice(600, 900))):
        assert noise[rows, cols].std() / rss == pytest.approx(1.0, abs=0.06)


def test_aligned_moments_make_every_trail_the_centres():
    """Trails of the turn across the frame, turned into their own direction and stretched
    to the centre's length: every one the centre's trail along x."""
    xs, ys = np.array([30.0, 500.0, 990.0, 60.0]), np.array([40.0, 380.0, 720.0, 700.0])
    meas = _about_the_pole(xs, ys)
    centre = float(np.hypot(*_true_trails(*CENTRE)))
    smear = Smear(centre, float(np.arctan2(*_true_trails(*CENTRE)[::-1])), 1.0, spin=TURN,
                  centre=CENTRE)
    a, c, b = aligned_moments(meas, smear)
    np.testing.assert_allclose(a, centre ** 2 / 12 + 1.0 - 1 / 12, rtol=1e-6)
    np.testing.assert_allclose(c, 1.0 - 1 / 12, rtol=1e-6)
    np.testing.assert_allclose(b, 0.0, atol=1e-6)


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
    _keeps_and_solves(small_db, name, lambda image: dg.smear(image, strength, seed=seed),
                      max(4, 3 * before), 60.0)


def _keeps_and_solves(small_db, name, degraded, near, miss_arcsec, far=3):
    """The real frame ``name`` as ``degraded(image)`` makes it: at least ``near``
    detections within 2 px of the frame's stars (3-sigma stars of the frame itself), at
    most ``far`` more than 8 px from any, and a solve within ``miss_arcsec`` of the
    reference."""
    image = read_image(DATA / name)
    stars = extract_centroids(image, sigma_threshold=3.0).as_array()
    res = extract_centroids(degraded(image))
    assert _near(res, stars).sum() >= near
    assert (~_near(res, stars, 8.0)).sum() <= far
    sol = small_db.solve_from_centroids(res, fov_estimate_deg=FOV_DEG)
    assert sol, sol.status
    miss = angle_between(radec_to_vector(sol.ra_deg, sol.dec_deg),
                         radec_to_vector(*REFERENCE[name]))
    assert np.degrees(miss) * 3600 < miss_arcsec


@pytest.mark.parametrize("name, strength, seed, before", [(ALT60, 3.0, 2, 5), (ALT40, 4.0, 0, 5),
                                                          (ALT60, 5.0, 2, 2)])
def test_real_frames_exposed_untracked_keep_their_stars_and_solve(small_db, name, strength,
                                                                seed, before):
    """The real frames exposed untracked (:func:`.degrade.untracked`: arcs of 8 x
    ``strength`` px at the centre about a random pole, longer away from it): with one
    trail for the whole frame, ``before`` detections lay within 2 px of the frame's
    stars, and none solved. With the turning field's filter: 10-22 such stars, at most
    3 centroids more than 8 px from any, and solves within 30" (5.5-8.8" measured)."""
    _keeps_and_solves(small_db, name, lambda image: dg.untracked(image, strength, seed=seed),
                      max(8, before + 4), 30.0)


def test_a_real_frame_exposed_untracked_among_cosmic_rays_solves(small_db):
    """The first real frame exposed untracked (arcs of 16 px at the centre) and hit by
    cosmic rays, whose tracks are among its brightest blobs: a field fitted to all of
    them held too few, and 5 of its 11 detections lay within 2 px of the frame's stars,
    with no solve. The field most pairs of them define holds the trails: 21 such (at
    least 15), the tracks' 7 among the rest, and a solve within 30" (15")."""
    _keeps_and_solves(small_db, ALT40, lambda image: dg.degrade(
        image, [("untracked", 2.0), "cosmic_rays"], "moderate", seed=2), 15, 30.0, far=8)


def test_a_field_near_the_pole_exposed_untracked_solves_at_its_middle(small_db):
    """A 1024x768 11.4 deg Gaia field 11.5 deg from the pole (outside the frame) exposed
    for 7.7 minutes on a fixed tripod, rendered as 40 sub-exposures: its stars are arcs
    of 13-54 px turning by 40 deg across the frame. Before, its first pass kept 30
    pieces of trails (enough stars: no filtered pass), up to 18 px off their stars, and
    the solve lay 7.6 px from the pointing at mid-exposure. The turning field's filter
    keeps the whole arcs: 18 of the 20 brightest centroids within 3 px of a star's place
    at mid-exposure (15 within 1.5 px; the others' arcs run into a neighbour's), and the
    solve within 20" of it."""
    from skysolve import CameraModel, load_gaia
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    gaia, cam = load_gaia(), CameraModel.from_fov(FOV_DEG, 1024, 768)
    rng = np.random.default_rng(1)
    ra, dec, roll, minutes = (rng.uniform(0, 360), rng.uniform(50, 80), rng.uniform(0, 360),
                              rng.uniform(3, 8))  # (184.3, 78.5, 51.9 deg; 7.7 minutes)
    mid = radec_roll_to_rotation(ra, dec, roll)
    sky = 0.0
    for k in range(40):  # the sky turns 0.25 deg a minute about the pole
        t = math.radians((k / 39 - 0.5) * minutes * 0.25)
        turn = np.array([[math.cos(t), -math.sin(t), 0.0], [math.sin(t), math.cos(t), 0.0],
                         [0.0, 0.0, 1.0]])
        sub, _ = render_starfield(gaia, cam, mid @ turn, zeropoint_mag=15.5, exposure_s=1 / 40,
                                  background_e=0.0, read_noise_e=0.0, noise=False,
                                  full_well_e=None)
        sky = sky + sub
    image = (rng.poisson(sky + 100.0) + rng.normal(0.0, 5.0, sky.shape)).astype(np.float32)
    _, truth = render_starfield(gaia, cam, mid, zeropoint_mag=15.5, noise=False)
    res = extract_centroids(image)
    top = res.as_array()[:20]
    on = truth.mag < 9.0
    d = np.hypot(top[:, None, 0] - truth.x[on], top[:, None, 1] - truth.y[on]).min(axis=1)
    assert (d < 3.0).sum() >= 18
    sol = small_db.solve_from_centroids(res, fov_estimate_deg=FOV_DEG)
    assert sol, sol.status
    assert np.degrees(angle_between(radec_to_vector(sol.ra_deg, sol.dec_deg),
                                    mid[2])) * 3600 < 20.0


@pytest.mark.parametrize("kind, jpeg", [("smear", 0.25), ("smear", 0.5), ("untracked", 0.25),
                                        ("untracked", 0.5)])
def test_a_field_of_trails_saved_as_jpeg_solves(small_db, kind, jpeg):
    """A 14 deg Gaia field (1024x768) whose stars are trails of 32 px (``smear``: one
    direction; ``untracked``: arcs about a pole, 32 px at the centre), stretched to 8
    bits and saved as JPEG at quality 77 or 65: the encoder flattens its sky into
    constant blocks. Its trail pass was skipped there (no filtered threshold for a flat
    sky), the pieces kept solved nowhere or 121" off. The trail's filter with its
    threshold scaled to the filtered frame's measured noise keeps the trails: solves
    within 30" (5.5-10" measured)."""
    image, attitude, _ = camera_field(0)
    saved = dg.jpeg(getattr(dg, kind)(image, 4.0, seed=0), jpeg)
    res = extract_centroids(saved)
    sol = small_db.solve_from_centroids(res, fov_estimate_deg=14.0)
    assert sol, sol.status
    assert np.degrees(angle_between(sol.rotation_matrix_icrs_to_camera[2],
                                    attitude[2])) * 3600 < 30.0
