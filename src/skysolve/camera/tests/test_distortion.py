"""Tests of skysolve.camera.distortion: known answers, inverses, validation, serialisation."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from skysolve.camera.distortion import (
    PolynomialDistortion,
    RadialDistortion,
    distortion_from_dict,
    num_polynomial_terms,
    polynomial_design_jacobian,
    polynomial_design_matrix,
    polynomial_terms,
    radial_design_matrix,
)
from skysolve.errors import InvalidArgumentError, InvalidTypeError

W, H = 2048, 1536
CRPIX = np.array([31.5, -17.25])


def image_offsets(n=41, crpix=CRPIX, w=W, h=H):
    """Grid over the whole image (pixel edges included), as offsets from the optical centre."""
    gx, gy = np.meshgrid(np.linspace(-w / 2, w / 2, n), np.linspace(-h / 2, h / 2, n))
    return gx.ravel() - crpix[0], gy.ravel() - crpix[1]


def random_poly(order, rng, amplitude=3.0):
    """Coefficients giving a few px of distortion at the edge of a 2048-wide image."""
    n = num_polynomial_terms(order)
    terms = polynomial_terms(order)
    deg = terms.sum(1)
    # smaller constant/linear parts, as after calibration
    amp = np.where(deg == 0, 0.5, np.where(deg == 1, 1.0, amplitude)) / n**0.5
    return rng.normal(0, 1, n) * amp, rng.normal(0, 1, n) * amp


# --------------------------------------------------------------------------- basis


def test_polynomial_terms_order_and_count():
    assert polynomial_terms(2).tolist() == [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
    for order in range(7):
        t = polynomial_terms(order)
        assert len(t) == num_polynomial_terms(order) == (order + 1) * (order + 2) // 2
        assert len({tuple(x) for x in t}) == len(t)
        assert t.sum(1).max() == order
        assert np.all(np.diff(t.sum(1)) >= 0)


def test_design_matrix_values():
    m = polynomial_design_matrix(200.0, 300.0, 2, 100.0)
    np.testing.assert_allclose(m, [1, 2, 3, 4, 6, 9])
    m = polynomial_design_matrix(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]), 3, 2.0)
    assert m.shape == (1, 2, 10)
    np.testing.assert_allclose(m[0, 1, 6:], [1.0, 2.0, 4.0, 8.0])  # x³, x²y, xy², y³ at (1,2)


def test_design_jacobian_matches_finite_differences():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-900, 900, 20), rng.uniform(-700, 700, 20)
    dx, dy = polynomial_design_jacobian(x, y, 5, 1024.0)
    h = 1e-3
    fx = (polynomial_design_matrix(x + h, y, 5, 1024.0)
          - polynomial_design_matrix(x - h, y, 5, 1024.0)) / (2 * h)
    fy = (polynomial_design_matrix(x, y + h, 5, 1024.0)
          - polynomial_design_matrix(x, y - h, 5, 1024.0)) / (2 * h)
    np.testing.assert_allclose(dx, fx, atol=1e-9)
    np.testing.assert_allclose(dy, fy, atol=1e-9)


def test_radial_design_matrix_is_linear_model():
    d = RadialDistortion(-3e-7, 4e-13, -2e-19, 5e-6, -7e-6, scale=1.0)
    x, y = image_offsets(9)
    mx, my = radial_design_matrix(x, y)
    xd, yd = d.distort(x, y)
    np.testing.assert_allclose(mx @ d.coefficients, xd - x, atol=1e-9)
    np.testing.assert_allclose(my @ d.coefficients, yd - y, atol=1e-9)
    d2 = RadialDistortion(-0.3, 0.1, 0.0, 0.002, 0.001, scale=1024.0)
    mx, my = radial_design_matrix(x, y, scale=1024.0)
    xd, yd = d2.distort(x, y)
    np.testing.assert_allclose(mx @ d2.coefficients, xd - x, atol=1e-9)
    np.testing.assert_allclose(my @ d2.coefficients, yd - y, atol=1e-9)


# --------------------------------------------------------------------------- radial


def test_radial_known_answers():
    d = RadialDistortion(k1=1e-7)
    # r² = 5e4 px², factor 1 + 0.005
    assert d.distort(100.0, 200.0) == pytest.approx((100.5, 201.0), abs=1e-12)
    xd, yd = RadialDistortion(p1=1e-5).distort(100.0, 200.0)
    assert xd == pytest.approx(100.0 + 2e-5 * 100 * 200)
    assert yd == pytest.approx(200.0 + 1e-5 * (5e4 + 2 * 4e4))
    xd, yd = RadialDistortion(p2=1e-5).distort(100.0, 200.0)
    assert xd == pytest.approx(100.0 + 1e-5 * (5e4 + 2 * 1e4))
    assert yd == pytest.approx(200.0 + 2e-5 * 100 * 200)
    # the scale only changes the units of the coefficients
    a = RadialDistortion(k1=-2e-9, k2=3e-16, p1=1e-7)
    b = RadialDistortion(k1=-2e-9 * 1000**2, k2=3e-16 * 1000**4, p1=1e-7 * 1000, scale=1000.0)
    np.testing.assert_allclose(a.distort(*image_offsets(7)), b.distort(*image_offsets(7)),
                               atol=1e-9)


@pytest.mark.parametrize("coeffs", [
    dict(k1=-5e-9),                     # barrel
    dict(k1=6e-9, k2=-1e-16),           # pincushion
    dict(k1=-4e-9, k2=2e-16, k3=-3e-23, p1=3e-7, p2=-2e-7),
    dict(k1=-0.004, k2=0.001, p1=0.0005, scale=1024.0),
])
def test_radial_round_trip_over_image(coeffs):
    d = RadialDistortion(**coeffs)
    x, y = image_offsets()
    xd, yd = d.distort(x, y)
    assert np.max(np.hypot(xd - x, yd - y)) > 3.0  # several px at the corner
    xu, yu = d.undistort(xd, yd)
    assert np.max(np.hypot(xu - x, yu - y)) < 1e-6
    xr, yr = d.distort(*d.undistort(x, y))
    assert np.max(np.hypot(xr - x, yr - y)) < 1e-6


def test_radial_undistort_beyond_fold_over_is_nan():
    d = RadialDistortion(k1=-1e-6)  # distorted radius peaks at r = 1/sqrt(3e-6) ≈ 577 px
    r_max = 1 / np.sqrt(3e-6) * (1 - 1e-6 * 1 / 3e-6)
    xu, yu = d.undistort(np.array([100.0, r_max * 1.01]), np.array([0.0, 0.0]))
    assert np.isfinite(xu[0]) and np.isnan(xu[1]) and np.isnan(yu[1])
    assert d.distort(xu[0], yu[0]) == pytest.approx((100.0, 0.0), abs=1e-9)


# --------------------------------------------------------------------------- polynomial


def test_polynomial_known_answer():
    for k, expected in enumerate([1, 2, 3, 4, 6, 9]):
        a = np.zeros(6)
        a[k] = 1.0
        d = PolynomialDistortion(2, 100.0, a, np.zeros(6), np.zeros(6), np.zeros(6))
        assert d.distort(200.0, 300.0) == pytest.approx((200.0 + expected, 300.0))
        d = PolynomialDistortion(2, 100.0, np.zeros(6), np.zeros(6), a, np.zeros(6),
                                 primary="inverse")
        assert d.undistort(200.0, 300.0) == pytest.approx((200.0 + expected, 300.0))


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("primary", ["forward", "inverse"])
def test_polynomial_round_trip_over_image(order, primary):
    rng = np.random.default_rng(order)
    a, b = random_poly(order, rng)
    maker = PolynomialDistortion.from_forward if primary == "forward" else \
        PolynomialDistortion.from_inverse
    d = maker(order, W / 2, a, b, image_width=W, image_height=H, crpix=CRPIX)
    assert d.primary == primary and d.order == order
    x, y = image_offsets()
    xd, yd = d.distort(x, y)
    assert np.max(np.hypot(xd - x, yd - y)) > 1.0
    xu, yu = d.undistort(xd, yd)
    assert np.max(np.hypot(xu - x, yu - y)) < 1e-6
    xr, yr = d.distort(*d.undistort(x, y))
    assert np.max(np.hypot(xr - x, yr - y)) < 1e-6
    # the primary polynomial is evaluated exactly
    m = polynomial_design_matrix(x, y, order, W / 2)
    if primary == "forward":
        np.testing.assert_allclose(xd, x + m @ a, atol=1e-9)
    else:
        np.testing.assert_allclose(d.undistort(x, y)[1], y + m @ b, atol=1e-9)


def test_polynomial_fitted_secondary_approximates_inverse():
    rng = np.random.default_rng(11)
    a, b = random_poly(4, rng, amplitude=5.0)
    d = PolynomialDistortion.from_forward(4, W / 2, a, b, image_width=W, image_height=H,
                                          crpix=CRPIX)
    x, y = image_offsets()
    xd, yd = d.distort(x, y)
    m = polynomial_design_matrix(xd, yd, 4, W / 2)
    err = np.hypot(xd + m @ d.ap_coeffs - x, yd + m @ d.bp_coeffs - y)
    assert err.max() < 0.2 * np.max(np.hypot(xd - x, yd - y))
    # a model without AP/BP fits them itself; refitting never changes the mapping
    bare = PolynomialDistortion(4, W / 2, a, b)
    assert np.any(bare.ap_coeffs)
    np.testing.assert_allclose(bare.undistort(xd, yd), (x, y), atol=1e-6)
    refit = d.fit_secondary(points=np.stack([xd, yd], 1))
    np.testing.assert_array_equal(refit.a_coeffs, d.a_coeffs)
    np.testing.assert_allclose(refit.undistort(xd, yd), (x, y), atol=1e-6)
    assert d.fit_inverse(W, H, CRPIX).primary == "forward"


def test_polynomial_identity_and_properties():
    z = np.zeros(10)
    d = PolynomialDistortion(3, 512.0, z, z, z, z)
    assert d.is_identity and d.num_coeffs == 10 and d.scale == 512.0
    assert d.terms.shape == (10, 2)
    assert d.distort(3.0, 4.0) == (3.0, 4.0)
    assert not PolynomialDistortion(3, 512.0, np.r_[1.0, z[1:]], z).is_identity
    assert RadialDistortion().is_identity and not RadialDistortion(p2=1e-9).is_identity
    with pytest.raises(ValueError):
        d.a_coeffs[0] = 1.0  # read-only


# --------------------------------------------------------------------------- API shape


@pytest.mark.parametrize("model", [
    RadialDistortion(k1=-3e-9, p1=1e-7),
    PolynomialDistortion(3, 1024.0, np.linspace(-1, 1, 10), np.linspace(1, -1, 10)),
])
def test_scalars_and_array_shapes(model):
    xd, yd = model.distort(100.0, -50.0)
    assert type(xd) is float and type(yd) is float
    xu, yu = model.undistort(np.float64(100.0), -50)
    assert type(xu) is float
    grid = np.arange(12.0).reshape(3, 4) * 50
    xd, yd = model.distort(grid, -grid)
    assert xd.shape == (3, 4) and yd.shape == (3, 4)
    xd, yd = model.distort(grid, 5.0)  # broadcast
    assert xd.shape == (3, 4)
    xu, yu = model.undistort(xd, yd)
    np.testing.assert_allclose(xu, grid, atol=1e-6)
    xs, ys = model.distort([], [])
    assert xs.shape == (0,)
    xn, yn = model.undistort(np.nan, 1.0)
    assert np.isnan(xn)
    with pytest.raises(ValueError, match="x and y"):
        model.distort(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="x"):
        model.distort("a", 1.0)


@pytest.mark.parametrize("model", [
    RadialDistortion(k1=-3e-9, k2=1e-16, k3=0.5e-23, p1=1e-7, p2=2e-7),
    RadialDistortion(k1=-0.1, scale=1024.0),
    PolynomialDistortion(3, 1024.0, np.linspace(-1, 1, 10), np.linspace(1, -1, 10)),
    PolynomialDistortion(2, 10.0, None, None, np.arange(6.0) / 10, np.ones(6) / 10,
                         primary="inverse"),
])
def test_serialisation_equality_pickle(model):
    assert pickle.loads(pickle.dumps(model)) == model
    d = json.loads(json.dumps(model.to_dict()))
    again = distortion_from_dict(d)
    assert again == model and type(again) is type(model)
    assert hash(again) == hash(model)
    assert type(model).__name__ in repr(model)
    assert model != RadialDistortion(k1=1.0)
    assert model != "something"


def test_radial_repr_evaluates():
    d = RadialDistortion(k1=-3e-9, p2=0.1, scale=4.0)
    assert eval(repr(d), {"RadialDistortion": RadialDistortion}) == d


# --------------------------------------------------------------------------- validation


def test_polynomial_bad_arguments():
    z6 = np.zeros(6)
    with pytest.raises(InvalidArgumentError, match="order"):
        PolynomialDistortion(7, 1.0, np.zeros(36), np.zeros(36))
    with pytest.raises(InvalidArgumentError, match="order"):
        PolynomialDistortion(0, 1.0, [0.0], [0.0])
    # one rule for whole numbers (skysolve._args): 2.0 is the order 2, 2.5 is no order
    assert PolynomialDistortion(2.0, 1.0, z6, z6) == PolynomialDistortion(2, 1.0, z6, z6)
    with pytest.raises(InvalidTypeError, match="order"):
        PolynomialDistortion(2.5, 1.0, z6, z6)
    with pytest.raises(InvalidArgumentError, match="scale"):
        PolynomialDistortion(2, 0.0, z6, z6)
    with pytest.raises(InvalidArgumentError, match="a_coeffs.*6"):
        PolynomialDistortion(2, 1.0, np.zeros(5), z6)
    with pytest.raises(InvalidArgumentError, match="b_coeffs"):
        PolynomialDistortion(2, 1.0, z6, np.r_[z6[:5], np.nan])
    with pytest.raises(InvalidArgumentError, match="ap_coeffs and bp_coeffs"):
        PolynomialDistortion(2, 1.0, z6, z6, z6, None)
    with pytest.raises(InvalidArgumentError, match="primary"):
        PolynomialDistortion(2, 1.0, z6, z6, primary="both")
    with pytest.raises(InvalidArgumentError, match="ap_coeffs"):
        PolynomialDistortion(2, 1.0, z6, z6, primary="inverse")
    with pytest.raises(InvalidArgumentError, match="a_coeffs"):
        PolynomialDistortion(2, 1.0, None, z6)
    with pytest.raises(InvalidArgumentError, match="points"):
        PolynomialDistortion(2, 1.0, z6, z6).fit_secondary(points=np.zeros((3, 2)))


def test_radial_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="k2"):
        RadialDistortion(0.0, np.inf)
    with pytest.raises(InvalidTypeError, match="p1"):
        RadialDistortion(p1="0.1")
    with pytest.raises(InvalidArgumentError, match="scale"):
        RadialDistortion(scale=-1.0)


def test_from_dict_rejects_bad_descriptions():
    with pytest.raises(InvalidArgumentError, match="unknown distortion type"):
        distortion_from_dict({"type": "fisheye"})
    with pytest.raises(InvalidArgumentError, match="lacks"):
        distortion_from_dict({"type": "polynomial", "order": 2})
    with pytest.raises(InvalidArgumentError, match="unknown"):
        distortion_from_dict({"type": "radial", "k9": 1.0})
    assert distortion_from_dict(None) is None


# --------------------------------------------------------------------------- radial centre


def test_radial_center_moves_the_distortion():
    """``center`` is the distortion centre relative to the optical centre: the formulas act
    on offsets from it (tetra3rs's meaning: k1 = 1e-7 maps 100 px right of it 0.1 px out)."""
    d = RadialDistortion(k1=1e-7, center=(100.0, 0.0))
    assert d.center == (100.0, 0.0)
    assert d.distort(100.0, 0.0) == (100.0, 0.0)
    assert d.distort(200.0, 0.0) == pytest.approx((200.1, 0.0))
    assert d.distort(0.0, 0.0) == pytest.approx((-0.1, 0.0))
    plain = RadialDistortion(k1=-6e-9, k2=1e-15, p1=2e-7, p2=-1e-7)
    moved = RadialDistortion(-6e-9, 1e-15, 0.0, 2e-7, -1e-7, (-350.0, 1200.0))
    x, y = image_offsets()
    mx, my = moved.distort(x, y)
    px, py = plain.distort(x + 350.0, y - 1200.0)
    np.testing.assert_allclose(mx, px - 350.0, atol=1e-9)
    np.testing.assert_allclose(my, py + 1200.0, atol=1e-9)
    ux, uy = moved.undistort(mx, my)
    np.testing.assert_allclose(ux, x, atol=1e-6)
    np.testing.assert_allclose(uy, y, atol=1e-6)
    assert moved != plain and moved == RadialDistortion.from_dict(moved.to_dict())
    assert pickle.loads(pickle.dumps(moved)) == moved
    assert "center=(-350.0, 1200.0)" in repr(moved)
    assert eval(repr(moved), {"RadialDistortion": RadialDistortion}) == moved
    # a centred model keeps the description older releases read
    assert "center" not in plain.to_dict()
    assert RadialDistortion(1e-9, center=[3, 4]).center == (3.0, 4.0)


def test_radial_center_checks_and_old_pickles():
    from skysolve.camera.distortion import _radial_from_state

    for bad, exc in (((1.0,), InvalidArgumentError), ((1.0, np.nan), InvalidArgumentError),
                     ("ab", InvalidTypeError), (None, InvalidTypeError)):
        with pytest.raises(exc, match="center"):
            RadialDistortion(1e-9, center=bad)
    # a pickle written before ``center`` existed holds (coefficients, scale)
    assert _radial_from_state((1e-9, 0.0, 0.0, 0.0, 0.0), 2.0) == \
        RadialDistortion(1e-9, scale=2.0)
