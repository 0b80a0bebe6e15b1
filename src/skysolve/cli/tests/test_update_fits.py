"""``skysolve solve --update-fits`` writes the input FITS file back with the solution in the
header of the HDU the image was read from, and nothing else changed.

One simulated frame (1024 x 768, 12.3 deg, mirrored; camera and attitude known) stored
three ways an astronomer meets: behind a data cube in the primary HDU, tile-compressed
with quantised floats, and with the old FK4 / CDELT WCS and checksums of an archive
file. Each ``.solved.fits`` is read back with astropy: the image HDU's WCS maps the image
within 1" of the truth, the stored pixels are the input's, and the checksums verify.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from skysolve.camera.model import CameraModel

pytestmark = pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")

W, H = 1024, 768


@pytest.fixture(scope="module")
def db_file(small_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("update_fits_db") / "small.db"
    small_db.save_to_file(path)
    return path


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory):
    env = dict(os.environ)
    env["SKYSOLVE_CACHE"] = str(tmp_path_factory.mktemp("update_fits_cache"))
    env.pop("SKYSOLVE_DB", None)
    return env


@pytest.fixture(scope="module")
def frame(hip_catalog):
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    cam = CameraModel.from_fov(12.3, W, H, parity_flip=True)
    R = radec_roll_to_rotation(83.8, -5.4, 37.0)
    image, _ = render_starfield(hip_catalog.propagate(2025.0), cam, R, seed=5)
    return image, cam, R


def _old_wcs():
    """A stale archive WCS: FK4 B1950, CDELT/CROTA2, SIP terms, a name."""
    from astropy.io import fits

    return fits.Header({"CTYPE1": "RA---TAN-SIP", "CTYPE2": "DEC--TAN-SIP", "CRVAL1": 10.0,
                        "CRVAL2": 40.0, "CRPIX1": 100.0, "CRPIX2": 200.0, "CDELT1": -0.01,
                        "CDELT2": 0.01, "CROTA2": 33.0, "RADECSYS": "FK4",
                        "EQUINOX": 1950.0, "A_ORDER": 2, "A_2_0": 1e-5, "B_ORDER": 2,
                        "B_0_2": 1e-5, "WCSNAME": "old", "OBJECT": "Orion"})


@pytest.fixture(scope="module")
def solved(frame, db_file, cli_env, tmp_path_factory):
    """The three inputs and their ``.solved.fits`` (one run of the command)."""
    from astropy.io import fits

    image, _, _ = frame
    folder = tmp_path_factory.mktemp("update_fits")
    paths = {name: folder / f"{name}.fits" for name in ("cube", "packed", "archive")}
    # a 5-plane cube first: read_image skips it for the 2-D image in extension 1
    fits.HDUList([fits.PrimaryHDU(np.zeros((5, 16, 16), np.float32)),
                  fits.ImageHDU(image, header=_old_wcs(), name="SCI")]
                 ).writeto(paths["cube"])
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
        image.astype(np.float32), header=_old_wcs(), compression_type="RICE_1",
        quantize_level=4.0)]).writeto(paths["packed"], checksum=True)
    stored = np.round(image + 1000.0).clip(0, 65535).astype(np.uint16)
    fits.PrimaryHDU(stored, header=_old_wcs()).writeto(paths["archive"], checksum=True)
    proc = subprocess.run([sys.executable, "-m", "skysolve", "solve", *map(str, paths.values()),
                           "--db", str(db_file), "--fov", "12.3", "--no-aberration",
                           "--update-fits"], capture_output=True, text=True, env=cli_env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = {name: path.with_name(f"{name}.solved.fits") for name, path in paths.items()}
    assert all(p.exists() for p in out.values()), os.listdir(folder)
    return paths, out


def _max_error_arcsec(header, cam, R):
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

    col, row = np.meshgrid(np.linspace(0, W - 1, 9), np.linspace(0, H - 1, 7))
    ra, dec = WCS(header).all_pix2world(col.ravel(), row.ravel(), 0)
    t_ra, t_dec = cam.pixel_to_world(col.ravel() + 0.5 - W / 2, row.ravel() + 0.5 - H / 2, R)
    return float(np.max(SkyCoord(ra, dec, unit="deg").separation(
        SkyCoord(t_ra, t_dec, unit="deg")).arcsec))


def test_the_wcs_goes_to_the_image_hdu_not_a_cube_before_it(frame, solved):
    """The image HDU kept its old SIP WCS (319,000" off) and the cube in the primary HDU,
    which the solve never read, got the solution."""
    from astropy.io import fits

    _, cam, R = frame
    paths, out = solved
    with fits.open(out["cube"]) as new, fits.open(paths["cube"]) as old:
        assert _max_error_arcsec(new["SCI"].header, cam, R) < 1.0
        assert "CTYPE1" not in new[0].header  # the cube is left as it was
        np.testing.assert_array_equal(new["SCI"].data, old["SCI"].data)


def test_a_compressed_image_keeps_its_stored_pixels(frame, solved):
    """Decoded and compressed again, the quantised floats moved (by up to 1.8 ADU)."""
    from astropy.io import fits

    _, cam, R = frame
    paths, out = solved
    with fits.open(out["packed"]) as new, fits.open(paths["packed"]) as old:
        assert isinstance(new[1], fits.CompImageHDU)
        np.testing.assert_array_equal(new[1].data, old[1].data)
        assert _max_error_arcsec(new[1].header, cam, R) < 1.0


@pytest.mark.parametrize("name", ["packed", "archive"])
def test_checksums_verify_and_no_old_wcs_key_is_left(frame, solved, name):
    """A CHECKSUM of the old header failed verification (the compressed HDU's was dropped);
    the old RADECSYS = 'FK4' and EQUINOX = 1950 stayed beside the new ICRS."""
    from astropy.io import fits

    _, cam, R = frame
    paths, out = solved
    def sums(hdul):  # per HDU: 1 verified, 2 absent, 0 failed
        return [(h.verify_checksum(), h.verify_datasum()) for h in hdul]

    with fits.open(paths[name]) as old:
        want = sums(old)
    assert (1, 1) in want
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(out[name], checksum=True) as hdul:
            index = len(hdul) - 1
            header = hdul[index].header
            assert sums(hdul) == want
            data = hdul[index].data
            stale = {k: header[k] for k in ("RADECSYS", "EQUINOX", "CROTA2", "A_ORDER",
                                            "A_2_0", "WCSNAME") if k in header}
            assert stale == {} or stale == {"EQUINOX": 2000.0}, stale
            assert header.get("CDELT1") != -0.01
            assert header["OBJECT"] == "Orion"  # the image's own keys are kept
            assert _max_error_arcsec(header, cam, R) < 1.0
        with fits.open(paths[name]) as old:
            np.testing.assert_array_equal(data, old[index].data)
    assert not [w for w in caught if "hecksum" in str(w.message)], name
