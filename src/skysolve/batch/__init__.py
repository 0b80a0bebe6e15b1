"""Many frames at once: frame sources, executors and the database handle they share.

Modules
-------
``sources``
    What a frame may be (an image file, an image array, a centroid list) and
    how it becomes centroids.
``executors``
    Running one task per frame serially or on any ``concurrent.futures``-style
    executor, in input order; :class:`DatabaseHandle` sends a database to
    worker processes as a file path (memory-mapped once per process), never as
    pickled arrays per task.

The calibration workflow (:mod:`skysolve.calibration.workflow`) runs its
extractions and solves through here.

May import: ``errors``, ``_args``, ``_progress``, ``centroids``, ``io``,
``extraction``, ``solver``.
"""

from .executors import DatabaseHandle, run_tasks
from .sources import frame_centroids, is_centroid_source

__all__ = ["DatabaseHandle", "frame_centroids", "is_centroid_source", "run_tasks"]
