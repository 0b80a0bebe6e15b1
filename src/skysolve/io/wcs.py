"""Bridge between :class:`~skysolve.camera.model.CameraModel` + attitude and astropy WCS.

Pixel conventions
-----------------
skysolve uses centred pixel coordinates (origin at the geometric image
centre, +y down: ``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``). FITS / astropy
use 1-based pixels ``p1 = col + 1``, ``p2 = row + 1`` with the *same* axis
directions, so ``x = p1 - 0.5 - W/2`` and ``y = p2 - 0.5 - H/2`` (astropy's
0-based "pixel" arguments are ``p - 1``). There is no y flip.

A camera image may be a cut-out of the frame the WCS describes (e.g. the
2048×2048 science area of a TESS full-frame image, whose first 44 columns are
overscan). ``pixel_offset=(dx, dy)`` gives the 0-based column and row, in the
WCS's pixel grid, of the camera image's first pixel: for
``science = ffi[:2048, 44:2092]`` use ``pixel_offset=(44, 0)``.

Mapping
-------
For an ICRS→camera rotation ``R`` (rows: camera +X, +Y, +Z in ICRS) the WCS
has CRVAL at the boresight ``R[2]``, CRPIX at the optical centre
(``camera.crpix``) and ``CD = (180/π) · M · diag(±1, 1) / f`` where ``M`` holds
the camera X, Y axes projected on the intermediate (East, North-like) axes
of the projection at CRVAL. Distortion becomes SIP: A/B (pixel →
ideal) and AP/BP (ideal → pixel), in pixels relative to CRPIX.

Projections
-----------
Each lens projection of :mod:`skysolve.camera.projection` is a FITS zenithal
projection with its reference point at the native pole (CRVAL = boresight):
``pinhole`` → ``TAN``, ``equidistant`` → ``ARC``, ``equisolid`` → ``ZEA``,
``stereographic`` → ``STG``, ``orthographic`` → ``SIN`` (with ``PV2_1 =
PV2_2 = 0``). In all five the native radius of a direction at angle ``θ``
from the axis is ``R_θ = (180/π) g(θ)`` degrees, with the same ``g`` as the
camera's projection-plane radius, so the intermediate world coordinates are
``(180/π)`` times the projection-plane coordinates and one CD matrix serves
every projection; SIP (``RA---ARC-SIP`` etc.) acts on pixels before CD, as
the camera's distortion does. Directions outside a projection's domain
(beyond 90° for TAN and SIN, beyond a fisheye's image circle) have no pixel.

Parity: with these conventions an image whose ``det(CD) > 0`` is *not* a
mirror image (``parity_flip=False``), ``det(CD) < 0`` is (``parity_flip=True``).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..camera import projection as _proj
from ..camera.distortion import (
    MAX_POLYNOMIAL_ORDER,
    PolynomialDistortion,
    RadialDistortion,
    num_polynomial_terms,
    polynomial_design_matrix,
    polynomial_terms,
)
from ..camera.model import CameraModel
from ..errors import InvalidArgumentError, InvalidTypeError, warn_caller
from ..geometry import as_rotation_matrix, radec_to_vector, vector_to_radec, wahba_rotation

__all__ = ["camera_to_wcs", "wcs_to_camera", "wcs_to_header", "replace_wcs", "fit_sip_wcs",
           "MAX_SIP_ORDER",
           "move_reference_pixel"]

#: Highest SIP order written by :func:`camera_to_wcs` (the SIP convention's limit).
MAX_SIP_ORDER = 9

# L (the non-conformal remainder of CD) below this is rounding noise: no distortion
_LINEAR_EPS = 1e-12
#: Lens projection of each FITS projection code that :func:`wcs_to_camera` reads.
_PROJECTION_OF_CODE = {code: name for name, code in _proj.FITS_CODES.items()}


def _check_offset(pixel_offset: ArrayLike) -> NDArray[np.float64]:
    try:
        off = np.array(pixel_offset, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"pixel_offset must be two numbers (dx, dy), got "
                               f"{pixel_offset!r}") from exc
    if off.shape != (2,) or not np.all(np.isfinite(off)):
        raise InvalidArgumentError(
            f"pixel_offset must be two finite numbers (dx, dy), got {pixel_offset!r}")
    return off


def _intermediate_axes(ra_deg: float, dec_deg: float, lonpole: float | None = None,
                       latpole: float | None = None) -> tuple[NDArray[np.float64], ...]:
    """Boresight and the ICRS directions of the intermediate axes x, y at CRVAL.

    Derived from astropy itself (so LONPOLE, poles and sign conventions are
    whatever astropy/wcslib use): a gnomonic point at intermediate (x, y)
    degrees lies along ``B + (π/180)(x I1 + y I2)``. The axes are those of
    every zenithal projection with the same CRVAL, LONPOLE and LATPOLE (they
    differ only in the native radius).
    """
    from astropy.wcs import WCS

    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.crpix = [0.0, 0.0]
    w.wcs.cd = np.eye(2)
    if lonpole is not None and np.isfinite(lonpole):
        w.wcs.lonpole = lonpole
    if latpole is not None and np.isfinite(latpole):
        w.wcs.latpole = latpole
    world = w.wcs_pix2world(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 1)
    v = radec_to_vector(world[:, 0], world[:, 1])
    b = v[0]
    t1 = v[1] / (v[1] @ b) - b
    t2 = v[2] / (v[2] @ b) - b
    i1 = t1 / np.linalg.norm(t1)
    t2 = t2 - (t2 @ i1) * i1
    i2 = t2 / np.linalg.norm(t2)
    return b, i1, i2


def _image_grid(width: int, height: int, centre: NDArray[np.float64], n: int = 49,
                margin: float = 0.02) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Grid of pixel offsets from ``centre`` (centred px) covering the image plus a margin."""
    hw, hh = 0.5 * width * (1 + 2 * margin), 0.5 * height * (1 + 2 * margin)
    gx, gy = np.meshgrid(np.linspace(-hw, hw, n) - centre[0], np.linspace(-hh, hh, n) - centre[1])
    return gx.ravel(), gy.ravel()


def _to_sip_matrix(coeffs: NDArray[np.float64], order: int, scale: float,
                   size: int) -> NDArray[np.float64]:
    """Normalised polynomial coefficients → SIP matrix ``m[p, q]`` in pixel units."""
    m = np.zeros((size + 1, size + 1))
    for (p, q), c in zip(polynomial_terms(order), coeffs, strict=True):
        m[p, q] = c / scale ** (p + q)
    return m


#: A SIP fit missing ``sip_tolerance_px`` is reported when it misses by more than this
#: (strong radial and fisheye distortion: 0.06-0.35 px), not for a few thousandths.
_SIP_WARN_PX = 0.01


def _fit_sip(src_u: NDArray[np.float64], src_v: NDArray[np.float64], dst_u: NDArray[np.float64],
             dst_v: NDArray[np.float64], scale: float, min_order: int, tol: float) -> tuple[
                 NDArray[np.float64], NDArray[np.float64], int]:
    """SIP matrices (pixel units) fitting ``dst - src`` as polynomials of ``src``.

    Tries orders ``min_order .. MAX_SIP_ORDER`` and keeps the first whose
    largest residual is below ``tol`` px (else the best one).
    """
    ok = np.isfinite(src_u) & np.isfinite(src_v) & np.isfinite(dst_u) & np.isfinite(dst_v)
    su, sv, du, dv = src_u[ok], src_v[ok], dst_u[ok] - src_u[ok], dst_v[ok] - src_v[ok]
    best = None
    for order in range(max(min_order, 2), MAX_SIP_ORDER + 1):
        if su.size < 2 * num_polynomial_terms(order):
            break
        m = polynomial_design_matrix(su, sv, order, scale)
        sol = np.linalg.lstsq(m, np.stack([du, dv], 1), rcond=None)[0]
        res = float(np.max(np.hypot(m @ sol[:, 0] - du, m @ sol[:, 1] - dv)))
        if best is None or res < best[0]:
            best = (res, order, sol)
        if res <= tol:
            break
    if best is None:
        raise InvalidArgumentError("too few invertible grid points to fit a SIP polynomial")
    worst, order, sol = best
    if worst > max(tol, _SIP_WARN_PX):
        warn_caller(f"the SIP polynomial of order {order} reproduces the camera's distortion "
                    f"to {worst:.2g} px at worst, not the {tol:g} px asked "
                    f"(sip_tolerance_px): a SIP header cannot hold it more closely",
                    UserWarning)
    return (_to_sip_matrix(sol[:, 0], order, scale, order),
            _to_sip_matrix(sol[:, 1], order, scale, order), order)


def _pad(m: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    out = np.zeros((size + 1, size + 1))
    out[: m.shape[0], : m.shape[1]] = m
    return out


def _sip_for_camera(camera: CameraModel, tol: float) -> tuple[NDArray[np.float64], ...] | None:
    """SIP ``a, b, ap, bp`` matrices equivalent to the camera's distortion (or None)."""
    dist = camera.distortion
    if dist is None or dist.is_identity:
        return None
    c = np.asarray(camera.crpix)
    w, h = camera.image_width, camera.image_height
    du, dv = _image_grid(w, h, c)
    iu, iv = dist.undistort(du, dv)
    # ideal-side grid for the ideal -> pixel direction, covering the same image
    ju, jv = np.asarray(iu), np.asarray(iv)
    ok = np.isfinite(ju) & np.isfinite(jv)
    ju, jv = ju[ok], jv[ok]
    ku, kv = dist.distort(ju, jv)
    norm = 0.5 * max(w, h)
    if isinstance(dist, PolynomialDistortion):
        order, s = dist.order, dist.scale

        def exact(cu, cv, su, sv, tu, tv):
            m = polynomial_design_matrix(su, sv, order, s)
            res = np.hypot(su + m @ cu - tu, sv + m @ cv - tv)
            res = res[np.isfinite(res)]
            return float(res.max()) if res.size else np.inf

        candidates = []
        for (cu, cv), (su, sv, tu, tv) in (((dist.ap_coeffs, dist.bp_coeffs), (du, dv, iu, iv)),
                                           ((dist.a_coeffs, dist.b_coeffs), (ju, jv, ku, kv))):
            if exact(cu, cv, su, sv, tu, tv) <= tol:
                size = max(order, 2)
                candidates.append((_to_sip_matrix(cu, order, s, size),
                                   _to_sip_matrix(cv, order, s, size), size))
            else:
                candidates.append(_fit_sip(su, sv, np.asarray(tu), np.asarray(tv), norm,
                                           order, tol))
    elif isinstance(dist, RadialDistortion):
        candidates = [_fit_sip(du, dv, np.asarray(iu), np.asarray(iv), norm, 2, tol),
                      _fit_sip(ju, jv, np.asarray(ku), np.asarray(kv), norm, 2, tol)]
    else:  # pragma: no cover - CameraModel validates the type
        raise InvalidTypeError(f"unsupported distortion {type(dist).__name__}")
    (a, b, oa), (ap, bp, oap) = candidates
    return a, b, ap, bp


def camera_to_wcs(camera: CameraModel, rotation: ArrayLike, *,
                  pixel_offset: ArrayLike = (0.0, 0.0), sip_tolerance_px: float = 1e-5):
    """astropy WCS equivalent to a camera model at an attitude.

    Parameters
    ----------
    camera : CameraModel
    rotation : array_like
        ICRS→camera rotation: 3×3 matrix (rows = camera axes in ICRS) or a
        ``[w, x, y, z]`` quaternion.
    pixel_offset : (float, float), keyword-only
        Place the camera image at this 0-based (column, row) of the WCS
        pixel grid (see the module notes); default ``(0, 0)``.
    sip_tolerance_px : float, keyword-only
        Largest allowed SIP fitting error over the image, px. A polynomial
        model whose own coefficients already meet it is written as is;
        otherwise (and for radial distortion) the SIP polynomials are fitted
        on a grid at increasing order, up to :data:`MAX_SIP_ORDER`.

    Returns
    -------
    astropy.wcs.WCS
        ``RA---TAN``/``DEC--TAN`` for a pinhole camera, ``ARC``, ``ZEA``,
        ``STG`` or ``SIN`` for the fisheye projections (``-SIP`` with
        distortion; see the module notes), ICRS, CD in degrees per pixel,
        ``pixel_shape = (W + dx, H + dy)``.
    """
    from astropy.wcs import WCS, Sip

    if not isinstance(camera, CameraModel):
        raise InvalidTypeError(f"camera must be a CameraModel, got {type(camera).__name__}")
    R = as_rotation_matrix(rotation, "rotation")
    off = _check_offset(pixel_offset)
    tol = _args.positive(sip_tolerance_px, "sip_tolerance_px")
    x_axis, y_axis, bore = R
    ra0, dec0 = (float(t) for t in vector_to_radec(bore))
    _, i1, i2 = _intermediate_axes(ra0, dec0)
    m = np.array([[x_axis @ i1, y_axis @ i1], [x_axis @ i2, y_axis @ i2]])
    sign = -1.0 if camera.parity_flip else 1.0
    cd = np.degrees(m @ np.diag([sign, 1.0]) / camera.focal_length_px)
    w, h = camera.image_width, camera.image_height
    crpix = np.array([0.5 * w + 0.5, 0.5 * h + 0.5]) + np.asarray(camera.crpix) + off

    wcs = WCS(naxis=2)
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = crpix
    wcs.wcs.cd = cd
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    sip = _sip_for_camera(camera, tol)
    code = _proj.FITS_CODES[camera.projection]
    suffix = "" if sip is None else "-SIP"
    wcs.wcs.ctype = [f"RA---{code}{suffix}", f"DEC--{code}{suffix}"]
    if sip is not None:
        a, b, ap, bp = sip
        na, nap = max(a.shape[0], b.shape[0]) - 1, max(ap.shape[0], bp.shape[0]) - 1
        wcs.sip = Sip(_pad(a, na), _pad(b, na), _pad(ap, nap), _pad(bp, nap), crpix)
    wcs.pixel_shape = (int(round(w + off[0])), int(round(h + off[1])))
    wcs.wcs.set()
    return wcs


def _as_wcs(wcs: Any):
    from astropy.io import fits
    from astropy.wcs import WCS

    if isinstance(wcs, WCS):
        return wcs
    if isinstance(wcs, fits.Header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return WCS(wcs, relax=True)
    raise InvalidTypeError(f"wcs must be an astropy WCS or FITS Header, got {type(wcs).__name__}")


def wcs_to_camera(wcs: Any, image_width: int | None = None, image_height: int | None = None, *,
                  pixel_offset: ArrayLike = (0.0, 0.0)) -> tuple[CameraModel,
                                                                  NDArray[np.float64]]:
    """Camera model and ICRS→camera rotation equivalent to a zenithal (TAN-SIP, ...) WCS.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or astropy.io.fits.Header
        Celestial WCS with ``RA---XXX``/``DEC--XXX`` (optionally ``-SIP``) axes
        in that order, ``XXX`` one of ``TAN``, ``ARC``, ``ZEA``, ``STG``,
        ``SIN`` (without PV parameters), which become the camera's projection
        ``pinhole``, ``equidistant``, ``equisolid``, ``stereographic``,
        ``orthographic``; lookup-table distortions are not supported.
    image_width, image_height : int, optional
        Size of the camera image; default: the WCS's ``pixel_shape`` minus
        ``pixel_offset`` (for a header without ``NAXIS1``/``NAXIS2``, such as a
        header-only ``.wcs`` file, its ``IMAGEW``/``IMAGEH``). At ``pixel_offset`` it
        must lie within that size when the WCS states one.
    pixel_offset : (float, float), keyword-only
        0-based (column, row) in the WCS pixel grid of the camera image's
        first pixel (TESS science area: ``(44, 0)``).

    Returns
    -------
    camera : CameraModel
        Projection from CTYPE; focal length and parity from the CD matrix (``det(CD) < 0`` means a
        mirrored image); ``crpix`` from CRPIX. The part of CD that is not a
        rotation times a scale (skew, unequal axis scales) and the SIP A/B
        polynomials become a :class:`PolynomialDistortion` with
        ``primary="inverse"`` (``scale = image_width / 2``), so
        ``pixel_to_world`` reproduces astropy's pixel → sky mapping
        exactly; its forward A/B are fitted over the image. SIP AP/BP in the
        header are not used (they are only approximate inverses) unless A/B
        are of order > 6: then AP/BP of order <= 6 that invert A/B to 1e-4 px
        define a ``primary="forward"`` model, and otherwise the mapping is
        refitted at order 6, pixel → ideal or ideal → pixel, whichever holds
        it more closely (a ``UserWarning`` gives the error when it exceeds
        0.01 px).
    rotation : ndarray, shape ``(3, 3)``
        ICRS→camera rotation (rows: camera +X, +Y, +Z in ICRS; ``R[2]`` is
        the CRVAL direction). A WCS in FK5 or FK4 (``RADESYS``, ``EQUINOX``) is
        converted to ICRS; other frames (e.g. ``GAPPT``) are refused.
    """
    w = _as_wcs(wcs)
    off = _check_offset(pixel_offset)
    if w.pixel_shape is None and w is not wcs and "IMAGEW" in wcs and "IMAGEH" in wcs:
        # a header-only .wcs file (solve-field's, skysolve's own) has NAXIS = 0 and states
        # its image's size so (``w`` is built here from the header: setting it is safe)
        w.pixel_shape = (_args.size(wcs["IMAGEW"], "the header's IMAGEW"),
                         _args.size(wcs["IMAGEH"], "the header's IMAGEH"))
    if w.naxis != 2:
        raise InvalidArgumentError(f"wcs must have 2 axes, got {w.naxis}")
    projection = _projection_of(w)
    if any(getattr(w, k, None) is not None for k in ("cpdis1", "cpdis2", "det2im1", "det2im2")):
        raise InvalidArgumentError("wcs lookup-table distortions are not supported")
    units = [str(u) for u in w.wcs.cunit]
    if any(u not in ("deg", "") for u in units):
        raise InvalidArgumentError(f"wcs axes must be in degrees, got CUNIT {units}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            w.wcs.set()
        except ValueError as exc:  # astropy's WcsError family (e.g. a singular CD matrix)
            raise InvalidArgumentError(f"wcs is not a valid celestial WCS: {exc}") from None
    # (int() of an explicit 100.5 was a camera of 100 px, its crpix a quarter pixel off)
    image_width = _args.size(image_width, "image_width", allow_none=True)
    image_height = _args.size(image_height, "image_height", allow_none=True)
    if image_width is None or image_height is None:
        shape = w.pixel_shape
        if shape is None:
            raise InvalidArgumentError(
                "image_width and image_height are required: the WCS has no NAXIS1/NAXIS2 "
                "(nor IMAGEW/IMAGEH)")
        if image_width is None:
            image_width = int(round(shape[0] - off[0]))
        if image_height is None:
            image_height = int(round(shape[1] - off[1]))
    _check_within_grid(w.pixel_shape, image_width, image_height, off)

    crval = np.asarray(w.wcs.crval, dtype=np.float64)
    bore, i1, i2 = _intermediate_axes(float(crval[0]), float(crval[1]), float(w.wcs.lonpole),
                                      float(w.wcs.latpole))
    g = np.radians(np.asarray(w.pixel_scale_matrix, dtype=np.float64))  # rad per px
    det = float(np.linalg.det(g))
    if not np.isfinite(det) or det == 0:
        raise InvalidArgumentError("wcs CD matrix is singular")
    a_, b_, c_, d_ = g.ravel()
    if det > 0:  # conformal part: scale * rotation
        al, be, sign = 0.5 * (a_ + d_), 0.5 * (c_ - b_), 1.0
        k = np.hypot(al, be)
        p = np.array([[al, -be], [be, al]]) / k
    else:  # anti-conformal part: scale * reflection
        al, be, sign = 0.5 * (a_ - d_), 0.5 * (b_ + c_), -1.0
        k = np.hypot(al, be)
        p = np.array([[al, be], [be, -al]]) / k
    f = 1.0 / k
    lin = f * p.T @ g  # I + L, acting on SIP-corrected pixel offsets
    q = p @ np.diag([sign, 1.0])  # proper rotation: intermediate = q @ (xi, eta)
    x_axis = q[0, 0] * i1 + q[1, 0] * i2
    y_axis = q[0, 1] * i1 + q[1, 1] * i2
    rot = np.array([x_axis, y_axis, bore])
    u_, s_, vt_ = np.linalg.svd(rot)  # clean up rounding: nearest orthonormal matrix
    rot = u_ @ vt_

    crpix_fits = np.asarray(w.wcs.crpix, dtype=np.float64)
    width, height = int(image_width), int(image_height)
    crpix = crpix_fits - 0.5 - off - 0.5 * np.array([width, height], dtype=np.float64)
    scale = 0.5 * width
    dist = _inverse_distortion(w, lin, scale, width, height, crpix)
    cam = CameraModel(f, width, height, crpix=crpix, parity_flip=sign < 0, distortion=dist,
                      projection=projection)
    frame = _frame_to_icrs(w, cam, rot)
    return cam, rot if frame is None else rot @ frame


def _check_within_grid(shape: Any, width: int, height: int, off: NDArray[np.float64]) -> None:
    """Refuse a camera image that reaches beyond the WCS's pixel grid (``NAXISn``): a
    ``(height, width)`` given as ``(width, height)`` made a camera of another image, its
    optical centre moved by their difference, without a word. A cut-out within the grid
    (TESS's science area) is a camera of its own."""
    if shape is None:
        return
    for axis, (name, size) in enumerate((("image_width", width), ("image_height", height))):
        grid = int(shape[axis])
        if size + off[axis] > grid + 0.5:
            other = ("image_height", "image_width")[axis]
            swapped = ((height, width) == (int(shape[0]), int(shape[1])) and width != height)
            hint = (f"; {name} and {other} swapped? (the WCS's image is {int(shape[0])} "
                    f"x {int(shape[1])}, width x height)") if swapped else ""
            offset = f" at pixel_offset {off[axis]:g}" if off[axis] else ""
            raise InvalidArgumentError(
                f"{name}={size}{offset} reaches beyond the WCS's pixel grid (NAXIS{axis + 1}"
                f"={grid}){hint}")


def _frame_to_icrs(w: Any, cam: CameraModel,
                   rot: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """Rotation ``M`` with ``v_frame ≈ M @ v_icrs`` over the image, for a WCS whose
    celestial frame is not ICRS (None when it is).

    ``rot`` maps the WCS's own frame to the camera; ``rot @ M`` maps ICRS. A header in
    FK4 B1950 read as ICRS put the field 0.7 deg from where its stars are. FK5 and FK4
    differ from ICRS by rotations, FK4 also by its E-terms of aberration (under 0.35",
    nearly constant over a field): the rotation is fitted over the image's pixels, which
    leaves 0.02" of the E-terms on a 6 deg field.
    """
    from astropy import units as u
    from astropy.coordinates import FK4, FK5, ICRS, FK4NoETerms, SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame

    try:
        frame = wcs_to_celestial_frame(w)
    except ValueError:
        frame = None
    if isinstance(frame, ICRS):
        return None
    if not isinstance(frame, FK5 | FK4 | FK4NoETerms):
        raise InvalidArgumentError(
            f"wcs celestial frame RADESYS {str(w.wcs.radesys)!r} is not supported: only "
            "ICRS, FK5 and FK4 (with their EQUINOX) give the ICRS attitude a camera has")
    gx, gy = (g.ravel() for g in np.meshgrid(np.linspace(-0.5, 0.5, 9) * cam.image_width,
                                             np.linspace(-0.5, 0.5, 9) * cam.image_height))
    v_frame = cam.pixel_to_vectors(gx, gy) @ rot
    v_frame = v_frame[np.all(np.isfinite(v_frame), axis=1)]
    lon, lat = vector_to_radec(v_frame)
    icrs = SkyCoord(np.asarray(lon) * u.deg, np.asarray(lat) * u.deg, frame=frame).icrs
    return wahba_rotation(v_frame, radec_to_vector(icrs.ra.deg, icrs.dec.deg))


def _projection_of(w: Any) -> str:
    """The camera projection of a WCS's celestial axes (checked: zenithal, RA then Dec)."""
    ctype = [str(c).upper() for c in w.wcs.ctype]
    codes = [c[5:8] for c in ctype]
    if not (ctype[0].startswith("RA--") and ctype[1].startswith("DEC-")
            and all(c[4:].strip("-") in (code, f"{code}-SIP")
                    for c, code in zip(ctype, codes, strict=True))
            and codes[0] == codes[1] and codes[0] in _PROJECTION_OF_CODE):
        raise InvalidArgumentError(
            f"wcs must have RA---XXX/DEC--XXX axes (optionally -SIP) with XXX one of the "
            f"zenithal projections {', '.join(_PROJECTION_OF_CODE)}; got CTYPE {ctype}")
    # projection parameters (PV2_m: SIN with PV2_1/PV2_2 is the slant orthographic, or NCP)
    # and a moved fiducial point (PV1_1, PV1_2) describe no lens; PV1_3/4 are LONPOLE/LATPOLE
    pv = [(i, m, v) for i, m, v in w.wcs.get_pv() if v != 0.0 and (i == 2 or m in (1, 2))]
    if pv:
        raise InvalidArgumentError(
            f"wcs {ctype[0]} has projection parameters "
            f"{', '.join(f'PV{i}_{m}={v:g}' for i, m, v in pv)}; only the plain "
            f"{codes[0]} projection (no PV) is a camera projection")
    return _PROJECTION_OF_CODE[codes[0]]


def _inverse_distortion(w: Any, lin: NDArray[np.float64], scale: float, width: int, height: int,
                        crpix: NDArray[np.float64]) -> PolynomialDistortion | None:
    """``(I + L) (u + SIP(u))`` as an inverse-primary PolynomialDistortion (or None)."""
    ell = lin - np.eye(2)
    sip = w.sip
    if sip is None and np.max(np.abs(ell)) < _LINEAR_EPS:
        return None
    sip_order = 1 if sip is None else max(sip.a_order, sip.b_order, 1)
    order = min(sip_order, MAX_POLYNOMIAL_ORDER)
    terms = polynomial_terms(sip_order)
    n = len(terms)
    am = np.zeros(n)
    bm = np.zeros(n)
    if sip is not None:
        a, b = np.asarray(sip.a), np.asarray(sip.b)
        for k, (p, q) in enumerate(terms):
            am[k] = a[p, q] if p < a.shape[0] and q < a.shape[1] else 0.0
            bm[k] = b[p, q] if p < b.shape[0] and q < b.shape[1] else 0.0
    powers = np.array([scale ** (p + q) for p, q in terms])
    ap = (lin[0, 0] * am + lin[0, 1] * bm) * powers
    bp = (lin[1, 0] * am + lin[1, 1] * bm) * powers
    ap[1] += ell[0, 0] * scale  # term (1, 0)
    ap[2] += ell[0, 1] * scale  # term (0, 1)
    bp[1] += ell[1, 0] * scale
    bp[2] += ell[1, 1] * scale
    if sip_order > MAX_POLYNOMIAL_ORDER:
        forward = _forward_from_sip_inverse(sip, lin, scale, width, height, crpix)
        if forward is not None:
            return forward
        return _refit_high_order(ap, bp, sip_order, order, scale, width, height, crpix)
    return PolynomialDistortion.from_inverse(order, scale, ap, bp, image_width=width,
                                             image_height=height, crpix=crpix)


def _refit_high_order(ap: NDArray[np.float64], bp: NDArray[np.float64], sip_order: int,
                      order: int, scale: float, width: int, height: int,
                      crpix: NDArray[np.float64]) -> PolynomialDistortion:
    """The order-``order`` model closest to a pixel -> ideal polynomial of higher order.

    Fitted both ways on a grid over the image: pixel -> ideal (the header's direction)
    and ideal -> pixel (a lens's ``r (1 + k1 r^2)`` is a short polynomial that way, its
    inverse the long series an order-9 SIP approximates); the one whose mapping is
    closer to the header's on a finer grid is kept, and a ``UserWarning`` says how far
    off it still is when that exceeds :data:`_SIP_WARN_PX`.
    """
    def exact(u: NDArray[np.float64], v: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                                        NDArray[np.float64]]:
        mm = polynomial_design_matrix(u, v, sip_order, scale)
        return u + mm @ ap, v + mm @ bp

    gu, gv = _image_grid(width, height, crpix)
    tu, tv = exact(gu, gv)
    m_pix = polynomial_design_matrix(gu, gv, order, scale)
    sol = np.linalg.lstsq(m_pix, np.stack([tu - gu, tv - gv], 1), rcond=None)[0]
    candidates = [PolynomialDistortion.from_inverse(order, scale, sol[:, 0], sol[:, 1],
                                                    image_width=width, image_height=height,
                                                    crpix=crpix)]
    m_ideal = polynomial_design_matrix(tu, tv, order, scale)
    sol = np.linalg.lstsq(m_ideal, np.stack([gu - tu, gv - tv], 1), rcond=None)[0]
    try:
        candidates.append(PolynomialDistortion.from_forward(
            order, scale, sol[:, 0], sol[:, 1], image_width=width, image_height=height,
            crpix=crpix))
    except InvalidArgumentError:  # not invertible over the image: not a candidate
        pass
    # judged between the fitting grid's points, as pixel -> ideal (the header's meaning)
    cu, cv = _image_grid(width, height, crpix, n=67, margin=0.0)
    eu, ev = exact(cu, cv)
    errors = []
    for cand in candidates:
        iu, iv = cand.undistort(cu, cv)
        err = np.hypot(np.asarray(iu) - eu, np.asarray(iv) - ev)
        errors.append(float(np.max(np.where(np.isfinite(err), err, np.inf))))
    best = int(np.argmin(errors))
    if errors[best] > _SIP_WARN_PX:
        warn_caller(f"the wcs's SIP polynomial of order {sip_order} is held by a camera "
                    f"distortion of order {order} (the highest it has) to "
                    f"{errors[best]:.2g} px at worst over the image", UserWarning)
    return candidates[best]


def _eval_sip(m: NDArray[np.float64], u: NDArray[np.float64],
              v: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros_like(u)
    for p in range(m.shape[0]):
        for q in range(m.shape[1]):
            if m[p, q] != 0.0:
                out += m[p, q] * u**p * v**q
    return out


def _forward_from_sip_inverse(sip: Any, lin: NDArray[np.float64], scale: float, width: int,
                              height: int, crpix: NDArray[np.float64],
                              tol: float = 1e-4) -> PolynomialDistortion | None:
    """Forward-primary model from SIP AP/BP, if they are low-order and match A/B.

    A SIP header whose pixel → sky polynomial is of too high an order for
    PolynomialDistortion may still carry an ideal → pixel AP/BP of a supported
    order that inverts A/B to within ``tol`` px (camera_to_wcs writes such
    headers for forward-defined models); that AP/BP then defines the model.
    """
    if sip.ap is None or sip.bp is None:
        return None
    ap_order = max(sip.ap_order, sip.bp_order, 1)
    if ap_order > MAX_POLYNOMIAL_ORDER:
        return None
    a, b = np.asarray(sip.a), np.asarray(sip.b)
    ap, bp = np.asarray(sip.ap), np.asarray(sip.bp)
    gu, gv = _image_grid(width, height, crpix)
    wu, wv = gu + _eval_sip(a, gu, gv), gv + _eval_sip(b, gu, gv)
    bu, bv = wu + _eval_sip(ap, wu, wv), wv + _eval_sip(bp, wu, wv)
    if not np.max(np.hypot(bu - gu, bv - gv)) <= tol:
        return None
    # ideal offsets (I + L) w; the forward map w -> w + AP(w) composed with the
    # inverse linear map stays a polynomial of the same order: fit it exactly
    iu = lin[0, 0] * wu + lin[0, 1] * wv
    iv = lin[1, 0] * wu + lin[1, 1] * wv
    m = polynomial_design_matrix(iu, iv, ap_order, scale)
    sol = np.linalg.lstsq(m, np.stack([bu - iu, bv - iv], 1), rcond=None)[0]
    return PolynomialDistortion.from_forward(ap_order, scale, sol[:, 0], sol[:, 1],
                                             image_width=width, image_height=height, crpix=crpix)


def _lstsq(m: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    """Least squares through column-normalised normal equations (einsum: no threaded BLAS,
    which on a loaded machine is many times slower for these tall, thin systems)."""
    d = np.sqrt(np.einsum("ni,ni->i", m, m, optimize=False))
    d[d == 0] = 1.0
    mn = m / d
    nmat = np.einsum("ni,nj->ij", mn, mn, optimize=False)
    return np.linalg.solve(nmat, np.einsum("ni,nk->ik", mn, rhs, optimize=False)) / d[:, None]


def _points(value: ArrayLike, name: str, dim: int, finite: bool = True) -> NDArray[np.float64]:
    """An ``(n, dim)`` array of numbers, finite unless ``finite=False`` (checked, naming
    ``name``)."""
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"{name} must be an (n, {dim}) array of numbers") from exc
    if a.ndim != 2 or a.shape[1] != dim:
        raise InvalidArgumentError(f"{name} must have shape (n, {dim}), got {a.shape}")
    if finite and not np.all(np.isfinite(a)):
        raise InvalidArgumentError(f"{name} must be finite (a NaN or inf is in row "
                                   f"{int(np.flatnonzero(~np.isfinite(a).all(axis=1))[0])})")
    return a


def _reach_text(code: int) -> str:
    """How far from its centre a projection images, for a message: "under 90" (open:
    pinhole, stereographic) or "up to 180"."""
    limit = math.degrees(_proj.max_angle(code))
    return f"under {limit:g}" if code in (_proj.PINHOLE, _proj.STEREOGRAPHIC) else \
        f"up to {limit:g}"

def fit_sip_wcs(pixels: ArrayLike, vectors: ArrayLike, crpix: ArrayLike, crval: ArrayLike,
                order: int, *, pixel_shape: tuple[int, int] | None = None,
                projection: str = "pinhole"):
    """TAN-SIP (or ARC/ZEA/STG/SIN-SIP) WCS of one order fitted by linear least squares
    to pixel / sky pairs.

    With the tangent point ``crval`` fixed at pixel ``crpix``, the
    intermediate coordinates of the sky directions (for TAN the gnomonic ones;
    for a fisheye ``projection`` its plane's, in degrees) are polynomials in the pixel
    offsets from ``crpix``: their linear part is the CD matrix, the rest (brought
    through ``CD^-1``) the SIP A/B of degree 2 to ``order``; AP/BP of the same
    order are fitted to the inverse over the same points.

    Parameters
    ----------
    pixels : array_like, shape ``(n, 2)``
        FITS pixel coordinates (1-based ``p1, p2``) covering the image.
    vectors : array_like, shape ``(n, 3)``
        ICRS unit vectors of those pixels; rows with NaN (pixels with no sky
        direction) are left out of the fit.
    crpix : (float, float)
        FITS pixel of the tangent point.
    crval : array_like, shape ``(3,)``
        ICRS unit vector of the tangent point (the sky direction of ``crpix``).
    order : int
        SIP order, 2 to :data:`MAX_SIP_ORDER`.
    pixel_shape : (int, int), optional
        ``(NAXIS1, NAXIS2)`` of the WCS.
    projection : str
        Lens projection (:data:`skysolve.camera.projection.PROJECTIONS`) whose
        FITS zenithal projection the WCS uses (pinhole: TAN).

    Returns
    -------
    astropy.wcs.WCS
    """
    from astropy.wcs import WCS, Sip

    order = _args.count(order, "order", minimum=2, maximum=MAX_SIP_ORDER)
    pix = _points(pixels, "pixels", 2)
    v = _points(vectors, "vectors", 3, finite=False)
    if len(v) != len(pix):
        raise InvalidArgumentError(
            f"vectors must have one row per pixel ({len(pix)}), got {len(v)}")
    seen = np.all(np.isfinite(v), axis=1)  # (pixels with no sky: beyond a fold-over)
    pix, v = pix[seen], v[seen]
    if len(pix) < num_polynomial_terms(order):
        raise InvalidArgumentError(
            f"a SIP fit of order {order} needs at least {num_polynomial_terms(order)} "
            f"points, got {len(pix)}")
    c = _args.vector(crpix, "crpix", length=2)
    cv = _args.vector(crval, "crval", length=3, what="numbers (an ICRS vector)")
    if not np.any(cv):
        raise InvalidArgumentError("crval must be a non-zero vector, got [0, 0, 0]")
    ra0, dec0 = (float(t) for t in vector_to_radec(cv))
    b, i1, i2 = _intermediate_axes(ra0, dec0)
    code = _proj.code_of(projection)
    world = np.degrees(np.stack(_proj.vectors_to_plane(
        np.stack([v @ i1, v @ i2, v @ b], axis=1), code), axis=1))
    beyond = np.flatnonzero(~np.all(np.isfinite(world), axis=1))
    if beyond.size:
        # (a TAN plane holds nothing 90 deg or more from its tangent point: the fit was
        # all NaN, CD included, a WCS mapping every pixel nowhere)
        row = int(np.flatnonzero(seen)[beyond[0]])
        away = math.degrees(math.acos(max(-1.0, min(1.0, float(v[beyond[0]] @ b)
                                                     / float(np.linalg.norm(v[beyond[0]]))))))
        reach = _reach_text(code)
        raise InvalidArgumentError(
            f"vectors: {beyond.size} of the {len(v)} directions (the first, row {row}, "
            f"{away:.4g} deg from crval) lie where a {_proj.FITS_CODES[projection]} "
            f"projection about crval images nothing (it reaches {reach} deg from it)")
    u = pix - c
    scale = float(np.max(np.abs(u))) or 1.0
    terms = polynomial_terms(order)[1:]  # no constant: crval is at crpix
    sol = _lstsq(polynomial_design_matrix(u[:, 0], u[:, 1], order, scale)[:, 1:], world)
    cd = sol[:2].T / scale
    inv = np.linalg.inv(cd)
    ab = np.zeros((2, order + 1, order + 1))
    for (pp, qq), row in zip(terms[2:], sol[2:], strict=True):
        ab[:, pp, qq] = inv @ row / scale ** (pp + qq)
    # inverse: pixel offsets from the undistorted offsets CD^-1 (xi, eta)
    w0 = world @ inv.T
    m = polynomial_design_matrix(w0[:, 0], w0[:, 1], order, scale)
    back = _lstsq(m, u - w0)
    ap = _to_sip_matrix(back[:, 0], order, scale, order)
    bp = _to_sip_matrix(back[:, 1], order, scale, order)
    wcs = WCS(naxis=2)
    fits_code = _proj.FITS_CODES[projection]
    wcs.wcs.ctype = [f"RA---{fits_code}-SIP", f"DEC--{fits_code}-SIP"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = c
    wcs.wcs.cd = cd
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.sip = Sip(ab[0], ab[1], ap, bp, c)
    if pixel_shape is not None:
        wcs.pixel_shape = (int(pixel_shape[0]), int(pixel_shape[1]))
    wcs.wcs.set()
    return wcs


#: WCS keywords :func:`replace_wcs` removes from a header before the new WCS's are added
#: (``RADECSYS`` is the old spelling of ``RADESYS``: an input's ``'FK4'`` stayed beside the
#: new ``ICRS``).
_OLD_WCS = ("WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CRPIX1",
            "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2", "CDELT1", "CDELT2", "PC1_1", "PC1_2",
            "PC2_1", "PC2_2", "CROTA1", "CROTA2", "LONPOLE", "LATPOLE", "RADESYS", "RADECSYS",
            "EQUINOX", "WCSNAME", "A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER", "A_DMAX",
            "B_DMAX", "MJDREF")
#: Families of keywords of a header's old WCS, removed likewise: SIP terms, projection
#: parameters (``PVi_m``: a SCAMP TPV solution's polynomial, which under the new ``TAN``
#: would move the reference point), ``PSi_m`` and PinPoint's ``TRi_n`` (as solve-field),
#: and a lookup-table distortion's (``CPDISj``, ``DPj.*``, ``D2IMDISj``, ...: astropy reads
#: a file's WCS with its tables, an HST frame's on top of the new SIP).
#: So is the primary WCS's matrix in every spelling wcslib reads: any axis (``PC3_3`` of
#: a colour cube's three-axis WCS), leading zeros (``PC01_01``) and the 1996 draft's
#: ``PC001001``/``CD001001``: a ``PCi_j`` left beside the new ``CDi_j`` makes wcslib take
#: the PC matrix with unit ``CDELT`` and drop the CD one (a .new 90 deg off at its
#: corners). A cube's other axes keep their ``CTYPE3`` .. ``CRPIX3`` cards (under the
#: new CD matrix wcslib reads their scale as 1, not ``CDELT3``); alternate WCSs
#: (``PC1_1A``) are left alone.
_OLD_WCS_FAMILIES = re.compile(r"^(?:A|B|AP|BP)_\d+_\d+$|^P[VS]\d+_\d+$|^TR[12]_\d+$"
                               r"|^(?:CPDIS|CPERR|D2IMDIS|D2IMERR)\d$|^(?:DP|DQ|D2IM)\d\."
                               r"|^D2IMEXT$|^AXISCORR$"
                               r"|^(?:PC|CD)\d+_\d+$|^(?:PC|CD)\d{6}$")


def replace_wcs(header: Any, wcs: Any) -> None:
    """Replace the WCS of the FITS ``header`` (in place) with the cards of ``wcs``.

    The header's old WCS keywords go first -- its CD/PC/CDELT/CROTA terms, SIP and TPV
    (``PVi_m``) polynomials, a lookup-table distortion's ``CPDISj``/``DPj.*``,
    ``RADECSYS``/``EQUINOX`` -- so that astropy reads the new WCS alone: cards merged with
    ``header.update(...)`` leave an old SIP or TPV polynomial that astropy then applies on
    top of the new solution. ``NAXIS`` cards of ``wcs`` are not copied: the header's own
    describe its data.

    Parameters
    ----------
    header : astropy.io.fits.Header
        The header to change, e.g. an image HDU's.
    wcs : astropy.io.fits.Header
        The new WCS's cards (``SolveResult.to_header()``, :func:`wcs_to_header`).
    """
    from astropy.io import fits

    if not isinstance(header, fits.Header):
        raise InvalidTypeError(f"header must be an astropy.io.fits.Header, "
                               f"got {type(header).__name__}")
    if not isinstance(wcs, fits.Header):
        raise InvalidTypeError(f"wcs must be an astropy.io.fits.Header, got {type(wcs).__name__}")
    for key in _OLD_WCS:
        header.remove(key, ignore_missing=True, remove_all=True)
    for key in {k for k in header if _OLD_WCS_FAMILIES.match(k)}:
        header.remove(key, ignore_missing=True, remove_all=True)
    header.extend([c for c in wcs.cards if c.keyword not in ("NAXIS", "NAXIS1", "NAXIS2")],
                  update=True)


def wcs_to_header(wcs: Any):
    """FITS header of a WCS, with SIP keywords and ``NAXIS1``/``NAXIS2`` when known.

    Parameters
    ----------
    wcs : astropy.wcs.WCS

    Returns
    -------
    astropy.io.fits.Header
    """
    from astropy.wcs import WCS

    if not isinstance(wcs, WCS):
        raise InvalidTypeError(f"wcs must be an astropy WCS, got {type(wcs).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdr = wcs.to_header(relax=True)
    if wcs.pixel_shape is not None:
        hdr.insert(0, ("NAXIS", 2, "number of array dimensions"))
        hdr.insert(1, ("NAXIS1", int(wcs.pixel_shape[0]), "image width, px"))
        hdr.insert(2, ("NAXIS2", int(wcs.pixel_shape[1]), "image height, px"))
    return hdr


#: The largest error (arcseconds, over the image) of a WCS moved to another reference
#: pixel (:func:`move_reference_pixel`): the lowest SIP order within it is written.
MOVED_WCS_TOLERANCE_ARCSEC = 0.001
#: ... and the error beyond which no SIP order will do (an error is raised).
MOVED_WCS_LIMIT_ARCSEC = 0.01
#: The same for its inverse (sky -> pixel), pixels: through the linear part and AP/BP, as
#: readers of a header evaluate it, and as astropy's ``world_to_pixel`` iterates it.
MOVED_WCS_INVERSE_PX, MOVED_WCS_INVERSE_LIMIT_PX = 1e-4, 1e-3


def _pixel_grid(width: int, height: int, nx: int, ny: int) -> NDArray[np.float64]:
    """1-based FITS pixels on an ``nx x ny`` grid from edge to edge of the image."""
    gx, gy = np.meshgrid(np.linspace(0.5, width + 0.5, nx), np.linspace(0.5, height + 0.5, ny))
    return np.column_stack([gx.ravel(), gy.ravel()])


def _separation_arcsec(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angles (arcseconds) between unit vectors ``a`` and ``b`` (rows), accurate when small."""
    return np.degrees(2.0 * np.arcsin(np.clip(0.5 * np.linalg.norm(a - b, axis=1), 0, 1))) * 3600


def _iterated_inverse_px(wcs: Any, radec: NDArray[np.float64], pix: NDArray[np.float64]) -> float:
    """The largest distance (px) from ``pix`` (1-based) of where astropy's own inverse puts
    their sky positions ``radec`` (deg) through ``wcs``; inf when it does not converge.

    ``WCS.world_to_pixel`` (``all_world2pix``) reads no AP/BP: it inverts the forward
    SIP polynomials by iteration from the linear inverse. About a reference pixel far
    off the image their terms reach thousands of pixels, and the iteration can diverge
    (a 1024x768 frame 20 deg wide about pixel (-300, 1500): 2,187 px of SIP, stars put
    25 px off with only a warning) where AP/BP invert them to 1e-4 px."""
    from astropy.wcs.wcs import NoConvergence

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            back = np.asarray(wcs.all_world2pix(radec, 1, quiet=False), dtype=np.float64)
    except NoConvergence:
        return math.inf
    err = np.hypot(back[:, 0] - pix[:, 0], back[:, 1] - pix[:, 1])
    return float(np.max(err)) if np.all(np.isfinite(err)) else math.inf


def move_reference_pixel(wcs: Any, crpix: ArrayLike, width: int, height: int):
    """The WCS ``wcs`` of a ``width x height`` image expressed about another reference pixel.

    CRPIX becomes ``crpix`` (1-based FITS pixels) and CRVAL the sky position ``wcs``
    gives that pixel. A zenithal projection about another point of the sky is another
    projection plane, which the linear CD matrix cannot map from the same pixels; the
    difference (and any distortion ``wcs`` has) is held by SIP polynomials about the
    new reference pixel, of the lowest order that reproduces ``wcs`` within
    :data:`MOVED_WCS_TOLERANCE_ARCSEC` over the image.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A celestial WCS in one of the lens projections' FITS codes (TAN, ARC, ZEA, STG,
        SIN; with or without SIP).
    crpix : (float, float)
        The new reference pixel, 1-based FITS pixels (inside the image or not).
    width, height : int
        The image's size in pixels: the area over which the result must agree.

    Returns
    -------
    astropy.wcs.WCS
        ``wcs`` itself when its reference pixel is ``crpix`` already.

    Raises
    ------
    InvalidArgumentError
        ``crpix`` is not two finite numbers, its sky position is undefined, or no SIP
        polynomial up to :data:`MAX_SIP_ORDER` reproduces ``wcs`` within
        :data:`MOVED_WCS_LIMIT_ARCSEC` over the image about that pixel with an inverse
        (AP/BP, and astropy's iteration of the forward terms) within
        :data:`MOVED_WCS_INVERSE_LIMIT_PX`.
    """
    c = _args.vector(crpix, "crpix", length=2)
    # (a width of 0 was "fitted" over a grid of one column)
    width = _args.size(width, "width")
    height = _args.size(height, "height")
    w = _as_wcs(wcs)
    if np.array_equal(np.asarray(w.wcs.crpix, dtype=np.float64), c):
        return w
    projection = _projection_of(w)
    centre = np.asarray(w.all_pix2world(c[None], 1), dtype=np.float64)[0]
    if not np.all(np.isfinite(centre)):
        raise InvalidArgumentError(f"crpix {tuple(float(v) for v in c)} has no sky position "
                                   "in the solution")
    crval = radec_to_vector(centre[0], centre[1])
    # fitted on one grid, judged on a finer one offset from it (the points between)
    fit = _pixel_grid(width, height, 41, 31)
    check = _pixel_grid(width, height, 97, 73)
    rd_check = np.asarray(w.all_pix2world(check, 1), dtype=np.float64)
    rd_fit = np.asarray(w.all_pix2world(fit, 1), dtype=np.float64)
    sky = {name: radec_to_vector(rd[:, 0], rd[:, 1])
           for name, rd in (("fit", rd_fit), ("check", rd_check))}
    best = None
    for order in range(2, MAX_SIP_ORDER + 1):
        try:
            moved = fit_sip_wcs(fit, sky["fit"], c, crval, order, pixel_shape=w.pixel_shape,
                                projection=projection)
        except np.linalg.LinAlgError:  # (offsets so large that their powers overflow)
            continue
        except InvalidArgumentError:  # part of the image beyond the projection's reach
            cosines = np.clip(np.concatenate([sky["fit"], sky["check"]]) @ crval, -1.0, 1.0)
            away = math.degrees(float(np.nanmax(np.arccos(cosines))))
            reach = _reach_text(_proj.code_of(projection))
            raise InvalidArgumentError(
                f"the solution cannot be written about reference pixel "
                f"{tuple(float(v) for v in c)}: the image reaches {away:.4g} deg from it, "
                f"and its {_proj.FITS_CODES[projection]} projection about that pixel images "
                f"{reach} deg from it") from None
        rd = np.asarray(moved.all_pix2world(check, 1), dtype=np.float64)
        err = float(np.nanmax(_separation_arcsec(radec_to_vector(rd[:, 0], rd[:, 1]),
                                                 sky["check"])))
        # the inverse as readers of the header evaluate it: the linear inverse, then AP/BP
        lin = np.asarray(moved.wcs_world2pix(rd_check, 1), dtype=np.float64)
        u, v = lin[:, 0] - c[0], lin[:, 1] - c[1]
        back = float(np.nanmax(np.hypot(lin[:, 0] + _eval_sip(moved.sip.ap, u, v) - check[:, 0],
                                        lin[:, 1] + _eval_sip(moved.sip.bp, u, v) - check[:, 1])))
        back = max(back, _iterated_inverse_px(moved, rd_check, check))
        # (an order within both limits before any that is not: a divergent inverse, inf,
        # must not lose to a smaller forward error)
        rank = (not (err <= MOVED_WCS_LIMIT_ARCSEC and back <= MOVED_WCS_INVERSE_LIMIT_PX),
                err, back)
        if best is None or rank < best[0]:
            best = (rank, err, back, moved)
        if err <= MOVED_WCS_TOLERANCE_ARCSEC and back <= MOVED_WCS_INVERSE_PX:
            break
    _, err, back, moved = best if best is not None else (None, np.inf, np.inf, None)
    if moved is not None and str(w.wcs.radesys).strip() not in ("", "ICRS"):
        # fit_sip_wcs writes ICRS; the positions fitted are in the frame of ``wcs``
        moved.wcs.radesys = w.wcs.radesys
        moved.wcs.equinox = w.wcs.equinox
        moved.wcs.dateobs = w.wcs.dateobs
        moved.wcs.mjdobs = w.wcs.mjdobs
        moved.wcs.set()
    if not (err <= MOVED_WCS_LIMIT_ARCSEC and back <= MOVED_WCS_INVERSE_LIMIT_PX):
        inverse = (f"its inverse by {back:.2g} px" if math.isfinite(back)
                   else "astropy's inverse of it does not converge")
        raise InvalidArgumentError(
            f"the solution about reference pixel {tuple(float(v) for v in c)} differs from "
            f"itself by {err:.2g}\" ({inverse}) at worst: a SIP polynomial "
            f"of order up to {MAX_SIP_ORDER} cannot hold it there within "
            f"{MOVED_WCS_LIMIT_ARCSEC:g}\" ({MOVED_WCS_INVERSE_LIMIT_PX:g} px)")
    return moved
