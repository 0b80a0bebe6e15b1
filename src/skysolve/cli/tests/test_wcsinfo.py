"""``skysolve-wcsinfo`` read the way KStars/Ekos (StellarSolver) reads astrometry.net's
``wcsinfo``: each line split on a space into a key and a value.

Known answers: a TAN header written by hand with a known pointing, scale, rotation and
parity; and the ``.wcs`` that ``skysolve-field`` writes for a simulated frame, whose
centre, rotation and parity must be those its standard output states.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skysolve.cli.wcsinfo import _format, main, wcs_summary

from .test_solve_field import env, fits_frame, parse, solve_field  # noqa: F401

#: The keys StellarSolver's external solver reads from wcsinfo.
READ_KEYS = ("ra_center", "dec_center", "orientation_center", "fieldw", "fieldh",
             "fieldunits", "ra_center_hms", "dec_center_dms", "pixscale", "parity")


def _run(*args) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("skysolve-wcsinfo")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "skysolve.cli.wcsinfo"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def _read_like_stellarsolver(stdout: str) -> dict[str, str]:
    out = {}
    for line in stdout.split("\n"):
        kv = line.split(" ")
        if len(kv) > 1:
            out[kv[0]] = kv[1]
    return out


def _tan_header(width: int, height: int, scale_arcsec: float, up_deg: float, pos: bool,
                ra: float = 83.8, dec: float = -5.4):
    """A TAN header at the image centre: up (+y) ``up_deg`` E of N; ``pos`` parity is
    the sky as seen (east left of north, det CD < 0)."""
    from astropy.io import fits

    s, t = scale_arcsec / 3600.0, math.radians(up_deg)
    east_x = -1.0 if pos else 1.0  # the x axis's component along east
    cd = s * np.array([[east_x * math.cos(t), math.sin(t)],
                       [-east_x * math.sin(t), math.cos(t)]])
    return fits.Header({
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra, "CRVAL2": dec,
        "CRPIX1": 0.5 + width / 2, "CRPIX2": 0.5 + height / 2, "CUNIT1": "deg",
        "CUNIT2": "deg", "CD1_1": cd[0, 0], "CD1_2": cd[0, 1], "CD2_1": cd[1, 0],
        "CD2_2": cd[1, 1], "IMAGEW": width, "IMAGEH": height})


@pytest.mark.parametrize("up, pos", [(30.0, True), (-120.0, False), (179.0, True)])
def test_a_hand_written_tan_header(up, pos):
    width, height, scale = 1024, 768, 36.0
    got = wcs_summary(_tan_header(width, height, scale, up, pos))
    assert math.isclose(got["ra_center"], 83.8, abs_tol=1e-9)
    assert math.isclose(got["dec_center"], -5.4, abs_tol=1e-9)
    for key in ("orientation", "orientation_center"):
        assert math.isclose(got[key], up, abs_tol=1e-6), key
    assert got["parity"] == (-1 if pos else 1)
    assert math.isclose(got["pixscale"], scale, rel_tol=1e-9)
    assert got["imagew"] == width and got["imageh"] == height
    assert got["crpix0"] == 512.5 and got["crpix1"] == 384.5
    # the angle between the edges' midpoints of a TAN field about its tangent point
    s = math.radians(scale / 3600.0)
    assert got["fieldunits"] == "degrees"
    assert math.isclose(got["fieldw"], math.degrees(2 * math.atan(width / 2 * s)), rel_tol=1e-9)
    assert math.isclose(got["fieldh"], math.degrees(2 * math.atan(height / 2 * s)),
                        rel_tol=1e-9)
    assert got["ra_center_hms"] == "05:35:12.000" and got["dec_center_dms"] == "-05:24:00.000"


def test_a_colour_cube_header():
    """A third axis (a colour or spectral cube) is not in the way."""
    h = _tan_header(1024, 768, 36.0, 30.0, True)
    h.update({"WCSAXES": 3, "CTYPE3": "FREQ", "CRVAL3": 5e14, "CRPIX3": 1.0,
              "CDELT3": 1e13, "NAXIS": 3, "NAXIS1": 1024, "NAXIS2": 768, "NAXIS3": 3})
    got = wcs_summary(h)
    assert math.isclose(got["ra_center"], 83.8, abs_tol=1e-9)
    assert math.isclose(got["orientation_center"], 30.0, abs_tol=1e-6)


def test_small_fields_in_arcminutes_and_arcseconds():
    assert wcs_summary(_tan_header(1000, 800, 2.0, 0.0, True))["fieldunits"] == "arcminutes"
    got = wcs_summary(_tan_header(100, 80, 0.1, 0.0, True))
    assert got["fieldunits"] == "arcseconds"
    assert math.isclose(got["fieldw"], 10.0, rel_tol=1e-6)


def test_an_off_centre_reference_pixel_reports_the_image_centre():
    """The tangent point at a corner: the centre's position and orientation are those
    the mapping gives there (astropy's own), not the reference pixel's."""
    from astropy.wcs import WCS

    h = _tan_header(1024, 768, 36.0, 30.0, True, ra=10.0, dec=70.0)
    h["CRPIX1"], h["CRPIX2"] = 1.0, 1.0
    got = wcs_summary(h)
    ra, dec = WCS(h).all_pix2world(512.5, 384.5, 1)
    assert math.isclose(got["ra_center"], float(ra), abs_tol=1e-9)
    assert math.isclose(got["dec_center"], float(dec), abs_tol=1e-9)
    assert math.isclose(got["orientation"], 30.0, abs_tol=1e-9)
    # at 70 deg north the meridians converge: up at the centre is not up at the corner;
    # astropy's position angle from the centre to a pixel just above it
    from astropy.coordinates import SkyCoord

    up_ra, up_dec = WCS(h).all_pix2world(512.5, 384.51, 1)
    pa = SkyCoord(ra, dec, unit="deg").position_angle(SkyCoord(up_ra, up_dec, unit="deg"))
    assert abs(got["orientation_center"] - 30.0) > 1.0
    assert math.isclose(got["orientation_center"], pa.wrap_at("180d").deg, abs_tol=1e-3)


def test_the_wcs_skysolve_field_writes(env, fits_frame, tmp_path):  # noqa: F811
    path, cam, R = fits_frame
    proc = solve_field(env, "-O", "-p", "--dir", tmp_path, "-L", 11, "-H", 13.5, path)
    assert proc.returncode == 0, proc.stderr
    lines = parse(proc.stdout)
    run = _run(tmp_path / "orion.wcs")
    assert run.returncode == 0, run.stderr
    got = _read_like_stellarsolver(run.stdout)
    assert set(READ_KEYS) <= set(got)
    assert math.isclose(float(got["ra_center"]), lines["ra"], abs_tol=2e-6)
    assert math.isclose(float(got["dec_center"]), lines["dec"], abs_tol=2e-6)
    assert math.isclose(float(got["orientation_center"]), lines["rotation"], abs_tol=1e-3)
    assert got["parity"] == "-1" and lines["parity"] == "pos"  # StellarSolver: -1 is pos
    unit = {"degrees": 1.0, "arcminutes": 1 / 60.0, "arcseconds": 1 / 3600.0}
    width = float(got["fieldw"]) * unit[got["fieldunits"]]
    assert math.isclose(width, lines["width_deg"], rel_tol=1e-4)
    # the truth: 12.3 deg across, the scale at the centre
    assert abs(width - 12.3) < 0.05
    scale = 3600.0 * math.degrees(1.0 / cam.focal_length_px)
    assert math.isclose(float(got["pixscale"]), scale, rel_tol=2e-3)


def test_bad_files_and_command_lines(tmp_path, capsys):
    from astropy.io import fits

    assert main([str(tmp_path / "missing.wcs")]) == 1
    fits.PrimaryHDU().writeto(tmp_path / "plain.fits")
    assert main([str(tmp_path / "plain.fits")]) == 1
    (tmp_path / "text.wcs").write_text("not a FITS file")
    assert main([str(tmp_path / "text.wcs")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "celestial WCS" in err[1], err
    assert "not a FITS file" in err[2]  # (not astropy's words on its reader's options)
    (tmp_path / "cut.wcs").write_bytes(b"SIMPLE  = T")
    assert main([str(tmp_path / "cut.wcs")]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    h = _tan_header(100, 80, 1.0, 0.0, True)
    del h["IMAGEW"], h["IMAGEH"]
    fits.PrimaryHDU(header=h).writeto(tmp_path / "nosize.wcs")
    assert main([str(tmp_path / "nosize.wcs")]) == 1
    assert main([]) == 255
    assert main(["a.wcs", "--bogus"]) == 255
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("skysolve-wcsinfo: ") for e in err), err
    assert "image size" in err[0]


@pytest.mark.parametrize("ra, want_hms", [
    (359.99999999, "00:00:00.000"),  # 23:59:59.9999976 rounds to the next day: 00h, not 24h
    (15.0 * 59.9995 / 3600.0, "00:01:00.000"),  # 59.9995 s carries into the minute
    (15.0 * (23 + 59 / 60 + 59.9994 / 3600), "23:59:59.999"),
])
def test_sexagesimal_rounding_carries_and_wraps_at_24h(ra, want_hms):
    """Rounded to the millisecond the centre's RA carries into minutes and hours and wraps
    at 24h (it printed ``24:00:00.000``, which no reader takes for 0h); the same function
    writes skysolve-field's "Field center" line."""
    from skysolve.io.astrometry_files import sexagesimal

    assert sexagesimal(ra, 0.0)[0] == want_hms
    assert sexagesimal(ra, 89.99999999)[1] == "+90:00:00.000"
    assert sexagesimal(ra, -(59 + 59.9996 / 60) / 60)[1] == "-01:00:00.000"
    assert sexagesimal(ra, 12.5)[1] == "+12:30:00.000"


def test_ra_center_is_in_0_360_whatever_the_headers_crval():
    """A header's CRVAL1 may be negative (or 360 and more): the centre's RA is the same
    direction in [0, 360) (it was the header's -0.5, printed ``-00:02:00.000``)."""
    for crval, want in ((-0.5, 359.5), (-360.25, 359.75), (720.5, 0.5)):
        got = wcs_summary(_tan_header(1024, 768, 36.0, 30.0, True, ra=crval, dec=10.0))
        assert math.isclose(got["ra_center"], want, abs_tol=1e-9), crval
        assert got["ra_center_hms"] == {359.5: "23:58:00.000", 359.75: "23:59:00.000",
                                        0.5: "00:02:00.000"}[want]
    # as printed (12 significant digits): 360 - 1e-11 deg is 0, as its 00:00:00.000 is
    h = _tan_header(1024, 768, 36.0, 30.0, True, ra=360.0 - 1e-11, dec=10.0)
    got = _read_like_stellarsolver("".join(f"{k} {_format(v)}\n"
                                           for k, v in wcs_summary(h).items()))
    assert 0.0 <= float(got["ra_center"]) < 360.0 and got["ra_center_hms"] == "00:00:00.000"


def test_a_colour_new_file_with_sip_terms():
    """A colour FITS input's ``.new`` is a 3-axis image (NAXIS3 = 3) with a 2-axis TAN-SIP
    WCS (what ``skysolve-field --crpix-x/-y`` writes for it): astropy refuses to read SIP
    with three axes, so wcsinfo failed ("SIP distortions only work in 2 dimensions").
    Known answer: astropy's reading of the same header as a 2-D image's."""
    from astropy.io import fits
    from astropy.wcs import WCS

    h = _tan_header(1024, 768, 36.0, 30.0, True, ra=120.0, dec=40.0)
    h["CRPIX1"], h["CRPIX2"] = 1.0, 1.0
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    h.update({"A_ORDER": 2, "B_ORDER": 2, "A_2_0": 2e-6, "A_0_2": -1e-6, "B_1_1": 3e-6,
              "WCSAXES": 2})
    plain = WCS(h)
    ra, dec = plain.all_pix2world(512.5, 384.5, 1)
    cube = fits.Header({"SIMPLE": True, "BITPIX": 16, "NAXIS": 3, "NAXIS1": 1024,
                        "NAXIS2": 768, "NAXIS3": 3})
    cube.update(h)
    got = wcs_summary(cube)
    assert math.isclose(got["ra_center"], float(ra), abs_tol=1e-9)
    assert math.isclose(got["dec_center"], float(dec), abs_tol=1e-9)
    assert got == wcs_summary(h)


@pytest.mark.parametrize("header, want", [
    # a 1024 x 768 field at 40"/px across RA 0 (up 30 deg E of N, the sky as seen), and a
    # 1024 x 1024 one at 70"/px holding the north pole; the values astrometry.net 0.93's
    # wcsinfo prints for the same headers
    ((1024, 768, 40.0, 30.0, True, 0.5, 10.0),
     {"pixx_tangent": 512.5, "pixy_tangent": 384.5, "ra_center_h": 0, "ra_center_m": 2,
      "ra_center_s": 0.0, "dec_center_sign": 1, "dec_center_d": 10, "dec_center_m": 0,
      "ra_center_merc": 0.0013888889, "dec_center_merc": 0.52791989, "fieldarea": 97.0904,
      "decmin": 3.4846, "decmax": 16.4914, "ramin": -6.61348, "ramax": 7.65043,
      "ra_min_merc": 0.0212512, "ra_max_merc": 0.981629, "dec_min_merc": 0.546455,
      "dec_max_merc": 0.509685, "merc_diff": 0.960378, "merczoom": 1}),
    ((1024, 1024, 70.0, 10.0, False, 100.0, 85.0),
     {"ra_center_h": 6, "ra_center_m": 40, "dec_center_d": 85, "fieldarea": 396.452,
      "decmin": 71.8747, "decmax": 90.0, "ramin": 0.0, "ramax": 360.0, "ra_min_merc": 1.0,
      "ra_max_merc": 0.0, "dec_min_merc": 6.55187, "dec_max_merc": 0.792157,
      "merc_diff": 5.75971, "merczoom": -2})])
def test_the_bounds_mercator_and_sexagesimal_keys_are_wcsinfos(header, want):
    # (before: 22 of wcsinfo's keys were not printed; scripts read ramin ... decmax)
    got = wcs_summary(_tan_header(*header))
    keys = list(got)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=2e-5, abs=2e-6), key
    # wcsinfo's order
    assert keys.index("pixx_tangent") == keys.index("dec_tangent") + 1
    assert keys[-6:] == ["ra_min_merc", "ra_max_merc", "dec_min_merc", "dec_max_merc",
                         "merc_diff", "merczoom"]
