"""CSV imports: validate every row first, then write everything in one transaction.

A shop's data arrives as spreadsheet exports with the usual defects. Half an
import is worse than none (the model would train on a catalogue that matches no
real state), so a file with one bad row writes nothing and says
``FILE:LINE: reason``. Writes are keyed (ids, and the natural key of an event),
so importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.ingest import door as import_door
from recommender.ingest.csvfiles import SHOPIFY_MAP, header_advice, open_text, read_rows as _rows  # noqa: F401  (open_text, SHOPIFY_MAP: part of this API)
from recommender.privacy import derived
from recommender.store import tombstones
from recommender.store.rows import ConsentDecision, CustomerRow, EventRow, ProductRow
from recommender.values import (
    MAX_PRICE,
    MAX_QUANTITY,
    check_not_future,
    check_timezone,
    iso_utc,
    normalise_id,
    parse_date,
    parse_datetime,
    parse_flag,
    parse_id,
    parse_int,
    parse_number,
    past_date_limit,
    show,
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
    """What an import did with each row it read: every row is counted once, under one outcome.

    ``rows`` (data rows read; blank lines are not rows) = ``new`` (stored as a new row)
    + ``changed`` (changed a stored row; for consents: a decision recorded)
    + ``unchanged`` (equal to what is stored: nothing written)
    + ``merged`` (an event repeating an earlier row's key in the same file, whose
    quantity was added to it) + the sum of ``skipped`` (by reason).
    ``created`` (customers and products an order export made) is a side effect,
    not an outcome of rows.
    """

    kind: str
    file: str
    rows: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    merged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    created: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def outcomes(self) -> dict[str, int]:
        """Every outcome with its count (skipped ones as ``skipped_<reason>``); they add up to ``rows``."""
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "merged": self.merged,
            **{f"skipped_{reason}": n for reason, n in self.skipped.items()},
        }

    def accounted(self) -> int:
        return sum(self.outcomes().values())

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "outcomes": self.outcomes()}


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
            more = (
                f" (and {extra} more bad row{'s' if extra != 1 else ''}; nothing was imported)"
                if extra
                else " (nothing was imported)"
            )
            raise ValidationError(self.items[0] + more)


def _optional(row: dict[str, str], column: str) -> str | None:
    value = row.get(column, "")
    return value if value != "" else None


MAX_TEXT_LENGTH = 1000  # names, emails, categories, sources
MAX_STOCK = 10**9


def _text(row: dict[str, str], column: str) -> str | None:
    """An optional free-text cell, at most ``MAX_TEXT_LENGTH`` characters."""
    value = _optional(row, column)
    if value is not None and len(value) > MAX_TEXT_LENGTH:
        raise ValueError(f"{column} {show(value)} is too long (at most {MAX_TEXT_LENGTH} characters)")
    return value


class _Clock:
    """One reading of the clock per file: the latest time a row may carry (``time.max_future_seconds``)."""

    def __init__(self, settings: Settings) -> None:
        self.now = time.time()
        self.skew = settings.time.max_future_seconds
        self._cache: dict[tuple[str, str], int] = {}

    def epoch(self, text: str, what: str) -> int:
        """Seconds since 1970 of an ISO 8601 cell, in range and not in the future (cached per text)."""
        when = self._cache.get((text, what))
        if when is None:
            when = to_epoch(parse_datetime(text, what=what))
            check_not_future(when, now=self.now, skew_seconds=self.skew, what=what)
            self._cache[text, what] = when
        return when

    def iso(self, text: str, what: str) -> str:
        return iso_utc(dt.datetime.fromtimestamp(self.epoch(text, what), dt.UTC))


# --- one parser per kind ---------------------------------------------------------


def customer_row(
    row: dict[str, str], clock: _Clock, latest_day: dt.date, names: dict[str, str] | None = None
) -> CustomerRow:
    """One customer from a row keyed by field name; ``names`` (field -> the file's column) words the messages.

    The one rule for a customer line, whether the file uses our column names or a shop system's
    (``import customers --map``).
    """
    names = names or {}

    def what(f: str) -> str:
        return names.get(f, f)

    cid = parse_id(row["id"], what=what("id"))
    email = _optional(row, "email")
    if email is not None and len(email) > MAX_TEXT_LENGTH:
        raise ValueError(f"{what('email')} {show(email)} is too long (at most {MAX_TEXT_LENGTH} characters)")
    if email is not None and ("@" not in email or " " in email):
        raise ValueError(f"bad email {show(email)}")
    name = _optional(row, "name")
    if name is not None and len(name) > MAX_TEXT_LENGTH:
        raise ValueError(f"{what('name')} {show(name)} is too long (at most {MAX_TEXT_LENGTH} characters)")
    birth = _optional(row, "birth_date")
    anniversary = _optional(row, "anniversary_date")
    tz = _optional(row, "timezone")
    try:
        tz = check_timezone(tz or "UTC")
    except ValueError as exc:
        raise ValueError(f"{what('timezone')}: {exc}" if "timezone" in names else str(exc)) from None
    created = _optional(row, "created_at")
    return CustomerRow(
        id=cid,
        email=email,
        name=name,
        birth_date=parse_date(birth, latest=latest_day, what=what("birth_date")).isoformat() if birth else None,
        anniversary_date=(
            parse_date(anniversary, latest=latest_day, what=what("anniversary_date")).isoformat()
            if anniversary
            else None
        ),
        timezone=tz,
        created_at=clock.iso(created, what("created_at")) if created else None,  # None: see import_file
    )


def _parse_customers(db, path, settings, progress) -> list[CustomerRow]:
    errors, seen, out = _Errors(path), {}, []
    clock = _Clock(settings)
    latest_day = past_date_limit()
    for line, row in _rows(path, REQUIRED["customers"], progress):
        try:
            customer = customer_row(row, clock, latest_day)
            if customer.id in seen:
                raise ValueError(f"duplicate id {customer.id!r} (first on line {seen[customer.id]})")
            seen[customer.id] = line
            out.append(customer)
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


def _parse_products(db, path, settings, progress) -> list[ProductRow]:
    errors, seen, out = _Errors(path), {}, []
    for line, row in _rows(path, REQUIRED["products"], progress):
        try:
            pid = parse_id(row["id"], what="id")
            if pid in seen:
                raise ValueError(f"duplicate id {pid!r} (first on line {seen[pid]})")
            seen[pid] = line
            name = _text(row, "name")
            if not name:
                raise ValueError("missing name")
            price = _optional(row, "price")
            stock = _optional(row, "in_stock")
            hidden = _optional(row, "hidden")
            until = _optional(row, "available_until")
            out.append(
                ProductRow(
                    id=pid,
                    name=name,
                    category=_text(row, "category"),
                    price=parse_number(price, what="price", minimum=0, maximum=MAX_PRICE) if price else None,
                    in_stock=parse_int(stock, what="in_stock", minimum=0, maximum=MAX_STOCK) if stock else None,
                    hidden=int(parse_flag(hidden, what="hidden")) if hidden else 0,
                    available_until=parse_date(until, what="available_until").isoformat() if until else None,
                    description=_text(row, "description"),  # optional: new products' content features
                )
            )
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


def _parse_interactions(db, path, settings, progress, skip=(), tally=None) -> list[EventRow]:
    """The file's events, one per key: a line repeating an earlier line's key adds its quantity to it
    (counted in ``tally["merged"]`` when a ``tally`` dict is given)."""
    errors = _Errors(path)
    lines = 0
    customers = store.existing_ids(db, "customers")
    products = store.existing_ids(db, "products")
    event_types = set(settings.event_types)
    merged: dict[tuple[str, str, str, int], float] = {}
    clock = _Clock(settings)
    seen_ids: dict[tuple[str, str], str] = {}  # (column, text) -> id: a big file repeats the same few
    for line, row in _rows(path, REQUIRED["interactions"], progress, skip=skip):
        try:
            cid = seen_ids.get(("customer_id", row["customer_id"]))
            if cid is None:
                cid = seen_ids["customer_id", row["customer_id"]] = parse_id(row["customer_id"], what="customer_id")
            pid = seen_ids.get(("product_id", row["product_id"]))
            if pid is None:
                pid = seen_ids["product_id", row["product_id"]] = parse_id(row["product_id"], what="product_id")
            if cid not in customers:
                raise ValueError(f"unknown customer {cid!r}")
            if pid not in products:
                raise ValueError(f"unknown product {pid!r}")
            event = row["event_type"]
            if event not in event_types:
                raise ValueError(f"unknown event type {show(event)} (known: {', '.join(sorted(event_types))})")
            quantity = row.get("quantity", "")
            qty = (
                parse_number(quantity, what="quantity", minimum=0, exclusive=True, maximum=MAX_QUANTITY)
                if quantity
                else 1.0
            )
            when = clock.epoch(row["occurred_at"], "occurred_at")
            key = (cid, pid, event, when)
            merged[key] = merged.get(key, 0.0) + qty
            lines += 1
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    if tally is not None:
        tally["merged"] = lines - len(merged)
    return [EventRow(c, p, e, q, t) for (c, p, e, t), q in merged.items()]


def _parse_consents(db, path, settings, progress, skip=()) -> list[ConsentDecision]:
    errors, seen, out = _Errors(path), {}, []
    customers = store.existing_ids(db, "customers")
    purposes = set(settings.consent_purposes)
    now = store.utcnow()
    clock = _Clock(settings)
    for line, row in _rows(path, REQUIRED["consents"], progress, skip=skip):
        try:
            cid = parse_id(row["customer_id"], what="customer_id")
            if cid not in customers:
                raise ValueError(f"unknown customer {cid!r}")
            purpose = row["purpose"]
            if purpose not in purposes:
                raise ValueError(f"unknown purpose {show(purpose)} (known: {', '.join(sorted(purposes))})")
            if (cid, purpose) in seen:
                raise ValueError(f"duplicate consent for {cid!r}/{purpose} (first on line {seen[cid, purpose]})")
            seen[cid, purpose] = line
            granted = parse_flag(row["granted"], what="granted")
            updated = _optional(row, "updated_at")
            # The actor (the file) is filled in by import_file.
            out.append(
                ConsentDecision(
                    customer_id=cid,
                    purpose=purpose,
                    granted=granted,
                    decided_at=clock.iso(updated, "updated_at") if updated else now,
                    source=_text(row, "source") or "import",
                )
            )
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    return out


_PARSERS: dict[str, Callable[..., list[tuple]]] = {
    "customers": _parse_customers,
    "products": _parse_products,
    "interactions": _parse_interactions,
    "consents": _parse_consents,
}


def import_file(
    db: sqlite_utils.Database,
    kind: str,
    path: str | Path,
    settings: Settings,
    *,
    progress: bool = False,
    skip_erased: bool = False,
) -> ImportResult:
    """Import one CSV (or ``.csv.gz``) of ``kind``; all rows or none.

    Lines of erased customers fail the file (``FILE:LINE: customer ... was
    erased on DATE``) unless ``skip_erased``, which leaves them out and counts
    them in ``skipped["erased"]`` (re-importing a full export made before an
    erasure). Consent rows older than the current decision are skipped and
    counted in ``skipped["stale"]``.
    """
    if kind not in _PARSERS:
        raise ValidationError(f"unknown import kind {kind!r} (one of {', '.join(KINDS)})")
    path = Path(path)
    started = time.perf_counter()
    tally: dict[str, int] = {"merged": 0}
    rows, erased_lines = _parse_at_the_door(db, kind, path, settings, progress, skip_erased, tally)
    # Every row read is one outcome: the rows parsed (after merging repeated events), the merged
    # repeats, and the erased lines left out; the outcomes of the rows parsed are counted below.
    result = ImportResult(
        kind=kind, file=str(path), rows=len(rows) + tally["merged"] + erased_lines, merged=tally["merged"]
    )
    if skip_erased:
        result.skipped["erased"] = erased_lines
    with store.transaction(db):
        if kind == "customers":
            # A blank created_at is "now" for a new customer and the stored time for a known one:
            # re-importing the same file must not move when a customer joined.
            before = store.customers_created(db)
            now = store.utcnow()
            rows = [r if r.created_at is not None else r._replace(created_at=before.get(r.id, now)) for r in rows]
            written = store.upsert_customers(db, rows)
            result.new = sum(1 for r in rows if r.id not in before)
            result.changed = written - result.new
        elif kind == "products":
            before = store.existing_ids(db, "products")
            written = store.upsert_products(db, rows)
            result.new = sum(1 for r in rows if r.id not in before)
            result.changed = written - result.new
        elif kind == "interactions":
            result.new, result.changed = store.import_interactions(db, rows, expected=len(rows))
        else:
            outcome = store.apply_consents(db, [r._replace(actor=f"import:{path.name}") for r in rows])
            result.changed = outcome["changed"]
            result.skipped["stale"] = outcome["stale"]
        result.unchanged = len(rows) - result.new - result.changed - result.skipped.get("stale", 0)
    if kind == "consents":
        derived.follow(db, settings)  # derived data follows withdrawals at once
    result.seconds = round(time.perf_counter() - started, 3)
    return result


# --- the tombstone door of imports (the scans live in import_door.py) -------------------
# The parsers refuse events and consents of customers who do not exist, and an erased
# customer does not; so erased lines are found by a separate scan, run only when the
# database has tombstones and the file names an id that is not a customer.

CUSTOMER_COLUMN = {"customers": "id", "interactions": "customer_id", "consents": "customer_id"}


def _parse_at_the_door(db, kind, path, settings, progress, skip_erased, tally=None) -> tuple[list, int]:
    """Parse ``path``, refusing (or with ``skip_erased`` leaving out) lines of erased customers; ``(rows, erased lines)``.

    ``tally`` (a dict) receives the events merged into an earlier line's (``"merged"``).
    """
    parser = _PARSERS[kind]
    if kind == "interactions" and tally is not None:
        parser = functools.partial(parser, tally=tally)
    if kind not in CUSTOMER_COLUMN or store.erasure_count(db) == 0:
        return parser(db, path, settings, progress), 0
    try:
        rows = parser(db, path, settings, progress)
    except ValidationError:
        if kind == "customers":
            raise
        lines = import_door.erased_lines(db, settings, path, CUSTOMER_COLUMN[kind], open_text)
        if not lines:
            raise
        import_door.refuse(path, lines, skip_erased)
        return parser(db, path, settings, progress, skip={erased.line for erased in lines}), len(lines)
    if kind != "customers":
        return rows, 0  # every customer named exists, so none is erased
    known = store.existing_of(db, "customers", [r.id for r in rows])
    gone = tombstones.erased_on(db, settings, [r.id for r in rows if r.id not in known])
    rows, by_email = import_door.without_erased_emails(db, settings, path, rows, known, gone, skip_erased)
    if not gone:
        return rows, by_email
    lines = import_door.erased_lines(db, settings, path, "id", open_text, gone)
    import_door.refuse(path, lines, skip_erased)
    return [r for r in rows if r.id not in gone], len(lines) + by_email


SAMPLE_FILES = (
    ("customers", "customers.csv"),
    ("products", "products.csv"),
    ("interactions", "interactions.csv.gz"),
    ("consents", "consents.csv"),
)


def default_sample_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "sample_data"


def load_sample(
    db: sqlite_utils.Database, settings: Settings, directory: str | Path | None = None
) -> list[ImportResult]:
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


def _missing_mapped_message(path: Path, header: Sequence[str], mapping: dict[str, str], missing: Sequence[str]) -> str:
    """Which fields lack their column, and the --map that fixes it, with the columns the file has."""
    fields = {column: [f for f, c in mapping.items() if c == column] for column in missing}
    named = ", ".join(f"{show(c)} ({'/'.join(fields[c])})" for c in missing)
    advice = header_advice(path, header, list(mapping.values()))
    if advice.startswith("looks separated"):
        return f"missing column(s) {named}; the file {advice}"
    if "Shopify" in advice:
        return f"missing column(s) {named}; {advice}"
    optional = [f for c in missing for f in fields[c] if f not in REQUIRED_TARGETS]
    example = ",".join(f"{f}=COLUMN" for c in missing for f in fields[c] if f in REQUIRED_TARGETS)
    example = ",".join(x for x in (example, ",".join(f"{f}=" for f in optional)) if x)
    shown = ", ".join(show(c) for c in header[:20]) + (", ..." if len(header) > 20 else "")
    return (
        f"missing column(s) {named}; say which columns hold them with --map field=Column "
        f"(here: --map {example}; an optional field left empty, as in price=, is ignored); "
        f"the file's columns are {shown}"
    )


class _SeenProduct:
    """A product as an order export shows it so far: a name, and the latest unit price with its time."""

    __slots__ = ("name", "price", "priced_at")

    def __init__(self, name: str, price: float | None, priced_at: int) -> None:
        self.name = name
        self.price = price
        self.priced_at = priced_at


def import_transactions(
    db: sqlite_utils.Database,
    path: str | Path,
    settings: Settings,
    *,
    mapping: dict[str, str] | None = None,
    grant: Sequence[str] = (),
    progress: bool = False,
    skip_erased: bool = False,
) -> ImportResult:
    """Turn a raw order export into customers, products and purchase events.

    Cancellations (order number starting with ``C`` or a negative quantity),
    lines without a customer and zero-quantity lines are skipped and counted:
    they are normal in such exports. A line that cannot be read (bad date or
    number) fails the file as any other import. The file's customers with no
    decision yet for a purpose in ``grant`` get it recorded with source ``import``
    (a refusal or a withdrawal stays). Lines of erased
    customers fail the file, or with ``skip_erased`` are left out and counted
    in ``skipped["erased"]`` (the lines that would have been kept).

    Every line read is counted once (``rows`` = the sum of
    :meth:`ImportResult.outcomes`): skipped by reason, ``merged`` (a purchase
    repeating an earlier line's customer, product and second: its quantity is
    added to that line's), or, for the first line of each purchase, ``new``,
    ``changed`` (a stored purchase given another quantity) or ``unchanged``.
    """
    path = Path(path)
    mapping = mapping or dict(DEFAULT_MAPPING)
    for purpose in grant:
        if purpose not in settings.consent_purposes:
            raise ValidationError(f"unknown purpose {purpose!r} (known: {', '.join(settings.consent_purposes)})")
    if not settings.purchase_events:
        raise ValidationError("purchase_events is empty: name the event type that means 'bought' to import orders")
    bought = settings.purchase_events[0]  # the shop's own name for a purchase ("purchase", "order", ...)
    if bought not in settings.event_types:
        raise ValidationError(f"event type {bought!r} (purchase_events) is not configured in event_weights")
    started = time.perf_counter()
    errors = _Errors(path)
    result = ImportResult(kind="transactions", file=str(path))
    skipped = {"cancelled": 0, "no_customer": 0, "non_positive_quantity": 0, "negative_price": 0}
    merged: dict[tuple[str, str, int], float] = {}
    first_seen: dict[str, int] = {}
    kept: dict[str, int] = {}  # customer -> lines kept (an erased customer's are counted as erased)
    products: dict[str, _SeenProduct] = {}
    # The same few texts repeat on half a million lines (quantities, prices, ids): each is parsed once.
    # Only good values are remembered; a bad one is parsed (and refused) again on each of its lines.
    quantities: dict[str, float] = {"": 1.0}
    prices: dict[str, float | None] = {"": None}
    customer_ids: dict[str, str] = {}  # text -> id, "" for no customer
    product_ids: dict[str, str] = {}
    clock = _Clock(settings)
    col = mapping
    # The mapped column names, looked up once (not on each of half a million lines).
    for target in REQUIRED_TARGETS:
        if not col.get(target):
            raise ValidationError(f"--map field {target!r} is required")  # as parse_mapping says it
    order_col, qty_col, price_col, name_col = (col.get(f) for f in ("order", "quantity", "price", "name"))
    customer_col, product_col, time_col = col["customer"], col["product"], col["occurred_at"]
    qty_what, price_what = qty_col or "quantity", price_col or "price"

    def explain(header: Sequence[str], missing: Sequence[str]) -> str:
        return _missing_mapped_message(path, header, mapping, missing)

    lines_read = kept_lines = 0
    for line, row in _rows(path, list(dict.fromkeys(mapping.values())), progress, on_missing=explain):
        lines_read += 1
        try:
            order = row.get(order_col, "") if order_col is not None else ""
            qty_text = row.get(qty_col, "") if qty_col is not None else ""
            qty = quantities.get(qty_text)
            if qty is None:
                qty = quantities[qty_text] = parse_number(qty_text, what=qty_what, maximum=MAX_QUANTITY)
            if order.upper().startswith("C") or qty < 0:
                skipped["cancelled"] += 1
                continue
            customer_text = row[customer_col]
            cid = customer_ids.get(customer_text)
            if cid is None:
                cid = parse_id(customer_text, what=customer_col) if normalise_id(customer_text) else ""
                customer_ids[customer_text] = cid
            if not cid:
                skipped["no_customer"] += 1
                continue
            if qty == 0:
                skipped["non_positive_quantity"] += 1
                continue
            price_text = row.get(price_col, "") if price_col is not None else ""
            if price_text in prices:
                price = prices[price_text]
            else:
                price = prices[price_text] = parse_number(price_text, what=price_what, maximum=MAX_PRICE)
            if price is not None and price < 0:
                skipped["negative_price"] += 1
                continue
            product_text = row[product_col]
            pid = product_ids.get(product_text)
            if pid is None:
                if not normalise_id(product_text):
                    raise ValueError(f"missing product ({product_col} is empty)")
                pid = product_ids[product_text] = parse_id(product_text, what=product_col)
            when = clock.epoch(row[time_col], time_col)
            key = (cid, pid, when)
            merged[key] = merged.get(key, 0.0) + qty
            kept_lines += 1
            seen = first_seen.get(cid)
            if seen is None:
                first_seen[cid], kept[cid] = when, 1
            else:
                kept[cid] += 1
                if when < seen:
                    first_seen[cid] = when
            name = row.get(name_col, "") if name_col is not None else ""
            if len(name) > MAX_TEXT_LENGTH:
                _text(row, name_col)  # refuses it, in the words of every other door
            info = products.get(pid)
            if info is None:
                products[pid] = _SeenProduct(name or pid, price, when)
            else:
                if not info.name or info.name == pid:
                    info.name = name or info.name
                if price is not None and when >= info.priced_at:
                    info.price, info.priced_at = price, when
        except (ValueError, KeyError) as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    result.rows = lines_read
    result.skipped = skipped
    with store.transaction(db):
        known_customers = store.existing_ids(db, "customers")
        gone = tombstones.erased_on(db, settings, [c for c in first_seen if c not in known_customers])
        if gone:
            import_door.refuse(
                path, import_door.erased_lines(db, settings, path, customer_col, open_text, gone), skip_erased
            )
            dropped = [(c, p, t) for c, p, t in merged if c in gone]
            for k in dropped:
                del merged[k]
            for c in gone:
                first_seen.pop(c, None)
            skipped["erased"] = sum(kept.get(c, 0) for c in gone)
            kept_lines -= skipped["erased"]
        elif skip_erased:
            skipped["erased"] = 0
        new_customers = [c for c in first_seen if c not in known_customers]
        created_customers = store.insert_missing(
            db,
            "customers",
            [
                CustomerRow(c, created_at=iso_utc(dt.datetime.fromtimestamp(first_seen[c], dt.UTC)))
                for c in new_customers
            ],
        )
        created_products = store.insert_missing(
            db, "products", [ProductRow(p, name=info.name, price=info.price) for p, info in products.items()]
        )
        # A generator of plain tuples in EventRow's order, not a list: each row is bound and dropped (a list
        # of 400,000 named tuples, which the garbage collector tracks and plain tuples it does not, costs a
        # third of a second).
        result.new, result.changed = store.import_interactions(
            db, ((c, p, bought, q, t) for (c, p, t), q in merged.items()), expected=len(merged)
        )
        result.unchanged = len(merged) - result.new - result.changed
        result.merged = kept_lines - len(merged)
        if grant:  # every customer of the file with no decision yet: never over a refusal or a withdrawal
            now = store.utcnow()
            store.set_consents(
                db,
                [
                    ConsentDecision(c, purpose, True, now, "import", f"import:{path.name}")
                    for purpose in grant
                    for c in store.undecided_among(db, list(first_seen), purpose)
                ],
            )
    result.created = {"customers": created_customers, "products": created_products}
    result.seconds = round(time.perf_counter() - started, 3)
    return result
