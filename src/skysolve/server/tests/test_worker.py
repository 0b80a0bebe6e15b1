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
