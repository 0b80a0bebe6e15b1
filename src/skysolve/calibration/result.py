"""What a calibration returns: :class:`CalibrateResult`."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..camera.model import CameraModel

__all__ = ["CalibrateResult"]


class CalibrateResult:
    """Outcome of :func:`calibrate_camera`.

    Attributes
    ----------
    camera_model : CameraModel
        The fitted shared camera (focal length, optical centre, parity,
        distortion); pass it as ``camera_model=`` to ``solve_from_centroids``.
    rmse_before_px : float
        RMS pixel residual of all matched pairs under the models the solves
        used (each its own camera model and attitude).
    rmse_after_px : float
        RMS pixel residual of the inlier pairs under the fitted camera and the
        refined attitudes.
    n_inliers, n_outliers : int
        Pairs kept and rejected by the sigma clipping.
    iterations : int
        Gauss-Newton steps taken.
    converged : bool
        True when the inlier rms changed by less than the convergence
        threshold before ``max_iterations`` ran out.
    rotations : list of (3, 3) ndarray or None
        Refined ICRS→camera rotation of each input image (None where the
        solve had failed and was skipped).
    per_image_rmse_px : list of float or None
        RMS residual of each image's inliers (None for skipped images).
    per_image_inliers : list of int or None
        Inlier count of each image (None for skipped images).
    crpix_fitted : bool
        Whether the optical centre was fitted (otherwise it kept its input
        value; see the module notes on degeneracies).
    """

    __slots__ = ("camera_model", "rmse_before_px", "rmse_after_px", "n_inliers", "n_outliers",
                 "iterations", "converged", "rotations", "per_image_rmse_px",
                 "per_image_inliers", "crpix_fitted")

    def __init__(self, camera_model: CameraModel, rmse_before_px: float, rmse_after_px: float,
                 n_inliers: int, n_outliers: int, iterations: int, converged: bool,
                 rotations: list[NDArray[np.float64] | None],
                 per_image_rmse_px: list[float | None],
                 per_image_inliers: list[int | None], crpix_fitted: bool) -> None:
        self.camera_model = camera_model
        self.rmse_before_px = float(rmse_before_px)
        self.rmse_after_px = float(rmse_after_px)
        self.n_inliers = int(n_inliers)
        self.n_outliers = int(n_outliers)
        self.iterations = int(iterations)
        self.converged = bool(converged)
        self.rotations = rotations
        self.per_image_rmse_px = per_image_rmse_px
        self.per_image_inliers = per_image_inliers
        self.crpix_fitted = bool(crpix_fitted)

    @property
    def num_images(self) -> int:
        """Number of images that took part (failed solves excluded)."""
        return sum(r is not None for r in self.rotations)

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k in self.__slots__:
            setattr(self, k, state[k])

    def __repr__(self) -> str:
        cam = self.camera_model
        return (f"CalibrateResult(focal_length_px={cam.focal_length_px:.3f}, "
                f"crpix=[{cam.crpix[0]:.3f}, {cam.crpix[1]:.3f}], "
                f"distortion={type(cam.distortion).__name__}, "
                f"rmse_before_px={self.rmse_before_px:.4f}, "
                f"rmse_after_px={self.rmse_after_px:.4f}, n_inliers={self.n_inliers}, "
                f"n_outliers={self.n_outliers}, iterations={self.iterations}, "
                f"converged={self.converged}, num_images={self.num_images})")
