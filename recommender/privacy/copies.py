"""Copies the engine wrote outside the database, reached by erasure.

Every file or folder that holds customer data outside SQLite is registered in
the ``copies`` table by the code that writes it (``export-interactions``:
kind ``interactions_parquet``; campaign exports: kind ``campaign_export``).
On erasure each one is rewritten without the customer's rows (atomically: a
new file renamed over the old), and an entry whose file is gone is dropped.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings


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
        elif entry["kind"] == "campaign_export":
            removed[str(path)] = rewrite_campaign_file(path, {customer_id})
    return {"rows_removed": removed, "dropped": dropped}


def rewrite_campaign_file(path: Path, customer_ids: set[str]) -> int:
    """Remove the rows of ``customer_ids`` from a campaign CSV or JSONL file; returns how many."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        header = list(rows[0].keys()) if rows else next(csv.reader(text.splitlines()), [])
        kept = [r for r in rows if r.get("customer_id") not in customer_ids]
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
