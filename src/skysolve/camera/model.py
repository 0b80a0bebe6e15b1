"""Camera intrinsics: lens projection, focal length, optical centre, parity, distortion.

A :class:`CameraModel` maps centred pixel coordinates ``(x, y)`` (origin at the
geometric image centre, +x right, +y down; see the package conventions) to
camera-frame directions (camera +X right, +Y down, +Z along the boresight)
and back::

    u, v   = x - crpix[0], y - crpix[1]          # offsets from the optical centre
    u', v' = distortion.undistort(u, v)          # if the model has distortion
    p      = (s * u' / f, v' / f),  s = -1 if parity_flip else +1
    direction = projection⁻¹(p)                  # skysolve.camera.projection

``p`` are the projection-plane coordinates; for the default pinhole
(gnomonic) projection they are the tangent-plane coordinates
``(xi, eta) = (X/Z, Y/Z)``, for the fisheye projections the direction at angle
``theta`` from the axis lies at radius ``|p| = g(theta)`` (``theta``,
``2 sin(theta/2)``, ``2 tan(theta/2)`` or ``sin(theta)``).

``parity_flip=True`` describes images that are mirror images of the sky as a
camera with this frame would see it: the x axis is negated.

Camera files are human-readable JSON (``{"format": "skysolve-camera",
"version": 1, ...}``) ending in a SHA-256 ``checksum`` of the text; delete
the ``checksum`` line to hand-edit a file (it is then loaded unchecked).
Version 2 adds what version 1 cannot hold: a radial distortion ``center`` and
a ``calibration`` block (the uncertainties and figures of the calibration
that made the camera, see :func:`read_camera_file`). A file is written with
the lowest version that holds its content, so plain cameras stay readable by
older releases; both versions are read.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import _args
from ..errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from ..geometry import (
    as_rotation_matrix,
    camera_vectors_from_tanplane,
    radec_to_vector,
    tanplane_from_camera_vectors,
    vector_to_radec,
)
from . import projection as _proj
from .distortion import (
    PolynomialDistortion,
    RadialDistortion,
    distortion_from_dict,
    numbers_only,
)

__all__ = ["CameraModel", "CAMERA_FILE_FORMAT", "CAMERA_FILE_VERSION", "read_camera_file"]

#: ``format`` field of camera files.
CAMERA_FILE_FORMAT = "skysolve-camera"
#: Newest ``version`` of camera files this release writes (it reads every version up to it).
CAMERA_FILE_VERSION = 2
_READABLE_VERSIONS = (1, 2)

Distortion = RadialDistortion | PolynomialDistortion
FloatOrArray = float | NDArray[np.float64]

_FIELDS = ("focal_length_px", "image_width", "image_height", "crpix", "parity_flip",
           "distortion", "projection")
_FIELD_SET = frozenset(_FIELDS)


def _check_size(value: Any, name: str) -> int:
    return _args.size(value, name)


def _check_focal(value: Any) -> float:
    if type(value) is float and math.isfinite(value) and value > 0:
        return value  # the common case, without the general checks
    return _args.positive(value, "focal_length_px")


def _check_crpix(value: Any) -> NDArray[np.float64]:
    if value is None:
        c = np.zeros(2)
    else:
        numbers_only(value, "crpix", "two numbers [x, y]")
        try:
            c = np.array(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidTypeError(f"crpix must be two numbers [x, y], got {value!r}") from exc
        if c.shape != (2,):
            raise InvalidArgumentError(f"crpix must be two numbers [x, y], got shape {c.shape}")
        if not np.all(np.isfinite(c)):
            raise InvalidArgumentError(f"crpix must be finite, got {c.tolist()}")
        c += 0.0  # -0.0 -> 0.0: equal cameras hash equal (the hash reads the bytes)
    c.flags.writeable = False
    return c


def _check_parity(value: Any) -> bool:
    return _args.flag(value, "parity_flip")

def _check_projection(value: Any) -> int:
    return _proj.code_of(value)


def _check_distortion(value: Any) -> Distortion | None:
    if value is None or isinstance(value, RadialDistortion | PolynomialDistortion):
        return value
    raise InvalidTypeError(
        "distortion must be None, a RadialDistortion or a PolynomialDistortion, got "
        f"{type(value).__name__}")


def _as_float_array(a: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidTypeError(f"{name} must be a number or an array of numbers") from exc


def check_declination(dec: NDArray[np.float64], name: str = "dec_deg") -> None:
    """Refuse a declination beyond +-90 degrees (NaN passes: "no position")."""
    bad = np.abs(dec) > 90.0
    if np.any(bad):
        raise InvalidArgumentError(f"{name} must be within [-90, 90] degrees, got "
                                   f"{float(np.asarray(dec)[bad].flat[0]):g}")


def _xy(x: ArrayLike, y: ArrayLike, nx: str, ny: str) -> tuple[
        NDArray[np.float64], NDArray[np.float64], bool]:
    xa = _as_float_array(x, nx)
    ya = _as_float_array(y, ny)
    try:
        xb, yb = np.broadcast_arrays(xa, ya)
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{nx} and {ny} must have broadcastable shapes, got {xa.shape} and {ya.shape}"
        ) from exc
    return xb, yb, (xa.ndim == 0 and ya.ndim == 0)


def _out(a: NDArray[np.float64], scalar: bool) -> FloatOrArray:
    return float(a) if scalar else np.asarray(a, dtype=np.float64)


def _body_text(body: Mapping[str, Any]) -> str:
    return json.dumps(body, indent=2, allow_nan=False)


def _checksum(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum_tail(checksum: str) -> str:
    return f',\n  "checksum": {json.dumps(checksum)}\n}}\n'


class CameraModel:
    """Camera with a lens projection, optical-centre offset, parity and lens distortion.

    Parameters
    ----------
    focal_length_px : float
        Focal length in pixels (> 0).
    image_width, image_height : int
        Image size in pixels.
    crpix : (float, float), optional
        Offset of the optical centre (where the boresight meets the image)
        from the geometric image centre, in centred pixels. Default ``[0, 0]``.
    parity_flip : bool
        True for images that are mirror images of the sky (x axis negated).
    distortion : RadialDistortion or PolynomialDistortion, optional
        Lens distortion acting on pixel offsets from the optical centre.
    projection : {'pinhole', 'equidistant', 'equisolid', 'stereographic', 'orthographic'}
        How the angle from the optical axis becomes a radius on the detector
        (:mod:`skysolve.camera.projection`): ``pinhole`` (gnomonic, the
        default: rectilinear lenses), or a fisheye ``r = f theta``,
        ``r = 2 f sin(theta/2)``, ``r = 2 f tan(theta/2)``, ``r = f sin(theta)``.

    Notes
    -----
    Instances are immutable; use :meth:`replace` for modified copies. They
    compare equal when every parameter is identical, hash, and pickle.
    """

    __slots__ = ("_f", "_w", "_h", "_crpix", "_parity", "_distortion", "_proj")

    def __init__(self, focal_length_px: float, image_width: int, image_height: int,
                 crpix: ArrayLike | None = None, parity_flip: bool = False,
                 distortion: Distortion | None = None, projection: str = "pinhole") -> None:
        self._f = _check_focal(focal_length_px)
        self._w = _check_size(image_width, "image_width")
        self._h = _check_size(image_height, "image_height")
        self._crpix = _check_crpix(crpix)
        self._parity = _check_parity(parity_flip)
        self._distortion = _check_distortion(distortion)
        self._proj = _check_projection(projection)

    @classmethod
    def from_fov(cls, fov_deg: float, image_width: int, image_height: int | None = None, *,
                 crpix: ArrayLike | None = None, parity_flip: bool = False,
                 distortion: Distortion | None = None,
                 projection: str = "pinhole") -> CameraModel:
        """Camera whose horizontal field of view is ``fov_deg``.

        Parameters
        ----------
        fov_deg : float
            Horizontal field of view in degrees, from the left to the right edge
            through the optical axis: ``focal_length_px = (image_width / 2) /
            g(fov_deg / 2)`` with the projection's ``g`` (pinhole: ``tan``, so
            ``0 < fov_deg < 180``; the fisheyes reach 360, orthographic 180).
        image_width : int
        image_height : int, optional
            Defaults to ``image_width``.
        crpix, parity_flip, distortion, projection
            As for the constructor (defaults: centred, no flip, no distortion,
            pinhole).
        """
        code = _check_projection(projection)
        limit = 2.0 * math.degrees(_proj.max_angle(code))
        fov = _args.positive(fov_deg, "fov_deg", maximum=limit, open_max=code in (0, 3))
        w = _check_size(image_width, "image_width")
        h = w if image_height is None else image_height
        f = _proj.focal_from_fov(math.radians(fov), w, code)
        return cls(f, w, h, crpix=crpix, parity_flip=parity_flip, distortion=distortion,
                   projection=_proj.PROJECTIONS[code])

    # -- properties
    @property
    def focal_length_px(self) -> float:
        """Focal length in pixels."""
        return self._f

    @property
    def image_width(self) -> int:
        """Image width in pixels."""
        return self._w

    @property
    def image_height(self) -> int:
        """Image height in pixels."""
        return self._h

    @property
    def image_shape(self) -> tuple[int, int]:
        """numpy shape ``(height, width)``."""
        return (self._h, self._w)

    @property
    def crpix(self) -> NDArray[np.float64]:
        """Optical-centre offset ``[x, y]`` from the image centre, px (read-only array)."""
        return self._crpix

    @property
    def parity_flip(self) -> bool:
        """True when the image is a mirror image of the sky (camera x negated)."""
        return self._parity

    @property
    def distortion(self) -> Distortion | None:
        """The lens distortion model, or None."""
        return self._distortion

    @property
    def projection(self) -> str:
        """The lens projection (see :mod:`skysolve.camera.projection`)."""
        return _proj.PROJECTIONS[self._proj]

    @property
    def projection_code(self) -> int:
        """Integer code of :attr:`projection` (the index in ``projection.PROJECTIONS``)."""
        return self._proj

    def _fov(self, size: int) -> float:
        # an image wider than the projection's image circle sees its whole domain
        rho = min(0.5 * size / self._f, float(_proj.radius_of_angle(
            _proj.max_angle(self._proj) * (1 - 1e-12), self._proj)))
        return math.degrees(2.0 * float(_proj.angle_of_radius(rho, self._proj)))

    @property
    def fov_deg(self) -> float:
        """Horizontal field of view through the optical axis, degrees (distortion ignored).

        ``2 atan(W / 2f)`` for the pinhole projection, ``2 g^-1(W / 2f)`` for the others.
        """
        if self._proj == _proj.PINHOLE:
            return math.degrees(2.0 * math.atan(0.5 * self._w / self._f))
        return self._fov(self._w)

    @property
    def fov_vertical_deg(self) -> float:
        """Vertical field of view (as :attr:`fov_deg`, over the image height), degrees."""
        if self._proj == _proj.PINHOLE:
            return math.degrees(2.0 * math.atan(0.5 * self._h / self._f))
        return self._fov(self._h)

    def pixel_scale(self) -> float:
        """Angular size of one pixel at the optical centre, ``atan(1/f)``, radians."""
        return math.atan(1.0 / self._f)

    # -- mappings
    def ideal_offsets(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Undistorted pixel offsets from the optical centre of centred pixel coordinates.

        ``distortion.undistort(x - crpix[0], y - crpix[1])``: where a distortion-free
        lens of this projection and focal length would image the same direction
        (NaN where the distortion cannot be inverted).
        """
        xb, yb, scalar = _xy(x, y, "x", "y")
        u = xb - self._crpix[0]
        v = yb - self._crpix[1]
        if self._distortion is not None:
            u, v = self._distortion.undistort(u, v)
            u, v = np.asarray(u), np.asarray(v)
        return _out(u, scalar), _out(v, scalar)

    def pixel_to_plane(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Centred pixel coordinates → projection-plane coordinates (dimensionless).

        ``(s u / f, v / f)`` of the ideal offsets, ``s = -1`` for mirrored images;
        for the pinhole projection these are the tangent-plane coordinates.
        """
        u, v = self.ideal_offsets(x, y)
        sign = -1.0 if self._parity else 1.0
        return sign * u / self._f, v / self._f

    def plane_to_pixel(self, px: ArrayLike, py: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Projection-plane coordinates → centred pixel coordinates (inverse of
        :meth:`pixel_to_plane`; positions outside the image are returned too)."""
        xb, yb, scalar = _xy(px, py, "px", "py")
        sign = -1.0 if self._parity else 1.0
        u = sign * xb * self._f
        v = yb * self._f
        if self._distortion is not None:
            u, v = self._distortion.distort(u, v)
            u, v = np.asarray(u), np.asarray(v)
        return _out(u + self._crpix[0], scalar), _out(v + self._crpix[1], scalar)

    def pixel_to_tanplane(self, px: ArrayLike, py: ArrayLike) -> tuple[FloatOrArray,
                                                                          FloatOrArray]:
        """Centred pixel coordinates → camera tangent-plane coordinates.

        Parameters
        ----------
        px, py : float or array_like
            Centred pixel coordinates (origin at the image centre, +y down).

        Returns
        -------
        xi, eta : floats for scalar input, else arrays
            ``X/Z`` and ``Y/Z`` of the camera-frame direction (dimensionless;
            radians for small angles). NaN where distortion cannot be inverted,
            and (fisheyes) for directions at or beyond 90° from the axis.
        """
        xb, yb, _ = _xy(px, py, "px", "py")  # names the arguments in errors
        if self._proj == _proj.PINHOLE:
            return self.pixel_to_plane(xb, yb)
        xi, eta = tanplane_from_camera_vectors(self.pixel_to_vectors(xb, yb))
        scalar = np.ndim(xi) == 0
        return _out(xi, scalar), _out(eta, scalar)

    def tanplane_to_pixel(self, xi: ArrayLike, eta: ArrayLike) -> tuple[FloatOrArray,
                                                                          FloatOrArray]:
        """Camera tangent-plane coordinates → centred pixel coordinates.

        Inverse of :meth:`pixel_to_tanplane`; positions outside the image are
        returned too (no clipping).
        """
        xb, yb, _ = _xy(xi, eta, "xi", "eta")  # names the arguments in shape errors
        if self._proj == _proj.PINHOLE:
            return self.plane_to_pixel(xb, yb)
        return self.vectors_to_pixel(camera_vectors_from_tanplane(xb, yb))

    def pixel_to_vectors(self, x: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """Unit camera-frame direction vectors of centred pixel positions.

        Returns
        -------
        ndarray, shape ``(*shape, 3)`` (``(3,)`` for scalars); NaN where the
        pixel images no direction (outside a fisheye's image circle).
        """
        px, py = self.pixel_to_plane(x, y)
        if self._proj == _proj.PINHOLE:
            return camera_vectors_from_tanplane(px, py)
        return _proj.plane_to_vectors(px, py, self._proj)

    def vectors_to_pixel(self, vectors: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
        """Centred pixel positions of camera-frame vectors ``(..., 3)``.

        Vectors need not be unit length; directions the projection does not
        image (pinhole: ``Z <= 0``, behind the camera) give NaN. A single
        ``(3,)`` vector returns floats.
        """
        v = _as_float_array(vectors, "vectors")
        if v.ndim == 0 or v.shape[-1] != 3:
            raise InvalidArgumentError(f"vectors must have shape (..., 3), got {v.shape}")
        if self._proj == _proj.PINHOLE:
            xi, eta = tanplane_from_camera_vectors(v)
        else:
            xi, eta = _proj.vectors_to_plane(v, self._proj)
        return self.plane_to_pixel(xi, eta)

    def pixel_to_world(self, x: ArrayLike, y: ArrayLike, rotation: ArrayLike) -> tuple[
            FloatOrArray, FloatOrArray]:
        """Sky position (RA, Dec in degrees) of centred pixels for an attitude.

        Parameters
        ----------
        x, y : float or array_like
            Centred pixel coordinates.
        rotation : array_like
            ICRS→camera rotation: a 3×3 matrix or a ``[w, x, y, z]`` quaternion.
        """
        R = as_rotation_matrix(rotation, "rotation")
        vec = self.pixel_to_vectors(x, y) @ R
        ra, dec = vector_to_radec(vec)
        scalar = np.ndim(ra) == 0
        return _out(ra, scalar), _out(dec, scalar)

    def world_to_pixel(self, ra_deg: ArrayLike, dec_deg: ArrayLike, rotation: ArrayLike
                       ) -> tuple[FloatOrArray, FloatOrArray]:
        """Centred pixel positions of sky positions for an attitude (NaN behind the camera)."""
        R = as_rotation_matrix(rotation, "rotation")
        ra, dec, _ = _xy(ra_deg, dec_deg, "ra_deg", "dec_deg")
        check_declination(dec)
        return self.vectors_to_pixel(radec_to_vector(ra, dec) @ R.T)

    # -- copies and serialisation
    def replace(self, **changes: Any) -> CameraModel:
        """Copy with some parameters changed, e.g. ``cam.replace(focal_length_px=1500.0)``.

        Accepts the constructor's argument names; ``crpix=None`` and
        ``distortion=None`` reset them.
        """
        unknown = changes.keys() - _FIELD_SET
        if unknown:
            raise InvalidTypeError(
                f"replace() got unexpected argument(s) {sorted(unknown)}; allowed: {list(_FIELDS)}")
        # only the changed parameters need validating (the solver builds one copy per solve)
        new = object.__new__(CameraModel)
        new._f = _check_focal(changes["focal_length_px"]) if "focal_length_px" in changes \
            else self._f
        new._w = _check_size(changes["image_width"], "image_width") if "image_width" in changes \
            else self._w
        new._h = _check_size(changes["image_height"], "image_height") \
            if "image_height" in changes else self._h
        new._crpix = _check_crpix(changes["crpix"]) if "crpix" in changes else self._crpix
        new._parity = _check_parity(changes["parity_flip"]) if "parity_flip" in changes \
            else self._parity
        new._distortion = _check_distortion(changes["distortion"]) \
            if "distortion" in changes else self._distortion
        new._proj = _check_projection(changes["projection"]) if "projection" in changes \
            else self._proj
        return new

    def cropped(self, x0: float, y0: float, width: int, height: int) -> CameraModel:
        """The camera of the ``width`` x ``height`` px window of this camera's image whose
        first pixel is column ``x0``, row ``y0`` (0-based) of it, e.g. a section read
        with ``read_image(..., section=f"[{y0}:{y0 + height}, {x0}:{x0 + width}]")``.

        The optical centre stays where it is on the detector: ``crpix``, measured from
        the image's centre, moves by the offset of the window's centre from the
        image's; the distortion, about the optical centre, and everything else are
        unchanged. The window may reach beyond the image: the camera of the whole
        image is ``crop.cropped(-x0, -y0, image_width, image_height)`` of the crop's.
        """
        x0 = _args.number(x0, "x0")
        y0 = _args.number(y0, "y0")
        w = _check_size(width, "width")
        h = _check_size(height, "height")
        shift = (x0 + 0.5 * (w - self._w), y0 + 0.5 * (h - self._h))
        return self.replace(image_width=w, image_height=h, crpix=self._crpix - shift)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description of the model (used by camera files)."""
        d = {"focal_length_px": self._f, "image_width": self._w, "image_height": self._h,
             "crpix": self._crpix.tolist(), "parity_flip": self._parity,
             "distortion": None if self._distortion is None else self._distortion.to_dict()}
        if self._proj != _proj.PINHOLE:  # pinhole files stay as earlier versions wrote them
            d["projection"] = self.projection
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CameraModel:
        """Rebuild from :meth:`to_dict` output (``ValueError``/``TypeError`` if invalid)."""
        if not isinstance(d, Mapping):
            raise InvalidTypeError(f"camera description must be a mapping, got {type(d).__name__}")
        missing = {"focal_length_px", "image_width", "image_height"} - set(d)
        if missing:
            raise InvalidArgumentError(f"camera description lacks fields {sorted(missing)}")
        unknown = set(d) - set(_FIELDS)
        if unknown:
            raise InvalidArgumentError(f"unknown camera fields {sorted(unknown)}")
        return cls(d["focal_length_px"], d["image_width"], d["image_height"],
                   crpix=d.get("crpix"), parity_flip=d.get("parity_flip", False),
                   distortion=distortion_from_dict(d.get("distortion")),
                   projection=d.get("projection", "pinhole"))

    def save_to_file(self, path: str | os.PathLike[str], *,
                     calibration: Mapping[str, Any] | None = None) -> None:
        """Write the model as readable JSON (format ``skysolve-camera``).

        Parameters
        ----------
        path : str or os.PathLike
            Written atomically (a temporary file renamed over it).
        calibration : mapping, optional
            JSON-able figures of the calibration that made this camera (e.g.
            :meth:`skysolve.CalibrateResult.calibration_record`), kept in the
            file's ``calibration`` block; :func:`read_camera_file` returns it.

        Notes
        -----
        The file is version 1 unless it needs version 2 (a ``calibration``
        block or a radial distortion ``center``).
        """
        model = self.to_dict()
        needs_v2 = calibration is not None or "center" in (model["distortion"] or {})
        body = {"format": CAMERA_FILE_FORMAT, "version": 2 if needs_v2 else 1, **model}
        if calibration is not None:
            if not isinstance(calibration, Mapping):
                raise InvalidTypeError(
                    f"calibration must be a mapping, got {type(calibration).__name__}")
            body["calibration"] = dict(calibration)
        # the checksum covers the exact text written (so even a changed last
        # digit that parses to the same float is caught), appended as the last field
        try:
            text = _body_text(body)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"calibration is not JSON-able: {exc}") from exc
        text = text[:-2] + _checksum_tail(_checksum(text))
        _write_atomic(_fspath(path), text)

    @classmethod
    def load_from_file(cls, path: str | os.PathLike[str]) -> CameraModel:
        """Read a camera file written by :meth:`save_to_file` (any version up to 2).

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        skysolve.errors.FileFormatError
            If the file is truncated, corrupted, not a skysolve camera file, or
            of a newer format version.
        """
        return read_camera_file(path)[0]

    def __reduce__(self):
        return (_camera_from_state, (self._f, self._w, self._h, tuple(self._crpix.tolist()),
                                     self._parity, self._distortion, self.projection))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraModel):
            return NotImplemented
        return (self._f == other._f and self._w == other._w and self._h == other._h
                and bool(np.array_equal(self._crpix, other._crpix))
                and self._parity == other._parity and self._distortion == other._distortion
                and self._proj == other._proj)

    def __hash__(self) -> int:
        return hash((self._f, self._w, self._h, self._crpix.tobytes(), self._parity,
                     self._distortion, self._proj))

    def __repr__(self) -> str:
        proj = "" if self._proj == _proj.PINHOLE else f", projection={self.projection!r}"
        return (f"CameraModel(focal_length_px={self._f!r}, image_width={self._w}, "
                f"image_height={self._h}, "
                f"crpix=[{float(self._crpix[0])!r}, {float(self._crpix[1])!r}], "
                f"parity_flip={self._parity}, distortion={self._distortion!r}{proj})")


def _write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    from .._files import write_text_atomic

    write_text_atomic(path, text)


def read_camera_file(path: str | os.PathLike[str]) -> tuple[CameraModel,
                                                          dict[str, Any] | None]:
    """The camera of a camera file and its ``calibration`` block (None when absent).

    Raises the errors of :meth:`CameraModel.load_from_file`; loading never
    executes anything from the file (it is JSON).
    """
    p = _fspath(path)
    with open(p, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")  # (a byte-order mark, as some editors save, is no harm)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{p!r} is not a skysolve camera file, or is corrupted: not UTF-8 text (a "
            f"tetra3rs camera file is binary and cannot be read: build the CameraModel "
            f"from its values)") from exc
    try:
        doc = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise FileFormatError(
            f"camera file {p!r} is corrupted: field {exc.args[0]!r} is given twice (which "
            f"one is meant?)") from None
    except (json.JSONDecodeError, RecursionError) as exc:  # deep nesting: RecursionError
        raise FileFormatError(
            f"camera file {p!r} is truncated or corrupted: invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != CAMERA_FILE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise FileFormatError(
            f"{p!r} is not a skysolve camera file (format {found!r}, expected "
            f"{CAMERA_FILE_FORMAT!r})")
    version = doc.get("version")
    if version not in _READABLE_VERSIONS or isinstance(version, bool):
        raise FileFormatError(
            f"camera file {p!r} has format version {version!r}; this skysolve reads "
            f"versions {', '.join(map(str, _READABLE_VERSIONS))}")
    checksum = doc.pop("checksum", None)
    if checksum is not None:
        tail = _checksum_tail(checksum) if isinstance(checksum, str) else None
        try:
            if tail is not None and text.endswith(tail):
                ok = checksum == _checksum(text[: -len(tail)] + "\n}")
            else:  # reformatted by another tool: check the content instead
                ok = checksum == _checksum(_body_text(doc))
        except ValueError:  # NaN/inf smuggled in
            ok = False
        if not ok:
            raise FileFormatError(f"camera file {p!r} is corrupted: checksum mismatch")
    calibration = doc.get("calibration") if version >= 2 else None
    if calibration is not None and not isinstance(calibration, dict):
        raise FileFormatError(f"camera file {p!r} is corrupted: calibration is not an object")
    # a version-1 file has no calibration block: the key is then an unknown field
    skip = ("format", "version", "calibration") if version >= 2 else ("format", "version")
    body = {k: v for k, v in doc.items() if k not in skip}
    try:
        return CameraModel.from_dict(body), calibration
    except (ValueError, TypeError, KeyError) as exc:
        raise FileFormatError(f"camera file {p!r} is corrupted: {exc}") from exc


class _DuplicateKey(Exception):
    """A JSON object names a field twice (``json`` would keep the last silently)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _fspath(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def _camera_from_state(f: float, w: int, h: int, crpix: tuple[float, float], parity: bool,
                       distortion: Distortion | None,
                       projection: str = "pinhole") -> CameraModel:
    return CameraModel(f, w, h, crpix=crpix, parity_flip=parity, distortion=distortion,
                       projection=projection)
