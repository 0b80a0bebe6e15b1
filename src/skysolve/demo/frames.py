"""The demo's frames: TESS-like full-frame images rendered from the archival TESS WCS.

Frame model
-----------
A SPOC calibrated FFI is a primary HDU holding only header keys and an image
extension ``CAMERA.CCD 1.1 cal`` of 2078 rows x 2136 columns in e-/s: the
2048 x 2048 science pixels are ``[:2048, 44:2092]``; 44 serial-overscan
columns on each side and 30 virtual rows at the top carry no light. Here the
collateral pixels hold read noise only (bias and smear are already removed in
a calibrated FFI), and the science pixels are rendered by
:func:`skysolve.simulate.starfield.render_starfield`:

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
  with (the seed does not correct aberration either). Velocity aberration
  changes a real frame's plate scale by up to ~1e-4 (the archival per-sector
  fits absorb it); ``plate_scale_jitter`` gives every sector such a change of
  its own (:func:`sector_scale`), in its header WCS as well.

Everything is seeded by the sector number, so frames are reproducible; a
frame is re-rendered only when missing, invalid (FITS checksums) or made with
other parameters (or with ``--force``).
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidArgumentError

if TYPE_CHECKING:  # pragma: no cover
    from astropy.io import fits
    from astropy.wcs import WCS

    from ..simulate.starfield import StarfieldTruth
    from ..sky.catalogs import Catalog

__all__ = [
    "DEFAULT_SECTORS",
    "ensure_frames",
    "frame_path",
    "render_frame",
    "sector_scale",
    "sector_times",
    "sector_wcs",
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


def sector_scale(sector: int, plate_scale_jitter: float) -> float:
    """The plate-scale factor of a sector's frame: ``1 + d``, ``d`` drawn uniformly in
    ``[-plate_scale_jitter, plate_scale_jitter]`` (seeded by the sector)."""
    sector = _check_sector(sector)
    jitter = float(plate_scale_jitter)
    if not (np.isfinite(jitter) and 0.0 <= jitter < 0.1):
        raise InvalidArgumentError(
            f"plate_scale_jitter must be in [0, 0.1), got {plate_scale_jitter!r}")
    if jitter == 0.0:
        return 1.0
    return 1.0 + float(np.random.default_rng([_SEED_BASE, sector, 1]).uniform(-jitter, jitter))


def sector_wcs(sector: int, *, shared_optics: bool = True,
               plate_scale_jitter: float = 0.0) -> WCS:
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
    plate_scale_jitter : float, keyword-only
        Scale the linear terms (degrees per pixel) by :func:`sector_scale`:
        a per-frame plate scale of the size velocity aberration causes (1e-4:
        ~2" at the corners of the CCD). Default 0: unchanged.

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
    scale = sector_scale(sector, plate_scale_jitter)
    if shared_optics or scale != 1.0:
        wcs.wcs.pc = wcs.pixel_scale_matrix * scale
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


def _frame_params(sector: int, faint_star_depth_mag: float, shared_optics: bool,
                  plate_scale_jitter: float = 0.0) -> dict[str, Any]:
    params = {"model": FRAME_MODEL_VERSION, "sector": sector, "camera": CAMERA, "ccd": CCD,
              "faint_star_depth_mag": float(faint_star_depth_mag),
              "shared_optics": bool(shared_optics)}
    if plate_scale_jitter:  # absent when 0, so the default frames' tags stay as they were
        params["plate_scale_jitter"] = float(plate_scale_jitter)
    return params


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
                 shared_optics: bool = True,
                 plate_scale_jitter: float = 0.0) -> tuple[fits.HDUList, StarfieldTruth]:
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
    plate_scale_jitter : float
        A plate-scale change of each sector's own (see :func:`sector_wcs`).

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

    from ..simulate.starfield import GaussianPSF, render_starfield
    from ..sky.catalogs import load_gaia

    sector = _check_sector(sector)
    depth = float(faint_star_depth_mag)
    if not (np.isfinite(depth) and depth >= 0):
        raise InvalidArgumentError(
            f"faint_star_depth_mag must be >= 0, got {faint_star_depth_mag!r}")
    if catalog is None:
        catalog = load_gaia()
    wcs = sector_wcs(sector, shared_optics=shared_optics,
                     plate_scale_jitter=plate_scale_jitter)
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

    params = _frame_params(sector, depth, shared_optics, plate_scale_jitter)
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
    if plate_scale_jitter:
        ph["SSSCALE"] = (sector_scale(sector, plate_scale_jitter),
                         "plate scale factor of this frame")

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
                    shared_optics: bool = True, plate_scale_jitter: float = 0.0) -> bool:
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
                tag = _params_tag(_frame_params(sector, faint_star_depth_mag, shared_optics,
                                                plate_scale_jitter))
                if (hdul[0].header.get("SSPARAMS") != tag
                        or hdul[0].header.get("SECTOR") != sector):
                    return False
                if hdul[1].data is None or hdul[1].data.shape != FFI_SHAPE:
                    return False
                return all(h.verify_checksum() == 1 for h in hdul[:2])
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _write_atomic(hdul: fits.HDUList, path: Path) -> None:
    from .._files import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True, checksum=True)


def ensure_frames(workdir: str | os.PathLike, sectors: Sequence[int] = DEFAULT_SECTORS, *,
                  force: bool = False, faint_star_depth_mag: float = FAINT_STAR_DEPTH_MAG,
                  shared_optics: bool = True, plate_scale_jitter: float = 0.0,
                  progress: bool | None = None) -> tuple[list[Path], int]:
    """Render the frames of ``sectors`` into ``<workdir>/tess_same_ccd`` unless cached.

    Parameters
    ----------
    workdir : path-like
    sectors : sequence of int
    force : bool
        Re-render even valid cached frames.
    faint_star_depth_mag, shared_optics, plate_scale_jitter
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
    from .._progress import progress_bar

    sectors = [_check_sector(s) for s in sectors]
    paths = [frame_path(workdir, s) for s in sectors]
    todo = [(s, p) for s, p in zip(sectors, paths, strict=True)
            if force or not _frame_is_valid(p, s, faint_star_depth_mag, shared_optics,
                                            plate_scale_jitter)]
    if todo:
        from ..sky.catalogs import load_gaia

        catalog = load_gaia()
        with progress_bar(len(todo), "rendering frames", progress, unit="frame") as bar:
            for sector, path in todo:
                hdul, _ = render_frame(sector, catalog=catalog,
                                       faint_star_depth_mag=faint_star_depth_mag,
                                       shared_optics=shared_optics,
                                       plate_scale_jitter=plate_scale_jitter)
                _write_atomic(hdul, path)
                bar.update(1)
    return paths, len(todo)
