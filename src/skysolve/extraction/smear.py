"""The matched filter of a frame whose stars are all smeared into trails.

A frame taken while the camera turned (a fixed tripod's long exposure, a star
tracker slewing, a mount that did not track) draws every star as a trail of one
length ``L`` and one direction. A trail spreads a star's light over ``L / (2.5
sigma)`` times as many pixels as its PSF would: a faint star's pixels sink
towards the noise, and the ones left above the threshold break into pieces
along the trail, each with its own centroid up to ``L / 2`` off the star's
(the real frames smeared over 24 px kept 3-6 of their stars, and more pieces
1.5-8 px off them). The Gaussian matched filter, round and at most 4 px wide,
gains little on such a line.

The trail's direction and length show in the frame's bright blobs: their
intensity-weighted second moments along the major axis hold ``L^2 / 12`` plus
the PSF's variance, across it the PSF's alone. :func:`frame_smear` reads them
from a detection pass; :func:`smear_kernel` is the trail's own shape (a line of
length ``L`` along the direction, widened by the PSF's width across), the
matched filter of a trail; :func:`convolve` applies it (by FFT: a kernel of a
few hundred taps), its noise the same up to the frame's edges. Detected on the
filtered image, each trail is one blob, whose
intensity-weighted centroid on the unfiltered pixels is the star's position at
mid-exposure.

An untracked exposure near the celestial pole turns the sky about the pole's point
in (or near) the frame: each star draws an arc about it, its chord the turn's angle
``phi`` times its distance from that point, at right angles to it. Relative to the
frame's centre ``c`` the trail at a pixel ``p`` is then the centre's trail ``v``
plus ``phi`` times ``p - c`` turned by 90 deg (a uniform smear is ``phi = 0``). Each
blob's direction ``u`` gives one linear equation in ``(v_x, v_y, phi)``,
``u x d(p) = 0``: two blobs define a field, and the smallest singular vector of the
stack of those that the best of those fields holds is the field, to a scale which the
brightest trails' lengths set (:attr:`Smear.spin`). Its matched filter is the local
trail's kernel, tile by tile (:func:`convolve_field`), scaled so that the filtered
noise is the same in every tile; the shape tests read each blob's moments turned
into its local trail's frame and stretched to one length (:func:`aligned_moments`),
where the frame's trails are one smear again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .filters import _axes

__all__ = ["Smear", "frame_smear", "smear_kernel", "convolve", "convolve_field",
           "aligned_moments"]

#: Blobs read for the frame's smear: the brightest this many of those measured.
_SMEAR_BLOBS = 20
#: ... at least this many of them, ...
_SMEAR_MIN_BLOBS = 3
#: ... each with a peak this many noise sigmas up and this many pixels, ...
_SMEAR_SNR = 5.0
_SMEAR_MIN_PIXELS = 5
#: ... whose directions agree (the mean resultant length of their doubled angles: 1
#: when all are parallel, ~0.2 for 20 random ones) ...
_SMEAR_COHERENCE = 0.9
#: ... and whose median axis ratio is at least this (a round star's is ~1-1.3).
_SMEAR_ELONGATION = 2.5
#: Trails shorter than this (px) are left to the Gaussian filter.
_SMEAR_MIN_LENGTH = 8.0
#: A longest blob this many times the next (of the three brightest) may be no star's.
_SMEAR_LONGER = 2.0
#: The kernel's width across the trail (its Gaussian sigma, px) within these bounds.
_SMEAR_WIDTH = (0.7, 2.5)
#: A turning field (:attr:`Smear.spin`) is read from at least this many bright blobs ...
_FIELD_MIN_BLOBS = 6
#: ... of which this fraction lie within this angle (deg) of it (the others: cosmic-ray
#: tracks, a satellite; with half, tracks on unsmeared frames made a field) ...
_FIELD_HELD = 2.0 / 3.0
_FIELD_OUTLIER_DEG = 15.0
#: ... lying at distances from its centre, when that lies in the frame, that differ by
#: at least this fraction of their median: blobs at one distance are the pieces of a ring
#: (an all-sky lens's rim against a dark border), not stars' trails ...
_FIELD_MIN_SPREAD = 0.2
#: ... and turning by at most this angle (radians; 0.25: an hour's exposure, arcs of 14
#: deg; the rim's pieces of an all-sky lens's circle read as a turn of 0.57) ...
_FIELD_MAX_SPIN = 0.25
#: ... and it replaces the uniform smear when it moves the trail at the frame's corners
#: this many px and this fraction of the centre's trail from it (less: one kernel serves
#: the whole frame, and a uniform smear's scattered directions make no field).
_FIELD_MIN_TURN_PX = 2.0
_FIELD_MIN_TURN = 0.2
#: A turning field is filtered in square tiles within which a trail's ends move by at
#: most a pixel from those of the trail at the tile's centre, at least this many px wide
#: (smaller ones cost more than they gain) and as wide as half the longest trail's kernel,
#: and no more than this many of them (each tile's FFT reaches half a kernel beyond it:
#: 1,849 tiles of 48 px took 1.7 s on a 2048x2048 frame whose corners' trails were
#: 230 px long).
_FIELD_TILE = 48
_FIELD_TILES = 400
#: The aligned moments stretch a trail to the reference length by a factor of the
#: squared length ratio within these bounds (trails near the turn's centre are short).
_FIELD_STRETCH = (0.1, 10.0)


@dataclass(frozen=True)
class Smear:
    """A frame's trails: ``length`` (px) along ``angle`` (radians, from +x towards +y),
    ``width`` the PSF's sigma across them (px); ``shorter``: another length worth a try
    (px; NaN: none), when the longest bright blob is far longer than the others (a
    satellite's trail along the stars', or two trails in one blob).

    ``spin``: the angle (radians) the sky turned about the frame's normal during the
    exposure, when the trails turn across the frame (0: one trail everywhere). The
    trail at pixel ``(x, y)`` is then the one at ``centre`` (``length`` along
    ``angle``) plus ``spin`` times ``(x, y) - centre`` turned by 90 deg
    (:meth:`trails`)."""

    length: float
    angle: float
    width: float
    shorter: float = float("nan")
    spin: float = 0.0
    centre: tuple[float, float] = (0.0, 0.0)

    def lengths(self) -> tuple[float, ...]:
        """The lengths to try, longest first."""
        return (self.length,) if math.isnan(self.shorter) else (self.length, self.shorter)

    def with_length(self, length: float) -> Smear:
        """The same trails, ``length`` px long at the centre (a turning field scaled
        with it); no other length to try."""
        spin = self.spin * length / self.length if self.length > 0 else self.spin
        return Smear(float(length), self.angle, self.width, spin=spin, centre=self.centre)

    def trails(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray, NDArray]:
        """The trail vectors ``(dx, dy)`` (px) at pixels ``(x, y)`` (px; any shape).
        A trail has no direction of travel: ``-(dx, dy)`` is the same trail."""
        x = np.asarray(x, dtype=np.float64) - self.centre[0]
        y = np.asarray(y, dtype=np.float64) - self.centre[1]
        vx, vy = self.length * math.cos(self.angle), self.length * math.sin(self.angle)
        return vx - self.spin * y, vy + self.spin * x

    def at(self, x: float, y: float) -> Smear:
        """The uniform smear of the trail at pixel ``(x, y)``."""
        dx, dy = self.trails(x, y)
        return Smear(float(np.hypot(dx, dy)), float(np.arctan2(dy, dx)), self.width)


def frame_smear(meas: dict[str, NDArray], candidates: NDArray[np.intp],
                shape: tuple[int, int] | None = None) -> Smear | None:
    """The frame's trails read from the blobs ``candidates`` of a detection pass
    (``meas``: their measurements, :func:`.blobs._measure_blobs`), or None when they show
    no common smear of at least ``_SMEAR_MIN_LENGTH`` px.

    The brightest ``_SMEAR_BLOBS`` candidates with a peak ``_SMEAR_SNR`` noise sigmas up
    are read: their median axis ratio must reach ``_SMEAR_ELONGATION``, and their major
    axes agree in direction (``_SMEAR_COHERENCE``), either everywhere or, given the
    frame's ``shape`` (rows, columns), with a field that turns across the frame
    (:attr:`Smear.spin`, the module docstring; used when it turns the trails at the
    corners by ``_FIELD_MIN_TURN_PX`` and ``_FIELD_MIN_TURN`` of the centre's trail).
    The length is ``sqrt(12 (major - minor))`` of their second moments, the longest of the three
    brightest: the moments see only the pixels above the threshold, which a fainter
    trail's ends are not (the real frames smeared over 24-40 px: their brightest trail
    measured 24-38 px, the next ones 6-20). When it is more than ``_SMEAR_LONGER`` times
    the second longest of them, that one (at least ``_SMEAR_MIN_LENGTH``) is
    :attr:`Smear.shorter`: the longest may be a satellite's trail.
    """
    ids = np.asarray(candidates, dtype=np.intp)
    with np.errstate(divide="ignore", invalid="ignore"):
        bright = (meas["peak"][ids] >= _SMEAR_SNR * meas["sigma"][ids]) & (
            meas["npix"][ids] >= _SMEAR_MIN_PIXELS)
    ids = ids[bright]
    if len(ids) < _SMEAR_MIN_BLOBS:
        return None
    ids = ids[np.argsort(-meas["flux"][ids], kind="stable")[:_SMEAR_BLOBS]]
    a = meas["cxx"][ids] + 1.0 / 12.0
    c = meas["cyy"][ids] + 1.0 / 12.0
    b = meas["cxy"][ids]
    major, minor = _axes(a, c, b)
    if np.median(np.sqrt(major / minor)) < _SMEAR_ELONGATION:
        return None
    doubled = np.arctan2(2.0 * b, a - c)  # twice the major axis's angle
    lengths = np.sqrt(12.0 * (major - minor))
    width = float(np.clip(np.sqrt(np.median(minor)), *_SMEAR_WIDTH))
    if shape is not None:
        turning = _turning(meas["cx"][ids], meas["cy"][ids], doubled, lengths, width, shape)
        if turning is not None:
            return turning
    resultant = np.hypot(np.mean(np.cos(doubled)), np.mean(np.sin(doubled)))
    if resultant < _SMEAR_COHERENCE:
        return None
    top = np.sort(lengths[:3])[::-1]
    length = float(top[0])
    if not length >= _SMEAR_MIN_LENGTH:
        return None
    shorter = float(top[1]) if len(top) > 1 else float("nan")
    if not (_SMEAR_MIN_LENGTH <= shorter and _SMEAR_LONGER * shorter < length):
        shorter = float("nan")
    # the median direction about the mean one: a satellite's trail among the stars' (a
    # long, bright blob a few degrees off theirs) does not turn it
    mean = math.atan2(float(np.mean(np.sin(doubled))), float(np.mean(np.cos(doubled))))
    turn = float(np.median(np.angle(np.exp(1j * (doubled - mean)))))
    angle = 0.5 * (mean + turn)
    return Smear(length, angle, width, shorter)


def _turning(x: NDArray, y: NDArray, doubled: NDArray, lengths: NDArray, width: float,
             shape: tuple[int, int]) -> Smear | None:
    """The turning field (:attr:`Smear.spin`) of trails at ``(x, y)`` (px) whose major
    axes lie at half the angles ``doubled`` and measure ``lengths`` (px; brightest
    first), in a frame of ``shape``; None when too few, when fewer than ``_FIELD_HELD``
    of them lie within ``_FIELD_OUTLIER_DEG`` of the field that most of them follow (of
    those every two blobs define), when those do not follow it closely
    (``_SMEAR_COHERENCE``), when they lie on a ring about its centre
    (``_FIELD_MIN_SPREAD``), when it turns by more than ``_FIELD_MAX_SPIN``, or when it
    hardly turns across the frame."""
    if len(x) < _FIELD_MIN_BLOBS or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return None
    h, w = shape
    centre = (0.5 * (w - 1), 0.5 * (h - 1))
    dx, dy = x - centre[0], y - centre[1]
    scale = max(float(np.sqrt(np.mean(dx * dx + dy * dy))), 1.0)  # (conditioning)
    ux, uy = np.cos(0.5 * doubled), np.sin(0.5 * doubled)
    rows = np.column_stack([-uy, ux, (ux * dx + uy * dy) / scale])

    def trails(theta: NDArray) -> tuple[NDArray, NDArray]:
        """The fields ``theta`` (rows of 3, or one) at the blobs (:meth:`Smear.trails`)."""
        return (theta[..., :1] - theta[..., 2:] * dy / scale,
                theta[..., 1:2] + theta[..., 2:] * dx / scale)

    def off(theta: NDArray) -> NDArray:
        """Each blob's doubled angle off the fields ``theta``."""
        tx, ty = trails(theta)
        return np.angle(np.exp(1j * (doubled - 2.0 * np.arctan2(ty, tx))))

    # every pair's field (the null vector of their two rows), the one most blobs follow
    # first: cosmic-ray tracks and a satellite among the trails point any way
    i, j = np.triu_indices(len(x), 1)
    pairs = np.cross(rows[i], rows[j])
    tolerance = 2.0 * math.radians(_FIELD_OUTLIER_DEG)
    use = np.abs(off(pairs)) <= tolerance
    use = use[int(np.argmax(use.sum(axis=1)))]
    for fit in range(3):  # (refitted twice on those it holds)
        if use.sum() < max(_FIELD_MIN_BLOBS, _FIELD_HELD * len(x)):
            return None
        if fit < 2:
            theta = np.linalg.svd(rows[use])[2][-1]
            use = np.abs(off(theta)) <= tolerance
    held = off(theta)[use]
    if np.hypot(np.mean(np.cos(held)), np.mean(np.sin(held))) < _SMEAR_COHERENCE:
        return None
    tx, ty = trails(theta)
    # the scale: the longest of the three brightest trails (see frame_smear), each to
    # the field's length where it lies (none near the turn's centre, where the field's
    # length is small and its ratio uncertain)
    field, lengths = np.hypot(tx, ty)[use], lengths[use]
    near = field[:3] >= 0.5 * np.median(field)
    if not near.any():
        return None
    k = float(np.max(lengths[:3][near] / field[:3][near]))
    if not k * float(np.max(field)) >= _SMEAR_MIN_LENGTH:
        return None
    spin = k * float(theta[2]) / scale
    if abs(spin) > _FIELD_MAX_SPIN:
        return None
    vx, vy = k * float(theta[0]), k * float(theta[1])
    if spin != 0.0:  # the blobs' distances from the turn's centre (the pole's point)
        r = np.hypot(dx[use] + vy / spin, dy[use] - vx / spin)
        if np.median(r) < 0.5 * math.hypot(w, h) and np.ptp(r) < _FIELD_MIN_SPREAD * np.median(r):
            return None  # (one distance from a centre in the frame: a ring, no trails)
    if abs(spin) * 0.5 * math.hypot(w, h) < max(_FIELD_MIN_TURN_PX,
                                                 _FIELD_MIN_TURN * math.hypot(vx, vy)):
        return None
    return Smear(math.hypot(vx, vy), math.atan2(vy, vx), width, spin=spin, centre=centre)


def smear_kernel(smear: Smear, length: float | None = None) -> NDArray[np.float64]:
    """A trail's shape, normalised to sum 1: a line of ``length`` px (default
    ``smear.length``; 0: a point) along ``smear.angle`` convolved with a Gaussian of
    sigma ``smear.width``. Odd-sized, centred."""
    smear = smear if length is None else Smear(float(length), smear.angle, smear.width)
    c, s = math.cos(smear.angle), math.sin(smear.angle)
    reach = 0.5 * smear.length + 3.0 * smear.width
    half_x = int(math.ceil(abs(0.5 * smear.length * c) + 3.0 * smear.width))
    half_y = int(math.ceil(abs(0.5 * smear.length * s) + 3.0 * smear.width))
    y, x = np.mgrid[-half_y:half_y + 1, -half_x:half_x + 1].astype(np.float64)
    along = x * c + y * s
    across = -x * s + y * c
    # the line's light at a pixel: the Gaussian across it, times the part of the
    # segment within reach along it (an erf step at each end)
    w = smear.width
    ends = 0.5 * smear.length
    from scipy.special import erf

    line = 0.5 * (erf((along + ends) / (math.sqrt(2.0) * w))
                  - erf((along - ends) / (math.sqrt(2.0) * w))) if ends > 1e-3 * w \
        else np.exp(-0.5 * (along / w) ** 2)
    kernel = np.exp(-0.5 * (across / w) ** 2) * line
    kernel[np.hypot(x, y) > reach + 1.0] = 0.0
    return kernel / kernel.sum()


def convolve(image: NDArray, kernel: NDArray[np.float64],
             background: NDArray) -> NDArray[np.float32]:
    """``image`` convolved with ``kernel`` (odd-sized, centred) about its ``background``
    (a map of the image's shape), in float32, its noise that of the full kernel up to
    the edges.

    What lies beyond the edges is not made up: the sums run over the pixels inside,
    and near an edge they are scaled by the root sum of squares of the kernel over that
    of its taps inside. (Replicated edges fold the taps beyond an edge onto its pixels:
    half a 32 px trail in, the filtered noise was up to three times the threshold's,
    and blobs of noise rose there.)
    """
    from scipy.signal import fftconvolve

    k = kernel.astype(np.float32)
    bg = np.asarray(background, dtype=np.float32)
    out = fftconvolve(np.asarray(image, dtype=np.float32) - bg, k, mode="same")
    h, w = out.shape
    hy, hx = k.shape[0] // 2, k.shape[1] // 2
    scale = _edge_scale(kernel, (h, w))
    if 2 * hy >= h or 2 * hx >= w:
        out *= scale(np.arange(h), np.arange(w))
    else:  # (only the bands within half a kernel of an edge)
        top = np.r_[0:hy, h - hy:h]
        out[top] *= scale(top, np.arange(w))
        side = np.r_[0:hx, w - hx:w]
        out[hy:h - hy, side] *= scale(np.arange(hy, h - hy), side)
    out += bg
    return out.astype(np.float32, copy=False)


def convolve_field(image: NDArray, smear: Smear,
                   background: NDArray) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """``image`` filtered with the trails of ``smear`` about its ``background``
    (:func:`convolve`), and the kernel whose noise the filtered image has everywhere
    (that of the trail at the centre, :func:`smear_kernel`).

    A turning field (:attr:`Smear.spin`) is filtered tile by tile, each tile with the
    kernel of the trail at its centre, scaled to the centre kernel's root sum of squares
    (the same noise everywhere, so one threshold serves); the tiles are small enough that
    a trail's ends lie within a pixel of its kernel's, unless its longest trails or the
    frame's size make them larger (``_FIELD_TILE``, ``_FIELD_TILES``).
    """
    kernel = smear_kernel(smear)
    if smear.spin == 0.0:
        return convolve(image, kernel, background), kernel
    from scipy.signal import fftconvolve

    h, w = image.shape
    # (the longest trail lies at a corner; tiles of at least half its kernel's reach, and
    # at most _FIELD_TILES of them, bound the work at a few whole-frame FFTs')
    dx, dy = smear.trails(np.array([0.0, w - 1.0, 0.0, w - 1.0]),
                          np.array([0.0, 0.0, h - 1.0, h - 1.0]))
    reach = float(np.max(np.hypot(dx, dy))) + 6.0 * smear.width
    tile = int(max(2.8 / abs(smear.spin), 0.5 * reach, math.sqrt(h * w / _FIELD_TILES),
                   _FIELD_TILE))
    rss = math.sqrt(float(np.sum(kernel ** 2)))
    bg = np.asarray(background, dtype=np.float32)
    light = np.asarray(image, dtype=np.float32) - bg
    out = np.empty((h, w), dtype=np.float32)
    for r0 in range(0, h, tile):
        r1 = min(r0 + tile, h)
        for c0 in range(0, w, tile):
            c1 = min(c0 + tile, w)
            local = smear_kernel(smear.at(0.5 * (c0 + c1 - 1), 0.5 * (r0 + r1 - 1)))
            local *= rss / math.sqrt(float(np.sum(local ** 2)))
            hy, hx = local.shape[0] // 2, local.shape[1] // 2
            if r0 >= hy and c0 >= hx and r1 + hy <= h and c1 + hx <= w:
                # (inside: the tile's sums need no edge's scale)
                part = light[r0 - hy:r1 + hy, c0 - hx:c1 + hx]
                out[r0:r1, c0:c1] = fftconvolve(part, local.astype(np.float32), mode="valid")
                continue
            # (a margin of half a kernel: within it, only the frame's own edges are edges
            # to :func:`convolve`)
            top, left = max(0, r0 - hy), max(0, c0 - hx)
            rows, cols = slice(top, min(h, r1 + hy)), slice(left, min(w, c1 + hx))
            part = convolve(light[rows, cols], local, np.zeros((1, 1), np.float32))
            out[r0:r1, c0:c1] = part[r0 - top:r1 - top, c0 - left:c1 - left]
    out += bg
    return out, kernel


def aligned_moments(meas: dict[str, NDArray], smear: Smear,
                    ) -> tuple[NDArray, NDArray, NDArray]:
    """The second moments ``(cxx, cyy, cxy)`` (px^2, as :func:`.blobs._measure_blobs`
    gives them) of the blobs ``meas`` as the shape tests read them in a frame of a turning
    field (:attr:`Smear.spin`): turned so that the trail where each lies runs along +x,
    and stretched along it by its length's ratio to the centre's (at least
    ``_SMEAR_MIN_LENGTH``) squared, within ``_FIELD_STRETCH``: every trail is then the
    centre's, a round blob stays round and a trail's piece stays as short beside it."""
    a, c, b = meas["cxx"], meas["cyy"], meas["cxy"]
    dx, dy = smear.trails(meas["cx"], meas["cy"])
    along = np.hypot(dx, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos, sin = np.where(along > 0, dx / along, 1.0), np.where(along > 0, dy / along, 0.0)
        stretch = np.clip((max(smear.length, _SMEAR_MIN_LENGTH) / along) ** 2,
                          *_FIELD_STRETCH)
    major = cos * cos * a + 2.0 * cos * sin * b + sin * sin * c
    minor = sin * sin * a - 2.0 * cos * sin * b + cos * cos * c
    cross = cos * sin * (c - a) + (cos * cos - sin * sin) * b
    # (the excess along the trail over the blob's width across it is the trail's)
    excess = major - minor
    return minor + np.where(excess > 0.0, stretch * excess, excess), minor, \
        cross * np.sqrt(stretch)


def _edge_scale(kernel: NDArray[np.float64], shape: tuple[int, int]):
    """``scale(rows, cols)``: the kernel's root sum of squares over that of its taps that
    fall inside a frame of ``shape`` at those pixels (1 where all do), by a summed-area
    table of the squared kernel."""
    kh, kw = kernel.shape
    hy, hx = kh // 2, kw // 2
    h, w = shape
    table = np.zeros((kh + 1, kw + 1))
    table[1:, 1:] = np.cumsum(np.cumsum(np.asarray(kernel, np.float64) ** 2, axis=0), axis=1)
    full = table[-1, -1]

    def scale(rows: NDArray, cols: NDArray) -> NDArray[np.float32]:
        r0 = np.maximum(0, hy - rows)[:, None]
        r1 = (np.minimum(kh - 1, hy + h - 1 - rows) + 1)[:, None]
        c0 = np.maximum(0, hx - cols)[None, :]
        c1 = (np.minimum(kw - 1, hx + w - 1 - cols) + 1)[None, :]
        inside = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
        return np.sqrt(full / np.maximum(inside, 1e-12 * full)).astype(np.float32)

    return scale
