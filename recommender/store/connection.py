"""Opening a database of ours (and refusing anything else), migrations, transactions."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

import sqlite_utils

from recommender.errors import ConfigError, DatabaseError
from recommender.store.schema import MIGRATIONS, SCHEMA_VERSION, TABLES


def utcnow() -> str:
    """Current time as ISO 8601 UTC text, the format of every text timestamp."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_database(path: str | Path) -> Path:
    """Refuse a path that is not an existing database of this engine, with one line that says why.

    A typo in ``--db`` must not quietly become an empty shop that serves empty
    lists, and a CSV given by mistake must not be turned into a database.
    """
    path = Path(path)
    hint = "run `recommender init` to create one"
    if not path.exists():
        raise DatabaseError(f"database {path} does not exist ({hint})")
    if path.is_dir():
        raise DatabaseError(f"database {path} is a folder, not a file")
    head = _read_header(path)
    if head != SQLITE_MAGIC:
        what = "an empty file" if not head else "not an SQLite database"
        raise DatabaseError(f"{path} is {what}, not a recommender database ({hint})")
    return path


def _read_header(path: Path) -> bytes:
    """The file's first bytes, read without ever closing a descriptor of the database in this process.

    POSIX drops every lock a process holds on a file when it closes any descriptor of
    that file. A plain open()/close() here, in a process that already has a connection
    to the same database (a server worker opening its second connection), would silently
    release that connection's locks: other processes then reset the WAL under it, it
    reads stale data, and writes corrupt the file. SQLite's own open is lock-aware, so
    the header is read through a throwaway read-only connection instead.
    """
    try:
        if path.stat().st_size == 0:
            return b""
    except OSError as exc:
        raise DatabaseError(f"database {path} cannot be read ({exc.strerror or exc})") from None
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        probe = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            probe.execute("PRAGMA schema_version").fetchone()
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc) or "malformed" in str(exc):
            return b"?"
        raise DatabaseError(f"database {path} cannot be read ({exc})") from None
    return SQLITE_MAGIC


def _create_private(path: Path) -> None:
    """Create an empty database file readable by its owner only (it holds PII and key hashes).

    SQLite gives the ``-wal`` and ``-shm`` files the permissions of the database.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path} ({exc.strerror or exc})") from None
    os.close(fd)


def connect(
    path: str | Path, *, create: bool = False, migrate: bool = True, target_version: int | None = None
) -> sqlite_utils.Database:
    """Open the database, set the pragmas and bring the schema up to date.

    Only ``create=True`` (``recommender init``) may make a new file; every other
    caller gets :class:`~recommender.errors.DatabaseError` for a path that does
    not exist or is not one of ours.
    """
    path = Path(path)
    if create and (not path.exists() or path.stat().st_size == 0):
        _create_private(path)
        fresh = True
    else:
        check_database(path)
        fresh = False
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted rows are overwritten with zeros, not left in free pages: an erasure must
        # not survive in the file's bytes. Debian's SQLite defaults to this; others do not.
        conn.execute("PRAGMA secure_delete = ON")
        db = sqlite_utils.Database(conn)
        if not fresh and not db["schema_version"].exists():
            conn.close()
            raise DatabaseError(
                f"{path} is an SQLite database but not a recommender database (no schema_version table)"
            )
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path} cannot be opened as a recommender database ({exc})") from None
    if migrate:
        migrate_schema(db, target_version)
    return db


def schema_version(db: sqlite_utils.Database) -> int:
    if not db["schema_version"].exists():
        return 0
    row = db.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate_schema(db: sqlite_utils.Database, target_version: int | None = None) -> int:
    """Apply the forward migrations this database lacks, each in its own transaction."""
    target = SCHEMA_VERSION if target_version is None else target_version
    with transaction(db):
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)")
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        raise ConfigError(
            f"database schema version {current} is newer than this engine ({SCHEMA_VERSION}); upgrade the engine"
        )
    for version in range(current + 1, target + 1):
        with transaction(db):
            for statement in MIGRATIONS[version - 1]:
                db.execute(statement)
            db.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
    return schema_version(db)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One all-or-nothing unit of work; nests as a savepoint."""
    conn = db.conn
    if conn.in_transaction:
        name = f"sp_{id(object())}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def read_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One read snapshot for a long read (an export): ``BEGIN`` (deferred, no write lock), then ``COMMIT``.

    Everything read inside sees one state of the database, so watermarks taken
    at the start match the rows read after them. Not nestable: it is for a
    caller that owns the connection.
    """
    db.execute("BEGIN")
    try:
        yield db
    finally:
        db.execute("COMMIT")


@contextlib.contextmanager
def read_savepoint(db: sqlite_utils.Database, name: str) -> Iterator[sqlite_utils.Database]:
    """One read snapshot that nests: a ``SAVEPOINT`` released at the end.

    Used where the caller may already be inside a transaction (a worker's
    catalogue refresh during a request): the reads join it. When there was
    none, the snapshot the savepoint opened is committed at the end, so the
    connection does not keep an old snapshot (and the WAL) alive.
    """
    outer = db.conn.in_transaction
    db.conn.execute(f"SAVEPOINT {name}")
    try:
        yield db
    finally:
        db.conn.execute(f"RELEASE {name}")
        if not outer and db.conn.in_transaction:
            db.conn.commit()


def ping(db: sqlite_utils.Database) -> None:
    """Run the cheapest statement there is: raises when the database cannot answer (readiness probes)."""
    db.execute("SELECT 1").fetchone()


def wal_checkpoint(db: sqlite_utils.Database) -> tuple[int, int, int]:
    """``PRAGMA wal_checkpoint(TRUNCATE)``: fold the WAL into the database and truncate it.

    Returns SQLite's ``(busy, log pages, checkpointed pages)``; busy = 1 when a
    reader's snapshot kept it from finishing. The WAL keeps old page images
    (erased rows included) until this runs, hence erasure and the nightly
    maintenance call it.
    """
    busy, log_pages, moved = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy, log_pages, moved


def vacuum(db: sqlite_utils.Database) -> None:
    """Rewrite every page of the file (``VACUUM``): after an erasure, no stale cell of the customer survives
    in free space. Takes the whole database; must not run inside a transaction."""
    db.execute("VACUUM")


def database_path(db: sqlite_utils.Database) -> str:
    return db.execute("PRAGMA database_list").fetchone()[2]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {t: db[t].count for t in TABLES if db[t].exists()}


def customers_created(db: sqlite_utils.Database) -> dict[str, str]:
    """Every customer's id and ``created_at``."""
    return dict(db.execute("SELECT id, created_at FROM customers").fetchall())


def existing_ids(db: sqlite_utils.Database, table: str) -> set[str]:
    if table not in ("customers", "products"):
        raise ValueError(table)
    return {row[0] for row in db.execute(f"SELECT id FROM {table}")}


def _changes(db: sqlite_utils.Database) -> int:
    return db.conn.total_changes


def _json_ids(ids: Sequence[str]) -> str:
    return json.dumps(list(ids))
