"""Plot helpers: what they draw is checked against independently computed positions."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skysolve.camera.distortion import PolynomialDistortion, RadialDistortion  # noqa: E402
from skysolve.camera.model import CameraModel  # noqa: E402
from skysolve.errors import InvalidArgumentError, InvalidTypeError  # noqa: E402
from skysolve.extraction import extract_centroids  # noqa: E402
from skysolve.io.images import read_image  # noqa: E402
from skysolve.plotting import (  # noqa: E402
    plot_distortion,
    plot_distortion_uncertainty,
    plot_residuals,
    plot_solution,
)
from skysolve.tests.realframes import ALT40, DATA  # noqa: E402

FRAME = DATA / ALT40


@pytest.fixture(scope="module")
def solved(small_db):
    image = read_image(FRAME)
    ext = extract_centroids(image)
    res = small_db.solve_from_centroids(ext.centroids, fov_estimate_deg=11.4,
                                        image_shape=image.shape)
    assert res
    return image, ext.centroids, res


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _collection(ax, label_start: str):
    found = [c for c in ax.collections if str(c.get_label()).startswith(label_start)]
    assert len(found) == 1, [c.get_label() for c in ax.collections]
    return found[0]


def _projected(res, db, ids):
    stars = [db.get_star_by_id(int(i)) for i in ids]
    x, y = res.world_to_pixel(np.array([s.ra_deg for s in stars]),
                              np.array([s.dec_deg for s in stars]))
    return np.column_stack([x, y])


def test_plot_solution_draws_matches_at_their_positions(solved, small_db):
    image, centroids, res = solved
    ax = plot_solution(image, res, centroids, db=small_db)
    xy = np.array([[c.x, c.y] for c in centroids])
    matched = _collection(ax, "matched centroids")
    np.testing.assert_allclose(matched.get_offsets(), xy[res.matched_centroids])
    assert matched.get_label() == f"matched centroids ({res.num_matches})"
    crosses = np.asarray(_collection(ax, "matched catalog stars").get_offsets())
    np.testing.assert_allclose(crosses, _projected(res, small_db, res.matched_catalog_ids))
    # the catalog stars land on their centroids (RMSE ~0.15 px for this frame)
    assert np.max(np.hypot(*(crosses - xy[res.matched_centroids]).T)) < 1.0
    others = np.asarray(_collection(ax, "other catalog stars").get_offsets())
    assert len(others) > 0
    assert np.all(np.abs(others[:, 0]) <= 512) and np.all(np.abs(others[:, 1]) <= 384)
    dist = np.hypot(*(others[:, None, :] - crosses[None, :, :]).transpose(2, 0, 1))
    assert dist.min() > 1e-6  # matched stars are not drawn twice (close doubles may be)
    # image in centred pixel coordinates, +y down, percentile stretch
    (im,) = ax.images
    assert tuple(im.get_extent()) == (-512, 512, 384, -384)
    lo, hi = np.percentile(image, (1.0, 99.5))
    assert im.get_clim() == pytest.approx((lo, hi))
    assert ax.get_ylim() == (384, -384)
    assert f"{res.ra_deg:.4f}" in ax.get_title()
    assert len(ax.texts) == min(20, res.num_matches)


def test_plot_solution_into_given_axes_and_without_db(solved):
    image, centroids, res = solved
    fig, ax = plt.subplots()
    assert plot_solution(image, res, centroids, ax=ax) is ax
    labels = [c.get_label() for c in ax.collections]
    assert not any("catalog" in str(label) for label in labels)


def test_plot_solution_of_a_failure(solved, small_db):
    image, centroids, _ = solved
    flat = np.zeros((100, 200), np.uint16)
    failure = small_db.solve_from_centroids([], image_shape=flat.shape)
    ax = plot_solution(flat, failure, [], db=small_db)
    assert "not solved (too few)" in ax.get_title()
    ax = plot_solution(image, failure, centroids)
    np.testing.assert_allclose(_collection(ax, "unmatched centroids").get_offsets(),
                               [[c.x, c.y] for c in centroids])


def test_plot_solution_rejects_mismatched_inputs(solved, small_db):
    image, centroids, res = solved
    with pytest.raises(InvalidArgumentError, match="centroids"):
        plot_solution(image, res, centroids[:5], db=small_db)
    with pytest.raises(InvalidArgumentError, match="2-D"):
        plot_solution(np.zeros(10), res, centroids)


def test_plot_residuals_arrows_are_centroid_minus_catalog(solved, small_db):
    image, centroids, res = solved
    ax = plot_residuals(res, centroids, small_db, scale=1.0)
    (q,) = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    xy = np.array([[c.x, c.y] for c in centroids])[res.matched_centroids]
    expected = xy - _projected(res, small_db, res.matched_catalog_ids)
    np.testing.assert_allclose(q.get_offsets(), xy)
    np.testing.assert_allclose(np.column_stack([q.U, q.V]), expected, atol=1e-9)
    rms = np.sqrt(np.mean(np.sum(expected**2, axis=1)))
    assert f"RMS {rms:.3f} px" in ax.get_title(loc="left")
    # default scale: the longest arrow is 8% of the image width
    ax = plot_residuals(res, centroids, small_db)
    (q,) = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert np.max(np.hypot(q.U, q.V)) == pytest.approx(0.08 * 1024)


def test_plot_residuals_needs_a_solution(solved, small_db):
    _, centroids, _ = solved
    failure = small_db.solve_from_centroids([], image_shape=(768, 1024))
    with pytest.raises(InvalidArgumentError, match="SolveResult"):
        plot_residuals(failure, centroids, small_db)


@pytest.mark.parametrize("distortion", [
    RadialDistortion(k1=-0.05, k2=0.01, p1=1e-3, scale=600.0),
    PolynomialDistortion.from_forward(
        2, 500.0, a_coeffs=[0, 0, 0, 0.4, 0.1, -0.2], b_coeffs=[0, 0, 0, 0.1, 0.3, 0.2]),
])
def test_plot_distortion_vectors_are_distorted_minus_ideal(distortion):
    cam = CameraModel(3000.0, 1200, 800, crpix=(15.0, -8.0), distortion=distortion)
    ax = plot_distortion(cam, grid=12, scale=1.0)
    (q,) = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    p = np.asarray(q.get_offsets())
    assert len(p) == 12 * 8
    assert np.all(np.abs(p[:, 0]) < 600) and np.all(np.abs(p[:, 1]) < 400)
    u, v = distortion.distort(p[:, 0] - 15.0, p[:, 1] + 8.0)
    np.testing.assert_allclose(q.U, u + 15.0 - p[:, 0], atol=1e-9)
    np.testing.assert_allclose(q.V, v - 8.0 - p[:, 1], atol=1e-9)
    assert np.max(np.hypot(q.U, q.V)) > 0.01
    assert type(distortion).__name__ in ax.get_title()
    assert len(ax.figure.axes) == 2  # the magnitude colour bar


def test_plot_distortion_of_a_pinhole_is_zero():
    ax = plot_distortion(CameraModel.from_fov(10.0, 640, 480))
    (q,) = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert np.all(q.U == 0) and np.all(q.V == 0)
    assert "no distortion" in ax.get_title()


def test_plot_distortion_arguments():
    cam = CameraModel.from_fov(10.0, 640, 480)
    with pytest.raises(InvalidTypeError, match="camera_model"):
        plot_distortion("camera.json")
    with pytest.raises(InvalidArgumentError, match="grid"):
        plot_distortion(cam, grid=1)
    with pytest.raises(InvalidArgumentError, match="scale"):
        plot_distortion(cam, scale=-1.0)


def test_plot_distortion_uncertainty_shows_the_sigma_map(solved, small_db):
    """The filled contours span the calibration's own 1-sigma map over the image."""
    _, cents, res = solved
    cal = small_db.calibrate_camera(res, cents, order=2)
    ax = plot_distortion_uncertainty(cal, arcsec=False, grid=9)
    levels = ax.collections[0].levels if hasattr(ax.collections[0], "levels") else None
    w, h = 1024, 768
    gx, gy = np.meshgrid(np.linspace(-w / 2, w / 2, 9), np.linspace(-h / 2, h / 2, 7))
    sigma = cal.mapping_sigma_px(gx.ravel(), gy.ravel())
    assert levels is not None and levels[0] <= sigma.min() and levels[-1] >= sigma.max()
    assert f"max {sigma.max():.3g}px" in ax.get_title()
    ax = plot_distortion_uncertainty(cal, image=0, arcsec=True)
    assert "image 0" in ax.get_title() and '"' in ax.get_title()
    with pytest.raises(InvalidTypeError, match="CalibrateResult"):
        plot_distortion_uncertainty(cal.camera_model)
    with pytest.raises(InvalidArgumentError, match="grid"):
        plot_distortion_uncertainty(cal, grid=1)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install skysolve\[plot\]"):
        plot_distortion(CameraModel.from_fov(10.0, 640, 480))


def test_plot_solution_marks_rejected_detections_by_reason(small_db):
    from skysolve.simulate.degrade import trails

    image = trails(read_image(FRAME), 1.0, kind="aircraft", seed=3)
    ext = extract_centroids(image)
    res = small_db.solve_from_centroids(ext, fov_estimate_deg=11.4, image_shape=image.shape)
    ax = plot_solution(image, res, ext, db=small_db)
    rej = ext.rejected
    shown = [r for r in dict.fromkeys(rej["reason"]) if r != "small"]
    assert "trail" in shown
    for reason in shown:
        sel = rej["reason"] == reason
        drawn = _collection(ax, f"rejected: {reason} ")
        assert drawn.get_label() == f"rejected: {reason} ({sel.sum()})"
        np.testing.assert_allclose(drawn.get_offsets(), np.column_stack([rej["x"], rej["y"]])[sel])
    assert not [c for c in ax.collections if "rejected: small" in str(c.get_label())]
    plt.close("all")
    quiet = plot_solution(image, res, ext, db=small_db, show_rejected=False)
    assert not [c for c in quiet.collections if str(c.get_label()).startswith("rejected")]


def _contour_radii(ax, centre):
    """Distances from ``centre`` of the vertices of each contour line, by level."""
    from matplotlib.contour import ContourSet

    out = {}
    for cs in (c for c in ax.collections if isinstance(c, ContourSet)):
        if cs.filled:
            continue
        for level, path in zip(cs.levels, cs.get_paths(), strict=True):
            if len(path.vertices):
                out[float(level)] = np.hypot(*(path.vertices - centre).T)
    return out


def test_plot_distortion_of_a_fisheye_marks_angles_from_the_axis():
    f, crpix = 300.0, np.array([10.0, -5.0])
    cam = CameraModel(f, 1200, 1000, crpix=crpix, projection="equidistant")
    ax = plot_distortion(cam)
    radii = _contour_radii(ax, crpix)
    assert sorted(radii) == [30.0, 60.0, 90.0, 120.0, 150.0]  # 150° (785 px): a corner
    for level, r in radii.items():  # equidistant: r = f theta
        np.testing.assert_allclose(r, f * np.radians(level), rtol=0.01)
    assert "equidistant lens" in ax.get_title()
    assert {t.get_text() for t in ax.texts} >= {"30°", "60°", "90°", "120°"}
    # an orthographic lens images 90° at r = f: the edge of its image circle is drawn
    ortho = plot_distortion(CameraModel(300.0, 800, 800, projection="orthographic"))
    radii = _contour_radii(ortho, np.zeros(2))
    np.testing.assert_allclose(radii[60.0], 300.0 * np.sin(np.radians(60.0)), rtol=0.01)
    (edge,) = [line for line in ortho.lines if line.get_label() == "edge of the image circle"]
    np.testing.assert_allclose(np.hypot(*edge.get_data()), 300.0, rtol=1e-12)
    # a pinhole camera gets no such lines
    assert _contour_radii(plot_distortion(CameraModel(300.0, 800, 600)), np.zeros(2)) == {}


def test_plot_solution_of_a_fisheye_shows_catalog_stars_past_90_degrees(small_db):
    from skysolve.geometry import radec_roll_to_rotation, radec_to_vector
    from skysolve.solver.result import SolveResult

    cam = CameraModel.from_fov(200.0, 800, 600, projection="equidistant")
    R = radec_roll_to_rotation(80.0, 10.0, 30.0)
    res = SolveResult(ra_deg=80.0, dec_deg=10.0, roll_deg=30.0, fov_deg=cam.fov_deg,
                      rotation_matrix_icrs_to_camera=R, camera_model=cam, num_matches=0,
                      rmse_arcsec=0.0, p90e_arcsec=0.0, max_err_arcsec=0.0, probability=0.0,
                      solve_time_ms=0.0, matched_centroids=np.zeros(0, np.intp),
                      matched_catalog_ids=np.zeros(0, np.int64))
    ax = plot_solution(np.zeros((600, 800)), res, np.zeros((0, 2)), db=small_db,
                       max_field_stars=300)
    others = np.asarray(_collection(ax, "other catalog stars").get_offsets())
    assert len(others) == 300
    # each square sits on a catalog star: unproject it and find the star there
    v = cam.pixel_to_vectors(others[:, 0], others[:, 1]) @ R
    off_axis = np.degrees(np.arccos(np.clip(v @ R[2], -1, 1)))
    assert off_axis.max() > 100.0
    near = small_db.cone_indices(80.0, 10.0, 180.0)
    stars = [small_db.get_star(int(i)) for i in near[:4000]]
    cat = radec_to_vector([s.ra_deg for s in stars], [s.dec_deg for s in stars])
    assert np.all(np.max(v @ cat.T, axis=1) > np.cos(np.radians(1e-4)))  # 0.4 mas


def test_plot_solution_on_wcsaxes_with_an_astropy_stretch(solved, small_db, tmp_path):
    from astropy.visualization import AsinhStretch
    from astropy.visualization.wcsaxes import WCSAxes

    image, centroids, res = solved
    ax = plot_solution(image, res, centroids, db=small_db, wcs_grid=True, stretch="asinh")
    assert isinstance(ax, WCSAxes)
    assert isinstance(ax.images[0].norm.stretch, AsinhStretch)
    # the axes' data coordinates are centred pixels: its WCS agrees with the solution there
    pts = np.array([[0.0, 0.0], [-500.0, 370.0], [480.0, -350.0]])
    world = ax.wcs.pixel_to_world_values(pts[:, 0], pts[:, 1])
    ra, dec = res.pixel_to_world(pts[:, 0], pts[:, 1])
    np.testing.assert_allclose(world[0], ra, atol=1e-7)
    np.testing.assert_allclose(world[1], dec, atol=1e-7)
    matched = _collection(ax, "matched centroids")
    xy = np.array([[c.x, c.y] for c in centroids])
    np.testing.assert_allclose(matched.get_offsets(), xy[res.matched_centroids])
    ax.figure.savefig(tmp_path / "grid.png", dpi=60)
    assert (tmp_path / "grid.png").stat().st_size > 10_000
    with pytest.raises(InvalidArgumentError, match="stretch"):
        plot_solution(image, res, centroids, stretch="cubic")
