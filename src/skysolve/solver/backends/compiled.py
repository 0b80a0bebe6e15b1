"""The compiled backend: the solver's kernels in numba.

A lost-in-space solve of a few dozen centroids is a long chain of numpy calls
on arrays of a handful of elements, where numpy's per-call overhead, not
arithmetic, sets the time. These kernels do the same arithmetic in compiled
loops. Each implements the function of the same name and signature of the
reference backend (:mod:`skysolve.solver.backends.reference`), which stays
the readable definition; the agreement tests check that both agree. Where
compilation does not pay (large fields, which are dominated by KD-tree
queries) a function here runs the reference orchestration with compiled
pieces. The list of functions and their contracts is
:mod:`skysolve.solver.backends.interface`.

Kernels are compiled on first use and cached on disk (``cache=True``), so
only the first solve on a machine pays for compilation; the solver compiles
(or loads) them before its clock starts (:func:`skysolve.solver.backends.prepare`).
"""

from __future__ import annotations

import math
import weakref
from collections import namedtuple

import numpy as np

from ..._jit import jit as _jit
from ...camera import projection as _proj
from .. import keys as _keys
from . import reference as _reference

NAME = "compiled"

#: The key formulas of :mod:`skysolve.solver.keys`, compiled (the same lines).
_bin_index = _jit(_keys.bin_index)
_pack_key = _jit(_keys.pack_key)
_key_bucket = _jit(_keys.key_bucket)
_key_hash = _jit(_keys.key_hash)
_angle_of_radius = _jit(_proj.scalar_angle_of_radius)
_radius_of_angle = _jit(_proj.scalar_radius_of_angle)
#: Scratch arrays of the pattern search, allocated once per call: allocating inside
#: the per-pattern loops dominated the time of searches that find nothing.
_Work = namedtuple("_Work", "e ce ax ay az dist lo span digit cur")
#: ``reference.ARCSEC_PER_RAD`` (a result's residuals are reported in arc seconds)
_ARCSEC_PER_RAD = _reference.ARCSEC_PER_RAD
#: Cost of visiting one sky cell in a compiled cone query, in star-table rows scanned.
_CELL_COST = 60.0


# ------------------------------------------------------------------------------------
# Small geometry helpers (inlined by numba)


#: Below this gap measure (the largest diagonal cofactor of ``K - lambda I`` over
#: ``|K|^3``: about the product of the top eigenvalue's three gaps, relative) the
#: cofactor eigenvector loses digits Jacobi keeps, and Jacobi is used instead. On 20,000
#: random Wahba problems (2-60 pairs, fields 0.1-180 deg across, noise 0-1e-2 rad,
#: mirrored or not) the eigenvector was then as close to LAPACK's ``eigh`` as Jacobi's at
#: every field width (the largest errors 5e-14 at 180 deg, 6.7e-10 at 1 deg, 2.8e-8 at
#: 0.1 deg, Jacobi's the same); the cofactors alone had erred by 3e-4 and more on fields 0.1
#: deg across. Jacobi took every field of 0.1-0.3 deg, a quarter of those of 1 deg and
#: none from 10 deg.
_COFACTOR_MIN_GAP = 1e-5


@_jit
def _cofactor4(M, r, c):
    """Cofactor ``(r, c)`` of a 4x4 matrix: the signed determinant of ``M`` without row
    ``r`` and column ``c``."""
    r0 = 1 if r == 0 else 0
    r1 = r0 + 1 + (r0 + 1 == r)
    r2 = r1 + 1 + (r1 + 1 == r)
    c0 = 1 if c == 0 else 0
    c1 = c0 + 1 + (c0 + 1 == c)
    c2 = c1 + 1 + (c1 + 1 == c)
    d = (M[r0, c0] * (M[r1, c1] * M[r2, c2] - M[r1, c2] * M[r2, c1])
         - M[r0, c1] * (M[r1, c0] * M[r2, c2] - M[r1, c2] * M[r2, c0])
         + M[r0, c2] * (M[r1, c0] * M[r2, c1] - M[r1, c1] * M[r2, c0]))
    return -d if (r + c) % 2 else d


@_jit
def _largest_eigenvalue4(K):
    """The largest eigenvalue of a symmetric 4x4 matrix: Newton's method on its
    characteristic polynomial from above; and ``|K|`` (Frobenius norm).

    ``det(l I - K) = l^4 - c1 l^3 + c2 l^2 - c3 l + c4`` with the coefficients from the
    traces of ``K``, ``K^2`` and ``K^3`` (Newton's identities) and ``c4 = det K``. All its
    roots are real, so from above the largest Newton descends monotonically onto it. The
    start bounds it: the mean eigenvalue plus ``sqrt(3/4)`` of the root of the summed
    squares of their deviations (no eigenvalue deviates more).
    """
    t1 = K[0, 0] + K[1, 1] + K[2, 2] + K[3, 3]
    t2 = 0.0
    t3 = 0.0
    for i in range(4):
        for j in range(4):
            t2 += K[i, j] * K[j, i]
            kk = 0.0
            for k in range(4):
                kk += K[j, k] * K[k, i]
            t3 += K[i, j] * kk
    c1 = t1
    c2 = 0.5 * (t1 * t1 - t2)
    c3 = (t1 * t1 * t1 - 3.0 * t1 * t2 + 2.0 * t3) / 6.0
    c4 = 0.0
    for j in range(4):
        c4 += K[0, j] * _cofactor4(K, 0, j)
    mean = 0.25 * t1
    lam = mean + math.sqrt(max(0.75 * (t2 - 4.0 * mean * mean), 0.0))
    for _ in range(200):
        p = (((lam - c1) * lam + c2) * lam - c3) * lam + c4
        dp = ((4.0 * lam - 3.0 * c1) * lam + 2.0 * c2) * lam - c3
        if not dp > 0.0:
            break
        step = p / dp
        if not step > 4e-16 * abs(lam):
            break
        lam -= step
    return lam, math.sqrt(t2)


@_jit
def _largest_eigenvector4(K):
    """Unit eigenvector of the largest eigenvalue of a symmetric 4x4 matrix.

    With the eigenvalue ``l`` (:func:`_largest_eigenvalue4`), ``adj(K - l I)`` is
    ``q q^T`` times the product of the other eigenvalues' gaps: its column of largest
    diagonal entry is the eigenvector ``q``. The eigenvalue is then taken again as ``q``'s
    Rayleigh quotient, exact to rounding where Newton's, from a polynomial whose roots
    cluster (a narrow field's), was not, and the cofactors taken again. Where the gaps are
    too small for that (:data:`_COFACTOR_MIN_GAP`), or anything is not finite: cyclic
    Jacobi (:func:`_jacobi_eigenvector4`), ~5 times slower.
    """
    lam, norm = _largest_eigenvalue4(K)
    M = np.empty((4, 4))
    q = np.empty(4)
    gap = 0.0
    for polish in range(2):
        for i in range(4):
            for j in range(4):
                M[i, j] = K[i, j]
            M[i, i] -= lam
        best = 0
        gap = 0.0
        for i in range(4):
            cii = abs(_cofactor4(M, i, i))
            if cii > gap:
                best, gap = i, cii
        n2 = 0.0
        for j in range(4):
            q[j] = _cofactor4(M, j, best)
            n2 += q[j] * q[j]
        n = math.sqrt(n2)
        if not (n > 0.0 and n < np.inf):
            return _jacobi_eigenvector4(K)
        for j in range(4):
            q[j] /= n
        if polish == 0:
            lam = 0.0
            for i in range(4):
                for j in range(4):
                    lam += q[i] * K[i, j] * q[j]
    if not gap >= _COFACTOR_MIN_GAP * norm * norm * norm:
        return _jacobi_eigenvector4(K)
    return q


@_jit
def _jacobi_eigenvector4(K):
    """Unit eigenvector of the largest eigenvalue of a symmetric 4x4 matrix (cyclic Jacobi)."""
    a = K.copy()
    v = np.eye(4)
    for _ in range(30):
        off = 0.0
        diag = 0.0
        for p in range(4):
            diag += a[p, p] * a[p, p]
            for q in range(p + 1, 4):
                off += a[p, q] * a[p, q]
        if off <= 1e-32 * diag or off == 0.0:
            break
        for p in range(3):
            for q in range(p + 1, 4):
                apq = a[p, q]
                if apq == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                t = 1.0 / (abs(theta) + math.sqrt(theta * theta + 1.0))
                if theta < 0:
                    t = -t
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(4):
                    akp, akq = a[k, p], a[k, q]
                    a[k, p] = c * akp - s * akq
                    a[k, q] = s * akp + c * akq
                for k in range(4):
                    apk, aqk = a[p, k], a[q, k]
                    a[p, k] = c * apk - s * aqk
                    a[q, k] = s * apk + c * aqk
                for k in range(4):
                    vkp, vkq = v[k, p], v[k, q]
                    v[k, p] = c * vkp - s * vkq
                    v[k, q] = s * vkp + c * vkq
    best = 0
    for p in range(1, 4):
        if a[p, p] > a[best, best]:
            best = p
    return v[:, best]


@_jit
def _wahba(B):
    """Proper rotation ``R`` maximising ``tr(R^T B)`` for the attitude profile ``B``.

    Davenport's q-method: the optimal quaternion is the eigenvector of the
    largest eigenvalue of the 4x4 matrix K built from ``B``. It is the same
    rotation as the SVD solution (with the reflection fix) of
    ``geometry.wahba_rotation``, at a fraction of a LAPACK call's cost.
    """
    tr = B[0, 0] + B[1, 1] + B[2, 2]
    K = np.empty((4, 4))
    for i in range(3):
        for j in range(3):
            K[i, j] = B[i, j] + B[j, i]
        K[i, i] -= tr
    K[0, 3] = K[3, 0] = B[1, 2] - B[2, 1]
    K[1, 3] = K[3, 1] = B[2, 0] - B[0, 2]
    K[2, 3] = K[3, 2] = B[0, 1] - B[1, 0]
    K[3, 3] = tr
    q = _largest_eigenvector4(K)
    x, y, z, w = q[0], q[1], q[2], q[3]
    R = np.empty((3, 3))
    R[0, 0] = w * w + x * x - y * y - z * z
    R[1, 1] = w * w - x * x + y * y - z * z
    R[2, 2] = w * w - x * x - y * y + z * z
    R[0, 1] = 2.0 * (x * y + w * z)
    R[1, 0] = 2.0 * (x * y - w * z)
    R[0, 2] = 2.0 * (x * z - w * y)
    R[2, 0] = 2.0 * (x * z + w * y)
    R[1, 2] = 2.0 * (y * z + w * x)
    R[2, 1] = 2.0 * (y * z - w * x)
    return R


@_jit
def _chord_to_angle(chord):
    h = 0.5 * chord
    if h > 1.0:
        h = 1.0
    elif h < 0.0:
        h = 0.0
    return 2.0 * math.asin(h)


@_jit
def _unit_from_ideal(px, py, f, s, proj):
    """Camera unit vector ``(x, y, z)`` of an ideal pixel offset under projection ``proj``
    (``s`` = -1 for mirrored images; NaN outside the projection's image). Returned as
    numbers rather than written to a row: a row view passed per star costs its
    reference counting, several times the arithmetic."""
    xi = s * px / f
    eta = py / f
    if proj == _proj.PINHOLE:
        n = math.sqrt(1.0 + xi * xi + eta * eta)
        return xi / n, eta / n, 1.0 / n
    rho = math.hypot(xi, eta)
    theta = _angle_of_radius(rho, proj)
    k = math.sin(theta) / rho if rho > 0 else 1.0
    return k * xi, k * eta, math.cos(theta)


@_jit
def _plane_of(x, y, z, proj):
    """Projection-plane point of a camera-frame vector (NaN where it is not imaged)."""
    if proj == _proj.PINHOLE:
        if not z > 0:
            return np.nan, np.nan
        return x / z, y / z
    s = math.hypot(x, y)
    rho = _radius_of_angle(math.atan2(s, z), proj)
    if not rho == rho:
        return np.nan, np.nan
    if s > 0:
        k = rho / s
    elif z > 0:
        k = 0.0  # on the axis: the centre
    else:
        return np.nan, np.nan  # straight behind: the whole circle |p| = g(180 deg)
    return k * x, k * y


@_jit
def unit_vectors(ideal, f, parity, proj):
    """Camera unit vectors of ideal pixel offsets (``reference.unit_vectors``)."""
    s = -1.0 if parity else 1.0
    out = np.empty((ideal.shape[0], 3))
    for t in range(ideal.shape[0]):
        out[t, 0], out[t, 1], out[t, 2] = _unit_from_ideal(ideal[t, 0], ideal[t, 1], f, s,
                                                           proj)
    return out


@_jit
def _angle(x0, y0, z0, x1, y1, z1):
    """Angle between two unit vectors from their chord (accurate at small angles)."""
    dx = x0 - x1
    dy = y0 - y1
    dz = z0 - z1
    return 2.0 * math.asin(min(0.5 * math.sqrt(dx * dx + dy * dy + dz * dz), 1.0))


@_jit
def _pair_angles(v, m, valid, out):
    """Angles between the first ``m`` of vectors ``v`` (``out[i, j]`` and ``out[j, i]``)
    and which of them are imaged (``valid``)."""
    for i in range(m):
        valid[i] = v[i, 0] == v[i, 0] and v[i, 1] == v[i, 1] and v[i, 2] == v[i, 2]
    for i in range(m):
        for j in range(i + 1, m):
            a = _angle(v[i, 0], v[i, 1], v[i, 2], v[j, 0], v[j, 1], v[j, 2])
            out[i, j] = a
            out[j, i] = a


@_jit
def _sort6(e):
    """Sort the six values of ``e`` in place.

    Six numbers (no NaN) go through a sorting network of 12 min/max pairs, which compile
    to branch-free code: the insertion sort's data-dependent branches, mispredicted about
    every other pattern, took 45 ns a sort against 15 (the ratio sensitivity sorts 140
    patterns a solve, the pattern search one per image and catalog pattern). Sorted
    numbers are the same numbers whatever the algorithm (the edges are angles, never
    -0.0); with a NaN the insertion sort below places it, as it always did.
    """
    a0, a1, a2, a3, a4, a5 = e[0], e[1], e[2], e[3], e[4], e[5]
    if a0 == a0 and a1 == a1 and a2 == a2 and a3 == a3 and a4 == a4 and a5 == a5:
        a0, a5 = min(a0, a5), max(a0, a5)
        a1, a3 = min(a1, a3), max(a1, a3)
        a2, a4 = min(a2, a4), max(a2, a4)
        a1, a2 = min(a1, a2), max(a1, a2)
        a3, a4 = min(a3, a4), max(a3, a4)
        a0, a3 = min(a0, a3), max(a0, a3)
        a2, a5 = min(a2, a5), max(a2, a5)
        a0, a1 = min(a0, a1), max(a0, a1)
        a2, a3 = min(a2, a3), max(a2, a3)
        a4, a5 = min(a4, a5), max(a4, a5)
        a1, a2 = min(a1, a2), max(a1, a2)
        a3, a4 = min(a3, a4), max(a3, a4)
        e[0], e[1], e[2], e[3], e[4], e[5] = a0, a1, a2, a3, a4, a5
        return
    for i in range(1, 6):
        x = e[i]
        j = i - 1
        while j >= 0 and e[j] > x:
            e[j + 1] = e[j]
            j -= 1
        e[j + 1] = x


@_jit
def _quad_edges(angles, q0, q1, q2, q3, e):
    """Sorted six edges of the pattern of stars ``q0 .. q3`` from the pair angles of its
    stars (``angles``, symmetric: :func:`_pair_angles`), written to ``e``."""
    e[0] = angles[q0, q1]
    e[1] = angles[q0, q2]
    e[2] = angles[q0, q3]
    e[3] = angles[q1, q2]
    e[4] = angles[q1, q3]
    e[5] = angles[q2, q3]
    _sort6(e)


@_jit
def _kth_smallest(a, n, k):
    """The ``k``-th smallest (from 0) of ``a[:n]`` (no NaN; ``a`` reordered): Hoare's
    selection. The same value as ``np.sort(a[:n])[k]``, whatever the order of ties."""
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = a[(lo + hi) >> 1]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


@_jit
def ratio_sensitivity(ideal, proj, focal_lengths, probe, step, percentile):
    """Ratio sensitivity of an image's brightest patterns (``reference.ratio_sensitivity``).

    The angles between the probe's stars are computed once per focal length, not
    once per pattern (each pair belongs to many patterns), and the percentile is
    selected rather than sorted out of the patterns' changes (a search told no scale
    measures some 200 focal lengths of 70 patterns, 1.2 ms before, 0.6 now)."""
    m, g = probe.shape[0], focal_lengths.shape[0]
    n = 0
    for k in range(m):
        for i in range(4):
            n = max(n, probe[k, i] + 1)
    v0 = np.empty((n, 3))
    v1 = np.empty((n, 3))
    a0, a1 = np.zeros((n, n)), np.zeros((n, n))
    ok0, ok1 = np.empty(n, np.bool_), np.empty(n, np.bool_)
    e0, e1 = np.empty(6), np.empty(6)
    change = np.empty(m)  # (the patterns' changes but NaN, in pattern order)
    out = np.empty(g)
    grow = math.exp(step)
    for t in range(g):
        f0 = focal_lengths[t]
        f1 = f0 * grow
        for i in range(n):
            v0[i, 0], v0[i, 1], v0[i, 2] = _unit_from_ideal(ideal[i, 0], ideal[i, 1], f0, 1.0,
                                                            proj)
            v1[i, 0], v1[i, 1], v1[i, 2] = _unit_from_ideal(ideal[i, 0], ideal[i, 1], f1, 1.0,
                                                            proj)
        _pair_angles(v0, n, ok0, a0)
        _pair_angles(v1, n, ok1, a1)
        for i in range(n):
            ok0[i] = ok0[i] and ok1[i]
        finite = 0
        # the largest change of each pattern's five edge ratios, written out in this loop:
        # a call per pattern with its seven arrays cost twice the pattern's arithmetic
        # (70 probe patterns: 11-15 -> 5 us)
        for k in range(m):
            q0, q1, q2, q3 = probe[k, 0], probe[k, 1], probe[k, 2], probe[k, 3]
            if not (ok0[q0] and ok0[q1] and ok0[q2] and ok0[q3]):
                continue  # a star not imaged at either focal length: no change (NaN)
            _quad_edges(a0, q0, q1, q2, q3, e0)
            _quad_edges(a1, q0, q1, q2, q3, e1)
            best = 0.0
            for r in range(5):
                d = abs(e1[r] / e1[5] - e0[r] / e0[5])
                if not d <= best:
                    best = d
            c = best / step
            if c == c:
                change[finite] = c
                finite += 1
        if finite == 0:
            out[t] = np.nan
            continue
        # (the order statistic of the sorted changes, NaN last)
        out[t] = _kth_smallest(change, finite,
                               int(math.floor(percentile / 100.0 * max(finite - 1, 0))))
    return out


# ------------------------------------------------------------------------------------
# Centroid thinning and catalog cones


@_jit
def extent(xy):
    """``reference.extent``: the largest ``|x|`` and ``|y|``, NaN once either column holds
    a NaN (as numpy's maximum); a solve's first check, where numpy's reduction machinery
    was the code a cold solve fetched first (~800 cache lines)."""
    rx = 0.0
    ry = 0.0
    for t in range(xy.shape[0]):
        ax = abs(xy[t, 0])
        ay = abs(xy[t, 1])
        if ax > rx or ax != ax:  # (once NaN, no comparison is true: it stays)
            rx = ax
        if ay > ry or ay != ay:
            ry = ay
    return rx, ry


@_jit
def thin_pixels(ideal, sep_px, limit):
    """Centroids with no brighter centroid within ``sep_px`` (``reference.thin_pixels``)."""
    n = ideal.shape[0]
    keep = np.empty(min(n, limit), np.intp)
    k = 0
    s2 = sep_px * sep_px
    for i in range(n):
        if k == limit:
            break
        ok = True
        if sep_px > 0:
            for j in range(i):
                dx = ideal[i, 0] - ideal[j, 0]
                dy = ideal[i, 1] - ideal[j, 1]
                if dx * dx + dy * dy <= s2:
                    ok = False
                    break
        if ok:
            keep[k] = i
            k += 1
    return keep[:k]


@_jit
def cone_scan(vectors, cx, cy, cz, min_dot, count, max_scan):
    """The first ``count`` rows of ``vectors`` within a cone, scanning at most ``max_scan``.

    Returns the rows found, their vectors and the number of rows scanned; the
    caller hands over to :func:`cone_query` when the scan stopped short.
    """
    out = np.empty(count, np.intp)
    k = 0
    n = min(vectors.shape[0], max_scan)
    i = 0
    while i < n and k < count:
        if vectors[i, 0] * cx + vectors[i, 1] * cy + vectors[i, 2] * cz >= min_dot:
            out[k] = i
            k += 1
        i += 1
    v = np.empty((k, 3))
    for t in range(k):
        v[t] = vectors[out[t]]
    return out[:k], v, i


#: Most entries of a bucket :func:`_lowest_first` sorts by insertion (more: by argsort).
_BUCKET_INSERTION_MAX = 32


@_jit
def _lowest_first(values, n, count):
    """Positions of the ``count`` lowest of the distinct ``values[:n]``, lowest first: the
    first ``count`` of ``np.argsort(values[:n])`` (distinct values have one order).

    A bucket sort over ``[0, max]``: the cone query's rows come spread over the bound
    they were read below, a few per bucket, and an argsort of its few hundred rows cost
    twice the query's scan (~10 us a solve). A bucket is ordered by insertion, or by
    argsort when the rows crowd into it; buckets past the ``count``-th entry are left.
    """
    m = min(count, n)
    if n == 0:
        return np.empty(0, np.intp)
    top = values[0]
    for t in range(n):
        top = max(top, values[t])
    scale = n / (top + 1.0)  # (monotone: lower values never land in later buckets)
    head = np.zeros(n + 1, np.intp)
    for t in range(n):
        head[int(values[t] * scale) + 1] += 1
    for b in range(n):
        head[b + 1] += head[b]
    order = np.empty(n, np.intp)
    fill = head[:n].copy()
    for t in range(n):
        b = int(values[t] * scale)
        order[fill[b]] = t
        fill[b] += 1
    for b in range(n):
        lo, hi = head[b], head[b + 1]
        if lo >= m:
            break
        if hi - lo > _BUCKET_INSERTION_MAX:
            part = order[lo:hi].copy()
            order[lo:hi] = part[np.argsort(values[part])]
            continue
        for i in range(lo + 1, hi):
            x = order[i]
            j = i - 1
            while j >= lo and values[order[j]] > values[x]:
                order[j + 1] = order[j]
                j -= 1
            order[j + 1] = x
    return order[:m]


@_jit
def cone_query(cell_vectors, members, starts, band_first, band_cells, h, ra0, dec0, radius,
               cx, cy, cz, min_dot, count, first_bound):
    """The ``count`` lowest star-table rows inside a cone (mirror of the KD-tree query).

    The star table is sorted brightest first, so these are the cone's brightest
    stars. Sky cells (``SkyIndex.cells``) that may overlap the cone
    (``cell_vectors`` holds their stars' vectors in ``members`` order) are
    read up to a row bound that doubles, starting at ``first_bound``,
    until ``count`` stars inside the cone lie below it: then they are exactly
    the ``count`` lowest rows, and only cells near the cone were touched.
    ``min_dot`` is the cosine of the radius; ``ra0``, ``dec0`` and the unit
    vector ``(cx, cy, cz)`` the centre. Returns the rows and their vectors.
    """
    n_bands = band_cells.shape[0]
    half_pi = 0.5 * math.pi
    reach = radius + 1e-9  # cells are chosen generously; the dot product decides
    b0 = max(0, int((dec0 - reach + half_pi) / h))
    b1 = min(n_bands - 1, int((dec0 + reach + half_pi) / h))
    if abs(dec0) + reach >= half_pi:
        d_ra = math.pi  # the cone holds a pole: every RA
    else:
        d_ra = math.asin(min(1.0, math.sin(reach) / math.cos(dec0))) + 1e-9
    n_cells = 0
    for b in range(b0, b1 + 1):
        n_cells += band_cells[b]
    cells = np.empty(n_cells, np.intp)
    k = 0
    for b in range(b0, b1 + 1):
        n = band_cells[b]
        w = 2.0 * math.pi / n
        lo = int(math.floor((ra0 - d_ra) / w))
        hi = int(math.floor((ra0 + d_ra) / w))
        if hi - lo + 1 >= n:
            lo, hi = 0, n - 1
        for c in range(lo, hi + 1):
            cells[k] = band_first[b] + c % n
            k += 1
    cursor = np.empty(k, np.intp)
    total = 0
    for t in range(k):
        cursor[t] = starts[cells[t]]
        total += starts[cells[t] + 1] - cursor[t]
    # room for every star of the cells: no array is replaced inside the scan (a
    # reassigned array costs reference counting on every star)
    found = np.empty(total, np.intp)
    where = np.empty(total, np.intp)  # positions in cell order, for the vectors
    n_found = 0
    bound = first_bound
    n_rows = members.shape[0]
    while True:
        for t in range(k):
            stop = starts[cells[t] + 1]
            pos = cursor[t]
            while pos < stop and members[pos] < bound:
                if (cell_vectors[pos, 0] * cx + cell_vectors[pos, 1] * cy
                        + cell_vectors[pos, 2] * cz >= min_dot):
                    found[n_found] = members[pos]
                    where[n_found] = pos
                    n_found += 1
                pos += 1
            cursor[t] = pos
        if n_found >= count or bound >= n_rows:
            break
        bound *= 2
    order = _lowest_first(found, n_found, count)
    rows = np.empty(order.shape[0], np.intp)
    v = np.empty((order.shape[0], 3))
    for t in range(order.shape[0]):
        rows[t] = found[order[t]]
        pos = where[order[t]]
        v[t, 0] = cell_vectors[pos, 0]
        v[t, 1] = cell_vectors[pos, 1]
        v[t, 2] = cell_vectors[pos, 2]
    return rows, v


# ------------------------------------------------------------------------------------
# Pattern search


@_jit
def _edges_sorted(x0, y0, z0, x1, y1, z1, x2, y2, z2, x3, y3, z3, e):
    """Sorted six inter-star angles of four stars (unit vectors ``(x, y, z)``), written to
    ``e``. The stars come as numbers: the search calls this per image pattern and per
    catalog pattern, and component arrays filled for it cost more than the angles."""
    e[0] = _angle(x0, y0, z0, x1, y1, z1)
    e[1] = _angle(x0, y0, z0, x2, y2, z2)
    e[2] = _angle(x0, y0, z0, x3, y3, z3)
    e[3] = _angle(x1, y1, z1, x2, y2, z2)
    e[4] = _angle(x1, y1, z1, x3, y3, z3)
    e[5] = _angle(x2, y2, z2, x3, y3, z3)
    _sort6(e)


@_jit
def _first_at_least(a, key, lo, hi):
    """First index in ``[lo, hi)`` of sorted ``a`` whose value is not below ``key``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@_jit
def _grow(a, n, cap):
    """``a`` (1-D or 2-D) copied into a new array of ``cap`` rows, its first ``n`` rows kept."""
    if a.ndim == 1:
        b = np.empty(cap, a.dtype)
    else:
        b = np.empty((cap, a.shape[1]), a.dtype)
    b[:n] = a[:n]
    return b


@_jit
def _quad_components(v, quads, k, ax, ay, az):
    """The x, y, z components of the four rows ``quads[k]`` of ``v``, into ``ax, ay, az``
    (the pattern as its array and row: a row view made per pattern costs more than this)."""
    for s in range(4):
        row = quads[k, s]
        ax[s], ay[s], az[s] = v[row, 0], v[row, 1], v[row, 2]


@_jit
def _query_keys(v_guess, combos, p, stop, bins, tol, ratios, largest, q_key, q_pat, work):
    """Step 1 of :func:`pattern_candidates`: every key of the patterns ``p:stop``.

    A pattern's keys are those of all bins within ``tol`` of its ratios, in
    lexicographic order of the bin offsets with the last ratio's fastest (as
    ``itertools.product`` in the reference). Writes the patterns' ratios and
    largest edges; returns the number of keys and the (possibly grown) key
    and owner arrays. ``work`` is a :class:`_Work` of scratch arrays.
    """
    e = work.e
    lo, span, digit, cur = work.lo, work.span, work.digit, work.cur
    n_q = 0
    for u in range(stop - p):
        r0, r1, r2, r3 = combos[p + u, 0], combos[p + u, 1], combos[p + u, 2], combos[p + u, 3]
        _edges_sorted(v_guess[r0, 0], v_guess[r0, 1], v_guess[r0, 2],
                      v_guess[r1, 0], v_guess[r1, 1], v_guess[r1, 2],
                      v_guess[r2, 0], v_guess[r2, 1], v_guess[r2, 2],
                      v_guess[r3, 0], v_guess[r3, 1], v_guess[r3, 2], e)
        largest[u] = e[5]
        if not e[5] > 0:
            continue
        n_keys = 1
        for t in range(5):
            ratios[u, t] = e[t] / e[5]
            lo[t] = _bin_index(ratios[u, t] - tol, bins)
            span[t] = np.int64(_bin_index(ratios[u, t] + tol, bins)) - lo[t] + 1
            n_keys *= span[t]
        if n_q + n_keys > q_key.shape[0]:
            cap = 2 * (n_q + n_keys)
            q_key = _grow(q_key, n_q, cap)
            q_pat = _grow(q_pat, n_q, cap)
        # the bins counted through like an odometer, the last digit fastest (the key's
        # mixed-radix digits by division cost ten integer divisions a key)
        for t in range(5):
            cur[t] = lo[t]
        for _ in range(n_keys):
            for t in range(5):
                digit[t] = cur[t]
            q_key[n_q] = _pack_key(digit[0], digit[1], digit[2], digit[3], digit[4],
                                   np.uint64(bins))
            q_pat[n_q] = u
            n_q += 1
            t = 4
            while t >= 0:
                cur[t] += 1
                if cur[t] < lo[t] + span[t]:
                    break
                cur[t] = lo[t]
                t -= 1
    return n_q, q_key, q_pat


@_jit
def _canonical_order4(v, quads, k, order, work):
    """Mirror of ``patterns.canonical_order`` for the pattern ``quads[k]``: increasing
    distance from the mean direction (a stable sort), written to ``order``."""
    ax, ay, az, dist = work.ax, work.ay, work.az, work.dist
    _quad_components(v, quads, k, ax, ay, az)
    mx = 0.25 * (ax[0] + ax[1] + ax[2] + ax[3])
    my = 0.25 * (ay[0] + ay[1] + ay[2] + ay[3])
    mz = 0.25 * (az[0] + az[1] + az[2] + az[3])
    for s in range(4):
        dist[s] = (ax[s] - mx) ** 2 + (ay[s] - my) ** 2 + (az[s] - mz) ** 2
        order[s] = s
    for i in range(1, 4):  # stable insertion sort of the indices
        j = i
        while j > 0 and dist[order[j - 1]] > dist[order[j]]:
            order[j - 1], order[j] = order[j], order[j - 1]
            j -= 1


@_jit
def _build_key_filter(keys_sorted, bits):
    """The key filter of sorted keys: bit ``key_hash(k, bits)`` set for every key ``k``,
    in ``2**bits`` bits (``bits >= 6``) packed into 64-bit words."""
    words = np.zeros(1 << (bits - 6), np.uint64)
    ubits = np.uint64(bits)
    for t in range(keys_sorted.shape[0]):
        h = np.uint64(_key_hash(np.uint64(keys_sorted[t]), ubits))
        words[h >> np.uint64(6)] |= np.uint64(1) << (h & np.uint64(63))
    return words


@_jit
def _may_hold(words, key, ubits):
    """Whether the key filter ``words`` may hold ``key`` (never False for a held key)."""
    h = np.uint64(_key_hash(np.uint64(key), ubits))
    return (words[h >> np.uint64(6)] >> (h & np.uint64(63))) & np.uint64(1) != 0


#: The key filter of each database's sorted keys: id -> (weak reference, words, bits).
_KEY_FILTERS: dict[int, tuple] = {}


def key_filter(keys_sorted):
    """The key filter (:func:`skysolve.solver.keys.key_hash`) of a database's sorted keys:
    ``(words, bits)``, built on first use (a few ms, before a solve's clock starts:
    :func:`skysolve.solver.backends.prepare`) and kept while the keys array lives."""
    entry = _KEY_FILTERS.get(id(keys_sorted))
    if entry is None or entry[0]() is not keys_sorted:
        n = keys_sorted.shape[0]
        distinct = int(np.count_nonzero(keys_sorted[1:] != keys_sorted[:-1])) + 1 if n else 0
        bits = _keys.filter_bits(distinct)
        entry = (weakref.ref(keys_sorted), _build_key_filter(keys_sorted, bits), bits)
        _KEY_FILTERS[id(keys_sorted)] = entry
        weakref.finalize(keys_sorted, _KEY_FILTERS.pop, id(keys_sorted), None)
    return entry[1], entry[2]


def pattern_candidates(v_guess, combos, start, ends, max_patterns, bins, tol, keys_sorted,
                       directory, shift, pattern_stars, star_xyz, hint, min_cos, f_guess,
                       f_lo, f_hi):
    """Catalog patterns matching image patterns (see the reference's ``pattern_candidates``):
    :func:`_pattern_candidates` with the database's key filter."""
    words, bits = key_filter(keys_sorted)
    return _pattern_candidates(v_guess, combos, start, ends, max_patterns, bins, tol,
                               keys_sorted, directory, shift, words, bits, pattern_stars,
                               star_xyz, hint, min_cos, f_guess, f_lo, f_hi)


@_jit
def _pattern_in_cone(star_xyz, pattern_stars, r, hint, min_cos):
    """Whether the four stars of catalog pattern ``r`` (columns of the component-major
    ``star_xyz``) lie within acos(``min_cos``) of the unit vector ``hint``."""
    for t in range(4):
        s = pattern_stars[r, t]
        if star_xyz[0, s] * hint[0] + star_xyz[1, s] * hint[1] + star_xyz[2, s] * hint[2] \
                < min_cos:
            return False
    return True


@_jit
def _pattern_edges(star_xyz, pattern_stars, r, ce):
    """Catalog pattern ``r``'s six inter-star angles, sorted, into ``ce``."""
    s0, s1 = pattern_stars[r, 0], pattern_stars[r, 1]
    s2, s3 = pattern_stars[r, 2], pattern_stars[r, 3]
    _edges_sorted(star_xyz[0, s0], star_xyz[1, s0], star_xyz[2, s0],
                  star_xyz[0, s1], star_xyz[1, s1], star_xyz[2, s1],
                  star_xyz[0, s2], star_xyz[1, s2], star_xyz[2, s2],
                  star_xyz[0, s3], star_xyz[1, s3], star_xyz[2, s3], ce)


@_jit
def _key_ranges(q_key, n_q, key_filter_words, ubits, directory, shift, q_lo, q_hi):
    """The directory range ``[q_lo, q_hi)`` of each of the first ``n_q`` query keys, an
    empty one for a key the filter does not hold (independent loads the CPU overlaps)."""
    for t in range(n_q):
        if not _may_hold(key_filter_words, q_key[t], ubits):
            q_lo[t] = q_hi[t] = 0
            continue
        bucket = np.int64(_key_bucket(q_key[t], np.uint64(shift)))
        q_lo[t] = directory[bucket]
        q_hi[t] = directory[bucket + 1]


@_jit
def _pattern_candidates(v_guess, combos, start, ends, max_patterns, bins, tol, keys_sorted,
                        directory, shift, key_filter_words, filter_bits, pattern_stars,
                        star_xyz, hint, min_cos, f_guess, f_lo, f_hi):
    """Catalog patterns matching image patterns (see the reference's ``pattern_candidates``).

    The database enters as its sorted keys, their directory
    (:func:`skysolve.solver.keys.key_directory`) and key filter
    (:func:`skysolve.solver.keys.key_hash`), pattern stars and component-major star
    table. Per chunk of patterns: (1) every query key, (2) the directory range of
    every key the filter may hold (an empty range for the others, most keys of
    patterns that match nothing) -- independent loads the CPU can overlap -- and (3)
    the catalog patterns under each key, checked in full.
    """
    ubits = np.uint64(filter_bits)
    cap = 16
    img_q = np.empty((cap, 4), np.intp)
    cat_q = np.empty((cap, 4), np.intp)
    f_est = np.empty(cap)
    c_big = np.empty(cap)
    k = 0
    work = _Work(np.empty(6), np.empty(6), np.empty(4), np.empty(4), np.empty(4), np.empty(4),
                 np.empty(5, np.int64), np.empty(5, np.int64), np.empty(5, np.uint64),
                 np.empty(5, np.int64))
    ce = work.ce
    order = np.empty(4, np.intp)
    chunk = 32
    ratios = np.empty((chunk, 5))
    largest = np.empty(chunk)
    q_key = np.empty(1024, np.uint64)
    q_pat = np.empty(1024, np.intp)
    q_lo = np.empty(1024, np.int64)
    q_hi = np.empty(1024, np.int64)
    n_rows = keys_sorted.shape[0]
    batch = 0
    while batch < ends.shape[0] - 1 and ends[batch] <= start:
        batch += 1
    p = start
    while p < ends[-1]:
        if p == ends[batch]:
            # a batch is complete: stop if it found something, or after enough patterns
            if k > 0 or p - start >= max_patterns:
                break
            batch += 1
        stop = min(p + chunk, ends[batch])
        n_q, q_key, q_pat = _query_keys(v_guess, combos, p, stop, bins, tol, ratios, largest,
                                        q_key, q_pat, work)
        if q_lo.shape[0] < n_q:
            q_lo = np.empty(q_key.shape[0], np.int64)
            q_hi = np.empty(q_key.shape[0], np.int64)
        _key_ranges(q_key, n_q, key_filter_words, ubits, directory, shift, q_lo, q_hi)
        have_order = -1
        for t in range(n_q):
            if q_hi[t] <= q_lo[t]:
                continue  # not in the filter, or an empty bucket
            key, u = q_key[t], q_pat[t]
            row = _first_at_least(keys_sorted, key, q_lo[t], q_hi[t])
            while row < n_rows and keys_sorted[row] == key:
                # whether catalog pattern ``row`` matches image pattern ``u`` (written out
                # here: a call per catalog pattern with its arrays cost more than the test):
                # its stars lie within acos(min_cos) of the unit vector ``hint`` (unless
                # ``hint`` is empty), its exact ratios agree within ``tol`` and the focal
                # length its scale implies lies in [f_lo, f_hi]
                r = row
                row += 1
                if hint.shape[0] > 0 and not _pattern_in_cone(star_xyz, pattern_stars, r, hint,
                                                              min_cos):
                    continue
                _pattern_edges(star_xyz, pattern_stars, r, ce)
                clargest = ce[5]
                if not clargest > 0:
                    continue
                ok = True
                for v in range(5):
                    if abs(ce[v] / clargest - ratios[u, v]) > tol:
                        ok = False
                        break
                if not ok:
                    continue
                f = f_guess * largest[u] / clargest
                if f >= f_lo and f <= f_hi:
                    if have_order != u:
                        _canonical_order4(v_guess, combos, p + u, order, work)
                        have_order = u
                    if k == cap:
                        cap *= 2
                        img_q, cat_q = _grow(img_q, k, cap), _grow(cat_q, k, cap)
                        f_est, c_big = _grow(f_est, k, cap), _grow(c_big, k, cap)
                    for s in range(4):
                        img_q[k, s] = combos[p + u, order[s]]
                        cat_q[k, s] = pattern_stars[r, s]
                    f_est[k] = f
                    c_big[k] = clargest
                    k += 1
        p = stop
    return img_q[:k], cat_q[:k], f_est[:k], c_big[:k], p


@_jit
def _pattern_residual(vi, cat4, c, R):
    """Largest angular residual (radians) of one candidate's four stars under ``R``."""
    worst = 0.0
    for t in range(4):
        d2 = 0.0
        for a in range(3):
            d = vi[t, a] - (R[a, 0] * cat4[c, t, 0] + R[a, 1] * cat4[c, t, 1]
                            + R[a, 2] * cat4[c, t, 2])
            d2 += d * d
        worst = max(worst, d2)
    return _chord_to_angle(math.sqrt(worst))


@_jit
def pattern_attitudes(ideal4, cat4, f_est, parities, proj):
    """Attitude of each candidate pattern pair, for the better of the allowed parities.

    ``ideal4`` (k, 4, 2) ideal pixel offsets, ``cat4`` (k, 4, 3) catalog
    vectors, ``parities`` the allowed parities in order of preference on a tie.
    Returns rotations (k, 3, 3), the largest star residual (k,) in radians and
    the parity chosen (k,).
    """
    k = ideal4.shape[0]
    R_out = np.empty((k, 3, 3))
    res_out = np.empty(k)
    par_out = np.zeros(k, np.bool_)
    vi = np.empty((4, 3))
    B = np.empty((3, 3))
    for c in range(k):
        R, res_out[c], par_out[c] = _attitude_of(ideal4, cat4, c, f_est[c], parities, proj,
                                                 vi, B)
        R_out[c] = R
    return R_out, res_out, par_out


@_jit
def pattern_attitude(ideal4, cat4, c, f, parities, proj):
    """``reference.pattern_attitude``: :func:`pattern_attitudes` of the one candidate ``c``
    at focal length ``f``, as (R, residual, parity) -- one array handed back, not three."""
    return _attitude_of(ideal4, cat4, c, f, parities, proj, np.empty((4, 3)),
                        np.empty((3, 3)))


@_jit
def _attitude_of(ideal4, cat4, c, f, parities, proj, vi, B):
    """Candidate ``c``'s attitude at focal length ``f`` for the better of ``parities``
    (the first on a tie): (R, largest star residual in radians, parity). ``vi`` (4, 3)
    and ``B`` (3, 3) are scratch."""
    best = np.inf
    first = True
    R_best = np.empty((3, 3))
    par = False
    for parity in parities:
        s = -1.0 if parity else 1.0
        for t in range(4):
            vi[t, 0], vi[t, 1], vi[t, 2] = _unit_from_ideal(ideal4[c, t, 0], ideal4[c, t, 1],
                                                            f, s, proj)
        for a in range(3):
            for b in range(3):
                acc = 0.0
                for t in range(4):
                    acc += vi[t, a] * cat4[c, t, b]
                B[a, b] = acc
        R = _wahba(B)
        res = _pattern_residual(vi, cat4, c, R)
        if not res == res:
            res = np.inf  # a star outside the projection's image
        if first or res < best:
            first = False
            best = res
            R_best = R
            par = parity
    return R_best, best, par


@_jit
def attitude_covariance(ideal, f, parity, proj, sigma):
    """``reference.attitude_covariance``: ``sigma^2 (sum(I - v v^T))^-1``.

    The 3x3 inverse is the adjugate over the determinant (NaN when singular,
    where numpy's inverse raises and the numpy path returns NaN too).
    """
    s = -1.0 if parity else 1.0
    a = np.zeros((3, 3))
    v = np.empty(3)
    for t in range(ideal.shape[0]):
        v[0], v[1], v[2] = _unit_from_ideal(ideal[t, 0], ideal[t, 1], f, s, proj)
        for i in range(3):
            for j in range(3):
                a[i, j] -= v[i] * v[j]
            a[i, i] += 1.0
    cof = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            i1, i2 = (i + 1) % 3, (i + 2) % 3
            j1, j2 = (j + 1) % 3, (j + 2) % 3
            # cyclic indices give the signed cofactor directly
            cof[j, i] = a[i1, j1] * a[i2, j2] - a[i1, j2] * a[i2, j1]
    det = a[0, 0] * cof[0, 0] + a[0, 1] * cof[1, 0] + a[0, 2] * cof[2, 0]
    if det == 0.0:
        cof[:, :] = np.nan
        return cof
    return cof * (sigma * sigma / det)


#: Up to this many values :func:`_stable_argsort` counts ranks rather than sorting.
_RANK_SORT_MAX = 96


@_jit
def _stable_ranks(x):
    """Each value's place in a stable sort of ``x`` (ties in order of position); an empty
    array when ``x`` holds a NaN or more than :data:`_RANK_SORT_MAX` values.

    Counted, not sorted: every value against every other, in comparisons without a
    branch that the compiler turns into vector instructions. On the few dozen matches
    and centroids of a small field that takes 0.6 us against a mergesort's 1.7, whose
    data-dependent branches mispredict on fresh data (a solve sorts a dozen such
    arrays); the quadratic count loses beyond about a hundred values.
    """
    n = x.shape[0]
    if n > _RANK_SORT_MAX:
        return np.empty(0, np.intp)
    for i in range(n):
        if not x[i] == x[i]:
            return np.empty(0, np.intp)
    rank = np.empty(n, np.intp)
    for i in range(n):
        xi = x[i]
        r = np.int32(0)
        for j in range(n):
            r += np.int32((x[j] < xi) | ((x[j] == xi) & (j < i)))
        rank[i] = r
    return rank


@_jit
def _stable_argsort(x):
    """``np.argsort(x, kind="mergesort")`` (see :func:`_stable_ranks`)."""
    n = x.shape[0]
    rank = _stable_ranks(x)
    if rank.shape[0] != n:
        return np.argsort(x, kind="mergesort")
    order = np.empty(n, np.intp)
    for i in range(n):
        order[rank[i]] = i
    return order


@_jit
def _sorted(x):
    """``np.sort(x)`` (see :func:`_stable_ranks`)."""
    n = x.shape[0]
    rank = _stable_ranks(x)
    if rank.shape[0] != n:
        return np.sort(x)
    out = np.empty(n, x.dtype)
    for i in range(n):
        out[rank[i]] = x[i]
    return out


@_jit
def solution_arrays(ideal, xy, img_idx, cat_idx, err, star_ra_deg, star_dec_deg, f, parity,
                    proj, sigma):
    """``reference.solution_arrays``: a result's arrays and statistics in one call (they
    were a dozen numpy calls on a few dozen matches, ~9 us of a small-field solve)."""
    n = img_idx.shape[0]
    order = _stable_argsort(img_idx)  # stable, as the reference's
    rows = np.empty(n, img_idx.dtype)
    stars = np.empty(n, cat_idx.dtype)
    xy_m = np.empty((n, 2), xy.dtype)
    ideal_m = np.empty((n, 2))
    radec = np.empty((n, 2))
    res = np.empty(n)
    for t in range(n):
        o = order[t]
        r = img_idx[o]
        c = cat_idx[o]
        rows[t] = r
        stars[t] = c
        xy_m[t, 0] = xy[r, 0]
        xy_m[t, 1] = xy[r, 1]
        ideal_m[t, 0] = ideal[r, 0]
        ideal_m[t, 1] = ideal[r, 1]
        radec[t, 0] = star_ra_deg[c]
        radec[t, 1] = star_dec_deg[c]
        res[t] = err[o] * _ARCSEC_PER_RAD
    srt = _sorted(err)
    pos = 90.0 / 100.0 * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    v_lo = srt[lo] * _ARCSEC_PER_RAD
    v_hi = srt[hi] * _ARCSEC_PER_RAD
    p90 = v_lo + (pos - lo) * (v_hi - v_lo)
    cov = attitude_covariance(ideal_m, f, parity, proj, sigma)
    return rows, stars, xy_m, radec, res, p90, srt[n - 1] * _ARCSEC_PER_RAD, cov


# ------------------------------------------------------------------------------------
# Verification and refinement


@_jit
def in_image(vectors, R, f, parity, proj, cx, cy, half_w, half_h, count):
    """``reference.in_image``: rows of ``vectors`` projecting inside the image.

    Returns the first ``count`` rows and their ideal pixel offsets.
    """
    n = vectors.shape[0]
    rows = np.empty(min(n, count), np.intp)
    p = np.empty((min(n, count), 2))
    s = -1.0 if parity else 1.0
    k = 0
    for i in range(n):
        if k == count:
            break
        x = R[0, 0] * vectors[i, 0] + R[0, 1] * vectors[i, 1] + R[0, 2] * vectors[i, 2]
        y = R[1, 0] * vectors[i, 0] + R[1, 1] * vectors[i, 1] + R[1, 2] * vectors[i, 2]
        z = R[2, 0] * vectors[i, 0] + R[2, 1] * vectors[i, 1] + R[2, 2] * vectors[i, 2]
        qx, qy = _plane_of(x, y, z, proj)
        if not qx == qx:
            continue
        px = s * qx * f
        py = qy * f
        if abs(px + cx) <= half_w and abs(py + cy) <= half_h:
            rows[k] = i
            p[k, 0] = px
            p[k, 1] = py
            k += 1
    return rows[:k], p[:k]


@_jit
def _match_sweep(img, cat, radius, outer, claims):
    """One-to-one pairs within ``radius`` and the number of pairs in ``(radius, outer]``.

    A sweep over the image rows sorted by x: each catalog star looks only at
    the rows in its x window. The pairs are mutually nearest (a pair that is
    mutually nearest within ``radius`` is mutually nearest overall, so nothing
    farther matters), or with ``claims`` those of ``reference.kdtree_matches``:
    each star takes its nearest centroid closer than ``radius`` (strictly, as the
    KD-tree's upper bound) and a centroid claimed by several stars keeps the
    closest (ties to the lower catalog row, as the reference's stable sort). Ties
    between centroids go to the lower row, as numpy's argmin does (the KD-tree's
    traversal decides there: they differ only for centroids given twice at one
    position). Returns (image rows, catalog rows ascending, distances, pairs in the
    annulus).
    """
    n, m = img.shape[0], cat.shape[0]
    xs = np.empty(n)
    for t in range(n):
        xs[t] = img[t, 0]
    order = _stable_argsort(xs)
    for t in range(n):
        xs[t] = img[order[t], 0]
    near_img = np.full(m, -1, np.intp)   # nearest image row of each catalog star
    d_cat = np.full(m, np.inf)
    near_cat = np.full(n, -1, np.intp)
    d_img = np.full(n, np.inf)
    r2, o2 = radius * radius, outer * outer
    reach = max(radius, outer)
    annulus = 0
    for j in range(m):
        cx, cy = cat[j, 0], cat[j, 1]
        t = _first_at_least(xs, cx - reach, 0, n)
        while t < n and xs[t] <= cx + reach:
            i = order[t]
            t += 1
            dx = cx - img[i, 0]
            dy = cy - img[i, 1]
            d2 = dx * dx + dy * dy
            if d2 > r2:
                if d2 <= o2:
                    annulus += 1
                continue
            if d2 < d_cat[j] or (d2 == d_cat[j] and i < near_img[j]):
                d_cat[j] = d2
                near_img[j] = i
            if d2 < d_img[i] or (d2 == d_img[i] and j < near_cat[i]):
                d_img[i] = d2
                near_cat[i] = j
    out_i = np.empty(min(n, m), np.intp)
    out_j = np.empty(min(n, m), np.intp)
    out_d = np.empty(min(n, m))
    k = 0
    if claims:
        owner = np.full(n, -1, np.intp)
        owner_d = np.full(n, np.inf)
        for j in range(m):
            i = near_img[j]
            if i >= 0 and d_cat[j] < r2:
                d = math.sqrt(d_cat[j])
                if d < owner_d[i]:  # (an equal distance from a later star loses)
                    owner_d[i] = d
                    owner[i] = j
        for j in range(m):
            i = near_img[j]
            if i >= 0 and owner[i] == j:
                out_i[k] = i
                out_j[k] = j
                out_d[k] = owner_d[i]
                k += 1
        return out_i[:k], out_j[:k], out_d[:k], annulus
    for j in range(m):
        i = near_img[j]
        if i >= 0 and near_cat[i] == j:
            out_i[k] = i
            out_j[k] = j
            out_d[k] = math.sqrt(d_cat[j])
            k += 1
    return out_i[:k], out_j[:k], out_d[:k], annulus


@_jit
def _mutual_small(img, cat, radius):
    """The small-problem branch of ``reference.mutual_matches`` (mutual nearest pairs).

    Pairs (image row, catalog row) that are each other's nearest neighbour and
    within ``radius``, in increasing catalog row; returns (i, j, distance).
    """
    i, j, d, _ = _match_sweep(img, cat, radius, radius, False)
    return i, j, d


#: ``reference.BRUTE_FORCE_PAIRS``: above this many (centroid, star) pairs the matches
#: are the KD-tree's (:func:`_claims`), below, mutual nearest neighbours.
_BRUTE_FORCE_PAIRS = _reference.BRUTE_FORCE_PAIRS
#: ``reference.CLIP_FLOOR_FRACTION`` and ``CLIP_FLOOR_PX`` (a refinement's smallest clip)
_CLIP_FLOOR_FRACTION = _reference.CLIP_FLOOR_FRACTION
_CLIP_FLOOR_PX = _reference.CLIP_FLOOR_PX
#: ``reference.FIT_CLOSE``, ``FIT_CONVERGED`` and ``FIT_ROUNDS`` (:func:`converged_fit`)
_FIT_CLOSE = _reference.FIT_CLOSE
_FIT_CONVERGED = _reference.FIT_CONVERGED
_FIT_ROUNDS = _reference.FIT_ROUNDS
#: Up to this many pairs a refinement runs in one kernel (its sweeps scan a strip of
#: the image per star; beyond, the reference loop's KD-trees cost less).
_KERNEL_REFINE_PAIRS = 250_000


@_jit
def _claims(img, cat, radius):
    """``reference.kdtree_matches`` (see :func:`_match_sweep`): (image rows, catalog rows
    ascending, distances)."""
    i, j, d, _ = _match_sweep(img, cat, radius, radius, True)
    return i, j, d


@_jit
def _crowding_chance(annulus_pairs, n_img, radius, outer):
    r2, o2 = radius * radius, outer * outer
    return annulus_pairs * r2 / (o2 - r2) / max(n_img, 1)


@_jit
def crowding(img, cat, radius, outer):
    """``reference.crowding``: mean per-centroid chance of meeting a catalog star.

    From the (centroid, star) pairs at distances in ``(radius, outer]``.
    """
    annulus = _match_sweep(img, cat, radius, outer, False)[3]
    return _crowding_chance(annulus, img.shape[0], radius, outer)


@_jit
def verify_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, half_h, count,
                  radius, outer):
    """``reference.verify_counts``: (stars in the image, matched centroid rows, match
    distances, crowding).

    The catalog ``vectors`` are projected (the first ``count`` inside the
    image kept), matched one-to-one with the first ``n_img`` centroids (rows
    and distances in increasing catalog row: mutual nearest neighbours, or the
    KD-tree's claims above ``reference.BRUTE_FORCE_PAIRS`` pairs, as the reference),
    and the crowding term of ``reference.crowding`` computed.
    """
    rows, p = in_image(vectors, R, f, parity, proj, cx, cy, half_w, half_h, count)
    if rows.shape[0] == 0:
        return 0, np.zeros(0, np.intp), np.zeros(0), 0.0
    # (above the brute-force size the reference matches by KD-tree claims)
    i, _, d, annulus = _match_sweep(ideal[:n_img], p, radius, outer,
                                    n_img * p.shape[0] > _BRUTE_FORCE_PAIRS)
    return rows.shape[0], i, d, _crowding_chance(annulus, n_img, radius, outer)


@_jit
def fine_counts(ideal, n_img, anchors, rows, dist, radii, slack):
    """``reference.fine_counts``: matches and centroids at finer radii, away from the
    pattern stars ``anchors``."""
    gap = np.empty(n_img)
    for i in range(n_img):
        best = np.inf
        for a in range(anchors.shape[0]):
            dx = ideal[i, 0] - anchors[a, 0]
            dy = ideal[i, 1] - anchors[a, 1]
            d = math.sqrt(dx * dx + dy * dy)
            if d < best:
                best = d
        gap[i] = best
    k = np.zeros(radii.shape[0], np.intp)
    n_far = np.zeros(radii.shape[0], np.intp)
    for t in range(radii.shape[0]):
        rho = radii[t]
        edge = rho / slack
        for i in range(n_img):
            if gap[i] >= edge:
                n_far[t] += 1
        for m in range(rows.shape[0]):
            if dist[m] <= rho and gap[rows[m]] >= edge:
                k[t] += 1
    return k, n_far


@_jit
def verify_tail_counts(ideal, n_img, vectors, R, f, parity, proj, cx, cy, half_w, half_h,
                       count, radius, outer, anchors, radii, slack):
    """``reference.verify_tail_counts``: :func:`verify_counts` and :func:`fine_counts` in
    one dispatch, the match rows and distances kept inside the kernel."""
    n_cat, rows, dist, crowd = verify_counts(ideal, n_img, vectors, R, f, parity, proj, cx,
                                             cy, half_w, half_h, count, radius, outer)
    if n_cat == 0 or radii.shape[0] == 0:
        return n_cat, rows.shape[0], crowd, np.zeros(0, np.intp), np.zeros(0, np.intp)
    k, n_far = fine_counts(ideal, n_img, anchors, rows, dist, radii, slack)
    return n_cat, rows.shape[0], crowd, k, n_far


@_jit
def _fit_rotation(ideal, v_cat, use, f, s, proj, v_img):
    """Image vectors at focal length ``f`` (written to ``v_img``) and the Wahba rotation of
    the pairs ``use`` whose centroid is imaged; (R, number of pairs fitted)."""
    for t in range(ideal.shape[0]):
        v_img[t, 0], v_img[t, 1], v_img[t, 2] = _unit_from_ideal(ideal[t, 0], ideal[t, 1], f,
                                                                 s, proj)
    B = np.zeros((3, 3))
    n_fit = 0
    for u in use:
        if not v_img[u, 2] == v_img[u, 2]:
            continue
        n_fit += 1
        for a in range(3):
            for b in range(3):
                B[a, b] += v_img[u, a] * v_cat[u, b]
    return _wahba(B), n_fit


@_jit
def fit_pairs(ideal, v_cat, use, f, parity, proj, fixed_camera):
    """``reference.fit_pairs``: attitude (and focal length) from the pairs ``use``.

    Returns (R, f, per-pair angular residuals in radians, ok); ``ok`` is False
    when the focal-length fit fails.
    """
    n = ideal.shape[0]
    s = -1.0 if parity else 1.0
    v_img = np.empty((n, 3))
    err = np.full(n, np.inf)
    R, n_fit = _fit_rotation(ideal, v_cat, use, f, s, proj, v_img)
    if n_fit < 2:
        return np.eye(3), f, err, False
    if not fixed_camera:
        num = 0.0
        den = 0.0
        for u in use:
            if not v_img[u, 2] == v_img[u, 2]:
                continue
            x = R[0, 0] * v_cat[u, 0] + R[0, 1] * v_cat[u, 1] + R[0, 2] * v_cat[u, 2]
            y = R[1, 0] * v_cat[u, 0] + R[1, 1] * v_cat[u, 1] + R[1, 2] * v_cat[u, 2]
            z = R[2, 0] * v_cat[u, 0] + R[2, 1] * v_cat[u, 1] + R[2, 2] * v_cat[u, 2]
            qx, qy = _plane_of(x, y, z, proj)
            num += s * ideal[u, 0] * qx + ideal[u, 1] * qy
            den += qx * qx + qy * qy
        f_new = num / den if den > 0 else np.nan
        if not (math.isfinite(f_new) and f_new > 0):
            return R, f, err, False
        if abs(f_new - f) > 1e-9 * f_new:
            f = f_new
            R, n_fit = _fit_rotation(ideal, v_cat, use, f, s, proj, v_img)
            if n_fit < 2:
                return R, f, err, False
    for t in range(n):
        d2 = 0.0
        for a in range(3):
            d = v_img[t, a] - (R[a, 0] * v_cat[t, 0] + R[a, 1] * v_cat[t, 1]
                               + R[a, 2] * v_cat[t, 2])
            d2 += d * d
        e = _chord_to_angle(math.sqrt(d2))
        err[t] = e if e == e else np.inf
    return R, f, err, True


@_jit
def _smallest(err, h):
    """``np.sort(np.argsort(err, kind="mergesort")[:h])``: the rows of the ``h`` smallest
    values (ties to the lower row), in increasing row (see :func:`_stable_ranks`)."""
    rank = _stable_ranks(err)
    if rank.shape[0] != err.shape[0]:
        return np.sort(np.argsort(err, kind="mergesort")[:h])
    out = np.empty(min(h, err.shape[0]), np.intp)
    k = 0
    for i in range(err.shape[0]):
        if rank[i] < h:
            out[k] = i
            k += 1
    return out


@_jit
def converged_fit(ideal, v_cat, use, R, f, f_from, err, parity, proj):
    """``reference.converged_fit``: the pairs' least-squares attitude and focal length from
    their fit ``(R, f, err)`` from ``f_from``; returns ``(R, f, residuals)``."""
    if not abs(f - f_from) > _FIT_CLOSE * f:
        return R, f, err
    f0 = f_from
    f1 = f
    R1 = R
    err1 = err
    for _ in range(_FIT_ROUNDS):
        R2, f2, err2, ok = fit_pairs(ideal, v_cat, use, f1, parity, proj, False)
        if not ok:
            return R, f, err
        if abs(f2 - f1) <= _FIT_CONVERGED * f1:
            R1, f1, err1 = R2, f2, err2
            break
        bend = f2 - 2.0 * f1 + f0
        jump = f0 - (f1 - f0) ** 2 / bend if bend != 0.0 else f2
        if not (math.isfinite(jump) and jump > 0.0):
            jump = f2
        R1, f1, err1, ok = fit_pairs(ideal, v_cat, use, jump, parity, proj, False)
        if not ok:
            return R, f, err
        f0 = jump
        if abs(f1 - f0) <= _FIT_CONVERGED * f0:
            break
    before = 0.0
    after = 0.0
    for u in use:
        before += err[u] * err[u]
        after += err1[u] * err1[u]
    if not after <= before:
        return R, f, err
    return R1, f1, err1


@_jit
def trimmed_fit(ideal, v_cat, f, parity, proj, fixed_camera, h, steps):
    """``reference.trimmed_fit``.

    Returns (R, f, err) of the first fit, (R, f, err) of the last fit, the
    core pairs ranked best by the last fit, and ok (False when a focal-length
    fit failed).
    """
    n = ideal.shape[0]
    core = np.arange(n)
    R0, f0, err0, ok = fit_pairs(ideal, v_cat, core, f, parity, proj, fixed_camera)
    R, f1, err = R0, f0, err0
    for step in range(steps):
        if step:
            R, f1, err, ok = fit_pairs(ideal, v_cat, core, f1, parity, proj, fixed_camera)
        if not ok:
            break
        new_core = _smallest(err, h)
        same = new_core.shape[0] == core.shape[0]
        if same:
            for t in range(core.shape[0]):
                if new_core[t] != core[t]:
                    same = False
                    break
        if same:
            break
        core = new_core
    return R0, f0, err0, R, f1, err, core, ok


@_jit
def _same(a, b):
    if a.shape[0] != b.shape[0]:
        return False
    for t in range(a.shape[0]):
        if a[t] != b[t]:
            return False
    return True


@_jit
def _refine_kernel(ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy, half_w, half_h,
                  radius, iterations, sigma_clip):
    """``reference.refine`` in one kernel: its matches are mutual nearest neighbours up to
    ``reference.BRUTE_FORCE_PAIRS`` pairs and the KD-tree's claims (:func:`_claims`)
    beyond, both by sweeps.

    ``v_all`` holds the catalog cone's vectors. Returns (ok, R, f, image rows,
    cone rows, residuals in radians) of the kept matches.
    """
    n_img_all = ideal_all.shape[0]
    count = 3 * n_img_all
    img_idx = np.zeros(0, np.intp)
    cat_rows = np.zeros(0, np.intp)
    err = np.zeros(0)
    keep = np.zeros(0, np.bool_)
    for it in range(iterations + 1):
        rows, p = in_image(v_all, R, f, parity, proj, cx, cy, half_w, half_h, count)
        if rows.shape[0] == 0:
            return False, R, f, img_idx, cat_rows, err
        n_img = min(n_img_all, max(3 * rows.shape[0], 50))
        if n_img * p.shape[0] <= _BRUTE_FORCE_PAIRS:
            i, j, _ = _mutual_small(ideal_all[:n_img], p, radius)
        else:
            i, j, _ = _claims(ideal_all[:n_img], p, radius)
        if i.shape[0] < 3:
            return False, R, f, img_idx, cat_rows, err
        if it and _same(i, img_idx) and _same(rows[j], cat_rows):
            break  # the matches did not change: the last fit is final
        img_idx = i
        cat_rows = rows[j]
        ideal = ideal_all[img_idx]
        v_cat = v_all[cat_rows]
        h = min(i.shape[0], max(5, math.ceil(0.6 * i.shape[0])))
        f_from = f
        R0, f0, err0, R, f, err, core, ok = trimmed_fit(ideal, v_cat, f, parity, proj,
                                                        fixed_camera, h, 8 if it == 0 else 1)
        if not ok:
            return False, R, f, img_idx, cat_rows, err
        floor = max(_CLIP_FLOOR_FRACTION * radius, _CLIP_FLOOR_PX) / f
        c = _sorted(err[core])
        m = c.shape[0]
        median = 0.5 * (c[(m - 1) // 2] + c[m // 2])
        keep = err <= max(sigma_clip * 1.4826 * median, floor)
        n_keep = np.count_nonzero(keep)
        if n_keep < 3:
            return False, R, f, img_idx, cat_rows, err
        if n_keep == keep.shape[0]:
            R, f, err = R0, f0, err0  # nothing clipped: the first fit used exactly these
        else:
            f_from = f
            R, f, err, ok = fit_pairs(ideal, v_cat, np.flatnonzero(keep), f, parity, proj,
                                      fixed_camera)
            if not ok:
                return False, R, f, img_idx, cat_rows, err
    if not fixed_camera and (cx != 0.0 or cy != 0.0):
        # (an optical centre off the image's: the stars off the axis, on one side)
        R, f, err = converged_fit(ideal, v_cat, np.flatnonzero(keep), R, f, f_from, err,
                                  parity, proj)
    return True, R, f, img_idx[keep], cat_rows[keep], err[keep]


# ------------------------------------------------------------------------------------
# The functions of the interface that choose between a kernel and the reference loop


def mutual_matches(img, cat, radius):
    """One-to-one pairs (image row, catalog row, distance) within ``radius`` pixels.

    Small problems: the x-sorted sweep (mutual nearest neighbours); large ones:
    the reference's KD-tree matching.
    """
    if len(img) * len(cat) > _reference.BRUTE_FORCE_PAIRS:
        return _reference.mutual_matches(img, cat, radius)
    return _mutual_small(img, cat, radius)


def refine(ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy, half_w, half_h, radius,
           iterations, sigma_clip):
    """Re-match and refit (see the reference's ``refine``): one kernel up to
    :data:`_KERNEL_REFINE_PAIRS` (centroid, star) pairs, the reference loop with compiled
    pieces for larger fields."""
    if len(ideal_all) * 3 * len(ideal_all) <= _KERNEL_REFINE_PAIRS:
        return _refine_kernel(ideal_all, v_all, R, f, parity, proj, fixed_camera, cx, cy,
                              half_w, half_h, radius, iterations, sigma_clip)
    return _reference.refine_with(_PRIMITIVES, ideal_all, v_all, R, f, parity, proj,
                                  fixed_camera, cx, cy, half_w, half_h, radius, iterations,
                                  sigma_clip)


def brightest_in_cone(index, centre, radius_rad, count):
    """The ``count`` brightest stars of a sky index in a cone: (rows, unit vectors).

    The table is brightest first, so a scan in table order can stop at the
    count-th star in the cone, after about ``count / cone_fraction`` rows; sky
    cells touch only rows near the cone but cost more per cell. The cheaper is
    taken; a scan that runs long (a sparse cone) hands over.
    """
    radius = min(radius_rad, math.pi)
    chord = 2.0 * math.sin(0.5 * radius) * (1 + 1e-12)  # as the KD-tree query
    min_dot = 1.0 - 0.5 * chord * chord
    cone_fraction = max(0.5 * (1.0 - math.cos(radius)), 1e-12)
    x, y, z = np.asarray(centre, dtype=np.float64).tolist()
    norm = math.sqrt(x * x + y * y + z * z)
    x, y, z = x / norm, y / norm, z / norm
    scan_rows = 1.5 * count / cone_fraction
    cells = index.cells
    if _CELL_COST * (2.0 * radius / cells[-1] + 2.0) ** 2 > scan_rows:
        idx, v, scanned = cone_scan(index.vectors, x, y, z, min_dot, count,
                                    int(4 * scan_rows) + 1000)
        if len(idx) == count or scanned == len(index.vectors):
            return idx, v
    return cone_query(*cells, math.atan2(y, x) % (2 * math.pi),
                      math.asin(max(-1.0, min(1.0, z))), radius, x, y, z, min_dot, count,
                      int(scan_rows) + 64)


class _Primitives:
    """The compiled pieces the reference's refinement loop uses for large fields."""

    in_image = staticmethod(in_image)
    mutual_matches = staticmethod(mutual_matches)
    trimmed_fit = staticmethod(trimmed_fit)
    fit_pairs = staticmethod(fit_pairs)
    converged_fit = staticmethod(converged_fit)


_PRIMITIVES = _Primitives


# ------------------------------------------------------------------------------------
# Tracking


@_jit
def _floor_divide(a, b):
    """numpy's floor division of two floats (its ``npy_divmod``), not ``floor(a / b)``:
    the two differ where ``a / b`` rounds up to a whole number, and the offset cells of
    :func:`offset_pairs` must be the reference's. Away from whole numbers they agree: the
    rounded quotient lies within ``|a / b| 2^-52`` of the exact one, so a quotient more
    than 1e-6 from a whole number (and below 1e9) has the exact floor, without the
    remainder (``fmod`` took most of the vote's time)."""
    q = a / b
    whole = math.floor(q)
    if 1e-6 < q - whole < 1.0 - 1e-6 and abs(q) < 1e9:
        return whole
    mod = np.fmod(a, b)
    div = (a - mod) / b
    if mod != 0.0 and (b < 0.0) != (mod < 0.0):
        div -= 1.0
    if div == 0.0:
        return math.copysign(0.0, a / b)
    whole = math.floor(div)
    if div - whole > 0.5:
        whole += 1.0
    return whole


@_jit
def _unique_pairs(ii, jj, miss, n_i, n_j):
    """Positions of pairs ``(ii, jj)`` keeping one star per centroid and one centroid per
    star, the smallest ``miss`` first (``reference.unique_pairs`` of ``-miss``); centroid
    rows lie below ``n_i``, star rows below ``n_j``."""
    n = ii.shape[0]
    seen_i = np.zeros(n_i, np.bool_)
    seen_j = np.zeros(n_j, np.bool_)
    twice = False
    for t in range(n):
        if seen_i[ii[t]] or seen_j[jj[t]]:
            twice = True
        seen_i[ii[t]] = True
        seen_j[jj[t]] = True
    if not twice:
        return np.arange(n)
    order = _stable_argsort(miss)  # (stable, as the reference's)
    seen_i[:] = False
    seen_j[:] = False
    keep = np.empty(n, np.intp)
    k = 0
    for t in range(n):  # first the centroids' closest ...
        row = order[t]
        if not seen_i[ii[row]]:
            seen_i[ii[row]] = True
            keep[k] = row
            k += 1
    out = np.empty(k, np.intp)
    m = 0
    for t in range(k):  # ... then of those, the stars'
        row = keep[t]
        if not seen_j[jj[row]]:
            seen_j[jj[row]] = True
            out[m] = row
            m += 1
    return out[:m]


@_jit
def offset_pairs(img, p, search_px, cell, cells, cos_roll, sin_roll):
    """The candidate pairs in the densest block of offsets (``reference.offset_pairs``)."""
    n, m = img.shape[0], p.shape[0]
    s2 = search_px * search_px
    ii = np.empty(n * m, np.intp)
    jj = np.empty(n * m, np.intp)
    k = 0
    for i in range(n):  # (by centroid, then star: np.nonzero's order)
        for j in range(m):
            dx = img[i, 0] - p[j, 0]
            dy = img[i, 1] - p[j, 1]
            if dx * dx + dy * dy <= s2:
                ii[k] = i
                jj[k] = j
                k += 1
    if k < 3:
        return ii[:0], jj[:0]
    n_rolls = cos_roll.shape[0]
    counts = np.zeros((n_rolls, cells, cells), np.int64)
    for r in range(n_rolls):
        c, s = cos_roll[r], sin_roll[r]
        for t in range(k):
            px, py = p[jj[t], 0], p[jj[t], 1]
            x = _floor_divide(img[ii[t], 0] - (c * px - s * py) + search_px, cell)
            y = _floor_divide(img[ii[t], 1] - (s * px + c * py) + search_px, cell)
            if 0.0 <= x < cells and 0.0 <= y < cells:
                counts[r, int(x), int(y)] += 1
    # the densest block of 2x2 cells, the first of equals in (roll, x, y) order
    best, br, bx, by = -1, 0, 0, 0
    for r in range(n_rolls):
        for x in range(cells - 1):
            for y in range(cells - 1):
                b = counts[r, x, y] + counts[r, x + 1, y] + counts[r, x, y + 1] \
                    + counts[r, x + 1, y + 1]
                if b > best:
                    best, br, bx, by = b, r, x, y
    if best < 3:
        return ii[:0], jj[:0]
    c, s = cos_roll[br], sin_roll[br]
    mx = (bx + 1.0) * cell - search_px
    my = (by + 1.0) * cell - search_px
    rows = np.empty(k, np.intp)
    miss = np.empty(k)
    n_rows = 0
    for t in range(k):
        px, py = p[jj[t], 0], p[jj[t], 1]
        d = max(abs(img[ii[t], 0] - (c * px - s * py) - mx),
                abs(img[ii[t], 1] - (s * px + c * py) - my))
        if d <= cell:
            rows[n_rows] = t
            miss[n_rows] = d
            n_rows += 1
    rows = rows[:n_rows]
    sel_i = ii[rows]
    sel_j = jj[rows]
    keep = _unique_pairs(sel_i, sel_j, miss[:n_rows], n, m)
    return sel_i[keep], sel_j[keep]


@_jit
def fit_shares(v, u, normal, f):
    """Each match's share of a rotation fit's residuals (``reference.fit_shares``: the same
    sums in the same order, so the same bits)."""
    n = u.shape[0]
    out = np.empty(n)
    for k in range(n):
        u0, u1, u2 = u[k, 0], u[k, 1], u[k, 2]
        r0, r1, r2 = v[k, 0] - u0, v[k, 1] - u1, v[k, 2] - u2
        t0, t1, t2 = u1 * r2 - u2 * r1, u2 * r0 - u0 * r2, u0 * r1 - u1 * r0
        m00, m11, m22 = normal[0, 0] + u0 * u0, normal[1, 1] + u1 * u1, normal[2, 2] + u2 * u2
        m01, m02, m12 = normal[0, 1] + u0 * u1, normal[0, 2] + u0 * u2, normal[1, 2] + u1 * u2
        c00, c11, c22 = m11 * m22 - m12 * m12, m00 * m22 - m02 * m02, m00 * m11 - m01 * m01
        c01, c02, c12 = m02 * m12 - m01 * m22, m01 * m12 - m02 * m11, m01 * m02 - m00 * m12
        det = m00 * c00 + m01 * c01 + m02 * c02
        pull = (c00 * t0 * t0 + c11 * t1 * t1 + c22 * t2 * t2
                + 2.0 * (c01 * t0 * t1 + c02 * t0 * t2 + c12 * t1 * t2)) / det
        left = r0 * r0 + r1 * r1 + r2 * r2 + pull
        out[k] = math.sqrt(0.0 if left < 0.0 else left) * f  # (NaN stays, as np.maximum's)
    return out
