"""Frame-sized scratch arrays that one extraction after another reuses on a thread.

An extraction makes a few arrays of the frame's size -- its float32 working copy, the
matched filter's output, the label image -- and drops them when it returns. Freed,
such an array goes back to the C allocator, which hands a large block back to the
operating system once the free space at the top of its heap passes a threshold
(glibc's, which grows with the largest block freed so far). The next frame's array
then comes fresh from the system, and each of its 4 kB pages costs a page fault at
its first write: ~1.5 µs a page on this project's virtual machine, 1.1 ms for a
1024x768 float32 frame (768 pages). A real 1024x768 frame as an 8-bit JPEG took 1,966
faults an extraction when extracted again and again: 9.2-10.6 ms of CPU, against
6.3-7.0 ms on reused arrays (no fault). Whether that happens depends on what the
process allocated before (after a 2048x2048 frame the threshold is high enough that
1024x768 frames do not fault), so the same call's time depended on the calls before.

Inside :func:`reuse` (one extraction: :func:`.extract.extract`), :func:`empty` and
:func:`zeros` hand out arrays kept from the thread's previous extraction when one of
the same shape and type is free, and keep every array they hand out for the next one.
Only arrays that never leave the extraction may come from here: the result's arrays
are always new. When the outermost :func:`reuse` of a thread ends, the arrays of
shapes and types that extraction did not ask for are dropped, so a thread holds at
most the scratch arrays of its latest extraction (a few frames' worth), and no more
than :data:`MAX_KEPT_BYTES` of them (the largest go first). Outside :func:`reuse` both
are plain :func:`numpy.empty` and :func:`numpy.zeros`.

On a small frame the same happens to the statistics' samples: a 320x240 frame's noise
sample is the whole frame, and its background model, residuals and the clipped MAD's
selection space (float64, 600 kB each) took 565 page faults an extraction. A helper
called several times an extraction takes its scratch space inside :func:`borrowed`,
which hands it back as soon as the call is done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import DTypeLike, NDArray

#: The most bytes of scratch arrays a thread keeps between extractions (a 4096x4096
#: frame's float32 working copy, its matched filter's frame and its labels: 160 MB).
MAX_KEPT_BYTES = 256 * 2**20


class _Pool(threading.local):
    """One thread's arrays: free ones by (shape, dtype), and those each open scope took."""

    def __init__(self) -> None:
        self.free: dict[tuple, list[NDArray]] = {}
        self.scopes: list[list[NDArray]] = []
        self.asked: set[tuple] = set()  # keys asked for since the outermost scope began


_POOL = _Pool()


def _key(shape: tuple[int, ...], dtype: np.dtype) -> tuple:
    return shape, dtype.str


def empty(shape: int | tuple[int, ...], dtype: DTypeLike = np.float64) -> NDArray:
    """An uninitialised array like :func:`numpy.empty`, reused from the thread's previous
    extraction inside :func:`reuse` (see the module docstring: it must not outlive
    the extraction)."""
    pool = _POOL
    if not pool.scopes:
        return np.empty(shape, dtype)
    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    key = _key(shape, dtype)
    pool.asked.add(key)
    free = pool.free.get(key)
    arr = free.pop() if free else np.empty(shape, dtype)
    pool.scopes[-1].append(arr)
    return arr


def zeros(shape: int | tuple[int, ...], dtype: DTypeLike = np.float64) -> NDArray:
    """:func:`empty` filled with zeros (:func:`numpy.zeros` outside :func:`reuse`)."""
    if not _POOL.scopes:
        return np.zeros(shape, dtype)
    arr = empty(shape, dtype)
    arr.fill(0)
    return arr


def copy(arr: NDArray, dtype: DTypeLike | None = None) -> NDArray:
    """A C-ordered copy of ``arr`` (cast to ``dtype`` as :meth:`numpy.ndarray.astype`
    casts), from :func:`empty`."""
    out = empty(arr.shape, arr.dtype if dtype is None else dtype)
    np.copyto(out, arr, casting="unsafe")
    return out


@contextmanager
def reuse() -> Iterator[None]:
    """The scope of one extraction: the arrays :func:`empty` and :func:`zeros` hand out
    inside it are free again when it ends (nested scopes hand theirs back at their own
    end)."""
    pool = _POOL
    outermost = not pool.scopes
    if outermost:
        pool.asked = set()
    pool.scopes.append([])
    try:
        yield
    finally:
        for arr in pool.scopes.pop():
            pool.free.setdefault(_key(arr.shape, arr.dtype), []).append(arr)
        if outermost:
            pool.free = _within_budget({k: v for k, v in pool.free.items() if k in pool.asked})
            pool.asked = set()


@contextmanager
def borrowed() -> Iterator[None]:
    """Inside an extraction's :func:`reuse`, a nested scope: the arrays taken in it are
    free again for the rest of the extraction when it ends (a helper's scratch space,
    taken once per call); outside one, nothing (:func:`empty` is :func:`numpy.empty`,
    and no scope of its own drops the arrays the thread kept from its last extraction)."""
    if not _POOL.scopes:
        yield
        return
    with reuse():
        yield


def _within_budget(free: dict[tuple, list[NDArray]]) -> dict[tuple, list[NDArray]]:
    """``free`` less its largest arrays while they hold more than :data:`MAX_KEPT_BYTES`."""
    arrays = sorted((a for v in free.values() for a in v), key=lambda a: a.nbytes)
    total = sum(a.nbytes for a in arrays)
    if total <= MAX_KEPT_BYTES:
        return free
    while arrays and total > MAX_KEPT_BYTES:
        total -= arrays.pop().nbytes
    kept: dict[tuple, list[NDArray]] = {}
    for a in arrays:
        kept.setdefault(_key(a.shape, a.dtype), []).append(a)
    return kept
