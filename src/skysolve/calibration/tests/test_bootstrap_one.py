"""bootstrap=1 is refused (one resample has no spread)."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.errors import InvalidArgumentError
from skysolve.simulate import random_attitudes

from .synthetic import synthetic_solves
from .test_uncertainty import truth_camera


def _one_frame(db, seed: int, stars: int):
    rots = random_attitudes(1, rng=np.random.default_rng(seed))
    res, cents = synthetic_solves(db, [truth_camera()], rots, 0.05, seed=seed,
                                  max_stars=stars)
    return res, cents, rots


def test_one_bootstrap_resample_is_refused(small_db):
    """One resample has no spread: the bootstrap covariance was all zeros (claiming exact
    parameters) instead of an error."""
    res, cents, _ = _one_frame(small_db, 1, 60)
    with pytest.raises(InvalidArgumentError, match="bootstrap"):
        small_db.calibrate_camera(res, cents, order=2, bootstrap=1)
