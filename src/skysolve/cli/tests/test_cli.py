"""The ``skysolve`` command line, run as a real subprocess (``python -m skysolve``).

The tests never build the full default database: ``SKYSOLVE_CACHE`` points at a
temporary directory and every solve gets the session's small Hipparcos database
(``small_db`` from conftest.py, 10-20 deg) through ``--db``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from skysolve.camera.distortion import RadialDistortion
from skysolve.camera.model import CameraModel
from skysolve.geometry import angle_between, radec_to_vector
from skysolve.tests.realframes import (  # noqa: E402
    BORESIGHT_TOL_ARCSEC,
    DATA,
    PEER_SOLUTION,
)

ALT40 = "2019-07-29T204726_Alt40_Azi-135_Try1.tiff"
ALT60 = "2019-07-29T204726_Alt60_Azi-135_Try1.tiff"
# reference boresights from tests/data/NOTICE.md
REFERENCE = {ALT40: (230.669, 11.036), ALT60: (240.464, 28.941)}


# ---------------------------------------------------------------- fixtures and helpers


def angular_separation_deg(ra1, dec1, ra2, dec2):
    return np.degrees(angle_between(radec_to_vector(ra1, dec1), radec_to_vector(ra2, dec2)))


#: The annual aberration is at most 20.5": a solve corrected for it (a FITS frame with its
#: time) may differ from the uncorrected peer solution by that much.
ABERRATION_ARCSEC = 20.5


def near_peer(ra, dec, name, extra_arcsec=0.0):
    """Whether (ra, dec) is an independent solver's boresight of ``name`` to what the
    methods achieve (``realframes.PEER_SOLUTION``: a few arcseconds), plus ``extra``."""
    peer_ra, peer_dec = PEER_SOLUTION[name][:2]
    sep = angular_separation_deg(ra, dec, peer_ra, peer_dec) * 3600
    return sep < BORESIGHT_TOL_ARCSEC + extra_arcsec



@pytest.fixture(scope="session")
def db_file(small_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli_db") / "small.db"
    small_db.save_to_file(path)
    return path


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict[str, str]:
    env = dict(os.environ)
    env["SKYSOLVE_CACHE"] = str(tmp_path_factory.mktemp("cli_cache"))
    env.pop("SKYSOLVE_DB", None)
    return env


@pytest.fixture
def frames(tmp_path) -> Path:
    """The two real frames copied to a fresh directory (outputs are written beside them)."""
    for name in (ALT40, ALT60):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def run(env, *args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "skysolve", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_user_error(proc: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("skysolve: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def model_of(rec: dict) -> tuple[CameraModel, np.ndarray]:
    """Camera model and quaternion of a pinhole solution from its JSON record."""
    cam = CameraModel(rec["focal_length_px"], rec["image_width"], rec["image_height"],
                      crpix=rec["camera_model"]["crpix"], parity_flip=rec["parity_flip"])
    return cam, np.asarray(rec["quaternion"])


def fits_copy(src: Path, dst: Path, date: str | None = "2019-07-29T20:47:26") -> Path:
    """A frame as a FITS file with the image in an extension named SCI."""
    from astropy.io import fits

    from skysolve.io.images import read_image

    hdr = fits.Header()
    if date:
        hdr["DATE-OBS"] = date
    hdr["CTYPE1"] = "RA---TAN"  # stale WCS keys the solution must replace
    hdr["CRVAL1"] = 1.0
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(read_image(src), header=hdr, name="SCI")]
                 ).writeto(dst)
    return dst


# ---------------------------------------------------------------- start-up, help


def test_version_help_and_lazy_imports(cli_env):
    from skysolve import __version__

    proc = run(cli_env, "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"skysolve {__version__}"
    for cmd in ([], ["solve"], ["calibrate"], ["db"], ["db", "build"], ["db", "info"]):
        proc = run(cli_env, *cmd, "--help")
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert "examples:" in proc.stdout, cmd
    top = run(cli_env, "--help").stdout
    assert "exit status" in top and "  3  " in top
    assert "exit status" in run(cli_env, "solve", "--help").stdout
    # --version and --help must not pay for numpy/astropy/matplotlib
    code = ("import sys\nfrom skysolve.cli.main import main\n"
            "assert main(['--version']) == 0 and main(['solve', '--help']) == 0\n"
            "print(sorted(m for m in ('numpy', 'scipy', 'astropy', 'matplotlib') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_no_command_is_a_usage_error(cli_env):
    proc = run(cli_env)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr


def test_demo_dispatch(cli_env):
    proc = run(cli_env, "demo", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # the demo's own help, not a stand-in
    assert "usage: skysolve demo" in proc.stdout and "--sectors" in proc.stdout


# ---------------------------------------------------------------- solving


@pytest.fixture(scope="module")
def solved_json(cli_env, db_file, tmp_path_factory):
    """One ``solve --json --write-wcs --plot DIR`` run on copies of both frames."""
    frames = tmp_path_factory.mktemp("cli_frames")
    for name in (ALT40, ALT60):
        shutil.copy(DATA / name, frames / name)
    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, "--db", db_file, "--json",
               "--write-wcs", "--plot", frames / "plots", "--fov", "11.4")
    return frames, proc


def test_solve_json_wcs_and_plot(solved_json):
    from astropy.io import fits
    from astropy.wcs import WCS

    frames, proc = solved_json
    plots = frames / "plots"
    assert proc.returncode == 0, proc.stderr
    recs = json_lines(proc.stdout)
    assert [Path(r["file"]).name for r in recs] == [ALT40, ALT60]
    for rec in recs:
        name = Path(rec["file"]).name
        assert rec["status"] == "match_found"
        assert near_peer(rec["ra_deg"], rec["dec_deg"], name)
        assert (rec["image_width"], rec["image_height"]) == (1024, 768)
        assert rec["num_matches"] == len(rec["matched_centroids"]) == len(
            rec["matched_catalog_ids"])
        assert rec["aberration_corrected"] is False  # a TIFF carries no time
        # the .wcs file beside the image: astropy reads it, and it maps pixels to the
        # sky as the solution does (to 0.1")
        wcs_path = frames / name.replace(".tiff", ".wcs")
        assert rec["wcs_file"] == str(wcs_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = fits.getheader(wcs_path)
            wcs = WCS(header)
        assert (header["IMAGEW"], header["IMAGEH"]) == (1024, 768)
        cam, q = model_of(rec)
        cols = np.array([0.0, 1023.0, 0.0, 1023.0, 511.5, 300.25])
        rows = np.array([0.0, 0.0, 767.0, 767.0, 383.5, 600.75])
        sky = wcs.pixel_to_world(cols, rows)
        ra, dec = cam.pixel_to_world(cols + 0.5 - 512, rows + 0.5 - 384, q)
        sep = angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec) * 3600
        assert np.max(sep) < 0.1
        centre = wcs.pixel_to_world(511.5, 383.5)
        assert angular_separation_deg(centre.ra.deg, centre.dec.deg, rec["center_ra_deg"],
                                      rec["center_dec_deg"]) * 3600 < 0.1
        png = plots / name.replace(".tiff", ".png")
        assert rec["plot"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_jobs_give_the_same_answers(cli_env, db_file, frames, solved_json):
    one = json_lines(solved_json[1].stdout)
    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, "--db", db_file, "--json",
               "--fov", "11.4", "--jobs", "2")
    assert_same_answers(one, proc)


def assert_same_answers(one: list[dict], proc: subprocess.CompletedProcess) -> None:
    """``proc`` solved both frames as the records ``one`` say, in the same order."""
    assert proc.returncode == 0, proc.stderr
    two = json_lines(proc.stdout)
    assert [Path(r["file"]).name for r in two] == [ALT40, ALT60]
    for a, b in zip(one, two, strict=True):
        assert b["status"] == a["status"] == "match_found"
        for key in ("ra_deg", "dec_deg", "roll_deg", "fov_deg"):
            assert b[key] == pytest.approx(a[key], abs=1e-9)
        assert b["matched_catalog_ids"] == a["matched_catalog_ids"]


def test_update_fits_with_aberration_and_section(cli_env, db_file, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    src = fits_copy(DATA / ALT40, tmp_path / "alt40.fits")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    proc = run(cli_env, "solve", src, "--db", db_file, "--json", "--update-fits")
    assert proc.returncode == 0, proc.stderr
    rec = json_lines(proc.stdout)[0]
    assert rec["aberration_corrected"] is True
    assert near_peer(rec["ra_deg"], rec["dec_deg"], ALT40, ABERRATION_ARCSEC)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # input untouched
    out = tmp_path / "alt40.solved.fits"
    assert rec["solved_fits"] == str(out)
    with fits.open(out) as hdul:
        hdr = hdul["SCI"].header
        np.testing.assert_array_equal(hdul["SCI"].data, fits.getdata(src, "SCI"))
    assert hdr["DATE-OBS"] == "2019-07-29T20:47:26"  # the image's own keys are kept
    # stale WCS replaced; the WCS maps pixels to catalog (astrometric) positions: its
    # reference point is the image centre's, not the aberration-free boresight
    assert hdr["CRVAL1"] == pytest.approx(rec["center_ra_deg"], abs=1e-5)
    assert hdr["CRVAL2"] == pytest.approx(rec["center_dec_deg"], abs=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with warnings.catch_warnings():  # a header-only file: no image axes
            warnings.simplefilter("ignore")
            wcs = WCS(hdr)
    cam, q = model_of(rec)
    sky = wcs.pixel_to_world(100.0, 700.0)
    ra, dec = cam.pixel_to_world(100.5 - 512, 700.5 - 384, q)
    # ... so it differs from the apparent mapping of the attitude by the aberration
    assert 3 < angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec) * 3600 < 21
    import skysolve

    res = skysolve.solve_image(src, database=skysolve.SolverDatabase.load_from_file(db_file),
                               obstime="header", hdu="SCI")
    for col, row in ((100.0, 700.0), (900.0, 50.0)):
        sky = wcs.pixel_to_world(col, row)
        ra, dec = res.pixel_to_world(col + 0.5 - 512, row + 0.5 - 384)
        assert angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec) * 3600 < 0.1
    # the annual aberration moves the answer by ~10-30" against --no-aberration
    png = tmp_path / "one.png"
    plain = json_lines(run(cli_env, "solve", src, "--db", db_file, "--json",
                           "--no-aberration", "--plot", png).stdout)[0]
    assert plain["aberration_corrected"] is False
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # --plot FILE for one image
    shift = angular_separation_deg(rec["ra_deg"], rec["dec_deg"], plain["ra_deg"],
                                   plain["dec_deg"]) * 3600
    assert 3 < shift < 40

    # a date that cannot be read: said, not passed over (the record only said
    # aberration_corrected false)
    bad = fits_copy(DATA / ALT40, tmp_path / "undated.fits", date="yesterday")
    proc = run(cli_env, "solve", bad, "--db", db_file, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json_lines(proc.stdout)[0]["aberration_corrected"] is False
    assert "undated.fits: no observation time could be read from DATE-OBS = 'yesterday'" \
        in proc.stderr

    # a section: the WCS refers to the pixel grid of the whole image
    proc = run(cli_env, "solve", src, "--db", db_file, "--json", "--write-wcs",
               "--section", "[100:700, 50:1000]", "--hdu", "SCI")
    assert proc.returncode == 0, proc.stderr
    rec = json_lines(proc.stdout)[0]
    assert (rec["image_width"], rec["image_height"]) == (950, 600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(tmp_path / "alt40.wcs")
        wcs = WCS(header)
    assert (header["IMAGEW"], header["IMAGEH"]) == (1024, 768)
    cam, q = model_of(rec)
    cols = np.array([50.0, 999.0, 400.0])
    rows = np.array([100.0, 699.0, 250.0])
    sky = wcs.pixel_to_world(cols, rows)
    ra, dec = cam.pixel_to_world(cols - 50 + 0.5 - 475, rows - 100 + 0.5 - 300, q)
    # the attitude is aberration-free; the WCS maps to catalog positions: unaberrated
    from skysolve.geometry import vector_to_radec
    from skysolve.sky.aberration import earth_barycentric_velocity, unaberrate

    v = earth_barycentric_velocity("2019-07-29T20:47:26")
    ra, dec = vector_to_radec(unaberrate(radec_to_vector(ra, dec), v))
    assert np.max(angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec)) * 3600 < 0.1


# ---------------------------------------------------------------- failures


def _fake_star_image(seed: int = 3) -> np.ndarray:
    """Noise with 25 random Gaussian 'stars': detections, but no real sky (few enough
    that the search tries every pattern well within the time limit)."""
    rng = np.random.default_rng(seed)
    img = rng.normal(1000.0, 10.0, (768, 1024))
    yy, xx = np.mgrid[0:768, 0:1024]
    for _ in range(25):
        x, y, f = rng.uniform(10, 1014), rng.uniform(10, 758), rng.uniform(2e3, 5e4)
        sl = (slice(int(y) - 6, int(y) + 7), slice(int(x) - 6, int(x) + 7))
        img[sl] += f / (2 * np.pi * 1.5**2) * np.exp(
            -((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / (2 * 1.5**2))
    return img.astype(np.uint16)


def test_table_and_unsolvable_images_exit_3(cli_env, db_file, frames):
    from PIL import Image

    fake = frames / "fake.png"
    Image.fromarray(_fake_star_image()).save(fake)
    flat = frames / "flat.png"
    Image.fromarray(np.full((768, 1024), 1000, np.uint16)).save(flat)
    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, flat, fake, "--db", db_file,
               "--timeout", "3000")
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "2 of 4 images not solved" in proc.stderr
    # no match without a scale: the search spanned the database's 10-20 deg (and wider
    # fields), and the message says how to search a narrower one
    assert "10-20 deg wide, and wider ones" in proc.stderr
    assert "skysolve db build --min-fov" in proc.stderr
    rows = {Path(line.split()[0]).name: line.split()[1:]
            for line in proc.stdout.splitlines()[2:]}
    assert list(rows) == [ALT40, ALT60, "flat.png", "fake.png"]
    for name in (ALT40, ALT60):  # solved rows: RA Dec roll FOV matches rmse time
        ra, dec, roll, fov, matches = map(float, rows[name][:5])
        assert near_peer(ra, dec, name)
        assert abs(fov - 11.4) < 0.1
        assert matches >= 20
    assert rows["flat.png"][:2] == ["too", "few"]
    assert rows["fake.png"][:2] == ["no", "match"]

    proc = run(cli_env, "solve", flat, "--db", db_file, "--json")
    assert proc.returncode == 3
    rec = json_lines(proc.stdout)[0]
    assert (rec["status"], rec["num_centroids"]) == ("too_few", 0)
    assert "db build" not in proc.stderr  # (too few stars: no scale advice)
    # no match with a scale given: no advice either
    proc = run(cli_env, "solve", fake, "--db", db_file, "--fov", "11.4", "--timeout", "3000")
    assert proc.returncode == 3 and "not solved" in proc.stderr
    assert "db build" not in proc.stderr


def test_a_noisy_frame_short_of_stars_is_extracted_again_deeper(cli_env, db_file, tmp_path):
    # the real frame with three times its noise keeps 4 stars at 5 sigmas and finds no
    # match; extracted again at 3 sigmas (--retry-sigma, default 3) it solves
    from astropy.io import fits

    from skysolve.io.images import read_image

    img = read_image(DATA / ALT40).astype(np.float64)
    sigma = 1.4826 * np.median(np.abs(img - np.median(img)))
    noisy = tmp_path / "noisy.fits"
    fits.PrimaryHDU((img + np.random.default_rng(1).normal(0.0, 3.0 * sigma, img.shape))
                    .astype(np.float32)).writeto(noisy)
    proc = run(cli_env, "solve", noisy, "--db", db_file, "--fov", "11.4", "--json")
    assert proc.returncode == 0, proc.stderr
    rec = json_lines(proc.stdout)[0]
    assert rec["status"] == "match_found" and rec["num_centroids"] > 100
    assert near_peer(rec["ra_deg"], rec["dec_deg"], ALT40, extra_arcsec=60.0)
    proc = run(cli_env, "solve", noisy, "--db", db_file, "--fov", "11.4", "--json",
               "--retry-sigma", "0")
    assert proc.returncode == 3
    rec = json_lines(proc.stdout)[0]
    assert rec["status"] == "no_match" and rec["num_centroids"] < 20
    # a threshold asked for is kept (as skysolve-field keeps --nsigma), unless a retry is
    # asked for too
    proc = run(cli_env, "solve", noisy, "--db", db_file, "--fov", "11.4", "--json",
               "--sigma", "5")
    assert proc.returncode == 3 and json_lines(proc.stdout)[0]["num_centroids"] < 20
    proc = run(cli_env, "solve", noisy, "--db", db_file, "--fov", "11.4", "--json",
               "--sigma", "5", "--retry-sigma", "3")
    assert proc.returncode == 0 and json_lines(proc.stdout)[0]["num_centroids"] > 100
    assert_user_error(run(cli_env, "solve", noisy, "--retry-sigma", "-1"), 2, "--retry-sigma")


def test_a_closed_output_pipe_ends_quietly(cli_env, db_file, frames):
    # `skysolve solve ... --json | head -1`: the reader has gone; no "error: Broken pipe"
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "skysolve", "solve", str(frames / ALT40),
                               "--db", str(db_file), "--json", "-j", "1"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, env=cli_env,
                              timeout=300)
    finally:
        os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""


def test_a_broken_pipe_elsewhere_is_an_error_like_any(monkeypatch, capsys, db_file):
    # a closed socket or a subprocess's pipe inside a command is not the output's reader
    # going away: it is reported (raised under --debug), and stdout stays as it was
    import skysolve.cli.db as db_cli
    from skysolve.cli.main import main

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(db_cli, "_cmd_db_info", broken)
    stdout = os.dup(1)
    try:
        assert main(["db", "info", str(db_file)]) == 1
        assert "Broken pipe" in capsys.readouterr().err
        with pytest.raises(BrokenPipeError):
            main(["db", "info", str(db_file), "--debug"])
        assert os.path.samestat(os.fstat(1), os.fstat(stdout))
    finally:
        os.close(stdout)


def test_a_pixel_scale_without_db_asks_for_the_first_images_fields(monkeypatch, capsys,
                                                                    small_db, tmp_path):
    # a pixel scale is a field only with the width: the first image's chooses the database
    # (a narrow cached one for a telescope's scale), as skysolve-field's does
    from skysolve import defaultdb
    from skysolve.cli.main import main

    asked = []

    def database_for_fields(fov_range_deg, progress=None):
        asked.append(fov_range_deg)
        return small_db

    monkeypatch.setattr(defaultdb, "database_for_fields", database_for_fields)
    monkeypatch.setenv("SKYSOLVE_CACHE", str(tmp_path))
    monkeypatch.delenv("SKYSOLVE_DB", raising=False)
    frame = str(DATA / ALT40)  # 1024 px wide
    assert main(["solve", frame, "--pixel-scale", "36", "45", "--quiet"]) == 0
    assert asked == [pytest.approx((36 * 1024 / 3600, 45 * 1024 / 3600), rel=1e-9)]
    # a frame cut to 512 columns: half the field
    assert main(["solve", frame, "--section", "[:, 256:768]", "--pixel-scale", "36", "45",
                 "--quiet"]) in (0, 3)
    assert asked[1] == pytest.approx((36 * 512 / 3600, 45 * 512 / 3600), rel=1e-9)
    # a field of view needs no width; nothing readable: no width, no scale told
    main(["solve", frame, "--fov-range", "10", "13", "--quiet"])
    main(["solve", str(tmp_path / "none.tiff"), frame + ".missing", "--pixel-scale", "36",
          "45", "--quiet"])
    assert asked[2] == pytest.approx((10, 13))
    assert len(asked) == 3  # (no file at all: refused before any database)
    capsys.readouterr()


def test_an_unsolved_row_says_why_on_stderr(cli_env, db_file, frames):
    # the table has room for the status only: a field of view outside the database's
    # range is named on stderr, as the JSON line's "message" names it
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--fov", "5")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines()[2].split()[1:3] == ["no", "match"]
    why = [line for line in proc.stderr.splitlines() if ALT40 in line]
    assert len(why) == 1, proc.stderr
    assert "field of view range 3.00-8.33 deg is outside the database's 10-20 deg" in why[0]
    quiet = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--fov", "5", "-q")
    assert quiet.returncode == 3 and quiet.stderr == ""


@pytest.mark.parametrize("case", [
    "missing image", "not an image", "bad camera", "missing camera", "calibrate, missing camera",
    "db is a directory",
    "missing db", "bad db",
    "update-fits on tiff", "plot file for two images", "two images, one .wcs",
    "calibrate over an input", "plot of an unknown file type", "plot directory is a file",
])
def test_user_errors_exit_1_with_one_line(cli_env, db_file, frames, case):
    img = frames / ALT40
    garbage = frames / "garbage.tiff"
    garbage.write_bytes(b"not an image at all")
    bad_json = frames / "camera.json"
    bad_json.write_text("{ truncated")
    plain = frames / "plots"
    plain.write_text("a file where a directory is asked for")
    args, fragment = {
        "missing image": (["solve", frames / "nope.fits", "--db", db_file], "nope.fits"),
        "not an image": (["solve", garbage, "--db", db_file], "garbage.tiff"),
        "bad camera": (["solve", img, "--db", db_file, "--camera", bad_json], "camera file"),
        # (was "No such file or directory: ...", naming no option)
        "missing camera": (["solve", img, "--db", db_file, "--camera", frames / "no.json"],
                           "--camera"),
        "calibrate, missing camera": (["calibrate", img, "--db", db_file, "--camera",
                                       frames / "no.json", "-o", frames / "c.json"],
                                      "--camera"),
        "missing db": (["solve", img, "--db", frames / "none.db"], "--db"),
        "db is a directory": (["solve", img, "--db", frames], "a directory, not a skysolve"),
        "bad db": (["solve", img, "--db", bad_json], "skysolve database"),
        "update-fits on tiff": (["solve", img, "--db", db_file, "--update-fits"], "FITS"),
        "plot file for two images": (["solve", img, img, "--db", db_file, "--plot",
                                      frames / "x.png"], "directory"),
        # (the second image's .wcs replaced the first's, with exit status 0)
        "two images, one .wcs": (["solve", fits_copy(img, img.with_suffix(".fits")), img,
                                  "--db", db_file, "--write-wcs"], "would both write"),
        # (-o cam.json writes cam.sip.fits too: an image of that name was replaced)
        "calibrate over an input": (["calibrate", shutil.copy(img, frames / "cam.sip.fits"),
                                     "--db", db_file, "-o", frames / "cam.json"],
                                    "refusing to overwrite the input image"),
        # (a PNG was written under that name)
        "plot of an unknown file type": (["solve", img, "--db", db_file, "--plot",
                                          frames / "x.xyz"], "--plot"),
        # (was "File exists: ...", naming no option)
        "plot directory is a file": (["solve", img, img, "--db", db_file, "--plot", plain],
                                     "plots: a file, not a directory"),
    }[case]
    assert_user_error(run(cli_env, *args), 1, fragment)


@pytest.mark.parametrize("suffix, magic", [(".pdf", b"%PDF"), (".jpg", b"\xff\xd8\xff"),
                                           (".svg", b"<?xml")])
def test_a_plot_file_is_of_the_type_its_name_says(cli_env, db_file, frames, suffix, magic):
    # (--plot OUT.pdf wrote PNG bytes into OUT.pdf)
    out = frames / ("plot" + suffix)
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--plot", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".pdf"])
def test_a_plot_never_replaces_a_file_it_did_not_write(cli_env, db_file, frames, suffix):
    from PIL import Image

    # ``--plot a.png b.png`` (meant: solve both) made the camera frame a.png the plot
    # target and replaced it; a plot skysolve wrote is replaced on the next run
    frame = frames / ("camera_frame" + suffix)
    if suffix == ".pdf":
        frame.write_bytes(b"%PDF-1.4 a document that is not a skysolve plot")
    else:
        Image.open(frames / ALT40).convert("L").save(frame)
    before = frame.read_bytes()
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--plot", frame, "-q")
    assert_user_error(proc, 1, "is not a plot skysolve wrote")
    assert frame.read_bytes() == before
    out = frames / ("again" + suffix)
    for _ in range(2):
        proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--plot", out, "-q")
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args, fragment", [
    (["solve", "x.tiff", "--fov", "-3"], "--fov"),
    (["solve", "x.tiff", "--fov", "abc"], "--fov"),
    (["solve", "x.tiff", "--jobs", "0"], "--jobs"),
    (["solve", "x.tiff", "--match-radius", "2"], "--match-radius"),
    (["solve", "x.tiff", "--section", "[1:9:2]"], "--section"),
    (["solve", "x.tiff", "--date", "yesterday"], "--date"),
    (["solve", "x.tiff", "--date", "2019-07-29"], "--date: a date alone is ambiguous"),
    (["solve", "x.tiff", "--date", "2019-07-29T20:47:26", "--no-aberration"],
     "--date is the time for the aberration correction, which --no-aberration turns off"),
    (["solve", "x.tiff", "--bogus"], "--bogus"),
    (["solve"], "IMAGE"),
    (["solve", "x.tiff", "--results", "t.ecsv", "--resume", "--overwrite"],
     "--overwrite: not allowed with argument --resume"),
    (["calibrate", "x.tiff", "--order", "3", "--radial", "-o", "c.json"], "--radial"),
    (["calibrate", "x.tiff", "--order", "9", "-o", "c.json"], "--order"),
    (["calibrate", "x.tiff", "--folds", "1", "-o", "c.json"], "--folds"),
    (["calibrate", "x.tiff", "--wcs-sip-order", "10", "-o", "c.json"], "--wcs-sip-order"),
    (["calibrate", "x.tiff", "--catalog", "tycho", "-o", "c.json"], "--catalog"),
    (["calibrate", "x.tiff", "--polynomial-primary", "sideways", "-o", "c.json"],
     "--polynomial-primary"),
    (["db", "build", "--catalog", "tycho"], "--catalog"),
    (["db", "build", "--min-fov", "20", "--max-fov", "10"], "--min-fov"),
    (["db", "build", "--overwrite"], "--overwrite"),
])
def test_usage_errors_exit_2_with_one_line(cli_env, args, fragment):
    assert_user_error(run(cli_env, *args), 2, fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--fov-range", "20", "10"], "--fov-range"),
    (["--pixel-scale", "-1", "5"], "--pixel-scale"),
    (["--ra", "230"], "--ra and --dec"),
    (["--ra", "nan", "--dec", "0"], "--ra"),
    (["--ra", "10", "--dec", "95"], "--dec"),
    (["--radius", "2"], "--ra/--dec"),
    (["--fov", "11", "--fov-range", "10", "12"], "--fov-range"),
    (["--parity", "mirrored", "--camera", "cam.json"], "--camera"),
])
def test_bad_hints_are_usage_errors_named_by_option(cli_env, frames, tmp_path, args, fragment):
    # checked with the library's rules after parsing, but still a bad option value: 2
    CameraModel.from_fov(11.4, 1024, 768).save_to_file(tmp_path / "cam.json")
    args = [str(tmp_path / a) if a == "cam.json" else a for a in args]
    assert_user_error(run(cli_env, "solve", frames / ALT40, "--db", frames / "none.db", *args),
                      2, fragment)


def test_debug_shows_the_traceback(cli_env, frames):
    proc = run(cli_env, "solve", frames / ALT40, "--db", frames / "none.db", "--debug")
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr


# ---------------------------------------------------------------- databases


def test_db_build_and_info(cli_env, tmp_path):
    out = tmp_path / "hip30.db"
    small = ["--catalog", "hipparcos", "--min-fov", "60", "--max-fov", "60"]
    proc = run(cli_env, "db", "build", *small, "-o", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "patterns:" in proc.stdout
    proc = run(cli_env, "db", "info", out, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["file_size_bytes"] == out.stat().st_size
    assert info["parameters"]["catalog"] == "hipparcos"
    assert info["min_fov_deg"] == info["max_fov_deg"] == 60.0
    assert info["num_stars"] > 1000 and info["num_patterns"] > 1000

    # an existing database is replaced only with --overwrite, refused before the build (a
    # mistyped -o replaced a database that took minutes to make, without a word)
    before = out.read_bytes()
    proc = run(cli_env, "db", "build", *small, "-o", out, "-q")
    assert proc.returncode == 1 and "--overwrite" in proc.stderr and str(out) in proc.stderr
    assert "Traceback" not in proc.stderr and out.read_bytes() == before
    # a directory is no database to replace: refused before the build (which took minutes
    # for the default, then failed to save), --overwrite or not
    for extra in ([], ["--overwrite"]):
        proc = run(cli_env, "db", "build", *small, "-o", tmp_path, *extra)
        assert proc.returncode == 1 and "directory" in proc.stderr
        assert "building" not in proc.stderr and "Traceback" not in proc.stderr
    stamp = out.stat().st_mtime_ns
    proc = run(cli_env, "db", "build", *small, "-o", out, "-q", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mtime_ns != stamp and out.read_bytes() == before  # (deterministic)

    cache = Path(cli_env["SKYSOLVE_CACHE"])
    proc = run(cli_env, "db", "info", "--json")
    listing = json.loads(proc.stdout)
    assert listing["cache_directory"] == str(cache)
    assert Path(listing["default_database"]).name.startswith("gaia_5-30deg_")
    assert listing["default_database_built"] is False
    # into the cache: built once, then found
    proc = run(cli_env, "db", "build", *small)
    assert proc.returncode == 0, proc.stderr
    assert "building" in proc.stderr
    cached = sorted(cache.glob("hipparcos_60-60deg_*.db"))
    assert len(cached) == 1
    proc = run(cli_env, "db", "build", *small)
    assert "already built" in proc.stderr and "building" not in proc.stderr
    listing = json.loads(run(cli_env, "db", "info", "--json").stdout)
    assert [c["file"] for c in listing["cached"]] == [str(cached[0])]
    assert listing["cached"][0]["num_patterns"] == info["num_patterns"]


# ---------------------------------------------------------------- calibration


def test_calibrate_then_solve_with_the_camera(cli_env, db_file, frames):
    pytest.importorskip("skysolve.calibration.fit")
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.camera.model import read_camera_file

    cam_path = frames / "cal" / "camera.json"
    proc = run(cli_env, "calibrate", frames / ALT40, frames / ALT60, "--db", db_file,
               "--fov", "11.4", "--order", "3", "--passes", "2", "-o", cam_path,
               "--write-wcs", "--wcs-sip-order", "4", "--folds", "3")
    assert proc.returncode == 0, proc.stderr
    passes = [line for line in proc.stdout.splitlines() if line.startswith("pass ")]
    assert len(passes) == 2
    assert "2/2 solved" in passes[0] and "order 3" in passes[0] and "0.01" in passes[0]
    assert "match radius 0.005" in passes[1]
    # the summary: the camera with its uncertainties, held-out residuals, per-image scales
    assert "held-out (3-fold over stars)" in proc.stdout
    assert "f = " in proc.stdout and " ± " in proc.stdout and "scale-1 (ppm)" in proc.stdout
    cam, record = read_camera_file(cam_path)
    assert cam == CameraModel.load_from_file(cam_path)
    assert record["validation_folds"] == 3 and record["uncertainty"]["parameters"][0] == "f"
    assert (cam.image_width, cam.image_height) == (1024, 768)
    assert cam.fov_deg == pytest.approx(11.43, abs=0.05)
    assert cam.distortion is not None
    sip = fits.getheader(frames / "cal" / "camera.sip.fits")
    assert sip["CTYPE1"].startswith("RA---TAN")
    # every image's calibrated mapping as a TAN-SIP header beside it
    for name in (ALT40, ALT60):
        hdr = fits.getheader(frames / (Path(name).stem + ".wcs"))
        assert hdr["A_ORDER"] == 4 and hdr["SKYERRPX"] <= 0.01
        assert (hdr["IMAGEW"], hdr["IMAGEH"]) == (1024, 768)
        with warnings.catch_warnings():  # a header-only file: no image axes
            warnings.simplefilter("ignore")
            wcs = WCS(hdr)
        assert angular_separation_deg(*wcs.pixel_to_world_values(511.5, 383.5),
                                      *REFERENCE[name]) < 0.1

    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, "--db", db_file,
               "--camera", cam_path, "--json")
    assert proc.returncode == 0, proc.stderr
    for rec in json_lines(proc.stdout):
        name = Path(rec["file"]).name
        assert near_peer(rec["ra_deg"], rec["dec_deg"], name)
        # each solve refines its own plate scale: within 1e-3 of the camera's
        assert rec["focal_length_px"] == pytest.approx(cam.focal_length_px, rel=1e-3)


def test_a_section_keeps_the_cameras_optical_centre(cli_env, db_file, frames):
    """With --camera, a section is solved with the camera's optical centre where the crop
    puts it (the camera describes the whole image; it was refused for its size): the
    section's WCS maps the whole image's pixels as the whole frame's solve does."""
    from astropy.io import fits
    from astropy.wcs import WCS

    img = frames / ALT40
    whole = json_lines(run(cli_env, "solve", img, "--db", db_file, "--json").stdout)[0]
    cam, q = model_of(whole)
    cam_file = frames / "cam.json"
    cam.save_to_file(cam_file)
    proc = run(cli_env, "solve", img, "--db", db_file, "--json", "--write-wcs", "--camera",
               cam_file, "--section", "[0:400, 100:1024]")
    assert proc.returncode == 0, proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.getheader(img.with_suffix(".wcs")))
    cols = np.array([100.0, 1000.0, 500.0, 120.0, 1000.0])
    rows = np.array([10.0, 390.0, 200.0, 700.0, 700.0])
    sky = wcs.pixel_to_world(cols, rows)
    ra, dec = cam.pixel_to_world(cols + 0.5 - 512, rows + 0.5 - 384, q)
    # measured 1.4-8.4" (half the stars, the lens's own distortion); the section solved
    # with its own centre as the optical centre was 4-95" off
    assert np.max(angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec)) * 3600 < 12.0


def test_a_section_without_a_camera_keeps_the_images_centre_as_optical_centre(
        cli_env, db_file, hip_catalog, tmp_path):
    """Without --camera, a corner section of a 30 deg lens centred on its 1600x1200 frame
    (with barrel distortion) is solved about the whole image's centre: about the
    section's own centre its WCS was 311-346" off at worst (73-76" median) on three such
    frames, reported as solved."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.tests.lensframes import barrel_lens_frame

    img = tmp_path / "lens.fits"
    cam, R, _ = barrel_lens_frame(hip_catalog, img)
    proc = run(cli_env, "solve", img, "--db", db_file, "--json", "--write-wcs", "--section",
               "[0:600, 800:1600]")
    assert proc.returncode == 0, proc.stderr
    rec = json_lines(proc.stdout)[0]
    assert rec["camera_model"]["crpix"] == [-400.0, 300.0]  # the image's centre
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.getheader(tmp_path / "lens.wcs"))
    cols, rows = np.meshgrid(np.linspace(800, 1599, 9), np.linspace(0, 599, 7))
    sky = wcs.pixel_to_world(cols.ravel(), rows.ravel())
    ra, dec = cam.pixel_to_world(cols.ravel() + 0.5 - 800, rows.ravel() + 0.5 - 600, R)
    # measured 2.1" (the pixels are 67")
    assert np.max(angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec)) * 3600 < 10.0


def test_the_sip_header_is_of_an_image_the_fit_kept(cli_env, db_file, hip_catalog, tmp_path):
    """CAMERA.sip.fits holds the pointing of the first image that took part in the fit: of
    three 15 deg frames the first is of another lens (three times the others' barrel
    distortion), which the fit leaves out but which still solves with the calibrated
    camera; the header had its pointing (the frames point at random, tens of degrees
    apart)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.simulate import random_attitudes, render_starfield

    lens = CameraModel.from_fov(15.0, 1024, 768,
                                distortion=RadialDistortion(k1=-0.03, scale=512.0))
    other = lens.replace(distortion=RadialDistortion(k1=-0.09, scale=512.0))
    cat = hip_catalog.propagate(2025.0)
    attitudes = random_attitudes(3, rng=7)
    paths = []
    for k, (cam, R) in enumerate(zip([other, lens, lens], attitudes, strict=True)):
        paths.append(tmp_path / f"f{k}.fits")
        fits.PrimaryHDU(render_starfield(cat, cam, R, seed=k)[0]).writeto(paths[-1])
    cam_file = tmp_path / "cam.json"
    proc = run(cli_env, "calibrate", *paths, "--db", db_file, "--fov", "15", "--fov-error",
               "2", "--folds", "0", "--passes", "2", "--order", "3", "-o", cam_file, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "image 0:" in proc.stdout and "left out" in proc.stdout
    hdr = fits.getheader(tmp_path / "cam.sip.fits")
    assert "pointing of f1.fits" in str(hdr["HISTORY"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(hdr)
    centre = radec_to_vector(*wcs.all_pix2world(512.5, 384.5, 1))
    # the optical axis (at the frame's centre) of the truth
    assert np.degrees(angle_between(centre, attitudes[1][2])) * 3600 < 10.0


def test_calibrate_says_an_unreadable_date_is_passed_over(cli_env, db_file, frames):
    # as solve does: the images were calibrated without the aberration correction silently
    a = fits_copy(frames / ALT40, frames / "a.fits", date="yesterday")
    b = fits_copy(frames / ALT60, frames / "b.fits", date="2019-07-29T25:61:00")
    proc = run(cli_env, "calibrate", a, b, "--db", db_file, "--fov", "11.4", "--order", "3",
               "--passes", "1", "-o", frames / "camera.json")
    assert proc.returncode == 0, proc.stderr
    assert "a.fits: no observation time could be read from DATE-OBS = 'yesterday'" \
        in proc.stderr
    assert "b.fits: no observation time could be read from DATE-OBS = " \
        "'2019-07-29T25:61:00'" in proc.stderr


def test_calibrate_refuses_two_images_writing_one_wcs_file(cli_env, db_file, frames):
    # as solve does: a.tiff and a.fits both write a.wcs, the second over the first
    fits_copy(frames / ALT40, frames / (Path(ALT40).stem + ".fits"))
    proc = run(cli_env, "calibrate", frames / ALT40, frames / (Path(ALT40).stem + ".fits"),
               "--db", db_file, "--fov", "11.4", "--order", "3", "--passes", "1",
               "-o", frames / "camera.json", "--write-wcs")
    assert_user_error(proc, 1, f"would both write {Path(ALT40).stem}.wcs")
    assert not (frames / "camera.json").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="a symlinked directory")
@pytest.mark.parametrize("second", ["a.tiff", "a.wcs"])
def test_two_names_of_one_output_through_a_symlink_are_one_file(tmp_path, second):
    """``real/a.fits`` and ``link/a.tiff``, ``link`` a symlink to ``real``, both write
    ``real/a.wcs``; the paths were compared as written (``abspath``), so the second's
    replaced the first's, or (``link/a.wcs``, an image) the other's output replaced that
    image. Refused before solving now; one image named twice still is not."""
    import argparse

    from skysolve.cli.solve import _check_outputs
    from skysolve.errors import InvalidArgumentError

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    first, other = str(tmp_path / "real" / "a.fits"), str(tmp_path / "link" / second)
    with pytest.raises(InvalidArgumentError, match="would both write a.wcs"):
        _check_outputs(argparse.Namespace(images=[first, other], write_wcs=True))
    # the same image by two names: one file written twice with the same solution
    _check_outputs(argparse.Namespace(images=[first, str(tmp_path / "link" / "a.fits")],
                                      write_wcs=True))


def test_calibrate_rejects_a_camera_of_another_size(cli_env, db_file, frames):
    other = frames / "other.json"
    CameraModel.from_fov(10.0, 640, 480).save_to_file(other)
    proc = run(cli_env, "calibrate", frames / ALT40, "--db", db_file, "--camera", other,
               "-o", frames / "c.json")
    assert_user_error(proc, 1, "640x480")


def test_calibrate_a_section_then_solve_a_section_with_its_camera(cli_env, db_file, hip_catalog,
                                                                  tmp_path):
    """calibrate --section writes the camera of the whole image (the optical centre is the
    detector's), which solve --camera --section and calibrate --camera --section take:
    on top-right 800x600 px sections of a 1600x1200 px, 30 deg lens with barrel
    distortion and its axis 25, -15 px off the frame's centre, the solve's WCS of
    another frame matches the truth to 1.0" at worst (the pixels are 69"). Before, the
    camera was the section's and both refused it for its size."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.camera.model import read_camera_file
    from skysolve.simulate import random_attitudes, render_starfield

    truth = CameraModel.from_fov(30.0, 1600, 1200, crpix=(25.0, -15.0),
                                 distortion=RadialDistortion(k1=-0.03, scale=800.0))
    cat = hip_catalog.propagate(2025.0)
    attitudes = random_attitudes(5, rng=3)
    paths = []
    for k, R in enumerate(attitudes):
        paths.append(tmp_path / f"f{k}.fits")
        fits.PrimaryHDU(render_starfield(cat, truth, R, seed=k)[0]).writeto(paths[-1])
    section = ["--section", "[0:600, 800:1600]"]
    cam_file = tmp_path / "cam.json"
    proc = run(cli_env, "calibrate", *paths[:3], "--db", db_file, "--fov", "15", "--fov-error",
               "3", "--folds", "0", "--passes", "2", "--order", "6", "-o", cam_file, *section,
               "--quiet")
    assert proc.returncode == 0, proc.stderr
    cam, record = read_camera_file(cam_file)
    assert cam.image_shape == (1200, 1600) and cam.crpix.tolist() == [0.0, 0.0]
    assert record["section"] == {"x0": 800, "y0": 0, "width": 800, "height": 600}
    proc = run(cli_env, "solve", paths[4], "--db", db_file, "--camera", cam_file, "--json",
               "--write-wcs", *section)
    assert proc.returncode == 0, proc.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.getheader(tmp_path / "f4.wcs"))
    cols, rows = np.meshgrid(np.linspace(800, 1599, 9), np.linspace(0, 599, 7))
    sky = wcs.pixel_to_world(cols.ravel(), rows.ravel())
    ra, dec = truth.pixel_to_world(cols.ravel() + 0.5 - 800, rows.ravel() + 0.5 - 600,
                                   attitudes[4])
    # measured 1.0"
    assert np.max(angular_separation_deg(sky.ra.deg, sky.dec.deg, ra, dec)) * 3600 < 3.0
    proc = run(cli_env, "calibrate", paths[3], "--db", db_file, "--camera", cam_file, "--folds",
               "0", "--passes", "1", "--order", "6", "-o", tmp_path / "again.json", *section,
               "--quiet")
    assert proc.returncode == 0, proc.stderr
    again = CameraModel.load_from_file(tmp_path / "again.json")
    assert again.image_shape == (1200, 1600)
    assert again.focal_length_px == pytest.approx(truth.focal_length_px, abs=1.5)


# ---------------------------------------------------------------- batches


def test_results_table_resume_and_overwrite(cli_env, db_file, frames):
    from astropy.table import Table

    garbage = frames / "later.tiff"
    garbage.write_bytes(b"not an image yet")
    table = frames / "out" / "results.ecsv"
    args = ["solve", frames / ALT40, frames / ALT60, garbage, "--db", db_file, "--fov", "11.4",
            "--results", table, "--jobs", "1"]
    proc = run(cli_env, *args)
    assert proc.returncode == 1, proc.stderr
    assert "3 frames: 2 solved, 0 unsolved, 1 failed" in proc.stderr
    rows = Table.read(table, format="ascii.ecsv")
    assert [Path(s).name for s in rows["source"]] == [ALT40, ALT60, "later.tiff"]
    assert list(rows["status"]) == ["match_found", "match_found", "error"]
    assert "later.tiff" in rows["error"][2]
    for row in rows[:2]:
        assert near_peer(row["ra_deg"], row["dec_deg"], Path(row["source"]).name)
        assert row["image_width"] == 1024 and row["num_matches"] >= 20

    assert_user_error(run(cli_env, *args), 1, "--resume")  # the table exists
    # --resume: only the failed image is tried again (now readable)
    shutil.copy(frames / ALT60, garbage)
    proc = run(cli_env, *args, "--resume", "--json")
    assert proc.returncode == 0, proc.stderr
    # every image, in input order: those done before as the table holds them
    lines = json_lines(proc.stdout)
    assert [Path(r["file"]).name for r in lines] == [ALT40, ALT60, "later.tiff"]
    assert [r.get("resumed", False) for r in lines] == [True, True, False]
    for rec, row in zip(lines[:2], rows[:2], strict=True):
        assert (rec["ra_deg"], rec["num_matches"]) == (row["ra_deg"], row["num_matches"])
    assert "2 of 3 images already done" in proc.stderr
    rows = Table.read(table, format="ascii.ecsv")
    assert list(rows["status"]) == ["match_found"] * 3 and rows["source"][2] == str(garbage)
    # --overwrite: every image again, a table of this run
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--fov", "11.4", "--results",
               table, "--overwrite", "--json")
    assert proc.returncode == 0, proc.stderr
    assert len(Table.read(table, format="ascii.ecsv")) == 1
    assert_user_error(run(cli_env, "solve", frames / ALT40, "--resume"), 2, "--results")



@pytest.mark.parametrize(("projection", "named"), [(None, True), ("pinhole", True),
                                                   ("equidistant", False)])
def test_the_no_scale_advice_names_projection_only_when_none_was_given(projection, named):
    """Frames told no scale that found no match get advice on the scale; that a fisheye
    needs ``--projection`` is said only when the projection given (or not) was a
    pinhole's: a fisheye's frames told ``--projection equidistant`` were advised to
    give it."""
    import argparse
    from types import SimpleNamespace

    from skysolve.cli.solve import _scale_advice

    args = argparse.Namespace(fov=None, fov_range=None, pixel_scale=None, camera=None,
                              projection=projection, db=None)
    db = SimpleNamespace(min_fov_deg=10.0, max_fov_deg=20.0)
    advice = _scale_advice(args, [SimpleNamespace(status="no_match")], db)
    assert "10-20 deg wide, and wider ones" in advice
    assert ("a fisheye or all-sky lens needs --projection" in advice) == named, advice
    # (without --db, a database built into the cache is searched by later solves)
    assert "--max-fov B, which later solves search too (or --db)" in advice
    args.db = "sky.db"
    assert "--max-fov B, then --db" in _scale_advice(args, [SimpleNamespace(status="no_match")],
                                                     db)

def test_an_existing_results_table_gets_advice_the_command_takes(cli_env, db_file, tmp_path):
    table = tmp_path / "t.ecsv"
    table.write_text("")
    proc = run(cli_env, "calibrate", "x.tiff", "--db", db_file, "--results", table,
               "-o", tmp_path / "c.json")
    assert_user_error(proc, 1, f"results table {table} exists: --overwrite to replace it")
    assert "calibrate has no --resume" in proc.stderr  # (the option it cannot take)
    proc = run(cli_env, "solve", "x.tiff", "--db", db_file, "--results", table)
    assert_user_error(proc, 1, "exists: --resume to skip the images done there, or --overwrite")
    proc = run(cli_env, "solve", "x.tiff", "--db", db_file, "--overwrite")
    assert_user_error(proc, 2, "--overwrite need --results")


def test_overwrite_replaces_only_a_results_table(cli_env, db_file, frames):
    # (``--overwrite --results *.tiff``: the first image was replaced by the table)
    image = frames / ALT60
    before = image.read_bytes()
    for command in (["solve"], ["calibrate", "-o", frames / "c.json"]):
        proc = run(cli_env, *command, "--overwrite", "--results", image, frames / ALT40,
                   "--db", db_file)
        assert_user_error(proc, 1, f"--results {image} exists and is no results table")
        assert image.read_bytes() == before


def test_calibrate_keeps_an_existing_camera_file_without_overwrite(cli_env, db_file, frames):
    # (a previous calibration, or the --camera being refined, was replaced without a word)
    cam = frames / "camera.json"
    CameraModel.from_fov(11.4, 1024, 768).save_to_file(cam)
    before = cam.read_bytes()
    args = ["calibrate", frames / ALT40, frames / ALT60, "--db", db_file, "--fov", "11.4",
            "--order", "3", "--passes", "1", "--folds", "2", "-o", cam]
    proc = run(cli_env, *args, "--camera", cam)
    assert_user_error(proc, 1, f"{cam} exists: --overwrite to replace it")
    assert cam.read_bytes() == before
    # the SIP header written beside it counts too
    cam.unlink()
    (frames / "camera.sip.fits").write_bytes(b"kept")
    assert_user_error(run(cli_env, *args), 1, "camera.sip.fits exists: --overwrite")
    assert (frames / "camera.sip.fits").read_bytes() == b"kept"
    # --overwrite (no --results needed) replaces them
    proc = run(cli_env, *args, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert CameraModel.load_from_file(cam).distortion is not None
    assert (frames / "camera.sip.fits").read_bytes() != b"kept"


@pytest.mark.slow
def test_a_dask_scheduler_gives_the_same_answers(cli_env, db_file, frames, solved_json):
    pytest.importorskip("distributed")
    one = json_lines(solved_json[1].stdout)
    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, "--db", db_file, "--json",
               "--fov", "11.4", "--scheduler", "local", "--jobs", "2")
    assert_same_answers(one, proc)
def test_one_image_is_solved_without_numba_and_agrees(cli_env, db_file, frames, solved_json):
    """A one-shot solve skips loading numba and the compiled kernels (the numpy backend),
    with the answer the compiled backend gave for the same frame in a two-image run."""
    code = ("import sys\nfrom skysolve.cli.main import main\n"
            f"code = main(['solve', {str(frames / ALT40)!r}, '--db', {str(db_file)!r}, "
            "'--json', '--fov', '11.4'])\n"
            "print('numba' in sys.modules, code)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    *lines, last = proc.stdout.strip().splitlines()
    assert last == "False 0"
    one = json_lines("\n".join(lines))[0]
    both = {Path(r["file"]).name: r for r in json_lines(solved_json[1].stdout)}[ALT40]
    assert one["num_matches"] == both["num_matches"]
    for key in ("ra_deg", "dec_deg", "roll_deg", "fov_deg", "rmse_arcsec"):
        assert one[key] == pytest.approx(both[key], rel=1e-9, abs=1e-9), key


def test_solve_with_hints(cli_env, db_file, frames):
    ra, dec = REFERENCE[ALT40]
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--json", "--ra", ra,
               "--dec", dec, "--radius", 2, "--fov-range", 10, 13, "--parity", "normal")
    assert proc.returncode == 0, proc.stderr
    rec = json_lines(proc.stdout)[0]
    assert near_peer(rec["ra_deg"], rec["dec_deg"], ALT40)
    # a cone that misses the pointing: not solved (exit 3), never a wrong answer
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--json", "--ra", ra + 20,
               "--dec", dec, "--radius", 2)
    assert proc.returncode == 3 and json_lines(proc.stdout)[0]["status"] != "match_found"
    assert_user_error(run(cli_env, "solve", frames / ALT40, "--db", db_file, "--ra", ra),
                      2, "--ra and --dec")  # a usage error


#: Modules a one-frame solve of a small field has no use for: any of scipy (calibration's
#: scipy.optimize and scipy.sparse, large fields' and quaternions' scipy.spatial, and the
#: scipy.special and scipy.ndimage the numpy path once used: any first scipy import pays
#: ~0.2 s for its array-API layer) and FITS files' astropy. Importing them was most of a
#: one-shot command's start-up.
UNNEEDED_FOR_ONE_SHOT = ("scipy", "astropy")


def _stretched_png(frames: Path, tmp_path: Path) -> Path:
    """The Alt40 frame as an 8-bit PNG (1st-99.9th percentile stretch): lossless, its
    faint stars kept, some 90 centroids where the TIFF gives 33."""
    from PIL import Image

    from skysolve.io.images import read_image

    a = np.asarray(read_image(frames / ALT40), dtype=np.float64)
    lo, hi = np.percentile(a, [1.0, 99.9])
    path = tmp_path / "alt40.png"
    Image.fromarray((np.clip((a - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("form", ["tiff", "png8"])
def test_one_shot_solve_loads_only_what_it_needs(db_file, cli_env, frames, tmp_path, form):
    """Also for a lossless 8-bit frame (~90 centroids, the faint stars a 16-bit frame's
    first pass leaves)."""
    image = frames / ALT40 if form == "tiff" else _stretched_png(frames, tmp_path)
    code = ("import json, sys\nfrom skysolve.cli import main\nstatus = main()\n"
            f"print(json.dumps([status, [m for m in {UNNEEDED_FOR_ONE_SHOT!r} "
            "if m in sys.modules]]))")
    out = subprocess.run([sys.executable, "-c", code, "solve", str(image), "--fov",
                          "11.4", "--db", str(db_file), "--json"],
                         capture_output=True, text=True, env=cli_env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    record = json.loads(lines[0])
    assert near_peer(record["ra_deg"], record["dec_deg"], ALT40)
    assert json.loads(lines[-1]) == [0, []]


@pytest.mark.parametrize("name", [ALT40, ALT60])
def test_a_lossy_webp_image_solves(cli_env, db_file, tmp_path, name):
    """All-sky cameras and phones save WebP; ``skysolve solve frame.webp`` refused it
    ("unrecognised leading bytes b'RIFF...'"). A real frame stretched to 8 bits and saved
    as colour lossy WebP (quality 90) solves within the 18" its reference pointing is
    known to, and no warning is printed."""
    from PIL import Image

    from skysolve.io.images import read_image

    u16 = read_image(DATA / name)
    u8 = np.clip((u16.astype(np.float64) - 2800.0) / 16.0, 0, 255).astype(np.uint8)
    path = tmp_path / "frame.webp"
    Image.fromarray(np.repeat(u8[..., None], 3, axis=-1)).save(path, quality=90)
    assert path.read_bytes()[8:16] == b"WEBPVP8 "  # (lossy; "VP8L" is lossless)
    proc = run(cli_env, "solve", path, "--fov", "11.4", "--db", db_file, "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    record = json_lines(proc.stdout)[0]
    assert angular_separation_deg(record["ra_deg"], record["dec_deg"],
                                  *REFERENCE[name]) * 3600 < 18.0


def test_an_output_that_is_another_input_is_refused(cli_env, db_file, frames):
    # a second '--update-fits' run over 'dir/*.fits' took in a.solved.fits and rewrote it
    # while solving it; and '--write-wcs' over an input named like another's .wcs
    from astropy.io import fits

    import skysolve

    a = frames / "a.fits"
    fits.PrimaryHDU(skysolve.read_image(frames / ALT40)).writeto(a)
    fits.PrimaryHDU(skysolve.read_image(frames / ALT40)).writeto(frames / "a.solved.fits")
    proc = run(cli_env, "solve", a, frames / "a.solved.fits", "--db", db_file, "--update-fits")
    assert_user_error(proc, 1, "a.solved.fits is an input")
    assert not (frames / "a.solved.solved.fits").exists()


def test_a_resumed_run_says_which_files_it_did_not_write(cli_env, db_file, frames):
    table = frames / "t.ecsv"
    first = run(cli_env, "solve", frames / ALT40, "--db", db_file, "--fov", "11.4",
                "--results", table)
    assert first.returncode == 0, first.stderr
    proc = run(cli_env, "solve", frames / ALT40, frames / ALT60, "--db", db_file, "--fov",
               "11.4", "--results", table, "--resume", "--write-wcs")
    assert proc.returncode == 0, proc.stderr
    assert "--write-wcs: not written for the 1 image taken from the results table" \
        in proc.stderr
    assert not (frames / ALT40).with_suffix(".wcs").exists()
    assert (frames / ALT60).with_suffix(".wcs").exists()


def test_images_after_options_are_images_too(cli_env, db_file, frames):
    # (argparse took the images before the first option only: 'unrecognized arguments')
    proc = run(cli_env, "solve", frames / ALT40, "--db", db_file, frames / ALT60, "--fov",
               "11.4", "--json")
    assert proc.returncode == 0, proc.stderr
    assert [Path(r["file"]).name for r in json_lines(proc.stdout)] == [ALT40, ALT60]
    # an unknown option is still refused
    assert run(cli_env, "solve", frames / ALT40, "--db", db_file, "--nope").returncode == 2
