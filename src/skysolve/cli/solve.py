"""``skysolve solve``: read, extract, solve and write the outputs of images."""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (
    _check_not_input,
    _err,
    _error_text,
    _extraction_options,
    _info,
    _is_fits,
    _jsonable,
    _load_camera,
    _load_database,
    _output_base,
    _read_input,
    _show_warning,
)
from .parser import EXIT_ERROR, EXIT_OK, EXIT_UNSOLVED


@dataclass(frozen=True)
class _Job:
    """What every image of a ``solve`` command gets: the library's options and the CLI's."""

    solve: Any           # SolveOptions (the camera model comes from the worker's state)
    extraction: Any      # ExtractionOptions
    hdu: int | str | None
    section: str | None
    aberration: bool
    date: _dt.datetime | None
    write_wcs: bool
    update_fits: bool
    debug: bool


def _solve_options(args: argparse.Namespace):
    """The library's solve options from the command's flags."""
    from ..errors import InvalidArgumentError
    from ..solver.options import SolveOptions

    if (args.ra is None) != (args.dec is None):
        raise InvalidArgumentError("--ra and --dec go together")
    return SolveOptions(fov_estimate_deg=args.fov, fov_max_error_deg=args.fov_error,
                        match_radius=args.match_radius, solve_timeout_ms=args.timeout,
                        projection=args.projection,
                        fov_range_deg=None if args.fov_range is None else tuple(args.fov_range),
                        pixel_scale_range_arcsec=None if args.pixel_scale is None
                        else tuple(args.pixel_scale),
                        position_hint=None if args.ra is None else (args.ra, args.dec),
                        position_radius_deg=args.radius,
                        parity_flip=None if args.parity is None else args.parity == "mirrored")


# per-process state of solve workers (the parent uses it too when --jobs 1)
_STATE: dict[str, Any] = {}


def _init_worker(db_path: str, camera_path: str | None, debug: bool) -> None:
    """ProcessPoolExecutor initializer: memory-map the database once per worker."""
    import signal

    from ..database import SolverDatabase

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if not debug:
        warnings.showwarning = _show_warning
    # the parent verified the checksums already
    _STATE["db"] = SolverDatabase.load_from_file(db_path, mmap=True, verify=False)
    _STATE["camera"] = _load_camera(camera_path)


def _velocity(path: Path, opts: _Job):
    """Earth's barycentric velocity at the observation time, or None when unknown/off."""
    if not opts.aberration:
        return None
    from ..sky.aberration import earth_barycentric_velocity

    if opts.date is not None:
        return earth_barycentric_velocity(opts.date)
    from ..io.images import image_epoch

    epoch = image_epoch(path, opts.hdu)
    if epoch is None:
        return None
    from astropy.time import Time

    return earth_barycentric_velocity(Time(epoch, format="jyear", scale="utc"))


def _wcs_header(res, offset: tuple[int, int], full_shape: tuple[int, int]):
    """FITS WCS header of a solution in the pixel grid of the full image."""
    from ..io.wcs import camera_to_wcs, wcs_to_header

    if offset == (0, 0) and tuple(full_shape) == res.camera_model.image_shape:
        return res.to_header()
    wcs = camera_to_wcs(res.camera_model, res.rotation_matrix_icrs_to_camera,
                        pixel_offset=offset)
    wcs.pixel_shape = (int(full_shape[1]), int(full_shape[0]))
    return wcs_to_header(wcs)


# keys of the primary WCS replaced when merging a new solution into a FITS header
_WCS_KEY_PATTERN = (r"^(WCSAXES|CRPIX\d|CRVAL\d|CTYPE\d|CUNIT\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d"
                    r"|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|WCSNAME"
                    r"|A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_\d+_\d+|B_\d+_\d+|AP_\d+_\d+"
                    r"|BP_\d+_\d+|A_DMAX|B_DMAX|SIP_\w+)$")
_TIME_KEYS = {"MJDREF", "MJDREFI", "MJDREFF", "DATEREF", "MJD-OBS", "DATE-OBS", "TIMESYS",
              "TIMEUNIT", "MJD-AVG", "DATE-AVG"}


def _write_wcs_file(path: Path, header, full_shape: tuple[int, int], source: Path) -> None:
    from astropy.io import fits

    from .. import __version__

    hdr = header.copy()
    for key in _TIME_KEYS & set(hdr.keys()):
        del hdr[key]
    hdr["IMAGEW"] = (int(full_shape[1]), "image width, px")
    hdr["IMAGEH"] = (int(full_shape[0]), "image height, px")
    hdr["HISTORY"] = f"WCS by skysolve {__version__} for {source.name}"
    _check_not_input(path, source)
    fits.PrimaryHDU(header=hdr).writeto(path, overwrite=True)


def _write_solved_fits(path: Path, src: Path, hdu: int | str | None, header) -> None:
    import re

    from astropy.io import fits

    from .. import __version__
    from ..errors import InvalidArgumentError

    _check_not_input(path, src)
    if not _is_fits(src):
        raise InvalidArgumentError(f"--update-fits needs a FITS image; {src} is not one")
    pattern = re.compile(_WCS_KEY_PATTERN)
    with fits.open(src, memmap=False) as hdul:
        if hdu is not None:
            target = hdul[hdu]
        else:
            target = next((h for h in hdul if h.is_image and h.header.get("NAXIS", 0) >= 2),
                          None)
            if target is None:
                raise InvalidArgumentError(f"{src} holds no image HDU")
        hdr = target.header
        for key in [k for k in hdr.keys() if pattern.match(k)]:
            del hdr[key]
        for card in header.cards:
            if card.keyword in ("NAXIS", "NAXIS1", "NAXIS2") or card.keyword in _TIME_KEYS:
                continue
            hdr[card.keyword] = (card.value, card.comment)
        hdr["HISTORY"] = f"WCS added by skysolve {__version__}"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()


def _plot_file(out: Path, image, res, centroids, db, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ..plotting import plot_solution

    h, w = image.shape
    fig = Figure(figsize=(10, 10 * h / w + 0.6))
    ax = fig.add_subplot()
    plot_solution(image, res, centroids, db=db, ax=ax)
    ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def _solve_one(file: str, plot: str | None, opts: _Job) -> dict[str, Any]:
    """Read, extract, solve and write the outputs of one image; a JSON-able record."""
    from ..errors import SkysolveError

    path = Path(file)
    record: dict[str, Any] = {"file": file}
    try:
        from ..extraction import extract
        from ..solver import solve

        db, camera = _STATE["db"], _STATE.get("camera")
        image, offset, full_shape = _read_input(path, opts.hdu, opts.section)
        record["image_width"], record["image_height"] = int(image.shape[1]), int(image.shape[0])
        ext = extract(image, opts.extraction)
        record["num_centroids"] = len(ext.centroids)
        velocity = _velocity(path, opts)
        record["aberration_corrected"] = velocity is not None
        res = solve(db, ext.centroids, opts.solve.replace(
            image_shape=image.shape, camera_model=camera, observer_velocity_km_s=velocity))
        if res:
            record.update(res.to_dict())
            centre = res.pixel_to_world(0.0, 0.0)
            record["center_ra_deg"], record["center_dec_deg"] = centre if centre else (None, None)
            record["pixel_scale_arcsec"] = math.degrees(res.camera_model.pixel_scale()) * 3600
            if opts.write_wcs or opts.update_fits:
                header = _wcs_header(res, offset, full_shape)
                base = _output_base(path)
                if opts.write_wcs:
                    out = base.with_name(base.name + ".wcs")
                    _write_wcs_file(out, header, full_shape, path)
                    record["wcs_file"] = str(out)
                if opts.update_fits:
                    out = base.with_name(base.name + ".solved.fits")
                    _write_solved_fits(out, path, opts.hdu, header)
                    record["solved_fits"] = str(out)
        else:
            record.update(status=res.status, message=res.message,
                          solve_time_ms=res.solve_time_ms)
        if plot is not None:
            _plot_file(Path(plot), image, res, ext.centroids, db, path.name)
            record["plot"] = plot
    except (SkysolveError, OSError, ValueError, ImportError) as exc:
        record = {"file": file, "status": "error", "message": _error_text(exc)}
        if opts.debug:
            record["traceback"] = traceback.format_exc()
    return _jsonable(record)


def _plot_targets(args: argparse.Namespace) -> list[str | None]:
    from ..errors import InvalidArgumentError

    if args.plot is None:
        return [None] * len(args.images)
    target = Path(args.plot)
    if len(args.images) == 1 and not target.is_dir() and target.suffix:
        target.parent.mkdir(parents=True, exist_ok=True)
        out = [target]
    elif target.suffix and not target.is_dir():
        raise InvalidArgumentError(
            f"--plot {args.plot}: give a directory when solving {len(args.images)} images")
    else:
        target.mkdir(parents=True, exist_ok=True)
        names = [_output_base(Path(f)).name for f in args.images]
        dup = {n for n in names if names.count(n) > 1}
        out = [target / (f"{n}_{i}.png" if n in dup else f"{n}.png")
               for i, n in enumerate(names)]
    for plot in out:
        for image in args.images:
            if Path(image).exists():
                _check_not_input(plot, Path(image))
    return [str(p) for p in out]


class _Table:
    """Aligned text table printed row by row."""

    COLUMNS = (("RA", 10), ("Dec", 10), ("roll", 8), ("FOV", 8), ("matches", 7),
               ("rmse\"", 7), ("time ms", 8))

    def __init__(self, files: Sequence[str]):
        self.width = max(4, min(60, max(len(f) for f in files)))
        head = "file".ljust(self.width) + "".join(f" {n:>{w}}" for n, w in self.COLUMNS)
        print(head)
        print("-" * len(head), flush=True)

    def row(self, rec: dict[str, Any]) -> None:
        name = rec["file"]
        if len(name) > self.width:
            name = "..." + name[-(self.width - 3):]
        line = name.ljust(self.width)
        if rec["status"] == "match_found":
            vals = (f"{rec['ra_deg']:.5f}", f"{rec['dec_deg']:.5f}", f"{rec['roll_deg']:.3f}",
                    f"{rec['fov_deg']:.4f}", str(rec["num_matches"]),
                    f"{rec['rmse_arcsec']:.2f}", f"{rec['solve_time_ms']:.1f}")
            line += "".join(f" {v:>{w}}" for v, (_, w) in zip(vals, self.COLUMNS, strict=True))
        else:
            status = rec["status"].replace("_", " ")
            line += f" {status}"
            if rec.get("solve_time_ms") is not None:
                line += f" ({rec['solve_time_ms']:.0f} ms)"
        print(line, flush=True)


def _cmd_solve(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    plots = _plot_targets(args)
    if args.plot is not None:
        from ..plotting import _require_matplotlib

        _require_matplotlib()
    camera = _load_camera(args.camera)
    missing = [f for f in args.images if not Path(f).exists()]
    if len(missing) == len(args.images):
        # nothing to solve: say so before loading (or building) a database
        for f in missing:
            _err(f"{f}: no such image file: {f}")
        return EXIT_ERROR
    solve_options = _solve_options(args)  # bad hints are refused before a database loads
    db, db_path = _load_database(args)
    opts = _Job(solve=solve_options, extraction=_extraction_options(args),
                hdu=args.hdu, section=args.section, aberration=not args.no_aberration,
                date=args.date, write_wcs=args.write_wcs, update_fits=args.update_fits,
                debug=args.debug)
    _STATE.update(db=db, camera=camera)
    if args.debug:
        _info(args, f"database {db_path} and options ready after "
                    f"{time.perf_counter() - t_start:.3f} s")
    jobs = min(args.jobs, len(args.images))
    table = None if args.json else _Table(args.images)
    counts = {"ok": 0, "unsolved": 0, "error": 0}

    def report(rec: dict[str, Any]) -> None:
        status = rec["status"]
        if status == "error":
            counts["error"] += 1
            _err(f"{rec['file']}: {rec['message']}")
            if rec.get("traceback"):
                print(rec["traceback"], file=sys.stderr, end="")
        elif status == "match_found":
            counts["ok"] += 1
        else:
            counts["unsolved"] += 1
        if table is not None:
            table.row(rec)
        else:
            out = {k: v for k, v in rec.items() if k != "traceback"}
            print(json.dumps(out), flush=True)

    if jobs <= 1:
        for file, plot in zip(args.images, plots, strict=True):
            report(_solve_one(file, plot, opts))
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker,
                                 initargs=(str(db_path), args.camera, args.debug)) as pool:
            for rec in pool.map(_solve_one, args.images, plots, [opts] * len(args.images)):
                report(rec)
    n = len(args.images)
    if counts["unsolved"] and not args.quiet:
        print(f"skysolve: {counts['unsolved']} of {n} image{'s' if n > 1 else ''} not solved",
              file=sys.stderr)
    if counts["error"]:
        return EXIT_ERROR
    return EXIT_UNSOLVED if counts["unsolved"] else EXIT_OK


