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


@pytest.mark.parametrize("backend", ["reference", "compiled"])
def test_verification_counts_a_barrel_lens_edge_stars(small_db, hip2025, backend):
    """The true attitude of a barrel lens's frame is verified by all its brightest stars:
    the catalog stars counted came from the image's own rectangle in ideal offsets, and
    8-13 of the 60 brightest centroids, near the edges, had none to match (a weaker
    false-match probability for a right answer: 1e-108 to 1e-123 instead of ~1e-158)."""
    from skysolve.solver import backends
    from skysolve.solver.frame import CatalogView, Hypothesis, make_frame
    from skysolve.solver.verification import verify

    if backend == "compiled":
        pytest.importorskip("numba")
    be = backends.select(backend)
    backends.prepare(be, small_db)
    cam = CameraModel.from_fov(15.0, W, H, distortion=BARREL)
    radius = 0.002 * W
    for k, R in enumerate(random_attitudes(4, rng=5)):
        sim = simulate_centroids(hip2025, cam, R, num_stars=60, centroid_noise_px=0.1, seed=k)
        xy = np.ascontiguousarray(sim.centroids[:, :2], dtype=np.float64)
        frame = make_frame(xy, W, H, cam, cam.projection, be)
        n, prob = verify(frame, CatalogView(small_db, None, be), Hypothesis(R, cam.focal_length_px,
                                                                            False), radius, 4)
        gap = np.sort(np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1)), axis=1)[:, 1]
        assert n >= (gap > radius).sum() >= 56, k
        assert prob < 1e-140, k
