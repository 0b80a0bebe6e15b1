"""Lens distortion models acting on pixel offsets from the optical centre.

Both models map between *ideal* pixel offsets (where a perfect pinhole camera
would image a star) and *distorted* offsets (where the real lens puts it):

* ``distort(x, y)``: ideal → distorted;
* ``undistort(x, y)``: distorted → ideal.

Coordinates are pixel offsets ``(x, y)`` **relative to the optical centre**
(``CameraModel.crpix``), not to the geometric image centre: for a centred
pixel position ``(px, py)`` pass ``(px - crpix[0], py - crpix[1])``. +x is
right and +y down, as everywhere in skysolve.

:class:`RadialDistortion`
    Brown–Conrady radial + tangential model (the OpenCV formulation). With
    the default ``scale=1`` the radius is in pixels, so coefficients are
    small (``k1`` ~ 1e-9 for a 2k-pixel image); pass ``scale`` (e.g. half
    the image width) to work with dimensionless coefficients instead.
:class:`PolynomialDistortion`
    SIP-like polynomials in ``(x/scale, y/scale)`` including the constant
    and linear terms. Coefficients are stored per axis in the fixed term
    order of :func:`polynomial_terms` (by total degree, then descending
    power of x): ``1, x, y, x², xy, y², x³, x²y, ...``.

Both ``distort`` and ``undistort`` accept scalars (and then return floats)
or arrays of any broadcastable shape (and then return arrays), and invert
each other to better than 1e-6 px wherever the model is invertible; points
with no inverse (e.g. beyond the fold-over radius of a strong barrel
distortion) come back as NaN, never as a silently wrong number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "MAX_POLYNOMIAL_ORDER",
    "RadialDistortion",
    "PolynomialDistortion",
    "polynomial_terms",
    "num_polynomial_terms",
    "polynomial_design_matrix",
    "polynomial_design_jacobian",
    "radial_design_matrix",
    "distortion_from_dict",
]

#: Highest polynomial order a :class:`PolynomialDistortion` accepts.
MAX_POLYNOMIAL_ORDER = 6

# Newton iterations stop once a step is below this (px); a result whose
# residual is still above _RESIDUAL_TOL_PX afterwards has no inverse -> NaN.
_STEP_TOL_PX = 1e-10
_RESIDUAL_TOL_PX = 1e-6
_MAX_NEWTON_ITER = 40

FloatOrArray = float | NDArray[np.float64]


# ---------------------------------------------------------------------------
# small validation helpers


def _check_finite_float(value: Any, name: str, *, positive: bool = False) -> float:
    if positive:
        return _args.positive(value, name)
    return _args.number(value, name)


def _check_order(order: Any, name: str = "order") -> int:
    return _args.count(order, name, minimum=1, maximum=MAX_POLYNOMIAL_ORDER)


def numbers_only(value: Any, name: str, what: str) -> None:
    """Refuse booleans and strings among the entries of an array-like of numbers.

    ``np.array(..., dtype=float)`` would read ``true`` as 1.0 and ``"0.5"`` as 0.5, where
    a scalar field of the same file (``k1``, ``focal_length_px``) refuses them.
    """
    if isinstance(value, np.ndarray):
        bad = value.dtype.kind in "bSUO" and (value.dtype.kind != "O" or any(
            isinstance(v, bool | np.bool_ | str | bytes) for v in value.ravel()))
    elif isinstance(value, list | tuple):
        bad = any(isinstance(v, bool | np.bool_ | str | bytes) for v in value)
    else:
        bad = False
    if bad:
        raise InvalidTypeError(f"{name} must be {what}, got {value!r}")


def _check_coeffs(c: Any, n: int, name: str, order: int) -> NDArray[np.float64]:
    numbers_only(c, name, f"a sequence of {n} numbers")
    try:
        a = np.array(c, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"{name} must be a sequence of {n} numbers") from exc
    if a.ndim != 1 or a.size != n:
        raise InvalidArgumentError(
            f"{name} must have (order+1)(order+2)/2 = {n} coefficients for order {order}, "
            f"got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"{name} must be finite")
    a += 0.0  # -0.0 -> 0.0: equal models hash equal (the hash reads the bytes)
    a.flags.writeable = False
    return a


def _prepare_xy(x: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                      tuple[int, ...], bool]:
    """Flattened float64 copies of broadcast ``x``, ``y``, their shape, and 'both scalar'."""
    try:
        xa = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError("x must be a number or an array of numbers") from exc
    try:
        ya = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError("y must be a number or an array of numbers") from exc
    try:
        xb, yb = np.broadcast_arrays(xa, ya)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"x and y must have the same (or broadcastable) shapes, got {xa.shape} and "
            f"{ya.shape}") from exc
    scalar = xa.ndim == 0 and ya.ndim == 0
    return xb.ravel().copy(), yb.ravel().copy(), xb.shape, scalar


def _finish(u: NDArray[np.float64], v: NDArray[np.float64], shape: tuple[int, ...],
            scalar: bool) -> tuple[FloatOrArray, FloatOrArray]:
    if scalar:
        return float(u[0]), float(v[0])
    return u.reshape(shape), v.reshape(shape)


# ---------------------------------------------------------------------------
# polynomial basis


def num_polynomial_terms(order: int) -> int:
    """Number of terms ``(order+1)(order+2)/2`` of a full 2-D polynomial of ``order``."""
    order = int(order)
    return (order + 1) * (order + 2) // 2


def polynomial_terms(order: int) -> NDArray[np.intp]:
    """Exponents ``(p, q)`` of the terms ``(x/s)^p (y/s)^q``, in coefficient order.

    Terms are sorted by total degree ``p + q`` (0, 1, ..., order) and, within a
    degree, by descending ``p``: ``(0,0), (1,0), (0,1), (2,0), (1,1), (0,2), ...``.

    Parameters
    ----------
    order : int
        Highest total degree (>= 0).

    Returns
    -------
    ndarray of intp, shape ``((order+1)(order+2)/2, 2)``
    """
    order = int(order)
    if order < 0:
        raise InvalidArgumentError(f"order must be >= 0, got {order}")
    return np.array([(p, d - p) for d in range(order + 1) for p in range(d, -1, -1)],
                    dtype=np.intp).reshape(-1, 2)


def _powers(t: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """``t**k`` for k = 0..order along a new last axis (by repeated products)."""
    out = np.empty((*t.shape, order + 1), dtype=np.float64)
    out[..., 0] = 1.0
    for k in range(1, order + 1):
        out[..., k] = out[..., k - 1] * t
    return out


def polynomial_design_matrix(x: ArrayLike, y: ArrayLike, order: int,
                             scale: float) -> NDArray[np.float64]:
    """Values of every polynomial term at the given points.

    Parameters
    ----------
    x, y : array_like
        Pixel offsets (broadcast together).
    order : int
        Polynomial order (total degree), >= 0.
    scale : float
        Normalisation length in pixels (> 0).

    Returns
    -------
    ndarray, shape ``(*shape, n_terms)``
        ``M[..., k] = (x/scale)**p_k * (y/scale)**q_k`` with ``(p_k, q_k)`` from
        :func:`polynomial_terms`, so ``M @ coeffs`` evaluates a polynomial.
    """
    scale = _check_finite_float(scale, "scale", positive=True)
    terms = polynomial_terms(order)
    xb, yb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    px = _powers(xb / scale, int(order))
    py = _powers(yb / scale, int(order))
    return px[..., terms[:, 0]] * py[..., terms[:, 1]]


def polynomial_design_jacobian(x: ArrayLike, y: ArrayLike, order: int, scale: float) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Derivatives of every polynomial term with respect to ``x`` and ``y`` (per pixel).

    Returns
    -------
    dmdx, dmdy : ndarray, shape ``(*shape, n_terms)``
        ``d/dx`` and ``d/dy`` of the columns of :func:`polynomial_design_matrix`,
        so ``dmdx @ coeffs`` is the x-derivative of the polynomial.
    """
    scale = _check_finite_float(scale, "scale", positive=True)
    order = int(order)
    terms = polynomial_terms(order)
    xb, yb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    px = _powers(xb / scale, order)
    py = _powers(yb / scale, order)
    p, q = terms[:, 0], terms[:, 1]
    # index p-1 wraps to -1 for p == 0, where the factor p zeroes the term anyway
    dmdx = (p / scale) * px[..., p - 1] * py[..., q]
    dmdy = (q / scale) * px[..., p] * py[..., q - 1]
    return dmdx, dmdy


def radial_design_matrix(x: ArrayLike, y: ArrayLike, scale: float = 1.0) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Linear design of the Brown–Conrady displacement in ``(k1, k2, k3, p1, p2)``.

    The displacement ``distorted - ideal`` of :class:`RadialDistortion` is
    linear in its coefficients; calibration fits them with this matrix.

    Parameters
    ----------
    x, y : array_like
        Ideal pixel offsets from the optical centre.
    scale : float
        The model's normalisation length (px).

    Returns
    -------
    mx, my : ndarray, shape ``(*shape, 5)``
        ``x_d - x = mx @ [k1, k2, k3, p1, p2]`` and likewise for y (pixels).
    """
    scale = _check_finite_float(scale, "scale", positive=True)
    xb, yb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    xn, yn = xb / scale, yb / scale
    r2 = xn * xn + yn * yn
    mx = np.stack([xn * r2, xn * r2**2, xn * r2**3, 2 * xn * yn, r2 + 2 * xn * xn], -1) * scale
    my = np.stack([yn * r2, yn * r2**2, yn * r2**3, r2 + 2 * yn * yn, 2 * xn * yn], -1) * scale
    return mx, my


# ---------------------------------------------------------------------------
# shared Newton inversion

# fun(u, v) -> (fu, fv, dfu/du, dfu/dv, dfv/du, dfv/dv)
_MapWithJac = Callable[[NDArray[np.float64], NDArray[np.float64]], tuple[NDArray[np.float64], ...]]


def _newton_invert(fun: _MapWithJac, tu: NDArray[np.float64], tv: NDArray[np.float64],
                   u0: NDArray[np.float64], v0: NDArray[np.float64]) -> tuple[
                       NDArray[np.float64], NDArray[np.float64]]:
    """Solve ``fun(u, v) = (tu, tv)`` point by point (1-D arrays), NaN where it fails."""
    u = np.array(u0, dtype=np.float64)
    v = np.array(v0, dtype=np.float64)
    active = np.isfinite(u) & np.isfinite(v) & np.isfinite(tu) & np.isfinite(tv)
    idx = np.flatnonzero(active)
    for _ in range(_MAX_NEWTON_ITER):
        if idx.size == 0:
            break
        fu, fv, a, b, c, d = fun(u[idx], v[idx])
        ru = fu - tu[idx]
        rv = fv - tv[idx]
        det = a * d - b * c
        with np.errstate(divide="ignore", invalid="ignore"):
            du = (d * ru - b * rv) / det
            dv = (a * rv - c * ru) / det
        u[idx] -= du
        v[idx] -= dv
        step = np.maximum(np.abs(du), np.abs(dv))
        tol = _STEP_TOL_PX + 1e-14 * np.maximum(np.abs(u[idx]), np.abs(v[idx]))
        keep = np.isfinite(step) & (step > tol)
        idx = idx[keep]
    good = np.isfinite(u) & np.isfinite(v)
    fu, fv, a, b, c, d = fun(u[good], v[good])
    res = np.hypot(fu - tu[good], fv - tv[good])
    ok = np.zeros_like(good)
    # a lens's ideal offsets are where the map keeps its orientation and sense (both
    # eigenvalues of J with positive real part: det > 0 and trace > 0); beyond a strong
    # barrel term's fold-over the map turns over (det < 0), then points back through
    # the centre (det > 0, trace < 0), and a root there lies on the opposite side
    ok[good] = (res <= _RESIDUAL_TOL_PX) & (a * d - b * c > 0) & (a + d > 0)
    u[~ok] = np.nan
    v[~ok] = np.nan
    return u, v


#: A Newton inverse this far (a fraction of the model's scale plus the offset's length)
#: from its first guess is checked by continuation (:func:`_invert_from_centre`).
_FAR_FRACTION = 0.25
#: Steps of that continuation from the centre out to the offset.
_CONTINUATION_STEPS = 16
#: The most a continuation step's root may move per unit its target moves (a map that
#: compresses tenfold is at a fold: beyond it lies another branch).
_MAX_STRETCH = 10.0


def _invert_from_centre(fun: _MapWithJac, tu: NDArray[np.float64], tv: NDArray[np.float64],
                        u0: NDArray[np.float64], v0: NDArray[np.float64],
                        scale: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_newton_invert`, with the points that have no root or one far from their
    first guess solved again along the way out from the centre.

    A polynomial has other roots besides the lens's, and Newton from a poor guess may
    end on one that keeps the orientation (25,000 px out from an image corner 1000 px
    out). The lens's root is the one reached from the centre: the target is moved from
    the map's image of the origin (whose root is the origin) out to the offset in
    :data:`_CONTINUATION_STEPS` steps, each started from the last one's root; where that
    path finds a root it is the inverse, and where it does not the offset has none (NaN).
    """
    u, v = _newton_invert(fun, tu, tv, u0, v0)
    if (np.abs(u - u0) + np.abs(v - v0)).max(initial=0.0) <= _FAR_FRACTION * scale:
        return u, v  # (every root near its guess: the usual case, at a few us)
    finite_t = np.isfinite(tu) & np.isfinite(tv)
    with np.errstate(invalid="ignore"):
        far = np.hypot(u - u0, v - v0) > _FAR_FRACTION * (scale + np.hypot(tu, tv))
    check = np.flatnonzero(finite_t & (np.isnan(u) | far))
    if not check.size:
        return u, v
    zero = np.zeros(1)
    cu, cv = (float(a[0]) for a in fun(zero, zero)[:2])  # the image of the origin
    du, dv = tu[check] - cu, tv[check] - cv
    pu, pv = np.zeros(check.size), np.zeros(check.size)
    stride = np.hypot(du, dv) / _CONTINUATION_STEPS
    for t in np.linspace(1.0, _CONTINUATION_STEPS, _CONTINUATION_STEPS) / _CONTINUATION_STEPS:
        qu, qv = _newton_invert(fun, cu + t * du, cv + t * dv, pu, pv)
        # a step onto another branch: across a fold, where the lens compresses tenfold
        with np.errstate(invalid="ignore"):
            jumped = np.hypot(qu - pu, qv - pv) > _MAX_STRETCH * stride + _RESIDUAL_TOL_PX
        qu[jumped] = qv[jumped] = np.nan
        pu, pv = qu, qv
    # where the path from the centre ends short of the offset, the offset lies beyond the
    # lens's reach and a far root is no inverse of it: NaN
    u[check], v[check] = pu, pv
    return u, v


# ---------------------------------------------------------------------------
# Brown–Conrady


class RadialDistortion:
    """Brown–Conrady radial + tangential distortion about the optical centre.

    With ``x̂ = x/scale``, ``ŷ = y/scale`` (ideal offsets from the optical
    centre) and ``r² = x̂² + ŷ²``::

        x̂_d = x̂ (1 + k1 r² + k2 r⁴ + k3 r⁶) + 2 p1 x̂ ŷ + p2 (r² + 2 x̂²)
        ŷ_d = ŷ (1 + k1 r² + k2 r⁴ + k3 r⁶) + p1 (r² + 2 ŷ²) + 2 p2 x̂ ŷ

    and ``x_d = scale · x̂_d``. The default ``scale=1`` makes the radius (and
    so the coefficients) raw pixels, the convention of tetra3rs and of the
    skysolve SPEC; ``k1 < 0`` is barrel, ``k1 > 0`` pincushion distortion.

    ``center = (cx, cy)`` moves the centre of the distortion away from the
    optical centre: the formulas above act on ``(x - cx, y - cy)`` and ``cx,
    cy`` are added back, so ``distort(cx, cy) == (cx, cy)``. Like every offset
    a distortion model sees, ``center`` is in pixels **relative to the optical
    centre** ``CameraModel.crpix`` (tetra3rs's meaning: its ``CameraModel``
    applies the distortion to offsets from ``crpix`` too), so the distortion
    centre in centred image pixels is ``crpix + center``. A decentred lens
    (distortion centre away from where the boresight meets the detector) needs
    it; for a detector far off the optical axis (each TESS CCD) the axis itself
    is ``crpix`` and ``center`` stays near zero.

    Parameters
    ----------
    k1, k2, k3 : float
        Radial coefficients (units ``scale**-2``, ``**-4``, ``**-6``).
    p1, p2 : float
        Tangential (decentring) coefficients (units ``scale**-1``).
    center : (float, float)
        Centre of the distortion relative to the optical centre, pixels;
        default ``(0, 0)``.
    scale : float, keyword-only
        Normalisation length in pixels (> 0), default 1.

    Notes
    -----
    ``undistort`` inverts ``distort`` by Newton iteration with the analytic
    Jacobian (converged to ~1e-10 px); offsets beyond the largest radius the
    model reaches (fold-over of a strong barrel term) return NaN.
    """

    __slots__ = ("_coeffs", "_scale", "_center")

    def __init__(self, k1: float = 0.0, k2: float = 0.0, k3: float = 0.0, p1: float = 0.0,
                 p2: float = 0.0, center: ArrayLike = (0.0, 0.0), *,
                 scale: float = 1.0) -> None:
        # (+ 0.0: -0.0 -> 0.0, so that equal models hash equal)
        c = np.array([_check_finite_float(val, name) for val, name in
                      zip((k1, k2, k3, p1, p2), ("k1", "k2", "k3", "p1", "p2"), strict=True)]) + 0.0
        c.flags.writeable = False
        self._coeffs = c
        self._scale = _check_finite_float(scale, "scale", positive=True)
        numbers_only(center, "center", "two numbers (cx, cy) in pixels")
        cx, cy = _args.vector(center, "center", length=2, what="numbers (cx, cy) in pixels")
        self._center = (float(cx) + 0.0, float(cy) + 0.0)

    # -- properties
    k1 = property(lambda self: float(self._coeffs[0]), doc="First radial coefficient.")
    k2 = property(lambda self: float(self._coeffs[1]), doc="Second radial coefficient.")
    k3 = property(lambda self: float(self._coeffs[2]), doc="Third radial coefficient.")
    p1 = property(lambda self: float(self._coeffs[3]), doc="First tangential coefficient.")
    p2 = property(lambda self: float(self._coeffs[4]), doc="Second tangential coefficient.")

    @property
    def scale(self) -> float:
        """Normalisation length of the radius, pixels."""
        return self._scale

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the distortion relative to the optical centre ``(cx, cy)``, pixels."""
        return self._center

    @property
    def coefficients(self) -> NDArray[np.float64]:
        """``[k1, k2, k3, p1, p2]`` (read-only array)."""
        return self._coeffs

    @property
    def is_identity(self) -> bool:
        """True when every coefficient is zero (no distortion)."""
        return not np.any(self._coeffs)

    # -- mapping
    def _map(self, xn: NDArray[np.float64], yn: NDArray[np.float64]) -> tuple[
            NDArray[np.float64], ...]:
        """Normalised forward map and its Jacobian."""
        k1, k2, k3, p1, p2 = self._coeffs
        r2 = xn * xn + yn * yn
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        g = 2.0 * k1 + r2 * (4.0 * k2 + 6.0 * k3 * r2)  # d(radial)/d(r²) * 2
        xy = xn * yn
        fx = xn * radial + 2.0 * p1 * xy + p2 * (r2 + 2.0 * xn * xn)
        fy = yn * radial + p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xy
        cross = g * xy + 2.0 * p1 * xn + 2.0 * p2 * yn
        jxx = radial + g * xn * xn + 2.0 * p1 * yn + 6.0 * p2 * xn
        jyy = radial + g * yn * yn + 6.0 * p1 * yn + 2.0 * p2 * xn
        return fx, fy, jxx, cross, cross, jyy

    def distort(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Ideal → distorted pixel offsets from the optical centre.

        Parameters
        ----------
        x, y : float or array_like
            Ideal offsets (px).

        Returns
        -------
        (x_d, y_d) : floats for scalar input, else arrays of the broadcast shape.
        """
        u, v, shape, scalar = _prepare_xy(x, y)
        s = self._scale
        cx, cy = self._center
        fx, fy = self._map((u - cx) / s, (v - cy) / s)[:2]
        return _finish(fx * s + cx, fy * s + cy, shape, scalar)

    def undistort(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Distorted → ideal pixel offsets (Newton inverse of :meth:`distort`).

        NaN where the distorted offset is outside the range the model can reach;
        where a radius that turns over and back up gives it several ideal offsets,
        the one on the branch about the centre.
        """
        u, v, shape, scalar = _prepare_xy(x, y)
        if self.is_identity:
            return _finish(u, v, shape, scalar)
        s = self._scale
        cx, cy = self._center
        tu, tv = (u - cx) / s, (v - cy) / s
        # first guess: divide out the radial factor at the distorted radius
        k1, k2, k3 = self._coeffs[:3]
        r2 = tu * tu + tv * tv
        radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
        radial = np.where(radial > 0.1, radial, 1.0)
        xn, yn = _newton_invert(self._map, tu, tv, tu / radial, tv / radial)
        # Newton from that guess may leave the branch of the radius about the centre: where
        # the radius bends over slowly (pincushion k1 with negative k3: from 82 % of the
        # fold radius on) it ends beyond the fold (NaN), and where the radius turns over
        # and back up (k1, k2, k3 of alternating signs) on a root past the second turn,
        # thousands of px from the lens's. Those points start again from the radial
        # inverse on the central branch, which the tangential terms only nudge; its root
        # is kept wherever there is one (a point beyond that branch's reach keeps the
        # only root it has)
        turns = _radius_turns(float(k1), float(k2), float(k3))
        retry = np.isnan(xn) & np.isfinite(tu) & np.isfinite(tv)
        if len(turns) > 1:
            retry |= np.hypot(xn, yn) > turns[1]
        lost = np.flatnonzero(retry)
        if lost.size:
            gu, gv = self._radial_guess(tu[lost], tv[lost])
            xl, yl = _newton_invert(self._map, tu[lost], tv[lost], gu, gv)
            better = np.isfinite(xl) & np.isfinite(yl)
            if len(turns) > 1:
                better &= np.isnan(xn[lost]) | (np.hypot(xl, yl) <= turns[1])
            xn[lost[better]], yn[lost[better]] = xl[better], yl[better]
        return _finish(xn * s + cx, yn * s + cy, shape, scalar)

    def _fold_radius(self) -> float:
        """Normalised radius where ``r (1 + k1 r² + k2 r⁴ + k3 r⁶)`` stops growing (inf when
        it never does)."""
        turns = _radius_turns(*(float(k) for k in self._coeffs[:3]))
        return turns[0] if turns else math.inf

    def _radial_guess(self, tu: NDArray[np.float64], tv: NDArray[np.float64]) -> tuple[
            NDArray[np.float64], NDArray[np.float64]]:
        """Normalised ideal offsets of distorted ones ``(tu, tv)`` on the one-to-one branch
        of the radius: the radial terms inverted exactly (bisection up to the fold-over
        radius, where an offset beyond the branch's reach is put), the small tangential
        displacement taken out by fixed-point iteration."""
        k1, k2, k3, p1, p2 = (float(k) for k in self._coeffs)

        def radius(r: NDArray[np.float64]) -> NDArray[np.float64]:
            r2 = r * r
            return r * (1.0 + r2 * (k1 + r2 * (k2 + r2 * k3)))

        fold = self._fold_radius()
        xn, yn = tu.copy(), tv.copy()
        for _ in range(8 if p1 or p2 else 1):
            r2 = xn * xn + yn * yn
            wu = tu - (2.0 * p1 * xn * yn + p2 * (r2 + 2.0 * xn * xn))
            wv = tv - (p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xn * yn)
            rd = np.hypot(wu, wv)
            if math.isfinite(fold):
                hi = np.full_like(rd, fold)
            else:  # monotone: any radius past the target brackets it
                hi = np.maximum(rd, 1.0)
                for _ in range(64):
                    short = radius(hi) < rd
                    if not short.any():
                        break
                    hi[short] *= 2.0
            lo = np.zeros_like(rd)
            for _ in range(60):  # the bracket shrinks to ~1e-18 of itself
                mid = 0.5 * (lo + hi)
                below = radius(mid) < rd
                lo = np.where(below, mid, lo)
                hi = np.where(below, hi, mid)
            with np.errstate(invalid="ignore", divide="ignore"):
                k = np.where(rd > 0, 0.5 * (lo + hi) / np.where(rd > 0, rd, 1.0), 1.0)
            xn, yn = wu * k, wv * k
        return xn, yn

    # -- serialisation and dunders
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (see :func:`distortion_from_dict`).

        ``center`` is written only when it is not ``(0, 0)``, so a centred model
        has the description older skysolve versions read.
        """
        d = {"type": "radial", "k1": self.k1, "k2": self.k2, "k3": self.k3,
             "p1": self.p1, "p2": self.p2, "scale": self._scale}
        if self._center != (0.0, 0.0):
            d["center"] = list(self._center)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RadialDistortion:
        """Rebuild from :meth:`to_dict` output; raises ``ValueError``/``TypeError`` if invalid."""
        if not isinstance(d, Mapping) or d.get("type") != "radial":
            raise InvalidArgumentError("not a radial distortion description (type != 'radial')")
        unknown = set(d) - {"type", "k1", "k2", "k3", "p1", "p2", "scale", "center"}
        if unknown:
            raise InvalidArgumentError(f"unknown radial distortion fields {sorted(unknown)}")
        return cls(d.get("k1", 0.0), d.get("k2", 0.0), d.get("k3", 0.0), d.get("p1", 0.0),
                   d.get("p2", 0.0), d.get("center", (0.0, 0.0)), scale=d.get("scale", 1.0))

    def __reduce__(self):
        return (_radial_from_state, (tuple(self._coeffs.tolist()), self._scale, self._center))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RadialDistortion):
            return NotImplemented
        return (bool(np.array_equal(self._coeffs, other._coeffs)) and self._scale == other._scale
                and self._center == other._center)

    def __hash__(self) -> int:
        return hash(("radial", self._coeffs.tobytes(), self._scale, self._center))

    def __repr__(self) -> str:
        parts = [f"{n}={float(c)!r}" for n, c in zip(("k1", "k2", "k3", "p1", "p2"),
                                                     self._coeffs, strict=True)]
        if self._center != (0.0, 0.0):
            parts.append(f"center={self._center!r}")
        if self._scale != 1.0:
            parts.append(f"scale={self._scale!r}")
        return f"RadialDistortion({', '.join(parts)})"


@lru_cache(maxsize=64)
def _radius_turns(k1: float, k2: float, k3: float) -> tuple[float, ...]:
    """Normalised radii, ascending, where ``r (1 + k1 r² + k2 r⁴ + k3 r⁶)`` turns (its
    derivative ``1 + 3 k1 r² + 5 k2 r⁴ + 7 k3 r⁶``, a cubic in ``r²``, changes sign)."""
    # as the monic cubic in 1/r² (the coefficients in r² may be 1e-27 in pixel units, and
    # np.roots divides by the leading one); a zero k3 (k2) drops the root 1/r² = 0
    roots = np.roots(np.trim_zeros([1.0, 3.0 * k1, 5.0 * k2, 7.0 * k3], "b"))
    inv = sorted((z.real for z in roots if z.real > 0 and abs(z.imag) <= 1e-9 * abs(z)),
                 reverse=True)
    return tuple(1.0 / math.sqrt(t) for t in inv)


def _radial_from_state(coeffs: tuple[float, ...], scale: float,
                       center: tuple[float, float] = (0.0, 0.0)) -> RadialDistortion:
    # pickles made before ``center`` existed carry two arguments
    return RadialDistortion(*coeffs, center, scale=scale)


# ---------------------------------------------------------------------------
# SIP-like polynomial


class PolynomialDistortion:
    """SIP-like polynomial distortion about the optical centre.

    Forward (ideal → distorted) and inverse (distorted → ideal) polynomials::

        x_d = x + Σ A_pq (x/s)^p (y/s)^q        y_d = y + Σ B_pq (x/s)^p (y/s)^q
        x = x_d + Σ AP_pq (x_d/s)^p (y_d/s)^q   y = y_d + Σ BP_pq (x_d/s)^p (y_d/s)^q

    over all terms ``0 <= p+q <= order`` in the order of
    :func:`polynomial_terms`, ``s = scale`` (tetra3rs uses ``image_width/2``).
    The constant and linear terms absorb a residual optical-centre shift,
    scale and rotation.

    Two polynomials of one order cannot be exact inverses of each other, so
    one of them, ``primary``, *defines* the model and the other only seeds a
    Newton iteration: with ``primary="forward"`` (the default) ``distort``
    evaluates A/B exactly and ``undistort`` starts from AP/BP and applies
    Newton steps with the analytic Jacobian of A/B until converged (~1e-10
    px); with ``primary="inverse"`` ``undistort`` evaluates AP/BP exactly and
    ``distort`` is the Newton-refined inverse seeded by A/B (this is how a
    FITS SIP header, whose pixel → sky polynomial is authoritative, is
    represented). Either way ``undistort(distort(p)) == p`` to ~1e-9 px
    wherever the model is invertible, NaN where it is not.

    Parameters
    ----------
    order : int
        Total degree, 1 to 6.
    scale : float
        Normalisation length in pixels (> 0).
    a_coeffs, b_coeffs : array_like, shape ``(n,)``
        Forward coefficients, ``n = (order+1)(order+2)/2``. May be None when
        ``primary="inverse"``: they are then fitted (see :meth:`fit_secondary`).
    ap_coeffs, bp_coeffs : array_like, shape ``(n,)``, optional
        Inverse coefficients. When omitted with ``primary="forward"`` they are
        fitted by least squares on a grid over ``|x|, |y| <= scale``; use
        :meth:`from_forward` or :meth:`fit_secondary` to fit them over the
        actual image instead.
    primary : {"forward", "inverse"}, keyword-only
        Which polynomial is exact (see above).
    """

    __slots__ = ("_order", "_scale", "_a", "_b", "_ap", "_bp", "_primary")

    def __init__(self, order: int, scale: float, a_coeffs: ArrayLike | None,
                 b_coeffs: ArrayLike | None, ap_coeffs: ArrayLike | None = None,
                 bp_coeffs: ArrayLike | None = None, *,
                 primary: Literal["forward", "inverse"] = "forward") -> None:
        self._order = _check_order(order)
        self._scale = _check_finite_float(scale, "scale", positive=True)
        if primary not in ("forward", "inverse"):
            raise InvalidArgumentError(f"primary must be 'forward' or 'inverse', got {primary!r}")
        self._primary = primary
        n = num_polynomial_terms(self._order)
        zeros = np.zeros(n)
        zeros.flags.writeable = False
        pairs = {"forward": (a_coeffs, b_coeffs, "a_coeffs", "b_coeffs"),
                 "inverse": (ap_coeffs, bp_coeffs, "ap_coeffs", "bp_coeffs")}
        secondary = "inverse" if primary == "forward" else "forward"
        c1, c2, n1, n2 = pairs[primary]
        if c1 is None or c2 is None:
            raise InvalidArgumentError(
                f"{n1} and {n2} are required (they define the model when primary={primary!r})")
        exact = (_check_coeffs(c1, n, n1, self._order), _check_coeffs(c2, n, n2, self._order))
        s1, s2, m1, m2 = pairs[secondary]
        if (s1 is None) != (s2 is None):
            raise InvalidArgumentError(f"give both {m1} and {m2} or neither")
        if s1 is None:
            approx = (zeros, zeros)
        else:
            approx = (_check_coeffs(s1, n, m1, self._order), _check_coeffs(s2, n, m2, self._order))
        if primary == "forward":
            (self._a, self._b), (self._ap, self._bp) = exact, approx
        else:
            (self._ap, self._bp), (self._a, self._b) = exact, approx
        if s1 is None and np.any(np.concatenate(exact)):
            half = self._scale
            fitted = self._fitted_secondary(_grid_points(-half, half, -half, half, 41))
            if primary == "forward":
                self._ap, self._bp = fitted
            else:
                self._a, self._b = fitted

    # -- constructors
    @classmethod
    def from_forward(cls, order: int, scale: float, a_coeffs: ArrayLike, b_coeffs: ArrayLike, *,
                     image_width: float | None = None, image_height: float | None = None,
                     crpix: ArrayLike = (0.0, 0.0), points: ArrayLike | None = None,
                     n_grid: int = 41, margin: float = 0.02) -> PolynomialDistortion:
        """Model defined by forward A/B, with AP/BP fitted over the image.

        See :meth:`fit_secondary` for the fitting-region arguments.
        """
        model = cls(order, scale, a_coeffs, b_coeffs, np.zeros(num_polynomial_terms(order)),
                    np.zeros(num_polynomial_terms(order)), primary="forward")
        return model.fit_secondary(image_width=image_width, image_height=image_height,
                                   crpix=crpix, points=points, n_grid=n_grid, margin=margin)

    @classmethod
    def from_inverse(cls, order: int, scale: float, ap_coeffs: ArrayLike, bp_coeffs: ArrayLike,
                     *, image_width: float | None = None, image_height: float | None = None,
                     crpix: ArrayLike = (0.0, 0.0), points: ArrayLike | None = None,
                     n_grid: int = 41, margin: float = 0.02) -> PolynomialDistortion:
        """Model defined by inverse AP/BP (``primary="inverse"``), A/B fitted over the image."""
        n = num_polynomial_terms(_check_order(order))
        model = cls(order, scale, np.zeros(n), np.zeros(n), ap_coeffs, bp_coeffs,
                    primary="inverse")
        return model.fit_secondary(image_width=image_width, image_height=image_height,
                                   crpix=crpix, points=points, n_grid=n_grid, margin=margin)

    def fit_secondary(self, image_width: float | None = None, image_height: float | None = None,
                      crpix: ArrayLike = (0.0, 0.0), points: ArrayLike | None = None,
                      n_grid: int = 41, margin: float = 0.02) -> PolynomialDistortion:
        """Copy with the non-primary polynomial refitted by least squares.

        The fit samples *distorted* offsets over the region, maps them exactly
        through the primary polynomial (Newton for the forward-primary case)
        and fits the other polynomial, of the same order, to those pairs. It
        only changes the Newton starting point (and what a SIP export can use
        directly), never the model's mapping.

        Parameters
        ----------
        image_width, image_height : float, optional
            Image size in pixels: the region is the whole image, in offsets
            from the optical centre ``crpix`` (centred px). Height defaults to
            width; without either, ``|x|, |y| <= scale``.
        crpix : (float, float)
            Optical-centre offset from the image centre, px.
        points : array_like, shape ``(n, 2)``, optional
            Explicit distorted offsets to fit at instead of a grid.
        n_grid : int
            Grid points per axis.
        margin : float
            Fraction of the size added on each side of the grid.
        """
        if points is not None:
            pts = np.asarray(points, dtype=np.float64)
            if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] < num_polynomial_terms(
                    self._order):
                raise InvalidArgumentError(
                    f"points must be an (n, 2) array with n >= {num_polynomial_terms(self._order)}"
                    f", got shape {pts.shape}")
        else:
            n_grid = int(n_grid)
            if n_grid < self._order + 2:
                raise InvalidArgumentError(f"n_grid must be >= {self._order + 2}, got {n_grid}")
            c = np.asarray(crpix, dtype=np.float64)
            if c.shape != (2,) or not np.all(np.isfinite(c)):
                raise InvalidArgumentError(f"crpix must be two finite numbers, got {crpix!r}")
            if image_width is None and image_height is None:
                hw = hh = self._scale
                c = np.zeros(2)
            else:
                w = _check_finite_float(image_width if image_width is not None else image_height,
                                        "image_width", positive=True)
                h = _check_finite_float(image_height if image_height is not None else w,
                                        "image_height", positive=True)
                hw, hh = 0.5 * w, 0.5 * h
            m = float(margin)
            hw, hh = hw * (1 + 2 * m), hh * (1 + 2 * m)
            pts = _grid_points(-hw - c[0], hw - c[0], -hh - c[1], hh - c[1], n_grid)
        fitted = self._fitted_secondary(pts)
        if self._primary == "forward":
            return PolynomialDistortion(self._order, self._scale, self._a, self._b, *fitted,
                                        primary="forward")
        return PolynomialDistortion(self._order, self._scale, *fitted, self._ap, self._bp,
                                    primary="inverse")

    #: Alias of :meth:`fit_secondary` (fits AP/BP for the default forward-primary model).
    fit_inverse = fit_secondary

    def _fitted_secondary(self, pts: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        du, dv = pts[:, 0], pts[:, 1]
        iu, iv = self.undistort(du, dv)
        ok = np.isfinite(iu) & np.isfinite(iv)
        du, dv, iu, iv = du[ok], dv[ok], iu[ok], iv[ok]
        n = num_polynomial_terms(self._order)
        if du.size < n:
            raise InvalidArgumentError(
                "too few invertible points to fit the secondary polynomial; the model is not "
                "invertible over the requested region")
        if self._primary == "forward":
            m = polynomial_design_matrix(du, dv, self._order, self._scale)
            rhs = np.stack([iu - du, iv - dv], axis=1)
        else:
            m = polynomial_design_matrix(iu, iv, self._order, self._scale)
            rhs = np.stack([du - iu, dv - iv], axis=1)
        sol = np.linalg.lstsq(m, rhs, rcond=None)[0]
        out = []
        for k in range(2):
            c = np.ascontiguousarray(sol[:, k])
            c.flags.writeable = False
            out.append(c)
        return tuple(out)

    # -- properties
    @property
    def order(self) -> int:
        """Total polynomial degree (1-6)."""
        return self._order

    @property
    def scale(self) -> float:
        """Normalisation length ``s`` in pixels."""
        return self._scale

    @property
    def primary(self) -> str:
        """``"forward"`` or ``"inverse"``: which polynomial defines the model."""
        return self._primary

    @property
    def num_coeffs(self) -> int:
        """Coefficients per axis, ``(order+1)(order+2)/2``."""
        return num_polynomial_terms(self._order)

    @property
    def terms(self) -> NDArray[np.intp]:
        """Exponents ``(p, q)`` of each coefficient (see :func:`polynomial_terms`)."""
        return polynomial_terms(self._order)

    a_coeffs = property(lambda self: self._a, doc="Forward x coefficients A (read-only).")
    b_coeffs = property(lambda self: self._b, doc="Forward y coefficients B (read-only).")
    ap_coeffs = property(lambda self: self._ap, doc="Inverse x coefficients AP (read-only).")
    bp_coeffs = property(lambda self: self._bp, doc="Inverse y coefficients BP (read-only).")

    @property
    def is_identity(self) -> bool:
        """True when all four coefficient sets are zero."""
        return not (np.any(self._a) or np.any(self._b) or np.any(self._ap) or np.any(self._bp))

    # -- mapping
    def _poly_map(self, cu: NDArray[np.float64], cv: NDArray[np.float64]) -> _MapWithJac:
        order, scale = self._order, self._scale
        mu, mv = _coeff_matrix(cu, order), _coeff_matrix(cv, order)
        # derivative polynomials as coefficient matrices (per pixel: 1/scale)
        k = np.arange(1, order + 1, dtype=np.float64)
        mux = np.zeros_like(mu)
        mux[:-1, :] = mu[1:, :] * k[:, None] / scale
        muy = np.zeros_like(mu)
        muy[:, :-1] = mu[:, 1:] * k[None, :] / scale
        mvx = np.zeros_like(mv)
        mvx[:-1, :] = mv[1:, :] * k[:, None] / scale
        mvy = np.zeros_like(mv)
        mvy[:, :-1] = mv[:, 1:] * k[None, :] / scale

        def fun(u: NDArray[np.float64], v: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
            pu, pv = _powers_t(u / scale, order), _powers_t(v / scale, order)
            return (u + _poly_eval(mu, pu, pv), v + _poly_eval(mv, pu, pv),
                    1.0 + _poly_eval(mux, pu, pv), _poly_eval(muy, pu, pv),
                    _poly_eval(mvx, pu, pv), 1.0 + _poly_eval(mvy, pu, pv))

        return fun

    def _eval(self, cu: NDArray[np.float64], cv: NDArray[np.float64], u: NDArray[np.float64],
              v: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        pu = _powers_t(u / self._scale, self._order)
        pv = _powers_t(v / self._scale, self._order)
        return (u + _poly_eval(_coeff_matrix(cu, self._order), pu, pv),
                v + _poly_eval(_coeff_matrix(cv, self._order), pu, pv))

    def distort(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Ideal → distorted pixel offsets from the optical centre.

        Parameters
        ----------
        x, y : float or array_like
            Ideal offsets (px).

        Returns
        -------
        (x_d, y_d) : floats for scalar input, else arrays of the broadcast shape
            (NaN where the inverse-primary model cannot be inverted).
        """
        u, v, shape, scalar = _prepare_xy(x, y)
        if self._primary == "forward":
            return _finish(*self._eval(self._a, self._b, u, v), shape, scalar)
        u0, v0 = self._eval(self._a, self._b, u, v)
        return _finish(*_invert_from_centre(self._poly_map(self._ap, self._bp), u, v, u0, v0,
                                            self._scale), shape, scalar)

    def undistort(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Distorted → ideal pixel offsets from the optical centre.

        NaN where the forward-primary model cannot be inverted.
        """
        u, v, shape, scalar = _prepare_xy(x, y)
        if self._primary == "inverse":
            return _finish(*self._eval(self._ap, self._bp, u, v), shape, scalar)
        u0, v0 = self._eval(self._ap, self._bp, u, v)
        return _finish(*_invert_from_centre(self._poly_map(self._a, self._b), u, v, u0, v0,
                                            self._scale), shape, scalar)

    # -- serialisation and dunders
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (see :func:`distortion_from_dict`)."""
        return {"type": "polynomial", "order": self._order, "scale": self._scale,
                "primary": self._primary, "a_coeffs": self._a.tolist(),
                "b_coeffs": self._b.tolist(), "ap_coeffs": self._ap.tolist(),
                "bp_coeffs": self._bp.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolynomialDistortion:
        """Rebuild from :meth:`to_dict` output; raises ``ValueError``/``TypeError`` if invalid."""
        if not isinstance(d, Mapping) or d.get("type") != "polynomial":
            raise InvalidArgumentError(
                "not a polynomial distortion description (type != 'polynomial')")
        fields = {"order", "scale", "a_coeffs", "b_coeffs", "ap_coeffs", "bp_coeffs"}
        missing = fields - set(d)
        if missing:
            raise InvalidArgumentError(f"polynomial distortion lacks fields {sorted(missing)}")
        unknown = set(d) - fields - {"type", "primary"}
        if unknown:
            raise InvalidArgumentError(f"unknown polynomial distortion fields {sorted(unknown)}")
        return cls(d["order"], d["scale"], d["a_coeffs"], d["b_coeffs"], d["ap_coeffs"],
                   d["bp_coeffs"], primary=d.get("primary", "forward"))

    def __reduce__(self):
        return (_polynomial_from_state, (self._order, self._scale, self._a.tolist(),
                                         self._b.tolist(), self._ap.tolist(), self._bp.tolist(),
                                         self._primary))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolynomialDistortion):
            return NotImplemented
        return (self._order == other._order and self._scale == other._scale
                and self._primary == other._primary
                and all(np.array_equal(x, y) for x, y in zip(
                    (self._a, self._b, self._ap, self._bp),
                    (other._a, other._b, other._ap, other._bp), strict=True)))

    def __hash__(self) -> int:
        return hash(("polynomial", self._order, self._scale, self._primary, self._a.tobytes(),
                     self._b.tobytes(), self._ap.tobytes(), self._bp.tobytes()))

    def __repr__(self) -> str:
        def fmt(c: NDArray[np.float64]) -> str:
            return "[" + ", ".join(f"{float(x):.6g}" for x in c) + "]"

        extra = ", primary='inverse'" if self._primary == "inverse" else ""
        return (f"PolynomialDistortion(order={self._order}, scale={self._scale!r}, "
                f"a_coeffs={fmt(self._a)}, b_coeffs={fmt(self._b)}, ap_coeffs={fmt(self._ap)}, "
                f"bp_coeffs={fmt(self._bp)}{extra})")


def _polynomial_from_state(order: int, scale: float, a: list[float], b: list[float],
                           ap: list[float], bp: list[float], primary: str) -> PolynomialDistortion:
    return PolynomialDistortion(order, scale, a, b, ap, bp, primary=primary)  # type: ignore[arg-type]


def _coeff_matrix(c: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """Coefficients in term order → matrix ``m[p, q]``."""
    m = np.zeros((order + 1, order + 1))
    t = polynomial_terms(order)
    m[t[:, 0], t[:, 1]] = c
    return m


def _powers_t(t: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """``t**k`` for k = 0..order, shape ``(order+1, n)`` (rows contiguous)."""
    out = np.empty((order + 1, t.size), dtype=np.float64)
    out[0] = 1.0
    for k in range(1, order + 1):
        np.multiply(out[k - 1], t, out=out[k])
    return out


def _poly_eval(m: NDArray[np.float64], pu: NDArray[np.float64],
               pv: NDArray[np.float64]) -> NDArray[np.float64]:
    """``Σ m[p, q] u^p v^q`` from power tables ``pu``, ``pv`` of :func:`_powers_t`."""
    # far cheaper than a full design matrix; einsum without BLAS avoids thread
    # start-up costs that dominate these small products
    inner = np.einsum("pq,qn->pn", m, pv, optimize=False)
    return np.einsum("pn,pn->n", pu, inner, optimize=False)


def _grid_points(x0: float, x1: float, y0: float, y1: float, n: int) -> NDArray[np.float64]:
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def distortion_from_dict(
        d: Mapping[str, Any] | None) -> RadialDistortion | PolynomialDistortion | None:
    """Rebuild a distortion model from its ``to_dict()`` form (``None`` stays ``None``).

    Raises
    ------
    ValueError
        If ``d`` is not a known, valid description.
    """
    if d is None:
        return None
    if not isinstance(d, Mapping):
        raise InvalidArgumentError(
            f"distortion description must be a mapping, got {type(d).__name__}")
    kind = d.get("type")
    if kind == "radial":
        return RadialDistortion.from_dict(d)
    if kind == "polynomial":
        return PolynomialDistortion.from_dict(d)
    raise InvalidArgumentError(
        f"unknown distortion type {kind!r} (expected 'radial' or 'polynomial')")
