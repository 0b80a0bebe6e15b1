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
    table.close()

    from astropy.table import Table

    t = Table.read(path, format="ascii.ecsv")
    assert sorted(t["index"]) == list(range(len(NAMES)))
    assert list(t["source"])[1] == "two\\nlines.fits"  # (the spelling given, on one line)
    resumed = ResultsTable(path, resume=True)
    for i, key in enumerate(source_keys(NAMES)):
        row = resumed.rows[key]
        assert row["index"] == i
        assert (resumed.done(*key) is not None) == bool(i % 2)


def test_a_table_without_the_path_column_resumes_relative_paths(tmp_path, monkeypatch):
    """A table written before the path column, of a run given relative paths: resumed
    from the same directory, its files are done (they were all solved again, each with a
    second row), and an array frame's ``frame N`` row is still that frame's."""
    from astropy.table import Table

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.fits").touch()
    path = tmp_path / "old.ecsv"
    table = ResultsTable(path, overwrite=True)
    sources = ["a.fits", object()]  # a file given relative, and an array frame
    for i, (source, key) in enumerate(zip(sources, source_keys(sources), strict=True)):
        table.add(FrameResult(source, "no_match", None).row(i), key[1])
    table.close()
    old = Table.read(path, format="ascii.ecsv")
    old.remove_column("path")
    old.write(path, format="ascii.ecsv", overwrite=True)

    resumed = ResultsTable(path, resume=True)
    for key in source_keys(["./a.fits", None]):
        assert resumed.done(*key) is not None, key
    assert len(resumed.rows) == 2
