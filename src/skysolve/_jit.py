"""numba, when it is there and allowed: the switch between compiled and reference code.

numba is a dependency, but skysolve keeps working without it: every compiled
function has a pure-numpy twin (the reference backend of the solver), and
``SKYSOLVE_DISABLE_NUMBA=1`` in a process's environment selects that path. The
switch is read once per process, without importing numba: building or loading
a database never pays for numba's import; only the first compiled solve does.

May import: ``_cachedir``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._cachedir import user_cache_dir

__all__ = ["available", "jit", "dispatchers", "is_warm", "mark_warm", "warm_in_background"]


def _detect() -> bool:
    """Whether compiled code can and may be used (numba installed and not disabled)."""
    if os.environ.get("SKYSOLVE_DISABLE_NUMBA", "") not in ("", "0"):
        return False
    # under NUMBA_DISABLE_JIT the kernels would run as (slow) Python loops
    if os.environ.get("NUMBA_DISABLE_JIT", "") not in ("", "0"):
        return False
    return importlib.util.find_spec("numba") is not None


#: Read once per process (tests switch it directly).
_AVAILABLE = _detect()


def available() -> bool:
    """Whether the compiled kernels are used (``SKYSOLVE_DISABLE_NUMBA=1``: no)."""
    return _AVAILABLE


def jit(fn: Callable[..., Any], inline: bool = False) -> Callable[..., Any]:
    """``numba.njit(cache=True, nogil=True)`` of ``fn`` (imports numba).

    Kernels are compiled on first use and cached on disk, so only the first
    solve on a machine pays for compilation; ``nogil`` lets threads solve in
    parallel. ``inline``: a helper that takes arrays and is called several times per
    element (the position fit's, per star) is compiled into its callers
    (``inline='always'``): a call between compiled functions counts the
    references of every array it passes, atomically, at entry and exit.
    """
    import numba

    return numba.njit(cache=True, nogil=True, inline="always" if inline else "never")(fn)


def dispatchers(namespace: dict[str, Any]) -> dict[str, Any]:
    """The compiled functions (numba dispatchers) among a module's globals."""
    import numba

    return {name: obj for name, obj in namespace.items()
            if isinstance(obj, numba.core.registry.CPUDispatcher)}


# ------------------------------------------------------------------ compiled ahead of use
#
# numba compiles a kernel on its first call and keeps the machine code in its disk cache
# (``cache=True``), keyed by the source file's time stamp. On a fresh install (or after
# the source changes) the solver's kernels take ~10 s to compile. So that no solve waits
# for that, ``backend='auto'`` takes the compiled kernels only once a process has
# compiled them all into the cache and left a *warm marker* saying for which sources,
# numba and Python; until then it solves with the numpy reference and compiles the
# kernels in a background process (``python -m skysolve.solver.warmup``).


def _pin_numba_cache_dir() -> None:
    """Make a relative ``NUMBA_CACHE_DIR`` absolute, against the working directory of
    skysolve's import (before numba's, which reads it then).

    numba joins a relative one to the working directory of each read and write, and
    the marker followed it: a process that changed directory (a service), or started the
    background compile from another one, compiled into one cache and looked for the
    marker in another. Pinned in the environment, numba, the marker and the processes
    started from here name one directory.
    """
    value = os.environ.get("NUMBA_CACHE_DIR")
    if value and not os.path.isabs(value):
        os.environ["NUMBA_CACHE_DIR"] = os.path.abspath(value)


_pin_numba_cache_dir()


def _cache_dir() -> Path | None:
    """Where the warm marker lives: numba's ``NUMBA_CACHE_DIR`` if set (absolute, see
    :func:`_pin_numba_cache_dir`), else skysolve's user cache directory
    (:func:`skysolve._cachedir.user_cache_dir`, the default databases'); None without
    either (no home directory): no marker then."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.path.abspath(os.environ["NUMBA_CACHE_DIR"]))
    return user_cache_dir()


def _stamp(sources: list[Path]) -> dict[str, Any]:
    """What numba's cache of these sources depends on: their time stamps and sizes, the
    numba installation's and the interpreter's (its file and environment, each however
    named: ``.venv/bin/python3``, ``bin/../bin/python`` and an absolute path are one)."""
    spec = importlib.util.find_spec("numba")
    files = [*sources, Path(spec.origin)] if spec and spec.origin else list(sources)
    return {"python": sys.version, "executable": os.path.realpath(sys.executable),
            "prefix": os.path.realpath(sys.prefix),
            "files": {str(p): [p.stat().st_mtime_ns, p.stat().st_size] for p in files}}


def _marker(sources: list[Path]) -> Path | None:
    """The warm marker's file for ``sources``; None without a cache directory."""
    directory = _cache_dir()
    if directory is None:
        return None
    key = hashlib.sha1("\n".join(sorted(map(str, sources))).encode()).hexdigest()[:12]
    return directory / f"kernels-warm-{key}.json"


def is_warm(sources: list[Path]) -> bool:
    """Whether a process compiled the kernels of ``sources`` into numba's cache (a marker
    matching their current stamps). Reads one small file; never imports numba. Without a
    cache directory for the marker: never (the numpy reference then solves)."""
    path = _marker(sources)
    if path is None:
        return False
    try:
        return json.loads(path.read_text()) == _stamp(sources)
    except (OSError, ValueError):
        return False


def mark_warm(sources: list[Path]) -> None:
    """Record that the kernels of ``sources`` are in numba's cache (atomically; best
    effort: a read-only cache directory, or none at all, only means the next process
    checks again)."""
    path = _marker(sources)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # (named by thread too, as _files names its temporary files: _jit imports no _files)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(_stamp(sources)))
        os.replace(tmp, path)
    except OSError:
        pass


def _child_environment() -> dict[str, str]:
    """This process's environment, for a Python process that must import this skysolve.

    Returns
    -------
    dict
        ``os.environ`` with the directory holding the ``skysolve`` package first in
        ``PYTHONPATH``: a skysolve found through ``sys.path`` (a source tree put there
        by a script, ``PYTHONPATH`` changed in the process) was not found by the child,
        whose warm-up then failed at its import, every run. Not where that directory is
        one of the interpreter's site directories (an installed skysolve): the child
        finds it there anyway, and put first it would also put the packages installed
        beside skysolve before the standard library.
    """
    import site

    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sites = [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    if os.path.realpath(here) in {os.path.realpath(d) for d in sites}:
        return env
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([here, *(p for p in paths if p != here)])
    return env


def warm_in_background(module: str) -> bool:
    """Start ``python -m module`` detached, at most once per process and module; whether
    it started.

    ``SKYSOLVE_NO_BACKGROUND_COMPILE=1`` turns this off (the kernels then compile when
    ``backend='compiled'`` is asked for, or by running the module by hand). Nor is it
    started without a cache directory for the warm marker (no home directory): no
    marker could record the compile, and every process would start it again.
    """
    if module in _BACKGROUND or os.environ.get("SKYSOLVE_NO_BACKGROUND_COMPILE",
                                                "") not in ("", "0") or _cache_dir() is None:
        return False
    _BACKGROUND.add(module)
    import subprocess
    import threading

    try:
        proc = subprocess.Popen([sys.executable, "-m", module], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=_child_environment(), start_new_session=True)
    except OSError:
        return False
    # reaped when it ends: a long-running process (the service, a pool's worker) would
    # otherwise keep it as a zombie
    threading.Thread(target=proc.wait, name=f"skysolve-warm-{module}", daemon=True).start()
    return True


#: The modules started in the background by this process.
_BACKGROUND: set[str] = set()
