"""Tests of skysolve.extraction.extract: centroid extraction against exactly known truth.

Synthetic frames come from skysolve/tests/frames.py, which integrates Gaussian PSFs over
every pixel with erf, so true star positions are exact.
"""

from __future__ import annotations

import importlib
import pickle

import numpy as np
import pytest

from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.extraction import (
    Centroid,
    ExtractionResult,
    centroids_to_array,
    extract_centroids,
)
from skysolve.tests.frames import (
    gradient_background,
    grid_stars,
    isolated,
    match_to_truth,
    pixel_integrated_gaussian_1d,
    render_stars,
    tess_like_frame,
)
from skysolve.tests.realframes import DATA  # noqa: E402

SEED_TESS = dict(sigma_threshold=300, min_pixels=4, max_pixels=10000,
                 local_bg_block_size=16, max_elongation=6.0)


# --------------------------------------------------------------------------------------
# helpers


def crlb_x(sigma_psf, flux, noise, frac=(0.0, 0.0), half=8):
    """Cramer-Rao bound on x for a pixel-integrated Gaussian in white noise.

    Fisher information of x alone (centre, flux, width and background are
    uncorrelated with x by symmetry for a star at a pixel centre; the sub-pixel
    phase ``frac`` changes it slightly).
    """
    edges = np.array([-half - 0.5]) + frac[0]
    c = np.array([0.0])
    d = 1e-4
    ex_p = pixel_integrated_gaussian_1d(edges, c + d, sigma_psf, 2 * half + 1)
    ex_m = pixel_integrated_gaussian_1d(edges, c - d, sigma_psf, 2 * half + 1)
    dex = (ex_p - ex_m) / (2 * d)
    ey = pixel_integrated_gaussian_1d(np.array([-half - 0.5]) + frac[1], c, sigma_psf,
                                      2 * half + 1)
    info = flux**2 * np.sum((ey[0][:, None] * dex[0][None, :]) ** 2) / noise**2
    return 1.0 / np.sqrt(info)


def synthetic_scene(sigma_psf, seed=0, noise=5.0, flux=(4000.0, 40000.0)):
    """512x480 frame: star grid, background gradient, hot pixels, a saturated star
    with a bleed column. Returns image and a dict of the truth."""
    rng = np.random.default_rng(seed)
    shape = (480, 512)
    h, w = shape
    x, y = grid_stars(shape, 32, rng)
    # keep a star-free patch for the saturated star (around col 400, row 240)
    sat_x, sat_y = 400.3 - w / 2, 240.6 - h / 2
    far = np.hypot(x - sat_x, y - sat_y) > 45
    x, y = x[far], y[far]
    f = np.exp(rng.uniform(np.log(flux[0]), np.log(flux[1]), len(x)))
    img = render_stars(shape, x, y, f, sigma_psf)
    img += render_stars(shape, [sat_x], [sat_y], [5e7], 1.5)
    img += gradient_background(shape, 200.0, 60.0)
    img += rng.normal(0.0, noise, shape)
    level = 60000.0
    img = np.minimum(img, level)
    # bleed column above and below the saturated core
    col = int(sat_x + w / 2)
    img[int(sat_y + h / 2) - 25:int(sat_y + h / 2) + 26, col] = level
    # hot pixels (singles and a pair) in star-free places: between grid nodes
    hot_rc = [(36, 36), (100, 164), (292, 68), (420, 292), (228, 132)]
    for r, c in hot_rc:
        img[r, c] += 8000.0
    img[356, 196] += 6000.0
    img[356, 197] += 5000.0
    hot_xy = np.array([(c + 0.5 - w / 2, r + 0.5 - h / 2) for r, c in hot_rc + [(356, 196)]])
    return img, dict(x=x, y=y, flux=f, sat=(sat_x, sat_y), hot=hot_xy, noise=noise)


# --------------------------------------------------------------------------------------
# accuracy on synthetic frames


def test_a_saturated_star_bleeding_off_the_frame_is_dropped():
    """The scene's saturated star with its bleed column run off the top edge: the edge
    cuts the flat top and bleed its position comes from (in a rendered telescope frame
    it lay 1.6 px off and moved the WCS 0.45" at the corners), so it is a 'border'
    rejection whatever border_margin; kept inside the frame, as the other tests check,
    and every star away from the column the same."""
    img, t = synthetic_scene(1.5)
    h, w = img.shape
    inside = extract_centroids(img)
    col, row = int(t["sat"][0] + w / 2), int(t["sat"][1] + h / 2)
    img[:row, col] = img[row, col]  # the bleed reaches row 0
    res = extract_centroids(img)
    assert inside.saturated.sum() == 1 and res.saturated.sum() == 0
    near = np.abs(res.rejected["x"] - t["sat"][0]) < 3  # (the bleed pulls y up)
    assert list(res.rejected["reason"][near]) == ["border"]
    # (the stars the extended bleed column runs through are lost to it; the others move
    # by the bleed's share of the background, ~1e-5 px)
    a, b = res.as_array(), inside.as_array()
    a, b = a[np.abs(a[:, 0] - t["sat"][0]) > 10], b[np.abs(b[:, 0] - t["sat"][0]) > 10]
    assert a.shape == b.shape
    np.testing.assert_allclose(a[:, :2], b[:, :2], rtol=0, atol=1e-3)


@pytest.mark.parametrize("sigma_psf", [1.5, 0.6])
def test_subpixel_positions_unbiased_and_near_noise_limit(sigma_psf):
    img, t = synthetic_scene(sigma_psf)
    res = extract_centroids(img)
    xy = res.as_array()
    assert res.image_width == 512 and res.image_height == 480
    # every star, the saturated one, nothing else (no hot pixels, no bleed pieces)
    assert len(res) == len(t["x"]) + 1
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], t["x"], t["y"], radius=0.5)
    assert np.all(idx >= 0)
    dx = xy[idx, 0] - t["x"]
    dy = xy[idx, 1] - t["y"]
    assert abs(np.mean(dx)) < 0.01 and abs(np.mean(dy)) < 0.01
    # bias does not depend on the sub-pixel phase (the classic centroid S-curve)
    phase = (t["x"] + 256) % 1.0
    for lo in (0.0, 0.25, 0.5, 0.75):
        sel = (phase >= lo) & (phase < lo + 0.25)
        assert abs(np.mean(dx[sel])) < 0.01
    # scatter near the Cramer-Rao bound (normalised per star)
    bound = np.array([crlb_x(sigma_psf, f, t["noise"]) for f in t["flux"]])
    z = np.concatenate([dx / bound, dy / bound])
    assert np.sqrt(np.mean(z**2)) < 1.4
    assert res.fitted[idx].all()


@pytest.mark.parametrize("sigma_psf", [1.0, 0.6])
def test_faint_stars_unbiased_and_near_noise_limit(sigma_psf):
    # peaks of ~10-30 sigma (up to ~70 when undersampled): mostly below the
    # free-width limit, so most fits use the brighter stars' median width; no
    # sub-pixel-phase bias even for undersampled PSFs
    dx, z, phase = [], [], []
    for seed in range(3):
        img, t = synthetic_scene(sigma_psf, seed=seed, flux=(300.0, 1000.0))
        xy = extract_centroids(img).as_array()
        idx, _ = match_to_truth(xy[:, 0], xy[:, 1], t["x"], t["y"], radius=1.0)
        assert np.mean(idx >= 0) > 0.9
        ok = idx >= 0
        d = xy[idx[ok], 0] - t["x"][ok]
        bound = np.array([crlb_x(sigma_psf, f, t["noise"]) for f in t["flux"][ok]])
        dx.append(d)
        z.append(d / bound)
        phase.append((t["x"][ok] + 256) % 1.0)
    dx, z, phase = (np.concatenate(v) for v in (dx, z, phase))
    assert np.sqrt(np.mean(z**2)) < 1.3
    for lo in (0.0, 0.25, 0.5, 0.75):
        sel = (phase >= lo) & (phase < lo + 0.25)
        assert abs(np.mean(dx[sel])) < 0.01


def test_hot_pixels_and_bleed_column_not_returned():
    img, t = synthetic_scene(1.5, seed=3)
    res = extract_centroids(img)
    xy = res.as_array()
    for hx, hy in t["hot"]:
        assert np.min(np.hypot(xy[:, 0] - hx, xy[:, 1] - hy)) > 3
    sx, sy = t["sat"]
    near_col = np.abs(xy[:, 0] - sx) < 3
    assert near_col.sum() == 1  # the star only, not the bleed trail
    k = np.flatnonzero(near_col)[0]
    assert res.saturated[k] and res.saturated.sum() == 1
    assert abs(xy[k, 1] - sy) < 1.0
    # the saturated star is the brightest; list sorted brightest first
    assert k == 0
    assert np.all(np.diff(xy[:, 2]) <= 0)


def test_hot_pixels_rejected_by_sharpness_even_with_min_pixels_1():
    img, t = synthetic_scene(1.5, seed=4)
    kept = extract_centroids(img, min_pixels=1)
    xy = kept.as_array()
    rej = kept.rejected
    for hx, hy in t["hot"][:-1]:
        assert np.min(np.hypot(xy[:, 0] - hx, xy[:, 1] - hy)) > 3
        # ... and listed as rejected, for their sharpness
        k = np.argmin(np.hypot(rej["x"] - hx, rej["y"] - hy))
        assert np.hypot(rej["x"][k] - hx, rej["y"][k] - hy) < 0.6 and rej["reason"][k] == "sharp"
    # without the sharpness cut (and the width test that also catches them) they are found
    loose = extract_centroids(img, min_pixels=1, max_sharpness=None,
                              reject_cosmic_rays=False).as_array()
    found = [np.min(np.hypot(loose[:, 0] - hx, loose[:, 1] - hy)) < 0.6
             for hx, hy in t["hot"][:-1]]
    assert all(found)


def test_undersampled_star_exactly_at_pixel_centre_convention():
    h, w = 64, 96
    # star centred on array pixel (row 20, col 30) -> x = 30.5 - 48, y = 20.5 - 32
    x0, y0 = 30 + 0.5 - w / 2, 20 + 0.5 - h / 2
    img = render_stars((h, w), [x0], [y0], [50000.0], 0.6) + 100.0
    img += np.random.default_rng(1).normal(0, 1.0, img.shape)
    res = extract_centroids(img, local_bg_block_size=None)
    assert len(res) == 1
    c = res.centroids[0]
    assert c.x == pytest.approx(-17.5, abs=2e-3)
    assert c.y == pytest.approx(-11.5, abs=2e-3)
    assert c.brightness == pytest.approx(50000.0, rel=0.05)


def test_tess_like_frame_with_seed_parameters():
    img, x, y, f, s = tess_like_frame(seed=7, shape=(1024, 1024), n_stars=2500)
    res = extract_centroids(img, **SEED_TESS)
    xy = res.as_array()
    iso = isolated(x, y, f, radius=6.0, flux_ratio=0.01)
    # expected peak pixel ~ F / (2 pi s^2) (centred); clearly above threshold
    peak = f / (2 * np.pi * s**2)
    target = iso & (peak > 3 * res.threshold) & (np.abs(x) < 505) & (np.abs(y) < 505)
    assert target.sum() > 500
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], x[target], y[target], radius=1.0)
    assert np.mean(idx >= 0) > 0.98
    assert np.median(d[idx >= 0]) <= 0.02
    assert res.background_sigma == pytest.approx(1.0, rel=0.1)
    assert res.num_blobs_raw >= len(res)


def test_matched_filter_finds_more_faint_stars():
    rng = np.random.default_rng(5)
    shape = (256, 256)
    x, y = grid_stars(shape, 16, rng, margin=12)
    f = np.full(len(x), 40.0)  # peak ~ 4.4 sigma of the noise: mostly missed unfiltered
    img = render_stars(shape, x, y, f, 1.2) + 50 + rng.normal(0, 1.0, shape)
    plain = extract_centroids(img, sigma_threshold=5, matched_filter_sigma=None)
    filt = extract_centroids(img, sigma_threshold=5, matched_filter_sigma=1.2)
    i1, _ = match_to_truth(*plain.as_array()[:, :2].T, x, y, radius=1.0)
    i2, d2 = match_to_truth(*filt.as_array()[:, :2].T, x, y, radius=1.0)
    assert (i2 >= 0).sum() > 1.5 * (i1 >= 0).sum()
    assert (i2 >= 0).mean() > 0.9
    # near the noise limit: median radial error ~1.18 x the 1-D Cramer-Rao bound
    assert np.median(d2[i2 >= 0]) < 1.5 * 1.18 * crlb_x(1.2, 40.0, 1.0)
    assert filt.threshold < plain.threshold  # scaled to the filtered noise


def test_auto_filter_takes_the_pass_with_more_stars_and_fits_only_what_it_needs(monkeypatch):
    """With the automatic matched filter, faint stars the first pass misses send the frame
    through the filter; the answer is the filtered pass's (the same stars and positions as
    asking for that filter), and the first pass's fits never run, as it cannot keep as many
    stars."""
    import importlib

    extract = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(5)
    shape = (256, 256)
    x, y = grid_stars(shape, 16, rng, margin=12)
    img = render_stars(shape, x, y, np.full(len(x), 40.0), 1.2) + 50 + rng.normal(0, 1.0, shape)
    fits, chosen = [], []
    fit, choose = extract._fit_positions, extract._auto_filter

    def counted_fit(*args, **kwargs):
        fits.append(len(args[-1]))
        return fit(*args, **kwargs)

    def recorded_choice(*args):
        chosen.append(choose(*args))
        return chosen[-1]

    monkeypatch.setattr(extract, "_fit_positions", counted_fit)
    monkeypatch.setattr(extract, "_auto_filter", recorded_choice)
    auto = extract_centroids(img, sigma_threshold=5)
    assert len(fits) == 1 and fits[0] >= len(auto)  # the filtered pass's blobs only
    assert chosen[0] is not None
    assert len(auto) > 1.5 * len(extract_centroids(img, sigma_threshold=5,
                                                   matched_filter_sigma=None))
    np.testing.assert_array_equal(
        auto.as_array(), extract_centroids(img, sigma_threshold=5,
                                           matched_filter_sigma=chosen[0]).as_array())


@pytest.mark.parametrize("shape", [(1, 1000), (2, 1000), (4, 1000), (1000, 1)])
def test_matched_filter_on_frames_thinner_than_its_kernel_holds_the_threshold(shape):
    """Edge replication folds the kernel's taps onto a thin frame's few rows: the filter
    averages less noise away than the full 2-D kernel, so the threshold is scaled to the
    folded weights. Pure noise gives no stars; stars at known places are still found."""
    rng = np.random.default_rng(3)
    false = 0
    for _ in range(10):
        noise = 100.0 + rng.normal(0.0, 5.0, shape)
        for mf in ("auto", 1.5):
            false += len(extract_centroids(noise, matched_filter_sigma=mf))
    assert false == 0
    wide = shape[1] > shape[0]
    t = np.array([-300.5, -100.25, 150.0, 320.75])  # along the strip, centred px
    x, y = (t, np.zeros(4)) if wide else (np.zeros(4), t)
    img = render_stars(shape, x, y, np.full(4, 3000.0), 1.2) + 100.0 + rng.normal(0, 5.0, shape)
    # (a strip's blobs are all long: its stars are judged by the threshold alone here)
    res = extract_centroids(img, matched_filter_sigma=1.5, max_elongation=None)
    along = res.as_array()[:, 0 if wide else 1]
    assert len(along) == 4
    assert np.abs(np.sort(along) - t).max() < 0.3


def test_the_threshold_of_a_long_strip_folds_only_its_short_axis():
    # a 4 x 6000 strip: the folded weights of the long axis would be a 6000 x 6000
    # matrix (288 MB; 12 GB for a 40000 px strip), and they equal the full kernel's
    import tracemalloc

    from skysolve.extraction.extract import _folded_rss, _gaussian_kernel, _threshold_scale
    from skysolve.extraction.options import ExtractionOptions

    opts = ExtractionOptions(matched_filter_sigma=1.5)
    kernel = _gaussian_kernel(1.5).astype(np.float64)
    tracemalloc.start()
    try:
        scale = _threshold_scale(opts, (4, 6000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6
    assert len(kernel) > 4
    expected = opts.sigma_threshold * _folded_rss(kernel, 4) * np.sqrt(np.sum(kernel ** 2))
    assert scale == pytest.approx(expected, rel=1e-12)
    assert scale == pytest.approx(_threshold_scale(opts, (6000, 4)), rel=1e-12)


# --------------------------------------------------------------------------------------
# filters and options


def test_max_centroids_keeps_the_brightest():
    img, _ = synthetic_scene(1.5, seed=8)
    full = extract_centroids(img)
    top = extract_centroids(img, max_centroids=10)
    assert len(top) == 10
    np.testing.assert_array_equal(top.as_array(), full.as_array()[:10])
    assert len(extract_centroids(img, max_centroids=0)) == 0


def _real_jpeg(name: str) -> np.ndarray:
    """A real frame as an 8-bit JPEG (quality 85) of its 1st-99.9th percentile stretch,
    the form of most finder and all-sky camera frames."""
    import io

    from PIL import Image

    from skysolve import read_image

    img = read_image(DATA / name)
    lo, hi = np.percentile(img, [1.0, 99.9])
    u8 = np.clip((img - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, "JPEG", quality=85)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def _few_stars(seed: int, n: int, recipe: list[str] | None) -> np.ndarray:
    """A 320x240 frame of up to ``n`` scattered Gaussian stars (sigma 1.2 px) over a sky
    of 100 +- 5, degraded by ``recipe`` at strength 0.5."""
    from skysolve.simulate import degrade as dg
    from skysolve.tests.frames import scattered_stars

    rng = np.random.default_rng(seed)
    shape = (240, 320)
    x, y = scattered_stars(rng, shape, n)
    flux = 10 ** rng.uniform(2.5, 4.5, len(x))
    img = render_stars(shape, x, y, flux, 1.2) + 100 + rng.normal(0, 5, shape)
    return dg.degrade(img, recipe, 0.5, seed=seed) if recipe else img


@pytest.mark.parametrize("frame", [
    "jpeg:" + name for name in sorted(p.name for p in DATA.glob("*.tiff"))] + [
    (0, 15, None), (0, 40, ["defocus"]), (1, 15, ["smear"])])
def test_max_centroids_cuts_the_list_of_the_automatic_filters_choice(frame):
    """With ``matched_filter_sigma='auto'`` (the default), ``max_centroids=k`` gives the
    first k stars of the uncut list: the same pass, flags and positions. (The choice
    between the unfiltered and the filtered pass counted the cut list's stars: the real
    frames as JPEGs, 84 and 95 stars, were cut from the other pass at k <= 10 and
    k <= 20, and so were frames of 15-40 simulated stars, plain, defocused or smeared,
    at k below their number of stars.)"""
    img = _real_jpeg(frame[5:]) if isinstance(frame, str) else _few_stars(*frame)
    full = extract_centroids(img)
    ref = full.as_array()
    assert len(ref) >= 14
    for k in (3, 5, 10, 20, 35):
        res = extract_centroids(img, max_centroids=k)
        got = res.as_array()
        assert len(got) == min(k, len(ref)), k
        np.testing.assert_allclose(got, ref[:k], rtol=0, atol=1e-9, err_msg=str(k))
        assert list(res.flags) == list(full.flags[:k]), k


def test_border_margin_drops_edge_stars():
    shape = (100, 100)
    x = np.array([-48.0, 0.3, 47.5])
    y = np.array([0.2, 0.1, -47.8])
    img = render_stars(shape, x, y, [20000.0] * 3, 1.0) + 10
    img += np.random.default_rng(2).normal(0, 1, shape)
    assert len(extract_centroids(img, local_bg_block_size=None)) == 3
    res = extract_centroids(img, local_bg_block_size=None, border_margin=5)
    assert len(res) == 1
    assert res.centroids[0].x == pytest.approx(0.3, abs=0.01)


def test_blended_pair_rejected_on_request():
    shape = (80, 120)
    x = np.array([-30.0, 20.0, 23.6])
    y = np.array([0.0, 0.0, 0.4])
    img = render_stars(shape, x, y, [30000.0, 30000.0, 20000.0], 1.0) + 10
    img += np.random.default_rng(3).normal(0, 1, shape)
    merged = extract_centroids(img, max_elongation=None).as_array()
    assert len(merged) == 2
    res = extract_centroids(img, max_elongation=None, deblend="reject").as_array()
    assert len(res) == 1
    assert res[0, 0] == pytest.approx(-30.0, abs=0.01)


def test_elongated_streak_rejected():
    shape = (100, 100)
    img = np.full(shape, 10.0) + np.random.default_rng(4).normal(0, 1, shape)
    img[50, 20:40] += 500.0  # a satellite / cosmic-ray streak
    img[49, 20:40] += 200.0
    img += render_stars(shape, [15.2], [-20.7], [20000.0], 1.0)
    res = extract_centroids(img, local_bg_block_size=None)
    assert len(res) == 1
    loose = dict(local_bg_block_size=None, max_elongation=None)
    assert len(extract_centroids(img, **loose, reject_cosmic_rays=False)) == 2
    # the cosmic-ray test (fitted width < 0.3 px across the streak) also catches it
    assert len(extract_centroids(img, **loose)) == 1


def test_short_diagonal_cosmic_rays_rejected():
    rng = np.random.default_rng(6)
    shape = (200, 200)
    x, y = grid_stars(shape, 40, rng, margin=20)
    img = render_stars(shape, x, y, np.full(len(x), 30000.0), 1.2) + 100.0
    img += rng.normal(0, 5.0, shape)
    # short diagonal cosmic-ray staircases (as the simulator makes them): too short
    # for the elongation limit, too broad for the sharpness limit
    track = {(0, 1): 953.0, (1, 0): 1306.0, (1, 1): 972.0, (2, -1): 794.0, (2, 0): 1125.0}
    tracks = [(30, 40), (110, 150), (170, 60)]
    for r, c in tracks:
        for (dr, dc), v in track.items():
            img[r + dr, c + dc] += v
    res = extract_centroids(img)
    assert len(res) == len(x)
    idx, d = match_to_truth(*res.as_array()[:, :2].T, x, y, radius=0.2)
    assert np.all(idx >= 0)
    kept = extract_centroids(img, reject_cosmic_rays=False)
    assert len(kept) == len(x) + len(tracks)


def test_global_and_local_background_agree_on_flat_sky():
    img, t = synthetic_scene(1.5, seed=9)
    img = img - gradient_background(img.shape, 200.0, 60.0) + 200.0
    a = extract_centroids(img, local_bg_block_size=None)
    b = extract_centroids(img, local_bg_block_size=0)
    c = extract_centroids(img, local_bg_block_size=32)
    np.testing.assert_array_equal(a.as_array(), b.as_array())
    assert len(a) == len(c)
    idx, d = match_to_truth(*c.as_array()[:, :2].T, *a.as_array()[:, :2].T, radius=0.5)
    assert np.all(idx >= 0) and np.max(d) < 0.01
    assert a.background_mean == pytest.approx(200.0, abs=1.0)


def test_background_blocks_lifted_by_bright_stars_are_replaced():
    from skysolve.extraction.background import estimate_background

    rng = np.random.default_rng(12)
    shape = (128, 128)
    img = 100.0 + rng.normal(0, 2.0, shape)
    # bright stars filling most of one 16 px block each (one in a corner block):
    # their block medians are lifted by several sigma
    img += render_stars(shape, [-23.5, -55.5], [-7.5, -55.5], [1e6, 1e6], 1.5)
    raw = np.median(img[48:64, 32:48])
    assert raw > 105.0
    bg = estimate_background(img, 16)
    assert bg.grid.shape == (8, 8)
    assert np.all(np.abs(bg.grid - 100.0) < 1.0)
    assert bg.sigma == pytest.approx(2.0, rel=0.1)
    # a smooth ramp is not mistaken for outliers, edges included
    ramp = 100.0 + 0.5 * np.arange(128)[None, :] + 0.3 * np.arange(128)[:, None]
    bg = estimate_background(ramp + rng.normal(0, 0.5, shape), 16)
    err = bg.full(np.float64) - ramp
    assert np.abs(err).max() < 0.8  # block medians of 64 samples: SE ~0.08
    assert abs(err.mean()) < 0.05  # no offset from where the samples sit in a block


def test_odd_sized_image_and_strong_gradient():
    rng = np.random.default_rng(10)
    shape = (301, 457)
    x, y = grid_stars(shape, 30, rng, margin=15)
    f = np.full(len(x), 20000.0)
    yy, xx = np.mgrid[0:301, 0:457]
    sky = 500 + 3.0 * xx + 2.0 * yy + 200 * np.sin(xx / 80.0)  # +1500 across the frame
    img = render_stars(shape, x, y, f, 1.3) + sky + rng.normal(0, 3.0, shape)
    res = extract_centroids(img, local_bg_block_size=32)
    idx, d = match_to_truth(*res.as_array()[:, :2].T, x, y, radius=0.3)
    assert np.all(idx >= 0) and len(res) == len(x)
    assert np.max(d) < 0.02


# --------------------------------------------------------------------------------------
# real frames


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.tiff")))
def test_real_frames(name):
    tifffile = pytest.importorskip("tifffile")
    img = tifffile.imread(DATA / name)
    assert img.shape == (768, 1024) and img.dtype == np.uint16
    # Parameters for these noisy (sigma ~ 130 ADU) star-tracker frames: the default
    # 5-sigma threshold with a 1 px matched filter (stars have sigma ~ 0.7-1 px).
    params = dict(sigma_threshold=5.0, matched_filter_sigma=1.0)
    res = extract_centroids(img, **params)
    assert len(res) >= 60
    assert res.fitted.mean() > 0.9
    xy = res.as_array()
    assert np.all(np.abs(xy[:, 0]) < 512) and np.all(np.abs(xy[:, 1]) < 384)
    # the bright stars are stable against a different background grid
    other = extract_centroids(img, **params, local_bg_block_size=32).as_array()
    idx, d = match_to_truth(other[:, 0], other[:, 1], xy[:30, 0], xy[:30, 1], radius=1.0)
    assert np.all(idx >= 0) and np.median(d) < 0.02
    # and they are not noise: a pure-noise frame with the same statistics gives ~nothing
    rng = np.random.default_rng(0)
    fake = rng.normal(res.background_mean, res.background_sigma, img.shape)
    assert len(extract_centroids(fake, **params)) <= 2


# --------------------------------------------------------------------------------------
# input handling


def _integer_scene():
    img, _ = synthetic_scene(1.0, seed=11, flux=(3000.0, 20000.0))
    return np.clip(np.round(img / 2.0), 0, 30000)  # fits int16, integer valued


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32, np.int64, np.uint32,
                                   np.float32, np.float64])
def test_dtype_variants_give_identical_centroids(dtype):
    base = _integer_scene()
    ref = extract_centroids(base.astype(np.float32))
    res = extract_centroids(base.astype(dtype))
    np.testing.assert_array_equal(res.as_array(), ref.as_array())
    np.testing.assert_array_equal(res.covariances(), ref.covariances())
    assert len(ref) > 50


def test_big_endian_and_non_contiguous_inputs():
    base = _integer_scene()
    ref = extract_centroids(base.astype(np.float32)[:, :400])
    wide = np.zeros((480, 600), dtype=">i2")  # FITS data arrive big-endian
    wide[:, :512] = base.astype(">i2")
    res = extract_centroids(wide[:, :400])  # a non-contiguous view, like the seed's crop
    np.testing.assert_array_equal(res.as_array(), ref.as_array())
    res = extract_centroids(base.astype(">f4")[:, :400])
    np.testing.assert_array_equal(res.as_array(), ref.as_array())


def test_uint8_and_fortran_order_and_lists():
    base = _integer_scene()
    img8 = np.clip(base / 20.0, 0, 255).astype(np.uint8)  # noise < 1 count
    r8 = extract_centroids(img8)
    assert len(r8) > 30
    f32 = base.astype(np.float32)
    np.testing.assert_array_equal(extract_centroids(np.asfortranarray(f32)).as_array(),
                                  extract_centroids(f32).as_array())
    small = f32[:40, :50]
    np.testing.assert_array_equal(extract_centroids(small.tolist()).as_array(),
                                  extract_centroids(small).as_array())


def test_nan_and_inf_pixels_are_ignored():
    img, t = synthetic_scene(1.5, seed=12)
    ref = extract_centroids(img)
    bad = img.copy()
    rng = np.random.default_rng(0)
    r = rng.integers(0, 480, 300)
    c = rng.integers(0, 512, 300)
    bad[r, c] = np.nan
    bad[10, :] = np.inf
    bad[:, 5] = -np.inf
    # a NaN in the wing of one star (1.2 px from its centre)
    k = 40
    sr = int(t["y"][k] + 240)
    sc = int(t["x"][k] + 256)
    bad[sr, sc + 2] = np.nan
    res = extract_centroids(bad)
    xy = res.as_array()
    assert np.all(np.isfinite(xy)) and np.all(np.isfinite(res.covariances()))
    assert np.isfinite(res.background_mean) and np.isfinite(res.background_sigma)
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], t["x"], t["y"], radius=0.5)
    hit = idx >= 0
    assert hit.mean() > 0.95
    assert d[k] < 0.03  # the star with a NaN pixel is still measured well
    assert abs(len(res) - len(ref)) <= 5


def test_noise_free_frame():
    shape = (120, 160)
    x = np.array([-40.3, 10.25, 50.6])
    y = np.array([-20.1, 30.7, -35.45])
    img = render_stars(shape, x, y, [5000.0, 3000.0, 1000.0], 1.3, half_width=6) + 100.0
    res = extract_centroids(img)
    assert len(res) == 3
    np.testing.assert_allclose(res.as_array()[:, :2], np.column_stack([x, y]), atol=1e-3)


def test_masked_array_pixels_are_ignored():
    img, t = synthetic_scene(1.5, seed=16)
    mask = np.zeros(img.shape, dtype=bool)
    k = 10
    r, c = int(t["y"][k] + 240), int(t["x"][k] + 256)
    mask[r - 1:r + 2, c - 1:c + 2] = True  # hide one star's core
    res = extract_centroids(np.ma.MaskedArray(img, mask=mask))
    xy = res.as_array()
    assert np.all(np.isfinite(xy))
    # the star is still found from its wings, less precisely
    assert np.min(np.hypot(xy[:, 0] - t["x"][k], xy[:, 1] - t["y"][k])) < 0.5
    nan_img = img.copy()
    nan_img[mask] = np.nan
    np.testing.assert_array_equal(xy, extract_centroids(nan_img).as_array())


def test_blank_images_give_empty_results():
    for img in (np.zeros((50, 60)), np.full((50, 60), 7.0, dtype=np.float32),
                np.full((50, 60), np.nan), np.full((40, 40), 3, dtype=np.uint16)):
        res = extract_centroids(img)
        assert len(res) == 0 and res.centroids == []
        assert res.as_array().shape == (0, 3)
        assert res.covariances().shape == (0, 2, 2)
        assert res.image_width == img.shape[1] and res.image_height == img.shape[0]


@pytest.mark.parametrize("bad, exc", [
    (np.zeros((4, 5, 3)), InvalidArgumentError),
    (np.zeros(10), InvalidArgumentError),
    (np.zeros((0, 5)), InvalidArgumentError),
    (np.zeros((0, 0)), InvalidArgumentError),
    (np.array([["a", "b"], ["c", "d"]]), InvalidTypeError),
    (np.zeros((3, 3), dtype=complex), InvalidTypeError),
    (np.zeros((3, 3), dtype=bool), InvalidTypeError),
    (None, InvalidTypeError),
    ("image.png", InvalidTypeError),
])
def test_bad_images_raise_naming_image(bad, exc):
    with pytest.raises(exc, match="image"):
        extract_centroids(bad)


def test_a_colour_image_is_refused_with_the_way_to_convert_it():
    # the message names the conversion, and following it finds the grey frame's stars
    from skysolve.io.images import read_image
    from skysolve.tests.realframes import ALT40

    grey = read_image(DATA / ALT40)
    rgb = np.dstack([grey] * 3)
    with pytest.raises(InvalidArgumentError, match=r"skysolve\.read_image\(image\)"):
        extract_centroids(rgb)
    converted = extract_centroids(read_image(rgb))
    np.testing.assert_allclose(converted.as_array(), extract_centroids(grey).as_array(),
                               atol=0.05)


@pytest.mark.parametrize("kwargs, name", [
    (dict(sigma_threshold=0), "sigma_threshold"),
    (dict(sigma_threshold=-2.0), "sigma_threshold"),
    (dict(sigma_threshold=float("nan")), "sigma_threshold"),
    (dict(sigma_threshold="5"), "sigma_threshold"),
    (dict(min_pixels=0), "min_pixels"),
    (dict(min_pixels=2.5), "min_pixels"),
    (dict(max_pixels=2, min_pixels=3), "max_pixels"),
    (dict(max_centroids=-1), "max_centroids"),
    (dict(local_bg_block_size=2), "local_bg_block_size"),
    (dict(max_elongation=0.5), "max_elongation"),
    (dict(matched_filter_sigma=0), "matched_filter_sigma"),
    (dict(max_sharpness=-1), "max_sharpness"),
    (dict(saturation_level="high"), "saturation_level"),
    (dict(border_margin=-1), "border_margin"),
    (dict(min_pixels=True), "min_pixels"),
])
def test_bad_parameters_raise_naming_them(kwargs, name):
    with pytest.raises((InvalidArgumentError, InvalidTypeError), match=name):
        extract_centroids(np.zeros((20, 20)), **kwargs)


# --------------------------------------------------------------------------------------
# Centroid, ExtractionResult, centroids_to_array


class _Shift:
    """A toy distortion model: distort adds (1, -2), undistort removes it."""

    def distort(self, x, y):
        return np.asarray(x) + 1.0, np.asarray(y) - 2.0

    def undistort(self, x, y):
        return np.asarray(x) - 1.0, np.asarray(y) + 2.0


def test_centroid_api():
    cov = np.array([[1.0, 0.2], [0.2, 2.0]])
    c = Centroid(1.5, -2.0, 100.0, cov=cov)
    assert (c.x, c.y, c.brightness) == (1.5, -2.0, 100.0)
    np.testing.assert_array_equal(c.cov, cov)
    d = c.with_offset(0.5, 1.0)
    assert (d.x, d.y, d.brightness) == (2.0, -1.0, 100.0)
    np.testing.assert_array_equal(d.cov, cov)
    e = c.distort(_Shift())
    assert (e.x, e.y) == (2.5, -4.0) and e.brightness == 100.0
    assert e.undistort(_Shift()) == c
    assert c != d and c == Centroid(1.5, -2.0, 100.0, cov=cov.copy())
    assert c != Centroid(1.5, -2.0, 100.0)
    assert "Centroid(x=1.5000, y=-2.0000, brightness=100)" == repr(c)
    plain = Centroid(3, 4)
    assert plain.brightness is None
    np.testing.assert_array_equal(plain.cov, np.zeros((2, 2)))
    assert not hasattr(plain, "__dict__")  # slots: light objects
    with pytest.raises(InvalidArgumentError, match="cov"):
        Centroid(0, 0, cov=np.eye(3))
    with pytest.raises(InvalidTypeError, match="distortion"):  # tetra3rs's argument name
        c.distort(distortion=object())


def test_centroids_are_hashable_like_tetra3rs():
    """tetra3rs's centroids go into sets and dicts; equal ones hash alike."""
    a = Centroid(1.5, -2.0, 100.0, cov=np.eye(2))
    same = Centroid(1.5, -2.0, 100.0, cov=np.eye(2))
    other = Centroid(1.5, -2.0, 101.0)
    assert hash(a) == hash(same)
    assert len({a, same, other}) == 2
    index = {c: i for i, c in enumerate([a, other])}
    assert index[same] == 0 and index[Centroid(1.5, -2.0, 101.0)] == 1
    img, _ = synthetic_scene(1.5, seed=13)
    found = extract_centroids(img).centroids
    assert len(set(found)) == len(found)


def test_centroid_distortion_with_the_library_models():
    from skysolve.camera.distortion import RadialDistortion

    model = RadialDistortion(k1=2e-7, p1=1e-6)
    c = Centroid(300.0, -200.0, 7.0, cov=np.eye(2))
    d = c.distort(model)
    ex, ey = model.distort(300.0, -200.0)
    assert (d.x, d.y) == (pytest.approx(float(ex)), pytest.approx(float(ey)))
    assert d.x != c.x and d.brightness == 7.0
    np.testing.assert_array_equal(d.cov, np.eye(2))
    back = d.undistort(model)
    assert back.x == pytest.approx(300.0, abs=1e-3) and back.y == pytest.approx(-200.0, abs=1e-3)


def test_pickling_round_trips():
    c = Centroid(1.25, 2.5, 3.0, cov=np.eye(2) * 0.7)
    assert pickle.loads(pickle.dumps(c)) == c
    assert pickle.loads(pickle.dumps(Centroid(1, 2))) == Centroid(1, 2)
    img, _ = synthetic_scene(1.5, seed=13)
    res = extract_centroids(img)
    _ = res.centroids  # the cached list is not pickled; it is rebuilt
    back = pickle.loads(pickle.dumps(res))
    assert isinstance(back, ExtractionResult) and len(back) == len(res)
    np.testing.assert_array_equal(back.as_array(), res.as_array())
    np.testing.assert_array_equal(back.covariances(), res.covariances())
    assert back.centroids == res.centroids
    for attr in ("image_width", "image_height", "background_mean", "background_sigma",
                 "threshold", "num_blobs_raw"):
        assert getattr(back, attr) == getattr(res, attr)
    np.testing.assert_array_equal(back.saturated, res.saturated)


def test_result_views_agree():
    img, _ = synthetic_scene(0.6, seed=14)
    res = extract_centroids(img)
    arr = res.as_array()
    assert arr.shape == (len(res), 3) and arr.dtype == np.float64
    cs = res.centroids
    assert [c.x for c in cs] == arr[:, 0].tolist()
    assert [c.brightness for c in cs] == arr[:, 2].tolist()
    covs = res.covariances()
    np.testing.assert_array_equal(cs[3].cov, covs[3])
    assert np.all(covs[:, 0, 0] > 0) and np.all(covs[:, 1, 1] > 0)
    np.testing.assert_array_equal(covs[:, 0, 1], covs[:, 1, 0])
    # a result built from a list of centroids behaves the same
    again = ExtractionResult(cs, res.image_width, res.image_height, res.background_mean,
                             res.background_sigma, res.threshold, res.num_blobs_raw)
    np.testing.assert_array_equal(again.as_array(), arr)
    np.testing.assert_array_equal(again.covariances(), covs)
    assert "ExtractionResult(" in repr(res)


def test_the_centroid_list_is_the_callers_own():
    """``centroids`` handed out the result's own list: reversing or trimming it changed
    the result (its length, its brightest-first order, and what a later solve of it
    matched). Each call gives a new list, as tetra3rs's does."""
    img, _ = synthetic_scene(0.6, seed=14)
    res = extract_centroids(img)
    before = res.as_array().copy()
    cs = res.centroids
    cs.reverse()
    del cs[:5]
    assert len(res) == len(res.centroids) == len(before) == len(cs) + 5
    assert [c.x for c in res.centroids] == before[:, 0].tolist()
    assert [c.x for c in res] == before[:, 0].tolist() and res[0].x == before[0, 0]
    assert res.centroids is not res.centroids


def test_centroids_to_array_forms_and_errors():
    cs = [Centroid(1, 2, 30), Centroid(3, 4, 20)]
    xy, b = centroids_to_array(cs)
    np.testing.assert_array_equal(xy, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(b, [30, 20])
    xy, b = centroids_to_array([Centroid(1, 2), Centroid(3, 4)])
    assert b is None and xy.shape == (2, 2)
    xy, b = centroids_to_array([Centroid(1, 2, 5.0), Centroid(3, 4)])
    assert b[0] == 5.0 and np.isnan(b[1])
    xy, b = centroids_to_array(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert b is None and xy.dtype == np.float64
    xy, b = centroids_to_array([[1, 2, 9], [3, 4, 8]])
    np.testing.assert_array_equal(b, [9, 8])
    xy, b = centroids_to_array([])
    assert xy.shape == (0, 2)
    img, _ = synthetic_scene(1.5, seed=15)
    res = extract_centroids(img)
    xy, b = centroids_to_array(res)
    np.testing.assert_array_equal(np.column_stack([xy, b]), res.as_array())
    with pytest.raises(InvalidArgumentError, match="centroids"):
        centroids_to_array(np.zeros((3, 4)))
    with pytest.raises(InvalidArgumentError, match="centroids"):
        centroids_to_array(np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="non-finite"):
        centroids_to_array([[np.nan, 1.0]])
    with pytest.raises(InvalidTypeError, match="stars"):
        centroids_to_array("abc", name="stars")
    with pytest.raises(InvalidTypeError, match="centroids"):
        centroids_to_array(None)
    with pytest.raises(InvalidTypeError, match="centroids"):
        centroids_to_array([object(), object()])


# --------------------------------------------------------------------------------------
# tetra3rs's other extraction calls: CentroidExtractor, extract_centroids_fast, threads


def test_centroid_extractor_keeps_its_settings():
    from skysolve.extraction import CentroidExtractor, ExtractionOptions

    img, _ = synthetic_scene(1.5, seed=2)
    default = CentroidExtractor()
    assert repr(default) == "CentroidExtractor()"
    np.testing.assert_array_equal(default.extract(img).as_array(),
                                  extract_centroids(img).as_array())
    strict = CentroidExtractor(sigma_threshold=40.0, border_margin=5)
    assert repr(strict) == "CentroidExtractor(sigma_threshold=40.0, border_margin=5)"
    np.testing.assert_array_equal(
        strict.extract(img).as_array(),
        extract_centroids(img, sigma_threshold=40.0, border_margin=5).as_array())
    # arguments of a call override the held settings for that call only
    np.testing.assert_array_equal(strict.extract(img, 5.0).as_array(),
                                  extract_centroids(img, border_margin=5).as_array())
    assert len(strict.extract(img)) < len(strict.extract(img, sigma_threshold=5.0))
    back = pickle.loads(pickle.dumps(strict))
    assert back.options.sigma_threshold == 40.0 and repr(back) == repr(strict)
    opts = ExtractionOptions(max_centroids=7)
    assert len(CentroidExtractor(opts).extract(img)) == 7
    with pytest.raises(InvalidTypeError, match="options"):
        CentroidExtractor({"sigma_threshold": 5})
    with pytest.raises(InvalidTypeError, match="sigma_thresold"):
        CentroidExtractor(sigma_thresold=5)


def test_fast_extraction_intensity_centroids_with_tetra3rs_argument_order():
    from skysolve.extraction import extract_centroids_fast

    img, t = synthetic_scene(1.5, seed=4)
    res = extract_centroids_fast(img, sigma_threshold=5.0)
    assert not res.fitted.any()
    xy = res.as_array()
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], t["x"], t["y"], radius=1.0)
    assert (idx >= 0).mean() > 0.95
    assert np.median(d[idx >= 0]) < 0.15  # an intensity centroid, not the fit (< 0.01)
    # positional: (image, sigma_threshold, bg_grid, min_pixels, ...)
    np.testing.assert_array_equal(extract_centroids_fast(img, 5.0, 32, 4).as_array(),
                                  extract_centroids_fast(img, bg_grid=32,
                                                         min_pixels=4).as_array())
    with pytest.raises(InvalidArgumentError, match="bg_grid"):
        extract_centroids_fast(img, bg_grid=2)
    with pytest.raises(TypeError):
        extract_centroids_fast(img, 5.0, 64, 2, None, 0.9, None, 10000, None, 0, 2)


def test_threads_are_checked_and_change_nothing():
    img, _ = synthetic_scene(0.6, seed=5)
    ref = extract_centroids(img, threads=1).as_array()
    for threads in (None, 2, 7):
        np.testing.assert_array_equal(extract_centroids(img, threads=threads).as_array(), ref)
    for bad in (0, -1, 10**6):
        with pytest.raises(InvalidArgumentError, match="threads"):
            extract_centroids(img, threads=bad)
    with pytest.raises(TypeError):  # keyword-only, as in tetra3rs
        extract_centroids(img, 5.0, 3, 10000, None, 64, 3.0, 1.5, 0.9, None, "off", 0, 2)


def test_deblend_takes_tetra3rs_values_only():
    img, _ = synthetic_scene(1.5, seed=6)
    assert len(extract_centroids(img, deblend="off")) == len(extract_centroids(img))
    with pytest.raises(InvalidArgumentError, match="deblend"):
        extract_centroids(img, deblend="split")


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int16, ">i2"])
def test_block_levels_from_camera_integers_are_the_float_ones(dtype):
    """The background's block medians taken from a camera's integers (faster to partition)
    are those of the float32 working copy, to the bit: odd and even sample counts,
    partial edge blocks, ties everywhere."""
    from skysolve.extraction.background import _block_levels

    rng = np.random.default_rng(21)
    hi = 200 if np.dtype(dtype).itemsize == 1 else 3000
    img = rng.integers(0, hi, (333, 517)).astype(dtype)
    for bs in (7, 16, 30, 64):
        np.testing.assert_array_equal(_block_levels(img, bs),
                                      _block_levels(img.astype(np.float32), bs))


def test_an_all_sky_frame_with_a_dark_border_is_thresholded_at_its_sky_noise():
    """A circular fisheye's sky (noise 28) inside a dark border (noise 5) covering 44 % of a
    1600x1200 frame: the blocks are small for the sample there, and the noise is measured
    over groups of them; with the global sigma (the border's, nearly) 1,075 noise peaks of
    the sky were kept as stars."""
    rng = np.random.default_rng(1)
    h, w = 1200, 1600
    yy, xx = np.mgrid[:h, :w]
    disc = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 < 580 ** 2
    r, t = 560 * np.sqrt(rng.random(400)), 2 * np.pi * rng.random(400)
    x, y = r * np.cos(t), r * np.sin(t)
    f = np.exp(rng.uniform(np.log(2e3), np.log(2e5), 400))
    sky = render_stars((h, w), x, y, f, 1.2) + 1000 + rng.normal(0, 28, (h, w))
    img = np.where(disc, sky, 100 + rng.normal(0, 5, (h, w))).astype(np.float32)
    xy = extract_centroids(img).as_array()
    idx, _ = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.5)
    assert np.mean(idx >= 0) > 0.9
    d = np.hypot(xy[:, None, 0] - x[None], xy[:, None, 1] - y[None]).min(axis=1)
    assert np.sum(d > 1.5) <= 5


def test_a_raw_bayer_frame_finds_its_stars():
    """A raw colour frame (RGGB gains 0.9, 1, 1, 0.85 and a black level): its four 2x2
    phases see the sky at different levels; taken as they are, the green pixels made one
    blob of the whole sky and no star was found."""
    rng = np.random.default_rng(2)
    h, w = 384, 512
    x, y = rng.uniform(10 - w / 2, w / 2 - 10, 80), rng.uniform(10 - h / 2, h / 2 - 10, 80)
    f = np.exp(rng.uniform(np.log(3e3), np.log(1e5), 80))
    img = render_stars((h, w), x, y, f, 1.3) + 1000 + rng.normal(0, 10, (h, w))
    gain = np.ones((h, w))
    gain[0::2, 0::2], gain[1::2, 1::2] = 0.9, 0.85
    raw = np.round(img * gain + 64).astype(np.uint16)
    xy = extract_centroids(raw).as_array()
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.0)
    assert np.mean(idx >= 0) > 0.85 and len(xy) - np.sum(idx >= 0) <= 2


def test_a_large_raw_bayer_frame_measures_the_noise_of_every_phase():
    """A raw colour frame whose green pixels are three times as noisy as its red and blue
    ones (a DSLR's sky: twice the signal in green). The noise sample took every 6th pixel
    of a 1000x1000 frame, starting at the 3rd: only blue pixels (sigma 10), so 5 sigma
    was 1.7 of the green pixels' and thousands of noise peaks were sources."""
    rng = np.random.default_rng(7)
    h = w = 1000
    noise = np.full((h, w), 30.0)
    noise[0::2, 0::2] = noise[1::2, 1::2] = 10.0
    level = np.full((h, w), 2600.0)
    level[0::2, 0::2], level[1::2, 1::2] = 2300.0, 2250.0
    x, y = rng.uniform(20 - w / 2, w / 2 - 20, (2, 30))
    stars = render_stars((h, w), x, y, np.full(30, 2e5), 1.5)
    raw = np.round(level + stars + rng.normal(0.0, 1.0, (h, w)) * noise).astype(np.uint16)
    found = extract_centroids(raw, matched_filter_sigma=None)
    # half the pixels at sigma 10 and half at 30: a median absolute deviation of 10.8
    # (erf(10.8 / 10 / sqrt 2) + erf(10.8 / 30 / sqrt 2) = 1), a robust sigma
    # (MAD / 0.6745) of 16, clipped at 3 sigma a little less
    assert 13.0 < found.background_sigma < 17.0
    xy = found.as_array()
    idx, _ = match_to_truth(xy[:, 0], xy[:, 1], x, y, radius=1.0)
    assert np.sum(idx >= 0) >= 27 and len(xy) - np.sum(idx >= 0) <= 1  # (90 found)


def test_one_channel_with_a_third_axis_is_the_image():
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-100, 100, 20), rng.uniform(-70, 70, 20)
    img = render_stars((160, 240), x, y, np.full(20, 5e3), 1.2) + 100 + rng.normal(0, 3, (160, 240))
    want = extract_centroids(img).as_array()
    for one in (img[None], img[:, :, None]):
        np.testing.assert_array_equal(extract_centroids(one).as_array(), want)


def test_auto_saturation_counts_the_top_pixels_across_rows():
    """The automatic saturation level needs 3 pixels near a top 50 sigmas up (or 4 tied
    at a lower one), wherever they lie: one a row on 3 rows, 3 on one row, or 2 spread
    over rows (too few); the rows' maxima given or not, integers or float32."""
    extract = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(21)
    for dtype in (np.uint16, np.float32):
        for spots, top, want in ((((5, 7), (40, 9), (77, 100)), 4000, 3996.0),
                                 (((5, 7), (5, 30), (5, 31)), 4000, 3996.0),
                                 (((5, 7), (60, 9)), 4000, None),
                                 (((5, 7), (6, 9), (70, 1), (71, 2)), 130, 126.0),
                                 (((5, 7), (70, 1), (71, 2)), 130, None)):
            frame = np.round(rng.normal(100.0, 0.3, (90, 120))).astype(dtype)
            for r, c in spots:
                frame[r, c] = top
            frame[50, 50] = top - 10  # (a star below the top: no saturation by itself)
            for row_max in (None, frame.max(axis=1)):
                got = extract._auto_saturation(frame, 100.0, 0.8, row_max)
                assert got == want, (dtype, spots, row_max is None)


def test_a_clipped_star_is_placed_at_its_plateau_not_pulled_to_its_neighbour():
    """A clipped star with two bright unclipped neighbours 5 px away (a crowded field on
    a coarse scale): their light merges into its blob and pulled the intensity centroid
    1.4 px towards them; the centre of the clipped plateau is the star's. A lone
    clipped star keeps its intensity centroid (finer than the plateau's centre), and
    so does a star bleeding along its column, the charge centred on the star."""
    rng = np.random.default_rng(3)
    shape = (100, 140)
    xs, ys = np.array([-40.3, 30.6]), np.array([-10.2, 15.7])
    img = render_stars(shape, xs, ys, [4e6, 4e6], 1.5)
    # two unclipped neighbours 5 px away on one side
    img += render_stars(shape, xs[0] + np.array([5.0, 4.5]), ys[0] + np.array([1.0, -2.5]),
                        [2.2e5, 2.2e5], 1.5)
    clip = 20000.0
    img = np.minimum(img + 200.0 + rng.normal(0.0, 5.0, shape), clip)
    # a third star bleeding along its column: its charge spilled up the column
    x3, y3 = 0.4, -30.3
    star = render_stars(shape, [x3], [y3], [6e6], 1.5)
    col = int(round(x3 + shape[1] / 2 - 0.5))
    row = int(round(y3 + shape[0] / 2 - 0.5))
    img[row - 6:row + 7, col] = clip  # a symmetric bleed, 13 px long
    img = np.maximum(img, np.minimum(star + 200.0, clip))
    res = extract_centroids(img, saturation_level=clip - 100.0)
    xy = res.as_array()
    sat = res.saturated
    for x0, y0 in ((xs[0], ys[0]), (xs[1], ys[1]), (x3, y3)):
        d = np.hypot(xy[:, 0] - x0, xy[:, 1] - y0)
        i = int(np.argmin(d))
        assert sat[i] and d[i] < 0.35, (x0, y0, d[i])


def test_auto_saturation_of_clipped_stars_that_do_not_tie():
    """A JPEG's clipped stars: plateaus spread over a few counts below 255 (its
    compression), on a sky whose noise (12 counts: a stretched crowded sky) puts the top
    less than 50 sigmas up, with no 4 pixels tied at the top. Three such stars make a
    clip, its level a tenth of the height below the top (at most 5 sigma); two do not,
    nor does one wide flat-topped blob however many pixels it has at its top."""
    extract = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:120, 0:160]

    def frame(centres, plateau_px=2.5):
        img = 35.0 + rng.normal(0.0, 12.0, (120, 160))
        for r, c in centres:
            d = np.hypot(yy - r, xx - c)
            star = 40.0 + 260.0 * np.exp(-0.5 * (np.maximum(d - plateau_px, 0.0) / 1.5) ** 2)
            img = np.maximum(img, np.where(d < 9, star, 0.0))
        # clipped at 255, then the compression's few counts over the plateaus
        img = np.minimum(img, 255.0) - rng.uniform(0.0, 4.0, img.shape) * (img >= 255.0)
        return img.astype(np.float32)

    three = frame([(30, 30), (80, 50), (60, 130)])
    top = float(three.max())
    assert np.count_nonzero(three == top) < 4
    got = extract._auto_saturation(three, 35.0, 12.0)
    assert got == pytest.approx(top - 0.1 * (top - 35.0), rel=1e-6)
    assert extract._auto_saturation(frame([(30, 30), (80, 50)]), 35.0, 12.0) is None
    assert extract._auto_saturation(frame([(60, 80)], plateau_px=8.0), 35.0, 12.0) is None
    # the stars are flagged and kept
    found = extract_centroids(three)
    assert found.saturated.sum() == 3


@pytest.mark.parametrize("shape", [(768, 1024), (9, 13), (16, 16), (33, 7)])
@pytest.mark.parametrize("phase", [(0, 0), (3, 5), (7, 7), (7, 0)])
def test_jpeg_blocks_count_and_spread_by_each_pixels_block(shape, phase):
    """A JPEG's 8x8 blocks whose grid starts at ``phase`` (the rows and columns before it
    partial blocks of their own): per-block counts and the block map spread back over
    the pixels, against each pixel's block index ``((r - pr + 8) // 8, (c - pc + 8) // 8)``."""
    extract = importlib.import_module("skysolve.extraction.extract")
    rng = np.random.default_rng(sum(shape) + 10 * phase[0] + phase[1])
    h, w = shape
    pr, pc = phase
    brow = (np.arange(h) - pr + 8) // 8
    bcol = (np.arange(w) - pc + 8) // 8
    nbr, nbc = brow[-1] + 1, bcol[-1] + 1
    index = brow[:, None] * nbc + bcol[None, :]
    blocks = extract._JpegBlocks(shape, pr, pc)
    mask = rng.random(shape) < 0.03
    counts = blocks.count(mask)
    assert counts.shape == (nbr, nbc)
    np.testing.assert_array_equal(counts.ravel(),
                                  np.bincount(index[mask], minlength=nbr * nbc))
    per_block = rng.random((nbr, nbc)) < 0.5
    np.testing.assert_array_equal(blocks.spread(per_block), per_block.ravel()[index])
