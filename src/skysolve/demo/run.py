"""``skysolve demo``: the seed notebook's multi-image TESS calibration, end to end.

The demo needs no downloaded data. It

1. renders ten TESS-like camera 1 / CCD 1 full-frame images (sectors 1-6, 13,
   14, 15, 17) in the SPOC FFI layout from the bundled Gaia catalog, through
   each sector's archival TAN-SIP WCS (see :mod:`skysolve.demo.frames`), and
   caches them in ``<workdir>/tess_same_ccd``;
2. builds (or reloads) the seed's Hipparcos solver database;
3. runs the seed notebook's steps: reads every frame with astropy, extracts
   centroids with the seed's parameters, then the four solve-and-calibrate
   passes of :data:`skysolve.calibration.workflow.SEED_PASSES` through
   :func:`~skysolve.calibration.workflow.calibrate_frames` (tightening match
   radius, growing distortion order);
4. compares every solved mapping of the last pass (``SolveResult.to_wcs()``, as
   the seed's table does) with the frame's true WCS over the whole science
   area, prints the seed's per-sector table -- with each frame's plate scale
   and its 1-sigma, its held-out residual and the 1-sigma mapping uncertainty
   from the last calibration -- the calibration's summary and a pass/fail
   summary, and saves three figures (frames with matched stars, the fitted
   distortion, its 1-sigma uncertainty).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidArgumentError
from .frames import (
    DEFAULT_SECTORS,
    FAINT_STAR_DEPTH_MAG,
    SCIENCE_COL0,
    SCIENCE_SHAPE,
    _check_sector,
    ensure_frames,
    frame_path,
    render_frame,
    sector_scale,
    sector_times,
    sector_wcs,
)

if TYPE_CHECKING:  # pragma: no cover
    from astropy.wcs import WCS

    from ..calibration.workflow import CalibrationRun
    from ..database import SolverDatabase

__all__ = [
    "DEFAULT_SECTORS",
    "DemoReport",
    "SectorResult",
    "ensure_frames",
    "frame_path",
    "main",
    "render_frame",
    "run_demo",
    "sector_scale",
    "sector_times",
    "sector_wcs",
    "wcs_offset_arcsec",
]

DATABASE_FILENAME = "hipparcos_seed.db"
#: The seed's database parameters.
SEED_DATABASE = dict(max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
                     patterns_per_lattice_field=500, verification_stars_per_fov=3000,
                     epoch_proper_motion_year=2018)
#: The seed's extraction parameters.
SEED_EXTRACTION = dict(sigma_threshold=300, min_pixels=4, max_pixels=10000,
                       local_bg_block_size=16, max_elongation=6.0)
#: The seed's first-pass field of view estimate and allowed error, degrees.
SEED_FOV_DEG, SEED_FOV_ERROR_DEG = 11.8, 0.5

#: Targets of the demo (issue 6).
TARGET_RMSE_ARCSEC = 3.0
TARGET_OFFSET_ARCSEC = 2.0

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


# ------------------------------------------------------------------------------------
# Comparison with the truth


def wcs_offset_arcsec(solved: WCS, truth: WCS, *, shape: tuple[int, int] = SCIENCE_SHAPE,
                      truth_offset: tuple[float, float] = (SCIENCE_COL0, 0),
                      n: int = 33) -> tuple[float, float]:
    """Largest and RMS sky separation (arcsec) of two WCS over an image.

    Parameters
    ----------
    solved : astropy.wcs.WCS
        Mapping of the image itself (e.g. ``SolveResult.to_wcs()``: pixel
        ``(0, 0)`` is the centre of the image's first pixel).
    truth : astropy.wcs.WCS
        The true mapping, in a frame where the image starts at 0-based
        ``truth_offset = (col0, row0)`` (TESS FFI header WCS: ``(44, 0)``).
    shape : (int, int)
        Image ``(height, width)``.
    n : int
        Grid points per axis, spanning the image from edge to edge.
    """
    from ..geometry import angle_between, radec_to_vector

    h, w = shape
    cols, rows = np.meshgrid(np.linspace(-0.5, w - 0.5, n), np.linspace(-0.5, h - 0.5, n))
    cols, rows = cols.ravel(), rows.ravel()
    ra1, dec1 = solved.all_pix2world(cols, rows, 0)
    ra2, dec2 = truth.all_pix2world(cols + truth_offset[0], rows + truth_offset[1], 0)
    sep = np.degrees(angle_between(radec_to_vector(ra1, dec1),
                                   radec_to_vector(ra2, dec2))) * 3600.0
    return float(np.max(sep)), float(np.sqrt(np.mean(sep**2)))


# ------------------------------------------------------------------------------------
# The pipeline


@dataclass
class SectorResult:
    """Outcome of one sector after the last pass."""

    sector: int
    solved: bool
    num_centroids: int
    num_matches: int = 0
    rmse_arcsec: float = float("nan")
    rmse_px: float = float("nan")
    offset_max_arcsec: float = float("nan")
    offset_rms_arcsec: float = float("nan")
    solve_time_ms: float = float("nan")
    status: str = ""
    scale_ppm: float = float("nan")
    scale_sigma_ppm: float = float("nan")
    holdout_px: float = float("nan")
    sigma_max_arcsec: float = float("nan")

    @property
    def ok(self) -> bool:
        """Solved, RMSE within target and mapping within target of the truth."""
        return (self.solved and self.rmse_arcsec <= TARGET_RMSE_ARCSEC
                and self.offset_max_arcsec <= TARGET_OFFSET_ARCSEC)


@dataclass
class DemoReport:
    """Everything :func:`run_demo` measured."""

    sectors: list[int]
    results: list[SectorResult] = field(default_factory=list)
    passes: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    camera_model: Any = None
    calibration: Any = None
    frames_rendered: int = 0

    @property
    def num_solved(self) -> int:
        return sum(r.solved for r in self.results)

    @property
    def targets_met(self) -> bool:
        """All sectors solved, every RMSE <= 3", every mapping within 2" of the truth."""
        return (len(self.results) == len(self.sectors) > 0
                and all(r.ok for r in self.results))


def _load_or_build_database(workdir: Path, force: bool, progress: bool | None
                            ) -> tuple[SolverDatabase, bool]:
    from ..database import SolverDatabase
    from ..errors import FileFormatError

    path = workdir / DATABASE_FILENAME
    if path.is_file() and not force:
        try:
            db = SolverDatabase.load_from_file(path)
            p = db.parameters
            if (p.get("catalog") == "hipparcos"
                    and all(float(p.get(k, np.nan)) == float(v) for k, v in SEED_DATABASE.items())):
                return db, False
        except (FileFormatError, OSError, ValueError):
            pass
    db = SolverDatabase.generate_from_hipparcos(**SEED_DATABASE, progress=progress)
    workdir.mkdir(parents=True, exist_ok=True)
    db.save_to_file(path)
    return db, True

def _read_frames(paths: Sequence[Path]) -> tuple[list, list, list]:
    """The seed's reading step: mid-times, observer velocities, header WCS (full frame)."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    from ..sky.aberration import earth_barycentric_velocity

    times, velocities, wcs_list = [], [], []
    for path in paths:
        with fits.open(path) as hdul:
            tstart = datetime.datetime.strptime(hdul[0].header["DATE-OBS"], _TIME_FORMAT)
            tstop = datetime.datetime.strptime(hdul[0].header["DATE-END"], _TIME_FORMAT)
            tmid = tstart + (tstop - tstart) / 2
            times.append(tmid)
            velocities.append(earth_barycentric_velocity(tmid))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                wcs_list.append(WCS(hdul[1].header))
    return times, velocities, wcs_list




def _extract_frame(path: Path):
    """The seed's extraction of one frame: its science pixels, as float32."""
    from astropy.io import fits

    from ..extraction import extract_centroids

    img = fits.getdata(path, ext=1, memmap=False).astype(np.float32)
    img = img[:2048, 44:2092]
    return extract_centroids(img, **SEED_EXTRACTION)


def _extract(paths: Sequence[Path], progress: bool | None, executor: Any = None) -> list[list]:
    """The seed's extraction of every frame (on ``executor``: where the frames are read);
    the centroid lists are made here from the results' arrays (cheaper to send)."""
    from ..batch.executors import run_tasks

    return [ext.centroids for ext in run_tasks(_extract_frame, paths, executor=executor,
                                               progress=progress, desc="extracting")]


def _say(out: TextIO, text: str = "") -> None:
    print(text, file=out, flush=True)


def _passes(solver: SolverDatabase, cenarr: list, progress: bool | None, out: TextIO,
            report: DemoReport, executor: Any = None) -> CalibrationRun:
    """The seed's four solve-and-calibrate passes, reported as they finish."""
    from ..calibration.workflow import SEED_PASSES, calibrate_frames

    n = len(cenarr)

    def on_pass(p) -> None:
        seconds = p.solve_seconds + p.calibrate_seconds
        if p.calibration is None:
            _say(out, f"Pass {p.number}: 0/{n} solved; stopping")
            report.passes.append({"pass": p.number, "solved": 0})
            return
        cal = p.calibration
        report.passes.append({"pass": p.number, "solved": p.num_solved,
                              "rmse_before_px": cal.rmse_before_px,
                              "rmse_after_px": cal.rmse_after_px, "inliers": cal.n_inliers,
                              "seconds": seconds})
        _say(out, f"Pass {p.number}: {p.num_solved}/{n} solved, calibration RMSE "
                  f"{cal.rmse_before_px:.3f} -> {cal.rmse_after_px:.3f} px, "
                  f"{cal.n_inliers} inliers [{seconds:.1f} s]")

    # the seed reports the last pass's solutions (solved with the camera of the pass
    # before), so no final solve
    return calibrate_frames(cenarr, solver, SEED_PASSES, fov_estimate_deg=SEED_FOV_DEG,
                            fov_max_error_deg=SEED_FOV_ERROR_DEG, image_shape=SCIENCE_SHAPE,
                            final_solve=False, executor=executor, progress=progress,
                            on_pass=on_pass)


def _calibration_figures(cal: Any, i: int, arcsec_per_px: float) -> dict[str, float]:
    """Frame ``i``'s plate scale (ppm) and 1-sigma, held-out rms and 1-sigma map maximum."""
    if cal is None or cal.rotations[i] is None:
        return {}
    held = cal.per_image_holdout_rmse_px[i]
    sigma = cal.per_image_scale_sigma[i]
    return {"scale_ppm": (cal.per_image_scale[i] - 1.0) * 1e6,
            "scale_sigma_ppm": float("nan") if sigma is None else sigma * 1e6,
            "holdout_px": float("nan") if held is None else held,
            "sigma_max_arcsec": float(np.max(cal.sigma_map(9, image=i)[2])) * arcsec_per_px}


def _sector_results(sectors: Sequence[int], resarr: list, cenarr: list,
                    frame_wcs: list, cal: Any = None) -> list[SectorResult]:
    """Per-sector results of the last pass, against the frames' true WCS, with the last
    calibration's figures of each frame."""
    ok_res = [r for r in resarr if r]
    arcsec_per_px = ok_res[0].fov_deg * 3600 / 2048 if ok_res else float("nan")
    out = []
    for i, (sector, res, cen, true_wcs) in enumerate(zip(sectors, resarr, cenarr, frame_wcs,
                                                         strict=True)):
        if not res:
            out.append(SectorResult(sector, False, len(cen),
                                    status=getattr(res, "status", "not solved")))
            continue
        off_max, off_rms = wcs_offset_arcsec(res.to_wcs(), true_wcs)
        out.append(SectorResult(
            sector, True, len(cen), num_matches=int(res.num_matches),
            rmse_arcsec=float(res.rmse_arcsec), rmse_px=float(res.rmse_arcsec / arcsec_per_px),
            offset_max_arcsec=off_max, offset_rms_arcsec=off_rms,
            solve_time_ms=float(res.solve_time_ms), status="match_found",
            **_calibration_figures(cal, i, arcsec_per_px)))
    return out


def run_demo(workdir: str | os.PathLike = "demo_output",
             sectors: Sequence[int] = DEFAULT_SECTORS, *, plots: bool = True,
             force: bool = False, faint_star_depth_mag: float = FAINT_STAR_DEPTH_MAG,
             shared_optics: bool = True, plate_scale_jitter: float = 0.0,
             progress: bool | None = None, out: TextIO | None = None, client: Any = None,
             jobs: int | None = 1) -> DemoReport:
    """Run the whole demo (see the module notes) and print its report to ``out``.

    Parameters
    ----------
    workdir : path-like
        Cache of frames, database and figures (created if needed).
    sectors : sequence of int
        TESS sectors (camera 1 / CCD 1) to use.
    plots : bool
        Save the two PNG figures (needs matplotlib).
    force : bool
        Re-render the frames and rebuild the database even when cached.
    faint_star_depth_mag : float
        Faint stars beyond the catalog in the frames (see :func:`render_frame`).
    shared_optics : bool
        One plate scale and skew for all sectors (see :func:`sector_wcs`).
    plate_scale_jitter : float
        Give every sector a plate-scale change of its own of up to this much
        (velocity aberration's ~1e-4; see :func:`sector_wcs`). Default 0.
    progress : bool or None
        Progress bars on stderr (None: only on a terminal).
    out : text stream, optional
        Where the report goes (default ``sys.stdout``).
    client : dask.distributed.Client or str, optional
        Extract and solve the frames on a Dask cluster (a client, a scheduler
        address, or ``"local"``), see :func:`skysolve.batch.open_executor`;
        the cameras are fitted here. The report is the same.
    jobs : int or None
        Local worker processes (default 1: serially, here; None: every core).

    Returns
    -------
    DemoReport
    """
    out = sys.stdout if out is None else out
    workdir = Path(workdir)
    sectors = [_check_sector(s) for s in sectors]
    if not sectors:
        raise InvalidArgumentError("sectors must name at least one sector")
    if len(set(sectors)) != len(sectors):
        raise InvalidArgumentError(f"sectors must be distinct, got {sectors}")
    report = DemoReport(sectors=list(sectors))
    t_start = time.perf_counter()
    n = len(sectors)

    t = time.perf_counter()
    paths, rendered = ensure_frames(workdir, sectors, force=force,
                                    faint_star_depth_mag=faint_star_depth_mag,
                                    shared_optics=shared_optics,
                                    plate_scale_jitter=plate_scale_jitter, progress=progress)
    report.frames_rendered = rendered
    report.timings_s["frames"] = time.perf_counter() - t
    _say(out, f"Frames: {n} in {paths[0].parent} ({rendered} rendered, {n - rendered} cached) "
              f"[{report.timings_s['frames']:.1f} s]")

    t = time.perf_counter()
    solver, built = _load_or_build_database(workdir, force, progress)
    report.timings_s["database"] = time.perf_counter() - t
    _say(out, f"Database: {solver.num_stars} stars, {solver.num_patterns} patterns "
              f"({'built' if built else 'loaded'}: {workdir / DATABASE_FILENAME}) "
              f"[{report.timings_s['database']:.1f} s]")

    with _executor(solver, client, jobs, n) as executor:
        # header WCS, times and velocities, as the seed reads them; then its extraction
        t = time.perf_counter()
        _, _, frame_wcs = _read_frames(paths)
        cenarr = _extract(paths, progress, executor)
        report.timings_s["extraction"] = time.perf_counter() - t
        _say(out, "Centroids: " + ", ".join(f"S{s} {len(c)}" for s, c in zip(sectors, cenarr,
                                                                            strict=True))
             + f" [{report.timings_s['extraction']:.1f} s]")

        t = time.perf_counter()
        run = _passes(solver, cenarr, progress, out, report, executor)
        report.timings_s["solve_calibrate"] = time.perf_counter() - t
    report.camera_model = run.camera_model
    report.calibration = run.calibration
    resarr = run.passes[-1].solutions
    report.results = _sector_results(sectors, resarr, cenarr, frame_wcs, run.calibration)
    _print_table(report, out)
    if run.calibration is not None:
        _say(out, run.calibration.summary(per_image=False))

    if plots:
        t = time.perf_counter()
        try:
            report.figures = _save_figures(workdir, sectors, paths, resarr, cenarr, solver,
                                           run.calibration)
        except ImportError as exc:
            _say(out, f"Figures skipped: {exc}")
        report.timings_s["figures"] = time.perf_counter() - t
        for fig in report.figures:
            _say(out, f"Figure: {fig}")

    report.timings_s["total"] = time.perf_counter() - t_start
    _print_summary(report, out)
    return report


def _executor(solver: SolverDatabase, client: Any, jobs: int | None, n: int):
    """Where the frames are extracted and solved (nothing to open when serial)."""
    import contextlib

    if client is None and jobs == 1:
        return contextlib.nullcontext()
    import functools

    from ..batch import DatabaseHandle, open_executor
    from ..batch.solve_many import prepare_solver
    from ..solver.options import SolveOptions

    handle = DatabaseHandle(solver)
    return open_executor(client, jobs, database=handle, items=n,
                         prepare=functools.partial(prepare_solver, handle, SolveOptions()))


def _print_table(report: DemoReport, out: TextIO) -> None:
    names = ("Sector", "Matches", 'RMSE (")', "RMSE (px)", 'vs WCS max (")', 'vs WCS rms (")',
             "Scale-1 (ppm)", "Held-out (px)", '1-sigma max (")', "Solve (ms)")
    widths = (6, 7, 9, 9, 14, 14, 15, 13, 15, 10)
    head = "  ".join(f"{a:>{w}}" for a, w in zip(names, widths, strict=True))
    _say(out)
    _say(out, head)
    _say(out, "-" * len(head))
    for r in report.results:
        if not r.solved:
            _say(out, f"{r.sector:>6}  not solved ({r.status})")
            continue
        scale = f"{r.scale_ppm:+.1f} ± {r.scale_sigma_ppm:.1f}"
        _say(out, f"{r.sector:>6}  {r.num_matches:>7}  {r.rmse_arcsec:>9.2f}  {r.rmse_px:>9.3f}  "
                  f"{r.offset_max_arcsec:>14.2f}  {r.offset_rms_arcsec:>14.2f}  {scale:>15}  "
                  f"{r.holdout_px:>13.4f}  {r.sigma_max_arcsec:>15.3f}  "
                  f"{r.solve_time_ms:>10.1f}")
    _say(out, "(scale, held-out and 1-sigma: each frame's figures in the last calibration)")
    _say(out)


def _print_summary(report: DemoReport, out: TextIO) -> None:
    n = len(report.sectors)
    solved = [r for r in report.results if r.solved]
    worst_rmse = max((r.rmse_arcsec for r in solved), default=float("nan"))
    worst_off = max((r.offset_max_arcsec for r in solved), default=float("nan"))
    checks = [
        (f"{report.num_solved}/{n} sectors solved", report.num_solved == n),
        (f"worst RMSE {worst_rmse:.2f}\" (target <= {TARGET_RMSE_ARCSEC:g}\")",
         len(solved) == n and worst_rmse <= TARGET_RMSE_ARCSEC),
        (f"worst mapping error vs true WCS {worst_off:.2f}\" (target <= "
         f"{TARGET_OFFSET_ARCSEC:g}\")", len(solved) == n and worst_off <= TARGET_OFFSET_ARCSEC),
    ]
    t = report.timings_s
    _say(out, "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    verdict = "PASS" if report.targets_met else "FAIL"
    _say(out, f"Summary: {verdict}: " + "; ".join(
        f"{text} [{'ok' if good else 'FAIL'}]" for text, good in checks))


# ------------------------------------------------------------------------------------
# Figures


def _ellipse_lines(x: NDArray, y: NDArray, cov: NDArray, k: float,
                   npts: int = 24) -> NDArray[np.float64]:
    """Polylines ``(n, npts, 2)`` of the ``k``-sigma ellipses of 2x2 covariances ``cov``."""
    vals, vecs = np.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors in columns
    radii = k * np.sqrt(np.maximum(vals, 0.0))  # (n, 2)
    t = np.linspace(0.0, 2.0 * np.pi, npts)
    circle = np.stack([np.cos(t), np.sin(t)], axis=0)  # (2, npts)
    pts = np.einsum("nij,nj,jt->nti", vecs, radii, circle)
    return pts + np.stack([x, y], axis=1)[:, None, :]


def _save_figures(workdir: Path, sectors: Sequence[int], paths: Sequence[Path], resarr: list,
                  cenarr: list, solver: SolverDatabase, calibration: Any) -> list[Path]:
    try:
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("matplotlib is not installed (pip install skysolve[plot])") from exc
    from astropy.io import fits

    ds = 4  # downsampling of the displayed frames
    n = len(sectors)
    ncols = min(5, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3.2 * ncols, 3.4 * nrows), layout="constrained")
    for idx, (sector, path) in enumerate(zip(sectors, paths, strict=True)):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        img = fits.getdata(path, ext=1, memmap=False)[:2048, 44:2092].astype(np.float32)
        vmin, vmax = np.percentile(img, 1), np.percentile(img, 99.2)
        # the displayed image is in downsampled pixels: centred x -> (x + 1024) / ds
        ax.imshow(img[::ds, ::ds], cmap="gray", vmin=vmin, vmax=vmax, origin="upper",
                  extent=(0, 2048 / ds, 2048 / ds, 0), interpolation="nearest")
        res = resarr[idx] if idx < len(resarr) else None
        if res:
            cat_ids = np.asarray(res.matched_catalog_ids, dtype=np.int64)
            stars = [solver.get_star_by_id(int(cid)) for cid in cat_ids]
            ra = np.array([s.ra_deg for s in stars])
            dec = np.array([s.dec_deg for s in stars])
            sx, sy = res.world_to_pixel(ra, dec)
            cen = [cenarr[idx][int(ci)] for ci in res.matched_centroids]
            cx = np.array([c.x for c in cen])
            cy = np.array([c.y for c in cen])
            cov = np.array([c.cov for c in cen]).reshape(-1, 2, 2)
            lines = _ellipse_lines((cx + 1024) / ds, (cy + 1024) / ds, cov / ds**2, 6.0)
            ax.add_collection(LineCollection(lines, colors="yellow", linewidths=0.5))
            ax.scatter((np.asarray(sx) + 1024) / ds, (np.asarray(sy) + 1024) / ds,
                       marker="+", s=6, linewidths=0.4, color="cyan")
            ax.set_title(f"Sector {sector}: {res.num_matches} matches, "
                         f"{res.rmse_arcsec:.2f}\" rms", fontsize=8)
        else:
            ax.set_title(f"Sector {sector}: not solved", fontsize=8)
        ax.set_xlim(0, 2048 / ds)
        ax.set_ylim(2048 / ds, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("TESS-like camera 1 / CCD 1 frames: catalog stars through the solved WCS "
                 "(cyan +), centroid 6-sigma ellipses (yellow)", fontsize=9)
    frames_png = workdir / "demo_frames.png"
    fig.savefig(frames_png, dpi=110)

    figures = [frames_png]
    camera_model = None if calibration is None else calibration.camera_model
    if camera_model is not None:
        from ..plotting import plot_distortion, plot_distortion_uncertainty

        fig = Figure(figsize=(7.0, 6.0), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        plot_distortion(camera_model, ax=ax)
        ax.set_title(f"Fitted camera (shared by {len(sectors)} sectors): "
                     f"f = {camera_model.focal_length_px:.1f} px, FOV "
                     f"{camera_model.fov_deg:.3f} deg\n{ax.get_title()}", fontsize=9)
        dist_png = workdir / "demo_distortion.png"
        fig.savefig(dist_png, dpi=110)
        figures.append(dist_png)
        fig = Figure(figsize=(7.0, 6.0), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        plot_distortion_uncertainty(calibration, ax=ax, arcsec=True)
        ax.set_title(f"Fitted camera: 1-sigma uncertainty of the mapping (rms over "
                     f"{calibration.num_images} sectors)\n{ax.get_title()}", fontsize=9)
        sigma_png = workdir / "demo_uncertainty.png"
        fig.savefig(sigma_png, dpi=110)
        figures.append(sigma_png)
    return figures


# ------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skysolve demo",
        description="Render ten TESS-like full-frame images (camera 1 / CCD 1) and run the "
                    "seed notebook's multi-image solve-and-calibrate pipeline on them; compare "
                    "the solutions with the frames' true WCS. Exit status 0 when every "
                    "target is met (all sectors solved, RMSE <= 3\", mapping within 2\" of "
                    "the truth), 1 otherwise.")
    p.add_argument("--workdir", default="demo_output", metavar="DIR",
                   help="cache of frames, database and figures (default: ./demo_output)")
    p.add_argument("--sectors", type=int, nargs="+", default=list(DEFAULT_SECTORS),
                   metavar="N", help="TESS sectors to use (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="do not save the PNG figures")
    p.add_argument("--force", action="store_true",
                   help="re-render the frames and rebuild the database even if cached")
    p.add_argument("--faint-depth", type=float, default=FAINT_STAR_DEPTH_MAG, metavar="MAG",
                   help="magnitudes of random stars fainter than the catalog in the frames "
                        "(default: %(default)s)")
    p.add_argument("--scale-jitter", type=float, default=0.0, metavar="D",
                   help="give every sector its own plate scale, up to 1 +- D (velocity "
                        "aberration: ~1e-4; default 0)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="extract and solve the frames in N local processes (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="extract and solve the frames on a Dask cluster: its scheduler "
                        "address (tcp://HOST:8786) or 'local' (needs skysolve[distributed])")
    p.add_argument("--archival-wcs", action="store_true",
                   help="render through each sector's archival WCS unchanged (default: one "
                        "plate scale and skew for all sectors, see skysolve.demo.run.sector_wcs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``skysolve demo``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``demo`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every target is met, 1 otherwise (or on an error), 2 on a usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        report = run_demo(args.workdir, args.sectors, plots=not args.no_plots,
                          force=args.force, faint_star_depth_mag=args.faint_depth,
                          shared_optics=not args.archival_wcs, client=args.scheduler,
                          jobs=None if args.scheduler and args.jobs == 1 else args.jobs,
                          plate_scale_jitter=args.scale_jitter)
    except (InvalidArgumentError, ImportError, OSError) as exc:
        print(f"skysolve demo: error: {exc}", file=sys.stderr)
        return 1
    return 0 if report.targets_met else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
