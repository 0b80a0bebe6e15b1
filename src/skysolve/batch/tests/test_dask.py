"""Batches on a real Dask cluster: a LocalCluster of 2 worker processes, started and
stopped here. The same 200 frames as the serial reference give the same results; a worker
killed mid-batch loses nothing; a corrupt file is one failed row; the calibration workflow
gives the same numbers serially, on a local pool and on Dask."""

from __future__ import annotations

import logging
import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # noqa: E402

from skysolve import solve_many  # noqa: E402
from skysolve.batch import LocalPool  # noqa: E402
from skysolve.batch.pools import WORKER_CONFIG, connect  # noqa: E402
from skysolve.calibration.workflow import calibrate_frames, seed_passes  # noqa: E402

from .conftest import SOLVE, fingerprint  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    import dask

    # as docs/batch.rst recommends (and client="local" starts)
    with dask.config.set(WORKER_CONFIG), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def _opened() -> dict[str, str]:
    """The databases this worker process opened, and how their arrays are held."""
    from skysolve.batch import executors

    return {path: type(db.pattern_keys).__name__ for path, db in executors._OPENED.items()}


def test_dask_gives_the_serial_results(client, batch_db, batch_frames, serial_results):
    got = solve_many(batch_frames.sources, batch_db, client=client, progress=False, **SOLVE)
    assert len(got) == 200 and all(r.source is s for r, s in zip(got, batch_frames.sources,
                                                                 strict=True))
    assert fingerprint(got) == fingerprint(serial_results)
    pids = {int(w.rsplit(":", 1)[1]) for w in (r.worker for r in got)}
    assert os.getpid() not in pids and pids <= set(client.run(os.getpid).values())
    # every worker memory-mapped the database file once, by its path
    for opened in client.run(_opened).values():
        assert opened == {os.path.realpath(batch_db.file_path): "memmap"}


def test_a_worker_killed_mid_batch_loses_no_frame(client, batch_db, batch_frames,
                                                  serial_results):
    import threading

    # The frames twice over: a longer batch. A watcher thread, not ``on_result``, looks
    # for a worker at work: the callbacks run in bursts between the main loop's waits,
    # and fast frames can all be done by the time one runs.
    sources = batch_frames.sources * 2
    reported = threading.Event()
    killed: dict[str, int] = {}

    def kill_a_busy_worker() -> None:
        reported.wait()
        while not killed and not finished.is_set():
            busy = {w: len(keys) for w, keys in client.processing().items() if keys}
            if busy:
                victim = max(busy, key=busy.get)
                pid = client.run(os.getpid, workers=[victim]).get(victim)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)  # its nanny starts a new worker process
                    killed.update(pid=pid, in_flight=busy[victim])
            time.sleep(0.001)

    def count(i: int, _result) -> None:
        if i >= 40:  # mid-batch: frames already came back
            reported.set()

    finished = threading.Event()
    watcher = threading.Thread(target=kill_a_busy_worker, daemon=True)
    watcher.start()
    try:
        got = solve_many(sources, batch_db, client=client, progress=False, on_result=count,
                         **SOLVE)
    finally:
        finished.set()
        reported.set()
        watcher.join(timeout=30)
    assert killed and killed["in_flight"] >= 1  # it died with frames on it
    assert len(got) == len(sources) and [r.source for r in got] == sources
    # each frame once, solved alike
    assert fingerprint(got) == fingerprint(serial_results) * 2
    # the frames it held ran again elsewhere: other processes (the other worker, and the
    # one its nanny started) returned frames. (Which frames the dead one had returned by
    # then depends on timing: up to 12 tasks of 8 frames are in flight.)
    pids = {int(r.worker.rsplit(":", 1)[1]) for r in got}
    assert len(pids - {killed["pid"]}) >= 1
    assert set(client.run(os.getpid).values()).isdisjoint({killed["pid"]})


def test_a_corrupt_file_is_one_failed_row(client, batch_db, batch_frames, serial_results):
    sources = list(batch_frames.sources)
    good = open(sources[50], "rb").read()
    corrupt = batch_frames.folder / "corrupt.fits"
    corrupt.write_bytes(good[:2880] + b"\x00garbage" * 5000)
    sources[50] = str(corrupt)
    # a scheduler address: the call connects, and closes its own client
    got = solve_many(sources, batch_db, client=client.scheduler.address, progress=False,
                     **SOLVE)
    assert got.num_failed == 1 and got[50].status == "error" and got[50].result is None
    assert got[50].error and "\n" not in got[50].error
    rest = [r for k, r in enumerate(got) if k != 50]
    assert len(rest) == 199
    assert fingerprint(rest) == fingerprint([r for k, r in enumerate(serial_results) if k != 50])


def test_calibration_serial_local_and_dask_agree(client, batch_db, batch_frames):
    frames = batch_frames.sources[:12]
    kw = dict(passes=seed_passes(2, order=3), fov_estimate_deg=15.0, fov_max_error_deg=1.0,
              image_shape=(768, 1024), progress=False)
    serial = calibrate_frames(frames, batch_db, **kw)
    with LocalPool(2) as pool:
        local = calibrate_frames(frames, batch_db, executor=pool, **kw)
    dask = calibrate_frames(frames, batch_db, executor=client, **kw)
    assert serial.completed and serial.passes[-1].num_solved == 12
    for run in (local, dask):
        for a, b in zip(serial.passes, run.passes, strict=True):
            assert [r.status for r in a.solutions] == [r.status for r in b.solutions]
            for ra, rb in zip(a.solutions, b.solutions, strict=True):
                np.testing.assert_allclose(rb.rotation_matrix_icrs_to_camera,
                                           ra.rotation_matrix_icrs_to_camera, rtol=0, atol=1e-9)
            ca, cb = a.calibration, b.calibration
            assert (cb.n_inliers, cb.n_outliers) == (ca.n_inliers, ca.n_outliers)
            for name in ("rmse_before_px", "rmse_after_px"):
                assert getattr(cb, name) == pytest.approx(getattr(ca, name), abs=1e-9)
            assert _numbers(cb.camera_model.to_dict()) == pytest.approx(
                _numbers(ca.camera_model.to_dict()), rel=0, abs=1e-9)
    assert dask.camera_model.focal_length_px == pytest.approx(
        serial.camera_model.focal_length_px, rel=0, abs=1e-9)


def _numbers(value) -> list[float]:
    """Every number in a nested description (the camera's focal length, centre, terms)."""
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _numbers(value[k])]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _numbers(v)]
    return [float(value)] if isinstance(value, int | float) else []


def test_the_local_cluster_leaves_ctrl_c_to_the_client():
    # Ctrl-C on a terminal signals the process group, the workers of client="local" with it
    dask_client, owned = connect("local", jobs=1)
    try:
        pids = set(dask_client.run(os.getpid).values())
        for pid in pids:
            os.kill(pid, signal.SIGINT)
        time.sleep(1.0)
        assert len(pids) == 1 and set(dask_client.run(os.getpid).values()) == pids  # alive
    finally:
        for thing in owned:
            thing.close()


def _square(x: int) -> int:
    return x * x


def test_a_cluster_without_workers_is_not_waited_for_in_silence(monkeypatch):
    """A cluster whose workers are all gone (frames that killed them until the nannies
    gave up) left a batch waiting forever without a word: a cluster started for the
    batch ends it with WorkerLostError; another is waited for, with a warning, and its
    tasks run once workers join."""
    import threading

    from skysolve.batch import executors

    monkeypatch.setattr(executors, "NO_WORKERS_S", 0.3)
    monkeypatch.setattr(executors, "NO_WORKERS_POLL_S", 0.1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as empty:
        owned = executors.as_executor(empty, owns_cluster=True)
        with pytest.raises(executors.WorkerLostError, match="no workers"):
            dict(executors.iter_tasks(_square, range(5), executor=owned))
        timer = threading.Timer(1.5, cluster.scale, args=(1,))
        timer.start()
        try:
            with pytest.warns(RuntimeWarning, match="no workers for"):
                got = dict(executors.iter_tasks(_square, range(5), executor=empty))
        finally:
            timer.cancel()
    assert got == {k: k * k for k in range(5)}
