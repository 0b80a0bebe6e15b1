"""Which detections are stars: the shape, size and PSF-consistency tests of the extractor.

Every test works on the per-blob measurements of :mod:`.blobs` (index 0 of every
per-label array is the unused background label) and writes a *reason code* per
blob: 0 for a blob still kept, else ``1 + REJECT_REASONS.index(reason)`` of the
first test it failed (:data:`skysolve.centroids.REJECT_REASONS`, in the order
the tests run).

Most tests compare a blob with the frame's own stars rather than with fixed
numbers, because hard frames change what a star looks like (defocus, smear,
JPEG blur) while the false detections stay what they are:

* burned-in captions (**overlay**, :mod:`.overlay`) are found among the blobs that
  passed the size, border and sharpness tests, before anything else is measured;
* the **PSF reference** (:func:`psf_reference`) is measured on bright,
  unsaturated blobs (fainter ones when too few are bright) that passed the size,
  border and sharpness tests: their median second moments (the shape), the
  median of ``npix / ln(peak / threshold)`` over the brightest of them (the
  area a star of a given peak covers above threshold: for a Gaussian of sigma
  ``s``, ``2 pi s^2``); when their median shape is round but many of them are drawn
  out alike, spread over the frame (a smear, common to every star, among compact
  impulses such as JPEG-compressed hot pixels: :func:`_smeared_population`), or when
  they are compact while a population of wide, alike rings or flat discs stands among
  them (defocused stars among such impulses: :func:`_ring_population`), both come
  from those instead;
* **elongation** is measured after the reference shape is divided out when
  the frame's stars are all drawn out the same way (smear), so a smeared
  star counts as round and a trail still as long;
* **diffuse** blobs cover far more pixels than a star of their peak
  (background structure left by clouds, glare and lit foreground);
* **trails** are lines through elongated pieces: every blob near a line that
  several aligned elongated pieces (or one long one) define is dropped;
* **foreground** blobs have at least :data:`_DARK_PIXELS` pixels more than
  :data:`~.background.DARK_SIGMAS` noise sigmas below the sky within
  :data:`_DARK_REACH` pixels of their peak: the lit rim of a tree, roof or wall
  in front of the sky (a lamp lights its edges into hundreds of star-like
  specks, brighter than most stars), where a star on open sky has sky all round
  (one dark pixel, a dead one, does not count). Only frames whose background
  sample holds such pixels at all (:attr:`.Background.dark_fraction`) run it;
* **narrow** blobs have fitted widths below the stars' (cosmic rays, and hot
  pixels that JPEG smeared into small blobs); on a frame of rings, whose centroids are
  not fitted, bright blobs narrower across than the rings (:func:`narrower_than_rings`).

Saturated blobs are exempt from the diffuse test (flat tops make them wide) and,
when their long axis runs along a column or a row (within :data:`_BLEED_ANGLE_DEG`:
charge bleeds along the readout direction), from the elongation test; a
saturated cosmic-ray track or trail crosses the pixel grid at any angle (on an
8-bit frame most of them clip at 255). In a smeared frame a saturated star's long
axis lies between the smear and its column (:func:`_bled_smear`), and on a frame
whose stars are all saturated (no reference) nothing says what a star looks like,
so they stay exempt there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from ..centroids import REJECT_REASONS
from .kernels import compiled
from .orderstats import largest_first, median, percentiles

__all__ = ["PSFReference", "code", "psf_reference", "basic_reasons", "shape_reasons",
           "foreground_blobs", "NEAR_DARK_REACH", "narrow_blobs", "width_verdicts",
           "across_rings", "narrower_than_rings", "near_unusable",
           "undersampled", "wing_verdicts", "doubtful_blobs"]

#: Blobs need this peak (local noise sigmas) to enter the PSF reference, which holds
#: the brightest _REF_MAX of them ...
_REF_SNR = 6.0
#: ... or, when fewer than _PSF_MIN reach it, this one: a defocused star spreads its
#: light over a ring of a hundred pixels and peaks a few sigmas above the sky, and a
#: frame of such stars still needs its reference (rings keep their centroids unfitted).
_REF_SNR_FAINT = 4.0
_REF_MAX = 40
#: ... and at least this many pixels.
_REF_NPIX = 5
#: The PSF reference needs this many blobs (with fewer, generous defaults apply), and
#: the width tests this many fitted stars.
_PSF_MIN = 3
#: A blob whose second moment across the rows (or the columns) is at most this (px^2)
#: lies within one row (column): 1 % of its light in a second row already gives 0.0099.
_LINE_MOMENT = 0.005
_REF_MIN = 5
#: Elongation of the reference shape above which the frame counts as smeared ...
_SMEAR_ELONGATION = 1.4
#: ... and its stars as trails that a Gaussian cannot fit: a trail of length L over a
#: PSF of sigma s has the axis ratio sqrt(1 + L^2 / (12 s^2)), 2.5 at L ~ 8 s. The fit of
#: an axis-aligned Gaussian in a window of at most 13 px locks onto the brightest noise
#: along such a trail, while the intensity centroid stays on its middle. On a Gaia field
#: (sigma 0.9-1.2 px, 0-45 deg): at axis ratios 2.5-3.2 (L = 8-10 px) the fits' median
#: errors are 0.11-0.54 px and the centroids' 0.02 px, with as many stars within 1 px;
#: at 15 px the fits keep only 40 % of them within 1 px; at ratios up to 2.1 the two
#: agree within a few hundredths of a pixel and the fit keeps as many stars or more.
_TRAIL_ELONGATION = 2.5
#: Mean resultant length of the reference blobs' orientations (coherent smear).
_SMEAR_COHERENCE = 0.7
#: A smeared population among the reference candidates (:func:`_smeared_population`),
#: sought among the brightest this many: elongated blobs whose orientations agree within
#: this angle (radians) and major axes within this factor, whose places deviate across
#: their axis at least this fraction of their deviation along it (median deviations).
_SMEAR_POOL = 200
_SMEAR_ANGLE = np.radians(15.0)
_SMEAR_LENGTH = 1.5
_SMEAR_SPREAD = 0.3
#: A blob is diffuse beyond this many times the reference area for its peak ...
_DIFFUSE_FACTOR = 8.0
#: ... plus this many pixels.
_DIFFUSE_SLACK = 12.0
#: The reference area is the median over this many of the brightest reference blobs.
_AREA_BLOBS = 10
#: The reference area when the frame has too few bright stars (2 pi 3^2 px: lenient,
#: the test then only catches structure far bigger than any star).
_DEFAULT_AREA = 2.0 * np.pi * 3.0**2
#: Stars whose mean second moment (px^2, pixel extent included) exceeds this are wide
#: (defocus, smear, soft focus) ...
_WIDE_PSF = 4.0
#: ... and stars whose brightest pixel lies this far (px, median) from their intensity
#: centroid are rings (defocused, with a central obstruction).
_RING_OFFSET_PX = 1.0
#: ... measured on the reference blobs this round (axis ratio).
_RING_ROUNDNESS = 1.5
#: A population of rings (:func:`_ring_population`) has widths (mean second moments)
#: within this factor of their median ...
_RING_ALIKE = 1.5
#: ... and holds at least this share of the round wide blobs (defocus rings: 0.6-1 of
#: them; a bright nebula's knots beside stars too narrow for :data:`_FOCUSED_MOMENT`:
#: 0.2-0.48; see :func:`_ring_population`).
_RING_ALIKE_SHARE = 0.55
#: ... unless more than this fraction of the compact blobs among them holds at least
#: ``_RING_LIGHT`` of the rings' median light (see :func:`_ring_population`).
_LIT_COMPACT = 0.25
_RING_LIGHT = 0.5
#: ... or unless the lower quartile of the round compact blobs' mean second moments
#: (px^2, pixel extent included) reaches this: wider than any impulse (a hot pixel
#: 0.1-0.2, JPEG-smeared 0.4-0.7, a star of sigma 0.5 px 0.33), they are focused stars
#: of sigma 1 px or more (see :func:`_ring_population`).
_FOCUSED_MOMENT = 1.0
#: Trail pieces: elongation and pixels of a blob that may define a line.
_PIECE_ELONGATION = 2.5
_PIECE_NPIX = 6
#: At most this many pieces (the biggest) are compared pairwise.
_MAX_PIECES = 400
#: A single piece this long (px, major axis) defines a line by itself.
_LONG_PIECE_PX = 25.0
#: Pieces of one line agree in direction within this angle (radians), lie within
#: this many px (plus a PSF sigma) of each other's axes and this far apart along it.
_PIECE_ANGLE = np.radians(6.0)
_PIECE_OFFSET_PX = 2.0
_PIECE_GAP_PX = 150.0
#: Blobs within this many px (plus two PSF sigmas) of a line are on the trail.
_LINE_TOLERANCE_PX = 4.0
#: A line's band reaches beyond its pieces (up to ``_PIECE_GAP_PX``) as far as holds
#: this many kept blobs by chance at the frame's density of them (see :func:`_trails`).
_REACH_CHANCE_BLOBS = 1.0
#: Dotted lines: pairs among the brightest _DOT_PAIRS kept blobs define lines; a line
#: stands with _DOT_MIN (or, in crowded frames, five Poisson sigmas more than chance
#: puts there) of the _DOT_POOL brightest within _DOT_OFFSET_PX (+ a PSF sigma).
_DOT_PAIRS = 24
_DOT_POOL = 100
_DOT_MIN = 7
_DOT_OFFSET_PX = 1.5
_DOT_FLUX_LOG = np.log(1.25)
#: ... or with _DOT_REGULAR_MIN when they are evenly spaced: a strobe flashes at a fixed
#: period and the aircraft flies straight, so its flashes lie one step apart (at most
#: _DOT_MAX_SKIP flashes lost to cloud or noise in between), within _DOT_STEP_PX plus
#: _DOT_STEP_FRACTION of the gap, the step at least _DOT_MIN_STEP_PX.
_DOT_REGULAR_MIN = 5
_DOT_MAX_SKIP = 1
_DOT_STEP_PX = 1.5
_DOT_STEP_FRACTION = 0.03
_DOT_MIN_STEP_PX = 8.0
#: ... and of the same flux within this factor (log; a strobe's flashes differ by their
#: noise, stars in a row by the luminosity function).
_DOT_REGULAR_FLUX_LOG = np.log(1.1)
#: Such a line is a lattice's row when two parallel lines hold this many alike dots.
_DOT_LATTICE_MIN = 3
#: Narrowest plausible fitted PSF sigma (px) and the fraction of the stars' width
#: below which a bright blob is narrow (when the stars are at least _WELL_SAMPLED wide).
_MIN_PSF_SIGMA = 0.3
_NARROW_FRACTION = 0.5
_WELL_SAMPLED = 0.7
#: Fainter blobs (peak in noise sigmas) are tested on their rough width and sharpness
#: down to this; the rough width must reach this fraction of the stars'.
_NARROW_SNR = 10.0
_ROUGH_FRACTION = 0.6
#: ... and be at most this many px: the 3x3 rough width of a faint star wider than ~1.5
#: px is mostly noise, its brightest pixel the noisiest of several near-equal ones, so
#: that its neighbours look low and it comes out short (sigma 3 px, peaks of 10-30
#: sigmas: median 1.5 px, 2 % below 1.1 px), while hot pixels and cosmic-ray hits, JPEG
#: smeared or not, stay below 0.7 px whatever the optics. (Before: 6-24 % of the stars
#: of sigma 2-4 px rejected as narrow.)
_ROUGH_MAX_PX = 1.0
#: A blob's neighbours hold a PSF's wings when their mean lies this many noise sigmas
#: (of that mean) above the background ...
_WING_SNR = 5.0
#: ... and a sharp blob without wings on a frame of undersampled stars is a hot pixel
#: when a star as bright would have shown wings this many noise sigmas above that
#: limit (:func:`wing_verdicts`; fainter ones are doubtful stars), judged by at least
#: _TOLD_MIN sharp stars with wings.
_TOLD_SIGMAS = 3.0
_TOLD_MIN = 2
#: ... and a frame's stars are undersampled when the median sharpness of its bright
#: blobs with wings exceeds this (Gaussian stars at random sub-pixel phases: sigma 0.5
#: px, 0.80; 0.6 px, 0.72; 1 px, 0.46).
_UNDERSAMPLED_SHARPNESS = 0.75
#: ... and the softest tenth of them above this (sigma 0.5 px: 0.72; 0.8 px: below 0.62).
_SOFT_SHARPNESS = 0.6
#: ... where the narrowest plausible fitted sigma of a blob with wings on both axes is
#: this fraction of theirs (fits of stars of sigma 0.3 px reach 0.2 px; cosmic-ray hits
#: of a few pixels fit at 0.2-0.24 px beside stars of 0.4 px).
_WINGED_FRACTION = 0.65


def code(reason: str) -> int:
    """The reason code of a rejection reason."""
    return 1 + REJECT_REASONS.index(reason)


@dataclass
class PSFReference:
    """What the frame's stars look like (see the module docstring).

    ``cov`` is ``(cxx, cyy, cxy)`` with the pixel extent (1/12 px^2) included;
    ``whiten`` the 2x2 matrix that makes it round with determinant 1 (None
    when the frame is not smeared); ``area`` the reference
    ``npix / ln(peak / threshold)``; ``count`` the number of reference blobs;
    ``offset`` the median distance (px) of their brightest pixel from their
    intensity centroid; ``undersampled`` whether the stars are as sharp as hot pixels
    (:func:`undersampled`).
    """

    cov: tuple[float, float, float]
    whiten: NDArray[np.float64] | None
    area: float
    count: int
    offset: float = float("nan")
    undersampled: bool = False

    @property
    def measured(self) -> bool:
        """Whether the frame's blobs gave the reference (enough of them: else defaults)."""
        return self.count >= _PSF_MIN

    @property
    def minor(self) -> float:
        """The reference's minor-axis second moment (px^2, pixel extent included)."""
        return float(_axes(*(np.array([v]) for v in self.cov))[1][0])

    @property
    def ring(self) -> bool:
        """Whether the stars are rings (their peaks lie off their centres)."""
        return bool(np.isfinite(self.offset) and self.offset > _RING_OFFSET_PX)

    @property
    def trailed(self) -> bool:
        """Whether the stars are trails (a coherent smear beyond ``_TRAIL_ELONGATION``)."""
        return bool(self.whiten is not None
                    and _elongation(*(np.array([v]) for v in self.cov))[0] > _TRAIL_ELONGATION)

    @property
    def width2(self) -> float:
        """Mean second moment of the stars (px^2; NaN when unknown)."""
        return 0.5 * (self.cov[0] + self.cov[1])

    @property
    def defocused(self) -> bool:
        """Whether the stars are rings wider than a focused star (above ``_WIDE_PSF``)."""
        return self.ring and bool(np.isfinite(self.width2) and self.width2 > _WIDE_PSF)

    @property
    def wide(self) -> bool:
        """Whether the stars are wide (above ``_WIDE_PSF``) or rings."""
        return bool(np.isfinite(self.width2) and self.width2 > _WIDE_PSF) or self.ring


def _axes(a: NDArray, c: NDArray, b: NDArray) -> tuple[NDArray, NDArray]:
    """Eigenvalues (largest, smallest) of the 2x2 symmetric matrices ``[[a, b], [b, c]]``."""
    half = 0.5 * (a + c)
    disc = np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
    return half + disc, np.maximum(half - disc, 1e-12)


def _moments(m: dict[str, NDArray]) -> tuple[NDArray, NDArray, NDArray]:
    """Second moments with the pixel's own extent (1/12 px^2), which regularises
    one-pixel-wide blobs."""
    return m["cxx"] + 1.0 / 12.0, m["cyy"] + 1.0 / 12.0, m["cxy"]


def _shape_moments(m: dict[str, NDArray]) -> tuple[NDArray, NDArray, NDArray]:
    """The second moments (:func:`_moments`) the reference shape and the elongation test
    read: in a frame of trails that turn across it, each blob's turned into its local
    trail's frame (``m["aligned"]``, :func:`.smear.aligned_moments`)."""
    if "aligned" not in m:
        return _moments(m)
    a, c, b = m["aligned"]
    return a + 1.0 / 12.0, c + 1.0 / 12.0, b


def _elongation(a: NDArray, c: NDArray, b: NDArray) -> NDArray:
    lmax, lmin = _axes(a, c, b)
    return np.sqrt(lmax / lmin)


def _log_ratio(m: dict[str, NDArray], thr: NDArray | float) -> NDArray:
    """``ln(peak / threshold)``, at least ln 1.5 (blobs at the threshold)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.maximum(m["peak"] / thr, 1.5))


def basic_reasons(m: dict[str, NDArray], h: int, w: int, *, min_pixels: int, max_pixels: int,
                  max_sharpness: float | None, border_margin: int,
                  spill: Callable[[NDArray[np.intp]], tuple[NDArray, NDArray]] | None = None,
                  edge: NDArray[np.bool_] | None = None,
                  keep_untold: bool = True) -> NDArray[np.uint8]:
    """Reason codes of the size, border and sharpness tests (0: passed).

    ``edge`` says which blobs hold a saturated pixel in the image's outer rows or columns:
    they are a ``border`` whatever ``border_margin`` (their position is that of the flat
    top and bleed the edge cut: 1.6 px off for a star whose bleed runs off the frame).

    ``spill(ids)`` gives the light beside the peaks of the blobs ``ids``, ``(across,
    along)`` (:func:`.blobs.axis_light`; asked only for those above ``max_sharpness``, on
    a frame of undersampled stars, :func:`undersampled`): those it shows to be stars or,
    with ``keep_untold``, cannot tell from hot pixels (:func:`wing_verdicts`) pass the
    sharpness test, the latter marked in ``m["untold"]`` (doubtful stars).
    """
    n = len(m["npix"])
    reason = np.zeros(n, dtype=np.uint8)
    reason[0] = 255  # the background label

    def mark(bad: NDArray, name: str) -> None:
        reason[(reason == 0) & bad] = code(name)

    mark((m["npix"] < min_pixels) | (m["sumw"] <= 0), "small")
    mark(m["npix"] > max_pixels, "large")
    if border_margin > 0:
        mark((m["rmin"] < border_margin) | (m["cmin"] < border_margin)
             | (m["rmax"] > h - 1 - border_margin) | (m["cmax"] > w - 1 - border_margin),
             "border")
    if edge is not None:
        mark(edge, "border")
    m.pop("untold", None)
    if max_sharpness is not None:
        sharp = m["sharpness"] > max_sharpness
        # on a frame of undersampled stars, a sharp blob whose light spills both ways is
        # a star (the width test still judges it); a hot pixel's neighbours hold noise,
        # a cosmic-ray track's light lies along one line
        if spill is not None and sharp.any() and undersampled(m, reason == 0):
            # (only blobs no other test dropped: the background label, a blob too small
            # or cut by the border would count as a winged star and move the quartile)
            ids = np.flatnonzero(sharp & (reason == 0))
            winged, untold = wing_verdicts(m, ids, *spill(ids), keep_untold)
            sharp[ids[winged | untold]] = False
            if untold.any():
                m["untold"] = np.zeros(n, dtype=bool)
                m["untold"][ids[untold]] = True
        mark(sharp, "sharp")
    return reason


def wing_verdicts(m: dict[str, NDArray], ids: NDArray[np.intp], across: NDArray,
                  along: NDArray, tell: bool = True
                  ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """``(winged, untold)``: which of the sharp blobs ``ids`` of a frame of undersampled
    stars hold light beside their peak along both axes (``across``, ``along``: the sums
    of the two neighbours each way above the background, each ``_WING_SNR`` noise
    sigmas of that sum), and which of the others are too faint for their wings to show
    (none unless ``tell``).

    An undersampled star's wings hold a fraction of its peak that depends on where it
    falls on its pixel: the frame's winged sharp blobs give its lower quartile ``k``
    (of the lesser of the two sums). A blob without wings whose ``k * peak`` lies
    ``_TOLD_SIGMAS`` noise sigmas (of the sum) above the detection limit would have
    shown them: a hot pixel. A fainter one cannot be told from one (4x binned real
    frames: k = 0.05-0.2, so that stars of 20-100 sigmas spill 1-20 sigmas): it is
    kept, as a doubtful star (listed after the others), rather than dropped; on such
    frames, the sharpness test dropped two of every three stars. Fewer than
    ``_TOLD_MIN`` winged blobs show no sharp stars to judge by (specks along a lit
    edge are sharp too): none is kept.
    """
    noise = np.sqrt(2.0) * m["sigma"][ids]
    winged = (across >= _WING_SNR * noise) & (along >= _WING_SNR * noise)
    untold = np.zeros(len(ids), dtype=bool)
    if tell and winged.sum() >= _TOLD_MIN:
        peak = m["peak"][ids]
        with np.errstate(divide="ignore", invalid="ignore"):
            k = percentiles(np.minimum(across, along)[winged] / peak[winged], (0.25,))[0]
        untold = ~winged & (peak > 0) & (k * peak < (_WING_SNR + _TOLD_SIGMAS) * noise)
    return winged, untold


def _wings(m: dict[str, NDArray]) -> NDArray[np.bool_]:
    """Which blobs hold light around their peak: the mean of the 8 neighbours lies
    ``_WING_SNR`` noise sigmas (of that mean) above the background."""
    with np.errstate(invalid="ignore"):
        return m["peak"] * (1.0 - m["sharpness"]) * np.sqrt(8.0) >= _WING_SNR * m["sigma"]


def undersampled(m: dict[str, NDArray], candidates: NDArray[np.bool_]) -> bool:
    """Whether the frame's stars are undersampled: the median sharpness of its bright
    (``_NARROW_SNR``), unsaturated ``candidates`` with wings (:func:`_wings`) exceeds
    ``_UNDERSAMPLED_SHARPNESS`` and fewer than one in ten of them is softer than
    ``_SOFT_SHARPNESS`` (well-sampled stars, sigma 0.8 px: at most 0.62).

    A Gaussian star of sigma 0.3 px centred on a pixel is as sharp (0.97) as a hot
    pixel, but its light spills into its neighbours, while a hot pixel's neighbours
    hold noise. Hot pixels smeared into their neighbours (JPEG) have wings too, and
    may outnumber the stars; the stars' softness still shows in the softest tenth.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        bright = (candidates & _wings(m) & ~m["saturated"]
                  & (m["peak"] >= _NARROW_SNR * m["sigma"]))
    sharp = m["sharpness"][bright]
    n = len(sharp)
    if n < _REF_MIN:
        return False
    # (order statistics by partition: np.median and np.percentile cost ~20-50 us a call)
    sharp = np.partition(sharp, ((n - 1) // 10, (n - 1) // 2))
    # ... and hardly any of them is as soft as a well-sampled star: hot pixels smeared by
    # JPEG may outnumber a frame's stars, but its stars stay soft
    return bool(sharp[(n - 1) // 2] > _UNDERSAMPLED_SHARPNESS
                and sharp[(n - 1) // 10] > _SOFT_SHARPNESS)


def _reference_candidates(m: dict[str, NDArray], reason: NDArray) -> NDArray[np.bool_]:
    """The blobs a reference may come from: kept, unsaturated, of ``_REF_NPIX`` pixels or
    more, and not within one row or one column (:func:`psf_reference`)."""
    return ((reason == 0) & ~m["saturated"] & (m["npix"] >= _REF_NPIX)
            & (m["cxx"] > _LINE_MOMENT) & (m["cyy"] > _LINE_MOMENT))


def psf_reference(m: dict[str, NDArray], reason: NDArray, thr: NDArray | float,
                  under: bool = False, min_area: float = 0.0) -> PSFReference:
    """The frame's PSF from the bright, unsaturated blobs still kept; ``under``: whether
    the stars are undersampled (:func:`undersampled`); ``min_area``: the smallest area
    a reference of rings may have (a matched-filter pass's: the unfiltered pass's
    reference area, see below).

    A matched filter widens every blob, so that a ring's area in a filtered pass is at
    least what it was unfiltered; but it widens a compact impulse into a round blob as
    wide as a defocused star, and where JPEG-smeared hot pixels outshine the rings in
    peak they became the filtered pass's brightest reference blobs, their area a
    tenth of a ring's: the rings were dropped as diffuse (bench_hard's
    defocus+hot_pixels+jpeg at strong, Gaia fields: the 16 brightest stars of a frame;
    4 of 20 frames failed where tetra3rs solved all). Not a reference of compact blobs:
    held to the area of three rings the unfiltered pass saw, one of the filtered
    impulses and their clusters kept 33 of them, and none of the stars.

    Its shape and area are the medians of the brightest of them, unless those are round
    while a smeared population (:func:`_smeared_population`) stands among the fainter or
    more numerous compact ones, or compact while a population of rings
    (:func:`_ring_population`) does: then they are that population's."""
    snr = m["peak"] / m["sigma"]
    # (blobs within one row or one column are no star's image, however sharp or smeared:
    # the pieces of a row or column pattern the background could not follow, or of a
    # bad row, which else made a banded frame's reference a smear along the rows)
    usable = _reference_candidates(m, reason)
    ref = np.flatnonzero(usable & (snr >= _REF_SNR))
    if len(ref) < _PSF_MIN:
        ref = np.flatnonzero(usable & (snr >= _REF_SNR_FAINT))
    if len(ref) < _PSF_MIN:
        return PSFReference((np.nan, np.nan, np.nan), None, _DEFAULT_AREA, len(ref),
                            undersampled=under)
    ref = ref[largest_first(snr[ref], max(_SMEAR_POOL, _REF_MAX))]  # the brightest first
    pool, ref = ref[:_SMEAR_POOL], ref[:_REF_MAX]
    a, c, b = (v[ref] for v in _shape_moments(m))
    # rings are round: elongated blobs (cosmic-ray tracks, trails) peak off-centre too
    round_ = _elongation(a, c, b) <= _RING_ROUNDNESS
    offset = median(np.hypot(m["cx"][ref] - m["pc"][ref], m["cy"][ref] - m["pr"][ref])[
        round_][:_AREA_BLOBS]) if round_.sum() >= _PSF_MIN else float("nan")
    if not _smeared(a, c, b):
        smeared = _smeared_population(m, pool)
        if smeared is not None:
            ref = smeared[:_REF_MAX]
            a, c, b = (v[ref] for v in _shape_moments(m))
    if 0.5 * (median(a) + median(c)) <= _WIDE_PSF and not offset > _RING_OFFSET_PX:
        rings = _ring_population(m, pool)
        if rings is not None:
            ref = rings[:_REF_MAX]
            a, c, b = (v[ref] for v in _shape_moments(m))
            offset = median(np.hypot(m["cx"][ref] - m["pc"][ref],
                                     m["cy"][ref] - m["pr"][ref])[:_AREA_BLOBS])
    cov = (median(a), median(c), median(b))
    thr_ref = thr[ref] if np.ndim(thr) else thr
    per_blob = m["npix"][ref] / _log_ratio({"peak": m["peak"][ref]}, thr_ref)
    # the brightest: faint defocused rings show only fragments above threshold
    area = median(per_blob[:_AREA_BLOBS])
    if offset > _RING_OFFSET_PX:  # (rings: see min_area)
        area = max(area, min_area)
    whiten = None
    if _smeared(a, c, b):
        vals, vecs = np.linalg.eigh(np.array([[cov[0], cov[2]], [cov[2], cov[1]]]))
        vals = np.maximum(vals, 1e-12)
        whiten = vecs @ np.diag(np.sqrt(np.sqrt(vals.prod()) / vals)) @ vecs.T
    return PSFReference(cov, whiten, area, len(ref), offset, under)


def _smeared(a: NDArray, c: NDArray, b: NDArray) -> bool:
    """Whether the median shape of blobs of moments ``a, c, b`` is a coherent smear
    (:data:`_SMEAR_ELONGATION`, :data:`_SMEAR_COHERENCE`): what :func:`psf_reference`
    whitens."""
    cov = (median(a), median(c), median(b))
    if _elongation(*(np.array([v]) for v in cov))[0] <= _SMEAR_ELONGATION:
        return False
    angle2 = np.arctan2(2.0 * b, a - c)  # twice each blob's major-axis angle
    return bool(np.hypot(np.mean(np.cos(angle2)), np.mean(np.sin(angle2))) > _SMEAR_COHERENCE)


def _deviation(v: NDArray) -> float:
    """The median absolute deviation of a sample."""
    return median(np.abs(v - median(v)))


def _smeared_population(m: dict[str, NDArray], pool: NDArray[np.intp]) -> NDArray | None:
    """The blobs of ``pool`` (reference candidates, brightest first) that share one
    smear, or None: at least :data:`_REF_MIN` elongated blobs (beyond
    :data:`_SMEAR_ELONGATION`) of the same orientation (within :data:`_SMEAR_ANGLE`) and
    length (major axes within :data:`_SMEAR_LENGTH`), most of the pool's blobs as
    extended as they are (major axis at least half theirs), and spread over the frame
    (the median deviation of their places across their axis at least
    :data:`_SMEAR_SPREAD` of that along it).

    Smear draws every star of a frame out the same way, so their common shape is the
    PSF however many sharper detections outshine them: JPEG spreads a hot pixel into a
    round blob of 5-7 pixels, and 300 of them (``hot_pixels`` at strength 1) hold most
    of the brightest blobs of a frame whose stars are smeared over 8 px. The median shape
    of those is round, and every smeared star then elongated (rejected, or doubtful on a
    JPEG and listed after the hot pixels). The impulses are far more compact than the
    smeared stars, so they do not count against them; cosmic-ray tracks lie every way
    and differ in length; the pieces of a satellite or aircraft trail, alike in angle,
    lie along one line or a few (the real frames under bench_hard's combined mixture:
    13 pieces of an aircraft's trail and 19 dots of a strobe's, their median deviation
    across it 0.02 of that along it; 10 specks along the lit edges of a roof, 0.23;
    smeared stars among hot pixels, 0.4-3.4).
    """
    a, c, b = (v[pool] for v in _shape_moments(m))
    lmax, lmin = _axes(a, c, b)
    long_ = np.flatnonzero(lmax > _SMEAR_ELONGATION**2 * lmin)
    if len(long_) < _REF_MIN:
        return None
    angle2 = np.arctan2(2.0 * b[long_], a[long_] - c[long_])
    log_len = np.log(lmax[long_])
    alike = ((np.cos(angle2[:, None] - angle2[None, :]) > np.cos(2.0 * _SMEAR_ANGLE))
             & (np.abs(log_len[:, None] - log_len[None, :]) <= 2.0 * np.log(_SMEAR_LENGTH)))
    # each long blob's alike ones, and the pool's blobs at least half as long as it
    count = alike.sum(axis=1)
    extended = (lmax[None, :] >= 0.25 * lmax[long_, None]).sum(axis=1)
    # (JPEG draws some impulses out along a row or a column, alike too: but as long as
    # those are most of the pool)
    seeds = np.flatnonzero((count >= _REF_MIN) & (2 * count > extended))
    for best in seeds[np.argsort(-count[seeds], kind="stable")]:
        # spread over the frame, not along a line (or a band of lines) on their axis
        group = alike[best]
        ids = pool[long_[group]]
        # (their mean axis: the seed's own may lie up to _SMEAR_ANGLE off a trail)
        half = 0.5 * np.arctan2(np.sin(angle2[group]).sum(), np.cos(angle2[group]).sum())
        x, y = m["cx"][ids], m["cy"][ids]
        across = x * np.sin(half) - y * np.cos(half)
        along = x * np.cos(half) + y * np.sin(half)
        # (median deviations: a star or two beside a trail's dots count for little)
        if _deviation(across) >= _SMEAR_SPREAD * _deviation(along):
            return ids
    return None


#: A frame whose reference blobs are compact may still hide defocused stars behind
#: impulses that outshine them in peak: this many round blobs wider than
#: :data:`_WIDE_PSF`, peaking off their centres, each holding this many times the compact
#: blobs' median light (:func:`lit_rings`) ...
_LIT_RINGS = 2
_LIT_RINGS_LIGHT = 5.0


def lit_rings(m: dict[str, NDArray], reason: NDArray) -> float | None:
    """The mean second moment (px^2) of the defocused stars a compact reference hides
    (:data:`_LIT_RINGS`), or None.

    Strongly defocused stars show whole rings above the threshold only when bright:
    on a 10-13 deg Gaia field under ``defocus``, ``hot_pixels`` and ``jpeg`` at strong,
    2-3 whole rings stood among 57-69 compressed hot pixels (which held a tenth of a
    ring's light or less, their peaks higher), too few for a population of rings
    (:func:`_ring_population`): the reference was the impulses', the frame kept them as
    its stars and was not filtered, and it failed to solve where tetra3rs solved it (4 of
    40). Such rings ask for the pass a filter as wide as them gives (its fainter rings'
    arcs joined into whole rings), which :func:`.extract._prefer_filtered` weighs on its
    whole rings. ``reason``: the blobs' reason codes before the shape tests."""
    snr = m["peak"] / m["sigma"]
    ids = np.flatnonzero(_reference_candidates(m, reason) & (snr >= _REF_SNR_FAINT))
    if len(ids) > _SMEAR_POOL:  # (the pool the reference's populations come from)
        ids = ids[np.argpartition(-snr[ids], _SMEAR_POOL)[:_SMEAR_POOL]]
    a, c, b = (v[ids] for v in _moments(m))
    w2 = 0.5 * (a + c)
    compact = w2 <= _WIDE_PSF
    if compact.sum() < _PSF_MIN:
        return None
    flux = m["flux"][ids]
    off = np.hypot(m["cx"][ids] - m["pc"][ids], m["cy"][ids] - m["pr"][ids])
    rings = (~compact & (_elongation(a, c, b) <= _RING_ROUNDNESS) & (off > _RING_OFFSET_PX)
             & (flux >= _LIT_RINGS_LIGHT * median(flux[compact])))
    return median(w2[rings]) if rings.sum() >= _LIT_RINGS else None


def _ring_population(m: dict[str, NDArray], pool: NDArray[np.intp]) -> NDArray | None:
    """The blobs of ``pool`` (reference candidates, brightest first) that are one
    population of defocused stars, or None: at least :data:`_PSF_MIN` (as many as any
    reference needs) round blobs (:data:`_RING_ROUNDNESS`) wider than :data:`_WIDE_PSF`
    whose widths agree (mean second moments within :data:`_RING_ALIKE` of their median)
    and whose brightest pixels lie off their centres (median beyond
    :data:`_RING_OFFSET_PX`: rings and flat discs).

    Defocus widens every star of a frame alike, so such a population is the PSF however
    many sharper detections outshine it: JPEG spreads a hot pixel into a compact blob of
    5-12 pixels, far brighter in peak than a ring that spreads its light over a hundred,
    and half of a frame's brightest blobs are such impulses at ``hot_pixels`` moderate.
    Their median shape is then compact, its area a tenth of a ring's, and most rings were
    rejected as diffuse (12 Gaia fields under defocus, hot pixels and JPEG at moderate
    strength: 2 solved). A peak off the centre tells a ring or a flat top from a galaxy,
    a blend or a patch of cloud glow, which peak near their middles or differ in size.
    Stronger defocus spreads a star's light over more pixels, so that only the brightest
    few stars show whole rings above the threshold (outer radius 6 px, among 315
    compressed hot pixels: 3-6 of them on Gaia fields, the rest arcs; on the real frames
    defocused as far, as few as 1): three alike rings wider than any focused star are
    the PSF.

    Defocus spreads a star's light but keeps it: the compact impulses that outshine the
    rings in peak hold far less light (of 46-67 compact blobs among the pool, at most 6
    held half a ring's, on bench_hard's defocused frames with hot pixels and JPEG).
    Where more than :data:`_LIT_COMPACT` of the compact blobs hold :data:`_RING_LIGHT`
    of a ring's light, they are focused stars and the round wide blobs blends of them: a
    crowded field (the Milky Way through a 75-105 deg lens: 3-10 such blends, 51-79 % of
    the compact blobs as bright) was taken for defocused, and its thousands of stars,
    narrower than the blends, were rejected.

    A bright nebula's knots, what the background left of them, are round and wide too,
    lumpy enough to peak off their centres, and hold more light than the stars (a 6 deg
    1280x720 field across a nebula as bright as its brightest stars: 292 stars rejected
    as narrow, 1 of its first 30 centroids on a star). Defocus makes its rings alike,
    while knots come in every size: where fewer than :data:`_RING_ALIKE_SHARE` of the
    round wide blobs are alike (bench_hard's defocused frames, with and without hot
    pixels and JPEG, at 5 and 3 sigmas: 60-100 % of 3-41; nebulae over 6-10 deg fields
    of stars of sigma 0.8-2.4 px: mostly 10-48 % of 4-50), or where three in four of the
    round compact blobs are wider than any impulse (:data:`_FOCUSED_MOMENT`; on those
    defocused frames the lower quartile is 0.37-0.65 px^2, beside the nebulae whose
    knots are more alike 1.5-3.6), there is no population of rings.
    """
    a, c, b = (v[pool] for v in _moments(m))
    w2 = 0.5 * (a + c)
    wide = np.flatnonzero((w2 > _WIDE_PSF) & (_elongation(a, c, b) <= _RING_ROUNDNESS))
    if len(wide) < _PSF_MIN:
        return None
    typical = median(w2[wide])
    alike = wide[np.abs(np.log(w2[wide] / typical)) <= np.log(_RING_ALIKE)]
    if len(alike) < _RING_ALIKE_SHARE * len(wide):
        return None  # (a nebula's knots, of every size)
    ids = pool[alike]
    if len(ids) < _PSF_MIN or median(np.hypot(m["cx"][ids] - m["pc"][ids],
                                          m["cy"][ids] - m["pr"][ids])) <= _RING_OFFSET_PX:
        return None
    compact = pool[w2 <= _WIDE_PSF]
    if len(compact) and np.mean(m["flux"][compact] >= _RING_LIGHT * median(m["flux"][ids])) \
            > _LIT_COMPACT:
        return None  # (focused stars, and blends of them)
    round_compact = w2[(w2 <= _WIDE_PSF) & (_elongation(a, c, b) <= _RING_ROUNDNESS)]
    if len(round_compact) >= _PSF_MIN and \
            percentiles(round_compact, (0.25,))[0] >= _FOCUSED_MOMENT:
        return None  # (focused stars, and a nebula's knots)
    return ids


def _relative_elongation(m: dict[str, NDArray], psf: PSFReference) -> NDArray:
    """Each blob's axis ratio, after the smear of the reference shape is divided out."""
    a, c, b = _shape_moments(m)
    if psf.whiten is not None:
        (p, q), (_, r) = psf.whiten
        # W C W^T for the symmetric W = [[p, q], [q, r]]
        a, c, b = (p * p * a + 2 * p * q * b + q * q * c,
                   q * q * a + 2 * q * r * b + r * r * c,
                   p * q * a + (p * r + q * q) * b + q * r * c)
    return _elongation(a, c, b)


#: A saturated blob whose long axis lies within this angle of a column or a row is a
#: star bleeding charge along the readout direction.
_BLEED_ANGLE_DEG = 15.0
_BLEED_TAN = float(np.tan(np.radians(2.0 * _BLEED_ANGLE_DEG)))


def _along_grid(m: dict[str, NDArray]) -> NDArray[np.bool_]:
    """Whether each blob's long axis runs along a column or a row (``|tan 2 theta|`` of
    its orientation below that of :data:`_BLEED_ANGLE_DEG`)."""
    a, c, b = _moments(m)
    return 2.0 * np.abs(b) <= _BLEED_TAN * np.abs(a - c)


#: Fractions of the most charge a column (or row) can hold that :func:`_bled_smear` tries.
_BLEED_FRACTIONS = np.array([0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.98])


def _bled_smear(m: dict[str, NDArray], psf: PSFReference,
                max_elongation: float) -> NDArray[np.bool_]:
    """Whether each blob is a smeared star that bleeds along a column or a row: with some
    of its second moment along that axis taken away (bleeding adds it there), its shape
    is the frame's smeared one (relative elongation within ``max_elongation``). Its long
    axis then lies between the smear and the grid, at any angle to the grid; a track
    across the grid stays long whatever is taken away along one axis."""
    a, c, b = _moments(m)
    ok = np.zeros(len(a), dtype=bool)
    for axis in (0, 1):  # take it from cyy (a column) or cxx (a row)
        keep, take = (a, c) if axis == 0 else (c, a)
        room = np.maximum(take - b * b / np.maximum(keep, 1e-12), 0.0)
        for f in _BLEED_FRACTIONS:
            left = take - f * room + 1e-6
            cxx, cyy = (a, left) if axis == 0 else (left, c)
            rel = _relative_elongation({"cxx": cxx - 1.0 / 12.0, "cyy": cyy - 1.0 / 12.0,
                                        "cxy": b}, psf)
            ok |= rel <= max_elongation
    return ok


def shape_reasons(m: dict[str, NDArray], reason: NDArray[np.uint8], thr: NDArray | float,
                  psf: PSFReference, max_elongation: float | None,
                  shape: tuple[int, int],
                  cut: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
    """Apply the elongation, diffuse and trail tests to ``reason`` in place (``cut``:
    blobs beside unusable pixels, exempt from the elongation test).

    Returns every blob's relative elongation (for the trail pieces).
    """
    sat = m["saturated"]
    elong = _relative_elongation(m, psf)
    if max_elongation is not None:
        # (in a smeared frame the smear and the bleed add up; with no reference, every
        # star bright enough for one saturated, what they look like is unknown)
        bled = _along_grid(m) | (not psf.measured)
        if psf.whiten is not None and sat.any():
            bled |= _bled_smear(m, psf, max_elongation)
        exempt = sat & bled if cut is None else (sat & bled) | cut
        reason[(reason == 0) & ~exempt & (elong > max_elongation)] = code("elongated")
    expected = _DIFFUSE_FACTOR * psf.area * _log_ratio(m, thr) + _DIFFUSE_SLACK
    reason[(reason == 0) & ~sat & (m["npix"] > expected)] = code("diffuse")
    _trails(m, reason, elong, psf, shape)
    _dotted_lines(m, reason, psf, shape)
    return elong


def _trails(m: dict[str, NDArray], reason: NDArray[np.uint8], elong: NDArray,
            psf: PSFReference, shape: tuple[int, int]) -> None:
    """Mark blobs on lines of elongated pieces (satellite and aircraft trails) as trails.

    A piece is an unsaturated blob of at least ``_PIECE_NPIX`` pixels and relative
    elongation ``_PIECE_ELONGATION``; its centre and major axis define a line. A
    line stands when its piece is long (``_LONG_PIECE_PX``) or two more pieces
    lie on it (within ``_PIECE_OFFSET_PX`` plus a PSF sigma, and ``_PIECE_GAP_PX``
    along it) pointing the same way; every kept blob within the line's
    tolerance, over the span of its pieces and a reach beyond them (a broken
    trail's faint pieces and ends), is then a trail. The reach is ``_PIECE_GAP_PX``,
    or less in a crowded field (a ``shape`` frame dense with kept blobs): as far as
    the band holds :data:`_REACH_CHANCE_BLOBS` by chance. A crowded field's chains of
    blended stars are long pieces too (the Milky Way through a 45 deg lens: 33 of 390
    pieces; their bands over 150 px took 803 of its 5,000 stars, 74 % of them within
    1 px of a lone star), and its stars near a line are mostly not the trail's.
    """
    a, c, b = _moments(m)
    lmax, _ = _axes(a, c, b)
    piece = np.flatnonzero((reason != 255) & ~m["saturated"] & (m["npix"] >= _PIECE_NPIX)
                           & (elong >= _PIECE_ELONGATION))
    kept = np.flatnonzero(reason == 0)
    if len(piece) == 0 or len(kept) == 0:
        return
    if len(piece) > _MAX_PIECES:  # the biggest: a pairwise test stays small
        piece = piece[np.argsort(-m["npix"][piece], kind="stable")[:_MAX_PIECES]]
    angle = 0.5 * np.arctan2(2.0 * b[piece], a[piece] - c[piece])
    ux, uy = np.cos(angle), np.sin(angle)
    px, py = m["cx"][piece], m["cy"][piece]
    sigma_psf = np.sqrt(0.5 * (psf.cov[0] + psf.cov[1])) if np.isfinite(psf.cov[0]) else 1.5
    half = 0.5 * np.sqrt(12.0 * lmax[piece])
    # pieces on each other's lines (row: the line's piece), pointing the same way
    lines = compiled("piece_lines")
    n_on, lo, hi = (_piece_lines if lines is None else lines)(
        px, py, ux, uy, half, float(_PIECE_OFFSET_PX + sigma_psf), _PIECE_GAP_PX,
        float(np.sin(_PIECE_ANGLE)))
    line = (n_on - 1 >= 2) | (np.sqrt(12.0 * lmax[piece]) >= _LONG_PIECE_PX)
    if not line.any():
        return
    tol = _LINE_TOLERANCE_PX + 2.0 * sigma_psf
    reach = min(_PIECE_GAP_PX,
                _REACH_CHANCE_BLOBS * shape[0] * shape[1] / (2.0 * tol * len(kept)))
    lo = lo[line] - reach
    hi = hi[line] + reach
    kx = m["cx"][kept][None, :] - px[line, None]
    ky = m["cy"][kept][None, :] - py[line, None]
    t = kx * ux[line, None] + ky * uy[line, None]
    d = np.abs(kx * uy[line, None] - ky * ux[line, None])
    on_line = ((d <= tol) & (t >= lo[:, None]) & (t <= hi[:, None])).any(axis=0)
    reason[kept[on_line]] = code("trail")


def _piece_lines(px: NDArray, py: NDArray, ux: NDArray, uy: NDArray, half: NDArray,
                 off_tol: float, gap: float, sin_angle: float
                 ) -> tuple[NDArray[np.intp], NDArray, NDArray]:
    """For the line of each trail piece (centre ``px``, ``py``, unit major axis ``ux``,
    ``uy``): the pieces on it, itself included (within ``off_tol`` of the line, ``gap``
    along it, their axes less than ``asin(sin_angle)`` from its), how many, and the span
    along the line their ends reach (``half``: each piece's half-length), as ``(count,
    lo, hi)``: every pair at once (compiled twin: :func:`.kernels.piece_lines`)."""
    dx = px[None, :] - px[:, None]
    dy = py[None, :] - py[:, None]
    along = dx * ux[:, None] + dy * uy[:, None]
    off = np.abs(dx * uy[:, None] - dy * ux[:, None])
    # (|sin| of the angle between the axes as a cross product: 400^2 sines cost 1.4 ms)
    on = ((off <= off_tol) & (np.abs(along) <= gap)
          & (np.abs(uy[None, :] * ux[:, None] - ux[None, :] * uy[:, None]) < sin_angle))
    lo = np.where(on, along - half[None, :], np.inf).min(axis=1)
    hi = np.where(on, along + half[None, :], -np.inf).max(axis=1)
    return on.sum(axis=1), lo, hi


@lru_cache(maxsize=32)
def _pairs(k: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """``np.triu_indices(k, 1)`` (40 us a call), read-only."""
    i, j = np.triu_indices(k, 1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def _dotted_lines(m: dict[str, NDArray], reason: NDArray[np.uint8], psf: PSFReference,
                  shape: tuple[int, int]) -> None:
    """Mark kept blobs on a line of many bright dots (an aircraft's strobe, a
    flashing satellite) as trails.

    Every pair of the ``_DOT_PAIRS`` brightest kept blobs of about the same
    flux (within a factor ``exp(_DOT_FLUX_LOG)``) defines a line; it stands
    when at least ``_DOT_MIN`` of the ``_DOT_POOL`` brightest lie within
    ``_DOT_OFFSET_PX`` (plus a PSF sigma) of it with about the pair's flux,
    and five Poisson sigmas more than chance puts in such a band; or when at
    least ``_DOT_REGULAR_MIN`` blobs of the same flux within
    ``exp(_DOT_REGULAR_FLUX_LOG)`` lie on it evenly spaced (one step apart, with at
    most one flash missing), and no more blobs of other fluxes than chance puts
    there. A strobe flashes alike every time, at a fixed period; stars that happen
    to line up differ in brightness, and a line with two or more parallel ones
    beside it is a lattice (a test pattern's grid), not a trail. Every kept blob
    on a standing line is then a trail.
    """
    kept = np.flatnonzero(reason == 0)
    if len(kept) < _DOT_MIN:
        return
    h, w = shape
    pool = kept[largest_first(m["flux"][kept], _DOT_POOL)]
    x, y, lf = m["cx"][pool], m["cy"][pool], np.log(np.maximum(m["flux"][pool], 1e-300))
    k = min(len(pool), _DOT_PAIRS)
    i, j = _pairs(k)
    dx, dy = x[j] - x[i], y[j] - y[i]
    length = np.hypot(dx, dy)
    ok = (length > 0) & (np.abs(lf[j] - lf[i]) <= _DOT_FLUX_LOG)
    i, j, ux, uy = i[ok], j[ok], dx[ok] / length[ok], dy[ok] / length[ok]
    sigma_psf = np.sqrt(0.5 * (psf.cov[0] + psf.cov[1])) if np.isfinite(psf.cov[0]) else 1.5
    tol = _DOT_OFFSET_PX + sigma_psf
    # chance alignments: Poisson with this mean (a band across the whole frame)
    expected = len(pool) * 2.0 * tol * np.hypot(h, w) / max(h * w, 1.0)
    need = max(_DOT_MIN, int(np.ceil(expected + 5.0 * np.sqrt(expected) + 1.0)))
    bands = compiled("dot_bands")
    if bands is not None:
        band, alike, count = bands(x, y, lf, i, j, ux, uy, float(tol), float(_DOT_FLUX_LOG))
    else:
        d = np.abs((x[None, :] - x[i, None]) * uy[:, None]
                   - (y[None, :] - y[i, None]) * ux[:, None])
        alike = np.abs(lf[None, :] - 0.5 * (lf[i] + lf[j])[:, None]) <= _DOT_FLUX_LOG
        band = d <= tol
        count = (band & alike).sum(axis=1)
    standing = np.flatnonzero(count >= need)
    # evenly spaced flashes of one flux (a subset of the alike ones), on lines with no
    # more blobs of other fluxes than chance puts there: a row of a lattice has blobs
    # of every flux on it, a strobe's line only its flashes
    rows = np.flatnonzero((count >= _DOT_REGULAR_MIN) & (count < need))
    regular = rows[:0]
    if len(rows):
        rows = rows[(band[rows] & ~alike[rows]).sum(axis=1)
                    <= expected + 2.0 * np.sqrt(expected) + 1.0]
        same = band[rows] & (np.abs(lf[None, :] - 0.5 * (lf[i[rows]] + lf[j[rows]])[:, None])
                             <= _DOT_REGULAR_FLUX_LOG)
        regular = np.array(
            [k for k, on in zip(rows, same, strict=True) if on.sum() >= _DOT_REGULAR_MIN
             and _evenly_spaced((x[on] - x[i[k]]) * ux[k] + (y[on] - y[i[k]]) * uy[k])],
            dtype=np.intp)
    if len(standing) == 0 and len(regular) == 0:
        return
    # parallel lines at different offsets are a lattice (a test pattern), not trails
    flip = np.where(uy < 0, -1.0, 1.0)  # one direction per line: offsets agree
    angle = np.arctan2(flip * uy, flip * ux)
    offset = flip * (x[i] * uy - y[i] * ux)

    def parallel(a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[np.intp]:
        """How many of lines ``b`` run parallel to each of lines ``a`` at other offsets."""
        same_dir = np.abs(np.sin(angle[a, None] - angle[None, b])) < np.sin(np.radians(2.0))
        apart = np.abs(offset[a, None] - offset[None, b]) > 3.0 * tol
        return (same_dir & apart).sum(axis=1)

    # an evenly spaced row stands out less: a few alike dots on parallel lines make it
    # part of a lattice
    lines = np.concatenate([standing[parallel(standing, standing) < 2],
                            regular[parallel(regular, np.flatnonzero(count >= _DOT_LATTICE_MIN))
                                    < 2]])
    if len(lines) == 0:
        return
    kx, ky = m["cx"][kept], m["cy"][kept]
    li = i[lines]
    dk = np.abs((kx[None, :] - x[li, None]) * uy[lines, None]
                - (ky[None, :] - y[li, None]) * ux[lines, None])
    reason[kept[(dk <= tol).any(axis=0)]] = code("trail")


def _evenly_spaced(t: NDArray) -> bool:
    """Whether the positions ``t`` (px along a line) are whole multiples of one step apart
    (see :data:`_DOT_REGULAR_MIN`)."""
    gaps = np.diff(np.sort(t))
    step = float(gaps.min())
    if step < _DOT_MIN_STEP_PX:
        return False
    k = np.rint(gaps / step)
    if k.sum() - len(k) > _DOT_MAX_SKIP:
        return False
    step = float(gaps.sum() / k.sum())  # every gap's evidence on the period
    return bool(np.all(np.abs(gaps - k * step) <= _DOT_STEP_PX + _DOT_STEP_FRACTION * gaps))


#: The foreground test's window: pixels within this many of the peak (a 7x7 box) ...
_DARK_REACH = 3
#: ... of which this many must be dark. On the two real frames with lit branches in
#: front (bench_hard, strong), 3 pixels at 7 sigmas drop 61 % of the lit specks and
#: 2 % of the stars (solved: 11 of 20 -> 18).
_DARK_PIXELS = 3
#: A kept blob with as many dark pixels within this many of its peak (a 13x13 box) is
#: doubtful: a lit silhouette's specks crowd along its dark side, a star seldom lies so
#: close to one. (The two real frames under bench_hard's ``branches`` at ``strong``, 5
#: seeds each, all kept blobs, dark against the sky alone: 974 of 1031 false
#: detections within 6 px, 26 of 272 stars; 4 px: 863 and 10, 8 px: 1000 and 36.)
NEAR_DARK_REACH = 6
#: ... dark there: below the sky as the foreground test, and this many noise sigmas
#: below the background model at the pixel itself (not at the blob's peak: beside a
#: silhouette the model follows it down, 7-10 sigmas on those frames, and a few pixels
#: away the silhouette is no longer dark against it; nor against the sky alone: a
#: steep gradient's dark side is no silhouette). The same frames, brightest first with
#: the doubtful ones after the others: the first 24 held 12-23 stars (2-17 before);
#: measured against the model at the peak, or 7 sigmas below each pixel's, 2-18.
_NEAR_DARK_MODEL = 3.0


def foreground_blobs(work: NDArray, m: dict[str, NDArray], ids: NDArray[np.intp],
                     dark_sigmas: float, sigma: float, sky: float,
                     bad: NDArray[np.bool_] | None = None,
                     reach: int = _DARK_REACH,
                     level_at: Callable[[NDArray, NDArray], NDArray] | None = None
                     ) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` touch something dark in front of the sky (see the module
    notes): at least :data:`_DARK_PIXELS` pixels of the image ``work`` within
    :data:`_DARK_REACH` of the peak lie more than ``dark_sigmas`` times the frame's noise
    ``sigma`` below the background there (the global noise: the local one is inflated
    along a silhouette's rim) and below the frame's typical ``sky`` level as much: in a
    crowded field (a rich all-sky frame, the Milky Way) starlight lifts the background
    of whole blocks, and the sky between the stars would look dark against it. Unusable
    pixels (``bad``: NaN or masked, filled with the frame's median sky, which may lie
    far below a bright part's) are never dark. ``reach``: the window's half size
    (:data:`NEAR_DARK_REACH`: the blobs near a silhouette, which the extractor demotes);
    ``level_at``: the background model at pixels ``(rows, cols)``; when given, a pixel
    is dark :data:`_NEAR_DARK_MODEL` sigmas below the model there (and ``dark_sigmas``
    below ``sky``), not against the model at the blob's peak (see
    :data:`NEAR_DARK_REACH`: the extractor's test for the blobs near a silhouette).
    """
    rows, cols, inside = _windows(m, ids, reach, work.shape)
    if bad is not None:
        inside &= ~bad[rows, cols]
    vals = work[rows, cols]
    if level_at is None:
        floor = (np.minimum(m["bg_peak"][ids], sky) - dark_sigmas * sigma)[:, None, None]
    else:
        floor = np.minimum(level_at(rows, cols) - _NEAR_DARK_MODEL * sigma,
                           sky - dark_sigmas * sigma)
    dark = inside & (vals < floor)
    return dark.reshape(len(ids), -1).sum(axis=1) >= _DARK_PIXELS


def _windows(m: dict[str, NDArray], ids: NDArray[np.intp], reach: int,
             shape: tuple[int, int]) -> tuple[NDArray, NDArray, NDArray[np.bool_]]:
    """The pixels within ``reach`` of the blobs' peaks, ``(rows, cols, inside)`` of shape
    ``(len(ids), 2 reach + 1, 2 reach + 1)`` (clipped to the image; ``inside`` marks the
    pixels that are in it)."""
    h, w = shape
    offs = np.arange(-reach, reach + 1)
    rows = m["pr"][ids][:, None, None] + offs[None, :, None]
    cols = m["pc"][ids][:, None, None] + offs[None, None, :]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    # (minimum/maximum: np.clip checks its integer bounds at every call)
    return np.minimum(np.maximum(rows, 0), h - 1), np.minimum(np.maximum(cols, 0), w - 1), inside


#: Blobs with at least _BAD_PIXELS unusable pixels this close to their peak have no
#: measurable shape: a bad column or row puts 7 in the window, a cluster a few, while a
#: single bad pixel (a bad-pixel mask's hot pixel) hardly changes a star's shape, and
#: counting it would exempt every cosmic ray and hot pixel near one (0.5 % of the pixels
#: masked at random: 1 -> 19 of the brightest 30 detections of 4 frames false).
_BAD_REACH = 3
_BAD_PIXELS = 3
#: ... and whose long axis makes at least 45 deg with the direction to them (cos).
_CUT_COS = float(np.cos(np.radians(45.0)))
#: ... and whose second moment along it is at most this many times the stars' (a
#: cosmic-ray track along the rim of an image circle's mask is longer).
_CUT_EXTENT = 2.0


def near_unusable(m: dict[str, NDArray], bad: NDArray[np.bool_] | None,
                  shape: tuple[int, int], psf: PSFReference | None = None
                  ) -> NDArray[np.bool_]:
    """Which blobs (all labels) have :data:`_BAD_PIXELS` unusable pixels (``bad``: NaN,
    masked) within :data:`_BAD_REACH` of their peak. A bad column beside a star cuts its
    blob and its fit (before, one 1-4 px from every star cost 26-59 % of them as 'narrow'
    or 'elongated'): such blobs are exempt from the shape tests, as saturated ones are.
    The cut only takes light away: the blob's long axis runs along the bad pixels' edge,
    and (when the frame's stars are known, ``psf``) it is no longer than theirs; a
    cosmic-ray track or a trail beside them may lie along the edge too, and is longer."""
    n = len(m["npix"])
    if bad is None:
        return np.zeros(n, dtype=bool)
    rows, cols, inside = _windows(m, np.arange(n), _BAD_REACH, shape)
    hit = (inside & bad[rows, cols]).reshape(n, -1)
    count = hit.sum(axis=1)
    near = count >= _BAD_PIXELS
    near[0] = False
    # the cut shortens a star across the bad pixels: its long axis runs along their edge
    # (a column beside it, an image circle's rim), where a cosmic-ray track or a trail
    # beside them points any way
    ids = np.flatnonzero(near)
    offs = np.arange(-_BAD_REACH, _BAD_REACH + 1, dtype=np.float64)
    dr = (hit[ids] * np.repeat(offs, len(offs))).sum(axis=1) / count[ids]
    dc = (hit[ids] * np.tile(offs, len(offs))).sum(axis=1) / count[ids]
    a, c, b = (v[ids] for v in _moments(m))
    lmax, _ = _axes(a, c, b)
    # (major axis (ux, uy) ~ (b, lmax - a), or (lmax - c, b); the larger is the stabler)
    ux, uy = np.where(a >= c, lmax - c, b), np.where(a >= c, b, lmax - a)
    along = np.abs(ux * dc + uy * dr)
    cut = along <= _CUT_COS * np.hypot(ux, uy) * np.hypot(dc, dr)
    if psf is not None and np.isfinite(psf.cov[0]):
        cut &= lmax <= _CUT_EXTENT * _axes(*(np.array([v]) for v in psf.cov))[0][0]
    near[ids] = cut
    return near


def narrow_blobs(sx: NDArray, sy: NDArray, measured: NDArray[np.bool_], lmin: NDArray,
                 rough: NDArray[np.bool_], start: NDArray, snr: NDArray,
                 sharp: NDArray, winged: NDArray[np.bool_] | None = None,
                 judged: tuple[NDArray, NDArray, NDArray] | None = None
                 ) -> NDArray[np.bool_]:
    """Blobs narrower than any star, among the fitted blobs: :func:`width_verdicts`'s
    narrow ones and those it cannot tell from stars, both (the extraction itself keeps
    the latter as doubtful stars: it calls :func:`width_verdicts`)."""
    narrow, untold = width_verdicts(sx, sy, measured, lmin, rough, start, snr, sharp, winged,
                                    judged)
    return narrow | untold


def width_verdicts(sx: NDArray, sy: NDArray, measured: NDArray[np.bool_], lmin: NDArray,
                   rough: NDArray[np.bool_], start: NDArray, snr: NDArray,
                   sharp: NDArray, winged: NDArray[np.bool_] | None = None,
                   judged: tuple[NDArray, NDArray, NDArray] | None = None
                   ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """``(narrow, untold)``: blobs narrower than any star, among the fitted blobs, and
    those of a frame of undersampled stars too sharp to tell from hot pixels.

    ``measured`` marks blobs whose Gaussian width was fitted freely (bright,
    unsaturated), including fits that ran into the lower width bound; ``lmin``
    is each blob's minor-axis second moment (px^2, pixel extent included);
    ``rough`` marks the fainter blobs fitted with an imposed width (so neither
    saturated nor too big), ``start`` every blob's rough width from its 3x3
    log-curvature, ``snr`` its peak in noise sigmas and ``sharp`` its peak
    sharpness; ``winged`` (None: none) marks the blobs of a frame of undersampled
    stars whose peak's neighbours hold light along both axes; ``judged`` (None: the
    measured ones) the widths ``(sx, sy, start)`` each blob is judged by, where the
    measured ones misrepresent it (a JPEG's block boundary cut it), while the stars'
    reference widths below still come from the measured ones. A blob is narrow when

    * a fitted sigma is below ``_MIN_PSF_SIGMA`` (for a ``winged`` blob, below
      ``_WINGED_FRACTION`` of the winged blobs' median, if that is lower: the fits, two
      Gauss-Newton steps from 0.3 px, spread stars of sigma 0.3 px down to their
      0.2 px bound, where single pixels end; their light in the neighbours tells
      them apart), or its minor-axis moment is
      below a quarter of the stars' median minor-axis moment (cosmic-ray tracks,
      also diagonal ones too short to be elongated);
    * on a frame whose stars are well sampled (``_WELL_SAMPLED``), its fitted
      width is below ``_NARROW_FRACTION`` of the stars'; or, for fainter blobs
      (down to ``_NARROW_SNR``), its rough width is below ``_ROUGH_FRACTION``
      of the stars' rough widths (upper quartile) and below ``_ROUGH_MAX_PX`` (a
      wide star's rough width at such peaks is mostly noise), or it is sharper than
      nine in ten of the stars by ``0.15 + 2.5 / snr`` (its noise): hot pixels that
      JPEG smeared into 3x3 blobs, whose width is the compression's, not the optics'.

    The stars' width for the last test is the upper quartile of the fitted
    widths: false detections may outnumber the stars among bright blobs (hot
    pixels are often brighter than any star) as long as these are narrower,
    and nothing on the sky is narrower than its stars.

    ``untold``: on a frame of undersampled stars (``winged`` given) where neither
    ``_REF_MIN`` of the measured blobs are winged (which would set their floor) nor as
    many lie above the floor (stars to judge by), the blobs below it are as sharp as
    the frame's stars may be: the real frames binned 4x4 fit sigmas of 0.20-0.34 px, and
    two of three of their bright stars, near a pixel's centre, spill too little light
    to show wings (the second frame's nine brightest, its every measured blob, were
    dropped as narrow and it never solved). They are not dropped but told apart from
    the narrow ones, for the caller to keep as doubtful stars.
    """
    # ``narrow`` (the measured widths) picks the stars the references come from,
    # ``verdict`` (the judged ones) the blobs dropped
    jx, jy, jstart = (sx, sy, start) if judged is None else judged
    least = np.minimum(sx, sy)
    floor = np.full(len(sx), _MIN_PSF_SIGMA)
    if winged is not None and (measured & winged).sum() >= _REF_MIN:
        floor[winged] = min(_MIN_PSF_SIGMA,
                            _WINGED_FRACTION * median(least[measured & winged]))
    narrow = measured & (least < floor)
    verdict = measured & (np.minimum(jx, jy) < floor)
    good = measured & ~narrow
    none = np.zeros(len(sx), dtype=bool)
    if good.sum() < _REF_MIN:
        if winged is not None and (measured & winged).sum() < _REF_MIN:
            return none, verdict
        return verdict, none
    # like against like: a smeared star's minor axis is the optics' width while its
    # fitted x and y widths carry the smear, so minor axes are compared with minor axes
    thin = measured & (lmin < _NARROW_FRACTION ** 2 * median(lmin[good]))
    narrow |= thin
    verdict |= thin
    width = np.sqrt(sx * sy)
    s_ref = percentiles(width[good], (0.75,))[0]
    if s_ref >= _WELL_SAMPLED:
        narrow |= measured & (width < _NARROW_FRACTION * s_ref)
        verdict |= measured & (np.sqrt(jx * jy) < _NARROW_FRACTION * s_ref)
        stars = good & ~narrow
        sharp_hi = percentiles(sharp[stars], (0.9,))[0] if stars.sum() >= _REF_MIN else 1.0
        # ... and rough widths with the stars' rough widths (the same 3x3 estimate)
        rough_ref = percentiles(start[stars], (0.75,))[0] if stars.sum() >= _REF_MIN else s_ref
        faint = rough & (snr >= _NARROW_SNR)
        verdict |= faint & ((jstart < min(_ROUGH_FRACTION * rough_ref, _ROUGH_MAX_PX))
                            | (sharp > sharp_hi + 0.15 + 2.5 / np.maximum(snr, 1e-9)))
    return verdict, none


def across_rings(m: dict[str, NDArray], ids: NDArray[np.intp],
                 psf: PSFReference) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` of a frame of defocused stars (``psf.ring``) are as wide
    across as its rings: their minor-axis second moment (pixel extent included) is at
    least ``_NARROW_FRACTION`` squared of the reference's, the rule :func:`narrow_blobs`
    applies to fitted blobs."""
    a, c, b = (v[ids] for v in _moments(m))
    return _axes(a, c, b)[1] >= _NARROW_FRACTION ** 2 * psf.minor


def narrower_than_rings(m: dict[str, NDArray], ids: NDArray[np.intp],
                        psf: PSFReference) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` of a frame of defocused stars (``psf.ring``) are narrow:
    not as wide across as its rings (:func:`across_rings`), though bright enough
    (``_NARROW_SNR`` noise sigmas) to show a whole ring.

    Rings keep their centroids unfitted, so the fitted widths that :func:`narrow_blobs`
    judges by are never measured on such a frame, and hot pixels, compact however JPEG
    spreads them (3-12 pixels, minor moments 0.2-0.7 px^2 against the rings' 3.4-12),
    were kept as stars and outshone the rings. A defocused star bright enough to peak
    ``_NARROW_SNR`` noise sigmas high shows its whole ring above the threshold, as wide
    across as the reference; fainter ones show arcs of it, as thin as the impulses and a
    ring's radius off their star, but kept, as :func:`narrow_blobs` keeps faint blobs of
    doubtful shape (a real frame defocused at ``strong``: 9 of the 12 blobs the moments
    alone would drop, all below 4 sigmas, were such arcs; dropped, 2 of 10 such frames
    did not solve).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        bright = m["peak"][ids] >= _NARROW_SNR * m["sigma"][ids]
    return bright & ~across_rings(m, ids, psf)


#: A JPEG-smeared impulse (a hot pixel or a cosmic-ray hit, compressed) is a cross: JPEG
#: quantises the high frequencies along both axes at once (the table's lower right)
#: more coarsely than those along one, so the impulse keeps light in its peak's row
#: and column and loses it on the diagonals. Any separable profile f(x) g(y) -- a
#: Gaussian or a pixel-integrated one at any sub-pixel offset, a JPEG'd star, whose
#: light the compression took nothing sharp from -- has, in the 3x3 window about its
#: peak p, a mean of the four diagonal neighbours d equal to h v / p (h, v: the means
#: of the horizontal and vertical neighbours). A blob whose d falls short of h v / p
#: by more than this fraction of it ...
_CROSS_FRACTION = 0.55
#: ... and by this many of the deficit's noise sigmas is a cross. (The two real frames
#: under bench_hard's ``combined`` at ``strong``, 10 seeds, the 30 brightest kept blobs:
#: the stars' d / (h v / p) 0.50-1.14, median 0.95; the hot pixels' median 0.53, a
#: third of them below 0.3; real stars unJPEG'd are diamonds, d above h v / p.)
_CROSS_SIGMAS = 3.0
#: A blob whose d exceeds h v / p by more than this multiple of it (and by
#: _CROSS_SIGMAS) is lit along a diagonal: a cosmic-ray track or a trail piece across
#: the grid. Stars are seldom separable exactly, but the real frames' stars, unJPEG'd
#: diamonds, reach d = 3.1 h v / p; the two real frames' bright diagonal tracks under
#: ``combined`` at ``strong``, 5-20 h v / p.
_DIAGONAL_EXCESS = 3.0
#: A blob of at least _DOUBT_NPIX pixels whose axis ratio (the frame's smear divided
#: out) exceeds this is doubtful on a JPEG frame: compression widens a cosmic-ray
#: track's minor axis (to 1.0-1.3 px) and so takes it below ``max_elongation`` and out
#: of the narrow test, while the frame's stars, and JPEG's blocks around them, stay
#: round (the same frames' bright tracks: 2.0-2.6; their stars of 8 pixels or more:
#: below 1.6). Smaller blobs' moments are too few pixels to tell.
_DOUBT_ELONGATION = 2.0
_DOUBT_NPIX = 8
#: A saturated blob whose axis ratio (the frame's smear divided out) exceeds this, at
#: an angle to the pixel grid, is doubtful (:func:`merged_saturated`): an 8-bit stretch
#: clips a wide lens's bright stars and the knots of its Milky Way alike, and a knot's
#: broad light (or two stars merged) then outshines the single stars' clipped cores
#: (12 of the brightest 24 detections of a 180 deg all-sky JPEG at ``strong``, axis
#: ratios 1.3-2.5; most of its single saturated stars' below 1.15, a few beside a
#: neighbour up to 1.7).
_SATURATED_DOUBT_ELONGATION = 1.4


def doubtful_blobs(work: NDArray, m: dict[str, NDArray], ids: NDArray[np.intp],
                   noise: NDArray) -> NDArray[np.bool_]:
    """Which of the kept blobs ``ids`` of a JPEG frame are doubtful stars: crosses
    (:data:`_CROSS_FRACTION`: the compressed impulse of a hot pixel or cosmic-ray hit),
    lit along a diagonal (:data:`_DIAGONAL_EXCESS`) or elongated beyond
    :data:`_DOUBT_ELONGATION` (compressed cosmic-ray tracks).

    ``work`` is the working image, ``m["elong"]`` each blob's relative elongation
    (:func:`shape_reasons`), ``noise`` each blob's (all labels) effective
    pixel noise (the detection threshold over ``sigma_threshold``: on a JPEG its
    compression noise, not the flattened sky's scatter). Saturated blobs are never
    doubtful (a flat top says nothing of the shape). The extractor lists doubtful
    blobs after the others: nothing is lost when a star is among them, while the
    brightest-first list a solver draws its patterns from starts with star-like
    detections.
    """
    if len(ids) == 0:
        return np.zeros(0, dtype=bool)
    h, w = work.shape
    offs = np.arange(-1, 2)
    rows = np.minimum(np.maximum(m["pr"][ids][:, None, None] + offs[None, :, None], 0), h - 1)
    cols = np.minimum(np.maximum(m["pc"][ids][:, None, None] + offs[None, None, :], 0), w - 1)
    win = work[rows, cols].astype(np.float64) - m["bg_peak"][ids][:, None, None]
    p = win[:, 1, 1]
    hor = 0.5 * (win[:, 1, 0] + win[:, 1, 2])
    ver = 0.5 * (win[:, 0, 1] + win[:, 2, 1])
    diag = 0.25 * (win[:, 0, 0] + win[:, 0, 2] + win[:, 2, 0] + win[:, 2, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        hp, vp = hor / p, ver / p
        expected = hor * vp
        # noise of expected - diag, to first order in the pixels' noise
        spread = noise[ids] * np.sqrt(0.25 + 0.5 * (hp * hp + vp * vp) + (hp * vp) ** 2)
        cross = ((p > 0) & (hor > 0) & (ver > 0)
                 & (expected - diag > _CROSS_FRACTION * expected + _CROSS_SIGMAS * spread))
        # (a track across the pixel grid lights the diagonal neighbours instead)
        cross |= (p > 0) & (diag - expected > _DIAGONAL_EXCESS * np.abs(expected)
                            + _CROSS_SIGMAS * spread)
    long = (m["npix"][ids] >= _DOUBT_NPIX) & (m["elong"][ids] > _DOUBT_ELONGATION)
    return (cross | long) & ~m["saturated"][ids]


def merged_saturated(m: dict[str, NDArray], ids: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Which of the kept blobs ``ids`` are saturated and elongated beyond
    :data:`_SATURATED_DOUBT_ELONGATION` at an angle to the pixel grid: stars merged
    into one clipped blob (two bright ones, or a knot of faint ones), whose position is
    none of theirs and whose brightness is all of theirs. A star bleeding charge
    along a column (or a row) keeps its place (:func:`_along_grid`).
    """
    out = m["saturated"][ids] & (m["elong"][ids] > _SATURATED_DOUBT_ELONGATION)
    if out.any():  # (most frames have none: no moments to look at)
        sel = ids[out]
        out[out] = ~_along_grid({k: m[k][sel] for k in ("cxx", "cyy", "cxy")})
    return out
