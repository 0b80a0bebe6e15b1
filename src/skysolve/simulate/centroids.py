"""Centroid lists of catalog stars seen by a camera, without pixels; random attitudes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from .. import _args
from .detector import rng_of
from .psf import magnitude_to_flux
from .scene import _CameraGeometry, _check_catalog, _field_stars, _sky_index

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from ..sky.catalogs import Catalog

__all__ = ["SimulatedCentroids", "simulate_centroids", "random_attitudes"]


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
    false_star_clusters: int = 0,
    cluster_radius_px: float = 30.0,
    false_star_brightness: str = "log_uniform",
    resolve_px: float = 0.0,
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
        log-uniform over the range of the real ones (so they take random
        places in the brightness order).
    false_star_clusters : int
        Gather the false stars in this many clusters (0: uniform), as lit
        branches and rooftops give them: each false star joins a random
        cluster and lies a Gaussian ``cluster_radius_px`` (rms per axis) from
        its centre (positions off the image are drawn again).
    cluster_radius_px : float
        Size of the clusters (px).
    false_star_brightness : {'log_uniform', 'like_stars'}
        Brightness of the false stars: log-uniform over the range of the real
        ones (most false stars then outshine most real ones, which crowd the
        faint end), or drawn from the listed real stars' own brightnesses, so
        that the false stars take uniformly random places in the brightness
        order.
    resolve_px : float
        Stars closer than this (px) to a brighter listed star are not listed
        (an extractor sees one blob); 0 lists every star.
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
    rng = rng_of(seed)
    geom = _CameraGeometry(camera, attitude)
    h, w = geom.shape
    sigma = _args.nonnegative(centroid_noise_px, "centroid_noise_px")
    mag_sigma = _args.nonnegative(magnitude_noise, "magnitude_noise")
    drop = _args.fraction(drop_fraction, "drop_fraction")
    num_false_stars = _args.count(num_false_stars, "num_false_stars")
    if num_stars is not None:
        num_stars = _args.count(num_stars, "num_stars")
    zeropoint_mag = _args.number(zeropoint_mag, "zeropoint_mag")
    epoch = catalog.epoch if epoch_year is None else _args.number(epoch_year, "epoch_year")
    if max_magnitude is not None:
        max_magnitude = _args.number(max_magnitude, "max_magnitude")

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
    resolve_px = _args.nonnegative(resolve_px, "resolve_px")
    if resolve_px > 0:
        kept &= _resolved(noisy_x, noisy_y, np.where(kept, brightness, -np.inf), resolve_px)

    nf = int(num_false_stars)
    fx, fy, fb = _false_stars(nf, np.sort(brightness[kept])[::-1][:num_stars], num_stars,
                              false_star_clusters, cluster_radius_px, false_star_brightness,
                              w, h, rng)

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


def _resolved(x: NDArray, y: NDArray, brightness: NDArray, px: float) -> NDArray[np.bool_]:
    """Stars with no brighter star within ``px`` (stars of brightness -inf are ignored)."""
    from scipy.spatial import cKDTree

    keep = np.isfinite(brightness)
    idx = np.flatnonzero(keep)
    if len(idx) < 2:
        return keep
    order = idx[np.argsort(-brightness[idx], kind="stable")]
    pairs = cKDTree(np.column_stack([x[order], y[order]])).query_pairs(px, output_type="ndarray")
    if len(pairs):
        keep[order[pairs.max(axis=1)]] = False
    return keep


def _false_stars(nf: int, real_b: NDArray, num_stars: int | None, clusters: int, radius: float,
                 how: str, w: int, h: int, rng: np.random.Generator):
    """Positions and brightnesses of ``nf`` false stars (see :func:`simulate_centroids`);
    ``real_b`` are the real stars' brightnesses that may be listed, brightest first."""
    fx = rng.uniform(-0.5 * w, 0.5 * w, nf)
    fy = rng.uniform(-0.5 * h, 0.5 * h, nf)
    clusters = _args.count(clusters, "false_star_clusters")
    radius = _args.nonnegative(radius, "cluster_radius_px")
    how = _args.choice(how, "false_star_brightness", ("log_uniform", "like_stars"))
    if clusters and nf:
        fx, fy = _clustered(fx, fy, clusters, radius, w, h, rng)
    if how == "like_stars" and real_b.size:
        # the real stars that will be listed alongside: num_stars less the false ones
        pool = real_b[:max(1, (num_stars or real_b.size + nf) - nf)]
        fb = pool[rng.integers(0, pool.size, nf)] * rng.uniform(0.999, 1.001, nf)
    else:  # false stars span the brightness range of the real stars that will be listed
        lo, hi = (np.log10(real_b[-1]), np.log10(real_b[0])) if real_b.size else (0.0, 1.0)
        fb = 10.0 ** rng.uniform(lo, max(hi, lo + 1e-9), nf)
    return fx, fy, fb


def _clustered(fx: NDArray, fy: NDArray, k: int, radius: float, w: int, h: int,
               rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """Uniform positions ``fx``, ``fy`` regathered into ``k`` clusters (the first ``k``
    positions become the centres)."""
    k = min(k, fx.size)
    cx, cy = fx[:k].copy(), fy[:k].copy()
    member = rng.integers(0, k, fx.size)
    x = cx[member] + rng.normal(0.0, radius, fx.size)
    y = cy[member] + rng.normal(0.0, radius, fx.size)
    for _ in range(100):  # redraw those that fell off the image
        off = (np.abs(x) >= 0.5 * w) | (np.abs(y) >= 0.5 * h)
        if not off.any():
            break
        x[off] = cx[member[off]] + rng.normal(0.0, radius, off.sum())
        y[off] = cy[member[off]] + rng.normal(0.0, radius, off.sum())
    return np.clip(x, -0.5 * w, 0.5 * w - 1e-9), np.clip(y, -0.5 * h, 0.5 * h - 1e-9)


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


#: Forward (ideal -> distorted) SIP-like coefficients, in the term order of
#: :func:`skysolve.camera.distortion.polynomial_terms` with scale 1024 px, of a distortion the
