"""What a calibration returns: :class:`CalibrateResult`."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..camera.model import CameraModel
from ..errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from .uncertainty import Uncertainty
    from .validation import Holdout, Pattern

__all__ = ["CalibrateResult", "OVERFIT_RATIO"]

#: Held-out rms above this multiple of what the in-sample rms and the fit's parameter
#: count lead one to expect flags overfitting (:attr:`CalibrateResult.overfitting`).
OVERFIT_RATIO = 1.2



def checked_image(image: Any, n_results: int) -> int:
    """``image`` as an index into a calibration's ``n_results`` solve results (checked:
    a whole number ``0 <= image < n_results``; -1, True or "0" are no image's index)."""
    i = _args.count(image, "image", minimum=0)
    if i >= n_results:
        raise InvalidArgumentError(f"image {i} is past the calibration's {n_results} solve "
                                   f"results (0 to {n_results - 1})")
    return i

class CalibrateResult:
    """Outcome of :func:`calibrate_camera`.

    Attributes
    ----------
    camera_model : CameraModel
        The fitted shared camera (focal length, optical centre, parity,
        distortion); pass it as ``camera_model=`` to ``solve_from_centroids``.
    rmse_before_px : float
        RMS pixel residual of all matched pairs of the images that took part (not
        :attr:`excluded_images`') under the models the solves used (each its own camera
        model and attitude).
    rmse_after_px : float
        RMS pixel residual of the inlier pairs under the fitted camera and the
        refined attitudes.
    n_inliers, n_outliers : int
        Pairs kept and rejected by the sigma clipping.
    iterations : int
        Gauss-Newton steps of the final fit: the one from the settled pairs, with the
        per-image scales and magnitude weights (the rounds of re-matching before it,
        up to two steps each, are not counted: a fit of 6 frames of a strong lens
        reports 1).
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
    excluded_images : dict of int to str
        Images left out of the fit because they do not fit the camera the others share
        (another lens or focal setting, a wrong solve; see
        :mod:`skysolve.calibration.misfits`), by index into the solve results, each with
        why; their per-image entries are None, as a failed solve's. Empty when every
        image took part.
    per_image_noise_px : list of float or None
        Each image's noise scale: the rms residual length its stars are weighted and
        clipped by (a robust estimate of its centroid errors, for a star of median
        magnitude weight; see :func:`~skysolve.calibration.engine.image_noise`);
        None for skipped images.
    crpix_fitted : bool
        Whether the optical centre was fitted (otherwise it kept its input
        value; see the module notes on degeneracies).
    per_image_scale : list of float or None
        Each image's plate-scale factor: its focal length is
        ``camera_model.focal_length_px * per_image_scale[i]`` (1.0 where not
        fitted; the fitted ones average 1).
    per_image_velocity_km_s : list of (3,) ndarray or None
        The observer velocity each image's stars were aberrated with (None:
        none, or a skipped image).
    center_fitted : bool
        Whether a radial model's distortion centre offset was fitted.
    residual_pattern : Pattern or None
        The inlier residuals' mean over a grid of cells of the image, tested against
        the noise (:func:`~skysolve.calibration.validation.residual_pattern`):
        ``rms_px``, ``z`` and ``significant`` -- a model that cannot represent the
        lens (a too-low polynomial order for ``k2``, a radial model about the wrong
        centre) leaves one, and its errors beyond the stars then exceed
        :meth:`mapping_sigma_px`, which a ``UserWarning`` says. None with too few stars.
    uncertainty : Uncertainty
        Covariance of the shared parameters from the fit (and from the
        bootstrap, when run), and the 1-sigma maps derived from them: see
        :meth:`mapping_sigma_px`, :attr:`parameter_sigma`.
    validation : Holdout or None
        Out-of-sample residuals of a k-fold cross-validation over the stars
        (None when ``validation_folds=0``); see :attr:`holdout_rmse_px`.
    order_scores : dict or None
        With ``select_order``: ``{order: (in-sample rms, held-out rms)}`` px.
    magnitude_bins : list of dict
        Residual statistics of the inliers per catalog-magnitude bin
        (saturated stars in a bin of their own): ``mag_min``, ``mag_max``,
        ``n``, ``bias_x_px``, ``bias_y_px`` (mean residual), ``bias_radial_px``
        (mean residual away from the optical centre), ``rms_px`` and the
        ``weight`` the fit gave the bin (1 when unweighted).
    """

    __slots__ = ("camera_model", "rmse_before_px", "rmse_after_px", "n_inliers", "n_outliers",
                 "iterations", "converged", "rotations", "per_image_rmse_px",
                 "per_image_inliers", "crpix_fitted", "per_image_scale",
                 "per_image_velocity_km_s", "uncertainty", "validation", "order_scores",
                 "magnitude_bins", "center_fitted", "residual_pattern",
                 "per_image_noise_px", "excluded_images")

    def __init__(self, camera_model: CameraModel, rmse_before_px: float, rmse_after_px: float,
                 n_inliers: int, n_outliers: int, iterations: int, converged: bool,
                 rotations: list[NDArray[np.float64] | None],
                 per_image_rmse_px: list[float | None],
                 per_image_inliers: list[int | None], crpix_fitted: bool, *,
                 per_image_scale: list[float | None] | None = None,
                 per_image_velocity_km_s: list[NDArray[np.float64] | None] | None = None,
                 per_image_noise_px: list[float | None] | None = None,
                 uncertainty: Uncertainty | None = None, validation: Holdout | None = None,
                 order_scores: dict[int, tuple[float, float]] | None = None,
                 magnitude_bins: list[dict[str, float]] | None = None,
                 center_fitted: bool = False, residual_pattern: Pattern | None = None,
                 excluded_images: dict[int, str] | None = None) -> None:
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
        n = len(rotations)
        self.per_image_scale = (per_image_scale if per_image_scale is not None else
                                [None if r is None else 1.0 for r in rotations])
        self.per_image_velocity_km_s = per_image_velocity_km_s or [None] * n
        self.per_image_noise_px = per_image_noise_px or [None] * n
        self.uncertainty = uncertainty
        self.validation = validation
        self.order_scores = order_scores
        self.magnitude_bins = magnitude_bins or []
        self.center_fitted = bool(center_fitted)
        self.residual_pattern = residual_pattern
        self.excluded_images = dict(excluded_images or {})

    @property
    def num_images(self) -> int:
        """Number of images that took part (failed solves and :attr:`excluded_images`
        not)."""
        return sum(r is not None for r in self.rotations)

    # -- uncertainties
    @property
    def parameter_names(self) -> list[str]:
        """Names of the shared parameters the covariance is over (``f``, ``crpix_x``, ...)."""
        return [] if self.uncertainty is None else list(self.uncertainty.names)

    @property
    def parameter_sigma(self) -> dict[str, float]:
        """1-sigma of each shared parameter from the fit covariance, in the units of
        :attr:`camera_model`'s (a radial model's ``k1`` .. ``p2`` those of its
        :class:`~skysolve.RadialDistortion`).

        Linearised at the fitted parameters. For a radial model's distortion centre
        that is not enough: moving it changes the distortion, to first order, exactly
        as ``p1``/``p2`` do, and only the higher radial terms and the move's
        second-order terms tell the two apart. A centre that does not lower the
        residuals significantly is therefore not fitted (``center_fitted`` False,
        ``p1``/``p2`` carry the decentring): over 20 simulations of 8 frames of 30
        stars (1024 x 768, ``k1 = -1.2e-8``, ``k2 = 2e-15``, 0.1 px centroids) the
        rms of (fitted - true) / sigma is 0.87-1.18 for every parameter (with the
        centre fitted it was 1.8-2.4 for ``p1``, ``p2`` and the centre, 1.3 for
        ``f``, ``k1``..``k3``). A lens with a clear ``k2`` (1e-13 px^-4) and its centre
        30 px off gives 0.7-1.0 with the centre fitted. Not yet honest: a centre
        found by the second-order terms alone (``k1 = -1e-7``, centre 180 px off, no
        ``k2``): 2.3-2.8 for the centre and 2.0-2.3 for ``p1``/``p2``, the fit's
        minimum being quartic along the centre. :meth:`mapping_sigma_px`, which
        the degenerate pair does not affect, is not concerned.
        """
        return {} if self.uncertainty is None else self.uncertainty.sigma()

    @property
    def per_image_scale_sigma(self) -> list[float | None]:
        """1-sigma of each image's plate-scale factor (0 where it was not fitted)."""
        if self.uncertainty is None:
            return [None] * len(self.rotations)
        return self.uncertainty.scale_sigma(len(self.rotations))

    def mapping_sigma_px(self, x: ArrayLike, y: ArrayLike, image: int | None = None,
                         method: str = "fit") -> NDArray[np.float64]:
        """1-sigma uncertainty of the calibrated mapping at centred pixels ``(x, y)``, px.

        The rms length of the 2-D error (``sqrt`` of the trace of its
        covariance) of where the fitted model puts a sky direction, propagated
        from the covariance of every fitted parameter.

        Parameters
        ----------
        x, y : array_like
            Centred pixel positions.
        image : int, optional
            Index (into the solve results) of an image: the error of that
            image's mapping (shared camera, its attitude and scale); NaN for an
            image with fewer than two stars kept (nothing fixes its attitude).
            Default: the rms over the images with two or more.
        method : {'fit', 'bootstrap'}
            Covariance from the fit, or from the bootstrap resamples (needs
            ``bootstrap`` > 0).
        """
        if image is not None:
            image = checked_image(image, len(self.rotations))
        if self.uncertainty is None:
            raise ValueError("this result carries no uncertainties")
        return self.uncertainty.mapping_sigma_px(x, y, image, method)

    def sigma_map(self, n: int = 9, image: int | None = None, method: str = "fit") -> tuple[
            NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``(x, y, sigma_px)`` of :meth:`mapping_sigma_px` on an ``n`` x ``n`` grid
        over the image (pixel centres of the corner pixels to corner pixels)."""
        cam = self.camera_model
        w, h = cam.image_width, cam.image_height
        gx, gy = np.meshgrid(np.linspace(-w / 2 + 0.5, w / 2 - 0.5, n),
                             np.linspace(-h / 2 + 0.5, h / 2 - 0.5, n))
        return gx, gy, self.mapping_sigma_px(gx.ravel(), gy.ravel(), image,
                                             method).reshape(gx.shape)

    # -- validation
    @property
    def holdout_rmse_px(self) -> float:
        """Pooled out-of-sample rms residual of the cross-validation (NaN when not run)."""
        return math.nan if self.validation is None else self.validation.rmse_px

    @property
    def per_image_holdout_rmse_px(self) -> list[float | None]:
        """Out-of-sample rms residual of each image (None: skipped or not validated)."""
        if self.validation is None:
            return [None] * len(self.rotations)
        return self.validation.per_image(len(self.rotations))

    @property
    def overfitting(self) -> bool:
        """True when the held-out residuals exceed the in-sample ones by more than
        :data:`OVERFIT_RATIO` times what a model of the right form with as many free
        parameters gives on these stars
        (:func:`~skysolve.calibration.validation.expected_ratio`): the model has more
        freedom than the stars support. Against the bare ratio, fits of few stars at
        the order of their lens (3 frames of 20 stars, 1 of 40 or of 80: held out
        1.2-1.65 times the in-sample rms, 0.04-0.15 px from the truth) were flagged in
        11 of 12 draws, and the advice to lower the order made them 10 times worse."""
        if self.validation is None or not math.isfinite(self.holdout_rmse_px):
            return False
        expected = getattr(self.validation, "expected_ratio", 1.0)  # (older pickles)
        if math.isinf(expected):
            return True
        return bool(self.holdout_rmse_px > OVERFIT_RATIO * expected * self.rmse_after_px)

    # -- per image
    def image_camera(self, image: int) -> CameraModel:
        """The camera of one image: the shared one with that image's plate scale."""
        scale = self.per_image_scale[checked_image(image, len(self.rotations))]
        if scale is None:
            raise InvalidArgumentError(f"image {image} did not take part in the calibration")
        cam = self.camera_model
        return cam.replace(focal_length_px=cam.focal_length_px * scale)

    # -- reporting and files
    def summary(self, per_image: bool = True) -> str:
        """A few lines for people: residuals, the camera with its uncertainties, held-out
        validation, per-image terms (unless not ``per_image``), magnitude bins."""
        from .report import summary

        return summary(self, per_image)

    def calibration_record(self) -> dict[str, Any]:
        """JSON-able figures of this calibration, as camera files keep them."""
        from .report import record

        return record(self)

    def save_to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the camera with this calibration's figures (see
        :meth:`CameraModel.save_to_file`); ``CameraModel.load_from_file`` reads the camera
        back, :func:`skysolve.camera.model.read_camera_file` the figures too."""
        self.camera_model.save_to_file(path, calibration=self.calibration_record())

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k in self.__slots__:
            setattr(self, k, state.get(k))
        # a result pickled before images were left out of the fit left none out
        if self.excluded_images is None:
            self.excluded_images = {}

    def __repr__(self) -> str:
        cam = self.camera_model
        return (f"CalibrateResult(focal_length_px={cam.focal_length_px:.3f}, "
                f"crpix=[{cam.crpix[0]:.3f}, {cam.crpix[1]:.3f}], "
                f"distortion={type(cam.distortion).__name__}, "
                f"rmse_before_px={self.rmse_before_px:.4f}, "
                f"rmse_after_px={self.rmse_after_px:.4f}, n_inliers={self.n_inliers}, "
                f"n_outliers={self.n_outliers}, iterations={self.iterations}, "
                f"converged={self.converged}, num_images={self.num_images})")
