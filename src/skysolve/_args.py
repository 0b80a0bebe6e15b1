"""Argument checks: one set of rules for every public entry point.

Every check takes the value and the argument's name and returns the value in
its canonical type, or raises an error that names the argument and says what
was expected. The rules:

=====================  ==============================================================
kind                   accepted
=====================  ==============================================================
number                 ``int``, ``float``, numpy integer and floating scalars and other
                       real numbers (``numbers.Real``), 0-d numeric arrays; finite
                       unless ``allow_inf``; within the bounds given
count                  a *whole* number: an integer, or a number with an integral
                       value such as ``5.0``; at least ``minimum`` (0 by default)
size                   a count of at least 1 (image sizes in pixels)
fraction               a number in [0, 1] (ends open or closed as asked)
flag                   ``bool`` or ``numpy.bool_``
choice                 one of a fixed set of strings (case-insensitive)
vector                 an array of a fixed length of finite numbers
bounds                 a ``(low, high)`` pair of positive numbers with ``low <= high``
sky position           ``(ra_deg, dec_deg)`` or a scalar astropy ``SkyCoord`` (converted
                       to ICRS); Dec in [-90, 90], RA wrapped into [0, 360)
path                   ``str`` or ``os.PathLike``
=====================  ==============================================================

Refusals follow Python's own convention. A value of the wrong *type* -- a
string, a bool where a number is expected, ``None`` where a value is
required, a sequence where a scalar is expected, a fractional number where a
whole one is (``2.5`` for a count) -- raises
:class:`~skysolve.errors.InvalidTypeError` (a ``TypeError``). A value of the
right type but outside what is allowed -- negative, NaN or infinite, out of
range, of the wrong length -- raises
:class:`~skysolve.errors.InvalidArgumentError` (a ``ValueError``). ``None``
passes through unchanged where ``allow_none=True``.

May import: ``errors``.
"""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "number",
    "positive",
    "nonnegative",
    "fraction",
    "count",
    "size",
    "flag",
    "choice",
    "vector",
    "bounds",
    "sky_position",
    "path",
    "image_size",
    "image_shape",
    "exclusive",
]


def _real(value: Any, name: str) -> float:
    """``value`` as a float if it is a real number (bools and strings refused)."""
    if type(value) is float:  # the common cases first (ABC checks cost ~0.5 us each)
        return value
    if type(value) is int:
        return float(value)
    if hasattr(value, "unit") and hasattr(value, "to_value"):  # an astropy Quantity
        raise InvalidTypeError(f"{name} must be a plain number in the unit its name says, "
                               f"got the Quantity {value!s} (use .to_value(unit))")
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a number, got {_describe(value)}")
    return float(value)


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool | np.bool_ | str | numbers.Number):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _required(value: Any, name: str) -> None:
    if value is None:
        raise InvalidTypeError(f"{name} is required, got None")


def number(value: Any, name: str, *, minimum: float | None = None,
           maximum: float | None = None, open_min: bool = False, open_max: bool = False,
           allow_none: bool = False, allow_inf: bool = False) -> float | None:
    """A real number, optionally within ``[minimum, maximum]`` (ends open if asked).

    Parameters
    ----------
    value : Any
    name : str
        The argument's name, for messages.
    minimum, maximum : float, optional
        Bounds; ``open_min``/``open_max`` exclude them.
    allow_none : bool
        Let ``None`` through (returned as ``None``).
    allow_inf : bool
        Accept infinities (NaN is never accepted).
    """
    if value is None and allow_none:
        return None
    _required(value, name)
    v = _real(value, name)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}")
    low_bad = minimum is not None and (v < minimum or (open_min and v == minimum))
    high_bad = maximum is not None and (v > maximum or (open_max and v == maximum))
    if low_bad or high_bad:
        raise InvalidArgumentError(f"{name} must be {_range(minimum, maximum, open_min, open_max)}"
                                   f", got {value!r}")
    return v


def _range(lo: float | None, hi: float | None, open_lo: bool, open_hi: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
    if lo is not None:
        return f"{'>' if open_lo else '>='} {lo:g}"
    return f"{'<' if open_hi else '<='} {hi:g}"


def positive(value: Any, name: str, *, maximum: float | None = None, open_max: bool = False,
             allow_none: bool = False, allow_inf: bool = False) -> float | None:
    """A number > 0 (and below ``maximum`` when given)."""
    return number(value, name, minimum=0.0, open_min=True, maximum=maximum, open_max=open_max,
                  allow_none=allow_none, allow_inf=allow_inf)


def nonnegative(value: Any, name: str, *, maximum: float | None = None,
                allow_none: bool = False, allow_inf: bool = False) -> float | None:
    """A number >= 0."""
    return number(value, name, minimum=0.0, maximum=maximum, allow_none=allow_none,
                  allow_inf=allow_inf)


def fraction(value: Any, name: str, *, open_min: bool = False, open_max: bool = False,
             allow_none: bool = False) -> float | None:
    """A number in [0, 1] (ends open when asked)."""
    return number(value, name, minimum=0.0, maximum=1.0, open_min=open_min, open_max=open_max,
                  allow_none=allow_none)


def count(value: Any, name: str, *, minimum: int = 0, maximum: int | None = None,
          allow_none: bool = False) -> int | None:
    """A whole number (``5`` or ``5.0``, not ``5.5``) in ``[minimum, maximum]``."""
    if value is None and allow_none:
        return None
    _required(value, name)
    if type(value) is int:  # the common case, without the ABC checks
        n = value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_):
        n = int(value)
    else:
        v = _real(value, name)
        if not math.isfinite(v):
            raise InvalidArgumentError(f"{name} must be a finite whole number, got {value!r}")
        if v != int(v):
            raise InvalidTypeError(f"{name} must be a whole number, got {value!r}")
        n = int(v)
    if n < minimum or (maximum is not None and n > maximum):
        raise InvalidArgumentError(
            f"{name} must be a whole number {_range(minimum, maximum, False, False)}, got {n}")
    return n


def size(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """A positive whole number of pixels."""
    if type(value) is int or type(value) is float:  # (without the ABC checks)
        zero = value == 0
    else:
        zero = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_) \
            and value == 0
    if zero:
        raise InvalidArgumentError(f"{name} must be non-zero (a whole number >= 1), got 0")
    return count(value, name, minimum=1, allow_none=allow_none)


def flag(value: Any, name: str) -> bool:
    """A ``bool`` (or ``numpy.bool_``)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise InvalidTypeError(f"{name} must be True or False, got {_describe(value)}")


def choice(value: Any, name: str, choices: Sequence[str], *,
           allow_none: bool = False) -> str | None:
    """One of ``choices`` (compared case-insensitively; returned as listed)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be one of {list(choices)}, got {_describe(value)}")
    for c in choices:
        if value.lower() == c.lower():
            return c
    raise InvalidArgumentError(f"{name} must be one of {list(choices)}, got {value!r}")


def vector(value: Any, name: str, length: int, *, what: str = "numbers",
           allow_none: bool = False) -> NDArray[np.float64] | None:
    """``length`` finite numbers as a new float64 array."""
    if value is None and allow_none:
        return None
    _required(value, name)
    if isinstance(value, str | bytes):
        raise InvalidTypeError(f"{name} must be {length} {what}, got {_describe(value)}")
    try:
        v = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(f"{name} must be {length} {what}, got {_describe(value)}") \
            from None
    if v.shape != (length,) or not np.all(np.isfinite(v)):
        got = repr(value) if v.size <= 8 else f"shape {v.shape}"
        raise InvalidArgumentError(f"{name} must be {length} finite {what}, got {got}")
    return v


def bounds(value: Any, name: str, *, maximum: float | None = None,
           allow_none: bool = False) -> tuple[float, float] | None:
    """A ``(low, high)`` range of positive numbers, ``low <= high`` (at most ``maximum``)."""
    if value is None and allow_none:
        return None
    _required(value, name)
    try:
        ndim = np.ndim(value)
    except (TypeError, ValueError):  # e.g. a pair of Quantities: refused by item below
        ndim = 1 if isinstance(value, Sequence) else -1
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray) \
            or ndim != 1:
        raise InvalidTypeError(f"{name} must be a (low, high) pair, got {_describe(value)}")
    if len(value) != 2:
        raise InvalidArgumentError(f"{name} must be a (low, high) pair, got {len(value)} values")
    lo = positive(value[0], f"{name}[0] (low)", maximum=maximum)
    hi = positive(value[1], f"{name}[1] (high)", maximum=maximum)
    if lo > hi:
        raise InvalidArgumentError(f"{name} must have low <= high, got ({lo:g}, {hi:g})")
    return lo, hi


def _pair(value: Any, name: str) -> Sequence | np.ndarray:
    """``value`` as a sequence of two values for :func:`sky_position` (astropy angles in
    degrees), or the error naming ``name``."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        # (ra, dec) as astropy angles or Quantities: degrees
        value = [v.to_value("deg") if hasattr(v, "unit") and hasattr(v, "to_value")
                 and getattr(v.unit, "physical_type", None) == "angle" else v
                 for v in value]
    try:
        ndim = np.ndim(value)
    except (TypeError, ValueError):  # e.g. Quantities that are not angles
        ndim = -1
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray) \
            or ndim != 1:
        raise InvalidTypeError(f"{name} must be (ra_deg, dec_deg) or a SkyCoord, got "
                               f"{_describe(value)}")
    if len(value) != 2:
        raise InvalidArgumentError(f"{name} must be (ra_deg, dec_deg), got {len(value)} "
                                   "values")
    return value


def sky_position(value: Any, name: str, *, allow_none: bool = False) -> tuple[float, float] | None:
    """``(ra_deg, dec_deg)`` from a pair of numbers or a scalar astropy ``SkyCoord``.

    A ``SkyCoord`` in any frame is converted to ICRS. RA is wrapped into [0, 360).
    """
    if value is None and allow_none:
        return None
    _required(value, name)
    # the common case: two plain numbers (a tracker's hint, new every frame, so checked
    # every call), straight to the numbers' checks (the others' cost ~4 us a solve)
    plain = type(value) is tuple and len(value) == 2 \
        and type(value[0]) in (float, int) and type(value[1]) in (float, int)
    # an astropy SkyCoord or coordinate frame (Galactic(l=, b=)), in any representation
    if not plain and hasattr(value, "transform_to") and hasattr(value, "isscalar") \
            and hasattr(value, "represent_as"):
        kind = type(value).__name__
        if not value.isscalar:
            raise InvalidArgumentError(f"{name} must be one position, got a {kind} of "
                                       f"shape {value.shape}")
        from astropy.coordinates import ICRS, UnitSphericalRepresentation

        try:
            icrs = value.transform_to(ICRS())
        except Exception as exc:  # noqa: BLE001 - astropy raises Attribute-, Value-, ...Error
            frame = getattr(getattr(value, "frame", value), "name", kind)
            raise InvalidArgumentError(
                f"{name}: the {kind} in frame {frame!r} does not convert to ICRS ({exc}); "
                "give the position in ICRS, or with what its frame needs (an AltAz "
                "frame's obstime and location)") from None
        # (not .ra/.dec: a SkyCoord in cartesian representation has neither)
        sph = icrs.represent_as(UnitSphericalRepresentation)
        ra, dec = float(sph.lon.deg), float(sph.lat.deg)
    else:
        if not plain:
            value = _pair(value, name)
        ra = number(value[0], f"{name}[0] (RA, degrees)")
        dec = number(value[1], f"{name}[1] (Dec, degrees)", minimum=-90.0, maximum=90.0)
    return ra % 360.0, dec


def path(value: Any, name: str = "path") -> Path:
    """A file-system path (``str`` or ``os.PathLike``)."""
    if not isinstance(value, str | os.PathLike):
        raise InvalidTypeError(f"{name} must be a str or os.PathLike, got {_describe(value)}")
    return Path(value)


def image_shape(value: Any, name: str = "image_shape", *,
                allow_none: bool = False) -> tuple[int, int] | None:
    """numpy's ``(height, width)`` of an image, as two positive whole numbers."""
    if value is None and allow_none:
        return None
    return image_size(None, None, value)[::-1]


#: The checks above that also let ``None`` through, counts from 1, the open unit interval.
optional_number = functools.partial(number, allow_none=True)
optional_positive = functools.partial(positive, allow_none=True)
optional_nonnegative = functools.partial(nonnegative, allow_none=True)
optional_count = functools.partial(count, allow_none=True)
positive_count = functools.partial(count, minimum=1)
optional_size = functools.partial(size, allow_none=True)
optional_shape = functools.partial(image_shape, allow_none=True)
open_fraction = functools.partial(fraction, open_min=True, open_max=True)
optional_bounds = functools.partial(bounds, allow_none=True)
optional_sky_position = functools.partial(sky_position, allow_none=True)


def exclusive(name_a: str, a: Any, name_b: str, b: Any) -> None:
    """Refuse two alternative arguments given together."""
    if a is not None and b is not None:
        raise InvalidArgumentError(f"give {name_a} or {name_b}, not both")


def image_size(image_width: Any, image_height: Any, image_shape: Any,
               cameras: Sequence[Any] = ()) -> tuple[int, int]:
    """Resolve ``(width, height)`` from the ways a caller may give an image size.

    Parameters
    ----------
    image_width, image_height : int or None
    image_shape : (height, width) or None
        numpy's order; must agree with ``image_width`` / ``image_height``.
    cameras : sequence of CameraModel
        Camera models in use; their sizes must agree with each other and with
        any size given explicitly, and supply it when none is.

    Returns
    -------
    (int, int)
        Width and height in pixels (height defaults to width when only a
        width is known).

    Raises
    ------
    InvalidArgumentError
        When sizes disagree, are not positive whole numbers, or none is known.
    InvalidTypeError
        When a size is not a number, or ``image_shape`` not a pair.
    """
    w = h = None
    if image_shape is not None:
        if type(image_shape) is not tuple and (isinstance(image_shape, str | bytes) or not
                                               isinstance(image_shape, Sequence | np.ndarray)):
            raise InvalidTypeError(
                f"image_shape must be (height, width), got {_describe(image_shape)}")
        if len(image_shape) != 2:
            raise InvalidArgumentError(f"image_shape must be (height, width), got {image_shape!r}")
        h = size(image_shape[0], "image_shape[0] (height)")
        w = size(image_shape[1], "image_shape[1] (width)")
    if image_width is not None:
        iw = size(image_width, "image_width")
        if w is not None and iw != w:
            raise InvalidArgumentError(f"image_width={iw} disagrees with image_shape={image_shape}")
        w = iw
    if image_height is not None:
        ih = size(image_height, "image_height")
        if h is not None and ih != h:
            raise InvalidArgumentError(
                f"image_height={ih} disagrees with image_shape={image_shape}")
        h = ih
    for cam in cameras:
        if w is not None and w != cam.image_width:
            raise InvalidArgumentError(
                f"image width {w} disagrees with the camera model's image_width "
                f"{cam.image_width}")
        if h is not None and h != cam.image_height:
            raise InvalidArgumentError(
                f"image height {h} disagrees with the camera model's image_height "
                f"{cam.image_height}")
        w, h = cam.image_width, cam.image_height
    if w is None:
        raise InvalidArgumentError(
            "the image size is unknown: pass image_shape=(height, width), image_width, or "
            "camera_model")
    return w, (w if h is None else h)
