"""numba, when it is there and allowed: the switch between compiled and reference code.

numba is a dependency, but skysolve keeps working without it: every compiled
function has a pure-numpy twin (the reference backend of the solver), and
``SKYSOLVE_DISABLE_NUMBA=1`` in a process's environment selects that path. The
switch is read once per process, without importing numba: building or loading
a database never pays for numba's import; only the first compiled solve does.

May import: nothing of skysolve.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

__all__ = ["available", "jit", "dispatchers"]


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


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``numba.njit(cache=True, nogil=True)`` of ``fn`` (imports numba).

    Kernels are compiled on first use and cached on disk, so only the first
    solve on a machine pays for compilation; ``nogil`` lets threads solve in
    parallel.
    """
    import numba

    return numba.njit(cache=True, nogil=True)(fn)


def dispatchers(namespace: dict[str, Any]) -> dict[str, Any]:
    """The compiled functions (numba dispatchers) among a module's globals."""
    import numba

    return {name: obj for name, obj in namespace.items()
            if isinstance(obj, numba.core.registry.CPUDispatcher)}
