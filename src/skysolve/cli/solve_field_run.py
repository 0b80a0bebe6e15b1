"""One input of ``skysolve-field``: read, extract, solve, write solve-field's files and lines.

See :mod:`skysolve.cli.solve_field` for the command line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..fields import (
    OUTPUTS,
    Field,
    deeper_field,
    holdable_reference,
    image_field,
    load_database,
    solve_field_sources,
    write_solution,
)
from .common import stdout_gone

#: Exit status per input: processed (solved or not), or an input that could not be used.
EXIT_OK, EXIT_ERROR = 0, 1
#: Seconds between two looks for ``-C/--cancel``'s file while an input is processed.
CANCEL_POLL_S = 0.1
#: Inputs read as x/y lists rather than images.
XYLIST_SUFFIXES = (".xyls", ".axy", ".xy")


def _say(message: str) -> None:
    print(message, flush=True)


class Cancelled(BaseException):
    """``-C/--cancel``'s file appeared while an input was read or solved (a BaseException,
    as KeyboardInterrupt: no ``except Exception`` on the way may take it for an error)."""


class CancelWatch:
    """Stops the work of :meth:`watching` blocks when the file ``path`` appears, as
    solve-field's ``-C/--cancel FILE`` does (capture programs create the file to abort).

    A thread looks for the file every :data:`CANCEL_POLL_S` seconds; when it appears while
    a block runs, the main thread is interrupted (the solver returns to Python between
    its compiled steps) and the block raises :class:`Cancelled`. A real Ctrl-C stays a
    KeyboardInterrupt. Outside a block (files being written) the file is only noticed by
    the next :meth:`requested`: an interrupt never lands in the middle of a write. Off
    the main thread, where Python delivers no interrupt, the file is looked for only
    between the steps.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)

    def requested(self) -> bool:
        """Whether the cancel file exists now."""
        return self.path is not None and self.path.exists()

    def watching(self) -> Any:
        """A context manager: the block raises :class:`Cancelled` when the file appears."""
        import contextlib
        import signal
        import threading

        if (self.path is None or threading.current_thread() is not threading.main_thread()
                or signal.getsignal(signal.SIGINT) is None):  # (a handler not Python's)
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def block():
            import _thread

            state = {"armed": True, "seen": False}
            previous = signal.getsignal(signal.SIGINT)
            stop = threading.Event()

            def on_interrupt(signum: int, frame: Any) -> None:
                if state["seen"]:
                    if state["armed"]:  # (after the block it is too late: ignored)
                        raise Cancelled
                    return
                if callable(previous):
                    previous(signum, frame)
                elif previous != signal.SIG_IGN:
                    raise KeyboardInterrupt

            def look() -> None:
                while not stop.wait(CANCEL_POLL_S):
                    if self.requested():
                        state["seen"] = True
                        _thread.interrupt_main(signal.SIGINT)
                        return

            signal.signal(signal.SIGINT, on_interrupt)
            watcher = threading.Thread(target=look, name="skysolve-cancel-watch", daemon=True)
            watcher.start()
            try:
                yield
            finally:
                state["armed"] = False
                stop.set()
                watcher.join()
                # (signal.signal runs a pending interrupt first, with on_interrupt: a cancel
                # seen as the block ended is dropped there, not raised later)
                signal.signal(signal.SIGINT, previous)

        return block()


def _base(path: Path, args: argparse.Namespace) -> str:
    """solve-field's base name: ``--out``, else the input's name, without a ``.gz`` or
    ``.bz2`` and then without an extension of 2 to 4 characters (``-o field.fits`` names
    ``field.wcs``, as the input ``field.fits`` does; ``-o run.1`` keeps its ``.1``)."""
    name = args.out or path.name
    for packed in (".gz", ".bz2"):
        if name.endswith(packed) and len(name) > len(packed):
            name = name[:-len(packed)]
            break
    stem, dot, extension = name.rpartition(".")
    return stem if dot and stem and 2 <= len(extension) <= 4 else name


#: Outputs written only when named (solve-field's ``--kmz``): dest -> suffix.
_ASKED_FOR = {"kmz": ".kmz"}
#: Every output's suffix, by option dest.
_SUFFIXES = {**OUTPUTS, **_ASKED_FOR}


def _outputs(path: Path, args: argparse.Namespace) -> dict[str, Path | None]:
    """Output files by option dest (None: not written), solve-field's names by default.

    As solve-field: a name given on the command line is a pattern in which ``%s``
    stands for the base path (``DIR/BASE``); without ``%s`` it is used as given
    (relative to the working directory, not to ``--dir``)."""
    folder = Path(args.dir) if args.dir else path.parent
    base = str(folder / _base(path, args))
    out: dict[str, Path | None] = {}
    for dest, suffix in _SUFFIXES.items():
        given = getattr(args, dest, None)
        if given is not None and given.lower() == "none":
            out[dest] = None
        elif given is not None:
            out[dest] = Path(given.replace("%s", base))
        else:
            out[dest] = None if dest in _ASKED_FOR else Path(f"{base}{suffix}")
    xylist = _is_xylist(path, args)
    if getattr(args, "temp_axy", False) or xylist:
        out["axy"] = None  # (an x/y list is not augmented: its own file is the list)
    if xylist:
        out["kmz"] = None  # (a picture of the image on the sky: there is none)
    return out


def _cancel_path(path: Path, args: argparse.Namespace) -> Path | None:
    """``-C/--cancel``'s file for the input ``path``: a pattern as the output names are
    (``%s`` the base path), or None."""
    given = getattr(args, "cancel", None)
    if given is None:
        return None
    folder = Path(args.dir) if args.dir else path.parent
    return Path(given.replace("%s", str(folder / _base(path, args))))


def _is_xylist(path: Path, args: argparse.Namespace) -> bool:
    """An x/y list: named ``.xyls``/``.axy``/``.xy``, or by content as solve-field decides
    (a FITS table with the x and y columns, such as a SExtractor catalog)."""
    from ..io.astrometry_files import is_xylist

    return path.suffix.lower() in XYLIST_SUFFIXES or is_xylist(
        path, args.x_column or "X", args.y_column or "Y", args.extension)


#: The range searched about a scale guessed from the header, as a fraction either side.
GUESSED_SCALE_HALF_WIDTH = 0.05


def _guessed_scale(path: Path, args: argparse.Namespace, hints: dict[str, Any]
                   ) -> dict[str, Any]:
    """With ``--guess-scale`` and no scale range given: the solve's pixel-scale range
    about the scale a FITS input's header states or implies
    (:func:`~skysolve.io.scale_units.guess_scale`), said on standard output; else ``{}``."""
    if not args.guess_scale or "fov_range_deg" in hints or "pixel_scale_range_arcsec" in hints:
        return {}
    from ..errors import FileFormatError
    from ..io.images import read_fits_header
    from ..io.scale_units import guess_scale, scale_range

    try:
        header = read_fits_header(path, args.extension)
    except FileFormatError:  # (not a FITS file: no header to guess from)
        return {}
    guess = guess_scale(header)
    if guess is None:
        _say("Could not guess the image scale from the FITS header.")
        return {}
    scale, keys = guess
    _say(f"Guessed scale: {scale:g} arcsec/pix (from {keys}).")
    return scale_range(scale * (1.0 - GUESSED_SCALE_HALF_WIDTH),
                       scale * (1.0 + GUESSED_SCALE_HALF_WIDTH), "arcsecperpix")


#: The source options that are :func:`~skysolve.fields.image_field`'s extraction arguments.
_EXTRACTION_KEYS = ("max_centroids", "sigma_threshold", "noise", "sky_circle", "backend")


def _image_field(path: Path, args: argparse.Namespace, sources: dict[str, Any]) -> Field:
    extraction = {k: v for k, v in sources.items() if k in _EXTRACTION_KEYS}
    return image_field(path, hdu=args.extension, downsample=args.downsample,
                       invert=args.invert, **extraction)


def _deeper(path: Path, args: argparse.Namespace, sources: dict[str, Any], fld: Field,
            result: Any, axy: Path | None, db: Any, hints: dict[str, Any], started: float
            ) -> tuple[Any, Field]:
    """``(result, fld)`` after :func:`~skysolve.fields.deeper_field` (an image short of
    stars extracted again, deeper, and solved with ``hints`` against ``db``, as
    ``skysolve solve`` does, in what is left of their time limit since ``started``, see
    :func:`time_left`); a deeper list that solved is said and written over the ``.axy``
    (the ``.corr``'s field ids index it)."""
    from ..batch.deeper import limited
    from ..extraction.options import ExtractionOptions
    from ..io import astrometry_files as af

    def solve(deeper: Field, limit_ms: float) -> Any:
        left = time_left(hints, started)  # (after the frame's second extraction)
        return None if left is None else solve_field_sources(
            db, deeper, sources.get("depth"), **limited(left, limit_ms))

    extraction = {k: v for k, v in sources.items() if k in _EXTRACTION_KEYS}
    again, deeper = deeper_field(path, fld, result, solve, hdu=args.extension,
                                 downsample=args.downsample, invert=args.invert, **extraction)
    if deeper is not fld:
        sigma = ExtractionOptions().retry_sigma_threshold
        _say(f"Did not solve; extracted again at {sigma:g} sigmas: {len(deeper.xy_fits)} "
             "sources.")
        if axy is not None:
            af.write_axy(axy, deeper.xy_fits, deeper.flux, deeper.background, deeper.width,
                         deeper.height)
    return again, deeper


def _xylist_field(path: Path, args: argparse.Namespace, keep: int | None = None) -> Field:
    from ..io.astrometry_files import read_xylist, xylist_columns

    xcol, ycol = args.x_column or "X", args.y_column or "Y"
    xy, flux, header, rows = read_xylist(path, xcol, ycol, args.sort_column,
                                         args.sort_ascending, hdu=args.extension)
    width = args.width or header.get("IMAGEW")  # (the primary header's, else the table's)
    height = args.height or header.get("IMAGEH")
    if not width or not height:
        raise ValueError(f"{path}: the image size is unknown: give --width and --height")
    flux = np.zeros(len(xy)) if flux is None else flux
    columns = {name: v[rows] for name, v in
               xylist_columns(path, xcol, ycol, hdu=args.extension).items()}
    finite = np.isfinite(xy).all(axis=1)
    if not finite.all():  # a row without a position is no source; the others still are
        print(f"skysolve-field: {path}: {int((~finite).sum())} rows without finite "
              f"{xcol}/{ycol} skipped", file=sys.stderr, flush=True)
        xy, flux, rows = xy[finite], flux[finite], rows[finite]
        columns = {name: v[finite] for name, v in columns.items()}
    if keep is not None:  # --objs: the brightest (first after sorting) only
        xy, flux, rows = xy[:keep], flux[:keep], rows[:keep]
        columns = {name: v[:keep] for name, v in columns.items()}
    return Field(xy, flux, 0.0, int(width), int(height), input_rows=rows, columns=columns)


def _ra_text(ra: float, spec: str) -> str:
    """``ra`` (degrees, in [0, 360)) formatted by ``spec``, in [0, 360) as printed too:
    359.9999999 is ``0.000000``, not ``360.000000`` (with ``00:00:00.000`` beside it)."""
    text = format(ra, spec)
    return format(0.0, spec) if float(text) >= 360.0 else text


def match_line(result: Any) -> str:
    """astrometry-engine's line for the match, which scripts read the pixel scale from:
    the image centre and the scale there (arcseconds per pixel, ``sqrt(|det CD|)``; the
    CD matrix in radians)."""
    ra, dec = result.pixel_to_world(0.0, 0.0)
    scale = 3600.0 * math.degrees(math.sqrt(abs(float(np.linalg.det(result.cd_matrix)))))
    return f"  RA,Dec = ({_ra_text(ra, 'g')},{dec:g}), pixel scale {scale:g} arcsec/pix."


def field_lines(result: Any, width: int, height: int,
                sky_circle: tuple[float, float, float] | None = None) -> list[str]:
    """solve-field's summary lines for a solved field; its size measured within
    ``sky_circle`` (an all-sky lens's image circle, centred pixels), when it has one."""
    from ..io.astrometry_files import (
        field_parity,
        field_size_unit,
        rotation_up_east_of_north,
        sexagesimal,
        solution_extent_deg,
    )

    ra, dec = result.pixel_to_world(0.0, 0.0)
    ra_hms, dec_dms = sexagesimal(ra, dec)
    # the sizes across the image through its centre, between opposite edges' midpoints
    # (or the sky circle's rim, where the sky ends)
    size_w, size_h, unit = field_size_unit(
        solution_extent_deg(result, (0.5 * width, 0.0), sky_circle),
        solution_extent_deg(result, (0.0, 0.5 * height), sky_circle))
    return [f"Field center: (RA,Dec) = ({_ra_text(ra, '.6f')}, {dec:.6f}) deg.",
            f"Field center: (RA H:M:S, Dec D:M:S) = ({ra_hms}, {dec_dms}).",
            f"Field size: {size_w:g} x {size_h:g} {unit}",
            f"Field rotation angle: up is {rotation_up_east_of_north(result):g} degrees E of N",
            f"Field parity: {field_parity(result)}"]


def _is_input(p: Path, path: Path) -> bool:
    """Whether the output ``p`` is the input file ``path`` itself."""
    try:
        return p.samefile(path)
    except OSError:  # (the input is missing: reported when it is read)
        return False


#: The option naming each output file, for messages.
_OPTION = {"axy": "--axy", "wcs": "--wcs", "corr": "--corr", "match": "--match",
           "rdls": "--rdls", "solved": "--solved", "new_fits": "--new-fits",
           "index_xyls": "--index-xyls", "kmz": "--kmz"}


def _refuse_outputs_over_input(path: Path, out: dict[str, Path | None],
                               cancel: Path | None = None) -> None:
    """Refuse an output file that is the input itself (``--wcs frame.tiff``, or an input
    named ``frame.wcs`` or ``frame.new`` whose default output name is its own): it would
    be replaced by the output, the image lost; and so a ``cancel`` file (``-C``), which
    ``-O`` deletes."""
    if cancel is not None and _is_input(cancel, path):
        raise InvalidArgumentError("refusing a -C/--cancel file that is the input itself")
    for dest, p in out.items():
        if p is not None and _is_input(p, path):
            raise InvalidArgumentError(
                f"refusing to overwrite the input with its {_SUFFIXES[dest]} output: "
                f"name that file with {_OPTION[dest]} (or 'none'), or -o/--out, -D/--dir")


def _blocked(path: Path, out: dict[str, Path | None], args: argparse.Namespace) -> bool:
    """Whether existing output files stop the input ``path`` (solve-field's rules)."""
    if args.skip_solved and out["solved"] is not None and out["solved"].exists():
        _say(f'Skipping: solved file "{out["solved"]}" exists.')
        return True
    if args.continue_:
        return False
    if args.overwrite:  # deleted first: no stale .solved/.wcs survives a failed solve
        for p in out.values():
            if p is not None and p.exists():
                p.unlink()
        return False
    existing = [p for p in out.values() if p is not None and p.exists()]
    if existing:
        _say(f'Output file already exists: "{existing[0]}".  Use the --overwrite flag to '
             "overwrite existing files, or the --continue flag to not overwrite existing "
             "files but still try solving.")
        return True
    return False


def time_left(hints: dict[str, Any], started: float) -> dict[str, Any] | None:
    """``hints`` with the part of their time limit (``solve_timeout_ms``, from
    ``--cpulimit``) not yet spent since ``started`` (a :func:`time.perf_counter`
    reading): solve-field's limit bounds a field's whole search, not each attempt of it
    (another scale, a deeper extraction, the narrower databases). None when nothing is
    left; ``hints`` themselves when they set no limit."""
    told = hints.get("solve_timeout_ms")
    if told is None:
        return hints
    left = float(told) - 1000.0 * (time.perf_counter() - started)
    return {**hints, "solve_timeout_ms": left} if left > 0 else None


def _in_narrower(fld: Field, depth: int | None, failed: Any, hints: dict[str, Any],
                 started: float) -> tuple[Any, Any]:
    """:func:`~skysolve.defaultdb.solve_in_narrower` of the field's sources, each
    database searched in what is left of the time limit since ``started``
    (:func:`time_left`): ``(result, the database that solved it or None)``."""
    from ..batch.deeper import limited
    from ..defaultdb import solve_in_narrower

    def narrower(other: Any, limit_ms: float) -> Any:
        left = time_left(hints, started)
        return None if left is None else solve_field_sources(
            other, fld, depth, **limited(left, limit_ms))

    return solve_in_narrower(narrower, failed, hints, fld.width)


def run_field(path: Path, args: argparse.Namespace, hints: dict[str, Any],
              sources: dict[str, Any] | None = None,
              crpix: tuple[float | None, float | None] | None = None) -> int:
    """Process one input; returns the exit status for it (0 solved or not).

    ``sources``: :func:`~skysolve.cli.solve_field.source_options`; ``crpix``: the
    reference pixel asked for (:func:`~skysolve.fields.reference_pixel`)."""
    from ..io import astrometry_files as af

    sources = sources or {}
    out = _outputs(path, args)
    cancel = CancelWatch(_cancel_path(path, args))
    try:
        _refuse_outputs_over_input(path, out, cancel.path)
        # (the cancel file counts among the outputs, as solve-field's: --overwrite
        # deletes one a cancelled run left, which would stop every later solve)
        if _blocked(path, {**out, "cancel": cancel.path}, args):
            return EXIT_OK
        if cancel.requested():
            raise Cancelled
        if args.dir:  # solve-field creates --dir whatever it writes there
            Path(args.dir).mkdir(parents=True, exist_ok=True)
        with cancel.watching():
            fld = (_xylist_field(path, args, sources.get("max_centroids"))
                   if _is_xylist(path, args) else _image_field(path, args, sources))
        _say(f"Extracted {len(fld.xy_fits)} sources.")
        if out["axy"]:  # (None for an x/y list)
            af.write_axy(out["axy"], fld.xy_fits, fld.flux, fld.background, fld.width,
                         fld.height)
        if args.just_augment:  # (scripts ask for the source list alone: no solve)
            return EXIT_OK
        guess = _guessed_scale(path, args, hints)
        from ..defaultdb import fields_told

        named = args.database or os.environ.get("SKYSOLVE_DB") or None
        db = load_database(named, fields_told({**hints, **guess}, fld.width))
        depth = sources.get("depth")
        started = time.perf_counter()
        with cancel.watching():
            result = solve_field_sources(db, fld, depth, **hints, **guess)
        # (each later attempt within what --cpulimit leaves: it bounds the field's search)
        if guess and not result and not cancel.requested() \
                and (left := time_left(hints, started)) is not None:
            # (a header can be wrong: a binning it does not include)
            _say("Did not solve at the guessed scale; trying without it.")
            # (from here on as if no scale was guessed: the database for the scale told,
            # if any, and the narrower cached ones after it; the guessed scale's database
            # may be a telescope's narrow one, which the frame is not)
            guess = {}
            db = load_database(named, fields_told(hints, fld.width))
            with cancel.watching():
                result = solve_field_sources(db, fld, depth, **left)
        if not result and not cancel.requested() and not _is_xylist(path, args) \
                and time_left(hints, started) is not None:
            with cancel.watching():
                result, fld = _deeper(path, args, sources, fld, result, out["axy"], db,
                                      {**hints, **guess}, started)
        if not result and not cancel.requested() and named is None \
                and fields_told({**hints, **guess}, fld.width) is None:
            # (no scale told or guessed, the default database searched: the cached
            # databases of narrower fields, as solve-field searches every index it has)
            with cancel.watching():
                result, narrow = _in_narrower(fld, depth, result, hints, started)
            db = narrow or db
        if cancel.requested():  # (appeared as the solve ended: its files are not written)
            raise Cancelled
        if not result:
            _say(f"Did not solve (or no WCS file was written). ({result.message})")
            return EXIT_OK
        reference, why = holdable_reference(result, crpix, fld.width, fld.height)
        if why:
            print(f"skysolve-field: warning: --crpix-x/--crpix-y: {why}; the files have "
                  "their reference pixel at the optical centre instead", file=sys.stderr,
                  flush=True)
        write_solution(out, result, fld, db, before_new=lambda path: _say(
            f'Creating new FITS file "{path}"...'), crpix=reference)
        # (said once every file is in place: a capture program that reads the files when
        # it sees these lines must find them all)
        index = Path(getattr(db, "file_path", None) or "skysolve").name
        _say(match_line(result))
        _say(f"Field 1: solved with index {index} ({result.num_matches} matched stars, "
             f"{result.rmse_arcsec:.2f}\" rms).")
        if out["solved"]:
            _say(f"Field 1 solved: writing to file {out['solved']} to indicate this.")
        _say(f"Field: {path}")
        for line in field_lines(result, fld.width, fld.height, fld.sky_circle):
            _say(line)
        return EXIT_OK
    except Cancelled:  # (solve-field's -C: the field is given up, the run goes on)
        _say(f'Did not solve: cancelled (the cancel file "{cancel.path}" exists).')
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line per input, never a traceback
        if isinstance(exc, BrokenPipeError) and stdout_gone():
            # the reader of the output went away (``skysolve-field ... | head -1``): no
            # input's error, the run ends (in solve_field.main, quietly)
            raise
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skysolve-field: {path}: {text}", file=sys.stderr, flush=True)
        return EXIT_ERROR
