"""Calibration inputs with known truth, without solving: star pairs from a database.

:func:`synthetic_solves` projects a database's own stars through true cameras
at true attitudes (plus centroid noise) and wraps each frame as the solve a
calibration receives: the matched centroids and catalog ids, an attitude a
little off the truth and an uncalibrated pinhole camera. Many calibrations
with known truth then take seconds, not the minutes of solving them.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from skysolve.camera.model import CameraModel
from skysolve.geometry import rotation_to_radec_roll
from skysolve.solver.result import SolveResult


def frame_pairs(db, camera: CameraModel, R: np.ndarray, noise_px: float,
                rng: np.random.Generator, max_stars: int | None = None,
                magnitude_noise: bool = False):
    """Centroids ``(n, 3)`` (x, y, brightness) of the database's stars on a frame, their
    row indices into the star table, and the noise-free positions."""
    w, h = camera.image_width, camera.image_height
    reach = math.hypot(w, h) / 2 + math.hypot(*camera.crpix)
    cos_r = math.cos(math.atan(reach / camera.focal_length_px) * 1.1)
    rows = np.flatnonzero(db.star_vectors @ R[2] > cos_r)
    x, y = camera.vectors_to_pixel(db.star_vectors[rows] @ R.T)
    inside = np.isfinite(x) & np.isfinite(y) & (np.abs(x) < w / 2) & (np.abs(y) < h / 2)
    rows, x, y = rows[inside], x[inside], y[inside]
    mag = db.star_magnitudes[rows].astype(np.float64)
    order = np.argsort(mag, kind="stable")[:max_stars]
    rows, x, y, mag = rows[order], x[order], y[order], mag[order]
    sigma = noise_px * (10 ** (0.2 * (mag - np.median(mag))) if magnitude_noise else 1.0)
    xy = np.stack([x, y], 1) + rng.normal(size=(len(x), 2)) * np.atleast_1d(sigma)[:, None]
    cents = np.column_stack([xy, 10 ** (-0.4 * (mag - 20.0))])
    return cents, rows, np.stack([x, y], axis=1)


def synthetic_solves(db, cameras: list[CameraModel], rotations, noise_px: float, seed: int,
                     max_stars: int | None = None, magnitude_noise: bool = False):
    """``(results, centroid arrays)`` of frames of ``cameras`` at ``rotations``; each
    result has an attitude ~20" off and a pinhole camera of the median focal length."""
    rng = np.random.default_rng(seed)
    f0 = float(np.median([c.focal_length_px for c in cameras]))
    results, cents = [], []
    for cam, R in zip(cameras, rotations, strict=True):
        c, rows, _ = frame_pairs(db, cam, R, noise_px, rng, max_stars, magnitude_noise)
        off = Rotation.from_rotvec(rng.normal(scale=1e-4, size=3)).as_matrix() @ R
        ra, dec, roll = rotation_to_radec_roll(off)
        pin = CameraModel(f0, cam.image_width, cam.image_height,
                          parity_flip=cam.parity_flip)
        results.append(SolveResult(
            ra_deg=float(ra), dec_deg=float(dec), roll_deg=float(roll), fov_deg=pin.fov_deg,
            rotation_matrix_icrs_to_camera=off, camera_model=pin, num_matches=len(rows),
            rmse_arcsec=1.0, p90e_arcsec=1.0, max_err_arcsec=1.0, probability=1e-9,
            solve_time_ms=0.0, matched_centroids=np.arange(len(rows)),
            matched_catalog_ids=db.star_ids[rows].astype(np.int64)))
        cents.append(c)
    return results, cents


def mapping_error_px(camera: CameraModel, rotation, truth: CameraModel, true_rotation,
                     x, y) -> np.ndarray:
    """Pixel distance between where the fitted camera+attitude and the truth put the sky
    direction the truth sees at ``(x, y)``."""
    sky = truth.pixel_to_vectors(x, y) @ true_rotation
    px, py = camera.vectors_to_pixel(sky @ np.asarray(rotation).T)
    return np.hypot(px - x, py - y)


def within_radius(results, cents, reach: float):
    """``(results, centroid arrays)`` with only the matched stars within ``reach`` px of
    the image centre, as frames whose stars cover the middle of the image only."""
    import dataclasses

    out_r, out_c = [], []
    for res, c in zip(results, cents, strict=True):
        keep = np.hypot(c[:, 0], c[:, 1]) < reach
        out_r.append(dataclasses.replace(
            res, matched_centroids=np.arange(int(keep.sum())), num_matches=int(keep.sum()),
            matched_catalog_ids=res.matched_catalog_ids[keep]))
        out_c.append(c[keep])
    return out_r, out_c
