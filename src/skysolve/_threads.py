"""Worker threads for the compiled kernels: how many to use, and a pool to run chunks on.

The compiled kernels release the GIL (:func:`skysolve._jit.jit` compiles with
``nogil=True``), so independent parts of one job -- the position fits of thousands
of stars, the blocks of a large frame -- run on several cores from one Python call.
Work is cut into contiguous chunks whose results are put back in chunk order, so
the result never depends on the number of threads.

``threads=None`` means every core this process may run on, when called from the
main thread of a process that is not itself a worker of a ``multiprocessing`` pool;
one otherwise: ``batch``, the solving service and Dask run one frame per worker
and already keep every core busy, and a second layer of threads would only
contend with them.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

__all__ = ["available_cores", "resolve", "split", "split_weighted", "run_chunks", "joined"]

if TYPE_CHECKING:  # pragma: no cover
    import concurrent.futures as cf

T = TypeVar("T")

_LOCK = threading.Lock()
_POOL: cf.ThreadPoolExecutor | None = None
_POOL_PID = -1
_POOL_SIZE = 0


def available_cores() -> int:
    """The number of cores this process may run on (its CPU affinity where known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def resolve(threads: int | None) -> int:
    """The thread count for ``threads`` (``None``: see the module docstring)."""
    if threads is not None:
        return int(threads)
    # (a pool's worker process has imported multiprocessing: its bootstrap does; looked
    # up, not imported, which would cost a one-image solve 6 ms)
    mp: Any = sys.modules.get("multiprocessing")
    if (threading.current_thread() is not threading.main_thread()
            or (mp is not None and mp.parent_process() is not None)):
        return 1
    return available_cores()


def split(n: int, threads: int, min_size: int) -> list[tuple[int, int]]:
    """``range(n)`` as at most ``threads`` contiguous ``(start, stop)`` chunks of at least
    ``min_size`` items (one chunk when ``n`` is small)."""
    k = max(1, min(threads, n // max(min_size, 1)))
    bounds = [n * i // k for i in range(k + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def split_weighted(weights: NDArray, threads: int, min_size: int) -> list[tuple[int, int]]:
    """As :func:`split`, with chunks of about equal total ``weights`` (the cost of each
    item) rather than equal counts."""
    n = len(weights)
    k = max(1, min(threads, n // max(min_size, 1)))
    if k == 1:
        return [(0, n)]
    cum = np.cumsum(weights, dtype=np.float64)
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, k) / k).tolist()
    bounds = sorted({0, n, *(min(max(c, 1), n - 1) for c in cuts)})
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _pool(size: int) -> cf.ThreadPoolExecutor:
    """The process's shared pool of at least ``size`` threads (a new one after a fork,
    whose child inherits the pool object but not its threads)."""
    global _POOL, _POOL_PID, _POOL_SIZE
    import concurrent.futures as cf  # (7 ms to import: only when a frame is split)

    with _LOCK:
        if _POOL is None or _POOL_PID != os.getpid() or _POOL_SIZE < size:
            _POOL = cf.ThreadPoolExecutor(size, thread_name_prefix="skysolve-kernel")
            _POOL_PID, _POOL_SIZE = os.getpid(), size
        return _POOL


def run_chunks(fn: Callable[[int, int], T], chunks: list[tuple[int, int]]) -> list[T]:
    """``[fn(start, stop) for each chunk]``, the chunks after the first on the shared pool
    while the calling thread runs the first; results in chunk order. Each chunk runs in
    a copy of the caller's context (its context variables: e.g. the extraction's
    backend)."""
    if len(chunks) == 1:
        return [fn(*chunks[0])]
    pool = _pool(len(chunks) - 1)
    futures = [pool.submit(contextvars.copy_context().run, fn, *c) for c in chunks[1:]]
    first = fn(*chunks[0])
    return [first, *(f.result() for f in futures)]


def joined(parts: list[tuple[NDArray, ...]]) -> tuple[NDArray, ...]:
    """The chunks' results (tuples of arrays, in chunk order) joined position by position:
    the one chunk's arrays themselves when there is one."""
    if len(parts) == 1:
        return tuple(parts[0])
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))
