"""Solver backends: the numpy reference and the numba-compiled kernels, behind one interface.

:mod:`~skysolve.solver.backends.interface` lists the functions (with their
contracts and example calls); :mod:`~skysolve.solver.backends.reference`
implements them in numpy and :mod:`~skysolve.solver.backends.compiled` in
numba. A solve picks one backend once (:func:`select`) and calls only
through it, so the solver code has no branches on which is in use.
:func:`prepare` compiles (or loads from numba's disk cache) every compiled
function for a database's array types by running the interface's examples,
before the solve's clock starts.

May import: ``errors``, ``_jit``, ``geometry``, ``camera``, ``solver.keys``,
``solver.patterns``.
"""

from __future__ import annotations

import importlib
import weakref
from types import ModuleType
from typing import Any

from ... import _jit
from ...errors import InvalidArgumentError
from . import interface

__all__ = ["select", "prepare", "available", "interface"]

_PREPARED: weakref.WeakSet = weakref.WeakSet()
_LOADED: dict[str, ModuleType] = {}


def available() -> bool:
    """Whether the compiled backend can be used (numba present, not disabled)."""
    return _jit.available()


def select(name: str = "auto") -> ModuleType:
    """The backend module for ``name``: ``'auto'``, ``'compiled'`` or ``'reference'``.

    ``'auto'`` is the compiled backend when :func:`available`, else the
    reference. Asking for ``'compiled'`` without numba is an error.
    """
    if name == "auto":
        name = "compiled" if _jit.available() else "reference"
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


def prepare(backend: ModuleType, db: Any) -> None:
    """Make ``backend`` ready to solve with ``db`` at full speed.

    For the compiled backend: run every example of the interface once per
    database and process, so that each kernel is compiled (or loaded from
    the disk cache) for the array types of ``db``; later calls return at
    once. The reference backend needs nothing.
    """
    if backend.NAME != "compiled" or db in _PREPARED:
        return
    for name, calls in interface.examples(db).items():
        fn = getattr(backend, name)
        for args in calls:
            fn(*args)
    _PREPARED.add(db)


def compiled_functions() -> dict[str, Any]:
    """The numba dispatchers of the compiled backend (for tests that count compilations)."""
    return _jit.dispatchers(vars(select("compiled")))
