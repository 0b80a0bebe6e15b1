"""The documentation's doctests (pytest collects ``docs/*.rst``): a small database and the
real frames' folder are in every page's namespace, so that examples run in seconds."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _doc_namespace(doctest_namespace, small_db, tmp_path, monkeypatch):
    from skysolve.tests.realframes import DATA

    monkeypatch.chdir(tmp_path)
    doctest_namespace["db"] = small_db
    doctest_namespace["DATA"] = DATA
