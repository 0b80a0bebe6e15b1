"""Every public entry point refuses bad input with a documented error naming the argument.

Documented errors: ``InvalidArgumentError`` (a ``ValueError``), ``InvalidTypeError``
(a ``TypeError``), ``FileFormatError`` and ``FileNotFoundError``. A bare
``IndexError``/``ZeroDivisionError``/numpy error from deep inside is a defect,
and so is a silently accepted nonsense value.
"""

from __future__ import annotations

import datetime
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import skysolve as ss
from skysolve.errors import FileFormatError, InvalidArgumentError, InvalidTypeError
from skysolve.sky.aberration import aberrate

DOCUMENTED = (InvalidArgumentError, InvalidTypeError, FileFormatError, FileNotFoundError)
SHAPE = (1000, 1000)
BAD = (InvalidArgumentError, InvalidTypeError)
XY = np.random.default_rng(3).uniform(-400.0, 400.0, (12, 2))
# SKYSOLVE_FUZZ_EXAMPLES=N runs a deeper search than CI's default
EXAMPLES = int(os.environ.get("SKYSOLVE_FUZZ_EXAMPLES", "40"))
FAST = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def raises_naming(exc, word, fn):
    """``fn()`` raises ``exc`` and the message mentions ``word``."""
    with pytest.raises(exc) as info:
        fn()
    assert word.lower() in str(info.value).lower(), str(info.value)


# ---------------------------------------------------------------------------- solving

# Error classes follow the one rule of skysolve._args: a value of the wrong type (a string,
# None where a value is required, 2.5 for a whole number) is an InvalidTypeError; a value of
# the right type out of range (negative, NaN, too large) an InvalidArgumentError.
SOLVE_BAD = [
    # (kwargs overriding the good call, expected exception, word in the message)
    (dict(centroids=None), InvalidTypeError, "centroids"),
    (dict(centroids="abc"), InvalidTypeError, "centroids"),
    (dict(centroids=np.zeros((3, 3, 3))), InvalidArgumentError, "centroids"),
    (dict(centroids=np.zeros((5, 1))), InvalidArgumentError, "centroids"),
    (dict(centroids=np.zeros((5, 4))), InvalidArgumentError, "centroids"),
    (dict(centroids=np.zeros(5)), InvalidArgumentError, "centroids"),
    (dict(centroids=np.full((5, 2), np.nan)), InvalidArgumentError, "centroids"),
    (dict(centroids=np.c_[XY[:, 0], np.full(12, np.inf)]), InvalidArgumentError, "centroids"),
    (dict(centroids=XY.astype(complex)), InvalidTypeError, "centroids"),
    (dict(centroids=[[1.0, 2.0], [3.0]]), InvalidTypeError, "centroids"),
    (dict(centroids=[ss.Centroid(1.0, 2.0), "x"]), InvalidTypeError, "centroids"),
    (dict(centroids=XY * 100), InvalidArgumentError, "centroids"),  # far outside the image
    (dict(image_shape=(100, 100)), InvalidArgumentError, "image"),  # same, via the shape
    (dict(image_shape=None), InvalidArgumentError, "image"),
    (dict(image_shape=(-5, 1000)), InvalidArgumentError, "image_shape"),
    (dict(image_shape=(0, 0)), InvalidArgumentError, "image_shape"),
    (dict(image_shape=(1000,)), InvalidArgumentError, "image_shape"),
    (dict(image_shape=(1000.5, 1000)), InvalidTypeError, "image_shape"),
    (dict(image_shape=(np.nan, 1000)), InvalidArgumentError, "image_shape"),
    (dict(image_shape="ab"), InvalidTypeError, "image_shape"),
    (dict(image_shape=5), InvalidTypeError, "image_shape"),
    (dict(image_shape=None, image_width=-1), InvalidArgumentError, "image_width"),
    (dict(image_shape=None, image_width=1000.5), InvalidTypeError, "image_width"),
    (dict(image_shape=None, image_width="1000"), InvalidTypeError, "image_width"),
    (dict(image_shape=None, image_width=np.nan), InvalidArgumentError, "image_width"),
    (dict(image_shape=None, image_width=np.inf), InvalidArgumentError, "image_width"),
    (dict(image_shape=None, image_width=1000, image_height=np.nan), InvalidArgumentError,
     "image_height"),
    (dict(image_width=999), InvalidArgumentError, "image_width"),
    (dict(fov_estimate_deg=-5), InvalidArgumentError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=0), InvalidArgumentError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=np.nan), InvalidArgumentError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=np.inf), InvalidArgumentError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=200), InvalidArgumentError, "fov_estimate_deg"),
    (dict(fov_estimate_deg="10"), InvalidTypeError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=np.array([1.0, 2.0])), InvalidTypeError, "fov_estimate_deg"),
    (dict(fov_estimate_deg=10, fov_estimate_rad=0.2), InvalidArgumentError, "fov_estimate"),
    (dict(fov_estimate_rad=-0.1), InvalidArgumentError, "fov_estimate_rad"),
    (dict(fov_estimate_rad=4.0), InvalidArgumentError, "fov_estimate_rad"),
    (dict(fov_max_error_deg=-1), InvalidArgumentError, "fov_max_error_deg"),
    (dict(fov_max_error_deg=np.nan), InvalidArgumentError, "fov_max_error_deg"),
    (dict(fov_max_error_deg=1, fov_max_error_rad=0.01), InvalidArgumentError, "fov_max_error"),
    (dict(match_radius=1), InvalidArgumentError, "match_radius"),
    (dict(match_radius=1.5), InvalidArgumentError, "match_radius"),
    (dict(match_radius=0), InvalidArgumentError, "match_radius"),
    (dict(match_radius=-0.1), InvalidArgumentError, "match_radius"),
    (dict(match_radius=None), InvalidTypeError, "match_radius"),
    (dict(match_radius="0.01"), InvalidTypeError, "match_radius"),
    (dict(match_threshold=0), InvalidArgumentError, "match_threshold"),
    (dict(match_threshold=1), InvalidArgumentError, "match_threshold"),
    (dict(match_threshold=np.nan), InvalidArgumentError, "match_threshold"),
    (dict(match_threshold=None), InvalidTypeError, "match_threshold"),
    (dict(solve_timeout_ms=-1), InvalidArgumentError, "solve_timeout_ms"),
    (dict(solve_timeout_ms=np.nan), InvalidArgumentError, "solve_timeout_ms"),
    (dict(solve_timeout_ms="1"), InvalidTypeError, "solve_timeout_ms"),
    (dict(match_max_error=0), InvalidArgumentError, "match_max_error"),
    (dict(match_max_error=-1), InvalidArgumentError, "match_max_error"),
    (dict(match_max_error=0.5), InvalidArgumentError, "match_max_error"),
    (dict(refine_iterations=-1), InvalidArgumentError, "refine_iterations"),
    (dict(refine_iterations=1.5), InvalidTypeError, "refine_iterations"),
    (dict(refine_iterations=True), InvalidTypeError, "refine_iterations"),
    (dict(camera_model="x"), InvalidTypeError, "camera_model"),
    (dict(camera_model=ss.CameraModel.from_fov(15, 800, 800)), InvalidArgumentError, "camera"),
    (dict(observer_velocity_km_s=[1, 2]), InvalidArgumentError, "observer_velocity_km_s"),
    (dict(observer_velocity_km_s=[1, 2, np.nan]), InvalidArgumentError,
     "observer_velocity_km_s"),
    (dict(observer_velocity_km_s="abc"), InvalidTypeError, "observer_velocity_km_s"),
    (dict(attitude_hint=[1, 2]), InvalidArgumentError, "attitude_hint"),
    (dict(attitude_hint=[0, 0, 0, 0]), InvalidArgumentError, "attitude_hint"),
    (dict(attitude_hint=[np.nan, 0, 0, 0]), InvalidArgumentError, "attitude_hint"),
    (dict(attitude_hint=np.ones((3, 3))), InvalidArgumentError, "attitude_hint"),
    (dict(attitude_hint=np.diag([1.0, 1.0, -1.0])), InvalidArgumentError, "attitude_hint"),
    (dict(attitude_hint="abc"), InvalidTypeError, "attitude_hint"),
    (dict(attitude_hint=[1, 0, 0, 0], hint_uncertainty_deg=-1), InvalidArgumentError,
     "hint_uncertainty_deg"),
    (dict(attitude_hint=[1, 0, 0, 0], hint_uncertainty_deg=np.nan), InvalidArgumentError,
     "hint_uncertainty_deg"),
    (dict(hint_uncertainty_deg=1, hint_uncertainty_rad=0.1), InvalidArgumentError,
     "hint_uncertainty"),
    (dict(strict_hint="yes"), InvalidTypeError, "strict_hint"),
]


@pytest.mark.parametrize("changes, exc, word", SOLVE_BAD,
                         ids=[f"{i}-{next(iter(c))}" for i, (c, _, _) in enumerate(SOLVE_BAD)])
def test_solve_from_centroids_refuses_bad_arguments(tiny_db, changes, exc, word):
    kwargs = dict(centroids=XY, image_shape=SHAPE, solve_timeout_ms=200)
    kwargs.update(changes)
    raises_naming(exc, word, lambda: tiny_db.solve_from_centroids(**kwargs))


def test_solve_from_centroids_honest_failures(tiny_db):
    # empty and tiny inputs are not errors: they are failures with a status
    for xy in (np.zeros((0, 2)), [], XY[:3]):
        res = tiny_db.solve_from_centroids(xy, image_shape=SHAPE)
        assert not res and res.status == "too_few"
    # a field of view below half the database's smallest is a configuration failure
    res = tiny_db.solve_from_centroids(XY, image_shape=SHAPE, fov_estimate_deg=5,
                                       fov_max_error_deg=1)
    assert not res and res.status == "invalid_config"
    # a far wider one is searched (parts of it hold the database's patterns), and its
    # failure names the database's range
    res = tiny_db.solve_from_centroids(XY, image_shape=SHAPE, fov_estimate_deg=120,
                                       fov_max_error_deg=1)
    assert not res and "outside the database's 20-20 deg" in res.message
    # centroids slightly beyond the edge (distortion, rounding) are still accepted
    edge = np.array([[-520.0, -510.0], [505.0, 300.0], [0.0, 0.0], [100.0, -200.0]])
    assert tiny_db.solve_from_centroids(edge, image_shape=SHAPE).status in (
        "no_match", "too_few")


@FAST
@given(n=st.integers(0, 14),
       data=st.data(),
       fov=st.one_of(st.none(), st.floats(0.5, 90.0)),
       match_radius=st.floats(1e-4, 0.2),
       match_threshold=st.floats(1e-12, 0.5),
       with_brightness=st.booleans(),
       as_list=st.booleans())
def test_solve_from_centroids_random_inputs(tiny_db, n, data, fov, match_radius,
                                            match_threshold, with_brightness, as_list):
    """Random centroid sets and parameters: a result or an honest failure, never a crash."""
    w = data.draw(st.integers(16, 4096), label="width")
    h = data.draw(st.integers(16, 4096), label="height")
    xs = data.draw(hnp.arrays(np.float64, n, elements=st.floats(-w / 2, w / 2)), label="x")
    ys = data.draw(hnp.arrays(np.float64, n, elements=st.floats(-h / 2, h / 2)), label="y")
    cols = [xs, ys]
    if with_brightness:
        cols.append(data.draw(hnp.arrays(np.float64, n, elements=st.floats(0, 1e6)), label="b"))
    arr = np.stack(cols, axis=1) if n else np.zeros((0, len(cols)))
    cents = [ss.Centroid(*row) for row in arr] if as_list else arr
    res = tiny_db.solve_from_centroids(cents, image_shape=(h, w), fov_estimate_deg=fov,
                                       match_radius=match_radius,
                                       match_threshold=match_threshold, solve_timeout_ms=100)
    assert res.status in ("match_found", "no_match", "timeout", "too_few", "invalid_config")
    assert math.isfinite(res.solve_time_ms) and res.solve_time_ms >= 0
    if res:
        assert 0 <= res.ra_deg < 360 and -90 <= res.dec_deg <= 90
        assert res.probability <= match_threshold
        assert len(res.matched_centroids) == res.num_matches


@FAST
@given(arr=hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_,
                           np.complex128, np.float16]),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6)))
def test_solve_from_centroids_random_arrays(tiny_db, arr):
    """Random dtypes/shapes as the centroid array: accepted only as (N, 2)/(N, 3) reals."""
    try:
        res = tiny_db.solve_from_centroids(arr, image_shape=(64, 64), solve_timeout_ms=50)
    except DOCUMENTED as exc:
        assert "centroids" in str(exc)
        return
    assert arr.ndim == 2 and arr.shape[1] in (2, 3) and arr.dtype.kind in "biuf"
    assert res.status in ("match_found", "no_match", "timeout", "too_few")


# ---------------------------------------------------------------------------- database


@pytest.mark.parametrize("fn, exc, word", [
    (lambda db: db.get_star("a"), InvalidTypeError, "index"),
    (lambda db: db.get_star(1.5), InvalidTypeError, "index"),
    (lambda db: db.get_star(None), InvalidTypeError, "index"),
    (lambda db: db.get_star(10**9), IndexError, "index"),
    (lambda db: db.get_star(-10**9), IndexError, "index"),
    (lambda db: db.get_star_by_id("a"), InvalidTypeError, "catalog_id"),
    (lambda db: db.get_star_by_id(1.5), InvalidTypeError, "catalog_id"),
    (lambda db: db.get_star_by_id(None), InvalidTypeError, "catalog_id"),
    (lambda db: db.cone_search("a", 0, 1), BAD, "ra_deg"),
    (lambda db: db.cone_search(0, "a", 1), BAD, "dec_deg"),
    (lambda db: db.cone_search(0, 0, "a"), BAD, "radius_deg"),
    (lambda db: db.cone_search(np.nan, 0, 1), InvalidArgumentError, "ra_deg"),
    (lambda db: db.cone_search(np.inf, 0, 1), InvalidArgumentError, "ra_deg"),
    (lambda db: db.cone_search(0, np.nan, 1), InvalidArgumentError, "dec_deg"),
    (lambda db: db.cone_search(0, 100, 1), InvalidArgumentError, "dec_deg"),
    (lambda db: db.cone_search(0, 0, np.nan), InvalidArgumentError, "radius_deg"),
    (lambda db: db.cone_search(0, 0, -1), InvalidArgumentError, "radius_deg"),
    (lambda db: db.cone_search([1, 2], 0, 1), BAD, "ra_deg"),
    (lambda db: db.save_to_file(None), InvalidTypeError, "path"),
    (lambda db: db.save_to_file(5), InvalidTypeError, "path"),
    (lambda db: db.save_to_file("/tmp"), IsADirectoryError, "directory"),
    (lambda db: ss.SolverDatabase.load_from_file(None), InvalidTypeError, "path"),
    (lambda db: ss.SolverDatabase.load_from_file("/nonexistent/robust.db"), FileNotFoundError,
     "robust.db"),
    (lambda db: ss.SolverDatabase.load_from_file("/tmp"), IsADirectoryError, "/tmp is a directory"),
])
def test_database_queries_and_files_refuse_bad_arguments(tiny_db, fn, exc, word):
    raises_naming(exc, word, lambda: fn(tiny_db))


def test_database_queries_answer_correctly(tiny_db, tiny_catalog):
    star = tiny_db.get_star(0)
    assert tiny_db.get_star_by_id(star.id) == star
    assert tiny_db.get_star_by_id(np.int64(star.id)) == star
    assert tiny_db.get_star_by_id(2**70) is None and tiny_db.get_star_by_id(-5) is None
    cone = tiny_db.cone_search(star.ra_deg, star.dec_deg, 5.0)
    assert cone[0] == star  # star 0 is the brightest of all
    mags = [s.magnitude for s in cone]
    assert mags == sorted(mags)
    assert tiny_db.cone_search(star.ra_deg, star.dec_deg, 0.0) in ([], [star])
    assert len(tiny_db.cone_search(0.0, 0.0, 180.0)) == tiny_db.num_stars


GEN_BAD = [
    ("max_fov_deg", -5, InvalidArgumentError), ("max_fov_deg", 0, InvalidArgumentError),
    ("max_fov_deg", np.nan, InvalidArgumentError), ("max_fov_deg", 200, InvalidArgumentError),
    ("max_fov_deg", "x", InvalidTypeError), ("min_fov_deg", 40, InvalidArgumentError),
    ("min_fov_deg", -1, InvalidArgumentError), ("min_fov_deg", np.nan, InvalidArgumentError),
    ("star_max_magnitude", np.nan, InvalidArgumentError),
    ("star_max_magnitude", "x", InvalidTypeError),
    ("star_max_magnitude", -30.0, InvalidArgumentError),
    ("pattern_max_error", 0, InvalidArgumentError),
    ("pattern_max_error", -1, InvalidArgumentError),
    ("pattern_max_error", 1, InvalidArgumentError),
    ("pattern_max_error", np.nan, InvalidArgumentError),
    ("lattice_field_oversampling", 0, InvalidArgumentError),
    ("lattice_field_oversampling", np.nan, InvalidArgumentError),
    ("patterns_per_lattice_field", 0, InvalidArgumentError),
    ("patterns_per_lattice_field", 1.5, InvalidTypeError),
    ("verification_stars_per_fov", -1, InvalidArgumentError),
    ("verification_stars_per_fov", 2.5, InvalidTypeError),
    ("multiscale_step", 1, InvalidArgumentError),
    ("multiscale_step", 0.5, InvalidArgumentError),
    ("epoch_proper_motion_year", np.nan, InvalidArgumentError),
    ("epoch_proper_motion_year", "x", InvalidTypeError),
]


@pytest.mark.parametrize("name, value, exc", GEN_BAD,
                         ids=[f"{n}={v!r}" for n, v, _ in GEN_BAD])
def test_generate_refuses_bad_arguments(tiny_catalog, name, value, exc):
    kwargs = dict(max_fov_deg=30.0, progress=False)
    kwargs[name] = value
    expect_word = "magnitude" if value == -30.0 else name
    raises_naming(exc, expect_word,
                  lambda: ss.SolverDatabase.generate_from_catalog(tiny_catalog, **kwargs))


def test_generate_refuses_bad_catalogs(tmp_path):
    gen = ss.SolverDatabase.generate_from_catalog
    raises_naming(InvalidTypeError, "catalog", lambda: gen(None))
    raises_naming(InvalidTypeError, "catalog", lambda: gen(5))
    with pytest.raises(FileNotFoundError):
        ss.SolverDatabase.generate_from_catalog(tmp_path / "missing.csv")
    empty = ss.Catalog(np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0))
    raises_naming(InvalidArgumentError, "catalog",
                  lambda: ss.SolverDatabase.generate_from_catalog(empty, progress=False))
    junk = tmp_path / "junk.dat"
    junk.write_bytes(np.random.default_rng(0).bytes(1000))
    for gen in (ss.SolverDatabase.generate_from_hipparcos, ss.SolverDatabase.generate_from_gaia):
        with pytest.raises((FileFormatError, FileNotFoundError)):
            gen(catalog_path=tmp_path / "missing.dat", progress=False)
        with pytest.raises(FileFormatError):
            gen(catalog_path=junk, progress=False)


# ---------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("image, exc", [
    (None, InvalidTypeError), ("abc", InvalidTypeError), (np.zeros(10), InvalidArgumentError),
    (np.zeros((4, 4, 4)), InvalidArgumentError), (np.zeros((0, 0)), InvalidArgumentError),
    (np.zeros((0, 5)), InvalidArgumentError), (np.zeros((32, 32), complex), InvalidTypeError),
    (np.zeros((4, 4), object), InvalidTypeError), (np.zeros((32, 32, 3)), InvalidArgumentError),
], ids=["None", "str", "1d", "3d", "0x0", "0x5", "complex", "object", "rgb"])
def test_extract_centroids_refuses_bad_images(image, exc):
    raises_naming(exc, "image", lambda: ss.extract_centroids(image))


@pytest.mark.parametrize("name, value", [
    ("sigma_threshold", -1), ("sigma_threshold", np.nan), ("sigma_threshold", "x"),
    ("min_pixels", 0), ("min_pixels", -1), ("min_pixels", 2.5), ("max_pixels", 0),
    ("max_pixels", 1), ("max_centroids", -1), ("max_centroids", 1.5),
    ("local_bg_block_size", -1), ("max_elongation", 0.5), ("max_elongation", np.nan),
])
def test_extract_centroids_refuses_bad_parameters(name, value):
    img = np.random.default_rng(0).normal(100, 5, (64, 64))
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
        ss.extract_centroids(img, **{name: value})
    assert name in str(info.value)


@pytest.mark.parametrize("image", [
    np.full((32, 32), np.nan), np.full((32, 32), np.inf), np.ones((32, 32)),
    np.full((32, 32), 1e308), np.where(np.eye(32) > 0, np.inf, 1.0), np.ma.masked_all((32, 32)),
    np.zeros((1, 1)), np.zeros((32, 32), np.uint8),
], ids=["nan", "inf", "flat", "huge", "inf-diagonal", "all-masked", "1x1", "zeros"])
def test_extract_centroids_degenerate_images_give_no_stars(image):
    with np.errstate(all="ignore"):
        res = ss.extract_centroids(image)
    assert len(res.centroids) == 0
    assert (res.image_height, res.image_width) == image.shape


#: A frame (found by the search below) whose brighter blob is a doubtful one: listed after
#: the star, as the doubtful ones are.
_DOUBTFUL_BRIGHTER = np.zeros((7, 22), np.uint16)
_DOUBTFUL_BRIGHTER[[0, 2, 3, 4, 5], [0, 0, 0, 2, 1]] = [33, 1, 1, 33, 33]


@FAST
@given(img=hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.uint16, np.int16, np.uint8]),
    shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=48)),
    sigma=st.floats(0.5, 50.0), min_pixels=st.integers(1, 6), bg=st.sampled_from([None, 4, 16]))
@example(img=_DOUBTFUL_BRIGHTER, sigma=1.0, min_pixels=1, bg=None)
def test_extract_centroids_random_images(img, sigma, min_pixels, bg):
    """Any pixels (NaN, inf, extremes) of the documented dtypes: finite centroids on the image."""
    with np.errstate(all="ignore"):
        res = ss.extract_centroids(img, sigma_threshold=sigma, min_pixels=min_pixels,
                                   local_bg_block_size=bg)
    h, w = img.shape
    assert (res.image_height, res.image_width) == (h, w)
    xy = res.as_array()
    if len(xy):
        assert np.all(np.isfinite(xy[:, :2]))
        assert np.all(np.abs(xy[:, 0]) <= w / 2) and np.all(np.abs(xy[:, 1]) <= h / 2)
        # brightest first, the doubtful ones after the others (each group brightest first)
        b = np.array([c.brightness for c in res.centroids])
        doubtful = np.asarray(res.flags) == "doubtful"
        assert not np.any(doubtful[:-1] & ~doubtful[1:])
        for group in (b[~doubtful], b[doubtful]):
            assert np.all(group[:-1] >= group[1:])


@FAST
@given(x=st.floats(allow_nan=True, allow_infinity=True), y=st.floats(-1e6, 1e6),
       b=st.one_of(st.none(), st.floats(0, 1e9)))
def test_centroid_values(tiny_db, x, y, b):
    c = ss.Centroid(x, y, b)
    if not math.isfinite(x):  # a placeholder Centroid may hold NaN; solving refuses it
        raises_naming(InvalidArgumentError, "centroids",
                      lambda: tiny_db.solve_from_centroids([c] * 4, image_shape=SHAPE))
        return
    d = c.with_offset(1.5, -2.0)
    assert (d.x, d.y) == (x + 1.5, y - 2.0)


# ---------------------------------------------------------------------------- camera models

CAM_BAD = [
    ((-1, 100, 100), {}, InvalidArgumentError, "focal_length_px"),
    ((np.nan, 100, 100), {}, InvalidArgumentError, "focal_length_px"),
    ((np.inf, 100, 100), {}, InvalidArgumentError, "focal_length_px"),
    (("a", 100, 100), {}, InvalidTypeError, "focal_length_px"),
    ((100, 0, 100), {}, InvalidArgumentError, "image_width"),
    ((100, 10.5, 100), {}, BAD, "image_width"),
    ((100, -5, 100), {}, InvalidArgumentError, "image_width"),
    ((100, np.nan, 100), {}, BAD, "image_width"),
    ((100, "a", 100), {}, InvalidTypeError, "image_width"),
    ((100, 100, 0), {}, InvalidArgumentError, "image_height"),
    ((100, 100, 100), {"crpix": [1]}, InvalidArgumentError, "crpix"),
    ((100, 100, 100), {"crpix": [np.nan, 0]}, InvalidArgumentError, "crpix"),
    ((100, 100, 100), {"crpix": "ab"}, InvalidTypeError, "crpix"),
    ((100, 100, 100), {"parity_flip": "yes"}, InvalidTypeError, "parity_flip"),
    ((100, 100, 100), {"distortion": "x"}, InvalidTypeError, "distortion"),
]


@pytest.mark.parametrize("args, kw, exc, word", CAM_BAD)
def test_camera_model_refuses_bad_arguments(args, kw, exc, word):
    raises_naming(exc, word, lambda: ss.CameraModel(*args, **kw))


@pytest.mark.parametrize("args", [(-1, 100, 100), (0, 100, 100), (np.nan, 100, 100),
                                  (180, 100, 100), ("x", 100, 100), (10, 0, 100)])
def test_camera_from_fov_refuses_bad_arguments(args):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        ss.CameraModel.from_fov(*args)


def test_camera_methods_refuse_bad_arguments(tmp_path):
    cam = ss.CameraModel.from_fov(10, 100, 80)
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        cam.pixel_to_tanplane("a", "b")
    with pytest.raises(InvalidArgumentError):
        cam.pixel_to_tanplane(np.zeros(3), np.zeros(4))
    with pytest.raises(InvalidArgumentError):
        cam.tanplane_to_pixel(np.zeros(3), np.zeros(4))
    raises_naming(InvalidTypeError, "path", lambda: cam.save_to_file(None))
    raises_naming(InvalidTypeError, "path", lambda: ss.CameraModel.load_from_file(None))
    with pytest.raises(FileNotFoundError):
        ss.CameraModel.load_from_file(tmp_path / "missing.json")
    with pytest.raises(IsADirectoryError):
        cam.save_to_file(tmp_path)


@pytest.mark.parametrize("kw", [{"k1": np.nan}, {"k1": "a"}, {"k2": np.inf}, {"p1": [1, 2]}])
def test_radial_distortion_refuses_bad_coefficients(kw):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
        ss.RadialDistortion(**kw)
    assert next(iter(kw)) in str(info.value)


def _poly(order=2, scale=100.0, n=None, **over):
    n = (order + 1) * (order + 2) // 2 if n is None else n
    c = dict(a_coeffs=np.zeros(n), b_coeffs=np.zeros(n), ap_coeffs=np.zeros(n),
             bp_coeffs=np.zeros(n))
    c.update(over)
    return ss.PolynomialDistortion(order, scale, **c)


@pytest.mark.parametrize("fn, word", [
    (lambda: _poly(7), "order"), (lambda: _poly(-1, n=1), "order"),
    (lambda: _poly(1.5, n=3), "order"), (lambda: _poly("a", n=3), "order"),
    (lambda: _poly(2, 0.0), "scale"), (lambda: _poly(2, np.nan), "scale"),
    (lambda: _poly(2, -1.0), "scale"), (lambda: _poly(2, 100.0, 4), "coeffs"),
    (lambda: _poly(a_coeffs=np.full(6, np.nan)), "a_coeffs"),
    (lambda: _poly(b_coeffs="abcdef"), "b_coeffs"),
    (lambda: _poly(ap_coeffs=np.zeros((2, 3))), "ap_coeffs"),
])
def test_polynomial_distortion_refuses_bad_arguments(fn, word):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
        fn()
    assert word in str(info.value)


def test_distortion_methods_refuse_mismatched_arrays():
    for d in (ss.RadialDistortion(k1=1e-8), _poly(2)):
        with pytest.raises(InvalidArgumentError):
            d.distort(np.zeros(3), np.zeros(4))
        with pytest.raises((InvalidArgumentError, InvalidTypeError)):
            d.undistort("a", "b")


@FAST
@given(k1=st.floats(-3e-8, 3e-8), k2=st.floats(-1e-14, 1e-14), p1=st.floats(-1e-6, 1e-6),
       p2=st.floats(-1e-6, 1e-6), seed=st.integers(0, 2**32 - 1))
def test_radial_distortion_round_trip(k1, k2, p1, p2, seed):
    """undistort(distort(p)) == p to 1e-3 px over a 1000x1000 image (mild distortion)."""
    d = ss.RadialDistortion(k1=k1, k2=k2, p1=p1, p2=p2)
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(-500, 500, (2, 200))
    u, v = d.undistort(*d.distort(x, y))
    assert np.max(np.hypot(u - x, v - y)) < 1e-3
    assert d == ss.RadialDistortion.from_dict(d.to_dict())


@FAST
@given(order=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), amp=st.floats(0.0, 2e-3))
def test_polynomial_distortion_round_trip(order, seed, amp):
    n = (order + 1) * (order + 2) // 2
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-amp, amp, (2, n))
    a[:3] = b[:3] = 0.0  # no constant/linear terms: they belong to the camera model
    d = ss.PolynomialDistortion.from_forward(order, 500.0, a, b, image_width=1000,
                                             image_height=1000)
    x, y = rng.uniform(-480, 480, (2, 200))
    u, v = d.undistort(*d.distort(x, y))
    assert np.max(np.hypot(u - x, v - y)) < 1e-3
    assert d == ss.PolynomialDistortion.from_dict(d.to_dict())


@FAST
@given(f=st.floats(50.0, 1e5), w=st.integers(1, 10000), h=st.integers(1, 10000),
       cx=st.floats(-100, 100), cy=st.floats(-100, 100), parity=st.booleans(),
       k1=st.floats(-1e-8, 1e-8), kind=st.sampled_from(["none", "radial", "poly"]))
def test_camera_model_save_load_round_trip(tmp_path_factory, f, w, h, cx, cy, parity, k1, kind):
    dist = {"none": None, "radial": ss.RadialDistortion(k1=k1),
            "poly": _poly(2, 300.0, a_coeffs=np.r_[0, 0, 0, k1 * 1e3, 0, -k1 * 1e3])}[kind]
    cam = ss.CameraModel(f, w, h, crpix=(cx, cy), parity_flip=parity, distortion=dist)
    path = tmp_path_factory.mktemp("cam") / "cam.json"
    cam.save_to_file(path)
    back = ss.CameraModel.load_from_file(path)
    assert back == cam
    assert back.focal_length_px == f and tuple(back.crpix) == (cx, cy)


# ---------------------------------------------------------------------------- other helpers


@pytest.mark.parametrize("value, exc", [
    (None, InvalidTypeError), ("abc", InvalidArgumentError), ("2020-13-45", InvalidArgumentError),
    (np.nan, InvalidArgumentError), ([1, 2], InvalidTypeError),
])
def test_earth_barycentric_velocity_refuses_bad_times(value, exc):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
        ss.earth_barycentric_velocity(value)
    assert str(info.value).startswith("dt ")


def test_earth_barycentric_velocity_accepts_dates():
    # a bare date is refused as ambiguous by up to a day
    raises_naming(InvalidTypeError, "dt must be a datetime.datetime",
                  lambda: ss.earth_barycentric_velocity(datetime.date(2020, 1, 1)))
    v = ss.earth_barycentric_velocity(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    assert v.shape == (3,) and 29.0 < np.linalg.norm(v) < 31.0


@pytest.mark.parametrize("vectors, velocity, word", [
    ([1, 0, 0], [1, 2], "velocity"), ([1, 0, 0], [np.nan, 0, 0], "velocity"),
    ([1, 0, 0], [3e5, 0, 0], "velocity"), ("a", [0, 0, 0], "vectors"),
    ([1, 0], [0, 0, 0], "vectors"), ([np.nan, 0, 0], [0, 0, 0], "vectors"),
    ([1, 0, 0], "abc", "velocity"), (np.zeros(3), [0, 0, 0], "vectors"),
])
def test_aberrate_refuses_bad_arguments(vectors, velocity, word):
    with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
        aberrate(vectors, velocity)
    assert word in str(info.value)


def test_wcs_conversions_refuse_bad_arguments():
    from astropy.wcs import WCS

    cam = ss.CameraModel.from_fov(10, 100, 80)
    for rot, exc in ((np.ones((3, 3)), InvalidArgumentError), ("abc", InvalidTypeError),
                     (np.full((3, 3), np.nan), InvalidArgumentError),
                     (np.eye(2), InvalidArgumentError)):
        raises_naming(exc, "rotation", lambda r=rot: ss.camera_to_wcs(cam, r))
    with pytest.raises(InvalidTypeError):
        ss.camera_to_wcs("x", np.eye(3))
    for bad in ("x", None, {"a": 1}):
        with pytest.raises((InvalidTypeError, InvalidArgumentError)):
            ss.wcs_to_camera(bad)
    w = WCS(naxis=2)
    with pytest.raises(InvalidArgumentError):
        ss.wcs_to_camera(w, 100, 100)  # no celestial axes
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cd = np.zeros((2, 2))
    raises_naming(InvalidArgumentError, "wcs", lambda: ss.wcs_to_camera(w, 100, 100))
    w.wcs.cd = np.eye(2) * 0.01
    with pytest.raises(InvalidArgumentError):
        ss.wcs_to_camera(w, -1, 100)


def test_read_image_refuses_bad_sources(tmp_path):
    raises_naming(InvalidTypeError, "source", lambda: ss.read_image(None))
    raises_naming(BAD, "source", lambda: ss.read_image(5))
    with pytest.raises(FileNotFoundError):
        ss.read_image(tmp_path / "missing.fits")
    with pytest.raises(IsADirectoryError):
        ss.read_image(tmp_path)
    for name in ("empty.fits", "empty.png", "empty.tif", "empty.jpg"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(FileFormatError):
            ss.read_image(tmp_path / name)


def test_simulator_refuses_bad_arguments(tiny_catalog):
    cam = ss.CameraModel.from_fov(10, 200, 200)
    R = np.eye(3)
    for kw, word in ((dict(drop_fraction=1.5), "drop_fraction"),
                     (dict(centroid_noise_px=-1), "centroid_noise_px"),
                     (dict(num_false_stars=-1), "num_false_stars"),
                     (dict(num_stars=2.5), "num_stars"), (dict(epoch_year=np.nan), "epoch_year")):
        with pytest.raises((InvalidArgumentError, InvalidTypeError)) as info:
            ss.simulate_centroids(tiny_catalog, cam, R, **kw)
        assert word in str(info.value)
    raises_naming(InvalidArgumentError, "attitude",
                  lambda: ss.simulate_centroids(tiny_catalog, cam, np.ones((3, 3))))
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        ss.random_attitudes(-1)
    with pytest.raises((InvalidArgumentError, InvalidTypeError)):
        ss.simulate_centroids("catalog", cam, R)


# ---------------------------------------------------------------------------- calibration


@pytest.fixture(scope="module")
def tiny_solves(tiny_db, tiny_catalog):
    cam = ss.CameraModel.from_fov(20.0, 1024, 1024)
    results, cents = [], []
    for R in ss.random_attitudes(40, 1):
        sim = ss.simulate_centroids(tiny_catalog, cam, R, num_stars=30, centroid_noise_px=0.2,
                                    seed=2)
        res = tiny_db.solve_from_centroids(sim.centroids, image_shape=(1024, 1024),
                                           fov_estimate_deg=20.0)
        if res:
            results.append(res)
            cents.append(sim.centroids)
        if len(results) == 3:
            return results, cents
    pytest.fail("the tiny database solved fewer than 3 of 40 frames")


CAL_BAD = [
    (dict(order=7), "order"), (dict(order=0), "order"), (dict(order=-1), "order"),
    (dict(order=2.5), "order"), (dict(model="x"), "model"), (dict(model=None), "model"),
    (dict(max_iterations=0), "max_iterations"), (dict(max_iterations=-1), "max_iterations"),
    (dict(sigma_clip=0), "sigma_clip"), (dict(sigma_clip=np.nan), "sigma_clip"),
    (dict(convergence_threshold_px=-1), "convergence_threshold_px"),
    (dict(image_shape=(100, 100)), "image"), (dict(image_shape=(np.nan, 1024)), "image_shape"),
    (dict(image_shape=None, image_width=1024.5, image_height=1024), "image_width"),
]


@pytest.mark.parametrize("changes, word", CAL_BAD, ids=[str(c) for c, _ in CAL_BAD])
def test_calibrate_camera_refuses_bad_arguments(tiny_db, tiny_solves, changes, word):
    results, cents = tiny_solves
    kwargs = dict(image_shape=(1024, 1024), order=2)
    kwargs.update(changes)
    with pytest.raises(BAD) as info:
        tiny_db.calibrate_camera(results, cents, **kwargs)
    assert word in str(info.value)


def test_calibrate_camera_refuses_bad_inputs(tiny_db, tiny_solves):
    results, cents = tiny_solves
    cal = lambda r, c: tiny_db.calibrate_camera(r, c, image_shape=(1024, 1024), order=2)  # noqa: E731
    for r, c in ((results, cents[:2]), ([], []), ([None, None], cents[:2]), ("abc", cents),
                 (None, cents), (results, None), ([1, 2, 3], cents),
                 (results, [np.full((30, 3), np.nan)] * 3), (results, [c * 100 for c in cents]),
                 (results, [np.zeros(5)] * 3), (results, [c[:2] for c in cents])):
        with pytest.raises(BAD):
            cal(r, c)
    good = cal(results, cents)
    assert good.rmse_after_px <= good.rmse_before_px + 1e-9
