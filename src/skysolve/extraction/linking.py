"""Connected components of a graph given by its links, in numpy: the blobs of the pixel
labeller's numpy twin (:func:`.extract._label_pixels`) and the lines of the overlay test
(:mod:`.overlay`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["roots"]


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
