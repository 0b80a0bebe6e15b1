"""skysolve calibrate: --order reaches the last pass; --wcs-sip-order is checked up front."""

from __future__ import annotations

import numpy as np

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


def test_cli_date_gives_every_image_the_earths_velocity_then():
    """``calibrate`` had no ``--date``: frames without a FITS time (TIFF, JPEG) were
    calibrated without the aberration correction ``solve --date`` applies (up to 20")."""
    from astropy.coordinates import get_body_barycentric_posvel
    from astropy.time import Time

    from skysolve.cli.calibrate import _velocities
    from skysolve.cli.parser import build_parser
    from skysolve.tests.realframes import DATA

    # the two real frames: TIFFs, no header time (only --date gives one)
    frames = [str(p) for p in sorted(DATA.glob("2019-07-29T204726_Alt*_Try1.tiff"))]
    args = build_parser().parse_args(["calibrate", *frames, "-o", "c.json",
                                      "--date", "2019-07-29T20:47:26"])
    velocities = _velocities(args)
    # astropy's ephemeris: the Earth's barycentric velocity then, in km/s
    _, vel = get_body_barycentric_posvel("earth", Time("2019-07-29T20:47:26", scale="utc"))
    expected = vel.xyz.to_value("km/s")
    assert len(velocities) == 2
    for v in velocities:
        assert np.allclose(v, expected, atol=0.05)
    args.date = None
    assert _velocities(args) is None


def test_cli_date_with_no_aberration_is_a_usage_error(capsys):
    from skysolve.cli.main import main

    code = main(["calibrate", "x.tiff", "-o", "c.json", "--date", "2019-07-29T20:47:26",
                 "--no-aberration"])
    assert code == 2
    assert "--no-aberration turns off" in capsys.readouterr().err
    assert main(["calibrate", "x.tiff", "-o", "c.json", "--date", "2019-07-29"]) == 2
    assert "a date alone is ambiguous" in capsys.readouterr().err
