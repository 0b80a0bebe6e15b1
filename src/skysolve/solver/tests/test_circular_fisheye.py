"""An all-sky camera: a circular fisheye inscribed in a 4:3 frame, solved with no scale.

Its horizontal field of view across the frame (dark corners included) is far
beyond 180 deg, while its stars span no more than the database's largest field.
A lens whose whole image circle is narrower than the frame (an orthographic
all-sky lens in a 4:3 frame's height) has a focal length below the one whose
circle spans the frame's width, and must still be found.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve import CameraModel, SolverDatabase, load_gaia, load_hipparcos
from skysolve.camera import projection as _proj
from skysolve.simulate import random_attitudes, simulate_centroids


@pytest.mark.parametrize("projection", ["equidistant", "equisolid", "stereographic"])
def test_circular_fisheye_solves_without_a_scale(wide_db, projection):
    w, h = 1600, 1200
    # a 185 deg image circle filling the frame's height
    f = 0.5 * h / _proj.scalar_radius_of_angle(math.radians(92.5), _proj.code_of(projection))
    cam = CameraModel(f, w, h, projection=projection)
    assert cam.fov_deg > 210.0
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=80, centroid_noise_px=0.2,
                             seed=0, image_circle_deg=92.5, horizon_deg=5)
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection=projection)
    assert res, res
    assert math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2]))) < 0.05
    assert res.camera_model.focal_length_px == pytest.approx(f, rel=1e-3)


def test_circular_fisheye_scale_hint_is_not_refused(wide_db):
    w, h = 1600, 1200
    f = 0.5 * h / _proj.scalar_radius_of_angle(math.radians(92.5), _proj.EQUISOLID)
    cam = CameraModel(f, w, h, projection="equisolid")  # 297.6 deg across the frame
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=80, centroid_noise_px=0.2,
                             seed=0, image_circle_deg=92.5, horizon_deg=5)
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection="equisolid", fov_estimate_deg=297.0,
                                       fov_max_error_deg=5.0)
    assert res, res


@pytest.fixture(scope="module")
def allsky_db():
    """An all-sky Gaia database (140-180 deg), in a fraction of a second."""
    return SolverDatabase.generate_from_gaia(max_fov_deg=180.0, min_fov_deg=140.0,
                                             progress=False)


def _boresight_error_arcsec(res, R) -> float:
    return math.degrees(math.acos(min(1.0, res.rotation_matrix_icrs_to_camera[2] @ R[2]))) * 3600


#: (projection, image circle's half-angle in deg): an all-sky lens's whole circle, which
#: fits in the frame's height with room to spare across its width
WHOLE_CIRCLES = [("orthographic", 90.0), ("equisolid", 110.0)]


@pytest.mark.parametrize("projection, half_angle", WHOLE_CIRCLES)
def test_a_whole_image_circle_narrower_than_the_frame_solves(allsky_db, projection,
                                                             half_angle):
    # the circle's edge is at the frame's half-height, far inside its half-width: a
    # horizontal field of view capped just short of twice the projection's largest angle
    # must not keep the search above the true focal length
    w, h = 1600, 1200
    code = _proj.code_of(projection)
    f = 0.5 * h / _proj.scalar_radius_of_angle(math.radians(half_angle), code)
    cam = CameraModel(f, w, h, projection=projection)
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_gaia(), cam, R, num_stars=80, centroid_noise_px=0.2,
                             seed=0, image_circle_deg=half_angle)
    for hints in (dict(projection=projection), dict(camera_model=cam),
                  dict(projection=projection, fov_estimate_deg=cam.fov_deg)):
        res = allsky_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                             **hints)
        assert res, (hints, res)
        assert _boresight_error_arcsec(res, R) < 60.0, hints  # the pixel is 340-560"
        assert res.camera_model.focal_length_px == pytest.approx(f, rel=1e-3)


def test_a_camera_at_its_projections_widest_field_solves(allsky_db):
    # an orthographic circle exactly as wide as the frame: the search caps the field just
    # short of the camera's 180 deg, and noise-free patterns imply exactly its focal
    # length, which must stay in range
    cam = CameraModel(600.0, 1200, 1200, projection="orthographic")
    R = random_attitudes(1, rng=7)[0]
    sim = simulate_centroids(load_gaia(), cam, R, num_stars=80, seed=0, image_circle_deg=90.0)
    res = allsky_db.solve_from_centroids(sim.centroids, image_width=1200, image_height=1200,
                                         camera_model=cam, refine_scale=False)
    assert res, res
    assert _boresight_error_arcsec(res, R) < 60.0


@pytest.mark.parametrize("projection", ["orthographic", "equisolid"])
def test_random_centroids_in_a_circle_never_solve(allsky_db, projection):
    # random lists confined to a circle narrower than the frame are searched down to the
    # focal lengths whose image circle just holds them, the widest fields of all
    rng = np.random.default_rng(11)
    for _ in range(2):
        r, a = 590.0 * np.sqrt(rng.uniform(0, 1, 50)), rng.uniform(0, 2 * np.pi, 50)
        res = allsky_db.solve_from_centroids(np.column_stack([r * np.cos(a), r * np.sin(a)]),
                                             image_shape=(1200, 1600), projection=projection,
                                             solve_timeout_ms=5000)
        assert not res
        assert res.status in ("no_match", "timeout")
