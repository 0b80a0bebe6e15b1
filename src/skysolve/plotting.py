"""Matplotlib views of solutions, match residuals and lens distortion.

Matplotlib is optional (``pip install skysolve[plot]``) and imported only when a
function here is called. Every function draws into ``ax`` when given, else into a
new figure from ``matplotlib.pyplot``, and returns the Axes (its ``.figure`` is the
Figure).

All plots use skysolve's centred pixel coordinates on both axes (origin at the
image centre, +x right, +y down, so the y axis points down as in an image viewer):
array pixel ``[row, col]`` is drawn at ``(col + 0.5 - W/2, row + 0.5 - H/2)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidArgumentError, InvalidTypeError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .camera.model import CameraModel
    from .database import SolverDatabase

__all__ = ["plot_solution", "plot_residuals", "plot_distortion", "plot_distortion_uncertainty",
           "REJECTED_MARKERS"]


def _require_matplotlib():
    """Import matplotlib or explain how to install it."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(
            "skysolve's plots need matplotlib: pip install skysolve[plot]") from exc
    return matplotlib


def _axes(ax: Axes | None, figsize: tuple[float, float] = (9.0, 7.0)) -> Axes:
    _require_matplotlib()
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _image_2d(image: ArrayLike) -> NDArray[np.float64]:
    from .io.images import read_image

    if isinstance(image, str) or hasattr(image, "__fspath__"):
        image = read_image(image)
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = read_image(a)  # colour -> luminance
    if a.ndim != 2 or a.size == 0:
        raise InvalidArgumentError(f"image must be a 2-D array, got shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise InvalidTypeError(f"image must be numeric, got dtype {a.dtype}")
    return a


def _stretch(image: NDArray, percentiles: tuple[float, float]) -> tuple[float, float]:
    finite = image[np.isfinite(image)] if image.dtype.kind == "f" else image
    if finite.size == 0:
        return 0.0, 1.0
    # a strided sample keeps percentiles of huge images cheap and nearly exact
    sample = finite.ravel()[:: max(1, finite.size // 1_000_000)]
    lo, hi = np.percentile(sample, percentiles)
    if not hi > lo:
        hi = lo + 1.0
    return float(lo), float(hi)


#: astropy.visualization stretches by name.
STRETCHES = ("linear", "sqrt", "log", "asinh", "sinh", "power")


def _norm(image: NDArray, percentiles: tuple[float, float], stretch: str) -> Any:
    """An astropy ``ImageNormalize``: ``stretch`` between the image's percentiles."""
    from astropy import visualization as vis

    if stretch not in STRETCHES:
        raise InvalidArgumentError(f"stretch must be one of {list(STRETCHES)}, got {stretch!r}")
    lo, hi = _stretch(image, percentiles)
    kind = {"linear": vis.LinearStretch, "sqrt": vis.SqrtStretch, "log": vis.LogStretch,
            "asinh": vis.AsinhStretch, "sinh": vis.SinhStretch,
            "power": lambda: vis.PowerStretch(2.0)}[stretch]
    return vis.ImageNormalize(vmin=lo, vmax=hi, stretch=kind(), clip=True)


def _wcs_axes(result: Any, width: int, height: int) -> Axes:
    """New WCSAxes whose data coordinates are centred pixels, with an RA/Dec grid."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    wcs = result.to_wcs().deepcopy()
    # centred x = col + 0.5 - W/2: the reference pixel moves by W/2 - 0.5 (SIP terms are
    # relative to it and stay valid)
    shift = np.array([0.5 * width - 0.5, 0.5 * height - 0.5])
    wcs.wcs.crpix = wcs.wcs.crpix - shift
    if wcs.sip is not None:
        from astropy.wcs import Sip

        wcs.sip = Sip(wcs.sip.a, wcs.sip.b, wcs.sip.ap, wcs.sip.bp, wcs.wcs.crpix)
    fig = plt.figure(figsize=(9.0, 7.0))
    ax = fig.add_subplot(projection=wcs)
    ax.coords.grid(True, color="deepskyblue", alpha=0.7, linestyle="dashed")
    ax.coords[0].set_axislabel("RA")
    ax.coords[1].set_axislabel("Dec")
    return ax


def _centroid_xy(centroids: Any) -> NDArray[np.float64]:
    from .centroids import centroids_to_array

    return centroids_to_array(centroids)[0]


def _extent(width: int, height: int) -> tuple[float, float, float, float]:
    """imshow extent in centred pixels: array edges at -W/2..W/2, -H/2..H/2 (y down)."""
    return (-width / 2, width / 2, height / 2, -height / 2)


def _size_of(result: Any, image: NDArray | None) -> tuple[int, int]:
    if image is not None:
        return int(image.shape[1]), int(image.shape[0])
    cam = getattr(result, "camera_model", None)
    if cam is None:
        raise InvalidArgumentError("an image is needed to plot a failed solve")
    return cam.image_width, cam.image_height


def _catalog_pixels(result: Any, db: SolverDatabase, ids: ArrayLike
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Projected centred pixel positions of catalog ids (NaN for unknown ids)."""
    ids = np.asarray(ids, dtype=np.int64)
    ra = np.full(len(ids), np.nan)
    dec = np.full(len(ids), np.nan)
    for k, cid in enumerate(ids):
        star = db.get_star_by_id(int(cid))
        if star is not None:
            ra[k], dec[k] = star.ra_deg, star.dec_deg
    if len(ids) == 0:
        return ra, dec
    ok = np.isfinite(ra)
    x = np.full(len(ids), np.nan)
    y = np.full(len(ids), np.nan)
    if ok.any():
        x[ok], y[ok] = result.world_to_pixel(ra[ok], dec[ok])
    return x, y


def _reach_deg(camera: CameraModel, width: int, height: int) -> float:
    """Largest angle (degrees) from the optical axis that the image's border reaches.

    Through the camera's own projection, so a fisheye reaches past 90°; a
    border leaving the projection's image circle reaches as far as it goes.
    """
    from .camera.projection import max_angle

    t = np.linspace(-0.5, 0.5, 33)
    edge = np.full(33, 0.5)
    x = np.concatenate([t * width, t * width, -edge * width, edge * width])
    y = np.concatenate([-edge * height, edge * height, t * height, t * height])
    z = camera.pixel_to_vectors(x, y)[:, 2]
    if not np.isfinite(z).all():
        return float(np.degrees(max_angle(camera.projection_code)))
    return float(np.degrees(np.arccos(np.clip(z.min(), -1.0, 1.0))))


def _field_stars(result: Any, db: SolverDatabase, width: int, height: int, limit: int
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Brightest catalog stars projected inside the image: x, y, catalog id."""
    radius = _reach_deg(result.camera_model, width, height) * 1.1
    idx = db.cone_indices(result.ra_deg, result.dec_deg, min(radius, 180.0))
    empty = np.zeros(0)
    if len(idx) == 0:
        return empty, empty, np.zeros(0, np.int64)
    stars = [db.get_star(int(i)) for i in idx[: max(limit * 4, 50)]]
    ra = np.array([s.ra_deg for s in stars])
    dec = np.array([s.dec_deg for s in stars])
    ids = np.array([s.id for s in stars], dtype=np.int64)
    x, y = result.world_to_pixel(ra, dec)
    with np.errstate(invalid="ignore"):  # NaN: directions the projection does not image
        inside = (np.isfinite(x) & (np.abs(x) <= width / 2) & (np.abs(y) <= height / 2))
    keep = np.flatnonzero(inside)[:limit]
    return x[keep], y[keep], ids[keep]


#: How rejected detections are drawn: reason -> (marker, colour). Single-peak noise
#: blobs ('small') are far too many to be worth drawing.
REJECTED_MARKERS = {"large": ("D", "magenta"), "border": ("s", "0.6"), "sharp": ("x", "red"),
                    "overlay": ("_", "cyan"), "elongated": ("d", "orange"),
                    "diffuse": ("o", "violet"), "trail": ("^", "lime"),
                    "foreground": ("s", "brown"), "blend": ("v", "pink"), "narrow": ("+", "red")}


def _draw_rejected(ax: Axes, centroids: Any, ring: float) -> None:
    """The detections an extraction rejected, one marker per reason (not 'small')."""
    rejected = getattr(centroids, "rejected", None)
    if rejected is None or len(rejected) == 0:
        return
    for reason, (marker, colour) in REJECTED_MARKERS.items():
        sel = rejected["reason"] == reason
        if not sel.any():
            continue
        filled = marker in ("x", "+", "_")
        ax.scatter(rejected["x"][sel], rejected["y"][sel], marker=marker, s=(0.8 * ring) ** 2,
                   facecolors=colour if filled else "none", edgecolors=colour,
                   linewidths=0.8, label=f"rejected: {reason} ({int(sel.sum())})")


def plot_solution(image: ArrayLike, result: Any, centroids: Any,
                  db: SolverDatabase | None = None, ax: Axes | None = None, *,
                  percentiles: tuple[float, float] = (1.0, 99.5), max_field_stars: int = 200,
                  max_labels: int = 20, cmap: str = "gray", stretch: str = "linear",
                  wcs_grid: bool = False, show_rejected: bool = True) -> Axes:
    """Draw an image with its detected, matched and catalog stars.

    Parameters
    ----------
    image : 2-D array_like or path
        The image that was solved (a path is read with :func:`skysolve.read_image`).
    result : SolveResult or SolveFailure
        The solve; for a failure only the image and the centroids are drawn.
    centroids : list of Centroid, ExtractionResult or (N, 2) array
        The centroids given to the solver (``result.matched_centroids`` indexes them).
    db : SolverDatabase, optional
        The database solved against; needed to draw catalog positions (projected
        matched stars and the other catalog stars in the field).
    ax : matplotlib Axes, optional
        Draw here; default a new figure.
    percentiles : (float, float)
        Display stretch: the image is scaled linearly between these percentiles.
    max_field_stars : int
        Largest number of unmatched catalog stars drawn (brightest first).
    max_labels : int
        Matched stars labelled with their catalog id (brightest first).
    cmap : str
        Matplotlib colour map of the image.
    stretch : {'linear', 'sqrt', 'log', 'asinh', 'sinh', 'power'}
        astropy visualization stretch applied between the percentiles.
    wcs_grid : bool
        Draw on astropy WCSAxes (a new figure; ``ax`` must be None): an RA/Dec
        coordinate grid from the solution's WCS over the image (a solved image only).
    show_rejected : bool
        When ``centroids`` is an :class:`~skysolve.ExtractionResult`, also draw
        the detections the extractor rejected, one marker per reason
        (:data:`REJECTED_MARKERS`; the many one- and two-pixel noise blobs,
        reason ``'small'``, are left out).

    Returns
    -------
    matplotlib.axes.Axes
        A WCSAxes with ``wcs_grid``; its data coordinates are still centred pixels.

    Notes
    -----
    Markers: matched centroids are yellow circles, their catalog stars projected
    through the solution cyan crosses, unmatched centroids small red circles and
    other catalog stars in the field orange squares (a catalog star without a
    centroid is fainter than the detection limit or lost in a blend). Rejected
    detections are labelled ``"rejected: <reason> (<count>)"`` in the legend.
    """
    img = _image_2d(image)
    h, w = img.shape
    if wcs_grid and bool(result):
        if ax is not None:
            raise InvalidArgumentError("wcs_grid draws on new WCSAxes: do not pass ax")
        ax = _wcs_axes(result, w, h)
    else:
        ax = _axes(ax)
    if hasattr(ax, "coords"):
        # WCSAxes refuse origin="upper": the same placement (row 0 at y = -h/2) as "lower"
        ax.imshow(img, cmap=cmap, norm=_norm(img, percentiles, stretch),
                  extent=(-w / 2, w / 2, -h / 2, h / 2), origin="lower", interpolation="nearest")
    else:
        ax.imshow(img, cmap=cmap, norm=_norm(img, percentiles, stretch), extent=_extent(w, h),
                  origin="upper", interpolation="nearest")
    xy = _centroid_xy(centroids)
    solved = bool(result)
    matched = np.zeros(len(xy), bool)
    if solved:
        mc = np.asarray(result.matched_centroids, dtype=np.intp)
        if mc.size and (mc.min() < 0 or mc.max() >= len(xy)):
            raise InvalidArgumentError(
                "result.matched_centroids index outside centroids: pass the centroids "
                "that were solved")
        matched[mc] = True
    ring = max(4.0, 0.008 * max(w, h))
    ax.scatter(xy[~matched, 0], xy[~matched, 1], s=(0.6 * ring) ** 2, facecolors="none",
               edgecolors="red", linewidths=0.7, label=f"unmatched centroids ({(~matched).sum()})")
    if show_rejected:
        _draw_rejected(ax, centroids, ring)
    if solved:
        ax.scatter(xy[matched, 0], xy[matched, 1], s=(1.4 * ring) ** 2, facecolors="none",
                   edgecolors="yellow", linewidths=1.0,
                   label=f"matched centroids ({matched.sum()})")
    if solved and db is not None:
        ids = np.asarray(result.matched_catalog_ids, dtype=np.int64)
        fx, fy, fid = _field_stars(result, db, w, h, max_field_stars + len(ids))
        other = ~np.isin(fid, ids)
        ax.scatter(fx[other][:max_field_stars], fy[other][:max_field_stars], marker="s",
                   s=(0.9 * ring) ** 2, facecolors="none", edgecolors="orange",
                   linewidths=0.6, label="other catalog stars")
        cx, cy = _catalog_pixels(result, db, ids)
        ax.scatter(cx, cy, marker="+", s=(1.2 * ring) ** 2, color="cyan", linewidths=0.9,
                   label="matched catalog stars")
        # the database's star table is brightest first, so its index ranks brightness
        index = [db.index_of_id(int(i)) for i in ids]
        rank = np.array([db.num_stars if i is None else i for i in index], dtype=np.int64)
        for k in np.argsort(rank, kind="stable")[:max_labels]:
            if np.isfinite(cx[k]):
                ax.annotate(str(int(ids[k])), (cx[k], cy[k]), xytext=(5, 5),
                            textcoords="offset points", color="cyan", fontsize=7)
    ax.set_xlim(-w / 2, w / 2)
    ax.set_ylim(h / 2, -h / 2)
    if not hasattr(ax, "coords"):  # WCSAxes label their own RA/Dec axes
        ax.set_xlabel("x (px from centre)")
        ax.set_ylabel("y (px from centre)")
    if solved:
        ax.set_title(f"RA {result.ra_deg:.4f}  Dec {result.dec_deg:+.4f}  roll "
                     f"{result.roll_deg:.2f}  FOV {result.fov_deg:.3f} deg  "
                     f"{result.num_matches} matches  RMSE {result.rmse_arcsec:.1f}\"")
    else:
        status = getattr(result, "status", "not solved")
        ax.set_title(f"not solved ({str(status).replace('_', ' ')}), {len(xy)} centroids")
    ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    return ax


def plot_residuals(result: Any, centroids: Any, db: SolverDatabase, ax: Axes | None = None,
                   scale: float | None = None, *, image_shape: tuple[int, int] | None = None
                   ) -> Axes:
    """Quiver plot of match residuals: centroid minus projected catalog position.

    Parameters
    ----------
    result : SolveResult
        A successful solve.
    centroids : list of Centroid, ExtractionResult or (N, 2) array
        The centroids that were solved.
    db : SolverDatabase
        The database solved against (for the matched stars' positions).
    ax : matplotlib Axes, optional
    scale : float, optional
        Arrow magnification (arrow length in px per px of residual). Default: the
        largest residual is drawn 8% of the image width long.
    image_shape : (int, int), optional
        ``(height, width)`` of the frame; default the solution's camera model.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Arrows start at the centroids. Systematic patterns (radial growth towards
    the corners, a swirl) show distortion the camera model lacks; random
    directions of centroid-noise size mean a good model.
    """
    if not result:
        raise InvalidArgumentError("result must be a successful SolveResult to plot residuals")
    xy = _centroid_xy(centroids)
    mc = np.asarray(result.matched_centroids, dtype=np.intp)
    if mc.size and (mc.min() < 0 or mc.max() >= len(xy)):
        raise InvalidArgumentError("result.matched_centroids index outside centroids")
    if image_shape is None:
        h, w = result.camera_model.image_shape
    else:
        h, w = int(image_shape[0]), int(image_shape[1])
    cx, cy = _catalog_pixels(result, db, result.matched_catalog_ids)
    px, py = xy[mc, 0], xy[mc, 1]
    dx, dy = px - cx, py - cy
    ok = np.isfinite(dx) & np.isfinite(dy)
    px, py, dx, dy = px[ok], py[ok], dx[ok], dy[ok]
    length = np.hypot(dx, dy)
    if scale is None:
        top = float(length.max()) if length.size else 0.0
        scale = 0.08 * w / top if top > 0 else 1.0
    elif not (np.isfinite(scale) and scale > 0):
        raise InvalidArgumentError(f"scale must be a positive number, got {scale!r}")
    ax = _axes(ax)
    q = ax.quiver(px, py, dx * scale, dy * scale, length, angles="xy", scale_units="xy",
                  scale=1.0, cmap="viridis", width=0.003)
    ax.figure.colorbar(q, ax=ax, label="residual (px)", shrink=0.8)
    key = float(np.percentile(length, 90)) if length.size else 1.0
    key = float(f"{key:.1g}") if key > 0 else 1.0
    ax.quiverkey(q, 0.9, 0.04, key * scale, f"{key:g} px", labelpos="W", coordinates="axes",
                 fontproperties={"size": 8})
    ax.add_patch(_frame_patch(w, h))
    ax.set_xlim(-w / 2 * 1.02, w / 2 * 1.02)
    ax.set_ylim(h / 2 * 1.02, -h / 2 * 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px from centre)")
    ax.set_ylabel("y (px from centre)")
    rms = float(np.sqrt(np.mean(length ** 2))) if length.size else float("nan")
    ax.set_title(f"residuals of {len(length)} matches (RMS {rms:.3f} px), arrows x{scale:.3g}",
                 loc="left", fontsize=9)
    return ax


def _frame_patch(w: float, h: float):
    from matplotlib.patches import Rectangle

    return Rectangle((-w / 2, -h / 2), w, h, fill=False, edgecolor="0.5", linewidth=0.8)


def _image_frame(ax: Axes, w: float, h: float) -> None:
    """The image's outline, limits (y down), equal aspect and axis labels."""
    ax.add_patch(_frame_patch(w, h))
    ax.set_xlim(-w / 2, w / 2)
    ax.set_ylim(h / 2, -h / 2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px from centre)")
    ax.set_ylabel("y (px from centre)")


def plot_distortion(camera_model: CameraModel, ax: Axes | None = None, grid: int = 15,
                    scale: float | None = None, *, contour_levels: int = 10) -> Axes:
    """Map of a camera's lens distortion over its image.

    Parameters
    ----------
    camera_model : CameraModel
    ax : matplotlib Axes, optional
    grid : int
        Arrows per image row (>= 2); rows follow from the aspect ratio.
    scale : float, optional
        Arrow magnification; default the longest arrow is one grid cell long.
    contour_levels : int
        Number of filled contour levels of the displacement magnitude.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The displacement is ``distorted - ideal``: where the model moves a star
    image that a distortion-free lens of the same projection, focal length and
    optical centre would put at ``ideal`` (both in centred pixels). The colour
    shows its length in pixels, the arrows its direction; the cross marks the
    optical centre. For a fisheye projection, dashed cyan lines label the angle
    from the optical axis (every 30°, distortion included) and the dotted line
    is the edge of what the projection images (its image circle), when those
    fall on the image.
    """
    from .camera.model import CameraModel

    if not isinstance(camera_model, CameraModel):
        raise InvalidTypeError(
            f"camera_model must be a CameraModel, got {type(camera_model).__name__}")
    if isinstance(grid, bool) or not isinstance(grid, int | np.integer) or grid < 2:
        raise InvalidArgumentError(f"grid must be an integer >= 2, got {grid!r}")
    w, h = camera_model.image_width, camera_model.image_height
    c = np.asarray(camera_model.crpix, dtype=np.float64)
    dist = camera_model.distortion

    def displacement(x: NDArray, y: NDArray) -> tuple[NDArray, NDArray]:
        if dist is None:
            return np.zeros_like(x), np.zeros_like(y)
        u, v = dist.distort(x - c[0], y - c[1])
        return np.asarray(u) + c[0] - x, np.asarray(v) + c[1] - y

    ax = _axes(ax)
    nf = 80
    fx, fy = np.meshgrid(np.linspace(-w / 2, w / 2, nf),
                         np.linspace(-h / 2, h / 2, max(2, round(nf * h / w))))
    ddx, ddy = displacement(fx.ravel(), fy.ravel())
    mag = np.hypot(ddx, ddy).reshape(fx.shape)
    top = float(np.nanmax(mag)) if np.isfinite(mag).any() else 0.0
    if top > 0:
        cs = ax.contourf(fx, fy, mag, levels=contour_levels, cmap="magma")
        ax.figure.colorbar(cs, ax=ax, label="|distortion| (px)", shrink=0.8)
    ny = max(2, round(grid * h / w))
    step = w / grid
    gx, gy = np.meshgrid(np.linspace(-w / 2 + step / 2, w / 2 - step / 2, grid),
                         np.linspace(-h / 2 + h / ny / 2, h / 2 - h / ny / 2, ny))
    gdx, gdy = displacement(gx.ravel(), gy.ravel())
    if scale is None:
        longest = float(np.nanmax(np.hypot(gdx, gdy))) if gdx.size else 0.0
        scale = step / longest if longest > 0 else 1.0
    elif not (np.isfinite(scale) and scale > 0):
        raise InvalidArgumentError(f"scale must be a positive number, got {scale!r}")
    ax.quiver(gx.ravel(), gy.ravel(), gdx * scale, gdy * scale, angles="xy",
              scale_units="xy", scale=1.0, color="white" if top > 0 else "black", width=0.003)
    ax.plot([c[0]], [c[1]], marker="+", color="cyan", markersize=12, mew=1.5)
    if camera_model.projection != "pinhole":
        _off_axis_contours(ax, camera_model, fx, fy)
    _image_frame(ax, w, h)
    kind = type(dist).__name__ if dist is not None else "no distortion"
    lens = "" if camera_model.projection == "pinhole" else f"{camera_model.projection} lens, "
    ax.set_title(f"{lens}{kind}: max {top:.3g} px over the image, arrows x{scale:.3g}",
                 fontsize=9)
    return ax


def plot_distortion_uncertainty(result: Any, ax: Axes | None = None, image: int | None = None,
                                method: str = "fit", grid: int = 25, *,
                                arcsec: bool = False, contour_levels: int = 10) -> Axes:
    """Map of a calibration's 1-sigma mapping uncertainty over the image.

    Parameters
    ----------
    result : CalibrateResult
    ax : matplotlib Axes, optional
    image : int, optional
        Index of one calibrated image (its attitude and scale included);
        default the rms over the calibration's images.
    method : {'fit', 'bootstrap'}
        Covariance from the fit, or from the bootstrap resamples.
    grid : int
        Grid points per image row (>= 2).
    arcsec : bool
        Show arcseconds (at the camera's plate scale) instead of pixels.
    contour_levels : int

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    The colour is :meth:`CalibrateResult.mapping_sigma_px`: the rms length of
    the error of where the calibrated mapping puts a sky direction,
    propagated from the covariance of every fitted parameter. Dots mark the
    stars the fit kept when one image is shown.
    """
    if not hasattr(result, "mapping_sigma_px") or not hasattr(result, "camera_model"):
        raise InvalidTypeError(f"result must be a CalibrateResult, got {type(result).__name__}")
    if isinstance(grid, bool) or not isinstance(grid, int | np.integer) or grid < 2:
        raise InvalidArgumentError(f"grid must be an integer >= 2, got {grid!r}")
    cam = result.camera_model
    w, h = cam.image_width, cam.image_height
    ny = max(2, round(grid * h / w))
    gx, gy = np.meshgrid(np.linspace(-w / 2, w / 2, grid), np.linspace(-h / 2, h / 2, ny))
    sigma = result.mapping_sigma_px(gx.ravel(), gy.ravel(), image, method).reshape(gx.shape)
    unit = "px"
    if arcsec:
        sigma = sigma * np.degrees(cam.pixel_scale()) * 3600.0
        unit = '"'
    ax = _axes(ax)
    cs = ax.contourf(gx, gy, sigma, levels=contour_levels, cmap="viridis")
    ax.figure.colorbar(cs, ax=ax, label=f"1-sigma mapping uncertainty ({unit})", shrink=0.8)
    _image_frame(ax, w, h)
    which = "rms over the images" if image is None else f"image {image}"
    ax.set_title(f"1-sigma ({method}, {which}): median {np.median(sigma):.3g}{unit}, "
                 f"max {np.max(sigma):.3g}{unit}", fontsize=9)
    return ax


def _off_axis_contours(ax: Axes, camera_model: CameraModel, fx: NDArray, fy: NDArray) -> None:
    """Lines of equal angle from the optical axis (every 30°) and the image circle's edge."""
    from .camera.projection import max_angle, radius_of_angle

    z = camera_model.pixel_to_vectors(fx, fy)[..., 2]
    theta = np.degrees(np.arccos(np.clip(z, -1.0, 1.0)))
    levels = [t for t in range(30, 180, 30) if np.nanmin(theta) < t < np.nanmax(theta)]
    if levels:
        cs = ax.contour(fx, fy, theta, levels=levels, colors="cyan", linewidths=0.7,
                        linestyles="dashed")
        ax.clabel(cs, fmt="%d°", fontsize=7, colors="cyan")
    # the edge of the projection's image: the circle |p| = g(max angle) of the plane
    code = camera_model.projection_code
    rho = float(radius_of_angle(max_angle(code), code))
    if np.isfinite(rho):
        phi = np.linspace(0.0, 2.0 * np.pi, 361)
        ex, ey = camera_model.plane_to_pixel(rho * np.cos(phi), rho * np.sin(phi))
        ax.plot(ex, ey, color="cyan", linewidth=0.9, linestyle="dotted",
                label="edge of the image circle")
