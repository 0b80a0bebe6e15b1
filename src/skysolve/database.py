"""The public database class: a pattern database you can solve with and calibrate against.

:class:`SolverDatabase` is the :class:`~skysolve.solver.database.PatternDatabase`
(star table, pattern index, generation, files, queries) plus the two methods
of the tetra3rs-compatible API that use the stages above it:
:meth:`~SolverDatabase.solve_from_centroids` (the solver) and
:meth:`~SolverDatabase.calibrate_camera` (calibration). It sits on top of
both, so that neither the solver nor calibration imports upward.

May import: ``solver``, ``calibration``.
"""

from __future__ import annotations

from typing import Any

from ._options import with_options
from .calibration.options import CALIBRATE_DOC, CalibrationOptions
from .calibration.result import CalibrateResult
from .solver.database import PatternDatabase
from .solver.options import SolveOptions
from .solver.result import SolveFailure, SolveResult
from .solver.solve import SOLVE_DOC, solve

__all__ = ["SolverDatabase"]


class SolverDatabase(PatternDatabase):
    """Star table and pattern index for lost-in-space solving.

    Build one with :meth:`generate_from_hipparcos`, :meth:`generate_from_gaia`
    or :meth:`generate_from_catalog`, save it with :meth:`save_to_file` and load
    it back with :meth:`load_from_file`. Solve with :meth:`solve_from_centroids`
    and fit camera models with :meth:`calibrate_camera`.

    A database is immutable once built and safe to share between threads.
    """

    @with_options(SolveOptions, ("self", "centroids"), SOLVE_DOC)
    def solve_from_centroids(self, centroids: Any,
                             options: SolveOptions) -> SolveResult | SolveFailure:
        return solve(self, centroids, options)

    @with_options(CalibrationOptions, ("self", "solve_results", "centroids"), CALIBRATE_DOC)
    def calibrate_camera(self, solve_results: Any, centroids: Any,
                         options: CalibrationOptions) -> CalibrateResult:
        # imported here: the fit's scipy (optimize, sparse, spatial) would cost every
        # solve-only start-up a few tenths of a second
        from .calibration.fit import calibrate

        return calibrate(self, solve_results, centroids, options)
