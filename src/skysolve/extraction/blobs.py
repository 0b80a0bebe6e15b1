"""Per-blob measurements of the extractor: moments, sharpness, blends and sub-pixel fits.

Everything is vectorised over blobs (no Python loop over stars; compiled twins of the
sums and the fits in :mod:`.kernels`). Blobs are the
8-connected components of the detection mask; index 0 of every per-label
array is the (unused) background label.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .. import _threads
from .background import Background
from .filters import _along_grid, _elongation, _moments
from .kernels import compiled, thread_count
from .orderstats import median
from .psffit import fit_gaussian_stamps


def _measure_blobs(work: NDArray[np.float32], bg: Background, labels: NDArray,
                   idx: NDArray[np.intp], idx_bg: NDArray[np.float64], nblobs: int,
                   bad: NDArray | None, sat_level: float | None,
                   need_bbox: bool = True) -> dict[str, NDArray]:
    """Per-blob statistics from the blob pixels (flat indices ``idx``, background
    there ``idx_bg``), vectorised.

    Index 0 of every returned array is the (unused) background label.
    """
    h, w = labels.shape
    n = nblobs + 1
    sums = compiled("blob_sums_of")
    if sums is not None:
        gather = compiled("blob_pixels")
        m = len(idx)
        lab, rows, cols = np.empty(m, labels.dtype), np.empty(m, np.intp), np.empty(m, np.intp)
        raw, val = np.empty(m, work.dtype), np.empty(m)
        # (a gather that misses the cache at every pixel: chunks on the threads, each
        # writing its share of the arrays)
        _threads.run_chunks(lambda a, b: gather(labels, work, idx[a:b], idx_bg[a:b], lab[a:b],
                                                rows[a:b], cols[a:b], raw[a:b], val[a:b]),
                            _threads.split(m, thread_count(), _GATHER_CHUNK))
        out = (npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy) = (
            np.zeros(n, np.intp), np.zeros(n), np.full(n, -np.inf), np.zeros(n, np.intp),
            np.zeros(n, np.intp), np.zeros(n), *(np.empty(n) for _ in range(5)))
        # the blobs shared out by label (each scans every pixel for its own): a blob's sums
        # do not depend on the share; the second share starts at the middle pixel's blob
        shares = [(0, n)]
        if thread_count() > 1 and m >= _SUMS_SPLIT:
            half = int(lab[m // 2])
            shares = [(0, half), (half, n)]
        _threads.run_chunks(lambda lo, hi: sums(lab, rows, cols, val, lo, hi, *out), shares)
    else:
        lab = labels.ravel()[idx]
        rows, cols = np.divmod(idx, w)
        raw = work.ravel()[idx]
        val = raw.astype(np.float64) - idx_bg
        npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy = _blob_sums(lab, idx, val, n, w)

    # bounding boxes (only the border filter needs them)
    if need_bbox:
        rmin = np.full(n, h, dtype=np.intp)
        rmax = np.full(n, -1, dtype=np.intp)
        cmin = np.full(n, w, dtype=np.intp)
        cmax = np.full(n, -1, dtype=np.intp)
        np.minimum.at(rmin, lab, rows)
        np.maximum.at(rmax, lab, rows)
        np.minimum.at(cmin, lab, cols)
        np.maximum.at(cmax, lab, cols)
    else:
        rmin = rmax = cmin = cmax = None

    cx, cy = pc + mx, pr + my
    if sat_level is not None:
        clipped = raw >= sat_level
        nsat = np.bincount(lab, weights=clipped, minlength=n)
        saturated = nsat > 0
        if saturated.any():
            cx, cy = _plateau_centres(lab, rows, cols, clipped, saturated, nsat, cx, cy)
    else:
        saturated = np.zeros(n, dtype=bool)

    # sharpness: peak against the mean of its (valid, in-image) 8 neighbours
    # (over 3x3 pixels the background's level at the peak will do)
    bg_peak = bg.at(pr, pc)
    bg_gx, bg_gy = bg.gradient_at(pr, pc)
    neighbours = compiled("neighbour_sums")
    if neighbours is not None:
        bad_arg = np.zeros((1, 1), bool) if bad is None else bad
        parts = _threads.run_chunks(
            lambda a, b: neighbours(work, bad_arg, bad is not None, pr[a:b], pc[a:b],
                                    bg_peak[a:b]),
            _threads.split(n, thread_count(), _NEIGHBOUR_CHUNK))
        total, cnt = _threads.joined(parts)
    else:
        total, cnt = neighbour_totals(work, bad, pr, pc, bg_peak)
    sharp = sharpness(peak, total, cnt)

    sig = bg.sigma_at(pr, pc)
    return {
        "sigma": np.broadcast_to(np.asarray(sig, dtype=np.float64), (n,)),
        "npix": npix, "flux": flux, "peak": peak, "pr": pr, "pc": pc,
        "cx": cx, "cy": cy, "cxx": cxx, "cyy": cyy, "cxy": cxy,
        "rmin": rmin, "rmax": rmax, "cmin": cmin, "cmax": cmax,
        "saturated": saturated, "sharpness": sharp, "sumw": sw, "bg_peak": bg_peak,
        "bg_gx": bg_gx, "bg_gy": bg_gy,
    }


#: A clipped plateau elongated beyond this axis ratio along a column or a row is a bleed.
_BLEED_RATIO = 1.5
#: A saturated blob whose intensity centroid lies this far (px) from the centre of its
#: plateau was pulled there by a neighbour's light.
_PULLED_PX = 1.0


def _plateau_centres(lab: NDArray[np.intp], rows: NDArray, cols: NDArray,
                     clipped: NDArray[np.bool_], saturated: NDArray[np.bool_],
                     nsat: NDArray[np.float64], cx: NDArray[np.float64],
                     cy: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
    """The positions of saturated blobs: their intensity centroids ``(cx, cy)``, or the
    centre of their clipped pixels (the plateau) where that lies more than
    :data:`_PULLED_PX` from it, unless the plateau bleeds along a column or a row
    (elongated beyond :data:`_BLEED_RATIO` along the grid). Blob pixels: labels
    ``lab``, ``rows``, ``cols``, which are ``clipped``; ``nsat`` clipped pixels per label.

    A clipped star's light beyond its plateau is its own only when it stands alone: in
    a crowded field its neighbours' wings merge into its blob and pull the intensity
    centroid 2-4 px towards them (a stretched 120 deg JPEG of the Milky Way, 1920x1080:
    5 of its brightest 12 blobs; the pattern search found nothing), while they do not
    reach its plateau. A lone star's intensity centroid agrees with its plateau's centre
    and is the finer of the two (the seed's TESS-like frames solve as before); a bleed's
    plateau is the column the charge spilled along, while the charge, the blob's
    intensity, stays centred on the star."""
    at = saturated[lab] & clipped
    la = lab[at]
    c, r = cols[at].astype(np.float64), rows[at].astype(np.float64)
    n = len(nsat)
    k = np.maximum(nsat, 1.0)
    px = np.bincount(la, weights=c, minlength=n) / k
    py = np.bincount(la, weights=r, minlength=n) / k
    shape = {"cxx": np.bincount(la, weights=c * c, minlength=n) / k - px * px,
             "cyy": np.bincount(la, weights=r * r, minlength=n) / k - py * py,
             "cxy": np.bincount(la, weights=c * r, minlength=n) / k - px * py}
    bleed = (_elongation(*_moments(shape)) > _BLEED_RATIO) & _along_grid(shape)
    use = saturated & ~bleed & (np.hypot(px - cx, py - cy) > _PULLED_PX)
    return np.where(use, px, cx), np.where(use, py, cy)


def neighbour_totals(work: NDArray, bad: NDArray | None, pr: NDArray[np.intp],
                     pc: NDArray[np.intp], level: NDArray[np.float64]
                     ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """The sum above ``level`` of the valid in-image 8 neighbours of each peak ``(pr, pc)``
    and their number (compiled twin: :func:`.kernels.neighbour_sums`)."""
    h, w = work.shape
    offs = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])
    nr = pr[:, None] + offs[:, 0]
    nc = pc[:, None] + offs[:, 1]
    inside = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
    nrc = np.clip(nr, 0, h - 1)
    ncc = np.clip(nc, 0, w - 1)
    nval = work[nrc, ncc].astype(np.float64) - level[:, None]
    if bad is not None:
        inside &= ~bad[nrc, ncc]
    return np.where(inside, nval, 0.0).sum(axis=1), inside.sum(axis=1)


def sharpness(peak: NDArray[np.float64], total: NDArray[np.float64],
              cnt: NDArray[np.intp]) -> NDArray[np.float64]:
    """``(peak - mean of the neighbours) / peak`` from the neighbours' ``total`` and
    number ``cnt`` (:func:`neighbour_totals`); infinite where the peak is not above the
    background."""
    nmean = np.where(cnt > 0, total / np.maximum(cnt, 1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, (peak - nmean) / peak, np.inf)


def _blob_sums(lab: NDArray, idx: NDArray[np.intp], val: NDArray[np.float64], n: int,
               w: int) -> tuple[NDArray, ...]:
    """Per-blob pixel count, flux, peak (value, row, column), and the intensity-weighted
    moments about the peak pixel (well conditioned): ``(npix, flux, peak, pr, pc, sumw,
    mx, my, cxx, cyy, cxy)`` (compiled twin: :func:`.kernels.blob_sums`)."""
    rows, cols = np.divmod(idx, w)
    npix = np.bincount(lab, minlength=n)
    flux = np.bincount(lab, weights=val, minlength=n)
    # peak pixel of each blob (ties: the last of them)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, lab, val)
    is_peak = val == peak[lab]
    peak_idx = np.zeros(n, dtype=np.intp)
    peak_idx[lab[is_peak]] = idx[is_peak]
    pr, pc = np.divmod(peak_idx, w)
    wt = np.maximum(val, 0.0)
    sw = np.bincount(lab, weights=wt, minlength=n)
    sw_safe = np.where(sw > 0, sw, 1.0)
    dx = (cols - pc[lab]).astype(np.float64)
    dy = (rows - pr[lab]).astype(np.float64)
    mx = np.bincount(lab, weights=wt * dx, minlength=n) / sw_safe
    my = np.bincount(lab, weights=wt * dy, minlength=n) / sw_safe
    cxx = np.bincount(lab, weights=wt * dx * dx, minlength=n) / sw_safe - mx * mx
    cyy = np.bincount(lab, weights=wt * dy * dy, minlength=n) / sw_safe - my * my
    cxy = np.bincount(lab, weights=wt * dx * dy, minlength=n) / sw_safe - mx * my
    return npix, flux, peak, pr, pc, sw, mx, my, cxx, cyy, cxy


#: Fewest blob pixels whose gathering is worth handing to another thread.
_GATHER_CHUNK = 50_000
#: Fewest blob pixels whose sums are worth sharing out between two threads by label
#: (each reads every pixel: 1.45 against 2.04 ms on the 376,000 of a TESS-like frame).
_SUMS_SPLIT = 100_000
#: Fewest blobs whose peaks' neighbour sums are worth handing to another thread (~0.3 ms).
_NEIGHBOUR_CHUNK = 2_000
#: Stars whose peak is above this many noise sigmas fit their PSF width freely;
#: fainter ones use the median width of the bright ones.
_FREE_WIDTH_SNR = 30.0
#: Fewest stars whose fits are worth handing to another thread (~0.15 ms of fitting; a
#: hand-over costs tens of microseconds).
_FIT_CHUNK = 64


def _fittable(m: dict[str, NDArray], ids: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` :func:`_fit_positions` fits at all: unsaturated, at most
    400 pixels (larger ones overflow the fit windows)."""
    return ~m["saturated"][ids] & (m["npix"][ids] <= 400)


def _free_fits(m: dict[str, NDArray], ids: NDArray[np.intp]) -> NDArray[np.bool_]:
    """Which of the blobs ``ids`` :func:`_fit_positions` fits with a free width: those
    it fits at all (:func:`_fittable`) that peak above ``_FREE_WIDTH_SNR`` local noise
    sigmas."""
    return _fittable(m, ids) & (m["peak"][ids] > _FREE_WIDTH_SNR * m["sigma"][ids])


#: Without free fits to set it, the faint stars' width is their brightest blobs'
#: (:func:`_moment_widths`), this many of them.
_WIDTH_BLOBS = 10


def _moment_widths(m: dict[str, NDArray], ids: NDArray[np.intp]) -> tuple[float, float]:
    """The Gaussian sigmas ``(sx, sy)`` (px) of the stars' image from the blobs ``ids``,
    for :func:`_fit_positions` when no free fit measured them: the median
    intensity-weighted second moments of the :data:`_WIDTH_BLOBS` blobs that peak
    highest above their noise, less a pixel's own 1/12 px^2 (0, 0 without blobs).

    The 3x3 log-curvature widths at the peaks (:func:`_start_widths`) alone were taken
    before: a broad star's three middle pixels differ by a few per cent, which noise
    swamps below the free fits' signal-to-noise, and their curvature came out that of
    the noise -- 0.7 px for stars of sigma 3 px, whose fits with it then followed the
    noise on the peak, 0.4-0.9 px off (their intensity centroids 0.1-0.3). The moments
    over a bright blob's pixels, cut where its light falls below the threshold, come
    within ~5 % below the width (2.8-3.1 px there)."""
    if len(ids) == 0:
        return 0.0, 0.0
    top = ids[np.argsort(-m["peak"][ids] / m["sigma"][ids], kind="stable")[:_WIDTH_BLOBS]]
    sx = np.sqrt(np.maximum(m["cxx"][top] - 1.0 / 12.0, 0.09))
    sy = np.sqrt(np.maximum(m["cyy"][top] - 1.0 / 12.0, 0.09))
    return median(sx), median(sy)


def _start_widths(work: NDArray[np.float32], m: dict[str, NDArray], ids: NDArray[np.intp]):
    """``(sx0, x00, sy0, y00)``: the 3x3 log-curvature widths and offsets at the peaks of
    the blobs ``ids`` (Gaussian: -1/s^2), where the fits start."""
    h, w = work.shape
    pr, pc, peak, bgp = m["pr"][ids], m["pc"][ids], m["peak"][ids], m["bg_peak"][ids]
    # (minimum/maximum: np.clip checks its integer bounds at every call)
    r3 = np.minimum(np.maximum(pr[:, None] + np.array([-1, 0, 1]), 0), h - 1)
    c3 = np.minimum(np.maximum(pc[:, None] + np.array([-1, 0, 1]), 0), w - 1)
    flat = work.ravel()  # (flat gathers: a third of the time of 2-D fancy indexing)
    lr = flat[(pr * w)[:, None] + c3].astype(np.float64) - bgp[:, None]
    ud = flat[r3 * w + pc[:, None]].astype(np.float64) - bgp[:, None]
    return (*_log_parabola(lr, peak), *_log_parabola(ud, peak))


def _fit_positions(work: NDArray[np.float32], labels: NDArray, bad: NDArray | None,
                   m: dict[str, NDArray], ids: NDArray[np.intp],
                   untrusted: NDArray[np.bool_] | None = None, n_out: int | None = None,
                   rest: NDArray[np.intp] | None = None):
    """Gaussian-fit positions (array col, row of the star centre, pixel-centre origin).

    Returns ``(col, row, ok, sx, sy, free, rough_sx, rough_sy)``; ``ok`` is False for saturated
    blobs, blobs too big for the fit windows and fits that did not converge; ``sx``,
    ``sy`` are the fitted Gaussian sigmas, measured where ``free`` (bright stars) and
    imposed otherwise (``free``: peaks above ``_FREE_WIDTH_SNR`` local noise sigmas);
    ``rough_sx``, ``rough_sy`` the 3x3 log-curvature widths at the peak (a rough width of
    every blob; the free fits start from them). ``untrusted``: blobs (of ``ids``) whose
    free fits must not set the faint ones' widths (a JPEG's doubtful stars).

    ``n_out``: the faint blobs are fitted among the first ``n_out`` only (None: all); the
    others are free fits (:func:`_free_fits`) cut from the list after them, which, with
    the cut ``rest`` (all the blobs that followed the first ``n_out``), set the faint
    stars' widths as they do in the uncut list: a star's position does not depend on
    the cut.
    """
    n = len(ids)
    n_out = n if n_out is None else n_out
    col = np.full(n, np.nan)
    row = np.full(n, np.nan)
    ok = np.zeros(n, dtype=bool)
    m["_fit_sx"] = np.full(n, np.nan)
    m["_fit_sy"] = np.full(n, np.nan)
    sx0, x00, sy0, y00 = _start_widths(work, m, ids)
    fit_me = _fittable(m, ids)
    free = _free_fits(m, ids)
    fixed = fit_me & ~free & (np.arange(n) < n_out)
    if free.any():
        _fit_group(work, labels, bad, m, ids, free, x00, y00, sx0, sy0, col, row, ok, False)
    if fixed.any():
        # the bright stars' fitted widths, else the start values, set the faint ones'
        ref = ok & free
        if untrusted is not None:
            # (a compressed hot pixel's fit is narrow: as a reference it would narrow
            # the faint stars' fits and move them, and which such blobs are fitted
            # depends on max_centroids)
            ref &= ~untrusted
        if ref.sum() >= 3:
            sxr, syr = median(m["_fit_sx"][ref]), median(m["_fit_sy"][ref])
        else:
            # (of every blob of the uncut list)
            if rest is not None and len(rest):
                every = np.concatenate([ids[:n_out], rest])
                every = every[_fittable(m, every)]
                wx, _, wy, _ = _start_widths(work, m, every)
            else:
                every, wx, wy = ids[fit_me], sx0[fit_me], sy0[fit_me]
            # (both estimates come out low where they fail: the peaks' curvature on
            # broad stars, the moments on sharp ones, whose few pixels they cut)
            mx, my = _moment_widths(m, every)
            sxr, syr = max(median(wx), mx), max(median(wy), my)
        _fit_group(work, labels, bad, m, ids, fixed, x00, y00, np.full(n, sxr),
                   np.full(n, syr), col, row, ok, True)
    return col, row, ok, m.pop("_fit_sx"), m.pop("_fit_sy"), free, sx0, sy0


def axis_light(work: NDArray[np.float32], m: dict[str, NDArray], ids: NDArray[np.intp]
               ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The light above the background beside the peaks of the blobs ``ids``: the sum of
    the two neighbours left and right, and of the two above and below, ``(across,
    along)`` (compiled twin: :func:`.kernels.axis_light`). Neighbours off the image hold
    no light."""
    h, w = work.shape
    pr, pc, bgp = m["pr"][ids], m["pc"][ids], m["bg_peak"][ids]
    kernel = compiled("axis_light")
    if kernel is not None:
        return kernel(work, pr, pc, bgp)
    flat = work.ravel()

    def light(dr: int, dc: int) -> NDArray:
        r, c = pr + dr, pc + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        # (minimum/maximum: np.clip checks its integer bounds at every call)
        at = np.minimum(np.maximum(r, 0), h - 1) * w + np.minimum(np.maximum(c, 0), w - 1)
        return np.where(inside, flat[at].astype(np.float64) - bgp, 0.0)

    return light(0, -1) + light(0, 1), light(-1, 0) + light(1, 0)


def _axis_wings(work: NDArray[np.float32], m: dict[str, NDArray], ids: NDArray[np.intp],
                snr: float) -> NDArray[np.bool_]:
    """Which blobs ``ids`` hold light beside their peak along both axes: each of
    :func:`axis_light`'s sums ``snr`` noise sigmas (of that sum) above the background.
    A star's light spills both ways; a hot pixel's neighbours hold noise, a cosmic-ray
    track's light lies along one line."""
    across, along = axis_light(work, m, ids)
    need = snr * np.sqrt(2.0) * m["sigma"][ids]
    return (across >= need) & (along >= need)


def _log_parabola(v: NDArray, peak: NDArray) -> tuple[NDArray, NDArray]:
    """Width and offset of a parabola through the logs of 3 samples (Gaussian peak)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.log(np.maximum(v, 1e-3 * np.maximum(peak, 1e-30)[:, None]))
        c2 = lv[:, 0] - 2.0 * lv[:, 1] + lv[:, 2]
        c2 = np.where(c2 < 0, c2, -1.0)
        off = np.clip(0.5 * (lv[:, 0] - lv[:, 2]) / c2, -0.5, 0.5)
        # a pixel-integrated Gaussian is ~ a sampled one of variance s^2 + 1/12
        s = np.sqrt(np.clip(-1.0 / c2 - 1.0 / 12.0, 0.09, 25.0))
    return s, off


def _fit_group(work, labels, bad, m, ids, members, x00, y00, sx0, sy0, col, row, ok,
               fix_sigma: bool) -> None:
    """Fit the stars ``ids[members]``, in groups of equal window size; write results."""
    h, w = labels.shape
    pr = m["pr"][ids]
    pc = m["pc"][ids]
    bgp = m["bg_peak"][ids]
    # window half-size ~2 sigma (2..6 px): the wings add little position information
    half = np.minimum(np.maximum(np.ceil(2.0 * np.sqrt(sx0 * sy0)).astype(int), 2), 6)
    # (per star, never from the other stars: a star's position must not depend
    # on which other stars are being fitted)
    fit_windows = compiled("fit_windows")
    if fit_windows is not None:
        sel = np.flatnonzero(members)
        p0 = np.column_stack([x00[sel], y00[sel], np.maximum(m["flux"][ids[sel]], 1e-6),
                              sx0[sel], sy0[sel]])
        args = (pr[sel], pc[sel], bgp[sel], m["bg_gx"][ids[sel]], m["bg_gy"][ids[sel]],
                ids[sel], half[sel], p0)
        bad_arg = np.zeros((1, 1), bool) if bad is None else bad

        def fit(lo: int, hi: int):
            return fit_windows(work, labels, bad_arg, bad is not None,
                               *(a[lo:hi] for a in args), fix_sigma)

        # each star's fit is independent of the others': chunks on several threads, of
        # equal cost (a window's pixels; the brightest stars, first, have the largest)
        cost = (2 * half[sel] + 1) ** 2
        parts = _threads.run_chunks(fit, _threads.split_weighted(cost, thread_count(),
                                                                 _FIT_CHUNK))
        p = np.concatenate([q[0] for q in parts])
        ok[sel] = np.concatenate([q[1] for q in parts])
        col[sel] = pc[sel] + p[:, 0]
        row[sel] = pr[sel] + p[:, 1]
        m["_fit_sx"][sel] = p[:, 3]
        m["_fit_sy"][sel] = p[:, 4]
        return
    for hh in np.unique(half[members]):
        sel = np.flatnonzero(members & (half == hh))
        off = np.arange(-hh, hh + 1)
        rr = pr[sel, None] + off
        cc = pc[sel, None] + off
        rin = (rr >= 0) & (rr < h)
        cin = (cc >= 0) & (cc < w)
        flat = (np.clip(rr, 0, h - 1) * w)[:, :, None] + np.clip(cc, 0, w - 1)[:, None, :]
        stamp = work.ravel()[flat]
        # the local background plane: a gradient left in the stamp would pull the centre
        gx = m["bg_gx"][ids[sel]].astype(np.float32)[:, None, None]
        gy = m["bg_gy"][ids[sel]].astype(np.float32)[:, None, None]
        offf = off.astype(np.float32)
        stamp = stamp - (bgp[sel, None, None].astype(np.float32) + gx * offf[None, None, :]
                         + gy * offf[None, :, None])
        lab_st = labels.ravel()[flat]
        wgt = (lab_st == 0) | (lab_st == ids[sel][:, None, None])
        if not (rin.all() and cin.all()):
            wgt &= rin[:, :, None] & cin[:, None, :]
        if bad is not None:
            wgt &= ~bad.ravel()[flat]
        amp0 = np.maximum(m["flux"][ids[sel]], 1e-6)
        p0 = np.column_stack([x00[sel], y00[sel], amp0, sx0[sel], sy0[sel]])
        p, good = fit_gaussian_stamps(stamp, wgt, p0, iterations=2, fix_sigma=fix_sigma)
        # most fits converge in two steps from the log-parabola start; give the rest more
        redo = np.flatnonzero(~good & np.all(np.isfinite(p), axis=1)
                              & (np.abs(p[:, 0]) <= hh) & (np.abs(p[:, 1]) <= hh))
        if len(redo):
            start = p[redo, :5].copy()
            start[:, 2] = np.where(start[:, 2] > 0, start[:, 2], p0[redo, 2])
            p[redo], good[redo] = fit_gaussian_stamps(stamp[redo], wgt[redo], start,
                                                      iterations=4, fix_sigma=fix_sigma)
        col[sel] = pc[sel] + p[:, 0]
        row[sel] = pr[sel] + p[:, 1]
        ok[sel] = good
        m["_fit_sx"][sel] = p[:, 3]
        m["_fit_sy"][sel] = p[:, 4]


def _blended(work, bg, labels, m, ids, sigma, thr) -> NDArray[np.bool_]:
    """Blobs (among ``ids``) with a second significant local maximum.

    A pixel counts as a second peak when it is the maximum of its 3x3
    neighbourhood within the blob, at least 2 px from the main peak, rises
    ``max(3 sigma, 0.1 threshold)`` above the deepest point on the straight line
    to the main peak, and that dip is below 80 % of the second peak.
    """
    h, w = labels.shape
    sel = np.zeros(len(m["npix"]), dtype=bool)
    sel[ids] = True
    sel &= ~m["saturated"]
    mask = sel[labels]
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return np.zeros(len(ids), dtype=bool)
    rows, cols = np.divmod(idx, w)
    lab = labels.ravel()[idx]
    val = work.ravel()[idx].astype(np.float64) - bg.at(rows, cols)
    # local maxima among blob pixels (neighbours outside the blob count as lower)
    is_max = np.ones(len(idx), dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r2 = rows + dr
            c2 = cols + dc
            inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
            r2c = np.clip(r2, 0, h - 1)
            c2c = np.clip(c2, 0, w - 1)
            same = inside & (labels[r2c, c2c] == lab)
            nv = work[r2c, c2c].astype(np.float64) - bg.at(r2c, c2c)
            is_max &= ~same | (val > nv) | ((val == nv) & ((dr, dc) > (0, 0)))
    pr, pc = m["pr"][lab], m["pc"][lab]
    far = (rows - pr) ** 2 + (cols - pc) ** 2 >= 4
    cand = np.flatnonzero(is_max & far)
    out = np.zeros(len(m["npix"]), dtype=bool)
    if len(cand):
        r1, c1, v1 = rows[cand], cols[cand], val[cand]
        r0, c0 = pr[cand], pc[cand]
        t = np.linspace(0.0, 1.0, 17)[1:-1]
        lr = np.rint(r0[:, None] + (r1 - r0)[:, None] * t).astype(np.intp)
        lc = np.rint(c0[:, None] + (c1 - c0)[:, None] * t).astype(np.intp)
        line = work[lr, lc].astype(np.float64) - bg.at(lr, lc)
        dip = line.min(axis=1)
        significant = (v1 - dip > max(3.0 * sigma, 0.1 * thr)) & (dip < 0.8 * v1)
        out[lab[cand[significant]]] = True
    return out[ids]
