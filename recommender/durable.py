"""Two file-system primitives every writer of artifacts and exports shares.

A rename is only durable once its directory is synced, and two processes
(a nightly job, an erasure, a retrain) must not rewrite the same files at
once. Both used to be written out in three modules; they live here once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (the renames into it) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, mode: int = 0o600) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (made with ``mode`` if missing) for the block; waits for others."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
