"""astroquery's ``AstrometryNet`` client, unchanged, solving against a live ``skysolve serve``."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skysolve.tests.realframes import ALT40, ALT60, DATA, FOV_DEG, REFERENCE

from .conftest import API_KEY

astrometry_net = pytest.importorskip("astroquery.astrometry_net")


def _client(server):
    client = astrometry_net.AstrometryNetClass()
    client.URL = server.url
    client.API_URL = f"{server.url}/api"
    return client


def _centre(header, width=1024, height=768):
    from astropy.wcs import WCS

    return WCS(header).pixel_to_world_values((width - 1) / 2.0, (height - 1) / 2.0)


def _sep_arcsec(a, b):
    from astropy.coordinates import SkyCoord

    return SkyCoord(*a, unit="deg").separation(SkyCoord(*b, unit="deg")).arcsec


@pytest.fixture(scope="module")
def direct(small_db):
    """The library's own solve of each frame (the server must answer the same)."""
    import skysolve

    return {name: skysolve.solve_image(DATA / name, database=small_db, fov_estimate_deg=FOV_DEG)
            for name in (ALT40, ALT60)}


@pytest.mark.parametrize("name", [ALT40, ALT60])
def test_astroquery_solves_the_real_frames(server, direct, name):
    client = _client(server)
    with astrometry_net.conf.set_temp("api_key", API_KEY), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astroquery's deprecation of force_image_upload
        header = client.solve_from_image(str(DATA / name), force_image_upload=True,
                                         scale_units="degwidth", scale_lower=FOV_DEG * 0.9,
                                         scale_upper=FOV_DEG * 1.1, solve_timeout=300,
                                         verbose=False)
    assert header, "not solved"
    assert header["CTYPE1"].startswith("RA---TAN") and header["IMAGEW"] == 1024
    centre = _centre(header)
    # the reference pointings are known to 18"; the library's solve is the sharper check
    assert _sep_arcsec(centre, REFERENCE[name]) < 18.0
    lib = direct[name]
    assert _sep_arcsec(centre, lib.pixel_to_world(0.0, 0.0)) < 5.0
    # every pixel of the image, not just the centre
    from astropy.wcs import WCS

    cols, rows = np.meshgrid(np.linspace(0, 1023, 5), np.linspace(0, 767, 4))
    ra, dec = WCS(header).pixel_to_world_values(cols.ravel(), rows.ravel())
    t_ra, t_dec = lib.pixel_to_world(cols.ravel() - 511.5, rows.ravel() - 383.5)
    assert np.max(_sep_arcsec((ra, dec), (t_ra, t_dec))) < 5.0


def test_a_wrong_api_key_is_refused(server):
    client = _client(server)
    with astrometry_net.conf.set_temp("api_key", "not-" + API_KEY), \
            pytest.raises(RuntimeError):
        client._login()
    assert client._session_id is None


def test_astroquery_source_list_solves(server, direct):
    """``solve_from_source_list`` posts x/y lists to url_upload."""
    lib = direct[ALT40]
    xy = lib.extraction.as_array()[:, :2] + (512.5, 384.5)  # centred -> 1-based FITS pixels
    client = _client(server)
    with astrometry_net.conf.set_temp("api_key", API_KEY):
        header = client.solve_from_source_list(xy[:, 0], xy[:, 1], 1024, 768,
                                               scale_units="degwidth",
                                               scale_lower=FOV_DEG * 0.9,
                                               scale_upper=FOV_DEG * 1.1, solve_timeout=300,
                                               verbose=False)
    assert _sep_arcsec(_centre(header), lib.pixel_to_world(0.0, 0.0)) < 5.0
