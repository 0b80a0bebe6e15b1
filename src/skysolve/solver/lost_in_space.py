"""The lost-in-space search: image patterns against the database's pattern index.

The brightest centroids, thinned so that no two are closer than the
database's pattern-star separation, form 4-star patterns in brightest-first
order (all patterns of the brightest 6, then 8, 10, ... stars, in batches).
Each pattern's edge-ratio keys (:mod:`skysolve.solver.keys`) are looked up;
catalog patterns whose exact ratios agree within the tolerance, and whose
scale implies a field of view in the allowed range, become candidates. An
attitude is fitted to each candidate's four star pairs (Wahba's problem,
both parities unless a camera fixes it); a candidate whose stars fit is
verified (:mod:`skysolve.solver.verification`) and, if its false-match
probability times the number of hypotheses verified so far is below
``match_threshold``, refined (:mod:`skysolve.solver.refinement`) into the
answer.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from .frame import CatalogView, Frame, Hypothesis, fov_from_focal
from .patterns import SEPARATION_FRACTION, brightest_first_combinations
from .refinement import build_result, refine, refine_field
from .verification import verify

__all__ = ["MAX_PATTERN_STARS", "search"]

#: Pattern stars the brightest-first pattern list is built for once per process
#: (``SolveOptions.pattern_checking_stars`` takes a prefix; more stars extend it).
MAX_PATTERN_STARS = 30
#: The stages at which the brightest-first pattern list is cut into batches.
_PATTERN_STAGES = (6, 8, 10, 12, 14, 17, 20, 24, 30)
#: Most patterns between two checks of the time limit.
_MAX_BATCH = 1500
#: Hypotheses whose boresight and x axis agree this well are the same attitude.
_SAME_ATTITUDE_COS = math.cos(1e-3)
#: Up to this many centroids, one cone query serves verification and refinement.
_SHARED_CONE_CENTROIDS = 100


@lru_cache(maxsize=2)
def all_combos(n_stars: int = MAX_PATTERN_STARS) -> NDArray[np.intp]:
    """Brightest-first 4-combinations of ``max(n_stars, MAX_PATTERN_STARS)`` stars.

    Built once per process (and once more for a larger ``pattern_checking_stars``).
    """
    return brightest_first_combinations(max(n_stars, MAX_PATTERN_STARS))


def _combos(n: int) -> NDArray[np.intp]:
    """Brightest-first 4-combinations of ``n`` stars: a prefix of the largest list."""
    return all_combos(n)[: math.comb(n, 4)]


@lru_cache(maxsize=64)
def _batch_ends(n_stars: int) -> NDArray[np.intp]:
    """Ends of the pattern batches for ``n_stars`` pattern stars.

    Batches follow the brightest-first stages (all patterns of the brightest
    6, then 8, ... stars) and are split to at most ``_MAX_BATCH`` patterns so
    that the time-out is checked often.
    """
    ends = []
    done = 0
    for stage in (*[s for s in _PATTERN_STAGES if s < n_stars], n_stars):
        end = math.comb(stage, 4)
        while done < end:
            done = min(end, done + _MAX_BATCH)
            ends.append(done)
    return np.asarray(ends)  # treat as read-only (a read-only flag would retype kernels)


def _hypotheses(frame: Frame, ideal: NDArray[np.float64], cv: NDArray[np.float64],
                f_est: NDArray[np.float64], clargest: NDArray[np.float64], tol: float,
                parities: NDArray[np.bool_]):
    """Attitudes of the candidate pattern pairs whose four stars fit, in candidate order.

    A candidate fits when its largest star residual is within what the edge-ratio
    tolerance and a few pixels allow. The first candidate is fitted on its own:
    usually it is the answer and the others are never needed.
    """
    n = len(f_est)
    for lo, hi in ((0, min(1, n)), (1, n)):
        if lo >= hi:
            continue
        part = slice(lo, hi)
        R_all, res, par = frame.backend.pattern_attitudes(ideal[part], cv[part], f_est[part],
                                                          parities)
        limit = 2.0 * tol * clargest[part] + 3.0 / f_est[part]
        for m in np.flatnonzero(res <= limit):
            yield Hypothesis(R_all[m], float(f_est[lo + m]), bool(par[m]))


class _Tried:
    """Attitudes already verified (the same field found by another pattern is skipped)."""

    def __init__(self) -> None:
        self.z = np.empty((64, 3))
        self.x = np.empty((64, 3))
        self.n = 0

    def seen(self, R: NDArray[np.float64]) -> bool:
        """Whether ``R`` was tried; remembers it if not."""
        n = self.n
        if n and np.any((self.z[:n] @ R[2] > _SAME_ATTITUDE_COS)
                        & (self.x[:n] @ R[0] > _SAME_ATTITUDE_COS)):
            return True
        if n == len(self.z):
            self.z = np.concatenate([self.z, np.empty_like(self.z)])
            self.x = np.concatenate([self.x, np.empty_like(self.x)])
        self.z[n], self.x[n] = R[2], R[0]
        self.n += 1
        return False


def _budget(ends: NDArray[np.intp], max_patterns: int | None) -> tuple[NDArray[np.intp], bool]:
    """Batch ends cut at the pattern budget, and whether the budget cut them."""
    if max_patterns is None or max_patterns >= ends[-1]:
        return ends, False
    return np.append(ends[ends < max_patterns], max_patterns), True


def search(db, frame: Frame, cat: CatalogView, *, f_guess: float, fov_lo: float, fov_hi: float,
           parities: tuple[bool, ...], tol: float, radius_px: float, threshold: float,
           deadline: float | None, refine_iterations: int, t0: float,
           pattern_stars: int, max_patterns: int | None):
    """The pattern search; returns ``(SolveResult or None, status)``.

    ``pattern_stars`` thinned centroids form patterns; the status is
    ``'match_found'``, ``'too_few'``, ``'timeout'`` (the deadline passed),
    ``'budget'`` (``max_patterns`` patterns tried) or ``'no_match'``.
    """
    be = frame.backend
    sep_px = SEPARATION_FRACTION * fov_from_focal(f_guess, frame.width) * f_guess
    stars = be.thin_pixels(frame.ideal[: max(pattern_stars * 4, 100)], sep_px, pattern_stars)
    if len(stars) < 4:
        return None, "too_few"
    combos = _combos(len(stars))
    v_guess = frame.vectors(f_guess, False, stars)
    ends, budget_cut = _budget(_batch_ends(len(stars)), max_patterns)
    parity_options = np.array(parities, dtype=bool)
    directory, shift = db.key_directory
    tried = _Tried()
    verified = 0
    done = 0
    while done < ends[-1]:
        if deadline is not None and time.perf_counter() > deadline:
            return None, "timeout"
        # whole batches until one has candidates (or _MAX_BATCH patterns are done, so
        # that the time-out is still checked often)
        iquads, cstars, f_est, clargest, done = be.pattern_candidates(
            v_guess, combos, done, ends, _MAX_BATCH, db.pattern_bins, tol, db.pattern_keys,
            directory, shift, db.pattern_stars, db.star_xyz, f_guess, frame.width, fov_lo,
            fov_hi)
        if len(f_est) == 0:
            continue
        if frame.fixed_camera:
            # the pattern's scale only screened the candidates; the camera fixes f
            f_est = np.full(len(f_est), f_guess)
        # apparent directions when an observer velocity is given, as in verification
        cv = cat.vectors(cstars.ravel()).reshape(cstars.shape + (3,))
        ideal = frame.ideal[stars[iquads]]  # (m, 4, 2)
        for hyp in _hypotheses(frame, ideal, cv, f_est, clargest, tol, parity_options):
            if deadline is not None and time.perf_counter() > deadline:
                return None, "timeout"
            if tried.seen(hyp.R):
                continue
            verified += 1
            field = (refine_field(frame, cat, hyp)
                     if len(frame.ideal) <= _SHARED_CONE_CENTROIDS else None)
            n, prob = verify(frame, cat, hyp, radius_px, n_fixed=4, field=field)
            if prob * verified >= threshold:
                continue
            ref = refine(frame, cat, hyp, radius_px, refine_iterations, field=field)
            if ref is None:
                continue
            return build_result(db, frame, cat, ref, prob * verified, t0,
                                "lost_in_space"), "match_found"
    return None, "budget" if budget_cut else "no_match"
