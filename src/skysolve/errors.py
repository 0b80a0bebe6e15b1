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
]


class SkysolveError(Exception):
    """Base class of every error skysolve raises on purpose."""


class InvalidArgumentError(SkysolveError, ValueError):
    """An argument has the right type but a value outside what is allowed."""


class InvalidTypeError(SkysolveError, TypeError):
    """An argument has a type skysolve cannot use."""


class FileFormatError(SkysolveError, ValueError):
    """A file is truncated, corrupted, of another format, or of another version."""
