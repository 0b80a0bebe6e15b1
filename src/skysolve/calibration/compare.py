"""Two fits of the same images compared: over the pairs both hold, and over the image.

Fits of the same stars in two directions or at two orders re-match and clip their
pairs apart, so they are compared over the pairs both hold (by image and centroid).
With ``b`` the fit of more freedom (or the rival), the drop of the sum of squares from
``a`` to ``b`` at ``b``'s noise per coordinate is, for a model ``a`` that already holds
the lens, chi-square distributed with as many degrees of freedom as ``b`` has shared
parameters more (nested fits); a drop far above that says ``b`` holds what ``a``
cannot. :func:`mapping_gap` says what that means for the camera: how far apart the two
put the sky over each image.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from .lsq import rms

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Fitted

__all__ = ["kept_rms", "inlier_sq", "chi_square_drop", "drop_z", "mapping_gap"]


def kept_rms(fitted: Fitted) -> tuple[int, float]:
    """The pairs a fit holds, and their rms residual (px)."""
    res = fitted.problem.residuals(fitted.params)[fitted.inliers]
    return int(fitted.inliers.sum()), rms(res)


def inlier_sq(fitted: Fitted) -> dict[tuple[int, float, float], float]:
    """Each inlier pair's squared residual length (px²), by its image and observed pixel:
    two fits re-match and clip their pairs apart, so a pair's row differs between them,
    its centroid does not."""
    p = fitted.problem
    res = p.residuals(fitted.params)
    out = {}
    for k, im in enumerate(p.images):
        rows = p.rows(k)
        keep = fitted.inliers[rows]
        for (x, y), r in zip(im.xy[keep], res[rows][keep], strict=True):
            out[im.index, float(x), float(y)] = float(r @ r)
    return out


def chi_square_drop(a: Fitted, b: Fitted) -> float:
    """How much lower fit ``b``'s sum of squares is than fit ``a``'s over the pairs both
    hold, at ``b``'s inlier noise per coordinate."""
    a_sq, b_sq = inlier_sq(a), inlier_sq(b)
    common = a_sq.keys() & b_sq.keys()
    return sum(a_sq[c] - b_sq[c] for c in common) / (0.5 * kept_rms(b)[1] ** 2)


def drop_z(drop: float, k: int) -> float:
    """How many standard deviations a chi-square ``drop`` lies above what ``k`` more
    shared parameters take out of the noise alone (chi-square with ``k`` degrees of
    freedom: mean ``k``, variance ``2k``)."""
    return (drop - k) / math.sqrt(2 * k)


def mapping_gap(a: Fitted, b: Fitted, width: int, height: int, n: int = 9
                ) -> NDArray[np.float64]:
    """How far apart (px) fits ``a`` and ``b`` put the sky direction ``a`` sees at each
    point of an ``n`` x ``n`` grid over every image both fitted, through each image's
    attitude and scale."""
    cam_a, cam_b = a.camera(width, height), b.camera(width, height)
    gx, gy = (g.ravel() for g in np.meshgrid(np.linspace(-width / 2 + 0.5, width / 2 - 0.5, n),
                                             np.linspace(-height / 2 + 0.5, height / 2 - 0.5,
                                                         n)))
    other = {im.index: im for im in b.problem.images}
    gaps = []
    for im in a.problem.images:
        if (jm := other.get(im.index)) is None:
            continue
        sky = cam_a.replace(focal_length_px=cam_a.focal_length_px * im.scale
                            ).pixel_to_vectors(gx, gy) @ im.R
        px, py = cam_b.replace(focal_length_px=cam_b.focal_length_px * jm.scale
                               ).vectors_to_pixel(sky @ jm.R.T)
        gaps.append(np.hypot(px - gx, py - gy))
    return np.concatenate(gaps) if gaps else np.zeros(0)
