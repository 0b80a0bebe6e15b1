"""Simulated star fields with exact truth: images, centroid lists, attitudes.

Used by the tests, the benchmarks and the demo; everything is seeded.

Modules
-------
``starfield``
    :func:`render_starfield`: realistic detector frames through a camera or a
    WCS, with :class:`StarfieldTruth`; its parameters are :class:`StarfieldOptions`.
``centroids``
    :func:`simulate_centroids` (centroid lists without pixels),
    :func:`random_centroids` (fields that match no sky) and :func:`random_attitudes`.
``scene``, ``detector``, ``psf``, ``render``
    The field's stars and geometry (any lens projection; image circle and
    horizon: ``scene.FieldLimits``); background, bleeding and cosmic rays; the
    PSF model and the vectorised pixel-integrated renderer.
``cameras``
    :func:`tess_like_camera`, a camera with known truth.

May import: ``errors``, ``_args``, ``_options``, ``geometry``, ``sky``, ``camera``.
"""

from .cameras import TESS_LIKE_A, TESS_LIKE_B, tess_like_camera
from .centroids import SimulatedCentroids, random_attitudes, random_centroids, simulate_centroids
from .psf import GaussianPSF, magnitude_to_flux, render_stars
from .starfield import StarfieldOptions, StarfieldTruth, render_starfield

__all__ = ["GaussianPSF", "SimulatedCentroids", "StarfieldOptions", "StarfieldTruth",
           "TESS_LIKE_A", "TESS_LIKE_B", "magnitude_to_flux", "random_attitudes",
           "random_centroids", "render_starfield", "render_stars", "simulate_centroids",
           "tess_like_camera"]
