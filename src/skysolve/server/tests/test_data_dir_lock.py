"""The data directory's lock: a second server refused, none where nothing can lock."""

from __future__ import annotations

import errno
import sys

import pytest

from skysolve.server.store import DataDirInUse, exclusive

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fcntl.flock is POSIX's")


def test_a_data_dir_held_by_another_server_is_refused(tmp_path):
    import fcntl

    with open(tmp_path / "server.lock", "a+") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # (another open file: flock's locks are per open)
        with pytest.raises(DataDirInUse, match="in use"), exclusive(tmp_path):
            pass
    with exclusive(tmp_path):  # released: free again
        pass


def test_a_data_dir_that_cannot_be_locked_serves_with_a_warning(monkeypatch, tmp_path):
    """On NFS or Lustre (flock: ENOLCK, ...) every ``skysolve serve`` was refused as
    "in use by another skysolve serve", though none ran. It now starts, with a warning
    that a second server would not be noticed."""
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = False
    with pytest.warns(RuntimeWarning, match="cannot be locked"), exclusive(tmp_path):
        ran = True
    assert ran
