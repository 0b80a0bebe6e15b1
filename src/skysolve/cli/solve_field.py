"""``skysolve-field``: astrometry.net's ``solve-field`` command line, answered by skysolve.

Capture and processing programs call ``solve-field IMAGE [options]`` and read
the files it leaves next to the image (or in ``--dir``) and a few lines of its
standard output. ``skysolve-field`` takes the same command line, writes the same
files (:mod:`skysolve.io.astrometry_files`) and prints the same lines (here for the
test frame ``2019-07-29T204726_Alt40_Azi-135_Try1.tiff``)::

    Field center: (RA,Dec) = (230.667638, 11.035543) deg.
    Field center: (RA H:M:S, Dec D:M:S) = (15:22:40.233, +11:02:07.954).
    Field size: 11.4273 x 8.58291 degrees
    Field rotation angle: up is -152.275 degrees E of N
    Field parity: neg

The field centre is the sky position of the image centre; the field size the angles
between the midpoints of opposite image edges (in the unit that suits the smaller); "up"
is the image's +y axis in FITS pixels, its position angle east of north; the parity is
``pos`` when the WCS's ``det(CD) < 0``. Scale hints (``--scale-low/-high`` in
``--scale-units`` ``degwidth``, ``arcminwidth``, ``arcsecperpix`` or ``focalmm``),
the position hint (``--ra/--dec/--radius``, degrees or sexagesimal) and the
parity become skysolve's hints; ``--cpulimit`` its time limit; ``-C/--cancel FILE``
stops the solve when FILE appears (capture programs create it to abort); ``--downsample``
bins the image for extraction only (positions are reported in full-resolution
pixels). The extraction takes ``--nsigma`` as its threshold in noise sigmas,
``--sigma`` as the pixels' noise level (counts) in place of its own estimate, and
``--objs N`` as the number of brightest sources it keeps (the ``.axy``'s; an x/y
list is cut likewise after sorting); ``-d/--depth`` (``N``, ``A-B``, or a list of
them) forms the patterns from the brightest sources up to its largest number (4 to
50), every source verifying the match. The ``.wcs``
(``.new``, ``.match``) has its reference pixel at the optical centre: the image
centre, which is what ``--crpix-center`` asks, unless the solve found the lens's axis
elsewhere (an all-sky frame's image circle, a wide field's fitted centre);
``--crpix-center`` and ``--crpix-x/--crpix-y`` move it
(:func:`~skysolve.io.wcs.move_reference_pixel`; where SIP terms cannot hold the
solution about that pixel, the files are written about the optical centre with a
warning).
Options that have no meaning
for skysolve (index files, source extractor, plots, ...) are accepted and
reported as ignored on standard error; an unknown option or a bad value is a
one-line error. The lines saying a field solved are printed once its files are
in place; warnings are one line each on standard error (``skysolve-field:
warning: ...``), each text once per input.

Exit status, as solve-field's: 0 when every input was processed, solved or
not (whether it solved is the ``.solved`` file and the lines above), and for a
command line without a file (the usage is printed); 1 when an input could not
be read or written; 255 for a bad command line; 130 when interrupted (Ctrl-C, or a
capture program's SIGINT: one line, no traceback).

The database is ``--db FILE`` (a file from ``SolverDatabase.save_to_file``), else
the file named by ``$SKYSOLVE_DB`` (for capture programs, which cannot add
options), else skysolve's cached default database (``skysolve db build``). A
fisheye or all-sky lens names its projection with ``--projection`` (or
``$SKYSOLVE_PROJECTION``); solve-field has no such option.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .common import drop_stdout, one_shot_backend
from .parser import EXIT_INTERRUPTED
from .solve_field_run import EXIT_ERROR, EXIT_OK, run_field

#: Exit status of a bad command line (solve-field exits with -1).
EXIT_USAGE = 255

#: Options taking a value that skysolve does not need (accepted and reported).
IGNORED_WITH_VALUE = (
    ("-b", "--backend-config"), ("--config",), ("--plot-scale",), ("--plot-bg",),
    ("-c", "--code-tolerance"), ("-E", "--pixel-error"),
    ("-q", "--quad-size-min"), ("-Q", "--quad-size-max"), ("--odds-to-tune-up",),
    ("--odds-to-solve",), ("--odds-to-reject",), ("--odds-to-stop-looking",),
    ("--uniformize",), ("-m", "--temp-dir"), ("--xscale",), ("-F", "--fields"),
    ("--source-extractor-config",),
    ("--source-extractor-path",), ("-i", "--scamp"), ("-n", "--scamp-config"),
    ("-j", "--scamp-ref"), ("-P", "--pnm"), ("-k", "--keep-xylist"),
    ("-I", "--solved-in"), ("-V", "--verify"), ("--verify-ext",), ("--tag",),
    ("--index-dir",), ("--index-file",),
    ("--sort-rdls",), ("--predistort",), ("--extension-name",))
#: Flags skysolve does not need (accepted and reported).
IGNORED_FLAGS = (
    ("--batch",), ("-G", "--use-wget"), ("--timestamp",),
    ("-7", "--no-delete-temp"), ("--tag-all",), ("--no-verify-uniformize",),
    ("--no-verify-dedup",), ("--no-background-subtraction",), ("-9", "--no-remove-lines"),
    ("-r", "--resort"), ("--use-source-extractor",), ("--use-sextractor",),
    ("-2", "--no-fits2fits"), ("-y", "--no-verify"), ("--fits-image",), ("--force-ppm",),
    ("-T", "--no-tweak"), ("-p", "--no-plots"), ("-v", "--verbose"))
#: Options skysolve acts on: (flags, dest, type, help).
VALUE_OPTIONS = (
    (("-D", "--dir"), "dir", str, "place all output files in this directory"),
    (("-o", "--out"), "out", str, "base name of the output files"),
    (("-L", "--scale-low"), "scale_low", float, "lower bound of the image scale"),
    (("-H", "--scale-high"), "scale_high", float, "upper bound of the image scale"),
    (("-u", "--scale-units"), "scale_units", str,
     "degwidth (default), arcminwidth, arcsecperpix or focalmm"),
    (("-3", "--ra"), "ra", str, "RA of the field centre, degrees or H:M:S"),
    (("-4", "--dec"), "dec", str, "Dec of the field centre, degrees or D:M:S"),
    (("-5", "--radius"), "radius", float, "search radius around --ra/--dec, degrees"),
    (("-8", "--parity"), "parity", str, "pos, neg or both"),
    (("-z", "--downsample"), "downsample", int, "bin the image by this factor first"),
    (("-l", "--cpulimit"), "cpulimit", float,
     "give up after this many seconds (default 300; 0 or less, or inf: no limit)"),
    (("-N", "--new-fits"), "new_fits", str, "name of the .new file ('none': do not write)"),
    (("-W", "--wcs"), "wcs", str, "name of the .wcs file ('none': do not write)"),
    (("-B", "--corr"), "corr", str, "name of the .corr file ('none': do not write)"),
    (("-M", "--match"), "match", str, "name of the .match file ('none': do not write)"),
    (("-R", "--rdls"), "rdls", str, "name of the .rdls file ('none': do not write)"),
    (("--axy",), "axy", str, "name of the .axy file ('none': do not write)"),
    (("-S", "--solved"), "solved", str, "name of the .solved file ('none': do not write)"),
    (("-U", "--index-xyls"), "index_xyls", str, "name of the -indx.xyls file"),
    (("-Z", "--kmz"), "kmz", str,
     "write a KMZ of the image on the sky, for Google Earth's sky mode (not by default)"),
    (("-t", "--tweak-order"), "tweak_order", int, "SIP order (accepted; SIP only for a lens term)"),
    (("-w", "--width"), "width", int, "image width of an x/y list"),
    (("-e", "--height"), "height", int, "image height of an x/y list"),
    (("-X", "--x-column"), "x_column", str, "x column of an x/y list (default X)"),
    (("-Y", "--y-column"), "y_column", str, "y column of an x/y list (default Y)"),
    (("-s", "--sort-column"), "sort_column", str, "sort an x/y list by this column"),
    (("-6", "--extension"), "extension", int, "FITS extension holding the image"),
    (("-C", "--cancel"), "cancel", str,
     "stop solving when this file appears (an input is then not solved; the run goes on)"),
    (("--objs",), "objs", str, "keep only the N brightest sources found (the .axy's rows)"),
    (("-d", "--depth"), "depth", str,
     "the field's brightest sources to solve with: N, or ranges such as 1-50 or 10,20,30 "
     "(skysolve uses the brightest up to the largest number)"),
    (("--nsigma",), "nsigma", str, "detection threshold in noise sigmas (default 5)"),
    (("--sigma",), "sigma", str,
     "the image's noise level (counts): detect against this fixed noise, not an estimate"),
    (("--sky-circle",), "sky_circle", str,
     "an all-sky lens's image circle, where the sky is: auto (default: found from the "
     "image), none (the whole image), a radius R about the image centre or X,Y,R (centred "
     "pixels of the full image); sources beyond it are dropped"),
    (("--crpix-x",), "crpix_x", str, "the .wcs's reference pixel x (1-based FITS pixels)"),
    (("--crpix-y",), "crpix_y", str, "the .wcs's reference pixel y (1-based FITS pixels)"),
    (("--db", "--database"), "database", str,
     "skysolve database file (default: $SKYSOLVE_DB, else the cached default database)"),
    (("--projection",), "projection", str,
     "the lens's projection: pinhole, equidistant, equisolid, stereographic or "
     "orthographic (default: $SKYSOLVE_PROJECTION; unset, the pinhole, and a fisheye's "
     "that fits the answer far better); a fisheye's .wcs is then ARC, ZEA, STG or SIN"),
)
FLAG_OPTIONS = (
    (("-O", "--overwrite"), "overwrite", "overwrite existing output files"),
    (("-K", "--continue"), "continue_", "solve even if output files exist"),
    (("-J", "--skip-solved"), "skip_solved", "skip inputs whose .solved file exists"),
    (("-a", "--sort-ascending"), "sort_ascending", "sort an x/y list ascending"),
    (("--invert",), "invert", "the stars are dark on a light background"),
    (("--temp-axy",), "temp_axy", "write the .axy file to a temporary file (not kept)"),
    (("--just-augment",), "just_augment", "write the .axy source list only; do not solve"),
    (("-A", "--dont-augment"), "just_augment", "the same as --just-augment"),
    (("--crpix-center",), "crpix_center",
     "the .wcs's reference pixel at the image centre (where it is by default, unless the "
     "lens's axis was found elsewhere)"),
    (("-g", "--guess-scale"), "guess_scale",
     "without a scale range: search about the pixel scale the FITS header states or implies "
     "(a scale keyword, its WCS, or FOCALLEN and XPIXSZ), then without it"),
)


_EPILOG = """\
exit status (0, 1 and 255 as solve-field's):
  0    every input processed, solved or not (the .solved file says which), and a
       command line without a file (the usage is printed)
  1    an input could not be read or a file not written
  130  interrupted (Ctrl-C, SIGINT)
  255  bad command line (an unknown option, or a bad value)

environment:
  SKYSOLVE_DB          database file (like --db; default: the cached default database)
  SKYSOLVE_PROJECTION  the lens's projection (like --projection)
"""


class UsageError(Exception):
    """A bad command line."""


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`UsageError` (the caller prints one
    line, never a traceback or the whole usage)."""

    def error(self, message: str):
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: solve-field's options, the ignored ones marked as such."""
    from .. import __version__

    # (long options by any unambiguous prefix, as solve-field's getopt_long takes them:
    # scripts write --scale-unit and --no-plot)
    p = UsageParser(prog="skysolve-field", add_help=True, allow_abbrev=True,
                description="astrometry.net solve-field's command line, solved by skysolve",
                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    # (the bare version on one line, as solve-field prints it: Siril runs `solve-field
    # --version` before every solve and reads the first line of its output)
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("inputs", nargs="*", metavar="FILE",
                   help="FITS, PNG, JPEG, TIFF, BMP, GIF, WebP or PNM images, or x/y lists "
                        "(.xyls/.axy/.xy, or a FITS table with the -X/-Y columns)")
    for flags, dest, kind, text in VALUE_OPTIONS:
        p.add_argument(*flags, dest=dest, type=_whole if kind is int else kind, help=text)
    for flags, dest, text in FLAG_OPTIONS:
        p.add_argument(*flags, dest=dest, action="store_true", help=text)
    p.add_argument("-f", "--files-on-stdin", dest="stdin", action="store_true",
                   help="read the names of the files to solve from standard input")
    ignored = p.add_argument_group("accepted and ignored")
    for flags in IGNORED_WITH_VALUE:
        ignored.add_argument(*flags, dest=f"ignored{flags[-1]}", action="append")
    for flags in IGNORED_FLAGS:
        ignored.add_argument(*flags, dest=f"ignored{flags[-1]}", action="count")
    return p


def _whole(text: str) -> int:
    """An integer option's value: a whole number, also written as a decimal (``2.0``, as
    solve-field's ``atoi`` reads it; scripts compute them)."""
    value = float(text)  # (a ValueError: argparse names the option and the value)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


_whole.__name__ = "whole number"  # (argparse's message: "invalid whole number value")


def _angle(text: str, name: str, hours: bool) -> float:
    """Degrees from decimal degrees or sexagesimal (``H:M:S`` for RA, ``D:M:S`` for Dec)."""
    from astropy.coordinates import Angle

    try:
        if ":" in text or " " in text.strip():
            return float(Angle(text, unit="hourangle" if hours else "deg").deg)
        return float(text)
    except ValueError as exc:
        raise UsageError(f"--{name} {text!r} is neither degrees nor sexagesimal") from exc


#: The time limit (s) of a solve without ``--cpulimit``: the library's default of 5 s suits
#: a star tracker's loop; a one-shot solve of a large frame told no scale (a 24 MP
#: landscape of the Milky Way, 28,000 centroids: ~9 s on a loaded 2-core machine) takes
#: longer, and a capture program that wants less says so with ``--cpulimit``.
DEFAULT_CPULIMIT_S = 300.0


def _scale_hint(args: argparse.Namespace, projection: str = "pinhole") -> dict[str, Any]:
    """``--scale-*`` as skysolve's scale range (:func:`~skysolve.io.scale_units.scale_range`;
    a focal length through the lens's ``projection``)."""
    from ..io.scale_units import scale_range

    try:
        return scale_range(args.scale_low, args.scale_high, args.scale_units, projection)
    except ValueError as exc:
        raise UsageError(f"--scale-low/--scale-high/--scale-units: {exc}") from exc


def solve_hints(args: argparse.Namespace) -> dict[str, Any]:
    """The solve's keyword arguments from the command line's hints."""
    kw = _projection(args)
    kw.update(_scale_hint(args, kw.get("projection", "pinhole")))
    if (args.ra is None) != (args.dec is None):
        raise UsageError("--ra and --dec go together")
    if args.ra is not None and (args.radius is None or args.radius >= 0):
        # (solve-field: a negative --radius means no position constraint)
        dec = _angle(args.dec, "dec", hours=False)
        if not -90.0 <= dec <= 90.0:
            raise UsageError(f"--dec {args.dec!r} is outside [-90, 90] degrees")
        kw["position_hint"] = (_angle(args.ra, "ra", hours=True) % 360.0, dec)
        if args.radius is not None:
            kw["position_radius_deg"] = min(max(args.radius, 1e-6), 180.0)
    if args.parity is not None:
        parity = args.parity.lower()
        if parity not in ("pos", "neg", "both"):
            raise UsageError(f"--parity {args.parity!r}: use pos, neg or both")
        if parity != "both":
            kw["parity_flip"] = parity == "pos"
    limit = DEFAULT_CPULIMIT_S if args.cpulimit is None else args.cpulimit
    if math.isnan(limit):  # (it read as no limit, silently)
        raise UsageError(f"--cpulimit {limit!r} is not a number of seconds")
    # (solve-field: <= 0 is no limit, as is an infinite one, which the library refused
    # after the extraction, naming its solve_timeout_ms; before, <= 0 left its 5 s)
    kw["solve_timeout_ms"] = limit * 1000.0 if 0 < limit < math.inf else None
    return kw


def _projection(args: argparse.Namespace) -> dict[str, Any]:
    """``--projection`` (or ``$SKYSOLVE_PROJECTION``) as the solve's ``projection``."""
    projection = args.projection or os.environ.get("SKYSOLVE_PROJECTION") or None
    if projection is None:
        return {}
    from ..camera.projection import PROJECTIONS

    if projection.lower() not in PROJECTIONS:
        raise UsageError(f"--projection {projection!r}: use one of {', '.join(PROJECTIONS)}")
    return {"projection": projection.lower()}


#: How skysolve-field's source and reference-pixel options are named in its errors.
OPTION_NAMES = {"objs": "--objs", "depth": "-d/--depth", "nsigma": "--nsigma",
                "sigma": "--sigma", "crpix_x": "--crpix-x", "crpix_y": "--crpix-y",
                "sky_circle": "--sky-circle"}


def source_options(args: argparse.Namespace) -> dict[str, Any]:
    """What the command line asks of the sources (:func:`skysolve.fields.source_options`,
    the server's too): ``max_centroids`` (``--objs``), ``depth`` (``-d/--depth``),
    ``sigma_threshold`` (``--nsigma``) and ``noise`` (``--sigma``); only those given. A bad
    value is a :class:`UsageError` naming the option."""
    from ..errors import SkysolveError
    from ..fields import sky_circle_option
    from ..fields import source_options as checked

    try:
        out = checked(args.objs, args.depth, args.nsigma, args.sigma, names=OPTION_NAMES)
        circle = getattr(args, "sky_circle", None)
        if circle is not None:
            out["sky_circle"] = sky_circle_option(circle, "--sky-circle")
        return out
    except SkysolveError as exc:
        raise UsageError(str(exc)) from None


def reference_pixel(args: argparse.Namespace) -> tuple[float | None, float | None] | None:
    """The ``.wcs``'s reference pixel asked for (:func:`skysolve.fields.reference_pixel`):
    1-based FITS pixels, None on an axis for the image centre there, or None when
    ``--crpix-x/--crpix-y/--crpix-center`` ask for none."""
    from ..errors import SkysolveError
    from ..fields import reference_pixel as checked

    try:
        return checked(args.crpix_x, args.crpix_y, args.crpix_center, names=OPTION_NAMES)
    except SkysolveError as exc:
        raise UsageError(str(exc)) from None


def _ignored(args: argparse.Namespace) -> list[str]:
    names = [flags[-1] for flags in (*IGNORED_WITH_VALUE, *IGNORED_FLAGS)
             if getattr(args, f"ignored{flags[-1]}", None)]
    if args.tweak_order not in (None, 0, 1):
        names.append("--tweak-order (SIP only for a lens term)")
    return names


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--dec -5.2`` as ``--dec=-5.2``: with options such as ``-3`` defined, argparse would
    take a negative value for an option."""
    takes_value = {f for flags, *_ in VALUE_OPTIONS for f in flags}
    takes_value |= {f for flags in IGNORED_WITH_VALUE for f in flags}
    longs = {f for flags in (*(o[0] for o in VALUE_OPTIONS), *(o[0] for o in FLAG_OPTIONS),
                             *IGNORED_WITH_VALUE, *IGNORED_FLAGS)
             for f in flags if f.startswith("--")} | {"--files-on-stdin", "--help", "--version"}

    def value_option(a: str) -> bool:
        """Whether ``a`` names an option that takes a value, spelt out or by a prefix
        (``--scale-lo``, as the parser takes it)."""
        if a in takes_value:
            return True
        if not a.startswith("--") or "=" in a:
            return False
        named = [f for f in longs if f.startswith(a)]
        return len(named) == 1 and named[0] in takes_value

    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if value_option(a) and nxt is not None and nxt[:1] == "-" and len(nxt) > 1 and (
                nxt[1].isdigit() or nxt[1] == "."):
            out.append(f"{a}={nxt}" if a.startswith("--") else f"{a}{nxt}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


@contextlib.contextmanager
def _warnings_on_one_line() -> Iterator[None]:
    """Warnings raised meanwhile (astropy's, numpy's, skysolve's) as one line each on
    standard error, ``skysolve-field: warning: ...``, each text once (per input): Python's
    form is two lines (with the source line) and astropy's logger prints its own
    ``WARNING: ...`` lines, once for every time a file is opened."""
    from astropy import log
    from astropy.logger import LoggingError

    said: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split()) or category.__name__
        if text not in said:
            said.add(text)
            print(f"skysolve-field: warning: {text}", file=sys.stderr, flush=True)

    astropy_logs = log.warnings_logging_enabled()
    if astropy_logs:
        try:
            log.disable_warnings_logging()
        except LoggingError:  # (another handler has taken over since: ours replaces it)
            astropy_logs = False
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        if astropy_logs:
            log.enable_warnings_logging()


def main(argv: list[str] | None = None) -> int:
    """Run ``skysolve-field``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(
            list(sys.argv[1:] if argv is None else argv)))
        hints = solve_hints(args)
        sources = source_options(args)
        crpix = reference_pixel(args)
    except UsageError as exc:
        print(f"skysolve-field: {exc} (see skysolve-field --help)", file=sys.stderr)
        return EXIT_USAGE
    inputs = list(args.inputs)
    if args.stdin:
        if sys.stdin is None or sys.stdin.closed:  # (started with standard input closed)
            print("skysolve-field: failed to read a file name from standard input",
                  file=sys.stderr)
        else:
            inputs += [line.strip() for line in sys.stdin if line.strip()]
    if not inputs:
        # (as solve-field: a command line without a file to process is answered with the
        # usage on standard output and status 0; an option it does not know is the error)
        parser.print_help(sys.stdout)
        print("skysolve-field: no input files given", file=sys.stderr)
        return EXIT_OK
    backend = one_shot_backend(len(inputs))
    hints, sources = {**hints, "backend": backend}, {**sources, "backend": backend}
    skipped = _ignored(args)
    if skipped:
        print(f"skysolve-field: ignored (no meaning for skysolve): {', '.join(skipped)}",
              file=sys.stderr)
    status = EXIT_OK
    try:
        for k, name in enumerate(inputs, 1):
            print(f'Reading input file {k} of {len(inputs)}: "{name}"...', flush=True)
            with _warnings_on_one_line():
                if run_field(Path(name), args, hints, sources, crpix) != EXIT_OK:
                    status = EXIT_ERROR
    except KeyboardInterrupt:  # (a capture program's cancel, or Ctrl-C: no traceback)
        print("skysolve-field: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of the output went away (``skysolve-field ... | head -1``): the run
        # ends as solve-field's does on SIGPIPE, without a traceback nor an error per
        # input, and nothing more is written to the closed pipe at exit
        drop_stdout()
        return EXIT_ERROR
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
