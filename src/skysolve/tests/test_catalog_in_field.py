"""The catalog stars a solve-field run lists as inside the image (``.rdls``,
``-indx.xyls``): every one, out to the corners of wide and fisheye frames.

The cone searched about the image centre was the small-angle half-diagonal (times
1.1): shorter than the true angle to the corners of an orthographic or equisolid
frame (an orthographic 100 deg frame of 1600 x 1200 px has its corners 73.3 deg from
the axis, where the cone reached 60.5 deg), whose stars there were left out. Known
answer: every star of the database that the solution's own camera puts inside the
image, found by brute force over the whole catalog.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve.camera import CameraModel
from skysolve.fields import catalog_in_field
from skysolve.geometry import vector_to_radec
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.sky.catalogs import load_hipparcos

CASES = [("orthographic", 100.0, 1600, 1200), ("equisolid", 180.0, 1600, 1600),
         ("pinhole", 100.0, 1920, 1080), ("equidistant", 150.0, 1600, 1200)]


@pytest.mark.parametrize("projection, fov, width, height", CASES)
def test_every_catalog_star_inside_the_image_is_listed(wide_db, projection, fov, width,
                                                       height):
    cam = CameraModel.from_fov(fov, width, height, projection=projection)
    R = random_attitudes(1, rng=5)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=60, seed=1, epoch_year=2025.0)
    res = wide_db.solve_from_centroids(sim.centroids, camera_model=cam)
    assert res, res
    ra, dec, _ = catalog_in_field(wide_db, res, width, height)
    all_ra, all_dec = vector_to_radec(wide_db.star_vectors)
    x, y = res.camera_model.world_to_pixel(all_ra, all_dec, res.rotation_matrix_icrs_to_camera)
    inside = np.isfinite(x) & (np.abs(x) <= 0.5 * width) & (np.abs(y) <= 0.5 * height)
    assert len(ra) == int(inside.sum())
