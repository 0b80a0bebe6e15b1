"""The focal-length windows of a search without a scale (:mod:`skysolve.solver.focal`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skysolve.camera import projection as _proj
from skysolve.solver import focal
from skysolve.solver.backends import reference


def _probes(n: int, seed: int):
    """``n`` random probes (8 stars of a 1024 x 768 frame) with a focal-length range
    whose widest field keeps them within the smooth angle: ``(ideal, proj, f_lo, f_hi)``."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        proj = _proj.code_of(str(rng.choice(["pinhole", "equidistant", "stereographic"])))
        ideal = rng.uniform([-512.0, -384.0], [512.0, 384.0], (8, 2))
        fov_lo = rng.uniform(2.0, 40.0)
        fov_hi = fov_lo * rng.uniform(1.3, 4.0)
        f_lo = 512.0 / math.tan(math.radians(fov_hi / 2.0))
        f_hi = 512.0 / math.tan(math.radians(fov_lo / 2.0))
        if focal._smooth(ideal, proj, f_lo):
            out.append((ideal, proj, f_lo, f_hi))
    return out


def _measured(ideal, proj, u):
    return reference.ratio_sensitivity(ideal, proj, np.exp(u), focal._probe(8), focal._STEP,
                                       focal._PROBE_PERCENTILE)


def test_the_interpolated_sensitivity_never_understates_the_measured_one():
    # the tiling takes each grid point's sensitivity as the largest of its neighbours':
    # from the interpolation, that is at least what measuring the point gives
    for ideal, proj, f_lo, f_hi in _probes(40, seed=2):
        u = np.linspace(math.log(f_lo), math.log(f_hi),
                        math.ceil(math.log(f_hi / f_lo) / focal._GRID_STEP) + 1)
        measured = _measured(ideal, proj, u)
        sens = focal._sensitivity(ideal, proj, u, focal._probe(8), reference,
                                  float(measured[0]), 0.0)
        assert len(sens) == len(u)
        assert np.median(np.abs(sens / measured - 1.0)) < 0.01
        s = np.empty_like(sens)
        s[1:-1] = np.maximum(np.maximum(sens[:-2], sens[1:-1]), sens[2:])
        s[0], s[-1] = max(sens[0], sens[1]), max(sens[-1], sens[-2])
        assert np.all(s >= measured * (1.0 - 1e-12))


def test_a_range_whose_measurements_fit_one_window_is_one_window():
    # a range the test without measurements turns away (its margin of 2 on the
    # sensitivity), but whose measured sensitivity spends at most the budget over the
    # range: one window, which the tiling of the interpolated sensitivity also makes
    early = 0
    for ideal, proj, f_lo, f_hi in _probes(60, seed=8):
        f_hi = f_lo * math.exp(0.1)
        s_lo = float(_measured(ideal, proj, np.array([math.log(f_lo)]))[0])
        s_hi = float(_measured(ideal, proj, np.array([math.log(f_hi)]))[0])
        # a tolerance between what one window needs and the unmeasured test's margin
        budget = 0.1 * max(s_lo, s_hi) * 0.6
        tol = budget / focal.RATIO_BUDGET
        if 2.0 * s_lo * 0.1 <= 2.0 * budget:
            continue
        u = np.linspace(math.log(f_lo), math.log(f_hi), 3)
        assert focal._sensitivity(ideal, proj, u, focal._probe(8), reference, s_lo,
                                  budget) is None
        early += 1
        windows = focal.focal_windows(ideal, proj, f_lo, f_hi, tol, backend=reference)
        assert [(w.lo, w.hi) for w in windows] == [(f_lo, f_hi)]
        at = np.linspace(u[0], u[-1], 2)
        interpolated = np.exp(np.interp(u, at, np.log([s_lo, s_hi])))
        assert len(focal._window_edges(u, interpolated, budget)) == 2
        # a tolerance a little tighter than the measurements allow: the tiling decides
        assert focal._sensitivity(ideal, proj, u, focal._probe(8), reference, s_lo,
                                  0.9 * 0.1 * max(s_lo, s_hi) / 2.0) is not None
    assert early >= 30


def test_a_smooth_range_is_tiled_as_measuring_every_point_tiles_it(monkeypatch):
    # the windows' edges within a small fraction of a window of the measured tiling's
    # (a window of a 10-20 deg database's tolerance is ~0.02-0.1 wide in ln f)
    cases = _probes(30, seed=5)
    found = []
    for ideal, proj, f_lo, f_hi in cases:
        found.append(focal.focal_windows(ideal, proj, f_lo, f_hi, 0.001, backend=reference))
    monkeypatch.setattr(focal, "_SMOOTH_STEP", focal._GRID_STEP / 2.0)
    same = 0
    for (ideal, proj, f_lo, f_hi), windows in zip(cases, found, strict=True):
        measured = focal.focal_windows(ideal, proj, f_lo, f_hi, 0.001, backend=reference)
        if len(measured) != len(windows):
            assert abs(len(measured) - len(windows)) == 1
            continue
        same += 1
        lo = np.log([w.lo for w in windows])
        assert lo == pytest.approx(np.log([w.lo for w in measured]), abs=3e-3)
        assert windows[0].hi == measured[0].hi and windows[-1].lo == measured[-1].lo
    assert same >= 0.9 * len(cases)


def test_grid_is_linspace_to_the_bit():
    """The windows' sample grids are ``np.linspace``'s to the bit: random ends of either
    order and sign, from 1 to 300 points, and the cases it hands to numpy (one point,
    equal ends, an infinite end)."""
    rng = np.random.default_rng(31)
    for _ in range(500):
        a, b = rng.normal(0.0, 10.0, 2) * 10.0 ** rng.integers(-3, 4, 2)
        n = int(rng.integers(1, 300))
        np.testing.assert_array_equal(focal._grid(float(a), float(b), n), np.linspace(a, b, n))
    with np.errstate(invalid="ignore"):  # (numpy's own inf * 0 in the infinite case)
        for a, b, n in ((2.0, 2.0, 5), (0.0, 1.0, 1), (0.0, np.inf, 4), (-1.5, 7.25, 2)):
            np.testing.assert_array_equal(focal._grid(a, b, n), np.linspace(a, b, n))


def test_a_range_of_more_windows_than_searched_keeps_the_narrowest_fields(monkeypatch):
    """A 2 deg pinhole field told no scale on a 2-180 deg range tiles some 330 windows: the
    MAX_WINDOWS kept are the tiling's first from the narrowest field, to the bit, from the
    range's longest focal length down without a gap."""
    rng = np.random.default_rng(4)
    ideal = rng.uniform([-512.0, -384.0], [512.0, 384.0], (8, 2))
    f_lo = 512.0 / math.tan(math.radians(89.9))
    f_hi = 512.0 / math.tan(math.radians(1.0))
    kept = focal.focal_windows(ideal, _proj.PINHOLE, f_lo, f_hi, 0.001, None, reference)
    monkeypatch.setattr(focal, "MAX_WINDOWS", 10**6)
    every = focal.focal_windows(ideal, _proj.PINHOLE, f_lo, f_hi, 0.001, None, reference)
    assert len(every) > len(kept) == 256
    assert kept == every[:256]
    assert kept[0].hi == pytest.approx(f_hi, rel=1e-12) and kept[-1].lo > f_lo
    for a, b in zip(kept[:-1], kept[1:], strict=True):
        assert b.hi == a.lo and a.lo < a.centre < a.hi
