"""The rights of the people in the data: access (export), erasure, and a decision log.

Erasure removes a customer from every table in one transaction and scrubs
every model artifact on disk that holds their id and factors (the id replaced
by a placeholder, the factor row zeroed, checksums rewritten), so no loadable
model can serve them. Workers notice the new tombstone within a second and
reload. What stays is a tombstone: a salted hash of the id and the date,
proving the erasure without keeping the id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import sqlite_utils

from . import consent, store
from .config import Settings
from .errors import NotFoundError
from .model import FACTOR_FILES, IDS_FILE, MANIFEST_FILE, _sha256
from .values import epoch_to_iso

ERASED_PLACEHOLDER = "\u2205erased-"


def subject_hash(db: sqlite_utils.Database, customer_id: str, *, salt: str | None = None) -> str:
    """The tombstone of ``customer_id``: SHA-256 of the database's random salt and the id."""
    if salt is None:
        salt = store.meta_value(db, "erasure_salt") or ""
    return hashlib.sha256(f"{salt}:{customer_id}".encode()).hexdigest()


# --- access ------------------------------------------------------------------------


def export(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Everything held about a customer, as one JSON-ready object."""
    profile = store.get_customer(db, customer_id)
    if profile is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    events = store.customer_rows(db, "interactions", customer_id)
    for e in events:
        e["occurred_at"] = epoch_to_iso(e["occurred_at"])
    offers = store.customer_rows(db, "offers", customer_id)
    decisions = store.customer_rows(db, "decisions", customer_id)
    for row in (*offers, *decisions):
        for key in ("products", "product_ids"):
            if key in row:
                row[key] = json.loads(row[key])
    return {
        "exported_at": store.utcnow(),
        "profile": profile,
        "consents": consent.current(db, settings, customer_id)["consents"],
        "consent_history": consent.history(db, settings, customer_id)["history"],
        "interactions": events,
        "offers": offers,
        "decisions": decisions,
        "models_trained_on": models_containing(settings, customer_id),
    }


def models_containing(settings: Settings, customer_id: str) -> list[str]:
    """Versions on disk whose training customers include this one (from their id maps)."""
    root = Path(settings.model_dir)
    if not root.is_dir():
        return []
    found = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            users = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))["users"]
        except (OSError, ValueError, KeyError):
            continue
        if customer_id in users:
            found.append(directory.name)
    return found


# --- erasure -----------------------------------------------------------------------


def forget(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Erase a customer everywhere; returns what was removed and the tombstone."""
    if store.get_customer(db, customer_id) is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    # Artifacts first: if the database step failed afterwards, the person would still
    # be out of every model, which is the side to err on.
    scrubbed = [scrub_artifact(Path(settings.model_dir) / v, customer_id) for v in models_containing(settings, customer_id)]
    tombstone = subject_hash(db, customer_id)
    erased_at = dt.date.today().isoformat()
    deleted = store.erase_customer(db, customer_id, tombstone, erased_at)
    return {"erased": True, "tombstone": tombstone, "erased_at": erased_at, "deleted_rows": deleted,
            "models_scrubbed": scrubbed}


def scrub_artifact(directory: Path, customer_id: str) -> str:
    """Remove one customer's id and factors from an artifact, keeping it loadable.

    The factor row is zeroed in place (workers that memory-map the file see it
    at once), the id becomes a placeholder, and the manifest's checksums are
    rewritten atomically.
    """
    ids_path = directory / IDS_FILE
    ids = json.loads(ids_path.read_text(encoding="utf-8"))
    row = ids["users"].index(customer_id)
    ids["users"][row] = f"{ERASED_PLACEHOLDER}{row}"
    factors = np.load(directory / FACTOR_FILES[0], mmap_mode="r+", allow_pickle=False)
    factors[row] = 0.0
    factors.flush()
    del factors
    _atomic_write(ids_path, json.dumps(ids))
    manifest_path = directory / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["checksums"][IDS_FILE] = _sha256(ids_path)
    manifest["checksums"][FACTOR_FILES[0]] = _sha256(directory / FACTOR_FILES[0])
    manifest["erasures"] = int(manifest.get("erasures", 0)) + 1
    _atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=True))
    return directory.name


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# --- decision log ------------------------------------------------------------------


class DecisionLog:
    """Records served lists off the request path: a queue drained by one thread in batches.

    A request only appends a tuple to a queue (microseconds); a background
    thread writes everything queued every ``interval`` seconds in one
    transaction. Rows for customers erased meanwhile are dropped at write time.
    """

    def __init__(self, db_path: str | Path, interval: float = 0.5, enabled: bool = True) -> None:
        self.db_path = str(db_path)
        self.interval = interval
        self.enabled = enabled
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def record(self, customer_id: str | None, endpoint: str, model_version: str | None, mode: str,
               reason: str | None, product_ids: Sequence[str]) -> None:
        if not self.enabled:
            return
        self._ensure_thread()
        self._queue.put((customer_id, store.utcnow(), endpoint, model_version, mode, reason,
                         json.dumps(list(product_ids))))

    def _ensure_thread(self) -> None:
        # gunicorn forks workers: each process needs its own writer thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
                self._thread.start()

    def _drain(self) -> list[tuple]:
        rows = []
        while True:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                return rows

    def flush(self, db: sqlite_utils.Database | None = None) -> int:
        """Write everything queued now; returns the number of rows written."""
        rows = self._drain()
        if not rows:
            return 0
        own = db is None
        db = db or store.connect(self.db_path, migrate=False)
        try:
            customers = [r[0] for r in rows if r[0] is not None]
            salt = store.meta_value(db, "erasure_salt") or ""
            hashes = {c: subject_hash(db, c, salt=salt) for c in set(customers)}
            gone = store.erased_among(db, list(hashes.values()))
            rows = [r for r in rows if r[0] is None or hashes[r[0]] not in gone]
            store.insert_decisions(db, rows)
        finally:
            if own:
                db.conn.close()
        return len(rows)

    def _run(self) -> None:
        db = store.connect(self.db_path, migrate=False)
        while True:
            time.sleep(self.interval)
            try:
                self.flush(db)
            except Exception:  # noqa: BLE001 - logging must never take a worker down
                import logging

                logging.getLogger("recommender.privacy").exception("decision log write failed")


def prune(db: sqlite_utils.Database, settings: Settings, days: int | None = None) -> dict[str, Any]:
    """Delete decision-log entries older than the retention period."""
    keep = settings.privacy.retention_days if days is None else days
    before = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=keep)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"deleted": store.prune_decisions(db, before), "before": before, "retention_days": keep}
