"""The multi-pass workflow (skysolve.calibration.workflow): one implementation, any executor."""

from __future__ import annotations

import concurrent.futures as cf
import pickle
import warnings

import numpy as np
import pytest

from skysolve import CameraModel, SolverDatabase
from skysolve.batch import DatabaseHandle, frame_centroids, is_centroid_source, run_tasks
from skysolve.calibration.workflow import (
    SEED_PASSES,
    CalibrationPass,
    calibrate_frames,
    seed_passes,
)
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.geometry import radec_to_vector
from skysolve.simulate import random_attitudes, simulate_centroids

W, H = 1024, 768


@pytest.fixture(scope="module")
def frames(hip_catalog):
    """Six fields of a mildly distorted 15-degree camera, and that camera."""
    from skysolve import RadialDistortion

    truth = CameraModel.from_fov(15.0, W, H, distortion=RadialDistortion(k1=-4e-8))
    cat = hip_catalog.propagate(2025.0)
    cents = [simulate_centroids(cat, truth, R, centroid_noise_px=0.1, num_stars=60,
                                max_magnitude=8.0, seed=k).centroids
             for k, R in enumerate(random_attitudes(6, rng=11))]
    return truth, cents


def _fingerprint(run):
    """Every number of a run that serial and parallel runs must share."""
    out = []
    for p in run.passes:
        out.append([(r.rotation_matrix_icrs_to_camera.tobytes(), r.matched_centroids.tobytes())
                    if r else r.status for r in p.solutions])
        cal = p.calibration
        out.append((cal.rmse_before_px, cal.rmse_after_px, cal.n_inliers,
                    cal.camera_model.focal_length_px))
    return out


def test_seed_schedule():
    assert seed_passes() == SEED_PASSES
    assert [(p.match_radius, p.order) for p in SEED_PASSES] == [
        (0.01, 3), (0.005, 4), (0.003, 5), (0.002, 6)]
    # the command line's default: --passes 4 --order 4
    assert [p.order for p in seed_passes(4, 4)] == [3, 4, 4, 4]
    assert [p.match_radius for p in seed_passes(6)] == [0.01, 0.005, 0.003, 0.002, 0.002, 0.002]
    assert {p.model for p in seed_passes(3, model="radial")} == {"radial"}
    assert "order 3" in SEED_PASSES[0].describe() and "0.01" in SEED_PASSES[0].describe()


@pytest.mark.parametrize("kw, exc", [
    (dict(match_radius=0.0), InvalidArgumentError), (dict(match_radius=1.5), InvalidArgumentError),
    (dict(match_radius="0.1"), InvalidTypeError), (dict(match_radius=0.01, order=0),
                                                  InvalidArgumentError),
    (dict(match_radius=0.01, model="spline"), InvalidArgumentError),
    (dict(match_radius=0.01, refine_iterations=1.5), InvalidTypeError),
])
def test_pass_checks_its_fields(kw, exc):
    with pytest.raises(exc):
        CalibrationPass(**kw)


def test_passes_improve_and_recover_the_camera(small_db, frames):
    truth, cents = frames
    passes = [CalibrationPass(0.01, model="radial"), CalibrationPass(0.004, model="radial")]
    seen = []
    run = calibrate_frames(cents, small_db, passes, fov_estimate_deg=14.0,
                           fov_max_error_deg=2.0, image_shape=(H, W), progress=False,
                           on_pass=seen.append)
    assert run.completed and [p.number for p in seen] == [1, 2]
    assert all(p.num_solved == len(cents) for p in run.passes)
    assert run.passes[1].calibration.rmse_after_px <= run.passes[0].calibration.rmse_before_px
    cam = run.camera_model
    assert cam.focal_length_px == pytest.approx(truth.focal_length_px, rel=2e-3)
    assert cam.distortion.k1 == pytest.approx(-4e-8, rel=0.1)
    # the final solve uses the fitted camera
    assert run.final is not None and all(run.final)
    # (each solve refines its own plate scale: a factor within 1e-3 of the camera's)
    for r in run.final:
        assert r.camera_model.distortion == cam.distortion
        assert np.array_equal(r.camera_model.crpix, cam.crpix)
        assert r.camera_model.focal_length_px == pytest.approx(cam.focal_length_px, rel=1e-3)
    assert run.solutions is run.final


def test_per_frame_velocities_and_last_pass_figures(small_db, frames):
    """Each frame's own observer velocity reaches its solves and its stars in the fit;
    validation and bootstrap run in the last pass only."""
    truth, cents = frames
    velocities = [None, [5.0, -29.0, 3.0]] + [[29.8 * np.cos(k), 29.8 * np.sin(k), 1.0]
                                              for k in range(4)]
    passes = [CalibrationPass(0.01, order=2), CalibrationPass(0.004, order=3)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = calibrate_frames(cents, small_db, passes, fov_estimate_deg=14.0,
                               fov_max_error_deg=2.0, image_shape=(H, W), progress=False,
                               observer_velocities_km_s=velocities,
                               calibration_options={"bootstrap": 5, "validation_folds": 3})
    # order 2 cannot represent the k1 lens, but the first pass is provisional: no warning
    assert run.passes[0].calibration.residual_pattern.significant
    assert not run.passes[1].calibration.residual_pattern.significant
    assert not [w for w in caught if "pattern over the image" in str(w.message)]
    for p in run.passes:
        assert p.solutions[0].observer_velocity_km_s is None
        np.testing.assert_allclose(p.solutions[1].observer_velocity_km_s, velocities[1])
        assert p.calibration.per_image_velocity_km_s[0] is None
        np.testing.assert_allclose(p.calibration.per_image_velocity_km_s[5], velocities[5])
    first, last = run.passes[0].calibration, run.passes[1].calibration
    assert first.validation is None and first.uncertainty.bootstrap_covariance is None
    assert last.validation.folds == 3 and last.uncertainty.n_bootstrap == 5
    assert all(r.observer_velocity_km_s is not None for r in run.final[1:])
    with pytest.raises(InvalidArgumentError, match="observer_velocities_km_s"):
        calibrate_frames(cents, small_db, passes, image_shape=(H, W), progress=False,
                         observer_velocities_km_s=velocities[:2])
    with pytest.raises(InvalidArgumentError, match=r"observer_velocities_km_s\[1\]"):
        calibrate_frames(cents, small_db, passes, image_shape=(H, W), progress=False,
                         observer_velocities_km_s=[None, [1.0, 2.0]] + [None] * 4)


def test_serial_threads_and_processes_agree(small_db, frames, tmp_path):
    _, cents = frames
    path = tmp_path / "small.db"
    small_db.save_to_file(path)  # so that worker processes open it by path
    kw = dict(passes=seed_passes(2), fov_estimate_deg=14.0, fov_max_error_deg=2.0,
              image_shape=(H, W), progress=False)
    serial = calibrate_frames(cents, small_db, **kw)
    with cf.ThreadPoolExecutor(2) as pool:
        threads = calibrate_frames(cents, small_db, executor=pool, **kw)
    with cf.ProcessPoolExecutor(2) as pool:
        procs = calibrate_frames(cents, small_db, executor=pool, **kw)
    assert _fingerprint(serial) == _fingerprint(threads) == _fingerprint(procs)


def test_a_pass_that_solves_nothing_stops_the_run(small_db):
    rng = np.random.default_rng(0)
    noise = [np.column_stack([rng.uniform(-W / 2, W / 2, 20), rng.uniform(-H / 2, H / 2, 20)])
             for _ in range(3)]
    run = calibrate_frames(noise, small_db, fov_estimate_deg=14.0, image_shape=(H, W),
                           progress=False)
    assert not run.completed and len(run.passes) == 1
    assert run.passes[0].calibration is None and run.camera_model is None
    assert run.final is None and run.solutions == run.passes[0].solutions


def test_bad_inputs_are_named(small_db, frames):
    _, cents = frames
    with pytest.raises(InvalidArgumentError, match="image size is unknown"):
        calibrate_frames(cents, small_db, progress=False)
    with pytest.raises(InvalidArgumentError, match="at least one frame"):
        calibrate_frames([], small_db, image_shape=(H, W), progress=False)
    with pytest.raises(InvalidTypeError, match="passes"):
        calibrate_frames(cents, small_db, passes=[(0.01, 3)], image_shape=(H, W))
    with pytest.raises(InvalidArgumentError, match="640x480"):
        calibrate_frames(cents, small_db, camera_model=CameraModel.from_fov(10, 640, 480),
                         image_shape=(H, W), progress=False)
    with pytest.raises(InvalidTypeError, match="solve_options"):
        calibrate_frames(cents, small_db, solve_options=5, image_shape=(H, W))
    images = [np.zeros((H, W), np.float32), np.zeros((H, W + 2), np.float32)]
    with pytest.raises(InvalidArgumentError, match="frame 1: image size 1026x768 differs"):
        calibrate_frames(images, small_db, progress=False)


def test_frame_sources():
    xy = np.zeros((10, 3))
    assert is_centroid_source(xy) and is_centroid_source(xy[:, :2])
    assert is_centroid_source([[1.0, 2.0]]) and is_centroid_source([])
    assert not is_centroid_source(np.zeros((5, 8))) and not is_centroid_source("a.fits")
    got, shape = frame_centroids(xy)
    assert got is xy and shape is None
    img = np.zeros((40, 50), np.float32)
    img[20, 25] = 100.0
    ext, shape = frame_centroids(img)
    assert shape == (40, 50) and ext.image_width == 50
    with pytest.raises(InvalidTypeError, match="frame"):
        frame_centroids(5)


def test_database_handle_travels_by_path(small_db, tmp_path):
    assert DatabaseHandle(small_db).database is small_db
    path = tmp_path / "db.bin"
    small_db.save_to_file(path)
    loaded = SolverDatabase.load_from_file(path)
    assert loaded.file_path == str(path)
    blob = pickle.dumps(DatabaseHandle(loaded))
    assert len(blob) < 1000  # the path, not the arrays
    back = pickle.loads(blob).database
    assert isinstance(back, SolverDatabase) and back.num_patterns == small_db.num_patterns
    np.testing.assert_array_equal(back.pattern_keys, small_db.pattern_keys)
    # a database without a file travels as its arrays
    fresh = SolverDatabase.generate_from_catalog(loaded_catalog := _tiny_catalog(),
                                                 max_fov_deg=30.0, progress=False)
    assert loaded_catalog is not None and fresh.file_path is None
    assert pickle.loads(pickle.dumps(DatabaseHandle(fresh))).database.num_stars == fresh.num_stars


def _tiny_catalog():
    from skysolve import Catalog

    rng = np.random.default_rng(1)
    v = rng.normal(size=(300, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360
    dec = np.degrees(np.arcsin(v[:, 2]))
    return Catalog(np.arange(300), ra, dec, rng.uniform(0, 6, 300))


def test_run_tasks_keeps_input_order():
    with cf.ThreadPoolExecutor(2) as pool:
        assert run_tasks(abs, [-3, 1, -2], executor=pool, progress=False) == [3, 1, 2]
    assert run_tasks(abs, (x for x in [-1, -5]), progress=False) == [1, 5]


def test_a_section_is_calibrated_as_part_of_the_whole_image(small_db, hip_catalog, tmp_path):
    """Four top-right 800x600 px sections of a 1600x1200 px, 30 deg lens with barrel
    distortion (optical axis 25, -15 px off the frame's centre), calibrated: the run's
    camera is the whole image's, the optical centre where the whole image has it (the
    frame's centre, the polynomial taking the rest), and it solves another frame's
    section through ``solve_many`` as the truth does. Before, the camera was the
    section's, about the section's centre: read as a camera of the whole image (as
    cameras are) 2812" off over the section (575" median), its focal length 8 px short
    (about its own centre it was right to 0.8", as this one is about the frame's)."""
    from skysolve import RadialDistortion, solve_many
    from skysolve.camera.model import read_camera_file
    from skysolve.geometry import angle_between
    from skysolve.simulate import render_starfield

    truth = CameraModel.from_fov(30.0, 1600, 1200, crpix=(25.0, -15.0),
                                 distortion=RadialDistortion(k1=-0.03, scale=800.0))
    cat = hip_catalog.propagate(2025.0)
    attitudes = random_attitudes(5, rng=3)
    images = [render_starfield(cat, truth, R, seed=k)[0] for k, R in enumerate(attitudes)]
    x0, y0, w, h = 800, 0, 800, 600
    section = "[0:600, 800:1600]"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a loose first pass)
        run = calibrate_frames(images[:4], small_db, seed_passes(3, 6), fov_estimate_deg=15.0,
                               fov_max_error_deg=3.0, section=section,
                               calibration_options={"validation_folds": 0})
    assert run.completed and run.image_shape == (h, w)
    cam = run.camera_model
    assert cam.image_shape == (1200, 1600) and run.calibration.camera_model.image_shape == (h, w)
    assert run.section == ((x0, y0, w, h), (1200, 1600))
    np.testing.assert_allclose(cam.crpix, (0.0, 0.0), atol=1e-9)  # the frame's centre
    assert abs(cam.focal_length_px - truth.focal_length_px) < 1.5  # measured 0.4 px
    cols, rows = np.meshgrid(np.linspace(x0, x0 + w, 9), np.linspace(y0, y0 + h, 7))
    x, y = cols.ravel() - 800, rows.ravel() - 600
    got, want = cam.pixel_to_vectors(x, y), truth.pixel_to_vectors(x, y)
    u, _, vt = np.linalg.svd(want.T @ got)  # the camera frames differ by a rotation
    assert np.max(angle_between(got @ (u @ vt).T, want)) * 206265 < 3.0  # measured 0.8"
    run.save_camera(tmp_path / "cam.json")
    saved, record = read_camera_file(tmp_path / "cam.json")
    assert saved == cam and record["section"] == {"x0": x0, "y0": y0, "width": w, "height": h}
    # the sigma map in the whole image's centred pixels: over the section's
    assert min(record["sigma_map"]["x"]) > 0 and max(record["sigma_map"]["y"]) < 0
    r = solve_many([images[4]], small_db, camera_model=saved, section=section, jobs=1,
                   progress=False, solve_timeout_ms=None)[0]
    assert r, r.error
    sky = r.result.pixel_to_world(cols.ravel() - x0 - w / 2, rows.ravel() - y0 - h / 2)
    err = angle_between(radec_to_vector(*sky),
                        radec_to_vector(*truth.pixel_to_world(x, y, attitudes[4])))
    assert np.max(err) * 206265 < 3.0  # measured 1.0"


def test_a_sections_camera_file_gives_the_fitted_optical_centre_of_the_whole_image(
        small_db, frames, tmp_path):
    """The six 1024x768 frames taken for the section at (300, 200) of a 2000x1500 image:
    the camera file's fitted ``crpix_x``, ``crpix_y`` (the uncertainty's values) are the
    written camera's, in the whole image's pixels, as its sigma map is. They were the
    section's (-3.9, -0.7 where the camera has -191.9, -166.7)."""
    import dataclasses

    from skysolve.camera.model import read_camera_file

    _, cents = frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a loose first pass)
        run = calibrate_frames(cents, small_db, seed_passes(2, model="radial"),
                               fov_estimate_deg=15.0, fov_max_error_deg=2.0, image_shape=(H, W),
                               calibration_options={"validation_folds": 0})
    section = dataclasses.replace(run, section=((300, 200, W, H), (1500, 2000)))
    section.save_camera(tmp_path / "cam.json")
    cam, record = read_camera_file(tmp_path / "cam.json")
    np.testing.assert_allclose(cam.crpix, run.camera_model.crpix + (300 + W / 2 - 1000,
                                                                    200 + H / 2 - 750))
    fitted = dict(zip(record["uncertainty"]["parameters"], record["uncertainty"]["values"],
                      strict=True))
    np.testing.assert_allclose((fitted["crpix_x"], fitted["crpix_y"]), cam.crpix, atol=1e-9)
    assert fitted["f"] == cam.focal_length_px


@pytest.mark.parametrize("seed", [9, 10])
def test_a_strong_lens_off_centre_is_calibrated_to_its_corners(small_db, hip_catalog, seed):
    """Four radial passes over six frames (60 stars) of a lens whose distortion moves its
    corners in by 10 % about an axis 8 % off the image centre: the first pass's solves,
    without a camera, match the stars within ~500 px of the centre only, and the fit's
    polynomial start, re-matching them, dropped the outermost for good; the camera came
    out 4.7 and 107 px off the truth at worst on these draws (0.22 and 0.08 px median),
    and the next passes' solves never matched the edges. Now 0.17 and 0.14 px."""
    from skysolve import RadialDistortion

    from .synthetic import mapping_error_px

    truth = CameraModel.from_fov(15.0, W, H, crpix=(80.0, -60.0),
                                 distortion=RadialDistortion(k1=-0.1, scale=0.5 * np.hypot(W, H)))
    cat = hip_catalog.propagate(2025.0)
    rots = random_attitudes(6, rng=seed)
    cents = [simulate_centroids(cat, truth, R, num_stars=60, centroid_noise_px=0.1,
                                seed=seed + k).centroids for k, R in enumerate(rots)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = calibrate_frames(cents, small_db, seed_passes(4, 6, "radial"),
                               fov_estimate_deg=15.0, fov_max_error_deg=2.0,
                               image_shape=(H, W), calibration_options={"validation_folds": 0},
                               progress=False)
    cal = run.calibration
    assert cal.num_images == 6
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(-W / 2 + 0.5, W / 2 - 0.5, 17),
                                             np.linspace(-H / 2 + 0.5, H / 2 - 0.5, 17)))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert np.median(err) < 0.05
    assert err.max() < 1.0
