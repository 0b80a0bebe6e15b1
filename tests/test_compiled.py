"""The numba kernels (skysolve._compiled) agree with the pure-numpy solver path.

Every kernel is compared with the numpy function it mirrors on inputs from
real catalog fields, and whole solves are compared end to end: the same
matched stars, the same attitude to rounding, the same statistics.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve import _compiled
from skysolve import solver as S
from skysolve.camera import CameraModel
from skysolve.geometry import chord_to_angle, wahba_rotation
from skysolve.simulate import random_attitudes, simulate_centroids

pytestmark = pytest.mark.skipif(not _compiled.enabled(), reason="numba not available")

W, H = 1024, 768


@pytest.fixture(scope="module")
def hip2025(hip_catalog):
    return hip_catalog.propagate(2025.0)


@pytest.fixture(scope="module")
def fields(hip2025):
    """30 simulated fields: (centroids, true rotation, camera, mirrored)."""
    rng = np.random.default_rng(99)
    out = []
    for k, R in enumerate(random_attitudes(30, rng)):
        fov = float(rng.uniform(10.0, 20.0))
        mirror = k % 4 == 3
        cam = CameraModel.from_fov(fov, W, H)
        sim = simulate_centroids(hip2025, cam, R, num_stars=50, max_magnitude=8.0,
                                 centroid_noise_px=0.3, drop_fraction=0.1, mirror=mirror,
                                 seed=rng)
        out.append((sim.centroids[:, :2].copy(), R, cam, mirror))
    return out


def _solve(db, xy, monkeypatch, fast, **kw):
    monkeypatch.setattr(_compiled, "_ENABLED", fast)
    return db.solve_from_centroids(xy, fov_estimate_deg=15.0, image_width=W, image_height=H,
                                   **kw)


def test_environment_switch(monkeypatch):
    monkeypatch.setenv("SKYSOLVE_DISABLE_NUMBA", "1")
    assert not _compiled._detect()
    monkeypatch.setenv("SKYSOLVE_DISABLE_NUMBA", "0")
    assert _compiled._detect()
    monkeypatch.delenv("SKYSOLVE_DISABLE_NUMBA")
    assert _compiled._detect()


def test_disabled_in_a_fresh_process():
    """SKYSOLVE_DISABLE_NUMBA=1 in a process's environment selects the numpy path."""
    import os
    import subprocess
    import sys

    code = ("import skysolve._compiled as c; import skysolve.solver as s; "
            "print(c.enabled(), s._compiled.enabled())")
    env = dict(os.environ, SKYSOLVE_DISABLE_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_warm_up_leaves_nothing_to_compile_inside_a_solve(small_db, fields, monkeypatch):
    """After warm_up, no solve compiles a kernel for new argument types (on the clock)."""
    monkeypatch.setattr(_compiled, "_ENABLED", True)
    _compiled.warm_up(small_db)
    before = {name: len(k.signatures) for name, k in _compiled.kernels().items()}
    xy, R_true, cam, mirror = fields[1]
    crowded = np.vstack([xy, np.random.default_rng(0).uniform(-300, 300, (150, 2))])
    for centroids, kw in ((xy, {}), (xy, {"camera_model": cam.replace(parity_flip=mirror)}),
                          (xy, {"attitude_hint": R_true.T.T[::1], "strict_hint": True}),
                          (xy, {"attitude_hint": np.asfortranarray(R_true)}),
                          (xy, {"observer_velocity_km_s": [5.0, 20.0, -3.0]}),
                          (crowded, {}), (xy[:3], {"attitude_hint": R_true})):
        small_db.solve_from_centroids(centroids, fov_estimate_deg=15.0, image_width=W,
                                      image_height=H, **kw)
    after = {name: len(k.signatures) for name, k in _compiled.kernels().items()}
    assert after == before
    assert len(before) >= 15


def test_whole_solves_agree(small_db, fields, monkeypatch):
    """Both paths solve the same fields to the same stars and attitude."""
    n_solved = 0
    for xy, R_true, _, mirror in fields:
        fast = _solve(small_db, xy, monkeypatch, True)
        slow = _solve(small_db, xy, monkeypatch, False)
        assert bool(fast) == bool(slow)
        if not fast:
            continue
        n_solved += 1
        assert fast.parity_flip == slow.parity_flip == mirror
        np.testing.assert_array_equal(fast.matched_centroids, slow.matched_centroids)
        np.testing.assert_array_equal(fast.matched_catalog_ids, slow.matched_catalog_ids)
        np.testing.assert_allclose(fast.rotation_matrix_icrs_to_camera,
                                   slow.rotation_matrix_icrs_to_camera, atol=1e-11)
        assert fast.fov_deg == pytest.approx(slow.fov_deg, rel=1e-10)
        assert fast.rmse_arcsec == pytest.approx(slow.rmse_arcsec, rel=1e-6, abs=1e-9)
        assert fast.p90e_arcsec == pytest.approx(slow.p90e_arcsec, rel=1e-6, abs=1e-9)
        assert fast.max_err_arcsec == pytest.approx(slow.max_err_arcsec, rel=1e-6, abs=1e-9)
        assert fast.probability == pytest.approx(slow.probability, rel=1e-6)
        np.testing.assert_allclose(fast.attitude_cov_rad2, slow.attitude_cov_rad2, rtol=1e-6)
        # and both are right
        assert math.degrees(math.acos(min(1.0, fast.rotation_matrix_icrs_to_camera[2]
                                          @ R_true[2]))) < 0.01
    assert n_solved >= 28


def test_solves_with_camera_model_and_tracking_agree(small_db, fields, monkeypatch):
    xy, R_true, cam, mirror = fields[0]
    cam = cam.replace(parity_flip=mirror)
    for kw in ({"camera_model": cam}, {"attitude_hint": R_true, "strict_hint": True},
               {"observer_velocity_km_s": [10.0, -25.0, 5.0]}):
        fast = _solve(small_db, xy, monkeypatch, True, **kw)
        slow = _solve(small_db, xy, monkeypatch, False, **kw)
        assert fast and slow, kw
        assert fast.mode == slow.mode
        np.testing.assert_array_equal(fast.matched_centroids, slow.matched_centroids)
        np.testing.assert_allclose(fast.rotation_matrix_icrs_to_camera,
                                   slow.rotation_matrix_icrs_to_camera, atol=1e-11)


def test_random_centroids_fail_alike(small_db, monkeypatch):
    rng = np.random.default_rng(5)
    for _ in range(5):
        xy = np.column_stack([rng.uniform(-W / 2, W / 2, 40), rng.uniform(-H / 2, H / 2, 40)])
        fast = _solve(small_db, xy, monkeypatch, True)
        slow = _solve(small_db, xy, monkeypatch, False)
        assert not fast and not slow
        assert fast.status == slow.status


# ------------------------------------------------------------------------------------
# Kernel by kernel


def test_wahba_matches_svd():
    rng = np.random.default_rng(0)
    for k in range(300):
        n = int(rng.integers(3, 40))
        ref = rng.normal(size=(n, 3))
        ref /= np.linalg.norm(ref, axis=1)[:, None]
        R = wahba_rotation(rng.normal(size=(3, 3)) @ np.eye(3), np.eye(3))
        body = ref @ R.T + rng.normal(scale=(1e-4, 0.3)[k % 2], size=(n, 3))
        if k % 3 == 0:
            body[:, 0] *= -1.0  # the best proper rotation needs the reflection fix
        got = _compiled._wahba(body.T @ ref)
        np.testing.assert_allclose(got, wahba_rotation(body, ref), atol=1e-11)
        assert np.linalg.det(got) == pytest.approx(1.0, abs=1e-12)


def _frame(xy, fast):
    return S._make_frame(np.ascontiguousarray(xy, dtype=np.float64), W, H, None, fast)


def test_memory_mapped_database_solves_alike(small_db, fields, tmp_path, monkeypatch):
    """A database loaded with mmap=True (read-only memmaps) goes through the kernels too."""
    from skysolve.database import SolverDatabase

    path = tmp_path / "small.skdb"
    small_db.save_to_file(path)
    mapped = SolverDatabase.load_from_file(path, mmap=True)
    _compiled.warm_up(mapped)
    for xy, *_ in fields[:5]:
        got = _solve(mapped, xy, monkeypatch, True)
        want = _solve(small_db, xy, monkeypatch, True)
        assert got and want
        np.testing.assert_array_equal(got.matched_catalog_ids, want.matched_catalog_ids)
        np.testing.assert_allclose(got.rotation_matrix_icrs_to_camera,
                                   want.rotation_matrix_icrs_to_camera, atol=1e-12)


def test_thin_pixels_matches(fields):
    rng = np.random.default_rng(1)
    for xy, *_ in fields:
        for sep in (0.0, 3.0, 40.0):
            limit = int(rng.integers(4, 31))
            np.testing.assert_array_equal(S._thin_pixels(xy, sep, limit, True),
                                          S._thin_pixels(xy, sep, limit, False))


def test_brightest_in_cone_matches_trees(small_db, monkeypatch):
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(80, 3))
    # the poles, RA 0 from both sides, and just off a pole
    centres[:6] = [[0, 0, 1], [0, 0, -1], [1, 0, 0], [1, -1e-9, 0], [0.05, 0.0, 1.0],
                   [-0.7, 0.0, -0.7]]
    centres /= np.linalg.norm(centres, axis=1)[:, None]
    radii = np.concatenate([[0.01, 0.2, 0.12, 0.3, 0.1, 0.5], rng.uniform(0.01, 0.4, 74)])
    # from a handful of stars to more than a sparse cone holds (scan, cells, fallback)
    counts = np.concatenate([[5, 300, 50, 2000, 100, 900], rng.integers(1, 800, 74)])
    for c, radius, count in zip(centres, radii, counts, strict=True):
        monkeypatch.setattr(_compiled, "_ENABLED", True)
        fast = small_db.brightest_in_cone(c, float(radius), int(count))
        monkeypatch.setattr(_compiled, "_ENABLED", False)
        slow = small_db.brightest_in_cone(c, float(radius), int(count))
        np.testing.assert_array_equal(fast, slow)
        idx, v = small_db._cone_stars(c, float(radius), int(count))
        np.testing.assert_array_equal(idx, slow)
        np.testing.assert_array_equal(v, small_db.star_vectors[slow])
    # both strategies, forced, on one cone that holds fewer stars than asked for
    cells = small_db._sky_cells
    x, y, z = centres[7]
    cos_r = math.cos(0.2)
    rows_scan, v_scan, _ = _compiled.cone_scan(small_db.star_vectors, x, y, z, cos_r, 10 ** 6,
                                               10 ** 9)
    rows_cells, v_cells = _compiled.cone_query(
        *cells, math.atan2(y, x) % (2 * math.pi), math.asin(z), 0.2, x, y, z, cos_r, 10 ** 6,
        1000)
    np.testing.assert_array_equal(rows_scan, rows_cells)
    np.testing.assert_array_equal(v_scan, v_cells)
    assert len(rows_scan) > 100


def test_mutual_matches_with_ties_and_crowds():
    """Grid-aligned points (many equal distances), clusters, and empty inputs."""
    rng = np.random.default_rng(4)
    for k in range(200):
        n, m = int(rng.integers(0, 40)), int(rng.integers(0, 60))
        if k % 2:
            img = rng.integers(-5, 6, (n, 2)).astype(float) * 2.0
            cat = rng.integers(-5, 6, (m, 2)).astype(float) * 2.0 + rng.choice([0.0, 1.0])
        else:
            img = rng.normal(scale=20.0, size=(n, 2))
            cat = rng.normal(scale=20.0, size=(m, 2))
        radius = float(rng.choice([0.5, 2.0, 3.0, 8.0]))
        frame = _frame(img.reshape(-1, 2), False)
        want = S._mutual_matches(frame, n, cat.reshape(-1, 2), radius)
        got = _compiled.mutual_matches(img.reshape(-1, 2), cat.reshape(-1, 2), radius)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)
        if n and m:
            fast = _frame(img, True)
            assert S._match_chance(fast, n, cat, radius) == pytest.approx(
                S._match_chance(frame, n, cat, radius), rel=1e-12)


def test_key_directory_brackets_every_key(small_db):
    starts, shift = small_db.key_directory
    keys = small_db.pattern_keys.astype(np.uint64)
    assert starts[0] == 0 and starts[-1] == len(keys)
    assert np.all(np.diff(starts) >= 0)
    buckets = (keys >> np.uint64(shift)).astype(np.int64)
    rows = np.arange(len(keys))
    assert np.all((starts[buckets] <= rows) & (rows < starts[buckets + 1]))
    # about one pattern per bucket: a lookup searches a few rows, not the table
    assert len(starts) - 1 <= 2 * len(keys)


def _hypotheses(fields):
    """(centroids, true hypothesis) of each field."""
    for xy, R, cam, mirror in fields:
        yield xy, S._Hypothesis(R, cam.focal_length_px, mirror)


def test_pattern_search_kernels_match(small_db, fields):
    db = small_db
    tol = float(db.parameters["pattern_max_error"])
    combos = S._combos(12)
    n_cand = 0
    for xy, _, cam, _ in fields:
        frame = _frame(xy, False)
        f_guess = cam.focal_length_px * 1.01
        stars = S._thin_pixels(frame.ideal, 2.0, 12)
        if len(stars) < 12:
            continue
        v_guess = frame.vectors(f_guess, False, stars)
        lo, hi = math.radians(8.0), math.radians(25.0)
        slow = S._pattern_candidates(db, frame, v_guess, combos, tol, f_guess, lo, hi)
        *fast, done = _compiled.pattern_candidates(
            v_guess, combos, 0, np.array([len(combos)]), 10 ** 6, db.pattern_bins, tol,
            db.pattern_keys, *db.key_directory, db.pattern_stars, db.star_xyz, f_guess, W, lo,
            hi)
        assert done == len(combos)
        # batch by batch: the same candidates, stopping at the first batch with any
        ends = np.array(S._batch_ends(12))
        start, parts = 0, []
        while start < ends[-1]:
            *got, start = _compiled.pattern_candidates(
                v_guess, combos, start, ends, 10 ** 6, db.pattern_bins, tol, db.pattern_keys,
                *db.key_directory, db.pattern_stars, db.star_xyz, f_guess, W, lo, hi)
            assert start in ends
            assert len(got[0]) > 0 or start == ends[-1]
            parts.append(got)
        for t in range(4):
            np.testing.assert_array_equal(np.concatenate([q[t] for q in parts]), fast[t])
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        n_cand += len(fast[0])
        ideal = frame.ideal[stars[fast[0]]]
        cv = db.star_vectors[fast[1]]
        parities = (False, True)
        Rf, rf, pf = _compiled.pattern_attitudes(ideal, cv, fast[2], np.array(parities))
        Rs, rs, ps = S._pattern_attitudes(ideal, cv, fast[2], parities)
        np.testing.assert_allclose(Rf, Rs, atol=1e-10)
        np.testing.assert_allclose(rf, rs, rtol=1e-6, atol=1e-12)
        np.testing.assert_array_equal(pf, ps)
    assert n_cand > 100


def test_verification_and_refinement_kernels_match(small_db, fields):
    cat = S._Catalog(small_db, None)
    for xy, hyp in _hypotheses(fields):
        fast, slow = _frame(xy, True), _frame(xy, False)
        field = S._refine_field(slow, cat, hyp)
        rows_f, p_f = S._in_image(fast, field[1], hyp, 100)
        rows_s, p_s = S._in_image(slow, field[1], hyp, 100)
        np.testing.assert_array_equal(rows_f, rows_s)
        np.testing.assert_allclose(p_f, p_s, rtol=1e-12, atol=1e-9)
        radius = 0.01 * W
        for got, want in zip(S._mutual_matches(fast, 40, p_s, radius),
                             S._mutual_matches(slow, 40, p_s, radius), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        assert S._match_chance(fast, 40, p_s, radius) == pytest.approx(
            S._match_chance(slow, 40, p_s, radius), rel=1e-12)
        for a, b in zip(S._verify(fast, cat, hyp, radius, 4, field),
                        S._verify(slow, cat, hyp, radius, 4, field), strict=True):
            assert a == pytest.approx(b, rel=1e-9)
        # a perturbed attitude and focal length, refined both ways
        dR = wahba_rotation(np.eye(3) + 1e-4 * np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]]),
                            np.eye(3))
        start = S._Hypothesis(dR @ hyp.R, hyp.f * 1.003, hyp.parity)
        ref_f = S._refine(fast, cat, start, radius, 2, field=field)
        ref_s = S._refine(slow, cat, start, radius, 2, field=field)
        np.testing.assert_array_equal(ref_f.img_idx, ref_s.img_idx)
        np.testing.assert_array_equal(ref_f.cat_idx, ref_s.cat_idx)
        np.testing.assert_allclose(ref_f.hyp.R, ref_s.hyp.R, atol=1e-11)
        assert ref_f.hyp.f == pytest.approx(ref_s.hyp.f, rel=1e-10)
        np.testing.assert_allclose(ref_f.errors_rad, ref_s.errors_rad, rtol=1e-5, atol=1e-12)


def test_fit_kernels_match_on_outliers():
    """fit_pairs / trimmed_fit with wrong pairs, a fixed camera and a failing focal fit."""
    rng = np.random.default_rng(3)
    f = 2000.0
    for k in range(40):
        n = int(rng.integers(6, 40))
        ideal = rng.uniform(-500, 500, size=(n, 2))
        v = S.camera_vectors_from_tanplane(ideal[:, 0] / f, ideal[:, 1] / f)
        R = wahba_rotation(rng.normal(size=(3, 3)), np.eye(3))
        v_cat = v @ R  # v = R v_cat
        v_cat[: n // 5] = np.roll(v_cat[: n // 5], 1, axis=0)  # some wrong pairs
        parity = bool(k % 2)
        if parity:
            ideal = ideal * [-1.0, 1.0]
        for fixed in (False, True):
            hyp = S._Hypothesis(np.eye(3), f * 1.01, parity)
            fast, slow = _frame(ideal, True), _frame(ideal, False)
            fast.fixed_camera = slow.fixed_camera = fixed
            got = S._trimmed_fit(fast, hyp, ideal, v_cat, 8)
            want = S._trimmed_fit(slow, hyp, ideal, v_cat, 8)
            for (hg, eg), (hw, ew) in zip(got[:2], want[:2], strict=True):
                np.testing.assert_allclose(hg.R, hw.R, atol=1e-11)
                assert hg.f == pytest.approx(hw.f, rel=1e-12)
                np.testing.assert_allclose(eg, ew, rtol=1e-6, atol=1e-13)
            np.testing.assert_array_equal(got[2], want[2])
            idx = np.arange(n)
            np.testing.assert_allclose(S._attitude_covariance(fast, idx, f, parity, 1e-5),
                                       S._attitude_covariance(slow, idx, f, parity, 1e-5),
                                       rtol=1e-8)
    # a focal fit that cannot succeed (catalog stars all round the sky, so some end up
    # behind the camera) fails in both
    ideal = rng.uniform(-500, 500, size=(20, 2))
    v_cat = rng.normal(size=(20, 3))
    v_cat /= np.linalg.norm(v_cat, axis=1)[:, None]
    hyp = S._Hypothesis(np.eye(3), f, False)
    assert S._trimmed_fit(_frame(ideal, True), hyp, ideal, v_cat, 8) is None
    assert S._trimmed_fit(_frame(ideal, False), hyp, ideal, v_cat, 8) is None
    # chord helper
    for c in (-1.0, 0.0, 0.3, 2.0, 3.0):
        assert _compiled._chord_to_angle(c) == pytest.approx(float(chord_to_angle(c)))
