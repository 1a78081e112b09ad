"""Customer files as shop systems export them: ``recommender import customers --map``.

A shop's customer export names its columns its own way (``Email``, ``First Name``,
``Accepts Email Marketing``); ``--map`` says which column holds each field, like
``import-transactions --map`` does for orders. A preset is a named mapping:
``--map shopify`` is Shopify's customers export, and ``--map "shopify,birth_date=Birthday"``
adds to it. Fields: the customer fields (``id``, ``email``, ``name``, ``birth_date``,
``anniversary_date``, ``timezone``, ``created_at``) and one per consent purpose
(``marketing``, ``personalization``): a yes/no column recorded as the customer's
decision, with the file as its source.

A column named in ``--map`` must be in the file; a preset's columns are taken when
present (exports differ by version), except the id, which must be found. A name may
join several columns with ``+`` (``name=First Name+Last Name``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.ingest import door as import_door
from recommender.ingest.csvfiles import header_of, open_text, read_rows as _rows
from recommender.ingest.imports import ImportResult, _Clock, _Errors, customer_row
from recommender.privacy import derived
from recommender.store import tombstones
from recommender.store.rows import ConsentDecision, CustomerRow
from recommender.values import past_date_limit, show

CUSTOMER_FIELDS = ("id", "email", "name", "birth_date", "anniversary_date", "timezone", "created_at")

# Consent answers a shop system writes (compared lower-case, trimmed). A blank cell (or Shopify's
# "pending", a double opt-in not yet confirmed) records nothing: no decision is "not granted".
CONSENT_YES = ("yes", "y", "true", "t", "1", "subscribed", "granted", "opted_in", "opted in")
CONSENT_NO = (
    "no",
    "n",
    "false",
    "f",
    "0",
    "unsubscribed",
    "not_subscribed",
    "not subscribed",
    "refused",
    "denied",
    "withdrawn",
    "opted_out",
    "opted out",
)
CONSENT_NONE = ("", "pending")

# Each field lists the columns that may hold it, the first present one wins (exports differ by version).
# Customers are keyed by e-mail in every preset: the order map of Shopify (SHOPIFY_MAP) names customers
# by e-mail too, so a shop's two exports meet on the same customer. docs/operations.md lists the columns.
PRESETS: dict[str, dict[str, tuple[str, ...]]] = {
    # Shopify admin, Customers > Export (CSV). Birthdays are not a standard column: a birthday app or a
    # customer metafield exported as a column adds one.
    "shopify": {
        "id": ("Email",),
        "email": ("Email",),
        "name": ("First Name+Last Name", "First Name"),
        "marketing": ("Accepts Email Marketing", "Accepts Marketing", "accepts_marketing"),
        "birth_date": ("Birthday", "Birth Date", "Date of Birth", "birth_date"),
        "anniversary_date": ("Anniversary", "First Order Date"),
    },
    # WooCommerce: the Customer/Order/Coupon Export extension's customers CSV (snake_case columns), or
    # Analytics > Customers > Download ("Name", "Email").
    "woocommerce": {
        "id": ("email", "billing_email", "Email"),
        "email": ("email", "billing_email", "Email"),
        "name": ("first_name+last_name", "billing_first_name+billing_last_name", "Name"),
        "marketing": ("accepts_marketing", "newsletter", "marketing_opt_in"),
        "birth_date": ("birth_date", "date_of_birth", "birthday"),
    },
    # Magento 2 / Adobe Commerce: System > Data Transfer > Export, entity "Customers Main File". Newsletter
    # subscriptions are not in that file: map a column of your own with marketing=COLUMN.
    "magento": {
        "id": ("email",),
        "email": ("email",),
        "name": ("firstname+lastname",),
        "birth_date": ("dob",),
    },
}


@dataclass
class CustomerMapping:
    """Field -> columns to try, and whether each was named by hand (then it must be in the file)."""

    preset: str | None
    candidates: dict[str, tuple[str, ...]]
    explicit: set[str] = field(default_factory=set)

    def describe(self) -> str:
        return f"--map {self.preset}" if self.preset else "--map"


def _closest(word: str, choices: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.5)
    return lowered[found[0]] if found else None


def fields_of(settings: Settings) -> tuple[str, ...]:
    return (*CUSTOMER_FIELDS, *settings.consent_purposes)


def parse_customer_mapping(text: str | None, settings: Settings) -> CustomerMapping:
    """``shopify``, ``shopify,birth_date=Birthday`` or ``id=Customer ID,email=E-mail``; one preset at most.

    Without a preset, every field is looked for in the column of its own name.
    """
    known = fields_of(settings)
    preset: str | None = None
    explicit: dict[str, tuple[str, ...]] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            name = item.lower()
            if name not in PRESETS:
                near = _closest(name, list(PRESETS))
                hint = f"; did you mean {near!r}?" if near else ""
                raise ValidationError(
                    f"unknown --map preset {item!r} (presets: {', '.join(PRESETS)}; or field=Column){hint}"
                )
            if preset and preset != name:
                raise ValidationError(f"--map names two presets ({preset!r} and {name!r}): choose one")
            preset = name
            continue
        key, column = (s.strip() for s in item.split("=", 1))
        if key not in known:
            near = _closest(key, known)
            hint = f"; did you mean {near!r}?" if near else ""
            raise ValidationError(f"unknown --map field {key!r} (known: {', '.join(known)}){hint}")
        if not column and key == "id":
            raise ValidationError("--map field 'id' is required")
        explicit[key] = (column,) if column else ()
    candidates = {f: (f,) for f in known}
    if preset:
        candidates.update(PRESETS[preset])
    candidates.update(explicit)
    return CustomerMapping(preset, candidates, {k for k, v in explicit.items() if v})


def _parts(column: str) -> list[str]:
    return [p.strip() for p in column.split("+")] if "+" in column else [column]


def resolve(mapping: CustomerMapping, path: Path, header: Sequence[str]) -> dict[str, list[str]]:
    """Field -> the file's column(s) holding it; a hand-named column or the id missing is one clear error."""
    present = set(header)
    shown = ", ".join(show(c) for c in header[:20]) + (", ..." if len(header) > 20 else "")
    out: dict[str, list[str]] = {}
    for name, options in mapping.candidates.items():
        chosen = next((_parts(c) for c in options if all(p in present for p in _parts(c))), None)
        if chosen is not None:
            out[name] = chosen
            continue
        if name in mapping.explicit or name == "id":
            wanted = [p for c in options[:1] for p in _parts(c) if p not in present] or ["id"]
            near = _closest(wanted[0], header)
            if name in mapping.explicit:
                whose = f"--map {name}={options[0]}: no column {show(wanted[0])} in the file"
            elif mapping.preset:
                whose = (
                    f"--map {mapping.preset} reads the customer id from column {show(wanted[0])}, which the file lacks"
                )
            else:
                whose = f"no {show(wanted[0])} column for the customer id"
            closest = f"closest header: {show(near)}" if near else f"the file's columns are {shown}"
            raise ValidationError(f"{path}: {whose}; {closest} (say which column holds it: --map {name}=COLUMN)")
    return out


def _consent_answer(text: str, column: str) -> bool | None:
    low = text.strip().lower()
    if low in CONSENT_YES:
        return True
    if low in CONSENT_NO:
        return False
    if low in CONSENT_NONE:
        return None
    raise ValueError(
        f"{column} {show(text)} is not a consent answer (yes: {', '.join(CONSENT_YES[:5])}, "
        f"subscribed; no: {', '.join(CONSENT_NO[:5])}, unsubscribed; blank or pending: not recorded)"
    )


_DATE_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]00:00(:00)?$")


@dataclass
class CustomerImportResult(ImportResult):
    """An :class:`ImportResult` with the columns used and the consent decisions the file recorded."""

    columns: dict[str, str] = field(default_factory=dict)
    consents: dict[str, dict[str, int]] = field(default_factory=dict)
    stale_consent: int = 0  # answers older than a decision recorded since the export (the later one stays)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def import_customers(
    db: sqlite_utils.Database,
    path: str | Path,
    settings: Settings,
    mapping: CustomerMapping,
    *,
    progress: bool = False,
    skip_erased: bool = False,
) -> CustomerImportResult:
    """Import a shop system's customer export through ``mapping``; all rows or none.

    Fields the mapping leaves out keep what the database holds for a known customer
    (a Shopify export has no time zone: a stored one stays). Consent columns are
    recorded with the file as source (``import:<file>``), dated by the file's
    modification time (the export holds decisions made before it was written), so a
    withdrawal recorded after the export wins over it.
    """
    path = Path(path)
    started = time.perf_counter()
    header = header_of(path)
    columns = resolve(mapping, path, header)
    purposes = [p for p in settings.consent_purposes if p in columns]
    names = {f: "+".join(cols) for f, cols in columns.items()}
    errors, seen = _Errors(path), {}
    clock = _Clock(settings)
    latest_day = past_date_limit()
    rows: list[CustomerRow] = []
    answers: dict[str, dict[str, bool]] = {p: {} for p in purposes}
    lines: dict[str, int] = {}
    required = list(dict.fromkeys(c for cols in columns.values() for c in cols))
    for line, raw in _rows(path, required, progress):
        try:
            row = {
                f: " ".join(v for v in (raw[c] for c in cols) if v)
                for f, cols in columns.items()
                if f in CUSTOMER_FIELDS
            }
            for f in ("birth_date", "anniversary_date"):
                m = _DATE_TIME_RE.match(row.get(f, ""))
                if m:
                    row[f] = m.group(1)  # a date written as a midnight date-time, as Magento does
            if row.get("email"):
                row["email"] = row["email"].strip()
            customer = customer_row(row, clock, latest_day, names)
            if customer.id in seen:
                raise ValueError(f"duplicate id {customer.id!r} (first on line {seen[customer.id]})")
            seen[customer.id] = line
            for p in purposes:
                answer = _consent_answer(raw[columns[p][0]], names[p])
                if answer is not None:
                    answers[p][customer.id] = answer
            rows.append(customer)
            lines[customer.id] = line
        except ValueError as exc:
            errors.add(line, str(exc))
    errors.raise_if_any()
    result = CustomerImportResult(
        kind="customers", file=str(path), rows=len(rows), columns={f: names[f] for f in columns if f in names}
    )
    erased = 0
    if store.erasure_count(db):
        known = store.existing_of(db, "customers", [r.id for r in rows])
        gone = tombstones.erased_on(db, settings, [r.id for r in rows if r.id not in known])
        rows, erased = import_door.without_erased_emails(db, settings, path, rows, known, gone, skip_erased)
        if gone:
            import_door.refuse(
                path, import_door.erased_lines(db, settings, path, columns["id"][0], open_text, gone), skip_erased
            )
            erased += sum(1 for r in rows if r.id in gone)
            rows = [r for r in rows if r.id not in gone]
        if skip_erased:
            result.skipped["erased"] = erased
    kept = {r.id for r in rows}
    decided = dt.datetime.fromtimestamp(min(path.stat().st_mtime, time.time()), dt.UTC)
    decided_at = decided.strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.transaction(db):
        stored = store.stored_customers(db, [r.id for r in rows])
        now = store.utcnow()
        merged = []
        for r in rows:
            old = stored.get(r.id)
            if old is not None:  # a field the mapping leaves out keeps what is stored
                r = r._replace(**{f: getattr(old, f) for f in CUSTOMER_FIELDS[1:] if f not in columns})
            if r.created_at is None:  # blank: the stored time for a known customer, "now" for a new one
                r = r._replace(created_at=old.created_at if old is not None else now)
            merged.append(r)
        store.upsert_customers(db, merged)
        result.new = sum(1 for r in merged if r.id not in stored)
        result.changed = sum(1 for r in merged if r.id in stored and stored[r.id] != r)
        result.unchanged = len(merged) - result.new - result.changed
        decisions = [
            ConsentDecision(cid, p, granted, decided_at, path.name, f"import:{path.name}")
            for p in purposes
            for cid, granted in answers[p].items()
            if cid in kept
        ]
        outcome = store.apply_consents(db, decisions) if decisions else {"changed": 0, "stale": 0}
    for p in purposes:
        given = [g for cid, g in answers[p].items() if cid in kept]
        result.consents[p] = {"granted": sum(given), "refused": len(given) - sum(given)}
    if decisions:
        result.stale_consent = outcome["stale"]
        derived.follow(db, settings)  # a refusal is a withdrawal: derived data follows at once
    result.seconds = round(time.perf_counter() - started, 3)
    return result
