"""The distribution: a wheel builds from the source tree with the declared build backend
and carries what users and type checkers need (LICENSE, py.typed, both commands, data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_builds_and_carries_license_types_and_commands(tmp_path):
    pytest.importorskip("setuptools", minversion="77")
    src = tmp_path / "src_tree"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.egg-info"))
    out = tmp_path / "wheels"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("skysolve-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        meta = z.read(f"{dist}/METADATA").decode()
        entry = z.read(f"{dist}/entry_points.txt").decode()
    assert "skysolve/py.typed" in names
    assert f"{dist}/licenses/LICENSE" in names
    assert "License-Expression: MIT" in meta
    assert "Classifier: Typing :: Typed" in meta
    assert "Requires-Python: >=3.11" in meta
    assert "skysolve = skysolve.cli:main" in entry
    assert "skysolve-field = skysolve.cli.solve_field:main" in entry
    assert any(n.startswith("skysolve/tests/data/") and n.endswith(".tiff") for n in names)
