"""Regenerate the tutorial's figure: run the example notebook (as ``make test`` does, in
a Jupyter kernel on the demo frames) and draw its final plotly figure of matched stars
as a static picture (plotly's own image export needs a browser engine, and the
interactive HTML weighs 11 MB).

    .venv/bin/python docs/make_figures.py        # writes docs/_static/seed_matched_stars.png

Every panel is drawn from the figure's own traces: the downsampled image each panel
shows, the catalog stars (cyan crosses) and the centroid ellipses (yellow), in the
figure's layout of 5 rows by 2 columns. The demo frames are rendered first if missing.
"""

from __future__ import annotations

import base64
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "seed_matched_stars.png"


def _values(v):
    """Trace coordinates as an array (plotly stores arrays as base64 ``bdata``)."""
    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v, dtype=float)


def draw(fig_json: str, out: Path) -> None:
    """Draw a plotly figure's image and scatter traces with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.io as pio
    from PIL import Image

    fig = pio.from_json(fig_json)
    titles = [a.text for a in fig.layout.annotations]
    figure, axes = plt.subplots(5, 2, figsize=(7.0, 17.5))
    panels = {}
    for trace in fig.data:
        key = (trace.xaxis or "x", trace.yaxis or "y")
        panels.setdefault(key, []).append(trace)
    for ax, traces, title in zip(axes.ravel(), panels.values(), titles, strict=False):
        for t in traces:
            if t.type == "image":
                png = base64.b64decode(t.source.split(",", 1)[1])
                ax.imshow(Image.open(io.BytesIO(png)).convert("L"), cmap="gray")
            elif t.mode == "markers":
                ax.plot(_values(t.x), _values(t.y), "+", color="cyan", markersize=2.5,
                        markeredgewidth=0.4)
            else:
                ax.plot(_values(t.x), _values(t.y), color="yellow", linewidth=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(fig.layout.title.text)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_notebook import execute_notebook

    from skysolve import demo

    demo.ensure_frames(ROOT / "demo_output", demo.DEFAULT_SECTORS)
    (ROOT / "examples").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "figure.json"
        execute_notebook(ROOT / "examples", extra=f"\nfig.write_json({str(dump)!r})\n")
        draw(dump.read_text(), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
