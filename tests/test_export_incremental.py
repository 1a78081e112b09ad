"""``export-interactions --incremental``: after any sequence of changes it holds what a full export holds.

Real SQLite, real Parquet files, the real erasure; a real SIGKILL in a child
process for the crash case. No Spark needed (the Spark reader of the same
manifest is tested in tests/test_spark_export_training.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from recommender import privacy, store
from recommender.cli import cli
from recommender.data import exports, interactions

COLUMNS = ("event_id", "customer_id", "product_id", "event_type", "quantity", "weight", "occurred_at")


def rows(folder: Path) -> set[tuple]:
    table = exports.read_export(folder)
    return {tuple(r[c] for c in COLUMNS) for r in table.select(list(COLUMNS)).to_pylist()}


def consenting_with_events(db, offset: int) -> str:
    return db.execute(
        "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id HAVING count(*) > 20 "
        "ORDER BY c.customer_id LIMIT 1 OFFSET ?",
        [offset],
    ).fetchone()[0]


def refusing_with_events(db) -> str:
    return db.execute(
        "SELECT i.customer_id FROM interactions i LEFT JOIN consents c ON c.customer_id = i.customer_id "
        "AND c.purpose = 'personalization' WHERE coalesce(c.granted, 0) = 0 GROUP BY i.customer_id "
        "HAVING count(*) > 5 ORDER BY i.customer_id LIMIT 1"
    ).fetchone()[0]


def consent(db, customer_id: str, granted: bool) -> None:
    store.set_consents(db, [(customer_id, "personalization", granted, store.utcnow(), "test")])


def test_incremental_export_equals_a_full_export_after_inserts_late_events_updates_and_privacy(
    sample_db, settings, tmp_path
):
    db = sample_db
    out = tmp_path / "incremental"
    first = exports.export_interactions(db, settings, out, incremental=True)
    assert first["mode"] == "full" and first["full_because"] == "no earlier export"
    # The first export holds what the trainer's own reader (the bulk reader) loads.
    data = interactions.load(db, settings)
    assert first["rows"] == len(data)
    exported = exports.read_export(out)
    assert Counter(
        zip(exported.column("customer_id").to_pylist(), exported.column("product_id").to_pylist())
    ) == Counter(zip(data.user_ids[data.user].tolist(), data.item_ids[data.item].tolist()))

    buyer, withdrawer, erased = (consenting_with_events(db, i) for i in range(3))
    newcomer = refusing_with_events(db)
    product = db.execute("SELECT id FROM products ORDER BY id LIMIT 1").fetchone()[0]
    # 1. A new event, and a late one: dated in the first month of the history, inserted now.
    store.add_interactions(db, [(buyer, product, "purchase", 1, 1793000000), (buyer, product, "view", 1, 1746100000)])
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["mode"] == "incremental" and step["appended"] == 2
    assert {(r[1], r[3], r[6].timestamp()) for r in rows(out) if r[1] == buyer and r[2] == product} >= {
        (buyer, "purchase", 1793000000.0),
        (buyer, "view", 1746100000.0),
    }
    # 2. The same event again: events are a log, so it is a row of its own, appended.
    store.add_interactions(db, [(buyer, product, "view", 2, 1746100000)])
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["appended"] == 1 and step["updated_rows"] == 0
    late = [r for r in rows(out) if r[1] == buyer and r[6].timestamp() == 1746100000.0 and r[3] == "view"]
    assert sorted((r[4], r[5]) for r in late) == [
        (1.0, settings.event_weights["view"]),
        (2.0, 2.0 * settings.event_weights["view"]),
    ]
    # 2b. An imported row re-imported with another quantity: the import replaces it, the export follows.
    store.upsert_interactions(db, [(buyer, product, "add_to_cart", 1, 1746100000)])
    assert exports.export_interactions(db, settings, out, incremental=True)["appended"] == 1
    store.upsert_interactions(db, [(buyer, product, "add_to_cart", 3, 1746100000)])
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["appended"] == 0 and step["updated_rows"] == 1
    late = [r for r in rows(out) if r[1] == buyer and r[6].timestamp() == 1746100000.0 and r[3] == "add_to_cart"]
    assert [(r[4], r[5]) for r in late] == [(3.0, 3.0 * settings.event_weights["add_to_cart"])]
    # 3. A withdrawal: the customer's rows leave the files.
    theirs = sum(1 for r in rows(out) if r[1] == withdrawer)
    assert theirs > 20
    consent(db, withdrawer, False)
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["withdrawn_rows"] == theirs and not any(r[1] == withdrawer for r in rows(out))
    # 4. An erasure: the scrub of registered copies rewrites the export at once.
    before = len(rows(out))
    gone = sum(1 for r in rows(out) if r[1] == erased)
    privacy.forget(db, settings, erased)
    assert len(rows(out)) == before - gone
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["appended"] == step["withdrawn_rows"] == 0
    for path in out.rglob("*"):
        if path.is_file():
            assert erased.encode() not in path.read_bytes(), path
    # 5. The withdrawer grants again, a customer who never had consent grants: their whole history comes in.
    consent(db, withdrawer, True)
    consent(db, newcomer, True)
    newcomer_rows = db.execute("SELECT count(*) FROM interactions WHERE customer_id = ?", [newcomer]).fetchone()[0]
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["regranted_rows"] == theirs + newcomer_rows
    # Twice in a row: nothing to do, nothing changes.
    snapshot = rows(out)
    again = exports.export_interactions(db, settings, out, incremental=True)
    assert (again["appended"], again["regranted_rows"], again["updated_rows"], again["withdrawn_rows"]) == (0, 0, 0, 0)
    assert rows(out) == snapshot

    full = exports.export_interactions(db, settings, tmp_path / "full")
    assert full["mode"] == "full"
    assert rows(out) == rows(tmp_path / "full")
    assert again["rows"] == full["rows"] == len(interactions.load(db, settings))
    assert again["customers"] == full["customers"]


def test_changed_event_weights_rebuild_the_export(sample_db, settings, tmp_path):
    out = tmp_path / "export"
    exports.export_interactions(sample_db, settings, out)
    settings.event_weights["view"] = 0.0
    step = exports.export_interactions(sample_db, settings, out, incremental=True)
    assert step["mode"] == "full" and "event weights" in step["full_because"]
    assert {r[3] for r in rows(out)} == {"add_to_cart", "purchase"}


KILL_BEFORE_COMMIT = """
import os, signal, sys
from recommender import store
from recommender.data import exports
from recommender.config import load_settings
settings = load_settings(environ={}, overrides={"db": sys.argv[1], "model_dir": sys.argv[3]})
exports._write_marker = lambda folder, marker: os.kill(os.getpid(), signal.SIGKILL)  # after the files, before the commit
exports.export_interactions(store.connect(sys.argv[1]), settings, sys.argv[2], incremental=True)
"""


def test_an_export_killed_before_its_commit_leaves_the_previous_export_usable(sample_db, settings, tmp_path):
    db = sample_db
    out = tmp_path / "export"
    exports.export_interactions(db, settings, out)
    previous = rows(out)
    marker = (out / exports.MARKER).read_text()
    buyer, withdrawer = consenting_with_events(db, 0), consenting_with_events(db, 1)
    product = db.execute("SELECT id FROM products ORDER BY id LIMIT 1").fetchone()[0]
    store.add_interactions(db, [(buyer, product, "purchase", 1, 1793000000)])
    consent(db, withdrawer, False)  # so the killed run also rewrites files
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    proc = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_COMMIT, str(settings.db), str(out), str(settings.model_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    # It had written new files (not listed) and committed nothing: the export reads as before.
    listed = {str(out / e["path"]) for e in json.loads(marker)["files"]}
    on_disk = {str(p) for p in out.rglob("part-*.parquet")}
    assert on_disk - listed, "the killed run should have left unlisted files"
    assert (out / exports.MARKER).read_text() == marker
    assert set(exports.export_files(out)) == listed
    assert rows(out) == previous
    for path in listed:
        pq.read_metadata(path)  # every listed file is whole
    # The next run removes what the killed one left and catches up.
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["orphans_removed"] == len(on_disk - listed) + 1  # its files and its consent list
    exports.export_interactions(db, settings, tmp_path / "full")
    assert rows(out) == rows(tmp_path / "full")
    assert {str(p) for p in out.rglob("part-*.parquet")} == set(exports.export_files(out))


def test_cli_incremental_export(sample_db, settings, tmp_path):
    out = tmp_path / "export"
    sample_db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    args = ["export-interactions", str(out), "--db", str(settings.db), "--incremental", "--json"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    result = json.loads(second.output)
    assert (
        result["mode"] == "incremental"
        and result["appended"] == 0
        and result["rows"] == json.loads(first.output)["rows"]
    )
    human = CliRunner().invoke(cli, args[:-1])
    assert human.exit_code == 0 and "incremental: 0 new rows" in human.output
    assert os.path.isfile(out / exports.MARKER)


def test_an_event_after_the_erasure_of_the_newest_events_owner_reaches_the_export(sample_db, settings, tmp_path):
    """The erasure deletes the newest rows, whose ids the export read up to: the next event must not take one of
    them back (SQLite would, for a table without AUTOINCREMENT), and the export must take it."""
    db = sample_db
    erased, other = consenting_with_events(db, 0), consenting_with_events(db, 1)
    product = db.execute("SELECT id FROM products ORDER BY id LIMIT 1").fetchone()[0]
    store.add_interactions(db, [(erased, product, "view", 1, 1793000000 + k) for k in range(3)])  # the newest ids
    out = tmp_path / "incremental"
    exports.export_interactions(db, settings, out, incremental=True)
    newest = db.execute("SELECT max(id) FROM interactions").fetchone()[0]
    privacy.forget(db, settings, erased)
    store.add_interactions(db, [(other, product, "purchase", 1, 1793000100)])
    assert db.execute("SELECT max(id) FROM interactions").fetchone()[0] == newest + 1
    step = exports.export_interactions(db, settings, out, incremental=True)
    assert step["appended"] == 1
    assert (other, "purchase", 1793000100.0) in {(r[1], r[3], r[6].timestamp()) for r in rows(out)}
    exports.export_interactions(db, settings, tmp_path / "full")
    assert rows(out) == rows(tmp_path / "full")


def test_a_quantity_change_after_the_change_log_was_pruned_empty_reaches_the_export(sample_db, settings, tmp_path):
    """Every export applied the logged quantity changes, so the log is pruned: the next change must still be read."""
    db = sample_db
    buyer = consenting_with_events(db, 0)
    product = db.execute("SELECT id FROM products ORDER BY id LIMIT 1").fetchone()[0]
    out = tmp_path / "incremental"
    store.upsert_interactions(db, [(buyer, product, "add_to_cart", 1, 1746100000)])
    exports.export_interactions(db, settings, out, incremental=True)
    for quantity in (2, 3):  # each change is logged, exported, and the log pruned behind it
        store.upsert_interactions(db, [(buyer, product, "add_to_cart", quantity, 1746100000)])
        step = exports.export_interactions(db, settings, out, incremental=True)
        assert step["updated_rows"] == 1
        carts = [r for r in rows(out) if r[1] == buyer and r[3] == "add_to_cart" and r[6].timestamp() == 1746100000.0]
        assert [r[4] for r in carts] == [float(quantity)]
