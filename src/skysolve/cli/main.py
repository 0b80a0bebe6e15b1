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
* 130 - interrupted (Ctrl-C);
* 143 - terminated (SIGTERM: ``kill``, ``timeout``, a batch system's time limit).

Only the standard library is imported at start-up so that ``--help`` and
``--version`` answer at once; numpy, scipy, astropy and matplotlib are imported
by the commands that need them.
"""


from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .common import _console, _err, _error_text, drop_stdout, stdout_gone
from .parser import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_UNSOLVED,
    EXIT_USAGE,
    build_parser,
)

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_UNSOLVED"]

# ------------------------------------------------------------------ demo


def _run_demo(argv: list[str]) -> int:
    from ..demo import main as demo_main

    try:
        rc = demo_main(argv)
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


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The command line, its images also after options (``solve a.fits --fov 11.4
    b.fits``, as shells' globs and scripts write them: argparse took the images before the
    first option only, and refused the rest as unrecognised)."""
    args, rest = parser.parse_known_args(argv)
    if rest and isinstance(getattr(args, "images", None), list) and not any(
            r.startswith("-") and len(r) > 1 for r in rest):
        args.images += rest
        return args
    return parser.parse_args(argv) if rest else args


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
        solved, 130 interrupted, 143 terminated.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    demo = _split_demo(argv)
    parser = build_parser()
    try:
        if demo is not None:
            args = parser.parse_args(demo[0])
            args.func, args.quiet = (lambda a: _run_demo(demo[1])), True
        else:
            args = _parse(parser, argv)
    except SystemExit as exc:  # --help, --version or a usage error
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ..errors import BatchTerminated, SkysolveError

    try:
        with _console(args.debug, args.quiet):
            return args.func(args)
    except KeyboardInterrupt:
        print("skysolve: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BatchTerminated:
        print("skysolve: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError as exc:
        if args.debug or not stdout_gone():  # (another pipe or socket: an error as any)
            if args.debug:
                raise
            _err(_error_text(exc))
            return EXIT_ERROR
        # the reader of the output went away (``skysolve solve ... --json | head``): no
        # "error: Broken pipe", and nothing more written to the closed pipe at exit
        drop_stdout()
        return EXIT_ERROR
    except (SkysolveError, OSError, ValueError, ImportError) as exc:
        if args.debug:
            raise
        _err(_error_text(exc))
        return EXIT_ERROR
