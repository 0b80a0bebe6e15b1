"""16-bit colour PNG, decoded with all 16 bits of every sample.

Pillow opens a 16-bit RGB, RGBA or grey-with-alpha PNG (as SharpCap and Siril write
a colour camera's linear frames) in an 8-bit mode: it keeps the high byte of every
sample and drops the low one, which on a linear frame holds the background's noise
and the faint stars (a background of 300 ADU becomes 1). Those files are decoded by
``imagecodecs`` (libpng) instead; the header's bit depth and colour type, read here,
say which files they are.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import FileFormatError

__all__ = ["read_png16"]

#: Samples per pixel of the 16-bit colour types decoded here (2 RGB, 4 grey + alpha,
#: 6 RGBA); grey (type 0) Pillow reads with its 16 bits.
_CHANNELS = {2: 3, 4: 2, 6: 4}
#: The signature and the ``IHDR`` chunk that opens every PNG: length, type, then width,
#: height, bit depth, colour type, compression, filter and interlace method.
_HEAD = struct.Struct(">8sI4sIIBBBBB")


def read_png16(path: Path, check_size: Callable[[int, tuple[int, ...], Path], None]
               ) -> NDArray[np.uint16] | None:
    """The samples of a 16-bit colour PNG as ``(height, width, channels)`` ``uint16``, or
    None for any other PNG (bit depth below 16, grey or palette).

    ``check_size(n_values, shape, path)`` is called before the pixels are inflated (the
    caller's limit on the pixel values of an image).

    Raises
    ------
    skysolve.errors.FileFormatError
        A damaged file: no ``IHDR`` header, a chunk whose CRC does not match, or pixel
        data that do not inflate to the promised image.
    """
    with open(path, "rb") as f:
        head = f.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None  # (too short for a header: Pillow names the damage)
    _, length, kind, width, height, depth, colour, *_ = _HEAD.unpack(head)
    if kind != b"IHDR" or length != 13:
        raise FileFormatError(f"{path} is a corrupted PNG file: no IHDR header")
    if depth != 16 or colour not in _CHANNELS:
        return None
    channels = _CHANNELS[colour]
    check_size(width * height * channels, (height, width, channels), path)
    import imagecodecs  # (here: only such files need it)

    try:
        data = imagecodecs.png_decode(path.read_bytes())
    except imagecodecs.PngError as exc:
        raise FileFormatError(f"{path} is a corrupted or truncated PNG file: {exc}") from exc
    if data.shape != (height, width, channels) or data.dtype != np.uint16:
        raise FileFormatError(f"{path} is a corrupted PNG file: it decodes to "
                              f"{data.shape} {data.dtype}, not its header's "
                              f"{(height, width, channels)} uint16")
    return data
