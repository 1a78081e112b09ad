"""Access and portability: everything held about one customer, and which models learnt from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import NotFoundError
from recommender.models.factor import IDS_FILE, MANIFEST_FILE
from recommender.online import rulelog
from recommender.values import epoch_to_iso, normalise_id


def export(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Everything held about a customer, as one JSON-ready object."""
    customer_id = normalise_id(customer_id)
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
    names_of = rulelog.names_in(db)
    for row in decisions:  # what merchandising rules did to the list, by rule name
        if row.get("rules"):
            row["rules"] = rulelog.decode(row["rules"], names_of)
    return {
        "exported_at": store.utcnow(),
        "profile": profile,
        "consents": store.consent_state(db, settings, customer_id)["consents"],
        "consent_history": store.consent_timeline(db, settings, customer_id)["history"],
        "interactions": events,
        "offers": offers,
        "decisions": decisions,
        # customer value (profiling): the stored score and segment, held only with value.purpose granted
        "value": store.customer_value_row(db, customer_id, settings.value.purpose),
        "models_trained_on": models_containing(settings, customer_id),
    }


def models_containing(settings: Settings, customer_id: str, subject: str | None = None) -> list[str]:
    """Versions on disk whose training customers include this one.

    From the id maps, and, with ``subject`` (the customer's tombstone), from the
    ``erased_subjects`` / ``withdrawn_subjects`` lists of artifacts the customer
    was removed from after training: the item factors still learnt from them.
    """
    return [version for version, _ in trained_on(settings, customer_id, subject)]


def trained_on(settings: Settings, customer_id: str, subject: str | None = None) -> list[tuple[str, str]]:
    """``(version, how)`` for every artifact trained on the customer; ``how`` is ``in_model``,
    ``erased`` or ``withdrawn`` (removed from the artifact since)."""
    root = Path(settings.model_dir)
    if not root.is_dir():
        return []
    found = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            users = json.loads((directory / IDS_FILE).read_text(encoding="utf-8"))["users"]
            manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8")) if subject else {}
        except (OSError, ValueError, KeyError):
            continue
        if customer_id in users:
            found.append((directory.name, "in_model"))
        elif subject and subject in manifest.get("erased_subjects", []):
            found.append((directory.name, "erased"))
        elif subject and subject in manifest.get("withdrawn_subjects", []):
            found.append((directory.name, "withdrawn"))
    return found
