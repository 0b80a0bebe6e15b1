"""The radial lens term of a solve without a camera model, when its residuals call for it.

A solve without a camera model fits an attitude and a focal length to an ideal
lens of the given projection. A real lens departs from it radially -- barrel or
pincushion distortion, a fisheye that is not exactly equidistant -- by a few per
cent at the edge of a wide field: several pixels, which the attitude absorbs
unevenly wherever the matched stars are not spread evenly about the centre (1-5
arcmin off on 60-120 deg fields with 3 % barrel distortion). Such a fit's
residuals are radial and grow with the radius.

With ``u`` the ideal offsets where the fit puts the matched stars (at focal
length ``f``) and ``d`` where the centroids are, the model
``d = u (a + a1 rho^2 + a2 rho^4)``, ``rho = |u| / s`` (``s`` the half-diagonal),
is linear in ``(a, a1, a2)``. The pairs call for a term when ``a1`` against the
scale alone, or ``a1`` with ``a2`` against it, passes the F test
``F = ((RSS_without - RSS_with) / m) / (RSS_with / dof)`` (``m`` terms; ``dof``: the
``2n`` coordinates less the attitude's three parameters, the scale and the terms)
at :data:`MIN_F`. The refined solve with the term must leave at most
``1 / MIN_RSS_RATIO`` of the plain solve's mean square residual, so that a lens
whose distortion is within the centroid noise keeps the plain solve -- or match a fifth
more stars than it and crowd them more about their stars: the two mean squares are over
different stars, and a lens far from its projection, fitted only approximately, keeps
residuals of pixels on the edge stars the term brings in (a 60 deg equidistant lens
solved as a pinhole: 63 matches at 6.0 px rms, 0.02 deg off, against 44 at 6.3 px, 0.28
deg off).

One coefficient is fitted, ``k1``, with the attitude and the focal length, by
Gauss-Newton on the pixel residuals ``d - u (1 + k1 rho^2)``, refitted without
outlying pairs; it is reported in pixels as every camera's (``k1 / s^2``, a
:class:`~skysolve.camera.distortion.RadialDistortion` of scale 1). The solve is
then refined with that camera (every star re-matched), and the term fitted again to
the stars it matched, for up to four rounds while the refit matches better (a strong
term brings the field's edge in over rounds); the result's ``camera_model`` carries
the distortion, and its WCS a SIP term. A second coefficient was tried and dropped:
the outermost stars decide it, and where the plain solve's model is off by more
than the match radius they are matched to wrong catalog stars, which ``k2`` then
bends the model to (a 120 deg lens with 10 % barrel distortion came out 3 deg off
in its corners with a 0.7 px rmse). A lens far from its projection (the wrong one
named) is therefore fitted only approximately, and keeps residuals that show it.

On a field whose corners lie :data:`MIN_CENTRE_ANGLE_DEG` or more off the axis, the
optical centre is fitted too: the model's offsets move with a shift ``(cx, cy)`` of the
centre, ``d = c + u (1 + k1 rho^2)``, two more columns of the Gauss-Newton fit (one
pixel a pixel). A lens whose axis is not where the solve took it (the image centre)
leaves residuals that grow across the field and are not radial about that centre; the
shift is kept when its two parameters pass the F test at :data:`MIN_F` over the same
fit without them (on the pairs the free fit kept, :data:`MIN_CENTRE_MATCHES` at least)
and it is within :data:`MAX_CENTRE_SHIFT` of the half-diagonal. On narrower fields a
shift of the centre is nearly a turn of the attitude, and the fit cannot tell them.

A solve whose residuals stay within :data:`MIN_RMS_PX` of an ideal lens skips the
test (its cost, ~20 us, would fall on every small-field solve).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..camera import projection as _proj
from ..camera.distortion import RadialDistortion
from ..camera.model import CameraModel

__all__ = ["CLIP_FACTOR", "INNER_GAIN", "INNER_MIN_SHARE", "INNER_RHO",
           "INNER_TRIGGER_PX", "INNER_TRIGGER_SHARE", "MAX_CENTRE_SHIFT",
           "MIN_CENTRE_ANGLE_DEG", "MIN_CENTRE_MATCHES", "MIN_F", "MIN_MATCHES", "MIN_RMS_PX",
           "MIN_RSS_RATIO", "centre_called_for", "fit_radial", "offsets", "radial_camera",
           "worth_testing"]

#: Fewest matched stars for the test.
MIN_MATCHES = 10
#: Residual rms (px, per star, both axes) below which the test is skipped: a radial
#: term that small moves the attitude by a fraction of a pixel at most.
MIN_RMS_PX = 0.75
#: The F statistic each term must reach (chance: 6e-5 at 10 stars, 4e-6 at 20, 4e-7 at 50).
MIN_F = 30.0
#: ... and the share of the plain solve's mean square residual the refined solve with
#: the term must remove (plain / with the term).
MIN_RSS_RATIO = 2.25
#: The optical centre is fitted as well (:func:`centre_called_for`) on fields whose
#: corners lie this far off the axis (deg) or more: on narrower ones a shift of the
#: centre is nearly a turn of the attitude ...
MIN_CENTRE_ANGLE_DEG = 30.0
#: ... from this many matched pairs ...
MIN_CENTRE_MATCHES = 20
#: ... and a shift of at most this share of the half-diagonal is taken.
MAX_CENTRE_SHIFT = 0.25
#: Gauss-Newton steps of the fit ...
_ITERATIONS = 10
#: ... stopped once a step moves every parameter less than this (rad, ln f, and k1 in
#: units of s^-2)
_TOLERANCE = 1e-10
#: Pairs further from the fit than this many times the median residual are left out
#: (for 2-D Gaussian errors the median is 1.18 sigma: chance 1.5e-5)
CLIP_FACTOR = 4.0
#: ... in at most this many refits.
_CLIP_ROUNDS = 3
#: A fit from every pair that leaves more than this share of them further than
#: ``INNER_TRIGGER_PX`` (px) ...
INNER_TRIGGER_SHARE = 0.2
INNER_TRIGGER_PX = 1.0
#: ... starts again from the pairs within each of these shares of the half-diagonal of
#: the centre (see :func:`_clipped_fit`: each start costs ~7 ms on a 62 deg field's 80
#: pairs, where the fit from every pair is right) ...
INNER_RHO = (0.5, 0.25)
#: ... when they are at least this share of the pairs ...
INNER_MIN_SHARE = 0.05
#: ... and a start is taken when its fit has this many times the inlier pairs of the
#: one taken before.
INNER_GAIN = 1.1
#: How far out (in half-diagonals) the term must be invertible: the corners and the
#: margin beyond the edges a solve accepts centroids in.
_REACH = 1.2
#: The rotation step of the finite differences (rad).
_STEP_RAD = 1e-6


def _design(xy: NDArray[np.float64], v_cat: NDArray[np.float64], R: NDArray[np.float64],
            f: float, parity: bool, proj: int, s: float):
    """Columns ``(u, u rho^2, u rho^4)`` stacked over both axes, and the centroids ``d``."""
    u = offsets(v_cat @ R.T, f, parity, proj)
    rho2 = (u[:, 0] ** 2 + u[:, 1] ** 2) / (s * s)
    A = np.empty((2 * len(xy), 3))
    A[:, 0] = u.ravel()
    A[:, 1] = A[:, 0] * np.repeat(rho2, 2)
    A[:, 2] = A[:, 1] * np.repeat(rho2, 2)
    return A, xy.ravel()


def _rss(A: NDArray[np.float64], d: NDArray[np.float64], terms: int) -> float | None:
    """The residual sum of squares of the least-squares fit of the scale and the first
    ``terms`` radial coefficients (``A``'s first ``terms + 1`` columns); None when the
    system is singular."""
    B = A[:, : terms + 1]
    try:
        c = np.linalg.solve(B.T @ B, B.T @ d)
    except np.linalg.LinAlgError:
        return None
    r = d - B @ c
    return float(r @ r)


def _f_stat(rss_without: float, rss_with: float, extra: int, dof: int) -> float:
    """The F statistic of ``extra`` terms leaving ``dof`` degrees of freedom."""
    if rss_with <= 0.0:
        return math.inf if rss_without > 0.0 else 0.0
    return (rss_without - rss_with) / extra / (rss_with / dof)


def _called_for(A: NDArray[np.float64], d: NDArray[np.float64]) -> bool:
    """Whether the pairs call for a radial term: ``k1`` against none, or ``k1`` with
    ``k2`` against none (a departure that steepens towards the edge fits ``k1`` alone
    poorly at first), each F statistic at least :data:`MIN_F`."""
    if not (np.isfinite(A).all() and np.isfinite(d).all()):
        return False
    rss = [_rss(A, d, terms) for terms in range(3)]
    if None in rss:
        return False
    # 2n coordinates less the attitude's 3 parameters (held at the plain solve's: the
    # test errs towards no term), the scale and the terms
    dof = len(d) - 4
    return (_f_stat(rss[0], rss[1], 1, dof - 1) >= MIN_F
            or _f_stat(rss[0], rss[2], 2, dof - 2) >= MIN_F)


def radial_camera(xy: NDArray[np.float64], v_cat: NDArray[np.float64], R: NDArray[np.float64],
                  f: float, parity: bool, camera: CameraModel, errors_rad: NDArray[np.float64],
                  free_centre: bool = True) -> tuple[CameraModel, NDArray[np.float64]] | None:
    """The camera with a radial term for matched pairs that call for one, or None.

    Parameters
    ----------
    xy : (n, 2) ndarray
        Matched centroids, pixel offsets from the optical centre (the solve's ideal
        lens: no distortion).
    v_cat : (n, 3) ndarray
        Their catalog stars' unit vectors (ICRS, apparent).
    R, f, parity
        The solve's attitude (ICRS to camera), focal length (px) and parity.
    camera : CameraModel
        The solve's undistorted camera (size, projection, optical centre).
    errors_rad : (n,) ndarray
        The pairs' residuals in the solve, radians.
    free_centre : bool
        Whether the optical centre may be fitted too (not where the caller told it).

    Returns
    -------
    (CameraModel, ndarray) or None
        The camera (focal length, parity and a
        :class:`~skysolve.camera.distortion.RadialDistortion`, coefficients in pixels)
        and the attitude fitted with it; None when the residuals do not call for
        a radial term (see the module notes) or its fit fails.
    """
    if not worth_testing(errors_rad, f):
        return None
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    called = _called_for(*_design(xy, v_cat, R, f, parity, camera.projection_code, s))
    if free_centre and _centre_testable(camera, f, len(xy)) and _centre_screen(
            xy, v_cat, R, f, parity, camera, s):
        free = _clipped_fit(xy, v_cat, R, f, parity, camera, True)
        if free is not None and centre_called_for(xy, v_cat, parity, camera, free):
            fitted = _camera(camera, free[1], parity, free[2], free[3], free[0])
            if fitted is not None:
                return fitted
    if not called:
        return None
    return fit_radial(xy, v_cat, R, f, parity, camera)


def _centre_testable(camera: CameraModel, f: float, n: int) -> bool:
    """Whether a solve's pairs can tell its optical centre: :data:`MIN_CENTRE_MATCHES` of
    them on a field whose corners lie :data:`MIN_CENTRE_ANGLE_DEG` or more off the axis."""
    if n < MIN_CENTRE_MATCHES:
        return False
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    theta = _proj.scalar_angle_of_radius(s / f, camera.projection_code)
    # (NaN: corners beyond the projection's reach, as an all-sky lens's)
    return not math.degrees(theta) < MIN_CENTRE_ANGLE_DEG


def _centre_screen(xy, v_cat, R, f, parity, camera, s) -> bool:
    """Whether one Gauss-Newton step from the plain solve, with and without the centre's
    shift, passes the centre's F test (:func:`centre_called_for`): a screen that spares
    most solves the full fits (~6 ms on a 62 deg field of 60 matches)."""
    D, J = _jacobian(v_cat, R, f, parity, camera.projection_code, s, 0.0, True)
    r = (xy - D).ravel()
    if not (np.isfinite(J).all() and np.isfinite(r).all()):
        return False
    rss = []
    for cols in (5, 7):
        step = np.linalg.lstsq(J[:, :cols], r, rcond=None)[0]
        e = r - J[:, :cols] @ step
        rss.append(float(e @ e))
    dof = len(r) - 7
    return dof > 0 and _f_stat(rss[0], rss[1], 2, dof) >= MIN_F


def centre_called_for(xy: NDArray[np.float64], v_cat: NDArray[np.float64], parity: bool,
                      camera: CameraModel, free: tuple) -> bool:
    """Whether the fit with the optical centre free (``free``: :func:`_clipped_fit`'s
    answer with it) explains the pairs so much better than the same fit about the
    solve's centre that the centre is called for: the F statistic of its two parameters
    over the pairs the free fit kept at least :data:`MIN_F`, and a shift within
    :data:`MAX_CENTRE_SHIFT` of the half-diagonal."""
    R, f, k1, shift, rss_free, keep = free
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    if not (_shift_held(shift, camera) and int(keep.sum()) >= MIN_CENTRE_MATCHES):
        return False
    held = _gauss_newton(xy[keep], v_cat[keep], R, f, parity, camera.projection_code, s, k1)
    if held is None:
        return False
    dof = 2 * int(keep.sum()) - 7
    return dof > 0 and _f_stat(held[4], rss_free, 2, dof) >= MIN_F


def worth_testing(errors_rad: NDArray[np.float64], f: float) -> bool:
    """Whether a solve's residuals (radians, one per matched pair, at focal length ``f``
    px) are many and large enough for :func:`radial_camera` to test them: at least
    :data:`MIN_MATCHES` pairs of at least :data:`MIN_RMS_PX` rms. Most solves are not,
    and a caller that asks first is spared gathering the pairs for it."""
    n = len(errors_rad)
    if n < MIN_MATCHES:
        return False
    # (the array method, not ``@``: numpy's matmul machinery, which nothing else runs in
    # most solves, made this line 2.4 % of a real frame's solve, the method 1.0 %)
    rss = float(errors_rad.dot(errors_rad))
    return math.sqrt(rss / n) * f >= MIN_RMS_PX


def offsets(v_cam: NDArray[np.float64], f: float, parity: bool, proj: int
            ) -> NDArray[np.float64]:
    """Ideal pixel offsets ``(n, 2)`` of camera-frame vectors at focal length ``f``."""
    qx, qy = _proj.vectors_to_plane(v_cam, proj)
    return np.stack([(-f if parity else f) * qx, f * qy], axis=1)


def _jacobian(v_cat, R, f, parity, proj, s, k1, centre):
    """The model's offsets ``D`` and its Jacobian ``(2n, 5)`` in (small rotation of the
    camera frame, ``ln f``, ``k1``), ``(2n, 7)`` with the optical centre's shift
    ``(cx, cy)`` (px) when ``centre`` -- the rotation's columns by finite differences
    through the projection (a turn ``w`` moves ``v`` by ``w x v``), the rest exact."""
    vc = v_cat @ R.T
    u = offsets(vc, f, parity, proj)
    rho2 = (u[:, 0] ** 2 + u[:, 1] ** 2) / (s * s)
    g = 1.0 + k1 * rho2
    dg = 2.0 * k1 / (s * s)  # d g / d |u|^2, times 2 below
    J = np.zeros((2 * len(u), 7 if centre else 5))
    for i in range(3):
        turned = vc + _STEP_RAD * np.cross(np.eye(3)[i], vc)
        du = (offsets(turned, f, parity, proj) - u) / _STEP_RAD
        J[:, i] = (g[:, None] * du + (dg * np.einsum("ij,ij->i", u, du))[:, None] * u).ravel()
    J[:, 3] = (u * (1.0 + 3.0 * k1 * rho2)[:, None]).ravel()
    J[:, 4] = (u * rho2[:, None]).ravel()
    if centre:  # (the centroids move with the centre, one pixel a pixel)
        J[0::2, 5] = 1.0
        J[1::2, 6] = 1.0
    return u * g[:, None], J


def _gauss_newton(xy, v_cat, R, f, parity, proj, s, k1, centre=False):
    """Attitude, focal length, ``k1`` and (``centre``) the optical centre's shift
    ``(cx, cy)`` (px; else zero) fitted to the pairs from a start (Gauss-Newton), with
    the residual sum of squares (px^2); None when a step is not finite."""
    from scipy.spatial.transform import Rotation

    shift = np.zeros(2)
    for _ in range(_ITERATIONS):
        D, J = _jacobian(v_cat, R, f, parity, proj, s, k1, centre)
        r = (xy - shift - D).ravel()
        if not (np.isfinite(J).all() and np.isfinite(r).all()):
            return None
        step = np.linalg.lstsq(J, r, rcond=None)[0]
        R = Rotation.from_rotvec(step[:3]).as_matrix() @ R
        f *= math.exp(step[3])
        k1 += float(step[4])
        if centre:
            shift += step[5:7]
        if np.max(np.abs(step)) < _TOLERANCE:
            break
    D = offsets(v_cat @ R.T, f, parity, proj)
    rho2 = (D[:, 0] ** 2 + D[:, 1] ** 2) / (s * s)
    r = xy - shift - D * (1.0 + k1 * rho2)[:, None]
    if not np.isfinite(r).all():
        return None
    return R, f, k1, shift, float(np.sum(r * r))


def fit_radial(xy: NDArray[np.float64], v_cat: NDArray[np.float64], R: NDArray[np.float64],
               f: float, parity: bool, camera: CameraModel, centre: bool = False
               ) -> tuple[CameraModel, NDArray[np.float64]] | None:
    """The camera with a radial term fitted to matched pairs and its attitude, or None
    when the fit fails or the term folds over inside the image; the arguments as
    :func:`radial_camera`'s, ``xy`` the centroids' offsets from the optical centre as
    measured; with ``centre``, the optical centre fitted too (see
    :func:`centre_called_for`).

    Gauss-Newton over attitude, focal length and ``k1``, refitted without the pairs
    further than :data:`CLIP_FACTOR` times the median residual (and 1 px): a wrong
    pair a plain solve kept within its inflated residuals would otherwise bend the
    term towards itself.
    """
    fitted = _clipped_fit(xy, v_cat, R, f, parity, camera, centre)
    if fitted is None:
        return None
    R, f, k1, shift, _, _ = fitted
    if not _shift_held(shift, camera):  # (a refit ran away)
        return None
    return _camera(camera, f, parity, k1, shift, R)


def _shift_held(shift: NDArray[np.float64], camera: CameraModel) -> bool:
    """Whether a fitted shift of the optical centre is within :data:`MAX_CENTRE_SHIFT` of
    the image's half-diagonal."""
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    return float(np.hypot(*shift)) <= MAX_CENTRE_SHIFT * s


def _clipped_fit(xy, v_cat, R, f, parity, camera, centre):
    """:func:`_gauss_newton` refitted without outlying pairs: ``(R, f, k1, shift, rss,
    kept pairs)``, or None when a fit fails or the focal length is not positive.

    The fit starts from every pair; when it leaves more than :data:`INNER_TRIGGER_SHARE`
    of them further than :data:`INNER_TRIGGER_PX` (a fit to the centroid noise of 0.5 px
    leaves 14 %), it starts again from those within each of :data:`INNER_RHO` of the
    centre (when they are at least :data:`INNER_MIN_SHARE` of them); a start is kept
    when its fit leaves :data:`INNER_GAIN` times as many pairs within the inlier misfit
    (:data:`CLIP_FACTOR` times the least median misfit of a fit's own pairs, and 1 px)
    as the one kept before.

    A strong term moves the outer stars of the plain solve by more than the spacing of a
    dense list: it matched many of them to a neighbour, and those wrong pairs, kept
    within four times a median the term itself inflates, pull the fit from every pair
    towards no term (65 deg fields of 4032 px, 19,000-20,000 pairs: with 2 % barrel
    distortion at the corners ``k1`` came out a seventh of the truth, with 5 % of the
    wrong sign; beyond 0.4 of the half-diagonal most pairs were wrong). Near the centre
    the plain solve is right to a pixel or two; the fit from there, clipped, takes in the
    outer pairs that are right and leaves the wrong ones.
    """
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    proj = camera.projection_code
    starts = [_clip_rounds(xy, v_cat, R, f, parity, proj, s, centre,
                           np.ones(len(xy), dtype=bool))]
    if starts[0] is not None and (np.count_nonzero(starts[0][1] > INNER_TRIGGER_PX)
                                  <= INNER_TRIGGER_SHARE * len(xy)):
        return _positive_focal(starts[0][0])  # (most fits: no other start wanted)
    u = offsets(v_cat @ R.T, f, parity, proj)
    rho = np.hypot(u[:, 0], u[:, 1]) / s
    least = max(MIN_CENTRE_MATCHES if centre else MIN_MATCHES, INNER_MIN_SHARE * len(xy))
    for reach in INNER_RHO:
        inner = rho <= reach
        if least <= np.count_nonzero(inner) < len(xy):
            starts.append(_clip_rounds(xy, v_cat, R, f, parity, proj, s, centre, inner))
    fits = [start for start in starts if start is not None]
    if not fits:
        return None
    best = fits[0]
    if len(fits) > 1:
        limit = max(CLIP_FACTOR * min(fit[2] for fit in fits), 1.0)
        best_n = np.count_nonzero(best[1] <= limit)
        for fit in fits[1:]:
            n = np.count_nonzero(fit[1] <= limit)
            if n > INNER_GAIN * best_n:
                best, best_n = fit, n
    return _positive_focal(best[0])


def _positive_focal(fitted: tuple) -> tuple | None:
    """``fitted`` (:func:`_clipped_fit`'s answer), or None when its focal length is not
    positive."""
    return fitted if math.isfinite(fitted[1]) and fitted[1] > 0 else None


def _clip_rounds(xy, v_cat, R, f, parity, proj, s, centre, keep):
    """:func:`_gauss_newton` from the pairs ``keep``, refitted to the pairs within
    :data:`CLIP_FACTOR` times the median misfit of those fitted (and 1 px), at most
    :data:`_CLIP_ROUNDS` times: ``((R, f, k1, shift, rss, pairs of the last fit), the
    misfits of all the pairs (px), the median misfit of the pairs of the last fit)``, or
    None when a fit fails."""
    k1, shift = 0.0, np.zeros(2)
    for _ in range(_CLIP_ROUNDS):
        fitted = _gauss_newton(xy[keep], v_cat[keep], R, f, parity, proj, s, k1, centre)
        if fitted is None:
            return None
        R, f, k1, shift, rss = fitted
        used = keep
        u = offsets(v_cat @ R.T, f, parity, proj)
        rho2 = (u[:, 0] ** 2 + u[:, 1] ** 2) / (s * s)
        miss = np.hypot(*(xy - shift - u * (1.0 + k1 * rho2)[:, None]).T)
        now = miss <= max(CLIP_FACTOR * float(np.median(miss[keep])), 1.0)
        if now.sum() < MIN_MATCHES or np.array_equal(now, keep):
            break
        keep = now
    return (R, f, k1, shift, rss, used), miss, float(np.median(miss[used]))


def _camera(camera: CameraModel, f: float, parity: bool, k1: float, shift: NDArray[np.float64],
            R: NDArray[np.float64]) -> tuple[CameraModel, NDArray[np.float64]] | None:
    """The fitted camera and attitude, or None when the term folds over inside the
    image."""
    s = 0.5 * math.hypot(camera.image_width, camera.image_height)
    # coefficients in pixels (scale 1), skysolve's convention for a distortion
    dist = RadialDistortion(k1 / s ** 2)
    # every centroid the solve takes must have an ideal position: up to the corners and
    # the margin beyond the edges the solve accepts
    if not np.isfinite(dist.undistort(_REACH * s, 0.0)[0]):
        return None
    crpix = np.asarray(camera.crpix, dtype=np.float64) + shift
    cam = CameraModel(f, camera.image_width, camera.image_height, crpix=crpix,
                      parity_flip=parity, projection=camera.projection, distortion=dist)
    return cam, R
