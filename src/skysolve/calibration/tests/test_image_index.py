"""An image index of a calibration result is checked the same way everywhere."""

from __future__ import annotations

import pytest

from skysolve.calibration.export import image_wcs
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.simulate import random_attitudes

from .synthetic import synthetic_solves
from .test_uncertainty import NOISE_PX, truth_camera


@pytest.fixture(scope="module")
def cal(small_db):
    rots = random_attitudes(4, rng=51)
    res, cents = synthetic_solves(small_db, [truth_camera()] * 4, rots, NOISE_PX, seed=51,
                                  max_stars=60)
    res[2] = None  # a failed solve: index 2 takes no part
    return small_db.calibrate_camera(res, cents, order=3, validation_folds=0)


def _calls(cal, image):
    return {"image_camera": lambda: cal.image_camera(image),
            "mapping_sigma_px": lambda: cal.mapping_sigma_px([0.0], [0.0], image),
            "image_wcs": lambda: image_wcs(cal, image)}


@pytest.mark.parametrize("call", ["image_camera", "mapping_sigma_px", "image_wcs"])
@pytest.mark.parametrize("image, exc", [
    (4, InvalidArgumentError),    # past the end: a bare IndexError before
    (-1, InvalidArgumentError),   # the last image for two of them, refused by the third
    (True, InvalidTypeError),     # image 1
    ("0", InvalidTypeError),      # "image 0 did not take part" (it did)
    (1.5, InvalidTypeError),
])
def test_a_bad_image_index_is_refused_naming_it(cal, call, image, exc):
    with pytest.raises(exc, match="image"):
        _calls(cal, image)[call]()


@pytest.mark.parametrize("call", ["image_camera", "mapping_sigma_px", "image_wcs"])
def test_an_image_that_took_no_part_says_so(cal, call):
    with pytest.raises(InvalidArgumentError, match="image 2 did not take part"):
        _calls(cal, 2)[call]()
    _calls(cal, 3)[call]()  # and a good one works
