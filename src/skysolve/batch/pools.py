"""Where the frames of a batch run: every local core, or a Dask cluster.

:func:`open_executor` turns the two user-facing choices, ``client`` (a
``dask.distributed.Client``, a scheduler address such as
``"tcp://10.0.0.5:8786"``, or ``"local"`` for a :class:`LocalCluster` started
for the run) and ``jobs`` (local workers), into an executor for
:func:`skysolve.batch.executors.iter_tasks`, and closes what it started.

The local default
-----------------
Without a client, a batch runs on :func:`default_jobs` worker processes
(:class:`LocalPool`). Threads were measured against processes on 200
2048x2048 TESS-like FITS frames (read + extract + solve) on a 2-core machine
(``benchmarks/bench_batch.py``, see ``docs/batch.md``): the solver's numba
kernels release the GIL, but reading a FITS file and the extraction's numpy
and scipy steps hold it for much of their time, so two threads reached only
part of the speed-up that two processes did. Processes it is; a worker opens
the database file memory-mapped once (:class:`~skysolve.batch.DatabaseHandle`),
so the pages of the database are shared between the workers, not copied.
A pool whose worker dies is started afresh (:meth:`LocalPool.restart`).

Dask
----
``dask[distributed]`` is an optional dependency (``pip install
"skysolve[distributed]"``); without it a client or scheduler address fails
with a message naming the extra. Frames become Dask tasks; a database travels
as its file path, so every worker must see that file (shared storage).

MALLOC_TRIM: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``
(``distributed.nanny.pre-spawn-environ``), which turns off glibc's adaptive
mmap threshold: every buffer over 128 KiB -- a frame's image and extraction
arrays, tens of MB -- is then a fresh mapping whose pages the kernel must
zero, frame after frame. Measured on the benchmark's 2048x2048
frames, a frame's work cost 155-164 ms of CPU in such a worker against 89-94 ms
in a local worker process, and the same 94-96 ms in a Dask worker started
without it. The ``LocalCluster`` started for ``client="local"`` leaves it
unset; workers of other clusters that have it get a warning.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import signal
import warnings
from collections.abc import Iterator
from typing import Any

from .. import _args
from ..errors import InvalidArgumentError, InvalidTypeError
from .executors import DatabaseHandle, _is_dask_client, as_executor

__all__ = ["DISTRIBUTED_MISSING", "LOCAL_KINDS", "TRIM_CONFIG", "LocalPool", "connect",
           "default_jobs", "open_executor"]

#: The Dask setting that makes workers trim their heap at every free (see the notes).
TRIM_CONFIG = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

#: Kinds of local pool: worker processes (the default) or threads.
LOCAL_KINDS = ("process", "thread")

#: The message when Dask is needed and missing.
DISTRIBUTED_MISSING = ('Dask is not installed; install the extra: pip install '
                       '"skysolve[distributed]"')


def default_jobs() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _quiet_worker() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops the batch cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalPool(cf.Executor):
    """A pool of ``jobs`` local workers that can be started afresh after a worker dies.

    Parameters
    ----------
    jobs : int
        Worker processes (or threads).
    kind : {'process', 'thread'}
    """

    def __init__(self, jobs: int, kind: str = "process") -> None:
        self._max_workers = _args.count(jobs, "jobs", minimum=1)
        self.kind = _args.choice(kind, "kind", LOCAL_KINDS)
        self._pool = self._start()

    def _start(self) -> cf.Executor:
        if self.kind == "thread":
            return cf.ThreadPoolExecutor(self._max_workers, thread_name_prefix="skysolve")
        return cf.ProcessPoolExecutor(self._max_workers, initializer=_quiet_worker)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        return self._pool.submit(fn, *args, **kwargs)

    def restart(self) -> None:
        """Replace a broken pool by a new one (the old one's tasks are lost)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def connect(client: Any, jobs: int | None = None) -> tuple[Any, list[Any]]:
    """``(Client, things to close)`` for a client, a scheduler address or ``"local"``."""
    if _is_dask_client(client):
        return client, []
    if not isinstance(client, str):
        raise InvalidTypeError("client must be a dask.distributed.Client or a scheduler "
                               f"address such as 'tcp://host:8786', got {type(client).__name__}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError(DISTRIBUTED_MISSING) from None
    if _is_local(client):
        import dask

        with dask.config.set({TRIM_CONFIG: None}):  # see MALLOC_TRIM in the module notes
            cluster = LocalCluster(n_workers=jobs or default_jobs(), threads_per_worker=1,
                                   processes=True, dashboard_address=None)
        dask_client = Client(cluster)
        return dask_client, [dask_client, cluster]
    try:
        dask_client = Client(client.strip(), timeout="20s")
    except OSError as exc:
        raise OSError(f"cannot reach the Dask scheduler at {client}: {exc}") from None
    return dask_client, [dask_client]


def _is_local(client: Any) -> bool:
    return isinstance(client, str) and client.strip().lower() == "local"


def _malloc_trim() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _check_workers(client: Any, database: DatabaseHandle | None) -> None:
    """Every worker must see the database file (it travels as its path); a worker whose
    heap is trimmed at every free (Dask's default) is worth a warning."""
    trimmed = {w: v for w, v in client.run(_malloc_trim).items() if v is not None}
    if trimmed:
        value = next(iter(trimmed.values()))
        warnings.warn(
            f"{len(trimmed)} Dask worker(s) run with MALLOC_TRIM_THRESHOLD_={value} (Dask's "
            "default), which makes every frame's image buffers fresh memory: skysolve's "
            "per-frame work then costs ~1.6x the CPU time. "
            "Start the workers with it unset (dask config "
            f"{TRIM_CONFIG}: null); see docs/batch.md", RuntimeWarning, stacklevel=4)
    if database is None:
        return
    path = database.path
    if path is None:
        raise InvalidArgumentError(
            "the database has no file: save it (database.save_to_file(path)) on storage the "
            "Dask workers share, so that they can memory-map it")
    seen = client.run(os.path.isfile, path)
    missing = sorted(w for w, ok in seen.items() if not ok)
    if missing:
        raise InvalidArgumentError(
            f"the database {path} is not readable on {len(missing)} of {len(seen)} Dask "
            f"workers ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); put it "
            "on storage every worker shares")


@contextlib.contextmanager
def open_executor(client: Any = None, jobs: int | None = None, *,
                  database: DatabaseHandle | None = None, items: int | None = None,
                  kind: str = "process", prepare: Any = None) -> Iterator[Any]:
    """The executor of a batch; what it started is closed on exit.

    Parameters
    ----------
    client : dask.distributed.Client, str or None
        A client, a scheduler address or ``"local"``; None runs locally.
    jobs : int, optional
        Local workers (default :func:`default_jobs`; 1 runs serially here).
        With a client only for ``"local"`` (its worker processes).
    database : DatabaseHandle, optional
        The database the tasks open: its file is checked on every Dask worker;
        a database without a file makes local workers threads (nothing to map).
    items : int, optional
        Frames in the batch: no more local workers are started.
    kind : {'process', 'thread'}
        Local workers.
    prepare : callable, optional
        Called here before worker processes are started (forked), so that
        they inherit what it made ready.

    Yields
    ------
    None (serial), a :class:`LocalPool`, or a Dask client's executor.
    """
    if jobs is not None:
        jobs = _args.count(jobs, "jobs", minimum=1)
    if client is None:
        n = jobs or default_jobs()
        if items is not None:
            n = min(n, max(1, items))
        if n <= 1:
            yield None
            return
        if database is not None and database.path is None:
            kind = "thread"
        if prepare is not None and kind == "process":
            prepare()
        with LocalPool(n, kind) as pool:
            yield pool
        return
    if jobs is not None and not _is_local(client):
        raise InvalidArgumentError("jobs sets local workers; with a Dask client its workers "
                                   "do the work (give one of jobs and client)")
    dask_client, owned = connect(client, jobs)
    try:
        _check_workers(dask_client, database)
        yield as_executor(dask_client)
    finally:
        for thing in owned:
            thing.close()
