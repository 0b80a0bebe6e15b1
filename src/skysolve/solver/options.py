"""Every solve parameter, its default, units, documentation and check: :class:`SolveOptions`.

``SolverDatabase.solve_from_centroids`` (the tetra3rs-compatible signature),
:func:`skysolve.solver.solve.solve_from_centroids`, the batch and calibration
workflows and the command line all build one :class:`SolveOptions` and hand
it to the solver; its signature and "Parameters" documentation are generated
from the fields below. A new solve parameter is one new field here.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property, partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from .._options import Options, option
from ..camera.projection import PROJECTIONS, code_of, max_angle
from ..centroids import ORIGINS
from ..errors import InvalidArgumentError, InvalidTypeError, warn_caller
from ..geometry import as_rotation_matrix, radec_to_vector

__all__ = ["SolveOptions", "BACKENDS", "MAX_PATTERN_STARS_LIMIT", "MIN_SCALE_MATCHES"]

#: Values of :attr:`SolveOptions.backend`.
BACKENDS = ("auto", "compiled", "reference")
#: Default hint uncertainty when none is given, radians.
DEFAULT_HINT_UNCERTAINTY_RAD = math.radians(1.0)
#: Radius of a position hint's cone when none is given, degrees.
DEFAULT_POSITION_RADIUS_DEG = 5.0


def _camera(value: Any, name: str) -> Any:
    from ..camera.model import CameraModel

    if value is not None and not isinstance(value, CameraModel):
        raise InvalidTypeError(f"{name} must be a CameraModel, got {type(value).__name__}")
    return value


def _attitude(value: Any, name: str) -> NDArray[np.float64] | None:
    if value is None:
        return None
    return np.ascontiguousarray(as_rotation_matrix(value, name))


# up to a full turn: fisheyes see more than 180 degrees (checked against the projection below)
_fov_deg = partial(_args.positive, maximum=360.0, allow_none=True)
_fov_rad = partial(_args.positive, maximum=2.0 * math.pi, allow_none=True)
_pattern_error = partial(_args.positive, maximum=0.25, open_max=True, allow_none=True)
_velocity_vector = partial(_args.vector, length=3, what="numbers [vx, vy, vz] in km/s",
                           allow_none=True)
_crpix = partial(_args.vector, length=2, what="numbers [x, y] in pixels", allow_none=True)
#: Faster than any spacecraft (the Parker probe: ~190 km/s): likely m/s given as km/s.
_SUSPICIOUS_SPEED_KM_S = 1000.0


def _velocity(value: Any, name: str) -> NDArray[np.float64] | None:
    """An observer velocity, km/s, slower than light (one much faster than any spacecraft
    is taken, with a warning: it may be metres per second)."""
    from ..sky.aberration import SPEED_OF_LIGHT_KM_S

    v = _velocity_vector(value, name)
    if v is None:
        return None
    speed = float(np.linalg.norm(v))
    if speed >= SPEED_OF_LIGHT_KM_S:
        raise InvalidArgumentError(f"{name} must be slower than light "
                                   f"({SPEED_OF_LIGHT_KM_S:g} km/s), got |v| = {speed:g} km/s")
    if speed > _SUSPICIOUS_SPEED_KM_S:

        warn_caller(f"{name}: |v| = {speed:g} km/s is faster than any spacecraft; is it "
                    "in m/s? (the Earth moves at ~30 km/s)", UserWarning)
    return v


_backend = partial(_args.choice, choices=BACKENDS)
_origin = partial(_args.choice, choices=ORIGINS, allow_none=True)
_radius_deg = partial(_args.positive, maximum=180.0, allow_none=True)
_fov_bounds = partial(_args.bounds, maximum=360.0, allow_none=True)


def _optional_flag(value: Any, name: str) -> bool | None:
    return None if value is None else _args.flag(value, name)


#: The header cards :func:`~skysolve.io.images.header_mjd` takes a time from alone (an end
#: time only with a start).
_TIME_CARDS = ("DATE-AVG", "MJD-AVG", "DATE-OBS", "MJD-OBS")


def _obstime(value: Any, name: str) -> Any:
    """An astropy ``Time`` from a Time, datetime, ISO string or a FITS header's date."""
    if value is None:
        return None
    from ..sky.aberration import _as_time

    if hasattr(value, "cards") and hasattr(value, "get"):  # an astropy.io.fits Header
        from astropy.time import Time

        from ..io.images import header_mjd

        mjd = header_mjd(value)
        if mjd is None:
            # a card that is there but holds no date says which, not "has no time"
            bad = next((f"{key} = {value[key]!r}" for key in _TIME_CARDS if key in value), None)
            raise InvalidArgumentError(
                f"{name}: the FITS header has no DATE-AVG, DATE-OBS or MJD-OBS time"
                if bad is None else f"{name}: the FITS header's {bad} is not a time "
                "(a date 'YYYY-MM-DDThh:mm:ss', or an MJD number)")
        return Time(mjd, format="mjd", scale="utc")
    t = _as_time(value, name)
    if not t.isscalar:
        raise InvalidArgumentError(f"{name} must be one time, got {t.shape} times")
    if t.scale == "local":  # (astropy's free-running clock: no conversion to TDB)
        raise InvalidArgumentError(
            f"{name}: a Time in the 'local' scale cannot be placed in TDB, where the "
            "Earth's velocity is looked up; give it in UTC, TT, TAI or TDB")
    return t


_projection = partial(_args.choice, choices=PROJECTIONS, allow_none=True)
#: A pattern needs four stars.
_MIN_PATTERN_STARS = 4
#: Most pattern stars: the brightest-first pattern list has ``C(n, 4)`` entries.
MAX_PATTERN_STARS_LIMIT = 50


def _pattern_stars(value: Any, name: str) -> int:
    """A count of at least four; above :data:`MAX_PATTERN_STARS_LIMIT` (which tetra3rs
    takes) the brightest that many, with a warning."""
    n = _args.count(value, name, minimum=_MIN_PATTERN_STARS)
    if n > MAX_PATTERN_STARS_LIMIT:
        most = MAX_PATTERN_STARS_LIMIT
        warn_caller(f"{name}={n}: patterns are drawn from at most the brightest {most} "
                    f"centroids ({math.comb(most, 4):,} patterns); those are used",
                    UserWarning)
        return MAX_PATTERN_STARS_LIMIT
    return n


_patterns_checked = partial(_args.count, minimum=1, allow_none=True)
#: Fewest matches for which ``refine_scale=None`` refines the plate scale of a camera model.
MIN_SCALE_MATCHES = 20


#: Pairs of alternative arguments (at most one of each may be given).
_EXCLUSIVE = (("fov_estimate_deg", "fov_estimate_rad"), ("fov_max_error_deg", "fov_max_error_rad"),
              ("hint_uncertainty_deg", "hint_uncertainty_rad"),
              ("observer_velocity_km_s", "obstime"))
#: The scale hints (one at most).
_SCALE_HINTS = ("fov_estimate_deg", "fov_estimate_rad", "fov_range_deg",
                "pixel_scale_range_arcsec")


@dataclasses.dataclass(frozen=True, eq=False)
class SolveOptions(Options):
    """The parameters of one plate solve (see the field documentation).

    Instances are immutable and checked when created; :meth:`replace` makes
    modified copies. ``attitude_hint`` is stored as its rotation matrix and
    ``image_shape`` as a ``(height, width)`` tuple of ints.
    """

    fov_estimate_deg: float | None = option(None, type="float, optional", check=_fov_deg, doc="""
        Horizontal field of view estimate, degrees (give at most one of the two;
        below 180 for the pinhole and orthographic projections, at most 360 for
        the others). Default: the camera model's, else the database's whole range
        is searched.""")
    fov_estimate_rad: float | None = option(None, type="float, optional", check=_fov_rad, doc="""
        The same in radians.""")
    image_width: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image width in pixels.""")
    image_height: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image height in pixels (default: the width).""")
    image_shape: tuple[int, int] | None = option(
        None, type="(int, int), optional", check=_args.optional_shape, doc="""
        numpy ``(height, width)``; an alternative to width and height. Centroids given
        as an ``ExtractionResult`` carry their image's size: none is needed (a size
        given must agree with it).""")
    fov_max_error_deg: float | None = option(
        None, type="float, optional", check=_args.optional_nonnegative, doc="""
        Largest allowed error of the estimate, degrees (give at most one of the two).
        Default: the search accepts fields of view between 0.6x and 1/0.6x the
        estimate (or the database's range when there is no estimate).""")
    fov_max_error_rad: float | None = option(
        None, type="float, optional", check=_args.optional_nonnegative, doc="""
        The same in radians.""")
    match_radius: float = option(0.01, type="float", check=_args.open_fraction, doc="""
        Match distance as a fraction of the image width (0 < r < 1).""")
    match_threshold: float = option(1e-5, type="float", check=_args.open_fraction, doc="""
        False-positive probability a solution must beat (0 < p < 1).""")
    solve_timeout_ms: float | None = option(5000.0, type="float or None",
                                            check=_args.optional_nonnegative, doc="""
        Give up after this many milliseconds (None or 0: no limit). Neither this
        limit nor ``solve_time_ms`` counts the one-time preparation of the
        compiled kernels for a database (the first solve in a process; compiling
        them on a machine's first run takes seconds, cached on disk after).""")
    max_patterns_checked: int | None = option(
        10_000_000, type="int or None", check=_patterns_checked, doc="""
        Budget of image patterns (4-star combinations of the pattern stars) the
        lost-in-space search looks up (all its searches together: a tracking hint's
        pattern search, the search of the database's range, a search told no scale
        going on to wider fields); when it runs out before a match the
        solve fails with status ``'timeout'``, as when ``solve_timeout_ms``
        runs out (>= 1; None: no budget; the patterns of every focal-length
        window count). The default is larger than any single-scale search:
        ``pattern_checking_stars=24`` give 10,626 patterns.""")
    pattern_checking_stars: int = option(
        24, type="int", check=_pattern_stars, doc=f"""
        How many centroids form patterns: the brightest ones, after dropping
        any closer to a brighter one than the database's pattern-star
        separation (at least {_MIN_PATTERN_STARS}; above {MAX_PATTERN_STARS_LIMIT}, the
        brightest {MAX_PATTERN_STARS_LIMIT} with a warning). Patterns
        are tried brightest first, so more stars only help frames whose
        brightest stars are mostly not in the catalog (false detections,
        satellites), at up to ``C(n, 4)`` patterns. When the scale is searched
        over several focal-length windows (a wide field of view range without
        a camera model), each window takes at most the brightest 14.""")
    match_max_error: float | None = option(
        None, type="float, optional", check=_pattern_error, doc="""
        Largest edge-ratio difference of a pattern match (0 < e < 0.25); default
        the database's ``pattern_max_error``. When no pattern matches within it, the
        lost-in-space search runs once more at twice the database's tolerance (if
        that is wider) on the brightest 12 pattern stars.""")
    camera_model: Any = option(None, type="CameraModel, optional", check=_camera, doc="""
        Fixes focal length, optical centre, parity, distortion and projection.""")
    observer_velocity_km_s: NDArray[np.float64] | None = option(
        None, type="array_like (3,), optional", check=_velocity, doc="""
        Observer's ICRS velocity, km/s (e.g. ``earth_barycentric_velocity(t)``);
        catalog directions are aberrated with it.""")
    attitude_hint: NDArray[np.float64] | None = option(
        None, type="quaternion [w, x, y, z] or 3x3 matrix, optional", check=_attitude, doc="""
        Tracking mode: match against catalog stars around this ICRS-to-camera
        attitude, falling back to the lost-in-space search unless ``strict_hint``.
        Tracking is left out where the hint's reach goes beyond the image's corners
        (at each focal length of the range without a camera model): the pattern
        search answers there (tracking's votes took 45 ms to 1 s to find a few such
        fields).""")
    hint_uncertainty_deg: float | None = option(
        None, type="float, optional", check=_args.optional_positive, doc="""
        Uncertainty of the hint, degrees (give at most one of the two; default 1).""")
    hint_uncertainty_rad: float | None = option(
        None, type="float, optional", check=_args.optional_positive, doc="""
        The same in radians.""")
    strict_hint: bool = option(False, type="bool", check=_args.flag, doc="""
        With a hint, do not fall back to the lost-in-space search: an answer must agree
        with the hinted attitude (it moves no direction of the field by more than 1.5
        ``hint_uncertainty``, or a match radius: a roll about the boresight counts by how
        far it moves the image's corners, not by its angle). Without a camera
        model, whose scale tracking can only sample, or with a hint whose reach goes
        beyond the image's corners, the pattern search held to the hint's cone still
        runs (see ``attitude_hint`` for the focal lengths tracking leaves to it). With
        fewer than 3 centroids (tracking's minimum) the
        solve fails with ``'too_few'``, as tetra3rs's.""")
    # -- skysolve's own parameters (keyword-only, so that positional calls written
    # for tetra3rs 0.14 mean the same)
    refine_iterations: int = option(2, type="int", check=_args.count, keyword_only=True, doc="""
        Re-match and refit passes after the first match (>= 0). tetra3rs took
        this up to 0.7 and then dropped it; skysolve still honours it.""")
    projection: str | None = option(
        None, type="{'pinhole', 'equidistant', 'equisolid', 'stereographic', 'orthographic'}"
        ", optional", check=_projection, keyword_only=True, doc="""
        Lens projection (see :class:`~skysolve.CameraModel`): ``'pinhole'``
        (gnomonic), or a fisheye's ``'equidistant'``, ``'equisolid'``,
        ``'stereographic'`` or ``'orthographic'``. Default: the camera model's,
        else pinhole; told neither, a wide field (corners 20 deg or more off the
        axis) whose pinhole fit leaves pixels of residual is refined under the
        fisheye projections too, and the one that fits far better is taken
        (``result.camera_model.projection``; see the user guide's Lens projections);
        and a pinhole search that found nothing, told a scale of 40 deg or wider
        or none, searches again as an equidistant fisheye's, over its fields from
        40 deg (told no scale, then as an equisolid one's).
        Without a camera model the focal length is searched for over the
        field-of-view range.""")
    crpix: NDArray[np.float64] | None = option(
        None, type="array_like (2,), optional", check=_crpix, keyword_only=True, doc="""
        Without a camera model: the optical centre's offset from the image centre
        (px, +x right, +y down; as ``CameraModel.crpix``), where the lens axis meets
        the image; default: the centre of the image circle the extraction kept to
        (an ``ExtractionResult``'s ``sky_circle``: an all-sky lens's circle is centred
        on its axis), else ``(0, 0)``. For a crop of a frame whose optical centre is
        the frame's centre, that centre in the crop's centred pixels: a crop's stars
        are not a pinhole image about the crop's own centre. A camera model brings
        its own.""")
    origin: str | None = option(
        None, type="{'center', 'zero', 'fits'}, optional", check=_origin, keyword_only=True, doc="""
        Pixel convention of the centroid positions: ``'center'`` (skysolve's
        centred pixels, the default for arrays), ``'zero'`` (0-based array pixels:
        the centre of array pixel ``[row, col]`` is ``(col, row)``, as photutils
        and numpy count) or ``'fits'`` (1-based FITS pixels, as ``.axy``/``.xyls``
        files). Required for an astropy ``Table`` of centroids (columns ``x``/``y``,
        ``xcentroid``/``ycentroid`` or ``X``/``Y``; a flux column, if any, orders
        them brightest first), whose convention cannot be guessed.""")
    position_hint: tuple[float, float] | None = option(
        None, type="(float, float) or SkyCoord, optional", check=_args.optional_sky_position,
        keyword_only=True,
        doc="""
        Approximate boresight ``(ra_deg, dec_deg)`` (ICRS degrees) or an astropy
        ``SkyCoord``, roll unknown. The lost-in-space search then considers only
        catalog patterns whose stars lie within ``position_radius_deg`` plus the
        field's radius of it (fewer candidates: faster), and a solution whose
        boresight (``ra_deg``, ``dec_deg``) lies outside the cone is never returned:
        a hint that misses gives a :class:`~skysolve.SolveFailure`.""")
    position_radius_deg: float | None = option(None, type="float, optional", check=_radius_deg,
                                               keyword_only=True,
                                               doc="""
        Radius of the position hint's cone, degrees (0 < r <= 180; default 5).""")
    fov_range_deg: tuple[float, float] | None = option(
        None, type="(float, float), optional", check=_fov_bounds, keyword_only=True, doc="""
        Scale hint: the horizontal field of view lies in ``(low, high)`` degrees (an
        alternative to ``fov_estimate_deg`` and ``fov_max_error_deg``).""")
    pixel_scale_range_arcsec: tuple[float, float] | None = option(
        None, type="(float, float), optional", check=_args.optional_bounds, keyword_only=True,
        doc="""
        Scale hint: the pixel scale at the optical centre lies in ``(low, high)``
        arcseconds per pixel (an alternative to the field-of-view arguments).""")
    parity_flip: bool | None = option(None, type="bool, optional", check=_optional_flag,
                                      keyword_only=True, doc="""
        Parity hint: True searches only mirror images of the sky, False only
        unmirrored ones; None (default) tries both, or takes the camera model's.""")
    obstime: Any = option(
        None, type="astropy Time, datetime, ISO string or FITS Header, optional",
        check=_obstime, keyword_only=True, doc="""
        Time of observation from the Earth (or near it): the catalog is aberrated
        with the Earth's barycentric velocity then (``earth_barycentric_velocity``),
        in place of ``observer_velocity_km_s``. A FITS header gives its
        DATE-AVG, MJD-AVG, DATE-OBS/DATE-END midpoint, or DATE-OBS or MJD-OBS plus
        half its EXPTIME (or EXPOSURE) when it has one (UTC; see
        :func:`skysolve.io.images.header_mjd`).""")
    backend: str = option("auto", type="{'auto', 'compiled', 'reference'}", check=_backend,
                          keyword_only=True, doc="""
        Solver implementation: the numba-compiled kernels, or the pure-numpy
        reference (same answers, several times slower); ``'auto'`` takes the
        compiled one once its kernels are in numba's disk cache (compiled once per
        installation, in a background process started by the first solve, which
        uses the reference meanwhile), unless numba is missing or
        ``SKYSOLVE_DISABLE_NUMBA=1``.""")
    deep_search: bool | None = option(None, type="bool, optional", check=_optional_flag,
                                      keyword_only=True, doc="""
        When the lost-in-space passes find nothing, search once more at the wide
        tolerance on the patterns of the brightest 26 centroids, or
        ``pattern_checking_stars`` when that is more (thinned at half the
        separation; 26 in each focal-length window of a search without a scale
        hint, at the first pass's tolerance), and with a scale hint then on the
        brightest 50, then 60, at the first pass's tolerance: for frames whose brightest
        centroids are mostly not stars. Its hypotheses are also verified from the
        catalog's side (are the brightest catalog stars in the image detected, wherever
        the list ranks them?). Giving up then takes several times as
        long (seconds on a database of ``pattern_max_error=0.005``, as far as
        ``solve_timeout_ms`` allows). None (default): only for an
        ``ExtractionResult`` that rejected more artefacts (sharp, overlay, elongated,
        narrow and foreground detections and trails: hot pixels, burned-in captions
        and graphics, cosmic rays, JPEG blocks, lit twigs, trails), with its
        ``'doubtful'`` centroids, than it kept other centroids: a frame whose kept list
        likely holds more of the same.""")
    max_hypotheses_verified: int | None = option(
        None, type="int or None", check=_patterns_checked, keyword_only=True, doc="""
        Budget of attitude hypotheses (a pattern's stars fitted to a catalog pattern's)
        the lost-in-space search verifies against the whole list, all its searches
        together; when it runs out before a match the solve fails with status
        ``'timeout'``, as when ``max_patterns_checked`` runs out (>= 1; None, the
        default: no budget). A list of real stars verifies its answer among its first
        few hypotheses; a list of noise makes thousands, and verifying them is most
        of the time a search of it takes (``solve_image``'s deeper second extraction
        of a frame short of stars is solved with 2,000).""")
    refine_scale: bool | None = option(None, type="bool, optional", check=_optional_flag,
                                       keyword_only=True, doc=f"""
        With a ``camera_model``: also refine this image's plate scale (a factor on
        the camera's focal length, as a calibration's per-image scale: velocity
        aberration, focus) from the matched stars after refinement; the result's
        ``camera_model`` carries the refined focal length. None: when at least
        {MIN_SCALE_MATCHES} stars matched; False: keep the camera's focal length.
        Unless False, a camera whose focal length the matched stars put 0.1-10 %
        off, fitting their own scale far better, is taken for a wrong one (a
        nominal field of view, another lens): the solve goes on from the stars'
        scale, with a warning. Without a camera model the focal length is always
        fitted.""")

    def _check_together(self) -> None:
        values = self.__dict__  # (read directly: ~2 us of getattr calls a solve)
        for a, b in _EXCLUSIVE:
            if values[a] is not None and values[b] is not None:
                _args.exclusive(a, values[a], b, values[b])
        self._check_hints()
        cam = self.camera_model
        if cam is not None and self.crpix is not None:
            raise InvalidArgumentError(
                "crpix is for a solve without a camera model: the camera model's crpix is "
                "the optical centre")
        if (cam is not None and self.projection is not None
                and self.projection != cam.projection):
            raise InvalidArgumentError(
                f"projection={self.projection!r} disagrees with the camera model's "
                f"{cam.projection!r}")
        fov = self.fov_estimate
        code = code_of(self.lens_projection) if fov is not None else 0
        limit = 2.0 * max_angle(code)
        if fov is not None and (fov > limit or (fov == limit and code == 0)):
            name = "fov_estimate_deg" if self.fov_estimate_deg is not None else \
                "fov_estimate_rad"
            raise InvalidArgumentError(
                f"{name}: the field of view estimate {math.degrees(fov):g} deg is beyond "
                f"what a {self.lens_projection} lens images "
                f"({'below' if code == 0 else 'up to'} {math.degrees(limit):g} deg)")
        if self.image_shape is not None:
            h, w = self.image_shape
            if self.image_width is not None and self.image_width != w:
                raise InvalidArgumentError(
                    f"image_width={self.image_width} disagrees with image_shape={(h, w)}")
            if self.image_height is not None and self.image_height != h:
                raise InvalidArgumentError(
                    f"image_height={self.image_height} disagrees with image_shape={(h, w)}")

    def _check_hints(self) -> None:
        values = self.__dict__
        scales = [name for name in _SCALE_HINTS if values[name] is not None]
        if len(scales) > 1:
            raise InvalidArgumentError(f"give one scale hint, not {' and '.join(scales)}")
        if scales and scales[0] in ("fov_range_deg", "pixel_scale_range_arcsec"):
            for name in ("fov_max_error_deg", "fov_max_error_rad"):
                if getattr(self, name) is not None:
                    raise InvalidArgumentError(f"{name} applies to fov_estimate_deg, not to "
                                               f"{scales[0]}")
        if self.position_radius_deg is not None and self.position_hint is None:
            raise InvalidArgumentError("position_radius_deg needs a position_hint")
        cam = self.camera_model
        if (cam is not None and self.parity_flip is not None
                and self.parity_flip != bool(cam.parity_flip)):
            raise InvalidArgumentError(
                f"parity_flip={self.parity_flip} disagrees with the camera model's "
                f"parity_flip={bool(cam.parity_flip)}")

    # -- resolved values the solver works with
    @property
    def lens_projection(self) -> str:
        """The lens projection: given, else the camera model's, else ``'pinhole'``."""
        if self.projection is not None:
            return self.projection
        return "pinhole" if self.camera_model is None else self.camera_model.projection

    @property
    def fov_estimate(self) -> float | None:
        """The field of view estimate in radians, or None."""
        if self.fov_estimate_deg is not None:
            return math.radians(self.fov_estimate_deg)
        return self.fov_estimate_rad

    @property
    def fov_max_error(self) -> float | None:
        """The largest error of the estimate in radians, or None."""
        if self.fov_max_error_deg is not None:
            return math.radians(self.fov_max_error_deg)
        return self.fov_max_error_rad

    @property
    def field_estimate(self) -> float | None:
        """The field of view estimate in radians: the one given, else the camera model's
        (when finite), else None."""
        if self.fov_estimate is not None or self.camera_model is None:
            return self.fov_estimate
        fov = self.camera_model.fov_deg
        return math.radians(fov) if math.isfinite(fov) else None

    def told_fov_range(self, image_width: int | None = None) -> tuple[float, float] | None:
        """The horizontal fields of view (radians, ``(low, high)``) the scale hints allow:
        ``fov_range_deg``; else :attr:`field_estimate` within ``fov_max_error``, or from 0.6
        to 1/0.6 times it; else, given the ``image_width`` (px),
        ``pixel_scale_range_arcsec`` times it (the scale at the optical centre over the
        whole width: a pinhole's field to within its tangent); None without a scale hint."""
        if self.fov_range_deg is not None:
            lo, hi = self.fov_range_deg
            return math.radians(lo), math.radians(hi)
        est = self.field_estimate
        if est is not None:
            err = self.fov_max_error
            if err is not None:
                return max(est - err, 1e-6), est + err
            return est * 0.6, est / 0.6
        if self.pixel_scale_range_arcsec is not None and image_width is not None:
            lo, hi = self.pixel_scale_range_arcsec
            return (math.radians(lo / 3600.0) * image_width,
                    math.radians(hi / 3600.0) * image_width)
        return None

    @property
    def hint_uncertainty(self) -> float:
        """The hint uncertainty in radians (1 degree unless given)."""
        if self.hint_uncertainty_deg is not None:
            return math.radians(self.hint_uncertainty_deg)
        if self.hint_uncertainty_rad is not None:
            return self.hint_uncertainty_rad
        return DEFAULT_HINT_UNCERTAINTY_RAD

    @property
    def position_cone(self) -> tuple[NDArray[np.float64], float] | None:
        """The position hint as ``(ICRS unit vector, radius in radians)``, or None."""
        if self.position_hint is None:
            return None
        radius = self.position_radius_deg
        radius = DEFAULT_POSITION_RADIUS_DEG if radius is None else radius
        return radec_to_vector(*self.position_hint), math.radians(radius)

    @cached_property
    def observer_velocity(self) -> NDArray[np.float64] | None:
        """The observer's ICRS velocity (km/s): given, else the Earth's at ``obstime``."""
        if self.obstime is None:
            return self.observer_velocity_km_s
        from ..sky.aberration import earth_barycentric_velocity

        return earth_barycentric_velocity(self.obstime)

    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` from the size arguments or the camera model."""
        return self._image_size

    @cached_property
    def _image_size(self) -> tuple[int, int]:
        cams = [] if self.camera_model is None else [self.camera_model]
        return _args.image_size(self.image_width, self.image_height, self.image_shape, cams)
