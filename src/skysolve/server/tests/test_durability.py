"""A server killed with SIGKILL and started again finishes every job it had accepted."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from skysolve.tests.realframes import ALT40, ALT60, DATA

from .conftest import LiveServer, free_port

httpx = pytest.importorskip("httpx")


def _wait_done(http, ids, timeout=600.0):
    deadline = time.monotonic() + timeout
    states = {}
    while time.monotonic() < deadline:
        states = {i: http.get(f"/api/jobs/{i}").json()["status"] for i in ids}
        if all(s != "solving" for s in states.values()):
            return states
        time.sleep(0.5)
    raise AssertionError(f"jobs still running: {states}")


@pytest.mark.slow
def test_sigkill_then_restart_finishes_every_accepted_job(small_db_file, tmp_path):
    data = tmp_path / "data"
    first = LiveServer(small_db_file, data, "--workers", "1").start()
    frames = [(DATA / n).read_bytes() for n in (ALT40, ALT60)]
    accepted = []
    try:
        with httpx.Client(base_url=first.url, timeout=60) as http:
            for k in range(10):
                r = http.post("/api/upload", data={"request-json": json.dumps(
                    {"scale_units": "degwidth", "scale_lower": 10, "scale_upper": 13})},
                    files={"file": (f"f{k}.tiff", frames[k % 2])})
                assert r.status_code == 200, r.text
                accepted.append(r.json()["subid"])
            before = {i: http.get(f"/api/jobs/{i}").json()["status"] for i in accepted}
    finally:
        first.kill()
    assert len(set(accepted)) == len(accepted)
    unfinished = [i for i, s in before.items() if s == "solving"]
    assert unfinished, "every job finished before the kill: the test proves nothing"

    # the same port: the killed server's workers died with it and hold none of its sockets
    second = LiveServer(small_db_file, data, "--workers", "1")
    second.port, second.url = first.port, first.url
    second.start()
    try:
        with httpx.Client(base_url=second.url, timeout=60) as http:
            states = _wait_done(http, accepted)
            assert set(states.values()) == {"success"}, states
            for i in accepted:  # finished before or after the kill, all served
                r = http.get(f"/wcs_file/{i}")
                assert r.status_code == 200 and r.content.startswith(b"SIMPLE")
            recent = http.get("/api/recent").json()["jobs"]
            assert sorted(j["id"] for j in recent if j["id"] in accepted) == sorted(accepted)
            assert len(recent) == len(accepted)  # nothing duplicated
    finally:
        second.stop()


def test_a_second_server_on_the_same_data_dir_is_refused(server, small_db_file):
    """It would requeue the first one's running jobs and drop its uploads on start."""
    proc = subprocess.run(
        [sys.executable, "-m", "skysolve", "serve", "--db", str(small_db_file), "--data-dir",
         str(server.data_dir), "--port", str(free_port()), "--quiet"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "in use by another skysolve serve" in proc.stderr and "Traceback" not in proc.stderr
    assert server.get("/api/health")["status"] == "ok"  # the first one runs on
