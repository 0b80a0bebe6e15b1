"""``skysolve serve``: the local plate-solving service (see :mod:`skysolve.server`)."""

from __future__ import annotations

import argparse
import sys

from .parser import EXIT_ERROR, EXIT_OK


def _cmd_serve(args: argparse.Namespace) -> int:
    from ..server import missing_extra

    missing = missing_extra()
    if missing:
        print(f"skysolve serve needs the optional extra 'server' ({', '.join(missing)} "
              "missing): pip install \"skysolve[server]\"", file=sys.stderr)
        return EXIT_ERROR
    from ..server import serve
    from ..server.app import ServerConfig

    config = ServerConfig(host=args.host, port=args.port, database=args.db,
                          workers=args.workers, data_dir=args.data_dir, api_key=args.api_key,
                          max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
                          max_queue=args.max_queue,
                          time_limit_s=args.time_limit, cors_origins=args.cors_origin or [],
                          keep_days=args.keep_days)
    def ready() -> None:  # (said once the database is loaded: not before a failed start)
        if not args.quiet:
            print(f"skysolve serve: http://{args.host}:{args.port}/ (data in {args.data_dir}, "
                  f"{args.workers} worker{'s' if args.workers != 1 else ''}; Ctrl-C stops)",
                  file=sys.stderr, flush=True)

    from ..server.store import DataDirInUse

    try:
        serve(config, on_ready=ready)
    except DataDirInUse as exc:
        print(f"skysolve serve: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
