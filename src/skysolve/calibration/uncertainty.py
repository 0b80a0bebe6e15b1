"""Uncertainties of a calibration: fit covariance, bootstrap, 1-sigma maps.

Fit covariance
    ``sigma² (A^T W A)^-1`` of the converged Gauss-Newton problem over every
    free parameter (shared camera, per-image attitudes and scales), with
    ``sigma²`` the weighted residual variance per degree of freedom
    (:meth:`skysolve.calibration.lsq.Problem.covariance`). It is honest when the
    model can represent the camera and the centroid errors are independent;
    with magnitude weights it also follows stars whose errors differ. It is
    not where a parameter is identified only by the noise of others or at
    second order: a radial model's distortion centre moves the distortion, to
    first order, as ``p1``, ``p2`` do, so it is fitted only when it lowers the
    residuals significantly, and where that is by second-order terms alone its
    sigma and ``p1``/``p2``'s are still ~2x too small (measured figures in
    :attr:`CalibrateResult.parameter_sigma
    <skysolve.calibration.result.CalibrateResult.parameter_sigma>`).
Bootstrap
    A wild bootstrap over the inlier stars (``bootstrap`` times): every star's
    residual, scaled up by its leverage, has its sign flipped at random and the
    fit is redone from the solution (one Gauss-Newton step, which at the
    solution is the refit); the spread of every parameter gives a second
    covariance that does not assume the residuals are Gaussian or equally good.
    Each star keeps its place in its image, so an image of 3 stars keeps all 3
    (resampling them with replacement left 1 or 2 distinct ones, and the
    bootstrap sigma 1.3-2 times too large).
1-sigma maps
    The error of where an image's calibrated mapping puts a sky direction is,
    to first order, ``A δθ`` with ``A`` the derivative of the predicted pixel
    with respect to every parameter (the Gauss-Newton design at exact,
    synthetic pairs) and ``δθ`` the parameter error; its covariance is ``A C
    A^T``. :meth:`Uncertainty.mapping_sigma_px` reports its rms length
    ``sqrt(trace)`` per point, for one image (shared camera + that image's
    attitude and scale) or as the rms over the images. Since an image's
    attitude absorbs part of any camera error, this is the uncertainty a
    user of that image's mapping sees.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidArgumentError
from .basis import solve_normal
from .lsq import LOCAL, MIN_IMAGE_INLIERS, Pairs, Params, Problem, inverse_normal

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from .engine import Fitted
    from .options import CalibrationOptions

__all__ = ["Uncertainty", "BOOTSTRAP_SEED", "MIN_IMAGE_INLIERS"]

#: Seed of the bootstrap resampling (reproducible results).
BOOTSTRAP_SEED = 20240611


def _skeleton(problem: Problem) -> Problem:
    """``problem`` without its pairs: attitudes, scales, basis and layout only."""
    images = [Pairs(im.index, np.zeros((0, 2)), np.zeros((0, 3)), np.zeros(0),
                    np.zeros(0, dtype=bool), im.R.copy(), im.scale,
                    None if im.velocity is None else im.velocity.copy())
              for im in problem.images]
    out = Problem(images, problem.basis, problem.sign, problem.fit_crpix, problem.fit_center,
                  list(problem.scale_free), problem.projection)
    out.scale_free = problem.scale_free.copy()
    return out


class Uncertainty:
    """Covariances of a calibration and the maps derived from them.

    Attributes
    ----------
    names : list of str
        The shared parameters, in the order of the covariance matrices.
    values : ndarray
        Their fitted values (``f`` px, ``crpix`` px, coefficients, ...), in the
        units of the fitted camera: a radial model's ``k1`` .. ``p2`` are those of
        its :class:`~skysolve.RadialDistortion` (the fit itself normalises the
        radius by half the image width).
    covariance : ndarray
        Fit covariance of the shared parameters, in the units of ``values``.
    bootstrap_covariance : ndarray or None
        Bootstrap covariance of the shared parameters (None: not run).
    unit_variance_px2 : float
        Weighted residual variance per degree of freedom (px²).
    n_bootstrap : int
    """

    def __init__(self, problem: Problem, params: Params, camera: CameraModel,
                 cov_full: NDArray[np.float64], s2: float, boot_full: NDArray[np.float64] | None,
                 n_bootstrap: int, used: list[bool] | None = None) -> None:
        self._problem = _skeleton(problem)
        # images with too few inlier stars to take part fix nothing of their attitude
        self._used = [True] * len(problem.images) if used is None else list(used)
        self._params = params.copy()
        self._camera = camera
        self._cov = cov_full
        self._boot = boot_full
        n = problem.n_glob
        # the camera's units, not the fit's (its radial coefficients are normalised)
        units = problem.glob_units()
        self.names = problem.glob_names()
        self.values = problem.glob_vector(params) * units
        self.covariance = cov_full[:n, :n] * np.outer(units, units)
        self.bootstrap_covariance = (None if boot_full is None
                                     else boot_full[:n, :n] * np.outer(units, units))
        self.unit_variance_px2 = float(s2)
        self.n_bootstrap = int(n_bootstrap)

    @classmethod
    def from_fit(cls, fitted: Fitted, width: int, height: int, options: CalibrationOptions,
                 designs: list | None = None) -> Uncertainty:
        problem, p = fitted.problem, fitted.params
        designs = problem.designs(p) if designs is None else designs
        cov, s2 = problem.covariance(p, fitted.inliers, fitted.weights, designs)
        boot = _bootstrap(fitted, options, designs) if options.bootstrap else None
        used = [int(fitted.inliers[problem.rows(k)].sum()) >= MIN_IMAGE_INLIERS
                for k in range(len(problem.images))]
        return cls(problem, p, fitted.camera(width, height), cov, s2, boot, options.bootstrap,
                   used)

    def sigma(self, method: str = "fit") -> dict[str, float]:
        """1-sigma of each shared parameter, in the units of the fitted camera's."""
        self._pick(method)  # checks the method (and that a bootstrap was run)
        cov = self.covariance if method == "fit" else self.bootstrap_covariance
        return {n: float(math.sqrt(max(v, 0.0))) for n, v in zip(self.names, np.diag(cov),
                                                                  strict=True)}

    def scale_sigma(self, n_results: int, method: str = "fit") -> list[float | None]:
        """1-sigma of each result's plate-scale factor (None for skipped results)."""
        cov = self._pick(method)
        out: list[float | None] = [None] * n_results
        for k, im in enumerate(self._problem.images):
            j = self._problem.n_glob + LOCAL * k + 3
            out[im.index] = float(math.sqrt(max(cov[j, j], 0.0)))
        return out

    def _pick(self, method: str) -> NDArray[np.float64]:
        if method == "fit":
            return self._cov
        if method == "bootstrap":
            if self._boot is None:
                raise InvalidArgumentError(
                    "no bootstrap was run: calibrate with bootstrap=N (N > 1)")
            return self._boot
        raise InvalidArgumentError(f"method must be 'fit' or 'bootstrap', got {method!r}")

    def mapping_sigma_px(self, x: ArrayLike, y: ArrayLike, image: int | None = None,
                         method: str = "fit") -> NDArray[np.float64]:
        """1-sigma (rms length) of the mapping error at centred pixels, px (see the module
        notes); ``image`` indexes the solve results, None gives the rms over the images
        that took part. NaN for an image whose stars the fit all but rejected (fewer
        than two inliers): nothing fixes its attitude."""
        cov = self._pick(method)
        xb, yb = np.broadcast_arrays(np.asarray(x, dtype=np.float64),
                                     np.asarray(y, dtype=np.float64))
        images = self._problem.images
        ks = ([k for k in range(len(images)) if self._used[k]] if image is None
              else [self._position(image)])
        if not ks or not self._used[ks[0]]:
            return np.full(xb.shape, np.nan)
        var = np.zeros(xb.size)
        for k in ks:
            var += self._variance(k, xb.ravel(), yb.ravel(), cov)
        return np.sqrt(var / len(ks)).reshape(xb.shape)

    def _position(self, image: int) -> int:
        for k, im in enumerate(self._problem.images):
            if im.index == image:
                return k
        raise InvalidArgumentError(f"image {image} did not take part in the calibration")

    def _variance(self, k: int, x: NDArray[np.float64], y: NDArray[np.float64],
                  cov: NDArray[np.float64]) -> NDArray[np.float64]:
        prob, p = self._problem, self._params
        im = prob.images[k]
        cam = self._camera.replace(focal_length_px=p.f * im.scale)
        stars = cam.pixel_to_vectors(x, y) @ im.R  # camera -> ICRS
        synth = Pairs(im.index, np.stack([x, y], axis=1), stars, np.zeros(len(x)),
                      np.zeros(len(x), dtype=bool), im.R, im.scale)
        a = prob.design_at(p, synth)  # (m, 2, n_glob + LOCAL)
        idx = np.concatenate([np.arange(prob.n_glob), prob.n_glob + LOCAL * k + np.arange(LOCAL)])
        c = cov[np.ix_(idx, idx)]
        return np.einsum("mai,ij,maj->m", a, c, a, optimize=False)

    def record(self, n_results: int) -> dict[str, Any]:
        """JSON-able form for camera files."""
        out: dict[str, Any] = {
            "parameters": self.names, "values": self.values.tolist(),
            "covariance": self.covariance.tolist(),
            "unit_variance_px2": self.unit_variance_px2,
            "per_image_scale_sigma": self.scale_sigma(n_results)}
        if self.bootstrap_covariance is not None:
            out["bootstrap_covariance"] = self.bootstrap_covariance.tolist()
            out["n_bootstrap"] = self.n_bootstrap
        return out


def _bootstrap(fitted: Fitted, options: CalibrationOptions,
               designs: list) -> NDArray[np.float64]:
    """Covariance of the full parameter vector over bootstrap refits (see the notes).

    A wild bootstrap: each refit is the fit of the inlier stars with every residual's
    sign flipped at random, star by star, each residual first scaled up by its leverage
    (``1 / sqrt(1 - h)``, ``h`` the mean of its 2 x 2 hat block's diagonal) so that it
    stands for its star's error, not for what the fit left of it. At the solution the
    problem is linear to far below the noise, so one Gauss-Newton step is the refit, and
    every refit shares the normal matrix. Resampling each image's stars instead left an
    image of 3 stars with 1 or 2 distinct ones most times, its attitude taking what the
    camera would have: over 50 draws of 20 frames of 3 stars the bootstrap sigma of
    ``f``, ``k1``..``k3`` and the optical centre came out 1.3-2 times the scatter.
    """
    problem = fitted.problem
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    inl, w = fitted.inliers, fitted.weights
    nmat, _, used = problem.assemble(designs, inl, w)
    nred, _, red = problem.reduce(nmat, np.zeros(len(nmat)), used)
    cov = problem.expand_matrix(red, inverse_normal(nred))
    glob = np.arange(problem.n_glob)
    terms = []  # per used image: its columns, weighted design and scaled residuals
    for k, (res, a) in enumerate(designs):
        if not used[k]:
            continue
        keep = inl[problem.rows(k)]
        idx = np.concatenate([glob, problem.n_glob + LOCAL * k + np.arange(LOCAL)])
        ak, wk = a[keep], w[problem.rows(k)][keep]
        lev = 0.5 * wk * np.einsum("mai,ij,maj->m", ak, cov[np.ix_(idx, idx)], ak,
                                   optimize=False)
        scaled = res[keep] / np.sqrt(np.maximum(1.0 - lev, 1e-3))[:, None]
        terms.append((idx, ak * wk[:, None, None], scaled))
    samples = []
    for _ in range(options.bootstrap):
        rvec = np.zeros(len(nmat))
        for idx, wa, scaled in terms:
            flip = rng.choice((-1.0, 1.0), size=(len(scaled), 1))
            rvec[idx] += np.einsum("nai,na->i", wa, scaled * flip, optimize=False)
        rred = problem.reduce(nmat, rvec, used)[1]
        samples.append(problem.expand(red, solve_normal(nred, rred)[0]))
    if len(samples) < 2:
        return np.zeros((len(problem.glob_names()) + LOCAL * len(problem.images),) * 2)
    return np.cov(np.array(samples), rowvar=False)
