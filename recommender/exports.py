"""Bulk exports of training data, so a Spark cluster reads shared storage instead of SQLite.

``export_interactions`` writes exactly what the trainer learns from: the
events of customers with ``personalization`` consent whose event type has a
configured weight (see :func:`recommender.interactions.load`, the only door
training data passes through), one row per event with its weight
(event-type weight × quantity, before time decay, which depends on the
reference time of each fit and is applied by the reader).

The layout is a Hive-partitioned Parquet dataset, one folder per calendar
month of event time (``month=2011-12/part-0.parquet``): a cluster job lists
and reads months in parallel, and a time window (the past of an evaluation
split, the last year) prunes whole folders. Customer and product ids are
dictionary-encoded, so repeated ids cost a few bytes per row.

An export is written beside its destination and swapped in whole, so a
reader never sees half of one; the summary lies in ``_export.json`` (files
starting with ``_`` are ignored by Spark and pyarrow readers).

An export is a copy of customer data, so it follows erasure: it notes the
privacy epoch before it reads, removes everyone erased or withdrawn since from
the staging folder before the swap, registers itself in ``copies`` (kind
``interactions_parquet``) and checks once more after; a later erasure rewrites
it without the customer's rows (:func:`remove_customers`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import sqlite_utils

from . import interactions, store
from .config import Settings
from .errors import ValidationError

FORMATS = ("parquet",)
MARKER = "_export.json"
SCHEMA = pa.schema([
    ("customer_id", pa.dictionary(pa.int32(), pa.string())),
    ("product_id", pa.dictionary(pa.int32(), pa.string())),
    ("event_type", pa.dictionary(pa.int16(), pa.string())),
    ("quantity", pa.float32()),
    ("weight", pa.float32()),
    ("occurred_at", pa.timestamp("ms", tz="UTC")),
    ("month", pa.string()),
])
ROWS_PER_FILE = 5_000_000
ROWS_PER_GROUP = 1_000_000


def interactions_table(data: interactions.Interactions) -> pa.Table:
    """The events of ``data`` as an Arrow table in :data:`SCHEMA` (ids decoded, a month column added)."""
    months = data.time.astype("datetime64[s]").astype("datetime64[M]")
    month_values, month_codes = np.unique(months, return_inverse=True)
    month_names = pa.array([str(m) for m in month_values], pa.string())

    def decoded(codes: np.ndarray, names: np.ndarray, index: type) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(index)), pa.array(names, pa.string()))

    return pa.table({
        "customer_id": decoded(data.user, data.user_ids, np.int32),
        "product_id": decoded(data.item, data.item_ids, np.int32),
        "event_type": decoded(data.event, data.event_types, np.int16),
        "quantity": pa.array(data.quantity.astype(np.float32)),
        "weight": pa.array(data.weight.astype(np.float32)),
        "occurred_at": pa.array(data.time.astype(np.int64) * 1000, pa.timestamp("ms", tz="UTC")),
        "month": month_names.take(pa.array(month_codes.astype(np.int32))),
    }, schema=SCHEMA)


def _replaceable(out: Path) -> bool:
    """Whether ``out`` may be overwritten: absent, an empty folder, or an earlier export."""
    if not out.exists():
        return True
    if not out.is_dir():
        return False
    return (out / MARKER).is_file() or not any(out.iterdir())


def export_interactions(db: sqlite_utils.Database, settings: Settings, out: str | os.PathLike, *,
                        format: str = "parquet") -> dict[str, Any]:
    """Write the consent-filtered, weighted interactions to the folder ``out``; returns a summary.

    ``out`` is replaced whole if it holds an earlier export; any other
    existing, non-empty path is refused rather than deleted.
    """
    if format not in FORMATS:
        raise ValidationError(f"unknown export format {format!r} (one of {', '.join(FORMATS)})")
    started = time.perf_counter()
    out = Path(out)
    if not _replaceable(out):
        raise ValidationError(f"{out} exists and is not an earlier export: choose a new or empty folder")
    from .privacy.reconcile import pending

    epoch = store.privacy_epoch(db)  # before reading: what happens after is reconciled below
    data = interactions.load(db, settings)
    table = interactions_table(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = _staging(out)
    try:
        _write(table, staging)
        months = sorted(table.column("month").unique().to_pylist())
        summary = {
            "path": str(out),
            "format": format,
            "rows": len(data),
            "customers": len(np.unique(data.user)),
            "products": len(np.unique(data.item)),
            "months": months,
            "first_event": _iso(int(data.time.min())) if len(data) else None,
            "last_event": _iso(int(data.time.max())) if len(data) else None,
            "event_weights": dict(settings.event_weights),
            "purpose": interactions.PERSONALIZATION,
            "created_at": store.utcnow(),
        }
        (staging / MARKER).write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")
        # Erasures and withdrawals recorded while we read and wrote leave the dataset before the swap.
        todo = pending(db, epoch)
        summary["removed_since_read"] = remove_customers(staging, _pending_ids(db, settings, data, todo), swap=False)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Registered after the swap, then reconciled once more: an erasure committed after the check
    # above either shows up here, or its scan of the copies (which follows its commit) finds `out`.
    store.register_copy(db, out, COPY_KIND)
    late = pending(db, todo.epoch)
    summary["removed_since_read"] += remove_customers(out, _pending_ids(db, settings, data, late))
    summary["privacy_epoch"] = late.epoch
    summary["rows"] -= summary["removed_since_read"]
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


COPY_KIND = "interactions_parquet"


def _staging(out: Path) -> Path:
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp's 0700 would hide the export from the cluster's user
    return staging


def _write(table: pa.Table, folder: Path) -> None:
    ds.write_dataset(
        table.sort_by("occurred_at"), folder, format="parquet",
        partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
        basename_template="part-{i}.parquet", max_rows_per_file=ROWS_PER_FILE,
        max_rows_per_group=ROWS_PER_GROUP, min_rows_per_group=min(ROWS_PER_GROUP, max(len(table), 1)),
        existing_data_behavior="overwrite_or_ignore",
    )


def _pending_ids(db: sqlite_utils.Database, settings: Settings, data: interactions.Interactions, todo) -> set[str]:
    """The exported customers that ``todo``'s erasures (by tombstone) and withdrawals name."""
    from .privacy.reconcile import subjects_of

    ids = [str(u) for u in data.user_ids]
    gone = {u for u in ids if u in todo.withdrawn}
    if todo.erased:
        gone |= {u for u, h in subjects_of(db, settings, ids).items() if h in todo.erased}
    return gone


def read_export(folder: str | os.PathLike) -> pa.Table:
    """An export's rows as one table in :data:`SCHEMA`."""
    dataset = ds.dataset(folder, format="parquet", partitioning="hive", exclude_invalid_files=True)
    table = dataset.to_table()
    columns = {name: table.column(name) for name in SCHEMA.names}
    columns["month"] = columns["month"].cast(pa.string())
    return pa.table({n: (c.cast(pa.string()).dictionary_encode() if pa.types.is_dictionary(SCHEMA.field(n).type)
                         else c) for n, c in columns.items()}).cast(SCHEMA)


def _reencoded(table: pa.Table) -> pa.Table:
    """The same rows with dictionaries rebuilt from the values left: a filter keeps the old
    dictionary, and Parquet writes it whole, so removed ids would stay in every file."""
    return pa.table({name: (table.column(name).combine_chunks().cast(pa.string()).dictionary_encode()
                            if pa.types.is_dictionary(SCHEMA.field(name).type) else table.column(name))
                     for name in SCHEMA.names}).cast(SCHEMA)


def remove_customers(folder: str | os.PathLike, customer_ids: set[str], *, swap: bool = True) -> int:
    """Rewrite an export without ``customer_ids``' rows; returns how many rows went.

    With ``swap`` (an export in place) the new dataset is written beside it and
    swapped in whole, like a fresh export; without (a staging folder nobody
    reads yet) it is rewritten in place.
    """
    folder = Path(folder)
    if not customer_ids or not folder.is_dir():
        return 0
    table = read_export(folder)
    keep = pc.invert(pc.is_in(table.column("customer_id").cast(pa.string()),
                              value_set=pa.array(sorted(customer_ids), pa.string())))
    kept = _reencoded(table.filter(keep))
    removed = len(table) - len(kept)
    if removed == 0:
        return 0
    marker = json.loads((folder / MARKER).read_text(encoding="utf-8")) if (folder / MARKER).is_file() else {}
    marker["rows"] = len(kept)
    marker["customers"] = len(pc.unique(kept.column("customer_id").cast(pa.string())))
    staging = _staging(folder)
    try:
        _write(kept, staging)
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
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
