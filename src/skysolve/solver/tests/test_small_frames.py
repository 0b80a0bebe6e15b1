"""Frames of few pixels: a camera binning 4x4, a finder's small sensor.

On a frame a few hundred pixels across, stars are a pixel or two wide and their
centroids are off by a larger share of the patterns' lengths than on a full frame,
so true patterns miss a tight database's ratio tolerance by more than the search's
wide pass allowed; and the brightest stars may be as sharp as hot pixels. Known
answers: the real frames' reference pointings (``skysolve/tests/data/NOTICE.md``), and
the tolerances written out by hand.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

import skysolve
from skysolve.geometry import angle_between, radec_to_vector
from skysolve.simulate import degrade as dg
from skysolve.solver.lost_in_space import _passes
from skysolve.tests.realframes import ALT40, ALT60, DATA, REFERENCE


@pytest.fixture(scope="module")
def gaia_small_db():
    """A 10-20 deg Gaia database at the default (tight, 0.001) pattern tolerance, as
    ``generate_from_gaia`` builds it by default (~2 s)."""
    return skysolve.SolverDatabase.generate_from_gaia(
        max_fov_deg=20.0, min_fov_deg=10.0, epoch_proper_motion_year=2018.0, progress=False)


def _wide(diagonal_px: float, db_tol: float = 0.001) -> float:
    """The wide pass's ratio tolerance on a frame ``diagonal_px`` across."""
    db = SimpleNamespace(_pattern_max_error=db_tol)
    tols = {t for t, _, _, _ in _passes(db, db_tol, 8, diagonal_px=diagonal_px)}
    return max(tols)


def test_wide_pass_widens_on_small_frames_only():
    # a full 1024x768 frame (1,280 px across): twice the database's, as before
    assert _wide(1280.0) == pytest.approx(0.002)
    assert _wide(math.inf) == pytest.approx(0.002)
    # 4x4 binned (256x192: 320 px across): 1/320
    assert _wide(320.0) == pytest.approx(0.003125)
    # a tiny frame: no more than 4x the database's
    assert _wide(60.0) == pytest.approx(0.004)
    # a loose database's own wide tolerance is wider still: unchanged
    assert _wide(320.0, db_tol=0.005) == pytest.approx(0.01)


@pytest.mark.parametrize("fov_estimate", [11.2, 11.3, 11.4])
def test_real_frame_binned_4x4_solves(gaia_small_db, fov_estimate):
    """The first real frame binned 4x4 (192x256 px, its stars a pixel wide) solves from
    the image with a 5 % FOV estimate; with the wide pass at twice the database's
    tolerance it solved only from estimates of 11.5 deg and up."""
    frame = dg.degrade(skysolve.read_image(DATA / ALT40), "binning", "strong", seed=0)
    assert frame.shape == (192, 256)
    res = skysolve.solve_image(frame, database=gaia_small_db, fov_estimate_deg=fov_estimate,
                               fov_max_error_deg=0.57)
    assert res, res.status
    err = math.degrees(angle_between(radec_to_vector(res.ra_deg, res.dec_deg),
                                     radec_to_vector(*REFERENCE[ALT40])))
    assert err < 0.05
    assert res.fov_deg == pytest.approx(11.42, abs=0.1)


@pytest.mark.parametrize("fov_estimate", [11.2, 11.6, None])
def test_second_real_frame_binned_4x4_solves(gaia_small_db, fov_estimate):
    """The second real frame binned 4x4: its brightest stars, as sharp as hot pixels,
    were dropped as narrow, and it never solved; kept as doubtful stars, they solve it
    with a 5 % FOV estimate or none."""
    frame = dg.degrade(skysolve.read_image(DATA / ALT60), "binning", "strong", seed=0)
    kw = {} if fov_estimate is None else dict(fov_estimate_deg=fov_estimate,
                                               fov_max_error_deg=0.57)
    res = skysolve.solve_image(frame, database=gaia_small_db, **kw)
    assert res, res.status
    err = math.degrees(angle_between(radec_to_vector(res.ra_deg, res.dec_deg),
                                     radec_to_vector(*REFERENCE[ALT60])))
    assert err < 0.05
