"""Burned-in captions: the text all-sky and finder cameras write into their frames.

A timestamp, the exposure and gain, the camera's name: every glyph (or a few touching
ones) is a blob, brighter than most stars, flat-topped (the text's one value, often
the frame's full scale, so that it counts as saturated) and shaped by the font's
strokes rather than by the optics. Saturated stars share the flat tops and the value,
and a glyph's size and shape say little on their own, so the test looks at their
layout: a line of text puts many such blobs side by side in one band of rows, far
more densely than the frame's bright blobs lie anywhere else.

The test (:func:`overlay_blobs`) runs on the blobs that passed the size, border and
sharpness tests, before the PSF reference is measured (unsaturated grey glyphs would
otherwise make the frame's stars look wide and flat), so that the later tests never
see the glyphs:

1. **Candidates** are saturated blobs, and bright (:data:`_SNR`) flat ones
   (:data:`_FILL`: their mean pixel above the detection threshold is at least that
   fraction of their peak's). A glyph is flat, anti-aliased or not; a Gaussian star,
   however bright and wherever the threshold cuts it, reaches half at most.
2. Each candidate's **height** and **width** are those of a bar with its second
   moments, ``sqrt(12 c + 1)``: a glyph's height for a stem, about its cap height
   for most letters and digits.
3. Two candidates are **neighbours on a line** when their centres lie within half
   the taller one's height (plus a pixel) of each other vertically, their heights
   agree within a factor :data:`_SIZES`, the gap between them is at most
   :data:`_GAP` of the taller one's heights (the space between two words), and
   their brightest pixels hold about the same value (:data:`_ALIKE`: one text
   colour; anti-aliasing dims thin strokes).
4. Chains of neighbours are **lines**. A line at least :data:`_LENGTH` of its
   (median) heights long, of at least :data:`_MEMBERS` blobs, straight along a row
   (:data:`_ALIGNED`), and longer than the chains chance forms at the density of the
   candidates around it outside the lines' bands (:data:`_CHANCE`, :data:`_WINDOW`),
   is text: its blobs, and every kept blob in its band up to :data:`_SPAN` heights
   beyond its ends (thin strokes, dots and punctuation), are overlay.

Single letters (compass points) and graphics (a logo, a crosshair) are not found by
it: alone they are a few false detections, which the solver tolerates, and the lines
of a crosshair are trails.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .linking import roots
from .orderstats import median

__all__ = ["overlay_blobs"]

#: Candidates are saturated, or flat and peak this many local noise sigmas above the
#: background (a caption lifts the local noise: 26 sigmas of the frame are 14 there) ...
_SNR = 10.0
#: ... flat meaning: mean pixel above the threshold at least this fraction of the
#: peak's. (A Gaussian: ``1 / ln r - 1 / (r - 1)`` for a peak ``r``
#: times the threshold, below 0.5; hard-edged glyphs 1, anti-aliased ones 0.5-0.8 on
#: the real frames, median 0.69, while one star in ten reaches 0.5 there, sampled
#: by a few pixels.)
_FILL = 0.5
#: Neighbours on a line are at most this factor apart in height (letters and digits,
#: with or without descenders; punctuation is overlay by its place, step 4) ...
_SIZES = 2.0
#: ... at most this many of the taller one's heights apart ...
_GAP = 2.0
#: ... and their brightest pixels differ by at most this fraction of the higher one's
#: rise above the background (the text's one value, while the background the caption
#: lifts varies along it).
_ALIKE = 0.5
#: A line of text is at least this many of its heights long ...
_LENGTH = 4.0
#: ... and has at least this many blobs ...
_MEMBERS = 4
#: ... and more than the length of aligned chain of which the frame's candidates,
#: strewn at random at the density around the line, would form this many (N mu^(k - 1),
#: with mu the expected number of candidates within a blob's reach of aligned
#: neighbours). (A false line costs the few stars on it; a missed one leaves its
#: glyphs among the brightest detections.)
_CHANCE = 1e-2
#: A line's rows are aligned: at least this fraction of its blobs' centres lie within
#: _ROW of its (median) height, plus half a pixel, of its median row (a caption's
#: lines: 86 % or more in 99 of 100; a chain of stars drifts).
_ALIGNED = 0.75
_ROW = 0.2
#: Kept blobs in a line's band up to this many of its heights beyond its ends are
#: overlay too.
_SPAN = 1.0
#: The density of the candidates outside the lines' bands is counted this many of a
#: line's heights above, below and beyond its ends.
_WINDOW = 10.0
#: Candidates taller than this (px) are no glyphs (captions are rarely larger than
#: 40 px), and bound the rows searched for neighbours.
_MAX_HEIGHT = 48.0


def overlay_blobs(m: dict[str, NDArray], kept: NDArray[np.intp], thr: NDArray | float,
                  shape: tuple[int, int]) -> NDArray[np.bool_]:
    """Which of the blobs ``kept`` (ids into the per-label measurements ``m`` of
    :mod:`.blobs`) are pieces of burned-in text (see the module notes); ``thr``: the
    detection threshold above the background (per label, or one), ``shape``: the
    image's."""
    out = np.zeros(len(kept), dtype=bool)
    rise = m["peak"][kept]
    # (flux - npix thr >= _FILL npix (rise - thr), in fewer steps: every frame pays them)
    level = (thr[kept] if np.ndim(thr) else thr) * (1.0 - _FILL) + _FILL * rise
    flat = m["flux"][kept] >= m["npix"][kept] * level
    cand = np.flatnonzero(m["saturated"][kept] | (flat & (rise >= _SNR * m["sigma"][kept])))
    if len(cand) < _MEMBERS:
        return out
    ids = kept[cand]
    order = np.argsort(m["cy"][ids], kind="stable")
    cand, ids = cand[order], ids[order]
    y, height = m["cy"][ids], np.sqrt(12.0 * m["cyy"][ids] + 1.0)
    # (the aligned blobs of a line lie in a band of rows: the frames without any such
    # group end here)
    k = int(np.ceil(_ALIGNED * _MEMBERS))
    if not np.any(y[k - 1:] - y[:len(y) - k + 1] <= 2.0 * _ROW * height.max() + 1.0):
        return out
    short = height <= _MAX_HEIGHT
    if not short.all():
        cand, ids, y, height = cand[short], ids[short], y[short], height[short]
        if len(cand) < _MEMBERS:
            return out
    x, rise = m["cx"][ids], m["peak"][ids]
    top = rise + m["bg_peak"][ids]
    width = np.sqrt(12.0 * m["cxx"][ids] + 1.0)
    half = 0.5 * height + 1.0
    # every pair within the tallest half-height in rows (sorted by row: a window each)
    end = np.searchsorted(y, y + half.max(), side="right")
    count = end - np.arange(len(y)) - 1
    i = np.repeat(np.arange(len(y)), count)
    j = np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count) + i + 1
    tall = np.maximum(height[i], height[j])
    on = ((y[j] - y[i] <= np.maximum(half[i], half[j]))
          & (tall <= _SIZES * np.minimum(height[i], height[j]))
          & (np.abs(x[j] - x[i]) - 0.5 * (width[i] + width[j]) <= _GAP * tall)
          & (np.abs(top[j] - top[i]) <= _ALIKE * np.maximum(rise[i], rise[j])))
    if not on.any():
        return out
    line = roots(i[on], j[on], len(y))
    members = np.bincount(line, minlength=len(y))
    lines = []  # (members, height, row, left end, right end) of the straight, long ones
    for r in np.flatnonzero(members >= _MEMBERS):  # (lines are few)
        on = np.flatnonzero(line == r)
        lh, row = median(height[on]), median(y[on])
        lo, hi = float(np.min(x[on] - 0.5 * width[on])), float(np.max(x[on] + 0.5 * width[on]))
        if (hi - lo >= _LENGTH * lh
                and np.mean(np.abs(y[on] - row) <= _ROW * lh + 0.5) >= _ALIGNED):
            lines.append((on, lh, row, lo - _SPAN * lh, hi + _SPAN * lh))
    if not lines:
        return out
    # the candidates outside the lines' bands are the frame's stars (and whatever else;
    # a caption's punctuation lies in its bands): their density around a line says how
    # long the chains are that chance forms there
    kx, ky = m["cx"][kept], m["cy"][kept]
    banded = [(np.abs(ky - row) <= 0.5 * lh + 1.0) & (kx >= lo) & (kx <= hi)
              for _, lh, row, lo, hi in lines]
    loose = ~np.logical_or.reduce(banded)[cand]
    lx, ly = x[loose], y[loose]
    h, w = shape
    for (on, lh, row, lo, hi), band in zip(lines, banded, strict=True):
        reach = _WINDOW * lh
        r0, r1 = max(row - reach, 0.0), min(row + reach, float(h))
        c0, c1 = max(lo - reach, 0.0), min(hi + reach, float(w))
        near = np.count_nonzero((ly >= r0) & (ly <= r1) & (lx >= c0) & (lx <= c1))
        # (a blob's reach of aligned neighbours: the rows about the line's row, its
        # width and the gaps either side)
        mu = near / max((r1 - r0) * (c1 - c0), 1.0) * (2.0 * _ROW * lh + 1.0) * 2.0 * (
            _GAP * lh + median(width[on]))
        chance = 0.0 if mu == 0.0 else (
            1.0 + np.log(_CHANCE / len(y)) / np.log(mu) if mu < 1.0 else np.inf)
        if len(on) >= max(_MEMBERS, chance):
            # its blobs, and the rest of the line: thin strokes, dots and punctuation
            out[cand[on]] = True
            out |= band
    return out
