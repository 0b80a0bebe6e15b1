"""Reading star images from FITS, PNG, JPEG, TIFF, BMP, GIF, WebP and PNM files into 2-D
arrays.

One reader for the library and the command line. The format is recognised from the
file's leading bytes, not its name, so a mis-named file still reads (and a file of
random bytes named ``.fits`` fails with a clear :class:`~skysolve.errors.FileFormatError`).

* FITS (also gzip- or bzip2-compressed, and tile-compressed ``.fz``): astropy, read
  without memory mapping so no file handle outlives the call; BSCALE/BZERO applied
  (16-bit unsigned data come back as ``uint16``). With ``section`` only the needed
  part of the file is read.
* TIFF: tifffile (8/16/32-bit integer and float samples are kept as they are), its
  compressions (LZW, PackBits, Deflate, JPEG) decoded by ``imagecodecs``, a dependency;
  a palette image, or a compression the installed ``imagecodecs`` lacks, through Pillow.
* PNG and JPEG: Pillow (16-bit greyscale PNG stays ``uint16``); a 16-bit colour PNG,
  which Pillow reduces to 8 bits per channel, is decoded by :mod:`skysolve.io.png`
  with its 16 bits.
* BMP and GIF (8-bit grey, palette or colour): Pillow; an animated GIF's first
  frame.
* WebP (lossy or lossless, as all-sky cameras and phones save it): Pillow, which
  decodes it as RGB or RGBA (a grey image as three equal channels: read as grey); an
  animated WebP's first frame.
* An orientation tag (EXIF Orientation in a JPEG from phones and some cameras, a PNG's
  EXIF, a WebP's; the TIFF Orientation tag) is not applied: pixels are read in their
  stored order, as FITS pixels and astropy's are, so the centroids and the WCS refer to
  the stored raster; the image's viewers may show it turned, and a ``UserWarning``
  names the orientation when it is not 1.
* PNM: a PGM or PPM (binary ``P5``/``P6`` or ASCII ``P2``/``P3``) is read as stored,
  ``uint8`` or ``uint16`` by its largest value, not rescaled (Pillow scales a 12-bit
  file to 16 bits and keeps 8 bits of 16-bit colour); the bitmaps (``P1``/``P4``)
  through Pillow.

Colour images become one luminance channel with the Rec. 709 (sRGB) weights
``0.2126 R + 0.7152 G + 0.0722 B`` applied to the stored values (no gamma
decoding, no rescaling), as ``float32`` (``float64`` for 32/64-bit input); an alpha
channel is dropped. Greyscale images keep their stored dtype (in native byte order),
and so do grey images stored as colour (all three channels equal).

Images with more than :data:`MAX_PIXELS` pixel values are refused before any pixel
data is read, so a corrupt header claiming 100000 x 100000 pixels cannot exhaust
memory. For the files Pillow decodes (PNG, JPEG, BMP, GIF, WebP, the PNM bitmaps), its own
decompression-bomb limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``) applies as well.
"""

from __future__ import annotations

import bz2
import contextlib
import contextvars
import datetime as _dt
import gzip
import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ..errors import (
    FileFormatError,
    InvalidArgumentError,
    InvalidTypeError,
    SkysolveError,
    warn_caller,
)
from ..imagedata import LUMINANCE_WEIGHTS, as_image_data, is_colour_planes, luminance

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io.fits import Header

__all__ = [
    "MAX_PIXELS",
    "LUMINANCE_WEIGHTS",
    "read_image",
    "read_fits_header",
    "read_ccd_planes",
    "image_epoch",
    "header_mjd",
    "parse_section",
    "image_hdu_index",
]

#: Largest number of pixel values (rows x columns x colour channels actually read)
#: :func:`read_image` accepts: 2**28, i.e. 512 MiB as uint16 or 2 GiB as float64.
#: Assign a larger value to this module attribute to read bigger images.
MAX_PIXELS: int = 2**28


_FORMATS_TEXT = "a FITS, PNG, JPEG, TIFF, BMP, GIF, WebP or PNM (PGM/PPM) image"
_FITS_MAGIC = b"SIMPLE  ="
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_BMP_MAGIC = b"BM"
_GIF_MAGICS = (b"GIF87a", b"GIF89a")
#: A WebP file is a RIFF container: "RIFF", its length (4 bytes), then "WEBP".
_RIFF_MAGIC = b"RIFF"
_WEBP_MAGIC = b"WEBP"
#: Netpbm: "P1"-"P6" and whitespace (bitmap, grey, colour; ASCII P1-P3, binary P4-P6)
_PNM_MAGICS = tuple(f"P{k}{c}".encode() for k in range(1, 7) for c in " \t\n\r")
#: The formats :func:`_sniff` tells, in its messages' order.
_FORMATS = ("FITS", "PNG", "JPEG", "TIFF", "BMP", "GIF", "WebP", "PNM")
_GZIP_MAGIC = b"\x1f\x8b"
_BZIP2_MAGIC = b"BZh"

_MJD_ZERO = _dt.date(1858, 11, 17)

_SUFFIX_FORMATS = {
    ".fits": "FITS", ".fit": "FITS", ".fts": "FITS", ".fz": "FITS",
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".gif": "GIF", ".webp": "WebP",
    ".pnm": "PNM", ".pgm": "PNM", ".ppm": "PNM", ".pbm": "PNM",
}  # fmt: skip


# ---------------------------------------------------------------- public API


def read_image(
    source: str | os.PathLike[str] | NDArray[Any],
    *,
    hdu: int | str | tuple[str, int] | None = None,
    section: str | tuple[slice | int, ...] | slice | None = None,
    dtype: DTypeLike | None = None,
) -> NDArray[Any]:
    """Read a star image as a 2-D numpy array.

    Parameters
    ----------
    source : str, path-like, ndarray or astropy image container
        Path to a FITS (``.fits``, ``.fit``, ``.fts``, optionally ``.gz``/``.bz2``,
        or tile-compressed), PNG, JPEG, TIFF, BMP, GIF, WebP or PNM (PGM/PPM) file
        (recognised by content), or an
        array: a 2-D array is returned as it is (not copied), an ``(H, W, 3)`` or
        ``(H, W, 4)`` colour array, or three colour planes ``(3, H, W)`` as FITS
        stores them (``fits.getdata``), is converted to luminance; leading axes of
        length one (a FITS image stored as ``(1, H, W)``) are dropped. A ``MaskedArray``,
        ``NDData``/``CCDData`` (masked pixels become NaN), image HDU, ``HDUList``
        or ``Quantity`` gives its pixels (see :mod:`skysolve.imagedata`).
    hdu : int, str or (str, int), optional
        FITS files and ``HDUList`` only: index (0 the primary HDU; negative counts
        from the end, ``-1`` the last) or extension name (EXTNAME, optionally with
        EXTVER) of the HDU to read. By default the primary HDU if it
        holds an image, else the first extension with 2-D image data (as in TESS
        full-frame images). A 3-plane cube ``(3, H, W)`` is read as colour;
        degenerate leading axes are dropped.
    section : str or tuple of slices/ints, optional
        Part of the image to return, in 0-based numpy order ``[rows, cols]``: a
        string like ``"[:2048, 44:2092]"`` (brackets optional, parsed without
        ``eval``) or a tuple such as ``(slice(None, 2048), slice(44, 2092))``.
        Negative indices count from the end; steps are not allowed (a crop keeps
        the pixel scale); an integer ``i`` keeps row/column ``i`` as an axis of
        length 1; bounds beyond the image are an error rather than clipped.
    dtype : data-type, optional
        Convert the result to this dtype (values are not rescaled).

    Returns
    -------
    ndarray, 2-D, shape ``(height, width)``
        Pixel values in native byte order; row 0 is the first row stored in the
        file (FITS: the first row of data, i.e. pixel y = 1). An EXIF or TIFF
        Orientation (phones, some cameras) is not applied: the raster is the stored
        one, which a viewer may show turned, and a ``UserWarning`` names the
        orientation.

    Raises
    ------
    FileNotFoundError
        ``source`` names no existing file.
    skysolve.errors.FileFormatError
        The file is not a readable FITS/PNG/JPEG/TIFF/BMP/GIF/WebP/PNM image, is
        truncated or corrupted, or (FITS, ``hdu=None``) contains no image.
    skysolve.errors.InvalidArgumentError
        A bad ``hdu`` or ``section``, an HDU without image data, a 1-D, empty or
        otherwise non-image array, or more than :data:`MAX_PIXELS` pixel values.
    skysolve.errors.InvalidTypeError
        ``source`` or ``dtype`` of an unusable type.

    Examples
    --------
    >>> from skysolve.tests.realframes import ALT40, DATA   # the bundled test frames
    >>> img = read_image(DATA / ALT40)
    >>> img.shape, img.dtype
    ((768, 1024), dtype('uint16'))
    """
    out_dtype = _check_dtype(dtype)
    if isinstance(source, str | os.PathLike):
        path = _existing_file(source)
        fmt = _sniff(path)
        if hdu is not None and fmt != "FITS":
            raise InvalidArgumentError(
                f"hdu applies to FITS files only, but {path} is a {fmt} image"
            )
        if fmt == "FITS":
            image = _read_fits(path, hdu, section)
        else:
            read = {"TIFF": _read_tiff, "PNM": _read_pnm}.get(fmt)
            image = _finish(read(path) if read else _read_pillow(path, fmt), str(path))
            if section is not None:
                image = _crop(image, section)
    elif isinstance(source, bytes | bytearray | memoryview):
        raise InvalidTypeError(
            "source must be a file path or a numpy array; bytes are not accepted "
            "(write them to a file, or decode them first)"
        )
    else:
        if hdu is not None and not hasattr(source, "index_of"):
            raise InvalidArgumentError("hdu applies to FITS files only, not to arrays")
        image = _array_image(source, hdu)
        if section is not None:
            image = _crop(image, section)
    if out_dtype is not None and image.dtype != out_dtype:
        image = image.astype(out_dtype)
    return image


def read_fits_header(path: str | os.PathLike[str], hdu: int | str | None = None) -> Header:
    """Header of one HDU of a FITS file.

    Parameters
    ----------
    path : str or path-like
        FITS file (optionally gzip/bzip2-compressed).
    hdu : int, str or (str, int), optional
        Index or extension name. By default the HDU :func:`read_image` would read,
        or the primary HDU if the file holds no image.

    Returns
    -------
    astropy.io.fits.Header
        A copy, independent of the (closed) file.

    Raises
    ------
    FileNotFoundError, skysolve.errors.FileFormatError, skysolve.errors.InvalidArgumentError
        Missing file, not a (readable) FITS file, or a bad ``hdu``.
    """
    p = _existing_file(path)
    fmt = _sniff(p)
    if fmt != "FITS":
        raise FileFormatError(f"{p} is not a FITS file (it is a {fmt} image)")
    with _open_fits(p) as hdul:
        if hdu is None:
            index = _first_image_hdu(hdul)
            chosen = hdul[0 if index is None else index]
        else:
            chosen = _select_hdu(hdul, hdu, p)
        return chosen.header.copy()


#: The uncertainty classes astropy's ``CCDData.write`` names in the UNCERT extension's
#: UTYPE keyword, by the kind :mod:`skysolve.imagedata` takes them as.
_UNCERTAINTY_TYPES = {"StdDevUncertainty": "std", "VarianceUncertainty": "var",
                      "InverseVariance": "ivar"}


def read_ccd_planes(path: str | os.PathLike[str], shape: tuple[int, ...]
                    ) -> tuple[NDArray[np.bool_] | None, Any]:
    """The mask and uncertainty that astropy's ``CCDData.write`` stores beside the image.

    ``CCDData.write`` keeps the pixels in the primary HDU, the mask in an
    extension named ``MASK`` (non-zero: masked) and the uncertainty in one named
    ``UNCERT`` whose ``UTYPE`` keyword names its class. Shapes are compared as
    :func:`read_image` reads the pixels: leading axes of length one dropped (some
    writers store an ``(H, W)`` image as ``(1, H, W)``), so a ``(1, H, W)`` plane goes
    with an ``(H, W)`` image and the other way round. Nothing is read when the
    primary HDU is not the image of ``shape`` (the image's), nor from a file that is
    not FITS.

    Returns
    -------
    mask : ndarray of bool or None
    uncertainty : astropy.nddata.NDUncertainty or None
        A ``StdDevUncertainty``, ``VarianceUncertainty`` or ``InverseVariance``.

    Raises
    ------
    InvalidArgumentError
        A ``MASK`` or ``UNCERT`` plane whose shape is not the image's (a mask or a
        noise map of other pixels would be applied to the wrong ones).
    """
    path = _existing_file(path)
    if _sniff(path) != "FITS":
        return None, None
    want = tuple(int(n) for n in shape)

    def core(h: Any) -> tuple[int, ...] | None:
        # (from the header: the primary's pixels, read already, are not read again)
        layout = _image_layout(h)
        return None if layout is None else tuple(layout[0])

    def plane(h: Any, name: str) -> NDArray[Any]:
        if core(h) != want:
            raise InvalidArgumentError(
                f"{path}: its {name} plane has shape {tuple(getattr(h, 'shape', None) or ())}"
                f", not the image's {want}: it cannot be the image's {name}; read the "
                f"pixels alone with read_image to solve without it")
        return np.asarray(h.data).reshape(want)

    hdul = _open_fits(path)
    try:
        if core(hdul[0]) != want:
            return None, None  # the image is not CCDData's primary array
        names = {str(h.name).upper(): h for h in hdul[1:]}
        mask = uncertainty = None
        h = names.get("MASK")
        if h is not None:
            mask = plane(h, "MASK") != 0
        h = names.get("UNCERT")
        kind = None if h is None else _UNCERTAINTY_TYPES.get(str(h.header.get("UTYPE", "")))
        if kind is not None:
            from astropy import nddata

            cls = {"std": nddata.StdDevUncertainty, "var": nddata.VarianceUncertainty,
                   "ivar": nddata.InverseVariance}[kind]
            uncertainty = cls(np.asarray(plane(h, "UNCERT"), dtype=np.float64))
        return mask, uncertainty
    finally:
        hdul.close()


def image_epoch(path: str | os.PathLike[str], hdu: int | str | None = None) -> float | None:
    """Epoch of observation of an image file as a Julian year (e.g. 2019.57).

    Looks in the header of the image HDU (see :func:`read_fits_header`) and then in
    the primary header for, in this order: ``DATE-AVG``; ``MJD-AVG``; the midpoint of
    ``DATE-OBS`` and ``DATE-END``; the midpoint of ``MJD-OBS`` and ``MJD-END``;
    ``DATE-OBS``, then ``MJD-OBS``, each plus half the exposure time (``EXPTIME`` or
    ``EXPOSURE``) when the header gives one (see :func:`header_mjd`). The time scale
    (UTC, TT, TDB) is ignored: it changes the result by less than 3e-6 year.

    Parameters
    ----------
    path : str or path-like
        An image file.
    hdu : int, str or (str, int), optional
        FITS HDU whose header to search first.

    Returns
    -------
    float or None
        Julian epoch ``2000.0 + (JD - 2451545.0) / 365.25``, the scale of catalog
        epochs such as J2016.0 (pass it as ``epoch_proper_motion_year``); None for
        non-FITS files and FITS files without a usable date.
    """
    for header in _epoch_headers(path, hdu):
        mjd = header_mjd(header)
        if mjd is not None:
            return 2000.0 + (mjd - 51544.5) / 365.25
    return None


def _epoch_headers(path: str | os.PathLike[str], hdu: int | str | None) -> list[Any]:
    """The headers :func:`image_epoch` searches, in its order; none for non-FITS files."""
    p = _existing_file(path)
    if _sniff(p) != "FITS":
        return []
    with _open_fits(p) as hdul:
        if hdu is None:
            index = _first_image_hdu(hdul)
            chosen = [hdul[0]] if index in (None, 0) else [hdul[index], hdul[0]]
        else:
            chosen = [_select_hdu(hdul, hdu, p), hdul[0]]
        return [h.header.copy() for h in chosen]


#: The cards :func:`header_mjd` takes an observation time from first (the others it
#: reads, ``DATE-END`` and the like, only with one of them).
_TIME_CARDS = ("DATE-AVG", "MJD-AVG", "DATE-OBS", "MJD-OBS")


def unread_time_cards(path: str | os.PathLike[str],
                      hdu: int | str | None = None) -> dict[str, Any]:
    """The observation-time cards of an image file whose headers gave no time.

    Parameters
    ----------
    path : str or path-like
        An image file.
    hdu : int, str or (str, int), optional
        FITS HDU whose header to search first, as :func:`image_epoch`.

    Returns
    -------
    dict
        ``{key: value as written}`` of the ``DATE-AVG``, ``MJD-AVG``, ``DATE-OBS`` and
        ``MJD-OBS`` cards the headers :func:`image_epoch` searches hold, when it finds
        no time in them (``DATE-OBS = 'yesterday'``); empty when it finds one, when
        they hold none of the cards or only empty ones (``DATE-OBS = ''``), and for
        non-FITS files.
    """
    headers = _epoch_headers(path, hdu)
    if any(header_mjd(h) is not None for h in headers):
        return {}
    return {key: h[key] for h in headers for key in _TIME_CARDS
            if key in h and not _blank(h[key])}


def _blank(value: Any) -> bool:
    """A card left empty (``DATE-OBS = ''``, or no value at all): it says no time, as
    a missing card does (software writes the card before it knows the time)."""
    from astropy.io.fits.card import Undefined

    return (value is None or isinstance(value, Undefined)
            or (isinstance(value, str) and not value.strip()))


def parse_section(
    section: str | tuple[slice | int, ...] | slice, shape: tuple[int, int]
) -> tuple[slice, slice]:
    """Turn a section into two explicit ``slice(start, stop)`` for an image shape.

    Parameters
    ----------
    section : str, slice or tuple of slices/ints
        See :func:`read_image`. One entry selects rows only.
    shape : (int, int)
        ``(height, width)`` of the image.

    Returns
    -------
    (slice, slice)
        Row and column slices with non-negative ``start < stop`` inside the image.

    Raises
    ------
    skysolve.errors.InvalidArgumentError
        Malformed text, steps, out-of-range bounds or an empty selection.
    skysolve.errors.InvalidTypeError
        Entries that are not slices or integers.
    """
    if isinstance(section, str):
        parts = _parse_section_text(section)
    elif isinstance(section, slice | int | np.integer):
        parts = (section,)
    elif isinstance(section, tuple | list):
        parts = tuple(section)
    else:
        raise InvalidTypeError(
            f"section must be a string like '[:2048, 44:2092]' or a tuple of slices, "
            f"got {type(section).__name__}"
        )
    if not 1 <= len(parts) <= 2:
        raise InvalidArgumentError(
            f"section must select rows or rows and columns (1 or 2 entries), "
            f"got {len(parts)} in {section!r}"
        )
    parts = parts + (slice(None),) * (2 - len(parts))
    axes = ("rows", "columns")
    return tuple(  # type: ignore[return-value]
        _normalise_index(part, n, axis, section)
        for part, n, axis in zip(parts, shape, axes, strict=True)
    )


# ---------------------------------------------------------------- arguments


def _check_dtype(dtype: DTypeLike | None) -> np.dtype | None:
    if dtype is None:
        return None
    try:
        out = np.dtype(dtype)
    except TypeError as exc:
        raise InvalidTypeError(f"dtype must be a numpy data type, got {dtype!r}") from exc
    if out.kind not in "biuf":
        raise InvalidArgumentError(f"dtype must be a real numeric type, got {out}")
    return out


def _existing_file(source: str | os.PathLike[str]) -> Path:
    path = Path(os.fspath(source))
    if not path.exists():
        raise FileNotFoundError(2, f"no such image file: {path}", str(path))
    if path.is_dir():
        raise IsADirectoryError(21, f"image path is a directory, not a file: {path}", str(path))
    return path


_INT_RE = r"[+-]?\d+"
_PART_RE = re.compile(rf"^(?:(?P<index>{_INT_RE})|(?P<start>{_INT_RE})?:(?P<stop>{_INT_RE})?"
                      rf"(?P<step>:.*)?)$")


def _parse_section_text(text: str) -> tuple[int | slice, ...]:
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    if not body.strip():
        raise InvalidArgumentError(f"section {text!r} is empty; expected e.g. '[:2048, 44:2092]'")
    parts: list[int | slice] = []
    for raw in body.split(","):
        if re.search(r"\d\s+[+-]?\d", raw):
            raise InvalidArgumentError(
                f"section {text!r}: {raw.strip()!r} holds two numbers apart by a space; "
                "the entries are separated by commas, e.g. '[0:384, 0:512]'")
        item = re.sub(r"\s+", "", raw)
        match = _PART_RE.match(item)
        if match is None:
            raise InvalidArgumentError(
                f"section {text!r}: cannot parse {raw.strip()!r}; each entry must be an "
                f"integer or start:stop with optional integer bounds, e.g. '[:2048, 44:2092]'"
            )
        if match["step"] is not None:
            raise InvalidArgumentError(
                f"section {text!r}: steps are not supported (a section is a plain crop)"
            )
        if match["index"] is not None:
            parts.append(int(match["index"]))
        else:
            parts.append(slice(None if match["start"] is None else int(match["start"]),
                               None if match["stop"] is None else int(match["stop"])))
    return tuple(parts)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _normalise_index(part: Any, n: int, axis: str, section: Any) -> slice:
    if _is_int(part):
        i = int(part)
        if not -n <= i < n:
            raise InvalidArgumentError(
                f"section {section!r}: index {i} is outside the {n} {axis} of the image"
            )
        i %= n
        return slice(i, i + 1)
    if not isinstance(part, slice):
        raise InvalidTypeError(
            f"section entries must be slices or integers, got {type(part).__name__} ({part!r})"
        )
    if part.step is not None and not (_is_int(part.step) and int(part.step) == 1):
        raise InvalidArgumentError(
            f"section {section!r}: steps are not supported (a section is a plain crop)"
        )
    bounds = []
    for value in (part.start, part.stop):
        if value is None:
            bounds.append(None)
            continue
        if not _is_int(value):
            raise InvalidTypeError(
                f"section {section!r}: slice bounds must be integers, got {value!r}"
            )
        if not -n <= int(value) <= n:
            raise InvalidArgumentError(
                f"section {section!r}: bound {int(value)} is outside the {n} {axis} "
                f"of the image"
            )
        bounds.append(int(value))
    start, stop, _ = slice(bounds[0], bounds[1]).indices(n)
    if stop <= start:
        raise InvalidArgumentError(
            f"section {section!r} selects no {axis} of the image ({n} {axis})"
        )
    return slice(start, stop)


# ---------------------------------------------------------------- format detection


def _sniff(path: Path) -> str:
    """One of :data:`_FORMATS` from the leading bytes, else FileFormatError."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise FileFormatError(f"{path} is empty, not {_FORMATS_TEXT}")
    if head.startswith(_FITS_MAGIC):
        return "FITS"
    if head.startswith(_PNG_MAGIC):
        return "PNG"
    if head.startswith(_JPEG_MAGIC):
        return "JPEG"
    if head.startswith(_TIFF_MAGICS):
        return "TIFF"
    if head.startswith(_GIF_MAGICS):
        return "GIF"
    if head.startswith(_RIFF_MAGIC) and head[8:12] == _WEBP_MAGIC:
        return "WebP"
    if head.startswith(_PNM_MAGICS):
        return "PNM"
    if head.startswith(_BMP_MAGIC) and len(head) >= 14:
        return "BMP"
    compressed = ((_GZIP_MAGIC, gzip.open, "gzip"), (_BZIP2_MAGIC, bz2.open, "bzip2"))
    for magic, opener, kind in compressed:
        if head.startswith(magic):
            try:
                with opener(path, "rb") as f:
                    inner = f.read(len(_FITS_MAGIC))
            except (OSError, EOFError, ValueError) as exc:
                raise FileFormatError(f"{path} is a corrupted {kind} file: {exc}") from exc
            if inner == _FITS_MAGIC:
                return "FITS"
            raise FileFormatError(
                f"{path} is a {kind}-compressed file that does not hold FITS data "
                f"(only compressed FITS is read)"
            )
    expected = _SUFFIX_FORMATS.get(_plain_suffix(path))
    if expected:
        others = [name for name in _FORMATS if name != expected]
        what = f"a {expected} file (nor a {', '.join(others[:-1])} or {others[-1]} image)"
    else:
        what = _FORMATS_TEXT
    raise FileFormatError(f"{path} is not {what}: unrecognised leading bytes {head[:8]!r}")


def _plain_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in (".gz", ".bz2"):
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _check_size(n_values: int, shape: tuple[int, ...], path: Any) -> None:
    limit = _PIXEL_LIMIT.get()
    if limit is not None and n_values > limit and limit < MAX_PIXELS:
        raise TooManyPixelsError(
            f"image of shape {shape} has {n_values} pixel values, more than the limit of "
            f"{limit} here")
    if n_values > MAX_PIXELS:
        raise InvalidArgumentError(
            f"{path}: image of shape {shape} has {n_values} pixel values, more than the "
            f"limit of {MAX_PIXELS} (skysolve.io.images.MAX_PIXELS); read a section or "
            f"raise the limit"
        )


class TooManyPixelsError(InvalidArgumentError):
    """An image over the :func:`pixel_limit` of the reads in this thread, or over Pillow's
    decompression-bomb limit, refused from its header."""


#: A lower limit than MAX_PIXELS for the reads in this thread (:func:`pixel_limit`).
_PIXEL_LIMIT: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "skysolve_pixel_limit", default=None)


@contextlib.contextmanager
def pixel_limit(n_values: int | None):
    """Within the block, :func:`read_image` in this thread refuses images of more than
    ``n_values`` pixel values (None: only :data:`MAX_PIXELS`), before it decodes them: a
    service bounds the memory one small compressed upload can claim."""
    token = _PIXEL_LIMIT.set(n_values)
    try:
        yield
    finally:
        _PIXEL_LIMIT.reset(token)


# ---------------------------------------------------------------- arrays and colour


def _array_image(source: Any, hdu: Any = None) -> NDArray[Any]:
    try:
        unpacked = as_image_data(source, hdu=hdu)
    except InvalidTypeError as exc:
        raise InvalidTypeError(
            f"source must be a file path or a numeric array, got {type(source).__name__}"
        ) from exc
    arr = unpacked.data
    if unpacked.mask is not None and arr.dtype.kind in "biuf":
        # masked pixels become NaN, which extraction ignores
        arr = arr.astype(np.float64)
        arr[np.broadcast_to(unpacked.mask, arr.shape)] = np.nan
    if arr.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"source must be a file path or a real numeric array, got an array of dtype "
            f"{arr.dtype} ({type(source).__name__})"
        )
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    return _finish(arr, "source")


def _finish(arr: NDArray[Any], what: str) -> NDArray[Any]:
    """Reduce a decoded array to a native-order 2-D image (colour -> luminance)."""
    # leading axes of length one, as a FITS image stored with NAXIS3 = 1 gives them
    # (``fits.getdata``): read from the file, they are dropped too (not an (H, W, c)
    # colour image's row axis: one row of pixels)
    while arr.shape[:1] == (1,) and (arr.ndim > 3 or arr.ndim == 3 and arr.shape[-1] > 4):
        arr = arr[0]
    if is_colour_planes(arr):  # (3, H, W), as FITS stores colour
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] in (1, 2):
        arr = arr[..., 0]  # grey (+ alpha)
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = luminance(arr)
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"{what} must be a 2-D image (or an (H, W, 3|4) colour image), "
            f"got an array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise InvalidArgumentError(f"{what} is an empty image (shape {arr.shape})")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _crop(image: NDArray[Any], section: Any) -> NDArray[Any]:
    rows, cols = parse_section(section, image.shape)
    return image[rows, cols]


# ---------------------------------------------------------------- FITS


def _open_fits(path: Path):
    from astropy.io import fits

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
    except Exception as exc:  # astropy raises OSError, ValueError, TypeError, ...
        raise FileFormatError(f"{path} is a corrupted or truncated FITS file: {exc}") from exc
    for w in caught:
        # truncation of the HDU we read is an error raised later, with a clearer message
        if "may have been truncated" not in str(w.message):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return hdul


def _is_image_hdu(h: Any) -> bool:
    from astropy.io import fits

    return isinstance(h, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU) and not isinstance(
        h, fits.GroupsHDU
    )


def _image_layout(h: Any) -> tuple[tuple[int, ...], int] | None:
    """(core shape, number of leading degenerate axes) of an image HDU, None if no image.

    The core shape is ``(H, W)`` or ``(3, H, W)`` (colour planes).
    """
    if not _is_image_hdu(h):
        return None
    try:
        shape = tuple(int(n) for n in h.shape)
    except Exception:
        return None
    if len(shape) < 2:
        return None
    lead = 0
    while len(shape) - lead > 2 and shape[lead] == 1:
        lead += 1
    core = shape[lead:]
    if len(core) == 2 or (len(core) == 3 and core[0] == 3):
        return core, lead
    return None


def _first_image_hdu(hdul: Any) -> int | None:
    for index, h in enumerate(hdul):
        layout = _image_layout(h)
        if layout is not None and all(core > 0 for core in layout[0]):
            return index
    return None


def _first_hdu_with_array(hdul: Any) -> int | None:
    """First image HDU holding any data (1-D, empty, ...), to report why it is unusable."""
    for index, h in enumerate(hdul):
        if _is_image_hdu(h) and int(h.header.get("NAXIS", 0)) > 0:
            return index
    return None


def _describe_hdus(hdul: Any) -> str:
    from astropy.io import fits

    parts = []
    for index, h in enumerate(hdul):
        kind = type(h).__name__
        if isinstance(h, fits.BinTableHDU | fits.TableHDU):
            detail = f"table of {h.header.get('NAXIS2', 0)} rows"
        else:
            shape = getattr(h, "shape", None)
            detail = f"shape {tuple(shape)}" if shape else "no data"
        parts.append(f"{index} {h.name or '-'} ({kind}, {detail})")
    return "; ".join(parts)


def _select_hdu(hdul: Any, hdu: Any, path: Path) -> Any:
    if _is_int(hdu):
        if not -len(hdul) <= int(hdu) < len(hdul):
            raise InvalidArgumentError(
                f"hdu={int(hdu)} is out of range: {path} has {len(hdul)} HDUs "
                f"({_describe_hdus(hdul)})"
            )
        return hdul[int(hdu)]
    if isinstance(hdu, str) or (
        isinstance(hdu, tuple) and len(hdu) == 2 and isinstance(hdu[0], str) and _is_int(hdu[1])
    ):
        try:
            return hdul[hdu]
        except KeyError:
            raise InvalidArgumentError(
                f"hdu={hdu!r}: {path} has no such extension ({_describe_hdus(hdul)})"
            ) from None
    raise InvalidTypeError(
        f"hdu must be an HDU index (int) or an extension name (str), got {hdu!r}"
    )


def _default_image_hdu(hdul: Any, path: Path) -> int:
    """Index of the HDU :func:`read_image` reads when given no ``hdu``."""
    index = _first_image_hdu(hdul)
    if index is None:
        index = _first_hdu_with_array(hdul)
    if index is None:
        raise FileFormatError(f"{path} holds no HDU with image data ({_describe_hdus(hdul)})")
    return index


def image_hdu_index(path: str | os.PathLike[str], hdu: int | str | None = None) -> int:
    """Index in a FITS file of the HDU :func:`read_image` reads with the same ``hdu``.

    Raises
    ------
    FileNotFoundError, skysolve.errors.FileFormatError, skysolve.errors.InvalidArgumentError
        As :func:`read_image`.
    """
    p = _existing_file(path)
    with _open_fits(p) as hdul:
        if hdu is None:
            return _default_image_hdu(hdul, p)
        return hdul.index_of(_select_hdu(hdul, hdu, p))


def _read_fits(path: Path, hdu: Any, section: Any) -> NDArray[Any]:
    from astropy.io import fits

    with _open_fits(path) as hdul:
        if hdu is None:
            index = _default_image_hdu(hdul, path)
            h = hdul[index]
            which = f"HDU {index}"
        else:
            h = _select_hdu(hdul, hdu, path)
            which = f"HDU {hdu!r}"
        label = f"{path} {which}"
        layout = _image_layout(h)
        if layout is None:
            shape = tuple(getattr(h, "shape", None) or ())
            if _is_image_hdu(h):
                what = ("no data (NAXIS = 0)" if not shape
                        else f"data of shape {shape}, not a 2-D image")
            else:
                what = f"a {type(h).__name__}, not image data"
            told = "" if hdu is None else f"hdu={hdu!r}: "
            raise InvalidArgumentError(f"{told}{label} holds {what} (HDUs: "
                                       f"{_describe_hdus(hdul)})")
        core, lead = layout
        if 0 in core:
            raise InvalidArgumentError(f"{label} is an empty image (shape {core})")
        if not isinstance(h, fits.CompImageHDU):
            _check_fits_length(h, path)
        image_shape = core[-2:]
        planes = core[0] if len(core) == 3 else 1
        if section is None:
            rows, cols = slice(0, image_shape[0]), slice(0, image_shape[1])
        else:
            rows, cols = parse_section(section, image_shape)
        n_values = planes * (rows.stop - rows.start) * (cols.stop - cols.start)
        _check_size(n_values, core, label)
        key = (0,) * lead + ((slice(None),) if planes > 1 else ()) + (rows, cols)
        try:
            if section is None:
                data = np.asarray(h.data)
                data = data[key]
            else:
                data = np.asarray(h.section[key])
        except SkysolveError:
            raise
        except Exception as exc:
            raise FileFormatError(
                f"{path} is a corrupted or truncated FITS file: cannot read the data "
                f"of {which} ({exc})"
            ) from exc
    if planes > 1:
        data = np.moveaxis(data, 0, -1)
    return _finish(data, label)


def _check_fits_length(h: Any, path: Path) -> None:
    """Raise if an uncompressed file is too short for the data its header promises."""
    with open(path, "rb") as f:
        if not f.read(len(_FITS_MAGIC)) == _FITS_MAGIC:
            return  # compressed: its size says nothing, and the read itself fails cleanly
    info = h.fileinfo()
    if info is None:
        return
    bitpix = abs(int(h.header.get("BITPIX", 8)))
    need = info["datLoc"] + bitpix // 8 * math.prod(int(n) for n in h.shape)
    have = path.stat().st_size
    if have < need:
        raise FileFormatError(
            f"{path} is a truncated FITS file: its header promises data up to byte "
            f"{need} but the file has {have} bytes"
        )


def _parse_fits_date(value: Any) -> float | None:
    """MJD (UTC) of a FITS date string ('YYYY-MM-DD[Thh:mm:ss[.s]]' or old 'DD/MM/YY').

    The standard's form is UTC without a zone; a trailing ``Z``, or an ISO 8601 offset
    from UTC (``+02:00``, ``-0500``) that some capture programs write after the time, is
    honoured (such a date was refused, and the solve went without its time).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    m = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?"
        r"(?:([+-])(\d{2}):?(\d{2}))?)?Z?", text
    )
    offset = 0.0
    if m:
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        hour = int(m[4] or 0)
        minute = int(m[5] or 0)
        second = float(m[6] or 0.0)
        if m[7]:
            if int(m[8]) > 14 or int(m[9]) >= 60:  # (ISO 8601 offsets span -12 to +14 h)
                return None
            offset = (1.0 if m[7] == "+" else -1.0) * (int(m[8]) + int(m[9]) / 60.0) / 24.0
    else:
        m = re.fullmatch(r"(\d{2})/(\d{2})/(\d{2})", text)
        if not m:
            return None
        day, month, year = int(m[1]), int(m[2]), 1900 + int(m[3])
        hour = minute = 0
        second = 0.0
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61):
        return None
    try:
        days = (_dt.date(year, month, day) - _MJD_ZERO).days
    except ValueError:  # e.g. 31 February
        return None
    # (local time = UTC + offset)
    return days + (hour + (minute + second / 60.0) / 60.0) / 24.0 - offset


def _date_and_time(header: Any, date_key: str, time_keys: tuple[str, ...]
                   ) -> tuple[float | None, bool]:
    """MJD of a date card, with the time of day from a separate card when the date has
    none (the pre-1997 ``DATE-OBS = '25/07/98'``, ``TIME-OBS = '19:01:42'`` form, still
    written by capture programs): without it the time was midnight, up to a day off.
    Also whether a time of day was found (False: the MJD is the date's midnight)."""
    mjd = _parse_fits_date(header.get(date_key))
    if mjd is None or ":" in str(header.get(date_key)):
        return mjd, mjd is not None
    for key in time_keys:
        value = header.get(key)
        m = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?",
                         value.strip()) if isinstance(value, str) else None
        if m and int(m[1]) < 24 and int(m[2]) < 60 and float(m[3] or 0.0) < 61:
            hours = int(m[1]) + (int(m[2]) + float(m[3] or 0.0) / 60.0) / 60.0
            return mjd + hours / 24.0, True
    return mjd, False


def _header_number(header: Any, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _exposure_days(header: Any) -> float | None:
    """The exposure time of a FITS header in days: its ``EXPTIME``, else its ``EXPOSURE``
    (seconds), the first that is a number >= 0; None without one."""
    for key in ("EXPTIME", "EXPOSURE"):
        seconds = _header_number(header, key)
        if seconds is not None and seconds >= 0.0:
            return seconds / 86400.0
    return None


def header_mjd(header: Any) -> float | None:
    """The time of observation in a FITS header as an MJD (UTC), or None: the exposure's
    midpoint where the header tells it.

    The first of: ``DATE-AVG``; ``MJD-AVG``; the midpoint of ``DATE-OBS`` and
    ``DATE-END``; the midpoint of ``MJD-OBS`` and ``MJD-END``; ``DATE-OBS`` plus half the
    exposure time (``EXPTIME``, else ``EXPOSURE``, in seconds; a card that is not a
    number >= 0 is passed over), or ``DATE-OBS`` alone, the exposure's start, without
    one; ``MJD-OBS`` likewise. A date card without a time of day (``'2019-07-29'``,
    and no ``TIME-OBS``, ``UT`` or ``UTSTART`` card) comes after the MJD cards, and
    alone is taken as its midnight, the exposure time not added (the Earth's velocity
    up to a day off: up to 0.35" in the aberration).
    """
    date_avg = _parse_fits_date(header.get("DATE-AVG"))
    if date_avg is not None:
        return date_avg
    mjd_avg = _header_number(header, "MJD-AVG")
    if mjd_avg is not None:
        return mjd_avg
    start, start_timed = _date_and_time(header, "DATE-OBS", ("TIME-OBS", "UT", "UTSTART"))
    end, end_timed = _date_and_time(header, "DATE-END", ("TIME-END", "UTEND"))
    if start_timed and end_timed:
        return 0.5 * (start + end)
    mjd_start = _header_number(header, "MJD-OBS")
    mjd_end = _header_number(header, "MJD-END")
    if mjd_start is not None and mjd_end is not None:
        return 0.5 * (mjd_start + mjd_end)
    if start_timed or mjd_start is not None:
        # (DATE-OBS is the exposure's start; the stars' light averages over the
        # exposure, whose midpoint stands for it: the Earth's velocity turns by
        # 0.007 degrees in 10 minutes)
        begin = start if start_timed else mjd_start
        exposure = _exposure_days(header)
        return begin if exposure is None else begin + 0.5 * exposure
    if start is not None and end is not None:
        return 0.5 * (start + end)
    return start


# ------------------------------------------------------------- TIFF, PNG, JPEG, BMP, GIF, WebP, PNM


def _read_tiff(path: Path) -> NDArray[Any]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.pages:
                raise FileFormatError(f"{path} is a TIFF file without any image")
            page = _full_resolution_page(tif)
            if page is not tif.pages[0]:
                return _read_tiff_page(path, page)
            shape = tuple(int(n) for n in page.shape)
            axes = page.axes
            _check_size(math.prod(shape), shape, path)
            if (page.compression == tifffile.COMPRESSION.NONE
                    and page.bitspersample in (8, 16, 32, 64)):  # packed bits: no check
                # refuse a header whose promised pixels are not in the file before
                # tifffile allocates the whole array for them
                size = tif.filehandle.size
                spans = zip(page.dataoffsets, page.databytecounts, strict=False)
                stored = sum(max(0, min(int(n), size - int(o))) for o, n in spans)
                if stored < page.nbytes:
                    raise FileFormatError(
                        f"{path} is a corrupted or truncated TIFF file: its header promises "
                        f"{page.nbytes} bytes of pixels but the file holds {stored}")
            orientation = page.tags.get(_EXIF_ORIENTATION_TAG)
            if page.photometric == tifffile.PHOTOMETRIC.PALETTE:
                return _read_tiff_pillow(path, tif, orientation)
            try:
                data = page.asarray()
            except (KeyError, ValueError) as exc:
                # compression codec missing (needs imagecodecs): Pillow decodes the
                # common ones (LZW, PackBits, JPEG)
                if "imagecodecs" not in str(exc):
                    raise
                return _read_tiff_pillow(path, tif, orientation)
    except SkysolveError:
        raise
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError, ...
        raise FileFormatError(f"{path} is a corrupted or truncated TIFF file: {exc}") from exc
    _warn_orientation(None if orientation is None else orientation.value, path, "TIFF")
    return _tiff_pixels(data, axes, page.photometric)


def _tiff_pixels(data: Any, axes: str, photometric: int) -> NDArray[Any]:
    """A decoded TIFF page's pixels as an image: planar colour moved last, single axes
    dropped, a MINISWHITE one inverted back."""
    data = np.asarray(data)
    if axes.startswith("S") and data.ndim == 3:
        data = np.moveaxis(data, 0, -1)  # planar colour: (S, Y, X) -> (Y, X, S)
    elif data.ndim > 2 and not axes.endswith("YXS"):
        data = np.squeeze(data)
    if photometric == 0 and data.dtype.kind in "ui":  # MINISWHITE: stored inverted
        data = np.iinfo(data.dtype).max - data
    return data


def _full_resolution_page(tif: Any) -> Any:
    """The TIFF page that holds the image: the first, unless it is marked a
    reduced-resolution one (``NewSubfileType`` bit 0: a DNG's, a camera TIFF's preview),
    when the largest full-resolution page -- a later one or one of its SubIFDs -- is
    (a DNG-like file was solved at its 256 x 192 preview's size, its WCS 4 times too
    coarse for the frame, without a word). A DNG's is its raw colour mosaic, read as one
    plane (the extraction takes a Bayer mosaic as it comes)."""
    first = tif.pages[0]
    if not int(getattr(first, "subfiletype", 0)) & 1:
        return first
    found = []
    for page in tif.pages:
        found.append(page)
        found.extend(getattr(page, "pages", None) or ())
    # (a transparency or depth mask of the same size is marked too: 4, 16)
    full = [p for p in found if int(getattr(p, "subfiletype", 0)) == 0
            and hasattr(p, "imagewidth")]
    return max(full, key=lambda p: p.imagewidth * p.imagelength, default=first)


def _read_tiff_page(path: Path, page: Any) -> NDArray[Any]:
    """The full-resolution image ``page`` of a TIFF whose first page is a preview
    (:func:`_full_resolution_page`); refused when it cannot be decoded, rather than
    solving the preview."""
    _check_size(math.prod(page.shape), tuple(page.shape), path)
    try:
        data = page.asarray()
    except Exception as exc:
        raise FileFormatError(
            f"{path}: its full-resolution image ({page.imagewidth} x {page.imagelength}, "
            f"compression {int(page.compression)}) could not be decoded ({exc}); its first "
            "image is a reduced-resolution preview, which is not solved in its place; "
            "convert the file to FITS or a plain TIFF") from exc
    orientation = page.tags.get(_EXIF_ORIENTATION_TAG)
    _warn_orientation(None if orientation is None else orientation.value, path, "TIFF")
    return _tiff_pixels(data, page.axes, page.photometric)


def _read_tiff_pillow(path: Path, tif: Any, orientation: Any) -> NDArray[Any]:
    """A TIFF tifffile does not decode (a palette, a compression the installed
    ``imagecodecs`` lacks) decoded by Pillow, as stored.

    Pillow's TIFF reader turns the raster as the Orientation tag (``orientation``,
    tifffile's, or None) says, unlike its JPEG and PNG readers and tifffile (and Pillow
    13 scrambles the rows of an uncompressed raster turned a quarter: 5 to 8). Pillow is
    given the file's bytes with the tag's value set to 1, so that the raster is the stored
    one, as for every other file; the warning of :func:`_warn_orientation` is given here.
    """
    value = None if orientation is None else orientation.value
    if (isinstance(value, int) and value in _EXIF_ORIENTATIONS and orientation.count == 1
            and orientation.valuebytecount <= 8):  # (an inline value: always, for 1)
        _warn_orientation(value, path, "TIFF")
        raw = bytearray(path.read_bytes())
        at, n = orientation.valueoffset, orientation.valuebytecount
        order = "little" if tif.byteorder == "<" else "big"
        raw[at:at + n] = (1).to_bytes(n, order)
        return _read_pillow(path, "TIFF", io.BytesIO(raw))
    return _read_pillow(path, "TIFF")


#: Bytes of a PNM header read at most (its comments can be long; its numbers are not).
_PNM_HEADER_BYTES = 1 << 16
#: Digits of a PNM header's number at most (a width, height or largest value beyond
#: this is a damaged header, whatever the pixel limit).
_PNM_MAX_DIGITS = 12
_PNM_COMMENT = re.compile(rb"#[^\r\n]*")


def _pnm_header(path: Path) -> tuple[bytes, int, int, int, int]:
    """A PGM/PPM's magic, width, height, largest value and the offset of its pixels.

    As Netpbm reads them: the numbers separated by whitespace and ``#`` comments (which
    run to the next CR or LF, and may follow a number directly), the pixels after the
    single character that ends the largest value (a whitespace byte; a comment there
    ends at its line's end, the pixels after that).
    """
    with open(path, "rb") as f:
        head = f.read(_PNM_HEADER_BYTES)

    def comment_end(pos: int) -> int:  # the CR or LF ending the comment at ``pos``
        ends = [k for k in (head.find(b"\n", pos), head.find(b"\r", pos)) if k >= 0]
        return min(ends) if ends else len(head)

    numbers: list[int] = []
    pos = 2
    while len(numbers) < 3:
        while pos < len(head) and (head[pos:pos + 1].isspace() or head[pos:pos + 1] == b"#"):
            if head[pos:pos + 1] == b"#":
                pos = comment_end(pos)
            pos += 1
        start = pos
        while pos < len(head) and head[pos:pos + 1].isdigit():
            pos += 1
        if (pos == start or pos >= len(head) or pos - start > _PNM_MAX_DIGITS
                or not (head[pos:pos + 1].isspace() or head[pos:pos + 1] == b"#")):
            raise FileFormatError(f"{path} is a corrupted or truncated PNM file: its header "
                                  "does not give the width, height and largest value")
        numbers.append(int(head[start:pos]))
        if head[pos:pos + 1] == b"#":
            pos = comment_end(pos)
    width, height, maxval = numbers
    if width < 1 or height < 1 or not 1 <= maxval <= 65535:
        raise FileFormatError(f"{path} is a corrupted PNM file: width {width}, height "
                              f"{height}, largest value {maxval}")
    return head[:2], width, height, maxval, pos + 1


def _read_pnm(path: Path) -> NDArray[Any]:
    """A PGM (P5, or P2 in ASCII) or PPM (P6, P3) with its values as stored: 8 bits when
    the largest value is below 256, else 16 (big-endian in a binary file). Pillow reads
    16-bit colour as 8 bits and scales other largest values (a 12-bit file's 4095) to
    255 or 65535; capture programs write both. The bitmaps (P1, P4) are Pillow's."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic not in (b"P2", b"P3", b"P5", b"P6"):
        return _read_pillow(path, "PNM")
    _, width, height, maxval, offset = _pnm_header(path)
    channels = 3 if magic in (b"P3", b"P6") else 1
    shape = (height, width, channels) if channels == 3 else (height, width)
    count = width * height * channels
    _check_size(count, shape, path)
    if magic in (b"P2", b"P3"):
        return _read_pnm_ascii(path, offset, count, maxval).reshape(shape)
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    held = path.stat().st_size - offset
    if held < count * dtype.itemsize:
        raise FileFormatError(
            f"{path} is a corrupted or truncated PNM file: its header promises "
            f"{count * dtype.itemsize} bytes of pixels but the file holds {max(0, held)}")
    data = np.fromfile(path, dtype=dtype, count=count, offset=offset).reshape(shape)
    return data.astype(data.dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else data


def _read_pnm_ascii(path: Path, offset: int, count: int, maxval: int) -> NDArray[Any]:
    """The first ``count`` decimal values after byte ``offset`` of an ASCII PNM (P2/P3),
    ``uint8`` or ``uint16`` by ``maxval``; comments skipped as Netpbm skips them."""
    with open(path, "rb") as f:
        f.seek(offset)
        tokens = _PNM_COMMENT.sub(b" ", f.read()).split()
    if len(tokens) < count:
        raise FileFormatError(f"{path} is a corrupted or truncated PNM file: its header "
                              f"promises {count} values but the file holds {len(tokens)}")
    if not all(t.isdigit() and len(t) <= _PNM_MAX_DIGITS for t in tokens[:count]):
        raise FileFormatError(f"{path} is a corrupted PNM file: a pixel value is not a "
                              "whole number")
    values = np.array(tokens[:count]).astype(np.int64)
    if values.max() > maxval:  # (as Netpbm refuses it; cast, it would wrap round)
        raise FileFormatError(f"{path} is a corrupted PNM file: a value of {values.max()} "
                              f"above its largest value {maxval}")
    return values.astype(np.uint8 if maxval < 256 else np.uint16)


_PILLOW_GREY_MODES = ("L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S")

#: The Orientation tag's values other than 1 (as stored; EXIF's tag is TIFF's, 274): how
#: a viewer that honours it turns the stored raster for display.
_EXIF_ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180 degrees",
                      4: "mirrored top-bottom",
                      5: "mirrored left-right and rotated 90 degrees anticlockwise",
                      6: "rotated 90 degrees clockwise",
                      7: "mirrored left-right and rotated 90 degrees clockwise",
                      8: "rotated 90 degrees anticlockwise"}
_EXIF_ORIENTATION_TAG = 0x0112


def _warn_orientation(value: Any, path: Path, fmt: str) -> None:
    """Warn when an image's Orientation tag asks viewers to turn it: its pixels are read
    as stored, and the centroids and the WCS refer to that raster, as FITS pixels and
    astropy's do (one raster for every reader of the file and every output written from
    it: the ``.axy``, the ``.wcs``, the ``.new`` FITS image), while the image a viewer
    shows is turned.

    The one rule for every reader: ``value`` is the tag as the file stores it (None when
    it has none), ``fmt`` the format it was read as (a TIFF's tag is its own, the others'
    in their EXIF block). 1 (top left) and values outside 1-8 say nothing.
    """
    turn = (_EXIF_ORIENTATIONS.get(int(value))
            if isinstance(value, int | np.integer) and not isinstance(value, bool) else None)
    if turn is None:
        return
    tag = "TIFF Orientation" if fmt == "TIFF" else "EXIF Orientation"
    warn_caller(
        f"{path}: its {tag} is {int(value)}: viewers show it {turn}, but its pixels are "
        f"read as stored, unturned; pixel coordinates and the WCS refer to the stored "
        f"raster (turn the image first, e.g. with PIL.ImageOps.exif_transpose, for "
        f"coordinates in the displayed one)", UserWarning)


def _exif_orientation(exif: bytes | None) -> Any:
    """The Orientation tag of an EXIF block (a TIFF header and its first directory,
    optionally after ``Exif\\0\\0``), or None: none, or a block Pillow cannot parse
    (which says nothing reliable)."""
    if not exif:
        return None
    from PIL import Image

    try:
        parsed = Image.Exif()
        parsed.load(exif)
        return parsed.get(_EXIF_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block says nothing reliable
        return None


def _pillow_orientation(im: Any) -> Any:
    """The Orientation tag of an image Pillow opened (its EXIF block, or a TIFF's own
    tag), or None."""
    try:
        return im.getexif().get(_EXIF_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block says nothing reliable
        return None


def _check_png_chunks(path: Path) -> bytes | None:
    """Refuse a PNG whose chunks claim more bytes than the file holds: Pillow would
    allocate a damaged length field's claim (80 MiB for one flipped bit of an 860-byte
    file) before finding the file too short. Returns the data of its (first) ``eXIf``
    chunk, the EXIF block, or None: the 16-bit colour PNGs read without Pillow are
    checked for an orientation from it."""
    size = path.stat().st_size
    pos = len(_PNG_MAGIC)
    exif = None
    with open(path, "rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(8)
            length = int.from_bytes(head[:4], "big")
            if pos + 12 + length > size:
                raise FileFormatError(
                    f"{path} is a corrupted or truncated PNG file: a {head[4:8]!r} chunk at "
                    f"byte {pos} claims {length} bytes, beyond the file's {size}")
            if head[4:8] == b"eXIf" and exif is None:
                exif = f.read(length)
            if head[4:8] == b"IEND":
                break
            pos += 12 + length
    return exif


#: The fewest pixels one byte of a JPEG file can describe, with a margin of 2: each 8 x 8
#: block of a component takes at least one Huffman-coded bit, for its DC coefficient.
#: (Arithmetic coding, which almost no camera writes, could hold a blank image in less.)
_JPEG_PIXELS_PER_BYTE = 2 * 8 * 64


def _check_jpeg_bytes(width: int, height: int, path: Path) -> None:
    """Refuse a JPEG whose header claims more pixels than its bytes can describe: a
    damaged size (found by the fuzzer: a 753-byte file claiming 32800 x 1024 pixels,
    which libjpeg fills with grey past the data's end, decoded as a 34 MB image)."""
    size = path.stat().st_size
    if width * height > size * _JPEG_PIXELS_PER_BYTE:
        raise FileFormatError(
            f"{path} is a corrupted or truncated JPEG file: it claims {width} x {height} "
            f"pixels, more than its {size} bytes can describe")


def _read_pillow(path: Path, fmt: str, source: Any = None) -> NDArray[Any]:
    """The pixels of ``path`` (a ``fmt`` file) decoded by Pillow, from ``source`` (a file
    object with its bytes) when given, else from ``path``."""
    from PIL import Image

    if fmt == "PNG":
        exif = _check_png_chunks(path)
        from .png import read_png16  # (Pillow keeps 8 bits of a 16-bit colour PNG)

        data = read_png16(path, _check_size)
        if data is not None:
            _warn_orientation(_exif_orientation(exif), path, fmt)
            return data
    try:
        with warnings.catch_warnings():
            # our own MAX_PIXELS check below replaces Pillow's early warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path if source is None else source) as im:
                width, height = im.size
                channels = len(im.getbands())
                _check_size(width * height * channels, (height, width, channels), path)
                if fmt == "JPEG" and source is None:
                    _check_jpeg_bytes(width, height, path)
                im.load()
                _warn_orientation(_pillow_orientation(im), path, fmt)
                mode = im.mode
                if mode in _PILLOW_GREY_MODES:
                    data = np.asarray(im)
                elif mode in ("LA", "La"):
                    data = np.asarray(im)[..., 0]
                elif mode == "1":
                    data = np.asarray(im.convert("L"))
                elif mode in ("RGB", "RGBA", "RGBX", "RGBa"):
                    data = np.asarray(im)
                else:  # palette, CMYK, YCbCr, LAB, HSV, ...
                    data = np.asarray(im.convert("RGB"))
    except SkysolveError:
        raise
    except Image.DecompressionBombError as exc:
        # (raised by Image.open before our own check: the same refusal from the header)
        raise TooManyPixelsError(
            f"{path}: image too large for Pillow's decompression-bomb limit ({exc})"
        ) from exc
    except Exception as exc:  # OSError "image file is truncated", SyntaxError, ...
        raise FileFormatError(f"{path} is a corrupted or truncated {fmt} file: {exc}") from exc
    return data
