"""Attitude → calibration: one shared camera model from many solved frames.

Modules
-------
``fit``
    :func:`calibrate_camera`: the shared least-squares fit (focal length,
    optical centre, distortion, one attitude per frame) with sigma clipping.
``basis``
    The distortion parametrisations the fit uses and its small linear solves.
``options``, ``result``
    :class:`CalibrationOptions` (every parameter) and :class:`CalibrateResult`.
``workflow``
    The multi-pass solve-and-calibrate workflow over many frames
    (:func:`calibrate_frames`), with pluggable executors.

May import: ``errors``, ``_args``, ``_options``, ``geometry``, ``sky``,
``centroids``, ``camera``, ``io``, ``extraction``, ``solver``, ``batch``.
"""

from .fit import calibrate_camera
from .options import CalibrationOptions
from .result import CalibrateResult

__all__ = ["CalibrateResult", "CalibrationOptions", "calibrate_camera"]
