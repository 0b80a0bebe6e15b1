"""Which centroid is which star: re-matching under the fitted model, and deeper catalogs.

Re-matching (:func:`rematch`)
    A solve matches catalog stars to centroids through its own, uncalibrated
    camera. Where the distortion moves stars by more than the spacing of the
    centroids (the corners of a crowded wide field), the centroid nearest to
    the undistorted prediction is often another star's: a first calibration
    from such solves can have half its pairs wrong, and a least-squares fit to
    all of them is pulled far enough that clipping cannot tell them apart.
    After a fit, every star of an image is therefore matched again to the
    nearest of *all* the image's centroids under the fitted model (one-to-one,
    within a few robust rms of it) and the fit is redone when that changed any
    pair -- what a solve with the fitted camera would match, done inside the
    calibration.
Deeper catalogs (:func:`match_catalog`)
    Stars of ``CalibrationOptions.catalog`` (the bundled Gaia catalog: many
    more than a solver database holds) are projected through each solve and
    matched to the centroids no database star took; only pairs whose star and
    centroid are both isolated (no other catalog star nor centroid within
    :data:`ISOLATION_PX`, so blends cannot bias them) are added.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..solver.backends.reference import kdtree_matches
from .lsq import Pairs, Params, Problem, robust_rms

if TYPE_CHECKING:  # pragma: no cover
    from .options import CalibrationOptions

__all__ = ["rematch", "match_catalog", "ISOLATION_PX", "REMATCH_SIGMAS"]

#: Neighbours closer than this (px) make a star or centroid unsafe to add from a catalog.
ISOLATION_PX = 4.0
#: Re-matching radius in robust rms residuals (at least 1 px).
REMATCH_SIGMAS = 4.0


def rematch(problem: Problem, params: Params, inliers: NDArray[np.bool_]) -> int:
    """Match every image's stars again under the fitted model; returns how many pairs
    changed (their centroid, or dropped for want of one). The pairs change in place."""
    res = problem.residuals(params)
    radius = max(REMATCH_SIGMAS * robust_rms(res[inliers]), 1.0)
    changed = 0
    for k, im in enumerate(problem.images):
        if im.centroids is None or im.cidx is None:
            continue
        pred = im.xy - res[problem.rows(k)]
        ok = np.all(np.isfinite(pred), axis=1)
        i, j, _ = kdtree_matches(cKDTree(im.centroids), pred[ok], radius)
        rows = np.flatnonzero(ok)[j]
        if len(rows) < 3:
            continue  # keep what the solve matched rather than lose the image
        new = np.asarray(i, dtype=np.intp)
        same = len(rows) == len(im) and np.array_equal(new, im.cidx[rows])
        if same:
            continue
        old = dict(zip(im.cidx.tolist(), range(len(im)), strict=True))
        changed += len(im) - sum(old.get(c) == r for c, r in zip(new.tolist(), rows.tolist(),
                                                                strict=True))
        order = np.argsort(rows)
        im.keep(rows[order], new[order])
    if changed:
        problem.refresh()
    return changed


def _catalog(options: CalibrationOptions) -> Any:
    if isinstance(options.catalog, str):
        from ..sky.catalogs import load_gaia

        return load_gaia()
    return options.catalog


def _isolated(points: NDArray[np.float64], radius: float) -> NDArray[np.bool_]:
    """Points with no other point within ``radius``."""
    if len(points) < 2:
        return np.ones(len(points), dtype=bool)
    d, _ = cKDTree(points).query(points, k=2)
    return d[:, 1] > radius


# KD-tree of the last catalog's unit vectors (building one for Gaia takes a moment)
_TREE: dict[str, Any] = {}


def _field(catalog: Any, res: Any, epoch: float | None) -> tuple[NDArray[np.float64],
                                                                NDArray[np.float64]]:
    """Catalog unit vectors (at ``epoch``) and magnitudes in a cone covering a solved image."""
    if _TREE.get("catalog") is not catalog:
        _TREE.update(catalog=catalog, tree=cKDTree(catalog.vectors()))
    cam = res.camera_model
    reach = 0.5 * math.hypot(cam.image_width, cam.image_height) + math.hypot(*cam.crpix)
    radius = math.atan(reach / cam.focal_length_px) * 1.05
    bore = np.asarray(res.rotation_matrix_icrs_to_camera)[2]
    idx = np.asarray(_TREE["tree"].query_ball_point(bore, 2.0 * math.sin(0.5 * radius)),
                     dtype=np.intp)
    sub = catalog.select(np.sort(idx))
    if epoch is not None and epoch != sub.epoch:
        sub = sub.propagate(epoch)
    return sub.vectors(), np.asarray(sub.mag, dtype=np.float64)


def _one_image(catalog: Any, im: Pairs, res: Any, epoch: float | None) -> int:
    from ..sky.aberration import aberrate

    vec, mag = _field(catalog, res, epoch)
    if im.velocity is not None and len(vec):
        vec = aberrate(vec, im.velocity)
    R = np.asarray(res.rotation_matrix_icrs_to_camera)
    px, py = res.camera_model.vectors_to_pixel(vec @ R.T)
    pred = np.stack([px, py], axis=1)
    cam = res.camera_model
    inside = (np.all(np.isfinite(pred), axis=1) & (np.abs(pred[:, 0]) < 0.5 * cam.image_width)
              & (np.abs(pred[:, 1]) < 0.5 * cam.image_height))
    pred, vec, mag = pred[inside], vec[inside], mag[inside]
    free = np.ones(len(im.centroids), dtype=bool)
    free[im.cidx] = False
    safe_c = free & _isolated(im.centroids, ISOLATION_PX)
    safe_s = _isolated(pred, ISOLATION_PX)
    rms_px = res.rmse_arcsec / (3600.0 * math.degrees(cam.pixel_scale()))
    radius = min(max(3.0 * rms_px, 1.0), 0.5 * ISOLATION_PX)
    crow = np.flatnonzero(safe_c)
    i, j, _ = kdtree_matches(cKDTree(im.centroids[crow]), pred[safe_s], radius)
    if not len(i):
        return 0
    stars = np.flatnonzero(safe_s)[j]
    cidx = crow[i]
    im.stars = np.concatenate([im.stars, vec[stars]])
    im.mag = np.concatenate([im.mag, mag[stars].astype(np.float64)])
    im.cidx = np.concatenate([im.cidx, cidx])
    im.xy = im.centroids[im.cidx]
    sat = (im.all_saturated[cidx] if im.all_saturated is not None
           else np.zeros(len(cidx), dtype=bool))
    im.saturated = np.concatenate([im.saturated, sat])
    return len(cidx)


def match_catalog(db: Any, images: list[Pairs], results: list,
                  options: CalibrationOptions) -> int:
    """Add isolated matches of ``options.catalog``'s stars to each image's pairs (in
    place); returns how many were added."""
    catalog = _catalog(options)
    epoch = db.parameters.get("epoch_proper_motion_year")
    epoch = None if epoch is None else float(epoch)
    added = 0
    for im in images:
        if im.centroids is not None and im.cidx is not None:
            added += _one_image(catalog, im, results[im.index], epoch)
    return added
