"""Images that do not fit the camera the others share: found, left out and reported.

An image of another lens or focal setting, or one whose solve is wrong, among
good images of one camera does not only lose its own stars to the clipping: its
pairs pull the first fits of the shared camera towards it, and re-matching under
those fits (:func:`~skysolve.calibration.matching.rematch`) drops the good
images' stars where the pulled camera is off -- for good (re-matching only
keeps pairs).

:func:`fit_without_misfits` fits every image, and while the image that keeps
the smallest share of its matched stars keeps less than
:data:`REJECTED_IMAGE_SHARE` of them, fits the others again without it, from
the pairs the solves gave. The image is left out when it kept less than that
share of the median image's share too, or when the others keep more of their
stars without it; otherwise the fit is poor everywhere (a provisional camera,
a model too simple for the lens) and no image is to blame. Fewer than half the
images are left out, so the camera is the one a majority of them shares.

Re-matching can also settle the fit between two lenses: every image then keeps
most of its stars (56-70 % in a draw of two other-lens images among five), at
a noise scale four times its centroids', and none stands out by its share.
The images' pairs then disagree with the camera (:func:`disagreement`, a score
test of each image's pull on the shared parameters), and of the two images that
disagree most the one without which the others keep more of their stars is
left out. A provisional calibration does not look for this (its deliberately
simple model makes every image disagree).

A left-out image is then tested against the camera the others share
(:func:`fits_camera`: its attitude and plate scale fitted to that camera, its
stars clipped at ``sigma_clip`` times the median image's noise): one whose
stars fit it as well is taken back (it was pulled out by another misfit), the
others are reported with how many of their stars fit, in
:attr:`CalibrateResult.excluded_images
<skysolve.calibration.result.CalibrateResult.excluded_images>`.

Over 12 draws of images of 80 stars (0.05 px noise, order 3), one of them of a
lens with three times the others' ``k1``, among three, put the good images'
mapping 0.043 px off the truth (median; 0.066 px at worst), two among five
0.081 px (3.6 px at worst); now 0.030 px (0.042) and 0.028 px (0.041), as the
good images alone give.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from ..camera.model import CameraModel
from ..errors import InvalidArgumentError
from .engine import Fitted, fit_camera, refit_attitudes
from .lsq import LOCAL, Pairs, Problem, core_rms, inverse_normal
from .options import CalibrationOptions

__all__ = ["fit_without_misfits", "fits_camera", "REJECTED_IMAGE_SHARE"]

#: An image whose fit keeps less than this share of its matched pairs does not fit the
#: camera the others share.
REJECTED_IMAGE_SHARE = 0.5
# The others' median kept share must rise by this when an image that keeps less than
# half of its stars but more than half the others' share is left out.
_GAIN = 0.05
# An image whose pairs' disagreement with the camera has a p-value below this
# (:func:`disagreement`; clean simulated sets gave 3e-3 at least, a compromise between
# two lenses 1e-11 to 1e-57) has the images that disagree most tried out, and the one
# without which the others' median kept share rises by more than this is left out.
_DISAGREE_P = 1e-9
_COMPROMISE_GAIN = 0.2
# Images tried out (those that disagree most): a fit each.
_COMPROMISE_TRIALS = 2
# Eigenvalues of an image's test covariance below this share of the largest are
# directions its pairs do not constrain.
_RANK_TOLERANCE = 1e-9
# Gauss-Newton steps of one image's attitude and scale against a fixed camera.
_IMAGE_STEPS = 6


def _kept_shares(fitted: Fitted, matched: dict[int, int]) -> NDArray[np.float64]:
    """Each image's inliers over the pairs its solve ``matched`` (by result index)."""
    p = fitted.problem
    return np.array([fitted.inliers[p.rows(k)].sum() / max(matched[im.index], 1)
                     for k, im in enumerate(p.images)])


def fits_camera(fitted: Fitted, image: Pairs, width: int, height: int,
                sigma_clip: float) -> int:
    """How many of ``image``'s pairs lie within ``sigma_clip`` times the median image's
    noise of where the fitted camera puts them, the image's attitude and plate scale
    fitted to it (``image`` is changed in place).

    The attitude starts from the camera's vectors of the pixels (Wahba's problem) and
    the stars are clipped at the larger of the final threshold and ``sigma_clip``
    times the core rms of the residuals (:func:`~.lsq.core_rms`), which stays on the
    good pairs when many are wrong.
    """
    p = fitted.problem
    one = Problem([image], p.basis, p.sign, False, False, [True], p.projection)
    image.scale = 1.0
    refit_attitudes([image], fitted.camera(width, height))
    limit = sigma_clip * float(np.median(fitted.noise))
    zero = np.zeros(one.n_glob)
    keep = np.ones(len(image), dtype=bool)
    for _ in range(_IMAGE_STEPS):
        res, a = one.design(fitted.params, 0)
        length = np.hypot(res[:, 0], res[:, 1])
        keep = length <= max(limit, sigma_clip * core_rms(res[keep]))
        if keep.sum() < LOCAL:
            break
        # the image's own columns only: the shared camera stays as the others fit it
        local = a[keep][:, :, one.n_glob:].reshape(-1, LOCAL)
        step = np.linalg.lstsq(local, res[keep].ravel(), rcond=None)[0]
        one.apply(fitted.params, np.concatenate([zero, step]))
    res = one.residuals(fitted.params)
    return int(np.count_nonzero(np.hypot(res[:, 0], res[:, 1]) <= limit))


def fit_without_misfits(images: list[Pairs], cameras: list[CameraModel], width: int,
                        height: int, options: CalibrationOptions, order: int | None = None,
                        compromise: bool = True
                        ) -> tuple[Fitted, list[Pairs], list[CameraModel], dict[int, str]]:
    """The shared fit (:func:`~.engine.fit_camera`) of the images that fit it: the fit,
    the images and cameras it kept, and why each image left out was (by result
    index); see the module notes. With ``sigma_clip=inf`` (every pair as the solves
    gave it) or fewer than three images, every image is fitted; without
    ``compromise`` a camera between two lenses is not looked for (a provisional
    calibration, whose deliberately simple model makes every image disagree, and whose
    camera only seeds the next)."""
    pristine = [dataclasses.replace(im) for im in images]
    matched = {im.index: len(im) for im in images}
    fitted = fit_camera(images, cameras, width, height, options, order)
    most = (len(images) - 1) // 2
    if not math.isfinite(options.sigma_clip) or most < 1:
        return fitted, images, cameras, {}
    out: list[int] = []  # positions in ``images`` left out
    while len(out) < most:
        step = _next_out(fitted, pristine, cameras, out, matched, width, height, options,
                         order, compromise)
        if step is None:
            break
        out.append(step[0])
        fitted = step[1]
    if not out:
        return fitted, images, cameras, {}
    typical = float(np.median(_kept_shares(fitted, matched)))
    why: dict[int, str] = {}
    back = []
    for k in out:
        im = dataclasses.replace(pristine[k])
        n_fit = fits_camera(fitted, im, width, height, options.sigma_clip)
        why[im.index] = (f"{n_fit} of its {len(im)} matched stars fit the camera the other "
                         f"images share (within {options.sigma_clip:g} x "
                         f"{float(np.median(fitted.noise)):.3g} px; they keep "
                         f"{100 * typical:.0f} % of theirs)")
        if n_fit >= REJECTED_IMAGE_SHARE * typical * len(im):
            back.append(k)
    refit = _refit(pristine, cameras, [k for k in out if k not in back], width, height,
                   options, order) if back else None
    if refit is not None:
        fitted = refit
        out = [k for k in out if k not in back]
        for k in back:
            del why[pristine[k].index]
    return (fitted, list(fitted.problem.images),
            [cameras[k] for k in range(len(images)) if k not in out], why)


def _next_out(fitted: Fitted, pristine: list[Pairs], cameras: list[CameraModel],
              out: list[int], matched: dict[int, int], width: int, height: int,
              options: CalibrationOptions, order: int | None,
              compromise: bool) -> tuple[int, Fitted] | None:
    """The next image to leave out (its position in ``pristine``) and the fit without
    it, or None (see the module notes and :func:`fit_without_misfits`)."""
    shares = _kept_shares(fitted, matched)
    where = {im.index: k for k, im in enumerate(pristine)}
    position = [where[im.index] for im in fitted.problem.images]
    worst = int(np.argmin(shares))
    if shares[worst] < REJECTED_IMAGE_SHARE:
        trial = _refit(pristine, cameras, out + [position[worst]], width, height, options,
                       order)
        if trial is None:
            return None
        # an image below half the others' share is out; one that merely keeps less than
        # half of its own stars only when the others keep more of theirs without it
        # (else it is the fit that is poor everywhere, not the image)
        others = float(np.median(np.delete(shares, worst)))
        if (shares[worst] < REJECTED_IMAGE_SHARE * float(np.median(shares))
                or float(np.median(_kept_shares(trial, matched))) > others + _GAIN):
            return position[worst], trial
        return None
    if not compromise or len(shares) < 3:
        return None
    pvalues = disagreement(fitted)
    if not float(np.min(pvalues)) < _DISAGREE_P:
        return None
    # every image keeps most of its stars, yet some disagree with the camera: a
    # compromise between two lenses, which re-matching has made every image's pairs
    # fit (or a model too simple for the lens, which no image's absence mends); of the
    # images that disagree most, the one without which the others keep the most of
    # theirs
    best: tuple[float, int, Fitted] | None = None
    for j in np.argsort(pvalues)[:_COMPROMISE_TRIALS]:
        j = int(j)
        trial = _refit(pristine, cameras, out + [position[j]], width, height, options, order)
        if trial is None:
            continue
        gain = float(np.median(_kept_shares(trial, matched))
                     - np.median(np.delete(shares, j)))
        if best is None or gain > best[0]:
            best = (gain, j, trial)
    if best is None or not best[0] > _COMPROMISE_GAIN:
        return None
    return position[best[1]], best[2]


def disagreement(fitted: Fitted) -> NDArray[np.float64]:
    """Each image's p-value of the hypothesis that its pairs share the fitted camera.

    Its pairs' pull on the shared parameters (but the focal length, which its plate
    scale takes up) once its attitude and scale are fitted -- ``g``, the gradient of
    the weighted residual sum of squares, ``M`` its own normal matrix of them, ``N``
    that of all images -- has the covariance ``s2 (M - M N^-1 M)`` when the image
    shares the camera and its pairs are as noisy as their weights say (``s2`` the
    unit variance of the fit). ``g`` against it is chi-square distributed (a score
    test; the degrees of freedom the rank).
    """
    from scipy.special import chdtrc

    p = fitted.problem
    designs = fitted.designs or p.designs(fitted.params)
    glob = np.arange(1, p.n_glob)
    local = np.arange(p.n_glob, p.n_glob + LOCAL)
    mats, grads = [], []
    rss, n_obs = 0.0, 0
    for k, (res, a) in enumerate(designs):
        keep = fitted.inliers[p.rows(k)]
        r, a = res[keep], a[keep]
        wa = a * fitted.weights[p.rows(k)][keep][:, None, None]
        nmat = np.einsum("nai,naj->ij", a, wa, optimize=False)
        rvec = np.einsum("nai,na->i", wa, r, optimize=False)
        # the image's own attitude and scale eliminated (Schur complement)
        cross = nmat[np.ix_(glob, local)] @ np.linalg.pinv(nmat[np.ix_(local, local)])
        mats.append(nmat[np.ix_(glob, glob)] - cross @ nmat[np.ix_(local, glob)])
        grads.append(rvec[glob] - cross @ rvec[local])
        rss += float(np.sum(fitted.weights[p.rows(k)][keep][:, None] * r * r))
        n_obs += 2 * len(r)
    total = sum(mats)
    d = np.sqrt(np.diag(total))
    d[d == 0] = 1.0
    inv = inverse_normal(total / np.outer(d, d))
    s2 = rss / max(n_obs - len(glob) - LOCAL * len(designs), 1)
    out = np.ones(len(designs))
    for k, (m, g) in enumerate(zip(mats, grads, strict=True)):
        m, g = m / np.outer(d, d), g / d
        ev, vec = np.linalg.eigh(m - m @ inv @ m)
        use = ev > _RANK_TOLERANCE * max(float(ev[-1]), 0.0)
        if use.any():
            chi2 = float(np.sum((vec[:, use].T @ g) ** 2 / ev[use])) / s2
            out[k] = float(chdtrc(int(use.sum()), chi2))
    return out


def _refit(pristine: list[Pairs], cameras: list[CameraModel], out: list[int], width: int,
           height: int, options: CalibrationOptions, order: int | None) -> Fitted | None:
    """The fit of the images not ``out``, from the pairs the solves gave (None when the
    model has more parameters than their stars constrain)."""
    kept = [k for k in range(len(pristine)) if k not in out]
    try:
        return fit_camera([dataclasses.replace(pristine[k]) for k in kept],
                          [cameras[k] for k in kept], width, height, options, order)
    except InvalidArgumentError:
        return None
