"""The pattern database: star table, 4-star pattern index, file format.

:class:`SolverDatabase` holds

* a star table ordered brightest first (catalog id, RA/Dec at the proper-motion
  epoch, magnitude) used for verification and catalog queries;
* the 4-star patterns (indices into the star table, canonical order) sorted by
  their quantised edge-ratio key, so that looking a key up is a binary search.

Files are a small fixed header, a JSON description of the parameters and
arrays (CRC-32 checked), then the raw little-endian arrays aligned to 64 bytes (memory-mappable),
each with a CRC-32. Nothing in a file is ever executed: no pickle inside.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import struct
import zlib
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import patterns as _patterns
from .catalogs import Catalog, CatalogStar, load_catalog_csv, load_gaia, load_hipparcos
from .errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from .geometry import angle_to_chord, radec_to_vector

__all__ = ["SolverDatabase", "DATABASE_FORMAT_VERSION"]

_MAGIC = b"SKYSOLVE-DB\x00"
DATABASE_FORMAT_VERSION = 2
# magic, version, json length, CRC-32 of the json (v1 had no header CRC, so a flipped
# digit in the parameters loaded silently)
_PREAMBLE = struct.Struct("<12sIII")
_ALIGN = 64
_ARRAY_NAMES = ("star_ids", "star_ra_deg", "star_dec_deg", "star_mag", "pattern_stars",
                "pattern_keys")


def _check_positive(name: str, value: Any, integer: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"{name} must be a positive finite number, got {value!r}")
    if integer and int(value) != value:
        raise InvalidArgumentError(f"{name} must be a whole number, got {value!r}")
    return int(value) if integer else float(value)


def _file_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def _generation_args(arguments: dict[str, Any]) -> dict[str, Any]:
    """The generation parameters among a catalog-specific generator's arguments.

    The per-catalog generators spell out every parameter of
    :meth:`SolverDatabase.generate_from_catalog` (for help() and IDEs) and pass
    them on unchanged; this drops the two that are not parameters.
    """
    return {k: v for k, v in arguments.items() if k not in ("cls", "catalog_path")}


#: Cost of visiting one sky cell in a compiled cone query, in star-table rows scanned.
_CELL_COST = 60.0
_MODULES: dict[str, Any] = {}


def _module(name: str) -> Any:
    """The skysolve submodule ``name``, imported on first use and then looked up cheaply.

    Building or loading a database needs neither the solver nor numba (nor
    their memory), so they are imported only when a solve or a compiled cone
    query first asks for them.
    """
    module = _MODULES.get(name)
    if module is None:
        module = _MODULES[name] = importlib.import_module(f"{__package__}.{name}")
    return module


def _kernels() -> Any:
    """:mod:`skysolve._compiled`, imported on first use."""
    return _module("_compiled")


class SolverDatabase:
    """Star table and pattern index for lost-in-space solving.

    Build one with :meth:`generate_from_hipparcos`, :meth:`generate_from_gaia`
    or :meth:`generate_from_catalog`, save it with :meth:`save_to_file` and load
    it back with :meth:`load_from_file`. Solve with :meth:`solve_from_centroids`
    and fit camera models with :meth:`calibrate_camera`.

    A database is immutable once built and safe to share between threads.
    """

    def __init__(self, star_ids: NDArray, star_ra_deg: NDArray, star_dec_deg: NDArray,
                 star_mag: NDArray, pattern_stars: NDArray, pattern_keys: NDArray,
                 parameters: dict[str, Any]):
        self._star_ids = star_ids
        self._star_ra = star_ra_deg
        self._star_dec = star_dec_deg
        self._star_mag = star_mag
        self._pattern_stars = pattern_stars
        self._pattern_keys = pattern_keys
        self._parameters = dict(parameters)
        self._validate()

    # -- generation -------------------------------------------------------------------
    @classmethod
    def generate_from_catalog(cls, catalog: Catalog | str | os.PathLike, max_fov_deg: float = 30.0,
                              min_fov_deg: float | None = None,
                              star_max_magnitude: float | None = None,
                              pattern_max_error: float = 0.001,
                              lattice_field_oversampling: float = 100,
                              patterns_per_lattice_field: int = 50,
                              verification_stars_per_fov: int = 150,
                              multiscale_step: float = 1.5,
                              epoch_proper_motion_year: float | None = 2025.0,
                              progress: bool | None = None) -> SolverDatabase:
        """Build a database from any :class:`~skysolve.catalogs.Catalog` or CSV file.

        Parameters
        ----------
        catalog : Catalog or path-like
            The stars (a CSV path is read with :func:`~skysolve.catalogs.load_catalog_csv`).
        max_fov_deg : float
            Largest horizontal field of view to solve, degrees.
        min_fov_deg : float, optional
            Smallest field of view; below ``max_fov_deg`` the database holds
            patterns for every scale ``max_fov_deg / multiscale_step**i`` down to
            it. Default: ``max_fov_deg``.
        star_max_magnitude : float, optional
            Faintest star kept. Default: as faint as needed for
            ``verification_stars_per_fov`` stars in an average ``min_fov_deg`` field.
        pattern_max_error : float
            Largest edge-ratio error a pattern match tolerates; sets the key
            quantisation (``round(0.25 / pattern_max_error)`` bins per ratio).
        lattice_field_oversampling : float
            Pattern fields per field-of-view area over the sky.
        patterns_per_lattice_field : int
            Patterns built from the brightest stars of each field.
        verification_stars_per_fov : int
            Average stars per ``min_fov_deg`` field kept for verification.
        multiscale_step : float
            Ratio between consecutive field-of-view scales (> 1).
        epoch_proper_motion_year : float or None
            Julian year the star positions are propagated to; None keeps the
            catalog epoch.
        progress : bool or None
            Progress bar on stderr; None shows it only on a terminal.

        Returns
        -------
        SolverDatabase
        """
        if isinstance(catalog, (str, os.PathLike)):
            catalog = load_catalog_csv(catalog)
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError(
                f"catalog must be a skysolve Catalog or a CSV path, got {type(catalog).__name__}")
        max_fov = _check_positive("max_fov_deg", max_fov_deg)
        min_fov = _check_positive("min_fov_deg", min_fov_deg, allow_none=True) or max_fov
        if max_fov >= 180.0:
            raise InvalidArgumentError(f"max_fov_deg must be below 180, got {max_fov}")
        if min_fov > max_fov:
            raise InvalidArgumentError(
                f"min_fov_deg ({min_fov}) must not exceed max_fov_deg ({max_fov})")
        err = _check_positive("pattern_max_error", pattern_max_error)
        if err >= 0.25:
            raise InvalidArgumentError(f"pattern_max_error must be below 0.25, got {err}")
        oversampling = _check_positive("lattice_field_oversampling", lattice_field_oversampling)
        ppf = _check_positive("patterns_per_lattice_field", patterns_per_lattice_field,
                              integer=True)
        vspf = _check_positive("verification_stars_per_fov", verification_stars_per_fov,
                               integer=True)
        step = _check_positive("multiscale_step", multiscale_step)
        if step <= 1.0:
            raise InvalidArgumentError(f"multiscale_step must be above 1, got {step}")
        for name, value in (("star_max_magnitude", star_max_magnitude),
                            ("epoch_proper_motion_year", epoch_proper_motion_year)):
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, (int, float, np.integer, np.floating))):
                raise InvalidTypeError(f"{name} must be a number or None, got "
                                       f"{type(value).__name__}")
            if value is not None and not math.isfinite(value):
                raise InvalidArgumentError(f"{name} must be finite or None, got {value!r}")
        if len(catalog) < 4:
            raise InvalidArgumentError("catalog must hold at least 4 stars")

        if epoch_proper_motion_year is not None:
            catalog = catalog.propagate(float(epoch_proper_motion_year))
        catalog = catalog.sorted_by_magnitude()
        if star_max_magnitude is not None:
            catalog = catalog.brighter_than(float(star_max_magnitude))
        # stars for vspf per average square min_fov field
        n_keep = int(math.ceil(vspf * 4.0 * math.pi / math.radians(min_fov) ** 2))
        if n_keep < len(catalog):
            catalog = catalog.select(np.arange(n_keep))
        if len(catalog) < 4:
            raise InvalidArgumentError("fewer than 4 catalog stars pass star_max_magnitude")

        bins = _patterns.bins_for_error(err)
        scales = _patterns.fov_scales(max_fov, min_fov, step)
        pset = _patterns.generate_patterns(catalog.vectors(), scales, oversampling, ppf, bins,
                                           progress=progress)
        params = {
            "format_version": DATABASE_FORMAT_VERSION,
            "catalog": catalog.name,
            "num_stars": len(catalog),
            "num_patterns": int(len(pset.keys)),
            "max_fov_deg": max_fov,
            "min_fov_deg": min_fov,
            "fov_scales_deg": scales,
            "star_max_magnitude": float(catalog.mag.max()),
            "pattern_max_error": err,
            "pattern_bins": bins,
            "separation_fraction": _patterns.SEPARATION_FRACTION,
            "field_radius_fraction": _patterns.FIELD_RADIUS_FRACTION,
            "lattice_field_oversampling": oversampling,
            "patterns_per_lattice_field": ppf,
            "verification_stars_per_fov": vspf,
            "multiscale_step": step,
            "epoch_proper_motion_year": catalog.epoch,
        }
        return cls(catalog.ids.astype(np.int64), catalog.ra_deg.astype(np.float64),
                   catalog.dec_deg.astype(np.float64), catalog.mag.astype(np.float32),
                   pset.stars, pset.keys, params)

    @classmethod
    def generate_from_hipparcos(cls, catalog_path: str | os.PathLike | None = None,
                                max_fov_deg: float = 30.0, min_fov_deg: float | None = None,
                                star_max_magnitude: float | None = None,
                                pattern_max_error: float = 0.001,
                                lattice_field_oversampling: float = 100,
                                patterns_per_lattice_field: int = 50,
                                verification_stars_per_fov: int = 150,
                                multiscale_step: float = 1.5,
                                epoch_proper_motion_year: float | None = 2025.0,
                                progress: bool | None = None) -> SolverDatabase:
        """Build a database from Hipparcos 2 (``hip2.dat``; default: the bundled copy).

        Star ids are HIP numbers and magnitudes Hp. The other parameters are
        those of :meth:`generate_from_catalog`.
        """
        return cls.generate_from_catalog(load_hipparcos(catalog_path), **_generation_args(locals()))

    @classmethod
    def generate_from_gaia(cls, catalog_path: str | os.PathLike | None = None,
                           max_fov_deg: float = 30.0, min_fov_deg: float | None = None,
                           star_max_magnitude: float | None = None,
                           pattern_max_error: float = 0.001,
                           lattice_field_oversampling: float = 100,
                           patterns_per_lattice_field: int = 50,
                           verification_stars_per_fov: int = 150,
                           multiscale_step: float = 1.5,
                           epoch_proper_motion_year: float | None = 2025.0,
                           progress: bool | None = None) -> SolverDatabase:
        """Build a database from the merged Gaia DR3 binary (default: the bundled copy).

        Ids are Gaia source ids (negative: Hipparcos gap-fill stars), magnitudes G.
        The other parameters are those of :meth:`generate_from_catalog`.
        """
        return cls.generate_from_catalog(load_gaia(catalog_path), **_generation_args(locals()))

    # -- properties ---------------------------------------------------------------------
    @property
    def num_stars(self) -> int:
        """Number of stars in the star table."""
        return int(self._star_ids.size)

    @property
    def num_patterns(self) -> int:
        """Number of distinct 4-star patterns."""
        return int(self._pattern_keys.size)

    @property
    def max_fov_deg(self) -> float:
        """Largest field of view (degrees) the database was built for."""
        return float(self._parameters["max_fov_deg"])

    @property
    def min_fov_deg(self) -> float:
        """Smallest field of view (degrees) the database was built for."""
        return float(self._parameters["min_fov_deg"])

    @property
    def parameters(self) -> dict[str, Any]:
        """The generation parameters (a copy)."""
        return dict(self._parameters)

    @property
    def pattern_bins(self) -> int:
        """Quantisation bins per edge ratio."""
        return int(self._parameters["pattern_bins"])

    @property
    def star_ids(self) -> NDArray[np.int64]:
        """Catalog ids of the star table (brightest first, read-only)."""
        return self._star_ids

    @property
    def star_magnitudes(self) -> NDArray[np.float32]:
        """Magnitudes of the star table (read-only)."""
        return self._star_mag

    @property
    def pattern_stars(self) -> NDArray[np.uint32]:
        """``(num_patterns, 4)`` star-table indices of each pattern, canonical order."""
        return self._pattern_stars

    @property
    def pattern_keys(self) -> NDArray:
        """Sorted quantised keys, one per pattern."""
        return self._pattern_keys

    @cached_property
    def star_vectors(self) -> NDArray[np.float64]:
        """ICRS unit vectors ``(num_stars, 3)`` of the star table."""
        v = radec_to_vector(self._star_ra, self._star_dec)
        v.setflags(write=False)
        return v

    @cached_property
    def star_xyz(self) -> NDArray[np.float64]:
        """Star-table unit vectors stored component-major, shape ``(3, num_stars)``."""
        v = np.ascontiguousarray(self.star_vectors.T)
        v.setflags(write=False)
        return v

    def _cone_stars(self, centre: NDArray[np.float64], radius_rad: float,
                    count: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """:meth:`brightest_in_cone` with the stars' vectors, through the compiled kernels.

        The table is brightest first, so a scan in table order can stop at the
        count-th star in the cone, after about ``count / cone_fraction`` rows;
        sky cells touch only rows near the cone but cost more per cell. The
        cheaper is taken; a scan that runs long (a sparse cone) hands over.
        """
        radius = min(radius_rad, math.pi)
        chord = 2.0 * math.sin(0.5 * radius) * (1 + 1e-12)  # as the KD-tree query
        min_dot = 1.0 - 0.5 * chord * chord
        cone_fraction = max(0.5 * (1.0 - math.cos(radius)), 1e-12)
        x, y, z = np.asarray(centre, dtype=np.float64).tolist()
        norm = math.sqrt(x * x + y * y + z * z)
        x, y, z = x / norm, y / norm, z / norm
        scan_rows = 1.5 * count / cone_fraction
        cells = self._sky_cells
        if _CELL_COST * (2.0 * radius / cells[-1] + 2.0) ** 2 > scan_rows:
            idx, v, scanned = _kernels().cone_scan(self.star_vectors, x, y, z, min_dot, count,
                                                  int(4 * scan_rows) + 1000)
            if len(idx) == count or scanned == self.num_stars:
                return idx, v
        return _kernels().cone_query(*cells, math.atan2(y, x) % (2 * math.pi),
                                    math.asin(max(-1.0, min(1.0, z))), radius, x, y, z,
                                    min_dot, count, int(scan_rows) + 64)

    @cached_property
    def _sky_cells(self) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp],
                                  NDArray[np.intp], NDArray[np.intp], float]:
        """Star-table rows grouped by sky cell, for the compiled cone query.

        Declination bands of height ``h`` (a fifth of the smallest field of view)
        split into RA cells of about ``h`` wide. Returns ``(vectors, members,
        starts, band_first, band_cells, h_rad)``: rows of cell ``k`` are
        ``members[starts[k]:starts[k + 1]]`` (ascending, i.e. brightest first)
        and ``vectors`` their unit vectors in the same order (a cell's stars
        are then adjacent in memory); band ``b`` holds cells
        ``band_first[b]:band_first[b] + band_cells[b]``.
        """
        h = math.radians(min(5.0, max(0.1, self.min_fov_deg / 5.0)))
        n_bands = max(1, math.ceil(math.pi / h))
        h = math.pi / n_bands
        centres = -0.5 * math.pi + (np.arange(n_bands) + 0.5) * h
        band_cells = np.maximum(1, np.round(2 * math.pi * np.cos(centres) / h)).astype(np.intp)
        band_first = np.concatenate([[0], np.cumsum(band_cells)]).astype(np.intp)
        dec = np.radians(np.asarray(self._star_dec, dtype=np.float64))
        ra = np.radians(np.asarray(self._star_ra, dtype=np.float64)) % (2 * math.pi)
        band = np.clip(((dec + 0.5 * math.pi) / h).astype(np.intp), 0, n_bands - 1)
        n_ra = band_cells[band]
        col = np.minimum((ra / (2 * math.pi) * n_ra).astype(np.intp), n_ra - 1)
        cell = band_first[band] + col
        members = np.argsort(cell, kind="stable").astype(np.intp)  # rows stay ascending
        starts = np.searchsorted(cell[members], np.arange(band_first[-1] + 1)).astype(np.intp)
        return self.star_vectors[members], members, starts, band_first, band_cells, h

    @cached_property
    def key_directory(self) -> tuple[NDArray[np.int64], int]:
        """Index into :attr:`pattern_keys` by the keys' leading bits: ``(starts, shift)``.

        Keys ``k`` with ``k >> shift == b`` occupy rows ``starts[b]:starts[b + 1]``,
        so a lookup searches a handful of rows instead of the whole table (the
        compiled solver path uses it; one bucket per pattern or so).
        """
        keys = self._pattern_keys
        space_bits = max(1, (self.pattern_bins ** 5 - 1).bit_length())
        bucket_bits = min(space_bits, max(1, (len(keys) - 1).bit_length()))
        shift = space_bits - bucket_bits
        # the keys are sorted, so bucket counts accumulate into the start of each bucket
        counts = np.bincount((keys >> keys.dtype.type(shift)).astype(np.intp),
                             minlength=1 << bucket_bits)
        starts = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        starts.setflags(write=False)
        return starts, shift

    @cached_property
    def _tree(self):
        from scipy.spatial import cKDTree

        # sliding-midpoint trees build ~2x faster and query as fast on sky vectors
        return cKDTree(self.star_vectors, balanced_tree=False, compact_nodes=False)

    @cached_property
    def _layers(self) -> list[tuple[int, Any]]:
        """KD-trees over the brightest n/4**k stars (smallest first), built on demand."""
        sizes = []
        n = self.num_stars
        while n > 2000:
            n //= 4
            sizes.append(n)
        return [(size, None) for size in reversed(sizes)]

    def brightest_in_cone(self, centre: NDArray[np.float64], radius_rad: float,
                          count: int) -> NDArray[np.intp]:
        """Star-table indices of the ``count`` brightest stars within a cone.

        Parameters
        ----------
        centre : ndarray, shape ``(3,)``
            Unit vector of the cone axis (ICRS).
        radius_rad : float
            Cone radius, radians.
        count : int
            How many stars are wanted (fewer are returned when the cone holds fewer).

        Returns
        -------
        ndarray of intp
            Indices in increasing order, i.e. brightest first.

        Notes
        -----
        The star table is sorted brightest first, so the brightest ``count``
        stars of a cone lie among the first ``m`` stars of the table whenever the
        first ``m`` already put ``count`` stars in the cone. With the compiled
        kernels (see :mod:`skysolve._compiled`) the query scans the table in
        that order, or visits sky cells near the cone, whichever is cheaper;
        without them, KD-trees over the brightest ``n/4**k`` stars answer most
        queries from a small tree. Both give the same stars.
        """
        from scipy.spatial import cKDTree

        if count > 0 and _kernels().enabled():
            return self._cone_stars(centre, radius_rad, count)[0]
        chord = angle_to_chord(min(radius_rad, math.pi)) * (1 + 1e-12)
        cone_fraction = 0.5 * (1.0 - math.cos(min(radius_rad, math.pi)))
        layers = self._layers
        for k, (size, tree) in enumerate(layers):
            # skip layers too small to hold `count` stars in an average cone
            if size * cone_fraction < 1.5 * count:
                continue
            if tree is None:
                tree = cKDTree(self.star_vectors[:size], balanced_tree=False,
                               compact_nodes=False)
                layers[k] = (size, tree)
            idx = tree.query_ball_point(centre, chord)
            if len(idx) >= count:
                idx = np.sort(np.asarray(idx, dtype=np.intp))
                return idx[:count]
        idx = np.sort(np.asarray(self._tree.query_ball_point(centre, chord), dtype=np.intp))
        return idx[:count]

    @cached_property
    def _id_order(self) -> NDArray[np.intp]:
        return np.argsort(self._star_ids, kind="stable")

    def __repr__(self) -> str:
        p = self._parameters
        fov = (f"{p['max_fov_deg']:g}" if p["min_fov_deg"] == p["max_fov_deg"]
               else f"{p['min_fov_deg']:g}-{p['max_fov_deg']:g}")
        return (f"SolverDatabase(catalog={p.get('catalog')!r}, fov_deg={fov}, "
                f"stars={self.num_stars}, patterns={self.num_patterns})")

    # -- star queries -------------------------------------------------------------------
    def get_star(self, index: int) -> CatalogStar:
        """The star at ``index`` of the star table (0-based, brightest first).

        Raises
        ------
        IndexError
            If ``index`` is outside ``[-num_stars, num_stars)``.
        """
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidTypeError(f"index must be an integer, got {type(index).__name__}")
        n = self.num_stars
        if not -n <= index < n:
            raise IndexError(f"star index {index} out of range for {n} stars")
        i = int(index) % n
        return CatalogStar(int(self._star_ids[i]), float(self._star_ra[i]),
                           float(self._star_dec[i]), float(self._star_mag[i]))

    def index_of_id(self, catalog_id: int) -> int | None:
        """Star-table index of a catalog id, or None if the id is absent."""
        order = self._id_order
        pos = int(np.searchsorted(self._star_ids, catalog_id, sorter=order))
        if pos < len(order) and self._star_ids[order[pos]] == catalog_id:
            return int(order[pos])
        return None

    def get_star_by_id(self, catalog_id: int) -> CatalogStar | None:
        """The star with this catalog id (HIP number, Gaia id, ...), or None."""
        if isinstance(catalog_id, bool) or not isinstance(catalog_id, (int, np.integer)):
            raise InvalidTypeError(
                f"catalog_id must be an integer, got {type(catalog_id).__name__}")
        i = self.index_of_id(int(catalog_id))
        return None if i is None else self.get_star(i)

    def cone_indices(self, ra_deg: float, dec_deg: float, radius_deg: float) -> NDArray[np.intp]:
        """Star-table indices within ``radius_deg`` of a position, brightest first."""
        for name, v in (("ra_deg", ra_deg), ("dec_deg", dec_deg), ("radius_deg", radius_deg)):
            if not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise InvalidArgumentError(f"{name} must be a finite number, got {v!r}")
        if not -90.0 <= dec_deg <= 90.0:
            raise InvalidArgumentError(f"dec_deg must lie in [-90, 90], got {dec_deg}")
        if radius_deg < 0:
            raise InvalidArgumentError(f"radius_deg must not be negative, got {radius_deg}")
        centre = radec_to_vector(ra_deg, dec_deg)
        chord = angle_to_chord(math.radians(min(radius_deg, 180.0)))
        idx = np.asarray(self._tree.query_ball_point(centre, chord * (1 + 1e-12)), dtype=np.intp)
        return np.sort(idx)

    def cone_search(self, ra_deg: float, dec_deg: float, radius_deg: float) -> list[CatalogStar]:
        """Stars within ``radius_deg`` of (``ra_deg``, ``dec_deg``), brightest first."""
        return [self.get_star(int(i)) for i in self.cone_indices(ra_deg, dec_deg, radius_deg)]

    # -- pattern lookup -----------------------------------------------------------------
    def lookup_keys(self, keys: NDArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Pattern rows whose key equals each query key.

        Returns
        -------
        rows : ndarray of intp
            Indices into :attr:`pattern_stars`.
        owner : ndarray of intp
            For each row, the index of the query key that found it.
        """
        keys = np.asarray(keys).astype(self._pattern_keys.dtype, copy=False)
        lo = np.searchsorted(self._pattern_keys, keys, side="left")
        hi = np.searchsorted(self._pattern_keys, keys, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.intp)
        owner = np.repeat(np.arange(len(keys)), counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        rows = starts + np.arange(total)
        return rows.astype(np.intp), owner

    # -- solving and calibration ----------------------------------------------------------
    def solve_from_centroids(self, centroids, fov_estimate_deg=None, fov_estimate_rad=None,
                             image_width=None, image_height=None, image_shape=None,
                             fov_max_error_deg=None, fov_max_error_rad=None, match_radius=0.01,
                             match_threshold=1e-5, solve_timeout_ms=5000, match_max_error=None,
                             refine_iterations=2, camera_model=None, observer_velocity_km_s=None,
                             attitude_hint=None, hint_uncertainty_deg=None,
                             hint_uncertainty_rad=None, strict_hint=False):
        """Solve for the camera attitude from star centroids.

        See :func:`skysolve.solver.solve_from_centroids` for the parameters;
        returns a :class:`~skysolve.solver.SolveResult` (truthy) or a
        :class:`~skysolve.solver.SolveFailure` (falsy).
        """
        return _module("solver").solve_from_centroids(
            self, centroids, fov_estimate_deg=fov_estimate_deg,
            fov_estimate_rad=fov_estimate_rad, image_width=image_width,
            image_height=image_height, image_shape=image_shape,
            fov_max_error_deg=fov_max_error_deg, fov_max_error_rad=fov_max_error_rad,
            match_radius=match_radius, match_threshold=match_threshold,
            solve_timeout_ms=solve_timeout_ms, match_max_error=match_max_error,
            refine_iterations=refine_iterations, camera_model=camera_model,
            observer_velocity_km_s=observer_velocity_km_s, attitude_hint=attitude_hint,
            hint_uncertainty_deg=hint_uncertainty_deg, hint_uncertainty_rad=hint_uncertainty_rad,
            strict_hint=strict_hint)

    def calibrate_camera(self, solve_results, centroids, image_width=None, image_height=None,
                         image_shape=None, model="polynomial", order=4, max_iterations=10,
                         sigma_clip=3.0, convergence_threshold_px=0.01):
        """Fit one shared camera model from solved images.

        See :func:`skysolve.calibration.calibrate_camera`.
        """
        from .calibration import calibrate_camera

        return calibrate_camera(
            self, solve_results, centroids, image_width=image_width, image_height=image_height,
            image_shape=image_shape, model=model, order=order, max_iterations=max_iterations,
            sigma_clip=sigma_clip, convergence_threshold_px=convergence_threshold_px)

    # -- validation and files -----------------------------------------------------------
    def _arrays(self) -> dict[str, NDArray]:
        return {"star_ids": self._star_ids, "star_ra_deg": self._star_ra,
                "star_dec_deg": self._star_dec, "star_mag": self._star_mag,
                "pattern_stars": self._pattern_stars, "pattern_keys": self._pattern_keys}

    def _validate(self) -> None:
        """Check array shapes and consistency; raise FileFormatError when broken."""
        n = self._star_ids.shape[0] if self._star_ids.ndim == 1 else -1
        problems = []
        if n < 4:
            problems.append("star table must hold at least 4 one-dimensional rows")
        for name in ("star_ra_deg", "star_dec_deg", "star_mag"):
            if self._arrays()[name].shape != (n,):
                problems.append(f"{name} has shape {self._arrays()[name].shape}, expected ({n},)")
        m = self._pattern_keys.shape[0] if self._pattern_keys.ndim == 1 else -1
        if self._pattern_stars.shape != (m, 4):
            problems.append(f"pattern_stars has shape {self._pattern_stars.shape}, "
                            f"expected ({m}, 4)")
        required = {"max_fov_deg", "min_fov_deg", "pattern_bins", "pattern_max_error"}
        missing = required - set(self._parameters)
        if missing:
            problems.append(f"parameters lack {sorted(missing)}")
        if not problems:
            if m and int(self._pattern_stars.max()) >= n:
                problems.append("pattern star indices point outside the star table")
            if m > 1 and np.any(self._pattern_keys[1:] < self._pattern_keys[:-1]):
                problems.append("pattern keys are not sorted")
            if not (np.all(np.isfinite(self._star_ra)) and np.all(np.isfinite(self._star_dec))
                    and np.all(np.abs(self._star_dec) <= 90.0)):
                problems.append("star positions are not finite sky coordinates")
        if problems:
            raise FileFormatError("invalid SolverDatabase: " + "; ".join(problems))
        for a in self._arrays().values():
            if a.flags.writeable:
                a.setflags(write=False)

    def save_to_file(self, path: str | os.PathLike) -> None:
        """Write the database to ``path`` (atomically: a temporary file, then a rename).

        The format is ``b"SKYSOLVE-DB\\0"``, a u32 format version, a u32 header
        length, the u32 CRC-32 of the header, a JSON header (parameters and, per
        array, dtype, shape, offset and CRC-32), then the arrays, each aligned to
        64 bytes.
        """
        path = _file_path(path)
        if path.is_dir():
            raise IsADirectoryError(f"path is a directory, not a file: {path}")
        arrays = {k: np.ascontiguousarray(v) for k, v in self._arrays().items()}
        descr = {}
        offset = 0
        for name, a in arrays.items():
            offset = -(-offset // _ALIGN) * _ALIGN
            descr[name] = {"dtype": a.dtype.newbyteorder("<").str, "shape": list(a.shape),
                           "offset": offset, "crc32": zlib.crc32(a.data) & 0xFFFFFFFF}
            offset += a.nbytes
        header = json.dumps({"parameters": self._parameters, "arrays": descr,
                             "data_bytes": offset}).encode()
        start = -(-(_PREAMBLE.size + len(header)) // _ALIGN) * _ALIGN
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(_PREAMBLE.pack(_MAGIC, DATABASE_FORMAT_VERSION, len(header),
                                        zlib.crc32(header) & 0xFFFFFFFF))
                fh.write(header)
                pos = _PREAMBLE.size + len(header)
                for name, a in arrays.items():
                    target = start + descr[name]["offset"]
                    fh.write(b"\0" * (target - pos))
                    fh.write(a.astype(a.dtype.newbyteorder("<"), copy=False).data)
                    pos = target + a.nbytes
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load_from_file(cls, path: str | os.PathLike, mmap: bool = False,
                       verify: bool = True) -> SolverDatabase:
        """Read a database written by :meth:`save_to_file`.

        Parameters
        ----------
        path : path-like
        mmap : bool
            Memory-map the arrays instead of reading them (fast start, shared
            pages between processes).
        verify : bool
            Check the CRC-32 of every array (recommended; ~0.1 s per 100 MB).

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        FileFormatError
            If the file is not a skysolve database, is of another format
            version, or is truncated or corrupted.
        """
        path = _file_path(path)
        if not path.is_file():
            raise FileNotFoundError(f"database file not found: {path}")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            pre = fh.read(_PREAMBLE.size)
            if len(pre) < _PREAMBLE.size:
                raise FileFormatError(f"{path} is too short to be a skysolve database")
            magic, version, hlen, header_crc = _PREAMBLE.unpack(pre)
            if magic != _MAGIC:
                raise FileFormatError(f"{path} is not a skysolve database (bad magic number)")
            if version != DATABASE_FORMAT_VERSION:
                raise FileFormatError(
                    f"{path} is a skysolve database of format version {version}; this "
                    f"skysolve reads version {DATABASE_FORMAT_VERSION}: regenerate it")
            if hlen > 1 << 24:
                raise FileFormatError(f"{path}: header length {hlen} is impossible (corrupted)")
            if _PREAMBLE.size + hlen > size:
                raise FileFormatError(f"{path} is truncated: {size} bytes, shorter than its "
                                      f"{_PREAMBLE.size + hlen}-byte header")
            raw = fh.read(hlen)
        if zlib.crc32(raw) & 0xFFFFFFFF != header_crc:
            raise FileFormatError(f"{path}: checksum mismatch in the header (file corrupted)")
        try:
            header = json.loads(raw.decode("utf-8"))
            params = header["parameters"]
            descr = header["arrays"]
            data_bytes = int(header["data_bytes"])
            if not isinstance(params, dict) or set(descr) != set(_ARRAY_NAMES):
                raise ValueError("unexpected header layout")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            raise FileFormatError(f"{path}: corrupted header ({exc})") from None
        start = -(-(_PREAMBLE.size + hlen) // _ALIGN) * _ALIGN
        if size < start + data_bytes:
            raise FileFormatError(
                f"{path} is truncated: {size} bytes, expected {start + data_bytes}")
        arrays = {}
        for name in _ARRAY_NAMES:
            d = descr[name]
            try:
                dtype = np.dtype(d["dtype"])
                shape = tuple(int(s) for s in d["shape"])
                offset = int(d["offset"])
                if dtype.kind not in "iuf" or any(s < 0 for s in shape) or offset < 0:
                    raise ValueError("bad dtype/shape")
                nbytes = dtype.itemsize * math.prod(shape)
                crc = int(d["crc32"])
                if offset + nbytes > data_bytes:
                    raise ValueError("array exceeds the data section")
            except (ValueError, KeyError, TypeError) as exc:
                raise FileFormatError(f"{path}: corrupted description of {name} ({exc})") from None
            count = math.prod(shape)
            if mmap:
                a = np.memmap(path, dtype=dtype, mode="r", offset=start + offset, shape=shape)
            else:
                a = np.fromfile(path, dtype=dtype, count=count, offset=start + offset)
                a = a.reshape(shape)
            if verify and (zlib.crc32(np.ascontiguousarray(a).data) & 0xFFFFFFFF) != crc:
                raise FileFormatError(f"{path}: checksum mismatch in {name} (file corrupted)")
            arrays[name] = a
        return cls(**arrays, parameters=params)

    def to_bytes(self) -> bytes:
        """The database in its file format, as bytes."""
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "db.bin"
            self.save_to_file(p)
            return p.read_bytes()

    def __getstate__(self) -> dict[str, Any]:
        state = {k: np.asarray(v) for k, v in self._arrays().items()}
        state["parameters"] = self._parameters
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        params = state.pop("parameters")
        SolverDatabase.__init__(self, **{k: np.array(v) for k, v in state.items()},
                                parameters=params)
