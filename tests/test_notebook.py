"""examples/multi_image_calibration.ipynb runs on the demo's frames, in a Jupyter kernel.

The notebook is the seed notebook with only its import line and data paths
changed. nbclient executes every cell for real, in order, in a fresh IPython
kernel started from a temporary ``examples/`` directory next to a
``demo_output/`` holding ten demo frames -- the results table is
displayed as HTML and the final plotly figure of matched stars is built and
shown. One extra cell, appended to the in-memory copy only, hands the
notebook's results back to the test as JSON (and saves the figure when asked,
see ``docs/make_figures.py``). The checks share one run (a minute of CPU), on
frames whose plate scales differ as real TESS frames' do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tesswcs")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("plotly")
pytest.importorskip("ipykernel")

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


#: Appended to the executed copy: the notebook's results as one JSON line.
_REPORT = """
import json as _json
_report = {
    "sectors": list(sectors),
    "solved": [bool(r) for r in resarr],
    "num_matches": [int(r.num_matches) for r in resarr],
    "rmse_arcsec": [float(r.rmse_arcsec) for r in resarr],
    "centre_radec": [list(r.pixel_to_world(0, 0)) for r in resarr],
    "n_centroids": [len(c) for c in cenarr],
    "cal_rmse_after_px": float(cal.rmse_after_px),
    "cal_n_inliers": int(cal.n_inliers),
    "fov_deg": float(camera_model.fov_deg),
    "arcsec_per_px": float(arcsec_per_px),
    "fnames": list(fnames),
    "figure_traces": len(fig.data),
}
print("REPORT " + _json.dumps(_report))
"""


def execute_notebook(workdir: Path, extra: str = "") -> nbformat.NotebookNode:
    """The executed notebook (run from ``workdir``), with the report cell appended."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_REPORT + extra))
    NotebookClient(nb, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def _report(nb) -> dict:
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    line = next(s for s in text.splitlines() if s.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])


#: The frames' plate-scale jitter: each frame's true mapping differs in scale by up to
#: 2e-4 from the others', velocity aberration's size (1e-4: ~2" at the CCD's corners).
SCALE_JITTER = 1e-4


@pytest.fixture(scope="module")
def notebook_run(tmp_path_factory):
    """``(root, executed notebook)``: the notebook run once, in ``root/examples``, on ten
    demo frames whose plate scales differ (:data:`SCALE_JITTER`), with both report
    cells."""
    root = tmp_path_factory.mktemp("scale_frames")
    demo.ensure_frames(root / "demo_output", demo.DEFAULT_SECTORS,
                       plate_scale_jitter=SCALE_JITTER, progress=False)
    (root / "examples").mkdir()
    return root, execute_notebook(root / "examples", _GRID_REPORT)


@pytest.mark.slow
def test_notebook_runs_every_cell_in_a_kernel(notebook_run):
    """Every cell runs, with the seed's printed passes, results table and figure, and
    its solutions and calibration as the frames' truth has them; then the per-frame
    scales' checks on the same run (one run: a minute of CPU)."""
    frames_root, nb = notebook_run
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)  # every cell ran
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    rep = _report(nb)
    sectors = rep["sectors"]
    # every frame solved in the last pass, with hundreds of matches and sub-3" residuals
    assert len(sectors) == 10 and all(rep["solved"])
    assert all(n >= 150 for n in rep["num_matches"])
    assert max(rep["rmse_arcsec"]) < 3.0
    assert all(n > 1000 for n in rep["n_centroids"])
    # the shared camera of the last calibration fits every matched star to ~0.02 px
    assert rep["cal_rmse_after_px"] < 0.05 and rep["cal_n_inliers"] > 2000
    assert abs(rep["fov_deg"] - 11.65) < 0.1
    assert abs(rep["arcsec_per_px"] - 20.5) < 0.5
    # the printed passes and the results table (displayed as HTML, one row per sector)
    printed = "".join(o.get("text", "") for c in code for o in c.outputs
                      if o.output_type == "stream")
    assert len(re.findall(r"Pass \d: 10/10 solved", printed)) == 4
    html = [o["data"]["text/html"] for c in code for o in c.outputs
            if o.output_type == "display_data" and "text/html" in o.get("data", {})]
    rows = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td>", html[0])
    assert [int(s) for s, _ in rows] == sectors
    assert [int(n) for _, n in rows] == rep["num_matches"]
    # the final plotly figure was built and shown: 10 image panels, their markers, ellipses
    shown = [o for o in code[-2].outputs if o.output_type in ("display_data",
                                                               "execute_result")]
    assert shown and any("plotly" in json.dumps(o.get("data", {})) for o in shown)
    assert rep["figure_traces"] > 10 * 2 + sum(rep["num_matches"]) // 2
    # the solved centre matches the header WCS at the same point of the image:
    # centred (0, 0) is the corner between science columns/rows 1023 and 1024,
    # i.e. 0-based full-frame pixel (1067.5, 1023.5)
    import warnings

    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    for fname, (ra, dec) in zip(rep["fnames"], rep["centre_radec"], strict=True):
        with fits.open(frames_root / "examples" / fname) as hdul, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(hdul[1].header)
        truth = wcs.pixel_to_world(1067.5, 1023.5)
        assert truth.separation(SkyCoord(ra, dec, unit="deg")).arcsec < 1.0
    assert np.isfinite(rep["arcsec_per_px"])
    _check_per_frame_scales(notebook_run)


def _grid_error_arcsec(radec, truth, n: int = 9) -> np.ndarray:
    """Separation (") over the n x n grid of :data:`_GRID` between sky positions ``radec``
    (``(ra, dec)`` arrays, degrees) and the frame's true WCS (full-frame pixels, science
    columns from 44)."""
    from skysolve.geometry import angle_between, radec_to_vector

    cols, rows = _grid(n)
    ra2, dec2 = truth.all_pix2world(cols + 44, rows, 0)
    return np.degrees(angle_between(radec_to_vector(*radec),
                                    radec_to_vector(ra2, dec2))) * 3600.0


def _grid(n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of the 2048x2048 science area, pixel edges to edges (0-based col, row)."""
    cols, rows = np.meshgrid(np.linspace(-0.5, 2047.5, n), np.linspace(-0.5, 2047.5, n))
    return cols.ravel(), rows.ravel()


#: Appended to the per-frame-scale run: each frame's solution over the grid (centred
#: pixels of the science area) and the calibration's per-image scales; the notebook's
#: database saved for the command line.
_GRID_REPORT = """
import numpy as _np
_c, _r = _np.meshgrid(_np.linspace(-0.5, 2047.5, 9), _np.linspace(-0.5, 2047.5, 9))
_grid_radec = [[list(map(float, a)) for a in r.pixel_to_world(_c.ravel() + 0.5 - 1024,
                                                             _r.ravel() + 0.5 - 1024)]
               for r in resarr]
solver.save_to_file("../seed.db")
print("GRID " + _json.dumps({"radec": _grid_radec,
                             "scales": [float(s) for s in cal.per_image_scale]}))
"""


def _check_per_frame_scales(notebook_run) -> None:
    """Frames whose true mappings differ in plate scale by up to 2e-4 (velocity aberration's
    size): every frame's mapping within 0.3" (median) and 1.0" (max) of the truth over a
    9x9 grid -- through the seed notebook's own calls and through ``skysolve calibrate``."""
    import subprocess
    import sys
    import warnings

    from astropy.io import fits
    from astropy.wcs import WCS

    root, nb = notebook_run
    scales = [demo.sector_scale(s, SCALE_JITTER) for s in demo.DEFAULT_SECTORS]
    assert max(scales) - min(scales) > 1.5e-4
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    grid = json.loads(next(s for s in text.splitlines() if s.startswith("GRID "))[5:])
    files = [(root / "examples" / f).resolve() for f in _report(nb)["fnames"]]
    truths = []
    for fname in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            truths.append(WCS(fits.getheader(fname, 1)))
    for radec, truth in zip(grid["radec"], truths, strict=True):
        # the seed's own results: each frame's solution with the fitted camera
        err = _grid_error_arcsec(radec, truth)
        assert np.median(err) <= 0.3 and err.max() <= 1.0
    # the calibration reports each frame's plate scale: it follows the truth's
    fitted = np.array(grid["scales"])
    truth_rel = 1.0 / np.array(scales)  # a larger WCS scale is a shorter focal length
    np.testing.assert_allclose(fitted / fitted.mean(), truth_rel / truth_rel.mean(), atol=1e-5)

    # the command line, writing every frame's calibrated mapping as a TAN-SIP header
    db = root / "seed.db"  # the notebook's database, saved by _GRID_REPORT
    cam = root / "cli" / "camera.json"
    proc = subprocess.run(
        [sys.executable, "-m", "skysolve", "calibrate", *map(str, files), "--hdu", "1",
         "--section", "[:2048, 44:2092]", "--sigma", "300", "--min-pixels", "4",
         "--bg-block", "16", "--max-elongation", "6", "--fov", "11.8", "--fov-error", "0.5",
         "--order", "6", "--db", str(db),
         "--no-aberration", "--write-wcs", "-o", str(cam), "--quiet"],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cols, rows = _grid()
    for fname, truth in zip(files, truths, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(fits.getheader(fname.with_suffix(".wcs")))
        err = _grid_error_arcsec(wcs.all_pix2world(cols + 44, rows, 0), truth)
        assert np.median(err) <= 0.3 and err.max() <= 1.0
