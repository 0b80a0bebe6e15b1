"""The same inputs give bit-identical results: in one process, across processes, always.

Across processes the child runs with a different ``PYTHONHASHSEED`` each time,
so an answer that depended on set/dict iteration order or on object addresses
would show up as a difference.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skysolve as ss

from . import _workers as wk
from .conftest import TINY_DB_PARAMETERS, make_catalog

# The child computes: tiny database bytes, a rendered frame's extraction, and a few
# solves on the tiny database and on a Hipparcos database; it prints one JSON line.
CHILD = r"""
import hashlib, json, sys
import numpy as np
import skysolve as ss
sys.path.insert(0, sys.argv[1])
from robustness import _workers as wk
from robustness.conftest import TINY_DB_PARAMETERS, make_catalog

cat = make_catalog()
db = ss.SolverDatabase.generate_from_catalog(cat, **TINY_DB_PARAMETERS)
out = {"tiny_db_sha256": hashlib.sha256(db.to_bytes()).hexdigest()}
hip = ss.load_hipparcos()
hdb = ss.SolverDatabase.generate_from_hipparcos(**json.loads(sys.argv[2]))
out["hip_db_sha256"] = hashlib.sha256(hdb.to_bytes()).hexdigest()
img, _ = ss.render_starfield(hip, ss.CameraModel.from_fov(12.0, 320, 240),
                             ss.random_attitudes(1, 5)[0], epoch_year=2025.0, seed=9)
ext = ss.extract_centroids(img)
out["extraction"] = hashlib.sha256(ext.as_array().tobytes()
                                   + ext.covariances().tobytes()).hexdigest()
out["solves"] = [wk.solve(hdb, f) for f in wk.frames(hip, 8, seed=3)]
print(json.dumps(out, sort_keys=True))
"""

HIP_PARAMS = dict(max_fov_deg=16.0, min_fov_deg=12.0, pattern_max_error=0.005,
                  patterns_per_lattice_field=20, lattice_field_oversampling=30,
                  verification_stars_per_fov=100, epoch_proper_motion_year=2025.0,
                  progress=False)


def _child(hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    tests_dir = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", CHILD, tests_dir, json.dumps(HIP_PARAMS)],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def hip_db():
    return ss.SolverDatabase.generate_from_hipparcos(**HIP_PARAMS)


def test_two_solves_in_one_process_are_identical(small_db, hip_catalog):
    for frame in wk.frames(hip_catalog, 12, seed=11):
        assert wk.solve(small_db, frame) == wk.solve(small_db, frame)


def test_results_are_identical_across_processes(hip_catalog, hip_db):
    a, b = _child("1"), _child("12345")
    assert a == b  # byte-identical output of two fresh processes
    child = json.loads(a)
    # ... and the same as this process computes
    tiny = ss.SolverDatabase.generate_from_catalog(make_catalog(), **TINY_DB_PARAMETERS)
    assert child["tiny_db_sha256"] == hashlib.sha256(tiny.to_bytes()).hexdigest()
    assert child["hip_db_sha256"] == hashlib.sha256(hip_db.to_bytes()).hexdigest()
    solves = [wk.solve(hip_db, f) for f in wk.frames(hip_catalog, 8, seed=3)]
    assert json.loads(json.dumps(solves)) == child["solves"]
    assert any(s["status"] == "match_found" for s in solves)


def test_database_generation_is_deterministic(tmp_path, hip_catalog, hip_db):
    cat = make_catalog()
    paths = []
    for i in range(2):
        db = ss.SolverDatabase.generate_from_catalog(cat, **TINY_DB_PARAMETERS)
        paths.append(tmp_path / f"tiny{i}.db")
        db.save_to_file(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    again = ss.SolverDatabase.generate_from_hipparcos(**HIP_PARAMS)
    again.save_to_file(tmp_path / "hip_again.db")
    hip_db.save_to_file(tmp_path / "hip.db")
    assert (tmp_path / "hip.db").read_bytes() == (tmp_path / "hip_again.db").read_bytes()
    # a save/load/save cycle keeps the bytes too
    ss.SolverDatabase.load_from_file(tmp_path / "hip.db").save_to_file(tmp_path / "hip2.db")
    assert (tmp_path / "hip.db").read_bytes() == (tmp_path / "hip2.db").read_bytes()


def test_extraction_is_deterministic(hip_catalog):
    img, _ = ss.render_starfield(hip_catalog, ss.CameraModel.from_fov(12.0, 400, 300),
                                 ss.random_attitudes(1, 8)[0], epoch_year=2025.0, seed=4,
                                 hot_pixel_fraction=1e-4, cosmic_rays=3)
    runs = [ss.extract_centroids(img) for _ in range(2)]
    runs.append(ss.extract_centroids(img.copy(order="F")))  # memory layout does not matter
    assert len(runs[0].centroids) > 5
    for r in runs[1:]:
        assert np.array_equal(r.as_array(), runs[0].as_array())
        assert np.array_equal(r.covariances(), runs[0].covariances())
        assert (r.background_mean, r.background_sigma, r.threshold, r.num_blobs_raw) == (
            runs[0].background_mean, runs[0].background_sigma, runs[0].threshold,
            runs[0].num_blobs_raw)
