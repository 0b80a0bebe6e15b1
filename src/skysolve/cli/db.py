"""``skysolve db``: build and inspect solver databases."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .._options import named
from .common import _err, _error_text, _info, _jsonable, _refuse_existing
from .parser import BUILD_FLAGS, EXIT_OK, EXIT_USAGE


def _db_summary(db, path: Path | None) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if path is not None:
        info["file"] = str(path)
        info["file_size_bytes"] = path.stat().st_size
    info.update(num_stars=db.num_stars, num_patterns=db.num_patterns,
                min_fov_deg=db.min_fov_deg, max_fov_deg=db.max_fov_deg)
    info["parameters"] = db.parameters
    return _jsonable(info)


def _print_summary(info: dict[str, Any]) -> None:
    if "file" in info:
        print(f"file:         {info['file']} ({info['file_size_bytes'] / 1e6:.1f} MB)")
    params = info["parameters"]
    source = params.get("catalog_file")
    epoch = params.get("catalog_epoch")
    print(f"catalog:      {params.get('catalog', '?')}"
          + (f" ({source})" if source else "")
          + (f", positions at J{epoch:g}" if isinstance(epoch, float | int) else ""))
    print(f"stars:        {info['num_stars']}"
          + (f" of {params['catalog_stars']}" if "catalog_stars" in params else ""))
    print(f"patterns:     {info['num_patterns']}")
    print(f"fov range:    {info['min_fov_deg']:g} - {info['max_fov_deg']:g} deg")
    for key, value in sorted(params.items()):
        if isinstance(value, list):
            value = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        print(f"  {key + ':':<28}{value}")


#: The build parameters passed apart from the others (given as they are): the field of
#: view, from which the default database's parameters are resolved.
_FOV = ("min_fov_deg", "max_fov_deg")


def _build_from_file(args: argparse.Namespace, params: dict[str, Any],
                     progress: bool | None):
    """The database of ``--catalog-file``, with the default database's field of view
    and pattern tolerance unless given (as for the bundled catalogs)."""
    from ..database import SolverDatabase
    from ..defaultdb import _full_parameters
    from ..sky.catalogs import load_catalog

    full = _full_parameters(args.max_fov_deg, args.min_fov_deg, params)
    catalog = load_catalog(args.catalog_file, epoch=args.catalog_epoch,
                           format=args.catalog_format)
    _info(args, f"building a database of {args.catalog_file} ({len(catalog)} stars) for "
                f"{full['min_fov_deg']:g}-{full['max_fov_deg']:g} deg")
    return SolverDatabase.generate_from_catalog(catalog, progress=progress, **full)


def _cmd_db_build(args: argparse.Namespace) -> int:
    lo, hi = args.min_fov_deg, args.max_fov_deg
    if lo is not None and hi is not None and lo > hi:
        _err(f"{BUILD_FLAGS['min_fov_deg']} {lo:g} is above {BUILD_FLAGS['max_fov_deg']} {hi:g}")
        return EXIT_USAGE
    if args.overwrite and not args.output:
        _err("--overwrite replaces an -o file: without -o the database goes into the cache")
        return EXIT_USAGE
    if args.catalog_file is None:
        for flag, value in (("--catalog-epoch", args.catalog_epoch),
                            ("--catalog-format", args.catalog_format)):
            if value is not None:
                _err(f"{flag} describes a --catalog-file: the bundled catalogs know theirs")
                return EXIT_USAGE
    elif not args.output:
        # (the cache holds the bundled catalogs' databases, which solve uses by default;
        # one of your catalog is used through --db FILE)
        _err("--catalog-file needs -o FILE: the database of your catalog goes into a file "
             "(use it with --db FILE or SKYSOLVE_DB)")
        return EXIT_USAGE
    params: dict[str, Any] = {name: getattr(args, name) for name in BUILD_FLAGS
                              if name not in _FOV and getattr(args, name) is not None}
    t0 = time.perf_counter()
    progress = False if args.quiet else None
    if args.output and Path(args.output).is_dir():
        # (--overwrite cannot replace a directory: the save failed after the build)
        raise IsADirectoryError(f"-o {args.output}: a directory, not a database file")
    if args.output and not args.overwrite:  # (a database takes minutes to make)
        _refuse_existing(f"-o {args.output}", [Path(args.output)])
    # (the library's advice during the build names the flags the user gave, not the
    # parameters: a sparse catalog's warning says --max-magnitude, not star_max_magnitude)
    with named(BUILD_FLAGS):
        db, path = _build(args, params, progress)
    _info(args, f"done in {time.perf_counter() - t0:.1f} s")
    _print_summary(_db_summary(db, path))
    return EXIT_OK


def _build(args: argparse.Namespace, params: dict[str, Any], progress: bool | None):
    """The database ``skysolve db build`` asks for, saved, and its file: ``(db, path)``."""
    lo, hi = args.min_fov_deg, args.max_fov_deg
    if args.catalog_file is not None:
        db = _build_from_file(args, params, progress)
    elif args.output:
        from ..database import SolverDatabase
        from ..defaultdb import _resolve_request

        name, cat_file, full = _resolve_request(hi, lo, args.catalog, params)
        generate = (SolverDatabase.generate_from_gaia if name == "gaia"
                    else SolverDatabase.generate_from_hipparcos)
        _info(args, f"building a {name} database for {full['min_fov_deg']:g}-"
                    f"{full['max_fov_deg']:g} deg")
        db = generate(catalog_path=cat_file, progress=progress, **full)
    else:
        from ..defaultdb import default_database, default_database_path

        path = default_database_path(hi, lo, args.catalog, **params)
        existed = path.is_file()
        db = default_database(hi, lo, args.catalog, progress=progress, **params)
        if existed:
            _info(args, "already built")
        return db, path
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    db.save_to_file(path)
    return db, path


def _cmd_db_info(args: argparse.Namespace) -> int:
    from ..database import SolverDatabase
    from ..errors import SkysolveError

    if args.path:
        path = Path(args.path)
        info = _db_summary(SolverDatabase.load_from_file(path, mmap=True, verify=True), path)
        if args.json:
            print(json.dumps(info))
        else:
            _print_summary(info)
        return EXIT_OK
    from ..defaultdb import cache_directory, default_database_path

    cache = cache_directory()
    default = default_database_path()
    cached = []
    for f in sorted(cache.glob("*.db")) if cache.is_dir() else []:
        try:
            cached.append(_db_summary(SolverDatabase.load_from_file(f, mmap=True, verify=False),
                                      f))
        except (SkysolveError, OSError, ValueError) as exc:
            cached.append({"file": str(f), "error": _error_text(exc)})
    if args.json:
        print(json.dumps({"cache_directory": str(cache), "default_database": str(default),
                          "default_database_built": default.is_file(), "cached": cached}))
        return EXIT_OK
    print(f"cache directory:  {cache}  (set {'SKYSOLVE_CACHE'} to change)")
    state = "built" if default.is_file() else "not built yet (skysolve db build)"
    print(f"default database: {default.name}  [{state}]")
    if not cached:
        print("no cached databases")
    for info in cached:
        if "error" in info:
            print(f"  {Path(info['file']).name}: unreadable ({info['error']})")
            continue
        p = info["parameters"]
        print(f"  {Path(info['file']).name}: {p.get('catalog', '?')}, "
              f"{info['min_fov_deg']:g}-{info['max_fov_deg']:g} deg, {info['num_stars']} stars, "
              f"{info['num_patterns']} patterns, {info['file_size_bytes'] / 1e6:.1f} MB")
    return EXIT_OK


