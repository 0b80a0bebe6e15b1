"""Tests of skysolve.io.kml: a solved image laid on the sky as a KMZ ground overlay."""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from astropy.wcs import WCS, Sip
from PIL import Image

from skysolve.errors import InvalidArgumentError
from skysolve.io.kml import sky_overlay_kmz

KML = {"k": "http://www.opengis.net/kml/2.2"}
W, H = 400, 300
#: Bright 3x3 dots (x, y; 0-based pixels) on a dark image.
DOTS = [(50, 40), (300, 250), (200, 150), (380, 20), (10, 290)]


def tan_wcs(ra: float, dec: float, roll: float, scale: float = 0.01,
            sip: bool = False) -> WCS:
    """A gnomonic WCS of a W x H image centred on (ra, dec), turned by ``roll`` deg;
    with ``sip``, a distortion of several pixels at the corners."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"] if sip else ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [W / 2 + 0.5, H / 2 + 0.5]
    c, s = np.cos(np.radians(roll)), np.sin(np.radians(roll))
    w.wcs.cd = scale * np.array([[-c, s], [s, c]])
    if sip:
        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        a[2, 0], a[1, 1], b[0, 2] = 2e-4, -1e-4, 1.5e-4  # (~6 px at the corners)
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    return w


def dotted() -> np.ndarray:
    img = np.full((H, W), 20, np.uint8)
    for x, y in DOTS:
        img[y - 1:y + 2, x - 1:x + 2] = 250
    return img


def unpack(kmz: bytes) -> tuple[ET.Element, dict[str, float], np.ndarray]:
    z = zipfile.ZipFile(io.BytesIO(kmz))
    assert z.namelist() == ["doc.kml", "overlay.png"]
    root = ET.fromstring(z.read("doc.kml"))
    box = {k: float(root.find(f".//k:LatLonBox/k:{k}", KML).text)
           for k in ("north", "south", "east", "west")}
    return root, box, np.asarray(Image.open(io.BytesIO(z.read("overlay.png"))))


def at(overlay: np.ndarray, box: dict[str, float], ra: float, dec: float) -> tuple[int, int]:
    """The overlay pixel (row, column) of a sky position: Google Earth's sky longitude
    is RA - 180, the box's texture runs west to east and north to south."""
    rows, cols = overlay.shape[:2]
    span = (box["east"] - box["west"]) % 360.0 or 360.0
    lon = ra % 360.0 - 180.0
    col = ((lon - box["west"]) % 360.0) / span * cols
    row = (box["north"] - dec) / (box["north"] - box["south"]) * rows
    return int(row), int(col)


@pytest.mark.parametrize("ra, dec, roll, sip", [
    (100.0, 20.0, 30.0, False),   # turned
    (0.5, -10.0, 0.0, False),     # across RA 0 (longitude -180/180)
    (359.0, 45.0, 120.0, True),   # across RA 0, distorted
    (45.0, 88.0, 10.0, False),    # beside the pole, 200 deg of RA
    (45.0, 89.2, 10.0, False),    # over the pole: every longitude
    (210.0, -89.0, 75.0, True),   # over the south pole, distorted
])
def test_the_overlay_lays_each_pixel_where_the_wcs_puts_it(ra, dec, roll, sip):
    wcs = tan_wcs(ra, dec, roll, sip=sip)
    root, box, overlay = unpack(sky_overlay_kmz(dotted(), wcs, W, H, name="M31 <test>"))
    assert root.attrib["hint"] == "target=sky"
    assert root.find(".//k:GroundOverlay/k:name", KML).text == "M31 <test>"
    assert root.find(".//k:Icon/k:href", KML).text == "overlay.png"
    assert -90.0 <= box["south"] < box["north"] <= 90.0
    assert all(-180.0 <= box[k] <= 180.0 for k in ("east", "west"))
    assert overlay.ndim == 3 and overlay.shape[2] == 2  # grey and alpha
    for x, y in DOTS:
        r, c = at(overlay, box, *map(float, wcs.pixel_to_world_values(x, y)))
        patch = overlay[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2]
        assert patch[..., 0].max() >= 200 and patch[..., 1].max() == 255, (x, y)
    # the dark sky between the dots is dark, and beyond the image's edge transparent
    r, c = at(overlay, box, *map(float, wcs.pixel_to_world_values(120, 100)))
    assert overlay[r, c, 0] < 40 and overlay[r, c, 1] == 255
    ra_out, dec_out = map(float, wcs.pixel_to_world_values(W + 30, H / 2))
    r, c = at(overlay, box, ra_out, dec_out)
    if 0 <= r < overlay.shape[0] and 0 <= c < overlay.shape[1]:
        assert overlay[r, c, 1] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a distortion's inverse off the image)
        px, py = wcs.world_to_pixel_values(0.0, 90.0 if dec > 0 else -90.0)
    over_pole = bool(-0.5 <= px <= W - 0.5 and -0.5 <= py <= H - 0.5)
    assert (box["north"] == 90.0 or box["south"] == -90.0) == over_pole
    assert ((box["west"], box["east"]) == (-180.0, 180.0)) == over_pole


def test_a_scaled_preview_is_laid_as_the_full_image():
    """The picture may be the solved image scaled down (the service's preview): its
    pixels are read where the full image's WCS puts the full image's."""
    wcs = tan_wcs(100.0, 20.0, 30.0)
    full = dotted()
    small = np.asarray(Image.fromarray(full).resize((W // 2, H // 2), Image.BILINEAR))
    _, box, overlay = unpack(sky_overlay_kmz(small, wcs, W, H))
    for x, y in DOTS:
        r, c = at(overlay, box, *map(float, wcs.pixel_to_world_values(x, y)))
        assert overlay[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2, 0].max() >= 60, (x, y)


def test_the_overlay_keeps_the_images_resolution_up_to_max_side():
    wcs = tan_wcs(100.0, 0.0, 0.0)
    _, _, overlay = unpack(sky_overlay_kmz(dotted(), wcs, W, H))
    assert abs(overlay.shape[0] - H) <= 2 and abs(overlay.shape[1] - W) <= 2
    _, _, overlay = unpack(sky_overlay_kmz(dotted(), wcs, W, H, max_side=100))
    assert max(overlay.shape[:2]) <= 100


@pytest.mark.parametrize("kwargs, name", [
    (dict(image=np.zeros(5)), "image"), (dict(width=0), "width"),
    (dict(max_side=1), "max_side")])
def test_bad_arguments_are_refused_by_name(kwargs, name):
    args = dict(image=dotted(), wcs=tan_wcs(1.0, 2.0, 3.0), width=W, height=H)
    args.update(kwargs)
    with pytest.raises(InvalidArgumentError, match=name):
        sky_overlay_kmz(**args)
