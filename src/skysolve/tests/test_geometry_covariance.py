"""The attitude covariance on the sky, against a Jacobian taken by finite differences."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from skysolve.errors import InvalidArgumentError
from skysolve.geometry import attitude_covariance_on_sky, north_east_basis


def _parameters(R, east, north, bore):
    """(theta, xi0, eta0) of attitude ``R`` in the tangent plane at ``bore`` (basis
    ``east``, ``north``): camera +X's angle from East, the boresight's gnomonic offsets."""
    b = R[2]
    return np.array([math.atan2(R[0] @ north, R[0] @ east),
                     (b @ east) / (b @ bore), (b @ north) / (b @ bore)])


@pytest.mark.parametrize("seed", range(6))
def test_covariance_is_the_finite_difference_jacobian_applied(seed):
    rng = np.random.default_rng(seed)
    R = Rotation.random(random_state=rng).as_matrix()
    if seed == 0:  # boresight at the north pole: the basis conventions of north_east_basis
        R = np.eye(3)
    north, east = north_east_basis(R[2])
    p0 = _parameters(R, east, north, R[2])
    h = 1e-7
    J = np.empty((3, 3))
    for k in range(3):
        w = np.zeros(3)
        w[k] = h
        # v_cam -> v_cam + w x v_cam: a small rotation about the camera axes
        moved = Rotation.from_rotvec(w).as_matrix() @ R
        J[:, k] = (_parameters(moved, east, north, R[2]) - p0) / h
    np.testing.assert_allclose(J[0], [0.0, 0.0, -1.0], atol=1e-6)
    A = rng.normal(size=(3, 3))
    C = A @ A.T * 1e-9
    np.testing.assert_allclose(attitude_covariance_on_sky(R, C), J @ C @ J.T,
                               rtol=1e-5, atol=1e-15)


def test_covariance_refuses_other_shapes():
    with pytest.raises(InvalidArgumentError, match="3x3"):
        attitude_covariance_on_sky(np.eye(3), np.eye(2))


def test_north_east_basis_of_one_direction_is_the_arrays_to_the_bit():
    """The scalar path for one direction (the solver's) gives the array path's numbers to
    the bit: 20,000 directions of lengths 0.5-2, and the poles. (Its norm through numpy's
    ``@``, the BLAS's dot, differed on 2,115 of them on an AMD EPYC: the BLAS picks its
    order of sums by the processor.)"""
    rng = np.random.default_rng(3)
    v = rng.normal(size=(20000, 3)) * rng.uniform(0.5, 2.0, (20000, 1))
    v[:2] = [[0.0, 0.0, 2.0], [0.0, 0.0, -0.5]]
    north, east = north_east_basis(v)
    for i in range(len(v)):
        n1, e1 = north_east_basis(v[i])
        assert np.array_equal(n1, north[i]) and np.array_equal(e1, east[i])
