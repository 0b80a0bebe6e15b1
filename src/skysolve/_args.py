"""Argument checks shared by the public entry points (solver, calibration)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["positive_size", "image_size"]


def positive_size(name: str, value: Any) -> int:
    """A positive whole number of pixels, or an error naming ``name``.

    Floats with integral values are accepted; NaN, inf, 1000.5, strings and
    bools are refused rather than silently truncated.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    if not math.isfinite(value) or value != int(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def image_size(image_width: Any, image_height: Any, image_shape: Any,
               cameras: Sequence[Any] = ()) -> tuple[int, int]:
    """Resolve ``(width, height)`` from the ways a caller may give an image size.

    Parameters
    ----------
    image_width, image_height : int or None
    image_shape : (height, width) or None
        numpy's order; must agree with ``image_width`` / ``image_height``.
    cameras : sequence of CameraModel
        Camera models in use; their sizes must agree with each other and with
        any size given explicitly, and supply it when none is.

    Returns
    -------
    (int, int)
        Width and height in pixels (height defaults to width when only a
        width is known).

    Raises
    ------
    InvalidArgumentError
        When sizes disagree, are not positive integers, or none is known.
    """
    w = h = None
    if image_shape is not None:
        try:
            shape = tuple(image_shape)
        except TypeError:
            raise InvalidArgumentError(
                f"image_shape must be (height, width), got {image_shape!r}") from None
        if len(shape) != 2:
            raise InvalidArgumentError(f"image_shape must be (height, width), got {image_shape!r}")
        h = positive_size("image_shape[0] (height)", shape[0])
        w = positive_size("image_shape[1] (width)", shape[1])
    if image_width is not None:
        iw = positive_size("image_width", image_width)
        if w is not None and iw != w:
            raise InvalidArgumentError(f"image_width={iw} disagrees with image_shape={image_shape}")
        w = iw
    if image_height is not None:
        ih = positive_size("image_height", image_height)
        if h is not None and ih != h:
            raise InvalidArgumentError(
                f"image_height={ih} disagrees with image_shape={image_shape}")
        h = ih
    for cam in cameras:
        if w is not None and w != cam.image_width:
            raise InvalidArgumentError(
                f"image width {w} disagrees with the camera model's image_width "
                f"{cam.image_width}")
        if h is not None and h != cam.image_height:
            raise InvalidArgumentError(
                f"image height {h} disagrees with the camera model's image_height "
                f"{cam.image_height}")
        w, h = cam.image_width, cam.image_height
    if w is None:
        raise InvalidArgumentError(
            "the image size is unknown: pass image_shape=(height, width), image_width, or "
            "camera_model")
    return w, (w if h is None else h)
