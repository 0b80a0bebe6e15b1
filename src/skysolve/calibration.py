"""Camera calibration: one shared camera model from one or many solved images.

:func:`calibrate_camera` (also :meth:`SolverDatabase.calibrate_camera
<skysolve.database.SolverDatabase.calibrate_camera>`) takes plate solutions
and their centroid lists, pairs every matched centroid's observed centred
pixel position with the catalog unit vector of its star (aberrated when the
solve had an observer velocity), and fits by least squares

* one focal length ``f``, optical centre ``crpix`` and lens distortion shared
  by all images, and
* one attitude ``R_i`` per image,

to minimise the pixel residuals of the camera model (see
:mod:`skysolve.camera`)::

    u       = (s f X/Z, f Y/Z),  (X, Y, Z) = R_i @ star,  s = -1 if parity_flip
    pixel   = crpix + distort(u)          distort(u) = u + displacement(u)

Algorithm
---------
Each image's attitude is first re-fitted to the starting camera model
(Wahba's problem on the model's camera vectors of the observed pixels). Each
iteration then makes one Gauss-Newton step of the whole problem: the
displacement is linear in the distortion coefficients, so the step is a
single linear least-squares solve for the global parameters (focal length,
optical centre, distortion coefficients) *together with* a small rotation of
every image. Refining the attitudes inside the same solve, rather than in a
separate alternating step, removes the slow zig-zag along the coupling
between an attitude and the camera (a tilt of the attitude moves the stars by
a constant plus second-order gnomonic terms that the distortion would
otherwise have to mimic). The design matrix is column-normalised, and pixel
offsets enter the polynomials normalised by the image half-width.

After each step the residuals of all pairs are recomputed and pairs further
than ``sigma_clip`` times the robust rms residual from their prediction are
left out of the next step (pairs may come back). The robust rms is
``sqrt(2) * 1.4826 * MAD`` of the x and y residuals pooled, so for Gaussian
errors a genuine star is rejected with probability ``exp(-sigma_clip**2)``.
The first step uses every pair, because the starting model may lack the
distortion that makes the corner stars look like outliers. Iteration stops
when the inlier rms changes by less than ``convergence_threshold_px`` or after
``max_iterations`` steps.

Degeneracies and how they are handled
-------------------------------------
Several parameter combinations change nothing the data can see; left free
they would make the least-squares problem singular (or let parameters drift
without changing the fit). They are removed explicitly:

* **Constant distortion term vs optical centre vs attitude.** A constant
  shift of every star equals a shift of ``crpix`` and, to first order, a tilt
  of each image's attitude. The polynomial has no constant term (0, 0).
* **Linear distortion terms vs focal length and roll.** The conformal part of
  the linear terms (a uniform scale, ``A_10 = B_01``, and a rotation,
  ``A_01 = -B_10``) equals a change of focal length and of every image's roll.
  Only the two non-conformal combinations are fitted (``A_10 = -B_01``: unequal
  axis scales; ``A_01 = B_10``: shear), so ``f`` is the scale at the optical
  centre and the model's ``fov_deg`` is meaningful.
* **Optical centre vs attitude.** Moving ``crpix`` by ``c`` and tilting each
  attitude by ``c / f`` leaves only second-order gnomonic terms (``x²``,
  ``xy`` over ``f``) and the change of distortion across ``c`` — exactly the
  kind of terms a polynomial of order >= 2 has. With ``model="polynomial"``
  and ``order >= 2`` the optical centre is therefore fixed at its input value
  (the one the solves used; 0 for uncalibrated solves) and the polynomial
  carries the difference. The optical centre is fitted only when it is
  observable at all (``model="radial"``, about whose centre the distortion is
  symmetric, or a linear polynomial), from two or more images, and when the
  column-normalised design with it stays well conditioned (condition number
  below ``1e6``); otherwise it is kept at its input value. Because it rests on
  second-order terms, a fitted centre may legitimately lie far from the image
  centre: for a detector off the optical axis (each TESS CCD has the axis
  near one of its corners) a radial model finds the axis ~1000 px away, and
  that describes the data far better than a centred one. Only a centre more
  than an image diagonal from its input value is treated as a runaway; the
  fit is then redone with the centre fixed.
  :attr:`CalibrateResult.crpix_fitted` says which happened.

The fitted polynomial is the *forward* (ideal → distorted) polynomial of a
:class:`~skysolve.distortion.PolynomialDistortion` (``primary="forward"``,
``scale`` = half the image width); its inverse polynomial is then fitted over
the image and only seeds the exact Newton inverse, so
``undistort(distort(p)) == p`` to ~1e-9 px. ``model="radial"`` fits the five
Brown–Conrady coefficients ``k1, k2, k3, p1, p2`` of a
:class:`~skysolve.distortion.RadialDistortion` (in the pixel convention,
``scale=1``, unless the solves' camera used a radial model with another
scale).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from ._args import image_size
from .camera import CameraModel
from .distortion import (
    MAX_POLYNOMIAL_ORDER,
    PolynomialDistortion,
    RadialDistortion,
    num_polynomial_terms,
    polynomial_design_jacobian,
    polynomial_design_matrix,
    polynomial_terms,
    radial_design_matrix,
)
from .errors import InvalidArgumentError, InvalidTypeError
from .extraction import centroids_to_array
from .geometry import tanplane_from_camera_vectors, wahba_rotation

if TYPE_CHECKING:  # pragma: no cover
    from .database import SolverDatabase

__all__ = ["CalibrateResult", "calibrate_camera"]

#: Fewest matched stars an image must have to take part in a calibration.
MIN_MATCHES_PER_IMAGE = 3

# Column-normalised condition number above which the optical centre is
# considered unobservable and kept fixed.
_CRPIX_MAX_CONDITION = 1e6
# A fitted optical centre further than this many image diagonals from the input one
# has run away (nothing pins it); the fit is then redone without it.
_CRPIX_MAX_SHIFT = 1.0
# Never clip residuals below this (px): no centroid is better than that.
_MIN_CLIP_PX = 0.01
# Finite-difference step (px) for the Jacobian of the distortion.
_FD_STEP_PX = 0.5


# ------------------------------------------------------------------------------------
# Result


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


# ------------------------------------------------------------------------------------
# Argument handling


def _int_arg(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        raise InvalidArgumentError(f"{name} must be {rng}, got {v}")
    return v


def _float_arg(name: str, value: Any, *, positive: bool, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf) or v < 0 or (positive and v == 0):
        what = "a positive" if positive else "a non-negative"
        raise InvalidArgumentError(f"{name} must be {what} finite number, got {value!r}")
    return v


def _star_indices(db: SolverDatabase, ids: NDArray[np.int64],
                  order: NDArray[np.intp]) -> NDArray[np.intp]:
    """Star-table rows of catalog ids (-1 where absent), vectorised ``index_of_id``."""
    table = db.star_ids
    if len(table) == 0:
        return np.full(len(ids), -1, dtype=np.intp)
    pos = np.minimum(np.searchsorted(table, ids, sorter=order), len(order) - 1)
    rows = order[pos]
    return np.where(table[rows] == ids, rows, -1).astype(np.intp)


def _one_centroid_set(centroids: Any) -> bool:
    """Whether ``centroids`` is a single centroid set rather than a list of sets."""
    from .extraction import ExtractionResult

    if isinstance(centroids, ExtractionResult):
        return True
    if isinstance(centroids, np.ndarray):
        return centroids.ndim == 2 and centroids.dtype != object
    if isinstance(centroids, Sequence) and len(centroids):
        return hasattr(centroids[0], "x")
    return False


def _is_failure(result: Any) -> bool:
    from .solver import SolveFailure

    return result is None or isinstance(result, SolveFailure)


# ------------------------------------------------------------------------------------
# Distortion parametrisations


def _matvec(m: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """``m @ v`` without BLAS: threaded BLAS on a loaded machine is many times slower
    for these tall, thin products."""
    return np.einsum("nk,k->n", m, v, optimize=False)


class _Basis:
    """Linear displacement model ``distorted - ideal = design(u) @ coeffs``.

    ``design`` returns ``(mx, my)``, each ``(n, k)``: the x and y displacement
    (px) per unit coefficient at ideal offsets ``u`` (px from the optical centre).
    """

    def __init__(self, kind: str, order: int, scale: float, radial_scale: float) -> None:
        self.kind = kind
        self.order = order
        self.scale = scale
        self.radial_scale = radial_scale
        if kind == "polynomial":
            terms = polynomial_terms(order)
            self._high = np.flatnonzero(terms.sum(axis=1) >= 2)
            k = len(self._high)
            self.size = 2 + 2 * k
            # coefficients that move x, and those that move y
            self.axis_columns = (np.r_[0, 1, 2:2 + k], np.r_[0, 1, 2 + k:2 + 2 * k])
        else:
            self.size = 5
            self.axis_columns = (np.arange(5), np.arange(5))

    def design(self, u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = u[:, 0], u[:, 1]
        if self.kind == "radial":
            return radial_design_matrix(x, y, self.scale)
        n, s, k = len(x), self.scale, len(self._high)
        mx = np.zeros((n, self.size))
        my = np.zeros((n, self.size))
        # non-conformal linear terms only: (x, -y) unequal scales, (y, x) shear
        mx[:, 0], my[:, 0] = x / s, -y / s
        mx[:, 1], my[:, 1] = y / s, x / s
        m = polynomial_design_matrix(x, y, self.order, s)[:, self._high]
        mx[:, 2:2 + k] = m
        my[:, 2 + k:] = m
        return mx, my

    def displacement(self, u: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
        mx, my = self.design(u)
        return np.stack([_matvec(mx, c), _matvec(my, c)], axis=1)

    def full_coefficients(self, c: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                                 NDArray[np.float64]]:
        """Polynomial A and B in the term order of :func:`polynomial_terms`."""
        n = num_polynomial_terms(self.order)
        a = np.zeros(n)
        b = np.zeros(n)
        # term order: (0,0), (1,0), (0,1), ...
        a[1], a[2], b[1], b[2] = c[0], c[1], c[1], -c[0]
        k = len(self._high)
        a[self._high] = c[2:2 + k]
        b[self._high] = c[2 + k:]
        return a, b

    def jacobian(self, u: NDArray[np.float64], c: NDArray[np.float64]) -> NDArray[np.float64]:
        """``d distort / d u``, shape ``(n, 2, 2)``."""
        jac = np.empty((len(u), 2, 2))
        if self.kind == "polynomial":
            dmdx, dmdy = polynomial_design_jacobian(u[:, 0], u[:, 1], self.order, self.scale)
            a, b = self.full_coefficients(c)
            jac[:, 0, 0] = 1.0 + _matvec(dmdx, a)
            jac[:, 0, 1] = _matvec(dmdy, a)
            jac[:, 1, 0] = _matvec(dmdx, b)
            jac[:, 1, 1] = 1.0 + _matvec(dmdy, b)
            return jac
        h = _FD_STEP_PX  # radial: central differences of the five-term design
        for axis in range(2):
            step = np.zeros(2)
            step[axis] = h
            d = (self.displacement(u + step, c) - self.displacement(u - step, c)) / (2 * h)
            jac[:, :, axis] = d
        jac[:, 0, 0] += 1.0
        jac[:, 1, 1] += 1.0
        return jac

    def to_distortion(self, c: NDArray[np.float64], width: int, height: int,
                      crpix: NDArray[np.float64]) -> PolynomialDistortion | RadialDistortion:
        if self.kind == "radial":
            # coefficients were fitted for radii normalised by self.scale; convert
            ratio = self.scale / self.radial_scale
            k1, k2, k3, p1, p2 = c
            return RadialDistortion(k1 / ratio ** 2, k2 / ratio ** 4, k3 / ratio ** 6,
                                    p1 / ratio, p2 / ratio, scale=self.radial_scale)
        a, b = self.full_coefficients(c)
        n = len(a)
        return _with_inverse(PolynomialDistortion(self.order, self.scale, a, b, np.zeros(n),
                                                  np.zeros(n)), width, height, crpix)


def _with_inverse(model: PolynomialDistortion, width: int, height: int,
                  crpix: NDArray[np.float64]) -> PolynomialDistortion:
    """``model`` with its inverse polynomial fitted over the image (plus 2 % margins).

    Same fit as :meth:`PolynomialDistortion.fit_secondary`, solved through
    normal equations without threaded BLAS (see :func:`_normal_lstsq`).
    """
    hw, hh = 0.52 * width, 0.52 * height
    gx, gy = np.meshgrid(np.linspace(-hw, hw, 41) - crpix[0], np.linspace(-hh, hh, 41) - crpix[1])
    du, dv = gx.ravel(), gy.ravel()
    iu, iv = model.undistort(du, dv)
    ok = np.isfinite(iu) & np.isfinite(iv)
    if ok.sum() < 2 * model.num_coeffs:
        return model  # not invertible over the image: Newton from the identity is all we have
    du, dv, iu, iv = du[ok], dv[ok], iu[ok], iv[ok]
    m = polynomial_design_matrix(du, dv, model.order, model.scale)
    ap = _normal_lstsq(m, iu - du)
    bp = _normal_lstsq(m, iv - dv)
    return PolynomialDistortion(model.order, model.scale, model.a_coeffs, model.b_coeffs, ap, bp)


def _project_distortion(basis: _Basis, camera: CameraModel) -> tuple[float, NDArray[np.float64]]:
    """Start values: focal length and coefficients closest to ``camera``'s distortion.

    The input distortion is sampled over the image and fitted with the basis
    plus a constant, a uniform scale and a rotation; the scale goes into the
    focal length, the constant and rotation are left to the attitudes.
    """
    f = camera.focal_length_px
    d = camera.distortion
    if d is None or getattr(d, "is_identity", False):
        return f, np.zeros(basis.size)
    w, h = camera.image_width, camera.image_height
    gx, gy = np.meshgrid(np.linspace(-0.5 * w, 0.5 * w, 25), np.linspace(-0.5 * h, 0.5 * h, 25))
    u = np.stack([gx.ravel(), gy.ravel()], axis=1) - camera.crpix
    du, dv = d.distort(u[:, 0], u[:, 1])
    disp = np.stack([np.asarray(du) - u[:, 0], np.asarray(dv) - u[:, 1]], axis=1)
    ok = np.all(np.isfinite(disp), axis=1)
    u, disp = u[ok], disp[ok]
    if len(u) < basis.size + 4:
        return f, np.zeros(basis.size)
    mx, my = basis.design(u)
    n = len(u)
    one, zero = np.ones(n), np.zeros(n)
    extra_x = np.stack([one, zero, u[:, 0], -u[:, 1]], axis=1)
    extra_y = np.stack([zero, one, u[:, 1], u[:, 0]], axis=1)
    a = np.vstack([np.hstack([mx, extra_x]), np.hstack([my, extra_y])])
    rhs = np.concatenate([disp[:, 0], disp[:, 1]])
    sol = _normal_lstsq(a, rhs)
    return f * (1.0 + sol[-2]), sol[:basis.size]


# ------------------------------------------------------------------------------------
# The least-squares problem


class _Image:
    """Matched pairs of one image."""

    __slots__ = ("index", "xy", "stars", "R", "rows")

    def __init__(self, index: int, xy: NDArray[np.float64], stars: NDArray[np.float64],
                 R: NDArray[np.float64]) -> None:
        self.index = index
        self.xy = xy          # (n, 2) observed centred pixels
        self.stars = stars    # (n, 3) ICRS (apparent) unit vectors
        self.R = R
        self.rows = slice(0, 0)


def _tanplane(images: list[_Image]) -> NDArray[np.float64]:
    """Camera tangent-plane coordinates ``(X/Z, Y/Z)`` of every pair, ``(n, 2)``."""
    v = np.concatenate([im.stars @ im.R.T for im in images])
    xi, eta = tanplane_from_camera_vectors(v)
    return np.stack([xi, eta], axis=1)


def _predict(images: list[_Image], f: float, crpix: NDArray[np.float64], sign: float,
             basis: _Basis, c: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
    """Predicted pixels, ideal offsets and tangent-plane coordinates of every pair."""
    t = _tanplane(images)
    u = np.stack([sign * f * t[:, 0], f * t[:, 1]], axis=1)
    return crpix + u + basis.displacement(u, c), u, t


def _robust_rms(res: NDArray[np.float64]) -> float:
    """Robust equivalent of the rms residual length, ``sqrt(2) * 1.4826 * MAD``."""
    r = res.ravel()
    mad = np.median(np.abs(r - np.median(r)))
    return float(math.sqrt(2.0) * 1.4826 * mad)


def _rms(res: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(np.sum(res * res, axis=1)))) if len(res) else float("nan")


def _solve_normal(nmat: NDArray[np.float64], rhs: NDArray[np.float64],
                  want_cond: bool = False) -> tuple[NDArray[np.float64], float]:
    """Least-squares solution from normal equations; returns (solution, cond).

    The columns are normalised first (``diag = 1``) and the system is solved
    by Cholesky; if that fails (a numerically singular design), directions
    whose singular value is below ``1e-7`` of the largest (of the design
    matrix) are dropped. ``cond`` is the condition number of the normalised
    design when ``want_cond`` (else NaN).
    """
    d = np.sqrt(np.diag(nmat))
    d[d == 0] = 1.0
    nn = nmat / np.outer(d, d)
    b = rhs / d
    cond = math.nan
    sv = None
    if want_cond:
        sv = np.linalg.svd(nn, compute_uv=False)
        cond = math.sqrt(sv[0] / sv[-1]) if sv[-1] > 0 else math.inf
    try:
        if sv is not None and not sv[-1] > sv[0] * 1e-14:
            raise np.linalg.LinAlgError
        low = np.linalg.cholesky(nn)
        sol = np.linalg.solve(low.T, np.linalg.solve(low, b))
    except np.linalg.LinAlgError:
        u, s, vt = np.linalg.svd(nn)
        keep = s > s[0] * 1e-14
        sol = vt[keep].T @ ((u[:, keep].T @ b) / s[keep])
    return sol / d, cond


def _normal_lstsq(a: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column-normalised least squares of a modest dense system (see :func:`_solve_normal`)."""
    # einsum without BLAS: threaded BLAS on a loaded machine is tens of times slower
    nmat = np.einsum("ni,nj->ij", a, a, optimize=False)
    return _solve_normal(nmat, np.einsum("ni,n->i", a, rhs, optimize=False))[0]


def _gauss_newton_step(images: list[_Image], inl: NDArray[np.bool_], f: float,
                       crpix: NDArray[np.float64], sign: float, basis: _Basis,
                       c: NDArray[np.float64], fit_crpix: bool,
                       want_cond: bool = False) -> tuple[
                           NDArray[np.float64], float]:
    """One linearised least-squares step; returns (step, condition number).

    Parameter order: ``[f, (cx, cy), coeffs..., omega_0 (3), omega_1 (3), ...]``
    where ``omega_i`` is a small rotation applied to image ``i`` as
    ``R_i <- exp([omega_i]x) R_i``. The normal equations are accumulated image
    by image and axis by axis over the columns that are non-zero there (each
    image's rotation touches only its own rows; polynomial x and y
    coefficients only their own axis).
    """
    pred, u_all, t_all = _predict(images, f, crpix, sign, basis, c)
    obs = np.concatenate([im.xy for im in images])
    res_all = obs - pred
    n_glob = 1 + (2 if fit_crpix else 0) + basis.size
    off = 3 if fit_crpix else 1
    axis_cols = []
    for axis, used in enumerate(basis.axis_columns):
        cols = [0] + ([1 + axis] if fit_crpix else []) + [off + j for j in used]
        axis_cols.append(np.asarray(cols, dtype=np.intp))
    n_all = n_glob + 3 * len(images)
    nmat = np.zeros((n_all, n_all))
    rvec = np.zeros(n_all)
    has_cols = np.zeros(len(images), dtype=bool)
    start = 0
    for k, im in enumerate(images):
        sl = slice(start, start + len(im.xy))
        start += len(im.xy)
        keep = inl[sl]
        if keep.sum() < 2:
            continue  # too few inliers: this image keeps its attitude
        has_cols[k] = True
        u, t, res = u_all[sl][keep], t_all[sl][keep], res_all[sl][keep]
        jac = basis.jacobian(u, c)
        mx, my = basis.design(u)
        xi, eta = t[:, 0], t[:, 1]
        # d(xi, eta)/d(omega) for v' = v + omega x v
        dxi = np.stack([-xi * eta, 1.0 + xi * xi, -eta], axis=1)
        deta = np.stack([-(1.0 + eta * eta), xi * eta, xi], axis=1)
        du = np.stack([sign * f * dxi, f * deta], axis=1)              # (n, 2, 3)
        dp_omega = np.einsum("nij,njk->nik", jac, du, optimize=False)  # (n, 2, 3)
        dp_f = np.einsum("nij,nj->ni", jac, u / f, optimize=False)     # (n, 2)
        for axis, m in enumerate((mx, my)):
            cols = axis_cols[axis]
            glob = np.empty((len(u), len(cols)))
            glob[:, 0] = dp_f[:, axis]
            j = 1
            if fit_crpix:
                glob[:, 1] = 1.0
                j = 2
            glob[:, j:] = m[:, basis.axis_columns[axis]]
            block = np.hstack([glob, dp_omega[:, axis, :]])
            idx = np.concatenate([cols, n_glob + 3 * k + np.arange(3)])
            nmat[np.ix_(idx, idx)] += np.einsum("ni,nj->ij", block, block, optimize=False)
            rvec[idx] += np.einsum("ni,n->i", block, res[:, axis], optimize=False)
    used = np.concatenate([np.ones(n_glob, dtype=bool), np.repeat(has_cols, 3)])
    step = np.zeros(n_all)
    step[used], cond = _solve_normal(nmat[np.ix_(used, used)], rvec[used], want_cond)
    return step, cond


def _apply_step(step: NDArray[np.float64], images: list[_Image], f: float,
                crpix: NDArray[np.float64], c: NDArray[np.float64], fit_crpix: bool,
                size: int) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    f = f + step[0]
    col = 1
    if fit_crpix:
        crpix = crpix + step[1:3]
        col = 3
    c = c + step[col:col + size]
    omega = step[col + size:].reshape(-1, 3)
    rot = Rotation.from_rotvec(omega).as_matrix()
    for im, dr in zip(images, rot, strict=True):
        im.R = dr @ im.R
    return f, crpix, c


# ------------------------------------------------------------------------------------
# Entry point


def calibrate_camera(db: SolverDatabase, solve_results: Any, centroids: Any,
                     image_width: int | None = None, image_height: int | None = None,
                     image_shape: tuple[int, int] | None = None, model: str = "polynomial",
                     order: int = 4, max_iterations: int = 10, sigma_clip: float = 3.0,
                     convergence_threshold_px: float = 0.01) -> CalibrateResult:
    """Fit one camera model shared by one or many solved images.

    Parameters
    ----------
    db : SolverDatabase
        The database the images were solved with (its star table resolves
        ``matched_catalog_ids``).
    solve_results : SolveResult, SolveFailure, None, or a sequence of them
        Plate solutions. Failed solves (None or :class:`SolveFailure`) are
        skipped together with their centroid sets, so a list of solver outputs
        can be passed straight through.
    centroids : list of centroid sets, or one centroid set for a single result
        Each set as given to ``solve_from_centroids`` (list of
        :class:`~skysolve.Centroid`, ``ExtractionResult``, or ``(N, 2)`` /
        ``(N, 3)`` array), in centred pixels; ``matched_centroids`` index it.
        With a single result (bare or in a one-element list) the set may be
        passed bare too.
    image_width, image_height : int, optional
    image_shape : (int, int), optional
        numpy ``(height, width)``. Default: the solves' camera models, which
        must all be of this size.
    model : {"polynomial", "radial"}
        Distortion model to fit: a SIP-like polynomial of ``order``
        (:class:`~skysolve.PolynomialDistortion`) or Brown–Conrady
        ``k1, k2, k3, p1, p2`` (:class:`~skysolve.RadialDistortion`).
    order : int
        Polynomial order, 1 to 6 (terms of degree 2..order plus the two
        non-conformal linear terms are fitted; see the module notes).
    max_iterations : int
        Most Gauss-Newton steps (>= 1).
    sigma_clip : float
        Pairs whose residual exceeds ``sigma_clip`` times the robust rms
        residual (px) are left out of the next step (``inf`` disables).
    convergence_threshold_px : float
        Stop when the inlier rms residual changes by less than this (px).

    Returns
    -------
    CalibrateResult
        ``camera_model`` has the solves' parity, the fitted focal length,
        optical centre and distortion.

    Raises
    ------
    InvalidArgumentError
        Mismatched list lengths, no successful solve, an image with fewer than
        3 matches, solves that disagree on parity or image size, matched
        indices or catalog ids that do not belong to ``centroids``/``db``, too
        few pairs for the number of parameters, or an argument out of range.
    InvalidTypeError
        An argument of the wrong type.
    """
    # ---- arguments
    if not isinstance(model, str):
        raise InvalidTypeError(f"model must be 'polynomial' or 'radial', got {model!r}")
    kind = model.lower()
    if kind not in ("polynomial", "radial"):
        raise InvalidArgumentError(f"model must be 'polynomial' or 'radial', got {model!r}")
    order = _int_arg("order", order, 1, MAX_POLYNOMIAL_ORDER)
    max_iterations = _int_arg("max_iterations", max_iterations, 1)
    sigma_clip = _float_arg("sigma_clip", sigma_clip, positive=True, allow_inf=True)
    threshold = _float_arg("convergence_threshold_px", convergence_threshold_px, positive=False)

    from .solver import SolveResult

    single = _is_failure(solve_results) or isinstance(solve_results, SolveResult)
    if single:
        results, cents = [solve_results], [centroids]
    else:
        if not isinstance(solve_results, Sequence) or isinstance(solve_results, str | bytes):
            raise InvalidTypeError(
                "solve_results must be a SolveResult or a list of SolveResult/SolveFailure/None,"
                f" got {type(solve_results).__name__}")
        results = list(solve_results)
        if len(results) == 1 and _one_centroid_set(centroids):
            centroids = [centroids]
        if isinstance(centroids, np.ndarray) or not isinstance(centroids, Sequence):
            raise InvalidTypeError(
                "centroids must be a list with one centroid set per solve result, got "
                f"{type(centroids).__name__}")
        cents = list(centroids)
        if len(cents) != len(results):
            raise InvalidArgumentError(
                f"solve_results and centroids must have the same length, got {len(results)} "
                f"and {len(cents)}")

    id_order = getattr(db, "_id_order", None)
    if id_order is None:
        id_order = np.argsort(db.star_ids, kind="stable")
    images: list[_Image] = []
    cameras: list[CameraModel] = []
    before_sq = 0.0
    n_before = 0
    for i, (res, cs) in enumerate(zip(results, cents, strict=True)):
        if _is_failure(res):
            continue
        if not isinstance(res, SolveResult):
            raise InvalidTypeError(
                f"solve_results[{i}] must be a SolveResult, SolveFailure or None, got "
                f"{type(res).__name__}")
        xy, _ = centroids_to_array(cs, name=f"centroids[{i}]")
        idx = np.asarray(res.matched_centroids, dtype=np.intp)
        ids = np.asarray(res.matched_catalog_ids, dtype=np.int64)
        if len(idx) < MIN_MATCHES_PER_IMAGE:
            raise InvalidArgumentError(
                f"solve_results[{i}] has {len(idx)} matched stars; calibration needs at least "
                f"{MIN_MATCHES_PER_IMAGE} per image")
        if len(ids) != len(idx):
            raise InvalidArgumentError(
                f"solve_results[{i}] has {len(idx)} matched centroids but {len(ids)} catalog ids")
        if idx.min() < 0 or idx.max() >= len(xy):
            raise InvalidArgumentError(
                f"solve_results[{i}].matched_centroids index past the {len(xy)} entries of "
                f"centroids[{i}]: pass the centroid set that was solved")
        star_idx = _star_indices(db, ids, id_order)
        if np.any(star_idx < 0):
            raise InvalidArgumentError(
                f"solve_results[{i}] matched catalog id {int(ids[star_idx < 0][0])}, which is "
                "not in this database")
        stars = np.asarray(db.star_vectors[star_idx], dtype=np.float64)
        if res.observer_velocity_km_s is not None:
            from .aberration import aberrate

            stars = aberrate(stars, res.observer_velocity_km_s)
        obs = xy[idx]
        cam = res.camera_model
        R = np.asarray(res.rotation_matrix_icrs_to_camera, dtype=np.float64)
        px, py = cam.vectors_to_pixel(stars @ R.T)
        d = obs - np.stack([px, py], axis=1)
        before_sq += float(np.nansum(d * d))
        n_before += len(d)
        images.append(_Image(i, obs, stars, R))
        cameras.append(cam)
    if not images:
        raise InvalidArgumentError("solve_results holds no successful solve to calibrate from")

    # an explicit size is checked against every image below, naming the image
    explicit = any(v is not None for v in (image_width, image_height, image_shape))
    width, height = image_size(image_width, image_height, image_shape,
                               () if explicit else cameras[:1])
    for k, cam in enumerate(cameras):
        if (cam.image_width, cam.image_height) != (width, height):
            raise InvalidArgumentError(
                f"solve_results[{images[k].index}] was solved for a {cam.image_width}x"
                f"{cam.image_height} image, not the {width}x{height} being calibrated")
    parities = {cam.parity_flip for cam in cameras}
    if len(parities) > 1:
        raise InvalidArgumentError(
            "solve_results disagree on parity_flip: images of one camera share one parity")
    parity = parities.pop()
    sign = -1.0 if parity else 1.0

    # ---- starting point
    scale = 0.5 * width
    start = cameras[0]
    radial_scale = 1.0
    if isinstance(start.distortion, RadialDistortion):
        radial_scale = start.distortion.scale
    basis = _Basis(kind, order, scale, radial_scale)
    f0, c = _project_distortion(basis, start)
    f = float(np.median([cam.focal_length_px for cam in cameras]) * f0 / start.focal_length_px)
    crpix = np.median([cam.crpix for cam in cameras], axis=0).astype(np.float64)
    init = CameraModel(f, width, height, crpix=crpix, parity_flip=parity,
                       distortion=basis.to_distortion(c, width, height, crpix)
                       if np.any(c) else None)
    for im in images:
        v = init.pixel_to_vectors(im.xy[:, 0], im.xy[:, 1])
        ok = np.all(np.isfinite(v), axis=1)
        if ok.sum() >= 2:
            im.R = wahba_rotation(v[ok], im.stars[ok])

    n_pairs = sum(len(im.xy) for im in images)
    n_params = 1 + basis.size + 3 * len(images)
    if 2 * n_pairs < n_params + 2:
        raise InvalidArgumentError(
            f"{n_pairs} matched stars cannot constrain {n_params} parameters "
            f"(model={kind!r}, order={order}); use a lower order or more images")
    fit_crpix = (kind == "radial" or order == 1) and len(images) >= 2

    # ---- iterate
    obs = np.concatenate([im.xy for im in images])
    start_rotations = [im.R for im in images]

    def iterate(fit_crpix: bool):
        fc, cc, coeffs = f, crpix.copy(), c.copy()
        for im, R in zip(images, start_rotations, strict=True):
            im.R = R
        inl = np.ones(n_pairs, dtype=bool)
        rms_prev = math.nan
        converged = False
        iterations = 0
        for it in range(max_iterations):
            iterations = it + 1
            probe = fit_crpix and it == 0
            step, cond = _gauss_newton_step(images, inl, fc, cc, sign, basis, coeffs,
                                            fit_crpix, probe)
            if probe and cond > _CRPIX_MAX_CONDITION:
                fit_crpix = False
                step, cond = _gauss_newton_step(images, inl, fc, cc, sign, basis, coeffs, False)
            fc, cc, coeffs = _apply_step(step, images, fc, cc, coeffs, fit_crpix, basis.size)
            if not (math.isfinite(fc) and fc > 0):
                raise InvalidArgumentError(
                    "the calibration diverged (focal length became invalid); check that the "
                    "solve results and centroid sets belong together")
            res = obs - _predict(images, fc, cc, sign, basis, coeffs)[0]
            rms = _rms(res[inl])
            if math.isfinite(sigma_clip):
                clip_px = max(sigma_clip * _robust_rms(res[inl]), _MIN_CLIP_PX)
                new_inl = np.hypot(res[:, 0], res[:, 1]) <= clip_px
                if 2 * new_inl.sum() >= n_params + 2:
                    inl = new_inl
            if math.isfinite(rms_prev) and abs(rms - rms_prev) < threshold:
                converged = True
                break
            rms_prev = rms
        return fc, cc, coeffs, inl, iterations, converged, fit_crpix

    f, crpix_fit, c, inl, iterations, converged, fitted = iterate(fit_crpix)
    if fitted and np.hypot(*(crpix_fit - crpix)) > _CRPIX_MAX_SHIFT * math.hypot(width, height):
        f, crpix_fit, c, inl, iterations, converged, fitted = iterate(False)
    crpix = crpix_fit
    fit_crpix = fitted
    # ---- result
    distortion = basis.to_distortion(c, width, height, crpix)
    camera = CameraModel(f, width, height, crpix=crpix, parity_flip=parity,
                         distortion=distortion)
    rotations: list[NDArray[np.float64] | None] = [None] * len(results)
    per_rmse: list[float | None] = [None] * len(results)
    per_inl: list[int | None] = [None] * len(results)
    sq = 0.0
    n_in = 0
    start_row = 0
    for im in images:
        n = len(im.xy)
        keep = inl[start_row:start_row + n]
        start_row += n
        px, py = camera.vectors_to_pixel(im.stars[keep] @ im.R.T)
        d = im.xy[keep] - np.stack([px, py], axis=1)
        s = float(np.sum(d * d))
        sq += s
        n_in += int(keep.sum())
        rotations[im.index] = im.R.copy()
        per_rmse[im.index] = math.sqrt(s / keep.sum()) if keep.any() else math.nan
        per_inl[im.index] = int(keep.sum())
    rmse_before = math.sqrt(before_sq / n_before) if n_before else math.nan
    rmse_after = math.sqrt(sq / n_in) if n_in else math.nan
    return CalibrateResult(camera, rmse_before, rmse_after, n_in, n_pairs - n_in, iterations,
                           converged, rotations, per_rmse, per_inl, fit_crpix)
