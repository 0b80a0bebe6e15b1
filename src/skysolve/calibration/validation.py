"""Held-out validation of a calibration, and choosing the polynomial order by it.

k-fold cross-validation over the stars: every image's inlier stars are dealt
into ``k`` folds; for each fold the camera and every attitude and scale are
refitted without it (from the solution, same inliers and weights) and its
stars are predicted. Every inlier is thus
predicted once by a model that never saw it, so the held-out rms per image is
an out-of-sample residual. For a model of the right form it exceeds the
in-sample rms by :func:`expected_ratio` (``~ 1 + p / n`` for ``p`` parameters
and ``n`` equations when ``p << n``, 1.4 for 20 on 80); a model with more
freedom than the stars support (a too-high polynomial order on few stars) fits
their noise, and its held-out residuals grow beyond that while the in-sample
ones shrink (:attr:`CalibrateResult.overfitting`).

:func:`select_order` fits orders 2 .. ``order`` and, from the lowest whose held-out
rms is within :data:`ORDER_TOLERANCE` of the best upwards, keeps the first that no
higher order beats by more than the noise could (a chi-square no more than
:data:`ORDER_Z` standard deviations lower than the higher order's extra terms take out
of the noise alone: :mod:`skysolve.calibration.compare`), whether or not its own
held-out rms is within the tolerance: the chi-square, over the same stars with the
parameters counted, is the sharper test. The held-out rms, pooled over
every star, barely moves for an error in the few stars near the corners: for a lens
with ``k2`` and ``k3`` terms (8 frames of 150 stars) orders 3-6 scored within 4 %,
and order 3 was kept, 0.8 px off in the corners at 2.9 times its stated
uncertainty (rms), where order 6 lowered its chi-square by far more.
"""

from __future__ import annotations

import dataclasses
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

__all__ = ["Holdout", "holdout", "select_order", "ORDER_TOLERANCE", "ORDER_Z", "ORDER_WARN_Z",
           "FOLD_SEED",
           "MIN_VALIDATED_PAIRS", "Pattern", "residual_pattern", "PATTERN_Z"]

#: Orders whose held-out rms is within this fraction of the best count as good as it.
ORDER_TOLERANCE = 0.01
#: An order whose chi-square a higher order lowers by more than this many standard
#: deviations beyond the extra terms' share of the noise leaves part of the lens
#: unfitted: :func:`select_order` takes a higher one (a needless order costs a little
#: variance, which ``mapping_sigma_px`` states; one too low, an error it does not: a
#: k3 lens's order 3 was 4 standard deviations off order 5 from 8 frames of 80 stars,
#: and 1.4 px off in the corners at 2.9 times its stated uncertainty), and the
#: calibration warns of the order asked for (:data:`ORDER_WARN_Z`).
ORDER_Z = 3.0
#: ... and by more than this many, the calibration of an order asked for warns
#: (:func:`skysolve.calibration.fit._warn_order`).
ORDER_WARN_Z = 5.0
#: Seed of the deal into folds (reproducible results).
FOLD_SEED = 20240612
#: Images with fewer inliers are left out of the pooled held-out rms: the few stars
#: that fix their attitude cannot spare one, so their held-out residuals say more
#: about that than about the camera (their own figure is still reported).
MIN_VALIDATED_PAIRS = 10
#: Most cells per image axis of the residual-pattern test, and the stars per cell it aims
#: at (cells with fewer than :data:`PATTERN_MIN_CELL_STARS` are left out).
PATTERN_MAX_CELLS = 8
PATTERN_CELL_STARS = 25
PATTERN_MIN_CELL_STARS = 5
#: A residual pattern whose chi-square lies this many standard deviations above its
#: degrees of freedom is real: the model does not represent the lens.
PATTERN_Z = 5.0


@dataclass
class Pattern:
    """The smooth part of a fit's residuals over the image: what the model leaves of the
    lens (see :func:`residual_pattern`).

    Attributes
    ----------
    rms_px : float
        Rms length of the cells' mean residuals beyond what the noise gives them (px;
        0 when the noise explains them).
    z : float
        ``(chi2 - dof) / sqrt(2 dof)`` of the cells' mean residuals against the
        scatter within the cells; well below :data:`PATTERN_Z` for a model that fits.
    cells : int
        Cells tested.
    """

    rms_px: float
    z: float
    cells: int

    @property
    def significant(self) -> bool:
        """Whether the pattern is more than the noise (:data:`PATTERN_Z`)."""
        return bool(self.z > PATTERN_Z)


def residual_pattern(fitted: Fitted, width: int, height: int,
                     designs: list | None = None) -> Pattern | None:
    """Test the inlier residuals, pooled over the images in pixel coordinates, for a
    pattern over the image (None with too few stars for 2 x 2 cells).

    The camera is shared, so a lens the model cannot represent (a polynomial of too
    low an order for ``k2``, a radial model about the wrong centre) leaves the same
    residual field in every image, while centroid noise averages out in each cell of
    an up to 8 x 8 grid. The cells' mean (weighted) residuals are compared with the
    scatter within the cells by a chi-square; the fit itself only shrinks the means,
    so a model that fits stays below ``dof``.
    """
    p = fitted.problem
    designs = p.designs(fitted.params) if designs is None else designs
    inl = fitted.inliers
    res = np.concatenate([d[0] for d in designs])[inl]
    xy = np.concatenate([im.xy for im in p.images])[inl]
    n_side = min(PATTERN_MAX_CELLS, math.isqrt(len(res) // PATTERN_CELL_STARS))
    if n_side < 2:
        return None
    ix = np.clip(((xy[:, 0] / width + 0.5) * n_side).astype(np.intp), 0, n_side - 1)
    iy = np.clip(((xy[:, 1] / height + 0.5) * n_side).astype(np.intp), 0, n_side - 1)
    cell = iy * n_side + ix
    counts = np.bincount(cell, minlength=n_side * n_side)
    keep = counts[cell] >= PATTERN_MIN_CELL_STARS
    used = counts >= PATTERN_MIN_CELL_STARS
    if used.sum() < 2 or keep.sum() <= used.sum():
        return None
    w = np.sqrt(fitted.weights[inl] / np.median(fitted.weights[inl]))[:, None]
    stats = [_cell_means(cell[keep], r[keep], counts, used) for r in (res * w, res)]
    (wmeans, ws2), (means, s2) = stats
    n = counts[used]
    chi2 = float(np.sum(n * np.sum(wmeans ** 2, axis=1)) / ws2)
    dof = 2 * int(used.sum())
    excess = np.sum(n * (np.sum(means ** 2, axis=1) - 2.0 * s2 / n))
    return Pattern(math.sqrt(max(float(excess), 0.0) / float(n.sum())),
                   (chi2 - dof) / math.sqrt(2 * dof), int(used.sum()))


def _cell_means(cell: NDArray[np.intp], r: NDArray[np.float64], counts: NDArray[np.intp],
                used: NDArray[np.bool_]) -> tuple[NDArray[np.float64], float]:
    """Mean residual of each used cell and the per-axis variance within the cells."""
    size = len(counts)
    sums = np.stack([np.bincount(cell, r[:, a], minlength=size) for a in (0, 1)], axis=1)
    means = sums / np.maximum(counts, 1)[:, None]
    dev = r - means[cell]
    s2 = float(np.sum(dev ** 2)) / (2 * max(len(r) - int(used.sum()), 1))
    return means[used], s2


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
    expected_ratio : float
        The held-out rms over the in-sample rms that a model of the right form, with
        as many free parameters, gives on these stars (:func:`expected_ratio`; inf
        when a fold's refit has fewer equations than parameters).
    """

    folds: int
    rmse_px: float
    image_rmse_px: dict[int, float]
    residuals: NDArray[np.float64]
    expected_ratio: float = 1.0

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


def expected_ratio(n_equations: int, n_params: int, folds: int) -> float:
    """Held-out rms over in-sample rms of a least-squares fit of the right form with
    ``n_params`` free parameters to ``n_equations`` equations, ``folds``-fold.

    In sample each residual is shrunk by the parameters fitted to it: its mean square is
    ``sigma^2 (1 - p / n)``. Held out, a residual is that of a fit to the other folds'
    ``n_t = n (k - 1) / k`` equations, ``r / (1 - h)`` with ``h`` its leverage there,
    ``~ p / n_t``: mean square ``~ sigma^2 / (1 - p / n_t)``. Their ratio is no sign of
    overfitting: 1 frame of 40 stars fitted at the order of its lens (20 parameters, 80
    equations) holds out 1.39-1.65 times its in-sample rms, this gives 1.39, and the
    order below, 10 times further from the truth, came out lower (1.2-1.45).
    """
    n_train = n_equations * (folds - 1) / folds
    if n_params >= n_train:
        return math.inf
    return math.sqrt(1.0 / ((1.0 - n_params / n_train) * (1.0 - n_params / n_equations)))


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
    # every pair counts (min_pairs=1): a fold holds one or two of a few-star image's
    # stars, and dropping that piece left them out of every other fold's refit too;
    # which images keep their attitude in a refit is decided on its training pairs
    parts = [problem.assemble(designs, fitted.inliers & (fold == j), fitted.weights,
                              min_pairs=1) for j in range(k)]
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
    return Holdout(k, rms(np.concatenate(pooled)) if pooled else math.nan, per, out,
                   expected_ratio(2 * int(fitted.inliers.sum()), problem.n_params, k))


def select_order(images: list[Pairs], cameras: list[CameraModel], width: int, height: int,
                 options: CalibrationOptions) -> tuple[int, dict[int, tuple[float, float]]]:
    """The polynomial order (2 .. ``options.order``) chosen by the held-out rms and the
    higher orders' chi-square (see the module docstring), and ``{order: (in-sample rms,
    held-out rms)}``."""
    from ..errors import InvalidArgumentError
    from .compare import chi_square_drop, drop_z
    from .engine import fit_camera

    scores: dict[int, tuple[float, float]] = {}
    fits: dict[int, Fitted] = {}
    for order in range(min(2, options.order), options.order + 1):
        try:
            # from copies: a fit re-matches its pairs in place, and a low order drops
            # the edge stars it cannot hold, which no higher order would then see
            fitted = fit_camera([dataclasses.replace(im) for im in images], cameras, width,
                                height, options, order)
        except InvalidArgumentError:
            break  # too few stars for this order (and every higher one)
        ho = holdout(fitted, options)
        res = fitted.problem.residuals(fitted.params)[fitted.inliers]
        scores[order] = (rms(res), ho.rmse_px)
        fits[order] = fitted
    if not scores:
        return options.order, scores
    best = min(v[1] for v in scores.values())
    good = [o for o, v in scores.items() if v[1] <= best * (1.0 + ORDER_TOLERANCE)]
    for order in sorted(o for o in fits if o >= min(good)):
        fit = fits[order]
        if not any(drop_z(chi_square_drop(fit, fits[o]),
                          fits[o].problem.n_glob - fit.problem.n_glob) > ORDER_Z
                   for o in fits if o > order):
            return order, scores
    return max(fits), scores
