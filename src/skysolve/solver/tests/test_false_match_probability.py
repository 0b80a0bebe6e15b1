"""The false-match probability and its multiple-hypothesis correction, tested directly.

The lost-in-space search verifies hypotheses one after another; a hypothesis
whose false-match probability ``p`` would pass ``match_threshold`` alone is only
accepted when ``p`` times the number of hypotheses verified so far does (every
verification was a chance to be fooled). A spy on the search's ``verify`` counts
the verifications independently of the search's own counter. Frames where the
right hypothesis comes after many wrong ones (half the centroids false) are then
solved with ``match_threshold`` just above and just below the corrected
probability: above, the same answer; below, never that hypothesis, although its
uncorrected probability is 20 times under the threshold.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from skysolve.camera.model import CameraModel
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.solver import lost_in_space
from skysolve.solver.verification import (
    binomial_tail,
    false_match_probability,
    log_binomial_tail,
)

W, H = 1024, 768
# attitudes from random_attitudes(40, rng 5) whose right hypothesis comes late (measured:
# after 19, 22 and 18 verified hypotheses); the first with at least MIN_HYPOTHESES is used
LATE_FRAMES = (9, 33, 32)
MIN_HYPOTHESES = 3


def test_probability_is_the_binomial_tail():
    """Against the tail summed term by term (no scipy): P[K >= n - fixed], K ~ B(N - fixed, p)."""
    for n, N, p, fixed in [(10, 20, 0.01, 4), (5, 60, 0.002, 4), (4, 4, 0.3, 4), (7, 30, 0.05, 0),
                           (30, 60, 0.001, 4)]:
        trials, need = N - fixed, n - fixed
        expected = sum(math.comb(trials, k) * p ** k * (1 - p) ** (trials - k)
                       for k in range(max(need, 0), trials + 1))
        assert false_match_probability(n, N, p, fixed) == pytest.approx(expected, rel=1e-9,
                                                                          abs=1e-300)
    # more matches can only be less likely by chance
    probs = [false_match_probability(n, 40, 0.01, 4) for n in range(4, 20)]
    assert all(np.diff(probs) < 0)


def test_binomial_tail_as_scipy():
    """The tail written out in numpy (a one-shot solve imports no scipy) against
    ``scipy.special.bdtrc`` over the whole range the solver uses and beyond: both
    sides of the mean, tails down to 1e-290, the edges of k, n and p."""
    from scipy.special import bdtrc

    rng = np.random.default_rng(7)
    for _ in range(20_000):
        n = int(rng.integers(1, 400))
        k = int(rng.integers(1, n + 1))
        p = float(10 ** rng.uniform(-8, -0.001))
        expected = float(bdtrc(k - 1, n, p))
        got = binomial_tail(k, n, p)
        if expected > 1e-290:
            assert got == pytest.approx(expected, rel=1e-11), (k, n, p)
        else:
            assert got < 1e-280, (k, n, p)
    assert binomial_tail(5, 4, 0.5) == 0.0
    assert binomial_tail(1, 10, 0.0) == 0.0 and binomial_tail(10, 10, 1.0) == 1.0
    assert binomial_tail(1, 10, 0.1) == pytest.approx(1.0 - 0.9 ** 10, rel=1e-14)
    assert binomial_tail(10, 10, 0.1) == pytest.approx(1e-10, rel=1e-12)


def _exact_log_tail(k: int, n: int, p: Fraction) -> float:
    """ln P(X >= k), X ~ Binomial(n, p), in exact rational arithmetic."""
    tail = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))
    return math.log(tail.numerator) - math.log(tail.denominator)


def test_log_binomial_tail_where_the_tail_underflows_a_float():
    """The logarithm of the tail, against exact rational sums: where the tail is a float
    (the same as ``log(binomial_tail)``), and far below the smallest (the matches of a
    right answer among a thousand centroids: 10^-500 and less), where ``binomial_tail``
    says 0 and the refinement compared two answers as equally likely."""
    for k, n, p in [(5, 100, Fraction(1, 100)), (50, 100, Fraction(1, 10)),
                    (300, 1000, Fraction(1, 20)), (700, 1459, Fraction(1, 25)),
                    (1300, 1459, Fraction(1, 5)), (60, 60, Fraction(1, 3))]:
        want = _exact_log_tail(k, n, p)
        got = log_binomial_tail(k, n, float(p))
        assert got == pytest.approx(want, rel=1e-10), (k, n, p)
        tail = binomial_tail(k, n, float(p))
        if tail > 1e-300:
            assert got == pytest.approx(math.log(tail), rel=1e-12)
        else:
            assert want < -690.0  # (exp of it underflows)
    assert log_binomial_tail(5, 4, 0.5) == -math.inf
    assert log_binomial_tail(3, 10, 0.0) == -math.inf
    assert log_binomial_tail(3, 10, 1.0) == 0.0


@pytest.fixture
def verifications(monkeypatch):
    """Raw (uncorrected) probabilities of every hypothesis the search verifies, in order."""
    seen: list[float] = []
    real = lost_in_space.verify

    def spy(*args, **kwargs):
        n, p = real(*args, **kwargs)
        seen.append(float(p))
        return n, p

    monkeypatch.setattr(lost_in_space, "verify", spy)
    return seen


def _solve(db, centroids, threshold):
    return db.solve_from_centroids(centroids, fov_estimate_deg=15.0, image_width=W,
                                   image_height=H, match_threshold=threshold)


@pytest.fixture(scope="module")
def late_frames(hip_catalog):
    cam = CameraModel.from_fov(15.0, W, H)
    atts = random_attitudes(40, np.random.default_rng(5))
    return [(atts[k], simulate_centroids(hip_catalog, cam, atts[k], epoch_year=2025.0, seed=k,
                                         centroid_noise_px=0.3, max_magnitude=7.0,
                                         num_stars=20, false_fraction=0.5))
            for k in LATE_FRAMES]


def _late_frame(small_db, late_frames, verifications):
    for R, sim in late_frames:
        verifications.clear()
        res = _solve(small_db, sim.centroids, 1e-5)
        if res and len(verifications) >= MIN_HYPOTHESES:
            return R, sim, res
    pytest.fail("no frame whose right hypothesis comes late: rebuild LATE_FRAMES")


def _boresight_error_deg(res, R) -> float:
    return math.degrees(math.acos(min(1.0, float(res.rotation_matrix_icrs_to_camera[2] @ R[2]))))


def test_reported_probability_carries_the_correction(small_db, late_frames, verifications):
    R, _, res = _late_frame(small_db, late_frames, verifications)
    assert _boresight_error_deg(res, R) < 0.01
    count, raw = len(verifications), verifications[-1]
    assert res.probability == pytest.approx(raw * count, rel=1e-12)
    # every hypothesis before it failed the corrected test (or its refinement)
    assert raw * count < 1e-5


def test_threshold_just_above_and_just_below(small_db, late_frames, verifications):
    R, sim, res = _late_frame(small_db, late_frames, verifications)
    corrected, raw = res.probability, verifications[-1]
    assert raw < corrected / MIN_HYPOTHESES  # the correction matters on this frame
    # just above: the same answer
    verifications.clear()
    above = _solve(small_db, sim.centroids, corrected * 1.02)
    assert above and _boresight_error_deg(above, R) < 0.01
    assert above.probability == pytest.approx(corrected, rel=1e-12)
    # just below: that hypothesis (raw probability far under the threshold) is refused; a
    # later one is accepted only if its own corrected probability passes
    verifications.clear()
    below = _solve(small_db, sim.centroids, corrected * 0.98)
    if below:
        assert verifications[-1] * len(verifications) < corrected * 0.98
        assert below.probability < corrected * 0.98
        assert len(verifications) > round(corrected / raw)


def test_the_correction_counts_every_search_of_a_solve(small_db, hip2025, verifications,
                                                       monkeypatch):
    """A 60 deg pinhole field (30 % of its centroids false) told no scale: the search of
    the 10-20 deg database's range (to 33 deg) verifies hypotheses of the false ones and
    finds nothing; the blind search of wider fields (``BLIND_WIDEST_FOV_DEG``) finds the
    field. Its probability is corrected by every hypothesis the solve verified: it was
    counted from the blind search's first alone, as though the search before it had
    verified none."""
    import sys

    import skysolve.solver.solve  # noqa: F401  (the module, not the function of that name)

    solve_module = sys.modules["skysolve.solver.solve"]
    per_search: list[int] = []
    real_search = solve_module.search

    def search(*args, **kwargs):
        before = len(verifications)
        out = real_search(*args, **kwargs)
        per_search.append(len(verifications) - before)
        return out

    monkeypatch.setattr(solve_module, "search", search)
    R = random_attitudes(4, 11)[0]
    sim = simulate_centroids(hip2025, CameraModel.from_fov(60.0, W, H), R, num_stars=60,
                             centroid_noise_px=0.5, false_fraction=0.3, seed=0)
    res = small_db.solve_from_centroids(sim.centroids, image_width=W, image_height=H)
    assert res and _boresight_error_deg(res, R) < 0.05
    assert len(per_search) == 2 and per_search[0] >= 1 and per_search[1] >= 1
    # (a ratio: approx's absolute tolerance, 1e-12, takes any two probabilities this small)
    assert res.probability / verifications[-1] == pytest.approx(len(verifications), rel=1e-12)
