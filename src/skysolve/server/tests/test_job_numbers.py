"""Job numbers the store cannot hold are unknown jobs."""

from __future__ import annotations

from .test_queue import _offline_app


def test_a_job_number_beyond_sqlite_integers_is_404_not_500(tmp_path):
    client = _offline_app(tmp_path)
    for path in ("/api/jobs/99999999999999999999999", "/api/submissions/9223372036854775808",
                 "/wcs_file/99999999999999999999999"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json()["status"] == "error"
