"""solve_many and the batch loop: serial and local pools agree, failures are rows, the
results table is kept current, resumed and never half-written, dead workers lose nothing."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

import skysolve
from skysolve import SolveOptions, solve_many
from skysolve.batch import LocalPool, iter_tasks, run_tasks
from skysolve.batch.executors import MAX_CHUNK, MAX_WORKER_DEATHS, WorkerLostError
from skysolve.batch.results import COLUMNS
from skysolve.errors import InvalidArgumentError, InvalidTypeError

from .conftest import IMAGE_FRAMES, SOLVE, boresight_errors_deg, fingerprint

FEW = 24  # frames of the quicker tests: the first 24 (frame 3 is an image)


def test_serial_results_match_the_truth_and_the_solver(batch_db, batch_frames, serial_results):
    assert len(serial_results) == 200 and serial_results.num_failed == 0
    assert serial_results.num_solved >= 196
    err = boresight_errors_deg(serial_results, batch_frames.attitudes)
    assert np.nanmax(err) < 0.02  # 72": the simulated fields carry 0.1 px noise, 53"/px
    for k in IMAGE_FRAMES:  # read from FITS and extracted
        r = serial_results[k]
        assert r and r.source == batch_frames.sources[k] and r.image_shape == (768, 1024)
        assert r.num_centroids >= 10
        assert set(r.timings) == {"read", "extract", "solve", "total", "cpu"}
    # a centroid frame's result is exactly the solver's own
    direct = batch_db.solve_from_centroids(batch_frames.sources[0], **SOLVE)
    r = serial_results[0]
    assert r.source is batch_frames.sources[0] and r.error is None and not r.resumed
    np.testing.assert_array_equal(r.result.rotation_matrix_icrs_to_camera,
                                  direct.rotation_matrix_icrs_to_camera)
    assert "200 frames:" in serial_results.summary() and "0 failed" in serial_results.summary()


@pytest.mark.parametrize("kind", ["process", "thread"])
def test_local_pools_give_the_serial_results(batch_db, batch_frames, serial_results, kind):
    # processes: the default (jobs=2); threads: a LocalPool through the loop's executor
    if kind == "process":
        got = solve_many(batch_frames.sources[:FEW], batch_db, jobs=2, progress=False, **SOLVE)
    else:
        from skysolve.batch import DatabaseHandle
        from skysolve.batch.solve_many import solve_task

        task = functools.partial(solve_task, DatabaseHandle(batch_db), SolveOptions(**SOLVE),
                                 None, None, None)
        with LocalPool(2, "thread") as pool:
            got = run_tasks(task, batch_frames.sources[:FEW], executor=pool, progress=False)
            for r, s in zip(got, batch_frames.sources[:FEW], strict=True):
                r.source = s
    assert fingerprint(got) == fingerprint(serial_results[:FEW])
    if kind == "process":  # the work was done in other processes
        assert {r.worker.rsplit(":", 1)[1] for r in got} - {str(os.getpid())}


def _bad_files(folder: Path) -> list[str]:
    truncated = folder / "truncated.fits"
    good = Path(folder / "frame_003.fits").read_bytes()
    truncated.write_bytes(good[: len(good) // 3])
    text = folder / "notes.fits"
    text.write_text("SIMPLE  = this is not a FITS file\n")
    return [str(truncated), str(text), str(folder / "missing.fits")]


def test_unreadable_files_are_failed_rows_not_a_failed_batch(batch_db, batch_frames):
    bad = _bad_files(batch_frames.folder)
    sources = [batch_frames.sources[0], *bad, batch_frames.sources[3]]
    got = solve_many(sources, batch_db, jobs=2, progress=False, **SOLVE)
    assert [r.status for r in got] == ["match_found", "error", "error", "error", "match_found"]
    assert (got.num_solved, got.num_failed, got.num_unsolved) == (2, 3, 0)
    for r, path in zip(got[1:4], bad, strict=True):
        assert r.result is None and r.source == path and r.traceback
        assert "\n" not in r.error and Path(path).name in r.error or "FITS" in r.error, r.error
    assert "no such image file" in got[3].error


def test_results_table_resume_and_overwrite(batch_db, batch_frames, serial_results, tmp_path):
    table = tmp_path / "results.ecsv"
    bad = str(tmp_path / "missing.fits")
    sources = [*batch_frames.sources[:6], bad]
    first = solve_many(sources, batch_db, jobs=1, results=table, progress=False, **SOLVE)
    rows = Table.read(table, format="ascii.ecsv")
    assert rows.colnames == [name for name, _, _ in COLUMNS] and len(rows) == 7
    assert list(rows["status"]) == [r.status for r in first]
    assert list(rows["source"])[:2] == ["frame 0", "frame 1"] and rows["source"][3] == sources[3]
    assert rows["ra_deg"][0] == pytest.approx(serial_results[0].result.ra_deg, abs=1e-12)
    assert rows["num_matches"][0] == serial_results[0].result.num_matches
    assert "no such image file" in rows["error"][6] and rows["read_s"][3] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    with pytest.raises(InvalidArgumentError, match="exists: resume"):
        solve_many(sources, batch_db, jobs=1, results=table, progress=False, **SOLVE)
    # resume: the six done frames are skipped, the failed one is tried again
    seen = []
    again = solve_many(sources, batch_db, jobs=1, results=table, resume=True, progress=False,
                       on_result=lambda i, r: seen.append(i), **SOLVE)
    assert seen == [6] and [r.resumed for r in again] == [True] * 6 + [False]
    assert [r.status for r in again] == [r.status for r in first]
    assert again[3].image_shape == (768, 1024) and again[3].result
    # overwrite: everything again, a table of this run only
    solve_many(sources[:2], batch_db, jobs=1, results=table, overwrite=True, progress=False,
               **SOLVE)
    assert len(Table.read(table, format="ascii.ecsv")) == 2


def test_resumed_frames_have_the_tables_solution(batch_db, batch_frames, tmp_path):
    table = tmp_path / "resumed.ecsv"
    sources = [*batch_frames.sources[2:5], np.zeros((2, 3))]  # the last: too few stars
    first = solve_many(sources, batch_db, jobs=1, results=table, progress=False, **SOLVE)
    assert [r.status for r in first] == ["match_found"] * 3 + ["too_few"]
    again = solve_many(sources, batch_db, jobs=1, results=table, resume=True,
                       progress=False, **SOLVE)
    assert all(r.resumed for r in again)
    for r, f in zip(again, first, strict=True):  # the loop of docs/batch.rst
        if r:
            assert (r.result.ra_deg, r.result.dec_deg, r.result.roll_deg) == pytest.approx(
                (f.result.ra_deg, f.result.dec_deg, f.result.roll_deg), abs=1e-9)
            assert r.result.num_matches == f.result.num_matches
            assert r.timings["total"] == pytest.approx(f.timings["total"], abs=1e-9)
        else:
            assert not r.result and r.result.status == r.status == "too_few"
            assert r.result.message and not r.error
    # nothing of the table is lost: a resumed frame gives back its row
    rows = Table.read(table, format="ascii.ecsv")
    for i, r in enumerate(again):
        row = r.row(i)
        for name in ("ra_deg", "fov_deg", "rmse_arcsec", "probability", "solve_s", "worker"):
            assert row[name] == pytest.approx(rows[name][i], abs=1e-9, nan_ok=True), name
    # the rest of a solution is not in the table, and asking for it says so
    with pytest.raises(AttributeError, match="quaternion: .*results table"):
        again[0].result.quaternion  # noqa: B018
    assert again[0].result.to_dict()["ra_deg"] == again[0].result.ra_deg


def test_a_path_given_twice_gets_a_row_each_and_resumes(batch_db, batch_frames, tmp_path):
    table = tmp_path / "dup.ecsv"
    a, b = (batch_frames.sources[k] for k in IMAGE_FRAMES[:2])
    got = solve_many([a, b, a], batch_db, jobs=1, results=table, progress=False, **SOLVE)
    rows = Table.read(table, format="ascii.ecsv")
    assert sorted(rows["index"]) == [0, 1, 2] and len(got) == 3
    assert sorted(rows["source"]) == sorted([a, a, b])
    # resume matches the n-th input of a path to its n-th row: only the third `a` is new
    again = solve_many([a, a, b, a], batch_db, jobs=1, results=table, resume=True,
                       progress=False, **SOLVE)
    assert [r.resumed for r in again] == [True, True, True, False]
    rows = Table.read(table, format="ascii.ecsv")
    assert len(rows) == 4 and list(rows["source"]).count(a) == 3


def test_a_resumed_run_numbers_its_rows_in_its_own_input_order(batch_db, batch_frames,
                                                               tmp_path):
    """Frames given in another order on the resumed run: the index column is the resumed
    run's input order (the frames done before kept their first run's numbers, and the
    column held two 1s); a row of a frame the resumed run does not name keeps its own."""
    table = tmp_path / "order.ecsv"
    a, b, c, d = (batch_frames.sources[k] for k in IMAGE_FRAMES[:4])
    solve_many([a, b, d], batch_db, jobs=1, results=table, progress=False, **SOLVE)
    again = solve_many([b, c, a], batch_db, jobs=1, results=table, resume=True,
                       progress=False, **SOLVE)
    assert [r.resumed for r in again] == [True, False, True]
    rows = Table.read(table, format="ascii.ecsv")
    assert dict(zip(rows["source"], rows["index"], strict=True)) == {b: 0, c: 1, a: 2, d: 2}


def test_resume_knows_a_file_however_its_path_is_spelt(batch_db, batch_frames, tmp_path,
                                                      monkeypatch):
    """Relative paths on one run, absolute ones (or ``./``, ``..``, a symbolic link) on the
    resumed run: the files were all solved again, each with a second row."""
    table = tmp_path / "spelt.ecsv"
    folder = batch_frames.folder
    a, b = (Path(batch_frames.sources[k]).name for k in IMAGE_FRAMES[:2])
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    monkeypatch.chdir(folder)
    first = solve_many([a, b], batch_db, jobs=1, results=table, progress=False, **SOLVE)
    assert all(first)
    rows = Table.read(table, format="ascii.ecsv")
    assert list(rows["source"]) == [a, b]  # as given
    assert list(rows["path"]) == [os.path.realpath(folder / a), os.path.realpath(folder / b)]
    spelt = [str(folder / b), f"./{a}"]
    again = solve_many(spelt, batch_db, jobs=1, results=table, resume=True, progress=False,
                       **SOLVE)
    assert [r.resumed for r in again] == [True, True]
    assert [r.source for r in again] == spelt and again[0].result.ra_deg == first[1].result.ra_deg
    assert len(Table.read(table, format="ascii.ecsv")) == 2
    # the same file given twice in one run, however spelt, has a row each (as a path given
    # twice): the second spellings are new occurrences, the third a resumed one
    more = [str(tmp_path / "link" / a), f"../{folder.name}/{a}", a]
    again = solve_many(more, batch_db, jobs=1, results=table, resume=True, progress=False,
                       **SOLVE)
    assert [r.resumed for r in again] == [True, False, False]
    rows = Table.read(table, format="ascii.ecsv")
    assert len(rows) == 4 and list(rows["source"]) == [a, b, *more[1:]]
    assert set(rows["path"]) == {os.path.realpath(folder / a), os.path.realpath(folder / b)}


def test_a_table_without_the_path_column_resumes_by_spelling(batch_db, batch_frames,
                                                              tmp_path):
    table = tmp_path / "old.ecsv"
    a = batch_frames.sources[IMAGE_FRAMES[0]]
    solve_many([a, batch_frames.sources[0]], batch_db, jobs=1, results=table, progress=False,
               **SOLVE)
    rows = Table.read(table, format="ascii.ecsv")
    rows.remove_column("path")
    rows.write(table, format="ascii.ecsv", overwrite=True)
    again = solve_many([a, batch_frames.sources[0]], batch_db, jobs=1, results=table,
                       resume=True, progress=False, **SOLVE)
    assert [r.resumed for r in again] == [True, True]
    assert Table.read(table, format="ascii.ecsv").colnames == [n for n, _, _ in COLUMNS]


def test_interrupted_run_leaves_a_whole_table_and_resume_finishes(batch_db, batch_frames,
                                                                  serial_results, tmp_path):
    table = tmp_path / "run.ecsv"
    sources = batch_frames.sources[4:4 + FEW]  # centroid frames: they finish about in order

    def stop_after_five(i, r):
        if i == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        solve_many(sources, batch_db, jobs=2, results=table, progress=False,
                   on_result=stop_after_five, **SOLVE)
    done = Table.read(table, format="ascii.ecsv")
    assert 5 <= len(done) < FEW  # every frame that finished, in a whole file
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    rest = solve_many(sources, batch_db, jobs=2, results=table, resume=True, progress=False,
                      **SOLVE)
    assert sum(not r.resumed for r in rest) == FEW - len(done)
    final = Table.read(table, format="ascii.ecsv")
    assert sorted(final["index"]) == list(range(FEW))
    assert list(final["status"][np.argsort(final["index"])]) == [
        r.status for r in serial_results[4:4 + FEW]]


def _die_once(folder: str, x: int) -> int:
    """Kill this worker process the first time item ``x`` (a multiple of 7) runs."""
    marker = Path(folder) / f"died_{x}"
    if x % 7 == 0 and not marker.exists():
        marker.touch()
        os._exit(1)
    return x * x


def _always_die(x: int) -> int:
    if x == 5:
        os._exit(1)
    return -x


def test_dead_local_workers_rerun_their_frames_exactly_once(tmp_path):
    items = list(range(30))
    with LocalPool(2) as pool:
        got = list(iter_tasks(functools.partial(_die_once, str(tmp_path)), items,
                              executor=pool))
    assert sorted(i for i, _ in got) == items  # every item once
    assert dict(got) == {x: x * x for x in items}
    assert len(list(tmp_path.glob("died_*"))) == 5  # 0, 7, 14, 21, 28 each killed a worker

    # a frame that kills every worker it runs on is given up, alone, with its reason
    with LocalPool(2) as pool:
        got = dict(iter_tasks(_always_die, range(10), executor=pool,
                              lost=lambda x, reason: f"lost {x}: {reason}"))
    assert got.pop(5) == f"lost 5: its worker process died {MAX_WORKER_DEATHS} times while " \
                         "running it"
    assert got == {x: -x for x in range(10) if x != 5}
    with LocalPool(2) as pool, pytest.raises(WorkerLostError, match="died"):
        list(iter_tasks(_always_die, range(10), executor=pool))
    # an executor that cannot start afresh says so
    with cf.ProcessPoolExecutor(2) as pool, pytest.raises(WorkerLostError, match="restart"):
        list(iter_tasks(_always_die, range(10), executor=pool))


class _BreaksWhileSubmitting(LocalPool):
    """A pool of 2 whose first pool, at its third ``submit``, waits until it has broken
    (its first task killed its worker): the race a loaded machine runs into, where a
    worker dies while the batch is still submitting and ``submit`` itself raises
    ``BrokenProcessPool``."""

    def __init__(self) -> None:
        super().__init__(2)
        self.calls, self.first = 0, self._pool

    def submit(self, fn, /, *args, **kwargs):
        self.calls += 1
        if self.calls == 3 and self._pool is self.first:
            while not self._pool._broken:
                time.sleep(0.01)
        return super().submit(fn, *args, **kwargs)


def test_a_worker_dying_while_tasks_are_submitted_loses_no_frame(tmp_path):
    """``submit`` refused by a pool broken a moment ago raised BrokenProcessPool out of
    the batch (CI under load, once): its tasks now rerun as any dead worker's."""
    items = list(range(30))
    with _BreaksWhileSubmitting() as pool:
        got = list(iter_tasks(functools.partial(_die_once, str(tmp_path)), items,
                              executor=pool))
    assert pool.calls > 3 and pool._pool is not pool.first  # it broke, and was restarted
    assert sorted(i for i, _ in got) == items
    assert dict(got) == {x: x * x for x in items}


def test_extraction_results_solve_as_their_images(batch_db, batch_frames, serial_results):
    """Frames given as ExtractionResults solve without a size, exactly as the images they
    come from (both solves see the extraction itself: its size, its rejected detections);
    a size that disagrees with theirs is that frame's error, naming the argument."""
    found = [skysolve.extract_centroids(skysolve.read_image(batch_frames.sources[k]))
             for k in IMAGE_FRAMES]
    args = {k: v for k, v in SOLVE.items() if k != "image_shape"}
    out = solve_many(found, batch_db, jobs=1, **args)
    for k, row in zip(IMAGE_FRAMES, out, strict=True):
        assert row.status == "match_found" and row.image_shape == (768, 1024)
        np.testing.assert_array_equal(row.result.rotation_matrix_icrs_to_camera,
                                      serial_results[k].result.rotation_matrix_icrs_to_camera)
    wrong = solve_many(found[:1], batch_db, jobs=1, **{**args, "image_shape": (1024, 768)})
    assert wrong[0].status == "error" and "image_shape=(1024, 768)" in wrong[0].error


def test_arguments_are_checked(batch_db, batch_frames):
    sig = inspect.signature(solve_many)
    names = list(sig.parameters)
    assert names[:4] == ["sources", "database", "client", "jobs"]
    assert names[-1] == "options" and set(SolveOptions.names()) <= set(names)
    assert all(sig.parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names[2:])
    assert "fov_estimate_deg : " in inspect.getdoc(solve_many)
    assert skysolve.solve_many is solve_many
    one = batch_frames.sources[0]
    with pytest.raises(InvalidTypeError, match="sequence of frames"):
        solve_many("frame.fits", batch_db)
    with pytest.raises(InvalidTypeError, match="sequence of frames"):
        solve_many(one, batch_db)
    with pytest.raises(TypeError, match="positional"):
        solve_many([one], batch_db, 2)
    with pytest.raises(InvalidTypeError, match="match_raduis"):
        solve_many([one], batch_db, match_raduis=0.02)
    with pytest.raises(InvalidArgumentError, match="jobs"):
        solve_many([one], batch_db, jobs=0)
    with pytest.raises(InvalidArgumentError, match="results table"):
        solve_many([one], batch_db, resume=True)
    with pytest.raises(InvalidTypeError, match="database"):
        solve_many([one], "db.bin")


def test_dask_missing_names_the_extra(batch_db, batch_frames, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"skysolve\[distributed\]"):
        solve_many(batch_frames.sources[:2], batch_db, client="tcp://127.0.0.1:8786")
    from skysolve.cli import main

    code = main(["solve", batch_frames.sources[3], "--db", batch_db.file_path,
                 "--scheduler", "tcp://127.0.0.1:8786"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "skysolve[distributed]" in err[0], err


class _FakeClient:
    """What the checks of a Dask cluster ask of a client: ``run`` on every worker."""

    def __init__(self, env: str | None, has_db: bool):
        self.env, self.has_db = env, has_db

    def run(self, fn, *args):
        if fn is os.path.isfile:
            return {"tcp://a:1": self.has_db, "tcp://b:1": True}
        return {"tcp://a:1": self.env, "tcp://b:1": self.env}


def test_dask_workers_are_checked_before_the_batch(batch_db):
    from skysolve.batch import DatabaseHandle
    from skysolve.batch.pools import _check_workers

    handle = DatabaseHandle(batch_db)
    with pytest.warns(RuntimeWarning, match="MALLOC_TRIM_THRESHOLD_=65536"):
        _check_workers(_FakeClient("65536", True), handle)
    with pytest.raises(InvalidArgumentError, match="not readable on 1 of 2 Dask workers"):
        _check_workers(_FakeClient(None, False), handle)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_workers(_FakeClient(None, True), handle)  # all well: silent
    from skysolve.calibration.tests.test_workflow import _tiny_catalog

    fresh = type(batch_db).generate_from_catalog(_tiny_catalog(), max_fov_deg=30.0,
                                                 progress=False)
    with pytest.raises(InvalidArgumentError, match="has no file"):
        _check_workers(_FakeClient(None, True), DatabaseHandle(fresh))



class KilledWorker(Exception):
    """Named as Dask's: the error of a task whose workers died too often."""


class _DaskLike(cf.ThreadPoolExecutor):
    """Runs tasks on threads, recording each task's items; a task holding item 13 fails
    as Dask fails a task whose workers kept dying (KilledWorker)."""

    def __init__(self):
        super().__init__(2)
        self.tasks: list[list[int]] = []

    def submit(self, fn, items):
        self.tasks.append(list(items))
        if 13 in items:
            fut: cf.Future = cf.Future()
            fut.set_exception(KilledWorker(f"task with {items}"))
            return fut
        return super().submit(fn, items)


def test_frames_share_tasks_and_a_killed_chunk_is_retried_item_by_item():
    with _DaskLike() as ex:
        got = dict(iter_tasks(lambda x: x * 10, range(100), executor=ex,
                              lost=lambda x, reason: f"lost {x}"))
    assert got.pop(13) == "lost 13"
    assert got == {x: x * 10 for x in range(100) if x != 13}  # every other item once
    first = [t for t in ex.tasks if 13 in t]
    assert len(first[0]) > 1 and first[1:] == [[13]]  # its chunk, then 13 alone
    retried = [t for t in ex.tasks if len(t) == 1 and t[0] in first[0]]
    assert sorted(t[0] for t in retried) == sorted(first[0])  # the chunk's items one by one
    # the queue: consecutive items, 8 a task while it is long, single items at its end
    chunks = [t for t in ex.tasks if t not in retried]
    assert all(t == list(range(t[0], t[0] + len(t))) for t in chunks)
    sizes = [len(t) for t in chunks]
    assert sizes[0] == MAX_CHUNK and sizes[-1] == 1 and sizes == sorted(sizes, reverse=True)


def test_a_section_keeps_the_whole_images_optical_centre(batch_db, hip_catalog, tmp_path):
    """The top-right 800x600 px of a 1600x1200 px, 30 deg lens with barrel distortion, its
    optical axis at the frame's centre, from a FITS file and from an array: the optical
    centre stays the whole image's, without a camera model and with the whole image's
    (which the section's solve took as it was: refused for its size). About the section's
    own centre the WCS was 304-323" off at worst over three such fields (75-79" median);
    now 0.8-2.1" (the camera's: 0.4-1.8"; the pixels are 67")."""
    from skysolve import CameraModel
    from skysolve.geometry import angle_between, radec_to_vector
    from skysolve.tests.lensframes import barrel_lens_frame

    path = tmp_path / "lens.fits"
    cam, R, image = barrel_lens_frame(hip_catalog, path)
    x0, y0, w, h = 800, 0, 800, 600
    cols, rows = np.meshgrid(np.linspace(0, w, 9), np.linspace(0, h, 7))
    truth = radec_to_vector(*cam.pixel_to_world(cols + x0 - 800, rows + y0 - 600, R))
    solve = dict(section="[0:600, 800:1600]", jobs=1, progress=False, fov_estimate_deg=15.0,
                 fov_max_error_deg=3.0, solve_timeout_ms=None)
    for camera in (None, cam):
        for r in solve_many([path, image], batch_db, camera_model=camera, **solve):
            assert r and r.image_shape == (h, w), r.error
            got = radec_to_vector(*r.result.pixel_to_world(cols - w / 2, rows - h / 2))
            assert np.max(angle_between(got, truth)) * 180 / np.pi * 3600 < 10.0
    # a camera of the section (as skysolve calibrate --section wrote them) is taken as such
    with pytest.warns(UserWarning, match="taken for a camera of the section"):
        r = solve_many([image], batch_db, camera_model=cam.cropped(x0, y0, w, h), **solve)[0]
    got = radec_to_vector(*r.result.pixel_to_world(cols - w / 2, rows - h / 2))
    assert np.max(angle_between(got, truth)) * 180 / np.pi * 3600 < 10.0
    other = CameraModel.from_fov(30.0, 1024, 768)
    bad = solve_many([path], batch_db, camera_model=other, **solve)[0]
    assert bad.status == "error" and "describes the whole image" in bad.error


def test_a_section_of_a_fits_file_without_an_image_says_why(batch_db, tmp_path):
    """With a section, a FITS file holding a table (or a 1-D array) and no image fails as
    it does without one, saying why. Its header was taken for an image's: "KeyError:
    Keyword 'NAXIS2' not found", and the table of ``hdu=1`` (8-byte rows) was 'an image
    of 8 columns' that the section overran."""
    from astropy.io import fits

    table, line = tmp_path / "table.fits", tmp_path / "line.fits"
    fits.HDUList([fits.PrimaryHDU(),
                  fits.BinTableHDU(Table({"a": np.arange(50.0)}))]).writeto(table)
    fits.PrimaryHDU(np.arange(100.0)).writeto(line)
    for path, hdu, why in ((table, None, "holds no HDU with image data"),
                           (table, 1, "holds a BinTableHDU, not image data"),
                           (line, None, "not a 2-D image")):
        r = solve_many([path], batch_db, hdu=hdu, section="[0:10, 0:10]", jobs=1,
                       progress=False)[0]
        assert r.status == "error" and why in r.error, r.error


@pytest.mark.parametrize("kw, error, words", [
    ({"on_result": 5}, InvalidTypeError, "on_result"),
    ({"results": 5}, InvalidTypeError, "results"),
    ({"progress": "no"}, InvalidTypeError, "progress"),
    ({"section": "abc"}, InvalidArgumentError, "section"),
    ({"hdu": 1.5}, InvalidTypeError, "hdu"),
])
def test_batch_arguments_are_checked_before_any_frame_runs(batch_db, batch_frames, kw, error,
                                                           words):
    """A bad ``on_result``, ``results``, ``progress``, ``section`` or ``hdu`` is an error naming it,
    before a frame is read (``on_result=5`` ended the batch with "'int' object is not
    callable" after its first frame; ``section='abc'`` was every frame's failed row;
    ``progress='no'`` drew the bar)."""
    ran = []
    task_frames = [batch_frames.sources[0]]
    with pytest.raises(error, match=words):
        solve_many(task_frames, batch_db, jobs=1, **kw,
                   **({} if "on_result" in kw else {"on_result": lambda i, fr: ran.append(i)}))
    assert ran == []


def test_a_results_table_whose_folder_cannot_be_made_is_refused_before_any_frame(
        batch_db, batch_frames, tmp_path, monkeypatch):
    """``results`` under a path that is a file: an error naming the results table before
    any frame is read (it was "[Errno 17] File exists" from the first rewrite, once the
    first frame's work was done)."""
    import importlib

    module = importlib.import_module("skysolve.batch.solve_many")  # (the module)
    read = []
    monkeypatch.setattr(module, "process_frame", lambda *a, **k: (
        read.append(a), (module.FrameResult(None, "no_match"), None, None))[1])
    (tmp_path / "night").write_text("a file, not a folder")
    with pytest.raises(InvalidArgumentError, match="results table .*night"):
        solve_many(batch_frames.sources[:2], batch_db, jobs=1,
                   results=tmp_path / "night" / "r.ecsv")
    assert read == []


def test_a_source_of_no_frame_type_is_one_failed_frame_on_workers_too(batch_db, batch_frames,
                                                                       tmp_path):
    """An open file (or None) among the sources is one failed frame whether the batch runs
    here or on worker processes: with jobs=2 the whole batch failed with "cannot pickle
    '_io.BufferedReader' object" (serially it was already one failed row)."""
    seen = []
    with open(batch_frames.folder / "frame_003.fits", "rb") as handle:
        sources = [batch_frames.sources[0], handle, None, batch_frames.sources[3]]
        got = {jobs: solve_many(sources, batch_db, jobs=jobs, progress=False,
                                results=tmp_path / f"r{jobs}.ecsv",
                                on_result=lambda i, fr: seen.append((i, fr.source)), **SOLVE)
               for jobs in (1, 2)}
        for jobs, out in got.items():
            assert [r.status for r in out] == ["match_found", "error", "error",
                                               "match_found"], jobs
            assert [r.source for r in out] == sources
            assert "BufferedReader" in out[1].error and "NoneType" in out[2].error
        assert seen == [(i, s) for i, s in enumerate(sources)] * 2


def test_path_frames_reach_the_workers_absolute(tmp_path, monkeypatch):
    # a Dask worker runs in its own directory (and a notebook may change its own after
    # starting a cluster): relative paths failed there as "no such image file"
    from skysolve.batch import DatabaseHandle, FrameResult, run_frames

    monkeypatch.chdir(tmp_path)
    seen = []

    def task(source):
        seen.append(source)
        return FrameResult(None, "error", error="stand-in")

    out = run_frames(task, ["a.fits", Path("sub") / "b.fits", np.zeros((3, 2))],
                     database=DatabaseHandle(None), progress=False)
    assert seen[:2] == [str(tmp_path / "a.fits"), str(tmp_path / "sub" / "b.fits")]
    assert [r.source for r in out][:2] == ["a.fits", Path("sub") / "b.fits"]  # as given


def test_two_runs_cannot_share_one_results_table(tmp_path):
    # two runs given one table each rewrote it from their own rows: the last writer's
    # replaced the other's, silently (two 20-frame runs left 20 rows)
    from skysolve.batch import ResultsTable
    from skysolve.errors import InvalidArgumentError

    path = tmp_path / "night.ecsv"
    first = ResultsTable(path)
    with pytest.raises(InvalidArgumentError, match="in use by another run"):
        ResultsTable(path, overwrite=True)
    first.close()
    assert not (tmp_path / "night.ecsv.lock").exists()
    ResultsTable(path, resume=True).close()  # free again once the first is done
    # and across processes: a second process is refused while this one holds it
    held = ResultsTable(path, resume=True)
    proc = subprocess.run([sys.executable, "-c", "import sys; from skysolve.batch import "
                           "ResultsTable; ResultsTable(sys.argv[1], resume=True)", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "in use by another run" in proc.stderr
    held.close()
