"""A job run as a worker runs it, on frames that decode but hold nothing to solve."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("fill", [np.nan, np.inf, 7.0])
def test_a_frame_without_stars_fails_saying_why_and_has_a_preview(small_db, tmp_path, fill):
    """An all-NaN frame (a FITS whose pixels are all blank) is a failed job that says it
    found no stars, with a (black) preview; it failed with numpy's bare "index -1 is out
    of bounds for axis 0 with size 0" from the preview's stretch."""
    from astropy.io import fits
    from PIL import Image

    from skysolve.batch import DatabaseHandle
    from skysolve.server.worker import FILES, run_job

    fits.PrimaryHDU(np.full((120, 160), fill, np.float32)).writeto(tmp_path / "input.fits")
    summary = run_job(str(tmp_path), "image", {"input": "input.fits"}, {},
                      DatabaseHandle(small_db))
    assert summary["solved"] is False and "0 centroids" in summary["message"]
    with Image.open(tmp_path / FILES["preview"]) as preview:
        assert preview.size == (160, 120)
        if not np.isfinite(fill):  # (nothing to show)
            assert np.asarray(preview).max() == 0


def test_a_noisy_frame_short_of_stars_is_extracted_again_deeper(small_db, tmp_path):
    """The real frame with three times its noise keeps 4 sources at 5 sigmas and matches
    nothing; the job extracts it again at 3 sigmas, as skysolve solve does, and its
    .axy is the list solved (the .corr's field ids index it)."""
    from astropy.io import fits
    from astropy.table import Table

    from skysolve.batch import DatabaseHandle
    from skysolve.io.images import read_image
    from skysolve.server.worker import FILES, run_job
    from skysolve.tests.realframes import ALT40, DATA, FOV_DEG

    img = read_image(DATA / ALT40).astype(np.float64)
    sigma = 1.4826 * np.median(np.abs(img - np.median(img)))
    noisy = img + np.random.default_rng(1).normal(0.0, 3.0 * sigma, img.shape)
    fits.PrimaryHDU(noisy.astype(np.float32)).writeto(tmp_path / "input.fits")
    summary = run_job(str(tmp_path), "image", {"input": "input.fits"},
                      {"fov_estimate_deg": FOV_DEG}, DatabaseHandle(small_db))
    assert summary["solved"] is True and summary["sources"] > 100
    axy = Table.read(tmp_path / FILES["axy_file"], hdu=1)
    corr = Table.read(tmp_path / FILES["corr_file"], hdu=1)
    assert len(axy) == summary["sources"]
    rows = np.asarray(corr["field_id"], dtype=np.intp)
    assert np.allclose(axy["X"][rows], corr["field_x"], atol=1e-6)


def test_a_source_list_outside_its_image_is_said_in_its_own_pixels(small_db, tmp_path):
    """url_upload's x/y are 1-based image pixels: a source beyond image_width was refused
    as "centroids ... at (4949.5, -44.5) ... centred pixels ... origin='zero'"."""
    from skysolve.batch import DatabaseHandle
    from skysolve.errors import InvalidArgumentError
    from skysolve.server.worker import run_job

    hints = {"x": [10.0, 5000.0, 30.0, 40.0], "y": [5.0, 6.0, 7.0, 8.0],
             "image_width": 100, "image_height": 80}
    with pytest.raises(InvalidArgumentError) as err:
        run_job(str(tmp_path), "xy", hints, {}, DatabaseHandle(small_db))
    text = str(err.value)
    assert "1 of 4 sources" in text and "source 2 at x=5000.0, y=6.0" in text
    assert "0.5 to 100.5 in x and 0.5 to 80.5 in y" in text and "origin" not in text


def test_a_jobs_error_names_no_server_path(tmp_path):
    """A job whose input went missing (a data directory cleaned while it waited) failed
    with "no such image file: /srv/skysolve-data/jobs/1/input.tiff": the server's folders
    in an answer anyone may read. Its error says "the file" instead."""
    import threading
    import time

    from skysolve.batch import LocalPool
    from skysolve.server.queue import JobQueue
    from skysolve.server.store import JobStore

    store = JobStore(tmp_path / "data")
    job = store.reserve("image", {"input": {"input": "input.tiff"}, "solve": {}}, "m31.tiff")
    store.accept(job, "input.tiff")  # (its file never arrives)
    q = JobQueue(store, None, workers=1, time_limit_s=30.0)
    q._pool = LocalPool(1, "thread")
    q._thread = threading.Thread(target=q._run, daemon=True)
    q._thread.start()
    try:
        deadline = time.monotonic() + 30
        while store.get(job)["state"] != "failure" and time.monotonic() < deadline:
            time.sleep(0.02)
        error = store.get(job)["error"]
        assert store.get(job)["state"] == "failure" and "the file" in error, error
        assert str(tmp_path) not in error and "input.tiff" not in error, error
    finally:
        q.stop()


def test_the_figures_are_the_fields_angles_not_pixels_times_the_scale(small_db):
    """The page's field of view and nova's calibration radius were the pixel counts
    times the central pixel scale: 160 deg for a 200 deg fisheye, and a pinhole field's
    corners farther out than they are. Now the angles through the lens, as skysolve-field
    prints them: for a pinhole lens ``2 atan(w / 2f)`` across and ``atan(d / 2f)`` out
    to a corner."""
    import skysolve
    from skysolve.server.worker import figures
    from skysolve.tests.realframes import DATA

    frame = skysolve.read_image(DATA / "2019-07-29T204726_Alt40_Azi-135_Try1.tiff")
    res = small_db.solve_from_centroids(skysolve.extract_centroids(frame),
                                        fov_estimate_deg=11.4, image_shape=frame.shape)
    assert res
    f = res.camera_model.focal_length_px
    fig = figures(res, 1024, 768)
    assert fig["fov_width_deg"] == pytest.approx(2 * np.degrees(np.arctan(512 / f)), abs=1e-4)
    assert fig["fov_height_deg"] == pytest.approx(2 * np.degrees(np.arctan(384 / f)), abs=1e-4)
    assert fig["radius_deg"] == pytest.approx(np.degrees(np.arctan(640 / f)), abs=1e-4)
    assert fig["pixscale_arcsec"] == pytest.approx(3600 * np.degrees(1 / f))


def test_a_solved_jobs_kmz_lays_its_stars_on_the_sky(small_db, tmp_path):
    """The real frame solved as a job: its KMZ (nova's /kml_file) is a KML document for
    Google Earth's sky mode whose box holds the frame's reference pointing (longitude RA
    - 180), and its overlay, the preview resampled on the sky, is opaque there and bright
    where the .corr puts the matched stars."""
    import io
    import xml.etree.ElementTree as ET
    import zipfile

    from astropy.table import Table
    from PIL import Image

    from skysolve.batch import DatabaseHandle
    from skysolve.server.app import _kmz
    from skysolve.server.worker import FILES, run_job
    from skysolve.tests.realframes import ALT40, DATA, FOV_DEG, REFERENCE

    (tmp_path / "input.tiff").write_bytes((DATA / ALT40).read_bytes())
    summary = run_job(str(tmp_path), "image", {"input": "input.tiff"},
                      {"fov_estimate_deg": FOV_DEG}, DatabaseHandle(small_db))
    assert summary["solved"] is True
    z = zipfile.ZipFile(io.BytesIO(_kmz(tmp_path, "alt40")))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    root = ET.fromstring(z.read("doc.kml"))
    assert root.attrib["hint"] == "target=sky"
    box = {k: float(root.find(f".//k:{k}", ns).text) for k in ("north", "south", "east",
                                                                  "west")}
    overlay = np.asarray(Image.open(io.BytesIO(z.read("overlay.png"))))
    rows, cols = overlay.shape[:2]

    def at(ra, dec):
        col = ((ra % 360.0 - 180.0 - box["west"]) % 360.0) / ((box["east"] - box["west"])
                                                              % 360.0) * cols
        return int((box["north"] - dec) / (box["north"] - box["south"]) * rows), int(col)

    ra0, dec0 = REFERENCE[ALT40]
    assert box["south"] < dec0 < box["north"]
    r, c = at(ra0, dec0)
    assert 0 <= r < rows and 0 <= c < cols and overlay[r, c, 1] == 255
    corr = Table.read(tmp_path / FILES["corr_file"], hdu=1)
    sky = np.median(overlay[..., 0][overlay[..., 1] == 255])
    stars = [at(ra, dec) for ra, dec in zip(corr["field_ra"][:10], corr["field_dec"][:10],
                                            strict=True)]
    bright = [overlay[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2, 0].max() for r, c in stars]
    assert np.median(bright) > sky + 40
    assert _kmz(tmp_path / "missing", "x") is None
