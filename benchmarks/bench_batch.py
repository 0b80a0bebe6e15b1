"""Batch solving: serial, every local core, a 2-worker Dask LocalCluster, and tetra3rs.

200 simulated 2048x2048 TESS-like frames (``skysolve.simulate.render_starfield``
through ``tess_like_camera()``: FOV 11.65 deg, mirrored, order-4 distortion;
Gaia stars at J2025, 1.2 px PSF, sky 100 e-, read noise 5 e-), written as
float32 FITS files (16 MB each) and cached in ``benchmarks/.cache/batch_frames_*``
(rendered once, on every core, about 2 s a frame). Each frame is read from its
file, extracted and solved, against the seed-parameter Gaia database of
``bench_solve`` (case c), with ``fov_estimate_deg=11.65, fov_max_error_deg=0.5``.

Modes (frames per second = frames / wall time of the whole batch):

* ``serial``: ``solve_many(paths, db, jobs=1)``;
* ``local``: ``solve_many(paths, db)``, the default: worker processes on every
  core (2 here), forked after the batch's first frame was processed here;
* ``threads``: the same work on 2 threads, the alternative the default was
  chosen against;
* ``dask``: ``solve_many(paths, db, client=client)`` on a
  ``LocalCluster(n_workers=2, threads_per_worker=1)`` without Dask's
  ``MALLOC_TRIM_THRESHOLD_`` (as ``client="local"`` starts it and
  docs/batch.md recommends), started and warmed up (one frame on each worker)
  before the clock; ``dask_default_trim``: the same with Dask's own worker
  settings;
* ``tetra3rs``: a plain loop over the same files (astropy read,
  ``tetra3rs.extract_centroids`` with its defaults, ``solve_from_centroids``
  with the same arguments, its own database of the same parameters); ratio =
  skysolve wall time / tetra3rs wall time. tetra3rs's extraction uses every
  core by default.

The local modes run in turn, ``repeat`` times (quick: 40 frames, once), with
no Dask cluster up; then each cluster's runs. Medians are reported.

Wall times on a shared machine depend on what else runs, so every mode's CPU
time is measured too: that of every process involved (this one, pool workers,
the Dask scheduler, nannies and workers; ``cpu_ms_per_frame``), and of the
frame's own work in its worker (``worker_cpu_ms_per_frame``). From them,
``idle_speedup_vs_serial`` is the speed-up on an idle 2-core machine (both
cores busy at the measured CPU cost per frame). A Dask cluster also costs CPU
doing nothing (heartbeats, event loops, the profiler): ``dask_idle_cores`` is
measured for 10 s before its batch, ``dask_frames_cpu_ms_per_frame`` is its CPU
per frame without that background, and ``dask_idle_projected_overhead_vs_local``
the per-frame overhead over the local default on an idle 2-core machine.
Memory: RSS and USS (pages the process alone holds; the memory-mapped
database is shared page cache) of each worker, halfway through (local pool)
or after the batch (Dask).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _common import timed
from _solve_dbs import CACHE, load

N_FRAMES = 200
IDLE_S = 10.0
FOV_DEG = 11.65
SOLVE = dict(fov_estimate_deg=FOV_DEG, fov_max_error_deg=0.5, solve_timeout_ms=5000)
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




def _warm_worker(path: str, db_path: str) -> int:
    """On a Dask worker: open the database and solve one frame (kernels ready)."""
    from skysolve import SolveOptions, SolverDatabase
    from skysolve.batch import DatabaseHandle
    from skysolve.batch.solve_many import solve_task

    handle = DatabaseHandle(SolverDatabase.load_from_file(db_path, mmap=True))
    import pickle

    handle = pickle.loads(pickle.dumps(handle))  # by path, as a task gets it
    solve_task(handle, SolveOptions(**SOLVE), None, None, None, path)
    return os.getpid()


class _PoolMemory:
    """Samples the local pool's worker processes halfway through a batch."""

    def __init__(self, at: int):
        self.at, self.mb = at, []

    def __call__(self, i, _result) -> None:
        if i == self.at and not self.mb:
            import psutil

            for child in psutil.Process().children():
                info = child.memory_full_info()
                self.mb.append((info.rss / 1e6, info.uss / 1e6))


def _same(a, b) -> bool:
    """The two runs solved the same frames to the same boresights (1e-9 deg)."""
    return all(bool(x) == bool(y) and (not x or (abs(x.result.ra_deg - y.result.ra_deg) < 1e-9
                                                  and abs(x.result.dec_deg - y.result.dec_deg)
                                                  < 1e-9))
               for x, y in zip(a, b, strict=True))


def _tree_cpu() -> float:
    """CPU seconds of this process and every process it started (live or reaped)."""
    import psutil

    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in psutil.Process().children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += c.user + c.system + c.children_user + c.children_system
    return total


def _timed(modes: dict, repeat: int) -> tuple[dict, dict, dict]:
    """Median wall and CPU seconds of each mode over ``repeat`` rounds (modes in turn),
    and the last round's results. CPU time is that of every process involved (this
    one, pool workers, a Dask scheduler, nannies and workers): what a mode costs,
    whatever else the machine runs."""
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    results: dict = {}
    for _ in range(repeat):
        for mode, fn in modes.items():
            c0 = _tree_cpu()
            t, results[mode] = timed(fn, 1)
            cpu[mode].append(_tree_cpu() - c0)
            times[mode].append(t)
    return ({m: statistics.median(v) for m, v in times.items()},
            {m: statistics.median(v) for m, v in cpu.items()}, results)


def _measure(db, peer, paths: list[Path], repeat: int) -> tuple[dict, dict, dict, dict]:
    """Every mode: (wall s, CPU s, results, memory). No Dask cluster runs during the
    local modes (its idle processes would cost CPU there); each cluster is started,
    and its workers warmed up, before its clock."""
    import skysolve

    spaths = [str(p) for p in paths]
    memory = _PoolMemory(len(paths) // 2)
    local = {
        "serial": lambda: skysolve.solve_many(spaths, db, jobs=1, progress=False, **SOLVE),
        "local": lambda: skysolve.solve_many(spaths, db, progress=False, on_result=memory,
                                             **SOLVE),
        "threads": lambda: _threads(db, spaths),
        "tetra3rs": lambda: _tetra3rs_loop(peer, paths),
    }
    t, cpu, res = _timed(local, repeat)
    mem = {"local": list(memory.mb)}
    for mode, tuned in (("dask", True), ("dask_default_trim", False)):
        with _cluster(tuned) as client:
            client.run(_warm_worker, spaths[0], db.file_path)
            c0, t0 = _tree_cpu(), time.perf_counter()
            time.sleep(IDLE_S)  # what the cluster costs doing nothing: heartbeats, loops
            mem[mode + "_idle_cores"] = (_tree_cpu() - c0) / (time.perf_counter() - t0)
            run = {mode: lambda c=client: skysolve.solve_many(spaths, db, client=c,
                                                              progress=False, **SOLVE)}
            t_d, cpu_d, res_d = _timed(run, repeat)
            t.update(t_d)
            cpu.update(cpu_d)
            res.update(res_d)
            mem[mode] = list(client.run(_worker_memory_mb).values())
            mem[mode + "_databases"] = sorted({v for d in client.run(_opened_databases).values()
                                               for v in d.values()})
    return t, cpu, res, mem


def run(quick: bool) -> list[dict]:
    import skysolve

    n = 40 if quick else N_FRAMES
    repeat = 1 if quick else 2
    paths = frames(n)
    db, _ = load("skysolve", "tess")
    peer, _ = load("tetra3rs", "tess")
    # first-call costs (imports, kernels) out of the clock
    _tetra3rs_loop(peer, paths[:1])
    skysolve.solve_many([str(paths[0])], db, jobs=1, progress=False, **SOLVE)
    _threads(db, paths[:2])
    load_avg = os.getloadavg()[0]
    t, cpu, res, mem = _measure(db, peer, paths, repeat)
    load_avg = (load_avg + os.getloadavg()[0]) / 2
    return _rows(n, t, cpu, res, mem, load_avg)


def _rows(n: int, t: dict, cpu: dict, res: dict, mem: dict, load_avg: float) -> list[dict]:
    ok = {m: sum(bool(r) for r in res[m]) for m in res}
    agree = all(_same(res["serial"], res[m]) for m in ("local", "threads", "dask"))
    worker_cpu = {m: statistics.median(r.timings["cpu"] for r in res[m]) * 1e3
                  for m in ("serial", "local", "threads", "dask", "dask_default_trim")}
    common = {"frames": n, "skysolve_solved": ok["serial"], "peer_solved": ok["tetra3rs"],
              "all_modes_agree": agree, "load_average": load_avg}
    rows = []
    for mode, label in (("serial", "serial (1 process)"),
                        ("local", "local default (2 worker processes)"),
                        ("dask", "Dask LocalCluster (2 workers x 1 thread)")):
        rows.append({
            "benchmark": f"batch read+extract+solve, {n} TESS-like FITS: {label}",
            "peer": "tetra3rs loop", "skysolve_s": t[mode], "peer_s": t["tetra3rs"],
            "ratio": t[mode] / t["tetra3rs"], "frames_per_s": n / t[mode],
            "speedup_vs_serial": t["serial"] / t[mode],
            "cpu_ms_per_frame": cpu[mode] / n * 1e3,
            "peer_cpu_ms_per_frame": cpu["tetra3rs"] / n * 1e3,
            "worker_cpu_ms_per_frame": worker_cpu[mode],
            # on an idle 2-core machine: both cores busy, at this CPU cost per frame
            "idle_speedup_vs_serial": (2.0 if mode != "serial" else 1.0)
            * cpu["serial"] / cpu[mode], **common})
    rows[0]["per_frame_s"] = {k: statistics.median(r.timings[k] for r in res["serial"])
                              for k in ("read", "extract", "solve", "total", "cpu")}
    rows[1].update(threads_s=t["threads"], threads_speedup_vs_serial=t["serial"] / t["threads"],
                   threads_cpu_ms_per_frame=cpu["threads"] / n * 1e3,
                   threads_worker_cpu_ms_per_frame=worker_cpu["threads"],
                   worker_rss_mb=[round(r, 1) for r, _ in mem["local"]],
                   worker_uss_mb=[round(u, 1) for _, u in mem["local"]])
    # Dask's CPU split into its idle background (a rate) and what the frames cost
    idle = mem["dask_idle_cores"]
    task_cpu = (cpu["dask"] - idle * t["dask"]) / n
    rows[2].update(dask_idle_cores=idle, dask_frames_cpu_ms_per_frame=task_cpu * 1e3,
                   # on an idle 2-core machine: 2 cores less the background, at that cost
                   dask_idle_projected_overhead_vs_local=(task_cpu / (2 - idle))
                   / (cpu["local"] / n / 2) - 1,
                   dask_overhead_vs_local=t["dask"] / t["local"] - 1,
                   dask_cpu_overhead_vs_local=cpu["dask"] / cpu["local"] - 1,
                   dask_overhead_ms_per_frame=(t["dask"] - t["local"]) / n * 2e3,
                   worker_rss_mb=[round(r, 1) for r, _ in mem["dask"]],
                   worker_uss_mb=[round(u, 1) for _, u in mem["dask"]],
                   worker_databases=mem["dask_databases"],
                   dask_default_trim_s=t["dask_default_trim"],
                   dask_default_trim_cpu_ms_per_frame=cpu["dask_default_trim"] / n * 1e3,
                   dask_default_trim_worker_cpu_ms_per_frame=worker_cpu["dask_default_trim"])
    return rows


@contextlib.contextmanager
def _cluster(tuned: bool):
    """A 2-worker LocalCluster; ``tuned``: without Dask's MALLOC_TRIM_THRESHOLD_ (as
    ``client="local"`` starts it and docs/batch.md recommends)."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    from skysolve.batch.pools import TRIM_CONFIG

    settings = {TRIM_CONFIG: None} if tuned else {}
    with dask.config.set(settings), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the untuned cluster's warning
        yield client


def _opened_databases() -> dict[str, str]:
    from skysolve.batch import executors

    return {p: type(d.pattern_keys).__name__ for p, d in executors._OPENED.items()}


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(row)
