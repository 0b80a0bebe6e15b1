"""Refinement of an accepted hypothesis with all matched stars, and the result it gives.

Each pass matches every centroid to the catalog projected through the
current hypothesis, fits attitude (and focal length, unless a camera model
fixes it) robustly -- least-trimmed-squares concentration steps, then sigma
clipping that never clips inside a fifth of the match radius -- and refits
the inliers (the backend's ``refine``). The kept matches give the reported
errors and the attitude covariance ``sigma^2 (sum(I - v v^T))^-1``, where
``v`` are the matched unit vectors and ``sigma`` the rms residual over the
degrees of freedom the fit leaves, widened for few stars (:func:`one_sigma_t`).

The clip's scale comes from the best 60 % of the matches, so false detections that
land by chance near catalog stars, when they are more than ~40 % of the matches, pass
it and pull the fit. When a kept residual lies beyond the clip's floor (never on clean
fields), the matches are made again under the hypothesis and the core of right ones
found by where they crowd, whatever the share of chance ones, and refitted
(:func:`_without_chance_matches`, outside the backends and through their primitives,
so both give the same answer). That rebuild trusts the hypothesis to place every star
to a pixel; where the refinement moved some star further than the match radius from it
(a pattern in one part of a very wide field), the answer whose matches crowd more about
their stars is kept (:func:`_more_crowded`).

A list so crowded that every catalog star has a chance centroid within the match
radius, and whose refinement is not clean (a kept residual beyond the clip floor), is
refined again from a start found on its brightest centroids (:data:`_CROWDED_CHANCE`):
the whole list cannot pull a hypothesis some pixels off onto its stars. So is a list
with a chance centroid for every fourth star or more whose refinement's median
residual is not yet fine (:data:`_BRIGHT_START_MEDIAN`). On such lists a refinement
that stalls unsettled (as many matches at the same median, pass after pass) looks
further ahead, and keeps a pass whose matches crowd far more about their stars
(:func:`_looked_ahead`); crowding is compared in logarithms, as a right answer's is
beyond what a float holds.

With a camera model the matching runs at the camera's focal length; then,
when the matches determine it (``SolveOptions.refine_scale``), the kept
pairs are refitted once more with the focal length free: the image's own
plate scale, a factor on the camera's focal length that changes between
images of one camera (velocity aberration changes it by up to ~1e-4, ~2" at
the corner of a 12 degree field). This step runs outside the backends, through
their ``fit_pairs`` with ``fixed_camera=False`` (the same call an uncalibrated
solve makes), so both backends give the same answer by construction.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..camera import projection as _proj
from ..camera.distortion import polynomial_design_matrix
from ..geometry import attitude_covariance_on_sky, rotation_to_radec_roll, signed_degrees
from .backends.reference import ARCSEC_PER_RAD, clip_floor_px, median, rematch
from .frame import CatalogView, Frame, Hypothesis, make_frame, rows_of
from .radialterm import MIN_RSS_RATIO, fit_radial, offsets, radial_camera, worth_testing
from .result import SolveResult
from .verification import binomial_tail, log_binomial_tail

__all__ = ["Refined", "refine", "refine_field", "refit_wider", "build_result", "mostly_chance",
           "one_sigma_t", "ARCSEC_PER_RAD", "MAX_SCALE_CHANGE"]

#: Fits of a radial lens term at most (each from the stars the previous one matched, while
#: the refit matches better: a strong term brings in the field's edge in steps).
_RADIAL_ROUNDS = 4


@dataclass
class Refined:
    """A refined hypothesis with its kept matches (image rows, star-table rows, errors)."""

    hyp: Hypothesis
    img_idx: NDArray[np.intp]
    cat_idx: NDArray[np.intp]
    errors_rad: NDArray[np.float64]
    #: the frame of a camera the refinement fitted (a radial term), else None: the solve's
    frame: Frame | None = None
    #: parameters the last fit took from the matches: the rotation's 3, and the focal length
    fitted: int = 3


def refine_field(frame: Frame, cat: CatalogView, hyp: Hypothesis):
    """The cone :func:`refine` works on: every pass re-projects these stars."""
    return cat.field(frame, hyp, 3 * len(frame.ideal), margin_px=0.02 * frame.width)


def refine(frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float, iterations: int,
           sigma_clip: float = 3.0, field=None, chance_check: bool = True) -> Refined | None:
    """Re-match all stars and refit ``iterations + 1`` times; None when the fit fails.

    ``chance_check``: when some kept residuals lie beyond the clip floor, run the
    refinement again from its answer while it has not settled (:func:`_settled`), then
    rebuild the answer from the matches that crowd about their stars
    (:func:`_without_chance_matches`). Both trust the
    hypothesis to predict the right stars to a pixel, as a verified pattern's four stars
    do; a tracking vote's rotation may instead pivot about part of the field, whose
    scattered matches are what refuses it (``tracking._rigid``), and the check would keep
    the matches about the pivot (a hint rolled 25 deg: an answer 415" off passed with 31
    matches): tracking passes False."""
    # one cone query serves every pass: the attitude moves by far less than its margin
    idx_all, v_all = refine_field(frame, cat, hyp) if field is None else field
    ok, R, f, img_idx, rows, err = _passes(frame, v_all, hyp.R, hyp.f, hyp.parity, radius_px,
                                           iterations, sigma_clip)
    # a crowded list refined cleanly (every kept residual inside the clip floor: the TESS-like
    # frames) needs no bright-star start, which costs them a third more time; a list with a
    # chance match for every fourth star or more needs it when its answer has not settled
    # (a 110 deg field of 1,406 centroids, 0.79 a star, its pattern 5.7 % of focal length
    # off: each pass moved it 0.01-0.06 deg, and it was returned 1.45 deg off)
    chance = chance_per_star(frame, radius_px)
    if (chance > _CROWDED_CHANCE and (not ok or _largest(err) > clip_floor_px(radius_px) / f)
            or chance > _BRIGHT_CHANCE and ok
            and median(err) * f > _BRIGHT_START_MEDIAN * radius_px):
        start = _from_brightest(frame, cat, hyp, radius_px, iterations, sigma_clip,
                                chance_check)
        if start is not hyp:
            hyp = start
            idx_all, v_all = refine_field(frame, cat, hyp) if field is None else field
            ok, R, f, img_idx, rows, err = _passes(frame, v_all, hyp.R, hyp.f, hyp.parity,
                                                   radius_px, iterations, sigma_clip)
    if not ok:
        return None
    # on clean fields every kept residual lies well inside the clip floor (at most 0.75 of
    # it on 404 solves of 10-20 deg fields): the checks cost them nothing
    if chance_check and _largest(err) > clip_floor_px(radius_px) / f:
        n = len(img_idx)
        R, f, img_idx, rows, err = _settled(frame, v_all, hyp.parity, radius_px, iterations,
                                            sigma_clip, (R, f, img_idx, rows, err),
                                            chance_per_star(frame, radius_px) <= _BRIGHT_CHANCE)
        if len(img_idx) > n:  # (the chance check matches under the settled answer)
            hyp = Hypothesis(R, f, hyp.parity)
        if len(img_idx) == n or _largest(err) > clip_floor_px(radius_px) / f:
            clean = _without_chance_matches(frame, hyp, v_all, radius_px, iterations,
                                            sigma_clip)
            if clean is not None:
                R, f, img_idx, rows, err = _more_crowded(frame, v_all, hyp, radius_px,
                                                         iterations, sigma_clip, clean,
                                                         (R, f, img_idx, rows, err))
    scale_free = not frame.fixed_camera
    if frame.fixed_camera and frame.refine_scale is not False:
        f0 = f
        if _scale_wanted(frame.refine_scale, len(img_idx)):
            R, f, err = _refine_scale(frame, img_idx, v_all[rows], R, f, hyp.parity, err)
        if f == f0:  # (not refined, or beyond this image's own scale: a wrong camera?)
            fit = _refit_scale(frame, v_all, hyp.parity, radius_px, iterations, sigma_clip,
                               (R, f, img_idx, rows, err))
            if fit is not None:
                R, f, img_idx, rows, err = fit
                if _scale_wanted(frame.refine_scale, len(img_idx)):
                    R, f, err = _refine_scale(frame, img_idx, v_all[rows], R, f, hyp.parity,
                                              err)
        scale_free = f != f0
    ref = Refined(Hypothesis(R, f, hyp.parity), img_idx, rows_of(idx_all, rows), err,
                  fitted=3 + scale_free)
    # (most solves' residuals are too few or too small to test: no pairs gathered for it)
    if frame.fixed_camera or not worth_testing(err, f):
        return ref
    ref = _with_radial_term(frame, cat, ref, v_all[rows], (idx_all, v_all), radius_px,
                            iterations, sigma_clip, chance_check)
    return with_projection(frame, cat, ref, radius_px, iterations, sigma_clip, chance_check)


#: :func:`refit_wider` looks at a lost-in-space answer that matched fewer than this share
#: of the centroids (a right answer on the 300 x 1600 field below matched 95-99 % of
#: them, the stuck ones 16-44 %) ...
_WIDER_SHARE = 0.5
#: ... of a list this sparse (chance centroids a star within the match radius,
#: :func:`chance_per_star`) ...
_WIDER_CHANCE = 0.25
#: ... whose matches leave a part of the image bare: a third of it (a band of rows or
#: columns) or a ninth (a cell of the 3 x 3 grid) that holds at least this share of the
#: centroids ...
_WIDER_CELL_SHARE = 0.1
#: ... where the answer matched under this fraction of its share overall (a right answer
#: among false detections matches about its share everywhere; the stuck ones of the
#: field below matched 0.06-0.39 of it in the third farthest from their pattern) ...
_WIDER_BARE = 0.5
#: The multiples of the match radius it refines at, in turn, each from the last ...
_WIDER_RADII = (2.0, 4.0, 8.0)
#: ... those that put at most this many chance centroids within the wider radius of a star.
_WIDER_MAX_CHANCE = 5.0


def _bare_part(frame: Frame, img_idx: NDArray[np.intp]) -> bool:
    """Whether the matched centroids ``img_idx`` leave a part of the image bare (see
    :data:`_WIDER_CELL_SHARE` and :data:`_WIDER_BARE`)."""
    xy = frame.xy
    n = len(xy)
    col = np.clip(((xy[:, 0] / frame.width + 0.5) * 3).astype(np.intp), 0, 2)
    row = np.clip(((xy[:, 1] / frame.height + 0.5) * 3).astype(np.intp), 0, 2)
    cell = 3 * row + col
    cells = np.bincount(cell, minlength=9).reshape(3, 3)
    matched = np.bincount(cell[img_idx], minlength=9).reshape(3, 3)  # (distinct rows)
    share = len(img_idx) / n
    parts = [(cells.ravel(), matched.ravel()), (cells.sum(axis=1), matched.sum(axis=1)),
             (cells.sum(axis=0), matched.sum(axis=0))]
    least = max(_WIDER_CELL_SHARE * n, 10)
    return any(bool(np.any((every >= least) & (got < _WIDER_BARE * share * every)))
               for every, got in parts)


def refit_wider(frame: Frame, cat: CatalogView, ref: Refined, radius_px: float,
                iterations: int, sigma_clip: float = 3.0,
                deadline: float | None = None) -> Refined:
    """``ref``, a lost-in-space refinement, or a better one refined from wider radii, when
    ``ref`` matched few of the centroids (:data:`_WIDER_SHARE`) of a sparse list
    (:data:`_WIDER_CHANCE`), has not settled (:data:`_UNSETTLED_MEDIAN`) and left a part
    of the image bare (:func:`_bare_part`); ``deadline``: the solve's
    (``time.perf_counter``), checked before each wider refinement.

    A pattern near the end of a very wide pinhole field predicts its own part of the
    field to a pixel and the rest ever worse (the focal length trades off against a
    tilt there): its refinement fits the stars of that part and stops where the next
    ones lie just beyond the match radius. A 300 x 1600 frame 45 deg across, 131 deg
    along: 253 of 1,138 centroids matched, all at the pattern's end, 1.2 deg off at 4.5 %
    of focal length and 0.6 px median residual; refined again from there, 471 and
    stuck. At twice the radius its middle is matched too, and the refinement from there
    reaches the truth (1,089 matched, 0.001 deg off); from a start 1.6 deg off it took
    four to eight times the radius. So the refinements at :data:`_WIDER_RADII` times the
    radius run in turn, each from the last (while chance puts at most
    :data:`_WIDER_MAX_CHANCE` centroids within that radius of a star), and from each a
    refinement at the radius; the answer is the one of these that matches more stars
    than ``ref`` and every earlier one at a smaller median residual than theirs, and
    the search stops at one that has settled. They run in the solve's ``frame``: each
    tests a radial lens term of its own (a term ``ref`` fitted to part of the field may
    not hold for the rest); a wider refinement that took another projection ends them.

    The gates keep right answers out: the median residual of a converged one is the
    centroid noise, and on a noisy list (1 px at a 10 px radius) it exceeds a tenth of
    the radius, but its matches, however few among false detections, spread over the
    image as the centroids do.
    """
    lens = frame if ref.frame is None else ref.frame
    if len(ref.img_idx) >= _WIDER_SHARE * len(lens.ideal):
        return ref
    err, f = ref.errors_rad, ref.hyp.f
    # (the largest residual first: a cheap screen, no larger than the median)
    if _largest(err) * f <= _UNSETTLED_MEDIAN * radius_px:
        return ref
    chance = chance_per_star(lens, radius_px)
    spread = median(err) * f
    if (chance > _WIDER_CHANCE or spread <= _UNSETTLED_MEDIAN * radius_px
            or not _bare_part(lens, ref.img_idx)):
        return ref
    start, best, best_spread = ref.hyp, ref, spread
    for times in _WIDER_RADII:
        if (chance * times * times > _WIDER_MAX_CHANCE
                or deadline is not None and time.perf_counter() > deadline):
            break
        wide = refine(frame, cat, start, times * radius_px, iterations, sigma_clip,
                      chance_check=False)
        if wide is None or (wide.frame is not None
                            and wide.frame.camera.projection != frame.camera.projection):
            break
        start = wide.hyp
        out = refine(frame, cat, start, radius_px, iterations, sigma_clip)
        if out is None or len(out.img_idx) <= len(best.img_idx):
            continue
        spread_out = median(out.errors_rad) * out.hyp.f
        if spread_out < best_spread:
            best, best_spread = out, spread_out
            if spread_out <= _UNSETTLED_MEDIAN * radius_px:
                break
    return best


#: The fisheye projections a solve told none tries when its own (the pinhole, or the
#: equidistant of a fisheye search) does not fit ...
GUESSED_PROJECTIONS = ("equidistant", "equisolid", "stereographic")
#: ... on fields whose corners lie at least this far from the axis (radians). The
#: projections differ from one another by a term cubic in the angle from the axis to
#: leading order, which the radial lens term absorbs; what it leaves, of fifth order, is
#: under a pixel below this (a 60 deg equidistant lens leaves ~6 px rms).
_GUESS_REACH = math.radians(20.0)


def with_projection(frame: Frame, cat: CatalogView, ref: Refined, radius_px: float,
                    iterations: int, sigma_clip: float, chance_check: bool = True) -> Refined:
    """``ref``, or its refinement under a fisheye projection that fits the image far
    better, when the solve was told no projection (:attr:`Frame.guessed_projection`).

    A fisheye solved as the pinhole it was not said not to be fits, with the radial term,
    to pixels at its edge (a 60 deg equidistant lens: 44-63 matches at 4-6 px rms, up to
    0.16 deg off, with a :class:`~skysolve.errors.LensModelWarning`). Where the pinhole's
    residuals are large enough to test (:func:`.radialterm.worth_testing`) on a wide field
    (:data:`_GUESS_REACH`), each of :data:`GUESSED_PROJECTIONS` that fits the pinhole's
    pairs about as well (:func:`_fits_as_well`) refines the attitude and focal length
    from the pinhole's (the projections agree near the axis), its own radial term
    included; one is taken when it matches at least as many stars and leaves at most
    ``1 / MIN_RSS_RATIO`` of the mean square residual of the best so far, or
    :func:`_core_fits_better` than it (a dense list's chance matches). The result's
    camera model then names it.
    """
    if (not frame.guessed_projection or frame.fixed_camera
            or not worth_testing(ref.errors_rad, ref.hyp.f)
            or frame.reach_angle(ref.hyp.f) < _GUESS_REACH):
        return ref
    best = ref
    # the matched stars' distances from the optical centre (px) and angles from the axis:
    # each projection's focal length to start from (the pinhole's is a few per cent off
    # that of a fisheye, and its edge stars then start beyond the match radius)
    r = frame.radii[ref.img_idx]
    theta = np.arccos(np.clip(cat.vectors(ref.cat_idx) @ ref.hyp.R[2], -1.0, 1.0))
    for name in GUESSED_PROJECTIONS:
        if name == frame.camera.projection:
            continue
        other = make_frame(frame.xy, frame.width, frame.height, None, name, frame.backend,
                           crpix=frame.centre, centre_told=frame.centre_told)
        rho = _proj.radius_of_angle(theta, other.proj)
        f = float(r @ rho / (rho @ rho))
        if not (math.isfinite(f) and f > 0.0) or not _fits_as_well(other, cat, ref, f):
            continue
        out = refine(other, cat, Hypothesis(ref.hyp.R, f, ref.hyp.parity), radius_px,
                     iterations, sigma_clip, chance_check=chance_check)
        if out is None:
            continue
        if out.frame is None:
            out.frame = other
        if ((len(out.img_idx) >= len(best.img_idx)
                and MIN_RSS_RATIO * _mean_square(out) <= _mean_square(best))
                or _core_fits_better(frame, out, best, radius_px)):
            best = out
    return best


#: A centroid list so crowded that on average this many of its centroids fall by chance
#: within the match radius of a catalog star ...
_CROWDED_CHANCE = 1.0
#: ... is first refined on its brightest centroids alone, as many as put this many there:
#: every star of a crowded list has a chance match, so a hypothesis a few pixels off (a
#: pattern of a 5-30 deg database in a 90 deg field of 10,500 centroids: 0.4 deg and 1.6 %
#: of focal length off) is refitted to them and stays off (0.36 deg, 9,518 matches of
#: which 2,072 right, at 1.8 px median residual), where the bright ones, sparse enough for
#: the right stars to stand out, pull it onto the right answer.
_BRIGHT_CHANCE = 0.25
#: A list with at least :data:`_BRIGHT_CHANCE` chance centroids a star is refined from its
#: brightest too when its refinement's median residual exceeds this fraction of the match
#: radius (a converged fit's is the centroid noise, a few hundredths of it): a 110 deg JPEG
#: of 1,279 centroids (0.71 a star) stopped 0.2 deg off at 1.27 px of a 12.8 px radius.
_BRIGHT_START_MEDIAN = 0.05


#: A projection is refined only when the pinhole's matched pairs, refitted under it
#: without a radial term, leave at most this many times the pinhole solve's median
#: square residual (:func:`_fits_as_well`) ... Fisheyes (60-90 deg equidistant) the
#: pinhole solved, even 1.3 deg off, left 0.13-3.0 times, a 100 deg equisolid and a 120
#: deg stereographic lens's true projection 6.5-8.4; pinhole fields of 40-80 deg with
#: 0.7-1 px centroid noise, whose residuals are worth testing, 19-970 times.
_SCREEN_RATIO = 5.0
#: ... unless the pinhole's answer is this loose (rms px of its matches): such noisy
#: pinholes fitted to 1-1.5 px, the two fisheyes the screen turned away to 4.9-6.2 px.
_SCREEN_LOOSE_PX = 2.5


def _fits_as_well(other: Frame, cat: CatalogView, ref: Refined, f: float) -> bool:
    """Whether ``ref``'s matched pairs, refitted under ``other``'s projection from focal
    length ``f`` (px) without a radial term, fit about as well as ``ref`` did, or ``ref``
    is loose (see :data:`_SCREEN_RATIO`): a screen before :func:`refine`, which costs several times
    more; three of them had made noisy wide pinhole solves 10-20 times slower. Medians,
    as pairs the pinhole matched by chance fit no projection."""
    n = len(ref.img_idx)
    if math.sqrt(_mean_square(ref)) * ref.hyp.f >= _SCREEN_LOOSE_PX:
        return True
    _, _, err, ok = other.backend.fit_pairs(
        other.ideal[ref.img_idx], cat.vectors(ref.cat_idx), np.arange(n, dtype=np.int64),
        f, ref.hyp.parity, other.proj, False)
    return bool(ok) and (float(np.median(err * err))
                         <= _SCREEN_RATIO * float(np.median(ref.errors_rad ** 2)))


def chance_per_star(frame: Frame, radius_px: float) -> float:
    """How many of the frame's centroids fall by chance, on average, within ``radius_px``
    (px) of a catalog star: their density times the match disc."""
    return len(frame.ideal) * math.pi * radius_px ** 2 / (frame.width * frame.height)


def _from_brightest(frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float,
                    iterations: int, sigma_clip: float, chance_check: bool) -> Hypothesis:
    """``hyp`` refined on the brightest centroids of a crowded frame (see
    :data:`_BRIGHT_CHANCE`); ``hyp`` itself when they do not refine."""
    count = max(4, int(len(frame.ideal) * _BRIGHT_CHANCE / chance_per_star(frame, radius_px)))
    # (centroids are brightest first; a fresh memo: it holds results of the whole list; the
    # projection kept: the whole list's refinement decides whether another fits better)
    bright = dataclasses.replace(frame, xy=frame.xy[:count], ideal=frame.ideal[:count],
                                 _radii=None, memo={}, guessed_projection=False)
    out = refine(bright, cat, hyp, radius_px, iterations, sigma_clip, chance_check=chance_check)
    # a hypothesis that already places the stars where their refinement does is kept
    # as it is: the whole list refines it as before (TESS-like frames, 2.8 chance
    # centroids per star, are solved to the same answers)
    if out is None or _moved_px(bright, cat.vectors(out.cat_idx), hyp, out.hyp.R,
                                out.hyp.f) <= clip_floor_px(radius_px):
        return hyp
    return Hypothesis(out.hyp.R, out.hyp.f, hyp.parity)


def _moved_px(frame: Frame, v: NDArray[np.float64], hyp: Hypothesis, R: NDArray[np.float64],
              f: float) -> float:
    """How far (ideal px) ``(R, f)`` places the catalog vectors ``v`` from where ``hyp``
    does, at most (0 for none)."""
    d = (offsets(v @ R.T, f, hyp.parity, frame.proj)
         - offsets(v @ hyp.R.T, hyp.f, hyp.parity, frame.proj))
    return float(np.nanmax(np.hypot(d[:, 0], d[:, 1]))) if len(v) else 0.0


#: A refinement whose median kept residual exceeds this fraction of the match radius has
#: not settled (a converged fit's median is the centroid noise, a few hundredths of it).
#: A hypothesis from a pattern in part of a very wide field predicts the far stars pixels
#: off (a 115 deg pinhole field from a 2 % focal-length error: ~15 px at the corners, the
#: match radius); the passes the solve asks for then end half-way, on the stars near the
#: pattern, fitted to a focal length a few percent off (a simulated 115 deg field: 77
#: matches, 6 px rms, the boresight 1.4 deg off, against 197 matches at 0.4 px after one
#: more refinement).
_UNSETTLED_MEDIAN = 0.1
#: Such a refinement runs again from its answer, at most this many more times, while that
#: matches more stars, and either :data:`_SETTLING_GROWTH` times as many or at a median
#: residual at most :data:`_SETTLING_GAIN` of the last one's: a refit among chance matches
#: (centroids dense enough that most stars have one within the radius) matches a few more
#: at much the same median (400 then 420, and 408 then 449, at 6.0-6.8 px of a 12.8 px
#: radius, on an all-sky JPEG of 1,248 centroids; a settling one 60, 75 then 150 at 5.3,
#: 4.8 then 0.4 px).
_MORE_REFINEMENTS = 4
#: See :data:`_MORE_REFINEMENTS`. On a list with at most :data:`_BRIGHT_CHANCE` chance
#: centroids a star (a crowded list's brightest), a refit that moved its matched stars
#: further than the clip floor goes on too: a hypothesis still on its way (a crowded 90
#: deg field of 3,611 centroids, its pattern 1.2 deg and 4.5 % of focal length off: on
#: its brightest 447, 295 then 331 matches at 5.4 then 4.9 px, the stars moved 10 px,
#: then 422 at 0.13 px on the right answer; it stopped at the second, and was returned
#: 0.8 deg off at 5 px rms). Not on denser lists, where a refit among chance matches
#: moves as far and drifts (an all-sky JPEG's rim patch: 1.7 deg off).
_SETTLING_GROWTH, _SETTLING_GAIN = 1.2, 0.75


def _passes(frame: Frame, v_all: NDArray[np.float64], R: NDArray[np.float64], f: float,
            parity: bool, radius_px: float, iterations: int, sigma_clip: float):
    """The backend's refinement passes from ``(R, f, parity)`` over the cone ``v_all``:
    ``(ok, R, f, image rows, cone rows, residuals)``."""
    cx, cy = frame.centre
    return frame.backend.refine(frame.ideal, v_all, R, f, parity, frame.proj,
                                frame.fixed_camera, cx, cy, *frame.ideal_half_size(),
                                radius_px, iterations, sigma_clip)


def _settled(frame: Frame, v_all: NDArray[np.float64], parity: bool, radius_px: float,
             iterations: int, sigma_clip: float, fit: tuple, sparse: bool = False):
    """The backend refinement ``fit`` = ``(R, f, image rows, cone rows, residuals)``, run
    again from its own answer while it has not settled (:data:`_UNSETTLED_MEDIAN`) and
    that matches many more stars, or more and better, or (``sparse``: a list with few
    chance matches, see :data:`_SETTLING_GROWTH`) more while still moving them
    (:data:`_MORE_REFINEMENTS` times at most)."""
    for _ in range(_MORE_REFINEMENTS):
        R, f, img_idx, _, err = fit
        spread = median(err) * f
        if spread <= _UNSETTLED_MEDIAN * radius_px:
            break
        ok, *again = _passes(frame, v_all, R, f, parity, radius_px, iterations, sigma_clip)
        if not ok:
            break
        n, n_again = len(img_idx), len(again[2])
        if n_again <= n or (
                n_again < _SETTLING_GROWTH * n
                and median(again[4]) * again[1] > _SETTLING_GAIN * spread
                and not (sparse and _moved_px(frame, v_all[again[3]], Hypothesis(R, f, parity),
                                              again[0], again[1]) > clip_floor_px(radius_px))):
            return _looked_ahead(frame, v_all, parity, radius_px, iterations, sigma_clip, fit,
                                 tuple(again))
        fit = tuple(again)
    return fit


#: A refinement that stalled unsettled runs this many passes further all the same, and
#: on while they make its matches crowd more about their stars, to this many at most ...
_LOOK_AHEAD, _LOOK_AHEAD_MAX = 4, 30
#: ... and takes the one whose matches crowd about their stars so much more than the
#: stalled one's that the log of chance's odds of them (:func:`_crowding`, about their
#: stars) is this many times as large.
_LOOK_AHEAD_ODDS = 1.5


def _looked_ahead(frame: Frame, v_all: NDArray[np.float64], parity: bool, radius_px: float,
                  iterations: int, sigma_clip: float, fit: tuple, again: tuple) -> tuple:
    """``fit``, a refinement that stalled unsettled (its refit ``again`` matched few more
    stars at much the same median), or the refit up to :data:`_LOOK_AHEAD` passes further
    on (more while each makes them crowd more, up to ``_LOOK_AHEAD_MAX``, until one
    settles) whose matches crowd most about their stars, when that is far more than
    ``fit``'s (:data:`_LOOK_AHEAD_ODDS`).

    On a list dense enough that most stars have a chance centroid within the match
    radius, counts and medians stall while a hypothesis a few per cent of focal length
    off is still on its way: a 110 deg pinhole JPEG of 771 centroids (0.43 a star) went
    1.4, 1.2, 1.1 then 0.7 deg off at 596, 605, 599 then 615 matches and 4.0-3.1 px
    median, the next pass matching 766 at 0.12 px on the right answer (chance's odds of
    the matches, about their stars, 1e-71, 1e-78, 1e-97, 1e-142, then far below what a
    float holds). A refit drifting among chance matches moves its odds little (1e-17 to
    6e-18)."""
    log_fit = _crowding(frame, v_all, fit[0], fit[1], parity, radius_px, trend=False)
    if not -math.inf < log_fit < 0.0:
        return fit
    best, log_best = fit, log_fit
    for k in range(_LOOK_AHEAD_MAX + 1):
        log_p = _crowding(frame, v_all, again[0], again[1], parity, radius_px, trend=False)
        if log_p < log_best:
            best, log_best = again, log_p
        elif k >= _LOOK_AHEAD:
            break
        if (k == _LOOK_AHEAD_MAX
                or median(again[4]) * again[1] <= _UNSETTLED_MEDIAN * radius_px):
            break
        ok, *nxt = _passes(frame, v_all, again[0], again[1], parity, radius_px, iterations,
                           sigma_clip)
        if not ok:
            break
        again = tuple(nxt)
    return best if log_best <= _LOOK_AHEAD_ODDS * log_fit else fit


#: Kept matches up to which :func:`_largest` takes Python's max (beyond, numpy's).
_SCALAR_MAX_ROWS = 128


def _largest(err: NDArray[np.float64]) -> float:
    """The largest of the kept residuals ``err`` (finite: each passed the clip). A few dozen
    in Python floats: numpy's reduction machinery is otherwise run by nothing else in a
    solve, and fetching its code is most of its cost on a cold solve."""
    return max(err.tolist()) if len(err) <= _SCALAR_MAX_ROWS else float(err.max())


#: The smooth residual field the chance-match check measures residuals about: a polynomial of this
#: order per axis ...
_TREND_ORDER = 3
#: ... fitted when at least this many matches determine it (4 per coefficient), else none.
_TREND_MIN_MATCHES = 40
#: Radii (besides the floor) tried at most for the core of right matches.
_CHANCE_FREE_STEPS = 60
#: Most rounds of fitting the core and re-matching (on the seed's TESS-like frames the
#: kept set settles within 1-7; the rounds after the fifth move a star or two).
_CLEAN_ROUNDS = 5


def _without_chance_matches(frame: Frame, hyp: Hypothesis, v_all: NDArray[np.float64],
                            radius_px: float, iterations: int, sigma_clip: float):
    """The refinement's answer rebuilt from the matches that are not chance coincidences:
    ``(R, f, image rows, cone rows, residuals)``, or None to keep the backend's.

    The backend's clip takes its scale from the best 60 % of the matches; when false
    detections make up more than ~40 % of them (JPEG blocks, hot pixels and cosmic rays
    within the match radius of catalog stars), that scale holds chance matches, which
    then pull the fit by pixels. A chance match lies anywhere in the match disc, so
    ``n(t)``, the matches within ``t`` of their star, grows as ``t**2`` for them; the
    right stars crowd near zero. Matched under the hypothesis (its pattern stars predict
    the others to a pixel, and no false match has moved it), the radius ``t`` (at least
    the clip floor) where ``n(t)`` is least likely under chance alone (the binomial tail
    of ``n(t)`` of ``n`` at probability ``(t / radius)**2``) bounds the core of right
    matches, however many false ones surround it. The attitude is fitted to the core,
    the matches re-made, and those within ``sigma_clip`` robust sigmas (the core's) kept,
    until they repeat.

    An uncorrected lens spreads the right stars' residuals smoothly over the image (pixels
    at the corners of a wide field): with :data:`_TREND_MIN_MATCHES` matches or more, the
    residuals are measured about a cubic field per axis fitted to the core (a chance
    match's residual is random, a right star's follows its neighbours').
    """
    floor = clip_floor_px(radius_px)
    parity = hyp.parity
    scale = 0.5 * math.hypot(frame.width, frame.height)
    trees: dict = {}  # the centroids' KD-trees, for every round
    i, rows, d = _residual_vectors(frame, v_all, hyp.R, hyp.f, parity, radius_px, trees)
    if len(i) < 4:
        return None
    r = _about_trend(frame.ideal[i], d, np.ones(len(i), bool), scale)
    core = r <= _chance_free_radius(r, floor, radius_px)
    if len(i) >= _TREND_MIN_MATCHES:  # the trend again, without the chance matches
        r = _about_trend(frame.ideal[i], d, core, scale)
    t = _chance_free_radius(r, floor, radius_px)
    if t >= r.max():
        return None  # nothing looks like chance
    core = r <= t
    R, f = hyp.R, hyp.f
    for _ in range(min(iterations + 1, _CLEAN_ROUNDS)):
        R, f, _res, ok = frame.backend.fit_pairs(frame.ideal[i], v_all[rows],
                                                 np.flatnonzero(core), f, parity, frame.proj,
                                                 frame.fixed_camera)
        if not ok:
            return None
        pairs = i[core] * len(v_all) + rows[core]
        i, rows, d = _residual_vectors(frame, v_all, R, f, parity, radius_px, trees)
        was = np.isin(i * len(v_all) + rows, pairs)
        if was.sum() < 3:
            return None
        r = _about_trend(frame.ideal[i], d, was, scale)
        core = r <= max(sigma_clip * 1.4826 * median(r[was]), floor)
        if core.sum() < 3:
            return None
        if np.array_equal(core, was):
            break
    R, f, err, ok = frame.backend.fit_pairs(frame.ideal[i], v_all[rows], np.flatnonzero(core), f,
                                            parity, frame.proj, frame.fixed_camera)
    if not ok:
        return None
    return R, f, i[core], rows[core], err[core]


def _crowding(frame: Frame, v_all: NDArray[np.float64], R: NDArray[np.float64], f: float,
              parity: bool, radius_px: float, trend: bool = True) -> float:
    """How unlikely chance alone makes the matches under ``(R, f, parity)``: the logarithm
    of the least binomial tail of :func:`_least_likely` over their residuals about the
    image's smooth residual field (:func:`_about_trend`), or with ``trend`` False about
    their stars. The smaller, the more the matches crowd about their stars: the better
    the answer. (In logarithms: the tail of a right answer's matches on a crowded list
    is less than a float holds, and two such answers tied at 0; a 110 deg JPEG's
    refinement onto 708 stars at 0.2 px was taken for no better than 438 of them at 0.8
    px, 0.19 deg off.)"""
    i, _rows, d = _residual_vectors(frame, v_all, R, f, parity, radius_px, {})
    if len(i) == 0:
        return 0.0
    r = (_about_trend(frame.ideal[i], d, np.ones(len(i), bool),
                      0.5 * math.hypot(frame.width, frame.height)) if trend
         else np.hypot(d[:, 0], d[:, 1]))
    return _least_likely(r, clip_floor_px(radius_px), radius_px, log=True)[1]


def _more_crowded(frame: Frame, v_all: NDArray[np.float64], hyp: Hypothesis, radius_px: float,
                  iterations: int, sigma_clip: float, clean: tuple, fit: tuple) -> tuple:
    """The chance-free rebuild ``clean`` of the refinement ``fit`` (both ``(R, f, image
    rows, cone rows, residuals)``) of ``hyp``; but when ``hyp`` places some of the stars
    the refinement matched more than the match radius from where the refinement does,
    the one whose matches crowd more about their stars (:func:`_crowding`), and when
    that is the refinement, run again from its answer while that makes them crowd more
    still (:data:`_MORE_REFINEMENTS` times at most).

    The rebuild matches under the hypothesis, trusting it to predict every star to a
    pixel; a pattern in one part of a very wide field does not (a 103 deg pinhole field
    of 80 centroids, a 5-30 deg database's pattern 1.4 deg and 5 % of focal length off:
    the rebuild kept 46 stars about the pattern and ended 0.72 deg off, at 2.8 px median
    residual, where the refinement had reached 0.16 deg and its next passes the truth).
    Chance matches pull a refinement by pixels, not by the match radius: where the
    hypothesis is trusted, the rebuild is kept whatever the crowding (a refinement pulled
    onto three false detections crowds more, having more matches)."""
    parity = hyp.parity
    if not _moved_px(frame, v_all[fit[3]], hyp, fit[0], fit[1]) > radius_px:
        return clean
    log_clean = _crowding(frame, v_all, clean[0], clean[1], parity, radius_px)
    log_fit = _crowding(frame, v_all, fit[0], fit[1], parity, radius_px)
    if log_clean <= log_fit:
        return clean
    for _ in range(_MORE_REFINEMENTS):
        ok, *again = _passes(frame, v_all, fit[0], fit[1], parity, radius_px, iterations,
                             sigma_clip)
        if not ok:
            break
        log_again = _crowding(frame, v_all, again[0], again[1], parity, radius_px)
        if log_again >= log_fit:
            break
        fit, log_fit = tuple(again), log_again
    return fit


def _residual_vectors(frame: Frame, v_all: NDArray[np.float64], R: NDArray[np.float64],
                      f: float, parity: bool, radius_px: float, trees: dict):
    """Matches under ``(R, f, parity)``: (centroid rows, cone rows, residual vectors in
    ideal px), as the backend's refinement makes them."""
    cx, cy = frame.centre
    rows, p, i, j = rematch(frame.backend, frame.ideal, v_all, R, f, parity, frame.proj, cx, cy,
                            *frame.ideal_half_size(), radius_px, trees)
    return i, rows[j], frame.ideal[i] - p[j]


def _about_trend(xy: NDArray[np.float64], d: NDArray[np.float64], fit: NDArray[np.bool_],
                 scale: float) -> NDArray[np.float64]:
    """Lengths of the residual vectors ``d`` about a smooth field fitted to the rows
    ``fit`` (none with fewer than :data:`_TREND_MIN_MATCHES`)."""
    if np.count_nonzero(fit) < _TREND_MIN_MATCHES:
        return np.hypot(d[:, 0], d[:, 1])
    A = polynomial_design_matrix(xy[:, 0], xy[:, 1], _TREND_ORDER, scale)
    coef = np.linalg.lstsq(A[fit], d[fit], rcond=None)[0]
    e = d - A @ coef
    return np.hypot(e[:, 0], e[:, 1])


def _chance_free_radius(r: NDArray[np.float64], floor: float, radius: float) -> float:
    """The radius ``t >= floor`` whose count of residuals ``r <= t`` is least likely if
    every match were a chance one, uniform in the disc of ``radius`` (see
    :func:`_without_chance_matches`)."""
    return _least_likely(r, floor, radius)[0]


def _least_likely(r: NDArray[np.float64], floor: float, radius: float,
                  log: bool = False) -> tuple[float, float]:
    """``(t, p)``: the radius ``t >= floor`` of :func:`_chance_free_radius` and the
    binomial tail ``p`` of its count under chance alone (``log``: its logarithm)."""
    s = np.sort(r)
    n = len(s)
    above = s[(s > floor) & (s < radius)]
    # (a few hundred matches need not try every radius: the rounds that follow settle it)
    above = above[::max(1, len(above) // _CHANCE_FREE_STEPS)]
    tail, none = (log_binomial_tail, 0.0) if log else (binomial_tail, 1.0)
    best_t, best_p = floor, math.inf
    for t in np.concatenate([[floor], above]):
        k = int(np.searchsorted(s, t, side="right"))
        p = tail(k, n, min(1.0, (t / radius) ** 2)) if k else none
        if p < best_p:
            best_t, best_p = float(t), p
    return best_t, best_p


def _with_radial_term(frame: Frame, cat: CatalogView, ref: Refined, v_cat: NDArray[np.float64],
                      field, radius_px: float, iterations: int, sigma_clip: float,
                      chance_check: bool = True) -> Refined:
    """``ref``, or its refinement with a radial lens term when its residuals call for one
    (:mod:`skysolve.solver.radialterm`) and the refit matches better (refined with or
    without the chance-match check as ``ref`` was: see :func:`refine`): it leaves at most
    ``1 / MIN_RSS_RATIO`` of ``ref``'s mean square residual or :func:`_core_fits_better`,
    or it matches many more stars that crowd more about their stars
    (:func:`_matches_more`)."""
    fitted = radial_camera(frame.ideal[ref.img_idx], v_cat, ref.hyp.R, ref.hyp.f,
                           ref.hyp.parity, frame.camera, ref.errors_rad,
                           free_centre=not frame.centre_told)
    best = ref
    for round_ in range(_RADIAL_ROUNDS):
        if fitted is None:
            break
        camera, R = fitted
        lens = make_frame(frame.xy, frame.width, frame.height, camera, camera.projection,
                          frame.backend, refine_scale=True)
        if not np.isfinite(lens.ideal).all():  # a centroid the term cannot undistort
            break
        out = refine(lens, cat, Hypothesis(R, camera.focal_length_px, ref.hyp.parity),
                     radius_px, iterations, sigma_clip, field=field, chance_check=chance_check)
        if out is None or _mean_square(out) >= _mean_square(best):
            break
        out.frame = lens
        best = out
        if round_ == _RADIAL_ROUNDS - 1:
            break
        # the stars the term brought in (the field's edge) pin it down better (the
        # optical centre fitted again if the first fit freed it)
        centre = bool(np.any(np.asarray(camera.crpix) != np.asarray(frame.camera.crpix)))
        fitted = fit_radial(frame.ideal[out.img_idx], cat.vectors(out.cat_idx), out.hyp.R,
                            out.hyp.f, out.hyp.parity, frame.camera, centre)
    if best is ref:  # no term fitted, or no refit with it matched better
        return ref
    # the term must explain most of the residual, not tidy up noise and a few outliers
    if (MIN_RSS_RATIO * _mean_square(best) <= _mean_square(ref)
            or _core_fits_better(frame, best, ref, radius_px)):
        return best
    return best if _matches_more(frame, best, ref, field[1], radius_px) else ref


#: A refinement whose median square residual is ``1 / MIN_RSS_RATIO`` of another's is
#: preferred when it keeps at least this share of the other's matches
#: (:func:`_core_fits_better`: the tight answers kept 0.88-1.04 of the loose ones').
CORE_KEEP = 0.75


def _core_fits_better(frame: Frame, new: Refined, old: Refined, radius_px: float) -> bool:
    """Whether, on a list dense enough for chance matches to count
    (:data:`MIN_CHANCE_PER_STAR` within ``radius_px`` of a star, px), the refinement
    ``new`` (with a radial term, or under another projection) leaves at most
    ``1 / MIN_RSS_RATIO`` of the median square residual of ``old``'s matches and keeps at
    least :data:`CORE_KEEP` as many.

    Where the centroids are dense and the match radius wide, nearly every catalog star in
    the field has a centroid within the radius, so the count of matches says little, and
    chance matches with the edge stars a model fits worst decide the mean square; the
    median residual is that of the right matches. A 90 deg field of 3,000 centroids with
    1 % barrel distortion at its corners, matched within 40 px, kept 2,148 matches 12"
    off at 1.8 px median residual against 2,234 at 0.47 px with the term, whose mean
    square the 1 % of them beyond 7 px held to 1.8 times less; a 60 deg equidistant lens
    of 3,000 centroids solved as a pinhole kept 2,442 matches at 11.9 px median against
    the equidistant's 2,142 at 0.6 px."""
    if (chance_per_star(frame, radius_px) < MIN_CHANCE_PER_STAR
            or len(new.img_idx) < CORE_KEEP * len(old.img_idx)):
        return False
    return MIN_RSS_RATIO * _median_square(new) <= _median_square(old)


def _matches_more(frame: Frame, lens: Refined, plain: Refined, v_all: NDArray[np.float64],
                  radius_px: float) -> bool:
    """Whether the refit with a radial term ``lens`` matches :data:`_SETTLING_GROWTH`
    times as many stars as the plain refinement ``plain`` and they crowd more about their
    stars (:func:`_crowding`, over the cone ``v_all``).

    The mean squares of two answers are over different stars: the term brings in the
    field's edge, whose stars a term of one coefficient fits worst, and a lens far from
    the named projection keeps residuals of pixels with it (a 60 deg equidistant lens
    solved as a pinhole: 63 matches 0.02 deg off at 6.0 px rms, kept 1.16 times better
    than 44 matches 0.28 deg off at 6.3 px). Crowding counts the right matches the term
    brings in instead of their share of the residual; many more is asked, so that a term
    within the centroid noise, which matches the same stars give or take a few, still
    keeps the plain solve."""
    if len(lens.img_idx) < _SETTLING_GROWTH * len(plain.img_idx):
        return False
    log_lens = _crowding(lens.frame, v_all, lens.hyp.R, lens.hyp.f, lens.hyp.parity, radius_px)
    log_plain = _crowding(frame, v_all, plain.hyp.R, plain.hyp.f, plain.hyp.parity, radius_px)
    return log_lens < log_plain


#: An answer is refused when its matches within this share of the match radius of their
#: stars ...
CORE_SHARE = 0.5
#: ... exceed what chance alone puts there (``CORE_SHARE**2`` of the matches, uniform in the
#: match disc) by less than this share of the rest: most of its matches are chance ones.
MIN_REAL_SHARE = 0.5
#: ... where a random centroid falls within the match radius of a catalog star with at
#: least this chance (the centroids' density times the match disc): on sparser lists
#: chance matches are too few to make up an answer, and a right one's residuals, with a
#: match radius of two or three times the centroid noise, also spread towards the edge of
#: the disc (a 1 px radius for 0.5 px of noise: half of 25 small fields were refused).
MIN_CHANCE_PER_STAR = 0.1


def _real_share(r: NDArray[np.float64], radius_px: float) -> float:
    """The share of matches that are not chance ones, estimated from their residuals ``r``
    (px): those within :data:`CORE_SHARE` of the radius beyond the ``CORE_SHARE**2``
    chance puts there, over the rest."""
    chance = CORE_SHARE ** 2
    inside = float(np.count_nonzero(r <= CORE_SHARE * radius_px)) / max(len(r), 1)
    return (inside - chance) / (1.0 - chance)


def mostly_chance(frame: Frame, cat: CatalogView, ref: Refined, radius_px: float) -> bool:
    """Whether most of the refined answer's kept matches are chance coincidences: fewer
    than :data:`MIN_REAL_SHARE` of them crowd about their stars beyond what chance puts
    within :data:`CORE_SHARE` of the match radius, their residuals measured about a cubic
    field over the image (:func:`_about_trend`: an unmodelled lens spreads the right
    stars' residuals smoothly, a chance match's is random).

    A hypothesis right only about its pattern -- four stars near the rim of a fisheye,
    where a tilt of degrees and a few per cent of focal length trade off -- verifies on
    that patch; where the centroids are dense (1,248 on an all-sky JPEG, a chance one
    within the radius of most catalog stars) its refinement then fits a few hundred
    chance matches: 3 deg off, 7.6 px rms on 404 matches of which 89 were right, and 3 %
    of them within a ninth of the radius where a right answer's are 83-92 % (472 right
    all-sky solves of ``bench_allsky``, all within a third of it). Chance alone puts
    ``CORE_SHARE**2`` of the matches within ``CORE_SHARE`` of the radius; 2.5 px of
    centroid noise per axis at a 10 px radius, 88 %. Only lists dense enough for chance
    matches to make up an answer are judged (:data:`MIN_CHANCE_PER_STAR`)."""
    lens = frame if ref.frame is None else ref.frame
    chance = chance_per_star(lens, radius_px)
    if chance < MIN_CHANCE_PER_STAR:
        return False
    err_px = ref.errors_rad * ref.hyp.f  # (the scale at the centre: a first screen)
    if len(err_px) == 0 or _real_share(err_px, radius_px) >= MIN_REAL_SHARE:
        return False
    u = offsets(cat.vectors(ref.cat_idx) @ ref.hyp.R.T, ref.hyp.f, ref.hyp.parity, lens.proj)
    xy = lens.ideal[ref.img_idx]
    d = xy - u
    if not np.isfinite(d).all():
        return False
    r = _about_trend(xy, d, np.ones(len(d), bool), 0.5 * math.hypot(lens.width, lens.height))
    return _real_share(r, radius_px) < MIN_REAL_SHARE


def _mean_square(ref: Refined) -> float:
    err = ref.errors_rad
    return float(err.dot(err)) / max(len(err), 1)


def _median_square(ref: Refined) -> float:
    err = ref.errors_rad
    return median(err * err) if len(err) else 0.0


def _scale_wanted(mode: bool | None, n_matches: int) -> bool:
    from .options import MIN_SCALE_MATCHES

    return bool(mode) if mode is not None else n_matches >= MIN_SCALE_MATCHES


#: A plate scale further than this from the camera's is not a per-image change but a
#: wrong camera or a bad match: the camera's focal length is kept then, unless the
#: stars clearly fit another (:data:`_WRONG_SCALE_MAX`).
MAX_SCALE_CHANGE = 1e-3


def _scale_fit(frame: Frame, img_idx: NDArray[np.intp], v_cat: NDArray[np.float64],
               R: NDArray[np.float64], f: float, parity: bool, err: NDArray[np.float64],
               limit: float) -> tuple[NDArray[np.float64], float, NDArray[np.float64]]:
    """Attitude and focal length refitted to the kept pairs (see the module notes): two
    alternations of the backend's ``fit_pairs``; about an optical centre off the image's,
    on to their fixed point when the second still moved the focal length
    (``converged_fit``, as the refinement's passes do); the given ``(R, f, err)`` when
    the fit fails or moves the focal length by more than ``limit`` of it."""
    ideal = np.ascontiguousarray(frame.ideal[img_idx])
    use = np.arange(len(ideal), dtype=np.intp)
    be = frame.backend
    R1, f1, err1 = R, f, err
    for _ in range(2):
        f_from = f1
        R1, f1, err1, ok = be.fit_pairs(ideal, v_cat, use, f1, parity, frame.proj, False)
        if not ok:
            return R, f, err
    if frame.centre != (0.0, 0.0):
        R2, f2, err2 = be.converged_fit(ideal, v_cat, use, R1, f1, f_from, err1, parity,
                                        frame.proj)
        if abs(f2 / f - 1.0) <= limit:
            return R2, f2, err2
    if abs(f1 / f - 1.0) > limit:
        return R, f, err
    return R1, f1, err1


def _refine_scale(frame: Frame, img_idx: NDArray[np.intp], v_cat: NDArray[np.float64],
                  R: NDArray[np.float64], f: float, parity: bool,
                  err: NDArray[np.float64]) -> tuple[NDArray[np.float64], float,
                                                     NDArray[np.float64]]:
    """This image's plate scale (:func:`_scale_fit`) within :data:`MAX_SCALE_CHANGE` of
    the camera's."""
    return _scale_fit(frame, img_idx, v_cat, R, f, parity, err, MAX_SCALE_CHANGE)


#: A camera model whose focal length the matched stars put further off than
#: :data:`MAX_SCALE_CHANGE` (and at most this far) is taken for a wrong one when freeing
#: the focal length lowers their chi-square by more than :data:`_WRONG_SCALE_DROP` (1
#: degree of freedom: that many of its variance): the solve goes on from the stars'
#: scale, and says so (``SolveResult.camera_model``; a warning in
#: :func:`~skysolve.solver.solve.solve`). A nominal ``CameraModel.from_fov(11.4, ...)``
#: of the real frames (11.42 deg) left them at 28" rms, 4 times the right camera's, and
#: 11.2 or 11.0 deg at 226-240", the answer 0.11 deg off with 13 stars, where tetra3rs,
#: which fits the focal length, was right.
_WRONG_SCALE_MAX = 0.1
_WRONG_SCALE_DROP = 25.0
#: ... and leaves at most this share of their sum of squares: a focal length off the
#: stars' takes most of it (the frames above: 1-6 % of it left), a distortion the camera
#: lacks only some, freeing the focal length (TESS-like frames, their ~60 px of
#: distortion left out of a camera of the right focal length: it moved 0.5-0.6 % on 6
#: of 10 frames, and back on the others).
_WRONG_SCALE_LEFT = 0.25
#: Refits of a wrong camera's scale at most, each from the stars the last one matched.
_WRONG_SCALE_ROUNDS = 3


def _refit_scale(frame: Frame, v_all: NDArray[np.float64], parity: bool, radius_px: float,
                 iterations: int, sigma_clip: float, fit: tuple):
    """The refinement ``fit`` = ``(R, f, image rows, cone rows, residuals)`` of a fixed
    camera redone at the focal length its matched stars fit, when that lies further
    from the camera's than :data:`MAX_SCALE_CHANGE` and fits them clearly better (see
    :data:`_WRONG_SCALE_MAX`), and the redone passes match as many stars; again from
    those while the scale still moves so (the stars of a scale 2 % off are matched
    wrongly at the edge); else None."""
    out = None
    f_camera = frame.camera.focal_length_px
    for _ in range(_WRONG_SCALE_ROUNDS):
        R, f, img_idx, rows, err = fit
        n = len(img_idx)
        if n < 5:
            break
        R1, f1, err1 = _scale_fit(frame, img_idx, v_all[rows], R, f, parity, err,
                                  _WRONG_SCALE_MAX)
        if abs(f1 / f - 1.0) <= MAX_SCALE_CHANGE or abs(f1 / f_camera - 1.0) > _WRONG_SCALE_MAX:
            break
        # residuals per coordinate of the free fit (2n equations, 4 parameters); a wrong
        # scale leaves the noise, a distortion the camera lacks most of what it had
        chi0, chi1 = float(err @ err), float(err1 @ err1)
        if not (chi0 - chi1 > _WRONG_SCALE_DROP * chi1 / max(2 * n - 4, 1)
                and chi1 < _WRONG_SCALE_LEFT * chi0):
            break
        ok, *again = _passes(frame, v_all, R1, f1, parity, radius_px, iterations, sigma_clip)
        if not ok or len(again[2]) < n:
            break
        fit = out = tuple(again)
    return out


def one_sigma_t(dof: int) -> float:
    """The Student-t quantile (``dof`` degrees of freedom) at the normal 1-sigma point
    (0.8413), ~1.20 for 3 and 1.04 for 13 (Hill's expansion to 1/dof^4: within 2e-4 from 3
    degrees of freedom, 1.5e-3 for 2, 2 % for 1). The noise behind the attitude covariance
    is estimated from the residuals, so the error over the reported sigma follows this
    t distribution rather than the normal one: a frame whose few stars happen to fit well
    reports a sigma far too small (3 stars and a camera model: 61 % of the errors within
    1 sigma, 94 % within 3). Scaled by this, 1 sigma covers 68 %; the tails stay heavier
    than normal ones (3 sigma then covers 96 % for 3 stars, 99 % from 5)."""
    x = 1.0 / dof
    return 1.0 + x * (0.5 + x * (0.25 + x * (0.0625 - x * 0.00573)))


def build_result(db, frame: Frame, cat: CatalogView, ref: Refined, probability: float,
                 t0: float, mode: str) -> SolveResult:
    """The :class:`SolveResult` of a refined hypothesis (``t0``: the solve's start)."""
    if ref.frame is not None:
        frame = ref.frame
    R = ref.hyp.R
    f, parity = ref.hyp.f, ref.hyp.parity
    ra, dec, roll = rotation_to_radec_roll(R)
    camera = frame.camera.replace(focal_length_px=f, parity_flip=parity)
    err = ref.errors_rad
    n = len(err)
    # (the array method, not ``@``: see radialterm.worth_testing)
    sum_sq = float(err.dot(err))
    # noise per axis: 2n residual components fit 3 attitude parameters (4 with the focal
    # length), and the covariance's 1-sigma covers 68 % of the errors (see one_sigma_t)
    dof = max(1, 2 * n - ref.fitted)
    sigma = math.sqrt(sum_sq / dof) * one_sigma_t(dof)
    xy = frame.xy if frame.xy.flags.c_contiguous else np.ascontiguousarray(frame.xy)
    # the matches in increasing centroid row, with their arrays and statistics, in one
    # backend call (a dozen numpy calls on a few dozen matches took ~9 us)
    img_idx, cat_idx, matched_xy, radec, residuals, p90, largest, cov_camera = \
        frame.backend.solution_arrays(frame.ideal, xy, ref.img_idx, ref.cat_idx, err,
                                      db.star_ra_deg, db.star_dec_deg, f, parity, frame.proj,
                                      sigma)
    cov = attitude_covariance_on_sky(R, cov_camera)
    return SolveResult(
        ra_deg=float(ra), dec_deg=float(dec), roll_deg=signed_degrees(roll),
        fov_deg=camera.fov_deg,
        rotation_matrix_icrs_to_camera=R, camera_model=camera, num_matches=n,
        rmse_arcsec=math.sqrt(sum_sq / n) * ARCSEC_PER_RAD,
        p90e_arcsec=float(p90), max_err_arcsec=float(largest),
        probability=float(probability), solve_time_ms=(time.perf_counter() - t0) * 1e3,
        matched_centroids=img_idx.astype(np.intp, copy=False),  # (a new array already)
        matched_catalog_ids=rows_of(db.star_ids, cat_idx).astype(np.int64, copy=False),
        observer_velocity_km_s=None if cat.velocity is None else cat.velocity.copy(),
        attitude_cov_rad2=cov, mode=mode, matched_xy=matched_xy,
        matched_radec_deg=radec, matched_residuals_arcsec=residuals)
