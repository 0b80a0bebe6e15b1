"""The degradations of hard frames, each against a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.io.images import read_image
from skysolve.simulate import degrade as dg
from skysolve.tests.frames import render_stars
from skysolve.tests.realframes import ALT40, DATA

SHAPE = (160, 200)
LEVEL, SIGMA = 1000.0, 10.0


def sky(seed: int = 0, noise: float = SIGMA) -> np.ndarray:
    return LEVEL + np.random.default_rng(seed).normal(0.0, noise, SHAPE)


def flat() -> np.ndarray:
    """A noise-free flat frame: its noise is taken as 1e-3 of the level (1 unit)."""
    return np.full(SHAPE, LEVEL)


def star(x: float = 0.0, y: float = 0.0, flux: float = 50_000.0, sigma: float = 1.2):
    return render_stars(SHAPE, [x], [y], [flux], sigma)


def test_image_statistics_ignore_gradients():
    ramp = np.linspace(0.0, 5000.0, SHAPE[1])[None, :]
    st = dg.image_statistics(sky() + ramp)
    assert st.sigma == pytest.approx(SIGMA, rel=0.05)
    assert st.level == pytest.approx(LEVEL + 2500.0, rel=0.02)
    assert st.gain == pytest.approx(st.level / st.sigma**2, rel=1e-9)


def test_gradient_is_a_linear_ramp_of_the_stated_height():
    base = sky()
    out = dg.gradient(base, 0.5, angle_deg=0.0, seed=1)  # rising along +x
    added = (out - base).mean(axis=0)  # column means: photon noise averages out
    assert added[0] == pytest.approx(0.0, abs=3.0)
    assert added[-1] == pytest.approx(0.5 * 100.0 * SIGMA, rel=0.03)
    slope = np.polyfit(np.arange(SHAPE[1]), added, 1)[0]
    assert slope * (SHAPE[1] - 1) == pytest.approx(500.0, rel=0.03)
    # the light brings its own photon noise: variance light / gain
    gain = dg.image_statistics(base).gain
    right = (out - base)[:, -20:] - added[-20:]
    assert right.std() == pytest.approx(np.sqrt(500.0 / gain), rel=0.1)


def test_light_dome_falls_off_exponentially_from_its_corner():
    out = dg.light_dome(flat(), 1.0, corner=0, seed=2) - flat()
    sigma = dg.image_statistics(flat()).sigma  # 1e-3 of the level
    scale = 0.2 * np.hypot(*SHAPE)
    assert out[0, 0] == pytest.approx(400.0 * sigma * np.exp(-np.hypot(0.5, 0.5) / scale),
                                      rel=0.01)
    # along the top row, one scale length further: down by e
    col = int(round(scale))
    assert out[0, col] / out[0, 0] == pytest.approx(np.exp(-col / scale), rel=0.05)
    assert out[-1, -1] < 0.05 * out[0, 0]


def test_moonlight_glare_is_brightest_at_one_edge():
    out = dg.moonlight(sky(), 1.0, seed=3) - sky()
    edges = [out[:3].mean(), out[-3:].mean(), out[:, :3].mean(), out[:, -3:].mean()]
    assert max(edges) > 20 * SIGMA
    assert max(edges) > 3 * min(edges)


def test_cloud_attenuates_stars_by_its_transmission_and_adds_scattered_light():
    t = dg.cloud_transmission(SHAPE, 1.0, seed=np.random.default_rng(4))
    assert t.min() >= 1.0 - 0.85 - 1e-12 and t.max() <= 1.0
    base = flat() + star(-50.0, 0.0) + star(50.0, 0.0)
    out = dg.cloud(base, 1.0, seed=4)
    sigma = dg.image_statistics(flat()).sigma
    for x in (-50.0, 50.0):
        c, r = int(x + SHAPE[1] / 2), SHAPE[0] // 2
        box = (slice(r - 6, r + 7), slice(c - 6, c + 7))
        scatter = 60.0 * sigma * (1.0 - t[box]) / 0.85
        flux = (out[box] - LEVEL - scatter).sum()
        assert flux == pytest.approx(50_000.0 * t[r, c], rel=0.02)


def test_a_nebula_lights_part_of_the_frame_as_bright_as_its_brightest_stars():
    base = flat() + star(0.0, 0.0)
    gain = dg.image_statistics(base).gain  # 1000: sky 1000, its noise taken as 1 unit
    # the level the brightest 0.01 % of pixels reach: the star's core
    peak = np.quantile(base, 0.9999) - LEVEL
    assert peak > 3000.0
    lit = []
    for seed in range(8):
        light = dg.nebula_light(SHAPE, 1.0, seed=np.random.default_rng(seed))
        assert light.min() >= 0.0 and light.max() == pytest.approx(1.0)
        lit.append((light > 0.01).mean())
        added = dg.nebula(base, 1.0, seed=seed) - base
        # the light and its photon noise
        resid = (added - peak * light) / np.sqrt(np.maximum(peak * light / gain, 1e-12))
        bright = light > 0.1
        assert abs(resid[bright].mean()) < 0.1 and resid[bright].std() == pytest.approx(
            1.0, rel=0.1)
        assert np.all(added[light == 0.0] == 0.0)
        # moderate: half as bright
        half = dg.nebula(base, "moderate", seed=seed) - base
        assert half[bright].sum() == pytest.approx(0.5 * added[bright].sum(), rel=0.01)
    assert 0.3 < min(lit) and max(lit) < 0.8  # about half the frame
    # knots and filaments on every scale: the light changes by a tenth of its level
    # across 8 px, and by far more across the frame
    light = dg.nebula_light((768, 1024), 1.0, seed=np.random.default_rng(1))
    inner = light > 0.05
    both = inner[:, 8:] & inner[:, :-8]
    step = np.abs(np.log(light[:, 8:][both] / light[:, :-8][both]))
    assert 0.05 < np.median(step) < 0.5
    assert np.quantile(light[inner], 0.99) > 5.0 * np.quantile(light[inner], 0.1)


def test_a_nebula_over_a_clipped_frame_stays_clipped():
    base = np.minimum(flat() + star(0.0, 0.0, flux=500_000.0), 5000.0)
    assert (base == 5000.0).sum() >= 5
    out = dg.nebula(base, 1.0, seed=2)
    assert out.max() == 5000.0 and (out > base).sum() > 0.2 * base.size
    # unclipped frames are not clipped at their maximum (which this star's four central
    # pixels share)
    base = flat() + star(0.0, 0.0)
    assert (base == base.max()).sum() == 4
    assert dg.nebula(base, 1.0, seed=2).max() > base.max()
    np.testing.assert_array_equal(dg.nebula(base, 0.0, seed=2), base)
    assert dg.DEGRADATIONS["nebula"] is dg.nebula
    # NaN pixels (a masked frame) stay NaN, the others are lit as without them
    holed = base.copy()
    holed[:10] = np.nan
    out = dg.nebula(holed, 1.0, seed=2)
    assert np.isnan(out[:10]).all() and np.isfinite(out[10:]).all()
    assert np.nanmax(out - holed) > 0.5 * (np.quantile(base, 0.9999) - LEVEL)


def test_roof_hides_the_sky_below_its_edge():
    base = sky() + star(0.0, 70.0)  # a star near the bottom edge
    out = dg.foreground(base, 1.0, kind="roof", seed=5)
    changed = out != base
    # the top rows are open sky, untouched; the bottom row is roof
    assert not changed[:10].any()
    assert changed[-1].all()
    # the star behind the roof is gone: nothing there but the dark silhouette
    bottom = out[-8:, SHAPE[1] // 2 - 6:SHAPE[1] // 2 + 6]
    assert bottom.max() < LEVEL + 80.0 * SIGMA
    dark = out[-1][~(dg.foreground(np.full(SHAPE, LEVEL), 1.0, kind="roof", seed=5)[-1]
                     > LEVEL - 5.0)]
    assert np.median(dark) == pytest.approx(LEVEL - 10.0 * SIGMA, abs=2.0 * SIGMA)


def test_a_roof_running_out_of_the_frame_has_no_lit_edge_along_the_border():
    # the lamp comes from a random direction, over 24 seeds also from below; the roof
    # goes on below the frame, so its lit side is the ridge and the border is dark but
    # where the ridge itself crosses it (wrapping the lit side around the frame once
    # lit the whole bottom row: 44-66 bright pixels there on a third of these seeds)
    for seed in range(24):
        bright = dg.foreground(sky(), 1.0, kind="roof", seed=seed) > LEVEL + 6.0 * SIGMA
        for edge in (bright[0], bright[-1], bright[:, 0], bright[:, -1]):
            assert edge.sum() <= 8, seed


def test_branches_cover_part_of_the_frame_and_some_of_it_is_lit():
    base = sky()
    out = dg.foreground(base, 1.0, kind="branches", seed=6)
    covered = np.mean(out != base)
    assert 0.02 < covered < 0.9
    assert (out - base).max() > 20 * SIGMA  # lit twigs


def test_a_satellite_trail_is_a_straight_line_of_the_psf_width():
    out = dg.trails(flat(), 1.0, kind="satellite", seed=7) - flat()
    sigma = dg.image_statistics(flat()).sigma
    # three trails at strength 1; take the brightest one's pixels
    on = out > 0.5 * out.max()
    rows, cols = np.nonzero(on)
    pts = np.column_stack([cols, rows]).astype(float)
    pts -= pts.mean(axis=0)
    minor = np.linalg.svd(pts, compute_uv=False)[-1] / np.sqrt(len(pts))
    assert minor < 1.5  # a line, not a blob (pixels within 1.5 px rms of it)
    assert out.max() <= 1000.0 * sigma * 1.01 and out.max() >= 5.0 * sigma


def test_trail_cross_section_is_gaussian():
    light = np.zeros((40, 60))
    dg._add_line(light, np.array([-5.0, 20.0]), np.array([65.0, 20.0]), 100.0, 1.2)
    col = light[:, 30]
    assert col.max() == pytest.approx(100.0 * np.exp(-0.5 * 0.5**2 / 1.2**2), rel=1e-9)
    assert col.sum() == pytest.approx(100.0 * 1.2 * np.sqrt(2 * np.pi), rel=1e-3)


def test_hot_pixels_raise_the_stated_number_of_single_pixels():
    out = dg.hot_pixels(flat(), 1.0, seed=8) - flat()
    sigma = dg.image_statistics(flat()).sigma
    hot = out > 0
    assert hot.sum() == round(4e-4 * np.prod(SHAPE))
    assert out[hot].min() >= 10.0 * sigma and out[hot].max() <= 2000.0 * sigma


def test_cosmic_rays_are_short_tracks():
    from scipy import ndimage

    out = dg.cosmic_rays(flat(), 2.0, seed=9) - flat()
    n = round(4e-5 * 2.0 * np.prod(SHAPE))
    _, found = ndimage.label(out > 0, structure=np.ones((3, 3)))
    assert 1 <= found <= n
    assert (out > 0).sum() < 30 * n


def test_defocus_turns_a_star_into_a_ring_and_keeps_its_flux():
    base = flat() + star(0.3, -0.2, sigma=0.8)
    out = dg.defocus(base, 1.0, seed=10)
    r, c = SHAPE[0] // 2, SHAPE[1] // 2
    box = (slice(r - 12, r + 13), slice(c - 12, c + 13))
    assert (out[box] - LEVEL).sum() == pytest.approx(50_000.0, rel=0.01)
    assert out[r, c] < out[r, c + 5]  # dark centre, bright ring at 3-6 px
    k = dg.annulus_kernel(6.0)
    assert k.sum() == pytest.approx(1.0) and k[6, 6] == 0.0


def test_smear_draws_stars_out_along_its_angle():
    base = flat() + star(0.0, 0.0, sigma=1.0)
    out = dg.smear(base, 1.0, angle_deg=0.0, seed=11) - LEVEL
    r, c = SHAPE[0] // 2, SHAPE[1] // 2
    box = out[r - 10:r + 11, c - 10:c + 11]
    assert box.sum() == pytest.approx(50_000.0, rel=0.01)
    t = np.arange(-10, 11) + 0.5
    var_x = (box.sum(axis=0) * t**2).sum() / box.sum() - ((box.sum(axis=0) * t).sum()
                                                           / box.sum()) ** 2
    var_y = (box.sum(axis=1) * t**2).sum() / box.sum() - ((box.sum(axis=1) * t).sum()
                                                           / box.sum()) ** 2
    # smear of 8 px: variance 1 + 1/12 (pixel) + 8^2 / 12 along x, unchanged along y
    assert var_x == pytest.approx(1.0 + 1 / 12 + 64 / 12, rel=0.1)
    assert var_y == pytest.approx(1.0 + 1 / 12, rel=0.1)


def _spread(box: np.ndarray) -> tuple[float, float, float, float]:
    """Intensity centroid (x, y; px from the box's centre) and variances along x and y."""
    t = np.arange(box.shape[1]) - box.shape[1] // 2
    u = np.arange(box.shape[0]) - box.shape[0] // 2
    total = box.sum()
    mx, my = (box.sum(axis=0) * t).sum() / total, (box.sum(axis=1) * u).sum() / total
    return (mx, my, (box.sum(axis=0) * (t - mx) ** 2).sum() / total,
            (box.sum(axis=1) * (u - my) ** 2).sum() / total)


def test_untracked_draws_stars_as_arcs_about_the_pole():
    """The pole 300 px left of the centre, strength 2: the centre's star drawn out along
    y over 16 px, one 60 px right of it (360 px from the pole) over 16 x 360 / 300 =
    19.2 px; each keeps its light and its place (the arc's middle: 0.1 px off at most),
    its width across unchanged; the sky's noise restored."""
    h, w = SHAPE
    cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
    base = flat() + star(0.0, 0.0, sigma=1.0) + star(60.0, 0.0, sigma=1.0)
    out = dg.untracked(base, 2.0, pole=(cx - 300.0, cy), seed=4) - LEVEL
    r, c = h // 2, w // 2
    for dx, length in ((0, 16.0), (60, 19.2)):
        box = out[r - 15:r + 16, c + dx - 8:c + dx + 9]
        assert box.sum() == pytest.approx(50_000.0, rel=0.01)
        mx, my, var_x, var_y = _spread(box)
        # (render_stars puts a star at the pixel's middle: 0.5 px up and left of c, r)
        assert (mx + 0.5, my + 0.5) == pytest.approx((0.0, 0.0), abs=0.1)
        assert var_y == pytest.approx(1.0 + 1 / 12 + length ** 2 / 12, rel=0.08)
        assert var_x == pytest.approx(1.0 + 1 / 12, rel=0.1)
    noisy = dg.untracked(sky(4), 2.0, pole=(cx - 300.0, cy), seed=5)
    assert dg.image_statistics(noisy).sigma == pytest.approx(SIGMA, rel=0.1)
    with pytest.raises(InvalidArgumentError, match="pole"):
        dg.untracked(base, 1.0, pole=(cx, cy))
    np.testing.assert_array_equal(dg.untracked(base, 0.0), base)
    assert dg.DEGRADATIONS["untracked"] is dg.untracked


def test_saturation_clips_and_blooms_along_the_column_keeping_the_charge():
    base = sky() + star(0.0, 0.0, flux=2e5)
    out = dg.saturation(base, 0.5)
    st = dg.image_statistics(base)
    full = st.level + 1000.0 * st.sigma * 10.0 ** -0.75
    assert out.max() == pytest.approx(full)
    c = SHAPE[1] // 2
    assert (out[:, c] == full).sum() > (out[SHAPE[0] // 2] == full).sum()  # a column
    np.testing.assert_allclose(out.sum(axis=0), base.sum(axis=0), rtol=1e-9)


def test_vignetting_darkens_the_corners():
    out = dg.vignetting(flat(), 1.0)
    assert out[0, 0] == pytest.approx(LEVEL * (1 - 0.7 * (np.hypot(99.5, 79.5)
                                                          / np.hypot(100, 80)) ** 2))
    assert out[80, 100] == pytest.approx(LEVEL, rel=1e-4)


def test_noise_adds_the_stated_sigma():
    base = sky()
    diff = dg.noise(base, 1.0, seed=12) - base
    assert diff.std() == pytest.approx(1.5 * dg.image_statistics(base).sigma, rel=0.05)


def test_quantise_8bit_black_point_white_point_and_gamma():
    base = sky() + star(flux=5e6)
    out = dg.quantise_8bit(base, 0.5)
    st = dg.image_statistics(base)
    assert out.dtype == np.uint8 and out.max() == 255
    white = 2000.0 * st.sigma * 10.0 ** -0.75 + 4.0 * st.sigma
    t_sky = 4.0 * st.sigma / white
    assert np.median(out) == pytest.approx(255.0 * t_sky ** (1 / 1.5), abs=1.0)
    assert dg.quantise_8bit(out) is not out and np.array_equal(dg.quantise_8bit(out), out)


def test_jpeg_compresses_and_strength_lowers_the_quality():
    base = sky() + star(flux=5e5)
    eight = dg.quantise_8bit(base, 0.5)
    moderate = dg.jpeg(eight, 0.5).astype(float)
    strong = dg.jpeg(eight, 1.0).astype(float)
    err_m = np.sqrt(np.mean((moderate - eight) ** 2))
    err_s = np.sqrt(np.mean((strong - eight) ** 2))
    assert 0 < err_m < err_s < 10.0


def test_degrade_composes_steps_with_independent_reproducible_streams():
    base = sky()
    a = dg.degrade(base, ["gradient", ("noise", 1.0), "foreground:roof"], "moderate", seed=3)
    b = dg.degrade(base, ["gradient", ("noise", 1.0), "foreground:roof"], "moderate", seed=3)
    np.testing.assert_array_equal(a, b)
    seqs = np.random.SeedSequence(3).spawn(3)
    manual = dg.gradient(base, 0.5, seed=np.random.default_rng(seqs[0]))
    manual = dg.noise(manual, 1.0, seed=np.random.default_rng(seqs[1]))
    manual = dg.foreground(manual, 0.5, kind="roof", seed=np.random.default_rng(seqs[2]))
    np.testing.assert_array_equal(a, manual)
    assert dg.degrade(base, "jpeg", "strong").dtype == np.uint8


def test_degradations_apply_to_a_real_frame():
    img = read_image(DATA / ALT40)
    out = dg.degrade(img, ["light_dome", "trails", "hot_pixels", "jpeg"], "moderate", seed=1)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert dg.image_statistics(img).sigma == pytest.approx(140.0, rel=0.15)


@pytest.mark.parametrize("bad, exc", [
    (dict(strength=-1.0), InvalidArgumentError),
    (dict(strength="extreme"), InvalidArgumentError),
    (dict(strength=None), InvalidTypeError),
])
def test_bad_strengths_raise(bad, exc):
    with pytest.raises(exc, match="strength"):
        dg.gradient(sky(), **bad)


def test_bad_recipes_and_images_raise():
    with pytest.raises(InvalidArgumentError, match="unknown degradation"):
        dg.degrade(sky(), "fog")
    with pytest.raises(InvalidArgumentError, match="kind"):
        dg.foreground(sky(), 0.5, kind="hedge")
    with pytest.raises(InvalidArgumentError, match="2-D"):
        dg.noise(np.zeros(5))
    with pytest.raises(InvalidTypeError, match="numeric"):
        dg.noise(np.zeros((4, 4), dtype=bool))


def _text_rows(changed: np.ndarray) -> int:
    """The number of separate bands of rows that hold text."""
    rows = changed.any(axis=1).astype(int)
    return int(np.count_nonzero(np.diff(np.concatenate([[0], rows])) == 1))


@pytest.mark.parametrize("place", dg.TEXT_PLACES)
def test_text_overlay_writes_its_lines_where_asked_at_the_frames_full_scale(place):
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (240, 640))
    out = dg.text_overlay(base, 0.5, font="bitmap", place=place, seed=1)
    changed = out != base
    rows, cols = np.nonzero(changed)
    h, w = base.shape
    assert (rows.max() < h / 2) if place.startswith("top") else (rows.min() >= h / 2)
    if place.endswith("left"):
        assert cols.max() < w / 2
    elif place.endswith("right"):
        assert cols.min() >= w / 2
    else:  # a status bar across the frame
        assert cols.max() - cols.min() > w / 2
    assert _text_rows(changed) == 3  # round(6 x 0.5) lines
    # the bitmap font's pixels are all text: one value, 100 noise sigmas above the sky
    # (the frame's maximum lies lower)
    assert np.unique(out[changed]).size == 1
    assert out[changed][0] == pytest.approx(LEVEL + 100.0 * SIGMA, rel=0.02)


def test_text_overlay_kinds_and_fonts():
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (240, 360))
    base[5, 300] = 9000.0  # a saturated star sets the full scale
    white = dg.text_overlay(base, 1.0, font="bitmap", place="bottom-left", seed=2)
    assert np.unique(white[white != base]).tolist() == [9000.0]
    assert _text_rows(white != base) == 6
    grey = dg.text_overlay(base, 1.0, kind="grey", font="bitmap", place="bottom-left", seed=2)
    assert np.unique(grey[grey != base]) == pytest.approx(LEVEL + 0.4 * (9000.0 - LEVEL),
                                                          rel=0.01)
    boxed = dg.text_overlay(base, 1.0, kind="boxed", font="bitmap", place="bottom-left", seed=2)
    box = (boxed != base) & (boxed != 9000.0)
    rows, cols = np.nonzero(box)
    assert np.all(boxed[rows.min():rows.max() + 1, cols.min():cols.max() + 1][
        box[rows.min():rows.max() + 1, cols.min():cols.max() + 1]] == base.min())
    assert np.count_nonzero(boxed == 9000.0) == np.count_nonzero(white == 9000.0)
    # anti-aliased glyphs blend into the sky by their coverage
    smooth = dg.text_overlay(base, 1.0, font="truetype", place="bottom-left", seed=2)
    values = smooth[smooth != base]
    assert values.max() == 9000.0 and np.count_nonzero(values < 0.5 * (LEVEL + 9000.0)) > 100
    np.testing.assert_array_equal(dg.text_overlay(base, 0.0, seed=2), base)
    np.testing.assert_array_equal(
        dg.degrade(base, [("text_overlay:grey", 1.0, {"font": "truetype"})], seed=4),
        dg.degrade(base, [("text_overlay:grey", 1.0, {"font": "truetype"})], seed=4))


@pytest.mark.parametrize("place", dg.COMPASS_PLACES)
def test_compass_letters_round_the_image_circle_or_on_the_edges(place):
    """Four letters at strength 0.5, eight at 1.0, each in one place: on the image
    circle inscribed in the frame's height (its distance from the centre the same for
    all, within a letter), or against the frame's edges (within the margin); the bitmap
    font's pixels are one value (the full scale), the grey kind's 40 % of it."""
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (480, 640))
    for s, n in ((0.5, 4), (1.0, 8)):
        out = dg.compass(base, s, font="bitmap", place=place, seed=3)
        changed = out != base
        assert np.unique(out[changed]).size == 1
        assert out[changed][0] == pytest.approx(LEVEL + 100.0 * SIGMA, rel=0.02)
        lab, count = ndimage.label(ndimage.binary_dilation(changed, iterations=4))
        assert count == n  # (the letters of NE ... are one group each)
        cy, cx = np.array(ndimage.center_of_mass(changed, lab, range(1, n + 1))).T
        h, w = base.shape
        if place == "circle":
            r = np.hypot(cx + 0.5 - w / 2, cy + 0.5 - h / 2)
            assert r.max() - r.min() < 40 and r.max() < h / 2
        else:
            rows, cols = np.nonzero(changed)
            edge = [np.min([rr.min(), h - 1 - rr.max(), cc.min(), w - 1 - cc.max()])
                    for rr, cc in (np.nonzero(lab == k) for k in range(1, n + 1))]
            assert max(edge) <= 16
    grey = dg.compass(base, 0.5, kind="grey", font="bitmap", seed=3)
    assert np.unique(grey[grey != base]) == pytest.approx(LEVEL + 0.4 * 100.0 * SIGMA,
                                                          rel=0.02)
    np.testing.assert_array_equal(dg.compass(base, 0.0, seed=3), base)
    np.testing.assert_array_equal(dg.degrade(base, [("compass", 1.0)], seed=4),
                                  dg.degrade(base, [("compass", 1.0)], seed=4))


def test_reticle_crosses_the_centre_and_adds_shapes():
    """A cross through the centre (the middle row and column of the frame, within the
    2 px it may be off), thin (1-2 px, 3 or 4 with anti-aliasing), and round(3 s) - 1
    circles or boxes more: every seed draws along the middle row and column and changes
    more pixels at strength 1 than at 0.5."""
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (300, 400))
    h, w = base.shape
    for seed in range(6):
        half = dg.reticle(base, 0.5, seed=seed) != base
        full = dg.reticle(base, 1.0, seed=seed) != base
        # (dashes cover a third of the line at least, a gap round the centre a fifth)
        assert half[h // 2 - 4:h // 2 + 4].any(axis=0).mean() > 0.3
        assert half[:, w // 2 - 4:w // 2 + 4].any(axis=1).mean() > 0.3
        # thin: the middle row holds at most 4 px of the vertical arm
        assert np.count_nonzero(half[h // 4, w // 2 - 8:w // 2 + 8]) <= 4
        assert full.sum() > half.sum()
    out = dg.reticle(base, 1.0, kind="grey", seed=1)
    assert out.max() == pytest.approx(LEVEL + 0.4 * 100.0 * SIGMA, rel=0.02)
    np.testing.assert_array_equal(dg.reticle(base, 0.0, seed=1), base)


def test_logo_sits_in_a_corner():
    """A logo 0.04 + 0.08 s of the frame's height tall, in one of the corners, in at
    most two values (the full scale and, half the time, 60 % of the way to it: the
    bitmap font and the shapes are aliased)."""
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (480, 640))
    h, w = base.shape
    for seed in range(6):
        out = dg.logo(base, 1.0, font="bitmap", seed=seed)
        rows, cols = np.nonzero(out != base)
        assert rows.max() - rows.min() + 1 <= round(0.12 * h) + 1
        # (within the margin of 4-15 px; letters alone are centred in the logo's box)
        assert min(rows.min(), h - 1 - rows.max()) <= 16 + 0.06 * h
        assert min(cols.min(), w - 1 - cols.max()) <= 16 + 0.06 * h
        values = np.unique(out[out != base])
        assert 1 <= len(values) <= 2
        full = LEVEL + 100.0 * SIGMA
        for v in values:
            assert v == pytest.approx(full, rel=0.02) or v == pytest.approx(
                LEVEL + 0.6 * (full - LEVEL), rel=0.02)
    np.testing.assert_array_equal(dg.logo(base, 0.0, seed=1), base)


def test_bad_text_overlays_raise():
    with pytest.raises(InvalidArgumentError, match="kind"):
        dg.text_overlay(sky(), kind="neon")
    with pytest.raises(InvalidArgumentError, match="place"):
        dg.text_overlay(sky(), place="middle")
    with pytest.raises(InvalidArgumentError, match="font"):
        dg.text_overlay(sky(), font="comic")


def test_text_overlay_on_pillow_10_0(monkeypatch):
    """Pillow 10.0 (the oldest the package allows) has no TrueType font of its own and a
    ``load_default`` without a size: the default font choice failed one call in two
    with a TypeError, ``font='truetype'`` every time."""
    from PIL import ImageFont

    bitmap = ImageFont.load_default_imagefont
    monkeypatch.delattr(ImageFont, "load_default_imagefont")
    monkeypatch.setattr(ImageFont, "load_default", lambda: bitmap())  # as Pillow 10.0's
    base = np.random.default_rng(0).normal(LEVEL, SIGMA, (240, 640))
    for seed in range(6):
        out = dg.text_overlay(base, 0.5, place="top-left", seed=seed)
        assert _text_rows(out != base) == 3
    with pytest.raises(InvalidArgumentError, match=r"font='truetype' needs Pillow 10\.1"):
        dg.text_overlay(base, 0.5, font="truetype", seed=0)


def test_text_overlay_stays_within_an_integer_frames_range():
    eight = np.clip(sky(noise=5.0) - 800.0, 0, 255).astype(np.uint8)  # 100 sigmas overflow
    out = dg.text_overlay(eight, 1.0, font="bitmap", seed=0)
    assert out[out != eight].max() == 255.0


# ------------------------------------------------------------------------------------
# sensor defects: amplifier glow, banding, bad columns, diffraction spikes, dust

NEW_SENSOR = ("amp_glow", "banding", "bad_columns", "diffraction_spikes", "dust")


def test_amp_glow_rises_from_the_border_and_falls_off_exponentially():
    base = flat()
    sigma = dg.image_statistics(base).sigma  # 1e-3 of the level
    diag = np.hypot(*SHAPE)
    h, w = SHAPE
    for seed in range(12):
        added = dg.amp_glow(base, 1.0, sources=1, seed=seed) - base
        r, c = np.unravel_index(np.argmax(added), SHAPE)
        assert r in (0, h - 1) or c in (0, w - 1), seed  # at a corner or an edge
        # 300 sigmas at the source (its nearest pixel centre is 0.5-0.7 px from it)
        assert 0.9 * 300.0 * sigma < added.max() < 300.0 * sigma + 5.0, seed
        # below 5 % of the peak 18 % of the diagonal in from every edge
        m = int(np.ceil(0.18 * diag))
        assert added[m:-m, m:-m].max() < 0.05 * added.max(), seed
        # inward from the source, perpendicular to its edge: exp(-d / L), L 3-6 % of
        # the diagonal (a corner's pixels along the edge are 0.5 px off its axis)
        profile = added[:, c] if r in (0, h - 1) else added[r, :]
        if r == h - 1 or (r not in (0, h - 1) and c == w - 1):
            profile = profile[::-1]
        k = np.arange(len(profile))
        use = profile > 20.0 * sigma
        use &= k < np.argmin(use)  # (the run from the edge, not another glow)
        slope = np.polyfit(k[use], np.log(profile[use]), 1)[0]
        assert 0.03 * diag * 0.9 < -1.0 / slope < 0.06 * diag * 1.1, seed


def test_amp_glow_brings_its_photon_noise_and_has_one_or_two_sources():
    big = np.full((1600, 2000), LEVEL)  # a glow 77-154 px deep: smooth to the pixel
    gain = dg.image_statistics(big).gain
    added = dg.amp_glow(big, 1.0, sources=1, seed=3) - big
    # the noise of the bright part, from second differences along the rows (the
    # glow's own curvature there is < 0.05 units)
    second = (added[:, 2:] - 2.0 * added[:, 1:-1] + added[:, :-2]) / np.sqrt(6.0)
    bright = added[:, 1:-1] > 100.0
    # photon noise of 100-300 units at gain 1000: sd 0.32-0.55
    assert np.sqrt(100.0 / gain) < second[bright].std() < np.sqrt(300.0 / gain)
    base = flat()
    added = dg.amp_glow(base, 1.0, sources=1, seed=3) - base
    peaks = {int(np.sum(dg.amp_glow(base, 1.0, seed=seed) - base > 150.0)) > 0
             for seed in range(8)}
    assert peaks == {True}
    two = dg.amp_glow(base, 1.0, sources=2, seed=5) - base
    one = dg.amp_glow(base, 1.0, sources=1, seed=5) - base
    assert two.sum() > one.sum()
    assert dg.amp_glow(base, "moderate", sources=1, seed=3).max() - LEVEL == pytest.approx(
        0.5 * added.max(), rel=0.03)


def test_banding_offsets_whole_rows_by_the_stated_amounts():
    tall = np.full((4000, 40), LEVEL)  # noise-free: sigma 1 unit
    for strength, s in (("moderate", 0.5), (1.0, 1.0)):
        added = dg.banding(tall, strength, columns=False, seed=1) - tall
        # constant along every row: readout offsets, no photon noise
        assert np.ptp(added, axis=1).max() < 1e-9
        rows = added[:, 0]
        # rows independent of their neighbours, sd 2 s sigma (the slow bands, on 20-80
        # rows, barely change from one row to the next)
        assert np.diff(rows).std() / np.sqrt(2.0) == pytest.approx(2.0 * s, rel=0.08)
        # the bands: what a 9-row mean keeps of the offsets, about 1.5 s sigma (plus
        # the independent offsets averaged down by 3)
        slow = ndimage.uniform_filter1d(rows, 9)
        expected = np.hypot(1.5 * s, 2.0 * s / 3.0)
        assert slow.std() == pytest.approx(expected, rel=0.25)


def test_banding_columns_add_a_column_pattern():
    wide = np.full((300, 3000), LEVEL)
    added = dg.banding(wide, 1.0, columns=True, seed=2) - wide
    cols = added[0] - added[0].mean()
    rows = added[:, 0] - added[0, 0]
    # row + column offsets, nothing else
    np.testing.assert_allclose(added, added[0][None, :] + rows[:, None], atol=1e-9)
    assert cols.std() == pytest.approx(0.5, rel=0.08)
    none = dg.banding(wide, 1.0, columns=False, seed=2) - wide
    assert np.ptp(none[0]) < 1e-9


def test_bad_columns_are_lines_to_the_readout_edge_and_nothing_else_changes():
    sigma = dg.image_statistics(sky()).sigma
    kinds = set()
    for seed in range(10):
        for s, n_cols in ((0.5, 3), (1.0, 5)):
            base = sky(seed)
            out = dg.bad_columns(base, s, seed=seed)
            changed = out != base
            hot_rows = np.flatnonzero(changed.sum(axis=1) > n_cols)
            assert len(hot_rows) == 1, (seed, s)
            rest = changed.copy()
            rest[hot_rows[0]] = False
            cols = np.flatnonzero(rest.any(axis=0))
            # (two defects can fall on one column)
            assert 1 <= len(cols) <= n_cols and len(cols) >= n_cols - 1, (seed, s)
            row = changed[hot_rows[0]].copy()
            row[cols] = False  # (the columns cross the row)
            for line, crossing in [(row, cols)] + [(rest[:, c], hot_rows) for c in cols]:
                on = np.flatnonzero(line)
                # one run (where it crosses the others left out), from a trap (or the far
                # edge) to the top or bottom edge
                gaps = set(range(on[0], on[-1] + 1)) - set(on)
                assert gaps <= set(crossing), (seed, s)
                assert on[0] == 0 or on[-1] == len(line) - 1, (seed, s)
            st = dg.image_statistics(base)
            for c in cols:
                v = (out - base)[rest[:, c], c]
                if np.all(out[rest[:, c], c] == st.level - 20.0 * st.sigma):
                    kinds.add("dead")
                else:
                    kinds.add("hot")
                    assert 5.0 * sigma - 5.0 * sigma / np.sqrt(v.size) < v.mean()
                    assert v.mean() < (5.0 + 195.0 * s) * sigma * 1.1
    assert kinds == {"hot", "dead"}


def test_dead_columns_read_zero_not_below_it_on_an_unsigned_frame():
    eight = np.full(SHAPE, 10.0)  # a dark 8-bit frame: 20 sigmas below its sky is < 0
    eight += np.random.default_rng(0).normal(0.0, 1.0, SHAPE)
    eight = np.clip(eight, 0, 255)
    lows = [dg.bad_columns(eight, 1.0, seed=seed).min() for seed in range(10)]
    assert min(lows) == 0.0


def _spike_image(fluxes, xs, ys, **kw):
    base = flat() + render_stars(SHAPE, xs, ys, fluxes, 1.2)
    return base, dg.diffraction_spikes(base, 1.0, **kw) - base


@pytest.mark.parametrize("spikes, angle", [(4, 20.0), (6, -35.0)])
def test_diffraction_spikes_point_along_the_stated_angles(spikes, angle):
    base, added = _spike_image([5e4], [0.3], [-0.4], spikes=spikes, angle_deg=angle, seed=1)
    h, w = SHAPE
    cx, cy = 0.3 + w / 2, -0.4 + h / 2  # array coordinates of the star
    expected = (angle + 360.0 / spikes * np.arange(spikes)) % 360.0
    for radius in (20.0, 30.0):
        deg = np.arange(0.0, 360.0, 0.25)
        a = np.radians(deg)
        # the added light round a circle about the star (bilinear; pixel centres +0.5)
        ring = ndimage.map_coordinates(
            added, [cy + radius * np.sin(a) - 0.5, cx + radius * np.cos(a) - 0.5], order=1)
        off = np.min(np.abs((deg[:, None] - expected[None, :] + 180.0) % 360.0 - 180.0),
                     axis=1)
        # all but the Gaussian tails of the spikes' cross-section (sigma 0.8 px) within
        # 3 of its sigmas of the stated angles, and every one of them lit
        within = np.degrees(np.arctan(3.0 * 0.8 / radius))
        assert ring[off < within].sum() > 0.99 * ring.sum()
        for e in expected:
            near = np.abs((deg - e + 180.0) % 360.0 - 180.0) < 5.0
            assert ring[near].max() > 0.5 * ring.max()
        # half-way between two spikes nothing was added
        between = np.radians(expected + 180.0 / spikes)
        r_b = (cy + radius * np.sin(between)).astype(int)
        c_b = (cx + radius * np.cos(between)).astype(int)
        assert np.all(added[r_b, c_b] == 0.0)


def test_diffraction_spike_length_grows_as_the_square_root_of_the_flux():
    # on a flat frame (sigma 1 unit) a spike ends where I0 (r0 / (r0 + r))^2 = 0.5,
    # I0 = 0.02 F / (r0 sqrt(2 pi) 0.8): r = r0 (sqrt(2 I0) - 1), r0 = 4 px
    fluxes, xs = np.array([5e3, 2e4]), np.array([-50.0, 50.0])
    base, added = _spike_image(fluxes, xs, [0.0, 0.0], spikes=4, angle_deg=0.0, seed=2)
    h, w = SHAPE
    i0 = 0.02 * fluxes / (4.0 * np.sqrt(2.0 * np.pi) * 0.8)
    expected = 4.0 * (np.sqrt(i0 / 0.5) - 1.0)
    row = added[h // 2 - 1:h // 2 + 1].any(axis=0)  # the +-x spikes lie along the row
    for x, length in zip(xs, expected, strict=True):
        c = int(x + w / 2)
        right = np.flatnonzero(~row[c:])[0]  # first untouched pixel to the right
        left = np.flatnonzero(~row[:c][::-1])[0]
        assert right == pytest.approx(length, abs=1.5)
        assert left == pytest.approx(length, abs=1.5)
    # symmetric spikes: the star's centroid stays where it was
    box = (slice(h // 2 - 6, h // 2 + 6), slice(int(xs[1] + w / 2) - 6, int(xs[1] + w / 2) + 6))
    star_light = base[box] - LEVEL
    after = star_light + added[box]
    cols = np.arange(box[1].start, box[1].stop)
    x_before = (star_light.sum(axis=0) * cols).sum() / star_light.sum()
    x_after = (after.sum(axis=0) * cols).sum() / after.sum()
    assert x_after == pytest.approx(x_before, abs=0.02)


def test_faint_stars_get_no_spikes():
    base, added = _spike_image([100.0], [0.0], [0.0], spikes=4, angle_deg=0.0, seed=3)
    assert not added.any()


def test_dust_darkens_by_its_stated_depth_in_donuts_of_the_stated_size():
    shape = (900, 1200)  # room for the shadows to lie apart
    for s, (lo, hi) in ((1.0, (0.06, 0.15)), ("moderate", (0.03, 0.075))):
        t = dg.dust_transmission(shape, s, seed=np.random.default_rng(4))
        labels, n = ndimage.label(t < 1.0)
        assert n == 2 + round(4 * dg.STRENGTHS.get(s, s))
        rings = 0
        for k, box in enumerate(ndimage.find_objects(labels), start=1):
            inside = labels[box] == k
            depth = 1.0 - t[box][inside].min()
            assert lo * 0.999 < depth < hi * 1.001
            size = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
            if all(b.start > 0 and b.stop < n_ for b, n_ in zip(box, shape, strict=True)):
                assert 20.0 <= size <= 60.0 + 4.0  # (its soft edge)
            centre = t[box][inside.shape[0] // 2, inside.shape[1] // 2]
            rings += centre > 1.0 - 0.5 * depth  # a donut: the hole less dark
        assert rings >= 1
    base = sky()
    out = dg.dust(base, 1.0, seed=5)
    t = dg.dust_transmission(SHAPE, 1.0, seed=np.random.default_rng(5))
    np.testing.assert_allclose(out, base * t, rtol=1e-12)
    assert np.array_equal(out[t == 1.0], base[t == 1.0])  # untouched outside


@pytest.mark.parametrize("name", NEW_SENSOR)
def test_sensor_defects_are_registered_reproducible_and_off_at_zero(name):
    img = read_image(DATA / ALT40)
    a = dg.degrade(img, name, "strong", seed=7)
    b = dg.degrade(img, name, "strong", seed=7)
    assert a.shape == img.shape and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, img)
    np.testing.assert_array_equal(dg.DEGRADATIONS[name](img, 0.0, seed=7), img)


def test_bad_sensor_defect_arguments_raise():
    with pytest.raises(InvalidArgumentError, match="sources"):
        dg.amp_glow(sky(), 0.5, sources=3)
    with pytest.raises(InvalidArgumentError, match="spikes"):
        dg.diffraction_spikes(sky(), 0.5, spikes=5)
    with pytest.raises(InvalidTypeError, match="columns"):
        dg.banding(sky(), 0.5, columns="yes")
    with pytest.raises(InvalidArgumentError, match="strength"):
        dg.dust(sky(), -0.5)


def test_binning_averages_k_by_k_blocks_about_the_frames_centre():
    """2x2 at moderate, 4x4 at strong, nothing at 0. A 7x10 frame binned 2x keeps 3 rows
    of bins: the row left over is split between the two sides, the top's half rounded
    down (rows 0-5 used); an 18x23 frame binned 4x uses rows 1-16 and columns 1-20."""
    img = np.arange(70, dtype=float).reshape(7, 10)
    out = dg.binning(img, "moderate")
    assert out.shape == (3, 5)
    assert out[0, 0] == np.mean(img[0:2, 0:2]) and out[2, 4] == np.mean(img[4:6, 8:10])
    big = np.arange(18 * 23, dtype=float).reshape(18, 23)
    strong = dg.binning(big, "strong")
    assert strong.shape == (4, 5)
    assert strong[0, 0] == np.mean(big[1:5, 1:5]) and strong[3, 4] == np.mean(big[13:17, 17:21])
    np.testing.assert_array_equal(dg.binning(img, 0.0), img)
    assert dg.DEGRADATIONS["binning"] is dg.binning
    # a star's centre stays put about the frame's centre: binned 4x, its centred position
    # is a quarter of the original's
    frame = star(40.0, -20.0, flux=1e5, sigma=2.0) + sky(1)
    b = dg.degrade(frame, "binning", "strong", seed=1)
    r, c = np.unravel_index(np.argmax(b), b.shape)
    assert abs((c + 0.5 - b.shape[1] / 2) - 40.0 / 4) <= 1.0
    assert abs((r + 0.5 - b.shape[0] / 2) - (-20.0 / 4)) <= 1.0
    with pytest.raises(InvalidArgumentError, match="smaller than one 4x4 bin"):
        dg.binning(np.ones((3, 8)), "strong")
