"""The documentation site builds with Sphinx without a single warning (as ``make docs``).

Its examples run as doctests elsewhere in the suite (pytest collects ``docs/*.rst``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_the_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b",
                           "html", "-d", str(tmp_path / "doctrees"), str(DOCS),
                           str(tmp_path / "html")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    html = tmp_path / "html"
    for page in ("index", "quickstart", "conventions", "tutorial", "astropy", "hints",
                 "solve_field", "projections", "batch", "calibration", "api"):
        assert (html / f"{page}.html").exists(), page
    api = (html / "api.html").read_text(encoding="utf-8")
    # API pages come from the numpydoc docstrings, generated parameters included
    for name in ("solve_image", "position_hint", "solve_from_centroids", "extract_centroids",
                 "to_table", "CameraModel"):
        assert name in api, name
    assert (html / "_static" / "solution_wcsaxes.png").exists()
