"""Session-scoped fixtures shared by the whole test suite.

Keep this file small: every fixture here is built at most once per pytest run
and shared by every test file that asks for it.

``hip_catalog``
    The Hipparcos 2 catalog (117,955 stars, epoch J1991.25) loaded with
    :func:`skysolve.sky.catalogs.load_hipparcos`. Treat it as read-only.
``small_db``
    A small multiscale Hipparcos :class:`~skysolve.solver.database.SolverDatabase`
    (``SMALL_DB_PARAMETERS``: fields of view 10-20 deg, positions at J2025.0,
    about 60,000 stars and 970,000 patterns) that builds in about five seconds.
    It is immutable, so sharing it between tests is safe.
``docs/*.rst`` doctests
    Run in a temporary directory with ``db`` (``small_db``) and ``DATA`` (the real
    frames' folder) in their namespace, so that the documentation's examples take
    seconds.
``SKYSOLVE_HYPOTHESIS_PROFILE``
    The Hypothesis profile of the property tests: ``"ci"`` (the default) draws the
    same examples on every run, so that a run passes or fails by the code alone;
    ``"explore"`` draws new ones each run (with ``SKYSOLVE_FUZZ_EXAMPLES`` for more of
    them), to look for failures the fixed draw misses.
``wide_db``
    A wide-field Hipparcos database (``WIDE_DB_PARAMETERS``: fields of view
    60-180 deg, the default pattern tolerance; about 1,700 stars and 28,000
    patterns) for wide pinhole lenses and fisheyes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from skysolve.database import SolverDatabase
from skysolve.sky.catalogs import Catalog, load_hipparcos

#: The Hypothesis profiles (see the module docstring); loaded before any test module
#: builds its ``settings``, which take their unset fields from the loaded profile.
HYPOTHESIS_PROFILE_ENV_VAR = "SKYSOLVE_HYPOTHESIS_PROFILE"
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV_VAR, "ci"))

#: Arguments of ``SolverDatabase.generate_from_hipparcos`` for ``small_db``.
SMALL_DB_PARAMETERS = dict(
    max_fov_deg=20.0,
    min_fov_deg=10.0,
    pattern_max_error=0.005,
    patterns_per_lattice_field=50,
    lattice_field_oversampling=100,
    verification_stars_per_fov=150,
    epoch_proper_motion_year=2025.0,
    progress=False,
)


#: Arguments of ``SolverDatabase.generate_from_hipparcos`` for ``wide_db``.
WIDE_DB_PARAMETERS = dict(max_fov_deg=179.9, min_fov_deg=60.0, epoch_proper_motion_year=2025.0,
                          progress=False)


@pytest.fixture(scope="session")
def hip_catalog() -> Catalog:
    """The Hipparcos 2 catalog at its own epoch (J1991.25)."""
    return load_hipparcos()


#: A directory where ``small_db`` is kept between pytest runs (``make mutate`` sets it, so
#: that each mutant's run loads the database instead of building it); unset: always built.
DB_CACHE_ENV_VAR = "SKYSOLVE_TEST_DB_CACHE"


@pytest.fixture(scope="session")
def small_db() -> SolverDatabase:
    """A small 10-20 deg multiscale Hipparcos database (see ``SMALL_DB_PARAMETERS``)."""
    cache = os.environ.get(DB_CACHE_ENV_VAR)
    if not cache:
        return SolverDatabase.generate_from_hipparcos(**SMALL_DB_PARAMETERS)
    path = Path(cache) / "small_db.db"
    if path.exists():
        return SolverDatabase.load_from_file(path)
    db = SolverDatabase.generate_from_hipparcos(**SMALL_DB_PARAMETERS)
    db.save_to_file(path)
    return db


@pytest.fixture(scope="session")
def wide_db() -> SolverDatabase:
    """A 60-180 deg multiscale Hipparcos database (see ``WIDE_DB_PARAMETERS``)."""
    return SolverDatabase.generate_from_hipparcos(**WIDE_DB_PARAMETERS)


@pytest.fixture(autouse=True)
def _doc_namespace(request):
    """``db`` and ``DATA`` for the documentation's doctests (``docs/*.rst``) only."""
    if not isinstance(request.node, pytest.DoctestItem):
        return
    from skysolve.tests.realframes import DATA

    request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
    namespace = request.getfixturevalue("doctest_namespace")
    namespace["db"] = request.getfixturevalue("small_db")
    namespace["DATA"] = DATA


def pytest_sessionstart(session):
    """The solver's and the extractor's kernels in numba's cache before the first test, as
    a machine has them once its background warm-ups have run: so ``backend='auto'`` and
    extraction use the compiled kernels throughout the run. On a fresh checkout they are
    compiled here, the solver's and the extractor's order statistics' in processes of
    their own meanwhile, and the solver's warm-up is probed at once (see
    :mod:`skysolve.solver.tests.warmprobe`)."""
    from skysolve.extraction.kernels import warm_up as warm_up_extraction
    from skysolve.solver.tests import warmprobe
    from skysolve.solver.warmup import warm_up

    # (xdist's workers start once this is over in the controller: their warm-ups load)
    solver = (None if hasattr(session.config, "workerinput")
              else warmprobe.start_session_warm_up(SMALL_DB_PARAMETERS))
    try:
        warm_up_extraction(jobs=2)
    except BaseException:
        if solver is not None:
            solver.kill()
        raise
    if solver is not None:
        probe = warmprobe.finish_session_warm_up(solver)
        if probe is not None:
            os.environ[warmprobe.SESSION_PROBE_ENV_VAR] = probe
    warm_up()
