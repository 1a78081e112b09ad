"""Erasure reaches every copy the engine wrote: the Parquet export and campaign files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from recommender import campaigns, privacy, store
from recommender.campaigns import CampaignRequest
from recommender.cli import cli
from recommender.data import exports


def _export_rows(folder: Path) -> list[dict]:
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table().to_pylist()


def _active(db, offset=0):
    return db.execute(
        "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
        "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id HAVING count(*) > 20 "
        "ORDER BY c.customer_id LIMIT 1 OFFSET ?",
        [offset],
    ).fetchone()[0]


def test_erasure_rewrites_the_parquet_export_without_the_customer(served, runner, tmp_path):
    out = tmp_path / "export"
    result = runner.invoke(cli, ["export-interactions", str(out), "--json", "--db", str(served.db)])
    assert result.exit_code == 0, result.output
    db = store.connect(served.db)
    assert [c["kind"] for c in store.registered_copies(db)] == ["interactions_parquet"]
    cid = _active(db)
    before = _export_rows(out)
    theirs = sum(1 for r in before if r["customer_id"] == cid)
    assert theirs > 20
    erased = privacy.forget(db, served, cid)
    assert erased["copies"]["rows_removed"] == {str(out.absolute()): theirs}
    after = _export_rows(out)
    assert len(after) == len(before) - theirs and not any(r["customer_id"] == cid for r in after)
    # Every other row is untouched.
    key = lambda r: (r["customer_id"], r["product_id"], r["event_type"], r["occurred_at"], r["weight"])  # noqa: E731
    assert sorted(map(key, after)) == sorted(key(r) for r in before if r["customer_id"] != cid)
    marker = json.loads((out / exports.MARKER).read_text())
    assert marker["rows"] == len(after)
    for path in out.rglob("*"):
        if path.is_file():
            assert cid.encode() not in path.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export")]


def test_an_erasure_during_an_export_leaves_it_before_the_swap(served, tmp_path, monkeypatch):
    """The export reads, then the erasure commits, then the export writes: the written export lacks them."""
    db = store.connect(served.db)
    cid, withdrawn = _active(db), _active(db, 1)
    real_chunks = exports._chunks

    def read_then_erase(*args, **kwargs):
        tables = list(real_chunks(*args, **kwargs))  # the export's read of the events
        read = {c for t in tables for c in t.column("customer_id").to_pylist()}
        assert cid in read and withdrawn in read
        other = store.connect(served.db)
        store.erase_customer(other, cid, privacy.subject_of(other, served, cid), "2026-01-01")
        store.set_consents(other, [(withdrawn, "personalization", False, store.utcnow(), "test")])
        yield from tables

    monkeypatch.setattr(exports, "_chunks", read_then_erase)
    summary = exports.export_interactions(db, served, tmp_path / "export")
    rows = _export_rows(tmp_path / "export")
    ids = {r["customer_id"] for r in rows}
    assert cid not in ids and withdrawn not in ids
    assert summary["removed_since_read"] > 40 and summary["privacy_epoch"] == store.privacy_epoch(db)


def _campaign_shop(db):
    db.execute(
        "INSERT INTO customers (id, email, name, birth_date, timezone, created_at) VALUES "
        "('K1', 'k1@example.com', 'Kim One', '1990-06-03', 'UTC', '2025-01-01T00:00:00Z'), "
        "('K2', 'k2@example.com', 'Kai Two', '1991-06-04', 'UTC', '2025-01-01T00:00:00Z')"
    )
    for cid in ("K1", "K2"):
        store.set_consents(db, [(cid, "marketing", True, store.utcnow(), "test")])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_erasure_rewrites_campaign_files_and_drops_missing_copies(served, tmp_path, suffix):
    db = store.connect(served.db)
    _campaign_shop(db)
    out = tmp_path / f"offers{suffix}"
    result = campaigns.run(db, served, CampaignRequest(occasion="birthday", date="2026-06-01", days_ahead=7), out=out)
    assert {o.customer_id for o in result.offers} >= {"K1", "K2"}
    store.register_copy(db, out, "campaign_export")  # what the campaign job does after writing its file
    gone = tmp_path / "deleted-by-the-marketer.csv"
    gone.write_text("customer_id\nK1\n")
    store.register_copy(db, gone, "campaign_export")
    gone.unlink()
    before = out.read_text(encoding="utf-8")
    mode = out.stat().st_mode
    erased = privacy.forget(db, served, "K1")
    text = out.read_text(encoding="utf-8")
    assert erased["copies"]["rows_removed"][str(out.absolute())] == 1
    assert erased["copies"]["dropped"] == [str(gone.absolute())]
    assert [c["path"] for c in store.registered_copies(db)] == [str(out.absolute())]
    for needle in ("K1", "k1@example.com", "Kim One"):
        assert needle in before and needle not in text
    assert "k2@example.com" in text and out.stat().st_mode == mode
    if suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        assert [r["customer_id"] for r in rows] == [o.customer_id for o in result.offers if o.customer_id != "K1"]
    else:
        assert [json.loads(line)["customer_id"] for line in text.splitlines()] == [
            o.customer_id for o in result.offers if o.customer_id != "K1"
        ]
