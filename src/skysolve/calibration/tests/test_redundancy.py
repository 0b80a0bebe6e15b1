"""A calibration from too few stars keeps the centres it cannot determine at their input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from skysolve import CameraModel, RadialDistortion
from skysolve.errors import InvalidArgumentError
from skysolve.simulate import random_attitudes

from .synthetic import mapping_error_px, synthetic_solves

HELD = "equations beyond the images' attitudes"


def _truth() -> CameraModel:
    """A mild barrel lens (0.8 px at 300 px from the centre), its axis off the centre."""
    return CameraModel(3800.0, 1024, 768, crpix=(10.0, -7.0),
                       distortion=RadialDistortion(k1=-1.2e-8))


def _frames(db, n: int, stars: int, seed: int):
    rots = random_attitudes(n, rng=seed)
    res, cents = synthetic_solves(db, [_truth()] * n, rots, 0.1, seed=seed, max_stars=stars)
    return res, cents, rots


def _mapping_rms(cal, rots) -> float:
    """The rms pixel error of every image's calibrated mapping over the image."""
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(-500, 500, 21),
                                             np.linspace(-370, 370, 15)))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], _truth(), R,
                                           gx, gy) for i, R in enumerate(rots)])
    return math.sqrt(np.mean(err ** 2))


def test_six_frames_of_three_stars_keep_the_centres(small_db):
    """18 equations beyond the attitudes for 10 shared parameters: the fitted optical
    centre came out 120-190 px from the truth (the design well conditioned, converged,
    no warning), the mapping 0.4-1.3 px off for 0.1 px centroids. Kept at the solves'
    centre (12 px from the truth) it is 0.2 px off in two draws of three (the third's
    three bright stars a frame leave it 1.2 px off either way)."""
    errors = []
    for seed in range(3):
        res, cents, rots = _frames(small_db, 6, 3, seed)
        with pytest.warns(UserWarning, match=HELD) as record:
            cal = small_db.calibrate_camera(res, cents, model="radial")
        message = next(str(w.message) for w in record if HELD in str(w.message))
        assert "18 matched stars in 6 image(s) leave 18 equations" in message
        assert "for 10 shared camera parameters" in message
        assert not cal.crpix_fitted and not cal.center_fitted
        assert tuple(cal.camera_model.crpix) == (0.0, 0.0)  # the solves' optical centre
        assert cal.camera_model.distortion.center == (0.0, 0.0)
        assert "crpix_x" not in cal.parameter_names
        assert "px fixed" in cal.summary()
        errors.append(_mapping_rms(cal, rots))
    assert float(np.median(errors)) < 0.3  # was 0.69 (0.42-1.25)


def test_the_distortion_centre_goes_first(small_db):
    """8 frames of 3 stars leave 24 equations beyond the attitudes: enough for the 8
    shared parameters without the distortion centre, not for the 10 with it."""
    res, cents, _ = _frames(small_db, 8, 3, 0)
    with pytest.warns(UserWarning, match=HELD) as record:
        cal = small_db.calibrate_camera(res, cents, model="radial")
    message = next(str(w.message) for w in record if HELD in str(w.message))
    assert "leave 24 equations" in message and "the distortion centre not fitted;" in message
    assert "optical centre" not in message
    assert cal.crpix_fitted and not cal.center_fitted


def test_stars_too_few_for_the_full_model_are_still_refused(small_db):
    """3 frames of 3 stars: 18 equations for 19 parameters. Holding the centres would
    leave 6 shared parameters to 9 equations beyond the attitudes; the fit is refused,
    naming the counts, as it was."""
    res, cents, _ = _frames(small_db, 3, 3, 0)
    with pytest.raises(InvalidArgumentError, match="9 matched stars cannot constrain 19"):
        small_db.calibrate_camera(res, cents, model="radial")


@pytest.mark.parametrize(("n", "stars"), [(6, 5), (10, 3), (3, 10)])
def test_enough_stars_still_fit_the_centres(small_db, n, stars):
    """6 frames of 5 stars, 10 of 3 and 3 of 10 leave 4-5 residual degrees of freedom per
    shared parameter: the centres are fitted as before, and nothing is said of them."""
    for seed in (0, 1):
        res, cents, _ = _frames(small_db, n, stars, seed)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            cal = small_db.calibrate_camera(res, cents, model="radial")
        assert not [w for w in record if HELD in str(w.message)]
        assert cal.crpix_fitted
