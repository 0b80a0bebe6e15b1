"""skysolve calibrate: --order reaches the last pass; --wcs-sip-order is checked up front."""

from __future__ import annotations

from skysolve.calibration.workflow import seed_passes


def test_last_pass_fits_the_requested_order():
    """`skysolve calibrate --passes 2 --order 6` fitted order 4 at most (and --passes 1
    --order 4 order 3): --order is 'the polynomial distortion order of the last passes'."""
    assert [p.order for p in seed_passes(2, 6)] == [3, 6]
    assert [p.order for p in seed_passes(1, 4)] == [4]
    assert [p.order for p in seed_passes(4, 4)] == [3, 4, 4, 4]
    assert [p.order for p in seed_passes()] == [3, 4, 5, 6]


def test_cli_refuses_wcs_sip_order_1(capsys):
    """--wcs-sip-order 1 was accepted and failed only after the whole calibration, with an
    error not naming the option."""
    from skysolve.cli.main import main

    code = main(["calibrate", "x.fits", "-o", "c.json", "--db", "none.db",
                 "--wcs-sip-order", "1"])
    assert code != 0
    assert "--wcs-sip-order" in capsys.readouterr().err
