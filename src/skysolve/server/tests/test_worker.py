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
