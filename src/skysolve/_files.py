"""Files written whole or not at all: a temporary file beside the target, then a rename.

An interrupted run (Ctrl-C, a killed process, a full disk) must never leave a
half-written output where a reader would take it for a whole one. Writers
write to a temporary name in the target's directory and rename it over the
target when done; the rename is atomic on POSIX and Windows file systems.

May import: nothing of skysolve.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_text_atomic", "lock_unsupported"]

#: ``flock`` errors of a file system that holds no locks (NFS without a lock daemon,
#: Lustre mounted without ``flock``, some FUSE file systems), not of a lock held.
_NO_LOCKING = frozenset({errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write; renamed to ``path`` when the block ends without error.

    The temporary file (``.NAME.PID.THREAD.tmp`` beside ``path``) is removed if the
    block fails; ``path`` then keeps its old content, if any.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)


def lock_unsupported(exc: OSError) -> bool:
    """Whether ``fcntl.flock``'s error ``exc`` says the file system cannot lock at all.

    Such a file system still renames atomically: writers of :func:`atomic_path` (and of
    the database files) go on without the lock, at worst doing some work twice, where
    the error had been taken for an unusable directory.
    """
    return exc.errno in _NO_LOCKING
