"""``skysolve db build --catalog-file``: the user's own catalog, the build parameters.

A slice of the bundled Gaia catalog written as a CSV file stands for a user's
catalog: the database built from it on the command line must solve simulated
fields (known attitudes) to those attitudes, and record where its stars came from.
"""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from skysolve.camera.model import CameraModel
from skysolve.cli.main import main
from skysolve.database import SolverDatabase
from skysolve.defaultdb import DEFAULT_PARAMETERS
from skysolve.geometry import angle_between, radec_roll_to_rotation, radec_to_vector
from skysolve.simulate import simulate_centroids
from skysolve.sky.catalogs import GAIA_EPOCH, load_gaia
from skysolve.solver.generation import GenerationOptions

#: The slice: Gaia stars to G = 8.5 within 25 deg of Orion's belt.
CENTRE, RADIUS_DEG, FAINTEST = (84.0, -1.0), 25.0, 8.5
#: The build: 8-12 deg fields, lighter than the defaults (a second or two).
BUILD = ["--min-fov", "8", "--max-fov", "12", "--patterns-per-field", "20",
         "--oversampling", "50", "--verification-stars", "100", "--epoch", "2016"]
#: Known attitudes (boresight RA, Dec, roll; deg) of fields inside the slice.
ATTITUDES = [(84.0, -1.0, 30.0), (79.0, 6.0, 200.0), (91.0, -9.0, 305.0)]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKYSOLVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SKYSOLVE_DB", raising=False)


@pytest.fixture(scope="module")
def gaia_slice():
    gaia = load_gaia()
    near = gaia.vectors() @ radec_to_vector(*CENTRE) > np.cos(np.radians(RADIUS_DEG))
    return gaia.select(near & (gaia.mag <= FAINTEST))


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def slice_csv(gaia_slice, tmp_path_factory):
    """The slice as a user's CSV file: Gaia archive column names, exact ids and positions."""
    rows = [(int(i), repr(float(r)), repr(float(d)), repr(float(m)), GAIA_EPOCH)
            for i, r, d, m in zip(gaia_slice.ids, gaia_slice.ra_deg, gaia_slice.dec_deg,
                                  gaia_slice.mag, strict=True)]
    return _write_csv(tmp_path_factory.mktemp("catalog") / "orion.csv",
                      ["source_id", "ra", "dec", "phot_g_mean_mag", "ref_epoch"], rows)


@pytest.fixture(scope="module")
def built(slice_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "orion.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKYSOLVE_CACHE", str(out.parent / "cache"))
        assert main(["db", "build", "--catalog-file", str(slice_csv), *BUILD, "-o", str(out),
                     "-q"]) == 0
    return out


def _sep_arcsec(ra1, dec1, ra2, dec2) -> float:
    return float(np.degrees(angle_between(radec_to_vector(ra1, dec1),
                                          radec_to_vector(ra2, dec2))) * 3600.0)


def test_a_csv_catalog_built_on_the_command_line_solves_fields_at_their_attitudes(
        built, slice_csv, gaia_slice):
    db = SolverDatabase.load_from_file(built)
    # the database is of the user's stars, built with the parameters asked for
    assert np.isin(db.star_ids, gaia_slice.ids).all()
    assert db.num_stars == len(gaia_slice)
    p = db.parameters
    assert p["catalog"] == "orion" and p["catalog_file"] == str(slice_csv.resolve())
    assert p["catalog_epoch"] == GAIA_EPOCH and p["catalog_stars"] == len(gaia_slice)
    assert (p["min_fov_deg"], p["max_fov_deg"]) == (8.0, 12.0)
    assert (p["patterns_per_lattice_field"], p["lattice_field_oversampling"],
            p["verification_stars_per_fov"], p["epoch_proper_motion_year"]) == (20, 50.0, 100,
                                                                                2016.0)
    # the options not given are the default database's (field of view aside)
    assert p["pattern_max_error"] == DEFAULT_PARAMETERS["pattern_max_error"]
    assert p["multiscale_step"] == GenerationOptions().multiscale_step
    camera = CameraModel.from_fov(10.0, 1024, 768)
    for k, (ra, dec, roll) in enumerate(ATTITUDES):
        sim = simulate_centroids(gaia_slice, camera, radec_roll_to_rotation(ra, dec, roll),
                                 num_stars=40, centroid_noise_px=0.1, seed=k)
        assert len(sim) >= 15
        res = db.solve_from_centroids(sim.centroids, image_shape=(768, 1024),
                                      fov_estimate_deg=10.0)
        assert res, (ra, dec, res)
        assert _sep_arcsec(res.ra_deg, res.dec_deg, ra, dec) < 5.0
        assert abs((res.roll_deg - roll + 180.0) % 360.0 - 180.0) < 0.01
        assert res.fov_deg == pytest.approx(10.0, rel=1e-3)
        # the stars matched are those simulated (but for a close pair's other member)
        truth = sim.catalog_ids[np.asarray(res.matched_centroids)]
        assert res.num_matches >= 15
        assert np.mean(np.asarray(res.matched_catalog_ids) == truth) >= 0.9


def test_db_info_shows_the_catalog_source_and_the_parameters(built, slice_csv, capsys):
    assert main(["db", "info", str(built)]) == 0
    out = capsys.readouterr().out
    assert f"catalog:      orion ({slice_csv.resolve()}), positions at J2016" in out
    assert re.search(r"stars:\s+\d+ of \d+", out)
    for name, value in (("patterns_per_lattice_field", "20"),
                        ("lattice_field_oversampling", "50.0"),
                        ("verification_stars_per_fov", "100"), ("multiscale_step", "1.5")):
        assert re.search(rf"^\s+{name}:\s+{re.escape(value)}$", out, re.M), name
    assert main(["db", "info", str(built), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["catalog_file"] == str(slice_csv.resolve())
    assert info["parameters"]["catalog_stars"] == info["num_stars"]


def test_other_table_formats_and_the_catalog_epoch(gaia_slice, tmp_path, capsys):
    """An ECSV file, a text table named by --catalog-format, and --catalog-epoch for a
    table without an epoch: the same loader as SolverDatabase.generate_from_catalog."""
    from astropy.table import Table

    part = gaia_slice.select(np.arange(3000))
    table = Table({"id": part.ids, "ra": part.ra_deg, "dec": part.dec_deg, "mag": part.mag})
    table.write(tmp_path / "part.ecsv")
    table.write(tmp_path / "part.txt", format="ascii.basic")
    small = ["--min-fov", "12", "--max-fov", "12", "--patterns-per-field", "10",
             "--oversampling", "20", "--verification-stars", "60", "-q"]
    for name, extra, epoch in (("part.ecsv", [], 2000.0),
                               ("part.txt", ["--catalog-format", "ascii.basic",
                                             "--catalog-epoch", "2016"], 2016.0)):
        out = tmp_path / f"{name}.db"
        assert main(["db", "build", "--catalog-file", str(tmp_path / name), *small, *extra,
                     "-o", str(out)]) == 0, capsys.readouterr().err
        db = SolverDatabase.load_from_file(out)
        assert db.parameters["catalog_epoch"] == epoch
        assert db.parameters["catalog_file"] == str((tmp_path / name).resolve())
        assert set(db.star_ids.tolist()) <= set(part.ids.tolist())
    # the text table without its format is not a table astropy recognises by name
    assert main(["db", "build", "--catalog-file", str(tmp_path / "part.txt"), *small, "-o",
                 str(tmp_path / "x.db")]) == 1
    assert "part.txt" in capsys.readouterr().err


GOOD = [(2, "85.0", "0.0", "3.0"), (3, "86.0", "1.0", "4.0"), (4, "84.0", "2.0", "5.0"),
        (5, "83.0", "-1.0", "5.5")]


@pytest.mark.parametrize("header, row, fragment", [
    (["id", "ra", "dec", "mag"], ("HD 1", "84.5", "0.5", "2.0"), "column 'id' must hold integer"),
    (["id", "ra", "dec", "mag"], ("1.5", "84.5", "0.5", "2.0"), "column 'id' must hold integer"),
    (["id", "ra", "dec", "mag"], ("3", "84.5", "0.5", "2.0"), "column 'id' repeats 1 ids (3)"),
    (["id", "ra", "dec", "mag"], ("1", "nan", "0.5", "2.0"), "column 'ra' has 1 missing"),
    (["id", "ra", "dec", "mag"], ("1", "84.5", "", "2.0"), "column 'dec' has 1 missing"),
    (["id", "ra", "dec", "mag"], ("1", "-384.5", "0.5", "2.0"),
     "column 'ra' must lie in [-360, 360] degrees"),
    (["id", "ra", "dec", "mag"], ("1", "444.5", "0.5", "2.0"),
     "column 'ra' must lie in [-360, 360] degrees"),
    (["id", "ra", "dec", "mag"], ("1", "84.5", "90.5", "2.0"),
     "column 'dec' must lie in [-90, 90] degrees"),
    (["id", "ra", "declination", "mag"], ("1", "84.5", "0.5", "2.0"), "table has no dec column"),
])
def test_a_bad_catalog_file_is_one_error_naming_the_file_and_column(tmp_path, capsys, header,
                                                                    row, fragment):
    path = _write_csv(tmp_path / "mine.csv", header, [row, *GOOD])
    out = tmp_path / "mine.db"
    assert main(["db", "build", "--catalog-file", str(path), "--min-fov", "20", "--max-fov",
                 "20", "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("skysolve: error: ")
    assert str(path) in err[0] and fragment in err[0], err[0]
    assert not out.exists()


@pytest.mark.parametrize("args, fragment", [
    (["--catalog-file", "{csv}"], "--catalog-file needs -o FILE"),
    (["--catalog", "gaia", "--catalog-file", "{csv}", "-o", "{out}"], "not allowed with"),
    (["--catalog-epoch", "2016", "-o", "{out}"], "--catalog-epoch describes a --catalog-file"),
    (["--catalog-format", "fits", "-o", "{out}"], "--catalog-format describes"),
    (["--catalog-file", "{csv}", "--patterns-per-field", "0", "-o", "{out}"],
     "patterns_per_lattice_field"),
    (["--catalog-file", "{csv}", "--verification-stars", "2.5", "-o", "{out}"],
     "expected an integer"),
    (["--catalog-file", "{csv}", "--multiscale-step", "1", "-o", "{out}"], "multiscale_step"),
    (["--catalog-file", "{csv}", "--oversampling", "-3", "-o", "{out}"],
     "lattice_field_oversampling"),
    (["--catalog-file", "{csv}", "--max-magnitude", "inf", "-o", "{out}"],
     "star_max_magnitude"),
    (["--catalog-file", "{csv}", "--max-fov", "200", "-o", "{out}"], "max_fov_deg"),
    (["--catalog-file", "{csv}", "--catalog-epoch", "nan", "-o", "{out}"],
     "argument --catalog-epoch"),
])
def test_bad_build_options_are_usage_errors_naming_the_option(tmp_path, capsys, args, fragment):
    csv_path = _write_csv(tmp_path / "mine.csv", ["id", "ra", "dec", "mag"], GOOD)
    out = tmp_path / "mine.db"
    argv = [a.format(csv=csv_path, out=out) for a in args]
    assert main(["db", "build", *argv]) == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()


def test_a_missing_catalog_file_is_an_error_naming_it(tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main(["db", "build", "--catalog-file", str(missing), "-o",
                 str(tmp_path / "x.db")]) == 1
    assert str(missing) in capsys.readouterr().err


def test_help_shows_each_build_parameter_with_the_library_default(capsys):
    """Every option of a generation parameter names it, and the default the help quotes
    is the one a build without the option uses."""
    assert main(["db", "build", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    quoted = dict((name, float(value)) for value, name in
                  re.findall(r"\(([-\d.]+)\) \[(\w+)\]", text))
    defaults = {**GenerationOptions().as_dict(), **DEFAULT_PARAMETERS}
    assert set(quoted) == {"min_fov_deg", "max_fov_deg", "pattern_max_error",
                           "verification_stars_per_fov", "patterns_per_lattice_field",
                           "lattice_field_oversampling", "multiscale_step",
                           "epoch_proper_motion_year"}
    for name, value in quoted.items():
        assert value == defaults[name], name
    for flag in ("--catalog-file PATH", "--catalog-epoch YEAR", "--catalog-format FORMAT",
                 "--max-magnitude MAG", "[star_max_magnitude]", "--catalog-file mystars.csv"):
        assert flag in text, flag


def test_a_sparse_catalog_warning_names_the_flags_on_the_command_line(tmp_path, capsys):
    """The warning for a catalog too sparse for the smallest field told a user of ``db
    build`` to give a fainter ``star_max_magnitude`` or a larger ``min_fov_deg``, the
    library's names: on the command line they are --max-magnitude and --min-fov."""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(400, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)  # 400 stars over the sky: ~1 per 10 deg
    rows = [(i + 1, repr(float(np.degrees(np.arctan2(y, x)) % 360.0)),
             repr(float(np.degrees(np.arcsin(z)))), repr(float(m)))
            for i, ((x, y, z), m) in enumerate(zip(v, rng.uniform(0, 6, len(v)), strict=True))]
    csv_path = _write_csv(tmp_path / "sparse.csv", ["id", "ra", "dec", "mag"], rows)
    argv = ["db", "build", "--catalog-file", str(csv_path), "--min-fov", "10", "--max-fov", "10",
            "--patterns-per-field", "10", "--oversampling", "5", "-o", str(tmp_path / "s.db"),
            "-q"]
    assert main(argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert re.search(r"warning: .*typically \d per 10 deg field", err), err
    assert "a fainter --max-magnitude) or a larger --min-fov" in err, err
    assert "star_max_magnitude" not in err and "min_fov_deg" not in err, err
    # the library's own call, after the command, names its parameters
    from skysolve.sky.catalogs import load_catalog

    with pytest.warns(UserWarning) as caught:
        SolverDatabase.generate_from_catalog(load_catalog(csv_path), max_fov_deg=10.0,
                                             patterns_per_lattice_field=10,
                                             lattice_field_oversampling=5, progress=False)
    text = " ".join(str(caught[0].message).split())
    assert "a fainter star_max_magnitude) or a larger min_fov_deg" in text, text
