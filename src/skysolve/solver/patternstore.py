"""The pattern set a database build accumulates: distinct, sorted by key, in bounded memory.

The lattice fields of a build make about three patterns for every one the
database keeps: neighbouring fields share most of theirs and, less often, so
do fields of consecutive scales. Collecting them all before removing repeats
took several times the size of the result (3.9 GB of memory for a 2-180 deg
Gaia database of 0.65 GB). Two stages keep the memory near the result's size.

Within one scale (:class:`ChunkDeduplicator`)
    The fields are visited in lattice order, which is order of decreasing z.
    Two fields share a pattern only if both lie within the field radius of
    its four stars: their centres are at most two radii apart, and so are
    their z. Cut into chunks of consecutive fields that span more than two
    radii in z, a chunk can repeat the patterns of the chunk before it and of
    no other, so each chunk passes on only its distinct patterns that the
    previous chunk did not make. Rows are compared as one 64-bit code each
    (the four star indices renumbered within the two chunks, 16 bits each)
    when the two chunks use fewer than 65,536 stars, otherwise as pairs of
    64-bit words (slower, same answer).

Across scales (:class:`PatternStore`)
    Rows arrive with their key and canonical star order and are kept in key
    ranges (partitions of about equal size, from the key distribution of
    random patterns), each in blocks of memory of its own. :meth:`finish`
    sorts one partition at a time by key, drops the repeats (equal keys and
    equal stars), writes it into the output and releases its blocks, so the
    memory in use stays near the size of the output.
"""

from __future__ import annotations

import math
import mmap

import numpy as np
from numpy.typing import NDArray

from .keys import KEY_RATIOS, key_dtype, pattern_keys

__all__ = ["ChunkDeduplicator", "PatternStore"]

#: Rows per memory block of a partition (512 or 768 kB).
BLOCK_ROWS = 1 << 15
#: Pending rows aimed at per partition: the temporaries of finishing one partition
#: are about 100 bytes per row.
ROWS_PER_PARTITION = 1 << 18
#: Patterns are compared as one 64-bit code when at most this many stars form them.
PACKED_STARS = 1 << 16

_PAIR = np.dtype([("hi", "<u8"), ("lo", "<u8")])
#: Odd multipliers of the row hash (multiplicative hashing: the top bits mix every bit).
_HASH = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9],
                 dtype=np.uint64)


# ------------------------------------------------------------------------------------
# Within one scale


def _encode(cols: list[NDArray[np.uint64]], packed: bool) -> NDArray:
    """One sortable code per row of four ascending star numbers (equal rows, equal codes)."""
    a, b, c, d = cols
    if packed:
        return (a << np.uint64(48)) | (b << np.uint64(32)) | (c << np.uint64(16)) | d
    out = np.empty(a.shape, dtype=_PAIR)
    out["hi"] = (a << np.uint64(32)) | b
    out["lo"] = (c << np.uint64(32)) | d
    return out


def _decode(codes: NDArray, packed: bool) -> NDArray[np.uint64]:
    """The ``(n, 4)`` star numbers of codes made by :func:`_encode`."""
    out = np.empty((len(codes), 4), dtype=np.uint64)
    if packed:
        for j in range(4):
            out[:, j] = (codes >> np.uint64(48 - 16 * j)) & np.uint64(0xFFFF)
    else:
        low = np.uint64(0xFFFFFFFF)
        out[:, 0], out[:, 1] = codes["hi"] >> np.uint64(32), codes["hi"] & low
        out[:, 2], out[:, 3] = codes["lo"] >> np.uint64(32), codes["lo"] & low
    return out


def _distinct(codes: NDArray) -> NDArray:
    """The distinct values of ``codes``, sorted (a sort is many times faster than
    :func:`numpy.unique`'s hash table on these)."""
    codes = np.sort(codes)
    keep = np.ones(len(codes), dtype=bool)
    keep[1:] = codes[1:] != codes[:-1]
    return codes[keep]


def _contains(sorted_codes: NDArray, codes: NDArray) -> NDArray[np.bool_]:
    """Whether each of ``codes`` is in ``sorted_codes`` (sorted ascending)."""
    if len(sorted_codes) == 0:
        return np.zeros(len(codes), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_codes, codes), len(sorted_codes) - 1)
    return sorted_codes[pos] == codes


class ChunkDeduplicator:
    """Distinct patterns of consecutive chunks of fields, each passed on once.

    Parameters
    ----------
    num_stars : int
        Rows of the star table.
    """

    def __init__(self, num_stars: int):
        self._number = np.zeros(num_stars, dtype=np.uint64)
        self._previous = np.zeros((0, 4), dtype=np.uint32)

    def new_patterns(self, members: NDArray[np.intp], combos: NDArray[np.intp],
                     counts: NDArray[np.intp]) -> NDArray[np.uint32]:
        """Patterns of the next chunk that the previous chunk did not make.

        Parameters
        ----------
        members : ndarray of intp, shape ``(fields, k)``
            Pattern stars of each field (star-table rows ascending, -1 padded).
        combos : ndarray of intp, shape ``(p, 4)``
            Positions in ``members`` of each pattern, ascending.
        counts : ndarray of intp, shape ``(fields,)``
            How many of ``combos`` each field makes (a prefix).

        Returns
        -------
        ndarray of uint32, shape ``(m, 4)``
            Distinct new patterns, star-table rows ascending within a row.
        """
        used = _distinct(np.concatenate([self._previous.ravel().astype(np.intp),
                                         members[members >= 0]]))
        packed = len(used) <= PACKED_STARS
        if packed:  # renumber the stars of the two chunks 0, 1, ... in table order
            self._number[used] = np.arange(len(used), dtype=np.uint64)
            m, prev = self._number[np.maximum(members, 0)], self._number[self._previous]
        else:
            m, prev = np.maximum(members, 0).astype(np.uint64), self._previous.astype(np.uint64)
        valid = np.arange(len(combos))[None, :] < counts[:, None]
        codes = _distinct(_encode([m[:, combos[:, j]][valid] for j in range(4)], packed))
        before = np.sort(_encode([prev[:, j] for j in range(4)], packed))
        new = codes[~_contains(before, codes)]
        if packed:
            self._previous = used[_decode(codes, packed)].astype(np.uint32)
            return used[_decode(new, packed)].astype(np.uint32)
        self._previous = _decode(codes, packed).astype(np.uint32)
        return _decode(new, packed).astype(np.uint32)


# ------------------------------------------------------------------------------------
# Across scales


class RowFormat:
    """How the store keeps a pattern: its key and four stars in as few 64-bit words as fit.

    When ``key_bits + 4 * star_bits <= 128`` a row is the 128-bit number
    ``key * 2**(4 b) + s0 * 2**(3 b) + s1 * 2**(2 b) + s2 * 2**b + s3`` (``b``
    bits per star) in two words, high word first; otherwise three words: the
    key, then ``s0 * 2**32 + s1`` and ``s2 * 2**32 + s3``. Either way, sorting
    the rows by their words in order sorts them by key and then by stars.
    """

    def __init__(self, key_bits: int, num_stars: int):
        self.key_bits = key_bits
        self.star_bits = max(1, (max(num_stars, 1) - 1).bit_length())
        self.words = 2 if key_bits + 4 * self.star_bits <= 128 else 3

    def _fields(self) -> list[tuple[int, int]]:
        """(bit offset, width) of the key and the four stars in the 128-bit number."""
        b = self.star_bits
        return [(4 * b, self.key_bits)] + [((3 - j) * b, b) for j in range(4)]

    def pack(self, keys: NDArray[np.uint64], stars: NDArray[np.uint32]) -> NDArray[np.uint64]:
        """Rows ``(m, words)`` of keys and ``(m, 4)`` stars."""
        out = np.zeros((len(keys), self.words), dtype=np.uint64)
        if self.words == 3:
            wide = stars.astype(np.uint64)
            out[:, 0] = keys
            out[:, 1] = (wide[:, 0] << np.uint64(32)) | wide[:, 1]
            out[:, 2] = (wide[:, 2] << np.uint64(32)) | wide[:, 3]
            return out
        hi, lo = out[:, 0], out[:, 1]
        columns = [keys] + [stars[:, j] for j in range(4)]
        for (offset, _), value in zip(self._fields(), columns, strict=True):
            value = value.astype(np.uint64)
            if offset >= 64:
                hi |= value << np.uint64(offset - 64)
                continue
            lo |= value << np.uint64(offset)
            if offset:
                hi |= value >> np.uint64(64 - offset)
        return out

    def _field(self, rows: NDArray[np.uint64], offset: int, width: int) -> NDArray[np.uint64]:
        hi, lo = rows[:, 0], rows[:, 1]
        if offset >= 64:
            value = hi >> np.uint64(offset - 64)
        else:
            value = lo >> np.uint64(offset)
            if offset:
                value |= hi << np.uint64(64 - offset)
        return value & np.uint64((1 << width) - 1)

    def keys(self, rows: NDArray[np.uint64]) -> NDArray[np.uint64]:
        """The key of each row."""
        return rows[:, 0].copy() if self.words == 3 else self._field(rows, *self._fields()[0])

    def stars(self, rows: NDArray[np.uint64]) -> NDArray[np.uint32]:
        """The ``(m, 4)`` stars of each row."""
        if self.words == 3:
            low = np.uint64(0xFFFFFFFF)
            return np.stack([rows[:, 1] >> np.uint64(32), rows[:, 1] & low,
                             rows[:, 2] >> np.uint64(32), rows[:, 2] & low],
                            axis=1).astype(np.uint32)
        return np.stack([self._field(rows, *f) for f in self._fields()[1:]],
                        axis=1).astype(np.uint32)


def _block(words: int) -> NDArray[np.uint64]:
    """An empty block of rows in memory of its own, returned to the system when dropped."""
    flags = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}
    buffer = mmap.mmap(-1, BLOCK_ROWS * words * 8, **flags)
    return np.frombuffer(buffer, dtype=np.uint64).reshape(BLOCK_ROWS, words)


def _partition_bounds(bins: int, partitions: int) -> NDArray[np.uint64]:
    """Key bounds splitting the keys of random planar 4-star patterns into equal parts."""
    if partitions <= 1:
        return np.zeros(0, dtype=np.uint64)
    rng = np.random.default_rng(20250101)
    r = 1e-3 * np.sqrt(rng.random((20_000, 4)))
    phi = rng.random((20_000, 4)) * 2.0 * math.pi
    v = np.stack([r * np.cos(phi), r * np.sin(phi), np.ones_like(r)], axis=-1)
    keys = np.sort(pattern_keys(v / np.linalg.norm(v, axis=-1, keepdims=True), bins)[0])
    return keys[(np.arange(1, partitions) * len(keys)) // partitions]


def _distinct_sorted(rows: NDArray[np.uint64], fmt: RowFormat) -> NDArray[np.uint64]:
    """``rows`` sorted by key, each distinct row once.

    The sort is by key and then by a hash of the row, so that the copies of a
    row are adjacent; if two different rows share key and hash (rare), the rows
    are sorted by all their words instead.
    """
    if len(rows) == 0:
        return rows
    keys = fmt.keys(rows)
    hash_bits = 64 - fmt.key_bits
    sort_by = keys
    if hash_bits > 0:
        h = rows[:, 0] * _HASH[0]
        for j in range(1, rows.shape[1]):
            h ^= rows[:, j] * _HASH[j]
        sort_by = (keys << np.uint64(hash_bits)) | (h >> np.uint64(fmt.key_bits))
    order = np.argsort(sort_by)
    w, sort_by = rows[order], sort_by[order]
    repeat = np.all(w[1:] == w[:-1], axis=1)
    if np.any((sort_by[1:] == sort_by[:-1]) & ~repeat):
        # equal keys and hashes of different stars: sort by the words themselves
        w = rows[np.lexsort(rows.T[::-1])]
        repeat = np.all(w[1:] == w[:-1], axis=1)
    return w[np.concatenate([[True], ~repeat])]


class PatternStore:
    """Patterns in key partitions, finished into one key-sorted, distinct set.

    Parameters
    ----------
    num_stars : int
        Rows of the star table.
    bins : int
        Quantisation bins per edge ratio.
    expected_rows : int
        About how many rows will be added (sets the number of partitions).
    """

    def __init__(self, num_stars: int, bins: int, expected_rows: int):
        self.bins = bins
        self.format = RowFormat(max(1, (bins ** KEY_RATIOS - 1).bit_length()), num_stars)
        n = int(np.clip(math.ceil(expected_rows / ROWS_PER_PARTITION), 1, 1024))
        self._bounds = _partition_bounds(bins, n)
        self._blocks: list[list[NDArray[np.uint64]]] = [[] for _ in range(n)]
        self._fill = [BLOCK_ROWS] * n  # rows used in each partition's last block
        self.rows = 0

    def add(self, keys: NDArray[np.uint64], stars: NDArray[np.uint32]) -> None:
        """Add patterns: their keys and ``(m, 4)`` star-table rows in canonical order."""
        # (a radix sort: partition numbers fit in 16 bits)
        part = np.searchsorted(self._bounds, keys, side="right").astype(np.uint16)
        order = np.argsort(part, kind="stable")
        ends = np.searchsorted(part[order], np.arange(len(self._blocks) + 1))
        rows = self.format.pack(keys[order], stars[order])
        for p in np.flatnonzero(np.diff(ends)):
            self._append(int(p), rows[ends[p]:ends[p + 1]])
        self.rows += len(rows)

    def _append(self, p: int, rows: NDArray[np.uint64]) -> None:
        done = 0
        while done < len(rows):
            if self._fill[p] == BLOCK_ROWS:
                self._blocks[p].append(_block(self.format.words))
                self._fill[p] = 0
            fill = self._fill[p]
            n = min(BLOCK_ROWS - fill, len(rows) - done)
            self._blocks[p][-1][fill:fill + n] = rows[done:done + n]
            self._fill[p] += n
            done += n

    def _take(self, p: int) -> NDArray[np.uint64]:
        """The rows of partition ``p`` in one array; its blocks are released."""
        blocks, self._blocks[p] = self._blocks[p], []
        if not blocks:
            return np.zeros((0, self.format.words), dtype=np.uint64)
        blocks[-1] = blocks[-1][: self._fill[p]]
        self._fill[p] = BLOCK_ROWS
        rows = np.concatenate(blocks)
        blocks.clear()
        return rows

    def finish(self) -> tuple[NDArray[np.uint32], NDArray]:
        """Distinct patterns sorted by key: ``(stars (m, 4) uint32, keys (m,))``.

        The store is empty afterwards.
        """
        keys = np.empty(self.rows, dtype=key_dtype(self.bins))
        stars = np.empty((self.rows, 4), dtype=np.uint32)
        n = 0
        for p in range(len(self._blocks)):
            rows = _distinct_sorted(self._take(p), self.format)
            keys[n:n + len(rows)] = self.format.keys(rows)
            stars[n:n + len(rows)] = self.format.stars(rows)
            n += len(rows)
        self.rows = 0
        # the rows past n were never written to, so they never took memory
        return stars[:n], keys[:n]
