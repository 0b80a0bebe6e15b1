"""Earth's barycentric velocity and relativistic stellar aberration.

An observer moving with velocity ``v`` relative to the solar-system barycentre sees
every star displaced towards the apex of its motion by up to ``|v|/c`` radians: about
20.5 arcsec for the Earth's orbital speed of ~29.8 km/s (annual aberration).
Catalog positions are barycentric, so a solver that ignores this carries a ~20"
systematic attitude error that changes over the year. :func:`aberrate` maps catalog
(barycentric, "natural") directions to the apparent directions seen by the moving
observer, :func:`unaberrate` undoes it, and :func:`earth_barycentric_velocity` gives
the velocity to use for an Earth-bound camera.

Everything here works offline: the Earth's velocity comes from the analytical
ephemeris built into ERFA (``eraEpv00``, via astropy's ``'builtin'`` ephemeris),
and the UTC to TDB conversion needs no IERS Earth-orientation data; IERS downloads
are switched off for the duration of the call.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import InvalidArgumentError, InvalidTypeError

__all__ = ["earth_barycentric_velocity", "aberrate", "unaberrate", "SPEED_OF_LIGHT_KM_S"]

#: Speed of light in vacuum, km/s (exact, SI definition).
SPEED_OF_LIGHT_KM_S = 299_792.458

_AU_KM = 149_597_870.700  # IAU 2012 astronomical unit, exact
_DAY_S = 86_400.0


@contextlib.contextmanager
def _offline_time() -> Iterator[None]:
    """Time-scale conversions with IERS downloads off and leap-second noise muted."""
    from astropy.utils import iers
    from astropy.utils.exceptions import AstropyWarning
    from erfa import ErfaWarning

    with iers.conf.set_temp("auto_download", False), warnings.catch_warnings():
        # UTC past the end of the leap-second table is "dubious" only to a second,
        # which moves the Earth's velocity by ~1e-5 km/s.
        warnings.filterwarnings("ignore", category=ErfaWarning, message=".*dubious year.*")
        warnings.filterwarnings("ignore", category=AstropyWarning, message=".*leap.second.*")
        yield


#: The UTC offset that ends an ISO 8601 time (``+02:00``, ``-0100``), which astropy's
#: parser does not read.
_UTC_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}$")


def _utc_text(value: Any) -> Any:
    """An ISO 8601 time with a UTC offset as the naive UTC ``datetime`` it names (astropy
    refused ``'2019-07-29T22:47:26+02:00'`` as no ISO time); anything else unchanged."""
    if isinstance(value, str) and ":" in value and _UTC_OFFSET.search(value.strip()):
        try:
            aware = _dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return value  # (refused as it is, by the caller)
        if aware.utcoffset() is not None:
            return aware.astimezone(_dt.UTC).replace(tzinfo=None)
    return value


def _date_alone(value: Any) -> bool:
    """Whether ``value`` is an ISO date without a time of day (text, or a numpy
    ``datetime64`` in days or coarser)."""
    if isinstance(value, np.datetime64):
        return np.datetime_data(value.dtype)[0] in ("D", "W", "M", "Y")
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    try:
        _dt.date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def _refuse_date_alone(value: Any, name: str) -> None:
    """Refuse an ISO date without a time of day: it would be taken as its midnight (the
    Earth's velocity up to a day off), as a ``datetime.date`` or the command line's
    ``--date`` would be and are refused."""
    if _date_alone(value):
        raise InvalidArgumentError(
            f"{name}: a date alone is ambiguous by a day; give the time too, such as "
            f"'2019-07-29T20:47:26' (UTC), got {value!r}")


def _as_time(value: Any, name: str):
    """Convert a datetime, astropy Time, ISO string or array of those to a Time."""
    from astropy.time import Time

    value = _utc_text(value)

    if isinstance(value, Time):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        return Time(value, scale="utc")
    if isinstance(value, _dt.date):
        raise InvalidTypeError(
            f"{name} must be a datetime.datetime (a date alone is ambiguous by a day), "
            f"an astropy Time or an ISO time string, got {value!r}"
        )
    if isinstance(value, str | bytes | np.datetime64):
        _refuse_date_alone(value, name)
        try:
            return Time(value, scale="utc")
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"{name} must be an ISO time string like '2019-07-29T20:47:26', got {value!r}"
            ) from exc
    if isinstance(value, np.ndarray) and value.dtype.kind == "M":
        if value.size == 0:
            raise InvalidArgumentError(f"{name} must hold at least one time, got an empty array")
        _refuse_date_alone(value.ravel()[0], name)
        return Time(value, scale="utc")
    if isinstance(value, list | tuple | np.ndarray):
        items = np.asarray(value, dtype=object)
        if items.size == 0:
            raise InvalidArgumentError(f"{name} must hold at least one time, got an empty array")
        flat = items.ravel()
        for item in flat:
            if isinstance(item, str | bytes | np.datetime64):
                _refuse_date_alone(item, name)
        if all(isinstance(item, _dt.datetime | str) for item in flat):
            # one Time for the whole array: per-element Time objects are slow
            naive = [
                item.astimezone(_dt.UTC).replace(tzinfo=None)
                if isinstance(item, _dt.datetime) and item.utcoffset() is not None
                else _utc_text(item)
                for item in flat
            ]
            try:
                times = Time(naive, scale="utc")
            except (ValueError, TypeError) as exc:
                raise InvalidArgumentError(
                    f"{name} must hold datetimes or ISO time strings in one format"
                ) from exc
        else:
            try:
                times = Time([_as_time(item, name) for item in flat])
            except (ValueError, TypeError) as exc:
                raise InvalidArgumentError(f"{name} holds times that cannot be combined") from exc
        return times.reshape(items.shape)
    raise InvalidTypeError(
        f"{name} must be a datetime.datetime, an astropy Time, an ISO time string or an "
        f"array of those, got {type(value).__name__}"
    )


def earth_barycentric_velocity(dt: Any) -> NDArray[np.float64]:
    """Velocity of the Earth's centre relative to the solar-system barycentre.

    Parameters
    ----------
    dt : datetime.datetime, astropy.time.Time, str, or array_like of those
        Time of observation. A naive ``datetime`` is taken as UTC, an aware one is
        converted to UTC; strings are ISO 8601 (``'2019-07-29T20:47:26'``) in UTC,
        or with their UTC offset (``'2019-07-29T22:47:26+02:00'``);
        a ``Time`` keeps its own scale.

    Returns
    -------
    ndarray, shape ``(3,)`` or ``(..., 3)``
        ``[vx, vy, vz]`` in km/s along the ICRS (BCRS) axes, one row per input time
        for array input. The magnitude is about 29.3 to 30.3 km/s.

    Notes
    -----
    Uses the analytical ERFA ephemeris (``eraEpv00``, accurate to a few mm/s in
    velocity) through ``astropy.coordinates.get_body_barycentric_posvel`` with
    ``ephemeris='builtin'``, whatever ephemeris astropy is globally set to, so
    nothing is downloaded. Leap-second tables only shift the time by seconds
    (a ~1e-5 km/s effect), so a stale or dubious-year leap-second warning is
    suppressed rather than passed on. Pass the result as
    ``observer_velocity_km_s`` to a solve to remove the annual aberration. The
    camera's speed relative to the Earth's centre (<0.5 km/s from rotation, ~7.5
    km/s for a satellite in low orbit) must be added by the caller if it matters.

    Examples
    --------
    >>> import datetime
    >>> v = earth_barycentric_velocity(datetime.datetime(2019, 7, 29, 20, 47, 26))
    >>> round(float(np.linalg.norm(v)), 1)
    29.3
    """
    from astropy.coordinates import get_body_barycentric_posvel

    with _offline_time():
        t = _as_time(dt, "dt")
        try:
            _, vel = get_body_barycentric_posvel("earth", t, ephemeris="builtin")
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(
                f"dt cannot be converted to a barycentric time: {exc}"
            ) from exc
    # vel.xyz is in AU/day with the xyz axis first
    xyz = np.moveaxis(np.asarray(vel.xyz.to_value("AU/d"), dtype=np.float64), 0, -1)
    return xyz * (_AU_KM / _DAY_S)


def _check_velocity(velocity_km_s: ArrayLike) -> NDArray[np.float64]:
    try:
        v = np.asarray(velocity_km_s, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(
            "velocity_km_s must be a length-3 sequence of numbers in km/s"
        ) from exc
    if v.shape != (3,):
        raise InvalidArgumentError(
            f"velocity_km_s must have shape (3,) (vx, vy, vz in km/s), got shape {v.shape}"
        )
    if not np.all(np.isfinite(v)):
        raise InvalidArgumentError(f"velocity_km_s must be finite, got {v.tolist()}")
    speed = float(np.linalg.norm(v))
    if speed >= SPEED_OF_LIGHT_KM_S:
        raise InvalidArgumentError(
            f"velocity_km_s must be slower than light ({SPEED_OF_LIGHT_KM_S} km/s), "
            f"got |v| = {speed} km/s"
        )
    return v


def _check_vectors(vectors: ArrayLike) -> NDArray[np.float64]:
    try:
        u = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError("vectors must be an array of 3-vectors, shape (N, 3)") from exc
    if u.ndim == 0 or u.shape[-1] != 3:
        raise InvalidArgumentError(
            f"vectors must have shape (3,) or (N, 3), got shape {u.shape}"
        )
    if not np.all(np.isfinite(u)):
        raise InvalidArgumentError("vectors must be finite (found NaN or inf)")
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    if np.any(norm == 0.0):
        raise InvalidArgumentError("vectors must be non-zero direction vectors")
    return u / norm


def _boost(u: NDArray[np.float64], beta: NDArray[np.float64]) -> NDArray[np.float64]:
    # Direction of a source seen by an observer moving with velocity beta (units of c)
    # relative to the frame in which the source lies along u.  Lorentz-transforming
    # the photon's wave vector gives (with g = 1/sqrt(1 - b^2))
    #     u' ∝ u/g + beta + (u.beta) beta / (1 + 1/g)
    # (divided by 1 + u.beta, which the normalisation takes care of).  This is
    # ERFA's eraAb without its solar light-deflection term.
    inv_gamma = np.sqrt(1.0 - float(beta @ beta))
    udb = u @ beta
    p = inv_gamma * u + (1.0 + udb / (1.0 + inv_gamma))[..., None] * beta
    return p / np.linalg.norm(p, axis=-1, keepdims=True)


def aberrate(vectors: ArrayLike, velocity_km_s: ArrayLike) -> NDArray[np.float64]:
    """Apparent directions of stars for an observer in motion (special-relativistic).

    Parameters
    ----------
    vectors : array_like, shape ``(3,)`` or ``(N, 3)``
        Catalog ("natural", barycentric) ICRS directions; normalised first, so they
        need not be unit vectors.
    velocity_km_s : array_like, shape ``(3,)``
        Observer's velocity relative to the barycentre, km/s, ICRS axes (for
        example :func:`earth_barycentric_velocity`). Must be finite and below c.

    Returns
    -------
    ndarray, same shape as ``vectors``
        Apparent unit vectors, displaced towards the apex (the direction of
        ``velocity_km_s``) by ``sin(shift) ≈ (|v|/c) sin(angle to apex)``, e.g. 20.5"
        at 90 degrees from the apex for 29.8 km/s.

    Notes
    -----
    With ``beta = v/c`` and ``1/gamma = sqrt(1 - |beta|^2)``, the exact
    special-relativistic result is::

        u' = (u/gamma + beta + (u.beta) beta / (1 + 1/gamma)) / (1 + u.beta)

    which is ERFA's ``eraAb`` without its tiny (<~4 mas away from the Sun)
    gravitational light-deflection term.
    """
    v = _check_velocity(velocity_km_s)
    u = _check_vectors(vectors)
    return _boost(u, v / SPEED_OF_LIGHT_KM_S)


def unaberrate(vectors: ArrayLike, velocity_km_s: ArrayLike) -> NDArray[np.float64]:
    """Catalog directions of stars from their apparent directions: inverse of :func:`aberrate`.

    Parameters
    ----------
    vectors : array_like, shape ``(3,)`` or ``(N, 3)``
        Apparent ICRS directions seen by the moving observer (normalised first).
    velocity_km_s : array_like, shape ``(3,)``
        The observer's velocity, km/s, ICRS axes (the same as given to
        :func:`aberrate`).

    Returns
    -------
    ndarray, same shape as ``vectors``
        Natural (barycentric) unit vectors.

    Notes
    -----
    Collinear Lorentz boosts compose without rotation, so the inverse is exactly
    the same transformation with ``-velocity``; ``unaberrate(aberrate(u, v), v)``
    returns ``u`` to rounding (~1e-16).
    """
    v = _check_velocity(velocity_km_s)
    u = _check_vectors(vectors)
    return _boost(u, -v / SPEED_OF_LIGHT_KM_S)
