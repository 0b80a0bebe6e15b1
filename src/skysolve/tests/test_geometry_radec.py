"""Sky positions to unit vectors: against astropy, and one position as many."""

import numpy as np
from astropy.coordinates import SkyCoord

from skysolve.geometry import radec_to_vector, vector_to_radec


def test_vectors_as_astropy_and_back():
    rng = np.random.default_rng(11)
    ra, dec = rng.uniform(0.0, 360.0, 2000), np.degrees(np.arcsin(rng.uniform(-1, 1, 2000)))
    v = radec_to_vector(ra, dec)
    np.testing.assert_allclose(v, SkyCoord(ra, dec, unit="deg").cartesian.xyz.value.T,
                               atol=1e-15)
    back = vector_to_radec(v)
    np.testing.assert_allclose(back[0], ra, atol=1e-9)
    np.testing.assert_allclose(back[1], dec, atol=1e-9)


def test_one_position_is_the_same_as_in_an_array():
    """The scalar path (hints, field centres) gives the array path's bits, for Python and
    numpy floats alike."""
    rng = np.random.default_rng(12)
    ra, dec = rng.uniform(0.0, 360.0, 5000), rng.uniform(-90.0, 90.0, 5000)
    many = radec_to_vector(ra, dec)
    for i in range(len(ra)):
        one = radec_to_vector(float(ra[i]), float(dec[i]))
        assert one.shape == (3,) and one.dtype == np.float64
        np.testing.assert_array_equal(one, many[i])
        np.testing.assert_array_equal(radec_to_vector(ra[i], dec[i]), many[i])
    np.testing.assert_array_equal(radec_to_vector(10, 20), radec_to_vector(10.0, 20.0))
