"""Frame sources: image files, image arrays or centroid lists, and their centroids.

A *frame source* is one of

* a path (``str`` or ``os.PathLike``) of an image file (FITS, PNG, JPEG, TIFF),
  read with :func:`skysolve.io.images.read_image` and extracted;
* a 2-D image array, extracted;
* centroids: an :class:`~skysolve.ExtractionResult`, a list of
  :class:`~skysolve.Centroid`, or an ``(N, 2)`` / ``(N, 3)`` array of
  ``x, y[, brightness]`` in centred pixels. A 2-D array with 2 or 3 columns
  is taken for centroids, never for an image 2 or 3 pixels wide.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..centroids import ExtractionResult
from ..errors import InvalidTypeError

__all__ = ["is_centroid_source", "frame_centroids", "frame_image"]


def is_centroid_source(source: Any) -> bool:
    """Whether ``source`` is already centroids (see the module notes)."""
    if isinstance(source, ExtractionResult):
        return True
    if isinstance(source, np.ndarray):
        return source.ndim == 2 and source.shape[1] in (2, 3)
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return len(source) == 0 or hasattr(source[0], "x") or np.ndim(source[0]) == 1
    return False


def frame_image(source: Any, *, hdu: int | str | None = None,
                section: Any = None) -> np.ndarray | None:
    """The image of an image source (a path is read here), None for centroids."""
    if is_centroid_source(source):
        return None
    if isinstance(source, str | os.PathLike):
        from ..io.images import read_image

        return read_image(source, hdu=hdu, section=section)
    if isinstance(source, np.ndarray):
        return source
    raise InvalidTypeError(
        "a frame must be an image path, a 2-D image array or centroids, got "
        f"{type(source).__name__}")


def frame_centroids(source: Any, extraction: Any = None, *, hdu: int | str | None = None,
                    section: Any = None) -> tuple[Any, tuple[int, int] | None]:
    """The centroids of a frame source and its image shape ``(height, width)``.

    Images are read (paths) and extracted with ``extraction`` (an
    :class:`~skysolve.extraction.options.ExtractionOptions`, or None for the
    defaults); centroid sources are returned as they are, with the shape of
    an :class:`~skysolve.ExtractionResult` or None.
    """
    image = frame_image(source, hdu=hdu, section=section)
    if image is None:
        if isinstance(source, ExtractionResult):
            return source, (source.image_height, source.image_width)
        return source, None
    from ..extraction import ExtractionOptions, extract

    ext = extract(image, extraction if extraction is not None else ExtractionOptions())
    return ext, (int(image.shape[0]), int(image.shape[1]))
