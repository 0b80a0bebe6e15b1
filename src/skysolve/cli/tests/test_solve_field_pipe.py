"""``skysolve-field ... | head -1``: the reader of the output goes away, the run ends quietly.

solve-field, killed by SIGPIPE, ends without a word; Python ignores SIGPIPE, so each
write to the closed pipe raises BrokenPipeError instead, which was reported as the
input's error (exit status 1) and then escaped the next input's first line as a
traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")


@pytest.fixture
def solved_before(tmp_path):
    """Two x/y lists whose ``.wcs`` exist: each input only says so on standard output
    (``Output file already exists``), without reading or solving anything."""
    inputs = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.xyls").write_text("")
        (tmp_path / f"{name}.wcs").write_text("")
        inputs.append(tmp_path / f"{name}.xyls")
    return inputs


def _closed_pipe():
    """The write end of a pipe whose reader has gone, as a text file."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return os.fdopen(write_end, "w")


def test_the_run_ends_without_a_word(solved_before):
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "skysolve.cli.solve_field",
                               *map(str, solved_before)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (1, "")


def test_an_input_is_no_error_when_the_output_pipe_closes(solved_before, monkeypatch,
                                                          capsys):
    """An input's line to a closed standard output is not that input's error: the
    BrokenPipeError goes up to ``main``, which ends the run quietly and points the
    closed output at the null device."""
    from skysolve.cli.solve_field import build_parser, main
    from skysolve.cli.solve_field_run import run_field

    with _closed_pipe() as out:
        monkeypatch.setattr(sys, "stdout", out)
        args = build_parser().parse_args([str(solved_before[0])])
        with pytest.raises(BrokenPipeError):
            run_field(solved_before[0], args, {})
        assert main([str(p) for p in solved_before]) == 1
        assert os.path.samestat(os.fstat(out.fileno()), os.stat(os.devnull))
        monkeypatch.undo()
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_elsewhere_is_the_inputs_error(solved_before, monkeypatch, capsys):
    """A pipe other than standard output (a socket, a subprocess's) broken while an input
    is processed is that input's error, as any, and the run goes on."""
    from skysolve.cli import solve_field_run as run
    from skysolve.cli.solve_field import main

    def broken(path: Path, out, args) -> bool:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(run, "_blocked", broken)
    assert main([str(p) for p in solved_before]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("Broken pipe") == 2
    assert "Reading input file 2 of 2" in captured.out
