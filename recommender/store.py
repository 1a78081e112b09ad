"""SQLite schema, connections and queries: the only module that writes SQL.

The database is a plain file so a shop can run the engine with nothing else
installed. WAL lets the API read while a retrain or an import writes; foreign
keys and CHECK constraints keep bad rows out even when a caller forgets to
validate. Every public write runs inside :func:`transaction`, so a failure
rolls back completely.

Times: ``interactions.occurred_at`` is Unix seconds (UTC) as an INTEGER because
it is the one column read in bulk (millions of rows per retrain) and compared
numerically; every other timestamp is ISO 8601 UTC text, dates are
``YYYY-MM-DD``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import sqlite_utils

# Each migration is a list of statements; ``MIGRATIONS[i]`` brings a database
# from version i to version i + 1. Append, never edit: a database made by this
# version must open in every later one.
MIGRATIONS: list[list[str]] = [
    # 1: the data model of DESIGN.md
    [
        """CREATE TABLE customers (
            id TEXT PRIMARY KEY CHECK (length(id) > 0),
            email TEXT,
            name TEXT,
            birth_date TEXT CHECK (birth_date IS NULL OR birth_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
            anniversary_date TEXT CHECK (anniversary_date IS NULL OR anniversary_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
            timezone TEXT NOT NULL DEFAULT 'UTC',
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE products (
            id TEXT PRIMARY KEY CHECK (length(id) > 0),
            name TEXT NOT NULL,
            category TEXT,
            price REAL CHECK (price IS NULL OR price >= 0),
            in_stock INTEGER CHECK (in_stock IS NULL OR in_stock >= 0),
            hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
            available_until TEXT
        )""",
        "CREATE INDEX products_category ON products(category)",
        """CREATE TABLE interactions (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            product_id TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
            event_type TEXT NOT NULL CHECK (length(event_type) > 0),
            quantity REAL NOT NULL DEFAULT 1 CHECK (quantity > 0),
            occurred_at INTEGER NOT NULL
        )""",
        # The natural key makes re-imports idempotent and serves per-customer lookups.
        """CREATE UNIQUE INDEX interactions_natural_key
            ON interactions(customer_id, product_id, event_type, occurred_at)""",
        "CREATE INDEX interactions_product_time ON interactions(product_id, occurred_at)",
        "CREATE INDEX interactions_time ON interactions(occurred_at)",
        """CREATE TABLE consents (
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            purpose TEXT NOT NULL CHECK (length(purpose) > 0),
            granted INTEGER NOT NULL CHECK (granted IN (0, 1)),
            updated_at TEXT NOT NULL,
            source TEXT NOT NULL,
            PRIMARY KEY (customer_id, purpose)
        )""",
        "CREATE INDEX consents_purpose ON consents(purpose, granted)",
        """CREATE TABLE consent_log (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            purpose TEXT NOT NULL,
            old_granted INTEGER CHECK (old_granted IS NULL OR old_granted IN (0, 1)),
            new_granted INTEGER NOT NULL CHECK (new_granted IN (0, 1)),
            source TEXT NOT NULL,
            changed_at TEXT NOT NULL
        )""",
        "CREATE INDEX consent_log_customer ON consent_log(customer_id, id)",
        # Append-only: history may be erased with its customer, never rewritten.
        """CREATE TRIGGER consent_log_append_only BEFORE UPDATE ON consent_log
            BEGIN SELECT RAISE(ABORT, 'consent_log is append-only'); END""",
        """CREATE TABLE offers (
            id INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            occasion TEXT NOT NULL CHECK (occasion IN ('birthday', 'anniversary')),
            occasion_year INTEGER NOT NULL,
            code TEXT NOT NULL UNIQUE,
            products TEXT NOT NULL,
            discount REAL NOT NULL CHECK (discount > 0 AND discount < 100),
            valid_from TEXT NOT NULL,
            valid_until TEXT NOT NULL,
            campaign_id TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (customer_id, occasion, occasion_year),
            CHECK (valid_from <= valid_until)
        )""",
        "CREATE INDEX offers_campaign ON offers(campaign_id)",
        """CREATE TABLE models (
            version TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            engine TEXT NOT NULL DEFAULT 'implicit',
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            consent_snapshot TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('candidate', 'published', 'rejected', 'retired'))
        )""",
        # customer_id has no foreign key: unknown shoppers are served too.
        """CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            customer_id TEXT,
            created_at TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model_version TEXT,
            mode TEXT NOT NULL,
            reason TEXT,
            product_ids TEXT NOT NULL
        )""",
        "CREATE INDEX decisions_customer ON decisions(customer_id, created_at)",
        "CREATE INDEX decisions_created ON decisions(created_at)",
    ],
    # 2: access control and proof of erasure
    [
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('read', 'write', 'admin')),
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        """CREATE TABLE erasures (
            subject_hash TEXT PRIMARY KEY,
            erased_at TEXT NOT NULL
        )""",
    ],
    # 3: installation facts; the salt of erasure tombstones is made here, once, at random
    [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('erasure_salt', lower(hex(randomblob(16))))",
    ],
    # 4: two clocks for consent, an ordered log of privacy events (the data epoch that long
    #    jobs reconcile with), the copies erasure must reach, and idempotency keys of events
    [
        # When the customer decided (orders decisions) and who recorded it; changed_at stays
        # the time we recorded it. NULL decided_at in rows written before v4 = changed_at.
        "ALTER TABLE consent_log ADD COLUMN decided_at TEXT",
        "ALTER TABLE consent_log ADD COLUMN actor TEXT",
        # Every erasure and every withdrawal of a purpose, in the order recorded. A training
        # run, export or campaign notes max(id) before it reads (its data epoch) and, before it
        # publishes, reconciles with every row after it. Erasures carry only the tombstone.
        """CREATE TABLE privacy_events (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('erasure', 'withdrawal')),
            subject_hash TEXT,
            customer_id TEXT,
            purpose TEXT,
            recorded_at TEXT NOT NULL,
            CHECK ((kind = 'erasure' AND subject_hash IS NOT NULL AND customer_id IS NULL)
                OR (kind = 'withdrawal' AND customer_id IS NOT NULL AND purpose IS NOT NULL))
        )""",
        "CREATE INDEX privacy_events_customer ON privacy_events(customer_id)",
        # Files the engine wrote that hold customer data (Parquet exports, campaign files),
        # so an erasure can find and scrub them.
        """CREATE TABLE copies (
            path TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        # A client-chosen id per event: a retried POST is acknowledged, not counted twice.
        """CREATE TABLE event_keys (
            event_id TEXT PRIMARY KEY,
            interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
            received_at TEXT NOT NULL
        )""",
        "CREATE INDEX event_keys_interaction ON event_keys(interaction_id)",
    ],
    # 5: the registry keeps the history of pruned models (status 'pruned', removed_at) and
    #    what the release gate compared for each one
    [
        """CREATE TABLE models_v5 (
            version TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            engine TEXT NOT NULL DEFAULT 'implicit',
            params TEXT NOT NULL,
            metrics TEXT NOT NULL,
            consent_snapshot TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('candidate', 'published', 'rejected', 'retired', 'pruned')),
            gate TEXT NOT NULL DEFAULT '{}',
            removed_at TEXT
        )""",
        """INSERT INTO models_v5 (version, created_at, path, engine, params, metrics, consent_snapshot, status)
            SELECT version, created_at, path, engine, params, metrics, consent_snapshot, status FROM models""",
        "DROP TABLE models",
        "ALTER TABLE models_v5 RENAME TO models",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)
TABLES = (
    "customers", "products", "interactions", "consents", "consent_log",
    "offers", "models", "decisions", "api_keys", "erasures", "meta",
    "privacy_events", "copies", "event_keys",
)


def utcnow() -> str:
    """Current time as ISO 8601 UTC text, the format of every text timestamp."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_database(path: str | Path) -> Path:
    """Refuse a path that is not an existing database of this engine, with one line that says why.

    A typo in ``--db`` must not quietly become an empty shop that serves empty
    lists, and a CSV given by mistake must not be turned into a database.
    """
    from .errors import DatabaseError

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
    from .errors import DatabaseError

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
    from .errors import DatabaseError

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path} ({exc.strerror or exc})") from None
    os.close(fd)


def connect(path: str | Path, *, create: bool = False, migrate: bool = True,
            target_version: int | None = None) -> sqlite_utils.Database:
    """Open the database, set the pragmas and bring the schema up to date.

    Only ``create=True`` (``recommender init``) may make a new file; every other
    caller gets :class:`~recommender.errors.DatabaseError` for a path that does
    not exist or is not one of ours.
    """
    from .errors import DatabaseError

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
            raise DatabaseError(f"{path} is an SQLite database but not a recommender database "
                                f"(no schema_version table)")
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
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TEXT NOT NULL)"
        )
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        from .errors import ConfigError

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


def database_path(db: sqlite_utils.Database) -> str:
    return db.execute("PRAGMA database_list").fetchone()[2]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {t: db[t].count for t in TABLES if db[t].exists()}


def existing_ids(db: sqlite_utils.Database, table: str) -> set[str]:
    if table not in ("customers", "products"):
        raise ValueError(table)
    return {row[0] for row in db.execute(f"SELECT id FROM {table}")}


def _changes(db: sqlite_utils.Database) -> int:
    return db.conn.total_changes


# --- writes ------------------------------------------------------------------

CUSTOMER_COLUMNS = ("id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at")
PRODUCT_COLUMNS = ("id", "name", "category", "price", "in_stock", "hidden", "available_until")
INTERACTION_COLUMNS = ("customer_id", "product_id", "event_type", "quantity", "occurred_at")


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    cols = ", ".join(columns)
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def upsert_customers(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Insert or update customers given as tuples in ``CUSTOMER_COLUMNS`` order."""
    with transaction(db):
        db.conn.executemany(_upsert_sql("customers", CUSTOMER_COLUMNS, ("id",)), rows)


def upsert_products(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> None:
    """Insert or update products given as tuples in ``PRODUCT_COLUMNS`` order."""
    with transaction(db):
        db.conn.executemany(_upsert_sql("products", PRODUCT_COLUMNS, ("id",)), rows)


def insert_missing(db: sqlite_utils.Database, table: str, rows: Sequence[Sequence[Any]]) -> int:
    """Insert rows whose id is new, leaving existing ones untouched; returns how many were new."""
    columns = {"customers": CUSTOMER_COLUMNS, "products": PRODUCT_COLUMNS}[table]
    sql = f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with transaction(db):
        before = _changes(db)
        db.conn.executemany(sql, rows)
        return _changes(db) - before


def upsert_interactions(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> int:
    """Store events keyed by (customer, product, type, time); a repeated key replaces the quantity.

    Replacing (not adding) is what makes re-importing a file a no-op. Returns the
    number of rows that were new.
    """
    with transaction(db):
        before = db.execute("SELECT count(*) FROM interactions").fetchone()[0]
        db.conn.executemany(
            _upsert_sql("interactions", INTERACTION_COLUMNS, ("customer_id", "product_id", "event_type", "occurred_at")),
            rows,
        )
        return db.execute("SELECT count(*) FROM interactions").fetchone()[0] - before


def add_interactions(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> list[int]:
    """Store live events; a repeat of the same key within one second adds to its quantity."""
    sql = (
        "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id, product_id, event_type, occurred_at) "
        "DO UPDATE SET quantity = quantity + excluded.quantity RETURNING id"
    )
    with transaction(db):
        return [db.execute(sql, list(r)).fetchone()[0] for r in rows]


def add_keyed_interactions(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]],
                           event_ids: Sequence[str | None]) -> int:
    """Store live events that may carry a client ``event_id``; returns how many were stored.

    An id already in ``event_keys``, or seen earlier in ``rows``, is skipped
    (the client is retrying). The check and the inserts share one
    ``BEGIN IMMEDIATE`` transaction, so two workers given the same retry
    cannot both store it, and a failure leaves neither the event nor its id.
    """
    sql = (
        "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (customer_id, product_id, event_type, occurred_at) "
        "DO UPDATE SET quantity = quantity + excluded.quantity RETURNING id"
    )
    wanted = [e for e in dict.fromkeys(event_ids) if e is not None]
    stored = 0
    with transaction(db):
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            known.update(r[0] for r in db.execute(
                f"SELECT event_id FROM event_keys WHERE event_id IN ({','.join('?' * len(chunk))})", chunk))
        received = utcnow()
        for row, event_id in zip(rows, event_ids):
            if event_id is not None and event_id in known:
                continue
            interaction_id = db.execute(sql, list(row)).fetchone()[0]
            if event_id is not None:
                db.execute("INSERT INTO event_keys (event_id, interaction_id, received_at) VALUES (?, ?, ?)",
                           [event_id, interaction_id, received])
                known.add(event_id)
            stored += 1
    return stored


def set_consents(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> int:
    """Record consent decisions; returns the number of changes (see :func:`apply_consents`)."""
    return apply_consents(db, rows)["changed"]


def apply_consents(db: sqlite_utils.Database, rows: Iterable[Sequence[Any]]) -> dict[str, int]:
    """The one door of consent: decisions ``(customer_id, purpose, granted, decided_at, source[, actor])``.

    Last writer wins by the time the customer *decided* (``decided_at``, ISO UTC
    text), not by the order rows arrive: a decision older than the current
    state's (``consents.updated_at``) is skipped, and counted as ``stale`` when
    it disagrees with that state. A tie goes to the later arrival, so two
    changes made within one second apply in order. A decision that repeats the
    current state changes nothing and logs nothing (re-importing a file is
    harmless). Repeats are asymmetric on purpose, so that doubt always falls on
    the side that uses less data: a newer repeat of "not granted" moves the
    state's decided time forward (an older grant arriving late stays stale),
    while a repeat of "granted" does not (an older withdrawal arriving late
    still applies). Every real change is appended to
    ``consent_log`` with both clocks (``decided_at``; ``changed_at`` = now, when
    it was recorded) and its actor; every withdrawal (granted -> not granted)
    also adds a ``privacy_events`` row in the same transaction, for the long
    jobs that reconcile with withdrawals. Returns ``{changed, stale, withdrawals}``.
    """
    rows = list(rows)
    now = utcnow()
    stale = 0
    with transaction(db):
        if len(rows) > 64:
            current = {(c, p): (g, t) for c, p, g, t in
                       db.execute("SELECT customer_id, purpose, granted, updated_at FROM consents")}
        else:
            current = {}
            for customer_id, purpose, *_ in rows:
                row = db.execute("SELECT granted, updated_at FROM consents WHERE customer_id = ? AND purpose = ?",
                                 [customer_id, purpose]).fetchone()
                if row is not None:
                    current[customer_id, purpose] = (row[0], row[1])
        changes, confirmed, withdrawals = [], [], []
        for row in rows:
            customer_id, purpose, granted, decided_at, source = row[:5]
            actor = row[5] if len(row) > 5 else None
            new = int(bool(granted))
            state = current.get((customer_id, purpose))
            if state is not None and decided_at < state[1]:
                stale += state[0] != new
                continue
            if state is not None and state[0] == new:
                if new == 0 and decided_at > state[1]:
                    current[customer_id, purpose] = (new, decided_at)
                    confirmed.append((decided_at, source, customer_id, purpose))
                continue
            old = None if state is None else state[0]
            current[customer_id, purpose] = (new, decided_at)
            changes.append((customer_id, purpose, old, new, source, now, decided_at, actor))
            if old == 1 and new == 0:
                withdrawals.append((customer_id, purpose, now))
        db.conn.executemany(
            "INSERT INTO consents (customer_id, purpose, granted, updated_at, source) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (customer_id, purpose) DO UPDATE SET granted = excluded.granted, "
            "updated_at = excluded.updated_at, source = excluded.source",
            [(c, p, n, t, s) for c, p, _, n, s, _, t, _ in changes],
        )
        db.conn.executemany("UPDATE consents SET updated_at = ?, source = ? WHERE customer_id = ? AND purpose = ?",
                            confirmed)
        db.conn.executemany(
            "INSERT INTO consent_log (customer_id, purpose, old_granted, new_granted, source, changed_at, "
            "decided_at, actor) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            changes,
        )
        db.conn.executemany(
            "INSERT INTO privacy_events (kind, customer_id, purpose, recorded_at) VALUES ('withdrawal', ?, ?, ?)",
            withdrawals)
    return {"changed": len(changes), "stale": stale, "withdrawals": len(withdrawals)}


# --- reads -------------------------------------------------------------------


def consenting_customers(db: sqlite_utils.Database, purpose: str) -> list[str]:
    """Ids of customers whose consent for ``purpose`` is granted (absent = not granted)."""
    return [
        r[0]
        for r in db.execute(
            "SELECT customer_id FROM consents WHERE purpose = ? AND granted = 1 ORDER BY customer_id", [purpose]
        )
    ]


def has_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> bool:
    row = db.execute(
        "SELECT granted FROM consents WHERE customer_id = ? AND purpose = ?", [customer_id, purpose]
    ).fetchone()
    return bool(row and row[0])


def unrecommendable_products(db: sqlite_utils.Database, today: str) -> set[str]:
    """Products that must never be shown: hidden, or past their ``available_until`` date."""
    return {
        r[0]
        for r in db.execute(
            "SELECT id FROM products WHERE hidden = 1 OR (available_until IS NOT NULL AND available_until < ?)",
            [today],
        )
    }


def customer_events(db: sqlite_utils.Database, customer_id: str) -> list[tuple[str, str, float, int]]:
    """``(product_id, event_type, quantity, occurred_at)`` of one customer, oldest first."""
    return db.execute(
        "SELECT product_id, event_type, quantity, occurred_at FROM interactions "
        "WHERE customer_id = ? ORDER BY occurred_at",
        [customer_id],
    ).fetchall()


def all_products(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, name, category, price, in_stock, hidden, available_until FROM products"))


def customer_consent(db: sqlite_utils.Database, customer_id: str, purpose: str) -> tuple[bool, bool]:
    """``(customer exists, purpose granted)`` in one query."""
    row = db.execute(
        "SELECT c.id, k.granted FROM customers c LEFT JOIN consents k "
        "ON k.customer_id = c.id AND k.purpose = ? WHERE c.id = ?",
        [purpose, customer_id],
    ).fetchone()
    if row is None:
        return False, False
    return True, bool(row[1])


def existing_of(db: sqlite_utils.Database, table: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` exist in ``customers`` or ``products``."""
    if table not in ("customers", "products"):
        raise ValueError(table)
    found: set[str] = set()
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(r[0] for r in db.execute(f"SELECT id FROM {table} WHERE id IN ({marks})", chunk))
    return found


def popular_since(db: sqlite_utils.Database, since: int, limit: int, purpose: str = "personalization") -> list[tuple[str, int]]:
    """Products by distinct consenting customers with an event at or after ``since`` (Unix seconds)."""
    return db.execute(
        "SELECT i.product_id, count(DISTINCT i.customer_id) AS n FROM interactions i "
        "JOIN consents c ON c.customer_id = i.customer_id AND c.purpose = ? AND c.granted = 1 "
        "WHERE i.occurred_at >= ? GROUP BY i.product_id ORDER BY n DESC, i.product_id LIMIT ?",
        [purpose, since, limit],
    ).fetchall()


# --- API keys ----------------------------------------------------------------------


def insert_api_key(db: sqlite_utils.Database, name: str, key_hash: str, role: str) -> int:
    with transaction(db):
        cur = db.execute("INSERT INTO api_keys (name, key_hash, role, created_at) VALUES (?, ?, ?, ?)",
                         [name, key_hash, role, utcnow()])
        return int(cur.lastrowid)


def api_key_by_hash(db: sqlite_utils.Database, key_hash: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT id, name, key_hash, role FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
                         [key_hash]))
    return rows[0] if rows else None


def live_api_keys(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL").fetchone()[0]


def revoke_api_key(db: sqlite_utils.Database, key_id: int) -> bool:
    with transaction(db):
        cur = db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [utcnow(), key_id])
        return cur.rowcount > 0


def list_api_keys(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT id, name, role, created_at, revoked_at FROM api_keys ORDER BY id"))


# --- decision log ------------------------------------------------------------------


def insert_decisions(db: sqlite_utils.Database, rows: Sequence[tuple[str | None, str, str, str | None, str, str | None, str]]) -> None:
    """Append ``(customer_id, created_at, endpoint, model_version, mode, reason, product_ids JSON)`` rows."""
    with transaction(db):
        db.conn.executemany(
            "INSERT INTO decisions (customer_id, created_at, endpoint, model_version, mode, reason, product_ids) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


# --- privacy: access, erasure, retention -------------------------------------------


def get_customer(db: sqlite_utils.Database, customer_id: str) -> dict[str, Any] | None:
    rows = list(db.query("SELECT * FROM customers WHERE id = ?", [customer_id]))
    return rows[0] if rows else None


def customer_consents(db: sqlite_utils.Database, customer_id: str) -> list[dict[str, Any]]:
    return list(db.query("SELECT purpose, granted, updated_at, source FROM consents WHERE customer_id = ? "
                         "ORDER BY purpose", [customer_id]))


def consent_history(db: sqlite_utils.Database, customer_id: str) -> list[dict[str, Any]]:
    return list(db.query("SELECT purpose, old_granted, new_granted, source, changed_at, "
                         "coalesce(decided_at, changed_at) AS decided_at, actor FROM consent_log "
                         "WHERE customer_id = ? ORDER BY id", [customer_id]))


def customer_rows(db: sqlite_utils.Database, table: str, customer_id: str) -> list[dict[str, Any]]:
    """Every row of ``interactions``, ``offers`` or ``decisions`` about one customer."""
    if table not in ("interactions", "offers", "decisions"):
        raise ValueError(table)
    return list(db.query(f"SELECT * FROM {table} WHERE customer_id = ? ORDER BY id", [customer_id]))


def meta_value(db: sqlite_utils.Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def erase_customer(db: sqlite_utils.Database, customer_id: str, subject_hash: str, erased_at: str) -> dict[str, int]:
    """Delete everything about a customer and leave only the tombstone; one transaction."""
    deleted = {}
    with transaction(db):
        for table in ("decisions", "offers", "interactions", "consent_log", "consents"):
            deleted[table] = db.execute(f"DELETE FROM {table} WHERE customer_id = ?", [customer_id]).rowcount
        deleted["customers"] = db.execute("DELETE FROM customers WHERE id = ?", [customer_id]).rowcount
        db.execute("INSERT OR REPLACE INTO erasures (subject_hash, erased_at) VALUES (?, ?)", [subject_hash, erased_at])
        # The erasure supersedes the person's withdrawal events (which name them) and
        # is itself the event every long job reconciles with.
        db.execute("DELETE FROM privacy_events WHERE customer_id = ?", [customer_id])
        db.execute("INSERT INTO privacy_events (kind, subject_hash, recorded_at) VALUES ('erasure', ?, ?)",
                   [subject_hash, utcnow()])
    return deleted


def erasure_count(db: sqlite_utils.Database) -> int:
    return db.execute("SELECT count(*) FROM erasures").fetchone()[0]


def privacy_epoch(db: sqlite_utils.Database) -> int:
    """The id of the newest privacy event (erasure or withdrawal); 0 when there is none.

    A long job reads this before it reads data, and reconciles with every
    event after it before it publishes anything.
    """
    return int(db.execute("SELECT coalesce(max(id), 0) FROM privacy_events").fetchone()[0])


def privacy_events_since(db: sqlite_utils.Database, epoch: int) -> list[dict[str, Any]]:
    """Every privacy event with ``id > epoch``, oldest first (an indexed range scan)."""
    return list(db.query("SELECT id, kind, subject_hash, customer_id, purpose, recorded_at FROM privacy_events "
                         "WHERE id > ? ORDER BY id", [epoch]))


def consented_event_rows(db: sqlite_utils.Database, purpose: str) -> list[tuple[str, str, str, float, int]]:
    """``(customer_id, product_id, event_type, quantity, occurred_at)`` of every event of a customer
    who granted ``purpose``: the in-process read for shops small enough not to need the bulk reader."""
    return db.execute(
        "SELECT i.customer_id, i.product_id, i.event_type, CAST(i.quantity AS REAL), CAST(i.occurred_at AS INTEGER) "
        "FROM interactions i JOIN consents c ON c.customer_id = i.customer_id AND c.purpose = ? AND c.granted = 1",
        [purpose]).fetchall()


def erasure_dates(db: sqlite_utils.Database, hashes: Sequence[str]) -> dict[str, str]:
    """``{tombstone: erased_at}`` for those of ``hashes`` that are tombstones."""
    found: dict[str, str] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        found.update((r[0], r[1]) for r in db.execute(
            f"SELECT subject_hash, erased_at FROM erasures WHERE subject_hash IN ({', '.join('?' * len(chunk))})",
            chunk))
    return found


def rekey_tombstones(db: sqlite_utils.Database, rekey: Any) -> int:
    """Replace every stored tombstone ``h`` (erasures and erasure events) by ``rekey(h)``; one transaction."""
    with transaction(db):
        old = [r[0] for r in db.execute("SELECT subject_hash FROM erasures")]
        db.conn.executemany("UPDATE erasures SET subject_hash = ? WHERE subject_hash = ?",
                            [(rekey(h), h) for h in old])
        events = db.execute("SELECT id, subject_hash FROM privacy_events WHERE kind = 'erasure'").fetchall()
        db.conn.executemany("UPDATE privacy_events SET subject_hash = ? WHERE id = ?",
                            [(rekey(h), i) for i, h in events])
    return len(old)


def keyed_hashes(db: sqlite_utils.Database) -> int:
    """How many stored values were made with the tombstone key (erasures and erasure events)."""
    return int(db.execute("SELECT (SELECT count(*) FROM erasures) + "
                          "(SELECT count(*) FROM privacy_events WHERE kind = 'erasure')").fetchone()[0])


def delete_tombstone(db: sqlite_utils.Database, subject_hash: str) -> bool:
    with transaction(db):
        return db.execute("DELETE FROM erasures WHERE subject_hash = ?", [subject_hash]).rowcount > 0


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    with transaction(db):
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   [key, value])


def delete_meta(db: sqlite_utils.Database, key: str) -> None:
    with transaction(db):
        db.execute("DELETE FROM meta WHERE key = ?", [key])


def register_copy(db: sqlite_utils.Database, path: str | Path, kind: str) -> None:
    """Remember a file the engine wrote that holds customer data, so erasure can reach it."""
    with transaction(db):
        db.execute("INSERT INTO copies (path, kind, created_at) VALUES (?, ?, ?) "
                   "ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, created_at = excluded.created_at",
                   [str(Path(path).absolute()), kind, utcnow()])


def registered_copies(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every tracked copy ``{path, kind, created_at}``, oldest first."""
    return list(db.query("SELECT path, kind, created_at FROM copies ORDER BY created_at, path"))


def forget_copy(db: sqlite_utils.Database, path: str | Path) -> None:
    with transaction(db):
        db.execute("DELETE FROM copies WHERE path = ?", [str(Path(path).absolute())])


def prune_decisions(db: sqlite_utils.Database, before: str) -> int:
    with transaction(db):
        return db.execute("DELETE FROM decisions WHERE created_at < ?", [before]).rowcount


# --- offers and campaigns ---------------------------------------------------------
# Customer id lists go in as one JSON array bound to json_each(): one statement
# for any number of ids, instead of hundreds of IN (...) chunks.

OCCASION_DATE_COLUMNS = ("birth_date", "anniversary_date")


def customer_contacts(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, tuple[str | None, str | None]]:
    """``{id: (email, name)}`` for these customers."""
    return {r[0]: (r[1], r[2]) for r in db.execute(
        "SELECT id, email, name FROM customers WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)])}


def offered_keys(db: sqlite_utils.Database, ids: Sequence[str]) -> set[tuple[str, str, int]]:
    """``(customer_id, occasion, occasion_year)`` already in the offers ledger for these customers."""
    return {(r[0], r[1], int(r[2])) for r in db.execute(
        "SELECT customer_id, occasion, occasion_year FROM offers "
        "WHERE customer_id IN (SELECT value FROM json_each(?))", [_json_ids(ids)])}


def purchased_pairs(db: sqlite_utils.Database, ids: Sequence[str],
                    event_types: Sequence[str] = ("purchase",)) -> list[tuple[str, str]]:
    """Distinct ``(customer_id, product_id)`` purchases of these customers (``event_types`` mean "bought")."""
    return db.execute(
        "SELECT DISTINCT customer_id, product_id FROM interactions WHERE event_type IN "
        "(SELECT value FROM json_each(?)) AND customer_id IN (SELECT value FROM json_each(?))",
        [_json_ids(event_types), _json_ids(ids)]).fetchall()


def events_of(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, list[tuple[str, str, float, int]]]:
    """:func:`customer_events` for many customers in one statement (customers without events absent)."""
    out: dict[str, list[tuple[str, str, float, int]]] = {}
    for cid, pid, kind, qty, when in db.execute(
            "SELECT i.customer_id, i.product_id, i.event_type, i.quantity, i.occurred_at FROM json_each(?) AS j "
            "CROSS JOIN interactions AS i ON i.customer_id = j.value ORDER BY i.customer_id, i.occurred_at",
            [_json_ids(ids)]):
        out.setdefault(cid, []).append((pid, kind, qty, when))
    return out


def outstanding_offer_units(db: sqlite_utils.Database, on: str) -> dict[str, int]:
    """``{product_id: offers}`` over ledger offers still valid on ``on`` (``YYYY-MM-DD``): stock already promised."""
    return {r[0]: int(r[1]) for r in db.execute(
        "SELECT p.value, count(*) FROM offers AS o, json_each(o.products) AS p WHERE o.valid_until >= ? "
        "GROUP BY p.value", [on])}


OFFER_COLUMNS = ("customer_id", "occasion", "occasion_year", "code", "products", "discount", "valid_from",
                 "valid_until", "campaign_id", "created_at")


def insert_offers(db: sqlite_utils.Database, rows: Sequence[Sequence[Any]]) -> int:
    """Add offers given as tuples in ``OFFER_COLUMNS`` order; a repeated (customer, occasion, year) fails the whole batch."""
    with transaction(db):
        before = _changes(db)
        db.conn.executemany(
            f"INSERT INTO offers ({', '.join(OFFER_COLUMNS)}) VALUES ({', '.join('?' * len(OFFER_COLUMNS))})", rows)
        return _changes(db) - before


def active_offers(db: sqlite_utils.Database, customer_id: str, on: str) -> list[dict[str, Any]]:
    """Offers of one customer valid on date ``on`` (``YYYY-MM-DD``), soonest-ending first."""
    return list(db.query(
        "SELECT occasion, occasion_year, code, products, discount, valid_from, valid_until, campaign_id, created_at "
        "FROM offers WHERE customer_id = ? AND valid_from <= ? AND valid_until >= ? ORDER BY valid_until, id",
        [customer_id, on, on]))


def customer_timezone(db: sqlite_utils.Database, customer_id: str) -> tuple[bool, str | None]:
    """``(customer exists, their time zone)``."""
    row = db.execute("SELECT timezone FROM customers WHERE id = ?", [customer_id]).fetchone()
    return (False, None) if row is None else (True, row[0])


def _json_ids(ids: Sequence[str]) -> str:
    import json

    return json.dumps(list(ids))


def product_names(db: sqlite_utils.Database, ids: Sequence[str]) -> dict[str, str]:
    """``{id: name}`` for these products (ids that no longer exist are absent)."""
    return {r[0]: r[1] for r in db.execute(
        "SELECT id, name FROM products WHERE id IN (SELECT value FROM json_each(?))", [_json_ids(ids)])}


def occasion_candidates(db: sqlite_utils.Database, column: str, month_days: Sequence[str] | None) -> tuple[list[str], list[str | None], list[str]]:
    """``(ids, timezones, dates)`` of customers whose ``column`` falls on one of ``month_days`` (``MM-DD``).

    The month-day test runs inside SQLite's scan, so a week's window reads a
    few percent of a million customers instead of all of them. ``None`` = every
    customer with a date.
    """
    if column not in OCCASION_DATE_COLUMNS:
        raise ValueError(f"not an occasion date column: {column!r}")
    sql = f"SELECT id, timezone, {column} FROM customers WHERE {column} IS NOT NULL"
    params: list[Any] = []
    if month_days is not None:
        sql += f" AND substr({column}, 6) IN (SELECT value FROM json_each(?))"
        params.append(_json_ids(month_days))
    rows = db.execute(sql, params).fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def occasion_date_quality(db: sqlite_utils.Database, column: str) -> tuple[int, int]:
    """``(missing, malformed)`` counts of ``column`` over all customers.

    Malformed = not a calendar date (13th month, 31 April, 29 February of a
    non-leap year): SQLite's ``date(x, '+0 days')`` normalises those, so they
    differ from the stored text.
    """
    if column not in OCCASION_DATE_COLUMNS:
        raise ValueError(f"not an occasion date column: {column!r}")
    row = db.execute(
        f"SELECT count(*) - count({column}), coalesce(sum({column} IS NOT NULL AND "
        f"(date({column}, '+0 days') IS NOT {column} OR {column} < '0001')), 0) FROM customers").fetchone()
    return int(row[0]), int(row[1])


def consented_among(db: sqlite_utils.Database, ids: Sequence[str], purpose: str) -> set[str]:
    """Which of these customers have ``purpose`` granted now (absent = not granted).

    CROSS JOIN makes SQLite walk the given ids and look each one up by the
    primary key, instead of scanning every consent of the purpose.
    """
    return {r[0] for r in db.execute(
        "SELECT k.customer_id FROM json_each(?) AS j CROSS JOIN consents AS k "
        "ON k.customer_id = j.value AND k.purpose = ? WHERE k.granted = 1", [_json_ids(ids), purpose])}


# --- the models table --------------------------------------------------------------


def insert_model(db: sqlite_utils.Database, row: dict[str, Any]) -> None:
    """Add a model's row (``gate`` optional); a row that exists already is left as it is."""
    with transaction(db):
        db.execute(
            "INSERT OR IGNORE INTO models (version, created_at, path, engine, params, metrics, consent_snapshot, "
            "status, gate) VALUES (:version, :created_at, :path, :engine, :params, :metrics, :consent_snapshot, "
            ":status, :gate)",
            {"gate": "{}", **row},
        )


def mark_pruned(db: sqlite_utils.Database, version: str) -> None:
    """The artifact of ``version`` was deleted; its row stays as history."""
    with transaction(db):
        db.execute("UPDATE models SET status = 'pruned', removed_at = ? WHERE version = ?", [utcnow(), version])


def reconcile_model_statuses(db: sqlite_utils.Database, current: str | None) -> int:
    """Make ``published`` mean "what CURRENT names": the current one published, earlier ones retired.

    Returns how many rows changed. A kill between moving the pointer and
    updating the table leaves exactly this to repair.
    """
    with transaction(db):
        before = _changes(db)
        if current is not None:
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published' AND version != ?", [current])
            db.execute("UPDATE models SET status = 'published', removed_at = NULL WHERE version = ?", [current])
        else:
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published'")
        return _changes(db) - before


def set_model_status(db: sqlite_utils.Database, version: str, status: str) -> None:
    """Change a model's status; publishing one retires the previously published one."""
    with transaction(db):
        if status == "published":
            db.execute("UPDATE models SET status = 'retired' WHERE status = 'published' AND version != ?", [version])
        db.execute("UPDATE models SET status = ? WHERE version = ?", [status, version])


def model_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return list(db.query("SELECT * FROM models ORDER BY created_at DESC, version DESC"))
