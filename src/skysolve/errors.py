"""Exception types raised by skysolve.

Every error subclasses the built-in exception a caller would already catch
(``ValueError``, ``TypeError``, ``OSError``), so ``except ValueError`` keeps
working, while ``except skysolve.SkysolveError`` catches them all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Any

__all__ = [
    "SkysolveError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "FileFormatError",
    "BatchTerminated",
    "LensModelWarning",
    "describe",
    "warn_caller",
]


class SkysolveError(Exception):
    """Base class of every error skysolve raises on purpose."""


class InvalidArgumentError(SkysolveError, ValueError):
    """An argument has the right type but a value outside what is allowed."""


class InvalidTypeError(SkysolveError, TypeError):
    """An argument has a type skysolve cannot use."""


class FileFormatError(SkysolveError, ValueError):
    """A file is truncated, corrupted, of another format, or of another version."""


class LensModelWarning(UserWarning):
    """A solve's answer fits its stars loosely: the lens model it was solved with (the
    projection named, the camera model, or none) does not fit the image, and the
    attitude and WCS may be off by several pixels or more."""


class BatchTerminated(SystemExit):
    """The process running a batch was sent SIGTERM (``kill``, ``timeout``, a Slurm time
    limit, systemd).

    Raised where the batch runs, so that it stops as on Ctrl-C: the frames not
    started are cancelled, local worker processes are ended, and the results
    table is written with every frame that finished. Uncaught, it ends the
    process with status 143 (128 + SIGTERM), as the signal would have.
    """

    def __init__(self) -> None:
        super().__init__(128 + 15)  # SIGTERM's number on every POSIX system


def describe(exc: BaseException) -> str:
    """An exception as one line for messages and tables (``strerror: filename`` for OS errors)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename and str(exc.filename) \
            not in exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line


#: The package's folder: frames of files under it (other than its tests) are skysolve's own.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _is_own(frame: Any) -> bool:
    filename = frame.f_code.co_filename
    if filename == contextlib.__file__:  # (the ``with`` of one of skysolve's context managers)
        return True
    # (by the module, too: a dataclass's generated __init__ is compiled from "<string>")
    module = frame.f_globals.get("__name__", "")
    if module == "skysolve" or (module.startswith("skysolve.") and ".tests" not in module):
        return True
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE) and f"{os.sep}tests{os.sep}" not in path[len(_PACKAGE) - 1:]


def warn_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """Warn, attributing the warning to the first frame outside skysolve (the line of
    the user's code that called into it), however deep inside the package it is given:
    the same warning is reached through different depths (``calibrate_camera`` directly,
    or through the calibration workflow, a batch task), which a fixed ``stacklevel``
    cannot follow. A warning given in a thread that skysolve started is attributed to
    the thread's start (in ``threading`` or ``concurrent.futures``)."""
    frame = sys._getframe(1)  # the function that warns: stacklevel 2 from here
    level = 2
    while frame.f_back is not None and _is_own(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
