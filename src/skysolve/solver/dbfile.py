"""The database file format: a checked header and memory-mappable arrays.

A file is ``b"SKYSOLVE-DB\\0"``, a u32 format version, a u32 header length, the
u32 CRC-32 of the header, a JSON header (the generation parameters and, per
array, dtype, shape, offset and CRC-32), then the raw little-endian arrays,
each aligned to 64 bytes so that they can be memory-mapped. Nothing in a file
is ever executed: no pickle inside.

Writing is atomic (a temporary file in the same directory, then a rename), so
an interrupted save never leaves a half-written database behind.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import FileFormatError, InvalidTypeError

__all__ = ["DATABASE_FORMAT_VERSION", "ARRAY_NAMES", "write_database", "read_database"]

_MAGIC = b"SKYSOLVE-DB\x00"
DATABASE_FORMAT_VERSION = 2
# magic, version, json length, CRC-32 of the json (v1 had no header CRC, so a flipped
# digit in the parameters loaded silently)
_PREAMBLE = struct.Struct("<12sIII")
_ALIGN = 64
#: The arrays of a database file, in file order.
ARRAY_NAMES = ("star_ids", "star_ra_deg", "star_dec_deg", "star_mag", "pattern_stars",
               "pattern_keys")


def file_path(path: Any) -> Path:
    """``path`` as a :class:`~pathlib.Path`, or an error naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def write_database(path: str | os.PathLike, arrays: dict[str, NDArray],
                   parameters: dict[str, Any]) -> None:
    """Write ``arrays`` (every name of :data:`ARRAY_NAMES`) and ``parameters`` atomically."""
    path = file_path(path)
    if path.is_dir():
        raise IsADirectoryError(f"path is a directory, not a file: {path}")
    arrays = {k: np.ascontiguousarray(arrays[k]) for k in ARRAY_NAMES}
    descr = {}
    offset = 0
    for name, a in arrays.items():
        offset = _aligned(offset)
        descr[name] = {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
                       "offset": offset, "crc32": zlib.crc32(a.data) & 0xFFFFFFFF}
        offset += a.nbytes
    header = json.dumps({"parameters": parameters, "arrays": descr,
                         "data_bytes": offset}).encode()
    start = _aligned(_PREAMBLE.size + len(header))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(_PREAMBLE.pack(_MAGIC, DATABASE_FORMAT_VERSION, len(header),
                                    zlib.crc32(header) & 0xFFFFFFFF))
            fh.write(header)
            pos = _PREAMBLE.size + len(header)
            for name, a in arrays.items():
                target = start + descr[name]["offset"]
                fh.write(b"\0" * (target - pos))
                fh.write(a.astype(a.dtype.newbyteorder("<"), copy=False).data)
                pos = target + a.nbytes
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_header(path: Path, size: int) -> tuple[dict[str, Any], int]:
    """The parsed JSON header and the length of header bytes, checked."""
    with open(path, "rb") as fh:
        pre = fh.read(_PREAMBLE.size)
        if len(pre) < _PREAMBLE.size:
            raise FileFormatError(f"{path} is too short to be a skysolve database")
        magic, version, hlen, header_crc = _PREAMBLE.unpack(pre)
        if magic != _MAGIC:
            raise FileFormatError(f"{path} is not a skysolve database (bad magic number)")
        if version != DATABASE_FORMAT_VERSION:
            raise FileFormatError(
                f"{path} is a skysolve database of format version {version}; this "
                f"skysolve reads version {DATABASE_FORMAT_VERSION}: regenerate it")
        if hlen > 1 << 24:
            raise FileFormatError(f"{path}: header length {hlen} is impossible (corrupted)")
        if _PREAMBLE.size + hlen > size:
            raise FileFormatError(f"{path} is truncated: {size} bytes, shorter than its "
                                  f"{_PREAMBLE.size + hlen}-byte header")
        raw = fh.read(hlen)
    if zlib.crc32(raw) & 0xFFFFFFFF != header_crc:
        raise FileFormatError(f"{path}: checksum mismatch in the header (file corrupted)")
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header["parameters"], dict) or set(header["arrays"]) != set(
                ARRAY_NAMES):
            raise ValueError("unexpected header layout")
        header["data_bytes"] = int(header["data_bytes"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
        raise FileFormatError(f"{path}: corrupted header ({exc})") from None
    return header, hlen


def _array_layout(path: Path, name: str, d: Any, data_bytes: int) -> tuple[np.dtype,
                                                                              tuple, int, int]:
    """dtype, shape, offset and CRC-32 of one array's description, checked."""
    try:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        offset = int(d["offset"])
        if dtype.kind not in "iuf" or any(s < 0 for s in shape) or offset < 0:
            raise ValueError("bad dtype/shape")
        if offset + dtype.itemsize * math.prod(shape) > data_bytes:
            raise ValueError("array exceeds the data section")
        return dtype, shape, offset, int(d["crc32"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FileFormatError(f"{path}: corrupted description of {name} ({exc})") from None


def read_database(path: str | os.PathLike, mmap: bool = False,
                  verify: bool = True) -> tuple[dict[str, NDArray], dict[str, Any]]:
    """Arrays and parameters of a file written by :func:`write_database`.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    FileFormatError
        If the file is not a skysolve database, is of another format version,
        or is truncated or corrupted.
    """
    path = file_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"database file not found: {path}")
    size = path.stat().st_size
    header, hlen = _read_header(path, size)
    start = _aligned(_PREAMBLE.size + hlen)
    if size < start + header["data_bytes"]:
        raise FileFormatError(
            f"{path} is truncated: {size} bytes, expected {start + header['data_bytes']}")
    arrays = {}
    for name in ARRAY_NAMES:
        dtype, shape, offset, crc = _array_layout(path, name, header["arrays"][name],
                                                  header["data_bytes"])
        if mmap:
            a = np.memmap(path, dtype=dtype, mode="r", offset=start + offset, shape=shape)
        else:
            a = np.fromfile(path, dtype=dtype, count=math.prod(shape),
                            offset=start + offset).reshape(shape)
        if verify and (zlib.crc32(np.ascontiguousarray(a).data) & 0xFFFFFFFF) != crc:
            raise FileFormatError(f"{path}: checksum mismatch in {name} (file corrupted)")
        arrays[name] = a
    return arrays, header["parameters"]
