"""Tracking: solve around a hinted attitude, without the pattern search.

Catalog stars are projected through the hinted attitude; candidate pairs
(centroid, catalog star) lie within the hint uncertainty of each other.

A hint off by a small rotation moves every star by nearly the same image-plane
offset (the focal length times the pointing error; a roll error adds a twist
that grows with the distance from the centre), so the right pairs' offsets pile
up in one place while chance pairs spread over the whole search disc: the
densest cell of a histogram of offsets (cells of two match radii) gives the
pairs of a first rotation (Wahba). Where false detections crowd the frame,
chance pairs crowd every such cell, and the densest need not be the right one;
cells a quarter as wide, which the right pairs of a hint with a good roll still
fill, are tried next (:func:`_fine_vote`). A large roll error twists the offsets
apart instead (6 deg moves a star at the corner of a 12 deg field by 70 px):
when neither rotation verifies, the histogram is taken again with the catalog
stars turned about the optical centre by a range of rolls (:func:`_rolls`), the
densest cell of them all giving the pairs. When that fails too (a crowded field,
a roll beyond the scan), pairs of pairs whose angular separations agree
(rigid-body consistency) vote for one rotation instead, which is fitted and
verified the same way (it costs a few times as much: 80,000 pairs of pairs for
400 candidate pairs). Because the hint, not the matched stars, pins the
attitude, the false-match probability counts every matched star as evidence, so
three stars can suffice; it is multiplied by the attitudes a vote took the best of
(the rolls of the scan, the pair vote's proposals). A hint further off than its
uncertainty can still verify a rotation pivoting about the few stars it does match
(or chance pairs): its refined matches then scatter across the match radius where a
right answer's sit within the centroid noise, or along the radius for a camera model
that misses some of its lens's distortion, and it is refused (``_FIXED_RMS``,
:func:`_rigid`); the next way of voting then gets its turn. So is an answer that
moves the field's stars further from where the hint puts them than the search
reaches (:func:`hint_offset`): the pair vote's consensus and a refinement can
wander beyond it. An answer whose matches do not all lie within a third of the
match radius of where the others put their stars is matched again at that radius
(:func:`_consistent`): a chance match (a false detection near a catalog star) pulls
the fit of a few stars, and so hides its own residual.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ..camera.projection import PROJECTIONS
from ..geometry import angle_between, two_pair_rotation, wahba_rotation
from .backends.reference import unique_pairs
from .frame import CatalogView, Frame, Hypothesis, make_frame
from .refinement import build_result, refine
from .result import SolveResult
from .verification import FINE_RADII, VERIFY_CATALOG_FACTOR, VERIFY_CENTROIDS, verify

__all__ = ["HINT_REACH", "beyond_image", "hint_offset", "hint_reach", "track",
           "track_scales"]

#: How far (in hint uncertainties) tracking looks from an attitude hint, and so how far
#: (:func:`hint_offset`) an answer to it may lie: candidate pairs lie within this many
#: uncertainties (and at least a match radius) of each other.
HINT_REACH = 1.5

#: Candidate pairs kept for voting (the brightest centroids' first).
_MAX_PAIRS = 400
#: Best-supported pairs whose attitudes are tried.
_MAX_PROPOSALS = 10
#: Partners of a proposal tried as the second pair of its rotation.
_MAX_PARTNERS = 64


#: Most cells per axis of the offset histogram (a wider search leaves it to the vote).
_MAX_OFFSET_CELLS = 512
#: Width (match radii) of the cells of :func:`_fine_vote`.
_FINE_CELL = 0.5
#: Most rolls the offset histogram is taken at (:func:`_rolls`): 64 histograms of
#: the 60 x 120 candidate pairs at most.
_MAX_ROLLS = 64
#: The offset histogram's rolls (radians) without a roll scan, and their cosines and sines.
_NO_ROLL = np.zeros(1)
_NO_ROLL_COS_SIN = (np.ones(1), np.zeros(1))


def hint_reach(uncertainty_rad: float, radius_px: float, f: float) -> float:
    """How far (rad, :func:`hint_offset`) an answer may lie from a hint of
    ``uncertainty_rad`` at focal length ``f`` (px): :data:`HINT_REACH` uncertainties, and
    at least the match radius ``radius_px`` (the centroid noise alone moves a right answer
    off an exact hint)."""
    return max(radius_px / f, HINT_REACH * uncertainty_rad)


def beyond_image(uncertainty_rad: float, radius_px: float, f: float, frame: Frame) -> bool:
    """Whether the search from a hint of ``uncertainty_rad`` reaches, at focal length
    ``f`` (px), as far as the image's farthest corner from its centre or beyond: the
    catalog stars tracking takes (the brightest within its reach of the image) then
    spread over a sky many times the field's, few of them in it."""
    return hint_reach(uncertainty_rad, radius_px, f) * f >= frame.reach_px()


def hint_offset(frame: Frame, R: NDArray[np.float64], hint_R: NDArray[np.float64],
                f: float) -> float:
    """The largest angle (rad) by which the attitude ``R`` moves a direction of the field
    (focal length ``f``) from where the attitude ``hint_R`` puts it.

    This is what a hint's uncertainty bounds: where the hint puts the stars. At the
    optical axis it is the boresight's distance from the hint's; a roll about the axis
    adds its angle times the sine of the distance from the axis, largest at the image's
    farthest corner (a 6 deg roll moves the corners of a 12 deg field by 0.8 deg), so a
    fast roll is as far off as it moves the stars, not by its angle. A rotation by
    ``a`` moves a direction at ``b`` from its axis by ``2 asin(sin(a / 2) sin b)``; over
    the field (within the angle ``rho`` of the optical axis, a disc through the farthest
    corner as the lens sees it: :meth:`~.frame.Frame.reach_angle`) ``b`` is at most
    ``min(pi / 2, b0 + rho)``, ``b0`` the angle between the two axes, which the
    boresight's move gives: ``sin(b0) = sin(d0 / 2) / sin(a / 2)``.
    """
    # (scalars: numpy's small-array calls cost more than the rest of the test; the sums
    # in the order of numpy's sum, pairwise over the nine products, so the same numbers
    # on every processor, which numpy's dot, the BLAS's, does not give: its kernel, and
    # the order of its sums, depends on the processor)
    (a0, a1, a2), (a3, a4, a5), (a6, a7, a8) = R.tolist()
    (h0, h1, h2), (h3, h4, h5), (h6, h7, h8) = hint_R.tolist()
    trace = ((((a0 * h0 + a1 * h1) + (a2 * h2 + a3 * h3))
              + ((a4 * h4 + a5 * h5) + (a6 * h6 + a7 * h7))) + a8 * h8)  # 1 + 2 cos(a)
    half = math.sqrt(max(0.0, 0.25 * (3.0 - trace)))  # sin(a / 2)
    if half == 0.0:
        return 0.0
    bore = math.sqrt(max(0.0, 0.5 * (1.0 - (a6 * h6 + a7 * h7 + a8 * h8))))  # sin(d0 / 2)
    b0 = math.asin(min(1.0, bore / half))
    rho = frame.reach_angle(f)
    return 2.0 * math.asin(min(1.0, half * math.sin(min(0.5 * math.pi, b0 + rho))))


def _offset_vote(frame: Frame, cat: CatalogView, hyp: Hypothesis, idx, p, n_img: int,
                 search_px: float, radius_px: float,
                 rolls: NDArray[np.float64] = _NO_ROLL,
                 cell_radii: float = 2.0) -> tuple[int, Hypothesis | None, float, int]:
    """The verified attitude of the pairs in the densest cell of offsets (see the module
    notes): ``(matches, hyp, probability, tried)``, or ``(0, None, 1.0, 0)``; ``tried``:
    the attitudes the answer is the best of (:func:`track` multiplies the probability
    by them). With ``rolls`` (radians) the projected catalog stars are first turned by
    each of these angles about the optical centre, and the densest cell of them all
    counts, the best of as many attitudes; ``cell_radii``: the cells' width in match
    radii."""
    none = (0, None, 1.0, 0)
    cell = cell_radii * radius_px
    cells = int(2.0 * search_px / cell) + 2
    if cells > _MAX_OFFSET_CELLS:
        return none
    if rolls is _NO_ROLL:
        cos_roll, sin_roll = _NO_ROLL_COS_SIN  # (numpy's cos and sin of small arrays cost)
    else:
        cos_roll, sin_roll = np.cos(rolls), np.sin(rolls)
    ii, jj = frame.backend.offset_pairs(frame.ideal[:n_img], p, search_px, cell, cells,
                                        cos_roll, sin_roll)
    if len(ii) < 3:
        return none
    # (the backend's fit skips centroids the projection does not image: a fisheye's corners)
    R, _, _, ok = frame.backend.fit_pairs(
        np.ascontiguousarray(frame.ideal[ii]), cat.vectors(idx[jj]),
        np.arange(len(ii)), hyp.f, hyp.parity, frame.proj, True)
    if not ok:
        return none
    h = Hypothesis(R, hyp.f, hyp.parity)
    n, prob = verify(frame, cat, h, radius_px, n_fixed=0)
    return n, h, prob, len(rolls)


def _fine_vote(frame: Frame, cat: CatalogView, hyp: Hypothesis, idx, p, n_img: int,
               search_px: float, radius_px: float) -> tuple[int, Hypothesis | None, float, int]:
    """:func:`_offset_vote` in cells of :data:`_FINE_CELL` match radii; as it reports.

    Cells of two match radii hold the pile of a hint whose roll is off by up to a
    degree or so, but also ~15 chance pairs each where false detections crowd the
    frame (three to a star, 60 centroids against 120 catalog stars, 7 candidates each
    in a 1 deg search), and the densest of them then need not be the right pile of
    10-15 pairs. A hint whose roll is right to a few tenths of a degree piles its
    right pairs within a pixel or two, where a cell a quarter as wide holds one
    chance pair.
    """
    return _offset_vote(frame, cat, hyp, idx, p, n_img, search_px, radius_px,
                        cell_radii=_FINE_CELL)


def _roll_vote(frame: Frame, cat: CatalogView, hyp: Hypothesis, idx, p, n_img: int,
               search_px: float, radius_px: float) -> tuple[int, Hypothesis | None, float, int]:
    """:func:`_offset_vote` over rolls about the optical centre (see the module notes), as
    far as :func:`_rolls` reaches; as it reports. The answer is the best of as many
    attitudes as rolls, which its false-match probability counts (without, a rotation
    pivoting about the centre of a field rolled beyond the scan verified at 2e-6 with 9
    matches, and refined 0.3 deg off in roll)."""
    rolls = _rolls(frame, hyp.f, search_px, radius_px)
    if not len(rolls):
        return 0, None, 1.0, 0
    return _offset_vote(frame, cat, hyp, idx, p, n_img, search_px, radius_px, rolls)


def _rolls(frame: Frame, f: float, search_px: float, radius_px: float) -> NDArray[np.float64]:
    """The rolls (radians, nearest the hint's first, 0 left out) :func:`_roll_vote` tries
    at focal length ``f``.

    A step moves a star at the image's reach by one cell of offsets (two match radii),
    so that a right roll's pairs fall within a block of cells at one of them. They go
    out to the roll that moves the image's farthest corner by the search's reach (an
    answer rolled further is refused: :func:`hint_offset`), or to the one that moves
    stars at half the reach across the search disc less a match radius, whichever is
    smaller, :data:`_MAX_ROLLS` at most. A hint whose search is under two match radii
    (0.1 deg on 10-20 deg fields) gets none: it holds the roll to what the offset vote
    tolerates, and a step beyond that found a rotation pivoting about part of the field
    (105" off) for one of the 900 hints further off than their uncertainty of
    ``test_tracking_hints_further_off_than_their_uncertainty_give_no_wrong_answer``.
    """
    reach = frame.reach_px()
    step = 2.0 * radius_px / reach
    # (hint_offset's largest move of a roll about the axis, solved for the roll)
    sin_rho = math.sin(frame.reach_angle(f))
    top = 2.0 * math.asin(min(1.0, math.sin(0.5 * search_px / f) / sin_rho))
    k = min(int(min(top, 2.0 * (search_px - radius_px) / reach) / step), _MAX_ROLLS // 2)
    return step * np.array([side * j for j in range(1, k + 1) for side in (1, -1)],
                           dtype=np.float64)


def _consistent_pairs(frame: Frame, cat: CatalogView, hyp: Hypothesis, idx, p, n_img: int,
                      search_px: float, radius_px: float):
    """Candidate pairs ``(ii, jj)`` within ``search_px`` and the pairs of them (rows
    ``a``, ``b``) that agree: ``(v_img, v_cat, ii, jj, a, b)``, or None."""
    img = frame.ideal[:n_img]
    v_img = frame.vectors(hyp.f, hyp.parity, np.arange(n_img))
    v_cat = cat.vectors(idx)
    dx = img[:, 0, None] - p[None, :, 0]
    dy = img[:, 1, None] - p[None, :, 1]
    ii, jj = np.nonzero(dx * dx + dy * dy <= search_px * search_px)  # (by centroid, star)
    if len(ii) < 2:
        return None
    ii, jj = ii[:_MAX_PAIRS], jj[:_MAX_PAIRS]
    # separations from tables of the few stars on each side, not for each of the
    # pairs of pairs (80,000 of them for 400 pairs: three quarters of the vote's time)
    stars, jj_rows = np.unique(jj, return_inverse=True)
    d_img = angle_between(v_img[:, None], v_img[None, :])
    d_cat = angle_between(v_cat[stars, None], v_cat[None, stars])
    tol = 2.0 * radius_px / hyp.f
    # every pair of pairs as an (n, n) table, the rows a < b of it taken (row by row, as
    # np.triu_indices orders them): contiguous, where gathering the tables' entries by
    # each pair of pairs' rows took most of the vote's time
    sep_img, sep_cat = d_img[np.ix_(ii, ii)], d_cat[np.ix_(jj_rows, jj_rows)]
    # (two directions apart on each side, not only two rows: a centroid given twice
    # fixes no rotation with its copy, and two_pair_rotation's frame of it is 0 / 0)
    agree = (np.abs(sep_img - sep_cat) < tol) & (sep_img > 0.0) & (sep_cat > 0.0)
    a, b = np.nonzero(np.triu(agree, 1))
    if not len(a):
        return None
    return v_img, v_cat, ii, jj, a, b


def _consensus(v_img, v_cat, ii, jj, outer, start: int, partners, tol: float):
    """Rows of the candidate pairs consistent with the best two-pair rotation through
    ``start``: each partner with ``start`` fixes a rotation, which keeps the candidate
    pairs it maps within ``tol`` (a RANSAC over the partners, so that the chance
    agreements of a wide hint's many candidates do not spoil the fit). ``outer``: each
    candidate pair's ``v_img v_cat^T``, ``(n, 9)``."""
    tries = partners[:_MAX_PARTNERS]
    sel = np.stack([np.full(len(tries), start), tries], axis=1)
    Rs = two_pair_rotation(v_img[ii[sel]], v_cat[jj[sel]])          # (k, 3, 3)
    # cos[k, n] = v_img[n] . Rs[k] v_cat[n], as one (k, 9) x (9, n) product (the rotated
    # vectors themselves, (k, n, 3), took a third of the vote's time)
    cos = Rs.reshape(len(tries), 9) @ outer.T                       # (k, n)
    inl = cos > np.cos(tol)
    best = int(np.argmax(inl.sum(axis=1)))
    rows = np.flatnonzero(inl[best])
    return rows[unique_pairs(ii[rows], jj[rows], cos[best, rows])]


def _pair_vote(frame: Frame, cat: CatalogView, hyp: Hypothesis, idx, p, n_img: int,
               search_px: float, radius_px: float) -> tuple[int, Hypothesis | None, float, int]:
    """The pair-of-pairs vote (see the module notes), as :func:`_offset_vote` reports."""
    votes = _consistent_pairs(frame, cat, hyp, idx, p, n_img, search_px, radius_px)
    return (0, None, 1.0, 0) if votes is None else _best_vote(frame, cat, hyp, radius_px, votes)


def _best_vote(frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float, votes):
    """The best verified attitude among the best-supported pairs, as :func:`_offset_vote`
    reports: ``tried`` counts the attitudes verified (up to :data:`_MAX_PROPOSALS`; taken
    as one, the best of six let a consensus of 6 pairs through at 3e-6, refined to 3
    matches, two of them false detections, and 80 px off at the corners)."""
    v_img, v_cat, ii, jj, a, b = votes  # (a, b): the pairs of pairs that agree
    best = (0, None, 1.0)
    tried = 0
    tol = 2.0 * radius_px / hyp.f
    support = np.bincount(np.concatenate([a, b]), minlength=len(ii))
    outer = (v_img[ii][:, :, None] * v_cat[jj][:, None, :]).reshape(len(ii), 9)
    covered = np.zeros(len(ii), dtype=bool)  # pairs in a consensus verified already
    for start in np.argsort(-support)[:_MAX_PROPOSALS]:
        if covered[start]:
            continue  # its consensus would be one already verified
        partners = np.concatenate([b[a == start], a[b == start]])
        if len(partners) == 0:
            continue
        partners = partners[np.argsort(-support[partners], kind="stable")]
        sel = _consensus(v_img, v_cat, ii, jj, outer, start, partners, tol)
        if len(sel) < 2:
            continue
        covered[sel] = True
        h = Hypothesis(wahba_rotation(v_img[ii[sel]], v_cat[jj[sel]]), hyp.f, hyp.parity)
        # The hint, not the matched stars, pins the attitude: no star is spent on
        # defining it, so every match counts as evidence (n_fixed=0).
        n, prob = verify(frame, cat, h, radius_px, n_fixed=0)
        tried += 1
        if n > best[0]:
            best = (n, h, prob)
    return (*best, tried)


def track(db, frame: Frame, cat: CatalogView, hint_R: NDArray[np.float64], f: float,
          parities: tuple[bool, ...], uncertainty_rad: float, radius_px: float,
          threshold: float, refine_iterations: int, t0: float,
          trials: int = 1) -> SolveResult | None:
    """Match centroids against catalog stars around ``hint_R``; None when nothing verifies.
    ``trials``: how many such searches the caller makes in all (each parity counts as
    well), by which the false-match probability is multiplied."""
    trials *= len(parities)
    n_img = min(len(frame.ideal), VERIFY_CENTROIDS)
    if n_img < 3:
        return None
    reach = hint_reach(uncertainty_rad, radius_px, f)
    search_px = reach * f
    for parity in parities:
        hyp = Hypothesis(hint_R, f, parity)
        idx, p = cat.projected(frame, hyp, VERIFY_CATALOG_FACTOR * n_img, margin_px=search_px)
        if len(idx) < 3:
            continue
        # the cheap ones first; an answer refused after refinement (a rotation pivoting
        # about part of the field) leaves the field to the next
        for vote in (_offset_vote, _fine_vote, _roll_vote, _pair_vote):
            n, best, prob, tried = vote(frame, cat, hyp, idx, p, n_img, search_px, radius_px)
            prob = min(1.0, prob * tried * trials)
            if best is None or n < 3 or prob >= threshold:
                continue
            ref = refine(frame, cat, best, radius_px, refine_iterations, chance_check=False)
            if ref is None or len(ref.img_idx) < 3 or not _rigid(frame, cat, ref, radius_px):
                continue
            ref = _consistent(frame, cat, ref, radius_px, refine_iterations)
            # (an answer beyond the search's reach breaks the hint's promise; the votes
            # can reach further: the pair vote's consensus, a roll about the centre)
            if ref is None or hint_offset(frame, ref.hyp.R, hint_R, f) > reach:
                continue
            return build_result(db, frame, cat, ref, prob, t0, "tracking")
    return None


#: Fewest matches whose residuals :func:`_consistent` takes after the best radial term
#: (a camera model missing some distortion): the term and the rotation fit 5 of the 2 n
#: coordinates, and fewer matches would fit closely whatever they are.
_RADIAL_CONSISTENT = 6


def _consistent(frame: Frame, cat: CatalogView, ref, radius_px: float, iterations: int):
    """``ref`` when its matches are consistent at a third of the match radius
    (:data:`~.verification.FINE_RADII`), else its refinement at that radius from the
    rotation of all matches but the worst: None when fewer than 3 matches are.

    A right answer predicts its stars to within the centroid noise; a chance match (a
    false detection near a catalog star) lands anywhere in the match radius, and with a
    few stars, which the fit cannot trim, it pulls the fit towards itself: 4-7 stars among
    three to five times as many false detections gave answers whose real stars were left
    1-3 px off and the field's corners 3-18 px (5 in 600 frames). So a match counts by its
    share of the fit's residuals (:func:`_leave_one_out`), the residual it is left plus
    those it gives the others, not by its own: the chance match whose fit hid it within
    the tighter radius (1-2 px, the stars 2-4 px) gave 8 answers 3.5-10 px off at the
    corners in 4100 such frames, and none since. Re-matched at the tighter radius from the
    others' rotation, the real stars stay and the chance match goes. Right answers are
    not touched (their matches' shares sit well within it).
    """
    tight = FINE_RADII[1] * radius_px
    fitted = frame if ref.frame is None else ref.frame  # (a radial term's, when refined)
    share = _leave_one_out(fitted, cat, ref)
    worst = int(np.argmax(share))
    if share[worst] <= tight:
        return ref
    others = np.arange(len(share)) != worst
    hyp = Hypothesis(wahba_rotation(fitted.vectors(ref.hyp.f, ref.hyp.parity,
                                                   ref.img_idx[others]),
                                    cat.vectors(ref.cat_idx[others])),
                     ref.hyp.f, ref.hyp.parity)
    if frame.fixed_camera and len(ref.img_idx) >= _RADIAL_CONSISTENT:
        # (the worst match where the others' rotation and radial term put its star: the
        # whole fit's would hide a chance match as the rotation's does)
        left = _radial_left(frame, cat, ref, hyp, others)
        if left is not None and float(np.max(np.hypot(left[:, 0], left[:, 1]))) <= tight:
            return ref
    lens = frame
    if fitted.proj != frame.proj:
        # (a fisheye projection the refinement took for a solve told none: the rotation
        # and focal length are its, and so are the stars' places)
        lens = make_frame(frame.xy, frame.width, frame.height, None,
                          PROJECTIONS[fitted.proj], frame.backend, crpix=frame.centre,
                          centre_told=frame.centre_told)
    ref = refine(lens, cat, hyp, tight, iterations)
    if ref is None or len(ref.img_idx) < 3:
        return None
    if ref.frame is None and lens is not frame:
        ref.frame = lens  # (the answer's camera: the solve's frame is the pinhole's)
    return ref


def _leave_one_out(frame: Frame, cat: CatalogView, ref) -> NDArray[np.float64]:
    """Each match's share (px) of the rotation fit's residuals.

    The share of a match is the square root of what leaving it out takes from the fit's
    sum of squared residuals: its own residual and those its pull gives the other
    matches. A chance match among a few stars pulls the fit towards itself and is left a
    residual of a pixel or two, spreading the rest over the others; its share is where it
    lies from the place the other matches put its star (5-11 px for a 10 px match radius,
    where they fit within 0.3-0.6 px). A right star far from the others moves the fit
    little however poorly they predict it, and its share stays within the centroid noise.

    The fit is linear in a small turn ``w`` of the predicted directions ``u``: a residual
    ``r`` becomes ``r + u x w``, whose normal matrix is ``N = sum(I - u u^T)``. Leaving a
    match out from the optimum takes ``|r|^2 + t^T M^-1 t`` from the sum, ``t = u x r``
    and ``M = N - I + u u^T`` (the normal matrix of the others), whose symmetric inverse is
    taken from its cofactors (the backend's ``fit_shares``).
    """
    v = frame.vectors(ref.hyp.f, ref.hyp.parity, ref.img_idx)
    u = cat.vectors(ref.cat_idx) @ ref.hyp.R.T
    # (the sums of the normal matrix here, the per-match arithmetic in the backend)
    return frame.backend.fit_shares(v, u, (len(u) - 1.0) * np.eye(3) - u.T @ u, ref.hyp.f)


#: Without a camera model, a tracking answer whose matches scatter by more than this
#: fraction of the match radius (rms) was voted at a wrong focal length (8 % off: 4-8 px
#: on 10-16 deg fields of 1024 px with a 10 px radius; right ones: below 1 px).
_FREE_SCALE_RMS = 0.25
#: With a camera model: the answers to hints further off than their uncertainty that
#: pivot about part of the field scatter by 0.46-0.55 of the match radius (3 in 900
#: hard fields), right ones by 0.05 (0.3 px of centroid noise); a camera model missing
#: 3 % of radial distortion scatters right answers by 0.3-0.55, 0.05-0.4 after the best
#: radial term (:func:`_radial_rms_px`), which the pivoting ones keep (0.4-0.7).
_FIXED_RMS = 0.35
#: Most focal lengths :func:`track_scales` tries.
_MAX_SCALES = 11
#: Extra re-match and refit passes of a scan's answer: its focal length starts up to half
#: a step (~0.7 %) off, where a pattern's is ~1e-4 off, and each pass moves it part of the
#: way (with the usual passes: 0.4-0.7 % off, 20-110" and 2-3 px rms in 4 of 90 fields).
_SCALE_REFINE_PASSES = 4


def _rms_px(ref, free_scale: bool) -> float:
    """The refined matches' rms scatter (px), over the degrees of freedom the fit leaves
    (3 for the rotation, 4 with the scale free): three or four matches fit closely
    whatever they are (two wrong answers from 3-4 chance matches scattered 2.1-2.5 px,
    just inside the bound, before the correction)."""
    err = ref.errors_rad
    return math.sqrt(2.0 * float(err @ err) / max(1, 2 * len(err) - 3 - free_scale)) \
        * ref.hyp.f


def _rigid(frame: Frame, cat: CatalogView, ref, radius_px: float) -> bool:
    """Whether the refined matches fit one rigid rotation: their rms scatter is within
    :data:`_FREE_SCALE_RMS` (no camera model) or :data:`_FIXED_RMS` of the match radius.
    Otherwise the answer was voted at a wrong scale, or (a hint further off than its
    uncertainty) it is a rotation pivoting about the few stars it does match, the fit to
    them and to chance partners farther out off by pixels. With a camera model the
    scatter a radial term explains does not count (:func:`_radial_rms_px`)."""
    if not frame.fixed_camera:
        return _rms_px(ref, True) <= _FREE_SCALE_RMS * radius_px
    limit = _FIXED_RMS * radius_px
    return _rms_px(ref, False) <= limit or _radial_rms_px(frame, cat, ref) <= limit


def _radial_rms_px(frame: Frame, cat: CatalogView, ref) -> float:
    """The rms (px) of the refined matches' image-plane residuals that the best radial
    term about the optical centre (a scale change and a cubic distortion) leaves, counted
    over the degrees of freedom the rotation and the radial term leave (5 of the 2 n
    coordinates: three matches keep one, and fit closely whatever they are; two wrong
    attitudes in 1600 3-4 star solves passed on 4 before). A camera model that misses
    some of its lens's radial distortion leaves residuals that grow with the distance
    from the centre, past the match radius at the corners; a wrong rotation's pairs
    scatter every which way."""
    left = _radial_left(frame, cat, ref)
    if left is None:
        return math.inf
    return float(np.sqrt(2.0 * np.sum(left * left) / max(1, 2 * len(left) - 5)))


def _radial_left(frame: Frame, cat: CatalogView, ref, hyp: Hypothesis | None = None,
                 fit: NDArray[np.bool_] | None = None) -> NDArray[np.float64] | None:
    """The refined matches' image-plane residuals (px, ``(n, 2)``) that the best radial
    term about the optical centre leaves (see :func:`_radial_rms_px`); None with fewer
    than 3 matches in the image. ``hyp``: the attitude they are taken under (``ref``'s);
    ``fit``: the matches the term is fitted to (all)."""
    v = cat.vectors(ref.cat_idx)
    rows, p = frame.in_image(v, ref.hyp if hyp is None else hyp, len(v), margin_px=math.inf)
    n = len(rows)
    use = np.ones(n, dtype=bool) if fit is None else fit[rows]
    if np.count_nonzero(use) < 3:
        return None
    x = frame.ideal[ref.img_idx[rows]]
    e = (x - p).T.ravel()
    rho2 = np.einsum("ij,ij->i", x, x) / frame.reach_px() ** 2
    a = np.stack([x.T.ravel(), (x * rho2[:, None]).T.ravel()], axis=1)
    both = np.concatenate([use, use])  # (the x rows, then the y rows)
    coef = np.linalg.lstsq(a[both], e[both], rcond=None)[0]
    return (e - a @ coef).reshape(2, n).T


def track_scales(db, frame: Frame, cat: CatalogView, hint_R: NDArray[np.float64],
                 f_lo: float, f_hi: float, f_guess: float, parities: tuple[bool, ...],
                 uncertainty_rad: float, radius_px: float, threshold: float,
                 refine_iterations: int, t0: float) -> SolveResult | None:
    """:func:`track` when the focal length is only known to lie in ``[f_lo, f_hi]`` (no
    camera model): the votes compare angles, which scale with ``1 / f``, so they are
    taken at focal lengths spaced so that a star at the image's reach moves by at most
    the match radius between two (nearest ``f_guess`` first, :data:`_MAX_SCALES` at
    most); the first that verifies is the answer, its false-match probability multiplied
    by the number of focal lengths and parities tried (with three or four stars, chance
    agreements at one of up to 22 gave 5 wrong attitudes in 80 hints 3 deg uncertain).

    The focal lengths at which the search reaches beyond the image (:func:`beyond_image`)
    are left to the pattern search the caller runs next (held to the hint's cone for a
    strict hint, over the sky for a loose one): there the votes of each scale took
    0.1-0.2 s and found few fields (5-10 of 30 hints 30 deg uncertain on 10-20 deg
    fields, in 0.5-1 s in all; 1-1.6 s to give up on a field it cannot solve), where the
    pattern search finds them all in about a millisecond. The probability still counts
    every focal length of the range (so an answer found at one searched is unchanged)."""
    step = math.log1p(radius_px / frame.reach_px())
    lo, hi = math.log(f_lo), math.log(f_hi)
    centre = min(max(math.log(f_guess), lo), hi)
    offsets = [0] + [side * k for k in range(1, _MAX_SCALES) for side in (-1, 1)]
    fs = [centre + d * step for d in offsets if lo <= centre + d * step <= hi][:_MAX_SCALES]
    for u in fs:
        if beyond_image(uncertainty_rad, radius_px, math.exp(u), frame):
            continue
        res = track(db, frame, cat, hint_R, math.exp(u), parities, uncertainty_rad, radius_px,
                    threshold, refine_iterations + _SCALE_REFINE_PASSES, t0, trials=len(fs))
        if res is not None:
            return res
    return None
