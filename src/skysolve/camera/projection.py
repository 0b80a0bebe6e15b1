"""Lens projections: how the angle from the optical axis becomes a radius on the detector.

A direction at angle ``theta`` from the optical axis (camera +Z) and azimuth
``phi`` around it is imaged at radius ``r = f * g(theta)`` from the optical
centre, at the same azimuth, for a focal length ``f`` in pixels. The
*projection plane* coordinates of the direction are the dimensionless
``p = g(theta) * (cos phi, sin phi)``, so an ideal (undistorted) pixel offset
is ``f * p`` (with x negated for mirrored images, see :mod:`skysolve.camera.model`).

=================  ===================  ===================  ==================
projection         ``g(theta)``         valid ``theta``      FITS code
=================  ===================  ===================  ==================
``pinhole``        ``tan(theta)``       ``[0, 90°)``         ``TAN`` (gnomonic)
``equidistant``    ``theta``            ``[0, 180°]``        ``ARC``
``equisolid``      ``2 sin(theta/2)``   ``[0, 180°]``        ``ZEA``
``stereographic``  ``2 tan(theta/2)``   ``[0, 180°)``        ``STG``
``orthographic``   ``sin(theta)``       ``[0, 90°]``         ``SIN``
=================  ===================  ===================  ==================

For the pinhole projection ``p`` is the tangent plane ``(X/Z, Y/Z)``. All five
agree to first order near the axis (``g(theta) ≈ theta``). Directions outside a
projection's domain, and plane points outside its image (orthographic
``|p| > 1``, equisolid ``|p| > 2``), map to NaN, never to a wrong number.

The array functions work on numpy arrays; :func:`scalar_radius_of_angle` and
:func:`scalar_angle_of_radius` are their scalar twins in plain ``math``, which
the solver's compiled backend compiles with numba (the tests check both agree).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..geometry import camera_vectors_from_tanplane, tanplane_from_camera_vectors

__all__ = [
    "PROJECTIONS",
    "FITS_CODES",
    "code_of",
    "radius_of_angle",
    "angle_of_radius",
    "plane_to_vectors",
    "vectors_to_plane",
    "focal_from_fov",
    "fov_from_focal",
    "max_angle",
    "max_radius",
    "scalar_radius_of_angle",
    "scalar_angle_of_radius",
]

#: The projections, in the order of their integer codes (0: pinhole, ...).
PROJECTIONS = ("pinhole", "equidistant", "equisolid", "stereographic", "orthographic")
#: The code of each name as listed in :data:`PROJECTIONS`.
_CODES = {name: code for code, name in enumerate(PROJECTIONS)}
#: FITS WCS projection code of each projection (by name).
FITS_CODES = {"pinhole": "TAN", "equidistant": "ARC", "equisolid": "ZEA",
              "stereographic": "STG", "orthographic": "SIN"}
PINHOLE, EQUIDISTANT, EQUISOLID, STEREOGRAPHIC, ORTHOGRAPHIC = range(5)
#: Largest angle from the axis each projection images, radians (by code).
_MAX_ANGLE = (0.5 * math.pi, math.pi, math.pi, math.pi, 0.5 * math.pi)
#: Largest projection-plane radius of an imaged direction (by code).
_MAX_RADIUS = (math.inf, math.pi, 2.0, math.inf, 1.0)


def code_of(projection: str, name: str = "projection") -> int:
    """The integer code of a projection name (checked)."""
    code = _CODES.get(projection) if type(projection) is str else None
    if code is not None:  # a name as listed (every solve asks twice: ~1 us of checks)
        return code
    return PROJECTIONS.index(_args.choice(projection, name, PROJECTIONS))


def max_angle(code: int) -> float:
    """Largest angle from the optical axis the projection images, radians."""
    return _MAX_ANGLE[code]


def max_radius(code: int) -> float:
    """Largest projection-plane radius of an imaged direction (``inf`` when unbounded)."""
    return _MAX_RADIUS[code]


def radius_of_angle(theta: ArrayLike, code: int) -> NDArray[np.float64]:
    """``g(theta)``: the radius on the projection plane of angle ``theta`` (radians).

    NaN outside the projection's domain.
    """
    t = np.asarray(theta, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if code == PINHOLE:
            g = np.tan(t)
            bad = t >= 0.5 * math.pi
        elif code == EQUIDISTANT:
            g = t.copy() if t.ndim else t * 1.0
            bad = t > math.pi
        elif code == EQUISOLID:
            g = 2.0 * np.sin(0.5 * t)
            bad = t > math.pi
        elif code == STEREOGRAPHIC:
            g = 2.0 * np.tan(0.5 * t)
            bad = t >= math.pi
        else:
            g = np.sin(t)
            bad = t > 0.5 * math.pi
    return np.where(bad | (t < 0), np.nan, g)


def scalar_radius_of_angle(theta: float, code: int) -> float:
    """:func:`radius_of_angle` of one angle ``theta >= 0`` (plain ``math``, numba-compilable)."""
    if code == PINHOLE:
        return math.tan(theta) if theta < 0.5 * math.pi else math.nan
    if code == EQUIDISTANT:
        return theta if theta <= math.pi else math.nan
    if code == EQUISOLID:
        return 2.0 * math.sin(0.5 * theta) if theta <= math.pi else math.nan
    if code == STEREOGRAPHIC:
        return 2.0 * math.tan(0.5 * theta) if theta < math.pi else math.nan
    return math.sin(theta) if theta <= 0.5 * math.pi else math.nan


def scalar_angle_of_radius(rho: float, code: int) -> float:
    """:func:`angle_of_radius` of one radius ``rho >= 0`` (plain ``math``, numba-compilable)."""
    if code == PINHOLE:
        return math.atan(rho)
    if code == EQUIDISTANT:
        return rho if rho <= math.pi else math.nan
    if code == EQUISOLID:
        return 2.0 * math.asin(0.5 * rho) if rho <= 2.0 else math.nan
    if code == STEREOGRAPHIC:
        return 2.0 * math.atan(0.5 * rho)
    return math.asin(rho) if rho <= 1.0 else math.nan


def angle_of_radius(rho: ArrayLike, code: int) -> NDArray[np.float64]:
    """The angle from the axis (radians) of radius ``rho`` on the projection plane.

    Inverse of :func:`radius_of_angle`; NaN where no direction has that radius.
    """
    r = np.asarray(rho, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if code == PINHOLE:
            t = np.arctan(r)
        elif code == EQUIDISTANT:
            t = np.where(r <= math.pi, r, np.nan)
        elif code == EQUISOLID:
            t = 2.0 * np.arcsin(0.5 * r)
        elif code == STEREOGRAPHIC:
            t = 2.0 * np.arctan(0.5 * r)
        else:
            t = np.arcsin(r)
    return np.where(r < 0, np.nan, t)


def plane_to_vectors(px: ArrayLike, py: ArrayLike, code: int) -> NDArray[np.float64]:
    """Unit camera-frame vectors ``(..., 3)`` of projection-plane points (NaN outside).

    For the pinhole projection this is ``(px, py, 1)`` normalised.
    """
    px, py = np.broadcast_arrays(np.asarray(px, dtype=np.float64),
                                 np.asarray(py, dtype=np.float64))
    if code == PINHOLE:
        return camera_vectors_from_tanplane(px, py)
    v = np.empty(px.shape + (3,))
    rho = np.hypot(px, py)
    theta = angle_of_radius(rho, code)
    with np.errstate(invalid="ignore", divide="ignore"):
        # sin(theta) / rho -> 1 at the axis
        k = np.where(rho > 0, np.sin(theta) / np.where(rho > 0, rho, 1.0), 1.0)
    k = np.where(np.isfinite(theta), k, np.nan)
    v[..., 0] = k * px
    v[..., 1] = k * py
    v[..., 2] = np.cos(theta)
    return v


def vectors_to_plane(v: ArrayLike, code: int) -> tuple[NDArray[np.float64],
                                                         NDArray[np.float64]]:
    """Projection-plane coordinates of camera-frame vectors ``(..., 3)`` (any length).

    NaN for directions the projection does not image (for the pinhole and
    orthographic projections, those at or behind 90° from the axis).
    """
    if code == PINHOLE:
        return tanplane_from_camera_vectors(v)
    v = np.asarray(v, dtype=np.float64)
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.hypot(x, y)
        theta = np.arctan2(s, z)  # accurate at every angle, unlike arccos(z / |v|)
        rho = radius_of_angle(theta, code)
        # on the axis the point is the centre; straight behind it (s = 0, z < 0) it is
        # the whole circle |p| = g(180°) with no azimuth: no single point
        k = np.where(s > 0, rho / np.where(s > 0, s, 1.0), np.where(z > 0, 0.0, np.nan))
    k = np.where(np.isfinite(rho), k, np.nan)
    return k * x, k * y


def fov_from_focal(f: float, width: float, code: int) -> float:
    """Horizontal field of view (radians) across ``width`` pixels at focal length ``f``.

    A width reaching beyond the projection's image (equisolid ``2 f``, equidistant
    ``f pi``, orthographic ``f`` from the axis) sees all it images: twice its largest
    angle (as :attr:`CameraModel.fov_deg <skysolve.camera.model.CameraModel.fov_deg>`).
    """
    rho = 0.5 * width / f
    if rho >= _MAX_RADIUS[code]:  # (NaN from the inverse beyond it: an 8 mm fisheye)
        return 2.0 * _MAX_ANGLE[code]
    return 2.0 * scalar_angle_of_radius(rho, code)


def focal_from_fov(fov: float, width: float, code: int) -> float:
    """Focal length (pixels) whose horizontal field of view across ``width`` is ``fov`` rad."""
    return 0.5 * width / scalar_radius_of_angle(0.5 * fov, code)
