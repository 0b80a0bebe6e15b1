"""Lost-in-space and tracking plate solving from star centroids.

The lost-in-space search takes 4-star patterns from the brightest centroids in
brightest-first order, looks their quantised edge-ratio keys up in the
:class:`~skysolve.database.SolverDatabase`, keeps catalog patterns whose exact
ratios and scale agree, fits an attitude to each (Wahba's problem), and verifies
it by projecting catalog stars into the image and counting centroids that land
on them. A hypothesis is accepted when the chance of that many coincidental
matches, times the number of hypotheses verified so far, is below
``match_threshold``. The accepted attitude (and the focal length, unless a
camera model fixes it) is then refined with all matched stars.

Tracking mode (``attitude_hint``) skips the pattern search: catalog stars are
projected through the hinted attitude and matched directly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree
from scipy.special import bdtrc

from . import _compiled
from ._args import image_size
from .camera import CameraModel
from .errors import InvalidArgumentError, InvalidTypeError
from .extraction import centroids_to_array
from .geometry import (
    angle_between,
    as_rotation_matrix,
    camera_vectors_from_tanplane,
    chord_to_angle,
    edge_ratios,
    neighbour_keys,
    north_east_basis,
    pattern_edge_angles,
    pattern_edge_angles_indexed,
    rotation_to_quaternion,
    rotation_to_radec_roll,
    tanplane_from_camera_vectors,
    wahba_rotation,
)
from .patterns import SEPARATION_FRACTION, brightest_first_combinations, canonical_order

if TYPE_CHECKING:  # pragma: no cover
    import astropy.io.fits
    import astropy.wcs

    from .database import SolverDatabase

__all__ = ["SolveResult", "SolveFailure", "solve_from_centroids"]

_ARCSEC_PER_RAD = 180.0 * 3600.0 / math.pi

# How many thinned centroids may form patterns, and the stages at which the
# brightest-first pattern list is cut into vectorised batches.
_MAX_PATTERN_STARS = 30
_PATTERN_STAGES = (6, 8, 10, 12, 14, 17, 20, 24, 30)
_MAX_BATCH = 1500
# Centroids and catalog stars compared when verifying a hypothesis.
_VERIFY_CENTROIDS = 60
_VERIFY_CATALOG_FACTOR = 2
# Hypotheses whose boresight and x axis agree this well are the same attitude.
_SAME_ATTITUDE_COS = math.cos(1e-3)
# Below this many (centroid, star) pairs, distance matrices replace KD-trees.
_BRUTE_FORCE_PAIRS = 20000


# ------------------------------------------------------------------------------------
# Results


@dataclass(eq=False)
class SolveFailure:
    """A solve that found no answer. Falsy.

    Attributes
    ----------
    status : str
        ``'no_match'`` (searched everything, nothing verified), ``'timeout'``
        (``solve_timeout_ms`` ran out), ``'too_few'`` (fewer centroids than a
        pattern needs) or ``'invalid_config'`` (the inputs cannot be solved
        with this database, e.g. a field of view outside its range).
    solve_time_ms : float
        Time spent, milliseconds.
    message : str
        A human-readable explanation.
    """

    status: str
    solve_time_ms: float
    message: str = ""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return (f"SolveFailure(status={self.status!r}, solve_time_ms={self.solve_time_ms:.1f}, "
                f"message={self.message!r})")


@dataclass(eq=False)
class SolveResult:
    """A successful plate solve. Truthy.

    Attitude: ``rotation_matrix_icrs_to_camera`` maps ICRS unit vectors into
    the camera frame (+X right, +Y down, +Z boresight); ``quaternion`` is the
    same rotation as ``[w, x, y, z]``. ``ra_deg``/``dec_deg`` is the boresight
    (the optical axis through ``camera_model.crpix``), ``roll_deg`` the position
    angle of camera +Y east of north.

    WCS view: the gnomonic tangent point is the boresight (``crval_ra_deg``,
    ``crval_dec_deg``), ``crpix`` the optical-centre offset from the image
    centre in centred pixels, ``cd_matrix`` the FITS CD matrix in degrees per
    pixel mapping (undistorted) pixel offsets to (xi east, eta north), and
    ``theta_deg`` the angle from East to camera +X, counter-clockwise
    (mirror-corrected when ``parity_flip``).

    Errors ``rmse_arcsec``, ``p90e_arcsec``, ``max_err_arcsec`` are over the
    matched stars after refinement; ``probability`` is the false-positive
    probability of the verification.
    """

    ra_deg: float
    dec_deg: float
    roll_deg: float
    fov_deg: float
    rotation_matrix_icrs_to_camera: NDArray[np.float64]
    camera_model: CameraModel
    num_matches: int
    rmse_arcsec: float
    p90e_arcsec: float
    max_err_arcsec: float
    probability: float
    solve_time_ms: float
    matched_centroids: NDArray[np.intp]
    matched_catalog_ids: NDArray[np.int64]
    observer_velocity_km_s: NDArray[np.float64] | None = None
    attitude_cov_rad2: NDArray[np.float64] = field(default_factory=lambda: np.full((3, 3), np.nan))
    mode: str = "lost_in_space"
    status: str = "match_found"

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (f"SolveResult(ra_deg={self.ra_deg:.5f}, dec_deg={self.dec_deg:.5f}, "
                f"roll_deg={self.roll_deg:.3f}, fov_deg={self.fov_deg:.4f}, "
                f"num_matches={self.num_matches}, rmse_arcsec={self.rmse_arcsec:.2f}, "
                f"parity_flip={self.parity_flip}, solve_time_ms={self.solve_time_ms:.1f})")

    # -- derived attitude views ------------------------------------------------------
    @property
    def quaternion(self) -> NDArray[np.float64]:
        """``[w, x, y, z]`` quaternion (Hamilton, scalar first, w ≥ 0) ICRS → camera."""
        return rotation_to_quaternion(self.rotation_matrix_icrs_to_camera)

    @property
    def parity_flip(self) -> bool:
        """True when the image is a mirror image of the sky (camera x negated)."""
        return bool(self.camera_model.parity_flip)

    @property
    def crval_ra_deg(self) -> float:
        """RA of the WCS tangent point (the boresight), degrees."""
        return self.ra_deg

    @property
    def crval_dec_deg(self) -> float:
        """Dec of the WCS tangent point (the boresight), degrees."""
        return self.dec_deg

    @property
    def crpix(self) -> NDArray[np.float64]:
        """Optical-centre offset ``[x, y]`` from the geometric image centre, pixels."""
        return np.asarray(self.camera_model.crpix, dtype=np.float64).copy()

    @property
    def cd_matrix(self) -> NDArray[np.float64]:
        """FITS CD matrix (degrees per pixel): (dx, dy) → (xi east, eta north)."""
        R = self.rotation_matrix_icrs_to_camera
        north, east = north_east_basis(R[2])
        s = -1.0 if self.parity_flip else 1.0
        f = self.camera_model.focal_length_px
        m = np.array([[R[0] @ east, R[1] @ east], [R[0] @ north, R[1] @ north]])
        return np.degrees(m @ np.diag([s / f, 1.0 / f]))

    @property
    def theta_deg(self) -> float:
        """Angle from the East axis to camera +X, counter-clockwise, degrees in [0, 360)."""
        R = self.rotation_matrix_icrs_to_camera
        north, east = north_east_basis(R[2])
        return float(np.degrees(np.arctan2(R[0] @ north, R[0] @ east)) % 360.0)

    @property
    def attitude_sigma_rad(self) -> NDArray[np.float64]:
        """1-sigma attitude uncertainty about camera X, Y, Z axes, radians."""
        return np.sqrt(np.clip(np.diag(self.attitude_cov_rad2), 0, None))

    # -- coordinate conversions -----------------------------------------------------------
    def pixel_to_world(self, x: ArrayLike, y: ArrayLike):
        """Sky position of centred pixel coordinates.

        Parameters
        ----------
        x, y : float or 1-D array_like
            Centred pixel coordinates (origin at the image centre, +x right, +y down).

        Returns
        -------
        (ra_deg, dec_deg)
            Floats for scalar input (None when undefined), arrays for array
            input (NaN where undefined).
        """
        ra, dec = self.camera_model.pixel_to_world(x, y, self.rotation_matrix_icrs_to_camera)
        if np.ndim(ra) == 0:
            return None if not np.isfinite(ra) else (float(ra), float(dec))
        return ra, dec

    def world_to_pixel(self, ra_deg: ArrayLike, dec_deg: ArrayLike):
        """Centred pixel coordinates of sky positions.

        Returns ``(x, y)`` floats for scalar input (None when the position is
        behind the camera) or arrays (NaN there) for array input. Positions
        in front of the camera but outside the image are returned as they are.
        """
        x, y = self.camera_model.world_to_pixel(ra_deg, dec_deg,
                                                self.rotation_matrix_icrs_to_camera)
        if np.ndim(x) == 0:
            return None if not np.isfinite(x) else (float(x), float(y))
        return x, y

    def to_wcs(self) -> astropy.wcs.WCS:
        """The solution as an astropy WCS (TAN, or TAN-SIP with distortion).

        The WCS uses the FITS pixel convention of the full image (1-based in
        headers; astropy's ``pixel_to_world`` is 0-based on array indices), so
        ``to_wcs().pixel_to_world(col, row)`` is the sky position of the centre
        of array pixel ``[row, col]``.
        """
        from .wcs import camera_to_wcs

        return camera_to_wcs(self.camera_model, self.rotation_matrix_icrs_to_camera)

    def to_header(self) -> astropy.io.fits.Header:
        """The WCS as a FITS header (with SIP keywords when there is distortion)."""
        from .wcs import wcs_to_header

        return wcs_to_header(self.to_wcs())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no arrays larger than the matched lists)."""
        return {
            "status": self.status, "ra_deg": self.ra_deg, "dec_deg": self.dec_deg,
            "roll_deg": self.roll_deg, "fov_deg": self.fov_deg,
            "quaternion": self.quaternion.tolist(), "parity_flip": self.parity_flip,
            "num_matches": self.num_matches, "rmse_arcsec": self.rmse_arcsec,
            "p90e_arcsec": self.p90e_arcsec, "max_err_arcsec": self.max_err_arcsec,
            "probability": self.probability, "solve_time_ms": self.solve_time_ms,
            "focal_length_px": self.camera_model.focal_length_px,
            "matched_centroids": self.matched_centroids.tolist(),
            "matched_catalog_ids": self.matched_catalog_ids.tolist(),
        }


# ------------------------------------------------------------------------------------
# Argument handling


def _number(name: str, value: Any, positive: bool = True, allow_none: bool = True,
            upper: float | None = None) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise InvalidArgumentError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidTypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v) or (positive and v <= 0) or (not positive and v < 0):
        raise InvalidArgumentError(
            f"{name} must be a {'positive' if positive else 'non-negative'} finite number, "
            f"got {value!r}")
    if upper is not None and v >= upper:
        raise InvalidArgumentError(f"{name} must be below {upper}, got {value!r}")
    return v


def _inside(extent: NDArray[np.float64], width: int, height: int) -> bool:
    """Whether the largest |x|, |y| are within a whole width / height (False for NaN)."""
    x, y = extent.tolist()
    return x <= width and y <= height


def _velocity(observer_velocity_km_s) -> NDArray[np.float64] | None:
    if observer_velocity_km_s is None:
        return None
    try:
        v = np.asarray(observer_velocity_km_s, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidTypeError(
            "observer_velocity_km_s must be three numbers [vx, vy, vz] in km/s, got "
            f"{type(observer_velocity_km_s).__name__}") from None
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise InvalidArgumentError(
            "observer_velocity_km_s must be three finite numbers [vx, vy, vz] in km/s")
    return v


# ------------------------------------------------------------------------------------
# Shared geometry of one solve


@dataclass
class _Frame:
    """The image side of a solve: centroids in ideal pixel offsets."""

    xy: NDArray[np.float64]          # (n, 2) centred pixels as given
    ideal: NDArray[np.float64]       # (n, 2) undistorted offsets from the optical centre, px
    width: int
    height: int
    camera: CameraModel              # geometry besides focal length and parity
    fixed_camera: bool               # focal length and parity fixed by the caller
    fast: bool = False               # use the compiled kernels (skysolve._compiled)

    def vectors(self, f: float, parity: bool, idx=slice(None)) -> NDArray[np.float64]:
        p = self.ideal[idx]
        if self.fast:
            return _compiled.unit_vectors(p, f, parity)
        s = -1.0 if parity else 1.0
        return camera_vectors_from_tanplane(s * p[..., 0] / f, p[..., 1] / f)

    def pixel_of(self, v_cam: NDArray[np.float64], f: float, parity: bool) -> NDArray[np.float64]:
        """Ideal pixel offsets of camera-frame vectors (NaN behind the camera)."""
        xi, eta = tanplane_from_camera_vectors(v_cam)
        s = -1.0 if parity else 1.0
        return np.stack([s * xi * f, eta * f], axis=-1)

    @cached_property
    def norm2(self) -> NDArray[np.float64]:
        """Squared length of each ideal position (for distance matrices)."""
        return np.einsum("ij,ij->i", self.ideal, self.ideal)

    def tree(self, n: int) -> cKDTree:
        """KD-tree of the first ``n`` ideal centroid positions (cached)."""
        cache = self.__dict__.setdefault("_trees", {})
        if n not in cache:
            cache[n] = cKDTree(self.ideal[:n])
        return cache[n]

    def contains(self, ideal: NDArray[np.float64], margin: float = 0.0) -> NDArray[np.bool_]:
        """Whether ideal offsets fall inside the (undistorted) image rectangle."""
        c = np.asarray(self.camera.crpix, dtype=np.float64)
        x = ideal[:, 0] + c[0]
        y = ideal[:, 1] + c[1]
        hw, hh = 0.5 * self.width + margin, 0.5 * self.height + margin
        return (np.abs(x) <= hw) & (np.abs(y) <= hh)


def _make_frame(xy, width, height, camera_model, fast: bool) -> _Frame:
    if camera_model is not None:
        cam = camera_model
        f = cam.focal_length_px
        xi, eta = cam.pixel_to_tanplane(xy[:, 0], xy[:, 1])
        s = -1.0 if cam.parity_flip else 1.0
        ideal = np.stack([s * np.asarray(xi) * f, np.asarray(eta) * f], axis=1)
        return _Frame(xy, ideal, width, height, cam, True, fast)
    # the caller's centroids arrive as a new array, so the frame may keep it as it is
    return _Frame(xy, np.ascontiguousarray(xy, dtype=np.float64), width, height,
                  _plain_camera(width, height), False, fast)


@lru_cache(maxsize=16)
def _plain_camera(width: int, height: int) -> CameraModel:
    """Centred, undistorted camera of unit focal length (solved focal lengths replace it)."""
    return CameraModel(1.0, width, height)


def _focal_from_fov(fov_rad: float, width: int) -> float:
    return 0.5 * width / math.tan(0.5 * fov_rad)


def _fov_from_focal(f: float, width: int) -> float:
    return 2.0 * math.atan(0.5 * width / f)


# ------------------------------------------------------------------------------------
# Matching, verification and refinement


@dataclass
class _Hypothesis:
    R: NDArray[np.float64]
    f: float
    parity: bool


class _Catalog:
    """Catalog side of a solve: star vectors (apparent, when aberration is on)."""

    def __init__(self, db: SolverDatabase, velocity: NDArray[np.float64] | None):
        self.db = db
        self.velocity = velocity

    def field(self, boresight: NDArray[np.float64], radius_rad: float,
              count: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """The ``count`` brightest stars within the cone, brightest first: (indices, vectors)."""
        if _compiled.enabled():
            idx, v = self.db._cone_stars(boresight, radius_rad, count)
            return idx, (self._aberrate(v) if len(v) else v)
        idx = self.db.brightest_in_cone(boresight, radius_rad, count)
        return idx, self.vectors(idx)

    def _aberrate(self, v: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.velocity is None:
            return v
        from .aberration import aberrate

        return aberrate(v, self.velocity)

    def vectors(self, idx: NDArray[np.intp]) -> NDArray[np.float64]:
        v = self.db.star_vectors[idx]
        return self._aberrate(v) if len(v) else v


def _field_stars(frame: _Frame, cat: _Catalog, hyp: _Hypothesis, count: int,
                 margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Catalog stars in a cone covering the image: (indices, ICRS vectors), brightest first.

    The cone is larger than the image rectangle, so proportionally more than
    ``count`` stars are fetched for ``count`` to remain inside the image.
    """
    c = np.asarray(frame.camera.crpix, dtype=np.float64)
    reach = math.hypot(frame.width, frame.height) * 0.5 + margin_px + math.hypot(c[0], c[1])
    radius = math.atan(reach / hyp.f) * 1.05 + 1e-4
    rect_px2 = (frame.width + 2 * margin_px) * (frame.height + 2 * margin_px)
    return cat.field(hyp.R[2], radius, int(count * math.pi * reach ** 2 / rect_px2) + 8)


def _in_image(frame: _Frame, vectors: NDArray[np.float64], hyp: _Hypothesis, count: int,
              margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The first ``count`` of ``vectors`` that project inside the image: (rows, ideal px)."""
    if frame.fast:
        c = frame.camera.crpix
        return _compiled.in_image(vectors, hyp.R, hyp.f, hyp.parity, float(c[0]), float(c[1]),
                                  0.5 * frame.width + margin_px, 0.5 * frame.height + margin_px,
                                  count)
    p = frame.pixel_of(vectors @ hyp.R.T, hyp.f, hyp.parity)
    rows = np.flatnonzero(np.isfinite(p[:, 0]) & frame.contains(p, margin_px))[:count]
    return rows, p[rows]


def _project_field(frame: _Frame, cat: _Catalog, hyp: _Hypothesis, count: int,
                   margin_px: float = 0.0) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The brightest ``count`` catalog stars inside the image: (indices, ideal px)."""
    idx, v = _field_stars(frame, cat, hyp, count, margin_px)
    rows, p = _in_image(frame, v, hyp, count, margin_px)
    return idx[rows], p


def _mutual_matches(frame: _Frame, n_img: int, cat: NDArray[np.float64], radius: float):
    """One-to-one pairs (image row, catalog row) within ``radius`` pixels.

    Each projected catalog star takes its nearest of the first ``n_img``
    centroids; a centroid claimed by several stars keeps the closest.
    """
    if n_img == 0 or len(cat) == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    if n_img * len(cat) <= _BRUTE_FORCE_PAIRS:
        if frame.fast:
            return _compiled.mutual_matches(frame.ideal[:n_img], cat, radius)
        # small problems: a distance matrix beats building and querying a KD-tree
        img = frame.ideal[:n_img]
        # |c - m|^2 expanded: one small matrix product instead of an (n, m, 2) temporary
        d2 = (np.einsum("ij,ij->i", cat, cat)[:, None] + frame.norm2[None, :n_img]
              - 2.0 * (cat @ img.T))
        i = np.argmin(d2, axis=1)
        rows = np.arange(len(cat))
        # mutual nearest neighbours are one-to-one by construction
        j = np.flatnonzero((np.argmin(d2, axis=0)[i] == rows) & (d2[rows, i] <= radius * radius))
        # the expanded form can round a zero distance to a tiny negative number
        return i[j], j, np.sqrt(np.maximum(d2[j, i[j]], 0.0))
    else:
        d, i = frame.tree(n_img).query(cat, distance_upper_bound=radius)
    j = np.flatnonzero(np.isfinite(d))
    i = i[j]
    d = d[j]
    if len(j) == 0:
        return i, j, d
    order = np.lexsort((d, i))
    first = np.ones(len(order), bool)
    first[1:] = i[order][1:] != i[order][:-1]
    keep = np.sort(order[first])
    return i[keep], j[keep], d[keep]


def _false_match_probability(n_matches: int, n_image: int, p_match: float,
                             fixed: int) -> float:
    """Chance that ``n_matches`` of ``n_image`` centroids land on catalog stars by luck.

    ``fixed`` matches (the pattern stars) are matched by construction; each other
    centroid lands on a catalog star with probability ``p_match``. The binomial
    tail with the mean per-centroid probability bounds the tail of unequal
    probabilities from above (Hoeffding 1956), so it is conservative.
    """
    trials = n_image - fixed
    k = n_matches - fixed
    if k <= 0 or trials <= 0:
        return 1.0
    # bdtrc(k-1, n, p) = P(X >= k)
    return float(bdtrc(k - 1, trials, min(1.0, p_match)))


def _crowding_outer(frame: _Frame, radius_px: float) -> float:
    """Outer radius (px) of the annulus in which :func:`_match_chance` counts neighbours."""
    return max(5.0 * radius_px, 0.1 * frame.width)


def _match_chance(frame: _Frame, n_img: int, cat_px: NDArray[np.float64],
                  radius_px: float) -> float:
    """Mean chance that one of the first ``n_img`` centroids falls on a catalog star.

    Uniformly spread stars give ``n_cat * pi r^2 / area``. Where the catalog
    is crowded (a cluster like the Pleiades) a random centroid meets a star far
    more easily, and a hypothesis that only pins the cluster would otherwise
    count every cluster star as independent evidence; so each centroid's chance
    uses the catalog density in an annulus around it (the star it may match is
    left out, so the estimate is unbiased). The mean is never below the uniform
    value, which also covers centroids near the edges, where part of the annulus
    lies outside the image.
    """
    area = max(frame.width * frame.height, 1.0)
    uniform = len(cat_px) * math.pi * radius_px ** 2 / area
    outer = _crowding_outer(frame, radius_px)
    img = frame.ideal[:n_img]
    if frame.fast:
        return max(_compiled.crowding(img, cat_px, radius_px, outer), uniform)
    d2 = (np.einsum("ij,ij->i", img, img)[:, None] + np.einsum("ij,ij->i", cat_px, cat_px)[None]
          - 2.0 * (img @ cat_px.T))
    around = np.count_nonzero((d2 > radius_px ** 2) & (d2 <= outer ** 2), axis=1)
    crowd = around * radius_px ** 2 / (outer ** 2 - radius_px ** 2)
    return max(float(np.mean(crowd)), uniform)


def _verify(frame: _Frame, cat: _Catalog, hyp: _Hypothesis, radius_px: float,
            n_fixed: int, field=None, limit: float = 0.0) -> tuple[int, float]:
    """Count matches of the brightest centroids to the brightest projected catalog stars.

    ``field`` is an optional prefetched ``(indices, vectors)`` cone from
    :func:`_field_stars` holding at least the stars needed here. A hypothesis
    whose probability under uniformly spread stars is already ``>= limit`` is
    rejected without the (never smaller) crowding-aware probability.
    """
    n_img = min(len(frame.ideal), _VERIFY_CENTROIDS)
    count = _VERIFY_CATALOG_FACTOR * n_img
    if frame.fast and field is not None:
        # one kernel call; the crowding-aware probability is cheap there, so no early out
        c = frame.camera.crpix
        n_cat, n, crowd = _compiled.verify_counts(
            frame.ideal, n_img, field[1], hyp.R, hyp.f, hyp.parity, float(c[0]), float(c[1]),
            0.5 * frame.width, 0.5 * frame.height, count, radius_px,
            _crowding_outer(frame, radius_px))
        if n_cat == 0:
            return 0, 1.0
        uniform = n_cat * math.pi * radius_px ** 2 / max(frame.width * frame.height, 1.0)
        return n, _false_match_probability(n, n_img, max(crowd, uniform), n_fixed)
    if field is None:
        idx, p = _project_field(frame, cat, hyp, count)
    else:
        idx, p = _in_image(frame, field[1], hyp, count)
    n_cat = len(idx)
    if n_cat == 0:
        return 0, 1.0
    i, _, _ = _mutual_matches(frame, n_img, p, radius_px)
    n = len(i)
    uniform = n_cat * math.pi * radius_px ** 2 / max(frame.width * frame.height, 1.0)
    prob = _false_match_probability(n, n_img, uniform, n_fixed)
    if prob < limit or limit <= 0.0:
        prob = _false_match_probability(n, n_img, _match_chance(frame, n_img, p, radius_px),
                                        n_fixed)
    return n, prob


def _fit_focal(ideal: NDArray[np.float64], v_cam: NDArray[np.float64], parity: bool) -> float:
    """Least-squares focal length from ideal offsets and camera-frame catalog vectors."""
    xi, eta = tanplane_from_camera_vectors(v_cam)
    s = -1.0 if parity else 1.0
    num = np.sum(s * ideal[:, 0] * xi + ideal[:, 1] * eta)
    den = np.sum(xi * xi + eta * eta)
    return float(num / den) if den > 0 else float("nan")


@dataclass
class _Refined:
    hyp: _Hypothesis
    img_idx: NDArray[np.intp]
    cat_idx: NDArray[np.intp]
    errors_rad: NDArray[np.float64]


def _fit_pairs(frame: _Frame, hyp: _Hypothesis, ideal: NDArray[np.float64],
               v_cat: NDArray[np.float64], use: NDArray[np.intp]):
    """Fit attitude (and focal length unless fixed) to the pairs ``use``.

    ``ideal`` and ``v_cat`` are the matched ideal pixel offsets and catalog
    vectors. Returns the new hypothesis and the angular residual (radians) of
    every pair; the hypothesis is None when the focal-length fit fails.
    """
    if frame.fast:
        R, f, err, ok = _compiled.fit_pairs(ideal, v_cat, use, hyp.f, hyp.parity,
                                            frame.fixed_camera)
        return (_Hypothesis(R, f, hyp.parity) if ok else None), err
    s = -1.0 if hyp.parity else 1.0
    v_img = camera_vectors_from_tanplane(s * ideal[:, 0] / hyp.f, ideal[:, 1] / hyp.f)
    R = wahba_rotation(v_img[use], v_cat[use])
    f = hyp.f
    if not frame.fixed_camera:
        f = _fit_focal(ideal[use], v_cat[use] @ R.T, hyp.parity)
        if not (math.isfinite(f) and f > 0):
            return None, None
        if abs(f - hyp.f) > 1e-9 * f:
            v_img = camera_vectors_from_tanplane(s * ideal[:, 0] / f, ideal[:, 1] / f)
            R = wahba_rotation(v_img[use], v_cat[use])
    diff = v_img - v_cat @ R.T
    err = chord_to_angle(np.sqrt(np.einsum("ij,ij->i", diff, diff)))
    return _Hypothesis(R, f, hyp.parity), err


def _trimmed_fit(frame: _Frame, hyp: _Hypothesis, ideal: NDArray[np.float64],
                 v_cat: NDArray[np.float64], steps: int):
    """Least-trimmed-squares concentration steps over matched pairs.

    Fit everything, then repeatedly refit the best 60 % (at least 5) of the
    pairs and re-rank, up to ``steps`` fits or until the best set repeats. A
    few wrong matches near the edge of the match radius then cannot drag the
    fit, as they would a plain least-squares fit of everything.

    Returns ``((hyp, err) of the first fit, (hyp, err) of the last fit, core)``,
    where ``core`` are the pairs ranked best by the last fit; None when a
    focal-length fit fails.
    """
    n = len(ideal)
    h = min(n, max(5, math.ceil(0.6 * n)))
    if frame.fast:
        R0, f0, err0, R, f, err, core, ok = _compiled.trimmed_fit(
            ideal, v_cat, hyp.f, hyp.parity, frame.fixed_camera, h, steps)
        if not ok:
            return None
        return ((_Hypothesis(R0, f0, hyp.parity), err0), (_Hypothesis(R, f, hyp.parity), err),
                core)
    core = np.arange(n)
    fit_all = None
    for step in range(steps):
        hyp, err = _fit_pairs(frame, hyp, ideal, v_cat, core)
        if hyp is None:
            return None
        if step == 0:
            fit_all = (hyp, err)
        new_core = np.sort(np.argsort(err, kind="stable")[:h])
        if np.array_equal(new_core, core):
            break
        core = new_core
    return fit_all, (hyp, err), core


def _refine_field(frame: _Frame, cat: _Catalog, hyp: _Hypothesis):
    """The cone :func:`_refine` works on: every pass re-projects these stars."""
    return _field_stars(frame, cat, hyp, 3 * len(frame.ideal), margin_px=0.02 * frame.width)


def _refine(frame: _Frame, cat: _Catalog, hyp: _Hypothesis, radius_px: float, iterations: int,
            sigma_clip: float = 3.0, field=None) -> _Refined | None:
    """Re-match all stars and refit attitude (and focal length) ``iterations + 1`` times.

    Each pass matches centroids to the projected catalog, fits attitude and
    focal length (unless the camera is fixed) robustly -- trimmed concentration
    steps, then sigma clipping -- and refits the inliers. The last pass's
    inliers are the matches reported.
    """
    n_img_all = len(frame.ideal)
    # one cone query serves every pass: the attitude moves by far less than its margin
    count = 3 * n_img_all
    idx_all, v_all = _refine_field(frame, cat, hyp) if field is None else field
    if frame.fast and n_img_all * count <= _BRUTE_FORCE_PAIRS:
        c = frame.camera.crpix
        ok, R, f, img_idx, rows, err = _compiled.refine(
            frame.ideal, v_all, hyp.R, hyp.f, hyp.parity, frame.fixed_camera, float(c[0]),
            float(c[1]), 0.5 * frame.width, 0.5 * frame.height, radius_px, iterations,
            sigma_clip)
        return _Refined(_Hypothesis(R, f, hyp.parity), img_idx, idx_all[rows], err) if ok \
            else None
    img_idx = cat_idx = np.zeros(0, np.intp)
    for it in range(iterations + 1):
        rows, p = _in_image(frame, v_all, hyp, count)
        if len(rows) == 0:
            return None
        # limit both sides so that a deep list on one side cannot swamp the other
        n_img = min(n_img_all, max(3 * len(rows), 50))
        i, j, _ = _mutual_matches(frame, n_img, p, radius_px)
        if len(i) < 3:
            return None
        if it and np.array_equal(i, img_idx) and np.array_equal(idx_all[rows[j]], cat_idx):
            break  # the matches did not change: the last fit is final
        img_idx, cat_idx = i, idx_all[rows[j]]
        v_cat = v_all[rows[j]]
        ideal = frame.ideal[img_idx]
        # later passes start from a clean fit: one step (fit everything) suffices there
        fits = _trimmed_fit(frame, hyp, ideal, v_cat, 8 if it == 0 else 1)
        if fits is None:
            return None
        fit_all, (hyp, err), core = fits
        # Clipping rejects mismatches, not model error: never clip inside a fifth of the
        # match radius (nor half a pixel), or the stars a calibration most needs -- those
        # where the current distortion model is worst -- would be dropped.
        floor = max(0.2 * radius_px, 0.5) / hyp.f
        keep = err <= max(sigma_clip * 1.4826 * _median(err[core]), floor)
        if keep.sum() < 3:
            return None
        if keep.all():
            hyp, err = fit_all  # nothing clipped: the first fit used exactly these
        else:
            hyp, err = _fit_pairs(frame, hyp, ideal, v_cat, np.flatnonzero(keep))
            if hyp is None:
                return None
    return _Refined(hyp, img_idx[keep], cat_idx[keep], err[keep])


def _attitude_covariance(frame: _Frame, img_idx: NDArray[np.intp], f: float, parity: bool,
                         sigma_rad: float) -> NDArray[np.float64]:
    """Attitude covariance (camera axes, rad²) from the matched directions and scatter.

    Each matched unit vector ``v`` constrains the two rotation axes
    perpendicular to it: the information matrix is ``sum(I - v v^T)``.
    """
    if frame.fast:
        return _compiled.attitude_covariance(frame.ideal[img_idx], f, parity, sigma_rad)
    v = frame.vectors(f, parity, img_idx)
    info = len(v) * np.eye(3) - v.T @ v
    try:
        return sigma_rad ** 2 * np.linalg.inv(info)
    except np.linalg.LinAlgError:
        return np.full((3, 3), np.nan)


def _sorted_percentile(v: NDArray[np.float64], q: float) -> float:
    """Percentile ``q`` (0-100) of sorted values, interpolated linearly (numpy's default)."""
    pos = q / 100.0 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return float(v[lo] + (pos - lo) * (v[hi] - v[lo]))


def _median(values: NDArray[np.float64]) -> float:
    """Median of a non-empty 1-D array (numpy's result, without its overhead)."""
    v = np.sort(values)
    n = len(v)
    return float(0.5 * (v[(n - 1) // 2] + v[n // 2]))


def _build_result(db, frame: _Frame, cat: _Catalog, ref: _Refined, probability: float,
                  t0: float, mode: str) -> SolveResult:
    R = ref.hyp.R
    f, parity = ref.hyp.f, ref.hyp.parity
    ra, dec, roll = rotation_to_radec_roll(R)
    camera = frame.camera.replace(focal_length_px=f, parity_flip=parity)
    order = np.argsort(ref.img_idx, kind="stable")
    img_idx = ref.img_idx[order]
    cat_idx = ref.cat_idx[order]
    err = ref.errors_rad
    n = len(err)
    sum_sq = float(err @ err)
    err_sorted = np.sort(err) * _ARCSEC_PER_RAD
    sigma = math.sqrt(sum_sq / max(1, n - 3))
    return SolveResult(
        ra_deg=float(ra), dec_deg=float(dec), roll_deg=float(roll),
        fov_deg=math.degrees(_fov_from_focal(f, frame.width)),
        rotation_matrix_icrs_to_camera=R, camera_model=camera, num_matches=n,
        rmse_arcsec=math.sqrt(sum_sq / n) * _ARCSEC_PER_RAD,
        p90e_arcsec=_sorted_percentile(err_sorted, 90.0),
        max_err_arcsec=float(err_sorted[-1]),
        probability=float(probability), solve_time_ms=(time.perf_counter() - t0) * 1e3,
        matched_centroids=img_idx.astype(np.intp),
        matched_catalog_ids=db.star_ids[cat_idx].astype(np.int64),
        observer_velocity_km_s=None if cat.velocity is None else cat.velocity.copy(),
        attitude_cov_rad2=_attitude_covariance(frame, img_idx, f, parity, sigma), mode=mode)


# ------------------------------------------------------------------------------------
# Lost in space


@lru_cache(maxsize=1)
def _all_combos() -> NDArray[np.intp]:
    return brightest_first_combinations(_MAX_PATTERN_STARS)


def _combos(n: int) -> NDArray[np.intp]:
    """Brightest-first 4-combinations of ``n`` stars: a prefix of the largest list."""
    return _all_combos()[: math.comb(n, 4)]


@lru_cache(maxsize=_MAX_PATTERN_STARS + 1)
def _batch_ends(n_stars: int) -> tuple[int, ...]:
    """Ends of the vectorised pattern batches for ``n_stars`` pattern stars.

    Batches follow the brightest-first stages (all patterns of the brightest
    6, then 8, ... stars) and are split to at most ``_MAX_BATCH`` patterns so
    that the time-out is checked often.
    """
    ends = []
    done = 0
    for stage in (*[s for s in _PATTERN_STAGES if s < n_stars], n_stars):
        end = math.comb(stage, 4)
        while done < end:
            done = min(end, done + _MAX_BATCH)
            ends.append(done)
    return tuple(ends)


def _thin_pixels(ideal: NDArray[np.float64], sep_px: float, limit: int,
                 fast: bool = False) -> NDArray[np.intp]:
    """Indices of the first ``limit`` centroids with no brighter centroid within ``sep_px``."""
    cand = ideal[: max(limit * 4, 100)]
    if fast:
        return _compiled.thin_pixels(cand, sep_px, limit)
    keep = np.ones(len(cand), bool)
    if len(cand) > 1 and sep_px > 0:
        diff = cand[:, None, :] - cand[None, :, :]
        close = np.einsum("ijk,ijk->ij", diff, diff) <= sep_px * sep_px
        # a centroid is dropped when any brighter (earlier) centroid is close
        keep = ~np.any(np.tril(close, k=-1), axis=1)
    return np.flatnonzero(keep)[:limit]


def _pattern_candidates(db, frame: _Frame, v_guess: NDArray[np.float64],
                        batch: NDArray[np.intp], tol: float, f_guess: float, fov_lo: float,
                        fov_hi: float):
    """Catalog patterns that match a batch of image patterns.

    ``v_guess`` holds camera vectors of the pattern stars at the guessed focal
    length and ``batch`` (m, 4) its rows per pattern. Returns the image
    patterns' rows of ``v_guess`` in canonical order (k, 4), the catalog
    patterns' star-table indices (k, 4), the focal length implied by each
    pair's scale (k,) and the catalog pattern's largest edge (k,), radians.
    """
    empty = (np.zeros((0, 4), np.intp), np.zeros((0, 4), np.intp), np.zeros(0), np.zeros(0))
    V = v_guess[batch]
    ratios, largest = edge_ratios(pattern_edge_angles(V))
    keys, owner = neighbour_keys(ratios, db.pattern_bins, tol)
    rows, kowner = db.lookup_keys(keys)
    if len(rows) == 0:
        return empty
    pat = owner[kowner]
    # a catalog pattern may be reached through several neighbour keys only once,
    # since keys are distinct; the same (pattern, row) pair cannot repeat.
    cstars = db.pattern_stars[rows]
    cratios, clargest = edge_ratios(pattern_edge_angles_indexed(db.star_xyz, cstars))
    ok = np.all(np.abs(cratios - ratios[pat]) <= tol, axis=1)
    f_est = f_guess * largest[pat] / clargest
    fov_est = 2.0 * np.arctan(0.5 * frame.width / f_est)
    ok &= (fov_est >= fov_lo) & (fov_est <= fov_hi)
    if not ok.any():
        return empty
    pat = pat[ok]
    # image stars in canonical order (scale-free, so the guess vectors serve)
    iquads = np.take_along_axis(batch[pat], canonical_order(V[pat]), axis=1)
    return iquads, cstars[ok].astype(np.intp), f_est[ok], clargest[ok]


def _pattern_attitudes(ideal: NDArray[np.float64], cv: NDArray[np.float64],
                       f_est: NDArray[np.float64], parities: tuple[bool, ...]):
    """Attitude of each candidate pattern pair, for the better of the allowed parities.

    ``ideal`` (m, 4, 2) ideal pixel offsets, ``cv`` (m, 4, 3) catalog vectors.
    Returns rotations (m, 3, 3), each pair's largest star residual (m,),
    radians, and the parity chosen (m,).
    """
    m = len(f_est)
    p = len(parities)
    sign = np.repeat(np.where(np.array(parities), -1.0, 1.0), m)[:, None]
    f_rep = np.tile(f_est, p)[:, None]
    ideal_rep = np.tile(ideal, (p, 1, 1))
    vi = camera_vectors_from_tanplane(sign * ideal_rep[..., 0] / f_rep,
                                      ideal_rep[..., 1] / f_rep)
    cv_rep = np.tile(cv, (p, 1, 1))
    R = wahba_rotation(vi, cv_rep)
    res = np.max(np.sum((vi - cv_rep @ np.swapaxes(R, -1, -2)) ** 2, axis=-1), axis=1)
    res = chord_to_angle(np.sqrt(res)).reshape(p, m)
    pick = np.argmin(res, axis=0)
    return (R.reshape(p, m, 3, 3)[pick, np.arange(m)], res[pick, np.arange(m)],
            np.asarray(parities)[pick])


def _pattern_hypotheses(frame: _Frame, ideal: NDArray[np.float64], cv: NDArray[np.float64],
                        f_est: NDArray[np.float64], clargest: NDArray[np.float64], tol: float,
                        parities: tuple[bool, ...]):
    """Attitudes of the candidate pattern pairs whose four stars fit, in candidate order.

    A candidate fits when its largest star residual is within what the edge-ratio
    tolerance and a few pixels allow. The first candidate is fitted on its own:
    usually it is the answer and the others are never needed.
    """
    n = len(f_est)
    parity_options = np.array(parities, dtype=bool)
    for lo, hi in ((0, min(1, n)), (1, n)):
        if lo >= hi:
            continue
        part = slice(lo, hi)
        if frame.fast:
            R_all, res, par = _compiled.pattern_attitudes(ideal[part], cv[part], f_est[part],
                                                          parity_options)
        else:
            R_all, res, par = _pattern_attitudes(ideal[part], cv[part], f_est[part], parities)
        limit = 2.0 * tol * clargest[part] + 3.0 / f_est[part]
        for m in np.flatnonzero(res <= limit):
            yield _Hypothesis(R_all[m], float(f_est[lo + m]), bool(par[m]))


def _lost_in_space(db, frame: _Frame, cat: _Catalog, *, f_guess: float, fov_lo: float,
                   fov_hi: float, parities: tuple[bool, ...], tol: float, radius_px: float,
                   threshold: float, deadline: float | None, refine_iterations: int,
                   t0: float):
    """Pattern search; returns (SolveResult | None, status)."""
    bins = db.pattern_bins
    sep_px = SEPARATION_FRACTION * _fov_from_focal(f_guess, frame.width) * f_guess
    stars = _thin_pixels(frame.ideal, sep_px, _MAX_PATTERN_STARS, frame.fast)
    n_stars = len(stars)
    if n_stars < 4:
        return None, "too_few"
    combos = _combos(n_stars)
    v_guess = frame.vectors(f_guess, False, stars)
    verified = 0
    done = 0
    tried = np.empty((64, 3))
    tried_x = np.empty((64, 3))
    n_tried = 0
    ends = _batch_ends(n_stars)
    while done < ends[-1]:
        if deadline is not None and time.perf_counter() > deadline:
            return None, "timeout"
        if frame.fast:
            # one call runs through the batches until one has candidates (or _MAX_BATCH
            # patterns are done, so that the time-out is still checked often)
            *cand, done = _compiled.pattern_candidates(
                v_guess, combos, done, np.asarray(ends), _MAX_BATCH, bins, tol,
                db.pattern_keys, *db.key_directory, db.pattern_stars, db.star_xyz, f_guess,
                frame.width, fov_lo, fov_hi)
        else:
            end = next(e for e in ends if e > done)
            cand = _pattern_candidates(db, frame, v_guess, combos[done:end], tol, f_guess,
                                       fov_lo, fov_hi)
            done = end
        iquads, cstars, f_est, clargest = cand
        if len(f_est) == 0:
            continue
        if frame.fixed_camera:
            # the pattern's scale only screened the candidates; the camera fixes f
            f_est = np.full(len(f_est), f_guess)
        # apparent directions when an observer velocity is given, as in verification
        cv = cat.vectors(cstars.ravel()).reshape(cstars.shape + (3,))
        ideal = frame.ideal[stars[iquads]]  # (m, 4, 2)
        for hyp in _pattern_hypotheses(frame, ideal, cv, f_est, clargest, tol, parities):
            if deadline is not None and time.perf_counter() > deadline:
                return None, "timeout"
            # skip attitudes already verified (the same field found by another pattern)
            if n_tried and np.any((tried[:n_tried] @ hyp.R[2] > _SAME_ATTITUDE_COS)
                                  & (tried_x[:n_tried] @ hyp.R[0] > _SAME_ATTITUDE_COS)):
                continue
            if n_tried == len(tried):
                tried = np.concatenate([tried, np.empty_like(tried)])
                tried_x = np.concatenate([tried_x, np.empty_like(tried_x)])
            tried[n_tried], tried_x[n_tried] = hyp.R[2], hyp.R[0]
            n_tried += 1
            verified += 1
            # small fields: one cone query serves verification and refinement
            field = _refine_field(frame, cat, hyp) if len(frame.ideal) <= 100 else None
            n, prob = _verify(frame, cat, hyp, radius_px, n_fixed=4, field=field,
                              limit=threshold / verified)
            if prob * verified >= threshold:
                continue
            ref = _refine(frame, cat, hyp, radius_px, refine_iterations, field=field)
            if ref is None:
                continue
            return _build_result(db, frame, cat, ref, prob * verified, t0,
                                 "lost_in_space"), "match_found"
    return None, "no_match"


# ------------------------------------------------------------------------------------
# Tracking


def _tracking(db, frame: _Frame, cat: _Catalog, hint_R: NDArray[np.float64], f: float,
              parities: tuple[bool, ...], uncertainty_rad: float, radius_px: float,
              threshold: float, refine_iterations: int, t0: float) -> SolveResult | None:
    """Match centroids directly against catalog stars around a hinted attitude.

    Candidate pairs (centroid, catalog star) lie within the hint uncertainty of
    each other; pairs of pairs whose separations agree vote for one rigid
    rotation, which is fitted and verified. Because the hint restricts the
    attitude, the false-match probability counts every matched star, so three
    stars can suffice.
    """
    n_img = min(len(frame.ideal), _VERIFY_CENTROIDS)
    if n_img < 3:
        return None
    search_px = max(radius_px, uncertainty_rad * f * 1.5)
    for parity in parities:
        hyp = _Hypothesis(hint_R, f, parity)
        idx, p = _project_field(frame, cat, hyp, _VERIFY_CATALOG_FACTOR * n_img,
                                margin_px=search_px)
        if len(idx) < 3:
            continue
        img = frame.ideal[:n_img]
        v_img = frame.vectors(f, parity, np.arange(n_img))
        v_cat = cat.vectors(idx)
        # candidate pairs within the hint uncertainty; vote with pairs of pairs
        pairs = cKDTree(p).query_ball_point(img, search_px)
        ii = np.repeat(np.arange(n_img), [len(c) for c in pairs])
        jj = np.fromiter((j for c in pairs for j in c), dtype=np.intp, count=len(ii))
        if len(ii) < 2:
            continue
        # keep the pairs whose mutual distances agree (rigid-body consistency)
        order = np.argsort(ii, kind="stable")[:400]
        ii, jj = ii[order], jj[order]
        best = (0, None)
        n_pairs = len(ii)
        a, b = np.triu_indices(n_pairs, k=1)
        d_img = angle_between(v_img[ii[a]], v_img[ii[b]])
        d_cat = angle_between(v_cat[jj[a]], v_cat[jj[b]])
        tol = 2.0 * radius_px / f
        agree = (np.abs(d_img - d_cat) < tol) & (ii[a] != ii[b]) & (jj[a] != jj[b])
        if not agree.any():
            continue
        # each consistent pair of pairs proposes an attitude; try the best supported ones
        support = np.bincount(np.concatenate([a[agree], b[agree]]), minlength=n_pairs)
        for start in np.argsort(-support)[:10]:
            partners = np.concatenate([b[agree & (a == start)], a[agree & (b == start)]])
            if len(partners) == 0:
                continue
            sel = np.concatenate([[start], partners])
            R = wahba_rotation(v_img[ii[sel]], v_cat[jj[sel]])
            h = _Hypothesis(R, f, parity)
            # The hint, not the matched stars, pins the attitude: no star is spent on
            # defining it, so every match counts as evidence (n_fixed=0).
            n, prob = _verify(frame, cat, h, radius_px, n_fixed=0)
            if n > best[0]:
                best = (n, h, prob)
        if best[1] is None or best[0] < 3 or best[2] >= threshold:
            continue
        ref = _refine(frame, cat, best[1], radius_px, refine_iterations)
        if ref is None or len(ref.img_idx) < 3:
            continue
        return _build_result(db, frame, cat, ref, best[2], t0, "tracking")
    return None


# ------------------------------------------------------------------------------------
# Entry point


def solve_from_centroids(db: SolverDatabase, centroids, fov_estimate_deg=None,
                         fov_estimate_rad=None, image_width=None, image_height=None,
                         image_shape=None, fov_max_error_deg=None, fov_max_error_rad=None,
                         match_radius=0.01, match_threshold=1e-5, solve_timeout_ms=5000,
                         match_max_error=None, refine_iterations=2, camera_model=None,
                         observer_velocity_km_s=None, attitude_hint=None,
                         hint_uncertainty_deg=None, hint_uncertainty_rad=None,
                         strict_hint=False) -> SolveResult | SolveFailure:
    """Solve for the camera attitude from star centroids.

    Parameters
    ----------
    db : SolverDatabase
    centroids : list of Centroid, ExtractionResult, or array_like (N, 2) or (N, 3)
        Centred pixel positions (x, y[, brightness]), brightest first.
    fov_estimate_deg, fov_estimate_rad : float, optional
        Horizontal field of view estimate (give at most one). Default: the
        camera model's, else the middle of the database's range.
    image_width, image_height : int, optional
    image_shape : (int, int), optional
        numpy ``(height, width)``; an alternative to width and height.
    fov_max_error_deg, fov_max_error_rad : float, optional
        Largest allowed error of the estimate. Default: the search accepts
        fields of view between 0.6× and 1/0.6× the estimate (or the
        database's range when there is no estimate).
    match_radius : float
        Match distance as a fraction of the image width (0 < r < 1).
    match_threshold : float
        False-positive probability a solution must beat.
    solve_timeout_ms : float or None
        Give up after this time (None: no limit). Neither this limit nor
        ``solve_time_ms`` counts the one-time preparation of the compiled
        kernels for a database (the first solve in a process; compiling them
        on a machine's first run takes about 10 s, cached on disk after).
    match_max_error : float, optional
        Largest edge-ratio difference of a pattern match; default the
        database's ``pattern_max_error``.
    refine_iterations : int
        Re-match and refit passes after the first match.
    camera_model : CameraModel, optional
        Fixes focal length, optical centre, parity and distortion.
    observer_velocity_km_s : array_like (3,), optional
        Observer's ICRS velocity; catalog directions are aberrated with it.
    attitude_hint : quaternion [w, x, y, z] or 3×3 matrix, optional
        Tracking mode: match against catalog stars around this attitude.
    hint_uncertainty_deg, hint_uncertainty_rad : float, optional
        1-sigma-ish uncertainty of the hint (default 1°).
    strict_hint : bool
        With a hint, do not fall back to the lost-in-space search.

    Returns
    -------
    SolveResult or SolveFailure
    """
    # One-time preparation, before the clock starts, so that it does not eat into
    # solve_timeout_ms: compiling (or loading) the kernels for this database, once per
    # database and process, and the brightest-first pattern order.
    fast = _compiled.enabled()
    if fast:
        _compiled.warm_up(db)
    _all_combos()
    t0 = time.perf_counter()

    def fail(status: str, message: str) -> SolveFailure:
        return SolveFailure(status, (time.perf_counter() - t0) * 1e3, message)

    # ---- arguments
    if camera_model is not None and not isinstance(camera_model, CameraModel):
        raise InvalidTypeError(
            f"camera_model must be a CameraModel, got {type(camera_model).__name__}")
    xy, _ = centroids_to_array(centroids, name="centroids")
    width, height = image_size(image_width, image_height, image_shape,
                               [] if camera_model is None else [camera_model])
    fov_deg = _number("fov_estimate_deg", fov_estimate_deg, upper=180.0)
    fov_rad = _number("fov_estimate_rad", fov_estimate_rad, upper=math.pi)
    if fov_deg is not None and fov_rad is not None:
        raise InvalidArgumentError("give fov_estimate_deg or fov_estimate_rad, not both")
    fov_est = math.radians(fov_deg) if fov_deg is not None else fov_rad
    err_deg = _number("fov_max_error_deg", fov_max_error_deg, positive=False)
    err_rad = _number("fov_max_error_rad", fov_max_error_rad, positive=False)
    if err_deg is not None and err_rad is not None:
        raise InvalidArgumentError("give fov_max_error_deg or fov_max_error_rad, not both")
    fov_err = math.radians(err_deg) if err_deg is not None else err_rad
    match_radius = _number("match_radius", match_radius, allow_none=False, upper=1.0)
    match_threshold = _number("match_threshold", match_threshold, allow_none=False, upper=1.0)
    timeout = _number("solve_timeout_ms", solve_timeout_ms, positive=False)
    tol = _number("match_max_error", match_max_error, upper=0.25)
    if tol is None:
        tol = float(db.parameters["pattern_max_error"])
    if isinstance(refine_iterations, bool) or not isinstance(refine_iterations,
                                                             (int, np.integer)):
        raise InvalidTypeError("refine_iterations must be an integer")
    if refine_iterations < 0:
        raise InvalidArgumentError(f"refine_iterations must be >= 0, got {refine_iterations}")
    velocity = _velocity(observer_velocity_km_s)
    hint_R = None if attitude_hint is None else np.ascontiguousarray(
        as_rotation_matrix(attitude_hint, "attitude_hint"))
    hu_deg = _number("hint_uncertainty_deg", hint_uncertainty_deg)
    hu_rad = _number("hint_uncertainty_rad", hint_uncertainty_rad)
    if hu_deg is not None and hu_rad is not None:
        raise InvalidArgumentError("give hint_uncertainty_deg or hint_uncertainty_rad, not both")
    hint_unc = math.radians(hu_deg) if hu_deg is not None else (hu_rad or math.radians(1.0))
    if not isinstance(strict_hint, (bool, np.bool_)):
        raise InvalidTypeError(f"strict_hint must be a bool, got {type(strict_hint).__name__}")
    # A centroid a whole image width/height beyond the centre is not in this image: the
    # declared size (or the coordinate convention) is wrong. NaN fails the comparison too.
    if len(xy) and not _inside(np.abs(xy).max(axis=0), width, height):
        if not np.isfinite(xy).all():
            raise InvalidArgumentError("centroids must have finite x and y")
        i = int(np.argmax((np.abs(xy) > (width, height)).any(axis=1)))
        raise InvalidArgumentError(
            f"centroids lie far outside the {width}x{height} image (e.g. #{i} at "
            f"({xy[i, 0]:.1f}, {xy[i, 1]:.1f})): check image_shape/image_width/image_height "
            "and that centroids are centred pixel coordinates")
    deadline = None if not timeout else t0 + timeout / 1e3

    # ---- geometry
    frame = _make_frame(xy, width, height, camera_model, fast)
    cat = _Catalog(db, velocity)
    radius_px = match_radius * width
    if camera_model is not None:
        f_guess = camera_model.focal_length_px
        fov_est = camera_model.fov_deg * math.pi / 180.0 if fov_est is None else fov_est
        parities: tuple[bool, ...] = (bool(camera_model.parity_flip),)
    else:
        if fov_est is None:
            fov_est = math.sqrt(math.radians(db.min_fov_deg) * math.radians(db.max_fov_deg))
        f_guess = _focal_from_fov(fov_est, width)
        parities = (False, True)
    if fov_err is not None:
        fov_lo, fov_hi = max(fov_est - fov_err, 1e-6), min(fov_est + fov_err, math.pi * 0.999)
    elif fov_deg is None and fov_rad is None and camera_model is None:
        fov_lo = math.radians(db.min_fov_deg) * 0.6
        fov_hi = min(math.radians(db.max_fov_deg) / 0.6, math.pi * 0.999)
    else:
        fov_lo, fov_hi = fov_est * 0.6, min(fov_est / 0.6, math.pi * 0.999)
    # patterns are limited by the database's scales: a much larger field cannot match
    if fov_lo > math.radians(db.max_fov_deg) * 1.6 or fov_hi < math.radians(db.min_fov_deg) / 2:
        return fail("invalid_config",
                    f"the field of view range {math.degrees(fov_lo):.2f}-"
                    f"{math.degrees(fov_hi):.2f} deg is outside the database's "
                    f"{db.min_fov_deg:g}-{db.max_fov_deg:g} deg")

    # ---- tracking
    if hint_R is not None:
        f_track = f_guess
        res = _tracking(db, frame, cat, hint_R, f_track, parities, hint_unc, radius_px,
                        match_threshold, refine_iterations, t0)
        if res is not None:
            return res
        if strict_hint:
            return fail("no_match", "no match near the attitude hint")

    if len(xy) < 4:
        return fail("too_few", f"{len(xy)} centroids; a pattern needs 4")
    result, status = _lost_in_space(
        db, frame, cat, f_guess=f_guess, fov_lo=fov_lo, fov_hi=fov_hi, parities=parities,
        tol=tol, radius_px=radius_px, threshold=match_threshold, deadline=deadline,
        refine_iterations=refine_iterations, t0=t0)
    if result is not None:
        return result
    messages = {"too_few": "fewer than 4 well-separated centroids",
                "timeout": f"no match within {solve_timeout_ms} ms",
                "no_match": "no pattern verified against the catalog"}
    return fail(status, messages[status])
