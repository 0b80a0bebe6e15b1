"""Simulated star-field images and centroid lists with exact truth.

For tests, benchmarks and demos:

* :func:`render_starfield` renders a realistic detector frame of catalog stars
  seen by a :class:`~skysolve.CameraModel` at an attitude, or through any
  astropy WCS (TAN or TAN-SIP, optionally a sub-frame of a larger detector):
  pixel-integrated Gaussian PSF (optionally varying over the field), sky
  background with gradients, photon and read noise, bias and gain, saturation
  with charge bleeding, hot pixels, cosmic rays, faint stars the catalog does
  not have, and an optional mirror flip. It returns the image and a
  :class:`StarfieldTruth` of every star that put light on it.
* :func:`render_stars` is the bare vectorised renderer (positions + fluxes →
  image), used by :func:`render_starfield`.
* :func:`simulate_centroids` skips the pixels: it projects catalog stars and
  returns a perturbed, brightest-first centroid list plus the catalog id of
  every row — fast enough for thousands of random pointings.
* :func:`random_attitudes` draws uniformly distributed rotations.

Conventions are those of the package: centred pixel coordinates
``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``; attitudes rotate ICRS vectors
into the camera frame (+X right, +Y down, +Z boresight); quaternions
``[w, x, y, z]``.

Photometry: a star of magnitude ``m`` collects
``exposure_s * 10**(-0.4 * (m - zeropoint_mag))`` electrons, i.e. the zero
point is the magnitude that gives 1 e-/s.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from ._render import render_covariance, render_separable, stamp_half_widths
from .errors import InvalidArgumentError, InvalidTypeError
from .geometry import (
    angle_between,
    angle_to_chord,
    as_rotation_matrix,
    camera_vectors_from_tanplane,
    radec_to_vector,
    tanplane_from_camera_vectors,
    vector_to_radec,
)

if TYPE_CHECKING:  # pragma: no cover
    from astropy.wcs import WCS

    from .camera import CameraModel
    from .catalogs import Catalog

__all__ = [
    "GaussianPSF",
    "StarfieldTruth",
    "SimulatedCentroids",
    "render_stars",
    "render_starfield",
    "simulate_centroids",
    "random_attitudes",
    "magnitude_to_flux",
    "TESS_LIKE_A",
    "TESS_LIKE_B",
    "tess_like_camera",
]

_MAS_PER_DEG = 3.6e6


# --------------------------------------------------------------------------------------
# PSF


@dataclass(frozen=True)
class GaussianPSF:
    """A Gaussian point-spread function that may vary over the field.

    The PSF at centred pixel position ``(x, y)``, at fractional field radius
    ``t = r / r_corner`` (``r_corner`` is the image half-diagonal), has

    * major-axis sigma ``sigma_px + (edge_sigma_px - sigma_px) * t**2``,
    * ellipticity ``1 - minor/major = edge_ellipticity * t**2``,
    * major axis along the radial direction rotated by ``elongation_angle_deg``
      (0: radial, as coma and field curvature produce; 90: tangential);

    plus, optionally, a faint round halo (scattered light) holding
    ``halo_fraction`` of the flux with sigma ``halo_sigma_px``.

    Parameters
    ----------
    sigma_px : float
        Sigma (pixels) at the image centre; FWHM = 2.3548 sigma.
    edge_sigma_px : float, optional
        Major-axis sigma at the image corners (default: ``sigma_px``).
    edge_ellipticity : float
        Ellipticity at the corners, in [0, 1).
    elongation_angle_deg : float
        Angle of the major axis from the radial direction (degrees).
    subsample : int
        Sub-pixel samples per pixel (along y) for elliptical PSFs; round PSFs
        are integrated exactly.
    halo_fraction : float
        Fraction of each star's flux in the halo, in [0, 1).
    halo_sigma_px : float
        Sigma of the halo (pixels).
    """

    sigma_px: float = 1.2
    edge_sigma_px: float | None = None
    edge_ellipticity: float = 0.0
    elongation_angle_deg: float = 0.0
    subsample: int = 5
    halo_fraction: float = 0.0
    halo_sigma_px: float = 5.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.sigma_px) and self.sigma_px > 0):
            raise InvalidArgumentError(f"sigma_px must be positive, got {self.sigma_px}")
        if self.edge_sigma_px is not None and not (np.isfinite(self.edge_sigma_px)
                                                   and self.edge_sigma_px > 0):
            raise InvalidArgumentError(
                f"edge_sigma_px must be positive, got {self.edge_sigma_px}")
        if not 0.0 <= self.edge_ellipticity < 1.0:
            raise InvalidArgumentError(
                f"edge_ellipticity must be in [0, 1), got {self.edge_ellipticity}")
        if not 0.0 <= self.halo_fraction < 1.0:
            raise InvalidArgumentError(
                f"halo_fraction must be in [0, 1), got {self.halo_fraction}")
        if not (np.isfinite(self.halo_sigma_px) and self.halo_sigma_px > 0):
            raise InvalidArgumentError(
                f"halo_sigma_px must be positive, got {self.halo_sigma_px}")
        if int(self.subsample) != self.subsample or self.subsample < 1:
            raise InvalidArgumentError(f"subsample must be a positive integer, got "
                                       f"{self.subsample}")

    @property
    def is_round(self) -> bool:
        """True when the PSF is circular everywhere (exact separable rendering)."""
        return self.edge_ellipticity == 0.0

    def major_sigma(self, x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        """Major-axis sigma (pixels) at centred positions ``(x, y)`` of an image ``shape``."""
        t2 = self._t2(x, y, shape)
        edge = self.sigma_px if self.edge_sigma_px is None else self.edge_sigma_px
        return self.sigma_px + (edge - self.sigma_px) * t2

    def covariance(self, x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        """PSF covariances ``(n, 3)`` as ``(c_xx, c_yy, c_xy)`` in px² at ``(x, y)``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        major = self.major_sigma(x, y, shape)
        minor = major * (1.0 - self.edge_ellipticity * self._t2(x, y, shape))
        theta = np.arctan2(y, x) + np.radians(self.elongation_angle_deg)
        c, s = np.cos(theta), np.sin(theta)
        a2, b2 = major**2, minor**2
        return np.stack([a2 * c * c + b2 * s * s, a2 * s * s + b2 * c * c, (a2 - b2) * c * s],
                        axis=-1)

    @staticmethod
    def _t2(x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        h, w = shape
        return (np.asarray(x, dtype=np.float64) ** 2 + np.asarray(y, dtype=np.float64) ** 2) / (
            0.25 * (w * w + h * h))


def _as_psf(psf: float | GaussianPSF) -> GaussianPSF:
    if isinstance(psf, GaussianPSF):
        return psf
    if isinstance(psf, (int, float, np.integer, np.floating)) and not isinstance(psf, bool):
        return GaussianPSF(float(psf))
    raise InvalidTypeError(f"psf must be a sigma in pixels or a GaussianPSF, got {type(psf)!r}")


def _max_sigma(psf: GaussianPSF) -> float:
    edge = psf.sigma_px if psf.edge_sigma_px is None else psf.edge_sigma_px
    return max(psf.sigma_px, edge, psf.halo_sigma_px if psf.halo_fraction > 0 else 0.0)


def _stamp_reach(flux: NDArray, psf: GaussianPSF) -> NDArray[np.int64]:
    """Conservative stamp half-widths (px) used to decide which stars touch the image."""
    return stamp_half_widths(np.asarray(flux, dtype=np.float64),
                             np.full(np.shape(flux), _max_sigma(psf)))


# --------------------------------------------------------------------------------------
# Renderer


def _shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be (height, width), got {shape!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(shape):
        raise InvalidArgumentError(f"{name} must be two positive integers, got {shape!r}")
    return h, w


def render_stars(shape: tuple[int, int], x: ArrayLike, y: ArrayLike, flux: ArrayLike,
                 psf: float | GaussianPSF = 1.2) -> NDArray[np.float64]:
    """Render point sources, each PSF integrated over the pixels (noise-free).

    Parameters
    ----------
    shape : (int, int)
        Image ``(height, width)``.
    x, y : array_like, shape ``(n,)``
        Centred pixel coordinates (``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``).
        Stars near or beyond the edges are allowed; only the part of the PSF
        on the image is deposited.
    flux : array_like, shape ``(n,)``
        Total counts of each star (any unit; the image has the same unit).
    psf : float or GaussianPSF
        Gaussian sigma in pixels, or a field-dependent :class:`GaussianPSF`.

    Returns
    -------
    ndarray of float64, shape ``shape``
        Sum over stars of flux × PSF. A star entirely on the image adds exactly
        its flux; its intensity-weighted centroid is its ``(x, y)``.

    Notes
    -----
    Round PSFs are integrated exactly (differences of the normal CDF, separable
    in x and y); elliptical PSFs exactly along x and with ``psf.subsample``
    samples per pixel along y. All stars are processed at once (stamps grouped
    by size), so tens of thousands of stars take well under a second.
    """
    h, w = _shape(shape)
    psf = _as_psf(psf)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    flux = np.atleast_1d(np.asarray(flux, dtype=np.float64))
    if not (x.ndim == 1 and x.shape == y.shape == flux.shape):
        raise InvalidArgumentError(
            f"x, y and flux must be 1-D arrays of one length, got shapes {x.shape}, {y.shape}, "
            f"{flux.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (flux > 0)
    x, y, flux = x[ok], y[ok], flux[ok]
    image = np.zeros((h, w), dtype=np.float64)
    if x.size == 0:
        return image
    if psf.halo_fraction > 0:
        halo = np.full(x.size, float(psf.halo_sigma_px))
        render_separable((h, w), x, y, flux * psf.halo_fraction, halo, halo, out=image)
        flux = flux * (1.0 - psf.halo_fraction)
    if psf.is_round:
        sigma = psf.major_sigma(x, y, (h, w))
        return render_separable((h, w), x, y, flux, sigma, sigma, out=image)
    cov = psf.covariance(x, y, (h, w))
    return render_covariance((h, w), x, y, flux, cov, subsample=int(psf.subsample), out=image)


def magnitude_to_flux(mag: ArrayLike, zeropoint_mag: float = 20.0,
                      exposure_s: float = 1.0) -> NDArray[np.float64]:
    """Electrons collected from stars of magnitude ``mag``.

    ``flux = exposure_s * 10**(-0.4 * (mag - zeropoint_mag))``: the zero point is
    the magnitude giving 1 e-/s.
    """
    return exposure_s * np.power(10.0, -0.4 * (np.asarray(mag, dtype=np.float64)
                                               - zeropoint_mag))


# --------------------------------------------------------------------------------------
# Catalog cone search (KD-tree cached per Catalog object)


class _SkyIndex:
    """KD-trees over a catalog's unit vectors at its own epoch.

    Besides the whole catalog, nested "layers" of its brightest 4096, 16384, ...
    stars get their own (lazily built) trees: a caller that only needs the
    brightest stars of a field queries a small tree instead of the whole catalog.
    """

    __slots__ = ("catalog", "ra", "dec", "vectors", "order", "sizes", "cuts", "_trees",
                 "max_pm_deg_yr", "limit_mag")

    _FIRST_LAYER = 4096

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self.ra, self.dec = catalog.ra_deg, catalog.dec_deg
        self.vectors = catalog.vectors()
        n = len(catalog)
        self.order = np.argsort(catalog.mag, kind="stable")
        sizes = []
        size = self._FIRST_LAYER
        while size < n:
            sizes.append(size)
            size *= 4
        sizes.append(n)
        self.sizes = sizes
        # every star outside layer k is at least this faint
        self.cuts = [float(catalog.mag[self.order[k]]) if k < n else np.inf for k in sizes]
        self._trees: dict[int, cKDTree] = {}
        pm = np.hypot(catalog.pmra_mas_yr, catalog.pmdec_mas_yr)
        self.max_pm_deg_yr = float(pm.max()) / _MAS_PER_DEG if n else 0.0
        # faint end of the catalog, robust to a few stragglers
        self.limit_mag = float(np.percentile(catalog.mag, 99.5)) if n else 0.0

    def matches(self, catalog: Catalog) -> bool:
        return (self.catalog is catalog and catalog.ra_deg is self.ra
                and catalog.dec_deg is self.dec)

    def tree(self, layer: int) -> cKDTree:
        layer = layer % len(self.sizes)
        tree = self._trees.get(layer)
        if tree is None:
            tree = cKDTree(self.vectors[self.order[:self.sizes[layer]]])
            self._trees[layer] = tree
        return tree

    def cone(self, centre: NDArray, radius_deg: float, epoch_year: float,
             layer: int = -1) -> NDArray[np.intp]:
        """Catalog indices of stars within ``radius_deg`` of ``centre`` at ``epoch_year``.

        A superset: the radius is widened by the largest proper motion over the
        epoch difference. ``layer`` restricts the search to a brightness layer.
        """
        if len(self.order) == 0:
            return np.empty(0, dtype=np.intp)
        margin = self.max_pm_deg_yr * abs(epoch_year - self.catalog.epoch)
        r = min(float(radius_deg) + margin, 180.0)
        idx = self.tree(layer).query_ball_point(
            centre, float(angle_to_chord(np.radians(r))) + 1e-12, return_sorted=True)
        return self.order[np.fromiter(idx, dtype=np.intp, count=len(idx))]


_INDEX_CACHE: OrderedDict[int, _SkyIndex] = OrderedDict()
_INDEX_CACHE_SIZE = 6


def _sky_index(catalog: Catalog) -> _SkyIndex:
    # The cache holds the catalog itself, so its id cannot be reused while cached;
    # replacing the position arrays invalidates the entry.
    key = id(catalog)
    entry = _INDEX_CACHE.get(key)
    if entry is None or not entry.matches(catalog):
        entry = _SkyIndex(catalog)
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
    """Centred pixel coordinates of camera-frame vectors (NaN behind the camera)."""
    if v_cam.shape[0] == 0:
        return np.empty(0), np.empty(0)
    if hasattr(camera, "vectors_to_pixel"):
        x, y = camera.vectors_to_pixel(v_cam)
    else:
        x, y = camera.tanplane_to_pixel(*tanplane_from_camera_vectors(v_cam))
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    behind = v_cam[:, 2] <= 0
    return np.where(behind, np.nan, x), np.where(behind, np.nan, y)


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
        xi, eta = camera.pixel_to_tanplane(px, py)
        v = camera_vectors_from_tanplane(xi, eta) @ self.rotation  # camera -> ICRS
        radius = np.degrees(angle_between(v[0], v[1:]))
        if not (np.isfinite(v[0]).all() and np.isfinite(radius).any()):
            raise InvalidArgumentError(
                "camera cannot map its own image to the sky (distortion not invertible)")
        self.centre = v[0]
        self.radius_deg = float(np.nanmax(radius))
        self.scale_deg_px = self.radius_deg / (0.5 * np.hypot(w, h))

    def project(self, v_icrs: NDArray) -> tuple[NDArray, NDArray]:
        return _camera_project(self.camera, v_icrs @ self.rotation.T)


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
        if not np.all(np.isfinite(v)):
            raise InvalidArgumentError("the WCS does not map the image corners to the sky")
        self.centre = v[0]
        self.radius_deg = float(np.degrees(angle_between(v[0], v[1:]).max()))
        self.scale_deg_px = self.radius_deg / (0.5 * np.hypot(w, h))
        self.rotation = None

    def project(self, v_icrs: NDArray) -> tuple[NDArray, NDArray]:
        if v_icrs.shape[0] == 0:
            return np.empty(0), np.empty(0)
        ra, dec = vector_to_radec(v_icrs)
        col, row = self.wcs.all_world2pix(ra, dec, 0, tolerance=1e-7, maxiter=50, quiet=True)
        h, w = self.shape
        return (np.asarray(col) - self.col0 + 0.5 - 0.5 * w,
                np.asarray(row) - self.row0 + 0.5 - 0.5 * h)


# --------------------------------------------------------------------------------------
# Truth


@dataclass
class StarfieldTruth:
    """Exact truth of a rendered star field, brightest first.

    Every star whose PSF puts light on the image is listed, including stars
    whose centre lies just outside it.

    Attributes
    ----------
    x, y : ndarray of float64
        Centred pixel coordinates in the returned image (after any mirror flip).
    catalog_id : ndarray of int64
        Catalog id, or -1 for the extra faint stars not in the catalog.
    mag : ndarray of float64
        Magnitude (catalog or drawn).
    flux : ndarray of float64
        Expected electrons of the star (after vignetting, including any part
        falling off the image).
    in_catalog : ndarray of bool
        False for the extra faint stars.
    saturated : ndarray of bool
        The pixel under the star's centre reached the full well.
    on_image : ndarray of bool
        The star's centre lies on the image.
    psf_cov : ndarray, shape ``(n, 3)``
        The star's Gaussian PSF covariance ``(c_xx, c_yy, c_xy)`` in px² (before
        pixel integration, which adds 1/12 px² to ``c_xx`` and ``c_yy``).
    shape : (int, int)
        Image ``(height, width)``.
    rotation : ndarray or None
        ICRS→camera rotation used (camera path), else None.
    mirror : bool
        Whether the image was flipped left-right.
    epoch_year : float
        Epoch of the star positions.
    hot_pixels : ndarray, shape ``(k, 2)``
        Centred ``(x, y)`` of the hot pixels.
    cosmic_rays : ndarray, shape ``(m, 4)``
        Centred ``(x0, y0, x1, y1)`` end points of the cosmic-ray tracks.
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    catalog_id: NDArray[np.int64]
    mag: NDArray[np.float64]
    flux: NDArray[np.float64]
    in_catalog: NDArray[np.bool_]
    saturated: NDArray[np.bool_]
    on_image: NDArray[np.bool_]
    psf_cov: NDArray[np.float64]
    shape: tuple[int, int]
    rotation: NDArray[np.float64] | None = None
    mirror: bool = False
    epoch_year: float = 0.0
    hot_pixels: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 2)))
    cosmic_rays: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 4)))

    def __len__(self) -> int:
        return int(self.x.size)

    def to_table(self):
        """The per-star columns as an :class:`astropy.table.Table`."""
        from astropy.table import Table

        return Table({k: getattr(self, k) for k in ("x", "y", "catalog_id", "mag", "flux",
                                                   "in_catalog", "saturated", "on_image")})


# --------------------------------------------------------------------------------------
# Detector effects


def _rng(seed: Any) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise InvalidTypeError(f"seed must be an int, a numpy Generator or None, got {type(seed)!r}")


def _spill(col: NDArray, start: int, step: int, amount: float, full_well: float) -> float:
    """Pour ``amount`` into ``col`` from ``start`` in direction ``step``; return the rest."""
    if amount <= 0:
        return 0.0
    if start < 0 or start >= col.size:
        return amount
    seg = col[start::step] if step > 0 else col[start::-1]
    # saturated pixels on the way have negative room: crossing them adds their excess
    room = np.cumsum(full_well - seg)
    enough = room >= amount
    if not enough.any():
        seg[:] = full_well
        return float(amount - room[-1])
    j = int(np.argmax(enough))
    seg[:j] = full_well
    seg[j] += amount - (room[j - 1] if j else 0.0)
    return 0.0


def _bleed(image: NDArray, full_well: float) -> None:
    """Saturate at ``full_well`` and spill the excess along the columns, in place.

    The excess of each saturated run is split evenly up and down the column,
    filling pixels to the full well; what cannot fit on one side goes to the
    other. Charge is conserved except what would run off both column ends.
    """
    for c in np.flatnonzero((image > full_well).any(axis=0)):
        col = image[:, c].copy()
        while True:
            over = np.flatnonzero(col > full_well)
            if over.size == 0:
                break
            start = over[0]
            gaps = np.flatnonzero(np.diff(over) > 1)
            end = over[gaps[0]] if gaps.size else over[-1]
            excess = float(np.sum(col[start:end + 1] - full_well))
            col[start:end + 1] = full_well
            up = 0.5 * excess
            rest_up = _spill(col, start - 1, -1, up, full_well)
            rest_down = _spill(col, end + 1, 1, excess - up + rest_up, full_well)
            if rest_down > 0 and rest_up == 0:
                _spill(col, start - 1, -1, rest_down, full_well)
        image[:, c] = col


def _cosmic_rays(image: NDArray, count: int, rng: np.random.Generator) -> NDArray:
    """Add ``count`` short straight tracks of deposited charge; return their end points."""
    h, w = image.shape
    x0 = rng.uniform(-0.5 * w, 0.5 * w, count)
    y0 = rng.uniform(-0.5 * h, 0.5 * h, count)
    length = np.minimum(rng.exponential(4.0, count), 25.0)
    angle = rng.uniform(0.0, 2 * np.pi, count)
    charge = rng.uniform(300.0, 3000.0, count)  # e- per pixel of path
    x1 = x0 + length * np.cos(angle)
    y1 = y0 + length * np.sin(angle)
    step = 0.1
    nsamp = np.maximum(np.ceil(length / step).astype(np.int64), 1)
    owner = np.repeat(np.arange(count), nsamp)
    t = (np.arange(owner.size) - np.repeat(np.cumsum(nsamp) - nsamp, nsamp) + 0.5) / nsamp[owner]
    cols = np.floor(x0[owner] + t * (x1 - x0)[owner] + 0.5 * w).astype(np.int64)
    rows = np.floor(y0[owner] + t * (y1 - y0)[owner] + 0.5 * h).astype(np.int64)
    ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    dep = (charge * np.maximum(length, 1.0) / nsamp)[owner]
    image.reshape(-1)[:] += np.bincount(rows[ok] * w + cols[ok], weights=dep[ok],
                                        minlength=h * w)
    return np.stack([x0, y0, x1, y1], axis=1)


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
# Public simulators


def _finite(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise InvalidTypeError(f"{name} must be a number, got a bool")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v):
        raise InvalidArgumentError(f"{name} must be finite, got {value!r}")
    return v


def _nonneg(value: Any, name: str) -> float:
    v = _finite(value, name)
    if v < 0:
        raise InvalidArgumentError(f"{name} must be >= 0, got {value!r}")
    return v


def _fraction(value: Any, name: str) -> float:
    v = _nonneg(value, name)
    if v > 1:
        raise InvalidArgumentError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _count(value: Any, name: str) -> int:
    v = _nonneg(value, name)
    if v != int(v):
        raise InvalidArgumentError(f"{name} must be a whole number, got {value!r}")
    return int(v)


def _geometry(camera: Any, attitude: Any, wcs: Any, shape: Any, pixel_offset: Any) -> Any:
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


def render_starfield(
    catalog: Catalog,
    camera: CameraModel | None = None,
    attitude: ArrayLike | None = None,
    *,
    wcs: WCS | None = None,
    shape: tuple[int, int] | None = None,
    pixel_offset: tuple[float, float] = (0.0, 0.0),
    epoch_year: float | None = None,
    psf: float | GaussianPSF = 1.2,
    exposure_s: float = 1.0,
    zeropoint_mag: float = 20.0,
    background_e: float | ArrayLike = 100.0,
    background_gradient_e: tuple[float, float] = (0.0, 0.0),
    read_noise_e: float = 5.0,
    gain_e_per_adu: float = 1.0,
    bias_adu: float = 0.0,
    full_well_e: float | None = 100_000.0,
    noise: bool = True,
    vignetting: float = 0.0,
    flat_field_rms: float = 0.0,
    adc_bits: int | None = None,
    hot_pixel_fraction: float = 0.0,
    cosmic_rays: int = 0,
    faint_star_depth_mag: float = 0.0,
    faint_star_slope: float = 0.35,
    catalog_limit_mag: float | None = None,
    mirror: bool = False,
    seed: int | np.random.Generator | None = None,
) -> tuple[NDArray[np.float32], StarfieldTruth]:
    """Render a realistic star-field frame from a catalog, with its exact truth.

    The geometry is either a camera model at an attitude, or an astropy WCS.

    Parameters
    ----------
    catalog : Catalog
        Stars to render (e.g. ``skysolve.load_gaia()``); the KD-tree used to
        find the field's stars is built once per catalog object and cached.
    camera : CameraModel, optional
        Camera geometry (focal length, size, optical centre, parity,
        distortion); the image has the camera's size.
    attitude : array_like, optional
        ICRS→camera rotation: 3×3 matrix or ``[w, x, y, z]`` quaternion.
    wcs : astropy.wcs.WCS, optional
        Alternative to ``camera``/``attitude``: any celestial WCS (TAN, TAN-SIP,
        ...) in astropy's convention (pixel ``(0, 0)`` is the centre of the first
        pixel). It may describe a larger detector frame of which the image is a
        part (see ``pixel_offset``).
    shape : (int, int), optional
        Image ``(height, width)``; with ``wcs`` it defaults to the WCS's
        ``array_shape`` less ``pixel_offset``.
    pixel_offset : (float, float)
        ``(col0, row0)``: WCS pixel coordinates of the image's first pixel, for a
        sub-frame of the WCS's detector (e.g. ``(44, 0)`` for the science pixels
        of a TESS full-frame image).
    epoch_year : float, optional
        Julian year the catalog is propagated to with proper motions (default:
        the catalog's epoch).
    psf : float or GaussianPSF
        Gaussian sigma in pixels, or a field-dependent :class:`GaussianPSF`.
    exposure_s, zeropoint_mag : float
        Photometry: ``flux_e = exposure_s * 10**(-0.4 * (mag - zeropoint_mag))``.
    background_e : float or array_like
        Sky (and dark) background in e-/pixel over the exposure, a scalar or a
        full ``(height, width)`` array.
    background_gradient_e : (float, float)
        Added background slope in e-/pixel per pixel along x and y, about the
        image centre (the mean level stays ``background_e``).
    read_noise_e : float
        Gaussian read noise (e- rms).
    gain_e_per_adu, bias_adu : float
        Output conversion: ``adu = electrons / gain + bias``.
    full_well_e : float or None
        Saturation level (e-); excess charge bleeds up and down the column
        (conserved, except charge running off both ends). None: no saturation.
    noise : bool
        Poisson photon noise and read noise (False: expected values, exact).
    vignetting : float
        Fraction of the light lost at the image corners; the throughput is
        ``1 - vignetting * (r / r_corner)**2`` for stars and sky alike.
    flat_field_rms : float
        Pixel-to-pixel sensitivity variation (fractional rms, fixed by ``seed``).
    adc_bits : int, optional
        Quantise the output to whole ADU clipped to ``[0, 2**adc_bits - 1]``.
    hot_pixel_fraction : float
        Fraction of pixels with extra dark charge (log-uniform up to the full well).
    cosmic_rays : int
        Number of cosmic-ray tracks (straight, a few pixels long).
    faint_star_depth_mag : float
        Add stars not in the catalog, down to this many magnitudes below the
        catalog's limit, at random positions; their number follows the field's
        own catalog density extrapolated with ``faint_star_slope`` (dex per mag).
        0 disables them.
    faint_star_slope : float
        Logarithmic slope of the star counts, ``dN/dm ∝ 10**(slope * m)``.
    catalog_limit_mag : float, optional
        The catalog's limiting magnitude (default: its 99.5th percentile).
    mirror : bool
        Flip the image left-right, as images that are mirror images of the sky
        (TESS FFIs) are; the truth reports the flipped positions (``x → -x``).
        Solve such images with ``parity_flip=True``.
    seed : int or numpy.random.Generator, optional
        Makes the frame reproducible.

    Returns
    -------
    image : ndarray of float32, shape ``(height, width)``
        The frame in ADU.
    truth : StarfieldTruth
        Every star that puts light on the image (including stars centred just
        outside), brightest first, with positions in the returned image.

    Examples
    --------
    >>> import numpy as np, skysolve
    >>> from skysolve.simulate import render_starfield
    >>> from skysolve.geometry import radec_roll_to_rotation
    >>> cam = skysolve.CameraModel.from_fov(10.0, 1024, 1024)
    >>> R = radec_roll_to_rotation(83.8, -5.4, 30.0)
    >>> image, truth = render_starfield(skysolve.load_hipparcos(), cam, R, seed=1)

    A TESS-like 30-minute full-frame image of the science pixels, through the
    sector's SIP WCS (which already encodes the mirror parity), with Gaia stars
    and three magnitudes of fainter field stars:

    >>> from tesswcs import WCS  # doctest: +SKIP
    >>> image, truth = render_starfield(
    ...     skysolve.load_gaia(), wcs=WCS.from_sector(1, 1, 1), shape=(2048, 2048),
    ...     pixel_offset=(44, 0), epoch_year=2018.6, zeropoint_mag=20.44, exposure_s=1426.0,
    ...     psf=GaussianPSF(0.9, edge_sigma_px=1.4, edge_ellipticity=0.3),
    ...     background_e=27000.0, read_noise_e=300.0, full_well_e=1.4e8,
    ...     faint_star_depth_mag=3.0, seed=1)  # doctest: +SKIP
    """
    _check_catalog(catalog)
    psf = _as_psf(psf)
    rng = _rng(seed)
    geom = _geometry(camera, attitude, wcs, shape, pixel_offset)
    h, w = geom.shape
    exposure_s = _nonneg(exposure_s, "exposure_s")
    zeropoint_mag = _finite(zeropoint_mag, "zeropoint_mag")
    bias_adu = _finite(bias_adu, "bias_adu")
    read_noise_e = _nonneg(read_noise_e, "read_noise_e")
    gain = _nonneg(gain_e_per_adu, "gain_e_per_adu")
    if gain == 0:
        raise InvalidArgumentError("gain_e_per_adu must be > 0")
    hot_pixel_fraction = _fraction(hot_pixel_fraction, "hot_pixel_fraction")
    cosmic_rays = _count(cosmic_rays, "cosmic_rays")
    depth = _nonneg(faint_star_depth_mag, "faint_star_depth_mag")
    slope = _nonneg(faint_star_slope, "faint_star_slope")
    if full_well_e is not None:
        full_well_e = _nonneg(full_well_e, "full_well_e")
        if full_well_e == 0:
            raise InvalidArgumentError("full_well_e must be > 0 (or None)")
    epoch = catalog.epoch if epoch_year is None else _finite(epoch_year, "epoch_year")
    background = _background((h, w), background_e, background_gradient_e)
    vignetting = _fraction(vignetting, "vignetting")
    flat_field_rms = _nonneg(flat_field_rms, "flat_field_rms")
    if adc_bits is not None:
        adc_bits = _count(adc_bits, "adc_bits")
        if not 1 <= adc_bits <= 32:
            raise InvalidArgumentError(f"adc_bits must be in [1, 32], got {adc_bits!r}")

    # --- stars: catalog stars in (and just around) the field, plus faint extras
    margin_deg = (12.0 * _max_sigma(psf) + 3.0) * geom.scale_deg_px * 1.5
    zone = geom.radius_deg + margin_deg
    ids, mags, vecs = _field_stars(catalog, geom.centre, zone, epoch)
    if depth > 0:
        limit = (_sky_index(catalog).limit_mag if catalog_limit_mag is None
                 else float(catalog_limit_mag))
        fv, fm = _faint_stars(geom.centre, limit, mags, vecs, depth, slope, zone, rng)
        vecs = np.concatenate([vecs, fv])
        mags = np.concatenate([mags, fm])
        ids = np.concatenate([ids, np.full(fm.size, -1, dtype=np.int64)])
    x, y = geom.project(vecs)
    flux = magnitude_to_flux(mags, zeropoint_mag, exposure_s)
    if vignetting:
        flux = flux * np.maximum(1.0 - vignetting * GaussianPSF._t2(x, y, (h, w)), 0.0)
    reach = _stamp_reach(flux, psf) + 1
    touch = (np.isfinite(x) & np.isfinite(y) & (np.abs(x) < 0.5 * w + reach)
             & (np.abs(y) < 0.5 * h + reach) & (flux > 0))
    order = np.flatnonzero(touch)
    order = order[np.lexsort((ids[order], -flux[order]))]
    x, y, flux, mags, ids = x[order], y[order], flux[order], mags[order], ids[order]

    # --- expected electrons
    signal = render_stars((h, w), x, y, flux, psf)
    if vignetting:
        xs = np.arange(w) + 0.5 - 0.5 * w
        ys = np.arange(h) + 0.5 - 0.5 * h
        background = background * (1.0 - vignetting * GaussianPSF._t2(
            xs[None, :], ys[:, None], (h, w)))
    signal += background
    if flat_field_rms:
        signal *= np.maximum(rng.normal(1.0, flat_field_rms, (h, w)), 0.0)
    hot_xy = np.empty((0, 2))
    n_hot = int(round(hot_pixel_fraction * h * w))
    if n_hot:
        where = rng.choice(h * w, size=n_hot, replace=False)
        top = full_well_e if full_well_e is not None else 1e5
        lo = max(50.0, 10.0 * read_noise_e)
        signal.reshape(-1)[where] += 10.0 ** rng.uniform(np.log10(lo), np.log10(max(top, lo)),
                                                         n_hot)
        hot_xy = np.stack([where % w + 0.5 - 0.5 * w, where // w + 0.5 - 0.5 * h], axis=1)

    # --- detection
    electrons = rng.poisson(signal).astype(np.float64) if noise else signal
    cr = _cosmic_rays(electrons, cosmic_rays, rng) if cosmic_rays else np.empty((0, 4))
    if full_well_e is not None:
        _bleed(electrons, full_well_e)
    on_image = (np.abs(x) < 0.5 * w) & (np.abs(y) < 0.5 * h)
    saturated = np.zeros(x.size, dtype=bool)
    if full_well_e is not None and on_image.any():
        col = np.clip(np.floor(x[on_image] + 0.5 * w).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor(y[on_image] + 0.5 * h).astype(np.int64), 0, h - 1)
        saturated[on_image] = electrons[row, col] >= full_well_e * (1 - 1e-12)
    image = electrons / gain + bias_adu
    if noise and read_noise_e > 0:
        image += rng.normal(0.0, read_noise_e / gain, (h, w))
    if adc_bits is not None:
        image = np.clip(np.round(image), 0.0, 2.0**adc_bits - 1)

    psf_cov = psf.covariance(x, y, (h, w)).reshape(-1, 3)
    if mirror:
        image = image[:, ::-1]
        x = -x
        psf_cov[:, 2] *= -1.0
        hot_xy = hot_xy * np.array([-1.0, 1.0])
        cr = cr * np.array([-1.0, 1.0, -1.0, 1.0])
    truth = StarfieldTruth(
        x=x, y=y, catalog_id=ids, mag=mags, flux=flux, in_catalog=ids != -1,
        saturated=saturated, on_image=on_image, psf_cov=psf_cov, shape=(h, w),
        rotation=geom.rotation,
        mirror=bool(mirror), epoch_year=epoch, hot_pixels=hot_xy, cosmic_rays=cr)
    return np.ascontiguousarray(image, dtype=np.float32), truth


def _background(shape: tuple[int, int], level: Any, gradient: Any) -> NDArray:
    h, w = shape
    bg = np.asarray(level, dtype=np.float64)
    if bg.ndim == 0:
        if not (np.isfinite(bg) and bg >= 0):
            raise InvalidArgumentError(f"background_e must be finite and >= 0, got {level!r}")
    elif bg.shape != shape:
        raise InvalidArgumentError(
            f"background_e must be a scalar or a {shape} array, got shape {bg.shape}")
    try:
        gx, gy = (float(g) for g in gradient)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"background_gradient_e must be (gx, gy), got {gradient!r}") from None
    xs = np.arange(w) + 0.5 - 0.5 * w
    ys = np.arange(h) + 0.5 - 0.5 * h
    out = bg + gx * xs[None, :] + gy * ys[:, None]
    if not np.all(np.isfinite(out)):
        raise InvalidArgumentError("background_e must be finite")
    return np.maximum(out, 0.0)


@dataclass
class SimulatedCentroids:
    """Output of :func:`simulate_centroids`; unpacks as ``(centroids, catalog_ids)``.

    Attributes
    ----------
    centroids : ndarray, shape ``(n, 3)``
        ``(x, y, brightness)`` rows, centred pixels, brightest first (the
        format ``solve_from_centroids`` accepts).
    catalog_ids : ndarray of int64, shape ``(n,)``
        Catalog id of each row's star, -1 for false stars.
    true_xy : ndarray, shape ``(n, 2)``
        Noise-free centred positions (NaN for false stars).
    magnitudes : ndarray, shape ``(n,)``
        Catalog magnitudes (NaN for false stars).
    rotation : ndarray, shape ``(3, 3)``
        The ICRS→camera rotation used.
    mirror : bool
        Whether x was mirrored.
    """

    centroids: NDArray[np.float64]
    catalog_ids: NDArray[np.int64]
    true_xy: NDArray[np.float64]
    magnitudes: NDArray[np.float64]
    rotation: NDArray[np.float64]
    mirror: bool = False

    def __iter__(self):
        return iter((self.centroids, self.catalog_ids))

    def __len__(self) -> int:
        return int(self.catalog_ids.size)


def simulate_centroids(
    catalog: Catalog,
    camera: CameraModel,
    attitude: ArrayLike,
    *,
    num_stars: int | None = None,
    epoch_year: float | None = None,
    max_magnitude: float | None = None,
    centroid_noise_px: float = 0.0,
    magnitude_noise: float = 0.0,
    drop_fraction: float = 0.0,
    num_false_stars: int = 0,
    mirror: bool = False,
    zeropoint_mag: float = 20.0,
    seed: int | np.random.Generator | None = None,
) -> SimulatedCentroids:
    """Centroid list of catalog stars seen by a camera, without rendering pixels.

    Stars are projected through ``camera`` at ``attitude``; those whose true
    position is on the image are perturbed, thinned and mixed with false
    detections, then ordered brightest first.

    Parameters
    ----------
    catalog : Catalog
        Star catalog; its cone-search KD-tree is built once per object and cached.
    camera : CameraModel
        Camera geometry (image size, focal length, optical centre, parity, distortion).
    attitude : array_like
        ICRS→camera rotation (3×3 matrix or ``[w, x, y, z]`` quaternion).
    num_stars : int, optional
        Keep only the brightest ``num_stars`` rows (after adding false stars).
    epoch_year : float, optional
        Propagate the catalog to this Julian year (default: its epoch).
    max_magnitude : float, optional
        Ignore catalog stars fainter than this.
    centroid_noise_px : float
        Gaussian noise (px rms per axis) added to the positions.
    magnitude_noise : float
        Gaussian noise (mag rms) on the brightness, which shuffles the order.
    drop_fraction : float
        Fraction of real stars randomly missed, in [0, 1].
    num_false_stars : int
        Spurious detections at uniform random positions, with brightnesses
        log-uniform over the range of the real ones.
    mirror : bool
        Mirror x (``x → -x``), as for an image flipped left-right.
    zeropoint_mag : float
        Brightness is ``10**(-0.4 * (mag - zeropoint_mag))``.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    SimulatedCentroids
        Unpacks as ``centroids, catalog_ids = simulate_centroids(...)``.
    """
    _check_catalog(catalog)
    rng = _rng(seed)
    geom = _CameraGeometry(camera, attitude)
    h, w = geom.shape
    sigma = _nonneg(centroid_noise_px, "centroid_noise_px")
    mag_sigma = _nonneg(magnitude_noise, "magnitude_noise")
    drop = _fraction(drop_fraction, "drop_fraction")
    num_false_stars = _count(num_false_stars, "num_false_stars")
    if num_stars is not None:
        num_stars = _count(num_stars, "num_stars")
    zeropoint_mag = _finite(zeropoint_mag, "zeropoint_mag")
    epoch = catalog.epoch if epoch_year is None else _finite(epoch_year, "epoch_year")
    if max_magnitude is not None:
        max_magnitude = _finite(max_magnitude, "max_magnitude")

    index = _sky_index(catalog)
    # With num_stars, search the small trees of the catalog's brightest stars first
    # and widen only if they cannot supply num_stars stars that no fainter star
    # could outshine (noisy magnitudes are trusted to 6 sigma).
    layers = range(len(index.sizes)) if num_stars is not None else [len(index.sizes) - 1]
    for layer in layers:
        ids, mags, vecs = _field_stars(catalog, geom.centre, geom.radius_deg * 1.01 + 1e-3,
                                       epoch, layer)
        if max_magnitude is not None:
            bright = mags <= max_magnitude
            vecs, mags, ids = vecs[bright], mags[bright], ids[bright]
        x, y = geom.project(vecs)
        inside = (np.isfinite(x) & np.isfinite(y) & (x >= -0.5 * w) & (x < 0.5 * w)
                  & (y >= -0.5 * h) & (y < 0.5 * h))
        x, y, mags, ids = x[inside], y[inside], mags[inside], ids[inside]
        n = x.size
        noisy_mag = mags + (rng.normal(0.0, mag_sigma, n) if mag_sigma else 0.0)
        noisy_x = x + (rng.normal(0.0, sigma, n) if sigma else 0.0)
        noisy_y = y + (rng.normal(0.0, sigma, n) if sigma else 0.0)
        kept = rng.random(n) >= drop if drop else np.ones(n, dtype=bool)
        safe = np.count_nonzero(kept & (noisy_mag < index.cuts[layer] - 6.0 * mag_sigma))
        if num_stars is None or safe >= num_stars:
            break
    brightness = magnitude_to_flux(noisy_mag, zeropoint_mag)

    nf = int(num_false_stars)
    fx = rng.uniform(-0.5 * w, 0.5 * w, nf)
    fy = rng.uniform(-0.5 * h, 0.5 * h, nf)
    # false stars span the brightness range of the real stars that will be listed
    real_b = np.sort(brightness[kept])[::-1][:num_stars]
    lo, hi = (np.log10(real_b[-1]), np.log10(real_b[0])) if real_b.size else (0.0, 1.0)
    fb = 10.0 ** rng.uniform(lo, max(hi, lo + 1e-9), nf)

    cx = np.concatenate([noisy_x[kept], fx])
    cy = np.concatenate([noisy_y[kept], fy])
    cb = np.concatenate([brightness[kept], fb])
    cid = np.concatenate([ids[kept], np.full(nf, -1, dtype=np.int64)])
    txy = np.concatenate([np.stack([x[kept], y[kept]], axis=1), np.full((nf, 2), np.nan)])
    cm = np.concatenate([mags[kept], np.full(nf, np.nan)])
    order = np.argsort(-cb, kind="stable")
    if num_stars is not None:
        order = order[:int(num_stars)]
    cents = np.stack([cx[order], cy[order], cb[order]], axis=1)
    txy = txy[order]
    if mirror:
        cents[:, 0] *= -1.0
        txy[:, 0] *= -1.0
    return SimulatedCentroids(centroids=cents, catalog_ids=cid[order], true_xy=txy,
                              magnitudes=cm[order], rotation=geom.rotation, mirror=bool(mirror))


def random_attitudes(n: int, rng: int | np.random.Generator | None = None) -> NDArray[np.float64]:
    """``n`` rotation matrices drawn uniformly from SO(3), shape ``(n, 3, 3)``.

    Parameters
    ----------
    n : int
        Number of attitudes.
    rng : int or numpy.random.Generator, optional
        Seed or generator, for reproducibility.
    """
    n = _count(n, "n")
    if n == 0:
        return np.empty((0, 3, 3))
    return Rotation.random(n, random_state=_rng(rng)).as_matrix().reshape(n, 3, 3)


#: Forward (ideal -> distorted) SIP-like coefficients, in the term order of
#: :func:`skysolve.distortion.polynomial_terms` with scale 1024 px, of a distortion the
#: size of TESS camera 1 / CCD 1's (rounded from the archival sector-1 SIP solution): a
#: shear of ~13 px and curvature reaching ~60 px at the corners.
TESS_LIKE_A = (0.005, 0.008, 12.92, -21.07, -18.56, -3.42, 4.16, 2.13, 4.41, 0.57, -0.67,
               -0.89, -1.07, -0.74, -0.22)
TESS_LIKE_B = (0.005, 12.92, 0.11, -3.47, -18.56, -21.05, 0.57, 4.43, 2.15, 4.12, -0.20,
               -0.72, -1.05, -0.87, -0.67)


def tess_like_camera() -> CameraModel:
    """A 2048x2048 camera like TESS camera 1 / CCD 1, for simulations with known truth.

    Focal length 10040.17 px (FOV ~11.65 deg), optical centre at (-23.5, -23.5) px,
    mirrored (``parity_flip=True``) and an order-4 polynomial distortion built from
    :data:`TESS_LIKE_A` / :data:`TESS_LIKE_B`.
    """
    from .camera import CameraModel
    from .distortion import PolynomialDistortion

    w = h = 2048
    crpix = (-23.5, -23.5)
    dist = PolynomialDistortion.from_forward(4, 1024.0, list(TESS_LIKE_A), list(TESS_LIKE_B),
                                             image_width=w, image_height=h, crpix=crpix)
    return CameraModel(10040.17, w, h, crpix=crpix, parity_flip=True, distortion=dist)
