"""Versioned model artifacts on disk and the ``CURRENT`` pointer servers follow.

Layout under ``model_dir``::

    CURRENT                 one line: the published version
    <version>/              manifest.json, ids.json, user_factors.npy, item_factors.npy
    .tmp-<pid>-<version>/   an artifact being written by process <pid> (never loaded)
    .privacy.lock           held by whoever rewrites an artifact in place (:meth:`Registry.lock`)

Artifact files are written here and nowhere else: a new version
(:meth:`Registry.save`, :func:`publish`), an in-place rewrite under the lock
(:meth:`Registry.rewrite`, for privacy's reconciliation), the pointer; and the
versions on disk are listed here (:meth:`Registry.versions`, :meth:`Registry.artifacts`).

Publishing (:func:`publish`) is write → fsync → rename the directory → fsync the parent → write
``CURRENT.tmp`` → fsync → rename over ``CURRENT`` → fsync the parent. Each
rename is atomic, so a process killed at any instant leaves either the old
pointer or the new one, and both name a complete directory. A server never
sees a half-written model.

The ``models`` table is the registry's memory (metrics, gate, statuses); the
directories and ``CURRENT`` are the truth. A kill between two steps leaves them
disagreeing, so every command that opens the registry first calls
:func:`heal`: the version ``CURRENT`` names is ``published``, other published
ones are ``retired``, a directory without a row gets one from its manifest, a
row whose directory is gone is ``pruned``, and temporaries of dead processes
are deleted. :func:`prune` applies the retention; :func:`rollback` moves the
pointer back with the same atomic swap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.data import bulk
from recommender.durable import exclusive_lock, fsync_dir
from recommender.errors import ModelError, NotFoundError, ValidationError
from recommender.models.base import MANIFEST_FILE, Recommender, load_model, read_manifest

POINTER = "CURRENT"
LOCK_FILE = ".privacy.lock"  # the name predates the move from recommender.privacy: kept for running processes
_TEMP = re.compile(r"^\.tmp-(\d+)-")
# A temporary of a live process older than this is abandoned all the same (a hung job).
STALE_TEMP_SECONDS = 6 * 3600


def new_version() -> str:
    """Sortable and unique: UTC time to the second plus a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Registry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, version: str) -> Path:
        if not version or "/" in version or version.startswith("."):
            raise ModelError(f"bad model version {version!r}")
        return self.root / version

    def save(self, model: Recommender, version: str) -> Path:
        """Write a complete artifact under its final name (via a temporary directory)."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.path(version)
        if final.exists():
            raise ModelError(f"model {version} already exists")
        tmp = self.root / f".tmp-{os.getpid()}-{version}"
        shutil.rmtree(tmp, ignore_errors=True)
        model.manifest["version"] = version
        model.save(tmp)
        fsync_dir(tmp)
        os.rename(tmp, final)
        fsync_dir(self.root)
        return final

    def current_version(self) -> str | None:
        try:
            text = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def set_current(self, version: str) -> None:
        """Move the pointer; refuses a version that is incomplete or corrupt."""
        read_manifest(self.path(version))
        tmp = self.root / f"{POINTER}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(version + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / POINTER)
        fsync_dir(self.root)

    def load(self, version: str | None = None, *, mmap: bool = True) -> Recommender:
        version = version or self.current_version()
        if version is None:
            raise ModelError(f"no published model in {self.root} (run: recommender train --publish)")
        return load_model(self.path(version), mmap=mmap)

    def manifest(self, version: str, *, verify: bool = True) -> dict[str, Any]:
        return read_manifest(self.path(version), verify=verify)

    def remove(self, version: str) -> None:
        if version == self.current_version():
            raise ModelError(f"model {version} is current; publish another first")
        shutil.rmtree(self.path(version), ignore_errors=True)

    def versions(self) -> list[str]:
        """Artifact directories on disk (complete or not), oldest first by name."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def artifacts(self) -> list[Path]:
        """Every artifact directory with a manifest: all versions, candidates included, oldest first."""
        return [self.root / v for v in self.versions() if (self.root / v / MANIFEST_FILE).is_file()]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One rewriter of artifacts at a time (erasure, withdrawal refresh, a trainer's reconcile)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(self.root / LOCK_FILE, 0o600):
            yield

    def rewrite(self, version: str, model: Recommender) -> Path:
        """Replace an artifact's files with ``model``'s, file by file, manifest last; hold :meth:`lock`.

        Each file is written and fsynced beside its target, then renamed over it;
        the manifest (with the new checksums) goes last, so a reader that verifies
        checksums either loads the old artifact or the new one. Workers follow the
        manifest's change (see :class:`recommender.serving.service.LiveModel`).
        """
        directory = self.path(version)
        tmp = directory / f".rewrite-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            model.save(tmp)
            for name in model.files():
                os.replace(tmp / name, directory / name)
            os.replace(tmp / MANIFEST_FILE, directory / MANIFEST_FILE)
            fsync_dir(directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return directory

    def clean_temporary(self) -> int:
        """Delete leftovers of interrupted saves of dead (or long-hung) processes; never visible to servers.

        A temporary of a live process is another job's save in progress and is left alone.
        """
        if not self.root.exists():
            return 0
        removed = 0
        for p in self.root.iterdir():
            if p.name.startswith(".tmp-"):
                m = _TEMP.match(p.name)
                pid = int(m.group(1)) if m else None
                try:
                    age = time.time() - p.stat().st_mtime
                except FileNotFoundError:
                    continue
                if pid is not None and pid != os.getpid() and bulk.pid_alive(pid) and age < STALE_TEMP_SECONDS:
                    continue
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                removed += 1
            elif p.name == f"{POINTER}.tmp":
                p.unlink(missing_ok=True)
                removed += 1
        return removed


# --- the models table -----------------------------------------------------------


def record(db: sqlite_utils.Database, model: Recommender, path: Path, status: str) -> None:
    _record_manifest(db, model.manifest, path, status)


def _record_manifest(db: sqlite_utils.Database, m: dict[str, Any], path: Path, status: str) -> None:
    store.insert_model(
        db,
        {
            "version": m["version"],
            "created_at": m.get("created_at", store.utcnow()),
            "path": str(path),
            "engine": m.get("engine", "implicit"),
            "params": json.dumps(m.get("params", {}), sort_keys=True),
            "metrics": json.dumps(m.get("metrics", {}), sort_keys=True),
            "consent_snapshot": json.dumps(m.get("consent_snapshot", {}), sort_keys=True),
            "status": status,
            "gate": json.dumps(m.get("gate", {}), sort_keys=True),
        },
    )


def set_status(db: sqlite_utils.Database, version: str, status: str) -> None:
    store.set_model_status(db, version, status)


Check = Callable[[Path], Any]


def publish(
    db: sqlite_utils.Database,
    reg: Registry,
    model: Recommender,
    version: str,
    *,
    make_current: bool = True,
    check: Check | None = None,
) -> Path:
    """The tail of every publish: save the artifact, record its row, move ``CURRENT`` to it.

    Save is write, fsync, rename (:meth:`Registry.save`); the row is recorded as
    a ``candidate``; then, with ``make_current``, :func:`promote` moves the
    pointer and marks the row ``published``. With ``make_current=False`` the
    artifact stays a candidate for the caller to promote (or reject) later.

    ``check(path)`` runs on the saved directory before its row is recorded, and
    again right before the pointer moves: training passes privacy's
    reconciliation here (privacy sits above the registry, so it is handed in).
    """
    path = reg.save(model, version)
    if check is not None:
        check(path)
    record(db, model, path, "candidate")
    if make_current:
        promote(db, reg, version, check=check)
    return path


def promote(db: sqlite_utils.Database, reg: Registry, version: str, *, check: Check | None = None) -> None:
    """Serve a saved version: ``check`` it, move ``CURRENT`` (atomic swap, checksums verified), mark it published."""
    if check is not None:
        check(reg.path(version))
    reg.set_current(version)
    set_status(db, version, "published")


def list_models(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = store.model_rows(db)
    for row in rows:
        for key in ("params", "metrics", "consent_snapshot", "gate"):
            row[key] = json.loads(row[key])
    return rows


# --- keeping the registry true over time -----------------------------------------------


@dataclass
class Healed:
    temporaries: int = 0
    statuses: int = 0
    registered: list[str] | None = None
    missing: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "temporaries": self.temporaries,
            "statuses": self.statuses,
            "registered": self.registered or [],
            "missing": self.missing or [],
        }


def heal(db: sqlite_utils.Database, settings: Settings) -> Healed:
    """Reconcile the ``models`` table with the directories and ``CURRENT`` (see the module docstring)."""
    reg = Registry(settings.model_dir)
    healed = Healed(temporaries=reg.clean_temporary(), registered=[], missing=[])
    current = reg.current_version()
    rows = {r["version"]: r for r in store.model_rows(db)}
    on_disk = set(reg.versions())
    for version in sorted(on_disk - set(rows)):
        try:
            manifest = reg.manifest(version, verify=False)
        except ModelError:
            continue  # not an artifact of ours (or unreadable): never ours to register or delete
        manifest.setdefault("version", version)
        _record_manifest(db, manifest, reg.path(version), "published" if version == current else "candidate")
        healed.registered.append(version)
    for version, row in rows.items():
        # a rejected model's directory is deleted at refusal on purpose: its row stays "rejected"
        if version not in on_disk and row["status"] not in ("pruned", "rejected"):
            store.mark_pruned(db, version)
            healed.missing.append(version)
    healed.statuses = store.reconcile_model_statuses(db, current if current in on_disk else None)
    return healed


def _age_days(created_at: str, now: dt.datetime) -> float:
    try:
        when = dt.datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return float("inf")
    return (now - when).total_seconds() / 86400.0


def retained(db: sqlite_utils.Database, settings: Settings, now: dt.datetime | None = None) -> dict[str, str]:
    """Which versions the retention keeps, and why.

    The current model; the ``models.keep_previous`` most recent models published
    before it (the rollback targets); candidates and rejected models younger than
    ``models.max_age_days``. Nothing else: an older published model goes as soon
    as N newer ones exist, however young.
    """
    now = now or dt.datetime.now(dt.UTC)
    current = Registry(settings.model_dir).current_version()
    keep: dict[str, str] = {}
    if current:
        keep[current] = "current"
    rows = [r for r in store.model_rows(db) if r["status"] != "pruned"]  # newest first
    previous = [r for r in rows if r["status"] in ("published", "retired") and r["version"] != current]
    for r in previous[: settings.models.keep_previous]:
        keep.setdefault(r["version"], "rollback")
    for r in rows:  # never-published ones (candidates, rejected) stay a while for inspection
        if r["status"] in ("candidate", "rejected") and _age_days(r["created_at"], now) < settings.models.max_age_days:
            keep.setdefault(r["version"], "young")
    return keep


def prune(db: sqlite_utils.Database, settings: Settings, now: dt.datetime | None = None) -> dict[str, Any]:
    """Delete the artifact directories the retention does not keep; their rows stay, marked ``pruned``."""
    heal(db, settings)
    reg = Registry(settings.model_dir)
    keep = retained(db, settings, now)
    removed, freed = [], 0
    for version in reg.versions():
        if version in keep:
            continue
        if version not in {r["version"] for r in store.model_rows(db)}:
            continue  # not registered (not ours): left alone
        freed += _size(reg.path(version))
        shutil.rmtree(reg.path(version), ignore_errors=True)
        store.mark_pruned(db, version)
        removed.append(version)
    return {"removed": removed, "kept": keep, "bytes_freed": freed, "bytes_kept": _size(reg.root)}


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rollback(db: sqlite_utils.Database, settings: Settings, version: str) -> dict[str, Any]:
    """Serve an earlier published model again, through the same atomic pointer swap as a publish."""
    heal(db, settings)
    reg = Registry(settings.model_dir)
    rows = {r["version"]: r for r in store.model_rows(db)}
    row = rows.get(version)
    if row is None or row["status"] == "pruned":
        raise NotFoundError(f"no model {version!r} on disk (see `recommender models`)")
    if row["status"] not in ("published", "retired"):
        raise ValidationError(
            f"model {version} was never published (status {row['status']}); "
            f"only a model that passed the gate can be rolled back to"
        )
    previous = reg.current_version()
    promote(db, reg, version)  # verifies the checksums first
    return {"current": version, "previous": previous}
