"""Images that do not fit the camera the others share: found, left out and reported.

An image of another lens or focal setting, or one whose solve is wrong, among
good images of one camera does not only lose its own stars to the clipping: its
pairs pull the first fits of the shared camera towards it, and re-matching under
those fits (:func:`~skysolve.calibration.matching.rematch`) drops the good
images' stars where the pulled camera is off -- for good (re-matching only
keeps pairs). One image of a lens with three times the ``k1`` among three
images took the good images' mapping from 0.027 to 0.049 px off the truth
(median of six draws, 0.066 px at worst); two among five put the good images
3 px off in one draw in six.

:func:`fit_without_misfits` fits every image, and while the image that keeps
the smallest share of its matched stars keeps less than
:data:`REJECTED_IMAGE_SHARE` of them, fits the others again without it, from
the pairs the solves gave. The image is left out when it kept less than that
share of the median image's share too, or when the others keep more of their
stars without it; otherwise the fit is poor everywhere (a provisional camera,
a model too simple for the lens) and no image is to blame. Fewer than half the
images are left out, so the camera is the one a majority of them shares. The
same three images then put the good ones 0.030 px off the truth (0.034 px at
worst), and the two among five 0.027 px (0.030 px).

A left-out image is then tested against the camera the others share
(:func:`fits_camera`: its attitude and plate scale fitted to that camera, its
stars clipped at ``sigma_clip`` times the median image's noise): one whose
stars fit it as well is taken back (it was pulled out by another misfit), the
others are reported with how many of their stars fit, in
:attr:`CalibrateResult.excluded_images
<skysolve.calibration.result.CalibrateResult.excluded_images>`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray

from ..camera.model import CameraModel
from ..errors import InvalidArgumentError
from .engine import Fitted, fit_camera, refit_attitudes
from .lsq import LOCAL, Pairs, Problem, core_rms
from .options import CalibrationOptions

__all__ = ["fit_without_misfits", "fits_camera", "REJECTED_IMAGE_SHARE"]

#: An image whose fit keeps less than this share of its matched pairs does not fit the
#: camera the others share.
REJECTED_IMAGE_SHARE = 0.5
# The others' median kept share must rise by this when an image that keeps less than
# half of its stars but more than half the others' share is left out.
_GAIN = 0.05
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
                        height: int, options: CalibrationOptions, order: int | None = None
                        ) -> tuple[Fitted, list[Pairs], list[CameraModel], dict[int, str]]:
    """The shared fit (:func:`~.engine.fit_camera`) of the images that fit it: the fit,
    the images and cameras it kept, and why each image left out was (by result
    index); see the module notes. With ``sigma_clip=inf`` (every pair as the solves
    gave it) or fewer than three images, every image is fitted."""
    pristine = [dataclasses.replace(im) for im in images]
    matched = {im.index: len(im) for im in images}
    fitted = fit_camera(images, cameras, width, height, options, order)
    most = (len(images) - 1) // 2
    if not math.isfinite(options.sigma_clip) or most < 1:
        return fitted, images, cameras, {}
    out: list[int] = []  # positions in ``images`` left out
    while len(out) < most:
        shares = _kept_shares(fitted, matched)
        worst = int(np.argmin(shares))
        typical = float(np.median(shares))
        if not shares[worst] < REJECTED_IMAGE_SHARE:
            break
        k = next(j for j, im in enumerate(images)
                 if im.index == fitted.problem.images[worst].index)
        try:
            trial = _refit(pristine, cameras, out + [k], width, height, options, order)
        except InvalidArgumentError:  # the others alone are too few for the model
            break
        # an image below half the others' share is out; one that merely keeps less than
        # half of its own stars only when the others keep more of theirs without it
        # (else it is the fit that is poor everywhere, not the image)
        others = float(np.median(np.delete(shares, worst)))
        if (shares[worst] >= REJECTED_IMAGE_SHARE * typical
                and not np.median(_kept_shares(trial, matched)) > others + _GAIN):
            break
        out.append(k)
        fitted = trial
    if not out:
        return fitted, images, cameras, {}
    typical = float(np.median(_kept_shares(fitted, matched)))
    why: dict[int, str] = {}
    back = []
    for k in out:
        im = dataclasses.replace(pristine[k])
        n_fit = fits_camera(fitted, im, width, height, options.sigma_clip)
        if n_fit >= REJECTED_IMAGE_SHARE * typical * len(im):
            back.append(k)
        else:
            why[im.index] = (f"{n_fit} of its {len(im)} matched stars fit the camera the "
                             f"other images share (within {options.sigma_clip:g} x "
                             f"{float(np.median(fitted.noise)):.3g} px; they keep "
                             f"{100 * typical:.0f} % of theirs)")
    if back:
        out = [k for k in out if k not in back]
        fitted = _refit(pristine, cameras, out, width, height, options, order)
    return (fitted, list(fitted.problem.images),
            [cameras[k] for k in range(len(images)) if k not in out], why)


def _refit(pristine: list[Pairs], cameras: list[CameraModel], out: list[int], width: int,
           height: int, options: CalibrationOptions, order: int | None) -> Fitted:
    """The fit of the images not ``out``, from the pairs the solves gave."""
    kept = [k for k in range(len(pristine)) if k not in out]
    return fit_camera([dataclasses.replace(pristine[k]) for k in kept],
                      [cameras[k] for k in kept], width, height, options, order)
