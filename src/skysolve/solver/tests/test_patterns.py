"""Tests of skysolve.solver.patterns and of the pattern index of a generated database."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from skysolve.solver import keys as K
from skysolve.solver import patterns as P
from skysolve.solver.keys import pattern_edge_angles

# -- small building blocks ---------------------------------------------------------------


def test_bins_and_key_dtype():
    assert K.bins_for_error(0.005) == 50
    assert K.bins_for_error(0.001) == 250
    assert K.bins_for_error(0.2) == 1
    assert K.key_dtype(50) == np.uint32  # 50**5 = 3.1e8 < 2**32
    assert K.key_dtype(84) == np.uint32  # 84**5 = 4.18e9 < 2**32
    assert K.key_dtype(85) == np.uint64  # 85**5 = 4.44e9 > 2**32
    assert K.key_dtype(250) == np.uint64


def test_stars_per_field():
    assert P.stars_per_field(1) == 4
    assert P.stars_per_field(5) == 5
    assert P.stars_per_field(50) == 8  # C(7,4) = 35 < 50 <= C(8,4) = 70
    assert P.stars_per_field(70) == 8
    assert P.stars_per_field(71) == 9
    assert P.stars_per_field(500) == 13  # C(12,4) = 495, C(13,4) = 715


def test_brightest_first_combinations_prefix_property():
    k = 12
    combos = P.brightest_first_combinations(k)
    assert combos.shape == (math.comb(k, 4), 4)
    assert np.all(np.diff(combos, axis=1) > 0)  # a < b < c < d
    assert len({tuple(c) for c in combos}) == len(combos)
    assert {tuple(c) for c in combos} == set(itertools.combinations(range(k), 4))
    for m in range(4, k + 1):
        n = math.comb(m, 4)
        assert combos[:n].max() < m, m  # the first C(m,4) use only the m brightest stars
        if m < k:
            assert combos[n:].max(axis=1).min() == m  # and the next one adds star m
    np.testing.assert_array_equal(combos[:5], [[0, 1, 2, 3], [0, 1, 2, 4], [0, 1, 3, 4],
                                               [0, 2, 3, 4], [1, 2, 3, 4]])
    np.testing.assert_array_equal(P.brightest_first_combinations(k, 50), combos[:50])
    assert P.brightest_first_combinations(3).shape == (0, 4)


def test_fibonacci_sphere_is_nearly_uniform():
    n = 5000
    v = P.fibonacci_sphere(n)
    assert v.shape == (n, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-12)
    assert np.linalg.norm(v.mean(axis=0)) < 1e-3
    d, _ = cKDTree(v).query(v, k=2)
    nearest = d[:, 1]
    assert nearest.max() / nearest.min() < 1.3  # random points would give > 10
    # every cap of 20 deg radius holds its share of points to a few percent
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(200, 3))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    counts = (centres @ v.T > math.cos(math.radians(20))).sum(axis=1)
    expected = n * (1 - math.cos(math.radians(20))) / 2
    assert np.all(np.abs(counts - expected) < 0.08 * expected)


def test_fov_scales():
    assert P.fov_scales(14.0, 14.0, 1.5) == [14.0]
    s = P.fov_scales(20.0, 10.0, 1.5)
    np.testing.assert_allclose(s, [20.0, 20 / math.sqrt(2), 10.0])
    s = np.array(P.fov_scales(30.0, 5.0, 1.5))
    assert s[0] == 30.0 and s[-1] == pytest.approx(5.0)
    ratios = s[:-1] / s[1:]
    assert np.all(ratios <= 1.5) and np.allclose(ratios, ratios[0])
    assert len(s) == 6  # 6**(1/5) = 1.43 <= 1.5 < 6**(1/4)


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_thin_by_separation_drops_any_star_near_a_brighter_one():
    sep = math.radians(0.1)
    d = math.radians(0.08)
    # star 1 is near star 0; star 2 is near star 1 only; star 3 is far from everything
    v = _unit([[1, 0, 0], [1, d, 0], [1, 2 * d, 0], [1, 0, 0.5]])
    np.testing.assert_array_equal(P.thin_by_separation(v, sep), [True, False, False, True])
    np.testing.assert_array_equal(P.thin_by_separation(v, 0.0), [True] * 4)
    # random sky: same answer as the brute-force rule
    rng = np.random.default_rng(3)
    w = _unit(rng.normal(size=(3000, 3)))
    keep = P.thin_by_separation(w, math.radians(2.0))
    ang = np.arccos(np.clip(w @ w.T, -1, 1))
    brighter_close = np.tril(ang < math.radians(2.0), k=-1).any(axis=1)
    np.testing.assert_array_equal(keep, ~brighter_close)


def test_canonical_order_sorts_by_distance_from_mean():
    # a kite: stars at distances 0.3, 1.0, 2.0 and 0.6 (x 1e-2 rad) from the origin direction
    pts = np.array([[0.0, 0.3], [1.0, 0.0], [0.0, -2.0], [-0.6, 0.0]]) * 1e-2
    pts -= pts.mean(axis=0)  # the mean direction is then (0, 0, 1) to first order
    v = _unit(np.column_stack([pts, np.ones(4)]))
    order = P.canonical_order(v)
    dist = np.linalg.norm(v - v.mean(axis=0), axis=1)
    np.testing.assert_array_equal(order, np.argsort(dist))
    batch = np.stack([v, v[::-1], v[[2, 0, 3, 1]]])
    ordered = np.take_along_axis(batch, P.canonical_order(batch)[..., None], axis=1)
    # whatever the input order, the canonical order gives the same star sequence
    np.testing.assert_allclose(ordered[1], ordered[0], atol=0)
    np.testing.assert_allclose(ordered[2], ordered[0], atol=0)


def test_pattern_key_of_a_square():
    a = 0.01
    v = _unit([[a, a, 1], [-a, a, 1], [-a, -a, 1], [a, -a, 1]])
    keys, largest = K.pattern_keys(v[None], 50)
    # sides / diagonal = 1/sqrt(2) -> bin floor(35.36) = 35; the ratio 1 is clipped to bin 49
    assert int(keys[0]) == 35 * (1 + 50 + 50**2 + 50**3) + 49 * 50**4
    diag = np.arccos(v[0] @ v[2])
    assert largest[0] == pytest.approx(diag, rel=1e-12)



def test_pattern_key_is_the_documented_formula():
    """An irregular pattern, keyed by the formula of the keys module written out here:
    angles by arccos, the five shortest over the longest, ``floor(ratio * bins)``, and
    ``key = sum(b_i * bins**i)`` with ``b_0`` the smallest ratio's bin."""
    v = _unit([[0.013, 0.002, 1], [-0.004, 0.011, 1], [-0.009, -0.006, 1], [0.007, -0.012, 1]])
    bins = 50
    angles = sorted(math.acos(min(1.0, float(v[i] @ v[j])))
                    for i, j in itertools.combinations(range(4), 2))
    b = [min(math.floor(a / angles[-1] * bins), bins - 1) for a in angles[:-1]]
    assert len(set(b)) >= 4  # distinct bins, so that their places in the key matter
    keys, _ = K.pattern_keys(v[None], bins)
    assert int(keys[0]) == sum(bi * bins ** i for i, bi in enumerate(b))
    # a ratio 0.7 of the way through bin 3 is in bin 3: floor, not round
    assert K.bin_index(np.array([0.37]), 10)[0] == 3.0


# -- the pattern index of a real database --------------------------------------------------


def _packed(stars, num_stars):
    """One uint64 per pattern, independent of the order of its stars."""
    assert num_stars <= 1 << 16
    s = np.sort(stars.astype(np.uint64), axis=1)
    return ((s[:, 0] << np.uint64(48)) | (s[:, 1] << np.uint64(32))
            | (s[:, 2] << np.uint64(16)) | s[:, 3])


def _pattern_vectors(db, rows=None):
    stars = db.pattern_stars if rows is None else db.pattern_stars[rows]
    return db.star_vectors[stars.astype(np.intp)]


def test_patterns_are_four_distinct_catalog_stars_within_the_fov(small_db):
    db = small_db
    stars = db.pattern_stars.astype(np.intp)
    assert stars.shape == (db.num_patterns, 4) and db.num_patterns > 100_000
    assert stars.min() >= 0 and stars.max() < db.num_stars
    s = np.sort(stars, axis=1)
    assert np.all(np.diff(s, axis=1) > 0)
    # no pattern is stored twice
    assert len(np.unique(_packed(stars, db.num_stars))) == db.num_patterns
    edges = np.degrees(pattern_edge_angles(_pattern_vectors(db)))
    scales = db.parameters["fov_scales_deg"]
    assert edges.max() <= db.max_fov_deg * (1 + 1e-9)
    assert edges.min() >= P.SEPARATION_FRACTION * min(scales) * (1 - 1e-9)


def test_pattern_stars_are_bright_and_well_separated(small_db):
    db = small_db
    used = np.unique(db.pattern_stars)
    n = db.num_stars
    assert used.max() < n / 2
    assert np.median(db.pattern_stars) < n / 20
    # every pattern star has no brighter star within SEPARATION_FRACTION x smallest scale
    sep = math.radians(P.SEPARATION_FRACTION * db.min_fov_deg) * (1 - 1e-9)
    tree = cKDTree(db.star_vectors[: used.max() + 1])
    for i, near in zip(used, tree.query_ball_point(db.star_vectors[used], 2 * math.sin(sep / 2)),
                       strict=True):
        assert min(near) == i, (i, near)
    # and the brightest pattern-eligible stars are all used
    eligible = np.flatnonzero(P.thin_by_separation(db.star_vectors[:2000], sep))
    assert np.isin(eligible[:200], used).all()


def test_stored_keys_equal_recomputed_keys(small_db):
    db = small_db
    keys, largest = K.pattern_keys(_pattern_vectors(db), db.pattern_bins)
    np.testing.assert_array_equal(keys, db.pattern_keys.astype(np.uint64))
    assert db.pattern_keys.dtype == K.key_dtype(db.pattern_bins)
    assert np.all(np.diff(db.pattern_keys.astype(np.int64)) >= 0)
    assert np.degrees(largest).max() <= db.max_fov_deg * (1 + 1e-9)


def test_stored_patterns_are_in_canonical_order(small_db):
    v = _pattern_vectors(small_db)
    dist = np.sum((v - v.mean(axis=1, keepdims=True)) ** 2, axis=-1)
    # non-decreasing up to rounding of the mean
    assert np.all(np.diff(dist, axis=1) >= -1e-15)


def test_lookup_finds_every_stored_pattern(small_db):
    db = small_db
    rng = np.random.default_rng(11)
    sample = rng.choice(db.num_patterns, 3000, replace=False)
    keys, _ = K.pattern_keys(_pattern_vectors(db, sample), db.pattern_bins)
    rows, owner = db.lookup_keys(keys)
    assert np.all(db.pattern_keys[rows].astype(np.uint64) == keys[owner])
    found_self = np.zeros(len(sample), dtype=bool)
    found_self[owner[rows == sample[owner]]] = True
    assert found_self.all()
    # exactly the rows holding each key, no more: compare the counts with brute force
    counts = np.bincount(owner, minlength=len(sample))
    for i in rng.choice(len(sample), 50, replace=False):
        assert counts[i] == np.count_nonzero(db.pattern_keys == keys[i])


def test_lookup_of_absent_and_mixed_keys(small_db):
    db = small_db
    present = db.pattern_keys.astype(np.int64)
    candidates = np.random.default_rng(2).integers(0, db.pattern_bins**5, 200)
    absent = candidates[~np.isin(candidates, present)][:5]
    assert len(absent) == 5
    rows, owner = db.lookup_keys(absent)
    assert rows.size == 0 and owner.size == 0
    mixed = np.array([absent[0], present[0], absent[1], present[-1]])
    rows, owner = db.lookup_keys(mixed)
    assert set(owner.tolist()) == {1, 3}
    np.testing.assert_array_equal(db.pattern_keys[rows], mixed[owner])
    assert 0 in rows and db.num_patterns - 1 in rows


def test_keys_are_invariant_under_rotation_and_permutation(small_db):
    db = small_db
    rng = np.random.default_rng(5)
    rows = rng.choice(db.num_patterns, 2000, replace=False)
    v = _pattern_vectors(db, rows)
    keys, largest = K.pattern_keys(v, db.pattern_bins)
    rot = Rotation.random(len(rows), random_state=rng).as_matrix()
    rotated = np.einsum("nij,nkj->nki", rot, v)
    k_rot, l_rot = K.pattern_keys(rotated, db.pattern_bins)
    # a ratio within 1e-12 of a bin edge may legitimately flip; none should be that close
    np.testing.assert_array_equal(k_rot, keys)
    np.testing.assert_allclose(l_rot, largest, rtol=1e-9)
    for perm in itertools.permutations(range(4)):
        k_perm, _ = K.pattern_keys(v[:, perm, :], db.pattern_bins)
        np.testing.assert_array_equal(k_perm, keys)
    # the canonical order of rotated, shuffled patterns recovers the stored star order
    shuffled = np.stack([rng.permutation(4) for _ in rows])
    rs = np.take_along_axis(rotated, shuffled[..., None], axis=1)
    back = np.take_along_axis(shuffled, P.canonical_order(rs), axis=1)
    assert np.mean(np.all(back == np.arange(4), axis=1)) > 0.999


def test_multiscale_is_the_union_of_single_scales(small_db):
    v = small_db.star_vectors[:20_000]
    scales = P.fov_scales(20.0, 10.0, 1.5)
    multi = P.generate_patterns(v, scales, 10, 50, 50, progress=False)
    singles = [P.generate_patterns(v, [s], 10, 50, 50, progress=False) for s in scales]
    union = np.unique(np.concatenate([_packed(ps.stars, len(v)) for ps in singles]))
    assert len(union) < sum(len(ps.keys) for ps in singles)  # the scales share some patterns
    np.testing.assert_array_equal(np.sort(_packed(multi.stars, len(v))), union)
    # the keys follow the stars
    order = np.argsort(_packed(multi.stars, len(v)))
    for ps in singles:
        pos = np.searchsorted(_packed(multi.stars, len(v))[order], _packed(ps.stars, len(v)))
        np.testing.assert_array_equal(multi.keys[order][pos], ps.keys)
    for s, ps in zip(scales, singles, strict=True):
        largest = np.degrees(pattern_edge_angles(v[ps.stars.astype(np.intp)]).max(axis=1))
        assert largest.max() <= s * (1 + 1e-9)


def test_multiscale_db_has_patterns_at_every_scale(small_db):
    db = small_db
    p = db.parameters
    scales = p["fov_scales_deg"]
    assert len(scales) == 3 and scales[0] == 20.0 and scales[-1] == pytest.approx(10.0)
    largest = np.degrees(pattern_edge_angles(_pattern_vectors(db)).max(axis=1))
    # each scale contributes many patterns with their largest edge within 15% below it
    for s in scales:
        assert np.count_nonzero((largest > 0.85 * s) & (largest <= s)) > 10_000, s
    # ... far more than the largest scale alone makes there
    only_20 = P.generate_patterns(db.star_vectors, [20.0], p["lattice_field_oversampling"],
                                  p["patterns_per_lattice_field"], db.pattern_bins,
                                  progress=False)
    largest_20 = np.degrees(pattern_edge_angles(
        db.star_vectors[only_20.stars.astype(np.intp)]).max(axis=1))
    band = np.count_nonzero((largest > 8.5) & (largest <= 10.0))
    band_20 = np.count_nonzero((largest_20 > 8.5) & (largest_20 <= 10.0))
    assert band > 10 * band_20
