"""Tests of skysolve.io.images: reading FITS/PNG/JPEG/TIFF images and FITS metadata."""

from __future__ import annotations

import bz2
import gzip
import io
import re
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from astropy.io import fits
from PIL import Image

import skysolve
from skysolve.errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from skysolve.io import images as imageio
from skysolve.io.images import (
    LUMINANCE_WEIGHTS,
    image_epoch,
    parse_section,
    read_fits_header,
    read_image,
)
from skysolve.tests.realframes import DATA  # noqa: E402

REAL_FRAMES = sorted(DATA.glob("*.tiff"))


def _ramp(shape=(60, 80), dtype=np.uint16, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100.0, 20.0, size=shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)


def _rgb(shape=(40, 50), seed=1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ np.asarray(LUMINANCE_WEIGHTS)


# ---------------------------------------------------------------- FITS


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int16, np.uint8, np.float64, np.int32])
def test_fits_primary_round_trip(tmp_path, dtype):
    data = _ramp(dtype=dtype)
    path = tmp_path / "prim.fits"
    fits.PrimaryHDU(data).writeto(path)
    out = read_image(path)
    assert out.dtype == np.dtype(dtype)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, data)
    assert read_image(str(path)).shape == (60, 80)


def test_fits_extension_is_found_and_selected(tmp_path):
    sci = _ramp(dtype=np.float32, seed=2)
    err = _ramp(shape=(10, 12), dtype=np.float32, seed=3)
    path = tmp_path / "ext.fit"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.ImageHDU(sci, name="SCI"), fits.ImageHDU(err, name="ERR")]
    ).writeto(path)
    np.testing.assert_array_equal(read_image(path), sci)  # first image extension
    np.testing.assert_array_equal(read_image(path, hdu=1), sci)
    np.testing.assert_array_equal(read_image(path, hdu="ERR"), err)
    np.testing.assert_array_equal(read_image(path, hdu="err"), err)  # names are case-blind
    np.testing.assert_array_equal(read_image(path, hdu=("ERR", 1)), err)
    np.testing.assert_array_equal(read_image(path, hdu=-1), err)


def test_fits_uint16_via_bzero_and_scaled_data(tmp_path):
    data = _ramp(dtype=np.uint16, seed=4)
    path = tmp_path / "u16.fts"
    fits.PrimaryHDU(data).writeto(path)
    assert fits.getheader(path)["BZERO"] == 32768  # stored as int16 + offset
    out = read_image(path)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, data)
    # BSCALE/BZERO float scaling is applied
    hdu = fits.PrimaryHDU(np.arange(12, dtype=np.int16).reshape(3, 4))
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 10.0
    hdu.writeto(tmp_path / "scaled.fits")
    np.testing.assert_allclose(
        read_image(tmp_path / "scaled.fits"), 10.0 + 0.5 * np.arange(12).reshape(3, 4)
    )


@pytest.mark.parametrize(("suffix", "opener"), [(".fits.gz", gzip.open), (".fits.bz2", bz2.open)])
def test_compressed_fits(tmp_path, suffix, opener):
    data = _ramp(dtype=np.float32, seed=5)
    plain = tmp_path / "plain.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)]).writeto(plain)
    path = tmp_path / f"comp{suffix}"
    with opener(path, "wb") as f:
        f.write(plain.read_bytes())
    np.testing.assert_array_equal(read_image(path), data)
    np.testing.assert_array_equal(read_image(path, section="[5:10, -7:]"), data[5:10, -7:])


def test_tile_compressed_fits(tmp_path):
    data = _ramp(dtype=np.int16, seed=6)
    path = tmp_path / "tiles.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="RICE_1")]).writeto(
        path
    )
    np.testing.assert_array_equal(read_image(path), data)
    np.testing.assert_array_equal(read_image(path, section="[3:9, 10:20]"), data[3:9, 10:20])


def test_fits_section_reads_matching_pixels(tmp_path):
    data = _ramp(shape=(100, 120), dtype=np.uint16, seed=7)
    path = tmp_path / "sec.fits"
    fits.PrimaryHDU(data).writeto(path)
    out = read_image(path, section="[:50, 44:92]")
    np.testing.assert_array_equal(out, data[:50, 44:92])
    assert out.dtype == np.uint16
    out = read_image(path, section=(slice(-20, None), slice(None, 10)))
    np.testing.assert_array_equal(out, data[-20:, :10])


def test_fits_degenerate_axes_and_colour_cube(tmp_path):
    data = _ramp(dtype=np.float32, seed=8)
    fits.PrimaryHDU(data[None, None]).writeto(tmp_path / "deg.fits")  # NAXIS = 4
    np.testing.assert_array_equal(read_image(tmp_path / "deg.fits"), data)
    np.testing.assert_array_equal(
        read_image(tmp_path / "deg.fits", section="[1:3, 4:6]"), data[1:3, 4:6]
    )
    rgb = _rgb()
    fits.PrimaryHDU(np.moveaxis(rgb, -1, 0)).writeto(tmp_path / "rgb.fits")
    out = read_image(tmp_path / "rgb.fits")
    assert out.shape == rgb.shape[:2]
    np.testing.assert_allclose(out, _luma(rgb), rtol=1e-6)
    np.testing.assert_allclose(
        read_image(tmp_path / "rgb.fits", section="[2:5, 3:9]"), _luma(rgb)[2:5, 3:9], rtol=1e-6
    )


def test_arrays_with_leading_axes_of_one_read_as_the_file_does(tmp_path):
    """``fits.getdata`` of an image stored with NAXIS3 = 1 gives ``(1, H, W)``; the file
    read as (H, W), the array was refused ("must be a 2-D image")."""
    data = _ramp(dtype=np.float32, seed=9)
    fits.PrimaryHDU(data[None]).writeto(tmp_path / "one.fits")
    stored = fits.getdata(tmp_path / "one.fits")
    assert stored.shape == (1,) + data.shape
    np.testing.assert_array_equal(read_image(stored), data)
    np.testing.assert_array_equal(read_image(stored[None]), data)
    masked = np.ma.masked_array(stored, mask=np.zeros(stored.shape, bool))
    masked.mask[0, 2, 3] = True
    out = read_image(masked)
    assert out.shape == data.shape and np.isnan(out[2, 3])
    assert np.count_nonzero(np.isnan(out)) == 1
    rgb = _rgb()
    np.testing.assert_allclose(read_image(np.moveaxis(rgb, -1, 0)[None]), _luma(rgb), rtol=1e-6)
    # (a single row stays a 2-D image of one row, and a colour image's row its row)
    assert read_image(data[:1]).shape == (1, data.shape[1])
    np.testing.assert_allclose(read_image(rgb[:1]), _luma(rgb)[:1], rtol=1e-6)


def test_fits_hdu_without_image(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.ones(3))])
    image = _ramp(shape=(8, 9), dtype=np.float32)
    path = tmp_path / "mixed.fits"
    fits.HDUList([fits.PrimaryHDU(), table, fits.ImageHDU(image, name="IMG")]).writeto(path)
    np.testing.assert_array_equal(read_image(path), image)
    with pytest.raises(InvalidArgumentError, match=r"hdu=0.*no data \(NAXIS = 0\)"):
        read_image(path, hdu=0)
    with pytest.raises(InvalidArgumentError, match=r"hdu=1.*BinTableHDU, not image data.*"
                       r"1 - \(BinTableHDU, table of 3 rows\)"):
        read_image(path, hdu=1)
    with pytest.raises(InvalidArgumentError, match=r"hdu=5 is out of range.*3 HDUs"):
        read_image(path, hdu=5)
    with pytest.raises(InvalidArgumentError, match=r"hdu='NOPE'.*no such extension"):
        read_image(path, hdu="NOPE")
    with pytest.raises(InvalidTypeError, match="hdu"):
        read_image(path, hdu=1.5)
    # a file with tables only
    only_table = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(only_table)
    with pytest.raises(FileFormatError, match="no HDU with image data"):
        read_image(only_table)


def test_fits_one_dimensional_and_empty(tmp_path):
    fits.PrimaryHDU(np.arange(10, dtype=np.float32)).writeto(tmp_path / "line.fits")
    with pytest.raises(InvalidArgumentError, match=r"^\S*line.fits HDU 0 holds data of shape "
                       r"\(10,\), not a 2-D image"):  # (no hdu=None: none was given)
        read_image(tmp_path / "line.fits")
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = 16
    header["NAXIS"] = 2
    header["NAXIS1"] = 0
    header["NAXIS2"] = 5
    (tmp_path / "empty.fits").write_bytes(header.tostring().encode())
    with pytest.raises(InvalidArgumentError, match="empty"):
        read_image(tmp_path / "empty.fits")


def _huge_fits_header(bitpix=16, n=100_000) -> bytes:
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = bitpix
    header["NAXIS"] = 2
    header["NAXIS1"] = n
    header["NAXIS2"] = n
    return header.tostring().encode() + b"\0" * 2880


def test_fits_huge_header_is_refused_without_allocating(tmp_path):
    raw = _huge_fits_header()
    (tmp_path / "huge.fits").write_bytes(raw)
    with pytest.raises(FileFormatError, match="truncated"):
        read_image(tmp_path / "huge.fits")
    # compressed, the file length proves nothing: the pixel limit refuses it
    with gzip.open(tmp_path / "huge.fits.gz", "wb") as f:
        f.write(raw)
    with pytest.raises(InvalidArgumentError, match=r"10000000000 pixel values.*MAX_PIXELS"):
        read_image(tmp_path / "huge.fits.gz")


def test_a_png_over_pillows_bomb_limit_is_too_many_pixels(tmp_path, monkeypatch):
    """Pillow refuses a huge PNG or JPEG in ``Image.open``, before skysolve's own check:
    that is the same refusal from the header (a service answers it 413, not "not a
    readable image")."""
    from skysolve.io.images import TooManyPixelsError, pixel_limit

    Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow refuses over 200 pixels
    with pixel_limit(1000), pytest.raises(TooManyPixelsError, match="decompression-bomb"):
        read_image(tmp_path / "a.png")
    with pytest.raises(TooManyPixelsError, match="decompression-bomb"):
        read_image(tmp_path / "a.png")


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    data = _ramp(shape=(30, 40), dtype=np.uint16)
    fits.PrimaryHDU(data).writeto(tmp_path / "a.fits")
    tifffile.imwrite(tmp_path / "a.tif", data)
    Image.fromarray(data).save(tmp_path / "a.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 1000)
    for name in ("a.fits", "a.tif", "a.png"):
        with pytest.raises(InvalidArgumentError, match="limit of 1000"):
            read_image(tmp_path / name)
    # a FITS section within the limit is read without loading the whole image
    np.testing.assert_array_equal(
        read_image(tmp_path / "a.fits", section="[:10, :40]"), data[:10]
    )
    assert imageio.MAX_PIXELS == 1000
    monkeypatch.undo()
    assert read_image(tmp_path / "a.png").shape == (30, 40)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_fits(tmp_path, fraction):
    path = tmp_path / "full.fits"
    fits.PrimaryHDU(_ramp(shape=(100, 100), dtype=np.float32)).writeto(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.fits"
    cut.write_bytes(raw[: int(len(raw) * fraction)])
    with pytest.raises(FileFormatError, match="truncated"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy may warn about the header too
        read_image(cut)
    with gzip.open(tmp_path / "cut.fits.gz", "wb") as f:
        f.write(raw[: int(len(raw) * fraction)])
    with pytest.raises(FileFormatError, match="FITS"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_image(tmp_path / "cut.fits.gz")


def test_truncated_fits_header(tmp_path):
    path = tmp_path / "full.fits"
    fits.PrimaryHDU(_ramp(dtype=np.float32)).writeto(path)
    (tmp_path / "head.fits").write_bytes(path.read_bytes()[:1000])
    with pytest.raises(FileFormatError, match="FITS"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_image(tmp_path / "head.fits")


def test_read_fits_header(tmp_path):
    path = tmp_path / "h.fits"
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "TEST"
    ext = fits.ImageHDU(_ramp(shape=(5, 6), dtype=np.float32), name="SCI")
    ext.header["EXPTIME"] = 2.5
    fits.HDUList([primary, ext]).writeto(path)
    header = read_fits_header(path)  # the HDU read_image reads
    assert header["EXTNAME"] == "SCI"
    assert header["EXPTIME"] == 2.5
    assert header["NAXIS1"] == 6
    assert read_fits_header(path, hdu=0)["TELESCOP"] == "TEST"
    assert read_fits_header(path, hdu="SCI")["EXPTIME"] == 2.5
    assert isinstance(header, fits.Header)
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(FileFormatError, match="not a FITS file"):
        read_fits_header(tmp_path / "x.tif")
    with pytest.raises(FileNotFoundError):
        read_fits_header(tmp_path / "missing.fits")


# ---------------------------------------------------------------- epochs


def _write_with_header(path, cards, where="primary"):
    data = np.zeros((4, 4), np.float32)
    if where == "primary":
        hdul = fits.HDUList([fits.PrimaryHDU(data)])
        target = hdul[0].header
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data)])
        target = hdul[0].header if where == "ext-primary" else hdul[1].header
    for key, value in cards.items():
        target[key] = value
    hdul.writeto(path, overwrite=True)


def test_a_jpeg_claiming_more_pixels_than_its_bytes_hold_is_refused(tmp_path):
    # (the fuzzer: three bytes overwritten in the frame header of a 32 x 24 JPEG made it
    # 32800 x 1024, decoded as 34 MB of grey past the data's end)
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 250, (24, 32)).astype(np.uint8)).save(buf, format="JPEG")
    raw = bytearray(buf.getvalue())
    sof = raw.index(b"\xff\xc0")
    assert raw[sof + 5:sof + 9] == struct.pack(">HH", 24, 32)
    path = tmp_path / "f.jpg"
    path.write_bytes(bytes(raw))
    assert read_image(path).shape == (24, 32)
    raw[sof + 5:sof + 9] = struct.pack(">HH", 1024, 32800)
    path.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match=r"claims 32800 x 1024 pixels, more than its"):
        read_image(path)
    # a real night-sky frame as a JPEG (1024 x 768, clipped to 8 bits: 9.5 KB) loads
    frame = read_image(DATA / "2019-07-29T204726_Alt40_Azi-135_Try1.tiff")
    Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(path, format="JPEG")
    assert read_image(path).shape == (768, 1024)


def test_unread_time_cards_name_a_date_that_gives_no_time(tmp_path):
    path = tmp_path / "e.fits"
    _write_with_header(path, {"DATE-OBS": "yesterday", "EXPTIME": 5.0}, where="ext-primary")
    assert imageio.unread_time_cards(path) == {"DATE-OBS": "yesterday"}
    _write_with_header(path, {"DATE-OBS": "2019-02-31T00:00:00", "MJD-OBS": "soon"})
    assert imageio.unread_time_cards(path) == {"DATE-OBS": "2019-02-31T00:00:00",
                                                "MJD-OBS": "soon"}
    # a time read from any card, or no card at all: nothing to say
    _write_with_header(path, {"DATE-OBS": "yesterday", "MJD-OBS": 58000.0})
    assert imageio.unread_time_cards(path) == {}
    _write_with_header(path, {"EXPTIME": 5.0})
    assert imageio.unread_time_cards(path) == {}
    # an empty card says no time, as a missing one (it was named: DATE-OBS = '')
    _write_with_header(path, {"DATE-OBS": "", "MJD-OBS": " "})
    assert imageio.unread_time_cards(path) == {}
    _write_with_header(path, {"DATE-OBS": None})  # (a card with no value)
    assert imageio.unread_time_cards(path) == {}
    _write_with_header(path, {"DATE-OBS": "", "MJD-OBS": "soon"})
    assert imageio.unread_time_cards(path) == {"MJD-OBS": "soon"}
    assert imageio.unread_time_cards(DATA / "2019-07-29T204726_Alt40_Azi-135_Try1.tiff") == {}


def test_image_epoch(tmp_path):
    path = tmp_path / "e.fits"
    # TESS-like: DATE-OBS and DATE-END in the primary header, image in extension 1
    _write_with_header(
        path,
        {"DATE-OBS": "2018-07-25T19:01:42.708", "DATE-END": "2018-07-25T19:31:42.708"},
        where="ext-primary",
    )
    # 2018-07-25T19:16:42.708 = MJD 58324.803272; J-epoch 2018.5640...
    expected = 2000.0 + (58324.8032721759 - 51544.5) / 365.25
    assert image_epoch(path) == pytest.approx(expected, abs=1e-8)
    _write_with_header(path, {"DATE-OBS": "2000-01-01T12:00:00"})
    assert image_epoch(path) == pytest.approx(2000.0, abs=1e-12)
    _write_with_header(path, {"MJD-OBS": 51544.5 + 365.25 * 16})
    assert image_epoch(path) == pytest.approx(2016.0, abs=1e-12)
    _write_with_header(path, {"MJD-OBS": 58000.0, "MJD-END": 58001.0})
    assert image_epoch(path) == pytest.approx(2000.0 + (58000.5 - 51544.5) / 365.25)
    _write_with_header(path, {"DATE-AVG": "2020-01-01", "DATE-OBS": "1999-01-01"}, where="ext")
    assert image_epoch(path) == pytest.approx(2000.0 + (58849.0 - 51544.5) / 365.25)
    _write_with_header(path, {"DATE-OBS": "25/07/98"})  # pre-2000 FITS date form
    assert image_epoch(path) == pytest.approx(2000.0 + (51019.0 - 51544.5) / 365.25)
    # a date card without a time of day and the time in its own card (it was midnight)
    noon = 2000.0 + (51019.5 - 51544.5) / 365.25  # 1998-07-25T12:00:00 = MJD 51019.5
    for cards in ({"DATE-OBS": "25/07/98", "TIME-OBS": "12:00:00"},
                  {"DATE-OBS": "1998-07-25", "UT": "12:00"},
                  {"DATE-OBS": "1998-07-25", "TIME-OBS": "11:00:00",
                   "DATE-END": "1998-07-25", "TIME-END": "13:00:00.0"}):
        _write_with_header(path, cards)
        assert image_epoch(path) == pytest.approx(noon, abs=1e-9)
    _write_with_header(path, {"DATE-OBS": "1998-07-25T06:00:00", "TIME-OBS": "12:00:00"})
    assert image_epoch(path) == pytest.approx(noon - 0.25 / 365.25, abs=1e-9)  # its own
    # a date without a time of day gives way to an MJD with one (it was taken, as
    # midnight, before MJD-OBS), and to a timed start beside an untimed end
    for cards in ({"DATE-OBS": "1998-07-25", "MJD-OBS": 51019.5},
                  {"DATE-OBS": "1998-07-25", "DATE-END": "1998-07-25", "MJD-OBS": 51019.5},
                  {"DATE-OBS": "1998-07-25", "MJD-OBS": 51019.25, "MJD-END": 51019.75},
                  {"DATE-OBS": "1998-07-25T12:00:00", "DATE-END": "1998-07-26"}):
        _write_with_header(path, cards)
        assert image_epoch(path) == pytest.approx(noon, abs=1e-9), cards
    _write_with_header(path, {"DATE-OBS": "1998-07-25", "DATE-END": "1998-07-26"})
    assert image_epoch(path) == pytest.approx(noon, abs=1e-9)  # between two midnights
    _write_with_header(path, {"OBJECT": "nothing useful", "DATE-OBS": "yesterday"})
    assert image_epoch(path) is None
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert image_epoch(tmp_path / "x.tif") is None


# ---------------------------------------------------------------- PNG, JPEG, TIFF


def test_png_8_and_16_bit(tmp_path):
    u8 = _ramp(dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, u8)
    u16 = _ramp(dtype=np.uint16)
    Image.fromarray(u16).save(tmp_path / "b.png")
    with Image.open(tmp_path / "b.png") as im:
        assert im.mode == "I;16"
    out = read_image(tmp_path / "b.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, u16)


def test_a_16_bit_colour_png_keeps_its_16_bits(tmp_path):
    """Colour cameras' capture programs write 16-bit RGB PNGs; Pillow opens them as 8-bit
    RGB, the low byte of every sample dropped. Every row filter of the format is undone
    exactly, for RGB, RGBA and grey + alpha, odd sizes included."""
    from skysolve.tests.pngfiles import encode_png16

    rng = np.random.default_rng(3)
    for height, width, channels in ((1, 1, 3), (6, 1, 4), (1, 7, 2), (23, 31, 3), (9, 40, 4)):
        samples = rng.integers(0, 65536, (height, width, channels), dtype=np.uint16)
        for filters in ([0] * height, [1] * height, [2] * height, [3] * height,
                        [4] * height, rng.integers(0, 5, height)):
            (tmp_path / "c.png").write_bytes(encode_png16(samples, filters))
            out = read_image(tmp_path / "c.png")
            if channels == 2:  # grey + alpha: the grey samples, as stored
                assert out.dtype == np.uint16
                np.testing.assert_array_equal(out, samples[..., 0])
            else:
                np.testing.assert_allclose(out, _luma(samples), rtol=1e-6)
    grey = np.repeat(samples[..., :1], 3, axis=-1)  # (grey stored as colour: its counts)
    (tmp_path / "g.png").write_bytes(encode_png16(grey, [4] * len(grey)))
    out = read_image(tmp_path / "g.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, samples[..., 0])
    damaged = bytearray(encode_png16(samples, [4] * len(samples)))
    damaged[60] ^= 0xFF  # (inside the pixel data: its chunk's CRC no longer matches)
    (tmp_path / "d.png").write_bytes(bytes(damaged))
    with pytest.raises(FileFormatError, match="corrupted"):
        read_image(tmp_path / "d.png")


def test_png_colour_palette_and_alpha(tmp_path):
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = read_image(tmp_path / "rgb.png")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _luma(rgb), rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(read_image(tmp_path / "rgba.png"), _luma(rgb), rtol=1e-6)
    grey_alpha = np.stack([rgb[..., 0], rgb[..., 1]], axis=-1)
    Image.fromarray(grey_alpha, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), rgb[..., 0])
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / "p.png")
    expected = _luma(np.asarray(palette.convert("RGB")))
    np.testing.assert_allclose(read_image(tmp_path / "p.png"), expected, rtol=1e-6)
    # a grey image stored as colour keeps its counts (the weights' float sum is not 1)
    Image.fromarray(rgb[..., 0]).convert("RGB").save(tmp_path / "grey_rgb.png")
    out = read_image(tmp_path / "grey_rgb.png")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb[..., 0])


def test_jpeg(tmp_path):
    grey = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=95)
    out = read_image(tmp_path / "g.jpg")
    assert out.dtype == np.uint8
    assert out.shape == (48, 64)
    assert np.max(np.abs(out.astype(int) - grey)) <= 3  # lossy
    rgb = np.zeros((32, 40, 3), np.uint8)
    rgb[..., 1] = 200  # pure green: luminance 0.7152 * 200
    Image.fromarray(rgb).save(tmp_path / "c.jpeg", quality=95)
    out = read_image(tmp_path / "c.jpeg")
    assert out.dtype == np.float32
    assert np.median(out) == pytest.approx(0.7152 * 200, abs=3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int16])
def test_tiff_round_trip(tmp_path, dtype):
    data = _ramp(dtype=dtype, seed=9)
    tifffile.imwrite(tmp_path / "a.tif", data)
    out = read_image(tmp_path / "a.tif")
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, data)


def test_tiff_big_endian_colour_planar_compressed(tmp_path):
    data = _ramp(dtype=np.uint16, seed=10)
    tifffile.imwrite(tmp_path / "be.tif", data, byteorder=">")
    out = read_image(tmp_path / "be.tif")
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, data)
    rgb = _rgb()
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    np.testing.assert_allclose(read_image(tmp_path / "rgb.tif"), _luma(rgb), rtol=1e-6)
    tifffile.imwrite(
        tmp_path / "planar.tif", np.moveaxis(rgb, -1, 0), planarconfig="separate",
        photometric="rgb",
    )
    np.testing.assert_allclose(read_image(tmp_path / "planar.tif"), _luma(rgb), rtol=1e-6)
    rgb16 = (rgb.astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16)
    np.testing.assert_allclose(read_image(tmp_path / "rgb16.tif"), _luma(rgb16), rtol=1e-6)
    tifffile.imwrite(tmp_path / "zlib.tif", data, compression="zlib")
    np.testing.assert_array_equal(read_image(tmp_path / "zlib.tif"), data)
    # LZW (tifffile needs imagecodecs for it; Pillow decodes it)
    Image.fromarray(data).save(tmp_path / "lzw.tif", compression="tiff_lzw")
    out = read_image(tmp_path / "lzw.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, data)


@pytest.mark.parametrize("frame", REAL_FRAMES, ids=lambda p: p.name[-25:])
def test_real_frames(frame):
    img = read_image(frame)
    assert img.shape == (768, 1024)
    assert img.dtype == np.uint16
    # 12-bit camera data stored in the top bits of 16: a byte-order or bit-depth
    # slip would break this
    assert np.all(img % 16 == 0)
    # a night-sky frame: a dark background and a few bright stars
    assert 1000 < np.median(img) < 5000
    assert img.max() > 5 * np.median(img)
    assert np.count_nonzero(img > 0.5 * int(img.max())) < 100
    # the same pixels as an independent decoder
    with Image.open(frame) as im:
        np.testing.assert_array_equal(img, np.asarray(im))
    sub = read_image(frame, section="[100:200, -300:]", dtype=np.float32)
    assert sub.dtype == np.float32
    np.testing.assert_array_equal(sub, img[100:200, -300:].astype(np.float32))


def test_package_export():
    assert skysolve.read_image is read_image
    assert read_image(REAL_FRAMES[0]).shape == (768, 1024)


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "name", ["r.fits", "r.fit", "r.fts", "r.fits.gz", "r.png", "r.jpg", "r.jpeg", "r.tif",
             "r.tiff", "r.webp", "r.dat", "r"]
)
def test_random_bytes_raise_file_format_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(11).integers(0, 256, 5000, np.uint8).tobytes())
    with pytest.raises(FileFormatError, match="is not") as info:
        read_image(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert isinstance(info.value, ValueError)


def test_messages_say_what_the_file_is_not(tmp_path):
    path = tmp_path / "x.fits"
    path.write_bytes(b"hello world, this is text" * 10)
    expected = r"is not a FITS file \(nor a PNG, JPEG, TIFF, BMP, GIF, WebP or PNM image\)"
    with pytest.raises(FileFormatError, match=expected):
        read_image(path)
    gz = tmp_path / "x.fits.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"plain text inside gzip")
    with pytest.raises(FileFormatError, match="does not hold FITS"):
        read_image(gz)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(FileFormatError, match="is empty"):
        read_image(tmp_path / "empty.png")


def test_content_wins_over_extension(tmp_path):
    data = _ramp(dtype=np.uint16)
    Image.fromarray(data).save(tmp_path / "really_png.png")
    (tmp_path / "named.fits").write_bytes((tmp_path / "really_png.png").read_bytes())
    np.testing.assert_array_equal(read_image(tmp_path / "named.fits"), data)
    fits.PrimaryHDU(data).writeto(tmp_path / "really.fits")
    (tmp_path / "named.tif").write_bytes((tmp_path / "really.fits").read_bytes())
    np.testing.assert_array_equal(read_image(tmp_path / "named.tif"), data)


def _save(fmt: str, path: Path) -> None:
    data = _ramp(shape=(120, 150), dtype=np.uint16 if fmt in ("tif", "png") else np.uint8,
                 seed=12)
    if fmt == "tif":
        tifffile.imwrite(path, data)
    elif fmt == "png":
        Image.fromarray(data).save(path)
    else:  # JPEG, lossy WebP
        Image.fromarray(data).save(path, quality=90)


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif", "webp"])
@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.9])
def test_truncated_raster_files(tmp_path, fmt, fraction):
    full = tmp_path / f"full.{fmt}"
    _save(fmt, full)
    raw = full.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(raw[: max(16, int(len(raw) * fraction))])
    with pytest.raises(FileFormatError, match="corrupted or truncated") as info:
        read_image(cut)
    assert str(cut) in str(info.value)


def test_huge_png_and_tiff_headers_are_refused(tmp_path):
    # A valid PNG signature and IHDR claiming 100000 x 100000 pixels.
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
           + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    (tmp_path / "huge.png").write_bytes(png)
    with pytest.raises(InvalidArgumentError, match="too large|limit"):
        read_image(tmp_path / "huge.png")
    # A small TIFF whose width and length tags are rewritten to 100000.
    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint8))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tags = tif.pages[0].tags
        tags["ImageWidth"].overwrite(100_000)
        tags["ImageLength"].overwrite(100_000)
    with pytest.raises(InvalidArgumentError, match="MAX_PIXELS"):
        read_image(path)


def test_missing_and_directory(tmp_path):
    missing = tmp_path / "nope.fits"
    with pytest.raises(FileNotFoundError, match="nope.fits") as info:
        read_image(missing)
    assert info.value.filename == str(missing)
    with pytest.raises(FileNotFoundError):
        read_image(str(missing))
    with pytest.raises(IsADirectoryError):
        read_image(tmp_path)


def test_hdu_with_non_fits(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidArgumentError, match="hdu applies to FITS"):
        read_image(tmp_path / "a.tif", hdu=1)
    with pytest.raises(InvalidArgumentError, match="hdu applies to FITS"):
        read_image(np.zeros((4, 4)), hdu=0)


# ---------------------------------------------------------------- arrays


def test_array_sources():
    img = np.arange(20.0).reshape(4, 5)
    assert read_image(img) is img
    np.testing.assert_array_equal(read_image(img, section="[1:3, 2:]"), img[1:3, 2:])
    assert read_image(img, dtype=np.float32).dtype == np.float32
    rgb = _rgb()
    np.testing.assert_allclose(read_image(rgb), _luma(rgb), rtol=1e-6)
    rgba = np.concatenate([rgb, np.zeros((*rgb.shape[:2], 1), np.uint8)], axis=-1)
    np.testing.assert_allclose(read_image(rgba), _luma(rgb), rtol=1e-6)
    np.testing.assert_array_equal(read_image(img[..., None]), img)
    big_endian = img.astype(">f8")
    out = read_image(big_endian)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, img)
    np.testing.assert_array_equal(read_image([[1, 2], [3, 4]]), [[1, 2], [3, 4]])
    assert read_image(np.ones((3, 3), bool)).dtype == np.uint8
    masked = np.ma.masked_array(img, mask=img > 10)
    out = read_image(masked)
    assert np.isnan(out[img > 10]).all() and np.array_equal(out[img <= 10], img[img <= 10])


@pytest.mark.parametrize(
    ("bad", "exc", "match"),
    [
        (np.arange(10.0), InvalidArgumentError, r"2-D image.*shape \(10,\)"),
        (np.zeros((0, 5)), InvalidArgumentError, "empty"),
        (np.zeros((2, 3, 4, 5)), InvalidArgumentError, "2-D image"),
        (np.zeros((5, 6, 7)), InvalidArgumentError, "2-D image"),
        (np.zeros((4, 4), complex), InvalidTypeError, "real numeric"),
        (np.array([["a", "b"]]), InvalidTypeError, "real numeric"),
        (None, InvalidTypeError, "source"),
        (b"\x89PNG", InvalidTypeError, "bytes"),
        (3.0, InvalidArgumentError, "2-D image"),
    ],
)
def test_bad_arrays(bad, exc, match):
    with pytest.raises(exc, match=match):
        read_image(bad)


def test_bad_dtype():
    with pytest.raises(InvalidTypeError, match="dtype"):
        read_image(np.zeros((3, 3)), dtype="not-a-type")
    with pytest.raises(InvalidArgumentError, match="dtype"):
        read_image(np.zeros((3, 3)), dtype=complex)


# ---------------------------------------------------------------- sections


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[:2048,44:2092]", (slice(0, 2048), slice(44, 2092))),
        ("[ : 2048 , 44 : 2092 ]", (slice(0, 2048), slice(44, 2092))),
        (":2048, 44:2092", (slice(0, 2048), slice(44, 2092))),
        ("[100:200]", (slice(100, 200), slice(0, 3000))),
        ("[-10:, :-5]", (slice(2038, 2048), slice(0, 2995))),
        ("[5, :]", (slice(5, 6), slice(0, 3000))),
        ("[-1, -1]", (slice(2047, 2048), slice(2999, 3000))),
        ("[:, :]", (slice(0, 2048), slice(0, 3000))),
        ("[+3:4, 0:3000]", (slice(3, 4), slice(0, 3000))),
    ],
)
def test_parse_section_text(text, expected):
    assert parse_section(text, (2048, 3000)) == expected


def test_parse_section_objects():
    shape = (100, 50)
    assert parse_section((slice(None, 10), slice(5, -5)), shape) == (slice(0, 10), slice(5, 45))
    assert parse_section(slice(20, 30), shape) == (slice(20, 30), slice(0, 50))
    assert parse_section((np.int64(3), slice(None)), shape) == (slice(3, 4), slice(0, 50))
    assert parse_section([slice(1, 2), 7], shape) == (slice(1, 2), slice(7, 8))
    assert parse_section((slice(0, 10, 1),), shape) == (slice(0, 10), slice(0, 50))


@pytest.mark.parametrize(
    ("section", "exc", "match"),
    [
        ("[::2]", InvalidArgumentError, "steps"),
        ("[0:10:1]", InvalidArgumentError, "steps"),
        ("[0:38 0:40]", InvalidArgumentError, "apart by a space.*separated by commas"),
        ("[1:2, 3:4, 5:6]", InvalidArgumentError, "1 or 2 entries"),
        ("[]", InvalidArgumentError, "empty"),
        ("", InvalidArgumentError, "empty"),
        ("[a:b]", InvalidArgumentError, "cannot parse"),
        ("[1.5:2]", InvalidArgumentError, "cannot parse"),
        ("[__import__('os').system('true')]", InvalidArgumentError, "cannot parse"),
        ("[0:10", InvalidArgumentError, "cannot parse"),
        ("[10:5]", InvalidArgumentError, "selects no rows"),
        ("[:, 40:40]", InvalidArgumentError, "selects no columns"),
        ("[0:101]", InvalidArgumentError, "outside the 100 rows"),
        ("[-101:]", InvalidArgumentError, "outside the 100 rows"),
        ("[100, :]", InvalidArgumentError, "index 100 is outside"),
        ("[:, 50]", InvalidArgumentError, "outside the 50 columns"),
        ((slice(0, 10, 2),), InvalidArgumentError, "steps"),
        ((slice(0.5, 10),), InvalidTypeError, "integers"),
        ((True, slice(None)), InvalidTypeError, "slices or integers"),
        (("1:2", "3:4"), InvalidTypeError, "slices or integers"),
        (5.0, InvalidTypeError, "section"),
        ({"rows": 1}, InvalidTypeError, "section"),
    ],
)
def test_bad_sections(section, exc, match):
    with pytest.raises(exc, match=match):
        parse_section(section, (100, 50))
    with pytest.raises(exc, match=match):
        read_image(np.zeros((100, 50)), section=section)


def test_bad_section_on_files(tmp_path):
    data = _ramp(shape=(30, 40), dtype=np.uint16)
    fits.PrimaryHDU(data).writeto(tmp_path / "a.fits")
    tifffile.imwrite(tmp_path / "a.tif", data)
    for name in ("a.fits", "a.tif"):
        with pytest.raises(InvalidArgumentError, match="section"):
            read_image(tmp_path / name, section="[0:31]")
        np.testing.assert_array_equal(read_image(tmp_path / name, section="[29]"), data[29:30])


def test_tiff_first_page_and_min_is_white(tmp_path):
    data = _ramp(shape=(30, 40), dtype=np.uint16, seed=13)
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([data, data // 2]), photometric="minisblack")
    with tifffile.TiffFile(tmp_path / "stack.tif") as tif:
        assert len(tif.pages) == 2
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif"), data)
    # stored inverted (0 = white): read back as light values, so stars stay bright
    grey = np.array([[0, 10], [200, 255]], np.uint8)
    tifffile.imwrite(tmp_path / "mw.tif", grey, photometric="miniswhite")
    np.testing.assert_array_equal(read_image(tmp_path / "mw.tif"), 255 - grey)


@pytest.mark.parametrize("layout", ["subifd", "second page"])
def test_a_tiff_whose_first_image_is_a_preview_reads_the_full_one(tmp_path, layout):
    """A DNG or camera TIFF keeps a small RGB preview first, marked reduced-resolution,
    and the frame in a SubIFD (or a later page): the preview was read and solved, every
    pixel coordinate and the WCS of a 4 times smaller image. The full frame is read; one
    that cannot be decoded is refused, not replaced by the preview."""
    frame = _ramp(shape=(96, 128), dtype=np.uint16, seed=21)
    preview = np.zeros((24, 32, 3), np.uint8)
    path = tmp_path / "camera.tif"
    sub = {"subifds": 1} if layout == "subifd" else {}
    with tifffile.TiffWriter(path) as tif:
        tif.write(preview, subfiletype=1, **sub)
        tif.write(frame, photometric="minisblack", compression="zlib")
    np.testing.assert_array_equal(read_image(path), frame)
    # a full frame that cannot be decoded (its compression tag says JPEG 2000 of zlib
    # data): refused, naming the preview
    with tifffile.TiffFile(path) as tif:
        full = tif.pages[0].pages[0] if sub else tif.pages[1]
        tag = full.tags["Compression"]
        at, order = tag.valueoffset, "little" if tif.byteorder == "<" else "big"
    raw = bytearray(path.read_bytes())
    raw[at:at + 2] = (34712).to_bytes(2, order)
    path.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match="reduced-resolution preview"):
        read_image(path)


def test_tess_like_file_as_the_seed_reads_it(tmp_path):
    # TESS FFI layout: header-only primary with the dates, calibrated image in HDU 1
    # with 44 overscan columns on the left.
    image = _ramp(shape=(70, 130), dtype=np.float32, seed=14)
    primary = fits.PrimaryHDU()
    primary.header["DATE-OBS"] = "2018-08-22T10:00:00.000"
    primary.header["DATE-END"] = "2018-08-22T10:30:00.000"
    path = tmp_path / "sector01_cam1_ccd1.fits"
    fits.HDUList([primary, fits.ImageHDU(image)]).writeto(path)
    expected = fits.getdata(path, ext=1, memmap=False).astype(np.float32)[:64, 44:108]
    got = read_image(path, hdu=1, section="[:64,44:108]", dtype=np.float32)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(read_image(path, section="[:64,44:108]"), expected)
    assert image_epoch(path) == pytest.approx(
        2000.0 + (58352.0 + 10.25 / 24 - 51544.5) / 365.25, abs=1e-9
    )


@pytest.mark.parametrize("compression", ["lzw", "zlib", "packbits"])
def test_a_compressed_16_bit_colour_tiff_keeps_its_16_bits(tmp_path, compression):
    """Capture programs write colour frames as LZW- or Deflate-compressed 16-bit TIFFs;
    tifffile decodes those codecs with imagecodecs, and without it they were read by
    Pillow at 8 bits (the low byte of every sample dropped)."""
    rng = np.random.default_rng(5)
    samples = rng.integers(0, 65536, (23, 31, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", samples, photometric="rgb", compression=compression)
    np.testing.assert_allclose(read_image(tmp_path / "c.tif"), _luma(samples), rtol=1e-6)


# ---------------------------------------------------------------- BMP, GIF, PNM


def _real_cut():
    """A 200 x 300 cut of a real 16-bit frame and its 8-bit stretch (sky ~30 counts)."""
    from skysolve.tests.realframes import ALT40

    u16 = read_image(DATA / ALT40)[300:500, 400:700]
    u8 = np.clip((u16.astype(np.float64) - 2800.0) / 16.0, 0, 255).astype(np.uint8)
    return u16, u8


def test_bmp_and_gif_written_by_pillow_read_as_their_counts(tmp_path):
    """solve-field takes BMP and GIF (8 bits, grey, palette or colour); they were refused
    as unrecognised."""
    _, u8 = _real_cut()
    for name in ("grey.bmp", "grey.gif"):
        Image.fromarray(u8).save(tmp_path / name)
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8, name
        np.testing.assert_array_equal(out, u8)
    rgb = np.stack([u8, u8 // 2, u8 // 3], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "colour.bmp")
    np.testing.assert_allclose(read_image(tmp_path / "colour.bmp"), _luma(rgb), rtol=1e-6)
    # a colour GIF is a palette of at most 256 colours: its pixels are the palette's
    Image.fromarray(rgb).save(tmp_path / "colour.gif")
    with Image.open(tmp_path / "colour.gif") as im:
        expected = _luma(np.asarray(im.convert("RGB")))
    np.testing.assert_allclose(read_image(tmp_path / "colour.gif"), expected, rtol=1e-6)
    # named by content, not by name
    Image.fromarray(u8).save(tmp_path / "misnamed.png", format="BMP")
    np.testing.assert_array_equal(read_image(tmp_path / "misnamed.png"), u8)


def test_pnm_keeps_its_stored_values_at_8_12_and_16_bits(tmp_path):
    """Binary PGM/PPM as stored: Pillow's 8- and 16-bit PGM of a real frame come back
    exactly; a 12-bit PGM (largest value 4095), which Pillow scales to 65535, and a
    16-bit PPM, which Pillow reads as 8 bits, keep their counts (written here by hand:
    Pillow writes neither)."""
    u16, u8 = _real_cut()
    Image.fromarray(u16).save(tmp_path / "frame16.pgm")
    Image.fromarray(u8).save(tmp_path / "frame8.pgm")
    with open(tmp_path / "frame16.pgm", "rb") as f:
        assert f.read(2) == b"P5"
    for name, want in (("frame16.pgm", u16), ("frame8.pgm", u8)):
        out = read_image(tmp_path / name)
        assert out.dtype == want.dtype, name
        np.testing.assert_array_equal(out, want)
    h, w = u16.shape
    twelve = (u16 >> 4).astype(np.uint16)
    (tmp_path / "frame12.pgm").write_bytes(
        b"P5\n# 12-bit camera\n%d %d # size\n4095\n" % (w, h) + twelve.astype(">u2").tobytes())
    out = read_image(tmp_path / "frame12.pgm")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, twelve)
    rgb = np.stack([u16, u16 // 2, u16 // 3], axis=-1)
    (tmp_path / "frame.ppm").write_bytes(b"P6 %d %d 65535\n" % (w, h)
                                         + rgb.astype(">u2").tobytes())
    np.testing.assert_allclose(read_image(tmp_path / "frame.ppm"), _luma(rgb), rtol=1e-6)
    grey = np.repeat(u16[..., None], 3, axis=-1)  # (grey stored as colour: its counts)
    (tmp_path / "grey.ppm").write_bytes(b"P6\n%d %d\n65535\n" % (w, h)
                                        + grey.astype(">u2").tobytes())
    np.testing.assert_array_equal(read_image(tmp_path / "grey.ppm"), u16)
    # ASCII PGM through Pillow
    text = " ".join(map(str, u8[:4, :5].ravel()))
    (tmp_path / "ascii.pgm").write_bytes(b"P2\n5 4\n255\n" + text.encode())
    np.testing.assert_array_equal(read_image(tmp_path / "ascii.pgm"), u8[:4, :5])
    # damaged: truncated pixels, a header without its numbers
    data = (tmp_path / "frame16.pgm").read_bytes()
    (tmp_path / "cut.pgm").write_bytes(data[:-7])
    with pytest.raises(FileFormatError, match="truncated PNM"):
        read_image(tmp_path / "cut.pgm")
    (tmp_path / "bad.pgm").write_bytes(b"P5\n640 x 480\n255\n" + bytes(100))
    with pytest.raises(FileFormatError, match="width, height and largest value"):
        read_image(tmp_path / "bad.pgm")


def test_pnm_headers_netpbm_accepts_and_ascii_values_as_stored(tmp_path):
    """Netpbm ends a header comment at a CR as at an LF and lets one follow a number
    directly (``640#w``); both were refused as corrupted. An absurdly long number is a
    corrupted file (it was Python's ValueError about integer digits). The ASCII kinds
    (P2/P3) keep their stored values as the binary ones do: Pillow scaled a largest value
    of 4095 to 65535 and of 100 to 255, and cut a 16-bit P3 to 8 bits (60000 -> 233)."""
    pixels = bytes([0, 1, 2, 100, 50, 20])
    want = np.array([[0, 1, 2], [100, 50, 20]], dtype=np.uint8)
    for name, data in (
            ("cr.pgm", b"P5\r# written on a classic Mac\r3 2\r255\r" + pixels),
            ("hash.pgm", b"P5\n3#width\n2 255\n" + pixels),
            ("maxhash.pgm", b"P5 3 2 255# the raster starts on the next line\n" + pixels)):
        (tmp_path / name).write_bytes(data)
        out = read_image(tmp_path / name)
        assert out.dtype == np.uint8, name
        np.testing.assert_array_equal(out, want, err_msg=name)
    (tmp_path / "long.pgm").write_bytes(b"P5\n" + b"9" * 5000 + b" 2\n255\n" + pixels)
    with pytest.raises(FileFormatError, match="corrupted"):
        read_image(tmp_path / "long.pgm")
    # ASCII: P2 with a 12-bit and a 7-bit largest value, P3 with 16 bits
    (tmp_path / "a12.pgm").write_bytes(b"P2\n# 12-bit\n3 2\n4095\n0 1 2\n4095 100 2000\n")
    out = read_image(tmp_path / "a12.pgm")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[0, 1, 2], [4095, 100, 2000]])
    (tmp_path / "a100.pgm").write_bytes(b"P2 3 2 100 0 1 2 100 50 20")
    np.testing.assert_array_equal(read_image(tmp_path / "a100.pgm"), want)
    rgb = np.array([[[1, 2, 3], [60000, 60000, 60000]]], dtype=np.uint16)
    (tmp_path / "a16.ppm").write_bytes(b"P3\n2 1\n65535\n1 2 3\n60000 60000 60000\n")
    np.testing.assert_allclose(read_image(tmp_path / "a16.ppm"), _luma(rgb), rtol=1e-6)
    (tmp_path / "short.pgm").write_bytes(b"P2\n3 2\n255\n0 1 2 3\n")
    with pytest.raises(FileFormatError, match="truncated PNM"):
        read_image(tmp_path / "short.pgm")
    (tmp_path / "above.pgm").write_bytes(b"P2\n3 2\n255\n0 1 2 300 4 5\n")  # (not 44)
    with pytest.raises(FileFormatError, match="above its largest value 255"):
        read_image(tmp_path / "above.pgm")
    (tmp_path / "word.pgm").write_bytes(b"P2\n3 2\n255\n0 1 2 x 4 5\n")
    with pytest.raises(FileFormatError, match="corrupted"):
        read_image(tmp_path / "word.pgm")
    # a claim of 10^10 pixels is refused from the header, before any allocation
    (tmp_path / "huge.pgm").write_bytes(b"P2\n100000 100000\n255\n0 1 2\n")
    with pytest.raises(InvalidArgumentError, match="limit"):
        read_image(tmp_path / "huge.pgm")


def test_an_animated_gif_reads_its_first_frame(tmp_path):
    """What solve-field's conversion of a GIF gives too: the first image."""
    frames = [Image.fromarray(np.full((4, 5), v, np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    np.testing.assert_array_equal(read_image(tmp_path / "anim.gif"), np.full((4, 5), 10))


def _stretched_frame() -> np.ndarray:
    """A whole real frame stretched to 8 bits over its sky (as all-sky cameras save)."""
    from skysolve.tests.realframes import ALT40

    u16 = read_image(DATA / ALT40)
    return np.clip((u16.astype(np.float64) - 2800.0) / 16.0, 0, 255).astype(np.uint8)


def test_a_lossless_webp_reads_back_its_pixels(tmp_path):
    """All-sky cameras and phones save WebP; it was refused ("unrecognised leading bytes
    b'RIFF...'"). Lossless, a real frame's 8-bit stretch comes back pixel for pixel, as
    ``uint8`` (Pillow decodes grey WebP as three equal channels: grey, not luminance
    as float); colour becomes luminance as the other colour formats do; the format
    is known by content, not by name."""
    u8 = _stretched_frame()
    Image.fromarray(u8).save(tmp_path / "frame.webp", lossless=True)
    assert (tmp_path / "frame.webp").read_bytes()[8:12] == b"WEBP"
    out = read_image(tmp_path / "frame.webp")
    assert out.dtype == np.uint8 and out.shape == (768, 1024)
    np.testing.assert_array_equal(out, u8)
    rgb = np.stack([u8, u8 // 2, u8 // 3], axis=-1)[:200, :300]
    Image.fromarray(rgb).save(tmp_path / "colour.webp", lossless=True)
    np.testing.assert_allclose(read_image(tmp_path / "colour.webp"), _luma(rgb), rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((200, 300, 1), 255, np.uint8)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "alpha.webp", lossless=True)
    np.testing.assert_allclose(read_image(tmp_path / "alpha.webp"), _luma(rgb), rtol=1e-6)
    Image.fromarray(u8).save(tmp_path / "misnamed.png", format="WEBP", lossless=True)
    np.testing.assert_array_equal(read_image(tmp_path / "misnamed.png"), u8)
    np.testing.assert_array_equal(read_image(tmp_path / "frame.webp", section="[10:20, 5:9]"),
                                  u8[10:20, 5:9])


def test_a_lossy_webp_reads_close_to_its_pixels(tmp_path):
    """Lossy (quality 90, colour, as cameras save): the luminance of what was written,
    within the codec's loss (its chroma is subsampled: the colour written is grey)."""
    u8 = _stretched_frame()
    Image.fromarray(np.repeat(u8[..., None], 3, axis=-1)).save(tmp_path / "q90.webp",
                                                               quality=90)
    out = read_image(tmp_path / "q90.webp")
    assert out.shape == (768, 1024)
    error = np.abs(out.astype(np.float64) - u8)
    assert np.median(error) <= 2 and error.max() < 32


def test_an_animated_webp_reads_its_first_frame(tmp_path):
    """As an animated GIF: the first image."""
    frames = [Image.fromarray(np.full((4, 5), v, np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:],
                   lossless=True)
    with Image.open(tmp_path / "anim.webp") as im:
        assert im.n_frames == 3
    np.testing.assert_array_equal(read_image(tmp_path / "anim.webp"), np.full((4, 5), 10))


def test_a_damaged_webp_is_a_file_format_error_naming_it(tmp_path):
    """Cut anywhere, or its RIFF header alone: a FileFormatError naming the file."""
    Image.fromarray(_real_cut()[1]).save(tmp_path / "full.webp", quality=90)
    raw = (tmp_path / "full.webp").read_bytes()
    for n in (16, 30, len(raw) // 2, len(raw) - 1):
        cut = tmp_path / f"cut{n}.webp"
        cut.write_bytes(raw[:n])
        with pytest.raises(FileFormatError, match="corrupted or truncated WebP") as info:
            read_image(cut)
        assert str(cut) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "head.webp").write_bytes(raw[:10])  # (too short to say WEBP)
    with pytest.raises(FileFormatError, match="is not a WebP file") as info:
        read_image(tmp_path / "head.webp")
    assert str(tmp_path / "head.webp") in str(info.value)
    (tmp_path / "sound.webp").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    with pytest.raises(FileFormatError, match="is not a WebP file"):
        read_image(tmp_path / "sound.webp")


def _ccd_file(path: Path, image: np.ndarray, mask: np.ndarray, sigma: np.ndarray) -> Path:
    """A FITS file laid out as ``CCDData.write`` lays it out: the pixels in the primary
    HDU, a MASK extension and an UNCERT one of standard deviations."""
    unc = fits.ImageHDU(sigma, name="UNCERT")
    unc.header["UTYPE"] = "StdDevUncertainty"
    fits.HDUList([fits.PrimaryHDU(image), fits.ImageHDU(mask.astype(np.uint8), name="MASK"),
                  unc]).writeto(path)
    return path


@pytest.mark.parametrize("image_lead, plane_lead", [(1, 1), (1, 0), (0, 1), (2, 1)])
def test_ccd_planes_go_with_an_image_stored_with_leading_axes_of_one(tmp_path, image_lead,
                                                                      plane_lead):
    """A primary image stored as (1, H, W) (or (1, 1, H, W)) is read as (H, W): its MASK
    and UNCERT planes, stored either way, are the image's. (They were left out when the
    image or the plane had a leading axis: its shape was not the image's as read.)"""
    from astropy.nddata import StdDevUncertainty

    from skysolve.pipeline import _image_and_headers

    image = _ramp((30, 40), np.float32)
    mask = np.zeros((30, 40), bool)
    mask[:, :13] = True
    sigma = np.linspace(1.0, 2.0, 1200).reshape(30, 40)
    path = _ccd_file(tmp_path / "ccd.fits", image.reshape((1,) * image_lead + image.shape),
                     mask.reshape((1,) * plane_lead + mask.shape),
                     sigma.reshape((1,) * plane_lead + sigma.shape))
    read = read_image(path)
    assert read.shape == (30, 40)
    got_mask, got_unc = imageio.read_ccd_planes(path, read.shape)
    np.testing.assert_array_equal(got_mask, mask)
    assert isinstance(got_unc, StdDevUncertainty)
    np.testing.assert_array_equal(got_unc.array, sigma)
    container, _ = _image_and_headers(path, None)  # what solve_image extracts from
    np.testing.assert_array_equal(container.mask, mask)
    np.testing.assert_array_equal(container.uncertainty.array, sigma)


@pytest.mark.parametrize("plane", ["MASK", "UNCERT"])
def test_a_ccd_plane_of_other_pixels_is_refused_by_name(tmp_path, plane):
    """A MASK or UNCERT plane whose shape is not the image's is refused, naming the
    plane: it cannot say which of the image's pixels it is about."""
    image = _ramp((30, 40), np.float32)
    wrong = np.ones((2, 30, 40))
    path = _ccd_file(tmp_path / "ccd.fits", image,
                     wrong if plane == "MASK" else np.zeros((30, 40)),
                     wrong if plane == "UNCERT" else np.ones((30, 40)))
    with pytest.raises(InvalidArgumentError, match=f"{plane} plane has shape \\(2, 30, 40\\)"):
        imageio.read_ccd_planes(path, (30, 40))


def _jpeg_with_orientation(path: Path, pixels: np.ndarray, orientation: int | None) -> Path:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation  # the EXIF Orientation tag
    Image.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)
    return path


@pytest.mark.parametrize("orientation, turn", [
    (6, "rotated 90 degrees clockwise"), (3, "rotated 180 degrees"),
    (8, "rotated 90 degrees anticlockwise"), (2, "mirrored left-right")])
def test_a_jpeg_with_an_exif_orientation_is_read_as_stored_with_a_warning(tmp_path,
                                                                          orientation, turn):
    """A JPEG whose EXIF Orientation turns it for display (phones, some cameras) is read
    in its stored order, as the same pixels without the tag are (pixel coordinates and the
    WCS refer to the stored raster), and a warning names the orientation. (It was read so
    without a word: the solution's pixels disagreed with the image a viewer shows.)"""
    pixels = np.full((48, 80), 20, np.uint8)
    pixels[:16, :16] = 220  # a bright corner block at the stored top left
    plain = read_image(_jpeg_with_orientation(tmp_path / "plain.jpg", pixels, None))
    with pytest.warns(UserWarning, match=f"EXIF Orientation is {orientation}: viewers show "
                                         f"it {turn}, but its pixels are read as stored"):
        turned = read_image(_jpeg_with_orientation(tmp_path / "t.jpg", pixels, orientation))
    assert turned.shape == (48, 80)
    np.testing.assert_array_equal(turned, plain)
    assert turned[:16, :16].min() > 200 and turned[-16:, -16:].max() < 40


def test_a_warning_given_deep_inside_skysolve_points_at_the_callers_line(tmp_path):
    """The orientation warning reached through another skysolve function (image_field
    reads the file) is attributed to the line that called into skysolve, here, not to
    skysolve's own caller of read_image (a fixed stacklevel pointed at fields.py)."""
    from skysolve.fields import image_field

    path = _jpeg_with_orientation(tmp_path / "t.jpg", _corner_block(), 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image_field(path)
    turned = [w for w in caught if "EXIF Orientation is 6" in str(w.message)]
    assert len(turned) == 1
    assert turned[0].filename == __file__


def test_a_warning_from_a_generated_dataclass_method_points_at_the_callers_line():
    # a dataclass's __init__ is compiled from "<string>": the warning pointed there
    from skysolve import SolveOptions

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SolveOptions(observer_velocity_km_s=[1e5, 0.0, 0.0])
    fast = [w for w in caught if "faster than any spacecraft" in str(w.message)]
    assert len(fast) == 1 and fast[0].filename == __file__


def test_a_jpeg_with_orientation_1_reads_without_a_warning(tmp_path):
    pixels = np.full((48, 80), 20, np.uint8)
    path = _jpeg_with_orientation(tmp_path / "upright.jpg", pixels, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (48, 80)



def test_a_start_time_with_an_exposure_time_gives_the_exposures_midpoint(tmp_path):
    """DATE-OBS (or MJD-OBS), the exposure's start, with EXPTIME (or EXPOSURE) seconds
    gives the exposure's midpoint. (It gave the start: a 600 s exposure's time was off by
    300 s.) A time of the middle or of the end, where given, is taken before it; a date
    without a time of day stays its midnight; an exposure time that is not a number of
    seconds >= 0 is passed over."""
    from skysolve.io.images import header_mjd
    from skysolve.pipeline import _time_cards

    # 2020-03-01 is MJD 58909 (2020-01-01 is 58849, then 31 + 29 days); the exposure of
    # 600 s from 10:00:00 has its midpoint at 10:05:00
    start = 58909.0 + 10.0 / 24.0
    middle = 58909.0 + (10.0 * 3600.0 + 300.0) / 86400.0
    cases = [({"DATE-OBS": "2020-03-01T10:00:00", "EXPTIME": 600.0}, middle),
             ({"DATE-OBS": "2020-03-01T10:00:00", "EXPOSURE": 600}, middle),
             ({"DATE-OBS": "2020-03-01", "TIME-OBS": "10:00:00", "EXPTIME": 600.0}, middle),
             ({"MJD-OBS": start, "EXPTIME": 600.0}, middle),
             ({"DATE-OBS": "2020-03-01T10:00:00", "EXPTIME": 600.0, "EXPOSURE": 60.0}, middle),
             ({"DATE-OBS": "2020-03-01T10:00:00", "EXPTIME": -1.0, "EXPOSURE": 600.0}, middle),
             ({"DATE-OBS": "2020-03-01T10:00:00"}, start),
             ({"DATE-OBS": "2020-03-01T10:00:00", "EXPTIME": "600"}, start),
             ({"DATE-OBS": "2020-03-01T10:00:00", "EXPTIME": -600.0}, start),
             ({"DATE-AVG": "2020-03-01T10:00:00", "DATE-OBS": "2020-03-01T09:55:00",
               "EXPTIME": 600.0}, start),
             ({"DATE-OBS": "2020-03-01T10:00:00", "DATE-END": "2020-03-01T10:02:00",
               "EXPTIME": 600.0}, start + 60.0 / 86400.0),
             ({"DATE-OBS": "2020-03-01", "EXPTIME": 600.0}, 58909.0)]
    for cards, mjd in cases:
        assert header_mjd(fits.Header(cards)) == pytest.approx(mjd, abs=1e-9), cards
    path = tmp_path / "exposure.fits"
    _write_with_header(path, cases[0][0])
    assert image_epoch(path) == pytest.approx(2000.0 + (middle - 51544.5) / 365.25, abs=1e-12)
    # an NDData's meta dict, as solve_image(obstime='header') reads it
    (header,) = _time_cards({"date-obs": "2020-03-01T10:00:00", "exptime": 600.0})
    assert header_mjd(header) == pytest.approx(middle, abs=1e-9)


def test_a_date_with_an_offset_from_utc_is_taken_in_utc():
    """An ISO 8601 offset after the time of day (written by some capture programs, though
    the FITS standard's dates are UTC without one) was refused: the header had no time,
    and the command-line solve went without the Earth's velocity."""
    from skysolve.io.images import header_mjd

    ten = 58909.0 + 10.0 / 24.0  # 2020-03-01T10:00:00 UTC
    for text, mjd in (("2020-03-01T12:00:00+02:00", ten), ("2020-03-01T05:00:00-0500", ten),
                      ("2020-03-01T10:00:00Z", ten), ("2020-03-01T10:00:00+00:00", ten),
                      ("2020-03-01T15:30:00.5+05:30", ten + 0.5 / 86400.0),
                      ("2020-03-01Z", 58909.0), ("2020-03-01T10:00:00+15:00", None),
                      ("2020-03-01T10:00:00+02:60", None)):
        got = header_mjd(fits.Header({"DATE-OBS": text}))
        assert got == (None if mjd is None else pytest.approx(mjd, abs=1e-9)), text


_TURNS = [(6, "rotated 90 degrees clockwise"), (3, "rotated 180 degrees"),
          (8, "rotated 90 degrees anticlockwise"), (2, "mirrored left-right")]
#: The EXIF (and TIFF) specification's other three.
_ALL_TURNS = [*_TURNS, (4, "mirrored top-bottom"),
              (5, "mirrored left-right and rotated 90 degrees anticlockwise"),
              (7, "mirrored left-right and rotated 90 degrees clockwise")]


def _corner_block() -> np.ndarray:
    pixels = np.full((48, 80), 20, np.uint8)
    pixels[:16, :16] = 220  # a bright corner block at the stored top left
    return pixels


def _read_warning(path: Path, match: str) -> np.ndarray:
    """``read_image(path)`` and its one warning, which is given where read_image was
    called (here), however deep in the reader the tag was found."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = read_image(path)
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert issubclass(caught[0].category, UserWarning)
    assert re.search(match, str(caught[0].message)), str(caught[0].message)
    assert str(path) in str(caught[0].message)
    assert caught[0].filename == __file__
    return out


def _read_silently(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_image(path)


@pytest.mark.parametrize("orientation, turn", _ALL_TURNS)
def test_a_tiff_orientation_tag_is_read_as_stored_with_a_warning(tmp_path, orientation,
                                                                 turn):
    """A TIFF read through tifffile whose Orientation tag (274) turns it for display is
    read in its stored order, as the same pixels without the tag, with the warning a JPEG's
    EXIF Orientation gives (it was read so without a word). A palette TIFF, read through
    Pillow, is read as stored too, and warns once (Pillow's reader turned it without a
    word: 2-4 turned, 5-8 scrambled rows), in either byte order."""
    pixels = _corner_block()
    tifffile.imwrite(tmp_path / "plain.tif", pixels)
    tifffile.imwrite(tmp_path / "t.tif", pixels,
                     extratags=[(274, "H", 1, orientation, True)])
    with tifffile.TiffFile(tmp_path / "t.tif") as tif:
        assert tif.pages[0].tags[274].value == orientation
    turned = _read_warning(tmp_path / "t.tif", f"its TIFF Orientation is {orientation}: "
                           f"viewers show it {turn}, but its pixels are read as stored")
    np.testing.assert_array_equal(turned, _read_silently(tmp_path / "plain.tif"))
    np.testing.assert_array_equal(turned, pixels)
    # colour and 16 bits: the same rule
    rgb16 = np.stack([pixels, pixels, pixels], axis=-1).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb",
                     extratags=[(274, "H", 1, orientation, True)])
    _read_warning(tmp_path / "rgb16.tif", f"TIFF Orientation is {orientation}")
    cmap = np.repeat(np.arange(256, dtype=np.uint16)[None] * 257, 3, axis=0)
    for byteorder in "<>":
        tifffile.imwrite(tmp_path / "palette.tif", pixels, photometric="palette",
                         colormap=cmap, byteorder=byteorder,
                         extratags=[(274, "H", 1, orientation, True)])
        out = _read_warning(tmp_path / "palette.tif", f"TIFF Orientation is {orientation}")
        np.testing.assert_array_equal(out, pixels)


def test_a_tiff_at_orientation_1_and_the_real_frames_read_without_a_warning(tmp_path):
    """Orientation 1 (top left) is the default: nothing to say. The real frames of the
    test data carry no Orientation tag and warn nothing."""
    pixels = _corner_block()
    tifffile.imwrite(tmp_path / "upright.tif", pixels, extratags=[(274, "H", 1, 1, True)])
    np.testing.assert_array_equal(_read_silently(tmp_path / "upright.tif"), pixels)
    for frame in REAL_FRAMES:
        with tifffile.TiffFile(frame) as tif:
            assert 274 not in tif.pages[0].tags
        assert _read_silently(frame).shape == (768, 1024)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # the EXIF Orientation tag
    return exif


def _with_exif_chunk(png: bytes, tiff_block: bytes, after_idat: bool) -> bytes:
    """A PNG with an ``eXIf`` chunk inserted after its IHDR (as the PNG extensions ask:
    before the pixels) or before its IEND (as some writers put it)."""
    chunk = (struct.pack(">I", len(tiff_block)) + b"eXIf" + tiff_block
             + struct.pack(">I", zlib.crc32(b"eXIf" + tiff_block)))
    at = len(png) - 12 if after_idat else 8 + 25  # (the signature, then IHDR's 25 bytes)
    return png[:at] + chunk + png[at:]


@pytest.mark.parametrize("orientation, turn", _TURNS)
@pytest.mark.parametrize("after_idat", [False, True])
def test_a_16_bit_colour_png_with_an_exif_orientation_warns(tmp_path, orientation, turn,
                                                             after_idat):
    """A 16-bit colour PNG, decoded without Pillow, whose ``eXIf`` chunk holds an
    Orientation other than 1 is read as stored with the warning an 8-bit PNG gives (it was
    read without a word); without the chunk, or at 1, nothing is said."""
    from skysolve.tests.pngfiles import encode_png16

    samples = np.stack([_corner_block()] * 3, axis=-1).astype(np.uint16) * 257
    png = encode_png16(samples, [0] * len(samples))
    (tmp_path / "plain.png").write_bytes(png)
    plain = _read_silently(tmp_path / "plain.png")
    np.testing.assert_array_equal(plain, samples[..., 0])
    tiff_block = _exif(orientation).tobytes()[len(b"Exif\0\0"):]  # (eXIf holds no prefix)
    (tmp_path / "t.png").write_bytes(_with_exif_chunk(png, tiff_block, after_idat))
    turned = _read_warning(tmp_path / "t.png", f"its EXIF Orientation is {orientation}: "
                           f"viewers show it {turn}, but its pixels are read as stored")
    np.testing.assert_array_equal(turned, plain)
    upright = _exif(1).tobytes()[len(b"Exif\0\0"):]
    (tmp_path / "upright.png").write_bytes(_with_exif_chunk(png, upright, after_idat))
    np.testing.assert_array_equal(_read_silently(tmp_path / "upright.png"), plain)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_an_8_bit_png_or_webp_with_an_exif_orientation_warns(tmp_path, fmt):
    """Pillow's readers: the same warning as a JPEG's, at 6; nothing at 1."""
    pixels = _corner_block()
    Image.fromarray(pixels).save(tmp_path / "t.img", fmt, exif=_exif(6), lossless=True)
    out = _read_warning(tmp_path / "t.img", "its EXIF Orientation is 6: viewers show it "
                                            "rotated 90 degrees clockwise")
    np.testing.assert_array_equal(out, pixels)
    Image.fromarray(pixels).save(tmp_path / "u.img", fmt, exif=_exif(1), lossless=True)
    np.testing.assert_array_equal(_read_silently(tmp_path / "u.img"), pixels)
