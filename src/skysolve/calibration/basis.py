"""Distortion parametrisations of the calibration fit, and its small linear solves.

A displacement linear in the distortion coefficients: :class:`Basis` gives
its design matrix for the polynomial model (degree 2..order plus the two
non-conformal linear terms, see the degeneracies in
:mod:`skysolve.calibration.fit`) or the five Brown-Conrady terms, turns fitted
coefficients into a distortion model, and projects a starting model onto the
basis.

Which displacement is linear depends on the direction the model is defined
in (``primary``):

* ``"forward"`` (the radial model, and polynomials on request): ``distorted -
  ideal`` as a function of the ideal offset ``u`` (sky → pixel);
* ``"inverse"`` (polynomials by default): ``ideal - distorted`` as a function
  of the distorted offset ``p`` (pixel → sky), the direction of FITS SIP
  ``A``/``B``. A detector whose true distortion is a SIP polynomial of order
  ``n`` (TESS: 4) is then fitted exactly at order ``n``, where a forward
  polynomial needs a higher order for the inverse of that polynomial (order 5
  leaves ~0.05 px at the corners of a TESS CCD).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..camera.distortion import (
    PolynomialDistortion,
    RadialDistortion,
    num_polynomial_terms,
    polynomial_design_jacobian,
    polynomial_design_matrix,
    polynomial_terms,
    radial_design_matrix,
)
from ..camera.model import CameraModel

__all__ = ["Basis", "PRIMARIES", "RADIAL_NAMES", "project_distortion", "solve_normal",
           "normal_lstsq"]

#: Directions a polynomial is fitted in (see the module notes).
PRIMARIES = ("inverse", "forward")

#: The Brown-Conrady coefficients, in the order of ``RadialDistortion.coefficients``.
RADIAL_NAMES = ("k1", "k2", "k3", "p1", "p2")

# Finite-difference step (px) for the Jacobian of the radial distortion.
_FD_STEP_PX = 0.5


def _matvec(m: NDArray[np.float64], v: NDArray[np.float64]) -> NDArray[np.float64]:
    """``m @ v`` without BLAS: threaded BLAS on a loaded machine is many times slower
    for these tall, thin products."""
    return np.einsum("nk,k->n", m, v, optimize=False)


class Basis:
    """Linear displacement model ``distorted - ideal = design(u) @ coeffs``.

    ``design`` returns ``(mx, my)``, each ``(n, k)``: the x and y displacement
    (px) per unit coefficient at offsets ``u`` (px from the optical centre, or
    from the distortion centre of a radial model): ideal offsets for a
    ``"forward"`` basis, distorted ones for an ``"inverse"`` basis (see the
    module notes).

    A radial basis fits ``k1`` .. ``k{radial_terms}`` and ``p1``, ``p2``; the
    radial coefficients it leaves out are 0 (:attr:`columns`: which of the five
    Brown-Conrady coefficients it fits).
    """

    def __init__(self, kind: str, order: int, scale: float, radial_scale: float,
                 primary: str = "forward", radial_terms: int = 3) -> None:
        self.kind = kind
        self.order = order
        self.scale = scale
        self.radial_scale = radial_scale
        # the radial model is Brown-Conrady, defined ideal -> distorted
        self.primary = "forward" if kind == "radial" else primary
        if kind == "polynomial":
            terms = polynomial_terms(order)
            self._high = np.flatnonzero(terms.sum(axis=1) >= 2)
            k = len(self._high)
            self.size = 2 + 2 * k
            # coefficients that move x, and those that move y
            self.axis_columns = (np.r_[0, 1, 2:2 + k], np.r_[0, 1, 2 + k:2 + 2 * k])
        else:
            self.columns = np.r_[0:radial_terms, 3, 4]
            self.size = len(self.columns)
            self.axis_columns = (np.arange(self.size), np.arange(self.size))

    @property
    def radial_terms(self) -> int:
        """Radial coefficients a radial basis fits (``k1`` .. ``k{radial_terms}``)."""
        return self.size - 2 if self.kind == "radial" else 0

    def names(self) -> list[str]:
        """The coefficients' names (``c{j}`` for a polynomial)."""
        if self.kind == "radial":
            return [RADIAL_NAMES[j] for j in self.columns]
        return [f"c{j}" for j in range(self.size)]

    def units(self) -> NDArray[np.float64]:
        """Factors from the fitted coefficients to those of :meth:`to_distortion`'s model.

        A radial basis fits ``k1`` .. ``p2`` for radii normalised by :attr:`scale`
        (half the image width), the returned :class:`RadialDistortion` has them for
        radii in units of its own ``scale`` (1 px by default): ``k_j`` scales by
        ``ratio**-2j``, ``p1``, ``p2`` by ``ratio**-1`` (``ratio = scale /
        radial_scale``). A polynomial's coefficients are its model's own (ones).
        """
        if self.kind != "radial":
            return np.ones(self.size)
        ratio = self.scale / self.radial_scale
        powers = np.array([2.0, 4.0, 6.0, 1.0, 1.0])[self.columns]
        return ratio ** -powers

    def design(self, u: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        x, y = u[:, 0], u[:, 1]
        if self.kind == "radial":
            mx, my = radial_design_matrix(x, y, self.scale)
            if self.size == 5:  # the arrays as they are: a copy changes einsum's rounding
                return mx, my
            return mx[:, self.columns], my[:, self.columns]
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
                      crpix: NDArray[np.float64], center: NDArray[np.float64] | None = None
                      ) -> PolynomialDistortion | RadialDistortion:
        if self.kind == "radial":
            # coefficients were fitted for radii normalised by self.scale; convert
            ratio = self.scale / self.radial_scale
            full = np.zeros(5)
            full[self.columns] = c
            k1, k2, k3, p1, p2 = full
            centre = (0.0, 0.0) if center is None else (float(center[0]), float(center[1]))
            return RadialDistortion(k1 / ratio ** 2, k2 / ratio ** 4, k3 / ratio ** 6,
                                    p1 / ratio, p2 / ratio, centre, scale=self.radial_scale)
        a, b = self.full_coefficients(c)
        n = len(a)
        zeros = np.zeros(n)
        if self.primary == "inverse":
            model = PolynomialDistortion(self.order, self.scale, zeros, zeros, a, b,
                                         primary="inverse")
        else:
            model = PolynomialDistortion(self.order, self.scale, a, b, zeros, zeros)
        return _with_secondary(model, width, height, crpix)


def _with_secondary(model: PolynomialDistortion, width: int, height: int,
                    crpix: NDArray[np.float64]) -> PolynomialDistortion:
    """``model`` with its other polynomial fitted over the image (plus 2 % margins).

    Same fit as :meth:`PolynomialDistortion.fit_secondary`, solved through
    normal equations without threaded BLAS (see :func:`normal_lstsq`).
    """
    hw, hh = 0.52 * width, 0.52 * height
    gx, gy = np.meshgrid(np.linspace(-hw, hw, 41) - crpix[0], np.linspace(-hh, hh, 41) - crpix[1])
    du, dv = gx.ravel(), gy.ravel()
    iu, iv = model.undistort(du, dv)
    ok = np.isfinite(iu) & np.isfinite(iv)
    if ok.sum() < 2 * model.num_coeffs:
        return model  # not invertible over the image: Newton from the identity is all we have
    du, dv, iu, iv = du[ok], dv[ok], iu[ok], iv[ok]
    if model.primary == "forward":  # fit the inverse: distorted -> ideal
        m = polynomial_design_matrix(du, dv, model.order, model.scale)
        return PolynomialDistortion(model.order, model.scale, model.a_coeffs, model.b_coeffs,
                                    normal_lstsq(m, iu - du), normal_lstsq(m, iv - dv))
    m = polynomial_design_matrix(iu, iv, model.order, model.scale)  # ideal -> distorted
    return PolynomialDistortion(model.order, model.scale, normal_lstsq(m, du - iu),
                                normal_lstsq(m, dv - iv), model.ap_coeffs, model.bp_coeffs,
                                primary="inverse")


def project_distortion(basis: Basis, camera: CameraModel) -> tuple[
        float, NDArray[np.float64], NDArray[np.float64]]:
    """Start values: focal length, coefficients and distortion centre closest to ``camera``.

    A radial camera seeds a radial basis exactly (its centre included).
    Otherwise the input distortion is sampled over the image and fitted with
    the basis plus a constant, a uniform scale and a rotation; the scale goes
    into the focal length, the constant and rotation are left to the
    attitudes, and the centre is zero.
    """
    f = camera.focal_length_px
    d = camera.distortion
    zero = np.zeros(2)
    if d is None or getattr(d, "is_identity", False):
        return f, np.zeros(basis.size), zero
    if basis.kind == "radial" and isinstance(d, RadialDistortion):
        ratio = basis.scale / d.scale
        k1, k2, k3, p1, p2 = d.coefficients
        c = np.array([k1 * ratio ** 2, k2 * ratio ** 4, k3 * ratio ** 6, p1 * ratio, p2 * ratio])
        return f, c[basis.columns], np.asarray(d.center, dtype=np.float64)
    w, h = camera.image_width, camera.image_height
    gx, gy = np.meshgrid(np.linspace(-0.5 * w, 0.5 * w, 25), np.linspace(-0.5 * h, 0.5 * h, 25))
    p = np.stack([gx.ravel(), gy.ravel()], axis=1) - camera.crpix
    if basis.primary == "inverse":  # ideal - distorted as a function of distorted offsets
        iu, iv = d.undistort(p[:, 0], p[:, 1])
        u, disp = p, np.stack([np.asarray(iu) - p[:, 0], np.asarray(iv) - p[:, 1]], axis=1)
    else:  # distorted - ideal as a function of ideal offsets
        du, dv = d.distort(p[:, 0], p[:, 1])
        u, disp = p, np.stack([np.asarray(du) - p[:, 0], np.asarray(dv) - p[:, 1]], axis=1)
    ok = np.all(np.isfinite(disp), axis=1)
    u, disp = u[ok], disp[ok]
    if len(u) < basis.size + 4:
        return f, np.zeros(basis.size), zero
    mx, my = basis.design(u)
    n = len(u)
    one, zero_col = np.ones(n), np.zeros(n)
    extra_x = np.stack([one, zero_col, u[:, 0], -u[:, 1]], axis=1)
    extra_y = np.stack([zero_col, one, u[:, 1], u[:, 0]], axis=1)
    a = np.vstack([np.hstack([mx, extra_x]), np.hstack([my, extra_y])])
    rhs = np.concatenate([disp[:, 0], disp[:, 1]])
    sol = normal_lstsq(a, rhs)
    # a uniform scale (1 + s) of the displacement is a focal length change: it multiplies
    # the pixel offsets of a forward model and divides the ideal ones of an inverse model
    factor = 1.0 + sol[-2]
    return (f * factor if basis.primary == "forward" else f / factor), sol[:basis.size], zero


def solve_normal(nmat: NDArray[np.float64], rhs: NDArray[np.float64],
                 want_cond: bool = False, damping: float = 0.0) -> tuple[NDArray[np.float64],
                                                                         float]:
    """Least-squares solution from normal equations; returns (solution, cond).

    The columns are normalised first (``diag = 1``) and the system is solved
    by Cholesky; if that fails (a numerically singular design), directions
    whose singular value is below ``1e-7`` of the largest (of the design
    matrix) are dropped. ``cond`` is the condition number of the normalised
    design when ``want_cond`` (else NaN). ``damping`` is added to the
    normalised diagonal: Marquardt's damping, which shortens the step most
    along the directions the data constrain least.
    """
    d = np.sqrt(np.diag(nmat))
    d[d == 0] = 1.0
    nn = nmat / np.outer(d, d)
    if damping:
        nn = nn + damping * np.eye(len(nn))
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


def normal_lstsq(a: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Column-normalised least squares of a modest dense system (see :func:`solve_normal`)."""
    # einsum without BLAS: threaded BLAS on a loaded machine is tens of times slower
    nmat = np.einsum("ni,nj->ij", a, a, optimize=False)
    return solve_normal(nmat, np.einsum("ni,n->i", a, rhs, optimize=False))[0]
