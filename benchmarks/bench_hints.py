"""Position hints: how much faster a hinted lost-in-space solve is, and that a missed cone fails.

skysolve against itself, on bench_solve's small star-tracker fields (1024x768,
FOV 10-20 deg, the brightest 30-60 Gaia stars, 0.3 px noise) and its small
10-20 deg Gaia database. Each field is solved without a hint and with a
2 deg position hint whose centre lies uniformly within 2 deg of the true
boresight (``position_radius_deg=2``), otherwise with identical arguments,
taking turns call by call (3 repeats each, median per field; untimed 1 ms
pause before each call and the garbage collector paused, as in bench_solve).

Speed rows (``ratio`` = hinted / unhinted median CPU time; below 1 the hint
is faster; ``mean_ratio`` the same for the mean, which the slow fields decide):

* a. case a of bench_solve: FOV estimate within 2 %, allowed error 5 %;
* b. the same fields with no scale at all (the database's whole range);
* c. hard fields (bench_solve's case d: 20 % of the stars dropped, 20 % false
  stars at random brightness ranks, every third field mirrored), FOV estimate.

Each speed row also says whether the answers are the same: the largest boresight
difference between the hinted and unhinted solves of a field and the number of
fields whose matched catalog stars differ.

Tracking rows (``attitude_hint``, skysolve against tetra3rs, same fields and
database stars, FOV estimate as case a): each field's true attitude turned by a
random rotation of half the stated uncertainty (0.1, 1 and 3 deg), ``strict_hint``
so that neither falls back to the lost-in-space search; median CPU time per solve
(``ratio`` = skysolve / tetra3rs), fields solved right (within 0.1 deg) and wrong.

Miss row: ``N`` fields (1,000 in a full run) each given a 2 deg hint whose centre
lies *outside* the true boresight's 2 deg cone -- half just outside (2-12 deg
away, so that the field overlaps the cone's reach), half anywhere on the sky --
with the case a arguments. Every solve must fail (``*_solved`` counts solves
whose boresight is within 0.1 deg of the truth but outside the cone, which the
solver refuses; ``*_wrong`` counts any other answer).
"""

from __future__ import annotations

import gc
import math
import sys
import time

import _solve_dbs
import bench_solve
import numpy as np

RADIUS_DEG = 2.0
REPEAT = 3
PAUSE_S = 0.001


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _offset(v: np.ndarray, deg: float, rng) -> np.ndarray:
    """The unit vector ``deg`` degrees from ``v`` in a random direction."""
    a = np.cross(v, rng.normal(size=3))
    a /= np.linalg.norm(a)
    t = math.radians(deg)
    return v * math.cos(t) + a * math.sin(t)


def _hint(v: np.ndarray) -> tuple[float, float]:
    from skysolve.geometry import vector_to_radec

    ra, dec = vector_to_radec(v)
    return float(ra), float(dec)


def _args(inp: dict, fov: bool) -> dict:
    kw = dict(image_shape=inp["shape"], **bench_solve.SOLVE_ARGS)
    if fov:
        kw.update(fov_estimate_deg=inp["fov"], fov_max_error_deg=inp["fov_err"])
    return kw


def _sep_arcsec(a, b) -> float:
    c = float(a.rotation_matrix_icrs_to_camera[2] @ b.rotation_matrix_icrs_to_camera[2])
    return math.degrees(math.acos(min(1.0, c))) * 3600.0


def _timed(db, xy, kw) -> tuple[float, object]:
    time.sleep(PAUSE_S)
    t0 = time.process_time()
    res = db.solve_from_centroids(xy, **kw)
    return time.process_time() - t0, res


def _speed_row(name: str, db, inputs: list[dict], fov: bool, rng) -> dict:
    plain, hinted, diffs, other_stars, solved = [], [], [], 0, [0, 0]
    gc.collect()
    gc.disable()
    try:
        for inp in inputs:
            kw = _args(inp, fov)
            hint = dict(position_hint=_hint(_offset(inp["truth"],
                                                    RADIUS_DEG * math.sqrt(rng.uniform()), rng)),
                        position_radius_deg=RADIUS_DEG)
            t_plain, t_hint = [], []
            for _ in range(REPEAT):
                t, r0 = _timed(db, inp["xy"], kw)
                t_plain.append(t)
                t, r1 = _timed(db, inp["xy"], {**kw, **hint})
                t_hint.append(t)
            plain.append(np.median(t_plain))
            hinted.append(np.median(t_hint))
            solved[0] += bool(r0)
            solved[1] += bool(r1)
            if r0 and r1:
                diffs.append(_sep_arcsec(r0, r1))
                other_stars += not np.array_equal(np.sort(r0.matched_catalog_ids),
                                                  np.sort(r1.matched_catalog_ids))
    finally:
        gc.enable()
    plain, hinted = np.array(plain), np.array(hinted)
    return {"benchmark": f"position hint {RADIUS_DEG:g} deg, {name}", "peer": "no hint",
            "n_fields": len(inputs), "skysolve_s": float(np.median(hinted)),
            "peer_s": float(np.median(plain)),
            "ratio": float(np.median(hinted) / np.median(plain)),
            "mean_ratio": float(hinted.mean() / plain.mean()),
            "p90_ratio": float(np.percentile(hinted, 90) / np.percentile(plain, 90)),
            "hinted_median_ms": float(np.median(hinted) * 1e3),
            "unhinted_median_ms": float(np.median(plain) * 1e3),
            "hinted_mean_ms": float(hinted.mean() * 1e3),
            "unhinted_mean_ms": float(plain.mean() * 1e3),
            "solved_hinted": solved[1], "solved_unhinted": solved[0],
            "max_boresight_diff_arcsec": float(max(diffs)) if diffs else math.nan,
            "fields_with_other_matched_stars": int(other_stars)}


def _miss_row(db, inputs: list[dict], rng) -> dict:
    from skysolve.geometry import radec_to_vector

    right = wrong = 0
    times = []
    for k, inp in enumerate(inputs):
        # half just outside the cone (the field overlaps its reach), half anywhere
        away = rng.uniform(RADIUS_DEG + 1e-3, RADIUS_DEG + 10.0) if k % 2 == 0 else \
            math.degrees(math.acos(rng.uniform(-1.0, math.cos(math.radians(RADIUS_DEG)))))
        centre = _offset(inp["truth"], away, rng)
        t0 = time.process_time()
        res = db.solve_from_centroids(inp["xy"], position_hint=_hint(centre),
                                      position_radius_deg=RADIUS_DEG, **_args(inp, True))
        times.append(time.process_time() - t0)
        if res:
            v = radec_to_vector(res.ra_deg, res.dec_deg)
            if math.degrees(math.acos(min(1.0, float(v @ inp["truth"])))) <= 0.1:
                right += 1
            else:
                wrong += 1
    return {"benchmark": f"position hint {RADIUS_DEG:g} deg missing the pointing",
            "peer": "-", "n_fields": len(inputs), "skysolve_solved": right,
            "skysolve_wrong": wrong, "skysolve_failed": len(inputs) - right - wrong,
            "skysolve_median_ms": float(np.median(times) * 1e3)}


def _turned(R: np.ndarray, deg: float, rng) -> np.ndarray:
    """``R`` turned by ``deg`` degrees about a random axis."""
    from scipy.spatial.transform import Rotation

    axis = rng.normal(size=3)
    return Rotation.from_rotvec(math.radians(deg) * axis / np.linalg.norm(axis)).as_matrix() @ R


def _tracking_row(dbs: dict, inputs: list[dict], unc_deg: float, rng) -> dict:
    from scipy.spatial.transform import Rotation

    from skysolve.geometry import radec_to_vector

    times = {"skysolve": [], "tetra3rs": []}
    score = {lib: [0, 0] for lib in times}
    for inp in inputs:
        hint = _turned(inp["R"], 0.5 * unc_deg, rng)
        x, y, z, w = Rotation.from_matrix(hint).as_quat()
        for lib, db in dbs.items():
            kw = dict(_args(inp, True), attitude_hint=hint if lib == "skysolve" else [w, x, y, z],
                      hint_uncertainty_deg=unc_deg, strict_hint=True)
            db.solve_from_centroids(inp["xy"], **kw)  # (the same call twice: warm caches)
            t, res = _timed(db, inp["xy"], kw)
            times[lib].append(t)
            if res is not None and getattr(res, "ra_deg", None) is not None:
                v = radec_to_vector(res.ra_deg, res.dec_deg)
                ok = math.degrees(math.acos(min(1.0, float(v @ inp["truth"])))) <= 0.1
                score[lib][0 if ok else 1] += 1
    sk, t3 = np.median(times["skysolve"]), np.median(times["tetra3rs"])
    return {"benchmark": f"tracking, hint {0.5 * unc_deg:g} deg off, uncertainty {unc_deg:g} deg",
            "peer": "tetra3rs", "n_fields": len(inputs), "skysolve_s": float(sk),
            "peer_s": float(t3), "ratio": float(sk / t3),
            "skysolve_solved": score["skysolve"][0], "skysolve_wrong": score["skysolve"][1],
            "peer_solved": score["tetra3rs"][0], "peer_wrong": score["tetra3rs"][1]}


def run(quick: bool) -> list[dict]:
    import skysolve

    gaia = skysolve.load_gaia()
    db, info = _solve_dbs.load("skysolve", "small", log=_log)
    rng = np.random.default_rng(2024)
    n = 40 if quick else 200
    easy = bench_solve._small_fields(gaia, n, seed=11)
    hard = bench_solve._small_fields(gaia, n // 2, seed=13, drop=0.2, false_frac=0.2,
                                     mirror_every=3)
    for inp in easy[:3]:  # warm-up: kernels, lazily built indexes
        db.solve_from_centroids(inp["xy"], position_hint=_hint(inp["truth"]), **_args(inp, True))
    rows = [_speed_row("a. small fields, FOV estimate", db, easy, True, rng),
            _speed_row("b. small fields, no scale", db, easy, False, rng),
            _speed_row("c. hard small fields, FOV estimate", db, hard, True, rng)]
    dbs = {"skysolve": db, "tetra3rs": _solve_dbs.load("tetra3rs", "small", log=_log)[0]}
    rows += [_tracking_row(dbs, easy[:n // 2], unc, rng) for unc in (0.1, 1.0, 3.0)]
    n_miss = 100 if quick else 1000
    _log(f"   {n_miss} hints missing the pointing")
    rows.append(_miss_row(db, bench_solve._small_fields(gaia, n_miss, seed=17), rng))
    rows[0].update({f"skysolve_db_{k}": v for k, v in info.items()})
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
