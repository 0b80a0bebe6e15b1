"""The solver workers: queued jobs from the store to a process pool and back.

A dispatcher thread keeps every worker busy with the oldest queued jobs (each
marked ``solving`` in the store before it is handed out) and records each answer
as it comes. Workers are :class:`skysolve.batch.LocalPool` processes that open
the database memory-mapped once (:class:`skysolve.batch.DatabaseHandle`), started
after the solver's compiled kernels were prepared here so they start ready.

The per-job time limit is the solve's own timeout (``solve_timeout_ms``); a job
still running ``grace_s`` after its limit (a stuck extraction, say) fails, and the
pool is started afresh, its other running jobs going back to the queue. A worker
that dies (killed, out of memory) breaks the pool the same way: its jobs are
queued again; when several were in flight, which one killed it is unknown, so
each of them runs alone next, and a job that stops its worker while alone fails
after :data:`skysolve.server.store.MAX_ATTEMPTS` tries -- the others finish.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ..batch import LocalPool
from .store import MAX_ATTEMPTS, JobStore, plain_message

__all__ = ["JobQueue"]


def _worker_init() -> None:
    """A worker process of the server: dies with the server, holds none of its sockets.

    Workers are forked from the server, so they inherit its network sockets: the
    listening one (a server killed outright would leave them holding its port) and the
    open connections (a connection the server closes would stay open in the worker, and
    a browser sending its next request on it would wait forever). Workers close every
    inherited TCP socket; on Linux the kernel also kills them when the server dies
    (``PR_SET_PDEATHSIG``). Ctrl-C is left to the server.
    """
    import os
    import signal
    import socket
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the server's own SIGTERM handler (uvicorn's) is inherited through fork: without this,
    # the pool could not terminate its workers (a broken pool SIGTERMs the survivors)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the server died before the line above
            os._exit(1)
    fds = os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []
    for name in fds:
        with contextlib.suppress(OSError, ValueError):
            s = socket.socket(fileno=int(name))
            family = s.family
            s.detach()
            if family in (socket.AF_INET, socket.AF_INET6):
                os.close(int(name))


class ServerPool(LocalPool):
    """:class:`~skysolve.batch.LocalPool` whose processes are the server's workers
    (:func:`_worker_init`)."""

    def _start(self) -> cf.Executor:
        if self.kind != "process":
            return super()._start()
        return cf.ProcessPoolExecutor(self._max_workers, initializer=_worker_init)

    def restart(self) -> None:
        """A new pool; the old one's workers are killed, not left to finish their jobs (a job
        past its time limit may never finish, and would hold a core and its memory)."""
        procs = list((getattr(self._pool, "_processes", None) or {}).values())
        super().restart()
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.kill()


class JobQueue:
    """Runs the store's queued jobs on ``workers`` processes until :meth:`stop`."""

    #: Seconds between two looks for finished jobs past their keeping time.
    EXPIRE_EVERY_S = 600.0

    def __init__(self, store: JobStore, handle: Any, workers: int, time_limit_s: float,
                 grace_s: float = 30.0, keep_s: float | None = None) -> None:
        self.store, self.handle = store, handle
        self.workers, self.time_limit_s, self.grace_s = workers, time_limit_s, grace_s
        #: Finished jobs are forgotten, files and all, this long after they finished
        #: (None: kept until the data directory is cleared by hand).
        self.keep_s = keep_s
        self._expired_at = -float("inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flight: dict[int, tuple[cf.Future, float]] = {}
        #: Jobs in flight together when a worker died: each runs alone next, so that
        #: only the one that kills its worker is charged for it (see _collect).
        self._suspects: set[int] = set()
        self._pool: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from ..batch.solve_many import prepare_solver
        from ..solver.options import SolveOptions

        self.store.recover()
        prepare_solver(self.handle, SolveOptions())
        self._pool = ServerPool(self.workers, "process")
        self._thread = threading.Thread(target=self._run, name="skysolve-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self._thread is None or not self._thread.is_alive():
            # the jobs still running go back to the queue uncharged: a server stopped three
            # times while a long job ran failed it as if it had killed the server each time
            for job_id in list(self._flight):
                self.store.release(job_id)
            self._flight.clear()

    def poke(self) -> None:
        """A job was queued: look now rather than at the next tick."""
        self._wake.set()

    def _submit(self, row: Any) -> None:
        import json

        from .worker import run_job

        job_id = int(row["id"])
        hints = json.loads(row["hints"])
        self.store.start(job_id)
        fut = self._pool.submit(run_job, str(self.store.job_dir(job_id)), row["kind"],
                                hints["input"], hints["solve"], self.handle)
        fut.add_done_callback(lambda _f: self._wake.set())
        self._flight[job_id] = (fut, time.monotonic())

    def _collect(self) -> bool:
        """Record finished jobs; True when the pool broke and must be restarted."""
        broken: list[int] = []
        alone = len(self._flight) == 1
        for job_id, (fut, _) in list(self._flight.items()):
            if not fut.done():
                continue
            del self._flight[job_id]
            try:
                summary = fut.result()
            except BrokenProcessPool:
                broken.append(job_id)
                continue
            except Exception as exc:  # noqa: BLE001 - the job's failure, recorded as its error
                self._suspects.discard(job_id)
                text = (plain_message(str(exc), self.store.job_dir(job_id))
                        or type(exc).__name__)
                self.store.finish(job_id, False, None, text[:500])
                continue
            self._suspects.discard(job_id)
            self.store.finish(job_id, bool(summary.get("solved")), summary,
                              None if summary.get("solved") else summary.get("message"))
        if broken and not alone:
            self._suspects.update(self._flight)  # (still in flight: requeued by _restart)
        if alone and broken:
            # the only job in flight stopped its worker: it is charged for it
            self._retry(broken[0], "a solver worker stopped while solving this job")
        else:
            # which of them did is unknown: each runs alone next (not charged now)
            for job_id in broken:
                self._suspects.add(job_id)
                self.store.requeue(job_id)
        return bool(broken)

    def _retry(self, job_id: int, reason: str) -> None:
        row = self.store.get(job_id)
        if row is not None and row["attempts"] >= MAX_ATTEMPTS:
            self._suspects.discard(job_id)
            self.store.finish(job_id, False, None, f"{reason} ({MAX_ATTEMPTS} times)")
        else:
            self._suspects.add(job_id)  # (it runs alone from now on)
            self.store.requeue(job_id)

    def _dispatch(self) -> None:
        """Submit queued jobs to the free workers; a suspect (see ``_suspects``) only to an
        empty pool, and nothing beside it."""
        while self._suspects:
            if self._flight:
                return  # the pool drains first, or a suspect runs alone
            job_id = min(self._suspects)
            row = self.store.get(job_id)
            if row is not None and row["state"] == "queued":
                self._submit(row)
                return
            self._suspects.discard(job_id)  # (finished or gone meanwhile)
        free = self.workers - len(self._flight)
        if free > 0:
            for row in self.store.next_queued(free, set(self._flight)):
                self._submit(row)

    def _overdue(self) -> bool:
        """Fail jobs past their time limit; True when the pool must be restarted."""
        now, limit = time.monotonic(), self.time_limit_s + self.grace_s
        late = [j for j, (fut, t0) in self._flight.items() if not fut.done() and now - t0 > limit]
        for job_id in late:
            del self._flight[job_id]
            self.store.finish(job_id, False, None,
                              f"the job ran past its time limit of {self.time_limit_s:g} s")
        return bool(late)

    def _restart(self) -> None:
        for job_id, (fut, _) in list(self._flight.items()):
            fut.cancel()
            self.store.requeue(job_id)
        self._flight.clear()
        self._pool.restart()

    def _expire(self) -> None:
        now = time.monotonic()
        if self.keep_s is not None and now - self._expired_at >= self.EXPIRE_EVERY_S:
            self._expired_at = now
            self.store.expire(self.keep_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._collect() | self._overdue():
                    self._restart()
                self._dispatch()
                self._expire()
            except Exception as exc:  # noqa: BLE001 - the dispatcher must outlive any one job
                import sys

                print(f"skysolve serve: dispatcher: {exc}", file=sys.stderr, flush=True)
            self._wake.wait(timeout=0.5)
            self._wake.clear()
