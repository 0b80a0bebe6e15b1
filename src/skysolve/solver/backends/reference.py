"""The reference backend: every solver kernel in plain numpy (and scipy's KD-trees).

This is the readable definition of what the solver computes; the compiled
backend (:mod:`skysolve.solver.backends.compiled`) implements the same
functions with the same signatures in numba and must agree with it (the
agreement tests check every function and whole solves). The functions and
their contracts are listed in :mod:`skysolve.solver.backends.interface`.

Conventions: *ideal* pixel offsets are undistorted positions relative to the
optical centre, ``(x, y)`` in pixels with +y down; the camera unit vector of an
ideal offset ``p`` at focal length ``f`` is the direction of the projection-plane
point ``(s p_x / f, p_y / f)`` under the lens projection ``proj`` (an integer
code of :mod:`skysolve.camera.projection`; for the pinhole, code 0,
``(s p_x / f, p_y / f, 1)`` normalised), ``s = -1`` for mirrored images
(``parity``).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from ...camera.projection import plane_to_vectors, vectors_to_plane
from ...geometry import chord_to_angle, wahba_rotation
from ..keys import edge_ratios, lookup_keys, neighbour_keys, pattern_edge_angles
from ..keys import pattern_edge_angles_indexed as _indexed_edges
from ..patterns import canonical_order

__all__ = ["NAME", "BRUTE_FORCE_PAIRS", "CLIP_FLOOR_FRACTION", "CLIP_FLOOR_PX", "clip_floor_px",
           "rematch", "unique_pairs"]

NAME = "reference"

#: Below this many (centroid, star) pairs, distance matrices replace KD-trees.
BRUTE_FORCE_PAIRS = 20000
#: Up to this many pairs the KD-tree's claims (:func:`kdtree_matches`) are read from a
#: distance matrix (a few MB) instead: importing ``scipy.spatial`` costs a one-shot solve
#: 0.3-1 s, more than the numpy path of a frame with a few hundred stars.
CLAIMS_MATRIX_PAIRS = 250_000
#: Clipping rejects mismatches, not model error: a refinement never clips inside this
#: fraction of the match radius, nor inside ``CLIP_FLOOR_PX`` pixels, or the stars a
#: calibration most needs -- those where the current distortion model is worst -- would
#: be dropped (:func:`clip_floor_px`).
CLIP_FLOOR_FRACTION = 0.2
CLIP_FLOOR_PX = 0.5
#: Arc seconds per radian (a result's residuals are reported in arc seconds).
ARCSEC_PER_RAD = 180.0 * 3600.0 / math.pi


def clip_floor_px(radius):
    """The smallest clip radius (px) of a refinement at match radius ``radius`` (px)."""
    return max(CLIP_FLOOR_FRACTION * radius, CLIP_FLOOR_PX)


def _sign(parity: bool) -> float:
    return -1.0 if parity else 1.0


# ------------------------------------------------------------------------------------
# Centroids, vectors, catalog cones


def extent(xy):
    """``(largest |x|, largest |y|)`` of ``(n >= 1, 2)`` positions (NaN with any NaN)."""
    rx, ry = np.maximum.reduce(np.abs(xy), axis=0).tolist()
    return rx, ry


def thin_pixels(ideal, sep_px, limit):
    """Rows of the first ``limit`` centroids with no brighter centroid within ``sep_px``."""
    keep = np.ones(len(ideal), bool)
    if len(ideal) > 1 and sep_px > 0:
        diff = ideal[:, None, :] - ideal[None, :, :]
        close = np.einsum("ijk,ijk->ij", diff, diff) <= sep_px * sep_px
        # a centroid is dropped when any brighter (earlier) centroid is close
        keep = ~np.any(np.tril(close, k=-1), axis=1)
    return np.flatnonzero(keep)[:limit]


def unit_vectors(ideal, f, parity, proj):
    """Camera unit vectors of ideal pixel offsets at focal length ``f`` (NaN outside the
    projection's image)."""
    return plane_to_vectors(_sign(parity) * ideal[..., 0] / f, ideal[..., 1] / f, proj)


def ratio_sensitivity(ideal, proj, focal_lengths, probe, step, percentile):
    """Ratio sensitivity ``|d ratio / d ln f|`` of an image's brightest patterns.

    ``ideal`` (n, 2): ideal offsets of the pattern stars; ``focal_lengths`` (g,), px;
    ``probe`` (m, 4): rows of ``ideal`` forming the patterns. At each focal length,
    the ``percentile`` percentile (the lower neighbour, no interpolation) over the
    patterns of the largest change of their edge ratios per unit ``ln f``, by a
    forward difference of ``step`` in ``ln f``; NaN where no pattern is imaged.
    """
    f = np.concatenate([focal_lengths, focal_lengths * math.exp(step)])[:, None]
    v = plane_to_vectors(ideal[:, 0] / f, ideal[:, 1] / f, proj)  # (2g, n, 3)
    ratios, _ = edge_ratios(pattern_edge_angles(v[:, probe]))  # (2g, m, 5)
    g = len(focal_lengths)
    change = np.sort(np.max(np.abs(ratios[g:] - ratios[:g]), axis=2) / step, axis=1)
    finite = np.count_nonzero(np.isfinite(change), axis=1)  # NaN sorts last
    pick = np.floor(percentile / 100.0 * np.maximum(finite - 1, 0)).astype(np.intp)
    out = change[np.arange(g), pick]
    return np.where(finite > 0, out, np.nan)


def _ideal_of(v_cam, f, parity, proj):
    """Ideal pixel offsets ``(n, 2)`` of camera-frame vectors (NaN where not imaged)."""
    qx, qy = vectors_to_plane(v_cam, proj)
    return np.stack([_sign(parity) * qx * f, qy * f], axis=-1)


def brightest_in_cone(index, centre, radius_rad, count):
    """The ``count`` brightest stars of a :class:`~skysolve.sky.index.SkyIndex` in a cone.

    Returns their rows (brightest first) and unit vectors.
    """
    idx = index.brightest_in_cone(centre, radius_rad, count)
    return idx, index.vectors[idx]


def in_image(vectors, R, f, parity, proj, cx, cy, half_w, half_h, count):
    """The first ``count`` of ``vectors`` that project inside the image: (rows, ideal px).

    ``(cx, cy)`` is the optical centre's offset from the image centre and the
    image (plus any margin) spans ``|x + cx| <= half_w``, ``|y + cy| <= half_h``.
    """
    p = _ideal_of(vectors @ R.T, f, parity, proj)
    inside = (np.isfinite(p[:, 0]) & (np.abs(p[:, 0] + cx) <= half_w)
              & (np.abs(p[:, 1] + cy) <= half_h))
    rows = np.flatnonzero(inside)[:count]
    return rows, p[rows]


# ------------------------------------------------------------------------------------
# Pattern search


def _batch_candidates(v_guess, batch, bins, tol, keys_sorted, pattern_stars, star_xyz,
                      hint, min_cos, f_guess, f_lo, f_hi):
    """Catalog patterns matching one batch of image patterns (see :func:`pattern_candidates`)."""
    V = v_guess[batch]
    ratios, largest = edge_ratios(pattern_edge_angles(V))
    keys, owner = neighbour_keys(ratios, bins, tol)
    rows, kowner = lookup_keys(keys_sorted, keys)
    if len(rows) == 0:
        return None
    if len(hint):  # a position hint: only patterns of stars within its reach
        cand = pattern_stars[rows]
        cos = (hint[0] * star_xyz[0, cand] + hint[1] * star_xyz[1, cand]
               + hint[2] * star_xyz[2, cand])
        inside = np.all(cos >= min_cos, axis=1)
        rows, kowner = rows[inside], kowner[inside]
        if len(rows) == 0:
            return None
    pat = owner[kowner]
    # a catalog pattern may be reached through several neighbour keys only once,
    # since keys are distinct; the same (pattern, row) pair cannot repeat.
    cstars = pattern_stars[rows]
    cratios, clargest = edge_ratios(_indexed_edges(star_xyz, cstars))
    ok = np.all(np.abs(cratios - ratios[pat]) <= tol, axis=1)
    f_est = f_guess * largest[pat] / clargest
    ok &= (f_est >= f_lo) & (f_est <= f_hi)
    if not ok.any():
        return None
    pat = pat[ok]
    # image stars in canonical order (scale-free, so the guess vectors serve)
    iquads = np.take_along_axis(batch[pat], canonical_order(V[pat]), axis=1)
    return iquads, cstars[ok].astype(np.intp), f_est[ok], clargest[ok]


def pattern_candidates(v_guess, combos, start, ends, max_patterns, bins, tol, keys_sorted,
                       directory, shift, pattern_stars, star_xyz, hint, min_cos, f_guess,
                       f_lo, f_hi):
    """Catalog patterns matching image patterns, batch by batch from pattern ``start``.

    ``v_guess`` (n, 3) holds camera vectors of the pattern stars at the
    guessed focal length and ``combos`` (m, 4) its rows per pattern, cut into
    batches at ``ends``. Whole batches are matched until one yields candidates
    or ``max_patterns`` patterns are done. A candidate's focal length, implied
    by the ratio of its image and catalog sizes, must lie in ``[f_lo, f_hi]``,
    and, when ``hint`` (the unit vector of a position hint) is not empty, its
    four stars must lie within ``acos(min_cos)`` of it.
    (``directory`` and ``shift`` of the key directory are not needed here: a
    binary search over ``keys_sorted`` finds the same rows.)

    Returns
    -------
    img_quads : (k, 4) rows of ``v_guess`` in canonical order
    cat_quads : (k, 4) star-table indices (canonical order, as stored)
    f_est : (k,) focal length implied by the pattern scales, pixels
    cat_largest : (k,) largest catalog edge, radians
    done : the pattern after the last one matched (a batch end)
    """
    done = start
    for end in ends:
        if end <= done:
            continue
        found = _batch_candidates(v_guess, combos[done:end], bins, tol, keys_sorted,
                                  pattern_stars, star_xyz, hint, min_cos, f_guess, f_lo,
                                  f_hi)
        if found is not None:
            return (*found, end)
        done = end
        if done - start >= max_patterns:
            break
    return (np.zeros((0, 4), np.intp), np.zeros((0, 4), np.intp), np.zeros(0), np.zeros(0),
            done)


def pattern_attitudes(ideal4, cat4, f_est, parities, proj):
    """Attitude of each candidate pattern pair, for the better of the allowed parities.

    ``ideal4`` (k, 4, 2) ideal pixel offsets, ``cat4`` (k, 4, 3) catalog
    vectors, ``parities`` the allowed parities (bool array) in order of
    preference on a tie. Returns rotations (k, 3, 3), each pair's largest
    star residual (k,) in radians and the parity chosen (k,).
    """
    m = len(f_est)
    p = len(parities)
    sign = np.repeat(np.where(np.asarray(parities), -1.0, 1.0), m)[:, None]
    f_rep = np.tile(f_est, p)[:, None]
    ideal_rep = np.tile(ideal4, (p, 1, 1))
    vi = plane_to_vectors(sign * ideal_rep[..., 0] / f_rep, ideal_rep[..., 1] / f_rep, proj)
    cv_rep = np.tile(cat4, (p, 1, 1))
    R = wahba_rotation(vi, cv_rep)
    res = np.max(np.sum((vi - cv_rep @ np.swapaxes(R, -1, -2)) ** 2, axis=-1), axis=1)
    res = np.where(np.isfinite(res), res, np.inf)  # a star outside the projection's image
    res = chord_to_angle(np.sqrt(res)).reshape(p, m)
    pick = np.argmin(res, axis=0)
    return (R.reshape(p, m, 3, 3)[pick, np.arange(m)], res[pick, np.arange(m)],
            np.asarray(parities, dtype=bool)[pick])


def pattern_attitude(ideal4, cat4, c, f, parities, proj):
    """:func:`pattern_attitudes` of the one candidate row ``c`` of ``ideal4`` and ``cat4``
    at focal length ``f`` (px): (R (3, 3), its largest star residual in radians, the
    parity chosen)."""
    R, res, par = pattern_attitudes(ideal4[c:c + 1], cat4[c:c + 1], np.array([f]), parities,
                                    proj)
    return R[0], float(res[0]), bool(par[0])


# ------------------------------------------------------------------------------------
# Matching and verification


def kdtree_matches(tree, cat, radius):
    """Pairs (image row, catalog row, distance) for large problems, from a KD-tree of the image.

    Each catalog star takes its nearest centroid within ``radius``; a
    centroid claimed by several stars keeps the closest.
    """
    d, i = tree.query(cat, distance_upper_bound=radius)
    j = np.flatnonzero(np.isfinite(d))
    return _keep_closest_claims(i[j], j, d[j])


def claims_matrix(img, cat, radius):
    """:func:`kdtree_matches` from the distance matrix, for problems up to
    :data:`CLAIMS_MATRIX_PAIRS` pairs: each catalog star takes its nearest centroid
    closer than ``radius`` (strictly, as the KD-tree's upper bound; of centroids at one
    distance the lower row, as ``argmin``), a centroid claimed by several stars keeps
    the closest. The differences are formed directly (not expanded as in
    :func:`_distance2`), so the distances are the KD-tree's to the last bit."""
    dx = cat[:, 0, None] - img[None, :, 0]
    dy = cat[:, 1, None] - img[None, :, 1]
    d2 = dx * dx + dy * dy
    i = np.argmin(d2, axis=1)
    best = d2[np.arange(len(cat)), i]
    j = np.flatnonzero(best < radius * radius)
    return _keep_closest_claims(i[j], j, np.sqrt(best[j]))


def _keep_closest_claims(i, j, d):
    """Of the claims (centroid ``i``, star ``j``, distance ``d``; ``j`` ascending), each
    centroid's closest (ties to the lower star row: the sort is stable)."""
    if len(j) == 0:
        return i, j, d
    order = np.lexsort((d, i))
    first = np.ones(len(order), bool)
    first[1:] = i[order][1:] != i[order][:-1]
    keep = np.sort(order[first])
    return i[keep], j[keep], d[keep]


def _distance2(img, cat):
    """Squared distances ``(n_cat, n_img)``: |c - m|^2 expanded, one small matrix product."""
    return (np.einsum("ij,ij->i", cat, cat)[:, None] + np.einsum("ij,ij->i", img, img)[None, :]
            - 2.0 * (cat @ img.T))


def mutual_matches(img, cat, radius):
    """One-to-one pairs (image row, catalog row, distance) within ``radius`` pixels.

    Small problems: pairs that are each other's nearest neighbour, in
    increasing catalog row. Large ones (more than :data:`BRUTE_FORCE_PAIRS`
    pairs): :func:`kdtree_matches`.
    """
    if len(img) == 0 or len(cat) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    if len(img) * len(cat) > BRUTE_FORCE_PAIRS:
        if len(img) * len(cat) <= CLAIMS_MATRIX_PAIRS:
            return claims_matrix(img, cat, radius)
        from scipy.spatial import cKDTree  # here: a small solve never needs scipy.spatial

        return kdtree_matches(cKDTree(img), cat, radius)
    d2 = _distance2(img, cat)
    i = np.argmin(d2, axis=1)
    rows = np.arange(len(cat))
    # mutual nearest neighbours are one-to-one by construction
    j = np.flatnonzero((np.argmin(d2, axis=0)[i] == rows) & (d2[rows, i] <= radius * radius))
    # the expanded form can round a zero distance to a tiny negative number
    return i[j], j, np.sqrt(np.maximum(d2[j, i[j]], 0.0))


def crowding(img, cat, radius, outer):
    """Mean chance per centroid of meeting a catalog star, from the local star density.

    Each centroid counts the catalog stars in the annulus ``(radius, outer]``
    around it (the star it may match is left out, so the estimate is
    unbiased); the density times the match disc ``pi radius^2`` is its chance.
    """
    d2 = _distance2(cat, img)
    around = np.count_nonzero((d2 > radius ** 2) & (d2 <= outer ** 2), axis=1)
    return float(np.mean(around * radius ** 2 / (outer ** 2 - radius ** 2)))


def verify_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, half_h, count,
                  radius, outer):
    """A verification's numbers: (catalog stars in the image, matched centroid rows,
    match distances, crowding chance).

    The catalog ``vectors`` are projected (the first ``count`` inside the
    image kept), matched one-to-one with the first ``n_img`` centroids (the
    centroid rows and distances of the matches within ``radius``, in
    increasing catalog row), and the crowding chance of :func:`crowding`
    computed.
    """
    rows, p = in_image(vectors, R, f, parity, proj, cx, cy, half_w, half_h, count)
    if len(rows) == 0:
        return 0, np.zeros(0, np.intp), np.zeros(0), 0.0
    i, _, d = mutual_matches(ideal[:n_img], p, radius)
    return len(rows), i, d, crowding(ideal[:n_img], p, radius, outer)


def fine_counts(ideal, n_img, anchors, rows, dist, radii, slack):
    """A verification's matches at finer radii, away from the pattern stars.

    For each radius ``rho`` of ``radii``: how many of the first ``n_img`` centroids
    lie at least ``rho / slack`` from every one of ``anchors`` (the pattern stars'
    ideal px), and how many of those are among the matches ``rows`` (centroid rows)
    with distance ``dist <= rho``. Returns (matches, centroids), integer arrays.
    """
    gap = np.sqrt(((ideal[:n_img, None, :] - anchors[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    k = np.empty(len(radii), np.intp)
    n_far = np.empty(len(radii), np.intp)
    for t, rho in enumerate(radii):
        far = gap >= rho / slack
        k[t] = np.count_nonzero((dist <= rho) & far[rows])
        n_far[t] = np.count_nonzero(far)
    return k, n_far


def verify_tail_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, half_h,
                       count, radius, outer, anchors, radii, slack):
    """A verification's counts in one call: :func:`verify_counts` (with the number of
    matches for their rows and distances), then, unless no catalog star is imaged or
    ``radii`` is empty, :func:`fine_counts` of those matches.

    Returns (catalog stars in the image, matches, crowding chance, matches at each of
    ``radii``, centroids at each of ``radii``); the last two are empty when not counted.
    """
    n_cat, rows, dist, crowd = verify_counts(ideal, n_img, vectors, R, f, parity, proj, cx,
                                             cy, half_w, half_h, count, radius, outer)
    if n_cat == 0 or len(radii) == 0:
        return n_cat, len(rows), crowd, np.zeros(0, np.intp), np.zeros(0, np.intp)
    k, n_far = fine_counts(ideal, n_img, anchors, rows, dist, radii, slack)
    return n_cat, len(rows), crowd, k, n_far


# ------------------------------------------------------------------------------------
# Fits


def fit_pairs(ideal, v_cat, use, f, parity, proj, fixed_camera):
    """Attitude (and focal length unless ``fixed_camera``) from the pairs ``use``.

    Returns (R, f, per-pair angular residuals in radians, ok); ``ok`` is False
    when the focal-length fit fails. Centroids the projection does not image at
    ``f`` are left out of the fit and get an infinite residual.
    """
    s = _sign(parity)
    v_img = unit_vectors(ideal, f, parity, proj)
    use = use[np.isfinite(v_img[use, 2])]
    if len(use) < 2:
        return np.eye(3), f, np.full(len(ideal), np.inf), False
    R = wahba_rotation(v_img[use], v_cat[use])
    if not fixed_camera:
        # least-squares f of ideal = f * (s qx, qy), q the catalog's projection-plane points
        qx, qy = vectors_to_plane(v_cat[use] @ R.T, proj)
        num = np.sum(s * ideal[use, 0] * qx + ideal[use, 1] * qy)
        den = np.sum(qx * qx + qy * qy)
        f_new = float(num / den) if den > 0 else float("nan")
        if not (math.isfinite(f_new) and f_new > 0):
            return R, f, np.full(len(ideal), np.inf), False
        if abs(f_new - f) > 1e-9 * f_new:
            f = f_new
            v_img = unit_vectors(ideal, f, parity, proj)
            use = use[np.isfinite(v_img[use, 2])]
            if len(use) < 2:
                return R, f, np.full(len(ideal), np.inf), False
            R = wahba_rotation(v_img[use], v_cat[use])
    diff = v_img - v_cat @ R.T
    err = chord_to_angle(np.sqrt(np.einsum("ij,ij->i", diff, diff)))
    return R, f, np.where(np.isnan(err), np.inf, err), True


#: :func:`converged_fit`: a fit whose last alternation moved the focal length by at most
#: this share of it is taken as it is (0.006 px at 600 px from the axis) ...
FIT_CLOSE = 1e-5
#: ... else the alternation runs to where its step is within this share ...
FIT_CONVERGED = 1e-9
#: ... taking at most this many extrapolated steps.
FIT_ROUNDS = 20


def converged_fit(ideal, v_cat, use, R, f, f_from, err, parity, proj):
    """The least-squares attitude and focal length of the pairs ``use``, from their fit
    ``(R, f, err)`` by :func:`fit_pairs` from focal length ``f_from``: that fit itself
    when its step ``f - f_from`` is within :data:`FIT_CLOSE` of ``f``; else the fixed
    point of the alternation (:data:`FIT_CONVERGED`), by Aitken's extrapolation of its
    steps, when it fits the pairs no worse. Returns ``(R, f, residuals)``.

    :func:`fit_pairs` alternates once: a rotation for the focal length, then the focal
    length for it. Where a change of focal length looks like a tilt -- the stars off the
    optical axis on one side: an optical centre off the image's, a cloud or a roof over
    part of the frame -- each alternation takes only part of the focal length's error
    off (0.39 of it a step on a 13 deg field about an optical centre 360 px from the
    image's), and the refinement's passes stopped 3.4 px of 5,532 short, the boresight
    7.8" off. The steps shrink geometrically there, so the extrapolation of three
    lands on the fixed point in two or three rounds. The refinement's passes
    (:func:`refine_with`) call it about an optical centre off the image's only: about a
    centred one, stars on one side are left to the passes (see benchmarks/README.md).
    """
    if not abs(f - f_from) > FIT_CLOSE * f:
        return R, f, err
    f0, f1 = f_from, f
    R1, err1 = R, err
    for _ in range(FIT_ROUNDS):
        R2, f2, err2, ok = fit_pairs(ideal, v_cat, use, f1, parity, proj, False)
        if not ok:
            return R, f, err
        if abs(f2 - f1) <= FIT_CONVERGED * f1:
            R1, f1, err1 = R2, f2, err2
            break
        bend = f2 - 2.0 * f1 + f0
        jump = f0 - (f1 - f0) ** 2 / bend if bend != 0.0 else f2
        if not (math.isfinite(jump) and jump > 0.0):
            jump = f2
        R1, f1, err1, ok = fit_pairs(ideal, v_cat, use, jump, parity, proj, False)
        if not ok:
            return R, f, err
        f0 = jump
        if abs(f1 - f0) <= FIT_CONVERGED * f0:
            break
    # (a guard: the fixed point minimises the plane's misfit in f and Wahba's in R, not
    # the summed squared angles, so it could in principle come out a hair worse)
    if not float(np.sum(err1[use] ** 2)) <= float(np.sum(err[use] ** 2)):
        return R, f, err
    return R1, f1, err1


def trimmed_fit(ideal, v_cat, f, parity, proj, fixed_camera, h, steps):
    """Least-trimmed-squares concentration steps over matched pairs.

    Fit everything, then repeatedly refit the best ``h`` pairs and re-rank, up
    to ``steps`` fits or until the best set repeats. A few wrong matches near
    the edge of the match radius then cannot drag the fit, as they would a
    plain least-squares fit of everything.

    Returns (R, f, err) of the first fit, (R, f, err) of the last fit, the
    core pairs ranked best by the last fit, and ok (False when a focal-length
    fit failed).
    """
    core = np.arange(len(ideal))
    R0, f0, err0, ok = fit_pairs(ideal, v_cat, core, f, parity, proj, fixed_camera)
    R, f1, err = R0, f0, err0
    for step in range(steps):
        if step:
            R, f1, err, ok = fit_pairs(ideal, v_cat, core, f1, parity, proj, fixed_camera)
        if not ok:
            break
        new_core = np.sort(np.argsort(err, kind="stable")[:h])
        if np.array_equal(new_core, core):
            break
        core = new_core
    return R0, f0, err0, R, f1, err, core, ok


def median(values):
    """Median of a non-empty 1-D array (numpy's result, without its overhead)."""
    v = np.sort(values)
    n = len(v)
    return float(0.5 * (v[(n - 1) // 2] + v[n // 2]))


def _matches(prims, trees, ideal_all, n_img, p, radius):
    """:func:`mutual_matches` of the first ``n_img`` centroids, KD-trees cached per call."""
    if n_img * len(p) <= BRUTE_FORCE_PAIRS:
        return prims.mutual_matches(ideal_all[:n_img], p, radius)
    if n_img * len(p) <= CLAIMS_MATRIX_PAIRS:
        return claims_matrix(ideal_all[:n_img], p, radius)
    if n_img not in trees:
        from scipy.spatial import cKDTree

        trees[n_img] = cKDTree(ideal_all[:n_img])
    return kdtree_matches(trees[n_img], p, radius)


def rematch(prims, ideal_all, v_all, R, f, parity, proj, cx, cy, half_w, half_h, radius,
            trees=None):
    """A refinement's matches under ``(R, f, parity)``: (catalog rows in the image, their
    ideal px, centroid rows, rows of the first two) within ``radius`` px, one to one.

    The brightest ``3 len(ideal_all)`` catalog stars inside the image meet the brightest
    ``3`` centroids per star (50 at least). ``prims`` holds the backend's ``in_image`` and
    ``mutual_matches``; ``trees`` caches KD-trees between calls.
    """
    n_img_all = len(ideal_all)
    rows, p = prims.in_image(v_all, R, f, parity, proj, cx, cy, half_w, half_h, 3 * n_img_all)
    if len(rows) == 0:
        return rows, p, np.zeros(0, np.intp), np.zeros(0, np.intp)
    # limit both sides so that a deep list on one side cannot swamp the other
    n_img = min(n_img_all, max(3 * len(rows), 50))
    i, j, _ = _matches(prims, {} if trees is None else trees, ideal_all, n_img, p, radius)
    return rows, p, i, j


def refine_with(prims, ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy, half_w,
                half_h, radius, iterations, sigma_clip):
    """:func:`refine` built from a backend's primitives (``in_image``, ``mutual_matches``,
    ``trimmed_fit``, ``fit_pairs``); the compiled backend runs large fields through it."""
    trees: dict[int, Any] = {}  # scipy cKDTrees
    img_idx = rows_kept = np.zeros(0, np.intp)
    err = np.zeros(0)
    keep = np.zeros(0, bool)
    for it in range(iterations + 1):
        rows, p, i, j = rematch(prims, ideal_all, v_all, R, f, parity, proj, cx, cy, half_w,
                                half_h, radius, trees)
        if len(rows) == 0:
            return False, R, f, img_idx, rows_kept, err
        if len(i) < 3:
            return False, R, f, img_idx, rows_kept, err
        if it and np.array_equal(i, img_idx) and np.array_equal(rows[j], rows_kept):
            break  # the matches did not change: the last fit is final
        img_idx, rows_kept = i, rows[j]
        ideal, v_cat = ideal_all[img_idx], v_all[rows_kept]
        # later passes start from a clean fit: one step (fit everything) suffices there
        h = min(len(i), max(5, math.ceil(0.6 * len(i))))
        f_from = f
        R0, f0, err0, R, f, err, core, ok = prims.trimmed_fit(
            ideal, v_cat, f, parity, proj, fixed_camera, h, 8 if it == 0 else 1)
        if not ok:
            return False, R, f, img_idx, rows_kept, err
        floor = clip_floor_px(radius) / f
        keep = err <= max(sigma_clip * 1.4826 * median(err[core]), floor)
        if keep.sum() < 3:
            return False, R, f, img_idx, rows_kept, err
        if keep.all():
            R, f, err = R0, f0, err0  # nothing clipped: the first fit used exactly these
        else:
            f_from = f
            R, f, err, ok = prims.fit_pairs(ideal, v_cat, np.flatnonzero(keep), f, parity,
                                            proj, fixed_camera)
            if not ok:
                return False, R, f, img_idx, rows_kept, err
    if not fixed_camera and (cx != 0.0 or cy != 0.0):
        # (an optical centre off the image's: the stars off the axis, on one side)
        R, f, err = prims.converged_fit(ideal, v_cat, np.flatnonzero(keep), R, f, f_from, err,
                                        parity, proj)
    return True, R, f, img_idx[keep], rows_kept[keep], err[keep]


def refine(ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy, half_w, half_h, radius,
           iterations, sigma_clip):
    """Re-match all stars and refit attitude (and focal length) ``iterations + 1`` times.

    ``v_all`` holds the catalog cone's vectors (one cone serves every pass:
    the attitude moves by far less than its margin). Each pass matches
    centroids to the projected catalog, fits robustly -- trimmed
    concentration steps, then sigma clipping -- and refits the inliers.
    Returns (ok, R, f, image rows, cone rows, residuals in radians) of the
    kept matches of the last pass.
    """
    return refine_with(_PRIMITIVES, ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy,
                       half_w, half_h, radius, iterations, sigma_clip)


def attitude_covariance(ideal, f, parity, proj, sigma):
    """Attitude covariance (camera axes, rad²): ``sigma^2 (sum(I - v v^T))^-1``.

    Each matched unit vector ``v`` constrains the two rotation axes
    perpendicular to it. NaN where the information matrix is singular.
    """
    v = unit_vectors(ideal, f, parity, proj)
    info = len(v) * np.eye(3) - v.T @ v
    try:
        return sigma ** 2 * np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full((3, 3), np.nan)


def solution_arrays(ideal, xy, img_idx, cat_idx, err, star_ra_deg, star_dec_deg, f, parity,
                    proj, sigma):
    """The arrays and statistics of a result from its kept matches.

    ``img_idx``, ``cat_idx``: the matches' centroid rows (of ``ideal`` and ``xy``) and
    star-table rows (of ``star_ra_deg``, ``star_dec_deg``); ``err``: their residuals
    (radians). Returns, the matches in increasing centroid row (a stable order):
    (centroid rows, star-table rows, their ``xy``, their (RA, Dec) in degrees (n, 2),
    residuals in arc seconds, the residuals' 90th percentile (interpolated linearly,
    numpy's default) and largest in arc seconds, and :func:`attitude_covariance` of the
    matched centroids with ``sigma``).
    """
    order = np.argsort(img_idx, kind="stable")
    rows = img_idx[order]
    stars = cat_idx[order]
    radec = np.empty((len(stars), 2))
    radec[:, 0] = star_ra_deg[stars]
    radec[:, 1] = star_dec_deg[stars]
    err_sorted = np.sort(err) * ARCSEC_PER_RAD
    pos = 90.0 / 100.0 * (len(err_sorted) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(err_sorted) - 1)
    p90 = float(err_sorted[lo] + (pos - lo) * (err_sorted[hi] - err_sorted[lo]))
    cov = attitude_covariance(ideal[rows], f, parity, proj, sigma)
    return (rows, stars, xy[rows], radec, err[order] * ARCSEC_PER_RAD, p90,
            float(err_sorted[-1]), cov)


# ------------------------------------------------------------------------------------
# Tracking


def unique_pairs(ii, jj, closeness):
    """Rows of pairs ``(ii, jj)`` keeping one catalog star per centroid and one centroid
    per star: the closest pairs (largest ``closeness``) first, in that order; every row,
    in its own order, when no centroid and no star appears twice."""
    if np.bincount(ii).max() <= 1 and np.bincount(jj).max() <= 1:
        return np.arange(len(ii))  # (the usual case: nothing to choose between)
    rows = np.argsort(-closeness, kind="stable")
    _, first_i = np.unique(ii[rows], return_index=True)
    rows = rows[np.sort(first_i)]
    _, first_j = np.unique(jj[rows], return_index=True)
    return rows[np.sort(first_j)]


def offset_pairs(img, p, search_px, cell, cells, cos_roll, sin_roll):
    """The candidate pairs in the densest block of image-plane offsets (tracking's vote).

    Candidate pairs are (centroid ``img[i]``, projected catalog star ``p[j]``) within
    ``search_px`` of each other, by centroid then star. Their offsets ``img[i] - p[j]``,
    with the stars first turned about the optical centre by each roll (``cos_roll``,
    ``sin_roll``), fall in ``cells`` x ``cells`` square cells ``cell`` px wide from
    ``-search_px``; the densest block of 2 x 2 cells over all rolls (the first in
    (roll, x, y) order among equals) gives the pairs within a cell of its centre, one
    per centroid and per star (:func:`unique_pairs`, closest first). Returns
    ``(centroid rows, star rows)``, empty when fewer than 3 pairs are candidates or the
    block holds fewer than 3.
    """
    none = np.zeros(0, np.intp), np.zeros(0, np.intp)
    dx = img[:, 0, None] - p[None, :, 0]  # (one 2-D array per axis: 3x faster than (n, m, 2))
    dy = img[:, 1, None] - p[None, :, 1]
    ii, jj = np.nonzero(dx * dx + dy * dy <= search_px * search_px)
    if len(ii) < 3:
        return none
    # offsets after each roll, (rolls, pairs); a roll of 0 leaves them as they are
    c, s = cos_roll[:, None], sin_roll[:, None]
    px, py = p[jj, 0], p[jj, 1]
    ox = img[ii, 0] - (c * px - s * py)
    oy = img[ii, 1] - (s * px + c * py)
    kx = ((ox + search_px) // cell).astype(np.intp)
    ky = ((oy + search_px) // cell).astype(np.intp)
    inside = (kx >= 0) & (kx < cells) & (ky >= 0) & (ky < cells)
    n_rolls = len(cos_roll)
    keys = (np.arange(n_rolls)[:, None] * cells + kx) * cells + ky
    counts = np.bincount(keys[inside], minlength=n_rolls * cells * cells)
    counts = counts.reshape(n_rolls, cells, cells)
    # blocks of 2x2 cells: a pile split by a cell edge still counts whole
    blocks = (counts[:, :-1, :-1] + counts[:, 1:, :-1] + counts[:, :-1, 1:]
              + counts[:, 1:, 1:])
    k, bx, by = np.unravel_index(int(np.argmax(blocks)), blocks.shape)
    if blocks[k, bx, by] < 3:
        return none
    ox, oy = ox[k], oy[k]
    miss = np.maximum(np.abs(ox - ((bx + 1.0) * cell - search_px)),
                      np.abs(oy - ((by + 1.0) * cell - search_px)))
    rows = np.flatnonzero(miss <= cell)
    rows = rows[unique_pairs(ii[rows], jj[rows], -miss[rows])]
    return ii[rows], jj[rows]


def fit_shares(v, u, normal, f):
    """Each match's share (px at focal length ``f``) of a rotation fit's residuals: the
    square root of what leaving it out takes from the fit's sum of squared residuals.

    ``v``: the matched centroids' unit vectors, ``u``: their stars' as the fit's rotation
    puts them (``(n, 3)`` each); ``normal``: ``(n - 1) I - sum(u u^T)``. The fit is linear
    in a small turn ``w`` of ``u``: a residual ``r = v - u`` becomes ``r + u x w``, whose
    normal matrix is ``N = sum(I - u u^T)``; leaving a match out from the optimum takes
    ``|r|^2 + t^T M^-1 t`` from the sum, ``t = u x r`` and ``M = N - I + u u^T`` (the
    normal matrix of the others, ``normal + u u^T``), whose symmetric inverse is taken
    from its cofactors, entry by entry (numpy's batched 3x3 solves and cross products
    cost more than the rest of a tracking answer's check).
    """
    r = v - u
    (u0, u1, u2), (r0, r1, r2) = u.T, r.T
    t0, t1, t2 = u1 * r2 - u2 * r1, u2 * r0 - u0 * r2, u0 * r1 - u1 * r0
    p = normal
    m00, m11, m22 = p[0, 0] + u0 * u0, p[1, 1] + u1 * u1, p[2, 2] + u2 * u2
    m01, m02, m12 = p[0, 1] + u0 * u1, p[0, 2] + u0 * u2, p[1, 2] + u1 * u2
    c00, c11, c22 = m11 * m22 - m12 * m12, m00 * m22 - m02 * m02, m00 * m11 - m01 * m01
    c01, c02, c12 = m02 * m12 - m01 * m22, m01 * m12 - m02 * m11, m01 * m02 - m00 * m12
    det = m00 * c00 + m01 * c01 + m02 * c02
    pull = (c00 * t0 * t0 + c11 * t1 * t1 + c22 * t2 * t2
            + 2.0 * (c01 * t0 * t1 + c02 * t0 * t2 + c12 * t1 * t2)) / det
    return np.sqrt(np.maximum(0.0, r0 * r0 + r1 * r1 + r2 * r2 + pull)) * f

_PRIMITIVES = SimpleNamespace(in_image=in_image, mutual_matches=mutual_matches,
                              trimmed_fit=trimmed_fit, fit_pairs=fit_pairs,
                              converged_fit=converged_fit)
