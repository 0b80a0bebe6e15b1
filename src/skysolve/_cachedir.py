"""The user cache directory skysolve keeps its files in, or None where there is none.

One rule for every cache of the package: the default databases
(:func:`skysolve.defaultdb.cache_directory`) and the compiled kernels' warm marker
(:mod:`skysolve._jit`), so that the two never disagree on where the user's cache is.

May import: nothing of skysolve.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_cache_dir"]


def _home() -> Path | None:
    """The user's home directory; None when it is unknown.

    ``os.path.expanduser`` leaves ``~`` as it is when ``$HOME`` is unset and the user has
    no password entry (a container run under an arbitrary uid), and returns whatever
    ``$HOME`` says, relative or not: neither names a directory of the user's (a cache
    under ``./~`` would follow the working directory).
    """
    home = os.path.expanduser("~")
    return Path(home) if os.path.isabs(home) else None


def user_cache_dir() -> Path | None:
    """skysolve's directory in the platform's user cache directory (not created here).

    Returns
    -------
    pathlib.Path or None
        ``$XDG_CACHE_HOME/skysolve``, else ``~/.cache/skysolve`` (Linux and other Unix);
        ``~/Library/Caches/skysolve`` (macOS); ``%LOCALAPPDATA%\\skysolve\\Cache``
        (Windows). None when the user has no home directory to hold it.

    Notes
    -----
    A relative ``$XDG_CACHE_HOME`` (or ``%LOCALAPPDATA%``) is ignored, as the XDG Base
    Directory specification says: a path relative to whatever the working directory
    happens to be is no cache.
    """
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        if local and os.path.isabs(local):
            return Path(local) / "skysolve" / "Cache"
        home = _home()
        return None if home is None else home / "AppData" / "Local" / "skysolve" / "Cache"
    if sys.platform != "darwin":
        xdg = os.environ.get("XDG_CACHE_HOME")
        if xdg and os.path.isabs(xdg):
            return Path(xdg) / "skysolve"
    home = _home()
    if home is None:
        return None
    return home / ("Library/Caches" if sys.platform == "darwin" else ".cache") / "skysolve"
