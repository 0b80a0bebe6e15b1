"""The job queue in SQLite, each job's files in its own folder of the data directory.

A job is accepted only once its input is whole on disk and its row says
``queued``: the upload is written to a temporary name and renamed, then one
transaction moves the row from ``new`` to ``queued``. Rows are the state
(``new`` → ``queued`` → ``solving`` → ``success`` | ``failure``); on start,
rows left ``new`` (never answered) are dropped and rows left ``solving`` (the
server died under them) go back to ``queued``, so every accepted job finishes.
A job that was running when the server died :data:`MAX_ATTEMPTS` times fails
instead of stopping the server forever.

File names inside a job's folder are fixed by the server (``input.fits``,
``job.wcs``, ...); a user's file name is kept only as text in the row.

The database runs in WAL mode with ``synchronous=FULL``: a committed row
survives the process being killed.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .._files import lock_unsupported
from ..errors import warn_caller

__all__ = ["JobStore", "QueueFull", "MAX_ATTEMPTS", "ACTIVE", "DONE"]

#: Times a job may be running when the server dies before it is given up.
MAX_ATTEMPTS = 3
#: States of a job that is waiting or running, and of a finished one.
ACTIVE, DONE = ("queued", "solving"), ("success", "failure")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL,
    kind TEXT NOT NULL,
    input TEXT,
    filename TEXT,
    hints TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, id);
CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, created REAL NOT NULL);
"""


def plain_message(text: str, folder: str | Path) -> str:
    """``text`` on one line, with "the file" for any path in the job's ``folder`` (the
    server's folders and file names are nobody else's business: a job's error is shown
    to whoever asks for it)."""
    import re

    text = re.sub(re.escape(str(folder)) + r"[/\\]?[\w.-]*", "the file", text)
    return " ".join(text.split())


class DataDirInUse(RuntimeError):
    """Another server holds the data directory."""


class QueueFull(RuntimeError):
    """As many jobs as the server takes are waiting or running (:meth:`JobStore.reserve`)."""


@contextlib.contextmanager
def exclusive(data_dir: str | Path):
    """Hold ``data_dir`` for one server while the block runs: a second server on the same
    directory would requeue the first one's running jobs and drop its uploads on start
    (:meth:`JobStore.recover`). Raises :class:`DataDirInUse` when another process holds it
    (an advisory lock on ``data_dir/server.lock``, released when the process ends)."""
    folder = Path(data_dir)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"the data directory {folder} is a file (--data-dir names a "
                                 "directory, created if missing)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # (not on Windows: no lock there)
        yield
        return
    with open(folder / "server.lock", "a+") as handle:
        held = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if not lock_unsupported(exc):
                raise DataDirInUse(f"the data directory {folder} is in use by another "
                                   "skysolve serve (give each server its own --data-dir)"
                                   ) from None
            # a file system without locks (NFS, Lustre) was taken for a directory in
            # use, and no server started on it: one starts, unguarded, with a word

            warn_caller(f"the data directory {folder} cannot be locked ({exc.strerror}): "
                        "a second skysolve serve on it would not be noticed",
                        RuntimeWarning)
            held = False
        try:
            yield
        finally:
            if held:
                fcntl.flock(handle, fcntl.LOCK_UN)


class JobStore:
    """Jobs and sessions in ``data_dir/jobs.sqlite``; job files in ``data_dir/jobs/ID/``.

    Safe to share between threads (one connection behind a lock).
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        (self.data_dir / "jobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.data_dir / "jobs.sqlite", check_same_thread=False,
                                   isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        try:
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            from ..errors import FileFormatError

            raise FileFormatError(
                f"{self.data_dir / 'jobs.sqlite'} is not a skysolve serve job store ({exc}): "
                "move it away, or give another --data-dir") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------ sessions

    def new_session(self) -> str:
        key = secrets.token_hex(16)
        self._run("INSERT INTO sessions (key, created) VALUES (?, ?)", (key, time.time()))
        return key

    def has_session(self, key: Any) -> bool:
        return isinstance(key, str) and bool(
            self._run("SELECT 1 FROM sessions WHERE key = ?", (key,)))

    # ------------------------------------------------------------ jobs

    def job_dir(self, job_id: int) -> Path:
        return self.data_dir / "jobs" / str(int(job_id))

    def reserve(self, kind: str, hints: dict[str, Any], filename: str | None,
                limit: int | None = None) -> int:
        """A ``new`` row and its folder; the job is accepted by :meth:`accept`.

        With ``limit``, raises :class:`QueueFull` instead when ``limit`` jobs are already
        waiting, running or being stored: the count and the new row are one step, so that
        uploads arriving together cannot all slip under the limit.
        """
        with self._lock:
            if limit is not None and self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE state IN ('new', 'queued', 'solving')"
            ).fetchone()[0] >= limit:
                raise QueueFull(f"{limit} jobs are waiting or running")
            cur = self._db.execute(
                "INSERT INTO jobs (state, kind, filename, hints, created) VALUES (?, ?, ?, ?, ?)",
                ("new", kind, filename, json.dumps(hints), time.time()))
            job_id = int(cur.lastrowid)
        self.job_dir(job_id).mkdir(parents=True, exist_ok=True)
        return job_id

    def set_hints(self, job_id: int, hints: dict[str, Any]) -> None:
        self._run("UPDATE jobs SET hints = ? WHERE id = ? AND state = 'new'",
                  (json.dumps(hints), job_id))

    def accept(self, job_id: int, input_name: str | None) -> None:
        self._run("UPDATE jobs SET state = 'queued', input = ? WHERE id = ? AND state = 'new'",
                  (input_name, job_id))

    def drop(self, job_id: int) -> None:
        """Forget a ``new`` job whose upload was refused."""
        self._run("DELETE FROM jobs WHERE id = ? AND state = 'new'", (job_id,))
        import shutil

        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def recover(self) -> int:
        """On start: drop unanswered uploads, requeue the jobs the last server left running
        (or fail those that were running at :data:`MAX_ATTEMPTS` deaths). Returns the
        number of jobs requeued."""
        for row in self._run("SELECT id FROM jobs WHERE state = 'new'"):
            self.drop(row["id"])
        self._run("UPDATE jobs SET state = 'failure', finished = ?, error = ? "
                  "WHERE state = 'solving' AND attempts >= ?",
                  (time.time(), f"the server stopped while solving this job {MAX_ATTEMPTS} "
                                "times", MAX_ATTEMPTS))
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state = 'queued', started = NULL "
                                   "WHERE state = 'solving'")
            return cur.rowcount

    def active_count(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'solving')")
                   [0][0])

    def next_queued(self, limit: int, exclude: set[int]) -> list[sqlite3.Row]:
        rows = self._run("SELECT * FROM jobs WHERE state = 'queued' ORDER BY id LIMIT ?",
                         (limit + len(exclude),))
        return [r for r in rows if r["id"] not in exclude][:limit]

    def start(self, job_id: int) -> None:
        self._run("UPDATE jobs SET state = 'solving', started = ?, attempts = attempts + 1 "
                  "WHERE id = ?", (time.time(), job_id))

    def requeue(self, job_id: int) -> None:
        self._run("UPDATE jobs SET state = 'queued', started = NULL WHERE id = ? "
                  "AND state = 'solving'", (job_id,))

    def release(self, job_id: int) -> None:
        """A job the server stopped while solving, on purpose (a graceful stop): queued
        again, its attempt not counted -- :data:`MAX_ATTEMPTS` is for the server dying
        under a job, not for an operator restarting it."""
        self._run("UPDATE jobs SET state = 'queued', started = NULL, "
                  "attempts = MAX(attempts - 1, 0) WHERE id = ? AND state = 'solving'",
                  (job_id,))

    def finish(self, job_id: int, solved: bool, result: dict[str, Any] | None,
               error: str | None = None) -> None:
        self._run("UPDATE jobs SET state = ?, finished = ?, result = ?, error = ? "
                  "WHERE id = ? AND state IN ('queued', 'solving')",
                  ("success" if solved else "failure", time.time(),
                   None if result is None else json.dumps(result), error, job_id))

    def expire(self, age_s: float) -> int:
        """Forget the jobs that finished more than ``age_s`` seconds ago: their rows and
        their folders (the uploaded image, the written files). Returns how many."""
        import shutil

        where = "state IN ('success', 'failure') AND finished < ?"
        with self._lock:
            # the rows first: a job is never listed whose files are half deleted
            cutoff = time.time() - age_s
            ids = [int(r[0]) for r in self._db.execute(f"SELECT id FROM jobs WHERE {where}",
                                                       (cutoff,)).fetchall()]
            self._db.execute(f"DELETE FROM jobs WHERE {where}", (cutoff,))
        for job_id in ids:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        return len(ids)

    def get(self, job_id: int) -> sqlite3.Row | None:
        rows = self._run("SELECT * FROM jobs WHERE id = ? AND state != 'new'", (job_id,))
        return rows[0] if rows else None

    def recent(self, limit: int = 20) -> list[sqlite3.Row]:
        return self._run("SELECT id, state, filename, created, finished, error FROM jobs "
                         "WHERE state != 'new' ORDER BY id DESC LIMIT ?", (limit,))

    def counts(self) -> dict[str, int]:
        return {r["state"]: int(r["n"]) for r in
                self._run("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")}
