"""The least-squares problem evaluates all images at once as it does each image alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skysolve.calibration.basis import Basis
from skysolve.calibration.lsq import Pairs, Params, Problem


def _problem(kind: str, primary: str, projection: str, fit_center: bool) -> Problem:
    """Three images of 0, 7 and 30 pairs near their optical axes, each at its own attitude
    and plate scale, the stars ~1 px off their pixels."""
    rng = np.random.default_rng(3)
    images = []
    for k, n in enumerate((7, 0, 30)):
        R = Rotation.random(random_state=k).as_matrix()
        cam = rng.normal(size=(n, 3)) * [0.1, 0.1, 0.0] + [0.0, 0.0, 1.0]
        cam /= np.linalg.norm(cam, axis=1)[:, None]
        xy = 2000.0 * cam[:, :2] / cam[:, 2:] + rng.normal(size=(n, 2))
        images.append(Pairs(k, xy, cam @ R, np.zeros(n), np.zeros(n, bool), R,
                            scale=1.0 + 1e-4 * (k - 1)))
    basis = Basis(kind, 4, 512.0, 512.0, primary=primary)
    return Problem(images, basis, -1.0 if kind == "radial" else 1.0, True, fit_center,
                   [True, True, True], projection)


@pytest.mark.parametrize(("kind", "primary", "projection", "fit_center"), [
    ("radial", "forward", "pinhole", True), ("radial", "forward", "equidistant", False),
    ("polynomial", "forward", "pinhole", False), ("polynomial", "inverse", "stereographic",
                                                  False)])
def test_the_stacked_images_give_each_images_own_figures(kind, primary, projection,
                                                          fit_center):
    """:meth:`Problem.designs` and :meth:`Problem.residuals` of every image at once are
    each image's own :meth:`Problem.design` to the bit (the calibration's answers must
    not depend on how many images it holds), including an image with no pairs."""
    prob = _problem(kind, primary, projection, fit_center)
    rng = np.random.default_rng(4)
    p = Params(2000.5, np.array([3.0, -2.0]), rng.normal(scale=1e-3, size=prob.basis.size),
               np.array([1.5, -0.5]))
    stacked = prob.designs(p)
    assert [len(r) for r, _ in stacked] == [7, 0, 30]
    for k, (res, a) in enumerate(stacked):
        own_res, own_a = prob.design(p, k)
        assert np.array_equal(res, own_res) and np.array_equal(a, own_a)
        assert a.shape == (len(res), 2, prob.n_glob + 4) and np.all(np.isfinite(a))
    assert np.array_equal(prob.residuals(p),
                          np.concatenate([prob.residuals(p, k) for k in range(3)]))
    # the plate scale is each image's own: a scale change moves only its image's pairs
    prob.images[2].scale *= 1.001
    moved = prob.designs(p)
    assert np.array_equal(moved[0][0], stacked[0][0])
    assert not np.array_equal(moved[2][0], stacked[2][0])
