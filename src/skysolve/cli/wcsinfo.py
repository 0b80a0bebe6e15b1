"""``skysolve-wcsinfo``: astrometry.net's ``wcsinfo``, a WCS file's summary as ``key value`` lines.

Some programs that run ``solve-field`` read its answer not from standard output but by
running ``wcsinfo FILE.wcs`` and reading lines of a key, one space and a value
(KStars/Ekos's external astrometry.net solver, through StellarSolver, reads
``ra_center``, ``dec_center``, ``orientation_center``, ``fieldw``, ``fieldh``,
``fieldunits``, ``ra_center_hms``, ``dec_center_dms``, ``pixscale`` and ``parity``).
Pointing such a program's wcsinfo path at ``skysolve-wcsinfo`` completes the drop-in
for ``skysolve-field``. It reads any FITS file whose header holds a celestial WCS
(the ``.wcs`` and ``.new`` files, TAN with or without SIP, or a fisheye's ARC, ZEA, STG
or SIN) and prints, for the ``.wcs`` of the test frame
``2019-07-29T204726_Alt40_Azi-135_Try1.tiff`` (see :mod:`skysolve.cli.solve_field`)::

    crpix0 512.5                      reference pixel, 1-based FITS pixels
    crpix1 384.5
    crval0 230.667637663              sky position of the reference pixel (deg)
    crval1 11.0355428668
    ra_tangent 230.667637663          (the same: the projection's tangent point)
    dec_tangent 11.0355428668
    pixx_tangent 512.5                the tangent point's pixel
    pixy_tangent 384.5
    imagew 1024                       image size (IMAGEW/IMAGEH, else NAXIS1/NAXIS2)
    imageh 768
    cd11 -0.00991109367614            the CD matrix at the reference pixel (deg/px)
    cd12 -0.0052090505084
    cd21 0.0052090505084
    cd22 -0.00991109367614
    det 0.000125363985056             det(CD), deg^2/px^2
    parity 1                          the sign of det(CD): -1 is solve-field's "pos"
    pixscale 40.3077814613            sqrt|det CD| at the reference pixel, arcsec/px
    orientation -152.274582352        up (+y, FITS), degrees E of N, at the reference pixel
    ra_center 230.667637663           sky position of the image centre (deg)
    dec_center 11.0355428668
    orientation_center -152.274582352 up, degrees E of N, at the image centre
    ra_center_h 15                    the centre's hours, minutes and seconds (unrounded)
    ra_center_m 22
    ra_center_s 40.2330517...
    dec_center_sign 1                 ... and its sign, degrees, minutes and seconds
    dec_center_d 11
    dec_center_m 2
    dec_center_s 7.95431727...
    ra_center_hms 15:22:40.233
    dec_center_dms +11:02:07.954
    ra_center_merc 0.640743438        the centre on a Mercator map (RA / 360, and
    dec_center_merc 0.530845594       0.5 + asinh(tan Dec) / 2 pi)
    fieldarea 98.5902128...           |det CD| x imagew x imageh, square degrees
    fieldw 11.4272937691              sizes across the centre, from the midpoint of one
    fieldh 8.582907217                edge to the opposite one's, in fieldunits (degrees,
    fieldunits degrees                arcminutes or arcseconds, as "Field size")
    decmin 4.58346...                 Dec and RA bounds over the image's edge (every
    decmax 17.4555...                 10 px; RA within 180 deg of the centre's, so
    ramin 223.525...                  beyond 0-360 across RA 0; 0-360 and the pole's
    ramax 237.866...                  Dec with a pole on the image)
    ra_min_merc 0.660738...           the bounds on the Mercator map, as wcsinfo pairs
    ra_max_merc 0.620902...           them (ra_min_merc from ramax, dec_min_merc from
    dec_min_merc 0.549256...          decmax), the larger of their spans, and the map
    dec_max_merc 0.512745...          zoom that holds it, -floor(log2 merc_diff)
    merc_diff 0.0398363...
    merczoom 5
The values at the image centre are those of ``skysolve-field``'s "Field center",
"Field size", "Field rotation angle" and "Field parity" lines. The local CD matrix
there is measured on the tangent plane about the centre (central differences over
one pixel of the full mapping, distortion included). Exit status: 0, or 1 when the
file cannot be read or holds no celestial WCS, or 255 for a bad command line.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Exit status of a file that cannot be summarised, and of a bad command line.
EXIT_ERROR, EXIT_USAGE = 1, 255


def _fail(message: str, status: int = EXIT_ERROR) -> int:
    print(f"skysolve-wcsinfo: {message}", file=sys.stderr, flush=True)
    return status


def _celestial_header(path: Path) -> Any:
    """The header of the first HDU of ``path`` holding a celestial WCS."""
    from astropy.io import fits

    with open(path, "rb") as f:
        head = f.read(9)
    # (astropy's own message for another format speaks of its reader's options)
    if not head.startswith((b"SIMPLE  =", b"\x1f\x8b", b"BZh")):
        raise ValueError("not a FITS file")
    with warnings.catch_warnings():  # (a damaged file: one line below, not astropy's)
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            for hdu in hdul:
                if "CTYPE1" in hdu.header and "CTYPE2" in hdu.header:
                    return hdu.header.copy()
    raise ValueError("no HDU holds a celestial WCS (CTYPE1/CTYPE2)")


def _image_size(header: Any) -> tuple[int, int]:
    for w, h in (("IMAGEW", "IMAGEH"), ("NAXIS1", "NAXIS2")):
        if header.get(w) and header.get(h):
            return int(header[w]), int(header[h])
    raise ValueError("the header states no image size (IMAGEW/IMAGEH or NAXIS1/NAXIS2)")


def _local_cd(wcs: Any, x: float, y: float, step: float = 0.5) -> np.ndarray:
    """The CD matrix (deg/px) of ``wcs`` at the 1-based FITS pixel ``(x, y)``: the
    derivatives of the tangent-plane coordinates about that pixel's sky position (east,
    north) along the pixel axes."""
    from ..geometry import north_east_basis, radec_to_vector

    px = np.array([x, x + step, x - step, x, x])
    py = np.array([y, y, y, y + step, y - step])
    ra, dec = wcs.all_pix2world(px, py, 1)
    v = radec_to_vector(ra, dec)
    north, east = north_east_basis(v[0])
    depth = v @ v[0]
    xi = np.degrees(v @ east / depth)
    eta = np.degrees(v @ north / depth)
    d = 2.0 * step
    return np.array([[(xi[1] - xi[2]) / d, (xi[3] - xi[4]) / d],
                     [(eta[1] - eta[2]) / d, (eta[3] - eta[4]) / d]])


def _extent_deg(wcs: Any, a: tuple[float, float], b: tuple[float, float]) -> float:
    """The field's size (degrees) along the line from FITS pixel ``a`` to ``b`` through the
    image centre (:func:`~skysolve.io.astrometry_files.line_extent_deg`)."""
    from ..io.astrometry_files import line_extent_deg

    with warnings.catch_warnings():  # (pixels beyond a fisheye's image: NaN, as meant)
        warnings.simplefilter("ignore", RuntimeWarning)
        return line_extent_deg(lambda x, y: wcs.all_pix2world(x, y, 1), a, b)


def wcs_summary(header: Any) -> dict[str, Any]:
    """The ``wcsinfo`` summary of a FITS header holding a celestial WCS.

    Parameters
    ----------
    header : astropy.io.fits.Header
        A header with a celestial WCS (with SIP terms or not) and the image size
        (``IMAGEW``/``IMAGEH``, as solve-field's ``.wcs`` files state it, else
        ``NAXIS1``/``NAXIS2``).

    Returns
    -------
    dict
        Key to value (floats in degrees, arcseconds per pixel for ``pixscale``; see the
        module docstring), in the order ``wcsinfo`` prints them.

    Raises
    ------
    ValueError
        When the header holds no celestial WCS or states no image size.
    """
    from astropy.wcs import WCS, WCSSUB_CELESTIAL, FITSFixedWarning

    from ..io.astrometry_files import (
        field_parity,
        field_size_unit,
        rotation_up_east_of_north,
        sexagesimal,
    )

    width, height = _image_size(header)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        # the celestial axes only, taken before the SIP terms are read: a colour cube's
        # third axis (or a spectral one) dropped, as astropy reads SIP with two axes only
        wcs = WCS(header, relax=True, naxis=[WCSSUB_CELESTIAL])
    if not wcs.has_celestial:
        raise ValueError("the header holds no celestial WCS")
    cd = wcs.pixel_scale_matrix
    # (the shared formulas take a result's CD matrix; degrees or radians alike)
    ref = _Cd(cd)
    cx, cy = 0.5 + 0.5 * width, 0.5 + 0.5 * height
    ra_c, dec_c = (float(a) for a in wcs.all_pix2world(cx, cy, 1))
    # (WCSLIB keeps the header's CRVAL1 branch: a CRVAL1 of -0.5 gives -0.5; wcsinfo's
    # readers take an RA in [0, 360))
    ra_c %= 360.0
    # (-1e-17 % 360 is 360.0, and 360 - 1e-11 prints as 360 to the 12 digits written)
    ra_c = 0.0 if float(_format(ra_c)) >= 360.0 else ra_c
    centre = _Cd(_local_cd(wcs, cx, cy))
    ra_hms, dec_dms = sexagesimal(ra_c, dec_c)
    fieldw, fieldh, unit = field_size_unit(_extent_deg(wcs, (0.5, cy), (width + 0.5, cy)),
                                           _extent_deg(wcs, (cx, 0.5), (cx, height + 0.5)))
    det = float(np.linalg.det(cd))
    crval = wcs.wcs.crval
    with warnings.catch_warnings():  # (a tangent point off a fisheye's image: NaN)
        warnings.simplefilter("ignore")
        tangent = [float(v) for v in wcs.all_world2pix(crval[0], crval[1], 1, quiet=True)]
    ramin, ramax, decmin, decmax = _bounds(wcs, width, height, ra_c)
    merc = [_merc_x(ramax), _merc_x(ramin), _merc_y(decmax), _merc_y(decmin)]
    merc_diff = max(abs(merc[0] - merc[1]), abs(merc[2] - merc[3]))
    return {
        "crpix0": float(wcs.wcs.crpix[0]), "crpix1": float(wcs.wcs.crpix[1]),
        "crval0": float(crval[0]), "crval1": float(crval[1]),
        "ra_tangent": float(crval[0]), "dec_tangent": float(crval[1]),
        "pixx_tangent": tangent[0], "pixy_tangent": tangent[1],
        "imagew": width, "imageh": height,
        "cd11": float(cd[0, 0]), "cd12": float(cd[0, 1]),
        "cd21": float(cd[1, 0]), "cd22": float(cd[1, 1]),
        "det": det,
        "parity": -1 if field_parity(ref) == "pos" else 1,
        "pixscale": 3600.0 * math.sqrt(abs(det)),
        "orientation": rotation_up_east_of_north(ref),
        "ra_center": ra_c, "dec_center": dec_c,
        "orientation_center": rotation_up_east_of_north(centre),
        **_sexagesimal_parts(ra_c, dec_c),
        "ra_center_hms": ra_hms, "dec_center_dms": dec_dms,
        "ra_center_merc": _merc_x(ra_c), "dec_center_merc": _merc_y(dec_c),
        "fieldarea": abs(det) * width * height,
        "fieldw": fieldw, "fieldh": fieldh, "fieldunits": unit,
        "decmin": decmin, "decmax": decmax, "ramin": ramin, "ramax": ramax,
        "ra_min_merc": merc[0], "ra_max_merc": merc[1],
        "dec_min_merc": merc[2], "dec_max_merc": merc[3],
        "merc_diff": merc_diff,
        "merczoom": -math.floor(math.log2(merc_diff)) if merc_diff > 0 else 0,
    }


def _sexagesimal_parts(ra_deg: float, dec_deg: float) -> dict[str, Any]:
    """``ra_center_h/m/s`` and ``dec_center_sign/d/m/s``: the centre's hours (degrees),
    whole minutes and the seconds left, unrounded (as wcsinfo's: 53 min 59.9999999993 s
    where ``dec_center_dms`` rounds to 54:00.000)."""

    def parts(value: float) -> tuple[int, int, float]:
        whole = math.floor(value)
        minutes = math.floor((value - whole) * 60.0)
        return whole, minutes, (value - whole - minutes / 60.0) * 3600.0

    h, m, sec = parts(ra_deg / 15.0)
    d, dm, ds = parts(abs(dec_deg))
    return {"ra_center_h": h, "ra_center_m": m, "ra_center_s": sec,
            "dec_center_sign": -1 if dec_deg < 0 else 1,
            "dec_center_d": d, "dec_center_m": dm, "dec_center_s": ds}


#: Pixels between two points of the image's edge walked for ``ramin`` ... ``decmax``.
_EDGE_STEP_PX = 10


def _bounds(wcs: Any, width: int, height: int, ra_centre: float
            ) -> tuple[float, float, float, float]:
    """``(ramin, ramax, decmin, decmax)`` (deg) over the image's edge, walked every
    :data:`_EDGE_STEP_PX` pixels: RA taken within 180 deg of the centre's (so that a
    field across RA 0 has ``ramin`` below 0 or ``ramax`` above 360, as wcsinfo's); a pole
    on the image widens RA to 0-360 and Dec to it. Pixels a fisheye does not map are
    passed over."""
    xs = np.concatenate([np.arange(0.5, width + 0.5, _EDGE_STEP_PX), [width + 0.5]])
    ys = np.concatenate([np.arange(0.5, height + 0.5, _EDGE_STEP_PX), [height + 0.5]])
    px = np.concatenate([xs, xs, np.full(len(ys), 0.5), np.full(len(ys), width + 0.5)])
    py = np.concatenate([np.full(len(xs), 0.5), np.full(len(xs), height + 0.5), ys, ys])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = wcs.all_pix2world(px, py, 1)
    keep = np.isfinite(ra) & np.isfinite(dec)
    ra = ra_centre + (ra[keep] - ra_centre + 180.0) % 360.0 - 180.0
    dec = dec[keep]
    if not len(ra):
        return ra_centre, ra_centre, float("nan"), float("nan")
    ramin, ramax = float(ra.min()), float(ra.max())
    decmin, decmax = float(dec.min()), float(dec.max())
    for pole in (90.0, -90.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # (SIP's inverse iterated far off the image may diverge: its answer counts
            # only when it maps back onto the pole)
            x, y = (float(v) for v in wcs.all_world2pix(0.0, pole, 1, quiet=True))
            back = float(wcs.all_pix2world(x, y, 1)[1])
        if (0.5 <= x <= width + 0.5 and 0.5 <= y <= height + 0.5
                and abs(back - pole) < 1e-3):
            ramin, ramax = 0.0, 360.0
            decmin, decmax = min(decmin, pole), max(decmax, pole)
    return ramin, ramax, decmin, decmax


def _merc_x(ra_deg: float) -> float:
    """The Mercator map's x of an RA (0-1 over 0-360 deg; an RA beyond them, as
    ``ramin``/``ramax`` of a field across RA 0 are, brought into them as wcsinfo's)."""
    while ra_deg < 0.0:
        ra_deg += 360.0
    while ra_deg > 360.0:
        ra_deg -= 360.0
    return ra_deg / 360.0


def _merc_y(dec_deg: float) -> float:
    """The Mercator map's y of a Dec (0.5 at the equator, 2 pi to one)."""
    return 0.5 + math.asinh(math.tan(math.radians(dec_deg))) / (2.0 * math.pi)


class _Cd:
    """A CD matrix where the shared formulas expect a solve result."""

    def __init__(self, cd_matrix: np.ndarray) -> None:
        self.cd_matrix = cd_matrix


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.12g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Run ``skysolve-wcsinfo FILE``: print the summary of the WCS in ``FILE``."""
    from .solve_field import UsageError, UsageParser

    p = UsageParser(
        prog="skysolve-wcsinfo",
        description="astrometry.net wcsinfo's summary of a WCS file (a solve-field .wcs "
                    "or .new), as key-value lines",
        epilog="exit status: 0; 1 when the file cannot be read or holds no celestial WCS; "
               "255 for a bad command line")
    p.add_argument("file", help="a FITS file whose header holds a celestial WCS")
    try:
        args = p.parse_args(argv)
    except UsageError as e:
        return _fail(f"{e} (see skysolve-wcsinfo --help)", EXIT_USAGE)
    except SystemExit as e:  # (--help)
        return 0 if e.code in (0, None) else EXIT_USAGE
    path = Path(args.file)
    try:
        summary = wcs_summary(_celestial_header(path))
    except FileNotFoundError:
        return _fail(f"{path}: no such file")
    except (OSError, ValueError, KeyError, TypeError) as e:
        return _fail(f"{path}: {e}")
    sys.stdout.write("".join(f"{k} {_format(v)}\n" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
