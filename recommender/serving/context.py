"""Who a list is for, as the merchandising rules read it: one request's surface, customer, arm and time.

A :class:`Context` is made per list and read lazily: the customer's events, whether they are
new or returning, their value segment, and what the decision log says they were shown (for
rotations), each read at most once. The request's time is kept in Unix seconds, which is
what a worker compares on every list (a ``datetime`` only when a rule's schedule is worked
out again).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlite_utils

from recommender import store
from recommender.serving.rules import segment_of

Event = tuple[str, str, float, int]

_SINCE: dict[int, tuple[int, str]] = {}  # window days -> (the second, the decision log's time that far back)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def listed(text: str) -> frozenset[str]:
    """The product ids of a logged list: ``json.dumps`` of a list of ids (``["P1", "P2"]``), split without the JSON
    parser when no id needed escaping (a frequent customer's week is dozens of lists, read on each of their lists)."""
    if text.startswith('["') and text.endswith('"]') and "\\" not in text and '","' not in text:
        return frozenset(text[2:-2].split('", "'))
    return frozenset(json.loads(text))


# --- who is asking ----------------------------------------------------------------------------


@dataclass
class Context:
    """One list's request: the surface and, for a customer's list, who it is for (read lazily)."""

    surface: str
    customer_id: str | None = None
    arm: str | None = None
    db: sqlite_utils.Database | None = None
    events: Sequence[Event] | None = None  # the customer's events when the caller read them already
    purchase_events: Sequence[str] = ("purchase",)
    now: dt.datetime | None = None
    _visitor: str | None = None
    _segment: tuple[str | None] | None = None
    _seen: dict[int, dict[str, int]] = field(default_factory=dict)
    _log: tuple[int, int, list[tuple[str, frozenset[str]]]] | None = None  # (days, at_least, lists) as last read
    _epoch: float | None = None
    _counted: tuple[int, int] | None = None  # (days, lists served in them) as counted with the rules' version

    @property
    def epoch(self) -> float:
        """This request's time in Unix seconds (``now``'s when given): what a worker compares on every list, without
        a ``datetime`` (whose code a request would otherwise load for a few comparisons)."""
        if self._epoch is None:
            self._epoch = time.time() if self.now is None else self.now.timestamp()
        return self._epoch

    @property
    def at(self) -> dt.datetime:
        if self.now is None:
            self.now = dt.datetime.fromtimestamp(self.epoch, dt.UTC)
        return self.now

    def customer_events(self) -> Sequence[Event]:
        if self.events is None:
            self.events = store.customer_events(self.db, self.customer_id) if (self.db and self.customer_id) else ()
        return self.events

    def visitor(self) -> str:
        """``anonymous`` (no customer we may profile), ``returning`` (has bought) or ``new``."""
        if self._visitor is None:
            if self.customer_id is None:
                self._visitor = "anonymous"
            else:
                kinds = set(self.purchase_events)
                self._visitor = "returning" if any(e[1] in kinds for e in self.customer_events()) else "new"
        return self._visitor

    def segment(self) -> str | None:
        if self._segment is None:
            self._segment = (segment_of(self.db, self.customer_id) if self.customer_id else None,)
        return self._segment[0]

    def since(self, days: int) -> str:
        """The decision log's time ``days`` days before this request (``YYYY-MM-DDTHH:MM:SSZ``), written once per
        second and window by a worker."""
        second = int(self.epoch // 1)
        got = _SINCE.get(days)
        if got is None or got[0] != second:
            got = _SINCE[days] = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second - days * 86400)))
        return got[1]

    def lists_counted(self, days: int, count: int) -> None:
        """Known already (:meth:`~recommender.serving.rulesets.Rulebook.refresh` counted them with the rules'
        version): this customer was served ``count`` lists in the last ``days`` days. :meth:`read_impressions`
        then never counts them again for a window as long or shorter: it reads none when there are too few, else
        reads them at once."""
        self._counted = (days, count)

    def read_impressions(self, days: int, at_least: int = 0) -> bool:
        """Read this customer's lists of the last ``days`` days from the decision log once (the longest window);
        none when fewer than ``at_least`` (then no product was shown that often). Whether any were read."""
        log = self._log
        if log is None or log[0] < days or (log[1] > at_least and not log[2]):  # (all lists were read when any was)
            counted = self._counted
            if counted is not None and counted[0] >= days:
                days, served = counted  # (fewer in a shorter window: too few there too)
                rows = (
                    [] if served < at_least else store.recent_impressions(self.db, self.customer_id, self.since(days))
                )
            else:
                rows = store.recent_impressions(self.db, self.customer_id, self.since(days), at_least)
            self._log = (days, at_least, [(at, listed(ids)) for at, ids in rows])
            self._seen.clear()
        return bool(self._log[2])

    def impressions(self, days: int, at_least: int = 0) -> dict[str, int]:
        """How many lists served to this customer in the last ``days`` days showed each product (decision log);
        empty when fewer than ``at_least`` lists were served."""
        self.read_impressions(days, at_least)
        counts = self._seen.get(days)
        if counts is None:
            since = self.since(days)
            counts = self._seen[days] = Counter()
            for at, products in self._log[2]:
                if at >= since:
                    counts.update(products)
        return counts

    def engaged(self, days: int) -> set[str]:
        """Products this customer had any event on in the last ``days`` days (a click, a cart, a purchase)."""
        since = self.epoch - days * 86400
        return {e[0] for e in self.customer_events() if e[3] >= since}


__all__ = ["Context", "Event", "listed", "utc_now"]
