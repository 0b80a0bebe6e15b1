"""Each calibrated image's mapping as a FITS TAN-SIP WCS, checked against the mapping
(ARC/ZEA/STG/SIN-SIP for a fisheye camera).

The calibrated mapping of image ``i`` takes a pixel through the shared camera
at that image's plate scale (:meth:`CalibrateResult.image_camera`) and its
refined attitude to an apparent direction, and -- when the image's stars were
aberrated with an observer velocity -- back to the catalog (barycentric ICRS)
direction a FITS WCS describes. :func:`image_wcs` fits a TAN-SIP WCS of a
chosen order to that mapping over a grid covering the image
(:func:`skysolve.io.wcs.fit_sip_wcs`: tangent point at the camera's boresight,
CRPIX at its optical centre) and measures, over the same grid, how far from each
pixel the calibrated mapping puts the WCS's sky direction of it: the
``max_error_px`` the header states (``SKYERRPX``).

Without a chosen order the lowest order (2 to 9) whose header reproduces the mapping
to :data:`SIP_TOLERANCE_PX` is written: a fixed order either wastes terms on a nearly
ideal lens or, on a strong radial lens (a k3 term over a 40 deg field), leaves
errors of a tenth of a pixel or more that a higher order removes. A lens no SIP
polynomial of order 9 holds that closely gets the order with the smallest error, and a
warning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from ..errors import InvalidArgumentError, warn_caller

__all__ = ["image_wcs", "image_header", "SIP_TOLERANCE_PX", "EXPORT_GRID"]

#: Largest error (px) against the calibrated mapping that the automatic SIP order
#: reaches for (a tenth of a good calibration's centroid noise).
SIP_TOLERANCE_PX = 0.01
#: Grid points per axis over the image for the fit and its check.
EXPORT_GRID = 33


def _sky(result: Any, image: int, x: NDArray[np.float64],
         y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Catalog unit vectors of centred pixels under image ``image``'s calibrated mapping."""
    from ..sky.aberration import unaberrate

    cam = result.image_camera(image)
    v = cam.pixel_to_vectors(x, y) @ np.asarray(result.rotations[image])
    velocity = result.per_image_velocity_km_s[image]
    return v if velocity is None else unaberrate(v, velocity)


def _pixels(result: Any, image: int, v: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                                      NDArray[np.float64]]:
    """Centred pixels of catalog unit vectors under image ``image``'s calibrated mapping
    (the inverse of :func:`_sky`)."""
    from ..sky.aberration import aberrate

    velocity = result.per_image_velocity_km_s[image]
    if velocity is not None:
        v = aberrate(v, velocity)
    x, y = result.image_camera(image).vectors_to_pixel(v @ np.asarray(result.rotations[image]).T)
    return np.asarray(x), np.asarray(y)


def image_wcs(result: Any, image: int, *, sip_order: int | None = None,
              pixel_offset: tuple[float, float] = (0.0, 0.0)) -> tuple[Any, float]:
    """TAN-SIP WCS of one calibrated image (the camera's zenithal projection with SIP
    terms for a fisheye) and its largest error over the image, px.

    Parameters
    ----------
    result : CalibrateResult
    image : int
        Index of the image in the calibration's solve results.
    sip_order : int, optional
        SIP polynomial order (2 to 9); default: the lowest that reproduces the
        mapping to :data:`SIP_TOLERANCE_PX`, else the most accurate (with a
        ``UserWarning`` giving its error).
    pixel_offset : (float, float)
        0-based column and row, in the WCS's pixel grid, of the image's first
        pixel (a TESS FFI's science area: ``(44, 0)``; see :mod:`skysolve.io.wcs`).

    Returns
    -------
    wcs : astropy.wcs.WCS
    max_error_px : float
        Largest distance, in pixels, between a grid pixel and where the calibrated
        mapping puts the WCS's sky direction of it (NaN where the mapping has no sky).
    """
    from ..geometry import radec_to_vector
    from ..io.wcs import MAX_SIP_ORDER, fit_sip_wcs
    from .result import checked_image

    sip_order = _args.count(sip_order, "sip_order", minimum=2, maximum=MAX_SIP_ORDER,
                            allow_none=True)
    image = checked_image(image, len(result.rotations))
    if result.rotations[image] is None:
        raise InvalidArgumentError(f"image {image} did not take part in the calibration")
    cam = result.image_camera(image)
    w, h = cam.image_width, cam.image_height
    g = np.linspace(-0.5, 0.5, EXPORT_GRID)
    x, y = (a.ravel() for a in np.meshgrid(g * w, g * h))
    sky = _sky(result, image, x, y)
    centre = _sky(result, image, *np.asarray(cam.crpix, dtype=np.float64)[:, None])[0]
    # FITS pixels: centred x = p1 - 0.5 - W/2 (see skysolve.io.wcs), plus the offset
    off = np.asarray(pixel_offset, dtype=np.float64)
    fits_px = np.stack([x + 0.5 + w / 2, y + 0.5 + h / 2], axis=1) + off
    crpix = np.asarray(cam.crpix) + [0.5 + w / 2, 0.5 + h / 2] + off
    shape = (int(round(w + off[0])), int(round(h + off[1])))

    def fitted(order: int) -> tuple[Any, float]:
        wcs = fit_sip_wcs(fits_px, sky, crpix, centre, order, pixel_shape=shape,
                          projection=cam.projection)
        ra, dec = wcs.all_pix2world(fits_px[:, 0], fits_px[:, 1], 1)
        # in pixels through the mapping itself: an angle times the focal length is the
        # pixel only at the optical centre (a pinhole's at 40 deg off axis: 1.7 of them)
        px, py = _pixels(result, image, radec_to_vector(ra, dec))
        err = np.hypot(px - x, py - y)
        err[~np.all(np.isfinite(sky), axis=1)] = np.nan
        return wcs, float(np.max(err))  # NaN where the mapping has no sky (fold-over)

    if sip_order is not None:
        return fitted(sip_order)
    best = None
    for order in range(2, MAX_SIP_ORDER + 1):
        wcs, err = fitted(order)
        if best is None or err < best[1] or not best[1] == best[1]:
            best = (wcs, err)
        if err <= SIP_TOLERANCE_PX:
            return wcs, err
    wcs, err = best
    if err == err:
        why = (f"the most accurate SIP header (order {wcs.sip.a_order}) reproduces the "
               f"calibrated mapping to {err:.2g} px at worst, not {SIP_TOLERANCE_PX:g} px "
               f"(SKYERRPX states it): a SIP polynomial cannot hold this lens more closely")
    else:
        why = ("the calibrated mapping gives no sky direction at some pixels of the image "
               "(its distortion folds over there): SKYERRPX is NaN")
    warn_caller(f"image {image}: {why}", UserWarning)
    return wcs, err


def image_header(result: Any, image: int, *, sip_order: int | None = None,
                 pixel_offset: tuple[float, float] = (0.0, 0.0)) -> Any:
    """:func:`image_wcs` as a FITS header, with its error and the image's figures."""
    wcs, err = image_wcs(result, image, sip_order=sip_order, pixel_offset=pixel_offset)
    from ..io.wcs import wcs_to_header

    hdr = wcs_to_header(wcs)
    hdr["SKYERRPX"] = (float(f"{err:.3g}"), "[px] max error of this WCS vs the calibration")
    hdr["SKYSCALE"] = (result.per_image_scale[image], "plate scale factor of this image")
    rms = result.per_image_rmse_px[image]
    if rms is not None:
        hdr["SKYRMSPX"] = (round(float(rms), 6), "[px] rms star residual of the calibration")
    held = result.per_image_holdout_rmse_px[image]
    if held is not None:
        hdr["SKYHOPX"] = (round(float(held), 6), "[px] held-out rms star residual")
    return hdr
