"""Running one task per frame, serially or on an executor, and sharing a database.

An *executor* is ``None`` (run here, in order) or any object with the
``map(fn, *iterables)`` method of :class:`concurrent.futures.Executor`
(a process or thread pool). :func:`run_tasks` returns the results in input
order either way, with a progress bar on a terminal.

A task that needs the database receives a :class:`DatabaseHandle`. In this
process the handle holds the database itself; sent to another process it
travels as the database's file path and is opened there memory-mapped, once
per process, so a pool never pickles hundreds of megabytes per task. A
database that has no file (built in memory and never saved) travels as its
arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .._progress import progress_bar

__all__ = ["DatabaseHandle", "run_tasks"]

# databases opened in this process, by file path
_OPENED: dict[str, Any] = {}


def _open(path: str, cls: type) -> Any:
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

    def __reduce__(self):
        if self._path is not None:
            return (_handle_from_path, (self._path, self._cls))
        return (DatabaseHandle, (self._db,))


def _handle_from_path(path: str, cls: type) -> DatabaseHandle:
    handle = DatabaseHandle.__new__(DatabaseHandle)
    handle._db, handle._path, handle._cls = None, path, cls
    return handle


def run_tasks(fn: Callable[..., Any], items: Sequence[Any] | Iterable[Any], *,
              executor: Any = None, progress: bool | None = None,
              desc: str = "frames") -> list[Any]:
    """``[fn(item) for item in items]``, on ``executor`` if given, in input order.

    ``fn`` must be picklable (a module-level function, or a
    :func:`functools.partial` of one) when the executor runs it in other
    processes.
    """
    items = list(items)
    with progress_bar(len(items), desc, progress, unit="frame") as bar:
        results = []
        mapped = map(fn, items) if executor is None else executor.map(fn, items)
        for result in mapped:
            results.append(result)
            bar.update(1)
    return results
