"""A frame short of stars is extracted again, deeper, and solved again (batch.deeper)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import skysolve
from skysolve.batch import deeper
from skysolve.batch.solve_many import solve_many
from skysolve.errors import InvalidArgumentError
from skysolve.extraction import ExtractionOptions, extract_centroids
from skysolve.tests.realframes import ALT40, DATA, FOV_DEG, REFERENCE


def _noisy(seed: int) -> np.ndarray:
    """The real frame with three times its noise added (its MAD sigma, 427 ADU): at 5
    sigmas 4-5 of its 33 stars are kept, and these draws found no match."""
    img = skysolve.read_image(DATA / ALT40).astype(np.float64)
    sigma = 1.4826 * np.median(np.abs(img - np.median(img)))
    return img + np.random.default_rng(seed).normal(0.0, 3.0 * sigma, img.shape)


def _error_deg(res) -> float:
    truth = skysolve.geometry.radec_to_vector(*REFERENCE[ALT40])
    return math.degrees(math.acos(min(1.0, float(res.rotation_matrix_icrs_to_camera[2]
                                                 @ truth))))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_noisy_frame_is_solved_from_a_deeper_extraction(small_db, seed):
    image = _noisy(seed)
    plain = skysolve.solve_image(image, database=small_db, fov_estimate_deg=FOV_DEG,
                                 extraction={"retry_sigma_threshold": None})
    assert not plain and plain.status == "no_match"
    assert len(plain.extraction) < deeper.FEW_STARS
    res = skysolve.solve_image(image, database=small_db, fov_estimate_deg=FOV_DEG)
    assert res and _error_deg(res) < 0.1
    # the extraction attached is the deeper one the answer came from
    assert len(res.extraction) > 100
    assert res.extraction.threshold < plain.extraction.threshold
    assert res.num_matches >= 8


def test_solve_many_takes_the_deeper_extraction_too(small_db):
    got = solve_many([_noisy(1)], small_db, fov_estimate_deg=FOV_DEG, jobs=1, progress=False)
    assert got[0].status == "match_found" and _error_deg(got[0].result) < 0.1
    assert got[0].num_centroids > 100
    off = solve_many([_noisy(1)], small_db, fov_estimate_deg=FOV_DEG, jobs=1, progress=False,
                     extraction={"retry_sigma_threshold": None})
    assert off[0].status == "no_match" and off[0].num_centroids < deeper.FEW_STARS


def test_pure_noise_finds_nothing_deeper_and_keeps_the_first_failure(small_db):
    image = np.random.default_rng(0).normal(1000.0, 30.0, (768, 1024))
    res = skysolve.solve_image(image, database=small_db, fov_estimate_deg=FOV_DEG)
    assert not res and res.status == "too_few"
    assert len(res.extraction) < 3  # the list the failure is about, not the deeper one


def test_only_a_failure_for_want_of_stars_is_tried_again(small_db, monkeypatch):
    calls = []
    monkeypatch.setattr(deeper, "extract",
                        lambda image, options: calls.append(options) or extract_centroids(
                            image, options=options))
    frame = skysolve.read_image(DATA / ALT40)
    # solved: nothing more
    assert skysolve.solve_image(frame, database=small_db, fov_estimate_deg=FOV_DEG)
    # 33 stars kept that match nothing at a wrong scale: not short of stars
    res = skysolve.solve_image(frame, database=small_db, fov_estimate_deg=18.0,
                               fov_max_error_deg=0.5)
    assert not res and len(res.extraction) >= deeper.FEW_STARS
    # a threshold already at or below the retry's: nothing deeper to try
    skysolve.solve_image(_noisy(1), database=small_db, fov_estimate_deg=FOV_DEG,
                         extraction={"sigma_threshold": 3.0})
    assert calls == []
    skysolve.solve_image(_noisy(1), database=small_db, fov_estimate_deg=FOV_DEG)
    assert [c.sigma_threshold for c in calls] == [3.0]


@pytest.mark.parametrize("value, expected", [(None, None), (0, None), (2.5, 2.5)])
def test_the_retry_threshold_option(value, expected):
    assert ExtractionOptions(retry_sigma_threshold=value).retry_sigma_threshold == expected


@pytest.mark.parametrize("value", [-1.0, "deep", float("nan")])
def test_a_bad_retry_threshold_is_refused_by_name(value):
    with pytest.raises((InvalidArgumentError, TypeError), match="retry_sigma_threshold"):
        ExtractionOptions(retry_sigma_threshold=value)


class _Spy:
    """A database that records the time limit and hypothesis budget of every solve."""

    def __init__(self, db):
        self.db, self.limits, self.budgets = db, [], []

    def solve_from_centroids(self, centroids, **kwargs):
        self.limits.append(kwargs.get("solve_timeout_ms", "default"))
        self.budgets.append(kwargs.get("max_hypotheses_verified", "default"))
        return self.db.solve_from_centroids(centroids, **kwargs)


def test_the_deeper_solve_is_given_a_second_and_2000_hypotheses_at_most(small_db):
    # giving up on a starless frame's 150-250 detections took 0.5-1.9 s
    image = np.random.default_rng(0).normal(1000.0, 30.0, (768, 1024))
    spy = _Spy(small_db)
    assert not skysolve.solve_image(image, database=spy)
    assert spy.limits == ["default", 1000.0]
    assert spy.budgets == ["default", 2000]
    spy = _Spy(small_db)
    assert not skysolve.solve_image(image, database=spy, solve_timeout_ms=300.0,
                                    max_hypotheses_verified=200)
    assert spy.limits == [300.0, 300.0]  # (a shorter limit of the solve's own is kept)
    assert spy.budgets == [200, 200]  # (and a smaller budget)


def test_the_budget_not_the_clock_ends_a_starless_frames_deeper_solve(small_db, monkeypatch):
    """The 3 sigma detections of a starless frame: a search of all their patterns (told no
    scale) verifies thousands of hypotheses and finds nothing; the deeper solve's budget
    ends it after exactly that many, not its time limit."""
    import importlib

    lis = importlib.import_module("skysolve.solver.lost_in_space")
    calls = []
    real_verify = lis.verify
    monkeypatch.setattr(lis, "verify", lambda *a, **k: calls.append(1) or real_verify(*a, **k))
    image = np.random.default_rng(1).normal(1000.0, 30.0, (768, 1024))
    noise = extract_centroids(image, sigma_threshold=3.0)
    assert len(noise) > 100
    unbounded = small_db.solve_from_centroids(noise, image_shape=image.shape,
                                              solve_timeout_ms=None)
    assert not unbounded and unbounded.status == "no_match"
    assert len(calls) > deeper.DEEPER_HYPOTHESES == 2000
    calls.clear()
    bounded = small_db.solve_from_centroids(
        noise, image_shape=image.shape, **deeper.limited({"solve_timeout_ms": None}, 60_000.0))
    assert not bounded and bounded.status == "timeout"
    assert "max_hypotheses_verified=2000 hypotheses" in bounded.message
    assert len(calls) == 2000


@pytest.mark.parametrize("seed", [1, 2])
def test_the_noisy_frames_deeper_lists_match_well_within_the_budget(small_db, seed):
    """The deeper list of a frame short of stars matches on patterns of its brightest
    few centroids, among its first hypotheses: a twentieth of the budget is enough."""
    image = _noisy(seed)
    found = extract_centroids(image, sigma_threshold=3.0)
    res = small_db.solve_from_centroids(found, image_shape=image.shape,
                                        fov_estimate_deg=FOV_DEG,
                                        max_hypotheses_verified=deeper.DEEPER_HYPOTHESES // 20)
    assert res and _error_deg(res) < 0.1


@pytest.mark.parametrize("kwargs, expected", [
    ({}, 1000.0), ({"solve_timeout_ms": 300.0}, 300.0), ({"solve_timeout_ms": None}, 1000.0),
    ({"solve_timeout_ms": 0}, 1000.0),  # (0: no limit, as None)
    ({"options": skysolve.SolveOptions(solve_timeout_ms=200.0)}, 200.0),
    ({"options": skysolve.SolveOptions(solve_timeout_ms=200.0), "solve_timeout_ms": 4000.0},
     1000.0)])
def test_the_limit_of_the_deeper_solve(kwargs, expected):
    assert deeper.limited(kwargs, 1000.0)["solve_timeout_ms"] == expected


@pytest.mark.parametrize("kwargs, expected", [
    ({}, 2000), ({"max_hypotheses_verified": 300}, 300),
    ({"max_hypotheses_verified": None}, 2000), ({"max_hypotheses_verified": 10**6}, 2000),
    ({"options": skysolve.SolveOptions(max_hypotheses_verified=200)}, 200),
    ({"options": skysolve.SolveOptions(max_hypotheses_verified=200),
      "max_hypotheses_verified": 9000}, 2000)])
def test_the_hypothesis_budget_of_the_deeper_solve(kwargs, expected):
    got = deeper.limited({**kwargs, "fov_estimate_deg": 11.4}, 1000.0)
    assert got["max_hypotheses_verified"] == expected
    assert got["fov_estimate_deg"] == 11.4  # (the other arguments kept)


def test_solve_many_gives_the_deeper_solve_a_second_and_its_budget_at_most(small_db, monkeypatch):
    import importlib

    # (skysolve.batch's solve_many is the function: the module through the import system)
    module = importlib.import_module("skysolve.batch.solve_many")
    limits = []
    real = module.solve

    def spy(db, centroids, options, **kw):
        limits.append((options.solve_timeout_ms, options.max_hypotheses_verified))
        return real(db, centroids, options, **kw)

    monkeypatch.setattr(module, "solve", spy)
    image = np.random.default_rng(0).normal(1000.0, 30.0, (768, 1024))
    got = solve_many([image], small_db, fov_estimate_deg=FOV_DEG, jobs=1, progress=False)
    assert got[0].status == "too_few"
    assert limits == [(5000.0, None), (1000.0, 2000)]


def test_doubtful_centroids_do_not_count_as_stars():
    """The real frame binned 4x keeps 24 centroids, 12 of them doubtful (sharp blobs too
    faint to tell from hot pixels): a failure of it is short of stars, and the frame is
    extracted again deeper; its 12 stars alone would have been, as would a list of 24
    unflagged sources."""
    from skysolve.extraction.tests.test_robustness import _binned
    from skysolve.solver.result import SolveFailure
    from skysolve.tests.realframes import ALT60

    found = extract_centroids(_binned(skysolve.read_image(DATA / ALT60), 4))
    doubtful = int((found.flags == "doubtful").sum())
    assert len(found) >= deeper.FEW_STARS > deeper.star_count(found) == len(found) - doubtful
    failed = SolveFailure("no_match", 1.0)
    asked = []
    got = deeper.retry_deeper(found, failed, 5.0, 3.0,
                              lambda sigma: asked.append(sigma) or found, lambda *a: None)
    assert asked == [3.0] and got == (failed, found)  # (no more stars deeper: kept)
    assert deeper.star_count(found.as_array()) == len(found)
