"""Exception types raised by skysolve.

Every error subclasses the built-in exception a caller would already catch
(``ValueError``, ``TypeError``, ``OSError``), so ``except ValueError`` keeps
working, while ``except skysolve.SkysolveError`` catches them all.
"""

from __future__ import annotations

__all__ = [
    "SkysolveError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "FileFormatError",
    "describe",
]


class SkysolveError(Exception):
    """Base class of every error skysolve raises on purpose."""


class InvalidArgumentError(SkysolveError, ValueError):
    """An argument has the right type but a value outside what is allowed."""


class InvalidTypeError(SkysolveError, TypeError):
    """An argument has a type skysolve cannot use."""


class FileFormatError(SkysolveError, ValueError):
    """A file is truncated, corrupted, of another format, or of another version."""


def describe(exc: BaseException) -> str:
    """An exception as one line for messages and tables (``strerror: filename`` for OS errors)."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename and str(exc.filename) \
            not in exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())  # one line
