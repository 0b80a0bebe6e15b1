"""astrometry.net's web API (nova): request-json → skysolve's hints, and its answers' shapes.

A nova client posts form fields, one of them ``request-json``: a JSON object of
settings (`astrometry.net's API documentation
<https://astrometry.net/doc/net/api.html>`_). The settings skysolve acts on:

==========================================  ==========================================
nova setting                                skysolve
==========================================  ==========================================
``scale_units`` (``degwidth``,              ``fov_range_deg`` (image width) or
``arcminwidth``, ``arcsecperpix``,          ``pixel_scale_range_arcsec``
``focalmm``; short forms such as ``dw``)
``scale_type`` ``ul``: ``scale_lower``,     the range's ends (at least 1 % either side
``scale_upper``; ``ev``: ``scale_est``,      of its middle: :mod:`skysolve.io.scale_units`)
``scale_err`` (percent)
``center_ra``, ``center_dec``, ``radius``   ``position_hint``, ``position_radius_deg``
``parity`` 0 / 1 / 2                        ``parity_flip`` True / False / either
``downsample_factor``                       the image binned for extraction only
``invert``                                  the stars are dark on a light background
``objs``, ``depth``, ``nsigma``, ``sigma``,  skysolve-field's ``--objs``, ``--depth``,
``crpix_x``, ``crpix_y``, ``sky_circle``   ``--nsigma``, ``--sigma``, ``--crpix-x``,
(skysolve's own, not nova's)                ``--crpix-y``, ``--sky-circle``
                                            (:func:`field_options`)
``x``, ``y``, ``image_width``,              the sources themselves (``url_upload``)
``image_height``
``tweak_order``, ``crpix_center``,          accepted (the WCS is TAN, SIP only for a
``positional_error``, ``publicly_visible``,  fitted lens term, with its reference pixel
                                            at the image centre unless ``crpix_x``,
                                            ``crpix_y`` move it)
``allow_*``, ``use_sextractor``, ...
==========================================  ==========================================

A setting with the wrong type or out of range is a :class:`BadRequest` naming it.
Answers follow nova's shapes: ``{"status": "success", ...}``, or
``{"status": "error", "errormessage": "..."}`` for a refused request.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["BadRequest", "parse_request_json", "solve_hints", "field_options", "source_list",
           "table_sources", "calibration", "submission", "job_status"]

#: Settings accepted without effect on skysolve's solve.
ACCEPTED = {"session", "publicly_visible", "allow_commercial_use", "allow_modifications",
            "tweak_order", "crpix_center", "positional_error", "use_sextractor", "album",
            "invert", "scale_type", "image_url", "url", "x", "y", "image_width",
            "image_height", "apikey", "scale_units", "scale_lower", "scale_upper",
            "scale_est", "scale_err", "center_ra", "center_dec", "radius", "parity",
            "downsample_factor", "objs", "depth", "nsigma", "sigma", "crpix_x", "crpix_y",
            "sky_circle"}
#: Most sources a source list may hold.
MAX_SOURCES = 100_000


class BadRequest(ValueError):
    """A request refused with a 4xx status and ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_request_json(text: Any) -> dict[str, Any]:
    """The ``request-json`` form field as a dict, or :class:`BadRequest`."""
    if text is None:
        return {}
    if not isinstance(text, str):
        raise BadRequest("request-json must be a form field holding JSON text")
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"request-json is not valid JSON: {exc}") from None
    except RecursionError:  # (arrays nested thousands deep: a 500 before)
        raise BadRequest("request-json is nested too deeply") from None
    if not isinstance(value, dict):
        raise BadRequest("request-json must be a JSON object")
    return value


def _number(settings: dict[str, Any], name: str, lo: float | None = None,
            hi: float | None = None, *, whole: bool = False) -> float | None:
    value = settings.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{name} must be a number, got {json.dumps(value)[:40]}")
    try:
        number = float(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not math.isfinite(number) or (lo is not None and number < lo) or \
            (hi is not None and number > hi):
        raise BadRequest(f"{name} = {number:g} is out of range [{lo}, {hi}]")
    if whole and number != int(number):
        raise BadRequest(f"{name} must be a whole number, got {number:g}")
    return number


def _scale(settings: dict[str, Any]) -> dict[str, Any]:
    """nova's scale settings as skysolve's scale range
    (:func:`~skysolve.io.scale_units.scale_range`); ``ev``: an estimate and its error in
    percent (20 when not given)."""
    from ..io.scale_units import scale_range

    units = settings.get("scale_units")
    if units is not None and not isinstance(units, str):  # (a list was a 500)
        raise BadRequest(f"scale_units must be text such as \"degwidth\", got "
                         f"{json.dumps(units)[:40]}")
    est, err = _number(settings, "scale_est", 0.0), _number(settings, "scale_err", 0.0, 100.0)
    lo, hi = _number(settings, "scale_lower", 0.0), _number(settings, "scale_upper", 0.0)
    if settings.get("scale_type") == "ev" or (lo is None and hi is None and est is not None):
        if est is None:
            return {}
        frac = (err if err is not None else 20.0) / 100.0
        lo, hi = est * (1.0 - frac), est * (1.0 + frac)
    try:
        return scale_range(lo, hi, units)
    except ValueError as exc:
        raise BadRequest(f"scale_lower/scale_upper/scale_units: {exc}") from exc


def solve_hints(settings: dict[str, Any], time_limit_s: float) -> dict[str, Any]:
    """skysolve's solve parameters from nova's settings (see the table above)."""
    kw = _scale(settings)
    ra, dec = _number(settings, "center_ra", 0.0, 360.0), _number(settings, "center_dec",
                                                                  -90.0, 90.0)
    if (ra is None) != (dec is None):
        raise BadRequest("center_ra and center_dec go together")
    if ra is not None:
        kw["position_hint"] = (ra % 360.0, dec)
        radius = _number(settings, "radius", 0.0)
        if radius is not None:
            kw["position_radius_deg"] = min(max(radius, 1e-6), 180.0)
    parity = _number(settings, "parity", 0.0, 2.0, whole=True)
    if parity is not None and parity != 2:
        kw["parity_flip"] = parity == 0  # nova's 0 is solve-field's "pos": det(CD) < 0
    kw["solve_timeout_ms"] = 1000.0 * time_limit_s
    return kw


def downsample(settings: dict[str, Any]) -> int | None:
    value = _number(settings, "downsample_factor", 1.0, 64.0, whole=True)
    return None if value is None else int(value)


def field_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The job's source and reference-pixel settings: ``invert`` (a boolean), and
    skysolve-field's ``objs``, ``depth``, ``nsigma``, ``sigma``, ``crpix_x``, ``crpix_y``
    (numbers, or text as on its command line: ``depth`` ``"1-50"``), checked by the one
    definition both share (:func:`skysolve.fields.source_options`,
    :func:`~skysolve.fields.reference_pixel`); and ``sky_circle`` (``--sky-circle``:
    ``"auto"``, ``"none"``, a radius or ``[x, y, radius]`` in the full image's centred
    pixels, or that text: ``"0,0,500"``). The default finds an all-sky lens's image
    circle and drops the sources beyond it; ``"none"`` lets a client keep the whole frame
    when that finding goes wrong. Returns only what was given:
    ``{"invert": True, "extraction": {...}, "depth": N, "crpix": [x, y]}``."""
    from ..errors import SkysolveError
    from ..fields import reference_pixel, source_options

    out: dict[str, Any] = {}
    invert = settings.get("invert")
    if invert not in (None, True, False):
        raise BadRequest(f"invert must be true or false, got {json.dumps(invert)[:40]}")
    if invert:
        out["invert"] = True
    try:
        sources = source_options(*(settings.get(k) for k in ("objs", "depth", "nsigma",
                                                               "sigma")))
        crpix = reference_pixel(settings.get("crpix_x"), settings.get("crpix_y"))
        if settings.get("sky_circle") is not None:
            sources["sky_circle"] = _sky_circle(settings["sky_circle"])
    except SkysolveError as exc:
        raise BadRequest(str(exc)) from None
    if "depth" in sources:
        out["depth"] = sources.pop("depth")
    if sources:
        out["extraction"] = sources
    if crpix is not None:
        out["crpix"] = list(crpix)
    return out


def _sky_circle(value: Any) -> Any:
    """``sky_circle``'s setting for the extraction (JSON: a list, not a tuple)."""
    from ..fields import sky_circle_option

    value = sky_circle_option(value, "sky_circle")
    return list(value) if isinstance(value, tuple) else value


def source_list(settings: dict[str, Any]) -> dict[str, Any]:
    """The ``x``, ``y``, ``image_width``, ``image_height`` of a source-list submission."""
    x, y = settings.get("x"), settings.get("y")
    if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y):
        raise BadRequest("x and y must be lists of pixel positions of equal length")
    if not 0 < len(x) <= MAX_SOURCES:
        raise BadRequest(f"a source list holds 1 to {MAX_SOURCES} sources, got {len(x)}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
               for v in (*x, *y)):
        raise BadRequest("x and y must hold finite numbers only")
    width = _number(settings, "image_width", 1.0, 1e6, whole=True)
    height = _number(settings, "image_height", 1.0, 1e6, whole=True)
    if width is None or height is None:
        raise BadRequest("a source list needs image_width and image_height")
    return {"x": [float(v) for v in x], "y": [float(v) for v in y],
            "image_width": int(width), "image_height": int(height)}


def table_sources(x: Any, y: Any, header: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """:func:`source_list`'s fields for an uploaded x/y table (a FITS table of 1-based ``X``
    and ``Y``, brightest first: solve-field's ``.axy``/``.xyls``): its rows without finite
    positions dropped, its image size from ``image_width``/``image_height``, else the
    ``IMAGEW``/``IMAGEH`` of its ``header``."""
    import numpy as np

    xy = np.column_stack([np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)])
    xy = xy[np.isfinite(xy).all(axis=1)]
    size = {}
    for name, key in (("image_width", "IMAGEW"), ("image_height", "IMAGEH")):
        told = settings.get(name, header.get(key))
        if told is None:
            raise BadRequest(f"the x/y table has no {key} in its header: send {name}")
        size[name] = _number({name: told}, name, 1.0, 1e6, whole=True)
    return source_list({"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), **size})


def calibration(fig: dict[str, Any]) -> dict[str, Any]:
    """nova's ``/api/jobs/ID/calibration``: degrees, arcseconds per pixel, and parity
    1.0 for an image whose ``det(CD) > 0`` (solve-field's ``neg``), -1.0 otherwise.

    ``orientation`` is the WCS's (up, +y, degrees E of N) for a FITS image or a source
    list; for a raster image (JPEG, PNG, ...) nova gives it for the image as shown, whose
    first row is at the top: ``(180 - orientation) mod 360`` (N.I.N.A. uploads JPEG and
    reads it as the frame's position angle). ``width_arcsec``/``height_arcsec``: the
    image's sides at the pixel scale."""
    orientation = fig["orientation"]
    if fig.get("raster_input"):
        orientation = (180.0 - orientation) % 360.0
    out = {"ra": fig["ra"], "dec": fig["dec"], "radius": fig["radius_deg"],
           "pixscale": fig["pixscale_arcsec"], "orientation": orientation,
           "parity": 1.0 if fig["parity"] == "neg" else -1.0}
    if "width_arcsec" in fig:  # (jobs solved before the service wrote them have none)
        out["width_arcsec"], out["height_arcsec"] = fig["width_arcsec"], fig["height_arcsec"]
    return out


def _when(t: float | None) -> str | None:
    if t is None:
        return None
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def job_status(state: str) -> str:
    """nova's job status: ``solving`` until ``success`` or ``failure``."""
    return state if state in ("success", "failure") else "solving"


def submission(row: Any) -> dict[str, Any]:
    """nova's ``/api/submissions/ID`` (one job per submission, the same number)."""
    out = {"user": 1, "processing_started": _when(row["started"] or row["created"]),
           "processing_finished": _when(row["finished"]), "user_images": [row["id"]],
           "images": [row["id"]], "jobs": [row["id"]], "job_calibrations": []}
    if row["state"] == "success":
        out["job_calibrations"] = [[row["id"], row["id"]]]
    return out
