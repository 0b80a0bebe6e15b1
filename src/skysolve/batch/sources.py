"""Frame sources: image files, image arrays or centroid lists, and their centroids.

A *frame source* is one of

* a path (``str`` or ``os.PathLike``) of an image file (FITS, PNG, JPEG, TIFF, BMP, GIF, WebP, PNM),
  read with :func:`skysolve.io.images.read_image` and extracted;
* a 2-D image array, extracted;
* centroids: an :class:`~skysolve.ExtractionResult`, a list of
  :class:`~skysolve.Centroid`, or an ``(N, 2)`` / ``(N, 3)`` array of
  ``x, y[, brightness]`` in centred pixels. A 2-D array with 2 or 3 columns
  is taken for centroids, never for an image 2 or 3 pixels wide.

A ``section`` of an image source is a crop of it (see
:func:`skysolve.io.images.read_image`). A camera model describes the whole image
(the detector) the section was cut from, since the optical centre is a property of
the detector, not of the crop: :func:`section_options` makes the solve options of
the whole image those of its section.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..centroids import ExtractionResult
from ..errors import InvalidTypeError, warn_caller

__all__ = ["is_centroid_source", "frame_centroids", "frame_image", "frame_section",
           "section_options"]


def is_centroid_source(source: Any) -> bool:
    """Whether ``source`` is already centroids (see the module notes)."""
    if isinstance(source, ExtractionResult):
        return True
    if isinstance(source, np.ndarray):
        return source.ndim == 2 and source.shape[1] in (2, 3)
    if isinstance(source, Sequence) and not isinstance(source, str | bytes):
        return len(source) == 0 or hasattr(source[0], "x") or np.ndim(source[0]) == 1
    return False


class NotAFrame:
    """What a batch sends in place of a source of no frame type (an open file, None, ...):
    its task fails as the source itself would (:func:`frame_image`), one failed frame,
    where sending the source could fail for the whole batch (an open file cannot be
    pickled for a worker process)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def is_frame_type(source: Any) -> bool:
    """Whether ``source`` is of a type a frame can have: a path, an array, an
    ``ExtractionResult`` or a sequence (centroids); whether it is a usable frame is
    found out when it is processed."""
    return (isinstance(source, str | os.PathLike | np.ndarray | ExtractionResult)
            or (isinstance(source, Sequence) and not isinstance(source, bytes)))


def frame_image(source: Any, *, hdu: int | str | None = None,
                section: Any = None) -> np.ndarray | None:
    """The image of an image source (a path is read here), None for centroids; with
    ``section`` (a path's or an array's), that part of it."""
    if is_centroid_source(source):
        return None
    from ..io.images import read_image

    if isinstance(source, str | os.PathLike):
        return read_image(source, hdu=hdu, section=section)
    if isinstance(source, np.ndarray):
        return source if section is None else read_image(source, section=section)
    name = source.type_name if isinstance(source, NotAFrame) else type(source).__name__
    raise InvalidTypeError(
        f"a frame must be an image path, a 2-D image array or centroids, got {name}")


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


def frame_section(source: Any, *, hdu: int | str | None = None,
                  section: Any = None) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Where ``section`` of the image ``source`` lies in the whole image.

    Returns
    -------
    window : (int, int, int, int)
        ``(x0, y0, width, height)``: the 0-based column and row of the section's first
        pixel in the whole image, and its size (``(0, 0, W, H)`` without a section).
    full_shape : (int, int)
        The whole image's ``(height, width)``: of a FITS file from its header, without
        reading the pixels; other files are read.
    """
    from ..errors import FileFormatError
    from ..io.images import parse_section, read_fits_header, read_image

    if is_centroid_source(source):
        raise InvalidTypeError("a section is part of an image; centroids have none")
    if not is_frame_type(source):
        frame_image(source)  # (its error: no frame type)
    full = None
    if isinstance(source, str | os.PathLike):
        try:
            hdr = read_fits_header(source, hdu)
        except FileFormatError:  # not FITS
            pass
        else:
            # a table's NAXIS1, NAXIS2 are its row length and rows: such an HDU (or a 1-D
            # one) is read, which says why it is no image
            if hdr.get("XTENSION", "IMAGE") == "IMAGE" and int(hdr.get("NAXIS", 0)) >= 2:
                full = (int(hdr["NAXIS2"]), int(hdr["NAXIS1"]))
    if full is None:
        full = tuple(read_image(source, hdu=hdu).shape)
    if section is None:
        return (0, 0, full[1], full[0]), full
    rows, cols = parse_section(section, full)
    return (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start), full


def section_options(options: Any, window: tuple[int, int, int, int],
                    full_shape: tuple[int, int]) -> Any:
    """The :class:`~skysolve.SolveOptions` of the ``window`` (``(x0, y0, width, height)``,
    see :func:`frame_section`) of an image of ``full_shape`` ``(height, width)``, given
    the whole image's.

    The optical centre stays where it is on the whole image: the camera model, of the
    whole image, becomes the window's (:meth:`~skysolve.CameraModel.cropped`); without
    one, the optical centre (``crpix``, default the whole image's centre) is moved into
    the window's centred pixels. About the window's own centre a corner crop of a 30 deg
    lens was solved 5' off.
    """
    from ..camera.model import CameraModel
    from ..errors import InvalidArgumentError

    x0, y0, w, h = window
    camera = options.camera_model
    if camera is None:
        # the crpix of a plain camera of the whole image, as the window sees it
        plain = CameraModel(1.0, full_shape[1], full_shape[0], crpix=options.crpix)
        return options.replace(crpix=plain.cropped(x0, y0, w, h).crpix)
    if camera.image_shape == (h, w) != tuple(full_shape):
        # a camera file that skysolve calibrate --section wrote before cameras of
        # sections were those of the whole image: the section's own
        warn_caller(
            f"camera_model is {w}x{h}, the section's size, not the whole "
            f"{full_shape[1]}x{full_shape[0]} image's: taken for a camera of the section "
            f"(as calibrations of a section wrote them before); recalibrate, or use "
            f"camera.cropped(-{x0}, -{y0}, {full_shape[1]}, {full_shape[0]}) as the camera",
            UserWarning)
        return options
    if camera.image_shape != tuple(full_shape):
        raise InvalidArgumentError(
            f"camera_model is for {camera.image_width}x{camera.image_height} images; the "
            f"image is {full_shape[1]}x{full_shape[0]} (with a section the camera "
            f"describes the whole image)")
    return options.replace(camera_model=camera.cropped(x0, y0, w, h))
