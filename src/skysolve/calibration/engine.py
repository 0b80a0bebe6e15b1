"""The calibration's fitting engine: start values, iterations, the fitted state.

:func:`fit_camera` sets the problem up (:mod:`skysolve.calibration.lsq`),
finds start values (for a radial model from a polynomial fit, see
:mod:`skysolve.calibration.radial`) and fits it: Gauss-Newton steps with
sigma clipping (:func:`iterate`), re-matching the stars under the fit until
the pairs settle (:func:`~skysolve.calibration.matching.rematch`), then the
per-image scales freed. The algorithm and its degeneracies are described in
:mod:`skysolve.calibration.fit`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..camera.distortion import RadialDistortion
from ..camera.model import CameraModel
from ..errors import InvalidArgumentError
from ..geometry import wahba_rotation
from .basis import Basis, project_distortion
from .lsq import Pairs, Params, Problem, core_rms, rms, robust_rms
from .matching import rematch
from .options import MIN_SCALE_PAIRS, CalibrationOptions
from .radial import folds_over, radial_start, star_coverage
from .stars import magnitude_weights

__all__ = ["Fitted", "fit_camera", "image_noise", "iterate", "make_camera", "refit_attitudes",
           "star_reach", "MAX_NOISE_RATIO", "MIN_REDUNDANCY"]

#: The centres (optical and radial distortion) are fitted only when the matched stars
#: leave at least this many residual degrees of freedom (``2 * pairs - free parameters``)
#: per shared parameter, i.e. three equations per shared parameter beyond what the
#: images' attitudes take; otherwise they keep their input values (a ``UserWarning``
#: says so). The condition-number test below cannot see this: 6 frames of 3 stars
#: (18 equations beyond the attitudes for 10 shared parameters of a radial model) gave
#: a well-conditioned design, yet the optical centre came out 66 px from the truth
#: (median of 8 draws, up to 205 px) and the mapping 2.9 px off at worst (median)
#: for 0.1 px centroids, ``converged`` and without a warning; kept at the image
#: centre, 12 px from the truth, the mapping was 0.7 px off. 6 frames of 5 stars, 10
#: of 3 and 3 of 10 have 4-5 and still fit them.
MIN_REDUNDANCY = 2.0
# Column-normalised condition number above which the optical centre (or the radial
# distortion centre) is considered unobservable and kept fixed.
_CRPIX_MAX_CONDITION = 1e6
# Share of the image a single image's stars must cover (radial.star_coverage) for a
# radial fit to free its optical centre: stars in the middle only leave it to whatever
# the extrapolated distortion makes of their noise.
_SINGLE_IMAGE_COVERAGE = 0.75
# A single image's fitted optical centre is kept only when its shift from the input is
# significant: chi-square (2 degrees of freedom) of the shift under the fit covariance
# above this (p = 0.003). A real frame of 38 stars put it (-23 +- 12, -4 +- 10) px off,
# which moved the boresight its solves report by 0.27 deg for nothing.
_CENTRE_CHI2 = 11.8
# Gauss-Newton steps of the fit with the distortion centre held that _centre_identified
# compares with the free fit (from the free fit's solution: one or two do).
_HELD_CENTRE_STEPS = 5
# A fitted optical centre further than this many image diagonals from where the fit
# started has run away (nothing pins it); the fit is then redone without it.
_CRPIX_MAX_SHIFT = 2.0
# Never clip residuals below this (px): no centroid is better than that.
_MIN_CLIP_PX = 0.01
# Never take an image's noise scale (rms residual length) below this (px): a handful of
# residuals that happen to be tiny must not weight their image without bound.
_MIN_NOISE_PX = 0.001
# Relative variance of a robust scale from ``dof`` residual components is at most this
# over ``dof`` (~1.4 for the MAD, ~2 for the lower quartile of the lengths).
_SCALE_VARIANCE = 2.0
#: An image whose noise scale exceeds this multiple of the median image's does not have
#: noisier centroids but does not fit the shared camera (another camera or lens setting, a
#: wrong solve): it is given the median image's scale, and its stars are clipped by it.
MAX_NOISE_RATIO = 4.0
# A step may raise the weighted residual sum of squares by this fraction (rounding, the
# inverse polynomial's approximate design) before it is damped.
_COST_TOLERANCE = 1e-6
# Marquardt damping of a rejected step (on the column-normalised normal matrix): the
# first value tried, the factor between tries and the tries.
_DAMPING_START = 1e-3
_DAMPING_FACTOR = 10.0
_DAMPING_TRIES = 12
# Rounds of re-matching the stars to the centroids under the fitted model (and refitting),
# and the most Gauss-Newton steps of each round's fit.
_REMATCH_ROUNDS = 8
_ROUND_STEPS = 2


@dataclass
class Fitted:
    """A converged fit: the problem (with its images' attitudes and scales), the shared
    parameters, the inliers and weights it used, and how it got there."""

    problem: Problem
    params: Params
    inliers: NDArray[np.bool_]
    weights: NDArray[np.float64]
    iterations: int
    converged: bool
    start: Params
    designs: list | None = None  # residuals and design of every image at ``params``
    noise: NDArray[np.float64] | None = None  # each image's noise scale (image_noise), px
    star_weights: NDArray[np.float64] | None = None  # the stars' own (magnitude) weights

    def save_state(self) -> list[tuple[NDArray[np.float64], float]]:
        """The images' attitudes and scales (which iterations change in place)."""
        return [(im.R.copy(), im.scale) for im in self.problem.images]

    def restore(self, state: list[tuple[NDArray[np.float64], float]]) -> None:
        for im, (R, scale) in zip(self.problem.images, state, strict=True):
            im.R, im.scale = R.copy(), scale

    def camera(self, width: int, height: int) -> CameraModel:
        return make_camera(self.problem.basis, self.params, self.problem.sign < 0, width, height,
                           always=True, projection=self.problem.projection)


def make_camera(basis: Basis, p: Params, parity: bool, width: int, height: int,
                always: bool = False, projection: str = "pinhole") -> CameraModel:
    """The camera of shared parameters ``p`` under the lens ``projection`` (without a
    distortion model when every coefficient is 0, unless ``always``)."""
    dist = (basis.to_distortion(p.coeffs, width, height, p.crpix, p.center)
            if always or np.any(p.coeffs) else None)
    return CameraModel(p.f, width, height, crpix=p.crpix, parity_flip=parity, distortion=dist,
                       projection=projection)


def _scale_free(images: list[Pairs], options: CalibrationOptions) -> list[bool]:
    if options.per_image_scale is False or len(images) < 2:
        return [False] * len(images)
    if options.per_image_scale:
        return [True] * len(images)
    return [len(im) >= MIN_SCALE_PAIRS for im in images]


def _setup(images: list[Pairs], cameras: list[CameraModel], width: int, height: int,
           options: CalibrationOptions, order: int,
           radial_terms: int = 3) -> tuple[Problem, Params]:
    """The problem (basis, free parameters) and its start values; attitudes re-fitted."""
    start = cameras[0]
    radial_scale = 1.0
    if isinstance(start.distortion, RadialDistortion):
        radial_scale = start.distortion.scale
    # 'auto' fits inverse here: calibrate() compares it with a forward fit
    primary = "forward" if options.polynomial_primary == "forward" else "inverse"
    basis = Basis(options.model, order, 0.5 * width, radial_scale, primary, radial_terms)
    f0, c, center = project_distortion(basis, start)
    f = float(np.median([cam.focal_length_px for cam in cameras]) * f0 / start.focal_length_px)
    crpix = np.median([cam.crpix for cam in cameras], axis=0).astype(np.float64)
    parity = cameras[0].parity_flip
    params = Params(f, crpix, c, center)
    for im in images:
        im.scale = 1.0
    refit_attitudes(images, make_camera(basis, params, parity, width, height,
                                         projection=start.projection))
    several = len(images) >= 2
    # one image fixes a radial model's centre too where its stars cover the image: the
    # distortion, symmetric about the centre, and the projection's second-order terms
    # locate it (a tilt of the attitude absorbs a shift only to first order)
    spread = several or star_coverage(np.concatenate([im.xy for im in images]), width,
                                      height) >= _SINGLE_IMAGE_COVERAGE
    fit_crpix = (options.model == "radial" and spread) or (order == 1 and several)
    fit_center = (options.model == "radial" and several
                  and options.fit_distortion_center is not False)
    problem = Problem(images, basis, -1.0 if parity else 1.0, fit_crpix, fit_center,
                      _scale_free(images, options), start.projection)
    if 2 * problem.n_pairs < problem.n_params + 2:
        raise InvalidArgumentError(
            f"{problem.n_pairs} matched stars cannot constrain {problem.n_params} parameters "
            f"(model={options.model!r}, order={order}); use a lower order or more images")
    # after the count: stars too few for the full model are refused as they were, not
    # fitted with the centres held and even fewer equations to spare per parameter
    _hold_centres(problem)
    return problem, params


def _hold_centres(problem: Problem) -> None:
    """Keep the distortion centre, then the optical centre, at their input values while
    the stars leave fewer than :data:`MIN_REDUNDANCY` residual degrees of freedom per
    shared parameter; :attr:`~.lsq.Problem.held` names what was kept."""
    held = []
    while (problem.fit_center or problem.fit_crpix) and (
            problem.redundancy() < MIN_REDUNDANCY):
        if problem.fit_center:  # the distortion centre goes first, as in _probe
            problem.fit_center = False
            held.append("distortion centre")
        else:
            problem.fit_crpix = False
            held.append("optical centre")
    problem.held = tuple(held)


def refit_attitudes(images: list[Pairs], camera: CameraModel) -> None:
    """Each image's attitude fitted to ``camera`` alone (Wahba's problem)."""
    for im in images:
        f = camera.focal_length_px
        cam = camera.replace(focal_length_px=f * im.scale)
        v = cam.pixel_to_vectors(im.xy[:, 0], im.xy[:, 1])
        ok = np.all(np.isfinite(v), axis=1)
        if ok.sum() >= 2:
            im.R = wahba_rotation(v[ok], im.stars[ok])


def image_noise(problem: Problem, res: NDArray[np.float64], inl: NDArray[np.bool_],
                weights: NDArray[np.float64], robust=robust_rms,
                fit_weights: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Each image's noise scale: the rms residual length of its stars, px (of a star of
    the median weight when the stars are weighted).

    ``robust`` of the image's inlier residuals (each scaled by the square root of its
    star's relative ``weights``) and scaled up by ``sqrt(n_obs / dof)``: the in-sample
    residuals are smaller than the errors, each pair pulling the fit towards itself,
    and an image's ``n_obs`` residual components spend its attitude and scale and its
    share of the camera's parameters (its share of the weight of the fit, by
    ``fit_weights``, default ``weights``). Without that a fit with few stars per
    parameter clips good stars, and each clipped star makes the next fit tighter.

    The images' own scales are then shrunk towards the median image's (in log, by
    how much their spread exceeds what their estimation noise gives): images of one
    quality share one scale, as if pooled, while images whose noise differs keep
    their own; an image with too few stars has the median one, and so has an image
    beyond :data:`MAX_NOISE_RATIO` times the median (a misfit, not noise). No scale
    is below :data:`_MIN_NOISE_PX`.
    """
    n_img = len(problem.images)
    rel = np.sqrt(weights / np.median(weights[inl]))[:, None] if inl.any() else 1.0
    wres = res * rel
    fw = weights if fit_weights is None else fit_weights
    total = float(np.sum(fw[inl])) or 1.0
    own = np.full(n_img, np.nan)
    dof = np.zeros(n_img)
    for k in range(n_img):
        rows = problem.rows(k)
        keep = inl[rows]
        n_obs = 2 * int(keep.sum())
        spent = (3 + bool(problem.scale_free[k])
                 + problem.n_glob * float(np.sum(fw[rows][keep])) / total)
        dof[k] = n_obs - spent
        if dof[k] >= 1.0:
            own[k] = robust(wres[rows][keep]) * math.sqrt(n_obs / dof[k])
    known = np.isfinite(own) & (own > 0)
    if not known.any():  # no image has residuals to spare: the pooled scale for all
        return np.full(n_img, max(robust(wres[inl]), _MIN_NOISE_PX) if inl.any()
                       else _MIN_NOISE_PX)
    typical = max(float(np.median(own[known])), _MIN_NOISE_PX)
    dev = np.log(np.maximum(own[known], _MIN_NOISE_PX) / typical)
    var = _SCALE_VARIANCE / dof[known]  # each estimate's own variance (in log)
    spread = max(float(np.mean(dev ** 2 - var)), 0.0)  # the images' true spread
    noise = np.full(n_img, typical)
    noise[known] = typical * np.exp(dev * spread / (spread + var))
    noise[noise > MAX_NOISE_RATIO * typical] = typical
    return np.maximum(noise, _MIN_NOISE_PX)


def _per_pair(problem: Problem, per_image: NDArray[np.float64]) -> NDArray[np.float64]:
    """A per-image figure repeated for each of the image's pairs."""
    return np.repeat(per_image, np.diff(problem.offsets))


def _fit_weights(problem: Problem, weights: NDArray[np.float64],
                 noise: NDArray[np.float64]) -> NDArray[np.float64]:
    """The weights of the fit: the stars' ``weights`` over their image's noise squared
    (median 1)."""
    w = weights / _per_pair(problem, noise) ** 2
    return w / np.median(w)


def _clip(problem: Problem, res: NDArray[np.float64], inl: NDArray[np.bool_],
          weights: NDArray[np.float64], noise: NDArray[np.float64],
          sigma_clip: float) -> NDArray[np.bool_]:
    """Pairs within ``sigma_clip`` times their image's ``noise`` of their prediction (the
    residuals scaled by the square root of their stars' relative ``weights``, as the
    noise is)."""
    rel = np.sqrt(weights / np.median(weights[inl]))
    length = np.hypot(res[:, 0], res[:, 1]) * rel
    return length <= np.maximum(sigma_clip * _per_pair(problem, noise), _MIN_CLIP_PX)


def _probe(problem: Problem, p: Params, inl: NDArray[np.bool_], weights: NDArray[np.float64],
           designs: list) -> tuple[NDArray[np.float64], list]:
    """The first step, freeing the centres only while the design stays well conditioned;
    returns it and the designs of the layout it was made in."""
    while True:
        probing = problem.fit_crpix or problem.fit_center
        step, cond = problem.step(p, inl, weights, want_cond=probing, designs=designs)
        if not probing or cond <= _CRPIX_MAX_CONDITION:
            return step, designs
        if problem.fit_center:
            problem.fit_center = False  # the distortion centre goes first
        else:
            problem.fit_crpix = False
        designs = problem.designs(p)  # fewer columns now


def _cost(designs: list, inl: NDArray[np.bool_], w: NDArray[np.float64]) -> float:
    """Weighted residual sum of squares of the pairs ``inl``."""
    res = np.concatenate([d[0] for d in designs])[inl]
    return float(np.sum(w[inl][:, None] * res * res))


def _descend(problem: Problem, p: Params, step: NDArray[np.float64], inl: NDArray[np.bool_],
             w: NDArray[np.float64], designs: list) -> tuple[Params, list]:
    """The parameters after ``step`` and their designs, the step damped until it lowers
    the weighted residual sum of squares of the pairs ``inl``; ``p`` itself when no
    damped step does (the images' attitudes and scales move with the parameters).

    An undamped Gauss-Newton step assumes the residuals linear over its length. Along
    directions the stars barely constrain (the centres and the higher radial terms
    when the stars cover only the middle of the image) the step is long and the
    assumption fails: the focal length went negative or the centre thousands of pixels
    away. A step that lowers the sum is taken as it is, so a fit that converges without
    damping takes exactly the steps it always did.
    """
    before = _cost(designs, inl, w)
    state = [(im.R.copy(), im.scale) for im in problem.images]
    damping = 0.0
    for _ in range(_DAMPING_TRIES):
        q = problem.apply(p, step)
        if math.isfinite(q.f) and q.f > 0:
            new = problem.designs(q)
            if _cost(new, inl, w) <= before * (1.0 + _COST_TOLERANCE):
                return q, new
        for im, (R, scale) in zip(problem.images, state, strict=True):
            im.R, im.scale = R.copy(), scale
        damping = _DAMPING_START if not damping else damping * _DAMPING_FACTOR
        step = problem.step(p, inl, w, designs=designs, damping=damping)[0]
    return p, designs


def iterate(problem: Problem, start: Params, options: CalibrationOptions,
            weights: NDArray[np.float64] | None = None,
            inliers: NDArray[np.bool_] | None = None, probe: bool = True,
            robust=robust_rms) -> Fitted:
    """Gauss-Newton steps with sigma clipping from ``start`` and the images' current
    attitudes and scales (changed in place).

    The stars' relative ``weights`` (magnitude weights) are divided by the square of
    their image's noise scale (:func:`image_noise`, with ``robust`` estimating the rms),
    re-estimated after each step, and each pair is clipped against its own image's
    scale: a tight image does not set the threshold for noisy ones. With
    ``sigma_clip=inf`` the pairs are fitted as they are, with ``weights`` alone.

    Converged: the inlier rms changed by less than ``convergence_threshold_px`` and the
    clipping changed fewer than 1 % of the pairs. A warm start (``inliers`` given)
    compares the first step with the start, so a fit that is already there takes one;
    its first step is weighted by the image noise of the start's inliers (a cold
    start's first step takes every pair at the stars' ``weights``).
    """
    n = problem.n_pairs
    sw = np.ones(n) if weights is None else weights
    p = start.copy()
    inl = np.ones(n, dtype=bool) if inliers is None else inliers.copy()
    clipping = math.isfinite(options.sigma_clip)
    converged = False
    iterations = 0
    designs = problem.designs(p)
    res = np.concatenate([d[0] for d in designs])
    noise = image_noise(problem, res, inl, sw, robust)
    w = _fit_weights(problem, sw, noise) if clipping and inliers is not None else sw
    rms_prev = math.nan if inliers is None else rms(res[inl])
    for it in range(options.max_iterations):
        iterations = it + 1
        if probe and it == 0:
            step, designs = _probe(problem, p, inl, w, designs)
        else:
            step = problem.step(p, inl, w, designs=designs)[0]
        # the designs give the residuals for the clipping and the design for the next step
        p, designs = _descend(problem, p, step, inl, w, designs)
        res = np.concatenate([d[0] for d in designs])
        err = rms(res[inl])
        noise = image_noise(problem, res, inl, sw, robust, w)
        changed = 0
        if clipping:
            new_inl = _clip(problem, res, inl, sw, noise, options.sigma_clip)
            if 2 * new_inl.sum() >= problem.n_params + 2:
                changed = int(np.count_nonzero(new_inl != inl))
                inl = new_inl
            w = _fit_weights(problem, sw, noise)
        if (math.isfinite(rms_prev) and abs(err - rms_prev) < options.convergence_threshold_px
                and changed <= 0.01 * n):
            converged = True
            break
        rms_prev = err
    return Fitted(problem, p, inl, w, iterations, converged, start, designs, noise, sw)


def fit_camera(images: list[Pairs], cameras: list[CameraModel], width: int, height: int,
               options: CalibrationOptions, order: int | None = None) -> Fitted:
    """Set up and fit the model of ``options`` (at ``order``) to the images' pairs.

    A radial camera must be one-to-one over the whole image
    (:func:`~skysolve.calibration.radial.folds_over`). Stars that cover only the
    middle of the image barely constrain ``k2`` and ``k3``, and the fitted radius
    polynomial may turn over between the stars and the corners (the camera is then
    NaN there); it is refitted with ``k3``, then ``k2`` too, fixed at 0. A fit
    that folds over with ``k1`` alone is refused.
    """
    order = options.order if order is None else order
    for terms in (3, 2, 1):
        given = [dataclasses.replace(im) for im in images]  # (a fit re-matches them)
        fitted = _fit(images, cameras, width, height, options, order, terms)
        if (fitted.problem.fit_center and options.fit_distortion_center is None
                and not _centre_identified(fitted, options)):
            # the stars do not tell the distortion centre from p1/p2: fitted again from
            # the pairs given, with it held at the optical centre, p1/p2 carrying the
            # decentring (a restart from this fit with the centre zeroed, or from its
            # re-matched pairs, lost edge stars of a strong lens: 91 px, 1.2 px off in
            # its corners, 0.14 px from the pairs given)
            for im, was in zip(images, given, strict=True):
                vars(im).update(vars(was))
            fitted = _fit(images, cameras, width, height,
                          options.replace(fit_distortion_center=False), order, terms)
        if options.model != "radial" or not folds_over(fitted.camera(width, height)):
            return fitted
    reach, corner = star_reach(fitted, width, height)
    raise InvalidArgumentError(
        f"the matched stars reach only {reach:.0f} px from the image centre (its corners are "
        f"{corner:.0f} px out): even with k1 alone the radial distortion fitted to them "
        "folds over inside the image; calibrate with frames whose stars reach nearer the "
        "corners, or with model='polynomial'")


def constrained_order(images: list[Pairs], cameras: list[CameraModel], width: int,
                      height: int, options: CalibrationOptions) -> int:
    """The highest polynomial order, up to ``options.order``, whose parameters the pairs
    of ``images`` can constrain (``options.order`` when none can: its fit says why)."""
    for order in range(options.order, 0, -1):
        try:
            _setup([dataclasses.replace(im) for im in images], cameras, width, height,
                   options, order)
        except InvalidArgumentError:
            continue
        return order
    return options.order


def star_reach(fitted: Fitted, width: int, height: int) -> tuple[float, float]:
    """How far the inlier stars reach from the image centre, and how far its corners are
    (px)."""
    xy = np.concatenate([im.xy for im in fitted.problem.images])[fitted.inliers]
    reach = float(np.max(np.hypot(xy[:, 0], xy[:, 1]))) if len(xy) else 0.0
    return reach, 0.5 * math.hypot(width, height)


def _fit(images: list[Pairs], cameras: list[CameraModel], width: int, height: int,
         options: CalibrationOptions, order: int, radial_terms: int) -> Fitted:
    """Set up and fit the model of ``options`` (at ``order``, a radial one with
    ``radial_terms`` radial coefficients) to the images' pairs.

    The camera is fitted first with one plate scale for all images, the stars
    re-matched under it (:func:`~skysolve.calibration.matching.rematch`) and
    refitted until the pairs settle; only then are the per-image scales
    freed (a scale is a correction of ~1e-4 that wrong pairs, before they are
    re-matched or clipped, would otherwise pull percents away) and the stars
    weighted by their magnitude bins (:mod:`skysolve.calibration.stars`).
    """
    problem, start = _setup(images, cameras, width, height, options, order, radial_terms)
    plain, plain_state = start, [(im.R.copy(), im.scale) for im in images]
    scales = problem.scale_free.copy()
    problem.scale_free[:] = False
    pristine = None
    if options.model == "radial" and problem.fit_crpix:
        pristine = [dataclasses.replace(im) for im in images]
        poly = _polynomial_camera(images, cameras, width, height, options)
        problem.refresh()  # the polynomial fit may have re-matched the pairs
        if poly is not None:
            start = _plain_or_radial(problem, start, radial_start(problem, start, poly, width,
                                                                  height), width, height)
    state = [(im.R.copy(), im.scale) for im in images]
    fitted = _settle(problem, start, options)
    shift = np.hypot(*(fitted.params.crpix - start.crpix))
    if problem.fit_crpix and shift > _CRPIX_MAX_SHIFT * math.hypot(width, height):
        problem.fit_crpix = problem.fit_center = False
        for im, (R, scale) in zip(images, state, strict=True):
            im.R, im.scale = R, scale
        fitted = _settle(problem, start, options, probe=False)
    elif problem.fit_crpix and len(images) == 1 and not _moved_centre(fitted, plain.crpix):
        # the one image does not tell its centre from the input: keep the input's
        problem.fit_crpix = problem.fit_center = False
        for im, (R, scale) in zip(images, plain_state, strict=True):
            im.R, im.scale = R.copy(), scale
        fitted = _settle(problem, plain, options, probe=False)
    if pristine is not None and _readmitted(images, pristine):
        # the polynomial start's re-matching rights the pairs the solves got wrong, but
        # drops for good the stars it cannot hold: a low-order pixel -> sky polynomial
        # cannot hold a strong lens's edges (the inverse of ``r (1 + k1 r^2)`` is a long
        # series), and those are the stars that tell the radial terms apart; the radial
        # fit, once there, judges every pair the solves gave again. (Fitting the start to
        # copies of the pairs instead left the wrong pairs to the radial fit's first
        # steps: one draw in ten of a strong lens came out 1100 px off in a corner.)
        problem.refresh()
        fitted = _settle(problem, fitted.params, options, probe=False)
    # the final fit: the scales freed, the stars weighted by their magnitude bins, every
    # pair judged again by the usual clipping
    problem.scale_free = scales
    weights = magnitude_weights(problem, fitted.params, fitted.inliers,
                                options.magnitude_weights, _per_pair(problem, fitted.noise))
    return iterate(problem, fitted.params, options, weights=weights, inliers=fitted.inliers,
                   probe=False)


def _readmitted(images: list[Pairs], pristine: list[Pairs]) -> bool:
    """Give the images back the pairs of ``pristine`` (their copies from before a
    re-matching), keeping their attitudes and scales; whether any pair changed."""
    changed = False
    for im, was in zip(images, pristine, strict=True):
        if im.cidx is None or was.cidx is None or np.array_equal(im.cidx, was.cidx):
            continue
        changed = True
        im.xy, im.stars, im.mag, im.saturated, im.cidx = (was.xy, was.stars, was.mag,
                                                         was.saturated, was.cidx)
    return changed


def _centre_identified(fitted: Fitted, options: CalibrationOptions) -> bool:
    """Whether a radial fit's free distortion centre lowers the weighted residual sum of
    squares significantly: by more than :data:`_CENTRE_CHI2` times the unit variance
    against the same fit (same pairs, same weights) with the centre held at the optical
    centre and ``p1``, ``p2`` free.

    To first order a shift ``c`` of the centre of ``k1 r^2`` moves the stars exactly as
    ``p1 = -k1 c_y``, ``p2 = -k1 c_x`` (plus a constant the attitudes take); only the
    higher radial terms, and the shift's second-order terms, tell the two apart. For a
    lens without a clear ``k2``/``k3`` those are noise, and the covariance, linearised at
    them, took that noise for information: 60 simulations of 8 frames of 30 stars
    (1024 x 768, ``k1 = -1.2e-8``, ``k2 = 2e-15``, centre on the optical axis, 0.1 px
    centroids) scattered the fitted centre 1.6-1.7 times and ``p1``/``p2`` 1.7-1.8
    times more than their sigma said, and ``f``, ``k1``..``k3`` 1.23-1.28 times; with
    the centre held 1.0-1.14 for all. The linearised covariance cannot see this; a
    likelihood-ratio test sees the fit as it is, and keeps the centre of a lens whose
    higher radial terms or a far-off centre show it.
    """
    p = fitted.problem
    inl, w = fitted.inliers, fitted.weights
    state = fitted.save_state()
    cost_free = _cost(fitted.designs or p.designs(fitted.params), inl, w)
    dof = max(2 * int(inl.sum()) - p.n_params, 1)
    p.fit_center = False
    start = fitted.params.copy()
    start.center = np.zeros(2)
    try:
        # the same pairs at the same weights, fitted to the end: no clipping
        plain = options.replace(sigma_clip=math.inf, max_iterations=_HELD_CENTRE_STEPS,
                                convergence_threshold_px=1e-9)
        held = iterate(p, start, plain, weights=w, inliers=inl, probe=False)
        cost_held = _cost(held.designs or p.designs(held.params), inl, w)
    finally:
        p.fit_center = True
        fitted.restore(state)
    return (cost_held - cost_free) > _CENTRE_CHI2 * cost_free / dof


def _moved_centre(fitted: Fitted, centre: NDArray[np.float64]) -> bool:
    """Whether a fit's optical centre lies significantly off ``centre``: the chi-square
    of the shift under the fit's covariance above :data:`_CENTRE_CHI2`."""
    p = fitted.problem
    cov = p.covariance(fitted.params, fitted.inliers, fitted.weights, fitted.designs)[0]
    shift = fitted.params.crpix - centre
    try:
        chi2 = float(shift @ np.linalg.solve(cov[1:3, 1:3], shift))
    except np.linalg.LinAlgError:
        return False
    return chi2 > _CENTRE_CHI2


def _plain_or_radial(problem: Problem, plain: Params, radial: Params, width: int,
                     height: int) -> Params:
    """The start, ``plain`` or ``radial`` (whose attitudes the images have), under which
    the pairs fit better (robust rms); the images' attitudes follow the one chosen.

    The radial start reproduces a polynomial camera, which is known only where the
    stars are: with stars in the middle of the image only, the centres and
    coefficients it finds are whatever fits the polynomial's noise (a distortion
    centre 3600 px out, the focal length 1.6 % off), and the pairs fit it worse than
    the plain start (the input camera), which they then barely distinguish from the
    truth. Where the lens shows, the radial start fits the pairs better and is taken.
    """
    turned = [im.R.copy() for im in problem.images]
    radial_rms = robust_rms(problem.residuals(radial))
    refit_attitudes(problem.images, make_camera(problem.basis, plain, problem.sign < 0,
                                                 width, height,
                                                 projection=problem.projection))
    if robust_rms(problem.residuals(plain)) < radial_rms:
        return plain
    for im, R in zip(problem.images, turned, strict=True):
        im.R = R
    return radial


def _polynomial_camera(images: list[Pairs], cameras: list[CameraModel], width: int,
                       height: int, options: CalibrationOptions) -> CameraModel | None:
    """A polynomial camera (pixel -> sky, order 4 or the highest the stars support) fitted
    to the pairs, to start a radial fit from; None when no order fits."""
    for order in (4, 3, 2):
        try:
            poly = fit_camera(images, cameras, width, height, options.replace(
                model="polynomial", order=order, polynomial_primary="inverse",
                select_order=False), order)
        except InvalidArgumentError:
            continue
        return poly.camera(width, height)
    return None


def _settle(problem: Problem, start: Params, options: CalibrationOptions,
            probe: bool = True) -> Fitted:
    """Fit, re-match the stars under the fit and refit, until no pair changes; the
    clipping follows the core of good pairs (:func:`~.lsq.core_rms`) meanwhile."""
    # while pairs may still change a few steps per round do: the next round re-matches
    brief = options.replace(max_iterations=min(options.max_iterations, _ROUND_STEPS))
    fitted = iterate(problem, start, brief, probe=probe, robust=core_rms)
    # sigma_clip=inf asks for every pair as the solves gave it: no re-matching either
    rounds = _REMATCH_ROUNDS if math.isfinite(options.sigma_clip) else 0
    for _ in range(rounds):
        if not rematch(problem, fitted.params, fitted.noise):
            break
        fitted = iterate(problem, fitted.params, brief, probe=False, robust=core_rms)
    return fitted


