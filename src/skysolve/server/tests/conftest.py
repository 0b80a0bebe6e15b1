"""A live ``skysolve serve`` on 127.0.0.1 for the server's tests, solving with ``small_db``.

The server runs as its own process (``python -m skysolve serve``), so that the
tests talk to it over HTTP exactly as outside programs do, and can kill it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")

#: The API key of the shared server.
API_KEY = "sesame"
#: Seconds a server may take to start (the first start compiles the solver).
START_TIMEOUT = 900.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``skysolve serve`` in a child process; ``url`` is its base address."""

    def __init__(self, db_path: Path, data_dir: Path, *args: str) -> None:
        self.db_path, self.data_dir, self.args = db_path, data_dir, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self) -> LiveServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "skysolve", "serve", "--db", str(self.db_path),
                 "--data-dir", str(self.data_dir), "--port", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                self.get("/api/health")
                return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the server did not start")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def small_db_file(small_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("server_db") / "small.db"
    small_db.save_to_file(path)
    return path


@pytest.fixture(scope="session")
def server(small_db_file, tmp_path_factory):
    """A shared live server with ``--api-key`` :data:`API_KEY` and a 2 MB upload limit."""
    data = tmp_path_factory.mktemp("server") / "data"
    live = LiveServer(small_db_file, data, "--api-key", API_KEY, "--max-upload-mb", "2",
                      "--workers", "1").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def http(server):
    """An httpx client of the shared server (httpx: the test extra's)."""
    httpx = pytest.importorskip("httpx")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def session(http):
    """A session of the shared server, as nova's login gives it."""
    r = http.post("/api/login", data={"request-json": json.dumps({"apikey": API_KEY})})
    assert r.status_code == 200 and r.json()["status"] == "success"
    return r.json()["session"]
