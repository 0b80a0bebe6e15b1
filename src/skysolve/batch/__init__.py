"""Many frames at once: frame sources, executors, local pools and Dask, batch solving.

Modules
-------
``sources``
    What a frame may be (an image file, an image array, a centroid list) and
    how it becomes centroids; where a section of an image lies in it, and the
    solve options of the section (the camera of the whole image cropped).
``executors``
    Running one task per frame serially or on any ``concurrent.futures``-style
    executor or Dask client (:func:`iter_tasks` as tasks finish,
    :func:`run_tasks` in input order), re-running the tasks of dead workers;
    :class:`DatabaseHandle` sends a database to worker processes as a file
    path (memory-mapped once per process), never as pickled arrays per task.
``pools``
    Where a batch runs: :class:`LocalPool` (every local core, restartable) or
    a Dask cluster (optional extra ``skysolve[distributed]``);
    :func:`open_executor`.
``results``
    :class:`FrameResult` per frame, :class:`BatchResults`, and the ECSV
    results table kept current as frames finish (:class:`ResultsTable`).
``solve_many``
    :func:`solve_many`, and :func:`run_frames`, the loop it shares with the
    command line.

The calibration workflow (:mod:`skysolve.calibration.workflow`) runs its
extractions and solves through here.

May import: ``errors``, ``_args``, ``_options``, ``_progress``, ``_files``,
``centroids``, ``camera``, ``io``, ``extraction``, ``solver``.
"""

from .executors import DatabaseHandle, WorkerLostError, as_executor, iter_tasks, run_tasks
from .pools import WORKER_CONFIG, BatchTerminated, LocalPool, default_jobs, open_executor
from .results import BatchResults, FrameResult, ResultsTable, TableSolution
from .solve_many import process_frame, run_frames, solve_many
from .sources import (
    frame_centroids,
    frame_image,
    frame_section,
    is_centroid_source,
    section_options,
)

__all__ = ["BatchResults", "BatchTerminated", "DatabaseHandle", "FrameResult", "LocalPool",
           "ResultsTable", "WorkerLostError", "as_executor", "default_jobs", "frame_centroids",
           "frame_image", "frame_section", "is_centroid_source", "iter_tasks", "open_executor",
           "process_frame", "run_frames", "run_tasks", "section_options", "solve_many",
           "TableSolution", "WORKER_CONFIG"]
