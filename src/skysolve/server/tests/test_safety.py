"""Bad requests against a live server: each a clear 4xx with a JSON error, the server
healthy after every one of them."""

from __future__ import annotations

import json

import pytest

from skysolve.tests.realframes import ALT40, DATA

from .conftest import API_KEY

httpx = pytest.importorskip("httpx")

FRAME = (DATA / ALT40).read_bytes()


def _upload(http, session, content, settings=None, name="frame.tiff"):
    rj = {"session": session, **(settings or {})}
    return http.post("/api/upload", data={"request-json": json.dumps(rj)},
                     files={"file": (name, content, "application/octet-stream")})


def _refused(r, status, words):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "error" and words in body["errormessage"], body
    assert "Traceback" not in r.text


def _healthy(http):
    assert http.get("/api/health").json()["status"] == "ok"


UPLOADS = [
    ("truncated TIFF", FRAME[:5000], {}, 415, "not a readable"),
    ("text, named .fits", b"hello, I am not an image\n" * 40, {}, 415, "not a readable"),
    ("empty file", b"", {}, 415, "not a readable"),
    ("FITS header only", b"SIMPLE  =                    T" + b" " * 50, {}, 415, "not a readable"),
    ("parity out of range", FRAME, {"parity": 7}, 400, "parity"),
    ("scale not a number", FRAME, {"scale_lower": "wide"}, 400, "scale_lower"),
    ("centre without dec", FRAME, {"center_ra": 10.0}, 400, "center_dec"),
    ("inverted scale", FRAME, {"scale_lower": 20, "scale_upper": 10}, 400, "scale_lower"),
    ("unknown scale units", FRAME, {"scale_units": "furlongs", "scale_lower": 1}, 400,
     "scale_units"),
]


@pytest.mark.parametrize("what,content,settings,status,words", UPLOADS,
                         ids=[u[0] for u in UPLOADS])
def test_bad_uploads(http, session, what, content, settings, status, words):
    _refused(_upload(http, session, content, settings, name="x.fits"), status, words)
    _healthy(http)


def test_requests_that_are_not_what_the_api_takes(http, session):
    _refused(http.post("/api/upload", data={"request-json": "{not json"}), 400, "not valid JSON")
    _refused(http.post("/api/upload", data={"request-json": "[1, 2]"}), 400, "JSON object")
    _refused(http.post("/api/upload", content=b"raw", headers={"content-type": "text/plain"}),
             415, "form")
    _refused(http.post("/api/upload", data={"request-json": json.dumps({"session": session})}),
             400, "'file'")
    _refused(http.post("/api/login", data={"request-json": json.dumps({"apikey": "wrong"})}),
             403, "bad apikey")
    _refused(_upload(http, "made-up-session", FRAME), 403, "session")
    _refused(http.post("/api/url_upload", data={"request-json": json.dumps(
        {"session": session, "url": "http://example.com/sky.jpg"})}), 400, "does not fetch")
    _refused(http.post("/api/url_upload", data={"request-json": json.dumps(
        {"session": session, "x": [1, 2], "y": [1], "image_width": 10, "image_height": 10})}),
        400, "equal length")
    _refused(http.get("/api/upload"), 405, "Method Not Allowed")
    _healthy(http)


def test_an_oversized_body_is_refused_before_it_is_read(http, session):
    big = b"\0" * (3 * 1000 * 1000)  # the shared server allows 2 MB
    _refused(_upload(http, session, big), 413, "over the limit")

    def chunks():  # no Content-Length: the limit holds while the parts stream in
        yield (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.fits"'
               b"\r\nContent-Type: application/octet-stream\r\n\r\n")
        for _ in range(30):
            yield b"\0" * 100_000
        yield b"\r\n--xyz--\r\n"

    r = http.post("/api/upload", content=chunks(),
                  headers={"content-type": "multipart/form-data; boundary=xyz"})
    _refused(r, 413, "over the limit")
    _healthy(http)


@pytest.mark.parametrize("path", [
    "/api/jobs/999999", "/api/submissions/999999", "/api/jobs/999999/calibration",
    "/wcs_file/999999", "/api/jobs/abc", "/wcs_file/..%2f..%2fjobs.sqlite",
    "/wcs_file/1/../../jobs.sqlite", "/static/..%2f..%2fapp.py", "/static/../app.py",
    "/new_fits_file/%2e%2e", "/etc/passwd", "/corr_file/-1",
])
def test_unknown_jobs_and_traversal_attempts(http, path):
    r = http.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text[:200])
    assert r.json()["status"] == "error"
    assert b"SQLite" not in r.content and b"import" not in r.content
    _healthy(http)


def test_a_job_without_a_solution_has_no_files(http, session):
    """An image of noise is accepted, fails, and has no .wcs to download."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 40, (200, 300), dtype=np.uint8)).save(
        buf, format="PNG")
    r = _upload(http, session, buf.getvalue(), name="noise.png")
    assert r.status_code == 200
    job = r.json()["subid"]
    import time

    while http.get(f"/api/jobs/{job}").json()["status"] == "solving":
        time.sleep(0.2)
    assert http.get(f"/api/jobs/{job}").json()["status"] == "failure"
    _refused(http.get(f"/wcs_file/{job}"), 404, "no wcs file")
    _refused(http.get(f"/kml_file/{job}"), 404, "no kml file")
    _refused(http.get(f"/api/jobs/{job}/calibration"), 404, "no calibration")
    assert http.get(f"/api/jobs/{job}/info").json()["status"] == "failure"
    _healthy(http)


def test_downloads_of_a_frame_named_in_any_script(http, session):
    """A file named in Cyrillic, Greek or CJK downloads (the name is not Latin-1, which HTTP
    headers are: the plain filename is ASCII, the whole name RFC 6266's filename*) --
    before, every download of such a job was a 500, the page's preview too."""
    from urllib.parse import unquote

    name = "М31 Ωmega 星野.tiff"
    r = _upload(http, session, FRAME, {"scale_units": "degwidth", "scale_lower": 10,
                                       "scale_upper": 13}, name=name)
    assert r.status_code == 200, r.text
    job = r.json()["subid"]
    import time

    while http.get(f"/api/jobs/{job}").json()["status"] == "solving":
        time.sleep(0.2)
    assert http.get(f"/api/jobs/{job}/info").json()["original_filename"] == name
    for route, suffix in (("wcs_file", ".wcs"), ("preview", ".png"), ("json_file", ".json"),
                          ("annotated_display", ".png"), ("kml_file", ".kmz")):
        r = http.get(f"/{route}/{job}")
        assert r.status_code == 200, (route, r.text[:200])
        header = r.headers["content-disposition"]
        assert header.isascii() and 'filename="_31__mega___' in header
        assert unquote(header.split("filename*=UTF-8''")[1]) == "М31 Ωmega 星野" + suffix


def test_a_content_type_in_capitals_is_a_form(http):
    """Media types are case-insensitive (RFC 9110): a client writing them in capitals
    sends a form all the same."""
    r = http.post("/api/login", content="request-json=" + json.dumps({"apikey": API_KEY}),
                  headers={"content-type": "Application/X-WWW-Form-Urlencoded"})
    assert r.status_code == 200 and r.json()["status"] == "success", r.text


def test_a_client_gone_mid_upload_leaves_no_error_on_the_console(server, http):
    """A capture program cancelled while its frame was on the way: nothing is accepted,
    and the server's console shows no traceback for it (before: an ERROR and a
    ClientDisconnect traceback each time)."""
    import socket
    import time

    log_start = server.log.stat().st_size
    jobs_before = sum(http.get("/api/health").json()["jobs"].values())
    head = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.tiff\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n" + FRAME[:50_000])
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/"
                      b"form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n" + head)
            time.sleep(0.3)
    time.sleep(1.0)
    with open(server.log, "rb") as log:
        log.seek(log_start)
        printed = log.read().decode(errors="replace")
    assert "Traceback" not in printed and "ERROR" not in printed, printed[-1500:]
    assert sum(http.get("/api/health").json()["jobs"].values()) == jobs_before


def test_a_webp_upload_solves_and_a_cut_one_is_refused(http, session):
    """All-sky cameras save WebP: an upload of one was refused as "not a readable" image.
    A real frame stretched to 8 bits as colour lossy WebP (quality 90) solves within the
    18" its reference pointing is known to; the file cut short is a 415 naming WebP."""
    import io
    import time

    import numpy as np
    from PIL import Image

    from skysolve.geometry import angle_between, radec_to_vector
    from skysolve.io.images import read_image
    from skysolve.tests.realframes import REFERENCE

    u8 = np.clip((read_image(DATA / ALT40).astype(np.float64) - 2800.0) / 16.0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(np.repeat(u8.astype(np.uint8)[..., None], 3, axis=-1)).save(
        buf, format="WEBP", quality=90)
    webp = buf.getvalue()
    r = _upload(http, session, webp, {"scale_units": "degwidth", "scale_lower": 10,
                                      "scale_upper": 13}, name="allsky.webp")
    assert r.status_code == 200, r.text
    job = r.json()["subid"]
    while http.get(f"/api/jobs/{job}").json()["status"] == "solving":
        time.sleep(0.2)
    assert http.get(f"/api/jobs/{job}").json()["status"] == "success"
    cal = http.get(f"/api/jobs/{job}/calibration").json()
    sep = angle_between(radec_to_vector(cal["ra"], cal["dec"]), radec_to_vector(*REFERENCE[ALT40]))
    assert np.degrees(sep) * 3600 < 18.0
    _refused(_upload(http, session, webp[:5000], name="cut.webp"), 415,
             "the upload is not a readable FITS, PNG, JPEG, TIFF, BMP, GIF, WebP or PNM image")
    _healthy(http)
