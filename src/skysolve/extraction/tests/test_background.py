"""The background's robust statistics against their plain definitions."""

import numpy as np

from skysolve.extraction.background import _percentiles, robust_location


def _samples(rng):
    """Samples a sky statistic meets: Gaussian, integer-valued (many ties), with a bright
    tail, constant, heavy-tailed, tiny and huge scales, odd and even sizes."""
    yield rng.normal(0.0, 10.0, 31570)
    yield rng.normal(0.0, 10.0, 31571)
    yield np.round(rng.normal(100.0, 3.0, 30000))
    yield rng.integers(0, 3, 5000).astype(float)
    yield np.concatenate([rng.normal(0.0, 1.0, 20000), rng.uniform(100.0, 1e6, 2000)])
    yield np.full(2000, 7.0)
    yield np.r_[np.zeros(1500), np.ones(10)]
    yield rng.standard_cauchy(20000)
    for _ in range(100):
        n = int(rng.integers(1000, 40000))
        v = rng.normal(0.0, rng.uniform(0.1, 100.0), n) * rng.choice([1.0, 1e-8, 1e8])
        if rng.random() < 0.3:
            v = np.round(v)
        if rng.random() < 0.3:
            v[: n // 10] = rng.uniform(-1e4, 1e4, n // 10)
        yield v


def _clipped_by_sorting(v, iterations, clip=3.0):
    """The clipped median and MAD written plainly: lower medians read off sorted copies."""
    def lower_median(a):
        return float(np.sort(a)[(a.size - 1) // 2])

    med = lower_median(v)
    sig = 1.482602218505602 * lower_median(np.abs(v - med))
    for _ in range(iterations):
        if sig <= 0:
            break
        keep = np.abs(v - med) < clip * sig
        if keep.all() or keep.sum() < 10:
            break
        v = v[keep]
        med = lower_median(v)
        sig = 1.482602218505602 * lower_median(np.abs(v - med))
    return med, sig


def test_robust_location_by_sorting():
    """The clipped median and MAD equal the plain sorting definition to the bit on the
    samples a sky statistic meets; a Gaussian's sigma comes back within its error."""
    rng = np.random.default_rng(8)
    for v in _samples(rng):
        for it in (0, 1, 2):
            assert robust_location(v, it) == _clipped_by_sorting(v, it)
    v = rng.normal(5.0, 2.0, 30000)
    v[:1500] += rng.exponential(500.0, 1500)  # 5 % bright pixels hardly move it
    med, sig = robust_location(v, 2)
    assert abs(med - 5.0) < 0.1 and abs(sig / 2.0 - 1.0) < 0.05
    assert np.isnan(robust_location(np.zeros(0))).all()


def test_percentiles_as_numpy():
    """The noise grid's 10th and 90th percentiles equal numpy's (linear) to the bit, on
    grids of every size from one block up, integer-valued ones (ties) included."""
    rng = np.random.default_rng(3)
    for n in list(range(1, 40)) + [192, 399]:
        for scale in (1.0, 1e-6, 1e6):
            grid = rng.normal(10.0, 3.0, (1, n)) * scale
            for g in (grid, np.round(grid)):
                assert _percentiles(g, (0.1, 0.9)) == np.percentile(g, [10.0, 90.0]).tolist()
