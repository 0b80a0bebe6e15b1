"""Pure-numpy synthetic star frames with exactly known star positions.

Each star is a circular Gaussian PSF integrated exactly over every pixel (via
``scipy.special.erf``), so the intensity centroid of the rendered light is the true
position to machine precision. Positions are returned in skysolve's centred pixel
convention (``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``).

Used by tests/test_extraction.py and benchmarks/bench_extraction.py.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def pixel_integrated_gaussian_1d(edges_lo: np.ndarray, centre: np.ndarray,
                                 sigma: np.ndarray | float, npix: int) -> np.ndarray:
    """Fraction of a unit 1-D Gaussian falling in ``npix`` unit pixels from ``edges_lo``.

    ``edges_lo`` (shape ``(N,)``) is the lower edge of the first pixel of each stamp
    and ``centre`` the Gaussian centre, both in the same (array-edge) coordinates.
    Returns shape ``(N, npix)``.
    """
    edges = edges_lo[:, None] + np.arange(npix + 1)[None, :]
    s = np.sqrt(2.0) * np.asarray(sigma, dtype=np.float64).reshape(-1, 1)
    cdf = 0.5 * erf((edges - centre[:, None]) / s)
    return np.diff(cdf, axis=1)


def render_stars(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                 sigma: float | np.ndarray, half_width: int | None = None) -> np.ndarray:
    """Noise-free image (float64) of Gaussian stars at centred coordinates ``x``, ``y``.

    ``flux`` is the total flux of each star (the part falling outside the stamp of
    ``2 * half_width + 1`` pixels, or off the image, is lost).
    """
    h, w = shape
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    flux = np.broadcast_to(np.asarray(flux, dtype=np.float64), x.shape)
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), x.shape)
    if half_width is None:
        half_width = int(np.ceil(6.0 * float(np.max(sig)))) + 1
    n = 2 * half_width + 1
    # array-edge coordinates: pixel col c spans [c, c + 1)
    ax = x + w / 2.0
    ay = y + h / 2.0
    c0 = np.floor(ax).astype(np.int64) - half_width
    r0 = np.floor(ay).astype(np.int64) - half_width
    px = pixel_integrated_gaussian_1d(c0.astype(np.float64), ax, sig, n)
    py = pixel_integrated_gaussian_1d(r0.astype(np.float64), ay, sig, n)
    stamps = flux[:, None, None] * py[:, :, None] * px[:, None, :]
    cols = c0[:, None, None] + np.arange(n)[None, None, :]
    rows = r0[:, None, None] + np.arange(n)[None, :, None]
    cols, rows = np.broadcast_arrays(cols, rows)
    ok = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    flat = rows[ok] * w + cols[ok]
    img = np.bincount(flat, weights=stamps[ok], minlength=h * w)
    return img.reshape(h, w)


def gradient_background(shape: tuple[int, int], level: float, gradient: float) -> np.ndarray:
    """A smooth sky: ``level`` plus a diagonal ramp of ``gradient`` per 1000 px and a bump."""
    h, w = shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = gradient * ((cc - w / 2) + 0.5 * (rr - h / 2)) / 1000.0
    bump = 0.05 * level * np.exp(-(((cc - 0.3 * w) / (0.4 * w)) ** 2
                                   + ((rr - 0.6 * h) / (0.4 * h)) ** 2))
    return level + ramp + bump


def tess_like_frame(seed: int = 1, shape: tuple[int, int] = (2048, 2048), n_stars: int = 10_000,
                    sigma_range: tuple[float, float] = (0.8, 1.2), noise: float = 1.0,
                    background: float = 300.0, gradient: float = 40.0,
                    flux_range: tuple[float, float] = (3e3, 3e6), power: float = 1.5):
    """A TESS-like crowded frame (float32) and its truth.

    Star fluxes follow a power law ``dN/dF ~ F^-power`` between ``flux_range``;
    positions are uniform. Returns ``(image, x, y, flux, sigma)`` with the truth in
    centred pixel coordinates.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    x = rng.uniform(-w / 2 + 2, w / 2 - 2, n_stars)
    y = rng.uniform(-h / 2 + 2, h / 2 - 2, n_stars)
    lo, hi = flux_range
    a = 1.0 - power
    u = rng.uniform(0, 1, n_stars)
    flux = (lo**a + u * (hi**a - lo**a)) ** (1.0 / a)
    sig = rng.uniform(*sigma_range, n_stars)
    img = render_stars(shape, x, y, flux, sig, half_width=8)
    img += gradient_background(shape, background, gradient)
    img += rng.normal(0.0, noise, shape)
    return img.astype(np.float32), x, y, flux, sig


def isolated(x: np.ndarray, y: np.ndarray, flux: np.ndarray, radius: float = 6.0,
             flux_ratio: float = 0.01) -> np.ndarray:
    """Stars with no other star brighter than ``flux_ratio`` × their flux within ``radius``."""
    from scipy.spatial import cKDTree

    pts = np.column_stack([x, y])
    tree = cKDTree(pts)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    ok = np.ones(len(x), dtype=bool)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        ok[i[flux[j] > flux_ratio * flux[i]]] = False
        ok[j[flux[i] > flux_ratio * flux[j]]] = False
    return ok


def scattered_stars(rng: np.random.Generator, shape: tuple[int, int], n: int = 100,
                    min_sep: float = 25.0, margin: float = 16.0,
                    tries: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` random centred positions at least ``min_sep`` px apart and ``margin`` px
    inside a frame of ``shape``, from ``tries * n`` uniform candidates (a grid would line
    stars up like a trail's dots)."""
    h, w = shape
    cand = np.column_stack([rng.uniform(margin - w / 2, w / 2 - margin, tries * n),
                            rng.uniform(margin - h / 2, h / 2 - margin, tries * n)])
    keep: list[np.ndarray] = []
    for p in cand:
        if all(np.hypot(*(p - q)) >= min_sep for q in keep):
            keep.append(p)
            if len(keep) == n:
                break
    xy = np.array(keep)
    return xy[:, 0], xy[:, 1]


def grid_stars(shape, spacing, rng, margin=20):
    """Star positions on a jittered grid (centred px), no two closer than ~spacing."""
    h, w = shape
    ys = np.arange(margin, h - margin, spacing) + 0.0
    xs = np.arange(margin, w - margin, spacing) + 0.0
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    x = xx.ravel() - w / 2 + rng.uniform(-0.5, 0.5, xx.size)
    y = yy.ravel() - h / 2 + rng.uniform(-0.5, 0.5, yy.size)
    return x, y


def match_to_truth(xd: np.ndarray, yd: np.ndarray, xt: np.ndarray, yt: np.ndarray,
                   radius: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Nearest detection of every true star: ``(index or -1, distance)``."""
    from scipy.spatial import cKDTree

    if len(xd) == 0:
        return np.full(len(xt), -1), np.full(len(xt), np.inf)
    tree = cKDTree(np.column_stack([xd, yd]))
    d, idx = tree.query(np.column_stack([xt, yt]), distance_upper_bound=radius)
    idx = np.where(np.isfinite(d), idx, -1)
    return idx, d
