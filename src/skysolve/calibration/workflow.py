"""The multi-pass solve-and-calibrate workflow over many frames, written once.

This is the seed notebook's scheme. Every frame is extracted once; then each
*pass* solves every frame with the current camera model (none in the first
pass: a field-of-view estimate instead) at the pass's match radius, and fits
one shared camera model to all solved frames with the pass's distortion
model and order; the fitted camera feeds the next pass. Tightening the match
radius while raising the polynomial order lets the calibration take in the
corner stars that an undistorted model cannot match. Optionally every frame
is solved once more with the final camera.

Extractions and solves run one task per frame through :mod:`skysolve.batch`
(serially, or on any executor); the camera is fitted here, from the matched
stars. Each frame may have its own observer velocity (its solves and its
stars in the fit are then aberrated with it). The held-out validation,
bootstrap and order selection the calibration options ask for run in the
last pass only (the earlier passes' cameras only seed the next pass). The
command line's ``calibrate``, the demo, the benchmark and the tests all call
:func:`calibrate_frames`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _args
from ..batch.executors import DatabaseHandle, run_tasks
from ..batch.sources import frame_centroids, frame_section, is_centroid_source, section_options
from ..centroids import ExtractionResult, centroids_to_array
from ..errors import InvalidArgumentError, InvalidTypeError
from ..extraction.options import ExtractionOptions
from ..solver.options import SolveOptions
from ..solver.result import SolveFailure, SolveResult
from ..solver.solve import solve
from .fit import calibrate
from .options import MODELS, CalibrationOptions
from .result import CalibrateResult

__all__ = ["CalibrationPass", "PassResult", "CalibrationRun", "SEED_PASSES", "seed_passes",
           "calibrate_frames"]


def _radius(value: Any, name: str) -> float:
    return _args.fraction(value, name, open_min=True, open_max=True)


@dataclass(frozen=True)
class CalibrationPass:
    """One solve-and-calibrate pass.

    Attributes
    ----------
    match_radius : float
        Star match radius of the pass's solves, a fraction of the image width.
    order : int
        Polynomial distortion order of the pass's fit (ignored for ``"radial"``).
    model : {'polynomial', 'radial'}
        Distortion model of the fit.
    refine_iterations : int
        Re-match and refit passes of each solve.
    fov_max_error_deg : float
        Allowed field-of-view error (degrees) of the solves once a camera model
        from an earlier pass fixes the estimate.
    """

    match_radius: float
    order: int = 4
    model: str = "polynomial"
    refine_iterations: int = 10
    fov_max_error_deg: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "match_radius", _radius(self.match_radius, "match_radius"))
        object.__setattr__(self, "order", _args.count(self.order, "order", minimum=1))
        object.__setattr__(self, "model", _args.choice(self.model, "model", MODELS))
        object.__setattr__(self, "refine_iterations",
                           _args.count(self.refine_iterations, "refine_iterations"))
        object.__setattr__(self, "fov_max_error_deg",
                           _args.nonnegative(self.fov_max_error_deg, "fov_max_error_deg"))

    def describe(self) -> str:
        """A few words for reports: ``"match radius 0.01, order 3"``."""
        what = "radial" if self.model == "radial" else f"order {self.order}"
        return f"match radius {self.match_radius:g}, {what}"


#: The seed notebook's four passes: match radius 0.01 -> 0.002, order 3 -> 6.
SEED_PASSES: tuple[CalibrationPass, ...] = (
    CalibrationPass(0.01, order=3), CalibrationPass(0.005, order=4),
    CalibrationPass(0.003, order=5), CalibrationPass(0.002, order=6))


def seed_passes(n: int = 4, order: int = 6, model: str = "polynomial") -> tuple[
        CalibrationPass, ...]:
    """``n`` passes on the seed's schedule, the order capped at ``order``.

    Pass ``k`` (1-based) has match radius 0.01, 0.005, 0.003, 0.002 (then
    0.002) and polynomial order ``min(order, k + 2)``, except the last pass, which
    fits ``order`` itself (with fewer than ``order - 2`` passes the schedule would
    otherwise never reach it); with ``model="radial"`` every pass fits the radial
    model. ``seed_passes()`` is :data:`SEED_PASSES`.
    """
    n = _args.count(n, "n", minimum=1)
    order = _args.count(order, "order", minimum=1)
    radii = [p.match_radius for p in SEED_PASSES]
    return tuple(CalibrationPass(radii[min(k, len(radii) - 1)],
                                 order=order if k == n - 1 else min(order, k + 3),
                                 model=model) for k in range(n))


@dataclass
class PassResult:
    """What one pass did.

    Attributes
    ----------
    number : int
        1-based pass number.
    config : CalibrationPass
    solutions : list of SolveResult or SolveFailure
        One per frame, with the camera of the previous pass.
    calibration : CalibrateResult or None
        The fit of this pass (None when no frame solved).
    solve_seconds, calibrate_seconds : float
        Wall time of the pass's solves and of its fit.
    """

    number: int
    config: CalibrationPass
    solutions: list[SolveResult | SolveFailure]
    calibration: CalibrateResult | None
    solve_seconds: float
    calibrate_seconds: float

    @property
    def num_solved(self) -> int:
        """Frames solved in this pass."""
        return sum(bool(r) for r in self.solutions)


@dataclass
class CalibrationRun:
    """Everything :func:`calibrate_frames` did.

    Attributes
    ----------
    centroids : list
        Each frame's centroids, as the solves and fits used them.
    image_shape : (int, int)
        ``(height, width)`` shared by the frames (of the section, with one).
    passes : list of PassResult
    final : list of SolveResult or SolveFailure, or None
        Every frame solved once more with the final camera (None if not asked).
    extract_seconds : float
    section : ((int, int, int, int), (int, int)) or None
        With a ``section`` of the images: its ``(x0, y0, width, height)`` in the whole
        image and the whole image's ``(height, width)`` (see
        :func:`~skysolve.batch.sources.frame_section`). The solutions and the passes'
        calibrations are then in the section's pixels; :attr:`camera_model` is the
        whole image's.
    """

    centroids: list[Any]
    image_shape: tuple[int, int]
    passes: list[PassResult] = field(default_factory=list)
    final: list[SolveResult | SolveFailure] | None = None
    extract_seconds: float = 0.0
    section: tuple[tuple[int, int, int, int], tuple[int, int]] | None = None

    @property
    def calibration(self) -> CalibrateResult | None:
        """The last pass's fit (None when no pass got to fit)."""
        fits = [p.calibration for p in self.passes if p.calibration is not None]
        return fits[-1] if fits else None

    @property
    def camera_model(self) -> Any:
        """The calibrated camera (None when no pass got to fit); of the whole image when
        the frames were a section of it, as camera models are (the optical centre is
        the detector's), unlike :attr:`calibration`'s, which is the section's."""
        cal = self.calibration
        if cal is None or self.section is None:
            return None if cal is None else cal.camera_model
        (x0, y0, _, _), (height, width) = self.section
        return cal.camera_model.cropped(-x0, -y0, width, height)

    def save_camera(self, path: str | os.PathLike[str]) -> None:
        """Write :attr:`camera_model` with the calibration's figures (as
        :meth:`CalibrateResult.save_to_file <skysolve.CalibrateResult.save_to_file>`).

        With a section the figures' ``section`` holds its ``x0``, ``y0``, ``width`` and
        ``height`` in the whole image: the stars of the fit came from there only, and
        the distortion beyond it is extrapolated; the ``sigma_map``, and the fitted
        ``crpix_x``, ``crpix_y`` of the ``uncertainty``'s ``values``, are in the whole
        image's centred pixels, as the camera is.
        """
        cal = self.calibration
        if cal is None:
            raise InvalidArgumentError("no pass got to fit a camera: nothing to save")
        record = cal.calibration_record()
        if self.section is not None:
            (x0, y0, w, h), _ = self.section
            record["section"] = {"x0": x0, "y0": y0, "width": w, "height": h}
            shift = self.camera_model.crpix - cal.camera_model.crpix
            grid = record.get("sigma_map")
            if grid is not None:
                grid["x"] = [x + float(shift[0]) for x in grid["x"]]
                grid["y"] = [y + float(shift[1]) for y in grid["y"]]
            unc = record.get("uncertainty")
            if unc is not None:
                # (a shift leaves the covariance as it is)
                values = unc["values"]
                for k, name in enumerate(("crpix_x", "crpix_y")):
                    i = unc["parameters"].index(name) if name in unc["parameters"] else None
                    if i is not None and values[i] is not None:  # (NaN is written null)
                        values[i] += float(shift[k])
        self.camera_model.save_to_file(path, calibration=record)

    @property
    def solutions(self) -> list[SolveResult | SolveFailure]:
        """The final solves if made, else the last pass's."""
        if self.final is not None:
            return self.final
        return self.passes[-1].solutions if self.passes else []

    @property
    def completed(self) -> bool:
        """Whether every pass solved a frame and fitted a camera."""
        return bool(self.passes) and all(p.calibration is not None for p in self.passes)


def _extract_task(extraction: ExtractionOptions, hdu: Any, section: Any, source: Any):
    where = None if section is None else frame_section(source, hdu=hdu, section=section)
    return *frame_centroids(source, extraction, hdu=hdu, section=section), where


def _extract_all(frames: Sequence[Any], extraction: ExtractionOptions, hdu: Any, section: Any,
                 executor: Any, progress: bool | None) -> list[tuple[Any, Any, Any]]:
    """``(centroids, image shape, section)`` of every frame (the section as
    :func:`~skysolve.batch.sources.frame_section` gives it, None for centroids and
    without one): images extracted as tasks; centroid frames taken here (sending
    thousands of ``Centroid`` objects to a worker and back for nothing cost minutes on
    Dask)."""
    out = [(*frame_centroids(f), None) if is_centroid_source(f) else None for f in frames]
    todo = [i for i, r in enumerate(out) if r is None]
    done = run_tasks(functools.partial(_extract_task, extraction, hdu, section),
                     [frames[i] for i in todo], executor=executor, progress=progress,
                     desc="extracting")
    for i, r in zip(todo, done, strict=True):
        out[i] = r
    return out


def _solve_task(handle: DatabaseHandle, options: SolveOptions, item: tuple[Any, Any],
                provisional: bool = False):
    """One frame's solve; with ``provisional`` (a calibration pass) without the
    :class:`~skysolve.errors.LensModelWarning` of a loose fit: a pass solves through the
    lens model the calibration is there to fit (none at first, then its provisional
    ones), and its loose residuals are expected, not news to the user. The final solve
    with the calibrated camera warns."""
    centroids, velocity = item
    if velocity is not None:
        options = options.replace(observer_velocity_km_s=velocity)
    return solve(handle.database, centroids, options, warn_loose=not provisional)


def _velocities(values: Any, n: int) -> list[Any]:
    """One observer velocity (or None) per frame."""
    if values is None:
        return [None] * n
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise InvalidTypeError("observer_velocities_km_s must be a list with one velocity (or "
                               f"None) per frame, got {type(values).__name__}")
    if len(values) != n:
        raise InvalidArgumentError(
            f"observer_velocities_km_s must have one entry per frame ({n}), got {len(values)}")
    return [None if v is None else _args.vector(v, f"observer_velocities_km_s[{i}]", 3)
            for i, v in enumerate(values)]


def _compact(centroids: Any) -> Any:
    """What a solve task gets: positions only (all a solve reads), as one array.

    A list of thousands of ``Centroid`` objects takes ~0.5 s to pickle and as long to
    unpickle; its ``(N, 2)`` positions take microseconds, for the same solution.
    """
    if isinstance(centroids, ExtractionResult | np.ndarray):
        return centroids  # pickled as arrays already
    return centroids_to_array(centroids)[0]


def _frame_name(source: Any, index: int) -> str:
    return f"{os.fspath(source)}" if isinstance(source, str | os.PathLike) else f"frame {index}"


def _shape(frames: Sequence[Any], shapes: list[tuple[int, int] | None], image_shape: Any,
           camera: Any) -> tuple[int, int]:
    """The frames' common ``(height, width)``, checked against ``image_shape`` and the camera."""
    shape = None if image_shape is None else _args.image_size(None, None, image_shape)[::-1]
    first = None
    for i, s in enumerate(shapes):
        if s is None:
            continue
        if shape is None:
            shape, first = s, i
        elif s != shape:
            where = "image_shape" if first is None else _frame_name(frames[first], first)
            raise InvalidArgumentError(
                f"{_frame_name(frames[i], i)}: image size {s[1]}x{s[0]} differs from "
                f"{shape[1]}x{shape[0]} of {where}; calibrate images of one camera")
    if shape is None:
        raise InvalidArgumentError(
            "the image size is unknown: pass image_shape=(height, width) with centroid frames")
    if camera is not None and camera.image_shape != tuple(shape):
        raise InvalidArgumentError(
            f"camera_model is for {camera.image_width}x{camera.image_height} images, the "
            f"frames are {shape[1]}x{shape[0]}")
    return shape


def _section(frames: Sequence[Any], sections: list[Any]) -> Any:
    """The section the image frames share (None without one)."""
    first = None
    for i, where in enumerate(sections):
        if where is None:
            continue
        if first is None:
            first = i
        elif where != sections[first]:
            raise InvalidArgumentError(
                f"{_frame_name(frames[i], i)}: the section is {where[0]} (x0, y0, width, "
                f"height) of a {where[1][1]}x{where[1][0]} image, "
                f"{_frame_name(frames[first], first)}'s {sections[first][0]} of a "
                f"{sections[first][1][1]}x{sections[first][1][0]} one; calibrate images "
                f"of one camera")
    return None if first is None else sections[first]


def _pass_options(base: SolveOptions, config: CalibrationPass, camera: Any,
                  fov_estimate_deg: float | None, fov_max_error_deg: float | None,
                  shape: tuple[int, int]) -> SolveOptions:
    if camera is None:
        fov, fov_err = fov_estimate_deg, fov_max_error_deg
    else:
        fov, fov_err = camera.fov_deg, config.fov_max_error_deg
    return base.replace(fov_estimate_deg=fov, fov_estimate_rad=None,
                        fov_max_error_deg=fov_err, fov_max_error_rad=None,
                        image_shape=shape, image_width=None, image_height=None,
                        match_radius=config.match_radius,
                        refine_iterations=config.refine_iterations, camera_model=camera,
                        crpix=base.crpix if camera is None else None)


def _as_options(value: Any, cls: type, name: str) -> Any:
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        return cls(**value)
    raise InvalidTypeError(f"{name} must be a {cls.__name__}, a dict or None, got "
                           f"{type(value).__name__}")


def calibrate_frames(frames: Sequence[Any], database: Any,
                     passes: Sequence[CalibrationPass] = SEED_PASSES, *,
                     fov_estimate_deg: float | None = None,
                     fov_max_error_deg: float | None = None, camera_model: Any = None,
                     image_shape: tuple[int, int] | None = None,
                     extraction: ExtractionOptions | dict | None = None,
                     solve_options: SolveOptions | dict | None = None,
                     calibration_options: CalibrationOptions | dict | None = None,
                     hdu: int | str | None = None, section: Any = None,
                     observer_velocities_km_s: Sequence[Any] | None = None,
                     final_solve: bool = True, executor: Any = None,
                     progress: bool | None = None,
                     on_pass: Callable[[PassResult], None] | None = None) -> CalibrationRun:
    """Solve many frames of one camera and calibrate it, pass after pass.

    Parameters
    ----------
    frames : sequence
        Image paths, image arrays or centroid sets (see :mod:`skysolve.batch.sources`).
    database : SolverDatabase
    passes : sequence of CalibrationPass
        Default: the seed notebook's four (:data:`SEED_PASSES`).
    fov_estimate_deg, fov_max_error_deg : float, optional
        Field of view estimate and its allowed error (degrees) for the solves
        without a camera model (the first pass unless ``camera_model`` is given).
    camera_model : CameraModel, optional
        Start from this camera instead of an uncalibrated pinhole (of the whole image
        with a ``section``).
    image_shape : (int, int), optional
        ``(height, width)``; required when the frames are bare centroids.
    extraction : ExtractionOptions or dict, optional
        Extraction parameters for image frames (default: the defaults).
    solve_options : SolveOptions or dict, optional
        Other solve parameters (time limit, match threshold, aberration, ...);
        the workflow sets the field of view, image size, match radius,
        refinement and camera of every pass.
    calibration_options : CalibrationOptions or dict, optional
        Other fit parameters (iterations, clipping, validation, bootstrap, ...);
        each pass sets the model and order; validation, bootstrap and order
        selection run in the last pass.
    hdu, section : optional
        FITS HDU and image section (a crop) of image frames; centroid frames are taken
        for the section's. The optical centre stays where it is on the whole image:
        the first pass's solves take the whole image's centre (or ``solve_options``'
        ``crpix``, of the whole image), ``camera_model`` is the whole image's, and so
        is the run's :attr:`CalibrationRun.camera_model`.
    observer_velocities_km_s : sequence, optional
        One observer velocity (km/s, ICRS, barycentric; e.g.
        ``earth_barycentric_velocity(t)``) or None per frame: the frame's
        solves are aberration-corrected with it, and so its stars in the fit.
    final_solve : bool
        Solve every frame once more with the final camera (:attr:`CalibrationRun.final`).
    executor : concurrent.futures.Executor-like, optional
        Runs the per-frame extractions and solves (default: here, serially).
    progress : bool or None
        Progress bars on stderr (None: only on a terminal).
    on_pass : callable, optional
        Called with each :class:`PassResult` as soon as its pass is done.

    Returns
    -------
    CalibrationRun
        When a pass solves no frame the run stops there (that pass has no
        calibration; :attr:`CalibrationRun.completed` is False).
    """
    passes = list(passes)
    if not passes or not all(isinstance(p, CalibrationPass) for p in passes):
        raise InvalidTypeError("passes must be a non-empty sequence of CalibrationPass")
    extraction = _as_options(extraction, ExtractionOptions, "extraction")
    base = _as_options(solve_options, SolveOptions, "solve_options")
    cal_base = _as_options(calibration_options, CalibrationOptions, "calibration_options")
    if len(frames) == 0:
        raise InvalidArgumentError("frames must hold at least one frame")
    velocities = _velocities(observer_velocities_km_s, len(frames))
    t = time.perf_counter()
    extracted = _extract_all(frames, extraction, hdu, section, executor, progress)
    centroids = [c for c, _, _ in extracted]
    where = _section(frames, [w for _, _, w in extracted])
    if where is not None:
        opts = section_options(base.replace(camera_model=camera_model), *where)
        camera_model, base = opts.camera_model, opts.replace(camera_model=None)
    shape = _shape(frames, [s for _, s, _ in extracted], image_shape, camera_model)
    run = CalibrationRun(centroids, shape, extract_seconds=time.perf_counter() - t,
                         section=where)
    handle = DatabaseHandle(database)
    items = list(zip([_compact(c) for c in centroids], velocities, strict=True))
    camera = camera_model
    for number, config in enumerate(passes, 1):
        opts = _pass_options(base, config, camera, fov_estimate_deg, fov_max_error_deg, shape)
        t = time.perf_counter()
        solutions = run_tasks(functools.partial(_solve_task, handle, opts, provisional=True),
                              items, executor=executor, progress=progress,
                              desc=f"pass {number}")
        t_solve = time.perf_counter() - t
        cal = None
        if any(solutions):
            cal_opts = cal_base.replace(image_shape=shape, image_width=None, image_height=None,
                                        model=config.model, order=config.order)
            if number < len(passes):  # only the last pass's figures are reported
                cal_opts = cal_opts.replace(validation_folds=0, bootstrap=0, select_order=False)
            cal = calibrate(database, solutions, centroids, cal_opts,
                            provisional=number < len(passes))
            camera = cal.camera_model
        result = PassResult(number, config, solutions, cal, t_solve,
                            time.perf_counter() - t - t_solve)
        run.passes.append(result)
        if on_pass is not None:
            on_pass(result)
        if cal is None:
            return run
    if final_solve:
        opts = _pass_options(base, passes[-1], camera, fov_estimate_deg, fov_max_error_deg,
                             shape)
        run.final = run_tasks(functools.partial(_solve_task, handle, opts), items,
                              executor=executor, progress=progress, desc="final solve")
    return run
