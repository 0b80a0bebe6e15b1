"""Centroids → patterns → attitude: the pattern database and the plate solver.

Modules, in the order of a solve
--------------------------------
``options``
    :class:`SolveOptions`: every solve parameter, its default, units, docs and check.
``keys``
    The pattern key (edge ratios → one integer), the key directory, lookups.
``patterns``, ``generation``, ``dbfile``, ``database``
    Pattern generation over a multiscale lattice, :class:`GenerationOptions`,
    the file format, and :class:`PatternDatabase` (star table, sky index,
    pattern index, queries).
``frame``
    The two sides of a solve: centroids as ideal offsets, catalog star vectors.
``lost_in_space``, ``tracking``
    The pattern search, and the solve around an attitude hint.
``verification``, ``refinement``
    The false-match probability of a hypothesis, and the refit with all stars.
``result``, ``solve``
    :class:`SolveResult` / :class:`SolveFailure`, and the entry point :func:`solve`.
``backends``
    The numpy reference and the numba kernels behind one interface.
``warmup``
    Compiles the numba kernels into numba's disk cache ahead of any solve
    (``python -m skysolve.solver.warmup``; started in the background when needed).

May import: ``errors``, ``_args``, ``_options``, ``_jit``, ``_progress``, ``_files``,
``geometry``, ``sky``, ``centroids``, ``camera``, ``io``.
"""

from .database import PatternDatabase
from .options import SolveOptions
from .result import SolveFailure, SolveResult
from .solve import solve, solve_from_centroids

__all__ = ["PatternDatabase", "SolveOptions", "SolveFailure", "SolveResult", "solve",
           "solve_from_centroids"]
