"""Extraction on frames that defeated fixed limits: undersampled stars, bright defocused
stars, and what the automatic matched filter and saturation level make of them.

Frames are rendered by :func:`skysolve.simulate.render_stars` (pixel-integrated
Gaussians) on a noisy sky; every expectation comes from the rendered truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.extraction import extract_centroids
from skysolve.io.images import read_image
from skysolve.simulate import degrade as dg
from skysolve.simulate import render_stars
from skysolve.tests.frames import match_to_truth, scattered_stars
from skysolve.tests.realframes import ALT60, DATA, REFERENCE

SHAPE = (384, 512)
SKY, NOISE = 1000.0, 10.0


def star_frame(seed: int, sigma: float, n: int = 100, flux=(1000.0, 60000.0)):
    """Scattered Gaussian stars of PSF sigma ``sigma`` px: ``(image, x, y, flux)``."""
    rng = np.random.default_rng(seed)
    x, y = scattered_stars(rng, SHAPE, n, tries=30)
    f = np.exp(rng.uniform(np.log(flux[0]), np.log(flux[1]), len(x)))
    img = render_stars(SHAPE, x, y, f, sigma) + SKY + rng.normal(0.0, NOISE, SHAPE)
    return img, x, y, f


def found(res, x, y, radius: float = 1.0) -> np.ndarray:
    """Which true stars a kept centroid lies on."""
    xy = res.as_array()
    return match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=radius)[0] >= 0


def add_hot_pixels(img: np.ndarray, seed: int, n: int = 40):
    """Single hot pixels (20-2000 noise sigmas) away from the stars: their centred
    positions."""
    rng = np.random.default_rng(seed + 1000)
    where = rng.choice(img.size, n, replace=False)
    img.reshape(-1)[where] += np.exp(rng.uniform(np.log(20 * NOISE), np.log(2000 * NOISE), n))
    r, c = np.divmod(where, SHAPE[1])
    return c + 0.5 - SHAPE[1] / 2, r + 0.5 - SHAPE[0] / 2


@pytest.mark.parametrize("sigma", [0.3, 0.4])
def test_a_frame_of_undersampled_stars_keeps_its_stars_and_drops_hot_pixels(sigma):
    # every star is as sharp as a hot pixel by the fixed limit (a sigma-0.3 px star
    # centred on a pixel scores 0.97), but its light spills into its neighbours
    img, x, y, _ = star_frame(11, sigma)
    hx, hy = add_hot_pixels(img, 11)
    apart = np.array([np.min(np.hypot(x - a, y - b)) > 3.0 for a, b in zip(hx, hy, strict=True)])
    for min_pixels in (3, 1):  # 1: the hot pixels meet the sharpness test, not the size one
        res = extract_centroids(img, min_pixels=min_pixels)
        assert found(res, x, y).mean() > 0.95
        xy = res.as_array()
        d = np.hypot(xy[:, None, 0] - hx[apart], xy[:, None, 1] - hy[apart])
        kept_hot = np.flatnonzero(d.min(axis=1) < 1.0)
        if min_pixels == 3:
            assert len(kept_hot) == 0
        else:
            # the faint ones (20-50 sigmas: 3 of 40) cannot be told from stars whose light
            # falls on one pixel: kept as doubtful, after every star-like centroid
            assert len(kept_hot) <= 5
            assert (res.flags[kept_hot] == "doubtful").all()
            assert kept_hot.min(initial=len(res)) >= (res.flags != "doubtful").sum()


def _binned(image: np.ndarray, factor: int) -> np.ndarray:
    h, w = (s - s % factor for s in image.shape)
    return image[:h, :w].astype(float).reshape(
        h // factor, factor, w // factor, factor).sum(axis=(1, 3))


@pytest.mark.parametrize("name", list(REFERENCE))
def test_binned_real_frames_keep_their_faint_stars(name):
    """The real frames binned 3x and 4x (341x256, 256x192: stars a pixel wide). The
    sharpness test took their fainter stars, whose light beside the peak is too little
    to show, for hot pixels: 12 and 21 of the stars the unbinned frames give at 3 sigmas
    were kept at 3x, 3 and 8 at 4x. Those are kept now, as doubtful stars after the
    others: 27 and 31, 10 and 21; of those doubtful, at most 3 a frame lie off them."""
    image = read_image(DATA / name)
    stars = extract_centroids(image, sigma_threshold=3.0).as_array()
    for factor, least in ((3, 25), (4, 10)):
        res = extract_centroids(_binned(image, factor))
        xy = res.as_array()
        near = np.hypot(xy[:, None, 0] - stars[:, 0] / factor,
                        xy[:, None, 1] - stars[:, 1] / factor).min(axis=1) < 1.0
        doubtful = res.flags == "doubtful"
        assert near.sum() >= least, factor
        assert doubtful.any() and not doubtful[0]
        assert (doubtful & ~near).sum() <= 3, factor
        assert (doubtful & near).sum() >= 3 * (doubtful & ~near).sum(), factor
        # told not to demote doubtful stars, it keeps none of them as a star either (the
        # PSF reference it draws from the rest may differ by a blob)
        plain = extract_centroids(_binned(image, factor), demote_doubtful=False)
        assert abs(len(plain) - (~doubtful).sum()) <= 1 < doubtful.sum(), factor


def test_a_real_frame_binned_4x_solves_told_nothing(small_db):
    """... so that the 4x binned frame, 3 centroids before (``too_few``), solves with
    no scale, within 30" of the reference boresight (its 10 centroids all on stars)."""
    from skysolve.geometry import angle_between, radec_to_vector
    from skysolve.tests.realframes import ALT40

    sol = small_db.solve_from_centroids(extract_centroids(_binned(read_image(DATA / ALT40), 4)))
    assert sol, sol.status
    miss = angle_between(radec_to_vector(sol.ra_deg, sol.dec_deg),
                         radec_to_vector(*REFERENCE[ALT40]))
    assert np.degrees(miss) * 3600 < 30.0
    assert sol.num_matches >= 8


def test_hot_pixels_beside_well_sampled_stars_stay_sharp():
    img, x, y, _ = star_frame(12, 1.2)
    hx, hy = add_hot_pixels(img, 12)
    res = extract_centroids(img, min_pixels=1)
    assert found(res, x, y).mean() > 0.97
    rej = res.rejected
    for a, b in zip(hx, hy, strict=True):
        if np.min(np.hypot(x - a, y - b)) > 3.0:
            k = np.argmin(np.hypot(rej["x"] - a, rej["y"] - b))
            assert np.hypot(rej["x"][k] - a, rej["y"][k] - b) < 0.6
            assert rej["reason"][k] == "sharp"


def donut_frame(seed: int, n: int = 30):
    """Bright defocused stars (rings of outer radius 6 px, a central obstruction) whose
    light the blur spreads over a hundred pixels each: ``(image, x, y)``."""
    img, x, y, _ = star_frame(seed, 1.2, n=n, flux=(3e4, 3e5))
    return dg.defocus(img, 1.0, seed=seed), x, y


@pytest.mark.parametrize("seed", [1, 3])
def test_auto_filter_keeps_the_pass_that_keeps_the_rings_apart(seed):
    # the rings are wide, so 'auto' detects the frame again through a filter as wide
    # as they are; there, neighbouring rings join into single blobs and the noise the
    # blur correlated rises into blobs far from every star: more blobs (32 against 30
    # on seed 1; 36 on seed 3, which merges fewer), fewer stars
    img, x, y = donut_frame(seed)
    res = extract_centroids(img, matched_filter_sigma="auto")
    xy = res.as_array()
    assert found(res, x, y, 1.5).all()
    false = match_to_truth(x, y, xy[:, 0], xy[:, 1], radius=1.5)[0] < 0
    assert not false.any()


def dark_8bit_sky(seed: int, noise_seed: int = 0, sky: float = 14.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scattered stars on a sky with 0.6 counts of noise, rounded to 8 bits: the counts
    of a dark finder frame, ``(image, x, y)`` (the brightest 60 % of the stars, which
    rise 10 counts or more); ``noise_seed``: the noise's, and ``sky`` the sky level (one
    per colour channel)."""
    rng = np.random.default_rng(seed)
    x, y = scattered_stars(rng, SHAPE, 80, tries=30)
    f = np.exp(rng.uniform(np.log(15.0), np.log(400.0), len(x)))
    noise = np.random.default_rng(1000 + noise_seed).normal(0.0, 0.6, SHAPE)
    img = render_stars(SHAPE, x, y, f, 1.2) + sky + noise
    bright = f >= np.quantile(f, 0.4)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), x[bright], y[bright]


@pytest.mark.parametrize("seed", [0, 1])
def test_whole_number_floats_are_counts(seed, tmp_path):
    """A dark 8-bit sky gives the same stars as uint8 and as float32/float64 (big-endian
    too): whole-number values are counts. (As floats, most of the sky shared one value,
    so the MAD was 0 and the frame was taken for noise-free: thousands of noise peaks
    were kept; a grey PNG saved as RGB was read as such floats.)"""
    from PIL import Image

    from skysolve import read_image

    u8, x, y = dark_8bit_sky(seed)
    path = tmp_path / "grey.png"
    Image.fromarray(u8).convert("RGB").save(path)
    grey = read_image(path)  # (grey stored as colour: its one channel, whole counts)
    assert grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, u8)
    frames = [u8, u8.astype(np.float32), u8.astype(np.float64), u8.astype(">f4")]
    results = [extract_centroids(f) for f in frames]
    for res in results[1:]:  # (float sums of the same counts: to rounding)
        np.testing.assert_allclose(res.as_array(), results[0].as_array(), rtol=1e-9,
                                   atol=1e-9)
        assert res.background_sigma == results[0].background_sigma
    assert found(results[0], x, y).mean() >= 0.9
    assert len(results[0]) <= 1.2 * len(x)


@pytest.mark.parametrize("seed", [0, 1])
def test_counts_with_an_offset_are_counts(seed):
    """Floats on a lattice with an offset varying from region to region (a colour JPEG's
    luminance: each region's chroma adds its fraction of a count), scaled or not, are
    quantised in the lattice's step; continuous floats are not, however small their
    noise (0.05: its sigma kept, and as many stars found as at 200 times the scale)."""
    from skysolve.extraction.extract import _quantum

    u8, _, _ = dark_8bit_sky(seed)
    offset = np.random.default_rng(seed).uniform(0.0, 1.0, (3, 4)).repeat(128, 0).repeat(
        128, 1)
    assert _quantum((u8 + offset).astype(np.float32)) == pytest.approx(1.0, rel=1e-4)
    assert _quantum((2.0 * u8 + offset).astype(np.float32)) == pytest.approx(2.0, rel=1e-4)
    assert _quantum((u8 + offset) / 255.0) == pytest.approx(1.0 / 255.0, rel=1e-4)
    img, x, y, _ = star_frame(seed, 1.5)
    tiny = (img / 200.0).astype(np.float32)  # (noise 0.05)
    assert _quantum(tiny) is None
    res = extract_centroids(tiny)
    assert res.background_sigma == pytest.approx(NOISE / 200.0, rel=0.1)
    assert found(res, x, y).sum() == found(extract_centroids(img.astype(np.float32)), x, y).sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_colour_jpeg_of_a_dark_sky(seed, tmp_path):
    """The luminance of a colour JPEG whose encoder flattened a dark sky (most of it at one
    value, the rest in steps of about a count): its noise is taken from those steps,
    not as zero -- the stars are found and few noise peaks with them (before: 27-32 false
    detections for 44-47 stars, the noise taken as 0)."""
    from PIL import Image

    from skysolve import read_image

    channels = [dark_8bit_sky(seed, noise_seed=c, sky=sky)  # (a tinted sky)
                for c, sky in enumerate((14.0, 11.0, 19.0))]
    x, y = channels[0][1], channels[0][2]  # (the same stars, each channel's own noise)
    rgb = np.stack([c[0] for c in channels], axis=-1)
    path = tmp_path / "colour.jpg"
    Image.fromarray(rgb).save(path, quality=85)
    image = read_image(path)
    res = extract_centroids(image)
    on = found(res, x, y, radius=1.5)
    assert res.background_sigma >= 0.3  # (counts of luminance; it was 0)
    assert on.mean() >= 0.85
    assert len(res) - on.sum() <= 0.3 * on.sum()  # measured 7-10 false for 43-45 stars


def _twelve_bit_field():
    """60 stars on a 640x480 12-bit sky (20 counts) under 0.5 count of read noise:
    (counts as floats, star x, star y)."""
    rng = np.random.default_rng(5)
    shape = (480, 640)
    x, y = scattered_stars(rng, shape, n=60, min_sep=25)
    flux = 10 ** rng.uniform(1.6, 3.3, len(x))
    counts = np.clip(np.round(render_stars(shape, x, y, flux, 1.2) + 20.0
                              + rng.normal(0.0, 0.5, shape)), 0, 4095)
    return counts, x, y


@pytest.mark.parametrize("shift, pedestal", [(4, 0), (4, 100), (2, 0), (6, 64)])
def test_counts_shifted_into_high_bits_are_counts_in_their_step(shift, pedestal):
    """A 12-bit sky under half a count of read noise stored as 16-bit integers shifted up
    by ``shift`` bits (a pedestal added or not): the data step by ``2**shift``, and the
    stars and noise are those of the 12-bit counts, which are found alike as integers
    and as floats scaled to 0-1. (Taken for steps of 1, the noise was floored at half a
    count, a 32nd of a step at a shift of 4, and 1,994 pixels a step above the sky were
    kept beside 56 of the 60 stars.) A thresholded frame (0 and 255: two levels) is
    no such lattice, and keeps its stars."""
    counts, x, y = _twelve_bit_field()
    twelve = extract_centroids(counts.astype(np.uint16))
    assert found(twelve, x, y).sum() == len(twelve) == len(x)
    stored = extract_centroids((counts * 2 ** shift + pedestal).astype(np.uint16))
    scaled = extract_centroids(counts / 4095.0)
    for res in (stored, scaled):
        assert found(res, x, y).sum() == len(res) == len(x)
    assert stored.background_sigma == pytest.approx(2 ** shift * twelve.background_sigma,
                                                    rel=1e-6)
    binary = np.where(counts > 60, 255, 0).astype(np.uint8)  # (the brightest stars' cores)
    res = extract_centroids(binary)
    assert found(res, x, y).sum() == len(res) >= 15  # (22 stars rise above 60 counts)


@pytest.mark.parametrize("scale", [2.0 ** 120, 1e36])
def test_counts_scaled_beyond_exact_integers_keep_their_step(scale):
    """The 12-bit counts of :func:`test_counts_shifted_into_high_bits_are_counts_in_their_step`
    (read noise 0.5) scaled by 2^120 or 1e36 as float64: every such value is a whole
    number, and they were taken for counts in steps of 1, their noise (under a step of
    2^120) for none: 49 of the 60 stars found, and 20 peaks of noise. Their step is the
    lattice's, and the counts' stars and noise are found (and the block-grid search no
    longer overflows float32 summing their steps)."""
    import warnings

    counts, x, y = _twelve_bit_field()
    plain = extract_centroids(counts)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        res = extract_centroids(counts * scale)
    assert found(res, x, y).sum() == len(res) == len(plain) == len(x)
    assert res.background_sigma / scale == pytest.approx(plain.background_sigma, rel=1e-3)


def test_counts_in_high_bits_with_saturated_pixels_off_their_lattice():
    """The 12-bit counts of :func:`test_counts_shifted_into_high_bits_are_counts_in_their_step`
    shifted up by 4 bits, with five saturating stars whose 99 clipped pixels read 65535
    (off the lattice of 16): a strict greatest common divisor of the steps was 1, and
    1,878 peaks of noise were kept; the lattice holds, and the 60 stars are found as
    with the clipped pixels at 65520."""
    rng = np.random.default_rng(5)
    shape = (480, 640)
    x, y = scattered_stars(rng, shape, n=60, min_sep=25)
    flux = 10 ** rng.uniform(1.6, 3.3, len(x))
    flux[:5] = 3e5
    counts = np.clip(np.round(render_stars(shape, x, y, flux, 1.2) + 20.0
                              + rng.normal(0.0, 0.5, shape)), 0, 4095)
    on = (counts * 16).astype(np.uint16)
    off = np.where(counts == 4095, 65535, on).astype(np.uint16)
    assert np.count_nonzero(off % 16) == 99
    for img in (on, off):
        res = extract_centroids(img)
        assert found(res, x, y).sum() == len(res) == len(x)
        assert res.saturated.sum() == 5


@pytest.mark.parametrize("sky", [0.0, 1.0, -4.0, -6.0])
def test_a_sky_clipped_at_zero_keeps_its_noise(sky):
    """A calibrated float frame whose sky (``sky`` above zero, noise 3) was clipped at
    zero -- its negative values set to 0 -- holds a quarter to 98 % of its pixels at
    exactly 0: the MAD of a sky at the floor measured a tenth of its noise (0.28), and
    of one mostly below it none (taken for noise-free), and up to ~2,000 peaks of noise
    were kept with the 60 stars. Its noise is measured from the pixels above the floor
    beside one on it: the stars of the unclipped frame and nothing else. So for a
    camera's dark-subtracted counts (noise 10) clipped at zero (the MAD measured 1.0:
    1,864 peaks of noise kept). A noise-free frame's flat sky at zero stays noise-free
    (its stars found)."""
    rng = np.random.default_rng(7)
    shape = (480, 640)
    x, y = scattered_stars(rng, shape, n=60, min_sep=25)
    stars = render_stars(shape, x, y, 10 ** rng.uniform(2.5, 4.0, len(x)), 1.2)
    noise = rng.normal(0.0, 1.0, shape)
    clipped = np.maximum(stars + sky + 3.0 * noise, 0.0)
    counts = np.maximum(np.round(10.0 / 3.0 * (stars + sky) + 10.0 * noise), 0).astype(
        np.uint16)
    assert 0.2 < np.mean(clipped == 0.0) < 0.99
    for img, sigma in ((clipped, 3.0), ((clipped / 1000.0).astype(np.float32), 0.003),
                       (counts, 10.0)):
        res = extract_centroids(img)
        assert found(res, x, y).sum() == len(res) == len(x)
        assert res.background_sigma == pytest.approx(sigma, rel=0.25)
    noise_free = extract_centroids(np.where(stars > 0.5, stars, 0.0))
    assert found(noise_free, x, y).sum() == len(noise_free) == len(x)


def test_wing_verdicts_tell_hot_pixels_by_the_light_a_star_as_bright_would_spill():
    """Noise sigma 1 (so 1.41 for a sum of two neighbours, wings at 7.07): three winged
    stars spilling 10-20 % of their peak on each axis (the lesser: 10, 15, 10 %, lower
    quartile k = 0.1); a blob of 40 sigmas would spill 4 (below 11.3: untold, kept), one
    of 200 sigmas 20 (none seen: a hot pixel); a peak not above the background is no star."""
    from skysolve.extraction.filters import wing_verdicts

    peak = np.array([100.0, 100.0, 100.0, 40.0, 200.0, -1.0])
    m = {"sigma": np.ones(6), "peak": peak}
    across = np.array([10.0, 15.0, 20.0, 0.5, 1.0, 0.0])
    along = np.array([20.0, 15.0, 10.0, 2.0, -1.0, 0.0])
    ids = np.arange(6)
    winged, untold = wing_verdicts(m, ids, across, along)
    assert winged.tolist() == [True, True, True, False, False, False]
    assert untold.tolist() == [False, False, False, True, False, False]
    # told not to keep any, or with one winged star to judge by: none kept
    assert not wing_verdicts(m, ids, across, along, tell=False)[1].any()
    one = np.array([10.0, 0.0, 0.0, 0.5, 1.0, 0.0])
    assert not wing_verdicts(m, ids, one, one)[1].any()


def test_only_blobs_the_other_tests_kept_are_judged_by_their_wings(monkeypatch):
    """The background label (its sharpness infinite, its 'peak' pixel (0, 0) beside a
    corner star), a blob at the border and one too small are dropped by their own tests:
    they are neither asked about nor counted among the winged stars whose lower quartile
    tells a faint star (4, kept as doubtful) from a hot pixel (5, dropped)."""
    from skysolve.extraction import filters

    monkeypatch.setattr(filters, "undersampled", lambda m, candidates: True)
    #           bg     star   star   star   faint  hot    border small
    peak = np.array([-np.inf, 100.0, 100.0, 100.0, 40.0, 200.0, 100.0, 100.0])
    n = len(peak)
    m = {"npix": np.array([0, 4, 4, 4, 3, 3, 4, 1]), "sumw": np.ones(n),
         "rmin": np.full(n, 50), "cmin": np.full(n, 50), "rmax": np.full(n, 52),
         "cmax": np.full(n, 52), "sharpness": np.full(n, 0.95), "peak": peak,
         "sigma": np.ones(n)}
    m["sharpness"][0] = np.inf
    m["rmin"][6] = 0
    light = np.array([400.0, 10.0, 15.0, 20.0, 0.5, 1.0, 300.0, 300.0])
    asked = []

    def spill(ids):
        asked.append(ids.tolist())
        return light[ids], light[ids]

    reason = filters.basic_reasons(m, 200, 200, min_pixels=2, max_pixels=100,
                                   max_sharpness=0.9, border_margin=3, spill=spill)
    assert asked == [[1, 2, 3, 4, 5]]
    assert (reason[1:5] == 0).all() and reason[5] == filters.code("sharp")
    assert reason[6] == filters.code("border") and reason[7] == filters.code("small")
    assert m["untold"].tolist() == [False] * 4 + [True] + [False] * 3


def test_the_bright_stars_of_a_frame_binned_4x_are_kept():
    """The second real frame binned 4x: its stars fit sigmas of 0.20-0.34 px, and only
    3 of its 9 brightest spill light enough beside their peak to show wings: too few to
    tell its stars' width from a hot pixel's. All 9, every blob with a measured width,
    were dropped as narrow (and the frame never solved); 8 are kept now, as doubtful
    stars (the ninth is taken for a trail). Told not to demote doubtful stars, the
    extraction drops them as before (as narrow, or as sharp by the shape tests, which
    then keep no doubtful stars either)."""
    image = read_image(DATA / ALT60)
    brightest = extract_centroids(image).as_array()[:9, :2] / 4.0
    binned = _binned(image, 4)
    for demote in (True, False):
        res = extract_centroids(binned, demote_doubtful=demote)
        xy = res.as_array()
        d = np.hypot(brightest[:, None, 0] - xy[:, 0], brightest[:, None, 1] - xy[:, 1])
        found = d.min(axis=1) < 0.5
        if demote:
            assert found.sum() >= 8
            assert (res.flags[d[found].argmin(axis=1)] == "doubtful").all()
        else:
            assert found.sum() == 0
            near = np.hypot(brightest[:, None, 0] - res.rejected["x"],
                            brightest[:, None, 1] - res.rejected["y"]).min(axis=0) < 0.5
            assert np.isin(res.rejected["reason"][near], ("narrow", "sharp")).sum() >= 8


@pytest.mark.parametrize(("scale", "level"), [(1e-3, 1e6), (1e-6, 1e4), (1.0, 0.0)])
def test_a_float64_frame_on_a_level_float32_steps_over_keeps_its_stars(scale, level):
    """The rendered star frame (sky 1000 under 10 of noise) scaled by ``scale`` and set
    on a common ``level``, in float64: 1e6 under 0.01 of noise, 1e4 under 1e-5. Float32
    steps at such a level (0.06, 0.001) exceed the noise, and the working copy made
    without removing the level kept a frame of steps: 2 and 0 of the real frame's 36
    stars. Each finds the stars the frame finds as it is, at the same positions."""
    img, x, y, _ = star_frame(3, 1.5)
    plain = extract_centroids(img)
    res = extract_centroids(img * scale + level)
    assert found(plain, x, y).sum() >= 60  # (premise)
    assert len(res) == len(plain)
    np.testing.assert_allclose(res.as_array()[:, :2], plain.as_array()[:, :2], atol=1e-3)
    assert res.background_sigma / scale == pytest.approx(plain.background_sigma, rel=1e-3)
