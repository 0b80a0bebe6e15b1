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

from .._progress import progress_bar
from .fieldstars import ScaleStars, thin_by_separation
from .keys import component_edge_angles, edge_ratios, quad_components, quantize_ratios, ratio_keys
from .patternstore import ChunkDeduplicator, PatternStore

__all__ = [
    "PATTERN_SIZE",
    "SEPARATION_FRACTION",
    "FIELD_RADIUS_FRACTION",
    "PATTERN_RULES",
    "fibonacci_sphere",
    "brightest_first_combinations",
    "stars_per_field",
    "thin_by_separation",
    "canonical_order",
    "canonical_order_of_components",
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

#: The rules of pattern making that are not parameters, as a database's header records
#: them (the solver thins the image's stars by the same separation): a database whose
#: header records others is refused on load.
PATTERN_RULES = {"separation_fraction": SEPARATION_FRACTION,
                 "field_radius_fraction": FIELD_RADIUS_FRACTION}


def fibonacci_sphere(n: int, start: int = 0, stop: int | None = None) -> NDArray[np.float64]:
    """``n`` nearly uniformly spaced unit vectors (Fibonacci lattice), or rows ``start:stop``.

    Row ``i`` has ``z = 1 - (2 i + 1) / n``: the rows run from the north pole to the south.
    """
    i = np.arange(start, n if stop is None else stop, dtype=np.float64)
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
    v = np.asarray(vectors, dtype=np.float64)
    return canonical_order_of_components([[v[..., i, a] for a in range(3)] for i in range(4)])


def canonical_order_of_components(comp) -> NDArray[np.intp]:
    """:func:`canonical_order` of ``comp[star][axis]`` arrays (:func:`~.keys.quad_components`).

    The arithmetic is that of the compiled backend's mirror, term for term, so
    that both order the stars of a pattern alike to the last bit: the mean is
    ``0.25 * (((a0 + a1) + a2) + a3)`` per axis and the squared distance
    ``(dx**2 + dy**2) + dz**2``; the sort is stable.
    """
    mean = [0.25 * (((comp[0][a] + comp[1][a]) + comp[2][a]) + comp[3][a]) for a in range(3)]
    dist = np.stack([((comp[i][0] - mean[0]) ** 2 + (comp[i][1] - mean[1]) ** 2)
                     + (comp[i][2] - mean[2]) ** 2 for i in range(4)], axis=-1)
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




def _keyed(star_xyz: NDArray[np.float64], quads: NDArray[np.uint32],
           bins: int) -> tuple[NDArray[np.uint64], NDArray[np.uint32]]:
    """Keys and canonically ordered stars of patterns given as star-table rows."""
    keys = np.empty(len(quads), dtype=np.uint64)
    stars = np.empty_like(quads)
    for s in range(0, len(quads), 1 << 18):  # keeps the float64 temporaries small
        q = quads[s:s + (1 << 18)]
        comp = quad_components(star_xyz, q)
        ratios = edge_ratios(component_edge_angles(comp))[0]
        keys[s:s + len(q)] = ratio_keys(quantize_ratios(ratios, bins), bins)
        stars[s:s + len(q)] = np.take_along_axis(q, canonical_order_of_components(comp), axis=1)
    return keys, stars


def _scale_patterns(store: PatternStore, star_vectors: NDArray[np.float64],
                    star_xyz: NDArray[np.float64], fov_rad: float,
                    n_fields: int, k: int, combos: NDArray[np.intp], bar) -> None:
    """Add the patterns of the ``n_fields`` lattice fields of one scale to ``store``."""
    prefix = np.minimum([math.comb(m, PATTERN_SIZE) for m in range(k + 1)], len(combos))
    radius = FIELD_RADIUS_FRACTION * fov_rad
    stars = ScaleStars(star_vectors, radius, SEPARATION_FRACTION * fov_rad, k)
    dedupe = ChunkDeduplicator(len(star_vectors))
    # Fields sharing a pattern are at most two radii apart, so their z (2/n_fields apart
    # per lattice row) are too: chunks spanning more than that repeat only the chunk before.
    chunk = int(n_fields * radius * 1.01) + 2
    z = star_vectors[:, 2]
    z_lo, z_hi = (float(z.min()), float(z.max())) if len(z) else (1.0, -1.0)
    for start in range(0, n_fields, chunk):
        stop = min(n_fields, start + chunk)
        # skip chunks with no star within reach (a catalog of part of the sky)
        top, bottom = 1.0 - (2 * start + 1) / n_fields, 1.0 - (2 * stop - 1) / n_fields
        if bottom - radius <= z_hi and top + radius >= z_lo:
            members = stars.members(fibonacci_sphere(n_fields, start, stop))
            counts = prefix[np.count_nonzero(members >= 0, axis=1)]
            quads = dedupe.new_patterns(members, combos, counts)
            store.add(*_keyed(star_xyz, quads, store.bins))
        bar.update(stop - start)


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
    plans = []
    for fov in fov_deg_scales:
        fov_rad = math.radians(fov)
        n_fields = max(12, math.ceil(lattice_field_oversampling * 4.0 * math.pi / fov_rad ** 2))
        plans.append((fov_rad, n_fields))
    n_raw = sum(n for _, n in plans) * len(combos)
    # about a third of the patterns of the fields are distinct within their scale
    store = PatternStore(len(star_vectors), bins, expected_rows=n_raw // 3)
    star_xyz = np.ascontiguousarray(star_vectors.T)
    with progress_bar(sum(p[1] for p in plans), "pattern fields", progress, unit="field") as bar:
        for fov_rad, n_fields in plans:
            _scale_patterns(store, star_vectors, star_xyz, fov_rad, n_fields, k, combos, bar)
    del star_vectors, star_xyz  # not needed to finish: leave the memory to the result
    stars, keys = store.finish()
    return PatternSet(stars=stars, keys=keys)
