"""``skysolve-field -C/--cancel FILE``: the solve stops when FILE appears, as solve-field's.

Capture programs (StellarSolver, KStars) abort a solve by creating the cancel file they
named on the command line. The solve here is replaced by a stand-in that runs in Python
until it is interrupted (or, if the file is never noticed, until a bound far away), so
that the tests see whether the watch stops it, not how fast.
"""

from __future__ import annotations

import signal
import time

import pytest

from skysolve.solver.result import SolveFailure
from skysolve.tests.realframes import ALT40, DATA

#: Seconds the stand-in solve runs when nothing stops it (a bound, not an expectation).
UNSTOPPED_S = 20.0


@pytest.fixture
def field(monkeypatch, tmp_path):
    """``(main, calls)``: skysolve-field's ``main`` with a stand-in database and solve;
    ``calls`` records each solve: ``"cut"`` (interrupted) or ``"ran out"``."""
    from skysolve.cli import solve_field as cli
    from skysolve.cli import solve_field_run as run

    calls: list[str] = []

    def slow_solve(db, fld, depth=None, **hints):
        (tmp_path / "cancel").touch()  # the capture program aborts while the solve runs
        t_end = time.monotonic() + UNSTOPPED_S
        try:
            while time.monotonic() < t_end:
                time.sleep(0.01)
        except BaseException:
            calls.append("cut")
            raise
        calls.append("ran out")
        return SolveFailure("no_match", UNSTOPPED_S * 1e3, "the stand-in ran out")

    monkeypatch.setattr(run, "load_database", lambda path, fov_range_deg=None: object())
    monkeypatch.setattr(run, "solve_field_sources", slow_solve)
    return cli.main, calls


def _frame(tmp_path):
    image = tmp_path / "frame.tiff"
    image.write_bytes((DATA / ALT40).read_bytes())
    return image


def test_the_cancel_file_stops_the_solve_and_writes_no_solution(field, tmp_path, capsys):
    main, calls = field
    image = _frame(tmp_path)
    before = signal.getsignal(signal.SIGINT)
    status = main(["-p", "-C", str(tmp_path / "cancel"), str(image)])
    out = capsys.readouterr().out
    assert status == 0
    assert calls == ["cut"]  # (before: "ran out", the cancel file never looked at)
    assert "cancelled" in out and "the stand-in ran out" not in out
    assert not (tmp_path / "frame.wcs").exists() and not (tmp_path / "frame.solved").exists()
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C handling as it was


def test_an_existing_cancel_file_solves_nothing(field, tmp_path, capsys):
    # as solve-field, the cancel file counts among the outputs: one that exists stops the
    # input as an existing output does, and with --continue the solve is cancelled
    main, calls = field
    image = _frame(tmp_path)
    (tmp_path / "cancel").touch()
    assert main(["-p", "--cancel", str(tmp_path / "cancel"), str(image), str(image)]) == 0
    out = capsys.readouterr().out
    assert calls == [] and out.count("Output file already exists") == 2
    assert main(["-p", "-K", "--cancel", str(tmp_path / "cancel"), str(image)]) == 0
    assert calls == [] and capsys.readouterr().out.count("cancelled") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cancel", "frame.tiff"]


def test_overwrite_deletes_the_cancel_file_a_cancelled_run_left(field, tmp_path, capsys):
    # (before: every later run printed 'Did not solve: cancelled', -O or not; Siril passes
    # -C stop -O and reads that line as no solution)
    main, calls = field
    image = _frame(tmp_path)
    (tmp_path / "cancel").touch()
    assert main(["-p", "-O", "-C", str(tmp_path / "cancel"), str(image)]) == 0
    assert calls == ["cut"]  # (the stand-in solve ran, and its own cancel stopped it)


def test_the_cancel_file_names_a_pattern_as_the_outputs_do(field, tmp_path, capsys):
    main, calls = field
    image = _frame(tmp_path)
    (tmp_path / "frame.cancel").touch()
    assert main(["-p", "-K", "-C", "%s.cancel", str(image)]) == 0
    assert calls == [] and "cancelled" in capsys.readouterr().out


def test_ctrl_c_while_the_cancel_file_is_watched_is_still_an_interrupt(monkeypatch, tmp_path,
                                                                       capsys):
    import _thread

    from skysolve.cli import solve_field as cli
    from skysolve.cli import solve_field_run as run

    def interrupted_solve(db, fld, depth=None, **hints):
        _thread.interrupt_main(signal.SIGINT)  # Ctrl-C, no cancel file
        time.sleep(UNSTOPPED_S)
        return SolveFailure("no_match", 0.0, "not interrupted")

    monkeypatch.setattr(run, "load_database", lambda path, fov_range_deg=None: object())
    monkeypatch.setattr(run, "solve_field_sources", interrupted_solve)
    # Python's own Ctrl-C handling, as a program started from a terminal has it (a test
    # run started in the background by a shell inherits SIGINT ignored: no Ctrl-C there)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        status = cli.main(["-p", "-C", str(tmp_path / "cancel"), str(_frame(tmp_path))])
        assert status == 130
        assert capsys.readouterr().err.splitlines()[-1] == "skysolve-field: interrupted"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_cancel_is_no_longer_reported_as_ignored(tmp_path, capsys):
    from skysolve.cli import solve_field as cli

    args = cli.build_parser().parse_args(["-C", str(tmp_path / "c"), "x.fits"])
    assert args.cancel == str(tmp_path / "c")
    assert not any("cancel" in name for name in cli._ignored(args))
