"""Regenerate the tutorial's figure: run the example notebook (as ``make test`` does, in
a Jupyter kernel on the demo frames) and save its final plotly figure of matched stars.

    .venv/bin/python docs/make_figures.py        # writes docs/_static/seed_matched_stars.html

The demo frames are rendered first if missing (``skysolve demo``'s ``demo_output/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "seed_matched_stars.html"


def main() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_notebook import execute_notebook

    from skysolve import demo

    demo.ensure_frames(ROOT / "demo_output", demo.DEFAULT_SECTORS)
    (ROOT / "examples").mkdir(exist_ok=True)
    save = (f"\nfig.write_html({str(OUT)!r}, include_plotlyjs='cdn', full_html=True)\n")
    execute_notebook(ROOT / "examples", extra=save)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
