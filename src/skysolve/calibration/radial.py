"""Start values of a radial calibration whose optical axis may lie far off the image.

A Brown-Conrady model is radially symmetric about the optical axis, and its
gnomonic projection is centred there too. When the detector sits off the
axis (each TESS CCD has the camera's axis just beyond one of its corners,
~1500 px from the CCD's centre), a fit started at the image centre has to
move the centre by more than an image half-diagonal *and* every attitude by
degrees together; Gauss-Newton from there stalls a few hundred pixels out
(the second-order terms that locate the axis are swamped by the first-order
ones the attitudes absorb).

So the radial fit starts from the data's own answer:

1. a polynomial model (pixel -> sky, order 4 or lower) is fitted to the same
   pairs; it reproduces the camera over the image whatever the axis;
2. the axis is located from that model's geometry: the local pixel -> sky
   metric of a radially symmetric camera stretches differently along and
   across the direction to the axis (the gnomonic projection alone does so by
   ``1/cos(theta)``), so the principal directions of the metric over a grid
   of the image are lines through the axis; their least-squares
   intersection is the estimate;
3. the radial camera (focal length, centre, coefficients, distortion-centre
   offset, and the rotation between the two cameras' frames) is fitted to
   the polynomial camera over that grid with
   :func:`scipy.optimize.least_squares`, from the image centre and from the
   estimated axis; the better fit seeds the full Gauss-Newton problem, every
   image's attitude rotated into the radial camera's frame.

Both grids keep only the points the stars cover (a star within one grid cell's
diagonal). A polynomial is known only where its stars are: fitted to stars
within 200 px of the centre of a 1024 x 768 image, an order-4 polynomial is
off by tens of pixels at the corners, and a radial camera fitted to that
extrapolation (focal length 30 % off, distortion centre 10^4 px away) starts a
Gauss-Newton fit that diverges. Where the stars fill the image every point is
kept, so such a start is unchanged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from ..camera.projection import plane_to_vectors, vectors_to_plane
from ..geometry import wahba_rotation
from .lsq import Params

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from .lsq import Problem

__all__ = ["radial_start", "metric_axis", "folds_over", "star_coverage"]

# Grid points per axis over the image for the camera-to-camera fit and the metric.
_GRID = 15
# Points per side of the image boundary, and per ray from the distortion centre to it,
# where a fitted camera's distortion is checked for fold-over.
_EDGE = 65
_RAY = 64
# Central-difference step (px) of the distortion's Jacobian in the fold-over check.
_FOLD_STEP_PX = 0.5


def _grid(width: int, height: int, n: int = _GRID,
          stars: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """An ``n`` x ``n`` grid over the image (centred px), only its points with one of
    ``stars`` (centred px) within a cell diagonal when given."""
    gx, gy = np.meshgrid(np.linspace(-0.5 * width, 0.5 * width, n),
                         np.linspace(-0.5 * height, 0.5 * height, n))
    p = np.stack([gx.ravel(), gy.ravel()], axis=1)
    if stars is None or not len(stars):
        return p
    from scipy.spatial import cKDTree  # not at import: most calibrations are polynomial

    reach = math.hypot(width, height) / (n - 1)
    near = np.isfinite(cKDTree(stars).query(p, distance_upper_bound=reach)[0])
    return p[near]


def star_coverage(stars: NDArray[np.float64], width: int, height: int) -> float:
    """Share of a 9 x 9 grid over the image with one of ``stars`` (centred px) within a
    cell diagonal: ~1 for 30 or more stars spread over the whole image, 0.56 for stars
    within 250 px of the centre of a 1024 x 768 image, 0.67 for stars on one half."""
    return len(_grid(width, height, 9, stars)) / 81.0 if len(stars) else 0.0


def metric_axis(camera: CameraModel, width: int, height: int,
                stars: NDArray[np.float64] | None = None) -> NDArray[np.float64] | None:
    """Where the principal directions of ``camera``'s pixel -> sky metric meet (centred px),
    over the image or the part of it ``stars`` (centred px) cover.

    None when the metric is too close to isotropic to point anywhere.
    """
    p = _grid(width, height, 9, stars)
    if len(p) < 3:
        return None
    h = 0.5  # central differences over one pixel
    v0 = camera.pixel_to_vectors(p[:, 0], p[:, 1])
    dvx = camera.pixel_to_vectors(p[:, 0] + h, p[:, 1]) - camera.pixel_to_vectors(p[:, 0] - h,
                                                                                  p[:, 1])
    dvy = camera.pixel_to_vectors(p[:, 0], p[:, 1] + h) - camera.pixel_to_vectors(p[:, 0],
                                                                                  p[:, 1] - h)
    # an orthonormal frame on the sphere at each point (any one: the metric is invariant)
    ref = np.where(np.abs(v0[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    e1 = np.cross(ref, v0)
    e1 /= np.linalg.norm(e1, axis=1)[:, None]
    e2 = np.cross(v0, e1)
    jac = np.stack([np.stack([np.sum(dvx * e, 1), np.sum(dvy * e, 1)], 1)
                    for e in (e1, e2)], 1)
    metric = np.einsum("nki,nkj->nij", jac, jac, optimize=False)
    vals, vecs = np.linalg.eigh(metric)
    weight = (vals[:, 1] - vals[:, 0]) / (vals[:, 1] + vals[:, 0])
    if not np.all(np.isfinite(weight)) or np.max(weight) < 1e-6:
        return None
    best = None
    for which in (0, 1):  # the radial direction is one of the two principal ones
        d = vecs[:, :, which]
        normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * weight[:, None]
        rhs = np.sum(normal * p, axis=1)
        a = np.einsum("ni,nj->ij", normal, normal, optimize=False)
        if np.linalg.cond(a) > 1e12:
            continue
        x = np.linalg.solve(a, np.einsum("ni,n->i", normal, rhs, optimize=False))
        misfit = float(np.sum((normal @ x - rhs) ** 2))
        if best is None or misfit < best[0]:
            best = (misfit, x)
    return None if best is None else best[1]


def folds_over(camera: CameraModel) -> bool:
    """Whether ``camera``'s radial distortion fails to be one-to-one over its image.

    Every pixel of the image must have an ideal position (``undistort`` is NaN
    beyond a fold), and along each ray from the distortion centre out to the
    ideal positions of the image boundary the map must keep its orientation (the
    Jacobian's determinant and trace positive): a radius polynomial that turns
    over and back up (``k1``, ``k2``, ``k3`` of alternating signs) has finite
    inverses past its second turn, but not unique ones. Checked on a grid (65
    points per side, 64 per ray); other distortions never fold here (False).
    """
    from ..camera.distortion import RadialDistortion

    d = camera.distortion
    if not isinstance(d, RadialDistortion) or d.is_identity:
        return False
    w, h = camera.image_width, camera.image_height
    t = np.linspace(-0.5, 0.5, _EDGE)
    one = np.full(_EDGE, 0.5)
    edge = np.concatenate([np.stack([t * w, -one * h], 1), np.stack([t * w, one * h], 1),
                           np.stack([-one * w, t * h], 1), np.stack([one * w, t * h], 1)])
    p = np.concatenate([edge, _grid(w, h)]) - np.asarray(camera.crpix)
    iu, iv = d.undistort(p[:, 0], p[:, 1])
    if not (np.all(np.isfinite(iu)) and np.all(np.isfinite(iv))):
        return True
    c = np.asarray(d.center)
    ends = np.stack([iu, iv], axis=1)[:len(edge)] - c
    ray = (c + np.linspace(0.0, 1.0, _RAY)[1:, None, None] * ends).reshape(-1, 2)
    step = _FOLD_STEP_PX
    jac = np.empty((len(ray), 2, 2))
    for axis in range(2):
        e = np.zeros(2)
        e[axis] = step
        hi, lo = d.distort(*(ray + e).T), d.distort(*(ray - e).T)
        jac[:, 0, axis] = (hi[0] - lo[0]) / (2 * step)
        jac[:, 1, axis] = (hi[1] - lo[1]) / (2 * step)
    det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
    return not bool(np.all(det > 0) and np.all(jac[:, 0, 0] + jac[:, 1, 1] > 0))


def _unpack(theta: NDArray[np.float64], n_coeffs: int, fit_center: bool):
    f, cx, cy = theta[:3]
    c = theta[3:3 + n_coeffs]
    j = 3 + n_coeffs
    center = theta[j:j + 2] if fit_center else np.zeros(2)
    rot = theta[-3:]
    return f, np.array([cx, cy]), c, center, rot


def _project(problem: Problem, theta: NDArray[np.float64], v: NDArray[np.float64],
             fit_center: bool) -> NDArray[np.float64]:
    """Pixels of camera directions ``v`` (in the polynomial camera's frame) under ``theta``."""
    basis = problem.basis
    f, crpix, c, center, rot = _unpack(theta, basis.size, fit_center)
    w = Rotation.from_rotvec(rot).apply(v)
    xi, eta = vectors_to_plane(w, problem.proj)
    u = f * np.stack([problem.sign * xi, eta], axis=1)
    q = u - center
    return crpix + u + basis.displacement(q, c)


def _fit_from(problem: Problem, p: NDArray[np.float64], v: NDArray[np.float64], f: float,
              crpix: NDArray[np.float64], fit_center: bool):
    """Least-squares radial camera fitted to pixels ``p`` and directions ``v`` from an
    undistorted start centred on ``crpix``; returns (cost, theta)."""
    s = problem.sign
    u = p - crpix
    pin = plane_to_vectors(s * u[:, 0] / f, u[:, 1] / f, problem.proj)
    ok = np.all(np.isfinite(pin), axis=1) & np.all(np.isfinite(v), axis=1)
    rot = Rotation.from_matrix(wahba_rotation(pin[ok], v[ok])).as_rotvec()
    theta0 = np.concatenate([[f], crpix, np.zeros(problem.basis.size),
                             np.zeros(2) if fit_center else [], rot])

    def residual(theta):
        return (_project(problem, theta, v, fit_center) - p).ravel()

    sol = least_squares(residual, theta0, x_scale="jac", method="lm", max_nfev=400)
    return float(sol.cost), sol.x


def radial_start(problem: Problem, start: Params, poly: CameraModel, width: int,
                 height: int) -> Params:
    """Start values of a radial fit near the optical axis, from a polynomial camera fitted
    to the same pairs (see the module notes); every image's attitude (fitted with
    ``poly``) is rotated into the start camera's frame in place."""
    stars = np.concatenate([im.xy for im in problem.images])
    p = _grid(width, height, stars=stars)
    v = poly.pixel_to_vectors(p[:, 0], p[:, 1])
    seen = np.all(np.isfinite(v), axis=1)  # a fisheye's image circle may not fill the image
    p, v = p[seen], v[seen]
    starts = [np.asarray(poly.crpix, dtype=np.float64)]
    axis = metric_axis(poly, width, height, stars)
    if axis is not None and np.all(np.isfinite(axis)) and \
            np.hypot(*axis) < 3.0 * math.hypot(width, height):
        starts.append(axis)
    fit_center = problem.fit_center
    best = min((_fit_from(problem, p, v, poly.focal_length_px, c0, fit_center)
                for c0 in starts), key=lambda t: t[0])
    f, crpix, c, center, rot = _unpack(best[1], problem.basis.size, fit_center)
    turn = Rotation.from_rotvec(rot).as_matrix()
    for im in problem.images:  # scales from the polynomial fit, attitudes into the new frame
        im.R = turn @ im.R
    return Params(float(f), crpix, c, center)
