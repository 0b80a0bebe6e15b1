"""The database file format: a checked header and memory-mappable arrays.

A file is ``b"SKYSOLVE-DB\\0"``, a u32 format version, a u32 header length, the
u32 CRC-32 of the header, a JSON header (the generation parameters and, per
array, dtype, shape, offset and CRC-32), then the raw little-endian arrays,
each aligned to 64 bytes so that they can be memory-mapped, the file ending with the
last array's last byte (``data_bytes`` after the aligned end of the header): a file
longer or shorter than that is refused. Nothing in a file is ever executed: no
pickle inside.

Writing is atomic (a temporary file in the same directory, then a rename), so
an interrupted save never leaves a half-written database behind.

Reading checks the header's CRC and, with ``verify``, every array's. The pattern
arrays are nearly all of a large file (1.3 of 1.4 GB for a 1-3 deg Gaia
database) and their CRCs took ~0.8 s per GB on every load, in every process. A
reader given a ``verified_dir`` records there a file whose arrays all passed,
keyed by its identity and state (device, inode, size, modification and
status-change times, resolved path, the header's array descriptions); a later
load of that file in that state checks the header's and the star table's CRCs
and not the pattern arrays'. Any write to the file, by any program, changes its
status-change time (which no tool sets back) or, replaced by another file, its
inode, so a record only ever matches the very bytes verified -- barring the
storage corrupting them in place, which then goes unseen in the pattern arrays. (On
Windows ``st_ctime`` is the creation time: a program that rewrites a file in place
and sets its modification time back keeps its record there.) A
file changed within :data:`_SETTLED_S` of the read is not recorded: file times
tick coarsely (a few ms; 2 s on FAT), and a change in the same tick as the one
before would keep its times.
The structural checks of :class:`~skysolve.solver.database.PatternDatabase` (star
indices within the star table, keys sorted) run on every load whatever the
record, and the star table, which every answer is verified against, is always
checked: a damaged pattern can only fail to match, or give a candidate that the
verification against the stars rejects. A record is an empty file named by a
hash of its key: only its existence is read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import threading
import time
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
#: The arrays whose CRCs a matching verified-once record skips (see the module notes).
_BULK_ARRAYS = ("pattern_stars", "pattern_keys")
#: How long (s) a file must have been left unchanged for a verified-once record of it.
_SETTLED_S = 3.0


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
    # little-endian before the CRCs, which are of the bytes written (of the arrays' own
    # bytes, a big-endian array's file failed its own checksums)
    arrays = {k: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
              for k, a in ((k, np.asarray(arrays[k])) for k in ARRAY_NAMES)}
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
    # (named by thread too: two threads of one process saving to one path wrote into
    # one temporary file, and one's rename took the other's half-written bytes)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(_PREAMBLE.pack(_MAGIC, DATABASE_FORMAT_VERSION, len(header),
                                    zlib.crc32(header) & 0xFFFFFFFF))
            fh.write(header)
            pos = _PREAMBLE.size + len(header)
            for name, a in arrays.items():
                target = start + descr[name]["offset"]
                fh.write(b"\0" * (target - pos))
                fh.write(a.data)
                pos = target + a.nbytes
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno is None:
            raise
        # (the OS's message named the hidden temporary file, not the path asked for)
        raise type(exc)(exc.errno, f"cannot write the database: {exc.strerror}",
                        str(path)) from exc
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
            # (a newer file: the user's other skysolve is newer, and upgrading this one
            # keeps the file, which took minutes to build)
            advice = ("written by a newer skysolve: upgrade skysolve, or regenerate it with "
                      "this one" if version > DATABASE_FORMAT_VERSION else "regenerate it")
            raise FileFormatError(
                f"{path} is a skysolve database of format version {version}; this "
                f"skysolve reads version {DATABASE_FORMAT_VERSION}: {advice}")
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


def _record(verified_dir: Path, path: Path, st: os.stat_result,
            header: dict[str, Any]) -> Path:
    """The verified-once record of ``path`` in the state ``st`` (see the module notes)."""
    key = json.dumps([os.path.realpath(path), st.st_dev, st.st_ino, st.st_size,
                      st.st_mtime_ns, st.st_ctime_ns, header["arrays"]], sort_keys=True)
    return verified_dir / "verified" / hashlib.sha256(key.encode()).hexdigest()


def _write_record(record: Path) -> None:
    """Create ``record``; a cache directory that cannot be written only costs the next
    load its full check."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        record.touch()
    except OSError:
        pass


def read_database(path: str | os.PathLike, mmap: bool = False, verify: bool = True,
                  verified_dir: str | os.PathLike | None = None,
                  ) -> tuple[dict[str, NDArray], dict[str, Any]]:
    """Arrays and parameters of a file written by :func:`write_database`.

    With ``verify`` every array's CRC is checked, except the pattern arrays' of a
    file that ``verified_dir`` holds a record of, in its present state; a file that
    passes all is recorded there (see the module notes).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    IsADirectoryError
        If ``path`` is a directory.
    FileFormatError
        If the file is not a skysolve database, is of another format version,
        is truncated or corrupted, or holds bytes after its data.
    """
    path = file_path(path)
    if path.is_dir():  # (was "not found": the path is there, but is no file)
        raise IsADirectoryError(f"{path} is a directory, not a database file")
    if not path.is_file():
        raise FileNotFoundError(f"database file not found: {path}")
    st = path.stat()  # (before the reads: a change during them cannot match the record)
    size = st.st_size
    header, hlen = _read_header(path, size)
    record = None if not verify or verified_dir is None else _record(
        Path(verified_dir), path, st, header)
    # (os.path.exists: Path.exists raises, before Python 3.13, on a directory that cannot
    # be searched -- another user's cache -- which must only cost the load its full check)
    recorded = record is not None and os.path.exists(record)
    start = _aligned(_PREAMBLE.size + hlen)
    expected = start + header["data_bytes"]
    if size < expected:
        raise FileFormatError(f"{path} is truncated: {size} bytes, expected {expected}")
    if size > expected:
        # (the writer ends a file with its last array: bytes after it are a download
        # appended to, two files concatenated, or a header describing less than the file)
        raise FileFormatError(f"{path} has {size - expected} extra bytes after its data "
                              f"({size} bytes, expected {expected}): a damaged copy")
    arrays = {}
    for name in ARRAY_NAMES:
        dtype, shape, offset, crc = _array_layout(path, name, header["arrays"][name],
                                                  header["data_bytes"])
        if mmap:
            a = np.memmap(path, dtype=dtype, mode="r", offset=start + offset, shape=shape)
        else:
            a = np.fromfile(path, dtype=dtype, count=math.prod(shape),
                            offset=start + offset).reshape(shape)
        check = verify and not (recorded and name in _BULK_ARRAYS)
        if check and (zlib.crc32(np.ascontiguousarray(a).data) & 0xFFFFFFFF) != crc:
            raise FileFormatError(f"{path}: checksum mismatch in {name} (file corrupted)")
        arrays[name] = a
    settled = time.time() - max(st.st_mtime, st.st_ctime) > _SETTLED_S
    if record is not None and not recorded and settled:
        _write_record(record)
    return arrays, header["parameters"]
