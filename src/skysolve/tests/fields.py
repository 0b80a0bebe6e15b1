"""Gaia fields rendered as a star tracker's camera sees them, at random attitudes:
the simulated frames of ``benchmarks/bench_hard.py`` (1024x768, sky 800 e-, read noise
10 e-, zero point 15.7 mag, PSF sigma 1.1 px, 16 bits, stars 2 mag fainter than the
catalog's added), for the tests of the hard frames' topics to degrade."""

from __future__ import annotations

from typing import Any

import numpy as np

#: :func:`skysolve.simulate.render_starfield`'s arguments for :func:`camera_field`.
CAMERA = dict(psf=1.1, exposure_s=1.0, zeropoint_mag=15.7, background_e=800.0,
              read_noise_e=10.0, full_well_e=60000.0, adc_bits=16, faint_star_depth_mag=2.0)


def camera_field(seed: int | np.random.Generator, fov_deg: float = 14.0, **render: Any):
    """A 1024x768 Gaia field ``fov_deg`` wide at a random attitude (uniform over the
    sky and in roll), both drawn from ``numpy.random.default_rng(seed)`` (a generator
    is drawn from, and left where the rendering left it), rendered with
    :data:`CAMERA`'s arguments (``render`` overrides them).

    Returns ``(image, attitude, truth)``: the float32 frame, the ICRS-to-camera rotation
    matrix (its third row the boresight) and the rendered stars
    (:class:`~skysolve.simulate.StarfieldTruth`, centred pixels).
    """
    from skysolve import CameraModel, load_gaia
    from skysolve.geometry import radec_roll_to_rotation
    from skysolve.simulate import render_starfield

    rng = np.random.default_rng(seed)
    attitude = radec_roll_to_rotation(rng.uniform(0, 360),
                                      np.degrees(np.arcsin(rng.uniform(-1, 1))),
                                      rng.uniform(0, 360))
    image, truth = render_starfield(load_gaia(), CameraModel.from_fov(fov_deg, 1024, 768),
                                    attitude, **{**CAMERA, **render}, seed=rng)
    return image, attitude, truth
