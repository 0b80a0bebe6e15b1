"""An image as an 8-bit picture for the eye: the service's preview, a KMZ's overlay.

An asinh stretch (:class:`astropy.visualization.AsinhStretch`, a = 0.1) of the central
99.7 % of the finite values, clipped: the sky dark grey, faint stars visible, bright
ones white. A colour image (three axes) is averaged over its last axis; NaN and
infinite pixels are black, and so is an image with no finite value.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["display_pixels"]


def display_pixels(image: ArrayLike) -> NDArray[np.uint8]:
    """The 8-bit picture of ``image`` (see the module notes).

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
        Any numeric image.

    Returns
    -------
    ndarray of uint8, shape (H, W)
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 3:
        data = data.mean(axis=2)
    finite = np.isfinite(data)
    if not finite.any():
        return np.zeros(data.shape, np.uint8)
    # (the stretch from the finite pixels: a percentile of NaNs is NaN, and of none at
    # all an IndexError, which failed the job of an all-NaN frame)
    norm = ImageNormalize(data[finite], interval=PercentileInterval(99.7),
                          stretch=AsinhStretch(0.1), clip=True)
    return (255.0 * np.nan_to_num(norm(np.where(finite, data, np.nan)).filled(0.0))
            ).astype(np.uint8)
