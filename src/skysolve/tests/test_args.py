"""One set of argument rules (skysolve._args), and the options objects built on it."""

from __future__ import annotations

import fractions
import inspect
import math
import pydoc
from collections import deque
from pathlib import Path

import numpy as np
import pytest

import skysolve
from skysolve import _args
from skysolve.errors import InvalidArgumentError, InvalidTypeError

T, A = InvalidTypeError, InvalidArgumentError

# (check, keyword arguments, value, expected result or the error class it raises)
TABLE = [
    # numbers
    (_args.number, {}, 5, 5.0), (_args.number, {}, 2.5, 2.5), (_args.number, {}, -1, -1.0),
    (_args.number, {}, np.float32(0.5), 0.5), (_args.number, {}, np.int64(3), 3.0),
    (_args.number, {}, np.array(4.0), 4.0), (_args.number, {}, fractions.Fraction(1, 4), 0.25),
    (_args.number, {}, "5", T), (_args.number, {}, True, T), (_args.number, {}, None, T),
    (_args.number, {}, [1.0], T), (_args.number, {}, np.array([1.0, 2.0]), T),
    (_args.number, {}, math.nan, A), (_args.number, {}, math.inf, A),
    (_args.number, {"allow_inf": True}, math.inf, math.inf),
    (_args.number, {"allow_inf": True}, math.nan, A),
    (_args.number, {"allow_none": True}, None, None),
    (_args.number, {"minimum": 1, "maximum": 3}, 3, 3.0),
    (_args.number, {"minimum": 1, "maximum": 3, "open_max": True}, 3, A),
    (_args.number, {"minimum": 1, "open_min": True}, 1, A),
    (_args.number, {"minimum": 1}, 0.999, A),
    # positive, non-negative
    (_args.positive, {}, 1e-9, 1e-9), (_args.positive, {}, 0, A), (_args.positive, {}, -2, A),
    (_args.positive, {"maximum": 180, "open_max": True}, 180, A),
    (_args.nonnegative, {}, 0, 0.0), (_args.nonnegative, {}, -1e-9, A),
    # fractions
    (_args.fraction, {}, 0, 0.0), (_args.fraction, {}, 1, 1.0), (_args.fraction, {}, 1.01, A),
    (_args.fraction, {"open_min": True, "open_max": True}, 0, A),
    (_args.fraction, {"open_min": True, "open_max": True}, 1, A),
    (_args.fraction, {"open_min": True, "open_max": True}, 0.5, 0.5),
    # counts and sizes: whole numbers, 5.0 is 5, 5.5 is no count
    (_args.count, {}, 5, 5), (_args.count, {}, 5.0, 5), (_args.count, {}, np.int32(7), 7),
    (_args.count, {}, np.float64(2.0), 2), (_args.count, {}, 0, 0), (_args.count, {}, -1, A),
    (_args.count, {}, 5.5, T), (_args.count, {}, "5", T), (_args.count, {}, True, T),
    (_args.count, {}, None, T), (_args.count, {}, math.nan, A), (_args.count, {}, math.inf, A),
    (_args.count, {"minimum": 1, "maximum": 6}, 7, A),
    (_args.count, {"allow_none": True}, None, None),
    (_args.size, {}, 1024, 1024), (_args.size, {}, 1024.0, 1024), (_args.size, {}, 0, A),
    (_args.size, {}, 10.5, T), (_args.size, {}, "1024", T),
    # flags and choices
    (_args.flag, {}, True, True), (_args.flag, {}, np.bool_(False), False),
    (_args.flag, {}, 1, T), (_args.flag, {}, "yes", T), (_args.flag, {}, None, T),
    (_args.choice, {"choices": ("polynomial", "radial")}, "Radial", "radial"),
    (_args.choice, {"choices": ("polynomial", "radial")}, "spline", A),
    (_args.choice, {"choices": ("polynomial", "radial")}, None, T),
    # paths
    (_args.path, {}, "a/b", Path("a/b")), (_args.path, {}, Path("x"), Path("x")),
    (_args.path, {}, 5, T), (_args.path, {}, None, T),
]


@pytest.mark.parametrize("check, kw, value, expected", TABLE,
                         ids=[f"{c.__name__}-{v!r}-{k}" for c, k, v, _ in TABLE])
def test_the_rules(check, kw, value, expected):
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected, match="the_arg"):
            check(value, "the_arg", **kw)
    else:
        got = check(value, "the_arg", **kw)
        assert got == expected and type(got) is type(expected)


def test_vectors():
    np.testing.assert_array_equal(_args.vector([1, 2, 3], "v", 3), [1.0, 2.0, 3.0])
    assert _args.vector(None, "v", 3, allow_none=True) is None
    for bad, exc in (([1, 2], A), ([1, 2, np.nan], A), ("abc", T), (None, T), ([[1, 2, 3]], A),
                     ([1, "a", 3], T)):
        with pytest.raises(exc, match="v"):
            _args.vector(bad, "v", 3)


def test_image_size():
    assert _args.image_size(None, None, (768, 1024)) == (1024, 768)
    assert _args.image_size(1024, None, None) == (1024, 1024)
    assert _args.image_size(1024.0, 768, (768, 1024)) == (1024, 768)
    cam = skysolve.CameraModel.from_fov(10, 640, 480)
    assert _args.image_size(None, None, None, [cam]) == (640, 480)
    for args, exc, word in (((None, None, None), A, "unknown"), ((None, None, (5,)), A, "shape"),
                            ((None, None, "ab"), T, "image_shape"),
                            ((None, None, (768.5, 1024)), T, "height"),
                            ((1000, None, (768, 1024)), A, "disagrees"),
                            ((None, None, (0, 1024)), A, "height")):
        with pytest.raises(exc, match=word):
            _args.image_size(*args)
    with pytest.raises(A, match="camera"):
        _args.image_size(1024, None, None, [cam])


def test_every_refusal_is_also_a_builtin_error():
    with pytest.raises(TypeError):
        _args.count(2.5, "n")
    with pytest.raises(ValueError):
        _args.count(-1, "n")


# ------------------------------------------------------------------------------------
# Options objects: one definition gives the checks, the signature and the documentation


@pytest.mark.parametrize("fn, options_class, leading", [
    (skysolve.SolverDatabase.solve_from_centroids, skysolve.SolveOptions, ["self", "centroids"]),
    (skysolve.SolverDatabase.calibrate_camera, skysolve.CalibrationOptions,
     ["self", "solve_results", "centroids"]),
    (skysolve.extract_centroids, skysolve.ExtractionOptions, ["image"]),
    (skysolve.render_starfield, skysolve.StarfieldOptions,
     ["catalog", "camera", "attitude"]),
])
def test_public_functions_show_every_option(fn, options_class, leading):
    sig = inspect.signature(fn)
    names = list(sig.parameters)
    assert names == [*leading, *options_class.names(), "options"]
    defaults = options_class()
    for name in options_class.names():
        default = sig.parameters[name].default
        value = getattr(defaults, name)
        assert default == value or (default is not None and np.all(default == value)) \
            or name == "psf", name
    text = pydoc.render_doc(fn)
    for name in options_class.names():
        assert f"{name} : " in text, name  # a numpydoc entry per parameter in help()


def test_an_options_object_may_take_the_first_fields_place():
    # render_starfield(catalog, camera, attitude, StarfieldOptions(...)) read the options
    # as the first field (wcs) and answered "give either wcs, or camera and attitude"
    cam = skysolve.CameraModel.from_fov(10.0, 64, 48)
    opts = skysolve.StarfieldOptions(psf=1.5, seed=3, background_e=50.0)
    cat = skysolve.load_hipparcos()
    img, _ = skysolve.render_starfield(cat, cam, np.eye(3), opts)
    ref, _ = skysolve.render_starfield(cat, cam, np.eye(3), options=opts)
    assert np.array_equal(img, ref)
    assert np.array_equal(skysolve.render_starfield(cat, cam, np.eye(3), opts, seed=4)[0],
                          skysolve.render_starfield(cat, cam, np.eye(3), psf=1.5, seed=4,
                                                    background_e=50.0)[0])
    ex = skysolve.ExtractionOptions(sigma_threshold=8.0)
    assert skysolve.extract_centroids(img, ex).threshold == \
        skysolve.extract_centroids(img, sigma_threshold=8.0).threshold
    with pytest.raises(TypeError, match="options"):
        skysolve.extract_centroids(img, ex, options=ex)
    with pytest.raises(InvalidTypeError, match="sigma_threshold"):  # another class: a value
        skysolve.extract_centroids(img, opts)


def test_solve_options_are_checked_once_and_reused(small_db):
    opts = skysolve.SolveOptions(fov_estimate_deg=15, image_shape=(768, 1024.0))
    assert opts.fov_estimate_deg == 15.0 and opts.image_shape == (768, 1024)
    assert opts.fov_estimate == pytest.approx(math.radians(15))
    assert opts.replace(match_radius=0.02).match_radius == 0.02
    with pytest.raises(InvalidTypeError, match="unexpected keyword argument 'match_raduis'"):
        opts.replace(match_raduis=0.02)
    with pytest.raises(InvalidArgumentError, match="fov_estimate_deg or fov_estimate_rad"):
        skysolve.SolveOptions(fov_estimate_deg=10, fov_estimate_rad=0.2)
    rng = np.random.default_rng(0)
    xy = rng.uniform(-300, 300, (10, 2))
    a = small_db.solve_from_centroids(xy, options=opts)
    b = small_db.solve_from_centroids(xy, 15, image_shape=(768, 1024))  # positional, as tetra3rs
    assert a.status == b.status
    with pytest.raises(TypeError, match="multiple values for argument 'fov_estimate_deg'"):
        small_db.solve_from_centroids(xy, 15, fov_estimate_deg=15, image_shape=(768, 1024))
    with pytest.raises(InvalidTypeError, match="options must be a SolveOptions"):
        small_db.solve_from_centroids(xy, options={"fov_estimate_deg": 15})
    with pytest.raises(TypeError, match="missing required argument 'centroids'"):
        small_db.solve_from_centroids()


def test_a_call_with_the_same_plain_arguments_reuses_its_checked_options(monkeypatch):
    from skysolve import _options

    made = []
    real = _options._options_of

    def spy(cls, kwargs):
        opts = real(cls, kwargs)
        made.append(opts)
        return opts

    monkeypatch.setattr(_options, "_options_of", spy)
    img = np.zeros((40, 60))
    for _ in range(2):
        skysolve.extract_centroids(img, sigma_threshold=4.0, local_bg_block_size=32)
    assert made[0] is made[1]
    # equal values of other types are checked on their own: True compares equal to 1,
    # but a bool is no count
    skysolve.extract_centroids(img, min_pixels=1)
    with pytest.raises(InvalidTypeError, match="min_pixels"):
        skysolve.extract_centroids(img, min_pixels=True)
    # 2.0 is taken as the count 2, in an options object of its own
    made.clear()
    skysolve.extract_centroids(img, min_pixels=2.0)
    skysolve.extract_centroids(img, min_pixels=2)
    assert made[0] is not made[1] and made[0] == made[1]
    # arguments that are not plain values are checked afresh every call
    made.clear()
    for _ in range(2):
        skysolve.extract_centroids(img, max_elongation=np.float64(3.0))
    assert made[0] is not made[1] and made[0] == made[1]


def test_a_full_options_memo_drops_its_oldest_entry_only(monkeypatch):
    # a loop whose FOV estimate changes every call adds an options object every call: a
    # full memo drops the oldest, not every one (freeing all at once was a periodic spike)
    from skysolve import _options

    monkeypatch.setattr(_options, "_BUILT", {})
    monkeypatch.setattr(_options, "_BUILT_ORDER", deque())
    size = _options._BUILT_MAX

    def make(i):
        return _options._options_of(skysolve.SolveOptions, {"fov_estimate_deg": 1.0 + i})

    first = [make(i) for i in range(size + 1)]
    assert len(_options._BUILT) == size
    assert make(size) is first[size] and make(1) is first[1]  # kept
    assert make(0) is not first[0] and make(0) == first[0]  # dropped, made again


def test_options_made_from_plain_arguments_are_checked_as_the_class_checks_them():
    # _options_of checks only the arguments given, and takes a plain argument's checked
    # value again when another argument changed (the FOV estimate of a loop over frames):
    # the options are those the class makes, a bad value fails every time, and with two
    # bad values the same one is named (field order); a checked value that is not plain
    # (an array) is never shared between options objects
    from skysolve import _options

    def made(**kw):
        return _options._options_of(skysolve.SolveOptions, kw)

    for fov in (11.0, 12.5):
        kw = dict(fov_estimate_deg=fov, image_shape=(768.0, 1024), match_radius=0.01,
                  solve_timeout_ms=5000)
        assert made(**kw) == skysolve.SolveOptions(**kw)
        assert made(**kw).image_shape == (768, 1024)
    a, b = made(image_shape=[768, 1024], fov_estimate_deg=10.0), \
        made(image_shape=(768, 1024), fov_estimate_deg=10.5)
    assert a.image_shape == b.image_shape == (768, 1024)
    for _ in range(2):
        with pytest.raises(InvalidArgumentError, match="match_radius"):
            made(fov_estimate_deg=11.0 + _, match_radius=-1.0)
    bad = dict(solve_timeout_ms=-5, match_radius=-1.0, fov_estimate_deg=-3.0)
    with pytest.raises(InvalidArgumentError) as expected:
        skysolve.SolveOptions(**bad)
    with pytest.raises(InvalidArgumentError) as got:
        made(**bad)
    assert str(got.value) == str(expected.value)
    v1 = made(observer_velocity_km_s=(10.0, 0.0, 0.0), fov_estimate_deg=10.0)
    v2 = made(observer_velocity_km_s=(10.0, 0.0, 0.0), fov_estimate_deg=11.0)
    assert np.array_equal(v1.observer_velocity_km_s, v2.observer_velocity_km_s)
    assert v1.observer_velocity_km_s is not v2.observer_velocity_km_s


def test_the_checks_of_the_names_given_are_kept_per_class_and_names():
    # the checks a call runs are looked up once per class and argument names (in any
    # order, in field order): another set of names, or another class, has its own
    from skysolve import _options

    def made(cls=skysolve.SolveOptions, **kw):
        return _options._options_of(cls, kw)

    made(fov_estimate_deg=10.0, match_radius=0.01)
    with pytest.raises(InvalidArgumentError, match="solve_timeout_ms"):
        made(match_radius=0.01, fov_estimate_deg=10.5, solve_timeout_ms=-5)
    with pytest.raises(InvalidArgumentError, match="match_radius"):
        made(match_radius=-1.0, fov_estimate_deg=10.5)
    given = ("match_radius", "solve_timeout_ms", "fov_estimate_deg")
    for names in (given, given[::-1]):
        checks = _options._given_checks(skysolve.SolveOptions, names)
        assert [c[0] for c in checks] == [n for n in skysolve.SolveOptions.names() if n in given]
    ext = _options._given_checks(skysolve.ExtractionOptions, ("min_pixels", "sigma_threshold"))
    assert [c[0] for c in ext] == ["sigma_threshold", "min_pixels"]
    with pytest.raises(InvalidArgumentError, match="min_pixels"):
        made(skysolve.ExtractionOptions, sigma_threshold=5.0, min_pixels=-1)


@pytest.mark.parametrize("cls", [skysolve.SolveOptions, skysolve.ExtractionOptions,
                                 skysolve.CalibrationOptions, skysolve.StarfieldOptions],
                         ids=lambda c: c.__name__)
def test_defaults_pass_their_own_checks_unchanged(cls):
    """Defaults are not re-checked when an options object is made, so they must be valid."""
    from skysolve._options import check_defaults
    from skysolve.solver.generation import GenerationOptions

    check_defaults(cls)
    check_defaults(GenerationOptions)


@pytest.mark.parametrize("name, value", [
    ("fov_range_deg", ("tuple", 11.0, 12.0, "deg")),
    ("fov_range_deg", ("array", 11.0, 12.0, "deg")),
    ("pixel_scale_range_arcsec", ("tuple", 38.0, 42.0, "arcsec")),
])
def test_a_range_of_quantities_is_refused_by_name(name, value):
    """A ``(low, high)`` of astropy Quantities gets the rule's own message (plain numbers
    in the unit the name says), not numpy's TypeError from inside the check."""
    import astropy.units as u

    kind, lo, hi, unit = value
    pair = (lo * u.Unit(unit), hi * u.Unit(unit)) if kind == "tuple" \
        else [lo, hi] * u.Unit(unit)
    with pytest.raises(InvalidTypeError, match=rf"{name}\[0\].*Quantity"):
        skysolve.SolveOptions(**{name: pair})
