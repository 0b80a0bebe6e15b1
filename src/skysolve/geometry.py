"""Sky and attitude geometry shared by every stage of skysolve.

Conventions (see the package documentation):

* unit vectors are ICRS Cartesian, shape ``(..., 3)``, float64;
* angles passed in and out of public functions are degrees unless the name
  says ``_rad``;
* a rotation matrix ``R`` maps ICRS vectors into the camera frame
  (``v_cam = R @ v_icrs``); its rows are the camera +X, +Y, +Z axes expressed
  in ICRS, so ``R[2]`` is the boresight;
* quaternions are ``[w, x, y, z]`` (Hamilton, scalar first) for that same
  rotation;
* the camera frame is +X right, +Y down, +Z along the boresight; the
  tangent-plane coordinates of a camera-frame vector are ``(X/Z, Y/Z)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "radec_to_vector",
    "vector_to_radec",
    "angle_between",
    "angle_to_chord",
    "chord_to_angle",
    "wahba_rotation",
    "two_pair_rotation",
    "rotation_to_quaternion",
    "quaternion_to_rotation",
    "as_rotation_matrix",
    "rotation_to_radec_roll",
    "radec_roll_to_rotation",
    "north_east_basis",
    "signed_degrees",
    "attitude_covariance_on_sky",
    "camera_vectors_from_tanplane",
    "tanplane_from_camera_vectors",
]

def radec_to_vector(ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.float64]:
    """Unit vectors of sky positions.

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        Right ascension and declination in degrees (broadcast together).

    Returns
    -------
    ndarray, shape ``(..., 3)``
        ICRS unit vectors.
    """
    if isinstance(ra_deg, float) and isinstance(dec_deg, float):
        # one position (a hint, new every frame; a field centre): the same arithmetic in
        # ``math``, without stacking broadcast arrays or numpy's scalar ufuncs (2.8 -> 0.9
        # us; the same numbers as the array path on 300,000 random positions here)
        ra, dec = math.radians(ra_deg), math.radians(dec_deg)
        cd = math.cos(dec)
        return np.array([cd * math.cos(ra), cd * math.sin(ra), math.sin(dec)])
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    cd = np.cos(dec)
    return np.stack(np.broadcast_arrays(cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)), axis=-1)


def vector_to_radec(v: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Right ascension in [0, 360) and declination in [-90, 90] of vectors (degrees).

    The vectors need not be normalised.
    """
    v = np.asarray(v, dtype=np.float64)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    # % can return 360.0 for tiny negative inputs
    ra = np.where(ra >= 360.0, 0.0, ra)
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def angle_between(u: ArrayLike, v: ArrayLike) -> NDArray[np.float64]:
    """Angle between vectors in radians, accurate for tiny and near-pi angles."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    # (component by component: the same sums as np.cross, np.linalg.norm and np.sum, in
    # a third of their time on the tables of separations tracking's pair vote takes)
    u0, u1, u2 = u[..., 0], u[..., 1], u[..., 2]
    v0, v1, v2 = v[..., 0], v[..., 1], v[..., 2]
    c0, c1, c2 = u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0
    return np.arctan2(np.sqrt(c0 * c0 + c1 * c1 + c2 * c2), u0 * v0 + u1 * v1 + u2 * v2)


def angle_to_chord(angle_rad: ArrayLike) -> NDArray[np.float64]:
    """Chord length between unit vectors separated by ``angle_rad``."""
    return 2.0 * np.sin(0.5 * np.asarray(angle_rad, dtype=np.float64))


def chord_to_angle(chord: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`angle_to_chord` (radians)."""
    return 2.0 * np.arcsin(np.clip(0.5 * np.asarray(chord, dtype=np.float64), 0.0, 1.0))


def wahba_rotation(body: ArrayLike, ref: ArrayLike,
                   weights: ArrayLike | None = None) -> NDArray[np.float64]:
    """Least-squares rotation ``R`` with ``body ≈ R @ ref`` (Wahba's problem, SVD).

    Parameters
    ----------
    body, ref : array_like, shape ``(n, 3)`` or ``(k, n, 3)``
        Matching unit vectors in the target (camera) and source (ICRS) frames;
        a leading batch dimension solves ``k`` problems at once.
    weights : array_like, shape ``(n,)`` or ``(k, n)``, optional

    Returns
    -------
    ndarray, shape ``(3, 3)`` or ``(k, 3, 3)``
        Proper rotation matrices (determinant +1).
    """
    b = np.asarray(body, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if weights is not None:
        b = b * np.asarray(weights, dtype=np.float64)[..., None]
    B = np.swapaxes(b, -1, -2) @ r
    U, _, Vt = np.linalg.svd(B)
    R = U @ Vt
    if R.ndim == 2:
        # one problem: the determinant as a scalar triple product is much cheaper
        (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = R.tolist()
        if a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0) < 0:
            U[:, 2] *= -1.0
            R = U @ Vt
        return R
    # a reflection (det -1) means the best proper rotation flips the weakest axis
    flip = np.linalg.det(R) < 0
    if np.any(flip):
        U = U.copy()
        U[..., :, 2] *= np.where(flip, -1.0, 1.0)[..., None]
        R = U @ Vt
    return R


def two_pair_rotation(body: ArrayLike, ref: ArrayLike) -> NDArray[np.float64]:
    """:func:`wahba_rotation` of two equally weighted pairs, in closed form.

    The best rotation turns the normal of the reference pair's plane onto the body pair's,
    and the bisector of the reference pair onto the body pair's (the two pairs' errors
    then are equal and opposite): the rotation between the orthonormal frames (sum,
    difference and cross product of each pair) is the same as the SVD's to rounding, at a
    fraction of its cost.

    Parameters
    ----------
    body, ref : array_like, shape ``(k, 2, 3)``
        ``k`` problems of two unit vectors each, the two of a pair distinct and not
        opposite.

    Returns
    -------
    ndarray, shape ``(k, 3, 3)``
        Proper rotation matrices.
    """
    def frame(v: NDArray[np.float64]) -> NDArray[np.float64]:
        (x0, y0, z0), (x1, y1, z1) = v[:, 0].T, v[:, 1].T
        axes = np.stack([v[:, 0] + v[:, 1], v[:, 0] - v[:, 1],
                         np.stack([y0 * z1 - z0 * y1, z0 * x1 - x0 * z1, x0 * y1 - y0 * x1],
                                  axis=1)], axis=2)  # (k, 3 coordinates, 3 axes)
        return axes / np.sqrt(np.einsum("kij,kij->kj", axes, axes))[:, None, :]

    b = frame(np.asarray(body, dtype=np.float64))
    r = frame(np.asarray(ref, dtype=np.float64))
    return b @ np.swapaxes(r, 1, 2)


def rotation_to_quaternion(R: ArrayLike) -> NDArray[np.float64]:
    """``[w, x, y, z]`` quaternion of rotation matrices ``(..., 3, 3)``, canonical: w > 0,
    or, when w = 0, the first non-zero component positive.

    Shepperd's method: the component of largest magnitude comes from the diagonal (a
    square root well away from zero), the other three from sums and differences of the
    off-diagonal terms divided by it, so no rotation loses precision. ``R`` must be a
    rotation (orthonormal, det +1); numpy only, so that writing a result does not load
    scipy.spatial.
    """
    R = np.asarray(R, dtype=np.float64)
    r = R.reshape(-1, 3, 3)
    d0, d1, d2 = r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]
    # 4 q_k^2 for k = w, x, y, z
    sq = np.stack([1.0 + d0 + d1 + d2, 1.0 + d0 - d1 - d2, 1.0 - d0 + d1 - d2,
                   1.0 - d0 - d1 + d2], axis=1)
    k = np.argmax(sq, axis=1)
    s = 2.0 * np.sqrt(np.maximum(sq[np.arange(len(r)), k], 0.0))  # 4 |q_k|
    a = r[:, 2, 1] - r[:, 1, 2]  # 4 w x
    b = r[:, 0, 2] - r[:, 2, 0]  # 4 w y
    c = r[:, 1, 0] - r[:, 0, 1]  # 4 w z
    xy, xz, yz = r[:, 0, 1] + r[:, 1, 0], r[:, 0, 2] + r[:, 2, 0], r[:, 1, 2] + r[:, 2, 1]
    rows = np.stack([np.stack([0.25 * s, a / s, b / s, c / s], axis=1),
                     np.stack([a / s, 0.25 * s, xy / s, xz / s], axis=1),
                     np.stack([b / s, xy / s, 0.25 * s, yz / s], axis=1),
                     np.stack([c / s, xz / s, yz / s, 0.25 * s], axis=1)], axis=1)
    q = rows[np.arange(len(r)), k]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    lead = q[np.arange(len(q)), np.argmax(q != 0.0, axis=1)]
    q *= np.where(lead < 0.0, -1.0, 1.0)[:, None]
    return q.reshape(R.shape[:-2] + (4,))


def quaternion_to_rotation(q: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices of ``[w, x, y, z]`` quaternions (normalised first)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(np.asarray(q, dtype=np.float64), scalar_first=True).as_matrix()


def as_rotation_matrix(attitude: ArrayLike, name: str = "attitude") -> NDArray[np.float64]:
    """Accept a ``[w, x, y, z]`` quaternion or a 3×3 matrix and return the matrix.

    Raises
    ------
    ValueError
        If ``attitude`` is neither, is not finite, or the matrix is not a rotation.
    """
    from .errors import InvalidArgumentError, InvalidTypeError

    try:
        a = np.asarray(attitude, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"{name} must be a [w, x, y, z] quaternion or a 3x3 rotation matrix, got "
            f"{type(attitude).__name__}") from None
    if a.shape == (3, 3):
        # (scalar checks: a tracking solve passes one every frame, and numpy's reductions
        # and product of 3x3 arrays cost ~5 us)
        (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = rows = a.tolist()
        if not all(math.isfinite(x) for row in rows for x in row):
            raise InvalidArgumentError(f"{name} must be finite")
        det = a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0)
        # the largest entry of R R^T - I
        off = max(abs(a0 * a0 + a1 * a1 + a2 * a2 - 1.0), abs(b0 * b0 + b1 * b1 + b2 * b2 - 1.0),
                  abs(c0 * c0 + c1 * c1 + c2 * c2 - 1.0), abs(a0 * b0 + a1 * b1 + a2 * b2),
                  abs(a0 * c0 + a1 * c1 + a2 * c2), abs(b0 * c0 + b1 * c1 + b2 * c2))
        if off > 1e-6 or det < 0:
            raise InvalidArgumentError(f"{name} must be a proper rotation matrix")
        return a
    if not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"{name} must be finite")
    if a.shape == (4,):
        n = np.linalg.norm(a)
        if n < 1e-12:
            raise InvalidArgumentError(f"{name} quaternion must be non-zero")
        return quaternion_to_rotation(a / n)
    raise InvalidArgumentError(
        f"{name} must be a [w, x, y, z] quaternion or a 3x3 rotation matrix, got shape {a.shape}")


def north_east_basis(v: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Local north and east unit vectors at sky directions ``v`` (``(..., 3)``).

    At the poles, where they are undefined, north is taken along -X (RA 0
    meridian convention of ``vector_to_radec``) and east along +Y.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.shape == (3,):
        return _north_east_single(v)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    z = np.array([0.0, 0.0, 1.0])
    east = np.cross(z, v)
    n = np.linalg.norm(east, axis=-1, keepdims=True)
    pole = n[..., 0] < 1e-12
    east = np.where(pole[..., None], np.array([0.0, 1.0, 0.0]), east / np.where(n == 0, 1, n))
    north = np.cross(v, east)
    return north, east


def _north_east_single(v: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                          NDArray[np.float64]]:
    """:func:`north_east_basis` of one vector in scalar math (the solver calls it once per
    solve, where numpy's per-call overhead on 3-vectors took 0.1 ms): the same products
    and sums as the array path (the norm's squares summed in order, as numpy's ``sum``:
    ``v @ v``, the BLAS's dot, sums them in an order its kernel for the processor picks),
    so the same numbers."""
    x, y, z = v.tolist()
    n = math.sqrt(x * x + y * y + z * z)
    vx, vy, vz = (v / n).tolist()
    e = math.sqrt(vy * vy + vx * vx)  # |z x v|
    if e < 1e-12:
        ex, ey, ez = 0.0, 1.0, 0.0
    else:
        ex, ey, ez = -vy / e, vx / e, 0.0
    north = np.array([vy * ez - vz * ey, vz * ex - vx * ez, vx * ey - vy * ex])
    return north, np.array([ex, ey, ez])


def rotation_to_radec_roll(R: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                   NDArray[np.float64]]:
    """Boresight RA, Dec and roll (degrees) of ICRS→camera rotations ``(..., 3, 3)``.

    Roll is the position angle of camera +Y measured from North through East,
    in [0, 360).
    """
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (3, 3):
        return _radec_roll_single(R)
    bore = R[..., 2, :]
    y_axis = R[..., 1, :]
    ra, dec = vector_to_radec(bore)
    north, east = north_east_basis(bore)
    roll = np.degrees(np.arctan2(np.sum(y_axis * east, -1), np.sum(y_axis * north, -1))) % 360.0
    roll = np.where(roll >= 360.0, 0.0, roll)
    return ra, dec, roll


def _radec_roll_single(R: NDArray[np.float64]) -> tuple[float, float, float]:
    """:func:`rotation_to_radec_roll` for one matrix, in scalar math (hot in the solver)."""
    _, (yx, yy, yz), (bx, by, bz) = R.tolist()
    ra = math.degrees(math.atan2(by, bx)) % 360.0
    dec = math.degrees(math.atan2(bz, math.hypot(bx, by)))
    n = math.hypot(bx, by)
    if n < 1e-12:  # pole: the same conventions as north_east_basis
        ex, ey, ez = 0.0, 1.0, 0.0
    else:
        ex, ey, ez = -by / n, bx / n, 0.0
    # north = bore x east
    nx, ny, nz = by * ez - bz * ey, bz * ex - bx * ez, bx * ey - by * ex
    roll = math.degrees(math.atan2(yx * ex + yy * ey + yz * ez,
                                   yx * nx + yy * ny + yz * nz)) % 360.0
    return (ra if ra < 360.0 else 0.0), dec, (roll if roll < 360.0 else 0.0)


def signed_degrees(angle_deg: float) -> float:
    """An angle in degrees wrapped into (-180, 180] (the range of ``atan2``)."""
    return 180.0 - (180.0 - float(angle_deg)) % 360.0


def attitude_covariance_on_sky(R: ArrayLike, cov_camera: ArrayLike) -> NDArray[np.float64]:
    """Attitude covariance about the camera axes → ``[theta, xi0, eta0]`` (rad²).

    ``cov_camera`` is the covariance of a small rotation ``w`` about the
    camera X, Y, Z axes of the attitude ``R`` (ICRS→camera). The result is
    the covariance of the parameters tetra3rs reports: ``theta``, the roll in
    the tangent plane (angle from East to camera +X, counter-clockwise), and
    ``xi0``, ``eta0``, the boresight's offsets East and North in the tangent
    plane at the solution.

    A perturbation ``v_cam -> v_cam + w x v_cam`` moves the boresight
    ``b = R^T e_z`` by ``-w_y X + w_x Y`` (``X``, ``Y``: the camera axes in
    ICRS, the rows of ``R``) and turns camera +X towards -Y by ``w_z``; since
    (X, Y) and (East, North) turn the same way about ``b``, ``d theta = -w_z``.
    So with ``J`` the Jacobian of ``(theta, xi0, eta0)`` by ``w``, the
    covariance is ``J C J^T``.
    """
    R = np.asarray(R, dtype=np.float64)
    C = np.asarray(cov_camera, dtype=np.float64)
    if R.shape != (3, 3) or C.shape != (3, 3):
        from .errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"R and cov_camera must be 3x3 matrices, got shapes {R.shape} and {C.shape}")
    # scalar math: the solver calls this once per solve, where numpy's per-call overhead
    # on 3x3 products took ~9 us of a ~250 us solve
    (xx, xy, xz), (yx, yy, yz), (bx, by, bz) = R.tolist()
    nb = math.sqrt(bx * bx + by * by + bz * bz)
    bx, by, bz = bx / nb, by / nb, bz / nb
    e = math.sqrt(by * by + bx * bx)
    if e < 1e-12:  # pole: the conventions of north_east_basis
        ex, ey, ez = 0.0, 1.0, 0.0
    else:
        ex, ey, ez = -by / e, bx / e, 0.0
    nx, ny, nz = by * ez - bz * ey, bz * ex - bx * ez, bx * ey - by * ex
    # the rows of J (the first is (0, 0, -1)) applied to C and to J^T
    j1 = (yx * ex + yy * ey + yz * ez, -(xx * ex + xy * ey + xz * ez))
    j2 = (yx * nx + yy * ny + yz * nz, -(xx * nx + xy * ny + xz * nz))
    (c00, c01, c02), (c10, c11, c12), (c20, c21, c22) = C.tolist()
    # J C: row 0 is -C[2]; rows 1, 2 combine C's first two rows
    m1 = (j1[0] * c00 + j1[1] * c10, j1[0] * c01 + j1[1] * c11, j1[0] * c02 + j1[1] * c12)
    m2 = (j2[0] * c00 + j2[1] * c10, j2[0] * c01 + j2[1] * c11, j2[0] * c02 + j2[1] * c12)
    return np.array([
        [c22, -(c20 * j1[0] + c21 * j1[1]), -(c20 * j2[0] + c21 * j2[1])],
        [-m1[2], m1[0] * j1[0] + m1[1] * j1[1], m1[0] * j2[0] + m1[1] * j2[1]],
        [-m2[2], m2[0] * j1[0] + m2[1] * j1[1], m2[0] * j2[0] + m2[1] * j2[1]]])


def radec_roll_to_rotation(ra_deg: ArrayLike, dec_deg: ArrayLike,
                           roll_deg: ArrayLike) -> NDArray[np.float64]:
    """ICRS→camera rotation with boresight at (ra, dec) and camera +Y at position angle roll.

    The camera +X axis completes a right-handed frame (+X = +Y × +Z).
    """
    bore = radec_to_vector(ra_deg, dec_deg)
    north, east = north_east_basis(bore)
    roll = np.radians(np.asarray(roll_deg, dtype=np.float64))[..., None]
    y_axis = np.cos(roll) * north + np.sin(roll) * east
    x_axis = np.cross(y_axis, bore)
    return np.stack([x_axis, y_axis, bore], axis=-2)


def camera_vectors_from_tanplane(xi: ArrayLike, eta: ArrayLike) -> NDArray[np.float64]:
    """Unit camera-frame vectors of tangent-plane points ``(X/Z, Y/Z)``."""
    xi, eta = np.broadcast_arrays(np.asarray(xi, dtype=np.float64),
                                  np.asarray(eta, dtype=np.float64))
    v = np.empty(xi.shape + (3,))
    v[..., 0] = xi
    v[..., 1] = eta
    v[..., 2] = 1.0
    v /= np.sqrt(1.0 + xi * xi + eta * eta)[..., None]
    return v


def tanplane_from_camera_vectors(v: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tangent-plane coordinates ``(X/Z, Y/Z)`` of camera-frame vectors.

    Points behind the camera (Z ≤ 0) give NaN.
    """
    v = np.asarray(v, dtype=np.float64)
    z = v[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        inv = np.where(z > 0, 1.0 / z, np.nan)
    return v[..., 0] * inv, v[..., 1] * inv
