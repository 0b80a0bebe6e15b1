"""Image → centroids: find stars in a frame and measure their sub-pixel positions.

Modules
-------
``extract``
    :func:`extract_centroids`, the entry point: input checks, background,
    detection mask, labelling, selection, measurement.
``options``
    :class:`ExtractionOptions`: every parameter, its default, docs and check.
``extractor``
    :class:`CentroidExtractor`, an extractor object that keeps its settings.
``fast``
    :func:`extract_centroids_fast`: tetra3rs's quick signature, mapped onto
    the extractor without the fits and the matched filter.
``background``
    Sky level and noise (global, or per block and interpolated).
``blobs``
    Per-blob moments, shape filters (hot pixels, cosmic rays, blends) and the
    Gaussian position fits.
``psffit``
    Vectorised least-squares fit of pixel-integrated Gaussians to stamps.

The results are :class:`skysolve.centroids.ExtractionResult` objects.

May import: ``errors``, ``_args``, ``_options``, ``centroids``, ``imagedata``.
"""

from ..centroids import Centroid, ExtractionResult, centroids_to_array
from .extract import extract, extract_centroids
from .extractor import CentroidExtractor
from .fast import extract_centroids_fast
from .options import ExtractionOptions

__all__ = ["Centroid", "CentroidExtractor", "ExtractionOptions", "ExtractionResult",
           "centroids_to_array", "extract", "extract_centroids", "extract_centroids_fast"]
