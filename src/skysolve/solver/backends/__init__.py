"""Solver backends: the numpy reference and the numba-compiled kernels, behind one interface.

:mod:`~skysolve.solver.backends.interface` lists the functions (with their
contracts and example calls); :mod:`~skysolve.solver.backends.reference`
implements them in numpy and :mod:`~skysolve.solver.backends.compiled` in
numba. A solve picks one backend once (:func:`select`) and calls only
through it, so the solver code has no branches on which is in use.
:func:`prepare` compiles (or loads from numba's disk cache) every compiled
function for a database's array types by running the interface's examples,
before the solve's clock starts.

``'auto'`` takes the compiled backend only when its kernels are known to be in
numba's disk cache (:func:`skysolve._jit.is_warm`): compiling them takes ~10 s,
once per installation, and no solve should wait for it. Until then a process
solves with the reference backend (same answers, a few times slower) and starts
``python -m skysolve.solver.warmup`` in the background, which compiles them into
the cache; processes started after it has finished solve compiled. The choice is
made once per process, so that one process's answers never switch backend.

May import: ``errors``, ``_jit``, ``geometry``, ``camera``, ``solver.keys``,
``solver.patterns``.
"""

from __future__ import annotations

import importlib
import logging
import weakref
from pathlib import Path
from types import ModuleType
from typing import Any

from ... import _jit
from ...errors import InvalidArgumentError
from . import interface

__all__ = ["select", "prepare", "available", "interface", "KERNEL_SOURCES", "WARM_SOURCES"]

log = logging.getLogger(__name__)

_PREPARED: weakref.WeakSet = weakref.WeakSet()
_LOADED: dict[str, ModuleType] = {}
#: The backend ``'auto'`` resolved to in this process (decided once).
_AUTO: list[str] = []

_HERE = Path(__file__).resolve().parent
#: The source files of the compiled kernels (numba caches each file's kernels apart, keyed
#: by its time stamp); a test checks this against the kernels' own files.
KERNEL_SOURCES = [_HERE / "compiled.py", _HERE.parent / "keys.py",
                  _HERE.parents[1] / "camera" / "projection.py"]
#: What the warm marker depends on: the kernels, and what decides the argument types
#: they are compiled for (the interface's examples, the warm-up's databases).
WARM_SOURCES = [*KERNEL_SOURCES, _HERE / "interface.py", _HERE.parent / "warmup.py"]


def available() -> bool:
    """Whether the compiled backend can be used (numba present, not disabled)."""
    return _jit.available()


def select(name: str = "auto") -> ModuleType:
    """The backend module for ``name``: ``'auto'``, ``'compiled'`` or ``'reference'``.

    ``'auto'`` is the compiled backend when :func:`available`, else the
    reference. Asking for ``'compiled'`` without numba is an error.
    """
    if name == "auto":
        name = _auto()
    if name == "compiled" and not _jit.available():
        raise InvalidArgumentError(
            "backend='compiled' needs numba (not installed, or SKYSOLVE_DISABLE_NUMBA is set)")
    module = _LOADED.get(name)
    if module is None:
        if name not in ("compiled", "reference"):
            raise InvalidArgumentError(
                f"backend must be 'auto', 'compiled' or 'reference', got {name!r}")
        module = _LOADED[name] = importlib.import_module(f"{__name__}.{name}")
    return module


def _auto() -> str:
    """What ``'auto'`` means in this process (see the module notes)."""
    if not _AUTO:
        if not _jit.available():
            _AUTO.append("reference")
        elif _jit.is_warm(WARM_SOURCES):
            _AUTO.append("compiled")
        else:
            _AUTO.append("reference")
            if _jit.warm_in_background("skysolve.solver.warmup"):
                log.info("compiling the solver's kernels in a background process (once per "
                         "installation, about 10 s); solving with the numpy backend here")
    return _AUTO[0]


def prepare(backend: ModuleType, db: Any) -> None:
    """Make ``backend`` ready to solve with ``db`` at full speed.

    For the compiled backend: run every example of the interface once per
    database and process, so that each kernel is compiled (or loaded from
    the disk cache) for the array types of ``db``; later calls return at
    once. For any backend: the database's key directory, which the pattern
    search takes (a second or so for the largest databases).
    """
    if db in _PREPARED:
        return
    db.key_directory  # noqa: B018 - a cached property, computed once here
    if backend.NAME != "compiled":
        return
    for name, calls in interface.examples(db).items():
        fn = getattr(backend, name)
        for args in calls:
            fn(*args)
    _PREPARED.add(db)


def compiled_functions() -> dict[str, Any]:
    """The numba dispatchers of the compiled backend (for tests that count compilations)."""
    return _jit.dispatchers(vars(select("compiled")))
