"""The results table keeps one row per frame whatever the frame's file name."""

from __future__ import annotations

from skysolve.batch.results import FrameResult, ResultsTable, source_keys

NAMES = ["plain.fits", "two\nlines.fits", "lat\udce9n1.fits", 'q"uote.fits', "last.fits"]


def test_odd_file_names_keep_one_row_each_and_resume(tmp_path):
    path = tmp_path / "t.ecsv"
    table = ResultsTable(path)
    for i, name in enumerate(NAMES):
        fr = FrameResult(name, "no_match" if i % 2 else "error",
                         error=None if i % 2 else f"no such image file: {name}")
        table.add(fr.row(i))
        table.flush(force=True)  # one row at a time, as frames finish
    table.flush(force=True)

    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    assert sorted(t["index"]) == list(range(len(NAMES)))
    assert list(t["source"])[1] == "two\\nlines.fits"  # (the spelling given, on one line)
    resumed = ResultsTable(path, resume=True)
    for i, key in enumerate(source_keys(NAMES)):
        row = resumed.rows[key]
        assert row["index"] == i
        assert (resumed.done(*key) is not None) == bool(i % 2)
