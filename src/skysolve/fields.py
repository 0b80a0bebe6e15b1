"""One field the astrometry.net way: its sources, its solve, and solve-field's files.

astrometry.net's programs (``solve-field``, and the nova web service behind
``skysolve serve``) describe a field by its sources in 1-based FITS pixels of the
full image, brightest first, and answer with a set of files
(:mod:`skysolve.io.astrometry_files`). This module holds what
``skysolve-field`` and the server share: the sources of an image
(:func:`image_field`, optionally binned ``n x n`` for extraction only), the
database from a file (memory-mapped, cached per process), the solve of a
:class:`Field`, and the writing of the solution's files (:func:`write_solution`).

Binning maps the centre of binned pixel ``k`` (0-based) back to full-resolution
1-based pixel ``(k + 0.5) n + 0.5``.

May import: ``errors``, ``_args``, ``geometry``, ``io``, ``extraction``, ``batch``,
``database``, ``defaultdb``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Field", "OUTPUTS", "MIN_BINNED_PX", "effective_downsample", "image_field",
           "deeper_field", "load_database", "solve_field_sources", "write_solution",
           "catalog_in_field", "source_options", "reference_pixel", "holdable_reference"]

#: solve-field's output files: key -> suffix of the base name.
OUTPUTS = {"axy": ".axy", "wcs": ".wcs", "corr": ".corr", "match": ".match", "rdls": ".rdls",
           "solved": ".solved", "new_fits": ".new", "index_xyls": "-indx.xyls"}


@dataclass
class Field:
    """What one input gives the solve: sources in 1-based pixels, brightest first."""

    xy_fits: np.ndarray
    flux: np.ndarray
    background: float
    width: int
    height: int
    image: np.ndarray | None = None     # pixels as read (images only)
    fits_source: Path | None = None     # the input, when it is a FITS image
    hdu: int | None = None
    input_rows: np.ndarray | None = None  # each source's row in an x/y list read
    columns: dict[str, np.ndarray] | None = None  # an x/y list's other columns, per source
    # an all-sky lens's image circle the sources were kept to: (x, y, radius) in the full
    # image's centred pixels (its sky ends there: the field's size is measured to it)
    sky_circle: tuple[float, float, float] | None = None
    # how many of the sources are doubtful stars (an image's extraction lists them last)
    doubtful: int = 0

    def field_columns(self) -> dict[str, np.ndarray]:
        """The list's columns other than the positions, one value per source: an x/y
        list's own, else the ``.axy``'s ``FLUX`` and ``BACKGROUND`` (solve-field copies
        them into the ``.corr`` file)."""
        if self.columns is not None:
            return self.columns
        n = len(self.xy_fits)
        return {"FLUX": np.asarray(self.flux, dtype=np.float64).reshape(n),
                "BACKGROUND": np.broadcast_to(np.asarray(self.background, dtype=np.float64),
                                              (n,)).copy()}


def _binned(image: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``n x n`` blocks (the edge rows/columns that do not fill a block dropped)."""
    h, w = (image.shape[0] // n) * n, (image.shape[1] // n) * n
    return image[:h, :w].astype(np.float64).reshape(h // n, n, w // n, n).mean(axis=(1, 3))


#: Binning never takes the image's shorter side below this many pixels: capture programs
#: ask solve-field for a factor that speeds up its source extraction on large frames, and
#: the same factor on a small frame leaves too few stars (a 1024x768 frame binned 4x4
#: keeps 14-19 of its ~60; skysolve extracts a full frame in milliseconds anyway).
MIN_BINNED_PX = 384


def effective_downsample(downsample: int | None, height: int, width: int) -> int:
    """The binning factor used for a ``downsample`` request on a ``height x width`` image:
    the request, reduced so that the shorter side keeps :data:`MIN_BINNED_PX` pixels."""
    n = downsample or 1
    return max(1, min(n, min(height, width) // MIN_BINNED_PX))


def image_field(path: Path, *, hdu: int | None = None, downsample: int | None = None,
                invert: bool = False, noise: float | None = None, **extraction: Any) -> Field:
    """The sources of an image file (FITS, PNG, JPEG, TIFF, BMP, GIF, WebP, PNM; the format sniffed
    from its bytes), extracted from the image binned ``downsample x downsample`` (at most; see
    :func:`effective_downsample`).

    ``noise`` is the pixels' noise level (standard deviation, in the image's values) to
    detect against instead of the one the extraction estimates (binned ``n x n``, the
    mean of ``n^2`` pixels, its noise is ``noise / n``); ``extraction`` are keyword
    arguments of :func:`~skysolve.extraction.extract_centroids` (``sigma_threshold``,
    ``max_centroids``, ...).
    """
    from .extraction import extract_centroids
    from .io.images import _sniff, read_image

    is_fits = _sniff(path) == "FITS"
    image = read_image(path, hdu=hdu if is_fits else None)
    height, width = image.shape
    work = -image.astype(np.float64) if invert else image
    n = effective_downsample(downsample, height, width)
    if n > 1:
        work = _binned(work, n)
    if noise is not None:
        from astropy.nddata import NDData, StdDevUncertainty

        # (a constant map, one value broadcast: the extractor's noise map, without
        # an image-sized array of it)
        level = np.broadcast_to(np.float64(noise / n), work.shape)
        work = NDData(work, uncertainty=StdDevUncertainty(level))
    circle = extraction.get("sky_circle")
    if n > 1 and circle is not None and not isinstance(circle, str):
        # a circle in the full image's centred pixels, in the binned image's: binning
        # dropped the last (height % n) rows and (width % n) columns, so the binned
        # image's centre is half of those towards the full image's first pixel
        c = np.atleast_1d(np.asarray(circle, dtype=np.float64))
        x, y, r = (c if c.size == 3 else (0.0, 0.0, float(c[0])))
        extraction["sky_circle"] = ((x + 0.5 * (width % n)) / n, (y + 0.5 * (height % n)) / n,
                                    r / n)
    found = extract_centroids(work, **extraction)
    shape = (found.image_height, found.image_width)
    # 0-based pixels of the binned image -> 1-based pixels of the full image
    zero = (found.as_array()[:, :2] + (0.5 * shape[1] - 0.5, 0.5 * shape[0] - 0.5))
    xy_fits = (zero + 0.5) * n + 0.5
    circle = found.sky_circle
    if circle is not None:  # the binned image's centred pixels -> the full image's
        circle = (circle[0] * n - 0.5 * (width % n), circle[1] * n - 0.5 * (height % n),
                  circle[2] * n)
    return Field(xy_fits, found.as_array()[:, 2] * n * n, found.background_mean, width, height,
                 image, path if is_fits else None, hdu if is_fits else None,
                 sky_circle=circle,
                 doubtful=int(np.count_nonzero(found.flags == "doubtful")))



def deeper_field(path: Path, fld: Field, result: Any, solve: Callable[[Field, float], Any], *,
                 hdu: int | None = None, downsample: int | None = None, invert: bool = False,
                 **extraction: Any) -> tuple[Any, Field]:
    """``(result, fld)`` after a second, deeper extraction of an image that did not solve
    for want of stars, as :func:`skysolve.solve_image` makes
    (:mod:`skysolve.batch.deeper`).

    ``fld`` is :func:`image_field` of ``path`` with the keyword arguments given here,
    and ``result`` its solve's; when that failed for want of stars (``'too_few'`` or
    ``'no_match'`` with fewer than 20 sources, doubtful ones not counted), the image is
    extracted again at the default ``retry_sigma_threshold`` (3 sigmas) and solved with
    ``solve(field, timeout_ms)`` (its time limit at most ``timeout_ms``: see
    :mod:`skysolve.batch.deeper`).
    Returns the deeper field and its answer when it solves, else ``result`` and ``fld``
    as given -- as well when ``extraction`` names a ``sigma_threshold`` (a threshold
    asked for is kept).
    """
    from .batch.deeper import retry_deeper
    from .extraction.options import ExtractionOptions

    if "sigma_threshold" in extraction:
        return result, fld
    defaults = ExtractionOptions()
    return retry_deeper(fld, result, defaults.sigma_threshold, defaults.retry_sigma_threshold,
                        lambda sigma: image_field(path, hdu=hdu, downsample=downsample,
                                                  invert=invert,
                                                  **{**extraction, "sigma_threshold": sigma}),
                        solve, count=lambda f: len(f.xy_fits) - f.doubtful)


def _number(value: Any, name: str) -> float:
    """A number given as text (a command line's) or as a number (a JSON request's)."""
    from .errors import InvalidArgumentError

    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"{name} {str(value)[:40]!r} is not a number")


def _star_count(value: Any, name: str) -> int:
    """A number of brightest sources (>= 1), by the extraction's ``max_centroids`` rule
    (0 would keep no source at all)."""
    from .errors import InvalidArgumentError
    from .extraction.options import ExtractionOptions

    n = ExtractionOptions.check_value("max_centroids", _number(value, name), name)
    if n < 1:
        raise InvalidArgumentError(f"{name} must be at least 1, got {value!r}")
    return n


def _depth(value: Any, name: str) -> int:
    """solve-field's ``--depth``'s largest number: ``N``, ``A-B`` or a comma-separated list
    of them (solve-field builds quads from the field's sources A to B, or 1 to N, in turns;
    skysolve forms patterns from the brightest sources up to the largest number at once)."""
    from .errors import InvalidArgumentError

    text = str(int(value)) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise InvalidArgumentError(f"{name} {value!r}: give a number or ranges such as 1-50 "
                                   "or 10,20,30")
    largest = 0
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low or (dash and not high):
            raise InvalidArgumentError(f"{name} {text!r}: give a number or ranges such as "
                                       "1-50 or 10,20,30")
        first = _star_count(low, name)
        last = _star_count(high, name) if dash else first
        if last < first:
            raise InvalidArgumentError(f"{name} {text!r}: the range {part.strip()} runs "
                                       "backwards")
        largest = max(largest, last)
    return largest


def sky_circle_option(value: Any, name: str = "sky_circle") -> Any:
    """An all-sky lens's image circle as the command lines and the service take it:
    ``'auto'``, ``'none'`` (None), a radius or ``(x, y, radius)`` in the full image's
    centred pixels, as numbers or as text (``"500"``, ``"0,0,500"``); checked by the
    extraction option's own rule (:attr:`.ExtractionOptions.sky_circle`). A bad value
    raises :class:`~skysolve.errors.InvalidArgumentError` naming ``name``."""
    from .errors import InvalidArgumentError
    from .extraction.options import ExtractionOptions

    if isinstance(value, bool):  # (JSON true is no circle: refused, not read as 1 px)
        raise InvalidArgumentError(
            f"{name} must be auto, none, a radius R or X,Y,R (centred pixels), got {value!r}")
    if isinstance(value, str):
        low = value.strip().lower()
        if low == "none":
            return None
        if low == "auto":  # ('auto' in any case: the extraction option's own rule)
            return ExtractionOptions.check_value("sky_circle", value, name)
        try:
            numbers = [float(p) for p in low.replace(",", " ").split()]
        except ValueError:
            raise InvalidArgumentError(
                f"{name}: give auto, none, a radius R or X,Y,R (centred pixels), got "
                f"{value!r}") from None
        value = numbers[0] if len(numbers) == 1 else numbers
    return ExtractionOptions.check_value("sky_circle", value, name)


def source_options(objs: Any = None, depth: Any = None, nsigma: Any = None, sigma: Any = None,
                   *, names: dict[str, str] | None = None) -> dict[str, Any]:
    """solve-field's source options, checked: the extraction's ``max_centroids``
    (``objs``, the brightest sources kept), ``sigma_threshold`` (``nsigma``) and fixed
    noise level ``noise`` (``sigma``, counts), and ``depth`` (the brightest sources the
    solve forms patterns from; see :func:`solve_field_sources`). Each value is text (a
    command line's) or a number; only those given (not None) are returned.

    ``names`` names each option in errors (default: its keyword, as a web request has
    it; skysolve-field gives ``--objs``, ...). A bad value raises
    :class:`~skysolve.errors.InvalidArgumentError` naming it.
    """
    from . import _args
    from .extraction.options import ExtractionOptions

    name = {k: k for k in ("objs", "depth", "nsigma", "sigma")} | (names or {})
    out: dict[str, Any] = {}
    if objs is not None:
        out["max_centroids"] = _star_count(objs, name["objs"])
    if depth is not None:
        out["depth"] = _depth(depth, name["depth"])
    if nsigma is not None:
        out["sigma_threshold"] = ExtractionOptions.check_value(
            "sigma_threshold", _number(nsigma, name["nsigma"]), name["nsigma"])
    if sigma is not None:
        out["noise"] = _args.positive(_number(sigma, name["sigma"]), name["sigma"])
    return out


def reference_pixel(crpix_x: Any = None, crpix_y: Any = None, crpix_center: bool = False, *,
                    names: dict[str, str] | None = None
                    ) -> tuple[float | None, float | None] | None:
    """The WCS reference pixel asked for, 1-based FITS pixels (None on an axis: the image
    centre there, as ``crpix_center`` asks on both), or None when none is asked (the
    solution's own: the optical centre -- the image centre, unless the solve took the
    lens's axis elsewhere: an all-sky frame's image circle, a wide field's fitted
    centre). ``crpix_x``,
    ``crpix_y``: text or numbers; ``names`` as in :func:`source_options`."""
    from . import _args

    name = {"crpix_x": "crpix_x", "crpix_y": "crpix_y"} | (names or {})
    x, y = (None if v is None else _args.number(_number(v, name[k]), name[k])
            for v, k in ((crpix_x, "crpix_x"), (crpix_y, "crpix_y")))
    if x is None and y is None and not crpix_center:
        return None
    return x, y


def holdable_reference(result: Any, crpix: tuple[float | None, float | None] | None,
                       width: int, height: int) -> tuple[tuple[float, float] | None, str | None]:
    """``(reference pixel, None)`` for the files of ``result``: ``crpix``
    (:func:`reference_pixel`; an axis None is the image centre's) when the solution can be
    written about it (within the SIP tolerance of
    :func:`~skysolve.io.wcs.move_reference_pixel`); else ``(None, why)``, the files then
    written about the solution's own reference pixel, the optical centre -- the field
    solved, and its files are worth more than the reference pixel asked for."""
    from .errors import InvalidArgumentError
    from .io.wcs import move_reference_pixel

    if crpix is None:
        return None, None
    reference = (0.5 * width + 0.5 if crpix[0] is None else crpix[0],
                 0.5 * height + 0.5 if crpix[1] is None else crpix[1])
    try:
        move_reference_pixel(result.to_wcs(), reference, width, height)
    except InvalidArgumentError as exc:
        return None, " ".join(str(exc).split())
    return reference, None


@lru_cache(maxsize=4)
def load_database(path: str | None, fov_range_deg: tuple[float, float] | None = None) -> Any:
    """The database in ``path`` (memory-mapped, once per process; its pattern arrays'
    checksums verified once per state of the file, recorded in the cache directory), or
    the one for fields ``fov_range_deg`` wide (:func:`~skysolve.defaultdb.database_for_fields`:
    the default one, or a cached one of a narrower field's scale)."""
    from .defaultdb import database_for_fields, load_database_file

    if path:
        return load_database_file(path)

    return database_for_fields(fov_range_deg)


def solve_field_sources(db: Any, fld: Field, depth: int | None = None, **hints: Any) -> Any:
    """Solve a field's sources (brightest first) against ``db`` with skysolve's solve
    parameters.

    ``depth`` (solve-field's ``--depth``): the patterns are formed from the brightest
    ``depth`` sources only -- ``pattern_checking_stars``, within the 4 stars of a pattern
    and :data:`~skysolve.solver.options.MAX_PATTERN_STARS_LIMIT` -- with no deeper search
    beyond them, while every source verifies and fits the match, as solve-field's depth
    limits the sources it builds quads from, not those that confirm a match."""
    from .io.astrometry_files import centred_pixels
    from .solver.options import MAX_PATTERN_STARS_LIMIT
    from .solver.solve import circle_axis

    if depth is not None:
        hints = {**hints, "deep_search": False,
                 "pattern_checking_stars": min(max(int(depth), 4), MAX_PATTERN_STARS_LIMIT)}
    centred = centred_pixels(fld.xy_fits, fld.width, fld.height)
    _check_inside(fld, centred)
    axis = circle_axis(fld.sky_circle)
    if axis is not None and hints.get("crpix") is None and hints.get("camera_model") is None:
        # the lens's axis: the centre of its image circle (as solve_image takes it from
        # the extraction: skysolve.solver.solve.optical_centre)
        hints = {**hints, "crpix": axis}
    return db.solve_from_centroids(centred, image_width=fld.width, image_height=fld.height,
                                   **hints)


def _check_inside(fld: Field, centred: np.ndarray) -> None:
    """Refuse sources outside the field's image, in the 1-based pixels they came in (the
    solver's own message spoke of centred pixels and ``origin=``, which an x/y list's
    sender never saw)."""
    from .errors import InvalidArgumentError
    from .solver.solve import _extent_limits

    outside = ~(np.abs(centred) <= _extent_limits(fld.width, fld.height)).all(axis=1)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        x, y = fld.xy_fits[i]
        raise InvalidArgumentError(
            f"{int(outside.sum())} of {len(centred)} sources lie outside the "
            f"{fld.width}x{fld.height} image, e.g. source {i + 1} at x={x:.1f}, y={y:.1f}, "
            f"where 1-based FITS pixels span 0.5 to {fld.width + 0.5:g} in x and 0.5 to "
            f"{fld.height + 0.5:g} in y: check the image width and height given with the "
            "list")


def catalog_in_field(db: Any, result: Any, width: int, height: int):
    """Catalog stars inside the image, brightest first: (ra, dec, 1-based x/y)."""
    from .geometry import angle_between, radec_to_vector, vector_to_radec
    from .io.astrometry_files import fits_pixels

    ra_c, dec_c = result.pixel_to_world(0.0, 0.0)
    # the cone out to the farthest corner through the lens model: the small-angle
    # half-diagonal fell short of an orthographic or equisolid frame's corners (60.5 of
    # 73.3 deg on a 100 deg orthographic one); a corner beyond a fisheye's image: all sky
    hw, hh = 0.5 * width, 0.5 * height
    ra_k, dec_k = result.pixel_to_world(np.array([-hw, hw, hw, -hw]),
                                        np.array([-hh, -hh, hh, hh]))
    corners = radec_to_vector(np.asarray(ra_k, dtype=np.float64),
                              np.asarray(dec_k, dtype=np.float64))
    if np.all(np.isfinite(corners)):
        reach = math.degrees(float(np.max(angle_between(radec_to_vector(ra_c, dec_c),
                                                        corners))))
    else:
        reach = 180.0
    idx = db.cone_indices(ra_c, dec_c, min(180.0, 1.02 * reach + 0.1))
    ra, dec = vector_to_radec(db.star_vectors[idx])
    x, y = result.world_to_pixel(ra, dec)
    inside = np.isfinite(x) & (np.abs(x) <= 0.5 * width) & (np.abs(y) <= 0.5 * height)
    order = np.argsort(db.star_magnitudes[idx][inside], kind="stable")
    xy = fits_pixels(np.column_stack([x[inside], y[inside]])[order], width, height)
    return ra[inside][order], dec[inside][order], xy


def write_solution(out: dict[str, Path | None], result: Any, fld: Field, db: Any,
                   before_new: Any = None, crpix: tuple[float, float] | None = None) -> None:
    """Write the solution's files named in ``out`` (keys of :data:`OUTPUTS`, and ``kmz``:
    the image on the sky, :func:`skysolve.io.kml.sky_overlay_kmz`; None: not written).
    ``before_new(path)`` is called before the ``.new`` file is written;
    ``crpix`` is the WCS's reference pixel in 1-based FITS pixels (default: the optical
    centre; see :func:`skysolve.io.astrometry_files.wcs_header`).

    All or none: each file is written under a temporary name beside its own, and only
    when every one is written are they renamed into place, the ``.solved`` flag last (a
    capture program that finds a ``.wcs`` or ``.solved`` file takes the field for solved;
    a missing folder or a full disk must not leave half a solution behind).
    """
    from .io import astrometry_files as af

    for final in out.values():  # (before anything is written)
        if final and not Path(final).parent.is_dir():
            raise FileNotFoundError(f"cannot write {final}: there is no folder "
                                    f"{Path(final).parent}")
    staged: list[tuple[Path, Path]] = []

    def stage(key: str) -> Path | None:
        final = out.get(key)
        if not final:
            return None
        final = Path(final)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.staged")
        staged.append((tmp, final))
        return tmp

    w, h = fld.width, fld.height
    rows = np.asarray(result.matched_centroids, dtype=np.intp)
    # (the .corr and .match files name sources by their rows in the list the user has:
    # the .axy written, or the x/y list read, which was sorted and had rows dropped)
    ids = rows if fld.input_rows is None else np.asarray(fld.input_rows)[rows]
    try:
        if path := stage("wcs"):
            af.write_wcs(path, result, w, h, crpix)
        if path := stage("corr"):
            af.write_corr(path, result, fld.xy_fits[rows], ids, w, h,
                          {name: v[rows] for name, v in fld.field_columns().items()})
        ra, dec, xy = catalog_in_field(db, result, w, h)
        if path := stage("rdls"):
            af.write_rdls(path, ra, dec)
        if path := stage("index_xyls"):
            af.write_index_xyls(path, xy, w, h)
        if path := stage("match"):
            af.write_match(path, result, fld.xy_fits[rows], ids, len(fld.xy_fits), len(ra),
                           w, h, ranks=rows, crpix=crpix)
        if out.get("new_fits") and (fld.image is not None or fld.fits_source is not None):
            if before_new is not None:
                before_new(out["new_fits"])
            af.write_new_fits(stage("new_fits"), result, w, h, fld.fits_source, fld.image,
                              fld.hdu, crpix)
        if out.get("kmz") and fld.image is not None:
            from .io.display import display_pixels
            from .io.kml import sky_overlay_kmz

            stage("kmz").write_bytes(sky_overlay_kmz(
                display_pixels(fld.image), result.to_wcs(), w, h, name=Path(out["kmz"]).stem))
        if path := stage("solved"):
            af.write_solved(path)
        for tmp, final in staged:  # (the .solved flag was staged last)
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
