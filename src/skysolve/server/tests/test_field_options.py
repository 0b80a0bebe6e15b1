"""The web API's source and reference-pixel settings: nova's ``invert``, and skysolve-field's
``objs``, ``depth``, ``nsigma``, ``sigma``, ``crpix_x``, ``crpix_y`` (one definition shared
with the command line, :mod:`skysolve.fields`).

Before, ``invert`` was accepted and ignored (a white-sky, black-star frame did not solve)
and the others were unknown to the server: a client could not ask for them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from skysolve.server import nova
from skysolve.server.nova import BadRequest
from skysolve.tests.realframes import ALT40, DATA, REFERENCE

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`",
                                        "ignore::astropy.wcs.FITSFixedWarning")

#: The real frames' width range, as a nova client sends it.
SCALE = {"scale_units": "degwidth", "scale_lower": 10, "scale_upper": 13}


def test_settings_become_the_jobs_field_options():
    got = nova.field_options({"invert": True, "objs": 25, "depth": "1-10,11-30",
                              "nsigma": "8", "sigma": 12.5, "crpix_x": 1, "crpix_y": "2.5"})
    assert got == {"invert": True, "depth": 30, "crpix": [1.0, 2.5],
                   "extraction": {"max_centroids": 25, "sigma_threshold": 8.0, "noise": 12.5}}
    assert nova.field_options({"invert": False, "crpix_center": True}) == {}
    assert nova.field_options({"crpix_y": 10}) == {"crpix": [None, 10.0]}


@pytest.mark.parametrize("settings, name", [
    ({"objs": 0}, "objs"), ({"objs": "many"}, "objs"), ({"objs": True}, "objs"),
    ({"depth": "60-20"}, "depth"), ({"depth": [1, 2]}, "depth"), ({"nsigma": -3}, "nsigma"),
    ({"sigma": 0}, "sigma"), ({"crpix_x": "nan"}, "crpix_x"), ({"invert": "yes"}, "invert"),
])
def test_bad_field_settings_are_refused_naming_them(settings, name):
    with pytest.raises(BadRequest, match=name):
        nova.field_options(settings)


def test_an_upload_carries_them_and_a_bad_one_is_a_400(tmp_path):
    from .test_queue import _offline_app

    client = _offline_app(tmp_path)
    image = (DATA / ALT40).read_bytes()
    settings = {"objs": 30, "depth": 20, "crpix_x": 1, "crpix_y": 1, "invert": True}
    r = client.post("/api/upload", data={"request-json": json.dumps(settings)},
                    files={"file": ("a.tiff", image)})
    assert r.status_code == 200, r.text
    row = client.app.state.service.store.get(r.json()["subid"])
    assert json.loads(row["hints"])["input"] == {
        "downsample": None, "input": "input.tiff", "invert": True, "depth": 20,
        "crpix": [1.0, 1.0], "extraction": {"max_centroids": 30}}
    r = client.post("/api/url_upload", data={"request-json": json.dumps(
        {"x": [1.0, 2.0], "y": [3.0, 4.0], "image_width": 10, "image_height": 10,
         "depth": "5-"})})
    assert r.status_code == 400 and "depth" in r.json()["errormessage"]
    assert client.app.state.service.store.active_count() == 1


def _job(tmp_path, name, image, settings, small_db):
    """A job run as a worker runs it; returns (summary, folder)."""
    from skysolve.batch import DatabaseHandle
    from skysolve.server.worker import run_job

    folder = tmp_path / name
    folder.mkdir()
    (folder / "input.tiff").write_bytes(image)
    hints = {"input": "input.tiff", **nova.field_options(settings)}
    summary = run_job(str(folder), "image", hints, nova.solve_hints({**SCALE, **settings}, 30.0),
                      DatabaseHandle(small_db))
    return summary, folder


def test_objs_depth_and_crpix_shape_the_jobs_files(small_db, tmp_path):
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    image = (DATA / ALT40).read_bytes()
    plain, base = _job(tmp_path, "plain", image, {}, small_db)
    asked, folder = _job(tmp_path, "asked", image, {"objs": 25, "depth": 20, "crpix_x": 1,
                                                    "crpix_y": 1}, small_db)
    assert plain["solved"] and asked["solved"]
    everything = Table.read(base / "job.axy")
    axy = Table.read(folder / "job.axy")
    assert len(everything) > 25 and len(axy) == 25  # the 25 brightest, as --objs keeps
    np.testing.assert_allclose(axy["X"], everything["X"][:25], atol=0.01)
    head = fits.getheader(folder / "job.wcs")
    assert (head["CRPIX1"], head["CRPIX2"]) == (1.0, 1.0)
    # the same sky for the same pixels, about another reference pixel
    cols, rows = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 5))
    ours = WCS(head).pixel_to_world_values(cols.ravel(), rows.ravel())
    ref = WCS(fits.getheader(base / "job.wcs")).pixel_to_world_values(cols.ravel(), rows.ravel())
    sep = np.hypot((ours[0] - ref[0]) * np.cos(np.radians(ref[1])), ours[1] - ref[1])
    assert sep.max() * 3600.0 < 5.0
    ra, dec = REFERENCE[ALT40]
    fig = asked["figures"]
    assert math.hypot((fig["ra"] - ra) * math.cos(math.radians(dec)), fig["dec"] - dec) < 0.01


def test_invert_solves_a_frame_of_dark_stars(small_db, tmp_path):
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(DATA / ALT40))
    buf = io.BytesIO()
    Image.fromarray((np.iinfo(pixels.dtype).max - pixels).astype(pixels.dtype)).save(
        buf, format="TIFF")
    dark, _ = _job(tmp_path, "dark", buf.getvalue(), {}, small_db)
    inverted, _ = _job(tmp_path, "inverted", buf.getvalue(), {"invert": True}, small_db)
    assert not dark["solved"] and inverted["solved"]
    ra, dec = REFERENCE[ALT40]
    fig = inverted["figures"]
    assert math.hypot((fig["ra"] - ra) * math.cos(math.radians(dec)), fig["dec"] - dec) < 0.01


@pytest.mark.parametrize("value, expected", [
    ("auto", "auto"), ("none", None), ("NONE", None), (480, [0.0, 0.0, 480.0]),
    ("10,-5,480", [10.0, -5.0, 480.0]), ([10, -5, 480.5], [10.0, -5.0, 480.5])])
def test_sky_circle_is_a_setting(value, expected):
    # (before: unknown to the server, a client could not turn the image circle's
    # finding off, nor give the circle)
    got = nova.field_options({"sky_circle": value})
    assert got == {"extraction": {"sky_circle": expected}}
    assert json.loads(json.dumps(got)) == got  # (the job's hints are stored as JSON)


@pytest.mark.parametrize("value", ["x", "1,2", [1, 2], -3, 0, [0, 0, -5], True, {"r": 5},
                                   "0,0,nan"])
def test_a_bad_sky_circle_is_refused_naming_it(value):
    with pytest.raises(BadRequest, match="sky_circle"):
        nova.field_options({"sky_circle": value})


def test_a_jobs_sky_circle_keeps_its_sources_in_it(hip_catalog, tmp_path):
    """The setting, through the job's stored hints, on an all-sky frame with a caption in
    its surround (its lens's circle: 504 px about the centre of the 1024 x 1024 frame)."""
    from PIL import Image

    from skysolve.extraction.tests.test_sky_circle import _allsky
    from skysolve.fields import image_field

    img, *_ = _allsky(hip_catalog, seed=2)
    path = tmp_path / "allsky.jpg"
    Image.fromarray(np.asarray(img)).save(path, quality=95)
    far, circle = {}, {}
    for value in ("auto", "none", "0,0,250"):
        hints = json.loads(json.dumps(nova.field_options({"sky_circle": value})))
        field = image_field(path, **hints["extraction"])
        far[value] = np.hypot(*(field.xy_fits - 512.5).T).max()  # 1-based FITS pixels
        circle[value] = field.sky_circle
    assert far["auto"] <= 504.0 and far["0,0,250"] <= 250.0
    # (found about the lens's circle; none looked for; the one given. The caption's
    # sources no longer tell "none": the surround, a floor a stretch clipped, is masked)
    assert np.hypot(*circle["auto"][:2]) < 2.0 and abs(circle["auto"][2] - 496.0) < 12.0
    assert circle["none"] is None and tuple(circle["0,0,250"]) == (0.0, 0.0, 250.0)
