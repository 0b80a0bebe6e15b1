"""Brightness-layered cone search over star unit vectors: the one sky index.

A :class:`SkyIndex` holds star unit vectors ordered **brightest first** and
answers two questions:

* :meth:`SkyIndex.cone`: every star within a radius of a direction (optionally
  among the brightest ``limit`` only);
* :meth:`SkyIndex.brightest_in_cone`: the ``count`` brightest stars within a
  radius.

Because the rows are sorted by brightness, the brightest ``count`` stars of a
cone lie among the first ``m`` rows whenever those rows already put ``count``
stars in the cone. KD-trees over nested brightness *layers* (the brightest
4096, 16384, ... rows, then all) therefore answer most queries from a small
tree. A layer's first few queries scan its rows instead (a dot product each):
building its tree costs about as much as :data:`SCANS_BEFORE_TREE` scans, so a
program that makes a handful of queries (a one-shot solve) never builds one,
nor loads ``scipy.spatial``. The solver's compiled backend answers the same queries from
:attr:`SkyIndex.cells` (rows grouped by sky cell) or a brightest-first scan;
both give the same stars.

The pattern database, the solver's two backends and the simulator all query
through this class.

May import: ``geometry``.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..geometry import angle_to_chord

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

__all__ = ["SkyIndex", "FIRST_LAYER", "SCANS_BEFORE_TREE"]

#: Rows of the smallest brightness layer; each next layer is four times larger.
FIRST_LAYER = 4096
#: Cone queries a layer answers by scanning its rows before it builds its KD-tree.
SCANS_BEFORE_TREE = 8


def _tree(vectors: NDArray[np.float64]) -> cKDTree:
    from scipy.spatial import cKDTree  # not at import: a one-shot solve may not need it

    # sliding-midpoint trees build ~2x faster and query as fast on sky vectors
    return cKDTree(vectors, balanced_tree=False, compact_nodes=False)


class SkyIndex:
    """Cone queries over unit vectors sorted brightest first.

    Parameters
    ----------
    vectors : ndarray, shape ``(n, 3)``
        ICRS unit vectors, brightest first (kept by reference, not copied).
    cell_height_rad : float
        Height of the declination bands of :attr:`cells` (and about the width
        of a cell), radians; the compiled cone query visits cells.
    """

    def __init__(self, vectors: NDArray[np.float64], cell_height_rad: float = math.radians(1.0)):
        self.vectors = vectors
        self.cell_height_rad = float(cell_height_rad)
        n = len(vectors)
        sizes = []
        size = FIRST_LAYER
        while size < n:
            sizes.append(size)
            size *= 4
        sizes.append(n)
        #: Rows of each layer (ascending; the last is every row).
        self.layer_sizes: tuple[int, ...] = tuple(sizes)
        self._trees: dict[int, cKDTree] = {}
        self._scans = dict.fromkeys(sizes, 0)  # queries answered by scanning, per layer

    def __len__(self) -> int:
        return len(self.vectors)

    def tree(self, layer: int = -1) -> cKDTree:
        """KD-tree over the rows of brightness layer ``layer`` (built on first use)."""
        size = self.layer_sizes[layer]
        tree = self._trees.get(size)
        if tree is None:
            tree = self._trees[size] = _tree(self.vectors[:size])
        return tree

    def cone(self, centre: NDArray[np.float64], radius_rad: float,
             layer: int = -1) -> NDArray[np.intp]:
        """Rows within ``radius_rad`` of ``centre`` among layer ``layer``, brightest first.

        Parameters
        ----------
        centre : ndarray, shape ``(3,)``
            Unit vector of the cone axis.
        radius_rad : float
            Cone radius, radians (capped at pi).
        layer : int
            Brightness layer to search (default the last: every row).
        """
        if len(self.vectors) == 0:
            return np.zeros(0, np.intp)
        chord = angle_to_chord(min(radius_rad, math.pi)) * (1 + 1e-12)
        size = self.layer_sizes[layer]
        if size not in self._trees and self._scans[size] < SCANS_BEFORE_TREE:
            self._scans[size] += 1  # a lost count between threads only builds the tree later
            # |v - c|^2 = 2 - 2 v.c for unit vectors: the tree's test, rows in order
            return np.flatnonzero(self.vectors[:size] @ centre >= 1.0 - 0.5 * chord * chord)
        idx = self.tree(layer).query_ball_point(centre, chord)
        return np.sort(np.asarray(idx, dtype=np.intp))

    def brightest_in_cone(self, centre: NDArray[np.float64], radius_rad: float,
                          count: int) -> NDArray[np.intp]:
        """Rows of the ``count`` brightest stars within a cone, brightest first.

        The smallest layer that holds ``count`` stars in an average cone of
        this size is searched first; a layer that falls short hands over to the
        next. Fewer rows are returned when the cone holds fewer stars.
        """
        cone_fraction = 0.5 * (1.0 - math.cos(min(radius_rad, math.pi)))
        for layer, size in enumerate(self.layer_sizes[:-1]):
            # skip layers too small to hold `count` stars in an average cone
            if size * cone_fraction < 1.5 * count:
                continue
            idx = self.cone(centre, radius_rad, layer)
            if len(idx) >= count:
                return idx[:count]
        return self.cone(centre, radius_rad)[:count]

    @cached_property
    def cells(self) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp],
                             NDArray[np.intp], NDArray[np.intp], float]:
        """Rows grouped by sky cell, for the compiled cone query.

        Declination bands of height ``h`` (about :attr:`cell_height_rad`) split
        into RA cells of about ``h`` wide. Returns ``(vectors, members, starts,
        band_first, band_cells, h_rad)``: rows of cell ``k`` are
        ``members[starts[k]:starts[k + 1]]`` (ascending, i.e. brightest first)
        and ``vectors`` their unit vectors in the same order (a cell's stars
        are then adjacent in memory); band ``b`` holds cells
        ``band_first[b]:band_first[b] + band_cells[b]``.
        """
        n_bands = max(1, math.ceil(math.pi / self.cell_height_rad))
        h = math.pi / n_bands
        centres = -0.5 * math.pi + (np.arange(n_bands) + 0.5) * h
        band_cells = np.maximum(1, np.round(2 * math.pi * np.cos(centres) / h)).astype(np.intp)
        band_first = np.concatenate([[0], np.cumsum(band_cells)]).astype(np.intp)
        v = np.asarray(self.vectors, dtype=np.float64)
        dec = np.arcsin(np.clip(v[:, 2], -1.0, 1.0))
        ra = np.arctan2(v[:, 1], v[:, 0]) % (2 * math.pi)
        band = np.clip(((dec + 0.5 * math.pi) / h).astype(np.intp), 0, n_bands - 1)
        n_ra = band_cells[band]
        col = np.minimum((ra / (2 * math.pi) * n_ra).astype(np.intp), n_ra - 1)
        cell = band_first[band] + col
        members = np.argsort(cell, kind="stable").astype(np.intp)  # rows stay ascending
        starts = np.searchsorted(cell[members], np.arange(band_first[-1] + 1)).astype(np.intp)
        return self.vectors[members], members, starts, band_first, band_cells, h
