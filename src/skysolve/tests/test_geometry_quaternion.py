"""Quaternions of rotation matrices against scipy's (an independent implementation)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skysolve.geometry import quaternion_to_rotation, rotation_to_quaternion


def test_random_rotations_match_scipy():
    rot = Rotation.random(5000, random_state=3)
    q = rotation_to_quaternion(rot.as_matrix())
    np.testing.assert_allclose(q, rot.as_quat(canonical=True, scalar_first=True), atol=1e-14)
    np.testing.assert_allclose(quaternion_to_rotation(q), rot.as_matrix(), atol=1e-14)


@pytest.mark.parametrize("axis", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (0, 1, -1),
                                  (1, -1, 1), (-1, 0, 0)])
@pytest.mark.parametrize("angle", [0.0, 1e-9, np.pi / 2, np.pi - 1e-9, np.pi])
def test_edge_rotations_are_canonical(axis, angle):
    # half turns (w = 0) and near-identities are where a naive formula divides by ~0
    rot = Rotation.from_rotvec(angle * np.asarray(axis, float) / np.linalg.norm(axis))
    q = rotation_to_quaternion(rot.as_matrix())
    np.testing.assert_allclose(q, rot.as_quat(canonical=True, scalar_first=True), atol=1e-12)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-15)


def test_shapes():
    R = Rotation.random(6, random_state=4).as_matrix()
    assert rotation_to_quaternion(R[0]).shape == (4,)
    assert rotation_to_quaternion(R.reshape(2, 3, 3, 3)).shape == (2, 3, 4)
