"""astropy in and out: image containers with masks and noise maps, tables, SkyCoord, solve_image.

On the real 1024 x 768 frame: a mask over the left half must remove every star
there and keep every star of the right half that the unmasked frame gives
(same positions), whichever container carries the mask.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import skysolve
from skysolve.errors import InvalidArgumentError
from skysolve.tests.realframes import ALT40, DATA, FOV_DEG, REFERENCE


@pytest.fixture(scope="module")
def frame():
    return skysolve.read_image(DATA / ALT40).astype(np.float64)


@pytest.fixture(scope="module")
def unmasked(frame):
    return skysolve.extract_centroids(frame).as_array()


def _left_half(frame):
    mask = np.zeros(frame.shape, bool)
    mask[:, : frame.shape[1] // 2] = True
    return mask


def _containers(frame, mask):
    import astropy.units as u
    from astropy.nddata import CCDData, NDData
    from astropy.utils.masked import Masked

    return {"MaskedArray": np.ma.MaskedArray(frame, mask),
            "CCDData": CCDData(frame, unit="adu", mask=mask),
            "NDData": NDData(frame, mask=mask),
            # astropy's own masked arrays (the masked columns of a QTable are these)
            "Masked": Masked(frame, mask=mask),
            "MaskedQuantity": Masked(frame * u.adu, mask=mask)}


@pytest.mark.parametrize("kind", ["MaskedArray", "CCDData", "NDData", "Masked",
                                  "MaskedQuantity"])
def test_a_mask_removes_its_stars_and_keeps_the_others(frame, unmasked, kind):
    mask = _left_half(frame)
    got = skysolve.extract_centroids(_containers(frame, mask)[kind]).as_array()
    assert len(got) > 0
    assert np.all(got[:, 0] > 0)  # x > 0: the right (open) half only
    # every star of the open half (clear of the mask's edge) is kept where it was
    want = unmasked[unmasked[:, 0] > 8]
    assert len(want) >= 10
    d = np.hypot(want[:, None, 0] - got[None, :, 0], want[:, None, 1] - got[None, :, 1])
    assert np.all(d.min(axis=1) < 0.05), d.min(axis=1)


@pytest.mark.parametrize("kind", ["MaskedArray", "NDData", "Masked", "MaskedQuantity"])
def test_read_image_makes_masked_pixels_nan(frame, kind):
    mask = _left_half(frame)
    got = skysolve.read_image(_containers(frame, mask)[kind])
    assert np.all(np.isnan(got[mask])) and np.array_equal(got[~mask], frame[~mask])


def test_an_uncertainty_is_the_noise_map(frame, unmasked):
    from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty

    sigma = skysolve.extract_centroids(frame).background_sigma
    noise = np.full(frame.shape, sigma)
    flat = skysolve.extract_centroids(CCDData(frame, unit="adu",
                                              uncertainty=StdDevUncertainty(noise)))
    np.testing.assert_allclose(flat.as_array()[:, :2], unmasked[:, :2], atol=1e-6)
    # a hundredfold noise over the right half silences it; the left half is untouched
    noise[:, frame.shape[1] // 2:] *= 100.0
    loud = skysolve.extract_centroids(CCDData(frame, unit="adu",
                                              uncertainty=VarianceUncertainty(noise ** 2)))
    xy = loud.as_array()
    assert len(xy) and np.all(xy[:, 0] < 0)
    assert len(xy) >= np.sum(unmasked[:, 0] < -8)


def test_hdus_hdulists_and_quantities(frame, unmasked):
    import astropy.units as u
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    image = fits.ImageHDU(frame, name="SCI")
    for source, kw in ((image, {}), (fits.HDUList([primary, image]), {}),
                       (frame * u.adu, {})):
        got = skysolve.extract_centroids(source, **kw).as_array()
        np.testing.assert_allclose(got, unmasked, atol=1e-9)
    hdul = fits.HDUList([fits.PrimaryHDU(frame[::-1]), image])
    np.testing.assert_allclose(skysolve.read_image(hdul, hdu="SCI"), frame)
    # (a flag where the HDU goes: astropy reads True as index 1, the image)
    with pytest.raises(InvalidArgumentError, match="hdu must be an HDU index"):
        skysolve.read_image(hdul, hdu=True)
    # cubes in memory as in a file: a degenerate leading axis, three colour planes
    got = skysolve.extract_centroids(fits.PrimaryHDU(frame[None])).as_array()
    np.testing.assert_allclose(got, unmasked, atol=1e-9)
    np.testing.assert_allclose(skysolve.read_image(fits.PrimaryHDU(np.stack([frame] * 3))),
                               frame, rtol=1e-6)
    with pytest.raises(InvalidArgumentError, match="HDU"):
        skysolve.read_image(fits.HDUList([primary]))


def test_tables_out(frame):
    ext = skysolve.extract_centroids(frame)
    t = ext.to_table()
    assert len(t) == len(ext) and t.meta["origin"] == "center"
    np.testing.assert_allclose(t["x"], ext.as_array()[:, 0])
    z = ext.to_table(origin="zero")
    np.testing.assert_allclose(z["x"] - t["x"], frame.shape[1] / 2 - 0.5)
    cat = skysolve.Catalog([1, 2], [10.0, 20.0], [5.0, -5.0], [3.0, 4.0], epoch=2016.0)
    ct = cat.to_table()
    assert list(ct["id"]) == [1, 2] and ct["ra"].unit == "deg" and ct.meta["epoch"] == 2016.0


def test_solve_image_with_a_mask_and_its_tables(small_db, frame):
    from astropy.coordinates import SkyCoord
    from astropy.nddata import CCDData

    truth = SkyCoord(*REFERENCE[ALT40], unit="deg")
    res = skysolve.solve_image(DATA / ALT40, database=small_db, fov_estimate_deg=FOV_DEG)
    assert res and res.extraction is not None and len(res.extraction) > 20
    assert res.boresight.separation(truth).deg < 0.02
    table = res.to_table()
    assert len(table) == res.num_matches
    # the table's catalog positions are where the solution puts the matched centroids
    ra, dec = res.pixel_to_world(table["x"].value, table["y"].value)
    sep = SkyCoord(ra, dec, unit="deg").separation(table["sky"]).arcsec
    np.testing.assert_allclose(sep, table["residual"].value, atol=0.05)
    assert np.all(sep < 30.0)
    # a mask over a third of the frame still solves, and no matched star lies under it
    mask = np.zeros(frame.shape, bool)
    mask[:, : frame.shape[1] // 3] = True
    masked = skysolve.solve_image(CCDData(frame, unit="adu", mask=mask), database=small_db,
                                  fov_estimate_deg=FOV_DEG)
    assert masked and masked.boresight.separation(truth).deg < 0.02
    assert np.all(masked.to_table()["x"].value > -frame.shape[1] / 2 + frame.shape[1] // 3)
    with pytest.raises(InvalidArgumentError, match="image size"):
        skysolve.solve_image(frame, database=small_db, image_shape=frame.shape)
    with pytest.raises(InvalidArgumentError, match="header"):
        skysolve.solve_image(frame, database=small_db, obstime="header")


def test_solve_image_takes_obstime_from_a_fits_header(small_db, frame, tmp_path):
    from astropy.io import fits

    path = tmp_path / "frame.fits"
    fits.PrimaryHDU(frame, header=fits.Header({"DATE-OBS": "2019-07-29T20:47:26"})) \
        .writeto(path)
    res = skysolve.solve_image(path, database=small_db, fov_estimate_deg=FOV_DEG,
                               obstime="header")
    assert res and math.isclose(float(np.linalg.norm(res.observer_velocity_km_s)), 29.3,
                                abs_tol=0.1)


def test_obstime_header_falls_back_to_the_primary_header(small_db, frame, tmp_path):
    """A multi-extension FITS file keeps DATE-OBS in its primary header and the pixels
    in an extension: ``obstime="header"`` finds the time there (the image HDU's own,
    when it has one, first), from a file as from an HDUList."""
    from astropy.io import fits

    def hdul(image_date=None):
        image_header = fits.Header({"DATE-OBS": image_date} if image_date else {})
        return fits.HDUList([fits.PrimaryHDU(header=fits.Header(
            {"DATE-OBS": "2019-07-29T20:47:26"})), fits.ImageHDU(frame, image_header,
                                                                 name="SCI")])

    path = tmp_path / "mef.fits"
    hdul().writeto(path)
    want = skysolve.earth_barycentric_velocity("2019-07-29T20:47:26")
    for source, kw, word in ((path, {}, "header"), (path, {"hdu": "SCI"}, "Header"),
                             (hdul(), {}, " HEADER"), (hdul(), {"hdu": 1}, "header")):
        # (any case, as the FITS keys are read: 'HEADER' was taken for an ISO time)
        res = skysolve.solve_image(source, database=small_db, fov_estimate_deg=FOV_DEG,
                                   obstime=word, **kw)
        assert res, (source, kw)
        np.testing.assert_allclose(res.observer_velocity_km_s, want, atol=1e-9)
    # the image HDU's own time, half a year on, comes first
    res = skysolve.solve_image(hdul("2020-01-29T20:47:26"), database=small_db,
                               fov_estimate_deg=FOV_DEG, obstime="header")
    np.testing.assert_allclose(res.observer_velocity_km_s,
                               skysolve.earth_barycentric_velocity("2020-01-29T20:47:26"),
                               atol=1e-9)


def test_obstime_header_reads_an_ndata_meta_dict(small_db, frame):
    """``CCDData(..., meta={"DATE-OBS": ...})`` keeps its meta as a dict, not a FITS
    header: ``obstime="header"`` reads the time from it (any case of the keys) too."""
    from astropy.nddata import CCDData, NDData

    want = skysolve.earth_barycentric_velocity("2019-07-29T20:47:26")
    for image in (CCDData(frame, unit="adu", meta={"DATE-OBS": "2019-07-29T20:47:26"}),
                  NDData(frame, meta={"date-obs": "2019-07-29", "time-obs": "20:47:26"})):
        res = skysolve.solve_image(image, database=small_db, fov_estimate_deg=FOV_DEG,
                                   obstime="header")
        assert res
        np.testing.assert_allclose(res.observer_velocity_km_s, want, atol=1e-9)
    with pytest.raises(InvalidArgumentError, match="header"):
        skysolve.solve_image(NDData(frame, meta={"EXPTIME": 1.0}), database=small_db,
                             obstime="header")


def test_pixel_sky_conversions_and_wcs_give_catalog_positions_with_obstime(small_db, frame):
    # A solve that removes the annual aberration reports the aberration-free attitude,
    # but its pixel <-> sky conversions and WCS map the image onto catalog (ICRS)
    # positions, as a solve without the time does: not ~10" beside them.
    from astropy.coordinates import SkyCoord

    plain = skysolve.solve_image(frame, database=small_db, fov_estimate_deg=FOV_DEG)
    timed = skysolve.solve_image(frame, database=small_db, fov_estimate_deg=FOV_DEG,
                                 obstime="2019-07-29T20:47:26")
    assert plain and timed
    # the attitude moved ...
    assert SkyCoord(timed.ra_deg, timed.dec_deg, unit="deg").separation(
        plain.boresight).arcsec > 3
    # ... while the boresight SkyCoord, in ICRS, is the catalog position it points at:
    # astropy's own GCRS -> ICRS of the apparent direction (ra_deg, dec_deg) at the time,
    # and the solve without the time (~10" beside both when it was (ra_deg, dec_deg))
    from astropy.coordinates import GCRS
    from astropy.time import Time
    from astropy.utils import iers

    with iers.conf.set_temp("auto_download", False):
        apparent = SkyCoord(timed.ra_deg, timed.dec_deg, unit="deg",
                            frame=GCRS(obstime=Time("2019-07-29T20:47:26", scale="utc")))
        assert timed.boresight.separation(apparent.icrs).arcsec < 0.05
    assert timed.boresight.frame.name == "icrs"
    assert timed.boresight.separation(plain.boresight).arcsec < 1
    xy = timed.matched_xy
    cat = SkyCoord(timed.matched_radec_deg[:, 0], timed.matched_radec_deg[:, 1], unit="deg")
    for res in (plain, timed):
        ra, dec = res.pixel_to_world(xy[:, 0], xy[:, 1])
        assert np.median(SkyCoord(ra, dec, unit="deg").separation(cat).arcsec) < 6
        sky = res.to_wcs().pixel_to_world(xy[:, 0] + 511.5, xy[:, 1] + 383.5)
        assert np.median(sky.separation(cat).arcsec) < 6
        x, y = res.world_to_pixel(timed.matched_radec_deg[:, 0], timed.matched_radec_deg[:, 1])
        assert np.hypot(np.mean(x - xy[:, 0]), np.mean(y - xy[:, 1])) < 0.05  # px, no bias
    a = plain.to_wcs().pixel_to_world([0.0, 1023.0], [0.0, 767.0])
    b = timed.to_wcs().pixel_to_world([0.0, 1023.0], [0.0, 767.0])
    assert np.all(a.separation(b).arcsec < 4)  # (~10" without the conversion)
    assert timed.pixel_to_world(1e4, 0.0) is not None and timed.world_to_pixel(
        (timed.ra_deg + 180) % 360, -timed.dec_deg) is None


def test_an_uncertainty_of_another_shape_is_refused_by_name(frame):
    from astropy.nddata import NDData, StdDevUncertainty

    with pytest.raises(InvalidArgumentError, match=r"uncertainty has shape \(10, 10\)"):
        skysolve.extract_centroids(NDData(frame, uncertainty=StdDevUncertainty(np.ones((10, 10)))))


def test_an_uncertainty_in_its_own_unit_is_converted(frame, unmasked):
    """An uncertainty may carry a unit of its own (mJy for data in Jy): it is converted to
    the data's, for a standard deviation, a variance and an inverse variance alike."""
    import astropy.units as u
    from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty

    sigma = skysolve.extract_centroids(frame).background_sigma
    noise = np.full(frame.shape, sigma)  # in Jy, the data's unit
    for unc in (StdDevUncertainty(noise * 1000.0, unit=u.mJy),
                VarianceUncertainty((noise * 1000.0) ** 2, unit=u.mJy ** 2),
                InverseVariance(1.0 / (noise * 1000.0) ** 2, unit=u.mJy ** -2)):
        got = skysolve.extract_centroids(CCDData(frame, unit="Jy", uncertainty=unc))
        np.testing.assert_allclose(got.as_array()[:, :2], unmasked[:, :2], atol=1e-6)


def test_table_positions_must_be_pixels_in_the_origin_the_table_states(small_db, frame):
    import astropy.units as u
    from astropy.table import QTable

    ext = skysolve.extract_centroids(frame)
    kw = dict(fov_estimate_deg=FOV_DEG, image_width=1024, image_height=768)
    zero = ext.to_table(origin="zero")
    assert small_db.solve_from_centroids(zero, origin="zero", **kw)
    for wrong in ("fits", "center"):  # the table says 'zero' (its meta)
        with pytest.raises(InvalidArgumentError, match="origin"):
            small_db.solve_from_centroids(zero, origin=wrong, **kw)
    deg = QTable({"x": ext.as_array()[:, 0] * u.deg, "y": ext.as_array()[:, 1] * u.deg})
    with pytest.raises(InvalidArgumentError, match="pixels"):
        small_db.solve_from_centroids(deg, origin="center", **kw)
    pix = QTable({"x": ext.as_array()[:, 0] * u.pix, "y": ext.as_array()[:, 1] * u.pix})
    assert small_db.solve_from_centroids(pix, origin="center", **kw)


@pytest.mark.parametrize("fmt", ["fits", "ascii.ecsv"])
def test_a_table_written_to_a_file_still_states_its_origin(small_db, frame, tmp_path, fmt):
    """Written to FITS, the table's meta['origin'] comes back as the card ORIGIN: a table of
    1-based pixels solved with origin='zero' was taken, every star 1 px off (the WCS
    with them), without a word."""
    from astropy.table import Table

    ext = skysolve.extract_centroids(frame)
    path = tmp_path / f"stars.{fmt.split('.')[-1]}"
    ext.to_table(origin="fits").write(path, format=fmt)
    table = Table.read(path, format=fmt)
    kw = dict(fov_estimate_deg=FOV_DEG, image_width=1024, image_height=768)
    from astropy.coordinates import SkyCoord

    res = small_db.solve_from_centroids(table, origin="fits", **kw)
    assert res and res.boresight.separation(SkyCoord(*REFERENCE[ALT40], unit="deg")).deg < 0.02
    for wrong in ("zero", "center"):
        with pytest.raises(InvalidArgumentError, match="origin='fits'"):
            small_db.solve_from_centroids(table, origin=wrong, **kw)


def test_a_ccddata_file_keeps_its_mask(small_db, frame, tmp_path):
    """``CCDData.write`` puts the mask in a MASK extension: solving the file by its path
    honours it as solving the CCDData does."""
    from astropy.nddata import CCDData

    mask = np.zeros(frame.shape, bool)
    mask[:, : frame.shape[1] // 3] = True
    ccd = CCDData(frame, unit="adu", mask=mask)
    path = tmp_path / "ccd.fits"
    ccd.write(path)
    by_path = skysolve.solve_image(path, database=small_db, fov_estimate_deg=FOV_DEG)
    in_memory = skysolve.solve_image(ccd, database=small_db, fov_estimate_deg=FOV_DEG)
    assert by_path and in_memory
    np.testing.assert_allclose(by_path.extraction.as_array(), in_memory.extraction.as_array())
    for hdu in (0, "PRIMARY"):  # the primary HDU named is the same image, mask and all
        named = skysolve.solve_image(path, database=small_db, fov_estimate_deg=FOV_DEG, hdu=hdu)
        np.testing.assert_allclose(named.extraction.as_array(), in_memory.extraction.as_array())
    assert np.all(by_path.extraction.as_array()[:, 0] > -frame.shape[1] / 2 + frame.shape[1] // 3)


@pytest.mark.parametrize("database", ["small.db", 42])
def test_solve_image_refuses_a_database_that_is_not_one_by_name(frame, database):
    from skysolve.errors import InvalidTypeError

    with pytest.raises(InvalidTypeError, match="database must be a SolverDatabase"):
        skysolve.solve_image(frame, database=database)


def test_a_table_with_two_different_position_columns_is_refused(small_db, frame):
    """A table holding two pairs of position columns (``x``/``y`` beside photutils'
    ``xcentroid``/``ycentroid``) that disagree does not say which the positions are: no
    pair is picked silently. Equal pairs (a copy) are no ambiguity."""
    from astropy.table import Table

    z = skysolve.extract_centroids(frame).to_table(origin="zero")
    kw = dict(fov_estimate_deg=FOV_DEG, image_width=1024, image_height=768, origin="zero")
    both = Table({"x": z["x"] + 5.0, "y": z["y"], "xcentroid": z["x"], "ycentroid": z["y"],
                  "flux": z["brightness"]})
    with pytest.raises(InvalidArgumentError, match="x/y.*xcentroid/ycentroid"):
        small_db.solve_from_centroids(both, **kw)
    both["x"] = z["x"]
    res = small_db.solve_from_centroids(both, **kw)
    from astropy.coordinates import SkyCoord

    assert res and res.boresight.separation(SkyCoord(*REFERENCE[ALT40], unit="deg")).deg < 0.02


@pytest.mark.parametrize("origin", ["center", "zero", "fits"])
def test_the_matched_stars_table_in_each_pixel_convention(small_db, frame, origin):
    """``SolveResult.to_table(origin=)`` writes the matched stars' pixels in the input
    table's own convention (the rows of the table solved, unchanged), states it in its
    meta, and maps through ``to_wcs`` (0-based, 1-based) to the catalog positions; fed
    back, it solves alike with that origin and is refused with another."""
    from astropy.coordinates import SkyCoord

    ext = skysolve.extract_centroids(frame)
    given = ext.to_table(origin=origin)
    kw = dict(fov_estimate_deg=FOV_DEG, image_shape=frame.shape)
    res = small_db.solve_from_centroids(given, origin=origin, **kw)
    assert res
    out = res.to_table(origin=origin)
    assert out.meta["origin"] == origin
    rows = out["centroid"]
    np.testing.assert_allclose(out["x"].value, given["x"][rows], atol=1e-9)
    np.testing.assert_allclose(out["y"].value, given["y"][rows], atol=1e-9)
    if origin != "center":
        wcs = res.to_wcs()
        ra, dec = wcs.all_pix2world(out["x"].value, out["y"].value, 0 if origin == "zero" else 1)
        sep = SkyCoord(ra, dec, unit="deg").separation(out["sky"]).arcsec
        np.testing.assert_allclose(sep, out["residual"].value, atol=0.05)
    # (its meta carries the image's size: none is needed)
    again = small_db.solve_from_centroids(out, origin=origin, fov_estimate_deg=FOV_DEG)
    assert again and again.boresight.separation(res.boresight).arcsec < 1
    other = "fits" if origin == "zero" else "zero"
    with pytest.raises(InvalidArgumentError, match="meta"):
        small_db.solve_from_centroids(out, origin=other, **kw)


def test_a_table_with_masked_positions_names_the_rows(small_db, frame):
    from astropy.table import MaskedColumn, Table

    z = skysolve.extract_centroids(frame).to_table(origin="zero")
    t = Table({"xcentroid": MaskedColumn(z["x"], mask=np.arange(len(z)) == 3),
               "ycentroid": z["y"]})
    with pytest.raises(InvalidArgumentError, match=r"row 3 .*masked"):
        small_db.solve_from_centroids(t, origin="zero", image_shape=frame.shape)


def test_an_hdulist_skips_a_cube_as_its_file_does(frame, unmasked, tmp_path):
    """The first HDU that is an image, in memory as in a file: a data cube (not three
    colour planes) ahead of the image is passed over, not taken and refused."""
    from astropy.io import fits

    hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((5, 10, 10))), fits.ImageHDU(frame)])
    hdul.writeto(tmp_path / "cube.fits")
    np.testing.assert_array_equal(skysolve.read_image(tmp_path / "cube.fits"), frame)
    np.testing.assert_array_equal(skysolve.read_image(hdul), frame)
    np.testing.assert_allclose(skysolve.extract_centroids(hdul).as_array(), unmasked, atol=1e-9)


def test_a_table_in_array_pixels_needs_its_true_image_size(small_db, frame):
    """0- or 1-based pixels are centred about the image's centre: a wrong height moves
    every star. A table that states its image's size (``meta``, as ``to_table``
    writes) gives it, and a size given must agree with it; without any, the height
    is not guessed as the width (tetra3rs's square default) for such pixels."""
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    truth = SkyCoord(*REFERENCE[ALT40], unit="deg")
    table = skysolve.extract_centroids(frame).to_table(origin="zero")
    for kw in ({}, {"image_width": 1024}, {"image_shape": frame.shape}):
        res = small_db.solve_from_centroids(table, origin="zero", fov_estimate_deg=FOV_DEG, **kw)
        assert res and res.boresight.separation(truth).deg < 0.02, kw
    for kw in ({"image_shape": (700, 1000)}, {"image_height": 1024}):
        with pytest.raises(InvalidArgumentError, match="disagrees"):
            small_db.solve_from_centroids(table, origin="zero", fov_estimate_deg=FOV_DEG, **kw)
    bare = Table({"x": table["x"], "y": table["y"]})
    xy = np.column_stack([table["x"], table["y"]])
    for centroids in (bare, xy):
        with pytest.raises(InvalidArgumentError, match="image_height"):
            small_db.solve_from_centroids(centroids, origin="zero", fov_estimate_deg=FOV_DEG,
                                          image_width=1024)
        res = small_db.solve_from_centroids(centroids, origin="zero", fov_estimate_deg=FOV_DEG,
                                            image_width=1024, image_height=768)
        assert res and res.boresight.separation(truth).deg < 0.02


def test_a_structured_array_or_dataframe_of_centroids_is_a_table(small_db, frame):
    """sep's ``extract`` gives a numpy structured array (fields ``x``, ``y``, ``flux``;
    0-based pixels), and pandas users hold a DataFrame: each solves as the table of the
    same columns does, its pixel convention stated, and its rows counted as given."""
    pd = pytest.importorskip("pandas")
    from astropy.coordinates import SkyCoord

    z = skysolve.extract_centroids(frame).to_table(origin="zero")
    order = np.random.default_rng(3).permutation(len(z))  # not brightest first
    sep_like = np.zeros(len(z), dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    for name, col in (("x", "x"), ("y", "y"), ("flux", "brightness")):
        sep_like[name] = np.asarray(z[col])[order]
    kw = dict(fov_estimate_deg=FOV_DEG, image_shape=frame.shape)
    truth = SkyCoord(*REFERENCE[ALT40], unit="deg")
    for centroids in (sep_like, pd.DataFrame(sep_like)):
        res = small_db.solve_from_centroids(centroids, origin="zero", **kw)
        assert res and res.boresight.separation(truth).deg < 0.02
        rows = res.matched_centroids
        np.testing.assert_allclose(sep_like["x"][rows] - 511.5, res.matched_xy[:, 0])
        with pytest.raises(InvalidArgumentError, match="origin"):
            small_db.solve_from_centroids(centroids, **kw)


def test_a_sextractor_catalog_solves(small_db, frame):
    """SExtractor's catalogs (read by astropy) name positions X_IMAGE/Y_IMAGE (1-based
    FITS pixels) and fluxes FLUX_AUTO and the like; rows in any order."""
    from astropy.coordinates import SkyCoord
    from astropy.table import Table

    f = skysolve.extract_centroids(frame).to_table(origin="fits")
    order = np.random.default_rng(5).permutation(len(f))
    cat = Table({"NUMBER": np.arange(1, len(f) + 1), "X_IMAGE": f["x"][order],
                 "Y_IMAGE": f["y"][order], "FLUX_AUTO": f["brightness"][order]})
    res = small_db.solve_from_centroids(cat, origin="fits", fov_estimate_deg=FOV_DEG,
                                        image_shape=frame.shape)
    assert res and res.boresight.separation(SkyCoord(*REFERENCE[ALT40], unit="deg")).deg < 0.02
    np.testing.assert_allclose(cat["X_IMAGE"][res.matched_centroids] - 512.5,
                               res.matched_xy[:, 0])
    # a vector flux column (one value per aperture) cannot order the rows
    cat["FLUX_AUTO"] = np.column_stack([f["brightness"][order]] * 3)
    with pytest.raises(InvalidArgumentError, match="FLUX_AUTO"):
        small_db.solve_from_centroids(cat, origin="fits", fov_estimate_deg=FOV_DEG,
                                      image_shape=frame.shape)


def test_colour_planes_in_memory_are_taken_as_their_file_is(frame, tmp_path):
    """Three colour planes (3, H, W), as FITS stores colour: the file's luminance, and the
    same from its HDUList, HDU, ``fits.getdata`` array and a CCDData of it (each was
    refused as 'not a 2-D image'); a mask in one plane masks the pixel, and the noise
    map is the weighted sum's."""
    from astropy.io import fits
    from astropy.nddata import CCDData, StdDevUncertainty

    from skysolve.imagedata import LUMINANCE_WEIGHTS, as_image_data

    gains = np.array([0.6, 1.0, 0.8])[:, None, None]  # a colour frame: planes unequal
    planes = (frame[None] * gains).astype(np.float32)
    path = tmp_path / "colour.fits"
    fits.PrimaryHDU(planes).writeto(path)
    grey = skysolve.read_image(path)
    expected = np.tensordot(np.asarray(LUMINANCE_WEIGHTS), planes.astype(np.float64), 1)
    np.testing.assert_allclose(grey, expected, rtol=1e-5)
    want = skysolve.extract_centroids(grey).as_array()
    assert len(want) > 20
    with fits.open(path) as hdul:
        for source in (hdul, hdul[0], CCDData(planes, unit="adu")):
            np.testing.assert_allclose(skysolve.read_image(source), grey, rtol=1e-6)
            got = skysolve.extract_centroids(source).as_array()
            np.testing.assert_allclose(got, want, atol=1e-6)
        # a bare array of planes is read so too (extract_centroids asks for it read)
        np.testing.assert_allclose(skysolve.read_image(fits.getdata(path)), grey, rtol=1e-6)
        with pytest.raises(InvalidArgumentError, match=r"read_image.*\(3, H, W\)"):
            skysolve.extract_centroids(fits.getdata(path))
    mask = np.zeros(planes.shape, bool)
    mask[1, :, :100] = True  # one plane's left edge
    sigma = np.stack([np.full(frame.shape, s) for s in (3.0, 4.0, 5.0)])
    unpacked = as_image_data(CCDData(planes, unit="adu", mask=mask,
                                     uncertainty=StdDevUncertainty(sigma)))
    assert unpacked.data.shape == frame.shape
    np.testing.assert_array_equal(unpacked.mask, mask[1])
    w = np.asarray(LUMINANCE_WEIGHTS)
    np.testing.assert_allclose(unpacked.noise, np.sqrt(np.sum((w * [3.0, 4.0, 5.0]) ** 2)))
    # one mask and one noise map for the three planes (an NDData holds them; a CCDData
    # refuses them)
    from astropy.nddata import NDData

    unpacked = as_image_data(NDData(planes, mask=mask[1],
                                    uncertainty=StdDevUncertainty(sigma[0])))
    np.testing.assert_array_equal(unpacked.mask, mask[1])
    np.testing.assert_allclose(unpacked.noise, 3.0)
