"""Burned-in captions (:mod:`skysolve.extraction.overlay`): their glyphs are rejected as
'overlay', the stars are kept, saturated stars and clusters too, and the frames solve."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from skysolve import extract_centroids, read_image
from skysolve.geometry import radec_to_vector
from skysolve.simulate import degrade as dg
from skysolve.tests.realframes import ALT40, ALT60, DATA

#: The captions tried: (steps before, the overlay's kind and font, steps after).
CAPTIONS = {
    "white-bitmap": ([], "white", "bitmap", []),
    "grey-truetype": ([], "grey", "truetype", []),
    "boxed-truetype": ([], "boxed", "truetype", []),
    "8bit-white": ([("quantise_8bit", 0.5)], "white", "bitmap", []),
    "white-jpeg": ([], "white", "truetype", [("jpeg", 0.5)]),
}


def captioned(name: str, frame: str = ALT40, seed: int = 0, lines: float = 1.0):
    """The real frame with six lines of caption: (clean, captioned, text area)."""
    before, kind, font, after = CAPTIONS[name]
    clean = dg.degrade(read_image(DATA / frame), before, seed=seed) if before \
        else read_image(DATA / frame)
    text = dg.text_overlay(clean, lines, kind=kind, font=font, seed=seed)
    area = ndimage.binary_dilation(text != clean, iterations=6)
    img = dg.degrade(text, after, seed=seed) if after else text
    return clean, img, area


def inside(area: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = area.shape
    return area[np.clip((y + h / 2).astype(int), 0, h - 1),
                np.clip((x + w / 2).astype(int), 0, w - 1)]


@pytest.mark.parametrize("name", CAPTIONS)
def test_caption_glyphs_are_overlay_and_the_stars_stay(name):
    """Six lines of caption on a real frame: hundreds of glyph blobs, brighter than the
    stars, flat-topped, most of them saturated. They are rejected as 'overlay' (before:
    kept, 100-500 of them against the frame's 30-40 stars); every star of the clean
    frame away from the text and the frame's edges (its brightest 40: an 8-bit frame's
    faint detections come and go with the noise the caption lifts) is still kept."""
    clean, img, area = captioned(name)
    res = extract_centroids(img)
    xy = res.as_array()
    rej = res.rejected
    text = rej[rej["reason"] == "overlay"]
    assert len(text) >= 80
    assert inside(area, text["x"], text["y"]).mean() >= 0.97
    # (at most a few glyph pieces stay: a lone letter, an end of a line)
    assert inside(area, xy[:, 0], xy[:, 1]).sum() <= max(5, 0.05 * len(text))
    stars = extract_centroids(clean).as_array()[:40]
    h, w = img.shape
    far = ~inside(ndimage.binary_dilation(area, iterations=10), stars[:, 0], stars[:, 1])
    far &= (np.abs(stars[:, 0]) < w / 2 - 8) & (np.abs(stars[:, 1]) < h / 2 - 8)
    d = np.hypot(stars[far, None, 0] - xy[None, :, 0], stars[far, None, 1] - xy[None, :, 1])
    assert (d.min(axis=1) < 0.5).mean() >= 0.95


@pytest.mark.parametrize("name, frame", [("white-bitmap", ALT40), ("grey-truetype", ALT60),
                                         ("boxed-truetype", ALT40), ("8bit-white", ALT60),
                                         ("white-jpeg", ALT40)])
def test_captioned_real_frames_solve_where_the_clean_ones_do(small_db, name, frame):
    """Lost in space (no field-of-view estimate), as ``solve_image`` solves a dropped
    frame: before, the glyphs filled the brightest centroids and most of these frames did
    not solve (no match in the time allowed); now each solves within 5" of its clean
    frame."""
    clean, img, _ = captioned(name, frame, seed=1)

    def solve(image):
        res = extract_centroids(image)
        return small_db.solve_from_centroids(res, image_shape=image.shape)

    ref, got = solve(clean), solve(img)
    assert ref and got
    off = np.degrees(np.arccos(np.clip(
        radec_to_vector(got.ra_deg, got.dec_deg) @ radec_to_vector(ref.ra_deg, ref.dec_deg),
        -1.0, 1.0))) * 3600.0
    assert off < 5.0


def test_clean_real_frames_have_no_overlay():
    for frame in (ALT40, ALT60):
        assert not (extract_centroids(read_image(DATA / frame)).rejected["reason"]
                    == "overlay").any()


def _cluster(hip_catalog, ra: float, dec: float, fov: float, shape=(768, 1024)):
    """A rendered field, 8 bits with its bright stars clipped at 255 (saturated)."""
    from skysolve.camera import CameraModel
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(fov, shape[1], shape[0])
    img, _ = render_starfield(hip_catalog.propagate(2025.0), cam,
                              radec_roll_to_rotation(ra, dec, 20.0), psf=1.0,
                              zeropoint_mag=17.0, background_e=800.0, read_noise_e=10.0,
                              seed=0)
    return dg.quantise_8bit(img, 1.0)


@pytest.mark.parametrize("fov", [8.0, 15.0, 30.0])
def test_saturated_stars_of_a_cluster_are_not_overlay(hip_catalog, fov):
    """The Pleiades at 8-30 deg on an 8-bit frame: dozens of saturated stars, all at 255,
    some of them in rows; none is overlay (a chain of them across rows once was), and
    with a caption in a corner every saturated star away from it is still kept (within
    a few pixels: the caption lifts the noise, and the threshold with it, a little, and
    the blends of bright stars take in a little more or less)."""
    img = _cluster(hip_catalog, 56.75, 24.12, fov)
    res = extract_centroids(img)
    assert res.saturated.sum() >= 20
    assert not (res.rejected["reason"] == "overlay").any()
    text = dg.text_overlay(img, 1.0, font="bitmap", place="bottom-left", seed=3)
    rows, cols = np.nonzero(text != img)
    area = np.zeros(img.shape, dtype=bool)  # the caption's box, and 10 px around it
    area[max(rows.min() - 10, 0):rows.max() + 11, max(cols.min() - 10, 0):cols.max() + 11] = True
    got = extract_centroids(text)
    glyphs = got.rejected[got.rejected["reason"] == "overlay"]
    assert len(glyphs) >= 60 and inside(area, glyphs["x"], glyphs["y"]).all()
    sat = res.as_array()[res.saturated]
    sat = sat[~inside(area, sat[:, 0], sat[:, 1])]
    xy = got.as_array()[got.saturated]
    d = np.hypot(sat[:, None, 0] - xy[None, :, 0], sat[:, None, 1] - xy[None, :, 1])
    assert (d.min(axis=1) < 5.0).all()


@pytest.mark.slow
def test_a_rich_8bit_all_sky_frame_has_no_overlay(hip_catalog):
    """A 180 deg fisheye stretched to 8 bits: 1,700-1,900 stars saturated at 255, a few
    of them in short rows by chance (5 were overlay once); none is overlay."""
    from skysolve.camera import CameraModel
    from skysolve.simulate import random_attitudes, render_starfield

    cam = CameraModel.from_fov(180.0, 1200, 1200, projection="equidistant")
    for k in (2, 3):
        R = random_attitudes(4, rng=2)[k]
        img, _ = render_starfield(hip_catalog.propagate(2025.0), cam, R, seed=k,
                                  background_e=500.0, image_circle_px=588, psf=1.0,
                                  vignetting=0.5, full_well_e=60000.0)
        res = extract_centroids(dg.degrade(img, "quantise_8bit", 1.0, seed=1))
        assert res.saturated.sum() > 1500
        assert not (res.rejected["reason"] == "overlay").any()


def drawn(steps, frame: str, seed: int):
    """The real frame with graphics drawn over it (``steps`` of
    :func:`skysolve.simulate.degrade.degrade`): (clean, drawn, the graphics' area)."""
    clean = read_image(DATA / frame)
    img = dg.degrade(clean, steps, seed=seed)
    return clean, img, ndimage.binary_dilation(img != clean, iterations=3)


#: Compass letters and logos tried: (steps, frame, seed, the fewest letters or pieces).
GRAPHICS = {
    "compass-8": ([("compass", 1.0)], ALT40, 0, 8),
    "compass-4": ([("compass", 0.5)], ALT60, 1000, 4),
    "compass-grey": ([("compass:grey", 1.0)], ALT60, 1002, 8),
    "logo": ([("logo", 1.0)], ALT60, 1000, 1),
}


@pytest.mark.parametrize("name", GRAPHICS)
def test_compass_letters_and_logos_are_overlay_and_the_stars_stay(name):
    """Large compass letters (N, E, S, W, and NE ... NW) and a logo drawn over a real
    frame: each letter a blob or a few, flat at one value (the frame's full scale, or
    40 % of it), hundreds of pixels, as bright as the brightest stars and not in a row
    of many. They are rejected as 'overlay' (before: 3-9 of them kept, among the
    brightest centroids); every star of the clean frame away from them is kept (its
    brightest 20: faint detections of 2-3 px come and go with the noise estimate)."""
    steps, frame, seed, least = GRAPHICS[name]
    clean, img, area = drawn(steps, frame, seed)
    res = extract_centroids(img)
    xy = res.as_array()
    assert not inside(area, xy[:, 0], xy[:, 1]).any()
    text = res.rejected[res.rejected["reason"] == "overlay"]
    assert len(text) >= least
    # (a pair of letters, NE, is one blob whose centre may lie between them)
    assert inside(ndimage.binary_dilation(area, iterations=20), text["x"], text["y"]).all()
    stars = extract_centroids(clean).as_array()[:20]
    far = ~inside(ndimage.binary_dilation(area, iterations=10), stars[:, 0], stars[:, 1])
    d = np.hypot(stars[far, None, 0] - xy[None, :, 0], stars[far, None, 1] - xy[None, :, 1])
    assert (d.min(axis=1) < 0.5).all()


@pytest.mark.parametrize("kind", ["white", "grey"])
def test_a_dashed_reticle_is_overlay_and_the_frame_solves(small_db, kind):
    """A dashed cross and a circle drawn over a real frame, 1 px, anti-aliased (so no
    pixel of the dashes ties with another): the dashes are flat bars, lined up end to
    end along the middle row and column. Before, those along the row were kept, the
    brightest 30 or so centroids, and the frame did not solve lost in space; now they
    are overlay and it solves within 5" of the clean frame."""
    clean, img, area = drawn([(f"reticle:{kind}", 0.5)], ALT60, 1003)
    res = extract_centroids(img)
    xy = res.as_array()
    assert inside(area, xy[:, 0], xy[:, 1]).sum() <= 1
    assert (res.rejected["reason"] == "overlay").sum() >= 60
    ref = small_db.solve_from_centroids(extract_centroids(clean), image_shape=img.shape)
    got = small_db.solve_from_centroids(res, image_shape=img.shape)
    assert ref and got
    off = np.degrees(np.arccos(np.clip(
        radec_to_vector(got.ra_deg, got.dec_deg) @ radec_to_vector(ref.ra_deg, ref.dec_deg),
        -1.0, 1.0))) * 3600.0
    assert off < 5.0


@pytest.mark.parametrize("fov", [8.0, 30.0])
def test_compass_letters_on_a_frame_of_saturated_stars(hip_catalog, fov):
    """The Pleiades on an 8-bit frame, dozens of stars saturated at 255, with compass
    letters at 255 too (10-19 noise sigmas up): the letters are overlay (before: the
    brightest centroids), and every saturated star away from them is kept (within a
    few pixels, as with a caption: the blends of bright stars take in a little more or
    less). (Faint stars and anti-aliased slivers of the letters may lie next to
    them.)"""
    img = _cluster(hip_catalog, 56.75, 24.12, fov)
    res = extract_centroids(img)
    lettered = dg.compass(img, 1.0, font="truetype", seed=2)
    area = ndimage.binary_dilation(lettered != img, iterations=10)
    got = extract_centroids(lettered)
    xy = got.as_array()
    assert not inside(area, xy[:20, 0], xy[:20, 1]).any()
    assert (got.rejected["reason"] == "overlay").sum() >= 8
    sat = res.as_array()[res.saturated]
    sat = sat[~inside(area, sat[:, 0], sat[:, 1])]
    assert len(sat) >= 15
    d = np.hypot(sat[:, None, 0] - xy[None, :, 0], sat[:, None, 1] - xy[None, :, 1])
    assert (d.min(axis=1) < 5.0).all()


def _spiked_star(shape, x0: float, y0: float, flux: float, angle_deg: float):
    """A very bright star with a reflector's four diffraction spikes (electrons): a
    Moffat core (beta 2.5, 2 px) and spikes falling as ``t ** -1.5`` along ``t``."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    star = flux * 1.5 / (4.0 * np.pi) * (1.0 + ((xx - x0) ** 2 + (yy - y0) ** 2) / 4.0) ** -2.5
    spikes = np.zeros(shape)
    t = np.arange(1.0, 120.0, 0.25)
    for a in np.radians(angle_deg + np.array([0.0, 90.0, 180.0, 270.0])):
        rows = np.rint(y0 + t * np.sin(a)).astype(int)
        cols = np.rint(x0 + t * np.cos(a)).astype(int)
        on = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        np.add.at(spikes, (rows[on], cols[on]), 0.05 * flux / (1.0 + t[on]) ** 1.5)
    return star + ndimage.gaussian_filter(spikes, 0.7)


@pytest.mark.parametrize("angle, bits", [(45.0, 16), (45.0, 8)])
def test_a_saturated_star_with_diagonal_spikes_is_kept(angle, bits):
    """A very bright star on a real frame, its core and its diffraction spikes clipped
    at full scale, the spikes diagonal: its plateau is an X with sky between the arms,
    as hollow as a letter (before: rejected as 'overlay'). Its clip is a disk and the
    arms run straight out of it, so it is kept, within a pixel of the truth."""
    clean = read_image(DATA / ALT60).astype(np.float64)
    x0, y0 = 500.3, 380.6
    img = clean + _spiked_star(clean.shape, x0, y0, 1e8, angle)
    img = np.clip(np.rint(img), 0, 65535).astype(np.uint16) if bits == 16 \
        else dg.quantise_8bit(np.clip(img, 0, 65535), 1.0)
    res = extract_centroids(img)
    assert not (res.rejected["reason"] == "overlay").any()
    h, w = img.shape
    xy = res.as_array()
    assert np.hypot(xy[:, 0] - (x0 + 0.5 - w / 2), xy[:, 1] - (y0 + 0.5 - h / 2)).min() < 1.0


def test_stars_of_a_frame_stretched_to_a_black_sky_are_kept(hip_catalog):
    """Orion at 10 deg, stretched as a picture is (black point 4 noise sigmas above the
    sky, white point 8): the bright stars are white disks on black, their clips with no
    ring of wings, steps as a filled badge is (before: two of them, of magnitudes 3.3
    and 3.7, were 'overlay'). A star's clip fills the ellipse of its moments: none is
    overlay."""
    from skysolve.camera import CameraModel
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(10.0, 1024, 768)
    img, _ = render_starfield(hip_catalog.propagate(2025.0), cam,
                              radec_roll_to_rotation(83.8, -1.2, 20.0), psf=1.0,
                              zeropoint_mag=17.0, background_e=400.0, read_noise_e=8.0,
                              full_well_e=None, seed=1)
    st = dg.image_statistics(img)
    t = np.clip((img - st.level - 4.0 * st.sigma) / (4.0 * st.sigma), 0.0, 1.0)
    black = np.rint(255.0 * t).astype(np.uint8)
    res = extract_centroids(black)
    assert res.saturated.sum() >= 100
    assert not (res.rejected["reason"] == "overlay").any()


def test_a_field_trailed_along_the_rows_has_no_dashes():
    """The Milky Way at 5 deg, undersampled (0.4 px), every star trailed 60 px along the
    rows: faint trails break into pieces of uneven length end to end, flat thin bars on
    one row as a reticle's dashes are (before: 8 pieces were 'overlay'). A dashed line's
    dashes are of one length: none is overlay."""
    from skysolve import load_gaia
    from skysolve.camera import CameraModel
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(5.0, 1024, 768)
    img, _ = render_starfield(load_gaia().propagate(2025.0), cam,
                              radec_roll_to_rotation(270.0, -28.0, 20.0), psf=0.4,
                              zeropoint_mag=19.0, background_e=200.0, full_well_e=None,
                              noise=False, seed=2)
    trailed = ndimage.convolve(img.astype(np.float64), dg.line_kernel(60, 0.0), mode="nearest")
    trailed = (np.random.default_rng(0).poisson(np.clip(trailed, 0.0, None))
               + np.random.default_rng(1).normal(0.0, 5.0, trailed.shape))
    res = extract_centroids(np.clip(np.rint(trailed), 0, 65535).astype(np.uint16))
    assert not (res.rejected["reason"] == "overlay").any()
