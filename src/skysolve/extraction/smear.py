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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .filters import _axes

__all__ = ["Smear", "frame_smear", "smear_kernel", "convolve"]

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


@dataclass(frozen=True)
class Smear:
    """A frame's trails: ``length`` (px) along ``angle`` (radians, from +x towards +y),
    ``width`` the PSF's sigma across them (px); ``shorter``: another length worth a try
    (px; NaN: none), when the longest bright blob is far longer than the others (a
    satellite's trail along the stars', or two trails in one blob)."""

    length: float
    angle: float
    width: float
    shorter: float = float("nan")

    def lengths(self) -> tuple[float, ...]:
        """The lengths to try, longest first."""
        return (self.length,) if math.isnan(self.shorter) else (self.length, self.shorter)


def frame_smear(meas: dict[str, NDArray], candidates: NDArray[np.intp]) -> Smear | None:
    """The frame's trails read from the blobs ``candidates`` of a detection pass
    (``meas``: their measurements, :func:`.blobs._measure_blobs`), or None when they show
    no common smear of at least ``_SMEAR_MIN_LENGTH`` px.

    The brightest ``_SMEAR_BLOBS`` candidates with a peak ``_SMEAR_SNR`` noise sigmas up
    are read: their major axes must agree in direction (``_SMEAR_COHERENCE``) and be
    ``_SMEAR_ELONGATION`` times their minor axes (median). The length is
    ``sqrt(12 (major - minor))`` of their second moments, the longest of the three
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
    resultant = np.hypot(np.mean(np.cos(doubled)), np.mean(np.sin(doubled)))
    if resultant < _SMEAR_COHERENCE:
        return None
    top = np.sort(np.sqrt(12.0 * (major - minor))[:3])[::-1]
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
    width = float(np.clip(np.sqrt(np.median(minor)), *_SMEAR_WIDTH))
    return Smear(length, angle, width, shorter)


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
