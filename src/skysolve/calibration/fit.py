"""Camera calibration: one shared camera model from one or many solved images.

:func:`calibrate_camera` (also :meth:`SolverDatabase.calibrate_camera
<skysolve.solver.database.SolverDatabase.calibrate_camera>`) takes plate solutions
and their centroid lists, pairs every matched centroid's observed centred
pixel position with the catalog unit vector of its star (aberrated when the
solve had an observer velocity), and fits by least squares

* one focal length ``f``, optical centre ``crpix`` and lens distortion shared
  by all images, and
* one attitude ``R_i`` per image,

to minimise the pixel residuals of the camera model (see
:mod:`skysolve.camera.model`)::

    u       = (s f X/Z, f Y/Z),  (X, Y, Z) = R_i @ star,  s = -1 if parity_flip
    pixel   = crpix + distort(u)          distort(u) = u + displacement(u)

for the pinhole projection; for the others (fisheyes, see
:mod:`skysolve.camera.projection`) ``(X/Z, Y/Z)`` is replaced by the
projection-plane point ``g(theta) (cos phi, sin phi)`` of the direction, so
focal length, optical centre and distortion are fitted on top of the
camera's projection.

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
:class:`~skysolve.camera.distortion.PolynomialDistortion` (``primary="forward"``,
``scale`` = half the image width); its inverse polynomial is then fitted over
the image and only seeds the exact Newton inverse, so
``undistort(distort(p)) == p`` to ~1e-9 px. ``model="radial"`` fits the five
Brown–Conrady coefficients ``k1, k2, k3, p1, p2`` of a
:class:`~skysolve.camera.distortion.RadialDistortion` (in the pixel convention,
``scale=1``, unless the solves' camera used a radial model with another
scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from .. import _args
from .._options import with_options
from ..camera.distortion import RadialDistortion
from ..camera.model import CameraModel
from ..camera.projection import PINHOLE, PROJECTIONS, vectors_to_plane
from ..centroids import ExtractionResult, centroids_to_array
from ..errors import InvalidArgumentError, InvalidTypeError
from ..geometry import wahba_rotation
from ..solver.result import SolveFailure, SolveResult
from .basis import Basis, project_distortion, solve_normal
from .options import CalibrationOptions
from .result import CalibrateResult

if TYPE_CHECKING:  # pragma: no cover
    from ..solver.database import PatternDatabase

__all__ = ["CalibrateResult", "CalibrationOptions", "calibrate", "calibrate_camera",
           "CALIBRATE_DOC"]

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


def _plane(v: NDArray[np.float64], proj: int) -> NDArray[np.float64]:
    """Projection-plane coordinates ``(n, 2)`` of camera vectors ``(n, 3)`` (for the
    pinhole projection the tangent plane, ``(X/Z, Y/Z)``)."""
    return np.stack(vectors_to_plane(v, proj), axis=1)


def _predict(images: list[_Image], f: float, crpix: NDArray[np.float64], sign: float,
             basis: Basis, c: NDArray[np.float64],
             proj: int = PINHOLE) -> tuple[NDArray[np.float64], ...]:
    """Predicted pixels, ideal offsets, projection-plane coordinates and camera vectors
    of every pair."""
    v = np.concatenate([im.stars @ im.R.T for im in images])
    t = _plane(v, proj)
    u = np.stack([sign * f * t[:, 0], f * t[:, 1]], axis=1)
    return crpix + u + basis.displacement(u, c), u, t, v


def _plane_rotation_jacobian(t: NDArray[np.float64], v: NDArray[np.float64],
                             proj: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Derivatives ``(n, 3)`` of the projection-plane x and y of each pair with respect
    to a small rotation ``omega`` of its image, ``v -> v + omega x v``.

    Closed form for the pinhole projection; central differences for the others
    (a smooth mapping away from the axis, the step far below any residual).
    """
    if proj == PINHOLE:
        xi, eta = t[:, 0], t[:, 1]
        dxi = np.stack([-xi * eta, 1.0 + xi * xi, -eta], axis=1)
        deta = np.stack([-(1.0 + eta * eta), xi * eta, xi], axis=1)
        return dxi, deta
    h = 1e-6
    d = np.empty((len(v), 2, 3))
    for k in range(3):
        turn = np.cross(np.eye(3)[k], v)  # omega_k e_k x v
        d[:, :, k] = (_plane(v + h * turn, proj) - _plane(v - h * turn, proj)) / (2.0 * h)
    return d[:, 0, :], d[:, 1, :]


def _robust_rms(res: NDArray[np.float64]) -> float:
    """Robust equivalent of the rms residual length, ``sqrt(2) * 1.4826 * MAD``."""
    r = res.ravel()
    mad = np.median(np.abs(r - np.median(r)))
    return float(math.sqrt(2.0) * 1.4826 * mad)


def _rms(res: NDArray[np.float64]) -> float:
    return float(np.sqrt(np.mean(np.sum(res * res, axis=1)))) if len(res) else float("nan")


def _gauss_newton_step(images: list[_Image], inl: NDArray[np.bool_], f: float,
                       crpix: NDArray[np.float64], sign: float, basis: Basis,
                       c: NDArray[np.float64], fit_crpix: bool,
                       want_cond: bool = False, proj: int = PINHOLE) -> tuple[
                           NDArray[np.float64], float]:
    """One linearised least-squares step; returns (step, condition number).

    Parameter order: ``[f, (cx, cy), coeffs..., omega_0 (3), omega_1 (3), ...]``
    where ``omega_i`` is a small rotation applied to image ``i`` as
    ``R_i <- exp([omega_i]x) R_i``. The normal equations are accumulated image
    by image and axis by axis over the columns that are non-zero there (each
    image's rotation touches only its own rows; polynomial x and y
    coefficients only their own axis).
    """
    pred, u_all, t_all, v_all = _predict(images, f, crpix, sign, basis, c, proj)
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
        dxi, deta = _plane_rotation_jacobian(t, v_all[sl][keep], proj)
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
    step[used], cond = solve_normal(nmat[np.ix_(used, used)], rvec[used], want_cond)
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
# Inputs


def _pair_lists(solve_results: Any, centroids: Any) -> tuple[list, list]:
    """``(results, centroid sets)`` as equal-length lists, from the accepted call forms."""
    if solve_results is None or isinstance(solve_results, SolveFailure | SolveResult):
        return [solve_results], [centroids]
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
    return results, cents


def _one_centroid_set(centroids: Any) -> bool:
    """Whether ``centroids`` is a single centroid set rather than a list of sets."""
    if isinstance(centroids, ExtractionResult):
        return True
    if isinstance(centroids, np.ndarray):
        return centroids.ndim == 2 and centroids.dtype != object
    if isinstance(centroids, Sequence) and len(centroids):
        return hasattr(centroids[0], "x")
    return False


def _image(db: PatternDatabase, i: int, res: SolveResult, cs: Any) -> tuple[_Image, float]:
    """The matched pairs of result ``i`` and their squared residual sum under its solve."""
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
    star_idx = db.indices_of_ids(ids)
    if np.any(star_idx < 0):
        raise InvalidArgumentError(
            f"solve_results[{i}] matched catalog id {int(ids[star_idx < 0][0])}, which is "
            "not in this database")
    stars = np.asarray(db.star_vectors[star_idx], dtype=np.float64)
    if res.observer_velocity_km_s is not None:
        from ..sky.aberration import aberrate

        stars = aberrate(stars, res.observer_velocity_km_s)
    obs = xy[idx]
    R = np.asarray(res.rotation_matrix_icrs_to_camera, dtype=np.float64)
    px, py = res.camera_model.vectors_to_pixel(stars @ R.T)
    d = obs - np.stack([px, py], axis=1)
    return _Image(i, obs, stars, R), float(np.nansum(d * d))


def _images(db: PatternDatabase, results: list, cents: list,
            options: CalibrationOptions) -> tuple[list[_Image], list[CameraModel], float,
                                                  int, int]:
    """Every successful solve's pairs, cameras, rmse before, and the image size."""
    images, cameras = [], []
    before_sq = 0.0
    for i, (res, cs) in enumerate(zip(results, cents, strict=True)):
        if res is None or isinstance(res, SolveFailure):
            continue
        im, sq = _image(db, i, res, cs)
        images.append(im)
        cameras.append(res.camera_model)
        before_sq += sq
    if not images:
        raise InvalidArgumentError("solve_results holds no successful solve to calibrate from")
    # an explicit size is checked against every image below, naming the image
    explicit = any(v is not None for v in (options.image_width, options.image_height,
                                           options.image_shape))
    width, height = _args.image_size(options.image_width, options.image_height,
                                     options.image_shape, () if explicit else cameras[:1])
    for im, cam in zip(images, cameras, strict=True):
        if (cam.image_width, cam.image_height) != (width, height):
            raise InvalidArgumentError(
                f"solve_results[{im.index}] was solved for a {cam.image_width}x"
                f"{cam.image_height} image, not the {width}x{height} being calibrated")
    if len({cam.parity_flip for cam in cameras}) > 1:
        raise InvalidArgumentError(
            "solve_results disagree on parity_flip: images of one camera share one parity")
    if len({cam.projection for cam in cameras}) > 1:
        raise InvalidArgumentError(
            "solve_results disagree on the lens projection: images of one camera share one "
            f"(got {sorted({cam.projection for cam in cameras})})")
    n_pairs = sum(len(im.xy) for im in images)
    return images, cameras, math.sqrt(before_sq / n_pairs), width, height


# ------------------------------------------------------------------------------------
# The fit


@dataclass
class _Problem:
    """The fixed parts of the fit: pairs, basis, start values and the iteration limits."""

    images: list[_Image]
    basis: Basis
    sign: float
    f0: float
    crpix0: NDArray[np.float64]
    c0: NDArray[np.float64]
    start_rotations: list[NDArray[np.float64]]
    n_params: int
    options: CalibrationOptions
    projection: str = "pinhole"

    @property
    def proj(self) -> int:
        return PROJECTIONS.index(self.projection)

    @property
    def n_pairs(self) -> int:
        return sum(len(im.xy) for im in self.images)


def _setup(images: list[_Image], cameras: list[CameraModel], width: int, height: int,
           options: CalibrationOptions) -> _Problem:
    """The basis and start values (focal length, centre, coefficients, attitudes)."""
    scale = 0.5 * width
    start = cameras[0]
    radial_scale = 1.0
    if isinstance(start.distortion, RadialDistortion):
        radial_scale = start.distortion.scale
    basis = Basis(options.model, options.order, scale, radial_scale)
    f0, c = project_distortion(basis, start)
    f = float(np.median([cam.focal_length_px for cam in cameras]) * f0 / start.focal_length_px)
    crpix = np.median([cam.crpix for cam in cameras], axis=0).astype(np.float64)
    parity = cameras[0].parity_flip
    init = CameraModel(f, width, height, crpix=crpix, parity_flip=parity,
                       distortion=basis.to_distortion(c, width, height, crpix)
                       if np.any(c) else None, projection=start.projection)
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
            f"(model={options.model!r}, order={options.order}); use a lower order or more "
            "images")
    return _Problem(images, basis, -1.0 if parity else 1.0, f, crpix, c,
                    [im.R for im in images], n_params, options, start.projection)


def _iterate(p: _Problem, fit_crpix: bool):
    """Gauss-Newton steps with sigma clipping from the start values.

    Returns ``(f, crpix, coefficients, inliers, iterations, converged, crpix fitted)``.
    """
    opts = p.options
    fc, cc, coeffs = p.f0, p.crpix0.copy(), p.c0.copy()
    for im, R in zip(p.images, p.start_rotations, strict=True):
        im.R = R
    obs = np.concatenate([im.xy for im in p.images])
    inl = np.ones(p.n_pairs, dtype=bool)
    rms_prev = math.nan
    converged = False
    iterations = 0
    for it in range(opts.max_iterations):
        iterations = it + 1
        probe = fit_crpix and it == 0
        step, cond = _gauss_newton_step(p.images, inl, fc, cc, p.sign, p.basis, coeffs,
                                        fit_crpix, probe, p.proj)
        if probe and cond > _CRPIX_MAX_CONDITION:
            fit_crpix = False
            step, cond = _gauss_newton_step(p.images, inl, fc, cc, p.sign, p.basis, coeffs,
                                            False, proj=p.proj)
        fc, cc, coeffs = _apply_step(step, p.images, fc, cc, coeffs, fit_crpix, p.basis.size)
        if not (math.isfinite(fc) and fc > 0):
            raise InvalidArgumentError(
                "the calibration diverged (focal length became invalid); check that the "
                "solve results and centroid sets belong together")
        res = obs - _predict(p.images, fc, cc, p.sign, p.basis, coeffs, p.proj)[0]
        rms = _rms(res[inl])
        if math.isfinite(opts.sigma_clip):
            clip_px = max(opts.sigma_clip * _robust_rms(res[inl]), _MIN_CLIP_PX)
            new_inl = np.hypot(res[:, 0], res[:, 1]) <= clip_px
            if 2 * new_inl.sum() >= p.n_params + 2:
                inl = new_inl
        if math.isfinite(rms_prev) and abs(rms - rms_prev) < opts.convergence_threshold_px:
            converged = True
            break
        rms_prev = rms
    return fc, cc, coeffs, inl, iterations, converged, fit_crpix


def _summary(p: _Problem, camera: CameraModel, inl: NDArray[np.bool_], n_results: int):
    """Per-image rotations, rms and inlier counts, and the pooled inlier rms."""
    rotations: list[NDArray[np.float64] | None] = [None] * n_results
    per_rmse: list[float | None] = [None] * n_results
    per_inl: list[int | None] = [None] * n_results
    sq = 0.0
    n_in = 0
    start_row = 0
    for im in p.images:
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
    return rotations, per_rmse, per_inl, (math.sqrt(sq / n_in) if n_in else math.nan), n_in


def calibrate(db: PatternDatabase, solve_results: Any, centroids: Any,
              options: CalibrationOptions) -> CalibrateResult:
    """Fit one camera model shared by solved images (see :func:`calibrate_camera`)."""
    results, cents = _pair_lists(solve_results, centroids)
    images, cameras, rmse_before, width, height = _images(db, results, cents, options)
    p = _setup(images, cameras, width, height, options)
    fit_crpix = (options.model == "radial" or options.order == 1) and len(images) >= 2
    f, crpix, c, inl, iterations, converged, fitted = _iterate(p, fit_crpix)
    if fitted and np.hypot(*(crpix - p.crpix0)) > _CRPIX_MAX_SHIFT * math.hypot(width, height):
        f, crpix, c, inl, iterations, converged, fitted = _iterate(p, False)
    camera = CameraModel(f, width, height, crpix=crpix, parity_flip=p.sign < 0,
                         distortion=p.basis.to_distortion(c, width, height, crpix),
                         projection=p.projection)
    rotations, per_rmse, per_inl, rmse_after, n_in = _summary(p, camera, inl, len(results))
    return CalibrateResult(camera, rmse_before, rmse_after, n_in, p.n_pairs - n_in, iterations,
                           converged, rotations, per_rmse, per_inl, fitted)


#: The docstring of the public calibration functions (``{parameters}``: the options).
CALIBRATE_DOC = """Fit one camera model shared by one or many solved images.

The images' matched centroids and catalog stars are fitted by least squares
with one focal length, optical centre and lens distortion shared by all
images and one attitude per image (see :mod:`skysolve.calibration.fit`).

Parameters
----------
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
{parameters}
options : CalibrationOptions, optional
    All of the above as one object; keyword arguments given as well override
    its values.

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
    indices or catalog ids that do not belong to ``centroids``/the database,
    too few pairs for the number of parameters, or an argument out of range.
InvalidTypeError
    An argument of the wrong type.
"""


@with_options(CalibrationOptions, ("db", "solve_results", "centroids"),
              CALIBRATE_DOC.replace("Parameters\n----------\n",
                                    "Parameters\n----------\ndb : SolverDatabase\n"
                                    "    The database the images were solved with (its star "
                                    "table\n    resolves ``matched_catalog_ids``).\n"))
def calibrate_camera(db: PatternDatabase, solve_results: Any, centroids: Any,
                     options: CalibrationOptions) -> CalibrateResult:
    return calibrate(db, solve_results, centroids, options)
