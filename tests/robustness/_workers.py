"""Helpers shared by the concurrency and determinism tests (importable by worker processes).

Everything here is deterministic: frames come from fixed seeds, and solves use
no time limit (``solve_timeout_ms=None``) so that machine load cannot change an
answer (a time-out would).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

import skysolve as ss

W = H = 1024
_DB: Any = None


def fingerprint(res: Any) -> dict[str, Any]:
    """Every field of a solve outcome except its run time, floats as exact hex."""
    if not res:
        return {"status": res.status}
    out: dict[str, Any] = {"status": res.status, "parity_flip": bool(res.parity_flip),
                           "num_matches": int(res.num_matches)}
    for name in ("ra_deg", "dec_deg", "roll_deg", "fov_deg", "rmse_arcsec", "p90e_arcsec",
                 "max_err_arcsec", "probability", "crval_ra_deg", "crval_dec_deg",
                 "theta_deg"):
        out[name] = float(getattr(res, name)).hex()
    for name in ("quaternion", "rotation_matrix_icrs_to_camera", "cd_matrix", "crpix",
                 "matched_centroids", "matched_catalog_ids"):
        a = np.ascontiguousarray(getattr(res, name))
        out[name] = f"{a.dtype}{a.shape}:{hashlib.sha256(a.tobytes()).hexdigest()}"
    out["camera"] = json.dumps(res.camera_model.to_dict(), sort_keys=True)
    return out


def frames(catalog: ss.Catalog, n: int, seed: int) -> list[tuple[np.ndarray, float | None]]:
    """``n`` centroid sets: real fields (some mirrored, with false stars) and random noise."""
    rng = np.random.default_rng(seed)
    out = []
    for R in ss.random_attitudes(n, rng):
        kind = rng.integers(0, 4)
        if kind == 3:  # pure noise: must end in no_match, the same way every time
            out.append((rng.uniform(-W / 2, W / 2, (int(rng.integers(4, 9)), 2)), None))
            continue
        fov = float(rng.uniform(10.0, 20.0))
        sim = ss.simulate_centroids(catalog, ss.CameraModel.from_fov(fov, W, H), R,
                                    num_stars=15, epoch_year=2025.0, centroid_noise_px=0.3,
                                    num_false_stars=2 * int(kind == 2), mirror=bool(kind == 1),
                                    seed=rng)
        out.append((sim.centroids, fov if kind != 1 else None))
    return out


def solve(db: ss.SolverDatabase, frame: tuple[np.ndarray, float | None]) -> dict[str, Any]:
    xy, fov = frame
    return fingerprint(db.solve_from_centroids(xy, image_shape=(H, W), fov_estimate_deg=fov,
                                               solve_timeout_ms=None))


# ---- process-pool workers: the database arrives once per process
def init_from_file(path: str, mmap: bool) -> None:
    global _DB
    _DB = ss.SolverDatabase.load_from_file(path, mmap=mmap)


def init_from_pickle(db: ss.SolverDatabase) -> None:
    global _DB
    _DB = db


def solve_in_worker(frame: tuple[np.ndarray, float | None]) -> dict[str, Any]:
    return solve(_DB, frame)
