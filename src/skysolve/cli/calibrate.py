"""``skysolve calibrate``: the multi-pass workflow over images of one camera."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from .common import (
    _check_not_input,
    _date_misuse,
    _err,
    _extraction_options,
    _full_frame,
    _load_camera,
    _load_database,
    _output_base,
    _refuse_existing,
    _results_misuse,
)
from .parser import EXIT_OK, EXIT_UNSOLVED
from .solve import _check_outputs, _Table, _wcs_header, _write_wcs_file, file_velocity


def _velocities(args: argparse.Namespace) -> list | None:
    """Each image's Earth velocity at ``--date``, else at its FITS observation time (None
    when unknown or off)."""
    if args.no_aberration:
        return None
    from ..sky.aberration import earth_barycentric_velocity

    if args.date is not None:
        return [earth_barycentric_velocity(args.date)] * len(args.images)
    out = [file_velocity(path, args.hdu) for path in args.images]
    return out if any(v is not None for v in out) else None


def _write_frame_wcs(args: argparse.Namespace, cal, results) -> None:
    """Each calibrated image's WCS header with SIP terms as ``IMAGE.wcs`` beside it."""
    from ..calibration.export import image_header

    order = args.wcs_sip_order
    shape = (cal.camera_model.image_height, cal.camera_model.image_width)
    for i, file in enumerate(args.images):
        if cal.rotations[i] is None:
            continue
        path = Path(file)
        offset, full_shape = _full_frame(path, args.hdu, args.section, shape)
        hdr = image_header(cal, i, sip_order=order, pixel_offset=offset)
        out = _output_base(path).with_name(_output_base(path).name + ".wcs")
        _write_wcs_file(out, hdr, full_shape, path)
        err = float(hdr["SKYERRPX"])
        kind = hdr["CTYPE1"][5:]
        print(f"WCS:          {out} ({kind} order {hdr['A_ORDER']}, reproduces the "
              f"calibration to {err:.1e} px)")


def _calibration_options(args: argparse.Namespace) -> dict:
    opts = {"validation_folds": args.folds, "bootstrap": args.bootstrap,
            "select_order": args.select_order}
    if args.catalog:
        opts["catalog"] = args.catalog
    if args.polynomial_primary is not None:
        opts["polynomial_primary"] = args.polynomial_primary
    return opts


def _final_solutions(args: argparse.Namespace, run, table) -> None:
    """Print the final pass's solutions, and write them to the results table if any."""
    from ..batch import FrameResult
    from ..batch.results import source_keys

    printed = _Table(args.images)
    keys = source_keys(args.images)
    for i, (file, res) in enumerate(zip(args.images, run.final, strict=True)):
        rec = {"file": file, **(res.to_dict() if res else
                                {"status": res.status, "solve_time_ms": res.solve_time_ms})}
        printed.row(rec)
        if table is not None:
            table.add(FrameResult(file, res.status, res, num_centroids=len(run.centroids[i]),
                                  image_shape=run.image_shape).row(i), keys[i][1])
    if table is not None:
        table.close()


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .._files import atomic_path
    from ..batch import DatabaseHandle, ResultsTable, open_executor
    from ..batch.solve_many import prepare_solver
    from ..calibration.workflow import calibrate_frames, seed_passes
    from ..errors import InvalidArgumentError
    from ..solver.options import SolveOptions

    out = Path(args.output)
    if out.suffix.lower() != ".json":
        raise InvalidArgumentError(f"-o {args.output}: the camera file name must end in .json")
    sip = out.with_name(out.stem + ".sip.fits")
    for image in args.images:  # (before the work: -o cam.json writes cam.sip.fits too)
        if Path(image).exists():
            for written in (out, sip):
                _check_not_input(written, Path(image))
    # a.fits and a.tiff would both write a.wcs after the whole calibration: the second
    # replaced the first's, silently
    _check_outputs(args)
    misuse = _date_misuse(args) or _results_misuse(args)
    if misuse is not None:
        return misuse
    if not args.overwrite:
        # a previous calibration (or the --camera being refined) was replaced after the
        # run without a word; refused before the work, as an existing --results table is
        _refuse_existing(f"-o {args.output}", [out, sip])
    camera = _load_camera(args.camera)
    db, _ = _load_database(args)
    n = len(args.images)
    passes = seed_passes(args.passes, args.order, "radial" if args.radial else "polynomial")

    def report(p) -> None:
        if p.calibration is None:
            return
        cal = p.calibration
        print(f"pass {p.number}/{args.passes} ({p.config.describe()}): {p.num_solved}/{n} "
              f"solved, calibration RMSE {cal.rmse_before_px:.3f} -> {cal.rmse_after_px:.3f} "
              f"px, {cal.n_inliers} inliers, {cal.n_outliers} outliers", flush=True)

    table = None if args.results is None else ResultsTable(args.results,
                                                            overwrite=args.overwrite)
    options = SolveOptions(solve_timeout_ms=args.timeout, projection=args.projection)
    handle = DatabaseHandle(db)
    with open_executor(args.scheduler, args.jobs, database=handle, items=n,
                       prepare=functools.partial(prepare_solver, handle, options)) as executor:
        run = calibrate_frames(
            args.images, db, passes, fov_estimate_deg=args.fov,
            fov_max_error_deg=args.fov_error, camera_model=camera,
            extraction=_extraction_options(args), solve_options=options,
            calibration_options=_calibration_options(args), hdu=args.hdu, section=args.section,
            observer_velocities_km_s=_velocities(args), executor=executor,
            progress=False if args.quiet else None, on_pass=report)
    if not run.completed:
        k = run.passes[-1].number
        _err(f"pass {k}: none of the {n} images solved; check --fov, --sigma and --db")
        return EXIT_UNSOLVED
    cal = run.calibration
    print(cal.summary())
    camera = run.camera_model
    results = run.final
    _final_solutions(args, run, table)
    out.parent.mkdir(parents=True, exist_ok=True)
    run.save_camera(out)
    print(f"camera model: {out} (focal length {camera.focal_length_px:.2f} px, FOV "
          f"{camera.fov_deg:.4f} deg, optical centre offset ({camera.crpix[0]:.2f}, "
          f"{camera.crpix[1]:.2f}) px; with the calibration's uncertainties)")
    # an image the fit left out (another lens, a wrong solve) may still solve with the
    # camera: its pointing is not the calibration's
    first = next((i for i, r in enumerate(results) if r and cal.rotations[i] is not None),
                 None)
    if first is not None:
        from astropy.io import fits

        from .. import __version__

        offset, full_shape = _full_frame(Path(args.images[first]), args.hdu, args.section,
                                         run.image_shape)
        hdr = _wcs_header(results[first], offset, full_shape)
        hdr["HISTORY"] = f"camera {out.name} calibrated by skysolve {__version__}"
        hdr["HISTORY"] = f"pointing of {Path(args.images[first]).name}"
        with atomic_path(sip) as tmp:
            fits.PrimaryHDU(header=hdr).writeto(tmp)
        print(f"SIP header:   {sip}")
    if args.write_wcs:
        _write_frame_wcs(args, cal, results)
    unsolved = sum(not r for r in results)
    return EXIT_UNSOLVED if unsolved else EXIT_OK
