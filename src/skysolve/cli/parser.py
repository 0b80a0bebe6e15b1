"""The ``skysolve`` argument parser: commands, options, help texts, exit codes.

Option values are checked by the same rules as the library's parameters: an
option that sets a library parameter takes its check from the parameter's
options class (:class:`~skysolve.SolveOptions`,
:class:`~skysolve.ExtractionOptions`, :class:`~skysolve.CalibrationOptions`),
so a value is accepted on the command line exactly when the library accepts it.
Only the standard library is imported here; the options classes are imported
when a value is checked.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
from typing import Any

__all__ = ["build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNSOLVED",
           "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNSOLVED = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process the signal ended

_EXIT_CODES_TEXT = """\
exit status:
  0  every image solved (or the command succeeded)
  1  error: missing/unreadable image, database or camera file, write failure
  2  usage error: unknown option or bad option value
  3  no error, but at least one image did not solve (no match, too few stars, timeout)
  130  interrupted (Ctrl-C); 143  terminated (SIGTERM)
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

Output: a table (file, RA, Dec, roll, FOV, matches, RMSE, solve time; why an image did
not solve on stderr), or with --json one JSON object per line: the solution's fields
(SolveResult.to_dict()) plus file, status ('match_found', 'no_match', 'too_few',
'timeout', 'invalid_config' or 'error'), image_width, image_height, num_centroids and
the sky position of the image centre.
--write-wcs writes IMAGE.wcs (a FITS header-only file, as astrometry.net does);
--update-fits writes IMAGE.solved.fits, a copy of a FITS input with the WCS merged into
the image header (the input is never modified). With --section the WCS refers to the
full image's pixel grid, and the optical centre is the full image's centre (or
--camera's, a camera of the full image).

Annual aberration (~20") is removed using the observation time from DATE-AVG/DATE-OBS/
MJD-OBS of FITS inputs, or --date; --no-aberration turns this off.

{_EXIT_CODES_TEXT}"""

_CALIBRATE_EPILOG = f"""\
schedule (the seed notebook's multi-pass scheme), pass k = 1..PASSES:
  solve every image with the current camera model (none in pass 1: --fov and
  --fov-error then; later passes the model's FOV within 0.5 deg), match radius
  0.01, 0.005, 0.003, 0.002 (then 0.002) of the image width and 10 refinement
  iterations; then fit one shared camera model to all solved images, polynomial
  order min(ORDER, k + 2) (i.e. 3, 4, 5, 6 for --order 6) and ORDER in the last
  pass, or a radial model with --radial. Each pass prints "n/N solved,
  calibration RMSE before -> after px, inliers". Finally every image is solved
  once more with the calibrated camera.

examples:
  skysolve calibrate frames/*.tiff --fov 11.4 -o camera.json
  skysolve calibrate ffi_*.fits --hdu 1 --section "[:2048, 44:2092]" --sigma 300 \\
      --min-pixels 4 --bg-block 16 --max-elongation 6 --fov 11.8 --order 6 \\
      -o tess_cam1_ccd1.json
  skysolve solve new.fits --camera camera.json

Every image's stars are aberrated with the Earth's velocity at its observation
time when its FITS header gives one, or --date (--no-aberration: never). The last pass also
cross-validates (k-fold over the stars) and prints the calibration summary:
residuals, the camera with its 1-sigma uncertainties, held-out residuals (an
"OVERFITTING" flag when they exceed the in-sample ones by 20 % more than a model
of the right form with as many parameters would), each image's
plate scale and the residual bias per magnitude bin.

Writes the camera model (JSON, CameraModel.load_from_file reads it; an existing
file, or CAMERA.sip.fits, is replaced only with --overwrite; its
"calibration" block keeps the uncertainties and figures), of the whole image with
--section (as --camera is: the optical centre is the detector's, the whole image's
centre to begin with; the block records the section), and beside it
CAMERA.sip.fits, a FITS header with the WCS, as solved with the calibrated camera, of
the first image that took part in the fit (not one it left out, of another lens or
wrongly solved: see the summary; TAN-SIP for a pinhole lens; ARC, ZEA, STG or SIN with
SIP terms for a fisheye, see --projection);
with --write-wcs, IMAGE.wcs beside every image: its calibrated mapping as a
FITS header with SIP terms (SKYERRPX: how closely it reproduces the calibration, px).

{_EXIT_CODES_TEXT}"""

_DB_EPILOG = """\
examples:
  skysolve db build                                   default: Gaia, 5-30 deg, into the cache
  skysolve db build --catalog hipparcos --min-fov 10 --max-fov 20 -o hip_10_20.db
  skysolve db info                                    cache location and cached databases
  skysolve db info hip_10_20.db
"""

_DB_BUILD_EPILOG = _DB_EPILOG + """\
  skysolve db build --catalog-file deep.fits --min-fov 1.5 --max-fov 2.5 -o deep.db
  skysolve db build --catalog-file mystars.csv --catalog-epoch 2016 --min-fov 60 \\
      --max-fov 120 --max-magnitude 6 --verification-stars 50 -o wide.db

The database parameters map one to one to the arguments of
SolverDatabase.generate_from_catalog (and generate_from_gaia/_hipparcos), whose
documentation says how each trades build time and size for solving power.
"""


# ------------------------------------------------------------------ argument parsing


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line: ``skysolve: error: ...``."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"skysolve: error: {message} (see '{self.prog} --help')\n")


def _checked(kind: type, check: Any, name: str) -> Any:
    """argparse type: text -> ``kind`` -> ``check(value, name)`` of :mod:`skysolve._args`."""
    def parse(text: str):
        from ..errors import SkysolveError

        try:
            value = kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        try:
            return check(value, name)
        except SkysolveError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = kind.__name__  # argparse names the type in messages
    return parse


def _count(name: str, maximum: int | None = None, minimum: int = 1) -> Any:
    """argparse type of a command-line-only count (``--jobs``, ``--passes``) from
    ``minimum`` (1)."""
    def check(value: Any, label: str) -> int:
        from .. import _args

        return _args.count(value, label, minimum=minimum, maximum=maximum)

    return _checked(int, check, name)


def _positive(name: str) -> Any:
    """argparse type of a command-line-only positive number (``serve --time-limit``)."""
    def check(value: Any, label: str) -> float:
        from .. import _args

        return _args.positive(value, label)

    return _checked(float, check, name)


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
    from ..errors import SkysolveError
    from ..io.images import _parse_section_text

    try:
        _parse_section_text(text)
    except SkysolveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _date(text: str) -> _dt.datetime:
    try:
        _dt.date.fromisoformat(text.strip())
    except ValueError:
        pass
    else:
        # datetime.fromisoformat takes a date alone as its midnight: the Earth's velocity
        # of up to a day off, silently (the library refuses a date alone for this reason)
        raise argparse.ArgumentTypeError(
            "a date alone is ambiguous by a day: give the time too, such as "
            f"2019-07-29T20:47:26 (UTC), got {text!r}")
    try:
        d = _dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date and time such as 2019-07-29T20:47:26 (UTC), got {text!r}"
        ) from None
    return d



def _option(options_class: str, field: str, kind: type = float) -> Any:
    """argparse type: text -> ``kind`` -> the check of ``field`` of an options class.

    ``options_class`` is ``"solve"``, ``"extraction"``, ``"calibration"`` or
    ``"generation"``; the class is imported when a value is checked.
    """
    def check(value: Any, name: str) -> Any:
        return _options_class(options_class).check_value(name, value)

    return _checked(kind, check, field)


def _command(module: str, name: str) -> Any:
    """The command function ``name`` of ``skysolve.cli.<module>``, imported when run."""
    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(f"{__package__}.{module}"), name)(args)

    return run


def _sky_circle(text: str) -> Any:
    """``--sky-circle``'s text: 'auto', 'none', a radius or 'x,y,radius' (checked)."""
    from ..errors import SkysolveError
    from ..fields import sky_circle_option

    try:
        return sky_circle_option(text, "--sky-circle")
    except SkysolveError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _options_class(name: str) -> type:
    if name == "solve":
        from ..solver.options import SolveOptions

        return SolveOptions
    if name == "extraction":
        from ..extraction.options import ExtractionOptions

        return ExtractionOptions
    if name == "generation":
        from ..solver.generation import GenerationOptions

        return GenerationOptions
    from ..calibration.options import CalibrationOptions

    return CalibrationOptions


#: The options of the generation parameters ``skysolve db build`` takes: parameter, flag,
#: metavar, value type, help (the parameter's name is added in brackets). Each flag is
#: defined here once, for the parser (which keeps the value under the parameter's name)
#: and for the library's messages during a build (:data:`BUILD_FLAGS`).
_BUILD_OPTIONS = (
    ("min_fov_deg", "--min-fov", "DEG", float, "smallest field of view (5)"),
    ("max_fov_deg", "--max-fov", "DEG", float, "largest field of view (30)"),
    ("pattern_max_error", "--pattern-max-error", "E", float,
     "edge-ratio tolerance of patterns (0.005)"),
    ("star_max_magnitude", "--max-magnitude", "MAG", float,
     "faintest star kept (default: as faint as --verification-stars needs)"),
    ("verification_stars_per_fov", "--verification-stars", "N", int,
     "stars kept per average smallest field (150)"),
    ("patterns_per_lattice_field", "--patterns-per-field", "N", int,
     "patterns from the brightest stars of each field (50)"),
    ("lattice_field_oversampling", "--oversampling", "X", float,
     "pattern fields per field-of-view area (100)"),
    ("multiscale_step", "--multiscale-step", "X", float,
     "ratio between field-of-view scales, > 1 (1.5)"),
    ("epoch_proper_motion_year", "--epoch", "YEAR", float,
     "proper-motion epoch of the star positions (2025)"),
)
#: The flag of each generation parameter of ``skysolve db build``.
BUILD_FLAGS = {name: flag for name, flag, *_ in _BUILD_OPTIONS}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``skysolve`` command (for documentation tools)."""
    from .. import __version__

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
                   help='solve part of the image, numpy order, e.g. "[:2048, 44:2092]"; the '
                        "optical centre is the whole image's centre, unless --camera (of "
                        "the whole image) gives it")
    g.add_argument("--sigma", type=_option("extraction", "sigma_threshold"),
                   default=argparse.SUPPRESS, metavar="S",
                   help="star detection threshold in background sigmas (default 5)")
    g.add_argument("--min-pixels", type=_option("extraction", "min_pixels", int), default=3,
                   metavar="N",
                   help="smallest star size in pixels above the threshold (default 3)")
    g.add_argument("--max-elongation", type=_option("extraction", "max_elongation"), default=3.0,
                   metavar="E", help="reject blobs more elongated than this (default 3)")
    g.add_argument("--bg-block", type=_option("extraction", "local_bg_block_size", int),
                   default=64, metavar="PX",
                   help="block size of the local background estimate, px (default 64)")
    g.add_argument("--max-stars", type=_option("extraction", "max_centroids", int), metavar="N",
                   help="use only the N brightest stars (default all)")
    g.add_argument("--sky-circle", type=_sky_circle,
                   default="auto", metavar="auto|none|R|X,Y,R",
                   help="an all-sky lens's image circle: where the sky is, in centred pixels "
                        "(a radius about the image centre, or the centre's x,y and the "
                        "radius); 'auto' (default) finds a disc inside a dark surround, "
                        "'none': the whole frame is sky")
    g = images.add_argument_group("solver options")
    g.add_argument("--db", metavar="PATH", default=os.environ.get("SKYSOLVE_DB") or None,
                   help="solver database file (default: $SKYSOLVE_DB, else the cached "
                        "default database, built on first use)")
    g.add_argument("--timeout", type=_option("solve", "solve_timeout_ms"), default=5000.0,
                   metavar="MS",
                   help="give up on an image after this many milliseconds (default 5000)")
    g.add_argument("--projection", type=_option("solve", "projection", str), metavar="NAME",
                   help="lens projection: pinhole (rectilinear lenses), or the "
                        "fisheyes' equidistant, equisolid, stereographic or orthographic "
                        "(default: the --camera model's; without one, pinhole, and an "
                        "answer a fisheye's projection fits far better takes that one)")

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
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="FITS, PNG, JPEG, TIFF, BMP, GIF, WebP or PNM images")
    p.add_argument("--fov", type=_option("solve", "fov_estimate_deg"), metavar="DEG",
                   help="estimated horizontal field of view, degrees (default: search the "
                        "database's whole range)")
    p.add_argument("--fov-error", type=_option("solve", "fov_max_error_deg"), metavar="DEG",
                   help="largest error of --fov, degrees (default: 0.6x to 1.7x --fov)")
    p.add_argument("--fov-range", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="scale hint: the horizontal field of view lies in LOW-HIGH degrees")
    p.add_argument("--pixel-scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="scale hint: the pixel scale lies in LOW-HIGH arcsec per pixel")
    p.add_argument("--ra", type=float, metavar="DEG",
                   help="position hint: RA of the field centre, degrees (with --dec)")
    p.add_argument("--dec", type=float, metavar="DEG",
                   help="position hint: Dec of the field centre, degrees (with --ra)")
    p.add_argument("--radius", type=_option("solve", "position_radius_deg"), metavar="DEG",
                   help="radius of the position hint, degrees (default 5); no solution "
                        "outside it is returned")
    p.add_argument("--parity", choices=("normal", "mirrored"),
                   help="parity hint: only unmirrored or only mirrored images (default both)")
    p.add_argument("--camera", metavar="CAMERA.json",
                   help="calibrated camera model (fixes focal length, centre, distortion)")
    p.add_argument("--retry-sigma", type=_option("extraction", "retry_sigma_threshold"),
                   default=argparse.SUPPRESS, metavar="S",
                   help="an image that keeps fewer than 20 stars and finds no match is "
                        "extracted again at this threshold, in background sigmas, and "
                        "solved again (default 3, or never when --sigma is given; 0: "
                        "never)")
    p.add_argument("--match-radius", type=_option("solve", "match_radius"), default=0.01,
                   metavar="R",
                   help="star match radius as a fraction of the image width (default 0.01)")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--write-wcs", action="store_true",
                   help="write IMAGE.wcs (FITS header with the WCS) beside each image")
    p.add_argument("--update-fits", action="store_true",
                   help="write IMAGE.solved.fits: a copy of a FITS input with the WCS added")
    p.add_argument("--plot", metavar="OUT.png|DIR",
                   help="draw the image with matched and catalog stars (a directory for "
                        "several images); an existing file is replaced only if it is a "
                        "plot skysolve wrote")
    p.add_argument("--date", type=_date, metavar="ISO",
                   help="observation time (UTC) for the aberration correction (default: "
                        "from the FITS header)")
    p.add_argument("--no-aberration", action="store_true",
                   help="do not correct annual aberration even when the time is known")
    _batch_options(p, resume=True)
    p.set_defaults(func=_command("solve", "_cmd_solve"))

    # -- calibrate
    p = sub.add_parser("calibrate", help="fit a camera model from several images",
                       parents=[common, images],
                       description="Calibrate one camera model (focal length, optical centre,\n"
                                   "distortion) from star images taken with the same camera.",
                       epilog=_CALIBRATE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="images of the same camera")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--order", type=_option("calibration", "order", int),
                       default=4, metavar="N",
                       help="polynomial distortion order of the last passes (default 4)")
    model.add_argument("--radial", action="store_true",
                       help="fit a radial (Brown-Conrady) distortion instead")
    p.add_argument("--polynomial-primary",
                   type=_option("calibration", "polynomial_primary", str), metavar="DIR",
                   help="direction the polynomial is fitted in: inverse (pixel -> sky, FITS "
                        "SIP's), forward (sky -> pixel; a strong lens's radial distortion is "
                        "a short polynomial this way) or auto (default: inverse unless "
                        "forward holds clearly more stars, fits them clearly better, or "
                        "holds them as well and better at a lower order)")
    p.add_argument("--passes", type=_count("passes", 20),
                   default=4, metavar="N", help="solve/calibrate passes (default 4)")
    p.add_argument("--fov", type=_option("solve", "fov_estimate_deg"), metavar="DEG",
                   help="estimated horizontal field of view for the first pass, degrees")
    p.add_argument("--fov-error", type=_option("solve", "fov_max_error_deg"), metavar="DEG",
                   help="largest error of --fov in the first pass, degrees")
    p.add_argument("--camera", metavar="CAMERA.json",
                   help="start from this camera model instead of an uncalibrated pinhole")
    p.add_argument("-o", "--output", required=True, metavar="CAMERA.json",
                   help="where to write the camera model (and CAMERA.sip.fits beside it)")
    p.add_argument("--write-wcs", action="store_true",
                   help="write IMAGE.wcs beside each image: its calibrated mapping as a "
                        "FITS header with SIP terms (see --wcs-sip-order)")
    p.add_argument("--wcs-sip-order", type=_count("wcs-sip-order", 9, minimum=2),
                   metavar="N",
                   help="SIP order of the --write-wcs headers, 2 to 9 (default: the lowest "
                        "that reproduces the calibration to 0.01 px)")
    p.add_argument("--catalog", choices=("gaia",),
                   help="match more stars for the fit from this catalog (the bundled Gaia "
                        "catalog) besides the database's")
    p.add_argument("--folds", type=_option("calibration", "validation_folds", int), default=5,
                   metavar="K", help="k-fold held-out validation over the stars (0: none; "
                                     "default 5)")
    p.add_argument("--select-order", action="store_true",
                   help="last pass: fit orders 2..ORDER and keep the one with the smallest "
                        "held-out residual")
    p.add_argument("--bootstrap", type=_option("calibration", "bootstrap", int), default=0,
                   metavar="N", help="bootstrap resamples for bootstrap uncertainties "
                                     "(default 0: the fit covariance only)")
    p.add_argument("--date", type=_date, metavar="ISO",
                   help="observation time (UTC) of the images for the aberration correction "
                        "(default: each FITS header's); one time serves a night's images, "
                        "the correction drifting by under 0.4\" a day")
    p.add_argument("--no-aberration", action="store_true",
                   help="do not correct each image's velocity aberration, even when its FITS "
                        "header gives the observation time")
    _batch_options(p, resume=False)
    p.set_defaults(func=_command("calibrate", "_cmd_calibrate"))

    # -- db
    p = sub.add_parser("db", help="build or inspect solver databases", parents=[common],
                       description="Build or inspect solver databases.", epilog=_DB_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    dbsub = p.add_subparsers(dest="db_command", metavar="ACTION", parser_class=_Parser)
    b = dbsub.add_parser("build", help="build a database (default: the cached default one)",
                         description="Build a solver database from a bundled catalog, into "
                                     "the cache\n(the default database when no option is "
                                     "given) or into a file with -o; or from\nyour own "
                                     "catalog (--catalog-file) into a file.",
                         parents=[common], epilog=_DB_BUILD_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    source = b.add_argument_group("catalog (one of)")
    which = source.add_mutually_exclusive_group()
    which.add_argument("--catalog", choices=("gaia", "hipparcos"), default=None,
                       help="bundled catalog (default gaia)")
    which.add_argument("--catalog-file", metavar="PATH",
                       help="your own catalog: a CSV, ECSV, FITS or VOTable table with "
                            "columns ra, dec (deg), mag and optionally id, pmra, pmdec "
                            "(mas/yr), ref_epoch (names as Catalog.from_table finds them: "
                            "source_id, phot_g_mean_mag, RA_ICRS, ... also work); needs -o")
    source.add_argument("--catalog-epoch", metavar="YEAR",
                        type=_option("generation", "epoch_proper_motion_year"),
                        help="Julian year of the --catalog-file positions (default: its "
                             "ref_epoch/epoch column or metadata, else 2000)")
    source.add_argument("--catalog-format", metavar="FORMAT",
                        help="astropy table format of --catalog-file (default: from its "
                             "name; e.g. ascii.ecsv, fits, votable, ascii.basic)")
    g = b.add_argument_group(
        "database parameters",
        "The arguments of SolverDatabase.generate_from_catalog (named in brackets),\n"
        "checked by the same rules; defaults as there, except the field of view (5-30\n"
        "deg) and --pattern-max-error (0.005), which are the default database's.")
    for name, flag, metavar, kind, text in _BUILD_OPTIONS:
        g.add_argument(flag, dest=name, type=_option("generation", name, kind),
                       metavar=metavar, help=f"{text} [{name}]")
    b.add_argument("-o", "--output", metavar="PATH",
                   help="write the database here instead of into the cache")
    b.add_argument("--overwrite", action="store_true",
                   help="replace an existing -o file (otherwise refused before the build)")
    b.set_defaults(func=_command("db", "_cmd_db_build"))
    i = dbsub.add_parser("info", help="show a database file, or the cache", parents=[common],
                         description="Show a database's parameters, counts and size, or the "
                                     "cache directory\nand the databases cached there.",
                         epilog=_DB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    i.add_argument("path", nargs="?", metavar="PATH",
                   help="database file (default: list the cache)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_command("db", "_cmd_db_info"))
    p.set_defaults(func=lambda args: _usage(p, "choose an action: build or info"))

    # -- serve
    p = sub.add_parser("serve", parents=[common],
                       help="run the local plate-solving service (astrometry.net's web API "
                            "and a web page; needs skysolve[server])",
                       description="Serve astrometry.net's web API (nova) and a web page at "
                                   "http://HOST:PORT/, solving with skysolve. Accepted jobs "
                                   "survive a restart (SQLite in --data-dir).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=_count("port", 65535), default=8080, help="default 8080")
    p.add_argument("--db", "--database", dest="db", metavar="PATH",
                   default=os.environ.get("SKYSOLVE_DB") or None,
                   help="database file (default: $SKYSOLVE_DB, else the cached default)")
    p.add_argument("--workers", type=_count("workers"), default=1, metavar="N",
                   help="solver worker processes (default 1)")
    p.add_argument("--data-dir", default="skysolve-data", metavar="DIR",
                   help="where jobs and their files are kept (default ./skysolve-data)")
    p.add_argument("--api-key", metavar="KEY",
                   help="only this key logs in (default: any key)")
    p.add_argument("--max-upload-mb", type=_positive("max-upload-mb"),
                   default=100.0, metavar="MB", help="largest upload (default 100 MB)")
    p.add_argument("--max-pixels", type=_count("max-pixels"), default=100_000_000,
                   metavar="N", help="largest image, in pixel values, refused from its "
                   "header before decoding (default 100,000,000)")
    p.add_argument("--max-queue", type=_count("max-queue"), default=1000, metavar="N",
                   help="jobs waiting or running before uploads get 503 (default 1000)")
    p.add_argument("--time-limit", type=_positive("time-limit"),
                   default=30.0, metavar="S", help="per-job time limit, seconds (default 30)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (default: none)")
    p.add_argument("--keep-days", type=_positive("keep-days"), metavar="DAYS",
                   help="forget finished jobs, with their uploads and files, DAYS days "
                        "after they finished (default: keep them)")
    p.set_defaults(func=_command("serve", "_cmd_serve"))

    # -- demo (arguments are passed through untouched; see main())
    sub.add_parser("demo", help="run the demonstration (skysolve demo --help)", add_help=False)
    return parser


def _batch_options(p: argparse.ArgumentParser, resume: bool) -> None:
    """Where the images are processed, and the results table (solve and calibrate)."""
    g = p.add_argument_group("batch options")
    g.add_argument("--jobs", "-j", type=_count("jobs"), default=None, metavar="N",
                   help="process images in N local worker processes (default: every core)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: its scheduler address (tcp://HOST:8786), or "
                        "'local' for a LocalCluster of --jobs workers (needs "
                        "skysolve[distributed]); every worker must see the images and --db")
    what = "solution" if resume else "final solution"
    g.add_argument("--results", metavar="TABLE.ecsv",
                   help=f"write one row per image (its {what}, or the reason it failed) to "
                        "this ECSV table, kept current as images finish")
    # (one or the other: argparse says so as the usage error it is)
    either = g.add_mutually_exclusive_group()
    if resume:
        either.add_argument("--resume", action="store_true",
                            help="keep the rows of an existing --results table and skip the "
                                 "images done there (printed from the table; failed ones are "
                                 "tried again)")
    either.add_argument("--overwrite", action="store_true",
                        help="replace an existing --results table" + (
                            "" if resume else " and an existing -o camera file"))


def _usage(parser: argparse.ArgumentParser, message: str) -> int:
    parser.print_usage(sys.stderr)
    print(f"skysolve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


