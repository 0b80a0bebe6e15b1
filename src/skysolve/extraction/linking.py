"""Connected components of a graph given by its links, in numpy: the blobs of the pixel
labeller's numpy twin (:func:`label_pixels`), and the lines and plateaus of the overlay
tests (:mod:`.overlay`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .kernels import compiled

__all__ = ["label_pixels", "pixel_labels", "roots"]


def roots(a: NDArray[np.intp], b: NDArray[np.intp], k: int) -> NDArray[np.intp]:
    """The root of each of ``k`` nodes, the links joining nodes ``a[i]`` and ``b[i]``:
    the smallest node of its connected component.

    Every node starts as its own root. Each round takes the links whose ends have
    different roots, hooks the later root under the earlier, and follows every
    label to its root. A label is always an earlier node of the same component, so
    when no link joins two roots, each component's root is its smallest node.
    """
    label = np.arange(k)
    while True:
        ra, rb = label[a], label[b]
        split = ra != rb
        if not split.any():
            return label
        ra, rb = ra[split], rb[split]
        low = np.minimum(ra, rb)
        np.minimum.at(label, ra, low)  # hook the later root under the earlier one
        np.minimum.at(label, rb, low)
        while True:  # every node's label to its root
            root = label[label]
            if np.array_equal(root, label):
                break
            label = root


def label_pixels(idx: NDArray[np.intp], w: int) -> tuple[NDArray[np.intp], int]:
    """8-connected components of the pixels at sorted flat indices ``idx`` of a frame
    ``w`` pixels wide: ``(label of each pixel (1..n), n)``, numbered in raster order of
    each component's first pixel (as ``scipy.ndimage.label`` numbers them).

    The pixels, by their position in ``idx``, are linked to their earlier neighbours
    (left, and the three above): each blob's root (:func:`roots`) is its
    first pixel.
    """
    k = len(idx)
    col = idx % w
    a_parts, b_parts = [], []
    for offset, ok in ((1, col > 0), (w + 1, col > 0), (w, None), (w - 1, col < w - 1)):
        nb = idx - offset
        pos = np.minimum(np.searchsorted(idx, nb), max(k - 1, 0))
        hit = (idx[pos] == nb) & (nb >= 0) if k else np.zeros(0, bool)
        if ok is not None:
            hit &= ok
        a_parts.append(np.flatnonzero(hit))
        b_parts.append(pos[hit])
    label = roots(np.concatenate(a_parts), np.concatenate(b_parts), k)
    first = label == np.arange(k)
    return np.cumsum(first)[label], int(np.count_nonzero(first))


def pixel_labels(idx: NDArray[np.intp], w: int) -> tuple[NDArray, int]:
    """:func:`label_pixels`, by the compiled labeller (:func:`.kernels.label_pixels`, the
    same labels, as int32) once the extraction's kernels are compiled: ~2 against 60 us
    for the few hundred pixels of one blob's window, which the overlay tests label
    blob by blob."""
    return (compiled("label_pixels") or label_pixels)(idx, w)
