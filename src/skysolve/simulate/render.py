"""Vectorised pixel-level rendering of point sources (private helpers of ``simulate``).

Every star is drawn on a small square stamp centred on the pixel that contains
it; stamps are built for all stars at once and accumulated into the flattened
image with :func:`numpy.bincount`, so there is no Python loop per star.

Two PSF paths:

* :func:`render_separable` — an axis-aligned Gaussian (per-star ``sigma_x``,
  ``sigma_y``), integrated exactly over each pixel with differences of the
  normal CDF; the stamp is the outer product of two 1-D profiles.
* :func:`render_covariance` — a general 2-D Gaussian with a covariance per star
  (elliptical, rotated), integrated exactly along x and with ``s`` sub-pixel
  samples along y.

Coordinates are centred pixels: ``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``.
Each stamp is normalised to unit sum *before* pixels outside the image are
discarded, so a star deposits exactly its flux minus the part that falls off
the detector.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

__all__ = ["render_separable", "render_covariance", "stamp_half_widths"]

# Stamp elements processed per chunk: bounds the temporary memory (~8 bytes each).
_CHUNK_ELEMENTS = 4_000_000


def stamp_half_widths(flux: NDArray[np.float64], sigma_max: NDArray[np.float64],
                      floor_e: float = 0.01) -> NDArray[np.int64]:
    """Stamp half-width (pixels) so the truncated Gaussian wing is below ``floor_e``.

    A Gaussian of peak ``P`` falls to ``floor_e`` at ``sigma * sqrt(2 ln(P/floor_e))``;
    that radius is clipped to ``[4 sigma, 12 sigma]`` (the stamps are renormalised,
    so truncation never loses flux, it only shapes the far wings).
    """
    peak = np.maximum(flux, 0.0) / (2.0 * np.pi * sigma_max**2)
    k = np.sqrt(2.0 * np.log(np.maximum(peak / floor_e, 1.0)))
    k = np.clip(k, 4.0, 12.0)
    return np.ceil(k * sigma_max).astype(np.int64) + 1


def _stamp_origin(coord: NDArray[np.float64], half: int, size: int) -> tuple[
        NDArray[np.float64], NDArray[np.int64]]:
    """Continuous coordinate (pixel edges at integers) and first stamp pixel index."""
    u = coord + 0.5 * size
    first = np.floor(u).astype(np.int64) - half
    return u, first


def _accumulate(image_flat: NDArray[np.float64], shape: tuple[int, int],
                rows: NDArray[np.int64], cols: NDArray[np.int64],
                values: NDArray[np.float64]) -> None:
    """Add ``values[n, ky, kx]`` at ``rows[n, ky]``, ``cols[n, kx]``, dropping off-image pixels."""
    h, w = shape
    row_ok = (rows >= 0) & (rows < h)
    col_ok = (cols >= 0) & (cols < w)
    # Off-image pixels get zero weight and a clipped (valid) index: no boolean gather needed.
    values = values * row_ok[:, :, None] * col_ok[:, None, :]
    flat = np.clip(rows, 0, h - 1)[:, :, None] * w + np.clip(cols, 0, w - 1)[:, None, :]
    image_flat += np.bincount(flat.ravel(), weights=values.ravel(), minlength=h * w)


def _visible(x: NDArray[np.float64], y: NDArray[np.float64], half: NDArray[np.int64],
             shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Stars whose stamp overlaps the image at all."""
    h, w = shape
    return ((x + 0.5 * w + half + 1 > 0) & (x + 0.5 * w - half - 1 < w)
            & (y + 0.5 * h + half + 1 > 0) & (y + 0.5 * h - half - 1 < h))


def render_separable(shape: tuple[int, int], x: NDArray[np.float64], y: NDArray[np.float64],
                     flux: NDArray[np.float64], sigma_x: NDArray[np.float64],
                     sigma_y: NDArray[np.float64],
                     out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Render axis-aligned Gaussian stars, exactly pixel-integrated.

    Parameters
    ----------
    shape : (int, int)
        Image ``(height, width)``.
    x, y : ndarray, shape ``(n,)``
        Centred pixel coordinates of the stars.
    flux : ndarray, shape ``(n,)``
        Total counts per star.
    sigma_x, sigma_y : ndarray, shape ``(n,)``
        Gaussian standard deviations along x and y (pixels).
    out : ndarray, optional
        float64 image to add into (returned).

    Returns
    -------
    ndarray of float64, shape ``shape``
    """
    h, w = shape
    image = np.zeros(shape, dtype=np.float64) if out is None else out
    flat_image = image.reshape(-1)
    half = stamp_half_widths(flux, np.maximum(sigma_x, sigma_y))
    keep = _visible(x, y, half, shape)
    x, y, flux, sigma_x, sigma_y, half = (a[keep] for a in (x, y, flux, sigma_x, sigma_y, half))
    # one vectorised pass per stamp size (a handful of sizes), chunked to bound memory
    for hw in np.unique(half):
        sel = np.flatnonzero(half == hw)
        k = 2 * int(hw) + 1
        offs = np.arange(k)
        chunk = max(1, _CHUNK_ELEMENTS // (k * k))
        for start in range(0, sel.size, chunk):
            s = sel[start:start + chunk]
            u, c0 = _stamp_origin(x[s], int(hw), w)
            v, r0 = _stamp_origin(y[s], int(hw), h)
            cols = c0[:, None] + offs
            rows = r0[:, None] + offs
            px = _integrated_profile(cols, u, sigma_x[s])
            py = _integrated_profile(rows, v, sigma_y[s])
            values = (flux[s, None, None] * py[:, :, None]) * px[:, None, :]
            _accumulate(flat_image, shape, rows, cols, values)
    return image


def _integrated_profile(pix: NDArray[np.int64], centre: NDArray[np.float64],
                        sigma: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fraction of a 1-D Gaussian in each pixel ``[p, p+1)``, renormalised over the stamp."""
    inv = 1.0 / sigma[:, None]
    lo = ndtr((pix - centre[:, None]) * inv)
    hi = ndtr((pix + 1 - centre[:, None]) * inv)
    prof = hi - lo
    return prof / prof.sum(axis=1, keepdims=True)


def render_covariance(shape: tuple[int, int], x: NDArray[np.float64], y: NDArray[np.float64],
                      flux: NDArray[np.float64], cov: NDArray[np.float64], subsample: int = 5,
                      out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Render general 2-D Gaussian stars, pixel-integrated.

    The integral over each pixel is exact along x and uses ``subsample`` midpoint
    samples along y (the Gaussian is written as a 1-D Gaussian in x whose centre
    shifts linearly with y).

    Parameters
    ----------
    shape : (int, int)
        Image ``(height, width)``.
    x, y, flux : ndarray, shape ``(n,)``
        Centred pixel coordinates and total counts.
    cov : ndarray, shape ``(n, 3)``
        Covariance ``(c_xx, c_yy, c_xy)`` of each star's PSF in px².
    subsample : int
        Samples per pixel along y (midpoint rule).
    out : ndarray, optional
        float64 image to add into (returned).
    """
    h, w = shape
    image = np.zeros(shape, dtype=np.float64) if out is None else out
    flat_image = image.reshape(-1)
    cxx, cyy, cxy = cov[:, 0], cov[:, 1], cov[:, 2]
    det = cxx * cyy - cxy * cxy
    # largest eigenvalue bounds the extent in every direction
    lam = 0.5 * (cxx + cyy) + np.sqrt(0.25 * (cxx - cyy) ** 2 + cxy**2)
    half = stamp_half_widths(flux * np.sqrt(lam * lam / det), np.sqrt(lam))
    keep = _visible(x, y, half, shape)
    x, y, flux, half = x[keep], y[keep], flux[keep], half[keep]
    ixx, iyy, ixy = cyy[keep] / det[keep], cxx[keep] / det[keep], -cxy[keep] / det[keep]
    sub = (np.arange(subsample) + 0.5) / subsample
    for hw in np.unique(half):
        sel = np.flatnonzero(half == hw)
        k = 2 * int(hw) + 1
        offs = np.arange(k)
        # row sample positions and column edges relative to the first stamp pixel's lower edge
        samp = (offs[:, None] + sub[None, :]).ravel()
        edges = np.arange(k + 1)
        chunk = max(1, _CHUNK_ELEMENTS // (k * (k + 1) * subsample))
        for start in range(0, sel.size, chunk):
            s = sel[start:start + chunk]
            u, c0 = _stamp_origin(x[s], int(hw), w)
            v, r0 = _stamp_origin(y[s], int(hw), h)
            # Q = a dx² + 2 b dx dy + c dy² = a (dx + (b/a) dy)² + (c - b²/a) dy²: along each
            # sampled row the profile is a 1-D Gaussian in x, integrated exactly over columns,
            # so only the rows are sampled numerically (and no exponent can overflow).
            dy = (r0 - v)[:, None] + samp  # (m, k*s)
            ex = (c0 - u)[:, None] + edges  # (m, k+1)
            a = ixx[s]
            beta = ixy[s] / a
            cp = iyy[s] - ixy[s] * beta
            z = (ex[:, None, :] + (beta[:, None] * dy)[:, :, None]).astype(np.float32)
            z *= np.sqrt(a).astype(np.float32)[:, None, None]
            cdf = ndtr(z)
            prof = np.diff(cdf, axis=2)  # (m, k*s, k)
            prof *= np.exp(-0.5 * cp[:, None] * dy * dy).astype(np.float32)[:, :, None]
            vals = prof.reshape(s.size, k, subsample, k).sum(axis=2, dtype=np.float64)
            vals *= (flux[s] / vals.sum(axis=(1, 2)))[:, None, None]
            _accumulate(flat_image, shape, r0[:, None] + offs, c0[:, None] + offs, vals)
    return image
