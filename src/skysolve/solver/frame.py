"""The two sides of a solve: the image's centroids and the catalog's stars.

:class:`Frame` holds the centroids as *ideal* pixel offsets (undistorted,
relative to the optical centre, +y down) and the image geometry;
:class:`CatalogView` hands out catalog star vectors (apparent directions when
an observer velocity is given). A :class:`Hypothesis` is an attitude ``R``
(ICRS to camera), a focal length ``f`` (px) and a parity; the frame's lens
projection (:mod:`skysolve.camera.projection`) turns ideal offsets at ``f``
into directions. Every array operation goes through the solve's backend
(:mod:`skysolve.solver.backends`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..camera import projection as _proj
from ..camera.model import CameraModel

__all__ = ["Frame", "CatalogView", "Hypothesis", "make_frame", "rows_of"]

# Points along each edge of the image at which the ideal rectangle is measured
# (Frame.ideal_half_size): a radial distortion's extreme along an edge lies at its
# corners or its middle, both sampled.
_EDGE_SAMPLES = 17


def rows_of(a: NDArray, idx: Any) -> NDArray:
    """``a[idx]``: the rows ``idx`` of ``a``, by numpy's ``take`` when ``idx`` is an integer
    array (the same copy: a plain gather, where indexing builds an iterator first -- 0.6
    against 4 us on eight rows, and on a cold solve the iterator's code is fetched too);
    other indices, and arrays of subclasses (``take`` would keep a memmap's class), index."""
    if type(idx) is np.ndarray and idx.dtype.kind in "iu" and type(a) is np.ndarray:
        return a.take(idx, axis=0)
    return a[idx]


@dataclass
class Hypothesis:
    """An attitude (ICRS to camera rotation), a focal length (px) and a parity; with
    ``anchors`` (ideal px, ``(4, 2)``) when it was fitted to a pattern's stars."""

    R: NDArray[np.float64]
    f: float
    parity: bool
    anchors: NDArray[np.float64] | None = None


@dataclass
class Frame:
    """The image side of a solve: centroids in ideal pixel offsets."""

    xy: NDArray[np.float64]          # (n, 2) centred pixels as given
    ideal: NDArray[np.float64]       # (n, 2) undistorted offsets from the optical centre, px
    width: int
    height: int
    camera: CameraModel              # geometry besides focal length and parity
    fixed_camera: bool               # focal length and parity fixed by the caller
    backend: ModuleType
    refine_scale: bool | None = None  # with a fixed camera: refine its plate scale at the end
    _radii: NDArray[np.float64] | None = None
    #: Results the search asks for more than once (pattern stars by their arguments);
    #: treat as read-only.
    memo: dict = field(default_factory=dict)
    #: No projection was told (no camera model either): the frame's pinhole is a guess
    #: the refinement may replace by a fisheye's (``refinement.with_projection``).
    guessed_projection: bool = False
    #: The caller told the optical centre (``crpix``): the refinement keeps it
    #: (:mod:`.radialterm` fits it on wide fields otherwise).
    centre_told: bool = False

    @cached_property
    def proj(self) -> int:
        """The lens projection's integer code (kept: asked for a dozen times a solve)."""
        return self.camera.projection_code

    def vectors(self, f: float, parity: bool, idx: Any = slice(None)) -> NDArray[np.float64]:
        """Camera unit vectors of (some of) the centroids at focal length ``f`` (NaN rows
        for centroids outside the projection's image)."""
        return self.backend.unit_vectors(rows_of(self.ideal, idx), f, parity, self.proj)

    def fov(self, f: float) -> float:
        """Horizontal field of view (radians) at focal length ``f``; twice the projection's
        largest angle when the image is wider than what it images."""
        return 2.0 * self.angle_of_radius(0.5 * self.width, f)

    def angle_of_radius(self, r_px: float, f: float) -> float:
        """Angle (radians) from the axis of an ideal offset ``r_px`` from the optical centre
        at focal length ``f``; the projection's largest angle beyond its image."""
        theta = _proj.scalar_angle_of_radius(r_px / f, self.proj)
        return theta if math.isfinite(theta) else _proj.max_angle(self.proj)

    def imaged(self, rows: NDArray[np.intp] | slice, f: float) -> NDArray[np.bool_] | None:
        """Which centroids ``rows`` the projection images at focal length ``f``; None when
        it images every offset (a pinhole: the centroids are finite)."""
        limit = _proj.max_radius(self.proj)
        if limit == math.inf:
            return None
        return self.radii[rows] / f <= limit

    @property
    def radii(self) -> NDArray[np.float64]:
        """Distances of the centroids from the optical centre in ideal pixels."""
        if self._radii is None:
            self._radii = np.hypot(self.ideal[:, 0], self.ideal[:, 1])
        return self._radii

    @property
    def centre(self) -> tuple[float, float]:
        """Offset of the optical centre from the image centre, px."""
        c = self.memo.get("centre")  # (asked for by every stage of a solve)
        if c is None:
            crpix = self.camera.crpix
            c = self.memo["centre"] = (float(crpix[0]), float(crpix[1]))
        return c

    def in_image(self, vectors: NDArray[np.float64], hyp: Hypothesis, count: int,
                 margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The first ``count`` of ``vectors`` that project inside the image: (rows, ideal px)."""
        cx, cy = self.centre
        return self.backend.in_image(vectors, hyp.R, hyp.f, hyp.parity, self.proj, cx, cy,
                                     0.5 * self.width + margin_px,
                                     0.5 * self.height + margin_px, count)

    def reach_px(self, margin_px: float = 0.0) -> float:
        """Largest distance from the optical centre to the image (plus margin), px."""
        cx, cy = self.centre
        return math.hypot(self.width, self.height) * 0.5 + margin_px + math.hypot(cx, cy)

    def reach_ideal_px(self) -> float:
        """Largest distance from the optical centre to the image in ideal offsets: its
        farthest corner's, undistorted (a barrel lens's corners see further out than their
        raw distance from the centre says: 3 % at the corners of one whose distortion
        moves them by 3 %); :meth:`reach_px` where the camera cannot undistort them."""
        r = self.memo.get("reach_ideal_px")
        if r is None:
            cx, cy = self.centre
            w, h = 0.5 * self.width, 0.5 * self.height
            if self.camera.distortion is None:  # (scalars: the usual case, at no cost)
                r = math.hypot(w + abs(cx), h + abs(cy))
            else:
                u, v = self.camera.ideal_offsets(np.array([-w, w, w, -w]),
                                                 np.array([-h, -h, h, h]))
                r = float(np.max(np.hypot(u, v)))
                r = r if math.isfinite(r) else self.reach_px()
            self.memo["reach_ideal_px"] = r
        return r

    def reach_angle(self, f: float) -> float:
        """Largest angle (radians) from the optical axis of a direction the image sees at
        focal length ``f``: that of :meth:`reach_ideal_px`."""
        return self.angle_of_radius(self.reach_ideal_px(), f)

    def ideal_half_size(self) -> tuple[float, float]:
        """Half-width and half-height of the rectangle, about the image centre, that holds
        the image's ideal offsets (plus the optical centre's offset, as the backends'
        ``in_image`` tests catalog stars against): the image's own, or larger where the
        distortion undistorts its edges outwards. A barrel lens's edge stars lie beyond
        the image's own rectangle in ideal offsets (from 400 px out on a 1024 x 768 image whose
        distortion moves its corners in by 10 %), and a catalog star there was never
        matched to its centroid."""
        size = self.memo.get("ideal_half_size")
        if size is None:
            w, h = 0.5 * self.width, 0.5 * self.height
            size = (w, h)
            if self.camera.distortion is not None:
                t = np.linspace(-1.0, 1.0, _EDGE_SAMPLES)
                ones = np.ones_like(t)
                x = np.concatenate([t * w, t * w, -w * ones, w * ones])
                y = np.concatenate([-h * ones, h * ones, t * h, t * h])
                u, v = self.camera.ideal_offsets(x, y)
                cx, cy = self.centre
                ext_w, ext_h = float(np.max(np.abs(u + cx))), float(np.max(np.abs(v + cy)))
                if math.isfinite(ext_w) and math.isfinite(ext_h):  # (NaN: cannot undistort)
                    size = (max(w, ext_w), max(h, ext_h))
            self.memo["ideal_half_size"] = size
        return size


def make_frame(xy: NDArray[np.float64], width: int, height: int,
               camera_model: CameraModel | None, projection: str,
               backend: ModuleType, refine_scale: bool | None = None,
               crpix: tuple[float, float] = (0.0, 0.0), guessed: bool = False,
               centre_told: bool = False) -> Frame:
    """The frame of centred centroid positions ``xy`` (a new array the frame may keep);
    ``refine_scale`` as :attr:`SolveOptions.refine_scale`.

    Without a camera model the centroids are taken as ideal offsets from the
    optical centre ``crpix`` (px from the image centre) under ``projection``
    (``guessed``: nobody told it, see :attr:`Frame.guessed_projection`;
    ``centre_told``: the caller told ``crpix``, see :attr:`Frame.centre_told`); a camera
    model brings its own.
    """
    if camera_model is not None:
        u, v = camera_model.ideal_offsets(xy[:, 0], xy[:, 1])
        ideal = np.ascontiguousarray(np.stack([u, v], axis=1), dtype=np.float64)
        return Frame(xy, ideal, width, height, camera_model, True, backend, refine_scale)
    cx, cy = (float(c) for c in crpix)
    if (xy.dtype == np.float64 and cx == 0.0 and cy == 0.0
            and math.copysign(1.0, cx) == math.copysign(1.0, cy) == 1.0):
        # the optical centre at the image's (the usual case): the offsets are the positions
        # (x - +0.0 is x to the bit, -0.0 included), copied at a tenth of the subtraction's
        # cost (1.5 us a solve)
        ideal = xy.copy()
    else:
        ideal = np.ascontiguousarray(xy - (cx, cy), dtype=np.float64)
    return Frame(xy, ideal, width, height, _plain_camera(width, height, projection, cx, cy),
                 False, backend, guessed_projection=guessed, centre_told=centre_told)


@lru_cache(maxsize=16)
def _plain_camera(width: int, height: int, projection: str, cx: float = 0.0,
                  cy: float = 0.0) -> CameraModel:
    """Undistorted camera of unit focal length about the optical centre ``(cx, cy)`` (solved
    focal lengths replace it)."""
    return CameraModel(1.0, width, height, crpix=(cx, cy), projection=projection)


class CatalogView:
    """Catalog side of a solve: star vectors (apparent, when aberration is on)."""

    def __init__(self, db: Any, velocity: NDArray[np.float64] | None, backend: ModuleType):
        self.db = db
        self.velocity = velocity
        self.backend = backend

    def _aberrate(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.velocity is None or not len(v):
            return v
        from ..sky.aberration import aberrate

        return aberrate(v, self.velocity)

    def cone(self, boresight: NDArray[np.float64], radius_rad: float,
             count: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The ``count`` brightest stars within the cone: (star-table rows, vectors)."""
        idx, v = self.backend.brightest_in_cone(self.db.sky_index, boresight, radius_rad, count)
        return idx, self._aberrate(v)

    def vectors(self, idx: NDArray[np.intp]) -> NDArray[np.float64]:
        """Vectors of star-table rows ``idx``."""
        return self._aberrate(rows_of(self.db.star_vectors, idx))

    def field(self, frame: Frame, hyp: Hypothesis, count: int,
              margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """Stars of a cone covering the image under ``hyp``: (rows, vectors), brightest first.

        The cone is larger than the image rectangle, so proportionally more than
        ``count`` stars are fetched for ``count`` to remain inside the image.
        """
        # (a barrel lens's corners see further out than their raw distance says)
        reach = max(frame.reach_px(margin_px), frame.reach_ideal_px() + margin_px)
        radius = frame.angle_of_radius(reach, hyp.f) * 1.05 + 1e-4
        rect_px2 = (frame.width + 2 * margin_px) * (frame.height + 2 * margin_px)
        return self.cone(hyp.R[2], radius, int(count * math.pi * reach ** 2 / rect_px2) + 8)

    def projected(self, frame: Frame, hyp: Hypothesis, count: int,
                  margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The brightest ``count`` catalog stars inside the image: (rows, ideal px)."""
        idx, v = self.field(frame, hyp, count, margin_px)
        rows, p = frame.in_image(v, hyp, count, margin_px)
        return idx[rows], p
