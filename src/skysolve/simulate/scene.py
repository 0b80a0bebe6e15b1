"""The sky side of a simulation: which stars are in the field, and where they land.

A simulated frame's geometry is a camera model at an attitude
(:class:`_CameraGeometry`) or any astropy WCS (:class:`_WCSGeometry`); both
project ICRS unit vectors to centred pixel coordinates. Stars come from a
catalog through its :class:`~skysolve.sky.index.SkyIndex` (cached per catalog
object), optionally with fainter random stars of the field's own density.

Wide fields
-----------
The stars are searched in a cone about the image centre whose radius is the
largest angle from it to the frame's border, found through the camera's own
projection (so a fisheye's cone reaches past 90° off axis; a frame that may
hold the antipode of its centre searches the whole sky). :class:`FieldLimits`
then keeps what the lens and the site let through:

* the *image circle*: a fisheye images the sky only within a circle, given as
  a radius in pixels about the optical centre (``image_circle_px``) or as the
  largest angle from the optical axis (``image_circle_deg``); pixels outside it
  (and pixels the projection maps to no direction at all) receive no light;
* the *horizon*: stars whose altitude ``asin(v · zenith)`` is below
  ``horizon_deg`` are hidden (the zenith defaults to the boresight, so an
  all-sky camera pointing up with ``horizon_deg=10`` loses the 10° above its
  horizon).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..camera import projection as _proj
from ..errors import InvalidArgumentError, InvalidTypeError
from ..geometry import (
    angle_between,
    as_rotation_matrix,
    camera_vectors_from_tanplane,
    radec_to_vector,
    tanplane_from_camera_vectors,
    vector_to_radec,
)
from ..sky.index import SkyIndex
from .psf import GaussianPSF, _shape

if TYPE_CHECKING:  # pragma: no cover
    from astropy.wcs import WCS

    from ..sky.catalogs import Catalog

_MAS_PER_DEG = 3.6e6


class _CatalogIndex:
    """A catalog's :class:`~skysolve.sky.index.SkyIndex` (at its own epoch) and its order.

    The sky index holds the catalog's unit vectors brightest first;
    ``order[row]`` is the catalog row of index row ``row``. A caller that only
    needs the brightest stars of a field searches a small brightness layer
    instead of the whole catalog.
    """

    __slots__ = ("catalog", "ra", "dec", "vectors", "order", "sky", "cuts", "max_pm_deg_yr",
                 "limit_mag")

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.ra, self.dec = catalog.ra_deg, catalog.dec_deg
        self.vectors = catalog.vectors()
        n = len(catalog)
        self.order = np.argsort(catalog.mag, kind="stable")
        self.sky = SkyIndex(self.vectors[self.order])
        # every star outside layer k is at least this faint
        self.cuts = [float(catalog.mag[self.order[k]]) if k < n else np.inf
                     for k in self.sky.layer_sizes]
        pm = np.hypot(catalog.pmra_mas_yr, catalog.pmdec_mas_yr)
        self.max_pm_deg_yr = float(pm.max()) / _MAS_PER_DEG if n else 0.0
        # faint end of the catalog, robust to a few stragglers
        self.limit_mag = float(np.percentile(catalog.mag, 99.5)) if n else 0.0

    @property
    def sizes(self) -> tuple[int, ...]:
        """Rows of each brightness layer."""
        return self.sky.layer_sizes

    def matches(self, catalog: Catalog) -> bool:
        return (self.catalog is catalog and catalog.ra_deg is self.ra
                and catalog.dec_deg is self.dec)

    def cone(self, centre: NDArray, radius_deg: float, epoch_year: float,
             layer: int = -1) -> NDArray[np.intp]:
        """Catalog indices of stars within ``radius_deg`` of ``centre`` at ``epoch_year``.

        A superset: the radius is widened by the largest proper motion over the
        epoch difference. ``layer`` restricts the search to a brightness layer.
        Brightest first.
        """
        if len(self.order) == 0:
            return np.empty(0, dtype=np.intp)
        margin = self.max_pm_deg_yr * abs(epoch_year - self.catalog.epoch)
        r = min(float(radius_deg) + margin, 180.0)
        return self.order[self.sky.cone(centre, np.radians(r), layer)]


_INDEX_CACHE: OrderedDict[int, _CatalogIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 6


def _sky_index(catalog: Catalog) -> _CatalogIndex:
    # The cache holds the catalog itself, so its id cannot be reused while cached;
    # replacing the position arrays invalidates the entry.
    key = id(catalog)
    entry = _INDEX_CACHE.get(key)
    if entry is None or not entry.matches(catalog):
        entry = _CatalogIndex(catalog)
        _INDEX_CACHE[key] = entry
        while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
            _INDEX_CACHE.popitem(last=False)
    else:
        _INDEX_CACHE.move_to_end(key)
    return entry


def _check_catalog(catalog: Any) -> None:
    for attr in ("ids", "ra_deg", "dec_deg", "mag", "pmra_mas_yr", "pmdec_mas_yr", "epoch",
                 "select", "propagate", "vectors"):
        if not hasattr(catalog, attr):
            raise InvalidTypeError(
                f"catalog must be a skysolve Catalog (see skysolve.load_gaia), got "
                f"{type(catalog).__name__}")


def _field_stars(catalog: Catalog, centre: NDArray, radius_deg: float,
                 epoch_year: float | None, layer: int = -1) -> tuple[NDArray, NDArray, NDArray]:
    """Ids, magnitudes and unit vectors (at ``epoch_year``) of stars near ``centre``."""
    index = _sky_index(catalog)
    epoch = catalog.epoch if epoch_year is None else float(epoch_year)
    idx = index.cone(centre, radius_deg, epoch, layer)
    if epoch == catalog.epoch:
        return catalog.ids[idx], catalog.mag[idx], index.vectors[idx]
    sub = catalog.select(idx).propagate(epoch)
    return sub.ids, sub.mag, sub.vectors()


# --------------------------------------------------------------------------------------
# Geometry: camera + attitude, or WCS


def _camera_project(camera: Any, v_cam: NDArray) -> tuple[NDArray, NDArray]:
    """Centred pixel coordinates of camera-frame vectors (NaN where the lens images none)."""
    if v_cam.shape[0] == 0:
        return np.empty(0), np.empty(0)
    if hasattr(camera, "vectors_to_pixel"):  # NaN where its projection images nothing
        x, y = camera.vectors_to_pixel(v_cam)
    else:  # a tangent-plane-only camera images the front hemisphere
        x, y = camera.tanplane_to_pixel(*tanplane_from_camera_vectors(v_cam))
        behind = v_cam[:, 2] <= 0
        x, y = np.where(behind, np.nan, x), np.where(behind, np.nan, y)
    return (np.asarray(x, dtype=np.float64).reshape(-1),
            np.asarray(y, dtype=np.float64).reshape(-1))


def _camera_vectors(camera: Any, x: NDArray, y: NDArray) -> NDArray:
    """Camera-frame unit vectors of centred pixels (NaN where the lens images none)."""
    if hasattr(camera, "pixel_to_vectors"):
        return np.asarray(camera.pixel_to_vectors(x, y), dtype=np.float64)
    return camera_vectors_from_tanplane(*camera.pixel_to_tanplane(x, y))


class _CameraGeometry:
    def __init__(self, camera: Any, attitude: ArrayLike):
        for attr in ("image_width", "image_height", "pixel_to_tanplane"):
            if not hasattr(camera, attr):
                raise InvalidTypeError(
                    f"camera must be a skysolve CameraModel, got {type(camera).__name__}")
        self.camera = camera
        self.rotation = as_rotation_matrix(attitude, "attitude")
        self.shape = (int(camera.image_height), int(camera.image_width))
        h, w = self.shape
        # the centre, then points along the border (pixel edges)
        t = np.linspace(-0.5, 0.5, 17)
        px = np.concatenate([[0.0], t * w, t * w, np.full(17, -w / 2), np.full(17, w / 2)])
        py = np.concatenate([[0.0], np.full(17, -h / 2), np.full(17, h / 2), t * h, t * h])
        v = _camera_vectors(camera, px, py) @ self.rotation  # camera -> ICRS
        radius = np.degrees(angle_between(v[0], v[1:]))
        if not (np.isfinite(v[0]).all() and np.isfinite(radius).any()):
            raise InvalidArgumentError(
                "camera cannot map its own image to the sky (distortion not invertible)")
        self.centre = v[0]
        self.axis = self.rotation[2]  # the boresight
        centre_off_axis = float(np.degrees(angle_between(v[0], self.axis)))
        top = float(np.nanmax(radius))
        if not np.isfinite(radius).all():
            # the border leaves the lens's image circle: the sky it images reaches as far
            # from the axis as the projection goes
            code = getattr(camera, "projection_code", 0)
            top = centre_off_axis + np.degrees(_proj.max_angle(code))
        # a frame reaching (nearly) half way round the sky may hold the centre's antipode
        self.radius_deg = 180.0 if top > 179.0 - centre_off_axis else top
        self.scale_deg_px = float(np.nanmax(radius)) / (0.5 * np.hypot(w, h))

    @property
    def boresight(self) -> NDArray:
        """ICRS direction of the optical axis."""
        return self.axis

    def camera_vectors(self, v_icrs: NDArray) -> NDArray:
        return v_icrs @ self.rotation.T

    def project(self, v_icrs: NDArray) -> tuple[NDArray, NDArray]:
        return _camera_project(self.camera, self.camera_vectors(v_icrs))


class _WCSGeometry:
    def __init__(self, wcs: WCS, shape: Any, pixel_offset: Any):
        if not hasattr(wcs, "all_world2pix") or not hasattr(wcs, "all_pix2world"):
            raise InvalidTypeError(f"wcs must be an astropy.wcs.WCS, got {type(wcs).__name__}")
        if getattr(wcs, "naxis", 2) != 2:
            raise InvalidArgumentError(f"wcs must be celestial 2-D, got naxis={wcs.naxis}")
        try:
            off = np.asarray(pixel_offset, dtype=np.float64).reshape(2)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"pixel_offset must be (col0, row0), got {pixel_offset!r}") from None
        if not np.all(np.isfinite(off)):
            raise InvalidArgumentError("pixel_offset must be finite")
        if shape is None:
            full = getattr(wcs, "array_shape", None)
            if full is None:
                raise InvalidArgumentError(
                    "shape (height, width) is required when the WCS has no NAXIS1/NAXIS2")
            # the rest of the WCS frame beyond the offset
            shape = (int(full[0] - off[1]), int(full[1] - off[0]))
        self.shape = _shape(shape)
        self.wcs = wcs
        self.col0, self.row0 = float(off[0]), float(off[1])
        h, w = self.shape
        # image centre and corners (pixel edges), 0-based WCS pixel coordinates
        cols = self.col0 + np.array([w / 2 - 0.5, -0.5, w - 0.5, -0.5, w - 0.5,
                                     w / 2 - 0.5, w / 2 - 0.5, -0.5, w - 0.5])
        rows = self.row0 + np.array([h / 2 - 0.5, -0.5, -0.5, h - 0.5, h - 0.5,
                                     -0.5, h - 0.5, h / 2 - 0.5, h / 2 - 0.5])
        ra, dec = wcs.all_pix2world(cols, rows, 0)
        v = radec_to_vector(ra, dec)
        if not np.all(np.isfinite(v[0])):
            raise InvalidArgumentError("the WCS does not map the image centre to the sky")
        self.centre = v[0]
        radius = np.degrees(angle_between(v[0], v[1:]))
        if not np.isfinite(radius).any():
            raise InvalidArgumentError("the WCS maps none of the image's border to the sky")
        top = float(np.nanmax(radius))
        self.scale_deg_px = top / (0.5 * np.hypot(w, h))
        # border points off the sky (a fisheye's image circle inside the frame): the field's
        # reach is unknown, search the whole sky (all_world2pix places what is imaged)
        self.partial = not np.isfinite(radius).all()
        self.radius_deg = 180.0 if top > 179.0 or self.partial else top
        self.rotation = None

    def images(self, x: NDArray, y: NDArray) -> NDArray[np.bool_]:
        """Which centred pixel positions the WCS maps to the sky."""
        h, w = self.shape
        ra, _ = self.wcs.all_pix2world(np.ravel(x) + self.col0 - 0.5 + 0.5 * w,
                                       np.ravel(y) + self.row0 - 0.5 + 0.5 * h, 0)
        return np.isfinite(ra).reshape(np.shape(x))

    @property
    def boresight(self) -> NDArray:
        """ICRS direction of the image centre (the zenith of a default horizon)."""
        return self.centre

    def camera_vectors(self, v_icrs: NDArray) -> None:
        return None

    def project(self, v_icrs: NDArray) -> tuple[NDArray, NDArray]:
        if v_icrs.shape[0] == 0:
            return np.empty(0), np.empty(0)
        ra, dec = vector_to_radec(v_icrs)
        col, row = self.wcs.all_world2pix(ra, dec, 0, tolerance=1e-7, maxiter=50, quiet=True)
        h, w = self.shape
        return (np.asarray(col) - self.col0 + 0.5 - 0.5 * w,
                np.asarray(row) - self.row0 + 0.5 - 0.5 * h)



def geometry(camera: Any, attitude: Any, wcs: Any, shape: Any, pixel_offset: Any) -> Any:
    """The frame geometry of a camera and attitude, or of a WCS (exactly one of the two)."""
    if wcs is not None:
        if camera is not None or attitude is not None:
            raise InvalidArgumentError("give either wcs, or camera and attitude, not both")
        return _WCSGeometry(wcs, shape, pixel_offset)
    if camera is None or attitude is None:
        raise InvalidArgumentError("camera and attitude are required (or give wcs)")
    geom = _CameraGeometry(camera, attitude)
    if shape is not None and _shape(shape) != geom.shape:
        raise InvalidArgumentError(
            f"shape {tuple(shape)} differs from the camera's (height, width) {geom.shape}")
    if tuple(np.asarray(pixel_offset, dtype=float).ravel()) != (0.0, 0.0):
        raise InvalidArgumentError("pixel_offset applies to the wcs path only")
    return geom


def _faint_stars(centre: NDArray, limit_mag: float, field_mags: NDArray, field_vectors: NDArray,
                 depth: float, slope: float, zone_deg: float,
                 rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """Random stars fainter than the catalog, with the field's own star density.

    The catalog's count in the magnitude just above its limit, within
    ``zone_deg`` of ``centre``, is extrapolated as ``dN/dm ∝ 10**(slope * m)``
    over ``[limit, limit + depth]``; positions are uniform on that sky cap.
    Returns ICRS unit vectors and magnitudes.
    """
    cos_zone = np.cos(np.radians(zone_deg))
    near = field_vectors @ centre >= cos_zone
    mags = field_mags[near]
    # at least one star per magnitude, so a sparse field still gets a few
    n1 = max(int(np.count_nonzero((mags > limit_mag - 1.0) & (mags <= limit_mag))), 1)
    a = slope * np.log(10.0)
    # integral of n1 * 10**(slope (m - limit + 0.5)) dm over [limit, limit + depth]
    expected = n1 * np.exp(0.5 * a) * np.expm1(a * depth) / a
    n = int(rng.poisson(expected))
    mag = limit_mag + np.log1p(rng.uniform(size=n) * np.expm1(a * depth)) / a
    cos_r = 1.0 - rng.uniform(size=n) * (1.0 - cos_zone)  # uniform in solid angle
    sin_r = np.sqrt(np.maximum(0.0, 1.0 - cos_r**2))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    helper = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(helper, centre)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    v = (cos_r[:, None] * centre
         + sin_r[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2))
    return v, mag


# --------------------------------------------------------------------------------------
# Wide fields: image circle and horizon


def check_radec(value: Any, name: str) -> tuple[float, float] | None:
    """``None`` or an ``(ra, dec)`` pair in degrees with ``-90 <= dec <= 90``."""
    if value is None:
        return None
    v = _args.vector(value, name, 2, what="numbers (ra, dec) in degrees")
    _args.number(v[1], f"{name}[1] (dec)", minimum=-90.0, maximum=90.0)
    return float(v[0]), float(v[1])


check_circle_px = _args.optional_positive
check_circle_deg = functools.partial(_args.positive, maximum=180.0, allow_none=True)
check_horizon = functools.partial(_args.number, minimum=-90.0, maximum=90.0, allow_none=True)


class FieldLimits:
    """What a frame's lens and site let through: its image circle and a horizon.

    Parameters
    ----------
    geom : _CameraGeometry or _WCSGeometry
    image_circle_px : float, optional
        The lens images the sky only within this radius (px) of the optical centre.
    image_circle_deg : float, optional
        The lens images directions at most this far from the optical axis (degrees).
    horizon_deg : float, optional
        Stars of lower altitude (degrees) are hidden.
    zenith_radec_deg : (float, float), optional
        The zenith of the horizon (default: the boresight).

    Values are checked by the callers (``check_*`` above).
    """

    def __init__(self, geom: Any, image_circle_px: float | None = None,
                 image_circle_deg: float | None = None, horizon_deg: float | None = None,
                 zenith_radec_deg: tuple[float, float] | None = None):
        camera = getattr(geom, "camera", None)
        if camera is None and (image_circle_px is not None or image_circle_deg is not None):
            raise InvalidArgumentError(
                "image_circle_px and image_circle_deg describe a camera's lens: give camera "
                "and attitude instead of wcs")
        self.geom, self.camera = geom, camera
        self.radius_px = image_circle_px
        self.cos_max = None if image_circle_deg is None else np.cos(np.radians(image_circle_deg))
        self.circle_deg = image_circle_deg
        self.centre_px = (np.zeros(2) if camera is None
                          else np.asarray(getattr(camera, "crpix", np.zeros(2)), dtype=float))
        # every pixel of a pinhole camera without a circle (or of a WCS whose border is all
        # on the sky) images the sky: no per-pixel work
        if camera is None:
            self.whole_frame = not geom.partial
        else:
            self.whole_frame = (getattr(camera, "projection_code", 0) == 0
                                and image_circle_px is None and image_circle_deg is None)
        self.zenith = None
        if horizon_deg is not None:
            self.zenith = (geom.boresight if zenith_radec_deg is None
                           else radec_to_vector(*zenith_radec_deg))
            self.sin_alt = float(np.sin(np.radians(horizon_deg)))

    def _in_circle(self, x: NDArray, y: NDArray) -> NDArray[np.bool_]:
        ok = np.isfinite(x) & np.isfinite(y)
        if self.radius_px is not None:
            ok &= np.hypot(x - self.centre_px[0], y - self.centre_px[1]) <= self.radius_px
        return ok

    def stars(self, v_icrs: NDArray, x: NDArray, y: NDArray) -> NDArray[np.bool_]:
        """Which stars (ICRS unit vectors imaged at centred ``x, y``) are seen."""
        ok = self._in_circle(x, y)
        if self.cos_max is not None and ok.any():
            ok &= self.geom.camera_vectors(v_icrs)[:, 2] >= self.cos_max
        if self.zenith is not None:
            ok &= v_icrs @ self.zenith >= self.sin_alt
        return ok

    def pixels(self, x: NDArray, y: NDArray) -> NDArray[np.bool_]:
        """Which centred pixel positions image the sky (the frame's edges not checked)."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        if self.whole_frame:
            return np.isfinite(x) & np.isfinite(y)
        ok = self._in_circle(x, y)
        if self.camera is None:
            return ok & self.geom.images(x, y)
        v = _camera_vectors(self.camera, x, y)
        with np.errstate(invalid="ignore"):
            ok &= np.isfinite(v).all(axis=-1)
            if self.cos_max is not None:
                ok &= v[..., 2] >= self.cos_max
        return ok

    def mask(self) -> NDArray[np.bool_] | None:
        """``(height, width)`` mask of the pixels that image the sky; None when all do."""
        if self.whole_frame:
            return None
        h, w = self.geom.shape
        xs = np.arange(w) + 0.5 - 0.5 * w
        ys = np.arange(h) + 0.5 - 0.5 * h
        return self.pixels(xs[None, :], ys[:, None])

    def random_pixels(self, n: int, rng: np.random.Generator) -> tuple[NDArray, NDArray]:
        """``n`` centred positions uniform over the part of the frame that images the sky."""
        h, w = self.geom.shape
        if self.whole_frame:
            return rng.uniform(-0.5 * w, 0.5 * w, n), rng.uniform(-0.5 * h, 0.5 * h, n)
        xs, ys = np.empty(0), np.empty(0)
        for _ in range(200):
            if xs.size >= n:
                break
            m = max(2 * (n - xs.size), 16)
            x, y = rng.uniform(-0.5 * w, 0.5 * w, m), rng.uniform(-0.5 * h, 0.5 * h, m)
            ok = self.pixels(x, y)
            xs, ys = np.concatenate([xs, x[ok]]), np.concatenate([ys, y[ok]])
        if xs.size < n:
            raise InvalidArgumentError("the camera's image circle leaves no pixel of its frame "
                                       "imaging the sky")
        return xs[:n], ys[:n]

    def circle_radius_px(self) -> float | None:
        """Radius (px) of the image circle about the optical centre, if one is set."""
        radii = [] if self.radius_px is None else [self.radius_px]
        if self.cos_max is not None:
            t = np.radians(self.circle_deg)
            phi = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
            v = np.stack([np.sin(t) * np.cos(phi), np.sin(t) * np.sin(phi),
                          np.full(8, np.cos(t))], axis=1)
            x, y = _camera_project(self.camera, v)
            r = np.hypot(x - self.centre_px[0], y - self.centre_px[1])
            if np.isfinite(r).any():  # distortion may make it an oval: its mean radius
                radii.append(float(np.nanmean(r)))
        return min(radii) if radii else None

    def vignetting_t2(self, x: ArrayLike, y: ArrayLike) -> NDArray:
        """``(r / r_edge)**2``: r from the optical centre over the image circle's radius
        when there is a circle, else from the image centre over the corners'."""
        r_edge = self.circle_radius_px()
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if r_edge is None:
            return GaussianPSF._t2(x, y, self.geom.shape)
        return ((x - self.centre_px[0]) ** 2 + (y - self.centre_px[1]) ** 2) / r_edge**2
