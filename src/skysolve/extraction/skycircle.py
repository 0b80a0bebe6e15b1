"""Where a circular fisheye's sky is: the image circle of an all-sky frame.

An all-sky camera's lens draws the sky as a disc (its image circle) inside a dark
frame, fully inside it or cut by its top and bottom edges. Its captions in the
surround and the JPEG ringing of the disc's sharp rim come back as bright "stars"
(41 of the brightest 100 detections of a 2048 x 2048 all-sky JPEG with a caption
line), and stars cut by the rim have biased positions. :func:`find_sky_circle`
finds the disc from the frame (the ``'auto'`` of
:attr:`ExtractionOptions.sky_circle`), and :func:`within_rim` drops the detections
beyond the band (:func:`rim_band_px`) inside its rim. The surround is not masked
for the background: a crowded disc's noise estimate, inflated by starlight, came
out 2.4 times higher without the surround's read noise beside it (8,237 true stars
found of a rich 1200 x 1200 frame, 5,854 with it masked).

Coordinates are centred pixels (``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``).
Only numpy is used (extraction without a matched filter imports no scipy).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from ..errors import InvalidArgumentError
from . import scratch
from .background import _kth, network_block_medians
from .kernels import compiled

__all__ = ["check_sky_circle", "find_sky_circle", "outside_circle", "rim_band_px", "sky_circle",
           "within_rim"]

#: The blocks of the coarse map are at most this many per side of the frame ...
_GRID = 128
#: ... and at least this many pixels wide.
_MIN_BLOCK = 8
#: Corner patches (fraction of the shorter side of the block grid) give the dark level.
_CORNER = 0.06
#: A block is sky when it is brighter than the dark level by this fraction of the
#: centre's light (the rim of a lens vignetted by 70 % still passes).
_SKY_FRACTION = 0.2
#: The centre's light must stand this many noise sigmas (of the dark corners' pixels)
#: above the corners: a frame whose sky is at the read noise has no disc to find.
_MIN_CONTRAST = 10.0
#: Across the rim (from 1.5 to 3 blocks either side) the level must fall by at least this
#: fraction of the light inside it: a lens's rim is sharp, vignetting is not.
_STEP = 0.6
#: Most pixels over which the rim's profile falls from 80 % to 20 % of the sky inside it.
_RIM_WIDTH = 6
_RIM_WIDTH_PX = _RIM_WIDTH
#: Blocks farther than 1.5 blocks outside the circle that are dark (a caption or a
#: compass letter may light a few).
_OUTSIDE_DARK = 0.9
#: Edge points the circle must hold (the horizon's trees pull whole sectors inwards).
_KEPT = 0.4
#: Sectors (of :data:`_SECTORS`) whose rim must lie on the fine circle: a fifth of its
#: circumference. A circle fitted to a short arc is not a lens's rim: the straight edge of
#: a stack's black wedge or border, an oval crop's arc (6-27 sectors on rotated, shifted
#: stacks and oval crops; 55 on a disc cut by three sides of the frame, 87-148 on others).
_MIN_ARC = 36
#: The disc leaves at least this fraction of the frame outside it, or there is nothing
#: to mask (a full-frame fisheye's corners, or no disc at all).
_MIN_OUTSIDE = 0.03


def check_sky_circle(value: Any, name: str) -> str | tuple[float, float, float] | None:
    """``'auto'`` (in any case: the command line's ``--sky-circle AUTO`` reads it so too),
    None, a radius (about the image centre) or ``(x, y, radius)``."""
    if value is None:
        return value
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str):
        raise InvalidArgumentError(
            f"{name} must be 'auto', None, a radius in pixels or (x, y, radius), got {value!r}")
    if np.ndim(value) == 0:
        return 0.0, 0.0, float(_args.positive(value, name))
    v = _args.vector(value, name, 3, what="numbers (x, y, radius) in centred pixels")
    _args.positive(float(v[2]), f"{name}[2] (radius)")
    return float(v[0]), float(v[1]), float(v[2])


def rim_band_px(radius: float) -> float:
    """Width (px) of the band inside the rim whose detections are dropped: the rim's
    soft edge and the stars it cuts: 0.3 % of the radius, at least 2 px. (Wider bands
    cost true stars: a rich all-sky frame's 8-bit stretch keeps 200 bright stars in the
    outer 6 px of its 588 px circle; and they did not help six all-sky JPEGs solve.)"""
    return max(2.0, 0.003 * radius)


def outside_circle(shape: tuple[int, int], circle: tuple[float, float, float]
                   ) -> NDArray[np.bool_]:
    """``(height, width)`` mask of the pixels whose centres lie beyond the circle."""
    h, w = shape
    x0, y0, r = circle
    dx2 = (np.arange(w) + 0.5 - 0.5 * w - x0) ** 2
    dy2 = (np.arange(h) + 0.5 - 0.5 * h - y0) ** 2
    return dy2[:, None] + dx2[None, :] > r * r


def _block_medians(image: NDArray, block: int) -> NDArray[np.float64]:
    """Medians of ``block`` x ``block`` tiles (the frame's last partial tiles dropped),
    from a subsample of at most 4 x 4 pixels a tile; NaN where no pixel is finite.

    The values of ``np.median`` (``np.nanmedian`` where a sample is NaN): a camera's
    counts and float32 and float64 frames through the compiled sorting network of the
    background's block medians (a 1024x768 frame's 8 px tiles: 0.19 against 4.6 ms; a
    float64 frame's, 0.2 against 1.5 ms by the partition), other frames by one partition.
    """
    h, w = image.shape
    step = max(1, block // 4)
    k = block // step
    hb, wb = h // block, w // block
    if block % step:
        # (a block of 13 px sampled every 3 px: a plain stride would take the tiles 12 px
        # apart, drawing a disc 13/12 times its size and distance from the frame's corner)
        rows = (np.arange(hb)[:, None] * block + np.arange(k) * step).ravel()
        cols = (np.arange(wb)[:, None] * block + np.arange(k) * step).ravel()
        sub = image[np.ix_(rows, cols)]
    else:
        sub = image[: hb * block: step, : wb * block: step]
    finite = sub.dtype.kind != "f" or not np.isnan(sub).any()
    if finite and not block % step:
        found = network_block_medians(image[: hb * block, : wb * block], block, block, step,
                                      step)
        if found is not None:
            return found
    sub = sub.astype(np.float64)[: hb * k, : wb * k].reshape(hb, k, wb, k).transpose(
        0, 2, 1, 3).reshape(hb, wb, -1)
    if finite:
        return _kth(sub, overwrite=True)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(sub, axis=2)


def _circle_lsq(x: NDArray, y: NDArray) -> NDArray:
    """Least-squares (algebraic) circle ``(x0, y0, r)`` through the points; NaNs when
    they determine none."""
    a = np.column_stack([x, y, np.ones(x.size)])
    sol, *_ = np.linalg.lstsq(a, x * x + y * y, rcond=None)
    x0, y0 = 0.5 * sol[0], 0.5 * sol[1]
    r2 = sol[2] + x0 * x0 + y0 * y0
    return np.array([x0, y0, math.sqrt(r2)]) if r2 > 0 else np.full(3, np.nan)


#: Random triples of edge points tried for the circle with the most points on it.
_TRIES = 300


def _finite_median(a: NDArray) -> float:
    """Median of the finite values (NaN when there are none), as ``np.median`` gives it.

    (Partitioned here: ``np.median``'s own checks and dispatch cost more than the
    partition of these few hundred values, and every frame pays for its seven calls. A
    camera's 8- and 16-bit counts are counted instead, by the compiled block medians'
    kernel: 4 against 12-25 us for a few thousand of them.)
    """
    if a.dtype in _COUNTS and a.size:
        kernel = compiled("integer_medians")
        if kernel is not None:
            row = np.empty((1, a.size), _COUNTS[a.dtype])
            row.reshape(a.shape)[...] = a  # (gathered and widened in one copy)
            return float(kernel(row)[0])
    a = np.array(a, dtype=np.float64).ravel()
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        a = a[np.isfinite(a)]
    n = a.size
    if not n:
        return float("nan")
    k = n // 2
    if n % 2:
        return float(np.partition(a, k)[k])
    a.partition((k - 1, k))
    return float((a[k - 1] + a[k]) / 2.0)


#: Integer samples :func:`_finite_median` counts, and the 16-bit type they widen to (the
#: kernel's types).
_COUNTS = {np.dtype(t): np.dtype(w) for t, w in ((np.uint8, np.uint16), (np.uint16, np.uint16),
                                                 (np.int8, np.int16), (np.int16, np.int16))}


def _fit_circle(x: NDArray, y: NDArray, tol: float) -> tuple[NDArray, NDArray[np.bool_]]:
    """The circle ``(x0, y0, r)`` that the most points lie on (within ``tol``), fitted
    to those by least squares; and which they are.

    The circle through each of :data:`_TRIES` random triples (a fixed seed: the same
    frame gives the same circle) is scored by its points: trees and buildings along
    a horizon pull whole sectors of the edge inwards, captions in the surround push
    single points out, and an average over all of them would follow both.
    """
    n = x.size
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, size=(_TRIES, 3))
    p = np.stack([x[idx], y[idx]], axis=-1)  # (tries, 3, 2)
    # circumcentres of the triples
    ax, ay = p[:, 0, 0], p[:, 0, 1]
    bx, by = p[:, 1, 0], p[:, 1, 1]
    cx, cy = p[:, 2, 0], p[:, 2, 1]
    d = 2.0 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    with np.errstate(all="ignore"):
        ux = ((ax * ax + ay * ay) * (by - cy) + (bx * bx + by * by) * (cy - ay)
              + (cx * cx + cy * cy) * (ay - by)) / d
        uy = ((ax * ax + ay * ay) * (cx - bx) + (bx * bx + by * by) * (ax - cx)
              + (cx * cx + cy * cy) * (bx - ax)) / d
        ur = np.hypot(ax - ux, ay - uy)
    ok = np.isfinite(ur) & (np.abs(d) > 1e-9)
    if not ok.any():
        return np.full(3, np.nan), np.zeros(n, bool)
    ux, uy, ur = ux[ok], uy[ok], ur[ok]
    best = int(np.argmax(_on_circles(x, y, ux, uy, ur, tol)))
    keep = np.abs(np.hypot(x - ux[best], y - uy[best]) - ur[best]) <= tol
    c = np.array([ux[best], uy[best], ur[best]])
    for _ in range(3):  # least squares on the points on it, which may take a few more
        if np.count_nonzero(keep) < 3:
            break
        c2 = _circle_lsq(x[keep], y[keep])
        if not np.isfinite(c2).all():
            break
        c = c2
        new = np.abs(np.hypot(x - c[0], y - c[1]) - c[2]) <= tol
        if (new == keep).all():
            break
        keep = new
    return c, keep


def _on_circles(x: NDArray, y: NDArray, ux: NDArray, uy: NDArray, ur: NDArray,
                tol: float) -> NDArray[np.intp]:
    """How many points ``(x, y)`` lie on each circle ``(ux, uy, ur)``: within ``tol`` of
    it, the distance from the centre taken by ``np.hypot``.

    ``np.hypot`` guards against overflow, at several times the cost of
    ``sqrt(dx^2 + dy^2)``, which lies within a few units in the last place of it: only
    the points whose verdict that could change, within :data:`_HYPOT_MARGIN` of the
    distance ``tol``, are measured again by ``np.hypot`` (the same counts). A few dozen
    circles at a time, so that the temporaries stay small (one pass over 300 circles
    of 450 points allocated a few MB, whose first touch cost more than the arithmetic).
    A vignetted 1024x768 frame's circle fit: 0.7 against 1.2-1.5 ms (the compiled
    twin, :func:`.kernels.on_circles`: the same counts, 0.1 ms of ~0.4).
    """
    kernel = compiled("on_circles")
    if kernel is not None:
        # (fresh writeable copies, a few hundred values each: a read-only or strided
        # array would compile the kernel again, for seconds)
        return kernel(*(np.array(v, np.float64) for v in (x, y, ux, uy, ur)), float(tol),
                      _HYPOT_MARGIN)
    out = np.empty(ux.size, np.intp)
    for a in range(0, ux.size, _CIRCLES_AT_ONCE):
        cx, cy, r = (v[a:a + _CIRCLES_AT_ONCE] for v in (ux, uy, ur))
        dx = np.subtract.outer(cx, x)  # (the offsets' sign does not matter)
        dy = np.subtract.outer(cy, y)
        res = np.multiply(dx, dx)
        res += np.square(dy, out=dy)
        np.sqrt(res, out=res)
        res -= r[:, None]
        np.abs(res, out=res)
        near = np.abs(res - tol) <= (_HYPOT_MARGIN * (np.abs(r) + tol))[:, None]
        if near.any():
            i, j = np.nonzero(near)
            res[i, j] = np.abs(np.hypot(cx[i] - x[j], cy[i] - y[j]) - r[i])
        out[a:a + _CIRCLES_AT_ONCE] = np.count_nonzero(res <= tol, axis=1)
    return out


#: :func:`_on_circles` takes this many circles at a time.
_CIRCLES_AT_ONCE = 64
#: :func:`_on_circles`'s margin, relative to a circle's radius and the tolerance: a
#: thousand times the relative error of ``sqrt(dx^2 + dy^2)`` against ``np.hypot``.
_HYPOT_MARGIN = 1e-13


def _rim_points(sky: NDArray[np.bool_], block: int) -> tuple[NDArray, NDArray]:
    """The disc's outer edge in the block map, centred pixels: the outer side of the
    first and last sky block of every row and column, where that is not the frame's
    edge (the disc runs out of the frame there)."""
    hb, wb = sky.shape
    # each row's points (its first block's left side, then its last's right side), then
    # each column's (top, then bottom)
    rows = np.flatnonzero(sky.any(axis=1))
    first = np.argmax(sky[rows], axis=1)
    last = wb - 1 - np.argmax(sky[rows, ::-1], axis=1)
    yc = (rows + 0.5) * block
    row_x = np.column_stack([first * block, (last + 1) * block])
    row_kept = np.column_stack([first > 0, last < wb - 1])
    cols = np.flatnonzero(sky.any(axis=0))
    top = np.argmax(sky[:, cols], axis=0)
    bottom = hb - 1 - np.argmax(sky[::-1, cols], axis=0)
    xc = (cols + 0.5) * block
    col_y = np.column_stack([top * block, (bottom + 1) * block])
    col_kept = np.column_stack([top > 0, bottom < hb - 1])
    xs = np.concatenate([row_x[row_kept], np.column_stack([xc, xc])[col_kept]])
    ys = np.concatenate([np.column_stack([yc, yc])[row_kept], col_y[col_kept]])
    return xs.astype(float), ys.astype(float)


#: Sectors (and azimuths in each) whose rim is measured at full resolution.
_SECTORS = 180
_PER_SECTOR = 8


def _nanmedian(a: NDArray, axis: int | None = None):
    """``np.nanmedian``, by ``np.median`` when nothing is NaN (the same values, without
    the masked arrays it takes for short axes: ~10 times the time)."""
    return np.nanmedian(a, axis=axis) if np.isnan(a).any() else np.median(a, axis=axis)


def _sector_profiles(image: NDArray, circle: NDArray, radii: NDArray
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Radial profiles about the circle's centre (array coordinates: pixel edges at
    integers) at ``radii`` (increasing): for each of :data:`_SECTORS` sectors the median
    of its azimuths, shape ``(len(radii), n)`` for the ``n`` sectors wholly inside the frame;
    and their central azimuths."""
    h, w = image.shape
    phi = (np.arange(_SECTORS * _PER_SECTOR) + 0.5) * (2 * np.pi / (_SECTORS * _PER_SECTOR))
    cos, sin = np.cos(phi), np.sin(phi)

    def pixels(r: NDArray, az: NDArray[np.bool_] | slice) -> tuple[NDArray, NDArray]:
        """The (rows, columns) at radii ``r`` along the azimuths ``az``, as floats."""
        cols = np.multiply.outer(r, cos[az])
        cols += circle[0]
        rows = np.multiply.outer(r, sin[az])
        rows += circle[1]
        return np.floor(rows, out=rows), np.floor(cols, out=cols)

    # along an azimuth the pixel moves monotonically with the radius (each rounding is
    # monotonic): it stays in the frame if its innermost and outermost radii do
    rows, cols = pixels(radii[[0, -1]], slice(None))
    inside = ((cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)).all(axis=0)
    ok = inside.reshape(_SECTORS, _PER_SECTOR).all(axis=1)
    if not ok.any():
        return np.zeros((radii.size, 0)), np.zeros(0)
    rows, cols = pixels(radii, np.repeat(ok, _PER_SECTOR))
    vals = image[rows.astype(np.intp), cols.astype(np.intp)].astype(np.float64)
    vals = vals.reshape(radii.size, -1, _PER_SECTOR)
    if not np.isnan(vals).any():  # (np.nanmedian's values, by one partition: 4x faster)
        prof = _kth(vals, overwrite=True)
    else:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                prof = np.nanmedian(vals, axis=2)
    centres = phi.reshape(_SECTORS, _PER_SECTOR).mean(axis=1)[ok]
    return prof, centres


def _sharp(prof: NDArray, outer: NDArray, last: NDArray, block: int) -> bool:
    """Whether the rims of most sectors (``prof``: their radial profiles, one column
    each; ``last``: the index of each one's last lit radius) are sharp edges."""
    sharp = _sharp_sectors(prof, outer, last, block)
    # (an 8-bit stretch may clip the vignetted sky 2-3 blocks inside the rim to black in
    # most sectors of an all-sky JPEG: the few it leaves still tell a rim from a ramp)
    return sharp.size >= 3 and np.mean(sharp) >= 0.5


def _sharp_sectors(prof: NDArray, outer: NDArray, last: NDArray, block: int
                   ) -> NDArray[np.bool_]:
    """:func:`_sharp`'s verdict on each sector whose profile reaches three blocks inside
    its rim and is lit there, in order.

    (All sectors at once: a loop over them, three ``np.median`` calls each, took 1.7 ms
    of a vignetted 1024x768 frame's 9 ms search for a disc it does not hold.)"""
    j = np.flatnonzero(last - 3 * block >= 0)
    k = last[j]
    col = prof[:, j] - outer[j]  # each sector's profile above its surround
    lane = np.arange(j.size)

    def median_at(lo: int, hi: int) -> NDArray:
        """Each sector's median of its rows ``k + lo`` to ``k + hi - 1``."""
        return np.median(col[k[None, :] + np.arange(lo, hi)[:, None], lane], axis=0)

    near = median_at(-8, -1)
    mid = median_at(-16, -8)
    far = median_at(-3 * block, -2 * block + 1)
    # the fall from 80 % to 20 % of the sky just inside, in pixels: from the last radius
    # above 80 % (up to _RIM_WIDTH_PX past the last lit one) to the last above 20 %
    rows = np.arange(col.shape[0])[:, None]
    high = _last_true((col > 0.8 * near) & (rows <= k + _RIM_WIDTH_PX))
    low = _last_true(col > 0.2 * near)
    width = np.where((high >= 0) & (low >= 0), low - high, np.inf)
    # (or level over the last 16 px: the sky below a horizon, starless, is dimmer
    # than above it, where the stars of a coarse pixel scale lift it; a ramp is not)
    level = (near >= 0.6 * far) | ((near >= 0.3 * far) & (near >= 0.8 * mid))
    return (level & (width <= _RIM_WIDTH))[far > 0]


def _last_true(mask: NDArray[np.bool_]) -> NDArray[np.intp]:
    """The row of each column's last True (-1 where it has none)."""
    n = mask.shape[0]
    return np.where(mask.any(axis=0), n - 1 - np.argmax(mask[::-1], axis=0), -1)


#: A disc's sky covers at least this share of the frame (a disc of 0.2 x the shorter
#: side's radius in a 4:3 frame; an all-sky lens's circle fills most of its sensor).
_MIN_LIT = 0.1


def _sky_light(img: NDArray, dark: float, corners: list[NDArray], integer: bool) -> float:
    """The sky's light above ``dark``: the median of the frame's lit samples (about
    64 x 64 of them, lit: 5 noise sigmas of the dark ``corners`` above it), or 0 when
    they are under :data:`_MIN_LIT` of the frame.

    The lit part's median, not the frame centre's: a disc off the frame's centre leaves
    it dark, and a moon or a glare filling it is far brighter than the sky around (the
    circle of the sky blocks drawn at a fifth of its light was the moon's).
    """
    h, w = img.shape
    cs = max(1, min(h, w) // 64)
    sample = img[cs // 2::cs, cs // 2::cs].ravel()
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    # the corners' noise from differences of their sampled neighbours (a few px apart)
    diff = np.concatenate([np.diff(np.asarray(p, dtype=np.float64), axis=1).ravel()
                           for p in corners])
    noise = 1.4826 * _finite_median(np.abs(diff)) / math.sqrt(2.0) if diff.size else 0.0
    noise = max(noise if math.isfinite(noise) else 0.0, 0.5 if integer else 0.0)
    lit = sample > dark + 5.0 * noise
    n_lit = int(np.count_nonzero(lit))
    if not sample.size or n_lit < _MIN_LIT * sample.size:
        return 0.0
    return _finite_median(sample[lit]) - dark


def _with_nan(image: NDArray, bad: NDArray[np.bool_]) -> NDArray[np.float32]:
    """``image`` in float32 with NaN at the ``bad`` pixels (a :mod:`.scratch` buffer)."""
    img = scratch.copy(image, np.float32)
    np.copyto(img, np.nan, where=bad)
    return img


def find_sky_circle(image: NDArray, bad: NDArray[np.bool_] | None = None
                    ) -> tuple[float, float, float] | None:
    """The image circle of an all-sky frame: ``(x, y, radius)`` in centred pixels, or
    None when the frame holds no such disc.

    The frame is reduced to block medians (at most :data:`_GRID` blocks a side). The
    dark level is that of three of its four corners, the sky's that of its centre when
    that is like its lit part's (else the lit part's: a disc off the centre, a moon or
    a glare filling it; see :func:`_sky_light`); blocks brighter than the dark by
    :data:`_SKY_FRACTION` of the sky's light are sky.
    The outer edge of the sky blocks (each row's and column's first and last, where the
    frame does not cut them) is fitted with a circle, trimming outliers (captions
    lighting the surround, trees and buildings pulling the horizon in), and the circle
    is measured again at full resolution: its radius is where the median radial profile
    falls half way from the sky inside the rim to the dark outside.

    A disc is reported only when it is one: the corners at least :data:`_MIN_CONTRAST`
    noise sigmas darker than the centre, most edge points on the circle, the blocks
    outside it dark, the level falling by :data:`_STEP` of the light across the rim
    within a few blocks (vignetting falls smoothly), at least :data:`_MIN_OUTSIDE`
    of the frame outside it, and not mostly at the frame's brightest level (a saturated
    moon or glare: :func:`_plateau`). Where an 8-bit stretch clipped the surround and the
    sky near the rim to black, the radius is taken out to the sky's last lit pixels
    (:func:`_lens_edge`).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame (any real dtype); NaN pixels are ignored.
    bad : ndarray of bool, optional
        Pixels to ignore (masked).
    """
    h, w = image.shape
    block = max(_MIN_BLOCK, int(math.ceil(max(h, w) / _GRID)))
    hb, wb = h // block, w // block
    if min(hb, wb) < 16:
        return None
    img = _with_nan(image, bad) if bad is not None and bad.any() else image
    # first the corners against the sky, from a few patches (most frames end here)
    c = max(2, int(round(_CORNER * min(hb, wb))))
    k = c * block
    step = max(1, block // 4)
    patches = [img[:k:step, :k:step], img[:k:step, -k::step], img[-k::step, :k:step],
               img[-k::step, -k::step]]
    levels = np.array([_finite_median(p) for p in patches])
    if np.count_nonzero(np.isfinite(levels)) < 3:
        return None
    order = np.argsort(np.where(np.isfinite(levels), levels, np.inf))[:3]
    darkest = levels[order]
    dark = float(darkest[1])  # (their median: the middle of three, in order)
    light = _sky_light(img, dark, [patches[i] for i in order], image.dtype.kind in "iu")
    # the frame centre's light when it is the sky's (a disc about the centre, vignetted
    # towards its rim: its lit part's median is lower, and lets an 8-bit stretch's ramp
    # to black pass for the rim); not a moon or a glare there, nor the surround of a
    # disc off the centre
    q = int(0.25 * min(h, w))
    cs = max(1, q // 32)  # (about 64 x 64 samples)
    centre = _finite_median(img[h // 2 - q:h // 2 + q:cs, w // 2 - q:w // 2 + q:cs]) - dark
    if 0.5 * light <= centre <= 2.0 * light:
        light = centre
    # three corners dark alike (one may hold a caption, a lamp, a tree)
    if not (light > 0 and np.ptp(darkest) < 0.5 * _SKY_FRACTION * light):
        return None
    # the dark corners' pixel noise (differences of neighbours: gradients do not count),
    # at least half a step of an integer image's values
    diffs = [np.diff(img[:k, :k].astype(np.float64), axis=1).ravel(),
             np.diff(img[-k:, -k:].astype(np.float64), axis=1).ravel()]
    diff = np.concatenate(diffs)
    diff = diff[np.isfinite(diff)]
    pixel_noise = 1.4826 * float(np.median(np.abs(diff))) / math.sqrt(2.0) if diff.size else 0.0
    noise = max(pixel_noise, 0.5 if image.dtype.kind in "iu" else 0.0, 1e-9 * abs(dark))
    if not light > _MIN_CONTRAST * noise:
        return None
    grid = _block_medians(img, block)
    yy, xx = np.mgrid[0:hb, 0:wb]
    sky = np.nan_to_num(grid, nan=dark) > dark + _SKY_FRACTION * light
    x, y = _rim_points(sky, block)
    if x.size < 12:
        return None
    circle, kept = _fit_circle(x, y, block)
    if not np.isfinite(circle).all() or np.count_nonzero(kept) < _KEPT * x.size:
        return None
    # the blocks well outside the circle are dark
    bx, by = (xx + 0.5) * block, (yy + 0.5) * block
    dist = np.hypot(bx - circle[0], by - circle[1])
    out = dist > circle[2] + 1.5 * block
    # (dark: below half the centre's light. A sky stretched to 8 bits may clip to black
    # some way inside the lens's rim, and the stars there, or a JPEG's ringing about
    # them, lift a good share of the block medians of that ring a little)
    bright = np.nan_to_num(grid, nan=dark) > dark + 0.5 * light
    if not out.any() or np.count_nonzero(~bright[out]) < _OUTSIDE_DARK * np.count_nonzero(out):
        return None
    # measured again at full resolution, sector by sector: the rim where the profile
    # falls half way from the sky inside it to the dark outside (the blocks straddling
    # the rim count as sky or not by how bright the sky is there: a light dome moves
    # the coarse circle towards itself)
    # (a block further in than out: the sharpness test looks 3 blocks inside the rim)
    reach = 3 * block
    radii = circle[2] + np.arange(-reach - block, reach + 1.0)
    prof, phi = _sector_profiles(img, circle, radii)
    if phi.size < 8:
        return None
    edge = int(1.5 * block) + 1
    inner = _nanmedian(prof[block:block + edge], axis=0)
    outer = _nanmedian(prof[-edge:], axis=0)
    step = inner - outer
    # a sharp rim: most of the light is lost within a few blocks (vignetting falls slowly)
    if not (_nanmedian(step) >= _STEP * (_nanmedian(inner) - dark)
            and _nanmedian(inner) - dark > 0.5 * _SKY_FRACTION * light):
        return None
    lit = prof > 0.5 * (inner + outer)[None, :]
    good = np.isfinite(step) & (step > 0.5 * _SKY_FRACTION * light) & lit[block] & ~lit[-1]
    if np.count_nonzero(good) < 8:
        return None
    # the last radius still lit, to its outer edge
    last = radii.size - 1 - np.argmax(lit[::-1, good], axis=0)
    # and the rim is sharp: the sky just inside it (2-8 px) is nearly as bright as
    # deeper in (2-3 blocks), and falls to the dark within a few pixels; a vignetted sky
    # stretched to a clipped black point ramps down to it over dozens
    if not _sharp(prof[:, good], outer[good], last, block):
        return None
    found = _fine_circle(circle, radii[last] + 0.5, phi[good], h, w)
    if found is None or _plateau(img, found, dark):
        return None
    # the lens's edge: beyond a sky an 8-bit stretch clipped to black, where its last
    # noise and stars end (a threshold 3 sigmas of the surround's pixels above it; any
    # count above an 8-bit surround clipped to 0)
    lit_level = dark + max(3.0 * pixel_noise, 0.5 if image.dtype.kind in "iu" else 0.0)
    corners = np.concatenate([np.asarray(patches[i], dtype=np.float64).ravel() for i in order])
    corners = corners[np.isfinite(corners)]
    # (only where the stretch clipped the surround to its black point, most of its
    # pixels at one lowest value: a raw frame's rim is where its level falls, and the
    # glow of a moon or a dome beyond it is no sky)
    if not corners.size or np.mean(corners <= corners.min()) < 0.5:
        return found
    return _lens_edge(img, found, lit_level, float(np.mean(corners > lit_level)))


#: Sky pixels lit above the surround's share by this much still count as the lens's sky.
_LIT_MARGIN = 0.01
#: The lens's edge is looked for up to this fraction of the radius beyond the rim found.
_MAX_EXTENSION = 0.15
#: A JPEG's blocks (px a side).
_JPEG_BLOCK = 8


def _lens_edge(img: NDArray, circle: tuple[float, float, float], lit_level: float,
               surround: float) -> tuple[float, float, float]:
    """``circle`` (centred pixels) widened to where the sky's last lit pixels end.

    An all-sky JPEG's stretch clips its vignetted sky to black some way inside the
    lens's rim (0-2 counts over the outer 8-9 % of the radius): the level's rim found is
    that of the clipped sky, and the dark ring beyond it, sky with its stars near the
    horizon, was dropped as surround. Here, ring by ring outwards, the median over
    sectors of the share of pixels above ``lit_level`` (three rings of eight azimuths
    a sector) is compared with the surround's share (its corners'): the edge is the
    last ring with :data:`_LIT_MARGIN` more lit pixels than the surround, up to
    :data:`_MAX_EXTENSION` of the radius out (a sharp rim moves by a pixel at most).
    """
    h, w = img.shape
    x0, y0, r = circle
    centre = np.array([x0 + 0.5 * w, y0 + 0.5 * h, r])
    radii = r - 0.5 + np.arange(0.0, math.ceil(_MAX_EXTENSION * r) + 3.0)
    phi = (np.arange(_SECTORS * _PER_SECTOR) + 0.5) * (2 * np.pi / (_SECTORS * _PER_SECTOR))
    cols = np.floor(centre[0] + radii[:, None] * np.cos(phi)[None, :]).astype(np.int64)
    rows = np.floor(centre[1] + radii[:, None] * np.sin(phi)[None, :]).astype(np.int64)
    inside = ((cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)).all(axis=0)
    ok = inside.reshape(_SECTORS, _PER_SECTOR).all(axis=1)
    if np.count_nonzero(ok) < 8:
        return circle
    sel = np.repeat(ok, _PER_SECTOR)
    lit = (img[rows[:, sel], cols[:, sel]] > lit_level).reshape(radii.size, -1, _PER_SECTOR)
    counts = lit.sum(axis=2)  # (radii, sectors)
    # the sectors whose outer third is the surround's black: a caption, a compass letter
    # or a glow lighting the others says nothing of where the sky ends
    clean = counts[-(radii.size // 3):].sum(axis=0) == 0
    if np.count_nonzero(clean) < 8:
        return circle
    pooled = counts[:, clean].sum(axis=1).astype(np.float64)
    # three rings at a time, pooled over the sectors (the last stars and noise of a
    # clipped sky are sparse: a median over sectors missed them)
    ring = (pooled[:-2] + pooled[1:-1] + pooled[2:]) / (3.0 * _PER_SECTOR
                                                       * np.count_nonzero(clean))
    # (the surround's share there is 0: those sectors' outer thirds hold no lit pixel)
    above = ring > _LIT_MARGIN
    if not above[0]:
        return circle
    end = int(np.argmin(above)) if not above.all() else above.size
    # (ring i is centred on radii[i + 1]; the last lit one's middle radius is radii[end],
    # whose pixels reach half a pixel less far than the three-ring window: a sharp rim
    # stays where it was)
    edge = float(radii[end]) - 0.5
    # (lit pixels up to a JPEG block and a bit beyond the rim are its ringing in the
    # blocks the rim crosses, 6-8 px past a sharp rim, not a clipped ring of sky)
    return (x0, y0, edge) if edge > r + 1.25 * _JPEG_BLOCK else circle


def _plateau(img: NDArray, circle: tuple[float, float, float], dark: float) -> bool:
    """Whether most of the disc ``circle`` (centred pixels) is at the frame's brightest
    level: a saturated moon or glare, flat and starless, not a lens's sky (whose light
    is the sky's, with its noise and stars, under the stars' peaks)."""
    h, w = img.shape
    cs = max(1, min(h, w) // 64)
    rows = np.arange(cs // 2, h, cs)
    cols = np.arange(cs // 2, w, cs)
    sample = np.asarray(img[cs // 2::cs, cs // 2::cs], dtype=np.float64)
    x0, y0, r = circle
    inside = ((cols + 0.5 - 0.5 * w - x0) ** 2)[None, :] + ((rows + 0.5 - 0.5 * h - y0) ** 2
                                                           )[:, None] <= r * r
    values = sample[inside & np.isfinite(sample)]
    if not values.size:
        return False
    top = float(np.nanmax(sample))
    return bool(np.mean(values >= top - 0.01 * (top - dark)) > 0.5)


def _fine_circle(circle: NDArray, r_rim: NDArray, phi: NDArray, h: int, w: int
                 ) -> tuple[float, float, float] | None:
    """The circle through the rim measured at full resolution (``r_rim`` about the
    coarse ``circle``'s centre at azimuths ``phi``, array coordinates) in centred pixels,
    or None when it is no lens's image circle."""
    px = circle[0] + r_rim * np.cos(phi)
    py = circle[1] + r_rim * np.sin(phi)
    fine, on = _fit_circle(px, py, 2.0)
    if (not np.isfinite(fine).all() or np.count_nonzero(on) < _KEPT * px.size
            or np.count_nonzero(on) < _MIN_ARC):
        return None
    radius = float(fine[2])
    x0, y0 = fine[0] - 0.5 * w, fine[1] - 0.5 * h
    # a lens's axis is in the frame (a circle centred thousands of pixels away is a
    # straight edge: a stack's black border)
    if abs(x0) > 0.5 * w or abs(y0) > 0.5 * h:
        return None
    # the frame's share outside the circle (its corners at least)
    area_in = _disc_area_in_frame(x0, y0, radius, h, w)
    if area_in > (1.0 - _MIN_OUTSIDE) * h * w:
        return None
    return float(x0), float(y0), radius


def _disc_area_in_frame(x0: float, y0: float, r: float, h: int, w: int) -> float:
    """Area (px^2) of the disc within the frame, from a coarse sampling."""
    n = 200
    xs = (np.arange(n) + 0.5) / n * w - 0.5 * w
    ys = (np.arange(n) + 0.5) / n * h - 0.5 * h
    inside = (xs[None, :] - x0) ** 2 + (ys[:, None] - y0) ** 2 <= r * r
    return float(inside.mean()) * h * w


def sky_circle(image: NDArray, mask: NDArray[np.bool_] | None,
               value: str | tuple[float, float, float] | None
               ) -> tuple[float, float, float] | None:
    """The circle :attr:`ExtractionOptions.sky_circle` ``value`` names for ``image``
    (checked already): found when ``'auto'``, None when there is none."""
    if value is None:
        return None
    if isinstance(value, str):
        return find_sky_circle(image, mask)
    # a given circle clear of the frame would drop every star, silently: refused
    h, w = image.shape
    x0, y0, r = value
    gap = math.hypot(max(abs(x0) - 0.5 * w, 0.0), max(abs(y0) - 0.5 * h, 0.0))
    if not gap < r - rim_band_px(r):
        raise InvalidArgumentError(
            f"sky_circle {tuple(value)} holds no pixel of the {w} x {h} frame (centred "
            f"pixels: the frame spans x {-0.5 * w:g} to {0.5 * w:g}, y {-0.5 * h:g} to "
            f"{0.5 * h:g})")
    return value


def within_rim(result: Any, circle: tuple[float, float, float],
               max_centroids: int | None) -> Any:
    """``result`` (an :class:`~skysolve.ExtractionResult` of the frame with the
    surround masked) without the detections in the rim band, which join its rejected
    ones as ``'border'``, cut to the brightest ``max_centroids``; its ``sky_circle``
    set."""
    from ..centroids import REJECTED_DTYPE, ExtractionResult

    x0, y0, r = circle
    x, y = result._x, result._y
    keep = np.hypot(x - x0, y - y0) <= r - rim_band_px(r)
    dropped = np.flatnonzero(~keep)
    rejected = result.rejected
    if dropped.size:
        extra = np.zeros(dropped.size, REJECTED_DTYPE)
        extra["x"], extra["y"] = x[dropped], y[dropped]
        extra["brightness"] = result._brightness[dropped]
        extra["npix"], extra["peak"] = result.npix[dropped], result.peak[dropped]
        extra["reason"] = "border"
        rejected = np.concatenate([rejected, extra])
        rejected = rejected[np.argsort(-rejected["brightness"], kind="stable")]
    idx = np.flatnonzero(keep)
    if max_centroids is not None:
        idx = idx[:max_centroids]
    out = ExtractionResult._from_arrays(
        x[idx], y[idx], result._brightness[idx], result._cov[idx],
        image_width=result.image_width, image_height=result.image_height,
        background_mean=result.background_mean, background_sigma=result.background_sigma,
        threshold=result.threshold, num_blobs_raw=result.num_blobs_raw,
        saturated=result.saturated[idx], npix=result.npix[idx], peak=result.peak[idx],
        fitted=result.fitted[idx], flags=result.flags[idx], rejected=rejected)
    out.sky_circle = (float(x0), float(y0), float(r))
    return out
