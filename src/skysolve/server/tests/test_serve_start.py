"""``skysolve serve`` that cannot start: one line naming why, status 1, no banner."""

from __future__ import annotations

import pytest

from .conftest import free_port

pytest.importorskip("uvicorn")


@pytest.mark.parametrize("what", ["missing", "not a database", "data dir is a file"])
def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path, capsys, what):
    """A missing or bad ``--db`` printed the "http://...; Ctrl-C stops" banner, then
    uvicorn's 30-line traceback of its failed start, and exited 3; a ``--data-dir`` that
    is a file said only "File exists"."""
    from skysolve.cli import EXIT_ERROR, main

    db, data = tmp_path / "sky.db", tmp_path / "data"
    if what == "not a database":
        db.write_text("hello")
    if what == "data dir is a file":
        data.write_text("jobs?")
        db.write_text("never read")
    status = main(["serve", "--db", str(db), "--data-dir", str(data),
                   "--port", str(free_port())])
    err = capsys.readouterr().err
    assert status == EXIT_ERROR, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "Ctrl-C stops" not in err, err
    words = {"missing": "not found", "not a database": "database",
             "data dir is a file": "data directory"}[what]
    assert words in lines[0] and str(db if what != "data dir is a file" else data) in lines[0]


def test_a_port_in_use_is_one_line_naming_it(tmp_path, capsys, small_db_file):
    """A second server on a port in use printed its banner, started its workers and then
    uvicorn's "[Errno 98] error while attempting to bind", exiting 3."""
    import socket

    from skysolve.cli import EXIT_ERROR, main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        status = main(["serve", "--db", str(small_db_file), "--data-dir",
                       str(tmp_path / "data"), "--port", str(port)])
    err = capsys.readouterr().err
    assert status == EXIT_ERROR, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "Ctrl-C" not in err, err


def test_a_damaged_job_store_is_one_line_naming_it(tmp_path, capsys, small_db_file):
    """A ``jobs.sqlite`` that is not a database (a disk error, another program's file) was
    uvicorn's traceback of "sqlite3.DatabaseError: file is not a database", status 3."""
    from skysolve.cli import EXIT_ERROR, main

    data = tmp_path / "data"
    data.mkdir()
    (data / "jobs.sqlite").write_bytes(b"not a database " * 100)
    status = main(["serve", "--db", str(small_db_file), "--data-dir", str(data),
                   "--port", str(free_port())])
    err = capsys.readouterr().err
    assert status == EXIT_ERROR, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "jobs.sqlite" in lines[0] and "Traceback" not in err, err
    assert (data / "jobs.sqlite").read_bytes() == b"not a database " * 100  # left as it was
