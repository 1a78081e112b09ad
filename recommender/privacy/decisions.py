"""The decision log: what was served or offered, to whom, by which model and why."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import sqlite_utils

from .. import store
from ..config import Settings
from .tombstones import subject_hash


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
