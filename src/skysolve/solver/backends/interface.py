"""The functions every solver backend implements, with their contracts and examples.

The solver calls its backend through exactly these functions; the reference
backend (numpy) and the compiled backend (numba) implement each with the
same signature and must give the same results (the agreement tests compare
them). Each entry of :data:`FUNCTIONS` names a function, says what it does,
and builds an *example call* from a database: the compiled backend is warmed
up by running every example before a solve starts its clock, so the warm-up
is derived from this list and cannot fall behind it.

Conventions: *ideal* pixel offsets are undistorted positions relative to the
optical centre (px, +y down); a hypothesis is a rotation ``R`` (ICRS to
camera), a focal length ``f`` (px) and a parity (True: mirrored image);
``proj`` is the lens projection's integer code
(:data:`skysolve.camera.projection.PROJECTIONS`, 0 = pinhole).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Function", "FUNCTIONS", "names", "examples"]


@dataclass(frozen=True)
class Function:
    """One function of the backend interface."""

    name: str
    contract: str
    #: Example calls: argument tuples built from an example context (every branch a
    #: compiled implementation may take, so that warming up compiles all of them).
    examples: Callable[[Any], list[tuple]]


class _Example:
    """Small, valid arguments of the types the solver passes, from one database."""

    def __init__(self, db: Any):
        self.db = db
        self.ideal = np.column_stack([np.arange(8) * 40.0 - 150.0,
                                      np.arange(8) * -25.0 + 90.0])
        self.v = np.ascontiguousarray(self.ideal_vectors(self.ideal[:6]))
        self.eye = np.eye(3)

    @staticmethod
    def ideal_vectors(p: np.ndarray, f: float = 1000.0) -> np.ndarray:
        v = np.column_stack([p[:, 0] / f, p[:, 1] / f, np.ones(len(p))])
        return v / np.linalg.norm(v, axis=1)[:, None]

    def pattern_candidates(self, hint: np.ndarray) -> tuple:
        starts, shift = self.db.key_directory
        return (self.v, np.array([[0, 1, 2, 3]], dtype=np.intp), 0, np.array([1]), 1500,
                self.db.pattern_bins, 0.01, self.db.pattern_keys, starts, shift,
                self.db.pattern_stars, self.db.star_xyz, hint, 0.5, 1000.0, 100.0, 1e5)

    def pattern_attitudes(self) -> tuple:
        quad = self.ideal[np.array([[0, 1, 2, 3]])]
        return quad, self.ideal_vectors(self.ideal[:4])[None], np.full(1, 1000.0), \
            np.array([False, True]), 0


FUNCTIONS: tuple[Function, ...] = (
    Function("extent",
             "extent(xy) -> (largest |x|, largest |y|) of (n >= 1, 2) positions, NaN when "
             "that column holds a NaN",
             lambda ex: [(ex.ideal,)]),
    Function("thin_pixels",
             "thin_pixels(ideal, sep_px, limit) -> rows: the first `limit` centroids with no "
             "brighter (earlier) centroid within `sep_px`",
             lambda ex: [(ex.ideal, 1.0, 6)]),
    Function("unit_vectors",
             "unit_vectors(ideal, f, parity, proj) -> (n, 3) camera unit vectors (NaN rows "
             "outside the projection's image)",
             lambda ex: [(ex.ideal[:6], 1000.0, False, 0)]),
    Function("ratio_sensitivity",
             "ratio_sensitivity(ideal, proj, focal_lengths, probe, step, percentile) -> (g,) "
             "the percentile over the patterns `probe` of their largest edge-ratio change per "
             "unit ln f at each focal length (NaN where none is imaged)",
             lambda ex: [(ex.ideal, 0, np.array([800.0, 1000.0]),
                          np.array([[0, 1, 2, 3], [1, 2, 3, 4]], dtype=np.intp), 1e-4, 50.0),
                         (ex.ideal, 3, np.array([200.0]),
                          np.array([[0, 1, 2, 3]], dtype=np.intp), 1e-4, 50.0)]),
    Function("brightest_in_cone",
             "brightest_in_cone(index, centre, radius_rad, count) -> (rows, vectors): the "
             "`count` brightest stars of a SkyIndex within the cone, brightest first",
             # a wide cone is scanned whatever the database's cell size, a huge count
             # visits cells
             lambda ex: [(ex.db.sky_index, np.array([0.0, 0.0, 1.0]), 1.0, 2),  # a scan
                         (ex.db.sky_index, np.array([0.0, 0.0, 1.0]), 0.1, 10 ** 6)]),  # cells
    Function("pattern_candidates",
             "pattern_candidates(v_guess, combos, start, ends, max_patterns, bins, tol, "
             "keys_sorted, directory, shift, pattern_stars, star_xyz, hint, min_cos, "
             "f_guess, f_lo, f_hi) -> (img_quads, cat_quads, f_est, cat_largest, done): "
             "catalog patterns whose keys, exact edge ratios and implied focal length (in "
             "[f_lo, f_hi]) match image patterns, batch by batch from `start` until a batch "
             "has candidates; with a non-empty `hint` (a position hint's unit vector) only "
             "patterns whose stars all lie within acos(min_cos) of it",
             lambda ex: [ex.pattern_candidates(np.zeros(0)),  # no position hint
                         ex.pattern_candidates(np.array([0.0, 0.0, 1.0]))]),
    Function("pattern_attitudes",
             "pattern_attitudes(ideal4, cat4, f_est, parities, proj) -> (R, residual, parity): "
             "Wahba attitude of each candidate pair for the better allowed parity",
             lambda ex: [ex.pattern_attitudes()]),
    Function("pattern_attitude",
             "pattern_attitude(ideal4, cat4, c, f, parities, proj) -> (R, residual, parity): "
             "pattern_attitudes of the one candidate row `c` at focal length `f`",
             lambda ex: [(*ex.pattern_attitudes()[:2], 0, 1000.0,
                          *ex.pattern_attitudes()[3:])]),
    Function("in_image",
             "in_image(vectors, R, f, parity, proj, cx, cy, half_w, half_h, count) -> (rows, "
             "ideal px): the first `count` vectors projecting inside the image",
             lambda ex: [(ex.v, ex.eye, 1000.0, False, 0, 0.0, 0.0, 512.0, 384.0, 10)]),
    Function("mutual_matches",
             "mutual_matches(img, cat, radius) -> (image rows, catalog rows, distances): "
             "one-to-one pairs within `radius` px",
             lambda ex: [(ex.ideal[:6], ex.ideal[:6] + 1.0, 5.0)]),
    Function("crowding",
             "crowding(img, cat, radius, outer) -> mean chance per centroid of meeting a "
             "catalog star, from the star density in the annulus (radius, outer]",
             lambda ex: [(ex.ideal[:6], ex.ideal[:6] + 1.0, 5.0, 50.0)]),
    Function("verify_counts",
             "verify_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, half_h, "
             "count, radius, outer) -> (catalog stars in the image, centroid rows and distances "
             "of the one-to-one matches within `radius` in increasing catalog row, crowding "
             "chance)",
             lambda ex: [(ex.ideal, 6, ex.v, ex.eye, 1000.0, False, 0, 0.0, 0.0, 512.0, 384.0,
                         10, 5.0, 50.0)]),
    Function("fine_counts",
             "fine_counts(ideal, n_img, anchors, rows, dist, radii, slack) -> (matches, "
             "centroids): per radius rho, the first `n_img` centroids at least rho / slack "
             "from every anchor, and how many of them are matches `rows` within rho",
             lambda ex: [(ex.ideal, 6, ex.ideal[:4] + 0.5, np.arange(3), np.array([0.5, 2.0, 9.0]),
                          np.array([5.0, 5.0 / 3.0]), 0.05)]),
    Function("verify_tail_counts",
             "verify_tail_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, "
             "half_h, count, radius, outer, anchors, radii, slack) -> (catalog stars in the "
             "image, matches, crowding chance, fine_counts' matches and centroids, empty when "
             "no star is imaged or `radii` is empty): verify_counts then fine_counts, in one "
             "call",
             lambda ex: [(ex.ideal, 6, ex.v, ex.eye, 1000.0, False, 0, 0.0, 0.0, 512.0, 384.0,
                          10, 5.0, 50.0, anchors, radii, 0.05)
                         for anchors, radii in ((ex.ideal[:4] + 0.5, np.array([5.0, 5.0 / 3.0])),
                                                (np.zeros((0, 2)), np.zeros(0)))]),
    Function("fit_pairs",
             "fit_pairs(ideal, v_cat, use, f, parity, proj, fixed_camera) -> (R, f, residuals, "
             "ok): attitude (and focal length unless fixed) from the pairs `use`",
             lambda ex: [(ex.ideal[:6], ex.v, np.arange(6), 1000.0, False, 0, False)]),
    Function("converged_fit",
             "converged_fit(ideal, v_cat, use, R, f, f_from, err, parity, proj) -> (R, f, "
             "residuals): the pairs' least-squares attitude and focal length from their "
             "fit_pairs fit (R, f, err) from f_from: that fit when its step is within "
             "FIT_CLOSE, else the alternation's fixed point when it fits no worse",
             lambda ex: [(ex.ideal[:6], ex.v, np.arange(6), ex.eye, f, 1000.0,
                          np.zeros(6), parity, 0)
                         for f, parity in ((1000.0, False), (1010.0, True))]),
    Function("trimmed_fit",
             "trimmed_fit(ideal, v_cat, f, parity, proj, fixed_camera, h, steps) -> (R0, f0, "
             "err0, R, f, err, core, ok): least-trimmed-squares concentration steps",
             lambda ex: [(ex.ideal[:6], ex.v, 1000.0, False, 0, False, 5, 2)]),
    Function("refine",
             "refine(ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy, half_w, "
             "half_h, radius, iterations, sigma_clip) -> (ok, R, f, image rows, cone rows, "
             "residuals): re-match and refit robustly",
             lambda ex: [(ex.ideal, ex.v, ex.eye, 1000.0, False, 0, False, 0.0, 0.0, 512.0,
                         384.0, 5.0, 1, 3.0)]),
    Function("attitude_covariance",
             "attitude_covariance(ideal, f, parity, proj, sigma) -> (3, 3) covariance, rad^2",
             lambda ex: [(ex.ideal[:6], 1000.0, False, 0, 1e-5)]),
    Function("solution_arrays",
             "solution_arrays(ideal, xy, img_idx, cat_idx, err, star_ra_deg, star_dec_deg, f, "
             "parity, proj, sigma) -> (centroid rows, star rows, xy, (ra, dec) deg, residuals "
             "arcsec, 90th percentile arcsec, largest arcsec, attitude covariance): a result's "
             "matches in increasing centroid row",
             lambda ex: [(ex.ideal, ex.ideal + 0.25, np.array([5, 0, 3, 1], dtype=np.intp),
                          np.array([2, 0, 1, 3], dtype=np.intp), np.array([1e-5, 3e-6, 2e-5, 5e-6]),
                          ex.db.star_ra_deg, ex.db.star_dec_deg, 1000.0, False, 0, 1e-5)]),
    Function("offset_pairs",
             "offset_pairs(img, p, search_px, cell, cells, cos_roll, sin_roll) -> (centroid "
             "rows, star rows): tracking's candidate pairs within `search_px` whose offsets "
             "(the stars `p` turned by each roll) fall in the densest block of 2x2 cells, "
             "one per centroid and per star",
             # the block's pairs: each once, and a star claimed twice
             lambda ex: [(ex.ideal, ex.ideal[:6] + 1.0, 50.0, 10.0, 12, np.ones(1), np.zeros(1)),
                         (ex.ideal, np.vstack([ex.ideal[:6], ex.ideal[:1] + 2.0]), 50.0, 10.0,
                          12, np.cos([0.0, 0.01]), np.sin([0.0, 0.01]))]),
    Function("fit_shares",
             "fit_shares(v, u, normal, f) -> (n,) each match's share (px) of a rotation "
             "fit's residuals, its centroid's vector `v` against its star's `u` as the fit "
             "puts it; `normal`: (n - 1) I - sum(u u^T)",
             lambda ex: [(ex.v, ex.v[::-1].copy(), 5.0 * np.eye(3) - ex.v.T @ ex.v, 1000.0)]),
)


def names() -> tuple[str, ...]:
    """The names of the interface's functions."""
    return tuple(f.name for f in FUNCTIONS)


def examples(db: Any) -> dict[str, list[tuple]]:
    """Example argument tuples for every function, built from ``db``."""
    ex = _Example(db)
    return {f.name: f.examples(ex) for f in FUNCTIONS}
