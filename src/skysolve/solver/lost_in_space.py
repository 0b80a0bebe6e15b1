"""The lost-in-space search: image patterns against the database's pattern index.

The brightest centroids, thinned so that no two are closer than the
database's pattern-star separation, form 4-star patterns in brightest-first
order (all patterns of the brightest 6, then 8, 10, ... stars, in batches).
Each pattern's edge-ratio keys (:mod:`skysolve.solver.keys`) are looked up;
catalog patterns whose exact ratios agree within the tolerance, and whose
scale implies a focal length in the allowed range, become candidates. The
ratios are computed from the centroids' directions at an assumed focal
length; when the scale is unknown and the field wide, the range is tiled by
focal-length windows (:mod:`skysolve.solver.focal`), each searched with its
own unprojection, the windows taking turns batch by batch so that the
brightest patterns of every window come first. When nothing matches, the
whole search runs once more at a wider tolerance
(:data:`WIDE_TOLERANCE_FACTOR`; centroid noise on short patterns and an
unknown lens distortion move true ratios beyond the database's; on a small frame at
least :data:`SMALL_FRAME_RATIO_PX` over its diagonal) on the
patterns of the brightest :data:`WIDE_PATTERN_STARS` centroids, thinned at a
smaller separation (:data:`WIDE_SEPARATION_FACTOR`); when that finds nothing
either, a third pass at the first's tolerance takes its pattern stars in turns
from the cells of a grid over the image (:data:`SPREAD_CELLS`), so that a lit
object or a trail filling the brightest centroids from one part of the frame
does not hide the stars elsewhere; then a fourth, at the first's tolerance and
number of pattern stars, thins them at a much wider separation
(:data:`SPARSE_SEPARATION_FACTOR`), so that they reach far down a list whose
brightest entries are mostly false detections. With ``SolveOptions.deep_search`` (automatic
for an extraction that rejected more artefacts, with the doubtful centroids it kept,
than it kept other centroids), a last
pass at the wide tolerance (the first's, in a search over several focal-length
windows) looks up the patterns of the brightest
:data:`DEEP_PATTERN_STARS` (or more, when more pattern stars are asked for, but
for a search over several windows), and in a search of one window a deepest one
at the first's tolerance those of the brightest :data:`DEEPEST_PATTERN_STARS`,
then (time left) :data:`FARTHEST_PATTERN_STARS`,
for frames whose brightest centroids are mostly JPEG-smeared hot pixels,
cosmic rays and trail pieces. An
attitude is fitted to each candidate's four star pairs (Wahba's problem,
both parities unless a camera fixes it); a candidate whose stars fit is
verified (:mod:`skysolve.solver.verification`) and, if its false-match
probability times the number of hypotheses verified so far is below
``match_threshold``, refined (:mod:`skysolve.solver.refinement`) into the
answer -- unless most of the refined answer's matches are chance ones
(:func:`~skysolve.solver.refinement.mostly_chance`: a hypothesis right only about its
pattern, refitted to the chance matches of a dense list), when the search goes on.

With a position hint (a cone of radius ``r`` about a direction, roll
unknown), every star of the true field lies within ``r`` plus the field's
radius (the angle from the optical axis to the farthest image corner at
the shortest focal length searched) of the hint's centre. Catalog patterns
with a star outside that cone are dropped by the lookup itself (the
backend's ``hint`` test, per focal-length window), before any ratio is
compared. A hypothesis (fitted to four stars only) is verified only when its boresight
lies within the cone widened by :data:`_HYPOTHESIS_SLACK_PX` pixels (what such a fit
may be off by), and an answer is returned only when its refined boresight lies within
the cone itself, so a hint that misses the true pointing can only give no answer.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from .focal import FocalWindow, focal_windows
from .frame import CatalogView, Frame, Hypothesis, rows_of
from .options import MAX_PATTERN_STARS_LIMIT
from .patterns import SEPARATION_FRACTION, brightest_first_combinations
from .refinement import build_result, mostly_chance, refine, refine_field, refit_wider
from .verification import verify

__all__ = ["DEEP_PATTERN_STARS", "DEEPEST_PATTERN_STARS", "FARTHEST_PATTERN_STARS",
           "MAX_PATTERN_STARS",
           "SPARSE_SEPARATION_FACTOR", "SPREAD_CELLS", "SPREAD_PATTERN_STARS",
           "SMALL_FRAME_RATIO_PX", "WIDE_PATTERN_STARS", "WIDE_SEPARATION_FACTOR",
           "WIDE_TOLERANCE_FACTOR", "WIDE_TOLERANCE_MAX_FACTOR", "Cone", "answer", "search"]

#: Pattern stars the brightest-first pattern list is built for once per process
#: (``SolveOptions.pattern_checking_stars`` takes a prefix; more stars extend it).
MAX_PATTERN_STARS = 30
#: ... when the scale is searched over several windows: the database's patterns come
#: from the brightest few stars of each field, and deeper patterns in every window
#: would multiply the cost of giving up (and the hypotheses tried) for little gain.
WINDOWED_PATTERN_STARS = 14
#: The stages at which the brightest-first pattern list is cut into batches.
_PATTERN_STAGES = (6, 8, 10, 12, 14, 17, 20, 24, 30, 36, 43, 51, 60)
#: Most patterns between two checks of the time limit.
_MAX_BATCH = 1500
#: Hypotheses whose boresight and x axis agree this well are the same attitude.
_SAME_ATTITUDE_COS = math.cos(1e-3)
#: Up to this many centroids, one cone query serves verification and refinement.
_SHARED_CONE_CENTROIDS = 100
#: The second pass's ratio tolerance, in units of the database's ``pattern_max_error``.
#: A true pattern's ratios may miss the database's tolerance: centroid noise moves the
#: ratios of a pattern ``L`` px long by ~``2 sigma / L`` (0.3 px on the 300-800 px
#: patterns of a 2 deg field of 1024 px: 0.001-0.002), and a lens's distortion, unknown
#: without a camera model, by up to a few times its fractional displacement (3 % at
#: the corners of a 62 deg field: 0.001-0.005 on patterns off the centre). When the
#: search at the tolerance finds nothing, it runs again at this wider one (4x the
#: keys per pattern; its hypotheses count towards the same false-match bound).
WIDE_TOLERANCE_FACTOR = 2.0
#: ... on a small frame, at least this many pixels over the frame's diagonal ``D``
#: (px): centroids a pixel or two wide (a binning camera, a finder of few pixels) are
#: off by ~1/8 px, and its patterns are ~``D / 4`` long, so their ratios move by
#: ~``2 (1/8) / (D / 4) = 1 / D``. A 1024x768 frame's 0.0008 is within the wide
#: tolerance of a database of ``pattern_max_error`` 0.0004 or more (the default 0.001
#: gives 0.002: only frames under ~500 px across are searched wider; in general those
#: under ``1 / (WIDE_TOLERANCE_FACTOR * pattern_max_error)`` px). The first real frame
#: binned 4x (256x192 px) on a 0.001 database: of 10 FOV estimates within 2 %, 3 solved
#: at 0.002 and all 10 at 0.003.
SMALL_FRAME_RATIO_PX = 1.0
#: ... but at most this many times the database's tolerance (the keys a pattern looks
#: up grow with the square of the tolerance: giving up on a binned frame took 60 ms at
#: 3x, 210 ms at 5x and 1.0 s at 8x).
WIDE_TOLERANCE_MAX_FACTOR = 4.0
#: The second pass's pattern-star separation, in units of the database's: the catalog
#: stars were thinned against catalog stars only, the centroids also against false
#: detections, so a false star just brighter than a pattern star would hide it.
WIDE_SEPARATION_FACTOR = 0.5
#: The second pass's pattern stars (per window): its patterns cost ~4x the first's, and
#: it is there for the brightest patterns a first pass missed, not for deeper ones.
WIDE_PATTERN_STARS = 12
#: The third pass (run when the first two find nothing) takes its pattern stars spread
#: over the image: in turns from the cells of a ``SPREAD_CELLS`` x ``SPREAD_CELLS``
#: grid, the brightest of every cell first. Foreground lit by street lights (branches,
#: roof edges), a bright trail, a cluster of hot pixels fill the brightest few dozen
#: centroids from one part of the frame; the stars elsewhere then never form a pattern
#: of the first two passes, whose pattern stars are simply the brightest.
SPREAD_CELLS = 4
#: ... how many pattern stars it takes (495 patterns, a third of the wide pass's cost:
#: giving up on a field of random points takes ~4 % longer, the patterns the first pass
#: looked up skipped)
SPREAD_PATTERN_STARS = 12
#: ... from how many of the brightest centroids
SPREAD_HEAD = 400
#: The fourth pass (run when the first three find nothing) takes the first's tolerance and
#: number of pattern stars, thinned at this many times the database's separation. When
#: false detections outshine most stars (80 false among 20 stars, brightness
#: log-uniform), the brightest 50 hold fewer than four stars in a third of the lists;
#: thinned this widely, every kept centroid clears the brighter ones around it and the 50
#: reach about twice as deep. Measured on three samples of 100 such lists (seeds 33, 133,
#: 233; pattern_checking_stars=50): without it 75, 69, 61 solved; with it 91, 89, 88
#: (x3: 77, 73; x4.5: 83, 82; x8: 79, 78, 72 -- wider drops the close pairs of bright
#: stars the catalog's own patterns are made of). It adds about a third to the time of
#: giving up on random points (9.0 -> 12.3 ms).
SPARSE_SEPARATION_FACTOR = 6.0
#: The deep pass (``SolveOptions.deep_search``), run when the others find nothing: the
#: wide pass's tolerance and separation on this many pattern stars. A frame whose
#: brightest centroids are mostly JPEG-smeared hot pixels, cosmic rays and trail pieces
#: may have its brightest stars at ranks 15-25 (the 14,950 patterns make giving up
#: take 3-3.5x as long: 14.4 -> 50.8 ms on 40 random lists). A search over several
#: focal-length windows (no scale hint) takes this pass to the same depth in every window,
#: at the first pass's tolerance (the wide one's 4x keys in every window made giving up
#: hit the 5 s time-out): capped at :data:`WINDOWED_PATTERN_STARS`, the pass could not
#: reach the stars it is for. On the two real frames under the benchmark's mixture at
#: ``moderate`` (seeds 0-11, no hint, the 5-30 deg default database) 16 of 24 solved
#: with the cap and 20 without it; giving up on such a frame takes 1.6-2.8 s instead of
#: 0.7-1.2 s.
DEEP_PATTERN_STARS = 26
#: ... and when that finds nothing either, in a search of one focal-length window (a
#: scale hint), the deepest pass: the first pass's tolerance on this many pattern stars
#: (the most ``SolveOptions.pattern_checking_stars`` allows), at the wide pass's
#: separation. Under the benchmark's mixture at ``strong`` the two real frames keep 5-15
#: of their 33 stars among 80-160 centroids, 2-4 of them among the brightest 24: with
#: FOV estimates within 2 % (10 seeds each, the benchmark's 10-20 deg Gaia database) 8
#: of 20 solved without it, 13 with it, none wrong (the wide tolerance on 50 stars
#: solved no more, and on a database of ``pattern_max_error=0.005``, the default one's,
#: its 4x keys made giving up hit the 5 s time-out where this pass solves). Giving up on
#: such a frame takes 0.2-0.3 s instead of 0.03-0.2 s on the benchmark's database, and
#: reaches the 5 s time-out on the default one (1.5-3.5 s without it, which solves 9
#: of the 20 with it and 5 without). Answers found before it are unchanged: it runs
#: last.
DEEPEST_PATTERN_STARS = MAX_PATTERN_STARS_LIMIT
#: ... and when that finds nothing either (one focal-length window, time left), the pool
#: widened once more: the first pass's tolerance on this many pattern stars at the wide
#: pass's separation, the patterns of the deepest pass skipped. Under the benchmark's
#: mixture at ``strong`` the first real frame keeps only 5-9 stars among 80-115
#: centroids, some of them at ranks 50-60 (true stars at ranks 4, 12, 17, 41, 55, 58, 59
#: of one list): of its six lists (seeds 1-9) the deepest pass left unsolved, this one
#: solves two (seeds 1 and 3; 70, 80 or 100 stars solved no more of them), none wrong;
#: giving up on the other four takes 0.18-0.26 s of CPU instead of 0.09-0.12 s (the
#: benchmark's 10-20 deg Gaia database, warm). It runs only where the deepest pass ran,
#: after it: answers found before are unchanged, and frames without ``deep_search`` never
#: reach it.
FARTHEST_PATTERN_STARS = 60
#: Margin on a focal-length window's inner bounds for the scale a candidate implies
#: (that estimate is itself slightly off when the window's centre is).
_WINDOW_MARGIN = 0.01


def all_combos(n_stars: int = MAX_PATTERN_STARS) -> NDArray[np.intp]:
    """Brightest-first 4-combinations of ``max(n_stars, MAX_PATTERN_STARS)`` stars.

    Built once per process (and once more for a larger ``pattern_checking_stars``).
    """
    return _all_combos(max(n_stars, MAX_PATTERN_STARS))


@lru_cache(maxsize=3)  # (30, 50 and 60 stars: the first, deepest and farthest passes)
def _all_combos(n_stars: int) -> NDArray[np.intp]:
    return brightest_first_combinations(n_stars)


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
    if n == 0:
        return
    # the first candidate on its own, in scalars (numpy's per-call overhead on one row,
    # and arrays handed back by the kernel, cost more than the test): the same arithmetic
    # as the array form below
    f0 = f_est[0]
    R0, res0, par0 = frame.backend.pattern_attitude(ideal, cv, 0, f0, parities, frame.proj)
    if res0 <= 2.0 * tol * clargest[0] + 3.0 / f0:
        yield Hypothesis(R0, float(f0), bool(par0), ideal[0])
    if n > 1:
        part = slice(1, n)
        R_all, res, par = frame.backend.pattern_attitudes(ideal[part], cv[part], f_est[part],
                                                          parities, frame.proj)
        limit = 2.0 * tol * clargest[part] + 3.0 / f_est[part]
        for m in np.flatnonzero(res <= limit):
            yield Hypothesis(R_all[m], float(f_est[1 + m]), bool(par[m]), ideal[1 + m])


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


@lru_cache(maxsize=4)
def _parity_array(parities: tuple[bool, ...]) -> NDArray[np.bool_]:
    """``parities`` as the array the backend takes (made once per tuple; treat as
    read-only: a read-only flag would retype the kernels)."""
    return np.array(parities, dtype=bool)


def _budget(ends: NDArray[np.intp], max_patterns: int | None) -> tuple[NDArray[np.intp], bool]:
    """Batch ends cut at the pattern budget, and whether the budget cut them."""
    if max_patterns is None or max_patterns >= ends[-1]:
        return ends, False
    return np.append(ends[ends < max_patterns], max_patterns), True


def pattern_stars(frame: Frame, f: float, limit: int,
                  separation: float = SEPARATION_FRACTION,
                  spread: bool = False) -> NDArray[np.intp]:
    """Rows of the (at most ``limit``) centroids that form patterns at focal length ``f``:
    the brightest, imaged by the projection at ``f``, none closer to a brighter one than
    ``separation`` times the field of view (the database's rule by default).

    With ``spread``, the thinned centroids are taken in turns from the cells of a
    :data:`SPREAD_CELLS` grid over the image, the brightest of every cell first (see
    :data:`SPREAD_PATTERN_STARS`).
    """
    key = (f, limit, separation, spread)
    rows = frame.memo.get(key)  # (the first pass's stars are the probe of the windows)
    if rows is not None:
        return rows
    n_head = min(len(frame.ideal), SPREAD_HEAD if spread else max(limit * 4, 100))
    take = n_head if spread else limit
    head = frame.ideal[:n_head]
    sep_px = separation * frame.fov(f) * f
    valid = frame.imaged(slice(0, n_head), f)
    if valid is None or valid.all():
        rows = frame.backend.thin_pixels(head, sep_px, take)
    else:
        rows = np.flatnonzero(valid)
        rows = rows[frame.backend.thin_pixels(head[rows], sep_px, take)]
    if spread:
        rows = _spread(frame, rows, limit)
    frame.memo[key] = rows
    return rows


def _spread(frame: Frame, rows: NDArray[np.intp], limit: int) -> NDArray[np.intp]:
    """The first ``limit`` of ``rows`` (brightest first) taken in turns from the cells of a
    grid over the image: the brightest of each cell, then the second brightest, ..."""
    xy = frame.xy[rows]
    n = SPREAD_CELLS
    cx = np.clip(((xy[:, 0] / frame.width + 0.5) * n).astype(np.intp), 0, n - 1)
    cy = np.clip(((xy[:, 1] / frame.height + 0.5) * n).astype(np.intp), 0, n - 1)
    cell = cy * n + cx
    # rank of each row within its cell (rows are brightest first, the sort is stable)
    order = np.argsort(cell, kind="stable")
    first = np.searchsorted(cell[order], cell[order], side="left")
    rank = np.empty(len(rows), np.intp)
    rank[order] = np.arange(len(rows)) - first
    return rows[np.lexsort((np.arange(len(rows)), rank))[:limit]]


@dataclass
class _Plan:
    """The patterns of one focal-length window and how far their search has got.

    A plan's patterns are set up on its first turn (:func:`_prepare`): a search
    over many windows usually ends long before it reaches most of them.
    """

    window: FocalWindow
    f_lo: float                      # bounds on the focal length a candidate implies
    f_hi: float
    stars: NDArray[np.intp] | None = None         # frame rows of the pattern stars
    v_guess: NDArray[np.float64] | None = None    # their vectors at the window's centre
    ends: NDArray[np.intp] | None = None
    combos: NDArray[np.intp] | None = None        # its 4-star patterns (rows of stars)
    weight: float = 1.0              # share of the search's effort (see _schedule)
    min_cos: float = -2.0            # smallest cosine from a position hint of a pattern star
    done: int = 0


def _windows(frame: Frame, f_lo: float, f_hi: float, f_guess: float | None, tol: float,
             n_stars: int) -> list[FocalWindow]:
    """The focal-length windows of the search (one when the camera is fixed), measured on
    the patterns of the brightest of ``n_stars`` thinned centroids."""
    if frame.fixed_camera:
        return [FocalWindow(f_lo, f_guess, f_hi)]
    probe = pattern_stars(frame, math.sqrt(f_lo * f_hi), n_stars)
    return focal_windows(rows_of(frame.ideal, probe), frame.proj, f_lo, f_hi, tol, f_guess,
                         frame.backend)


def _plan(w: FocalWindow, f_lo: float, f_hi: float) -> _Plan:
    """The plan of window ``w`` of the range ``[f_lo, f_hi]``, its patterns not yet set up
    (:func:`_prepare`)."""
    lo = w.lo if w.lo <= f_lo else w.lo * (1.0 - _WINDOW_MARGIN)
    hi = w.hi if w.hi >= f_hi else w.hi * (1.0 + _WINDOW_MARGIN)
    return _Plan(w, lo, hi)


def _prepare(plan: _Plan, frame: Frame, limit: int, separation: float,
             cone: Cone | None, spread: bool = False,
             tried: tuple[int, float] | None = None) -> bool:
    """Set up ``plan``'s patterns of the brightest ``limit`` stars thinned at
    ``separation`` (see :func:`pattern_stars`); False when fewer than four are imaged
    there or no pattern is left.

    ``tried = (n, sep)``: the patterns of the brightest ``n`` stars thinned at ``sep``
    were looked up at this tolerance already (an earlier pass), and those among these
    are skipped.
    """
    w = plan.window
    stars = pattern_stars(frame, w.centre, limit, separation, spread)
    if len(stars) < 4:
        return False
    combos = _combos(len(stars))
    if tried is not None:
        done = np.isin(stars, pattern_stars(frame, w.centre, *tried))
        combos = np.ascontiguousarray(combos[~done[combos].all(axis=1)])
        if len(combos) == 0:
            return False
        plan.ends = np.append(np.arange(_MAX_BATCH, len(combos), _MAX_BATCH), len(combos))
    else:
        plan.ends = _batch_ends(len(stars))
    plan.stars, plan.combos = stars, combos
    plan.v_guess = frame.vectors(w.centre, False, stars)
    plan.weight = math.log(frame.fov(w.lo) / frame.fov(w.hi)) + 1e-9
    if cone is not None:
        plan.min_cos = cone.min_cos(frame, plan.f_lo)
    return True


def _schedule(windows: list[FocalWindow], f_lo: float, f_hi: float, ready):
    """The plans of ``windows`` (of the range ``[f_lo, f_hi]``) in the order their batches
    are searched in: the window with the fewest patterns searched per unit of its weight
    goes next.

    A window's weight is the range of fields of view it covers, in ``ln fov``:
    every field size is equally likely a priori, so a window covering 2-6 deg
    deserves as much effort as the hundred that cover 100-120 deg together.
    Ties go to the earlier window (nearest the estimate when there is one).
    A window's plan is made on its first turn (:func:`_plan`: a search told no scale
    tiles a wide range into up to :data:`~.focal.MAX_WINDOWS` windows, and usually
    ends within a few of them), where ``ready(plan)`` sets it up; a plan it refuses is
    dropped.
    """
    heap = [(0.0, i) for i in range(len(windows))]
    plans: dict[int, _Plan] = {}
    while heap:
        _, i = heapq.heappop(heap)
        plan = plans.get(i)
        if plan is None:
            plan = plans[i] = _plan(windows[i], f_lo, f_hi)
        if plan.ends is None and not ready(plan):
            continue
        yield plan
        if plan.done < plan.ends[-1]:
            heapq.heappush(heap, (plan.done / plan.weight, i))


#: Extra radius of the pattern-star cone of a position hint: aberration (~20"), proper
#: motion since the database's epoch and the field-radius estimate's slack.
_CONE_MARGIN_RAD = 1e-3
#: How far (px at the hypothesis's focal length) outside a position hint's cone a
#: hypothesis's boresight may lie and still be verified: a four-star fit's boresight is
#: off its refined value by up to ~1.5 px (71" on 10-20 deg fields of 1024 px, 794
#: solves), so a truth just inside the cone's edge is not refused before refinement.
_HYPOTHESIS_SLACK_PX = 10.0
#: No position hint: every catalog star may form patterns.
_NO_HINT = np.zeros(0)


@dataclass
class Cone:
    """A position hint: boresight within ``radius`` (rad) of ``centre`` (ICRS unit vector)."""

    centre: NDArray[np.float64]
    radius: float

    def __post_init__(self) -> None:
        # (the centre as floats: numpy's product of two 3-vectors cost ~2 us a test, and a
        # hinted solve tests every hypothesis and its refinement)
        self._xyz = tuple(float(c) for c in self.centre)

    def holds(self, R: NDArray[np.float64], slack: float = 0.0) -> bool:
        """Whether the boresight (camera +Z) of attitude ``R`` lies in the cone widened
        by ``slack`` (rad)."""
        x, y, z = R[2].tolist()
        cx, cy, cz = self._xyz
        return x * cx + y * cy + z * cz >= math.cos(min(self.radius + slack, math.pi))

    def min_cos(self, frame: Frame, f_lo: float) -> float:
        """The smallest cosine of the angle from the centre a star of a field in the cone
        may have, when the focal length is at least ``f_lo``: the cone's radius plus the
        field's (to the image corner farthest from the optical axis, as far out as the
        lens sees it: a barrel lens's corners see beyond their raw distance)."""
        field = max(frame.angle_of_radius(frame.reach_px(), f_lo), frame.reach_angle(f_lo))
        reach = self.radius + field + _CONE_MARGIN_RAD
        return -2.0 if reach >= math.pi else math.cos(reach)


def _try(db, frame: Frame, cat: CatalogView, plan: _Plan, found, tol: float,
         parity_options, state, radius_px: float, threshold: float, deadline: float | None,
         refine_iterations: int, t0: float, cone: Cone | None):
    """Verify the candidates ``found`` by ``plan``'s latest batch; the result, or None.

    ``state`` is ``[attitudes tried, [number verified], catalog-side test, most to
    verify]`` across the whole search (the third: whether verification also tests from
    the catalog's side, :func:`~skysolve.solver.verification.catalog_side_probability`;
    the last None, or the budget of hypotheses verified: ``'budget'`` when it is spent).
    Hypotheses (and refined answers) with the boresight outside ``cone`` are skipped.
    """
    iquads, cstars, f_est, clargest = found
    if frame.fixed_camera:
        # the pattern's scale only screened the candidates; the camera fixes f
        f_est = np.full(len(f_est), plan.window.centre)
    # apparent directions when an observer velocity is given, as in verification
    cv = cat.vectors(cstars.ravel()).reshape(cstars.shape + (3,))
    ideal = rows_of(frame.ideal, rows_of(plan.stars, iquads))  # (m, 4, 2)
    for hyp in _hypotheses(frame, ideal, cv, f_est, clargest, tol, parity_options):
        if deadline is not None and time.perf_counter() > deadline:
            return "timeout"
        if state[0].seen(hyp.R) or (
                cone is not None and not cone.holds(hyp.R, _HYPOTHESIS_SLACK_PX / hyp.f)):
            continue
        if state[3] is not None and state[1][0] >= state[3]:
            return "budget"
        state[1][0] += 1
        field = (refine_field(frame, cat, hyp)
                 if len(frame.ideal) <= _SHARED_CONE_CENTROIDS else None)
        n, prob = verify(frame, cat, hyp, radius_px, n_fixed=4, field=field,
                         catalog_side=state[2])
        if prob * state[1][0] >= threshold:
            continue
        out = answer(db, frame, cat, hyp, radius_px, refine_iterations, deadline, cone,
                     prob * state[1][0], t0, field)
        if out is not None:
            return out
    return None


def answer(db, frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float,
           refine_iterations: int, deadline: float | None, cone: Cone | None,
           probability: float, t0: float, field=None):
    """The lost-in-space :class:`~skysolve.solver.result.SolveResult` of the verified
    hypothesis ``hyp`` (false-match probability ``probability``), refined in ``frame``
    (:func:`~skysolve.solver.refinement.refine`, then
    :func:`~skysolve.solver.refinement.refit_wider`); None when the refinement fails, its
    boresight leaves ``cone``, or most of its matches are chance ones
    (:func:`~skysolve.solver.refinement.mostly_chance`: a drift off a patch)."""
    ref = refine(frame, cat, hyp, radius_px, refine_iterations, field=field)
    if ref is None:
        return None
    ref = refit_wider(frame, cat, ref, radius_px, refine_iterations, deadline=deadline)
    if cone is not None and not cone.holds(ref.hyp.R):
        return None
    if mostly_chance(frame, cat, ref, radius_px):
        return None
    return build_result(db, frame, cat, ref, probability, t0, "lost_in_space")


def _run_pass(db, frame: Frame, cat: CatalogView, windows: list[FocalWindow], f_lo: float,
              f_hi: float, ready, tol: float, parity_options, state, left: list,
              radius_px: float, threshold: float, deadline: float | None,
              refine_iterations: int, t0: float, cone: Cone | None):
    """One pass of the pattern search at ratio tolerance ``tol`` over the plans of
    ``windows`` of the range ``[f_lo, f_hi]`` (set up by ``ready`` on their first turn,
    see :func:`_schedule`); returns ``(SolveResult or None, status)`` with status
    ``'match_found'``, ``'timeout'``, ``'budget'`` or ``'no_match'``. ``state`` and
    ``left`` (the patterns left of the budget, ``[None]`` for none) carry over from pass
    to pass."""
    hint = _NO_HINT if cone is None else cone.centre
    directory, shift = db.key_directory
    # one window: whole batches until one has candidates (_MAX_BATCH patterns at most, so
    # that the time-out is still checked often); several: one batch at a time
    step = _MAX_BATCH if len(windows) == 1 else 1
    for plan in _schedule(windows, f_lo, f_hi, ready):
        if deadline is not None and time.perf_counter() > deadline:
            return None, "timeout"
        ends, cut = _budget(plan.ends, None if left[0] is None else plan.done + left[0])
        if cut and ends[-1] <= plan.done:
            return None, "budget"
        start = plan.done
        *found, plan.done = frame.backend.pattern_candidates(
            plan.v_guess, plan.combos, plan.done, ends, step,
            db.pattern_bins, tol, db.pattern_keys, directory, shift, db.pattern_stars,
            db.star_xyz, hint, plan.min_cos, plan.window.centre, plan.f_lo, plan.f_hi)
        if left[0] is not None:
            left[0] -= plan.done - start
        if len(found[2]) == 0:
            continue
        out = _try(db, frame, cat, plan, found, tol, parity_options, state, radius_px,
                   threshold, deadline, refine_iterations, t0, cone)
        if isinstance(out, str):  # ('timeout', or 'budget': the hypotheses' spent)
            return None, out
        if out is not None:
            return out, "match_found"
    return None, "budget" if left[0] is not None and left[0] <= 0 else "no_match"


def _passes(db, tol: float, n_stars: int, deep: bool = False, windowed: bool = False,
            diagonal_px: float = math.inf) -> list[tuple[float, int, float, bool]]:
    """The search's passes as ``(ratio tolerance, pattern stars, separation, spread)``:
    ``tol`` on the brightest ``n_stars``; when wider, :data:`WIDE_TOLERANCE_FACTOR` times
    the database's tolerance (on a frame of ``diagonal_px`` pixels across, at least
    :data:`SMALL_FRAME_RATIO_PX` over it, up to :data:`WIDE_TOLERANCE_MAX_FACTOR` times
    the database's) on the brightest :data:`WIDE_PATTERN_STARS` thinned at
    :data:`WIDE_SEPARATION_FACTOR` times the separation; then ``tol`` on
    :data:`SPREAD_PATTERN_STARS` spread over the image; then ``tol`` on ``n_stars``
    thinned at :data:`SPARSE_SEPARATION_FACTOR` times the separation; with ``deep``, the
    wider of the two tolerances on the brightest :data:`DEEP_PATTERN_STARS` (``n_stars``
    if more) at the wide separation (``tol`` when ``windowed``: the search runs every pass
    in several focal-length windows), and, unless ``windowed``, ``tol`` on the brightest
    :data:`DEEPEST_PATTERN_STARS`, then :data:`FARTHEST_PATTERN_STARS`, at that
    separation."""
    passes = [(tol, n_stars, SEPARATION_FRACTION, False)]
    wide = max(WIDE_TOLERANCE_FACTOR * db._pattern_max_error,
               min(SMALL_FRAME_RATIO_PX / diagonal_px,
                   WIDE_TOLERANCE_MAX_FACTOR * db._pattern_max_error))
    narrow_sep = SEPARATION_FRACTION * WIDE_SEPARATION_FACTOR
    if wide > tol:
        passes.append((wide, min(n_stars, WIDE_PATTERN_STARS), narrow_sep, False))
    passes.append((tol, min(n_stars, SPREAD_PATTERN_STARS), SEPARATION_FRACTION, True))
    passes.append((tol, n_stars, SEPARATION_FRACTION * SPARSE_SEPARATION_FACTOR, False))
    if deep:
        deep_tol = tol if windowed else max(wide, tol)
        passes.append((deep_tol, max(n_stars, DEEP_PATTERN_STARS), narrow_sep, False))
        if not windowed:
            passes.append((tol, DEEPEST_PATTERN_STARS, narrow_sep, False))
            passes.append((tol, FARTHEST_PATTERN_STARS, narrow_sep, False))
    return passes


def _tried(done: list[tuple[float, int, float, bool]], tol: float
           ) -> tuple[int, float] | None:
    """``(pattern stars, separation)`` of the largest earlier brightest-first pass at
    ``tol`` (its patterns need no second lookup; of equal ones, the least thinned, whose
    stars are the brightest), or None."""
    same = [(n, sep) for t, n, sep, spread in done if t == tol and not spread]
    return max(same, key=lambda ns: (ns[0], -ns[1])) if same else None


def search(db, frame: Frame, cat: CatalogView, *, f_lo: float, f_hi: float,
           f_guess: float | None, parities: tuple[bool, ...], tol: float, radius_px: float,
           threshold: float, deadline: float | None, refine_iterations: int, t0: float,
           pattern_stars: int, budget: list[int | None], cone: Cone | None = None,
           deep: bool = False, verified: list[int] | None = None,
           max_verified: int | None = None):
    """The pattern search over focal lengths ``[f_lo, f_hi]`` (px); returns ``(SolveResult
    or None, status)``.

    ``f_guess`` is the camera's focal length when the frame's camera is fixed,
    else an optional estimate. ``pattern_stars`` thinned centroids form
    patterns; ``budget[0]`` more patterns at most are looked up (over every
    window and pass; None: no limit), and ``budget[0]`` is left with those left (a solve's
    searches share it); ``verified[0]`` (if given) counts the hypotheses verified, on from
    a solve's earlier searches, and at most ``max_verified`` are (None: no limit);
    ``cone`` is an optional position hint. The search runs at
    ratio tolerance ``tol`` and, when that finds nothing, once more at a wider one
    (see :func:`_passes`) on fewer pattern stars thinned at a smaller separation, then
    on pattern stars spread over the image, then on pattern stars thinned at a much
    wider separation, and with ``deep`` on more pattern stars at the wide tolerance (at
    ``tol`` on :data:`DEEP_PATTERN_STARS` in each of several focal-length windows), then,
    in one window, on still more at ``tol``. The
    status is ``'match_found'``, ``'too_few'``, ``'timeout'`` (the deadline passed),
    ``'budget'`` (the pattern budget or ``max_verified`` spent) or ``'no_match'``.
    """
    windows = _windows(frame, f_lo, f_hi, f_guess, tol, pattern_stars)
    left = budget
    parity_options = _parity_array(parities)
    # a deep search's lists are mostly false detections, or rank their stars low: its
    # hypotheses are also verified from the catalog's side (answers without it unchanged)
    # (the count of hypotheses verified, by which a candidate's false-match probability
    # is multiplied, goes on from a solve's earlier searches: the blind search after one
    # over the database's range verified 2-31 on random lists, after 3,300-4,300 there)
    state = [_Tried(), [0] if verified is None else verified, deep, max_verified]
    status = "too_few"
    done: list[tuple[float, int, float, bool]] = []  # the passes run, per window
    windowed = len(windows) > 1
    passes = _passes(db, tol, pattern_stars, deep, windowed,
                     math.hypot(frame.width, frame.height))
    for i, (pass_tol, n, separation, spread) in enumerate(passes):
        # the deep pass keeps its depth in every window (see DEEP_PATTERN_STARS), but no
        # more: 50 pattern stars asked for are 230,300 patterns a window
        limit = n
        if windowed:
            last = deep and i == len(passes) - 1
            limit = min(n, DEEP_PATTERN_STARS if last else WINDOWED_PATTERN_STARS)
        # a pass skips the patterns an earlier one at its tolerance looked up
        tried = _tried(done, pass_tol)
        done.append((pass_tol, limit, separation, spread))
        usable: list[bool] = []  # the plans set up, whether they have patterns

        def ready(plan: _Plan, limit=limit, separation=separation, spread=spread,
                  tried=tried, usable=usable) -> bool:
            usable.append(_prepare(plan, frame, limit, separation, cone, spread, tried))
            return usable[-1]

        result, pass_status = _run_pass(db, frame, cat, windows, f_lo, f_hi, ready, pass_tol,
                                        parity_options, state, left, radius_px, threshold,
                                        deadline, refine_iterations, t0, cone)
        if pass_status not in ("no_match", "too_few"):
            return result, pass_status
        if any(usable):  # a pass without a plan of four stars leaves the status as it was
            status = pass_status
    return None, status
