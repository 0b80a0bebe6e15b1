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

**Finer radii.** A right hypothesis from four pattern stars predicts the other
stars to about a pixel, far inside the match radius, while a chance match is
as likely anywhere in the disc: its probability scales with the disc's area.
So the tail is also taken at a third and a ninth of the radius, with the
per-centroid chance scaled by the area (1/9, 1/81), and the smallest of the
three probabilities, times three (Bonferroni: the test looked three times),
is the result. A handful of stars that land within a pixel (fields with 6-10
stars), or a few dozen among many false detections, then verify where the
coarse count could not.

A hypothesis fitted to four stars is right near them even when its roll or
scale is off by a few percent (most of all for four close stars, a cluster
such as the Pleiades), so their neighbours land close without being
evidence. At radius ``rho`` a centroid therefore counts (as a trial, and as a
match) only at least ``rho / FINE_SLACK`` from every pattern star, where such
an error would have moved it further than ``rho``; the pattern stars
themselves never count there. Hypotheses without pattern stars (tracking,
which fits its matched stars) get the full radius only.

:data:`FINE_SLACK` is measured, not derived: on 40 simulated 10-20 deg fields
of only their 6 brightest stars, 0.01 solves 19, 0.05 38 and 0.1 39; 0.1
also lets one of the eleven known near misses of the soak run (the
``SOAK_SEED_2_WRONG`` frames of the robustness tests) through, 0.05 none.

**From the catalog's side.** A deep search (``SolveOptions.deep_search``: a list
of mostly false detections) also verifies the other way round
(:func:`catalog_side_probability`): the trials are the brightest catalog stars in
the image, a match is a centroid close to one, wherever the extractor ranked it.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .frame import CatalogView, Frame, Hypothesis

__all__ = ["CATALOG_SIDE_COUNTS", "CATALOG_SIDE_SHARE", "VERIFY_CENTROIDS", "VERIFY_CENTROIDS_DEEP",
           "VERIFY_CATALOG_FACTOR", "FINE_RADII", "FINE_SLACK", "binomial_tail",
           "log_binomial_tail", "catalog_side_probability", "false_match_probability",
           "crowding_outer", "verify"]

#: Centroids compared when verifying a hypothesis (the brightest) ...
VERIFY_CENTROIDS = 60
#: ... and, on frames with more, a second, deeper comparison.
VERIFY_CENTROIDS_DEEP = 120
#: Catalog stars compared, per centroid.
VERIFY_CATALOG_FACTOR = 2
#: Match radii (fractions of the match radius) the false-match probability is taken at.
FINE_RADII = (1.0, 1.0 / 3.0, 1.0 / 9.0)
_FINE = np.array(FINE_RADII)
#: The relative error (roll, scale) a hypothesis from four stars is allowed to carry
#: in the fine-radius test: a centroid counts at radius rho only rho / FINE_SLACK
#: from every pattern star (see the module docstring).
FINE_SLACK = 0.05


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
    return binomial_tail(k, trials, min(1.0, float(p_match)))


#: Terms of a binomial sum smaller than this fraction of the sum so far end it.
_TAIL_EPS = 1e-18


def binomial_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``, ``0 < k``, to ~1e-12 relative.

    Summed term by term from the mode's far side, so that every term added is smaller
    than the last: upwards from ``k`` when ``k`` lies above the mean (the usual case
    here, a tail of 1e-5 or less; a handful of terms), else one minus the lower tail
    summed downwards from ``k - 1``. The first term comes from logarithms, so that
    neither ``p ** k`` nor the binomial coefficient over- or underflows on its own.
    Written out rather than taken from ``scipy.special.bdtrc`` (which it matches to
    5e-13 relative on 200,000 random cases) because importing ``scipy.special`` would
    cost a one-shot solve ~0.2 s, more than the whole solve.
    """
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    q = 1.0 - p
    upper = k > n * p
    j = k if upper else k - 1  # the first term: the tail's largest
    term = math.exp(_log_term(j, n, p))
    if upper:
        return min(1.0, _upward_sum(j, n, p / q, term))
    total = term
    odds = q / p
    while j > 0 and term > _TAIL_EPS * total:
        term *= j / (n - j + 1) * odds
        total += term
        j -= 1
    return min(1.0, max(0.0, 1.0 - total))


def log_binomial_tail(k: int, n: int, p: float) -> float:
    """The natural logarithm of :func:`binomial_tail`, also where the tail underflows a
    float (below ~1e-308: the matches of a few thousand centroids on their stars): -inf
    for a tail of exactly 0."""
    tail = binomial_tail(k, n, p)
    if tail > 1e-300 or k > n or p <= 0.0:
        return math.log(tail) if tail > 0.0 else -math.inf
    # k lies far above the mean here: the tail summed upwards as there, relative to its
    # first term
    return _log_term(k, n, p) + math.log(_upward_sum(k, n, p / (1.0 - p), 1.0))


def _log_term(j: int, n: int, p: float) -> float:
    """``ln P(X = j)`` for ``X ~ Binomial(n, p)``, ``0 < p < 1``."""
    return (math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
            + j * math.log(p) + (n - j) * math.log1p(-p))


def _upward_sum(j: int, n: int, odds: float, term: float) -> float:
    """``term`` (the binomial term at ``j``, or a multiple of it) and the terms above it,
    each ``(n - j) / (j + 1) * odds`` times the last, until they no longer count."""
    total = term
    while j < n and term > _TAIL_EPS * total:
        term *= (n - j) / (j + 1) * odds
        total += term
        j += 1
    return total


def crowding_outer(frame: Frame, radius_px: float) -> float:
    """Outer radius (px) of the annulus in which the local star density is counted."""
    return max(5.0 * radius_px, 0.1 * frame.width)


@lru_cache(maxsize=16)
def _fine_radii(radius_px: float) -> np.ndarray:
    """The finer radii (px) of :data:`FINE_RADII` for match radius ``radius_px`` (the same
    every solve of a camera: made once; treat as read-only)."""
    return _FINE[1:] * radius_px


#: A hypothesis without pattern stars: no finer-radius counts (treat as read-only).
_NO_ANCHORS, _NO_RADII = np.zeros((0, 2)), np.zeros(0)


def _tail(frame: Frame, hyp: Hypothesis, radius_px: float, n_fixed: int, field,
          n_img: int) -> tuple[int, float]:
    """Matches of the brightest ``n_img`` centroids and the (smallest) tail probability."""
    count = VERIFY_CATALOG_FACTOR * n_img
    cx, cy = frame.centre
    # the catalog stars of the rectangle holding the image's ideal offsets: a barrel
    # lens's edge stars lie beyond the image's own (with the camera of a lens whose
    # corners move in by 10 %, 8-13 of the 60 brightest centroids had no catalog star
    # to match); the density is taken over that rectangle, which the bulges beside the
    # undistorted edges make a little larger than the image: a little more chance
    half_w, half_h = frame.ideal_half_size()
    # (the finer radii's counts in the same backend call: a second one, and the match
    # rows and distances handed back to Python for it, cost more than the counting)
    fine = hyp.anchors is not None
    n_cat, n, crowd, k, n_far = frame.backend.verify_tail_counts(
        frame.ideal, n_img, field[1], hyp.R, hyp.f, hyp.parity, frame.proj, cx, cy,
        half_w, half_h, count, radius_px, crowding_outer(frame, radius_px),
        hyp.anchors if fine else _NO_ANCHORS, _fine_radii(radius_px) if fine else _NO_RADII,
        FINE_SLACK)
    if n_cat == 0:
        return 0, 1.0
    uniform = n_cat * math.pi * radius_px ** 2 / max(4.0 * half_w * half_h, 1.0)
    chance = max(crowd, uniform)
    prob = false_match_probability(n, n_img, chance, n_fixed)
    if not fine:
        return n, prob
    for s, k_s, n_s in zip(FINE_RADII[1:], k.tolist(), n_far.tolist(), strict=True):
        prob = min(prob, false_match_probability(k_s, n_s, chance * s * s, 0))
    return n, min(1.0, len(FINE_RADII) * prob)


def verify(frame: Frame, cat: CatalogView, hyp: Hypothesis, radius_px: float, n_fixed: int,
           field=None, catalog_side: bool = False) -> tuple[int, float]:
    """Matches of the brightest centroids and their false-match probability.

    ``field`` is an optional prefetched ``(rows, vectors)`` cone from
    :meth:`CatalogView.field` holding at least the stars needed here. A
    hypothesis with pattern stars (``anchors``) is also tested at the finer
    radii (:data:`FINE_RADII`, see the module docstring). Frames with more than
    :data:`VERIFY_CENTROIDS` centroids are also tested on up to
    :data:`VERIFY_CENTROIDS_DEEP` of them, against twice as many catalog stars
    (the stars may hide behind bright false detections), and the smaller
    probability, doubled, counts. With ``catalog_side`` (a hypothesis with pattern
    stars), the test from the catalog's side is taken too
    (:func:`catalog_side_probability`) and the smaller of the two probabilities, each
    divided by its share of the allowance (:data:`CATALOG_SIDE_SHARE`), counts.
    """
    n_all = len(frame.ideal)
    deep = min(n_all, VERIFY_CENTROIDS_DEEP) if n_all > VERIFY_CENTROIDS else 0
    if field is None:
        field = cat.field(frame, hyp, VERIFY_CATALOG_FACTOR * max(deep, VERIFY_CENTROIDS))
    n, prob = _tail(frame, hyp, radius_px, n_fixed, field, min(n_all, VERIFY_CENTROIDS))
    if deep:
        n2, prob2 = _tail(frame, hyp, radius_px, n_fixed, field, deep)
        n, prob = max(n, n2), min(1.0, 2.0 * min(prob, prob2))
    if catalog_side and hyp.anchors is not None:
        # a weighted Bonferroni bound: the catalog-side test gets CATALOG_SIDE_SHARE of
        # the false-match allowance, the centroid side's the rest
        other = catalog_side_probability(frame, cat, hyp, radius_px, field)
        prob = min(1.0, prob / (1.0 - CATALOG_SIDE_SHARE), other / CATALOG_SIDE_SHARE)
    return n, prob


#: The catalog-side test (:func:`catalog_side_probability`) compares the brightest this
#: many catalog stars inside the image, each count in turn.
CATALOG_SIDE_COUNTS = (8, 16, 32)
#: ... and its share of the false-match allowance when it is taken beside the centroid
#: side's (a weighted Bonferroni bound: the answer's probability is the smaller of the
#: centroid side's divided by 0.95 and the catalog side's divided by 0.05). Where it is
#: what verifies, its evidence is overwhelming (real ALT40 under the benchmark's
#: ``branches`` at ``strong``, seed 2, its stars ranked below 120 lit twigs: 8e-33 where
#: the centroid side gave 3e-4) or absent, while the centroid side's answers sit near
#: the threshold on the lists a deep search is for: a share of 0.2 lifted the real frame
#: under the strong mixture whose centroid side gave 5.7e-7 on its 14th hypothesis just
#: over ``match_threshold=1e-5`` (1.006e-5), an equal split further.
CATALOG_SIDE_SHARE = 0.05


def catalog_side_probability(frame: Frame, cat: CatalogView, hyp: Hypothesis,
                             radius_px: float, field=None) -> float:
    """False-match probability of a hypothesis fitted to a pattern's stars, from the
    catalog's side: the chance that as many of the brightest catalog stars in the image
    have a centroid close by, by luck.

    :func:`verify` asks how many of the brightest centroids land on a catalog star. When
    most centroids are false detections (hot pixels, cosmic rays, lit twigs), or the
    extractor ranks the stars low, the few stars among the brightest centroids are
    outnumbered and that tail stays large for the right attitude too. Turned round, the
    trials are the brightest catalog stars in the image (each count of
    :data:`CATALOG_SIDE_COUNTS`), which the right attitude finds detected wherever the
    centroids rank them, and the chance of each is that of a centroid within the radius:
    the centroids' density around the star (where false detections crowd, as on a lit
    branch, it is higher), never less than their uniform density, times the disc's area.
    A centroid counts for one catalog star only (the brightest it is closest to). As in
    :func:`verify` the tail is taken at every radius of :data:`FINE_RADII`, a catalog star
    counting at radius ``rho`` only ``rho / FINE_SLACK`` from every pattern star (at the
    full radius: outside the pattern stars' own discs), and the smallest tail, times the
    number of tails taken, is the result.

    Parameters
    ----------
    frame, cat : Frame, CatalogView
        The centroids and the catalog of the solve.
    hyp : Hypothesis
        The attitude; its ``anchors`` (the pattern stars, ideal px) are required.
    radius_px : float
        The match radius, px.
    field : tuple, optional
        A prefetched ``(rows, vectors)`` cone of the brightest stars covering the image.

    Returns
    -------
    float
        The false-match probability (1 when there is nothing to compare).
    """
    anchors = hyp.anchors
    m = max(CATALOG_SIDE_COUNTS)
    if field is None:
        field = cat.field(frame, hyp, m)
    _, px = frame.in_image(field[1], hyp, m)
    ideal = frame.ideal
    if len(px) == 0 or len(ideal) == 0 or anchors is None:
        return 1.0
    half_w, half_h = frame.ideal_half_size()
    uniform = len(ideal) / max(4.0 * half_w * half_h, 1.0)
    d2 = ((px[:, None, :] - ideal[None, :, :]) ** 2).sum(axis=2)
    closest = d2.argmin(axis=1)
    nearest = np.sqrt(d2[np.arange(len(px)), closest])
    # one centroid is evidence for one star: a fainter star sharing it gets no match
    _, first = np.unique(closest, return_index=True)
    owner = np.zeros(len(px), dtype=bool)
    owner[first] = True
    outer = crowding_outer(frame, radius_px)
    density = np.maximum((d2 <= outer * outer).sum(axis=1) / (math.pi * outer * outer),
                         uniform)
    to_anchor = np.sqrt(((px[:, None, :] - anchors[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    best = 1.0
    for t, scale in enumerate(FINE_RADII):
        rho = scale * radius_px
        keep = to_anchor >= (radius_px if t == 0 else rho / FINE_SLACK)
        hit = owner & (nearest <= rho)
        for c in CATALOG_SIDE_COUNTS:
            trials = keep[:c]
            n = int(trials.sum())
            k = int((hit[:c] & trials).sum())
            if n == 0 or k == 0:
                continue
            chance = float(density[:c][trials].mean()) * math.pi * rho * rho
            best = min(best, binomial_tail(k, n, min(1.0, chance)))
    return min(1.0, len(FINE_RADII) * len(CATALOG_SIDE_COUNTS) * best)
