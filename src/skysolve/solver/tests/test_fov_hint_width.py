"""A field-of-view hint read over the image's height or diagonal: the failure says how
wide that field is across the width, which is what the hint means.

An all-sky equidistant lens whose 180 deg image circle fills the height of a 1600 x
1200 frame is 240 deg across the width (the lens formula: 800 px at f = 600 / (pi/2)
px is 4 pi / 3 rad). Told 180 +- 5 deg, the search looks for a 180 deg wide field and
finds nothing; the message said only "no pattern verified against the catalog".
"""

from __future__ import annotations

import math

from skysolve.camera import CameraModel
from skysolve.simulate import random_attitudes, simulate_centroids
from skysolve.sky.catalogs import load_hipparcos


def test_a_hint_over_the_height_is_named_in_the_failure(wide_db):
    w, h = 1600, 1200
    cam = CameraModel(600.0 / (0.5 * math.pi), w, h, projection="equidistant")
    R = random_attitudes(1, rng=3)[0]
    sim = simulate_centroids(load_hipparcos(), cam, R, num_stars=80, seed=0,
                             image_circle_deg=90.0, epoch_year=2025.0)
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection="equidistant", fov_estimate_deg=180.0,
                                       fov_max_error_deg=5.0)
    assert not res and res.status == "no_match"
    assert "width" in res.message and "over the height" in res.message, res.message
    assert "240 deg" in res.message, res.message
    # told the width's field, it solves
    res = wide_db.solve_from_centroids(sim.centroids, image_width=w, image_height=h,
                                       projection="equidistant", fov_estimate_deg=240.0,
                                       fov_max_error_deg=5.0)
    assert res, res
