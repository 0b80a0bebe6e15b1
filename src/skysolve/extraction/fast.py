"""The quick extraction: :func:`extract_centroids_fast`, tetra3rs's "fast" signature.

tetra3rs 0.14 has a second extraction function with its own argument order and
defaults, a coarse background grid and no sub-pixel fit ("adequate for a star
tracker", about 0.1 px). skysolve gives it the same signature and maps it onto
the one extractor (:func:`skysolve.extraction.extract.extract`) with the
expensive steps switched off:

* ``bg_grid`` is :attr:`~ExtractionOptions.local_bg_block_size`;
* no matched filter (``matched_filter_sigma=None``);
* positions are intensity-weighted centroids over the blob
  (``fit_positions=False``), so the width test against cosmic rays, which
  needs the fit, is off as well; ``max_sharpness`` still drops hot pixels;
* no blended-pair rejection (``deblend='off'``).

It skips the most expensive per-star step, at the precision of an intensity
centroid over the pixels above threshold (a few hundredths of a pixel on
well-sampled stars). Where the fits dominate, on a star-tracker frame, that
makes it several times faster than :func:`extract_centroids`; on a crowded
frame the background, labelling and blob moments it shares with it dominate
and the gain is smaller (``benchmarks/bench_extraction.py`` compares it with
tetra3rs's fast path).
"""

from __future__ import annotations

from numpy.typing import ArrayLike

from ..centroids import ExtractionResult
from .extract import extract
from .options import ExtractionOptions

__all__ = ["extract_centroids_fast"]


def extract_centroids_fast(image: ArrayLike, sigma_threshold: float = 5.0, bg_grid: int = 64,
                           min_pixels: int = 2, max_centroids: int | None = None,
                           max_sharpness: float | None = 0.9,
                           saturation_level: float | str | None = None, max_pixels: int = 10000,
                           max_elongation: float | None = None, border_margin: int = 0, *,
                           threads: int | None = None) -> ExtractionResult:
    """Detect stars quickly: intensity-weighted centroids, no fits, no matched filter.

    The signature (argument order and defaults) is tetra3rs's
    ``extract_centroids_fast``; note that ``bg_grid`` comes third and
    ``max_pixels`` after ``saturation_level``, and that ``min_pixels`` (2) and
    ``max_elongation`` (off) default differently from :func:`extract_centroids`.

    Parameters
    ----------
    image : array_like, shape (H, W)
        As for :func:`extract_centroids`.
    sigma_threshold : float
        Detection threshold in background noise sigmas (> 0).
    bg_grid : int
        Block size (px, >= 4) of the background grid; None or 0: one global level.
    min_pixels : int
        Smallest blob size in pixels above threshold (>= 1).
    max_centroids : int, optional
        Keep only the brightest N stars.
    max_sharpness : float or None
        Reject blobs whose ``(peak - mean(8 neighbours)) / peak`` exceeds this
        (hot pixels); None: off.
    saturation_level : float, 'auto' or None
        Pixel value at or above which a blob counts as saturated (see
        :class:`ExtractionOptions`); None: no saturation handling.
    max_pixels : int
        Largest blob size in pixels (>= ``min_pixels``): satellite trails and
        glow are not handed to the solver.
    max_elongation : float or None
        Reject blobs more elongated than this (None: off; 3 to 5 suits
        ``min_pixels >= 5``).
    border_margin : int
        Drop blobs within this many pixels of the image edge.
    threads : int, optional
        As for :func:`extract_centroids`: threads for one frame (never changing the result).

    Returns
    -------
    ExtractionResult
        Centroids brightest first; ``fitted`` is False for every star.

    Raises
    ------
    InvalidTypeError, InvalidArgumentError
        As for :func:`extract_centroids` (the messages name these arguments).
    """
    options = ExtractionOptions(
        sigma_threshold=sigma_threshold, min_pixels=min_pixels, max_pixels=max_pixels,
        max_centroids=max_centroids,
        local_bg_block_size=ExtractionOptions.check_value("local_bg_block_size", bg_grid,
                                                          "bg_grid"),
        max_elongation=max_elongation, matched_filter_sigma=None, max_sharpness=max_sharpness,
        saturation_level=saturation_level, deblend="off", border_margin=border_margin,
        threads=threads, reject_cosmic_rays=False, fit_positions=False)
    return extract(image, options)
