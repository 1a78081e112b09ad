"""What campaign offers earned, in customer terms: sent against held out, per kind, over 30 and 90 days.

Every ledger row is one offer decision: *sent* (a code went out) or *held out* (the customer
was eligible and deliberately not sent one, ``campaigns.holdout_share``, by the keyed hash of
:mod:`recommender.online.assignment`). For each offer and window W (30 and 90 days) the
outcome is what the customer bought from the offer date (``offered_on``, the customer's
local run date, from 00:00 UTC) to W days later: revenue (quantity x unit price under the
online report's revenue rule, :func:`recommender.online.measure.purchase_value`) and whether
they bought at all ("bought again"). Only offers whose whole window has passed by ``as_of``
(default: the later of now and the newest event) count; the rest are ``pending``.

The figures, per kind and arm: revenue per customer and the share who bought again, each
with a 95 % interval; and the uplift, sent minus held out, with the **incremental revenue**
= (revenue per customer sent − revenue per customer held out) × customers sent, and its
interval scaled alike. The intervals are those of :mod:`recommender.online.stats`: a ratio
of sums with customers as clusters (x = the customer's offers in the group, y = their
revenue or offers followed by a purchase), delta-method variance Σ(y − R·x)² / (Σx)², which
with one offer per customer is the sample variance / n (divisor n); arms independent, so the
difference has variance Var_sent + Var_held, and 95 % = ± 1.96 √Var (normal approximation:
rough with a few dozen customers per arm, which is why the sizes are printed beside it).

``total`` pools the kinds that have held-out customers (kinds without a holdout would bias
the comparison); a customer with offers of two kinds counts each offer's own window. The
``summary`` is one sentence a marketer can repeat.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from typing import Any

import sqlite_utils

from recommender import store
from recommender.campaigns import kinds as campaign_kinds
from recommender.config import Settings
from recommender.errors import ValidationError
from recommender.online import stats
from recommender.online.measure import purchase_value
from recommender.values import parse_date

WINDOWS = (30, 90)
SENT, HELD_OUT = "sent", "held_out"
DAY = 86400
METHOD = (
    "per offer, customers as clusters: ratio of sums with delta-method variance "
    "(recommender/online/stats.py); 95 % = estimate ± 1.96·SE, normal approximation; "
    "incremental revenue = (sent − held out per customer) × customers sent, interval scaled alike"
)


def _epoch(day: str) -> int:
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC).timestamp())


def _interval(value: float, var: float) -> list[float]:
    half = stats.Z95 * math.sqrt(var)
    return [value - half, value + half]


def _arm(offers: list[tuple[str, int, list[float]]], window: int, as_of: int) -> tuple[dict[str, Any], list, list]:
    """Figures of one arm over one window; and its (x, y) clusters for revenue and for buying again."""
    revenue: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    bought: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    pending = 0
    for cid, start, purchases in offers:
        end = start + window * DAY
        if end > as_of:
            pending += 1
            continue
        got = [v for t, v in purchases if start <= t < end]
        revenue[cid][0] += 1
        revenue[cid][1] += sum(got)
        bought[cid][0] += 1
        bought[cid][1] += 1.0 if got else 0.0
    rev = [tuple(v) for v in revenue.values()]
    buy = [tuple(v) for v in bought.values()]
    r, rv, n = stats.ratio(rev)
    p, pv, _ = stats.ratio(buy)
    offers_done = int(sum(x for x, _ in rev))
    return (
        {
            "offers": offers_done,
            "customers": n,
            "pending": pending,
            "revenue_per_customer": r if n else None,
            "revenue_ci95": _interval(r, rv) if n else None,
            "repeat_rate": p if n else None,
            "repeat_ci95": _interval(p, pv) if n else None,
            "revenue": sum(y for _, y in rev),
        },
        rev,
        buy,
    )


def _group(name: str, arms: dict[str, list[tuple[str, int, list[float]]]], as_of: int) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": name, "arms": {}, "uplift": {}}
    for arm in (SENT, HELD_OUT):
        offers = arms.get(arm, [])
        out["arms"][arm] = {"offers": len(offers), "customers": len({o[0] for o in offers}), "windows": {}}
    for w in WINDOWS:
        clusters = {}
        for arm in (SENT, HELD_OUT):
            figures, rev, buy = _arm(arms.get(arm, []), w, as_of)
            out["arms"][arm]["windows"][str(w)] = figures
            clusters[arm] = (rev, buy, figures)
        (rev_s, buy_s, f_s), (rev_h, buy_h, f_h) = clusters[SENT], clusters[HELD_OUT]
        if not rev_s or not rev_h:
            out["uplift"][str(w)] = None
            continue
        money = stats.difference(rev_s, rev_h)
        rate = stats.difference(buy_s, buy_h)
        sent = f_s["offers"]
        out["uplift"][str(w)] = {
            "n_sent": sent,
            "n_held_out": f_h["offers"],
            "customers_sent": f_s["customers"],
            "customers_held_out": f_h["customers"],
            "revenue_per_customer": {
                "difference": money["difference"],
                "relative": money["relative"],
                "ci95": money["ci95"],
            },
            "repeat_rate": {"difference": rate["difference"], "relative": rate["relative"], "ci95": rate["ci95"]},
            "incremental_revenue": money["difference"] * sent,
            "incremental_ci95": [money["ci95"][0] * sent, money["ci95"][1] * sent],
        }
    return out


def report(
    db: sqlite_utils.Database,
    settings: Settings,
    since: str | None = None,
    kind: str | None = None,
    as_of: int | None = None,
) -> dict[str, Any]:
    """The campaign report (see the module docstring) as one JSON-ready object."""
    if kind is not None and kind not in campaign_kinds.KINDS:
        raise ValidationError(f"kind must be one of {', '.join(campaign_kinds.KINDS)}, got {kind!r}")
    if since is not None:
        try:
            since = parse_date(since).isoformat()
        except ValueError as exc:
            raise ValidationError(f"since: {exc}") from None
    rows = store.offers_for_report(db, since, kind)
    latest = store.latest_event_time(db)
    if as_of is None:
        as_of = max(int(time.time()), latest or 0)
    purchases: dict[str, list[tuple[int, float]]] = defaultdict(list)
    if rows:
        start = min(_epoch(r[2]) for r in rows)
        end = max(_epoch(r[2]) for r in rows) + max(WINDOWS) * DAY
        conf = settings.online
        for cid, when, qty, price, catalogue in store.purchases_of(
            db, sorted({r[0] for r in rows}), settings.purchase_events, start, end
        ):
            value, _ = purchase_value(qty, price, catalogue, conf.max_price_factor, conf.max_quantity)
            purchases[cid].append((int(when), value))
    by_kind: dict[str, dict[str, list]] = defaultdict(lambda: {SENT: [], HELD_OUT: []})
    for cid, k, day, held in rows:
        by_kind[k][HELD_OUT if held else SENT].append((cid, _epoch(day), purchases.get(cid, [])))
    order = {k: i for i, k in enumerate(settings.campaigns.priority)}
    groups = [_group(k, by_kind[k], as_of) for k in sorted(by_kind, key=lambda k: order.get(k, len(order)))]
    measured = [k for k in by_kind if by_kind[k][HELD_OUT]]
    pooled = {
        SENT: [o for k in measured for o in by_kind[k][SENT]],
        HELD_OUT: [o for k in measured for o in by_kind[k][HELD_OUT]],
    }
    total = _group("+".join(sorted(measured, key=lambda k: order.get(k, 0))) or "none", pooled, as_of)
    payload = {
        "since": since,
        "kind": kind,
        "as_of": dt.datetime.fromtimestamp(as_of, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "windows": list(WINDOWS),
        "holdout_share": settings.campaigns.holdout_share,
        "method": METHOD,
        "kinds": groups,
        "total": total,
        "measured_kinds": sorted(measured, key=lambda k: order.get(k, 0)),
    }
    payload["summary"] = sentence(payload, getattr(settings.value, "currency", ""))
    return payload


def _money(x: float, currency: str) -> str:
    sign = "−" if x < 0 else ""
    return f"{sign}{currency}{abs(x):,.0f}" if abs(x) >= 100 else f"{sign}{currency}{abs(x):,.2f}"


_NAMES = {
    "birthday": "birthday",
    "anniversary": "anniversary",
    "winback": "win-back",
    "second_purchase": "second-purchase",
    "thank_you": "thank-you",
}


def sentence(payload: dict[str, Any], currency: str = "") -> str:
    """One sentence a marketer can repeat: the pooled uplift over the longest window measured so far."""
    cur = f"{currency} " if currency and len(currency) > 1 else currency
    if not payload["kinds"]:
        return "No campaign offers in the ledger yet."
    if not payload["measured_kinds"]:
        return (
            "No customers were held out of these offers, so their extra revenue cannot be measured "
            "(campaigns.holdout_share sets the share held out)."
        )
    total = payload["total"]
    names = " and ".join(", ".join(_NAMES[k] for k in payload["measured_kinds"]).rsplit(", ", 1))
    for w in sorted(WINDOWS, reverse=True):
        u = total["uplift"].get(str(w))
        if u is None:
            continue
        d, (lo, hi) = u["revenue_per_customer"]["difference"], u["revenue_per_customer"]["ci95"]
        inc, (ilo, ihi) = u["incremental_revenue"], u["incremental_ci95"]
        more = "more" if d >= 0 else "less"
        text = (
            f"In the {w} days after a {names} offer, the {u['customers_sent']:,} customers who got one spent "
            f"{_money(abs(d), cur)} {more} each than the {u['customers_held_out']:,} held out "
            f"(95 % interval {_money(lo, cur)} to {_money(hi, cur)}): about {_money(inc, cur)} extra revenue "
            f"in all ({_money(ilo, cur)} to {_money(ihi, cur)})"
        )
        if lo <= 0 <= hi:
            text += ", not yet distinguishable from no effect"
        return text + "."
    pending = sum(a["windows"][str(min(WINDOWS))]["pending"] for a in total["arms"].values())
    return (
        f"Customers were held out of {names} offers, but no offer's {min(WINDOWS)}-day window has ended yet "
        f"({pending:,} pending), so there is nothing to compare so far."
    )


def human(payload: dict[str, Any]) -> str:
    """Tables for a terminal."""
    lines = [
        f"campaign report since {payload['since'] or 'the first offer'}"
        + (f", kind {payload['kind']}" if payload["kind"] else "")
        + f" (as of {payload['as_of']}; holdout share {payload['holdout_share']:g})"
    ]
    fmt = lambda v: "–" if v is None else f"{v:,.2f}"  # noqa: E731
    pct = lambda v: "–" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for g in [
        *payload["kinds"],
        *([payload["total"]] if payload["measured_kinds"] and len(payload["kinds"]) > 1 else []),
    ]:
        label = g["kind"] if g is not payload["total"] else f"all measured ({g['kind']})"
        lines.append(f"{label}: sent {g['arms'][SENT]['offers']:,}, held out {g['arms'][HELD_OUT]['offers']:,}")
        lines.append(
            f"  {'window':>6} {'arm':<9} {'offers':>7} {'rev/cust.':>10} {'95% CI':>21} {'bought again':>12} "
            f"{'95% CI':>15} {'pending':>7}"
        )
        for w in WINDOWS:
            for arm in (SENT, HELD_OUT):
                f = g["arms"][arm]["windows"][str(w)]
                ci = "–" if f["revenue_ci95"] is None else f"{fmt(f['revenue_ci95'][0])} … {fmt(f['revenue_ci95'][1])}"
                rci = "–" if f["repeat_ci95"] is None else f"{pct(f['repeat_ci95'][0])} … {pct(f['repeat_ci95'][1])}"
                lines.append(
                    f"  {w:>4} d {arm:<9} {f['offers']:>7,} {fmt(f['revenue_per_customer']):>10} {ci:>21} "
                    f"{pct(f['repeat_rate']):>12} {rci:>15} {f['pending']:>7,}"
                )
            u = g["uplift"][str(w)]
            if u is not None:
                m, r = u["revenue_per_customer"], u["repeat_rate"]
                lines.append(
                    f"  {w:>4} d uplift: {m['difference']:+,.2f} per customer [{fmt(m['ci95'][0])}, "
                    f"{fmt(m['ci95'][1])}], bought again {100 * r['difference']:+.1f} pt; incremental revenue "
                    f"{u['incremental_revenue']:+,.2f} [{fmt(u['incremental_ci95'][0])}, "
                    f"{fmt(u['incremental_ci95'][1])}] (n = {u['n_sent']} / {u['n_held_out']})"
                )
    lines.append(payload["summary"])
    return "\n".join(lines)
