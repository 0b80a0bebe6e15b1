"""Fields under 2 deg: a database from a user's deeper catalog, solved lost in space.

The bundled Gaia stars (G < 10) are too few for half-degree fields, so a user
brings fainter stars, e.g. a Gaia archive query saved as FITS or ECSV. The
synthetic "query" here is the bundled stars of a sky region plus simulated
fainter stars (uniform positions, number counts rising ~0.33 dex per
magnitude to G = 14.5, Gaia archive column names and units, proper motions
missing for some stars), small enough to build and solve in seconds. The
truth of every field is known, so each solve is checked against it.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from skysolve.camera.model import CameraModel
from skysolve.database import SolverDatabase
from skysolve.geometry import angle_between, radec_roll_to_rotation, radec_to_vector
from skysolve.simulate import simulate_centroids
from skysolve.sky.catalogs import Catalog, load_catalog, load_gaia

#: The region of the synthetic deep catalog: centre (RA, Dec) and radius, degrees.
CENTRE, RADIUS = (150.0, 55.0), 2.5
#: Faint stars per square degree (G 10 to 14.5): about 90 in a 0.5 x 0.375 deg frame.
FAINT_DENSITY = 480.0
W, H = 1024, 768
DB_KWARGS = dict(max_fov_deg=0.6, min_fov_deg=0.4, progress=False)


def deep_table(seed: int = 7) -> Table:
    """The bundled Gaia stars within the region plus simulated fainter ones, as a Gaia
    archive query returns them (J2016.0 positions)."""
    rng = np.random.default_rng(seed)
    centre = radec_to_vector(*CENTRE)
    gaia = load_gaia()
    near = angle_between(gaia.vectors(), centre) <= math.radians(RADIUS)
    n = int(FAINT_DENSITY * 2 * math.pi * (1 - math.cos(math.radians(RADIUS)))
            * (180 / math.pi) ** 2)
    # uniform in the cap around the pole, then turned to the region's centre
    z = rng.uniform(math.cos(math.radians(RADIUS)), 1.0, n)
    phi = rng.uniform(0.0, 2 * math.pi, n)
    local = np.stack([np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z], 1)
    v = local @ radec_roll_to_rotation(*CENTRE, 0.0)  # camera +Z -> the centre
    ra = np.degrees(np.arctan2(v[:, 1], v[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(v[:, 2]))
    a = 0.33  # log N(<G) rises by a per magnitude
    g = np.log10(10 ** (a * 10) + rng.random(n) * (10 ** (a * 14.5) - 10 ** (a * 10))) / a
    pm = rng.normal(0.0, 5.0, (2, n))
    two_parameter = rng.random(n) < 0.2  # no proper motion: masked, as in the archive
    t = Table()
    t["source_id"] = np.concatenate([gaia.ids[near], 4_000_000_000_000 + np.arange(n)])
    t["ra"] = np.concatenate([gaia.ra_deg[near], ra]) * u.deg
    t["dec"] = np.concatenate([gaia.dec_deg[near], dec]) * u.deg
    t["pmra"] = MaskedColumn(np.concatenate([np.zeros(near.sum()), pm[0]]), unit="mas / yr",
                             mask=np.concatenate([np.zeros(near.sum(), bool), two_parameter]))
    t["pmdec"] = MaskedColumn(np.concatenate([np.zeros(near.sum()), pm[1]]), unit="mas / yr",
                              mask=np.concatenate([np.zeros(near.sum(), bool), two_parameter]))
    t["phot_g_mean_mag"] = np.concatenate([gaia.mag[near], g]).astype(np.float32) * u.mag
    t["ref_epoch"] = np.full(len(t), 2016.0) * u.yr
    return t


@pytest.fixture(scope="module")
def table() -> Table:
    return deep_table()


@pytest.fixture(scope="module")
def deep_db(table) -> SolverDatabase:
    return SolverDatabase.generate_from_catalog(table, **DB_KWARGS)


def _pointings(n: int, seed: int) -> list[np.ndarray]:
    """Rotations pointing within 1.5 deg of the region's centre, random roll."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r, angle = 1.5 * math.sqrt(rng.random()), rng.uniform(0, 360)
        dec = CENTRE[1] + r * math.sin(math.radians(angle))
        ra = CENTRE[0] + r * math.cos(math.radians(angle)) / math.cos(math.radians(dec))
        out.append(radec_roll_to_rotation(ra, dec, rng.uniform(0, 360)))
    return out


def _solve_fields(db, catalog, n, seed):
    """Boresight errors (arcsec) and FOV errors of ``n`` simulated 0.5 deg fields."""
    cam = CameraModel.from_fov(0.5, W, H)
    errors = []
    for i, R in enumerate(_pointings(n, seed)):
        sim = simulate_centroids(catalog, cam, R, num_stars=40, centroid_noise_px=0.3,
                                 drop_fraction=0.1, num_false_stars=3, epoch_year=2025.0,
                                 seed=seed + i)
        res = db.solve_from_centroids(sim.centroids, image_width=W, image_height=H,
                                      solve_timeout_ms=None)
        assert res, (i, res)
        errors.append((math.degrees(angle_between(res.rotation_matrix_icrs_to_camera[2], R[2]))
                       * 3600, res.fov_deg / 0.5 - 1))
    return np.array(errors)


def test_deep_catalog_database_covers_the_region(deep_db, table):
    assert deep_db.num_stars == len(table)  # every star kept for verification
    assert deep_db.min_fov_deg == 0.4 and deep_db.max_fov_deg == 0.6
    assert deep_db.parameters["star_max_magnitude"] > 14.0
    # patterns use faint stars: the bundled catalog alone could not make them
    used = np.unique(deep_db.pattern_stars)
    assert np.median(deep_db.star_magnitudes[used]) > 11.0
    assert deep_db.num_patterns > 10_000


def test_half_degree_fields_solve_lost_in_space(deep_db, table):
    catalog = Catalog.from_table(table)
    errors = _solve_fields(deep_db, catalog, 12, seed=100)
    # 0.5 deg over 1024 px is 1.76"/px; 0.3 px noise
    assert np.all(errors[:, 0] < 3.0), errors
    assert np.all(np.abs(errors[:, 1]) < 1e-3), errors


def test_catalog_file_round_trip(deep_db, table, tmp_path):
    """A Gaia archive query saved as FITS or ECSV builds the same database as the table."""
    fits_path, ecsv_path = tmp_path / "gaia_query.fits", tmp_path / "gaia_query.ecsv"
    table.write(fits_path)
    table.write(ecsv_path)
    catalog = load_catalog(fits_path)
    assert catalog.epoch == 2016.0 and len(catalog) == len(table)
    np.testing.assert_array_equal(catalog.ids, table["source_id"])
    np.testing.assert_array_equal(catalog.pmra_mas_yr[table["pmra"].mask], 0.0)
    assert load_catalog(ecsv_path) == catalog == Catalog.from_table(table)
    db = SolverDatabase.generate_from_catalog(fits_path, **DB_KWARGS)
    np.testing.assert_array_equal(db.star_ids, deep_db.star_ids)
    np.testing.assert_array_equal(db.pattern_stars, deep_db.pattern_stars)
    np.testing.assert_array_equal(db.pattern_keys, deep_db.pattern_keys)
    errors = _solve_fields(db, catalog, 2, seed=200)
    assert np.all(errors[:, 0] < 3.0), errors


def test_bundled_catalog_cannot_solve_half_degree_fields(table):
    """The reason for a user catalog: with the G < 10 stars alone these fields fail."""
    bright = SolverDatabase.generate_from_catalog(table[table["phot_g_mean_mag"] < 10 * u.mag],
                                                  **DB_KWARGS)
    cam = CameraModel.from_fov(0.5, W, H)
    catalog = Catalog.from_table(table)
    failures = 0
    for i, R in enumerate(_pointings(5, seed=300)):
        sim = simulate_centroids(catalog, cam, R, num_stars=40, epoch_year=2025.0, seed=i)
        res = bright.solve_from_centroids(sim.centroids, image_width=W, image_height=H)
        if res:  # never wrong
            assert angle_between(res.rotation_matrix_icrs_to_camera[2], R[2]) < 1e-4
        failures += not res
    assert failures >= 4
