"""Realistic detector frames of catalog stars, with their exact truth: :func:`render_starfield`.

A frame is rendered through a camera model at an attitude (any lens
projection, pinhole to all-sky fisheye), or through any astropy WCS (TAN,
TAN-SIP, ARC, ZEA, ..., optionally a sub-frame of a larger detector):
pixel-integrated Gaussian PSF (optionally varying over the field), sky
background with gradients, vignetting, a fisheye's image circle (dark
outside), a horizon hiding the stars below it, photon and read noise, bias
and gain, saturation with charge bleeding, hot pixels, cosmic rays, faint
stars the catalog does not have, and an optional mirror flip. The
parameters are the fields of :class:`StarfieldOptions`. Conventions are
those of the package: centred pixel coordinates ``x = col + 0.5 - W/2``,
``y = row + 0.5 - H/2``.

Photometry: a star of magnitude ``m`` collects
``exposure_s * 10**(-0.4 * (m - zeropoint_mag))`` electrons, i.e. the zero
point is the magnitude that gives 1 e-/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from .._options import Options, option, with_options
from .detector import background, bleed, cosmic_rays, rng_of
from .psf import GaussianPSF, _max_sigma, _stamp_reach, magnitude_to_flux, render_stars
from .scene import (
    FieldLimits,
    _check_catalog,
    _faint_stars,
    _field_stars,
    _sky_index,
    check_circle_deg,
    check_circle_px,
    check_horizon,
    check_radec,
    geometry,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..sky.catalogs import Catalog

__all__ = ["StarfieldOptions", "StarfieldTruth", "render_starfield"]

@dataclass
class StarfieldTruth:
    """Exact truth of a rendered star field, brightest first.

    Every star whose PSF puts light on the image is listed, including stars
    whose centre lies just outside it; not those outside the lens's image
    circle or below the horizon, which put none.

    Attributes
    ----------
    x, y : ndarray of float64
        Centred pixel coordinates in the returned image (after any mirror flip).
    catalog_id : ndarray of int64
        Catalog id, or -1 for the extra faint stars not in the catalog.
    mag : ndarray of float64
        Magnitude (catalog or drawn).
    flux : ndarray of float64
        Expected electrons of the star (after vignetting, including any part
        falling off the image).
    in_catalog : ndarray of bool
        False for the extra faint stars.
    saturated : ndarray of bool
        The pixel under the star's centre reached the full well.
    on_image : ndarray of bool
        The star's centre lies on the image.
    psf_cov : ndarray, shape ``(n, 3)``
        The star's Gaussian PSF covariance ``(c_xx, c_yy, c_xy)`` in px² (before
        pixel integration, which adds 1/12 px² to ``c_xx`` and ``c_yy``).
    shape : (int, int)
        Image ``(height, width)``.
    rotation : ndarray or None
        ICRS→camera rotation used (camera path), else None.
    mirror : bool
        Whether the image was flipped left-right.
    epoch_year : float
        Epoch of the star positions.
    hot_pixels : ndarray, shape ``(k, 2)``
        Centred ``(x, y)`` of the hot pixels.
    cosmic_rays : ndarray, shape ``(m, 4)``
        Centred ``(x0, y0, x1, y1)`` end points of the cosmic-ray tracks.
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    catalog_id: NDArray[np.int64]
    mag: NDArray[np.float64]
    flux: NDArray[np.float64]
    in_catalog: NDArray[np.bool_]
    saturated: NDArray[np.bool_]
    on_image: NDArray[np.bool_]
    psf_cov: NDArray[np.float64]
    shape: tuple[int, int]
    rotation: NDArray[np.float64] | None = None
    mirror: bool = False
    epoch_year: float = 0.0
    hot_pixels: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 2)))
    cosmic_rays: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 4)))

    def __len__(self) -> int:
        return int(self.x.size)

    def to_table(self):
        """The per-star columns as an :class:`astropy.table.Table`."""
        from astropy.table import Table

        return Table({k: getattr(self, k) for k in ("x", "y", "catalog_id", "mag", "flux",
                                                   "in_catalog", "saturated", "on_image")})


def _psf(value: Any, name: str) -> GaussianPSF:
    if isinstance(value, GaussianPSF):
        return value
    return GaussianPSF(_args.positive(value, name))


def _pair(value: Any, name: str) -> tuple[float, float]:
    v = _args.vector(value, name, 2)
    return float(v[0]), float(v[1])


_adc_bits = partial(_args.count, minimum=1, maximum=32, allow_none=True)


@dataclass(frozen=True, eq=False)
class StarfieldOptions(Options):
    """How :func:`render_starfield` renders a frame (see the field documentation)."""

    wcs: Any = option(None, type="astropy.wcs.WCS, optional", doc="""
        Alternative to ``camera``/``attitude``: any celestial WCS (TAN, TAN-SIP,
        ...) in astropy's convention (pixel ``(0, 0)`` is the centre of the first
        pixel). It may describe a larger detector frame of which the image is a
        part (see ``pixel_offset``).""")
    shape: tuple[int, int] | None = option(None, type="(int, int), optional", doc="""
        Image ``(height, width)``; with ``wcs`` it defaults to the WCS's
        ``array_shape`` less ``pixel_offset``.""")
    pixel_offset: tuple[float, float] = option((0.0, 0.0), type="(float, float)", doc="""
        ``(col0, row0)``: WCS pixel coordinates of the image's first pixel, for a
        sub-frame of the WCS's detector (e.g. ``(44, 0)`` for the science pixels
        of a TESS full-frame image).""")
    epoch_year: float | None = option(None, type="float, optional", check=_args.optional_number,
                                      doc="""
        Julian year the catalog is propagated to with proper motions (default:
        the catalog's epoch).""")
    psf: GaussianPSF = option(GaussianPSF(1.2), type="float or GaussianPSF", check=_psf, doc="""
        Gaussian sigma in pixels, or a field-dependent :class:`GaussianPSF`.""")
    exposure_s: float = option(1.0, type="float", check=_args.nonnegative, doc="""
        Exposure, seconds: ``flux_e = exposure_s * 10**(-0.4 * (mag - zeropoint_mag))``.""")
    zeropoint_mag: float = option(20.0, type="float", check=_args.number, doc="""
        The magnitude giving 1 e-/s.""")
    background_e: Any = option(100.0, type="float or array_like", doc="""
        Sky (and dark) background in e-/pixel over the exposure, a scalar or a
        full ``(height, width)`` array.""")
    background_gradient_e: tuple[float, float] = option((0.0, 0.0), type="(float, float)",
                                                        check=_pair, doc="""
        Added background slope in e-/pixel per pixel along x and y, about the
        image centre (the mean level stays ``background_e``).""")
    read_noise_e: float = option(5.0, type="float", check=_args.nonnegative, doc="""
        Gaussian read noise (e- rms).""")
    gain_e_per_adu: float = option(1.0, type="float", check=_args.positive, doc="""
        Output conversion: ``adu = electrons / gain + bias``.""")
    bias_adu: float = option(0.0, type="float", check=_args.number, doc="""
        Output offset, ADU.""")
    full_well_e: float | None = option(100_000.0, type="float or None",
                                       check=_args.optional_positive, doc="""
        Saturation level (e-); excess charge bleeds up and down the column
        (conserved, except charge running off both ends). None: no saturation.""")
    noise: bool = option(True, type="bool", check=_args.flag, doc="""
        Poisson photon noise and read noise (False: expected values, exact).""")
    vignetting: float = option(0.0, type="float", check=_args.fraction, doc="""
        Fraction of the light lost at the edge of the field; the throughput is
        ``1 - vignetting * (r / r_edge)**2`` for stars and sky alike, with ``r``
        from the image centre and ``r_edge`` the corners' distance, or, when
        the lens has an image circle (``image_circle_px``/``_deg``), ``r`` from
        the optical centre and ``r_edge`` the circle's radius.""")
    flat_field_rms: float = option(0.0, type="float", check=_args.nonnegative, doc="""
        Pixel-to-pixel sensitivity variation (fractional rms, fixed by ``seed``).""")
    adc_bits: int | None = option(None, type="int, optional", check=_adc_bits, doc="""
        Quantise the output to whole ADU clipped to ``[0, 2**adc_bits - 1]``.""")
    hot_pixel_fraction: float = option(0.0, type="float", check=_args.fraction, doc="""
        Fraction of pixels with extra dark charge (log-uniform up to the full well).""")
    cosmic_rays: int = option(0, type="int", check=_args.count, doc="""
        Number of cosmic-ray tracks (straight, a few pixels long).""")
    faint_star_depth_mag: float = option(0.0, type="float", check=_args.nonnegative, doc="""
        Add stars not in the catalog, down to this many magnitudes below the
        catalog's limit, at random positions; their number follows the field's
        own catalog density extrapolated with ``faint_star_slope`` (dex per mag).
        0 disables them.""")
    faint_star_slope: float = option(0.35, type="float", check=_args.nonnegative, doc="""
        Logarithmic slope of the star counts, ``dN/dm ∝ 10**(slope * m)``.""")
    catalog_limit_mag: float | None = option(None, type="float, optional",
                                             check=_args.optional_number, doc="""
        The catalog's limiting magnitude (default: its 99.5th percentile).""")
    mirror: bool = option(False, type="bool", check=_args.flag, doc="""
        Flip the image left-right, as images that are mirror images of the sky
        (TESS FFIs) are; the truth reports the flipped positions (``x → -x``).
        Solve such images with ``parity_flip=True``.""")
    image_circle_px: float | None = option(None, type="float, optional",
                                           check=check_circle_px, doc="""
        A fisheye's image circle: its radius in pixels about the optical centre.
        Pixels outside it receive no light (no sky, no stars); camera path only.""")
    image_circle_deg: float | None = option(None, type="float, optional",
                                            check=check_circle_deg, doc="""
        The image circle as the largest angle from the optical axis the lens
        images, degrees (90 for an all-sky 180° lens); pixels imaging directions
        farther out, and pixels the projection maps to no direction, are dark.
        Camera path only.""")
    horizon_deg: float | None = option(None, type="float, optional", check=check_horizon,
                                       doc="""
        Altitude (degrees) below which stars are hidden, as by the ground: a star
        is seen when ``asin(v · zenith) >= horizon_deg``. The sky background
        stays. None: no horizon.""")
    zenith_radec_deg: tuple[float, float] | None = option(
        None, type="(float, float), optional", check=check_radec, doc="""
        ``(ra, dec)`` of the zenith the horizon is measured from, degrees
        (default: the boresight, or the image centre of a WCS).""")
    seed: Any = option(None, type="int or numpy.random.Generator, optional", doc="""
        Makes the frame reproducible.""")


def _frame_stars(catalog: Catalog, geom: Any, limits: FieldLimits, opts: StarfieldOptions,
                 epoch: float, rng: np.random.Generator):
    """Stars that put light on the image, brightest first: ``(x, y, flux, mags, ids)``.

    Catalog stars in (and just around) the field, plus the faint extras; not
    those outside the image circle or below the horizon.
    """
    h, w = geom.shape
    psf = opts.psf
    margin_deg = (12.0 * _max_sigma(psf) + 3.0) * geom.scale_deg_px * 1.5
    zone = geom.radius_deg + margin_deg
    ids, mags, vecs = _field_stars(catalog, geom.centre, zone, epoch)
    if opts.faint_star_depth_mag > 0:
        limit = (_sky_index(catalog).limit_mag if opts.catalog_limit_mag is None
                 else float(opts.catalog_limit_mag))
        fv, fm = _faint_stars(geom.centre, limit, mags, vecs, opts.faint_star_depth_mag,
                              opts.faint_star_slope, zone, rng)
        vecs = np.concatenate([vecs, fv])
        mags = np.concatenate([mags, fm])
        ids = np.concatenate([ids, np.full(fm.size, -1, dtype=np.int64)])
    x, y = geom.project(vecs)
    flux = magnitude_to_flux(mags, opts.zeropoint_mag, opts.exposure_s)
    if opts.vignetting:
        flux = flux * np.maximum(1.0 - opts.vignetting * limits.vignetting_t2(x, y), 0.0)
    reach = _stamp_reach(flux, psf) + 1
    touch = (limits.stars(vecs, x, y) & (np.abs(x) < 0.5 * w + reach)
             & (np.abs(y) < 0.5 * h + reach) & (flux > 0))
    order = np.flatnonzero(touch)
    order = order[np.lexsort((ids[order], -flux[order]))]
    return x[order], y[order], flux[order], mags[order], ids[order]


def _expected_electrons(shape: tuple[int, int], x, y, flux, sky: NDArray, limits: FieldLimits,
                        opts: StarfieldOptions, rng: np.random.Generator):
    """Expected electrons per pixel (stars, sky, flat field, hot pixels) and the hot pixels."""
    h, w = shape
    signal = render_stars((h, w), x, y, flux, opts.psf)
    if opts.vignetting:
        xs = np.arange(w) + 0.5 - 0.5 * w
        ys = np.arange(h) + 0.5 - 0.5 * h
        t2 = limits.vignetting_t2(xs[None, :], ys[:, None])
        sky = sky * np.maximum(1.0 - opts.vignetting * t2, 0.0)
    signal += sky
    lit = limits.mask()
    if lit is not None:  # outside the image circle: no light at all
        signal *= lit
    if opts.flat_field_rms:
        signal *= np.maximum(rng.normal(1.0, opts.flat_field_rms, (h, w)), 0.0)
    hot_xy = np.empty((0, 2))
    n_hot = int(round(opts.hot_pixel_fraction * h * w))
    if n_hot:
        where = rng.choice(h * w, size=n_hot, replace=False)
        top = opts.full_well_e if opts.full_well_e is not None else 1e5
        lo = max(50.0, 10.0 * opts.read_noise_e)
        signal.reshape(-1)[where] += 10.0 ** rng.uniform(np.log10(lo), np.log10(max(top, lo)),
                                                         n_hot)
        hot_xy = np.stack([where % w + 0.5 - 0.5 * w, where // w + 0.5 - 0.5 * h], axis=1)
    return signal, hot_xy


def _read_out(signal: NDArray, x, y, opts: StarfieldOptions, rng: np.random.Generator):
    """Detection and read-out: ``(image in ADU, cosmic rays, on_image, saturated)``."""
    h, w = signal.shape
    electrons = rng.poisson(signal).astype(np.float64) if opts.noise else signal
    cr = (cosmic_rays(electrons, opts.cosmic_rays, rng) if opts.cosmic_rays
          else np.empty((0, 4)))
    full_well = opts.full_well_e
    if full_well is not None:
        bleed(electrons, full_well)
    on_image = (np.abs(x) < 0.5 * w) & (np.abs(y) < 0.5 * h)
    saturated = np.zeros(x.size, dtype=bool)
    if full_well is not None and on_image.any():
        col = np.clip(np.floor(x[on_image] + 0.5 * w).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor(y[on_image] + 0.5 * h).astype(np.int64), 0, h - 1)
        saturated[on_image] = electrons[row, col] >= full_well * (1 - 1e-12)
    image = electrons / opts.gain_e_per_adu + opts.bias_adu
    if opts.noise and opts.read_noise_e > 0:
        image += rng.normal(0.0, opts.read_noise_e / opts.gain_e_per_adu, (h, w))
    if opts.adc_bits is not None:
        image = np.clip(np.round(image), 0.0, 2.0**opts.adc_bits - 1)
    return image, cr, on_image, saturated


def render(catalog: Catalog, camera: Any, attitude: Any,
           opts: StarfieldOptions) -> tuple[NDArray[np.float32], StarfieldTruth]:
    """Render a frame (see :func:`render_starfield`)."""
    _check_catalog(catalog)
    rng = rng_of(opts.seed)
    geom = geometry(camera, attitude, opts.wcs, opts.shape, opts.pixel_offset)
    h, w = geom.shape
    epoch = catalog.epoch if opts.epoch_year is None else opts.epoch_year
    limits = FieldLimits(geom, opts.image_circle_px, opts.image_circle_deg, opts.horizon_deg,
                         opts.zenith_radec_deg)
    sky = background((h, w), opts.background_e, opts.background_gradient_e)
    x, y, flux, mags, ids = _frame_stars(catalog, geom, limits, opts, epoch, rng)
    signal, hot_xy = _expected_electrons((h, w), x, y, flux, sky, limits, opts, rng)
    image, cr, on_image, saturated = _read_out(signal, x, y, opts, rng)
    psf_cov = opts.psf.covariance(x, y, (h, w)).reshape(-1, 3)
    if opts.mirror:
        image = image[:, ::-1]
        x = -x
        psf_cov[:, 2] *= -1.0
        hot_xy = hot_xy * np.array([-1.0, 1.0])
        cr = cr * np.array([-1.0, 1.0, -1.0, 1.0])
    truth = StarfieldTruth(
        x=x, y=y, catalog_id=ids, mag=mags, flux=flux, in_catalog=ids != -1,
        saturated=saturated, on_image=on_image, psf_cov=psf_cov, shape=(h, w),
        rotation=geom.rotation, mirror=opts.mirror, epoch_year=epoch, hot_pixels=hot_xy,
        cosmic_rays=cr)
    return np.ascontiguousarray(image, dtype=np.float32), truth


_RENDER_DOC = """Render a realistic star-field frame from a catalog, with its exact truth.

The geometry is either a camera model at an attitude, or an astropy WCS.

Parameters
----------
catalog : Catalog
    Stars to render (e.g. ``skysolve.load_gaia()``); the sky index used to
    find the field's stars is built once per catalog object and cached.
camera : CameraModel, optional
    Camera geometry (focal length, size, optical centre, parity,
    distortion, lens projection); the image has the camera's size.
attitude : array_like, optional
    ICRS→camera rotation: 3×3 matrix or ``[w, x, y, z]`` quaternion.
{parameters}
options : StarfieldOptions, optional
    All of the above as one object; keyword arguments override its values.

Returns
-------
image : ndarray of float32, shape ``(height, width)``
    The frame in ADU.
truth : StarfieldTruth
    Every star that puts light on the image (including stars centred just
    outside), brightest first, with positions in the returned image.

Examples
--------
>>> import numpy as np, skysolve
>>> from skysolve.simulate import render_starfield
>>> from skysolve.geometry import radec_roll_to_rotation
>>> cam = skysolve.CameraModel.from_fov(10.0, 1024, 1024)
>>> R = radec_roll_to_rotation(83.8, -5.4, 30.0)
>>> image, truth = render_starfield(skysolve.load_hipparcos(), cam, R, seed=1)
"""


@with_options(StarfieldOptions, ("catalog", ("camera", None), ("attitude", None)), _RENDER_DOC)
def render_starfield(catalog: Catalog, camera: Any, attitude: Any,
                     options: StarfieldOptions) -> tuple[NDArray[np.float32], StarfieldTruth]:
    return render(catalog, camera, attitude, options)
