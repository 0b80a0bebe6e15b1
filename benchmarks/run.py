"""Run skysolve's benchmarks against the peer libraries, side by side.

Every ``benchmarks/bench_*.py`` module defines ``run(quick: bool) -> list[dict]``.
Each dict describes one comparison on identical inputs, measured in this one
process run::

    {"benchmark": "database generation (Gaia, seed parameters)",
     "peer": "tetra3rs",
     "skysolve_s": 8.1, "peer_s": 9.0,          # wall times (median of repeats)
     "ratio": 0.9,                              # skysolve / peer; < 1 is faster
     ...any further figures (memory, sizes, accuracy)...}

Ratios, not absolute times, are the figures to quote: machines are shared and noisy.
A module that sets ``DEFAULT = False`` (``bench_allsky``) runs only when ``--only`` names it.

Usage::

    python benchmarks/run.py [--quick] [--only NAME] [--out results.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats")
    parser.add_argument("--only", action="append", default=[],
                        help="run only benchmarks whose file name contains this (repeatable)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    # the solver's and the extractor's kernels in numba's disk cache first, as an
    # installation has them once its first background compilation has run:
    # backend='auto' (and extraction) then use the compiled kernels
    from skysolve.extraction.kernels import warm_up as warm_up_extraction
    from skysolve.solver.warmup import warm_up

    warm_up()
    warm_up_extraction()
    rows: list[dict] = []
    for path in sorted(HERE.glob("bench_*.py")):
        if args.only and not any(s in path.stem for s in args.only):
            continue
        t0 = time.perf_counter()
        module = _load(path)
        # (a module with DEFAULT = False, e.g. bench_allsky's ~10 minutes of rendered
        # images, runs only when --only names it)
        if not args.only and not getattr(module, "DEFAULT", True):
            continue
        print(f"== {path.stem}", flush=True)
        for row in module.run(quick=args.quick):
            row.setdefault("module", path.stem)
            rows.append(row)
            extras = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()
                               if k not in {"benchmark", "peer", "ratio", "module"})
            print(f"  {row['benchmark']:<55} vs {row.get('peer', '-'):<12} "
                  f"ratio {_fmt(row.get('ratio', float('nan')))}   ({extras})", flush=True)
        print(f"   ({time.perf_counter() - t0:.0f} s)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": sys.version.split()[0], "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "quick": args.quick}
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2, default=float))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
