"""``skysolve demo``: the seed notebook's multi-image TESS calibration, end to end.

The demo needs no downloaded data. It

1. renders ten TESS-like camera 1 / CCD 1 full-frame images (sectors 1-6, 13,
   14, 15, 17) in the SPOC FFI layout from the bundled Gaia catalog, through
   each sector's archival TAN-SIP WCS (from the ``tesswcs`` package, so the true
   distortion is TESS's real one; by default with one plate scale and skew for
   all sectors, see :func:`sector_wcs`), and caches them in
   ``<workdir>/tess_same_ccd``;
2. builds (or reloads) the seed's Hipparcos solver database;
3. runs the seed notebook's steps exactly: reads every frame with astropy,
   extracts centroids with the seed's parameters, then four solve-and-calibrate
   passes with tightening match radius and growing distortion order;
4. compares every solved mapping (``SolveResult.to_wcs()``) with the frame's
   true WCS over the whole science area, prints the seed's per-sector table and
   a pass/fail summary, and saves two figures (frames with matched stars, and
   the fitted distortion).

Frame model
-----------
A SPOC calibrated FFI is a primary HDU holding only header keys and an image
extension ``CAMERA.CCD 1.1 cal`` of 2078 rows x 2136 columns in e-/s: the
2048 x 2048 science pixels are ``[:2048, 44:2092]``; 44 serial-overscan
columns on each side and 30 virtual rows at the top carry no light. Here the
collateral pixels hold read noise only (bias and smear are already removed in
a calibrated FFI), and the science pixels are rendered by
:func:`skysolve.simulate.render_starfield`:

* stars: Gaia DR3 (Hipparcos fill-in for the brightest), propagated to the
  frame's mid-time, plus three magnitudes of random fainter stars with the
  field's own density; photometry ``15000 e-/s`` at magnitude 10
  (:data:`ZEROPOINT_MAG`), Gaia G standing in for the TESS magnitude;
* a 30-minute FFI: 1800 s with 80 % onboard cosmic-ray mitigation and 99 %
  duty cycle, i.e. :data:`EXPOSURE_S` = 1425.6 s; read noise of ~10 e- per 2-s
  read co-added over ~713 reads; full well ~2e5 e- per read co-added likewise,
  with charge bleeding along columns; a few hot pixels and residual cosmic
  rays (onboard mitigation removes most);
* PSF sigma 0.85 px at the centre growing to 1.2 px and elongated radially at
  the corners; sky background of tens to ~150 e-/s with a gradient and a
  scattered-light glow, different in every sector;
* no velocity aberration: stars go through the WCS from their catalog
  positions, so the header WCS is exactly the truth the solution is compared
  with (the seed does not correct aberration either).

Everything is seeded by the sector number, so frames are reproducible; a
frame is re-rendered only when missing, invalid (FITS checksums) or made with
other parameters (or with ``--force``).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
from numpy.typing import NDArray

from .errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits
    from astropy.wcs import WCS

    from .catalogs import Catalog
    from .database import SolverDatabase
    from .simulate import StarfieldTruth

__all__ = [
    "DEFAULT_SECTORS",
    "DemoReport",
    "SectorResult",
    "ensure_frames",
    "frame_path",
    "main",
    "render_frame",
    "run_demo",
    "sector_times",
    "sector_wcs",
    "wcs_offset_arcsec",
]

#: TESS sectors of the seed notebook (camera 1, CCD 1).
DEFAULT_SECTORS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 13, 14, 15, 17)
CAMERA = 1
CCD = 1
#: FFI array shape (rows, columns): 2048 science + 30 virtual rows; 44 + 2048 + 44 columns.
FFI_SHAPE = (2078, 2136)
#: Science region of an FFI array: rows ``[0, 2048)``, columns ``[44, 2092)``.
SCIENCE_ROWS = slice(0, 2048)
SCIENCE_COLS = slice(44, 2092)
SCIENCE_SHAPE = (2048, 2048)
SCIENCE_COL0 = 44
#: 30-minute FFI cadence (cycles 1-2), s.
CADENCE_S = 1800.0
#: Effective exposure of a 30-minute FFI: 1800 s x 0.8 (cosmic-ray mitigation) x 0.99.
EXPOSURE_S = 1425.6
#: Magnitude giving 1 e-/s (TESS: ~15000 e-/s at T = 10).
ZEROPOINT_MAG = 20.44
#: Co-added read noise of an FFI, e- (about 10 e- per 2-s read over ~713 reads).
READ_NOISE_E = 270.0
#: Co-added full well, e- (about 2e5 e- per 2-s read over ~713 reads).
FULL_WELL_E = 1.4e8
#: Magnitudes of random faint stars below the catalog limit.
FAINT_STAR_DEPTH_MAG = 3.0
#: Bump when the frame model changes: cached frames of another version are re-rendered.
FRAME_MODEL_VERSION = 2
_SEED_BASE = 20180725  # first day of sector 1

FRAME_DIRNAME = "tess_same_ccd"
DATABASE_FILENAME = "hipparcos_seed.db"

#: The seed's database parameters.
SEED_DATABASE = dict(max_fov_deg=14.0, pattern_max_error=0.005, lattice_field_oversampling=100,
                     patterns_per_lattice_field=500, verification_stars_per_fov=3000,
                     epoch_proper_motion_year=2018)
#: The seed's extraction parameters.
SEED_EXTRACTION = dict(sigma_threshold=300, min_pixels=4, max_pixels=10000,
                       local_bg_block_size=16, max_elongation=6.0)
#: The seed's passes: (match_radius, refine_iterations, distortion_order, fov_error_deg).
SEED_PASSES = [(0.01, 10, 3, 0.5), (0.005, 10, 4, 0.5), (0.003, 10, 5, 0.5),
               (0.002, 10, 6, 0.5)]

#: Targets of the demo (issue 6).
TARGET_RMSE_ARCSEC = 3.0
TARGET_OFFSET_ARCSEC = 2.0

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
_BTJD0 = 2457000.0
_JD_UNIX_EPOCH = 2440587.5


# ------------------------------------------------------------------------------------
# Sector geometry and times


def _check_sector(sector: Any) -> int:
    if isinstance(sector, bool) or not isinstance(sector, int | np.integer) or sector < 1:
        raise InvalidArgumentError(f"sector must be a positive integer, got {sector!r}")
    return int(sector)


def _archival_wcs(sector: int) -> WCS:
    """tesswcs's archival WCS of camera 1 / CCD 1, through a FITS header (plain astropy)."""
    from astropy.wcs import WCS

    try:
        import tesswcs
    except ImportError as exc:
        raise ImportError("the demo frames need tesswcs: pip install skysolve[demo]") from exc
    if sector not in tesswcs.WCS.wcs_dicts:
        raise InvalidArgumentError(
            f"sector {sector} has no archival WCS in tesswcs {tesswcs.__version__}")
    archival = tesswcs.WCS.from_sector(sector, CAMERA, CCD)
    # the base-class header: WCS keys only (tesswcs adds its own bookkeeping keys)
    return _through_header(WCS.to_header(archival, relax=True))


def _through_header(header: Any) -> WCS:
    from astropy.wcs import WCS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header, relax=True)
    wcs.pixel_shape = (FFI_SHAPE[1], FFI_SHAPE[0])
    return wcs


def _polar(m: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``m = Q @ P``: orthogonal ``Q`` (the rotation) and symmetric ``P`` (scale and skew)."""
    u, s, vt = np.linalg.svd(m)
    return u @ vt, vt.T @ np.diag(s) @ vt


@functools.lru_cache(maxsize=1)
def _shared_stretch() -> NDArray[np.float64]:
    """Mean scale-and-skew part of the seed sectors' archival linear terms (deg/px)."""
    return np.mean([_polar(_archival_wcs(s).pixel_scale_matrix)[1] for s in DEFAULT_SECTORS],
                   axis=0)


def sector_wcs(sector: int, *, shared_optics: bool = True) -> WCS:
    """The TAN-SIP WCS of camera 1 / CCD 1 in a sector, as a plain astropy WCS.

    Built offline from the archival WCS in the ``tesswcs`` package and passed
    through a FITS header (so it is exactly what a frame's header holds).
    Full-frame pixel convention: 0-based pixel ``(col, row)`` of the
    2136 x 2078 FFI array, science columns starting at 44.

    Parameters
    ----------
    sector : int
        TESS sector with an archival WCS in ``tesswcs``.
    shared_optics : bool, keyword-only
        True (the demo's default): keep the sector's archival pointing (CRVAL),
        reference pixel, SIP distortion and the rotation of its linear terms,
        but give every sector the same plate scale and skew (the mean over the
        ten seed sectors). The archival per-sector fits differ in scale and
        skew by up to ~1e-4 (2.8" at the corners for sector 14), which one
        shared camera, the premise of multi-image calibration, cannot
        reproduce; this makes every frame see one physical camera. The
        change to a sector's archival mapping is below 3" (0.14 px) anywhere
        on the CCD. False: the archival WCS unchanged.

    Raises
    ------
    InvalidArgumentError
        If ``tesswcs`` has no archival WCS for the sector.
    ImportError
        If ``tesswcs`` is not installed (``pip install skysolve[demo]``).
    """
    sector = _check_sector(sector)
    wcs = _archival_wcs(sector)
    if shared_optics:
        rotation, _ = _polar(wcs.pixel_scale_matrix)
        wcs.wcs.pc = rotation @ _shared_stretch()
        wcs.wcs.cdelt = [1.0, 1.0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = _through_header(wcs.to_header(relax=True))
    return wcs


def sector_times(sector: int) -> tuple[datetime.datetime, datetime.datetime]:
    """Start and end (UTC, naive) of the demo FFI of a sector: the 30 minutes at mid-sector.

    The sector's start and end come from ``tesswcs.pointings``; the FFI is centred
    on their midpoint (the spacecraft's real FFIs tile the sector, so this is an
    actual cadence time to within 15 minutes). TDB/UTC differences (~69 s) are
    ignored.
    """
    sector = _check_sector(sector)
    from tesswcs import pointings

    row = pointings[np.asarray(pointings["Sector"]) == sector]
    if len(row) == 0:
        raise InvalidArgumentError(f"sector {sector} is not in tesswcs.pointings")
    mid_jd = 0.5 * (float(row["Start"][0]) + float(row["End"][0]))
    mid = datetime.datetime(1970, 1, 1) + datetime.timedelta(days=mid_jd - _JD_UNIX_EPOCH)
    mid = mid.replace(microsecond=(mid.microsecond // 1000) * 1000)
    half = datetime.timedelta(seconds=CADENCE_S / 2)
    return mid - half, mid + half


def _jd(t: datetime.datetime) -> float:
    return _JD_UNIX_EPOCH + (t - datetime.datetime(1970, 1, 1)).total_seconds() / 86400.0


def _julian_year(t: datetime.datetime) -> float:
    return 2000.0 + (_jd(t) - 2451545.0) / 365.25


# ------------------------------------------------------------------------------------
# Rendering


def _frame_params(sector: int, faint_star_depth_mag: float,
                  shared_optics: bool) -> dict[str, Any]:
    return {"model": FRAME_MODEL_VERSION, "sector": sector, "camera": CAMERA, "ccd": CCD,
            "faint_star_depth_mag": float(faint_star_depth_mag),
            "shared_optics": bool(shared_optics)}


def _params_tag(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]


def _background_e(rng: np.random.Generator) -> NDArray[np.float64]:
    """Sky of one sector over the exposure (e-): level, gradient and a scattered-light glow."""
    h, w = SCIENCE_SHAPE
    level = rng.uniform(25.0, 110.0)  # e-/s
    angle = rng.uniform(0.0, 2.0 * np.pi)
    slope = rng.uniform(0.15, 0.4) * level / 2048.0  # e-/s per px
    u = (np.arange(w) + 0.5 - 0.5 * w)[None, :]
    v = (np.arange(h) + 0.5 - 0.5 * h)[:, None]
    sky = level + slope * (np.cos(angle) * u + np.sin(angle) * v)
    # Earth / Moon glow entering from one edge
    glow_angle = rng.uniform(0.0, 2.0 * np.pi)
    cx, cy = 1400.0 * np.cos(glow_angle), 1400.0 * np.sin(glow_angle)
    glow = rng.uniform(0.1, 0.6) * level
    sky = sky + glow * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2.0 * 600.0**2))
    return np.maximum(sky, 1.0) * EXPOSURE_S


def render_frame(sector: int, *, catalog: Catalog | None = None,
                 faint_star_depth_mag: float = FAINT_STAR_DEPTH_MAG,
                 shared_optics: bool = True) -> tuple[fits.HDUList, StarfieldTruth]:
    """Render the demo FFI of a sector (camera 1 / CCD 1) in the SPOC layout.

    Parameters
    ----------
    sector : int
        TESS sector with an archival WCS in ``tesswcs``.
    catalog : Catalog, optional
        Stars to render; default the bundled Gaia catalog (``skysolve.load_gaia()``).
        Pass the same object for many frames: its sky index is built once.
    faint_star_depth_mag : float
        Random stars this many magnitudes fainter than the catalog limit (0: none).
    shared_optics : bool
        Render through :func:`sector_wcs` with one plate scale and skew for all
        sectors (default) or through the unchanged archival WCS.

    Returns
    -------
    hdul : astropy.io.fits.HDUList
        Primary HDU (DATE-OBS, DATE-END, TSTART, TSTOP, TELESCOP, INSTRUME,
        SECTOR, CAMERA, CCD, ...) and the image extension ``CAMERA.CCD 1.1 cal``:
        a (2078, 2136) float32 array in e-/s with the WCS in its header.
    truth : StarfieldTruth
        Every rendered star in centred pixel coordinates of the science region
        ``data[:2048, 44:2092]`` (``x = col + 0.5 - 1024``, ``y = row + 0.5 - 1024``).
    """
    from astropy.io import fits

    from .catalogs import load_gaia
    from .simulate import GaussianPSF, render_starfield

    sector = _check_sector(sector)
    depth = float(faint_star_depth_mag)
    if not (np.isfinite(depth) and depth >= 0):
        raise InvalidArgumentError(
            f"faint_star_depth_mag must be >= 0, got {faint_star_depth_mag!r}")
    if catalog is None:
        catalog = load_gaia()
    wcs = sector_wcs(sector, shared_optics=shared_optics)
    t0, t1 = sector_times(sector)
    tmid = t0 + (t1 - t0) / 2
    rng = np.random.default_rng([_SEED_BASE, sector])

    background = _background_e(rng)
    science, truth = render_starfield(
        catalog, wcs=wcs, shape=SCIENCE_SHAPE, pixel_offset=(SCIENCE_COL0, 0),
        epoch_year=_julian_year(tmid), zeropoint_mag=ZEROPOINT_MAG, exposure_s=EXPOSURE_S,
        psf=GaussianPSF(0.85, edge_sigma_px=1.2, edge_ellipticity=0.25),
        background_e=background, read_noise_e=READ_NOISE_E,
        gain_e_per_adu=EXPOSURE_S,  # output in e-/s
        full_well_e=FULL_WELL_E, hot_pixel_fraction=1e-5, cosmic_rays=5,
        faint_star_depth_mag=depth, seed=rng)

    data = rng.normal(0.0, READ_NOISE_E / EXPOSURE_S, FFI_SHAPE).astype(np.float32)
    data[SCIENCE_ROWS, SCIENCE_COLS] = science

    params = _frame_params(sector, depth, shared_optics)
    primary = fits.PrimaryHDU()
    ph = primary.header
    ph["ORIGIN"] = ("skysolve", "simulated by skysolve.demo (not real TESS data)")
    ph["TELESCOP"] = ("TESS", "telescope")
    ph["INSTRUME"] = ("TESS Photometer", "detector type")
    ph["OBJECT"] = (f"Sector {sector} Camera {CAMERA} CCD {CCD}", "")
    ph["SECTOR"] = (sector, "observing sector")
    ph["CAMERA"] = (CAMERA, "camera number")
    ph["CCD"] = (CCD, "CCD chip number")
    ph["TSTART"] = (_jd(t0) - _BTJD0, "observation start time in BTJD")
    ph["TSTOP"] = (_jd(t1) - _BTJD0, "observation stop time in BTJD")
    ph["DATE-OBS"] = (t0.strftime(_TIME_FORMAT)[:-3], "TSTART as UTC calendar date")
    ph["DATE-END"] = (t1.strftime(_TIME_FORMAT)[:-3], "TSTOP as UTC calendar date")
    ph["SIMDATA"] = (True, "simulated frame")
    ph["SSDEMOV"] = (FRAME_MODEL_VERSION, "skysolve demo frame model version")
    ph["SSPARAMS"] = (_params_tag(params), "hash of the frame parameters")
    ph["SSFAINT"] = (depth, "[mag] faint stars below the catalog limit")
    ph["SSEPOCH"] = (_julian_year(tmid), "[yr] epoch of the rendered star positions")
    ph["SSSHARED"] = (bool(shared_optics), "one plate scale and skew for all sectors")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whdr = wcs.to_header(relax=True)
    image = fits.ImageHDU(data=data, name=f"CAMERA.CCD {CAMERA}.{CCD} cal")
    ih = image.header
    ih["TELESCOP"] = "TESS"
    ih["INSTRUME"] = "TESS Photometer"
    ih["CAMERA"] = CAMERA
    ih["CCD"] = CCD
    ih["BUNIT"] = ("electrons/s", "physical units of image data")
    ih["EXPOSURE"] = (EXPOSURE_S / 86400.0, "[d] time on source")
    ih["TELAPSE"] = (CADENCE_S / 86400.0, "[d] TSTOP - TSTART")
    ih["DEADC"] = (EXPOSURE_S / CADENCE_S, "deadtime correction")
    ih["DATE-OBS"] = ph["DATE-OBS"]
    ih["DATE-END"] = ph["DATE-END"]
    for card in whdr.cards:
        if card.keyword not in ("MJDREF", "DATE-OBS", "MJD-OBS"):
            ih[card.keyword] = (card.value, card.comment)
    return fits.HDUList([primary, image]), truth


def frame_path(workdir: str | os.PathLike, sector: int) -> Path:
    """Path of a sector's demo frame: ``<workdir>/tess_same_ccd/sectorNN_cam1_ccd1.fits``."""
    sector = _check_sector(sector)
    return Path(workdir) / FRAME_DIRNAME / f"sector{sector:02d}_cam{CAMERA}_ccd{CCD}.fits"


def _frame_is_valid(path: Path, sector: int, faint_star_depth_mag: float,
                    shared_optics: bool = True) -> bool:
    """A cached frame of this sector and these parameters whose FITS checksums verify."""
    from astropy.io import fits

    if not path.is_file():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False) as hdul:
                if len(hdul) < 2:
                    return False
                tag = _params_tag(_frame_params(sector, faint_star_depth_mag, shared_optics))
                if (hdul[0].header.get("SSPARAMS") != tag
                        or hdul[0].header.get("SECTOR") != sector):
                    return False
                if hdul[1].data is None or hdul[1].data.shape != FFI_SHAPE:
                    return False
                return all(h.verify_checksum() == 1 for h in hdul[:2])
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _write_atomic(hdul: fits.HDUList, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        hdul.writeto(tmp, overwrite=True, checksum=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def ensure_frames(workdir: str | os.PathLike, sectors: Sequence[int] = DEFAULT_SECTORS, *,
                  force: bool = False, faint_star_depth_mag: float = FAINT_STAR_DEPTH_MAG,
                  shared_optics: bool = True,
                  progress: bool | None = None) -> tuple[list[Path], int]:
    """Render the frames of ``sectors`` into ``<workdir>/tess_same_ccd`` unless cached.

    Parameters
    ----------
    workdir : path-like
    sectors : sequence of int
    force : bool
        Re-render even valid cached frames.
    faint_star_depth_mag, shared_optics
        See :func:`render_frame`; cached frames made with other values are re-rendered.
    progress : bool or None
        Progress bar on stderr (None: only on a terminal).

    Returns
    -------
    paths : list of Path
        One frame per sector, in order.
    rendered : int
        How many were (re-)rendered; the others were reused.
    """
    from ._progress import progress_bar

    sectors = [_check_sector(s) for s in sectors]
    paths = [frame_path(workdir, s) for s in sectors]
    todo = [(s, p) for s, p in zip(sectors, paths, strict=True)
            if force or not _frame_is_valid(p, s, faint_star_depth_mag, shared_optics)]
    if todo:
        from .catalogs import load_gaia

        catalog = load_gaia()
        with progress_bar(len(todo), "rendering frames", progress, unit="frame") as bar:
            for sector, path in todo:
                hdul, _ = render_frame(sector, catalog=catalog,
                                       faint_star_depth_mag=faint_star_depth_mag,
                                       shared_optics=shared_optics)
                _write_atomic(hdul, path)
                bar.update(1)
    return paths, len(todo)


# ------------------------------------------------------------------------------------
# Comparison with the truth


def wcs_offset_arcsec(solved: WCS, truth: WCS, *, shape: tuple[int, int] = SCIENCE_SHAPE,
                      truth_offset: tuple[float, float] = (SCIENCE_COL0, 0),
                      n: int = 33) -> tuple[float, float]:
    """Largest and RMS sky separation (arcsec) of two WCS over an image.

    Parameters
    ----------
    solved : astropy.wcs.WCS
        Mapping of the image itself (e.g. ``SolveResult.to_wcs()``: pixel
        ``(0, 0)`` is the centre of the image's first pixel).
    truth : astropy.wcs.WCS
        The true mapping, in a frame where the image starts at 0-based
        ``truth_offset = (col0, row0)`` (TESS FFI header WCS: ``(44, 0)``).
    shape : (int, int)
        Image ``(height, width)``.
    n : int
        Grid points per axis, spanning the image from edge to edge.
    """
    from .geometry import angle_between, radec_to_vector

    h, w = shape
    cols, rows = np.meshgrid(np.linspace(-0.5, w - 0.5, n), np.linspace(-0.5, h - 0.5, n))
    cols, rows = cols.ravel(), rows.ravel()
    ra1, dec1 = solved.all_pix2world(cols, rows, 0)
    ra2, dec2 = truth.all_pix2world(cols + truth_offset[0], rows + truth_offset[1], 0)
    sep = np.degrees(angle_between(radec_to_vector(ra1, dec1),
                                   radec_to_vector(ra2, dec2))) * 3600.0
    return float(np.max(sep)), float(np.sqrt(np.mean(sep**2)))


# ------------------------------------------------------------------------------------
# The pipeline


@dataclass
class SectorResult:
    """Outcome of one sector after the last pass."""

    sector: int
    solved: bool
    num_centroids: int
    num_matches: int = 0
    rmse_arcsec: float = float("nan")
    rmse_px: float = float("nan")
    offset_max_arcsec: float = float("nan")
    offset_rms_arcsec: float = float("nan")
    solve_time_ms: float = float("nan")
    status: str = ""

    @property
    def ok(self) -> bool:
        """Solved, RMSE within target and mapping within target of the truth."""
        return (self.solved and self.rmse_arcsec <= TARGET_RMSE_ARCSEC
                and self.offset_max_arcsec <= TARGET_OFFSET_ARCSEC)


@dataclass
class DemoReport:
    """Everything :func:`run_demo` measured."""

    sectors: list[int]
    results: list[SectorResult] = field(default_factory=list)
    passes: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)
    camera_model: Any = None
    frames_rendered: int = 0

    @property
    def num_solved(self) -> int:
        return sum(r.solved for r in self.results)

    @property
    def targets_met(self) -> bool:
        """All sectors solved, every RMSE <= 3", every mapping within 2" of the truth."""
        return (len(self.results) == len(self.sectors) > 0
                and all(r.ok for r in self.results))


def _load_or_build_database(workdir: Path, force: bool, progress: bool | None
                            ) -> tuple[SolverDatabase, bool]:
    from .database import SolverDatabase
    from .errors import FileFormatError

    path = workdir / DATABASE_FILENAME
    if path.is_file() and not force:
        try:
            db = SolverDatabase.load_from_file(path)
            p = db.parameters
            if (p.get("catalog") == "hipparcos"
                    and all(float(p.get(k, np.nan)) == float(v) for k, v in SEED_DATABASE.items())):
                return db, False
        except (FileFormatError, OSError, ValueError):
            pass
    db = SolverDatabase.generate_from_hipparcos(**SEED_DATABASE, progress=progress)
    workdir.mkdir(parents=True, exist_ok=True)
    db.save_to_file(path)
    return db, True


def _read_frames(paths: Sequence[Path]) -> tuple[list, list, list]:
    """The seed's reading step: mid-times, observer velocities, header WCS (full frame)."""
    from astropy.io import fits
    from astropy.utils.exceptions import AstropyWarning
    from astropy.wcs import WCS

    from .aberration import earth_barycentric_velocity

    times, velocities, wcs_list = [], [], []
    for path in paths:
        with fits.open(path) as hdul:
            tstart = datetime.datetime.strptime(hdul[0].header["DATE-OBS"], _TIME_FORMAT)
            tstop = datetime.datetime.strptime(hdul[0].header["DATE-END"], _TIME_FORMAT)
            tmid = tstart + (tstop - tstart) / 2
            times.append(tmid)
            velocities.append(earth_barycentric_velocity(tmid))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                wcs_list.append(WCS(hdul[1].header))
    return times, velocities, wcs_list


def _extract(paths: Sequence[Path], progress: bool | None) -> list[list]:
    from astropy.io import fits

    from ._progress import track
    from .extraction import extract_centroids

    cenarr = []
    for path in track(paths, len(paths), "extracting", progress, unit="frame"):
        img = fits.getdata(path, ext=1, memmap=False).astype(np.float32)
        img = img[:2048, 44:2092]
        cenarr.append(extract_centroids(img, **SEED_EXTRACTION).centroids)
    return cenarr


def _say(out: TextIO, text: str = "") -> None:
    print(text, file=out, flush=True)


def run_demo(workdir: str | os.PathLike = "demo_output",
             sectors: Sequence[int] = DEFAULT_SECTORS, *, plots: bool = True,
             force: bool = False, faint_star_depth_mag: float = FAINT_STAR_DEPTH_MAG,
             shared_optics: bool = True, progress: bool | None = None,
             out: TextIO | None = None) -> DemoReport:
    """Run the whole demo (see the module notes) and print its report to ``out``.

    Parameters
    ----------
    workdir : path-like
        Cache of frames, database and figures (created if needed).
    sectors : sequence of int
        TESS sectors (camera 1 / CCD 1) to use.
    plots : bool
        Save the two PNG figures (needs matplotlib).
    force : bool
        Re-render the frames and rebuild the database even when cached.
    faint_star_depth_mag : float
        Faint stars beyond the catalog in the frames (see :func:`render_frame`).
    shared_optics : bool
        One plate scale and skew for all sectors (see :func:`sector_wcs`).
    progress : bool or None
        Progress bars on stderr (None: only on a terminal).
    out : text stream, optional
        Where the report goes (default ``sys.stdout``).

    Returns
    -------
    DemoReport
    """
    out = sys.stdout if out is None else out
    workdir = Path(workdir)
    sectors = [_check_sector(s) for s in sectors]
    if not sectors:
        raise InvalidArgumentError("sectors must name at least one sector")
    if len(set(sectors)) != len(sectors):
        raise InvalidArgumentError(f"sectors must be distinct, got {sectors}")
    report = DemoReport(sectors=list(sectors))
    t_start = time.perf_counter()
    n = len(sectors)

    # 1. frames
    t = time.perf_counter()
    paths, rendered = ensure_frames(workdir, sectors, force=force,
                                    faint_star_depth_mag=faint_star_depth_mag,
                                    shared_optics=shared_optics, progress=progress)
    report.frames_rendered = rendered
    report.timings_s["frames"] = time.perf_counter() - t
    _say(out, f"Frames: {n} in {paths[0].parent} ({rendered} rendered, {n - rendered} cached) "
              f"[{report.timings_s['frames']:.1f} s]")

    # 2. database (the seed's parameters)
    t = time.perf_counter()
    solver, built = _load_or_build_database(workdir, force, progress)
    report.timings_s["database"] = time.perf_counter() - t
    _say(out, f"Database: {solver.num_stars} stars, {solver.num_patterns} patterns "
              f"({'built' if built else 'loaded'}: {workdir / DATABASE_FILENAME}) "
              f"[{report.timings_s['database']:.1f} s]")

    # 3. header WCS, times and velocities, as the seed reads them
    t = time.perf_counter()
    _, _, frame_wcs = _read_frames(paths)
    cenarr = _extract(paths, progress)
    report.timings_s["extraction"] = time.perf_counter() - t
    _say(out, "Centroids: " + ", ".join(f"S{s} {len(c)}" for s, c in zip(sectors, cenarr,
                                                                        strict=True))
         + f" [{report.timings_s['extraction']:.1f} s]")

    # 4. the seed's four solve-and-calibrate passes
    t = time.perf_counter()
    camera_model = None
    resarr: list = []
    for pass_num, (mr, ri, order, fov_err) in enumerate(SEED_PASSES, 1):
        tp = time.perf_counter()
        resarr = [solver.solve_from_centroids(
            cen, fov_estimate_deg=camera_model.fov_deg if camera_model else 11.8,
            fov_max_error_deg=fov_err, image_shape=(2048, 2048), match_radius=mr,
            match_threshold=1e-5, refine_iterations=ri, camera_model=camera_model)
            for cen in cenarr]
        n_solved = sum(bool(r) for r in resarr)
        if n_solved == 0:
            _say(out, f"Pass {pass_num}: 0/{n} solved; stopping")
            report.passes.append({"pass": pass_num, "solved": 0})
            break
        cal = solver.calibrate_camera(resarr, cenarr, image_shape=(2048, 2048), order=order)
        camera_model = cal.camera_model
        report.passes.append({"pass": pass_num, "solved": n_solved,
                              "rmse_before_px": cal.rmse_before_px,
                              "rmse_after_px": cal.rmse_after_px, "inliers": cal.n_inliers,
                              "seconds": time.perf_counter() - tp})
        _say(out, f"Pass {pass_num}: {n_solved}/{n} solved, calibration RMSE "
                  f"{cal.rmse_before_px:.3f} -> {cal.rmse_after_px:.3f} px, "
                  f"{cal.n_inliers} inliers [{time.perf_counter() - tp:.1f} s]")
    report.camera_model = camera_model
    report.timings_s["solve_calibrate"] = time.perf_counter() - t

    # 5. per-sector results of the last pass, against the frames' true WCS
    ok_res = [r for r in resarr if r]
    arcsec_per_px = ok_res[0].fov_deg * 3600 / 2048 if ok_res else float("nan")
    for sector, res, cen, true_wcs in zip(sectors, resarr or [None] * n, cenarr, frame_wcs,
                                          strict=True):
        if not res:
            report.results.append(SectorResult(sector, False, len(cen),
                                               status=getattr(res, "status", "not solved")))
            continue
        off_max, off_rms = wcs_offset_arcsec(res.to_wcs(), true_wcs)
        report.results.append(SectorResult(
            sector, True, len(cen), num_matches=int(res.num_matches),
            rmse_arcsec=float(res.rmse_arcsec), rmse_px=float(res.rmse_arcsec / arcsec_per_px),
            offset_max_arcsec=off_max, offset_rms_arcsec=off_rms,
            solve_time_ms=float(res.solve_time_ms), status="match_found"))
    _print_table(report, out)

    # 6. figures
    if plots:
        t = time.perf_counter()
        try:
            report.figures = _save_figures(workdir, sectors, paths, resarr, cenarr, solver,
                                           camera_model)
        except ImportError as exc:
            _say(out, f"Figures skipped: {exc}")
        report.timings_s["figures"] = time.perf_counter() - t
        for fig in report.figures:
            _say(out, f"Figure: {fig}")

    report.timings_s["total"] = time.perf_counter() - t_start
    _print_summary(report, out)
    return report


def _print_table(report: DemoReport, out: TextIO) -> None:
    names = ("Sector", "Matches", 'RMSE (")', "RMSE (px)", 'vs WCS max (")', 'vs WCS rms (")',
             "Solve (ms)")
    widths = (6, 7, 9, 9, 14, 14, 10)
    head = "  ".join(f"{a:>{w}}" for a, w in zip(names, widths, strict=True))
    _say(out)
    _say(out, head)
    _say(out, "-" * len(head))
    for r in report.results:
        if not r.solved:
            _say(out, f"{r.sector:>6}  not solved ({r.status})")
            continue
        _say(out, f"{r.sector:>6}  {r.num_matches:>7}  {r.rmse_arcsec:>9.2f}  {r.rmse_px:>9.3f}  "
                  f"{r.offset_max_arcsec:>14.2f}  {r.offset_rms_arcsec:>14.2f}  "
                  f"{r.solve_time_ms:>10.1f}")
    _say(out)


def _print_summary(report: DemoReport, out: TextIO) -> None:
    n = len(report.sectors)
    solved = [r for r in report.results if r.solved]
    worst_rmse = max((r.rmse_arcsec for r in solved), default=float("nan"))
    worst_off = max((r.offset_max_arcsec for r in solved), default=float("nan"))
    checks = [
        (f"{report.num_solved}/{n} sectors solved", report.num_solved == n),
        (f"worst RMSE {worst_rmse:.2f}\" (target <= {TARGET_RMSE_ARCSEC:g}\")",
         len(solved) == n and worst_rmse <= TARGET_RMSE_ARCSEC),
        (f"worst mapping error vs true WCS {worst_off:.2f}\" (target <= "
         f"{TARGET_OFFSET_ARCSEC:g}\")", len(solved) == n and worst_off <= TARGET_OFFSET_ARCSEC),
    ]
    t = report.timings_s
    _say(out, "Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    verdict = "PASS" if report.targets_met else "FAIL"
    _say(out, f"Summary: {verdict}: " + "; ".join(
        f"{text} [{'ok' if good else 'FAIL'}]" for text, good in checks))


# ------------------------------------------------------------------------------------
# Figures


def _ellipse_lines(x: NDArray, y: NDArray, cov: NDArray, k: float,
                   npts: int = 24) -> NDArray[np.float64]:
    """Polylines ``(n, npts, 2)`` of the ``k``-sigma ellipses of 2x2 covariances ``cov``."""
    vals, vecs = np.linalg.eigh(cov)  # ascending eigenvalues, eigenvectors in columns
    radii = k * np.sqrt(np.maximum(vals, 0.0))  # (n, 2)
    t = np.linspace(0.0, 2.0 * np.pi, npts)
    circle = np.stack([np.cos(t), np.sin(t)], axis=0)  # (2, npts)
    pts = np.einsum("nij,nj,jt->nti", vecs, radii, circle)
    return pts + np.stack([x, y], axis=1)[:, None, :]


def _save_figures(workdir: Path, sectors: Sequence[int], paths: Sequence[Path], resarr: list,
                  cenarr: list, solver: SolverDatabase, camera_model: Any) -> list[Path]:
    try:
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("matplotlib is not installed (pip install skysolve[plot])") from exc
    from astropy.io import fits

    ds = 4  # downsampling of the displayed frames
    n = len(sectors)
    ncols = min(5, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(3.2 * ncols, 3.4 * nrows), layout="constrained")
    for idx, (sector, path) in enumerate(zip(sectors, paths, strict=True)):
        ax = fig.add_subplot(nrows, ncols, idx + 1)
        img = fits.getdata(path, ext=1, memmap=False)[:2048, 44:2092].astype(np.float32)
        vmin, vmax = np.percentile(img, 1), np.percentile(img, 99.2)
        # the displayed image is in downsampled pixels: centred x -> (x + 1024) / ds
        ax.imshow(img[::ds, ::ds], cmap="gray", vmin=vmin, vmax=vmax, origin="upper",
                  extent=(0, 2048 / ds, 2048 / ds, 0), interpolation="nearest")
        res = resarr[idx] if idx < len(resarr) else None
        if res:
            cat_ids = np.asarray(res.matched_catalog_ids, dtype=np.int64)
            stars = [solver.get_star_by_id(int(cid)) for cid in cat_ids]
            ra = np.array([s.ra_deg for s in stars])
            dec = np.array([s.dec_deg for s in stars])
            sx, sy = res.world_to_pixel(ra, dec)
            cen = [cenarr[idx][int(ci)] for ci in res.matched_centroids]
            cx = np.array([c.x for c in cen])
            cy = np.array([c.y for c in cen])
            cov = np.array([c.cov for c in cen]).reshape(-1, 2, 2)
            lines = _ellipse_lines((cx + 1024) / ds, (cy + 1024) / ds, cov / ds**2, 6.0)
            ax.add_collection(LineCollection(lines, colors="yellow", linewidths=0.5))
            ax.scatter((np.asarray(sx) + 1024) / ds, (np.asarray(sy) + 1024) / ds,
                       marker="+", s=6, linewidths=0.4, color="cyan")
            ax.set_title(f"Sector {sector}: {res.num_matches} matches, "
                         f"{res.rmse_arcsec:.2f}\" rms", fontsize=8)
        else:
            ax.set_title(f"Sector {sector}: not solved", fontsize=8)
        ax.set_xlim(0, 2048 / ds)
        ax.set_ylim(2048 / ds, 0)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("TESS-like camera 1 / CCD 1 frames: catalog stars through the solved WCS "
                 "(cyan +), centroid 6-sigma ellipses (yellow)", fontsize=9)
    frames_png = workdir / "demo_frames.png"
    fig.savefig(frames_png, dpi=110)

    figures = [frames_png]
    if camera_model is not None:
        from .plotting import plot_distortion

        fig = Figure(figsize=(7.0, 6.0), layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        plot_distortion(camera_model, ax=ax)
        ax.set_title(f"Fitted camera (shared by {len(sectors)} sectors): "
                     f"f = {camera_model.focal_length_px:.1f} px, FOV "
                     f"{camera_model.fov_deg:.3f} deg\n{ax.get_title()}", fontsize=9)
        dist_png = workdir / "demo_distortion.png"
        fig.savefig(dist_png, dpi=110)
        figures.append(dist_png)
    return figures


# ------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="skysolve demo",
        description="Render ten TESS-like full-frame images (camera 1 / CCD 1) and run the "
                    "seed notebook's multi-image solve-and-calibrate pipeline on them; compare "
                    "the solutions with the frames' true WCS. Exit status 0 when every "
                    "target is met (all sectors solved, RMSE <= 3\", mapping within 2\" of "
                    "the truth), 1 otherwise.")
    p.add_argument("--workdir", default="demo_output", metavar="DIR",
                   help="cache of frames, database and figures (default: ./demo_output)")
    p.add_argument("--sectors", type=int, nargs="+", default=list(DEFAULT_SECTORS),
                   metavar="N", help="TESS sectors to use (default: %(default)s)")
    p.add_argument("--no-plots", action="store_true", help="do not save the PNG figures")
    p.add_argument("--force", action="store_true",
                   help="re-render the frames and rebuild the database even if cached")
    p.add_argument("--faint-depth", type=float, default=FAINT_STAR_DEPTH_MAG, metavar="MAG",
                   help="magnitudes of random stars fainter than the catalog in the frames "
                        "(default: %(default)s)")
    p.add_argument("--archival-wcs", action="store_true",
                   help="render through each sector's archival WCS unchanged (default: one "
                        "plate scale and skew for all sectors, see skysolve.demo.sector_wcs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``skysolve demo``.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments after ``demo`` (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every target is met, 1 otherwise (or on an error), 2 on a usage error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    try:
        report = run_demo(args.workdir, args.sectors, plots=not args.no_plots,
                          force=args.force, faint_star_depth_mag=args.faint_depth,
                          shared_optics=not args.archival_wcs)
    except (InvalidArgumentError, ImportError) as exc:
        print(f"skysolve demo: error: {exc}", file=sys.stderr)
        return 1
    return 0 if report.targets_met else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
