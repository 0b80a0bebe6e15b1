"""skysolve: lost-in-space star plate solving and star-camera calibration.

Typical use::

    import skysolve
    db = skysolve.SolverDatabase.generate_from_hipparcos(max_fov_deg=20)
    ext = skysolve.extract_centroids(image)
    res = db.solve_from_centroids(ext.centroids, fov_estimate_deg=11.4,
                                  image_shape=image.shape)
    if res:
        print(res.ra_deg, res.dec_deg, res.roll_deg)
        wcs = res.to_wcs()

The package follows the flow of the data, one subpackage per stage::

    io.images → extraction → centroids → solver (patterns, attitude) → io.wcs
                                                   ↓
                                              calibration (fit, workflow)

with shared helpers below them (``geometry``, ``sky``, ``camera``, ``_args``,
``_options``) and the user-facing layers above (``database``, ``defaultdb``,
``plotting``, ``demo``, ``cli``). ``docs/architecture.md`` describes the map.

The public names below are imported lazily so that ``import skysolve`` (and the
command line) start fast.
"""

from __future__ import annotations

import importlib

# typing.TYPE_CHECKING without importing typing (a few ms of every start-up); type
# checkers treat this name as theirs
TYPE_CHECKING = False

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "SkysolveError": "errors",
    "InvalidArgumentError": "errors",
    "InvalidTypeError": "errors",
    "FileFormatError": "errors",
    "LensModelWarning": "errors",
    "Catalog": "sky.catalogs",
    "CatalogStar": "sky.catalogs",
    "load_hipparcos": "sky.catalogs",
    "load_gaia": "sky.catalogs",
    "load_catalog_csv": "sky.catalogs",
    "load_catalog": "sky.catalogs",
    "earth_barycentric_velocity": "sky.aberration",
    "SolverDatabase": "database",
    "Centroid": "centroids",
    "ExtractionResult": "centroids",
    "extract_centroids": "extraction",
    "extract_centroids_fast": "extraction",
    "CentroidExtractor": "extraction",
    "ExtractionOptions": "extraction.options",
    "CameraModel": "camera.model",
    "RadialDistortion": "camera.distortion",
    "PolynomialDistortion": "camera.distortion",
    "camera_to_wcs": "io.wcs",
    "wcs_to_camera": "io.wcs",
    "wcs_to_header": "io.wcs",
    "read_image": "io.images",
    "SolveOptions": "solver.options",
    "SolveResult": "solver.result",
    "SolveFailure": "solver.result",
    "CalibrationOptions": "calibration.options",
    "CalibrateResult": "calibration.result",
    "CalibrationPass": "calibration.workflow",
    "CalibrationRun": "calibration.workflow",
    "calibrate_frames": "calibration.workflow",
    "SEED_PASSES": "calibration.workflow",
    "solve_many": "batch.solve_many",
    "FrameResult": "batch.results",
    "StarfieldOptions": "simulate",
    "render_starfield": "simulate",
    "simulate_centroids": "simulate",
    "random_attitudes": "simulate",
    "GaussianPSF": "simulate",
    "default_database": "defaultdb",
    "plot_solution": "plotting",
    "plot_residuals": "plotting",
    "plot_distortion": "plotting",
    "plot_distortion_uncertainty": "plotting",
    "reset_log_cache": "_meta",
    "solve_image": "pipeline",
    "ImageData": "imagedata",
}

__all__ = sorted([*_EXPORTS, "__version__", "__git_hash__", "version"])


def __getattr__(name: str) -> Any:
    if name == "__git_hash__":  # the commit of a source checkout (asks git once)
        from ._meta import git_hash

        return git_hash()
    if name == "version":  # importlib.metadata.version, as tetra3rs's module has it; lazily,
        # because importing importlib.metadata takes longer than the rest of the package
        from importlib.metadata import version

        globals()[name] = version
        return version
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skysolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from typing import Any

    from ._meta import reset_log_cache
    from .batch.results import FrameResult
    from .batch.solve_many import solve_many
    from .calibration.options import CalibrationOptions
    from .calibration.result import CalibrateResult
    from .calibration.workflow import SEED_PASSES, CalibrationPass, CalibrationRun, calibrate_frames
    from .camera.distortion import PolynomialDistortion, RadialDistortion
    from .camera.model import CameraModel
    from .centroids import Centroid, ExtractionResult
    from .database import SolverDatabase
    from .defaultdb import default_database
    from .errors import (
        FileFormatError,
        InvalidArgumentError,
        InvalidTypeError,
        LensModelWarning,
        SkysolveError,
    )
    from .extraction import CentroidExtractor, extract_centroids, extract_centroids_fast
    from .extraction.options import ExtractionOptions
    from .imagedata import ImageData
    from .io.images import read_image
    from .io.wcs import camera_to_wcs, wcs_to_camera, wcs_to_header
    from .pipeline import solve_image
    from .plotting import (
        plot_distortion,
        plot_distortion_uncertainty,
        plot_residuals,
        plot_solution,
    )
    from .simulate import (
        GaussianPSF,
        StarfieldOptions,
        random_attitudes,
        render_starfield,
        simulate_centroids,
    )
    from .sky.aberration import earth_barycentric_velocity
    from .sky.catalogs import (
        Catalog,
        CatalogStar,
        load_catalog,
        load_catalog_csv,
        load_gaia,
        load_hipparcos,
    )
    from .solver.options import SolveOptions
    from .solver.result import SolveFailure, SolveResult
