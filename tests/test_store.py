import sqlite3

import pytest

from recommender import store
from recommender.errors import ConfigError
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow


def test_new_database_has_every_table_and_pragmas(db):
    assert store.schema_version(db) == store.SCHEMA_VERSION
    for table in store.TABLES:
        assert db[table].exists(), table
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    index_names = {i.name for i in db["interactions"].indexes}
    assert "interactions_natural_key" in index_names


def test_migration_from_version_1_keeps_data(tmp_path):
    path = tmp_path / "old.db"
    old = store.connect(path, create=True, target_version=1)
    assert store.schema_version(old) == 1
    assert not old["api_keys"].exists()
    store.upsert_customers(old, [CustomerRow("c1", name="Ann", created_at="2025-01-01T00:00:00Z")])
    old.conn.close()

    new = store.connect(path)
    assert store.schema_version(new) == store.SCHEMA_VERSION
    assert new["api_keys"].exists() and new["erasures"].exists()
    assert [r["name"] for r in new["customers"].rows] == ["Ann"]
    versions = [r["version"] for r in new["schema_version"].rows]
    assert versions == list(range(1, store.SCHEMA_VERSION + 1))
    # Opening again is a no-op.
    assert store.migrate_schema(new) == store.SCHEMA_VERSION
    assert new["schema_version"].count == store.SCHEMA_VERSION


def test_database_from_a_newer_engine_is_refused(db, settings):
    db.execute("INSERT INTO schema_version VALUES (?, ?)", [store.SCHEMA_VERSION + 1, store.utcnow()])
    with pytest.raises(ConfigError, match="newer than this engine"):
        store.connect(settings.db)


def test_constraints_reject_bad_rows(db):
    with pytest.raises(sqlite3.IntegrityError):
        store.upsert_products(db, [ProductRow("p1", "Mug", price=-1.0)])
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: no such customer
        store.upsert_interactions(db, [EventRow("ghost", "p1", "view", 1.0, 0)])
    assert db["products"].count == 0 and db["interactions"].count == 0


def test_transaction_rolls_back_everything(db):
    with pytest.raises(RuntimeError), store.transaction(db):
        store.upsert_customers(db, [CustomerRow("c1", created_at="2025-01-01T00:00:00Z")])
        raise RuntimeError("boom")
    assert db["customers"].count == 0


def test_consent_changes_are_logged_once_and_log_is_append_only(db):
    store.upsert_customers(db, [CustomerRow("c1", created_at="2025-01-01T00:00:00Z")])
    assert store.set_consents(db, [ConsentDecision("c1", "marketing", True, "2025-01-01T00:00:00Z", "signup")]) == 1
    assert store.set_consents(db, [ConsentDecision("c1", "marketing", True, "2025-02-01T00:00:00Z", "signup")]) == 0
    assert store.set_consents(db, [ConsentDecision("c1", "marketing", False, "2025-03-01T00:00:00Z", "api")]) == 1
    log = list(db.query("SELECT old_granted, new_granted, source FROM consent_log ORDER BY id"))
    assert log == [
        {"old_granted": None, "new_granted": 1, "source": "signup"},
        {"old_granted": 1, "new_granted": 0, "source": "api"},
    ]
    assert not store.has_consent(db, "c1", "marketing")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE consent_log SET new_granted = 1")


def test_live_events_are_rows_of_their_own_while_imports_replace(db):
    store.upsert_customers(db, [("c1", None, None, None, None, "UTC", "2025-01-01T00:00:00Z")])
    store.upsert_products(db, [("p1", "Mug", None, 1.0, None, 0, None)])
    store.upsert_interactions(db, [("c1", "p1", "view", 2.0, 100)])
    store.upsert_interactions(db, [("c1", "p1", "view", 2.0, 100)])
    assert [r["quantity"] for r in db["interactions"].rows] == [2.0]
    # Events are a log: a live event in the same second is a row of its own, and so is the next.
    store.add_interactions(db, [("c1", "p1", "view", 1.0, 100)])
    store.add_interactions(db, [("c1", "p1", "view", 1.0, 100, "L2", 5e11)])
    rows = [(r["quantity"], r["list_id"], r["price"]) for r in db["interactions"].rows]
    assert rows == [(2.0, None, None), (1.0, None, None), (1.0, "L2", 5e11)]
    # ... and a re-import still replaces only its own row.
    store.upsert_interactions(db, [("c1", "p1", "view", 4.0, 100)])
    assert [r["quantity"] for r in db["interactions"].rows] == [4.0, 1.0, 1.0]


def test_migration_to_v10_keeps_every_row_and_its_import_key(tmp_path):
    path = tmp_path / "v9.db"
    old = store.connect(path, create=True, target_version=9)
    store.upsert_customers(old, [("c1", None, None, None, None, "UTC", "2025-01-01T00:00:00Z")])
    # a product row as version 9 stored it (today's writer knows later columns)
    old.conn.execute(
        "INSERT INTO products (id, name, category, price, in_stock, hidden, available_until) "
        "VALUES ('p1', 'Mug', NULL, 1.0, NULL, 0, NULL)"
    )
    old.conn.executemany(
        "INSERT INTO interactions (customer_id, product_id, event_type, quantity, occurred_at, list_id, price) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [("c1", "p1", "view", 2.0, 100, None, None), ("c1", "p1", "purchase", 3.0, 100, "L1", 10.0)],
    )
    old.conn.commit()
    before = [tuple(r) for r in old.execute("SELECT * FROM interactions ORDER BY id")]
    old.conn.close()

    new = store.connect(path)
    columns = ", ".join(c.name for c in new["interactions"].columns if c.name != "natural_key")
    assert [tuple(r) for r in new.execute(f"SELECT {columns} FROM interactions ORDER BY id")] == before
    assert [r[0] for r in new.execute("SELECT natural_key FROM interactions")] == [1, 1]
    # Re-importing what was stored before v10 replaces it (no double count) ...
    store.upsert_interactions(new, [("c1", "p1", "view", 2.0, 100)])
    assert new.execute("SELECT count(*), sum(quantity) FROM interactions").fetchone() == (2, 5.0)
    # ... and a live event in the same second is a row of its own.
    store.add_interactions(new, [("c1", "p1", "purchase", 1.0, 100, "L2", 12.0)])
    assert new.execute("SELECT count(*) FROM interactions").fetchone()[0] == 3


def test_a_new_database_and_its_wal_are_readable_by_their_owner_only(tmp_path):
    import os
    import stat

    old = os.umask(0o022)  # the usual umask would give 0644
    try:
        db = store.connect(tmp_path / "shop.db", create=True)
        store.upsert_customers(db, [CustomerRow("c1", "a@example.com", "Ann", created_at="2025-01-01T00:00:00Z")])
        files = [tmp_path / "shop.db", tmp_path / "shop.db-wal", tmp_path / "shop.db-shm"]
        assert all(p.exists() for p in files)
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
        db.conn.close()
    finally:
        os.umask(old)


def test_events_and_their_change_log_keep_everything_through_the_move_to_ids_never_given_twice(tmp_path):
    """Migration 18 copies interactions and interaction_updates into AUTOINCREMENT tables (the old table's drop
    cascades to event_keys and the change log, which are kept aside and put back)."""
    path = tmp_path / "v17.db"
    old = store.connect(path, create=True, target_version=17)
    store.upsert_customers(old, [CustomerRow("c1", created_at="2025-01-01T00:00:00Z")])
    store.upsert_products(old, [ProductRow("p1", "Mug", price=5.0), ProductRow("p2", "Cup", price=4.0)])
    store.add_keyed_interactions(
        old, [EventRow("c1", "p1", "view", 1, 100, "L1", 5.0), EventRow("c1", "p2", "view", 1, 101)], ["e-1", None]
    )
    store.upsert_interactions(old, [EventRow("c1", "p2", "purchase", 1, 102)])
    store.upsert_interactions(old, [EventRow("c1", "p2", "purchase", 2, 102)])  # a quantity change: logged
    events = old.execute("SELECT * FROM interactions ORDER BY id").fetchall()
    keys = old.execute("SELECT * FROM event_keys").fetchall()
    changes = old.execute("SELECT * FROM interaction_updates").fetchall()
    assert len(events) == 3 and len(keys) == 1 and len(changes) == 1
    old.conn.close()

    new = store.connect(path)
    assert store.schema_version(new) == store.SCHEMA_VERSION
    assert new.execute("SELECT * FROM interactions ORDER BY id").fetchall() == events
    assert new.execute("SELECT * FROM event_keys").fetchall() == keys
    assert new.execute("SELECT * FROM interaction_updates").fetchall() == changes
    assert {i.name for i in new["interactions"].indexes} >= {
        "interactions_natural_key",
        "interactions_customer",
        "interactions_product_time",
        "interactions_time",
        "interactions_list",
    }
    # the newest event goes (an erasure would take it): the next one still gets a new id
    newest = events[-1][0]
    new.execute("DELETE FROM interactions WHERE id = ?", [newest])
    (next_id,) = store.add_interactions(new, [EventRow("c1", "p1", "view", 1, 103)])
    assert next_id == newest + 1
    # the deleted event's logged change went with it (the log is empty): the next change still gets a new seq
    assert new["interaction_updates"].count == 0
    store.upsert_interactions(new, [EventRow("c1", "p1", "purchase", 1, 104)])
    store.upsert_interactions(new, [EventRow("c1", "p1", "purchase", 5, 104)])
    assert new.execute("SELECT seq FROM interaction_updates").fetchall() == [(changes[-1][0] + 1,)]
    # and the cascade from a customer still reaches event_keys and the change log
    new.execute("DELETE FROM customers WHERE id = 'c1'")
    assert new["interactions"].count == new["event_keys"].count == new["interaction_updates"].count == 0
