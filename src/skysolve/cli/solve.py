"""``skysolve solve``: read, extract, solve and write the outputs of images."""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import atomic_path
from ..errors import SkysolveError, warn_caller
from .common import (
    _check_not_input,
    _date_misuse,
    _err,
    _extraction_options,
    _full_frame,
    _info,
    _is_fits,
    _jsonable,
    _load_camera,
    _load_database,
    _output_base,
    _results_misuse,
    _show_warning,
    one_shot_backend,
    retry_sigma,
)
from .parser import EXIT_ERROR, EXIT_OK, EXIT_UNSOLVED, EXIT_USAGE


@dataclass(frozen=True)
class _Job:
    """What every image of a ``solve`` command gets: the library's options and the CLI's."""

    solve: Any           # SolveOptions, with the camera model
    extraction: Any      # ExtractionOptions
    hdu: int | str | None
    section: str | None
    aberration: bool
    date: _dt.datetime | None
    write_wcs: bool
    update_fits: bool
    debug: bool
    plots: dict[str, str]  # image -> plot file
    narrower: bool = False  # no --db: a frame told no scale tries narrower cached databases


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
                        parity_flip=None if args.parity is None else args.parity == "mirrored",
                        backend=one_shot_backend(len(args.images),
                                                 args.scheduler is not None))


#: The library's names of the hints in error messages, and their options.
_OPTION_NAMES = (("fov_range_deg", "--fov-range"), ("pixel_scale_range_arcsec", "--pixel-scale"),
                 ("position_hint[0] (RA, degrees)", "--ra"),
                 ("position_hint[1] (Dec, degrees)", "--dec"),
                 ("position_radius_deg", "--radius"), ("fov_estimate_deg", "--fov"),
                 ("fov_max_error_deg", "--fov-error"), ("parity_flip", "--parity"),
                 ("projection", "--projection"), ("position_hint", "--ra/--dec"),
                 ("the camera model's", "--camera's"))


def _option_names(message: str) -> str:
    """An error message of the solve options with the command's option names."""
    for name, option in _OPTION_NAMES:
        message = message.replace(name, option)
    return message


def _velocity(path: Path, opts: _Job):
    """Earth's barycentric velocity at the observation time, or None when unknown/off."""
    if not opts.aberration:
        return None
    from ..sky.aberration import earth_barycentric_velocity

    if opts.date is not None:
        return earth_barycentric_velocity(opts.date)
    return file_velocity(path, opts.hdu)


def file_velocity(path: Path, hdu: Any):
    """Earth's barycentric velocity at the observation time an image file's FITS header
    gives, or None (with a warning when it has a date card that gives no time)."""
    from ..io.images import image_epoch, unread_time_cards
    from ..sky.aberration import earth_barycentric_velocity

    epoch = image_epoch(path, hdu)
    if epoch is None:
        cards = unread_time_cards(path, hdu)
        if cards:  # (a header that says when, unreadably: not to be passed over silently)
            told = ", ".join(f"{key} = {value!r}" for key, value in cards.items())
            warn_caller(f"{Path(path).name}: no observation time could be read from "
                        f"{told}: without the aberration correction (--date gives the "
                        "time)", UserWarning)
        return None
    from astropy.time import Time

    return earth_barycentric_velocity(Time(epoch, format="jyear", scale="utc"))


def _wcs_header(res, offset: tuple[int, int], full_shape: tuple[int, int]):
    """FITS WCS header of a solution in the pixel grid of the full image."""
    from ..io.wcs import camera_to_wcs, wcs_to_header

    if offset == (0, 0) and tuple(full_shape) == res.camera_model.image_shape:
        return res.to_header()
    wcs = camera_to_wcs(*res.wcs_geometry(), pixel_offset=offset)
    wcs.pixel_shape = (int(full_shape[1]), int(full_shape[0]))
    return wcs_to_header(wcs)


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
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(header=hdr).writeto(tmp)


def _write_solved_fits(path: Path, src: Path, hdu: int | str | None, header) -> None:
    """The input FITS file with the solution in the header of the image HDU that was
    solved (as ``skysolve-field``'s ``.new``: the HDUs as stored, old WCS keys removed)."""
    from astropy.io import fits

    from .. import __version__
    from ..errors import InvalidArgumentError
    from ..io.astrometry_files import write_fits_with_wcs

    _check_not_input(path, src)
    if not _is_fits(src):
        raise InvalidArgumentError(f"--update-fits needs a FITS image; {src} is not one")
    cards = fits.Header([card for card in header.cards if card.keyword not in (
        "NAXIS", "NAXIS1", "NAXIS2") and card.keyword not in _TIME_KEYS])
    cards["HISTORY"] = f"WCS added by skysolve {__version__}"
    write_fits_with_wcs(path, src, cards, hdu)


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
    kind = out.suffix[1:].lower() or "png"
    with atomic_path(out) as tmp:  # (the file type its name says: checked by _plot_targets)
        fig.savefig(tmp, dpi=100, format=kind, **_PLOT_MARKS.get(kind, {}))


# What a plot file carries to say skysolve wrote it: an existing file without it (a
# camera frame named by mistake) is never replaced by a plot
_PLOT_MARK = "skysolve solve --plot"
_PLOT_MARKS = {
    **{k: {"metadata": {"Creator": _PLOT_MARK}} for k in ("pdf", "svg", "ps", "eps")},
    "png": {"metadata": {"Software": _PLOT_MARK}},
    **{k: {"pil_kwargs": {"comment": _PLOT_MARK}} for k in ("jpg", "jpeg")},
    **{k: {"pil_kwargs": {"description": _PLOT_MARK}} for k in ("tif", "tiff")},
}


def _is_plot_file(path: Path) -> bool:
    """Whether the file at ``path`` is a plot skysolve wrote (its mark in the first or
    last 64 KiB: PNG/JPEG/TIFF put it in a header, PDF in its closing information)."""
    mark = _PLOT_MARK.encode()
    with open(path, "rb") as f:
        head = f.read(65536)
        f.seek(max(f.seek(0, os.SEEK_END) - 65536, 0))
        return mark in head or mark in f.read()


def _solve_one(job: _Job, handle, file: str):
    """Read, extract, solve and write the outputs of one image (on a worker): a FrameResult."""
    from ..batch.solve_many import process_frame

    if not job.debug:
        warnings.showwarning = _show_warning
    path = Path(file)
    info: dict[str, Any] = {}

    def velocity(_source: Any):
        v = _velocity(path, job)
        info["aberration_corrected"] = v is not None
        return v

    fr, image, ext = process_frame(file, handle.database, job.solve, job.extraction,
                                   hdu=job.hdu, section=job.section,
                                   observer_velocity=velocity)
    db = handle.database
    if job.narrower and fr.status == "no_match":
        from ..batch.deeper import deeper_limits
        from ..batch.sources import frame_section, section_options
        from ..defaultdb import solve_in_narrower

        tries = {}
        spent = {"solve": 0.0, "total": 0.0, "cpu": 0.0}

        # (the frame's extraction searched again, as solve_image does: not read and
        # extracted anew, nor extracted deeper, which would take it past the time limit)
        @functools.cache
        def section_solve():  # (the whole image's options made the section's, once)
            return section_options(job.solve, *frame_section(file, hdu=job.hdu,
                                                             section=job.section))

        def again(other, limit_ms):
            options = job.solve if job.section is None else section_solve()
            out = process_frame(ext, other, options.replace(**deeper_limits(
                job.solve.solve_timeout_ms, job.solve.max_hypotheses_verified, limit_ms)),
                job.extraction, observer_velocity=velocity)[0]
            for key in spent:
                spent[key] += out.timings.get(key, 0.0)
            if out.result:
                tries[id(other)] = out
            return out.result

        _, narrow = solve_in_narrower(again, fr.result, {"options": job.solve},
                                      fr.image_shape[1] if fr.image_shape else None)
        first = fr.timings
        if narrow is not None:
            fr = tries[id(narrow)]
            db = narrow
            info["database"] = os.fspath(getattr(narrow, "file_path", "") or "")
        # (the frame's time: every attempt's, failed ones included)
        fr.timings = {**first, **{key: first.get(key, 0.0) + spent[key] for key in spent}}
    fr.info = info
    if fr.status == "error":
        return fr
    try:
        if fr:
            fr.info.update(_write_outputs(fr.result, path, job, fr.image_shape))
        plot = job.plots.get(os.path.abspath(file))
        if plot is not None:
            _plot_file(Path(plot), image, fr.result, ext.centroids, db, path.name)
            fr.info["plot"] = plot
    except Exception as exc:  # noqa: BLE001 - the frame's error, as process_frame does
        from ..batch.solve_many import frame_error

        frame_error(fr, exc)
    return fr


def _write_outputs(res, path: Path, job: _Job, shape: tuple[int, int]) -> dict[str, str]:
    """--write-wcs and --update-fits of a solved image: the files written."""
    out: dict[str, str] = {}
    if not (job.write_wcs or job.update_fits):
        return out
    offset, full_shape = _full_frame(path, job.hdu, job.section, shape)
    header = _wcs_header(res, offset, full_shape)
    base = _output_base(path)
    if job.write_wcs:
        wcs_path = base.with_name(base.name + ".wcs")
        _write_wcs_file(wcs_path, header, full_shape, path)
        out["wcs_file"] = str(wcs_path)
    if job.update_fits:
        fits_path = base.with_name(base.name + ".solved.fits")
        _write_solved_fits(fits_path, path, job.hdu, header)
        out["solved_fits"] = str(fits_path)
    return out


def _record(fr, debug: bool) -> dict[str, Any]:
    """The JSON record (and table row) of a frame."""
    file = os.fspath(fr.source)
    if fr.status == "error":
        record = {"file": file, "status": "error", "message": fr.error}
        if debug and fr.traceback:
            record["traceback"] = fr.traceback
        return _jsonable(record)
    height, width = fr.image_shape or (None, None)
    record: dict[str, Any] = {"file": file, "image_width": width, "image_height": height,
                              "num_centroids": fr.num_centroids}
    res = fr.result
    if fr.resumed:  # what the results table holds of it
        record.update(res.to_dict() if res else {"status": res.status,
                                                 "solve_time_ms": res.solve_time_ms})
        record["resumed"] = True
        return _jsonable(record)
    record["aberration_corrected"] = fr.info.get("aberration_corrected", False)
    if res:
        record.update(res.to_dict())
        centre = res.pixel_to_world(0.0, 0.0)
        record["center_ra_deg"], record["center_dec_deg"] = centre if centre else (None, None)
        record["pixel_scale_arcsec"] = math.degrees(res.camera_model.pixel_scale()) * 3600
    else:
        record.update(status=res.status, message=res.message, solve_time_ms=res.solve_time_ms)
    for key in ("wcs_file", "solved_fits", "plot", "database"):
        if key in fr.info:
            record[key] = fr.info[key]
    return _jsonable(record)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse before solving what ``--write-wcs``/``--update-fits`` could not do right: two
    images whose output would be one file (``a.fits`` and ``a.tiff`` both write
    ``a.wcs``: the second replaced the first), and ``--update-fits`` of an image that is
    no FITS file (its solve was reported as an error after the fact). ``calibrate``'s
    ``--write-wcs`` is checked here too (it has no ``--update-fits``)."""
    from ..errors import InvalidArgumentError

    update_fits = getattr(args, "update_fits", False)
    suffixes = [s for s, on in ((".wcs", args.write_wcs), (".solved.fits", update_fits))
                if on]
    seen: dict[str, tuple[str, str]] = {}  # output file -> (image, the image's own file)
    for image in args.images:
        base = _output_base(Path(image))
        real = os.path.realpath(image)  # (one image named twice writes its files once)
        for suffix in suffixes:
            # the directory's real path: through a symlinked one (or ..), two names of one
            # file were two files, and one image's output replaced the other's, or the
            # other image itself; the name kept, as the write renames onto it
            target = os.path.join(os.path.realpath(base.parent), base.name + suffix)
            if target in seen and seen[target][1] != real:
                raise InvalidArgumentError(
                    f"{seen[target][0]} and {image} would both write {base.name + suffix}: "
                    "solve them in separate runs, or rename one")
            seen[target] = (image, real)
    # (an output that is another input of the run: a second '--update-fits' run over
    # 'dir/*.fits' took in a.solved.fits and rewrote it while it was being solved)
    inputs = {os.path.realpath(image): image for image in args.images}
    for target, (image, real) in seen.items():
        other = inputs.get(os.path.realpath(target))
        if other is not None and os.path.realpath(other) != real:
            raise InvalidArgumentError(
                f"{other} is an input and the output {image} would write: leave it out of "
                "the inputs (or solve the two in separate runs)")
    if update_fits:
        for image in args.images:
            if Path(image).exists() and not _is_fits(Path(image)):
                raise InvalidArgumentError(
                    f"--update-fits needs FITS images; {image} is not one (--write-wcs "
                    "writes a .wcs file beside any image)")


def _plot_targets(args: argparse.Namespace) -> list[str | None]:
    from ..errors import InvalidArgumentError

    if args.plot is None:
        return [None] * len(args.images)
    target = Path(args.plot)
    if len(args.images) == 1 and not target.is_dir() and target.suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        # a PNG in a file named .pdf or .jpg (as was written) is not what was asked for
        kind = target.suffix[1:].lower()
        if kind not in FigureCanvasBase.get_supported_filetypes():
            raise InvalidArgumentError(
                f"--plot {args.plot}: matplotlib cannot write .{kind} files; name a .png, "
                ".pdf, .svg or .jpg file, or a directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        out = [target]
    elif target.suffix and not target.is_dir():
        raise InvalidArgumentError(
            f"--plot {args.plot}: give a directory when solving {len(args.images)} images")
    else:
        if target.exists() and not target.is_dir():
            raise InvalidArgumentError(
                f"--plot {args.plot}: a file, not a directory for the plots of "
                f"{len(args.images)} image{'s' if len(args.images) > 1 else ''}")
        target.mkdir(parents=True, exist_ok=True)
        names = [_output_base(Path(f)).name for f in args.images]
        dup = {n for n in names if names.count(n) > 1}
        out = [target / (f"{n}_{i}.png" if n in dup else f"{n}.png")
               for i, n in enumerate(names)]
    for plot in out:
        for image in args.images:
            if Path(image).exists():
                _check_not_input(plot, Path(image))
        # (``--plot a.png b.png`` meant to solve both: a.png, a camera frame, became the
        # plot and was replaced by it)
        if plot.is_file() and not _is_plot_file(plot):
            raise InvalidArgumentError(
                f"--plot {args.plot}: {plot} exists and is not a plot skysolve wrote; "
                "delete it or name another file (images to solve go before --plot)")
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


class _Report:
    """Prints each frame's table row or JSON line, and its error on stderr."""

    def __init__(self, args: argparse.Namespace):
        self.debug = args.debug
        self.quiet = args.quiet
        self.table = None if args.json else _Table(args.images)

    def __call__(self, _index: int, fr) -> None:
        rec = _record(fr, self.debug)
        if rec["status"] == "error":
            _err(f"{rec['file']}: {rec['message']}")
            if rec.get("traceback"):
                print(rec["traceback"], file=sys.stderr, end="")
        elif (rec["status"] != "match_found" and rec.get("message") and not self.quiet
              and self.table is not None):
            # why it did not solve (a field of view outside the database's, ...): the
            # table row has room for the status only; a JSON line carries the message
            print(f"skysolve: {rec['file']}: {rec['message']}", file=sys.stderr, flush=True)
        if self.table is not None:
            self.table.row(rec)
        else:
            out = {k: v for k, v in rec.items() if k != "traceback"}
            print(json.dumps(out), flush=True)


def _cmd_solve(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    misuse = _date_misuse(args) or _results_misuse(args)
    if misuse is not None:
        return misuse
    if args.plot is not None:  # (before _plot_targets, which asks matplotlib)
        from ..plotting import _require_matplotlib

        _require_matplotlib()
    plots = _plot_targets(args)
    _check_outputs(args)
    camera = _load_camera(args.camera)
    missing = [f for f in args.images if not Path(f).exists()]
    if len(missing) == len(args.images):
        # nothing to solve: say so before loading (or building) a database
        for f in missing:
            _err(f"{f}: no such image file: {f}")
        return EXIT_ERROR
    try:  # bad hints are refused before a database loads, as the usage errors they are
        solve_options = _solve_options(args).replace(camera_model=camera)
    except SkysolveError as exc:
        _err(_option_names(str(exc)))
        return EXIT_USAGE
    from ..defaultdb import fields_told

    # (a pixel scale's field is the first image's width times it: that chooses the
    # database, as skysolve-field's does; the other images' are solved in the same one)
    width = (_first_width(args) if args.pixel_scale is not None and not args.db
             and camera is None else None)
    db, db_path = _load_database(args, fields_told({"options": solve_options}, width))
    from ..batch import BatchTerminated, DatabaseHandle, run_frames

    job = _Job(solve=solve_options,
               extraction=_extraction_options(args).replace(
                   backend=solve_options.backend, retry_sigma_threshold=retry_sigma(args)),
               hdu=args.hdu, section=args.section,
               aberration=not args.no_aberration, date=args.date, write_wcs=args.write_wcs,
               update_fits=args.update_fits, debug=args.debug,
               # (absolute, as the frames reach the workers: batch.solve_many._portable)
               plots={os.path.abspath(f): os.path.abspath(p)
                      for f, p in zip(args.images, plots, strict=True) if p is not None},
               narrower=not args.db)
    if args.debug:
        _info(args, f"database {db_path} and options ready after "
                    f"{time.perf_counter() - t_start:.3f} s")
    handle = DatabaseHandle(db)
    try:
        batch = run_frames(functools.partial(_solve_one, job, handle), args.images,
                           database=handle, client=args.scheduler, jobs=args.jobs,
                           results=args.results, resume=args.resume, overwrite=args.overwrite,
                           progress=False if args.quiet else None, on_result=_Report(args),
                           report_resumed=True)
    except (KeyboardInterrupt, BatchTerminated):
        if args.results and os.path.exists(args.results):  # (none is written before a frame)
            _info(args, f"the frames done are in {args.results}; run again with --resume to "
                        "finish")
        raise
    return _finish(args, batch, db)


def _first_width(args: argparse.Namespace) -> int | None:
    """The width (px) of the first of ``args.images`` that reads (its --hdu and --section),
    or None when none does (each frame then reports its own error)."""
    from ..errors import SkysolveError
    from ..io.images import read_image

    for f in args.images:
        try:
            return int(read_image(f, hdu=args.hdu, section=args.section).shape[-1])
        except (SkysolveError, OSError, ValueError):
            continue
    return None


def _scale_advice(args: argparse.Namespace, batch, db) -> str | None:
    """What to try when frames searched without a scale found no match: the search
    without one spans the database's fields of view and wider ones (a pinhole's to
    :data:`~skysolve.solver.solve.BLIND_WIDEST_FOV_DEG`), and a field far narrower is
    neither found nor said to be out of range."""
    if (args.fov is not None or args.fov_range is not None or args.pixel_scale is not None
            or args.camera is not None):
        return None
    if not any(fr.status in ("no_match", "timeout") for fr in batch):
        return None
    # (a fisheye's projection named already: the advice to name it misled)
    lens = ("; a fisheye or all-sky lens needs --projection"
            if args.projection in (None, "pinhole") else "")
    # (without --db, the cached databases of narrower fields were searched too)
    then = "then --db" if args.db else "which later solves search too (or --db)"
    return (f"skysolve: (no scale given: the search spanned the database's fields of view, "
            f"{db.min_fov_deg:g}-{db.max_fov_deg:g} deg wide, and wider ones; a field much "
            f"narrower needs a database built for it: skysolve db build --min-fov A "
            f"--max-fov B, {then}{lens})")


def _finish(args: argparse.Namespace, batch, db) -> int:
    """Summary lines on stderr and the exit status."""
    n = len(batch)
    resumed = sum(fr.resumed for fr in batch)
    if resumed:
        _info(args, f"{resumed} of {n} images already done in {args.results} (--resume)")
        asked = [name for name, on in (("--write-wcs", args.write_wcs),
                                       ("--update-fits", getattr(args, "update_fits", False)),
                                       ("--plot", args.plot is not None)) if on]
        if asked:
            # (a resumed frame is taken from the table, not solved: nothing is written
            # for it, which went unsaid)
            _info(args, f"{' and '.join(asked)}: not written for the {resumed} "
                        f"image{'s' if resumed != 1 else ''} taken from the results table "
                        "(solve them again without --resume for their files)")
    not_solved = batch.num_unsolved + batch.num_failed
    # (one image that failed has said so in its error line)
    if (batch.num_unsolved or (batch.num_failed and n > 1)) and not args.quiet:
        # (the frames that failed count: "4 of 17 not solved" was said where 9 more failed)
        failed = f" ({batch.num_failed} of them failed)" if batch.num_failed else ""
        print(f"skysolve: {not_solved} of {n} image{'s' if n > 1 else ''} not solved{failed}",
              file=sys.stderr)
    if batch.num_unsolved and not args.quiet:
        advice = _scale_advice(args, batch, db)
        if advice:
            print(advice, file=sys.stderr)
    if n > 1:
        _info(args, batch.summary())
    if batch.num_failed:
        return EXIT_ERROR
    return EXIT_UNSOLVED if batch.num_unsolved else EXIT_OK
