"""Cone queries of the sky index against brute force over the real catalog."""

import math

import numpy as np
import pytest

from skysolve.geometry import radec_to_vector
from skysolve.sky.index import SCANS_BEFORE_TREE, SkyIndex


@pytest.fixture(scope="module")
def hip_vectors():
    from skysolve import load_hipparcos

    cat = load_hipparcos()
    order = np.argsort(cat.mag, kind="stable")
    return radec_to_vector(cat.ra_deg[order], cat.dec_deg[order])


def _truth(v, centre, radius):
    # angles from arccos of clipped dot products: an independent test of membership
    ang = np.arccos(np.clip(v @ centre, -1.0, 1.0))
    return np.flatnonzero(ang <= radius)


def test_scans_then_tree_give_every_star_in_the_cone(hip_vectors):
    index = SkyIndex(hip_vectors)
    rng = np.random.default_rng(5)
    queries = 3 * SCANS_BEFORE_TREE  # the first ones scan, the later ones use the tree
    for k in range(queries):
        centre = rng.normal(size=3)
        centre /= np.linalg.norm(centre)
        radius = math.radians(rng.uniform(0.5, 30.0))
        for layer in (0, -1):
            got = index.cone(centre, radius, layer)
            want = _truth(hip_vectors[:index.layer_sizes[layer]], centre, radius)
            # stars within 1e-9 rad of the edge may go either way
            ang = np.arccos(np.clip(hip_vectors[np.setxor1d(got, want)] @ centre, -1, 1))
            assert np.all(np.abs(ang - radius) < 1e-9), (k, layer)
            assert np.all(np.diff(got) > 0)  # brightest first, no repeats
    assert index._trees  # the later queries built the trees


def test_brightest_in_cone_are_the_brightest(hip_vectors):
    index = SkyIndex(hip_vectors)
    centre = radec_to_vector(83.8, -5.4)  # Orion
    for count in (5, 50, 500):
        got = index.brightest_in_cone(centre, math.radians(10.0), count)
        np.testing.assert_array_equal(got, _truth(hip_vectors, centre, math.radians(10.0))[:count])
