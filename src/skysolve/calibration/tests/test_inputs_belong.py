"""A solve and the centroids given beside it must belong together: a mismatch is named,
not fitted (it used to abort the fit as "diverged", or fit positions offset by half an
image)."""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.errors import InvalidArgumentError
from skysolve.simulate import random_attitudes
from skysolve.tests.realframes import ALT40, DATA, FOV_DEG

from .synthetic import synthetic_solves
from .test_uncertainty import truth_camera


def test_an_image_whose_catalog_ids_were_permuted_is_named(small_db):
    rots = random_attitudes(6, rng=np.random.default_rng(3))
    res, cents = synthetic_solves(small_db, [truth_camera()] * 6, rots, 0.05, seed=3)
    ids = res[4].matched_catalog_ids
    res[4].matched_catalog_ids = np.random.default_rng(0).permutation(ids)
    with pytest.raises(InvalidArgumentError, match=r"solve_results\[4\] and centroids\[4\]"):
        small_db.calibrate_camera(res, cents, order=3)
    res[4].matched_catalog_ids = ids
    assert small_db.calibrate_camera(res, cents, order=3)  # (the same frames, as solved)


def test_centroids_in_another_pixel_convention_are_refused(small_db):
    """Solved from 0-based array pixels with origin='zero', then given to the calibration
    (which takes centred pixels) as they are: every position is half an image off."""
    import skysolve

    ext = skysolve.extract_centroids(skysolve.read_image(DATA / ALT40))
    zero = ext.as_array()[:, :2] + (511.5, 383.5)
    res = small_db.solve_from_centroids(zero, origin="zero", fov_estimate_deg=FOV_DEG,
                                        image_width=1024, image_height=768)
    assert res
    with pytest.raises(InvalidArgumentError, match=r"centroids\[0\] are not the centroids"):
        small_db.calibrate_camera([res], [zero], order=3)
    with pytest.raises(InvalidArgumentError, match="order"):  # (centred: on to the fit)
        small_db.calibrate_camera([res], [ext], order=99)
