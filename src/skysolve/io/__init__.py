"""Files and formats in and out: images, and the FITS WCS bridge.

Modules
-------
``images``
    :func:`read_image` (FITS, PNG, JPEG, TIFF, BMP, GIF, WebP, PNM, arrays), FITS headers and times.
``wcs``
    Camera model + attitude ↔ astropy WCS (the zenithal TAN, ARC, ZEA, STG, SIN
    projections of the lens projections, with SIP for distortion) and FITS headers.

May import: ``errors``, ``_args``, ``geometry``, ``camera``, ``imagedata``, ``_files``.
"""

from .images import read_image
from .wcs import camera_to_wcs, wcs_to_camera, wcs_to_header

__all__ = ["camera_to_wcs", "read_image", "wcs_to_camera", "wcs_to_header"]
