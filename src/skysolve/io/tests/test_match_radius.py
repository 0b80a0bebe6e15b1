"""The ``.match`` file's RADIUS: the angle from the field's centre (CENTERXYZ, the
boresight) out to the image's farthest corner, in degrees.

Known answers from the lens formulas: a 62 deg pinhole frame of 1920 x 1280 px has its
corners atan(tan(31 deg) x 1153.8 / 960) = 35.84 deg from the axis (the small-angle
half-diagonal times the pixel scale is 41.4 deg); a 120 deg equidistant frame of 1600
x 1200 px has them 60 deg x 1000 / 800 = 75 deg out; an equisolid all-sky frame whose
corners lie beyond its image reaches as far as the projection images, 180 deg.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from skysolve.camera import CameraModel
from skysolve.io.astrometry_files import write_match
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.sky.catalogs import load_hipparcos

CASES = [("pinhole", 62.0, 1920, 1280,
          math.degrees(math.atan(math.tan(math.radians(31.0)) * math.hypot(960, 640) / 960))),
         ("equidistant", 120.0, 1600, 1200, 75.0),
         ("equisolid", 300.0, 1600, 1200, 180.0)]


@pytest.mark.parametrize("projection, fov, width, height, radius", CASES)
def test_match_radius_is_the_angle_out_to_the_farthest_corner(wide_db, tmp_path, projection,
                                                              fov, width, height, radius):
    cam = CameraModel.from_fov(fov, width, height, projection=projection)
    R = random_attitudes(1, rng=5)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=60, seed=1, epoch_year=2025.0)
    res = wide_db.solve_from_centroids(sim.centroids, camera_model=cam)
    assert res, res
    xy = sim.centroids[:, :2] + [0.5 + width / 2, 0.5 + height / 2]
    rows = np.asarray(res.matched_centroids)
    path = tmp_path / "f.match"
    write_match(path, res, xy[rows], rows, len(xy), 100, width, height)
    with fits.open(path) as hdul:
        got = float(hdul[1].data["RADIUS"][0])
    assert got == pytest.approx(radius, abs=0.05)
