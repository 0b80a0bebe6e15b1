"""``skysolve demo``: the seed notebook's multi-image TESS calibration, end to end.

See :mod:`skysolve.demo.run`.

May import: everything below ``cli``.
"""

from .run import (
    DEFAULT_SECTORS,
    DemoReport,
    SectorResult,
    ensure_frames,
    frame_path,
    main,
    render_frame,
    run_demo,
    sector_scale,
    sector_times,
    sector_wcs,
    wcs_offset_arcsec,
)

__all__ = ["DEFAULT_SECTORS", "DemoReport", "SectorResult", "ensure_frames", "frame_path",
           "main", "render_frame", "run_demo", "sector_scale", "sector_times", "sector_wcs",
           "wcs_offset_arcsec"]
