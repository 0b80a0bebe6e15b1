"""One input of ``skysolve-field``: read, extract, solve, write solve-field's files and lines.

See :mod:`skysolve.cli.solve_field` for the command line.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

#: Exit status per input: processed (solved or not), or an input that could not be used.
EXIT_OK, EXIT_ERROR = 0, 1
#: The default output files: option dest -> suffix of the base name.
OUTPUTS = {"axy": ".axy", "wcs": ".wcs", "corr": ".corr", "match": ".match", "rdls": ".rdls",
           "solved": ".solved", "new_fits": ".new", "index_xyls": "-indx.xyls"}
#: Inputs read as x/y lists rather than images.
XYLIST_SUFFIXES = (".xyls", ".axy", ".xy")


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


def _say(message: str) -> None:
    print(message, flush=True)


def _outputs(path: Path, args: argparse.Namespace) -> dict[str, Path | None]:
    """Output files by option dest (None: not written), solve-field's names by default."""
    folder = Path(args.dir) if args.dir else path.parent
    base = args.out if args.out else path.stem
    out: dict[str, Path | None] = {}
    for dest, suffix in OUTPUTS.items():
        given = getattr(args, dest)
        if given is not None and given.lower() == "none":
            out[dest] = None
        elif given is not None:
            out[dest] = Path(given) if Path(given).is_absolute() else folder / given
        else:
            out[dest] = folder / f"{base}{suffix}"
    return out


def _is_xylist(path: Path) -> bool:
    return path.suffix.lower() in XYLIST_SUFFIXES


def _binned(image: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``n x n`` blocks (the edge rows/columns that do not fill a block dropped)."""
    h, w = (image.shape[0] // n) * n, (image.shape[1] // n) * n
    return image[:h, :w].astype(np.float64).reshape(h // n, n, w // n, n).mean(axis=(1, 3))


def _image_field(path: Path, args: argparse.Namespace) -> Field:
    from .. import extract_centroids, read_image
    from ..io.images import _sniff

    is_fits = _sniff(path) == "FITS"
    image = read_image(path, hdu=args.extension if is_fits else None)
    height, width = image.shape
    work = -image.astype(np.float64) if args.invert else image
    n = args.downsample or 1
    if n > 1:
        work = _binned(work, n)
    found = extract_centroids(work)
    # 0-based pixels of the binned image -> 1-based pixels of the full image
    zero = (found.as_array()[:, :2] + (0.5 * work.shape[1] - 0.5, 0.5 * work.shape[0] - 0.5))
    xy_fits = (zero + 0.5) * n + 0.5
    return Field(xy_fits, found.as_array()[:, 2] * n * n, found.background_mean, width, height,
                 image, path if is_fits else None, args.extension if is_fits else None)


def _xylist_field(path: Path, args: argparse.Namespace) -> Field:
    from ..io.astrometry_files import read_xylist

    xy, flux, header = read_xylist(path, args.x_column or "X", args.y_column or "Y",
                                   args.sort_column, args.sort_ascending)
    width = args.width or header.get("IMAGEW")
    height = args.height or header.get("IMAGEH")
    if not width or not height:
        raise ValueError(f"{path}: the image size is unknown: give --width and --height")
    flux = np.zeros(len(xy)) if flux is None else flux
    return Field(xy, flux, 0.0, int(width), int(height))


@lru_cache(maxsize=2)
def _database(path: str | None) -> Any:
    from ..database import SolverDatabase

    if path:
        return SolverDatabase.load_from_file(path, mmap=True)
    from ..defaultdb import default_database

    return default_database()


def _catalog_in_field(db: Any, result: Any, width: int, height: int):
    """Catalog stars inside the image, brightest first: (ids, ra, dec, 1-based x/y)."""
    from ..geometry import vector_to_radec
    from ..io.astrometry_files import fits_pixels

    ra_c, dec_c = result.pixel_to_world(0.0, 0.0)
    half_diag = math.degrees(0.5 * math.hypot(width, height) / result.camera_model.focal_length_px)
    idx = db.cone_indices(ra_c, dec_c, min(180.0, 1.1 * half_diag + 0.1))
    ra, dec = vector_to_radec(db.star_vectors[idx])
    x, y = result.world_to_pixel(ra, dec)
    inside = np.isfinite(x) & (np.abs(x) <= 0.5 * width) & (np.abs(y) <= 0.5 * height)
    order = np.argsort(db.star_magnitudes[idx][inside], kind="stable")
    xy = fits_pixels(np.column_stack([x[inside], y[inside]])[order], width, height)
    return ra[inside][order], dec[inside][order], xy


def _write_solution(out: dict[str, Path | None], result: Any, fld: Field, db: Any) -> None:
    from ..io import astrometry_files as af

    w, h = fld.width, fld.height
    rows = np.asarray(result.matched_centroids, dtype=np.intp)
    if out["wcs"]:
        af.write_wcs(out["wcs"], result, w, h)
    if out["corr"]:
        af.write_corr(out["corr"], result, fld.xy_fits[rows], rows, w, h)
    ra, dec, xy = _catalog_in_field(db, result, w, h)
    if out["rdls"]:
        af.write_rdls(out["rdls"], ra, dec)
    if out["index_xyls"]:
        af.write_index_xyls(out["index_xyls"], xy, w, h)
    if out["match"]:
        af.write_match(out["match"], result, fld.xy_fits[rows], rows, len(fld.xy_fits), len(ra),
                       w, h)
    if out["solved"]:
        af.write_solved(out["solved"])
    if out["new_fits"] and (fld.image is not None or fld.fits_source is not None):
        _say(f'Creating new FITS file "{out["new_fits"]}"...')
        af.write_new_fits(out["new_fits"], result, w, h, fld.fits_source, fld.image, fld.hdu)


def field_lines(result: Any, width: int, height: int) -> list[str]:
    """solve-field's summary lines for a solved field."""
    from astropy.coordinates import Angle

    from ..io.astrometry_files import field_parity, rotation_up_east_of_north

    ra, dec = result.pixel_to_world(0.0, 0.0)
    ra_hms = Angle(ra, unit="deg").to_string(unit="hourangle", sep=":", precision=3, pad=True)
    dec_dms = Angle(dec, unit="deg").to_string(unit="deg", sep=":", precision=3, pad=True,
                                               alwayssign=True)
    scale = math.degrees(1.0 / result.camera_model.focal_length_px)  # deg per px at centre
    size_w, size_h, unit = width * scale, height * scale, "degrees"
    if size_w < 1.0 / 60.0:
        size_w, size_h, unit = size_w * 3600.0, size_h * 3600.0, "arcseconds"
    elif size_w < 1.0:
        size_w, size_h, unit = size_w * 60.0, size_h * 60.0, "arcminutes"
    return [f"Field center: (RA,Dec) = ({ra:.6f}, {dec:.6f}) deg.",
            f"Field center: (RA H:M:S, Dec D:M:S) = ({ra_hms}, {dec_dms}).",
            f"Field size: {size_w:g} x {size_h:g} {unit}",
            f"Field rotation angle: up is {rotation_up_east_of_north(result):g} degrees E of N",
            f"Field parity: {field_parity(result)}"]


def _blocked(out: dict[str, Path | None], args: argparse.Namespace) -> bool:
    """Whether existing output files stop this input (solve-field's rules)."""
    if args.skip_solved and out["solved"] is not None and out["solved"].exists():
        _say(f'Skipping: solved file "{out["solved"]}" exists.')
        return True
    if args.overwrite or args.continue_:
        return False
    existing = [p for p in out.values() if p is not None and p.exists()]
    if existing:
        _say(f'Output file already exists: "{existing[0]}".  Use the --overwrite flag to '
             "overwrite existing files, or the --continue flag to not overwrite existing "
             "files but still try solving.")
        return True
    return False


def run_field(path: Path, args: argparse.Namespace, hints: dict[str, Any]) -> int:
    """Process one input; returns the exit status for it (0 solved or not)."""
    from ..io import astrometry_files as af

    out = _outputs(path, args)
    if _blocked(out, args):
        return EXIT_OK
    try:
        if out["axy"] is not None:
            out["axy"].parent.mkdir(parents=True, exist_ok=True)
        fld = _xylist_field(path, args) if _is_xylist(path) else _image_field(path, args)
        _say(f"Extracted {len(fld.xy_fits)} sources.")
        if out["axy"] and not _is_xylist(path):
            af.write_axy(out["axy"], fld.xy_fits, fld.flux, fld.background, fld.width,
                         fld.height)
        db = _database(args.database or os.environ.get("SKYSOLVE_DB") or None)
        centred = af.centred_pixels(fld.xy_fits, fld.width, fld.height)
        result = db.solve_from_centroids(centred, image_width=fld.width,
                                         image_height=fld.height, **hints)
        if not result:
            _say(f"Did not solve (or no WCS file was written). ({result.message})")
            return EXIT_OK
        index = Path(getattr(db, "file_path", None) or "skysolve").name
        _say(f"Field 1: solved with index {index} ({result.num_matches} matched stars, "
             f"{result.rmse_arcsec:.2f}\" rms).")
        if out["solved"]:
            _say(f"Field 1 solved: writing to file {out['solved']} to indicate this.")
        _write_solution(out, result, fld, db)
        _say(f"Field: {path}")
        for line in field_lines(result, fld.width, fld.height):
            _say(line)
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line per input, never a traceback
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"skysolve-field: {path}: {text}", file=sys.stderr, flush=True)
        return EXIT_ERROR
