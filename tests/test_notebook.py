"""examples/multi_image_calibration.ipynb runs on the demo's frames with skysolve.

The notebook is the seed notebook with only its import line and data paths
changed. Its code cells are executed in order, in one namespace, from a
temporary ``examples/`` directory next to a ``demo_output/`` holding the ten
demo frames. IPython is stubbed when it is not installed (the results table is
captured instead of displayed); plotly is not a skysolve dependency, so when it
(or IPython) is missing its imports are stubbed and the final plotly
visualisation cell is skipped (every other cell, including the four solve-and-calibrate passes, runs
for real).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tesswcs")

from skysolve import demo  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "multi_image_calibration.ipynb"


def _code_cells() -> list[str]:
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def test_notebook_differs_from_the_seed_only_in_import_and_paths():
    cells = _code_cells()
    first = cells[0]
    assert "import skysolve as t3rs" in first
    assert "tetra3rs" not in "".join(cells)
    assert 'f"../demo_output/tess_same_ccd/sector{s:02d}_cam1_ccd1.fits"' in first
    # the seed's calls are all there, unchanged
    body = "".join(cells)
    for call in ("t3rs.SolverDatabase.generate_from_hipparcos(", "t3rs.extract_centroids(",
                 "solver.solve_from_centroids(", "solver.calibrate_camera(",
                 "t3rs.earth_barycentric_velocity(tmid)", "sigma_threshold=300",
                 "patterns_per_lattice_field=500", "(0.002, 10, 6, 0.5)"):
        assert call in body


def _stub_modules(monkeypatch) -> dict[str, list]:
    """Stand-ins for IPython.display and plotly when they are not installed."""
    shown: dict[str, list] = {"html": []}
    if importlib.util.find_spec("IPython") is None:
        ipython = types.ModuleType("IPython")
        display_mod = types.ModuleType("IPython.display")

        class HTML:
            def __init__(self, data: str):
                self.data = data

        def display(obj):
            shown["html"].append(getattr(obj, "data", obj))

        display_mod.HTML = HTML
        display_mod.display = display
        ipython.display = display_mod
        monkeypatch.setitem(sys.modules, "IPython", ipython)
        monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    if importlib.util.find_spec("plotly") is None:
        plotly = types.ModuleType("plotly")
        for name in ("graph_objects", "express", "io", "subplots"):
            sub = types.ModuleType(f"plotly.{name}")
            setattr(plotly, name, sub)
            monkeypatch.setitem(sys.modules, f"plotly.{name}", sub)
        plotly.io.renderers = types.SimpleNamespace(default=None)
        monkeypatch.setitem(sys.modules, "plotly", plotly)
    return shown


@pytest.fixture(scope="module")
def frames_root(tmp_path_factory) -> Path:
    # shared with tests/test_demo.py's end-to-end test: the frames are rendered once
    root = tmp_path_factory.getbasetemp() / "demo_shared"
    demo.ensure_frames(root / "demo_output", demo.DEFAULT_SECTORS, progress=False)
    (root / "examples").mkdir(exist_ok=True)
    return root


def _run_notebook(root: Path, monkeypatch) -> tuple[dict, dict, list]:
    """Execute the notebook's code cells from ``root/examples``; (namespace, shown, ran)."""
    # plotly's "notebook" renderer needs the real IPython to show the figure
    have_plotly = (importlib.util.find_spec("plotly") is not None
                   and importlib.util.find_spec("IPython") is not None)
    shown = _stub_modules(monkeypatch)
    monkeypatch.chdir(root / "examples")
    ns: dict = {"__name__": "__main__"}
    ran = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k, source in enumerate(_code_cells()):
            if "make_subplots" in source and not have_plotly:
                continue
            exec(compile(source, f"{NOTEBOOK.name}[code cell {k}]", "exec"), ns)
            ran.append(k)
    return ns, shown, ran


def _grid_error_arcsec(pixel_to_radec, truth, n: int = 9) -> np.ndarray:
    """Separation (") over an n x n grid of the 2048x2048 science area (pixel edges to
    edges) between a mapping of science pixels (0-based col, row) and the frame's true WCS
    (full-frame pixels, science columns from 44)."""
    from skysolve.geometry import angle_between, radec_to_vector

    cols, rows = np.meshgrid(np.linspace(-0.5, 2047.5, n), np.linspace(-0.5, 2047.5, n))
    cols, rows = cols.ravel(), rows.ravel()
    ra1, dec1 = pixel_to_radec(cols, rows)
    ra2, dec2 = truth.all_pix2world(cols + 44, rows, 0)
    return np.degrees(angle_between(radec_to_vector(ra1, dec1),
                                    radec_to_vector(ra2, dec2))) * 3600.0


@pytest.mark.slow
def test_notebook_runs_the_seed_pipeline(frames_root, monkeypatch):
    ns, shown, ran = _run_notebook(frames_root, monkeypatch)
    assert ran[:5] == [0, 1, 2, 3, 4]

    sectors = ns["sectors"]
    resarr, cenarr, cal = ns["resarr"], ns["cenarr"], ns["cal"]
    # every frame solved in the last pass, with hundreds of matches and sub-3" residuals
    assert len(resarr) == len(sectors) == 10
    assert all(bool(r) for r in resarr)
    assert all(r.num_matches >= 150 for r in resarr)
    assert max(r.rmse_arcsec for r in resarr) < 3.0
    assert all(len(c) > 1000 for c in cenarr)
    # the shared camera of the last calibration fits every matched star to ~0.02 px
    assert cal.rmse_after_px < 0.05
    assert cal.n_inliers > 2000
    assert abs(ns["camera_model"].fov_deg - 11.65) < 0.1

    # the results table lists every sector with its number of matches
    if shown["html"]:
        table = shown["html"][-1]
        rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", table)
        assert [int(s) for s, _ in rows] == sectors
        assert [int(n) for _, n in rows] == [r.num_matches for r in resarr]

    # the solved centre matches the header WCS at the same point of the image:
    # centred (0, 0) is the corner between science columns/rows 1023 and 1024,
    # i.e. 0-based full-frame pixel (1067.5, 1023.5)
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    for fname, res in zip(ns["fnames"], resarr, strict=True):
        with fits.open(fname) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(hdul[1].header)
        truth = wcs.pixel_to_world(1067.5, 1023.5)
        ra, dec = res.pixel_to_world(0, 0)
        sep = truth.separation(SkyCoord(ra, dec, unit="deg")).arcsec
        assert sep < 1.0
    assert np.isfinite(ns["arcsec_per_px"]) and abs(ns["arcsec_per_px"] - 20.5) < 0.5


@pytest.mark.slow
def test_per_frame_scales_through_the_notebook_and_the_cli(tmp_path_factory, monkeypatch):
    """Frames whose true mappings differ in plate scale by up to 2e-4 (velocity aberration's
    size): every frame's mapping within 0.3" (median) and 1.0" (max) of the truth over a
    9x9 grid -- through the seed notebook's own calls and through ``skysolve calibrate``."""
    import subprocess
    import sys

    from astropy.io import fits
    from astropy.wcs import WCS

    root = tmp_path_factory.mktemp("scale_frames")
    demo.ensure_frames(root / "demo_output", demo.DEFAULT_SECTORS, plate_scale_jitter=1e-4,
                       progress=False)
    (root / "examples").mkdir()
    scales = [demo.sector_scale(s, 1e-4) for s in demo.DEFAULT_SECTORS]
    assert max(scales) - min(scales) > 1.5e-4
    ns, _, _ = _run_notebook(root, monkeypatch)
    files = [Path(f).resolve() for f in ns["fnames"]]
    truths = []
    for fname in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            truths.append(WCS(fits.getheader(fname, 1)))
    for res, truth in zip(ns["resarr"], truths, strict=True):
        # the seed's own results: each frame's solution with the fitted camera
        err = _grid_error_arcsec(lambda c, r, res=res: res.pixel_to_world(c + 0.5 - 1024,
                                                                          r + 0.5 - 1024),
                                 truth)
        assert np.median(err) <= 0.3 and err.max() <= 1.0
    # the calibration reports each frame's plate scale: it follows the truth's
    cal = ns["cal"]
    fitted = np.array(cal.per_image_scale)
    truth_rel = 1.0 / np.array(scales)  # a larger WCS scale is a shorter focal length
    np.testing.assert_allclose(fitted / fitted.mean(), truth_rel / truth_rel.mean(), atol=1e-5)

    # the command line, writing every frame's calibrated mapping as a TAN-SIP header
    ns["solver"].save_to_file(root / "seed.db")  # the notebook's database
    cam = root / "cli" / "camera.json"
    proc = subprocess.run(
        [sys.executable, "-m", "skysolve", "calibrate", *map(str, files), "--hdu", "1",
         "--section", "[:2048, 44:2092]", "--sigma", "300", "--min-pixels", "4",
         "--bg-block", "16", "--max-elongation", "6", "--fov", "11.8", "--fov-error", "0.5",
         "--order", "6", "--db", str(root / "seed.db"),
         "--no-aberration", "--write-wcs", "-o", str(cam), "--quiet"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for fname, truth in zip(files, truths, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(fits.getheader(fname.with_suffix(".wcs")))
        err = _grid_error_arcsec(lambda c, r, wcs=wcs: wcs.all_pix2world(c + 44, r, 0), truth)
        assert np.median(err) <= 0.3 and err.max() <= 1.0
