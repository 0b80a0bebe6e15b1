"""Camera values from hand-edited files and arithmetic: no silent conversions, and
cameras that compare equal hash equal."""

import json

import numpy as np
import pytest

from skysolve.camera.distortion import PolynomialDistortion, RadialDistortion
from skysolve.camera.model import CameraModel
from skysolve.errors import FileFormatError, InvalidTypeError

BASE = {"format": "skysolve-camera", "version": 1, "focal_length_px": 1500.0,
        "image_width": 1024, "image_height": 768, "crpix": [3.0, 4.0], "parity_flip": False,
        "distortion": None}
POLY = {"type": "polynomial", "order": 2, "scale": 512.0, "a_coeffs": [0.0] * 6,
        "b_coeffs": [0.0] * 6, "ap_coeffs": [0.0] * 6, "bp_coeffs": [0.0] * 6}


def _load(tmp_path, **changes):
    p = tmp_path / "camera.json"
    p.write_text(json.dumps({**BASE, **changes}))
    return CameraModel.load_from_file(p)


@pytest.mark.parametrize("field, changes", [
    # JSON true/false in a number list was read as 1.0/0.0, and "0.5" parsed, while the
    # same values in a scalar field (k1, focal_length_px) are refused
    ("crpix", {"crpix": [True, False]}),
    ("crpix", {"crpix": ["3", "4"]}),
    ("a_coeffs", {"distortion": {**POLY, "a_coeffs": [0, 0, 0, True, 0, 0]}}),
    ("bp_coeffs", {"distortion": {**POLY, "bp_coeffs": ["0.5"] * 6}}),
])
def test_a_non_number_in_a_number_list_is_refused_naming_the_field(tmp_path, field, changes):
    with pytest.raises(FileFormatError, match=field):
        _load(tmp_path, **changes)


def test_non_numbers_in_arrays_are_refused_in_the_constructors_too():
    with pytest.raises(InvalidTypeError, match="crpix"):
        CameraModel(1500.0, 1024, 768, crpix=np.array([True, False]))
    with pytest.raises(InvalidTypeError, match="a_coeffs"):
        PolynomialDistortion(1, 512.0, [False, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0])
    # numbers of any numeric type stay accepted
    cam = CameraModel(1500.0, 1024, 768, crpix=np.array([3, 4], dtype=np.int32))
    assert cam.crpix.tolist() == [3.0, 4.0]


def test_equal_cameras_hash_equal_with_negative_zeros():
    # -0.0 == 0.0, so these compare equal; their hashes differed (bytes of -0.0), so a set
    # or dict held both as different cameras
    plain = CameraModel(1500.0, 1024, 768)
    signed = CameraModel(1500.0, 1024, 768, crpix=[-0.0, -0.0])
    assert signed == plain and hash(signed) == hash(plain)
    assert len({signed, plain}) == 1
    r0, r1 = RadialDistortion(k1=1e-9), RadialDistortion(k1=1e-9, p1=-0.0, center=(-0.0, 0.0))
    assert r0 == r1 and hash(r0) == hash(r1)
    z = [0.0] * 3
    p0 = PolynomialDistortion(1, 512.0, [0.0, 1e-3, 0.0], z, z, z)
    p1 = PolynomialDistortion(1, 512.0, [-0.0, 1e-3, 0.0], z, z, z)
    assert p0 == p1 and hash(p0) == hash(p1)


def test_a_field_given_twice_is_refused_not_the_last_one_taken(tmp_path):
    # a hand edit that adds a line instead of changing one: json.loads kept the last
    text = json.dumps(BASE, indent=2).replace(
        '"focal_length_px": 1500.0,', '"focal_length_px": 1500.0,\n  "focal_length_px": 1600.0,')
    p = tmp_path / "camera.json"
    p.write_text(text)
    with pytest.raises(FileFormatError, match="focal_length_px"):
        CameraModel.load_from_file(p)
    nested = dict(BASE, distortion={"type": "radial", "k1": 1e-9})
    p.write_text(json.dumps(nested).replace('"k1": 1e-09', '"k1": 1e-09, "k1": 2e-09'))
    with pytest.raises(FileFormatError, match="k1"):
        CameraModel.load_from_file(p)
