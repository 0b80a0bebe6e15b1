"""Scratch arrays reused from one extraction to the next (:mod:`skysolve.extraction.scratch`).

The pool must never hand out an array still in use, must give the same stars as fresh
arrays do, and must not let any of the result's arrays live in a reused one.
"""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

from skysolve.extraction import extract_centroids, scratch
from skysolve.tests.realframes import ALT40, ALT60

from .test_extraction import _real_jpeg


def test_outside_a_scope_the_arrays_are_numpys():
    a, b = scratch.empty((4, 5), np.float32), scratch.empty((4, 5), np.float32)
    assert a.shape == (4, 5) and a.dtype == np.float32 and not np.shares_memory(a, b)
    z = scratch.zeros(7, np.uint16)
    assert z.dtype == np.uint16 and not z.any()
    assert not scratch._POOL.scopes


def test_a_scope_hands_out_distinct_arrays_and_the_next_reuses_them():
    with scratch.reuse():
        a = scratch.empty((6, 8), np.float32)
        b = scratch.empty((6, 8), np.float32)
        c = scratch.empty((6, 8), np.float64)
        assert not np.shares_memory(a, b)
        assert c.dtype == np.float64
        a[:] = 1.0
    with scratch.reuse():
        again = {id(scratch.empty((6, 8), np.float32)) for _ in range(2)}
        third = scratch.empty((6, 8), np.float32)  # (only two are free)
        third[:] = 2.0
    assert again == {id(a), id(b)}
    assert id(third) not in again
    with scratch.reuse():  # a reused array, dirty: zeroed
        z = scratch.zeros((6, 8), np.float32)
        assert z is third and not z.any()


def test_nested_scopes_never_share_a_taken_array():
    with scratch.reuse():
        outer = scratch.empty(10, np.float32)
        with scratch.reuse():
            inner = scratch.empty(10, np.float32)
            assert not np.shares_memory(outer, inner)
        # the inner scope's array is free again; the outer one still is not
        later = scratch.empty(10, np.float32)
        assert later is inner
        assert not np.shares_memory(later, outer)


def test_an_extraction_keeps_only_the_kinds_it_asked_for():
    with scratch.reuse():
        scratch.empty((3, 3), np.float32)
        scratch.empty((2, 2), np.int32)
    with scratch.reuse():
        scratch.empty((3, 3), np.float32)
    assert set(scratch._POOL.free) == {((3, 3), np.dtype(np.float32).str)}


def test_a_borrowed_scope_frees_its_arrays_inside_an_extraction_only():
    with scratch.reuse():
        kept = scratch.empty((3, 3), np.float32)
    with scratch.borrowed():  # (no extraction: numpy's arrays, the kept ones untouched)
        loose = scratch.empty((3, 3), np.float32)
        assert loose is not kept and not scratch._POOL.scopes
    assert scratch._POOL.free[((3, 3), np.dtype(np.float32).str)] == [kept]
    with scratch.reuse():
        outer = scratch.empty(8)
        with scratch.borrowed():
            lent = scratch.empty(8)
            assert lent is not outer
        with scratch.borrowed():  # (free again as soon as the borrowing call is done)
            assert scratch.empty(8) is lent


def test_large_selections_and_clipped_mads_on_borrowed_space_give_numpys_values():
    """Inside an extraction a large sample's order statistic and clipped MAD take their
    scratch space from the pool, hand it back at once, and give the values of numpy's
    partition and of the uncompiled clipped MAD, on fresh and on dirty reused space."""
    from skysolve.extraction import background, kernels, orderstats

    kernels.warm_up()
    rng = np.random.default_rng(3)
    big = rng.standard_cauchy(40_000)  # (320 kB: above orderstats._SCRATCH_BYTES)
    assert big.nbytes >= orderstats._SCRATCH_BYTES
    with kernels.backend("reference"):
        want = background.robust_location(big, 2)
    with scratch.reuse():
        for _ in range(2):
            for k in (0, 7, 20_000, 39_999):
                assert orderstats.order_statistic(big, k) == np.partition(big, k)[k]
            assert background.robust_location(big, 2) == want
        # (the clipped MAD's four arrays, lent and handed back; the selection's among them)
        assert len(scratch._POOL.free[((40_000,), np.dtype(np.float64).str)]) == 3
        assert len(scratch._POOL.free[((40_000,), np.dtype(np.bool_).str)]) == 1


def test_a_thread_keeps_no_more_than_its_budget(monkeypatch):
    monkeypatch.setattr(scratch, "MAX_KEPT_BYTES", 1000)
    with scratch.reuse():
        big = scratch.empty(100, np.float64)  # 800 bytes
        small = scratch.empty(50, np.float32)  # 200 bytes
        scratch.empty(30, np.int16)  # 60 bytes: over the budget with the others
    kept = [a for arrays in scratch._POOL.free.values() for a in arrays]
    assert len(kept) == 2 and not any(a is big for a in kept)
    assert any(a is small for a in kept) and sum(a.nbytes for a in kept) == 260


def test_a_failed_extraction_frees_its_arrays():
    with pytest.raises(ValueError), scratch.reuse():
        a = scratch.empty(5, np.float64)
        raise ValueError("boom")
    assert not scratch._POOL.scopes
    with scratch.reuse():
        assert scratch.empty(5, np.float64) is a


def test_copy_casts_as_astype():
    rng = np.random.default_rng(1)
    wide = rng.normal(0, 1e30, (5, 7)) * rng.choice([1.0, 1e10], (5, 7))  # some beyond float32
    counts = rng.integers(0, 65536, (5, 7)).astype(np.uint16)
    with scratch.reuse(), np.errstate(over="ignore"):
        for src in (wide, counts, wide[:, ::2]):
            got = scratch.copy(src, np.float32)
            np.testing.assert_array_equal(got, src.astype(np.float32))
            assert got.flags.c_contiguous
        same = scratch.copy(counts)
        assert same.dtype == np.uint16 and not np.shares_memory(same, counts)
        np.testing.assert_array_equal(same, counts)


def test_each_thread_has_its_own_arrays():
    with scratch.reuse():
        mine = scratch.empty(9, np.float32)
    seen = []

    def other():
        with scratch.reuse():
            seen.append(scratch.empty(9, np.float32))

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert not np.shares_memory(seen[0], mine)
    with scratch.reuse():
        assert scratch.empty(9, np.float32) is mine


def _result_arrays(result) -> list[np.ndarray]:
    return [v for v in vars(result).values() if isinstance(v, np.ndarray)]


def test_extractions_on_reused_arrays_find_the_same_stars():
    """The real frames as JPEGs (the working copy, the matched filter's frame and the
    label images all come from the pool): a frame extracted on a fresh thread, and again
    after the other frame left its arrays, gives the same result to the bit; none of the
    result's arrays shares memory with a pooled array, and the next extraction leaves it
    unchanged."""
    first, second = _real_jpeg(ALT40), _real_jpeg(ALT60)
    fresh = {}
    t = threading.Thread(target=lambda: fresh.setdefault("r", extract_centroids(first)))
    t.start()
    t.join()
    extract_centroids(second)
    kind = ((768, 1024), np.dtype(np.float32).str)
    pooled = {id(a) for a in scratch._POOL.free[kind]}
    again = extract_centroids(first)
    assert {id(a) for a in scratch._POOL.free[kind]} == pooled  # (reused, none new)
    assert len(again) > 50
    np.testing.assert_array_equal(again.as_array(), fresh["r"].as_array())
    np.testing.assert_array_equal(again.covariances(), fresh["r"].covariances())
    np.testing.assert_array_equal(again.rejected, fresh["r"].rejected)
    free = [a for arrays in scratch._POOL.free.values() for a in arrays]
    for arr in _result_arrays(again):
        assert not any(np.shares_memory(arr, f) for f in free)
    kept = [a.copy() for a in _result_arrays(again)]
    extract_centroids(second)
    for arr, copy in zip(_result_arrays(again), kept, strict=True):
        np.testing.assert_array_equal(arr, copy)


def test_the_scratch_backed_helpers_give_numpys_arrays():
    ex = importlib.import_module("skysolve.extraction.extract")  # (the module, not the function)
    rng = np.random.default_rng(2)
    a = rng.normal(size=(40, 60)).astype(np.float32)
    a[rng.random(a.shape) < 0.1] = np.nan
    a[3, 4], a[5, 6] = np.inf, -np.inf
    keep = rng.random(a.shape) < 0.3
    with scratch.reuse():
        for _ in range(2):  # (the second time on reused buffers, dirty)
            np.testing.assert_array_equal(ex._not_finite(a), ~np.isfinite(a))
            np.testing.assert_array_equal(ex._not(keep), ~keep)
            np.testing.assert_array_equal(ex._gathered(a, keep), a[keep])
            strided = a[::3, ::2]
            np.testing.assert_array_equal(ex._gathered(strided, keep[::3, ::2]),
                                          strided[keep[::3, ::2]])
            assert ex._gathered(a, np.zeros_like(keep)).size == 0


def _damaged(kind: str) -> np.ndarray:
    from skysolve import read_image
    from skysolve.tests.realframes import DATA

    img = read_image(DATA / ALT40)
    if kind == "mask":
        mask = np.zeros(img.shape, bool)
        mask[:, :300] = True
        return np.ma.MaskedArray(img, mask)
    img = img.astype(np.float32)
    if kind == "nan_border":
        img[:, :40] = np.nan
    else:  # every second row lost (the gaps are bridged)
        img[1::2] = np.nan
    return img


@pytest.mark.parametrize("kind", ["nan_border", "lost_rows", "mask"])
def test_damaged_frames_on_reused_arrays_find_the_same_stars(kind):
    """Masked and NaN pixels take the fill's buffers (the unusable pixels' mask, the
    sample of the usable ones, the second differences, the gaps): a frame extracted on a
    fresh thread and again after another damaged frame gives the same result."""
    img = _damaged(kind)
    fresh = {}
    t = threading.Thread(target=lambda: fresh.setdefault("r", extract_centroids(img)))
    t.start()
    t.join()
    extract_centroids(_damaged("lost_rows" if kind != "lost_rows" else "nan_border"))
    again = extract_centroids(img)
    assert len(again) > 20
    np.testing.assert_array_equal(again.as_array(), fresh["r"].as_array())
    np.testing.assert_array_equal(again.rejected, fresh["r"].rejected)
    assert again.background_sigma == fresh["r"].background_sigma
    if kind != "lost_rows":  # nothing from the unusable columns
        x0 = -img.shape[1] / 2.0 + (300 if kind == "mask" else 40)
        assert (again.as_array()[:, 0] > x0).all()


def test_a_small_frame_takes_no_frame_sized_temporaries():
    """On a 320x240 frame the background's noise sample is the whole frame: its model and
    residuals (float64, 600 kB each), and the clipped MAD's scratch space, come from the
    pool. A warm extraction's numpy allocations peak below one float64 copy of the frame
    (they peaked at 1.9 MB, and the arrays, fresh from the system each time, took 565
    page faults an extraction); the stars are those of fresh arrays."""
    import tracemalloc

    from skysolve import read_image
    from skysolve.tests.realframes import DATA

    small = np.ascontiguousarray(read_image(DATA / ALT40)[250:490, 350:670])
    fresh = {}
    t = threading.Thread(target=lambda: fresh.setdefault("r", extract_centroids(small)))
    t.start()
    t.join()
    extract_centroids(small)
    tracemalloc.start()
    try:
        again = extract_centroids(small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(again) >= 5
    np.testing.assert_array_equal(again.as_array(), fresh["r"].as_array())
    assert peak < small.size * 8
