"""Star centroid extraction from images.

:func:`extract_centroids` finds stars in a 2-D image and measures their sub-pixel
positions, brightness and shape:

1. **Background and noise.** A global sigma-clipped level, or (default) robust
   per-block levels (``local_bg_block_size`` pixels square; block medians, blocks
   lifted by a bright star replaced by their neighbourhood median) interpolated
   bilinearly between block centres. The noise is one robust (clipped MAD)
   standard deviation of the background-subtracted image.
2. **Detection.** Pixels more than ``sigma_threshold`` x noise above the
   background (optionally after a Gaussian matched filter that is used only for
   the detection mask) form 8-connected blobs.
3. **Filtering.** Blob size (``min_pixels``, ``max_pixels``), elongation,
   peak sharpness (hot pixels), width (cosmic-ray tracks), image border,
   optional blended-pair rejection; saturated blobs are kept (flagged in
   :attr:`ExtractionResult.saturated`) together with their bleed trails, which
   therefore never come back as separate stars.
4. **Measurement.** Brightness is the summed flux above background over the blob
   and ``cov`` the intensity-weighted second moments of the blob pixels (px^2;
   they underestimate the PSF's variance, since only pixels above threshold
   count). Positions come from a least-squares fit of a pixel-integrated
   Gaussian to a window around the peak (unbiased to < 0.01 px also for
   undersampled PSFs, sigma ~ 0.5 px, and at the Cramer-Rao noise limit);
   saturated, very large or unfittable blobs fall back to the intensity-weighted
   centroid (see :attr:`ExtractionResult.fitted`).

Other modules take star lists through :func:`centroids_to_array`, which accepts a
list of :class:`Centroid`, an :class:`ExtractionResult` or an (N, 2)/(N, 3) array.

Everything is vectorised over blobs (no Python loop over stars).

Coordinates are **centred pixels**: the centre of array pixel ``(row, col)`` is at
``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2`` (+x right, +y down).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from ._psffit import fit_gaussian_stamps
from .background import Background, estimate_background
from .errors import InvalidArgumentError, InvalidTypeError

__all__ = [
    "Centroid",
    "ExtractionResult",
    "extract_centroids",
    "centroids_to_array",
]

#: Standard deviation of rounding to integers (counts).
_QUANTISATION_SIGMA = 1.0 / math.sqrt(12.0)

#: Noise assumed for noise-free frames, relative to the frame's signal scale.
_NOISE_FREE_SIGMA = 1e-6

_ZERO_COV = np.zeros((2, 2))
_ZERO_COV.setflags(write=False)


class Centroid:
    """A star's measured position in centred pixel coordinates.

    Parameters
    ----------
    x, y : float
        Position in centred pixels (origin at the image centre, +x right, +y
        down; array pixel ``(row, col)`` has its centre at ``col + 0.5 - W/2``,
        ``row + 0.5 - H/2``).
    brightness : float, optional
        Summed flux above background (image units); ``None`` when unknown.
    cov : array_like, shape (2, 2), optional
        Intensity-weighted second moments of the star's light about its centre
        in px^2, ordered ``[[xx, xy], [xy, yy]]``. When not given, ``cov`` is a
        read-only 2x2 array of zeros ("no shape information").

    Notes
    -----
    Objects are small (``__slots__``) because solving receives lists of
    thousands. They compare equal when position, brightness and cov are equal;
    they are mutable and therefore unhashable.
    """

    __slots__ = ("x", "y", "brightness", "_cov")

    def __init__(self, x: float, y: float, brightness: float | None = None,
                 cov: ArrayLike | None = None):
        self.x = float(x)
        self.y = float(y)
        self.brightness = None if brightness is None else float(brightness)
        if cov is not None:
            cov = np.asarray(cov, dtype=np.float64)
            if cov.shape != (2, 2):
                raise InvalidArgumentError(f"cov must be a 2x2 array, got shape {cov.shape}")
        self._cov = cov

    @property
    def cov(self) -> NDArray[np.float64]:
        """2x2 intensity-weighted second moments in px^2 (zeros when unknown)."""
        return _ZERO_COV if self._cov is None else self._cov

    @cov.setter
    def cov(self, value: ArrayLike | None) -> None:
        if value is None:
            self._cov = None
            return
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (2, 2):
            raise InvalidArgumentError(f"cov must be a 2x2 array, got shape {value.shape}")
        self._cov = value

    def _moved(self, x: float, y: float) -> Centroid:
        c = Centroid.__new__(Centroid)
        c.x = float(x)
        c.y = float(y)
        c.brightness = self.brightness
        c._cov = self._cov
        return c

    def with_offset(self, dx: float, dy: float) -> Centroid:
        """A copy shifted by ``(dx, dy)`` pixels (brightness and cov kept)."""
        return self._moved(self.x + dx, self.y + dy)

    def distort(self, model: Any) -> Centroid:
        """A copy moved by ``model.distort(x, y)`` (ideal -> distorted pixels).

        ``model`` is any object with a ``distort(x, y) -> (x, y)`` method in
        centred pixels, e.g. :class:`~skysolve.RadialDistortion` or
        :class:`~skysolve.PolynomialDistortion`. Brightness and cov are kept
        (cov is not transformed: distortion is locally a tiny change of scale).
        """
        x, y = _call_model(model, "distort", self.x, self.y)
        return self._moved(x, y)

    def undistort(self, model: Any) -> Centroid:
        """A copy moved by ``model.undistort(x, y)`` (distorted -> ideal pixels)."""
        x, y = _call_model(model, "undistort", self.x, self.y)
        return self._moved(x, y)

    def __repr__(self) -> str:
        b = "None" if self.brightness is None else f"{self.brightness:.6g}"
        return f"Centroid(x={self.x:.4f}, y={self.y:.4f}, brightness={b})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Centroid):
            return NotImplemented
        return (self.x == other.x and self.y == other.y and self.brightness == other.brightness
                and np.array_equal(self.cov, other.cov))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (Centroid, (self.x, self.y, self.brightness, self._cov))


def _call_model(model: Any, method: str, x, y):
    fn = getattr(model, method, None)
    if fn is None or not callable(fn):
        raise InvalidTypeError(
            f"model must have a {method}(x, y) method (e.g. RadialDistortion), "
            f"got {type(model).__name__}")
    out = fn(x, y)
    try:
        nx, ny = out
    except (TypeError, ValueError):
        raise InvalidTypeError(f"model.{method}(x, y) must return a pair (x, y)") from None
    return float(np.asarray(nx)), float(np.asarray(ny))


class ExtractionResult:
    """Stars found by :func:`extract_centroids`, brightest first.

    Attributes
    ----------
    centroids : list of Centroid
        Detected stars, brightest first (built on first access).
    image_width, image_height : int
        Image size in pixels.
    background_mean : float
        Mean background level (image units).
    background_sigma : float
        Robust per-pixel noise of the background-subtracted image.
    threshold : float
        Detection threshold above the background, in the units of the detection
        image: ``sigma_threshold * background_sigma``, or with a matched filter
        ``sigma_threshold`` x the (smaller) noise of the filtered image.
    num_blobs_raw : int
        Connected blobs above threshold before any filtering.
    saturated : ndarray of bool
        Per centroid: the blob reached the saturation level (its position is the
        intensity centroid; bleed trails are part of the blob).
    npix : ndarray of int
        Per centroid: pixels in the blob.
    peak : ndarray of float
        Per centroid: highest background-subtracted pixel value.
    fitted : ndarray of bool
        Per centroid: the position comes from the Gaussian fit (else from the
        intensity-weighted centroid).
    """

    def __init__(self, centroids: Sequence[Centroid], image_width: int, image_height: int,
                 background_mean: float = float("nan"), background_sigma: float = float("nan"),
                 threshold: float = float("nan"), num_blobs_raw: int = 0):
        cents = list(centroids)
        xy, b = centroids_to_array(cents, name="centroids") if cents \
            else (np.zeros((0, 2)), None)
        n = len(xy)
        self._assign(cents, xy[:, 0], xy[:, 1], np.full(n, np.nan) if b is None else b,
                     np.array([c.cov for c in cents]) if n else np.zeros((0, 2, 2)),
                     image_width=image_width, image_height=image_height,
                     background_mean=background_mean, background_sigma=background_sigma,
                     threshold=threshold, num_blobs_raw=num_blobs_raw,
                     saturated=np.zeros(n, dtype=bool), npix=np.zeros(n, dtype=np.int64),
                     peak=np.full(n, np.nan), fitted=np.zeros(n, dtype=bool))

    def _assign(self, centroids, x, y, brightness, cov, *, image_width, image_height,
                background_mean, background_sigma, threshold, num_blobs_raw, saturated, npix,
                peak, fitted) -> None:
        """Set every attribute; the one place both constructors share."""
        self._centroids = centroids
        self._x = np.asarray(x, dtype=np.float64)
        self._y = np.asarray(y, dtype=np.float64)
        self._brightness = np.asarray(brightness, dtype=np.float64)
        self._cov = np.asarray(cov, dtype=np.float64).reshape(-1, 2, 2)
        self.image_width = int(image_width)
        self.image_height = int(image_height)
        self.background_mean = float(background_mean)
        self.background_sigma = float(background_sigma)
        self.threshold = float(threshold)
        self.num_blobs_raw = int(num_blobs_raw)
        self.saturated = np.asarray(saturated, dtype=bool)
        self.npix = np.asarray(npix, dtype=np.int64)
        self.peak = np.asarray(peak, dtype=np.float64)
        self.fitted = np.asarray(fitted, dtype=bool)

    @classmethod
    def _from_arrays(cls, x, y, brightness, cov, *, image_width, image_height,
                     background_mean, background_sigma, threshold, num_blobs_raw,
                     saturated, npix, peak, fitted) -> ExtractionResult:
        self = cls.__new__(cls)
        self._assign(None, x, y, brightness, cov, image_width=image_width,
                     image_height=image_height, background_mean=background_mean,
                     background_sigma=background_sigma, threshold=threshold,
                     num_blobs_raw=num_blobs_raw, saturated=saturated, npix=npix, peak=peak,
                     fitted=fitted)
        return self

    @property
    def centroids(self) -> list[Centroid]:
        """The stars as :class:`Centroid` objects, brightest first."""
        if self._centroids is None:
            new = Centroid.__new__
            out = [new(Centroid) for _ in range(len(self._x))]
            # plain attribute stores: ~4x cheaper than Centroid(...) per star
            for c, x, y, b, cov in zip(out, self._x.tolist(), self._y.tolist(),
                                       self._brightness.tolist(), list(self._cov), strict=True):
                c.x = x
                c.y = y
                c.brightness = b
                c._cov = cov
            self._centroids = out
        return self._centroids

    def __len__(self) -> int:
        return len(self._x)

    def __iter__(self):
        return iter(self.centroids)

    def __getitem__(self, index):
        return self.centroids[index]

    def as_array(self) -> NDArray[np.float64]:
        """``(N, 3)`` float64 array of ``x, y, brightness`` (centred pixels), brightest first."""
        return np.column_stack([self._x, self._y, self._brightness])

    def covariances(self) -> NDArray[np.float64]:
        """``(N, 2, 2)`` intensity-weighted second moments (px^2)."""
        return self._cov.copy()

    def __repr__(self) -> str:
        return (f"ExtractionResult({len(self)} centroids, {self.image_width}x{self.image_height},"
                f" background={self.background_mean:.6g}, sigma={self.background_sigma:.4g},"
                f" threshold={self.threshold:.4g}, num_blobs_raw={self.num_blobs_raw})")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_centroids"] = None  # rebuilt from the arrays on demand
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def centroids_to_array(centroids: Any, name: str = "centroids"
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Star positions (and brightness) from any of the centroid forms skysolve accepts.

    Parameters
    ----------
    centroids : list of Centroid, ExtractionResult, or array_like of shape (N, 2) or (N, 3)
        Stars in centred pixel coordinates ``x, y`` and optional brightness. Objects
        in a list only need ``x``, ``y`` (and optionally ``brightness``) attributes.
    name : str
        Argument name used in error messages.

    Returns
    -------
    xy : ndarray, shape (N, 2), float64
        Positions (a new array).
    brightness : ndarray, shape (N,), float64, or None
        Brightness, ``None`` when no star carries one (NaN for the ones missing
        it when only some do).

    Raises
    ------
    InvalidTypeError
        ``centroids`` is not one of the accepted forms.
    InvalidArgumentError
        Wrong array shape, or non-finite positions.
    """
    if isinstance(centroids, ExtractionResult):
        xy = np.column_stack([centroids._x, centroids._y])
        b = centroids._brightness.copy()
        return xy, (None if len(b) and np.all(np.isnan(b)) else b)
    if isinstance(centroids, str | bytes) or centroids is None:
        raise InvalidTypeError(
            f"{name} must be a list of Centroid, an ExtractionResult or an (N, 2)/(N, 3) array,"
            f" got {type(centroids).__name__}")
    if isinstance(centroids, np.ndarray) or (
            isinstance(centroids, Sequence) and len(centroids)
            and not hasattr(centroids[0], "x")):
        try:
            if np.iscomplexobj(centroids):  # float64 casting would drop the imaginary part
                raise TypeError
            arr = np.asarray(centroids, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidTypeError(
                f"{name} must be a list of Centroid or a numeric (N, 2)/(N, 3) array") from None
        if arr.ndim != 2 or arr.shape[1] not in (2, 3):
            raise InvalidArgumentError(
                f"{name} array must have shape (N, 2) or (N, 3) (x, y[, brightness]),"
                f" got {arr.shape}")
        xy = arr[:, :2].copy()
        b = arr[:, 2].copy() if arr.shape[1] == 3 else None
    else:
        if not isinstance(centroids, Iterable):
            raise InvalidTypeError(
                f"{name} must be a list of Centroid, an ExtractionResult or an (N, 2)/(N, 3)"
                f" array, got {type(centroids).__name__}")
        items = list(centroids)
        try:
            xy = np.array([(c.x, c.y) for c in items], dtype=np.float64).reshape(-1, 2)
        except AttributeError:
            raise InvalidTypeError(
                f"{name} items must be Centroid objects (with .x and .y)") from None
        bl = [getattr(c, "brightness", None) for c in items]
        if all(v is None for v in bl):
            b = None
        else:
            b = np.array([np.nan if v is None else v for v in bl], dtype=np.float64)
    if not np.isfinite(xy).all():
        raise InvalidArgumentError(f"{name} contains non-finite x/y positions")
    return xy, b


# --------------------------------------------------------------------------------------
# input handling


def _check_image(image: Any) -> NDArray:
    """Validate ``image``; return it as a 2-D numeric ndarray (no copy when possible).

    Masked pixels of a ``numpy.ma.MaskedArray`` become NaN (ignored).
    """
    if isinstance(image, np.ma.MaskedArray):
        if image.dtype.kind in "iuf" and image.dtype != bool:
            image = image.astype(np.float64 if image.dtype.itemsize > 4 else np.float32)
            image = image.filled(np.nan)
        else:
            image = np.asarray(image)
    if isinstance(image, np.ndarray):
        arr = image
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:  # noqa: BLE001 - any conversion failure is a type error
            raise InvalidTypeError(f"image must be a 2-D numeric array: {exc}") from None
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidTypeError(
            f"image must be a 2-D array of integers or floats, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"image must be 2-D (height, width), got {arr.ndim}-D shape {arr.shape}"
            + ("; convert colour images to one channel first" if arr.ndim == 3 else ""))
    if arr.size == 0:
        raise InvalidArgumentError(f"image must not be empty, got shape {arr.shape}")
    return arr


def _as_float32(arr: NDArray) -> NDArray[np.float32]:
    """The working float32 copy (a view when already float32 and contiguous)."""
    if arr.dtype == np.float32:
        return np.ascontiguousarray(arr)
    if arr.dtype.itemsize <= 2 or arr.dtype == np.float16:
        return arr.astype(np.float32)  # exact
    # wide types: float32 holds 24 bits; remove a large common offset first
    if arr.dtype.kind == "f":
        sample = np.abs(arr[::7, ::7])
        sample = sample[np.isfinite(sample)]
        big = float(sample.max()) if sample.size else 0.0
    else:
        big = float(max(abs(int(arr.min())), abs(int(arr.max()))))
    if np.isfinite(big) and big > 2.0**23:
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        offset = float(np.round(np.median(finite[:: max(1, finite.size // 100_000)])))
        return (arr.astype(np.float64) - offset).astype(np.float32)
    return arr.astype(np.float32)


def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidTypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_float(name: str, value: Any, *, positive: bool = True,
                 allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidTypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0):
        raise InvalidArgumentError(f"{name} must be a finite number > 0, got {value!r}")
    return v


# --------------------------------------------------------------------------------------
# detection helpers


def _gaussian_kernel(sigma: float) -> NDArray[np.float32]:
    half = max(1, int(math.ceil(3.0 * sigma)))
    t = np.arange(-half, half + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def _smooth(img: NDArray[np.float32], kernel: NDArray[np.float32]) -> NDArray[np.float32]:
    """Separable convolution with edge replication.

    ``ndimage.correlate1d`` is fast along rows; along columns, shifted-slice
    accumulation into preallocated buffers beats it several times on big frames.
    """
    half = len(kernel) // 2
    h = img.shape[0]
    tmp = ndimage.correlate1d(img, kernel, axis=1, mode="nearest")
    pad = np.pad(tmp, ((half, half), (0, 0)), mode="edge")
    out = pad[half:half + h] * kernel[half]
    buf = np.empty_like(out)
    for i in range(half):  # symmetric kernel: one multiply per pair of taps
        np.add(pad[i:i + h], pad[2 * half - i:2 * half - i + h], out=buf)
        buf *= kernel[i]
        out += buf
    return out


def _candidate_pixels(det: NDArray[np.float32], bg: Background, thr: float
                      ) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Flat indices of pixels with ``det > background + thr``, and the background there.

    A block-constant lower bound of the background pre-selects candidates in one
    pass over the frame; the exact (bilinear) background is evaluated only there.
    """
    h, w = det.shape
    lb, bs = bg.block_lower_bound()
    ny, nx = lb.shape
    lim = (lb + thr).astype(np.float32)
    if ny == 1 and nx == 1:
        cand = np.flatnonzero(det > lim[0, 0])
        return cand, np.full(len(cand), bg.grid[0, 0])  # a global model is exact already
    if ny * bs == h and nx * bs == w:
        mask = (det.reshape(ny, bs, nx, bs) > lim[:, None, :, None]).reshape(h, w)
    else:
        full = np.repeat(np.repeat(lim, bs, axis=0)[:h], bs, axis=1)[:, :w]
        mask = det > full
    cand = np.flatnonzero(mask)
    rows, cols = np.divmod(cand, w)
    level = bg.at(rows, cols)
    keep = det.ravel()[cand] > level + thr
    return cand[keep], level[keep]


# --------------------------------------------------------------------------------------
# the extractor


def _empty_result(h: int, w: int, bg_mean: float, sigma: float, thr: float,
                  nraw: int = 0) -> ExtractionResult:
    z = np.zeros(0)
    return ExtractionResult._from_arrays(
        z, z, z, np.zeros((0, 2, 2)), image_width=w, image_height=h,
        background_mean=bg_mean, background_sigma=sigma, threshold=thr, num_blobs_raw=nraw,
        saturated=np.zeros(0, bool), npix=np.zeros(0, np.int64), peak=z,
        fitted=np.zeros(0, bool))


def _check_saturation(saturation_level: Any) -> float | str | None:
    if saturation_level is None:
        return None
    if isinstance(saturation_level, str):
        if saturation_level != "auto":
            raise InvalidArgumentError(
                f"saturation_level must be a number, None or 'auto', got {saturation_level!r}")
        return "auto"
    return _check_float("saturation_level", saturation_level, positive=False)


def _auto_saturation(work: NDArray[np.float32], background: float, sigma: float
                     ) -> float | None:
    """The saturation level of a frame with a flat (up to read noise) top, else None.

    Saturated pixels pile up within a few noise sigmas of the frame maximum, while an
    unsaturated star has a single pixel there. So: at least 3 pixels within
    ``max(5 sigma, 1)`` of a maximum lying more than 50 sigma above the background.
    """
    top = float(np.max(work))
    if not np.isfinite(top) or top - background < 50.0 * sigma:
        return None
    level = top - max(5.0 * sigma, 1.0 if top >= 1000.0 else 0.0)
    if np.count_nonzero(work >= level) >= 3:
        return level
    return None


def extract_centroids(
    image: ArrayLike,
    sigma_threshold: float = 5.0,
    min_pixels: int = 3,
    max_pixels: int = 10000,
    max_centroids: int | None = None,
    local_bg_block_size: int | None = 64,
    max_elongation: float | None = 3.0,
    *,
    matched_filter_sigma: float | None = None,
    max_sharpness: float | None = 0.9,
    saturation_level: float | str | None = "auto",
    border_margin: int = 0,
    reject_blends: bool = False,
    reject_cosmic_rays: bool = True,
    fit_positions: bool = True,
) -> ExtractionResult:
    """Detect stars in an image and measure their sub-pixel centroids.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Any integer or floating dtype (float64, float32, uint16, int16, uint8, ...).
        NaN and inf pixels are ignored: never part of a star, never used in a fit.
    sigma_threshold : float
        Detection threshold in units of the background noise sigma (> 0).
    min_pixels, max_pixels : int
        Allowed blob size in pixels above threshold (``1 <= min <= max``).
    max_centroids : int, optional
        Keep only the brightest N stars (``None``: all).
    local_bg_block_size : int or None
        Block size (px, >= 4) of the local background grid; ``None`` or 0 uses one
        global level.
    max_elongation : float or None
        Reject blobs whose intensity-weighted shape has an axis ratio
        ``sqrt(lambda_max / lambda_min)`` above this (``None``: no limit). The
        moments include the pixel's own extent (+1/12 px^2 per axis) so that
        two- and three-pixel blobs get finite ratios. Saturated blobs are exempt
        (bleed trails make them long).
    matched_filter_sigma : float or None, keyword-only
        Gaussian sigma (px) of a matched filter used only to build the
        detection mask (more faint stars at the same false-alarm rate);
        the threshold is scaled to the filtered noise. ``None``: off.
    max_sharpness : float or None, keyword-only
        Reject blobs whose peak sharpness ``(peak - mean(8 neighbours)) / peak``
        exceeds this (hot pixels and cosmic rays score ~1; a critically sampled
        star ~0.5, an undersampled one, sigma 0.5 px, up to ~0.86). ``None``: off.
    saturation_level : float, 'auto' or None, keyword-only
        Pixel value at or above which the sensor is saturated. ``'auto'``: found
        from a flat top, i.e. at least 3 pixels within ``5 sigma`` of the image
        maximum, itself more than 50 sigma above the background. Saturated
        blobs keep their intensity-weighted centroid, are flagged, and are exempt
        from the elongation, width and blend filters.
    border_margin : int, keyword-only
        Drop blobs that come within this many pixels of the image edge.
    reject_blends : bool, keyword-only
        Drop (non-saturated) blobs with two separate significant peaks: a
        blended pair's centroid lies between the stars.
    reject_cosmic_rays : bool, keyword-only
        Drop bright (peak > 30 sigma), unsaturated blobs that are narrower than
        any star across some direction: a fitted Gaussian sigma below 0.3 px
        along x or y, or a minor-axis second moment below a quarter of the
        typical bright star's PSF variance (about one-pixel-wide cosmic-ray
        tracks and hot lines, also diagonal ones too short for
        ``max_elongation``).
    fit_positions : bool, keyword-only
        Refine positions with the pixel-integrated Gaussian fit (default). If
        False, positions are intensity-weighted centroids over the blob.

    Returns
    -------
    ExtractionResult
        Centroids brightest first, with image and background statistics. A blank
        (constant or all-NaN) image gives an empty result.

    Raises
    ------
    InvalidTypeError
        ``image`` is not numeric, or a parameter has the wrong type.
    InvalidArgumentError
        ``image`` is not 2-D or is empty, or a parameter is out of range.
    """
    arr = _check_image(image)
    sigma_threshold = _check_float("sigma_threshold", sigma_threshold)
    min_pixels = _check_int("min_pixels", min_pixels, 1)
    max_pixels = _check_int("max_pixels", max_pixels, 1)
    if max_pixels < min_pixels:
        raise InvalidArgumentError(
            f"max_pixels ({max_pixels}) must be >= min_pixels ({min_pixels})")
    max_centroids = _check_int("max_centroids", max_centroids, 0, allow_none=True)
    if local_bg_block_size is not None and local_bg_block_size != 0:
        local_bg_block_size = _check_int("local_bg_block_size", local_bg_block_size, 4)
    else:
        local_bg_block_size = None
    max_elongation = _check_float("max_elongation", max_elongation, allow_none=True)
    if max_elongation is not None and max_elongation < 1:
        raise InvalidArgumentError(f"max_elongation must be >= 1, got {max_elongation}")
    matched_filter_sigma = _check_float("matched_filter_sigma", matched_filter_sigma,
                                        allow_none=True)
    max_sharpness = _check_float("max_sharpness", max_sharpness, allow_none=True)
    border_margin = _check_int("border_margin", border_margin, 0)

    h, w = arr.shape
    work = _as_float32(arr)
    bad = None
    if work.dtype.kind == "f" and arr.dtype.kind == "f":
        finite = np.isfinite(work)
        if not finite.all():
            bad = ~finite
            if not finite.any():
                return _empty_result(h, w, float("nan"), float("nan"), float("nan"))
            fill = np.median(work[finite][:: max(1, int(finite.sum()) // 200_000)])
            work = work.copy()
            work[bad] = fill
    saturation_level = _check_saturation(saturation_level)

    bg = estimate_background(work, local_bg_block_size)
    sigma = bg.sigma
    if arr.dtype.kind in "iu" and np.isfinite(sigma) and sigma < _QUANTISATION_SIGMA:
        # integer data whose noise is below one count (MAD of 0): the rounding
        # noise of 1/sqrt(12) count is the floor
        sigma = bg.sigma = _QUANTISATION_SIGMA
    if np.isfinite(sigma) and sigma <= 0:
        # noise-free data (a rendered frame): no noise to scale to, so detect
        # anything above float32 rounding of the frame's scale
        scale = max(abs(bg.mean), float(np.max(work)) - bg.mean)
        sigma = bg.sigma = _NOISE_FREE_SIGMA * scale
    if not (np.isfinite(sigma) and sigma > 0):
        return _empty_result(h, w, bg.mean, 0.0 if np.isfinite(sigma) else sigma, float("nan"))
    sat_level = (_auto_saturation(work, bg.mean, sigma) if saturation_level == "auto"
                 else saturation_level)

    if matched_filter_sigma is not None:
        kernel = _gaussian_kernel(matched_filter_sigma)
        det = _smooth(work, kernel)
        # noise of the filtered image; a linear background passes unchanged
        thr = sigma_threshold * sigma * float(np.sum(kernel.astype(np.float64) ** 2))
    else:
        det = work
        thr = sigma_threshold * sigma
    idx, idx_bg = _candidate_pixels(det, bg, thr)
    if bad is not None and len(idx):
        good = ~bad.ravel()[idx]
        idx, idx_bg = idx[good], idx_bg[good]
    if len(idx) == 0:
        return _empty_result(h, w, bg.mean, sigma, thr)

    mask = np.zeros(h * w, dtype=bool)
    mask[idx] = True
    mask = mask.reshape(h, w)
    eight = np.ones((3, 3), dtype=bool)
    try:  # 16-bit labels halve the memory traffic of labelling a big frame
        labels, nblobs = ndimage.label(mask, structure=eight, output=np.uint16)
    except RuntimeError:  # more than 65535 blobs
        labels, nblobs = ndimage.label(mask, structure=eight)
    if nblobs == 0:
        return _empty_result(h, w, bg.mean, sigma, thr)

    meas = _measure_blobs(work, bg, labels, idx, idx_bg, nblobs, bad, sat_level,
                          need_bbox=border_margin > 0)
    keep = _select(meas, h, w, min_pixels=min_pixels, max_pixels=max_pixels,
                   max_elongation=max_elongation, max_sharpness=max_sharpness,
                   border_margin=border_margin)
    blob_ids = np.flatnonzero(keep)
    if reject_blends and len(blob_ids):
        blob_ids = blob_ids[~_blended(work, bg, labels, meas, blob_ids, sigma, thr)]

    # brightest first, then cut before the (relatively costly) position fit, with
    # a margin for the stars the width test below may still drop
    order = np.argsort(-meas["flux"][blob_ids], kind="stable")
    blob_ids = blob_ids[order]
    if max_centroids is not None:
        blob_ids = blob_ids[:max_centroids + max_centroids // 5 + 10]

    col = meas["cx"][blob_ids].copy()
    row = meas["cy"][blob_ids].copy()
    fitted = np.zeros(len(blob_ids), dtype=bool)
    if fit_positions and len(blob_ids):
        fit_col, fit_row, ok, fsx, fsy, free = _fit_positions(work, labels, bad, meas,
                                                              blob_ids, sigma)
        col = np.where(ok, fit_col, col)
        row = np.where(ok, fit_row, row)
        fitted = ok
        if reject_cosmic_rays:
            narrow = _narrow_blobs(meas, blob_ids, ok & free, fsx, fsy)
            blob_ids, col, row, fitted = (v[~narrow] for v in (blob_ids, col, row, fitted))
    if max_centroids is not None:
        blob_ids, col, row, fitted = (v[:max_centroids] for v in (blob_ids, col, row, fitted))

    cov = np.empty((len(blob_ids), 2, 2))
    cov[:, 0, 0] = meas["cxx"][blob_ids]
    cov[:, 1, 1] = meas["cyy"][blob_ids]
    cov[:, 0, 1] = cov[:, 1, 0] = meas["cxy"][blob_ids]
    return ExtractionResult._from_arrays(
        col + 0.5 - w / 2.0, row + 0.5 - h / 2.0, meas["flux"][blob_ids], cov,
        image_width=w, image_height=h, background_mean=bg.mean, background_sigma=sigma,
        threshold=thr, num_blobs_raw=nblobs, saturated=meas["saturated"][blob_ids],
        npix=meas["npix"][blob_ids], peak=meas["peak"][blob_ids], fitted=fitted)


def _measure_blobs(work: NDArray[np.float32], bg: Background, labels: NDArray,
                   idx: NDArray[np.intp], idx_bg: NDArray[np.float64], nblobs: int,
                   bad: NDArray | None, sat_level: float | None,
                   need_bbox: bool = True) -> dict[str, NDArray]:
    """Per-blob statistics from the blob pixels (flat indices ``idx``, background
    there ``idx_bg``), vectorised.

    Index 0 of every returned array is the (unused) background label.
    """
    h, w = labels.shape
    lab = labels.ravel()[idx]
    rows, cols = np.divmod(idx, w)
    raw = work.ravel()[idx]
    val = raw.astype(np.float64) - idx_bg
    n = nblobs + 1
    npix = np.bincount(lab, minlength=n)
    flux = np.bincount(lab, weights=val, minlength=n)

    # peak pixel of each blob (ties: any of them)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, lab, val)
    is_peak = val == peak[lab]
    peak_idx = np.zeros(n, dtype=np.intp)
    peak_idx[lab[is_peak]] = idx[is_peak]
    pr, pc = np.divmod(peak_idx, w)

    # intensity-weighted moments about the peak pixel (well conditioned)
    wt = np.maximum(val, 0.0)
    sw = np.bincount(lab, weights=wt, minlength=n)
    sw_safe = np.where(sw > 0, sw, 1.0)
    dx = (cols - pc[lab]).astype(np.float64)
    dy = (rows - pr[lab]).astype(np.float64)
    mx = np.bincount(lab, weights=wt * dx, minlength=n) / sw_safe
    my = np.bincount(lab, weights=wt * dy, minlength=n) / sw_safe
    cxx = np.bincount(lab, weights=wt * dx * dx, minlength=n) / sw_safe - mx * mx
    cyy = np.bincount(lab, weights=wt * dy * dy, minlength=n) / sw_safe - my * my
    cxy = np.bincount(lab, weights=wt * dx * dy, minlength=n) / sw_safe - mx * my

    # bounding boxes (only the border filter needs them)
    if need_bbox:
        rmin = np.full(n, h, dtype=np.intp)
        rmax = np.full(n, -1, dtype=np.intp)
        cmin = np.full(n, w, dtype=np.intp)
        cmax = np.full(n, -1, dtype=np.intp)
        np.minimum.at(rmin, lab, rows)
        np.maximum.at(rmax, lab, rows)
        np.minimum.at(cmin, lab, cols)
        np.maximum.at(cmax, lab, cols)
    else:
        rmin = rmax = cmin = cmax = None

    if sat_level is not None:
        nsat = np.bincount(lab, weights=(raw >= sat_level), minlength=n)
        saturated = nsat > 0
    else:
        saturated = np.zeros(n, dtype=bool)

    # sharpness: peak against the mean of its (valid, in-image) 8 neighbours
    offs = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    nr = pr[:, None] + offs[:, 0]
    nc = pc[:, None] + offs[:, 1]
    inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    nrc = np.clip(nr, 0, h - 1)
    ncc = np.clip(nc, 0, w - 1)
    # over 3x3 pixels the background's level at the peak will do
    bg_peak = bg.at(pr, pc)
    bg_gx, bg_gy = bg.gradient_at(pr, pc)
    nval = work[nrc, ncc].astype(np.float64) - bg_peak[:, None]
    if bad is not None:
        inside &= ~bad[nrc, ncc]
    cnt = inside.sum(axis=1)
    nmean = np.where(cnt > 0, np.where(inside, nval, 0.0).sum(axis=1) / np.maximum(cnt, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharp = np.where(peak > 0, (peak - nmean) / peak, np.inf)

    return {
        "npix": npix, "flux": flux, "peak": peak, "pr": pr, "pc": pc,
        "cx": pc + mx, "cy": pr + my, "cxx": cxx, "cyy": cyy, "cxy": cxy,
        "rmin": rmin, "rmax": rmax, "cmin": cmin, "cmax": cmax,
        "saturated": saturated, "sharpness": sharp, "sumw": sw, "bg_peak": bg_peak,
        "bg_gx": bg_gx, "bg_gy": bg_gy,
    }


def _select(m: dict[str, NDArray], h: int, w: int, *, min_pixels: int, max_pixels: int,
            max_elongation: float | None, max_sharpness: float | None,
            border_margin: int) -> NDArray[np.bool_]:
    """Boolean per label (index 0 = background, never kept) of blobs passing the filters."""
    keep = (m["npix"] >= min_pixels) & (m["npix"] <= max_pixels) & (m["sumw"] > 0)
    keep[0] = False
    sat = m["saturated"]
    if max_elongation is not None:
        # pixel extent (1/12 px^2) regularises 1-pixel-wide blobs
        a = m["cxx"] + 1.0 / 12.0
        c = m["cyy"] + 1.0 / 12.0
        b = m["cxy"]
        half_tr = 0.5 * (a + c)
        disc = np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
        lmax = half_tr + disc
        lmin = np.maximum(half_tr - disc, 1e-12)
        elong = np.sqrt(lmax / lmin)
        keep &= (elong <= max_elongation) | sat
    if max_sharpness is not None:
        keep &= m["sharpness"] <= max_sharpness
    if border_margin > 0:
        keep &= ((m["rmin"] >= border_margin) & (m["cmin"] >= border_margin)
                 & (m["rmax"] <= h - 1 - border_margin) & (m["cmax"] <= w - 1 - border_margin))
    return keep


#: Stars whose peak is above this many noise sigmas fit their PSF width freely;
#: fainter ones use the median width of the bright ones.
_FREE_WIDTH_SNR = 30.0


def _fit_positions(work: NDArray[np.float32], labels: NDArray, bad: NDArray | None,
                   m: dict[str, NDArray], ids: NDArray[np.intp], sigma: float):
    """Gaussian-fit positions (array col, row of the star centre, pixel-centre origin).

    Returns ``(col, row, ok, sx, sy, free)``; ``ok`` is False for saturated blobs,
    blobs too big for the fit windows and fits that did not converge; ``sx``, ``sy``
    are the fitted Gaussian sigmas, measured where ``free`` (bright stars) and
    imposed otherwise.
    """
    h, w = labels.shape
    n = len(ids)
    col = np.full(n, np.nan)
    row = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    m["_fit_sx"] = np.full(n, np.nan)
    m["_fit_sy"] = np.full(n, np.nan)

    pr = m["pr"][ids]
    pc = m["pc"][ids]
    peak = m["peak"][ids]
    bgp = m["bg_peak"][ids]
    # start values from the 3x3 log-curvature at the peak (Gaussian: -1/s^2)
    r3 = np.clip(pr[:, None] + np.array([-1, 0, 1]), 0, h - 1)
    c3 = np.clip(pc[:, None] + np.array([-1, 0, 1]), 0, w - 1)
    lr = work[pr[:, None], c3].astype(np.float64) - bgp[:, None]
    ud = work[r3, pc[:, None]].astype(np.float64) - bgp[:, None]
    sx0, x00 = _log_parabola(lr, peak)
    sy0, y00 = _log_parabola(ud, peak)

    fit_me = ~m["saturated"][ids] & (m["npix"][ids] <= 400)
    free = fit_me & (peak > _FREE_WIDTH_SNR * sigma)
    fixed = fit_me & ~free
    if free.any():
        _fit_group(work, labels, bad, m, ids, free, x00, y00, sx0, sy0, col, row, ok, False)
    if fixed.any():
        # the bright stars' fitted widths, else the start values, set the faint ones'
        ref = ok & free
        if ref.sum() >= 3:
            sxr, syr = np.median(m["_fit_sx"][ref]), np.median(m["_fit_sy"][ref])
        else:
            sxr, syr = np.median(sx0[fit_me]), np.median(sy0[fit_me])
        _fit_group(work, labels, bad, m, ids, fixed, x00, y00, np.full(n, sxr),
                   np.full(n, syr), col, row, ok, True)
    return col, row, ok, m.pop("_fit_sx"), m.pop("_fit_sy"), free


#: Narrowest plausible fitted PSF sigma (px) for the cosmic-ray test.
_MIN_PSF_SIGMA = 0.3


def _narrow_blobs(m: dict[str, NDArray], ids: NDArray[np.intp], measured: NDArray[np.bool_],
                  sx: NDArray, sy: NDArray) -> NDArray[np.bool_]:
    """Cosmic-ray-like blobs among ``ids``: bright fits narrower than any star.

    ``measured`` marks stars whose PSF width was fitted freely (bright, converged).
    """
    narrow = measured & (np.minimum(sx, sy) < _MIN_PSF_SIGMA)
    good = measured & ~narrow
    if good.sum() >= 5:
        s_ref = float(np.median(np.sqrt(sx[good] * sy[good])))
        a, c, b = m["cxx"][ids], m["cyy"][ids], m["cxy"][ids]
        lmin = 0.5 * (a + c) - np.sqrt(0.25 * (a - c) ** 2 + b * b)
        narrow |= measured & (lmin + 1.0 / 12.0 < 0.25 * s_ref**2)
    return narrow


def _log_parabola(v: NDArray, peak: NDArray) -> tuple[NDArray, NDArray]:
    """Width and offset of a parabola through the logs of 3 samples (Gaussian peak)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.log(np.maximum(v, 1e-3 * np.maximum(peak, 1e-30)[:, None]))
        c2 = lv[:, 0] - 2.0 * lv[:, 1] + lv[:, 2]
        c2 = np.where(c2 < 0, c2, -1.0)
        off = np.clip(0.5 * (lv[:, 0] - lv[:, 2]) / c2, -0.5, 0.5)
        # a pixel-integrated Gaussian is ~ a sampled one of variance s^2 + 1/12
        s = np.sqrt(np.clip(-1.0 / c2 - 1.0 / 12.0, 0.09, 25.0))
    return s, off


def _fit_group(work, labels, bad, m, ids, members, x00, y00, sx0, sy0, col, row, ok,
               fix_sigma: bool) -> None:
    """Fit the stars ``ids[members]``, in groups of equal window size; write results."""
    h, w = labels.shape
    pr = m["pr"][ids]
    pc = m["pc"][ids]
    bgp = m["bg_peak"][ids]
    # window half-size ~2 sigma (2..6 px): the wings add little position information
    half = np.clip(np.ceil(2.0 * np.sqrt(sx0 * sy0)).astype(int), 2, 6)
    # (per star, never from the other stars: a star's position must not depend
    # on which other stars are being fitted)
    for hh in np.unique(half[members]):
        sel = np.flatnonzero(members & (half == hh))
        off = np.arange(-hh, hh + 1)
        rr = pr[sel, None] + off
        cc = pc[sel, None] + off
        rin = (rr >= 0) & (rr < h)
        cin = (cc >= 0) & (cc < w)
        flat = (np.clip(rr, 0, h - 1) * w)[:, :, None] + np.clip(cc, 0, w - 1)[:, None, :]
        stamp = work.ravel()[flat]
        # the local background plane: a gradient left in the stamp would pull the centre
        gx = m["bg_gx"][ids[sel]].astype(np.float32)[:, None, None]
        gy = m["bg_gy"][ids[sel]].astype(np.float32)[:, None, None]
        offf = off.astype(np.float32)
        stamp = stamp - (bgp[sel, None, None].astype(np.float32) + gx * offf[None, None, :]
                         + gy * offf[None, :, None])
        lab_st = labels.ravel()[flat]
        wgt = (lab_st == 0) | (lab_st == ids[sel][:, None, None])
        if not (rin.all() and cin.all()):
            wgt &= rin[:, :, None] & cin[:, None, :]
        if bad is not None:
            wgt &= ~bad.ravel()[flat]
        amp0 = np.maximum(m["flux"][ids[sel]], 1e-6)
        p0 = np.column_stack([x00[sel], y00[sel], amp0, sx0[sel], sy0[sel]])
        p, good = fit_gaussian_stamps(stamp, wgt, p0, iterations=2, fix_sigma=fix_sigma)
        # most fits converge in two steps from the log-parabola start; give the rest more
        redo = np.flatnonzero(~good & np.all(np.isfinite(p), axis=1)
                              & (np.abs(p[:, 0]) <= hh) & (np.abs(p[:, 1]) <= hh))
        if len(redo):
            start = p[redo, :5].copy()
            start[:, 2] = np.where(start[:, 2] > 0, start[:, 2], p0[redo, 2])
            p[redo], good[redo] = fit_gaussian_stamps(stamp[redo], wgt[redo], start,
                                                      iterations=4, fix_sigma=fix_sigma)
        col[sel] = pc[sel] + p[:, 0]
        row[sel] = pr[sel] + p[:, 1]
        ok[sel] = good
        m["_fit_sx"][sel] = p[:, 3]
        m["_fit_sy"][sel] = p[:, 4]


def _blended(work, bg, labels, m, ids, sigma, thr) -> NDArray[np.bool_]:
    """Blobs (among ``ids``) with a second significant local maximum.

    A pixel counts as a second peak when it is the maximum of its 3x3
    neighbourhood within the blob, at least 2 px from the main peak, rises
    ``max(3 sigma, 0.1 threshold)`` above the deepest point on the straight line
    to the main peak, and that dip is below 80 % of the second peak.
    """
    h, w = labels.shape
    sel = np.zeros(len(m["npix"]), dtype=bool)
    sel[ids] = True
    sel &= ~m["saturated"]
    mask = sel[labels]
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return np.zeros(len(ids), dtype=bool)
    rows, cols = np.divmod(idx, w)
    lab = labels.ravel()[idx]
    val = work.ravel()[idx].astype(np.float64) - bg.at(rows, cols)
    # local maxima among blob pixels (neighbours outside the blob count as lower)
    is_max = np.ones(len(idx), dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r2 = rows + dr
            c2 = cols + dc
            inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
            r2c = np.clip(r2, 0, h - 1)
            c2c = np.clip(c2, 0, w - 1)
            same = inside & (labels[r2c, c2c] == lab)
            nv = work[r2c, c2c].astype(np.float64) - bg.at(r2c, c2c)
            is_max &= ~same | (val > nv) | ((val == nv) & ((dr, dc) > (0, 0)))
    pr, pc = m["pr"][lab], m["pc"][lab]
    far = (rows - pr) ** 2 + (cols - pc) ** 2 >= 4
    cand = np.flatnonzero(is_max & far)
    out = np.zeros(len(m["npix"]), dtype=bool)
    if len(cand):
        r1, c1, v1 = rows[cand], cols[cand], val[cand]
        r0, c0 = pr[cand], pc[cand]
        t = np.linspace(0.0, 1.0, 17)[1:-1]
        lr = np.rint(r0[:, None] + (r1 - r0)[:, None] * t).astype(np.intp)
        lc = np.rint(c0[:, None] + (c1 - c0)[:, None] * t).astype(np.intp)
        line = work[lr, lc].astype(np.float64) - bg.at(lr, lc)
        dip = line.min(axis=1)
        significant = (v1 - dip > max(3.0 * sigma, 0.1 * thr)) & (dip < 0.8 * v1)
        out[lab[cand[significant]]] = True
    return out[ids]
