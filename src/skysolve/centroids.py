"""Star centroids: the data that flows from extraction to the solver and calibration.

:class:`Centroid` is one star's measured position (centred pixels: the centre of
array pixel ``(row, col)`` is at ``x = col + 0.5 - W/2``, ``y = row + 0.5 - H/2``,
+x right, +y down), brightness and shape; :class:`ExtractionResult` holds a
frame's stars as arrays (brightest first) with the frame's background
statistics. Every other stage takes star lists through
:func:`centroids_to_array`, which accepts a list of :class:`Centroid`, an
:class:`ExtractionResult` or an (N, 2)/(N, 3) array.

This module needs numpy only, so the solver and calibration import it without
pulling in image processing. It may import: ``errors``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidArgumentError, InvalidTypeError

__all__ = ["Centroid", "ExtractionResult", "centroids_to_array", "centred_positions",
           "table_to_array", "is_table", "as_table", "origin_shift", "ORIGINS", "KEPT_REASONS",
           "REJECT_REASONS", "REJECTED_DTYPE"]

#: Why a detection was kept (:attr:`ExtractionResult.flags`): it passed every test
#: (``'star'``), or it reached the saturation level, which exempts it from the
#: shape tests (``'saturated'``), or it passed them but is doubtful (``'doubtful'``):
#: on a JPEG, shaped like a compressed hot pixel or cosmic-ray track; on another frame
#: with a dark silhouette in front of the sky, a speck close to it; on a frame of
#: undersampled stars (not a JPEG), a blob as sharp as a hot pixel and too faint for
#: the light a star spills beside its peak to show, or too sharp for the width test
#: where too few bright blobs show that light (hot pixels among them); on any frame, a
#: saturated blob merged from several stars (``'doubtful'`` then, though saturated).
#: Doubtful ones are listed after the others (``extract_centroids(demote_doubtful=...)``).
KEPT_REASONS = ("star", "saturated", "doubtful")
#: Why a detection was rejected (``reason`` of :attr:`ExtractionResult.rejected`),
#: in the order the tests run (a detection gets the first that fails):
#:
#: ``'small'`` / ``'large'``
#:     fewer than ``min_pixels`` / more than ``max_pixels`` above threshold;
#: ``'border'``
#:     within ``border_margin`` of the image edge, or saturated at it;
#: ``'sharp'``
#:     peak sharpness above ``max_sharpness`` (a hot pixel);
#: ``'overlay'``
#:     a piece of a caption burned into the frame (a timestamp, exposure, the
#:     camera's name): one of a straight line of flat or saturated blobs of one
#:     value and size (:mod:`skysolve.extraction.overlay`);
#: ``'elongated'``
#:     axis ratio above ``max_elongation`` (after taking out the frame's own PSF
#:     shape when every star is smeared the same way);
#: ``'diffuse'``
#:     far more pixels above threshold than a star of its peak has (background
#:     structure: cloud and glare edges, lit foreground);
#: ``'trail'``
#:     one of several detections along a line (satellite or aircraft trail);
#: ``'foreground'``
#:     next to pixels far darker than the sky (the lit edge of a tree, roof or
#:     wall in front of it);
#: ``'blend'``
#:     two separate peaks (only with ``deblend='reject'``);
#: ``'narrow'``
#:     narrower than the frame's stars (cosmic ray, hot pixel smeared by JPEG).
REJECT_REASONS = ("small", "large", "border", "sharp", "overlay", "elongated", "diffuse",
                  "trail", "foreground", "blend", "narrow")
#: The record of a rejected detection (centred pixels, like the centroids).
REJECTED_DTYPE = np.dtype([("x", np.float64), ("y", np.float64), ("brightness", np.float64),
                           ("npix", np.int64), ("peak", np.float64), ("reason", "U10")])

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
    thousands. They compare equal when position, brightness and cov are equal,
    and hash by position and brightness, so that, as tetra3rs's centroids, they
    can be members of sets and keys of dicts (``{c: i for i, c in
    enumerate(ext.centroids)}``). They are mutable: a centroid changed while it
    is in a set or a dict is no longer found there.
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

    def distort(self, distortion: Any) -> Centroid:
        """A copy moved by ``distortion.distort(x, y)`` (ideal -> distorted pixels).

        ``distortion`` is any object with a ``distort(x, y) -> (x, y)`` method
        in centred pixels, e.g. :class:`~skysolve.RadialDistortion` or
        :class:`~skysolve.PolynomialDistortion`. Brightness and cov are kept
        (cov is not transformed: distortion is locally a tiny change of scale).
        """
        x, y = _call_model(distortion, "distort", self.x, self.y)
        return self._moved(x, y)

    def undistort(self, distortion: Any) -> Centroid:
        """A copy moved by ``distortion.undistort(x, y)`` (distorted -> ideal pixels)."""
        x, y = _call_model(distortion, "undistort", self.x, self.y)
        return self._moved(x, y)

    def __repr__(self) -> str:
        b = "None" if self.brightness is None else f"{self.brightness:.6g}"
        return f"Centroid(x={self.x:.4f}, y={self.y:.4f}, brightness={b})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Centroid):
            return NotImplemented
        return (self.x == other.x and self.y == other.y and self.brightness == other.brightness
                and np.array_equal(self.cov, other.cov))

    def __hash__(self) -> int:
        # cov is left out: equal centroids have equal positions and brightness
        return hash((self.x, self.y, self.brightness))

    def __reduce__(self):
        return (Centroid, (self.x, self.y, self.brightness, self._cov))


def _call_model(model: Any, method: str, x, y):
    fn = getattr(model, method, None)
    if fn is None or not callable(fn):
        raise InvalidTypeError(
            f"distortion must have a {method}(x, y) method (e.g. RadialDistortion), "
            f"got {type(model).__name__}")
    out = fn(x, y)
    try:
        nx, ny = out
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"distortion.{method}(x, y) must return a pair (x, y)") from None
    return float(np.asarray(nx)), float(np.asarray(ny))


class ExtractionResult:
    """Stars found by :func:`extract_centroids`, brightest first; with
    ``demote_doubtful`` (the default) the ones flagged ``'doubtful'`` (see
    :attr:`flags`: on a JPEG, on a frame with a dark silhouette in front of the sky, or
    on a frame of undersampled stars)
    follow all the others, each group brightest first. ``demote_doubtful=False`` lists
    them all brightest first.

    Attributes
    ----------
    centroids : list of Centroid
        Detected stars, brightest first, the doubtful ones after the others (see
        above; built on first access).
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
    flags : ndarray of str
        Per centroid: why it was kept, one of :data:`KEPT_REASONS`.
    rejected : ndarray of :data:`REJECTED_DTYPE`
        The detections the extractor rejected, brightest first: fields ``x``,
        ``y`` (centred pixels, intensity-weighted), ``brightness``, ``npix``,
        ``peak`` and ``reason`` (one of :data:`REJECT_REASONS`). Detections
        merely beyond ``max_centroids`` are in neither list.
    sky_circle : tuple of float or None
        ``(x, y, radius)`` (centred pixels) of the all-sky lens's image circle the
        extraction kept to (``ExtractionOptions.sky_circle``), or None: the whole
        frame.
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
                peak, fitted, flags=None, rejected=None) -> None:
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
        if flags is None:
            flags = np.where(self.saturated, "saturated", "star")
        self.flags = np.asarray(flags, dtype="U10")
        self.rejected = (np.zeros(0, REJECTED_DTYPE) if rejected is None
                         else np.asarray(rejected, dtype=REJECTED_DTYPE))
        self.sky_circle = None

    @classmethod
    def _from_arrays(cls, x, y, brightness, cov, *, image_width, image_height,
                     background_mean, background_sigma, threshold, num_blobs_raw,
                     saturated, npix, peak, fitted, flags=None,
                     rejected=None) -> ExtractionResult:
        self = cls.__new__(cls)
        self._assign(None, x, y, brightness, cov, image_width=image_width,
                     image_height=image_height, background_mean=background_mean,
                     background_sigma=background_sigma, threshold=threshold,
                     num_blobs_raw=num_blobs_raw, saturated=saturated, npix=npix, peak=peak,
                     fitted=fitted, flags=flags, rejected=rejected)
        return self

    @property
    def centroids(self) -> list[Centroid]:
        """The stars as :class:`Centroid` objects, in :attr:`centroids`' order (a new
        list each time, as tetra3rs gives: reordering or trimming it leaves the result
        as it was; the objects in it are the result's own)."""
        return list(self._centroid_list())

    def _centroid_list(self) -> list[Centroid]:
        """The cached list :attr:`centroids` copies."""
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
        return iter(self._centroid_list())

    def __getitem__(self, index):
        return self._centroid_list()[index]

    def as_array(self) -> NDArray[np.float64]:
        """``(N, 3)`` float64 array of ``x, y, brightness`` (centred pixels), in
        :attr:`centroids`' order (brightest first, the doubtful ones after the others)."""
        return np.column_stack([self._x, self._y, self._brightness])

    def covariances(self) -> NDArray[np.float64]:
        """``(N, 2, 2)`` intensity-weighted second moments (px^2)."""
        return self._cov.copy()

    def to_table(self, origin: str = "center") -> Any:
        """The stars as an astropy ``Table``, in :attr:`centroids`' order (brightest
        first, the doubtful ones after the others).

        Parameters
        ----------
        origin : {'center', 'zero', 'fits'}
            Pixel convention of the ``x``, ``y`` columns: centred pixels (default),
            0-based array pixels (photutils' convention), or 1-based FITS pixels.

        Returns
        -------
        astropy.table.Table
            Columns ``x``, ``y``, ``brightness``, ``cov_xx``, ``cov_xy``, ``cov_yy``
            (px^2), ``saturated``, ``npix``, ``peak``, ``fitted``, ``flags`` (one of
            :data:`KEPT_REASONS`); ``meta`` holds the image size, ``origin`` and the
            background statistics. It goes back into a solve as
            ``solve_from_centroids(table, origin=origin, ...)``, in this order (a solve
            orders a table's rows by its flux column, but with a ``flags`` column the
            ``'doubtful'`` rows after the others).
        """
        from astropy.table import Table

        shift = origin_shift(origin, self.image_width, self.image_height)
        table = Table({"x": self._x + shift[0], "y": self._y + shift[1],
                       "brightness": self._brightness, "cov_xx": self._cov[:, 0, 0],
                       "cov_xy": self._cov[:, 0, 1], "cov_yy": self._cov[:, 1, 1],
                       "saturated": self.saturated, "npix": self.npix, "peak": self.peak,
                       "fitted": self.fitted, "flags": self.flags})
        table.meta.update(image_width=self.image_width, image_height=self.image_height,
                          origin=origin, background_mean=self.background_mean,
                          background_sigma=self.background_sigma, threshold=self.threshold)
        return table

    def __repr__(self) -> str:
        return (f"ExtractionResult({len(self)} centroids, {self.image_width}x{self.image_height},"
                f" background={self.background_mean:.6g}, sigma={self.background_sigma:.4g},"
                f" threshold={self.threshold:.4g}, num_blobs_raw={self.num_blobs_raw},"
                f" rejected={len(self.rejected)})")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_centroids"] = None  # rebuilt from the arrays on demand
        return state

    def __setstate__(self, state):
        # results pickled before flags and rejections existed
        state.setdefault("flags", np.where(state["saturated"], "saturated", "star"))
        state.setdefault("rejected", np.zeros(0, REJECTED_DTYPE))
        state.setdefault("sky_circle", None)
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
            # float64 casting would drop the imaginary part (an array's dtype says it at once)
            if (centroids.dtype.kind == "c" if isinstance(centroids, np.ndarray)
                    else np.iscomplexobj(centroids)):
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


#: Pixel origins of centroid positions (see :func:`centred_positions`).
ORIGINS = ("center", "zero", "fits")
#: Column-name pairs read as positions from a centroid table, in order of preference.
_XY_COLUMNS = (("x", "y"), ("xcentroid", "ycentroid"), ("X", "Y"), ("x_fit", "y_fit"),
               ("xcenter", "ycenter"), ("x_centroid", "y_centroid"),
               ("X_IMAGE", "Y_IMAGE"), ("XWIN_IMAGE", "YWIN_IMAGE"))  # (SExtractor's)
#: Column names read as brightness from a centroid table, in order of preference.
_FLUX_COLUMNS = ("brightness", "flux", "FLUX", "flux_fit", "segment_flux", "sum",
                 "aperture_sum", "FLUX_AUTO", "FLUX_ISO", "FLUX_BEST")


def is_table(obj: Any) -> bool:
    """Whether ``obj`` is a table of centroids (an astropy ``Table``/``QTable``)."""
    return hasattr(obj, "colnames") and hasattr(obj, "columns")


def as_table(obj: Any) -> Any:
    """A numpy structured array (sep's ``extract``) or a pandas ``DataFrame`` as an astropy
    ``Table`` of the same columns and rows; anything else unchanged."""
    if isinstance(obj, np.ndarray) and obj.dtype.names:
        from astropy.table import Table

        return Table(obj)
    if hasattr(obj, "columns") and hasattr(obj, "to_numpy") and hasattr(obj, "iloc"):
        from astropy.table import Table

        return Table.from_pandas(obj)
    return obj


def _column(table: Any, name: str, pixels: bool = False) -> NDArray[np.float64]:
    col = table[name]
    unit = getattr(col, "unit", None)
    if pixels and unit is not None and str(unit) not in ("", "pix", "pixel"):
        raise InvalidArgumentError(
            f"centroids: column {name!r} is in {unit}; positions must be in pixels")
    values = getattr(col, "value", col)  # a Quantity column (QTable) in pixels
    if hasattr(values, "filled"):
        values = values.filled(np.nan)
    return np.asarray(values, dtype=np.float64)


def origin_shift(origin: str, width: int, height: int) -> tuple[float, float]:
    """What to add to centred pixel coordinates for the ``origin`` convention
    (``'center'``, ``'zero'`` or ``'fits'``; see :func:`centred_positions`, its inverse)."""
    if origin not in ORIGINS:
        raise InvalidArgumentError(f"origin must be one of {list(ORIGINS)}, got {origin!r}")
    base = {"center": None, "zero": -0.5, "fits": 0.5}[origin]
    return (0.0, 0.0) if base is None else (base + 0.5 * width, base + 0.5 * height)


def centred_positions(xy: ArrayLike, origin: str | None, width: int, height: int,
                      name: str = "origin") -> NDArray[np.float64]:
    """Pixel positions ``(N, 2)`` converted to centred pixel coordinates.

    ``origin``: ``"center"`` (or None) for centred coordinates already (origin at the
    image centre), ``"zero"`` for 0-based array pixels (the centre of array pixel
    ``[row, col]`` is ``(col, row)``, as numpy, photutils and astropy's
    ``pixel_to_world`` count), ``"fits"`` for 1-based FITS pixels (that centre is
    ``(col + 1, row + 1)``, as ``.axy``/``.xyls`` files and FITS headers count).
    """
    xy = np.array(xy, dtype=np.float64, copy=True).reshape(-1, 2)
    if origin in (None, "center"):
        return xy
    if origin not in ORIGINS:
        raise InvalidArgumentError(f"{name} must be one of {list(ORIGINS)}, got {origin!r}")
    shift = 0.5 if origin == "zero" else -0.5
    xy[:, 0] += shift - 0.5 * width
    xy[:, 1] += shift - 0.5 * height
    return xy


def table_to_array(table: Any, name: str = "centroids"
                   ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Positions ``(N, 2)`` (in the table's own pixel convention) and brightness of a
    centroid table.

    Positions come from the pair of columns present among ``x``/``y``,
    ``xcentroid``/``ycentroid`` (photutils), ``X``/``Y`` (``.axy``/``.xyls``),
    ``x_fit``/``y_fit``, ``xcenter``/``ycenter``, ``x_centroid``/``y_centroid``,
    ``X_IMAGE``/``Y_IMAGE``, ``XWIN_IMAGE``/``YWIN_IMAGE`` (SExtractor) (two pairs with
    different values are refused); brightness from the first of ``brightness``,
    ``flux``, ``FLUX``, ``flux_fit``, ``segment_flux``, ``sum``, ``aperture_sum``,
    ``FLUX_AUTO``, ``FLUX_ISO``, ``FLUX_BEST`` (None when there is none).
    """
    names = set(table.colnames)
    pairs = [p for p in _XY_COLUMNS if p[0] in names and p[1] in names]
    if not pairs:
        raise InvalidArgumentError(
            f"{name}: the table has no position columns (one of "
            f"{', '.join('/'.join(p) for p in _XY_COLUMNS)}); it has {sorted(names)}")
    pair = pairs[0]
    xy = np.column_stack([_column(table, pair[0], True), _column(table, pair[1], True)])
    for other in pairs[1:]:
        # two pairs that disagree (x/y added beside photutils' xcentroid/ycentroid, say)
        # do not say which holds the positions: picking one would be a guess
        oxy = np.column_stack([_column(table, other[0], True), _column(table, other[1], True)])
        if not np.array_equal(xy, oxy, equal_nan=True):
            raise InvalidArgumentError(
                f"{name}: the table has two pairs of position columns with different "
                f"values, {'/'.join(pair)} and {'/'.join(other)}; keep the pair that holds "
                f"the positions (e.g. table.remove_columns({list(other)!r}))")
    if not np.isfinite(xy).all():
        # (masked entries were filled with NaN: a table of detections with gaps)
        bad = np.flatnonzero(~np.isfinite(xy).all(axis=1))
        rows = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise InvalidArgumentError(
            f"{name}: {'/'.join(pair)} of table row{'s' if len(bad) > 1 else ''} {rows} "
            f"({len(bad)} of {len(xy)}) are masked or not finite; remove those rows")
    flux = next((c for c in _FLUX_COLUMNS if c in names), None)
    if flux is None:
        return xy, None
    values = _column(table, flux)
    if values.shape != (len(xy),):  # (a vector column: one value per aperture, say)
        raise InvalidArgumentError(
            f"{name}: the flux column {flux!r} holds {values.shape[1:]} values per row; "
            "one is needed to order the stars (keep one, e.g. as a new column 'flux')")
    return xy, values
