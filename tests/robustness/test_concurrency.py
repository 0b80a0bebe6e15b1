"""One database shared by threads and processes gives the serial answers, bit for bit."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from skysolve.tests.fakeclock import install as install_clock

from . import _workers as wk


@pytest.fixture(scope="module")
def frames(hip_catalog):
    return wk.frames(hip_catalog, 24, seed=7)


@pytest.fixture(scope="module")
def serial(small_db, frames):
    out = [wk.solve(small_db, f) for f in frames]
    statuses = {r["status"] for r in out}
    assert statuses == {"match_found", "no_match"}, statuses  # both kinds are exercised
    return out


@pytest.fixture(scope="module")
def db_file(small_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("robust_conc") / "small.db"
    small_db.save_to_file(path)
    return path


def test_threads_match_serial(small_db, frames, serial):
    with ThreadPoolExecutor(max_workers=4) as pool:
        # each frame twice, interleaved, so several threads solve at once on one database
        got = list(pool.map(lambda f: wk.solve(small_db, f), frames + frames[::-1]))
    assert got[:len(frames)] == serial
    assert got[len(frames):] == serial[::-1]


@pytest.mark.parametrize("mmap", [True, False])
def test_processes_loading_the_file_match_serial(frames, serial, db_file, mmap):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx, initializer=wk.init_from_file,
                             initargs=(str(db_file), mmap)) as pool:
        got = list(pool.map(wk.solve_in_worker, frames, chunksize=3))
    assert got == serial


def test_processes_given_a_pickled_database_match_serial(small_db, frames, serial):
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx, initializer=wk.init_from_pickle,
                             initargs=(small_db,)) as pool:
        got = list(pool.map(wk.solve_in_worker, frames[:12], chunksize=3))
    assert got == serial[:12]


def test_timeout_is_never_early_and_stops_the_search(small_db, monkeypatch):
    """30-centroid noise sets with solve_timeout_ms=300 on a controlled clock (0.1 s per
    reading, so the elapsed time counts the solver's looks at the clock, the same on any
    machine): 'timeout', never before 300 ms, and the search stops at the first look past
    the deadline (the report's own reading makes one more step). How late the deadline
    fires in wall-clock time is the benchmarks' business."""
    rng = np.random.default_rng(30)
    for _ in range(5):
        xy = rng.uniform(-wk.W / 2, wk.W / 2, (30, 2))
        install_clock(monkeypatch, 0.1)
        res = small_db.solve_from_centroids(xy, image_shape=(wk.H, wk.W), solve_timeout_ms=300)
        assert not res and res.status == "timeout"
        assert 300.0 <= res.solve_time_ms <= 300.0 + 2 * 100.0 + 1e-6
