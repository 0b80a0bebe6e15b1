"""``--sky-circle`` of ``skysolve solve`` and ``skysolve-field``: an all-sky JPEG frame with a
caption line in its surround.

Known answers: the attitude the frame was rendered at (boresight RA 180, Dec 30) and
its lens's image circle (504 px about the image centre).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from skysolve import SolverDatabase
from skysolve.cli.main import main
from skysolve.extraction.tests.test_sky_circle import _allsky
from skysolve.geometry import angle_between, radec_to_vector


@pytest.fixture(scope="module")
def allsky(hip_catalog, tmp_path_factory):
    """(the frame's JPEG file, a 140-180 deg database file, the true boresight)."""
    folder = tmp_path_factory.mktemp("allsky")
    img, _, _, R, _ = _allsky(hip_catalog, seed=2)
    path = folder / "allsky.jpg"
    Image.fromarray(np.asarray(img)).save(path, quality=95)
    db = folder / "allsky.db"
    SolverDatabase.generate_from_gaia(max_fov_deg=180.0, min_fov_deg=140.0,
                                      progress=False).save_to_file(db)
    return path, db, R[2]


def _solve(capsys, allsky, *extra):
    path, db, _ = allsky
    code = main(["solve", str(path), "--db", str(db), "--projection", "equisolid", "--json",
                 "-q", "--jobs", "1", *extra])
    out = capsys.readouterr()
    return code, out


@pytest.mark.parametrize("circle", [[], ["--sky-circle", "auto"], ["--sky-circle", "0,0,500"]])
def test_an_all_sky_jpeg_solves_from_the_command_line(capsys, allsky, circle):
    code, out = _solve(capsys, allsky, *circle)
    assert code == 0, out.err
    rec = json.loads(out.out)
    assert rec["status"] == "match_found"
    err = angle_between(radec_to_vector(rec["ra_deg"], rec["dec_deg"]), allsky[2])
    assert math.degrees(err) * 3600 < 60.0


def test_a_smaller_circle_keeps_fewer_stars(capsys, allsky):
    counts = []
    for value in ("auto", "250"):
        code, out = _solve(capsys, allsky, "--sky-circle", value)
        counts.append(json.loads(out.out)["num_centroids"])
    assert counts[1] < 0.5 * counts[0]


@pytest.mark.parametrize("value", ["1,2", "x", "0,0,-5"])
def test_a_bad_sky_circle_is_a_usage_error(capsys, allsky, value):
    code, out = _solve(capsys, allsky, "--sky-circle", value)
    assert code == 2
    assert "--sky-circle" in out.err and "Traceback" not in out.err


def test_skysolve_field_keeps_its_sources_in_the_circle(capsys, allsky, tmp_path):
    """A circle given in the full image's pixels holds for a binned extraction too."""
    from astropy.io import fits

    from skysolve.cli.solve_field import main as field_main

    path, db, boresight = allsky
    for extra in ([], ["--sky-circle", "250", "--downsample", "2"]):
        code = field_main(["-O", "-p", "-D", str(tmp_path), "--db", str(db),
                           "--projection", "equisolid", *extra, str(path)])
        assert code == 0, capsys.readouterr().err
        assert (tmp_path / "allsky.solved").exists()
        xy = fits.getdata(tmp_path / "allsky.axy", 1)
        # 1-based FITS pixels of a 1024 x 1024 frame: its centre at 512.5
        r = np.hypot(xy["X"] - 512.5, xy["Y"] - 512.5)
        limit = 250.0 if extra else 504.0
        assert r.max() <= limit, extra
    capsys.readouterr()
    assert field_main(["-O", "-p", "-D", str(tmp_path), "--db", str(db),
                       "--sky-circle", "0,0,-3", str(path)]) == 255
    assert "--sky-circle" in capsys.readouterr().err


@pytest.mark.parametrize("n", [2, 4])
def test_a_circle_holds_for_a_binned_frame_of_odd_size(tmp_path, n):
    """Binning drops the rows and columns that do not fill a block, which moves the
    centre: a circle in the full image's centred pixels must follow. Stars on two rings
    0.75 px inside and outside the rim band's edge (``n`` x 2 px inside the rim): the
    inner ones kept, the outer ones dropped (before: a 1539 px frame binned 4 x 4 took the
    circle 1.5 px towards its corner, keeping and dropping the wrong ones)."""
    from astropy.io import fits

    from skysolve.fields import image_field

    size = 1539  # (1539 = 4 x 384 + 3: 3 rows and columns dropped by 4 x 4 binning)
    x0, y0, radius = 30.0, -20.0, 600.0
    edge = radius - 2.0 * n  # (rim_band_px of the binned radius: 2 binned px)
    phi = np.radians(np.arange(0.0, 360.0, 15.0))
    rings = {}
    for name, r, turn in (("in", edge - 0.75, 0.0), ("out", edge + 0.75, np.radians(7.5))):
        rings[name] = np.column_stack([x0 + r * np.cos(phi + turn), y0 + r * np.sin(phi + turn)])
    yy, xx = np.mgrid[0:size, 0:size] + 0.5 - 0.5 * size  # centred pixels
    rng = np.random.default_rng(1)
    img = 100.0 + rng.normal(0.0, 2.0, (size, size))
    for sx, sy in np.concatenate(list(rings.values())):
        sl = (slice(int(sy + 0.5 * size) - 15, int(sy + 0.5 * size) + 16),
              slice(int(sx + 0.5 * size) - 15, int(sx + 0.5 * size) + 16))
        img[sl] += 4000.0 * np.exp(-((xx[sl] - sx) ** 2 + (yy[sl] - sy) ** 2) / (2 * 3.0 ** 2))
    path = tmp_path / "odd.fits"
    fits.writeto(path, img.astype(np.float32))
    field = image_field(path, downsample=n, sky_circle=(x0, y0, radius))
    # 1-based FITS pixels of the full image -> its centred pixels
    xy = field.xy_fits - 0.5 - 0.5 * size
    d_in = np.min(np.hypot(*(xy[:, None, :] - rings["in"][None]).transpose(2, 0, 1)), axis=0)
    d_out = np.min(np.hypot(*(xy[:, None, :] - rings["out"][None]).transpose(2, 0, 1)),
                   axis=0)
    assert (d_in < 0.5).all()  # every inner star kept
    assert (d_out > 1.0).all()  # every outer star dropped


def test_skysolve_field_prints_the_sky_circles_size(capsys, allsky, hip_catalog, tmp_path):
    """A 190 deg lens's circle (504 px) in a 1024 x 1024 frame: the field is 190 deg
    across, not the 194 deg out to the frame's edges' midpoints (before)."""
    import re

    from astropy.io import fits

    from skysolve.cli.solve_field import main as field_main

    img, _, _, _, _ = _allsky(hip_catalog, seed=1, jpeg=False)
    path = tmp_path / "raw.fits"
    fits.writeto(path, np.asarray(img, dtype=np.float32))
    code = field_main(["-O", "-p", "-D", str(tmp_path), "--db", str(allsky[1]),
                       "--projection", "equisolid", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    size = re.search(r"Field size: ([\d.]+) x ([\d.]+) degrees", out)
    assert size, out
    assert float(size[1]) == pytest.approx(190.0, abs=1.5)
    assert float(size[2]) == pytest.approx(190.0, abs=1.5)
