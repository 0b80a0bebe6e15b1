"""bootstrap=1 is refused (one resample has no spread)."""

from __future__ import annotations

import pytest

from skysolve.errors import InvalidArgumentError

from .test_clip_few_stars import _one_frame


def test_one_bootstrap_resample_is_refused(small_db):
    """One resample has no spread: the bootstrap covariance was all zeros (claiming exact
    parameters) instead of an error."""
    res, cents, _ = _one_frame(small_db, 1, 60)
    with pytest.raises(InvalidArgumentError, match="bootstrap"):
        small_db.calibrate_camera(res, cents, order=2, bootstrap=1)
