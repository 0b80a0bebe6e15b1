"""Cameras for simulations with known truth."""

from __future__ import annotations

from ..camera.distortion import PolynomialDistortion
from ..camera.model import CameraModel

__all__ = ["TESS_LIKE_A", "TESS_LIKE_B", "tess_like_camera"]

#: Forward (ideal -> distorted: sky to pixel, as :class:`PolynomialDistortion`'s A/B)
#: coefficients, in the term order of :func:`~skysolve.camera.distortion.polynomial_terms`
#: with scale 1024 px, of a distortion like TESS camera 1 / CCD 1's: a shear of ~13 px and
#: curvature reaching ~60 px at the corners. Their quadratic to quartic terms are the
#: archival sector-1 SIP solution's AP/BP (its sky-to-pixel polynomials; a FITS SIP's A/B
#: go pixel to sky) rounded, within 0.7 px each at 1024 px.
TESS_LIKE_A = (0.005, 0.008, 12.92, -21.07, -18.56, -3.42, 4.16, 2.13, 4.41, 0.57, -0.67,
               -0.89, -1.07, -0.74, -0.22)
TESS_LIKE_B = (0.005, 12.92, 0.11, -3.47, -18.56, -21.05, 0.57, 4.43, 2.15, 4.12, -0.20,
               -0.72, -1.05, -0.87, -0.67)


def tess_like_camera() -> CameraModel:
    """A 2048x2048 camera like TESS camera 1 / CCD 1, for simulations with known truth.

    Focal length 10040.17 px (FOV ~11.65 deg), optical centre at (-23.5, -23.5) px,
    mirrored (``parity_flip=True``) and an order-4 polynomial distortion built from
    :data:`TESS_LIKE_A` / :data:`TESS_LIKE_B`.
    """
    from ..camera.model import CameraModel

    w = h = 2048
    crpix = (-23.5, -23.5)
    dist = PolynomialDistortion.from_forward(4, 1024.0, list(TESS_LIKE_A), list(TESS_LIKE_B),
                                             image_width=w, image_height=h, crpix=crpix)
    return CameraModel(10040.17, w, h, crpix=crpix, parity_flip=True, distortion=dist)
