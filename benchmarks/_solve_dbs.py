"""Cached solver databases for bench_solve: one per (library, parameter set).

Both skysolve and tetra3rs build from the same Gaia catalog with the same
arguments; the files live in ``benchmarks/.cache/`` (gitignored) under a name
that hashes the parameters and the library version, so a change of either
rebuilds instead of reusing a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"

#: small star-tracker fields (cases a, b, d): one multiscale database for 10-20 deg
SMALL = dict(max_fov_deg=20.0, min_fov_deg=10.0, epoch_proper_motion_year=2018.0)
#: the seed notebook's TESS parameters (case c)
TESS = dict(max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
            patterns_per_lattice_field=500, verification_stars_per_fov=3000,
            epoch_proper_motion_year=2018.0)
#: every field of view (bench_wide): 2-180 deg, default parameters otherwise
WIDE = dict(max_fov_deg=180.0, min_fov_deg=2.0, epoch_proper_motion_year=2016.0)
#: wide lenses and all-sky images (bench_allsky): 60-180 deg, default parameters otherwise
ALLSKY = dict(max_fov_deg=180.0, min_fov_deg=60.0, epoch_proper_motion_year=2016.0)
PARAMS = {"small": SMALL, "tess": TESS, "wide": WIDE, "allsky": ALLSKY}
#: tetra3rs refuses a 180 deg field: its nearest
_PEER_LIMITS = {"max_fov_deg": 179.9}


def _version(library: str) -> str:
    if library == "skysolve":
        # the database layout changes during development without a version bump:
        # key on the source of the modules that build it as well
        import skysolve

        pkg = Path(skysolve.__file__).parent
        digest = hashlib.sha1()
        for name in ("solver/database.py", "solver/generation.py", "solver/patterns.py",
                     "solver/keys.py", "solver/dbfile.py", "geometry.py", "sky/catalogs.py"):
            if (pkg / name).exists():
                digest.update((pkg / name).read_bytes())
        return digest.hexdigest()[:10]
    import tetra3rs

    return str(tetra3rs.__version__)


def path_for(library: str, name: str) -> Path:
    key = json.dumps([library, _version(library), PARAMS[name]], sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return CACHE / f"solve_{name}_{library}_{digest}.db"


def load(library: str, name: str, log=print):
    """The database, from cache or freshly built (and then cached).

    Returns ``(db, info)`` with ``info`` = ``{"load_s": ...}`` for a cache hit or
    ``{"build_s": ...}`` for a fresh build.
    """
    import tetra3rs

    import skysolve

    cls = skysolve.SolverDatabase if library == "skysolve" else tetra3rs.SolverDatabase
    path = path_for(library, name)
    if path.exists():
        try:
            t0 = time.perf_counter()
            db = cls.load_from_file(str(path))
            return db, {"load_s": time.perf_counter() - t0}
        except Exception as exc:  # stale or truncated cache: rebuild below
            log(f"   cache {path.name} unreadable ({exc}); rebuilding")
    kwargs = dict(PARAMS[name])
    if library == "skysolve":
        kwargs["progress"] = False
    else:
        for key, limit in _PEER_LIMITS.items():
            if key in kwargs:
                kwargs[key] = min(kwargs[key], limit)
    log(f"   building {library} database '{name}' {PARAMS[name]} ...")
    t0 = time.perf_counter()
    db = cls.generate_from_gaia(**kwargs)
    build_s = time.perf_counter() - t0
    log(f"   built in {build_s:.0f} s: {db.num_stars} stars, {db.num_patterns} patterns")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    db.save_to_file(str(tmp))
    tmp.replace(path)
    if library == "skysolve":  # its file_path (what batch workers open) is the final file
        db = cls.load_from_file(str(path))
    # databases of older sources or parameters are dead weight (tens of MB each)
    for old in CACHE.glob(f"solve_{name}_{library}_*.db"):
        if old != path:
            old.unlink(missing_ok=True)
    return db, {"build_s": build_s}


if __name__ == "__main__":
    for name in sys.argv[1:] or ["small", "tess"]:
        for library in ("skysolve", "tetra3rs"):
            load(library, name)
