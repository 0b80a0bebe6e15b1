"""``skysolve solve --sky-circle``: an all-sky JPEG with a caption line in its surround.

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
