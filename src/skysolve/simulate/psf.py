"""Point-spread functions and the noise-free star renderer.

:class:`GaussianPSF` is a Gaussian PSF that may grow and elongate towards the
field corners, with an optional halo; :func:`render_stars` integrates it over
the pixels for many stars at once (:mod:`skysolve.simulate.render`).
Photometry: :func:`magnitude_to_flux`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..errors import InvalidArgumentError, InvalidTypeError
from .render import render_covariance, render_separable, stamp_half_widths

__all__ = ["GaussianPSF", "render_stars", "magnitude_to_flux"]


@dataclass(frozen=True)
class GaussianPSF:
    """A Gaussian point-spread function that may vary over the field.

    The PSF at centred pixel position ``(x, y)``, at fractional field radius
    ``t = r / r_corner`` (``r_corner`` is the image half-diagonal), has

    * major-axis sigma ``sigma_px + (edge_sigma_px - sigma_px) * t**2``,
    * ellipticity ``1 - minor/major = edge_ellipticity * t**2``,
    * major axis along the radial direction rotated by ``elongation_angle_deg``
      (0: radial, as coma and field curvature produce; 90: tangential);

    plus, optionally, a faint round halo (scattered light) holding
    ``halo_fraction`` of the flux with sigma ``halo_sigma_px``.

    Parameters
    ----------
    sigma_px : float
        Sigma (pixels) at the image centre; FWHM = 2.3548 sigma.
    edge_sigma_px : float, optional
        Major-axis sigma at the image corners (default: ``sigma_px``).
    edge_ellipticity : float
        Ellipticity at the corners, in [0, 1).
    elongation_angle_deg : float
        Angle of the major axis from the radial direction (degrees).
    subsample : int
        Sub-pixel samples per pixel (along y) for elliptical PSFs; round PSFs
        are integrated exactly.
    halo_fraction : float
        Fraction of each star's flux in the halo, in [0, 1).
    halo_sigma_px : float
        Sigma of the halo (pixels).
    """

    sigma_px: float = 1.2
    edge_sigma_px: float | None = None
    edge_ellipticity: float = 0.0
    elongation_angle_deg: float = 0.0
    subsample: int = 5
    halo_fraction: float = 0.0
    halo_sigma_px: float = 5.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.sigma_px) and self.sigma_px > 0):
            raise InvalidArgumentError(f"sigma_px must be positive, got {self.sigma_px}")
        if self.edge_sigma_px is not None and not (np.isfinite(self.edge_sigma_px)
                                                   and self.edge_sigma_px > 0):
            raise InvalidArgumentError(
                f"edge_sigma_px must be positive, got {self.edge_sigma_px}")
        if not 0.0 <= self.edge_ellipticity < 1.0:
            raise InvalidArgumentError(
                f"edge_ellipticity must be in [0, 1), got {self.edge_ellipticity}")
        if not 0.0 <= self.halo_fraction < 1.0:
            raise InvalidArgumentError(
                f"halo_fraction must be in [0, 1), got {self.halo_fraction}")
        if not (np.isfinite(self.halo_sigma_px) and self.halo_sigma_px > 0):
            raise InvalidArgumentError(
                f"halo_sigma_px must be positive, got {self.halo_sigma_px}")
        if int(self.subsample) != self.subsample or self.subsample < 1:
            raise InvalidArgumentError(f"subsample must be a positive integer, got "
                                       f"{self.subsample}")

    @property
    def is_round(self) -> bool:
        """True when the PSF is circular everywhere (exact separable rendering)."""
        return self.edge_ellipticity == 0.0

    def major_sigma(self, x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        """Major-axis sigma (pixels) at centred positions ``(x, y)`` of an image ``shape``."""
        t2 = self._t2(x, y, shape)
        edge = self.sigma_px if self.edge_sigma_px is None else self.edge_sigma_px
        return self.sigma_px + (edge - self.sigma_px) * t2

    def covariance(self, x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        """PSF covariances ``(n, 3)`` as ``(c_xx, c_yy, c_xy)`` in px² at ``(x, y)``."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        major = self.major_sigma(x, y, shape)
        minor = major * (1.0 - self.edge_ellipticity * self._t2(x, y, shape))
        theta = np.arctan2(y, x) + np.radians(self.elongation_angle_deg)
        c, s = np.cos(theta), np.sin(theta)
        a2, b2 = major**2, minor**2
        return np.stack([a2 * c * c + b2 * s * s, a2 * s * s + b2 * c * c, (a2 - b2) * c * s],
                        axis=-1)

    @staticmethod
    def _t2(x: ArrayLike, y: ArrayLike, shape: tuple[int, int]) -> NDArray:
        h, w = shape
        return (np.asarray(x, dtype=np.float64) ** 2 + np.asarray(y, dtype=np.float64) ** 2) / (
            0.25 * (w * w + h * h))


def _as_psf(psf: float | GaussianPSF) -> GaussianPSF:
    if isinstance(psf, GaussianPSF):
        return psf
    if isinstance(psf, (int, float, np.integer, np.floating)) and not isinstance(psf, bool):
        return GaussianPSF(float(psf))
    raise InvalidTypeError(f"psf must be a sigma in pixels or a GaussianPSF, got {type(psf)!r}")


def _max_sigma(psf: GaussianPSF) -> float:
    edge = psf.sigma_px if psf.edge_sigma_px is None else psf.edge_sigma_px
    return max(psf.sigma_px, edge, psf.halo_sigma_px if psf.halo_fraction > 0 else 0.0)


def _stamp_reach(flux: NDArray, psf: GaussianPSF) -> NDArray[np.int64]:
    """Conservative stamp half-widths (px) used to decide which stars touch the image."""
    return stamp_half_widths(np.asarray(flux, dtype=np.float64),
                             np.full(np.shape(flux), _max_sigma(psf)))




def _shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    """An image ``(height, width)`` of positive whole numbers."""
    if isinstance(shape, str | bytes) or np.ndim(shape) != 1 or len(shape) != 2:
        raise InvalidArgumentError(f"{name} must be (height, width), got {shape!r}")
    return (_args.size(shape[0], f"{name}[0] (height)"),
            _args.size(shape[1], f"{name}[1] (width)"))


def render_stars(shape: tuple[int, int], x: ArrayLike, y: ArrayLike, flux: ArrayLike,
                 psf: float | GaussianPSF = 1.2) -> NDArray[np.float64]:
    """Render point sources, each PSF integrated over the pixels (noise-free).

    Parameters
    ----------
    shape : (int, int)
        Image ``(height, width)``.
    x, y : array_like, shape ``(n,)``
        Centred pixel coordinates (``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``).
        Stars near or beyond the edges are allowed; only the part of the PSF
        on the image is deposited.
    flux : array_like, shape ``(n,)``
        Total counts of each star (any unit; the image has the same unit).
    psf : float or GaussianPSF
        Gaussian sigma in pixels, or a field-dependent :class:`GaussianPSF`.

    Returns
    -------
    ndarray of float64, shape ``shape``
        Sum over stars of flux × PSF. A star entirely on the image adds exactly
        its flux; its intensity-weighted centroid is its ``(x, y)``.

    Notes
    -----
    Round PSFs are integrated exactly (differences of the normal CDF, separable
    in x and y); elliptical PSFs exactly along x and with ``psf.subsample``
    samples per pixel along y. All stars are processed at once (stamps grouped
    by size), so tens of thousands of stars take well under a second.
    """
    h, w = _shape(shape)
    psf = _as_psf(psf)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    flux = np.atleast_1d(np.asarray(flux, dtype=np.float64))
    if not (x.ndim == 1 and x.shape == y.shape == flux.shape):
        raise InvalidArgumentError(
            f"x, y and flux must be 1-D arrays of one length, got shapes {x.shape}, {y.shape}, "
            f"{flux.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (flux > 0)
    x, y, flux = x[ok], y[ok], flux[ok]
    image = np.zeros((h, w), dtype=np.float64)
    if x.size == 0:
        return image
    if psf.halo_fraction > 0:
        halo = np.full(x.size, float(psf.halo_sigma_px))
        render_separable((h, w), x, y, flux * psf.halo_fraction, halo, halo, out=image)
        flux = flux * (1.0 - psf.halo_fraction)
    if psf.is_round:
        sigma = psf.major_sigma(x, y, (h, w))
        return render_separable((h, w), x, y, flux, sigma, sigma, out=image)
    cov = psf.covariance(x, y, (h, w))
    return render_covariance((h, w), x, y, flux, cov, subsample=int(psf.subsample), out=image)


def magnitude_to_flux(mag: ArrayLike, zeropoint_mag: float = 20.0,
                      exposure_s: float = 1.0) -> NDArray[np.float64]:
    """Electrons collected from stars of magnitude ``mag``.

    ``flux = exposure_s * 10**(-0.4 * (mag - zeropoint_mag))``: the zero point is
    the magnitude giving 1 e-/s.
    """
    return exposure_s * np.power(10.0, -0.4 * (np.asarray(mag, dtype=np.float64)
                                               - zeropoint_mag))
