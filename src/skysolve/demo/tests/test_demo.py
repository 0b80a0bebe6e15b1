"""The demo's TESS-like frames: SPOC layout, truth vs image, WCS, caching; the offset metric."""

from __future__ import annotations

import datetime
import io
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("tesswcs")

from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from skysolve.demo import frames, run  # noqa: E402
from skysolve.errors import InvalidArgumentError  # noqa: E402
from skysolve.extraction import extract_centroids  # noqa: E402
from skysolve.geometry import angle_between, radec_to_vector, vector_to_radec  # noqa: E402
from skysolve.sky.catalogs import load_gaia  # noqa: E402

SECTOR = 1


@pytest.fixture(scope="module")
def gaia():
    return load_gaia()


@pytest.fixture(scope="module")
def frame(gaia):
    """Sector 1's frame, rendered in memory, with its truth."""
    return frames.render_frame(SECTOR, catalog=gaia)


def _header_wcs(hdul) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(hdul[1].header)


def test_spoc_layout(frame):
    hdul, truth = frame
    assert len(hdul) == 2
    assert hdul[0].data is None
    assert hdul[1].name == "CAMERA.CCD 1.1 CAL"
    data = hdul[1].data
    assert data.shape == (2078, 2136) and data.dtype == np.float32
    ph = hdul[0].header
    assert (ph["TELESCOP"], ph["SECTOR"], ph["CAMERA"], ph["CCD"]) == ("TESS", SECTOR, 1, 1)
    assert ph["INSTRUME"] == "TESS Photometer"
    assert hdul[1].header["BUNIT"] == "electrons/s"
    # the seed parses the times with this exact format: 30 minutes in the middle of sector 1
    t0 = datetime.datetime.strptime(ph["DATE-OBS"], "%Y-%m-%dT%H:%M:%S.%f")
    t1 = datetime.datetime.strptime(ph["DATE-END"], "%Y-%m-%dT%H:%M:%S.%f")
    assert t1 - t0 == datetime.timedelta(minutes=30)
    assert datetime.datetime(2018, 8, 7) < t0 < datetime.datetime(2018, 8, 9)
    assert ph["TSTOP"] - ph["TSTART"] == pytest.approx(1800 / 86400, abs=1e-9)

    # collateral pixels: zero-mean read noise in e-/s; no starlight
    sigma = frames.READ_NOISE_E / frames.EXPOSURE_S
    for region in (data[:, :44], data[:, 2092:], data[2048:, 44:2092]):
        assert abs(float(region.mean())) < 0.05 * sigma
        assert float(region.std()) == pytest.approx(sigma, rel=0.03)
    science = data[:2048, 44:2092]
    sky = float(np.median(science))
    assert 20.0 < sky < 300.0  # e-/s: tens to hundreds
    # the sky has a gradient: the quadrant medians differ by more than the noise
    q = [np.median(science[r:r + 1024, c:c + 1024]) for r in (0, 1024) for c in (0, 1024)]
    assert max(q) - min(q) > 1.0
    # saturated stars bleed along their columns (several pixels at the full well, in e-/s)
    full = frames.FULL_WELL_E / frames.EXPOSURE_S
    assert truth.saturated.any()
    col_runs = (science >= 0.999 * full).sum(axis=0)
    assert col_runs.max() >= 5


def _separation_arcsec(w1, w2, pix) -> np.ndarray:
    a = w1.all_pix2world(pix, 0)
    b = w2.all_pix2world(pix, 0)
    sep = angle_between(radec_to_vector(a[:, 0], a[:, 1]), radec_to_vector(b[:, 0], b[:, 1]))
    return np.degrees(sep) * 3600.0


# the seed's science-centre pixel in full-frame coordinates, and the science corners
_PIX = np.array([[1024 + 44, 1024], [44, 0], [2091, 2047], [44, 2047], [2091, 0]], float)


def test_header_wcs_is_the_sector_wcs(frame):
    import tesswcs

    hdul, _ = frame
    header_wcs = _header_wcs(hdul)
    assert "SIP" in header_wcs.wcs.ctype[0] and header_wcs.sip is not None
    assert _separation_arcsec(header_wcs, frames.sector_wcs(SECTOR), _PIX).max() < 1e-4
    # the archival pointing, reference pixel and SIP are kept exactly...
    archival = tesswcs.WCS.from_sector(SECTOR, 1, 1)
    assert np.allclose(header_wcs.wcs.crval, archival.wcs.crval, rtol=0, atol=1e-12)
    assert np.allclose(header_wcs.wcs.crpix, archival.wcs.crpix, rtol=0, atol=1e-12)
    assert np.allclose(header_wcs.sip.a, archival.sip.a, rtol=1e-12, atol=0)
    assert np.allclose(header_wcs.sip.bp, archival.sip.bp, rtol=1e-12, atol=0)
    # ...and the shared plate scale moves the mapping by well under a pixel (21")
    sep = _separation_arcsec(header_wcs, archival, _PIX)
    assert sep[0] < 0.05 and sep.max() < 3.0


def test_sector_wcs_archival_and_shared_optics():
    import tesswcs

    for sector in (1, 14):
        archival = frames.sector_wcs(sector, shared_optics=False)
        assert _separation_arcsec(archival, tesswcs.WCS.from_sector(sector, 1, 1),
                                  _PIX).max() < 1e-6
    # shared optics: every sector has the same scale-and-skew part of CD (polar decomposition)
    stretch = [frames._polar(frames.sector_wcs(s).pixel_scale_matrix)[1] for s in (1, 14, 17)]
    assert np.allclose(stretch[0], stretch[1], rtol=1e-9) and np.allclose(stretch[0], stretch[2],
                                                                          rtol=1e-9)
    archival = [frames._polar(frames.sector_wcs(s, shared_optics=False).pixel_scale_matrix)[1]
                for s in (1, 14)]
    assert not np.allclose(archival[0], archival[1], rtol=1e-5)


def test_truth_positions_follow_the_header_wcs(frame, gaia):
    """Each catalog star's epoch position through the header WCS lands on its truth pixel."""
    hdul, truth = frame
    header_wcs = _header_wcs(hdul)
    sel = np.flatnonzero(truth.in_catalog & truth.on_image)[:500]
    assert sel.size == 500
    index = {int(i): k for k, i in enumerate(gaia.ids)}
    rows = np.array([index[int(i)] for i in truth.catalog_id[sel]])
    cat = gaia.select(rows).propagate(hdul[0].header["SSEPOCH"])
    ra, dec = vector_to_radec(cat.vectors())
    col, row = header_wcs.all_world2pix(ra, dec, 0, tolerance=1e-9, maxiter=100)
    x = col - 44 + 0.5 - 1024
    y = row + 0.5 - 1024
    assert np.max(np.hypot(x - truth.x[sel], y - truth.y[sel])) < 1e-5


def test_extraction_recovers_truth_of_isolated_stars(frame):
    """Seed extraction on the science region finds isolated stars at their truth to 0.02 px."""
    from scipy.spatial import cKDTree

    hdul, truth = frame
    img = hdul[1].data.astype(np.float32)[:2048, 44:2092]
    ext = extract_centroids(img, **run.SEED_EXTRACTION)
    xy = np.array([[c.x, c.y] for c in ext.centroids])
    assert len(xy) > 1000

    pts = np.column_stack([truth.x, truth.y])
    tree = cKDTree(pts)
    # isolated: no other star brighter than 0.1 % of it within 8 px; unsaturated;
    # 10 px from the edges
    isolated = np.ones(len(pts), bool)
    for i, j in tree.query_pairs(8.0, output_type="ndarray"):
        if truth.flux[j] > 1e-3 * truth.flux[i]:
            isolated[i] = False
        if truth.flux[i] > 1e-3 * truth.flux[j]:
            isolated[j] = False
    inner = (np.abs(truth.x) < 1014) & (np.abs(truth.y) < 1014)
    peak = truth.flux / (2 * np.pi * 1.2**2) / frames.EXPOSURE_S
    bright = peak > 2.0 * ext.threshold  # comfortably detected, e-/s
    sel = np.flatnonzero(isolated & inner & ~truth.saturated & bright)
    assert sel.size > 200
    d, k = cKDTree(xy).query(pts[sel], distance_upper_bound=1.0)
    found = np.isfinite(d)
    assert found.mean() > 0.98  # comfortably detectable isolated stars are all found
    err = d[found]
    assert float(np.sqrt(np.mean(err**2))) <= 0.02
    assert float(np.percentile(err, 95)) <= 0.04


def test_frames_are_cached_and_reused(tmp_path, gaia):
    paths, rendered = frames.ensure_frames(tmp_path, [SECTOR], faint_star_depth_mag=0.0,
                                         progress=False)
    assert rendered == 1
    path = paths[0]
    assert path == tmp_path / "tess_same_ccd" / "sector01_cam1_ccd1.fits"
    original = path.read_bytes()
    stamp = path.stat().st_mtime_ns

    paths2, rendered2 = frames.ensure_frames(tmp_path, [SECTOR], faint_star_depth_mag=0.0,
                                           progress=False)
    assert (paths2, rendered2) == (paths, 0)
    assert path.stat().st_mtime_ns == stamp

    # a damaged frame fails its checksum and is rendered again, identically (seeded)
    damaged = bytearray(original)
    damaged[-100_000] ^= 0xFF
    path.write_bytes(bytes(damaged))
    _, rendered3 = frames.ensure_frames(tmp_path, [SECTOR], faint_star_depth_mag=0.0,
                                      progress=False)
    assert rendered3 == 1
    with fits.open(path) as new, fits.open(io.BytesIO(original)) as old:
        assert np.array_equal(new[1].data, old[1].data)
        assert new[1].header.tostring().split("CHECKSUM")[0] == \
            old[1].header.tostring().split("CHECKSUM")[0]

    # other frame parameters invalidate the cache
    assert not frames._frame_is_valid(path, SECTOR, 1.0)
    assert not frames._frame_is_valid(path, SECTOR, 0.0, shared_optics=False)
    assert frames._frame_is_valid(path, SECTOR, 0.0)
    with fits.open(path) as hdul:
        assert hdul[0].header["SSFAINT"] == 0.0


def test_wcs_offset_metric():
    from skysolve.camera.model import CameraModel
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.io.wcs import camera_to_wcs

    cam = CameraModel.from_fov(12.0, 2048, 2048)
    R = radec_roll_to_rotation(120.0, -40.0, 30.0)
    solved = camera_to_wcs(cam, R)
    truth = camera_to_wcs(cam, R, pixel_offset=(44, 0))
    assert run.wcs_offset_arcsec(solved, truth) == pytest.approx((0.0, 0.0), abs=1e-6)
    # a one-pixel shift of the truth shows up as one pixel everywhere (~21"/px here)
    shifted = camera_to_wcs(cam, R, pixel_offset=(45, 0))
    scale = np.degrees(cam.pixel_scale()) * 3600
    mx, rms = run.wcs_offset_arcsec(solved, shifted)
    assert mx == pytest.approx(scale, rel=0.01)
    assert rms == pytest.approx(scale, rel=0.01)


def test_main_arguments(capsys):
    assert run.main(["--no-such-option"]) == 2
    assert run.main(["--help"]) == 0
    assert "--workdir" in capsys.readouterr().out
    assert run.main(["--sectors", "0"]) == 1
    assert "sector" in capsys.readouterr().err
    with pytest.raises(InvalidArgumentError, match="distinct"):
        run.run_demo("unused", [1, 1], out=io.StringIO())


def test_ellipse_lines_follow_the_covariance():
    cov = np.array([[[4.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 2.0]]])
    lines = run._ellipse_lines(np.array([10.0, 0.0]), np.array([5.0, 0.0]), cov, 2.0, npts=400)
    # every point d of a k-sigma ellipse has d^T cov^-1 d = k^2
    d0 = lines[0] - [10.0, 5.0]
    d1 = lines[1]
    for d, c in ((d0, cov[0]), (d1, cov[1])):
        m = np.einsum("ni,ij,nj->n", d, np.linalg.inv(c), d)
        assert np.allclose(m, 4.0)
    assert np.max(np.abs(d0[:, 0])) == pytest.approx(4.0, rel=1e-4)


@pytest.mark.slow
def test_demo_end_to_end(tmp_path_factory, capsys):
    """The whole demo: frames, database, the seed's passes, table, figures, exit status."""
    # shared with the radial test below: the frames are rendered once per worker
    workdir = tmp_path_factory.getbasetemp() / "demo_shared" / "demo_output"
    out = io.StringIO()
    report = run.run_demo(workdir, progress=False, out=out)
    text = out.getvalue()
    assert [p["pass"] for p in report.passes] == [1, 2, 3, 4]
    assert all(p["solved"] == 10 for p in report.passes)
    assert "Pass 4: 10/10 solved, calibration RMSE" in text
    assert report.passes[-1]["rmse_after_px"] < 0.05
    assert report.num_solved == 10
    assert [r.sector for r in report.results] == list(frames.DEFAULT_SECTORS)
    for r in report.results:
        assert r.num_matches >= 150
        assert r.rmse_arcsec <= run.TARGET_RMSE_ARCSEC
        assert r.offset_rms_arcsec < 0.3  # the solved mapping follows the true WCS
        assert r.offset_max_arcsec <= 1.0  # everywhere in the image
        assert r.offset_max_arcsec >= r.offset_rms_arcsec
        assert re.search(rf"^\s+{r.sector}\s+{r.num_matches}\s", text, re.M)
        # the last calibration's figures of the frame: its plate scale (one physical
        # camera: equal within a few sigma), held-out residual and 1-sigma map
        assert abs(r.scale_ppm) < 5 * r.scale_sigma_ppm + 1.0
        assert 0 < r.holdout_px < 0.05 and 0 < r.sigma_max_arcsec < 0.2
    cal = report.calibration
    assert cal.holdout_rmse_px == pytest.approx(cal.rmse_after_px, rel=0.2)
    assert "held-out (5-fold over stars)" in text and "Scale-1 (ppm)" in text
    assert [p.name for p in report.figures] == ["demo_frames.png", "demo_distortion.png",
                                               "demo_uncertainty.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in report.figures)
    assert "Summary: PASS" in text and report.targets_met

    # a second run, from the command line's entry point, reuses frames and database, finds
    # the same stars, and its exit status follows the targets
    capsys.readouterr()
    assert run.main(["--workdir", str(workdir), "--no-plots"]) == 0
    second = capsys.readouterr().out
    assert "(0 rendered, 10 cached)" in second and "(loaded:" in second
    for r in report.results:
        assert re.search(rf"^\s+{r.sector}\s+{r.num_matches}\s", second, re.M)
    assert "Summary: PASS" in second and "Figure:" not in second


@pytest.mark.slow
# uncalibrated TESS solves are the case LensModelWarning is for (pixels of distortion)
@pytest.mark.filterwarnings("ignore::skysolve.LensModelWarning")
def test_radial_calibration_finds_the_optical_axis_off_the_ccd(tmp_path_factory):
    """tetra3rs's own radial test on the demo frames: from uncalibrated solves, the
    Brown-Conrady fit with its free centres finds the camera's axis ~1500 px off the CCD
    centre, beyond its corner, and brings the residuals from pixels to ~0.02 px."""
    from skysolve.calibration.radial import metric_axis
    from skysolve.io.wcs import wcs_to_camera

    workdir = tmp_path_factory.getbasetemp() / "demo_shared" / "demo_output"
    paths, _ = frames.ensure_frames(workdir, frames.DEFAULT_SECTORS, progress=False)
    db, _ = run._load_or_build_database(workdir, False, False)
    cents = []
    for path in paths:
        image = fits.getdata(path, ext=1).astype(np.float32)[:2048, 44:2092]
        cents.append(extract_centroids(image, sigma_threshold=180.0, min_pixels=4,
                                       local_bg_block_size=16, max_elongation=6.0,
                                       matched_filter_sigma=None).centroids)
    res = [db.solve_from_centroids(c, fov_estimate_deg=11.8, fov_max_error_deg=0.5,
                                   image_shape=(2048, 2048), match_radius=0.005) for c in cents]
    assert all(res)
    cal = db.calibrate_camera(res, cents, image_shape=(2048, 2048), model="radial")
    assert cal.rmse_before_px > 3.0 and cal.rmse_after_px < 0.05
    assert cal.crpix_fitted
    # the true axis: where the principal directions of the true WCS's metric meet
    truth, _ = wcs_to_camera(frames.sector_wcs(1), 2048, 2048, pixel_offset=(44, 0))
    axis = metric_axis(truth, 2048, 2048)
    assert np.hypot(*axis) > 1400.0  # far beyond the image (the SIP origin is its centre)
    assert np.hypot(*(cal.camera_model.crpix - axis)) < 20.0
