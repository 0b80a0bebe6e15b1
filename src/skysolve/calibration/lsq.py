"""The calibration's least-squares problem: parameters, residuals, Gauss-Newton steps.

Parameters
----------
Shared by every image (the camera): the focal length ``f``, the optical
centre ``crpix`` (when fitted), the distortion coefficients and, for a radial
model, the offset ``center`` of the distortion centre from ``crpix`` (when
fitted). Per image ``i``: a small rotation ``omega_i`` of its attitude
(``R_i <- exp([omega_i]x) R_i``) and its plate scale ``m_i``, a factor on the
focal length (1 when not fitted).

Residuals
---------
With ``(xi, eta)`` the camera tangent-plane coordinates of a star (its
apparent direction rotated by ``R_i``) -- for a lens projection other than
the pinhole one its projection-plane point ``g(theta) (cos phi, sin phi)``
(:mod:`skysolve.camera.projection`) -- and ``u = m_i f (s xi, eta)`` (``s =
-1`` for a mirrored camera) its ideal offset from the optical centre:

* forward models predict ``pixel = crpix + center + distort(u - center)``
  and the residual is ``observed - pixel``;
* inverse polynomials map the observed pixel to its ideal offset ``ideal(p) =
  p + P(p)``, ``p = observed - crpix``; ``ideal(p) - u`` is brought back to
  pixels by ``K = (d ideal / d p)^-1``, the local inverse of the distortion,
  so both kinds minimise pixel residuals (to first order in the residual,
  i.e. exactly for the tiny residuals of a converged fit).

Each Gauss-Newton step linearises the residuals in every free parameter,
accumulates the normal equations image by image (an image's rotation and
scale touch only its own rows), reduces them by the gauge constraint below
and solves one column-normalised system (:func:`~.basis.solve_normal`).

Gauge of the plate scales: a common factor of every ``m_i`` is the focal
length, so the fitted scales are constrained to average 1 (``sum(m_i - 1) =
0`` over the images whose scale is free); ``f`` is then the mean focal length
and ``m_i`` each image's departure from it.

The same machinery gives the parameter covariance (the inverse of the
normal matrix times the weighted residual variance, mapped back through the
gauge reduction) and, evaluated at exact synthetic pairs, the derivatives of
a mapping with respect to every parameter (:meth:`Problem.design_at`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from ..camera.projection import PINHOLE, PROJECTIONS, vectors_to_plane
from .basis import Basis, solve_normal

__all__ = ["Pairs", "Params", "Problem", "robust_rms", "core_rms", "rms", "inverse_normal",
           "MIN_IMAGE_INLIERS"]

#: Per-image columns: three rotation angles and the plate scale.
LOCAL = 4
#: Fewest inlier stars with which an image takes part in the fit (its attitude is fitted).
MIN_IMAGE_INLIERS = 2


@dataclass
class Pairs:
    """Matched pairs of one image and its current attitude and plate scale."""

    index: int                      # position in the caller's list of results
    xy: NDArray[np.float64]         # (n, 2) observed centred pixels
    stars: NDArray[np.float64]      # (n, 3) apparent ICRS unit vectors
    mag: NDArray[np.float64]        # (n,) catalog magnitudes (NaN unknown)
    saturated: NDArray[np.bool_]    # (n,) saturated centroids (False unknown)
    R: NDArray[np.float64]          # ICRS -> camera rotation
    scale: float = 1.0              # plate scale factor on the focal length
    velocity: NDArray[np.float64] | None = None  # observer velocity used, km/s
    centroids: NDArray[np.float64] | None = None  # (N, 2) the image's whole centroid set
    cidx: NDArray[np.intp] | None = None          # (n,) each pair's row in ``centroids``
    all_saturated: NDArray[np.bool_] | None = None  # (N,) saturation of the whole set

    def __len__(self) -> int:
        return len(self.xy)

    def keep(self, rows: NDArray[np.intp], cidx: NDArray[np.intp] | None = None) -> None:
        """Keep the pairs ``rows`` (in that order), optionally matched to centroids ``cidx``."""
        self.stars, self.mag = self.stars[rows], self.mag[rows]
        if cidx is None:
            self.xy, self.saturated = self.xy[rows], self.saturated[rows]
            self.cidx = None if self.cidx is None else self.cidx[rows]
            return
        assert self.centroids is not None
        self.cidx = np.asarray(cidx, dtype=np.intp)
        self.xy = self.centroids[self.cidx]
        self.saturated = (self.all_saturated[self.cidx] if self.all_saturated is not None
                          else np.zeros(len(self.cidx), dtype=bool))


@dataclass
class Params:
    """The shared camera parameters."""

    f: float
    crpix: NDArray[np.float64]
    coeffs: NDArray[np.float64]
    center: NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))

    def copy(self) -> Params:
        return Params(self.f, self.crpix.copy(), self.coeffs.copy(), self.center.copy())


def robust_rms(res: NDArray[np.float64]) -> float:
    """Robust equivalent of the rms residual length, ``sqrt(2) * 1.4826 * MAD``."""
    r = res.ravel()
    if not len(r):
        return math.nan
    mad = np.median(np.abs(r - np.median(r)))
    return float(math.sqrt(2.0) * 1.4826 * mad)


# A quarter of the residual lengths of a 2-D Gaussian lie within this many sigma (per
# axis): sqrt(-2 ln(3/4)).
_QUARTILE_SIGMAS = math.sqrt(-2.0 * math.log(0.75))


def core_rms(res: NDArray[np.float64]) -> float:
    """Rms residual length of the core of good pairs, robust to most pairs being wrong.

    From the lower quartile of the residual lengths: for Gaussian errors of
    ``sigma`` per axis a quarter of the lengths lie within ``0.7585 sigma``, so
    ``sqrt(2) * q25 / 0.7585`` is the rms length. Unlike the median, the lower
    quartile stays in the core until three quarters of the pairs are wrong (a
    first calibration from uncalibrated solves of crowded frames can have half
    its matches wrong); with stars of different precision it follows the best
    ones, so it is for finding the good pairs, not for the final clipping.
    """
    if not len(res):
        return math.nan
    q = float(np.quantile(np.hypot(res[:, 0], res[:, 1]), 0.25))
    return math.sqrt(2.0) * q / _QUARTILE_SIGMAS


def rms(res: NDArray[np.float64]) -> float:
    """Rms length of residual vectors ``(n, 2)`` (NaN for none)."""
    return float(np.sqrt(np.mean(np.sum(res * res, axis=1)))) if len(res) else math.nan


def _plane(v: NDArray[np.float64], proj: int) -> NDArray[np.float64]:
    """Projection-plane coordinates ``(n, 2)`` of camera vectors ``(n, 3)`` (for the
    pinhole projection the tangent plane, ``(X/Z, Y/Z)``)."""
    return np.stack(vectors_to_plane(v, proj), axis=1)


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


def _inv2(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverses of ``(n, 2, 2)`` matrices."""
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    out = np.empty_like(m)
    out[:, 0, 0] = m[:, 1, 1] / det
    out[:, 1, 1] = m[:, 0, 0] / det
    out[:, 0, 1] = -m[:, 0, 1] / det
    out[:, 1, 0] = -m[:, 1, 0] / det
    return out


def _apply(m: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """``m @ v`` per pair: ``(n, 2, 2) x (n, 2, k) -> (n, 2, k)`` (or ``(n, 2)`` vectors)."""
    if v.ndim == 2:
        return np.einsum("nij,nj->ni", m, v, optimize=False)
    return np.einsum("nij,njk->nik", m, v, optimize=False)


class Problem:
    """The pairs, the distortion basis and which parameters are free.

    Parameters
    ----------
    images : list of Pairs
    basis : Basis
    sign : float
        -1 for a mirrored camera, else 1.
    fit_crpix, fit_center : bool
        Whether the optical centre / the radial distortion centre are free.
    scale_free : sequence of bool
        Per image, whether its plate scale is free (the gauge needs two or more).
    projection : str
        The camera's lens projection (:data:`skysolve.camera.projection.PROJECTIONS`).
    """

    def __init__(self, images: list[Pairs], basis: Basis, sign: float, fit_crpix: bool,
                 fit_center: bool, scale_free: list[bool], projection: str = "pinhole") -> None:
        self.images = images
        self.projection = projection
        self.proj = PROJECTIONS.index(projection)
        self.basis = basis
        self.sign = sign
        self.fit_crpix = fit_crpix
        self.fit_center = fit_center and basis.kind == "radial"
        free = np.asarray(scale_free, dtype=bool)
        self.scale_free = free if free.sum() >= 2 else np.zeros(len(images), dtype=bool)
        #: The centres kept at their input values for want of stars (set by the engine).
        self.held: tuple[str, ...] = ()
        self.refresh()

    def refresh(self) -> None:
        """Recount the pairs after an image's pairs changed."""
        self.offsets = np.cumsum([0] + [len(im) for im in self.images])

    # -- layout
    @property
    def n_pairs(self) -> int:
        return int(self.offsets[-1])

    @property
    def n_glob(self) -> int:
        return 1 + 2 * self.fit_crpix + self.basis.size + 2 * self.fit_center

    def glob_names(self) -> list[str]:
        """Names of the shared parameters, in column order."""
        names = ["f"] + (["crpix_x", "crpix_y"] if self.fit_crpix else [])
        return names + self.basis.names() + (["center_x", "center_y"] if self.fit_center
                                             else [])

    def glob_units(self) -> NDArray[np.float64]:
        """Factors from the shared parameters as fitted to the units of the camera they
        make (the radial coefficients, see :meth:`~.basis.Basis.units`), in the order of
        :meth:`glob_names`."""
        n_crpix = 2 if self.fit_crpix else 0
        return np.concatenate([np.ones(1 + n_crpix), self.basis.units(),
                               np.ones(2 if self.fit_center else 0)])

    def glob_vector(self, p: Params) -> NDArray[np.float64]:
        """The shared parameters as a vector, in the order of :meth:`glob_names`."""
        parts = [[p.f]] + ([p.crpix] if self.fit_crpix else []) + [p.coeffs]
        return np.concatenate(parts + ([p.center] if self.fit_center else []))

    @property
    def n_params(self) -> int:
        """Free parameters after the gauge reduction."""
        n_scale = int(self.scale_free.sum())
        return self.n_glob + 3 * len(self.images) + max(n_scale - 1, 0)

    def redundancy(self) -> float:
        """Residual degrees of freedom (``2 * n_pairs - n_params``) per shared parameter."""
        return (2 * self.n_pairs - self.n_params) / self.n_glob

    def rows(self, k: int) -> slice:
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    # -- model
    def residuals(self, p: Params, k: int | None = None) -> NDArray[np.float64]:
        """Pixel residuals (observed - predicted) of image ``k``'s pairs, or of all."""
        if k is None:
            return self._evaluate_all(p, want_design=False)[0]
        return self._evaluate(self.images[k], p, want_design=False)[0]

    def design(self, p: Params, k: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Residuals ``(n, 2)`` of image ``k`` and their design ``(n, 2, n_glob + 4)``."""
        return self._evaluate(self.images[k], p, want_design=True)

    def design_at(self, p: Params, im: Pairs) -> NDArray[np.float64]:
        """The design at arbitrary (e.g. synthetic, exact) pairs ``im``."""
        return self._evaluate(im, p, want_design=True)[1]

    def _evaluate(self, im: Pairs, p: Params, want_design: bool):
        return self._evaluate_at(im.stars @ im.R.T, im.xy, im.scale, p, want_design)

    def _evaluate_all(self, p: Params, want_design: bool):
        """:meth:`_evaluate` of every image's pairs at once, stacked in image order: each
        pair's sums are the ones an image's own evaluation does, in a tenth of the calls
        (a calibration evaluates its images hundreds of times)."""
        images = self.images
        if len(images) == 1:
            return self._evaluate(images[0], p, want_design)
        v = np.concatenate([im.stars @ im.R.T for im in images] or [np.empty((0, 3))])
        xy = np.concatenate([im.xy for im in images] or [np.empty((0, 2))])
        scale = np.repeat([float(im.scale) for im in images], [len(im) for im in images])
        return self._evaluate_at(v, xy, scale, p, want_design)

    def _evaluate_at(self, v: NDArray[np.float64], xy: NDArray[np.float64],
                     scale: float | NDArray[np.float64], p: Params, want_design: bool):
        """Residuals and (``want_design``) design of pairs of camera vectors ``v`` and
        observed pixels ``xy``, at plate scale ``scale`` (one, or one a pair)."""
        b = self.basis
        if not np.isscalar(scale):
            scale = np.asarray(scale)[:, None]
        t = _plane(v, self.proj)
        base = p.f * np.stack([self.sign * t[:, 0], t[:, 1]], axis=1)
        u = scale * base
        if b.primary == "inverse":
            q = xy - p.crpix
            jac = b.jacobian(q, p.coeffs)  # d ideal / d p
            m = _inv2(jac)                  # K: ideal offsets back to pixels
            res = _apply(m, q + b.displacement(q, p.coeffs) - u)
        else:
            w = u - p.center
            jac = m = b.jacobian(w, p.coeffs)  # d distort / d u
            res = xy - (p.crpix + u + b.displacement(w, p.coeffs))
        if not want_design:
            return res, None
        n = len(xy)
        a = np.empty((n, 2, self.n_glob + LOCAL))
        a[:, :, 0] = _apply(m, u / p.f)
        col = 1
        if self.fit_crpix:
            a[:, :, 1:3] = np.eye(2)
            col = 3
        mx, my = b.design(q if b.primary == "inverse" else w)
        g = np.stack([mx, my], axis=1)
        a[:, :, col:col + b.size] = -_apply(m, g) if b.primary == "inverse" else g
        col += b.size
        if self.fit_center:
            a[:, :, col:col + 2] = np.eye(2) - jac
        dxi, deta = _plane_rotation_jacobian(t, v, self.proj)
        du = (scale[:, :, None] if np.ndim(scale) else scale) * p.f * np.stack(
            [self.sign * dxi, deta], axis=1)
        a[:, :, self.n_glob:self.n_glob + 3] = _apply(m, du)
        a[:, :, self.n_glob + 3] = _apply(m, base)
        return res, a

    # -- normal equations
    def _reduction(self, used: NDArray[np.bool_]) -> tuple[NDArray[np.intp],
                                                          NDArray[np.float64], int]:
        """The gauge reduction ``full = T @ reduced`` as ``(sel, z, s0)``.

        Column ``j`` of ``T`` is ``e[sel[j]] - z[j] e[s0]``: the shared
        parameters, the rotation of every ``used`` image (images with too few
        inliers keep their attitude) and the scale of every free, used image but
        the first (``s0``), whose scale is minus the sum of the others' so the
        scales keep their mean. ``s0`` is -1 when no scale is free.
        """
        sel = list(range(self.n_glob))
        for k in np.flatnonzero(used):
            sel += [self.n_glob + LOCAL * int(k) + j for j in range(3)]
        free = np.flatnonzero(self.scale_free & used)
        scales = [self.n_glob + LOCAL * int(k) + 3 for k in free]
        z = np.zeros(len(sel) + max(len(scales) - 1, 0))
        z[len(sel):] = 1.0
        return np.array(sel + scales[1:], dtype=np.intp), z, (scales[0] if scales else -1)

    def designs(self, p: Params) -> list[tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """Residuals and design of every image (:meth:`design`), for reuse."""
        res, a = self._evaluate_all(p, want_design=True)
        return [(res[self.rows(k)], a[self.rows(k)]) for k in range(len(self.images))]

    def assemble(self, designs: list, mask: NDArray[np.bool_], weights: NDArray[np.float64],
                 min_pairs: int = MIN_IMAGE_INLIERS
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Full normal matrix and right-hand side of the pairs in ``mask``, and which
        images have enough of them (``min_pairs``, :data:`MIN_IMAGE_INLIERS`) to take
        part; ``min_pairs=1`` for pieces that are summed before an image's count is
        known (the held-out folds)."""
        n_img = len(self.images)
        n_full = self.n_glob + LOCAL * n_img
        nmat = np.zeros((n_full, n_full))
        rvec = np.zeros(n_full)
        used = np.zeros(n_img, dtype=bool)
        glob = np.arange(self.n_glob)
        for k, (res, a) in enumerate(designs):
            keep = mask[self.rows(k)]
            if keep.sum() < max(min_pairs, 1):
                continue
            used[k] = True
            res, a = res[keep], a[keep]
            wa = a * weights[self.rows(k)][keep][:, None, None]
            idx = np.concatenate([glob, self.n_glob + LOCAL * k + np.arange(LOCAL)])
            # einsum without BLAS: threaded BLAS on a loaded machine is many times
            # slower for these tall, thin products (and for every matrix product here)
            nmat[np.ix_(idx, idx)] += np.einsum("nai,naj->ij", a, wa, optimize=False)
            rvec[idx] += np.einsum("nai,na->i", wa, res, optimize=False)
        return nmat, rvec, used

    def reduce(self, nmat: NDArray[np.float64], rvec: NDArray[np.float64],
               used: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                  tuple]:
        """The normal equations of the reduced parameters (see :meth:`_reduction`)."""
        red = self._reduction(used)
        sel, z, s0 = red
        m = nmat[np.ix_(sel, sel)]
        r = rvec[sel]
        if s0 >= 0:
            row = nmat[s0, sel]
            m = (m - z[:, None] * row[None, :] - row[:, None] * z[None, :]
                 + nmat[s0, s0] * z[:, None] * z[None, :])
            r = r - z * rvec[s0]
        return m, r, red

    def normal_equations(self, p: Params, mask: NDArray[np.bool_],
                         weights: NDArray[np.float64], designs: list | None = None) -> tuple[
                             NDArray[np.float64], NDArray[np.float64], tuple]:
        """Reduced normal matrix and right-hand side of the pairs in ``mask``, and the
        reduction (see :meth:`_reduction`)."""
        if designs is None:
            designs = self.designs(p)
        return self.reduce(*self.assemble(designs, mask, weights))

    def expand(self, red: tuple, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The full parameter vector of reduced parameters ``x``."""
        sel, z, s0 = red
        out = np.zeros(self.n_glob + LOCAL * len(self.images))
        out[sel] = x
        if s0 >= 0:
            out[s0] -= z @ x
        return out

    def step(self, p: Params, mask: NDArray[np.bool_], weights: NDArray[np.float64],
             want_cond: bool = False, designs: list | None = None,
             damping: float = 0.0) -> tuple[NDArray[np.float64], float]:
        """One Gauss-Newton step (full parameter vector) and the condition number;
        a Levenberg-Marquardt step with ``damping`` (see :func:`~.basis.solve_normal`)."""
        nred, rred, red = self.normal_equations(p, mask, weights, designs)
        sol, cond = solve_normal(nred, rred, want_cond, damping)
        return self.expand(red, sol), cond

    def apply(self, p: Params, step: NDArray[np.float64]) -> Params:
        """The parameters moved by ``step``; attitudes and scales are updated in place."""
        q = p.copy()
        q.f += step[0]
        col = 1
        if self.fit_crpix:
            q.crpix = q.crpix + step[1:3]
            col = 3
        q.coeffs = q.coeffs + step[col:col + self.basis.size]
        col += self.basis.size
        if self.fit_center:
            q.center = q.center + step[col:col + 2]
        local = step[self.n_glob:].reshape(-1, LOCAL)
        rot = Rotation.from_rotvec(local[:, :3]).as_matrix()
        for im, dr, ds in zip(self.images, rot, local[:, 3], strict=True):
            im.R = dr @ im.R
            im.scale += ds
        return q

    def covariance(self, p: Params, mask: NDArray[np.bool_], weights: NDArray[np.float64],
                   designs: list | None = None) -> tuple[NDArray[np.float64], float]:
        """Covariance of the full parameter vector and the unit-weight variance (px²).

        ``sigma² (A^T W A)^-1`` of the reduced problem mapped back to the full
        vector; ``sigma²`` is the weighted residual sum of squares over the
        degrees of freedom. Parameters held fixed have zero variance.
        """
        if designs is None:
            designs = self.designs(p)
        nred, _, red = self.normal_equations(p, mask, weights, designs)
        res = np.concatenate([d[0] for d in designs])[mask]
        w = weights[mask]
        dof = max(2 * int(mask.sum()) - nred.shape[0], 1)
        s2 = float(np.sum(w[:, None] * res * res) / dof)
        inv = inverse_normal(nred)
        return s2 * self.expand_matrix(red, inv), s2

    def expand_matrix(self, red: tuple, m: NDArray[np.float64]) -> NDArray[np.float64]:
        """``T m T^T``: a matrix over the reduced parameters over the full vector."""
        sel, z, s0 = red
        n_full = self.n_glob + LOCAL * len(self.images)
        out = np.zeros((n_full, n_full))
        out[np.ix_(sel, sel)] = m
        if s0 >= 0:
            mz = np.einsum("ij,j->i", m, z, optimize=False)
            out[s0, sel] -= mz
            out[sel, s0] -= mz
            out[s0, s0] += float(z @ mz)
        return out


def inverse_normal(nmat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of a normal matrix, column-normalised first (pseudo-inverse if singular)."""
    from scipy.linalg import cho_factor, cho_solve

    d = np.sqrt(np.diag(nmat))
    d[d == 0] = 1.0
    nn = nmat / np.outer(d, d)
    try:
        inv = cho_solve(cho_factor(nn), np.eye(len(nn)))
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(nn, rcond=1e-14, hermitian=True)
    return inv / np.outer(d, d)
