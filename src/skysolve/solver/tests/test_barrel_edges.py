"""A solve with the camera model of a barrel lens matches the stars at the image's edges.

Such a lens images, near its edges, directions whose undistorted (ideal) offsets lie
beyond the image's own rectangle, and its corners directions beyond the cone of their raw
distance. The refinement fetched and kept catalog stars inside those only: with the true
camera of a 15 deg, 1024 x 768 lens whose distortion moves the corners in by 10 %, 47-50
of the 60 brightest stars were matched (the rest from 385 px out), 44-51 with the optical
axis 8 % off the image centre; a calibration's later passes, which solve with the camera of
the one before, then never took in the edges.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.camera import CameraModel, RadialDistortion
from skysolve.simulate import random_attitudes, simulate_centroids

W, H = 1024, 768
BARREL = RadialDistortion(k1=-0.1, scale=0.5 * math.hypot(W, H))


@pytest.mark.parametrize("crpix", [(0.0, 0.0), (80.0, -60.0)])
@pytest.mark.parametrize("backend", ["reference", "compiled"])
def test_every_star_of_a_barrel_lens_is_matched(small_db, hip2025, crpix, backend):
    if backend == "compiled":
        pytest.importorskip("numba")
    cam = CameraModel.from_fov(15.0, W, H, crpix=crpix, distortion=BARREL)
    for k, R in enumerate(random_attitudes(3, rng=5)):
        sim = simulate_centroids(hip2025, cam, R, num_stars=60, centroid_noise_px=0.1, seed=k)
        res = small_db.solve_from_centroids(sim.centroids, image_shape=(H, W), camera_model=cam,
                                            match_radius=0.002, backend=backend)
        assert res, k
        # every star, each with its own centroid (the edges' 10-18 were missing), but of a
        # pair closer than the match radius (two such pairs at most on these fields)
        xy = sim.centroids[:, :2]
        gap = np.sort(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)), axis=1)[:, 1]
        single = np.flatnonzero(gap > 0.002 * W)
        assert len(single) >= 54
        assert np.isin(single, res.matched_centroids).all(), k
        ids = np.asarray(sim.catalog_ids)[np.asarray(res.matched_centroids)]
        assert np.array_equal(ids, np.asarray(res.matched_catalog_ids)), k
