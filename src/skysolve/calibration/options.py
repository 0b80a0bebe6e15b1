"""Every calibration parameter, its default, docs and check: :class:`CalibrationOptions`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial
from typing import Any

from .. import _args
from .._options import Options, option
from ..camera.distortion import MAX_POLYNOMIAL_ORDER
from ..errors import InvalidArgumentError, InvalidTypeError
from .basis import PRIMARIES

__all__ = ["CALIBRATE_DOC", "CalibrationOptions", "MODELS", "MIN_SCALE_PAIRS"]

#: Distortion models the calibration fits.
MODELS = ("polynomial", "radial")
#: Fewest matched stars for which ``per_image_scale=None`` frees an image's plate scale.
MIN_SCALE_PAIRS = 20


_model = partial(_args.choice, choices=MODELS)
_primary = partial(_args.choice, choices=(*PRIMARIES, "auto"))
_order = partial(_args.count, minimum=1, maximum=MAX_POLYNOMIAL_ORDER)
_clip = partial(_args.positive, allow_inf=True)
_velocity = partial(_args.vector, length=3, what="numbers [vx, vy, vz] in km/s",
                    allow_none=True)


def _optional_flag(value: Any, name: str) -> bool | None:
    return None if value is None else _args.flag(value, name)


def _folds(value: Any, name: str) -> int:
    n = _args.count(value, name)
    if n == 1:
        raise InvalidArgumentError(f"{name} must be 0 (no validation) or >= 2, got 1")
    return n


def _resamples(value: Any, name: str) -> int:
    n = _args.count(value, name)
    if n == 1:  # one resample has no spread: its covariance would be a row of zeros
        raise InvalidArgumentError(f"{name} must be 0 (no bootstrap) or >= 2, got 1")
    return n


def _per_image(value: Any, name: str, item) -> tuple | None:
    """A sequence with one entry (or None) per solve result, each checked by ``item``."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidTypeError(
            f"{name} must be a list with one entry (or None) per solve result, got "
            f"{type(value).__name__}")
    return tuple(item(v, f"{name}[{i}]") for i, v in enumerate(value))


def _time(value: Any, name: str) -> Any:
    if value is None:
        return None
    from ..sky.aberration import _as_time

    t = _as_time(value, name)
    if not t.isscalar:
        raise InvalidArgumentError(f"{name} must be one time, got {t.shape} times")
    return t


def _catalog(value: Any, name: str) -> Any:
    from ..sky.catalogs import Catalog

    if value is None or isinstance(value, Catalog):
        return value
    if isinstance(value, str):
        return _args.choice(value, name, ("gaia",))
    raise InvalidTypeError(f"{name} must be None, 'gaia' or a Catalog, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationOptions(Options):
    """The parameters of one camera calibration (see the field documentation)."""

    image_width: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image width in pixels. Default: the solves' camera models, which must all
        be of one size.""")
    image_height: int | None = option(None, type="int, optional", check=_args.optional_size, doc="""
        Image height in pixels.""")
    image_shape: tuple[int, int] | None = option(
        None, type="(int, int), optional", check=_args.optional_shape, doc="""
        numpy ``(height, width)``; an alternative to width and height.""")
    model: str = option("polynomial", type="{'polynomial', 'radial'}", check=_model, doc="""
        Distortion model to fit: a SIP-like polynomial of ``order``
        (:class:`~skysolve.PolynomialDistortion`) or Brown-Conrady
        ``k1, k2, k3, p1, p2`` with its centre (:class:`~skysolve.RadialDistortion`;
        ``k3``, then ``k2``, are kept at 0, with a warning, where fitting them would make
        the distortion fold over inside the image).""")
    order: int = option(4, type="int", check=_order, doc=f"""
        Polynomial order, 1 to {MAX_POLYNOMIAL_ORDER} (terms of degree 2..order plus
        the two non-conformal linear terms are fitted); with ``select_order`` the
        highest order tried.""")
    max_iterations: int = option(10, type="int", check=_args.positive_count, doc="""
        Most Gauss-Newton steps (>= 1) of the final fit (``CalibrateResult.iterations``);
        the rounds of re-matching before it take up to two each.""")
    sigma_clip: float = option(3.0, type="float", check=_clip, doc="""
        Pairs whose residual exceeds ``sigma_clip`` times the robust rms residual
        of their image (px; ``CalibrateResult.per_image_noise_px``) are left out of
        the next step (``inf`` disables, weights every image alike and leaves none out,
        see ``CalibrateResult.excluded_images``).""")
    convergence_threshold_px: float = option(0.01, type="float", check=_args.nonnegative, doc="""
        Stop when the inlier rms residual changes by less than this (px).""")
    per_image_scale: bool | None = option(None, type="bool, optional", check=_optional_flag,
                                          keyword_only=True, doc=f"""
        Fit a plate-scale factor per image (a factor on the shared focal length;
        the factors average 1), for what changes between images -- velocity
        aberration (up to ~1e-4), focus, temperature. None: for every image with
        at least {MIN_SCALE_PAIRS} matched stars, when two or more have them;
        True: every image; False: one focal length for all.""")
    observer_velocities_km_s: tuple | None = option(
        None, type="sequence of (3,) array_like or None, optional",
        check=partial(_per_image, item=_velocity), keyword_only=True, doc="""
        One observer velocity (km/s, ICRS, relative to the solar-system
        barycentre, e.g. a spacecraft's) per solve result: its stars are
        aberrated with it, so the fit removes each image's differential velocity
        aberration. Entries that are None use ``observation_times``, else the
        velocity the image was solved with (if any).""")
    observation_times: tuple | None = option(
        None, type="sequence of datetime, astropy Time, ISO str or None, optional",
        check=partial(_per_image, item=_time), keyword_only=True, doc="""
        One observation time (UTC) per solve result: the Earth's barycentric
        velocity then (:func:`~skysolve.earth_barycentric_velocity`) aberrates that
        image's stars, for a camera on Earth or in Earth orbit.""")
    polynomial_primary: str = option("auto", type="{'auto', 'inverse', 'forward'}",
                                     check=_primary, keyword_only=True, doc="""
        Direction the polynomial is fitted in: ``'inverse'`` (pixel -> sky, the
        direction of FITS SIP A/B, exact for SIP-described optics such as TESS)
        or ``'forward'`` (sky -> pixel, tetra3rs's; a lens's radial distortion is a
        short polynomial this way, its inverse a long series). The other direction
        is fitted to it over the image. ``'auto'``: inverse, unless a forward fit of
        the same images holds clearly more of their matched stars or fits them
        clearly better, or the two hold them alike and the forward direction holds
        them better at a lower order (see :mod:`skysolve.calibration.fit`; with
        ``'inverse'`` a warning says so when the forward fit is clearly better).""")
    fit_distortion_center: bool | None = option(None, type="bool, optional",
                                                check=_optional_flag, keyword_only=True, doc="""
        Radial model: fit the distortion centre's offset from the optical centre
        (``RadialDistortion.center``) besides the optical centre itself. None:
        when the data determine it (the fit stays well conditioned, and the free
        centre lowers the residuals significantly: otherwise ``p1``, ``p2`` carry the
        decentring, which to first order is the same); True: without that last test.""")
    validation_folds: int = option(5, type="int", check=_folds, keyword_only=True, doc="""
        k-fold cross-validation over the stars: each fold is left out in turn, the
        camera and attitudes refitted without it and its stars predicted, giving
        out-of-sample residuals per image (``CalibrateResult.holdout_rmse_px``).
        0 skips it.""")
    select_order: bool = option(False, type="bool", check=_args.flag, keyword_only=True, doc="""
        Polynomial model: fit every order from 2 to ``order`` (as high as the stars
        constrain) and keep, from the lowest whose held-out residual is within 1 % of
        the smallest upwards, the first that no higher order fits clearly better than
        the noise allows (see :mod:`skysolve.calibration.validation`; needs
        ``validation_folds``).""")
    bootstrap: int = option(0, type="int", check=_resamples, keyword_only=True, doc="""
        Bootstrap refits (a wild bootstrap over the stars' residuals) for bootstrap
        uncertainties
        beside the fit covariance; 0 skips them.""")
    catalog: Any = option(None, type="None, 'gaia' or Catalog", check=_catalog,
                          keyword_only=True, doc="""
        Match more stars to the centroids from this catalog (e.g. ``'gaia'``, the
        bundled Gaia catalog), besides the database stars the solves matched:
        under a first fit of the camera, only isolated, unambiguous pairs; then
        the camera is fitted again with them.""")
    magnitude_weights: bool | None = option(None, type="bool, optional",
                                            check=_optional_flag, keyword_only=True, doc="""
        Weight the stars by the residual scatter and bias of their magnitude bin
        (saturated stars in a bin of their own), and refit. None: when every
        bin has enough stars. The per-bin bias is reported either way
        (``CalibrateResult.magnitude_bins``).""")

    def _check_together(self) -> None:
        if self.select_order and self.validation_folds == 0:
            raise InvalidArgumentError("select_order needs validation_folds >= 2")


#: The docstring of the public calibration functions (``{parameters}``: the options).
CALIBRATE_DOC = """Fit one camera model shared by one or many solved images.

The images' matched centroids and catalog stars are fitted by least squares
with one focal length, optical centre and lens distortion shared by all
images and, per image, its attitude and (where determined) its plate scale
(see :mod:`skysolve.calibration.fit`). The result carries the fit's
uncertainties, held-out residuals and per-magnitude residual bias.

Parameters
----------
solve_results : SolveResult, SolveFailure, None, or a sequence of them
    Plate solutions. Failed solves (None or :class:`SolveFailure`) are
    skipped together with their centroid sets, so a list of solver outputs
    can be passed straight through. They share one parity; solved under
    different lens projections (solves told none guess each frame's), the
    matched stars of all are calibrated under the one most were solved with,
    with a ``UserWarning`` naming the others (as many of two is refused).
centroids : list of centroid sets, or one centroid set for a single result
    Each set as given to ``solve_from_centroids`` (list of
    :class:`~skysolve.Centroid`, ``ExtractionResult``, or ``(N, 2)`` /
    ``(N, 3)`` array), in centred pixels; ``matched_centroids`` index it.
    With a single result (bare or in a one-element list) the set may be
    passed bare too.
{parameters}
options : CalibrationOptions, optional
    All of the above as one object; keyword arguments given as well override
    its values.

Returns
-------
CalibrateResult
    ``camera_model`` has the solves' parity, the fitted focal length,
    optical centre and distortion.

Raises
------
InvalidArgumentError
    Mismatched list lengths, no successful solve, an image with fewer than
    3 matches, solves that disagree on parity or image size, matched
    indices or catalog ids that do not belong to ``centroids``/the database,
    too few pairs for the number of parameters, or an argument out of range.
InvalidTypeError
    An argument of the wrong type.
"""
