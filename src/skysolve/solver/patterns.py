"""Generation of 4-star patterns for the lost-in-space pattern database.

The sky is covered with a Fibonacci lattice of field centres, dense enough that
every field of view holds about ``lattice_field_oversampling`` of them. In each
field the brightest *pattern stars* (catalog stars with no brighter star closer
than a small fraction of the field of view) are combined into 4-star patterns
in brightest-first order: all patterns of the 4 brightest stars, then those
that add the 5th, and so on, until ``patterns_per_lattice_field`` patterns.

A pattern is described by its five shortest edges divided by its longest
(see :mod:`skysolve.solver.keys`), quantised into ``bins`` per ratio and
packed into one integer key. Its stars are stored in a canonical order
(increasing distance from the pattern's mean direction) so that an image
pattern put in the same order corresponds star by star.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from .._progress import progress_bar
from ..geometry import angle_to_chord
from .keys import key_dtype, pattern_keys

__all__ = [
    "PATTERN_SIZE",
    "SEPARATION_FRACTION",
    "fibonacci_sphere",
    "brightest_first_combinations",
    "stars_per_field",
    "thin_by_separation",
    "canonical_order",
    "fov_scales",
    "generate_patterns",
]

PATTERN_SIZE = 4

#: Pattern stars must be at least this fraction of the field of view from any
#: brighter star; the solver thins image centroids by the same rule.
SEPARATION_FRACTION = 0.01

#: Radius of a lattice field as a fraction of the field of view: a field's
#: patterns span at most one field of view. (0.4 and 0.5 solved 1500 of 1500
#: harsh synthetic fields alike; 0.5 keeps the longest patterns.)
FIELD_RADIUS_FRACTION = 0.5


def fibonacci_sphere(n: int) -> NDArray[np.float64]:
    """``n`` nearly uniformly spaced unit vectors (Fibonacci lattice)."""
    i = np.arange(n, dtype=np.float64)
    z = 1.0 - (2.0 * i + 1.0) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    phi = i * (np.pi * (3.0 - math.sqrt(5.0)))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def brightest_first_combinations(k: int, count: int | None = None) -> NDArray[np.intp]:
    """4-combinations of ``range(k)`` ordered by their faintest member first.

    The order is lexicographic in ``(d, c, b, a)`` for ``a < b < c < d``, so
    the combinations of the ``m`` brightest stars form a prefix of length
    ``C(m, 4)`` for every ``m``. Built by that prefix property, one member at a
    time (no Python loop over the combinations: C(60, 4) = 487,635 of them
    take milliseconds).
    """
    level = np.arange(max(k, 0), dtype=np.intp).reshape(-1, 1)  # 1-combinations
    for size in range(2, PATTERN_SIZE + 1):
        # the size-combinations whose largest member is m: the (size-1)-combinations of
        # range(m) (a prefix of the previous level) followed by m
        parts = [np.column_stack([level[:math.comb(m, size - 1)],
                                  np.full(math.comb(m, size - 1), m, dtype=np.intp)])
                 for m in range(size - 1, k)]
        level = (np.concatenate(parts) if parts
                 else np.zeros((0, size), dtype=np.intp))
    return level if count is None else level[:count]


def stars_per_field(patterns_per_field: int) -> int:
    """Smallest ``k`` with ``C(k, 4) >= patterns_per_field``."""
    k = PATTERN_SIZE
    while math.comb(k, PATTERN_SIZE) < patterns_per_field:
        k += 1
    return k


def thin_by_separation(vectors: NDArray[np.float64],
                       min_separation_rad: float) -> NDArray[np.bool_]:
    """Keep mask of stars with no brighter star within ``min_separation_rad``.

    ``vectors`` must be ordered brightest first. Each dropped star has some
    brighter star (kept or not) within the separation, a rule that depends on
    pairs only and can be applied the same way to image centroids.
    """
    keep = np.ones(len(vectors), dtype=bool)
    if len(vectors) < 2 or min_separation_rad <= 0:
        return keep
    pairs = cKDTree(vectors).query_pairs(angle_to_chord(min_separation_rad), output_type="ndarray")
    if len(pairs):
        keep[pairs.max(axis=1)] = False
    return keep


def canonical_order(vectors: NDArray[np.float64]) -> NDArray[np.intp]:
    """Star order of patterns: increasing distance from the pattern's mean direction.

    Parameters
    ----------
    vectors : ndarray, shape ``(..., 4, 3)``
        Star directions (unit vectors, or camera-frame vectors).

    Returns
    -------
    ndarray of intp, shape ``(..., 4)``
        Indices that put each pattern's stars in canonical order.
    """
    centre = vectors.mean(axis=-2, keepdims=True)
    dist = np.sum((vectors - centre) ** 2, axis=-1)
    return np.argsort(dist, axis=-1, kind="stable")


def fov_scales(max_fov_deg: float, min_fov_deg: float, step: float) -> list[float]:
    """Field-of-view scales from ``max_fov_deg`` down to ``min_fov_deg`` by ``step``."""
    scales = [max_fov_deg]
    if min_fov_deg < max_fov_deg:
        n = max(1, math.ceil(math.log(max_fov_deg / min_fov_deg) / math.log(step) - 1e-9))
        # spread the scales evenly in log so that the smallest is min_fov_deg
        ratio = (max_fov_deg / min_fov_deg) ** (1.0 / n)
        scales = [max_fov_deg / ratio ** i for i in range(n + 1)]
    return scales


@dataclass
class PatternSet:
    """Patterns of star-table indices (canonical order) with their keys."""

    stars: NDArray[np.uint32]
    keys: NDArray


def _field_members(candidates: NDArray[np.float64], centres: NDArray[np.float64],
                   radius_rad: float, k: int) -> NDArray[np.intp]:
    """Brightest ``k`` candidate indices within ``radius_rad`` of each centre, -1 padded.

    ``candidates`` are ordered brightest first, so the sorted index lists of a
    ball query start with the brightest members.
    """
    tree = cKDTree(candidates)
    lists = tree.query_ball_point(centres, angle_to_chord(radius_rad), return_sorted=True)
    out = np.full((len(centres), k), -1, dtype=np.intp)
    for i, members in enumerate(lists):
        m = members[:k]
        out[i, :len(m)] = m
    return out


def generate_patterns(star_vectors: NDArray[np.float64], fov_deg_scales: list[float],
                      lattice_field_oversampling: float, patterns_per_lattice_field: int,
                      bins: int, progress: bool | None = None) -> PatternSet:
    """Build the deduplicated pattern set over all field-of-view scales.

    Parameters
    ----------
    star_vectors : ndarray, shape ``(n, 3)``
        Unit vectors of the star table, brightest first.
    fov_deg_scales : list of float
        Fields of view (degrees) to build lattices for.
    lattice_field_oversampling : float
        Lattice field centres per field of view (area ``fov**2``).
    patterns_per_lattice_field : int
        Patterns taken from each field, brightest first.
    bins : int
        Quantisation bins per edge ratio.
    progress : bool or None
        Progress bar on stderr (None: only on a terminal).

    Returns
    -------
    PatternSet
        Star indices (into ``star_vectors``) in canonical order, sorted by key.
    """
    k = stars_per_field(patterns_per_lattice_field)
    combos = brightest_first_combinations(k, patterns_per_lattice_field)
    prefix = np.array([math.comb(m, PATTERN_SIZE) for m in range(k + 1)])

    all_quads = []
    n_total = len(star_vectors)
    plans = []
    for fov in fov_deg_scales:
        fov_rad = math.radians(fov)
        n_fields = max(12, math.ceil(lattice_field_oversampling * 4.0 * math.pi / fov_rad ** 2))
        plans.append((fov_rad, n_fields))
    with progress_bar(sum(p[1] for p in plans), "pattern fields", progress, unit="field") as bar:
        for fov_rad, n_fields in plans:
            centres = fibonacci_sphere(n_fields)
            radius = FIELD_RADIUS_FRACTION * fov_rad
            # Enough of the brightest stars for ~8x the needed stars in an average
            # field; sparse fields are completed below with deeper candidate sets.
            cone_sr = 2.0 * math.pi * (1.0 - math.cos(radius))
            m = min(n_total, int(8 * k * 4.0 * math.pi / cone_sr) + 64)
            members = np.full((n_fields, k), -1, dtype=np.intp)
            todo = np.arange(n_fields)
            while True:
                keep = thin_by_separation(star_vectors[:m], SEPARATION_FRACTION * fov_rad)
                cand_idx = np.flatnonzero(keep)
                local = _field_members(star_vectors[cand_idx], centres[todo], radius, k)
                members[todo] = np.where(local >= 0, cand_idx[np.maximum(local, 0)], -1)
                short = np.flatnonzero((members[todo] < 0).any(axis=1))
                if len(short) == 0 or m >= n_total:
                    break
                todo = todo[short]
                m = min(n_total, m * 4)
            n_members = (members >= 0).sum(axis=1)
            n_pat = np.minimum(prefix[n_members], len(combos))
            for s in range(0, n_fields, 4096):
                quads = members[s:s + 4096][:, combos]  # (fields, patterns, 4), ascending
                valid = np.arange(len(combos))[None, :] < n_pat[s:s + 4096, None]
                # neighbouring lattice fields share most patterns: drop repeats early
                all_quads.append(_unique_rows(quads[valid].astype(np.uint32)))
            bar.update(n_fields)

    quads = np.concatenate(all_quads) if all_quads else np.zeros((0, 4), np.uint32)
    all_quads.clear()
    quads = _unique_rows(quads)

    # geometry in chunks keeps the float64 temporaries small
    key_t = key_dtype(bins)
    keys = np.empty(len(quads), dtype=key_t)
    chunk = 1 << 19
    for s in range(0, len(quads), chunk):
        q = quads[s:s + chunk]
        v = star_vectors[q]
        keys[s:s + chunk] = pattern_keys(v, bins)[0].astype(key_t)
        order = canonical_order(v)
        quads[s:s + chunk] = np.take_along_axis(q, order, axis=1)
    order = np.argsort(keys, kind="stable")
    return PatternSet(stars=np.ascontiguousarray(quads[order]), keys=keys[order])


def _unique_rows(quads: NDArray[np.uint32]) -> NDArray[np.uint32]:
    """Distinct rows of a ``(n, 4)`` array whose rows are sorted ascending."""
    if len(quads) == 0:
        return quads
    top = int(quads.max())
    if top < 1 << 16:
        packed = np.zeros(len(quads), dtype=np.uint64)
        for j in range(4):
            packed |= quads[:, j].astype(np.uint64) << np.uint64(16 * (3 - j))
        _, first = np.unique(packed, return_index=True)
    else:
        hi = (quads[:, 0].astype(np.uint64) << np.uint64(32)) | quads[:, 1]
        lo = (quads[:, 2].astype(np.uint64) << np.uint64(32)) | quads[:, 3]
        order = np.lexsort((lo, hi))
        hs, ls = hi[order], lo[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (hs[1:] != hs[:-1]) | (ls[1:] != ls[:-1])
        first = order[new]
    return quads[np.sort(first)]
