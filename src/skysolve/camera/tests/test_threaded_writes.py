"""Threads writing one output path never share a temporary file."""
from __future__ import annotations

import threading

from skysolve.camera.model import CameraModel
from skysolve.io.astrometry_files import write_solved


def _race(tmp_path, write, values):
    path = tmp_path / "out"
    errors = []

    def run(value):
        for _ in range(200):
            try:
                write(path, value)
            except OSError as exc:  # pragma: no cover - the defect
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(v,)) for v in values]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return path, errors


def test_threads_saving_cameras_to_one_path(tmp_path):
    """Camera files and solve-field's .solved were written through a temporary file named
    by the process alone: two threads writing one path shared it, and one's rename found
    it gone (FileNotFoundError) or took the other's half-written bytes."""
    cams = [CameraModel.from_fov(fov, 1024, 768) for fov in (10.0, 20.0)]
    path, errors = _race(tmp_path, lambda p, cam: cam.save_to_file(p.with_suffix(".json")),
                         cams)
    assert errors == []
    assert CameraModel.load_from_file(path.with_suffix(".json")) in cams
    path, errors = _race(tmp_path, lambda p, n: write_solved(p, n), (1, 3))
    assert errors == []
    assert path.read_bytes() in (b"\x01", b"\x00\x00\x01")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.json"]
