"""Whether a new process's first solve, after :func:`~skysolve.solver.warmup.warm_up`,
finds every kernel it runs in numba's cache.

The probe saves a database, starts a Python process with ``NUMBA_CACHE_DIR`` as
given (or as this process has it) and solves there a few centroids on the database
loaded and memory-mapped (the batch workers' case); it prints the backend ``'auto'``
chose, how many kernels it compiled and whether it loaded any from the cache:
``"compiled 0 True"`` when the warm-up left nothing to compile.

The check means something only on a cache the warm-up filled from empty: a cache
another solve wrote to holds what that solve compiled too. A test's own empty cache
costs a whole compile (~90 s of a core); the test session's warm-up on a fresh
checkout (``conftest.pytest_sessionstart``) is such a compile already, so the
session probes right after it, before any test runs, and the test takes that answer
(:data:`SESSION_PROBE_ENV_VAR`). The session compiles the solver's kernels in a
process of their own (:func:`start_session_warm_up`) while it compiles the
extractor's, which take longer: on a fresh checkout of a 2-core machine the two
compiles took 90 s and 230 s of a core each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: The session's probe of the cache its warm-up filled from empty, passed to the test
#: workers in their environment; unset when the session's cache was not empty.
SESSION_PROBE_ENV_VAR = "SKYSOLVE_TEST_FIRST_SOLVE_PROBE"

_CODE = """
from skysolve.solver import backends
from skysolve.database import SolverDatabase
p = {path!r}
be = backends.select('auto')
for db in (SolverDatabase.load_from_file(p), SolverDatabase.load_from_file(p, mmap=True)):
    backends.prepare(be, db)
    db.solve_from_centroids([[0.0, 0.0], [100.0, 5.0], [-40.0, 80.0], [60.0, -70.0],
                             [5.0, 150.0]], fov_estimate_deg=15.0, image_width=1024,
                            image_height=768)
ks = backends.compiled_functions().values()
print(be.NAME, sum(sum(k.stats.cache_misses.values()) for k in ks),
      sum(sum(k.stats.cache_hits.values()) for k in ks) > 0)
"""


def run_python(code: str, cache: Path | None = None, python: str | None = None,
               cwd=None) -> str:
    """Standard output (stripped) of ``code`` run by a new Python process, with no
    background compile and numba allowed; ``cache``: its ``NUMBA_CACHE_DIR``."""
    env = dict(os.environ, SKYSOLVE_NO_BACKGROUND_COMPILE="1")
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = str(cache)
    env.pop("SKYSOLVE_DISABLE_NUMBA", None)
    return subprocess.run([python or sys.executable, "-c", code], env=env, cwd=cwd,
                          capture_output=True, text=True, check=True).stdout.strip()


def first_solve(db, directory: Path, cache: Path | None = None) -> str:
    """The probe's line for ``db`` (saved in ``directory``), see the module docstring."""
    path = Path(directory) / "probe.db"
    db.save_to_file(path)
    return run_python(_CODE.format(path=str(path)), cache)


def warmed_from_empty() -> bool:
    """Whether this process's warm-up compiled every solver kernel it ran and loaded none
    from the cache (so the cache held none of them before); call after it."""
    from skysolve.solver import backends

    ks = [k for k in backends.compiled_functions().values() if k.signatures]
    return bool(ks) and not any(sum(k.stats.cache_hits.values()) for k in ks)


_SESSION_CODE = """
import json, sys, tempfile
from skysolve.solver.warmup import warm_up
from skysolve.solver.tests import warmprobe
if warm_up() and warmprobe.warmed_from_empty():
    from skysolve.database import SolverDatabase
    db = SolverDatabase.generate_from_hipparcos(**json.loads(sys.argv[1]))
    with tempfile.TemporaryDirectory() as tmp:
        print(warmprobe.first_solve(db, tmp))
"""


def start_session_warm_up(db_parameters: dict) -> subprocess.Popen | None:
    """Start a process compiling the solver's kernels (:func:`warm_up`) and, when it
    compiled them all into an empty cache, printing the probe's line for a database
    generated from Hipparcos with ``db_parameters``; None when the kernels are warm."""
    from skysolve import _jit
    from skysolve.solver import backends

    if not _jit.available() or _jit.is_warm(backends.WARM_SOURCES):
        return None
    env = dict(os.environ, SKYSOLVE_NO_BACKGROUND_COMPILE="1")
    return subprocess.Popen([sys.executable, "-c", _SESSION_CODE, json.dumps(db_parameters)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_session_warm_up(proc: subprocess.Popen) -> str | None:
    """The probe's line of :func:`start_session_warm_up`'s process once it ends (None:
    the cache was not empty); its error, raised, when it failed."""
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"the solver's warm-up failed (exit {proc.returncode}):\n{err}")
    return out.strip() or None
