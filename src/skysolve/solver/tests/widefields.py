"""Which catalog stars wide cameras see, to check a database's wide scales.

A database is made of angles between stars, so whether it can solve a wide
frame depends only on which stars the frame holds: the four cases of the
wide-field benchmark are described by the region of the sky they see around
the boresight (the lens projection only decides where those stars land on the
detector, which does not matter here):

* ``allsky_180``: a 180 deg all-sky frame whose lowest 10 deg above the
  horizon are lost, i.e. a cap of 80 deg radius;
* ``fisheye_120``: a 120 deg equidistant fisheye (``r = f theta``), 1600 x 1200
  pixels cropped from its image circle (75 deg to the corners);
* ``pinhole_62``: a 62 deg pinhole camera, 1920 x 1280 pixels;
* ``pinhole_2``: a 2 deg pinhole camera, 1024 x 768 pixels.

:func:`frame_patterns` forms the patterns a solver would form from such a
frame's brightest stars (thinned as the database thins pattern stars), and
:meth:`~skysolve.solver.database.PatternDatabase.pattern_rows` says which of
them the database holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from skysolve.solver.patterns import (
    SEPARATION_FRACTION,
    brightest_first_combinations,
    thin_by_separation,
)


@dataclass(frozen=True)
class WideField:
    """A frame geometry: ``kind`` is ``"cap"``, ``"equidistant"`` or ``"pinhole"``."""

    kind: str
    fov_deg: float  # horizontal field of view (the cap's diameter for "cap")
    width: int = 0
    height: int = 0
    cap_radius_deg: float = 0.0

    def sees(self, v_cam: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Whether camera-frame unit vectors ``(n, 3)`` fall inside the frame."""
        theta = np.arccos(np.clip(v_cam[:, 2], -1.0, 1.0))
        if self.kind == "cap":
            return theta <= math.radians(self.cap_radius_deg)
        phi = np.arctan2(v_cam[:, 1], v_cam[:, 0])
        half = math.radians(self.fov_deg) / 2
        if self.kind == "equidistant":
            r = theta * (self.width / 2) / half
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(v_cam[:, 2] > 0, np.tan(theta), np.inf) * (self.width / 2) / math.tan(
                    half)
        return (np.abs(r * np.cos(phi)) <= self.width / 2) & (np.abs(r * np.sin(phi))
                                                               <= self.height / 2)


FIELDS = {
    "allsky_180": WideField("cap", 180.0, cap_radius_deg=80.0),
    "fisheye_120": WideField("equidistant", 120.0, 1600, 1200),
    "pinhole_62": WideField("pinhole", 62.0, 1920, 1280),
    "pinhole_2": WideField("pinhole", 2.0, 1024, 768),
}


def frame_stars(db, R: NDArray[np.float64], field: WideField, count: int) -> NDArray[np.intp]:
    """Star-table rows of the ``count`` brightest stars the frame sees, thinned like
    pattern stars (no brighter star of the frame within 1 % of its field of view)."""
    reach = math.radians(min(180.0, field.fov_deg * 0.75 if field.kind == "equidistant"
                             else field.fov_deg))  # a cone containing the frame
    rows = db.brightest_in_cone(R[2], reach, max(8 * count, 200))
    rows = rows[field.sees(db.star_vectors[rows] @ R.T)][: 4 * count]
    keep = thin_by_separation(db.star_vectors[rows],
                              SEPARATION_FRACTION * math.radians(field.fov_deg))
    return rows[keep][:count]


def frame_patterns(db, R: NDArray[np.float64], field: WideField,
                   count: int = 10) -> NDArray[np.intp]:
    """The 4-star patterns of the frame's ``count`` brightest thinned stars, brightest first."""
    stars = frame_stars(db, R, field, count)
    return stars[brightest_first_combinations(len(stars))]


def pattern_coverage(db, field: WideField, rotations, count: int = 10) -> NDArray[np.intp]:
    """For each rotation, how many patterns of the frame's brightest stars the database holds."""
    return np.array([np.count_nonzero(db.pattern_rows(frame_patterns(db, R, field, count)) >= 0)
                     for R in rotations])
