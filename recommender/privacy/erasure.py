"""Erasure: a customer removed from every table, every model artifact and every copy.

The order is what makes erasure win every race:

1. one transaction deletes the customer's rows, writes the tombstone and a
   ``privacy_events`` row (kind ``erasure``) — from here on, every long job
   that reconciles before publishing sees it;
2. every artifact directory under ``model_dir`` (all versions, candidates
   included) loses the customer's row entirely and gets signals recomputed
   without them (:mod:`.derived`);
3. every registered copy (Parquet exports, campaign files) is rewritten
   without their rows; a copy whose file is gone is dropped from ``copies``;
4. the WAL is checkpointed and truncated, so the deleted pages' old images
   leave the ``-wal`` file (``secure_delete`` already zeroes the main file's).

A trainer that renames its artifact into place after step 2's scan
reconciles with the committed event before it moves ``CURRENT``; one that
renamed it before the scan is scrubbed by it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import NotFoundError
from recommender.privacy import copies, derived
from recommender.store.tombstones import email_subject, subject_of
from recommender.values import normalise_id


def forget(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Erase a customer everywhere; returns what was removed, where, and the tombstone."""
    customer_id = normalise_id(customer_id)
    customer = store.get_customer(db, customer_id)
    if customer is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    started = time.perf_counter()
    tombstone = subject_of(db, settings, customer_id)
    # Their e-mail is tombstoned too: a new id carrying it is refused at the import door.
    by_email = email_subject(db, settings, customer.get("email"))
    erased_at = dt.date.today().isoformat()
    deleted = store.erase_customer(db, customer_id, tombstone, erased_at, also=[by_email] if by_email else [])
    laps = {"tables": time.perf_counter()}
    refreshed = derived.refresh(db, settings)
    scrubbed = [a["version"] for a in refreshed["artifacts"] if a["erased"]]
    laps["artifacts"] = time.perf_counter()
    copied = copies.scrub_all(db, settings, customer_id)
    laps["copies"] = time.perf_counter()
    checkpoint = checkpoint_wal(db)
    laps["wal"] = time.perf_counter()
    seconds, last = {}, started
    for name, at in laps.items():
        seconds[name], last = round(at - last, 3), at
    seconds["total"] = round(last - started, 3)
    return {
        "erased": True,
        "tombstone": tombstone,
        "erased_at": erased_at,
        "deleted_rows": deleted,
        "models_scrubbed": scrubbed,
        "copies": copied,
        "wal_checkpoint": checkpoint,
        "seconds": seconds,
    }


def checkpoint_wal(db: sqlite_utils.Database, attempts: int = 20) -> dict[str, Any]:
    """Copy the WAL into the database and truncate it; retried while a reader holds an old snapshot."""
    for attempt in range(attempts):
        busy, log, done = store.wal_checkpoint(db)
        if not busy:
            return {"truncated": True, "attempts": attempt + 1}
        time.sleep(0.05)
    return {"truncated": False, "attempts": attempts, "frames": log, "checkpointed": done}


def scrub_artifact(
    directory: Path, customer_id: str, db: sqlite_utils.Database | None = None, settings: Settings | None = None
) -> str:
    """Reconcile one artifact with the recorded privacy events (erasure of ``customer_id`` included)."""
    from recommender.privacy.reconcile import reconcile_artifact

    if db is None or settings is None:
        raise ValueError("scrub_artifact needs the database and settings: erasure is recorded there first")
    reconcile_artifact(db, settings, directory, refresh_signals=True)
    return Path(directory).name
