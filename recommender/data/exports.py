"""Bulk exports of training data, so a Spark cluster reads shared storage instead of SQLite.

``export_interactions`` writes what the trainer learns from: the events of
customers with ``personalization`` consent whose event type has a positive
configured weight, one row per event with its weight (event-type weight ×
quantity, before time decay, which depends on the reference time of each fit
and is applied by the reader) and its ``event_id`` (the row id in SQLite).
Rows dated in the future are exported too: the trainer leaves them out and
counts them against its own clock, as the driver path does.

Layout
------
A Hive-partitioned Parquet dataset, one folder per calendar month of event
time (``month=2011-12/part-<run>-<n>.parquet``), plus, at the top:

* ``_export.json`` -- the manifest: the files that make up the export (with
  their row counts and id ranges), the watermarks, the event weights and the
  privacy epoch. **The manifest is the export**: a file it does not list is
  not part of it (readers here and the Spark trainer read only listed files).
* ``_customers-<run>.parquet`` -- who had consent at the last run, so the next
  run can tell who withdrew (rows to remove) and who granted (history to add).
* ``_export.lock`` -- one writer at a time (export runs, erasure scrubs).

Files starting with ``_`` are ignored by Spark and pyarrow readers.

Incremental runs (``incremental=True``) append only what changed since the
manifest was written, all read from one SQLite snapshot:

* rows with ``id`` above the watermark (insertion order, not event time: an
  event dated last year but inserted today is above it and is not lost);
* the whole history of customers who granted consent since the last run;
* rows whose quantity changed after they were exported (a re-import replaces
  an imported row's quantity; live events are never changed; the
  ``interaction_updates`` log filled by a trigger): the old copy is removed
  and the new one appended;
* customers who withdrew or were erased since lose their rows: every file
  holding one of their rows is rewritten without them (the data really leaves
  the disk; no tombstone applied by readers).

Crash safety: new and rewritten files get new names and are written before
the manifest, which is replaced atomically (write, fsync, rename) last;
replaced files are deleted after. A run killed at any point leaves the
previous manifest and every file it lists intact, so the previous export stays
usable; the files a killed run left behind are not listed and are deleted by
the next run. A full export (the default) is built in a staging folder and
swapped in whole. Running either twice in a row is harmless: the second
incremental run finds nothing new.

An export is a copy of customer data, so it follows erasure: it notes the
privacy epoch before it reads, registers itself in ``copies`` (kind
``interactions_parquet``) and removes everyone erased or withdrawn since the
read; a later erasure rewrites the files holding the customer's rows
(:func:`remove_customers`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.durable import exclusive_lock, fsync_dir
from recommender.errors import ValidationError
from recommender.store.consents import PERSONALIZATION
from recommender.store.privacy import pending
from recommender.store.tombstones import subjects_of

FORMATS = ("parquet",)
MARKER = "_export.json"
LOCK = "_export.lock"
LAYOUT = 2  # manifest with a file list and watermarks (1: a folder read whole, no event_id)
COPY_KIND = "interactions_parquet"
SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("customer_id", pa.dictionary(pa.int32(), pa.string())),
        ("product_id", pa.dictionary(pa.int32(), pa.string())),
        ("event_type", pa.dictionary(pa.int16(), pa.string())),
        ("quantity", pa.float32()),
        ("weight", pa.float32()),
        ("occurred_at", pa.timestamp("ms", tz="UTC")),
        ("month", pa.string()),
    ]
)
FILE_SCHEMA = pa.schema([f for f in SCHEMA if f.name != "month"])  # month lives in the folder name
FETCH_ROWS = 250_000  # rows fetched from SQLite at a time (as Python tuples: keep it modest)
CHUNK_ROWS = 1_000_000  # rows buffered before they are written, one file per month
ROWS_PER_GROUP = 1_000_000


# --- reading SQLite ---------------------------------------------------------------------------------------


def _weighted_types(settings: Settings) -> list[str]:
    return sorted(t for t, w in settings.event_weights.items() if w > 0)


def _to_table(rows: list[tuple], settings: Settings) -> pa.Table:
    """Rows of the store's export reads (:func:`store.export_rows_between`...) as a table in :data:`SCHEMA`
    (weights and months computed here)."""
    if not rows:
        return SCHEMA.empty_table()
    ids, customers, products, types, quantity, when = zip(*rows)
    types_arr = pa.array(types, pa.string())
    names, codes = np.unique(np.array(types, dtype=object), return_inverse=True)
    by_type = np.array([settings.event_weights.get(t, 0.0) for t in names], dtype=np.float32)
    qty = np.array(quantity, dtype=np.float32)
    seconds = np.array(when, dtype=np.int64)
    months = seconds.astype("datetime64[s]").astype("datetime64[M]").astype(str)
    return pa.table(
        {
            "event_id": pa.array(ids, pa.int64()),
            "customer_id": pa.array(customers, pa.string()).dictionary_encode(),
            "product_id": pa.array(products, pa.string()).dictionary_encode(),
            "event_type": types_arr.dictionary_encode(),
            "quantity": pa.array(qty),
            "weight": pa.array((by_type[codes] * qty).astype(np.float32)),
            "occurred_at": pa.array(seconds * 1000, pa.timestamp("ms", tz="UTC")),
            "month": pa.array(months, pa.string()),
        }
    ).cast(SCHEMA)


def _chunks(
    db: sqlite_utils.Database, settings: Settings, read: Callable[..., sqlite3.Cursor], *params: Any
) -> Iterator[pa.Table]:
    """Consenting customers' weighted events as ``read`` (a store export read) selects them, ``FETCH_ROWS``
    at a time."""
    types = _weighted_types(settings)
    if not types:
        return
    cursor = read(db, PERSONALIZATION, types, *params)
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            break
        yield _to_table(rows, settings)


# --- the manifest and its files ---------------------------------------------------------------------------


def read_marker(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of an export, or None when ``folder`` holds none."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _write_marker(folder: Path, marker: dict[str, Any]) -> None:
    """Replace the manifest atomically: the commit point of every change to an export."""
    if "files" in marker:
        marker["rows"] = sum(e["rows"] for e in marker["files"])
    tmp = folder / f".{MARKER}.{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(marker, indent=2, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MARKER)
    fsync_dir(folder)


def _locked(folder: Path) -> contextlib.AbstractContextManager[None]:
    """One writer of an export at a time (an export run, an erasure scrub)."""
    return exclusive_lock(folder / LOCK, 0o644)


def _write_file(folder: Path, relative: str, table: pa.Table) -> dict[str, Any]:
    """One Parquet file of an export (ids re-encoded, sorted by event time); returns its manifest entry."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    table = _reencoded(table).sort_by("occurred_at")
    pq.write_table(table.select(FILE_SCHEMA.names).cast(FILE_SCHEMA), path, row_group_size=ROWS_PER_GROUP)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    times = table.column("occurred_at").cast(pa.int64())
    ids = table.column("event_id")
    return {
        "path": relative,
        "rows": table.num_rows,
        "min_id": pc.min(ids).as_py(),
        "max_id": pc.max(ids).as_py(),
        "first_ms": pc.min(times).as_py(),
        "last_ms": pc.max(times).as_py(),
    }


def _read_file(folder: Path, entry: dict[str, Any]) -> pa.Table:
    table = pq.read_table(folder / entry["path"])
    month = entry["path"].split("/", 1)[0].split("=", 1)[1]
    return table.append_column("month", pa.array([month] * table.num_rows, pa.string()))


def _reencoded(table: pa.Table) -> pa.Table:
    """The same rows with dictionaries rebuilt from the values left: a filter keeps the old
    dictionary, and Parquet writes it whole, so removed ids would stay in every file."""
    return pa.table(
        {
            name: (
                table.column(name).combine_chunks().cast(pa.string()).dictionary_encode()
                if pa.types.is_dictionary(SCHEMA.field(name).type)
                else table.column(name)
            )
            for name in SCHEMA.names
        }
    ).cast(SCHEMA)


def _write_customers(folder: Path, run: str, customer_ids: list[str]) -> str:
    name = f"_customers-{run}.parquet"
    pq.write_table(pa.table({"customer_id": pa.array(sorted(customer_ids), pa.string())}), folder / name)
    return name


def _read_customers(folder: Path, marker: dict[str, Any]) -> set[str]:
    name = marker.get("customers_file")
    if not name:
        return set()
    return set(pq.read_table(folder / name).column("customer_id").to_pylist())


def _remove_orphans(folder: Path, marker: dict[str, Any] | None) -> int:
    """Delete data files the manifest does not list (left by a run killed before its commit)."""
    listed = {e["path"] for e in (marker or {}).get("files", [])}
    if marker and marker.get("customers_file"):
        listed.add(marker["customers_file"])
    removed = 0
    for path in folder.rglob("*.parquet"):
        relative = path.relative_to(folder).as_posix()
        if relative not in listed:
            path.unlink()
            removed += 1
    for sub in folder.iterdir():
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    return removed


def export_files(folder: str | os.PathLike) -> list[str]:
    """Absolute paths of the data files an export consists of (what a reader must read)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None or marker.get("layout") != LAYOUT:
        return [str(p) for p in sorted(folder.rglob("*.parquet")) if not p.name.startswith(("_", "."))]
    return [str(folder / e["path"]) for e in marker["files"]]


def read_export(folder: str | os.PathLike) -> pa.Table:
    """An export's rows as one table in :data:`SCHEMA` (only the files its manifest lists)."""
    folder = Path(folder)
    marker = read_marker(folder)
    if marker is None or marker.get("layout") != LAYOUT:  # an export of the first layout: the folder whole
        table = ds.dataset(folder, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
        columns = {n: table.column(n) for n in SCHEMA.names if n in table.column_names}
        columns["month"] = columns["month"].cast(pa.string())
        schema = pa.schema([f for f in SCHEMA if f.name in columns])
        return pa.table(
            {
                n: (c.cast(pa.string()).dictionary_encode() if pa.types.is_dictionary(schema.field(n).type) else c)
                for n, c in columns.items()
            }
        ).cast(schema)
    parts = [_read_file(folder, e) for e in marker["files"]]
    return _reencoded(pa.concat_tables(parts)) if parts else SCHEMA.empty_table()


# --- export --------------------------------------------------------------------------------------------------


def _replaceable(out: Path) -> bool:
    """Whether ``out`` may be overwritten: absent, an empty folder, or an earlier export."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    return (out / MARKER).is_file() or not any(out.iterdir())


def export_interactions(
    db: sqlite_utils.Database,
    settings: Settings,
    out: str | os.PathLike,
    *,
    format: str = "parquet",
    incremental: bool = False,
) -> dict[str, Any]:
    """Write the consent-filtered, weighted interactions to the folder ``out``; returns a summary.

    Without ``incremental`` (or when ``out`` holds no export of this layout, or
    one written with other event weights) the export is rebuilt in a staging
    folder and swapped in whole. With it, only the changes since the last run
    are applied in place (see the module docs). Any other existing, non-empty
    path is refused rather than deleted.
    """
    if format not in FORMATS:
        raise ValidationError(f"unknown export format {format!r} (one of {', '.join(FORMATS)})")
    started = time.perf_counter()
    out = Path(out)
    if not _replaceable(out):
        raise ValidationError(f"{out} exists and is not an earlier export: choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)

    previous = read_marker(out) if out.is_dir() else None
    reason = _full_reason(previous, settings) if incremental else "full export requested"
    if reason is None:
        with _locked(out):
            epoch = store.privacy_epoch(db)  # before reading: what happens after is reconciled below
            summary = _apply_changes(db, settings, out, read_marker(out))
    else:
        epoch = store.privacy_epoch(db)
        staging = _staging(out)
        try:
            summary = _apply_changes(db, settings, staging, None)
            _swap(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    summary["mode"] = "incremental" if reason is None else "full"
    if reason is not None and incremental:
        summary["full_because"] = reason
    # Registered, then reconciled: an erasure committed after our read either shows up here, or its
    # scan of the copies (which follows its commit) finds `out`.
    store.register_copy(db, out, COPY_KIND)
    todo = pending(db, epoch)
    summary["removed_since_read"] = remove_customers(out, _pending_ids(db, settings, out, todo))
    with _locked(out):
        marker = read_marker(out) or {}
        marker["privacy_epoch"] = max(todo.epoch, int(marker.get("privacy_epoch", 0)))
        _write_marker(out, marker)
    _prune_update_log(db)
    summary.update(
        _describe(out, marker),
        path=str(out),
        format=format,
        privacy_epoch=marker["privacy_epoch"],
        seconds=round(time.perf_counter() - started, 3),
    )
    return summary


def _full_reason(marker: dict[str, Any] | None, settings: Settings) -> str | None:
    """Why an incremental run must rebuild the export instead (None: it can append)."""
    if marker is None:
        return "no earlier export"
    if marker.get("layout") != LAYOUT:
        return "the earlier export has the first layout (no manifest of files)"
    weighted = {t: w for t, w in settings.event_weights.items() if w > 0}
    if marker.get("event_weights") != weighted:
        return "the event weights changed since the earlier export"
    return None


def _apply_changes(
    db: sqlite_utils.Database, settings: Settings, folder: Path, marker: dict[str, Any] | None
) -> dict[str, Any]:
    """Bring the export in ``folder`` (described by ``marker``; None = empty) up to date with the database."""
    run = f"{int(time.time())}-{uuid.uuid4().hex[:8]}"
    marker = marker or {"layout": LAYOUT, "files": [], "watermark": 0, "update_watermark": 0, "customers_file": None}
    orphans = _remove_orphans(folder, marker)
    watermark, update_watermark = int(marker["watermark"]), int(marker["update_watermark"])
    before = _read_customers(folder, marker)
    stats = {"appended": 0, "regranted_rows": 0, "updated_rows": 0, "withdrawn_rows": 0, "orphans_removed": orphans}
    new_files: list[dict[str, Any]] = []
    pending_tables: dict[str, list[pa.Table]] = {}
    buffered = 0

    def flush() -> None:
        nonlocal buffered
        for month, tables in sorted(pending_tables.items()):
            relative = f"month={month}/part-{run}-{len(new_files)}.parquet"
            new_files.append(_write_file(folder, relative, pa.concat_tables(tables)))
        pending_tables.clear()
        buffered = 0

    def add(table: pa.Table) -> None:
        nonlocal buffered
        months = table.column("month")
        for month in pc.unique(months).to_pylist():
            pending_tables.setdefault(month, []).append(table.filter(pc.equal(months, month)))
        buffered += table.num_rows
        if buffered >= CHUNK_ROWS:
            flush()

    with store.read_transaction(db):  # one snapshot for everything below
        high, update_high = store.export_watermarks(db)
        now = set(store.consenting_customers(db, PERSONALIZATION))
        granted = sorted(now - before) if watermark else []
        gone = before - now
        updated = store.updated_interactions(db, update_watermark, update_high, watermark)
        for table in _chunks(db, settings, store.export_rows_between, watermark, high):
            stats["appended"] += table.num_rows
            add(table)
        if granted:  # their history below the watermark was left out while they had no consent
            for table in _chunks(db, settings, store.export_rows_of_customers, watermark, granted):
                stats["regranted_rows"] += table.num_rows
                add(table)
        if updated:  # the new version of rows exported before their quantity changed
            for table in _chunks(db, settings, store.export_rows_by_id, updated, granted):
                stats["updated_rows"] += table.num_rows
                add(table)
    flush()
    kept, rewritten, removed = _without(folder, marker["files"], gone, set(updated), run)
    stats["withdrawn_rows"] = removed["customers"]
    customers_file = _write_customers(folder, run, sorted(now))
    new_marker = {
        **{k: v for k, v in marker.items() if k not in ("files", "customers_file")},
        "layout": LAYOUT,
        "files": kept + rewritten + new_files,
        "customers_file": customers_file,
        "watermark": high,
        "update_watermark": update_high,
        "purpose": PERSONALIZATION,
        "event_weights": {t: w for t, w in settings.event_weights.items() if w > 0},
        "created_at": marker.get("created_at") or store.utcnow(),
        "updated_at": store.utcnow(),
    }
    _write_marker(folder, new_marker)  # the commit
    _remove_orphans(folder, new_marker)  # the files it replaced
    return stats


def _without(
    folder: Path, files: list[dict[str, Any]], customers: set[str], event_ids: set[int], run: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """Split ``files`` into untouched ones and rewritten copies without ``customers``' rows and ``event_ids``.

    Returns (kept entries, new entries, rows removed by customer and by id). Files
    whose id range cannot hold any of ``event_ids`` are only read (one column)
    when there are customers to remove.
    """
    kept, rewritten = [], []
    removed = {"customers": 0, "ids": 0}
    ids = np.array(sorted(event_ids), dtype=np.int64)
    gone = pa.array(sorted(customers), pa.string())
    for n, entry in enumerate(files):
        in_range = len(ids) and np.any((ids >= entry["min_id"]) & (ids <= entry["max_id"]))
        if not customers and not in_range:
            kept.append(entry)
            continue
        table = _read_file(folder, entry)
        drop_customer = pc.is_in(table.column("customer_id").cast(pa.string()), value_set=gone)
        drop_id = pc.is_in(table.column("event_id"), value_set=pa.array(ids, pa.int64()))
        drop = pc.or_(drop_customer, drop_id)
        dropped = pc.sum(drop.cast(pa.int64())).as_py() or 0
        if dropped == 0:
            kept.append(entry)
            continue
        removed["customers"] += pc.sum(drop_customer.cast(pa.int64())).as_py() or 0
        removed["ids"] += dropped
        left = table.filter(pc.invert(drop))
        if left.num_rows:
            month = entry["path"].split("/", 1)[0]
            rewritten.append(_write_file(folder, f"{month}/part-{run}-r{n}.parquet", left))
    return kept, rewritten, removed


def _describe(folder: Path, marker: dict[str, Any]) -> dict[str, Any]:
    """Rows, customers, products, months and time range of an export, from its manifest and id columns."""
    files = marker.get("files", [])
    customers: set[str] = set()
    products: set[str] = set()
    for entry in files:
        table = pq.read_table(folder / entry["path"], columns=["customer_id", "product_id"])
        for column, bag in (("customer_id", customers), ("product_id", products)):
            for chunk in table.column(column).chunks:
                bag.update(chunk.dictionary.to_pylist())
    first = min((e["first_ms"] for e in files), default=None)
    last = max((e["last_ms"] for e in files), default=None)
    return {
        "rows": sum(e["rows"] for e in files),
        "files": len(files),
        "customers": len(customers),
        "products": len(products),
        "months": sorted({e["path"].split("/", 1)[0][len("month=") :] for e in files}),
        "first_event": _iso(first // 1000) if first is not None else None,
        "last_event": _iso(last // 1000) if last is not None else None,
        "watermark": marker.get("watermark"),
        "event_weights": marker.get("event_weights"),
        "purpose": PERSONALIZATION,
    }


def _prune_update_log(db: sqlite_utils.Database) -> None:
    """Forget quantity changes every registered export has applied (the log serves exports only)."""
    marks = []
    for entry in store.registered_copies(db):
        if entry["kind"] != COPY_KIND:
            continue
        marker = read_marker(entry["path"]) if Path(entry["path"]).is_dir() else None
        if marker is None or marker.get("layout") != LAYOUT:
            continue
        marks.append(int(marker.get("update_watermark", 0)))
    if marks:
        store.prune_interaction_updates(db, min(marks))


def _staging(out: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the export from the cluster's user
    return staging


def _pending_ids(db: sqlite_utils.Database, settings: Settings, out: Path, todo) -> set[str]:
    """The exported customers that ``todo``'s erasures (by tombstone) and withdrawals name."""

    if not todo.erased and not todo.withdrawn:
        return set()
    # The consent list of the last run holds everyone whose rows the files hold (and maybe more).
    ids = sorted(_read_customers(out, read_marker(out) or {}))
    gone = {u for u in ids if u in todo.withdrawn}
    if todo.erased:
        gone |= {u for u, h in subjects_of(db, settings, ids).items() if h in todo.erased}
    return gone


# --- erasure --------------------------------------------------------------------------------------------------


def remove_customers(folder: str | os.PathLike, customer_ids: set[str], *, swap: bool = True) -> int:
    """Rewrite the files of an export that hold ``customer_ids``' rows without them; returns how many rows went.

    The customers also leave the consent list the next incremental run compares
    with. Files without their rows are not touched. ``swap`` only matters for an
    export of the first layout, which is rewritten whole.
    """
    folder = Path(folder)
    if not customer_ids or not folder.is_dir():
        return 0
    marker = read_marker(folder)
    if marker is None or marker.get("layout") != LAYOUT:
        return _remove_customers_whole(folder, customer_ids, swap=swap)
    with _locked(folder):
        marker = read_marker(folder) or marker
        _remove_orphans(folder, marker)
        run = f"{int(time.time())}-{uuid.uuid4().hex[:8]}"
        kept, rewritten, removed = _without(folder, marker["files"], set(customer_ids), set(), run)
        listed = _read_customers(folder, marker)
        changed = bool(rewritten) or len(kept) < len(marker["files"])
        if listed & set(customer_ids):
            marker["customers_file"] = _write_customers(folder, run, sorted(listed - set(customer_ids)))
            changed = True
        if changed:
            marker["files"] = kept + rewritten
            marker["updated_at"] = store.utcnow()
            _write_marker(folder, marker)
            _remove_orphans(folder, marker)
    return removed["customers"]


def _remove_customers_whole(folder: Path, customer_ids: set[str], *, swap: bool) -> int:
    """:func:`remove_customers` for an export of the first layout: read whole, rewritten whole."""
    table = read_export(folder)
    keep = pc.invert(
        pc.is_in(table.column("customer_id").cast(pa.string()), value_set=pa.array(sorted(customer_ids), pa.string()))
    )
    kept = table.filter(keep)
    removed = len(table) - len(kept)
    if removed == 0:
        return 0
    marker = read_marker(folder) or {}
    marker["rows"] = len(kept)
    marker["customers"] = len(pc.unique(kept.column("customer_id").cast(pa.string())))
    staging = _staging(folder)
    try:
        ds.write_dataset(
            pa.table(
                {
                    n: (
                        kept.column(n).combine_chunks().cast(pa.string()).dictionary_encode()
                        if pa.types.is_dictionary(kept.schema.field(n).type)
                        else kept.column(n)
                    )
                    for n in kept.column_names
                }
            ).cast(kept.schema),
            staging,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
            basename_template="part-{i}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
        (staging / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True), encoding="utf-8")
        if swap:
            _swap(staging, folder)
        else:
            for child in folder.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            for child in staging.iterdir():
                child.rename(folder / child.name)
            staging.rmdir()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return removed


def _swap(staging: Path, out: Path) -> None:
    """Put ``staging`` where ``out`` is: two renames, the old export deleted after."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
