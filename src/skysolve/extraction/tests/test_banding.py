"""Readout pattern noise (rows offset from their neighbours) on real and rendered frames.

The real frames are the two star-tracker frames of the test data, given the pattern
of an uncalibrated CMOS readout (:func:`skysolve.simulate.degrade.banding`) and saved
as a camera's JPEG; the answer is what the extractor finds in the 16-bit originals
(:func:`.test_hard_frames.judged_against_16_bits`) and their reference pointings.
"""

from __future__ import annotations

import numpy as np
import pytest

from skysolve import read_image
from skysolve.extraction import extract_centroids
from skysolve.extraction.banding import unbanded
from skysolve.simulate import degrade as dg
from skysolve.tests.frames import render_stars, scattered_stars
from skysolve.tests.realframes import ALT40, ALT60, DATA

from .test_hard_frames import judged_against_16_bits

SHAPE = (384, 512)
SKY, NOISE = 1000.0, 10.0


def _field(seed: int):
    rng = np.random.default_rng(seed)
    x, y = scattered_stars(rng, SHAPE)
    f = np.exp(rng.uniform(np.log(3000.0), np.log(60000.0), len(x)))
    return rng, render_stars(SHAPE, x, y, f, 1.2) + SKY


def test_row_offsets_are_removed_and_the_sky_kept():
    rng, stars = _field(0)
    offsets = rng.normal(0.0, 2.0 * NOISE, SHAPE[0])  # 2 sigmas from row to row
    slope = np.linspace(0.0, 300.0, SHAPE[0])  # the sky's own change down the frame
    sky = stars + rng.normal(0.0, NOISE, SHAPE) + slope[:, None]
    out, levelled = unbanded((sky + offsets[:, None]).astype(np.float32), None, None, 64)
    assert levelled
    # what is left of the offsets (each row's median departure from the patternless
    # frame) changes slowly, as the background can follow: from one row to the next by
    # a tenth of the noise (it was 2 sigmas)
    left = np.median(out - sky, axis=1)
    assert np.std(np.diff(left)) / np.sqrt(2.0) < 0.1 * NOISE
    # the slow change down the frame stays for the background
    assert np.ptp(np.median(out, axis=1)) > 250.0


def test_a_frame_without_a_pattern_is_left_alone():
    rng, stars = _field(1)
    for work in (stars + rng.normal(0.0, NOISE, SHAPE),
                 read_image(DATA / ALT40), read_image(DATA / ALT60),
                 dg.jpeg(read_image(DATA / ALT40), 0.5)):
        work = np.asarray(work, dtype=np.float32)
        out, levelled = unbanded(work, None, 1.0 if work.max() > 255 else None, 64)
        assert not levelled and out is work


def test_counts_stay_whole_counts():
    rng, stars = _field(2)
    img = np.rint(stars + rng.normal(0.0, NOISE, SHAPE)
                  + rng.normal(0.0, 2.0 * NOISE, SHAPE[0])[:, None]).astype(np.float32)
    out, levelled = unbanded(img, None, 1.0, 64)
    assert levelled and np.array_equal(out, np.rint(out))


@pytest.mark.parametrize("frame, seed", [(ALT40, 3), (ALT60, 1003)])
def test_a_banded_jpeg_keeps_its_stars(small_db, frame, seed):
    """A real frame with strong row pattern noise (rows 2 sigmas apart, slow bands of
    1.5 sigmas), stretched to 8 bits and saved as JPEG at quality 40. The stripes
    inflated the noise estimate (16.1 and 15.7 counts; 6.0 and 6.4 once levelled) and
    broke the stars into pieces on the brighter rows, rejected as elongated or small: 0
    of ALT40's 33 stars found and 9 of ALT60's 39, 22 of 22 and 11 of 21 centroids on no
    source. With the rows levelled: 23 and 33 found, 1 of 24 and 3 of 46 on no source."""
    img = dg.degrade(read_image(DATA / frame), ["banding", "jpeg"], "strong", seed=seed)
    judged_against_16_bits(small_db, frame, extract_centroids(img), img.shape, 10, 0.6)


def test_one_row_blobs_are_no_reference_for_the_psf(small_db):
    """A real frame as an uncalibrated reflector's camera would save it: diffraction
    spikes, dust, amplifier glow, bad columns and a hot row, row pattern noise, JPEG at
    quality 40 (bench_hard's ``sensor`` mixture, strong). The JPEG breaks the levelled
    rows' remaining stripes into hundreds of blobs one row tall, brighter in peak than
    most stars; as the frame's brightest blobs they made its PSF a smear along the rows,
    and every star, round against it, was rejected as elongated: 1 of the 33 stars
    found with the rows levelled (0 without). Blobs within one row or column are no
    star's image: 27 found (42 of the 80 centroids on no source of the 16-bit frame:
    the spikes, the glow's edge, the hot row), and it solves.
    """
    steps = ["diffraction_spikes", "dust", "amp_glow", "bad_columns", "banding", "jpeg"]
    img = dg.degrade(read_image(DATA / ALT40), steps, "strong", seed=2)
    judged_against_16_bits(small_db, ALT40, extract_centroids(img), img.shape, 50, 0.6)
