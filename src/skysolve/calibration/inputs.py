"""The calibration's inputs: solve results and centroid sets → matched pairs per image.

Every successful solve gives one :class:`~skysolve.calibration.lsq.Pairs`: the
observed centred pixels of its matched centroids, the catalog unit vectors of
their stars made apparent for the image's observer velocity (aberrated; see
below), their catalog magnitudes and saturation flags (when the centroid set
is an :class:`~skysolve.ExtractionResult`), and the solve's attitude.

The velocity of an image is, in order: its entry of
``CalibrationOptions.observer_velocities_km_s``, the Earth's barycentric
velocity at its entry of ``observation_times``, or the velocity it was solved
with. Aberrating every star individually removes the *differential* velocity
aberration across the field (a change of plate scale of up to ``|v|/c ~
1e-4`` between images plus second-order terms); the uniform part only rotates
the attitude.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .. import _args
from ..camera.model import CameraModel
from ..centroids import ExtractionResult, centroids_to_array
from ..errors import InvalidArgumentError, InvalidTypeError, warn_caller
from ..solver.result import SolveFailure, SolveResult
from .lsq import Pairs
from .options import CalibrationOptions

if TYPE_CHECKING:  # pragma: no cover
    from ..solver.database import PatternDatabase

__all__ = ["MIN_MATCHES_PER_IMAGE", "pair_lists", "image_pairs"]

#: Fewest matched stars an image must have to take part in a calibration.
MIN_MATCHES_PER_IMAGE = 3


def pair_lists(solve_results: Any, centroids: Any) -> tuple[list, list]:
    """``(results, centroid sets)`` as equal-length lists, from the accepted call forms."""
    if solve_results is None or isinstance(solve_results, SolveFailure | SolveResult):
        return [solve_results], [centroids]
    if not isinstance(solve_results, Sequence) or isinstance(solve_results, str | bytes):
        raise InvalidTypeError(
            "solve_results must be a SolveResult or a list of SolveResult/SolveFailure/None,"
            f" got {type(solve_results).__name__}")
    results = list(solve_results)
    if len(results) == 1 and _one_centroid_set(centroids):
        centroids = [centroids]
    if isinstance(centroids, np.ndarray) or not isinstance(centroids, Sequence):
        raise InvalidTypeError(
            "centroids must be a list with one centroid set per solve result, got "
            f"{type(centroids).__name__}")
    cents = list(centroids)
    if len(cents) != len(results):
        raise InvalidArgumentError(
            f"solve_results and centroids must have the same length, got {len(results)} "
            f"and {len(cents)}")
    return results, cents


def _one_centroid_set(centroids: Any) -> bool:
    """Whether ``centroids`` is a single centroid set rather than a list of sets."""
    if isinstance(centroids, ExtractionResult):
        return True
    if isinstance(centroids, np.ndarray):
        return centroids.ndim == 2 and centroids.dtype != object
    if isinstance(centroids, Sequence) and len(centroids):
        return hasattr(centroids[0], "x")
    return False


def _velocities(options: CalibrationOptions, n: int) -> list[NDArray[np.float64] | None]:
    """The velocity each of ``n`` results asks for through the options (None: its own)."""
    out: list[NDArray[np.float64] | None] = [None] * n
    for name, values in (("observer_velocities_km_s", options.observer_velocities_km_s),
                         ("observation_times", options.observation_times)):
        if values is not None and len(values) != n:
            raise InvalidArgumentError(
                f"{name} must have one entry per solve result ({n}), got {len(values)}")
    if options.observation_times is not None:
        from ..sky.aberration import earth_barycentric_velocity

        for i, t in enumerate(options.observation_times):
            if t is not None:
                out[i] = np.asarray(earth_barycentric_velocity(t), dtype=np.float64)
    if options.observer_velocities_km_s is not None:
        for i, v in enumerate(options.observer_velocities_km_s):
            if v is not None:
                out[i] = np.asarray(v, dtype=np.float64)
    return out


def _checked_indices(i: int, res: SolveResult, n_centroids: int) -> tuple[
        NDArray[np.intp], NDArray[np.int64]]:
    idx = np.asarray(res.matched_centroids, dtype=np.intp)
    ids = np.asarray(res.matched_catalog_ids, dtype=np.int64)
    if len(idx) < MIN_MATCHES_PER_IMAGE:
        raise InvalidArgumentError(
            f"solve_results[{i}] has {len(idx)} matched stars; calibration needs at least "
            f"{MIN_MATCHES_PER_IMAGE} per image")
    if len(ids) != len(idx):
        raise InvalidArgumentError(
            f"solve_results[{i}] has {len(idx)} matched centroids but {len(ids)} catalog ids")
    if idx.min() < 0 or idx.max() >= n_centroids:
        raise InvalidArgumentError(
            f"solve_results[{i}].matched_centroids index past the {n_centroids} entries of "
            f"centroids[{i}]: pass the centroid set that was solved")
    return idx, ids


def _one_image(db: PatternDatabase, i: int, res: Any, cs: Any,
               velocity: NDArray[np.float64] | None) -> tuple[Pairs, float]:
    """The matched pairs of result ``i`` and their squared residual sum under its solve."""
    from ..sky.aberration import aberrate

    if not isinstance(res, SolveResult):
        raise InvalidTypeError(
            f"solve_results[{i}] must be a SolveResult, SolveFailure or None, got "
            f"{type(res).__name__}")
    xy, _ = centroids_to_array(cs, name=f"centroids[{i}]")
    idx, ids = _checked_indices(i, res, len(xy))
    star_idx = db.indices_of_ids(ids)
    if np.any(star_idx < 0):
        raise InvalidArgumentError(
            f"solve_results[{i}] matched catalog id {int(ids[star_idx < 0][0])}, which is "
            "not in this database")
    matched = np.asarray(getattr(res, "matched_xy", np.zeros((0, 2))), dtype=np.float64)
    if len(matched) == len(idx) and len(idx) and np.isfinite(matched).all():
        off = np.hypot(*(xy[idx] - matched).T)
        # (re-measured centroids may move a little, single ones a lot: the median tells a
        # set in another pixel convention or order from them)
        if float(np.median(off)) > _MOVED_PX:
            k = int(np.argsort(off)[len(off) // 2])
            raise InvalidArgumentError(
                f"centroids[{i}] are not the centroids solve_results[{i}] was solved from "
                f"(its centroid {int(idx[k])} is at ({xy[idx[k], 0]:.2f}, {xy[idx[k], 1]:.2f}) "
                f"px, where the solve matched ({matched[k, 0]:.2f}, {matched[k, 1]:.2f})): "
                "give each solve's own centroids, in its order, in centred pixel coordinates")
    natural = np.asarray(db.star_vectors[star_idx], dtype=np.float64)
    solved_v = res.observer_velocity_km_s
    solved = natural if solved_v is None else aberrate(natural, solved_v)
    obs = xy[idx]
    R = np.asarray(res.rotation_matrix_icrs_to_camera, dtype=np.float64)
    px, py = res.camera_model.vectors_to_pixel(solved @ R.T)
    d = obs - np.stack([px, py], axis=1)
    if velocity is None:
        velocity = None if solved_v is None else np.asarray(solved_v, dtype=np.float64)
        stars = solved
    else:
        stars = aberrate(natural, velocity)
    mag = np.asarray(db.star_magnitudes[star_idx], dtype=np.float64)
    all_sat = (np.asarray(cs.saturated, dtype=bool)
               if isinstance(cs, ExtractionResult) and len(cs.saturated) == len(xy) else None)
    sat = all_sat[idx] if all_sat is not None else np.zeros(len(idx), dtype=bool)
    return (Pairs(i, obs, stars, mag, sat, R, 1.0, velocity, xy, idx, all_sat),
            float(np.nansum(d * d)))


#: Median distance (px) of the centroids given from the positions their solve matched
#: beyond which they are not its centroids (another pixel convention: hundreds of px).
_MOVED_PX = 3.0
#: An image whose pairs fit its own solve this many times worse than the median image's
#: (and by more than :data:`_MISFIT_PX`) does not belong to its solve (swapped centroid
#: sets, permuted catalog ids): 600 px against 10-12 px measured for swapped sets.
_MISFIT_FACTOR = 10.0
_MISFIT_PX = 50.0


def _check_own_fits(images: list[Pairs], fits: list[float]) -> None:
    """Refuse an image whose pairs do not fit its own solve (needs three images to tell)."""
    if len(fits) < 3:
        return
    med = float(np.median(fits))
    worst = int(np.argmax(fits))
    if fits[worst] > max(_MISFIT_FACTOR * med, _MISFIT_PX):
        i = images[worst].index
        raise InvalidArgumentError(
            f"solve_results[{i}] and centroids[{i}] do not belong together: its matched "
            f"centroids lie {fits[worst]:.0f} px (rms) from where its own solve puts their "
            f"catalog stars, the median image's {med:.1f} px (swapped centroid sets or "
            "catalog ids?)")


def _one_projection(images: list[Pairs], cameras: list[CameraModel]) -> list[CameraModel]:
    """``cameras``, those of a lens projection other than most images' replaced by one of
    most images' (with a warning): solves told no projection guess each frame's (a
    wide lens's frames can differ), and the matched stars of all are calibrated under the
    one most took; their attitudes are refitted under it anyway. Refused when no
    projection has more images than every other."""
    counts = collections.Counter(cam.projection for cam in cameras).most_common()
    if len(counts) == 1:
        return cameras
    top = counts[0][0]
    if counts[0][1] == counts[1][1]:
        raise InvalidArgumentError(
            "solve_results disagree on the lens projection: images of one camera share one "
            f"(got {dict(counts)} images); solve them with the lens's projection named "
            "(projection=)")
    stand_in = next(cam for cam in cameras if cam.projection == top)
    for im, cam in zip(images, cameras, strict=True):
        if cam.projection != top:
            warn_caller(
                f"solve_results[{im.index}] was solved with the {cam.projection} "
                f"projection, {counts[0][1]} of {len(cameras)} images with the {top}: its "
                f"matched stars are calibrated under the {top} (solve with projection= "
                "named to hold every image to one)", UserWarning)
    return [cam if cam.projection == top else stand_in for cam in cameras]


def image_pairs(db: PatternDatabase, results: list, cents: list,
                options: CalibrationOptions) -> tuple[list[Pairs], list[CameraModel],
                                                      dict[int, float], int, int]:
    """Every successful solve's pairs and camera, each image's squared residual sum
    under its solve (by result index: the rmse before is over the images that take
    part), and the image size."""
    velocities = _velocities(options, len(results))
    images, cameras, fits = [], [], []
    before_sq: dict[int, float] = {}
    for i, (res, cs) in enumerate(zip(results, cents, strict=True)):
        if res is None or isinstance(res, SolveFailure):
            continue
        im, sq = _one_image(db, i, res, cs, velocities[i])
        images.append(im)
        cameras.append(res.camera_model)
        fits.append(math.sqrt(sq / max(len(im.xy), 1)))
        before_sq[i] = sq
    if not images:
        raise InvalidArgumentError("solve_results holds no successful solve to calibrate from")
    _check_own_fits(images, fits)
    # an explicit size is checked against every image below, naming the image
    explicit = any(v is not None for v in (options.image_width, options.image_height,
                                           options.image_shape))
    width, height = _args.image_size(options.image_width, options.image_height,
                                     options.image_shape, () if explicit else cameras[:1])
    for im, cam in zip(images, cameras, strict=True):
        if (cam.image_width, cam.image_height) != (width, height):
            raise InvalidArgumentError(
                f"solve_results[{im.index}] was solved for a {cam.image_width}x"
                f"{cam.image_height} image, not the {width}x{height} being calibrated")
    if len({cam.parity_flip for cam in cameras}) > 1:
        raise InvalidArgumentError(
            "solve_results disagree on parity_flip: images of one camera share one parity")
    cameras = _one_projection(images, cameras)
    return images, cameras, before_sq, width, height
