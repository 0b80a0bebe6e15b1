"""Camera calibration: one shared camera model from one or many solved images.

:func:`calibrate_camera` (also :meth:`SolverDatabase.calibrate_camera
<skysolve.solver.database.SolverDatabase.calibrate_camera>`) takes plate solutions
and their centroid lists, pairs every matched centroid's observed centred
pixel position with the catalog unit vector of its star (made apparent for the
image's observer velocity, see :mod:`skysolve.calibration.inputs`), and fits
by least squares

* one focal length ``f``, optical centre ``crpix`` and lens distortion shared
  by all images, and
* per image: its attitude ``R_i`` and a plate-scale factor ``m_i``,

to minimise the pixel residuals of the camera model (see
:mod:`skysolve.camera.model` and :mod:`skysolve.calibration.lsq`)::

    u       = m_i f (s X/Z, Y/Z),  (X, Y, Z) = R_i @ star,  s = -1 if parity_flip
    pixel   = crpix + distort(u)

for the pinhole projection; for the others (fisheyes, see
:mod:`skysolve.camera.projection`) ``(X/Z, Y/Z)`` is replaced by the
projection-plane point ``g(theta) (cos phi, sin phi)`` of the direction, so
focal length, optical centre and distortion are fitted on top of the
camera's projection.

Per-image terms
---------------
What differs between the images of one camera is fitted per image: the
attitude, the differential velocity aberration (computed from each image's
observer velocity, not fitted) and, where enough stars determine it
(``per_image_scale``), a plate-scale factor. The factors average 1, so ``f`` is
the mean focal length; a solve with the fitted camera refines its own image's
factor the same way (``SolveOptions.refine_scale``).

Algorithm
---------
Each image's attitude is first re-fitted to the starting camera model
(Wahba's problem on the model's camera vectors of the observed pixels). Each
iteration then makes one Gauss-Newton step of the whole problem: the
distortion is linear in its coefficients, so the step is a single linear
least-squares solve for the global parameters (focal length, optical centre,
distortion coefficients) *together with* a small rotation and the scale of
every image. Refining the attitudes inside the same solve, rather than in a
separate alternating step, removes the slow zig-zag along the coupling
between an attitude and the camera (a tilt of the attitude moves the stars by
a constant plus second-order gnomonic terms that the distortion would
otherwise have to mimic). The design matrix is column-normalised, and pixel
offsets enter the polynomials normalised by the image half-width. A step that
raises the weighted residual sum of squares of the inliers (by more than 1e-6
of it) is damped (Levenberg-Marquardt: ``lambda`` times the identity added to
the column-normalised normal matrix, ``lambda`` from 1e-3 up by tens) until it
lowers it: along directions the stars barely constrain -- the centres and the
higher radial terms when the stars cover only the middle of the image -- an
undamped step is long, the residuals are not linear over it, and the fit
walked off (the focal length negative, the optical centre 10^4 px out). A fit
whose steps all lower the sum takes exactly the undamped steps.

After each step the residuals of all pairs are recomputed and pairs further
than ``sigma_clip`` times their image's noise scale from their prediction are
left out of the next step (pairs may come back). An image's noise scale is its
robust rms residual, ``sqrt(2) * 1.4826 * MAD`` of its inliers' x and y
residuals pooled (of the weighted residuals when stars are weighted), so for
Gaussian errors a genuine star is rejected with probability
``exp(-sigma_clip**2)``; images of one quality share one scale, images whose
centroids are noisier or better keep their own, and an image more than
:data:`~skysolve.calibration.engine.MAX_NOISE_RATIO` times the median image's
is a misfit, clipped at the median image's scale
(:func:`~skysolve.calibration.engine.image_noise`). An image that keeps less
than half of its matched stars among three or more is left out and the others
fitted again without it when that is what makes the others fit (another lens,
a wrong solve), and so is one whose pairs disagree most with a fit that settled
between two lenses, every image keeping most of its stars; never when the others
alone cannot be fitted (:mod:`skysolve.calibration.misfits`;
``CalibrateResult.excluded_images`` says which and why). Each pair is weighted by
the inverse square of its image's scale (a star of a frame of 0.01 px
centroids counts as much as a hundred of a frame of 0.1 px), and the
covariance follows (``CalibrateResult.per_image_noise_px``). The first step
uses every pair at equal weight, because the starting model may lack the
distortion that makes the corner stars look like outliers. Iteration stops
when the inlier rms changes by less than ``convergence_threshold_px`` and the
clipping changed fewer than 1 % of the pairs, or after ``max_iterations``
steps.

The polynomial is fitted in the direction ``polynomial_primary`` says
(see :mod:`skysolve.calibration.basis`). By default (``'auto'``) it is fitted
pixel → sky, the direction of FITS SIP, exact for SIP-described optics; then the
images that fit is left with are fitted sky → pixel too, from the pairs the solves
gave, and that fit is kept when it holds clearly more of their stars or about as
many with a clearly smaller rms, or (a final fit) with an rms smaller by more than the
noise alone could account for (:func:`_forward_holds_more`). A strong lens's
distortion, ``r (1 + k1 r²)``, is a short polynomial sky → pixel but a long series
pixel → sky: order-6 inverse fits of 8 frames of lenses whose corners move by 10-20 %
were 2.6-26 px off at worst, 13-14 px with the axis 100 px off centre (the forward
fits 0.11-0.64 px), and their re-matching dropped the edge stars they could not hold,
so ``mapping_sigma_px`` said up to 12 times too little. The images left out
(:mod:`skysolve.calibration.misfits`) are those of the pixel → sky fit. A final
fit whose two directions hold the stars alike, yet put the sky apart somewhere by
half their noise or more, goes to the direction that holds them better at the next
lower order at which one does (:func:`_forward_fits_lower_orders`): both series fit
the stars, and the one that needs fewer terms for them is the one that extrapolates
beyond them. A final
fit asked for ``'inverse'`` is compared with the forward fit the same way, and a
``UserWarning`` says so when that one would have been kept. A polynomial of order
2-5 is also fitted at the next order, and a ``UserWarning`` says so when that holds
the stars better than their noise could account for and moves the mapping by more
than ``mapping_sigma_px`` (:func:`_warn_order`); at order 6 the radial model is, and
a warning says so when it holds them better with its few parameters
(:func:`_warn_radial_better`).
After the fit: the magnitude bins' residual bias and scatter, the weights they
give (:mod:`skysolve.calibration.stars`), the parameter covariance, held-out
residuals (:mod:`skysolve.calibration.validation`) and bootstrap uncertainties
(:mod:`skysolve.calibration.uncertainty`).

Degeneracies and how they are handled
-------------------------------------
Several parameter combinations change nothing the data can see; left free
they would make the least-squares problem singular (or let parameters drift
without changing the fit). They are removed explicitly:

* **Constant distortion term vs optical centre vs attitude.** A constant
  shift of every star equals a shift of ``crpix`` and, to first order, a tilt
  of each image's attitude. The polynomial has no constant term (0, 0).
* **Linear distortion terms vs focal length and roll.** The conformal part of
  the linear terms (a uniform scale, ``A_10 = B_01``, and a rotation,
  ``A_01 = -B_10``) equals a change of focal length and of every image's roll.
  Only the two non-conformal combinations are fitted (``A_10 = -B_01``: unequal
  axis scales; ``A_01 = B_10``: shear), so ``f`` is the scale at the optical
  centre and the model's ``fov_deg`` is meaningful.
* **Focal length vs the images' plate scales.** A common factor of all
  ``m_i`` is ``f``: the scales are constrained to average 1.
* **Optical centre vs attitude.** Moving ``crpix`` by ``c`` and tilting each
  attitude by ``c / f`` leaves only second-order gnomonic terms (``x²``,
  ``xy`` over ``f``) and the change of distortion across ``c`` — exactly the
  kind of terms a polynomial of order >= 2 has. With ``model="polynomial"``
  and ``order >= 2`` the optical centre is therefore fixed at its input value
  (the one the solves used; 0 for uncalibrated solves) and the polynomial
  carries the difference. The optical centre is fitted only when it is
  observable at all (``model="radial"``, about whose centre the distortion is
  symmetric, or a linear polynomial), from two or more images -- or, for the
  radial model, one whose stars cover three quarters of the image
  (:func:`~skysolve.calibration.radial.star_coverage`; from stars in the middle
  only, the centre would be whatever the extrapolated distortion makes of their
  noise) and then only if it moves significantly from the input (chi-square of
  the shift above 11.8) -- when the stars leave at least
  :data:`~skysolve.calibration.engine.MIN_REDUNDANCY` residual degrees of
  freedom per shared parameter with it (three equations per shared parameter
  beyond those the images' attitudes take; a ``UserWarning`` says so
  otherwise), and when the column-normalised design with it stays
  well conditioned (condition number below ``1e6``); otherwise it is kept at
  its input value. The design can be well conditioned with too few stars to
  fit it: 6 frames of 3 stars (18 equations beyond the attitudes for the 10
  shared parameters of a radial model) put it 66 px from the truth (median of
  8 draws, up to 205 px) and the mapping 2.9 px off at worst, ``converged``.
* **Radial distortion centre vs decentring terms.** Moving the centre of a
  radial distortion changes it, to first order, exactly like ``p1``/``p2``;
  the centre's offset from ``crpix`` (``RadialDistortion.center``) is fitted
  only when the design stays well conditioned with it, and only with
  ``MIN_REDUNDANCY`` degrees of freedom per shared parameter (it is the first
  to be kept at its input value, before the optical centre); and, unless
  ``fit_distortion_center=True``, only when freeing it lowers the residual
  sum of squares significantly (a likelihood-ratio test,
  :func:`~skysolve.calibration.engine._centre_identified`): for a lens without
  clear higher radial terms only their noise told the two apart, the fitted
  centre was noise, and its sigma and ``p1``/``p2``'s were ~2x too small.

The optical axis of a radial model may legitimately lie far from the image:
each TESS CCD has the camera's axis just beyond one of its corners, ~1500 px
from its centre, and a gnomonic projection about the wrong point leaves
residuals of tens of pixels that no radial distortion absorbs. A
Gauss-Newton fit started at the image centre does not get there, so the
radial fit starts from where the distortion of a polynomial fit points
(:mod:`skysolve.calibration.radial`), unless the pairs fit the input camera
(robust rms) better than that start: a polynomial is known only where its
stars are, and with stars in the middle of the image only the radial camera
fitted to it is whatever fits its noise. Only a centre more than two image
diagonals from its start is treated as a runaway; the fit is then redone
with the centre fixed. :attr:`CalibrateResult.crpix_fitted` says which
happened.

The fitted polynomial becomes a
:class:`~skysolve.camera.distortion.PolynomialDistortion` whose ``primary``
is the fitted direction (``scale`` = half the image width); the other
direction is then fitted over the image and only seeds the exact Newton
inverse, so ``undistort(distort(p)) == p`` to ~1e-9 px. ``model="radial"``
fits the five Brown–Conrady coefficients ``k1, k2, k3, p1, p2`` of a
:class:`~skysolve.camera.distortion.RadialDistortion` (in the pixel
convention, ``scale=1``, unless the solves' camera used a radial model with
another scale) and its centre.

A radial camera is returned only if it is one-to-one over the whole image
(:func:`~skysolve.calibration.radial.folds_over`). When the stars cover only
the middle of the image, ``k2`` and ``k3`` are barely constrained and the
fitted radius polynomial ``r (1 + k1 r² + k2 r⁴ + k3 r⁶)`` can turn over
between the outermost stars and the corners (10 frames with stars within
200 px of the centre of a 1024 x 768 image: folds at 400-500 px in half the
trials), leaving pixels with no sky direction. The fit is then redone with
``k3``, and if need be ``k2``, fixed at 0 (a ``UserWarning`` says so and
how far the stars reach; ``parameter_names`` lists what was fitted); a fit
that folds over with ``k1`` alone is refused.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .._options import with_options
from ..camera.distortion import MAX_POLYNOMIAL_ORDER
from ..errors import InvalidArgumentError, warn_caller
from .compare import chi_square_drop, drop_z, kept_rms, mapping_gap
from .engine import (
    MAX_NOISE_RATIO,
    MIN_REDUNDANCY,
    Fitted,
    constrained_order,
    fit_camera,
    star_reach,
)
from .inputs import image_pairs, pair_lists
from .lsq import rms
from .misfits import REJECTED_IMAGE_SHARE, fit_without_misfits
from .options import CALIBRATE_DOC, CalibrationOptions
from .result import CalibrateResult
from .validation import ORDER_WARN_Z

if TYPE_CHECKING:  # pragma: no cover
    from ..solver.database import PatternDatabase

__all__ = ["CalibrateResult", "CalibrationOptions", "calibrate", "calibrate_camera",
           "CALIBRATE_DOC", "REJECTED_IMAGE_SHARE"]


# ``polynomial_primary='auto'`` keeps the forward fit when it holds this share of the
# pairs, and this many, more than the inverse fit with no larger an inlier rms (8 frames
# of 150 stars of lenses whose corners move by 10-20 %: 0.6-7 % more; frames of a mild
# lens, or of SIP-described optics, keep as many either way) ...
_FORWARD_GAIN = 0.01
_FORWARD_MIN_PAIRS = 3
# ... or about as many with an inlier rms below this share of the inverse fit's (8 frames
# of 150 stars, 0.1 px noise, of lenses whose corners move by 10-20 %: 0.138-0.140 px,
# 0.166-0.25 px; of a lens whose corners move by 3 %: 0.1-6 % below; the final fit of the
# TESS demo's frames, SIP optics: 0.1 % below, with 5 stars fewer) ...
_FORWARD_RMS = 0.9
# ... or, in a final fit, a smaller sum of squares by more than the shared parameters
# fitted to noise alone would buy, by this many standard deviations (chi-square with as
# many degrees of freedom). Both fits have as many parameters, so for a lens either
# direction holds they come out within a few of them (the TESS demo's final fit: -65,
# over the stars both hold, against 84); a few percent lower rms over hundreds of stars
# is a lens the inverse polynomial cannot hold: under the CLI's defaults (order 4, 8
# frames of 60 stars) a lens whose corners move in by 3 % was 0.52-0.64 px off at worst
# pixel -> sky, 1.8 times what mapping_sigma_px said, at an rms 6 % above the forward
# fit's: a drop of ~120 against 49. Passes whose camera only seeds the next keep to the
# rules above: the seed passes on the TESS-like camera, whose distortion is an order-4
# sky -> pixel polynomial, would turn the order-4 pass's direction and with it the later
# passes' solves, which end at the same camera either way.
_FORWARD_Z = 3.0


def _forward_holds_more(inverse: Fitted, forward: Fitted, n_pairs: int,
                        provisional: bool = False) -> bool:
    """Whether ``polynomial_primary='auto'`` keeps the ``forward`` fit of ``n_pairs``
    pairs rather than the ``inverse`` one (see the constants above).

    More stars held counts only at no larger an rms: the clipping threshold follows the
    rms, so a looser fit holds more stars too (the order 3-5 fits of the TESS demo's
    frames, whose distortion is a pixel -> sky polynomial: forward held 2.5-9.5 % more
    stars at 1.2-2.4 times the inverse fit's rms).
    """
    (n_inv, rms_inv), (n_fwd, rms_fwd) = kept_rms(inverse), kept_rms(forward)
    margin = max(_FORWARD_MIN_PAIRS, _FORWARD_GAIN * n_pairs)
    gain = n_fwd - n_inv
    if gain >= margin and rms_fwd <= rms_inv:
        return True
    if gain <= -margin or not rms_fwd < rms_inv:
        return False
    if rms_fwd < _FORWARD_RMS * rms_inv:
        return True
    if provisional:
        return False
    # the drop in chi-square, at the forward fit's noise per coordinate, over the pairs
    # both hold: a fit that clipped a few more stars has the smaller rms for that alone
    # (each star clipped near the threshold lowers the sum by ~20 of a hundred-odd pairs'
    # noise), and with the 1 % of the pairs it may hold fewer that bought the drop
    return drop_z(chi_square_drop(inverse, forward), forward.problem.n_glob) > _FORWARD_Z


#: Two fits whose mappings differ by less than this share of the inlier rms residual
#: anywhere over the images are the same camera (:func:`_forward_fits_lower_orders`).
_SAME_MAPPING = 0.5
#: Lower orders :func:`_forward_fits_lower_orders` looks at, at most (two fits each): the
#: lens below was told at order 4 of 6; lenses either direction holds alike tie at every
#: order, and looking down to order 2 took 1.1 s where the rest of the calibration took 0.6.
_LOWER_ORDERS = 2


def _forward_fits_lower_orders(inverse: Fitted, forward: Fitted, pristine: dict[int, Any],
                               cameras: list[Any], width: int, height: int,
                               options: CalibrationOptions, n_pairs: int) -> bool:
    """Whether a final fit whose two directions hold the stars alike at the order asked
    (neither keeps the other out by :func:`_forward_holds_more`), yet put the sky apart
    by :data:`_SAME_MAPPING` of their noise or more somewhere, is the forward one: the
    direction whose polynomial holds them better at the next lower order at which one
    does (orders ``options.order - 1`` and ``- 2``, :data:`_LOWER_ORDERS`, from the pairs
    the solves gave).

    Two series that fit the stars alike need not agree beyond them: a lens's radial
    distortion is short sky -> pixel and long pixel -> sky, and where the solves left
    the edge stars unmatched (an uncalibrated pinhole misses them) both order-6 fits
    hold the rest at the noise, the pixel -> sky one 1.4-2.4 px off in the corners, at
    1.4-1.8 times its stated uncertainty, the sky -> pixel one 0.5-0.7 px, honestly (8
    frames of 80 stars of a 1280 x 960 20 deg lens whose corners move in by 6 %). The
    direction that needs fewer terms for the same stars is the one whose terms beyond
    them are small: there, at order 4, pixel -> sky fits at 2.2 times the rms.
    """
    if _forward_holds_more(forward, inverse, n_pairs):  # (the inverse holds more)
        return False
    # two fits that put the sky within a fraction of the stars' noise of each other over
    # every image leave nothing to choose (TESS-like frames, stars to the corners: the
    # look at the lower orders took 0.76 s of a 1.2 s calibration)
    if np.max(mapping_gap(inverse, forward, width, height), initial=0.0) < (
            _SAME_MAPPING * kept_rms(inverse)[1]):
        return False
    indices = [im.index for im in inverse.problem.images]
    for order in range(options.order - 1, max(1, options.order - 1 - _LOWER_ORDERS), -1):
        inv, fwd = (fit_camera([dataclasses.replace(pristine[i]) for i in indices], cameras,
                               width, height, options.replace(polynomial_primary=d), order)
                    for d in ("inverse", "forward"))
        if _forward_holds_more(inv, fwd, n_pairs):
            return True
        if _forward_holds_more(fwd, inv, n_pairs):
            return False
    return False


def _direction(fitted: Fitted, pristine: dict[int, Any], cameras: list[Any], width: int,
               height: int, options: CalibrationOptions, provisional: bool
               ) -> tuple[Fitted, list[Any], CalibrationOptions]:
    """The fit, its images and options with ``polynomial_primary`` resolved: ``fitted``
    (the inverse fit that ``'auto'`` starts with) or a forward fit of the same images
    from the pairs the solves gave (``pristine``, by result index), whichever
    :func:`_forward_holds_more` keeps. A final fit asked for ``'inverse'`` is compared
    with the forward fit too, and a warning says so when that holds more: its
    re-matching has dropped the stars it cannot hold, and its residuals do not show it."""
    images = list(fitted.problem.images)
    primary = options.polynomial_primary
    if options.model != "polynomial" or primary == "forward" or (primary == "inverse"
                                                                   and provisional):
        return fitted, images, options
    forward = options.replace(polynomial_primary="forward")
    trial = [dataclasses.replace(pristine[im.index]) for im in images]
    other = fit_camera(trial, cameras, width, height, forward)
    n_pairs = sum(len(im) for im in trial)
    if not _forward_holds_more(fitted, other, n_pairs, provisional):
        if (primary == "auto" and not provisional
                and _forward_fits_lower_orders(fitted, other, pristine, cameras, width,
                                               height, options, n_pairs)):
            return other, trial, forward
        return fitted, images, options.replace(polynomial_primary="inverse")
    if primary == "auto":
        return other, trial, forward
    (n_inv, rms_inv), (n_fwd, rms_fwd) = kept_rms(fitted), kept_rms(other)
    warn_caller(f"the polynomial fitted pixel -> sky (polynomial_primary='inverse') holds "
                f"{n_inv} of the {n_pairs} matched stars at {rms_inv:.3g} px rms, fitted "
                f"sky -> pixel it holds {n_fwd} at {rms_fwd:.3g} px: the lens's distortion "
                "is no short pixel -> sky polynomial, the stars it could not hold (most at "
                "the edges) were dropped or fitted loosely, and the camera is off there "
                "by more than mapping_sigma_px says; try polynomial_primary='auto' or 'forward'",
                UserWarning)
    return fitted, images, options


def _summary(fitted: Fitted, n_results: int) -> dict[str, Any]:
    """Per-image rotations, scales, rms and inlier counts, and the pooled inlier rms."""
    p = fitted.problem
    out: dict[str, list] = {k: [None] * n_results for k in
                            ("rotations", "scales", "rmse", "inliers", "velocities",
                             "noise")}
    res = p.residuals(fitted.params)
    for k, im in enumerate(p.images):
        keep = fitted.inliers[p.rows(k)]
        r = res[p.rows(k)][keep]
        out["rotations"][im.index] = im.R.copy()
        out["scales"][im.index] = float(im.scale)
        out["rmse"][im.index] = rms(r) if keep.any() else math.nan
        out["inliers"][im.index] = int(keep.sum())
        out["noise"][im.index] = float(fitted.noise[k])
        out["velocities"][im.index] = None if im.velocity is None else im.velocity.copy()
    return {**out, "rmse_after": rms(res[fitted.inliers]), "n_in": int(fitted.inliers.sum())}


#: A radial fit whose stars reach less than this share of the way to the image's corners
#: warns that the camera beyond them is an extrapolation (:func:`_warn_fixed_terms`): its
#: ``k2`` and ``k3`` terms grow as the 5th and 7th power of the radius. 12 frames of a
#: 1280 x 960 lens whose stars reached 250-300 px of the 800 to the corners were off by
#: 70-1,500 px there (at up to 6.7 times mapping_sigma_px, rms) where the fit did not
#: fold over, silently; reaching 350 px, 3-150 px at 0.6-1.5 times; 450 px, 6-15 px at
#: 0.7-1.2 times. Frames of 1024 x 768 lenses whose stars reached 0.45-0.49 of the way
#: were 18-78 px off in the corners, at 0.6-1.2 times: the 1-sigma map said so itself.
_RADIAL_REACH = 0.4


def _warn_fixed_terms(fitted: Fitted, width: int, height: int) -> None:
    """Say so when a radial fit kept ``k3`` (and ``k2``) at 0 to stay one-to-one over the
    image (see :func:`~skysolve.calibration.engine.fit_camera`), or when its stars reach
    less than :data:`_RADIAL_REACH` of the way to the corners."""
    basis = fitted.problem.basis
    if basis.kind != "radial":
        return
    reach, corner = star_reach(fitted, width, height)
    if basis.radial_terms == 3:
        if reach >= _RADIAL_REACH * corner:
            return
        # a circular fisheye's stars reach its image circle at most, short of the corners
        gx, gy = (g.ravel() for g in np.meshgrid(
            np.linspace(-width / 2 + 0.5, width / 2 - 0.5, _ROUND_TRIP_GRID),
            np.linspace(-height / 2 + 0.5, height / 2 - 0.5, _ROUND_TRIP_GRID)))
        sky = _sees_sky(fitted.camera(width, height).replace(distortion=None), gx, gy)
        if not sky.all():
            corner = float(np.hypot(gx, gy)[sky].max(initial=0.0))
            if reach >= _RADIAL_REACH * corner:
                return
        warn_caller(f"the matched stars reach only {reach:.0f} px from the image centre (the "
                    f"sky it images reaches {corner:.0f} px out): the radial distortion fitted "
                    "to them grows beyond them as the 5th and 7th power of the radius (k2, k3), "
                    f"and the camera beyond {reach:.0f} px is an extrapolation that may be off by "
                    "more than mapping_sigma_px says; calibrate with frames whose stars "
                    "reach nearer the corners, or with model='polynomial'", UserWarning)
        return
    fixed = " and ".join(f"k{j}" for j in range(basis.radial_terms + 1, 4))
    warn_caller(f"the matched stars reach only {reach:.0f} px from the image centre (its "
                f"corners are {corner:.0f} px out), and the radial distortion fitted to them "
                f"folded over inside the image: {fixed} fixed at 0; the camera beyond "
                f"{reach:.0f} px is an extrapolation (see mapping_sigma_px)", UserWarning)


#: Points per side of the grid over the image on which a fitted camera's round trip
#: pixel -> sky -> pixel is checked (:func:`_warn_not_one_to_one`), and the largest
#: miss (px) that counts as a return.
_ROUND_TRIP_GRID = 33
_ROUND_TRIP_PX = 0.1


def _sees_sky(camera: Any, x: NDArray[np.float64], y: NDArray[np.float64]
              ) -> NDArray[np.bool_]:
    """Which pixels ``camera`` maps to a sky direction and back."""
    with np.errstate(all="ignore"):
        px, py = camera.vectors_to_pixel(camera.pixel_to_vectors(x, y))
        return np.hypot(px - x, py - y) <= _ROUND_TRIP_PX


def _warn_not_one_to_one(camera: Any, fitted: Fitted, width: int, height: int) -> None:
    """Say so when the fitted camera does not map the image one-to-one: a polynomial
    fitted to stars that stop short of the corners can turn over between them and the
    corners, and its other direction, fitted to it over the image, cannot follow
    (pixel -> sky -> pixel misses or is NaN there, and so is ``mapping_sigma_px``). A
    180 deg fisheye solved in 4 frames, 90 % of its matched stars within two thirds of
    the way to the corners, at order 6: 10.5 % of the image so, 1,198 px off there,
    without a word."""
    gx, gy = (g.ravel() for g in np.meshgrid(
        np.linspace(-width / 2 + 0.5, width / 2 - 0.5, _ROUND_TRIP_GRID),
        np.linspace(-height / 2 + 0.5, height / 2 - 0.5, _ROUND_TRIP_GRID)))
    with np.errstate(all="ignore"):
        px, py = camera.vectors_to_pixel(camera.pixel_to_vectors(gx, gy))
        miss = np.hypot(px - gx, py - gy)
    # (the corners of a circular fisheye's image lie beyond its projection's widest
    # angle: no camera maps them)
    bad = ~(miss <= _ROUND_TRIP_PX) & _sees_sky(camera.replace(distortion=None), gx, gy)
    if not bad.any():
        return
    reach, corner = star_reach(fitted, width, height)
    basis = fitted.problem.basis
    model = (f"polynomial of order {basis.order}" if basis.kind == "polynomial"
             else "radial distortion")
    warn_caller(f"the fitted camera does not map {bad.mean():.1%} of the image one-to-one "
                f"(pixel -> sky -> pixel misses there, and mapping_sigma_px is NaN or "
                f"meaningless): its {model}, fitted to stars that reach {reach:.0f} px from "
                f"the image centre, turns over before the corners ({corner:.0f} px out); "
                "calibrate with a lower order, model='radial', or frames whose stars reach "
                "nearer the corners", UserWarning)


def _warn_held_centres(fitted: Fitted) -> None:
    """Say so when the optical (or distortion) centre kept its input value because the
    stars leave too few degrees of freedom to fit it (see
    :data:`~skysolve.calibration.engine.MIN_REDUNDANCY`)."""
    p = fitted.problem
    if not p.held:
        return
    # the equations the images' attitudes (and scales) leave, and the shared parameters
    # the fit would have had with the centres free
    spare = 2 * p.n_pairs - (p.n_params - p.n_glob)
    wanted = p.n_glob + 2 * len(p.held)
    per = MIN_REDUNDANCY + 1
    crpix = fitted.params.crpix
    kept = (f" (it stays at its input value, {crpix[0]:.1f}, {crpix[1]:.1f} px)"
            if "optical centre" in p.held else "")
    warn_caller(f"{p.n_pairs} matched stars in {len(p.images)} image(s) leave {spare} "
                f"equations beyond the images' attitudes for {wanted} shared camera "
                f"parameters (fitting the centres needs {per:g} per parameter): the "
                f"{' and the '.join(p.held)} not fitted{kept}; calibrate with more "
                "images or more matched stars per image to fit them", UserWarning)


def _warn_pattern(fitted: Fitted, result: CalibrateResult) -> bool:
    """Say so when the residuals hold a pattern over the image larger than the mapping's
    1-sigma: the model cannot represent the lens, and ``mapping_sigma_px`` (the noise's
    share only) understates the camera's error (see
    :func:`~skysolve.calibration.validation.residual_pattern`); whether it did."""
    pattern = result.residual_pattern
    if pattern is None or not pattern.significant:
        return False
    sigma = float(np.nanmedian(result.sigma_map()[2]))
    if not pattern.rms_px > sigma:
        return False
    basis = fitted.problem.basis
    if basis.kind == "polynomial":
        model = f"polynomial of order {basis.order}"
        hint = "a higher order, select_order=True, or model='radial'"
    else:
        model = "radial model"
        hint = "model='polynomial' with select_order=True"
        if not fitted.problem.fit_crpix:
            hint += (", or more images or stars over more of the image (the optical "
                     "centre stayed at its input value, "
                     f"{fitted.params.crpix[0]:.1f}, {fitted.params.crpix[1]:.1f} px)")
    warn_caller(f"the residuals hold a pattern over the image ({pattern.rms_px:.3g} px rms, "
                f"z = {pattern.z:.0f}) that the {model} cannot represent: the camera is "
                f"off by more than mapping_sigma_px says (median {sigma:.2g} px; it covers "
                f"the noise only), most beyond the stars and in the corners; try {hint}",
                UserWarning)
    return True


def _apart(fitted: Fitted, other: Fitted, result: CalibrateResult, width: int,
           height: int) -> tuple[NDArray[np.float64], float, float] | None:
    """``(gap, its rms, median sigma)``: how far apart (px) the two fits put the sky over
    the images (:func:`~skysolve.calibration.compare.mapping_gap`), when that is more in
    rms than ``fitted``'s median ``mapping_sigma_px``; else None."""
    gap = mapping_gap(fitted, other, width, height)
    gap_rms = math.sqrt(float(np.mean(gap ** 2))) if len(gap) else 0.0
    sigma = float(np.nanmedian(result.sigma_map()[2]))
    return (gap, gap_rms, sigma) if gap_rms > sigma else None


def _warn_order(fitted: Fitted, result: CalibrateResult, images: list[Any],
                cameras: list[Any], width: int, height: int,
                options: CalibrationOptions) -> None:
    """Say so when a polynomial of the next order holds the stars better than the noise
    could account for, and puts them farther from where this one does than
    ``mapping_sigma_px`` says: the order asked for cannot represent the lens.

    The residual pattern (:func:`_warn_pattern`) looks for any smooth pattern, cell by
    cell; this looks for the one the next terms make, and tells it from fewer stars.
    8 frames of 80 stars of a 1280 x 960 20 deg lens whose corners move out by 6 %,
    solved with a pinhole camera, at order 4: the order-5 fit's chi-square was 111-144
    lower, against 12 from the noise (20-27 standard deviations), where the residual
    pattern's z was 0-1.4; the camera was 0.9-1.2 px off at worst, its rms error 2.1
    times mapping_sigma_px, and no warning said so. Fewer stars than the next order's
    terms can spare (:data:`~skysolve.calibration.engine.MIN_REDUNDANCY` equations per
    shared parameter) are not tested.
    """
    p, order = fitted.problem, fitted.problem.basis.order
    if options.model != "polynomial" or order < 2:
        return
    if order == MAX_POLYNOMIAL_ORDER:
        _warn_radial_better(fitted, result, images, cameras, width, height, options)
        return
    if options.select_order:
        return
    # the next order's terms (each of x and y) must leave the equations to spare that
    # fitting the centres asks for, or its fit is refused or fits the noise
    extra = 2 * (order + 2)
    if 2 * p.n_pairs - p.n_params - extra < MIN_REDUNDANCY * (p.n_glob + extra):
        return
    higher = fit_camera([dataclasses.replace(im) for im in images], cameras, width, height,
                        options, order + 1)
    k = higher.problem.n_glob - p.n_glob
    drop = chi_square_drop(fitted, higher)
    if not drop_z(drop, k) > ORDER_WARN_Z:
        return
    apart = _apart(fitted, higher, result, width, height)
    if apart is None:
        return
    gap, gap_rms, sigma = apart
    warn_caller(f"a polynomial of order {order + 1} holds the matched stars better than "
                f"order {order} by more than their noise could (chi-square {drop:.0f} lower, "
                f"against {k} expected), and puts the sky up to {gap.max():.2g} px (rms "
                f"{gap_rms:.2g} px) from where order {order} does: the camera is off by "
                f"more than mapping_sigma_px says (median {sigma:.2g} px; it covers the noise "
                f"only), most in the corners; try order={order + 1} or select_order=True",
                UserWarning)


#: :func:`_warn_radial_better` fits the radial model where the polynomial's residual
#: pattern (:func:`~skysolve.calibration.validation.residual_pattern`) stands at least
#: this far above the noise (the k3 lens below: 4.4-8.4, short of significance at 5 in
#: three draws of eight).
_RADIAL_LOOK_Z = 2.0


def _warn_radial_better(fitted: Fitted, result: CalibrateResult, images: list[Any],
                        cameras: list[Any], width: int, height: int,
                        options: CalibrationOptions) -> None:
    """At the highest order, where no next one can be tried (:func:`_warn_order`): say so
    when the radial model, of far fewer parameters, holds the stars better than the
    polynomial by more than the noise could account for, and puts the sky farther from
    it than ``mapping_sigma_px`` says. A lens with a ``k3`` term (its 7th power of the
    radius) at order 6, 8 frames of 150 stars: 1.1-1.9 px off in the corners at 2.3-2.5
    times the stated uncertainty, the residual pattern's test mostly silent; the radial
    model holds it to 0.1 px."""
    pattern = result.residual_pattern
    if pattern is None or not pattern.z > _RADIAL_LOOK_Z:
        return  # (a radial fit costs as much as the polynomial's: only where it may tell)
    try:
        radial = fit_camera([dataclasses.replace(im) for im in images], cameras, width, height,
                            options.replace(model="radial"))
    except InvalidArgumentError:
        return  # (it folds over inside the image: no better)
    # a polynomial that holds the lens beats the radial model's chi-square by about its
    # extra parameters; one it beats by more than the noise of as many is wanting
    drop = chi_square_drop(fitted, radial)
    k = fitted.problem.n_glob
    if not drop > ORDER_WARN_Z * math.sqrt(2 * k):
        return
    apart = _apart(fitted, radial, result, width, height)
    if apart is None:
        return
    gap, gap_rms, sigma = apart
    order = fitted.problem.basis.order
    warn_caller(f"the radial model (model='radial'), with {radial.problem.n_glob} shared "
                f"parameters, holds the matched stars better than the polynomial of order "
                f"{order} with {k} (chi-square {drop:.0f} lower), and puts the sky up to "
                f"{gap.max():.2g} px (rms {gap_rms:.2g} px) from where it does: the lens is "
                "no polynomial of this order, and the camera is off by more than "
                f"mapping_sigma_px says (median {sigma:.2g} px; it covers the noise only), "
                "most in the corners; try model='radial'", UserWarning)


def _warn_rejected_images(fitted: Fitted, results: list[Any]) -> None:
    """Say so when the fit rejected most of an image's pairs: the image does not fit the
    camera the others share, and takes (almost) no part in it. Counted against the
    stars its solve matched too (re-matching under the fitted camera has dropped most
    pairs of such an image before the clipping could reject them)."""
    p = fitted.problem
    bad = []
    for k, im in enumerate(p.images):
        kept = int(fitted.inliers[p.rows(k)].sum())
        matched = max(len(im), len(getattr(results[im.index], "matched_centroids", ())))
        if kept < REJECTED_IMAGE_SHARE * matched:
            bad.append(f"{im.index} ({kept} of {matched} kept)")
    if not bad:
        return
    warn_caller(f"the fit rejected most matched stars of image(s) {', '.join(bad)}: they do "
                "not fit the camera the other stars share within their image's noise, or "
                f"their image's residuals exceed {MAX_NOISE_RATIO:g} times the median "
                "image's (centroids far noisier than the other images', another camera "
                "or lens setting, a wrong solve?), and barely take part in the "
                "calibration (calibrate images of similar quality together); their rotations "
                "and per-image figures mean little (mapping_sigma_px is NaN where fewer "
                "than two stars were kept)", UserWarning)


def _warn_excluded_images(excluded: dict[int, str]) -> None:
    """Name the images left out of the fit (:mod:`skysolve.calibration.misfits`)."""
    if excluded:
        warn_caller("image(s) left out of the calibration, not fitting the camera the other "
                    "images share (another lens or focal setting, a wrong solve?): "
                    + "; ".join(f"{i}: {why}" for i, why in sorted(excluded.items())),
                    UserWarning)


def calibrate(db: PatternDatabase, solve_results: Any, centroids: Any,
              options: CalibrationOptions, provisional: bool = False) -> CalibrateResult:
    """Fit one camera model shared by solved images (see :func:`calibrate_camera`);
    ``provisional`` (a calibration pass whose camera only seeds the next) without the
    warnings about a residual pattern and rejected or left-out images, and without
    the search for a camera between two lenses
    (:func:`~skysolve.calibration.misfits.fit_without_misfits`)."""
    from .matching import match_catalog
    from .stars import magnitude_bins
    from .uncertainty import Uncertainty
    from .validation import holdout, residual_pattern, select_order

    results, cents = pair_lists(solve_results, centroids)
    images, cameras, before_sq, width, height = image_pairs(db, results, cents, options)
    matched = {im.index: len(im) for im in images}
    if options.select_order and options.model == "polynomial":
        # the orders it chooses among reach only as high as the stars constrain, and so
        # do the fits before it (2 frames of 15 stars and order=6 were refused)
        options = options.replace(order=constrained_order(images, cameras, width, height,
                                                          options))
    order, scores = options.order, None
    pristine = {im.index: dataclasses.replace(im) for im in images}
    fitted, images, cameras, excluded = fit_without_misfits(
        images, cameras, width, height, options, order, compromise=not provisional)
    fitted, images, options = _direction(fitted, pristine, cameras, width, height, options,
                                         provisional)
    # pairs re-matching drops are outliers too; a left-out image's are not, nor do they
    # count before
    n_candidates = sum(matched[im.index] for im in images)
    rmse_before = math.sqrt(sum(before_sq[im.index] for im in images) / max(n_candidates, 1))
    if options.catalog is not None:
        added = match_catalog(db, fitted.problem, fitted.params, fitted.camera(width, height),
                              fitted.inliers, options)
        n_candidates += added
        if added:
            fitted = fit_camera(images, cameras, width, height, options, order)
    if options.select_order and options.model == "polynomial":
        order, scores = select_order(images, cameras, width, height, options)
        fitted = fit_camera(images, cameras, width, height, options, order)
    _warn_fixed_terms(fitted, width, height)
    _warn_held_centres(fitted)
    if not provisional:
        _warn_rejected_images(fitted, results)
    bins = magnitude_bins(fitted.problem, fitted.params, fitted.inliers,
                          fitted.star_weights)[0]
    designs = fitted.designs or fitted.problem.designs(fitted.params)
    validation = holdout(fitted, options, designs) if options.validation_folds else None
    unc = Uncertainty.from_fit(fitted, width, height, options, designs)
    pattern = residual_pattern(fitted, width, height, designs)
    camera = fitted.camera(width, height)
    s = _summary(fitted, len(results))
    result = CalibrateResult(
        camera, rmse_before, s["rmse_after"], s["n_in"], n_candidates - s["n_in"],
        fitted.iterations, fitted.converged, s["rotations"], s["rmse"], s["inliers"],
        fitted.problem.fit_crpix, per_image_scale=s["scales"],
        per_image_velocity_km_s=s["velocities"], per_image_noise_px=s["noise"],
        uncertainty=unc, validation=validation,
        order_scores=scores, magnitude_bins=bins, center_fitted=fitted.problem.fit_center,
        residual_pattern=pattern, excluded_images=excluded)
    if not provisional:
        _warn_not_one_to_one(camera, fitted, width, height)
        if not _warn_pattern(fitted, result):
            _warn_order(fitted, result, images, cameras, width, height, options)
        _warn_excluded_images(excluded)
    return result


@with_options(CalibrationOptions, ("db", "solve_results", "centroids"),
              CALIBRATE_DOC.replace("Parameters\n----------\n",
                                    "Parameters\n----------\ndb : SolverDatabase\n"
                                    "    The database the images were solved with (its star "
                                    "table\n    resolves ``matched_catalog_ids``).\n"))
def calibrate_camera(db: PatternDatabase, solve_results: Any, centroids: Any,
                     options: CalibrationOptions) -> CalibrateResult:
    return calibrate(db, solve_results, centroids, options)
