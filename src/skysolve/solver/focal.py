"""Focal-length windows of a lost-in-space search whose scale is unknown.

A pattern's edge ratios are computed from the directions of its four stars,
and those depend on the focal length ``f`` assumed when the centroids are
unprojected. For a narrow pinhole field they hardly do (the ratios of a small
gnomonic pattern are those of its pixel distances), so one guess serves every
scale; for wide and fisheye fields they change quickly. Near the true focal
length the ratios move by at most ``S |ln(f / f_true)|``, where the
*sensitivity* ``S = max |d ratio / d ln f|`` of a pattern grows roughly with
the square of its angular size.

The range ``[f_lo, f_hi]`` of the search is therefore tiled by windows
``[f_c e^-d, f_c e^d]``: a lookup of patterns unprojected at ``f_c`` finds a
true focal length anywhere in its window as long as ``S d`` stays within a
fraction :data:`RATIO_BUDGET` of the database's ratio tolerance (centroid
noise takes the rest). ``S`` is measured on the image's own brightest patterns
at the window's short end (the widest field it covers, where ``S`` is
largest), taking a high percentile so that a few patterns hugging the edge
of the field do not decide. Tiling starts at the narrowest field: a narrow
pinhole database needs a single window, a wide range a few tens.

Most searches need one window (a pinhole field with its scale roughly known),
and measuring ``S`` over a grid would cost more than the search itself. ``S``
grows with the field until the probe's stars lie far from the axis (its peak
is at 66-80 deg from the axis for the widest star of pinhole fields, beyond
110 deg for stereographic ones) and falls beyond. So when the widest probe
star lies within :data:`_MONOTONE_ANGLE` of the axis at the short end, ``S``
there is the largest of the range, and if even twice that value spends at
most the budget over the whole range, the range is one window without a grid.

Within that angle ``S`` is also smooth: nearly a power of ``f`` (``S ~ f^-2`` for a
narrow pinhole field), so its logarithm is close to linear in ``ln f``. There it is
measured every :data:`_SMOOTH_STEP` in ``ln f`` and interpolated in ``ln S`` onto the
grid, which the tiling takes as before. The interpolation is within 0.07 % of the
measured sensitivity at the median grid point and within 6 % at worst (where the
median pattern changes), and the largest over each point's neighbours, which the
tiling takes, is never below the measured value at the point (464 random probes of
pinhole, equidistant and stereographic fields of 2-160 deg). Measuring every grid point
(22 for a 10-20 deg database's range told a field-of-view estimate) was a third of such
a solve's time. When even the largest of those measurements spends at most the budget
over the whole range, the tiling would make one window, and the range is one window
without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..camera import projection as _proj
from .backends import reference as _reference
from .patterns import brightest_first_combinations

__all__ = ["RATIO_BUDGET", "MAX_WINDOWS", "FocalWindow", "focal_windows"]

#: Fraction of the ratio tolerance a window may spend on the focal-length error.
RATIO_BUDGET = 0.5
#: Most windows one search tiles (the widest fields beyond are not searched).
MAX_WINDOWS = 256
#: Brightest pattern stars whose patterns measure the sensitivity.
_PROBE_STARS = 8
#: Percentile of the pattern sensitivities taken as the window's.
_PROBE_PERCENTILE = 50.0
#: Narrowest window half-width (ln f): below this the search would never end.
_MIN_HALF_WIDTH = 1e-3
#: Spacing in ln f of the sensitivity samples.
_GRID_STEP = 0.05
#: Step in ln f of the sensitivity's forward difference.
_STEP = 1e-4
#: Angle from the axis (rad) of the widest probe star up to which the sensitivity
#: grows with the field, smoothly (see the module notes).
_MONOTONE_ANGLE = math.radians(45.0)
#: Spacing in ln f of the sensitivity's measurements there, interpolated onto the grid.
_SMOOTH_STEP = 0.25


@dataclass(frozen=True)
class FocalWindow:
    """Focal lengths ``[lo, hi]`` (px) searched with patterns unprojected at ``centre``."""

    lo: float
    centre: float
    hi: float


def _probe(k: int) -> NDArray[np.intp]:
    """The patterns of the ``k`` brightest stars (built once per ``k``; never written to)."""
    combos = _PROBES.get(k)
    if combos is None:
        combos = _PROBES[k] = brightest_first_combinations(k)
    return combos


_PROBES: dict[int, NDArray[np.intp]] = {}


def _grid(a: float, b: float, n: int) -> NDArray[np.float64]:
    """``np.linspace(a, b, n)`` to the bit (the same products and sums), without its
    argument handling (3.9 against 1.7 us for 36 points; three calls a search told no
    scale)."""
    step = (b - a) / (n - 1) if n > 1 else 0.0
    if step == 0.0 or not math.isfinite(step):
        return np.linspace(a, b, n)
    y = np.arange(n, dtype=np.float64) * step
    y += a
    y[-1] = b
    return y


def _window_edges(u: NDArray[np.float64], sens: NDArray[np.float64],
                  budget: float) -> NDArray[np.float64]:
    """Window edges in ``ln f`` (ascending) tiling the samples ``u`` of sensitivity ``sens``.

    A window of half-width ``d`` where the sensitivity is ``S`` may span
    ``2 d = 2 budget / S``, so windows are spaced evenly in the running count
    ``C(u) = integral of S / (2 budget) du``. The sensitivity is taken as its
    largest over the neighbouring samples, so that a window never straddles a
    rise unseen, and at least ``1 / (2 d_min)`` per unit ``ln f``.
    """
    s = np.empty_like(sens)
    s[1:-1] = np.maximum(np.maximum(sens[:-2], sens[1:-1]), sens[2:])
    s[0], s[-1] = max(sens[0], sens[1]), max(sens[-1], sens[-2])
    rate = np.maximum(s / (2.0 * budget), 0.0)
    rate = np.minimum(rate, 1.0 / (2.0 * _MIN_HALF_WIDTH))
    count = np.empty(len(u))
    count[0] = 0.0
    np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(u), out=count[1:])
    n = max(1, math.ceil(count[-1] - 1e-9))
    return np.interp(_grid(0.0, float(count[-1]), n + 1), count, u)


def _smooth(ideal: NDArray[np.float64], proj: int, f_lo: float) -> bool:
    """Whether the widest probe star lies within :data:`_MONOTONE_ANGLE` of the axis at
    the focal length ``f_lo`` (px), the range's widest field (see the module notes)."""
    # (in scalars: numpy's per-call overhead on eight rows cost more than the arithmetic)
    r_max = math.sqrt(max(x * x + y * y for x, y in ideal[:_PROBE_STARS].tolist()))
    return _proj.scalar_angle_of_radius(r_max / f_lo, proj) <= _MONOTONE_ANGLE


def _sensitivity(ideal: NDArray[np.float64], proj: int, u: NDArray[np.float64],
                 probe: NDArray[np.intp], backend: Any, s_lo: float | None,
                 budget: float) -> NDArray[np.float64] | None:
    """The probe's ratio sensitivity at the focal lengths ``exp(u)`` (ascending): measured
    at each, or where it is smooth (``s_lo``, its value at ``u[0]``, given) every
    :data:`_SMOOTH_STEP` and interpolated in its logarithm (see the module notes).

    None when it is smooth and the measurements show the range to be one window: the
    interpolation never exceeds the larger of two neighbouring measurements, so when
    even the largest spends at most ``budget`` (ratio) over the whole range, the tiling
    (:func:`_window_edges`) would count one window. (A sixth of bench_solve's case a
    fields, 10-20 deg told their scale to 5 %, pass this test but not the one without
    measurements: tiling their range took 66 us, this 35.)"""
    k = math.ceil((u[-1] - u[0]) / _SMOOTH_STEP) + 1
    if s_lo is not None and k < len(u):
        at = _grid(float(u[0]), float(u[-1]), k)
        sens = np.empty(k)
        sens[0] = s_lo
        sens[1:] = backend.ratio_sensitivity(ideal, proj, np.exp(at[1:]), probe, _STEP,
                                             _PROBE_PERCENTILE)
        if (sens > 0.0).all() and np.isfinite(sens).all():
            if float(sens.max()) * (u[-1] - u[0]) <= 2.0 * budget:
                return None
            return np.exp(np.interp(u, at, np.log(sens)))
    return backend.ratio_sensitivity(ideal, proj, np.exp(u), probe, _STEP, _PROBE_PERCENTILE)


def focal_windows(ideal: NDArray[np.float64], proj: int, f_lo: float, f_hi: float, tol: float,
                  f_guess: float | None = None, backend: Any = _reference) -> list[FocalWindow]:
    """Windows tiling the focal lengths ``[f_lo, f_hi]`` (px) for ratio tolerance ``tol``.

    Parameters
    ----------
    ideal : ndarray (n, 2)
        Ideal pixel offsets of the image's pattern stars, brightest first.
    proj : int
        The lens projection's code.
    f_lo, f_hi : float
        The focal-length range (``f_lo <= f_hi``), px.
    tol : float
        The database's edge-ratio tolerance.
    f_guess : float, optional
        A focal-length estimate: windows are returned nearest to it first.
    backend : module
        The solver backend whose ``ratio_sensitivity`` measures the patterns.

    Returns
    -------
    list of FocalWindow
        At most :data:`MAX_WINDOWS`, from the longest focal length (narrowest
        field) down unless ``f_guess`` orders them. Focal lengths at which
        none of the image's patterns is imaged are left out.
    """
    probe = _probe(min(len(ideal), _PROBE_STARS))
    if len(probe) == 0 or f_hi <= f_lo:
        return [FocalWindow(f_lo, math.sqrt(f_lo * f_hi), f_hi)]
    ideal = np.ascontiguousarray(ideal)
    s_lo = None
    if _smooth(ideal, proj, f_lo):
        s_lo = float(backend.ratio_sensitivity(ideal, proj, np.array([f_lo]), probe, _STEP,
                                               _PROBE_PERCENTILE)[0])
        # the largest of the range: a window spans 2 budget / S in ln f; with a factor 2
        # of margin on S, one window surely covers it
        if 2.0 * s_lo * math.log(f_hi / f_lo) <= 2.0 * RATIO_BUDGET * tol:
            return [FocalWindow(f_lo, math.sqrt(f_lo * f_hi), f_hi)]
    u = _grid(math.log(f_lo), math.log(f_hi),
              max(3, math.ceil(math.log(f_hi / f_lo) / _GRID_STEP) + 1))
    sens = _sensitivity(ideal, proj, u, probe, backend, s_lo, RATIO_BUDGET * tol)
    if sens is None:
        return [FocalWindow(f_lo, math.sqrt(f_lo * f_hi), f_hi)]
    imaged = np.isfinite(sens)
    if not imaged.any():
        return []
    # focal lengths too short to image any pattern form the low end of the range
    first = int(imaged.argmax())
    u, sens = u[first:], sens[first:]
    if len(u) < 3 or not np.isfinite(sens).all():
        sens = np.where(np.isfinite(sens), sens, np.nanmax(sens))
        if len(u) < 3:
            u = np.linspace(u[0], u[-1], 3)
            sens = np.full(3, float(np.max(sens)))
    # longest focal length first, the windows beyond MAX_WINDOWS never made (a 2 deg field
    # told no scale on a 2-180 deg database tiles some 330)
    edges = _window_edges(u, sens, RATIO_BUDGET * tol)[::-1][:MAX_WINDOWS + 1].tolist()
    windows = [FocalWindow(math.exp(lo), math.exp(0.5 * (lo + hi)), math.exp(hi))
               for hi, lo in zip(edges[:-1], edges[1:], strict=True)]
    if f_guess is not None:
        windows.sort(key=lambda w: abs(math.log(w.centre / f_guess)))
    return windows
