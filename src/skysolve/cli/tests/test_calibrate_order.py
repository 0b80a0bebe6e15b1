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


def test_cli_polynomial_primary_reaches_the_calibration():
    """The CLI had no way to fit the polynomial sky -> pixel, the direction in which a strong
    lens's radial distortion is a short polynomial (pixel -> sky it is a long series)."""
    from skysolve.calibration.options import CalibrationOptions
    from skysolve.cli.calibrate import _calibration_options
    from skysolve.cli.parser import build_parser

    parse = build_parser().parse_args
    args = parse(["calibrate", "x.fits", "-o", "c.json", "--polynomial-primary", "forward"])
    options = CalibrationOptions(**_calibration_options(args))
    assert options.polynomial_primary == "forward"
    default = CalibrationOptions(**_calibration_options(parse(["calibrate", "x.fits", "-o",
                                                                "c.json"])))
    assert default.polynomial_primary == CalibrationOptions().polynomial_primary
