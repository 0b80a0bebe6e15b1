"""Camera models: pixel ↔ camera-frame directions, with lens distortion.

Modules
-------
``model``
    :class:`CameraModel`: focal length, optical centre, parity, distortion,
    the camera file format.
``distortion``
    :class:`RadialDistortion` (Brown-Conrady) and :class:`PolynomialDistortion`
    (SIP-like), their design matrices and exact inverses.

May import: ``errors``, ``_args``, ``geometry``, ``_files``.
"""

from .distortion import PolynomialDistortion, RadialDistortion
from .model import CameraModel

__all__ = ["CameraModel", "PolynomialDistortion", "RadialDistortion"]
