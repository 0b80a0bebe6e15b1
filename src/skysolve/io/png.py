"""16-bit colour PNG, decoded with all 16 bits of every sample.

Pillow opens a 16-bit RGB, RGBA or grey-with-alpha PNG (as SharpCap and Siril write
a colour camera's linear frames) in an 8-bit mode: it keeps the high byte of every
sample and drops the low one, which on a linear frame holds the background's noise
and the faint stars (a background of 300 ADU becomes 1). This module reads those
files from their documented format (PNG, ISO/IEC 15948): the ``IHDR`` header, the
``IDAT`` stream inflated with :mod:`zlib`, and the five per-row filters undone.

Each filter predicts a byte from its neighbours ``a`` (the same byte of the pixel on
the left), ``b`` (of the pixel above) and ``c`` (above left), so a pixel depends on
the ones left of and above it: the bytes are reconstructed one anti-diagonal of the
image at a time, every pixel of a diagonal at once (a few seconds for 24 megapixels).

Interlaced (Adam7) files are left to Pillow.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import FileFormatError

__all__ = ["read_png16"]

#: Samples per pixel of the 16-bit colour types decoded here (2 RGB, 4 grey + alpha,
#: 6 RGBA); grey (type 0) Pillow reads with its 16 bits.
_CHANNELS = {2: 3, 4: 2, 6: 4}
_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_png16(path: Path, check_size: Callable[[int, tuple[int, ...], Path], None]
               ) -> NDArray[np.uint16] | None:
    """The samples of a 16-bit colour PNG as ``(height, width, channels)`` ``uint16``, or
    None for any other PNG (bit depth below 16, grey, palette, or interlaced).

    ``check_size(n_values, shape, path)`` is called before the pixels are inflated (the
    caller's limit on the pixel values of an image).

    Raises
    ------
    skysolve.errors.FileFormatError
        A damaged file: a chunk whose CRC does not match, pixel data that do not inflate
        to the promised size, or an unknown row filter.
    """
    header, chunks = _chunks(path)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 16 or colour not in _CHANNELS or interlace != 0:
        return None
    channels = _CHANNELS[colour]
    check_size(width * height * channels, (height, width, channels), path)
    bpp = 2 * channels
    size = height * (1 + width * bpp)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(chunks), size)
    except zlib.error as exc:
        raise FileFormatError(f"{path} is a corrupted PNG file: {exc}") from exc
    if len(raw) != size:
        raise FileFormatError(f"{path} is a corrupted or truncated PNG file: its pixel data "
                              f"inflate to {len(raw)} bytes, not {size}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * bpp)
    data = _unfilter(rows[:, 0], rows[:, 1:].reshape(height, width, bpp), path)
    return data.view(">u2").reshape(height, width, channels).astype(np.uint16)


def _chunks(path: Path) -> tuple[bytes, list[bytes]]:
    """The ``IHDR`` chunk's data and the ``IDAT`` chunks' data, every CRC checked."""
    blob = path.read_bytes()
    pos, header, data = len(_MAGIC), b"", []
    while pos + 12 <= len(blob):
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        body = blob[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length] or b"\0" * 4)
        if len(body) != length or zlib.crc32(kind + body) != crc:
            raise FileFormatError(f"{path} is a corrupted or truncated PNG file: its "
                                  f"{kind!r} chunk at byte {pos} is damaged")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            data.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if len(header) != 13:
        raise FileFormatError(f"{path} is a corrupted PNG file: no IHDR header")
    return header, data


def _unfilter(kinds: NDArray[np.uint8], filtered: NDArray[np.uint8],
              path: Path) -> NDArray[np.uint8]:
    """The bytes ``(height, width, bpp)`` of the rows ``filtered`` with the filter types
    ``kinds`` (0 none, 1 sub, 2 up, 3 average, 4 Paeth), undone."""
    if kinds.size and int(kinds.max()) > 4:
        raise FileFormatError(f"{path} is a corrupted PNG file: unknown row filter "
                              f"{int(kinds.max())}")
    height, width, bpp = filtered.shape
    # Pixels flat, with a zero row above the image and a zero column left of it (the
    # neighbours the format defines outside the image): pixel (r, i) is at
    # (r + 1) (width + 1) + i + 1, so the pixels of anti-diagonal r + i = d lie
    # ``width`` apart, and each neighbour of the whole diagonal is one strided slice.
    out = np.zeros(((height + 1) * (width + 1), bpp), np.uint8)
    flat = filtered.reshape(height * width, bpp)
    masks = [(kinds == k).astype(np.int16)[:, None] for k in (1, 2, 3, 4)]
    for d in range(height + width - 1):
        lo, hi = max(0, d - width + 1), min(height, d + 1)
        first = (lo + 1) * (width + 1) + d - lo + 1
        at = slice(first, first + (hi - lo - 1) * width + 1, width)
        a = out[at.start - 1:at.stop - 1:width].astype(np.int16)
        b = out[at.start - width - 1:at.stop - width - 1:width].astype(np.int16)
        c = out[at.start - width - 2:at.stop - width - 2:width].astype(np.int16)
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        sub, up, average, pth = (m[lo:hi] for m in masks)
        guess = sub * a + up * b + average * ((a + b) >> 1) + pth * paeth
        src = lo * width + d - lo  # (flat index of pixel (lo, d - lo))
        out[at] = (flat[src:src + (hi - lo - 1) * (width - 1) + 1:max(width - 1, 1)]
                   + guess).astype(np.uint8)
    return out.reshape(height + 1, width + 1, bpp)[1:, 1:]
