"""Compile the solver's numba kernels into numba's disk cache, ahead of any solve.

``python -m skysolve.solver.warmup`` (started in the background by the first
``backend='auto'`` solve of an installation, see :mod:`skysolve.solver.backends`)
or :func:`warm_up` compiles every kernel for the array types a database has in
memory, loaded from a file and memory-mapped from one (the batch workers' case),
then leaves the warm marker so that later processes take the compiled backend.
It builds tiny databases from random stars for that: the kernels depend on the
arrays' types, not on their contents. One process at a time does the work (a
lock file); others wait for it or, run in the background, leave.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import _jit
from .._files import lock_unsupported
from ..sky.catalogs import Catalog
from . import backends
from .database import PatternDatabase

__all__ = ["warm_up"]


def _tiny_database(pattern_max_error: float) -> PatternDatabase:
    rng = np.random.default_rng(0)
    n = 3000
    v = rng.normal(size=(n, 3))
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(v[:, 2] / np.linalg.norm(v, axis=1)))
    cat = Catalog(np.arange(1, n + 1), ra, dec, rng.uniform(0.0, 6.0, n), name="warm-up")
    return PatternDatabase.generate_from_catalog(cat, max_fov_deg=60.0, min_fov_deg=40.0,
                                                 pattern_max_error=pattern_max_error,
                                                 progress=False)


#: Pattern tolerances whose databases store their keys as 32-bit and as 64-bit
#: integers (``keys.key_dtype``): the kernels are compiled for both.
_TOLERANCES = (0.005, 0.001)


@contextlib.contextmanager
def _lock(wait: bool) -> Iterator[bool]:
    """Hold the warm-up lock; yields False when another process holds it and not ``wait``
    (True without a lock where the file system has none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, at worst compiled twice
        yield True
        return
    directory = _jit._cache_dir()
    if directory is None:  # (no home directory: nowhere to lock, at worst compiled twice)
        yield True
        return
    path = directory / "kernels-warm.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        held = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            held = False
        except OSError as exc:
            # a file system without locks (NFS, Lustre): compile unlocked, at worst twice
            # (numba's cache and the marker are written by renames); it crashed the warm-up
            if not lock_unsupported(exc):
                raise
        yield held
    finally:
        os.close(fd)


def warm_up(wait: bool = True) -> bool:
    """Compile (or load) the solver's kernels into numba's cache; whether they are there.

    Parameters
    ----------
    wait : bool
        When another process is already compiling them: wait for it (True) or
        return False at once.
    """
    if not _jit.available():
        return False
    if _jit.is_warm(backends.WARM_SOURCES):
        return True
    with _lock(wait) as held:
        if not held:
            return False
        compiled = backends.select("compiled")
        with tempfile.TemporaryDirectory() as tmp:
            for tol in _TOLERANCES:
                db = _tiny_database(tol)
                backends.prepare(compiled, db)
                path = Path(tmp) / f"warm{tol}.db"
                db.save_to_file(path)
                for mmap in (False, True):
                    backends.prepare(compiled, PatternDatabase.load_from_file(path, mmap=mmap))
        _jit.mark_warm(backends.WARM_SOURCES)
    return True


if __name__ == "__main__":  # pragma: no cover - run by the background start
    sys.exit(0 if warm_up(wait=False) else 1)
