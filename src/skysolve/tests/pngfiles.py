"""16-bit PNG files written from the format's definition (PNG, ISO/IEC 15948), for tests.

Pillow cannot write a 16-bit colour PNG, which colour cameras' capture programs do.
:func:`encode_png16` writes one with a chosen filter on each row, so that a reader is
checked against every filter the format has.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

#: PNG colour type by samples per pixel: grey + alpha, RGB, RGBA.
COLOUR_TYPES = {2: 4, 3: 2, 4: 6}


def encode_png16(samples: np.ndarray, filters) -> bytes:
    """The PNG file of ``samples`` ``(height, width, 2|3|4)`` (16-bit values), row ``r``
    filtered with ``filters[r]`` (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    height, width, channels = samples.shape
    x = np.asarray(samples).astype(">u2").view(np.uint8).reshape(height, width, -1)
    x = x.astype(np.int16)
    a, b, c = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    a[:, 1:], b[1:], c[1:, 1:] = x[:, :-1], x[:-1], x[:-1, :-1]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    guess = (np.zeros_like(x), a, b, (a + b) >> 1, paeth)
    rows = b"".join(bytes([k]) + ((x[r] - guess[k][r]) % 256).astype(np.uint8).tobytes()
                    for r, k in enumerate(filters))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 16, COLOUR_TYPES[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))
