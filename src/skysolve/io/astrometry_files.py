"""The files astrometry.net's ``solve-field`` writes, written from a skysolve solve.

Capture programs (KStars/Ekos, N.I.N.A., SharpCap, APT, Siril, scripts) read
these after calling ``solve-field``; ``skysolve-field`` writes them with the
same names, layouts and column names, implemented from the documented formats.
Pixel positions in every file are 1-based FITS pixels of the full image
(the centre of array pixel ``[row, col]`` is ``(col + 1, row + 1)``).

=============  =====================================================================
file           content
=============  =====================================================================
``.axy``       the extracted sources: binary table ``X``, ``Y``, ``FLUX``,
               ``BACKGROUND``, brightest first; header ``IMAGEW``, ``IMAGEH``
``.xyls``      the same layout (``X``, ``Y``, optional ``FLUX``) read as input
``.wcs``       the solution: a header-only FITS file (TAN, or TAN-SIP with
               distortion) with ``IMAGEW``, ``IMAGEH``
``.corr``      the matched stars: ``field_x``, ``field_y``, ``field_ra``,
               ``field_dec``, ``index_x``, ``index_y``, ``index_ra``, ``index_dec``,
               ``index_id``, ``field_id``, ``match_weight``, then the field list's
               other columns (``FLUX``, ``BACKGROUND``, ...) for each matched source
``.rdls``      the catalog stars inside the image: ``RA``, ``DEC`` (degrees)
``-indx.xyls`` the same stars in pixels: ``X``, ``Y``
``.match``     one row describing the match (its four brightest matched stars stand
               for astrometry.net's quad), the WCS terms and the match counts
``.solved``    one byte, 1, at the field's index: the field solved
``.new``       the input image with the WCS in its header (FITS)
=============  =====================================================================

Every file is written to a temporary name and renamed into place.

May import: ``errors``, ``_args``, ``geometry``, ``camera``, ``imagedata``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import FileFormatError, InvalidArgumentError
from .wcs import replace_wcs

__all__ = ["write_axy", "read_xylist", "is_xylist", "xylist_columns", "write_wcs",
           "write_corr", "write_rdls", "write_index_xyls", "write_match", "write_solved",
           "write_new_fits", "write_fits_with_wcs", "wcs_header", "fits_pixels",
           "centred_pixels", "field_parity", "rotation_up_east_of_north"]

#: FITS binary-table column codes by numpy kind: doubles, 64-bit integers, logicals.
_FITS_CODES = {"f": "D", "i": "K", "u": "K", "b": "L"}


def fits_pixels(xy: NDArray[np.float64], width: int, height: int) -> NDArray[np.float64]:
    """Centred pixel positions ``(N, 2)`` → 1-based FITS pixels."""
    return np.asarray(xy, dtype=np.float64) + (0.5 + 0.5 * width, 0.5 + 0.5 * height)


def centred_pixels(xy: NDArray[np.float64], width: int, height: int) -> NDArray[np.float64]:
    """1-based FITS pixels ``(N, 2)`` → centred pixel positions."""
    return np.asarray(xy, dtype=np.float64) - (0.5 + 0.5 * width, 0.5 + 0.5 * height)


def _write(path: Path, hdul: Any) -> None:
    """Write an HDUList atomically (temporary file in the same folder, then rename)."""
    from .._files import atomic_path

    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, output_verify="silentfix")


def _table(columns: dict[str, NDArray], header: Any = None) -> Any:
    from astropy.io import fits

    cols = []
    for name, values in columns.items():
        v = np.asarray(values)
        code = _FITS_CODES[v.dtype.kind]
        fmt = code if v.ndim == 1 else f"{v.shape[1]}{code}"
        cols.append(fits.Column(name=name, format=fmt, array=v))
    return fits.BinTableHDU.from_columns(cols, header=header)


def _hdul(table: Any, primary: Any = None) -> Any:
    from astropy.io import fits

    return fits.HDUList([fits.PrimaryHDU(header=primary), table])


def write_axy(path: Path, xy_fits: NDArray, flux: NDArray, background: NDArray | float,
              width: int, height: int, extra: dict[str, Any] | None = None) -> None:
    """The ``.axy`` file: sources in 1-based pixels, brightest first."""
    from astropy.io import fits

    header = fits.Header()
    header["IMAGEW"] = (int(width), "image width, pixels")
    header["IMAGEH"] = (int(height), "image height, pixels")
    header["ANRUN"] = (True, "solve this field")
    for key, value in (extra or {}).items():
        header[key] = value
    n = len(xy_fits)
    table = _table({"X": xy_fits[:, 0], "Y": xy_fits[:, 1],
                    "FLUX": np.asarray(flux, dtype=np.float64).reshape(n),
                    "BACKGROUND": np.broadcast_to(np.asarray(background, dtype=np.float64),
                                                  (n,)).copy()})
    _write(path, _hdul(table, header))


def _table_hdu(hdul: Any, hdu: int | None) -> Any:
    """The table HDU ``hdu`` of an open FITS file (None: its first table), else None."""
    from astropy.io import fits

    kinds = fits.BinTableHDU | fits.TableHDU
    if hdu is None:
        return next((h for h in hdul[1:] if isinstance(h, kinds)), None)
    try:
        chosen = hdul[hdu]
    except (IndexError, KeyError):
        return None
    return chosen if isinstance(chosen, kinds) else None


def is_xylist(path: str | os.PathLike, x_column: str = "X", y_column: str = "Y",
              hdu: int | None = None) -> bool:
    """Whether a file is an x/y list by its content, as ``solve-field`` decides: a FITS
    file whose extension ``hdu`` (default 1) is a table with ``x_column`` and
    ``y_column`` (a SExtractor catalog named ``cat.fits`` is one, an image is not).
    Only headers are read."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            table = _table_hdu(hdul, 1 if hdu is None else hdu)
            if table is None:
                return False
            names = {str(v).strip().upper() for k, v in table.header.items()
                     if k.startswith("TTYPE")}
    except (OSError, ValueError, TypeError):  # (not FITS, or not readable as FITS)
        return False
    return x_column.upper() in names and y_column.upper() in names


def read_xylist(path: str | os.PathLike, x_column: str = "X", y_column: str = "Y",
                sort_column: str | None = None, sort_ascending: bool = False,
                hdu: int | None = None
                ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, Any,
                           NDArray[np.intp]]:
    """Read an ``.xyls``/``.axy`` table: 1-based positions ``(N, 2)``, the sort column's
    values (None when absent), the table's header, with the primary header's
    ``IMAGEW``/``IMAGEH`` when it has them (where solve-field's ``.axy`` files keep them),
    and each position's row in the table (0-based: the ``.corr`` file's ``field_id``).

    Rows are ordered by ``sort_column`` (default ``FLUX`` when present),
    descending unless ``sort_ascending``. ``hdu`` is the table's extension (default:
    the first table).
    """
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            table = _table_hdu(hdul, hdu)
            if table is None:
                raise FileFormatError(f"{path}: no table of sources (an x/y list needs a "
                                      f"FITS table with {x_column} and {y_column} columns)")
            data, header = table.data, table.header.copy()
            for key in ("IMAGEW", "IMAGEH"):
                if key in hdul[0].header:
                    header[key] = hdul[0].header[key]
            names = [n.upper() for n in data.columns.names]
            for col in (x_column, y_column):
                if col.upper() not in names:
                    raise FileFormatError(f"{path}: no column {col!r} (it has {names})")
            xy = np.column_stack([np.asarray(data[x_column], dtype=np.float64),
                                  np.asarray(data[y_column], dtype=np.float64)])
            key = sort_column or ("FLUX" if "FLUX" in names else None)
            if key is not None and key.upper() not in names:
                raise InvalidArgumentError(f"--sort-column {key!r} is not a column of {path}")
            values = None if key is None else np.asarray(data[key], dtype=np.float64)
    except OSError as exc:
        raise FileFormatError(f"{path}: not a readable FITS x/y list ({exc})") from exc
    rows = np.arange(len(xy))
    if values is not None:
        rows = np.argsort(values if sort_ascending else -values, kind="stable")
        xy, values = xy[rows], values[rows]
    return xy, values, header, rows


def xylist_columns(path: str | os.PathLike, x_column: str = "X", y_column: str = "Y",
                   hdu: int | None = None) -> dict[str, NDArray]:
    """The x/y list's other numeric columns by name, in table order: what ``solve-field``
    copies into the ``.corr`` file beside each matched source (``FLUX``, ``MAG``, ...).
    Columns that are not scalar numbers (strings, vectors) are left out."""
    from astropy.io import fits

    skip = {x_column.upper(), y_column.upper()}
    with fits.open(path, memmap=False) as hdul:
        table = _table_hdu(hdul, hdu)
        if table is None:
            return {}
        out = {}
        for name in table.data.columns.names:
            values = np.asarray(table.data[name])
            if name.upper() not in skip and values.ndim == 1 and values.dtype.kind in "fiub":
                out[name] = values.astype(np.float64 if values.dtype.kind == "f" else
                                          np.int64 if values.dtype.kind in "iu" else bool)
    return out


def _cd_form(header: Any) -> Any:
    """The header with ``PCi_j`` x ``CDELTi`` written as ``CDi_j`` (as solve-field writes it,
    and as most readers of ``.wcs`` files look for it)."""
    if "CD1_1" in header or "PC1_1" not in header:
        return header
    cdelt = (header.get("CDELT1", 1.0), header.get("CDELT2", 1.0))
    for i in (1, 2):
        for j in (1, 2):
            value = float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) * cdelt[i - 1]
            header.set(f"CD{i}_{j}", value, "linear transform matrix (deg per pixel)",
                       after=f"PC{i}_{j}" if f"PC{i}_{j}" in header else None)
    for key in ("PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2", "MJDREF"):
        header.remove(key, ignore_missing=True)
    return header


def wcs_header(result: Any, width: int, height: int,
               crpix: tuple[float, float] | None = None) -> Any:
    """The solution's FITS WCS header (CD form) with ``IMAGEW``/``IMAGEH``.

    ``crpix``: its reference pixel there (1-based FITS pixels; solve-field's
    ``--crpix-x/-y``), CRVAL that pixel's sky position, the solution held about it
    by SIP terms (:func:`~skysolve.io.wcs.move_reference_pixel`); default: the
    optical centre, which is the image centre unless the camera model says otherwise.
    """
    if crpix is None:
        header = result.to_header()
    else:
        from .wcs import move_reference_pixel, wcs_to_header

        header = wcs_to_header(move_reference_pixel(result.to_wcs(), crpix, width, height))
    header = _cd_form(header)
    for key in ("NAXIS", "NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    header["IMAGEW"] = (int(width), "image width, pixels")
    header["IMAGEH"] = (int(height), "image height, pixels")
    header["EQUINOX"] = (2000.0, "equatorial coordinates definition (yr)")
    header.add_history("WCS by skysolve (skysolve-field)")
    return header


def write_wcs(path: Path, result: Any, width: int, height: int,
              crpix: tuple[float, float] | None = None) -> None:
    """The ``.wcs`` file: a FITS file holding only the WCS header (``crpix``: its
    reference pixel, see :func:`wcs_header`)."""
    from astropy.io import fits

    _write(path, fits.HDUList([fits.PrimaryHDU(header=wcs_header(result, width, height,
                                                                 crpix))]))


def _wcs_sky(result: Any, xy_fits: NDArray) -> tuple[NDArray, NDArray]:
    """RA/Dec (degrees) of 1-based pixels through the solution's WCS."""
    world = result.to_wcs().pixel_to_world_values(xy_fits[:, 0] - 1.0, xy_fits[:, 1] - 1.0)
    return np.asarray(world[0], dtype=np.float64), np.asarray(world[1], dtype=np.float64)


def write_corr(path: Path, result: Any, field_xy_fits: NDArray, field_ids: NDArray,
               width: int, height: int, field_columns: dict[str, NDArray] | None = None
               ) -> None:
    """The ``.corr`` file: one row per matched star.

    ``field_xy_fits`` are the matched sources' 1-based positions and ``field_ids``
    their rows in the ``.axy`` list; ``match_weight`` is 1 (every match verified).
    ``field_columns`` are the field list's other columns for the matched sources
    (``FLUX``, ``BACKGROUND``, ...), written after ``match_weight`` as solve-field
    writes them.
    """
    n = len(field_ids)
    field_ra, field_dec = _wcs_sky(result, field_xy_fits) if n else (np.zeros(0),) * 2
    rd = np.asarray(result.matched_radec_deg, dtype=np.float64).reshape(n, 2)
    ix, iy = result.world_to_pixel(rd[:, 0], rd[:, 1]) if n else (np.zeros(0),) * 2
    index_xy = fits_pixels(np.column_stack([ix, iy]), width, height)
    columns = {"field_x": field_xy_fits[:, 0], "field_y": field_xy_fits[:, 1],
               "field_ra": field_ra, "field_dec": field_dec,
               "index_x": index_xy[:, 0], "index_y": index_xy[:, 1],
               "index_ra": rd[:, 0], "index_dec": rd[:, 1],
               "index_id": np.asarray(result.matched_catalog_ids, dtype=np.int64),
               "field_id": np.asarray(field_ids, dtype=np.int64),
               "match_weight": np.ones(n)}
    own = {name.upper() for name in columns}
    for name, values in (field_columns or {}).items():
        if name.upper() not in own:  # (a list's own "field_x" would shadow the match's)
            columns[name] = np.asarray(values).reshape(n)
    _write(path, _hdul(_table(columns)))


def write_rdls(path: Path, ra_deg: NDArray, dec_deg: NDArray) -> None:
    """The ``.rdls`` file: catalog stars in the field, brightest first."""
    _write(path, _hdul(_table({"RA": np.asarray(ra_deg, dtype=np.float64),
                               "DEC": np.asarray(dec_deg, dtype=np.float64)})))


def write_index_xyls(path: Path, xy_fits: NDArray, width: int, height: int) -> None:
    """The ``-indx.xyls`` file: the catalog stars of the ``.rdls`` in 1-based pixels."""
    from astropy.io import fits

    header = fits.Header({"IMAGEW": int(width), "IMAGEH": int(height)})
    _write(path, _hdul(_table({"X": xy_fits[:, 0], "Y": xy_fits[:, 1]}), header))


#: Points along each half of a line across the image at which its sky positions are taken
#: (:func:`field_extent_deg`).
EXTENT_SAMPLES = 256


def field_extent_deg(vectors: NDArray) -> float:
    """A field's size along a line across the image through its centre, degrees.

    ``vectors`` (``(2 n + 1, 3)``, NaN rows where the camera images no sky) are the sky
    directions of points evenly along the line from one edge to the other, the
    image's centre in the middle row. The size is the angle from the centre out to the
    farthest imaged point on each side, summed: a fisheye's 200 deg across, which no
    angle between the two edges can be (at most 180 deg: 160 for it), and the width of
    an all-sky image circle narrower than the frame, whose edges see no sky. For a
    pinhole lens, whose straight lines through the centre are great circles, it is the
    angle between the edges. NaN when the centre images no sky.
    """
    v = np.asarray(vectors, dtype=np.float64)
    mid = len(v) // 2
    centre = v[mid]
    if not np.all(np.isfinite(centre)):
        return math.nan
    total = 0.0
    for half in (v[mid::-1], v[mid:]):
        seen = np.flatnonzero(np.all(np.isfinite(half), axis=1))
        far = half[seen[-1]]  # (the centre at least)
        chord = float(np.linalg.norm(far - centre))
        total += 2.0 * math.asin(min(1.0, 0.5 * chord))
    return math.degrees(total)


def line_extent_deg(to_world: Any, a: tuple[float, float], b: tuple[float, float]) -> float:
    """A field's size (degrees) along the line from pixel ``a`` to ``b`` through the image
    centre (its midpoint), sampled evenly: ``to_world(x, y)`` gives RA, Dec in degrees
    (NaN where no sky is imaged); see :func:`field_extent_deg`. Where the sky ends
    between two samples (an all-sky image circle's rim), the rim is found between them
    (:func:`_rim`): the samples, 3 px apart across a 1600 px frame, left an
    orthographic circle 168 deg across where it is 180."""
    t = np.linspace(0.0, 1.0, 2 * EXTENT_SAMPLES + 1)
    v = _line_vectors(to_world, a, b, t)
    seen = np.all(np.isfinite(v), axis=1)
    mid = len(t) // 2
    if seen[mid]:
        for step in (-1, 1):
            i = mid
            while 0 <= i + step < len(t) and seen[i + step]:
                i += step
            if 0 <= i + step < len(t):
                v[i + step] = _rim(to_world, a, b, t[i], t[i + step])
    return field_extent_deg(v)


#: Points and rounds of the search for the rim between two samples (:func:`_rim`): each
#: round narrows the interval this many times.
_RIM_POINTS, _RIM_ROUNDS = 32, 3


def _line_vectors(to_world: Any, a: tuple[float, float], b: tuple[float, float],
                  t: NDArray) -> NDArray:
    """The sky directions (unit vectors, NaN where no sky) of the points at fractions
    ``t`` of the line from pixel ``a`` to ``b``."""
    from ..geometry import radec_to_vector

    ra, dec = to_world(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    return radec_to_vector(np.asarray(ra, dtype=np.float64).reshape(-1),
                           np.asarray(dec, dtype=np.float64).reshape(-1))


def _rim(to_world: Any, a: tuple[float, float], b: tuple[float, float],
         inside: float, outside: float) -> NDArray:
    """The sky direction of the last imaged point between the line's fractions
    ``inside`` (imaged) and ``outside`` (not), to 1/32**3 of their distance."""
    best = _line_vectors(to_world, a, b, np.array([inside]))[0]
    for _ in range(_RIM_ROUNDS):
        t = np.linspace(inside, outside, _RIM_POINTS + 1)
        v = _line_vectors(to_world, a, b, t[1:-1])
        imaged = np.all(np.isfinite(v), axis=1)
        # the points imaged without a gap from ``inside``: the first one beyond bounds
        # the next round
        k = int(np.argmin(imaged)) if not imaged.all() else len(imaged)
        if k:
            best = v[k - 1]
        inside, outside = float(t[k]), float(t[k + 1])
    return best


def solution_extent_deg(result: Any, edge: tuple[float, float],
                        sky_circle: tuple[float, float, float] | None = None) -> float:
    """A solution's field size (degrees) along the line through the image centre from
    centred pixel ``edge`` to its opposite (:func:`line_extent_deg`): ``edge = (w / 2,
    0)`` gives the width, ``(0, h / 2)`` the height. With ``sky_circle`` (an all-sky
    lens's image circle, ``(x, y, radius)`` in centred pixels) the points beyond it
    image no sky: the size is the sky's, not the frame's (a 190 deg circle in a frame
    whose edges are 2 % farther out was 194 deg)."""
    to_world = result.pixel_to_world
    if sky_circle is not None:
        x0, y0, r = (float(v) for v in sky_circle)

        def to_world(x: Any, y: Any) -> tuple[Any, Any]:
            ra, dec = result.pixel_to_world(x, y)
            beyond = np.hypot(np.asarray(x) - x0, np.asarray(y) - y0) > r
            return (np.where(beyond, np.nan, np.asarray(ra, dtype=np.float64)),
                    np.where(beyond, np.nan, np.asarray(dec, dtype=np.float64)))

    return line_extent_deg(to_world, (-edge[0], -edge[1]), edge)


def field_size_unit(width_deg: float, height_deg: float) -> tuple[float, float, str]:
    """A field's size in the unit solve-field reports it in: degrees, or arcminutes or
    arcseconds when the smaller side is under a degree or an arcminute; returns
    ``(width, height, unit)`` with ``unit`` one of ``'degrees'``, ``'arcminutes'``,
    ``'arcseconds'``."""
    smaller = min(width_deg, height_deg)
    if smaller < 1.0 / 60.0:
        return width_deg * 3600.0, height_deg * 3600.0, "arcseconds"
    if smaller < 1.0:
        return width_deg * 60.0, height_deg * 60.0, "arcminutes"
    return width_deg, height_deg, "degrees"


def sexagesimal(ra_deg: float, dec_deg: float) -> tuple[str, str]:
    """``('HH:MM:SS.sss', '+DD:MM:SS.sss')`` of a sky position in degrees, as solve-field
    prints the field centre.

    Both are rounded to the millisecond before they are split, so a carry runs into the
    minutes and hours (59.9995 s is ``01:00.000``) and the hours wrap at 24: an RA a
    millisecond of time short of 360 deg is ``00:00:00.000``, never ``24:00:00.000``
    (astropy's formatting carries, but not round the clock). The declination's sign is
    its value's (``-00:00:00.000`` just south of the equator).
    """
    day_ms = 24 * 3600 * 1000
    ra_ms = round((float(ra_deg) % 360.0) / 15.0 * 3600.0 * 1000.0) % day_ms
    dec_ms = round(abs(float(dec_deg)) * 3600.0 * 1000.0)

    def split(ms: int) -> str:
        whole, milli = divmod(ms, 1000)
        minutes, seconds = divmod(whole, 60)
        units, minutes = divmod(minutes, 60)
        return f"{units:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}"

    return split(ra_ms), ("-" if float(dec_deg) < 0 else "+") + split(dec_ms)


def field_parity(result: Any) -> str:
    """``'pos'`` when the WCS's ``det(CD) < 0`` (the sky as seen, in FITS's y-up
    display), ``'neg'`` otherwise; with skysolve's conventions ``'pos'`` is
    ``parity_flip=True``."""
    return "pos" if float(np.linalg.det(result.cd_matrix)) < 0 else "neg"


def rotation_up_east_of_north(result: Any) -> float:
    """Position angle of the image's +y (FITS) axis, degrees east of north, in (-180, 180]."""
    cd = result.cd_matrix
    angle = math.degrees(math.atan2(cd[0, 1], cd[1, 1]))
    return angle if angle > -180.0 else angle + 360.0


def field_radius_deg(camera: Any, width: int, height: int) -> float:
    """The angle (degrees) from the optical axis out to the image's farthest corner, through
    the camera's lens model: ``atan`` of the half-diagonal over the focal length for a
    pinhole lens (the half-diagonal times the pixel scale, 41.4 deg for a 62 deg field of
    1920 x 1280 px whose corners are 35.8 deg out, only for narrow ones), and as far as
    the projection images (180 deg for a fisheye's) where a corner lies beyond it."""
    from ..camera import projection as _proj

    hw, hh = 0.5 * width, 0.5 * height
    v = camera.pixel_to_vectors(np.array([-hw, hw, hw, -hw]), np.array([-hh, -hh, hh, hh]))
    if not np.all(np.isfinite(v)):
        return math.degrees(_proj.max_angle(camera.projection_code))
    return math.degrees(float(np.max(np.arctan2(np.hypot(v[:, 0], v[:, 1]), v[:, 2]))))


def write_match(path: Path, result: Any, field_xy_fits: NDArray, field_ids: NDArray,
                num_field: int, num_index: int, width: int, height: int,
                ranks: NDArray | None = None, crpix: tuple[float, float] | None = None
                ) -> None:
    """The ``.match`` file: one row describing the match. ``ranks``: the matched sources'
    brightness ranks (default: ``field_ids``, when the list is brightest first);
    ``crpix``: the WCS's reference pixel (see :func:`wcs_header`)."""
    from ..geometry import radec_to_vector

    # the brightest four matched sources
    quad = np.argsort(field_ids if ranks is None else ranks, kind="stable")[:4]
    k = len(quad)
    stars = np.full(4, -1, np.int64)
    objs = np.full(4, -1, np.int64)
    pix = np.full((4, 2), np.nan)
    xyz = np.full((4, 3), np.nan)
    stars[:k] = np.asarray(result.matched_catalog_ids)[quad]
    objs[:k] = np.asarray(field_ids)[quad]
    pix[:k] = field_xy_fits[quad]
    rd = np.asarray(result.matched_radec_deg).reshape(-1, 2)
    if len(rd):
        xyz[:k] = radec_to_vector(rd[quad, 0], rd[quad, 1])
    header = wcs_header(result, width, height, crpix)
    centre = result.rotation_matrix_icrs_to_camera[2]
    radius = field_radius_deg(result.camera_model, width, height)
    row = {"FIELDNUM": np.array([1]), "PARITY": np.array([field_parity(result) == "neg"]),
           "STARS": stars[None], "FIELDOBJS": objs[None], "QUADPIX": pix.reshape(1, 8),
           "QUADXYZ": xyz.reshape(1, 12), "CENTERXYZ": centre.reshape(1, 3),
           "RADIUS": np.array([radius]), "NMATCH": np.array([int(result.num_matches)]),
           "NDISTRACT": np.array([int(num_field - result.num_matches)]),
           "NCONFLICT": np.array([0]), "NFIELD": np.array([int(num_field)]),
           "NINDEX": np.array([int(num_index)]),
           "LOGODDS": np.array([-math.log(max(result.probability, 1e-300))]),
           "WORSTLOGODDS": np.array([-math.log(max(result.probability, 1e-300))]),
           "CRVAL": np.array([[header["CRVAL1"], header["CRVAL2"]]]),
           "CRPIX": np.array([[header["CRPIX1"], header["CRPIX2"]]]),
           "CD": np.array([[header["CD1_1"], header["CD1_2"], header["CD2_1"],
                            header["CD2_2"]]]),
           "TIMEUSED": np.array([result.solve_time_ms / 1e3])}
    _write(path, _hdul(_table(row)))


def write_solved(path: Path, field: int = 1) -> None:
    """The ``.solved`` file: byte ``field - 1`` set to 1."""
    from .._files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(b"\x00" * (field - 1) + b"\x01")


def write_new_fits(path: Path, result: Any, width: int, height: int, source: Path | None,
                   image: NDArray | None, hdu: int | None = None,
                   crpix: tuple[float, float] | None = None) -> None:
    """The ``.new`` file: the input FITS file (every HDU) with the WCS in the header of
    the image HDU (``hdu``, default the one :func:`~skysolve.io.images.read_image`
    reads), or for another format a FITS file of the image as read. ``crpix``: the
    WCS's reference pixel (see :func:`wcs_header`). The input's HDUs are written back
    as stored (see :func:`write_fits_with_wcs`).
    """
    from astropy.io import fits

    wcs = wcs_header(result, width, height, crpix)
    if source is None:
        _write(path, fits.HDUList([fits.PrimaryHDU(np.asarray(image), header=wcs)]))
        return
    write_fits_with_wcs(path, source, wcs, hdu)


def write_fits_with_wcs(path: Path, source: Path, wcs: Any, hdu: int | str | None = None
                        ) -> None:
    """The FITS file ``source`` (every HDU) written to ``path`` with the header cards
    ``wcs`` in the header of its image HDU (``hdu``, default the one
    :func:`~skysolve.io.images.read_image` reads: a data cube before the image is not it).

    The image HDU's old WCS keywords are removed first (:func:`~skysolve.io.wcs.replace_wcs`),
    so that astropy reads the new WCS alone. The HDUs
    are written back as stored: integers with their ``BSCALE``, ``BZERO`` and ``BLANK``,
    and a tile-compressed image as its compressed tiles (decoded and encoded again,
    scaled integers would come back as floats and a quantised float image quantised
    anew, every pixel changed). A ``CHECKSUM`` of the image HDU is recomputed; the
    ``ZHECKSUM`` of a compressed one (its decompressed header's) is dropped, its
    ``ZDATASUM`` kept (the decompressed data are the same).
    """
    from astropy.io import fits

    from .images import image_hdu_index

    index = image_hdu_index(source, hdu)
    with fits.open(source, memmap=False, do_not_scale_image_data=True,
                   disable_image_compression=True) as hdul:
        # (a compressed image's own header cards are those of its table's header)
        target = hdul[index].header
        replace_wcs(target, wcs)
        if "ZHECKSUM" in target:
            # a compressed image's ZHECKSUM is the CHECKSUM of its header decompressed,
            # which the new cards changed. It is dropped, not recomputed: its value depends
            # on the bytes of the header a reader decompresses (the writer's card comments
            # count too), not ours to know. ZDATASUM holds still: the tiles are as stored
            del target["ZHECKSUM"]
        if "CHECKSUM" in target or "DATASUM" in target:  # (a stale sum fails verification)
            hdul[index].add_checksum()
        _write(path, hdul)
