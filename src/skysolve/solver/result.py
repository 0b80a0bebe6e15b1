"""What a solve returns: :class:`SolveResult` (truthy) or :class:`SolveFailure` (falsy).

A result carries the attitude (``rotation_matrix_icrs_to_camera``: ICRS unit
vectors into the camera frame, +X right, +Y down, +Z boresight), the camera
model it was solved with, the matched stars and the fit statistics, and
derived views: boresight RA/Dec and roll, the quaternion, the FITS CD matrix,
pixel <-> sky conversions and an astropy WCS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..camera.model import CameraModel
from ..geometry import north_east_basis, rotation_to_quaternion, signed_degrees

if TYPE_CHECKING:  # pragma: no cover
    import astropy.io.fits
    import astropy.wcs

__all__ = ["SolveResult", "SolveFailure", "FAILURE_STATUSES"]

#: The ``status`` values of a :class:`SolveFailure`.
FAILURE_STATUSES = ("no_match", "timeout", "too_few", "invalid_config")


@dataclass(eq=False)
class SolveFailure:
    """A solve that found no answer. Falsy.

    Attributes
    ----------
    status : str
        ``'no_match'`` (searched everything, nothing verified), ``'timeout'``
        (``solve_timeout_ms`` ran out), ``'too_few'`` (fewer centroids than a
        pattern needs) or ``'invalid_config'`` (the inputs cannot be solved
        with this database: a scale hint wholly below half its smallest field of
        view; a wider field than its largest is searched, as sub-windows of it hold
        its patterns).
    solve_time_ms : float
        Time spent, milliseconds.
    message : str
        A human-readable explanation.
    """

    status: str
    solve_time_ms: float
    message: str = ""
    #: The :class:`~skysolve.ExtractionResult` of the image, after :func:`skysolve.solve_image`.
    extraction: Any = None

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
    angle of camera +Y east of north, in (-180, 180] as in tetra3rs.

    WCS view: the reference point of the camera's zenithal projection (TAN
    for pinhole cameras, ARC/ZEA/STG/SIN for the fisheyes) is the boresight
    (``crval_ra_deg``, ``crval_dec_deg``), ``crpix`` the optical-centre offset
    from the image centre in centred pixels, ``cd_matrix`` the CD matrix in
    **radians** per pixel (tetra3rs's unit; FITS headers want degrees:
    ``np.degrees(cd_matrix)``, or use :meth:`to_wcs`) mapping (undistorted)
    pixel offsets to intermediate world coordinates (xi east, eta north; the
    same matrix for every projection), and ``theta_deg`` the angle from East
    to camera +X, counter-clockwise (towards North), in (-180, 180]. Like the
    roll, it describes the attitude and does not change with the parity (as in
    tetra3rs): on a mirrored image (``parity_flip``) image +x is camera -X, so
    image +x points at ``theta_deg + 180``.

    Errors ``rmse_arcsec``, ``p90e_arcsec``, ``max_err_arcsec`` are over the
    matched stars after refinement; ``probability`` is the false-positive
    probability of the verification. ``attitude_cov_rad2`` is the covariance
    of ``[theta, xi0, eta0]`` (roll about the boresight; the boresight's
    tangent-plane offsets East and North), rad², from the matched stars'
    geometry and their scatter per axis (over the degrees of freedom the fit
    leaves, widened for few stars so that 1 sigma covers 68 % of the errors:
    :func:`~skysolve.solver.refinement.one_sigma_t`); ``attitude_sigma_rad`` its
    square-rooted diagonal.
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
    #: Centred pixel positions ``(n, 2)`` of the matched centroids (as given to the solve).
    matched_xy: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    #: Catalog RA/Dec ``(n, 2)`` of the matched stars, ICRS degrees at the database's epoch.
    matched_radec_deg: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 2)))
    #: Angular residual of each match after refinement, arcseconds.
    matched_residuals_arcsec: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    #: The :class:`~skysolve.ExtractionResult` the centroids came from, when the solve
    #: started from an image (:func:`skysolve.solve_image`); None otherwise.
    extraction: Any = None

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
        """RA of the WCS reference point (the boresight), degrees.

        The attitude's, as ``cd_matrix``; when the solve removed the observer's velocity
        aberration, :meth:`to_wcs` maps pixels to catalog positions instead, and its
        reference point differs from this by the aberration (up to 20.5")."""
        return self.ra_deg

    @property
    def crval_dec_deg(self) -> float:
        """Dec of the WCS reference point (the boresight), degrees."""
        return self.dec_deg

    @property
    def crpix(self) -> NDArray[np.float64]:
        """Optical-centre offset ``[x, y]`` from the geometric image centre, pixels."""
        return np.asarray(self.camera_model.crpix, dtype=np.float64).copy()

    @property
    def cd_matrix(self) -> NDArray[np.float64]:
        """CD matrix, tangent-plane radians per pixel: (dx, dy) → (xi east, eta north).

        The attitude's (see ``crval_ra_deg`` for solves with an observer velocity)."""
        R = self.rotation_matrix_icrs_to_camera
        north, east = north_east_basis(R[2])
        s = -1.0 if self.parity_flip else 1.0
        f = self.camera_model.focal_length_px
        m = np.array([[R[0] @ east, R[1] @ east], [R[0] @ north, R[1] @ north]])
        return m @ np.diag([s / f, 1.0 / f])

    @property
    def theta_deg(self) -> float:
        """Angle from the East axis to camera +X, counter-clockwise, degrees in (-180, 180].

        Camera +X, not image +x: on a mirrored image (``parity_flip``) image +x
        points at ``theta_deg + 180``.
        """
        R = self.rotation_matrix_icrs_to_camera
        north, east = north_east_basis(R[2])
        return signed_degrees(math.degrees(math.atan2(R[0] @ north, R[0] @ east)))

    @property
    def attitude_sigma_rad(self) -> NDArray[np.float64]:
        """1-sigma uncertainties ``[theta, xi0, eta0]``, radians (see ``attitude_cov_rad2``)."""
        return np.sqrt(np.clip(np.diag(self.attitude_cov_rad2), 0, None))

    @property
    def boresight(self) -> Any:
        """The boresight as an astropy ``SkyCoord`` (ICRS): the catalog position the
        optical axis points at.

        That is (``ra_deg``, ``dec_deg``), unless the solve removed the observer's
        velocity aberration (``obstime``, ``observer_velocity_km_s``): then
        (``ra_deg``, ``dec_deg``) is the apparent direction the camera points in, up
        to 20.5" from the ICRS position there, and the ``SkyCoord`` is that position,
        as :meth:`pixel_to_world` and :meth:`to_wcs` give (astropy's ICRS of the
        apparent, GCRS direction at the time, to milliarcseconds).
        """
        from astropy.coordinates import SkyCoord

        # (an ICRS SkyCoord holding the apparent direction sat ~10-20" beside every
        # catalog it was compared with)
        ra, dec = self._astrometric(self.ra_deg, self.dec_deg, -1.0)
        return SkyCoord(ra, dec, unit="deg", frame="icrs")

    def to_table(self, origin: str = "center") -> Any:
        """The matched stars as an astropy ``QTable``, one row per match.

        Parameters
        ----------
        origin : {'center', 'zero', 'fits'}
            Pixel convention of the ``x``, ``y`` columns, as the ``origin`` of a
            solve: centred pixels (default), 0-based array pixels (photutils, and
            ``to_wcs().pixel_to_world``) or 1-based FITS pixels.

        Returns
        -------
        astropy.table.QTable
            Columns ``centroid`` (row of the solve's input), ``x``, ``y`` (px, in
            ``origin``'s convention), ``catalog_id``, ``ra``, ``dec`` (catalog
            position, deg), ``residual`` (arcsec, after refinement), ``sky`` (the
            catalog position as a ``SkyCoord``); ``meta`` states the pixel convention
            (``origin``: a solve of the table must agree with it) and the image size
            (``image_width``, ``image_height``). Results made
            before these were recorded give NaN positions.
        """
        from astropy import units as u
        from astropy.coordinates import SkyCoord
        from astropy.table import QTable

        from ..centroids import origin_shift

        cam = self.camera_model
        shift = origin_shift(origin, cam.image_width, cam.image_height)
        n = len(self.matched_centroids)
        xy = self.matched_xy if len(self.matched_xy) == n else np.full((n, 2), np.nan)
        rd = self.matched_radec_deg if len(self.matched_radec_deg) == n \
            else np.full((n, 2), np.nan)
        res = self.matched_residuals_arcsec if len(self.matched_residuals_arcsec) == n \
            else np.full(n, np.nan)
        table = QTable()
        table["centroid"] = np.asarray(self.matched_centroids, dtype=np.int64)
        table["x"] = (xy[:, 0] + shift[0]) * u.pix
        table["y"] = (xy[:, 1] + shift[1]) * u.pix
        table["catalog_id"] = np.asarray(self.matched_catalog_ids, dtype=np.int64)
        table["ra"] = rd[:, 0] * u.deg
        table["dec"] = rd[:, 1] * u.deg
        table["residual"] = res * u.arcsec
        table["sky"] = SkyCoord(rd[:, 0], rd[:, 1], unit="deg", frame="icrs")
        table.meta.update(origin=origin, image_width=cam.image_width,
                          image_height=cam.image_height)
        table.meta["comments"] = [{
            "center": "x, y: centred pixels (origin at the image centre, +y down)",
            "zero": "x, y: 0-based array pixels (the centre of pixel [row, col] is (col, row))",
            "fits": "x, y: 1-based FITS pixels (the centre of pixel [row, col] is "
                    "(col + 1, row + 1))"}[origin]]
        return table

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
        ra, dec = self._astrometric(ra, dec, -1.0)
        if np.ndim(ra) == 0:
            return None if not np.isfinite(ra) else (float(ra), float(dec))
        return ra, dec

    def world_to_pixel(self, ra_deg: ArrayLike, dec_deg: ArrayLike):
        """Centred pixel coordinates of sky positions.

        Returns ``(x, y)`` floats for scalar input (None when the camera's
        projection does not image the position: behind a pinhole camera,
        beyond a fisheye's reach) or arrays (NaN there) for array input.
        Imaged positions outside the image are returned as they are.
        """
        from ..camera.model import _as_float_array, check_declination

        check_declination(_as_float_array(dec_deg, "dec_deg"))  # (before aberration)
        ra_deg, dec_deg = self._astrometric(ra_deg, dec_deg, 1.0)
        x, y = self.camera_model.world_to_pixel(ra_deg, dec_deg,
                                                self.rotation_matrix_icrs_to_camera)
        if np.ndim(x) == 0:
            return None if not np.isfinite(x) else (float(x), float(y))
        return x, y

    def to_wcs(self) -> astropy.wcs.WCS:
        """The solution as an astropy WCS in the camera's projection (TAN, ARC, ZEA,
        STG or SIN; with SIP for distortion, e.g. TAN-SIP).

        The WCS uses the FITS pixel convention of the full image (1-based in
        headers; astropy's ``pixel_to_world`` is 0-based on array indices), so
        ``to_wcs().pixel_to_world(col, row)`` is the sky position of the centre
        of array pixel ``[row, col]``.
        """
        from ..io.wcs import camera_to_wcs

        return camera_to_wcs(*self.wcs_geometry())

    def _astrometric(self, ra: ArrayLike, dec: ArrayLike, sign: float):
        """Catalog (astrometric ICRS) positions from apparent ones (``sign=-1``), or
        apparent from catalog (``sign=+1``), when the solve removed the observer's
        velocity aberration; unchanged otherwise."""
        v = self.observer_velocity_km_s
        if v is None:
            return ra, dec
        from ..geometry import radec_to_vector, vector_to_radec
        from ..sky.aberration import aberrate, unaberrate

        ra_a = np.asarray(ra, dtype=np.float64)
        dec_a = np.asarray(dec, dtype=np.float64)
        ra_a, dec_a = np.broadcast_arrays(ra_a, dec_a)
        ok = np.isfinite(ra_a) & np.isfinite(dec_a)
        out_ra, out_dec = np.full(ra_a.shape, np.nan), np.full(ra_a.shape, np.nan)
        if ok.any():
            convert = aberrate if sign > 0 else unaberrate
            vec = convert(radec_to_vector(ra_a[ok], dec_a[ok]), v)
            out_ra[ok], out_dec[ok] = vector_to_radec(vec)
        if out_ra.ndim == 0:
            return float(out_ra), float(out_dec)
        return out_ra, out_dec

    def wcs_geometry(self) -> tuple[CameraModel, NDArray[np.float64]]:
        """``(camera_model, ICRS->camera rotation)`` the WCS outputs use.

        The result's own, unless the solve removed the observer's velocity
        aberration (``observer_velocity_km_s``): then the attitude is the
        aberration-free one, and a WCS (which maps pixels to catalog, astrometric
        positions) needs the rotation and focal length that best map the catalog
        positions onto the image (the aberration shifts the field by up to 20.5"
        and changes its scale by up to 1e-4), as a solve without the velocity finds.
        """
        cam, R = self.camera_model, self.rotation_matrix_icrs_to_camera
        if self.observer_velocity_km_s is None:
            return cam, R
        from ..geometry import radec_to_vector, wahba_rotation

        gx, gy = (g.ravel() for g in np.meshgrid(np.linspace(-0.5, 0.5, 9) * cam.image_width,
                                                 np.linspace(-0.5, 0.5, 9) * cam.image_height))
        ra, dec = self.pixel_to_world(gx, gy)
        ok = np.isfinite(ra) & np.isfinite(dec)
        gx, gy, sky = gx[ok], gy[ok], radec_to_vector(ra[ok], dec[ok])

        def residuals(c: CameraModel, rot: NDArray[np.float64]) -> NDArray[np.float64]:
            x, y = c.vectors_to_pixel(sky @ rot.T)
            return np.concatenate([np.asarray(x) - gx, np.asarray(y) - gy])

        f = cam.focal_length_px
        for _ in range(2):
            R = wahba_rotation(cam.pixel_to_vectors(gx, gy), sky)
            r0 = residuals(cam, R)
            step = 1e-4 * f
            jac = (residuals(cam.replace(focal_length_px=f + step), R) - r0) / step
            ok = np.isfinite(r0) & np.isfinite(jac)
            if ok.any() and float(jac[ok] @ jac[ok]) > 0:
                f -= float(jac[ok] @ r0[ok]) / float(jac[ok] @ jac[ok])
                cam = cam.replace(focal_length_px=f)
        return cam, wahba_rotation(cam.pixel_to_vectors(gx, gy), sky)

    def to_header(self) -> astropy.io.fits.Header:
        """The WCS as a FITS header (with SIP keywords when there is distortion)."""
        from ..io.wcs import wcs_to_header

        return wcs_to_header(self.to_wcs())

    def update_header(self, header: astropy.io.fits.Header) -> astropy.io.fits.Header:
        """Write this solution's WCS into an existing FITS header (in place) and return it.

        The header's old WCS goes first (CD/PC/CDELT terms, SIP and TPV ``PVi_m``
        polynomials, lookup-table distortions, ``RADECSYS``...: see
        :func:`skysolve.io.wcs.replace_wcs`): ``header.update(result.to_header())`` would
        leave an old polynomial that astropy applies on top of the solution. Its other
        cards (``DATE-OBS``, ``EXPTIME``, ``NAXIS``...) stay.

        Parameters
        ----------
        header : astropy.io.fits.Header
            E.g. the solved image's HDU's header, ``hdul[0].header``.
        """
        from ..io.wcs import replace_wcs

        replace_wcs(header, self.to_header())
        return header

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no arrays larger than the matched lists); its
        ``camera_model`` is the solve's whole camera (``CameraModel.to_dict``: focal
        length, optical centre, parity, projection and any distortion, such as the
        radial term a wide field's solve fits), which ``CameraModel.from_dict``
        rebuilds."""
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
            "camera_model": self.camera_model.to_dict(),
        }
