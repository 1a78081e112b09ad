"""Parsing of single field values shared by CSV imports, the CLI and the API.

Each parser either returns a clean Python value or raises ``ValueError`` with a
short reason; callers add where the value came from (``FILE:LINE`` or a JSON
pointer), so the same rule gives the same message everywhere.

Every value has a range, checked here once, so no caller meets an
``OverflowError`` later (a year 9999 with a negative offset cannot be turned
into UTC) and no absurd value reaches the model or the database:

- event, creation and decision times: 1970-01-01T00:00:00Z up to the end of 2100
  (``EARLIEST_TIME`` .. ``LATEST_TIME``); how far ahead of the clock a time may be is
  the caller's rule (``check_not_future``, ``time.max_future_seconds``);
- calendar dates: 1900-01-01 .. 2100-12-31 by default; birth and anniversary dates
  up to today (``past_date_limit``);
- numbers: only the forms a spreadsheet writes (``-12``, ``3.5``, ``.5``, ``1.2E+3``),
  never ``1_000``, ``0x10``, ``nan``, ``inf`` or a value that is not finite;
- ids: at most ``MAX_ID_LENGTH`` (200) characters, no control characters, never
  ``.`` or ``..`` (a URL path cannot carry them), in the one form of :func:`normalise_id`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import ipaddress
import math
import re
import unicodedata
import zoneinfo

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# What a spreadsheet writes for a number: optional sign, ASCII digits, one decimal
# point, an optional exponent. Python's float() also takes "1_000", "nan", "inf",
# "infinity" and non-ASCII digits; int() takes underscores too.
_NUMBER_RE = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
# C0 and C1 control characters, DEL, and the Unicode line/paragraph separators.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TRUE = {"1", "true", "t", "yes", "y", "granted"}
_FALSE = {"0", "false", "f", "no", "n", "withdrawn", "denied"}

MAX_ID_LENGTH = 200
# The largest unit price and quantity a row or an event may carry: CSV imports, the API's
# schema (``/openapi.json``) and its checks share these bounds.
MAX_PRICE = 1e9
MAX_QUANTITY = 1e6
# Times as text start with a year in EARLIEST_TIME.year .. LATEST_TIME.year: the pattern the
# OpenAPI document gives such fields, so the document refuses what parse_datetime refuses.
TIME_PATTERN = r"^(?:19[7-9][0-9]|20[0-9][0-9]|2100)-"
EARLIEST_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(2100, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2100, 12, 31)
_SHOWN = 60


def show(text: str) -> str:
    """``repr`` of a value for an error message: one line whatever it holds, and short."""
    if len(text) > _SHOWN:
        return repr(text[:_SHOWN]) + f"... ({len(text):,} characters)"
    return repr(text)


def _prefix(what: str | None) -> str:
    return f"{what}: " if what else ""


def parse_date(
    text: str, *, earliest: dt.date = EARLIEST_DATE, latest: dt.date = LATEST_DATE, what: str | None = None
) -> dt.date:
    """A calendar date written ``YYYY-MM-DD`` (29 February only in leap years), within ``earliest..latest``.

    ``what`` (a field name) starts the message when given.
    """
    text = text.strip()
    if not _DATE_RE.match(text):
        raise ValueError(f"{_prefix(what)}bad date {show(text)} (want YYYY-MM-DD)")
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_prefix(what)}bad date {show(text)} (no such day)") from None
    if not earliest <= value <= latest:
        raise ValueError(
            f"{_prefix(what)}date {text!r} is out of range (want {earliest.isoformat()} .. {latest.isoformat()})"
        )
    return value


def past_date_limit() -> dt.date:
    """Today where the calendar is furthest ahead (UTC+14): the latest possible birth or anniversary date."""
    return dt.datetime.now(dt.timezone(dt.timedelta(hours=14))).date()


def parse_datetime(text: str, *, what: str | None = None) -> dt.datetime:
    """An ISO 8601 date-time; without an offset it is taken as UTC. Returns an aware UTC datetime.

    Refuses times outside ``EARLIEST_TIME .. LATEST_TIME`` before converting, so
    an extreme year with an offset is a clear error rather than an overflow.
    """
    text = text.strip()
    hint = "want ISO 8601, e.g. 2026-05-01T12:00:00Z"
    if not text or not text[0].isdigit():
        raise ValueError(f"{_prefix(what)}bad timestamp {show(text)} ({hint})")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{_prefix(what)}bad timestamp {show(text)} ({hint})") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    # The local year is at most a day away from the UTC one: outside this the
    # conversion itself could overflow (year 1 or 9999 with an offset).
    if not EARLIEST_TIME.year - 1 <= value.year <= LATEST_TIME.year + 1:
        raise ValueError(_time_range_message(what, text))
    value = value.astimezone(dt.UTC)
    if not EARLIEST_TIME <= value <= LATEST_TIME:
        raise ValueError(_time_range_message(what, text))
    return value


def _time_range_message(what: str | None, text: str) -> str:
    return (
        f"{_prefix(what)}timestamp {show(text)} is out of range "
        f"(want {iso_utc(EARLIEST_TIME)} .. {iso_utc(LATEST_TIME)})"
    )


def check_not_future(epoch: int, *, now: float, skew_seconds: int, what: str | None = None) -> int:
    """Refuse a time more than ``skew_seconds`` ahead of ``now`` (one bad clock must not move the model's time)."""
    if epoch > now + skew_seconds:
        ahead = epoch - int(now)
        raise ValueError(
            f"{_prefix(what)}{epoch_to_iso(epoch)} is in the future ({_duration(ahead)} ahead of this "
            f"machine's clock; at most {skew_seconds} s is accepted, setting time.max_future_seconds)"
        )
    return epoch


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "days"), (3600, "hours"), (60, "minutes")):
        if seconds >= 2 * size:
            return f"{seconds // size:,} {unit}"
    return f"{seconds} s"


def to_epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def iso_utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_to_iso(seconds: int) -> str:
    return iso_utc(dt.datetime.fromtimestamp(int(seconds), dt.UTC))


def parse_number(
    text: str,
    *,
    what: str = "number",
    minimum: float | None = None,
    exclusive: bool = False,
    maximum: float | None = None,
) -> float:
    """A decimal number as a spreadsheet writes it, within ``minimum`` (``exclusive``: strictly above) .. ``maximum``."""
    if not isinstance(text, str) or not _NUMBER_RE.match(text.strip()):
        raise ValueError(f"{what} {show(str(text))} is not a number (want digits with an optional '.' and sign)")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} {show(text)} is not finite")
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{what} must be {'>' if exclusive else '>='} {minimum:g}, got {show(text)}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} must be <= {maximum:g}, got {show(text)}")
    return value


def parse_int(text: str, *, what: str = "integer", minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number in plain digits, within ``minimum .. maximum``."""
    if not _INT_RE.match(str(text).strip()):
        raise ValueError(f"{what} {show(str(text))} is not an integer")
    value = int(str(text).strip())
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {show(str(text))}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{what} must be <= {maximum:,}, got {show(str(text))}")
    return value


def parse_flag(text: str, *, what: str = "flag") -> bool:
    low = str(text).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{what} {show(str(text))} is not true/false")


@functools.lru_cache(maxsize=1024)
def check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {show(name)} (want an IANA name such as Europe/London)") from None
    return name


# A whole number as a spreadsheet renders a numeric id: decimals (``17850.0``, ``17850.00``)
# or scientific notation with a point or a signed exponent (``1.785E+4``, ``1.785e4``,
# ``2E+04``). A spreadsheet never writes a number with a leading zero, so ``007`` and ``007.0`` are
# not matched, nor are codes such as ``12E4``: they stay as written.
_SPREADSHEET_NUMBER_RE = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.[0-9]*(?:[eE][+-]?[0-9]{1,3})?|[eE]\+[0-9]{1,3})$")
_MAX_ID_DIGITS = 30


def normalise_id(text: str) -> str:
    """The one id rule of every door (CSV imports, the API's paths and bodies, events, consent, tombstones).

    An id is text, compared exactly, after three steps:

    1. surrounding white space is trimmed;
    2. the text is put in Unicode NFC form (``é`` typed as ``e`` + accent is the same id as ``é``);
    3. a whole number as a spreadsheet renders a numeric id -- with a decimal point
       (``17850.0``, ``17850.00``) or in scientific notation with a point or a signed
       exponent (``1.785E+4``, ``2E+04``) -- is written in plain digits (``17850``).

    Nothing else changes: leading zeros are kept (``007`` and ``7`` are two ids, and
    ``007.0``, which no spreadsheet writes, stays as written; a spreadsheet that turned
    ``007`` into ``7`` has lost what cannot be guessed back),
    a number with a fraction (``17850.5``), a signed one (``-5.0``), a code such as ``12E4``
    and an id with letters (``C0834.0``) stay as written, and case is kept.
    """
    text = unicodedata.normalize("NFC", text.strip())
    if _SPREADSHEET_NUMBER_RE.match(text):
        try:
            value = decimal.Decimal(text)
        except decimal.InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
            return text
        if value == value.to_integral_value() and value.adjusted() < _MAX_ID_DIGITS:
            return str(int(value))
    return text


def parse_id(text: str, *, what: str = "id") -> str:
    """A normalised identifier (:func:`normalise_id`): not empty, at most ``MAX_ID_LENGTH`` characters, no
    control characters, not ``.`` or ``..``.

    The same limit as the API's, so an id imported from a file can always be
    asked for over HTTP (in a path, encoded as any text is).
    """
    value = normalise_id(text)
    if not value:
        raise ValueError(f"missing {what}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{what} {show(value)} is too long (at most {MAX_ID_LENGTH} characters)")
    bad = _CONTROL_RE.search(value)
    if bad:
        raise ValueError(f"{what} {show(value)} contains a control character (U+{ord(bad.group()):04X})")
    if value in (".", ".."):
        raise ValueError(f"{what} {value!r} cannot be an id (a URL path cannot carry it)")
    return value


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or ``localhost``) can only be reached from this machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
