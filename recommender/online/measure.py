"""Online numbers: which served lists were clicked, carted and bought from, per arm, and the uplift.

Attribution (one rule, applied when the report is made, not when events arrive):

* A list belongs to the customer it was served to. An event that names a
  ``list_id`` counts for that list and no other, when the list showed the
  event's product and the event happened within ``online.window_hours`` after
  the list was served (``time.max_future_seconds`` earlier is tolerated, for
  client clocks). A ``list_id`` of a list served to *another* customer is not
  the event's to claim: it is ignored (counted in
  ``events.list_id_of_another_customer``) and the event is attributed as if it
  named no list.
* An event without one counts for the most recent list that showed this
  customer this product within the window before the event. Anonymous lists
  (unknown visitors, customers without personalization consent, product
  pages) hold no customer id, so only events that name them can count for
  them (from any customer: the decision log keeps no visitor id for them).
* Each event counts for at most one list. Clicks are ``online.click_events``
  (``view``), carts ``online.cart_events``, purchases ``purchase_events``.
* Revenue is quantity × unit price, where the event's own ``price`` counts only
  when plausible: within ``[catalogue / f, catalogue × f]`` of the product's
  current catalogue price, ``f`` = ``online.max_price_factor``. An implausible
  price (or one with no catalogue price to check it against) is replaced by
  the catalogue price (0 without one) and the event is *flagged*; an event
  without a price counts at the catalogue price, unflagged. A quantity above
  ``online.max_quantity`` counts as that many units, flagged the same way.
  Flagged events are counted per arm (``flagged``, ``flagged_share`` of the
  arm's attributed events) and in total (``events.flagged``); the stored event
  itself is kept as it was sent. Each event is a row of its own (events are a
  log), so a second purchase in the same second is a second purchase, with its
  own list and price.

Per list the outcome is binary for click, cart and purchase (did at least one
happen?) and a sum for revenue, so click-through = clicked lists / lists and
conversion = lists with a purchase / lists. Uplift compares each treated arm
with ``control`` on the same surface; its interval is described in
:mod:`.stats`. Lists served less than a window ago have not had their full
window yet; both arms are cut the same way, so the comparison stays fair.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.online import rulelog, stats
from recommender.online.assignment import CHALLENGER, CONTROL, MODEL
from recommender.values import parse_datetime

UNASSIGNED = "unassigned"
OFFERS = "offers"
TREATMENTS = (MODEL, CHALLENGER)
METRICS = ("conversion", "ctr", "revenue_per_list")


@dataclass
class Served:
    """One served list and what came of it."""

    list_id: str
    customer_id: str | None
    served_at: int
    surface: str
    model_version: str | None
    arm: str
    products: frozenset[str]
    clicked: bool = False
    carted: bool = False
    purchased: bool = False
    revenue: float = 0.0
    events: int = 0
    flagged: int = 0


@dataclass
class Attribution:
    lists: list[Served] = field(default_factory=list)
    explicit: int = 0
    implicit: int = 0
    unattributed: int = 0
    flagged: int = 0
    not_theirs: int = 0


def purchase_value(
    quantity: float, price: float | None, catalogue: float | None, max_price_factor: float, max_quantity: float
) -> tuple[float, bool]:
    """``(revenue, flagged)`` of one purchase under the revenue rule of the module docstring."""
    units, flagged = float(quantity), False
    if units > max_quantity:
        units, flagged = float(max_quantity), True
    base = None if catalogue is None else float(catalogue)
    if price is None:
        unit = base or 0.0
    elif base is not None and base / max_price_factor <= float(price) <= base * max_price_factor:
        unit = float(price)
    else:
        unit, flagged = base or 0.0, True
    return units * unit, flagged


def _epoch(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def surface_of(endpoint: str) -> str:
    """A campaign's offers are one surface; every API endpoint is its own."""
    return OFFERS if endpoint.startswith("campaign:") else endpoint


def load_lists(db: sqlite_utils.Database, since: str | None) -> list[Served]:
    rows = store.served_lists_since(db, since)
    return [
        Served(lid, cid, _epoch(at), surface_of(endpoint), version, arm or UNASSIGNED, frozenset(json.loads(products)))
        for lid, cid, at, endpoint, version, arm, products in rows
    ]


def attribute(db: sqlite_utils.Database, settings: Settings, lists: list[Served], since_epoch: int) -> Attribution:
    """Apply the attribution rule of the module docstring to every event since ``since_epoch``."""
    conf = settings.online
    window = int(conf.window_hours * 3600)
    skew = settings.time.max_future_seconds
    kinds = {
        **dict.fromkeys(conf.click_events, "click"),
        **dict.fromkeys(conf.cart_events, "cart"),
        **dict.fromkeys(settings.purchase_events, "purchase"),
    }
    by_id = {s.list_id: s for s in lists}
    # (customer, product) -> served times, ascending, and the lists at those times
    shown: dict[tuple[str, str], tuple[list[int], list[Served]]] = {}
    for s in lists:  # already in serving order
        if s.customer_id is None:
            continue
        for pid in s.products:
            times, served = shown.setdefault((s.customer_id, pid), ([], []))
            times.append(s.served_at)
            served.append(s)
    out = Attribution(lists)
    if not kinds:
        return out
    events = store.attributable_events(db, since_epoch, list(kinds))
    for cid, pid, kind, quantity, when, list_id, price, catalogue in events:
        target = None
        if list_id is not None:
            s = by_id.get(list_id)
            if s is not None and s.customer_id is not None and s.customer_id != cid:
                out.not_theirs += 1  # another customer's list: attributed as if it named none
                list_id = None
            elif s is not None and pid in s.products and s.served_at - skew <= when <= s.served_at + window:
                target = s
                out.explicit += 1
        if list_id is None:
            hit = shown.get((cid, pid))
            if hit is not None:
                times, served = hit
                k = bisect.bisect_right(times, when) - 1
                if k >= 0 and when - times[k] <= window:
                    target = served[k]
                    out.implicit += 1
        what = kinds[kind]
        flagged = False
        if what == "purchase":
            value, flagged = purchase_value(quantity, price, catalogue, conf.max_price_factor, conf.max_quantity)
            out.flagged += flagged
        if target is None:
            out.unattributed += 1
            continue
        target.events += 1
        target.flagged += flagged
        if what == "click":
            target.clicked = True
        elif what == "cart":
            target.carted = True
        else:
            target.purchased = True
            target.revenue += value
    return out


def _arm_row(key: tuple[str, str, str | None], group: list[Served]) -> dict[str, Any]:
    arm, surface, version = key
    n = len(group)
    clicks = sum(s.clicked for s in group)
    carts = sum(s.carted for s in group)
    purchases = sum(s.purchased for s in group)
    revenue = sum(s.revenue for s in group)
    events = sum(s.events for s in group)
    flagged = sum(s.flagged for s in group)
    return {
        "arm": arm,
        "surface": surface,
        "model_version": version,
        "lists": n,
        "customers": len({s.customer_id for s in group if s.customer_id is not None}),
        "clicks": clicks,
        "ctr": round(clicks / n, 6) if n else 0.0,
        "add_to_cart": carts,
        "add_to_cart_rate": round(carts / n, 6) if n else 0.0,
        "purchases": purchases,
        "conversion": round(purchases / n, 6) if n else 0.0,
        "revenue": round(revenue, 2),
        "revenue_per_list": round(revenue / n, 6) if n else 0.0,
        "events": events,
        "flagged": flagged,
        "flagged_share": round(flagged / events, 6) if events else 0.0,
    }


def _clusters(group: list[Served], metric: str) -> list[tuple[float, float]]:
    """``(lists, outcome)`` per customer (an anonymous list is its own cluster)."""
    per: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for n, s in enumerate(group):
        cell = per[s.customer_id if s.customer_id is not None else ("anonymous", n)]
        cell[0] += 1
        cell[1] += {"conversion": float(s.purchased), "ctr": float(s.clicked), "revenue_per_list": s.revenue}[metric]
    return [tuple(v) for v in per.values()]  # type: ignore[misc]


def _uplift(lists: list[Served]) -> list[dict[str, Any]]:
    by: dict[tuple[str, str], list[Served]] = defaultdict(list)
    for s in lists:
        by[s.surface, s.arm].append(s)
    out = []
    for surface in sorted({s for s, _ in by}):
        control = by.get((surface, CONTROL))
        if not control:
            continue
        for arm in TREATMENTS:
            treated = by.get((surface, arm))
            if not treated:
                continue
            for metric in METRICS:
                d = stats.difference(_clusters(treated, metric), _clusters(control, metric))
                out.append(
                    {
                        "surface": surface,
                        "metric": metric,
                        "treatment": arm,
                        "control": CONTROL,
                        "treatment_value": round(d["treatment_value"], 6),
                        "control_value": round(d["control_value"], 6),
                        "difference": round(d["difference"], 6),
                        "relative": None if d["relative"] is None else round(d["relative"], 6),
                        "ci95": [round(d["ci95"][0], 6), round(d["ci95"][1], 6)],
                        "n_treatment": len(treated),
                        "n_control": len(control),
                        "customers_treatment": len({s.customer_id for s in treated}),
                        "customers_control": len({s.customer_id for s in control}),
                    }
                )
    return out


def _rule_side(group: list[Served]) -> dict[str, Any]:
    n = len(group)
    clicks = sum(s.clicked for s in group)
    purchases = sum(s.purchased for s in group)
    revenue = sum(s.revenue for s in group)
    return {
        "lists": n,
        "customers": len({s.customer_id for s in group if s.customer_id is not None}),
        "clicks": clicks,
        "ctr": round(clicks / n, 6) if n else 0.0,
        "purchases": purchases,
        "conversion": round(purchases / n, 6) if n else 0.0,
        "revenue": round(revenue, 2),
        "revenue_per_list": round(revenue / n, 6) if n else 0.0,
    }


def by_rule(lists: list[Served], effects: dict[str, dict[str, dict[str, list[str]]]]) -> list[dict[str, Any]]:
    """Per rule, arm and surface: the lists the rule touched against the lists it did not, with what came of them.

    ``effects`` is ``{list_id: {rule: {"placed" | "moved" | "removed": [product ids]}}}`` (the
    decision log's ``rules``). A rule's comparison is the lists of the same arm and surface
    that it did not touch (other rules may have touched them); a surface or arm where the rule
    touched no list has no row. ``placed`` / ``moved`` / ``removed`` count the products it
    placed, moved and removed over its touched lists.
    """
    groups: dict[tuple[str, str], list[Served]] = defaultdict(list)
    for s in lists:
        groups[s.arm, s.surface].append(s)
    order = {MODEL: 0, CHALLENGER: 1, CONTROL: 2, UNASSIGNED: 3}
    out = []
    for (arm, surface), group in groups.items():
        names = sorted({r for s in group for r in effects.get(s.list_id, {})})
        for rule in names:
            touched = [s for s in group if rule in effects.get(s.list_id, {})]
            others = [s for s in group if rule not in effects.get(s.list_id, {})]
            counts = {
                e: sum(len(effects[s.list_id][rule].get(e, [])) for s in touched)
                for e in ("placed", "moved", "removed")
            }
            out.append(
                {
                    "rule": rule,
                    "arm": arm,
                    "surface": surface,
                    **counts,
                    "touched": _rule_side(touched),
                    "untouched": _rule_side(others),
                }
            )
    out.sort(key=lambda r: (r["rule"], r["surface"], order.get(r["arm"], 9), r["arm"]))
    return out


def rule_effects(db: sqlite_utils.Database, since: str | None) -> dict[str, dict[str, dict[str, list[str]]]]:
    """``{list_id: {rule: effects}}`` of every logged list that a rule changed (decisions.rules), since ``since``
    (records by rule set and by name alike, :mod:`recommender.online.rulelog`; an unreadable one is skipped)."""
    names_of = rulelog.names_in(db)
    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for list_id, _cid, _at, _endpoint, _arm, rules in store.rule_effect_rows(db, since):
        if list_id is None or not rules:
            continue
        found = rulelog.decode(rules, names_of)
        if found:
            out[list_id] = found
    return out


def report(db: sqlite_utils.Database, settings: Settings, since: str | None = None) -> dict[str, Any]:
    """Lists served, click-through, conversion and revenue per arm, surface and model; uplift over control.

    ``since`` is an ISO 8601 date or date-time (UTC without an offset): only
    lists served from then on, and events from then on, are counted. Without
    it, every list the decision log still holds (``privacy.retention_days``).
    """
    since_iso = None
    since_epoch = 0
    if since:
        try:
            moment = parse_datetime(since)
        except (ValueError, OverflowError) as exc:
            raise ValidationError(f"since: {exc}") from None
        since_iso = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        since_epoch = int(moment.timestamp())
    found = attribute(db, settings, load_lists(db, since_iso), since_epoch)
    groups: dict[tuple[str, str, str | None], list[Served]] = defaultdict(list)
    for s in found.lists:
        groups[s.arm, s.surface, s.model_version].append(s)
    order = {MODEL: 0, CHALLENGER: 1, CONTROL: 2, UNASSIGNED: 3}
    keys = sorted(groups, key=lambda k: (k[1], order.get(k[0], 9), k[0], k[2] or ""))
    conf = settings.online
    return {
        "since": since_iso,
        "window_hours": conf.window_hours,
        "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "control_share": conf.control_share,
        "challenger": conf.challenger or None,
        "challenger_share": conf.challenger_share,
        "arms": [_arm_row(k, groups[k]) for k in keys],
        "uplift": _uplift(found.lists),
        "rules": by_rule(found.lists, rule_effects(db, since_iso)),
        "events": {
            "attributed_by_list_id": found.explicit,
            "attributed_by_window": found.implicit,
            "unattributed": found.unattributed,
            "flagged": found.flagged,
            "list_id_of_another_customer": found.not_theirs,
        },
    }
