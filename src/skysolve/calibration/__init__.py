"""Attitude → calibration: one shared camera model from many solved frames.

Modules
-------
``fit``
    :func:`calibrate_camera`: the shared least-squares fit (focal length,
    optical centre, distortion; per frame its attitude and plate scale) and
    what it reports; the algorithm and its degeneracies.
``inputs``
    Solve results and centroid sets → matched pairs per frame (aberrated with
    each frame's observer velocity).
``lsq``
    The least-squares problem: parameters, residuals, Gauss-Newton steps,
    covariance.
``engine``
    Start values, iterations with clipping and re-matching, the fitted state.
``basis``
    The distortion parametrisations the fit uses and its small linear solves.
``radial``
    Start values of a radial model whose optical axis lies off the image.
``misfits``
    Images that do not fit the camera the others share: left out and reported.
``matching``
    Re-matching the stars under the fit; more stars from a deeper catalog.
``stars``
    Residual bias and scatter per magnitude bin, and the weights they give.
``uncertainty``
    Fit covariance, bootstrap, 1-sigma maps of the mapping.
``validation``
    k-fold held-out residuals and order selection.
``export``
    Each calibrated frame's mapping as a TAN-SIP FITS header.
``options``, ``result``, ``report``
    :class:`CalibrationOptions` (every parameter), :class:`CalibrateResult`
    and its summary and camera-file record.
``workflow``
    The multi-pass solve-and-calibrate workflow over many frames
    (:func:`calibrate_frames`), with pluggable executors.

May import: ``errors``, ``_args``, ``_options``, ``geometry``, ``sky``,
``centroids``, ``camera``, ``io``, ``extraction``, ``solver``, ``batch``.
"""

from typing import Any

from .options import CalibrationOptions
from .result import CalibrateResult

__all__ = ["CalibrateResult", "CalibrationOptions", "calibrate_camera"]


def __getattr__(name: str) -> Any:
    # the fit (and its scipy) loads on first use: a solve-only program never pays for it
    if name == "calibrate_camera":
        from .fit import calibrate_camera

        return calibrate_camera
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
