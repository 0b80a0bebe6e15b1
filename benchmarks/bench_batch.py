"""Batch solving: serial, every local core, a 2-worker Dask LocalCluster, and tetra3rs.

200 simulated 2048x2048 TESS-like frames (``skysolve.simulate.render_starfield``
through ``tess_like_camera()``: FOV 11.65 deg, mirrored, order-4 distortion;
Gaia stars at J2025, 1.2 px PSF, sky 100 e-, read noise 5 e-), written as
float32 FITS files (16 MB each) and cached in ``benchmarks/.cache/batch_frames_*``
(rendered once, on every core, about 2 s a frame). Each frame is read from its
file, extracted and solved, against the seed-parameter Gaia database of
``bench_solve`` (case c), with ``fov_estimate_deg=11.65, fov_max_error_deg=0.5``.

Rows (frames per second are frames / wall time of the whole batch):

* ``serial``: ``solve_many(paths, db, jobs=1)``;
* ``local default``: ``solve_many(paths, db)``, a pool of worker processes on
  every core (2 here); and the same work on 2 threads, the alternative the
  default was chosen against;
* ``dask``: ``solve_many(paths, db, client=client)`` on a
  ``LocalCluster(n_workers=2, threads_per_worker=1)`` started (and warmed up
  with two frames) before the clock; its per-frame overhead over the local
  default is ``dask_s / local_s - 1``;
* resident memory of each Dask worker after the batch (RSS, and USS: the pages
  it alone holds; the memory-mapped database is shared page cache);
* ``tetra3rs``: a plain loop over the same files (astropy read,
  ``tetra3rs.extract_centroids`` with its defaults, ``solve_from_centroids``
  with the same arguments, its own database of the same parameters); ratio =
  skysolve wall time / tetra3rs wall time. tetra3rs's extraction uses every
  core by default.

The modes run in turn, ``repeat`` times (quick: 40 frames, once); medians are
reported. The local pool forks from this process after the serial run, so its
workers start with the kernels compiled; the Dask workers are warmed up with
two frames before the clock, so both parallel modes are timed in their steady
state.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
from _solve_dbs import CACHE

N_FRAMES = 200
FOV_DEG = 11.65
SOLVE = dict(fov_estimate_deg=FOV_DEG, fov_max_error_deg=0.5, solve_timeout_ms=5000.0)
RENDER = dict(epoch_year=2025.0, background_e=100.0, read_noise_e=5.0)


def _render_one(path: str, seed: int, attitude) -> str:
    """Render frame ``seed`` and write it (atomically) as a float32 FITS file."""
    from astropy.io import fits

    import skysolve
    from skysolve._files import atomic_path
    from skysolve.simulate import render_starfield, tess_like_camera

    image, _ = render_starfield(_gaia(), tess_like_camera(), attitude, seed=seed, **RENDER)
    hdr = fits.Header()
    hdr["DATE-OBS"] = "2025-01-01T00:00:00"
    hdr["ORIGIN"] = f"skysolve {skysolve.__version__} render_starfield seed {seed}"
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(image.astype(np.float32), header=hdr).writeto(tmp)
    return path


@functools.cache
def _gaia():
    import skysolve

    return skysolve.load_gaia()


def frames(n: int, log=print) -> list[Path]:
    """The first ``n`` of the cached frames (rendered now if missing)."""
    from skysolve.batch import LocalPool, run_tasks
    from skysolve.simulate import random_attitudes

    key = json.dumps([N_FRAMES, RENDER, "tess_like_camera", "rng 14"], sort_keys=True)
    folder = CACHE / f"batch_frames_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    folder.mkdir(parents=True, exist_ok=True)
    attitudes = random_attitudes(N_FRAMES, rng=14)
    paths = [folder / f"frame_{k:03d}.fits" for k in range(n)]
    missing = [k for k, p in enumerate(paths) if not p.exists()]
    if missing:
        log(f"   rendering {len(missing)} frames into {folder} ...")
        t0 = time.perf_counter()
        with LocalPool(os.cpu_count() or 1) as pool:
            run_tasks(_render_job, [(str(paths[k]), k, attitudes[k]) for k in missing],
                      executor=pool, desc="rendering")
        log(f"   rendered in {time.perf_counter() - t0:.0f} s")
    return paths


def _render_job(args) -> str:
    return _render_one(*args)


def _tetra3rs_loop(db, paths: list[Path]) -> list:
    import tetra3rs
    from astropy.io import fits

    out = []
    for p in paths:
        image = fits.getdata(p, memmap=False)
        ext = tetra3rs.extract_centroids(image)
        out.append(db.solve_from_centroids(ext.centroids, image_shape=image.shape,
                                           match_radius=0.01, match_threshold=1e-5, **SOLVE))
    return out


def _threads(db, paths: list[Path]):
    """The local default's work on 2 threads instead of 2 processes (for the choice)."""
    from skysolve import SolveOptions
    from skysolve.batch import DatabaseHandle, LocalPool, run_tasks
    from skysolve.batch.solve_many import solve_task

    task = functools.partial(solve_task, DatabaseHandle(db), SolveOptions(**SOLVE), None,
                             None, None)
    with LocalPool(2, "thread") as pool:
        return run_tasks(task, [str(p) for p in paths], executor=pool, progress=False)


def _worker_memory_mb() -> tuple[float, float]:
    import psutil

    info = psutil.Process().memory_full_info()
    return info.rss / 1e6, info.uss / 1e6


def _summary(results) -> tuple[int, list]:
    solved = [r for r in results if r]
    return len(solved), [(r.result.ra_deg, r.result.dec_deg) if r else None for r in results]
