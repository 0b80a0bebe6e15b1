"""Scripts written against tetra3rs's documented Python API, as a migrating user has them.

Nothing here knows about skysolve: each function is ordinary tetra3rs 0.14 code
(build a database, extract, solve, track, calibrate, save and load, WCS out).
``test_tetra3rs_scripts.py`` runs this file with only its ``import tetra3rs``
line changed to ``import skysolve as tetra3rs`` -- and, when tetra3rs is
installed, unchanged against tetra3rs itself, which shows that the scripts
really are tetra3rs code. :func:`build_hipparcos_database` is the older call
(tetra3rs 0.3, the seed notebook's) that 0.14 no longer has.
"""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import tetra3rs
from astropy.wcs import WCS

#: A small Gaia database for the two 11.4-degree test frames (observed 2019-07-29).
GAIA_DB = dict(max_fov_deg=12.5, min_fov_deg=10.5, star_max_magnitude=7.0,
               pattern_max_error=0.005, lattice_field_oversampling=30,
               patterns_per_lattice_field=30, verification_stars_per_fov=60,
               epoch_proper_motion_year=2019.6, catalog_nside=8)


def build_gaia_database(directory):
    """Generate, save, load and pickle a Gaia database; print its parameters."""
    db = tetra3rs.SolverDatabase.generate_from_gaia(**GAIA_DB)
    path = os.path.join(directory, "gaia.db")
    db.save_to_file(path)
    loaded = tetra3rs.SolverDatabase.load_from_file(path)
    loaded.print_parameters()
    return db, loaded, pickle.loads(pickle.dumps(db))


def build_hipparcos_database(directory):
    """The tetra3rs 0.3 call (positional arguments in its order), saved and loaded."""
    db = tetra3rs.SolverDatabase.generate_from_hipparcos(
        None, 12.5, 10.5, 6.0, 0.005, 30, 30, 40, 1.5, 2019.6, 8)
    path = os.path.join(directory, "hip.db")
    db.save_to_file(path)
    return tetra3rs.SolverDatabase.load_from_file(path)


def catalog_queries(db):
    """Star lookups: by index, by id (Sirius is -HIP 32349 in the Gaia catalog), by cone."""
    first = db.get_star(0)
    by_id = db.get_star_by_id(first.id)
    cone = db.cone_search(88.79, 7.41, 3.0)  # around Betelgeuse
    return first, by_id, cone, db.num_stars, db.num_patterns, db.parameters


def extract(image):
    """Centroids three ways: the function, a reusable extractor, the fast path."""
    ext = tetra3rs.extract_centroids(image, sigma_threshold=5.0, min_pixels=3,
                                     max_pixels=10000, max_centroids=None,
                                     local_bg_block_size=64, max_elongation=3.0)
    extractor = tetra3rs.CentroidExtractor()
    again = extractor.extract(image, sigma_threshold=5.0, threads=1)
    fast = tetra3rs.extract_centroids_fast(image, sigma_threshold=5.0, bg_grid=64)
    return ext, again, fast, pickle.loads(pickle.dumps(ext))


def solve(db, ext, fov_deg, when):
    """Lost in space from the centroid list, and again from an array with aberration."""
    res = db.solve_from_centroids(ext.centroids, fov_estimate_deg=fov_deg,
                                  fov_max_error_deg=1.0, image_width=ext.image_width,
                                  image_height=ext.image_height, match_radius=0.01,
                                  match_threshold=1e-5, solve_timeout_ms=5000,
                                  max_patterns_checked=100_000, pattern_checking_stars=24)
    xyb = np.array([[c.x, c.y, c.brightness] for c in ext.centroids])
    velocity = tetra3rs.earth_barycentric_velocity(when)
    res_aberrated = db.solve_from_centroids(
        xyb, fov_estimate_rad=math.radians(fov_deg),
        image_shape=(ext.image_height, ext.image_width), observer_velocity_km_s=velocity)
    return res, res_aberrated, velocity


def wcs_from_result(res, width, height):
    """An astropy TAN WCS from the result's WCS fields (CRVAL, CRPIX offset, CD in rad/px).

    Returns the WCS and the largest disagreement, arcsec, between it and
    ``res.pixel_to_world`` over a grid of pixels.
    """
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [res.crval_ra_deg, res.crval_dec_deg]
    # centred pixel x is FITS pixel x + W/2 + 0.5
    w.wcs.crpix = [width / 2 + 0.5 + res.crpix[0], height / 2 + 0.5 + res.crpix[1]]
    w.wcs.cd = np.degrees(res.cd_matrix)
    xs, ys = np.meshgrid(np.linspace(-0.45 * width, 0.45 * width, 5),
                         np.linspace(-0.45 * height, 0.45 * height, 5))
    worst = 0.0
    for x, y in zip(xs.ravel(), ys.ravel(), strict=True):
        ra, dec = res.pixel_to_world(float(x), float(y))
        ra_w, dec_w = w.wcs_pix2world([[x + width / 2 + 0.5, y + height / 2 + 0.5]], 1)[0]
        d_ra = (ra - ra_w + 180.0) % 360.0 - 180.0
        worst = max(worst, math.hypot(d_ra * math.cos(math.radians(dec)), dec - dec_w) * 3600)
    return w, worst


def track(db, ext, res):
    """Tracking from the last attitude (quaternion and matrix), strict and with fallback."""
    shape = (ext.image_height, ext.image_width)
    fov = res.fov_deg
    by_quaternion = db.solve_from_centroids(ext.centroids, fov_estimate_deg=fov,
                                            image_shape=shape, attitude_hint=res.quaternion,
                                            hint_uncertainty_deg=0.5, strict_hint=True)
    by_matrix = db.solve_from_centroids(ext.centroids, fov_estimate_deg=fov, image_shape=shape,
                                        attitude_hint=res.rotation_matrix_icrs_to_camera,
                                        hint_uncertainty_rad=math.radians(0.5))
    # a hint 30 degrees away: strict fails, otherwise lost in space takes over
    away = np.array([math.cos(math.radians(15)), math.sin(math.radians(15)), 0.0, 0.0])
    far = _quaternion_product(away, res.quaternion)
    strict = db.solve_from_centroids(ext.centroids, fov_estimate_deg=fov, image_shape=shape,
                                     attitude_hint=far, strict_hint=True)
    fallback = db.solve_from_centroids(ext.centroids, fov_estimate_deg=fov, image_shape=shape,
                                       attitude_hint=far)
    return by_quaternion, by_matrix, strict, fallback


def _quaternion_product(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def failures(db, shape):
    """Falsy failures: too few centroids, an exhausted pattern budget, nothing to match."""
    rng = np.random.default_rng(5)
    noise = [tetra3rs.Centroid(float(x), float(y), 1.0)
             for x, y in rng.uniform(-300, 300, (30, 2))]
    too_few = db.solve_from_centroids(noise[:3], fov_estimate_deg=11.4, image_shape=shape)
    budget = db.solve_from_centroids(noise, fov_estimate_deg=11.4, image_shape=shape,
                                     max_patterns_checked=3)
    nothing = db.solve_from_centroids(noise, fov_estimate_deg=11.4, image_shape=shape)
    return too_few, budget, nothing


def calibrate(db, exts, results, directory):
    """One camera from several frames with each model; saved, loaded and solved with."""
    out = {}
    shape = (exts[0].image_height, exts[0].image_width)
    for model in ("polynomial", "radial"):
        cal = db.calibrate_camera(results, [e.centroids for e in exts], image_shape=shape,
                                  model=model, order=3, max_iterations=10, sigma_clip=3.0,
                                  convergence_threshold_px=0.01)
        path = os.path.join(directory, f"camera_{model}.bin")
        cal.camera_model.save_to_file(path)
        camera = tetra3rs.CameraModel.load_from_file(path)
        again = db.solve_from_centroids(exts[0].centroids, camera_model=camera)
        out[model] = (cal, camera, pickle.loads(pickle.dumps(cal)), again)
    return out


def camera_round_trips():
    """CameraModel and distortion calls: tangent plane and back, centroid (un)distortion."""
    radial = tetra3rs.RadialDistortion(k1=-2e-9, k2=1e-16, p1=1e-7)
    n = 6
    a = np.zeros(n)
    a[3] = 1e-3
    poly = tetra3rs.PolynomialDistortion(order=2, scale=512.0, a_coeffs=a, b_coeffs=np.zeros(n))
    out = []
    for dist in (radial, poly):
        cam = tetra3rs.CameraModel(focal_length_px=5000.0, image_width=1024, image_height=768,
                                   crpix=[3.0, -2.0], parity_flip=False, distortion=dist)
        xi, eta = cam.pixel_to_tanplane(px=300.0, py=-200.0)
        px, py = cam.tanplane_to_pixel(xi=xi, eta=eta)
        c = tetra3rs.Centroid(300.0, -200.0, brightness=10.0)
        back = c.distort(distortion=dist).undistort(distortion=dist)
        out.append((px, py, back.x, back.y, cam.fov_deg, cam.pixel_scale()))
    return out
