"""CSV imports: validate every row first, then write everything in one transaction.

A shop's data arrives as spreadsheet exports with the usual defects. Half an
import is worse than none (the model would train on a catalogue that matches no
real state), so a file with one bad row writes nothing and says
``FILE:LINE: reason``. Writes are keyed (ids, and the natural key of an event),
so importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import sqlite_utils

from . import store
from .config import Settings
from .errors import ValidationError
from .privacy import derived  # privacy2: derived data
from .values import (
    check_timezone,
    iso_utc,
    normalise_id,
    parse_date,
    parse_datetime,
    parse_flag,
    parse_int,
    parse_number,
    to_epoch,
)

KINDS = ("customers", "products", "interactions", "consents")
REQUIRED = {
    "customers": ("id",),
    "products": ("id", "name"),
    "interactions": ("customer_id", "product_id", "event_type", "occurred_at"),
    "consents": ("customer_id", "purpose", "granted"),
}
MAX_ERRORS_LISTED = 1


@dataclass
class ImportResult:
    kind: str
    file: str
    rows: int = 0
    new: int = 0
    changed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Errors:
    """Collects row errors so the message names the first one and counts the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, reason: str) -> None:
        self.items.append(f"{self.path}:{line}: {reason}")

    def raise_if_any(self) -> None:
        if self.items:
            extra = len(self.items) - 1
            more = f" (and {extra} more bad row{'s' if extra != 1 else ''}; nothing was imported)" if extra else " (nothing was imported)"
            raise ValidationError(self.items[0] + more)


def open_text(path: Path) -> io.TextIOBase:
    """Open a CSV, transparently decompressing ``.gz``."""
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _rows(path: Path, required: Sequence[str], progress: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` with blank cells as empty strings."""
    with open_text(path) as fh:
        reader = csv.DictReader(fh)
        try:
            header = reader.fieldnames or []
        except (UnicodeDecodeError, gzip.BadGzipFile, csv.Error) as exc:
            raise ValidationError(f"{path}:1: unreadable CSV ({exc})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise ValidationError(f"{path}:1: missing column(s) {', '.join(missing)}")
        bar = _progress(progress, path)
        try:
            for row in reader:
                bar.update(1)
                yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}
        except (UnicodeDecodeError, gzip.BadGzipFile, csv.Error, EOFError) as exc:
            raise ValidationError(f"{path}:{reader.line_num}: unreadable CSV ({exc})") from None
        finally:
            bar.close()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(enabled: bool, path: Path) -> Any:
    """A tqdm bar on an interactive terminal only; cron logs and --json output stay clean."""
    if not enabled or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(desc=f"reading {path.name}", unit=" rows", unit_scale=True, mininterval=0.5, file=sys.stderr)


def _optional(row: dict[str, str], column: str) -> str | None:
    value = row.get(column, "")
    return value if value != "" else None


# --- one parser per kind ---------------------------------------------------------


def _parse_customers(db, path, settings, progress):
    errors, seen, out = _Errors(path), {}, []
    now = store.utcnow()
    for line, row in _rows(path, REQUIRED["customers"], progress):
        try:
            cid = normalise_id(row["id"])
            if not cid:
                raise ValueError("missing id")
            if cid in seen:
                raise ValueError(f"duplicate id {cid!r} (first on line {seen[cid]})")
            seen[cid] = line
            email = _optional(row, "email")
            if email is not None and ("@" not in email or " " in email):
                raise ValueError(f"bad email {email!r}")
            birth = _optional(row, "birth_date")
            anniversary = _optional(row, "anniversary_date")
            tz = check_timezone(_optional(row, "timezone") or "UTC")
            created = _optional(row, "created_at")
            out.append((
                cid, email, _optional(row, "name"),
                parse_date(birth).isoformat() if birth else None,
                parse_date(anniversary).isoformat() if anniversary else None,
                tz, iso_utc(parse_datetime(created)) if created else now,
            ))
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


def _parse_products(db, path, settings, progress):
    errors, seen, out = _Errors(path), {}, []
    for line, row in _rows(path, REQUIRED["products"], progress):
        try:
            pid = normalise_id(row["id"])
            if not pid:
                raise ValueError("missing id")
            if pid in seen:
                raise ValueError(f"duplicate id {pid!r} (first on line {seen[pid]})")
            seen[pid] = line
            if not row["name"]:
                raise ValueError("missing name")
            price = _optional(row, "price")
            stock = _optional(row, "in_stock")
            hidden = _optional(row, "hidden")
            until = _optional(row, "available_until")
            out.append((
                pid, row["name"], _optional(row, "category"),
                parse_number(price, what="price", minimum=0) if price else None,
                parse_int(stock, what="in_stock", minimum=0) if stock else None,
                int(parse_flag(hidden, what="hidden")) if hidden else 0,
                parse_date(until).isoformat() if until else None,
            ))
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


def _parse_interactions(db, path, settings, progress):
    errors = _Errors(path)
    customers = store.existing_ids(db, "customers")
    products = store.existing_ids(db, "products")
    event_types = set(settings.event_types)
    merged: dict[tuple[str, str, str, int], float] = {}
    stamp_cache: dict[str, int] = {}
    for line, row in _rows(path, REQUIRED["interactions"], progress):
        try:
            cid = normalise_id(row["customer_id"])
            pid = normalise_id(row["product_id"])
            if not cid:
                raise ValueError("missing customer_id")
            if not pid:
                raise ValueError("missing product_id")
            if cid not in customers:
                raise ValueError(f"unknown customer {cid!r}")
            if pid not in products:
                raise ValueError(f"unknown product {pid!r}")
            event = row["event_type"]
            if event not in event_types:
                raise ValueError(f"unknown event type {event!r} (known: {', '.join(sorted(event_types))})")
            quantity = row.get("quantity", "")
            qty = parse_number(quantity, what="quantity", minimum=0, exclusive=True) if quantity else 1.0
            stamp = row["occurred_at"]
            when = stamp_cache.get(stamp)
            if when is None:
                when = stamp_cache[stamp] = to_epoch(parse_datetime(stamp))
            key = (cid, pid, event, when)
            merged[key] = merged.get(key, 0.0) + qty
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return [(c, p, e, q, t) for (c, p, e, t), q in merged.items()]


def _parse_consents(db, path, settings, progress):
    errors, seen, out = _Errors(path), {}, []
    customers = store.existing_ids(db, "customers")
    purposes = set(settings.consent_purposes)
    now = store.utcnow()
    for line, row in _rows(path, REQUIRED["consents"], progress):
        try:
            cid = normalise_id(row["customer_id"])
            if not cid:
                raise ValueError("missing customer_id")
            if cid not in customers:
                raise ValueError(f"unknown customer {cid!r}")
            purpose = row["purpose"]
            if purpose not in purposes:
                raise ValueError(f"unknown purpose {purpose!r} (known: {', '.join(sorted(purposes))})")
            if (cid, purpose) in seen:
                raise ValueError(f"duplicate consent for {cid!r}/{purpose} (first on line {seen[cid, purpose]})")
            seen[cid, purpose] = line
            granted = parse_flag(row["granted"], what="granted")
            updated = _optional(row, "updated_at")
            out.append((cid, purpose, granted, iso_utc(parse_datetime(updated)) if updated else now,
                        _optional(row, "source") or "import"))
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


_PARSERS: dict[str, Callable[..., list]] = {
    "customers": _parse_customers,
    "products": _parse_products,
    "interactions": _parse_interactions,
    "consents": _parse_consents,
}


def import_file(
    db: sqlite_utils.Database, kind: str, path: str | Path, settings: Settings, *, progress: bool = False
) -> ImportResult:
    """Import one CSV (or ``.csv.gz``) of ``kind``; all rows or none."""
    if kind not in _PARSERS:
        raise ValidationError(f"unknown import kind {kind!r} (one of {', '.join(KINDS)})")
    path = Path(path)
    started = time.perf_counter()
    rows = _PARSERS[kind](db, path, settings, progress)
    result = ImportResult(kind=kind, file=str(path), rows=len(rows))
    with store.transaction(db):
        if kind == "customers":
            before = store.existing_ids(db, "customers")
            store.upsert_customers(db, rows)
            result.new = sum(1 for r in rows if r[0] not in before)
        elif kind == "products":
            before = store.existing_ids(db, "products")
            store.upsert_products(db, rows)
            result.new = sum(1 for r in rows if r[0] not in before)
        elif kind == "interactions":
            result.new = store.upsert_interactions(db, rows)
        else:
            result.changed = store.set_consents(db, rows)
    if kind == "consents":
        derived.follow(db, settings)  # privacy2: derived data
    result.seconds = round(time.perf_counter() - started, 3)
    return result


SAMPLE_FILES = (
    ("customers", "customers.csv"),
    ("products", "products.csv"),
    ("interactions", "interactions.csv.gz"),
    ("consents", "consents.csv"),
)


def default_sample_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "sample_data"


def load_sample(db: sqlite_utils.Database, settings: Settings, directory: str | Path | None = None) -> list[ImportResult]:
    """Load the bundled demo shop (all four files, in one transaction)."""
    directory = Path(directory) if directory else default_sample_dir()
    if not directory.is_dir():
        raise ValidationError(f"{directory}: sample data folder not found")
    with store.transaction(db):
        return [import_file(db, kind, directory / name, settings) for kind, name in SAMPLE_FILES]


# --- raw order exports ---------------------------------------------------------------

DEFAULT_MAPPING = {
    "customer": "CustomerID",
    "product": "StockCode",
    "quantity": "Quantity",
    "occurred_at": "InvoiceDate",
    "price": "UnitPrice",
    "name": "Description",
    "order": "InvoiceNo",
}
REQUIRED_TARGETS = ("customer", "product", "occurred_at")


def parse_mapping(text: str | None) -> dict[str, str]:
    """``customer=CustomerID,product=StockCode`` over the defaults; an empty column name unmaps a field."""
    mapping = dict(DEFAULT_MAPPING)
    if not text:
        return mapping
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValidationError(f"bad --map item {item!r} (want field=Column)")
        key, column = (s.strip() for s in item.split("=", 1))
        if key not in DEFAULT_MAPPING:
            raise ValidationError(f"unknown --map field {key!r} (known: {', '.join(DEFAULT_MAPPING)})")
        if not column:
            if key in REQUIRED_TARGETS:
                raise ValidationError(f"--map field {key!r} is required")
            mapping.pop(key)
        else:
            mapping[key] = column
    return mapping


def import_transactions(
    db: sqlite_utils.Database,
    path: str | Path,
    settings: Settings,
    *,
    mapping: dict[str, str] | None = None,
    grant: Sequence[str] = (),
    progress: bool = False,
) -> ImportResult:
    """Turn a raw order export into customers, products and purchase events.

    Cancellations (order number starting with ``C`` or a negative quantity),
    lines without a customer and zero-quantity lines are skipped and counted:
    they are normal in such exports. A line that cannot be read (bad date or
    number) fails the file as any other import. Customers created here get the
    purposes in ``grant`` recorded with source ``import``.
    """
    path = Path(path)
    mapping = mapping or dict(DEFAULT_MAPPING)
    for purpose in grant:
        if purpose not in settings.consent_purposes:
            raise ValidationError(f"unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})")
    if "purchase" not in settings.event_types:
        raise ValidationError("event type 'purchase' is not configured in event_weights")
    started = time.perf_counter()
    errors = _Errors(path)
    result = ImportResult(kind="transactions", file=str(path))
    skipped = {"cancelled": 0, "no_customer": 0, "non_positive_quantity": 0, "negative_price": 0}
    merged: dict[tuple[str, str, int], float] = {}
    first_seen: dict[str, int] = {}
    products: dict[str, list] = {}
    stamps: dict[str, int] = {}
    col = mapping
    for line, row in _rows(path, list(mapping.values()), progress):
        result.rows += 1
        try:
            order = row.get(col["order"], "") if "order" in col else ""
            qty_text = row.get(col["quantity"], "") if "quantity" in col else ""
            qty = parse_number(qty_text, what="quantity") if qty_text else 1.0
            if order.upper().startswith("C") or qty < 0:
                skipped["cancelled"] += 1
                continue
            cid = normalise_id(row[col["customer"]])
            if not cid:
                skipped["no_customer"] += 1
                continue
            if qty == 0:
                skipped["non_positive_quantity"] += 1
                continue
            price_text = row.get(col["price"], "") if "price" in col else ""
            price = parse_number(price_text, what="price") if price_text else None
            if price is not None and price < 0:
                skipped["negative_price"] += 1
                continue
            pid = normalise_id(row[col["product"]])
            if not pid:
                raise ValueError("missing product")
            stamp = row[col["occurred_at"]]
            when = stamps.get(stamp)
            if when is None:
                when = stamps[stamp] = to_epoch(parse_datetime(stamp))
            key = (cid, pid, when)
            merged[key] = merged.get(key, 0.0) + qty
            if cid not in first_seen or when < first_seen[cid]:
                first_seen[cid] = when
            name = row.get(col["name"], "") if "name" in col else ""
            info = products.get(pid)
            if info is None:
                products[pid] = [name or pid, price, when]
            else:
                if not info[0] or info[0] == pid:
                    info[0] = name or info[0]
                if price is not None and when >= info[2]:
                    info[1], info[2] = price, when
        except (ValueError, KeyError) as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    result.skipped = skipped
    with store.transaction(db):
        known_customers = store.existing_ids(db, "customers")
        new_customers = [c for c in first_seen if c not in known_customers]
        created_customers = store.insert_missing(db, "customers", [
            (c, None, None, None, None, "UTC", iso_utc(dt.datetime.fromtimestamp(first_seen[c], dt.timezone.utc)))
            for c in new_customers
        ])
        created_products = store.insert_missing(db, "products", [
            (p, info[0], None, info[1], None, 0, None) for p, info in products.items()
        ])
        result.new = store.upsert_interactions(db, [(c, p, "purchase", q, t) for (c, p, t), q in merged.items()])
        if grant and new_customers:
            now = store.utcnow()
            store.set_consents(db, [(c, purpose, True, now, "import") for c in new_customers for purpose in grant])
    result.created = {"customers": created_customers, "products": created_products}
    result.seconds = round(time.perf_counter() - started, 3)
    return result
