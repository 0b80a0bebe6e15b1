"""Frames with known truth for the batch tests, built once per session.

``batch_db``
    The session's ``small_db`` (Hipparcos, 10-20 deg) saved to a file and
    loaded from it, so that worker processes open it by path.
``batch_frames``
    200 frames of a 15-degree 1024x768 camera at random attitudes: 196
    simulated centroid lists and 4 rendered images written as FITS files,
    with the true attitudes.
``serial_results``
    ``solve_many`` of those frames, serially: the reference every parallel
    run must reproduce exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from skysolve import CameraModel, SolverDatabase, solve_many
from skysolve.simulate import random_attitudes, render_starfield, simulate_centroids

W, H = 1024, 768
FOV_DEG = 15.0
N_FRAMES = 200
IMAGE_FRAMES = (3, 50, 120, 199)  # the frames rendered as images
SOLVE = dict(fov_estimate_deg=FOV_DEG, fov_max_error_deg=1.0, image_shape=(H, W),
             solve_timeout_ms=None)


@dataclass
class Frames:
    sources: list          # paths (str) and (N, 3) centroid arrays
    attitudes: np.ndarray  # (N, 3, 3) true ICRS->camera rotations
    folder: Path


@pytest.fixture(scope="session")
def batch_db(small_db, tmp_path_factory) -> SolverDatabase:
    path = tmp_path_factory.mktemp("batch_db") / "small.db"
    small_db.save_to_file(path)
    return SolverDatabase.load_from_file(path)


@pytest.fixture(scope="session")
def batch_frames(hip_catalog, tmp_path_factory) -> Frames:
    from astropy.io import fits

    folder = tmp_path_factory.mktemp("batch_frames")
    camera = CameraModel.from_fov(FOV_DEG, W, H)
    cat = hip_catalog.propagate(2025.0)
    attitudes = random_attitudes(N_FRAMES, rng=140)
    sources: list = []
    for k, R in enumerate(attitudes):
        if k in IMAGE_FRAMES:
            image, _ = render_starfield(cat, camera, R, seed=k)
            path = folder / f"frame_{k:03d}.fits"
            fits.PrimaryHDU(image).writeto(path)
            sources.append(str(path))
        else:
            sim = simulate_centroids(cat, camera, R, centroid_noise_px=0.1, num_stars=30,
                                     max_magnitude=7.5, seed=k)
            sources.append(np.ascontiguousarray(sim.centroids))
    return Frames(sources, attitudes, folder)


@pytest.fixture(scope="session")
def serial_results(batch_db, batch_frames):
    return solve_many(batch_frames.sources, batch_db, jobs=1, progress=False, **SOLVE)


def fingerprint(results) -> list:
    """What two runs must share exactly: statuses, attitudes, matched stars, errors."""
    out = []
    for r in results:
        if r:
            res = r.result
            out.append((r.status, res.rotation_matrix_icrs_to_camera.tobytes(),
                        res.matched_centroids.tobytes(), res.matched_catalog_ids.tobytes(),
                        res.fov_deg, res.rmse_arcsec))
        else:
            out.append((r.status, r.error))
    return out


def boresight_errors_deg(results, attitudes) -> np.ndarray:
    """Angle between each solved boresight and the truth's (NaN when not solved)."""
    from skysolve.geometry import angle_between

    errs = np.full(len(results), np.nan)
    for k, (r, R) in enumerate(zip(results, attitudes, strict=True)):
        if r:
            errs[k] = np.degrees(angle_between(r.result.rotation_matrix_icrs_to_camera[2], R[2]))
    return errs
