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

May import: ``errors``, ``geometry``, ``io``, ``extraction``, ``database``, ``defaultdb``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Field", "OUTPUTS", "MIN_BINNED_PX", "effective_downsample", "image_field",
           "load_database", "solve_field_sources", "write_solution", "catalog_in_field"]

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
    """The sources of an image file (FITS, PNG, JPEG, TIFF, BMP, GIF, PNM; the format sniffed
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
    found = extract_centroids(work, **extraction)
    shape = (found.image_height, found.image_width)
    # 0-based pixels of the binned image -> 1-based pixels of the full image
    zero = (found.as_array()[:, :2] + (0.5 * shape[1] - 0.5, 0.5 * shape[0] - 0.5))
    xy_fits = (zero + 0.5) * n + 0.5
    return Field(xy_fits, found.as_array()[:, 2] * n * n, found.background_mean, width, height,
                 image, path if is_fits else None, hdu if is_fits else None)


@lru_cache(maxsize=2)
def load_database(path: str | None) -> Any:
    """The database in ``path`` (memory-mapped, once per process; its pattern arrays'
    checksums verified once per state of the file, recorded in the cache directory), or
    the default one."""
    from .defaultdb import default_database, load_database_file

    if path:
        return load_database_file(path)

    return default_database()


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

    if depth is not None:
        hints = {**hints, "deep_search": False,
                 "pattern_checking_stars": min(max(int(depth), 4), MAX_PATTERN_STARS_LIMIT)}
    centred = centred_pixels(fld.xy_fits, fld.width, fld.height)
    return db.solve_from_centroids(centred, image_width=fld.width, image_height=fld.height,
                                   **hints)


def catalog_in_field(db: Any, result: Any, width: int, height: int):
    """Catalog stars inside the image, brightest first: (ra, dec, 1-based x/y)."""
    from .geometry import vector_to_radec
    from .io.astrometry_files import fits_pixels

    ra_c, dec_c = result.pixel_to_world(0.0, 0.0)
    half_diag = math.degrees(0.5 * math.hypot(width, height) / result.camera_model.focal_length_px)
    idx = db.cone_indices(ra_c, dec_c, min(180.0, 1.1 * half_diag + 0.1))
    ra, dec = vector_to_radec(db.star_vectors[idx])
    x, y = result.world_to_pixel(ra, dec)
    inside = np.isfinite(x) & (np.abs(x) <= 0.5 * width) & (np.abs(y) <= 0.5 * height)
    order = np.argsort(db.star_magnitudes[idx][inside], kind="stable")
    xy = fits_pixels(np.column_stack([x[inside], y[inside]])[order], width, height)
    return ra[inside][order], dec[inside][order], xy


def write_solution(out: dict[str, Path | None], result: Any, fld: Field, db: Any,
                   before_new: Any = None, crpix: tuple[float, float] | None = None) -> None:
    """Write the solution's files named in ``out`` (keys of :data:`OUTPUTS`; None: not
    written). ``before_new(path)`` is called before the ``.new`` file is written;
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
        if path := stage("solved"):
            af.write_solved(path)
        for tmp, final in staged:  # (the .solved flag was staged last)
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
