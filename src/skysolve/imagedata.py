"""What an image in memory may be: numpy and astropy containers → pixels, mask, noise, header.

:func:`as_image_data` turns any of the in-memory image types astronomers hold
into one :class:`ImageData`:

==============================  =============================================================
input                           taken as
==============================  =============================================================
``numpy.ndarray``               the pixels
``numpy.ma.MaskedArray``,       the pixels and its mask (True: masked)
astropy's ``Masked``
``astropy.nddata.NDData``,      ``data``; ``mask`` honoured (True: masked); ``uncertainty``
``CCDData``                     as the per-pixel noise (standard deviation, converted from
                                variance or inverse variance); ``meta`` as the header when
                                it is a FITS header
``PrimaryHDU``, ``ImageHDU``,   ``data`` and ``header``
``CompImageHDU``
``HDUList``                     the first HDU with 2-D image data, or ``hdu=`` (index or
                                EXTNAME)
``astropy.units.Quantity``      its values (the unit is dropped: pixel values are counts)
==============================  =============================================================

Three colour planes ``(3, H, W)`` (as FITS stores colour) in an HDU or an NDData are
taken as their luminance, as a FITS file's are read (a pixel masked in any plane is
masked; the noise is the weighted sum's).

A masked pixel never makes a star: extraction ignores it exactly like a NaN.
The package's stages take pixels through this one function (``extract_centroids``,
``read_image``, ``solve_image``) so that a mask or an uncertainty is never dropped
on the way. Only the layout is decided here; dtype checks stay with the caller.

May import: ``errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidArgumentError, InvalidTypeError

__all__ = ["LUMINANCE_WEIGHTS", "ImageData", "as_image_data", "is_colour_planes",
           "is_image_container", "luminance"]

#: Rec. 709 / sRGB luma weights for R, G, B used to turn colour into luminance.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)


def luminance(rgb: NDArray[Any]) -> NDArray[Any]:
    """Rec. 709 luminance of an (..., >=3) array; channels beyond the third are dropped.
    A grey image stored as colour (the three channels equal) is its first channel, in
    its stored dtype: whole counts stay whole (the weights' float32 sum is not exactly 1)."""
    if rgb.shape[-1] >= 3 and all(  # (a sparse sample first: a colour frame differs there)
            np.array_equal(part[..., 0], part[..., c])
            for part in (rgb[::17, ::19], rgb) for c in (1, 2)):
        return np.ascontiguousarray(rgb[..., 0])
    wide = (rgb.dtype.itemsize >= 4 and rgb.dtype.kind != "f") or rgb.dtype == np.float64
    work = np.float64 if wide else np.float32
    weights = np.asarray(LUMINANCE_WEIGHTS, dtype=work)
    return rgb[..., :3].astype(work, copy=False) @ weights


def is_colour_planes(data: NDArray[Any]) -> bool:
    """Whether ``data`` is three colour planes ``(3, H, W)``, as FITS stores colour (and
    ``fits.getdata`` returns it), rather than an ``(H, W, 3|4)`` colour image."""
    return data.ndim == 3 and data.shape[0] == 3 and data.shape[-1] > 4


def _colour(data: NDArray[Any], mask: NDArray[np.bool_] | None,
            noise: NDArray[np.floating] | None
            ) -> tuple[NDArray[Any], NDArray[np.bool_] | None, NDArray[np.floating] | None]:
    """The luminance of colour planes ``(3, H, W)`` with the mask and noise it has
    (each ``(3, H, W)``, or ``(H, W)`` for all three): a pixel masked in any plane is
    masked; the noise of the weighted sum (of the first plane where the three are
    equal, a grey image stored as colour)."""
    grey = luminance(np.moveaxis(data, 0, -1))
    if mask is not None and mask.ndim == 3:
        mask = mask.any(axis=0)
    if noise is not None and noise.ndim == 3:
        if np.array_equal(data[0], data[1]) and np.array_equal(data[0], data[2]):
            noise = noise[0]
        else:
            w = np.asarray(LUMINANCE_WEIGHTS)[:, None, None]
            noise = np.sqrt(np.sum((w * noise) ** 2, axis=0))
    return grey, mask, noise


@dataclass
class ImageData:
    """Pixels with their optional mask, noise map and FITS header.

    Attributes
    ----------
    data : ndarray
        The pixel values as stored (not copied when possible).
    mask : ndarray of bool or None
        Same shape as ``data``; True marks a pixel to ignore.
    noise : ndarray or None
        Same shape as ``data``; the 1-sigma noise of each pixel, in data units.
    header : astropy.io.fits.Header or None
        The FITS header that came with the pixels.
    """

    data: NDArray[Any]
    mask: NDArray[np.bool_] | None = None
    noise: NDArray[np.floating] | None = None
    header: Any = None


def _is_nddata(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("data", "mask", "uncertainty", "meta"))


def _is_hdu(obj: Any) -> bool:
    return hasattr(obj, "header") and hasattr(obj, "data") and hasattr(obj, "fileinfo")


def _is_hdulist(obj: Any) -> bool:
    return hasattr(obj, "index_of") and hasattr(obj, "fileinfo") and not _is_hdu(obj)


def _is_astropy_masked(obj: Any) -> bool:
    """An ``astropy.utils.masked.Masked`` array or Quantity (not a numpy ``MaskedArray``):
    its values are ``.unmasked``, and numpy's functions do not drop its mask."""
    return (isinstance(obj, np.ndarray) and not isinstance(obj, np.ma.MaskedArray)
            and hasattr(obj, "unmasked") and hasattr(obj, "mask"))


def is_image_container(obj: Any) -> bool:
    """Whether ``obj`` is one of the astropy/numpy containers :func:`as_image_data` unpacks."""
    return (isinstance(obj, np.ma.MaskedArray) or _is_nddata(obj) or _is_hdu(obj)
            or _is_hdulist(obj) or (isinstance(obj, np.ndarray) and hasattr(obj, "unit"))
            or _is_astropy_masked(obj))


def _mask(mask: Any, shape: tuple[int, ...], what: str) -> NDArray[np.bool_] | None:
    if mask is None or mask is np.ma.nomask:
        return None
    m = np.asarray(mask)
    if m.shape == ():
        return np.full(shape, bool(m)) if bool(m) else None
    if m.shape != shape:
        raise InvalidArgumentError(f"{what}: the mask has shape {m.shape}, the data {shape}")
    m = m.astype(bool, copy=False)
    return m if m.any() else None


def _noise(uncertainty: Any, shape: tuple[int, ...], unit: Any = None
           ) -> NDArray[np.float64] | None:
    """The standard deviation map of an NDData uncertainty (None when there is none), in
    the data's ``unit`` when both carry one (an uncertainty may have its own, e.g. mJy
    for data in Jy)."""
    if uncertainty is None:
        return None
    kind = getattr(uncertainty, "uncertainty_type", "std")
    values = np.asarray(uncertainty.array, dtype=np.float64)
    own = getattr(uncertainty, "unit", None)
    if own is not None and unit is not None:
        power = {"std": 1, "var": 2, "ivar": -2}.get(kind, 1)
        from astropy.units import UnitsError

        try:
            values = values * float(own.to(unit ** power))
        except UnitsError as exc:
            raise InvalidArgumentError(
                f"the image uncertainty's unit {own} does not convert to the data's "
                f"{unit ** power}") from exc
    if kind == "var":
        values = np.sqrt(values)
    elif kind == "ivar":
        with np.errstate(divide="ignore"):
            values = 1.0 / np.sqrt(values)
    elif kind != "std":
        raise InvalidArgumentError(
            f"image uncertainty of type {kind!r} cannot be used as a noise map "
            "(give a StdDevUncertainty, VarianceUncertainty or InverseVariance)")
    try:
        values = np.broadcast_to(values, shape)
    except ValueError:  # (NDData does not check its uncertainty's shape)
        raise InvalidArgumentError(
            f"NDData: the uncertainty has shape {values.shape}, the data {shape}") from None
    return values


def _from_hdulist(hdul: Any, hdu: Any) -> Any:
    if isinstance(hdu, bool | np.bool_):
        # (astropy reads True as index 1: a flag passed where the HDU goes read an HDU)
        raise InvalidArgumentError(
            f"hdu must be an HDU index (int) or an extension name (str), got {hdu!r}")
    if hdu is not None:
        try:
            return hdul[hdu]
        except (KeyError, IndexError) as exc:
            raise InvalidArgumentError(f"hdu={hdu!r} is not in the HDUList") from exc
    arrays = [h for h in hdul if isinstance(getattr(h, "data", None), np.ndarray)
              and h.data.dtype.fields is None and h.data.ndim >= 2]
    # the first image as a FITS file's is chosen (skysolve.io.images): 2-D once leading
    # axes of length one are dropped, or three colour planes; a data cube ahead of the
    # image is passed over (it was taken, and refused as "not a 2-D image")
    for h in arrays:
        shape = h.data.shape
        while len(shape) > 2 and shape[0] == 1:
            shape = shape[1:]
        if (len(shape) == 2 or (len(shape) == 3 and shape[0] == 3)) and min(shape) > 0:
            return h
    if arrays:
        return arrays[0]  # (its shape is refused where the pixels are used, by name)
    raise InvalidArgumentError("the HDUList holds no HDU with 2-D image data")


def as_image_data(source: Any, *, hdu: int | str | None = None) -> ImageData:
    """Unpack an in-memory image into pixels, mask, noise map and header.

    Parameters
    ----------
    source : ndarray, MaskedArray, Masked, NDData/CCDData, HDU, HDUList, Quantity or array_like
        See the module documentation. Anything else goes through
        ``numpy.asarray``.
    hdu : int or str, optional
        The HDU of an ``HDUList`` to use (default: the first with 2-D image data).

    Returns
    -------
    ImageData

    Raises
    ------
    InvalidArgumentError
        A mask or uncertainty whose shape differs from the data, an HDU without
        data, ``hdu`` with a source that is not an ``HDUList``.
    InvalidTypeError
        An object that is not an array at all.
    """
    if hdu is not None and not _is_hdulist(source):
        raise InvalidArgumentError("hdu applies to FITS files and HDULists only")
    if _is_hdulist(source):
        source = _from_hdulist(source, hdu)
    if _is_hdu(source):
        if source.data is None:
            raise InvalidArgumentError(f"the {type(source).__name__} holds no data")
        data = np.asarray(source.data)
        # as an HDU of a FITS file is read (skysolve.io.images): leading axes of length
        # one dropped, three colour planes (3, H, W) taken as their luminance
        while data.ndim > 2 and data.shape[0] == 1:
            data = data[0]
        if is_colour_planes(data):  # (its luminance, as a FITS file's is read)
            data = _colour(data, None, None)[0]
        return ImageData(data, header=source.header)
    if _is_nddata(source):
        data = source.data
        mask = getattr(data, "mask", None) if isinstance(data, np.ma.MaskedArray) else None
        data = np.asarray(data)
        # (colour planes' mask and noise: of each plane, or one for all three)
        shape = data.shape
        if is_colour_planes(data) and all(
                getattr(getattr(a, "array", a), "shape", None) == shape[1:]
                for a in (source.mask, source.uncertainty) if a is not None):
            shape = shape[1:]
        m = _mask(source.mask, shape, "NDData")
        if mask is not None:
            mm = _mask(mask, data.shape, "NDData")
            mm = mm if mm is None or mm.shape == shape else mm.any(axis=0)
            m = mm if m is None else (m if mm is None else m | mm)
        meta = source.meta
        header = meta if hasattr(meta, "cards") else None
        noise = _noise(source.uncertainty, shape, getattr(source, "unit", None))
        if is_colour_planes(data):
            data, m, noise = _colour(data, m, noise)
        return ImageData(data, m, noise, header)
    if isinstance(source, np.ma.MaskedArray):
        data = np.asarray(source.data)
        return ImageData(data, _mask(np.ma.getmask(source), data.shape, "MaskedArray"))
    if _is_astropy_masked(source):
        # (before the Quantity test: a masked Quantity has a unit too, and taking its
        # .value kept the values and dropped the mask)
        data = source.unmasked
        data = np.asarray(getattr(data, "value", data))
        return ImageData(data, _mask(source.mask, data.shape, type(source).__name__))
    if isinstance(source, np.ndarray) and hasattr(source, "unit"):  # an astropy Quantity
        return ImageData(np.asarray(source.value))
    if isinstance(source, np.ndarray):
        return ImageData(source)
    try:
        return ImageData(np.asarray(source))
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"an image must be an array, got {type(source).__name__}") \
            from exc
