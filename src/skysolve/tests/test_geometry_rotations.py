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


def test_an_attitude_is_a_proper_rotation_or_refused_by_name():
    """``as_rotation_matrix`` (every attitude hint goes through it) returns a rotation
    matrix as given and a quaternion's matrix, and refuses, naming the argument, what is
    not finite, a reflection, and matrices scaled or sheared by more than 1e-6 (scipy's
    random rotations, and the same turned into a reflection or stretched)."""
    from skysolve.errors import InvalidArgumentError, InvalidTypeError
    from skysolve.geometry import as_rotation_matrix

    rng = np.random.default_rng(17)
    turns = Rotation.random(200, random_state=rng)
    for R, (x, y, z, w) in zip(turns.as_matrix(), turns.as_quat(), strict=True):
        assert as_rotation_matrix(R) is not None
        np.testing.assert_array_equal(as_rotation_matrix(R), R)
        np.testing.assert_allclose(as_rotation_matrix([w, x, y, z]), R, atol=1e-12)
        np.testing.assert_array_equal(as_rotation_matrix(R.tolist()), R)
        # within the tolerance: a matrix off by rounding is still a rotation
        as_rotation_matrix(R * (1.0 + 2e-7))
        i, j = rng.integers(0, 3, 2)
        bad = [("a reflection", -R), ("stretched", R * (1.0 + 2e-6)),
               ("sheared", R + 2e-6 * np.outer(np.eye(3)[i], R[j]) * (i != j)
                + 2e-6 * np.outer(np.eye(3)[(i + 1) % 3], R[(i + 2) % 3]))]
        nan = R.copy()
        nan[i, j] = rng.choice([np.nan, np.inf, -np.inf])
        with pytest.raises(InvalidArgumentError, match="attitude_hint must be finite"):
            as_rotation_matrix(nan, "attitude_hint")
        for what, m in bad:
            with pytest.raises(InvalidArgumentError,
                               match="attitude_hint must be a proper rotation matrix"):
                as_rotation_matrix(m, "attitude_hint")
                pytest.fail(f"{what} was taken as a rotation")
    with pytest.raises(InvalidArgumentError, match="attitude_hint must be finite"):
        as_rotation_matrix([np.nan, 0.0, 0.0, 1.0], "attitude_hint")
    with pytest.raises(InvalidArgumentError, match="shape"):
        as_rotation_matrix(np.eye(2), "attitude_hint")
    with pytest.raises(InvalidTypeError, match="attitude_hint"):
        as_rotation_matrix("identity", "attitude_hint")
