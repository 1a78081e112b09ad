"""Copies the engine wrote outside the database, reached by erasure.

Every file or folder that holds customer data outside SQLite is registered in
the ``copies`` table by the code that writes it (``export-interactions``:
kind ``interactions_parquet``; campaign exports: kind ``campaign_export``;
``recommender value export``: kind ``value_export``).
On erasure each one is rewritten without the customer's rows (atomically: a
new file renamed over the old), and an entry whose file is gone is dropped.
A value export is profiling, so a withdrawal of ``value.purpose`` rewrites it
too (:func:`follow_withdrawals`, called by every door that records one).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import csvsafe, store
from recommender.config import Settings

VALUE_EXPORT = "value_export"
# The privacy epoch the value exports were last brought up to (withdrawals after it are still to apply).
VALUE_EXPORTS_EPOCH = "value_exports_epoch"


def scrub_all(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Rewrite every registered copy without ``customer_id``; returns rows removed per path."""
    removed: dict[str, int] = {}
    dropped: list[str] = []
    for entry in store.registered_copies(db):
        path = Path(entry["path"])
        if not path.exists():
            store.forget_copy(db, path)
            dropped.append(str(path))
            continue
        if entry["kind"] == "interactions_parquet":
            from recommender.data import exports  # pyarrow: imported only when there is a Parquet copy

            removed[str(path)] = exports.remove_customers(path, {customer_id})
        elif entry["kind"] in ("campaign_export", VALUE_EXPORT):
            removed[str(path)] = rewrite_campaign_file(path, {customer_id})
    return {"rows_removed": removed, "dropped": dropped}


def start_following(db: sqlite_utils.Database) -> None:
    """Before the first value export: withdrawals recorded until now are already out of it."""
    if store.meta_value(db, VALUE_EXPORTS_EPOCH) is None:
        store.set_meta(db, VALUE_EXPORTS_EPOCH, str(store.privacy_epoch(db)))


def follow_withdrawals(db: sqlite_utils.Database, settings: Settings) -> dict[str, Any] | None:
    """Rewrite every value export without the customers who withdrew ``value.purpose`` since the last call.

    Cheap when nothing happened (two small reads): the files are read only when a
    withdrawal of that purpose was recorded after the epoch they were last brought up to.
    """
    epoch = store.privacy_epoch(db)
    seen = int(store.meta_value(db, VALUE_EXPORTS_EPOCH) or 0)
    if epoch <= seen:
        return None
    purpose = settings.value.purpose
    files = [Path(e["path"]) for e in store.registered_copies(db) if e["kind"] == VALUE_EXPORT]
    if not files:  # nothing to follow (a new export starts following from its own epoch): write nothing
        return None
    withdrawn = {
        r["customer_id"]
        for r in store.privacy_events_since(db, seen)
        if r["kind"] == "withdrawal" and r["purpose"] == purpose and r["customer_id"]
    }
    removed: dict[str, int] = {}
    for path in files if withdrawn else []:
        if not path.exists():
            store.forget_copy(db, path)
            continue
        removed[str(path)] = rewrite_campaign_file(path, withdrawn)
    store.set_meta(db, VALUE_EXPORTS_EPOCH, str(epoch))
    return {"withdrawn": len(withdrawn), "rows_removed": removed, "epoch": epoch}


def rewrite_campaign_file(path: Path, customer_ids: set[str]) -> int:
    """Remove the rows of ``customer_ids`` from a campaign CSV or JSONL file; returns how many."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        # the file holds ids as written through csvsafe: "=x" is the cell "'=x"
        cells = set(customer_ids) | {csvsafe.cell(c) for c in customer_ids}
        rows = list(csv.DictReader(text.splitlines()))
        header = list(rows[0].keys()) if rows else next(csv.reader(text.splitlines()), [])
        kept = [r for r in rows if r.get("customer_id") not in cells]
        if len(kept) == len(rows):
            return 0

        def write(fh) -> None:
            writer = csv.DictWriter(fh, header)
            writer.writeheader()
            writer.writerows(kept)
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        kept_lines = [line for line in lines if json.loads(line).get("customer_id") not in customer_ids]
        if len(kept_lines) == len(lines):
            return 0
        rows, kept = lines, kept_lines

        def write(fh) -> None:
            fh.write("".join(line + "\n" for line in kept_lines))

    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(rows) - len(kept)
