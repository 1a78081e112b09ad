"""Erasure: a customer removed from every table, every model artifact and every copy.

Erasure removes a customer from every table in one transaction and scrubs
every model artifact on disk that holds their id and factors, so no loadable
model can serve them. Workers notice the new tombstone within a second and
reload. What stays is a tombstone proving the erasure without keeping the id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from .. import store
from ..config import Settings
from ..errors import NotFoundError
from ..model import FACTOR_FILES, IDS_FILE, MANIFEST_FILE, _sha256
from .access import models_containing
from .tombstones import ensure_key, subject_hash

ERASED_PLACEHOLDER = "\u2205erased-"


def forget(db: sqlite_utils.Database, settings: Settings, customer_id: str) -> dict[str, Any]:
    """Erase a customer everywhere; returns what was removed and the tombstone."""
    if store.get_customer(db, customer_id) is None:
        raise NotFoundError(f"unknown customer {customer_id!r}")
    # Artifacts first: if the database step failed afterwards, the person would still
    # be out of every model, which is the side to err on.
    scrubbed = [scrub_artifact(Path(settings.model_dir) / v, customer_id) for v in models_containing(settings, customer_id)]
    tombstone = subject_hash(ensure_key(db, settings), customer_id)
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
