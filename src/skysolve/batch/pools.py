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
2048x2048 TESS-like FITS frames (read + extract + solve) on a shared 2-core
machine (``benchmarks/bench_batch.py``, see ``docs/batch.rst``): the CPU per
frame was the same, and the wall times contradicted each other from run to
run on the loaded machine (threads 0.97x and processes 1.17x of serial in
one run, 1.75x and 1.30x in another). The solver's numba kernels release the
GIL, but reading a FITS file and the extraction's numpy and scipy steps hold
it part of the time, so processes stay the default until a quiet machine
says otherwise; a worker opens the database file memory-mapped once
(:class:`~skysolve.batch.DatabaseHandle`), so the pages of the database are
shared between the workers, not copied.
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
unset; workers of other clusters that have it get a warning. Its workers also
ignore Ctrl-C (:func:`dask_setup`): the client stops the batch and closes the
cluster.

Background CPU: a Dask cluster costs CPU doing nothing -- each server's
event-loop watchdog ticks every 20 ms, each nanny polls its worker's memory
every 100 ms, each worker samples its threads for the dashboard's profile
every 10 ms and its system monitor runs every 500 ms. Measured on a 2-worker
``LocalCluster``, that was 0.10-0.11 of a core, idle or busy: 5 % of a
2-core machine, the whole budget of Dask's overhead over the local pool. With
:data:`WORKER_CONFIG` (no profiler, ticks every second, memory polled every
second, the system monitor every 2 s) it was 0.02 of a core. The
``LocalCluster`` started for ``client="local"`` uses it, and docs/batch.rst
gives it as YAML for other clusters. The per-task cost (submission,
scheduling, the result's trip back) is shared by the frames of a chunk
(:mod:`skysolve.batch.executors`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

from .. import _args
from ..errors import BatchTerminated, InvalidArgumentError, InvalidTypeError, warn_caller
from .executors import DatabaseHandle, _is_dask_client, as_executor

__all__ = ["DISTRIBUTED_MISSING", "LOCAL_KINDS", "TRIM_CONFIG", "WORKER_CONFIG", "BatchTerminated",
           "LocalPool", "connect", "default_jobs", "open_executor"]

#: The Dask setting that makes workers trim their heap at every free (see the notes).
TRIM_CONFIG = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"

#: Dask settings for workers that run skysolve batches (see the module notes): no
#: MALLOC_TRIM_THRESHOLD_, and less background work. Used for the LocalCluster of
#: ``client="local"``; docs/batch.rst gives them as YAML for other clusters.
WORKER_CONFIG: dict[str, Any] = {
    TRIM_CONFIG: None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}

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


#: Seconds between a worker's checks that the process that started it is still there.
PARENT_POLL_S = 0.5


@contextlib.contextmanager
def sigterm_stops_batch() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`BatchTerminated` here.

    Without it SIGTERM ends this process at once: no ``finally`` runs, so the
    pool is never shut down (its workers, blocked on the task queue whose other
    ends they hold themselves, never exit) and the frames since the last
    rewrite of the results table are lost. Only the main thread can receive
    signals, and a handler the program installed itself is left alone.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL):
        yield
        return

    def terminated(_signum: int, _frame: Any) -> None:
        # a second SIGTERM must not cut short the cleanup the first one starts: `timeout`
        # signals its command and then the command's whole process group
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise BatchTerminated

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _worker_init(owner: int | None) -> None:
    """Set up a worker process: Ctrl-C is left to the parent, which stops the batch
    cleanly, and the worker ends itself once its parent is gone.

    A parent killed outright (SIGKILL, the out-of-memory killer, or SIGTERM
    where :func:`sigterm_stops_batch` could not handle it) cannot shut its
    pool down; its workers would wait for tasks forever. ``owner`` is the
    pool's process when it is the worker's parent (fork, spawn): a parent
    already gone before this ran is then seen too. None: the parent is an
    intermediary (forkserver), which ends with the pool's process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a worker forked while sigterm_stops_batch was on inherited its handler: a worker told
    # to stop would raise there and send BatchTerminated back as its task's result
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid() if owner is None else owner
    threading.Thread(target=_watch_parent, args=(parent,), name="skysolve-parent-watch",
                     daemon=True).start()


#: Bytes written at a time to the result pipe of a pool whose workers were ended, so
#: that its reader, stuck in a result a worker did not finish writing, returns.
_FILLER = bytes(1 << 16)


def _release_result_reader(thread: threading.Thread | None, queue: Any,
                           timeout: float) -> None:
    """Let the result-reading ``thread`` of a process pool whose workers were ended return
    (``queue``: the pool's result queue).

    A worker ended while it wrote a result (under load, a large result waits in
    the pipe for the reader) leaves part of it in the pipe; the pool's thread
    then waits for the rest forever, as this process also holds the pipe's
    writing end, and the interpreter, which joins that thread on its way out,
    never exits (1 in 3 SIGTERMs of a 2-worker batch on a loaded 2-core
    machine). Writing to the pipe completes the message; the thread fails to
    read it, marks the pool broken and returns, as when a worker dies alone.
    A thread that returns by itself (the workers' deaths seen) is waited for
    first and gets nothing.
    """
    if thread is None or queue is None:  # a thread pool, or one that never started
        return
    deadline = time.monotonic() + timeout
    thread.join(min(0.2, timeout))
    try:
        fd = queue._writer.fileno()
        os.set_blocking(fd, False)  # a full pipe must not stop this process in turn
    except (OSError, ValueError):  # closed: the thread is gone with it
        return
    while thread.is_alive() and time.monotonic() < deadline:
        try:
            os.write(fd, _FILLER)
        except OSError:  # full (the reader is not reading) or closed
            pass
        thread.join(0.05)


def _quiet_cancelled_race(thread: threading.Thread | None) -> Any:
    """Keep the process pool's managing ``thread`` from printing a traceback when it
    dies of ``InvalidStateError`` while the pool is ended.

    Python 3.11's pool, finding its workers gone, sets its broken-pool error on every
    pending task, also on one this process cancelled a moment before (the shutdown's
    ``cancel_futures``, or the batch's own cancels): the thread then dies of
    ``InvalidStateError`` and ``threading`` prints its traceback on stderr (1 SIGTERM
    in ~50 on a loaded 2-core machine). Nothing is lost: the tasks were being thrown
    away. Any other thread's exception, or another exception, is reported as before.
    Returns ``restore()``, which puts the previous hook back once the thread is gone.
    """
    previous = threading.excepthook

    def hook(args: Any) -> None:
        if args.thread is thread and issubclass(args.exc_type, cf.InvalidStateError):
            return
        previous(args)

    def restore() -> None:
        if threading.excepthook is hook and not (thread is not None and thread.is_alive()):
            threading.excepthook = previous

    if thread is not None:
        threading.excepthook = hook
    return restore


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
        direct = multiprocessing.get_start_method() in ("fork", "spawn")
        return cf.ProcessPoolExecutor(self._max_workers, initializer=_worker_init,
                                      initargs=(os.getpid() if direct else None,))

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        return self._pool.submit(fn, *args, **kwargs)

    def restart(self) -> None:
        """Replace a broken pool by a new one (the old one's tasks are lost)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate(self, timeout: float = 5.0) -> None:
        """Stop now: cancel the tasks not started and end the worker processes (their
        tasks' results are lost; worker threads finish the task they run)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        # (taken before the shutdown, which drops the pool's references to them)
        reader = (getattr(self._pool, "_executor_manager_thread", None),
                  getattr(self._pool, "_result_queue", None))
        restore = _quiet_cancelled_race(reader[0])
        self._pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in processes:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        _release_result_reader(*reader, timeout)
        restore()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, BatchTerminated | KeyboardInterrupt):
            # the results in flight would be thrown away: waiting for them only risks the
            # SIGKILL that follows a SIGTERM not obeyed in time, and after Ctrl-C kept the
            # command running for seconds (every chunk handed out, up to 8 frames a
            # worker), where a second Ctrl-C left it hung at exit in multiprocessing's join
            with _interrupts_held():
                self.terminate()
        else:
            self.shutdown(wait=True)
        return False


@contextlib.contextmanager
def _interrupts_held() -> Any:
    """Ctrl-C ignored meanwhile (in the main thread; elsewhere nothing to hold): a second
    one while the workers are being ended would leave them running, the exit waiting for
    them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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

        with dask.config.set(WORKER_CONFIG):  # see the module notes
            cluster = LocalCluster(n_workers=jobs or default_jobs(), threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   preload=[__name__])  # its workers run dask_setup
        dask_client = Client(cluster)
        return dask_client, [dask_client, cluster]
    try:
        dask_client = Client(client.strip(), timeout="20s")
    except OSError as exc:
        raise OSError(f"cannot reach the Dask scheduler at {client}: {exc}") from None
    return dask_client, [dask_client]


def dask_setup(worker: Any) -> None:
    """Set up a worker of the ``LocalCluster`` of ``client="local"`` (a Dask preload).

    Ctrl-C on a terminal signals the whole process group, and the cluster's
    worker processes are in it: each would die printing a ``KeyboardInterrupt``
    traceback (and its nanny start another) while the client stops the batch,
    cancels its tasks and closes the cluster. They leave Ctrl-C to the client,
    as the workers of a :class:`LocalPool` do.

    Parameters
    ----------
    worker : distributed.Worker
        The worker starting (unused).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        warn_caller(
            f"{len(trimmed)} Dask worker(s) run with MALLOC_TRIM_THRESHOLD_={value} (Dask's "
            "default), which makes every frame's image buffers fresh memory: skysolve's "
            "per-frame work then costs ~1.6x the CPU time. "
            "Start the workers with it unset (dask config "
            f"{TRIM_CONFIG}: null); see docs/batch.rst", RuntimeWarning)
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

    Notes
    -----
    While the executor is open, SIGTERM raises :class:`BatchTerminated` in the
    main thread (:func:`sigterm_stops_batch`); local worker processes are then
    ended at once, and a cluster started here is closed.
    """
    with sigterm_stops_batch(), _executor(client, jobs, database, items, kind, prepare) as ex:
        yield ex


@contextlib.contextmanager
def _executor(client: Any, jobs: int | None, database: DatabaseHandle | None,
              items: int | None, kind: str, prepare: Any) -> Iterator[Any]:
    """:func:`open_executor` without its signal handling."""
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
        yield as_executor(dask_client, owns_cluster=_is_local(client))
    finally:
        for thing in owned:
            thing.close()
