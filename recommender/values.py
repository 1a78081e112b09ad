"""Parsing of single field values shared by CSV imports, the CLI and the API.

Each parser either returns a clean Python value or raises ``ValueError`` with a
short reason; callers add where the value came from (``FILE:LINE`` or a JSON
pointer), so the same rule gives the same message everywhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import zoneinfo

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = {"1", "true", "t", "yes", "y", "granted"}
_FALSE = {"0", "false", "f", "no", "n", "withdrawn", "denied"}


def parse_date(text: str) -> dt.date:
    """A calendar date written ``YYYY-MM-DD`` (29 February only in leap years)."""
    text = text.strip()
    if not _DATE_RE.match(text):
        raise ValueError(f"bad date {text!r} (want YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad date {text!r} (no such day)") from None


def parse_datetime(text: str) -> dt.datetime:
    """An ISO 8601 date-time; without an offset it is taken as UTC. Returns an aware UTC datetime."""
    text = text.strip()
    if not text or not text[0].isdigit():
        raise ValueError(f"bad timestamp {text!r} (want ISO 8601, e.g. 2026-05-01T12:00:00Z)")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad timestamp {text!r} (want ISO 8601, e.g. 2026-05-01T12:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def to_epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_to_iso(seconds: int) -> str:
    return iso_utc(dt.datetime.fromtimestamp(int(seconds), dt.timezone.utc))


def parse_number(text: str, *, what: str = "number", minimum: float | None = None, exclusive: bool = False) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not finite")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{what} must be {'>' if exclusive else '>='} {minimum:g}, got {text!r}")
    return value


def parse_int(text: str, *, what: str = "integer", minimum: int | None = None) -> int:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {text!r}")
    return value


def parse_flag(text: str, *, what: str = "flag") -> bool:
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{what} {text!r} is not true/false")


@functools.lru_cache(maxsize=1024)
def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (want an IANA name such as Europe/London)") from None
    return name


def normalise_id(text: str) -> str:
    """Trim an identifier; spreadsheets write numeric ids as floats (``17850.0``), so drop a ``.0``."""
    text = text.strip()
    if text.endswith(".0") and text[:-2].isdigit():
        return text[:-2]
    return text
