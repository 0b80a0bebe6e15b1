"""Centroid lists of catalog stars seen by a camera, without pixels; random centroid sets;
random attitudes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from .. import _args
from .detector import rng_of
from .psf import magnitude_to_flux
from .scene import (
    FieldLimits,
    _CameraGeometry,
    _check_catalog,
    _field_stars,
    _sky_index,
    check_circle_deg,
    check_circle_px,
    check_horizon,
    check_radec,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from ..sky.catalogs import Catalog

__all__ = ["SimulatedCentroids", "simulate_centroids", "random_centroids", "random_attitudes"]


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
    false_fraction: float = 0.0,
    mirror: bool = False,
    zeropoint_mag: float = 20.0,
    image_circle_px: float | None = None,
    image_circle_deg: float | None = None,
    horizon_deg: float | None = None,
    zenith_radec_deg: tuple[float, float] | None = None,
    seed: int | np.random.Generator | None = None,
) -> SimulatedCentroids:
    """Centroid list of catalog stars seen by a camera, without rendering pixels.

    Stars are projected through ``camera`` (any lens projection) at
    ``attitude``; those whose true position is on the image, inside the
    lens's image circle and above the horizon are perturbed, thinned and mixed
    with false detections, then ordered brightest first.

    Parameters
    ----------
    catalog : Catalog
        Star catalog; its cone-search KD-tree is built once per object and cached.
    camera : CameraModel
        Camera geometry (image size, focal length, optical centre, parity,
        distortion, projection).
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
        Spurious detections at uniform random positions (in the part of the
        frame that images the sky), with brightnesses log-uniform over the
        range of the real ones.
    false_fraction : float
        Fraction of the returned rows, in [0, 1), that are spurious detections
        at uniformly random brightness ranks (each given a brightness between
        its neighbours'), at uniform random positions; applied last, so with
        ``num_stars=80, false_fraction=0.1`` a crowded field lists 72 real and
        8 false stars.
    mirror : bool
        Mirror x (``x → -x``), as for an image flipped left-right.
    zeropoint_mag : float
        Brightness is ``10**(-0.4 * (mag - zeropoint_mag))``.
    image_circle_px : float, optional
        The lens images only this radius (px) about the optical centre.
    image_circle_deg : float, optional
        The lens images directions at most this far from the optical axis, degrees.
    horizon_deg : float, optional
        Stars of lower altitude (degrees) are hidden: a star is seen when
        ``asin(v · zenith) >= horizon_deg``.
    zenith_radec_deg : (float, float), optional
        ``(ra, dec)`` of the horizon's zenith, degrees (default: the boresight).
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    SimulatedCentroids
        Unpacks as ``centroids, catalog_ids = simulate_centroids(...)``.
    """
    _check_catalog(catalog)
    rng = rng_of(seed)
    geom = _CameraGeometry(camera, attitude)
    limits = FieldLimits(geom, check_circle_px(image_circle_px, "image_circle_px"),
                         check_circle_deg(image_circle_deg, "image_circle_deg"),
                         check_horizon(horizon_deg, "horizon_deg"),
                         check_radec(zenith_radec_deg, "zenith_radec_deg"))
    noise = (_args.nonnegative(centroid_noise_px, "centroid_noise_px"),
             _args.nonnegative(magnitude_noise, "magnitude_noise"),
             _args.fraction(drop_fraction, "drop_fraction"))
    num_false_stars = _args.count(num_false_stars, "num_false_stars")
    false_fraction = _args.fraction(false_fraction, "false_fraction", open_max=True)
    num_stars = _args.optional_count(num_stars, "num_stars")
    zeropoint_mag = _args.number(zeropoint_mag, "zeropoint_mag")
    epoch = catalog.epoch if epoch_year is None else _args.number(epoch_year, "epoch_year")
    max_magnitude = _args.optional_number(max_magnitude, "max_magnitude")

    x, y, mags, ids, noisy = _seen_stars(catalog, geom, limits, epoch, max_magnitude, num_stars,
                                         noise, rng)
    nx, ny, nmag, kept = noisy
    brightness = magnitude_to_flux(nmag, zeropoint_mag)
    # false stars span the brightness range of the real stars that will be listed
    fx, fy = limits.random_pixels(num_false_stars, rng)
    real_b = np.sort(brightness[kept])[::-1][:num_stars]
    lo, hi = (np.log10(real_b[-1]), np.log10(real_b[0])) if real_b.size else (0.0, 1.0)
    fb = 10.0 ** rng.uniform(lo, max(hi, lo + 1e-9), num_false_stars)

    rows = _Rows(np.concatenate([nx[kept], fx]), np.concatenate([ny[kept], fy]),
                 np.concatenate([brightness[kept], fb]),
                 np.concatenate([ids[kept], np.full(num_false_stars, -1, dtype=np.int64)]),
                 np.concatenate([np.stack([x[kept], y[kept]], axis=1),
                                 np.full((num_false_stars, 2), np.nan)]),
                 np.concatenate([mags[kept], np.full(num_false_stars, np.nan)]))
    rows = rows.take(np.argsort(-rows.b, kind="stable")[:num_stars])
    if false_fraction:
        rows = _insert_false(rows, false_fraction, num_stars, limits, rng)
    cents = np.stack([rows.x, rows.y, rows.b], axis=1)
    txy = rows.txy
    if mirror:
        cents[:, 0] *= -1.0
        txy[:, 0] *= -1.0
    return SimulatedCentroids(centroids=cents, catalog_ids=rows.ids, true_xy=txy,
                              magnitudes=rows.mag, rotation=geom.rotation, mirror=bool(mirror))


def _seen_stars(catalog: Catalog, geom: _CameraGeometry, limits: FieldLimits, epoch: float,
                max_magnitude: float | None, num_stars: int | None,
                noise: tuple[float, float, float], rng: np.random.Generator):
    """Catalog stars the camera sees, ``(x, y, mags, ids, (noisy x, noisy y, noisy mag,
    kept))``, with the noise drawn and the dropped stars marked."""
    sigma, mag_sigma, drop = noise
    h, w = geom.shape
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
        with np.errstate(invalid="ignore"):
            inside = (limits.stars(vecs, x, y) & (x >= -0.5 * w) & (x < 0.5 * w)
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
    return x, y, mags, ids, (noisy_x, noisy_y, noisy_mag, kept)


@dataclass
class _Rows:
    """Centroid rows being assembled: position, brightness, id, true position, magnitude."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    b: NDArray[np.float64]
    ids: NDArray[np.int64]
    txy: NDArray[np.float64]
    mag: NDArray[np.float64]

    def take(self, order: NDArray[np.intp]) -> _Rows:
        return _Rows(*(getattr(self, k)[order] for k in ("x", "y", "b", "ids", "txy", "mag")))


def _insert_false(rows: _Rows, fraction: float, num_stars: int | None, limits: FieldLimits,
                  rng: np.random.Generator) -> _Rows:
    """``rows`` (brightest first) with a ``fraction`` of false stars at random ranks.

    The list keeps at most ``num_stars`` rows; a false star's brightness lies
    log-uniformly between those of the real rows around it.
    """
    n = len(rows.b)
    total = int(round(n / (1.0 - fraction)))
    if num_stars is not None:
        total = min(total, num_stars)
    n_false = int(round(fraction * total))
    n_real = min(total - n_false, n)
    total = n_real + n_false
    is_false = np.zeros(total, dtype=bool)
    is_false[rng.choice(total, n_false, replace=False)] = True
    real = rows.take(np.arange(n_real))
    # brightness bounds of each false row: the real rows just before and after it
    logb = np.log(real.b) if n_real else np.zeros(1)
    before = np.cumsum(~is_false)[is_false] - 1  # index of the real row before (or -1)
    hi = np.where(before >= 0, logb[np.maximum(before, 0)], logb[0] + np.log(2.0))
    after = np.minimum(before + 1, max(n_real - 1, 0))
    lo = np.where(before + 1 < n_real, logb[after], logb[-1] - np.log(2.0))
    fb = np.exp(lo + rng.random(n_false) * (hi - lo))
    fx, fy = limits.random_pixels(n_false, rng)
    out = _Rows(np.empty(total), np.empty(total), np.empty(total),
                np.full(total, -1, dtype=np.int64), np.full((total, 2), np.nan),
                np.full(total, np.nan))
    for k in ("x", "y", "b", "ids", "txy", "mag"):
        getattr(out, k)[~is_false] = getattr(real, k)
    out.x[is_false], out.y[is_false], out.b[is_false] = fx, fy, fb
    # false rows sharing a gap are put in brightness order; the real rows stay in place
    return out.take(np.argsort(-out.b, kind="stable"))


def random_centroids(camera: CameraModel, num_centroids: int, *,
                     image_circle_px: float | None = None, image_circle_deg: float | None = None,
                     seed: int | np.random.Generator | None = None) -> NDArray[np.float64]:
    """Random centroids: ``(x, y, brightness)`` rows uniform over the part of the frame
    that images the sky, brightest first -- fields that match no sky.

    Parameters
    ----------
    camera : CameraModel
        The frame (size, projection: pixels whose direction the projection
        does not define get none).
    num_centroids : int
        Rows to draw.
    image_circle_px, image_circle_deg : float, optional
        The lens's image circle, as for :func:`simulate_centroids`.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ndarray, shape ``(num_centroids, 3)``
        Centred pixel positions and brightnesses log-uniform over three decades.
    """
    n = _args.count(num_centroids, "num_centroids")
    rng = rng_of(seed)
    geom = _CameraGeometry(camera, np.eye(3))
    limits = FieldLimits(geom, check_circle_px(image_circle_px, "image_circle_px"),
                         check_circle_deg(image_circle_deg, "image_circle_deg"))
    x, y = limits.random_pixels(n, rng)
    b = np.sort(10.0 ** rng.uniform(0.0, 3.0, n))[::-1]
    return np.stack([x, y, b], axis=1)


def random_attitudes(n: int, rng: int | np.random.Generator | None = None) -> NDArray[np.float64]:
    """``n`` rotation matrices drawn uniformly from SO(3), shape ``(n, 3, 3)``.

    Parameters
    ----------
    n : int
        Number of attitudes.
    rng : int or numpy.random.Generator, optional
        Seed or generator, for reproducibility.
    """
    n = _args.count(n, "n")
    if n == 0:
        return np.empty((0, 3, 3))
    return Rotation.random(n, random_state=rng_of(rng)).as_matrix().reshape(n, 3, 3)

