"""Better stars for a calibration: magnitude bins and weights.

(More stars, from a deeper catalog: :mod:`skysolve.calibration.matching`.)

Magnitude bins (:func:`magnitude_bins`)
    A star's centroid error depends on its brightness: faint stars are noisy,
    saturated ones (bleeding along the columns) are both noisy and biased. The
    inliers are binned by catalog magnitude (saturated centroids, when the
    extraction flagged them, in a bin of their own) and each bin's mean
    residual (the bias, also along the direction away from the optical
    centre) and scatter are reported.
Weights (:func:`reweight`)
    Each bin's stars then get the weight ``1 / (sigma_b² + bias_b²)`` (per
    axis, normalised to a median of 1) and the fit is redone: a bin that is
    noisy or biased counts less, so it neither dominates the distortion nor
    inflates the uncertainties of the good stars.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Fitted
    from .options import CalibrationOptions

__all__ = ["magnitude_bins", "reweight", "MIN_BIN_STARS", "MAX_BINS"]

#: Fewest stars a magnitude bin must hold (bins are merged below it).
MIN_BIN_STARS = 40
#: Most magnitude bins.
MAX_BINS = 8


def _bin_ids(fitted: Fitted) -> tuple[NDArray[np.intp], list[tuple[float, float, bool]]]:
    """Bin of every pair (-1: none) and each bin's (mag_min, mag_max, saturated)."""
    images = fitted.problem.images
    mag = np.concatenate([im.mag for im in images])
    sat = np.concatenate([im.saturated for im in images])
    inl = fitted.inliers
    ids = np.full(len(mag), -1, dtype=np.intp)
    bins: list[tuple[float, float, bool]] = []
    plain = inl & ~sat & np.isfinite(mag)
    n_bins = min(MAX_BINS, int(plain.sum()) // MIN_BIN_STARS)
    if n_bins >= 1:
        edges = np.quantile(mag[plain], np.linspace(0.0, 1.0, n_bins + 1))
        which = np.clip(np.searchsorted(edges, mag, side="right") - 1, 0, n_bins - 1)
        ok = ~sat & np.isfinite(mag)
        ids[ok] = which[ok]
        bins = [(float(edges[b]), float(edges[b + 1]), False) for b in range(n_bins)]
    if np.any(sat & inl):
        ids[sat] = len(bins)
        m = mag[sat & inl]
        m = m[np.isfinite(m)]
        bins.append((float(m.min()) if len(m) else math.nan,
                     float(m.max()) if len(m) else math.nan, True))
    return ids, bins


def magnitude_bins(fitted: Fitted) -> tuple[list[dict[str, Any]], NDArray[np.intp]]:
    """Residual bias and scatter of the inliers per magnitude bin, and every pair's bin."""
    problem, p = fitted.problem, fitted.params
    res = problem.residuals(p)
    xy = np.concatenate([im.xy for im in problem.images])
    radial = xy - p.crpix
    radial /= np.maximum(np.hypot(radial[:, 0], radial[:, 1]), 1e-9)[:, None]
    ids, edges = _bin_ids(fitted)
    rows = []
    for b, (lo, hi, saturated) in enumerate(edges):
        sel = (ids == b) & fitted.inliers
        r = res[sel]
        mad = np.median(np.abs(r - np.median(r, axis=0)), axis=0) * 1.4826
        rows.append({"mag_min": lo, "mag_max": hi, "saturated": saturated, "n": int(sel.sum()),
                     "bias_x_px": float(r[:, 0].mean()), "bias_y_px": float(r[:, 1].mean()),
                     "bias_radial_px": float(np.sum(r * radial[sel], axis=1).mean()),
                     "rms_px": float(np.sqrt(np.mean(np.sum(r * r, axis=1)))),
                     "sigma_px": float(np.sqrt(np.mean(mad ** 2))), "weight": 1.0})
    return rows, ids


def _bin_weights(rows: list[dict[str, Any]], ids: NDArray[np.intp]) -> NDArray[np.float64]:
    """``1 / (sigma² + bias²)`` per axis of each pair's bin, normalised to median 1."""
    per_bin = np.array([1.0 / max(r["sigma_px"] ** 2 + 0.5 * (r["bias_x_px"] ** 2
                                                              + r["bias_y_px"] ** 2), 1e-12)
                        for r in rows])
    w = np.ones(len(ids))
    has = ids >= 0
    w[has] = per_bin[ids[has]]
    w /= np.median(w[has]) if has.any() else 1.0
    w[~has] = 1.0
    return w


def reweight(fitted: Fitted, options: CalibrationOptions) -> tuple[Fitted,
                                                                   list[dict[str, Any]]]:
    """The fit redone with magnitude-bin weights when asked (see the module notes), and
    the bins' statistics under the final fit."""
    from .engine import iterate

    rows, ids = magnitude_bins(fitted)
    want = options.magnitude_weights
    if want is None:
        want = len(rows) >= 2 and all(r["n"] >= MIN_BIN_STARS for r in rows)
    if not want or not rows:
        return fitted, rows
    weights = _bin_weights(rows, ids)
    fitted = iterate(fitted.problem, fitted.params, options, weights=weights,
                     inliers=fitted.inliers, probe=False)
    rows, ids = magnitude_bins(fitted)
    for b, row in enumerate(rows):
        sel = ids == b
        row["weight"] = float(np.median(weights[sel])) if sel.any() else 1.0
    return fitted, rows
