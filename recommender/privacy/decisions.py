"""The decision log: what was served or offered, to whom, by which model and why.

What a request leaves behind depends on who asked. A customer with
personalization consent gets a full row (their id, the list, the model): the
log is how a shop measures and explains what it showed them, and ``export``
and ``forget`` reach it by id. A request for an unknown id, or for a customer
without personalization consent, is kept only as an anonymous row: no
customer id (an unknown "id" may be an email address; a customer who did not
consent is not to be profiled), and for ``rerank`` no product list either
(the caller's list describes what the shopper is looking at). The row itself
stays, because how often lists fall back to popular items, and which model
served them, is what the shop needs to see and holds nothing personal; and
since it holds no id, nothing is left that ``forget`` would have to find.

Entries older than ``privacy.retention_days`` are deleted by the writer thread
once an hour (every worker), by ``recommender prune`` and by the retrain job.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.store.rows import DecisionLogRow

# Reasons after which a served list is logged without anything personal (see the module docstring).
ANONYMOUS_REASONS = frozenset({"unknown_customer", "no_consent"})
PRUNE_EVERY_SECONDS = 3600.0


class DecisionLog:
    """Records served lists off the request path: a queue drained by one thread in batches.

    A request only appends a :class:`DecisionLogRow` to a queue (microseconds); a background
    thread writes everything queued every ``interval`` seconds in one
    transaction, and deletes entries older than ``retention_days`` every
    ``prune_every`` seconds (None = never). Rows for customers erased meanwhile
    are dropped at write time. What is still queued when the process exits
    normally (gunicorn stops a worker with SIGTERM and lets it return) is written
    by an ``atexit`` hook: a list whose id a response carried must not vanish
    because the server was restarted a moment later.
    """

    def __init__(
        self,
        db_path: str | Path,
        interval: float = 0.5,
        enabled: bool = True,
        *,
        retention_days: int | None = None,
        prune_every: float = PRUNE_EVERY_SECONDS,
    ) -> None:
        self.db_path = str(db_path)
        self.interval = interval
        self.enabled = enabled
        self.retention_days = retention_days
        self.prune_every = prune_every
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def record(
        self,
        customer_id: str | None,
        endpoint: str,
        model_version: str | None,
        mode: str,
        reason: str | None,
        product_ids: Sequence[str],
        *,
        list_id: str | None = None,
        arm: str | None = None,
        rules: str | Callable[[], str | None] | None = None,
    ) -> None:
        """Queue one served list; unknown or non-consenting visitors are logged anonymously.

        ``list_id`` is the id the response carried (made at serve time, since
        the row is written later) and ``arm`` the A/B arm it was served under;
        an anonymous row has no arm (nobody was assigned). ``rules`` is the compact
        JSON of what merchandising rules did to the list
        (:meth:`recommender.serving.rules.Effects.to_json`), None when none did, or
        the function that writes it: then it runs when the row is written, off the
        request, with the other rows of its batch.
        """
        if not self.enabled:
            return
        if reason in ANONYMOUS_REASONS:
            customer_id, arm = None, None
            if endpoint == "rerank":
                product_ids, rules = (), None
        self._ensure_thread()
        later = rules if callable(rules) else None
        row = DecisionLogRow(
            customer_id=customer_id,
            created_at=store.utcnow(),
            endpoint=endpoint,
            model_version=model_version,
            mode=mode,
            reason=reason,
            product_ids=json.dumps(list(product_ids)),
            list_id=list_id,
            arm=arm,
            rules=None if later else rules,
        )
        self._queue.put((row, later) if later else row)

    def _ensure_thread(self) -> None:
        # gunicorn forks workers: each process needs its own writer thread.
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                fresh_process = self._pid != os.getpid()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
                self._thread.start()
                if fresh_process:
                    atexit.register(self._flush_at_exit)

    def _drain(self) -> list[DecisionLogRow]:
        rows = []
        while True:
            try:
                got = self._queue.get_nowait()
            except queue.Empty:
                return rows
            if not isinstance(got, DecisionLogRow):  # (row, the function that writes its rules' record)
                row, rules = got
                try:
                    got = row._replace(rules=rules())
                except Exception:  # noqa: BLE001 - the list is logged even when what rules did cannot be
                    logging.getLogger("recommender.privacy").exception("decision log: a list's rules not recorded")
                    got = row
            rows.append(got)

    def flush(self, db: sqlite_utils.Database | None = None) -> int:
        """Write everything queued now; returns the number of rows written."""
        rows = self._drain()
        if not rows:
            return 0
        own = db is None
        db = db or store.connect(self.db_path, migrate=False)
        try:
            # A row carries an id only for an existing customer (see record): one that is no longer
            # a customer was erased after the request, and their row is dropped.
            present = store.existing_of(db, "customers", [r.customer_id for r in rows if r.customer_id is not None])
            rows = [r for r in rows if r.customer_id is None or r.customer_id in present]
            store.insert_decisions(db, rows)
        finally:
            if own:
                db.conn.close()
        return len(rows)

    def _flush_at_exit(self) -> None:
        if self._pid != os.getpid() or not os.path.exists(self.db_path):
            return  # registered in a parent that forked this process, or the database is gone
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - say so, but let the process exit
            logging.getLogger("recommender.privacy").exception("decision log: lists queued at exit not written")

    def _run(self) -> None:
        db = store.connect(self.db_path, migrate=False)
        pruned = -float("inf")
        while True:
            time.sleep(self.interval)
            try:
                self.flush(db)
                if (
                    self.retention_days is not None
                    and self.prune_every is not None
                    and time.monotonic() - pruned >= self.prune_every
                ):
                    pruned = time.monotonic()
                    store.prune_decisions(db, cutoff(self.retention_days))
            except Exception:  # noqa: BLE001 - logging must never take a worker down
                logging.getLogger("recommender.privacy").exception("decision log write failed")


def cutoff(days: int) -> str:
    """The ISO UTC time before which decision-log entries are older than ``days``."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def prune(db: sqlite_utils.Database, settings: Settings, days: int | None = None) -> dict[str, Any]:
    """Delete decision-log entries older than the retention period."""
    keep = settings.privacy.retention_days if days is None else days
    before = cutoff(keep)
    return {"deleted": store.prune_decisions(db, before), "before": before, "retention_days": keep}
