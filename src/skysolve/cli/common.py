"""Helpers shared by the commands: messages, JSON, images, databases, cameras."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .parser import EXIT_ERROR  # noqa: F401  (re-exported for the commands)


def one_shot_backend(n_images: int, distributed: bool = False) -> str:
    """The solver's (and extraction's) backend for a command over ``n_images`` images:
    numpy for a single image (``distributed``: sent to a cluster, never), the compiled
    kernels for several.

    Loading numba and the compiled kernels takes about half a second a process (and
    compiling them, on a machine's first run, ten), while the numpy reference solves a
    frame in a few milliseconds more than they do: a one-shot command (a capture program
    calls ``skysolve-field`` once per frame) is over sooner without them. The answers are
    the same.
    """
    return "reference" if n_images == 1 and not distributed else "auto"


def stdout_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (``... | head -1``),
    rather than another pipe or socket broken inside a command."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # (no poll, or no file behind stdout)
        return False


def drop_stdout() -> None:
    """Point standard output's file at the null device: what is still buffered, flushed
    at exit, goes nowhere instead of raising "Exception ignored ... BrokenPipeError"
    on the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


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
    from ..errors import describe

    return describe(exc)


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


def _results_misuse(args: argparse.Namespace) -> int | None:
    """Say what is wrong with ``--results``/``--resume``/``--overwrite`` and return the exit
    status, or None: checked before a database is loaded (or built).

    ``calibrate`` has no ``--resume`` (a calibration uses every image), so its advice for an
    existing table names only ``--overwrite``; its ``--overwrite`` also replaces an existing
    ``-o`` camera file, so it needs no ``--results``.
    """
    from .parser import EXIT_USAGE

    resumable = hasattr(args, "resume")
    resume = getattr(args, "resume", False)
    if not args.results:
        if resume or (args.overwrite and resumable):
            _err(f"{'--resume and --overwrite need' if resumable else '--overwrite needs'} "
                 "--results FILE")
            return EXIT_USAGE
        return None
    table = Path(args.results)
    if table.is_file() and args.overwrite:
        with table.open("rb") as fh:
            head = fh.read(7)
        if head and head != b"# %ECSV":
            # (``--overwrite --results *.tiff``: the first image became the table and was
            # replaced by it)
            _err(f"--results {args.results} exists and is no results table (ECSV): "
                 "refusing to replace it")
            return EXIT_ERROR
    if Path(args.results).exists() and not (resume or args.overwrite):
        if resumable:
            advice = "--resume to skip the images done there, or --overwrite to replace it"
        else:
            advice = ("--overwrite to replace it (calibrate has no --resume: a calibration "
                      "uses every image)")
        _err(f"results table {args.results} exists: {advice}")
        return EXIT_ERROR
    return None


# ------------------------------------------------------------------ images and databases


def _is_fits(path: Path) -> bool:
    from ..errors import FileFormatError
    from ..io.images import read_fits_header

    try:
        read_fits_header(path)
    except FileFormatError:
        return False
    return True


def _full_frame(path: Path, hdu: int | str | None, section: str | None,
                shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """0-based (col, row) of the solved image's first pixel in the file, and the file
    image's full (H, W); ``shape`` is the solved image's."""
    from ..batch.sources import frame_section

    if section is None:
        return (0, 0), tuple(shape)
    (x0, y0, _, _), full = frame_section(path, hdu=hdu, section=section)
    return (x0, y0), full


def _output_base(path: Path) -> Path:
    """``dir/foo.fits.gz`` -> ``dir/foo``, ``dir/foo.tiff`` -> ``dir/foo``."""
    name = path.name
    for suffix in (".gz", ".bz2", ".fz"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    stem, ext = os.path.splitext(name)
    return path.with_name(stem if stem else name)


def _date_misuse(args: argparse.Namespace) -> int | None:
    """``--date`` with ``--no-aberration``: said, and the usage exit status returned."""
    from .parser import EXIT_USAGE

    if args.date is not None and args.no_aberration:
        # --date serves only the correction --no-aberration turns off: one of the two
        # is a mistake, and the time was dropped without a word
        _err("--date is the time for the aberration correction, which --no-aberration "
             "turns off: give one of them")
        return EXIT_USAGE
    return None


def _check_not_input(out: Path, src: Path) -> None:
    from ..errors import InvalidArgumentError

    if out.resolve() == src.resolve():
        raise InvalidArgumentError(f"refusing to overwrite the input image {src}")


def _require_file(path: Path, option: str, kind: str) -> None:
    """Raise the OS's error for a ``path`` that is no file, naming the ``option`` it came
    from (the OS's message named the file only, and a directory was "not found")."""
    if not path.is_file():
        error = IsADirectoryError if path.is_dir() else FileNotFoundError
        what = "a directory" if path.is_dir() else "no such file"
        raise error(f"{option} {path}: {what}, not {kind}")


def _refuse_existing(option: str, paths: list[Path]) -> None:
    """Refuse, before the work, to replace an existing output of ``option`` (a previous
    result replaced after the run without a word); ``--overwrite`` allows it."""
    from ..errors import InvalidArgumentError

    for path in paths:
        if path.exists():
            raise InvalidArgumentError(f"{option}: {path} exists: --overwrite to replace it")


def _load_database(args: argparse.Namespace, fields: tuple[float, float] | None = None):
    """(database, its file) from --db, else the database for ``fields`` deg wide (the
    cached default database, or a cached one of a narrower field's scale: see
    :func:`~skysolve.defaultdb.database_for_fields`)."""
    from ..defaultdb import database_for_fields, default_database_path, load_database_file

    if args.db:
        path = Path(args.db)
        # (--db's default is $SKYSOLVE_DB: the user may not have typed it)
        option = "--db (or $SKYSOLVE_DB)" if args.db == os.environ.get("SKYSOLVE_DB") else "--db"
        _require_file(path, option, "a skysolve database")
        return load_database_file(path), path

    db = database_for_fields(fields, progress=None if not args.quiet else False)
    return db, Path(getattr(db, "file_path", None) or default_database_path())


def _extraction_options(args: argparse.Namespace):
    """The library's extraction options from the image flags (``--sigma`` only when
    given: the deeper retry's default depends on it, :func:`retry_sigma`)."""
    from ..extraction.options import ExtractionOptions

    given = {"sigma_threshold": args.sigma} if hasattr(args, "sigma") else {}
    return ExtractionOptions(**given, min_pixels=args.min_pixels,
                             max_elongation=args.max_elongation,
                             local_bg_block_size=args.bg_block, max_centroids=args.max_stars,
                             sky_circle=getattr(args, "sky_circle", "auto"))


def retry_sigma(args: argparse.Namespace) -> float | None:
    """The deeper retry's threshold: ``--retry-sigma`` (0: None, never), else the
    library's default, or none when ``--sigma`` was given (a threshold asked for is
    kept, as skysolve-field keeps ``--nsigma``)."""
    from ..extraction.options import ExtractionOptions

    if hasattr(args, "retry_sigma"):
        return args.retry_sigma
    return None if hasattr(args, "sigma") else ExtractionOptions().retry_sigma_threshold


def _load_camera(path: str | None):
    if path is None:
        return None
    from ..camera.model import CameraModel

    _require_file(Path(path), "--camera", "a camera model file")
    return CameraModel.load_from_file(path)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    print(f"skysolve: warning: {text}", file=sys.stderr, flush=True)

