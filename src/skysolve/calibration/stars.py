"""Better stars for a calibration: magnitude bins and weights.

(More stars, from a deeper catalog: :mod:`skysolve.calibration.matching`.)

Magnitude bins (:func:`magnitude_bins`)
    A star's centroid error depends on its brightness: faint stars are noisy,
    saturated ones (bleeding along the columns) are both noisy and biased. The
    inliers are binned by catalog magnitude (saturated centroids, when the
    extraction flagged them, in a bin of their own) and each bin's mean
    residual (the bias, also along the direction away from the optical
    centre) and scatter are reported.
Weights (:func:`magnitude_weights`)
    Each bin's stars then get the weight ``1 / (sigma_b² + bias_b²)`` (per
    axis, normalised to a median of 1) in the final fit: a bin that is noisy
    or biased counts less, so it neither dominates the distortion nor
    inflates the uncertainties of the good stars; its stars are also judged
    by the clipping against their own bin's scatter. The bins are of the
    residuals in units of their image's noise scale, which the fit weights by
    as well (:func:`~skysolve.calibration.engine.image_noise`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from .lsq import Params, Problem

__all__ = ["magnitude_bins", "magnitude_weights", "MIN_BIN_STARS", "MAX_BINS"]

#: Fewest stars a magnitude bin must hold (bins are merged below it).
MIN_BIN_STARS = 40
#: Most magnitude bins.
MAX_BINS = 8


def _bin_ids(problem: Problem, inliers: NDArray[np.bool_]) -> tuple[
        NDArray[np.intp], list[tuple[float, float, bool]]]:
    """Bin of every pair (-1: none) and each bin's (mag_min, mag_max, saturated)."""
    images = problem.images
    mag = np.concatenate([im.mag for im in images])
    sat = np.concatenate([im.saturated for im in images])
    ids = np.full(len(mag), -1, dtype=np.intp)
    bins: list[tuple[float, float, bool]] = []
    plain = inliers & ~sat & np.isfinite(mag)
    n_bins = min(MAX_BINS, int(plain.sum()) // MIN_BIN_STARS)
    if n_bins >= 1:
        edges = np.quantile(mag[plain], np.linspace(0.0, 1.0, n_bins + 1))
        which = np.clip(np.searchsorted(edges, mag, side="right") - 1, 0, n_bins - 1)
        ok = ~sat & np.isfinite(mag)
        ids[ok] = which[ok]
        bins = [(float(edges[b]), float(edges[b + 1]), False) for b in range(n_bins)]
    if np.any(sat & inliers):
        ids[sat] = len(bins)
        m = mag[sat & inliers]
        m = m[np.isfinite(m)]
        bins.append((float(m.min()) if len(m) else math.nan,
                     float(m.max()) if len(m) else math.nan, True))
    return ids, bins


def magnitude_bins(problem: Problem, params: Params, inliers: NDArray[np.bool_],
                   weights: NDArray[np.float64] | None = None,
                   noise: NDArray[np.float64] | None = None) -> tuple[
                       list[dict[str, Any]], NDArray[np.intp]]:
    """Residual bias and scatter of the inliers per magnitude bin (and the median of the
    stars' ``weights`` in each), and every pair's bin; with ``noise`` (per pair) of the
    residuals in units of it."""
    res = problem.residuals(params)
    if noise is not None:
        res = res / noise[:, None]
    xy = np.concatenate([im.xy for im in problem.images])
    radial = xy - params.crpix
    radial /= np.maximum(np.hypot(radial[:, 0], radial[:, 1]), 1e-9)[:, None]
    ids, edges = _bin_ids(problem, inliers)
    rows = []
    for b, (lo, hi, saturated) in enumerate(edges):
        sel = (ids == b) & inliers
        r = res[sel]
        mad = np.median(np.abs(r - np.median(r, axis=0)), axis=0) * 1.4826
        rows.append({"mag_min": lo, "mag_max": hi, "saturated": saturated, "n": int(sel.sum()),
                     "bias_x_px": float(r[:, 0].mean()), "bias_y_px": float(r[:, 1].mean()),
                     "bias_radial_px": float(np.sum(r * radial[sel], axis=1).mean()),
                     "rms_px": float(np.sqrt(np.mean(np.sum(r * r, axis=1)))),
                     "sigma_px": float(np.sqrt(np.mean(mad ** 2))),
                     "weight": 1.0 if weights is None else float(np.median(weights[sel]))})
    return rows, ids


def magnitude_weights(problem: Problem, params: Params, inliers: NDArray[np.bool_],
                      wanted: bool | None, noise: NDArray[np.float64] | None = None
                      ) -> NDArray[np.float64] | None:
    """Per-pair weights ``1 / (sigma² + bias²)`` of each pair's magnitude bin (per axis,
    median 1), or None when not ``wanted`` (None: unless some bin has fewer than
    :data:`MIN_BIN_STARS` stars, or there is only one bin).

    With ``noise``, the noise scale of each pair's image, the bins' scatter and bias are
    of the residuals in units of it: the fit divides the weights by the square of that
    scale, so these weights carry what magnitude changes within an image, not the
    differences between images (noisy images' stars making their magnitudes look
    noisy)."""
    if wanted is False:
        return None
    rows, ids = magnitude_bins(problem, params, inliers, noise=noise)
    if wanted is None and (len(rows) < 2 or any(r["n"] < MIN_BIN_STARS for r in rows)):
        return None
    if not rows:
        return None
    per_bin = np.array([1.0 / max(r["sigma_px"] ** 2 + 0.5 * (r["bias_x_px"] ** 2
                                                              + r["bias_y_px"] ** 2), 1e-12)
                        for r in rows])
    w = np.ones(len(ids))
    has = ids >= 0
    w[has] = per_bin[ids[has]]
    w /= np.median(w[has]) if has.any() else 1.0
    w[~has] = 1.0
    return w
