"""Centroid extraction: skysolve vs tetra3rs on identical synthetic frames.

Frames come from skysolve/tests/frames.py (Gaussian PSFs integrated exactly over pixels,
so the truth is exact):

* a 2048x2048 float32 TESS-like frame: ~10,000 stars, PSF sigma 0.8-1.2 px,
  power-law fluxes, sky ~300 with a gradient and a bump, Gaussian noise sigma 1,
  extracted with the seed notebook's parameters (``sigma_threshold=300,
  min_pixels=4, max_pixels=10000, local_bg_block_size=16, max_elongation=6.0``);
* the same frame with each library's default parameters (5 sigma: several times the
  candidate pixels of the seed's 300 sigma);
* a 1024x768 uint16 star-tracker-like frame (sigma ~1 px, read + sky noise),
  extracted with default parameters.

A row on the two real 1024x768 star-tracker frames of skysolve/tests/data (16-bit
TIFF, ~35 stars each; default settings both) has no truth: it reports the centroid
counts and how many of skysolve's lie within 1 px of one of tetra3rs's. A second row
takes the same frames as 8-bit JPEGs (their 1st-99.9th percentile stretch, quality 85),
the form of most finder and all-sky camera frames: fewer than 30 stars survive the
first pass there, so skysolve detects again through a matched filter.

Two more rows time the same real frames (TIFF, then JPEG) in a new process that extracts
nothing else, as a program that reads a camera's frames one after another does, and
count each library's page faults per call: whether the C allocator hands a freed
frame-sized block back to the system after each call (and the next call faults on every
page of a new one) depends on what the process allocated before; in this process, the
2048x2048 rows above keep such blocks in the allocator. A third such row takes small
frames cut from the real TIFFs -- a 640x480 and a 320x240 crop about each one's centre
and the whole frame binned 2x2 (512x384, the sums of 16-bit counts) -- the sizes of
finder cameras and binned star trackers, where a fixed cost per frame weighs most; it
gives the median ratio over the six frames and the ratio per size, each size in a
process of its own (a camera's frames are all of one size).

A row over the hard frames of ``bench_hard.py`` (the two real frames and three
simulated ones, each under every degradation recipe at ``moderate`` and ``strong``:
gradients, clouds, JPEG, banding, vignetting, captions, binning...; default settings
both) reports the median over the frames of each one's time ratio (skysolve /
tetra3rs, the median of 3 alternating calls each), the median times, and the median
ratio per recipe: the frames of real cameras take the extractor's robustness checks,
which the clean synthetic rows above do not.

The last two rows time ``extract_centroids_fast`` (tetra3rs's quick path; in
skysolve a lean pipeline of its own, :mod:`skysolve.extraction.fast`: a bilinear
sky from block medians, one compiled pass above it, intensity centroids) on both
frames with its defaults.

Each library keeps its own defaults for everything not passed (tetra3rs applies a
1.5 px matched filter by default, skysolve does not), so a second 2048 row passes
``matched_filter_sigma=None`` to tetra3rs for a like-for-like pipeline. Times
include building the Python centroid list (``result.centroids``); the two
libraries run alternately and the medians are compared. Both use every core (2 here)
by default (``threads=None``); ``skysolve_1thread_s`` and ``peer_1thread_s`` are the
two with ``threads=1`` for reference.

``one_pass_s`` is the physical floor: the time of one pass over the frame's pixels
(``img.sum()``), and ``skysolve_over_one_pass`` the extraction time in units of it.

Reported per library: centroids returned, isolated true stars found (no other star
brighter than 1 % of its flux within 6 px; matched within 1 px), and the median
position error on those. Both libraries use centred pixel coordinates
(x = col + 0.5 - W/2); the median signed offsets (``*_dx``) confirm it.
"""

from __future__ import annotations

import sys

import numpy as np
from _common import timed

from skysolve.tests.frames import isolated, match_to_truth, tess_like_frame  # noqa: E402

SEED = dict(sigma_threshold=300, min_pixels=4, max_pixels=10000, local_bg_block_size=16,
            max_elongation=6.0)


def _xy(result) -> np.ndarray:
    cs = result.centroids
    return np.array([(c.x, c.y) for c in cs], dtype=np.float64).reshape(-1, 2)


def _score(xy: np.ndarray, x, y, iso) -> dict:
    idx, d = match_to_truth(xy[:, 0], xy[:, 1], x[iso], y[iso], radius=1.0)
    hit = idx >= 0
    dx = xy[idx[hit], 0] - x[iso][hit] if hit.any() else np.array([np.nan])
    return {"found": int(hit.sum()),
            "median_err_px": float(np.median(d[hit])) if hit.any() else float("nan"),
            "dx": float(np.median(dx))}


def _compare(name, img, x, y, flux, sky_kwargs, peer_kwargs, repeat,
             function="extract_centroids"):
    import tetra3rs

    import skysolve

    iso = isolated(x, y, flux, radius=6.0, flux_ratio=0.01)
    fn_ours, fn_peer = getattr(skysolve, function), getattr(tetra3rs, function)

    def ours():
        r = fn_ours(img, **sky_kwargs)
        _ = r.centroids  # building the Python objects is part of the cost
        return r

    def peer():
        r = fn_peer(img, **peer_kwargs)
        _ = r.centroids  # building the Python objects is part of the cost
        return r

    def peer_1thread():
        _ = fn_peer(img, **peer_kwargs, threads=1).centroids

    def ours_1thread():
        _ = fn_ours(img, **sky_kwargs, threads=1).centroids

    # alternate the runs so that load from other processes hits all alike
    ts, tp, t1, s1 = [], [], [], []
    for _ in range(repeat):
        t, r_s = timed(ours, 1)
        ts.append(t)
        t, r_p = timed(peer, 1)
        tp.append(t)
        t1.append(timed(peer_1thread, 1)[0])
        s1.append(timed(ours_1thread, 1)[0])
    t_s, t_p = float(np.median(ts)), float(np.median(tp))
    # the physical floor: one pass over the frame's pixels (a reduction), same machine
    floor = float(np.median([timed(lambda: float(img.sum()), 1)[0] for _ in range(repeat)]))
    s = _score(_xy(r_s), x, y, iso)
    p = _score(_xy(r_p), x, y, iso)
    return {
        "benchmark": name, "peer": "tetra3rs",
        "skysolve_s": t_s, "peer_s": t_p, "ratio": t_s / t_p,
        # both use every core unless told otherwise
        "skysolve_1thread_s": float(np.median(s1)), "peer_1thread_s": float(np.median(t1)),
        "one_pass_s": floor, "skysolve_over_one_pass": t_s / floor,
        "n_true": len(x), "n_isolated": int(iso.sum()),
        "skysolve_centroids": len(r_s.centroids), "peer_centroids": len(r_p.centroids),
        "skysolve_isolated_found": s["found"], "peer_isolated_found": p["found"],
        "skysolve_median_err_px": s["median_err_px"], "peer_median_err_px": p["median_err_px"],
        "skysolve_dx": s["dx"], "peer_dx": p["dx"],
    }


def _star_tracker_frame(seed: int = 3):
    """1024x768 uint16 frame: ~600 stars, sigma ~1 px, sky 1000 + gradient."""
    img, x, y, flux, _ = tess_like_frame(
        seed=seed, shape=(768, 1024), n_stars=600, sigma_range=(0.9, 1.1), noise=12.0,
        background=1000.0, gradient=80.0, flux_range=(1500.0, 3e5), power=1.8)
    return np.clip(np.round(img), 0, 65535).astype(np.uint16), x, y, flux


def _real_images(jpeg: bool = False) -> list[np.ndarray]:
    """The two real 1024x768 star-tracker frames (skysolve/tests/data), as read; with
    ``jpeg``, as 8-bit JPEGs (quality 85) of their 1st-99.9th percentile stretch, the
    form of most finder and all-sky camera frames."""
    import io

    from PIL import Image

    import skysolve
    from skysolve.tests.realframes import DATA

    images = []
    for path in sorted(DATA.glob("*.tiff")):
        img = skysolve.read_image(path)
        if jpeg:
            lo, hi = np.percentile(img, [1.0, 99.9])
            u8 = np.clip((img - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(u8).save(buf, "JPEG", quality=85)
            img = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        images.append(img)
    return images


def _compare_real(repeat: int, jpeg: bool = False) -> dict:
    """The two real 1024x768 star-tracker frames (:func:`_real_images`), default settings
    both: per frame the median time of each library (alternating), then the median over
    the frames. No truth: the centroid counts, and how many of skysolve's lie within
    1 px of one of tetra3rs's."""
    import tetra3rs

    import skysolve

    ts, tp, t1, s1, counts = [], [], [], [], []
    for img in _real_images(jpeg):
        fs, fp = [], []
        for _ in range(repeat):
            t, r_s = timed(lambda img=img: _built(skysolve.extract_centroids(img)), 1)
            fs.append(t)
            t, r_p = timed(lambda img=img: _built(tetra3rs.extract_centroids(img)), 1)
            fp.append(t)
        t1.append(timed(lambda img=img: _built(tetra3rs.extract_centroids(img, threads=1)),
                        repeat)[0])
        s1.append(timed(lambda img=img: _built(skysolve.extract_centroids(img, threads=1)),
                        repeat)[0])
        ts.append(float(np.median(fs)))
        tp.append(float(np.median(fp)))
        a, b = _xy(r_s), _xy(r_p)
        near = np.hypot(*(a[:, None, :] - b[None, :, :]).transpose(2, 0, 1)).min(axis=1) < 1.0
        counts.append((len(a), len(b), int(near.sum())))
    t_s, t_p = float(np.median(ts)), float(np.median(tp))
    kind = "8-bit JPEG" if jpeg else "16-bit TIFF"
    return {"benchmark": f"extract the {len(ts)} real 1024x768 frames ({kind}), defaults",
            "peer": "tetra3rs", "skysolve_s": t_s, "peer_s": t_p, "ratio": t_s / t_p,
            "skysolve_1thread_s": float(np.median(s1)), "peer_1thread_s": float(np.median(t1)),
            "skysolve_centroids": [c[0] for c in counts],
            "peer_centroids": [c[1] for c in counts],
            "skysolve_within_1px_of_peer": [c[2] for c in counts]}


#: The small frames of :func:`_small_images`: a crop about the centre (height, width) of
#: each real TIFF, or (None) the whole frame binned 2x2.
SMALL_SIZES = {"640x480": (480, 640), "320x240": (240, 320), "512x384": None}


def _small_images(size: str) -> list[np.ndarray]:
    """The two real TIFFs cut to ``size`` (:data:`SMALL_SIZES`): a crop about the centre,
    or the frame binned 2x2 (uint16 sums of its counts)."""
    out = []
    for img in _real_images():
        h, w = img.shape
        crop = SMALL_SIZES[size]
        if crop is None:
            binned = img.reshape(h // 2, 2, w // 2, 2).astype(np.uint32).sum(axis=(1, 3))
            out.append(np.clip(binned, 0, 65535).astype(np.uint16))
        else:
            y0, x0 = (h - crop[0]) // 2, (w - crop[1]) // 2
            out.append(np.ascontiguousarray(img[y0:y0 + crop[0], x0:x0 + crop[1]]))
    return out


def _compare_small_fresh(repeat: int) -> dict:
    """The frames of each size of :data:`SMALL_SIZES` timed as :func:`_compare_real_fresh`
    times the real frames, in a process of their own per size (a camera's frames are of
    one size): the median over the six frames of each library's time and of each frame's
    time ratio, the ratio and page faults per call per size, and the physical floor (one
    pass over a 640x480 frame's pixels)."""
    import json
    import subprocess

    ratios, sky, peer, by_size, faults = [], [], [], {}, {}
    for size in SMALL_SIZES:
        out = subprocess.run([sys.executable, __file__, "--fresh-real", size, str(repeat)],
                             capture_output=True, text=True, check=True)
        got = json.loads(out.stdout.strip().splitlines()[-1])
        each = np.array(got["skysolve_each"]) / np.array(got["peer_each"])
        ratios += each.tolist()
        sky += got["skysolve_each"]
        peer += got["peer_each"]
        by_size[size] = float(np.median(each))
        faults[size] = [got["skysolve_faults_per_call"], got["peer_faults_per_call"]]
    frame = _small_images("640x480")[0]
    floor = timed(frame.sum, 21)[0]
    return {"benchmark": "extract small frames cut from the 2 real frames (640x480 and "
                         "320x240 crops, 2x2 binned), defaults, a process per size",
            "peer": "tetra3rs", "skysolve_s": float(np.median(sky)),
            "peer_s": float(np.median(peer)), "ratio": float(np.median(ratios)),
            "ratio_by_size": by_size, "faults_per_call_by_size": faults,
            "one_pass_640x480_s": floor}


def _compare_real_fresh(repeat: int, jpeg: bool) -> dict:
    """:func:`_compare_real` in a new process that extracts nothing else (a camera's
    frames, one after another), run by :func:`_fresh_child`: per frame the median time
    of each library (alternating), the median over the frames, and each library's
    page faults per call (``resource`` minor faults), which the rows in this process
    hide: after the 2048x2048 rows the C allocator keeps frame-sized blocks, in a
    process of 1024x768 frames alone it may hand them back to the system after every
    call."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--fresh-real", "jpeg" if jpeg else "tiff",
                          str(repeat)], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    kind = "8-bit JPEG" if jpeg else "16-bit TIFF"
    return {"benchmark": f"extract the 2 real 1024x768 frames ({kind}), defaults, "
                         "a process of their own",
            "peer": "tetra3rs", **got, "ratio": got["skysolve_s"] / got["peer_s"]}


def _fresh_child(kind: str, repeat: int) -> None:
    """The child of :func:`_compare_real_fresh`: prints its figures as one JSON line."""
    import json
    import resource

    import tetra3rs

    import skysolve

    def faults() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    calls = {"skysolve": lambda img: _built(skysolve.extract_centroids(img)),
             "peer": lambda img: _built(tetra3rs.extract_centroids(img))}
    med = {k: [] for k in calls}
    flt = {k: 0 for k in calls}
    images = _small_images(kind) if kind in SMALL_SIZES else _real_images(kind == "jpeg")
    for img in images:
        for fn in calls.values():
            fn(img)  # (untimed: each library's first call)
        times = {k: [] for k in calls}
        for _ in range(repeat):
            for k, fn in calls.items():
                f0 = faults()
                times[k].append(timed(lambda fn=fn, img=img: fn(img), 1)[0])
                flt[k] += faults() - f0
        for k in calls:
            med[k].append(float(np.median(times[k])))
    n = repeat * len(images)
    got = {"skysolve_s": float(np.median(med["skysolve"])),
           "peer_s": float(np.median(med["peer"])),
           "skysolve_faults_per_call": flt["skysolve"] / n,
           "peer_faults_per_call": flt["peer"] / n}
    if kind in SMALL_SIZES:
        got.update(skysolve_each=med["skysolve"], peer_each=med["peer"])
    print(json.dumps(got))


def _compare_hard(quick: bool) -> dict:
    """The hard frames of ``bench_hard.py`` (see the module docstring), default settings
    both: per frame the median of 3 alternating calls each (1 in a quick run, on the
    real frames and a few recipes only)."""
    import bench_hard
    import tetra3rs

    import skysolve

    bases = bench_hard.real_frames()
    recipes = list(bench_hard.RECIPES)
    if quick:
        recipes = ["none", "jpeg", "vignetting", "banding", "combined"]
    else:
        bases += bench_hard.sim_frames(skysolve.load_gaia(), 3, seed=5)
    repeat = 1 if quick else 3
    for base in bases:  # (untimed: each library's first call on each kind of frame)
        skysolve.extract_centroids(base["image"])
        tetra3rs.extract_centroids(base["image"])
    per_recipe: dict[str, list[float]] = {}
    ts, tp, ratios = [], [], []
    for base in bases:
        for recipe in recipes:
            for strength in ("moderate",) if recipe == "none" else ("moderate", "strong"):
                img = bench_hard.degraded(base, recipe, strength, seed=1)
                fs, fp = [], []
                for _ in range(repeat):
                    fs.append(timed(lambda img=img: _built(skysolve.extract_centroids(img)),
                                    1)[0])
                    fp.append(timed(lambda img=img: _built(tetra3rs.extract_centroids(img)),
                                    1)[0])
                s_t, p_t = float(np.median(fs)), float(np.median(fp))
                ts.append(s_t)
                tp.append(p_t)
                ratios.append(s_t / p_t)
                per_recipe.setdefault(recipe, []).append(s_t / p_t)
    by_recipe = {k: round(float(np.median(v)), 2) for k, v in per_recipe.items()}
    return {"benchmark": f"extract {len(ratios)} hard frames (bench_hard's recipes), defaults",
            "peer": "tetra3rs", "skysolve_s": float(np.median(ts)),
            "peer_s": float(np.median(tp)), "ratio": float(np.median(ratios)),
            "ratio_p90": float(np.percentile(ratios, 90)), "n_frames": len(ratios),
            "median_ratio_by_recipe": by_recipe,
            "worst_recipes": sorted(by_recipe, key=by_recipe.get, reverse=True)[:5]}


def _built(result):
    _ = result.centroids  # building the Python objects is part of the cost
    return result


def run(quick: bool) -> list[dict]:
    repeat = 3 if quick else 11
    rows = []
    img, x, y, flux, _ = tess_like_frame(seed=1)
    rows.append(_compare("extract 2048x2048 TESS-like, seed parameters", img, x, y, flux,
                         SEED, SEED, repeat))
    rows.append(_compare("extract 2048x2048 TESS-like, seed params, no matched filter",
                         img, x, y, flux, SEED, {**SEED, "matched_filter_sigma": None},
                         repeat))
    rows.append(_compare("extract 2048x2048 TESS-like, defaults", img, x, y, flux, {}, {},
                         repeat))
    img, x, y, flux = _star_tracker_frame()
    rows.append(_compare("extract 1024x768 uint16, defaults", img, x, y, flux, {}, {},
                         repeat))
    rows.append(_compare("extract 1024x768 uint16, 1.5 px matched filter both", img, x, y,
                         flux, {"matched_filter_sigma": 1.5}, {"matched_filter_sigma": 1.5},
                         repeat))
    rows.append(_compare_real(repeat))
    rows.append(_compare_real(repeat, jpeg=True))
    rows.append(_compare_real_fresh(repeat, jpeg=False))
    rows.append(_compare_real_fresh(repeat, jpeg=True))
    rows.append(_compare_small_fresh(repeat))
    rows.append(_compare_hard(quick))
    rows.append(_compare("extract_centroids_fast 1024x768 uint16, defaults", img, x, y, flux,
                         {}, {}, repeat, function="extract_centroids_fast"))
    img, x, y, flux, _ = tess_like_frame(seed=1)
    rows.append(_compare("extract_centroids_fast 2048x2048 TESS-like, defaults", img, x, y,
                         flux, {}, {}, repeat, function="extract_centroids_fast"))
    return rows


if __name__ == "__main__":
    if "--fresh-real" in sys.argv:
        at = sys.argv.index("--fresh-real")
        _fresh_child(sys.argv[at + 1], int(sys.argv[at + 2]))
    else:
        for row in run(quick="--quick" in sys.argv):
            print(row)
