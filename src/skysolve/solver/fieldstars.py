"""The pattern stars of lattice fields: the brightest well-separated stars of a disc.

At one field-of-view scale a *candidate* is a catalog star with no brighter
star closer than the separation (:func:`thin_by_separation`), and a lattice
field's pattern stars are its ``k`` brightest candidates within the field
radius.

The star table is sorted brightest first, so the candidates among its first
``m`` stars are the first candidates of all, and a field whose disc holds
``k`` of them has its answer among them. :class:`ScaleStars` answers a chunk
of fields from KD-trees over nested prefixes of the candidates (*levels*, four
times more stars each): a nearest-neighbour query for ``4 k`` neighbours
within the radius returns arrays rather than one Python list per field, and
when it returns fewer than ``4 k`` they are every candidate of the disc, whose
``k`` lowest indices are the answer. A field with fewer than ``k`` moves on to
the next level; one with ``4 k`` (possibly more) is answered by a ball query at
that level. Memory stays proportional to the chunk, not to the whole lattice.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..geometry import angle_to_chord

if TYPE_CHECKING:
    from scipy.spatial import cKDTree

__all__ = ["thin_by_separation", "ScaleStars"]

#: Nearest neighbours asked per field, in units of the pattern stars wanted.
_NEIGHBOURS_PER_STAR = 4
#: Levels grow by this factor (equal to the above, so that a field short of ``k``
#: stars at one level rarely has more than ``4 k`` at the next).
_LEVEL_GROWTH = 4


def thin_by_separation(vectors: NDArray[np.float64],
                       min_separation_rad: float) -> NDArray[np.bool_]:
    """Keep mask of stars with no brighter star within ``min_separation_rad``.

    ``vectors`` must be ordered brightest first. Each dropped star has some
    brighter star (kept or not) within the separation, a rule that depends on
    pairs only and can be applied the same way to image centroids. The mask of
    the first ``m`` stars is therefore the first ``m`` values of the whole mask.
    """
    from scipy.spatial import cKDTree  # not at import: a one-shot solve may not need it

    keep = np.ones(len(vectors), dtype=bool)
    if len(vectors) < 2 or min_separation_rad <= 0:
        return keep
    pairs = cKDTree(vectors).query_pairs(angle_to_chord(min_separation_rad), output_type="ndarray")
    if len(pairs):
        keep[pairs.max(axis=1)] = False
    return keep


def _tree(vectors: NDArray[np.float64]) -> cKDTree:
    from scipy.spatial import cKDTree  # not at import: a one-shot solve may not need it

    # sliding-midpoint trees build ~2x faster and query as fast on sky vectors
    return cKDTree(vectors, balanced_tree=False, compact_nodes=False)


class ScaleStars:
    """Pattern stars of the lattice fields of one scale.

    Parameters
    ----------
    star_vectors : ndarray, shape ``(n, 3)``
        Unit vectors of the star table, brightest first.
    radius_rad : float
        Field radius, radians.
    separation_rad : float
        Smallest separation of a candidate from any brighter star, radians.
    k : int
        Pattern stars per field.
    """

    def __init__(self, star_vectors: NDArray[np.float64], radius_rad: float,
                 separation_rad: float, k: int):
        self.star_vectors = star_vectors
        self.k = k
        self.neighbours = _NEIGHBOURS_PER_STAR * k
        self.chord = float(angle_to_chord(min(radius_rad, math.pi)))
        # a kNN bound is exclusive, a ball radius inclusive: the same discs either way
        self._bound = float(np.nextafter(self.chord, np.inf))
        self._separation = separation_rad
        n = len(star_vectors)
        cone_fraction = 0.5 * (1.0 - math.cos(min(radius_rad, math.pi)))
        # the first level puts about half the neighbours asked for in an average disc
        m = min(n, max(self.neighbours, math.ceil(0.5 * self.neighbours / cone_fraction)))
        sizes = [m]
        while sizes[-1] < n:
            sizes.append(min(n, sizes[-1] * _LEVEL_GROWTH))
        self.level_sizes = tuple(sizes)
        self._thinned = 0
        self._candidates = np.zeros(0, np.intp)
        self._levels: dict[int, tuple[NDArray[np.intp], cKDTree]] = {}
        # a cap around every star: fields beyond its reach are empty (a regional catalog)
        mean = star_vectors.mean(axis=0) if n else np.zeros(3)
        norm = float(np.linalg.norm(mean))
        self._cap_axis = mean / norm if norm > 1e-6 else None
        if self._cap_axis is not None:
            nearest = float(np.clip(star_vectors @ self._cap_axis, -1.0, 1.0).min())
            reach = math.acos(nearest) + radius_rad + 1e-9
            self._cap_cos = math.cos(reach) if reach < math.pi else -2.0

    def _level(self, level: int) -> tuple[NDArray[np.intp], cKDTree]:
        """Candidates among the stars of a level (star-table rows, ascending) and their tree."""
        if level not in self._levels:
            m = self.level_sizes[level]
            if m > self._thinned:
                keep = thin_by_separation(self.star_vectors[:m], self._separation)
                self._candidates, self._thinned = np.flatnonzero(keep), m
            cand = self._candidates[: np.searchsorted(self._candidates, m)]
            self._levels[level] = cand, _tree(self.star_vectors[cand])
        return self._levels[level]

    def members(self, centres: NDArray[np.float64]) -> NDArray[np.intp]:
        """The ``k`` brightest candidates within the radius of each centre.

        Returns
        -------
        ndarray of intp, shape ``(len(centres), k)``
            Star-table rows, brightest first, ``-1`` padded where a field holds
            fewer than ``k`` candidates.
        """
        k = self.k
        out = np.full((len(centres), k), -1, dtype=np.intp)
        todo = np.arange(len(centres))
        if self._cap_axis is not None and self._cap_cos > -1.0:
            todo = todo[centres @ self._cap_axis >= self._cap_cos]
        level = 0
        while len(todo):
            cand, tree = self._level(level)
            last = level == len(self.level_sizes) - 1
            _, near = tree.query(centres[todo], k=self.neighbours,
                                 distance_upper_bound=self._bound)
            count = np.count_nonzero(near < len(cand), axis=1)
            full = (count == self.neighbours) & (len(cand) > self.neighbours)
            done = ~full & ((count >= k) | last)
            if done.any():
                # missing neighbours are len(cand), which sorts after every candidate
                best = np.sort(near[done], axis=1)[:, :k]
                padded = np.append(cand, -1)
                out[todo[done], : best.shape[1]] = padded[best]
            if full.any():
                rows = todo[full]
                lists = tree.query_ball_point(centres[rows], self.chord, return_sorted=True)
                for row, members in zip(rows, lists, strict=True):
                    out[row] = cand[members[:k]]
            todo = todo[~(done | full)]
            level += 1
        return out
