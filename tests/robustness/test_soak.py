"""The soak runner itself: reproducible frames, honest counts, a JSON summary."""

from __future__ import annotations

import json

import numpy as np

from robustness import soak


def test_frames_are_reproducible_and_of_every_kind(hip_catalog):
    kinds = set()
    for i in range(60):
        a = soak.frame(hip_catalog, 5, i, 10.0, 20.0)
        b = soak.frame(hip_catalog, 5, i, 10.0, 20.0)
        assert a["kind"] == b["kind"] and np.array_equal(a["centroids"], b["centroids"])
        assert a["solve_kwargs"] == b["solve_kwargs"]
        kinds.add(a["kind"])
        xy = a["centroids"][:, :2]
        assert np.all(np.abs(xy) <= 512.0)
        if a["kind"] in ("noise", "noise_timeout", "empty"):
            assert a["rotation"] is None
        else:
            assert 10.0 <= a["fov_deg"] <= 20.0
    assert {"stars", "mirrored", "noise", "empty"} <= kinds
    assert soak.frame(hip_catalog, 6, 0, 10.0, 20.0)["centroids"].tobytes() != soak.frame(
        hip_catalog, 5, 0, 10.0, 20.0)["centroids"].tobytes()


def test_attitude_error_metric():
    R = np.eye(3)
    assert soak._attitude_error_px(R, R, 10.0, 1024, 1024) == 0.0
    c, s = np.cos(np.radians(0.01)), np.sin(np.radians(0.01))
    roll = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    # a 0.01 deg roll moves a corner of a 1024x1024 image by about 724 px * 1.75e-4 = 0.13 px
    assert 0.10 < soak._attitude_error_px(roll, R, 10.0, 1024, 1024) < 0.15


def test_small_soak_run(small_db, tmp_path, capsys):
    path = tmp_path / "db.bin"
    small_db.save_to_file(path)
    out = tmp_path / "soak.json"
    rc = soak.main(["--frames", "60", "--seed", "3", "--jobs", "1", "--chunk", "20",
                    "--db", str(path), "--output", str(out), "--no-progress"])
    s = json.loads(out.read_text())
    assert rc == 0 and s["wrong"] == 0
    assert s["right"] + s["wrong"] + s["failed"] == 60 == s["frames"]
    assert sum(d["frames"] for d in s["by_kind"].values()) == 60
    assert s["right"] > 20
    assert s["false_positive_rate_upper95"] > 0.0
    printed = capsys.readouterr().out
    assert "false-positive rate: 0/60" in printed and "solved right" in printed
