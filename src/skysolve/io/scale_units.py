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
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["MIN_SCALE_HALF_WIDTH", "UNITS", "scale_range"]

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
    lo = lo if lo is not None else 0.0
    hi = hi if hi is not None else math.inf
    if lo <= 0 and not math.isfinite(hi):
        return {}
    if lo > hi:
        raise ValueError(f"the scale's lower end {lo:g} is above its upper end {hi:g}")
    middle = 0.5 * (lo + hi)
    if hi - middle < MIN_SCALE_HALF_WIDTH * middle:
        lo, hi = middle * (1.0 - MIN_SCALE_HALF_WIDTH), middle * (1.0 + MIN_SCALE_HALF_WIDTH)
    if name == "arcsecperpix":
        return {"pixel_scale_range_arcsec": (max(lo, 1e-6), min(hi, 3.6e5))}
    if name == "focalmm":
        from ..camera.projection import code_of, fov_from_focal

        code = code_of(projection)
        lo, hi = (math.degrees(fov_from_focal(f, 36.0, code)) if f > 0 else 360.0
                  for f in (hi, lo))
    elif name == "arcminwidth":
        lo, hi = lo / 60.0, hi / 60.0
    return {"fov_range_deg": (max(lo, 1e-6), min(hi, 360.0))}
