"""nova's clients against a live server: astrometry.net's client.py (every call a POST of
its request-json; --upload-xy on /api/upload) and N.I.N.A. (a JPEG upload, whose
``calibration.orientation`` it takes for the frame's position angle).

Known answers: nova's behaviour as its API documents and its clients rely on -- its
status views answer POST, a source list may come to /api/upload, and a raster image's
orientation is given for the image as shown (first row at the top), ``(180 - o) mod 360``
of the FITS image's.
"""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
import pytest

import skysolve
from skysolve.tests.realframes import ALT40, DATA

httpx = pytest.importorskip("httpx")


def _solved(http, subid: int) -> int:
    for _ in range(600):
        # (client.py polls with POSTs of its request-json: they were 405)
        sub = http.post(f"/api/submissions/{subid}",
                        data={"request-json": json.dumps({})}).json()
        jobs = [j for j in sub.get("jobs", []) if j is not None]
        if jobs:
            status = http.post(f"/api/jobs/{jobs[0]}").json()["status"]
            if status in ("success", "failure"):
                assert status == "success"
                return jobs[0]
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def _upload(http, session, name: str, content: bytes) -> int:
    rj = {"session": session, "scale_units": "degwidth", "scale_lower": 10,
          "scale_upper": 13}
    r = http.post("/api/upload", data={"request-json": json.dumps(rj)},
                  files={"file": (name, content, "application/octet-stream")})
    assert r.status_code == 200, r.text
    return r.json()["subid"]


def test_a_raster_images_orientation_is_for_the_image_as_shown(http, session):
    from astropy.io import fits
    from PIL import Image

    pixels = skysolve.read_image(DATA / ALT40)
    buf = io.BytesIO()
    fits.PrimaryHDU(pixels).writeto(buf)
    eight = (np.clip(pixels.astype(float) / np.percentile(pixels, 99.9), 0, 1) * 255)
    jpeg = io.BytesIO()
    Image.fromarray(eight.astype(np.uint8)).save(jpeg, format="JPEG", quality=95)
    cal = {}
    for name, content in (("frame.fits", buf.getvalue()), ("frame.jpg", jpeg.getvalue())):
        job = _solved(http, _upload(http, session, name, content))
        cal[name] = http.post(f"/api/jobs/{job}/calibration").json()
    fits_o, jpeg_o = cal["frame.fits"]["orientation"], cal["frame.jpg"]["orientation"]
    assert (180.0 - fits_o) % 360.0 == pytest.approx(jpeg_o, abs=0.01)
    for c in cal.values():
        assert c["width_arcsec"] == pytest.approx(1024 * c["pixscale"])
        assert c["height_arcsec"] == pytest.approx(768 * c["pixscale"])


def test_a_source_list_may_come_to_the_upload_route(http, session):
    # (client.py --upload-xy: refused with 'needs an image in the form field file')
    found = skysolve.extract_centroids(skysolve.read_image(DATA / ALT40))
    xy = found.as_array()[:, :2] + (512.0 + 0.5, 384.0 + 0.5)  # 1-based FITS pixels
    rj = {"session": session, "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
          "image_width": 1024, "image_height": 768, "scale_units": "degwidth",
          "scale_lower": 10, "scale_upper": 13}
    r = http.post("/api/upload", data={"request-json": json.dumps(rj)})
    assert r.status_code == 200, r.text
    job = _solved(http, r.json()["subid"])
    for route in ("info", "tags", "machine_tags", "objects_in_field", "annotations"):
        assert http.post(f"/api/jobs/{job}/{route}").status_code == 200, route


def test_an_xy_list_may_be_uploaded_as_a_fits_table(http, session, tmp_path):
    """nova takes a FITS table of sources (solve-field's .axy/.xyls) as an upload: it was
    refused as an image that does not decode (415). The real frame's sources, 1-based,
    with its size in IMAGEW/IMAGEH (or, without them, sent as image_width/height), solve
    to the frame's reference pointing; a table without a size or sources is refused with
    the reason, and so is an image FITS's refusal unchanged."""
    from astropy.io import fits

    from skysolve.io.astrometry_files import write_axy
    from skysolve.tests.realframes import REFERENCE

    found = skysolve.extract_centroids(skysolve.read_image(DATA / ALT40))
    xy = found.as_array()[:, :2] + (512.0 + 0.5, 384.0 + 0.5)  # 1-based FITS pixels
    write_axy(tmp_path / "frame.axy", xy, found.as_array()[:, 2], 0.0, 1024, 768)
    axy = (tmp_path / "frame.axy").read_bytes()
    table = fits.BinTableHDU.from_columns([fits.Column("X", "D", array=xy[:, 0]),
                                           fits.Column("Y", "D", array=xy[:, 1])])
    bare = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(bare)
    rj = {"session": session, "scale_units": "degwidth", "scale_lower": 10, "scale_upper": 13}
    for name, content, size in (("frame.axy", axy, {}),
                                ("frame.xyls", bare.getvalue(),
                                 {"image_width": 1024, "image_height": 768})):
        r = http.post("/api/upload", data={"request-json": json.dumps({**rj, **size})},
                      files={"file": (name, content, "application/octet-stream")})
        assert r.status_code == 200, r.text
        assert r.json()["hash"] == hashlib.sha1(content).hexdigest()
        job = _solved(http, r.json()["subid"])
        cal = http.get(f"/api/jobs/{job}/calibration").json()
        assert cal["ra"] == pytest.approx(REFERENCE[ALT40][0], abs=0.02)
        assert cal["dec"] == pytest.approx(REFERENCE[ALT40][1], abs=0.02)
        assert cal["width_arcsec"] == pytest.approx(1024 * cal["pixscale"])
    r = http.post("/api/upload", data={"request-json": json.dumps(rj)},
                  files={"file": ("frame.xyls", bare.getvalue(), "application/octet-stream")})
    assert r.status_code == 400 and "image_width" in r.json()["errormessage"]
    empty = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("X", "D", array=[]), fits.Column("Y", "D", array=[])])]).writeto(empty)
    r = http.post("/api/upload", data={"request-json": json.dumps({**rj, "image_width": 10,
                                                                   "image_height": 10})},
                  files={"file": ("empty.xyls", empty.getvalue(), "application/octet-stream")})
    assert r.status_code == 400 and "source list" in r.json()["errormessage"]
    blank = io.BytesIO()
    fits.PrimaryHDU().writeto(blank)  # (no image, no table)
    r = http.post("/api/upload", data={"request-json": json.dumps(rj)},
                  files={"file": ("blank.fits", blank.getvalue(), "application/octet-stream")})
    assert r.status_code == 415


def _clientpy_body(boundary: str, request_json: str, name: str, content: bytes) -> bytes:
    """The multipart body astrometry.net's client.py builds by hand: bare LF line ends
    about its boundary lines, CRLF in the parts' headers."""
    pre = (f"--{boundary}\nContent-Type: text/plain\r\nMIME-Version: 1.0\r\n"
           f'Content-disposition: form-data; name="request-json"\r\n\r\n{request_json}\n'
           f"--{boundary}\nContent-Type: application/octet-stream\r\nMIME-Version: 1.0\r\n"
           f'Content-disposition: form-data; name="file"; filename="{name}"\r\n\r\n')
    return pre.encode() + content + f"\n--{boundary}--\n".encode()


def test_clientpy_uploads_are_taken(http, session):
    # (its bare LF line ends: 400 "Invalid multipart data" for every upload)
    boundary = "===============1234567890123456789=="
    headers = {"Content-Type": f'multipart/form-data; boundary="{boundary}"'}
    rj = json.dumps({"session": session, "scale_units": "degwidth", "scale_lower": 10,
                     "scale_upper": 13})
    frame = (DATA / ALT40).read_bytes()
    r = http.post("/api/upload", content=_clientpy_body(boundary, rj, "frame.tiff", frame),
                  headers=headers)
    assert r.status_code == 200, r.text
    # the file's bytes as sent
    assert r.json()["hash"] == hashlib.sha1(frame).hexdigest()
    job = _solved(http, r.json()["subid"])
    cal = http.get(f"/api/jobs/{job}/calibration").json()
    assert cal["ra"] == pytest.approx(230.67, abs=0.01)
    assert http.get(f"/api/jobs/{job}/info").json()["original_filename"] == "frame.tiff"
    # still held to the body limit (the shared server's 2 MB)
    big = _clientpy_body(boundary, rj, "big.fits", bytes(3_000_000))
    assert http.post("/api/upload", content=big, headers=headers).status_code == 413
