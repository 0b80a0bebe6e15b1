"""False-match safety: ``match_threshold`` really bounds wrong answers.

Every trial here either cannot have a right answer (random centroids, a field
of view outside the allowed range, a mirrored image with parity fixed, a
database built for other fields of view) or has a known true attitude (real
stars mixed with as many false ones). A ``SolveResult`` on the first kind, or
one far from the truth on the second, is a wrong solve. The suite runs about
2,000 trials and requires zero wrong solves; with zero out of N the 95 % upper
bound of the per-frame false-positive rate is 3/N ("rule of three"), printed
beside ``match_threshold`` (run with ``-s`` to see it).
"""

from __future__ import annotations

import numpy as np
import pytest

import skysolve as ss
from skysolve.geometry import angle_between

W = H = 1024
THRESHOLD = 1e-5  # the documented default match_threshold
TIMEOUT_MS = 300


def report(case: str, wrong: int, n: int, statuses: dict[str, int]) -> None:
    bound = (3.0 if wrong == 0 else wrong + 2.0 * np.sqrt(wrong) + 2.0) / n
    print(f"\nFALSE-MATCH {case}: wrong {wrong}/{n} = {wrong / n:.2e} (95% upper bound "
          f"{bound:.1e}) with match_threshold {THRESHOLD:g}; statuses {statuses}")


def tally(statuses: dict[str, int], res) -> None:
    statuses[res.status] = statuses.get(res.status, 0) + 1


@pytest.fixture(scope="module")
def attitudes():
    return ss.random_attitudes(600, np.random.default_rng(20251125))


def test_random_centroids_never_solve(small_db):
    rng = np.random.default_rng(1)
    n, wrong, statuses = 1000, 0, {}
    for i in range(n):
        k = int(rng.integers(4, 11))
        xy = np.c_[rng.uniform(-W / 2, W / 2, (k, 2)), np.sort(rng.uniform(1, 1e4, k))[::-1]]
        fov = None if i % 3 == 0 else float(rng.uniform(10, 20))
        res = small_db.solve_from_centroids(xy, image_shape=(H, W), fov_estimate_deg=fov,
                                            solve_timeout_ms=TIMEOUT_MS)
        tally(statuses, res)
        wrong += bool(res)
    report("random centroids (4-10)", wrong, n, statuses)
    assert wrong == 0


def test_real_stars_among_false_stars_solve_right_or_not_at_all(small_db, hip_catalog,
                                                                attitudes):
    rng = np.random.default_rng(2)
    n, wrong, right, statuses = 200, 0, 0, {}
    misidentified = matches = 0
    for i in range(n):
        fov = float(rng.uniform(10, 20))
        cam = ss.CameraModel.from_fov(fov, W, H)
        sim = ss.simulate_centroids(hip_catalog, cam, attitudes[i], num_stars=16,
                                    num_false_stars=int(rng.integers(8, 30)), epoch_year=2025.0,
                                    centroid_noise_px=0.5, magnitude_noise=0.2, seed=rng)
        res = small_db.solve_from_centroids(sim.centroids, image_shape=(H, W),
                                            solve_timeout_ms=TIMEOUT_MS)
        tally(statuses, res)
        if res:
            off = np.degrees(angle_between(res.rotation_matrix_icrs_to_camera[2],
                                           attitudes[i][2]))
            ok = off < 0.05 and abs(res.fov_deg - fov) < 0.01 * fov
            wrong += not ok
            right += ok
            # a right attitude may still pair a false star that happens to fall on a
            # catalog star, or one star of a close double with its companion: counted
            ids = sim.catalog_ids[res.matched_centroids]
            misidentified += int(np.count_nonzero(ids != np.asarray(res.matched_catalog_ids)))
            matches += res.num_matches
    report(f"real + false stars ({right} right)", wrong, n, statuses)
    print(f"  misidentified matched centroids in right solves: {misidentified}/{matches}")
    assert wrong == 0
    assert right > n // 10  # the case is not vacuous: some of these frames do solve
    assert misidentified <= 0.02 * matches


def _ten_stars(catalog, cam, attitude, seed, mirror=False):
    """Centroids of the 10 brightest stars of a field, 0.3 px noise, at J2025."""
    return ss.simulate_centroids(catalog, cam, attitude, num_stars=10, epoch_year=2025.0,
                                 centroid_noise_px=0.3, mirror=mirror, seed=seed).centroids


def test_wrong_fov_never_solves(small_db, hip_catalog, attitudes):
    """A 10 deg field solved as 20 +- 2 deg cannot be right."""
    n, wrong, statuses = 300, 0, {}
    cam = ss.CameraModel.from_fov(10.0, W, H)
    for i in range(n):
        res = small_db.solve_from_centroids(_ten_stars(hip_catalog, cam, attitudes[i], i),
                                            image_shape=(H, W),
                                            fov_estimate_deg=20.0, fov_max_error_deg=2.0,
                                            solve_timeout_ms=TIMEOUT_MS)
        tally(statuses, res)
        wrong += bool(res)
    report("wrong FOV (10 deg solved as 20+-2)", wrong, n, statuses)
    assert wrong == 0
    # control: the same frames with the right estimate do solve
    good = sum(bool(small_db.solve_from_centroids(
        _ten_stars(hip_catalog, cam, attitudes[i], i), image_shape=(H, W),
        fov_estimate_deg=10.0)) for i in range(20))
    assert good >= 15


def test_mirrored_image_with_parity_fixed_never_solves(small_db, hip_catalog, attitudes):
    rng = np.random.default_rng(4)
    n, wrong, statuses = 300, 0, {}
    for i in range(n):
        cam = ss.CameraModel.from_fov(float(rng.uniform(10, 20)), W, H)  # parity_flip=False
        res = small_db.solve_from_centroids(_ten_stars(hip_catalog, cam, attitudes[i], i,
                                                       mirror=True), camera_model=cam,
                                            solve_timeout_ms=TIMEOUT_MS)
        tally(statuses, res)
        wrong += bool(res)
    report("mirrored image, parity_flip=False", wrong, n, statuses)
    assert wrong == 0
    # control: with parity free the mirrored frames solve, flagged as mirrored
    res = [small_db.solve_from_centroids(
        ss.simulate_centroids(hip_catalog, ss.CameraModel.from_fov(14.0, W, H), attitudes[i],
                              num_stars=12, epoch_year=2025.0, mirror=True).centroids,
        image_shape=(H, W), fov_estimate_deg=14.0) for i in range(10)]
    assert sum(bool(r) and r.parity_flip for r in res) >= 8


def test_database_for_other_fov_never_solves(hip_catalog, attitudes):
    """A 30-40 deg database on a 10 deg field: nothing it can match is right."""
    db = ss.SolverDatabase.generate_from_hipparcos(
        max_fov_deg=40.0, min_fov_deg=30.0, pattern_max_error=0.005,
        patterns_per_lattice_field=50, lattice_field_oversampling=100,
        verification_stars_per_fov=150, progress=False)
    n, wrong, statuses = 300, 0, {}
    cam = ss.CameraModel.from_fov(10.0, W, H)
    for i in range(n):
        res = db.solve_from_centroids(_ten_stars(hip_catalog, cam, attitudes[i], i),
                                      image_shape=(H, W),
                                      fov_estimate_deg=None if i % 2 else 10.0,
                                      solve_timeout_ms=TIMEOUT_MS)
        tally(statuses, res)
        if res:  # only a right answer (10 deg, right pointing) would be acceptable
            off = np.degrees(angle_between(res.rotation_matrix_icrs_to_camera[2],
                                           attitudes[i][2]))
            wrong += not (off < 0.05 and abs(res.fov_deg - 10.0) < 0.1)
    report("30-40 deg database on a 10 deg field", wrong, n, statuses)
    assert wrong == 0


# Frames of `python -m skysolve.soak --seed 2` (100,000 frames) that solved wrong on
# the 10-20 deg Hipparcos database: attitudes 15-90 px off at the corners and fields
# of view 1-9 % off, with probabilities 1e-6..1e-12. Ten of the eleven match most of
# the Pleiades (HIP 17702, 17847, 17573, ...) plus one or two distant stars that are
# not the ones seen: a compact cluster fixes the position but not the roll or scale,
# yet each of its stars counts as independent evidence in the false-positive
# probability. Frame 88567 is 11 right matches pulled off by 3 wrong edge matches
# within the 10 px match radius (the refit is not robust to them).
SOAK_SEED_2_WRONG = [17421, 24642, 26048, 40742, 69985, 82278, 84350, 87268, 88567, 98357,
                     99134]


def test_soak_near_misses_are_not_reported_as_solved(small_db, hip_catalog):
    from robustness import soak

    wrong = []
    for i in SOAK_SEED_2_WRONG:
        f = soak.frame(hip_catalog, 2, i, small_db.min_fov_deg, small_db.max_fov_deg)
        res = small_db.solve_from_centroids(f["centroids"], solve_timeout_ms=TIMEOUT_MS,
                                            **f["solve_kwargs"])
        if res:
            err = soak._attitude_error_px(res.rotation_matrix_icrs_to_camera, f["rotation"],
                                          f["fov_deg"], W, H)
            if err > soak.RIGHT_ANGLE_PX or abs(res.fov_deg / f["fov_deg"] - 1) > 0.01:
                wrong.append((i, round(err, 1)))
    assert wrong == []
