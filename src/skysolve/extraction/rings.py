"""The matched filter of a frame whose stars are all wide defocused rings.

A star out of focus is the image of the pupil: a ring of outer radius ``R`` (px)
whose inner radius is the central obstruction's (a reflector's secondary; none in a
refractor: a disc). Its light is the focused star's, spread over hundreds of pixels
instead of a few: each sinks towards the noise, and the parts of the ring left above
a threshold break into arcs, each with its own centroid up to ``R`` off the star's.
A Gaussian filter narrower than the ring keeps the ring a ring.

The ring's size shows in the frame's brightest (whole) rings: the intensity-weighted
second moment along either axis of an annulus of outer radius ``R`` and inner
radius ``R/2`` is ``(R^2 + R^2/4) / 4 = 5 R^2 / 16`` (of a disc ``R^2 / 4``);
:func:`ring_radius` reads ``R`` from it, taking the annulus (a disc's ``R`` comes
out 11 % short, which a filter tolerates). The matched filter is then a disc of
radius ``R`` (:func:`disc_kernel`): a ring within it sums whole at its centre and
the filtered star is one round blob that peaks there, whatever the obstruction.
Detected on the filtered image (:func:`.smear.convolve`, its noise the same up to
the edges), a faint ring's blob covers only the middle of the disc, its hole, and a
bright one's spreads a ring's radius beyond the ring: :func:`ring_footprints` makes
each blob the pixels within ``R`` of its filtered peak, whose intensity-weighted
centroid on the unfiltered pixels is the star's.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["disc_kernel", "ring_footprints", "ring_radius"]

#: The second moment (px^2, along an axis) of an annulus of outer radius 1 and inner
#: radius 1/2 (see the module docstring).
_ANNULUS_MOMENT = 5.0 / 16.0
#: Where the brightest pixel of such an annulus lies, on average: the middle of the
#: ring, in outer radii.
_PEAK_RADIUS = 0.75
#: Sub-pixels per pixel side that :func:`disc_kernel` samples the disc's area with.
_SUPERSAMPLE = 4


def ring_radius(width2: float, offset: float = 0.0) -> float:
    """The outer radius (px) of defocused rings whose mean second moment along an axis
    is ``width2`` (px^2) and whose brightest pixels lie ``offset`` px from their
    centroids: an annulus of inner radius half the outer, whose brightest pixel lies
    on it, :data:`_PEAK_RADIUS` of the outer radius out; the larger of the two (rings
    partly below the threshold keep their widest parts' peaks, but less of their
    width)."""
    return max(math.sqrt(width2 / _ANNULUS_MOMENT), offset / _PEAK_RADIUS)


def disc_kernel(radius: float) -> NDArray[np.float64]:
    """A disc of ``radius`` px, area-sampled, normalised to sum 1; odd-sized, centred."""
    half = int(math.ceil(radius))
    n = 2 * half + 1
    sub = (np.arange(n * _SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - half - 0.5
    inside = np.hypot(sub[None, :], sub[:, None]) <= radius
    k = inside.reshape(n, _SUPERSAMPLE, n, _SUPERSAMPLE).sum(axis=(1, 3)).astype(np.float64)
    return k / k.sum()


def ring_footprints(det: NDArray, labels: NDArray, idx: NDArray[np.intp], radius: float,
                    usable: NDArray[np.bool_] | None = None
                    ) -> tuple[NDArray, NDArray[np.intp]]:
    """The blobs of a disc-filtered image ``det`` (``labels``, their pixels' sorted flat
    indices ``idx``) made the pixels within ``radius`` px of their filtered peaks: a
    pixel of a blob stays its own, any other goes to the nearest peak (``usable``: the
    pixels a blob may take; default all).

    Returns the new label image and the sorted flat indices of the blobs' pixels.
    """
    h, w = det.shape
    lab = labels.ravel()[idx].astype(np.intp)
    # each blob's filtered peak: its brightest pixel
    order = np.lexsort((-det.ravel()[idx], lab))
    first = np.r_[0, np.flatnonzero(np.diff(lab[order])) + 1]
    peaks = idx[order[first]]
    pr, pc = np.divmod(peaks, w)
    reach = int(math.ceil(radius))
    dy, dx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    d2 = (dy * dy + dx * dx).ravel()
    near = d2 <= radius * radius
    dy, dx, d2 = dy.ravel()[near], dx.ravel()[near], d2[near]
    rows = pr[:, None] + dy[None, :]
    cols = pc[:, None] + dx[None, :]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    flat = (rows * w + cols)[inside]
    owner = np.broadcast_to(lab[order[first]][:, None], rows.shape)[inside]
    dist = np.broadcast_to(d2[None, :], rows.shape)[inside]
    # the nearest peak's where discs overlap; the blob's own pixels stay its own
    own = np.zeros(h * w, np.intp)
    own[idx] = lab
    keep = np.lexsort((dist, flat))
    flat, owner = flat[keep], owner[keep]
    firsts = np.r_[True, flat[1:] != flat[:-1]]
    flat, owner = flat[firsts], owner[firsts]
    claimed = own[flat] != 0
    owner = np.where(claimed, own[flat], owner)
    if usable is not None:
        ok = usable.ravel()[flat] | claimed
        flat, owner = flat[ok], owner[ok]
    grown = np.zeros_like(labels)
    grown.ravel()[flat] = owner
    return grown, flat
