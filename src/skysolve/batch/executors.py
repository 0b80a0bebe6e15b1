"""Running one task per frame, serially or on an executor, and sharing a database.

An *executor* is ``None`` (run here, in order), any object with the
``submit``/``map`` methods of :class:`concurrent.futures.Executor` (a process
or thread pool, :class:`skysolve.batch.pools.LocalPool`), or a
``dask.distributed.Client`` (its tasks then run on the Dask cluster).
:func:`iter_tasks` yields each task's result as it finishes, with its input
index; :func:`run_tasks` returns them in input order, with a progress bar on a
terminal.

Worker deaths lose nothing. A process pool whose worker dies (killed, out of
memory) breaks: the pool is started afresh (:meth:`LocalPool.restart`) and
the frames that were in it run again, those that were in it when it broke one
at a time, so that a frame which itself kills its worker is found and
reported (``lost``) instead of taking innocent frames down with it. Dask
re-runs the tasks of a dead worker itself and gives up on a task after
several deaths (``KilledWorker``), which is reported the same way. Every
input yields exactly one result.

A task that needs the database receives a :class:`DatabaseHandle`. In this
process the handle holds the database itself; sent to another process it
travels as the database's file path and is opened there memory-mapped, once
per process, so a pool never pickles hundreds of megabytes per task. A
database that has no file (built in memory and never saved) travels as its
arrays.
"""

from __future__ import annotations

import concurrent.futures as cf
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


def as_executor(executor: Any) -> Any:
    """``executor`` as something with ``submit``: a Dask client becomes its executor.

    ``None`` stays ``None`` (serial). Dask tasks are submitted impure (a fresh
    key per task: two frames with equal arguments are still two tasks).
    """
    if executor is not None and _is_dask_client(executor):
        return executor.get_executor(pure=False)
    return executor


def _worker_died(exc: BaseException) -> bool:
    """Whether a task failed because its pool's worker process died, not by its own error."""
    from concurrent.futures.process import BrokenProcessPool

    return isinstance(exc, BrokenProcessPool)


def _window(executor: Any) -> int:
    """Tasks kept in flight: enough to keep every worker busy, few enough to stay light."""
    workers = getattr(executor, "_max_workers", None)
    if not workers and hasattr(executor, "_client"):  # dask ClientExecutor
        try:
            workers = sum(w.get("nthreads", 1)
                          for w in executor._client.scheduler_info()["workers"].values())
        except Exception:  # noqa: BLE001 - only a sizing hint
            workers = None
    return 4 * int(workers or 16) + 4


class _Flight:
    """The tasks in flight on an executor, the queue, and the worker deaths seen."""

    def __init__(self, executor: Any, fn: Callable[[Any], Any], items: Sequence[Any],
                 lost: Callable[[Any, str], Any] | None):
        self.executor, self.fn, self.items, self.lost = executor, fn, items, lost
        self.queue: deque[int] = deque(range(len(items)))
        self.suspects: deque[int] = deque()  # in a pool when it broke: they run alone
        self.deaths: dict[int, int] = {}
        self.running: dict[cf.Future, int] = {}
        self.window = _window(executor)

    def __bool__(self) -> bool:
        return bool(self.queue or self.suspects or self.running)

    def fill(self) -> None:
        """Submit tasks up to the window; a suspect runs only alone."""
        if self.suspects:
            if not self.running:
                self._submit(self.suspects.popleft())
            return
        while self.queue and len(self.running) < self.window:
            self._submit(self.queue.popleft())

    def _submit(self, i: int) -> None:
        self.running[self.executor.submit(self.fn, self.items[i])] = i

    def give_up(self, i: int, exc: BaseException, deaths: int) -> Any:
        reason = f"its worker process died {deaths} times while running it"
        if self.lost is None:
            raise WorkerLostError(reason) from exc
        return self.lost(self.items[i], reason)

    def broken(self, i: int, exc: BaseException) -> list[tuple[int, Any]]:
        """The pool broke while running task ``i`` (and the others in flight)."""
        lost = dict.fromkeys([i, *self.running.values()])
        self.running.clear()
        given_up = []
        if len(lost) == 1:  # it ran alone: the death was its doing (or bad luck)
            self.deaths[i] = self.deaths.get(i, 0) + 1
            if self.deaths[i] >= MAX_WORKER_DEATHS:
                given_up.append((i, self.give_up(i, exc, self.deaths[i])))
                lost.clear()
        self.suspects.extendleft(reversed(list(lost)))
        restart = getattr(self.executor, "restart", None)
        if restart is None:
            raise WorkerLostError("a worker process died and the executor cannot be restarted "
                                  "(skysolve.batch.LocalPool can)") from exc
        restart()
        return given_up

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
            done, _ = cf.wait(list(flight.running), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                i = flight.running.pop(fut, None)
                if i is None:  # lost with a broken pool a moment ago
                    continue
                exc = fut.exception()
                if exc is None:
                    yield i, fut.result()
                elif type(exc).__name__ == "KilledWorker":  # Dask gave up on it
                    yield i, flight.give_up(i, exc, MAX_WORKER_DEATHS)
                elif _worker_died(exc):
                    yield from flight.broken(i, exc)
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
