"""Fixtures of the robustness suite.

``tiny_catalog`` / ``tiny_db``
    A seeded synthetic all-sky catalog of 1,500 stars and a single-scale 20 deg
    database built from it in well under a second: small enough to save, damage
    and reload hundreds of times.
``tiny_db_file``
    ``tiny_db`` saved once per session (read-only; copy it before damaging it).
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.database import SolverDatabase
from skysolve.sky.catalogs import Catalog

#: Arguments of ``SolverDatabase.generate_from_catalog`` for ``tiny_db``.
TINY_DB_PARAMETERS = dict(
    max_fov_deg=20.0,
    pattern_max_error=0.005,
    lattice_field_oversampling=10,
    patterns_per_lattice_field=8,
    verification_stars_per_fov=40,
    epoch_proper_motion_year=None,
    progress=False,
)


def make_catalog(n: int = 1500, seed: int = 11) -> Catalog:
    """Stars uniform over the sphere with magnitudes 0-7 (no proper motion)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(v[:, 2], -1.0, 1.0)))
    return Catalog(np.arange(1, n + 1), ra, dec, rng.uniform(0.0, 7.0, n), epoch=2000.0,
                   name="synthetic")


@pytest.fixture(scope="session")
def tiny_catalog() -> Catalog:
    return make_catalog()


@pytest.fixture(scope="session")
def tiny_db(tiny_catalog: Catalog) -> SolverDatabase:
    return SolverDatabase.generate_from_catalog(tiny_catalog, **TINY_DB_PARAMETERS)


@pytest.fixture(scope="session")
def tiny_db_file(tiny_db: SolverDatabase, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("robust_db") / "tiny.db"
    tiny_db.save_to_file(path)
    return path
