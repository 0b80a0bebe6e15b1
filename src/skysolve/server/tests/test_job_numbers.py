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
            assert "--max-pixels" in r.json()["errormessage"]


def test_nova_paths_with_a_trailing_slash_and_named_object_lists(tmp_path):
    """N.I.N.A. posts to /api/login/ (a redirect of a POST is not followed); nova's lists
    of named objects answer in its shapes (empty: skysolve's catalogs have no names)."""
    import json

    client = _offline_app(tmp_path)
    r = client.post("/api/login/", data={"request-json": json.dumps({"apikey": "k"})},
                    follow_redirects=False)
    assert r.status_code == 200 and r.json()["status"] == "success"
    form = {"request-json": json.dumps({"session": r.json()["session"], "x": [1.0, 2.0],
                                        "y": [3.0, 4.0], "image_width": 10,
                                        "image_height": 10})}
    job = client.post("/api/url_upload/", data=form, follow_redirects=False).json()["subid"]
    for name, key in (("annotations", "annotations"), ("objects_in_field", "objects_in_field"),
                      ("tags", "tags"), ("machine_tags", "tags")):
        assert client.get(f"/api/jobs/{job}/{name}").json() == {key: []}
        assert client.get(f"/api/jobs/{job}/{name}/").json() == {key: []}
        assert client.get(f"/api/jobs/{job + 1}/{name}").status_code == 404
    assert client.get(f"/api/jobs/{job}/", follow_redirects=False).status_code == 200
    assert client.get(f"/annotated_display/{job + 1}").status_code == 404


def test_a_png_over_pillows_bomb_limit_is_413_and_messages_name_no_server_path(
        tmp_path, monkeypatch):
    """An image Pillow refuses as a decompression bomb is over the pixel limit (413, as
    documented), not "not a readable image" (415); refusals say "the file", not the
    server's folder or its internal names (upload.bin, input.png)."""
    import io
    import json

    import numpy as np
    from PIL import Image

    client = _offline_app(tmp_path)
    buf = io.BytesIO()
    Image.fromarray(np.zeros((30, 40), np.uint8)).save(buf, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses over 200 pixels
    form = {"request-json": json.dumps({})}
    r = client.post("/api/upload", data=form, files={"file": ("a.png", buf.getvalue())})
    assert r.status_code == 413, r.text
    assert "decompression-bomb" in r.json()["errormessage"]
    assert "--max-pixels" not in r.json()["errormessage"]  # (which sets another limit)
    r2 = client.post("/api/upload", data=form, files={"file": ("a.tiff", b"")})
    assert r2.status_code == 415, r2.text
    assert "the file is empty" in r2.json()["errormessage"]
    for text in (r.text, r2.text):
        assert str(tmp_path) not in text and "upload.bin" not in text
        assert "input.png" not in text and "jobs/" not in text
