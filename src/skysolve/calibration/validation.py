"""Held-out validation of a calibration, and choosing the polynomial order by it.

k-fold cross-validation over the stars: every image's inlier stars are dealt
into ``k`` folds; for each fold the camera and every attitude and scale are
refitted without it (from the solution, same inliers and weights) and its
stars are predicted. Every inlier is thus
predicted once by a model that never saw it, so the held-out rms per image is
an out-of-sample residual. For a model that the stars determine well it
exceeds the in-sample rms by only ``~ sqrt(1 + p / 2n)`` (``p`` parameters,
``n`` stars); a model with more freedom than the stars support (a too-high
polynomial order on few stars) fits their noise, and its held-out residuals
grow while the in-sample ones shrink (:attr:`CalibrateResult.overfitting`).

:func:`select_order` fits orders 2 .. ``order`` and keeps the lowest whose
held-out rms is within :data:`ORDER_TOLERANCE` of the best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .basis import solve_normal
from .lsq import LOCAL, rms

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from .engine import Fitted
    from .lsq import Pairs
    from .options import CalibrationOptions

__all__ = ["Holdout", "holdout", "select_order", "ORDER_TOLERANCE", "FOLD_SEED",
           "MIN_VALIDATED_PAIRS"]

#: Orders whose held-out rms is within this fraction of the best count as good as it.
ORDER_TOLERANCE = 0.01
#: Seed of the deal into folds (reproducible results).
FOLD_SEED = 20240612
#: Images with fewer inliers are left out of the pooled held-out rms: the few stars
#: that fix their attitude cannot spare one, so their held-out residuals say more
#: about that than about the camera (their own figure is still reported).
MIN_VALIDATED_PAIRS = 10


@dataclass
class Holdout:
    """Out-of-sample residuals of a k-fold cross-validation.

    Attributes
    ----------
    folds : int
    rmse_px : float
        Pooled held-out rms residual of the inliers of the images with at least
        :data:`MIN_VALIDATED_PAIRS` of them.
    image_rmse_px : dict of int to float
        Held-out rms of each image (keyed by its index in the solve results).
    residuals : ndarray, shape ``(n, 2)``
        Held-out residual of every pair (NaN for outliers).
    """

    folds: int
    rmse_px: float
    image_rmse_px: dict[int, float]
    residuals: NDArray[np.float64]

    def per_image(self, n_results: int) -> list[float | None]:
        """Held-out rms per solve result (None for skipped results)."""
        out: list[float | None] = [None] * n_results
        for i, v in self.image_rmse_px.items():
            out[i] = v
        return out


def _folds(fitted: Fitted, k: int) -> NDArray[np.intp]:
    """Fold of every pair: each image's inliers dealt evenly in random order (-1: outlier)."""
    problem = fitted.problem
    rng = np.random.default_rng(FOLD_SEED)
    fold = np.full(problem.n_pairs, -1, dtype=np.intp)
    for j in range(len(problem.images)):
        rows = np.flatnonzero(fitted.inliers[problem.rows(j)]) + problem.offsets[j]
        fold[rows[rng.permutation(len(rows))]] = np.arange(len(rows)) % k
    return fold


def _train_used(fitted: Fitted, train: NDArray[np.bool_]) -> NDArray[np.bool_]:
    problem = fitted.problem
    return np.array([train[problem.rows(k)].sum() >= 2 for k in range(len(problem.images))])


def holdout(fitted: Fitted, options: CalibrationOptions, designs: list | None = None) -> Holdout:
    """k-fold held-out residuals of a fit (``options.validation_folds`` folds).

    Each fold's refit is one Gauss-Newton step from the solution without the
    fold's stars: at the solution the problem is linear to far below the
    noise, so that step is the refit. The normal equations of the folds are
    accumulated once, each refit's are their total minus the fold's own.
    """
    problem, p = fitted.problem, fitted.params
    k = options.validation_folds
    fold = _folds(fitted, k)
    designs = problem.designs(p) if designs is None else designs
    parts = [problem.assemble(designs, fitted.inliers & (fold == j), fitted.weights)
             for j in range(k)]
    nmat = sum(part[0] for part in parts)
    rvec = sum(part[1] for part in parts)
    out = np.full((problem.n_pairs, 2), np.nan)
    glob = np.arange(problem.n_glob)
    for j in range(k):
        train = fitted.inliers & (fold != j)
        nred, rred, red = problem.reduce(nmat - parts[j][0], rvec - parts[j][1],
                                         _train_used(fitted, train))
        delta = problem.expand(red, solve_normal(nred, rred)[0])
        for i, (res, a) in enumerate(designs):
            test = fold[problem.rows(i)] == j
            idx = np.concatenate([glob, problem.n_glob + LOCAL * i + np.arange(LOCAL)])
            rows = np.flatnonzero(test) + problem.offsets[i]
            out[rows] = res[test] - np.einsum("nai,i->na", a[test], delta[idx], optimize=False)
    per = {}
    pooled = []
    for i, im in enumerate(problem.images):
        r = out[problem.rows(i)]
        r = r[np.isfinite(r[:, 0])]
        per[im.index] = rms(r) if len(r) else math.nan
        if len(r) >= MIN_VALIDATED_PAIRS:
            pooled.append(r)
    return Holdout(k, rms(np.concatenate(pooled)) if pooled else math.nan, per, out)


def select_order(images: list[Pairs], cameras: list[CameraModel], width: int, height: int,
                 options: CalibrationOptions) -> tuple[int, dict[int, tuple[float, float]]]:
    """The polynomial order (2 .. ``options.order``) with the best held-out rms, and
    ``{order: (in-sample rms, held-out rms)}``."""
    from ..errors import InvalidArgumentError
    from .engine import fit_camera

    scores: dict[int, tuple[float, float]] = {}
    for order in range(min(2, options.order), options.order + 1):
        try:
            fitted = fit_camera(images, cameras, width, height, options, order)
        except InvalidArgumentError:
            break  # too few stars for this order (and every higher one)
        ho = holdout(fitted, options)
        res = fitted.problem.residuals(fitted.params)[fitted.inliers]
        scores[order] = (rms(res), ho.rmse_px)
    if not scores:
        return options.order, scores
    best = min(v[1] for v in scores.values())
    good = [o for o, v in scores.items() if v[1] <= best * (1.0 + ORDER_TOLERANCE)]
    return min(good), scores
