"""Finding birthdays and anniversaries that fall in a campaign window, in each customer's own time zone.

The run instant. A campaign runs at one instant: ``--at`` (an ISO 8601
timestamp) when given, otherwise ``--date D`` read as **D at 12:00 UTC**,
otherwise now. Noon UTC is the instant at which D is the local date in every
zone from UTC−12 to UTC+11 (all of the Americas, Europe, Africa, Asia,
Australia); only zones east of that — Auckland, Tonga, Kiritimati — are
already on D+1. Each customer's local "today" is that instant converted to
their IANA time zone, and their window is ``[today, today + days_ahead]``,
both ends included. So a customer in Auckland and one in Honolulu can be on
different dates for the same run, exactly as they are in reality.

An occasion's date in year Y is the month and day of the stored date in Y;
29 February falls on 28 February (``feb28``, the default) or 1 March
(``mar1``) in non-leap years. The occurrence counted is the first one on or
after the customer's local today, so a window that crosses the new year finds
January dates in the next year, and its year is the ``occasion_year`` the
offers ledger is unique on. An occurrence in or before the stored date's own
year (a wedding planned for next month) is not an occasion.

Everything is vectorised: dates are decoded from their characters with numpy,
and local dates are computed once per distinct time zone, not per customer,
so a million customers take well under a second.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.errors import ValidationError
from recommender.values import parse_date, parse_datetime

OCCASIONS = ("birthday", "anniversary")
DATE_COLUMNS = {"birthday": "birth_date", "anniversary": "anniversary_date"}
FEB29_RULES = ("feb28", "mar1")
MAX_DAYS_AHEAD = 366

# A campaign's run instant must lie in this range: customers' local dates (UTC-12 to
# UTC+14), windows of up to a year and next year's occurrences must all stay far from
# the ends of the calendar (year 1 and 9999), where date arithmetic overflows.
RUN_RANGE = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime(2101, 1, 1, tzinfo=dt.UTC))

# Status codes of a stored date.
OK, MISSING, MALFORMED = 0, 1, 2
_DAYS_IN_MONTH = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def run_instant(date: str | None = None, at: str | None = None) -> dt.datetime:
    """The campaign's instant (aware, UTC): ``at``, else ``date`` at 12:00 UTC, else now."""
    if date is not None and at is not None:
        raise ValidationError("give --date or --at, not both")
    if at is not None:
        try:
            return _in_range(parse_datetime(at), "--at", at)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(f"--at: {exc if isinstance(exc, ValueError) else f'{at!r} out of range'}") from None
    if date is not None:
        try:
            day = parse_date(date)
        except ValueError as exc:
            raise ValidationError(f"--date: {exc}") from None
        return _in_range(dt.datetime.combine(day, dt.time(12), dt.UTC), "--date", date)
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _in_range(instant: dt.datetime, name: str, text: str) -> dt.datetime:
    low, high = RUN_RANGE
    if not low <= instant < high:
        raise ValidationError(
            f"{name}: {text!r} is out of range (campaign dates run from {low.date()} "
            f"to {(high - dt.timedelta(days=1)).date()})"
        )
    return instant


def is_leap(year: np.ndarray) -> np.ndarray:
    return (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))


def decode_dates(dates: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(year, month, day, status)`` of ``YYYY-MM-DD`` texts; status is OK, MISSING or MALFORMED.

    Done on the characters' bytes instead of ``date.fromisoformat`` per row:
    a million dates decode in about a tenth of a second. A date must exist in
    the calendar (29 February only in leap years), like everywhere else in
    the engine.
    """
    n = len(dates)
    texts = ["" if d is None else d for d in dates]
    try:
        raw = np.array(texts, dtype="S11")
    except UnicodeEncodeError:  # non-ASCII text cannot be a date; keep it as a non-digit
        raw = np.array([t if t.isascii() else "?" for t in texts], dtype="S11")
    chars = raw.reshape(n).view(np.uint8).reshape(n, 11)
    digit = [chars[:, i].astype(np.int32) - 48 for i in range(11)]
    positions = (0, 1, 2, 3, 5, 6, 8, 9)
    shape_ok = (chars[:, 4] == 45) & (chars[:, 7] == 45) & (chars[:, 10] == 0)
    for i in positions:
        shape_ok &= (digit[i] >= 0) & (digit[i] <= 9)
    year = digit[0] * 1000 + digit[1] * 100 + digit[2] * 10 + digit[3]
    month = digit[5] * 10 + digit[6]
    day = digit[8] * 10 + digit[9]
    month_ok = (month >= 1) & (month <= 12)
    limit = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] - ((month == 2) & ~is_leap(year))
    valid = shape_ok & month_ok & (year >= 1) & (day >= 1) & (day <= limit)
    status = np.where(valid, OK, np.where(chars[:, 0] == 0, MISSING, MALFORMED)).astype(np.int8)
    return year, month, day, status


def local_today(timezones: Sequence[str | None], instant: dt.datetime) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's local date at ``instant`` (``datetime64[D]``) and whether their zone is known.

    Zones are resolved once each: a shop has a few dozen distinct zones, not
    a million (Arrow's hash encoding finds them). A missing zone is UTC (the
    column's default); an unknown one is flagged, never guessed.
    """
    encoded = pc.fill_null(pa.array(list(timezones), type=pa.string()), "UTC").dictionary_encode()
    index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    names = encoded.dictionary.to_pylist()
    per_zone = np.zeros(len(names), dtype="datetime64[D]")
    known = np.ones(len(names), dtype=bool)
    for code, name in enumerate(names):
        try:
            per_zone[code] = np.datetime64(instant.astimezone(zoneinfo.ZoneInfo(name)).date())
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            known[code] = False
    return per_zone[index], known[index]


def occurrence(year: np.ndarray, month: np.ndarray, day: np.ndarray, feb29_rule: str) -> np.ndarray:
    """The date of (month, day) in ``year``, with 29 February moved by ``feb29_rule`` in non-leap years.

    Adding ``day - 1`` days to the first of the month makes 29 February of a
    non-leap year land on 1 March by itself; ``feb28`` clamps it instead.
    """
    year = np.asarray(year, dtype=np.int64)
    day = np.asarray(day, dtype=np.int64)
    if feb29_rule == "feb28":
        day = np.where((month == 2) & (day == 29) & ~is_leap(year), 28, day)
    months = ((year - 1970) * 12 + (np.asarray(month, dtype=np.int64) - 1)).astype("datetime64[M]")
    return months.astype("datetime64[D]") + (day - 1)


def month_days_near(instant: dt.datetime, days_ahead: int) -> list[str] | None:
    """Every ``MM-DD`` a stored date can have to fall in some customer's window; None = any.

    Local dates are within a day of the UTC date (offsets run from −12 to
    +14 hours), so the windows of all customers together lie in
    ``[UTC date − 1, UTC date + days_ahead + 1]``. ``02-29`` is added when that
    range touches 28 February or 1 March, where it falls in non-leap years.
    A database can use this to read only the customers that may match.
    """
    if days_ahead + 3 >= 366:
        return None
    start = instant.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    days = {(start + dt.timedelta(days=i)).strftime("%m-%d") for i in range(days_ahead + 3)}
    if days & {"02-28", "03-01"}:
        days.add("02-29")
    return sorted(days)


@dataclass
class Upcoming:
    """Customers (row numbers into the input) with an occurrence in their window."""

    rows: np.ndarray
    dates: np.ndarray  # datetime64[D]: the occurrence
    years: np.ndarray  # its year: the offers ledger's occasion_year
    today: np.ndarray  # datetime64[D]: the customer's local date at the run instant
    skipped: dict[str, int] = field(default_factory=dict)


def upcoming(
    dates: Sequence[str | None],
    timezones: Sequence[str | None],
    instant: dt.datetime,
    days_ahead: int,
    feb29_rule: str = "feb28",
) -> Upcoming:
    """Which of these stored dates have an occurrence in ``[local today, local today + days_ahead]``.

    Missing dates, malformed dates and unknown time zones are skipped and
    counted (``missing_date``, ``malformed_date``, ``unknown_timezone``).
    """
    if feb29_rule not in FEB29_RULES:
        raise ValidationError(f"feb29_rule must be one of {', '.join(FEB29_RULES)}, got {feb29_rule!r}")
    if not 0 <= days_ahead <= MAX_DAYS_AHEAD:
        raise ValidationError(f"days ahead must be between 0 and {MAX_DAYS_AHEAD}, got {days_ahead}")
    if len(dates) != len(timezones):
        raise ValueError("dates and timezones differ in length")
    year, month, day, status = decode_dates(dates)
    today, known = local_today(timezones, instant)
    usable = (status == OK) & known
    skipped = {
        "missing_date": int((status == MISSING).sum()),
        "malformed_date": int((status == MALFORMED).sum()),
        "unknown_timezone": int(((status == OK) & ~known).sum()),
    }
    rows = np.flatnonzero(usable)
    year, month, day, today = year[rows], month[rows], day[rows], today[rows]
    this_year = today.astype("datetime64[Y]").astype(np.int64) + 1970
    occ = occurrence(this_year, month, day, feb29_rule)
    later = occ < today
    occ_year = np.where(later, this_year + 1, this_year)
    occ = np.where(later, occurrence(this_year + 1, month, day, feb29_rule), occ)
    hit = ((occ - today).astype(np.int64) <= days_ahead) & (occ_year > year)
    return Upcoming(rows[hit], occ[hit], occ_year[hit], today[hit], skipped)
