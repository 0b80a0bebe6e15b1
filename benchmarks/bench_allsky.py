"""All-sky and wide-lens images, end to end under real-world degradations.

``bench_wide.py`` checks every field of view on simulated centroid lists; users
hand us images. Here each frame is rendered (:func:`skysolve.simulate.render_starfield`,
the bundled Gaia stars with the fainter ones the catalog lacks), degraded with a
recipe of :mod:`skysolve.simulate.degrade` and solved by the one-call API,
:func:`skysolve.solve_image`, told only the lens projection (and, for the lenses
whose field a user knows from the lens alone, that field of view): the image
circle is found (or not) by the extraction's ``sky_circle='auto'``, the field of
view of the all-sky frames is searched over the database's range.

Cameras (random pointings and rolls; 16-bit, PSF sigma 1.2 px, sky 300 e-,
read noise 8 e-, bias 100 ADU, the sky vignetted by half towards the rim)
------------------------------------------------------------------------
``allsky180``
    A 180 deg equisolid all-sky lens, its circle inscribed in a 1024x1024 frame
    (504 px, a black surround with read noise), stars hidden below 5 deg of
    altitude (the boresight is the zenith). Told: ``projection='equisolid'``.
``allsky190cut``
    A 190 deg equisolid lens whose 520 px circle is cut by the top and bottom of a
    1280x960 frame. Told: ``projection='equisolid'``.
``fisheye120``
    A 120 deg (horizontal) equidistant fisheye filling a 1280x960 frame. Told:
    ``projection='equidistant'``, ``fov_estimate_deg=120``.
``pinhole90``
    A 90 deg (horizontal) pinhole wide lens, 1280x960. Told:
    ``fov_estimate_deg=90``.

Each frame is degraded with every recipe (:data:`RECIPES`) at the ``moderate``
and the ``strong`` strength (``combined``: each of its steps at half of it, as in
``bench_hard.py``). A solve is right when its boresight is within 0.2 deg of the
truth, wrong otherwise. Rows (one per camera, recipe and strength): right, wrong
and failed counts, how many frames had a sky circle found (every disc frame
should; no full-frame one may), and the median and largest process CPU time of
``solve_image`` per image (extraction and solve). tetra3rs has no fisheye
projection; no peer runs here.

Not part of ``run.py``'s default set (880 rendered images, about 5 minutes on a
shared 2-core machine; ``--quick``: 3 frames a camera, about a minute); run it with
``benchmarks/run.py --only bench_allsky`` or standalone::

    python benchmarks/bench_allsky.py [--quick] [--n N] [--cases ...] [--recipes ...]
                                      [--sky-circle auto|none|true] [--out rows.json]

``--sky-circle none`` (no circle) and ``true`` (the lens's own circle, as a user
who knows it would give it) measure what the circle found (``auto``) is worth.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _solve_dbs  # noqa: E402

#: Left out of ``run.py``'s default set: ``--only bench_allsky`` runs it.
DEFAULT = False
RIGHT_DEG = 0.2
EPOCH = 2016.0
SOLVE_ARGS = dict(solve_timeout_ms=5000)

#: name -> (projection, width, height, lens half-angle deg or None, circle radius px or
#: None, horizontal field of view deg a user would give or None)
CASES: dict[str, tuple] = {
    "allsky180": ("equisolid", 1024, 1024, 90.0, 504.0, None),
    "allsky190cut": ("equisolid", 1280, 960, 95.0, 520.0, None),
    "fisheye120": ("equidistant", 1280, 960, None, None, 120.0),
    "pinhole90": ("pinhole", 1280, 960, None, None, 90.0),
}

#: recipe name -> steps of ``skysolve.simulate.degrade``
RECIPES: dict[str, list] = {
    "none": [],
    "jpeg": ["jpeg"],
    "light_dome": ["light_dome"],
    "moonlight": ["moonlight"],
    "hot_pixels": ["hot_pixels"],
    "cloud": ["cloud"],
    "gradient": ["gradient"],
    # the all-sky camera's usual output: an 8-bit JPEG of a light-polluted sky
    "light_dome+jpeg": ["light_dome", "jpeg"],
    "moonlight+jpeg": ["moonlight", "jpeg"],
    "combined": ["gradient", "light_dome", "trails", "hot_pixels", "cosmic_rays", "cloud",
                 "noise", "jpeg"],
    # an all-sky camera's overlays: captions (in the surround's corners or along the top or
    # bottom edge) and compass letters just inside the circle, on its JPEG, whose
    # surround a light dome or the moon may light too
    "captions+jpeg": ["text_overlay", "compass", "jpeg"],
    "captions+light_dome+jpeg": ["light_dome", "text_overlay", "compass", "jpeg"],
    "captions+moonlight+jpeg": ["moonlight", "text_overlay", "compass", "jpeg"],
}
SCALE = {"combined": 0.5}
STRENGTH_NAMES = ("moderate", "strong")


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def camera(case: tuple):
    """The case's :class:`~skysolve.CameraModel`."""
    from skysolve.camera import CameraModel
    from skysolve.camera import projection as proj

    projection, w, h, half, radius, fov = case
    if half is None:
        return CameraModel.from_fov(fov, w, h, projection=projection)
    f = radius / proj.scalar_radius_of_angle(math.radians(half), proj.code_of(projection))
    return CameraModel(f, w, h, projection=projection)


def frames(gaia, name: str, n: int, seed: int) -> list[dict]:
    """``n`` rendered frames of camera ``name``: image, truth attitude, rendered stars."""
    from skysolve.simulate import random_attitudes, render_starfield

    case = CASES[name]
    cam = camera(case)
    half = case[3]
    rng = np.random.default_rng(seed)
    out = []
    for R in random_attitudes(n, rng):
        extra = {} if half is None else {"image_circle_deg": half, "horizon_deg": 5.0}
        img, truth = render_starfield(gaia, cam, R, psf=1.2, background_e=300.0, read_noise_e=8.0,
                                  bias_adu=100.0, zeropoint_mag=15.0, vignetting=0.5,
                                  full_well_e=60000.0, adc_bits=16, faint_star_depth_mag=1.0,
                                  epoch_year=EPOCH, seed=rng, **extra)
        out.append({"image": img, "R": R, "truth": truth})
    return out


def degraded(image: np.ndarray, recipe: str, strength: str, seed: int) -> np.ndarray:
    from skysolve.simulate.degrade import STRENGTHS, degrade

    steps = RECIPES[recipe]
    if not steps:
        return image
    return degrade(image, steps, STRENGTHS[strength] * SCALE.get(recipe, 1.0), seed=seed)


def solve_args(name: str) -> dict:
    """What the user tells :func:`skysolve.solve_image` besides the image."""
    projection, *_, fov = CASES[name]
    args = dict(SOLVE_ARGS, projection=projection)
    if fov is not None:
        args["fov_estimate_deg"] = fov
    return args


def _circle_option(name: str, sky_circle: str):
    """``ExtractionOptions.sky_circle`` for ``--sky-circle``: ``'auto'``, None, or the
    lens's true circle (``'true'``, as a user who knows it would give it; None for the
    full-frame lenses)."""
    if sky_circle == "none":
        return None
    if sky_circle == "true":
        radius = CASES[name][4]
        return None if radius is None else (0.0, 0.0, radius)
    return "auto"


def solve_one(db, name: str, img: np.ndarray, R: np.ndarray, sky_circle: str = "auto") -> dict:
    """One image solved: its boresight error (NaN: failed), CPU time and circle."""
    import skysolve

    t0 = time.process_time()
    res = skysolve.solve_image(img, database=db,
                               extraction={"sky_circle": _circle_option(name, sky_circle)},
                               **solve_args(name))
    cpu = time.process_time() - t0
    err = (math.degrees(math.acos(min(1.0, float(res.rotation_matrix_icrs_to_camera[2] @ R[2]))))
           if res else math.nan)
    return {"err": err, "cpu": cpu, "circle": res.extraction.sky_circle,
            "status": "match_found" if res else res.status}


def run(quick: bool, n: int | None = None, cases: list[str] | None = None,
        recipes: list[str] | None = None, sky_circle: str = "auto") -> list[dict]:
    import skysolve

    n = (3 if quick else 10) if n is None else n
    cases = list(CASES) if cases is None else cases
    recipes = list(RECIPES) if recipes is None else recipes
    db, info = _solve_dbs.load("skysolve", "allsky", log=_log)
    gaia = skysolve.load_gaia()
    rows = []
    for k, name in enumerate(CASES):
        if name not in cases:
            continue
        bases = frames(gaia, name, n, seed=200 + k)
        for recipe in recipes:
            for strength in (("none",) if recipe == "none" else STRENGTH_NAMES):
                t0 = time.perf_counter()
                outs = [solve_one(db, name, degraded(b["image"], recipe, strength, 1000 * i + k),
                                  b["R"], sky_circle) for i, b in enumerate(bases)]
                rows.append(_row(name, recipe, strength, outs))
                _log(f"   {name} {recipe} {strength}: {rows[-1]['right']}/{n} right, "
                     f"{rows[-1]['wrong']} wrong, circles {rows[-1]['circles']} "
                     f"({time.perf_counter() - t0:.0f} s)")
    if rows:
        rows[0].update({f"db_{key}": v for key, v in info.items()})
    return rows


def _row(name: str, recipe: str, strength: str, outs: list[dict]) -> dict:
    err = np.array([o["err"] for o in outs])
    cpu = np.array([o["cpu"] for o in outs])
    right = int(np.sum(err <= RIGHT_DEG))
    wrong = int(np.sum(np.isfinite(err))) - right
    return {"benchmark": f"allsky {name} {recipe} {strength}", "peer": "-",
            "ratio": math.nan, "n_images": len(outs), "right": right, "wrong": wrong,
            "failed": len(outs) - right - wrong,
            "circles": sum(o["circle"] is not None for o in outs),
            "cpu_median_s": float(np.median(cpu)), "cpu_max_s": float(np.max(cpu)),
            "failures": sorted({o["status"] for o in outs if o["status"] != "match_found"})}


def main(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="3 frames a camera (default 10)")
    p.add_argument("--n", type=int, help="frames (pointings) a camera")
    p.add_argument("--cases", nargs="+", choices=list(CASES), help="default: all")
    p.add_argument("--recipes", nargs="+", choices=list(RECIPES), help="default: all")
    p.add_argument("--sky-circle", choices=("auto", "none", "true"), default="auto",
                   help="the extraction's sky_circle: found (auto, the default), none, or "
                        "the lens's true circle")
    p.add_argument("--out", help="write the rows as JSON here")
    a = p.parse_args(argv)
    from skysolve.extraction.kernels import warm_up as warm_up_extraction
    from skysolve.solver.warmup import warm_up

    warm_up()
    warm_up_extraction()
    rows = run(a.quick, a.n, a.cases, a.recipes, a.sky_circle)
    print(f"{'camera':<14} {'recipe':<16} {'strength':<9} right wrong failed circles "
          f"cpu_med_s cpu_max_s")
    for r in rows:
        _, name, recipe, strength = r["benchmark"].split(" ")
        print(f"{name:<14} {recipe:<16} {strength:<9} {r['right']:>2}/{r['n_images']:<3} "
              f"{r['wrong']:>5} {r['failed']:>6} {r['circles']:>7} {r['cpu_median_s']:>9.3f} "
              f"{r['cpu_max_s']:>9.3f}")
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
