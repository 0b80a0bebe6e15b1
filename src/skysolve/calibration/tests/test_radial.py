"""Radial (Brown-Conrady) calibration with its optical axis far off the image."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from skysolve import CameraModel, RadialDistortion
from skysolve.calibration import engine
from skysolve.calibration.radial import folds_over, metric_axis
from skysolve.errors import InvalidArgumentError
from skysolve.simulate import random_attitudes

from .synthetic import mapping_error_px, synthetic_solves, within_radius

W = H = 1024


def off_axis_camera() -> CameraModel:
    """FOV ~14 deg, optical axis ~950 px from the image centre (beyond a corner), a
    decentred Brown-Conrady lens moving the far corner by ~15 px."""
    return CameraModel(4000.0, W, H, crpix=(-700.0, 650.0),
                       distortion=RadialDistortion(3.2e-9, 1e-16, 0.0, 1e-7, -5e-8, (20.0, -15.0)))


def test_off_axis_lens_is_recovered(small_db):
    truth = off_axis_camera()
    rots = random_attitudes(6, rng=11)
    res, cents = synthetic_solves(small_db, [truth] * 6, rots, 0.05, seed=11, max_stars=200)
    cal = small_db.calibrate_camera(res, cents, model="radial")
    cam = cal.camera_model
    assert isinstance(cam.distortion, RadialDistortion)
    # the distortion centre's 25 px offset moves the stars of this k1 = 3.2e-9 lens, to
    # first order, as p1/p2 do, and beyond that by ~3e-3 px: it is not fitted, p1/p2
    # carry it (test_a_distortion_centre_the_stars_do_not_show_is_not_fitted)
    assert cal.crpix_fitted and not cal.center_fitted
    # the optical axis is found ~950 px away, to about a pixel
    assert np.hypot(*(cam.crpix - truth.crpix)) < 5.0
    g = np.linspace(-W / 2 + 0.5, W / 2 - 0.5, 33)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) <= 0.05
    assert cal.rmse_after_px == pytest.approx(0.05 * math.sqrt(2), rel=0.15)
    assert cal.rmse_before_px > 100  # the solves' centred pinhole is far off
    # asked for, the centre is fitted (and the mapping as good)
    free = small_db.calibrate_camera(res, cents, model="radial", fit_distortion_center=True)
    assert free.center_fitted
    err = np.concatenate([mapping_error_px(free.image_camera(i), free.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) <= 0.05
    fixed = small_db.calibrate_camera(res, cents, model="radial", fit_distortion_center=False)
    assert not fixed.center_fitted and fixed.camera_model.distortion.center == (0.0, 0.0)


def test_metric_axis_points_at_the_optical_axis():
    """The principal directions of a radial camera's pixel -> sky metric meet at its axis,
    wherever it is (the gnomonic projection alone makes them radial)."""
    for crpix in ((-700.0, 650.0), (0.0, 0.0), (300.0, -2000.0)):
        plain = CameraModel(4000.0, W, H, crpix=crpix)
        axis = metric_axis(plain, W, H)
        assert np.hypot(*(axis - crpix)) < 1.0
        lens = plain.replace(distortion=RadialDistortion(3e-9))
        assert np.hypot(*(metric_axis(lens, W, H) - crpix)) < 5.0
    # a field too small to show any anisotropy points nowhere
    assert metric_axis(CameraModel(1e9, W, H), W, H) is None


def central_frames(db, seed: int, reach: float, n: int = 10):
    """Ten 1024 x 768 frames of a mild barrel lens (0.8 px at 300 px from the centre)
    whose matched stars lie within ``reach`` px of the image centre; the truth and the
    attitudes too."""
    truth = CameraModel(3800.0, 1024, 768, crpix=(6.0, -4.0),
                        distortion=RadialDistortion(k1=-1.2e-8))
    rots = random_attitudes(n, rng=seed)
    res, cents = synthetic_solves(db, [truth] * n, rots, 0.1, seed=seed)
    return (*within_radius(res, cents, reach), truth, rots)


@pytest.mark.filterwarnings("ignore:the matched stars reach only")  # k3 fixed: tested below
@pytest.mark.parametrize(("seed", "reach"), [(4, 150.0), (5, 200.0)])
def test_stars_in_the_middle_of_the_image_are_fitted(small_db, seed, reach):
    """Stars within 150-200 px of the centre hardly constrain the centres and the higher
    radial terms: the fit used to start from an extrapolated polynomial and diverge
    ("focal length became invalid") or return residuals of 10^6 px."""
    res, cents, truth, rots = central_frames(small_db, seed, reach)
    cal = small_db.calibrate_camera(res, cents, model="radial")
    assert cal.converged
    assert cal.rmse_after_px == pytest.approx(0.1 * math.sqrt(2), rel=0.1)
    assert cal.camera_model.focal_length_px == pytest.approx(truth.focal_length_px, rel=2e-3)
    g = np.linspace(-reach, reach, 15)
    gx, gy = (a.ravel() for a in np.meshgrid(g, g))
    gx, gy = gx[np.hypot(gx, gy) < reach], gy[np.hypot(gx, gy) < reach]
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) < 0.1


def test_a_fit_that_would_fold_over_inside_the_image_keeps_k3_at_zero(small_db):
    """Fitted to stars within 200 px of the centre, k1..k3 turned the radius over
    inside the image (the corners are 640 px out): a third of the image had no sky
    position, nor a mapping_sigma_px, without a word. k3 is now fixed at 0, and it
    says so."""
    res, cents, truth, rots = central_frames(small_db, 7, 200.0)
    with pytest.warns(UserWarning, match=r"reach only 2\d\d px .* k3 fixed at 0"):
        cal = small_db.calibrate_camera(res, cents, model="radial")
    cam = cal.camera_model
    assert not folds_over(cam) and "k3" not in cal.parameter_names
    assert cam.distortion.k3 == 0.0
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(-512, 512, 33),
                                             np.linspace(-384, 384, 25)))
    assert np.all(np.isfinite(cam.pixel_to_tanplane(gx, gy)))
    assert np.all(np.isfinite(cal.mapping_sigma_px(gx, gy)))
    inside = np.hypot(gx, gy) < 200.0
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx[inside], gy[inside])
                          for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) < 0.1


def test_stars_short_of_the_corners_say_the_camera_beyond_is_extrapolated(small_db):
    """12 frames of a lens with k1 and k2, stars within 300 px of the 800 to the corners:
    the radial fit did not fold over and said nothing, 1,400 px off in the corners at
    6.7 times its stated uncertainty (rms) through k2 and k3 extrapolated. It warns now;
    stars reaching 550 px fit it to under a pixel, and do not warn."""
    w, h = 1280, 960
    truth = CameraModel.from_fov(20.0, w, h, crpix=(25.0, -18.0), distortion=RadialDistortion(
        k1=-0.05, k2=0.01, scale=0.5 * math.hypot(w, h)))
    rots = random_attitudes(12, rng=101)
    pairs = synthetic_solves(small_db, [truth] * 12, rots, 0.1, seed=1, max_stars=150)
    with pytest.warns(UserWarning,
                      match=r"reach only 2\d\d px .* reaches 800 px out.* extrapolation"):
        small_db.calibrate_camera(*within_radius(*pairs, 300.0), model="radial")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cal = small_db.calibrate_camera(*within_radius(*pairs, 550.0), model="radial")
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(-w / 2, w / 2, 17),
                                             np.linspace(-h / 2, h / 2, 17)))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert err.max() < 1.0


def test_folds_over_finds_turns_of_the_radius_inside_the_image():
    cam = CameraModel(3800.0, 1024, 768, distortion=RadialDistortion(k1=-1.2e-8))
    assert not folds_over(cam) and not folds_over(cam.replace(distortion=None))
    # barrel strong enough to turn over at 330 px: the corners have no ideal position
    assert folds_over(cam.replace(distortion=RadialDistortion(k1=-3e-6)))
    # turns over at 330 px and back up at 480 px: the corners have (finite) ideal
    # positions, but pixels 186-199 px from the centre have three
    a, b = 330.0 ** 2, 480.0 ** 2
    k2 = 1.0 / (5.0 * a * b)
    wiggle = cam.replace(distortion=RadialDistortion(k1=-5.0 * k2 * (a + b) / 3.0, k2=k2))
    assert np.all(np.isfinite(wiggle.pixel_to_tanplane([-512, 512, 512], [-384, -384, 384])))
    assert folds_over(wiggle)


def test_a_fit_folding_over_with_k1_alone_is_refused(small_db, monkeypatch):
    res, cents, _, _ = central_frames(small_db, 4, 300.0, n=3)
    monkeypatch.setattr(engine, "folds_over", lambda camera: True)
    with pytest.raises(InvalidArgumentError, match=r"reach only [23]\d\d px .* k1 alone"):
        small_db.calibrate_camera(res, cents, model="radial")


def _off_centre_lens() -> CameraModel:
    """FOV 15 deg, 1024 x 768, barrel distortion (~8 px at the corners) about an optical
    axis 94 px from the image centre."""
    return CameraModel.from_fov(15.0, 1024, 768, crpix=(80.0, -50.0),
                                distortion=RadialDistortion(k1=-3e-8))


@pytest.mark.parametrize("seed", [0, 2])
def test_a_single_image_fits_the_centre_of_an_off_centre_lens(small_db, seed):
    """One frame of 200 stars over the image: the radial model kept the optical centre at
    its input (the image centre), fitted the lens about the wrong point and was 0.23 px
    rms (0.75 px at worst) off the truth, with a residual pattern (z 26-37); the stars
    locate the centre now, to a few px, and the camera is 0.013-0.03 px off."""
    truth = _off_centre_lens()
    rots = random_attitudes(1, rng=np.random.default_rng(seed))
    res, cents = synthetic_solves(small_db, [truth], rots, 0.05, seed=seed, max_stars=200)
    cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
    assert cal.crpix_fitted
    assert np.hypot(*(cal.camera_model.crpix - truth.crpix)) < 6.0
    g, h = np.linspace(-511.5, 511.5, 9), np.linspace(-383.5, 383.5, 9)
    gx, gy = (a.ravel() for a in np.meshgrid(g, h))
    err = mapping_error_px(cal.image_camera(0), cal.rotations[0], truth, rots[0], gx, gy)
    assert np.sqrt(np.mean(err ** 2)) < 0.05
    assert not cal.residual_pattern.significant


def test_a_single_image_with_stars_in_the_middle_keeps_the_centre(small_db):
    """Stars within 250 px of the centre (they cover 56 % of the image): whatever the
    extrapolated distortion made of their noise would place the centre, so it stays."""
    truth = _off_centre_lens()
    rots = random_attitudes(1, rng=np.random.default_rng(0))
    res, cents = within_radius(*synthetic_solves(small_db, [truth], rots, 0.05, seed=0,
                                                 max_stars=400), 250.0)
    cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
    assert not cal.crpix_fitted
    assert np.array_equal(cal.camera_model.crpix, res[0].camera_model.crpix)


def test_a_single_image_of_a_centred_lens_keeps_the_centre(small_db):
    """The stars cover the image, but the lens is centred: the centre the fit finds lies
    within its noise of the input (a few px), and moving it would only move the boresight
    that solves with the camera report, so the input's stays."""
    truth = CameraModel.from_fov(15.0, 1024, 768, distortion=RadialDistortion(k1=-3e-8))
    rots = random_attitudes(1, rng=np.random.default_rng(3))
    res, cents = synthetic_solves(small_db, [truth], rots, 0.05, seed=3, max_stars=200)
    cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
    assert not cal.crpix_fitted
    assert np.array_equal(cal.camera_model.crpix, res[0].camera_model.crpix)


@pytest.mark.parametrize("seed", [2, 3])
def test_a_strong_lens_keeps_its_edge_stars(small_db, seed):
    """The radial fit starts from a polynomial one, whose re-matching dropped the stars a
    low-order pixel -> sky polynomial cannot hold: 8-9 % of them, all near the corners,
    of 1024 x 768 frames of a lens whose distortion moves its corners in by 10 % about an
    axis 8 % off the image centre; those are the stars that tell the radial terms apart,
    and the mapping came out 0.15 and 0.10 px rms off the truth on these draws (2.1 and
    1.4 px at worst). Now every star is fitted, and the mapping is 0.02-0.04 px off."""
    w, h = 1024, 768
    truth = CameraModel.from_fov(15.0, w, h, crpix=(80.0, -60.0),
                                 distortion=RadialDistortion(k1=-0.1, scale=0.5 * math.hypot(w, h)))
    rots = random_attitudes(8, rng=20 + seed)
    res, cents = synthetic_solves(small_db, [truth] * 8, rots, 0.1, seed=seed, max_stars=150)
    cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
    assert cal.n_inliers >= 0.99 * 8 * 150
    gx, gy = (a.ravel() for a in np.meshgrid(np.linspace(-w / 2 + 0.5, w / 2 - 0.5, 17),
                                             np.linspace(-h / 2 + 0.5, h / 2 - 0.5, 17)))
    err = np.concatenate([mapping_error_px(cal.image_camera(i), cal.rotations[i], truth, R,
                                           gx, gy) for i, R in enumerate(rots)])
    assert math.sqrt(np.mean(err ** 2)) < 0.05
    assert err.max() < 0.6


def test_a_distortion_centre_the_stars_do_not_show_is_not_fitted(small_db):
    """A lens whose distortion centre is its optical centre and without a clear k2: the
    centre moves the stars, to first order, as p1/p2 do, and only the noise of k2, k3
    told them apart. The fit put the centre where that noise led, with p1/p2
    compensating, and their sigma 2x too small: the rms pull of p1, p2 against the
    truth (0) was 1.8-2.4 over these draws. Held at the optical centre, p1/p2 are
    fitted as they are."""
    truth = CameraModel(3800.0, 1024, 768, crpix=(10.0, -7.0),
                        distortion=RadialDistortion(-1.2e-8, 2e-15))
    pulls, fitted = [], 0
    for seed in range(16):
        rots = random_attitudes(8, rng=seed)
        res, cents = synthetic_solves(small_db, [truth] * 8, rots, 0.1, seed=seed,
                                      max_stars=30)
        cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
        fitted += cal.center_fitted
        d, sig = cal.camera_model.distortion, cal.parameter_sigma
        pulls += [d.p1 / sig["p1"], d.p2 / sig["p2"]]
        if cal.center_fitted:
            pulls += [d.center[0] / sig["center_x"], d.center[1] / sig["center_y"]]
    assert fitted <= 2
    assert math.sqrt(np.mean(np.square(pulls))) < 1.35


def test_a_distortion_centre_the_stars_show_is_fitted(small_db):
    """A lens with a clear k2 and its distortion centre 36 px off the optical centre:
    the centre is fitted, and found within its sigma."""
    truth = CameraModel(3800.0, 1024, 768, crpix=(10.0, -7.0),
                        distortion=RadialDistortion(-1.2e-8, 1e-13, center=(30.0, -20.0)))
    for seed in range(3):
        rots = random_attitudes(8, rng=seed)
        res, cents = synthetic_solves(small_db, [truth] * 8, rots, 0.1, seed=seed,
                                      max_stars=30)
        cal = small_db.calibrate_camera(res, cents, model="radial", validation_folds=0)
        assert cal.center_fitted
        sig = cal.parameter_sigma
        cx, cy = cal.camera_model.distortion.center
        assert abs(cx - 30.0) < 4 * sig["center_x"] and abs(cy + 20.0) < 4 * sig["center_y"]
        assert sig["center_x"] < 10.0
