"""Building a database from a catalog: :class:`GenerationOptions` and :func:`generate`.

The catalog is sorted brightest first, cut to the stars verification needs
(``verification_stars_per_fov`` per average field of the smallest size, or
``star_max_magnitude``) and propagated to the proper-motion epoch; patterns are
then generated for every field-of-view scale from ``max_fov_deg`` down to
``min_fov_deg`` (:mod:`skysolve.solver.patterns`).
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from .._options import Options, option, shown_name
from ..errors import InvalidArgumentError, warn_caller
from . import patterns as _patterns
from .dbfile import DATABASE_FORMAT_VERSION
from .keys import bins_for_error

__all__ = ["GenerationOptions", "generate"]


def _progress(value: Any, name: str) -> bool | None:
    return None if value is None else _args.flag(value, name)


_max_fov = partial(_args.positive, maximum=180.0)
_pattern_error = partial(_args.positive, maximum=0.25, open_max=True)
_step = partial(_args.number, minimum=1.0, open_min=True)


@dataclasses.dataclass(frozen=True, eq=False)
class GenerationOptions(Options):
    """The parameters of a pattern database (see the field documentation)."""

    max_fov_deg: float = option(30.0, type="float", check=_max_fov, doc="""
        Largest field of view to solve, degrees (0 < fov <= 180; 180 covers all-sky
        fisheye frames).""")
    min_fov_deg: float | None = option(None, type="float, optional",
                                       check=_args.optional_positive, doc="""
        Smallest field of view, degrees; below ``max_fov_deg`` the database holds
        patterns for every scale ``max_fov_deg / multiscale_step**i`` down to it.
        Default: ``max_fov_deg``.""")
    star_max_magnitude: float | None = option(None, type="float, optional",
                                              check=_args.optional_number, doc="""
        Faintest star kept. Default: as faint as needed for
        ``verification_stars_per_fov`` stars in an average ``min_fov_deg`` field.""")
    pattern_max_error: float = option(0.001, type="float", check=_pattern_error, doc="""
        Largest edge-ratio error a pattern match tolerates (0 < e < 0.25); sets the
        key quantisation (``round(0.25 / pattern_max_error)`` bins per ratio).""")
    lattice_field_oversampling: float = option(100.0, type="float", check=_args.positive, doc="""
        Pattern fields per field-of-view area over the sky.""")
    patterns_per_lattice_field: int = option(50, type="int", check=_args.positive_count, doc="""
        Patterns built from the brightest stars of each field.""")
    verification_stars_per_fov: int = option(150, type="int", check=_args.positive_count, doc="""
        Average stars per ``min_fov_deg`` field kept for verification.""")
    multiscale_step: float = option(1.5, type="float", check=_step, doc="""
        Ratio between consecutive field-of-view scales (> 1).""")
    epoch_proper_motion_year: float | None = option(2025.0, type="float or None",
                                                    check=_args.optional_number, doc="""
        Julian year the star positions are propagated to; None keeps the catalog epoch.""")
    catalog_nside: int = option(16, type="int", check=_args.positive_count, doc="""
        tetra3rs's resolution of its catalog's cone-search grid (>= 1). It sets
        only how fast a query runs, never which stars it returns; skysolve
        sizes the cells of its sky index from the field of view instead (a
        fifth of ``min_fov_deg``), so the value is checked and has no effect.""")
    progress: bool | None = option(None, type="bool or None", check=_progress, keyword_only=True,
                                   doc="""
        Progress bar on stderr; None shows it only on a terminal.""")

    def _check_together(self) -> None:
        if self.min_fov_deg is not None and self.min_fov_deg > self.max_fov_deg:
            raise InvalidArgumentError(
                f"min_fov_deg ({self.min_fov_deg}) must not exceed max_fov_deg "
                f"({self.max_fov_deg})")

    @property
    def min_fov(self) -> float:
        """The smallest field of view, degrees (``max_fov_deg`` when not given)."""
        return self.min_fov_deg if self.min_fov_deg is not None else self.max_fov_deg


def fov_bounds_text(lo_deg: float, hi_deg: float) -> tuple[str, str]:
    """``min_fov_deg`` and ``max_fov_deg`` to suggest for a database that holds fields
    ``lo_deg``-``hi_deg`` wide, as short decimals: the low one rounded down and the high
    one up to two significant figures (a range of 1.86-5 deg asks for 1.8-5, where
    rounding to the nearest left 1.86 outside it), never in exponent form."""
    def text(x: float, up: bool) -> str:
        e = math.floor(math.log10(x)) - 1  # (the second significant figure's place)
        q = x / 10.0 ** e
        q = math.ceil(q - 1e-9) if up else math.floor(q + 1e-9)  # (float noise: 3.0 is 3)
        digits = max(0, -e)
        return f"{q * 10.0 ** e:.{digits}f}".rstrip("0").rstrip(".") if digits \
            else f"{q * 10 ** e:d}"
    return text(lo_deg, False), text(hi_deg, True)


def _check_unique_ids(ids: NDArray[np.int64]) -> None:
    """Refuse a star table in which two stars share a catalog id.

    A lookup by id (:meth:`PatternDatabase.indices_of_ids`: the calibration's way from
    a solve's matched ids back to star positions) finds one star per id, so a match of
    the other would silently take that one's position.
    """
    values, counts = np.unique(ids, return_counts=True)
    repeated = values[counts > 1]
    if repeated.size:
        shown = ", ".join(str(int(i)) for i in repeated[:5])
        raise InvalidArgumentError(
            f"catalog ids must be unique among the stars kept, but {repeated.size} are "
            f"repeated ({shown}{', ...' if repeated.size > 5 else ''}): give each star its "
            "own id, or leave the id column out (rows are then numbered)")


def _star_table(catalog: Any, options: GenerationOptions) -> Any:
    """The catalog's stars the database keeps: propagated, brightest first, cut."""
    if len(catalog) < 4:
        raise InvalidArgumentError("catalog must hold at least 4 stars")
    catalog = catalog.sorted_by_magnitude()
    if options.star_max_magnitude is not None:
        catalog = catalog.brighter_than(options.star_max_magnitude)
    # stars for verification_stars_per_fov per average square min_fov field
    n_keep = int(math.ceil(options.verification_stars_per_fov * 4.0 * math.pi
                           / math.radians(options.min_fov) ** 2))
    if n_keep < len(catalog):
        catalog = catalog.select(np.arange(n_keep))
    if len(catalog) < 4:
        raise InvalidArgumentError("fewer than 4 catalog stars pass star_max_magnitude")
    _check_unique_ids(catalog.ids)
    # propagated last, so only the stars kept (magnitudes do not move)
    if options.epoch_proper_motion_year is not None:
        catalog = catalog.propagate(options.epoch_proper_motion_year)
    return catalog


#: Fewest stars per smallest field, typically over the sky the catalog covers, below
#: which generation warns: at a mean of 10 a field holds fewer than the 4 stars of a
#: pattern about one time in a hundred (Poisson), at a mean of 1 nearly always.
MIN_STARS_PER_FIELD = 10.0


def _stars_per_field(ra_deg: NDArray, dec_deg: NDArray, fov_deg: float) -> float:
    """The median number of stars in a field-sized sky cell, over the cells holding any.

    Cells of about ``fov_deg`` square (declination bands, each cut in right ascension
    into cells of about equal area), counted only where the catalog has stars: a
    catalog of part of the sky (a cone query) is judged by the sky it covers.
    """
    h = math.radians(fov_deg)
    bands = max(1, math.ceil(math.pi / h))
    dec = np.radians(dec_deg)
    band = np.minimum(((dec + math.pi / 2) / math.pi * bands).astype(np.int64), bands - 1)
    centre = -math.pi / 2 + (band + 0.5) * math.pi / bands
    cells = np.maximum(1, np.round(2 * math.pi * np.cos(centre) / h)).astype(np.int64)
    col = np.minimum((np.radians(ra_deg) / (2 * math.pi) * cells).astype(np.int64), cells - 1)
    _, counts = np.unique(band * (int(cells.max()) + 1) + col, return_counts=True)
    return float(np.median(counts))


def _warn_if_sparse(catalog: Any, options: GenerationOptions) -> None:
    """Warn when the star table is too sparse for patterns in a field of ``min_fov``.

    Such a database builds without an error and solves almost nothing: Hipparcos
    (118,000 stars) for 0.5 deg fields holds 0.7 stars per field and 7,461 patterns.
    """
    per_field = _stars_per_field(catalog.ra_deg, catalog.dec_deg, options.min_fov)
    if per_field < MIN_STARS_PER_FIELD:
        warn_caller(
            f"the catalog's {len(catalog)} stars kept (to magnitude {catalog.mag.max():.2f}) "
            f"number typically {per_field:g} per {options.min_fov:g} deg field (fewer than "
            f"{MIN_STARS_PER_FIELD:g}): many fields of that size hold too few stars for a "
            f"pattern and will not solve; use a deeper catalog (or a fainter "
            f"{shown_name('star_max_magnitude')}) or a larger {shown_name('min_fov_deg')}",
            UserWarning)  # (the caller of generate_from_*)


def generate(catalog: Any, options: GenerationOptions) -> tuple[dict[str, NDArray],
                                                                dict[str, Any]]:
    """The arrays (star table and patterns) and parameters of a database of ``catalog``."""
    # (where the stars came from, for ``db info``: the file, its epoch and size)
    source = {"catalog_file": catalog.source, "catalog_epoch": catalog.epoch,
              "catalog_stars": len(catalog)}
    catalog = _star_table(catalog, options)
    _warn_if_sparse(catalog, options)
    bins = bins_for_error(options.pattern_max_error)
    scales = _patterns.fov_scales(options.max_fov_deg, options.min_fov, options.multiscale_step)
    pset = _patterns.generate_patterns(catalog.vectors(), scales,
                                       options.lattice_field_oversampling,
                                       options.patterns_per_lattice_field, bins,
                                       progress=options.progress)
    params = {
        "format_version": DATABASE_FORMAT_VERSION,
        "catalog": catalog.name,
        **source,
        "num_stars": len(catalog),
        "num_patterns": int(len(pset.keys)),
        "max_fov_deg": options.max_fov_deg,
        "min_fov_deg": options.min_fov,
        "fov_scales_deg": scales,
        "star_max_magnitude": float(catalog.mag.max()),
        "pattern_max_error": options.pattern_max_error,
        "pattern_bins": bins,
        **_patterns.PATTERN_RULES,
        "lattice_field_oversampling": options.lattice_field_oversampling,
        "patterns_per_lattice_field": options.patterns_per_lattice_field,
        "verification_stars_per_fov": options.verification_stars_per_fov,
        "multiscale_step": options.multiscale_step,
        "epoch_proper_motion_year": catalog.epoch,
    }
    arrays = {"star_ids": catalog.ids.astype(np.int64, copy=False),
              "star_ra_deg": catalog.ra_deg.astype(np.float64, copy=False),
              "star_dec_deg": catalog.dec_deg.astype(np.float64, copy=False),
              "star_mag": catalog.mag.astype(np.float32),
              "pattern_stars": pset.stars, "pattern_keys": pset.keys}
    return arrays, params
