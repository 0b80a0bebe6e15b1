"""Tests of skysolve.sky.aberration: Earth velocity and relativistic aberration."""

from __future__ import annotations

import datetime
import subprocess
import sys
import textwrap
import warnings

import erfa
import numpy as np
import pytest
from astropy.coordinates import get_body_barycentric_posvel
from astropy.time import Time

import skysolve
from skysolve.errors import InvalidArgumentError, InvalidTypeError
from skysolve.sky.aberration import (
    SPEED_OF_LIGHT_KM_S,
    aberrate,
    earth_barycentric_velocity,
    unaberrate,
)

ARCSEC = np.pi / 180 / 3600


def _astropy_velocity(t: Time) -> np.ndarray:
    with warnings.catch_warnings():
        # UTC past the leap-second table's end is "dubious" (by a second at most)
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        _, vel = get_body_barycentric_posvel("earth", t, ephemeris="builtin")
    return np.moveaxis(vel.xyz.to_value("km/s"), 0, -1)


def _utc(when) -> Time:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", erfa.ErfaWarning)
        return Time(when, scale="utc")


def _angle(u, v):
    u = np.asarray(u)
    v = np.asarray(v)
    return np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1), np.sum(u * v, axis=-1))


def _random_unit(n: int, seed: int = 0) -> np.ndarray:
    u = np.random.default_rng(seed).normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


# ---------------------------------------------------------------- Earth velocity


@pytest.mark.parametrize(
    "when",
    [
        datetime.datetime(2018, 1, 3, 0, 0, 0),
        datetime.datetime(2019, 7, 29, 20, 47, 26),
        datetime.datetime(2021, 3, 20, 9, 37, 0),
        datetime.datetime(2024, 10, 1, 12, 0, 0),
        datetime.datetime(2030, 12, 31, 23, 59, 0),
    ],
)
def test_velocity_matches_astropy(when):
    expected = _astropy_velocity(_utc(when))
    got = earth_barycentric_velocity(when)
    assert got.shape == (3,)
    assert got.dtype == np.float64
    assert np.linalg.norm(got - expected) < 0.05
    # Orbital speed: 30.29 km/s at perihelion, 29.29 at aphelion.
    assert 29.2 < np.linalg.norm(got) < 30.35


def test_velocity_direction_and_speed_over_a_year():
    # Early January is perihelion (fastest), early July aphelion (slowest); the
    # velocity is perpendicular to the Sun direction to within the eccentricity.
    jan = earth_barycentric_velocity(datetime.datetime(2020, 1, 4))
    jul = earth_barycentric_velocity(datetime.datetime(2020, 7, 4))
    assert np.linalg.norm(jan) == pytest.approx(30.29, abs=0.03)
    assert np.linalg.norm(jul) == pytest.approx(29.29, abs=0.03)
    # Half a year apart the velocities point (nearly) opposite ways.
    assert np.degrees(_angle(jan, jul)) > 175.0
    # The orbit lies in the ecliptic: the velocity is ~23.44 deg from the ICRS equator
    # plane at most, and its component along the ecliptic pole is tiny.
    eps = np.radians(23.4393)
    pole = np.array([0.0, -np.sin(eps), np.cos(eps)])
    assert abs(jan @ pole) < 0.01
    assert abs(jul @ pole) < 0.01


def test_seed_usage_through_package():
    tstart = datetime.datetime.strptime("2018-07-25T19:01:42.708", "%Y-%m-%dT%H:%M:%S.%f")
    tstop = datetime.datetime.strptime("2018-07-25T19:31:42.708", "%Y-%m-%dT%H:%M:%S.%f")
    tmid = tstart + (tstop - tstart) / 2
    v = skysolve.earth_barycentric_velocity(tmid)
    assert v.shape == (3,)
    assert np.linalg.norm(v - _astropy_velocity(_utc(tmid))) < 0.05


def test_input_forms_agree():
    naive = datetime.datetime(2019, 7, 29, 20, 47, 26)
    reference = earth_barycentric_velocity(naive)
    aware = datetime.datetime(
        2019, 7, 30, 2, 17, 26, tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    )
    utc_aware = naive.replace(tzinfo=datetime.UTC)
    forms = [
        aware,
        utc_aware,
        "2019-07-29T20:47:26",
        "2019-07-29 20:47:26",
        Time("2019-07-29T20:47:26", scale="utc"),
        Time("2019-07-29T20:47:26", scale="utc").tdb,
        np.datetime64("2019-07-29T20:47:26"),
        # ISO 8601 strings with a UTC offset are the instant they name
        "2019-07-30T02:17:26+05:30",
        "2019-07-29T19:47:26-0100",
        "2019-07-29 21:47:26+01:00",
        "2019-07-29T20:47:26Z",
    ]
    for form in forms:
        np.testing.assert_allclose(earth_barycentric_velocity(form), reference, atol=1e-9)
    np.testing.assert_allclose(earth_barycentric_velocity(["2019-07-29T22:47:26+02:00"]),
                               [reference], atol=1e-9)
    # A shifted aware time is not the same instant as the naive one read as UTC.
    shifted = naive.replace(tzinfo=datetime.timezone(datetime.timedelta(hours=12)))
    assert np.linalg.norm(earth_barycentric_velocity(shifted) - reference) > 1e-3


def test_vectorised_times():
    whens = [datetime.datetime(2018 + k, 1 + k, 1 + 2 * k, 2 * k) for k in range(12)]
    expected = _astropy_velocity(_utc(whens))
    got = earth_barycentric_velocity(whens)
    assert got.shape == (12, 3)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    # Arrays keep their shape, with xyz last.
    grid = earth_barycentric_velocity(np.array(whens, dtype=object).reshape(3, 4))
    assert grid.shape == (3, 4, 3)
    np.testing.assert_allclose(grid.reshape(12, 3), expected, atol=1e-9)
    t = _utc(whens)
    np.testing.assert_allclose(earth_barycentric_velocity(t), expected, atol=1e-9)
    strings = [w.isoformat() for w in whens]
    np.testing.assert_allclose(earth_barycentric_velocity(strings), expected, atol=1e-9)


def test_velocity_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        earth_barycentric_velocity(datetime.datetime(2035, 6, 1))  # past leap-second table
        earth_barycentric_velocity(datetime.datetime(2019, 1, 1))


def test_velocity_works_without_network():
    # A fresh interpreter (so astropy's once-per-process leap-second check runs) in
    # which the bundled leap-second tables look expired (it is "2040"), downloads are
    # enabled, any network connection fails at once, and any warning is an error.
    code = textwrap.dedent(
        """
        import socket, warnings, datetime
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network disabled by test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        warnings.simplefilter("error")
        import numpy as np
        from astropy.time import Time
        from astropy.utils import iers
        iers.LeapSeconds._today = classmethod(
            lambda cls: Time("2040-01-01", scale="tai", format="iso", out_subfmt="date"))
        iers.conf.auto_download = True
        import skysolve
        v = skysolve.earth_barycentric_velocity(datetime.datetime(2039, 3, 1, 12))
        assert v.shape == (3,) and 29 < np.linalg.norm(v) < 31, v
        assert iers.conf.auto_download is True, "setting not restored"
        assert not attempts, attempts
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("bad", "exc"),
    [
        ("not a time", InvalidArgumentError),
        (12345, InvalidTypeError),
        (None, InvalidTypeError),
        (datetime.date(2020, 1, 1), InvalidTypeError),
        ([], InvalidArgumentError),
    ],
)
def test_velocity_bad_input(bad, exc):
    with pytest.raises(exc, match=r"\bdt\b"):  # tetra3rs's name of the argument
        earth_barycentric_velocity(bad)


# ---------------------------------------------------------------- aberration


def test_ninety_degrees_from_apex_shifts_20_5_arcsec_towards_apex():
    speed = 29.8
    apex = np.array([0.3, -0.5, 0.8])
    apex /= np.linalg.norm(apex)
    perp = np.cross(apex, [0.0, 0.0, 1.0])
    perp /= np.linalg.norm(perp)
    shifted = aberrate(perp, apex * speed)
    shift = _angle(perp, shifted)
    # exact: sin(shift) = beta at 90 degrees
    assert shift == pytest.approx(np.arcsin(speed / SPEED_OF_LIGHT_KM_S), rel=1e-9)
    assert shift / ARCSEC == pytest.approx(20.50, abs=0.01)
    # towards the apex: the angle to the apex shrinks by exactly the shift
    assert np.pi / 2 - _angle(shifted, apex) == pytest.approx(shift, rel=1e-9)
    # and it stays in the plane of the star and the apex
    assert abs(shifted @ np.cross(perp, apex)) < 1e-15


def test_apex_and_antapex_do_not_move():
    v = np.array([10.0, -20.0, 15.0])
    apex = v / np.linalg.norm(v)
    out = aberrate(np.stack([apex, -apex]), v)
    np.testing.assert_allclose(out, np.stack([apex, -apex]), atol=1e-15)


def test_shift_versus_angle_from_apex():
    # The exact relativistic law: cos t' = (cos t + b) / (1 + b cos t).
    v = np.array([0.0, 0.0, 30.0])
    b = 30.0 / SPEED_OF_LIGHT_KM_S
    t = np.radians(np.linspace(1.0, 179.0, 50))
    u = np.stack([np.sin(t), np.zeros_like(t), np.cos(t)], axis=1)
    out = aberrate(u, v)
    expected = np.arccos((np.cos(t) + b) / (1 + b * np.cos(t)))
    np.testing.assert_allclose(_angle(out, [0.0, 0.0, 1.0]), expected, atol=1e-13)


@pytest.mark.parametrize("velocity", [[23.6, 16.0, 6.9], [-29.3, 4.1, 1.8], [0.0, 0.0, 0.5]])
def test_matches_erfa_ab(velocity):
    u = _random_unit(2000, seed=3)
    beta = np.asarray(velocity) / SPEED_OF_LIGHT_KM_S
    # A huge Sun distance switches off eraAb's solar light-deflection term.
    expected = erfa.ab(u, beta, 1e30, np.sqrt(1.0 - beta @ beta))
    got = aberrate(u, velocity)
    assert got.shape == u.shape
    assert np.max(_angle(got, expected)) < 1e-6 * ARCSEC


def test_relativistic_speed_matches_erfa_ab():
    # At a tenth of c the second-order terms are large; the formula is exact.
    velocity = np.array([0.1, -0.05, 0.02]) * SPEED_OF_LIGHT_KM_S
    u = _random_unit(500, seed=4)
    beta = velocity / SPEED_OF_LIGHT_KM_S
    expected = erfa.ab(u, beta, 1e30, np.sqrt(1.0 - beta @ beta))
    assert np.max(_angle(aberrate(u, velocity), expected)) < 1e-6 * ARCSEC


def test_round_trip():
    u = _random_unit(5000, seed=5)
    for velocity in ([23.6, 16.0, 6.9], [0.2e5, -0.1e5, 0.05e5]):
        back = unaberrate(aberrate(u, velocity), velocity)
        assert np.max(np.abs(back - u)) < 1e-12
        forth = aberrate(unaberrate(u, velocity), velocity)
        assert np.max(np.abs(forth - u)) < 1e-12


def test_output_is_unit_and_input_normalised():
    u = _random_unit(100, seed=6) * np.linspace(0.5, 3.0, 100)[:, None]
    out = aberrate(u, [20.0, 5.0, -3.0])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-15)
    np.testing.assert_allclose(out, aberrate(u / np.linalg.norm(u, axis=1)[:, None],
                                              [20.0, 5.0, -3.0]), atol=1e-15)


def test_zero_velocity_is_identity_and_single_vector_shape():
    u = _random_unit(10, seed=7)
    np.testing.assert_allclose(aberrate(u, [0, 0, 0]), u, atol=1e-16)
    one = aberrate(u[0], [1.0, 2.0, 3.0])
    assert one.shape == (3,)
    np.testing.assert_allclose(one, aberrate(u[:1], [1.0, 2.0, 3.0])[0], atol=0)


def test_velocity_from_earth_gives_annual_aberration():
    v = earth_barycentric_velocity(datetime.datetime(2019, 7, 29, 20, 47, 26))
    u = _random_unit(1000, seed=8)
    shift = _angle(u, aberrate(u, v)) / ARCSEC
    beta = np.linalg.norm(v) / SPEED_OF_LIGHT_KM_S
    assert shift.max() == pytest.approx(np.arcsin(beta) / ARCSEC, abs=0.05)
    assert 20.0 < shift.max() < 21.0


@pytest.mark.parametrize(
    ("velocity", "match"),
    [
        ([1.0, 2.0], "shape"),
        ([[1.0, 2.0, 3.0]], "shape"),
        ([np.nan, 0.0, 0.0], "finite"),
        ([np.inf, 0.0, 0.0], "finite"),
        ([SPEED_OF_LIGHT_KM_S, 0.0, 0.0], "slower than light"),
        ([3e5, 3e5, 0.0], "slower than light"),
    ],
)
def test_bad_velocity(velocity, match):
    with pytest.raises(InvalidArgumentError, match=match):
        aberrate([1.0, 0.0, 0.0], velocity)
    with pytest.raises(InvalidArgumentError, match="velocity_km_s"):
        unaberrate([1.0, 0.0, 0.0], velocity)


def test_bad_velocity_type():
    with pytest.raises(InvalidTypeError, match="velocity_km_s"):
        aberrate([1.0, 0.0, 0.0], ["a", "b", "c"])


@pytest.mark.parametrize(
    "vectors",
    [
        [1.0, 0.0],
        [[1.0, 0.0, 0.0, 0.0]],
        [[0.0, 0.0, 0.0]],
        [[np.nan, 0.0, 1.0]],
        5.0,
    ],
)
def test_bad_vectors(vectors):
    with pytest.raises(InvalidArgumentError, match="vectors"):
        aberrate(vectors, [1.0, 2.0, 3.0])


@pytest.mark.parametrize("date", ["2019-07-29", b"2019-07-29", " 2019-07-29 ",
                                  np.datetime64("2019-07-29")])
def test_a_date_alone_is_refused_as_a_datetime_date_is(date):
    """An ISO date without a time was taken as its midnight (the Earth's velocity up to a
    day off, ~0.35") while ``datetime.date`` and the command line's ``--date`` refuse it."""
    with pytest.raises(InvalidArgumentError, match="dt: a date alone is ambiguous"):
        earth_barycentric_velocity(date)
    with pytest.raises(InvalidArgumentError, match="obstime: a date alone"):
        skysolve.SolveOptions(obstime=date)
    # inside a list or an array of times as well (each was taken as its midnight)
    for many in ([date, "2019-07-30T01:00:00"], ["2019-07-30T01:00:00", date],
                 np.array([np.datetime64("2019-07-29"), np.datetime64("2019-07-30")])):
        with pytest.raises(InvalidArgumentError, match="dt: a date alone is ambiguous"):
            earth_barycentric_velocity(many)
    # with its time of day it is the time astropy reads
    expected = get_body_barycentric_posvel("earth", Time("2019-07-29T20:47:26", scale="utc"))
    np.testing.assert_allclose(earth_barycentric_velocity("2019-07-29 20:47:26"),
                               expected[1].xyz.to_value("km/s"), atol=1e-6)
