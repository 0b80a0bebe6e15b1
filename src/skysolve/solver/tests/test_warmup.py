"""The warm-up's lock: one compile at a time, and none refused where nothing can lock."""

from __future__ import annotations

import errno
import sys

import pytest

from skysolve.solver import warmup

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fcntl.flock is POSIX's")


def test_a_file_system_without_locks_compiles_unlocked(monkeypatch, tmp_path):
    """A cache on NFS or Lustre (flock: ENOLCK, ENOSYS, EOPNOTSUPP or EINVAL) crashed the
    warm-up with that OSError, so the kernels never compiled in the background; it now
    goes on without the lock (numba's cache and the marker are written by renames)."""
    import fcntl

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    for code in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
        def no_locks(fd, operation, code=code):
            raise OSError(code, "no locks here")

        monkeypatch.setattr(fcntl, "flock", no_locks)
        for wait in (False, True):
            with warmup._lock(wait) as held:
                assert held


def test_a_compile_under_way_is_left_to_its_process(monkeypatch, tmp_path):
    """The lock still does its work where there is one: held elsewhere, the background
    warm-up leaves; another error of the lock is no "no locks here"."""
    import fcntl
    import os

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    fd = os.open(tmp_path / "kernels-warm.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # (another open file: flock's locks are per open)
        with warmup._lock(wait=False) as held:
            assert not held
    finally:
        os.close(fd)

    def bad(fd, operation):
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", bad)
    with pytest.raises(OSError, match="Bad file"), warmup._lock(wait=False):
        pass
