"""The background's robust statistics against their plain definitions."""

import importlib
import math

import numpy as np
import pytest

from skysolve.extraction.background import robust_location

background = importlib.import_module("skysolve.extraction.background")
extract = importlib.import_module("skysolve.extraction.extract")


def _samples(rng):
    """Samples a sky statistic meets: Gaussian, integer-valued (many ties), with a bright
    tail, constant, heavy-tailed, tiny and huge scales, odd and even sizes."""
    yield rng.normal(0.0, 10.0, 31570)
    yield rng.normal(0.0, 10.0, 31571)
    yield np.round(rng.normal(100.0, 3.0, 30000))
    yield rng.integers(0, 3, 5000).astype(float)
    yield np.concatenate([rng.normal(0.0, 1.0, 20000), rng.uniform(100.0, 1e6, 2000)])
    yield np.full(2000, 7.0)
    yield np.r_[np.zeros(1500), np.ones(10)]
    yield rng.standard_cauchy(20000)
    for _ in range(100):
        n = int(rng.integers(1000, 40000))
        v = rng.normal(0.0, rng.uniform(0.1, 100.0), n) * rng.choice([1.0, 1e-8, 1e8])
        if rng.random() < 0.3:
            v = np.round(v)
        if rng.random() < 0.3:
            v[: n // 10] = rng.uniform(-1e4, 1e4, n // 10)
        yield v


def _clipped_by_sorting(v, iterations, clip=3.0):
    """The clipped median and MAD written plainly: lower medians read off sorted copies."""
    def lower_median(a):
        return float(np.sort(a)[(a.size - 1) // 2])

    med = lower_median(v)
    sig = 1.482602218505602 * lower_median(np.abs(v - med))
    for _ in range(iterations):
        if sig <= 0:
            break
        keep = np.abs(v - med) < clip * sig
        if keep.all() or keep.sum() < 10:
            break
        v = v[keep]
        med = lower_median(v)
        sig = 1.482602218505602 * lower_median(np.abs(v - med))
    return med, sig


def test_robust_location_by_sorting():
    """The clipped median and MAD equal the plain sorting definition to the bit on the
    samples a sky statistic meets; a Gaussian's sigma comes back within its error."""
    rng = np.random.default_rng(8)
    for v in _samples(rng):
        for it in (0, 1, 2):
            assert robust_location(v, it) == _clipped_by_sorting(v, it)
    v = rng.normal(5.0, 2.0, 30000)
    v[:1500] += rng.exponential(500.0, 1500)  # 5 % bright pixels hardly move it
    med, sig = robust_location(v, 2)
    assert abs(med - 5.0) < 0.1 and abs(sig / 2.0 - 1.0) < 0.05
    assert np.isnan(robust_location(np.zeros(0))).all()


def test_tile_bound_and_candidates_by_brute_force():
    """The per-tile bound never exceeds the model, and the candidate pass keeps exactly
    the pixels above the exact threshold (the model, plus the noise grid's, evaluated at
    every pixel): steep skies, odd block sizes, frames that are no multiple of a tile."""
    rng = np.random.default_rng(2)
    for _ in range(120):
        h, w = int(rng.integers(20, 300)), int(rng.integers(20, 300))
        bs = int(rng.choice([16, 24, 33, 64]))
        nodes = background._block_nodes((h, w), bs)
        ny, nx = len(nodes[0]), len(nodes[1])
        grid = (rng.normal(100.0, 5.0, (ny, nx)) + rng.uniform(-50, 50) * np.arange(nx)
                + rng.uniform(-50, 50) * np.arange(ny)[:, None])
        bg = background.Background(grid, bs, float(rng.uniform(0.5, 5.0)), (h, w))
        rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
        noise = bg.sigma
        if rng.random() < 0.4:
            bg.noise = background.Background(np.abs(rng.normal(3.0, 1.0, (ny, nx))) + 0.5, bs,
                                             bg.sigma, (h, w), bg.nodes)
            noise = bg.noise.at(rows, cols)
        model = bg.at(rows, cols)
        th, tw = extract._TILE
        bound = np.repeat(np.repeat(bg.tile_lower_bound(th, tw), th, 0), tw, 1)[:h, :w]
        assert (bound <= model).all()
        det = (model + rng.normal(0.0, 3.0, (h, w)) * noise).astype(np.float32)
        scale = float(rng.uniform(0.5, 5.0))
        cand, level = extract._candidate_pixels(det, bg, scale)
        want = np.flatnonzero(det > model + scale * noise)
        np.testing.assert_array_equal(cand, want)
        np.testing.assert_array_equal(level, model.ravel()[want])


def test_candidates_from_counts_as_from_floats():
    """The candidate pass over a camera's integers (8 and 16 bits, signed and not) keeps
    exactly the pixels, and the levels, of the pass over their float32 copy: skies whose
    thresholds fall between counts, on whole counts, above the type's range (no pixel
    passes) and below it (every pixel is a candidate: no such limit in the type)."""
    rng = np.random.default_rng(5)
    for dtype in (np.uint8, np.uint16, np.int16):
        info = np.iinfo(dtype)
        for level in (info.min - 40.0, info.min + 20.0, 0.5 * (info.min + info.max),
                      info.max - 3.0, info.max + 40.0):
            h, w = int(rng.integers(20, 200)), int(rng.integers(20, 200))
            bs = int(rng.choice([16, 33, 64]))
            ny, nx = (len(n) for n in background._block_nodes((h, w), bs))
            grid = level + rng.normal(0.0, 4.0, (ny, nx)) + 3.0 * np.arange(nx)
            bg = background.Background(grid, bs, 2.0, (h, w))
            counts = np.clip(rng.normal(level, 10.0, (h, w)), info.min, info.max).astype(dtype)
            det = counts.astype(np.float32)
            for scale in (0.0, 0.25, 1.0, 3.0):
                want = extract._candidate_pixels(det, bg, scale)
                got = extract._candidate_pixels(det, bg, scale, counts)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
    flat = background.Background(np.array([[100.0]]), None, 2.0, (30, 40))
    counts = rng.integers(90, 120, (30, 40)).astype(np.uint8)
    want = extract._candidate_pixels(counts.astype(np.float32), flat, 2.5)
    got = extract._candidate_pixels(counts.astype(np.float32), flat, 2.5, counts)
    np.testing.assert_array_equal(got[0], want[0])


def test_counted_medians_as_partition():
    """Block medians of a dark integer sky (a few values: counted) equal the partition's
    to the bit, odd and even sample counts, 8- and 16-bit, with bright outliers; and the
    whole block grid of such a frame is the same by either route."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        ny, nx, n = int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(1, 300))
        dtype = rng.choice([np.uint8, np.uint16, np.int16])
        tiles = (int(rng.integers(0, 100)) + rng.integers(0, int(rng.integers(1, 20)),
                                                           (ny, nx, n))).astype(dtype)
        tiles[..., :2] = 250
        lo = int(tiles.min())
        np.testing.assert_array_equal(
            background._counted_medians(tiles, lo, int(tiles.max()) - lo + 1),
            background._kth(tiles).astype(np.float64))
    frame = (13 + rng.poisson(0.4, (200, 300))).astype(np.uint16)
    frame[50:53, 60:63] = 255
    grid = background._block_levels(frame, 32)
    tiles = frame[:192, :288].reshape(6, 32, 9, 32)[:, ::2, :, ::2].transpose(0, 2, 1, 3)
    np.testing.assert_array_equal(grid[:6, :9], background._kth(
        np.ascontiguousarray(tiles).reshape(6, 9, -1)).astype(np.float64))



def test_block_levels_partition_gathered_copies_only():
    """The block medians partition the samples in place only when they were gathered
    into a copy: a frame narrower than a small block is its own tiles (no copy), and
    stays as it was; the levels are each block's median (np.median) either way."""
    rng = np.random.default_rng(11)
    for shape, bs in (((40, 5), 8), ((40, 70), 8), ((100, 130), 32)):
        frame = rng.integers(0, 4000, shape).astype(np.uint16)
        before = frame.copy()
        grid = background._block_levels(frame, bs)
        np.testing.assert_array_equal(frame, before)
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                block = frame[i * bs:(i + 1) * bs, j * bs:(j + 1) * bs]
                step = [background._sample_step(n) for n in block.shape]
                assert grid[i, j] == np.median(block[::step[0], ::step[1]]), (shape, i, j)

def test_block_levels_of_8_bit_counts_as_of_their_floats():
    """The block medians of 8-bit counts (widened to 16 bits as they are gathered) are
    those of the same values as 16-bit integers and as float32, on a dark sky of a few
    values (counted) and a bright one (partitioned), unsigned and signed, odd and even
    samples per block (partial edge blocks)."""
    rng = np.random.default_rng(6)
    for dtype, wide, level in ((np.uint8, np.uint16, 20), (np.uint8, np.uint16, 120),
                               (np.int8, np.int16, -100), (np.int8, np.int16, 10)):
        frame = np.clip(level + rng.normal(0.0, 1.0 if level == 20 else 9.0, (150, 211)),
                        np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        frame[40:43, 50:53] = np.iinfo(dtype).max
        for bs in (32, 33, 64):
            want = background._block_levels(frame.astype(np.float32), bs)
            np.testing.assert_array_equal(background._block_levels(frame, bs), want)
            np.testing.assert_array_equal(background._block_levels(frame.astype(wide), bs), want)


def test_flattened_jpeg_blocks_are_found_only_in_jpegs():
    """:func:`flattened_blocks` finds the 8-px block grid of a JPEG that flattened its
    sky (quality 65; also cut off the grid: a crop), and nothing in the same frame
    uncompressed, in 8 bits, as a JPEG that kept its noise (quality 85 of its 1-99.9 %
    stretch: a sky of ~20 counts), or as a JPEG that flattened few blocks (quality 40,
    1-6 % of them); :func:`block_grid` finds the same grid, and none in the frame
    uncompressed or in 8 bits."""
    import io

    from PIL import Image

    from skysolve import read_image
    from skysolve.simulate import degrade as dg
    from skysolve.tests.realframes import ALT40, DATA

    image = read_image(DATA / ALT40)
    lo, hi = np.percentile(image, [1.0, 99.9])
    buf = io.BytesIO()
    Image.fromarray(np.clip((image - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=85)
    kept = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    jpeg = dg.jpeg(image, 0.5)
    for frame in (image, dg.quantise_8bit(image, 0.5), kept, dg.jpeg(image, 1.0)):
        sigma = extract.extract_centroids(frame).background_sigma
        assert not background.flattened_blocks(frame.astype(np.float32), sigma)
    for frame in (image, dg.quantise_8bit(image, 0.5)):  # no blocks
        sigma = extract.extract_centroids(frame).background_sigma
        assert background.block_grid(frame.astype(np.float32), sigma) is None
    for cut in (jpeg, jpeg[3:, 5:]):
        phases = [background._block_phase(cut.astype(np.float32), axis, 1.0) for axis in (0, 1)]
        assert phases == ([0, 0] if cut is jpeg else [5, 3])
        assert background.block_grid(cut.astype(np.float32), 1.0) == tuple(phases)
        assert background.flattened_blocks(cut.astype(np.float32), 1.0)


def test_a_constant_sky_is_no_flattened_jpeg():
    """8-bit renders of 5-40 stars on a constant sky without noise: the only steps are at
    the stars' edges, a few dozen among the 2,000 sampled at each phase of the block
    grid, and one phase's mean exceeded the others' by chance, so that 11 of 20 such
    frames counted as JPEGs that flattened their sky (every block constant) and the
    matched-filter pass kept the unfiltered threshold: 10 of this one's 21 stars found
    (19 with the filter's threshold, none of them false)."""
    from skysolve.tests.frames import render_stars, scattered_stars

    for seed in range(20):
        rng = np.random.default_rng(seed)
        x, y = scattered_stars(rng, (768, 1024), int(rng.integers(5, 40)))
        flux = 10 ** rng.uniform(1.0, 3.0, len(x))
        image = np.clip(np.round(20.0 + render_stars((768, 1024), x, y, flux,
                                                     float(rng.uniform(1.0, 2.5)))),
                        0, 255).astype(np.uint8)
        assert not background.flattened_blocks(image.astype(np.float32), 0.5), seed
        if seed == 1:
            found = extract.extract_centroids(image).as_array()
            near = np.hypot(found[:, None, 0] - x, found[:, None, 1] - y).min(axis=1) < 1.5
            assert len(x) == 21 and np.count_nonzero(near) >= 19 and near.all()


def test_block_nodes_are_the_mean_sampled_positions():
    """Each block's node is the mean of the rows (columns) its median samples: every
    other one from 16 px up, every one in a thinner edge block; a block as large as the
    frame has one node at its middle."""
    for shape, bs in (((100, 70), 32), ((40, 5), 8), ((64, 64), 64), ((50, 33), 16)):
        rows, cols = background._block_nodes(shape, bs)
        for nodes, length in ((rows, shape[0]), (cols, shape[1])):
            if bs >= length:
                assert nodes.tolist() == [0.5 * (length - 1)]
                continue
            want = []
            for start in range(0, length, bs):
                size = min(bs, length - start)
                want.append(float(np.mean(np.arange(start, start + size,
                                                    background._sample_step(size)))))
            assert nodes.tolist() == want, (shape, bs)


def test_a_constant_surround_is_left_out_of_the_noise():
    """An all-sky lens's disc of 8-bit sky (noise 3-8 counts, vignetted so that its rim
    clips at 0) in a surround at one value (1: a JPEG's decoded black) over a third of
    the frame. The surround's pixels tied at the model's level and the MAD of the whole
    sample measured 0.6-0.8 counts for all three (the threshold then lay in the sky's
    noise); they have no noise to measure, and are left out of it."""
    rng = np.random.default_rng(3)
    h, w = 960, 1280
    yy, xx = np.mgrid[:h, :w] + 0.5
    r = np.hypot(xx - 0.5 * w, yy - 0.5 * h)
    level = 85.0 * np.clip(1.0 - (r / 520.0) ** 2, 0.0, None) - 5.0
    for noise in (3.0, 5.0, 8.0):
        sky = np.clip(np.round(level + rng.normal(0.0, noise, (h, w))), 0, 255)
        image = np.where(r < 520.0, sky, 1.0).astype(np.float32)
        bg = background.estimate_background(image, 64, quantum=1.0)
        assert abs(bg.sigma - noise) < 0.2 * noise, (noise, bg.sigma)


def test_a_black_area_holding_stars_keeps_them():
    """A sky clipped to black (0) over the left half of an 8-bit frame, the right half
    sky of 30 counts under 2 of noise: the black area is masked either way (its edge
    would ring with false detections), but the stars it holds -- small blobs rising 7
    sigmas and more above it, resolved, wholly 16 px inside -- are handed back with
    their light above the black; impulses (hot pixels) and stars at its edge are not,
    and fewer than three stars leave it a surround."""
    from skysolve.tests.frames import render_stars

    h, w = 400, 600
    rng = np.random.default_rng(5)
    sky = 30.0 + rng.normal(0.0, 2.0, (h, w))
    x = np.array([-200.0, -150.0, -100.0, -220.0, -60.0])  # centred pixels
    y = np.array([-120.0, 40.0, 130.0, 90.0, -30.0])
    stars = render_stars((h, w), x, y, np.full(5, 3000.0), 1.2)
    black = (np.arange(w) < w // 2)[None, :].repeat(h, axis=0)
    image = np.round(np.where(black, np.clip(stars, 0, 255), sky + stars))
    mask, held = background.dark_constant_areas(image.astype(np.float32), 1.0)
    assert held is not None
    idx, lift = held
    kept = mask.copy()
    kept.ravel()[idx] = True
    assert kept[:, : w // 2 - 20].all() and not mask[:, w // 2 + 20:].any()
    assert not mask.ravel()[idx].any()
    rows, cols = np.unravel_index(idx, (h, w))
    near = np.hypot(cols[:, None] + 0.5 - w / 2 - x, rows[:, None] + 0.5 - h / 2 - y).min(axis=0)
    assert (near < 1.0).all()  # every star's peak handed back
    assert np.array_equal(lift, image.ravel()[idx])  # (their light above the black, 0)
    # hot pixels instead of stars: a surround
    impulses = np.where(black, 0.0, np.round(sky))
    impulses[h // 2 + np.arange(-150, 151, 30), 100] = 200.0
    mask, held = background.dark_constant_areas(impulses.astype(np.float32), 1.0)
    assert mask[:, : w // 2 - 20].all() and held is None
    # two stars deep inside and the others at its edge: a surround
    edge_x = np.array([-200.0, -150.0, -10.0, -5.0, -12.0])
    few = render_stars((h, w), edge_x, y, np.full(5, 3000.0), 1.2)
    image = np.round(np.where(black, np.clip(few, 0, 255), sky + few))
    assert background.dark_constant_areas(image.astype(np.float32), 1.0)[1] is None


def test_dark_area_edge_and_masked_pixels_hold_no_star():
    """A black half-frame is a surround, not a sky stretched to black, when of its
    stars only two lie wholly inside it: stars the frame's edge cuts are not wholly
    inside (the edge bounds the area as the sky does), and neither are pixels with no
    data (masked, filled with sky noise before the test) a star rising from the black."""
    from skysolve.tests.frames import render_stars

    h, w = 400, 600
    rng = np.random.default_rng(7)
    sky = 30.0 + rng.normal(0.0, 2.0, (h, w))
    black = (np.arange(w) < w // 2)[None, :].repeat(h, axis=0)
    x = np.array([-200.0, -150.0])  # centred pixels, deep inside
    y = np.array([-120.0, 40.0])

    def frame(xs, ys):
        stars = render_stars((h, w), np.asarray(xs), np.asarray(ys), np.full(len(xs), 3000.0),
                             1.2)
        return np.round(np.where(black, np.clip(stars, 0, 255), sky + stars)).astype(np.float32)

    # three more stars, cut by the left, top and bottom edges of the frame
    cut = frame(np.r_[x, -w / 2 + 0.5, -100.0, -180.0], np.r_[y, 10.0, -h / 2 + 0.5, h / 2 - 1.0])
    mask, held = background.dark_constant_areas(cut, 1.0)
    assert mask[:, : w // 2 - 20].all() and held is None
    # the same three moved 40 px inside: a sky stretched to black, its five stars held
    inside = frame(np.r_[x, -w / 2 + 40.0, -100.0, -180.0],
                   np.r_[y, 10.0, -h / 2 + 40.0, h / 2 - 40.0])
    held = background.dark_constant_areas(inside, 1.0)[1]
    assert held is not None and len(np.unique(held[0])) >= 5
    # three masked patches filled with the sky's noise, as the extraction fills them
    image = frame(x, y)
    bad = np.zeros((h, w), bool)
    for r, c in ((60, 60), (200, 120), (330, 200)):
        bad[r:r + 3, c:c + 3] = True
    image[bad] = sky[bad].astype(np.float32)
    assert background.dark_constant_areas(image, 1.0)[1] is not None  # (taken for stars)
    mask, held = background.dark_constant_areas(image, 1.0, bad)
    assert mask[:, : w // 2 - 20].all() and held is None


def corner_distance2(h: int, w: int) -> np.ndarray:
    """Each pixel's squared distance from the centre of an ``h`` x ``w`` frame, 1 at its
    corners (a vignetting's falloff)."""
    yy, xx = np.mgrid[:h, :w] + 0.5
    return ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)


def test_a_stretch_clipping_a_vignetted_sky_masks_its_floor_only():
    """A sky of 120 counts under 6 of noise, vignetted to below 0 in its corners and
    stretched to 8 bits at gamma 0.25 from 0 (11-18 % of the frame clipped there): the
    pixels at 0 are masked, exactly those. The same sky stretched linearly, a black
    silhouette (a solid area at 0 whose edge only is lit), a sky of 1 count under 3
    clipped at 0 all over (its own noise: a third of it at 0), and the vignetted sky
    unclipped keep every pixel."""
    rng = np.random.default_rng(11)
    h, w = 480, 640
    r2 = corner_distance2(h, w)

    def stretched(linear, gamma):
        return np.round(255.0 * np.clip(linear / 160.0, 0.0, 1.0) ** gamma).astype(np.float32)

    for fall in (1.6, 1.8):
        linear = 120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w))
        image = stretched(linear, 0.25)
        floor = image == 0
        assert 0.05 < floor.mean() < 0.25
        got = background.clipped_floor(image, 1.0)
        assert got is not None and np.array_equal(got, floor)
        # pixels already unusable are neither counted nor returned
        bad = np.zeros((h, w), bool)
        bad[:40] = True
        assert np.array_equal(background.clipped_floor(image, 1.0, bad), floor & ~bad)
        assert background.clipped_floor(stretched(linear, 1.0), 1.0) is None
        unclipped = np.round(120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w)))
        assert background.clipped_floor(unclipped.astype(np.float32), 1.0) is None
    sky = stretched(120.0 + rng.normal(0.0, 6.0, (h, w)), 0.25)
    sky[300:, :200] = 0.0  # a roof
    sky[100:300, 60:66] = 0.0  # its antenna
    assert background.clipped_floor(sky, 1.0) is None
    faint = np.clip(np.round(1.0 + rng.normal(0.0, 3.0, (h, w))), 0, 255)
    assert 0.25 < np.mean(faint == 0) < 0.45
    assert background.clipped_floor(faint.astype(np.float32), 1.0) is None


def test_a_black_point_above_the_skys_median_masks_its_floor():
    """A sky of 120 counts under 6 of noise stretched to 8 bits from its 60th or 75th
    percentile at gamma 0.2, as a background edited to black: most of the frame sits at
    0, and its median with it, so there was no sky above the floor to compare it with,
    and the lifted noise of the rest (770-2,000 detections on the real frames so made)
    stayed. The floor is compared with the sky the stretch left, and masked: exactly the
    pixels at 0. The same stretched linearly, and a faint sky of 0 counts under 3 clipped
    at 0 over half of it (its own noise), keep every pixel."""
    rng = np.random.default_rng(5)
    h, w = 480, 640
    linear = 120.0 + rng.normal(0.0, 6.0, (h, w))
    for percentile in (60.0, 75.0):
        black = np.percentile(linear, percentile)
        for gamma, masked in ((0.2, True), (1.0, False)):
            image = np.round(255.0 * np.clip((linear - black) / (160.0 - black), 0.0, 1.0)
                             ** gamma).astype(np.float32)
            floor = image == 0
            assert np.mean(floor) > 0.55  # (premise: the median on the floor)
            got = background.clipped_floor(image, 1.0)
            if masked:
                assert got is not None and np.array_equal(got, floor)
            else:
                assert got is None
    faint = np.clip(np.round(rng.normal(0.0, 3.0, (h, w))), 0, 255).astype(np.float32)
    assert np.mean(faint == 0) > 0.5
    assert background.clipped_floor(faint, 1.0) is None


@pytest.mark.parametrize("quality", [None, 90, 60])
def test_the_stars_a_clipped_floor_holds_are_told_from_its_impulses(quality):
    """A vignetted sky stretched at gamma 0.25 from 0 clips its corners whole; stars
    placed deep in them rise above the floor. Every one of them is returned (the light
    returned centred within 0.5 px of it, 90 % of its light above the floor's top), no
    single hot pixel there and no star of the lit sky is, and a floor with no star in it
    holds none."""
    from scipy.ndimage import label

    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    rng = np.random.default_rng(5)
    h, w = 480, 640
    yy, xx = np.mgrid[:h, :w] + 0.5
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    linear = 120.0 * (1.0 - 1.8 * r2) + rng.normal(0.0, 6.0, (h, w))
    # (row, col): 340-360 px from the centre, where the sky clips from 298 px on
    deep = [(40.0, 36.3), (440.4, 45.5), (430.2, 600.7), (35.6, 600.2), (449.7, 610.1),
            (60.3, 22.4)]
    lit = [(240.2, 320.6), (200.5, 400.3), (300.4, 250.2)]
    for r, c in deep + lit:
        linear += 400.0 * np.exp(-((yy - 0.5 - r) ** 2 + (xx - 0.5 - c) ** 2) / (2 * 1.3 ** 2))
    hot = [(60, 60), (420, 580), (30, 610)]
    impulses = linear.copy()
    for r, c in hot:
        impulses[r, c] += 600.0
    def picture(sky):
        out = np.round(255.0 * np.clip(sky / 160.0, 0.0, 1.0) ** 0.25)
        return (out if quality is None else jpeg_of(out, quality)).astype(np.float32)
    image = picture(impulses)
    floor = background.clipped_floor(image, 1.0)
    assert floor is not None
    idx, light = background.clipped_floor_stars(image, floor, 1.0)
    assert np.all(light > 0)
    blobs = np.zeros(h * w, bool)
    blobs[idx] = True
    labels, n = label(blobs.reshape(h, w), np.ones((3, 3), bool))
    rows, cols = np.divmod(idx, w)
    blob = labels.flat[idx]
    weight = np.bincount(blob, light)[1:]
    centres = np.column_stack([np.bincount(blob, light * rows)[1:] / weight,
                               np.bincount(blob, light * cols)[1:] / weight])
    assert n == len(deep)
    for r, c in deep:
        assert np.hypot(*(centres - [r, c]).T).min() <= 0.5
    top = image[floor].max()
    for r, c in deep:
        window = (slice(int(r) - 6, int(r) + 7), slice(int(c) - 6, int(c) + 7))
        above = np.clip(image[window] - top, 0, None)
        assert above[labels[window] > 0].sum() >= 0.9 * above.sum()
    starless = picture(120.0 * (1.0 - 1.8 * r2) + rng.normal(0.0, 6.0, (h, w)))
    bare = background.clipped_floor(starless, 1.0)
    assert bare is not None and background.clipped_floor_stars(starless, bare, 1.0) is None


@pytest.mark.parametrize("quality", [None, 90])
def test_the_noise_of_a_sky_clipped_just_below_its_black_point_is_no_star(quality):
    """Vignetted corners that level out 1.7 noise sigmas below the black point: their
    noise crosses it at 4 % of the pixels, in pairs and triples as well, which a gamma
    of 0.25 lifts to 40-50 % of the white. Those are no stars; the three bright stars
    placed there, rising well above them, are returned (and nothing else)."""
    from scipy.ndimage import label

    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    rng = np.random.default_rng(8)
    h, w = 480, 640
    yy, xx = np.mgrid[:h, :w] + 0.5
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    linear = np.maximum(120.0 * (1.0 - 1.8 * r2), -10.0) + rng.normal(0.0, 6.0, (h, w))
    deep = [(40.0, 36.3), (440.4, 45.5), (430.2, 600.7)]
    for r, c in deep:
        linear += 400.0 * np.exp(-((yy - 0.5 - r) ** 2 + (xx - 0.5 - c) ** 2) / (2 * 1.3 ** 2))
    picture = np.round(255.0 * np.clip(linear / 160.0, 0.0, 1.0) ** 0.25)
    image = (picture if quality is None else jpeg_of(picture, quality)).astype(np.float32)
    floor = background.clipped_floor(image, 1.0)
    assert floor is not None
    corners = r2 > 0.75
    assert 0.02 < np.mean(picture[corners] > 0) < 0.08  # (the noise crossing)
    idx, _ = background.clipped_floor_stars(image, floor, 1.0)
    blobs = np.zeros(h * w, bool)
    blobs[idx] = True
    labels, n = label(blobs.reshape(h, w), np.ones((3, 3), bool))
    assert n == len(deep)
    for r, c in deep:
        assert labels[int(round(r)), int(round(c))] > 0


@pytest.mark.parametrize("quality", [95, 75, 40])
def test_a_jpeg_of_a_clipped_stretch_masks_the_floor_it_spread(quality):
    """The vignetted sky stretched at gamma 0.25 from 0, saved as a JPEG: the encoder
    spreads the clipped corners over the values above 0 (up to 9-33 of 255), so the
    exact floor held a part of them only, and its lit neighbours were the spread's few
    counts, no strong gamma's black point: nothing was masked. The spread band below the
    gap the gamma left is masked now: at least 95 % of the pixels the stretch clipped,
    at most 0.2 % of the others, 0.01 % of the sky above 100. Linear, and unclipped, the
    same JPEGs keep every pixel, as do a JPEG'd black roof and a faint sky clipped by its
    own noise."""
    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    rng = np.random.default_rng(11)
    h, w = 480, 640
    r2 = corner_distance2(h, w)

    def stretched(linear, gamma):
        return np.round(255.0 * np.clip(linear / 160.0, 0.0, 1.0) ** gamma)

    for fall in (1.6, 1.8):
        linear = 120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w))
        picture = stretched(linear, 0.25)
        clipped = picture == 0
        image = jpeg_of(picture, quality).astype(np.float32)
        assert np.count_nonzero(image == 0) < 0.9 * np.count_nonzero(clipped)  # (spread)
        got = background.clipped_floor(image, 1.0)
        assert got is not None
        assert got[clipped].mean() >= 0.95
        assert got[~clipped].mean() <= 0.002
        assert got[picture > 100].mean() <= 1e-4
        assert background.clipped_floor(
            jpeg_of(stretched(linear, 1.0), quality).astype(np.float32), 1.0) is None
        unclipped = 120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w))
        assert background.clipped_floor(
            jpeg_of(unclipped, quality).astype(np.float32), 1.0) is None
    sky = stretched(120.0 + rng.normal(0.0, 6.0, (h, w)), 0.25)
    sky[300:, :200] = 0.0  # a roof
    sky[100:300, 60:66] = 0.0  # its antenna
    assert background.clipped_floor(jpeg_of(sky, quality).astype(np.float32), 1.0) is None
    faint = 1.0 + rng.normal(0.0, 3.0, (h, w))
    assert background.clipped_floor(jpeg_of(faint, quality).astype(np.float32), 1.0) is None


@pytest.mark.parametrize("quality", [95, 75])
def test_a_jpeg_of_a_clip_at_video_black_masks_the_floor_it_spread_both_ways(quality):
    """The vignetted sky stretched at gamma 0.25 into video range (black 16, white 235),
    saved as a JPEG: the encoder spreads the clipped corners below 16 as well as above,
    so the frame's least value holds a few pixels, not the floor, and nothing was masked
    (the real frames so stretched from their 15th percentile at gamma 0.3 kept 1 to 21
    stars among their 25 brightest detections, against 24-25 from black 0). The spread
    floor is masked: at least 95 % of the pixels the stretch clipped, at most 0.2 % of
    the others. Linear, and unclipped, the same JPEGs keep every pixel, as does a sky
    whose least values are its own noise's."""
    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    rng = np.random.default_rng(11)
    h, w = 480, 640
    r2 = corner_distance2(h, w)

    def video(linear, gamma):
        return np.round(16.0 + 219.0 * np.clip(linear / 160.0, 0.0, 1.0) ** gamma)

    for fall in (1.6, 1.8):
        linear = 120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w))
        picture = video(linear, 0.25)
        clipped = picture == 16
        image = jpeg_of(picture, quality).astype(np.float32)
        sample = background._subsample(image, background._CLIP_SAMPLES)
        # (premise: the least value holds too few pixels to be taken for the floor)
        assert np.count_nonzero(sample == sample.min()) < 0.01 * sample.size
        got = background.clipped_floor(image, 1.0)
        assert got is not None
        assert got[clipped].mean() >= 0.95
        assert got[~clipped].mean() <= 0.002
        assert background.clipped_floor(
            jpeg_of(video(linear, 1.0), quality).astype(np.float32), 1.0) is None
        unclipped = 16.0 + 120.0 * (1.0 - fall * r2) + rng.normal(0.0, 6.0, (h, w))
        assert background.clipped_floor(
            jpeg_of(unclipped, quality).astype(np.float32), 1.0) is None
    sky = np.round(60.0 + rng.normal(0.0, 3.0, (h, w))).astype(np.float32)
    assert background.clipped_floor(sky, 1.0) is None


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_a_pixel_below_a_clipped_floor_that_the_sample_missed_is_masked_with_it(backend):
    """The JPEG'd vignetted stretch 10 counts up, with dead pixels at 0 that the floor's
    sample does not hold: the floor is the sample's least value, and the dead pixels'
    steps below it broke the histogram of its band (numpy's bincount refused them: a
    16-bit frame stretched at gamma 0.3 with a short dead column crashed the extraction).
    They lie in no band; the floor is masked as without them, and they with it."""
    from skysolve import _jit
    from skysolve.extraction import kernels
    from skysolve.extraction.tests.test_hard_frames import jpeg_of

    if backend == "compiled" and not _jit.available():
        pytest.skip("numba not available")
    rng = np.random.default_rng(11)
    h, w = 480, 640
    r2 = corner_distance2(h, w)
    linear = 120.0 * (1.0 - 1.7 * r2) + rng.normal(0.0, 6.0, (h, w))
    picture = np.round(255.0 * np.clip(linear / 160.0, 0.0, 1.0) ** 0.25)
    image = jpeg_of(picture, 75).astype(np.float32) + 10.0
    dead = np.zeros((h, w), bool)
    dead[200:240:2, 320] = True  # (even rows and columns: the histogram's pixels)
    sample = background._subsample(dead, background._CLIP_SAMPLES)
    assert not sample.any()  # (premise: the sample misses them)
    with kernels.backend(backend):
        want = background.clipped_floor(image, 1.0)
        image[dead] = 0.0
        got = background.clipped_floor(image, 1.0)
    assert want is not None and got is not None
    assert got[dead].all()
    assert np.array_equal(got[~dead], want[~dead])


def test_even_spread_is_the_same_sequence_whatever_sizes_came_before():
    """The golden-ratio offsets are kept for the process and sliced: each size's are
    ``(k * phi mod 1 - 1/2) * quantum`` to the bit, in any order of sizes, and the kept
    sequence cannot be changed through a returned array."""
    from skysolve.extraction import background

    golden = (math.sqrt(5.0) - 1.0) / 2.0
    for n, q in ((5, 1.0), (31570, 0.5), (7, 3.0), (100_000, 1.0), (31304, 2.0), (0, 1.0)):
        got = background._even_spread(n, q)
        expected = (np.arange(n, dtype=np.float64) * golden % 1.0 - 0.5) * q
        np.testing.assert_array_equal(got, expected)
        assert got.min(initial=0.0) >= -0.5 * q and got.max(initial=0.0) < 0.5 * q
    with pytest.raises(ValueError):
        background._golden_offsets(10)[0] = 1.0
