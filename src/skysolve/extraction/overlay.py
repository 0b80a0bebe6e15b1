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

Other graphics drawn over the frame are found by what drawing leaves
(:func:`drawn_blobs`, run on the same blobs): a colour, many pixels of exactly one
value (the text's is often the frame's full scale, as a saturated star's clip is):

* a single **letter** (an all-sky camera's compass points, N, E, S, W ... in a large
  font) or a **logo** is one blob, or a few, whose plateau (its pixels at exactly its
  brightest value, all of them one 8-connected run) has sky between its strokes
  along rows and columns (:data:`_HOLLOW`; a saturated star's plateau is a disk, a
  blend of saturated stars has a core per star) and whose strokes do not all radiate
  from its centre (:data:`_SEEN`: a saturated star's diffraction spikes do), or
  which rises from the sky to its plateau in one step (:data:`_STEP`; a star has
  wings) and is no star's round clip (:data:`_CLIP`, :data:`_BOX`: a stretch that
  makes the sky black leaves stars none);
* on a JPEG, whose ringing breaks a drawn colour's plateau and whose lit sky may join
  a letter's strokes, a **large letter** is a blob whose upper half (above half its
  peak) holds a piece of :data:`_GLYPH` pixels or more that mostly does not see its
  centre along straight lines within it (a star's is a disk); a letter that the
  background followed up, broken into smaller blobs, is found by the piece of the
  frame's pixels as bright that holds each (:data:`_PIECE`);
* a reticle's **dashes** (a finder's cross, drawn by the capture software) are flat
  bars of one length (:data:`_DASH_ALIKE`), four or more end to end along one row or
  column (the pieces of a full line are one large blob, or trails).

Anti-aliased letters whose plateau breaks into pieces, a logo's letters inside an
outline of another value, and bold bitmap letters on a frame whose stars are only a
few sigmas from black to white (no step can be told from a star there) are not found.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .linking import pixel_labels, roots
from .orderstats import median

__all__ = ["drawn_blobs", "overlay_blobs"]

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


#: Drawn graphics (:func:`drawn_blobs`) are this many noise sigmas above the background
#: at least (a harsh 8-bit stretch leaves stars a few sigmas of black and white, 0 and
#: 255: flat and sharp-edged; compass letters at 255 on an 8-bit frame of the Pleiades
#: are 10-19 sigmas up) ...
_DRAWN_SNR = 8.0
#: **Letters** and **logos**: a blob of at least this many pixels ...
_LETTER = 40
#: ... holding at least :data:`_TIES` pixels of exactly its brightest value (a drawn
#: colour, or the clip of saturated stars: independent noisy peaks do not tie), all
#: of them 8-connected (its **plateau**: a blend of saturated stars has a core for
#: each star; 8-bit all-sky frames hold dozens of such blends, whose sky between the
#: cores looks like a letter's) ...
_TIES = 6
#: ... and either hollow: at least this fraction of its plateau's pixels again lies
#: between them along rows and columns outside the blob (the sky between a letter's
#: strokes and in its counters, a badge's cut-out letters: 1.1-1.9 for the compass
#: letters of :func:`skysolve.simulate.degrade.compass`; a saturated star's plateau is
#: a disk, with a bleed trail a column, and the blends of saturated stars whose cores
#: touch reached 0.56), and no ring ...
_HOLLOW = 1.0
#: ... (the spread of the plateau pixels' distances from its centre is at least this
#: fraction of their mean: a defocused star's annulus about 0.1-0.2; a letter, whose
#: strokes reach from its middle to its corners, 0.35 and more) ...
_RING = 0.3
#: ... and no star's: fewer than this fraction of its plateau's pixels see its centre along
#: a straight line within the blob (a saturated star's clip is a disk, and its saturated
#: diffraction spikes run straight out of it, with the sky between them making it
#: hollow when they lie diagonally: 0.79-1.0 of its pixels see the centre; the compass
#: letters' strokes bend and part round their counters: 0-0.41) ...
_SEEN = 0.6
#: ... or a step: at most this fraction of its pixels lies below its plateau (a bold
#: bitmap letter's pieces, a filled badge; a saturated star has wings, a ring of pixels
#: between the threshold and the clip: a third of a bright one's on an 8-bit frame),
#: it is no bar (a bleed trail has sharp sides) and is at least :data:`_STEP_SNR` noise
#: sigmas up (below that a harsh stretch leaves no ring: 0 and 255).
_STEP = 0.05
_STEP_SNR = 20.0
#: ... and it is no star's clip: one fills at least this fraction of the ellipse of its
#: second moments (a frame stretched so that the sky is black and a star white a few
#: sigmas up leaves stars with no ring: their clips filled 0.83-1.0 of it; a bold
#: letter's pieces and badges with cut-out letters 0.71 at most) ...
_CLIP = 0.8
#: ... and at most this fraction of its bounding box (a disk pi / 4, small ones up to
#: 0.89; a filled rectangle, a badge, all of it).
_BOX = 0.93
#: Only blobs covering at most this fraction of the ellipse of their second moments (a
#: uniform one covers it all; the compass letters 0.37-0.46), or that are flat to
#: within twice :data:`_STEP` (by their flux), are looked at pixel by pixel.
_SPREAD = 0.55
#: **Dashes** (a reticle's lines): flat blobs at most this thick (px, by their second
#: moments: a bar's ``sqrt(12 c + 1)``) ...
_DASH_WIDTH = 3.0
#: ... at least this many times as long, along a row or a column (the covariance at most
#: :data:`_SQUARE` of the difference of the moments' axes: within 10 deg) ...
_DASH_LENGTH = 3.0
_SQUARE = 0.35
#: ... :data:`_MEMBERS` or more of them on one row (or column) within this many pixels,
#: each at most this many of the longer one's lengths from the next: a dashed line
#: (saturated stars smeared along a row are bars too, but do not line up end to end).
_DASH_ROW = 1.0
_DASH_GAP = 2.0
#: ... and each at most this factor longer or shorter than the next (a dashed line's
#: dashes are one length; a faint trail, a star smeared along a row, breaks into pieces
#: of 3 to 20 px end to end).
_DASH_ALIKE = 2.0
#: **Large letters** by their strokes: a blob whose upper half (its pixels above half
#: its peak's rise: a drawn colour's strokes, which a JPEG's ringing or an anti-aliased
#: edge moves by less than that, where the plateau of exactly one value breaks up and
#: the sky between the strokes joins the blob) holds a piece of at least this many
#: pixels, fewer than :data:`_SEEN` of which see its centre along a straight line within
#: it (a star's upper half is its clip or core, a disk, with any spikes radiating from
#: it; a blend of two a pair of disks; the compass letters of
#: :func:`skysolve.simulate.degrade.compass` on 72 all-sky JPEGs of ``bench_allsky``
#: stretched hard: below 0.6 in 273 of 285 such pieces; on the same frames none of the 8
#: pieces of stars and Milky Way knots this large, whose least was 0.77). Smaller pieces
#: are left to the tests above: a knot of clipped stars, C-shaped, had a 100-pixel upper
#: half that saw its centre from none of its pixels. On a JPEG (its block grid found)
#: only: elsewhere the drawn colour is one value, and the tests above tell a letter from
#: a cluster of saturated stars touching, a core for each star (the crowded rim of an
#: uncompressed 8-bit fisheye clipped to 0 and 255 held 30-33 such clusters of 200-1,500
#: px, their upper halves seeing their centres from few pixels; their share at the top
#: value, 0.68-0.92, is no sure sign either: the letters' pieces on the JPEGs above held
#: 0.05-0.74 of theirs).
_GLYPH = 200
#: Smaller blobs (JPEG only, from this many pixels) that have pixels as bright beside
#: them are grown over the frame's pixels at least that bright within
#: :data:`_PIECE_REACH` px of their peak, and looked at the same way when the piece
#: holding their peak reaches :data:`_GLYPH` pixels: a large letter covers whole blocks
#: of the background, which follows it up there, and breaks into pieces above it (a
#: hard-stretched all-sky JPEG: 8 such pieces of 52-246 px among its brightest 24
#: detections, and no solve; now 1). A star's blob holds all of its light above the
#: threshold, and nothing as bright lies beside it.
_PIECE = 40
_PIECE_REACH = 48
#: The pixels :func:`_seen` draws lines from, at most (every few of a larger piece's).
_SEEN_SAMPLES = 256
#: Windows larger than this (px) are not searched (compass letters and logos are
#: smaller).
_MAX_WINDOW = 160


def drawn_blobs(m: dict[str, NDArray], kept: NDArray[np.intp], work: NDArray,
                labels: NDArray, thr: NDArray | float, jpeg: bool = False) -> NDArray[np.bool_]:
    """Which of the blobs ``kept`` (ids into the per-label measurements ``m`` of
    :mod:`.blobs`) are graphics drawn over the frame: compass letters, logos and the
    dashes of a reticle (see the notes at :data:`_DRAWN_SNR` ... :data:`_DASH_GAP`);
    ``work``: the working image the blobs were measured on, ``labels`` their label
    image, ``thr`` the detection threshold above the background (per label, or one),
    ``jpeg``: the frame is block-compressed (large letters are then told by their strokes,
    :data:`_GLYPH`).
    """
    out = np.zeros(len(kept), dtype=bool)
    rise, npix = m["peak"][kept], m["npix"][kept]
    bright = rise >= _DRAWN_SNR * m["sigma"][kept]
    if not bright.any():
        return out
    a, c, b = (m[q][kept] for q in ("cxx", "cyy", "cxy"))
    half, root = 0.5 * (a + c), np.sqrt(0.25 * (a - c) ** 2 + b * b)
    long, short = half + root + 1.0 / 12.0, np.maximum(half - root, 0.0) + 1.0 / 12.0
    bar = long >= _DASH_LENGTH ** 2 * short
    level = (thr[kept] if np.ndim(thr) else thr) * (1.0 - _FILL) + _FILL * rise
    flat = m["flux"][kept] >= npix * level
    dash = (bright & flat & bar & (12.0 * short <= _DASH_WIDTH ** 2)
            & (np.abs(b) <= _SQUARE * root))
    if np.count_nonzero(dash) >= _MEMBERS:
        on, x, y = np.flatnonzero(dash), m["cx"][kept], m["cy"][kept]
        for across, along, length in ((y, x, a), (x, y, c)):
            out[on[_dashed_lines(across[on], along[on], np.sqrt(12.0 * length[on] + 1.0))]] = True
    # (every frame pays for this: the few blobs spread thin over their moments' ellipse
    # or flat to the edge are looked at, not the thousands of saturated stars of an
    # all-sky frame)
    solid = ((m["flux"][kept] >= (1.0 - 2.0 * _STEP) * npix * rise)
             & (rise >= _STEP_SNR * m["sigma"][kept]) & ~bar)
    ellipse = 4.0 * np.pi * np.sqrt(long * short)  # (the area of a uniform blob's)
    big = np.flatnonzero(bright & (npix >= _LETTER) & ~out & (solid | (npix <= _SPREAD * ellipse)))
    if len(big):
        out[big[_letters(m, kept[big], work, labels, solid[big], ellipse[big])]] = True
    large = ()
    if jpeg:
        # (against the blobs' typical noise too: a large letter lifts the noise measured
        # about it, 31-35 counts about the compass letters of a hard-stretched all-sky
        # JPEG whose sky's is 8.6, and 211-241 counts high they were not bright)
        noise = np.minimum(m["sigma"][kept], median(m["sigma"][kept]))
        large = np.flatnonzero((rise >= _DRAWN_SNR * noise) & (npix >= _PIECE) & ~out)
    if len(large):
        out[large[_strokes(m, kept[large], work, labels)]] = True
    return out


def _dashed_lines(across: NDArray, along: NDArray, length: NDArray) -> NDArray[np.bool_]:
    """Which of the bars (their centres ``across`` and ``along`` a row, or a column, and
    their ``length``) lie in chains of :data:`_MEMBERS` or more on one row, each within
    :data:`_DASH_GAP` lengths of the next and of a length alike (:data:`_DASH_ALIKE`)."""
    out = np.zeros(len(across), dtype=bool)
    order = np.argsort(across, kind="stable")
    # the bars of each band of rows, in order along it (bars are few)
    for start in range(len(order)):
        band = order[start:][across[order[start:]] - across[order[start]] <= _DASH_ROW]
        if len(band) < _MEMBERS:
            continue
        band = band[np.argsort(along[band], kind="stable")]
        longer = np.maximum(length[band[1:]], length[band[:-1]])
        shorter = np.minimum(length[band[1:]], length[band[:-1]])
        reach = _DASH_GAP * longer + 0.5 * (longer + shorter)
        cut = np.flatnonzero((np.diff(along[band]) > reach) | (longer > _DASH_ALIKE * shorter))
        for chain in np.split(band, cut + 1):
            if len(chain) >= _MEMBERS:
                out[chain] = True
    return out


def _windows(m: dict[str, NDArray], ids: NDArray[np.intp], shape: tuple[int, int]):
    """``(k, blob, window)`` for each blob ``ids[k]``: the slices of a window round it in
    a frame of ``shape``, reaching twice half a bar of its moments, and 3 px, each way (at
    most :data:`_MAX_WINDOW`)."""
    h, w = shape
    # half a bar of its moments is sqrt(3 c); a letter's weight lies towards its edges
    hy = np.minimum(2.0 * np.sqrt(3.0 * m["cyy"][ids]) + 3.0, _MAX_WINDOW).astype(int)
    hx = np.minimum(2.0 * np.sqrt(3.0 * m["cxx"][ids]) + 3.0, _MAX_WINDOW).astype(int)
    cy, cx = np.rint(m["cy"][ids]).astype(int), np.rint(m["cx"][ids]).astype(int)
    for k, blob in enumerate(ids):
        yield k, blob, (slice(max(cy[k] - hy[k], 0), min(cy[k] + hy[k] + 1, h)),
                        slice(max(cx[k] - hx[k], 0), min(cx[k] + hx[k] + 1, w)))


def _letters(m: dict[str, NDArray], ids: NDArray[np.intp], work: NDArray, labels: NDArray,
             solid: NDArray[np.bool_], ellipse: NDArray) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` are drawn letters or logos (:data:`_LETTER` ...
    :data:`_STEP_SNR`), looked at in a window round each; ``solid``: which may be steps
    (bright enough, no bar, flat by their flux); ``ellipse``: the area of the ellipse of
    their second moments."""
    out = np.zeros(len(ids), dtype=bool)
    top = work[m["pr"][ids], m["pc"][ids]]
    for k, blob, window in _windows(m, ids, labels.shape):
        mine = labels[window] == blob
        flat = mine & (work[window] == top[k])
        at = np.flatnonzero(flat)
        if len(at) < _TIES:
            continue
        step = solid[k] and len(at) >= (1.0 - _STEP) * m["npix"][blob]
        if not step and _gaps(flat, mine) < _HOLLOW * len(at):
            continue
        if pixel_labels(at, flat.shape[1])[1] > 1:
            continue  # (a blend of saturated stars: a core each)
        if step:
            # (a star's clip, a disk or a blend of two, is no step however sharp its
            # edge, nor is a filled rectangle a star's clip)
            rows, cols = np.nonzero(mine)
            box = (np.ptp(rows) + 1) * (np.ptp(cols) + 1)
            npix = m["npix"][blob]
            out[k] = npix < _CLIP * ellipse[k] or npix > _BOX * box
        else:
            rows, cols = np.divmod(at, flat.shape[1])
            d = np.hypot(rows - rows.mean(), cols - cols.mean())
            out[k] = d.std() >= _RING * d.mean() and _seen(rows, cols, mine) < _SEEN
    return out


def _strokes(m: dict[str, NDArray], ids: NDArray[np.intp], work: NDArray,
             labels: NDArray) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` are large drawn letters by the shape of their upper half
    (see :data:`_GLYPH`), looked at in a window round each as :func:`_letters` does, or
    for a smaller blob by the piece of the frame's pixels as bright that holds its peak
    (:data:`_PIECE`)."""
    out = np.zeros(len(ids), dtype=bool)
    top = work[m["pr"][ids], m["pc"][ids]]
    half = top - 0.5 * m["peak"][ids]  # (the peak's rise above the background there)
    for k, blob, window in _windows(m, ids, labels.shape):
        mine = labels[window] == blob
        bright = work[window] >= half[k]
        if m["npix"][blob] >= _GLYPH:
            at = np.flatnonzero(mine & bright)
            if len(at) < _GLYPH:
                continue
            # its largest piece: one letter of a word (the sky the strokes stand on may
            # join a letter to its neighbours, or to stars, in one blob)
            lab, n = pixel_labels(at, mine.shape[1])
            if n > 1:
                at = at[lab == int(np.argmax(np.bincount(lab)))]
        elif (_outline(mine) & bright).any():
            window, at = _grown(work, half[k], int(m["pr"][blob]), int(m["pc"][blob]))
        else:
            continue
        if len(at) < _GLYPH:
            continue
        upper = np.zeros((window[0].stop - window[0].start, window[1].stop - window[1].start),
                         dtype=bool)
        upper.flat[at] = True
        rows, cols = np.divmod(at, upper.shape[1])
        out[k] = _seen(rows, cols, upper) < _SEEN
    return out


def _outline(mine: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The pixels of a window just outside the blob ``mine``: beside one of its pixels
    along a row or a column."""
    out = np.zeros_like(mine)
    out[1:] |= mine[:-1]
    out[:-1] |= mine[1:]
    out[:, 1:] |= mine[:, :-1]
    out[:, :-1] |= mine[:, 1:]
    return out & ~mine


def _grown(work: NDArray, level: float, r: int, c: int) -> tuple[tuple[slice, slice],
                                                                   NDArray[np.intp]]:
    """The window within :data:`_PIECE_REACH` of pixel ``(r, c)`` of ``work`` and the
    flat indices in it of the 8-connected piece of pixels at least ``level`` that holds
    ``(r, c)`` (which is one)."""
    h, w = work.shape
    window = (slice(max(r - _PIECE_REACH, 0), min(r + _PIECE_REACH + 1, h)),
              slice(max(c - _PIECE_REACH, 0), min(c + _PIECE_REACH + 1, w)))
    width = window[1].stop - window[1].start
    at = np.flatnonzero(work[window] >= level)
    lab, _ = pixel_labels(at, width)
    mine = (r - window[0].start) * width + (c - window[1].start)
    return window, at[lab == lab[np.searchsorted(at, mine)]]


def _seen(rows: NDArray[np.intp], cols: NDArray[np.intp], mine: NDArray[np.bool_]) -> float:
    """The fraction of the plateau's pixels (``rows``, ``cols`` in the window) whose
    straight line to the plateau's centre runs within the blob ``mine``: all of a
    saturated star's, its clip and the spikes radiating from it (whose light the blob
    holds about them), few of a letter's."""
    r0, c0 = rows.mean(), cols.mean()
    if len(rows) > _SEEN_SAMPLES:  # (every few: a letter's piece holds up to a thousand)
        every = -(-len(rows) // _SEEN_SAMPLES)
        rows, cols = rows[::every], cols[::every]
    # one sample a pixel along the longest line
    t = np.linspace(0.0, 1.0, int(np.hypot(rows - r0, cols - c0).max()) + 2)[:, None]
    inside = mine[np.rint(r0 + t * (rows - r0)).astype(np.intp),
                  np.rint(c0 + t * (cols - c0)).astype(np.intp)]
    return float(np.mean(inside.all(axis=0)))


def _gaps(flat: NDArray[np.bool_], mine: NDArray[np.bool_]) -> int:
    """The pixels of a window outside the blob ``mine`` that lie between pixels of its
    plateau ``flat`` along a row or a column (counted once along each): the sky between
    a letter's strokes (a blend of saturated stars has its own light between its
    plateaus)."""
    total = 0
    for a, b in ((flat, mine), (flat.T, mine.T)):
        first = a.argmax(axis=1)
        last = a.shape[1] - 1 - a[:, ::-1].argmax(axis=1)
        inside = np.arange(a.shape[1]) >= first[:, None]
        inside &= np.arange(a.shape[1]) <= last[:, None]
        total += int(np.count_nonzero(inside & ~b & a.any(axis=1)[:, None]))
    return total
