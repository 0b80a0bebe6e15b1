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
    within a few times the image's noise scale) and the fit is redone when that changed any
    pair -- what a solve with the fitted camera would match, done inside the
    calibration.
Deeper catalogs (:func:`match_catalog`)
    Stars of ``CalibrationOptions.catalog`` (the bundled Gaia catalog: many
    more than a solver database holds), propagated to the database's epoch
    and aberrated like the image's, are projected through a first fit of the
    camera and each image's attitude and scale -- the solves' own cameras may
    be uncalibrated -- and matched to the centroids no database star took,
    within a few robust rms of the fit; only pairs whose star and centroid
    are both isolated (no other catalog star nor centroid within
    :data:`ISOLATION_PX`, so blends cannot bias them) are added, and the
    camera is fitted again with them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from ..solver.backends import reference
from ..solver.backends.reference import kdtree_matches
from ..solver.frame import make_frame
from .lsq import Pairs, Params, Problem, robust_rms

if TYPE_CHECKING:  # pragma: no cover
    from .options import CalibrationOptions

__all__ = ["rematch", "match_catalog", "ISOLATION_PX", "REMATCH_SIGMAS"]

#: Neighbours closer than this (px) make a star or centroid unsafe to add from a catalog.
ISOLATION_PX = 4.0
#: Re-matching radius in noise scales of the image (at least 1 px).
REMATCH_SIGMAS = 4.0


def rematch(problem: Problem, params: Params, noise: NDArray[np.float64]) -> int:
    """Match every image's stars again under the fitted model, within
    :data:`REMATCH_SIGMAS` times the image's ``noise`` scale (px, see
    :func:`~skysolve.calibration.engine.image_noise`; at least 1 px); returns how many
    pairs changed (their centroid, or dropped for want of one). The pairs change in
    place."""
    res = problem.residuals(params)
    changed = 0
    for k, im in enumerate(problem.images):
        if im.centroids is None or im.cidx is None:
            continue
        pred = im.xy - res[problem.rows(k)]
        ok = np.all(np.isfinite(pred), axis=1)
        radius = max(REMATCH_SIGMAS * float(noise[k]), 1.0)
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


def _field(catalog: Any, camera: Any, R: NDArray[np.float64], epoch: float | None) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Catalog unit vectors (at ``epoch``) and magnitudes in a cone covering an image.

    The cone reaches the image's farthest corner as ``camera`` sees it, through its
    projection and distortion (:meth:`~skysolve.solver.frame.Frame.reach_angle`): a
    pinhole's ``atan`` of the raw corner distance left out the outer stars of a fisheye
    (beyond 47 of the 62 deg an equidistant 100 deg lens sees at its corners) and a
    barrel lens's corners.
    """
    if _TREE.get("catalog") is not catalog:
        _TREE.update(catalog=catalog, tree=cKDTree(catalog.vectors()))
    frame = make_frame(np.zeros((0, 2)), camera.image_width, camera.image_height, camera,
                       camera.projection, reference)
    radius = min(frame.reach_angle(camera.focal_length_px) * 1.05, math.pi)
    idx = np.asarray(_TREE["tree"].query_ball_point(R[2], 2.0 * math.sin(0.5 * radius)),
                     dtype=np.intp)
    sub = catalog.select(np.sort(idx))
    if epoch is not None and epoch != sub.epoch:
        sub = sub.propagate(epoch)
    return sub.vectors(), np.asarray(sub.mag, dtype=np.float64)


def _one_image(catalog: Any, im: Pairs, camera: Any, epoch: float | None,
               radius: float) -> int:
    """Add the isolated, mutual matches of ``catalog``'s stars to ``im`` under ``camera``
    (at the image's scale) and its attitude; returns how many."""
    from ..sky.aberration import aberrate

    vec, mag = _field(catalog, camera, im.R, epoch)
    if im.velocity is not None and len(vec):
        vec = aberrate(vec, im.velocity)
    px, py = camera.vectors_to_pixel(vec @ im.R.T)
    pred = np.stack([px, py], axis=1)
    inside = (np.all(np.isfinite(pred), axis=1)
              & (np.abs(pred[:, 0]) < 0.5 * camera.image_width)
              & (np.abs(pred[:, 1]) < 0.5 * camera.image_height))
    pred, vec, mag = pred[inside], vec[inside], mag[inside]
    free = np.ones(len(im.centroids), dtype=bool)
    free[im.cidx] = False
    crow = np.flatnonzero(free & _isolated(im.centroids, ISOLATION_PX))
    safe = _isolated(pred, ISOLATION_PX)
    if not len(crow) or not safe.any():
        return 0
    i, j, _ = kdtree_matches(cKDTree(im.centroids[crow]), pred[safe], radius)
    if not len(i):
        return 0
    stars = np.flatnonzero(safe)[j]
    cidx = crow[i]
    im.stars = np.concatenate([im.stars, vec[stars]])
    im.mag = np.concatenate([im.mag, mag[stars].astype(np.float64)])
    im.cidx = np.concatenate([im.cidx, cidx])
    im.xy = im.centroids[im.cidx]
    sat = (im.all_saturated[cidx] if im.all_saturated is not None
           else np.zeros(len(cidx), dtype=bool))
    im.saturated = np.concatenate([im.saturated, sat])
    return len(cidx)


def match_catalog(db: Any, problem: Problem, params: Params, camera: Any,
                  inliers: NDArray[np.bool_], options: CalibrationOptions) -> int:
    """Add isolated matches of ``options.catalog``'s stars to each image's pairs under a
    fit (``params``, its ``camera``, the images' attitudes and scales; in place, the
    problem's pair count refreshed); returns how many were added."""
    catalog = _catalog(options)
    epoch = db.parameters.get("epoch_proper_motion_year")
    epoch = None if epoch is None else float(epoch)
    radius = min(max(REMATCH_SIGMAS * robust_rms(problem.residuals(params)[inliers]), 1.0),
                 0.5 * ISOLATION_PX)
    added = 0
    for im in problem.images:
        if im.centroids is not None and im.cidx is not None:
            cam = camera.replace(focal_length_px=camera.focal_length_px * im.scale)
            added += _one_image(catalog, im, cam, epoch, radius)
    if added:
        problem.refresh()
    return added
