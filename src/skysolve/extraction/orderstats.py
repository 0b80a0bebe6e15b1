"""Order statistics of samples, without numpy's per-call overhead.

The extractor takes medians and percentiles of a few dozen to a few hundred values
(the bright blobs' moments, fitted widths, a grid of block noises) a dozen times per
frame. ``np.median`` and ``np.percentile`` spend 8-20 us a call on argument handling;
one sort of so few values costs under 1 us. The results are numpy's to the bit, but for
the lower median:

* :func:`median`: the middle value, or the mean ``(a + b) / 2`` of the two middle ones
  for an even count (``np.median``); NaN when the sample is empty or holds a NaN;
* :func:`lower_median`: the lower middle value (``k = (n - 1) // 2``) by one selection,
  for the tens of thousands of background samples (one selection, no average of two);
* :func:`order_statistic`: ``np.partition(values, k)[k]`` of a 1-D sample, by the
  compiled selection (:func:`.kernels.select_value`) once the extraction's kernels are
  compiled: numpy's took several times longer on the development machine (numpy's
  value either way, but for the sign of a zero among zeros of both signs);
* :func:`percentiles`: ``np.percentile``'s default linear interpolation of the sample
  as float64, ``a + (b - a) t`` below the midpoint of two order statistics and
  ``b - (b - a) (1 - t)`` from it; NaN likewise;
* :func:`row_medians`: ``np.median(values, axis=1)`` of a 2-D float array, by one sort
  of its rows (NaN for a row holding one);
* :func:`running_median`: ``scipy.ndimage.median_filter`` along the first axis, edges
  replicated (``mode='nearest'``), an odd window, of a finite float array;
* :func:`largest_first`: the positions of the ``k`` largest values, largest first, ties
  in position order, as ``np.argsort(-values, kind="stable")[:k]`` gives them, without
  sorting the thousands of others (the brightest of a crowded frame's blobs).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from . import scratch
from .kernels import SELECT_TYPES, compiled

__all__ = ["largest_first", "lower_median", "median", "order_statistic", "percentiles",
           "row_medians", "running_median"]


#: Samples from this size on are selected, not sorted, for their median: numpy's sort
#: took 14 us for 1,024 doubles and 150 for 6,348 on the development machine (the
#: banding test's four samples), its partition 10 and 64.
_PARTITION_SIZE = 1024
#: Samples from this size on have their largest values selected before they are sorted
#: (:func:`largest_first`): a stable sort of a crowded frame's 7,600 fluxes took 0.5 ms.
_SELECT_FIRST_SIZE = 2048


def largest_first(values: NDArray, k: int) -> NDArray[np.intp]:
    """``np.argsort(-values, kind="stable")[:k]`` of a 1-D float sample: the positions of
    its ``k`` largest values, largest first, equal ones in position order, NaN last.

    On a large sample only the values at least as large as the ``k``-th largest are
    sorted (all of them, ties included, in position order: the same stable order as
    the whole sample's); when fewer than ``k`` values are not NaN, the whole sample is.
    """
    neg = -values
    if k < values.size and values.size >= _SELECT_FIRST_SIZE:
        kth = np.partition(neg, k - 1)[k - 1] if k > 0 else -np.inf
        if not np.isnan(kth):
            top = np.flatnonzero(neg <= kth)
            return top[np.argsort(neg[top], kind="stable")][:k]
    return np.argsort(neg, kind="stable")[:k]


#: From this size (bytes) a sample's selection space is a reused array (:mod:`.scratch`):
#: glibc maps larger blocks afresh (its threshold starts at 128 kB), and a small frame's
#: whole-frame samples then paid a page fault per 4 kB; smaller ones come from the heap
#: at less than a reused array's bookkeeping (~3 us).
_SCRATCH_BYTES = 128 * 1024


def order_statistic(values: NDArray, k: int) -> float:
    """``float(np.partition(values, k)[k])`` of a 1-D sample (NaN last), ``values``
    left as they are: by the compiled selection of the value alone
    (:func:`.kernels.select_value`) once the kernels are compiled, for a contiguous
    sample of a type it is compiled for and a rank numpy takes (negative ones count
    from the end); else numpy's (which raises numpy's errors)."""
    if (values.ndim == 1 and values.dtype in SELECT_TYPES and values.flags.c_contiguous
            and -values.size <= k < values.size):
        if values.nbytes < _SCRATCH_BYTES:
            kernel = compiled("select_value")
            if kernel is not None:
                return float(kernel(values, k % values.size))
        else:
            kernel = compiled("select_into")
            if kernel is not None:
                with scratch.borrowed():  # (free again for the next selection)
                    return float(kernel(values, k % values.size,
                                        scratch.empty(values.size, values.dtype)))
    return float(np.partition(values, k)[k])


def median(values: NDArray) -> float:
    """``float(np.median(values))`` of a 1-D sample (NaN for an empty one or one holding
    a NaN)."""
    # (numpy averages half floats in float32: no overflow; an empty one is NaN below)
    if values.dtype == np.float16 and values.size:
        return float(np.median(values))
    if values.size >= _PARTITION_SIZE and values.dtype.kind in "fiu":
        flat = values.ravel()
        if flat.dtype.kind == "f" and np.isnan(flat).any():
            return float("nan")
        n = flat.size
        k = (n - 1) // 2
        a = order_statistic(flat, k)
        if n % 2:
            return a
        b = _next_order_statistic(flat, k, a)
        if flat.dtype.kind == "f":  # (numpy averages in the sample's type)
            return float((flat.dtype.type(a) + flat.dtype.type(b)) / 2)
        return (a + b) / 2  # (in float64: no wrap-around)
    v = np.sort(values, axis=None)
    if v.dtype.kind in "iub":  # (numpy averages integers in float64: no wrap-around)
        v = v.astype(np.float64)
    n = v.size
    if n == 0 or v[-1] != v[-1]:  # (a sort puts NaN last)
        return float("nan")
    k = (n - 1) // 2
    return float(v[k]) if n % 2 else float((v[k] + v[k + 1]) / 2)


def _next_order_statistic(flat: NDArray, k: int, a: float) -> float:
    """``order_statistic(flat, k + 1)`` of a sample without NaN whose order statistic ``k``
    is ``a``: by one compiled pass (:func:`.kernels.next_order_statistic`) where the
    selection's kernel would run, else by numpy."""
    if flat.dtype in SELECT_TYPES and flat.flags.c_contiguous and k + 1 < flat.size:
        kernel = compiled("next_order_statistic")
        if kernel is not None:
            return float(kernel(flat, k, flat.dtype.type(a)))
    return order_statistic(flat, k + 1)


def lower_median(values: NDArray) -> float:
    """The lower median of a 1-D sample (order statistic ``(n - 1) // 2``), by one
    selection."""
    return order_statistic(values, (values.size - 1) // 2)


def percentiles(values: NDArray, fractions: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, 100 * fractions)`` of the sample as float64 (linear
    interpolation, the same arithmetic, read off one sort); NaN for an empty sample or
    one holding a NaN."""
    v = np.sort(np.asarray(values, dtype=np.float64), axis=None)
    if v.size == 0 or v[-1] != v[-1]:
        return [float("nan")] * len(fractions)
    out = []
    for q in fractions:
        pos = (v.size - 1) * q
        lo = math.floor(pos)
        # (two values as Python floats, not the whole sample as a list)
        a, b = float(v[lo]), float(v[min(lo + 1, v.size - 1)])
        t = pos - lo
        d = b - a
        out.append(b - d * (1.0 - t) if t >= 0.5 else a + d * t)
    return out


def row_medians(values: NDArray) -> NDArray:
    """``np.median(values, axis=1)`` of a 2-D float array, in its type: each row's middle
    value, or ``(a + b) / 2`` of its two middle ones in the array's own arithmetic (as
    ``np.mean`` takes them); NaN for a row holding a NaN (which sorts last).

    By one sort of the rows (numpy sorts floats with SIMD): a 768 x 146 float32 band of a
    frame's columns took 0.22 against 1.5 ms.
    """
    s = np.sort(values, axis=1)
    n = s.shape[1]
    mid = s[:, n // 2] if n % 2 else (s[:, n // 2 - 1] + s[:, n // 2]) / 2
    return np.where(np.isnan(s[:, -1]), np.nan, mid).astype(values.dtype, copy=False)


def running_median(values: NDArray, size: int) -> NDArray:
    """``scipy.ndimage.median_filter(values, size=(size, 1), mode="nearest")`` of a 2-D
    array of finite floats, ``size`` odd: each value's median over the ``size`` values
    about it along the first axis, the first and last rows repeated beyond the ends.

    By the compiled sliding window (:func:`.kernels.running_medians`) once the kernels
    are compiled, else by one partition of the windows; no scipy import either way
    (768 x 7 values, windows of 65: 0.37 and 1.76 ms; scipy's 3.8 ms).
    """
    half = size // 2
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    kernel = compiled("running_medians")
    if kernel is not None and padded.dtype == np.float64:  # (its window slid, not sorted)
        out = np.empty(values.shape)
        kernel(padded, size, out)
        return out
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)
    return np.partition(windows, half, axis=-1)[..., half]
