"""Mutation check: do the tests catch plausible bugs in the core? (``make mutate``)

Each mutant below is a small, plausible bug (a sign, an index, a dropped term, a
half pixel) in the core: geometry and conventions, pattern keys, verification and
its false-match probability, refinement, the result's WCS views and export, the
camera, calibration and its clipping, extraction's centroids and masks,
aberration and the batch path. The six bugs of issue 20 are among them
(``planted-*``). For every mutant the script

1. copies the repository (the files git knows, plus untracked ones not ignored,
   and numba's on-disk cache) into scratch directories, one per parallel job, so
   the working tree is never touched; a warm-up run builds the shared test
   database once (``SKYSOLVE_TEST_DB_CACHE``, read by ``conftest.py``);
2. replaces each code snippet of the mutant, matched exactly (a snippet that is
   absent or not unique is reported as SKIPPED with a warning, so the list
   survives other work on the code; re-anchor it then);
3. runs only the tests relevant to that code, fastest first, with ``-x`` and
   without the ``slow`` marker; a failing test (or a hang past ``--timeout``)
   kills the mutant;
4. restores the file and its time stamp (numba's cache checks it).

Mutants of code compiled into the numba kernels or stored in the databases (the
pattern keys) run with empty caches, so that the kernels and the database are
built from the mutant, as a user's would be.

It then prints the report: every mutant killed, survived, skipped or declared
equivalent (:data:`EQUIVALENT`, with the reason), and the kill rate over the
non-equivalent mutants that ran. The exit status is 1 when a non-equivalent
mutant survived or was skipped.

Usage::

    python tools/mutate.py                 # all mutants
    python tools/mutate.py --list          # the list, and whether each anchor is found
    python tools/mutate.py --only planted-roll-sign,keys-bin-round
    python tools/mutate.py --jobs 3 --report mutate-report.txt
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: conftest.py keeps the shared test database in this directory when it is set
DB_CACHE_ENV_VAR = "SKYSOLVE_TEST_DB_CACHE"
S = "src/skysolve/"

# Test groups (paths relative to the repository), most targeted first.
T_INDEP = S + "solver/tests/test_independent_answers.py"
T_SOLVER = S + "solver/tests/test_solver.py"
T_FMP = S + "solver/tests/test_false_match_probability.py"
T_PATTERNS = S + "solver/tests/test_patterns.py"
T_BACKENDS = S + "solver/tests/test_backends.py"
T_WCS = S + "io/tests/test_wcs.py"
T_CAMERA = S + "camera/tests/test_camera.py"
T_CONTAM = S + "calibration/tests/test_contamination.py"
T_CAL = S + "calibration/tests/test_calibration.py"
T_EXTRACT = S + "extraction/tests/test_extraction.py"
T_ABERR = S + "sky/tests/test_aberration.py"
T_BATCH = S + "batch/tests/test_solve_many.py"
T_FALSE = "tests/robustness/test_false_matches.py"


@dataclass
class Mutant:
    """A named bug: ``edits`` are ``(exact snippet, replacement)`` pairs in ``path``."""

    name: str
    path: str
    edits: list[tuple[str, str]]
    tests: list[str]
    what: str
    keyword: str | None = None  # optional ``pytest -k`` expression
    #: the code is compiled into the numba kernels or the databases (pattern keys): build
    #: both afresh instead of reusing the unmutated ones
    fresh: bool = False


MUTANTS: list[Mutant] = [
    # -- the six bugs of issue 20 -------------------------------------------------------
    Mutant("planted-roll-sign", S + "geometry.py", [
        ("roll = np.degrees(np.arctan2(np.sum(y_axis * east, -1), np.sum(y_axis * north, -1)))",
         "roll = np.degrees(np.arctan2(-np.sum(y_axis * east, -1), np.sum(y_axis * north, -1)))"),
        ("roll = math.degrees(math.atan2(yx * ex + yy * ey + yz * ez,",
         "roll = math.degrees(math.atan2(-(yx * ex + yy * ey + yz * ez),"),
    ], [T_INDEP, T_SOLVER], "roll measured West of North (both paths)"),
    Mutant("planted-cd-mirror", S + "solver/result.py", [
        ("s = -1.0 if self.parity_flip else 1.0", "s = 1.0"),
    ], [T_INDEP, T_WCS], "cd_matrix ignores the mirror"),
    Mutant("planted-plain-rms-clip", S + "calibration/engine.py", [
        ("            robust=robust_rms) -> Fitted:", "            robust=rms) -> Fitted:"),
    ], [T_CONTAM], "calibration clips at k x plain rms instead of the robust rms"),
    Mutant("planted-no-hypothesis-factor", S + "solver/lost_in_space.py", [
        ("if prob * state[1][0] >= threshold:", "if prob >= threshold:"),
        ("prob * state[1][0], t0, field)", "prob, t0, field)"),
    ], [T_FMP], "false-match test without the multiple-hypothesis factor"),
    Mutant("planted-half-pixel", S + "extraction/extract.py", [
        ("col + 0.5 - w / 2.0, row + 0.5 - h / 2.0", "col - w / 2.0, row - h / 2.0"),
    ], [T_EXTRACT], "centroids half a pixel off (corner instead of centre origin)"),
    Mutant("planted-mask-dropped", S + "extraction/extract.py", [
        ("bad = None if mask is None else scratch.copy(mask)", "bad = None"),
    ], [T_EXTRACT], "the image's mask is ignored"),
    # -- geometry and conventions -------------------------------------------------------
    Mutant("geometry-roll-sign-arrays", S + "geometry.py", [
        ("roll = np.degrees(np.arctan2(np.sum(y_axis * east, -1), np.sum(y_axis * north, -1)))",
         "roll = np.degrees(np.arctan2(-np.sum(y_axis * east, -1), np.sum(y_axis * north, -1)))"),
    ], [T_INDEP], "roll sign flipped for stacks of rotations only"),
    Mutant("geometry-left-handed-camera", S + "geometry.py", [
        ("x_axis = np.cross(y_axis, bore)", "x_axis = np.cross(bore, y_axis)"),
    ], [T_INDEP, T_SOLVER], "radec_roll_to_rotation builds a left-handed frame"),
    Mutant("geometry-east-sign", S + "geometry.py", [
        ("east = np.cross(z, v)", "east = np.cross(v, z)"),
    ], [T_INDEP, T_SOLVER], "local East points West"),
    Mutant("geometry-ra-axes", S + "geometry.py", [
        ("ra = np.degrees(np.arctan2(y, x)) % 360.0", "ra = np.degrees(np.arctan2(x, y)) % 360.0"),
    ], [T_INDEP, T_SOLVER], "RA from swapped axes"),
    Mutant("geometry-chord", S + "geometry.py", [
        ("return 2.0 * np.sin(0.5 * np.asarray(angle_rad, dtype=np.float64))",
         "return 2.0 * np.sin(np.asarray(angle_rad, dtype=np.float64))"),
    ], [T_SOLVER, T_PATTERNS], "chord of the full angle instead of the half angle"),
    Mutant("geometry-wahba-reflection", S + "geometry.py", [
        ("if a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0) < 0:",
         "if a0 * (b1 * c2 - b2 * c1) - a1 * (b0 * c2 - b2 * c0) + a2 * (b0 * c1 - b1 * c0) > 0:"),
    ], [T_INDEP, T_SOLVER], "Wahba's solution keeps reflections and flips proper rotations"),
    Mutant("geometry-quaternion-order", S + "geometry.py", [
        ("q = rows[np.arange(len(r)), k]", "q = rows[np.arange(len(r)), k][:, [1, 2, 3, 0]]"),
    ], [T_SOLVER], "quaternion returned scalar-last"),
    Mutant("geometry-covariance-theta", S + "geometry.py", [
        ("[c22, -(c20 * j1[0] + c21 * j1[1]), -(c20 * j2[0] + c21 * j2[1])],",
         "[c22, c20 * j1[0] + c21 * j1[1], c20 * j2[0] + c21 * j2[1]],"),
        ("[-m1[2], m1[0]", "[m1[2], m1[0]"),
        ("[-m2[2], m2[0]", "[m2[2], m2[0]"),
    ], [T_INDEP], "d theta = +w_z: the roll's covariance with the boresight changes sign"),
    # -- solve results, WCS views and export -------------------------------------------
    Mutant("result-theta-axes", S + "solver/result.py", [
        ("math.atan2(R[0] @ north, R[0] @ east)", "math.atan2(R[0] @ east, R[0] @ north)"),
    ], [T_INDEP, T_SOLVER], "theta measured from North instead of East"),
    Mutant("result-roll-negated", S + "solver/refinement.py", [
        ("roll_deg=signed_degrees(roll)", "roll_deg=signed_degrees(-roll)"),
    ], [T_INDEP, T_SOLVER], "reported roll negated"),
    Mutant("result-p90-median", S + "solver/backends/reference.py", [
        ("pos = 90.0 / 100.0 * (len(err_sorted) - 1)",
         "pos = 50.0 / 100.0 * (len(err_sorted) - 1)"),
    ], [T_BACKENDS, T_INDEP], "p90e is the median (numpy backend)"),
    Mutant("result-sigma-dof", S + "solver/refinement.py", [
        ("dof = max(1, 2 * n - ref.fitted)", "dof = max(1, n - ref.fitted)"),
    ], [T_INDEP], "attitude covariance from one residual component per star"),
    Mutant("result-ids-unsorted", S + "solver/backends/reference.py", [
        ("stars = cat_idx[order]", "stars = cat_idx"),
    ], [T_BACKENDS, T_INDEP, T_SOLVER],
        "matched catalog ids not reordered with the centroids (numpy backend)"),
    Mutant("wcs-crpix-half-pixel", S + "io/wcs.py", [
        ("crpix = np.array([0.5 * w + 0.5, 0.5 * h + 0.5])",
         "crpix = np.array([0.5 * w, 0.5 * h])"),
    ], [T_INDEP, T_WCS], "FITS CRPIX half a pixel off"),
    Mutant("wcs-cd-no-mirror", S + "io/wcs.py", [
        ("cd = np.degrees(m @ np.diag([sign, 1.0]) / camera.focal_length_px)",
         "cd = np.degrees(m @ np.diag([1.0, 1.0]) / camera.focal_length_px)"),
    ], [T_INDEP, T_WCS], "exported CD ignores the mirror"),
    Mutant("wcs-read-parity", S + "io/wcs.py", [
        ("parity_flip=sign < 0, distortion=dist", "parity_flip=sign > 0, distortion=dist"),
    ], [T_WCS], "a header's parity read backwards"),
    Mutant("camera-plane-parity", S + "camera/model.py", [
        ("return sign * u / self._f, v / self._f", "return u / self._f, v / self._f"),
    ], [T_CAMERA, T_INDEP], "pixel_to_plane forgets the mirror"),
    Mutant("camera-crpix-axis", S + "camera/model.py", [
        ("v = yb - self._crpix[1]", "v = yb - self._crpix[0]"),
    ], [T_CAMERA], "the optical centre's y taken from x"),
    # -- pattern keys ------------------------------------------------------------------
    Mutant("keys-ratio-edges", S + "solver/keys.py", [
        ("ratios = e[..., :-1] / largest[..., None]", "ratios = e[..., 1:] / largest[..., None]"),
    ], [T_PATTERNS, T_SOLVER], "ratios of the five longest edges (the longest over itself)",
       fresh=True),
    Mutant("keys-bin-round", S + "solver/keys.py", [
        ("np.fmin(np.fmax(np.floor(ratio * bins), 0.0), bins - 1.0)",
         "np.fmin(np.fmax(np.round(ratio * bins), 0.0), bins - 1.0)"),
    ], [T_PATTERNS, T_BACKENDS], "ratio bins rounded instead of floored",
       fresh=True),
    Mutant("keys-pack-order", S + "solver/keys.py", [
        ("(((d4 * bins + d3) * bins + d2) * bins + d1) * bins + d0",
         "(((d4 * bins + d3) * bins + d2) * bins + d0) * bins + d1"),
    ], [T_PATTERNS, T_BACKENDS], "two ratios' places swapped in the key",
       fresh=True),
    # -- verification and its probability ----------------------------------------------
    Mutant("verify-factor-report-only", S + "solver/lost_in_space.py", [
        ("prob * state[1][0], t0, field)", "prob, t0, field)"),
    ], [T_FMP], "reported probability without the multiple-hypothesis factor"),
    Mutant("verify-tail-off-by-one", S + "solver/verification.py", [
        ("return binomial_tail(k, trials, min(1.0, float(p_match)))",
         "return binomial_tail(k + 1, trials, min(1.0, float(p_match)))"),
    ], [T_FMP], "P(X > k) instead of P(X >= k)"),
    Mutant("verify-fixed-ignored", S + "solver/verification.py", [
        ("trials = n_image - fixed", "trials = n_image"),
    ], [T_FMP], "the pattern stars counted as independent trials"),
    Mutant("verify-no-uniform-floor", S + "solver/verification.py", [
        ("max(crowd, uniform)", "crowd"),
    ], [T_FMP, T_SOLVER, T_FALSE], "local density without the uniform floor"),
    # -- refinement --------------------------------------------------------------------
    Mutant("centroids-given-order", S + "solver/solve.py", [
        ("    order = _brightness_order(brightness)\n", "    order = None\n"),
        ("order = _brightness_order(centroids[:, 2]) if centroids.shape[1] == 3 else None",
         "order = None"),
    ], [T_SOLVER], "centroids taken in the order given, not brightest first"),
    Mutant("camera-scale-kept", S + "solver/refinement.py", [
        ("        fit = _refit_scale(frame, v_all, hyp.parity, radius_px, iterations, "
         "sigma_clip,\n", "        fit = None and _refit_scale(frame, v_all, hyp.parity, "
         "radius_px, iterations, sigma_clip,\n"),
    ], [T_SOLVER], "a camera model's focal length kept however far off the stars put it"),
    Mutant("lens-axis-at-image-centre", S + "solver/solve.py", [
        ("    return (0.0, 0.0) if axis is None else axis\n", "    return (0.0, 0.0)\n"),
    ], [S + "extraction/tests/test_sky_circle.py"],
        "an all-sky frame's image circle does not give the lens's axis"),
    Mutant("lens-centre-not-fitted", S + "solver/radialterm.py", [
        ("    return not math.degrees(theta) < MIN_CENTRE_ANGLE_DEG",
         "    return False"),
    ], [S + "solver/tests/test_radialterm.py"],
        "a wide field's optical centre is never fitted"),
    Mutant("lens-term-fitted-from-every-pair", S + "solver/radialterm.py", [
        ("    for reach in INNER_RHO:\n", "    for reach in ():\n"),
    ], [S + "solver/tests/test_radialterm.py"],
        "the radial term fitted only from every pair, wrong outer pairs of a dense list "
        "included"),
    Mutant("lens-terms-not-searched", S + "solver/solve.py", [
        ("    for k1 in GUESSED_LENS_TERMS:\n", "    for k1 in ():\n"),
    ], [S + "solver/tests/test_radialterm.py"],
        "a wide field told its scale is never searched with guessed lens terms"),
    Mutant("lens-term-judged-by-mean-square-only", S + "solver/refinement.py", [
        ("            or _core_fits_better(frame, best, ref, radius_px)):\n",
         "            ):\n"),
    ], [S + "solver/tests/test_radialterm.py"],
        "a radial term is judged only by its mean square, which a wide radius's chance "
        "matches decide"),
    Mutant("projection-judged-by-count-and-mean-square", S + "solver/refinement.py", [
        ("                or _core_fits_better(frame, out, best, radius_px)):\n",
         "                ):\n"),
    ], [S + "solver/tests/test_radialterm.py"],
        "a guessed projection taken only when it matches as many stars, which a dense "
        "list's chance matches decide"),
    Mutant("lens-terms-answer-in-undistorted-frame", S + "solver/solve.py", [
        ("            result = answer(db, frame, cat, hyp,",
         "            result = found or answer(db, frame, cat, hyp,"),
    ], [S + "solver/tests/test_radialterm.py"],
        "the answer of a lens-term search kept in the undistorted centroids' frame"),
    Mutant("refine-clip-scale", S + "solver/backends/reference.py", [
        ("keep = err <= max(sigma_clip * 1.4826 * median(err[core]), floor)",
         "keep = err <= max(sigma_clip * median(err[core]), floor)"),
    ], [T_BACKENDS], "refinement clipping without the MAD's Gaussian scale (numpy backend)"),
    # -- calibration -------------------------------------------------------------------
    Mutant("calib-mad-scale", S + "calibration/lsq.py", [
        ("return float(math.sqrt(2.0) * 1.4826 * mad)", "return float(1.4826 * mad)"),
    ], [T_CONTAM], "robust rms of one axis taken for the 2-D length"),
    Mutant("calib-orders-share-pairs", S + "calibration/validation.py", [
        ("fitted = fit_camera([dataclasses.replace(im) for im in images], cameras, width,\n"
         "                                height, options, order)",
         "fitted = fit_camera(images, cameras, width, height, options, order)"),
    ], [S + "calibration/tests/test_validation.py"],
        "select_order fits every order to the pairs the last one re-matched"),
    Mutant("calib-direction-tie-inverse", S + "calibration/fit.py", [
        ("        if (primary == \"auto\" and not provisional\n", "        if (False\n"),
    ], [S + "calibration/tests/test_direction.py"],
        "a tie between the two directions always goes pixel -> sky"),
    # -- extraction --------------------------------------------------------------------
    Mutant("extract-subpixel-sign", S + "extraction/blobs.py", [
        ("off = np.clip(0.5 * (lv[:, 0] - lv[:, 2]) / c2, -0.5, 0.5)",
         "off = np.clip(0.5 * (lv[:, 2] - lv[:, 0]) / c2, -0.5, 0.5)"),
    ], [T_EXTRACT], "parabolic peak offset of the wrong sign"),
    Mutant("extract-curvature-width-only", S + "extraction/blobs.py", [
        ("sxr, syr = max(median(wx), mx), max(median(wy), my)",
         "sxr, syr = median(wx), median(wy)"),
    ], [S + "extraction/tests/test_broad_stars.py"],
        "faint stars fitted with the peaks' curvature width, which noise sets on broad ones"),
    Mutant("extract-clipped-floor-kept", S + "extraction/background.py", [
        ("    return out if _scattered(out, lit_pixels.reshape(h, w)) else None",
         "    return None"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a stretch's clipped corners left in: their noise peaks lead the list"),
    Mutant("clipped-floor-unspread", S + "extraction/background.py", [
        ("    return floor + float(ends[0]) * quantum", "    return floor"),
    ], [S + "extraction/tests/test_background.py", S + "extraction/tests/test_hard_frames.py"],
        "a JPEG's spread of a stretch's clipped floor left in: the floor's lit neighbours "
        "are its few counts, and nothing is masked"),
    Mutant("clipped-floor-not-beside-dark", S + "extraction/extract.py", [
        ("        clipped = clipped_floor(work, quantum, bad)",
         "        clipped = None if dark is not None else clipped_floor(work, quantum, bad)"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a JPEG's corners flattened to 0 whole hide the clipped noise beside them"),
    Mutant("clipped-floor-stars-dropped", S + "extraction/extract.py", [
        ("            stars = clipped_floor_stars(work, clipped, quantum, bad)",
         "            stars = None"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "the stars in a stretch's clipped sky stand on the fill's sky, their faint pixels "
        "below it"),
    Mutant("clipped-floor-stars-unscaled", S + "extraction/extract.py", [
        ("        scale = min(1.0, (white - level) / top) if scaled and white > level and top > 0 "
         "else 1.0",
         "        scale = 1.0"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a clipped floor's stars lifted above the frame's white hide its saturation level"),
    Mutant("turning-field-ignored", S + "extraction/smear.py", [
        ("        turning = _turning(meas[\"cx\"][ids], meas[\"cy\"][ids], doubled, lengths, "
         "width, shape)", "        turning = None"),
    ], [S + "extraction/tests/test_smear.py"],
        "trails that turn about the pole read as one trail"),
    Mutant("turning-field-fitted-to-all", S + "extraction/smear.py", [
        ("    use = use[int(np.argmax(use.sum(axis=1)))]", "    use = np.ones(len(x), dtype=bool)"),
    ], [S + "extraction/tests/test_smear.py"],
        "cosmic-ray tracks among the trails fitted with them"),
    Mutant("turning-field-ring", S + "extraction/smear.py", [
        ("            return None  # (one distance from a centre in the frame: a ring, no trails)",
         "            pass"),
    ], [S + "extraction/tests/test_smear.py"],
        "the pieces of an all-sky lens's rim read as trails about its centre"),
    Mutant("turning-field-one-kernel", S + "extraction/smear.py", [
        ("    if smear.spin == 0.0:\n        return convolve(image, kernel, background), kernel",
         "    if True:\n        return convolve(image, kernel, background), kernel"),
    ], [S + "extraction/tests/test_smear.py"],
        "a turning field filtered with the centre's trail everywhere"),
    Mutant("turning-field-unaligned", S + "extraction/extract.py", [
        ("            meas[\"aligned\"] = aligned_moments(meas, trail)", "            pass"),
    ], [S + "extraction/tests/test_smear.py"],
        "the shape tests read a turning field's trails as one smear's"),
    Mutant("trail-pieces-count-apart", S + "extraction/extract.py", [
        ("    if trail is not None and _prefer_filtered(found, trail, enough, joins=True):",
         "    if trail is not None and _prefer_filtered(found, trail, enough):"),
    ], [S + "extraction/tests/test_smear.py"],
        "a trail's pieces count as stars against the trail's pass"),
    Mutant("trails-among-enough-stars-unread", S + "extraction/extract.py", [
        ("    elif not _shows_trails(first):", "    else:"),
    ], [S + "extraction/tests/test_smear.py"],
        "a frame keeping enough pieces of trails gets no trail's pass"),
    Mutant("trails-on-a-flattened-sky-unfiltered", S + "extraction/extract.py", [
        ("    smear = None\n    for done in tried:",
         "    if bg.flattened:\n        return None\n    smear = None\n    for done in tried:"),
    ], [S + "extraction/tests/test_smear.py"],
        "a JPEG that flattened its sky gets no trail's pass"),
    Mutant("wide-rings-unfiltered", S + "extraction/extract.py", [
        ("    if psf is not None and psf.defocused and psf.width2 > _AUTO_SIGMA[1] ** 2:",
         "    if False:"),
    ], [S + "extraction/tests/test_rings.py"],
        "rings wider than the Gaussian filter get no disc's pass"),
    Mutant("ring-blobs-ungrown", S + "extraction/extract.py", [
        ("    if ring is not None:\n        labels, idx = ring_footprints(",
         "    if False:\n        labels, idx = ring_footprints("),
    ], [S + "extraction/tests/test_rings.py"],
        "a disc-filtered blob measured on its filtered footprint, a ring's hole"),
    Mutant("ring-radius-from-moments-alone", S + "extraction/extract.py", [
        ("ring=ring_radius(psf.width2, psf.offset))", "ring=ring_radius(psf.width2))"),
    ], [S + "extraction/tests/test_rings.py"],
        "the rings' radius read from their second moments only"),
    Mutant("clip-seven-sigmas-down", S + "extraction/background.py", [
        ("    if not top < level - _CLIP_SIGMAS * sigma:",
         "    if not top < level - DARK_SIGMAS * sigma:"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a stretch's floor within 7 of its spread noise sigmas of the sky stays in"),
    Mutant("clip-pedestal-not-looked-for", S + "extraction/background.py", [
        ("        floor = _pedestal(sample, quantum)", "        floor = None"),
    ], [S + "extraction/tests/test_background.py"],
        "a video-range black a JPEG spread both ways is no floor: its spread is left in"),
    Mutant("clip-floor-over-half-kept", S + "extraction/background.py", [
        ("        level = median(left)", "        return None"),
    ], [S + "extraction/tests/test_background.py"],
        "a black point above the sky's median: the floor has no sky to compare, and stays"),
    Mutant("clip-band-below-the-floor", S + "extraction/background.py", [
        ("    steps = np.rint((vals[(vals >= floor) & (vals < sky)] - floor) / quantum)",
         "    steps = np.rint((vals[vals < sky] - floor) / quantum)"),
    ], [S + "extraction/tests/test_background.py"],
        "a dead pixel below a clipped floor breaks the band's histogram (numpy's path)"),
    Mutant("float64-level-kept", S + "extraction/extract.py", [
        ("        coarse = _float32_coarse(sample, big)", "        coarse = False"),
    ], [S + "extraction/tests/test_robustness.py"],
        "a float64 frame's level left in its float32 copy, whose steps exceed the noise"),
    Mutant("clip-lift-against-the-median", S + "extraction/background.py", [
        ("    sky = percentiles(sample[sample > top], (_CLIP_SKY,))[0] - floor",
         "    sky = median(sample[sample > top]) - floor"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a floor's lift measured against the median sky, which a bright cloud sets"),
    Mutant("jpeg-grid-a-quarter-above-the-rest", S + "extraction/background.py", [
        ("_BLOCKING_RATIO = 1.1", "_BLOCKING_RATIO = 1.25"),
    ], [S + "extraction/tests/test_sky_circle.py"],
        "a crowded JPEG's block boundaries, diluted by its stars' steps, taken for none"),
    Mutant("mirror-beside-the-mask", S + "extraction/extract.py", [
        ("    if bad is not None:\n        near |= _beside(bad, idx)\n", ""),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "a JPEG's noise mirror counting the ragged edge of a picture's masked floor"),
    Mutant("letter-pieces-left-ungrown", S + "extraction/overlay.py", [
        ("        elif (_outline(mine) & bright).any():", "        elif False:"),
    ], [S + "extraction/tests/test_sky_circle.py"],
        "the pieces of a letter the background followed up looked at only as themselves"),
    Mutant("large-letters-bright-against-their-own-noise", S + "extraction/overlay.py", [
        ("        noise = np.minimum(m[\"sigma\"][kept], median(m[\"sigma\"][kept]))",
         "        noise = m[\"sigma\"][kept]"),
    ], [S + "extraction/tests/test_sky_circle.py"],
        "large letters bright only against the noise they lift about them"),
    Mutant("kml-longitude-is-the-ra", S + "io/kml.py", [
        ("    return ra_deg % 360.0 - 180.0", "    return (ra_deg + 180.0) % 360.0 - 180.0"),
    ], [S + "io/tests/test_kml.py"],
        "the overlay's box at the RA, not Google Earth's sky longitude RA - 180"),
    Mutant("kml-overlay-without-its-distortion", S + "io/kml.py", [
        ("        x, y = wcs.world_to_pixel_values(ra, dec)",
         "        x, y = wcs.wcs_world2pix(ra, dec, 0)"),
    ], [S + "io/tests/test_kml.py"],
        "the overlay resampled through the WCS without its SIP distortion"),
    Mutant("lifted-stars-decide-the-filter", S + "extraction/extract.py", [
        ("    enough = _AUTO_MIN_STARS + lifted", "    enough = _AUTO_MIN_STARS"),
    ], [S + "extraction/tests/test_hard_frames.py"],
        "stars lifted out of no sky spare the sky the matched filter's pass"),
    Mutant("clipped-floor-stars-spread", S + "extraction/background.py", [
        ("    return _held_stars(np.maximum(image, top), area, top, sigma, bad)",
         "    return _held_stars(image, area, top, sigma, bad)"),
    ], [S + "extraction/tests/test_background.py"],
        "a JPEG's spread floor band read as stars' light"),
    Mutant("held-stars-noise-crossing", S + "extraction/background.py", [
        ("    return crossing & (peak[1:] <= _HELD_ABOVE * noise)",
         "    return crossing & (peak[1:] < 0)"),
    ], [S + "extraction/tests/test_background.py"],
        "the noise crossing a black point just above the sky lifted as stars"),
    Mutant("field-cancel-file-kept", S + "cli/solve_field_run.py", [
        ('        if _blocked(path, {**out, "cancel": cancel.path}, args):',
         "        if _blocked(path, out, args):"),
    ], [S + "cli/tests/test_solve_field_cancel.py"],
        "skysolve-field -O leaves a cancelled run's cancel file, which stops every solve"),
    # -- hints and database files ------------------------------------------------------
    Mutant("hint-cone-ignored", S + "solver/lost_in_space.py", [
        ("cone is not None and not cone.holds(hyp.R, _HYPOTHESIS_SLACK_PX / hyp.f)):",
         "False):"),
        ("if cone is not None and not cone.holds(ref.hyp.R):",
         "if False:"),
    ], [S + "solver/tests/test_hints.py"],
        "a position hint's cone only picks the catalog stars: answers outside it pass"),
    Mutant("dbfile-trailing-bytes", S + "solver/dbfile.py", [
        ("    if size > expected:\n", "    if size > expected + (1 << 40):\n"),
    ], [S + "solver/tests/test_database.py"],
        "a database file with bytes after its data loads"),
    # -- aberration --------------------------------------------------------------------
    Mutant("aberration-sign", S + "sky/aberration.py", [
        ("return _boost(u, v / SPEED_OF_LIGHT_KM_S)", "return _boost(u, -v / SPEED_OF_LIGHT_KM_S)"),
    ], [T_ABERR], "aberration towards the anti-apex"),
    # -- batch -------------------------------------------------------------------------
    Mutant("batch-resume-errors", S + "batch/results.py", [
        ("return row if row is not None and row[\"status\"] in FINAL_STATUSES else None",
         "return row"),
    ], [T_BATCH], "a resumed run skips frames that failed with an error"),
    Mutant("batch-todo-index", S + "batch/solve_many.py", [
        ("        i = self.todo[k]\n        fr.source = self.sources[i]",
         "        i = k\n        fr.source = self.sources[i]"),
    ], [T_BATCH], "results of a resumed run stored at the wrong frame"),
]

#: Mutants that cannot change any observable result, with the reason.
EQUIVALENT: dict[str, str] = {}


#: Files at least this large are not copied into the scratch tree.
_MAX_COPY_BYTES = 50_000_000


def _scratch_copy() -> Path:
    """The repository's files (tracked, and untracked but not ignored) in a new directory."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    dest = Path(tempfile.mkdtemp(prefix="skysolve-mutate-"))
    for rel in filter(None, out.split("\0")):
        src = ROOT / rel
        # the tests need the package, its tests and data, not stray large files
        if src.is_file() and src.stat().st_size < _MAX_COPY_BYTES:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    # numba's on-disk cache (valid while the sources keep their time stamps): no recompiling
    for src in (ROOT / "src").rglob("__pycache__/*.nb[ic]"):
        (dest / src.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / src.relative_to(ROOT))
    return dest


def _anchors(m: Mutant, text: str) -> str | None:
    """Why the mutant cannot be applied to ``text`` (None when every snippet is there once)."""
    for old, _ in m.edits:
        n = text.count(old)
        if n != 1:
            return f"snippet found {n} times: {old.splitlines()[0][:70]!r}"
    return None


def _apply(m: Mutant, text: str) -> str:
    for old, new in m.edits:
        text = text.replace(old, new, 1)
    return text


def _run_tests(m: Mutant, tree: Path, db_cache: Path, timeout_s: float) -> tuple[str, str]:
    """``('killed' | 'survived', detail)`` of the mutant's tests in ``tree``."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m",
           "not slow", "--no-header", "-o", "addopts=", *m.tests]
    if m.keyword:
        cmd += ["-k", m.keyword]
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    env.pop("NUMBA_CACHE_DIR", None)
    scratch = None
    if m.fresh:  # empty caches: the kernels and the database are built from the mutant
        scratch = Path(tempfile.mkdtemp(prefix="skysolve-mutate-fresh-"))
        env["NUMBA_CACHE_DIR"] = str(scratch)
        env.pop(DB_CACHE_ENV_VAR, None)
    else:
        env[DB_CACHE_ENV_VAR] = str(db_cache)
    try:
        done = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "killed", f"hung past {timeout_s:.0f} s"
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode == 0:
        return "survived", lines[-1] if lines else ""
    if done.returncode == 1:  # tests failed
        failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        return "killed", (failed[0] if failed else lines[-1])[:110]
    return "killed", f"pytest exit {done.returncode}: {(lines or [''])[-1][:90]}"


def _one(m: Mutant, tree: Path, db_cache: Path, timeout_s: float) -> tuple[str, str]:
    """Apply ``m`` in ``tree``, run its tests, restore the file (and its time stamp, which
    the numba cache checks)."""
    if m.name in EQUIVALENT:
        return "equivalent", EQUIVALENT[m.name]
    target = tree / m.path
    if not target.exists():
        return "skipped", "file missing"
    original = target.read_text()
    why = _anchors(m, original)
    if why is not None:
        print(f"WARNING: {m.name}: {why}; re-anchor it", file=sys.stderr)
        return "skipped", why
    stamp = target.stat()
    target.write_text(_apply(m, original))
    try:
        return _run_tests(m, tree, db_cache, timeout_s)
    finally:
        target.write_text(original)
        os.utime(target, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def _warm_up(tree: Path, db_cache: Path) -> None:
    """Build the shared test database and compile the kernels once, unmutated."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), **{DB_CACHE_ENV_VAR: str(db_cache)})
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                    "addopts=", T_INDEP, "-k", "boresight_fov_parity"], cwd=tree, env=env,
                   check=True, capture_output=True)


def run(mutants: list[Mutant], timeout_s: float, report: Path | None, jobs: int) -> int:
    db_cache = Path(tempfile.mkdtemp(prefix="skysolve-mutate-db-"))
    trees = [_scratch_copy()]
    try:
        print(f"warming up in {trees[0]} ...", flush=True)
        _warm_up(trees[0], db_cache)
        for _ in range(jobs - 1):  # the copies keep the compiled kernels and time stamps
            trees.append(Path(tempfile.mkdtemp(prefix="skysolve-mutate-")))
            shutil.copytree(trees[0], trees[-1], dirs_exist_ok=True)
        free: queue.Queue[Path] = queue.Queue()
        for tree in trees:
            free.put(tree)

        def task(m: Mutant) -> tuple[str, str, float]:
            tree = free.get()
            t0 = time.perf_counter()
            try:
                return (*_one(m, tree, db_cache, timeout_s), time.perf_counter() - t0)
            finally:
                free.put(tree)

        results: dict[str, tuple[str, str, float]] = {}
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(task, m): m for m in mutants}
            for k, fut in enumerate(as_completed(futures), 1):
                m = futures[fut]
                results[m.name] = fut.result()
                status, detail, secs = results[m.name]
                print(f"[{k:2d}/{len(mutants)}] {status:10s} {m.name:32s} {secs:6.1f} s  "
                      f"{detail}", flush=True)
    finally:
        for tree in trees:
            shutil.rmtree(tree, ignore_errors=True)
        shutil.rmtree(db_cache, ignore_errors=True)
    rows = [(m, *results[m.name]) for m in mutants]
    text = _report(rows)
    print(text)
    if report is not None:
        report.write_text(text)
    return 0 if all(s in ("killed", "equivalent") for _, s, _, _ in rows) else 1


def _report(rows) -> str:
    counts = {s: sum(1 for _, st, _, _ in rows if st == s)
              for s in ("killed", "survived", "skipped", "equivalent")}
    ran = counts["killed"] + counts["survived"]
    rate = 100.0 * counts["killed"] / ran if ran else float("nan")
    lines = ["", "MUTATION REPORT", "=" * 100,
             f"{'mutant':32s} {'status':10s} {'time':>7s}  file: what"]
    for m, status, detail, secs in rows:
        lines.append(f"{m.name:32s} {status:10s} {secs:6.1f}s  {m.path.removeprefix(S)}: "
                     f"{m.what}")
        if status != "killed":
            lines.append(f"{'':43s}-> {detail}")
    lines += ["=" * 100,
              f"{len(rows)} mutants: {counts['killed']} killed, {counts['survived']} survived, "
              f"{counts['equivalent']} equivalent, {counts['skipped']} skipped; kill rate "
              f"{rate:.1f} % of the {ran} non-equivalent mutants run"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated mutant names")
    ap.add_argument("--list", action="store_true", help="list the mutants and their anchors")
    ap.add_argument("--timeout", type=float, default=900.0,
                    help="seconds before a mutant's tests count as hung (killed)")
    ap.add_argument("--report", type=Path, help="also write the report to this file")
    ap.add_argument("--jobs", type=int, default=2, help="mutants run at a time (default 2)")
    args = ap.parse_args(argv)
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names), "duplicate mutant names"
    mutants = MUTANTS
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            ap.error(f"unknown mutants: {', '.join(unknown)}")
        mutants = [m for m in MUTANTS if m.name in wanted]
    if args.list:
        for m in mutants:
            path = ROOT / m.path
            why = _anchors(m, path.read_text()) if path.exists() else "file missing"
            print(f"{m.name:32s} {'ok' if why is None else why:10s}  {m.path}: {m.what}")
        return 0
    return run(mutants, args.timeout, args.report, max(1, args.jobs))


if __name__ == "__main__":
    sys.exit(main())
