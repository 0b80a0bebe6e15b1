"""The two solver backends agree: the numba kernels and the pure-numpy reference.

Every function of the backend interface is compared on inputs from real
catalog fields, and whole solves are compared end to end: the same matched
stars, the same attitude to rounding, the same statistics. The interface
itself is checked too: both backends implement every function with the same
signature, and warming up from the interface's examples leaves nothing to
compile inside a solve.
"""

from __future__ import annotations

import inspect
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from skysolve.camera import CameraModel
from skysolve.camera.projection import PROJECTIONS, plane_to_vectors
from skysolve.geometry import chord_to_angle, wahba_rotation
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.solver import backends, keys
from skysolve.solver import lost_in_space as LIS
from skysolve.solver.backends import interface
from skysolve.solver.backends import reference as ref
from skysolve.solver.frame import CatalogView, Hypothesis, make_frame
from skysolve.solver.refinement import refine, refine_field
from skysolve.solver.verification import verify

pytestmark = pytest.mark.skipif(not backends.available(), reason="numba not available")

if backends.available():
    from skysolve.solver.backends import compiled as comp

W, H = 1024, 768


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


def _solve(db, xy, fast, **kw):
    return db.solve_from_centroids(xy, fov_estimate_deg=15.0, image_width=W, image_height=H,
                                   backend="compiled" if fast else "reference", **kw)


# ------------------------------------------------------------------------------------
# The interface


def test_both_backends_implement_the_interface_alike():
    names = interface.names()
    assert len(names) == len(set(names)) >= 13
    for name in names:
        a, b = getattr(ref, name), getattr(comp, name)
        assert inspect.signature(getattr(b, "py_func", b)) == inspect.signature(a), name


def test_examples_cover_the_interface(small_db):
    ex = interface.examples(small_db)
    assert set(ex) == set(interface.names())
    for name, calls in ex.items():
        assert calls, name
        for args in calls:  # every example runs on both backends with the same result shape
            got, want = getattr(comp, name)(*args), getattr(ref, name)(*args)
            assert type(got) is type(want) or np.isscalar(got), name


def test_environment_switch(monkeypatch):
    from skysolve import _jit

    monkeypatch.setenv("SKYSOLVE_DISABLE_NUMBA", "1")
    assert not _jit._detect()
    monkeypatch.setenv("SKYSOLVE_DISABLE_NUMBA", "0")
    assert _jit._detect()
    monkeypatch.delenv("SKYSOLVE_DISABLE_NUMBA")
    assert _jit._detect()


def test_disabled_in_a_fresh_process():
    """SKYSOLVE_DISABLE_NUMBA=1 in a process's environment selects the numpy path."""
    import os
    import subprocess
    import sys

    code = ("from skysolve.solver import backends; print(backends.available(), "
            "backends.select().NAME)")
    env = dict(os.environ, SKYSOLVE_DISABLE_NUMBA="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "reference"]


def test_warm_up_leaves_nothing_to_compile_inside_a_solve(small_db, fields):
    """After prepare(), no solve compiles a kernel for new argument types (on the clock)."""
    backends.prepare(comp, small_db)
    before = {name: len(k.signatures) for name, k in backends.compiled_functions().items()}
    xy, R_true, cam, mirror = fields[1]
    crowded = np.vstack([xy, np.random.default_rng(0).uniform(-300, 300, (150, 2))])
    for centroids, kw in ((xy, {}), (xy, {"camera_model": cam.replace(parity_flip=mirror)}),
                          (xy, {"attitude_hint": R_true.T.T[::1], "strict_hint": True}),
                          (xy, {"attitude_hint": np.asfortranarray(R_true)}),
                          (xy, {"observer_velocity_km_s": [5.0, 20.0, -3.0]}),
                          (crowded, {}), (xy[:3], {"attitude_hint": R_true})):
        small_db.solve_from_centroids(centroids, fov_estimate_deg=15.0, image_width=W,
                                      image_height=H, backend="compiled", **kw)
    after = {name: len(k.signatures) for name, k in backends.compiled_functions().items()}
    assert after == before
    assert len(before) >= 15


def test_whole_solves_agree(small_db, fields):
    """Both paths solve the same fields to the same stars and attitude."""
    n_solved = 0
    for xy, R_true, _, mirror in fields:
        fast = _solve(small_db, xy, True)
        slow = _solve(small_db, xy, False)
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


def test_solves_with_camera_model_and_tracking_agree(small_db, fields):
    xy, R_true, cam, mirror = fields[0]
    cam = cam.replace(parity_flip=mirror)
    for kw in ({"camera_model": cam}, {"attitude_hint": R_true, "strict_hint": True},
               {"observer_velocity_km_s": [10.0, -25.0, 5.0]}):
        fast = _solve(small_db, xy, True, **kw)
        slow = _solve(small_db, xy, False, **kw)
        assert fast and slow, kw
        assert fast.mode == slow.mode
        np.testing.assert_array_equal(fast.matched_centroids, slow.matched_centroids)
        np.testing.assert_allclose(fast.rotation_matrix_icrs_to_camera,
                                   slow.rotation_matrix_icrs_to_camera, atol=1e-11)
        # with a camera model both refine the image's plate scale alike
        assert fast.camera_model.focal_length_px == pytest.approx(
            slow.camera_model.focal_length_px, rel=1e-12)


def test_random_centroids_fail_alike(small_db):
    rng = np.random.default_rng(5)
    for _ in range(5):
        # 28 centroids: every pattern is tried (no time limit to race) in a few seconds; a
        # narrow range (one focal-length window) keeps the numpy search short
        xy = np.column_stack([rng.uniform(-W / 2, W / 2, 28), rng.uniform(-H / 2, H / 2, 28)])
        fast = _solve(small_db, xy, True, solve_timeout_ms=None, fov_max_error_deg=1.0)
        slow = _solve(small_db, xy, False, solve_timeout_ms=None, fov_max_error_deg=1.0)
        assert not fast and not slow
        assert fast.status == slow.status


# ------------------------------------------------------------------------------------
# Function by function


def test_wahba_matches_svd():
    rng = np.random.default_rng(0)
    for k in range(300):
        n = int(rng.integers(3, 40))
        ref_v = rng.normal(size=(n, 3))
        ref_v /= np.linalg.norm(ref_v, axis=1)[:, None]
        R = wahba_rotation(rng.normal(size=(3, 3)) @ np.eye(3), np.eye(3))
        body = ref_v @ R.T + rng.normal(scale=(1e-4, 0.3)[k % 2], size=(n, 3))
        if k % 3 == 0:
            body[:, 0] *= -1.0  # the best proper rotation needs the reflection fix
        got = comp._wahba(body.T @ ref_v)
        np.testing.assert_allclose(got, wahba_rotation(body, ref_v), atol=1e-11)
        assert np.linalg.det(got) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("width_deg", [0.1, 1.0, 3.0, 10.0, 30.0])
def test_wahba_of_narrow_fields_matches_svd(width_deg):
    # the eigenvalues of Davenport's matrix cluster as the field narrows (the roll's
    # curvature falls with its square): the rotation is then determined only to ~1e-14
    # over the squared half-width by any method; the kernel's must be as close to
    # LAPACK's SVD as that, whichever of its two eigenvector paths it takes
    rng = np.random.default_rng(int(width_deg * 10))
    half = math.radians(width_deg / 2)
    paths = set()
    for k in range(100):
        n = int(rng.integers(2, 40))
        r, ph = half * np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
        cam = np.c_[np.sin(r) * np.cos(ph), np.sin(r) * np.sin(ph), np.cos(r)]
        sky = cam @ wahba_rotation(rng.normal(size=(3, 3)), np.eye(3))
        body = cam + rng.normal(scale=1e-3 * half, size=(n, 3))
        if k % 3 == 0:
            body[:, 0] *= -1.0
        B = body.T @ sky
        np.testing.assert_allclose(comp._wahba(B), wahba_rotation(body, sky),
                                   atol=1e-13 / half ** 2)
        K = np.zeros((4, 4))
        K[:3, :3] = B + B.T - np.trace(B) * np.eye(3)
        K[:3, 3] = K[3, :3] = B[1, 2] - B[2, 1], B[2, 0] - B[0, 2], B[0, 1] - B[1, 0]
        K[3, 3] = np.trace(B)
        paths.add(bool(np.array_equal(comp._largest_eigenvector4(K),
                                      comp._jacobi_eigenvector4(K))))
    # fields under a degree or so take Jacobi, wider ones the cofactors
    assert paths == ({True} if width_deg < 1 else {False} if width_deg > 3 else {True, False})


def test_wahba_of_degenerate_profiles():
    # no pairs, one direction, a half-turn: the eigenvalue is repeated or the profile
    # says nothing of some axis, and the kernel falls back to Jacobi's answer
    for B in (np.zeros((3, 3)), np.outer([0.0, 0.0, 1.0], [0.0, 0.0, 1.0]),
              np.diag([1.0, -1.0, -1.0]), np.eye(3)):
        R = comp._wahba(B)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-15)
        assert np.trace(R.T @ B) == pytest.approx(np.linalg.svd(B)[1].sum(), abs=1e-12)


def _frame(xy, backend):
    return make_frame(np.ascontiguousarray(xy, dtype=np.float64), W, H, None, "pinhole",
                      backend)


def test_memory_mapped_database_solves_alike(small_db, fields, tmp_path):
    """A database loaded with mmap=True (read-only memmaps) goes through the kernels too."""
    from skysolve.database import SolverDatabase

    path = tmp_path / "small.skdb"
    small_db.save_to_file(path)
    mapped = SolverDatabase.load_from_file(path, mmap=True)
    backends.prepare(comp, mapped)
    for xy, *_ in fields[:5]:
        got = _solve(mapped, xy, True)
        want = _solve(small_db, xy, True)
        assert got and want
        np.testing.assert_array_equal(got.matched_catalog_ids, want.matched_catalog_ids)
        np.testing.assert_allclose(got.rotation_matrix_icrs_to_camera,
                                   want.rotation_matrix_icrs_to_camera, atol=1e-12)


def test_thin_pixels_matches(fields):
    rng = np.random.default_rng(1)
    for xy, *_ in fields:
        cand = np.ascontiguousarray(xy[:100])
        for sep in (0.0, 3.0, 40.0):
            limit = int(rng.integers(4, 31))
            np.testing.assert_array_equal(comp.thin_pixels(cand, sep, limit),
                                          ref.thin_pixels(cand, sep, limit))


def test_brightest_in_cone_matches_trees(small_db):
    rng = np.random.default_rng(2)
    centres = rng.normal(size=(80, 3))
    # the poles, RA 0 from both sides, and just off a pole
    centres[:6] = [[0, 0, 1], [0, 0, -1], [1, 0, 0], [1, -1e-9, 0], [0.05, 0.0, 1.0],
                   [-0.7, 0.0, -0.7]]
    centres /= np.linalg.norm(centres, axis=1)[:, None]
    radii = np.concatenate([[0.01, 0.2, 0.12, 0.3, 0.1, 0.5], rng.uniform(0.01, 0.4, 74)])
    # from a handful of stars to more than a sparse cone holds (scan, cells, fallback)
    counts = np.concatenate([[5, 300, 50, 2000, 100, 900], rng.integers(1, 800, 74)])
    index = small_db.sky_index
    for c, radius, count in zip(centres, radii, counts, strict=True):
        fast, v_fast = comp.brightest_in_cone(index, c, float(radius), int(count))
        slow, v_slow = ref.brightest_in_cone(index, c, float(radius), int(count))
        np.testing.assert_array_equal(fast, slow)
        np.testing.assert_array_equal(v_fast, small_db.star_vectors[slow])
        np.testing.assert_array_equal(v_slow, small_db.star_vectors[slow])
        np.testing.assert_array_equal(small_db.brightest_in_cone(c, float(radius), int(count)),
                                      slow)
    # both strategies, forced, on one cone that holds fewer stars than asked for
    cells = index.cells
    x, y, z = centres[7]
    cos_r = math.cos(0.2)
    rows_scan, v_scan, _ = comp.cone_scan(small_db.star_vectors, x, y, z, cos_r, 10 ** 6,
                                          10 ** 9)
    rows_cells, v_cells = comp.cone_query(
        *cells, math.atan2(y, x) % (2 * math.pi), math.asin(z), 0.2, x, y, z, cos_r, 10 ** 6,
        1000)
    np.testing.assert_array_equal(rows_scan, rows_cells)
    np.testing.assert_array_equal(v_scan, v_cells)
    assert len(rows_scan) > 100


def test_sort6_sorts_finite_values_and_places_nan_as_an_insertion_sort():
    """The pattern edges' sort: six numbers in increasing order (ties, zeros, equal
    runs); with a NaN among them, where an insertion sort leaves it (the pattern
    search's keys of an image pattern with a star the projection does not image)."""
    def insertion(values):
        e = list(values)
        for i in range(1, 6):
            x, j = e[i], i - 1
            while j >= 0 and e[j] > x:
                e[j + 1] = e[j]
                j -= 1
            e[j + 1] = x
        return np.array(e)

    rng = np.random.default_rng(6)
    rows = [rng.random(6), rng.integers(0, 3, 6).astype(float), np.zeros(6),
            np.array([3.0, 2.0, 1.0, 0.0, 0.0, 1.0]), np.full(6, 0.25)]
    rows += [rng.permutation([0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) for _ in range(200)]
    for e in rows:
        got = e.copy()
        comp._sort6(got)
        np.testing.assert_array_equal(got, np.sort(e))
    for k in range(60):
        e = rng.integers(0, 4, 6).astype(float)
        e[rng.choice(6, 1 + k % 3, replace=False)] = np.nan
        got = e.copy()
        comp._sort6(got)
        np.testing.assert_array_equal(got, insertion(e))


def test_stable_rank_sorts_agree_with_numpy():
    """The small sorts counted by rank: numpy's stable argsort, sort and the rows of
    the ``h`` smallest, on ties, signed zeros, infinities, NaN, integers and arrays
    past the counting's size (where numpy's own sort takes over)."""
    rng = np.random.default_rng(7)
    arrays = [rng.random(45), rng.integers(0, 4, 40).astype(float), np.zeros(0), np.ones(1),
              np.array([0.0, -0.0, 0.0, -0.0, 1.0]), np.array([np.inf, 1.0, np.inf, 0.5]),
              np.array([1.0, np.nan, 0.5, np.nan, 0.2]), rng.random(200),
              rng.integers(0, 5, 300).astype(float), rng.permutation(60)]
    for x in arrays:
        np.testing.assert_array_equal(comp._stable_argsort(x), np.argsort(x, kind="stable"))
        np.testing.assert_array_equal(comp._sorted(x), np.sort(x))
        for h in {1, len(x) // 2, len(x)} - {0}:
            np.testing.assert_array_equal(comp._smallest(x, h),
                                          np.sort(np.argsort(x, kind="stable")[:h]))


def test_lowest_first_orders_crowded_and_spread_rows():
    """The cone query's ordering of the rows it found (distinct star-table rows, in cell
    order): the ``count`` lowest first, as an argsort, however they crowd -- spread over
    the bound, all but one at the low end (one bucket holds them), runs in cell order,
    one row, none."""
    rng = np.random.default_rng(5)
    cases = [rng.permutation(60000)[:300], np.append(rng.permutation(400), 60000),
             np.concatenate([np.sort(rng.permutation(5000)[:80]) + 5000 * k for k in (3, 0, 2, 1)]),
             np.array([7]), np.zeros(0, np.intp), np.arange(500)[::-1].copy()]
    for values in cases:
        values = np.asarray(values, dtype=np.intp)
        padded = np.concatenate([values, rng.integers(0, 10, 5)])  # only the first n count
        for count in (1, 3, len(values) // 2, len(values), len(values) + 10):
            got = comp._lowest_first(padded, len(values), count)
            np.testing.assert_array_equal(got, np.argsort(values, kind="stable")[:count])


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
        img, cat = img.reshape(-1, 2), cat.reshape(-1, 2)
        want = ref.mutual_matches(img, cat, radius)
        got = comp.mutual_matches(img, cat, radius)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)
        if n and m:
            outer = 10.0 * radius
            assert comp.crowding(img, cat, radius, outer) == pytest.approx(
                ref.crowding(img, cat, radius, outer), rel=1e-12)


def test_large_problems_take_the_same_kd_tree_path():
    """Above the brute-force size both backends match with the reference's KD-tree."""
    rng = np.random.default_rng(6)
    img = rng.uniform(-900, 900, (400, 2))
    cat = img[rng.permutation(400)[:300]] + rng.normal(scale=0.5, size=(300, 2))
    assert len(img) * len(cat) > ref.BRUTE_FORCE_PAIRS
    for a, b in zip(comp.mutual_matches(img, cat, 3.0), ref.mutual_matches(img, cat, 3.0),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_kd_tree_claims_by_sweep_match_the_kd_tree():
    """The compiled sweep and the reference's distance matrix (which spares a one-shot
    solve the import of scipy.spatial) give the reference KD-tree's matches (each star its
    nearest centroid closer than the radius, a centroid kept by its closest star), crowded
    and sparse, with stars exactly at the radius (no match), distances to the last bit.
    (Of two centroids at the very same position either may be the match: the KD-tree's
    traversal decides.)"""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(12)
    for trial in range(60):
        n, m = int(rng.integers(1, 300)), int(rng.integers(1, 400))
        spread = float(rng.choice([50.0, 400.0, 900.0]))
        img = rng.uniform(-spread, spread, (n, 2))
        cat = np.vstack([img[rng.integers(0, n, m // 2)] + rng.normal(scale=1.5, size=(m // 2, 2)),
                         rng.uniform(-spread, spread, (m - m // 2, 2))])
        if trial % 5 == 0:
            cat[0] = img[0] + [3.0, 0.0]  # exactly at the radius: not a match
        want = ref.kdtree_matches(cKDTree(img), cat, 3.0)
        for got in (comp._claims(img, cat, 3.0), ref.claims_matrix(img, cat, 3.0)):
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)


def test_crowded_numpy_refinement_needs_no_scipy_spatial():
    """The numpy backend (a one-shot command's) refines a frame of 200 centroids, whose
    matching is above the brute-force size, without importing scipy.spatial (0.3-1 s of
    a one-shot solve), and matches every star seen."""
    code = """if True:
        import json, sys
        import numpy as np
        from skysolve.solver.backends import reference as ref
        rng = np.random.default_rng(3)
        W, H, f = 1024.0, 768.0, 1200.0
        xy = rng.uniform([-0.6 * W, -0.6 * H], [0.6 * W, 0.6 * H], (400, 2))
        v = np.column_stack([xy / f, np.ones(len(xy))])
        v = np.ascontiguousarray(v / np.linalg.norm(v, axis=1)[:, None])
        seen = np.flatnonzero((np.abs(xy[:, 0]) < W / 2) & (np.abs(xy[:, 1]) < H / 2))[:100]
        ideal = np.vstack([xy[seen] + rng.normal(scale=0.2, size=(len(seen), 2)),
                           rng.uniform([-W / 2, -H / 2], [W / 2, H / 2], (100, 2))])
        ok, R, f1, i, j, err = ref.refine(ideal, v, np.eye(3), 1195.0, False, 0, False, 0.0,
                                          0.0, W / 2, H / 2, 10.0, 2, 3.0)
        true = sorted((int(a), int(b)) for a, b in enumerate(seen))
        print(json.dumps([bool(ok), f1, set(true) <= set(zip(i.tolist(), j.tolist())),
                          len(ideal) * 3 * len(ideal) > ref.BRUTE_FORCE_PAIRS,
                          "scipy.spatial" in sys.modules]))
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    ok, f1, true_matches, above_brute_force, spatial = json.loads(out.stdout)
    assert ok and true_matches and above_brute_force
    assert f1 == pytest.approx(1200.0, rel=1e-3)
    assert not spatial


def test_refinement_of_crowded_frames_agrees():
    """Refining with 90-250 centroids (KD-tree matches in the reference, the compiled
    sweep in one kernel) gives the same matches and attitude with either backend."""
    from skysolve.solver.frame import Frame

    rng = np.random.default_rng(13)
    cam = CameraModel(1200.0, W, H)
    for n_false in (60, 150, 220):
        R = random_attitudes(1, rng)[0]
        # catalog stars spread over (and beyond) the image, 60 of them seen as centroids
        xy = rng.uniform([-0.6 * W, -0.6 * H], [0.6 * W, 0.6 * H], (300, 2))
        cam_v = np.column_stack([xy / 1200.0, np.ones(len(xy))])
        v = np.ascontiguousarray((cam_v / np.linalg.norm(cam_v, axis=1)[:, None]) @ R)
        seen = np.flatnonzero((np.abs(xy[:, 0]) < W / 2) & (np.abs(xy[:, 1]) < H / 2))[:60]
        ideal = np.vstack([xy[seen] + rng.normal(scale=0.3, size=(len(seen), 2)),
                           rng.uniform([-W / 2, -H / 2], [W / 2, H / 2], (n_false, 2))])
        start = wahba_rotation(np.eye(3) + 2e-4 * rng.normal(size=(3, 3)), np.eye(3)) @ R
        out = []
        for be in (comp, ref):
            frame = Frame(ideal, np.ascontiguousarray(ideal), W, H, cam, False, be)
            ok, R1, f1, i, j, err = be.refine(frame.ideal, v, start, 1190.0, False, 0, False,
                                              0.0, 0.0, W / 2, H / 2, 0.01 * W, 2, 3.0)
            out.append((ok, R1, f1, i, j, err))
        (ok_c, R_c, f_c, i_c, j_c, e_c), (ok_r, R_r, f_r, i_r, j_r, e_r) = out
        assert ok_c and ok_r
        assert len(ideal) * 3 * len(ideal) > ref.BRUTE_FORCE_PAIRS
        np.testing.assert_array_equal(i_c, i_r)
        np.testing.assert_array_equal(j_c, j_r)
        np.testing.assert_allclose(R_c, R_r, atol=1e-11)
        assert f_c == pytest.approx(f_r, rel=1e-10)
        np.testing.assert_allclose(e_c, e_r, rtol=1e-5, atol=1e-12)


def _crowded_frame(rng):
    """A crowded verification case: attitude ``R``, 300 catalog vectors of a 1200 px
    focal length over the frame, and 150 centroids (80 of the stars at 4 px noise, 70
    at random)."""
    R = random_attitudes(1, rng)[0]
    xy = rng.uniform([-0.5 * W, -0.5 * H], [0.5 * W, 0.5 * H], (300, 2))
    cam_v = np.column_stack([xy / 1200.0, np.ones(len(xy))])
    v = np.ascontiguousarray((cam_v / np.linalg.norm(cam_v, axis=1)[:, None]) @ R)
    ideal = np.vstack([xy[:80] + rng.normal(scale=4.0, size=(80, 2)),
                       rng.uniform([-W / 2, -H / 2], [W / 2, H / 2], (70, 2))])
    return R, v, ideal


def test_deep_verification_counts_agree():
    """Verification of 120 centroids against 240 stars (above the brute-force size, where
    the reference matches by KD-tree claims) counts the same matches in both backends, on
    crowded frames where mutual nearest neighbours would differ."""
    rng = np.random.default_rng(14)
    differs = 0
    for _ in range(20):
        R, v, ideal = _crowded_frame(rng)
        args = (ideal, 120, v, R, 1200.0, False, 0, 0.0, 0.0, W / 2, H / 2, 240, 8.0, 60.0)
        got, want = comp.verify_counts(*args), ref.verify_counts(*args)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])
        # (the projections differ in the last bits: compiled and numpy arithmetic)
        np.testing.assert_allclose(got[2], want[2], rtol=1e-9)
        assert got[3] == pytest.approx(want[3], rel=1e-12)
        mutual = comp._mutual_small(ideal[:120], comp.in_image(v, R, 1200.0, False, 0, 0.0,
                                                                0.0, W / 2, H / 2, 240)[1], 8.0)
        differs += not np.array_equal(mutual[0], want[1])
    assert differs  # the frames are crowded enough for the two matchings to differ


def test_key_directory_brackets_every_key(small_db):
    starts, shift = small_db.key_directory
    keys = small_db.pattern_keys.astype(np.uint64)
    assert starts[0] == 0 and starts[-1] == len(keys)
    assert np.all(np.diff(starts) >= 0)
    buckets = (keys >> np.uint64(shift)).astype(np.int64)
    rows = np.arange(len(keys))
    assert np.all((starts[buckets] <= rows) & (rows < starts[buckets + 1]))
    # a few patterns per bucket: a lookup searches a few rows, not the table
    assert len(keys) / 8 <= len(starts) - 1 <= len(keys) / 2


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_key_directory_of_many_keys_is_small(dtype):
    """A directory of 4-8 keys per bucket, built in chunks: with about one bucket per
    key, a 1-3 deg Gaia database's 70 million patterns took a 1.1 GB directory (2 GB
    while building it) and 5 s in every process that loaded the database -- inside
    the first solve's time-out with the reference backend, which timed out."""
    n, bins = 3_000_000, 50  # 50**5 keys: 29 bits
    rng = np.random.default_rng(5)
    sorted_keys = np.sort(rng.integers(0, bins ** 5, n).astype(dtype))
    starts, shift = keys.key_directory(sorted_keys, bins)
    # 3e6 / 8 = 375,000 buckets wanted: 2**19 = 524,288 of them, the 19 leading bits
    assert shift == 29 - 19 and len(starts) == 2 ** 19 + 1
    assert starts[0] == 0 and starts[-1] == n and np.all(np.diff(starts) >= 0)
    for k in (0, 1, n // 3, n - 1):  # spans chunks of the build
        b = int(sorted_keys[k] >> dtype(shift))
        assert starts[b] <= k < starts[b + 1]
    full = np.searchsorted(sorted_keys, np.arange(2 ** 19 + 1, dtype=np.uint64) << 10)
    assert np.array_equal(starts, full)


def test_prepare_builds_the_key_directory_for_every_backend(small_db):
    """The directory is one-time work that belongs outside the solve's clock, with the
    reference backend too (whose lost-in-space search takes it)."""
    small_db.__dict__.pop("key_directory", None)
    backends._PREPARED.discard(small_db)
    backends.prepare(ref, small_db)
    assert "key_directory" in small_db.__dict__


def test_key_filter_holds_every_key_and_few_others(small_db):
    """The compiled lookup's key filter (``keys.key_hash``): every database key passes it,
    so no candidate is lost, and about one random key in ``FILTER_BITS_PER_KEY`` does,
    so most lookups of patterns that match nothing end there."""
    words, bits = comp.key_filter(small_db.pattern_keys)
    assert comp.key_filter(small_db.pattern_keys)[0] is words  # built once per database

    def passes(k):
        h = keys.key_hash(np.asarray(k, dtype=np.uint64), bits)
        return (words[h >> np.uint64(6)] >> (h & np.uint64(63))) & np.uint64(1) == 1

    assert passes(small_db.pattern_keys).all()
    rng = np.random.default_rng(2)
    others = rng.integers(0, small_db.pattern_bins ** 5, 100_000, dtype=np.uint64)
    others = others[~np.isin(others, small_db.pattern_keys)]
    assert 0.0 < passes(others).mean() < 2.0 / keys.FILTER_BITS_PER_KEY


def _hypotheses(fields):
    """(centroids, true hypothesis) of each field."""
    for xy, R, cam, mirror in fields:
        yield xy, Hypothesis(R, cam.focal_length_px, mirror)


def _candidates(be, db, v_guess, combos, start, ends, f_guess, lo, hi, tol,
                hint=None, min_cos=-1.0):
    hint = np.zeros(0) if hint is None else hint
    return be.pattern_candidates(v_guess, combos, start, ends, 10 ** 6, db.pattern_bins, tol,
                                 db.pattern_keys, *db.key_directory, db.pattern_stars,
                                 db.star_xyz, hint, min_cos, f_guess, lo, hi)


def test_pattern_search_functions_match(small_db, fields):
    db = small_db
    tol = float(db.parameters["pattern_max_error"])
    combos = LIS._combos(12)
    n_cand = n_cut = 0
    for xy, R, cam, _ in fields:
        frame = _frame(xy, ref)
        f_guess = cam.focal_length_px * 1.01
        stars = ref.thin_pixels(frame.ideal[:100], 2.0, 12)
        if len(stars) < 12:
            continue
        v_guess = frame.vectors(f_guess, False, stars)
        # focal lengths of fields of view from 25 down to 8 degrees
        lo, hi = (0.5 * W / math.tan(math.radians(a) / 2) for a in (25.0, 8.0))
        whole = np.array([len(combos)])
        *slow, done_s = _candidates(ref, db, v_guess, combos, 0, whole, f_guess, lo, hi, tol)
        *fast, done = _candidates(comp, db, v_guess, combos, 0, whole, f_guess, lo, hi, tol)
        assert done == done_s == len(combos)
        # batch by batch: the same candidates, stopping at the first batch with any
        ends = np.array(LIS._batch_ends(12))
        # (each backend against its own whole search: the two differ in the last bit of
        # the focal lengths where the compiler contracts to fused multiply-adds)
        for be, whole_out in ((comp, fast), (ref, slow)):
            start, parts = 0, []
            while start < ends[-1]:
                *got, start = _candidates(be, db, v_guess, combos, start, ends, f_guess, lo,
                                          hi, tol)
                assert start in ends
                assert len(got[0]) > 0 or start == ends[-1]
                parts.append(got)
            for t in range(4):
                np.testing.assert_array_equal(np.concatenate([q[t] for q in parts]),
                                              whole_out[t])
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)
        # a position hint's mask: both backends keep exactly the candidates of allowed stars
        min_cos = math.cos(math.radians(12.0))
        # (the cosines summed as the backends sum them, not by the BLAS's dot, whose
        # order of sums its kernel for the processor picks)
        xyz = db.star_xyz[:, fast[1]]
        want = np.all(xyz[0] * R[2, 0] + xyz[1] * R[2, 1] + xyz[2] * R[2, 2] >= min_cos, axis=1)
        for be in (comp, ref):
            *cut, _ = _candidates(be, db, v_guess, combos, 0, whole, f_guess, lo, hi, tol,
                                  np.ascontiguousarray(R[2]), min_cos)
            for t in range(4):
                np.testing.assert_allclose(cut[t], fast[t][want], rtol=1e-12)
        n_cut += int(want.sum())
        n_cand += len(fast[0])
        ideal = frame.ideal[stars[fast[0]]]
        cv = db.star_vectors[fast[1]]
        parities = np.array([False, True])
        Rf, rf, pf = comp.pattern_attitudes(ideal, cv, fast[2], parities, 0)
        Rs, rs, ps = ref.pattern_attitudes(ideal, cv, fast[2], parities, 0)
        np.testing.assert_allclose(Rf, Rs, atol=1e-10)
        np.testing.assert_allclose(rf, rs, rtol=1e-6, atol=1e-12)
        np.testing.assert_array_equal(pf, ps)
    assert n_cand > 100
    # the true patterns stay and the false ones (a few hundred over the 30 fields,
    # all sky; the focal-length window has already removed most) go
    assert n_cut > 0 and n_cand - n_cut > 100


def test_verification_and_refinement_functions_match(small_db, fields):
    for xy, hyp in _hypotheses(fields):
        fast, slow = _frame(xy, comp), _frame(xy, ref)
        cat_f, cat_s = CatalogView(small_db, None, comp), CatalogView(small_db, None, ref)
        field = refine_field(slow, cat_s, hyp)
        rows_f, p_f = fast.in_image(field[1], hyp, 100)
        rows_s, p_s = slow.in_image(field[1], hyp, 100)
        np.testing.assert_array_equal(rows_f, rows_s)
        np.testing.assert_allclose(p_f, p_s, rtol=1e-12, atol=1e-9)
        radius = 0.01 * W
        img = slow.ideal[:40]
        (i_f, j_f, d_f), (i_s, j_s, d_s) = (comp.mutual_matches(img, p_s, radius),
                                            ref.mutual_matches(img, p_s, radius))
        np.testing.assert_array_equal(i_f, i_s)
        np.testing.assert_array_equal(j_f, j_s)
        # (the reference's distances expand |c - m|^2 at ~1e6 px^2: ~1e-10 px^2 of
        # rounding, which the BLAS's order of sums moves, 2e-9 px of a distance of 0.03)
        np.testing.assert_allclose(d_f, d_s, rtol=1e-9, atol=1e-7)
        assert comp.crowding(img, p_s, radius, 0.1 * W) == pytest.approx(
            ref.crowding(img, p_s, radius, 0.1 * W), rel=1e-12)
        for a, b in zip(verify(fast, cat_f, hyp, radius, 4, field),
                        verify(slow, cat_s, hyp, radius, 4, field), strict=True):
            assert a == pytest.approx(b, rel=1e-9)
        # a perturbed attitude and focal length, refined both ways
        dR = wahba_rotation(np.eye(3) + 1e-4 * np.array([[0, 1, 0], [-1, 0, 1], [0, -1, 0]]),
                            np.eye(3))
        start = Hypothesis(dR @ hyp.R, hyp.f * 1.003, hyp.parity)
        ref_f = refine(fast, cat_f, start, radius, 2, field=field)
        ref_s = refine(slow, cat_s, start, radius, 2, field=field)
        np.testing.assert_array_equal(ref_f.img_idx, ref_s.img_idx)
        np.testing.assert_array_equal(ref_f.cat_idx, ref_s.cat_idx)
        np.testing.assert_allclose(ref_f.hyp.R, ref_s.hyp.R, atol=1e-11)
        assert ref_f.hyp.f == pytest.approx(ref_s.hyp.f, rel=1e-10)
        np.testing.assert_allclose(ref_f.errors_rad, ref_s.errors_rad, rtol=1e-5, atol=1e-12)


def test_fine_counts_match_and_count_by_hand():
    """The finer-radius counts agree between the backends on random matches (centroids on
    the edge of an anchor's exclusion disc included), and on a hand-made case."""
    rng = np.random.default_rng(5)
    radii = np.array([10.0 / 3.0, 10.0 / 9.0])
    for _ in range(50):
        n = int(rng.integers(4, 80))
        ideal = rng.uniform(-500.0, 500.0, (n, 2))
        anchors = np.ascontiguousarray(ideal[rng.choice(n, 4, replace=False)])
        # a centroid exactly rho / slack from an anchor counts as far
        ideal[0] = anchors[0] + [radii[0] / 0.05, 0.0]
        rows = np.sort(rng.choice(n, int(rng.integers(0, n)), replace=False))
        dist = rng.uniform(0.0, 10.0, len(rows))
        n_img = int(rng.integers(1, n + 1))
        rows = rows[rows < n_img]
        dist = dist[: len(rows)]
        for got, want in zip(comp.fine_counts(ideal, n_img, anchors, rows, dist, radii, 0.05),
                             ref.fine_counts(ideal, n_img, anchors, rows, dist, radii, 0.05),
                             strict=True):
            np.testing.assert_array_equal(got, want)
    ideal = np.array([[0.0, 0.0], [30.0, 0.0], [100.0, 0.0], [0.0, 10.0]])
    anchors = np.array([[0.0, 0.0]])
    rows, dist = np.array([1, 2, 3]), np.array([0.5, 2.0, 0.5])
    for be in (comp, ref):
        k, n_far = be.fine_counts(ideal, 4, anchors, rows, dist, np.array([1.0, 5.0]), 0.05)
        # rho 1: centroids >= 20 px away are 1 and 2; of the matches, 1 lies within 1 px
        # rho 5: >= 100 px away only 2, whose match (2 px) is within 5
        assert list(k) == [1, 1] and list(n_far) == [2, 1]


def test_pattern_attitude_finds_the_attitude_and_matches_the_batch():
    """One candidate's attitude: a pattern imaged at a known attitude (plain and mirrored,
    pinhole and fisheye) gives that attitude back with its parity, both backends alike, and
    the compiled kernel gives the batch form's row to the bit (the solver takes the first
    candidate from one, the rest from the other)."""
    rng = np.random.default_rng(31)
    f = 1200.0
    parities = np.array([False, True])
    for trial in range(12):
        R_true = random_attitudes(1, rng)[0]
        proj = (0, PROJECTIONS.index("equidistant"))[trial % 2]
        mirror = bool(trial % 3 == 0)
        k = 3
        xy = rng.uniform(-400.0, 400.0, (k, 4, 2))
        v_cam = plane_to_vectors(xy[..., 0] / f, xy[..., 1] / f, proj)
        cat4 = np.ascontiguousarray(v_cam @ R_true)  # ICRS vectors of the stars
        ideal4 = xy * ([-1.0, 1.0] if mirror else [1.0, 1.0])
        f_est = np.full(k, f)
        R_b, res_b, par_b = comp.pattern_attitudes(ideal4, cat4, f_est, parities, proj)
        for c in range(k):
            got = comp.pattern_attitude(ideal4, cat4, c, f_est[c], parities, proj)
            want = ref.pattern_attitude(ideal4, cat4, c, f_est[c], parities, proj)
            np.testing.assert_array_equal(got[0], R_b[c])
            assert (got[1], got[2]) == (res_b[c], par_b[c])
            assert bool(got[2]) == bool(want[2]) == mirror
            np.testing.assert_allclose(got[0], want[0], atol=1e-10)
            assert got[1] == pytest.approx(want[1], rel=1e-6, abs=1e-12)
            # the stars imaged exactly: the attitude to rounding, a residual of none
            np.testing.assert_allclose(got[0], R_true, atol=1e-9)
            assert got[1] < 1e-9
        # with one parity allowed, that one is taken, however badly it fits
        got = comp.pattern_attitude(ideal4, cat4, 0, f, np.array([not mirror]), proj)
        assert bool(got[2]) == (not mirror) and got[1] > 1e-3


def test_verify_tail_counts_agree_and_count_by_hand():
    """The one-call verification counts agree between the backends, with and without the
    finer radii, on crowded frames (above the brute-force size too), and count a hand-made
    frame: four stars matched, one centroid and one star left over."""
    rng = np.random.default_rng(21)
    radii = np.array([8.0 / 3.0, 8.0 / 9.0])
    for trial in range(20):
        R, v, ideal = _crowded_frame(rng)
        anchors = np.ascontiguousarray(ideal[rng.choice(80, 4, replace=False)])
        n_img = 120 if trial % 2 else 60
        for fine in (radii, np.zeros(0)):
            args = (ideal, n_img, v, R, 1200.0, bool(trial % 3 == 0), 0, 0.0, 0.0, W / 2,
                    H / 2, 2 * n_img, 8.0, 60.0, anchors, fine, 0.05)
            got, want = comp.verify_tail_counts(*args), ref.verify_tail_counts(*args)
            assert got[:2] == want[:2]
            assert got[2] == pytest.approx(want[2], rel=1e-12)
            for a, b in zip(got[3:], want[3:], strict=True):
                np.testing.assert_array_equal(a, b)
                assert len(a) == len(fine)
    f = 1000.0
    stars = np.array([[0.0, 0.0], [30.0, 0.0], [100.0, 0.0], [0.0, 10.0], [300.0, 200.0]])
    v = np.column_stack([stars / f, np.ones(len(stars))])
    v /= np.linalg.norm(v, axis=1)[:, None]
    ideal = np.array([[0.0, 0.0], [30.5, 0.0], [100.0, 2.0], [0.0, 10.5], [-400.0, -300.0]])
    anchors = np.array([[0.0, 0.0]])
    for be in (comp, ref):
        base = (ideal, 5, v, np.eye(3), f, False, 0, 0.0, 0.0, W / 2, H / 2, 10, 5.0, 50.0,
                anchors)
        n_cat, n, _, k, n_far = be.verify_tail_counts(*base, np.array([1.0, 5.0]), 0.05)
        # rho 1: centroids >= 20 px from the anchor are rows 1, 2 and 4; of the matches,
        # row 1 (0.5 px) lies within 1 px; rho 5: >= 100 px, rows 2 and 4, row 2 (2 px)
        assert (n_cat, n) == (5, 4)
        assert list(k) == [1, 1] and list(n_far) == [3, 2]
        n_cat, n, _, k, n_far = be.verify_tail_counts(*base, np.zeros(0), 0.05)
        assert (n_cat, n, len(k), len(n_far)) == (5, 4, 0, 0)
        # the camera turned away from the stars: none imaged, nothing counted
        away = np.diag([1.0, -1.0, -1.0])
        n_cat, n, crowd, k, n_far = be.verify_tail_counts(
            ideal, 5, v, away, f, False, 0, 0.0, 0.0, W / 2, H / 2, 10, 5.0, 50.0, anchors,
            np.array([1.0, 5.0]), 0.05)
        assert (n_cat, n, crowd, len(k), len(n_far)) == (0, 0, 0.0, 0, 0)


def test_solution_arrays_match_and_order_by_hand():
    """A result's arrays: the matches in increasing centroid row, with their positions,
    stars, residuals in arc seconds, the 90th percentile and largest residual, and the
    attitude covariance of the matched centroids (each backend's own); both backends alike,
    to the bit but for the covariance (an adjugate against numpy's inverse: to rounding)."""
    rng = np.random.default_rng(8)
    ideal = rng.uniform(-400.0, 400.0, (7, 2))
    xy = ideal + 0.25
    img_idx = np.array([5, 0, 3, 1], dtype=np.intp)
    cat_idx = np.array([2, 0, 1, 3], dtype=np.intp)
    err = np.array([1e-5, 3e-6, 2e-5, 5e-6])
    ra, dec = np.array([10.0, 11.0, 12.0, 13.0]), np.array([-1.0, -2.0, -3.0, -4.0])
    arcsec = 180.0 * 3600.0 / math.pi
    outs = [be.solution_arrays(ideal, xy, img_idx, cat_idx, err, ra, dec, 1000.0, True, 0, 2e-5)
            for be in (comp, ref)]
    for got, want in zip(outs[0][:-1], outs[1][:-1], strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(outs[0][-1], outs[1][-1], rtol=1e-12)
    for be, out in zip((comp, ref), outs, strict=True):
        np.testing.assert_array_equal(
            out[-1], be.attitude_covariance(ideal[[0, 1, 3, 5]], 1000.0, True, 0, 2e-5))
    rows, stars, m_xy, radec, res, p90, largest, cov = outs[1]
    assert list(rows) == [0, 1, 3, 5] and list(stars) == [0, 3, 1, 2]
    np.testing.assert_array_equal(m_xy, xy[[0, 1, 3, 5]])
    np.testing.assert_array_equal(radec, [[10.0, -1.0], [13.0, -4.0], [11.0, -2.0], [12.0, -3.0]])
    np.testing.assert_allclose(res, np.array([3e-6, 5e-6, 2e-5, 1e-5]) * arcsec, rtol=1e-15)
    assert p90 == pytest.approx(1.7e-5 * arcsec, rel=1e-12)  # 0.7 of the way from 1e-5 to 2e-5
    assert p90 == pytest.approx(np.percentile(err * arcsec, 90.0), rel=1e-12)
    assert largest == pytest.approx(2e-5 * arcsec, rel=1e-15)


@pytest.mark.parametrize("proj", range(len(PROJECTIONS)))
def test_fit_functions_match_on_outliers(proj):
    """fit_pairs / trimmed_fit with wrong pairs, a fixed camera and a failing focal fit,
    for every lens projection (stars up to 62 degrees off axis for the fisheyes)."""
    rng = np.random.default_rng(3)
    f = 2000.0 if proj == 0 else 400.0
    for k in range(40):
        n = int(rng.integers(6, 40))
        ideal = rng.uniform(-500, 500, size=(n, 2)) * (1.0 if proj == 0 else 0.5)
        v = plane_to_vectors(ideal[:, 0] / f, ideal[:, 1] / f, proj)
        R = wahba_rotation(rng.normal(size=(3, 3)), np.eye(3))
        v_cat = v @ R  # v = R v_cat
        v_cat[: n // 5] = np.roll(v_cat[: n // 5], 1, axis=0)  # some wrong pairs
        parity = bool(k % 2)
        if parity:
            ideal = ideal * [-1.0, 1.0]
        h = min(n, max(5, math.ceil(0.6 * n)))
        for fixed in (False, True):
            got = comp.trimmed_fit(ideal, v_cat, f * 1.01, parity, proj, fixed, h, 8)
            want = ref.trimmed_fit(ideal, v_cat, f * 1.01, parity, proj, fixed, h, 8)
            assert got[7] and want[7]
            for (Rg, fg, eg), (Rw, fw, ew) in zip((got[0:3], got[3:6]), (want[0:3], want[3:6]),
                                                  strict=True):
                np.testing.assert_allclose(Rg, Rw, atol=1e-11)
                assert fg == pytest.approx(fw, rel=1e-12)
                np.testing.assert_allclose(eg, ew, rtol=1e-6, atol=1e-13)
            np.testing.assert_array_equal(got[6], want[6])
            np.testing.assert_allclose(comp.attitude_covariance(ideal, f, parity, proj, 1e-5),
                                       ref.attitude_covariance(ideal, f, parity, proj, 1e-5),
                                       rtol=1e-8)
            np.testing.assert_allclose(comp.unit_vectors(ideal, f, parity, proj),
                                       ref.unit_vectors(ideal, f, parity, proj), atol=1e-14)
    # a focal fit that cannot succeed (catalog stars all round the sky, so some end up
    # behind the camera) fails in both
    ideal = rng.uniform(-500, 500, size=(20, 2))
    v_cat = rng.normal(size=(20, 3))
    v_cat /= np.linalg.norm(v_cat, axis=1)[:, None]
    if proj in (0, 4):  # the fisheyes image the whole sphere (or nearly)
        assert not comp.trimmed_fit(ideal, v_cat, f, False, proj, False, 12, 8)[7]
        assert not ref.trimmed_fit(ideal, v_cat, f, False, proj, False, 12, 8)[7]
    # chord helper
    for c in (-1.0, 0.0, 0.3, 2.0, 3.0):
        assert comp._chord_to_angle(c) == pytest.approx(float(chord_to_angle(c)))


def test_kernel_sources_are_the_files_of_the_kernels():
    """The warm marker covers exactly the files numba caches the kernels by."""
    from pathlib import Path

    files = {Path(k.py_func.__code__.co_filename).resolve()
             for k in backends.compiled_functions().values()}
    assert files == set(backends.KERNEL_SOURCES)


def _fresh(code: str, cache, python: str | None = None, cwd=None) -> str:
    from skysolve.solver.tests.warmprobe import run_python

    return run_python(code, cache, python, cwd)


def test_auto_takes_the_kernels_only_once_they_are_compiled(tmp_path):
    """Without the warm marker 'auto' is the numpy backend (and numba is not even
    imported); with a marker for the current sources, the compiled one; a marker for
    other sources (an edited file, another numba) does not count."""
    import json

    from skysolve import _jit

    code = ("import sys\nfrom skysolve.solver import backends\n"
            "print(backends.select('auto').NAME, 'numba' in sys.modules)")
    assert _fresh(code, tmp_path) == "reference False"
    _fresh("from skysolve import _jit\nfrom skysolve.solver import backends\n"
           "_jit.mark_warm(backends.WARM_SOURCES)", tmp_path)
    assert _fresh(code, tmp_path).startswith("compiled")
    marker = next(tmp_path.glob("kernels-warm-*.json"))
    stamp = json.loads(marker.read_text())
    first = next(iter(stamp["files"]))
    stamp["files"][first][0] += 1  # the file changed since
    marker.write_text(json.dumps(stamp))
    assert _fresh(code, tmp_path).startswith("reference")
    assert not _jit.is_warm([tmp_path / "no such file.py"])


def test_the_marker_holds_for_the_interpreter_however_it_is_named(tmp_path):
    """One interpreter started by another spelling of its path (``bin/../bin/python``,
    as ``cd benchmarks && ../.venv/bin/python`` gives) finds the marker another left:
    the spelling once made every other process take the numpy backend (10x slower
    solves) and compile again in the background."""
    import os
    import sys

    code = ("import sys\nfrom skysolve.solver import backends\n"
            "print(backends.select('auto').NAME, sys.executable)")
    _fresh("from skysolve import _jit\nfrom skysolve.solver import backends\n"
           "_jit.mark_warm(backends.WARM_SOURCES)", tmp_path)
    bindir, name = os.path.split(sys.executable)
    other = os.path.join("..", os.path.basename(bindir), name)  # (run from bindir)
    backend, executable = _fresh(code, tmp_path, other, cwd=bindir).split(" ", 1)
    assert executable == os.path.join(bindir, other)  # (the spelling reached the process)
    assert backend == "compiled"


@pytest.mark.slow
def test_after_warm_up_a_new_process_compiles_nothing(tmp_path, request):
    """warm_up() into an empty numba cache; then a new process's first solve, on a
    database loaded and memory-mapped, finds every kernel in the cache. A fresh
    checkout's test session did that warm-up and probe before its first test; otherwise
    the test warms up a cache of its own."""
    import os

    from skysolve.solver.tests import warmprobe

    probe = os.environ.get(warmprobe.SESSION_PROBE_ENV_VAR)
    if probe is None:
        cache = tmp_path / "numba"
        assert _fresh("from skysolve.solver.warmup import warm_up\nprint(warm_up())",
                      cache) == "True"
        probe = warmprobe.first_solve(request.getfixturevalue("small_db"), tmp_path, cache)
    assert probe == "compiled 0 True"


def test_the_selected_order_statistic_is_the_sorted_arrays():
    """The ratio sensitivity's percentile is selected (``_kth_smallest``), not sorted out:
    at every rank the value of the sorted prefix, with ties, infinities and the values
    past the prefix left out."""
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 7, 70, 141):
        for kind in ("distinct", "ties", "inf"):
            a = rng.normal(size=n + 5)
            if kind == "ties":
                a = np.round(a * 2.0) / 2.0
            elif kind == "inf":
                a[rng.integers(0, n, 2)] = np.inf
            want = np.sort(a[:n])
            for k in range(n):
                work = a.copy()
                assert comp._kth_smallest(work, n, k) == want[k]
                assert np.array_equal(np.sort(work[:n]), want)  # (reordered, not lost)
                assert np.array_equal(work[n:], a[n:])


@pytest.mark.parametrize("proj", range(len(PROJECTIONS)))
def test_ratio_sensitivity_and_focal_windows_agree(proj):
    """Both backends measure the same pattern sensitivities (NaN where a field is too
    wide for the projection) and so tile a focal-length range into the same windows."""
    from skysolve.solver.focal import _probe, focal_windows

    rng = np.random.default_rng(proj)
    ideal = rng.uniform(-500.0, 500.0, (8, 2))
    f = np.geomspace(150.0, 5000.0, 40)
    probe = _probe(8)
    got = comp.ratio_sensitivity(ideal, proj, f, probe, 1e-4, 50.0)
    want = ref.ratio_sensitivity(ideal, proj, f, probe, 1e-4, 50.0)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert np.isfinite(want[-1]) and want[-1] > 0
    if PROJECTIONS[proj] == "orthographic":
        assert np.isnan(want[0])  # at f = 150 px the orthographic lens images 150 px at most
    fast = focal_windows(ideal, proj, 150.0, 5000.0, 0.001, 800.0, comp)
    slow = focal_windows(ideal, proj, 150.0, 5000.0, 0.001, 800.0, ref)
    assert len(fast) == len(slow) > 1
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose([a.lo, a.centre, a.hi], [b.lo, b.centre, b.hi], rtol=1e-9)


def test_a_background_compile_is_reaped_when_it_ends(monkeypatch):
    """The background compile of a long-running process (the service, a pool's worker)
    is waited for when it ends, not left as a zombie process until the parent exits."""
    import time

    psutil = pytest.importorskip("psutil")
    from skysolve import _jit

    monkeypatch.delenv("SKYSOLVE_NO_BACKGROUND_COMPILE", raising=False)
    monkeypatch.setattr(_jit, "_BACKGROUND", set())
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    # a module run the same way that ends at once: json.tool on an empty input
    assert _jit.warm_in_background("json.tool")
    child = next(p for p in me.children() if p.pid not in before)
    deadline = time.monotonic() + 30.0
    while psutil.pid_exists(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(child.pid)  # a zombie still has its pid


def test_offset_pairs_agree_and_pick_the_densest_block():
    """Tracking's offset vote: both backends give the same pairs, in the same order, on
    random frames whose stars share an offset (some turned by a roll, false detections
    and copies among the centroids, so that centroids and stars are claimed twice), and
    the pairs of a hand-made pile."""
    rng = np.random.default_rng(21)
    for trial in range(200):
        m = int(rng.integers(0, 60))
        p = rng.uniform(-500.0, 500.0, (m, 2))
        roll = float(rng.uniform(-0.05, 0.05))
        c, s = math.cos(roll), math.sin(roll)
        turned = np.column_stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]])
        img = turned[rng.permutation(m)[: int(rng.integers(0, m + 1))]]
        img = img + rng.uniform(-40.0, 40.0, 2) + rng.normal(0.0, 0.5, img.shape)
        false = rng.uniform(-500.0, 500.0, (int(rng.integers(0, 40)), 2))
        img = np.vstack([img, img[:3] + 1.0, false])
        img = np.ascontiguousarray(img[rng.permutation(len(img))])
        search, radius = float(rng.choice([15.0, 60.0, 150.0])), float(rng.choice([2.0, 10.0]))
        cell = float(rng.choice([0.5, 2.0])) * radius
        rolls = np.array([0.0]) if trial % 2 else np.linspace(-0.06, 0.06, 13)
        args = (img, p, search, cell, int(2.0 * search / cell) + 2, np.cos(rolls), np.sin(rolls))
        got, want = comp.offset_pairs(*args), ref.offset_pairs(*args)
        for a, b in zip(got, want, strict=True):
            assert a.dtype == b.dtype == np.intp
            np.testing.assert_array_equal(a, b)
    # three stars shifted by (20, 5); a fourth centroid as close to star 2 as its own
    # centroid (the closer kept), a fifth alone
    p = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [300.0, 300.0]])
    img = np.array([[20.0, 5.0], [120.0, 5.0], [20.0, 105.0], [21.0, 105.5], [-300.0, 0.0]])
    for be in (comp, ref):
        ii, jj = be.offset_pairs(img, p, 50.0, 20.0, 7, np.ones(1), np.zeros(1))
        assert sorted(zip(ii.tolist(), jj.tolist(), strict=True)) == [(0, 0), (1, 1), (2, 2)]
        ii, jj = be.offset_pairs(img[:2], p, 50.0, 20.0, 7, np.ones(1), np.zeros(1))
        assert len(ii) == len(jj) == 0  # fewer than three candidate pairs


def test_compiled_floor_division_is_numpys():
    """The compiled offset cells use numpy's floor division, which differs from
    ``floor(a / b)`` where the quotient rounds up to a whole number (1 // 0.1 is 9)."""
    assert comp._floor_divide(1.0, 0.1) == 9.0 == np.floor_divide(1.0, 0.1)
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(-300.0, 300.0, 2000), np.arange(-30, 31) * 0.1,
                        [0.0, -0.0, 1e-300, -1e-300, 1e12 + 0.5, -3e15]])
    for b in (0.1, 1.0, 20.0, 3.7, 1.0 / 3.0):
        # and next to whole multiples of b, both sides
        near = (np.arange(-40, 41) * b)[:, None] * (1.0 + np.array([-4e-16, 0.0, 4e-16]))
        a = np.concatenate([a, near.ravel(), np.nextafter(near.ravel(), np.inf)])
        want = np.floor_divide(a, b)
        got = np.array([comp._floor_divide(float(x), b) for x in a])
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))


def _skew(u):
    """``[u]_x``: the matrices of ``w -> u x w``, ``(n, 3, 3)``."""
    z = np.zeros(len(u))
    return np.stack([np.stack([z, -u[:, 2], u[:, 1]], 1), np.stack([u[:, 2], z, -u[:, 0]], 1),
                     np.stack([-u[:, 1], u[:, 0], z], 1)], 1)


def test_fit_shares_agree_and_are_what_leaving_a_match_out_takes():
    """Tracking's leave-one-out shares: the same bits from both backends, and each the
    square root of what leaving its match out takes from the (linearised) rotation fit's
    sum of squared residuals, refitted by least squares without it."""
    rng = np.random.default_rng(8)
    for n in (3, 4, 7, 25):
        u = rng.normal(0.0, 0.1, (n, 3)) + [0.0, 0.0, 1.0]
        u /= np.linalg.norm(u, axis=1)[:, None]
        a = _skew(u).reshape(3 * n, 3)
        raw = rng.normal(0.0, 1e-4, 3 * n)
        raw[:3] += 2e-3  # a chance match
        w = np.linalg.lstsq(a, -raw, rcond=None)[0]
        r = (raw + a @ w).reshape(n, 3)  # the residuals of the best turn
        v = u + r
        normal = (n - 1.0) * np.eye(3) - u.T @ u
        got, want = comp.fit_shares(v, u, normal, 1000.0), ref.fit_shares(v, u, normal, 1000.0)
        np.testing.assert_array_equal(got, want)
        whole = float(r.ravel() @ r.ravel())
        for k in range(n):
            keep = np.repeat(np.arange(n) != k, 3)
            w_k = np.linalg.lstsq(a[keep], -r.ravel()[keep], rcond=None)[0]
            left = r.ravel()[keep] + a[keep] @ w_k
            share = math.sqrt(max(0.0, whole - float(left @ left))) * 1000.0
            assert got[k] == pytest.approx(share, rel=1e-6, abs=1e-9)



@pytest.mark.parametrize("be", [comp, ref], ids=["compiled", "reference"])
def test_refinement_clips_at_the_gaussian_scale_of_the_core(be):
    """The refinement drops a pair further than ``sigma_clip`` (3) times the core's
    Gaussian scale, 1.4826 x the median residual of its best 60 % (~0.8 px here, where 28
    centroids sit 1 px from their stars in random directions): ~3.6 px. A pair 3 px off
    is kept (clipping at 3 medians, ~2.4 px, would drop it), one 4.6 px off and one
    8 px off (both within the 12 px match radius) are dropped."""
    rng = np.random.default_rng(21)
    f, n = 1000.0, 30
    xy = rng.uniform([-0.45 * W, -0.45 * H], [0.45 * W, 0.45 * H], (n, 2))
    cam_v = np.column_stack([xy / f, np.ones(n)])
    v = np.ascontiguousarray(cam_v / np.linalg.norm(cam_v, axis=1)[:, None])
    angle = rng.uniform(0.0, 2.0 * math.pi, n)
    unit = np.column_stack([np.cos(angle), np.sin(angle)])
    for off, kept in ((3.0, True), (4.6, False)):
        d = np.ones(n)
        d[0], d[1] = off, 8.0
        ideal = np.ascontiguousarray(xy + d[:, None] * unit)
        ok, _, _, i, j, err = be.refine(ideal, v, np.eye(3), f, False, 0, True, 0.0, 0.0,
                                        W / 2, H / 2, 12.0, 2, 3.0)
        assert ok
        assert (0 in i) == kept, off
        assert 1 not in i
        assert sorted(set(range(2, n))) == sorted(set(i) - {0})
        np.testing.assert_array_equal(i, j)  # (catalog row k is centroid k's star)


def test_refinement_about_an_optical_centre_off_the_image_centre_matches(small_db, fields):
    """Both backends refine a field about an optical centre told 300 px off the image's
    (``converged_fit`` at the end of the passes) to the same answer; the numpy twin and
    the kernel also agree on ``converged_fit``'s fallback when the fit cannot improve."""
    for xy, hyp in list(_hypotheses(fields))[:4]:
        # the same sky seen about another optical centre: the ideal offsets shift by it
        frames = [make_frame(np.ascontiguousarray(xy, dtype=np.float64) + [-300.0, 200.0], W,
                             H, None, "pinhole", be, crpix=(-300.0, 200.0))
                  for be in (comp, ref)]
        cats = [CatalogView(small_db, None, be) for be in (comp, ref)]
        start = Hypothesis(hyp.R, hyp.f * 1.003, hyp.parity)
        field = refine_field(frames[1], cats[1], start)
        got, want = (refine(fr, cat, start, 0.01 * W, 2, field=field)
                     for fr, cat in zip(frames, cats, strict=True))
        np.testing.assert_array_equal(got.img_idx, want.img_idx)
        np.testing.assert_allclose(got.hyp.R, want.hyp.R, atol=1e-11)
        assert got.hyp.f == pytest.approx(want.hyp.f, rel=1e-10)
        np.testing.assert_allclose(got.errors_rad, want.errors_rad, rtol=1e-5, atol=1e-12)
    ideal = np.column_stack([np.linspace(100.0, 400.0, 8), np.linspace(-200.0, 200.0, 8)])
    v = np.column_stack([ideal / 1000.0, np.ones(8)])
    v /= np.linalg.norm(v, axis=1)[:, None]
    use = np.arange(8, dtype=np.intp)
    for be in (comp, ref):  # pairs of a flipped image: no fit of them improves, kept as is
        R, f, err, _ = be.fit_pairs(ideal, v[::-1].copy(), use, 1000.0, False, 0, False)
        out = be.converged_fit(ideal, v[::-1].copy(), use, R, f, 0.9 * f, err, False, 0)
        assert out[1] > 0 and np.all(np.isfinite(out[0]))
