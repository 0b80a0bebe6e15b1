"""Extraction on several threads: the same result as on one, whatever the backend.

The fits, tile medians and candidate pixels of a frame are cut into chunks for the
extraction's threads (``threads=``); every chunk's result goes back in chunk order,
so nothing may depend on the thread count.
"""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

from skysolve import _jit, _threads
from skysolve.extraction import extract_centroids, kernels
from skysolve.tests.frames import tess_like_frame


def _same(a, b) -> None:
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.as_array(), b.as_array())
    np.testing.assert_array_equal(a.fitted, b.fitted)
    np.testing.assert_array_equal(a.covariances(), b.covariances())
    assert a.background_sigma == b.background_sigma
    np.testing.assert_array_equal(a.rejected, b.rejected)


@pytest.fixture(scope="module")
def crowded():
    """A crowded 1024x1000 frame (1,500 stars, some saturated), with a few NaN pixels."""
    img = tess_like_frame(seed=5, shape=(1024, 1000), n_stars=1500)[0]
    img = np.minimum(img, np.float32(np.percentile(img, 99.95)))
    img[500:503, 200] = np.nan
    return img


@pytest.fixture(scope="module")
def whole(crowded):
    """Extractions of the crowded frame with the default chunk sizes on one thread: one
    chunk for everything (a 1-Mpx frame is below every threshold), as before chunking."""
    return {(backend, block): extract_centroids(crowded, threads=1, backend=backend,
                                                local_bg_block_size=block)
            for backend in (("reference", "compiled") if _jit.available() else ("reference",))
            for block in (16, 48)}


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunk sizes small enough that a 1-Mpx frame is cut into many."""
    for module, name, value in (("extract", "_THREAD_PIXELS", 40_000),
                                ("background", "_THREAD_SAMPLES", 3_000),
                                ("background", "_BAND_SAMPLES", 5_000),
                                ("blobs", "_FIT_CHUNK", 16),
                                ("blobs", "_GATHER_CHUNK", 500),
                                ("blobs", "_SUMS_SPLIT", 500),
                                ("blobs", "_NEIGHBOUR_CHUNK", 50)):
        monkeypatch.setattr(importlib.import_module(f"skysolve.extraction.{module}"), name,
                            value)


@pytest.mark.parametrize("backend", ["reference", "compiled"])
@pytest.mark.parametrize("block", [16, 48])
def test_extraction_does_not_depend_on_threads(crowded, whole, small_chunks, backend, block):
    """Cut into many chunks (on one thread: cache bands only), the result is the whole
    frame's; on 2, 3 and 7 threads too. (Block 48 does not tile the frame: its partial
    edge blocks are chunked too.)"""
    if backend == "compiled" and not _jit.available():
        pytest.skip("numba not available")
    one = extract_centroids(crowded, threads=1, backend=backend, local_bg_block_size=block)
    assert one.saturated.any()
    _same(whole[backend, block], one)
    for n in (2, 3, 7):
        _same(one, extract_centroids(crowded, threads=n, backend=backend,
                                     local_bg_block_size=block))


def test_split_covers_the_range_in_order():
    for n in (0, 1, 5, 100, 1001):
        for threads in (1, 2, 3, 8):
            for min_size in (1, 10, 300):
                chunks = _threads.split(n, threads, min_size)
                assert chunks[0][0] == 0 and chunks[-1][1] == n
                assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
                assert len(chunks) <= threads
                assert len(chunks) == 1 or min(b - a for a, b in chunks) >= min_size


def test_joined_chunks_keep_their_order():
    """Chunk results join position by position in chunk order; one chunk's arrays come
    back themselves (no copy)."""
    a, b = (np.arange(3), np.ones(3)), (np.arange(3, 5), np.zeros(2))
    idx, val = _threads.joined([a, b])
    np.testing.assert_array_equal(idx, np.arange(5))
    np.testing.assert_array_equal(val, [1, 1, 1, 0, 0])
    one = _threads.joined([a])
    assert one[0] is a[0] and one[1] is a[1]


def test_chunks_run_in_the_callers_context():
    """A chunk on a pool thread sees the caller's backend and thread count, not the
    defaults of a fresh thread."""
    seen = []

    def probe(lo, hi):
        seen.append((lo, kernels._BACKEND.get(), kernels.thread_count()))
        return lo

    with kernels.backend("reference", 3):
        out = _threads.run_chunks(probe, _threads.split(30, 3, 1))
    assert out == [0, 10, 20]
    assert sorted(seen) == [(0, "reference", 3), (10, "reference", 3), (20, "reference", 3)]


def test_default_threads_one_in_worker_threads():
    assert _threads.resolve(None) == _threads.available_cores()
    assert _threads.resolve(5) == 5
    got = []
    t = threading.Thread(target=lambda: got.append(_threads.resolve(None)))
    t.start()
    t.join()
    assert got == [1]


def test_row_bands_cover_the_frame_once(small_chunks):
    """The frame-wide passes (maximum, saturated and finite pixel counts) see every
    row exactly once, in bands."""
    extract = importlib.import_module("skysolve.extraction.extract")
    img = np.random.default_rng(4).normal(0.0, 1.0, (1000, 300)).astype(np.float32)
    with kernels.backend("reference", 3):
        bands = extract._by_rows(lambda rows: rows, img)
    assert len(bands) == 3
    np.testing.assert_array_equal(np.concatenate(bands), img)


def test_split_weighted_balances_the_cost():
    rng = np.random.default_rng(9)
    for n in (1, 7, 50, 1000):
        w = np.sort(rng.integers(1, 170, n))[::-1]
        for threads in (1, 2, 3):
            chunks = _threads.split_weighted(w, threads, 5)
            assert chunks[0][0] == 0 and chunks[-1][1] == n
            assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(chunks, chunks[1:],
                                                                     strict=False))
            if n == 1000:
                costs = [w[a:b].sum() for a, b in chunks]
                assert len(costs) == threads and max(costs) < 1.01 * w.sum() / threads + 170


def test_default_threads_one_in_worker_processes():
    """A pool's worker process (as batch and the service run frames) uses one thread."""
    import concurrent.futures as cf
    import multiprocessing

    for method in ("fork", "spawn"):
        with cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
            assert pool.submit(_threads.resolve, None).result() == 1


def test_default_threads_one_below_a_megapixel(monkeypatch):
    """``threads=None`` cuts the chunks of a frame under a megapixel for one thread (its
    parallel work is too short to repay the hand-offs), a larger frame's for every
    core; the result is the one-thread result either way."""
    monkeypatch.setattr(_threads, "available_cores", lambda: 3)
    asked = []
    split, weighted = _threads.split, _threads.split_weighted
    monkeypatch.setattr(_threads, "split", lambda n, t, m: asked.append(t) or split(n, t, m))
    monkeypatch.setattr(_threads, "split_weighted",
                        lambda c, t, m: asked.append(t) or weighted(c, t, m))
    for shape, n_stars, threads in (((480, 640), 150, 1), ((768, 1024), 300, 1),
                                    ((1024, 1024), 400, 3)):
        img = tess_like_frame(seed=2, shape=shape, n_stars=n_stars)[0]
        asked.clear()
        default = extract_centroids(img)
        assert asked and set(asked) == {threads}, shape
        _same(default, extract_centroids(img, threads=1))
