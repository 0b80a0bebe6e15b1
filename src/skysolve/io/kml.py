"""A solved image as a KMZ ground overlay on the sky, for Google Earth's sky mode.

Google Earth shows the sky when a KML document's root element carries
``hint="target=sky"``; its longitude is then right ascension less 180 deg and its latitude
declination. A ``GroundOverlay`` drapes an image over a ``LatLonBox`` (north, south,
east, west) whose image rows run along the parallels and columns along the meridians:
a plate carrée grid, regular in RA and Dec. The image is resampled onto such a grid
through its WCS (distortion included), bilinearly, with the pixels outside the image
transparent, so that an overlay of any orientation and distortion lies on its stars.
A field over a celestial pole spans every longitude, up to the pole.

The KMZ is a ZIP archive of the document (``doc.kml``, first, as viewers read the first
KML file) and the overlay (``overlay.png``, grey and alpha).
"""

from __future__ import annotations

import io
import math
import warnings
import zipfile
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InvalidArgumentError
from ..geometry import angle_between, radec_to_vector

__all__ = ["sky_overlay_kmz"]

#: Points along each edge of the image whose sky positions bound the overlay.
_EDGE_POINTS = 64


def _footprint(wcs: Any, width: int, height: int) -> tuple[float, float, float, float]:
    """``(west, east, south, north)`` of the image (``width`` x ``height`` pixels) in
    degrees of RA and Dec: RA unwrapped about the image centre's (``east`` may pass 360 or
    ``west`` fall below 0); a pole inside the image spans 360 deg of RA up to it."""
    t = np.linspace(0.0, 1.0, _EDGE_POINTS)
    xs = np.concatenate([t * (width - 1), np.full(_EDGE_POINTS, width - 1.0),
                         t[::-1] * (width - 1), np.zeros(_EDGE_POINTS)])
    ys = np.concatenate([np.zeros(_EDGE_POINTS), t * (height - 1),
                         np.full(_EDGE_POINTS, height - 1.0), t[::-1] * (height - 1)])
    ra, dec = wcs.pixel_to_world_values(xs, ys)
    ra0, _ = wcs.pixel_to_world_values((width - 1) / 2.0, (height - 1) / 2.0)
    ra0 = float(ra0)
    d = (np.asarray(ra) - ra0 + 180.0) % 360.0 - 180.0
    west, east = ra0 + float(d.min()), ra0 + float(d.max())
    south, north = float(np.min(dec)), float(np.max(dec))
    for pole in (90.0, -90.0):
        px, py = _pixels(wcs, np.array(ra0), np.array(pole))
        if -0.5 <= px <= width - 0.5 and -0.5 <= py <= height - 0.5:
            west, east = 0.0, 360.0  # (longitude -180 to 180)
            north, south = (pole, south) if pole > 0 else (north, pole)
    return west, east, south, north


def _pixel_scale_deg(wcs: Any, width: int, height: int) -> float:
    """Degrees per image pixel at the image centre (the geometric mean of the axes)."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ra, dec = wcs.pixel_to_world_values(np.array([cx, cx + 1.0, cx]),
                                        np.array([cy, cy, cy + 1.0]))
    v = radec_to_vector(ra, dec)
    steps = np.degrees(angle_between(v[0], v[1:]))
    return float(math.sqrt(steps[0] * steps[1]))


def sky_overlay_kmz(image: ArrayLike, wcs: Any, width: int, height: int, *,
                    name: str = "skysolve field", max_side: int = 2048) -> bytes:
    """A KMZ that lays ``image`` on the sky where its WCS puts it (see the module notes).

    Parameters
    ----------
    image : array_like, shape (h, w)
        The picture to drape, grey, its values taken as 0-255 (a preview of the solved
        image); it may be the image scaled (``h, w`` in proportion to ``height, width``).
    wcs : astropy.wcs.WCS
        The solved image's celestial WCS, in 0-based pixels of the full
        ``width`` x ``height`` image (SIP distortion honoured).
    width, height : int
        The full image's size the WCS belongs to (pixels).
    name : str, optional
        The overlay's name in the viewer.
    max_side : int, optional
        The resampled overlay's longest side (pixels), at most.

    Returns
    -------
    bytes
        The KMZ archive.

    Raises
    ------
    InvalidArgumentError
        ``image`` is not 2-D, or ``width``/``height``/``max_side`` are not positive.
    """
    img = np.asarray(image)
    if img.ndim != 2 or img.size == 0:
        raise InvalidArgumentError(f"image must be a 2-D array, got shape {img.shape}")
    if int(width) < 1 or int(height) < 1:
        raise InvalidArgumentError(f"width and height must be positive, got {width}x{height}")
    if int(max_side) < 2:
        raise InvalidArgumentError(f"max_side must be at least 2, got {max_side}")
    from PIL import Image
    from scipy.ndimage import map_coordinates

    width, height = int(width), int(height)
    west, east, south, north = _footprint(wcs, width, height)
    scale = _pixel_scale_deg(wcs, width, height)
    mid = math.radians(0.5 * (south + north))
    # (a parallel's degree of RA is cos(dec) of a degree on the sky: as many columns as
    # the image has pixels across it at the middle parallel, and at least two)
    cols = max(2, int(math.ceil((east - west) * max(math.cos(mid), 1e-3) / scale)))
    rows = max(2, int(math.ceil((north - south) / scale)))
    shrink = min(1.0, max_side / max(cols, rows))
    cols, rows = max(2, int(cols * shrink)), max(2, int(rows * shrink))
    ra = west + (np.arange(cols) + 0.5) * (east - west) / cols
    dec = north - (np.arange(rows) + 0.5) * (north - south) / rows
    rr, dd = np.meshgrid(ra % 360.0, dec)
    x, y = _pixels(wcs, rr, dd)
    inside = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= width - 0.5) \
        & (y >= -0.5) & (y <= height - 0.5)
    if inside.any():
        # (a distortion's inverse, iterated far off the image, may land inside it: a
        # pixel is the grid point's only where it maps back there, within half a pixel)
        back_ra, back_dec = wcs.pixel_to_world_values(x[inside], y[inside])
        miss = np.degrees(angle_between(radec_to_vector(rr[inside], dd[inside]),
                                        radec_to_vector(back_ra, back_dec)))
        inside[inside] = miss <= 0.5 * scale
    # full-image pixels -> the given array's (a scaled preview's) pixels
    sx, sy = img.shape[1] / width, img.shape[0] / height
    px = np.where(inside, (x + 0.5) * sx - 0.5, 0.0)
    py = np.where(inside, (y + 0.5) * sy - 0.5, 0.0)
    grey = map_coordinates(img.astype(np.float32), [py, px], order=1, mode="nearest")
    grey_alpha = np.zeros((rows, cols, 2), dtype=np.uint8)  # (Pillow's mode "LA")
    grey_alpha[..., 0] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    grey_alpha[..., 1] = np.where(inside, 255, 0)
    png = io.BytesIO()
    Image.fromarray(grey_alpha).save(png, format="PNG")
    lon = [_longitude(west), _longitude(east)]
    if east - west >= 360.0 - 1e-9:
        lon = [-180.0, 180.0]
    doc = _document(escape(name), north, south, lon[1], lon[0])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("doc.kml", doc)
        z.writestr("overlay.png", png.getvalue())
    return out.getvalue()


def _pixels(wcs: Any, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixels of sky positions through the WCS, distortion included; NaN where
    its inverse does not converge (grid points far off the image)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # (astropy warns of the points off the image)
        x, y = wcs.world_to_pixel_values(ra, dec)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _longitude(ra_deg: float) -> float:
    """Google Earth's sky longitude of a right ascension: RA - 180, in [-180, 180)."""
    return ra_deg % 360.0 - 180.0


def _document(name: str, north: float, south: float, east: float, west: float) -> str:
    """The KML document of the overlay (``name`` already escaped)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2" hint="target=sky">\n'
        "<Document>\n"
        f"  <name>{name}</name>\n"
        "  <GroundOverlay>\n"
        f"    <name>{name}</name>\n"
        "    <Icon><href>overlay.png</href></Icon>\n"
        "    <LatLonBox>\n"
        f"      <north>{north:.8f}</north>\n"
        f"      <south>{south:.8f}</south>\n"
        f"      <east>{east:.8f}</east>\n"
        f"      <west>{west:.8f}</west>\n"
        "    </LatLonBox>\n"
        "  </GroundOverlay>\n"
        "</Document>\n"
        "</kml>\n")
