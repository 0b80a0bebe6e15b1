"""Rotations from matched vectors and the angles between vectors: the closed forms the
solver's hot loops take give what the general ones do."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skysolve.geometry import angle_between, two_pair_rotation, wahba_rotation


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


@pytest.mark.parametrize("spread", [0.003, 0.1, 1.0])
def test_two_pair_rotation_is_wahbas_for_two_pairs(spread):
    """Pairs of stars 0.2-60 deg apart (``spread`` scales the directions off the axis),
    matched with up to 0.6 deg of error: the closed form is the SVD's rotation."""
    rng = np.random.default_rng(5)
    ref = _unit(rng.normal(size=(500, 2, 3)) * [spread, spread, 1.0])
    turn = Rotation.random(500, random_state=rng).as_matrix()
    body = _unit(np.einsum("kij,knj->kni", turn, ref)
                 + rng.uniform(0.0, 0.01, (500, 1, 1)) * rng.normal(size=(500, 2, 3)))
    got = two_pair_rotation(body, ref)
    np.testing.assert_allclose(got, wahba_rotation(body, ref), atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(got), 1.0, atol=1e-12)


def test_angle_between_is_the_cross_and_dot_products_angle():
    """Component by component, the same numbers as ``np.cross``, ``np.linalg.norm`` and
    ``np.sum`` give (tiny and near-pi angles included), broadcast alike."""
    rng = np.random.default_rng(9)
    u = _unit(rng.normal(size=(40, 3)) * [0.05, 0.05, 1.0])
    v = np.concatenate([u[:10] + 1e-9 * rng.normal(size=(10, 3)), -u[10:20],
                        _unit(rng.normal(size=(20, 3)))])
    for a, b in ((u, v), (u[:, None], v[None, :]), (u[0], v)):
        want = np.arctan2(np.linalg.norm(np.cross(a, b), axis=-1), np.sum(a * b, axis=-1))
        assert np.array_equal(angle_between(a, b), want)
    assert angle_between([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]) == pytest.approx(np.pi / 2)
