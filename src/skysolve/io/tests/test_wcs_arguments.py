"""Bad arguments to the WCS functions are errors that name them (not numpy's, and not a
silently truncated number)."""

import numpy as np
import pytest

from skysolve.camera import CameraModel
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.io.wcs import camera_to_wcs, fit_sip_wcs, move_reference_pixel, wcs_to_camera

CAM = CameraModel.from_fov(10.0, 100, 80)
WCS0 = camera_to_wcs(CAM, np.eye(3))
RNG = np.random.default_rng(2)
PIX = RNG.uniform(0, 100, (50, 2))
VEC = CAM.pixel_to_vectors(PIX[:, 0] - 50.5, PIX[:, 1] - 40.5)


def test_wcs_to_camera_refuses_a_fractional_or_non_numeric_image_size():
    # image_width=2.5 became a 2-pixel camera (int() truncates), its crpix off by the 0.25
    with pytest.raises(InvalidTypeError, match="image_width"):
        wcs_to_camera(WCS0, 100.5, 80)
    with pytest.raises(InvalidTypeError, match="image_height"):
        wcs_to_camera(WCS0, 100, "80")
    cam, _ = wcs_to_camera(WCS0, 100.0, 80.0)  # whole floats are sizes
    assert (cam.image_width, cam.image_height) == (100, 80)


def test_camera_to_wcs_names_a_non_numeric_tolerance():
    with pytest.raises(InvalidTypeError, match="sip_tolerance_px"):
        camera_to_wcs(CAM, np.eye(3), sip_tolerance_px="a")


@pytest.mark.parametrize("args, kwargs, exc, word", [
    ((np.zeros((50, 3)), VEC, (50, 40), [0, 0, 1], 2), {}, InvalidArgumentError, "pixels"),
    ((PIX[:10], VEC, (50, 40), [0, 0, 1], 2), {}, InvalidArgumentError, "vectors"),
    ((PIX, VEC, (50, 40), [0, 1], 2), {}, InvalidArgumentError, "crval"),
    ((PIX, VEC, (50, 40, 1), [0, 0, 1], 2), {}, InvalidArgumentError, "crpix"),
    ((PIX, VEC, (50, 40), [0, 0, 1], 2.5), {}, InvalidTypeError, "order"),
    ((PIX, VEC, (50, 40), [0, 0, 1], "x"), {}, InvalidTypeError, "order"),
    ((np.where(PIX == PIX[3, 0], np.nan, PIX), VEC, (50, 40), [0, 0, 1], 2), {},
     InvalidArgumentError, "pixels"),
    ((PIX[:4], VEC[:4], (50, 40), [0, 0, 1], 3), {}, InvalidArgumentError, "order 3"),
])
def test_fit_sip_wcs_names_the_bad_argument(args, kwargs, exc, word):
    with pytest.raises(exc, match=word):
        fit_sip_wcs(*args, **kwargs)


@pytest.mark.parametrize("width, height, exc", [
    (0, 80, InvalidArgumentError), ("a", 80, InvalidTypeError), (100, 80.5, InvalidTypeError)])
def test_move_reference_pixel_names_a_bad_image_size(width, height, exc):
    # width 0 was "fitted" over a grid of one column
    with pytest.raises(exc, match="width|height"):
        move_reference_pixel(WCS0, (10.0, 10.0), width, height)


def test_move_reference_pixel_names_a_non_numeric_crpix():
    with pytest.raises(InvalidTypeError, match="crpix"):
        move_reference_pixel(WCS0, "ab", 100, 80)


def _wide_pinhole_grid():
    """Pixels (FITS) and sky directions of a 120 deg pinhole camera at the identity
    attitude, and the direction of its corner pixel: the opposite corner lies
    2 x atan(tan(60 deg) x 1000 / 800) = 130.2 deg from it."""
    cam = CameraModel.from_fov(120.0, 1600, 1200)
    gx, gy = np.meshgrid(np.linspace(-800.0, 800.0, 21), np.linspace(-600.0, 600.0, 15))
    vectors = cam.pixel_to_vectors(gx.ravel(), gy.ravel())
    pixels = np.column_stack([gx.ravel() + 800.5, gy.ravel() + 600.5])
    return pixels, vectors, cam.pixel_to_vectors(-800.0, -600.0)


def test_fit_sip_wcs_refuses_directions_its_projection_cannot_hold():
    # a TAN (gnomonic) plane about the corner holds nothing 90 deg or more from it: the
    # fit was all NaN (CD included), a WCS that maps every pixel nowhere, without a word
    pixels, vectors, corner = _wide_pinhole_grid()
    with pytest.raises(InvalidArgumentError, match=r"vectors.*TAN.*90"):
        fit_sip_wcs(pixels, vectors, (0.5, 0.5), corner, 3)


def test_move_reference_pixel_says_why_a_tan_plane_cannot_hold_a_wide_field():
    cam = CameraModel.from_fov(120.0, 1600, 1200)
    wcs = camera_to_wcs(cam, np.eye(3))
    with pytest.raises(InvalidArgumentError, match=r"reference pixel \(1\.0, 1\.0\)") as info:
        move_reference_pixel(wcs, (1.0, 1.0), 1600, 1200)
    message = str(info.value)
    assert "nan" not in message and "90" in message, message


def test_wcs_to_camera_refuses_a_size_beyond_the_wcs_pixel_grid():
    # (height, width) given for (width, height): a 1200 x 1600 camera of a 1600 x 1200
    # WCS came back with its optical centre moved (200, -200) px, without a word
    cam = CameraModel.from_fov(120.0, 1600, 1200, projection="equidistant")
    wcs = camera_to_wcs(cam, np.eye(3))
    with pytest.raises(InvalidArgumentError, match=r"image_height.*1600.*NAXIS2.*1200.*swapped"):
        wcs_to_camera(wcs, 1200, 1600)
    with pytest.raises(InvalidArgumentError, match=r"image_width.*pixel_offset"):
        wcs_to_camera(wcs, 1600, 1200, pixel_offset=(10, 0))
    # a cut-out inside the grid is a camera of its own (TESS's science area)
    part, _ = wcs_to_camera(wcs, 1500, 1100, pixel_offset=(50, 50))
    assert (part.image_width, part.image_height) == (1500, 1100)
    assert tuple(part.crpix) == (0.0, 0.0)
