"""The entry point of a plate solve: centroids and options in, a result or a failure out.

:func:`solve` takes a database, the centroids and a
:class:`~skysolve.solver.options.SolveOptions`; it checks the centroids,
prepares the backend (outside the clock), sets up the two sides of the solve
(:mod:`~skysolve.solver.frame`) and the field-of-view range, then runs
tracking (with an attitude hint) and the lost-in-space search.
:func:`solve_from_centroids` is the same with the options as keyword
arguments.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .._options import with_options
from ..centroids import centroids_to_array
from ..errors import InvalidArgumentError
from . import backends
from .frame import CatalogView, focal_from_fov, make_frame
from .lost_in_space import all_combos, search
from .options import SolveOptions
from .result import SolveFailure, SolveResult
from .tracking import track

if TYPE_CHECKING:  # pragma: no cover
    from .database import PatternDatabase

__all__ = ["solve", "solve_from_centroids", "SOLVE_DOC"]

_FAILURE_MESSAGES = {"too_few": "fewer than 4 well-separated centroids",
                     "no_match": "no pattern verified against the catalog"}


def _check_extent(xy: np.ndarray, width: int, height: int) -> None:
    """Refuse centroids a whole image width/height beyond the centre (NaN fails too)."""
    if not len(xy):
        return
    x, y = np.abs(xy).max(axis=0).tolist()
    if x <= width and y <= height:
        return
    if not np.isfinite(xy).all():
        raise InvalidArgumentError("centroids must have finite x and y")
    i = int(np.argmax((np.abs(xy) > (width, height)).any(axis=1)))
    raise InvalidArgumentError(
        f"centroids lie far outside the {width}x{height} image (e.g. #{i} at "
        f"({xy[i, 0]:.1f}, {xy[i, 1]:.1f})): check image_shape/image_width/image_height "
        "and that centroids are centred pixel coordinates")


def _fov_range(db: Any, options: SolveOptions, fov_est: float) -> tuple[float, float]:
    """The allowed field-of-view range (radians) of the pattern search."""
    fov_err = options.fov_max_error
    if fov_err is not None:
        return max(fov_est - fov_err, 1e-6), min(fov_est + fov_err, math.pi * 0.999)
    if options.fov_estimate is None and options.camera_model is None:
        return (math.radians(db.min_fov_deg) * 0.6,
                min(math.radians(db.max_fov_deg) / 0.6, math.pi * 0.999))
    return fov_est * 0.6, min(fov_est / 0.6, math.pi * 0.999)


def solve(db: PatternDatabase, centroids: Any, options: SolveOptions) -> SolveResult | SolveFailure:
    """Solve ``centroids`` against ``db`` with ``options`` (see :func:`solve_from_centroids`)."""
    be = backends.select(options.backend)
    # One-time preparation, before the clock starts, so that it does not eat into
    # solve_timeout_ms: the kernels for this database and the pattern order.
    backends.prepare(be, db)
    all_combos(options.pattern_checking_stars)
    t0 = time.perf_counter()

    def fail(status: str, message: str) -> SolveFailure:
        return SolveFailure(status, (time.perf_counter() - t0) * 1e3, message)

    xy, _ = centroids_to_array(centroids, name="centroids")
    width, height = options.image_size()
    _check_extent(xy, width, height)
    timeout = options.solve_timeout_ms
    deadline = None if not timeout else t0 + timeout / 1e3
    tol = options.match_max_error
    if tol is None:
        tol = float(db.parameters["pattern_max_error"])

    cam = options.camera_model
    frame = make_frame(xy, width, height, cam, be, options.refine_scale)
    cat = CatalogView(db, options.observer_velocity_km_s, be)
    radius_px = options.match_radius * width
    fov_est = options.fov_estimate
    if cam is not None:
        f_guess = cam.focal_length_px
        fov_est = math.radians(cam.fov_deg) if fov_est is None else fov_est
        parities: tuple[bool, ...] = (bool(cam.parity_flip),)
    else:
        if fov_est is None:
            fov_est = math.sqrt(math.radians(db.min_fov_deg) * math.radians(db.max_fov_deg))
        f_guess = focal_from_fov(fov_est, width)
        parities = (False, True)
    fov_lo, fov_hi = _fov_range(db, options, fov_est)
    # patterns are limited by the database's scales: a much larger field cannot match
    if fov_lo > math.radians(db.max_fov_deg) * 1.6 or fov_hi < math.radians(db.min_fov_deg) / 2:
        return fail("invalid_config",
                    f"the field of view range {math.degrees(fov_lo):.2f}-"
                    f"{math.degrees(fov_hi):.2f} deg is outside the database's "
                    f"{db.min_fov_deg:g}-{db.max_fov_deg:g} deg")

    if options.attitude_hint is not None:
        res = track(db, frame, cat, options.attitude_hint, f_guess, parities,
                    options.hint_uncertainty, radius_px, options.match_threshold,
                    options.refine_iterations, t0)
        if res is not None:
            return res
        if options.strict_hint:
            return fail("no_match", "no match near the attitude hint")

    if len(xy) < 4:
        return fail("too_few", f"{len(xy)} centroids; a pattern needs 4")
    result, status = search(
        db, frame, cat, f_guess=f_guess, fov_lo=fov_lo, fov_hi=fov_hi, parities=parities,
        tol=tol, radius_px=radius_px, threshold=options.match_threshold, deadline=deadline,
        refine_iterations=options.refine_iterations, t0=t0,
        pattern_stars=options.pattern_checking_stars,
        max_patterns=options.max_patterns_checked)
    if result is not None:
        return result
    if status == "timeout":
        return fail(status, f"no match within {options.solve_timeout_ms} ms")
    if status == "budget":  # tetra3rs reports a spent pattern budget as a time-out too
        return fail("timeout", f"no match within max_patterns_checked="
                               f"{options.max_patterns_checked} patterns")
    return fail(status, _FAILURE_MESSAGES[status])


#: The docstring of the public solve functions (``{parameters}``: the options' fields).
SOLVE_DOC = """Solve for the camera attitude from star centroids (lost in space, or tracking).

Parameters
----------
centroids : list of Centroid, ExtractionResult, or array_like (N, 2) or (N, 3)
    Centred pixel positions (x, y[, brightness]) of the stars, brightest first:
    origin at the image centre, +x right, +y down.
{parameters}
options : SolveOptions, optional
    All of the above as one object; keyword arguments given as well override
    its values.

Returns
-------
SolveResult or SolveFailure
    A truthy :class:`~skysolve.SolveResult`, or a falsy
    :class:`~skysolve.SolveFailure` whose ``status`` is ``'no_match'``,
    ``'timeout'``, ``'too_few'`` or ``'invalid_config'``.

Raises
------
InvalidArgumentError, InvalidTypeError
    A parameter out of range or of the wrong type (the message names it).
"""


@with_options(SolveOptions, ("db", "centroids"),
              SOLVE_DOC.replace("Parameters\n----------\n",
                                "Parameters\n----------\ndb : SolverDatabase\n"
                                "    The pattern database to solve against.\n"))
def solve_from_centroids(db: PatternDatabase, centroids: Any,
                         options: SolveOptions) -> SolveResult | SolveFailure:
    return solve(db, centroids, options)
