"""Module-level odds and ends of tetra3rs's API: the build's git hash and the log-cache reset.

tetra3rs's module carries ``__version__``, ``__git_hash__`` (the commit it
was built from), ``version`` (``importlib.metadata.version``, importable from
it by accident of its ``__init__``) and ``reset_log_cache()``, which makes its
compiled core re-read the Python logging levels. skysolve offers the same
names so that code written against tetra3rs runs unchanged; this module holds
the two that need code.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

__all__ = ["git_hash", "reset_log_cache"]

#: What :func:`git_hash` returns when the source is not a git checkout.
UNKNOWN = "unknown"


@functools.cache
def git_hash() -> str:
    """The short hash of the git commit skysolve runs from, or ``'unknown'``.

    Only a source checkout knows it (an installed wheel does not): the
    repository must be the one whose ``src/skysolve`` this is, so that a
    package installed inside some other repository does not report that one.
    """
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / ".git").exists():
        return UNKNOWN
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    text = out.stdout.strip()
    return text if text and all(c in "0123456789abcdef" for c in text) else UNKNOWN


def reset_log_cache() -> None:
    """Re-read the Python logging levels (tetra3rs's call; nothing to do in skysolve).

    tetra3rs forwards its Rust log records to :mod:`logging` and caches the
    levels, so changing a level needs this call. skysolve logs through
    :mod:`logging` directly (loggers ``skysolve.*``), which reads the levels
    on every record: a changed level applies at once, and this function does
    nothing. It exists so that code written for tetra3rs runs unchanged.
    """
