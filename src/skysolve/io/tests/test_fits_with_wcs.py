"""``write_fits_with_wcs``: an input FITS file written back with a new solution in its image
header (``skysolve-field``'s ``.new``, ``skysolve solve --update-fits``).

Astropy reads such a file as ``WCS(header, hdulist)``: every distortion the header
names is applied, the new SIP and an old one alike. The solution is a known camera at a
known attitude; the file's WCS, read that way, must map the image as the camera does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from skysolve.camera.distortion import RadialDistortion
from skysolve.camera.model import CameraModel
from skysolve.geometry import angle_between, radec_roll_to_rotation, radec_to_vector
from skysolve.io.astrometry_files import write_fits_with_wcs
from skysolve.io.wcs import camera_to_wcs, wcs_to_header

W, H = 640, 480
CAMERA = CameraModel.from_fov(8.0, W, H, parity_flip=True,
                              distortion=RadialDistortion(k1=-3e-8))
R = radec_roll_to_rotation(83.8, -5.4, 37.0)


def _lookup_table_distortion(header: fits.Header) -> list[fits.ImageHDU]:
    """HST-style lookup-table distortion: ``CPDISj``/``DPj`` cards (and ``D2IMDISj``)
    naming ``WCSDVARR`` extensions of a 3 px shift."""
    for j in (1, 2):
        header[f"CPDIS{j}"] = "Lookup"
        header[f"CPERR{j}"] = 0.5
        for record in (f"EXTVER: {j}.0", "NAXES: 2", "AXIS.1: 1", "AXIS.2: 2"):
            header.append(fits.Card.fromstring(f"DP{j}     = '{record}'"))
    tables = []
    for j in (1, 2):
        hdu = fits.ImageHDU(np.full((8, 8), 3.0, np.float32), name="WCSDVARR")
        hdu.header["EXTVER"] = j
        for axis in (1, 2):
            hdu.header.update({f"CRPIX{axis}": 0.0, f"CRVAL{axis}": 0.0,
                               f"CDELT{axis}": 100.0})
        tables.append(hdu)
    return tables


def _max_error_arcsec(header: fits.Header, hdul: fits.HDUList | None,
                      camera: CameraModel = CAMERA) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header, hdul)
        if wcs.naxis > 2:  # (a cube's: its celestial axes)
            wcs = wcs.celestial
    col, row = np.meshgrid(np.linspace(0, W - 1, 9), np.linspace(0, H - 1, 7))
    ra, dec = wcs.all_pix2world(col.ravel(), row.ravel(), 0)
    t_ra, t_dec = camera.pixel_to_world(col.ravel() + 0.5 - W / 2, row.ravel() + 0.5 - H / 2, R)
    return float(np.max(np.degrees(angle_between(radec_to_vector(ra, dec),
                                                 radec_to_vector(t_ra, t_dec)))) * 3600)


@pytest.mark.parametrize("where", [0, 1])
def test_an_old_lookup_table_distortion_is_not_applied_on_top_of_the_new_wcs(tmp_path, where):
    """The .new kept CPDISj/DPj: astropy applied the input's lookup table (3 px) on top of
    the new SIP, 180" off."""
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 80.0,
                          "CRVAL2": -5.0, "CRPIX1": 320.5, "CRPIX2": 240.5, "CD1_1": -0.01,
                          "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 0.01, "OBJECT": "M42"})
    tables = _lookup_table_distortion(header)
    image = np.arange(W * H, dtype=np.float32).reshape(H, W)
    hdus = ([fits.PrimaryHDU(image, header=header)] if where == 0 else
            [fits.PrimaryHDU(), fits.ImageHDU(image, header=header, name="SCI")])
    fits.HDUList([*hdus, *tables]).writeto(tmp_path / "in.fits")
    with fits.open(tmp_path / "in.fits") as hdul:  # (the input's own WCS uses the tables)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert WCS(hdul[where].header, hdul).cpdis1 is not None

    solution = wcs_to_header(camera_to_wcs(CAMERA, R))
    solution.remove("NAXIS"), solution.remove("NAXIS1"), solution.remove("NAXIS2")
    write_fits_with_wcs(tmp_path / "out.fits", tmp_path / "in.fits", solution)
    with fits.open(tmp_path / "out.fits") as hdul:
        header = hdul[where].header
        assert not [k for k in header if k.split(".")[0] in (
            "CPDIS1", "CPDIS2", "CPERR1", "CPERR2", "DP1", "DP2")], list(header)
        assert header["OBJECT"] == "M42"
        np.testing.assert_array_equal(hdul[where].data, image)
        assert _max_error_arcsec(header, hdul) < 0.01


def test_replace_wcs_leaves_no_old_polynomial_for_astropy_to_apply():
    """A header holding an old SCAMP TPV solution (``PVi_m``), SIP terms, CDELT/CROTA2 and
    an FK4 ``RADECSYS``: ``replace_wcs`` (behind ``SolveResult.update_header``) leaves the
    new WCS alone, mapping the image as the camera does; a plain ``header.update`` of the
    same cards (a TAN solution without SIP) keeps the old SIP terms, which astropy then
    applies to it. The header's other cards stay, and its ``NAXIS`` cards are its own."""
    from skysolve.io.wcs import replace_wcs

    old = fits.Header({"NAXIS": 2, "NAXIS1": W, "NAXIS2": H, "EXPTIME": 10.0,
                       "CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "CRVAL1": 80.0,
                       "CRVAL2": -5.0, "CRPIX1": 320.5, "CRPIX2": 240.5, "CDELT1": -0.01,
                       "CDELT2": 0.01, "CROTA2": 12.0, "RADECSYS": "FK4", "EQUINOX": 1950.0,
                       "PV1_1": 1.0, "PV1_4": 3e-3, "PV2_1": 1.0, "PV2_5": -4e-3,
                       "A_ORDER": 2, "A_2_0": 2e-5, "B_ORDER": 2, "B_0_2": -2e-5})
    plain = CAMERA.replace(distortion=None)  # (a plain TAN solution: no SIP of its own)
    solution = wcs_to_header(camera_to_wcs(plain, R))
    merged = old.copy()
    merged.update(solution)
    replaced = old.copy()
    replace_wcs(replaced, solution)
    assert replaced["EXPTIME"] == 10.0 and replaced["RADESYS"] == "ICRS"
    assert (replaced["NAXIS1"], replaced["NAXIS2"]) == (W, H)
    assert not [k for k in replaced if k.startswith("PV") or k in ("CROTA2", "RADECSYS",
                                                                    "EQUINOX")]
    assert replaced["CDELT1"] == 1.0  # (the new WCS's, with its PC matrix)
    assert _max_error_arcsec(replaced, None, plain) < 0.01
    assert _max_error_arcsec(merged, None, plain) > 10.0  # (astropy uses the old SIP)
    with pytest.raises(TypeError, match="header must be"):
        replace_wcs(dict(old), solution)


@pytest.mark.parametrize("old", [
    {"PC001001": 0.5, "PC001002": 0.5, "PC002001": -0.5, "PC002002": 0.5},  # 1996 draft
    {"PC01_01": 0.5, "PC01_02": 0.5, "PC02_01": -0.5, "PC02_02": 0.5},  # leading zeros
    {"WCSAXES": 3, "CTYPE3": "RGB", "CRVAL3": 1.0, "CRPIX3": 1.0, "CDELT3": 1.0,
     "PC1_1": 1.0, "PC2_2": 1.0, "PC3_3": 1.0},  # a colour cube's three axes
    {"CD001001": -1e-3, "CD002002": 1e-3},
], ids=["PC001001", "PC01_01", "PC3_3", "CD001001"])
def test_replace_wcs_leaves_no_old_matrix_in_any_spelling(old):
    """A solution in the CD form (as ``skysolve-field`` writes its ``.new``) over a header
    whose old matrix is spelt otherwise than ``PC1_1``: the old cards stayed, and wcslib,
    finding a PC matrix, took it with unit CDELT and dropped the new CD matrix (the
    ``.new`` 90 deg off at its corners). A cube's third axis keeps its own cards."""
    from skysolve.io.wcs import replace_wcs

    plain = CAMERA.replace(distortion=None)
    solution = wcs_to_header(camera_to_wcs(plain, R))
    cd = np.diag([solution["CDELT1"], solution["CDELT2"]]) @ np.array(
        [[solution.get(f"PC{i}_{j}", float(i == j)) for j in (1, 2)] for i in (1, 2)])
    for key in ("CDELT1", "CDELT2", "PC1_1", "PC1_2", "PC2_1", "PC2_2"):
        solution.remove(key, ignore_missing=True)
    for (i, j), value in np.ndenumerate(cd):
        solution[f"CD{i + 1}_{j + 1}"] = value
    header = fits.Header({"NAXIS": 2, "NAXIS1": W, "NAXIS2": H, "CTYPE1": "RA---TAN",
                         "CTYPE2": "DEC--TAN", "CRVAL1": 10.0, "CRVAL2": 41.0,
                         "CRPIX1": 320.5, "CRPIX2": 240.5, "CDELT1": -0.01,
                         "CDELT2": 0.01, **old})
    replace_wcs(header, solution)
    assert _max_error_arcsec(header, None, plain) < 0.01
    assert header.get("CTYPE3") == old.get("CTYPE3")


def _decompressed_checksum_warnings(path, tmp_path) -> list[str]:
    """HDU 1 of ``path`` decompressed by astropy and written uncompressed with its header
    (where a compressed HDU's ZHECKSUM and ZDATASUM become CHECKSUM and DATASUM), then
    read with ``checksum=True``: the warnings."""
    with fits.open(path) as hdul:
        header, data = hdul[1].header.copy(), hdul[1].data.copy()
    out = tmp_path / "decompressed.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header)]).writeto(out, overwrite=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(out, checksum=True) as hdul:
            for hdu in hdul:
                _ = hdu.data
    return [str(w.message) for w in caught]


def test_a_compressed_images_stale_header_checksum_is_not_written(tmp_path):
    """A tile-compressed image whose ZHECKSUM and ZDATASUM are its decompressed HDU's sums
    (as compressing writers may store them): written with a WCS, its decompressed header
    no longer has that ZHECKSUM, which is dropped; ZDATASUM still holds (the tiles are as
    stored), and the compressed HDU's own CHECKSUM is recomputed. (The old ZHECKSUM was
    copied: the decompressed HDU failed verification.)"""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 4000, (H, W)).astype(np.int16)
    source = tmp_path / "packed.fits.fz"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(pixels, fits.Header({"OBJECT": "M42"}))]
                 ).writeto(source, checksum=True)
    with fits.open(source) as hdul:  # the decompressed HDU's sums, with their comments
        plain = fits.ImageHDU(hdul[1].data, hdul[1].header.copy())
    plain.add_checksum()
    with fits.open(source, mode="update", disable_image_compression=True) as hdul:
        for key in ("CHECKSUM", "DATASUM"):
            hdul[1].header[{"CHECKSUM": "ZHECKSUM", "DATASUM": "ZDATASUM"}[key]] = (
                plain.header[key], plain.header.comments[key])
        hdul[1].add_checksum()
    assert _decompressed_checksum_warnings(source, tmp_path) == []  # (the source is sound)

    out = tmp_path / "new.fits"
    write_fits_with_wcs(out, source, wcs_to_header(camera_to_wcs(CAMERA, R)))
    assert _decompressed_checksum_warnings(out, tmp_path) == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(out, checksum=True) as hdul:
            assert hdul[1].header["CTYPE1"].startswith("RA---")
            np.testing.assert_array_equal(hdul[1].data, pixels)
    assert [str(w.message) for w in caught] == []
    with fits.open(out, disable_image_compression=True) as hdul:
        assert "ZHECKSUM" not in hdul[1].header
        assert hdul[1].header["ZDATASUM"] == plain.header["DATASUM"]
