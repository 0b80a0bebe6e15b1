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
    Per-blob moments, sharpness, blends and the Gaussian position fits.
``filters``
    Which detections are stars: size, sharpness, elongation (relative to the
    frame's own PSF), diffuse structure, trails and dotted lines, narrow blobs;
    each rejection with its reason.
``psffit``
    Vectorised least-squares fit of pixel-integrated Gaussians to stamps.
``kernels``
    numba twins of the hot loops (labelling, per-blob sums, window fits, the
    background's cell sums and model), used once warm in numba's cache (the
    numpy code stays the definition), and their warm-up.

The results are :class:`skysolve.centroids.ExtractionResult` objects.

May import: ``errors``, ``_args``, ``_options``, ``_jit``, ``_threads``, ``centroids``,
``imagedata``.
"""

from ..centroids import Centroid, ExtractionResult, centroids_to_array
from .extract import extract, extract_centroids
from .extractor import CentroidExtractor
from .fast import extract_centroids_fast
from .options import ExtractionOptions

__all__ = ["Centroid", "CentroidExtractor", "ExtractionOptions", "ExtractionResult",
           "centroids_to_array", "extract", "extract_centroids", "extract_centroids_fast"]
