"""All-sky frames: the sky is a disc (the lens's image circle) inside a dark surround.

Known answers: the simulator's image circle (``image_circle_deg`` through the lens
formula gives its radius in pixels), the rendered stars' true positions, and the
attitude the frame was rendered at.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import skysolve
from skysolve import CameraModel, SolverDatabase, extract_centroids
from skysolve.camera import projection as _proj
from skysolve.errors import InvalidArgumentError
from skysolve.extraction.skycircle import find_sky_circle, rim_band_px
from skysolve.geometry import radec_roll_to_rotation
from skysolve.simulate import degrade as dg
from skysolve.simulate import render_starfield
from skysolve.tests.realframes import ALT40, ALT60, DATA


def _allsky(catalog, projection="equisolid", w=1024, h=1024, half_deg=95.0, radius=None,
            seed=1, jpeg=True, text=True, centre=None):
    """An all-sky frame: a ``half_deg`` lens whose circle (``radius`` px, default just
    inside the shorter side) sits in a black surround with read noise, vignetted towards
    the rim, a horizon 5 deg up, captions burned into the surround and JPEG; the lens's
    axis at ``centre`` (centred pixels, default the frame's centre)."""
    code = _proj.code_of(projection)
    radius = 0.5 * min(w, h) - 8 if radius is None else radius
    f = radius / _proj.scalar_radius_of_angle(math.radians(half_deg), code)
    cam = CameraModel(f, w, h, projection=projection, crpix=centre)
    R = radec_roll_to_rotation(40.0 + 70 * seed, 20.0 + 5 * seed, 30.0)
    img, truth = render_starfield(catalog, cam, R, image_circle_deg=half_deg, horizon_deg=5.0,
                                  vignetting=0.5, psf=1.2, background_e=300.0,
                                  read_noise_e=8.0, bias_adu=100.0, zeropoint_mag=15.0,
                                  seed=seed)
    if text:
        img = dg.text_overlay(img, 1.0, kind="white", place="top", seed=seed)
    if jpeg:
        img = dg.jpeg(img, 0.5, seed=seed)
    return img, truth, cam, R, radius


@pytest.fixture(scope="module")
def allsky_db():
    """An all-sky Gaia database (140-180 deg), in a fraction of a second."""
    return SolverDatabase.generate_from_gaia(max_fov_deg=180.0, min_fov_deg=140.0,
                                             progress=False)


@pytest.mark.parametrize("projection, w, h, radius", [
    ("equisolid", 1024, 1024, None),       # the whole disc inside the frame
    ("equidistant", 1280, 960, 600.0),     # cut by the frame's top and bottom
    ("equidistant", 1280, 960, 400.0)])    # a small disc, far from every edge
def test_the_image_circle_is_found_within_two_pixels(hip_catalog, projection, w, h, radius):
    img, _, _, _, r = _allsky(hip_catalog, projection, w, h, radius=radius, jpeg=False)
    circle = find_sky_circle(np.asarray(img))
    assert circle is not None
    assert abs(circle[0]) < 2.0 and abs(circle[1]) < 2.0
    assert circle[2] == pytest.approx(r, abs=2.0)
    # and through JPEG's ringing of the rim; its 8-bit stretch clips the vignetted sky
    # next to the rim to black (0-2 counts over the outer 10-11 % of the disc), so
    # the disc it leaves may be smaller, never larger
    # (or none at all, when the clipped sky no longer ends in a sharp rim)
    circle = find_sky_circle(np.asarray(dg.jpeg(img, 0.5, seed=3)))
    if circle is not None:
        assert abs(circle[0]) < 2.0 and abs(circle[1]) < 2.0
        assert 0.85 * r <= circle[2] <= r + 2.0


def test_frames_without_a_disc_have_no_circle(hip_catalog):
    import skysolve.io.images as images

    for name in (ALT40, ALT60):
        real = images.read_image(DATA / name)
        assert find_sky_circle(np.asarray(real)) is None
        # stretched to 8 bits, its vignetted corners clip to black (0 counts) and the sky
        # ramps up from them: dark corners and a roundish edge, but no rim
        for recipe in ("quantise_8bit", ["vignetting", "jpeg"], ["moonlight", "jpeg"]):
            assert find_sky_circle(dg.degrade(real, recipe, 0.5, seed=0)) is None
    # a wide lens vignetted by 90 % at the corners: its corners are dark, but the light
    # falls smoothly, with no rim
    cam = CameraModel.from_fov(120.0, 1280, 960, projection="equidistant")
    img, _ = render_starfield(hip_catalog, cam, radec_roll_to_rotation(100, 10, 5), seed=3,
                              background_e=300.0, vignetting=0.9)
    for recipe in ("vignetting", "foreground:roof", ["light_dome", "jpeg"]):
        assert find_sky_circle(np.asarray(dg.degrade(img, recipe, 1.0, seed=2))) is None
    assert extract_centroids(img).sky_circle is None


@pytest.mark.parametrize("seed", [1, 2])
def test_captions_in_the_surround_and_the_rim_give_no_stars(hip_catalog, seed):
    # (seed 2: the 8-bit stretch clips the vignetted sky to black from ~462 px out, and
    # the stars there lift many block medians of that ring a little: the surround is
    # judged dark against half the centre's light)
    img, truth, _, _, r = _allsky(hip_catalog, seed=seed)
    found = extract_centroids(img)
    assert found.sky_circle is not None
    xy = found.as_array()[:, :2]
    dist = np.hypot(xy[:, 0], xy[:, 1])
    # nothing beyond the rim band (captions, the rim's JPEG ringing)
    assert dist.max() <= r - rim_band_px(r) + 2.0
    # and the brightest 100 are stars of the frame (within 1.5 px of a true position)
    true_xy = np.column_stack([truth.x, truth.y])
    d = np.min(np.hypot(*(xy[:100, None, :] - true_xy[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert np.count_nonzero(d < 1.5) >= 95
    # the detections dropped beyond the band are reported, as 'border'
    rej = found.rejected
    # (seed 1: beyond the band lie only the captions, rejected as 'overlay' already, and
    # what other tests rejected: the rim's JPEG ringing stays below a threshold at the
    # sky's noise, which the surround's tied pixels no longer shrink to half of it)
    assert (rej["reason"] == "border").any() or seed == 1
    r_found = found.sky_circle[2]
    border = np.hypot(rej["x"], rej["y"])[rej["reason"] == "border"]
    # (their records give the intensity-weighted position, the cut took the fitted one)
    assert (border > r_found - rim_band_px(r_found) - 1.5).all()


def test_a_given_circle_is_kept_to(hip_catalog):
    img, _, _, _, r = _allsky(hip_catalog, jpeg=False, text=False)
    small = 300.0
    for value in (small, (0.0, 0.0, small)):
        found = extract_centroids(img, sky_circle=value)
        assert found.sky_circle == (0.0, 0.0, small)
        xy = found.as_array()[:, :2]
        assert np.hypot(xy[:, 0], xy[:, 1]).max() <= small - rim_band_px(small)
    # max_centroids counts the stars inside the circle
    found = extract_centroids(img, sky_circle=small, max_centroids=20)
    assert len(found) == 20


@pytest.mark.parametrize("value", ["circle", -3.0, (1.0, 2.0), (0.0, 0.0, 0.0), [1, 2, "x"]])
def test_a_bad_sky_circle_names_the_argument(value):
    with pytest.raises((InvalidArgumentError, TypeError), match="sky_circle"):
        extract_centroids(np.zeros((64, 64)), sky_circle=value)


@pytest.mark.parametrize("value", [(1e9, 0.0, 5.0), (700.0, 0.0, 150.0), (0.0, -600.0, 80.0)])
def test_a_given_circle_clear_of_the_frame_is_refused(value):
    # (before: every detection dropped as 'border', an empty result and no word why)
    img = np.zeros((768, 1024))
    img[384, 512] = 100.0
    with pytest.raises(InvalidArgumentError, match="sky_circle"):
        extract_centroids(img, sky_circle=value)
    # a circle that reaches into the frame is kept to
    assert extract_centroids(img, sky_circle=(700.0, 0.0, 250.0)).sky_circle is not None


def test_an_all_sky_jpeg_with_captions_solves(hip_catalog, allsky_db):
    img, _, cam, R, _ = _allsky(hip_catalog, seed=2)
    res = skysolve.solve_image(img, database=allsky_db, projection="equisolid")
    assert res, res
    err = math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2])))
    assert err * 3600 < 60.0  # the pixel is ~670"
    assert res.camera_model.focal_length_px == pytest.approx(cam.focal_length_px, rel=2e-3)


def _gaia_allsky(R, half_deg: float, circle_px: float, size: tuple[int, int], seed: int):
    """A 16-bit equisolid all-sky frame ``size`` (width, height) of the Gaia stars at
    attitude ``R``: the lens's circle ``circle_px`` in radius at ``half_deg`` from the
    boresight, stars lost within 5 deg of the horizon, bench_allsky's detector."""
    f = circle_px / _proj.scalar_radius_of_angle(math.radians(half_deg),
                                                 _proj.code_of("equisolid"))
    cam = CameraModel(f, *size, projection="equisolid")
    img, _ = render_starfield(skysolve.load_gaia(), cam, R, image_circle_deg=half_deg,
                              horizon_deg=5.0, psf=1.2, background_e=300.0, read_noise_e=8.0,
                              bias_adu=100.0, zeropoint_mag=15.0, vignetting=0.5,
                              full_well_e=60000.0, adc_bits=16, faint_star_depth_mag=1.0,
                              seed=seed)
    return img


def test_a_cut_all_sky_jpeg_stretched_hard_measures_its_sky_noise(allsky_db):
    """A 190 deg equisolid lens's circle (520 px) cut by a 1280x960 frame of Gaia stars,
    with captions and compass letters, stretched hard to 8 bits and JPEG'd at quality 40:
    the surround decodes to one value, and so does the vignetted sky at the rim, clipped
    at the black point. Their tied pixels, a third of the noise sample, made its MAD 0.5
    counts where the sky's scatter is 13 (the sky's mottle detected as blobs of thousands
    of pixels; before: no solve on 7 of 8 such frames). Known answers: the attitude
    rendered, and the sky's scatter about its 7x7 median inside the disc."""
    from scipy.ndimage import median_filter

    R = radec_roll_to_rotation(80.0, -24.0, 50.0)
    img = _gaia_allsky(R, 95.0, 520.0, (1280, 960), seed=2)
    frame = dg.degrade(img, ["text_overlay", "compass", "jpeg"], "strong", seed=2)
    h, w = frame.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    inner = np.hypot(xx - 0.5 * w, yy - 0.5 * h) < 0.8 * 520.0
    scatter = (frame - median_filter(frame.astype(np.float64), 7))[inner]
    mad = 1.4826 * np.median(np.abs(scatter - np.median(scatter)))
    res = skysolve.solve_image(frame, database=allsky_db, projection="equisolid")
    assert 0.5 * mad < res.extraction.background_sigma < 2.0 * mad
    assert res, res
    err = math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2])))
    assert err < 0.05  # (a pixel is ~0.16 deg)


@pytest.mark.parametrize("font", ["bitmap", "truetype"])
def test_compass_letters_on_a_lit_all_sky_jpeg_are_no_stars(allsky_db, font):
    """Compass letters 50-80 px tall (N, NE, E ...: Pillow's bitmap font enlarged, blocky,
    or its TrueType font, anti-aliased) at the edges of a 180 deg all-sky frame under a
    light dome, stretched hard to 8 bits and JPEG'd at quality 40: the JPEG breaks the
    letters' plateau of one value, and the lit sky between their strokes joins them, so
    the tests for drawn letters missed them, and 5-7 of them were among the brightest 30
    detections (before: no solve; now at most one, the bitmap font's W at the frame's left
    edge). Known answers: the letters' pixels (where the simulator drew them) and the
    attitude rendered."""
    from scipy.ndimage import binary_dilation

    R = radec_roll_to_rotation(120.0, -11.0, 75.0)
    img = _gaia_allsky(R, 90.0, 504.0, (1024, 1024), seed=3)
    lit = dg.light_dome(img, 1.0, seed=3)
    drawn = dg.compass(lit, 1.0, font=font, place="edges", seed=3)
    letters = binary_dilation(drawn != lit, iterations=2)
    res = skysolve.solve_image(dg.jpeg(drawn, 1.0), database=allsky_db, projection="equisolid")
    xy = np.rint(res.extraction.as_array()[:30, :2] + 511.5).astype(int)
    assert np.count_nonzero(letters[xy[:, 1], xy[:, 0]]) <= 1
    assert res, res
    err = math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2])))
    assert err < 0.05


def test_a_crowded_all_sky_jpeg_shows_its_block_grid(allsky_db):
    """A 180 deg all-sky frame of Gaia stars with captions and compass letters, stretched
    hard to 8 bits and JPEG'd at quality 40: its crowded sky's stars step across every
    phase of the 8-px grid, so that the steps across the block boundaries were only 1.22
    times the others', and the frame was taken for uncompressed (the test asked for 1.25).
    Its tests for large letters, which are a JPEG's, then never ran: 17 of the brightest
    30 detections lay on the letters, and it did not solve. Known answers: an uncropped
    JPEG's grid starts at pixel (0, 0), the same frame before compression has none, and
    the attitude rendered."""
    from skysolve.extraction.background import block_grid

    R = radec_roll_to_rotation(150.0, 20.0, 0.0)
    img = _gaia_allsky(R, 90.0, 504.0, (1024, 1024), seed=0)
    drawn = dg.compass(dg.text_overlay(img, 1.0, seed=0), 1.0, place="circle", seed=0)
    frame = dg.jpeg(drawn, 1.0)
    for plain, grid in ((dg.quantise_8bit(drawn, 1.0), None), (frame, (0, 0))):
        sigma = extract_centroids(plain).background_sigma
        assert block_grid(plain.astype(np.float32), sigma) == grid
    res = skysolve.solve_image(frame, database=allsky_db, projection="equisolid")
    assert res, res
    err = math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2])))
    assert err < 0.05


@pytest.mark.parametrize("seed, radec_roll", [(0, (150.0, 20.0, 0.0)), (2, (45.0, 10.0, 120.0))])
def test_compass_letters_the_background_broke_into_pieces_are_no_stars(allsky_db, seed,
                                                                        radec_roll):
    """Compass letters 60-80 px tall just inside the circle of a 180 deg all-sky frame
    of Gaia stars, with captions, stretched hard to 8 bits and JPEG'd at quality 40: the
    letters cover whole blocks of the background, which follows them up there, and
    above it each letter breaks into pieces of 40-250 px, too small for the test of
    large letters, and against the noise the letters lift about them (31-35 counts,
    the sky's 8.6) the larger ones were not bright. Before: 11 and 3 of the brightest
    30 detections on the letters, and the second frame did not solve. Known answers:
    the pixels the simulator drew on (letters and captions) and the attitude rendered."""
    from scipy.ndimage import binary_dilation

    R = radec_roll_to_rotation(*radec_roll)
    img = _gaia_allsky(R, 90.0, 504.0, (1024, 1024), seed=seed)
    drawn = dg.compass(dg.text_overlay(img, 1.0, seed=seed), 1.0, place="circle", seed=seed)
    letters = binary_dilation(drawn != img, iterations=2)
    res = skysolve.solve_image(dg.jpeg(drawn, 1.0), database=allsky_db,
                               projection="equisolid")
    xy = np.rint(res.extraction.as_array()[:30, :2] + 511.5).astype(int)
    assert np.count_nonzero(letters[xy[:, 1], xy[:, 0]]) <= 1
    assert res, res
    err = math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2])))
    assert err < 0.05


def _stacked(catalog, w, h, angle_deg=0.0, shift=(0.0, 0.0), oval=False, seed=1):
    """A star field registered onto a reference frame as a stacker leaves it: rotated by
    ``angle_deg`` and shifted by ``shift`` px, black (0) where the frame had no pixels;
    or cropped by software to the oval the frame's sides touch. And the lit mask."""
    cam = CameraModel.from_fov(20.0, w, h)
    img, _ = render_starfield(catalog, cam, radec_roll_to_rotation(70.0, -10.0, 5.0),
                              seed=seed, background_e=300.0, bias_adu=100.0,
                              read_noise_e=8.0)
    img = np.asarray(img, dtype=np.float64)
    if oval:
        yy, xx = np.mgrid[0:h, 0:w]
        lit = (((xx + 0.5 - 0.5 * w) / (0.5 * w)) ** 2
               + ((yy + 0.5 - 0.5 * h) / (0.5 * h)) ** 2 <= 1)
        return np.where(lit, img, 0.0), lit
    from scipy import ndimage

    def moved(a, order):  # (as a stacker registers a frame: interpolated, black outside)
        a = ndimage.rotate(a, angle_deg, reshape=False, order=order, cval=0.0)
        return ndimage.shift(a, shift[::-1], order=0, cval=0.0)

    return moved(img, 1), moved(np.ones_like(img), 0) > 0.5


@pytest.mark.parametrize("w, h, angle, shift, oval", [
    # (before: a circle inscribed in the lit square, 39,202 lit pixels beyond it)
    (1024, 1024, 20.0, (200.0, 150.0), False),
    # (before: circles of 9,800-16,800 px radius along a black border's edge)
    (1600, 1066, 20.0, (60.0, 40.0), False),
    (1024, 768, 20.0, (200.0, 150.0), False),
    # (before: a circle through the oval's top arc; 130,021 lit pixels beyond it)
    (1600, 1066, 0.0, (0.0, 0.0), True)])
def test_a_stack_with_black_wedges_or_an_oval_crop_has_no_circle(hip_catalog, w, h, angle,
                                                                   shift, oval):
    img, lit = _stacked(hip_catalog, w, h, angle, shift, oval)
    assert find_sky_circle(img) is None
    found = extract_centroids(img)
    assert found.sky_circle is None
    assert not (found.rejected["reason"] == "border").any()
    # every star of the lit part kept: as many as with no circle at all
    assert len(found) == len(extract_centroids(img, sky_circle=None)) > 20
    assert lit.mean() < 0.9


@pytest.mark.parametrize("text", ["auto", "AUTO", " Auto "])
def test_auto_is_one_word_in_any_case_for_the_api_and_the_command_line(hip_catalog, text):
    # (before: 'AUTO' refused by extract_centroids, taken by --sky-circle)
    from skysolve.extraction.options import ExtractionOptions
    from skysolve.fields import sky_circle_option

    assert ExtractionOptions(sky_circle=text).sky_circle == "auto"
    assert sky_circle_option(text, "--sky-circle") == "auto"
    img, _, _, _, r = _allsky(hip_catalog, jpeg=False, text=False)
    found = extract_centroids(img, sky_circle=text)
    assert found.sky_circle is not None and found.sky_circle[2] == pytest.approx(r, abs=2.0)


def _moon(img, radius, halo, within=None):
    """``img`` with a moon or a glare of ``radius`` px at the frame's centre, saturated (at
    the frame's brightest level, a flat plateau) and, with ``halo``, its scattered light
    falling off beyond it (out to ``within`` px: a lens's glare stays in its circle)."""
    img = np.asarray(img, dtype=np.float64).copy()
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    d = np.hypot(xx - 0.5 * w, yy - 0.5 * h)
    top = img.max()
    if halo:
        fall = np.maximum(d - radius, 0) / (0.3 * radius)
        glow = 0.3 * (top - np.median(img)) / (1 + fall ** 2)
        img += glow if within is None else np.where(d <= within, glow, 0.0)
    img[d <= radius] = top
    return np.minimum(img, top)


@pytest.mark.parametrize("radius", [150.0, 250.0])
@pytest.mark.parametrize("halo", [False, True])
def test_a_saturated_moon_filling_the_centre_is_not_the_sky_circle(hip_catalog, radius, halo):
    # (before: the moon's 250 px disc was reported, and every star beyond it dropped)
    img, truth, _, _, r = _allsky(hip_catalog, jpeg=False, text=False)
    moonlit = _moon(img, radius, halo)
    for frame, low in ((moonlit, r - 2.0), (dg.jpeg(moonlit, 0.5, seed=1), 0.85 * r)):
        circle = find_sky_circle(frame)
        # the lens's circle (on a JPEG, the stretch may clip its sky to black inside
        # its rim), or none (nothing dropped), never the moon's
        assert circle is None or (low <= circle[2] <= r + 2.0
                                  and math.hypot(circle[0], circle[1]) < 2.0), circle
    # a flat moon, or one whose glare stays in the lens's circle, leaves its rim as it
    # was: found (a glare lighting the surround too leaves none)
    if halo:
        moonlit = _moon(img, radius, halo, within=r)
    found = extract_centroids(moonlit)
    assert found.sky_circle is not None and found.sky_circle[2] == pytest.approx(r, abs=2)
    # the true stars beyond the moon are kept
    xy = found.as_array()[:, :2]
    true_xy = np.column_stack([truth.x, truth.y])
    far = np.hypot(true_xy[:, 0], true_xy[:, 1])
    bright = true_xy[(far > radius + 20) & (far < r - 20)][:50]
    d = np.min(np.hypot(*(bright[:, None, :] - xy[None, :, :]).transpose(2, 0, 1)), axis=1)
    assert np.count_nonzero(d < 1.5) >= 40


def test_a_saturated_glare_on_an_ordinary_frame_is_no_sky_circle(hip_catalog):
    # (before: a 300 px flat glare at the centre of a 60 deg frame was its "sky circle")
    cam = CameraModel.from_fov(60.0, 1024, 768)
    img, _ = render_starfield(hip_catalog, cam, radec_roll_to_rotation(100, 10, 5), seed=3,
                              background_e=300.0, bias_adu=100.0, read_noise_e=8.0)
    for radius in (200.0, 300.0):
        for halo in (False, True):
            glare = _moon(img, radius, halo)
            assert find_sky_circle(glare) is None
            assert extract_centroids(glare).sky_circle is None


@pytest.mark.parametrize("centre", [(300.0, 250.0), (-250.0, 200.0)])
def test_a_disc_off_centre_near_a_corner_is_found(hip_catalog, centre):
    # (before: none; the frame's centre in its surround, and the 13 px blocks of a
    # 1600 px frame sampled 12 px apart, which drew the disc 13/12 times too far out)
    img, _, _, _, r = _allsky(hip_catalog, w=1600, h=1200, radius=400.0, centre=centre,
                              jpeg=False)
    for frame in (img, dg.jpeg(img, 0.5, seed=1)):
        circle = find_sky_circle(np.asarray(frame))
        assert circle is not None
        assert circle[0] == pytest.approx(centre[0], abs=2.0)
        assert circle[1] == pytest.approx(centre[1], abs=2.0)
        assert circle[2] == pytest.approx(r, abs=2.0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_stretched_jpegs_circle_is_the_lens_edge_not_where_its_sky_clips(hip_catalog, seed):
    # the 8-bit stretch clips the vignetted sky to black (0-2 counts) from ~462 px out of
    # the 504 px lens; the sky's last lit pixels end at the lens's edge, and its surround
    # is 0 (before: 461 px, the dark ring of sky beyond dropped as surround)
    img, _, _, _, r = _allsky(hip_catalog, seed=seed)
    circle = find_sky_circle(np.asarray(img))
    assert circle is not None
    assert math.hypot(circle[0], circle[1]) < 2.0
    assert 0.97 * r <= circle[2] <= r + 2.0
    # a raw frame's rim stays where its level falls
    raw, _, _, _, _ = _allsky(hip_catalog, seed=seed, jpeg=False)
    assert find_sky_circle(np.asarray(raw))[2] == pytest.approx(r, abs=1.0)


def test_a_small_frames_disc_is_found_though_its_stars_end_above_the_horizon(hip_catalog):
    # a 640 x 480 equisolid frame: at 0.4 deg a pixel the stars lift the sky's median to
    # twice its level below the horizon (the outer 20 px of the 232 px circle, starless)
    # (before: none, the sky inside the rim judged a ramp)
    img, _, _, _, r = _allsky(hip_catalog, w=640, h=480, jpeg=False)
    circle = find_sky_circle(np.asarray(img))
    assert circle is not None
    assert math.hypot(circle[0], circle[1]) < 2.0
    assert circle[2] == pytest.approx(r, abs=2.0)


# The search's steps against their plain numpy forms (the answers the search was built
# and tested with: its faster steps must give the same values, to the bit)

def _frame_of(dtype, seed=0, shape=(200, 264), nan=False, writeable=True):
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 20.0, shape)
    img[60:120, 80:200] += 150.0  # a lit patch: the medians span more than the noise
    if np.dtype(dtype).kind in "iu":
        img = np.clip(np.round(img), 0, np.iinfo(dtype).max)
    img = img.astype(dtype)
    if nan:
        img[10:30, 40:90] = np.nan  # (a whole tile and parts of others)
    img.flags.writeable = writeable
    return img


@pytest.mark.parametrize("dtype, writeable, nan", [
    (np.uint8, True, False), (np.uint8, False, False), (np.uint16, True, False),
    (np.uint16, False, False), (np.float32, True, False), (np.float32, False, False),
    (np.float64, True, False), (np.float32, True, True), (np.float64, True, True),
    (np.int16, True, False)])
@pytest.mark.parametrize("block", [8, 10, 13, 16])
def test_block_medians_are_numpys(dtype, writeable, nan, block):
    import warnings

    from skysolve.extraction.skycircle import _block_medians

    img = _frame_of(dtype, nan=nan, writeable=writeable)
    h, w = img.shape
    step = max(1, block // 4)
    k = block // step
    hb, wb = h // block, w // block
    rows = (np.arange(hb)[:, None] * block + np.arange(k) * step).ravel()
    cols = (np.arange(wb)[:, None] * block + np.arange(k) * step).ravel()
    tiles = img[np.ix_(rows, cols)].astype(np.float64).reshape(hb, k, wb, k)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(hb, wb, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmedian(tiles, axis=2) if nan else np.median(tiles, axis=2)
    got = _block_medians(img, block)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)
    if nan:
        assert np.isnan(got).any()


@pytest.mark.parametrize("backend", ["compiled", "reference"])
def test_points_on_circles_are_counted_as_by_hypot(backend):
    from skysolve.extraction import kernels
    from skysolve.extraction.skycircle import _on_circles

    if backend == "compiled" and not kernels._jit.available():
        pytest.skip("numba is not available")

    rng = np.random.default_rng(3)
    # rim points on a block grid, circles of every kind, and points exactly ``tol`` off
    # a circle (3-4-5 triangles: the fast distance and np.hypot both exact) or a
    # rounding's width either side of it
    x = rng.integers(-60, 60, 450).astype(float) * 8.0
    y = rng.integers(-45, 45, 450).astype(float) * 8.0
    ux = np.concatenate([rng.normal(0, 50, 250), np.zeros(50)])
    uy = np.concatenate([rng.normal(0, 50, 250), np.zeros(50)])
    ur = np.concatenate([rng.uniform(100, 600, 250), np.full(50, 392.0)])
    tol = 8.0
    x[:4] = [400.0, 0.0, 240.0, np.nextafter(384.0, 0.0)]
    y[:4] = [0.0, -384.0, 320.0, 0.0]
    expected = np.count_nonzero(
        np.abs(np.hypot(x[None, :] - ux[:, None], y[None, :] - uy[:, None]) - ur[:, None])
        <= tol, axis=1)
    with kernels.backend(backend):
        got = _on_circles(x, y, ux, uy, ur, tol)
    np.testing.assert_array_equal(got, expected)
    assert got[-1] == expected[-1] >= 3  # the ties at exactly ``tol`` count
    # points whose verdict the fast distance and np.hypot give differently: circles through
    # the centre's offsets less ``tol``, kept where the two disagree
    dx, dy = rng.uniform(-600, 600, (2, 100_000))
    r = np.hypot(dx, dy) - tol
    fast = np.abs(np.sqrt(dx * dx + dy * dy) - r) <= tol
    split = fast != (np.abs(np.hypot(dx, dy) - r) <= tol)
    dx, dy, r = dx[split][:200], dy[split][:200], r[split][:200]
    zero = np.zeros(len(r))
    expected = np.count_nonzero(
        np.abs(np.hypot(dx[None, :], dy[None, :]) - r[:, None]) <= tol, axis=1)
    by_sqrt = np.count_nonzero(
        np.abs(np.sqrt(dx[None, :] ** 2 + dy[None, :] ** 2) - r[:, None]) <= tol, axis=1)
    assert len(r) == 200 and (by_sqrt != expected).sum() > 50  # (the data tells them apart)
    with kernels.backend(backend):
        np.testing.assert_array_equal(_on_circles(dx, dy, zero, zero, r, tol), expected)


def _rim_points_by_rows(sky, block):
    """The rim points as a loop over rows, then columns, finds them."""
    hb, wb = sky.shape
    xs, ys = [], []
    for r in np.flatnonzero(sky.any(axis=1)):
        c = np.flatnonzero(sky[r])
        if c[0] > 0:
            xs.append(c[0] * block)
            ys.append((r + 0.5) * block)
        if c[-1] < wb - 1:
            xs.append((c[-1] + 1) * block)
            ys.append((r + 0.5) * block)
    for c in np.flatnonzero(sky.any(axis=0)):
        r = np.flatnonzero(sky[:, c])
        if r[0] > 0:
            xs.append((c + 0.5) * block)
            ys.append(r[0] * block)
        if r[-1] < hb - 1:
            xs.append((c + 0.5) * block)
            ys.append((r[-1] + 1) * block)
    return np.asarray(xs, float), np.asarray(ys, float)


@pytest.mark.parametrize("kind", ["disc", "cut", "random", "empty", "full"])
def test_rim_points_are_each_rows_and_columns_ends_in_order(kind):
    from skysolve.extraction.skycircle import _rim_points

    yy, xx = np.mgrid[0:96, 0:128]
    sky = {"disc": np.hypot(xx - 60, yy - 50) < 40,
           "cut": np.hypot(xx - 64, yy - 48) < 60,
           "random": np.random.default_rng(1).random((96, 128)) < 0.3,
           "empty": np.zeros((96, 128), bool),
           "full": np.ones((96, 128), bool)}[kind]
    got = _rim_points(sky, 8)
    expected = _rim_points_by_rows(sky, 8)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, e)


def _sharp_by_sectors(prof, outer, last, block, width_px=6):
    """The sharpness verdict on each sector, as a loop over them, three np.median calls
    each."""
    sharp = []
    for j, k in enumerate(last):
        if k - 3 * block < 0:
            continue
        col = prof[:, j] - outer[j]
        near = float(np.median(col[k - 8:k - 1]))
        mid = float(np.median(col[k - 16:k - 8]))
        far = float(np.median(col[k - 3 * block:k - 2 * block + 1]))
        if not far > 0:
            continue
        high = np.flatnonzero(col[:k + 1 + width_px] > 0.8 * near)
        low = np.flatnonzero(col > 0.2 * near)
        width = (low[-1] - high[-1]) if high.size and low.size else np.inf
        level = near >= 0.6 * far or (near >= 0.3 * far and near >= 0.8 * mid)
        sharp.append(level and width <= width_px)
    return np.array(sharp, dtype=bool)


def test_sharp_rims_are_judged_as_sector_by_sector():
    from skysolve.extraction import skycircle

    assert skycircle._RIM_WIDTH == skycircle._RIM_WIDTH_PX == 6
    verdicts = []
    for seed in range(24):
        rng = np.random.default_rng(seed)
        block, n_radii, n = 8, 57, 150
        radius = np.arange(n_radii)[:, None]
        edge = rng.integers(30, 50, n)
        # rims from steps to ramps (a share of steps from none to all), some sectors
        # unlit, some ending short of three blocks
        steps = rng.random(n) < seed / 23
        width = np.where(steps, rng.choice([0.3, 0.8, 1.5], n), rng.choice([5.0, 20.0], n))
        prof = (100.0 / (1.0 + np.exp((radius - edge[None, :]) / width[None, :]))
                + rng.normal(0, 2, (n_radii, n)))
        # shelves: a sky dimmer over the last 12-20 px inside the rim (below a horizon)
        shelf = rng.random(n) < 0.4
        inside = (radius > edge[None, :] - rng.integers(12, 21, n)[None, :]) & shelf[None, :]
        prof[inside] *= np.broadcast_to(rng.uniform(0.2, 0.9, n)[None, :], prof.shape)[inside]
        prof[:, rng.random(n) < 0.1] = rng.normal(0, 3, (n_radii, 1))
        prof[:, rng.random(n) < 0.05] = 5.0  # (flat: nothing lit inside the rim)
        outer = np.median(prof[-13:], axis=0)
        last = np.where(rng.random(n) < 0.9, edge, rng.integers(0, n_radii, n))
        expected = _sharp_by_sectors(prof, outer, last, block)
        np.testing.assert_array_equal(skycircle._sharp_sectors(prof, outer, last, block),
                                      expected)
        got = skycircle._sharp(prof, outer, last, block)
        assert got == (expected.size >= 3 and expected.mean() >= 0.5), seed
        verdicts.append(bool(got))
    assert 3 <= sum(verdicts) <= 21  # (rims judged sharp and not)


@pytest.mark.parametrize("seed, centre", [(2, (40.0, -28.0)), (3, (-90.0, 60.0))])
def test_an_all_sky_lens_off_the_sensors_centre_solves_about_its_circle(hip_catalog, allsky_db,
                                                                        seed, centre):
    # The lens's axis is its image circle's centre, not the frame's: taken to be the
    # frame's, the rim's stars moved against one another by pixels and these failed or
    # solved 0.6 deg off (2,000" rms).
    img, _, cam, R, _ = _allsky(hip_catalog, seed=seed, centre=centre)
    res = skysolve.solve_image(img, database=allsky_db, projection="equisolid")
    assert res, res
    assert res.camera_model.crpix == pytest.approx(centre, abs=2.0)
    # the solved camera sees the sky where the lens does, over the disc to 60 deg off axis
    gx, gy = (g.ravel() for g in np.meshgrid(np.linspace(-400, 400, 17),
                                             np.linspace(-400, 400, 17)))
    v_true = cam.pixel_to_vectors(gx, gy) @ R
    inside = np.flatnonzero(v_true @ R[2] > math.cos(math.radians(60.0)))
    v_sol = (res.camera_model.pixel_to_vectors(gx[inside], gy[inside])
             @ res.rotation_matrix_icrs_to_camera)
    cos = np.sum(v_true[inside] * v_sol, axis=1) / np.linalg.norm(v_true[inside], axis=1)
    cos /= np.linalg.norm(v_sol, axis=1)
    # (the boresight itself is the sky at the found centre, which may be a pixel off)
    assert np.degrees(np.arccos(np.minimum(cos, 1.0))).max() * 3600 < 600.0  # a pixel
