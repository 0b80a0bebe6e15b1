"""Verification of an attitude hypothesis: how likely are its matches to be luck?

The brightest centroids (up to :data:`VERIFY_CENTROIDS`) are matched one to
one with the brightest catalog stars projected into the image (twice as
many). If ``n`` of ``N`` centroids match, the *false-match probability* is the
chance that at least ``n - fixed`` of the ``N - fixed`` centroids not used to
build the hypothesis land within the match radius of a catalog star by
chance (a binomial tail). The per-centroid chance uses the catalog's local
density around each centroid (clusters such as the Pleiades would otherwise
count every cluster star as independent evidence), never less than the
uniform density. The lost-in-space search multiplies the probability by the
number of hypotheses tested so far before comparing it with
``match_threshold`` (the multiple-hypothesis correction).
"""

from __future__ import annotations

import math

from scipy.special import bdtrc

from .frame import CatalogView, Frame, Hypothesis

__all__ = ["VERIFY_CENTROIDS", "VERIFY_CATALOG_FACTOR", "false_match_probability",
           "crowding_outer", "verify"]

#: Centroids compared when verifying a hypothesis (the brightest).
VERIFY_CENTROIDS = 60
#: Catalog stars compared, per centroid.
VERIFY_CATALOG_FACTOR = 2


def false_match_probability(n_matches: int, n_image: int, p_match: float, fixed: int) -> float:
    """Chance that ``n_matches`` of ``n_image`` centroids land on catalog stars by luck.

    ``fixed`` matches (the pattern stars) are matched by construction; each other
    centroid lands on a catalog star with probability ``p_match``. The binomial
    tail with the mean per-centroid probability bounds the tail of unequal
    probabilities from above (Hoeffding 1956), so it is conservative.
    """
    trials = n_image - fixed
    k = n_matches - fixed
    if k <= 0 or trials <= 0:
        return 1.0
    # bdtrc(k-1, n, p) = P(X >= k)
    return float(bdtrc(k - 1, trials, min(1.0, p_match)))


def crowding_outer(frame: Frame, radius_px: float) -> float:
    """Outer radius (px) of the annulus in which the local star density is counted."""
    return max(5.0 * radius_px, 0.1 * frame.width)


def verify(frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float, n_fixed: int,
           field=None) -> tuple[int, float]:
    """Matches of the brightest centroids and their false-match probability.

    ``field`` is an optional prefetched ``(rows, vectors)`` cone from
    :meth:`CatalogView.field` holding at least the stars needed here.
    """
    n_img = min(len(frame.ideal), VERIFY_CENTROIDS)
    count = VERIFY_CATALOG_FACTOR * n_img
    if field is None:
        field = cat.field(frame, hyp, count)
    cx, cy = frame.centre
    n_cat, n, crowd = frame.backend.verify_counts(
        frame.ideal, n_img, field[1], hyp.R, hyp.f, hyp.parity, frame.proj, cx, cy,
        0.5 * frame.width, 0.5 * frame.height, count, radius_px, crowding_outer(frame, radius_px))
    if n_cat == 0:
        return 0, 1.0
    uniform = n_cat * math.pi * radius_px ** 2 / max(frame.width * frame.height, 1.0)
    return n, false_match_probability(n, n_img, max(crowd, uniform), n_fixed)
