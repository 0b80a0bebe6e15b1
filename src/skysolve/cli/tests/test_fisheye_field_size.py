"""The field size ``skysolve-field`` prints and ``skysolve-wcsinfo`` reports, for fisheyes.

A field is measured across the image through its centre: from the centre out to each
edge's midpoint and back. Known answers from the lens formulas: a 1600 px wide
equidistant frame at ``f = 800 / (100 deg in radians)`` is 200 deg across (wider than
any angle between two points), and an orthographic all-sky circle of radius ``f`` =
600 px inscribed in a 1600 x 1200 frame is 180 deg across both ways, its edge
midpoints on the left and right seeing no sky at all; as is one of radius 590 px, whose
rim falls between the points sampled along the line.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from astropy.io import fits

from skysolve.camera import CameraModel
from skysolve.cli.solve_field_run import field_lines
from skysolve.cli.wcsinfo import wcs_summary
from skysolve.io.wcs import camera_to_wcs, wcs_to_header

#: (projection, focal length px, width, height, expected width and height, deg)
FRAMES = [("equidistant", 800.0 / math.radians(100.0), 1600, 1600, 200.0, 200.0),
          ("equidistant", 800.0 / math.radians(100.0), 1600, 1200, 200.0, 150.0),
          ("orthographic", 600.0, 1600, 1200, 180.0, 180.0),
          # (its rim between two of the points sampled across the frame: 169 deg before)
          ("orthographic", 590.0, 1600, 1200, 180.0, 180.0)]

#: an attitude: boresight at RA 30 deg, Dec 40 deg, turned about it
_R = np.array([[0.3, 0.9, 0.1], [-0.8, 0.2, 0.5], [0.4, -0.3, 0.8]])
ATTITUDE = np.linalg.svd(_R)[0] @ np.linalg.svd(_R)[2]


class _Result:
    """A solve's result as the summary lines read it: a camera at an attitude."""

    def __init__(self, cam: CameraModel) -> None:
        self.cam = cam
        self.cd_matrix = np.diag([1.0 / cam.focal_length_px, 1.0 / cam.focal_length_px])

    def pixel_to_world(self, x, y):
        ra, dec = self.cam.pixel_to_world(x, y, ATTITUDE)
        if np.ndim(ra) == 0:
            return None if not np.isfinite(ra) else (float(ra), float(dec))
        return ra, dec


@pytest.mark.parametrize("projection, f, width, height, size_w, size_h", FRAMES)
def test_skysolve_field_prints_a_fisheyes_size_across_its_centre(projection, f, width,
                                                                 height, size_w, size_h):
    cam = CameraModel(f, width, height, projection=projection)
    lines = field_lines(_Result(cam), width, height)
    found = re.search(r"Field size: ([\d.]+) x ([\d.]+) degrees", "\n".join(lines))
    assert found, lines
    assert float(found[1]) == pytest.approx(size_w, abs=0.5)
    assert float(found[2]) == pytest.approx(size_h, abs=0.5)


@pytest.mark.parametrize("projection, f, width, height, size_w, size_h", FRAMES)
def test_wcsinfo_reports_a_fisheyes_size_across_its_centre(projection, f, width, height,
                                                           size_w, size_h):
    cam = CameraModel(f, width, height, projection=projection)
    header = fits.Header(wcs_to_header(camera_to_wcs(cam, ATTITUDE)))
    header["IMAGEW"], header["IMAGEH"] = width, height
    got = wcs_summary(header)
    assert got["fieldunits"] == "degrees"
    assert got["fieldw"] == pytest.approx(size_w, abs=0.5)
    assert got["fieldh"] == pytest.approx(size_h, abs=0.5)



def test_skysolve_field_prints_the_size_of_a_sky_circle_not_of_the_frame():
    # an equidistant 190 deg circle (radius 500 px) in a 1024 x 1024 frame, its edges'
    # midpoints 12 px beyond the rim (before: 194.6 deg printed, the frame's size)
    cam = CameraModel(500.0 / math.radians(95.0), 1024, 1024, projection="equidistant")
    pattern = r"Field size: ([\d.]+) x ([\d.]+) degrees"
    found = re.search(pattern, "\n".join(field_lines(_Result(cam), 1024, 1024,
                                                     (0.0, 0.0, 500.0))))
    assert float(found[1]) == pytest.approx(190.0, abs=0.5)
    assert float(found[2]) == pytest.approx(190.0, abs=0.5)
    frame = re.search(pattern, "\n".join(field_lines(_Result(cam), 1024, 1024)))
    assert float(frame[1]) == pytest.approx(190.0 * 512 / 500, abs=0.5)
