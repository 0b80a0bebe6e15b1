"""Tests of skysolve.camera.model.CameraModel: mappings, parity, files, validation."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skysolve.camera.distortion import PolynomialDistortion, RadialDistortion, num_polynomial_terms
from skysolve.camera.model import CameraModel
from skysolve.errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from skysolve.geometry import (
    angle_between,
    north_east_basis,
    radec_roll_to_rotation,
    radec_to_vector,
)

W, H = 1920, 1080
CRPIX = (12.25, -8.5)


def poly_distortion():
    n = num_polynomial_terms(4)
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1.5, n), rng.normal(0, 1.5, n)
    return PolynomialDistortion.from_forward(4, W / 2, a, b, image_width=W, image_height=H,
                                             crpix=CRPIX)


CAMERAS = {
    "plain": CameraModel(2500.0, W, H),
    "offset_flip": CameraModel(2500.0, W, H, crpix=CRPIX, parity_flip=True),
    "radial": CameraModel(2500.0, W, H, crpix=CRPIX,
                          distortion=RadialDistortion(k1=-6e-9, k2=1e-15, p1=2e-7)),
    "poly_flip": CameraModel(2500.0, W, H, crpix=CRPIX, parity_flip=True,
                             distortion=poly_distortion()),
}


def image_grid(n=25):
    gx, gy = np.meshgrid(np.linspace(-W / 2, W / 2, n), np.linspace(-H / 2, H / 2, n))
    return gx.ravel(), gy.ravel()


# --------------------------------------------------------------------------- geometry


def test_from_fov_and_fov_deg():
    cam = CameraModel.from_fov(10.0, 2048, 1536)
    assert cam.focal_length_px == pytest.approx(1024 / math.tan(math.radians(5.0)))
    assert cam.fov_deg == pytest.approx(10.0, abs=1e-12)
    assert cam.fov_vertical_deg == pytest.approx(
        2 * math.degrees(math.atan(768 / cam.focal_length_px)))
    assert cam.image_shape == (1536, 2048)
    sq = CameraModel.from_fov(11.8, 2048)
    assert sq.image_height == 2048 and sq.crpix.tolist() == [0.0, 0.0] and not sq.parity_flip
    assert sq.distortion is None
    assert cam.pixel_scale() == pytest.approx(math.atan(1 / cam.focal_length_px))
    # a camera rebuilt from its own fov has the same focal length
    assert CameraModel.from_fov(cam.fov_deg, 2048, 1536).focal_length_px == pytest.approx(
        cam.focal_length_px, rel=1e-12)


def test_pixel_to_tanplane_known_answers():
    cam = CameraModel(1000.0, 200, 100, crpix=(5.0, -3.0))
    assert cam.pixel_to_tanplane(5.0, -3.0) == (0.0, 0.0)
    xi, eta = cam.pixel_to_tanplane(15.0, 17.0)
    assert (xi, eta) == pytest.approx((0.01, 0.02))
    flip = cam.replace(parity_flip=True)
    assert flip.pixel_to_tanplane(15.0, 17.0) == pytest.approx((-0.01, 0.02))
    assert flip.tanplane_to_pixel(-0.01, 0.02) == pytest.approx((15.0, 17.0))
    # distortion acts on offsets from the optical centre: ideal (10, 20) -> distorted
    d = RadialDistortion(k1=1e-4)
    cd = cam.replace(distortion=d)
    xd, yd = d.distort(10.0, 20.0)
    assert cd.pixel_to_tanplane(5.0 + xd, -3.0 + yd) == pytest.approx((0.01, 0.02), abs=1e-12)
    assert cd.tanplane_to_pixel(0.01, 0.02) == pytest.approx((5.0 + xd, -3.0 + yd), abs=1e-9)


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_tanplane_round_trips(name):
    cam = CAMERAS[name]
    x, y = image_grid()
    xi, eta = cam.pixel_to_tanplane(x, y)
    x2, y2 = cam.tanplane_to_pixel(xi, eta)
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-6
    v = cam.pixel_to_vectors(x, y)
    assert v.shape == (x.size, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-15)
    x3, y3 = cam.vectors_to_pixel(v * 3.0)  # length does not matter
    assert np.max(np.hypot(x3 - x, y3 - y)) < 1e-6


def test_scalar_and_shape_handling():
    cam = CAMERAS["radial"]
    xi, eta = cam.pixel_to_tanplane(10, 20)
    assert type(xi) is float and type(eta) is float
    x, y = cam.tanplane_to_pixel(np.zeros((2, 3)), 0.001)
    assert x.shape == (2, 3) and y.shape == (2, 3)
    v = cam.pixel_to_vectors(0.0, 0.0)
    assert v.shape == (3,)
    px, py = cam.vectors_to_pixel(v)
    assert type(px) is float
    bx, by = cam.vectors_to_pixel([[0, 0, -1.0], [0.1, 0, 0.0], [0, 0, 1.0]])
    assert np.isnan(bx[0]) and np.isnan(by[1]) and np.isfinite(bx[2])
    with pytest.raises(InvalidArgumentError, match="vectors"):
        cam.vectors_to_pixel([1.0, 2.0])
    with pytest.raises(InvalidArgumentError, match="xi and eta"):
        cam.tanplane_to_pixel(np.zeros(2), np.zeros(3))


def test_optical_axis_and_roll_on_sky():
    """The optical centre sees the boresight; image +y (down) points at position angle roll."""
    cam = CameraModel(3000.0, W, H, crpix=CRPIX)
    ra0, dec0, roll = 150.0, 35.0, 70.0
    R = radec_roll_to_rotation(ra0, dec0, roll)
    ra, dec = cam.pixel_to_world(*CRPIX, R)
    assert (ra, dec) == pytest.approx((ra0, dec0), abs=1e-9)
    ra1, dec1 = cam.pixel_to_world(CRPIX[0], CRPIX[1] + 300.0, R)
    b = radec_to_vector(ra0, dec0)
    v = radec_to_vector(ra1, dec1)
    north, east = north_east_basis(b)
    pa = math.degrees(math.atan2(v @ east, v @ north)) % 360
    assert pa == pytest.approx(roll, abs=1e-6)
    assert math.degrees(angle_between(b, v)) == pytest.approx(math.degrees(math.atan(0.1)))
    # image +x is then at roll + 90° for a normal image, roll - 90° when mirrored
    for parity, expected in ((False, roll + 90.0), (True, roll - 90.0)):
        c = cam.replace(parity_flip=parity)
        v = radec_to_vector(*c.pixel_to_world(CRPIX[0] + 300.0, CRPIX[1], R))
        pa = math.degrees(math.atan2(v @ east, v @ north)) % 360
        assert pa == pytest.approx(expected % 360, abs=1e-6)
    # and back
    x, y = cam.world_to_pixel(np.array([ra0, ra1]), np.array([dec0, dec1]), R)
    np.testing.assert_allclose(x, [CRPIX[0]] * 2, atol=1e-8)
    np.testing.assert_allclose(y, [CRPIX[1], CRPIX[1] + 300.0], atol=1e-8)
    # a quaternion attitude works too
    from skysolve.geometry import rotation_to_quaternion
    assert cam.pixel_to_world(1.0, 2.0, rotation_to_quaternion(R)) == pytest.approx(
        cam.pixel_to_world(1.0, 2.0, R), abs=1e-10)


def test_parity_is_a_mirror():
    cam = CAMERAS["offset_flip"]
    plain = cam.replace(parity_flip=False)
    x, y = image_grid(9)
    xi_f, eta_f = cam.pixel_to_tanplane(x, y)
    xi_p, eta_p = plain.pixel_to_tanplane(x, y)
    np.testing.assert_allclose(xi_f, -xi_p)
    np.testing.assert_allclose(eta_f, eta_p)


# --------------------------------------------------------------------------- copies, dunders


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_a_cropped_camera_sees_its_pixels_as_the_whole_image_does(name):
    """A crop's camera maps each crop pixel to the direction the whole image's camera maps
    the same detector pixel to (the optical centre and the distortion stay on the
    detector); cropping the crop's camera back out to the whole image gives the camera."""
    cam = CAMERAS[name]
    x0, y0, w, h = 1100, 37, 640, 480  # the top-right corner, off the optical centre
    crop = cam.cropped(x0, y0, w, h)
    assert crop.image_shape == (h, w)
    cols, rows = np.meshgrid(np.linspace(0, w, 6), np.linspace(0, h, 5))
    got = crop.pixel_to_vectors(cols - w / 2, rows - h / 2)
    want = cam.pixel_to_vectors(cols + x0 - W / 2, rows + y0 - H / 2)
    assert np.max(angle_between(got, want)) < 1e-12
    back = crop.cropped(-x0, -y0, W, H)
    assert back.image_shape == cam.image_shape
    np.testing.assert_allclose(back.crpix, cam.crpix, atol=1e-12)
    assert back.replace(crpix=cam.crpix) == cam
    with pytest.raises(InvalidArgumentError, match="x0"):
        cam.cropped(float("nan"), 0, w, h)
    with pytest.raises(InvalidArgumentError, match="width"):
        cam.cropped(0, 0, 0, h)


def test_replace_equality_hash_pickle_repr():
    cam = CAMERAS["poly_flip"]
    assert cam.replace() == cam and hash(cam.replace()) == hash(cam)
    c2 = cam.replace(focal_length_px=2600.0, crpix=None, distortion=None)
    assert c2.focal_length_px == 2600.0 and c2.crpix.tolist() == [0, 0] and c2.distortion is None
    assert c2.parity_flip and c2 != cam
    with pytest.raises(InvalidTypeError, match="focal"):
        cam.replace(focal=3.0)
    with pytest.raises(InvalidArgumentError, match="focal_length_px"):
        cam.replace(focal_length_px=-1.0)
    for c in CAMERAS.values():
        assert pickle.loads(pickle.dumps(c)) == c
        assert CameraModel.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    r = repr(CAMERAS["offset_flip"])
    assert "focal_length_px=2500.0" in r and "parity_flip=True" in r and "12.25" in r
    assert cam != "camera"
    with pytest.raises(ValueError):
        cam.crpix[0] = 1.0  # immutable


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, exc, name", [
    (dict(focal_length_px=0.0), InvalidArgumentError, "focal_length_px"),
    (dict(focal_length_px=float("nan")), InvalidArgumentError, "focal_length_px"),
    (dict(focal_length_px="1000"), InvalidTypeError, "focal_length_px"),
    (dict(image_width=0), InvalidArgumentError, "image_width"),
    (dict(image_width=100.5), InvalidTypeError, "image_width"),
    (dict(image_height=True), InvalidTypeError, "image_height"),
    (dict(image_height=-5), InvalidArgumentError, "image_height"),
    (dict(crpix=[1.0, 2.0, 3.0]), InvalidArgumentError, "crpix"),
    (dict(crpix=[1.0, np.inf]), InvalidArgumentError, "crpix"),
    (dict(crpix="ab"), InvalidTypeError, "crpix"),
    (dict(parity_flip="yes"), InvalidTypeError, "parity_flip"),
    (dict(distortion="radial"), InvalidTypeError, "distortion"),
])
def test_bad_arguments_name_the_argument(kwargs, exc, name):
    args = dict(focal_length_px=1000.0, image_width=640, image_height=480)
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        CameraModel(**args)


def test_integral_floats_accepted_and_from_fov_validation():
    assert CameraModel(1000.0, 640.0, np.int64(480)).image_width == 640
    with pytest.raises(InvalidArgumentError, match="fov_deg"):
        CameraModel.from_fov(180.0, 100)
    with pytest.raises(InvalidArgumentError, match="fov_deg"):
        CameraModel.from_fov(-1.0, 100)
    with pytest.raises(InvalidTypeError, match="fov_deg"):
        CameraModel.from_fov(None, 100)
    with pytest.raises(InvalidArgumentError, match="image_width"):
        CameraModel.from_fov(10.0, 0)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", sorted(CAMERAS))
def test_file_round_trip(tmp_path, name):
    cam = CAMERAS[name]
    path = tmp_path / "cam.json"
    cam.save_to_file(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "skysolve-camera" and doc["version"] == 1
    again = CameraModel.load_from_file(str(path))
    assert again == cam
    x, y = image_grid(5)
    np.testing.assert_array_equal(again.pixel_to_tanplane(x, y), cam.pixel_to_tanplane(x, y))


def test_reformatted_file_with_checksum_loads(tmp_path):
    path = tmp_path / "cam.json"
    CAMERAS["poly_flip"].save_to_file(path)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc, indent=4))
    assert CameraModel.load_from_file(path) == CAMERAS["poly_flip"]
    doc["image_width"] = 1921
    path.write_text(json.dumps(doc, indent=4))
    with pytest.raises(FileFormatError, match="checksum"):
        CameraModel.load_from_file(path)


def test_hand_edited_file_without_checksum_loads(tmp_path):
    path = tmp_path / "cam.json"
    CAMERAS["radial"].save_to_file(path)
    doc = json.loads(path.read_text())
    del doc["checksum"]
    doc["focal_length_px"] = 2600.0
    path.write_text(json.dumps(doc))
    assert CameraModel.load_from_file(path).focal_length_px == 2600.0


def test_damaged_files_raise_file_format_error(tmp_path):
    path = tmp_path / "cam.json"
    CAMERAS["poly_flip"].save_to_file(path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.json"
    for cut in (0, 1, len(raw) // 3, len(raw) // 2, len(raw) - 3):
        bad.write_bytes(raw[:cut])
        with pytest.raises(FileFormatError, match="truncated|corrupted"):
            CameraModel.load_from_file(bad)
    # every single-bit flip of every byte is caught (1 and 8 bits: ASCII and non-UTF-8)
    for i in range(len(raw)):
        for mask in (0x01, 0x80):
            damaged = bytearray(raw)
            damaged[i] ^= mask
            bad.write_bytes(bytes(damaged))
            with pytest.raises(FileFormatError):
                CameraModel.load_from_file(bad)


def test_wrong_version_format_and_missing(tmp_path):
    path = tmp_path / "cam.json"
    CAMERAS["plain"].save_to_file(path)
    doc = json.loads(path.read_text())
    for key, value, msg in (("version", 3, "version 3"), ("version", "1", "version"),
                            ("format", "skysolve-database", "not a skysolve camera")):
        d = dict(doc)
        d[key] = value
        path.write_text(json.dumps(d))
        with pytest.raises(FileFormatError, match=msg):
            CameraModel.load_from_file(path)
    path.write_text("[1, 2, 3]")
    with pytest.raises(FileFormatError, match="not a skysolve camera"):
        CameraModel.load_from_file(path)
    # a binary file, as tetra3rs's camera files are, is not called a damaged skysolve file
    path.write_bytes(bytes([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xA4, 0x40, 0x80, 0x08]))
    with pytest.raises(FileFormatError, match="not a skysolve camera file.*tetra3rs"):
        CameraModel.load_from_file(path)
    # but a file zeroed by a crash is called corrupted, and a byte-order mark is no harm
    path.write_bytes(bytes(200))
    with pytest.raises(FileFormatError, match="truncated or corrupted"):
        CameraModel.load_from_file(path)
    cam = CameraModel(1000.0, 640, 480, crpix=(3.0, -2.0))
    cam.save_to_file(tmp_path / "bom.json")
    path.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "bom.json").read_bytes())
    assert CameraModel.load_from_file(path) == cam
    d = {k: v for k, v in doc.items() if k not in ("checksum", "focal_length_px")}
    path.write_text(json.dumps(d))
    with pytest.raises(FileFormatError, match="focal_length_px"):
        CameraModel.load_from_file(path)
    d = dict(doc, focal_length_px=-3.0)
    del d["checksum"]
    path.write_text(json.dumps(d))
    with pytest.raises(FileFormatError, match="focal_length_px"):
        CameraModel.load_from_file(path)
    with pytest.raises(FileNotFoundError):
        CameraModel.load_from_file(tmp_path / "missing.json")


# --------------------------------------------------------------------------- property


@settings(max_examples=40, deadline=None)
@given(f=st.floats(300.0, 2e4), cx=st.floats(-50, 50), cy=st.floats(-50, 50),
       parity=st.booleans(), corner_px=st.floats(-8.0, 8.0), p1=st.floats(-1e-6, 1e-6))
def test_round_trip_property(f, cx, cy, parity, corner_px, p1):
    """Any camera with a few px of radial distortion inverts to 1e-6 px over the image."""
    r_corner = math.hypot(W / 2 + 50, H / 2 + 50)
    k1 = corner_px / r_corner**3  # barrel (<0) or pincushion (>0) of corner_px at the corner
    cam = CameraModel(f, W, H, crpix=(cx, cy), parity_flip=parity,
                      distortion=RadialDistortion(k1=k1, p1=p1))
    x, y = image_grid(9)
    x2, y2 = cam.tanplane_to_pixel(*cam.pixel_to_tanplane(x, y))
    assert np.max(np.hypot(x2 - x, y2 - y)) < 1e-6
    v = cam.pixel_to_vectors(x, y)
    x3, y3 = cam.vectors_to_pixel(v)
    assert np.max(np.hypot(x3 - x, y3 - y)) < 1e-6


def test_version_2_files_hold_the_radial_centre_and_calibration(tmp_path):
    """Version 2 is written only for what version 1 cannot hold; both are read."""
    from skysolve.camera.model import read_camera_file

    cam = CameraModel(2500.0, W, H, crpix=CRPIX,
                      distortion=RadialDistortion(-6e-9, center=(1400.0, -900.0)))
    path = tmp_path / "cam.json"
    cam.save_to_file(path)
    assert json.loads(path.read_text())["version"] == 2
    assert CameraModel.load_from_file(path) == cam
    assert read_camera_file(path) == (cam, None)
    plain = CAMERAS["radial"]
    block = {"rmse_after_px": 0.01, "per_image": {"scale": [1.0, None]}}
    plain.save_to_file(path, calibration=block)
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and doc["calibration"] == block
    assert read_camera_file(path) == (plain, block)
    plain.save_to_file(path)
    assert json.loads(path.read_text())["version"] == 1 and read_camera_file(path)[1] is None
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file
    # a calibration block in a version-1 file is an unknown field, as before
    doc = json.loads(path.read_text())
    doc.pop("checksum")
    path.write_text(json.dumps({**doc, "calibration": block}))
    with pytest.raises(FileFormatError, match="calibration"):
        CameraModel.load_from_file(path)
    with pytest.raises(InvalidTypeError, match="calibration"):
        plain.save_to_file(path, calibration=[1, 2])
    with pytest.raises(InvalidArgumentError, match="JSON"):
        plain.save_to_file(path, calibration={"x": object()})
