"""The ``skysolve`` command line: solve images, calibrate cameras, manage databases.

Run ``skysolve --help`` or ``skysolve COMMAND --help``. Entry points: the
``skysolve`` console script and ``python -m skysolve`` both call :func:`main`.

Exit codes (also in ``skysolve --help``):

* 0 - success (every image solved);
* 1 - an error: a missing, unreadable or corrupted image, database or camera file,
  an image that cannot be written, a failed calibration;
* 2 - a usage error (unknown option, bad option value);
* 3 - no error, but at least one image did not solve (no match, too few stars,
  timeout);
* 130 - interrupted (Ctrl-C).

Only the standard library is imported at start-up so that ``--help`` and
``--version`` answer at once; numpy, scipy, astropy and matplotlib are imported
by the commands that need them.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import logging
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNSOLVED"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNSOLVED = 3
EXIT_INTERRUPTED = 130

#: Match radius (fraction of the image width) of calibration pass k = 1, 2, 3, 4, ...
#: (the seed notebook's schedule; passes after the 4th keep the last radius).
CALIBRATION_MATCH_RADII = (0.01, 0.005, 0.003, 0.002)
#: Polynomial order of pass k is ``min(order, CALIBRATION_FIRST_ORDER + k - 1)``.
CALIBRATION_FIRST_ORDER = 3

_EXIT_CODES_TEXT = """\
exit status:
  0  every image solved (or the command succeeded)
  1  error: missing/unreadable image, database or camera file, write failure
  2  usage error: unknown option or bad option value
  3  no error, but at least one image did not solve (no match, too few stars, timeout)
"""

_MAIN_EPILOG = f"""\
examples:
  skysolve solve image.fits                     solve with the default database (built once)
  skysolve solve *.tiff --fov 11.4 --json       one JSON line per image
  skysolve solve img.fits --write-wcs --plot img.png
  skysolve calibrate frames/*.fits --order 4 -o camera.json
  skysolve db build                             build the default database ahead of time
  skysolve db info                              show the cache and its databases

{_EXIT_CODES_TEXT}
environment:
  SKYSOLVE_CACHE  directory of the cached default database
  SKYSOLVE_DB     database file to use instead of the default (like --db)
"""

_SOLVE_EPILOG = f"""\
examples:
  skysolve solve image.tiff
  skysolve solve a.fits b.fits c.fits --fov 11.4 --jobs 2 --json > results.jsonl
  skysolve solve tess_ffi.fits --hdu 1 --section "[:2048, 44:2092]" --fov 12 --sigma 300 \\
      --min-pixels 4 --bg-block 16 --max-elongation 6
  skysolve solve image.fits --write-wcs --update-fits --plot image_solved.png
  skysolve solve *.fits --plot plots/ --camera camera.json

Output: a table (file, RA, Dec, roll, FOV, matches, RMSE, solve time), or with --json
one JSON object per line: the solution's fields (SolveResult.to_dict()) plus file,
status ('match_found', 'no_match', 'too_few', 'timeout', 'invalid_config' or 'error'),
image_width, image_height, num_centroids and the sky position of the image centre.
--write-wcs writes IMAGE.wcs (a FITS header-only file, as astrometry.net does);
--update-fits writes IMAGE.solved.fits, a copy of a FITS input with the WCS merged into
the image header (the input is never modified). With --section the WCS refers to the
full image's pixel grid.

Annual aberration (~20") is removed using the observation time from DATE-AVG/DATE-OBS/
MJD-OBS of FITS inputs, or --date; --no-aberration turns this off.

{_EXIT_CODES_TEXT}"""

_CALIBRATE_EPILOG = f"""\
schedule (the seed notebook's multi-pass scheme), pass k = 1..PASSES:
  solve every image with the current camera model (none in pass 1: --fov and
  --fov-error then; later passes the model's FOV within 0.5 deg), match radius
  0.01, 0.005, 0.003, 0.002 (then 0.002) of the image width and 10 refinement
  iterations; then fit one shared camera model to all solved images, polynomial
  order min(ORDER, k + 2) (i.e. 3, 4, 5, 6 for --order 6), or a radial model with
  --radial. Each pass prints "n/N solved, calibration RMSE before -> after px,
  inliers". Finally every image is solved once more with the calibrated camera.

examples:
  skysolve calibrate frames/*.tiff --fov 11.4 -o camera.json
  skysolve calibrate ffi_*.fits --hdu 1 --section "[:2048, 44:2092]" --sigma 300 \\
      --min-pixels 4 --bg-block 16 --max-elongation 6 --fov 11.8 --order 6 \\
      -o tess_cam1_ccd1.json
  skysolve solve new.fits --camera camera.json

Writes the camera model (JSON, CameraModel.load_from_file reads it) and beside it
CAMERA.sip.fits, a FITS header with the TAN-SIP WCS of the first solved image.

{_EXIT_CODES_TEXT}"""

_DB_EPILOG = """\
examples:
  skysolve db build                                   default: Gaia, 5-30 deg, into the cache
  skysolve db build --catalog hipparcos --min-fov 10 --max-fov 20 -o hip_10_20.db
  skysolve db info                                    cache location and cached databases
  skysolve db info hip_10_20.db
"""


# ------------------------------------------------------------------ argument parsing


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line: ``skysolve: error: ...``."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"skysolve: error: {message} (see '{self.prog} --help')\n")


def _number(kind: type, low: float | None = None, high: float | None = None,
            what: str | None = None) -> Any:
    """argparse type: a finite ``kind`` number with ``low < value < high``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if (low is not None and value <= low) or (high is not None and value >= high):
            rule = what or (f"> {low:g}" if high is None else f"in ({low:g}, {high:g})")
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in messages
    return parse


_positive = _number(float, 0.0)
_fov = _number(float, 0.0, 180.0, what="in (0, 180) degrees")
_fraction = _number(float, 0.0, 1.0)
_positive_int = _number(int, 0.0)


def _hdu(text: str) -> int | str:
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("expected an HDU index or extension name")
    try:
        n = int(text)
    except ValueError:
        return text
    if n < 0:
        raise argparse.ArgumentTypeError(f"HDU index must be >= 0, got {n}")
    return n


def _section(text: str) -> str:
    from .errors import SkysolveError
    from .imageio import _parse_section_text

    try:
        _parse_section_text(text)
    except SkysolveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _date(text: str) -> _dt.datetime:
    try:
        d = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date and time such as 2019-07-29T20:47:26 (UTC), got {text!r}"
        ) from None
    return d


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skysolve`` command (for documentation tools)."""
    from . import __version__

    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show full tracebacks and warnings for errors")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="no progress messages on stderr")

    images = _Parser(add_help=False)
    g = images.add_argument_group("image options")
    g.add_argument("--hdu", type=_hdu, metavar="N|NAME",
                   help="FITS HDU to read (index or EXTNAME); default: the first image HDU")
    g.add_argument("--section", type=_section, metavar='"[ROWS, COLS]"',
                   help='solve part of the image, numpy order, e.g. "[:2048, 44:2092]"')
    g.add_argument("--sigma", type=_positive, default=5.0, metavar="S",
                   help="star detection threshold in background sigmas (default 5)")
    g.add_argument("--min-pixels", type=_positive_int, default=3, metavar="N",
                   help="smallest star size in pixels above the threshold (default 3)")
    g.add_argument("--max-elongation", type=_number(float, 1.0, what="> 1"), default=3.0,
                   metavar="E", help="reject blobs more elongated than this (default 3)")
    g.add_argument("--bg-block", type=_number(int, 3.0, what=">= 4"), default=64, metavar="PX",
                   help="block size of the local background estimate, px (default 64)")
    g.add_argument("--max-stars", type=_positive_int, metavar="N",
                   help="use only the N brightest stars (default all)")
    g = images.add_argument_group("solver options")
    g.add_argument("--db", metavar="PATH", default=os.environ.get("SKYSOLVE_DB") or None,
                   help="solver database file (default: $SKYSOLVE_DB, else the cached "
                        "default database, built on first use)")
    g.add_argument("--timeout", type=_positive, default=5000.0, metavar="MS",
                   help="give up on an image after this many milliseconds (default 5000)")

    parser = _Parser(
        prog="skysolve",
        description="Lost-in-space star plate solving and star-camera calibration.",
        epilog=_MAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common])
    parser.add_argument("--version", action="version", version=f"skysolve {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # -- solve
    p = sub.add_parser("solve", help="plate-solve images", parents=[common, images],
                       description="Find the sky position and orientation of star images.",
                       epilog=_SOLVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="FITS, PNG, JPEG or TIFF images")
    p.add_argument("--fov", type=_fov, metavar="DEG",
                   help="estimated horizontal field of view, degrees (default: search the "
                        "database's whole range)")
    p.add_argument("--fov-error", type=_positive, metavar="DEG",
                   help="largest error of --fov, degrees (default: 0.6x to 1.7x --fov)")
    p.add_argument("--camera", metavar="CAMERA.json",
                   help="calibrated camera model (fixes focal length, centre, distortion)")
    p.add_argument("--match-radius", type=_fraction, default=0.01, metavar="R",
                   help="star match radius as a fraction of the image width (default 0.01)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--write-wcs", action="store_true",
                   help="write IMAGE.wcs (FITS header with the WCS) beside each image")
    p.add_argument("--update-fits", action="store_true",
                   help="write IMAGE.solved.fits: a copy of a FITS input with the WCS added")
    p.add_argument("--plot", metavar="OUT.png|DIR",
                   help="draw the image with matched and catalog stars (a directory for "
                        "several images)")
    p.add_argument("--jobs", "-j", type=_positive_int, default=1, metavar="N",
                   help="solve N images in parallel processes (default 1)")
    p.add_argument("--date", type=_date, metavar="ISO",
                   help="observation time (UTC) for the aberration correction (default: "
                        "from the FITS header)")
    p.add_argument("--no-aberration", action="store_true",
                   help="do not correct annual aberration even when the time is known")
    p.set_defaults(func=_cmd_solve)

    # -- calibrate
    p = sub.add_parser("calibrate", help="fit a camera model from several images",
                       parents=[common, images],
                       description="Calibrate one camera model (focal length, optical centre,\n"
                                   "distortion) from star images taken with the same camera.",
                       epilog=_CALIBRATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images of the same camera")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--order", type=_number(int, 0.0, 7.0, what="between 1 and 6"),
                       default=4, metavar="N",
                       help="polynomial distortion order of the last passes (default 4)")
    model.add_argument("--radial", action="store_true",
                       help="fit a radial (Brown-Conrady) distortion instead")
    p.add_argument("--passes", type=_number(int, 0.0, 21.0, what="between 1 and 20"),
                   default=4, metavar="N", help="solve/calibrate passes (default 4)")
    p.add_argument("--fov", type=_fov, metavar="DEG",
                   help="estimated horizontal field of view for the first pass, degrees")
    p.add_argument("--fov-error", type=_positive, metavar="DEG",
                   help="largest error of --fov in the first pass, degrees")
    p.add_argument("--camera", metavar="CAMERA.json",
                   help="start from this camera model instead of an uncalibrated pinhole")
    p.add_argument("-o", "--output", required=True, metavar="CAMERA.json",
                   help="where to write the camera model (and CAMERA.sip.fits beside it)")
    p.set_defaults(func=_cmd_calibrate)

    # -- db
    p = sub.add_parser("db", help="build or inspect solver databases", parents=[common],
                       description="Build or inspect solver databases.", epilog=_DB_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    b = dbsub.add_parser("build", help="build a database (default: the cached default one)",
                         description="Build a solver database from a bundled catalog, into "
                                     "the cache\n(the default database when no option is "
                                     "given) or into a file with -o.",
                         parents=[common], epilog=_DB_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--catalog", choices=("gaia", "hipparcos"), default=None,
                   help="bundled catalog (default gaia)")
    b.add_argument("--min-fov", type=_fov, metavar="DEG", help="smallest field of view (5)")
    b.add_argument("--max-fov", type=_fov, metavar="DEG", help="largest field of view (30)")
    b.add_argument("--pattern-max-error", type=_number(float, 0.0, 0.25, what="in (0, 0.25)"),
                   metavar="E", help="edge-ratio tolerance of patterns (default 0.005)")
    b.add_argument("--epoch", type=_number(float, 1000.0, 3000.0, what="a year"),
                   metavar="YEAR", help="proper-motion epoch of the star positions (2025)")
    b.add_argument("-o", "--output", metavar="PATH",
                   help="write the database here instead of into the cache")
    b.set_defaults(func=_cmd_db_build)
    i = dbsub.add_parser("info", help="show a database file, or the cache", parents=[common],
                         description="Show a database's parameters, counts and size, or the "
                                     "cache directory\nand the databases cached there.",
                         epilog=_DB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("path", nargs="?", metavar="PATH",
                   help="database file (default: list the cache)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_cmd_db_info)
    p.set_defaults(func=lambda args: _usage(p, "choose an action: build or info"))

    # -- demo (arguments are passed through untouched; see main())
    sub.add_parser("demo", help="run the demonstration (skysolve demo --help)", add_help=False)
    return parser


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"skysolve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# ------------------------------------------------------------------ output helpers


def _err(message: str) -> None:
    print(f"skysolve: error: {message}", file=sys.stderr, flush=True)


def _info(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"skysolve: {message}", file=sys.stderr, flush=True)


def _jsonable(value: Any) -> Any:
    """Strict-JSON version of a value: numpy scalars/arrays to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename and str(exc.filename) \
            not in exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line


@contextlib.contextmanager
def _console(debug: bool, quiet: bool) -> Iterator[None]:
    """Route library warnings and log messages to stderr as ``skysolve: ...`` lines."""
    logger = logging.getLogger("skysolve")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("skysolve: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


# ------------------------------------------------------------------ images and databases


def _is_fits(path: Path) -> bool:
    from .errors import FileFormatError
    from .imageio import read_fits_header

    try:
        read_fits_header(path)
    except FileFormatError:
        return False
    return True


def _read_input(path: Path, hdu: int | str | None, section: str | None):
    """Image array, 0-based (col, row) of its first pixel in the file, full (H, W) shape."""
    from .imageio import parse_section, read_fits_header, read_image

    image = read_image(path, hdu=hdu, section=section)
    if section is None:
        return image, (0, 0), image.shape
    if _is_fits(path):
        hdr = read_fits_header(path, hdu)
        full = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    else:
        full = read_image(path).shape
    rows, cols = parse_section(section, full)
    return image, (cols.start, rows.start), full


def _output_base(path: Path) -> Path:
    """``dir/foo.fits.gz`` -> ``dir/foo``, ``dir/foo.tiff`` -> ``dir/foo``."""
    name = path.name
    for suffix in (".gz", ".bz2", ".fz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    stem, ext = os.path.splitext(name)
    return path.with_name(stem if stem else name)


def _check_not_input(out: Path, src: Path) -> None:
    from .errors import InvalidArgumentError

    if out.resolve() == src.resolve():
        raise InvalidArgumentError(f"refusing to overwrite the input image {src}")


def _load_database(args: argparse.Namespace):
    """(database, its file) from --db, or the cached default database."""
    from .database import SolverDatabase

    if args.db:
        path = Path(args.db)
        return SolverDatabase.load_from_file(path, mmap=True, verify=True), path
    from .defaultdb import default_database, default_database_path

    db = default_database(progress=None if not args.quiet else False)
    return db, default_database_path()


def _extraction_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of extract_centroids from the image options."""
    return {"sigma_threshold": args.sigma, "min_pixels": args.min_pixels,
            "max_elongation": args.max_elongation, "local_bg_block_size": args.bg_block,
            "max_centroids": args.max_stars}


def _load_camera(path: str | None):
    if path is None:
        return None
    from .camera import CameraModel

    return CameraModel.load_from_file(path)


# ------------------------------------------------------------------ solve


@dataclass(frozen=True)
class _SolveOptions:
    hdu: int | str | None
    section: str | None
    extraction: dict[str, Any]
    fov: float | None
    fov_error: float | None
    match_radius: float
    timeout_ms: float
    aberration: bool
    date: _dt.datetime | None
    write_wcs: bool
    update_fits: bool
    debug: bool


# per-process state of solve workers (the parent uses it too when --jobs 1)
_STATE: dict[str, Any] = {}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    print(f"skysolve: warning: {text}", file=sys.stderr, flush=True)


def _init_worker(db_path: str, camera_path: str | None, debug: bool) -> None:
    """ProcessPoolExecutor initializer: memory-map the database once per worker."""
    import signal

    from .database import SolverDatabase

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if not debug:
        warnings.showwarning = _show_warning
    # the parent verified the checksums already
    _STATE["db"] = SolverDatabase.load_from_file(db_path, mmap=True, verify=False)
    _STATE["camera"] = _load_camera(camera_path)


def _velocity(path: Path, opts: _SolveOptions):
    """Earth's barycentric velocity at the observation time, or None when unknown/off."""
    if not opts.aberration:
        return None
    from .aberration import earth_barycentric_velocity

    if opts.date is not None:
        return earth_barycentric_velocity(opts.date)
    from .imageio import image_epoch

    epoch = image_epoch(path, opts.hdu)
    if epoch is None:
        return None
    from astropy.time import Time

    return earth_barycentric_velocity(Time(epoch, format="jyear", scale="utc"))


def _wcs_header(res, offset: tuple[int, int], full_shape: tuple[int, int]):
    """FITS WCS header of a solution in the pixel grid of the full image."""
    from .wcs import camera_to_wcs, wcs_to_header

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

    from . import __version__

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

    from . import __version__
    from .errors import InvalidArgumentError

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

    from .plotting import plot_solution

    h, w = image.shape
    fig = Figure(figsize=(10, 10 * h / w + 0.6))
    ax = fig.add_subplot()
    plot_solution(image, res, centroids, db=db, ax=ax)
    ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def _solve_one(file: str, plot: str | None, opts: _SolveOptions) -> dict[str, Any]:
    """Read, extract, solve and write the outputs of one image; a JSON-able record."""
    from .errors import SkysolveError

    path = Path(file)
    record: dict[str, Any] = {"file": file}
    try:
        from .extraction import extract_centroids

        db, camera = _STATE["db"], _STATE.get("camera")
        image, offset, full_shape = _read_input(path, opts.hdu, opts.section)
        record["image_width"], record["image_height"] = int(image.shape[1]), int(image.shape[0])
        ext = extract_centroids(image, **opts.extraction)
        record["num_centroids"] = len(ext.centroids)
        velocity = _velocity(path, opts)
        record["aberration_corrected"] = velocity is not None
        res = db.solve_from_centroids(
            ext.centroids, fov_estimate_deg=opts.fov, fov_max_error_deg=opts.fov_error,
            image_shape=image.shape, match_radius=opts.match_radius,
            solve_timeout_ms=opts.timeout_ms, camera_model=camera,
            observer_velocity_km_s=velocity)
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
    from .errors import InvalidArgumentError

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
        from .plotting import _require_matplotlib

        _require_matplotlib()
    camera = _load_camera(args.camera)
    missing = [f for f in args.images if not Path(f).exists()]
    if len(missing) == len(args.images):
        # nothing to solve: say so before loading (or building) a database
        for f in missing:
            _err(f"{f}: no such image file: {f}")
        return EXIT_ERROR
    db, db_path = _load_database(args)
    opts = _SolveOptions(
        hdu=args.hdu, section=args.section, extraction=_extraction_options(args), fov=args.fov,
        fov_error=args.fov_error, match_radius=args.match_radius, timeout_ms=args.timeout,
        aberration=not args.no_aberration, date=args.date, write_wcs=args.write_wcs,
        update_fits=args.update_fits, debug=args.debug)
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


# ------------------------------------------------------------------ calibrate


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .errors import InvalidArgumentError
    from .extraction import extract_centroids

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise InvalidArgumentError(f"-o {args.output}: the camera file name must end in .json")
    camera = _load_camera(args.camera)
    db, _ = _load_database(args)
    from ._progress import track

    centroids, shape = [], None
    progress = False if args.quiet else None
    for file in track(args.images, len(args.images), "extracting", progress, unit="image"):
        image, _, _ = _read_input(Path(file), args.hdu, args.section)
        if shape is None:
            shape = image.shape
            if camera is not None and camera.image_shape != tuple(shape):
                raise InvalidArgumentError(
                    f"--camera {args.camera} is for {camera.image_width}x"
                    f"{camera.image_height} images, these are {shape[1]}x{shape[0]}")
        elif image.shape != shape:
            raise InvalidArgumentError(
                f"{file}: image size {image.shape[1]}x{image.shape[0]} differs from "
                f"{shape[1]}x{shape[0]} of {args.images[0]}; calibrate images of one camera")
        centroids.append(extract_centroids(image, **_extraction_options(args)).centroids)
        _info(args, f"{file}: {len(centroids[-1])} stars")
    n = len(args.images)
    model = "radial" if args.radial else "polynomial"
    results = []
    for k in range(1, args.passes + 1):
        radius = CALIBRATION_MATCH_RADII[min(k, len(CALIBRATION_MATCH_RADII)) - 1]
        order = min(args.order, CALIBRATION_FIRST_ORDER + k - 1)
        results = _solve_all(db, centroids, shape, camera, radius, args)
        solved = sum(bool(r) for r in results)
        if solved == 0:
            _err(f"pass {k}: none of the {n} images solved; check --fov, --sigma and --db")
            return EXIT_UNSOLVED
        cal = db.calibrate_camera(results, centroids, image_shape=shape, model=model,
                                  order=order)
        camera = cal.camera_model
        what = "radial" if args.radial else f"order {order}"
        print(f"pass {k}/{args.passes} (match radius {radius:g}, {what}): {solved}/{n} solved, "
              f"calibration RMSE {cal.rmse_before_px:.3f} -> {cal.rmse_after_px:.3f} px, "
              f"{cal.n_inliers} inliers, {cal.n_outliers} outliers", flush=True)
    # final solve with the finished model, for the report and the SIP header's pointing
    results = _solve_all(db, centroids, shape, camera, radius, args)
    table = _Table(args.images)
    for file, res in zip(args.images, results, strict=True):
        rec = {"file": file, **(res.to_dict() if res else
                                {"status": res.status, "solve_time_ms": res.solve_time_ms})}
        table.row(rec)
    out.parent.mkdir(parents=True, exist_ok=True)
    camera.save_to_file(out)
    print(f"camera model: {out} (focal length {camera.focal_length_px:.2f} px, FOV "
          f"{camera.fov_deg:.4f} deg, optical centre offset ({camera.crpix[0]:.2f}, "
          f"{camera.crpix[1]:.2f}) px)")
    first = next((i for i, r in enumerate(results) if r), None)
    if first is not None:
        from astropy.io import fits

        from . import __version__

        sip = out.with_name(out.stem + ".sip.fits")
        hdr = results[first].to_header()
        hdr["HISTORY"] = f"camera {out.name} calibrated by skysolve {__version__}"
        hdr["HISTORY"] = f"pointing of {Path(args.images[first]).name}"
        fits.PrimaryHDU(header=hdr).writeto(sip, overwrite=True)
        print(f"SIP header:   {sip}")
    unsolved = sum(not r for r in results)
    return EXIT_UNSOLVED if unsolved else EXIT_OK


def _solve_all(db, centroids, shape, camera, radius, args) -> list:
    from ._progress import track

    progress = False if args.quiet else None
    return [db.solve_from_centroids(
        c, fov_estimate_deg=camera.fov_deg if camera is not None else args.fov,
        fov_max_error_deg=0.5 if camera is not None else args.fov_error,
        image_shape=shape, match_radius=radius, match_threshold=1e-5, refine_iterations=10,
        solve_timeout_ms=args.timeout, camera_model=camera)
        for c in track(centroids, len(centroids), "solving", progress, unit="image")]


# ------------------------------------------------------------------ db


def _db_summary(db, path: Path | None) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if path is not None:
        info["file"] = str(path)
        info["file_size_bytes"] = path.stat().st_size
    info.update(num_stars=db.num_stars, num_patterns=db.num_patterns,
                min_fov_deg=db.min_fov_deg, max_fov_deg=db.max_fov_deg)
    info["parameters"] = db.parameters
    return _jsonable(info)


def _print_summary(info: dict[str, Any]) -> None:
    if "file" in info:
        print(f"file:         {info['file']} ({info['file_size_bytes'] / 1e6:.1f} MB)")
    print(f"stars:        {info['num_stars']}")
    print(f"patterns:     {info['num_patterns']}")
    print(f"fov range:    {info['min_fov_deg']:g} - {info['max_fov_deg']:g} deg")
    for key, value in sorted(info["parameters"].items()):
        if isinstance(value, list):
            value = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        print(f"  {key + ':':<28}{value}")


def _cmd_db_build(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {}
    if args.pattern_max_error is not None:
        params["pattern_max_error"] = args.pattern_max_error
    if args.epoch is not None:
        params["epoch_proper_motion_year"] = args.epoch
    t0 = time.perf_counter()
    progress = False if args.quiet else None
    if args.output:
        from .database import SolverDatabase
        from .defaultdb import _resolve_request

        name, cat_file, full = _resolve_request(args.max_fov, args.min_fov, args.catalog, params)
        generate = (SolverDatabase.generate_from_gaia if name == "gaia"
                    else SolverDatabase.generate_from_hipparcos)
        _info(args, f"building a {name} database for {full['min_fov_deg']:g}-"
                    f"{full['max_fov_deg']:g} deg")
        db = generate(catalog_path=cat_file, progress=progress, **full)
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        db.save_to_file(path)
    else:
        from .defaultdb import default_database, default_database_path

        path = default_database_path(args.max_fov, args.min_fov, args.catalog, **params)
        existed = path.is_file()
        db = default_database(args.max_fov, args.min_fov, args.catalog, progress=progress,
                              **params)
        if existed:
            _info(args, "already built")
    _info(args, f"done in {time.perf_counter() - t0:.1f} s")
    _print_summary(_db_summary(db, path))
    return EXIT_OK


def _cmd_db_info(args: argparse.Namespace) -> int:
    from .database import SolverDatabase
    from .errors import SkysolveError

    if args.path:
        path = Path(args.path)
        info = _db_summary(SolverDatabase.load_from_file(path, mmap=True, verify=True), path)
        if args.json:
            print(json.dumps(info))
        else:
            _print_summary(info)
        return EXIT_OK
    from .defaultdb import cache_directory, default_database_path

    cache = cache_directory()
    default = default_database_path()
    cached = []
    for f in sorted(cache.glob("*.db")) if cache.is_dir() else []:
        try:
            cached.append(_db_summary(SolverDatabase.load_from_file(f, mmap=True, verify=False),
                                      f))
        except (SkysolveError, OSError, ValueError) as exc:
            cached.append({"file": str(f), "error": _error_text(exc)})
    if args.json:
        print(json.dumps({"cache_directory": str(cache), "default_database": str(default),
                          "default_database_built": default.is_file(), "cached": cached}))
        return EXIT_OK
    print(f"cache directory:  {cache}  (set {'SKYSOLVE_CACHE'} to change)")
    state = "built" if default.is_file() else "not built yet (skysolve db build)"
    print(f"default database: {default.name}  [{state}]")
    if not cached:
        print("no cached databases")
    for info in cached:
        if "error" in info:
            print(f"  {Path(info['file']).name}: unreadable ({info['error']})")
            continue
        p = info["parameters"]
        print(f"  {Path(info['file']).name}: {p.get('catalog', '?')}, "
              f"{info['min_fov_deg']:g}-{info['max_fov_deg']:g} deg, {info['num_stars']} stars, "
              f"{info['num_patterns']} patterns, {info['file_size_bytes'] / 1e6:.1f} MB")
    return EXIT_OK


# ------------------------------------------------------------------ demo


def _run_demo(argv: list[str]) -> int:
    import importlib

    try:
        demo = importlib.import_module(".demo", __package__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.demo":
            raise
        print("skysolve: demo not available yet", file=sys.stderr)
        return EXIT_OK
    try:
        rc = demo.main(argv)
    except SystemExit as exc:  # an argparse inside the demo
        rc = exc.code if isinstance(exc.code, int) else (EXIT_USAGE if exc.code else 0)
    return int(rc or 0)


def _split_demo(argv: list[str]) -> tuple[list[str], list[str]] | None:
    """``(global options, demo arguments)`` when the command is ``demo``."""
    for i, token in enumerate(argv):
        if token.startswith("-"):
            if token in ("-h", "--help", "--version"):
                return None
            continue
        return (argv[:i], argv[i + 1:]) if token == "demo" else None
    return None


# ------------------------------------------------------------------ entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skysolve`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 success, 1 error, 2 usage error, 3 some image not
        solved, 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    demo = _split_demo(argv)
    parser = build_parser()
    try:
        if demo is not None:
            args = parser.parse_args(demo[0])
            args.func, args.quiet = (lambda a: _run_demo(demo[1])), True
        else:
            args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from .errors import SkysolveError

    try:
        with _console(args.debug, args.quiet):
            return args.func(args)
    except KeyboardInterrupt:
        print("skysolve: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SkysolveError, OSError, ValueError, ImportError) as exc:
        if args.debug:
            raise
        _err(_error_text(exc))
        return EXIT_ERROR
