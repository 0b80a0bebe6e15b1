"""Every extraction parameter, its default, documentation and check: :class:`ExtractionOptions`."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from .. import _args
from .._options import Options, option
from ..errors import InvalidArgumentError
from .skycircle import check_sky_circle

__all__ = ["ExtractionOptions", "DEBLEND", "BACKENDS"]


def _block(value: Any, name: str) -> int | None:
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    return _args.count(value, name, minimum=4)


def _saturation(value: Any, name: str) -> float | str | None:
    if isinstance(value, str):
        if value != "auto":
            raise InvalidArgumentError(f"{name} must be a number, None or 'auto', got {value!r}")
        return value
    return _args.number(value, name, allow_none=True)


_elongation = partial(_args.number, minimum=1.0, allow_none=True)
#: Values of :attr:`ExtractionOptions.deblend`.
DEBLEND = ("off", "reject")
_deblend = partial(_args.choice, choices=DEBLEND)
#: Values of :attr:`ExtractionOptions.backend` (those of the solver's).
BACKENDS = ("auto", "compiled", "reference")
_backend = partial(_args.choice, choices=BACKENDS)
#: Most worker threads accepted (tetra3rs refuses absurd counts too).
MAX_THREADS = 1024
_threads = partial(_args.count, minimum=1, maximum=MAX_THREADS, allow_none=True)


def _retry_sigma(value: Any, name: str) -> float | None:
    if value is None or (not isinstance(value, bool) and value == 0):
        return None
    return _args.positive(value, name)


def _filter_sigma(value: Any, name: str) -> float | str | None:
    if isinstance(value, str):
        if value != "auto":
            raise InvalidArgumentError(f"{name} must be a number, None or 'auto', got {value!r}")
        return value
    return _args.optional_positive(value, name)


@dataclasses.dataclass(frozen=True, eq=False)
class ExtractionOptions(Options):
    """The parameters of one centroid extraction (see the field documentation)."""

    sigma_threshold: float = option(5.0, type="float", check=_args.positive, doc="""
        Detection threshold in units of the background noise sigma (> 0).""")
    min_pixels: int = option(3, type="int", check=_args.positive_count, doc="""
        Smallest blob size in pixels above threshold (>= 1).""")
    max_pixels: int = option(10000, type="int", check=_args.positive_count, doc="""
        Largest blob size in pixels above threshold (>= ``min_pixels``).""")
    max_centroids: int | None = option(None, type="int, optional", check=_args.optional_count,
                                       doc="""
        Keep only the first N stars of the list (``None``: all): the brightest N, or
        with ``demote_doubtful`` on a frame where some are doubtful, the first N of
        the star-like ones followed by the doubtful ones (a bright doubtful star may
        be cut while fainter star-like ones stay). The kept stars and their positions
        are those of the uncut list: with ``matched_filter_sigma='auto'`` the choice
        between the unfiltered and the filtered detection pass counts the stars of
        the uncut list (so a cut list may need more position fits than its N stars).""")
    local_bg_block_size: int | None = option(64, type="int or None", check=_block, doc="""
        Block size (px, >= 4) of the local background grid; ``None`` or 0 uses one
        global level.""")
    max_elongation: float | None = option(3.0, type="float or None", check=_elongation, doc="""
        Reject blobs whose intensity-weighted shape has an axis ratio
        ``sqrt(lambda_max / lambda_min)`` above this (``None``: no limit). The
        moments include the pixel's own extent (+1/12 px^2 per axis) so that
        two- and three-pixel blobs get finite ratios. Saturated blobs whose bleed
        runs along a column or a row (in a smeared frame: between the smear and the
        grid) are exempt (bleed trails make them long), as are blobs that masked or
        NaN pixels beside them cut.""")
    matched_filter_sigma: float | str | None = option("auto", type="float, 'auto' or None",
                                                      check=_filter_sigma, doc="""
        Gaussian sigma (px) of a matched filter used only to build the
        detection mask (more faint stars at the same false-alarm rate);
        the threshold is scaled to the filtered noise. ``None``: off.
        ``'auto'``: off, unless the frame keeps fewer than 30 stars or its
        stars are wide or rings (defocus, smear: second moments above 4 px^2,
        or brightest pixels off their centres); then it
        is detected again with a filter of the stars' own width (1-4 px). The
        filtered pass wins when it keeps more stars, counting as lost every
        star of the first pass whose blob it merged with another's (a wide
        filter joins neighbouring defocus rings), and, when the first pass
        keeps 30 stars already, 1.5 times as many (a filter scaled to white
        noise raises correlated noise, JPEG's or a blur's, into detections).
        A frame still short of 30 stars whose bright blobs are trails of one
        direction, 8 px or longer, is detected once more with the trail's shape
        as the filter (:mod:`skysolve.extraction.smear`), which wins likewise.""")
    max_sharpness: float | None = option(0.9, type="float or None", check=_args.optional_positive,
                                         doc="""
        Reject blobs whose peak sharpness ``(peak - mean(8 neighbours)) / peak``
        exceeds this (hot pixels and cosmic rays score ~1; a critically sampled
        star ~0.5, an undersampled one, sigma 0.5 px, up to ~0.86, sigma 0.3 px up
        to ~0.97). On a frame whose stars are themselves that sharp (the median
        sharpness of its bright blobs with light in their neighbours above 0.75,
        and their softest tenth above 0.6: stars of sigma below ~0.55 px, however
        many JPEG-smeared hot pixels stand among them), a blob passes when the neighbours on both
        sides of its peak, along both axes, hold light (5 noise sigmas): a PSF's
        wings, where a hot pixel's neighbours hold noise. ``None``: off.""")
    saturation_level: float | str | None = option("auto", type="float, 'auto' or None",
                                                  check=_saturation, doc="""
        Pixel value at or above which the sensor is saturated. ``'auto'``: found
        from a flat top, i.e. at least 3 pixels within ``5 sigma`` of the image
        maximum, itself more than 50 sigma above the background. Saturated
        blobs keep their intensity-weighted centroid, are flagged, and are exempt
        from the elongation, width and blend filters.""")
    deblend: str = option("off", type="{'off', 'reject'}", check=_deblend, doc="""
        What to do with a blob holding two separate significant peaks (a
        blended pair, whose centroid lies between the stars): ``'off'`` keeps
        it as one star, ``'reject'`` drops it. Saturated blobs are always kept.
        (tetra3rs's two values; neither splits a blend into two stars.)""")
    border_margin: int = option(0, type="int", check=_args.count, doc="""
        Drop blobs that come within this many pixels of the image edge. Blobs whose
        saturated pixels reach the edge are dropped whatever this is (the edge cut the flat
        top and bleed their position comes from).""")
    # -- keyword-only: tetra3rs's `threads`, then skysolve's own parameters
    threads: int | None = option(None, type="int, optional", check=_threads, keyword_only=True,
                                 doc=f"""
        Threads for one frame (tetra3rs's parameter; 1 to {MAX_THREADS}). The
        position fits, block medians and candidate pixels of a frame are cut into
        chunks that run in parallel (compiled kernels and numpy release the GIL);
        the result never depends on the count. None: one for a frame under
        1,048,576 pixels (a 1024x768 frame's parallel work is too short to repay
        handing it to other threads); for a larger one every core the process may
        use when called from a process's main thread, one in worker threads and
        in worker processes (``batch``, the service and Dask already keep every
        core busy with a frame each).""")
    reject_cosmic_rays: bool = option(True, type="bool", check=_args.flag, keyword_only=True,
                                      doc="""
        Drop bright (peak > 30 sigma), unsaturated blobs that are narrower than
        any star across some direction: a fitted Gaussian sigma below 0.3 px
        along x or y, or a minor-axis second moment below a quarter of the
        typical bright star's PSF variance (about one-pixel-wide cosmic-ray
        tracks and hot lines, also diagonal ones too short for
        ``max_elongation``).""")
    demote_doubtful: bool = option(True, type="bool", check=_args.flag, keyword_only=True,
                                   doc="""
        On a JPEG (a frame showing JPEG's 8x8 block grid), list the doubtful stars
        after the others (``flags`` ``'doubtful'``), each group brightest first:
        crosses, whose diagonal neighbours hold far less light than a separable
        profile's (a hot pixel or cosmic-ray hit the compression smeared into its
        row and column), and blobs of 8 pixels or more elongated beyond 2 (the
        compression widens a cosmic-ray track below ``max_elongation``). On a
        frame (not a JPEG) with something dark in front of the sky (a
        silhouette; see the foreground test), also the blobs with 3 pixels
        within 6 px of their peak that are dark (7 sigmas below the sky, 3 below
        the background model there): a lit silhouette's specks. On any frame,
        saturated blobs elongated beyond 1.4 at an angle to the pixel grid
        (stars merged into one clipped blob, whose position is none of theirs;
        a star bleeding along a column or a row is not one). On a frame of
        undersampled stars (not a JPEG), the sharp blobs too faint for the light
        beside their peak to show whether they are stars or hot pixels, judged
        by the frame's winged stars (at least 2; a binned frame's faint stars).
        They stay in the list: a solver takes its patterns from the first
        centroids, which then hold the stars. False: brightest first, whatever
        their shape, and those faint sharp blobs dropped as hot pixels.""")
    sky_circle: Any = option("auto", type="'auto', None, float or (float, float, float)",
                             check=check_sky_circle, keyword_only=True, doc="""
        Where a circular fisheye's sky is, in an all-sky frame whose lens draws it as a
        disc (its image circle) inside a dark surround: ``(x, y, radius)`` in centred
        pixels, a radius alone (about the image centre), ``'auto'`` (default: found
        from the frame, when it holds such a disc: three dark corners, a sharp circular
        rim, a dark surround; see :func:`skysolve.extraction.skycircle.find_sky_circle`)
        or None (the whole frame is sky). Detections beyond the circle (captions and
        compass letters in the surround) and in the band inside the rim where its edge
        cuts stars (0.3 % of the radius, at least 2 px) are rejected as ``'border'``.
        The circle used is :attr:`ExtractionResult.sky_circle`.""")
    retry_sigma_threshold: float | None = option(3.0, type="float or None",
                                                 check=_retry_sigma, keyword_only=True, doc="""
        Where an image is read, extracted and solved in one go
        (:func:`skysolve.solve_image`, :func:`skysolve.solve_many`, ``skysolve
        solve``): when the solve fails for want of stars (``'too_few'`` or
        ``'no_match'``) and the extraction kept fewer than 20, the image is extracted
        again at this threshold (sigmas, below ``sigma_threshold``) and the deeper list
        solved, in 1 s at most; its answer is taken when it finds one (see
        :mod:`skysolve.batch.deeper`). ``None`` or 0: never. Not used by
        :func:`extract_centroids` itself.""")
    fit_positions: bool = option(True, type="bool", check=_args.flag, keyword_only=True, doc="""
        Refine positions with the pixel-integrated Gaussian fit (default). If
        False, positions are intensity-weighted centroids over the blob.""")

    backend: str = option("auto", type="{'auto', 'compiled', 'reference'}", check=_backend,
                          keyword_only=True, doc="""
        Implementation of the hot loops (labelling, per-blob sums, the position
        fits, the background's cell sums): numba-compiled kernels, or numpy alone
        (same detections and reasons; positions equal to ~1e-6 px; slower on
        frames with many blobs). ``'auto'`` takes the compiled kernels once they
        are in numba's disk cache (compiled once per installation, in a
        background process started by the first extraction, which uses numpy
        meanwhile), unless numba is missing or ``SKYSOLVE_DISABLE_NUMBA=1``.
        Loading numba costs a process about half a second once: a one-shot
        command that extracts a single small frame is done sooner with
        ``'reference'``.""")

    def _check_together(self) -> None:
        if self.max_pixels < self.min_pixels:
            raise InvalidArgumentError(
                f"max_pixels ({self.max_pixels}) must be >= min_pixels ({self.min_pixels})")
