"""A calibration's figures for people (:func:`summary`) and for camera files (:func:`record`).

Both take a :class:`~skysolve.calibration.result.CalibrateResult` (typed ``Any``: the
result module imports this one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["summary", "record", "SIGMA_GRID"]

#: Grid points per axis of the 1-sigma maps in reports and camera files.
SIGMA_GRID = 9


def _f(v: Any, fmt: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def _camera_line(r: Any) -> str:
    cam = r.camera_model
    sig = r.parameter_sigma
    d = cam.distortion
    kind = type(d).__name__ if d is not None else "none"
    if d is not None and hasattr(d, "order"):
        kind = f"polynomial order {d.order} ({d.primary})"
    elif d is not None and hasattr(d, "center"):
        cx, cy = d.center
        kind = f"radial, distortion centre offset ({cx:.1f}, {cy:.1f}) px"
    centre = (f"({cam.crpix[0]:.2f} ± {sig.get('crpix_x', 0.0):.2f}, "
              f"{cam.crpix[1]:.2f} ± {sig.get('crpix_y', 0.0):.2f}) px"
              if r.crpix_fitted else f"({cam.crpix[0]:.2f}, {cam.crpix[1]:.2f}) px fixed")
    return (f"camera: f = {cam.focal_length_px:.3f} ± {sig.get('f', math.nan):.3f} px "
            f"(FOV {cam.fov_deg:.5f} deg), optical centre {centre}, {kind}")


def _validation_line(r: Any) -> str:
    if r.validation is None:
        return "held-out validation: not run"
    if not math.isfinite(r.holdout_rmse_px):
        from .validation import MIN_VALIDATED_PAIRS

        # (NaN compares as no overfitting: "[ok]" would vouch for what was not tested)
        return (f"held-out ({r.validation.folds}-fold over stars): no image has the "
                f"{MIN_VALIDATED_PAIRS} inliers a pooled figure needs [not validated]")
    ratio = r.holdout_rmse_px / r.rmse_after_px if r.rmse_after_px > 0 else math.nan
    verdict = "OVERFITTING: use a lower order" if r.overfitting else "ok"
    line = (f"held-out ({r.validation.folds}-fold over stars): {r.holdout_rmse_px:.4f} px vs "
            f"{r.rmse_after_px:.4f} px in sample (x{ratio:.3f}; "
            f"x{getattr(r.validation, 'expected_ratio', 1.0):.3f} expected) [{verdict}]")
    if r.order_scores:
        line += "; orders (in / held-out px): " + ", ".join(
            f"{o}: {a:.4f}/{b:.4f}" for o, (a, b) in sorted(r.order_scores.items()))
    return line


def _pattern_line(r: Any) -> str:
    p = r.residual_pattern
    if p is None:
        return "residual pattern over the image: too few stars to test"
    verdict = "MODEL DOES NOT FIT THE LENS" if p.significant else "none beyond the noise"
    return (f"residual pattern over the image ({p.cells} cells): {p.rms_px:.4f} px rms, "
            f"z = {p.z:.1f} [{verdict}]")


def _sigma_line(r: Any) -> str:
    if r.uncertainty is None:
        return ""
    parts = []
    for method in ("fit", "bootstrap"):
        if method == "bootstrap" and r.uncertainty.bootstrap_covariance is None:
            continue
        s = r.sigma_map(SIGMA_GRID, method=method)[2]
        parts.append(f"{method} median {np.median(s):.4f} px, max {np.max(s):.4f} px")
    return f"mapping 1-sigma over a {SIGMA_GRID}x{SIGMA_GRID} grid: " + "; ".join(parts)


def _image_lines(r: Any) -> list[str]:
    lines = ["  image  inliers  rmse_px  noise_px  heldout_px  scale-1 (ppm)   sigma (ppm)"]
    held = r.per_image_holdout_rmse_px
    ssig = r.per_image_scale_sigma
    for i, R in enumerate(r.rotations):
        if R is None:
            why = r.excluded_images.get(i)
            lines.append(f"  {i:5d}  " + ("(not solved)" if why is None else
                                          f"(left out: {why})"))
            continue
        scale = r.per_image_scale[i]
        lines.append(f"  {i:5d}  {r.per_image_inliers[i]:7d}  {_f(r.per_image_rmse_px[i]):>7}  "
                     f"{_f(r.per_image_noise_px[i]):>8}  "
                     f"{_f(held[i]):>10}  {_f((scale - 1.0) * 1e6, '+.2f'):>13}  "
                     f"{_f(None if ssig[i] is None else ssig[i] * 1e6, '.2f'):>11}")
    return lines


def _bin_lines(r: Any) -> list[str]:
    if not r.magnitude_bins:
        return []
    lines = ["  magnitudes     stars  bias_x  bias_y  bias_rad  rms_px  weight"]
    for b in r.magnitude_bins:
        label = "saturated" if b["saturated"] else f"{b['mag_min']:.2f}-{b['mag_max']:.2f}"
        lines.append(f"  {label:<13} {b['n']:6d}  {b['bias_x_px']:+.4f} {b['bias_y_px']:+.4f}  "
                     f"{b['bias_radial_px']:+.4f}  {b['rms_px']:.4f}  {b['weight']:.3f}")
    return lines


def summary(r: Any, per_image: bool = True) -> str:
    """Residuals, camera with uncertainties, validation, per-image terms (unless not
    ``per_image``), magnitude bins."""
    lines = [f"calibration: {r.num_images} images, {r.n_inliers} inliers ({r.n_outliers} "
             f"outliers), rms {r.rmse_before_px:.4f} -> {r.rmse_after_px:.4f} px in "
             f"{r.iterations} iterations{'' if r.converged else ' (not converged)'}",
             _camera_line(r), _validation_line(r), _pattern_line(r)]
    if r.excluded_images:
        lines.append("left out, not fitting the camera the others share: " + "; ".join(
            f"image {i}: {why}" for i, why in sorted(r.excluded_images.items())))
    sigma = _sigma_line(r)
    if sigma:
        lines.append(sigma)
    lines += (_image_lines(r) if per_image else []) + _bin_lines(r)
    return "\n".join(lines)


def _clean(v: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy -> Python."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return _clean(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def record(r: Any) -> dict[str, Any]:
    """The figures camera files keep (JSON-able; NaN written as null)."""
    n = len(r.rotations)
    out: dict[str, Any] = {
        "num_images": r.num_images, "rmse_before_px": r.rmse_before_px,
        "rmse_after_px": r.rmse_after_px, "n_inliers": r.n_inliers,
        "n_outliers": r.n_outliers, "crpix_fitted": r.crpix_fitted,
        "center_fitted": r.center_fitted,
        "per_image": {"rmse_px": r.per_image_rmse_px, "inliers": r.per_image_inliers,
                      "noise_px": r.per_image_noise_px,
                      "scale": r.per_image_scale, "holdout_rmse_px": r.per_image_holdout_rmse_px},
        "holdout_rmse_px": r.holdout_rmse_px,
        "validation_folds": 0 if r.validation is None else r.validation.folds,
        "magnitude_bins": r.magnitude_bins,
        "excluded_images": {str(i): why for i, why in sorted(r.excluded_images.items())}}
    if r.residual_pattern is not None:
        out["residual_pattern"] = {"rms_px": r.residual_pattern.rms_px,
                                   "z": r.residual_pattern.z}
    if r.order_scores:
        out["order_scores"] = {str(k): list(v) for k, v in r.order_scores.items()}
    if r.uncertainty is not None:
        out["uncertainty"] = r.uncertainty.record(n)
        x, y, s = r.sigma_map(SIGMA_GRID)
        out["sigma_map"] = {"x": x[0].tolist(), "y": y[:, 0].tolist(), "sigma_px": s.tolist()}
    return _clean(out)
