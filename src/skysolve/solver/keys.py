"""The pattern key: how a 4-star pattern becomes one integer, defined once.

A pattern of four stars has six inter-star angles. Sorted, the five shortest
divided by the longest give five *edge ratios* in [0, 1] that do not change
when the pattern is rotated, mirrored or scaled (the longest edge carries the
scale). Each ratio is quantised into ``bins`` bins,
``b = clip(floor(ratio * bins), 0, bins - 1)``, and the five bin indices are
packed into one unsigned integer ``key = Σ b_i · bins**i`` (unique while
``bins**5 < 2**64``).

The database stores its patterns sorted by key. A lookup of key ``k`` is a
binary search; the *key directory* narrows it first: keys sharing their
leading bits (``k >> shift``) form one bucket whose rows
``starts[bucket]:starts[bucket + 1]`` are all the search has to look at.

A measured ratio may sit within the matching tolerance of a bin edge, so a
query looks up every key whose bins ``[r - tol, r + tol]`` overlaps
(:func:`neighbour_keys`). Most of those keys are in no pattern of the database; the
compiled lookup answers them from a *key filter*, a bitmap of the keys' hashes small
enough to stay in the CPU's cache (:func:`key_hash`).

The scalar formulas (:func:`bin_index`, :func:`pack_key`, :func:`key_bucket`)
work on numpy arrays and, compiled, inside the numba kernels of
:mod:`skysolve.solver.backends.compiled`, so both backends compute the same
keys from the same lines.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "KEY_RATIOS",
    "PAIRS_4",
    "pair_indices",
    "pattern_edge_angles",
    "pattern_edge_angles_indexed",
    "quad_components",
    "component_edge_angles",
    "edge_ratios",
    "bins_for_error",
    "key_dtype",
    "bin_index",
    "pack_key",
    "key_bucket",
    "FILTER_BITS_PER_KEY",
    "filter_bits",
    "key_hash",
    "quantize_ratios",
    "ratio_keys",
    "neighbour_keys",
    "pattern_keys",
    "KEYS_PER_BUCKET",
    "key_directory",
    "lookup_keys",
]

#: Edge ratios per pattern (the five shortest edges over the longest).
KEY_RATIOS = 5

#: The six pairs (i, j) of a 4-star pattern, in a fixed order.
PAIRS_4 = np.array(list(itertools.combinations(range(4), 2)), dtype=np.intp)


# ------------------------------------------------------------------------------------
# Edges and ratios


def pair_indices(n: int) -> NDArray[np.intp]:
    """All pairs ``(i, j)`` with ``i < j < n``, shape ``(n*(n-1)/2, 2)``."""
    i, j = np.triu_indices(n, k=1)
    return np.stack([i, j], axis=1)


def quad_components(xyz: NDArray[np.float64], quads: ArrayLike) -> list[list[NDArray]]:
    """``comp[star][axis]``: one coordinate of one star of every pattern, as 1-D arrays.

    Parameters
    ----------
    xyz : ndarray, shape ``(3, n)``
        Unit vectors stored component-major (``xyz[0]`` all x, ...).
    quads : array_like of int, shape ``(m, 4)``
        Star indices of each pattern.
    """
    q = np.asarray(quads)
    return [[xyz[a][q[:, i]] for a in range(3)] for i in range(4)]


def component_edge_angles(comp) -> NDArray[np.float64]:
    """Six edge angles from ``comp[star][axis]`` -> (m,) component arrays; shape (m, 6).

    The angles of :func:`pattern_edge_angles`, from the layout of :func:`quad_components`.
    """
    m = comp[0][0].shape[0]
    sq = np.empty((m, 6))
    for k, (i, j) in enumerate(PAIRS_4):
        # one contiguous 1-D pass per component beats fancy-indexed (m, 6, 3) temporaries
        dx = comp[i][0] - comp[j][0]
        dy = comp[i][1] - comp[j][1]
        dz = comp[i][2] - comp[j][2]
        sq[:, k] = dx * dx + dy * dy + dz * dz
    np.sqrt(sq, out=sq)
    sq *= 0.5
    np.minimum(sq, 1.0, out=sq)
    np.arcsin(sq, out=sq)
    sq *= 2.0
    return sq


def pattern_edge_angles(vectors: ArrayLike) -> NDArray[np.float64]:
    """The six inter-star angles (radians) of 4-star patterns.

    Parameters
    ----------
    vectors : array_like, shape ``(..., 4, 3)``
        Unit vectors of the four stars of each pattern.

    Returns
    -------
    ndarray, shape ``(..., 6)``
        Angles in the pair order of ``PAIRS_4`` (unsorted).
    """
    v = np.asarray(vectors, dtype=np.float64)
    lead = v.shape[:-2]
    flat = np.ascontiguousarray(v.reshape(-1, 12).T)  # rows: star0 x,y,z, star1 x,y,z, ...
    comp = [[flat[3 * i + a] for a in range(3)] for i in range(4)]
    return component_edge_angles(comp).reshape(*lead, 6)


def pattern_edge_angles_indexed(xyz: NDArray[np.float64],
                                quads: ArrayLike) -> NDArray[np.float64]:
    """Edge angles of patterns given as star indices into a component-major table.

    Parameters
    ----------
    xyz : ndarray, shape ``(3, n)``
        Unit vectors stored component-major (``xyz[0]`` all x, ...).
    quads : array_like of int, shape ``(m, 4)``
        Star indices of each pattern.

    Returns
    -------
    ndarray, shape ``(m, 6)``
        As :func:`pattern_edge_angles`.
    """
    return component_edge_angles(quad_components(xyz, quads))


def edge_ratios(edges: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sorted edge ratios of patterns.

    Parameters
    ----------
    edges : array_like, shape ``(..., 6)``
        Edge lengths (angles, or pixel distances for small fields).

    Returns
    -------
    ratios : ndarray, shape ``(..., 5)``
        The five shortest edges divided by the longest, ascending, in [0, 1].
    largest : ndarray, shape ``(...)``
        The longest edge, in the units of ``edges``.
    """
    e = np.sort(np.asarray(edges, dtype=np.float64), axis=-1)
    largest = e[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = e[..., :-1] / largest[..., None]
    return ratios, largest


# ------------------------------------------------------------------------------------
# Quantisation and packing


def bins_for_error(pattern_max_error: float) -> int:
    """Number of quantisation bins per edge ratio for a maximum ratio error.

    A bin is four times wider than the allowed error, so a ratio lies within
    ``pattern_max_error`` of at most two bins.
    """
    return max(1, int(round(0.25 / pattern_max_error)))


def key_dtype(bins: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds every key of ``bins`` bins."""
    return np.dtype(np.uint32) if bins ** KEY_RATIOS < 2 ** 32 else np.dtype(np.uint64)


def bin_index(ratio, bins):
    """Bin of an edge ratio, ``clip(floor(ratio * bins), 0, bins - 1)``, as a float.

    Works on scalars and arrays alike; NaN falls into bin 0.
    """
    return np.fmin(np.fmax(np.floor(ratio * bins), 0.0), bins - 1.0)


def pack_key(d0, d1, d2, d3, d4, bins):
    """The key ``Σ d_i · bins**i`` of five bin indices (all unsigned 64-bit), by Horner."""
    return (((d4 * bins + d3) * bins + d2) * bins + d1) * bins + d0


def key_bucket(key, shift):
    """Directory bucket of a key: its leading bits, ``key >> shift`` (unsigned)."""
    return key >> shift


#: Bits of a key filter per distinct key (see :func:`key_hash`): a key the database does
#: not hold passes the filter with probability ~1 / FILTER_BITS_PER_KEY.
FILTER_BITS_PER_KEY = 16
#: Fibonacci hashing's multiplier (2**64 / golden ratio): spreads neighbouring keys.
_HASH_MULTIPLIER = 0x9E3779B97F4A7C15


def filter_bits(n_keys: int) -> int:
    """Bits ``b`` of the hash of a key filter for ``n_keys`` distinct keys: ``2**b`` bits
    of filter, at least :data:`FILTER_BITS_PER_KEY` per key."""
    return max(6, (FILTER_BITS_PER_KEY * max(n_keys, 1) - 1).bit_length())


def key_hash(key, bits):
    """The ``bits``-bit hash of a key (unsigned 64-bit arithmetic, wrapping): the top bits
    of ``key * multiplier``, the bit of a *key filter* that says whether a key may be in
    the database.

    The compiled lookup tests a key's bit in a bitmap of the database's key hashes
    (a few MB, so it stays in the CPU's cache) before it reads the key directory and
    the sorted keys (tens of MB, one cache miss each). Giving up on random points,
    99.8 % of the query keys match no pattern and 94 % end at the filter, with one
    cached read. The filter has no false negatives, so the candidates are the same.
    """
    return (key * _HASH_MULTIPLIER) >> (64 - bits)


def quantize_ratios(ratios: ArrayLike, bins: int) -> NDArray[np.int64]:
    """Bin index of each ratio (see :func:`bin_index`), as int64."""
    return bin_index(np.asarray(ratios, dtype=np.float64), bins).astype(np.int64)


def ratio_keys(bin_indices: ArrayLike, bins: int) -> NDArray[np.uint64]:
    """Pack five bin indices per pattern (last axis) into one integer key.

    The key is ``sum(b_i * bins**i)``, unique for ``bins**5 < 2**64``.
    """
    b = np.asarray(bin_indices, dtype=np.uint64)
    return pack_key(*(b[..., i] for i in range(KEY_RATIOS)), np.uint64(bins))


def neighbour_keys(ratios: ArrayLike, bins: int, tolerance: float) -> tuple[
        NDArray[np.uint64], NDArray[np.intp]]:
    """Every key within ``tolerance`` of each pattern's ratios.

    A ratio ``r`` may sit in any bin that ``[r - tolerance, r + tolerance]``
    overlaps; the keys of all combinations over the five ratios are returned,
    per pattern in lexicographic order of the offsets (the last ratio's
    fastest, as ``itertools.product``).

    Parameters
    ----------
    ratios : array_like, shape ``(n, 5)``
    bins : int
    tolerance : float
        Half-width of the allowed interval, in ratio units.

    Returns
    -------
    keys : ndarray of uint64, shape ``(m,)``
    owner : ndarray of intp, shape ``(m,)``
        Index of the pattern each key belongs to.
    """
    r = np.atleast_2d(np.asarray(ratios, dtype=np.float64))
    lo = quantize_ratios(r - tolerance, bins)
    hi = quantize_ratios(r + tolerance, bins)
    span = hi - lo + 1  # (n, 5)
    max_span = int(span.max()) if span.size else 1
    # all offset combinations up to the largest span, masked per pattern
    offs = _offset_table(max_span, r.shape[1])
    cand = lo[:, None, :] + offs[None, :, :]  # (n, c, 5)
    valid = np.all(offs[None, :, :] < span[:, None, :], axis=-1)
    owner = np.broadcast_to(np.arange(r.shape[0])[:, None], valid.shape)[valid]
    keys = ratio_keys(cand[valid], bins)
    return keys, owner


@functools.lru_cache(maxsize=8)
def _offset_table(span: int, dims: int) -> NDArray[np.int64]:
    """All ``dims``-tuples of offsets in ``range(span)``, shape ``(span**dims, dims)``."""
    table = np.array(list(itertools.product(range(span), repeat=dims)), dtype=np.int64)
    table.setflags(write=False)
    return table


def pattern_keys(vectors: NDArray[np.float64], bins: int) -> tuple[NDArray, NDArray[np.float64]]:
    """Keys and largest edges (radians) of patterns given as ``(n, 4, 3)`` vectors."""
    ratios, largest = edge_ratios(pattern_edge_angles(vectors))
    return ratio_keys(quantize_ratios(ratios, bins), bins), largest


# ------------------------------------------------------------------------------------
# Looking keys up


#: Keys per bucket of the key directory, on average over all buckets (4 to 8): the
#: directory then costs a byte or two per pattern instead of eight to sixteen (a 1-3
#: deg Gaia database of 70 million patterns: 134 MB instead of 1.1 GB, built in 0.4 s
#: instead of 5 s by every process that loads it). Pattern keys bunch in their leading
#: bits, so most buckets are empty and a key's bucket holds hundreds (median 400 in the
#: tests' 10-20 deg database, 128 with one bucket per key): a lookup's binary search
#: takes two more steps, which the solve benchmarks do not see.
KEYS_PER_BUCKET = 8

#: Keys counted at a time while building the directory (bounds its working memory).
_DIRECTORY_CHUNK = 1 << 20


def key_directory(keys: NDArray, bins: int) -> tuple[NDArray[np.int64], int]:
    """Index into sorted ``keys`` by their leading bits: ``(starts, shift)``.

    Keys ``k`` with ``key_bucket(k, shift) == b`` occupy rows
    ``starts[b]:starts[b + 1]``, so a lookup searches a handful of rows
    instead of the whole table (about :data:`KEYS_PER_BUCKET` per bucket).
    """
    space_bits = max(1, (bins ** KEY_RATIOS - 1).bit_length())
    wanted = max(1, (len(keys) - 1) // KEYS_PER_BUCKET)
    bucket_bits = min(space_bits, max(1, wanted.bit_length()))
    shift = space_bits - bucket_bits
    # the keys are sorted, so each chunk's buckets are one run of the directory and
    # bucket counts accumulate into the start of each bucket
    counts = np.zeros(1 << bucket_bits, dtype=np.int64)
    for first in range(0, len(keys), _DIRECTORY_CHUNK):
        buckets = key_bucket(keys[first:first + _DIRECTORY_CHUNK], keys.dtype.type(shift))
        low = int(buckets[0])
        counts[low:int(buckets[-1]) + 1] += np.bincount((buckets - buckets[0]).astype(np.intp))
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    starts.setflags(write=False)
    return starts, shift


def lookup_keys(keys_sorted: NDArray, query: NDArray) -> tuple[NDArray[np.intp],
                                                                 NDArray[np.intp]]:
    """Rows of ``keys_sorted`` equal to each query key.

    Returns
    -------
    rows : ndarray of intp
        Matching rows, grouped by query key in query order.
    owner : ndarray of intp
        For each row, the index of the query key that found it.
    """
    query = np.asarray(query).astype(keys_sorted.dtype, copy=False)
    lo = np.searchsorted(keys_sorted, query, side="left")
    hi = np.searchsorted(keys_sorted, query, side="right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    owner = np.repeat(np.arange(len(query)), counts)
    starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
    rows = starts + np.arange(total)
    return rows.astype(np.intp), owner
