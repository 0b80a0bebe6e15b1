"""Damaged files: every case is a clean documented error or a correct load.

Database files (a tiny synthetic database) and camera JSON files are
truncated, bit-flipped, overwritten and padded; random bytes and damaged real
FITS/PNG/TIFF/JPEG files go to ``read_image``. Each case runs under a watchdog
(a hang fails it) with ``tracemalloc`` watching the peak allocation: a header
that claims a huge array must be refused before the array is allocated.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skysolve as ss
from skysolve.database import SolverDatabase
from skysolve.errors import FileFormatError, InvalidArgumentError

DOCUMENTED = (FileFormatError, FileNotFoundError)
MAX_ALLOC = 64 * 2**20  # every damaged file here is < 1 MB: no case may allocate more
# SKYSOLVE_FUZZ_EXAMPLES=N runs a deeper search than CI's default
EXAMPLES = int(os.environ.get("SKYSOLVE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@contextlib.contextmanager
def guarded(seconds: int = 20):
    """Fail on a hang (SIGALRM watchdog) or on an allocation above ``MAX_ALLOC``."""
    def hang(signum, frame):
        raise AssertionError(f"no answer within {seconds} s: hang")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    tracemalloc.start()
    try:
        yield
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    assert peak < MAX_ALLOC, f"peak allocation {peak / 2**20:.0f} MiB"


def damage(raw: bytes, data: st.DataObject) -> bytes:
    """One or more of: truncate, flip bits, overwrite a run, pad, insert."""
    b = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3), label="n_ops")):
        op = data.draw(st.sampled_from(["truncate", "flip", "overwrite", "pad", "insert"]),
                       label="op")
        n = len(b)
        if op == "truncate" and n:
            del b[data.draw(st.integers(0, n - 1), label="cut"):]
        elif op == "flip" and n:
            i = data.draw(st.integers(0, n - 1), label="at")
            b[i] ^= data.draw(st.integers(1, 255), label="mask")
        elif op == "overwrite" and n:
            i = data.draw(st.integers(0, n - 1), label="at")
            junk = data.draw(st.binary(min_size=1, max_size=64), label="junk")
            b[i:i + len(junk)] = junk
        elif op == "pad":
            b += data.draw(st.binary(min_size=1, max_size=256), label="pad")
        elif op == "insert":
            i = data.draw(st.integers(0, n), label="at")
            b[i:i] = data.draw(st.binary(min_size=1, max_size=32), label="ins")
    return bytes(b)


def same_database(a: SolverDatabase, b: SolverDatabase) -> bool:
    return a.to_bytes() == b.to_bytes()


# ---------------------------------------------------------------------------- databases


@FUZZ
@given(data=st.data(), mmap=st.booleans())
def test_damaged_database_is_refused_or_loads_intact(tiny_db, tiny_db_file, tmp_path_factory,
                                                       data, mmap):
    raw = tiny_db_file.read_bytes()
    bad = damage(raw, data)
    path = tmp_path_factory.mktemp("dbfuzz") / "bad.db"
    path.write_bytes(bad)
    with guarded():
        try:
            db = SolverDatabase.load_from_file(path, mmap=mmap)
        except DOCUMENTED as exc:
            assert str(path) in str(exc)
            return
    # a load is only right when nothing that matters changed (padding, trailing bytes)
    assert same_database(db, tiny_db), f"damaged file loaded as a different database ({len(bad)} B)"
    del db


def _header_and_body(raw: bytes):
    magic_len = raw.index(b"\0") + 1
    version, hlen, _ = struct.unpack_from("<III", raw, magic_len)
    start = magic_len + 12
    return raw[:magic_len], version, raw[start:start + hlen], raw[start + hlen:]


def _with_header(raw: bytes, header: bytes) -> bytes:
    """The file with its JSON header replaced and a valid header checksum."""
    magic, version, _, body = _header_and_body(raw)
    return (magic + struct.pack("<III", version, len(header), zlib.crc32(header) & 0xFFFFFFFF)
            + header + body)


@pytest.mark.parametrize("edit", [
    lambda h: h["arrays"]["star_xyz" if "star_xyz" in h["arrays"] else next(iter(h["arrays"]))]
    .update(shape=[10**12, 3]),
    lambda h: h["arrays"][next(iter(h["arrays"]))].update(shape=[2**40]),
    lambda h: h["arrays"][next(iter(h["arrays"]))].update(shape=[-1]),
    lambda h: h["arrays"][next(iter(h["arrays"]))].update(offset=2**62),
    lambda h: h["arrays"][next(iter(h["arrays"]))].update(dtype="O"),
    lambda h: h["arrays"][next(iter(h["arrays"]))].update(dtype="<U100"),
    lambda h: h.update(data_bytes=2**62),
    lambda h: h.update(data_bytes="x"),
    lambda h: h.pop("parameters"),
    lambda h: h["arrays"].popitem(),
    lambda h: h.update(parameters=[1, 2]),
], ids=["huge-2d", "huge-1d", "negative", "offset", "object", "unicode", "data-bytes",
        "data-bytes-str", "no-parameters", "missing-array", "parameters-list"])
def test_forged_database_header_is_refused_before_allocation(tiny_db_file, tmp_path, edit):
    """A header with a valid checksum that lies about the arrays is refused, cheaply."""
    import json

    raw = tiny_db_file.read_bytes()
    header = json.loads(_header_and_body(raw)[2])
    edit(header)
    path = tmp_path / "forged.db"
    path.write_bytes(_with_header(raw, json.dumps(header).encode()))
    for mmap in (False, True):
        with guarded(), pytest.raises(FileFormatError):
            SolverDatabase.load_from_file(path, mmap=mmap)


def test_deeply_nested_database_header_is_refused(tiny_db_file, tmp_path):
    path = tmp_path / "nested.db"
    path.write_bytes(_with_header(tiny_db_file.read_bytes(), b"[" * 100000 + b"]" * 100000))
    with guarded(), pytest.raises(FileFormatError):
        SolverDatabase.load_from_file(path)


def test_other_version_and_foreign_files_are_refused(tiny_db_file, tmp_path):
    raw = tiny_db_file.read_bytes()
    magic, version, header, body = _header_and_body(raw)
    other = tmp_path / "v99.db"
    other.write_bytes(magic + struct.pack("<III", 99, len(header), zlib.crc32(header)) + header
                      + body)
    with pytest.raises(FileFormatError, match="version"):
        SolverDatabase.load_from_file(other)
    for content in (b"", b"\0" * 10, b"SIMPLE  = T", np.zeros(100).tobytes(),
                    b"\x80\x04\x95" + bytes(200)):  # a pickle is never executed
        path = tmp_path / "foreign.db"
        path.write_bytes(content)
        with pytest.raises(FileFormatError):
            SolverDatabase.load_from_file(path)


def test_intact_database_file_round_trips(tiny_db, tiny_db_file):
    for mmap in (False, True):
        db = SolverDatabase.load_from_file(tiny_db_file, mmap=mmap)
        assert same_database(db, tiny_db)
        assert db.parameters == tiny_db.parameters


# ---------------------------------------------------------------------------- camera files


def _camera():
    dist = ss.PolynomialDistortion.from_forward(
        3, 512.0, np.r_[0, 0, 0, 1e-4, -2e-4, 3e-5, 1e-5, 0, 0, 2e-6],
        np.r_[0, 0, 0, -1e-4, 1e-4, 0, 0, 1e-5, 0, 0], image_width=1024, image_height=768)
    return ss.CameraModel(2400.5, 1024, 768, crpix=(3.25, -1.5), parity_flip=True,
                          distortion=dist)


@FUZZ
@given(data=st.data(), radial=st.booleans())
def test_damaged_camera_file_is_refused_or_loads_intact(tmp_path_factory, data, radial):
    cam = _camera()
    if radial:
        cam = cam.replace(distortion=ss.RadialDistortion(k1=-2e-8, k2=1e-14, p1=1e-6))
    path = tmp_path_factory.mktemp("camfuzz") / "cam.json"
    cam.save_to_file(path)
    path.write_bytes(damage(path.read_bytes(), data))
    with guarded():
        try:
            back = ss.CameraModel.load_from_file(path)
        except DOCUMENTED:
            return
    assert back == cam, "damaged camera file loaded as a different camera"


@pytest.mark.parametrize("text", [
    "", "{", "[]", "null", "1" * 100, '{"format": "skysolve-camera"}',
    '{"format": "skysolve-camera", "version": 99}',
    '{"format": "skysolve-camera", "version": 1, "focal_length_px": "a"}',
    '{"format": "skysolve-camera", "version": 1, "focal_length_px": 1e400, '
    '"image_width": 10, "image_height": 10}',
    '{"format": "skysolve-camera", "version": 1, "focal_length_px": 100, '
    '"image_width": 10, "image_height": 10, "distortion": {"type": "polynomial", "order": 99}}',
    "[" * 100000 + "]" * 100000,  # deep nesting: no RecursionError escapes
])
def test_foreign_camera_files_are_refused(tmp_path, text):
    path = tmp_path / "cam.json"
    path.write_text(text)
    with guarded(), pytest.raises(FileFormatError):
        ss.CameraModel.load_from_file(path)
    path.write_bytes(b"\xff\xfe" + text.encode())
    with pytest.raises(FileFormatError):
        ss.CameraModel.load_from_file(path)


# ---------------------------------------------------------------------------- images

SIGNATURES = {"fits": b"SIMPLE  =                    T", "png": b"\x89PNG\r\n\x1a\n",
              "tif": b"II*\x00", "jpg": b"\xff\xd8\xff\xe0"}


def _image_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(5)
    img = rng.integers(0, 4000, (24, 32)).astype(np.uint16)
    buf = io.BytesIO()
    if fmt == "fits":
        from astropy.io import fits

        fits.PrimaryHDU(img.astype(np.float32)).writeto(buf)
    elif fmt == "tif":
        import tifffile

        tifffile.imwrite(buf, img)
    else:
        from PIL import Image

        Image.fromarray((img // 16).astype(np.uint8)).save(buf, format="PNG" if fmt == "png"
                                                           else "JPEG")
    return buf.getvalue()


def _read_or_reject(path):
    """read_image either refuses the file with a clear error or returns a 2-D image."""
    with guarded():
        try:
            img = ss.read_image(path)
        except (FileFormatError, InvalidArgumentError):
            return
    assert img.ndim == 2 and img.size > 0


def test_png_chunk_length_beyond_the_file_is_refused(tmp_path):
    """A flipped bit in a PNG chunk's length (found by the fuzzer: IDAT claiming 83 MB of
    an 860-byte file) is refused before Pillow allocates the claim; an intact file loads."""
    raw = bytearray(_image_bytes("png"))
    assert raw[37:41] == b"IDAT"
    raw[33] ^= 5
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(raw))
    with guarded(), pytest.raises(FileFormatError, match="IDAT.*beyond"):
        ss.read_image(path)
    path.write_bytes(_image_bytes("png"))
    assert ss.read_image(path).shape == (24, 32)


@FUZZ
@given(fmt=st.sampled_from(sorted(SIGNATURES)), body=st.binary(max_size=4000),
       signed=st.booleans())
def test_random_bytes_as_images(tmp_path_factory, fmt, body, signed):
    path = tmp_path_factory.mktemp("imgfuzz") / f"random.{fmt}"
    path.write_bytes((SIGNATURES[fmt] if signed else b"") + body)
    _read_or_reject(path)


@FUZZ
@given(fmt=st.sampled_from(sorted(SIGNATURES)), data=st.data())
def test_damaged_images(tmp_path_factory, fmt, data):
    path = tmp_path_factory.mktemp("imgdamage") / f"damaged.{fmt}"
    path.write_bytes(damage(_image_bytes(fmt), data))
    # pixel damage without structural damage may load: it must still be an image
    _read_or_reject(path)


def _fits_header(n1: int, n2: int, bitpix: int = -64) -> bytes:
    cards = [f"SIMPLE  = {'T':>20}", f"BITPIX  = {bitpix:>20}", f"NAXIS   = {2:>20}",
             f"NAXIS1  = {n1:>20}", f"NAXIS2  = {n2:>20}", "END"]
    return "".join(c.ljust(80) for c in cards).ljust(2880).encode()


def _png_header(w: int, h: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


def _tiff_header(w: int, h: int) -> bytes:
    entries = [(256, 4, w), (257, 4, h), (258, 3, 16), (259, 3, 1), (262, 3, 1),
               (273, 4, 8 + 2 + 12 * 8 + 4), (278, 4, h), (279, 4, (w * h * 2) & 0xFFFFFFFF)]
    b = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, typ, val in entries:
        b += struct.pack("<HHI", tag, typ, 1) + (struct.pack("<HH", val, 0) if typ == 3
                                                  else struct.pack("<I", val))
    return b + struct.pack("<I", 0) + bytes(64)


@pytest.mark.parametrize("name, content", [
    ("fits-2^28.fits", _fits_header(16384, 16384)),
    ("fits-2^27.fits", _fits_header(16384, 8192)),
    ("fits-1e10.fits", _fits_header(100000, 100000)),
    ("png-60000.png", _png_header(60000, 60000)),
    ("png-16000.png", _png_header(16000, 16000)),
    ("png-12000.png", _png_header(12000, 12000)),
    ("tiff-60000.tif", _tiff_header(60000, 60000)),
    ("tiff-16000.tif", _tiff_header(16000, 16000)),
    ("tiff-8000.tif", _tiff_header(8000, 8000)),
])
def test_huge_image_headers_are_refused_before_allocation(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with guarded(), pytest.raises((FileFormatError, InvalidArgumentError)):
        ss.read_image(path)


# The same headers in a child process whose address space is capped at 1 GiB: an
# allocation that tracemalloc cannot see (inside Pillow, tifffile or astropy's C
# code) fails there with MemoryError instead of a documented error.
_CAPPED_CHILD = r"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import skysolve as ss
from skysolve.errors import FileFormatError, InvalidArgumentError
for path in sys.argv[1:]:
    try:
        ss.read_image(path)
        print(path, "LOADED")
    except (FileFormatError, InvalidArgumentError):
        print(path, "refused")
"""


def test_huge_image_headers_need_no_memory(tmp_path):
    paths = []
    for name, content in [("a.fits", _fits_header(16384, 16384)),
                          ("b.fits", _fits_header(100000, 100000, 16)),
                          ("c.png", _png_header(16000, 16000)),
                          ("d.png", _png_header(12000, 12000)),
                          ("e.tif", _tiff_header(16000, 16000)),
                          ("f.tif", _tiff_header(12000, 12000))]:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(content)
    done = subprocess.run([sys.executable, "-c", _CAPPED_CHILD, *map(str, paths)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split().count("refused") == len(paths), done.stdout
