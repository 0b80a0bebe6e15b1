"""One job, run in a worker process: sources, solve, solve-field's files, figures, overlay.

Everything a job writes goes into its own folder under fixed names
(:data:`FILES`), each file atomically (temporary name, then rename), the summary
``result.json`` last: a folder with ``result.json`` is a finished job.

The overlay the web page draws is in 0-based pixels of the full image (the
centre of the top-left pixel is ``(0, 0)``): the matched sources, the catalog
stars they matched, and RA/Dec grid lines as polylines clipped to the image.
Grid steps are the round number of degrees (1, 2, 5 x 10^k) giving about four
to eight lines across the field.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FILES", "run_job", "preview_png", "grid_lines", "figures"]

#: The files of a solved job: route name -> file name in the job's folder.
FILES = {"wcs_file": "job.wcs", "new_fits_file": "job.new", "corr_file": "job.corr",
         "rdls_file": "job.rdls", "axy_file": "job.axy", "json_file": "result.json",
         "preview": "preview.png"}
#: Longest side of the preview image, pixels.
PREVIEW_SIZE = 1024


def preview_png(image: np.ndarray, path: Path) -> float:
    """An 8-bit PNG of ``image`` (:func:`skysolve.io.display.display_pixels`), at most
    :data:`PREVIEW_SIZE` pixels on a side; returns its scale (preview px per image
    px)."""
    from PIL import Image

    from .._files import atomic_path
    from ..io.display import display_pixels

    pixels = display_pixels(image)
    picture = Image.fromarray(pixels)
    scale = min(1.0, PREVIEW_SIZE / max(picture.size))
    if scale < 1.0:
        picture = picture.resize((max(1, round(picture.width * scale)),
                                  max(1, round(picture.height * scale))), Image.BILINEAR)
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return scale


def _nice_step(span_deg: float) -> float:
    raw = max(span_deg, 1e-6) / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def grid_lines(wcs: Any, width: int, height: int, samples: int = 64) -> dict[str, list]:
    """RA and Dec lines over the image: ``{"ra": [[value, [[x, y], ...]], ...], "dec": ...}``
    in 0-based pixels, each line cut where it leaves the image."""
    cols, rows = np.meshgrid(np.linspace(0, width - 1, 12), np.linspace(0, height - 1, 12))
    ra, dec = wcs.pixel_to_world_values(cols.ravel(), rows.ravel())
    ra0 = float(ra[len(ra) // 2])
    rel = (np.asarray(ra) - ra0 + 180.0) % 360.0 - 180.0
    lines: dict[str, list] = {"ra": [], "dec": []}
    dec_lo, dec_hi = float(np.min(dec)), float(np.max(dec))
    ra_lo, ra_hi = float(np.min(rel)), float(np.max(rel))
    pole = abs(dec_hi) > 89.0 or abs(dec_lo) > 89.0
    if pole:
        ra_lo, ra_hi = -180.0, 180.0
    for axis, lo, hi in (("dec", dec_lo, dec_hi), ("ra", ra_lo, ra_hi)):
        step = 30.0 if (axis == "ra" and pole) else _nice_step(hi - lo)
        for value in np.arange(math.ceil(lo / step) * step, hi + 1e-9, step):
            t = np.linspace(ra_lo if axis == "dec" else dec_lo,
                            ra_hi if axis == "dec" else dec_hi, samples)
            if axis == "dec":
                x, y = wcs.world_to_pixel_values((ra0 + t) % 360.0, np.full(samples, value))
                label = float(value)
            else:
                x, y = wcs.world_to_pixel_values(np.full(samples, (ra0 + value) % 360.0), t)
                label = float((ra0 + value) % 360.0)
            ok = np.isfinite(x) & np.isfinite(y)
            pts = [[round(float(a), 2), round(float(b), 2)] for a, b in zip(x[ok], y[ok],
                                                                              strict=True)]
            if len(pts) > 1:
                lines[axis].append([round(label, 6), pts])
    return lines


def figures(result: Any, width: int, height: int) -> dict[str, Any]:
    """The numbers the page shows and nova's calibration is made of."""
    from ..io import astrometry_files as af

    ra, dec = result.pixel_to_world(0.0, 0.0)
    scale_deg = math.degrees(1.0 / result.camera_model.focal_length_px)
    # (sizes across the centre and the corners' angle through the lens model, as
    # skysolve-field and the .match file give them: width x scale said 160 deg of a
    # 200 deg fisheye, and overstated a wide pinhole field's radius by 5 deg)
    return {"ra": float(ra), "dec": float(dec), "roll": float(result.roll_deg),
            "orientation": float(af.rotation_up_east_of_north(result)),
            "parity": af.field_parity(result),
            "fov_width_deg": af.solution_extent_deg(result, (0.5 * width, 0.0)),
            "fov_height_deg": af.solution_extent_deg(result, (0.0, 0.5 * height)),
            "pixscale_arcsec": float(scale_deg * 3600.0),
            "width_arcsec": float(width * scale_deg * 3600.0),
            "height_arcsec": float(height * scale_deg * 3600.0),
            "radius_deg": af.field_radius_deg(result.camera_model, width, height),
            "matches": int(result.num_matches), "rmse_arcsec": float(result.rmse_arcsec),
            "probability": float(result.probability),
            "solve_time_ms": float(result.solve_time_ms)}


def _field(job_dir: Path, kind: str, hints: dict[str, Any]) -> Any:
    from ..fields import Field, image_field

    extraction = hints.get("extraction") or {}
    if kind == "image":
        return image_field(job_dir / hints["input"], downsample=hints.get("downsample"),
                           invert=bool(hints.get("invert")), **extraction)
    xy = np.column_stack([np.asarray(hints["x"], float), np.asarray(hints["y"], float)])
    # (objs: the list's first, as skysolve-field cuts an x/y list: brightest first)
    xy = xy[:extraction.get("max_centroids", len(xy))]
    return Field(xy, np.zeros(len(xy)), 0.0, int(hints["image_width"]),
                 int(hints["image_height"]))


def _overlay(result: Any, fld: Any) -> dict[str, Any]:
    rows = np.asarray(result.matched_centroids, dtype=np.intp)
    rd = np.asarray(result.matched_radec_deg, dtype=np.float64).reshape(-1, 2)
    cx, cy = result.world_to_pixel(rd[:, 0], rd[:, 1])
    half = (0.5 * fld.width - 0.5, 0.5 * fld.height - 0.5)
    return {"sources": np.round(fld.xy_fits[:, :2] - 1.0, 2)[:300].tolist(),
            "matched": np.round(fld.xy_fits[rows] - 1.0, 2).tolist(),
            "catalog": np.round(np.column_stack([cx + half[0], cy + half[1]]), 2).tolist(),
            "grid": grid_lines(result.to_wcs(), fld.width, fld.height)}


def run_job(job_dir: str, kind: str, hints: dict[str, Any], solve_kw: dict[str, Any],
            handle: Any) -> dict[str, Any]:
    """Solve one job; returns its summary (also written to ``result.json``).

    ``hints`` holds the job's input description (``input`` file name, or ``x``/``y``
    lists with ``image_width``/``image_height``, and ``downsample``, ``invert``,
    ``extraction``, ``depth``, ``crpix``: :func:`~skysolve.server.nova.field_options`);
    ``solve_kw``
    the solve parameters; ``handle`` the :class:`~skysolve.batch.DatabaseHandle`.
    """
    from .._files import write_text_atomic
    from ..batch.deeper import limited
    from ..fields import deeper_field, holdable_reference, solve_field_sources, write_solution
    from ..io import astrometry_files as af

    t0 = time.perf_counter()
    folder = Path(job_dir)
    fld = _field(folder, kind, hints)
    af.write_axy(folder / FILES["axy_file"], fld.xy_fits, fld.flux, fld.background,
                 fld.width, fld.height)
    summary: dict[str, Any] = {"width": fld.width, "height": fld.height,
                               "sources": len(fld.xy_fits)}
    if fld.image is not None:
        summary["preview_scale"] = preview_png(fld.image, folder / FILES["preview"])
    db = handle.database
    result = solve_field_sources(db, fld, hints.get("depth"), **solve_kw)
    if kind == "image":  # (short of stars: extracted again, deeper, as skysolve solve does)
        result, deeper = deeper_field(
            folder / hints["input"], fld, result,
            lambda f, limit_ms: solve_field_sources(db, f, hints.get("depth"),
                                                    **limited(solve_kw, limit_ms)),
            downsample=hints.get("downsample"), invert=bool(hints.get("invert")),
            **(hints.get("extraction") or {}))
        if deeper is not fld:  # (the .corr's field ids index the list solved)
            fld = deeper
            af.write_axy(folder / FILES["axy_file"], fld.xy_fits, fld.flux, fld.background,
                         fld.width, fld.height)
            summary["sources"] = len(fld.xy_fits)
    summary["solved"] = bool(result)
    if result:
        out = {"wcs": folder / FILES["wcs_file"], "corr": folder / FILES["corr_file"],
               "rdls": folder / FILES["rdls_file"], "new_fits": folder / FILES["new_fits_file"]}
        crpix = hints.get("crpix")
        reference, why = holdable_reference(result, None if crpix is None else tuple(crpix),
                                            fld.width, fld.height)
        if why:
            summary["warning"] = (f"crpix_x/crpix_y: {why}; the files have their reference "
                                  "pixel at the optical centre instead")
        write_solution(out, result, fld, db, crpix=reference)
        summary["figures"] = figures(result, fld.width, fld.height)
        # (nova's calibration turns a raster image's orientation: N.I.N.A. uploads JPEG)
        summary["figures"]["raster_input"] = fld.image is not None and fld.fits_source is None
        summary["overlay"] = _overlay(result, fld)
    else:
        summary["message"] = str(result.message)
    summary["elapsed_s"] = time.perf_counter() - t0
    import json

    write_text_atomic(folder / FILES["json_file"], json.dumps(summary))
    return summary
