"""The entry point of a plate solve: centroids and options in, a result or a failure out.

:func:`solve` takes a database, the centroids and a
:class:`~skysolve.solver.options.SolveOptions`; it checks the centroids,
prepares the backend (outside the clock), sets up the two sides of the solve
(:mod:`~skysolve.solver.frame`) and the field-of-view range, then runs
tracking (with an attitude hint) and the lost-in-space search.
:func:`solve_from_centroids` is the same with the options as keyword
arguments.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _args
from .._options import with_options
from ..camera import projection as _proj
from ..centroids import (
    ORIGINS,
    ExtractionResult,
    as_table,
    centred_positions,
    centroids_to_array,
    is_table,
    table_to_array,
)
from ..errors import InvalidArgumentError, warn_caller
from . import backends
from .backends import reference as _reference
from .frame import CatalogView, Frame, Hypothesis, make_frame
from .generation import fov_bounds_text
from .lost_in_space import Cone, all_combos, answer, search
from .options import SolveOptions
from .refinement import ARCSEC_PER_RAD, MAX_SCALE_CHANGE
from .result import SolveFailure, SolveResult
from .tracking import HINT_REACH, beyond_image, hint_offset, hint_reach, track, track_scales

if TYPE_CHECKING:  # pragma: no cover
    from ..camera.model import CameraModel
    from .database import PatternDatabase

__all__ = ["solve", "solve_from_centroids", "SOLVE_DOC"]

#: A pinhole search reaching fields this wide (deg) that found nothing may have been
#: given a fisheye frame: its failure says how to name the projection.
_FISHEYE_HINT_DEG = 90.0
#: Told no projection, such a search goes on as an equidistant fisheye's over fields
#: from this wide (deg; see :func:`_fisheye_next`): 50-60 deg equidistant and equisolid
#: lenses, whose pinhole search found no pattern in half their fields, solve 8 of 8
#: from 40 (a 30-180 deg database, Hipparcos or Gaia); a list told no scale that
#: matches nothing gives up in as long as from 60.
_FISHEYE_FROM_DEG = 40.0
#: ... as these projections' in turn (told a scale, only the first): told nothing, a 150
#: deg equisolid lens solved 3 of 6 fields with the equidistant search alone, 6 with
#: the equisolid one after it; 100-150 deg stereographic lenses 12 of 24 with those
#: two, 24 with the stereographic one too. A list that matches nothing gave up on the
#: default database in 1.08 s with the first, 1.20-1.33 s with two, 1.60 s with all
#: three (CPU time, 10 random 30-point lists).
_FISHEYE_SEARCHES = ("equidistant", "equisolid", "stereographic")
#: A pinhole search told its scale that found nothing on a field this wide or wider
#: (deg, the told range's geometric centre) and no camera model goes on with the
#: centroids undistorted by each of :data:`GUESSED_LENS_TERMS` in turn (see
#: :func:`_lens_term_searches`) ...
_LENS_TERMS_FROM_DEG = 25.0
#: ... radial terms ``k1`` over the image's half-diagonal (a
#: :class:`~skysolve.camera.distortion.RadialDistortion` of that scale: the corners moved
#: in by 3 % for -0.03, a barrel lens; out for a pincushion one). Wide rectilinear lenses
#: depart from the pinhole by 1-5 % at their corners; the ratios of a pattern across such
#: a field move by up to a few per cent, far beyond the database's tolerance, and only
#: patterns near the middle still match. On two sets of 90 simulated fields of 40, 65 and
#: 90 deg (4032 x 3024 px, 3,000 Gaia centroids, 30 % dropped, 30 % false, 0.5 px of
#: noise, terms -0.08 to +0.06, a 30-120 deg Gaia database, the estimate within 10 %),
#: with the radial fit's start from the middle (:func:`.radialterm._clipped_fit`), the
#: fields solved right (boresight within 20", ``k1`` within a tenth) went from 53 and 58
#: to 87 and 89, wrong ones from 0 and 1 to none.
GUESSED_LENS_TERMS = (-0.03, 0.03, -0.06)
#: ... each search's passes (but the deep ones) on this many pattern stars at most: with
#: 24 (the default ``pattern_checking_stars``) the three searches made giving up on 30 deg
#: fields told their scale take 4x as long on the default 5-30 deg database (150 -> 600
#: ms), with 14 1.6x (240 ms), and they solved the same fields (87 and 89 of the 90 above).
_LENS_TERMS_STARS = 14
#: The widest horizontal field (deg) a pinhole search without any scale reaches, once the
#: database's own range (and a little beyond) found nothing: ultra-wide rectilinear lenses
#: (a 14 mm lens on a full-frame sensor is 104 deg wide, 10 mm 122 deg) make the
#: database's patterns in parts of the field as a wide field does, and a landscape
#: frame of the Milky Way is often solved with no scale told. Searched second, so that
#: no answer within the database's range changes (giving up on 30-60 random centroids
#: against the default database: 0.39-0.46 s of CPU time before, 1.04-1.09 s now),
#: without the deep passes.
BLIND_WIDEST_FOV_DEG = 125.0
#: ... and no wider than this many times the database's largest field: a narrow
#: database's patterns are rare in a field many times wider (sub-windows of fields 2-3
#: times a 2-6 deg database's largest solved 10 of 10, 6 times 5-6, 10 times 2), and a
#: 1-5 deg database searched to 125 deg took 32-47 s to give up, against 22-27 s.
BLIND_WIDEST_FACTOR = 5.0
_FAILURE_MESSAGES = {"too_few": "fewer than 4 well-separated centroids",
                     "no_match": "no pattern verified against the catalog"}


#: How far beyond the declared image's edge a centroid may lie: pixels, plus a fraction of
#: the half-width (half-height). Centroids measured on an image lie within it, but
#: centroids undistorted before the solve (``Centroid.undistort``, tetra3rs's way) move
#: out by the lens's barrel distortion, a few percent at the edge. A transposed
#: ``image_shape`` puts stars 25 % (5:4 frames), 33 % (4:3) or 50 % (3:2) beyond the
#: declared half-width, and 0-based pixels taken as centred ones 100 %.
_EDGE_PX, _EDGE_FRACTION = 5.0, 0.15


_LARGEST = sys.float_info.max


def _extent_limits(width: int, height: int) -> np.ndarray:
    """The largest ``|x|``, ``|y|`` (centred px) of a centroid of a ``width x height`` image."""
    half = 0.5 * np.array([width, height], dtype=np.float64)
    return half * (1.0 + _EDGE_FRACTION) + _EDGE_PX


def _check_extent(xy: np.ndarray, width: int, height: int, given: str | Callable[[], str],
                  height_given: bool = True, backend: Any = None) -> None:
    """Refuse centroids outside the ``width x height`` image (``given``: what declared its
    size, or a function that words it) by more than a star at its border would be, and
    NaN positions; without ``height_given`` (the height defaulted to the width), in x
    only. ``backend``: the solve's (its ``extent``), else the reference's."""
    if not len(xy):
        return
    # the usual case, every centroid inside, in scalars (numpy's per-call overhead on the
    # two limits cost more than the test); NaN, infinity and any centroid outside fail it
    # (no height: the largest float, which an infinite y exceeds). The largest offsets come
    # from the backend's kernel where it takes the array as given (a solve's first numpy
    # reduction fetched ~800 cache lines of code on a cold solve)
    if backend is None or xy.dtype != np.float64 or not xy.flags.c_contiguous:
        backend = _reference
    rx, ry = backend.extent(xy)
    ly = 0.5 * height * (1.0 + _EDGE_FRACTION) + _EDGE_PX if height_given else _LARGEST
    if rx <= 0.5 * width * (1.0 + _EDGE_FRACTION) + _EDGE_PX and ry <= ly:
        return
    # (first: an infinite y lies within the unlimited height of a frame given its width)
    if not np.isfinite(xy).all():
        raise InvalidArgumentError("centroids contains non-finite x/y positions")
    limits = _extent_limits(width, height)
    if not height_given:  # tetra3rs's square default: a portrait frame is no mistake
        limits[1] = np.inf
    reach = np.abs(xy).max(axis=0)
    if (reach <= limits).all():
        return
    out = np.abs(xy) / limits
    i = int(np.argmax(out.max(axis=1)))
    given = given if isinstance(given, str) else given()
    message = (f"{int((out > 1).any(axis=1).sum())} of {len(xy)} centroids lie outside the "
               f"{width}x{height} image of {given}, e.g. #{i} at ({xy[i, 0]:.1f}, "
               f"{xy[i, 1]:.1f}), while its centred pixels span ±{0.5 * width:g} in x and "
               f"±{0.5 * height:g} in y.")
    if (reach <= _extent_limits(height, width)).all():
        message += (f" They fit a {height}x{width} image: is image_shape, numpy's "
                    "(height, width), transposed?")
    raise InvalidArgumentError(
        f"{message} Check image_shape (height, width), image_width and image_height, and "
        "that the centroids are centred pixel coordinates (origin='zero' or 'fits' converts "
        "0- or 1-based array pixels).")


def _own_size(centroids: Any) -> tuple[tuple[int, int], str] | None:
    """The ``(width, height)`` of the image the centroids carry, and what they are (for
    messages): an ``ExtractionResult``'s, or a table's ``meta["image_width"]`` and
    ``meta["image_height"]`` (as ``to_table`` writes them); None otherwise."""
    if type(centroids) is np.ndarray:  # the common case, without the table tests
        return None
    if isinstance(centroids, ExtractionResult):
        return ((_args.size(centroids.image_width, "the ExtractionResult's image_width"),
                 _args.size(centroids.image_height, "the ExtractionResult's image_height")),
                "an ExtractionResult")
    if is_table(centroids):
        meta = getattr(centroids, "meta", None) or {}
        if meta.get("image_width") is not None and meta.get("image_height") is not None:
            return ((_args.size(meta["image_width"], "the table's meta['image_width']"),
                     _args.size(meta["image_height"], "the table's meta['image_height']")),
                    "a table whose meta gives")
    return None


def _size_given(options: SolveOptions, centroids: Any) -> tuple[Callable[[], str], bool]:
    """What declared the image's size, for :func:`_check_extent`'s message (a function
    that words it: the message is needed only when the check fails, and wording it cost
    ~1.3 us a solve), and whether it declared the height (not when it defaulted to the
    width)."""
    if options.image_shape is not None:
        return lambda: f"image_shape={tuple(int(v) for v in options.image_shape)}", True
    if options.image_width is not None or options.image_height is not None:
        if (options.image_height is None and options.camera_model is None
                and _own_size(centroids) is None):
            return lambda: f"image_width={options.image_width}", False
        return lambda: "image_width/image_height", True
    if options.camera_model is not None:
        return lambda: "the camera model", True
    if isinstance(centroids, ExtractionResult):
        return lambda: "the ExtractionResult", True
    return lambda: "the table's meta", True


def _image_size(options: SolveOptions, centroids: Any) -> tuple[int, int]:
    """``(width, height)``: the options', else the image size the centroids carry (an
    ``ExtractionResult``'s, a table's meta), which fills the dimensions not given and
    must agree with those given (centred positions are relative to the image's centre: a
    wrong size moves every star)."""
    carried = _own_size(centroids)
    if carried is None:
        size = options.image_size()
        if (options.origin in ("zero", "fits") and options.image_shape is None
                and options.image_height is None and options.camera_model is None):
            # array pixels are centred about the image's centre: a height taken to be the
            # width (tetra3rs's square default) moved every star of a 4:3 frame by 1/8 of
            # its width (0.7 deg on an 11 deg field)
            raise InvalidArgumentError(
                f"origin={options.origin!r}: 0- or 1-based pixels need the image's height "
                "as well as its width (give image_height or image_shape); it is not taken "
                "to be the width")
        return size
    own, what = carried
    if options.image_shape is not None:
        size, given = options.image_size(), f"image_shape={tuple(options.image_shape)}"
    elif options.image_width is not None or options.image_height is not None:
        width = own[0] if options.image_width is None else options.image_width
        height = own[1] if options.image_height is None else options.image_height
        cams = [] if options.camera_model is None else [options.camera_model]
        size = _args.image_size(width, height, None, cams)
        given = (f"image_width={width}" if size[0] != own[0] else f"image_height={height}")
    elif options.camera_model is not None:
        size = options.image_size()
        given = f"the camera model's size {size[0]}x{size[1]}"
    else:
        return own
    if size != own:
        raise InvalidArgumentError(
            f"{given} disagrees with the centroids' image ({what} of a "
            f"{own[0]}x{own[1]} image)")
    return size


def _positions(centroids: Any, origin: str | None, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Centred positions, brightest first, and the input row of each (None: input order).

    A table's positions (an astropy ``Table``, a numpy structured array, a pandas
    ``DataFrame``) are converted from ``origin`` (required) and its rows ordered by a
    flux column when it has one (with a ``flags`` column, as ``ExtractionResult.to_table``
    writes, its ``'doubtful'`` rows after the others); arrays are converted from
    ``origin``, and they and lists of centroids ordered by their brightness unless it is
    in order already (:func:`_brightness_order`); an ``ExtractionResult`` keeps its own.
    """
    if (type(centroids) is np.ndarray and centroids.dtype == np.float64
            and centroids.ndim == 2 and centroids.shape[1] in (2, 3)
            and origin in (None, "center")):
        # the usual input, as centroids_to_array takes it without its type tests and its
        # finiteness test (~2.5 us a solve): _check_extent, which every solve runs next,
        # refuses a NaN or an infinite position with the same message
        xy = centroids[:, :2].copy()
        order = _brightness_order(centroids[:, 2]) if centroids.shape[1] == 3 else None
        return (xy, None) if order is None else (xy[order], order)
    if type(centroids) is not np.ndarray or centroids.dtype.names:  # (plain arrays: as fast)
        centroids = as_table(centroids)
    if is_table(centroids):
        if origin is None:
            raise InvalidArgumentError(
                "centroids given as a Table need origin='center', 'zero' (0-based array "
                "pixels, e.g. photutils) or 'fits' (1-based, e.g. .axy files)")
        meta = getattr(centroids, "meta", None) or {}
        # (a table written to a FITS file and read back has the card ORIGIN: short
        # keys come back in capitals; an institution's ORIGIN is none of ORIGINS)
        key = next((k for k in ("origin", "ORIGIN") if k in meta), "origin")
        stated = meta.get(key)
        if isinstance(stated, str) and stated in ORIGINS and stated != origin:
            raise InvalidArgumentError(
                f"origin={origin!r}, but the table says its positions have "
                f"origin={stated!r} (its meta[{key!r}])")
        xy, flux = table_to_array(centroids, "centroids")
        xy = centred_positions(xy, origin, width, height)
        if flux is not None and not np.isfinite(flux).all():
            flux = _faintest_when_unknown(flux)
        # (a table of an extraction's stars, ExtractionResult.to_table, keeps the
        # extractor's doubtful stars after the others: a solve draws its patterns from
        # the first rows)
        flags = np.asarray(centroids["flags"]) if "flags" in centroids.colnames else None
        doubt = (flags == "doubtful" if flags is not None and flags.dtype.kind in "UO"
                 else None)  # (SExtractor-like integer flags say nothing of it)
        if flux is None or not np.any(np.diff(flux) > 0):
            return xy, None
        order = (np.argsort(-flux, kind="stable") if doubt is None
                 else np.lexsort((-flux, doubt)))
        return xy[order], order
    xy, brightness = centroids_to_array(centroids, name="centroids")
    if origin not in (None, "center"):
        if isinstance(centroids, ExtractionResult) or hasattr(
                next(iter(centroids), None), "brightness"):
            raise InvalidArgumentError(
                f"origin={origin!r}: Centroid objects are always in centred pixels")
        xy = centred_positions(xy, origin, width, height)
    if brightness is None or isinstance(centroids, ExtractionResult):
        return xy, None  # (an extraction's order: its doubtful stars after the others)
    order = _brightness_order(brightness)
    return (xy, None) if order is None else (xy[order], order)


def _brightness_order(brightness: np.ndarray) -> np.ndarray | None:
    """The rows brightest first (stable), or None to keep the given order: a list
    brightest first, or in two groups each brightest first (an extraction's list, its
    doubtful stars after the others: ``demote_doubtful``), is taken as given.

    Solves draw their patterns from the first stars, and tetra3rs sorts them by
    brightness itself: centroids from another extractor, listed by position or label
    with a flux column, did not solve (the real frames' own centroids shuffled:
    ``no_match``, where tetra3rs found them).
    """
    if np.count_nonzero(brightness[1:] > brightness[:-1]) <= 1:
        return None
    if not np.any(brightness[1:] < brightness[:-1]):
        warn_caller(
            "centroids: their brightness rises down the whole list (the faintest first?); "
            "they are taken brightest first. A third column of magnitudes, which fall as "
            "brightness rises, reads backwards: give fluxes (e.g. 10**(-0.4 * mag))",
            UserWarning)
    if not np.isfinite(brightness).all():
        brightness = _faintest_when_unknown(brightness)
    return np.argsort(-brightness, kind="stable")


#: An answer whose residuals hold a smooth field over the image (a lens model that does
#: not fit it, rather than centroid noise) of at least this rms (px) warns: the wrong
#: projection named leaves 5-9 px on 60-160 deg fields, 0.5-1.3 deg off; an uncalibrated
#: off-axis camera (the seed's TESS frames' first pass) ~9 px.
LOOSE_FIT_PX = 2.0
#: ... or whose residuals are at least this rms (px) and this share of the match radius:
#: a lens departing steeply towards the edge (the wrong fisheye projection named) leaves
#: a pattern no cubic holds, with wrong stars matched where it is off by more than the
#: radius (5-9 px rms); centroid noise is below the pixels on any frame worth solving.
LOOSE_RMS_PX, LOOSE_RADIUS_SHARE = 4.0, 0.25
#: Fewest matches for the test (a cubic field per axis takes 10 coefficients).
_LOOSE_FIT_MATCHES = 20


def _loose_field_px(result: SolveResult) -> float:
    """The rms (px) of the smooth part of the answer's residual vectors: a cubic in the
    matched stars' positions fitted to each axis (centroid noise scatters about it).

    A fit of ``p`` coefficients to ``n`` noisy points follows the noise too, by
    ``noise**2 * p / n`` in mean square (3 px of noise on 26 matches made a 2.6 px
    "pattern"); that share, estimated from the fit's own residuals, is taken off.
    """
    from ..camera.distortion import polynomial_design_matrix
    from ..geometry import radec_to_vector

    R = np.asarray(result.rotation_matrix_icrs_to_camera)
    v = radec_to_vector(result.matched_radec_deg[:, 0], result.matched_radec_deg[:, 1])
    px, py = result.camera_model.vectors_to_pixel(v @ R.T)
    xy = np.asarray(result.matched_xy, dtype=np.float64)
    d = xy - np.stack([px, py], axis=1)
    ok = np.isfinite(d).all(axis=1)
    if ok.sum() < _LOOSE_FIT_MATCHES:
        return 0.0
    cam = result.camera_model
    A = polynomial_design_matrix(xy[ok, 0], xy[ok, 1], 3,
                                 0.5 * math.hypot(cam.image_width, cam.image_height))
    coef = np.linalg.lstsq(A, d[ok], rcond=None)[0]
    smooth = A @ coef
    n, p = A.shape
    fitted = float(np.mean(np.sum(smooth ** 2, axis=1)))
    noise = float(np.mean(np.sum((d[ok] - smooth) ** 2, axis=1))) * n / (n - p)
    return math.sqrt(max(fitted - noise * p / n, 0.0))


def _warn_if_loose(result: SolveResult, radius_px: float) -> None:
    """A :class:`~skysolve.errors.LensModelWarning` when the answer's residuals hold a
    smooth field of :data:`LOOSE_FIT_PX` or more, or are large in pixels and against the
    match radius (:data:`LOOSE_RMS_PX`): the lens model does not fit the image."""
    cam = result.camera_model
    rms_px = result.rmse_arcsec / ARCSEC_PER_RAD * cam.focal_length_px
    if not rms_px >= LOOSE_FIT_PX:  # (the smooth part is at most the whole)
        return
    field_px = _loose_field_px(result)
    if field_px < LOOSE_FIT_PX and not (rms_px >= LOOSE_RMS_PX
                                        and rms_px >= LOOSE_RADIUS_SHARE * radius_px):
        return

    from ..errors import LensModelWarning

    model = f"the {cam.projection} projection" + (
        " with its distortion" if cam.distortion is not None else "")
    verdict = ("does not fit this image" if field_px >= LOOSE_FIT_PX else  # large, no pattern
               "may not fit this image, or some matches are chance coincidences with false "
               "detections")
    warn_caller(
        f"the solution's residuals are {rms_px:.1f} px rms ({field_px:.1f} px of it a "
        f"pattern over the image): {model} {verdict}, and the attitude "
        "and WCS may be off by several pixels or more (name the lens's projection, or give "
        "a calibrated camera_model)", LensModelWarning)


def _warn_if_rescaled(result: SolveResult, camera: CameraModel | None) -> None:
    """A ``UserWarning`` when the answer's stars took the focal length of a
    ``camera_model`` they put clearly off (see ``refinement._refit_scale``): the camera
    may be another lens's, or a nominal one."""
    if camera is None:
        return
    change = result.camera_model.focal_length_px / camera.focal_length_px - 1.0
    if abs(change) <= MAX_SCALE_CHANGE:
        return
    warn_caller(
        f"the matched stars put camera_model's focal length {change:+.2%} off "
        f"({camera.focal_length_px:.6g} px; they fit {result.camera_model.focal_length_px:.6g} "
        f"px, a horizontal field of {result.fov_deg:.4g} deg): the answer uses theirs "
        "(result.camera_model); check the camera model (another lens or focus, or a "
        "nominal one?), or pass refine_scale=False to keep its focal length", UserWarning)


def _faintest_when_unknown(flux: np.ndarray) -> np.ndarray:
    """The flux column with its masked or non-finite values as the faintest (a NaN first
    in the table was kept first, one further down went last), said in a warning."""

    bad = ~np.isfinite(flux)
    warn_caller(
        f"centroids: the flux of {int(bad.sum())} of {len(flux)} rows is masked or "
        "not finite; those stars are taken as the faintest", UserWarning)
    return np.where(bad, -np.inf, flux)


def _in_input_order(result: SolveResult, order: np.ndarray | None) -> SolveResult:
    """The result with ``matched_centroids`` counted in the caller's rows."""
    if order is None:
        return result
    rows = order[result.matched_centroids]
    keep = np.argsort(rows, kind="stable")
    result.matched_centroids = rows[keep].astype(np.intp)
    for name in ("matched_catalog_ids", "matched_xy", "matched_radec_deg",
                 "matched_residuals_arcsec"):
        setattr(result, name, getattr(result, name)[keep])
    return result


def _fov_cap(code: int) -> float:
    """The widest horizontal field (radians) the search asks of projection ``code``: just
    short of twice its largest angle, where a pinhole's focal length would be zero."""
    return 2.0 * _proj.max_angle(code) * 0.999


def _fov_range(db: Any, options: SolveOptions, code: int) -> tuple[float, float]:
    """The allowed field-of-view range (radians) of the pattern search."""
    cap = _fov_cap(code)
    told = options.told_fov_range()
    if told is not None:
        return min(told[0], cap), min(told[1], cap)
    # no scale: a field somewhat beyond the database's scales still holds its patterns
    hi = math.radians(db.max_fov_deg)
    if _proj.max_angle(code) > 0.5 * math.pi:
        # a fisheye's horizontal field spans the frame's dark corners too: a circular
        # fisheye inscribed in a 4:3 frame is 240-300 deg across while its stars span no
        # more than the database's largest field
        return math.radians(db.min_fov_deg) * 0.6, cap
    return math.radians(db.min_fov_deg) * 0.6, min(hi / 0.6, hi + math.radians(30.0), cap)


#: How far below the focal length whose image circle just reaches the farthest centroid
#: the search goes (a fraction): that centroid's noise, and a candidate's implied focal
#: length, which is off by its pattern's noise over its size.
_CIRCLE_MARGIN = 0.05
#: How far around a camera model's own focal length its search reaches at least (a
#: fraction): a candidate's implied focal length is off by its pattern's noise over its size.
_CAMERA_MARGIN = 0.05


def _focal_range(db: Any, options: SolveOptions, frame: Frame,
                 code: int) -> tuple[float, float, float, float]:
    """``(f_lo, f_hi, fov_lo, fov_hi)``: focal lengths (px) and fields of view (radians)."""
    width = frame.width
    if options.pixel_scale_range_arcsec is not None:
        lo, hi = (math.radians(v / 3600.0) for v in options.pixel_scale_range_arcsec)
        f_lo, f_hi = 1.0 / hi, 1.0 / lo  # the scale at the optical centre is 1 / f
        return (f_lo, f_hi, _proj.fov_from_focal(f_hi, width, code),
                _proj.fov_from_focal(f_lo, width, code))
    fov_lo, fov_hi = _fov_range(db, options, code)
    f_lo = _proj.focal_from_fov(fov_hi, width, code)
    f_hi = _proj.focal_from_fov(fov_lo, width, code)
    limit = _proj.max_radius(code)
    if fov_hi >= _fov_cap(code) and limit < math.inf and len(frame.radii):
        # a field as wide as the projection images: a fisheye's image circle may be
        # narrower than the frame (an all-sky lens inscribed in its height), and every
        # focal length whose circle still holds the centroids is possible
        f_lo = min(f_lo, float(frame.radii.max()) / limit * (1.0 - _CIRCLE_MARGIN))
    if frame.fixed_camera:
        # the camera fixes the focal length: the range only screens candidates, and must
        # not refuse the camera's own (its field may be capped above, as at 180 deg)
        f_cam = frame.camera.focal_length_px
        f_lo = min(f_lo, f_cam * (1.0 - _CAMERA_MARGIN))
        f_hi = max(f_hi, f_cam * (1.0 + _CAMERA_MARGIN))
    return f_lo, f_hi, fov_lo, fov_hi


#: Rejection reasons of detections that are not sky (``SolveOptions.deep_search``).
_ARTEFACTS = ("sharp", "overlay", "elongated", "trail", "foreground", "narrow")


#: An image circle's centre further than this (px) from the image's is taken for the
#: optical centre (:func:`optical_centre`).
CIRCLE_CENTRE_MIN_PX = 2.0


def optical_centre(options: SolveOptions, centroids: Any) -> tuple[float, float]:
    """Where the lens axis meets the image (centred px) for a solve without a camera
    model: ``options.crpix``, else the centre of the image circle an
    ``ExtractionResult`` kept to (:attr:`~skysolve.ExtractionResult.sky_circle`), else
    the image centre.

    A lens's image circle is centred on its axis, and on all-sky cameras often tens of
    pixels off the sensor's centre. Taken to be the image centre, an axis 30 px off on a
    180 deg lens (1024 px across) moved the stars of the rim by pixels against one
    another: rendered frames failed or solved 0.6 deg off at 2,000" rms, where the
    circle's centre (found to ~0.1 px) solved them all within 0.01 deg. A circle
    within :data:`CIRCLE_CENTRE_MIN_PX` of the image centre leaves it there: on a JPEG
    with captions the circle's centre is found only to 0.4-1 px, and a centred lens
    taken about it mapped the sky 2-3 times worse (30-60" of a 600" pixel); an axis
    off by more than the found centre's error is fitted by the refinement
    (:mod:`.radialterm`)."""
    if options.crpix is not None:
        return (float(options.crpix[0]), float(options.crpix[1]))
    axis = None
    if isinstance(centroids, ExtractionResult) and options.camera_model is None:
        axis = circle_axis(centroids.sky_circle)
    return (0.0, 0.0) if axis is None else axis


def circle_axis(circle: tuple[float, float, float] | None) -> tuple[float, float] | None:
    """The optical centre (centred px) an image circle ``(x, y, radius)`` gives
    (:func:`optical_centre`): its centre, when further than
    :data:`CIRCLE_CENTRE_MIN_PX` from the image's; else None."""
    if circle is None or math.hypot(circle[0], circle[1]) <= CIRCLE_CENTRE_MIN_PX:
        return None
    return (float(circle[0]), float(circle[1]))


def _deep(flag: bool | None, centroids: Any) -> bool:
    """Whether the search ends with its deep pass (see ``SolveOptions.deep_search``)."""
    if flag is not None:
        return flag
    if not isinstance(centroids, ExtractionResult):
        return False
    # the doubtful centroids kept are as likely artefacts as stars: on one side, with the
    # rejected artefacts. All kinds of them (an undersampled frame's faint sharp blobs,
    # which it rejected as hot pixels before; a JPEG's compressed impulses, a silhouette's
    # specks, merged saturated stars): a frame whose list is half doubt is a hard one
    doubtful = int(np.count_nonzero(centroids.flags == "doubtful"))
    stars = len(centroids) - doubtful
    # (more artefacts than stars needs more rejections than stars: most frames have fewer,
    # and counting the reasons was a twentieth of a small field's solve)
    if len(centroids.rejected) + doubtful <= stars:
        return False
    artefacts = int(np.isin(centroids.rejected["reason"], _ARTEFACTS).sum())
    return artefacts + doubtful > stars  # (.centroids would build a Centroid per star)


#: The fewest centroids tracking can solve from; a strict hint with fewer fails with
#: ``'too_few'`` (as tetra3rs's), not ``'no_match'``.
_TRACKING_MIN_STARS = 3


def _strict_failure(n: int, uncertainty_rad: float) -> tuple[str, str]:
    """Status and message of a strict hint that found no answer among ``n`` centroids:
    ``'too_few'`` below what tracking needs, ``'no_match'`` otherwise. The message gives
    how far the search looked (``uncertainty_rad``: the hint's uncertainty) and the
    hint's convention: a scalar-last quaternion, or the camera-to-ICRS matrix (the
    transpose), is a valid rotation far from the attitude, and only fails like this."""
    if n < _TRACKING_MIN_STARS:
        return "too_few", f"{n} centroids; tracking needs {_TRACKING_MIN_STARS}"
    reach = math.degrees(HINT_REACH * uncertainty_rad)
    return "no_match", (f"no match within {reach:.3g} deg of the attitude hint "
                        f"({HINT_REACH:g} times hint_uncertainty; the hint rotates ICRS "
                        f"into the camera frame: "
                        f"a [w, x, y, z] quaternion or rotation_matrix_icrs_to_camera)")


def _hinted(db: PatternDatabase, frame: Any, cat: Any, options: SolveOptions,
            focal: tuple[float, float, float | None], parities: tuple[bool, ...],
            radius_px: float, t0: float, cone: Cone | None, patterns: Any) -> SolveResult | None:
    """The answer near ``options.attitude_hint`` (``focal``: the allowed focal lengths and
    the estimate), held to the position ``cone`` if any; None when there is none."""
    f_lo, f_hi, f_guess = focal
    R_hint, unc = options.attitude_hint, options.hint_uncertainty
    # without a scale, tracking starts at the middle of the range
    f_track = math.sqrt(f_lo * f_hi) if f_guess is None else f_guess
    if frame.fixed_camera:
        # (a search reaching beyond the image is left to the pattern search, as below)
        res = None if beyond_image(unc, radius_px, f_track, frame) else track(
            db, frame, cat, R_hint, f_track, parities, unc, radius_px,
            options.match_threshold, options.refine_iterations, t0)
    else:
        # (the scales at which the search reaches beyond the image are left to the pattern
        # search: a strict hint's held to its cone, below, a loose hint's over the sky
        # after this returns: see track_scales)
        res = track_scales(db, frame, cat, R_hint, f_lo, f_hi, f_track, parities, unc,
                           radius_px, options.match_threshold, options.refine_iterations, t0)
    if res is not None and (cone is None or cone.holds(res.rotation_matrix_icrs_to_camera)):
        return res
    if not options.strict_hint or len(frame.ideal) < 4:
        return None
    # The pattern search held to the hint's cone, whose answer must agree with the hinted
    # attitude. Without a camera model tracking's votes (angles) depend on a scale it can
    # only sample: the search finds the scale. With one, a search reaching beyond the
    # image's corners spreads the catalog stars tracking takes (the brightest within its
    # reach of the image) over a sky many times the field's, few of them in it: the true
    # attitude given as a hint 20-90 deg uncertain found nothing on 12-19 deg fields.
    # (Narrower hints are left to tracking: a strict hint that finds nothing costs ~1 ms,
    # ~40 with the pattern search.)
    if frame.fixed_camera and not beyond_image(unc, radius_px, f_track, frame):
        return None
    res, _ = patterns(Cone(R_hint[2], HINT_REACH * unc))
    if res is None:
        return None
    R, f = res.rotation_matrix_icrs_to_camera, res.camera_model.focal_length_px
    if (hint_offset(frame, R, R_hint, f) > hint_reach(unc, radius_px, f)
            or (cone is not None and not cone.holds(R))):
        return None
    return res


def solve(db: PatternDatabase, centroids: Any, options: SolveOptions, *,
          warn_loose: bool = True) -> SolveResult | SolveFailure:
    """Solve ``centroids`` against ``db`` with ``options`` (see :func:`solve_from_centroids`);
    without ``warn_loose``, an answer whose lens model does not fit the image gives no
    :class:`~skysolve.errors.LensModelWarning` (a calibration's passes: their lens
    models are provisional; a flag, as warning filters are process-wide state that
    threads would race on)."""
    be = backends.select(options.backend)
    # One-time preparation, before the clock starts, so that it does not eat into
    # solve_timeout_ms: the kernels for this database and the pattern order.
    backends.prepare(be, db)
    all_combos(options.pattern_checking_stars)
    velocity = options.observer_velocity  # an obstime's ephemeris lookup, outside the clock
    t0 = time.perf_counter()

    def fail(status: str, message: str) -> SolveFailure:
        return SolveFailure(status, (time.perf_counter() - t0) * 1e3, message)

    width, height = _image_size(options, centroids)
    xy, order = _positions(centroids, options.origin, width, height)
    _check_extent(xy, width, height, *_size_given(options, centroids), backend=be)
    timeout = options.solve_timeout_ms
    deadline = None if not timeout else t0 + timeout / 1e3
    tol = options.match_max_error
    if tol is None:
        tol = db._pattern_max_error

    cam = options.camera_model
    code = _proj.code_of(options.lens_projection)
    frame = make_frame(xy, width, height, cam, options.lens_projection, be,
                       options.refine_scale, optical_centre(options, centroids),
                       guessed=options.projection is None and cam is None,
                       centre_told=options.crpix is not None)
    cat = CatalogView(db, velocity, be)
    radius_px = options.match_radius * width
    if cam is not None:
        f_guess: float | None = cam.focal_length_px
        parities: tuple[bool, ...] = (bool(cam.parity_flip),)
    else:
        fov_est = options.fov_estimate
        f_guess = None if fov_est is None else _proj.focal_from_fov(fov_est, width, code)
        parities = (False, True) if options.parity_flip is None else (options.parity_flip,)
    f_lo, f_hi, fov_lo, fov_hi = _focal_range(db, options, frame, code)
    # A field wider than the database's largest is searched whatever the hint: its
    # brightest stars still make the database's patterns in sub-windows of it (simulated
    # fields 2-3x a 2-6 deg Gaia or 10-20 deg Hipparcos database's largest solved 10 of 10,
    # 6x 5-6 and 10x 2), so no factor marks where matching stops, and a search that finds
    # nothing names the range (_search_failure). A hint wholly below half the smallest field
    # is refused.
    if fov_hi < math.radians(db.min_fov_deg) / 2:
        return fail("invalid_config", _outside_range(db, fov_lo, fov_hi))
    position = options.position_cone
    cone = None if position is None else Cone(*position)

    # (max_patterns_checked holds for the solve: its searches draw on one budget; and a
    # candidate's false-match probability counts the hypotheses all of them verified, as
    # max_hypotheses_verified does)
    budget, verified = [options.max_patterns_checked], [0]

    def patterns(within: Cone | None, f_range: tuple[float, float] = (f_lo, f_hi),
                 deep: bool = _deep(options.deep_search, centroids), lens: Frame = frame,
                 f_start: float | None = f_guess,
                 n_stars: int = options.pattern_checking_stars):
        """The pattern search over focal lengths ``f_range`` (px), held to the cone
        ``within`` (or not), ending with its deep pass when ``deep``; of the centroids
        as ``lens`` takes them, from ``f_start`` (px) when a scale was told."""
        return search(
            db, lens, cat, f_lo=f_range[0], f_hi=f_range[1], f_guess=f_start,
            parities=parities, tol=tol,
            radius_px=radius_px, threshold=options.match_threshold, deadline=deadline,
            refine_iterations=options.refine_iterations, t0=t0,
            pattern_stars=n_stars,
            budget=budget, cone=within, deep=deep, verified=verified,
            max_verified=options.max_hypotheses_verified)

    if options.attitude_hint is not None:
        res = _hinted(db, frame, cat, options, (f_lo, f_hi, f_guess), parities, radius_px, t0,
                      cone, patterns)
        if res is not None:
            return _returned(res, warn_loose, radius_px, cam, order)
        if options.strict_hint:
            return fail(*_strict_failure(len(xy), options.hint_uncertainty))

    if len(xy) < 4:
        return fail("too_few", f"{len(xy)} centroids; a pattern needs 4")
    result, status = patterns(cone)
    widest = None if status != "no_match" else _blind_widest(db, options, code, fov_hi)
    if widest is not None:
        # no scale told, and nothing in the database's range: perhaps an ultra-wide lens
        # (without the deep passes: on 80 random points asked for 50 pattern stars they
        # looked up 334,000 patterns, against 41,000 without)
        result, status = patterns(cone, (_proj.focal_from_fov(widest, width, code), f_lo),
                                  deep=False)
    fisheye: tuple[str | None, list[str]] = (None, [])  # (see _search_failure)
    if result is None and status == "no_match" and _fisheye_next(frame, options, fov_lo,
                                                                  fov_hi, widest):
        result, fisheye = _fisheye_searches(db, options, frame, widest, patterns)
    terms = result is None and _lens_terms_next(frame, options, fov_lo, fov_hi, status,
                                                fisheye[0])
    if terms:
        result, status = _lens_term_searches(db, options, frame, cat, patterns, cone,
                                             radius_px, deadline, t0)
    if result is not None:
        return _returned(result, warn_loose, radius_px, cam, order)
    return fail(*_search_failure(status, db, options, code, fov_lo, fov_hi, cone,
                                 (width, height), be, widest, fisheye, verified[0], terms))


def _returned(result: SolveResult, warn_loose: bool, radius_px: float,
              cam: CameraModel | None, order: np.ndarray | None) -> SolveResult:
    """``result`` as the solve returns it: its matches in the caller's order
    (:func:`_in_input_order`), after the warnings of a loose fit (:func:`_warn_if_loose`)
    and a camera's rescaled focal length (:func:`_warn_if_rescaled`) when
    ``warn_loose``."""
    if warn_loose:
        _warn_if_loose(result, radius_px)
        _warn_if_rescaled(result, cam)
    return _in_input_order(result, order)


def _blind_widest(db: PatternDatabase, options: SolveOptions, code: int,
                  fov_hi: float) -> float | None:
    """The widest field (radians) a search told no scale goes on to once the database's
    range to ``fov_hi`` found nothing (:data:`BLIND_WIDEST_FOV_DEG`, and at most
    :data:`BLIND_WIDEST_FACTOR` times the database's largest field); None when a scale
    or a camera was given, or the projection's search already reached its widest."""
    if _scale_told(options) or code != _proj.PINHOLE:
        return None
    widest = min(math.radians(min(BLIND_WIDEST_FOV_DEG, BLIND_WIDEST_FACTOR * db.max_fov_deg)),
                 _fov_cap(code))
    return widest if widest > fov_hi else None


def _fisheye_next(frame: Frame, options: SolveOptions, fov_lo: float, fov_hi: float,
                  widest: float | None) -> bool:
    """Whether a pinhole search that found nothing goes on with the equidistant projection:
    nobody told the projection (:attr:`Frame.guessed_projection`), and either a scale
    was told whose range (``fov_lo`` to ``fov_hi``, radians) is centred (geometrically)
    on fields of :data:`_FISHEYE_FROM_DEG` or wider -- a ``fov_range_deg`` of (48, 72),
    whose pinhole search did not reach 90 deg, held a 60 deg fisheye -- or none was and
    the search reached fields of :data:`_FISHEYE_HINT_DEG` (``fov_hi``, or the blind
    search's ``widest``). Not for any range merely reaching past 40 deg: an estimate of
    25 deg (to 42 deg) would search fields a fisheye's pinhole answer with its radial term
    holds already, and giving up took 2.6 times as long on the default database."""
    if not (frame.guessed_projection and frame.proj == _proj.PINHOLE):
        return False
    if _scale_told(options):
        return math.sqrt(fov_lo * fov_hi) >= math.radians(_FISHEYE_FROM_DEG)
    reached = fov_hi if widest is None else widest
    return reached >= math.radians(_FISHEYE_HINT_DEG)


def _lens_terms_next(frame: Frame, options: SolveOptions, fov_lo: float, fov_hi: float,
                     status: str, fisheye: str | None) -> bool:
    """Whether a pinhole search that ended with ``status`` (and the fisheye searches after
    it with ``fisheye``, None if none ran) goes on with the centroids undistorted by
    :data:`GUESSED_LENS_TERMS`: both found nothing (``no_match``), no camera model, a
    scale told whose range (``fov_lo`` to ``fov_hi``, radians) is centred
    (geometrically) on fields of :data:`_LENS_TERMS_FROM_DEG` or wider. (Told no scale,
    the search's focal-length windows each unproject the centroids at their own focal
    length, which bends a pattern's ratios as a radial term does; and its give-up is long
    already.)"""
    return (status == "no_match" and fisheye in (None, "no_match")
            and frame.proj == _proj.PINHOLE and options.camera_model is None
            and _scale_told(options)
            and math.sqrt(fov_lo * fov_hi) >= math.radians(_LENS_TERMS_FROM_DEG))


def _lens_term_searches(db: PatternDatabase, options: SolveOptions, frame: Frame,
                        cat: CatalogView, patterns: Any, cone: Cone | None, radius_px: float,
                        deadline: float | None, t0: float) -> tuple[Any, str]:
    """``(result, status)`` of the pattern searches of the centroids undistorted by each
    of :data:`GUESSED_LENS_TERMS` in turn, until one finds an answer or does not end in
    ``no_match``.

    A search finds its hypothesis in the undistorted frame; the answer is refined from
    its attitude and focal length (the term leaves the scale at the centre as it was)
    in the solve's own ``frame`` (:func:`~skysolve.solver.lost_in_space.answer`), whose
    refinement fits the lens's radial term to the matched stars, so that the result's
    camera model and WCS map the image as it is. ``patterns``: the solve's search, as
    ``patterns(cone, deep=, lens=, n_stars=)``.
    """
    from ..camera.distortion import RadialDistortion

    s = 0.5 * math.hypot(frame.width, frame.height)
    status = "no_match"
    for k1 in GUESSED_LENS_TERMS:
        u, v = RadialDistortion(k1, scale=s).undistort(frame.ideal[:, 0], frame.ideal[:, 1])
        xy = np.stack([u, v], axis=1) + frame.centre
        if not np.isfinite(xy).all():
            continue
        # (not a guessed projection: the hypothesis is refined as a pinhole's there, its
        # focal length the one the solve's frame starts from; that frame may try others)
        lens = make_frame(xy, frame.width, frame.height, None, "pinhole", frame.backend,
                          crpix=frame.centre, centre_told=frame.centre_told)
        found, status = patterns(cone, deep=False, lens=lens,
                                 n_stars=min(options.pattern_checking_stars, _LENS_TERMS_STARS))
        if found is not None:
            hyp = Hypothesis(found.rotation_matrix_icrs_to_camera,
                             found.camera_model.focal_length_px, found.parity_flip)
            result = answer(db, frame, cat, hyp, radius_px, options.refine_iterations,
                            deadline, cone, found.probability, t0)
            if result is not None:
                return result, "match_found"
            status = "no_match"
        elif status != "no_match":
            break
    return None, status


def _scale_told(options: SolveOptions) -> bool:
    """Whether the solve was told its scale: a field of view or pixel-scale hint, or a
    camera model."""
    return (options.fov_estimate is not None or options.fov_range_deg is not None
            or options.pixel_scale_range_arcsec is not None or options.camera_model is not None)


def _fisheye_searches(db: PatternDatabase, options: SolveOptions, frame: Frame,
                      widest: float | None, patterns: Any
                      ) -> tuple[Any, tuple[str | None, list[str]]]:
    """``(result, (status, projections))`` of the searches of :data:`_FISHEYE_SEARCHES`
    in turn (told a scale, the first only) until one finds an answer or does not end in
    ``no_match``: the last one's status (None when none searched anything) and the
    projections searched; see :func:`_fisheye_search`."""
    status, tried = None, []
    for name in _FISHEYE_SEARCHES[:1 if _scale_told(options) else None]:
        result, status = _fisheye_search(db, options, frame, widest, patterns, name)
        tried += [name] if status is not None else []
        if status != "no_match":
            return result, (status, tried)
    return None, (status, tried)


def _fisheye_search(db: PatternDatabase, options: SolveOptions, frame: Frame,
                    widest: float | None, patterns: Any,
                    projection: str = "equidistant") -> tuple[Any, str | None]:
    """``(result, status)`` of the search that goes on with an equidistant fisheye's
    projection (:func:`_fisheye_next`): told no projection, and a pinhole search of fields
    this wide found nothing, most likely a fisheye, whose patterns far off the axis a
    pinhole cannot match. Fields from :data:`_FISHEYE_FROM_DEG` (narrower fisheyes are
    near enough a pinhole for its search and its radial term) to the database's widest,
    or as wide as the pinhole's blind search went (``widest``, radians) when told no
    scale; ``status`` is None when that range is empty (nothing searched).
    ``patterns``: the solve's search, as ``patterns(cone, f_range, deep=, lens=,
    f_start=)``."""
    width, height = frame.width, frame.height
    lens = make_frame(frame.xy, width, height, None, projection, frame.backend,
                      crpix=frame.centre, guessed=True, centre_told=frame.centre_told)
    eq = _proj.code_of(projection)
    fl, fh, _, _ = _focal_range(db, options, lens, eq)
    fh = min(fh, _proj.focal_from_fov(math.radians(_FISHEYE_FROM_DEG), width, eq))
    if widest is not None:
        fl = max(fl, _proj.focal_from_fov(widest, width, eq))
    if fl >= fh:
        return None, None
    start = None if options.fov_estimate is None else _proj.focal_from_fov(
        options.fov_estimate, width, eq)
    cone = None if options.position_cone is None else Cone(*options.position_cone)
    return patterns(cone, (fl, fh), deep=False, lens=lens, f_start=start)


def _outside_range(db: PatternDatabase, fov_lo: float, fov_hi: float) -> str:
    """That the field-of-view range ``fov_lo``-``fov_hi`` (radians) lies outside the
    database's."""
    return (f"the field of view range {math.degrees(fov_lo):.2f}-{math.degrees(fov_hi):.2f} "
            f"deg is outside the database's {db.min_fov_deg:g}-{db.max_fov_deg:g} deg")


def _search_failure(status: str, db: PatternDatabase, options: SolveOptions, code: int,
                    fov_lo: float, fov_hi: float, cone: Cone | None,
                    size: tuple[float, float], be: Any,
                    widest: float | None = None,
                    fisheye: tuple[str | None, list[str]] = (None, []),
                    verified: int = 0, terms: bool = False) -> tuple[str, str]:
    """``(status, message)`` of a pattern search that found nothing.

    A scale hint that puts the field wholly outside the database's range (a 0.5 deg
    field against a 1-3 deg database, which may still solve down to half its
    smallest field) says so whatever the search ended with: without it, a search
    that ran out of time gave only "no match within 5000 ms". So does a position
    hint where the catalog holds too few stars for the widest field the search of the
    database's range allowed, ``fov_hi`` (:func:`_sparse_note`). ``widest``: the widest
    field a search told no scale went on to (:func:`_blind_widest`), if it did;
    ``fisheye``: the status of the last fisheye search that followed a pinhole one's
    ``no_match`` (:func:`_fisheye_search`; None if none ran), and their projections;
    ``verified``: the hypotheses the searches verified (a ``'budget'`` spent on them is
    named as ``max_hypotheses_verified``, else as ``max_patterns_checked``); ``terms``:
    whether the searches with :data:`GUESSED_LENS_TERMS` ran.
    """
    if fov_hi < math.radians(db.min_fov_deg) or fov_lo > math.radians(db.max_fov_deg):
        outside = "; " + _outside_range(db, fov_lo, fov_hi)
    else:
        outside = ""
    # (over the database's range: a field as wide as the blind search's widest holds
    # plenty of stars anywhere, and a no-scale search where the catalog is too sparse
    # for the database's fields lost the note)
    outside += _sparse_note(db, fov_hi, cone, size, be)
    if widest is not None and status in ("timeout", "budget"):
        # (the search of the database's range had ended with no match: that is worth saying)
        outside += (f"; none in the database's fields of view ({db.min_fov_deg:g}-"
                    f"{db.max_fov_deg:g} deg), the search of wider ones (to "
                    f"{math.degrees(widest):.0f} deg) cut short")
    if status == "timeout":
        return status, f"no match within {options.solve_timeout_ms:.6g} ms{outside}"
    most = options.max_hypotheses_verified
    if status == "budget" and most is not None and verified >= most:
        return "timeout", (f"no match within max_hypotheses_verified={most} "
                           f"hypotheses{outside}")
    if status == "budget":  # tetra3rs reports a spent pattern budget as a time-out too
        return "timeout", (f"no match within max_patterns_checked="
                           f"{options.max_patterns_checked} patterns{outside}")
    width = _width_note(options, code, fov_lo, fov_hi, size) if status == "no_match" else ""
    reached = fov_hi if widest is None else widest  # (the blind search's, if it ran)
    lens = _fisheye_note(code, *fisheye, reached)
    if terms and status == "no_match":
        lens += ("; nor with the centroids undistorted by radial lens terms of "
                 + ", ".join(f"{100 * k:+g} %" for k in GUESSED_LENS_TERMS)
                 + " at the corners (a camera_model with the lens's distortion is searched "
                 "with it)")
    if status == "no_match" and cone is not None:
        return status, (f"{_FAILURE_MESSAGES[status]} within the position hint's "
                        f"cone{outside}{width}{lens}")
    if status == "no_match":  # the likeliest cause besides too few stars: a field out of range
        scope = outside or (f"; the database solves fields of view of "
                            f"{db.min_fov_deg:g}-{db.max_fov_deg:g} deg")
        # (a range outside the database's is named by ``outside`` already)
        held = "" if outside else _estimate_note(options, fov_lo, fov_hi, db)
        return status, f"{_FAILURE_MESSAGES[status]}{scope}{held}{_parity_note(options)}" \
            f"{lens}{width}"
    return status, _FAILURE_MESSAGES[status] + outside


def _fisheye_note(code: int, fisheye: str | None, tried: list[str], reached: float) -> str:
    """The note of a pinhole ``no_match``'s message on fisheyes: what the fisheye
    searches after it (projections ``tried``) ended with (``fisheye``: the last one's
    status, None when none ran), or,
    without one, that a fisheye needs its projection named when the search ``reached``
    (radians) fields of :data:`_FISHEYE_HINT_DEG`; else ``""``. A search cut short (the
    time-out, ``max_patterns_checked`` or ``max_hypotheses_verified``) leaves the status
    the pinhole search's: it was
    ``timeout``, which callers take for "more time may solve it", and the scale notes
    were lost."""
    if code != _proj.PINHOLE:
        return ""
    if fisheye == "no_match":
        named = " or ".join(tried) if len(tried) < 3 else f"{', '.join(tried[:-1])} or {tried[-1]}"
        return f"; nor as an {named} fisheye: a lens of another projection " \
            "needs it named (projection=)"
    if fisheye in ("timeout", "budget"):
        return f"; the search as an {tried[-1]} fisheye's after it was cut short (a " \
            "fisheye named with projection= is searched as one from the start)"
    if reached >= math.radians(_FISHEYE_HINT_DEG):
        return "; a fisheye or all-sky lens needs its projection named (projection=)"
    return ""


def _parity_note(options: SolveOptions) -> str:
    """The note of a failure's message that the camera model fixed the parity the search
    tried; else ``""``. tetra3rs 0.14 solves an image that is not mirrored with a
    ``parity_flip=True`` camera all the same; skysolve holds the search to the camera's
    parity, and the failure said only the database's range."""
    cam = options.camera_model
    if cam is None:
        return ""
    flip = bool(cam.parity_flip)
    return (f"; the camera model fixes parity_flip={flip} (an image "
            f"{'not ' if flip else ''}mirrored needs parity_flip={not flip})")


def _estimate_note(options: SolveOptions, fov_lo: float, fov_hi: float,
                   db: PatternDatabase) -> str:
    """The note of a failure's message that names the field-of-view range a
    ``fov_estimate`` held the search to (no camera model, which fixes the scale), and how
    to widen it, or, for an estimate narrower than the database's smallest field, that
    such fields need a database of their scale; else ``""``. Without ``fov_max_error`` the
    range is 0.6 to 1/0.6 times the estimate, where tetra3rs searches without limit: a
    loose estimate (twice the field) failed with only the database's range, which held
    the field; a 3 deg estimate's 1.8-5 deg reached the default database's 5-30, and
    four 3 deg frames failed in it (a 2-5 deg database solved them all)."""
    if options.fov_estimate is None or options.camera_model is not None:
        return ""
    how = ("0.6 to 1/0.6 times the estimate" if options.fov_max_error is None
           else "the estimate +- fov_max_error")
    note = (f"; fov_estimate held the search to {math.degrees(fov_lo):.3g}-"
            f"{math.degrees(fov_hi):.3g} deg ({how}")
    est = math.degrees(options.fov_estimate)
    if est < db.min_fov_deg:
        lo, hi = fov_bounds_text(math.degrees(fov_lo), min(math.degrees(fov_hi), db.min_fov_deg))
        return (f"{note}); a field of {est:.3g} deg is narrower than the database's "
                f"smallest: a database built for such fields solves it (min_fov_deg={lo}, "
                f"max_fov_deg={hi}, or 'skysolve db build --min-fov {lo} --max-fov {hi}')")
    return f"{note}; a wider fov_max_error_deg widens it)"


def _width_note(options: SolveOptions, code: int, fov_lo: float, fov_hi: float,
                size: tuple[float, float]) -> str:
    """The note of a failure's message that the field-of-view hint, read over the image's
    height or diagonal instead of its width, is a field outside the range searched; else
    ``""``. A fisheye's 180 deg image circle fills the height of its frame and is told as
    180 deg, where the hint means the field across the width (240 deg for an
    equidistant 4:3 frame), and the search found nothing without a word of it."""
    if options.fov_estimate is not None:
        hint = options.fov_estimate
    elif options.fov_range_deg is not None:
        hint = math.radians(0.5 * (options.fov_range_deg[0] + options.fov_range_deg[1]))
    else:
        return ""
    width, height = size
    notes = []
    for name, length in (("height", height), ("diagonal", math.hypot(width, height))):
        if length == width or not hint < 2.0 * _proj.max_angle(code):
            continue
        wide = _proj.fov_from_focal(_proj.focal_from_fov(hint, length, code), width, code)
        if math.isfinite(wide) and not fov_lo <= wide <= fov_hi:
            notes.append(f"over the {name} ({length:.0f} px) it would make the image "
                         f"{math.degrees(wide):.4g} deg wide")
    if not notes:
        return ""
    return (f"; the field of view hint ({math.degrees(hint):.4g} deg) is the field across "
            f"the image's width ({width:.0f} px) through the optical axis; measured "
            + " or ".join(notes))


#: A position-hinted field whose catalog holds fewer stars than this, in a circle of the
#: area of the widest field the search allowed, is called too sparse for the catalog in a
#: failure's message: four make a pattern, and a match needs a few more to verify.
_SPARSE_STARS = 6
#: Fields up to this wide (radians) are checked for that; wider ones hold plenty.
_SPARSE_FOV = math.radians(10.0)


def _sparse_note(db: PatternDatabase, fov_hi: float, cone: Cone | None,
                 size: tuple[float, float], be: Any) -> str:
    """The note of a failure's message that the database's stars are too sparse for the
    field: a 1 deg telescope field near a galactic pole holds 3 stars of the bundled
    Gaia catalog (to G = 10), and its failure said only "no pattern verified against
    the catalog within the position hint's cone"; else ``""``. Counted with the solve's
    backend ``be`` (another would load its kernels after the solve's time-out)."""
    if cone is None or not fov_hi <= _SPARSE_FOV:
        return ""
    width, height = size
    area = fov_hi * fov_hi * height / width  # steradians (a narrow field)
    radius = math.sqrt(area / math.pi)
    found = len(be.brightest_in_cone(db.sky_index, cone.centre, radius, _SPARSE_STARS)[0])
    if found >= _SPARSE_STARS:
        return ""
    mag = db.parameters.get("star_max_magnitude")
    depth = "" if mag is None else f" (to magnitude {float(mag):.1f})"
    return (f"; about the hinted position the database's star table{depth} holds {found} "
            f"stars in the area of a {math.degrees(fov_hi):.2f} deg wide field, too few to "
            f"solve it: that needs a database with more stars there (a deeper catalog, or "
            f"the same with more verification_stars_per_fov or a smaller min_fov_deg)")


#: The docstring of the public solve functions (``{parameters}``: the options' fields).
SOLVE_DOC = """Solve for the camera attitude from star centroids (lost in space, or tracking).

Parameters
----------
centroids : list of Centroid, ExtractionResult, array_like (N, 2) or (N, 3), or Table
    Pixel positions (x, y[, brightness]) of the stars, brightest first: centred
    pixels (origin at the image centre, +x right, +y down) unless ``origin``
    says otherwise; an astropy ``Table`` (or a numpy structured array, such as
    sep's, or a pandas ``DataFrame``) needs ``origin``. Centroids more than
    15 % of the half-width (half-height) beyond the image's edge are refused
    (a transposed ``image_shape``, or pixels that are not centred).
{parameters}
options : SolveOptions, optional
    All of the above as one object; keyword arguments given as well override
    its values.

Returns
-------
SolveResult or SolveFailure
    A truthy :class:`~skysolve.SolveResult`, or a falsy
    :class:`~skysolve.SolveFailure` whose ``status`` is ``'no_match'``,
    ``'timeout'``, ``'too_few'`` or ``'invalid_config'``.

Raises
------
InvalidArgumentError, InvalidTypeError
    A parameter out of range or of the wrong type (the message names it).
"""


@with_options(SolveOptions, ("db", "centroids"),
              SOLVE_DOC.replace("Parameters\n----------\n",
                                "Parameters\n----------\ndb : SolverDatabase\n"
                                "    The pattern database to solve against.\n"))
def solve_from_centroids(db: PatternDatabase, centroids: Any,
                         options: SolveOptions) -> SolveResult | SolveFailure:
    return solve(db, centroids, options)
