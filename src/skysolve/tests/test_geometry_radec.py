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


def test_one_position_as_floats_is_the_array_paths_vector():
    """Two floats (a position hint, a field centre) take a short path in ``math``; it
    gives the array path's vectors to the bit, and the unit vector of spherical
    trigonometry, over the whole sky and RA beyond [0, 360)."""
    rng = np.random.default_rng(23)
    ra = np.r_[rng.uniform(-720.0, 720.0, 20_000), 0.0, 90.0, 180.0, 360.0, -0.0]
    dec = np.r_[rng.uniform(-90.0, 90.0, 20_000), 90.0, -90.0, 0.0, 45.0, 0.0]
    arrays = radec_to_vector(ra, dec)
    scalars = np.array([radec_to_vector(a, d)
                        for a, d in zip(ra.tolist(), dec.tolist(), strict=True)])
    np.testing.assert_array_equal(scalars, arrays)
    r, d = np.radians(ra), np.radians(dec)
    np.testing.assert_allclose(scalars, np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r),
                                                  np.sin(d)], axis=1), rtol=0, atol=1e-15)
