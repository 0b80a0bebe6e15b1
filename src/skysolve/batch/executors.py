"""Running one task per frame, serially or on an executor, and sharing a database.

An *executor* is ``None`` (run here, in order), any object with the
``submit``/``map`` methods of :class:`concurrent.futures.Executor` (a process
or thread pool, :class:`skysolve.batch.pools.LocalPool`), or a
``dask.distributed.Client`` (its tasks then run on the Dask cluster).
:func:`iter_tasks` yields each task's result as it finishes, with its input
index; :func:`run_tasks` returns them in input order, with a progress bar on a
terminal.

Frames travel in chunks. A task costs its executor a round trip whatever
its size: on Dask, the client's submission, the scheduler's transitions, the
worker's bookkeeping and the result's trip back, a few milliseconds of CPU
spread over three processes (measured ~9 ms a task on a loaded 2-core
machine, ~10 % of a 2048x2048 frame's work); a process pool's pipe and
pickling cost less, but not nothing. So consecutive items share a task: a
chunk holds up to :data:`MAX_CHUNK` items, and fewer as the queue runs down
(``remaining // (4 * workers)``, guided self-scheduling), so that the batch
still ends with single items spread over every worker instead of one worker
finishing a long chunk alone. Results are yielded per item all the same.

Worker deaths lose nothing. A process pool whose worker dies (killed, out of
memory) breaks: the pool is started afresh (:meth:`LocalPool.restart`) and
the frames that were in it run again, those that were in it when it broke one
at a time, so that a frame which itself kills its worker is found and
reported (``lost``) instead of taking innocent frames down with it. Dask
re-runs the tasks of a dead worker itself and gives up on a task after
several deaths (``KilledWorker``): a chunk's items are then tried again one
task each, and a single item's is reported the same way. Every
input yields exactly one result. A Dask cluster left with no workers at all (its
nannies gave up restarting them) ends a batch with :class:`WorkerLostError` when
the cluster was started for it, and is waited for with a warning otherwise
(:data:`NO_WORKERS_S`): an adaptive or queued cluster may yet gain workers.

A task that needs the database receives a :class:`DatabaseHandle`. In this
process the handle holds the database itself; sent to another process it
travels as the database's file path and is opened there memory-mapped, once
per process, so a pool never pickles hundreds of megabytes per task. A
database that has no file (built in memory and never saved) travels as its
arrays.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._progress import progress_bar

__all__ = ["DatabaseHandle", "WorkerLostError", "as_executor", "iter_tasks", "run_tasks"]

# databases opened in this process, by file path
_OPENED: dict[str, Any] = {}
_OPEN_LOCK = threading.Lock()

#: Times a task's worker process may die while the task runs alone before it is given up.
MAX_WORKER_DEATHS = 3

#: Most items in one task (see the module notes on chunks).
MAX_CHUNK = 8

#: Seconds a Dask cluster may have no workers before a batch says so (see
#: ``_DaskExecutor._check_workers``), and how often a wait checks (seconds).
NO_WORKERS_S = 60.0
NO_WORKERS_POLL_S = 5.0


def _open(path: str, cls: type) -> Any:
    with _OPEN_LOCK:  # a Dask worker runs tasks on several threads: map the file once
        db = _OPENED.get(path)
        if db is None:
            # the sending process loaded (and verified) this file already
            db = _OPENED[path] = cls.load_from_file(path, mmap=True, verify=False)
    return db


class DatabaseHandle:
    """A database as tasks receive it: the object here, its file path elsewhere.

    Parameters
    ----------
    database : PatternDatabase
        The database; its ``file_path`` (set when it was loaded or saved) is
        what a pickled handle carries.
    """

    __slots__ = ("_db", "_path", "_cls")

    def __init__(self, database: Any) -> None:
        self._db = database
        path = getattr(database, "file_path", None)
        self._path = None if path is None else os.fspath(Path(path).resolve())
        self._cls = type(database)

    @property
    def database(self) -> Any:
        """The database (opened memory-mapped on first use in another process)."""
        if self._db is None:
            self._db = _open(self._path, self._cls)
        return self._db

    def for_workers(self) -> Any:
        """The database as worker processes hold it: memory-mapped from its file.

        Opened here once; worker processes forked from this one afterwards
        inherit it (and whatever was prepared for it) instead of opening it
        again. Without a file, the database itself.
        """
        return self.database if self._path is None else _open(self._path, self._cls)

    @property
    def path(self) -> str | None:
        """The database file a pickled handle opens (None: it travels as its arrays)."""
        return self._path

    def __reduce__(self):
        if self._path is not None:
            return (_handle_from_path, (self._path, self._cls))
        return (DatabaseHandle, (self._db,))


def _handle_from_path(path: str, cls: type) -> DatabaseHandle:
    handle = DatabaseHandle.__new__(DatabaseHandle)
    handle._db, handle._path, handle._cls = None, path, cls
    return handle


class WorkerLostError(RuntimeError):
    """A task's worker died every time the task ran (see :data:`MAX_WORKER_DEATHS`)."""


def _is_dask_client(obj: Any) -> bool:
    return hasattr(obj, "get_executor") and hasattr(obj, "scheduler_info")


class _DaskExecutor:
    """A Dask client's ``submit``, with its own futures and waits.

    Not ``Client.get_executor()``: its executor copies each Dask future into a
    :class:`concurrent.futures.Future` by reading the result and then the
    future's status, and a worker that dies between the two (taking the result
    with it) turns a finished task into a ``ValueError`` of Dask's own. A Dask
    future's ``result()`` instead waits for the lost result to be computed again.
    Tasks are submitted impure (a fresh key per task: two frames with equal
    arguments are still two tasks).
    """

    def __init__(self, client: Any, owns_cluster: bool = False) -> None:
        self._client = client
        self._owns_cluster = owns_cluster
        self._idle_since: float | None = None  # since when the cluster has had no workers
        self._warned = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._client.submit(fn, *args, pure=False)

    def wait_first(self, futures: list[Any]) -> set[Any]:
        """The futures that are done, once at least one is; see :meth:`_check_workers`."""
        from distributed import wait

        while True:
            try:
                return wait(futures, timeout=NO_WORKERS_POLL_S,
                            return_when="FIRST_COMPLETED").done
            except TimeoutError:
                self._check_workers()

    def _check_workers(self) -> None:
        """A cluster that has had no workers for :data:`NO_WORKERS_S` seconds: a cluster
        started here (``client="local"``) has lost them for good (frames that killed
        their workers until the nannies gave up): :class:`WorkerLostError`; another
        may yet gain some (an adaptive or queued cluster): a ``RuntimeWarning``, once,
        instead of waiting without a word."""
        import time

        try:
            workers = len(self._client.scheduler_info()["workers"])
        except Exception:  # noqa: BLE001 - only a check: the wait goes on
            return
        now = time.monotonic()
        if workers:
            self._idle_since = None
            return
        if self._idle_since is None:
            self._idle_since = now
        idle = now - self._idle_since
        if idle < NO_WORKERS_S:
            return
        if self._owns_cluster:
            raise WorkerLostError(f"the Dask cluster started for this batch has had no "
                                  f"workers for {idle:.0f} s (frames that killed their "
                                  f"workers until it stopped restarting them?)")
        if not self._warned:
            import warnings

            self._warned = True
            warnings.warn(f"the Dask cluster has had no workers for {idle:.0f} s: the batch "
                          f"waits for some to join (Ctrl-C stops it)", RuntimeWarning,
                          stacklevel=2)


def as_executor(executor: Any, owns_cluster: bool = False) -> Any:
    """``executor`` as something with ``submit``: a Dask client becomes a thin adapter.

    ``None`` stays ``None`` (serial). ``owns_cluster``: the Dask client's cluster was
    started for this batch (a cluster left without workers then ends the batch with
    :class:`WorkerLostError`; another is waited for, with a warning).
    """
    if executor is not None and _is_dask_client(executor):
        return _DaskExecutor(executor, owns_cluster)
    return executor


def _wait_first(executor: Any, futures: list[Any]) -> set[Any]:
    """The futures that are done, once at least one is."""
    wait_first = getattr(executor, "wait_first", None)
    if wait_first is not None:
        return wait_first(futures)
    return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done


def _worker_died(exc: BaseException) -> bool:
    """Whether a task failed because its pool's worker process died, not by its own error."""
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(exc, BrokenProcessPool)


def _workers(executor: Any) -> int:
    """The executor's workers (threads of every Dask worker), a sizing hint."""
    workers = getattr(executor, "_max_workers", None)
    if not workers and hasattr(executor, "_client"):  # a Dask client's adapter
        try:
            workers = sum(w.get("nthreads", 1)
                          for w in executor._client.scheduler_info()["workers"].values())
        except Exception:  # noqa: BLE001 - only a sizing hint
            workers = None
    return int(workers or 16)


def chunk_size(remaining: int, workers: int) -> int:
    """Items in the next task: up to :data:`MAX_CHUNK`, fewer as the queue runs down."""
    return max(1, min(MAX_CHUNK, remaining // (4 * max(1, workers))))


def _run_chunk(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """One task: ``fn`` over consecutive items, here, in order."""
    return [fn(item) for item in items]


class _Flight:
    """The tasks in flight on an executor, the queue, and the worker deaths seen."""

    def __init__(self, executor: Any, fn: Callable[[Any], Any], items: Sequence[Any],
                 lost: Callable[[Any, str], Any] | None):
        self.executor, self.items, self.lost = executor, items, lost
        self.chunk_fn = functools.partial(_run_chunk, fn)  # one object: pickled once by Dask
        self.queue: deque[int] = deque(range(len(items)))
        self.suspects: deque[int] = deque()  # in a pool when it broke: they run alone
        self.retry: deque[int] = deque()  # of a chunk Dask gave up on: one task each
        self.deaths: dict[int, int] = {}
        self.running: dict[cf.Future, list[int]] = {}
        self.workers = _workers(executor)
        self.window = 4 * self.workers + 4  # tasks: every worker busy, the queue light

    def __bool__(self) -> bool:
        return bool(self.queue or self.suspects or self.retry or self.running)

    def fill(self) -> None:
        """Submit tasks up to the window; a suspect runs only alone.

        A pool that breaks while tasks are being submitted refuses the next one
        (``BrokenProcessPool`` from ``submit``, not from a task: a worker died a moment
        ago, which a loaded machine makes likelier). The tasks in flight then fail with
        it and are handled as any break (:meth:`broken`); with none in flight the pool
        is started afresh here.
        """
        try:
            if self.suspects:
                if not self.running:
                    self._submit([self.suspects.popleft()], self.suspects)
                return
            while self.retry and len(self.running) < self.window:
                self._submit([self.retry.popleft()], self.retry)
            while self.queue and len(self.running) < self.window:
                n = chunk_size(len(self.queue), self.workers)
                self._submit([self.queue.popleft() for _ in range(min(n, len(self.queue)))],
                             self.queue)
        except Exception as exc:
            if not _worker_died(exc):
                raise
            if not self.running:
                self._restart(exc)

    def _submit(self, chunk: list[int], source: deque[int]) -> None:
        """Submit ``chunk`` (taken from ``source``, where it goes back if refused)."""
        try:
            fut = self.executor.submit(self.chunk_fn, [self.items[i] for i in chunk])
        except BaseException:
            source.extendleft(reversed(chunk))
            raise
        self.running[fut] = chunk

    def give_up(self, i: int, exc: BaseException, deaths: int) -> Any:
        reason = f"its worker process died {deaths} times while running it"
        if self.lost is None:
            raise WorkerLostError(reason) from exc
        return self.lost(self.items[i], reason)

    def killed(self, chunk: list[int], exc: BaseException) -> list[tuple[int, Any]]:
        """Dask gave up on a task (its workers died): its items again one by one, or a
        single item given up."""
        if len(chunk) > 1:
            self.retry.extendleft(reversed(chunk))
            return []
        return [(chunk[0], self.give_up(chunk[0], exc, MAX_WORKER_DEATHS))]

    def broken(self, chunk: list[int], exc: BaseException) -> list[tuple[int, Any]]:
        """The pool broke while running ``chunk`` (and the others in flight)."""
        lost = dict.fromkeys([*chunk, *(i for c in self.running.values() for i in c)])
        self.running.clear()
        given_up = []
        if len(lost) == 1:  # it ran alone: the death was its doing (or bad luck)
            i = chunk[0]
            self.deaths[i] = self.deaths.get(i, 0) + 1
            if self.deaths[i] >= MAX_WORKER_DEATHS:
                given_up.append((i, self.give_up(i, exc, self.deaths[i])))
                lost.clear()
        self.suspects.extendleft(reversed(list(lost)))
        self._restart(exc)
        return given_up

    def _restart(self, exc: BaseException) -> None:
        """Start the broken pool afresh (its worker died: ``exc``)."""
        restart = getattr(self.executor, "restart", None)
        if restart is None:
            raise WorkerLostError("a worker process died and the executor cannot be restarted "
                                  "(skysolve.batch.LocalPool can)") from exc
        restart()

    def cancel(self) -> None:
        for fut in self.running:
            fut.cancel()
        self.running.clear()


def iter_tasks(fn: Callable[[Any], Any], items: Sequence[Any] | Iterable[Any], *,
               executor: Any = None, lost: Callable[[Any, str], Any] | None = None
               ) -> Iterator[tuple[int, Any]]:
    """``(index, fn(item))`` for every item, as the tasks finish.

    Parameters
    ----------
    fn : callable
        The task; picklable (a module-level function or a
        :func:`functools.partial` of one) when it runs in other processes.
    items : sequence
    executor : optional
        See the module notes (default: serially, here, in order).
    lost : callable, optional
        ``lost(item, reason) -> result`` for a task whose worker died
        every time it ran; default: raise :class:`WorkerLostError`.

    A task's own exception is raised here (the remaining tasks are cancelled);
    stopping the iteration early, or Ctrl-C, cancels the tasks not started.
    """
    items = list(items)
    executor = as_executor(executor)
    if executor is None:
        yield from ((i, fn(item)) for i, item in enumerate(items))
        return
    if not hasattr(executor, "submit"):  # a map-only executor: in order
        yield from enumerate(executor.map(fn, items))
        return
    flight = _Flight(executor, fn, items, lost)
    try:
        while flight:
            flight.fill()
            done = _wait_first(executor, list(flight.running))
            for fut in done:
                chunk = flight.running.pop(fut, None)
                if chunk is None:  # lost with a broken pool a moment ago
                    continue
                exc = fut.exception()
                if exc is None:
                    yield from zip(chunk, fut.result(), strict=True)
                elif type(exc).__name__ == "KilledWorker":  # Dask gave up on it
                    yield from flight.killed(chunk, exc)
                elif _worker_died(exc):
                    yield from flight.broken(chunk, exc)
                else:
                    raise exc
    finally:
        flight.cancel()


def run_tasks(fn: Callable[..., Any], items: Sequence[Any] | Iterable[Any], *,
              executor: Any = None, progress: bool | None = None,
              desc: str = "frames", lost: Callable[[Any, str], Any] | None = None) -> list[Any]:
    """``[fn(item) for item in items]``, on ``executor`` if given, in input order.

    See :func:`iter_tasks` for ``executor`` and ``lost``; ``fn`` must be
    picklable when the executor runs it in other processes.
    """
    items = list(items)
    results: list[Any] = [None] * len(items)
    with progress_bar(len(items), desc, progress, unit="frame") as bar:
        for i, result in iter_tasks(fn, items, executor=executor, lost=lost):
            results[i] = result
            bar.update(1)
    return results
