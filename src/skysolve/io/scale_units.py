"""astrometry.net's image-scale hints as skysolve's scale ranges.

``solve-field`` (``--scale-low/--scale-high/--scale-units``) and nova's web API
(``scale_lower``/``scale_upper``/``scale_units``) give the scale as a range in one of
these units, with their short forms:

==================================  ==================================================
``degwidth`` (``degw``, ``dw``)      the image's width, degrees
``arcminwidth`` (``amw``, ``aw``)    the image's width, arcminutes
``arcsecperpix`` (``app``)           the pixel scale, arcseconds a pixel
``focalmm``                          the 35-mm equivalent focal length (a 36 mm width)
==================================  ==================================================

skysolve takes a width as ``fov_range_deg`` and a pixel scale as
``pixel_scale_range_arcsec``. A range narrower than :data:`MIN_SCALE_HALF_WIDTH`
either side of its middle is widened to it.

``solve-field --guess-scale`` guesses the pixel scale from the image's FITS header
(:func:`guess_scale`): a pixel scale keyword, a WCS's CD matrix or CDELT, or the
focal length and pixel size that capture programs record (``FOCALLEN`` in mm and
``XPIXSZ`` in micrometres, binning included as MaxIm DL and ASCOM define it).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MIN_SCALE_HALF_WIDTH", "UNITS", "guess_scale", "scale_range"]

#: The narrowest scale range searched, as a fraction either side of its middle: a
#: candidate pattern's implied scale is off by its centroids' noise over its size, so a
#: scale given as one value (``-L 1.5 -H 1.5``, as scripts pass a known scale) found no
#: candidate at all.
MIN_SCALE_HALF_WIDTH = 0.01

#: Each unit's name and short forms.
UNITS = {"degwidth": ("degwidth", "degw", "dw"), "arcminwidth": ("arcminwidth", "amw", "aw"),
         "arcsecperpix": ("arcsecperpix", "app"), "focalmm": ("focalmm",)}


def scale_range(lo: float | None, hi: float | None, units: str | None,
                projection: str = "pinhole") -> dict[str, Any]:
    """The solve's scale hint for the range ``lo``-``hi`` in ``units``.

    Parameters
    ----------
    lo, hi : float or None
        The range's ends (None: open at that end).
    units : str or None
        One of :data:`UNITS`' names or short forms (case ignored); None is ``degwidth``.
    projection : str
        The lens projection a ``focalmm`` range is converted through.

    Returns
    -------
    dict
        ``{"fov_range_deg": (lo, hi)}``, ``{"pixel_scale_range_arcsec": (lo, hi)}``, or
        ``{}`` when the range bounds nothing.

    Raises
    ------
    ValueError
        ``lo`` above ``hi``, or unknown ``units`` (the caller names its argument).
    """
    unit = (units or "degwidth").lower()
    name = next((k for k, forms in UNITS.items() if unit in forms), None)
    if name is None:
        raise ValueError(f"unknown scale units {str(units)[:40]!r}: use degwidth, "
                         "arcminwidth, arcsecperpix or focalmm")
    # (as solve-field: an end of 0 or less is no end, -L 0 -H 0 no scale at all)
    lo = lo if lo is not None and lo > 0 else 0.0
    hi = hi if hi is not None and hi > 0 else math.inf
    if lo <= 0 and not math.isfinite(hi):
        return {}
    if lo > hi:
        raise ValueError(f"the scale's lower end {lo:g} is above its upper end {hi:g}")
    middle = 0.5 * (lo + hi)
    if hi - middle < MIN_SCALE_HALF_WIDTH * middle:
        lo, hi = middle * (1.0 - MIN_SCALE_HALF_WIDTH), middle * (1.0 + MIN_SCALE_HALF_WIDTH)
    if name == "arcsecperpix":
        return {"pixel_scale_range_arcsec": _held(lo, hi, 1e-6, 3.6e5, units)}
    if name == "focalmm":
        from ..camera.projection import code_of, fov_from_focal

        code = code_of(projection)
        lo, hi = (math.degrees(fov_from_focal(f, 36.0, code)) if f > 0 else 360.0
                  for f in (hi, lo))
    elif name == "arcminwidth":
        lo, hi = lo / 60.0, hi / 60.0
    return {"fov_range_deg": _held(lo, hi, 1e-6, 360.0, units)}


def _held(lo: float, hi: float, least: float, most: float, units: str | None
          ) -> tuple[float, float]:
    """``(lo, hi)`` held to ``[least, most]``; a ValueError when nothing of the range is
    left (the scale of no image: a field over 360 deg wide, a pixel of over 100 deg)."""
    lo, hi = max(lo, least), min(hi, most)
    if not lo <= hi:  # (equal at 360 deg: a fisheye's focal length, its whole field)
        raise ValueError(f"the scale range holds no image's scale (in {units or 'degwidth'}: "
                         f"fields up to 360 deg wide, pixels up to 3.6e5 arcsec)")
    return lo, hi


#: Header keywords holding a pixel scale in arcseconds a pixel, in the order taken.
SCALE_KEYWORDS = ("SECPIX", "SECPIX1", "PIXSCALE", "PIXSCAL1", "XPIXSCAL", "SCALE")
#: Arcseconds a radian over a micrometre per millimetre: a pixel of ``p`` um behind a
#: lens of ``f`` mm spans ``206.265 p / f`` arcseconds.
_ARCSEC_PER_UM_PER_MM = 206.264806


def guess_scale(header: Any) -> tuple[float, str] | None:
    """The pixel scale a FITS header states or implies, arcseconds a pixel, and the
    keywords it came from; None when it holds none.

    Parameters
    ----------
    header : mapping
        An ``astropy.io.fits.Header`` (or any mapping of keywords to values).

    Returns
    -------
    (float, str) or None
        The scale (positive and finite) and e.g. ``"FOCALLEN, XPIXSZ"``.
    """
    def number(key: str) -> float | None:
        try:
            v = float(header.get(key))
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) and v > 0 else None

    for key in SCALE_KEYWORDS:
        v = number(key)
        if v is not None:
            return v, key
    cd = [header.get(f"CD{i}_{j}") for i in (1, 2) for j in (1, 2)]
    try:
        det = abs(float(cd[0] or 0.0) * float(cd[3] or 0.0) - float(cd[1] or 0.0)
                  * float(cd[2] or 0.0))
    except (TypeError, ValueError):
        det = 0.0
    if math.isfinite(det) and det > 0:
        return 3600.0 * math.sqrt(det), "CD1_1, CD1_2, CD2_1, CD2_2"
    try:
        d1, d2 = abs(float(header.get("CDELT1"))), abs(float(header.get("CDELT2")))
    except (TypeError, ValueError):
        d1 = d2 = 0.0
    if math.isfinite(d1 * d2) and d1 * d2 > 0:
        return 3600.0 * math.sqrt(d1 * d2), "CDELT1, CDELT2"
    focal, pixel = number("FOCALLEN"), number("XPIXSZ") or number("PIXSIZE1")
    if focal is not None and pixel is not None:
        key = "XPIXSZ" if number("XPIXSZ") else "PIXSIZE1"
        return _ARCSEC_PER_UM_PER_MM * pixel / focal, f"FOCALLEN, {key}"
    return None
