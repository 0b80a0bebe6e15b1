"""``skysolve-field`` run the way capture programs run ``solve-field``: a subprocess with
their command lines, reading back the files it leaves and the lines it prints.

The database comes through ``$SKYSOLVE_DB`` (capture programs cannot add options):
the session's small Hipparcos database saved to a file. Every table and header
is read back with astropy; the ``.wcs`` is compared with the truth of simulated
FITS frames (within 5"), with the reference pointings of the two real frames
(which two independent solvers agree on to 18") and, on those frames, with the
Hipparcos positions of the stars the ``.wcs`` maps (within 5" over every half of
the image).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skysolve.camera.model import CameraModel
from skysolve.tests.realframes import ALT40, ALT60, DATA, FOV_DEG, REFERENCE

#: The patterns capture programs read solve-field's standard output with.
PATTERNS = {
    "center": re.compile(r"Field center: \(RA,Dec\) = "
                         r"\(([-+]?\d+\.?\d*), ([-+]?\d+\.?\d*)\) deg\."),
    "center_hms": re.compile(r"Field center: \(RA H:M:S, Dec D:M:S\) = "
                             r"\((\d+):(\d+):(\d+\.?\d*), ([-+])(\d+):(\d+):(\d+\.?\d*)\)\."),
    "size": re.compile(r"Field size: ([\d.]+) x ([\d.]+) (degrees|arcminutes|arcseconds)"),
    "rotation": re.compile(r"Field rotation angle: up is ([-+]?[\d.]+) degrees E of N"),
    "parity": re.compile(r"Field parity: (pos|neg)"),
    # (astrometry-engine's line for the match; scripts take the pixel scale from it)
    "scale": re.compile(r"  RA,Dec = \(([-+\d.e]+),([-+\d.e]+)\), pixel scale ([\d.e+-]+) "
                        r"arcsec/pix\."),
}
pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
OUTPUTS = (".axy", ".wcs", ".corr", ".rdls", ".match", ".solved", ".new", "-indx.xyls")


@pytest.fixture(scope="module")
def env(small_db, tmp_path_factory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("field_db") / "small.db"
    small_db.save_to_file(path)
    out = dict(os.environ)
    out["SKYSOLVE_DB"] = str(path)
    out["SKYSOLVE_CACHE"] = str(tmp_path_factory.mktemp("field_cache"))
    return out


def solve_field(env, *args, cwd=None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("skysolve-field")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m",
                                                 "skysolve.cli.solve_field"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def parse(stdout: str) -> dict:
    """The values capture programs take from the output."""
    found = {k: p.search(stdout) for k, p in PATTERNS.items()}
    assert all(found.values()), (stdout, [k for k, v in found.items() if not v])
    c, h, s = found["center"], found["center_hms"], found["size"]
    ra_hms = 15.0 * (int(h[1]) + int(h[2]) / 60.0 + float(h[3]) / 3600.0)
    dec_dms = (-1 if h[4] == "-" else 1) * (int(h[5]) + int(h[6]) / 60.0 + float(h[7]) / 3600.0)
    unit = {"degrees": 1.0, "arcminutes": 1 / 60.0, "arcseconds": 1 / 3600.0}[s[3]]
    return {"ra": float(c[1]), "dec": float(c[2]), "ra_hms": ra_hms, "dec_dms": dec_dms,
            "width_deg": float(s[1]) * unit, "height_deg": float(s[2]) * unit,
            "rotation": float(found["rotation"][1]), "parity": found["parity"][1],
            "scale_ra": float(found["scale"][1]), "scale_dec": float(found["scale"][2]),
            "scale": float(found["scale"][3])}


def read_back(folder: Path, base: str, width: int, height: int):
    """Every output file read with astropy; returns (WCS, tables by suffix)."""
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    for suffix in OUTPUTS:
        assert (folder / f"{base}{suffix}").exists(), suffix
    assert (folder / f"{base}.solved").read_bytes() == b"\x01"
    header = fits.getheader(folder / f"{base}.wcs")
    assert header["IMAGEW"] == width and header["IMAGEH"] == height
    assert {"CD1_1", "CD1_2", "CD2_1", "CD2_2", "CRVAL1", "CRPIX1"} <= set(header)
    tables = {s: Table.read(folder / f"{base}{s}", hdu=1)
              for s in (".axy", ".corr", ".rdls", ".match", "-indx.xyls")}
    assert tables[".axy"].colnames == ["X", "Y", "FLUX", "BACKGROUND"]
    assert tables[".corr"].colnames == ["field_x", "field_y", "field_ra", "field_dec",
                                        "index_x", "index_y", "index_ra", "index_dec",
                                        "index_id", "field_id", "match_weight", "FLUX",
                                        "BACKGROUND"]
    assert tables[".rdls"].colnames == ["RA", "DEC"]
    assert len(tables[".match"]) == 1
    with fits.open(folder / f"{base}.new") as new:
        assert new[0].data.shape == (height, width)
        assert WCS(new[0].header).wcs.ctype[0].startswith("RA---TAN")
    return WCS(header), tables


def _separation_arcsec(ra1, dec1, ra2, dec2):
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra1, dec1, unit="deg").separation(SkyCoord(ra2, dec2, unit="deg")).arcsec


def _check_consistent(lines: dict, wcs, tables, width: int, height: int) -> None:
    """Printed lines, .wcs and tables tell one story."""
    ra, dec = wcs.pixel_to_world_values((width - 1) / 2.0, (height - 1) / 2.0)
    assert _separation_arcsec(lines["ra"], lines["dec"], ra, dec) < 0.01
    assert _separation_arcsec(lines["ra_hms"], lines["dec_dms"], ra, dec) < 0.01
    # the field size: the angles between the midpoints of opposite edges
    ra, dec = wcs.pixel_to_world_values([-0.5, width - 0.5], [(height - 1) / 2.0] * 2)
    across = _separation_arcsec(ra[0], dec[0], ra[1], dec[1]) / 3600.0
    ra, dec = wcs.pixel_to_world_values([(width - 1) / 2.0] * 2, [-0.5, height - 0.5])
    down = _separation_arcsec(ra[0], dec[0], ra[1], dec[1]) / 3600.0
    assert math.isclose(lines["width_deg"], across, rel_tol=1e-4)
    assert math.isclose(lines["height_deg"], down, rel_tol=1e-4)
    assert lines["parity"] == ("pos" if np.linalg.det(wcs.pixel_scale_matrix) < 0 else "neg")
    corr = tables[".corr"]
    sep = _separation_arcsec(corr["field_ra"], corr["field_dec"], corr["index_ra"],
                             corr["index_dec"])
    assert len(corr) >= 10 and np.median(sep) < 10.0
    # field positions are the .axy rows they name (1-based pixels both)
    axy = tables[".axy"]
    np.testing.assert_allclose(corr["field_x"], axy["X"][corr["field_id"]])
    # (and carry their .axy columns, as solve-field's do: photometry reads FLUX there)
    np.testing.assert_array_equal(corr["FLUX"], axy["FLUX"][corr["field_id"]])
    np.testing.assert_array_equal(corr["BACKGROUND"], axy["BACKGROUND"][corr["field_id"]])
    px = wcs.world_to_pixel_values(corr["index_ra"], corr["index_dec"])
    np.testing.assert_allclose(corr["index_x"], px[0] + 1.0, atol=0.05)


def _catalog_offsets(wcs, axy, catalog):
    """Where the .wcs puts the .axy stars, against their Hipparcos positions.

    Each star is paired with the nearest catalog star (within 30"); returns the
    0-based pixels of the paired stars and their offsets (east, north; arcsec)
    from the catalog, so that the mapping is checked against the catalog itself.
    """
    from astropy.coordinates import SkyCoord

    x, y = np.asarray(axy["X"]) - 1.0, np.asarray(axy["Y"]) - 1.0
    mapped = wcs.pixel_to_world(x, y)
    stars = SkyCoord(catalog.ra_deg, catalog.dec_deg, unit="deg")
    idx, sep, _ = mapped.match_to_catalog_sky(stars)
    ok = sep.arcsec < 30.0
    east, north = mapped[ok].spherical_offsets_to(stars[idx[ok]])
    return x[ok], y[ok], np.column_stack([east.arcsec, north.arcsec])


@pytest.mark.parametrize("name", [ALT40, ALT60])
def test_ekos_style_call_on_the_real_frames(env, tmp_path, name, hip_catalog):
    shutil.copy(DATA / name, tmp_path / "frame.tiff")
    ra, dec = REFERENCE[name]
    proc = solve_field(env, "--no-plots", "-O", "--scale-units", "degwidth", "--scale-low",
                       FOV_DEG * 0.9, "--scale-high", FOV_DEG * 1.1, "--ra", ra, "--dec", dec,
                       "--radius", 30, "--downsample", 1, "--cpulimit", 30, "--config",
                       "astrometry.cfg", tmp_path / "frame.tiff")
    assert proc.returncode == 0, proc.stderr
    assert "ignored" in proc.stderr and "--config" in proc.stderr and "Traceback" not in \
        proc.stderr
    lines = parse(proc.stdout)
    wcs, tables = read_back(tmp_path, "frame", 1024, 768)
    _check_consistent(lines, wcs, tables, 1024, 768)
    # within the 18" the reference pointings are known to
    centre = wcs.pixel_to_world_values(511.5, 383.5)
    assert _separation_arcsec(*centre, ra, dec) < 18.0
    assert abs(lines["width_deg"] - FOV_DEG) < 0.2
    # the .wcs maps the image within 5" of the catalog: the stars it maps land on
    # their Hipparcos positions (taken at the frames' date, 2019-07-29) with no offset
    # beyond 5" over the image or any half of it (single stars scatter by their
    # centroid noise, ~0.1 px = 5")
    x, y, off = _catalog_offsets(wcs, tables[".axy"], hip_catalog.propagate(2019.58))
    assert len(off) >= 25
    assert np.hypot(*off.mean(axis=0)) < 5.0
    for half in (x < 511.5, x > 511.5, y < 383.5, y > 383.5):
        assert half.sum() >= 8 and np.hypot(*off[half].mean(axis=0)) < 5.0, off[half]


def test_a_noisy_frame_short_of_stars_is_extracted_again_deeper(env, tmp_path):
    # the real frame with three times its noise keeps 4 sources at 5 sigmas, which match
    # nothing; as skysolve solve, skysolve-field extracts it again at 3 sigmas, solves,
    # and the .axy is the list solved (the .corr's field ids index it); --nsigma asked
    # for is kept
    from astropy.io import fits

    from skysolve.io.images import read_image

    img = read_image(DATA / ALT40).astype(np.float64)
    sigma = 1.4826 * np.median(np.abs(img - np.median(img)))
    noisy = img + np.random.default_rng(1).normal(0.0, 3.0 * sigma, img.shape)
    fits.PrimaryHDU(noisy.astype(np.float32)).writeto(tmp_path / "noisy.fits")
    args = ("--no-plots", "-O", "-L", FOV_DEG * 0.95, "-H", FOV_DEG * 1.05, "-u", "degwidth")
    proc = solve_field(env, *args, tmp_path / "noisy.fits")
    assert proc.returncode == 0, proc.stderr
    assert "Extracted 4 sources." in proc.stdout
    assert "extracted again at 3 sigmas" in proc.stdout
    lines = parse(proc.stdout)
    assert _separation_arcsec(lines["ra"], lines["dec"], *REFERENCE[ALT40]) < 60.0
    wcs, tables = read_back(tmp_path, "noisy", 1024, 768)
    assert len(tables[".axy"]) > 100
    _check_consistent(lines, wcs, tables, 1024, 768)
    proc = solve_field(env, *args, "--nsigma", 5, "--dir", tmp_path / "asked",
                       tmp_path / "noisy.fits")
    assert proc.returncode == 0 and "Did not solve" in proc.stdout
    assert "extracted again" not in proc.stdout


def test_a_one_frame_call_loads_no_compiled_kernels(env, tmp_path):
    """Capture programs call solve-field once per frame: such a call solves with the numpy
    backend (numba and the compiled kernels cost a process about a second to load; the
    answers are the same) and needs no scipy either."""
    shutil.copy(DATA / ALT40, tmp_path / "frame.tiff")
    code = ("import json, sys\nfrom skysolve.cli.solve_field import main\nstatus = main()\n"
            "print(json.dumps([status, [m for m in ('numba', 'scipy') if m in sys.modules]]))")
    args = ["-O", "-p", "-L", FOV_DEG * 0.9, "-H", FOV_DEG * 1.1, "-u", "degwidth",
            tmp_path / "frame.tiff"]
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = parse(proc.stdout)
    assert _separation_arcsec(lines["ra"], lines["dec"], *REFERENCE[ALT40]) < 18.0
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [0, []]


@pytest.fixture(scope="module")
def fits_frame(hip_catalog, tmp_path_factory):
    """A simulated 1024x768 FITS frame (mirrored, 12.3 deg) and its true camera/attitude."""
    from astropy.io import fits

    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(12.3, 1024, 768, parity_flip=True)
    R = radec_roll_to_rotation(83.8, -5.4, 37.0)
    image, _ = render_starfield(hip_catalog.propagate(2025.0), cam, R, seed=5)
    folder = tmp_path_factory.mktemp("fits_frame")
    path = folder / "orion.fits"
    fits.PrimaryHDU(image, header=fits.Header({"DATE-OBS": "2025-01-01T00:00:00"})).writeto(path)
    return path, cam, R


def test_nina_style_call_on_a_simulated_fits_frame(env, fits_frame, tmp_path):
    from astropy.io import fits

    path, cam, R = fits_frame
    scale = 3600.0 * math.degrees(1.0 / cam.focal_length_px)
    proc = solve_field(env, "--overwrite", "--index-xyls", "none", "--dir", tmp_path / "out",
                       "--scale-units", "arcsecperpix", "-L", scale * 0.9, "-H", scale * 1.1,
                       "--ra", "05:35:12", "--dec", "-05:24:00", "--radius", 10, "--parity",
                       "pos", "-z", 2, "-p", path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    assert not (out / "orion-indx.xyls").exists()  # 'none'
    for suffix in (".axy", ".wcs", ".corr", ".rdls", ".match", ".solved", ".new"):
        assert (out / f"orion{suffix}").exists(), suffix
    lines = parse(proc.stdout)
    assert lines["parity"] == "pos"  # a mirrored frame: parity_flip, det(CD) < 0
    assert math.isclose(lines["scale"], scale, rel_tol=2e-3)
    assert _separation_arcsec(lines["scale_ra"], lines["scale_dec"], 83.8, -5.4) < 10.0
    from astropy.wcs import WCS

    wcs = WCS(fits.getheader(out / "orion.wcs"))
    # the .wcs maps the whole image within 5" of the truth
    col, row = np.meshgrid(np.linspace(0, 1023, 9), np.linspace(0, 767, 7))
    ra, dec = wcs.pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    assert np.max(_separation_arcsec(ra, dec, t_ra, t_dec)) < 5.0
    # the .new file is the input with the WCS added
    with fits.open(out / "orion.new") as new, fits.open(path) as old:
        np.testing.assert_array_equal(new[0].data, old[0].data)
        assert new[0].header["DATE-OBS"] == "2025-01-01T00:00:00"
        assert WCS(new[0].header).wcs.ctype[0] == "RA---TAN"


def test_the_new_file_drops_the_inputs_old_distortion_terms(env, fits_frame, tmp_path):
    """A frame a SCAMP pipeline has calibrated carries a TPV WCS (``PVi_m``); under the new
    TAN its ``PV1_1 = 1`` would be the reference point's native longitude, and astropy put
    the whole .new 90 deg off. solve-field drops them (and SIP and PinPoint terms)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    path, cam, R = fits_frame
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        data = hdul[0].data
    header["CTYPE1"], header["CTYPE2"] = "RA---TPV", "DEC--TPV"
    for axis in (1, 2):
        header.update({f"PV{axis}_0": 0.0, f"PV{axis}_1": 1.0, f"PV{axis}_2": 0.0,
                       f"PV{axis}_4": 1e-4})
    header.update({"A_ORDER": 2, "A_2_0": 1e-5, "TR1_0": 1.0, "PV1_1A": 1.0, "B_MAG": 12.5,
                   "RADECSYS": "FK4", "WCSNAME": "SCAMP"})
    fits.PrimaryHDU(data, header=header).writeto(tmp_path / "tpv.fits")
    proc = solve_field(env, "-O", tmp_path / "tpv.fits")
    assert proc.returncode == 0, proc.stderr
    new = fits.getheader(tmp_path / "tpv.new")
    # (and the old spelling of RADESYS: its 'FK4' stayed beside the new ICRS)
    dropped = ("PV1_0", "PV1_1", "PV1_4", "PV2_1", "PV2_4", "A_ORDER", "A_2_0", "TR1_0",
               "RADECSYS", "WCSNAME")
    assert not set(dropped) & set(new), list(new)
    assert new["PV1_1A"] == 1.0 and new["B_MAG"] == 12.5  # (an alternate WCS's; not WCS)
    col, row = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 4))
    ra, dec = WCS(new).pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    assert np.max(_separation_arcsec(ra, dec, t_ra, t_dec)) < 5.0


def test_the_new_file_keeps_scaled_and_compressed_pixels_as_stored(env, fits_frame, tmp_path):
    """Cameras write 16-bit integers scaled by BSCALE/BZERO with a BLANK value, and
    archives tile-compress float frames with quantisation (astropy's default). The .new
    holds the very stored values and scaling cards: read scaled and written again, the
    integers came back as float32 (twice the size, the BLANK card left on float data),
    and the compressed floats re-quantised (every pixel moved, up to 5 ADU). The image
    HDU's CHECKSUM is that of its new header (it was the input's, and failed)."""
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    path, cam, R = fits_frame
    with fits.open(path) as hdul:
        header, image = hdul[0].header.copy(), hdul[0].data.astype(np.float64)
    stored = np.round((image - 1000.0) / 2.0).clip(-32767, 32767).astype(np.int16)
    stored[:4] = -32768
    scaled = fits.PrimaryHDU(stored, header=header.copy())
    scaled.header.update({"BSCALE": 2.0, "BZERO": 1000.0, "BLANK": -32768})
    scaled.writeto(tmp_path / "scaled.fits", checksum=True)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        image.astype(np.float32), header=header, compression_type="RICE_1",
        quantize_level=4.0)]).writeto(tmp_path / "packed.fits.fz", checksum=True)
    proc = solve_field(env, "-O", tmp_path / "scaled.fits", tmp_path / "packed.fits.fz")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Field center: (RA,Dec)") == 2, proc.stdout

    def stored_hdu(name, index):
        with fits.open(tmp_path / name, do_not_scale_image_data=True,
                       disable_image_compression=True) as hdul:
            return hdul[index].header.copy(), np.array(hdul[index].data)

    old_header, old_data = stored_hdu("scaled.fits", 0)
    new_header, new_data = stored_hdu("scaled.new", 0)
    assert new_data.dtype == old_data.dtype == np.dtype(">i2")
    np.testing.assert_array_equal(new_data, old_data)
    assert {k: new_header.get(k) for k in ("BITPIX", "BSCALE", "BZERO", "BLANK")} == {
        "BITPIX": 16, "BSCALE": 2.0, "BZERO": 1000.0, "BLANK": -32768}
    # the compressed tiles are those of the input, so every reader decodes the same pixels
    old_header, old_tiles = stored_hdu("packed.fits.fz", 1)
    new_header, new_tiles = stored_hdu("packed.fits.new", 1)
    assert new_tiles.tobytes() == old_tiles.tobytes()
    with fits.open(tmp_path / "packed.fits.fz") as old, \
            fits.open(tmp_path / "packed.fits.new") as new:
        assert isinstance(new[1], fits.CompImageHDU)
        np.testing.assert_array_equal(new[1].data, old[1].data)
        wcs = WCS(new[1].header)
    col, row = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 4))
    ra, dec = wcs.pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    assert np.max(_separation_arcsec(ra, dec, t_ra, t_dec)) < 5.0
    assert WCS(fits.getheader(tmp_path / "scaled.new")).wcs.ctype[0] == "RA---TAN"
    for name in ("scaled.new", "packed.fits.new"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with fits.open(tmp_path / name, checksum=True) as hdul:
                assert all(h.data is not None for h in hdul[-1:])
        assert not [w for w in caught if "hecksum" in str(w.message)], name


def test_a_linear_16_bit_colour_png_solves(env, hip_catalog, tmp_path):
    """A colour camera's short linear exposure saved as a 16-bit RGB PNG (SharpCap, Siril):
    its stars peak a few thousand ADU over a 300 ADU background. Read as 8 bits (the high
    byte of each sample, as Pillow gives them) it kept 7 of its 62 sources (4 and no
    solve with equal channel gains; 22 at 9.5" rms with gains 0.9/1/0.8)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield
    from skysolve.tests.pngfiles import encode_png16

    cam = CameraModel.from_fov(12.3, 1024, 768)
    R = radec_roll_to_rotation(120.0, 60.0, 37.0)
    image, _ = render_starfield(hip_catalog.propagate(2025.0), cam, R, seed=5,
                                background_e=300.0, zeropoint_mag=15.0)
    rgb = np.clip(image[..., None] * np.array([0.5, 1.0, 0.7]), 0, 65535).astype(np.uint16)
    filters = np.random.default_rng(2).integers(0, 5, len(rgb))
    (tmp_path / "frame.png").write_bytes(encode_png16(rgb, filters))
    proc = solve_field(env, "-O", tmp_path / "frame.png")
    assert proc.returncode == 0, proc.stderr
    assert "Field center: (RA,Dec)" in proc.stdout, proc.stdout
    assert int(re.search(r"Extracted (\d+) sources", proc.stdout)[1]) >= 50, proc.stdout
    wcs = WCS(fits.getheader(tmp_path / "frame.wcs"))
    col, row = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 4))
    ra, dec = wcs.pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    assert np.max(_separation_arcsec(ra, dec, t_ra, t_dec)) < 5.0
    # (the .new holds the frame as read: its luminance, from the 16-bit samples)
    luminance = rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    np.testing.assert_allclose(fits.getdata(tmp_path / "frame.new"), luminance, rtol=1e-6)


def test_a_kmz_of_the_image_on_the_sky_is_written_when_asked_for(env, tmp_path):
    """``-Z/--kmz`` (accepted and ignored before): the KMZ for Google Earth's sky mode,
    whose box holds the frame's pointing (longitude RA - 180), under the name given
    (``%s`` the base path); none without it."""
    import io
    import xml.etree.ElementTree as ET
    import zipfile

    for name in ("asked.tiff", "plain.tiff"):
        shutil.copy(DATA / ALT40, tmp_path / name)
    scale = ("-u", "degwidth", "-L", FOV_DEG * 0.9, "-H", FOV_DEG * 1.1)
    proc = solve_field(env, "-p", *scale, "-Z", "%s-sky.kmz", tmp_path / "asked.tiff")
    assert proc.returncode == 0, proc.stderr
    assert "--kmz" not in proc.stderr
    z = zipfile.ZipFile(io.BytesIO((tmp_path / "asked-sky.kmz").read_bytes()))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    root = ET.fromstring(z.read("doc.kml"))
    assert root.attrib["hint"] == "target=sky"
    box = {k: float(root.find(f".//k:{k}", ns).text) for k in ("north", "south", "east",
                                                                  "west")}
    ra, dec = REFERENCE[ALT40]
    assert box["south"] < dec < box["north"]
    assert 0.0 < (ra - 180.0 - box["west"]) % 360.0 < (box["east"] - box["west"]) % 360.0
    assert "overlay.png" in z.namelist()
    proc = solve_field(env, "-p", *scale, tmp_path / "plain.tiff")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "plain.wcs").exists() and not list(tmp_path.glob("plain*.kmz"))


def test_an_xylist_solves_like_its_image(env, fits_frame, tmp_path):
    path, cam, R = fits_frame
    first = solve_field(env, "-O", "-D", tmp_path, path)
    assert first.returncode == 0, first.stderr
    from astropy.table import Table

    xyls = tmp_path / "stars.xyls"
    table = Table.read(tmp_path / "orion.axy", hdu=1)
    table.insert_row(3, [np.nan, 10.0, 1e6, 0.0])  # a row without a position is skipped
    table.write(xyls, format="fits")
    proc = solve_field(env, "-O", "--width", 1024, "--height", 768, xyls)
    assert proc.returncode == 0, proc.stderr
    assert "1 rows without finite X/Y skipped" in proc.stderr
    a, b = parse(first.stdout), parse(proc.stdout)
    assert _separation_arcsec(a["ra"], a["dec"], b["ra"], b["dec"]) < 0.01
    assert not (tmp_path / "stars.new").exists()  # no image to write
    # the .corr and .match name sources by their rows in the list as given, unsorted and
    # with a row skipped (they named the rows of skysolve's sorted, filtered copy)
    shuffled = table[np.random.default_rng(5).permutation(len(table))]
    shuffled.write(xyls, format="fits", overwrite=True)
    proc = solve_field(env, "-O", "--width", 1024, "--height", 768, xyls)
    assert proc.returncode == 0, proc.stderr
    corr = Table.read(tmp_path / "stars.corr")
    ids = np.asarray(corr["field_id"])
    np.testing.assert_array_equal(corr["field_x"], shuffled["X"][ids])
    np.testing.assert_array_equal(corr["field_y"], shuffled["Y"][ids])
    quad = Table.read(tmp_path / "stars.match")["FIELDOBJS"][0]
    flux = np.asarray(shuffled["FLUX"])
    assert set(quad) <= set(ids) and flux[quad].min() >= np.sort(flux[ids])[::-1][3]
    # a list wider than the size given: said in the list's 1-based pixels (the message
    # spoke of centred pixels and origin=, which the list's sender never saw)
    proc = solve_field(env, "-O", "--width", 512, "--height", 768, xyls)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "1-based FITS pixels span 0.5 to 512.5 in x" in proc.stderr, proc.stderr
    assert "origin=" not in proc.stderr


def test_a_sextractor_catalog_is_an_xylist_by_its_content(env, fits_frame, tmp_path):
    """solve-field takes any FITS table with the x/y columns for an x/y list, whatever its
    name (SExtractor's ``cat.fits``), and copies its other columns into the ``.corr``."""
    from astropy.table import Table

    path, _, _ = fits_frame
    first = solve_field(env, "-O", "-D", tmp_path, path)
    assert first.returncode == 0, first.stderr
    axy = Table.read(tmp_path / "orion.axy", hdu=1)
    order = np.random.default_rng(3).permutation(len(axy))
    cat = Table({"NUMBER": np.arange(1, len(axy) + 1), "X_IMAGE": axy["X"][order],
                 "Y_IMAGE": axy["Y"][order],
                 "MAG_AUTO": -2.5 * np.log10(np.asarray(axy["FLUX"][order]))})
    cat.write(tmp_path / "cat.fits", format="fits")
    proc = solve_field(env, "-O", "-w", 1024, "-e", 768, "-X", "X_IMAGE", "-Y", "Y_IMAGE",
                       "-s", "MAG_AUTO", "-a", tmp_path / "cat.fits")
    assert proc.returncode == 0, proc.stderr
    a, b = parse(first.stdout), parse(proc.stdout)
    assert _separation_arcsec(a["ra"], a["dec"], b["ra"], b["dec"]) < 0.01
    assert not (tmp_path / "cat.axy").exists() and not (tmp_path / "cat.new").exists()
    corr = Table.read(tmp_path / "cat.corr")
    assert corr.colnames[-3:] == ["match_weight", "NUMBER", "MAG_AUTO"]
    ids = np.asarray(corr["field_id"])
    np.testing.assert_array_equal(corr["field_x"], cat["X_IMAGE"][ids])
    np.testing.assert_array_equal(corr["NUMBER"], ids + 1)
    np.testing.assert_array_equal(corr["MAG_AUTO"], cat["MAG_AUTO"][ids])
    # a FITS image is still an image, a table without the columns is not a list
    from skysolve.io.astrometry_files import is_xylist

    assert is_xylist(tmp_path / "cat.fits", "X_IMAGE", "Y_IMAGE")
    assert not is_xylist(tmp_path / "cat.fits") and not is_xylist(path)
    assert not is_xylist(tmp_path / "cat.fits", "X_IMAGE", "Y_IMAGE", hdu=0)
    (tmp_path / "notes.txt").write_text("not FITS")
    assert not is_xylist(tmp_path / "notes.txt")


def test_existing_outputs_and_bad_command_lines(env, fits_frame, tmp_path):
    path, _, _ = fits_frame
    shutil.copy(path, tmp_path / "f.fits")
    assert solve_field(env, tmp_path / "f.fits").returncode == 0
    stamp = (tmp_path / "f.wcs").stat().st_mtime_ns
    again = solve_field(env, tmp_path / "f.fits")
    assert again.returncode == 0 and "--overwrite" in again.stdout
    assert (tmp_path / "f.wcs").stat().st_mtime_ns == stamp
    for args, code in ((["--no-such-option", path], 255), (["--scale-units", "furlongs", "-L",
                                                            "1", path], 255),
                       (["--ra", "12:00:00", path], 255), ([tmp_path / "missing.fits"], 1)):
        proc = solve_field(env, *args)
        assert proc.returncode == code, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
    # a field that cannot solve: status 0 as solve-field, no .solved, no .wcs
    noise = tmp_path / "noise.fits"
    from astropy.io import fits

    fits.PrimaryHDU(np.random.default_rng(1).normal(100, 5, (300, 400)).astype(np.float32)) \
        .writeto(noise)
    proc = solve_field(env, noise)
    assert proc.returncode == 0 and "Did not solve" in proc.stdout
    assert not (tmp_path / "noise.solved").exists() and not (tmp_path / "noise.wcs").exists()


def test_sirils_call_with_a_scale_given_as_one_value(env, fits_frame, tmp_path):
    """Siril writes its stars as an x/y list (float32 X, Y, FLUX, BACKGROUND; IMAGEW and
    IMAGEH in the table's header), asks for no file but the .wcs, and may pass a known
    scale as ``-L s -H s``: that empty range found no candidate and never solved."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.extraction import extract_centroids
    from skysolve.io.astrometry_files import fits_pixels

    path, cam, R = fits_frame
    found = extract_centroids(fits.getdata(path)).as_array()
    xy = fits_pixels(found[:, :2], 1024, 768)
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=name, format="1E", array=values.astype(np.float32))
         for name, values in (("X", xy[:, 0]), ("Y", xy[:, 1]), ("FLUX", found[:, 2]),
                              ("BACKGROUND", np.zeros(len(xy))))])
    table.header["IMAGEW"], table.header["IMAGEH"] = 1024, 768
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "frame.xyls")
    scale = f"{3600.0 * math.degrees(1.0 / cam.focal_length_px):.3f}"
    proc = solve_field(env, "-C", "stop", "--temp-axy", "-p", "-O", "-N", "none", "-R", "none",
                       "-M", "none", "-B", "none", "-U", "none", "-S", "none",
                       "--crpix-center", "-l", "10", "-u", "arcsecperpix", "-L", scale, "-H",
                       scale, "-s", "FLUX", "-T", "--ra", "83.800000", "--dec", "-5.400000",
                       "--radius", "10.0", "frame.xyls", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Field center: (RA,Dec)" in proc.stdout, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.wcs", "frame.xyls"]
    wcs = WCS(fits.getheader(tmp_path / "frame.wcs"))
    col, row = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 4))
    ra, dec = wcs.pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    assert np.max(_separation_arcsec(ra, dec, t_ra, t_dec)) < 5.0


def test_just_augment_writes_the_source_list_only(env, fits_frame, tmp_path):
    """Scripts take solve-field's source extraction alone with ``--just-augment`` (or
    ``-A``/``--dont-augment``): the .axy is written and the field is not solved (it was,
    and every other file written)."""
    from astropy.table import Table

    path, _, _ = fits_frame
    for flag in ("--just-augment", "--dont-augment"):
        proc = solve_field(env, "-O", flag, "-D", tmp_path / flag, path)
        assert proc.returncode == 0, proc.stderr
        assert "Field center" not in proc.stdout and "ignored" not in proc.stderr
        assert [p.name for p in (tmp_path / flag).iterdir()] == ["orion.axy"]
        axy = Table.read(tmp_path / flag / "orion.axy")
        assert axy.colnames == ["X", "Y", "FLUX", "BACKGROUND"] and len(axy) >= 50


def test_an_out_base_loses_its_extension_as_an_input_name_does(env, fits_frame, tmp_path):
    """solve-field drops a 2-4 character extension from the base name whether it comes
    from the input or from ``-o`` (``-o field.fits`` wrote ``field.fits.axy``)."""
    path, _, _ = fits_frame
    for out, expected in (("field.fits", "field.axy"), ("run.1", "run.1.axy"),
                          ("night.v2.fit", "night.v2.axy")):
        proc = solve_field(env, "-O", "--just-augment", "-D", tmp_path / out, "-o", out, path)
        assert proc.returncode == 0, proc.stderr
        assert [p.name for p in (tmp_path / out).iterdir()] == [expected]


def test_the_probes_siril_makes_before_solving(env):
    """Siril takes solve-field for installed when ``solve-field -h`` exits 0, then reads
    the version from the single line ``solve-field --version`` prints (two lines or none
    are taken for a pre-0.88 solve-field, and no output at all left it nothing to read)."""
    import skysolve

    assert solve_field(env, "-h").returncode == 0
    proc = solve_field(env, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [skysolve.__version__]


def test_guess_scale_takes_the_focal_length_and_pixel_size_a_capture_program_records(
        env, fits_frame, tmp_path):
    """``--guess-scale`` searches about the scale FOCALLEN (mm) and XPIXSZ (um) give, and
    without it when that scale is wrong (a binning the header leaves out): it was ignored."""
    from astropy.io import fits

    path, cam, R = fits_frame
    scale = 3600.0 * math.degrees(1.0 / cam.focal_length_px)  # arcsec/px
    for factor, name in ((1.0, "right"), (2.0, "binned")):
        header = fits.getheader(path)
        header["FOCALLEN"] = 200.0
        header["XPIXSZ"] = scale * 200.0 / 206.264806 * factor
        frame = tmp_path / f"{name}.fits"
        fits.PrimaryHDU(fits.getdata(path), header=header).writeto(frame)
        proc = solve_field(env, "-g", "-p", "-O", "-N", "none", frame)
        assert proc.returncode == 0, proc.stderr
        guessed = f"Guessed scale: {scale * factor:g} arcsec/pix (from FOCALLEN, XPIXSZ)."
        assert guessed in proc.stdout.splitlines(), proc.stdout
        assert ("trying without it" in proc.stdout) == (factor != 1.0)
        fields = parse(proc.stdout)
        assert fields["scale"] == pytest.approx(scale, rel=1e-3)
        assert "guess-scale" not in proc.stderr


def test_an_interrupt_ends_with_a_line_and_status_130(monkeypatch, capsys, tmp_path):
    """Ctrl-C, or a capture program cancelling the solve with SIGINT, ends the run with
    one line and the shell's status for an interrupt (it printed a traceback)."""
    from skysolve.cli import solve_field as cli

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_field", interrupted)
    assert cli.main(["-p", str(tmp_path / "a.fits"), str(tmp_path / "b.fits")]) == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "skysolve-field: interrupted" and "Traceback" not in err


def test_stellarsolver_style_line_and_output_name_patterns(env, fits_frame, tmp_path):
    """A line with the flags StellarSolver/KStars send (``--temp-axy`` is a flag, ``-y``
    ``--no-verify``); ``%s`` in a name is the base path (``DIR/BASE``), a name without it
    is taken as given; ``-D`` is created even when nothing is written there by default."""
    path, _, _ = fits_frame
    out = tmp_path / "new" / "sub"
    proc = solve_field(env, "-O", "--no-plots", "-y", "--resort", "--downsample", 2, "-3",
                       "83.8", "-4", "-5.4", "-5", 10, "--temp-axy", "--index-xyls", "none",
                       "--new-fits", "none", "--index-dir", "/nowhere", "--uniformize", 0,
                       "--no-remove-lines", "--crpix-center", "-t", 2, "-D", out, "-W",
                       "%s.wcs", "--solved", tmp_path / "ok.solved", "--corr", "none",
                       "--match", "none", "--rdls", "none", path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and parse(proc.stdout)["parity"] == "pos"
    assert (out / "orion.wcs").exists() and (tmp_path / "ok.solved").exists()
    assert sorted(p.name for p in out.iterdir()) == ["orion.wcs"]  # no .axy: --temp-axy
    # a gzipped FITS file: solve-field's base name drops .gz and then .fits
    gz = tmp_path / "orion.fits.gz"
    import gzip

    gz.write_bytes(gzip.compress(path.read_bytes()))
    proc = solve_field(env, "-O", "-p", "--cpulimit", 0, gz)  # 0: no time limit
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "orion.wcs").exists() and not (tmp_path / "orion.fits.wcs").exists()


def test_overwrite_leaves_no_stale_solution_and_spares_the_input(env, fits_frame, tmp_path):
    from astropy.io import fits

    path, _, _ = fits_frame
    assert solve_field(env, "-O", "-p", "-D", tmp_path, "-o", "frame", path).returncode == 0
    assert (tmp_path / "frame.solved").exists() and (tmp_path / "frame.wcs").exists()
    # the same base name for a frame that does not solve: no .solved/.wcs left behind
    noise = tmp_path / "noise.fits"
    fits.PrimaryHDU(np.random.default_rng(2).normal(100, 5, (300, 400)).astype(np.float32)) \
        .writeto(noise)
    proc = solve_field(env, "-O", "-p", "-D", tmp_path, "-o", "frame", noise)
    assert proc.returncode == 0 and "Did not solve" in proc.stdout
    assert not (tmp_path / "frame.solved").exists() and not (tmp_path / "frame.wcs").exists()
    # skysolve-field's own .axy keeps IMAGEW/IMAGEH in its primary header, as solve-field's:
    # it solves without --width/--height, and -O does not delete the input list
    assert solve_field(env, "-O", "-p", "-D", tmp_path, path).returncode == 0
    axy = tmp_path / "orion.axy"
    assert "IMAGEW" in fits.getheader(axy, 0)
    proc = solve_field(env, "-O", "-p", axy)
    assert proc.returncode == 0 and axy.exists(), proc.stderr
    assert parse(proc.stdout)["parity"] == "pos"


def test_an_output_never_replaces_the_input_and_a_failed_write_leaves_nothing(env, fits_frame,
                                                                             tmp_path):
    """An output named like the input (``--wcs frame.fits``, or an input called
    ``frame.wcs`` whose default .wcs name is its own) is refused and the image kept (it was
    replaced by a 2,880-byte header, and the .new file then built from that); an output
    that cannot be written (a missing folder) leaves no other file of the solution (a
    .wcs without a .solved looked solved to capture programs)."""
    path, _, _ = fits_frame
    data = Path(path).read_bytes()
    frame = tmp_path / "frame.fits"
    frame.write_bytes(data)
    proc = solve_field(env, "-p", "--wcs", frame, frame, cwd=tmp_path)
    assert proc.returncode == 1 and "refusing to overwrite the input" in proc.stderr
    assert "--wcs" in proc.stderr and frame.read_bytes() == data
    named = tmp_path / "named.wcs"
    named.write_bytes(data)
    proc = solve_field(env, "-p", "-O", named, cwd=tmp_path)
    assert proc.returncode == 1 and named.read_bytes() == data
    proc = solve_field(env, "-p", "--solved", tmp_path / "nodir" / "x.solved", frame,
                       cwd=tmp_path)
    assert proc.returncode == 1 and "nodir" in proc.stderr
    left = {p.name for p in tmp_path.iterdir()} - {"frame.fits", "named.wcs", "frame.axy"}
    assert not left, left


def test_bad_values_are_usage_errors_and_a_negative_radius_is_no_constraint(env, fits_frame):
    path, _, _ = fits_frame
    for args in (["-L", 12, "-H", 10], ["--ra", 10, "--dec", 95]):
        proc = solve_field(env, "-p", *args, "--solved", "none", "--wcs", "none", path)
        assert proc.returncode == 255, (args, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    # a position far from the field with a negative radius: solve-field drops the hint
    proc = solve_field(env, "-p", "-O", "--ra", 200, "--dec", 60, "--radius", -1, "--axy", "none",
                       "--new-fits", "none", "-D", path.parent / "neg", path)
    assert proc.returncode == 0, proc.stderr
    lines = parse(proc.stdout)
    assert _separation_arcsec(lines["ra"], lines["dec"], 83.8, -5.4) < 3600.0


def test_a_downsample_too_large_for_a_small_frame_is_reduced(env, tmp_path):
    from skysolve.fields import effective_downsample

    assert effective_downsample(4, 768, 1024) == 2
    assert effective_downsample(4, 4000, 6000) == 4 and effective_downsample(None, 10, 10) == 1
    shutil.copy(DATA / ALT40, tmp_path / "frame.tiff")  # 4x4 would keep 14-19 of its stars
    proc = solve_field(env, "-p", "-O", "-z", 4, "--scale-units", "degwidth", "-L", 10, "-H",
                       13, tmp_path / "frame.tiff")
    assert proc.returncode == 0, proc.stderr
    lines = parse(proc.stdout)
    assert _separation_arcsec(lines["ra"], lines["dec"], *REFERENCE[ALT40]) < 30.0


def test_a_fisheye_frame_names_its_projection(wide_db, hip_catalog, tmp_path):
    # solve-field has no projection option: --projection (or $SKYSOLVE_PROJECTION, for
    # capture programs) names the lens's, and the .wcs is in its own FITS projection. Told
    # none, the pinhole search finds no pattern of this frame and the equidistant one does
    # (it did not solve, with advice to name the projection)
    from astropy.io import fits
    from astropy.wcs import WCS

    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(120.0, 800, 600, projection="equidistant")
    R = radec_roll_to_rotation(250.0, 40.0, -100.0)
    image, _ = render_starfield(hip_catalog.propagate(2025.0), cam, R, seed=2)
    path = tmp_path / "allsky.fits"
    fits.PrimaryHDU(image).writeto(path)
    db_path = tmp_path / "wide.db"
    wide_db.save_to_file(db_path)
    env = dict(os.environ, SKYSOLVE_DB=str(db_path), SKYSOLVE_CACHE=str(tmp_path / "cache"))
    for how, extra in (("option", ["--projection", "equidistant"]),
                       ("environment", []), ("unnamed", [])):
        run_env = dict(env, SKYSOLVE_PROJECTION="equidistant") if how == "environment" else env
        proc = solve_field(run_env, "-p", "-O", *extra, "-D", tmp_path / how, path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / how / "allsky.solved").exists(), proc.stdout
        wcs = WCS(fits.getheader(tmp_path / how / "allsky.wcs"))
        assert wcs.wcs.ctype[0].startswith("RA---ARC")
        ra, dec = cam.pixel_to_world(np.array([0.0, 300.0]), np.array([0.0, 200.0]), R)
        sky = wcs.all_pix2world([[400.5, 300.5], [700.5, 500.5]], 1)
        assert _separation_arcsec(sky[:, 0], sky[:, 1], ra, dec).max() < 60.0
    bad = solve_field(env, "-p", "--projection", "fisheye", path)
    assert bad.returncode == 255 and "equidistant" in bad.stderr


def test_a_focal_length_scale_goes_through_the_lens_projection():
    # 35-mm equivalent: the 36 mm width spans 2 atan(18 / f) through a pinhole, 36 / f
    # radians through an equidistant fisheye (a 17.2 mm fisheye: 120 deg, not 92)
    from skysolve.cli.solve_field import build_parser, solve_hints

    for projection, width in (("pinhole", lambda f: 2 * math.degrees(math.atan(18.0 / f))),
                              ("equidistant", lambda f: math.degrees(36.0 / f))):
        args = build_parser().parse_args(["--projection", projection, "-u", "focalmm",
                                          "-L", "16", "-H", "18", "x.fits"])
        lo, hi = solve_hints(args)["fov_range_deg"]
        assert (lo, hi) == pytest.approx((width(18.0), width(16.0)), rel=1e-9)


@pytest.mark.parametrize(("given", "timeout_ms"), [((), 300_000.0), (("-l", "30"), 30_000.0),
                                                  (("--cpulimit", "0"), None),
                                                  (("--cpulimit", "-1"), None),
                                                  (("--cpulimit", "inf"), None)])
def test_the_cpu_limit_is_the_solve_s_time_limit(given, timeout_ms):
    """``--cpulimit 0`` (or less) is no limit, as solve-field's; it left the library's 5 s
    before. Without the option: 300 s. An infinite limit is none (the library refused it
    after the extraction, naming its ``solve_timeout_ms``)."""
    from skysolve.cli.solve_field import _join_negative_values, build_parser, solve_hints

    args = build_parser().parse_args(_join_negative_values([*given, "x.fits"]))
    assert solve_hints(args)["solve_timeout_ms"] == timeout_ms


def test_a_cpu_limit_that_is_not_a_number_is_refused_by_name():
    """``--cpulimit nan`` read as no limit, silently."""
    from skysolve.cli.solve_field import UsageError, build_parser, solve_hints

    with pytest.raises(UsageError, match="--cpulimit nan is not a number of seconds"):
        solve_hints(build_parser().parse_args(["--cpulimit", "nan", "x.fits"]))


def test_a_database_file_is_verified_in_full_once_per_state(tiny_db_file, tmp_path,
                                                            monkeypatch):
    """``skysolve-field`` and ``skysolve solve --db`` record a database file whose checksums
    passed in the cache directory, and skip its pattern arrays' next time."""
    import argparse

    from skysolve.cli.common import _load_database
    from skysolve.fields import load_database
    from skysolve.solver import dbfile

    cache = tmp_path / "cache"
    monkeypatch.setenv("SKYSOLVE_CACHE", str(cache))
    monkeypatch.setattr(dbfile, "_SETTLED_S", -1.0)  # (the file was written just now)
    load_database.__wrapped__(str(tiny_db_file))
    assert len(list((cache / "verified").iterdir())) == 1
    # the same file in the same state: the same record
    db, _ = _load_database(argparse.Namespace(db=str(tiny_db_file), quiet=True))
    assert len(list((cache / "verified").iterdir())) == 1 and db.num_patterns > 0


@pytest.mark.skipif(sys.platform == "win32", reason="the home directory of a POSIX user")
def test_a_database_file_loads_without_a_home_directory(tiny_db_file, monkeypatch):
    """A container's user without a password entry nor ``$HOME`` has no cache directory:
    ``skysolve-field`` and ``skysolve solve --db`` failed with "Could not determine home
    directory" (RuntimeError) where they need none."""
    import argparse
    import pwd

    from skysolve.cli.common import _load_database
    from skysolve.fields import load_database

    for name in ("HOME", "XDG_CACHE_HOME", "SKYSOLVE_CACHE"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    db = load_database.__wrapped__(str(tiny_db_file))
    again, _ = _load_database(argparse.Namespace(db=str(tiny_db_file), quiet=True))
    assert db.num_patterns == again.num_patterns > 0


@pytest.fixture
def tiny_db_file(hip_catalog, tmp_path):
    from skysolve.database import SolverDatabase

    path = tmp_path / "tiny.db"
    SolverDatabase.generate_from_catalog(
        hip_catalog.propagate(2025.0), max_fov_deg=40.0, patterns_per_lattice_field=10,
        lattice_field_oversampling=5, verification_stars_per_fov=20, progress=False,
    ).save_to_file(path)
    return path


def _truth_offsets(wcs, cam, R, n=(9, 7)):
    """The largest distance (arcsec) between where ``wcs`` and the true camera put the
    pixels of an ``n`` grid over the 1024x768 frame."""
    col, row = np.meshgrid(np.linspace(0, 1023, n[0]), np.linspace(0, 767, n[1]))
    ra, dec = wcs.pixel_to_world_values(col.ravel(), row.ravel())
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - 512, row.ravel() + 0.5 - 384, R)
    return float(np.max(_separation_arcsec(ra, dec, t_ra, t_dec)))


def test_objs_and_depth_limit_the_sources_to_the_brightest(env, fits_frame, tmp_path):
    """``--objs N`` cuts the source list (the .axy) to its N brightest; ``-d/--depth``
    (a number, or ranges such as ``1-60`` or ``20,40,60``) forms the patterns from the
    brightest up to its largest number while every source verifies the match and the
    .axy keeps every source. Both were ignored: the .axy kept all 423 sources."""
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    path, cam, R = fits_frame
    assert solve_field(env, "-O", "-D", tmp_path / "all", path).returncode == 0
    everything = Table.read(tmp_path / "all" / "orion.axy")
    assert len(everything) > 200
    proc = solve_field(env, "-O", "--objs", 60, "-D", tmp_path / "objs", path)
    assert proc.returncode == 0 and "ignored" not in proc.stderr, proc.stderr
    axy = Table.read(tmp_path / "objs" / "orion.axy")
    # the 60 brightest: the first 60 of the full list, brightest first
    assert len(axy) == 60
    np.testing.assert_allclose(axy["X"], everything["X"][:60], atol=0.01)
    np.testing.assert_allclose(axy["Y"], everything["Y"][:60], atol=0.01)
    assert _truth_offsets(WCS(fits.getheader(tmp_path / "objs" / "orion.wcs")), cam, R) < 10.0
    for depth in ("60", "1-60", "20,40,60", "1-20,21-60"):
        out = tmp_path / f"depth{depth.replace(',', '_')}"
        proc = solve_field(env, "-O", "-d", depth, "-D", out, path)
        assert proc.returncode == 0 and "ignored" not in proc.stderr, proc.stderr
        assert len(Table.read(out / "orion.axy")) == len(everything)
        corr = Table.read(out / "orion.corr")
        # every source verifies and fits the match, not only the first 60
        assert len(corr) >= 100 and max(corr["field_id"]) >= 60, depth
        assert _truth_offsets(WCS(fits.getheader(out / "orion.wcs")), cam, R) < 10.0
    # the patterns come from the brightest `depth` sources: twelve bright false sources
    # ahead of the stars leave -d 12 nothing to match, and -d 40 the stars after them (a
    # scale range: without one, each focal-length window takes its brightest 14 at most)
    junk = Table({"X": np.random.default_rng(9).uniform(1, 1024, 12),
                  "Y": np.random.default_rng(10).uniform(1, 768, 12),
                  "FLUX": np.linspace(2, 1.5, 12) * everything["FLUX"].max()})
    listed = Table({k: np.concatenate([junk[k], everything[k]]) for k in ("X", "Y", "FLUX")})
    listed.write(tmp_path / "junk.xyls", format="fits")
    for depth, solved in (("12", False), ("40", True)):
        out = tmp_path / f"junk{depth}"
        proc = solve_field(env, "-O", "-d", depth, "-w", 1024, "-e", 768, "-L", 11, "-H",
                           13.5, "-D", out, tmp_path / "junk.xyls")
        assert proc.returncode == 0, proc.stderr
        assert (out / "junk.solved").exists() == solved, (depth, proc.stdout)
        if solved:
            assert max(Table.read(out / "junk.corr")["field_id"]) >= 40
    # an x/y list: --objs keeps its brightest rows by the sort column
    shuffled = everything[np.random.default_rng(4).permutation(len(everything))]
    shuffled.write(tmp_path / "list.xyls", format="fits")
    proc = solve_field(env, "-O", "--objs", 60, "-w", 1024, "-e", 768, tmp_path / "list.xyls")
    assert proc.returncode == 0, proc.stderr
    ids = np.asarray(Table.read(tmp_path / "list.corr")["field_id"])
    flux = np.asarray(shuffled["FLUX"])
    assert flux[ids].min() >= np.sort(flux)[::-1][59]


@pytest.mark.parametrize("args, option", [
    (["--objs", "0"], "--objs"), (["--objs", "many"], "--objs"), (["--objs", "2.5"], "--objs"),
    (["-d", "60-20"], "-d/--depth"), (["-d", "5-"], "-d/--depth"), (["-d", "0"], "-d/--depth"),
    (["--depth", "1-x"], "-d/--depth"), (["--nsigma", "-3"], "--nsigma"),
    (["--nsigma", "high"], "--nsigma"), (["--sigma", "0"], "--sigma"),
    (["--crpix-x", "nan"], "--crpix-x"), (["--crpix-y", "centre"], "--crpix-y")])
def test_bad_source_and_reference_pixel_values_are_one_line_errors(env, fits_frame, args,
                                                                   option):
    path, _, _ = fits_frame
    proc = solve_field(env, *args, "--just-augment", "--axy", "none", path)
    assert proc.returncode == 255, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in proc.stderr


def test_nsigma_and_sigma_set_the_detection_threshold_and_noise(env, fits_frame, tmp_path):
    """``--nsigma`` is the extraction's threshold in noise sigmas and ``--sigma`` the
    image's noise level (counts) it is scaled to, in place of the estimated one: the .axy
    is what the library extracts with those settings (both were ignored)."""
    from astropy.io import fits
    from astropy.nddata import NDData, StdDevUncertainty
    from astropy.table import Table

    from skysolve.extraction import extract_centroids
    from skysolve.io.astrometry_files import fits_pixels

    path, _, _ = fits_frame
    data = fits.getdata(path)
    default = extract_centroids(data)
    # (the simulated stars are bright: a threshold 40 times higher drops a third of them)
    noise = 40.0 * default.background_sigma
    expected = {
        ("--nsigma", "200"): extract_centroids(data, sigma_threshold=200.0),
        ("--sigma", f"{noise!r}"): extract_centroids(
            NDData(data, uncertainty=StdDevUncertainty(np.full(data.shape, noise)))),
    }
    for (option, value), want in expected.items():
        out = tmp_path / option.strip("-")
        proc = solve_field(env, "--just-augment", option, value, "-D", out, path)
        assert proc.returncode == 0 and "ignored" not in proc.stderr, proc.stderr
        axy = Table.read(out / "orion.axy")
        assert 50 <= len(axy) < 0.8 * len(default.centroids), option
        xy = fits_pixels(want.as_array()[:, :2], 1024, 768)
        np.testing.assert_allclose(np.column_stack([axy["X"], axy["Y"]]), xy, atol=1e-6)


def test_crpix_options_move_the_reference_pixel_and_keep_the_solution(env, fits_frame,
                                                                      tmp_path):
    """``--crpix-x/--crpix-y`` put the .wcs's (and the .new's and .match's) reference pixel
    there, CRVAL at that pixel's sky position, the solution about it in SIP terms: every
    pixel of the image maps where the default .wcs maps it, within 0.01". The default
    reference pixel is the image centre, so ``--crpix-center`` writes the default .wcs.
    (They were ignored: CRPIX stayed at the centre.)"""
    from astropy.io import fits
    from astropy.table import Table
    from astropy.wcs import WCS

    path, cam, R = fits_frame
    assert solve_field(env, "-O", "-D", tmp_path / "default", path).returncode == 0
    default_header = fits.getheader(tmp_path / "default" / "orion.wcs")
    default = WCS(default_header)
    assert (default_header["CRPIX1"], default_header["CRPIX2"]) == (512.5, 384.5)
    col, row = (a.ravel() for a in np.meshgrid(np.arange(1024.0), np.arange(768.0)))
    sky = default.all_pix2world(col, row, 0)
    for args, crpix in ((["--crpix-x", 100.5, "--crpix-y", 650], (100.5, 650.0)),
                        (["--crpix-x", -200, "--crpix-y", -100.25], (-200.0, -100.25)),
                        (["--crpix-x", 1], (1.0, 384.5))):
        out = tmp_path / "_".join(map(str, crpix))
        proc = solve_field(env, "-O", *args, "-D", out, path)
        assert proc.returncode == 0 and "ignored" not in proc.stderr, proc.stderr
        header = fits.getheader(out / "orion.wcs")
        assert (header["CRPIX1"], header["CRPIX2"]) == crpix
        assert header["CTYPE1"] == "RA---TAN-SIP" and {"CD1_1", "A_ORDER", "AP_ORDER"} <= set(
            header)
        moved = WCS(header)
        # CRVAL: the default solution's sky position of the reference pixel
        ra0, dec0 = default.all_pix2world([[crpix[0], crpix[1]]], 1)[0]
        assert _separation_arcsec(header["CRVAL1"], header["CRVAL2"], ra0, dec0) < 0.01
        # every pixel where the default .wcs puts it, and back through AP/BP
        ra, dec = moved.all_pix2world(col, row, 0)
        assert np.max(_separation_arcsec(ra, dec, *sky)) < 0.01
        lin = moved.wcs_world2pix(np.column_stack(sky)[::101], 1)
        u, v = lin[:, 0] - crpix[0], lin[:, 1] - crpix[1]
        back = lin + np.column_stack([
            sum(moved.sip.ap[p, q] * u**p * v**q for p in range(moved.sip.ap.shape[0])
                for q in range(moved.sip.ap.shape[1])),
            sum(moved.sip.bp[p, q] * u**p * v**q for p in range(moved.sip.bp.shape[0])
                for q in range(moved.sip.bp.shape[1]))])
        np.testing.assert_allclose(back - 1.0, np.column_stack([col, row])[::101], atol=1e-3)
        # the .new and the .match carry the same reference pixel
        new = fits.getheader(out / "orion.new")
        assert (new["CRPIX1"], new["CRPIX2"]) == crpix and new["A_ORDER"] == header["A_ORDER"]
        match = Table.read(out / "orion.match")
        np.testing.assert_array_equal(match["CRPIX"][0], crpix)
    proc = solve_field(env, "-O", "--crpix-center", "-D", tmp_path / "centre", path)
    assert proc.returncode == 0 and "ignored" not in proc.stderr, proc.stderr
    header = fits.getheader(tmp_path / "centre" / "orion.wcs")
    for key in ("CTYPE1", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD2_1"):
        assert header[key] == default_header[key], key


def test_no_input_file_prints_the_usage_and_exits_0(env):
    """As solve-field: a command line naming no file is answered with the usage on
    standard output and status 0 (it was an error, 255); an unknown option stays one."""
    proc = solve_field(env, "--no-plots", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: skysolve-field") and "--crpix-x" in proc.stdout
    assert "Traceback" not in proc.stderr
    proc = solve_field(env, "--no-such-option")
    assert proc.returncode == 255 and len(proc.stderr.strip().splitlines()) == 1


def test_the_solved_lines_come_once_the_files_are_written(env, fits_frame, tmp_path,
                                                          monkeypatch):
    """A capture program that reads the .wcs when it sees "solved" on standard output must
    find it (and the .solved flag, and the rest): the lines were printed before the files
    were written."""
    from skysolve.cli import solve_field as cli

    path, _, _ = fits_frame
    for name in ("SKYSOLVE_DB", "SKYSOLVE_CACHE"):
        monkeypatch.setenv(name, env[name])
    seen: list[tuple[str, list[str]]] = []

    class Watch:
        """Standard output that notes which files exist when each line is written."""

        def write(self, text: str) -> int:
            if text.strip():
                seen.append((text, sorted(p.name for p in tmp_path.iterdir())))
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Watch())
    assert cli.main(["-O", "-p", "-D", str(tmp_path), str(path)]) == 0
    solved_lines = [(text, files) for text, files in seen
                    if text.startswith(("Field 1", "Field center", "Field:", "  RA,Dec"))]
    assert len(solved_lines) == 6, seen
    for text, files in solved_lines:
        assert {f"orion{s}" for s in OUTPUTS} <= set(files), (text, files)


def test_warnings_are_one_line_each_on_stderr(env, fits_frame, tmp_path):
    """A FITS file with bytes after its last HDU makes astropy warn each time it is opened:
    that came out as four ``WARNING: ...`` lines of astropy's logger; now one
    ``skysolve-field: warning:`` line per input, and the fields still solve."""
    path, _, _ = fits_frame
    for name in ("a.fits", "b.fits"):
        (tmp_path / name).write_bytes(path.read_bytes() + b"\0" * 100)
    proc = solve_field(env, "-O", tmp_path / "a.fits", tmp_path / "b.fits")
    assert proc.returncode == 0 and proc.stdout.count("Field center: (RA,Dec)") == 2, \
        proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert line.startswith("skysolve-field: warning: ") and "padding" in line


@pytest.mark.parametrize("suffix", [".bmp", ".gif", ".pgm", ".webp"])
def test_bmp_gif_pnm_and_webp_frames_solve(env, tmp_path, suffix):
    """solve-field takes BMP, GIF and PNM images (it converts them first); skysolve-field
    refused them ("unrecognised leading bytes"), and WebP too. The real frame written by
    Pillow: 8 bits stretched over the sky for BMP, GIF and WebP (lossy, Pillow's default
    quality 80), its 16 bits for PGM."""
    from PIL import Image

    from skysolve.io.images import read_image

    u16 = read_image(DATA / ALT40)
    u8 = np.clip((u16.astype(np.float64) - 2800.0) / 16.0, 0, 255).astype(np.uint8)
    Image.fromarray(u16 if suffix == ".pgm" else u8).save(tmp_path / f"frame{suffix}")
    proc = solve_field(env, "-O", "-p", "-L", 10, "-H", 13, tmp_path / f"frame{suffix}")
    assert proc.returncode == 0, proc.stderr
    lines = parse(proc.stdout)
    # (within the 18" the reference pointing is known to)
    assert _separation_arcsec(lines["ra"], lines["dec"], *REFERENCE[ALT40]) < 18.0
    assert (tmp_path / "frame.solved").exists() and (tmp_path / "frame.new").exists()


def test_a_reference_pixel_sip_cannot_hold_still_writes_the_solution(env, fits_frame,
                                                                     tmp_path):
    """``--crpix-x/-y`` where no SIP polynomial holds the solution within 0.01" (2000 px
    off a 12 deg frame), or nowhere at all (1e300): the solved field's files are written
    about the image centre, as without the options, and one warning line says so. They
    were an error (status 1) and no file at all, the solution lost."""
    from astropy.io import fits

    path, cam, R = fits_frame
    assert solve_field(env, "-O", "-D", tmp_path / "default", path).returncode == 0
    default = fits.getheader(tmp_path / "default" / "orion.wcs")
    for args in (("--crpix-x", -2000, "--crpix-y", 3000), ("--crpix-x", "1e300")):
        out = tmp_path / str(args[1])
        proc = solve_field(env, "-O", *args, "-D", out, path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("Field center: (RA,Dec)") == 1
        for suffix in OUTPUTS:
            assert (out / f"orion{suffix}").exists(), suffix
        header = fits.getheader(out / "orion.wcs")
        for key in ("CTYPE1", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD2_1"):
            assert header[key] == default[key], key
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("skysolve-field: warning: --crpix-x/--crpix-y")
        assert "optical centre" in lines[0] and "Traceback" not in proc.stderr


def test_a_centre_just_short_of_ra_360_prints_as_0():
    """The centre's RA as printed stays in [0, 360): 360 - 1e-8 deg was
    ``360.000000`` in the "Field center" line (beside ``00:00:00.000``) and ``360`` in the
    match line. A hand-made result: 36"/px, north up, centred there."""
    from skysolve.cli.solve_field_run import field_lines, match_line

    class Result:
        cd_matrix = np.radians([[-0.01, 0.0], [0.0, 0.01]])

        def pixel_to_world(self, x, y):  # (small offsets: a flat patch of sky)
            return (360.0 - 1e-8 - 0.01 * x) % 360.0, 20.0 + 0.01 * y

    lines = field_lines(Result(), 100, 80)
    assert lines[0] == "Field center: (RA,Dec) = (0.000000, 20.000000) deg."
    assert lines[1] == "Field center: (RA H:M:S, Dec D:M:S) = (00:00:00.000, +20:00:00.000)."
    assert match_line(Result()).startswith("  RA,Dec = (0,20), pixel scale 36 ")
