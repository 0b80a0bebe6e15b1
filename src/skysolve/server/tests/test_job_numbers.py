"""Job numbers the store cannot hold are unknown jobs."""

from __future__ import annotations

from .test_queue import _offline_app


def test_a_job_number_beyond_sqlite_integers_is_404_not_500(tmp_path):
    client = _offline_app(tmp_path)
    for path in ("/api/jobs/99999999999999999999999", "/api/submissions/9223372036854775808",
                 "/wcs_file/99999999999999999999999"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["status"] == "error"


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    """A compressed upload of a few kilobytes that would decode to a huge image is 413,
    and the service never decodes it (the limit is checked from the header)."""
    import io
    import json

    import numpy as np
    from PIL import Image

    client = _offline_app(tmp_path, max_pixels=1_000_000)
    login = client.post("/api/login", data={"request-json": json.dumps({"apikey": "k"})})
    session = login.json()["session"]
    for shape, status in (((1100, 1000), 413), ((600, 800), 200)):
        buf = io.BytesIO()
        Image.fromarray(np.zeros(shape, np.uint8)).save(buf, "PNG", optimize=True)
        assert len(buf.getvalue()) < 10_000
        r = client.post("/api/upload", data={"request-json": json.dumps({"session": session})},
                        files={"file": ("big.png", buf.getvalue(), "image/png")})
        assert r.status_code == status, r.text
        if status == 413:
            assert "pixel values" in r.json()["errormessage"]
