"""Detector effects of a simulated frame: background, charge bleeding, cosmic rays.

Everything draws from one ``numpy.random.Generator`` in a fixed order, so a
frame is reproducible from its seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["rng_of", "background", "bleed", "cosmic_rays"]


def rng_of(seed: Any) -> np.random.Generator:
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


def bleed(image: NDArray, full_well: float) -> None:
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


def cosmic_rays(image: NDArray, count: int, rng: np.random.Generator,
                charge: tuple[float, float] = (300.0, 3000.0)) -> NDArray:
    """Add ``count`` short straight tracks of deposited charge; return their end points.

    Each track deposits a charge per pixel of path drawn uniformly from ``charge``
    (image units; electrons for a rendered frame).
    """
    h, w = image.shape
    x0 = rng.uniform(-0.5 * w, 0.5 * w, count)
    y0 = rng.uniform(-0.5 * h, 0.5 * h, count)
    length = np.minimum(rng.exponential(4.0, count), 25.0)
    angle = rng.uniform(0.0, 2 * np.pi, count)
    charge = rng.uniform(charge[0], charge[1], count)  # per pixel of path
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


def background(shape: tuple[int, int], level: Any, gradient: Any) -> NDArray:
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
