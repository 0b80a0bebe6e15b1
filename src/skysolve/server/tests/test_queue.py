"""The job store, the queue's limits and the nova settings, without a server process."""

from __future__ import annotations

import json
import threading
import time

import pytest

from skysolve.server import nova
from skysolve.server.nova import BadRequest
from skysolve.server.store import MAX_ATTEMPTS, JobStore

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_nova_settings_become_skysolve_hints():
    kw = nova.solve_hints({"scale_units": "arcminwidth", "scale_lower": 600, "scale_upper": 720,
                           "center_ra": 370.0 - 10.0, "center_dec": -5.5, "radius": 3,
                           "parity": 1}, 20.0)
    assert kw["fov_range_deg"] == (10.0, 12.0)
    assert kw["position_hint"] == (0.0, -5.5) and kw["position_radius_deg"] == 3.0
    assert kw["parity_flip"] is False and kw["solve_timeout_ms"] == 20000.0
    ev = nova.solve_hints({"scale_units": "arcsecperpix", "scale_type": "ev", "scale_est": 40,
                           "scale_err": 10}, 5.0)
    assert ev["pixel_scale_range_arcsec"] == pytest.approx((36.0, 44.0))
    assert "parity_flip" not in nova.solve_hints({"parity": 2}, 1.0)
    assert nova.solve_hints({"parity": 0}, 1.0)["parity_flip"] is True


def test_a_scale_given_as_one_value_is_searched_about_it():
    """A known scale sent as ``scale_lower == scale_upper`` (or ``scale_err`` 0) is
    searched 1 % either side, as skysolve-field searches it: the empty range found no
    candidate pattern."""
    kw = nova.solve_hints({"scale_units": "degwidth", "scale_lower": 11.4,
                           "scale_upper": 11.4}, 5.0)
    assert kw["fov_range_deg"] == pytest.approx((11.286, 11.514))
    ev = nova.solve_hints({"scale_units": "app", "scale_type": "ev", "scale_est": 40,
                           "scale_err": 0}, 5.0)
    assert ev["pixel_scale_range_arcsec"] == pytest.approx((39.6, 40.4))


@pytest.mark.parametrize("settings,words", [
    ({"center_ra": 400, "center_dec": 0}, "center_ra"),
    ({"scale_lower": True}, "scale_lower"),
    ({"scale_err": 150, "scale_est": 1}, "scale_err"),
    ({"parity": 1.5}, "whole"),
    ({"scale_upper": float("nan")}, "scale_upper"),
    ({"scale_units": ["degwidth"], "scale_lower": 1, "scale_upper": 2}, "scale_units"),
    ({"scale_units": 7, "scale_lower": 1, "scale_upper": 2}, "scale_units"),
])
def test_nova_settings_out_of_range_name_the_setting(settings, words):
    with pytest.raises(BadRequest, match=words):
        nova.solve_hints(settings, 1.0)


def test_the_store_requeues_jobs_left_running_and_drops_unanswered_ones(tmp_path):
    store = JobStore(tmp_path)
    a = store.reserve("xy", {}, "a")
    store.accept(a, None)
    b = store.reserve("xy", {}, "b")  # never accepted: the server died while storing it
    store.start(a)
    store.close()
    again = JobStore(tmp_path)
    assert again.recover() == 1
    assert again.get(a)["state"] == "queued" and again.get(b) is None
    assert not again.job_dir(b).exists()
    for _ in range(MAX_ATTEMPTS - 1):  # killed while solving it, again and again
        again.start(a)
        again.recover()
    again.start(a)
    again.recover()
    row = again.get(a)
    assert row["state"] == "failure" and "stopped" in row["error"]


class _StubQueue:
    def __init__(self):
        self.pokes = 0

    def poke(self):
        self.pokes += 1


def _offline_app(tmp_path, **config):
    """The application with its store but no workers: jobs stay queued."""
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from skysolve.server.app import ServerConfig, create_app

    app = create_app(ServerConfig(data_dir=str(tmp_path), **config))
    app.state.service.store = JobStore(tmp_path)
    app.state.service.queue = _StubQueue()
    return TestClient(app, raise_server_exceptions=False)


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    client = _offline_app(tmp_path, max_queue=2)
    form = {"request-json": json.dumps({"x": [1.0, 2.0], "y": [3.0, 4.0], "image_width": 10,
                                        "image_height": 10})}
    assert [client.post("/api/url_upload", data=form).status_code for _ in range(2)] == [200,
                                                                                         200]
    r = client.post("/api/url_upload", data=form)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) > 0
    assert r.json()["status"] == "error"
    assert client.app.state.service.store.active_count() == 2


def test_uploads_arriving_together_do_not_overrun_the_queue_limit(tmp_path):
    """Five source lists whose bodies arrive together, with room for two: the limit is
    checked before a body is read, and again, exactly, when the job is reserved -- two
    are accepted, three answered 503 (before, all five were: each had passed the first
    check while the others were still arriving)."""
    import asyncio
    from urllib.parse import quote

    httpx = pytest.importorskip("httpx")
    app = _offline_app(tmp_path, max_queue=2).app
    body = "request-json=" + quote(json.dumps({"x": [1.0, 2.0], "y": [3.0, 4.0],
                                                "image_width": 10, "image_height": 10}))

    async def main() -> list[int]:
        gate = asyncio.Event()

        async def slow_body():
            yield body[:20].encode()
            await gate.wait()
            yield body[20:].encode()

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            posts = [asyncio.create_task(client.post(
                "/api/url_upload", content=slow_body(), headers={
                    "Content-Type": "application/x-www-form-urlencoded"})) for _ in range(5)]
            await asyncio.sleep(0.5)  # every request past its first check, body pending
            gate.set()
            return sorted(r.status_code for r in await asyncio.gather(*posts))

    assert asyncio.run(main()) == [200, 200, 503, 503, 503]
    assert app.state.service.store.active_count() == 2


def test_the_store_counts_uploads_being_stored_against_the_limit(tmp_path):
    from skysolve.server.store import QueueFull

    store = JobStore(tmp_path)
    first = store.reserve("xy", {}, None, limit=2)
    store.reserve("xy", {}, None, limit=2)  # (still being stored: state 'new')
    with pytest.raises(QueueFull):
        store.reserve("xy", {}, None, limit=2)
    store.drop(first)
    assert store.reserve("xy", {}, None, limit=2) > 0
    store.close()


def test_cors_is_off_unless_asked_for(tmp_path):
    origin = {"Origin": "http://elsewhere.example"}
    off = _offline_app(tmp_path / "a").get("/api/recent", headers=origin)
    assert "access-control-allow-origin" not in off.headers
    on = _offline_app(tmp_path / "b", cors_origins=["http://elsewhere.example"]).get(
        "/api/recent", headers=origin)
    assert on.headers["access-control-allow-origin"] == "http://elsewhere.example"


def test_a_job_past_its_time_limit_fails_and_the_workers_start_afresh(tmp_path, monkeypatch):
    from skysolve.batch import LocalPool
    from skysolve.server import queue as queue_module
    from skysolve.server import worker

    release = threading.Event()

    def stuck(*args):  # a job that never returns by itself
        release.wait(30)
        return {"solved": False, "message": "released"}

    monkeypatch.setattr(worker, "run_job", stuck)
    store = JobStore(tmp_path)
    job = store.reserve("xy", {"input": {}, "solve": {}}, None)
    store.accept(job, None)
    q = queue_module.JobQueue(store, None, workers=1, time_limit_s=0.2, grace_s=0.1)
    q._pool = LocalPool(1, "thread")
    restarted = []
    monkeypatch.setattr(q._pool, "restart", lambda: restarted.append(True))
    q._thread = threading.Thread(target=q._run, daemon=True)
    q._thread.start()
    try:
        deadline = time.monotonic() + 30
        while store.get(job)["state"] != "failure" and time.monotonic() < deadline:
            time.sleep(0.05)
        row = store.get(job)
        assert row["state"] == "failure" and "time limit" in row["error"]
        assert restarted
    finally:
        release.set()
        q.stop()


def _finished_job(store: JobStore, days_ago: float, solved: bool = True) -> int:
    job = store.reserve("xy", {"input": {}, "solve": {}}, "frame.fits")
    store.accept(job, "input.fits")
    (store.job_dir(job) / "input.fits").write_bytes(b"an upload")
    store.start(job)
    store.finish(job, solved, {"solved": solved})
    store._run("UPDATE jobs SET finished = ? WHERE id = ?",
               (time.time() - days_ago * 86400.0, job))
    return job


def test_finished_jobs_past_their_keeping_time_are_forgotten_with_their_files(tmp_path):
    # (a server running for months kept every upload: the disk filled)
    store = JobStore(tmp_path)
    old, old_failed = _finished_job(store, 8.0), _finished_job(store, 8.0, solved=False)
    recent = _finished_job(store, 6.0)
    waiting = store.reserve("xy", {}, "later.fits")
    store.accept(waiting, None)
    assert store.expire(7 * 86400.0) == 2
    for job in (old, old_failed):
        assert store.get(job) is None and not store.job_dir(job).exists()
    assert store.get(recent)["state"] == "success"
    assert (store.job_dir(recent) / "input.fits").read_bytes() == b"an upload"
    assert store.get(waiting)["state"] == "queued"
    assert store.expire(7 * 86400.0) == 0
    store.close()


def test_the_queue_forgets_old_jobs_only_when_told_to(tmp_path):
    from skysolve.batch import LocalPool
    from skysolve.server import queue as queue_module

    for keep_s, gone in ((None, False), (86400.0, True)):
        store = JobStore(tmp_path / str(keep_s))
        job = _finished_job(store, 2.0)
        q = queue_module.JobQueue(store, None, workers=1, time_limit_s=5.0, keep_s=keep_s)
        q._pool = LocalPool(1, "thread")
        q._thread = threading.Thread(target=q._run, daemon=True)
        q._thread.start()
        # (the dispatcher looks at once, then every EXPIRE_EVERY_S: a forgotten job is
        # waited for (its folder goes after its row), however loaded the machine; a kept
        # one is given the first look)
        deadline = time.monotonic() + 30.0
        while gone and store.job_dir(job).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not gone:
            time.sleep(0.3)
        q.stop()
        assert (store.get(job) is None) is gone
        assert store.job_dir(job).exists() is not gone
        store.close()


def test_serve_keep_days_reaches_the_service(monkeypatch, capsys):
    import skysolve.server
    from skysolve.cli import main

    seen = {}
    monkeypatch.setattr(skysolve.server, "missing_extra", lambda: [])
    monkeypatch.setattr(skysolve.server, "serve",
                        lambda config, on_ready: seen.setdefault("config", config))
    assert main(["serve", "--keep-days", "0.5", "-q"]) == 0
    assert seen["config"].keep_days == 0.5
    assert main(["serve", "--keep-days", "-1"]) == 2
    assert "--keep-days" in capsys.readouterr().err


def test_serve_without_the_extra_names_it(monkeypatch, capsys):
    import skysolve.server
    from skysolve.cli import EXIT_ERROR, main

    monkeypatch.setattr(skysolve.server, "missing_extra", lambda: ["starlette", "uvicorn"])
    assert main(["serve", "--port", "8999"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert 'pip install "skysolve[server]"' in err and "starlette, uvicorn" in err
    assert "Traceback" not in err


def _spin_forever(*args):  # a job stuck for good (picklable: module level)
    while True:
        time.sleep(0.01)


def _sigterm_handler():
    import signal

    return signal.getsignal(signal.SIGTERM)


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_restarting_the_server_pool_kills_its_stuck_workers():
    """A job past its time limit restarts the pool: its worker must go, not spin on."""
    import signal

    from skysolve.server.queue import ServerPool

    previous = signal.signal(signal.SIGTERM, lambda *a: None)  # as uvicorn's, inherited
    pool = ServerPool(1, "process")
    try:
        assert pool.submit(_sigterm_handler).result(timeout=60) == signal.SIG_DFL
        pool.submit(_spin_forever)
        time.sleep(0.5)
        old = list(pool._pool._processes.values())
        assert old and all(p.is_alive() for p in old)
        pool.restart()
        # (by pid: the executor's own thread may reap them first, and a Process handle
        # whose child was reaped elsewhere reports it alive for ever)
        deadline = time.monotonic() + 10
        while any(_running(p.pid) for p in old) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_running(p.pid) for p in old)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)


def _poison_or_done(job_dir, kind, inputs, solve, handle):  # (module level: picklable)
    import os

    if inputs.get("poison"):
        os._exit(1)  # the worker dies, as when killed for its memory
    time.sleep(0.3)
    return {"solved": True}


def test_only_the_job_that_kills_its_worker_fails(tmp_path, monkeypatch):
    """Jobs in flight beside a job that keeps killing its worker finish: after a worker
    dies, each of the jobs that were in flight runs alone, so only the culprit is
    charged (it used to fail every job beside it too)."""
    from skysolve.server import queue as queue_module
    from skysolve.server import worker

    monkeypatch.setattr(worker, "run_job", _poison_or_done)
    store = JobStore(tmp_path)
    jobs = []
    for poison in (False, True, False):
        job = store.reserve("xy", {"input": {"poison": poison}, "solve": {}}, None)
        store.accept(job, None)
        jobs.append(job)
    q = queue_module.JobQueue(store, None, workers=2, time_limit_s=30.0)
    q._pool = queue_module.ServerPool(2, "process")
    q._thread = threading.Thread(target=q._run, daemon=True)
    q._thread.start()
    try:
        deadline = time.monotonic() + 120
        while (any(store.get(j)["state"] not in ("success", "failure") for j in jobs)
               and time.monotonic() < deadline):
            time.sleep(0.1)
        states = [store.get(j)["state"] for j in jobs]
        assert states == ["success", "failure", "success"], states
        assert "worker stopped" in store.get(jobs[1])["error"]
    finally:
        q.stop()


def test_a_graceful_stop_does_not_count_against_the_job_it_interrupts(tmp_path, monkeypatch):
    """A server stopped (Ctrl-C, a service restart) while a job runs queues it again
    uncharged: three such restarts failed the job with "the server stopped while solving
    this job 3 times", the verdict meant for a job that kills the server."""
    from skysolve.batch import LocalPool
    from skysolve.server import queue as queue_module
    from skysolve.server import worker

    release = threading.Event()

    def long_job(*args):  # still running when the server stops
        release.wait(60)
        return {"solved": False, "message": "released"}

    monkeypatch.setattr(worker, "run_job", long_job)
    store = JobStore(tmp_path)
    job = store.reserve("xy", {"input": {}, "solve": {}}, None)
    store.accept(job, None)
    try:
        for _ in range(MAX_ATTEMPTS + 1):  # start, stop gracefully, start again, ...
            store.recover()
            q = queue_module.JobQueue(store, None, workers=1, time_limit_s=30.0)
            q._pool = LocalPool(1, "thread")
            q._thread = threading.Thread(target=q._run, daemon=True)
            q._thread.start()
            deadline = time.monotonic() + 30
            while store.get(job)["state"] != "solving" and time.monotonic() < deadline:
                time.sleep(0.02)
            assert store.get(job)["state"] == "solving"
            q.stop()
        store.recover()
        row = store.get(job)
        assert row["state"] == "queued" and row["error"] is None, dict(row)
    finally:
        release.set()


def test_request_json_nested_too_deeply_is_a_400_not_a_500(tmp_path):
    """Arrays nested 100,000 deep (a small body) made ``json.loads`` raise RecursionError,
    answered 500 "internal error"; likewise a ``scale_units`` that is no text."""
    client = _offline_app(tmp_path)
    for text in ("[" * 100_000, '{"x": ' + "[" * 100_000 + "}"):
        r = client.post("/api/url_upload", data={"request-json": text})
        assert r.status_code == 400 and "request-json" in r.json()["errormessage"], r.text
    r = client.post("/api/url_upload", data={"request-json": json.dumps(
        {"x": [1.0, 2.0], "y": [3.0, 4.0], "image_width": 10, "image_height": 10,
         "scale_units": ["a"], "scale_lower": 1, "scale_upper": 2})})
    assert r.status_code == 400 and "scale_units" in r.json()["errormessage"], r.text
