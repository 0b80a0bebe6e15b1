"""One call from an image to a solution: :func:`solve_image`.

Reads the image (a file, an array or an astropy container), extracts its
centroids (honouring a mask and a noise map), and solves them against a
database (by default the cached default database, :func:`skysolve.default_database`),
with the image size filled in. The :class:`~skysolve.ExtractionResult` is
attached to what comes back as ``.extraction``.

May import: ``errors``, ``_args``, ``imagedata``, ``io``, ``extraction``, ``solver``,
``batch``, ``database``, ``defaultdb``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .errors import InvalidArgumentError, InvalidTypeError
from .extraction import extract_centroids
from .extraction.options import ExtractionOptions
from .imagedata import as_image_data, is_image_container
from .solver.result import SolveFailure, SolveResult

__all__ = ["solve_image"]


def _image_and_headers(image_or_path: Any, hdu: Any) -> tuple[Any, list[Any]]:
    """The image to extract from (a container keeps its mask and noise) and its headers:
    the image HDU's, then the primary HDU's when the image is in an extension (a
    multi-extension file keeps DATE-OBS and the like in its primary header); none
    without a FITS header."""
    from .io.images import image_hdu_index, read_ccd_planes, read_fits_header, read_image

    if isinstance(image_or_path, str | os.PathLike):
        image = read_image(image_or_path, hdu=hdu)
        try:
            headers = [read_fits_header(image_or_path, hdu=hdu)]
        except Exception:  # noqa: BLE001 - not a FITS file: no header
            return image, []
        if image_hdu_index(image_or_path, hdu) != 0:
            headers.append(read_fits_header(image_or_path, hdu=0))
        else:  # a CCDData file: its mask and uncertainty planes count too (by default,
            # or the primary HDU named: hdu=0, "PRIMARY")
            mask, uncertainty = read_ccd_planes(image_or_path, image.shape)
            if mask is not None or uncertainty is not None:
                from astropy.nddata import NDData

                image = NDData(image, mask=mask, uncertainty=uncertainty)
        return image, headers
    if is_image_container(image_or_path):
        unpacked = as_image_data(image_or_path, hdu=hdu)
        headers = [] if unpacked.header is None else [unpacked.header]
        meta = getattr(image_or_path, "meta", None)
        if not headers and isinstance(meta, Mapping):
            # an NDData's meta as a dict (CCDData(..., meta={"DATE-OBS": ...})): its
            # time cards, as a FITS header would hold them
            headers = _time_cards(meta)
        if hasattr(image_or_path, "index_of"):  # an HDUList: the chosen HDU's pixels
            primary = image_or_path[0].header
            if headers and primary is not headers[0]:
                headers.append(primary)
            return unpacked.data, headers
        return image_or_path, headers
    if hdu is not None:
        raise InvalidArgumentError("hdu applies to FITS files and HDULists only")
    return read_image(image_or_path), []


#: The keys of a time of observation :func:`~skysolve.io.images.header_mjd` reads.
_TIME_KEYS = ("DATE-AVG", "MJD-AVG", "DATE-OBS", "TIME-OBS", "UT", "UTSTART", "DATE-END",
              "TIME-END", "UTEND", "MJD-OBS", "MJD-END", "EXPTIME", "EXPOSURE")


def _time_cards(meta: Mapping[Any, Any]) -> list[Any]:
    """A FITS header of the time cards in a metadata dict (keys in any case); none
    when it has none."""
    from astropy.io import fits

    cards = [(str(k).upper(), v) for k, v in meta.items()
             if str(k).upper() in _TIME_KEYS and isinstance(v, str | int | float)]
    return [fits.Header(cards)] if cards else []


def _header_time(headers: list[Any]) -> Any:
    """The first of ``headers`` with a time of observation (else the first: the solve's
    check of ``obstime`` then says what it lacks)."""
    from .io.images import header_mjd

    if not headers:
        raise InvalidArgumentError(
            "obstime='header' needs an image with a FITS header (or an NDData meta) "
            "holding its time: DATE-OBS, DATE-AVG or MJD-OBS")
    return next((h for h in headers if header_mjd(h) is not None), headers[0])


def _extraction_options(extraction: Any) -> ExtractionOptions:
    if extraction is None:
        return ExtractionOptions()
    if isinstance(extraction, ExtractionOptions):
        return extraction
    if isinstance(extraction, dict):
        return ExtractionOptions(**extraction)
    raise InvalidTypeError(
        f"extraction must be an ExtractionOptions or a dict of its fields, got "
        f"{type(extraction).__name__}")


def solve_image(image_or_path: Any, *, database: Any = None, hdu: int | str | None = None,
                extraction: ExtractionOptions | dict[str, Any] | None = None,
                **solve_options: Any) -> SolveResult | SolveFailure:
    """Solve an image in one call: read, extract centroids, solve.

    Parameters
    ----------
    image_or_path : str, path-like, ndarray, MaskedArray, NDData/CCDData, HDU or HDUList
        A FITS, PNG, JPEG, TIFF, BMP, GIF, WebP or PNM file, or an image in memory. A mask (True:
        masked) is honoured and an ``NDData`` uncertainty is the noise map (see
        :func:`skysolve.extract_centroids`); so are the ``MASK`` and ``UNCERT``
        extensions of a FITS file written by ``CCDData.write``.
    database : SolverDatabase, optional
        The database to solve against; default :func:`skysolve.default_database`
        (built once and cached on first use), or for fields narrower than its smallest
        (a scale hint's) a database of their scale already built into the cache
        directory (:func:`skysolve.defaultdb.database_for_fields`); told no scale, the
        cached databases of narrower fields too, after the default one found no match
        (:func:`skysolve.defaultdb.solve_in_narrower`).
    hdu : int or str, optional
        The HDU of a FITS file or ``HDUList`` (default: the first image).
    extraction : ExtractionOptions or dict, optional
        Centroid extraction parameters (default: the defaults of
        :func:`skysolve.extract_centroids`).
    **solve_options
        Any parameter of :meth:`SolverDatabase.solve_from_centroids`
        (``fov_estimate_deg``, ``position_hint``, ``obstime``, ...). The image size
        is taken from the image. ``obstime="header"`` takes the time of
        observation from the image's FITS header (the image HDU's, else the
        primary HDU's; an NDData's ``meta``).

    Returns
    -------
    SolveResult or SolveFailure
        With ``.extraction``, the :class:`~skysolve.ExtractionResult` the solve used.

    Examples
    --------
    >>> import skysolve
    >>> from skysolve.tests.realframes import ALT40, DATA
    >>> res = skysolve.solve_image(DATA / ALT40, database=db,      # doctest: +SKIP
    ...                            fov_estimate_deg=11.4)
    >>> res.boresight                                              # doctest: +SKIP
    <SkyCoord (ICRS): (ra, dec) in deg (230.67, 11.04)>
    """
    if database is not None and not hasattr(database, "solve_from_centroids"):
        # checked before the image is read (a path here is a common slip: load it first)
        hint = (" (load a database file with SolverDatabase.load_from_file(path))"
                if isinstance(database, str | os.PathLike) else "")
        raise InvalidTypeError(f"database must be a SolverDatabase, got "
                               f"{type(database).__name__}{hint}")
    image, headers = _image_and_headers(image_or_path, hdu)
    if (isinstance(solve_options.get("obstime"), str)
            and solve_options["obstime"].strip().lower() == "header"):
        solve_options["obstime"] = _header_time(headers)
    for name in ("image_shape", "image_width", "image_height"):
        if name in solve_options:
            raise InvalidArgumentError(f"solve_image takes the image size from the image; "
                                       f"do not pass {name}")
    from .batch.deeper import limited, solve_deeper

    extraction = _extraction_options(extraction)
    found = extract_centroids(image, options=extraction)
    chosen = database is None
    if chosen:
        from .defaultdb import database_for_solve

        database = database_for_solve(solve_options, found.image_width)

    def solve(centroids: Any, limit_ms: float | None = None, db: Any = database
              ) -> SolveResult | SolveFailure:
        kw = solve_options if limit_ms is None else limited(solve_options, limit_ms)
        return db.solve_from_centroids(
            centroids, image_shape=(found.image_height, found.image_width), **kw)

    result, found = solve_deeper(image, found, solve(found), extraction, solve)
    if chosen:  # (no scale: the cached databases of narrower fields too, as solve-field)
        from .defaultdb import solve_in_narrower

        result, _ = solve_in_narrower(lambda db, ms: solve(found, ms, db), result,
                                      solve_options, found.image_width)
    result.extraction = found
    return result
