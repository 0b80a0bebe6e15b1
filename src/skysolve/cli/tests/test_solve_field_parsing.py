"""skysolve-field reads its command line as solve-field's ``getopt_long`` and ``atoi`` do.

Known answers: astrometry.net 0.93's solve-field, which takes a long option by any
unambiguous prefix, ``-7`` for ``--no-delete-temp``, whole numbers written as decimals, an
end of a scale range of 0 as no end, and a closed standard input as no file names.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from skysolve.cli.solve_field import EXIT_USAGE, build_parser, main, solve_hints


def _hints(*argv: str) -> dict:
    return solve_hints(build_parser().parse_args([*argv, "frame.fits"]))


@pytest.mark.parametrize("argv, dest, value", [
    (["--scale-unit", "arcsecperpix"], "scale_units", "arcsecperpix"),
    (["--no-plot"], "ignored--no-plots", 1),
    (["--overwr"], "overwrite", True),
    (["--downsamp", "2"], "downsample", 2),
    (["-7"], "ignored--no-delete-temp", 1),
    (["-z", "2.0"], "downsample", 2),
    (["-w", "1024.0", "-e", "768"], "width", 1024)])
def test_prefixes_and_decimal_whole_numbers_are_taken(argv, dest, value):
    args = build_parser().parse_args([*argv, "frame.fits"])
    assert getattr(args, dest) == value


@pytest.mark.parametrize("argv", [["--odds", "3"], ["-z", "2.5"], ["-z", "two"]])
def test_an_ambiguous_prefix_or_a_fraction_is_a_usage_error(argv, capsys):
    assert main([*argv, "frame.fits"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_end_of_0_is_no_end_of_the_scale_range():
    assert _hints("-L", "0", "-H", "0") == _hints()
    assert _hints("-u", "app", "-L", "0", "-H", "0") == _hints()
    assert _hints("-L", "10", "-H", "0")["fov_range_deg"] == (10.0, 360.0)
    assert _hints("-L", "10", "-H", "0") == _hints("-L", "10")


@pytest.mark.parametrize("argv", [["-L", "500", "-H", "1000"],
                                  ["-u", "app", "-L", "1e6", "-H", "1e7"]])
def test_a_scale_range_no_image_has_is_a_usage_error(argv, capsys):
    # (before: status 1 for each input, with the library's message on fov_range_deg)
    assert main([*argv, "frame.fits"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--scale-low/--scale-high/--scale-units" in err and "Traceback" not in err


def test_files_on_a_closed_standard_input_are_none():
    # (before: a TypeError's traceback, status 1)
    run = subprocess.run([sys.executable, "-c", "import sys; from skysolve.cli.solve_field "
                          "import main; sys.stdin.close(); sys.exit(main(['-f']))"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "standard input" in run.stderr


def test_a_wrong_guessed_scale_is_retried_on_the_database_for_no_scale(monkeypatch, tmp_path,
                                                                        capsys):
    # A header scale 10x off (the frame is 40"/px): the retry without it searched the
    # guessed scale's database again (a telescope's 0.8-1.5 deg one, when cached) and
    # never solved; it takes the one for no scale, then the narrower cached ones.
    from astropy.io import fits

    import skysolve
    from skysolve.cli import solve_field_run as run
    from skysolve.solver.result import SolveFailure
    from skysolve.tests.realframes import ALT40, DATA

    path = tmp_path / "frame.fits"
    header = fits.Header()
    header["SCALE"] = 4.0
    fits.PrimaryHDU(skysolve.read_image(DATA / ALT40), header=header).writeto(path)
    asked, used = [], []

    def load(named, fov_range_deg=None):
        asked.append(fov_range_deg)
        return f"db for {fov_range_deg}"

    def solve(db, fld, depth=None, **hints):
        used.append((db, "pixel_scale_range_arcsec" in hints))
        return SolveFailure("no_match", 1.0, "stand-in")

    monkeypatch.setattr(run, "load_database", load)
    monkeypatch.setattr(run, "solve_field_sources", solve)
    monkeypatch.setattr(run, "_in_narrower", lambda fld, depth, failed, hints, started:
                        (used.append(("narrower", False)) or failed, None))
    assert main(["-g", "-p", "-O", "-N", "none", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trying without it" in out
    assert asked[0] is not None and asked[1] is None  # the guessed fields, then none told
    assert used[0] == (f"db for {asked[0]}", True)
    assert used[1] == ("db for None", False)
    assert ("narrower", False) in used


def test_a_prefix_takes_a_negative_value_as_the_whole_option_does():
    # (before: '--scale-lo -1 -H 10' and '--rad -1' were usage errors)
    from skysolve.cli.solve_field import _join_negative_values

    for argv in (["--scale-lo", "-1", "-H", "10"], ["--scale-low", "-1", "-H", "10"]):
        args = build_parser().parse_args([*_join_negative_values(argv), "frame.fits"])
        assert args.scale_low == -1.0 and args.scale_high == 10.0
    args = build_parser().parse_args([*_join_negative_values(["--rad", "-1"]), "f.fits"])
    assert args.radius == -1.0


def test_a_cancel_file_naming_the_input_is_refused_not_deleted(tmp_path, capsys):
    from skysolve.tests.realframes import ALT40, DATA

    image = tmp_path / "frame.tiff"
    image.write_bytes((DATA / ALT40).read_bytes())
    for name in (str(image), "%s.tiff"):
        assert main(["-p", "-O", "-C", name, str(image)]) == 1
        assert image.exists()
        assert "-C/--cancel" in capsys.readouterr().err
