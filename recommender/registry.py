"""Versioned model artifacts on disk and the ``CURRENT`` pointer servers follow.

Layout under ``model_dir``::

    CURRENT                 one line: the published version
    <version>/              manifest.json, ids.json, user_factors.npy, item_factors.npy
    .tmp-<version>/         an artifact being written (never loaded)

Publishing is write → fsync → rename the directory → fsync the parent → write
``CURRENT.tmp`` → fsync → rename over ``CURRENT`` → fsync the parent. Each
rename is atomic, so a process killed at any instant leaves either the old
pointer or the new one, and both name a complete directory. A server never
sees a half-written model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import sqlite_utils

from . import store
from .errors import ModelError
from .model import FactorModel

POINTER = "CURRENT"


def new_version() -> str:
    """Sortable and unique: UTC time to the second plus a random suffix."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ModelError(f"bad model version {version!r}")
        return self.root / version

    def save(self, model: FactorModel, version: str) -> Path:
        """Write a complete artifact under its final name (via a temporary directory)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(version)
        if final.exists():
            raise ModelError(f"model {version} already exists")
        tmp = self.root / f".tmp-{version}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.manifest["version"] = version
        model.save(tmp)
        _fsync_dir(tmp)
        os.rename(tmp, final)
        _fsync_dir(self.root)
        return final

    def current_version(self) -> str | None:
        try:
            text = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def set_current(self, version: str) -> None:
        """Move the pointer; refuses a version that is incomplete or corrupt."""
        FactorModel.read_manifest(self.path(version))
        tmp = self.root / f"{POINTER}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        _fsync_dir(self.root)

    def load(self, version: str | None = None) -> FactorModel:
        version = version or self.current_version()
        if version is None:
            raise ModelError(f"no published model in {self.root} (run: recommender train --publish)")
        return FactorModel.load(self.path(version))

    def manifest(self, version: str, *, verify: bool = True) -> dict[str, Any]:
        return FactorModel.read_manifest(self.path(version), verify=verify)

    def remove(self, version: str) -> None:
        if version == self.current_version():
            raise ModelError(f"model {version} is current; publish another first")
        shutil.rmtree(self.path(version), ignore_errors=True)

    def clean_temporary(self) -> int:
        """Delete leftovers of interrupted saves; they were never visible to servers."""
        if not self.root.exists():
            return 0
        leftovers = [p for p in self.root.iterdir() if p.name.startswith(".tmp-") or p.name == f"{POINTER}.tmp"]
        for p in leftovers:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        return len(leftovers)


# --- the models table -----------------------------------------------------------


def record(db: sqlite_utils.Database, model: FactorModel, path: Path, status: str) -> None:
    m = model.manifest
    store.insert_model(db, {
        "version": m["version"], "created_at": m.get("created_at", store.utcnow()), "path": str(path),
        "engine": m.get("engine", "implicit"), "params": json.dumps(m.get("params", {}), sort_keys=True),
        "metrics": json.dumps(m.get("metrics", {}), sort_keys=True),
        "consent_snapshot": json.dumps(m.get("consent_snapshot", {}), sort_keys=True), "status": status,
    })


def set_status(db: sqlite_utils.Database, version: str, status: str) -> None:
    store.set_model_status(db, version, status)


def list_models(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = store.model_rows(db)
    for row in rows:
        for key in ("params", "metrics", "consent_snapshot"):
            row[key] = json.loads(row[key])
    return rows
