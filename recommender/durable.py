"""File-system primitives every writer of artifacts, exports and secrets shares.

A rename is only durable once its directory is synced, and two processes
(a nightly job, an erasure, a retrain) must not rewrite the same files at
once. Secrets and files with personal data go into a private folder beside the
database that says it must never be committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from recommender.errors import ValidationError


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


PRIVATE_SUFFIX = ".private"
PRIVATE_IGNORE = "# Secrets and personal data of the recommender (keys, campaign exports): never commit.\n*\n"


def private_folder(path: str | Path) -> Path:
    """Make ``path`` (owner-only) with a ``.gitignore`` that ignores everything in it; returns it.

    Running the engine from a repository checkout (as the quick start does) must
    not leave a key or a file of e-mail addresses ready for ``git add``.
    """
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text(PRIVATE_IGNORE, encoding="utf-8")
    return path


def private_folder_of(db_path: str | Path) -> Path:
    """The private folder that belongs to the database ``db_path`` (``shop.db`` -> ``shop.db.private/``)."""
    db_path = Path(os.path.abspath(db_path))
    return db_path.with_name(db_path.name + PRIVATE_SUFFIX)


@contextlib.contextmanager
def new_private_file(path: Path, *, force: bool = False) -> Iterator[TextIO]:
    """Write the text file ``path`` owner-only, all or nothing; without ``force`` never replace one.

    Campaign and customer-value exports hold names, e-mails and profiles: the file is
    written under a temporary name (mode 0600), synced, then linked into place, so
    nobody sees half of it and a file that appeared meanwhile is never clobbered.
    """
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "x", newline="", encoding="utf-8") as fh:
            os.chmod(tmp, 0o600)
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never clobber
            tmp.unlink()
    except FileExistsError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ValidationError(
            f"export {path} already exists; choose a new name or pass --force to replace it"
        ) from None
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
