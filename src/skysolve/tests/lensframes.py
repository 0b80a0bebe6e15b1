"""A rendered frame of a wide lens with barrel distortion, for the tests of image sections.

A 30 deg, 1600x1200 px lens (``k1 = -0.02`` at 800 px) with its optical axis at the
frame's centre, pointed at Orion: a corner section of it, solved about the section's own
centre, is hundreds of arcseconds off, so the tests of sections (batch and command line)
can tell the whole image's optical centre from the section's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from skysolve import CameraModel, RadialDistortion
from skysolve.geometry import radec_roll_to_rotation
from skysolve.simulate import render_starfield


def barrel_lens_frame(catalog, path: Path | None = None) -> tuple[CameraModel, np.ndarray,
                                                                  np.ndarray]:
    """``(camera, rotation, image)`` of the frame (``catalog``'s stars at 2025.0, seed 0),
    also written to ``path`` as a FITS file when given."""
    from astropy.io import fits

    cam = CameraModel.from_fov(30.0, 1600, 1200,
                               distortion=RadialDistortion(k1=-0.02, scale=800.0))
    R = radec_roll_to_rotation(83.8, -5.4, 37.0)
    image, _ = render_starfield(catalog.propagate(2025.0), cam, R, seed=0)
    if path is not None:
        fits.PrimaryHDU(image).writeto(path)
    return cam, R, image
