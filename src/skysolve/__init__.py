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

The public names below are imported lazily so that ``import skysolve`` (and the
command line) start fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "SkysolveError": "errors",
    "InvalidArgumentError": "errors",
    "InvalidTypeError": "errors",
    "FileFormatError": "errors",
    "Catalog": "catalogs",
    "CatalogStar": "catalogs",
    "load_hipparcos": "catalogs",
    "load_gaia": "catalogs",
    "load_catalog_csv": "catalogs",
    "SolverDatabase": "database",
    "Centroid": "extraction",
    "ExtractionResult": "extraction",
    "extract_centroids": "extraction",
    "CameraModel": "camera",
    "RadialDistortion": "distortion",
    "PolynomialDistortion": "distortion",
    "camera_to_wcs": "wcs",
    "wcs_to_camera": "wcs",
    "wcs_to_header": "wcs",
    "SolveResult": "solver",
    "SolveFailure": "solver",
    "earth_barycentric_velocity": "aberration",
    "CalibrateResult": "calibration",
    "read_image": "imageio",
    "render_starfield": "simulate",
    "simulate_centroids": "simulate",
    "random_attitudes": "simulate",
    "GaussianPSF": "simulate",
    "default_database": "defaultdb",
    "plot_solution": "plotting",
    "plot_residuals": "plotting",
    "plot_distortion": "plotting",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'skysolve' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for static analysers only
    from .aberration import earth_barycentric_velocity
    from .calibration import CalibrateResult
    from .camera import CameraModel
    from .catalogs import Catalog, CatalogStar, load_catalog_csv, load_gaia, load_hipparcos
    from .database import SolverDatabase
    from .defaultdb import default_database
    from .distortion import PolynomialDistortion, RadialDistortion
    from .errors import FileFormatError, InvalidArgumentError, InvalidTypeError, SkysolveError
    from .extraction import Centroid, ExtractionResult, extract_centroids
    from .imageio import read_image
    from .plotting import plot_distortion, plot_residuals, plot_solution
    from .simulate import GaussianPSF, random_attitudes, render_starfield, simulate_centroids
    from .solver import SolveFailure, SolveResult
    from .wcs import camera_to_wcs, wcs_to_camera, wcs_to_header
