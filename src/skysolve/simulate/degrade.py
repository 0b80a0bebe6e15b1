"""What real frames suffer, applied to any image: the degradations of hard frames.

Every degradation is a function ``f(image, strength, *, seed=None, ...) -> image``
that takes any 2-D numeric array (a rendered frame, or a real one such as the
test TIFFs) and returns a new float64 array (``quantise_8bit``, ``display_stretch``
and ``jpeg`` return uint8, as an 8-bit camera would). ``strength`` is a number >= 0: 0 leaves
the image alone, :data:`STRENGTHS` ``"moderate"`` (0.5) and ``"strong"`` (1.0)
are the two levels the benchmark measures, and each function's documentation
says what 1.0 means. They compose: :func:`degrade` applies a list of them with
independent, reproducible random streams (one child of the seed per step).

Scales come from the image itself (:func:`image_statistics`): the sky level
(median) and the noise sigma (clipped MAD of neighbour differences), so a
degradation means the same to a 16-bit and to a float frame. Light that is
added (gradients, glare, scattered light, foreground lit by street lamps)
brings its own photon noise, with the image's effective gain
``sky level / sigma^2`` (the noise of a sky-limited frame; a bias offset would
make it underestimate the gain, i.e. add more noise, not less).

Degradations
------------
``gradient``     a linear ramp across the frame (light pollution)
``light_dome``   a light dome rising steeply towards one corner
``moonlight``    glare from a bright source just outside the frame, and its ghost
``cloud``        thin cloud: smooth multiplicative attenuation with sharp-ish
                 edges, plus the light the cloud scatters
``nebula``       a bright emission nebula over part of the frame, knots and
                 filaments on every scale
``foreground``   silhouettes (tree branches from a corner, or a roof edge with an
                 antenna) that hide the sky, partly lit by a lamp
``trails``       satellite and aircraft trails (aircraft: two wing lights and a
                 blinking strobe), faint to bright
``hot_pixels``   single pixels of dark current, up to the full scale
``cosmic_rays``  short straight tracks of deposited charge
``defocus``      an annular (obstructed, out-of-focus) PSF
``smear``        tracking smear: every star drawn out along one direction
``untracked``    an untracked exposure: the sky turns about the pole's point (in or
                 beside the frame), every star drawn as an arc about it
``saturation``   a lower full well: bright stars saturate and bloom along columns
``vignetting``   light loss towards the corners
``noise``        extra Gaussian noise
``quantise_8bit`` stretched (black point, white point, gamma) to 8 bits
``display_stretch`` stretched hard to 8 bits for the eye: black point inside the sky,
                 strong gamma
``jpeg``         8 bits and JPEG compression (Pillow)
``text_overlay`` captions burned into a corner or along an edge (timestamp, exposure,
                 camera name), as all-sky and finder cameras write them (Pillow)
``compass``      compass letters (N, E, S, W ...) round an all-sky camera's image circle
``reticle``      a finder's or guide camera's cross, circles and boxes, as capture
                 software draws them over the image
``logo``         a small flat logo in a corner
``amp_glow``     CMOS amplifier glow from a corner or an edge
``banding``      row (and column) pattern noise and slow horizontal bands
``bad_columns``  hot and dead columns, full or partial, and a hot row
``diffraction_spikes`` the spikes of a reflector's spider vanes on every bright star
``dust``         dust shadows (donuts) a flat field would have removed
``binning``      k x k binning (the frame shrinks; stars a pixel wide at 4x)
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from .. import _args
from ..errors import InvalidArgumentError, InvalidTypeError
from ..extraction.background import robust_location
from .detector import bleed, rng_of
from .detector import cosmic_rays as _deposit_tracks

__all__ = ["DEGRADATIONS", "STRENGTHS", "ImageStatistics", "image_statistics", "degrade",
           "gradient", "light_dome", "moonlight", "cloud", "cloud_transmission", "nebula",
           "nebula_light", "foreground",
           "trails", "hot_pixels", "cosmic_rays", "defocus", "smear", "untracked",
           "saturation",
           "vignetting", "noise", "quantise_8bit", "display_stretch", "jpeg", "text_overlay",
           "compass", "reticle", "logo", "amp_glow", "banding", "bad_columns",
           "diffraction_spikes", "dust", "binning", "dust_transmission", "annulus_kernel",
           "line_kernel"]

#: The named strengths.
STRENGTHS = {"moderate": 0.5, "strong": 1.0}


@dataclass(frozen=True)
class ImageStatistics:
    """The scales a degradation is expressed in.

    Attributes
    ----------
    level : float
        Sky level (median of the image).
    sigma : float
        Noise (clipped MAD), > 0.
    gain : float
        Effective gain, electrons per image unit (``level / sigma^2``, at least
        ``1 / sigma``): the photon noise of added light.
    """

    level: float
    sigma: float
    gain: float


def image_statistics(image: ArrayLike) -> ImageStatistics:
    """Sky level, noise and effective gain of an image.

    The noise comes from differences of horizontally adjacent pixels (clipped
    MAD / sqrt 2), so gradients and vignetting do not inflate it.
    """
    a = np.asarray(image, dtype=np.float64)
    step = max(1, int(np.sqrt(a.size / 40_000)))
    rows = a[::step]
    finite = np.isfinite(a)
    level = float(np.median(rows[:, ::step][finite[::step, ::step]]))
    diff = (rows[:, 1::2] - rows[:, 0:-1:2]).ravel() if a.shape[1] > 1 else rows.ravel()
    _, sigma = robust_location(diff[np.isfinite(diff)])
    sigma /= np.sqrt(2.0)
    if not (np.isfinite(sigma) and sigma > 0):
        sigma = max(1e-3 * abs(level), 1e-6)
    gain = max(level / sigma**2, 1.0 / sigma)
    return ImageStatistics(level, float(sigma), float(gain))


def _float(image: Any) -> NDArray[np.float64]:
    a = np.asarray(image)
    if a.dtype == bool or a.dtype.kind not in "iuf":
        raise InvalidTypeError(f"image must be a numeric array, got dtype {a.dtype}")
    if a.ndim != 2 or a.size == 0:
        raise InvalidArgumentError(f"image must be a non-empty 2-D array, got shape {a.shape}")
    return a.astype(np.float64)


def _strength(value: Any) -> float:
    if isinstance(value, str):
        if value not in STRENGTHS:
            raise InvalidArgumentError(
                f"strength must be a number >= 0 or one of {sorted(STRENGTHS)}, got {value!r}")
        return STRENGTHS[value]
    return float(_args.nonnegative(value, "strength"))


def _add_light(img: NDArray, light: NDArray, st: ImageStatistics,
               rng: np.random.Generator) -> NDArray:
    """``img + light`` with the light's photon noise (Gaussian, variance light / gain)."""
    light = np.maximum(light, 0.0)
    return img + light + rng.standard_normal(img.shape) * np.sqrt(light / st.gain)


def _centred_grid(shape: tuple[int, int]) -> tuple[NDArray, NDArray]:
    """Centred pixel coordinates ``x`` (1, W) and ``y`` (H, 1) of the pixel centres."""
    h, w = shape
    return (np.arange(w) + 0.5 - 0.5 * w)[None, :], (np.arange(h) + 0.5 - 0.5 * h)[:, None]


def _smooth_field(shape: tuple[int, int], scale_px: float, rng: np.random.Generator
                  ) -> NDArray[np.float64]:
    """Smooth random field (zero mean, unit sd) with structure on ``scale_px``.

    White noise on a grid ~8 cells per scale, Gaussian-filtered and interpolated
    (cubic) to the image: cheap for big frames, smooth to the pixel.
    """
    h, w = shape
    cell = max(scale_px / 8.0, 1.0)
    gh, gw = int(np.ceil(h / cell)) + 4, int(np.ceil(w / cell)) + 4
    g = ndimage.gaussian_filter(rng.standard_normal((gh, gw)), 2.5, mode="wrap")
    g = (g - g.mean()) / max(g.std(), 1e-12)
    rows = (np.arange(h) + 0.5) / cell + 2.0
    cols = (np.arange(w) + 0.5) / cell + 2.0
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(g, [rr, cc], order=3, mode="nearest")


# ------------------------------------------------------------------------------------
# light added to the sky


def gradient(image: ArrayLike, strength: float | str = 0.5, *, angle_deg: float | None = None,
             seed: Any = None) -> NDArray[np.float64]:
    """Add a linear ramp of sky light (light pollution towards the horizon).

    At strength 1 the sky rises by 100 noise sigmas from one side of the frame
    to the other (along ``angle_deg``, default random); it is zero at the
    darkest edge.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    angle = np.radians(rng.uniform(0, 360) if angle_deg is None else angle_deg)
    x, y = _centred_grid(img.shape)
    t = x * np.cos(angle) + y * np.sin(angle)
    ramp = (t - t.min()) / max(float(np.ptp(t)), 1e-12)
    return _add_light(img, 100.0 * s * st.sigma * ramp, st, rng)


def light_dome(image: ArrayLike, strength: float | str = 0.5, *, corner: int | None = None,
               seed: Any = None) -> NDArray[np.float64]:
    """Add a light dome rising towards one corner (a town below the horizon).

    The added light is ``A exp(-d / L)`` with ``d`` the distance from the corner
    (0-3, default random), ``L`` a fifth of the image diagonal and, at strength
    1, ``A`` = 400 noise sigmas.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    h, w = img.shape
    k = int(rng.integers(4)) if corner is None else int(corner)
    x, y = _centred_grid(img.shape)
    cx = (-0.5 if k in (0, 3) else 0.5) * w
    cy = (-0.5 if k in (0, 1) else 0.5) * h
    d = np.hypot(x - cx, y - cy)
    light = 400.0 * s * st.sigma * np.exp(-d / (0.2 * np.hypot(w, h)))
    return _add_light(img, light, st, rng)


def moonlight(image: ArrayLike, strength: float | str = 0.5, *,
              seed: Any = None) -> NDArray[np.float64]:
    """Add glare from a bright source just outside the frame, and its ghost.

    The glare falls off as ``A / (1 + (d/d0)^2)^1.5`` from a point 5-25 % of the
    diagonal beyond a random edge (``d0`` = 15 % of the diagonal); the ghost is a
    soft-edged disc (radius 4-8 % of the diagonal) on the opposite side. At
    strength 1, ``A`` = 2000 noise sigmas and the ghost 15 sigmas.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    h, w = img.shape
    diag = float(np.hypot(w, h))
    theta = rng.uniform(0, 2 * np.pi)
    reach = 0.5 * min(w / max(abs(np.cos(theta)), 1e-9), h / max(abs(np.sin(theta)), 1e-9))
    r0 = reach + rng.uniform(0.05, 0.25) * diag
    sx, sy = r0 * np.cos(theta), r0 * np.sin(theta)
    x, y = _centred_grid(img.shape)
    d2 = ((x - sx) ** 2 + (y - sy) ** 2) / (0.15 * diag) ** 2
    light = 2000.0 * s * st.sigma / (1.0 + d2) ** 1.5
    gx, gy = -0.35 * sx, -0.35 * sy
    radius = rng.uniform(0.04, 0.08) * diag
    edge = np.clip((radius - np.hypot(x - gx, y - gy)) / 3.0 + 0.5, 0.0, 1.0)
    light = light + 15.0 * s * st.sigma * edge
    return _add_light(img, light, st, rng)


def cloud_transmission(shape: tuple[int, int], strength: float | str = 0.5, *,
                       seed: Any = None) -> NDArray[np.float64]:
    """The transmission map of :func:`cloud` (1 clear, down to ``1 - 0.85 strength``).

    Patches of a smooth random field (structure on a third of the frame) above a
    threshold, with edges a few dozen pixels wide.
    """
    s, rng = _strength(strength), rng_of(seed)
    h, w = shape
    field = _smooth_field((h, w), max(h, w) / 3.0, rng)
    cover = np.clip((field + 0.3) / 0.9, 0.0, 1.0)
    cover = cover * cover * (3.0 - 2.0 * cover)  # smoothstep: soft but definite edges
    return 1.0 - min(0.85 * s, 0.95) * cover


def cloud(image: ArrayLike, strength: float | str = 0.5, *,
          seed: Any = None) -> NDArray[np.float64]:
    """Thin cloud: the light above the sky level is multiplied by
    :func:`cloud_transmission` (same ``seed``) and the cloud adds the light it
    scatters, ``60 sigma x (1 - transmission) / 0.85`` at strength 1.

    Stars lose up to 85 % of their light at strength 1; the sky level under
    the cloud rises instead of falling (lit by the town or the moon).
    """
    img, s = _float(image), _strength(strength)
    rng = rng_of(seed)
    st = image_statistics(img)
    t = cloud_transmission(img.shape, s, seed=rng)
    out = st.level + (img - st.level) * t
    scatter = 60.0 * st.sigma * (1.0 - t) / 0.85
    return _add_light(out, scatter, st, rng)


#: The nebula's brightest knot at strength 1: the level above the sky that this quantile
#: of the frame's pixels reaches (the brightest stars' cores) ...
_NEBULA_QUANTILE = 0.9999
#: ... and at least this many noise sigmas.
_NEBULA_MIN_SIGMAS = 20.0
#: Its finest structure (px); the coarsest is a quarter of the frame's longer side.
_NEBULA_FINEST_PX = 8.0
#: A frame is clipped at its maximum when this many pixels lie within 3 noise sigmas of
#: it (read noise added after the clip spreads a saturated star's plateau; a rendered
#: star centred on a pixel corner ties four) and it lies this many above the sky.
_CLIP_PIXELS = 5
_CLIP_SIGMAS = 100.0


def nebula_light(shape: tuple[int, int], strength: float | str = 0.5, *,
                 seed: Any = None) -> NDArray[np.float64]:
    """The shape of the light :func:`nebula` adds: 0 to ``strength`` at its brightest.

    An emission nebula's brightness is lognormal: ``exp(0.8 g)`` of a sum ``g`` of
    smooth random fields on scales from 8 px to a quarter of the frame, doubling,
    weighted as ``scale^0.6`` (knots and filaments on every scale, the large ones
    strongest), normalised to unit deviation; its extent a smooth field on half the
    frame's scale, cut at zero, so that about half the frame is nebula and the rest
    open sky, with soft edges.
    """
    s, rng = _strength(strength), rng_of(seed)
    h, w = (int(v) for v in shape)
    scales = [_NEBULA_FINEST_PX]
    while scales[-1] * 2.0 <= max(h, w) / 4.0:
        scales.append(scales[-1] * 2.0)
    g = sum(_smooth_field((h, w), k, rng) * (k / scales[-1]) ** 0.6 for k in scales)
    bright = np.exp(0.8 * g / max(float(np.std(g)), 1e-12))
    light = bright * np.clip(_smooth_field((h, w), max(h, w) / 2.0, rng) + 0.3, 0.0, None)
    top = float(light.max())
    return light * (s / top) if top > 0 else light


def nebula(image: ArrayLike, strength: float | str = 0.5, *,
           seed: Any = None) -> NDArray[np.float64]:
    """Add the light of a bright emission nebula across part of the frame
    (:func:`nebula_light`, same ``seed``): structure on every scale from 8 px up, its
    brightest knot as bright above the sky as the frame's brightest stars at strength 1
    (the level its brightest 0.01 % of pixels reach, at least 20 noise sigmas: a
    nebula's core in a long exposure, saturating with them), half that at
    ``'moderate'``; its knots far wider than stars. The light brings its photon noise; a
    frame clipped at its top (saturated stars: :data:`_CLIP_PIXELS` or more pixels within
    3 noise sigmas of a maximum 100 sigmas above the sky) stays clipped at its
    maximum, as the sensor would have clipped the sum."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if s == 0:
        return img
    st = image_statistics(img)
    values = img[np.isfinite(img)]  # (NaN pixels stay NaN)
    if values.size == 0:
        return img
    top = float(values.max())
    clipped = (top - st.level >= _CLIP_SIGMAS * st.sigma
               and int(np.count_nonzero(values >= top - 3.0 * st.sigma)) >= _CLIP_PIXELS)
    peak = max(float(np.quantile(values, _NEBULA_QUANTILE)) - st.level,
               _NEBULA_MIN_SIGMAS * st.sigma)
    out = _add_light(img, peak * nebula_light(img.shape, s, seed=rng), st, rng)
    return np.minimum(out, top) if clipped else out


# ------------------------------------------------------------------------------------
# foreground


def _segments_mask(shape: tuple[int, int], segs: NDArray) -> NDArray[np.bool_]:
    """Pixels within ``r`` of any segment ``(x0, y0, x1, y1, r)`` (array coordinates)."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1, r in segs:
        c0 = max(int(np.floor(min(x0, x1) - r)), 0)
        c1 = min(int(np.ceil(max(x0, x1) + r)) + 1, w)
        r0 = max(int(np.floor(min(y0, y1) - r)), 0)
        r1 = min(int(np.ceil(max(y0, y1) + r)) + 1, h)
        if c0 >= c1 or r0 >= r1:
            continue
        px = np.arange(c0, c1) + 0.5
        py = (np.arange(r0, r1) + 0.5)[:, None]
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
        d2 = (px - x0 - t * dx) ** 2 + (py - y0 - t * dy) ** 2
        mask[r0:r1, c0:c1] |= d2 <= r * r
    return mask


def _tree(shape: tuple[int, int], s: float, rng: np.random.Generator) -> NDArray:
    """Segments of a branching tree growing in from a random corner (array coordinates)."""
    h, w = shape
    diag = float(np.hypot(w, h))
    corner = rng.integers(4)
    x = 0.0 if corner in (0, 3) else float(w)
    y = 0.0 if corner in (0, 1) else float(h)
    heading = np.arctan2(0.5 * h - y, 0.5 * w - x) + rng.uniform(-0.4, 0.4)
    stack = [(x, y, heading, (0.35 + 0.3 * s) * diag, 0.012 * diag, 0)]
    segs = []
    while stack and len(segs) < 4000:
        x, y, a, length, r, depth = stack.pop()
        n = max(int(length / 6.0), 1)
        for _ in range(n):  # a slightly wandering limb
            a += rng.normal(0.0, 0.12)
            x1, y1 = x + 6.0 * np.cos(a), y + 6.0 * np.sin(a)
            segs.append((x, y, x1, y1, max(r, 0.7)))
            x, y, r = x1, y1, r * 0.985
            if depth < 5 and rng.random() < 0.09:
                side = rng.choice([-1.0, 1.0])
                stack.append((x, y, a + side * rng.uniform(0.4, 1.1), length * 0.45,
                              r * 0.6, depth + 1))
    return np.asarray(segs).reshape(-1, 5)


def _roof(shape: tuple[int, int], s: float, rng: np.random.Generator) -> NDArray[np.bool_]:
    """A roof rising from the bottom edge with a slanted ridge and an antenna mast."""
    h, w = shape
    cols = np.arange(w) + 0.5
    rows = (np.arange(h) + 0.5)[:, None]
    base = h * (1.0 - (0.15 + 0.25 * s))
    slope = rng.uniform(-0.3, 0.3)
    ridge = base + slope * (cols - 0.5 * w)
    mask = rows >= ridge[None, :]
    mx = rng.uniform(0.2, 0.8) * w
    top = base - rng.uniform(0.15, 0.3) * h
    ridge_at = base + slope * (mx - 0.5 * w)
    mast = np.array([(mx, ridge_at, mx, top, 2.0),
                     (mx - 0.06 * w, top + 0.04 * h, mx + 0.06 * w, top + 0.04 * h, 1.5)])
    return mask | _segments_mask(shape, mast)


def _shifted(mask: NDArray[np.bool_], shift: NDArray) -> NDArray[np.bool_]:
    """``mask`` moved by ``shift`` (rows, columns), its edge repeated beyond the frame: a
    silhouette that runs out of the frame goes on there (no lit edge along the border)."""
    dy, dx = int(shift[0]), int(shift[1])
    p = max(abs(dy), abs(dx))
    h, w = mask.shape
    return np.pad(mask, p, mode="edge")[p - dy:p - dy + h, p - dx:p - dx + w]


def foreground(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "branches",
               seed: Any = None) -> NDArray[np.float64]:
    """Silhouettes in front of the sky, partly lit by a lamp.

    ``kind`` ``'branches'``: a tree growing in from a corner (its reach grows with
    strength); ``'roof'``: a roof edge covering the bottom 15-40 % of the frame
    with an antenna mast. The silhouette hides the sky and is darker than it by
    ``10 sigma x strength``; its side facing a lamp (random direction) is lit by
    a speckled texture, up to ``80 sigma x strength`` (lit twigs and tiles look
    like clusters of stars).
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    _args.choice(kind, "kind", ("branches", "roof"))
    st = image_statistics(img)
    if s == 0:
        return img
    mask = (_segments_mask(img.shape, _tree(img.shape, s, rng)) if kind == "branches"
            else _roof(img.shape, s, rng))
    lamp = rng.uniform(0, 2 * np.pi)
    shift = np.rint(3.0 * np.array([np.sin(lamp), np.cos(lamp)])).astype(int)
    lit = mask & ~_shifted(mask, shift)
    lit = ndimage.binary_dilation(lit, iterations=1) & mask
    texture = np.maximum(ndimage.gaussian_filter(rng.standard_normal(img.shape), 1.0), 0.0)
    texture /= max(float(texture.max()), 1e-12)
    dark = st.level - 10.0 * s * st.sigma
    out = np.where(mask, dark + rng.standard_normal(img.shape) * st.sigma, img)
    return _add_light(out, np.where(lit, 80.0 * s * st.sigma * texture, 0.0), st, rng)


# ------------------------------------------------------------------------------------
# trails, hot pixels, cosmic rays


def _add_line(light: NDArray, p0: NDArray, p1: NDArray, peak: float, width: float) -> None:
    """Add a trail from ``p0`` to ``p1`` (array coordinates, x then y) to ``light`` in
    place: a Gaussian cross-section of sigma ``width`` px and ``peak`` on its axis."""
    h, w = light.shape
    reach = 5.0 * width
    c0 = max(int(np.floor(min(p0[0], p1[0]) - reach)), 0)
    c1 = min(int(np.ceil(max(p0[0], p1[0]) + reach)) + 1, w)
    r0 = max(int(np.floor(min(p0[1], p1[1]) - reach)), 0)
    r1 = min(int(np.ceil(max(p0[1], p1[1]) + reach)) + 1, h)
    if c0 >= c1 or r0 >= r1:
        return
    px = (np.arange(c0, c1) + 0.5)[None, :]
    py = (np.arange(r0, r1) + 0.5)[:, None]
    d = p1 - p0
    t = np.clip(((px - p0[0]) * d[0] + (py - p0[1]) * d[1]) / max(float(d @ d), 1e-12), 0, 1)
    dist2 = (px - p0[0] - t * d[0]) ** 2 + (py - p0[1] - t * d[1]) ** 2
    light[r0:r1, c0:c1] += peak * np.exp(-0.5 * dist2 / width**2)


def _crossing(shape: tuple[int, int], rng: np.random.Generator) -> tuple[NDArray, NDArray]:
    """End points of a straight path across (most of) the frame, array coordinates."""
    h, w = shape
    centre = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    a = rng.uniform(0, np.pi)
    half = rng.uniform(0.4, 1.0) * np.hypot(w, h)
    u = np.array([np.cos(a), np.sin(a)])
    return centre - half * u, centre + half * u


def trails(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "mixed",
           seed: Any = None) -> NDArray[np.float64]:
    """Satellite and aircraft trails across the frame.

    ``1 + round(2 strength)`` trails (``kind`` ``'satellite'``, ``'aircraft'`` or
    ``'mixed'``), each with a peak surface brightness log-uniform between
    5 noise sigmas and ``1000 strength`` noise sigmas. A satellite is one
    line of the PSF's width (sigma 1.2 px); an aircraft two wing lights 6-12 px
    apart plus a strobe that flashes every 20-40 px, 5x brighter.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    _args.choice(kind, "kind", ("satellite", "aircraft", "mixed"))
    st = image_statistics(img)
    n = int(round(2 * s)) + 1 if s > 0 else 0
    light = np.zeros(img.shape)
    lo = 5.0 * st.sigma
    for _ in range(n):
        hi = max(1000.0 * s * st.sigma, 2.0 * lo)
        peak = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        p0, p1 = _crossing(img.shape, rng)
        plane = kind == "aircraft" or (kind == "mixed" and rng.random() < 0.4)
        if not plane:
            _add_line(light, p0, p1, peak, 1.2)
            continue
        u = (p1 - p0) / np.linalg.norm(p1 - p0)
        off = np.array([-u[1], u[0]]) * 0.5 * rng.uniform(6.0, 12.0)
        _add_line(light, p0 + off, p1 + off, 0.5 * peak, 1.2)
        _add_line(light, p0 - off, p1 - off, 0.5 * peak, 1.2)
        step = rng.uniform(20.0, 40.0)
        for t in np.arange(rng.uniform(0, step), np.linalg.norm(p1 - p0), step):
            q = p0 + t * u
            _add_line(light, q, q + 2.0 * u, 5.0 * peak, 1.2)
    return _add_light(img, light, st, rng)


def hot_pixels(image: ArrayLike, strength: float | str = 0.5, *,
               seed: Any = None) -> NDArray[np.float64]:
    """Add dark current to single pixels: ``4e-4 x strength`` of them, each
    log-uniform between 10 and 2000 noise sigmas (many far brighter than most
    stars)."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    n = int(round(4e-4 * s * img.size))
    if n == 0:
        return img
    where = rng.choice(img.size, size=n, replace=False)
    lo = 10.0 * st.sigma
    hi = 2000.0 * st.sigma
    img.reshape(-1)[where] += np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return img


def cosmic_rays(image: ArrayLike, strength: float | str = 0.5, *,
                seed: Any = None) -> NDArray[np.float64]:
    """Add short straight cosmic-ray tracks: ``4e-5 x strength`` per pixel (31 on a
    1024 x 768 frame at strength 1), 30-600 noise sigmas per pixel of path."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    n = int(round(4e-5 * s * img.size))
    if n:
        _deposit_tracks(img, n, rng, charge=(30.0 * st.sigma, 600.0 * st.sigma))
    return img


# ------------------------------------------------------------------------------------
# the optics and the sensor


def annulus_kernel(outer_px: float, inner_fraction: float = 0.5) -> NDArray[np.float64]:
    """A normalised out-of-focus PSF: a ring between ``inner_fraction x outer_px``
    and ``outer_px``, area-sampled (4x4 per pixel)."""
    half = int(np.ceil(outer_px)) + 1
    sub = (np.arange(-half * 4, half * 4 + 4) + 0.5) / 4.0 - 0.5
    r = np.hypot(sub[None, :], sub[:, None])
    ring = ((r <= outer_px) & (r >= inner_fraction * outer_px)).astype(np.float64)
    n = 2 * half + 1
    k = ring.reshape(n, 4, n, 4).sum(axis=(1, 3))
    return k / max(k.sum(), 1e-12)


def line_kernel(length_px: float, angle_deg: float) -> NDArray[np.float64]:
    """A normalised straight smear of ``length_px`` along ``angle_deg`` (x towards y)."""
    half = int(np.ceil(0.5 * length_px)) + 1
    n = 2 * half + 1
    k = np.zeros((n, n))
    t = np.linspace(-0.5 * length_px, 0.5 * length_px, max(int(length_px * 8), 2))
    a = np.radians(angle_deg)
    c = np.clip(np.rint(half + t * np.cos(a)).astype(int), 0, n - 1)
    r = np.clip(np.rint(half + t * np.sin(a)).astype(int), 0, n - 1)
    np.add.at(k, (r, c), 1.0)
    return k / k.sum()


def _blur(img: NDArray, kernel: NDArray, rng: np.random.Generator) -> NDArray[np.float64]:
    """Convolve the light above the sky with ``kernel``; restore the noise it smoothed."""
    st = image_statistics(img)
    out = st.level + ndimage.convolve(img - st.level, kernel, mode="nearest")
    lost = max(1.0 - float(np.sum(kernel**2)), 0.0)
    return out + rng.standard_normal(img.shape) * st.sigma * np.sqrt(lost)


def defocus(image: ArrayLike, strength: float | str = 0.5, *,
            seed: Any = None) -> NDArray[np.float64]:
    """Defocus: the image convolved with a ring of outer radius ``1 + 5 strength`` px
    (inner radius half of it, a central obstruction), noise restored."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if s == 0:
        return img
    return _blur(img, annulus_kernel(1.0 + 5.0 * s), rng)


def smear(image: ArrayLike, strength: float | str = 0.5, *, angle_deg: float | None = None,
          seed: Any = None) -> NDArray[np.float64]:
    """Tracking smear: every star drawn out along ``angle_deg`` (default random) over
    ``8 strength`` px, noise restored."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if s == 0:
        return img
    angle = rng.uniform(0, 180) if angle_deg is None else float(angle_deg)
    return _blur(img, line_kernel(8.0 * s, angle), rng)


def untracked(image: ArrayLike, strength: float | str = 0.5, *,
              pole: tuple[float, float] | None = None,
              seed: Any = None) -> NDArray[np.float64]:
    """An untracked exposure: the sky turns about ``pole`` (``(x, y)`` px, the celestial
    pole's place; default random, 0.35-1.5 half-diagonals from the frame's centre in any
    direction) during it, every star drawn as an arc about it, ``8 strength`` px long at
    the frame's centre and in proportion to the distance from the pole elsewhere; noise
    restored.

    The light above the sky is the mean of copies of the frame turned about the pole by
    the middles of equal parts of the exposure's turn (one a pixel of the longest arc in
    the frame; bilinear): a star's intensity centroid stays at its place at mid-exposure,
    up to a third of its arc's sagitta towards the pole (0.2 px for an arc of 32 px and
    8 deg). The noise the mean smoothed is restored
    for a pixel's arc of ``n`` px as ``sqrt(1 - 1/n)`` of the frame's sigma.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if s == 0:
        return img
    h, w = img.shape
    cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
    if pole is None:
        a = rng.uniform(0.0, 2.0 * np.pi)
        d = rng.uniform(0.35, 1.5) * 0.5 * np.hypot(w, h)
        pole = (cx + d * np.cos(a), cy + d * np.sin(a))
    px, py = (float(v) for v in pole)
    if not (np.isfinite(px) and np.isfinite(py)) or (px, py) == (cx, cy):
        raise InvalidArgumentError(
            f"pole must be a finite point other than the frame's centre, got {pole!r}")
    turn = 8.0 * s / np.hypot(cx - px, cy - py)  # radians over the exposure
    x, y = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    far = np.hypot(x - px, y - py)
    n = max(int(np.ceil(turn * far.max())) + 1, 2)
    st = image_statistics(img)
    light = img - st.level
    out = np.zeros_like(light)
    for t in turn * ((np.arange(n) + 0.5) / n - 0.5):
        c, sn = np.cos(t), np.sin(t)
        # (the light at (x, y) came from the point the turn brings there)
        sx = px + c * (x - px) + sn * (y - py)
        sy = py - sn * (x - px) + c * (y - py)
        out += ndimage.map_coordinates(light, [sy, sx], order=1, mode="nearest")
    out /= n
    arc = np.maximum(turn * far, 1.0)
    return st.level + out + rng.standard_normal(img.shape) * st.sigma * np.sqrt(1.0 - 1.0 / arc)


def saturation(image: ArrayLike, strength: float | str = 0.5, *,
               seed: Any = None) -> NDArray[np.float64]:
    """A lower full well: pixels above ``level + 1000 sigma x 10^(-1.5 strength)`` saturate
    and their excess blooms up and down the column (charge conserved)."""
    img, s = _float(image), _strength(strength)
    if s == 0:
        return img
    st = image_statistics(img)
    full = st.level + 1000.0 * st.sigma * 10.0 ** (-1.5 * s)
    bleed(img, full)
    return img


def vignetting(image: ArrayLike, strength: float | str = 0.5, *,
               seed: Any = None) -> NDArray[np.float64]:
    """Multiply by ``1 - 0.7 strength (r / r_corner)^2`` (sky and stars alike)."""
    img, s = _float(image), _strength(strength)
    h, w = img.shape
    x, y = _centred_grid(img.shape)
    return img * np.maximum(1.0 - 0.7 * s * (x * x + y * y) / (0.25 * (w * w + h * h)), 0.0)


def noise(image: ArrayLike, strength: float | str = 0.5, *,
          seed: Any = None) -> NDArray[np.float64]:
    """Add Gaussian noise of ``1.5 strength`` times the image's own sigma."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    st = image_statistics(img)
    return img + rng.standard_normal(img.shape) * 1.5 * s * st.sigma


def quantise_8bit(image: ArrayLike, strength: float | str = 0.5, *,
                  seed: Any = None) -> NDArray[np.uint8]:
    """Stretch to 8 bits as a camera's JPEG pipeline does.

    Black point 4 sigma below the sky, white point ``level + 2000 sigma x
    10^(-1.5 strength)`` (bright stars clip: above 355 sigma at strength 0.5,
    63 sigma at 1), gamma ``1 / (1 + strength)``.
    A uint8 image is returned unchanged.
    """
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.copy()
    img, s = _float(a), _strength(strength)
    st = image_statistics(img)
    black = st.level - 4.0 * st.sigma
    white = st.level + 2000.0 * st.sigma * 10.0 ** (-1.5 * s)
    return _to_8_bits(img, black, white, 1.0 / (1.0 + s))


def _to_8_bits(img: NDArray, black: float, white: float, gamma: float) -> NDArray[np.uint8]:
    """``img`` from ``black`` to ``white`` at ``gamma``, rounded to 0-255."""
    t = np.clip((img - black) / max(white - black, 1e-12), 0.0, 1.0)
    return np.rint(255.0 * t ** gamma).astype(np.uint8)


def display_stretch(image: ArrayLike, strength: float | str = 0.5, *,
                    seed: Any = None) -> NDArray[np.uint8]:
    """Stretch to 8 bits as a picture is saved for the eye, hard: black point at the
    ``20 strength``-th percentile of the frame (the sky's darker part clips to 0: a
    vignetted frame's corners, a gradient's dark side), white point at the 99.9th,
    gamma ``1 / (1 + 14 strength / 3)`` (0.3 at moderate, 0.18 at strong: the sky rises
    to ~200 of 255, its noise spread widest just above the black point, and every
    bright star is a plateau at 255). A uint8 image is returned unchanged; strength 0
    is a linear stretch from the minimum.
    """
    a = np.asarray(image)
    if a.dtype == np.uint8:
        return a.copy()
    img, s = _float(a), _strength(strength)
    black, white = np.percentile(img, [min(20.0 * s, 99.0), 99.9])
    return _to_8_bits(img, black, white, 1.0 / (1.0 + 14.0 * s / 3.0))


def jpeg(image: ArrayLike, strength: float | str = 0.5, *,
         seed: Any = None) -> NDArray[np.uint8]:
    """8 bits (:func:`quantise_8bit` unless already uint8) and JPEG compression at
    quality ``90 - 50 strength`` (Pillow, greyscale, 4:4:4)."""
    from PIL import Image

    s = _strength(strength)
    a = quantise_8bit(image, s)
    buf = io.BytesIO()
    Image.fromarray(a, mode="L").save(buf, format="JPEG", quality=int(round(90 - 50 * s)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"), dtype=np.uint8)


# ------------------------------------------------------------------------------------
# overlays


#: Where :func:`text_overlay` writes: a corner, or lines along the top or bottom edge.
TEXT_PLACES = ("top-left", "top-right", "bottom-left", "bottom-right", "top", "bottom")


def _caption_fields(rng: np.random.Generator) -> list[str]:
    """The status fields an all-sky camera writes, with random values."""
    h, m, sec = (int(v) for v in rng.integers((0, 0, 0), (24, 60, 60)))
    return [f"2026-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d} "
            f"{h:02d}:{m:02d}:{sec:02d} UTC",
            f"Exposure {rng.uniform(0.5, 60.0):.3f} s  Gain {int(rng.integers(0, 400))}",
            f"Sensor {rng.uniform(-20.0, 30.0):+.1f} C  Stars {int(rng.integers(0, 900))}",
            f"AllSky Cam #{int(rng.integers(1, 10))}  Lat {rng.uniform(0, 90):.2f}N "
            f"Lon {rng.uniform(0, 180):.2f}W",
            f"SQM {rng.uniform(16.0, 22.0):.2f}  Moon {int(rng.integers(0, 101))}%  "
            f"Sun {rng.uniform(-60.0, -12.0):.1f}",
            f"T={h:02d}:{m:02d}:{sec:02d}.{int(rng.integers(1000)):03d} "
            f"RA={int(rng.integers(24))}h{int(rng.integers(60)):02d}m "
            f"DEC={int(rng.integers(-89, 90)):+d} ALT{int(rng.integers(10, 90))}"]


def _font(font: Any, rng: np.random.Generator, sizes: tuple[int, int] = (10, 25)) -> Any:
    """The Pillow font :func:`text_overlay` writes with (see there); a TrueType one of a
    random size in ``sizes`` (px, the upper bound excluded)."""
    import PIL
    from PIL import ImageFont, features

    # Pillow's own TrueType font came with Pillow 10.1 (and load_default_imagefont with
    # it); Pillow 10.0's load_default, which takes no size, is the bitmap font
    own = hasattr(ImageFont, "load_default_imagefont")
    if font is None:
        font = ("truetype" if own and features.check("freetype2") and rng.random() < 0.5
                else "bitmap")
    if font == "bitmap":
        return ImageFont.load_default_imagefont() if own else ImageFont.load_default()
    size = int(rng.integers(*sizes))
    if font == "truetype":
        if not own:
            raise InvalidArgumentError(
                f"font='truetype' needs Pillow 10.1 or later (its own TrueType font), not "
                f"{PIL.__version__}: font='bitmap' or a .ttf/.otf file")
        return ImageFont.load_default(size)  # Pillow's own TrueType font (Aileron)
    if isinstance(font, (str, Path)) and Path(font).suffix.lower() in (".ttf", ".otf"):
        return ImageFont.truetype(str(font), size)
    raise InvalidArgumentError(
        f"font must be 'bitmap', 'truetype', None or a .ttf/.otf file, got {font!r}")


def text_overlay(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "white",
                 font: Any = None, place: str | None = None,
                 seed: Any = None) -> NDArray[np.float64]:
    """Burn captions into the frame, as all-sky and finder cameras do.

    ``max(1, round(6 strength))`` lines of status text (a timestamp, exposure and gain,
    sensor temperature, the camera's name ...) in a corner or along the top or bottom
    edge (``place``, one of :data:`TEXT_PLACES`, default random). ``kind``
    ``'white'``: the text at the frame's full scale (its maximum, at least 100 noise
    sigmas above the sky, at most the largest value of an integer image's type), so
    that it ties with saturated stars; ``'grey'``: 40 % of
    the way from the sky to that; ``'boxed'``: white text on an opaque box at the
    frame's minimum. ``font``: ``'bitmap'`` (Pillow's bitmap font, hard-edged, 11 px
    lines), ``'truetype'`` (Pillow's own TrueType font, anti-aliased, 10-24 px; Pillow
    10.1 or later), a .ttf/.otf file (10-24 px), or None (either of the first two).
    Anti-aliased edges blend the text into the sky by their coverage; the overlay adds
    no noise.
    """
    from PIL import Image, ImageDraw

    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    dtype = np.asarray(image).dtype
    kind = _args.choice(kind, "kind", ("white", "grey", "boxed"))
    place = _args.choice(place, "place", TEXT_PLACES, allow_none=True)
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    face = _font(font, rng)
    place = TEXT_PLACES[int(rng.integers(len(TEXT_PLACES)))] if place is None else place
    fields = _caption_fields(rng)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    margin = int(rng.integers(3, 13))
    lines = []
    for i in range(max(1, int(round(6.0 * s)))):
        line = fields[(i if place in ("top", "bottom") else int(rng.integers(len(fields))))
                      % len(fields)]
        # a status bar: more fields while they fit in the frame's width
        for k in (rng.permutation(len(fields)) if place in ("top", "bottom") else ()):
            longer = line + "   " + fields[k]
            if probe.textlength(longer, font=face) <= w - 2 * margin:
                line = longer
        lines.append(line)
    top = [probe.textbbox((0, 0), line, font=face) for line in lines]
    pitch = max(b[3] for b in top) + int(rng.integers(1, 4))
    mask = Image.new("L", (w, h))
    draw = ImageDraw.Draw(mask)
    block = pitch * len(lines)
    y0 = margin if place.startswith("top") else h - margin - block
    for i, (line, box) in enumerate(zip(lines, top, strict=True)):
        x = w - margin - box[2] if place.endswith("right") else margin
        draw.text((x, y0 + i * pitch), line, fill=255, font=face)
    cover = np.asarray(mask, dtype=np.float64) / 255.0
    if kind == "boxed":
        rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
        if len(rows):
            pad = 3
            img[max(rows[0] - pad, 0):rows[-1] + pad + 1,
                max(cols[0] - pad, 0):cols[-1] + pad + 1] = float(np.nanmin(img))
    return _burn(img, cover, _overlay_value(img, st, dtype, kind))


def _overlay_value(img: NDArray, st: ImageStatistics, dtype: np.dtype, kind: str) -> float:
    """The value an overlay of ``kind`` is drawn in: ``'grey'`` 40 % of the way from the
    sky to the frame's full scale, else the full scale itself (its maximum, at least 100
    noise sigmas above the sky, at most the largest value of an integer image's type:
    it ties with saturated stars)."""
    full = max(float(np.nanmax(img)), st.level + 100.0 * st.sigma)
    if dtype.kind in "iu":
        full = min(full, float(np.iinfo(dtype).max))
    return st.level + 0.4 * (full - st.level) if kind == "grey" else full


def _burn(img: NDArray, cover: NDArray, value: float) -> NDArray[np.float64]:
    """``img`` with ``value`` drawn over it at each pixel's ``cover`` (0-1): a drawn
    overlay replaces the sky and adds no noise; anti-aliased edges blend by coverage."""
    return img + cover * (value - img)


def _cover(mask: Any, supersample: int) -> NDArray[np.float64]:
    """The coverage (0-1) of a Pillow ``'L'`` mask drawn ``supersample`` times larger
    (1: aliased, as drawn)."""
    a = np.asarray(mask, dtype=np.float64) / 255.0
    if supersample == 1:
        return a
    h, w = a.shape[0] // supersample, a.shape[1] // supersample
    return a[:h * supersample, :w * supersample].reshape(
        h, supersample, w, supersample).mean(axis=(1, 3))


def _lettering(text: str, face: Any, height: float | None = None) -> NDArray[np.float64]:
    """The coverage (0-1) of ``text`` written in ``face``, cropped to its ink; Pillow's
    bitmap font (11 px) enlarged by an integer factor (blocky) towards ``height``
    (px)."""
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=face)
    canvas = Image.new("L", (box[2] - box[0] + 2, box[3] - box[1] + 2))
    ImageDraw.Draw(canvas).text((1 - box[0], 1 - box[1]), text, fill=255, font=face)
    g = np.asarray(canvas, dtype=np.float64) / 255.0
    rows, cols = np.flatnonzero(g.any(axis=1)), np.flatnonzero(g.any(axis=0))
    if len(rows):  # (the box holds the font's line, not only the ink)
        g = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    if height is not None and not hasattr(face, "size"):  # (the bitmap font)
        zoom = max(int(round(height / max(box[3] - box[1], 1))), 1)
        g = np.kron(g, np.ones((zoom, zoom)))
    return g


#: Where :func:`compass` writes: on the image circle of an all-sky lens inscribed in
#: the frame's height, or at the middles of the frame's edges.
COMPASS_PLACES = ("circle", "edges")


def _drawing_inputs(image: ArrayLike, strength: float | str, kind: str, seed: Any):
    """``(image as float, strength, generator, the input's dtype, kind)`` of a graphic
    burned in as :func:`text_overlay` burns its text (``kind``: ``'white'`` or
    ``'grey'``)."""
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    return img, s, rng, np.asarray(image).dtype, _args.choice(kind, "kind", ("white", "grey"))


def compass(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "white",
            font: Any = None, place: str | None = None,
            seed: Any = None) -> NDArray[np.float64]:
    """Burn compass letters into the frame, as all-sky cameras mark the horizon.

    N, E, S, W (strength up to 0.75) and also NE, SE, SW, NW (above), large (a
    TrueType font of a size from ``10 + 40 strength`` to ``20 + 60 strength`` px, or
    the bitmap font enlarged by an integer factor towards it: blocky), at their
    azimuths (north up to 20 deg off the frame's top, east left or right) just inside
    the image circle of a lens inscribed in the frame's height (``place='circle'``) or
    at the middles of the frame's edges and its corners (``'edges'``; default
    random). ``kind``: ``'white'`` or ``'grey'`` as for :func:`text_overlay`, as is
    ``font`` (``'bitmap'``, ``'truetype'``, a .ttf/.otf file or None).
    """
    img, s, rng, dtype, kind = _drawing_inputs(image, strength, kind, seed)
    place = _args.choice(place, "place", COMPASS_PLACES, allow_none=True)
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    size = rng.uniform(10.0 + 40.0 * s, 20.0 + 60.0 * s)
    face = _font(font, rng, (int(size), int(size) + 1))
    place = COMPASS_PLACES[int(rng.integers(2))] if place is None else place
    north = np.radians(rng.uniform(-20.0, 20.0))
    east = 1.0 if rng.random() < 0.5 else -1.0
    names = ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]
    points = names[::2] if s <= 0.75 else names
    margin = int(rng.integers(4, 16))
    cover = np.zeros((h, w))
    for name in points:
        az = north + east * np.radians(45.0 * names.index(name))
        g = _lettering(name, face, size)
        th, tw = g.shape
        # the letter's centre, as far out along its azimuth as the circle or frame allows
        dx, dy = np.sin(az), -np.cos(az)
        if place == "circle":
            r = 0.5 * min(h, w) - margin - 0.5 * max(tw, th)
        else:
            r = min((0.5 * w - margin - 0.5 * tw) / max(abs(dx), 1e-9),
                    (0.5 * h - margin - 0.5 * th) / max(abs(dy), 1e-9))
        r0 = int(round(0.5 * h + r * dy - 0.5 * g.shape[0]))
        c0 = int(round(0.5 * w + r * dx - 0.5 * g.shape[1]))
        r0, c0 = min(max(r0, 0), h - g.shape[0]), min(max(c0, 0), w - g.shape[1])
        if r0 < 0 or c0 < 0:  # (a frame smaller than the letter)
            continue
        part = cover[r0:r0 + g.shape[0], c0:c0 + g.shape[1]]
        np.maximum(part, g, out=part)
    return _burn(img, cover, _overlay_value(img, st, dtype, kind))


def reticle(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "white",
            seed: Any = None) -> NDArray[np.float64]:
    """Burn a finder's or guide camera's reticle into the frame, as capture software
    draws it over the image (and a screenshot keeps it).

    A cross through the centre (full length, or with a gap round the centre, or dashed)
    and ``round(3 strength) - 1`` more shapes: circles round the centre and rectangles
    (a region of interest), 1 or 2 px wide, aliased or anti-aliased, off the centre by
    up to 2 px. ``kind``: ``'white'`` or ``'grey'`` as for :func:`text_overlay`.
    """
    from PIL import Image, ImageDraw

    img, s, rng, dtype, kind = _drawing_inputs(image, strength, kind, seed)
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    k = 4 if rng.random() < 0.5 else 1  # (anti-aliased: drawn 4 times larger)
    width = int(rng.integers(1, 3)) * k
    mask = Image.new("L", (w * k, h * k))
    draw = ImageDraw.Draw(mask)
    cx, cy = (0.5 * w + rng.uniform(-2.0, 2.0)) * k, (0.5 * h + rng.uniform(-2.0, 2.0)) * k
    style = ("full", "gap", "dashed")[int(rng.integers(3))]
    gap = rng.uniform(0.03, 0.1) * min(h, w) * k if style == "gap" else 0.0
    dash, space = rng.uniform(6.0, 20.0) * k, rng.uniform(3.0, 10.0) * k
    for across, along, mid in ((True, w * k, cx), (False, h * k, cy)):
        if style == "dashed":
            stops = [(a, min(a + dash, along)) for a in np.arange(0.0, along, dash + space)]
        else:
            stops = [(0.0, mid - gap), (mid + gap, along)] if gap else [(0.0, along)]
        for a, b in stops:
            if across:
                draw.line([(a, cy), (b, cy)], fill=255, width=width)
            else:
                draw.line([(cx, a), (cx, b)], fill=255, width=width)
    for _ in range(max(0, int(round(3.0 * s)) - 1)):
        r = rng.uniform(0.1, 0.45) * min(h, w) * k
        if rng.random() < 0.6:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=255, width=width)
        else:
            a = r * rng.uniform(1.0, min(1.6, 0.48 * w * k / r))
            draw.rectangle([cx - a, cy - r, cx + a, cy + r], outline=255, width=width)
    return _burn(img, _cover(mask, k), _overlay_value(img, st, dtype, kind))


def logo(image: ArrayLike, strength: float | str = 0.5, *, kind: str = "white",
         font: Any = None, seed: Any = None) -> NDArray[np.float64]:
    """Burn a small logo into a corner of the frame, as cameras and capture software
    sign their images.

    A flat bitmap ``(0.04 + 0.08 strength)`` of the frame's height tall: two to four
    capital letters cut out of a filled badge, in a ring, or in a bold outline; the
    letters in the value of ``kind`` (``'white'`` or ``'grey'``, as for
    :func:`text_overlay`, as is ``font``), the badge, ring or outline in it too or,
    half the time, 60 % of the way from the sky to it.
    """
    from PIL import Image, ImageDraw

    img, s, rng, dtype, kind = _drawing_inputs(image, strength, kind, seed)
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    size = max(int(round((0.04 + 0.08 * s) * h)), 8)
    face = _font(font, rng, (int(0.55 * size), int(0.55 * size) + 1))
    word = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, int(rng.integers(2, 5))))
    text = _lettering(word, face, 0.4 * size)
    th, tw = text.shape
    lh, lw = max(size, th + 4), max(tw + size // 2, size)
    second = 0.6 if rng.random() < 0.5 else 1.0
    style = ("badge", "ring", "letters")[int(rng.integers(3))]
    frame = Image.new("L", (lw, lh))
    line = max(size // 12, 1)
    if style == "badge":
        ImageDraw.Draw(frame).rounded_rectangle([0, 0, lw - 1, lh - 1], radius=size // 4,
                                                fill=255)
    elif style == "ring":
        ImageDraw.Draw(frame).ellipse([0, 0, lw - 1, lh - 1], outline=255, width=line)
    back = np.asarray(frame, dtype=np.float64) / 255.0  # (the badge, ring or outline)
    front = np.zeros_like(back)  # (the letters)
    r, c = (lh - th) // 2, (lw - tw) // 2
    if style == "badge":  # (the letters cut out of the badge)
        back[r:r + th, c:c + tw] *= 1.0 - text
    else:
        if style == "letters":  # (a bold outline round the letters)
            back[r:r + th, c:c + tw] = ndimage.grey_dilation(
                text, size=(2 * line + 1, 2 * line + 1))
        front[r:r + th, c:c + tw] = text
    lh, lw = min(lh, h), min(lw, w)
    margin = int(rng.integers(4, 16))
    corner = int(rng.integers(4))
    r0 = max(margin if corner < 2 else h - margin - lh, 0)
    c0 = max(margin if corner % 2 == 0 else w - margin - lw, 0)
    value = _overlay_value(img, st, dtype, kind)
    for layer, v in ((back, st.level + second * (value - st.level)), (front, value)):
        cover = np.zeros((h, w))
        cover[r0:r0 + lh, c0:c0 + lw] = layer[:lh, :lw]
        img = _burn(img, cover, v)
    return img


# ------------------------------------------------------------------------------------
# sensor defects the flat, the dark and the bias would have removed


def amp_glow(image: ArrayLike, strength: float | str = 0.5, *, sources: int | None = None,
             seed: Any = None) -> NDArray[np.float64]:
    """Add CMOS amplifier glow: a bright smooth glow from a corner or an edge.

    ``sources`` (1 or 2, default random) glows, each at a random corner or at a
    random point of a random edge (there stretched 3 times along the edge, as the
    readout circuits lie along it). The added light is ``A exp(-d / L)`` with ``d``
    the (stretched) distance in px from the source, ``L`` 3-6 % of the image
    diagonal (so that the glow falls to 5 % of its peak within 9-18 % of the
    diagonal) and, at strength 1, ``A`` = 300 noise sigmas (150 at ``'moderate'``);
    the glow brings its photon noise.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if sources is not None and (isinstance(sources, bool) or sources not in (1, 2)):
        raise InvalidArgumentError(f"sources must be 1, 2 or None, got {sources!r}")
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    diag = float(np.hypot(w, h))
    n = int(rng.integers(1, 3)) if sources is None else int(sources)
    x, y = _centred_grid(img.shape)
    light = np.zeros(img.shape)
    for _ in range(n):
        scale = rng.uniform(0.03, 0.06) * diag
        if rng.random() < 0.5:  # a corner
            cx, cy = rng.choice([-0.5, 0.5]) * w, rng.choice([-0.5, 0.5]) * h
            d = np.hypot(x - cx, y - cy)
        else:  # a point on an edge, the glow stretched along the edge
            t = rng.uniform(-0.4, 0.4)
            edge = int(rng.integers(4))
            if edge < 2:  # left or right
                cx, cy = (-0.5 if edge == 0 else 0.5) * w, t * h
                d = np.hypot(x - cx, (y - cy) / 3.0)
            else:  # top or bottom
                cx, cy = t * w, (-0.5 if edge == 2 else 0.5) * h
                d = np.hypot((x - cx) / 3.0, y - cy)
        light = light + 300.0 * s * st.sigma * np.exp(-d / scale)
    return _add_light(img, light, st, rng)


def banding(image: ArrayLike, strength: float | str = 0.5, *, columns: bool | None = None,
            seed: Any = None) -> NDArray[np.float64]:
    """Add readout pattern noise: every row offset by its own amount, and slow bands.

    Each row is offset by a Gaussian amount of sd ``2 strength`` noise sigmas (1
    sigma at ``'moderate'``, 2 at ``'strong'``), independently of its neighbours;
    on top, low-frequency horizontal bands: a smooth random function of the row
    (structure on 20-80 rows) of sd ``1.5 strength`` noise sigmas. With
    ``columns`` (default: half the time) each column is offset too, by a
    Gaussian amount of sd ``0.5 strength`` noise sigmas. The offsets are readout
    noise: constant along their row (column), they bring no photon noise.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if columns is not None and not isinstance(columns, (bool, np.bool_)):
        raise InvalidTypeError(f"columns must be True, False or None, got {columns!r}")
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    rows = rng.standard_normal(h) * 2.0 * s * st.sigma
    scale = rng.uniform(20.0, 80.0)
    bands = ndimage.gaussian_filter1d(rng.standard_normal(h + 8 * int(scale)), scale / 3.0)
    bands = bands[4 * int(scale):4 * int(scale) + h]
    bands = (bands - bands.mean()) / max(float(bands.std()), 1e-12) * 1.5 * s * st.sigma
    out = img + (rows + bands)[:, None]
    if columns is None:
        columns = bool(rng.random() < 0.5)
    if columns:
        out += (rng.standard_normal(w) * 0.5 * s * st.sigma)[None, :]
    return out


def bad_columns(image: ArrayLike, strength: float | str = 0.5, *,
                seed: Any = None) -> NDArray[np.float64]:
    """Add defective columns and a hot row, as CCDs and some CMOS sensors have.

    ``1 + round(4 strength)`` columns (3 at ``'moderate'``, 5 at ``'strong'``) and,
    at any strength > 0, one row. Two thirds of the columns are hot: dark current
    of log-uniform 5 to ``5 + 195 strength`` noise sigmas per pixel with its photon
    noise (the hot row likewise); the others dead: they read 20 noise sigmas below
    the sky (at least 0 if the image is), without light or noise. Half of them
    are partial, from a charge trap at a random row to the edge the charge is read
    out at (top or bottom).
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if s == 0:
        return img
    st = image_statistics(img)
    h, w = img.shape
    light = np.zeros(img.shape)
    dead = np.zeros(img.shape, dtype=bool)
    for k in range(1 + int(round(4.0 * s)) + 1):
        is_row = k == 0
        n = w if is_row else h
        at = int(rng.integers(h if is_row else w))
        a, b = 0, n
        if rng.random() < 0.5:  # partial: from a trap to the readout edge
            trap = int(rng.integers(n // 10, n - n // 10))
            a, b = (0, trap) if rng.random() < 0.5 else (trap, n)
        part = (at, slice(a, b)) if is_row else (slice(a, b), at)
        if is_row or rng.random() < 2.0 / 3.0:
            hi = (5.0 + 195.0 * s) * st.sigma
            light[part] += float(np.exp(rng.uniform(np.log(5.0 * st.sigma), np.log(hi))))
        else:
            dead[part] = True
    out = _add_light(img, light, st, rng)
    low = st.level - 20.0 * st.sigma
    if float(np.nanmin(img)) >= 0.0:
        low = max(low, 0.0)
    out[dead] = low
    return out


def _stars_of(img: NDArray, st: ImageStatistics, min_sigmas: float
              ) -> tuple[NDArray, NDArray, NDArray]:
    """``(x, y, flux)`` (array coordinates, pixel centres at +0.5; image units) of the
    blobs of ``img`` whose smoothed peak stands ``min_sigmas`` noise sigmas above the
    sky: the stars a degradation acts on in any image, rendered or real."""
    above = img - st.level
    blobs, n = ndimage.label(ndimage.gaussian_filter(above, 1.0) > min_sigmas * st.sigma)
    if n == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    grown = ndimage.grey_dilation(blobs, size=(5, 5))  # (the wings, below the threshold)
    grown = np.where(blobs > 0, blobs, grown)
    index = np.arange(1, n + 1)
    weight = np.maximum(above, 0.0)
    flux = ndimage.sum_labels(weight, grown, index)
    r, c = np.indices(img.shape)
    x = ndimage.sum_labels(weight * c, grown, index) / np.maximum(flux, 1e-300) + 0.5
    y = ndimage.sum_labels(weight * r, grown, index) / np.maximum(flux, 1e-300) + 0.5
    return x, y, flux


def _add_ray(light: NDArray, x0: float, y0: float, angle: float, length: float,
             level: float, r0: float, width: float) -> None:
    """Add one diffraction spike to ``light`` in place: from ``(x0, y0)`` (array
    coordinates) along ``angle`` (radians, x towards y) for ``length`` px, on its axis
    ``level r0^2 / (r0 + r)^2`` at distance ``r``, a Gaussian cross-section of sigma
    ``width`` px."""
    h, w = light.shape
    u = np.array([np.cos(angle), np.sin(angle)])
    x1, y1 = x0 + length * u[0], y0 + length * u[1]
    reach = 4.0 * width
    c0 = max(int(np.floor(min(x0, x1) - reach)), 0)
    c1 = min(int(np.ceil(max(x0, x1) + reach)) + 1, w)
    r0_ = max(int(np.floor(min(y0, y1) - reach)), 0)
    r1 = min(int(np.ceil(max(y0, y1) + reach)) + 1, h)
    if c0 >= c1 or r0_ >= r1:
        return
    px = (np.arange(c0, c1) + 0.5)[None, :] - x0
    py = (np.arange(r0_, r1) + 0.5)[:, None] - y0
    t = px * u[0] + py * u[1]
    d = px * u[1] - py * u[0]
    on = (t >= 0.0) & (t <= length) & (np.abs(d) <= reach)
    tt = np.maximum(t, 0.0)
    light[r0_:r1, c0:c1] += np.where(
        on, level * (r0 / (r0 + tt)) ** 2 * np.exp(-0.5 * (d / width) ** 2), 0.0)


def diffraction_spikes(image: ArrayLike, strength: float | str = 0.5, *,
                       spikes: int | None = None, angle_deg: float | None = None,
                       seed: Any = None) -> NDArray[np.float64]:
    """Add the diffraction spikes of a reflector's spider vanes to every bright star.

    The stars are the image's own: blobs standing 20 noise sigmas above the sky
    (Gaussian-smoothed, sigma 1 px), with their flux ``F`` (image units, the light
    above the sky within 2 px of the blob). Each gets ``spikes`` (4: a four-vane
    spider, or 6: three vanes; default random) thin spikes along ``angle_deg``
    (deg, from +x towards +y in array coordinates; default random) plus multiples of
    ``360 / spikes`` deg. On its axis a spike is ``I(r) = I0 (r0 / (r0 + r))^2`` at
    ``r`` px from the star, with ``r0`` = 4 px and
    ``I0 = 0.02 strength F / (r0 sqrt(2 pi) 0.8 px)`` (each spike holds 2 % of the
    star's flux at strength 1, 1 % at ``'moderate'``), across it a Gaussian of sigma
    0.8 px; it ends where ``I`` falls to 0.5 noise sigma, so its length grows with
    the square root of the star's flux (at most a third of the frame's longer side).
    The spikes bring their photon noise; pixels away from them are untouched.
    """
    img, s, rng = _float(image), _strength(strength), rng_of(seed)
    if spikes is not None and (isinstance(spikes, bool) or spikes not in (4, 6)):
        raise InvalidArgumentError(f"spikes must be 4, 6 or None, got {spikes!r}")
    n_spikes = (4 if rng.random() < 0.7 else 6) if spikes is None else int(spikes)
    angle0 = np.radians(rng.uniform(0.0, 360.0) if angle_deg is None else float(angle_deg))
    if s == 0:
        return img
    st = image_statistics(img)
    r0, width = 4.0, 0.8
    light = np.zeros(img.shape)
    longest = max(img.shape) / 3.0
    for x, y, f in zip(*_stars_of(img, st, 20.0), strict=True):
        peak = 0.02 * s * f / (r0 * np.sqrt(2.0 * np.pi) * width)
        length = min(r0 * (np.sqrt(peak / (0.5 * st.sigma)) - 1.0), longest)
        if length <= 1.0:
            continue
        for k in range(n_spikes):
            _add_ray(light, x, y, angle0 + 2.0 * np.pi * k / n_spikes, length, peak, r0,
                     width)
    return _add_light(img, light, st, rng)


def dust_transmission(shape: tuple[int, int], strength: float | str = 0.5, *,
                      seed: Any = None) -> NDArray[np.float64]:
    """The transmission map of :func:`dust` (1 where clean).

    ``2 + round(4 strength)`` shadows of dust on a filter or the sensor's window,
    each the out-of-focus image of the aperture: a disc 20-60 px across with soft
    edges (1.5 px), and in 70 % of them the dark ring of an obstructed aperture
    round a hole (the obstruction 30-50 % of the diameter, darkened by a fifth of the
    ring's depth). The depth (the light the ring loses) is
    ``strength x`` uniform 6-15 % (3-7.5 % at ``'moderate'``).
    """
    s, rng = _strength(strength), rng_of(seed)
    h, w = (int(v) for v in shape)
    t = np.ones((h, w))
    if s == 0:
        return t
    for _ in range(2 + int(round(4.0 * s))):
        radius = 0.5 * rng.uniform(20.0, 60.0)
        cx, cy = rng.uniform(0.0, w), rng.uniform(0.0, h)
        depth = s * rng.uniform(0.06, 0.15)
        hole = rng.uniform(0.3, 0.5) * radius if rng.random() < 0.7 else 0.0
        c0, c1 = max(int(cx - radius - 3), 0), min(int(cx + radius + 4), w)
        r0, r1 = max(int(cy - radius - 3), 0), min(int(cy + radius + 4), h)
        if c0 >= c1 or r0 >= r1:
            continue
        d = np.hypot((np.arange(c0, c1) + 0.5)[None, :] - cx,
                     (np.arange(r0, r1) + 0.5)[:, None] - cy)
        disc = np.clip((radius - d) / 1.5 + 0.5, 0.0, 1.0)
        if hole:
            inner = np.clip((hole - d) / 1.5 + 0.5, 0.0, 1.0)
            disc = disc - 0.8 * inner
        t[r0:r1, c0:c1] *= 1.0 - depth * disc
    return t


def dust(image: ArrayLike, strength: float | str = 0.5, *,
         seed: Any = None) -> NDArray[np.float64]:
    """Dust shadows ("donuts") a flat field would have removed: the image (sky and
    stars) multiplied by :func:`dust_transmission` (same ``seed``); pixels outside
    the shadows are untouched."""
    img, s = _float(image), _strength(strength)
    return img * dust_transmission(img.shape, s, seed=rng_of(seed))


def binning(image: ArrayLike, strength: float | str = 0.5, *,
            seed: Any = None) -> NDArray[np.float64]:
    """Bin the frame ``k x k`` as a camera does to read out faster: each output pixel the
    mean of ``k x k`` input pixels, ``k = round(4 ** strength)`` (2 at ``moderate``, 4
    at ``strong``, 1, the image unchanged, at 0). The image shrinks to ``H // k`` by
    ``W // k`` pixels, the rows and columns left over split between the two sides, so
    that the frame's centre stays where it was (within half an input pixel); the stars
    become ``k`` times narrower in pixels, down to a pixel or less. ``seed`` is unused
    (binning draws nothing)."""
    img, s = _float(image), _strength(strength)
    k = max(1, int(round(4.0 ** s)))
    if k == 1:
        return img
    h, w = img.shape[0] // k, img.shape[1] // k
    if h == 0 or w == 0:
        raise InvalidArgumentError(
            f"image of shape {img.shape} is smaller than one {k}x{k} bin (strength {s})")
    r0, c0 = (img.shape[0] - h * k) // 2, (img.shape[1] - w * k) // 2
    return img[r0:r0 + h * k, c0:c0 + w * k].reshape(h, k, w, k).mean(axis=(1, 3))


# ------------------------------------------------------------------------------------
# recipes


#: Every degradation by name.
DEGRADATIONS: dict[str, Callable[..., NDArray]] = {
    "gradient": gradient, "light_dome": light_dome, "moonlight": moonlight, "cloud": cloud,
    "nebula": nebula,
    "foreground": foreground, "trails": trails, "hot_pixels": hot_pixels,
    "cosmic_rays": cosmic_rays, "defocus": defocus, "smear": smear, "untracked": untracked,
    "saturation": saturation, "vignetting": vignetting, "noise": noise,
    "quantise_8bit": quantise_8bit, "display_stretch": display_stretch, "jpeg": jpeg,
    "text_overlay": text_overlay,
    "compass": compass, "reticle": reticle, "logo": logo, "amp_glow": amp_glow,
    "banding": banding, "bad_columns": bad_columns, "diffraction_spikes": diffraction_spikes,
    "dust": dust, "binning": binning,
}


def degrade(image: ArrayLike, recipe: str | Sequence[Any], strength: float | str = "moderate",
            seed: Any = None) -> NDArray:
    """Apply degradations in order, each with its own reproducible random stream.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Any numeric image.
    recipe : str or sequence
        A degradation name (see :data:`DEGRADATIONS`), or a sequence of names,
        ``(name, strength)`` pairs or ``(name, strength, keywords)`` triples.
        ``'foreground:roof'`` style names pass ``kind``.
    strength : float or {'moderate', 'strong'}
        Strength of the steps that do not give their own.
    seed : int, optional
        Step ``i`` draws from child ``i`` of ``numpy.random.SeedSequence(seed)``.

    Returns
    -------
    ndarray
        float64, or uint8 when the last step is ``quantise_8bit``, ``display_stretch``
        or ``jpeg``.
    """
    steps = [recipe] if isinstance(recipe, str) else list(recipe)
    children = np.random.SeedSequence(seed).spawn(len(steps))
    out = image
    for step, child in zip(steps, children, strict=True):
        name, s, kw = (step, strength, {}) if isinstance(step, str) else (
            step[0], step[1], dict(step[2]) if len(step) > 2 else {})
        name, _, kind = name.partition(":")
        if name not in DEGRADATIONS:
            raise InvalidArgumentError(
                f"unknown degradation {name!r}; known: {', '.join(DEGRADATIONS)}")
        if kind:
            kw["kind"] = kind
        out = DEGRADATIONS[name](out, s, seed=np.random.default_rng(child), **kw)
    return out
