"""``skysolve db``: build and inspect solver databases."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .common import _err, _error_text, _info, _jsonable, _refuse_existing
from .parser import EXIT_OK, EXIT_USAGE


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
    print(f"stars:        {info['num_stars']}")
    print(f"patterns:     {info['num_patterns']}")
    print(f"fov range:    {info['min_fov_deg']:g} - {info['max_fov_deg']:g} deg")
    for key, value in sorted(info["parameters"].items()):
        if isinstance(value, list):
            value = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        print(f"  {key + ':':<28}{value}")


def _cmd_db_build(args: argparse.Namespace) -> int:
    if args.min_fov is not None and args.max_fov is not None and args.min_fov > args.max_fov:
        _err(f"--min-fov {args.min_fov:g} is above --max-fov {args.max_fov:g}")
        return EXIT_USAGE
    if args.overwrite and not args.output:
        _err("--overwrite replaces an -o file: without -o the database goes into the cache")
        return EXIT_USAGE
    params: dict[str, Any] = {}
    if args.pattern_max_error is not None:
        params["pattern_max_error"] = args.pattern_max_error
    if args.epoch is not None:
        params["epoch_proper_motion_year"] = args.epoch
    t0 = time.perf_counter()
    progress = False if args.quiet else None
    if args.output and Path(args.output).is_dir():
        # (--overwrite cannot replace a directory: the save failed after the build)
        raise IsADirectoryError(f"-o {args.output}: a directory, not a database file")
    if args.output and not args.overwrite:  # (a database takes minutes to make)
        _refuse_existing(f"-o {args.output}", [Path(args.output)])
    if args.output:
        from ..database import SolverDatabase
        from ..defaultdb import _resolve_request

        name, cat_file, full = _resolve_request(args.max_fov, args.min_fov, args.catalog, params)
        generate = (SolverDatabase.generate_from_gaia if name == "gaia"
                    else SolverDatabase.generate_from_hipparcos)
        _info(args, f"building a {name} database for {full['min_fov_deg']:g}-"
                    f"{full['max_fov_deg']:g} deg")
        db = generate(catalog_path=cat_file, progress=progress, **full)
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        db.save_to_file(path)
    else:
        from ..defaultdb import default_database, default_database_path

        path = default_database_path(args.max_fov, args.min_fov, args.catalog, **params)
        existed = path.is_file()
        db = default_database(args.max_fov, args.min_fov, args.catalog, progress=progress,
                              **params)
        if existed:
            _info(args, "already built")
    _info(args, f"done in {time.perf_counter() - t0:.1f} s")
    _print_summary(_db_summary(db, path))
    return EXIT_OK


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


