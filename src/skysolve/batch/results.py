"""What a batch gives back: one :class:`FrameResult` per frame, and the results table.

A frame's *status* is its solve's (``'match_found'``, ``'no_match'``,
``'too_few'``, ``'timeout'``, ``'invalid_config'``) or ``'error'`` when the
frame could not be processed at all (unreadable or corrupt file, bad input):
then :attr:`FrameResult.error` says why, in one line.

The results table (:class:`ResultsTable`) is an ECSV file (astropy's
self-describing text table: ``Table.read(path)``) with one row per frame,
rewritten as frames finish. A row is known by its frame's file (the ``path``
column: the path made absolute with symbolic links, ``.`` and ``..`` resolved,
so that ``a.fits``, ``./a.fits``, ``/data/a.fits`` and a link to it name one
file; ``frame N`` for a frame that is no file) and, for a file given more than
once, by which of its occurrences it is (:func:`source_keys`): each input has
its row, whatever its spelling, and a resumed run matches the n-th occurrence
of a file to the n-th row of that file (in the order of the ``index`` column),
so that a batch whose inputs were reordered, respelled or extended still
resumes by file; its ``index`` column is then the resumed run's input order (a row of
a frame that run did not name keeps its own run's). The ``source`` column keeps the
spelling of the input that solved the frame.
Every write goes to a temporary file that is then
renamed over the table, so a reader -- or a run interrupted at any moment --
only ever sees a whole table. Rows are formatted by astropy once, when their
frame finishes; a rewrite only joins the text, so keeping the table current
costs little even for tens of thousands of frames.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._files import write_text_atomic
from ..errors import InvalidArgumentError

__all__ = ["FrameResult", "BatchResults", "ResultsTable", "TableSolution", "COLUMNS",
           "source_label", "source_path", "source_keys"]

#: Statuses of a frame that was processed: done, not redone by ``resume``.
FINAL_STATUSES = ("match_found", "no_match", "too_few", "timeout", "invalid_config")

#: The table's columns: name, numpy dtype, and the value of "not known".
COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("index", "i8", -1), ("source", "str", ""), ("path", "str", ""), ("status", "str", ""),
    ("ra_deg", "f8", math.nan), ("dec_deg", "f8", math.nan), ("roll_deg", "f8", math.nan),
    ("fov_deg", "f8", math.nan), ("num_matches", "i8", -1), ("rmse_arcsec", "f8", math.nan),
    ("probability", "f8", math.nan), ("num_centroids", "i8", -1),
    ("image_width", "i8", -1), ("image_height", "i8", -1),
    ("read_s", "f8", math.nan), ("extract_s", "f8", math.nan), ("solve_s", "f8", math.nan),
    ("total_s", "f8", math.nan), ("cpu_s", "f8", math.nan), ("worker", "str", ""),
    ("error", "str", ""),
)
_TIMINGS = ("read", "extract", "solve", "total", "cpu")


def _text(value: str) -> str:
    """``value`` as one line of text UTF-8 can hold: a file name's undecodable bytes (kept
    by Python as lone surrogates) become ``\\xNN`` escapes and line breaks ``\\n``, so that
    the table can be written and read back, one line per row."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "backslashreplace")
        value = raw.decode("utf-8", "backslashreplace")
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "\\r").replace("\n", "\\n")
    return value


def source_label(source: Any, index: int) -> str:
    """How a frame is named in tables and messages: its path, or ``frame N``."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return _text(os.fsdecode(path) if isinstance(path, bytes) else path)
    return f"frame {index}"


def source_path(source: Any) -> str:
    """The file a path frame names, as the results table's ``path`` column holds it:
    absolute, symbolic links, ``.`` and ``..`` resolved (``os.path.realpath``); ``""``
    for a frame that is no path."""
    if not isinstance(source, str | os.PathLike):
        return ""
    path = os.path.realpath(os.fspath(source))
    return _text(os.fsdecode(path) if isinstance(path, bytes) else path)


#: The label of a frame that is no file (:func:`source_label`).
_FRAME_LABEL = re.compile(r"frame \d+")

#: A row of the results table: its frame's identity (its ``path``, else its label) and
#: which occurrence of it.
RowKey = tuple[str, int]


def _row_keys(identities: Iterable[str]) -> list[RowKey]:
    """``(identity, n)`` for each identity, ``n`` counting its earlier occurrences (from 0)."""
    seen: dict[str, int] = {}
    keys = []
    for identity in identities:
        keys.append((identity, seen.get(identity, 0)))
        seen[identity] = keys[-1][1] + 1
    return keys


def _identity(row: dict[str, Any]) -> str:
    """The identity of a table row's frame: its file, else its label (``frame N``)."""
    return row["path"] or row["source"]


def source_keys(sources: Iterable[Any]) -> list[RowKey]:
    """Each frame's row key: ``(identity, n)`` for the n-th (from 0) input naming the same
    file (:func:`source_path`, however spelt), or with the same label if it is no file."""
    return _row_keys(source_path(source) or source_label(source, i)
                     for i, source in enumerate(sources))


#: What the results table holds of a solution (columns and attributes of the same name).
TABLE_SOLUTION_FIELDS = ("ra_deg", "dec_deg", "roll_deg", "fov_deg", "num_matches",
                         "rmse_arcsec", "probability")


@dataclass(frozen=True)
class TableSolution:
    """A solution as the results table holds it: the ``result`` of a frame that a
    resumed batch took from the table instead of solving it again. Truthy.

    It has the table's fields of a ``SolveResult`` -- ``status``, ``ra_deg``,
    ``dec_deg``, ``roll_deg``, ``fov_deg``, ``num_matches``, ``rmse_arcsec``,
    ``probability`` -- and ``solve_time_ms`` (the table's ``solve_s``, the
    worker's time in the solve). The rest of a solution (the attitude matrix,
    the matched stars, the WCS) is not in the table; asking for it says so.
    """

    ra_deg: float
    dec_deg: float
    roll_deg: float
    fov_deg: float
    num_matches: int
    rmse_arcsec: float
    probability: float
    solve_time_ms: float
    status: str = "match_found"

    def __bool__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # (copy, pickle and friends probe for these)
            raise AttributeError(name)
        raise AttributeError(
            f"{name}: this solution was taken from the results table (resume), which holds "
            f"only {', '.join(TABLE_SOLUTION_FIELDS)} and solve_time_ms; solve the frame "
            "again (overwrite, or another results table) for the rest")

    def to_dict(self) -> dict[str, Any]:
        """The fields, as ``SolveResult.to_dict`` names them."""
        return {"status": self.status, **{k: getattr(self, k) for k in TABLE_SOLUTION_FIELDS},
                "solve_time_ms": self.solve_time_ms}


def _table_result(row: dict[str, Any]) -> Any:
    """The ``result`` of a frame done in the table: its solution, or its failure."""
    solve_ms = row["solve_s"] * 1000.0
    if row["status"] == "match_found":
        return TableSolution(**{k: row[k] for k in TABLE_SOLUTION_FIELDS},
                             solve_time_ms=solve_ms)
    from ..solver.result import SolveFailure

    return SolveFailure(row["status"], solve_ms, "taken from the results table (resume)")


@dataclass
class FrameResult:
    """The outcome of one frame of a batch.

    Attributes
    ----------
    source : path, array or centroids
        The frame as given.
    status : str
        The solve's status, or ``'error'`` (see the module notes).
    result : SolveResult or SolveFailure or TableSolution or None
        The solve (None on an error). A frame a resumed run took from the
        results table has the table's solution (:class:`TableSolution`), or a
        ``SolveFailure`` with the status the table holds.
    error : str or None
        Why the frame could not be processed (one line), else None.
    timings : dict
        Seconds spent on the worker: ``read``, ``extract``, ``solve``, ``total``
        (wall time), and ``cpu`` (CPU time of the worker's thread for the frame).
    num_centroids : int or None
    image_shape : (int, int) or None
        ``(height, width)`` of an image frame.
    worker : str
        ``host:pid`` of the process that did the work.
    resumed : bool
        Taken from an existing results table, not processed in this run.
    info : dict
        Extras of a command's task (files written, ...).
    traceback : str or None
        The traceback of an error, for debugging.
    """

    source: Any
    status: str
    result: Any = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    num_centroids: int | None = None
    image_shape: tuple[int, int] | None = None
    worker: str = ""
    resumed: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None

    def __bool__(self) -> bool:
        return self.status == "match_found"

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else f"result={self.result!r}"
        return (f"FrameResult(source={_short(self.source)}, status={self.status!r}, {what}, "
                f"total_s={self.timings.get('total', math.nan):.3f})")

    def row(self, index: int) -> dict[str, Any]:
        """The frame's row of the results table."""
        row = {name: missing for name, _, missing in COLUMNS}
        res = self.result
        row.update(index=index, source=source_label(self.source, index),
                   path=source_path(self.source), status=self.status,
                   worker=self.worker, error=_text(self.error or ""))
        if res:
            row.update({k: getattr(res, k) for k in TABLE_SOLUTION_FIELDS})
        if self.num_centroids is not None:
            row["num_centroids"] = self.num_centroids
        if self.image_shape is not None:
            row["image_height"], row["image_width"] = self.image_shape
        for key in _TIMINGS:
            if key in self.timings:
                row[f"{key}_s"] = self.timings[key]
        return row

    @classmethod
    def from_row(cls, source: Any, row: dict[str, Any]) -> FrameResult:
        """A frame a resumed run skips, from its row of the table."""
        shape = None if row["image_height"] < 0 else (row["image_height"], row["image_width"])
        return cls(source, row["status"], _table_result(row), error=row["error"] or None,
                   timings={k: row[f"{k}_s"] for k in _TIMINGS},
                   num_centroids=None if row["num_centroids"] < 0 else row["num_centroids"],
                   image_shape=shape, worker=row["worker"], resumed=True)


def _short(source: Any) -> str:
    if isinstance(source, np.ndarray):
        return f"<array {source.shape}>"
    text = repr(source)
    return text if len(text) < 60 else text[:57] + "..."


class BatchResults(list):
    """The :class:`FrameResult` of every frame, in input order, and a summary."""

    #: Wall time of the batch, seconds.
    seconds: float = math.nan

    @property
    def num_solved(self) -> int:
        """Frames solved."""
        return sum(r.status == "match_found" for r in self)

    @property
    def num_unsolved(self) -> int:
        """Frames processed without a solution (no match, too few stars, timeout, ...)."""
        return sum(r.status not in ("match_found", "error") for r in self)

    @property
    def num_failed(self) -> int:
        """Frames that could not be processed (status ``'error'``)."""
        return sum(r.status == "error" for r in self)

    def summary(self) -> str:
        """One line: frames, solved / unsolved / failed, seconds, rate."""
        n = len(self)
        resumed = sum(r.resumed for r in self)
        done = n - resumed
        rate = done / self.seconds if self.seconds > 0 else math.nan
        text = (f"{n} frame{'s' if n != 1 else ''}: {self.num_solved} solved, "
                f"{self.num_unsolved} unsolved, {self.num_failed} failed")
        if resumed:
            text += f" ({resumed} from the results table)"
        return text + f" in {self.seconds:.1f} s ({rate:.2f} frames/s)"


class ResultsTable:
    """The ECSV results table of a batch, kept current as frames finish.

    Parameters
    ----------
    path : path-like
        The table file (``.ecsv``).
    resume : bool
        Keep the rows of an existing table; frames with a final status there
        (:data:`FINAL_STATUSES`; not ``'error'``) are not processed again.
    overwrite : bool
        Start a new table even if the file exists.
    min_interval_s : float
        Shortest time between two rewrites (the last one is always made).
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool = False,
                 overwrite: bool = False, min_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        if resume and overwrite:
            raise InvalidArgumentError("give resume or overwrite, not both")
        if self.path.is_dir():
            raise InvalidArgumentError(f"results table {self.path} is a directory")
        try:  # (now, not at the first rewrite: after a frame's work, with "File exists")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidArgumentError(
                f"results table {self.path}: its folder {self.path.parent} cannot be made "
                f"({exc.strerror or exc}{': ' + exc.filename if exc.filename else ''})"
            ) from None
        self.rows: dict[RowKey, dict[str, Any]] = {}  # by row key (see the notes), in order
        self._lines: dict[RowKey, str] = {}
        self._pending: list[RowKey] = []
        self._lock = _TableLock(self.path)
        try:
            if self.path.exists():
                if resume:
                    self._read()
                elif not overwrite:
                    raise InvalidArgumentError(
                        f"results table {self.path} exists: resume=True skips the frames "
                        "done there, overwrite=True replaces it")
        except BaseException:
            self._lock.release()
            raise
        self.min_interval_s = min_interval_s
        self._last = -math.inf
        # the first rewrite would otherwise pay for importing astropy's table writer, and
        # the interval between rewrites, set from a rewrite's cost, would start seconds long
        _header()

    def _read(self) -> None:
        from astropy.table import Table

        from ..errors import FileFormatError

        try:
            table = Table.read(self.path, format="ascii.ecsv")
        except Exception as exc:  # noqa: BLE001 - any parse failure is a bad table
            raise FileFormatError(f"{self.path} is not a results table: {exc}") from None
        names = [name for name, _, _ in COLUMNS]
        # (a table written before the path column: its rows are known by their spelling,
        # resolved as a path from the working directory)
        if table.colnames not in (names, [name for name in names if name != "path"]):
            raise FileFormatError(f"{self.path} is not a skysolve results table (columns "
                                  f"{', '.join(table.colnames[:4])}, ...)")
        rows = [{name: _plain(rec[name], missing) if name in table.colnames else missing
                 for name, _, missing in COLUMNS} for rec in table]
        if "path" not in table.colnames:
            # the file a spelling names from here, as a run given that spelling keys it
            # (left empty, a relative path was never found again: every frame re-solved)
            for row in rows:
                if not _FRAME_LABEL.fullmatch(row["source"]):
                    row["path"] = source_path(row["source"])
        # occurrences are counted in input order (the index column), rows kept in file order
        by_index = sorted(range(len(rows)), key=lambda k: rows[k]["index"])
        keys: list[RowKey] = [("", 0)] * len(rows)
        for k, key in zip(by_index, _row_keys(_identity(rows[k]) for k in by_index),
                          strict=True):
            keys[k] = key
        for row, key in zip(rows, keys, strict=True):
            self.rows[key] = row
        self._pending = list(self.rows)  # formatted again at the first flush

    def done(self, identity: str, occurrence: int = 0) -> dict[str, Any] | None:
        """The row of a frame already done (a final status), else None.

        ``identity``, ``occurrence``: the frame's row key (:func:`source_keys`).
        """
        row = self.rows.get((identity, occurrence))
        return row if row is not None and row["status"] in FINAL_STATUSES else None

    def renumber(self, identity: str, occurrence: int, index: int) -> None:
        """Give the row of a frame an earlier run did (:meth:`done`) this run's ``index``:
        the column numbers the frames of the last run in its input order, whatever order
        the runs that solved them had (rows of frames that run did not name keep their
        own run's)."""
        key = (identity, occurrence)
        row = self.rows[key]
        if row["index"] != index:
            row["index"] = index
            self._lines.pop(key, None)
            self._pending.append(key)

    def add(self, row: dict[str, Any], occurrence: int = 0) -> None:
        """Add or replace a frame's row (written at the next :meth:`flush`).

        ``occurrence``: which input naming its frame it is (:func:`source_keys`);
        without it, a second row of a frame replaces the first.
        """
        key = (_identity(row), occurrence)
        self.rows.pop(key, None)
        self._lines.pop(key, None)
        self.rows[key] = row
        self._pending.append(key)

    def close(self) -> None:
        """Write what is pending and let another run take the table."""
        try:
            self.flush(force=True)
        finally:
            self._lock.release()

    def flush(self, force: bool = False) -> None:
        """Rewrite the table (atomically) if rows changed and it is time, or ``force``."""
        now = time.monotonic()
        if not self._pending or (not force and now - self._last < self.min_interval_s):
            return
        keys = [key for key in dict.fromkeys(self._pending) if key in self.rows]
        self._lines.update(zip(keys, _format_rows([self.rows[key] for key in keys]),
                               strict=True))
        body = "".join(self._lines[key] for key in self.rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, _header() + body)
        # (only once written: a write cut short by Ctrl-C or SIGTERM is made again by the
        # final flush)
        self._pending.clear()
        self._last = time.monotonic()
        # rewriting a long table costs time: never spend more than ~5 % on it
        self.min_interval_s = max(self.min_interval_s, 20 * (self._last - now))


class _TableLock:
    """A results table held by one run: an exclusive ``flock`` on ``TABLE.lock`` beside it
    (released by the system when the process ends, however it ends), the file removed
    when the run lets go of it. Two runs given one table (two Slurm jobs, two terminals)
    each rewrote the whole table from their own rows, the last writer's replacing the
    other's, silently; the second is now refused. Where ``fcntl`` is missing (Windows)
    nothing is held."""

    def __init__(self, table: Path) -> None:
        self.path = table.with_name(table.name + ".lock")
        self._fd: int | None = None
        try:
            import fcntl
        except ImportError:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InvalidArgumentError(
                f"results table {table} is in use by another run (its lock "
                f"{self.path.name} is held): give each run a table of its own, or wait for "
                "the other to finish and --resume") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        # (removed first, while held: a run that opens it meanwhile locks a file no one
        # else will, which is harmless once this one is done)
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:  # (a table never closed: its lock still let go)
        with contextlib.suppress(Exception):
            self.release()


def _plain(value: Any, missing: Any) -> Any:
    if np.ma.is_masked(value):
        return missing
    return value.item() if hasattr(value, "item") else value


def _table(rows: Iterable[dict[str, Any]]):
    from astropy.table import Table

    rows = list(rows)
    cols = {}
    for name, dtype, _ in COLUMNS:
        values = [r[name] for r in rows]
        cols[name] = np.array(values, dtype=str) if dtype == "str" else np.array(values, dtype)
    return Table(cols)


def _ecsv(rows: Iterable[dict[str, Any]]) -> list[str]:
    buf = io.StringIO()
    _table(rows).write(buf, format="ascii.ecsv")
    return buf.getvalue().splitlines(keepends=True)


_HEADER: list[str] = []


def _header() -> str:
    """The ECSV header and the column names line (the same for every table)."""
    if not _HEADER:
        lines = _ecsv([dict((name, missing) for name, _, missing in COLUMNS)])
        _HEADER.append("".join(lines[:-1]))
    return _HEADER[0]


def _format_rows(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's data line, formatted by astropy (the header is :func:`_header`)."""
    if not rows:
        return []
    lines = _ecsv(rows)
    return lines[len(lines) - len(rows):]
