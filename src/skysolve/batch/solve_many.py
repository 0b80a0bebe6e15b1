"""Solving many frames: on every local core, or as tasks on a Dask cluster.

:func:`solve_many` reads, extracts and solves each frame where it runs (a
path is read by the worker, so no image bytes pass through a Dask
scheduler), one task per frame, and returns one :class:`FrameResult` per
frame in input order. :func:`run_frames` is the loop behind it, shared with
the command line (whose task also writes WCS files and plots): it skips the
frames a results table already holds (``resume``), runs the rest through
:func:`~skysolve.batch.executors.iter_tasks` (worker deaths re-run, every
frame exactly once), keeps the results table current as frames finish, and
shows a progress bar with rate and time left on a terminal.

A frame that cannot be processed -- an unreadable or corrupt file, an image
the extraction cannot use, any error while solving it -- becomes one row with
status ``'error'`` and its reason; the batch goes on.
"""

from __future__ import annotations

import functools
import os
import pickle
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._options import with_options
from .._progress import progress_bar, progress_enabled
from ..errors import InvalidArgumentError, InvalidTypeError, SkysolveError, describe
from ..extraction.options import ExtractionOptions
from ..solver.options import SolveOptions
from ..solver.solve import solve
from .deeper import deeper_limits, solve_deeper
from .executors import DatabaseHandle, iter_tasks
from .pools import open_executor, sigterm_stops_batch
from .results import BatchResults, FrameResult, ResultsTable, source_keys
from .sources import (
    NotAFrame,
    frame_image,
    frame_section,
    is_centroid_source,
    is_frame_type,
    section_options,
)

__all__ = ["solve_many", "run_frames", "process_frame", "frame_error", "solve_task"]


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _reason(exc: BaseException) -> str:
    """One line; the type is named unless the error is bad input (a file, a value)."""
    text = describe(exc)
    if isinstance(exc, SkysolveError | OSError | ValueError | ImportError):
        return text
    return f"{type(exc).__name__}: {text}"


def frame_error(fr: FrameResult, exc: BaseException) -> FrameResult:
    """Mark a frame failed by ``exc``: status ``'error'``, its reason and traceback."""
    fr.status, fr.error = "error", _reason(exc)
    fr.traceback = "".join(traceback.format_exception(exc))
    return fr


def process_frame(source: Any, database: Any, options: SolveOptions,
                  extraction: ExtractionOptions | None = None, *,
                  hdu: int | str | None = None, section: Any = None,
                  observer_velocity: Callable[[Any], Any] | None = None,
                  ) -> tuple[FrameResult, np.ndarray | None, Any]:
    """Read, extract and solve one frame: ``(FrameResult, image, extraction)``.

    An image's size is the solve's image size; with a ``section`` the options (their
    camera model, or ``crpix``) are the whole image's, made the section's
    (:func:`~skysolve.batch.sources.section_options`). ``observer_velocity(source)``,
    if given, is called once the frame is read and extracted, and its value
    (km/s, or None) is the solve's ``observer_velocity_km_s``. Any error
    becomes the result's ``status='error'`` and ``error`` (its reason); the
    image and extraction are None where the frame did not get that far. The
    result's ``source`` is left None (the caller has it).
    """
    t0, cpu0 = time.perf_counter(), time.thread_time()
    fr = FrameResult(None, "error", worker=_worker())
    image = centroids = None
    try:
        if section is not None and not is_centroid_source(source):
            options = section_options(options, *frame_section(source, hdu=hdu,
                                                              section=section))
        image = frame_image(source, hdu=hdu, section=section)
        t1 = time.perf_counter()
        if image is None:
            centroids = source
            if hasattr(source, "image_height"):  # an ExtractionResult
                fr.image_shape = (source.image_height, source.image_width)
        else:
            from ..extraction import extract

            fr.timings["read"] = t1 - t0
            extraction = extraction if extraction is not None else ExtractionOptions()
            centroids = extract(image, extraction)
            fr.image_shape = (int(image.shape[0]), int(image.shape[1]))
            fr.timings["extract"] = time.perf_counter() - t1
            options = options.replace(image_shape=fr.image_shape, image_width=None,
                                      image_height=None)
        fr.num_centroids = len(getattr(centroids, "centroids", centroids))
        if observer_velocity is not None:
            options = options.replace(observer_velocity_km_s=observer_velocity(source))
        t2 = time.perf_counter()
        # (an ExtractionResult as such: its image size, and its rejected detections for
        # the automatic deep search, as solve_image has them)
        res = solve(database, centroids, options)
        if image is not None:  # (a frame short of stars: extracted deeper, solved again)
            def again(found: Any, limit_ms: float) -> Any:
                return solve(database, found, options.replace(**deeper_limits(
                    options.solve_timeout_ms, options.max_hypotheses_verified, limit_ms)))

            res, centroids = solve_deeper(image, centroids, res, extraction, again)
            fr.num_centroids = len(centroids)
        fr.timings["solve"] = time.perf_counter() - t2
        fr.status, fr.result = res.status, res
    except Exception as exc:  # noqa: BLE001 - one frame's failure is its row, not the batch's
        frame_error(fr, exc)
    fr.timings["total"] = time.perf_counter() - t0
    fr.timings["cpu"] = time.thread_time() - cpu0
    return fr, image, centroids


def solve_task(handle: DatabaseHandle, options: SolveOptions,
               extraction: ExtractionOptions | None, hdu: Any, section: Any,
               source: Any) -> FrameResult:
    """The task of one frame of :func:`solve_many` (runs on a worker)."""
    return process_frame(source, handle.database, options, extraction, hdu=hdu,
                         section=section)[0]


def prepare_solver(handle: DatabaseHandle, options: SolveOptions) -> None:
    """Make the solver ready here for the database as workers hold it (memory-mapped:
    read-only arrays are other argument types for the compiled kernels), so that worker
    processes forked afterwards start ready."""
    from ..solver import backends

    backends.prepare(backends.select(options.backend), handle.for_workers())


def _lost(source: Any, reason: str) -> FrameResult:
    return FrameResult(None, "error", error=reason)


def run_frames(task: Callable[[Any], FrameResult], sources: Sequence[Any], *,
               database: DatabaseHandle, client: Any = None, jobs: int | None = None,
               results: str | os.PathLike | None = None, resume: bool = False,
               overwrite: bool = False, progress: bool | None = None,
               on_result: Callable[[int, FrameResult], None] | None = None,
               desc: str = "solving", report_resumed: bool = False) -> BatchResults:
    """Run ``task(source) -> FrameResult`` over the frames (see the module notes).

    ``on_result(index, frame_result)`` is called in input order for every
    frame processed in this run, and with ``report_resumed`` also for those a
    resumed table holds (``frame_result.resumed``).

    Before local worker processes are forked, the first frame is processed
    here, as a worker would (the task pickled and unpickled: the database
    memory-mapped from its file): the workers then start with everything its
    first frame made ready -- modules imported, kernels compiled for the
    memory-mapped arrays, the database mapped -- instead of each paying for it.
    """
    t0 = time.perf_counter()
    batch = _Batch(sources, results, resume, overwrite, on_result, report_resumed)
    todo = batch.todo
    warm: list[FrameResult] = []

    def first_frame_here() -> None:
        warm.append(pickle.loads(pickle.dumps(task))(sources[todo[0]]))

    # (held over the table's last write too: a second SIGTERM must not cut it short)
    with sigterm_stops_batch():
        try:
            with open_executor(client, jobs, database=database, items=len(todo),
                               prepare=first_frame_here if todo else None) as ex, \
                    progress_bar(len(todo), desc, progress, unit="frame") as bar:
                batch.bar = bar
                batch.report()  # the resumed frames before the first to do
                if warm:
                    batch.record(0, warm[0])
                rest = [_portable(sources[i]) for i in todo[len(warm):]]
                for k, fr in iter_tasks(task, rest, executor=ex, lost=_lost):
                    batch.record(k + len(warm), fr)
        finally:
            batch.close()
    batch.out.seconds = time.perf_counter() - t0
    return batch.out


def _portable(source: Any) -> Any:
    """A path frame made absolute for the worker that reads it (a Dask worker runs in its
    own directory, and a notebook may change its own after starting a cluster: relative
    paths failed there as "no such image file"); other frames as they are. Its results
    keep the path as given."""
    if isinstance(source, str | os.PathLike) and not isinstance(os.fspath(source), bytes):
        return os.path.abspath(source)
    return source


class _Batch:
    """The results of a run as they arrive: the table, the list, the in-order callback."""

    def __init__(self, sources: Sequence[Any], results: Any, resume: bool, overwrite: bool,
                 on_result: Callable[[int, FrameResult], None] | None, report_resumed: bool):
        self.sources, self.on_result, self.report_resumed = sources, on_result, report_resumed
        self.table = None if results is None else ResultsTable(results, resume=resume,
                                                                overwrite=overwrite)
        self.out = BatchResults([None] * len(sources))
        self.keys = source_keys(sources)
        self.todo = []
        for i, source in enumerate(sources):
            row = None if self.table is None else self.table.done(*self.keys[i])
            if row is None:
                self.todo.append(i)
            else:
                self.out[i] = FrameResult.from_row(source, row)
                self.table.renumber(*self.keys[i], i)
        self.next = 0  # the next frame for on_result
        self.bar: Any = None

    def record(self, k: int, fr: FrameResult) -> None:
        """Frame ``todo[k]`` is done."""
        i = self.todo[k]
        fr.source = self.sources[i]
        self.out[i] = fr
        if self.table is not None:
            self.table.add(fr.row(i), self.keys[i][1])
            self.table.flush()
        self.report()
        self.bar.update(1)

    def report(self) -> None:
        """``on_result`` for the frames done, in input order, up to the first still to do."""
        if self.on_result is None:
            return
        while self.next < len(self.out) and self.out[self.next] is not None:
            fr = self.out[self.next]
            if self.report_resumed or not fr.resumed:
                self.bar.clear()
                self.on_result(self.next, fr)
            self.next += 1

    def close(self) -> None:
        if self.table is not None:
            self.table.close()


def _frames(sources: Any) -> list[Any]:
    from ..centroids import ExtractionResult

    if isinstance(sources, str | bytes | os.PathLike | ExtractionResult) or (
            isinstance(sources, np.ndarray) and sources.ndim < 3):
        raise InvalidTypeError("sources must be a sequence of frames (paths, image arrays or "
                               "centroid lists); for one frame pass [frame]")
    try:
        return list(sources)
    except TypeError:
        raise InvalidTypeError(f"sources must be a sequence of frames, got "
                               f"{type(sources).__name__}") from None


_SOLVE_MANY_DOC = """Solve many frames, on every local core or on a Dask cluster.

Each frame is read (paths), extracted (images) and solved where it runs; the
results come back in input order, one :class:`~skysolve.batch.FrameResult`
per frame: ``.source``, ``.status``, ``.result`` (the ``SolveResult`` or
``SolveFailure``), ``.error`` (None, or why the frame could not be
processed: an unreadable or corrupt file is one failed frame, not a failed
batch) and ``.timings`` (seconds on the worker: read, extract, solve, total
wall time, and the frame's CPU time).

Parameters
----------
sources : sequence
    Frames: image paths (FITS, PNG, JPEG, TIFF, BMP, GIF, WebP, PNM), 2-D image
    arrays, or centroids (``ExtractionResult``, lists of ``Centroid``, ``(N, 2|3)``
    arrays in centred pixels; give ``image_shape`` then).
database : SolverDatabase
    Workers open its file memory-mapped, once per process (never pickled
    per task); a Dask cluster's workers must see that file (shared storage).
client : dask.distributed.Client or str, optional
    Run the frames as Dask tasks: a client, a scheduler address such as
    ``"tcp://10.0.0.5:8786"``, or ``"local"`` (a ``LocalCluster`` of ``jobs``
    worker processes for this call). Needs ``pip install "skysolve[distributed]"``.
jobs : int, optional
    Without ``client``: local worker processes (default: every core; 1 solves
    here, serially).
extraction : ExtractionOptions or dict, optional
    Extraction parameters for image frames (default: the defaults).
hdu, section : optional
    FITS HDU and image section (a crop, as :func:`~skysolve.io.images.read_image`
    takes it) of image frames. The camera model, or ``crpix``, describes the whole
    image: the optical centre stays where it is on it (without either, the whole
    image's centre), not at the section's centre.
results : path-like, optional
    ECSV results table, one row per frame, kept current as frames finish
    (written atomically). Rows are matched to frames by path (``frame N``
    for arrays); a path given twice has a row each.
resume : bool
    Keep an existing results table and skip its frames already done (their
    ``FrameResult`` has ``resumed=True``, and as ``result`` the table's
    solution, a :class:`~skysolve.batch.TableSolution`, or a ``SolveFailure``
    with the table's status); frames that failed with an error are tried again.
overwrite : bool
    Replace an existing results table (without ``resume`` or ``overwrite``
    an existing table is an error).
progress : bool or None
    Progress bar with rate and time left, and a summary line, on stderr
    (None: only on a terminal).
on_result : callable, optional
    ``on_result(index, frame_result)``, called in input order as frames finish
    (not for the frames ``resume`` takes from the table).
{parameters}
options : SolveOptions, optional
    All solve parameters as one object; keyword arguments override its values.

Returns
-------
BatchResults
    A list of ``FrameResult`` in input order, with ``num_solved``,
    ``num_unsolved``, ``num_failed``, ``seconds`` and ``summary()``.

Examples
--------
>>> results = skysolve.solve_many(sorted(glob.glob("night/*.fits")), db,
...                               fov_estimate_deg=11.4)          # doctest: +SKIP
>>> results = skysolve.solve_many(paths, db, client="tcp://head:8786",
...                               results="night.ecsv")            # doctest: +SKIP
"""

_KEYWORDS = (("client", None), ("jobs", None), ("extraction", None), ("hdu", None),
             ("section", None), ("results", None), ("resume", False), ("overwrite", False),
             ("progress", None), ("on_result", None))


@with_options(SolveOptions, ("sources", "database"), _SOLVE_MANY_DOC, keywords=_KEYWORDS)
def solve_many(sources: Sequence[Any], database: Any, options: SolveOptions, *,
               client: Any = None, jobs: int | None = None,
               extraction: ExtractionOptions | dict | None = None, hdu: Any = None,
               section: Any = None, results: str | os.PathLike | None = None,
               resume: bool = False, overwrite: bool = False, progress: bool | None = None,
               on_result: Callable[[int, FrameResult], None] | None = None) -> BatchResults:
    from .. import _args

    frames = _frames(sources)
    if isinstance(extraction, dict):
        extraction = ExtractionOptions(**extraction)
    elif extraction is not None and not isinstance(extraction, ExtractionOptions):
        raise InvalidTypeError(f"extraction must be an ExtractionOptions, a dict or None, got "
                               f"{type(extraction).__name__}")
    resume = _args.flag(resume, "resume")
    overwrite = _args.flag(overwrite, "overwrite")
    # (checked here, not by the first frame that finishes: a bad value would otherwise end
    # the batch with a bare TypeError once its workers had started and its first frame run)
    if progress is not None:
        progress = _args.flag(progress, "progress")
    if on_result is not None and not callable(on_result):
        raise InvalidTypeError(f"on_result must be a callable on_result(index, frame_result) "
                               f"or None, got {type(on_result).__name__}")
    if results is not None:
        results = _args.path(results, "results")
    if hdu is not None and (isinstance(hdu, bool) or not isinstance(hdu, int | str | tuple)):
        raise InvalidTypeError(f"hdu must be an HDU index (int) or an extension name (str), "
                               f"got {type(hdu).__name__}")
    if isinstance(section, str):  # (a bad one would be every frame's error, in every row)
        from ..io.images import _parse_section_text

        _parse_section_text(section)
    if not hasattr(database, "pattern_keys"):
        raise InvalidTypeError(f"database must be a SolverDatabase, got "
                               f"{type(database).__name__}")
    if results is None and (resume or overwrite):
        raise InvalidArgumentError("resume and overwrite need a results table (results=)")
    handle = DatabaseHandle(database)
    task = functools.partial(solve_task, handle, options, extraction, hdu, section)
    # a source of no frame type travels as a stand-in that fails as it would: one failed
    # frame, as when solved here (an open file cannot be pickled: it failed the batch)
    sent = [f if is_frame_type(f) else NotAFrame(type(f).__name__) for f in frames]

    def reported(i: int, fr: FrameResult) -> None:
        fr.source = frames[i]
        on_result(i, fr)

    out = run_frames(task, sent, database=handle, client=client, jobs=jobs, results=results,
                     resume=resume, overwrite=overwrite, progress=progress,
                     on_result=None if on_result is None else reported)
    for fr, frame in zip(out, frames, strict=True):
        fr.source = frame
    if progress_enabled(progress):
        import sys

        print(f"skysolve: {out.summary()}", file=sys.stderr, flush=True)
    return out
