"""Lifecycle campaigns: win-back, second purchase and thank-you, on the occasion machinery.

:func:`find` turns the shop's purchase history and customer value into candidates of the
same shape as birthdays (:class:`~recommender.campaigns.eligibility.Candidate`, the offer
dated the customer's local run date); from there every kind goes the same way: marketing
consent, the ledger's rule, one live offer per customer with the stated priority
(:func:`recommender.campaigns.eligibility.eligible`), the cap on customers per run
(:func:`cap`), the holdout (:func:`hold_out`), products from the one ranking path, the
ledger and the decision log.

- **win-back**: spend so far in the top ``winback_spend_top`` of profiled customers and a
  chance of being active (``p_active`` of :mod:`recommender.value`) below
  ``winback_p_active_below``;
- **second purchase**: exactly one purchase day, between ``second_purchase_after_days`` and
  ``second_purchase_within_days`` days before the run. Purchase history only: the count and
  date of a customer's orders are the shop's own record (as on a receipt), not a profile, so
  this kind needs marketing consent (for the contact) and nothing else;
- **thank-you**: value segment in ``thank_you_segments``.

Value kinds read scores through :func:`recommender.value.lookup.for_customers` as of the
day before the run (complete days only): customers without the profiling consent
(``value.purpose``) have no score, are never eligible, and are counted once as
``not_profiled``. Each candidate carries ``why``: the inputs of the decision and nothing
more (kind, the rule, the threshold crossed), which the decision log records.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns import kinds as campaign_kinds, occasions
from recommender.campaigns.eligibility import Candidate
from recommender.config import CampaignSettings, Settings
from recommender.online.assignment import holdout
from recommender.value import lookup

DAY = 86400


def _pct(share: float) -> str:
    value = 100 * share
    return f"{value:.0f} %" if value >= 1 or value == 0 else f"{value:.1f} %"


def _iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day))).isoformat()


def _skips(not_profiled: int | None = None) -> dict[str, int]:
    base = {
        "unknown_timezone": 0,
        "no_marketing_consent": 0,
        "already_offered": 0,
        "live_offer": 0,
        "lower_priority": 0,
        "over_cap": 0,
        "no_products": 0,
    }
    if not_profiled is not None:
        base["not_profiled"] = not_profiled
    return base


def find(
    db: sqlite_utils.Database,
    settings: Settings,
    chosen: tuple[str, ...],
    instant: dt.datetime,
    skipped: dict[str, dict[str, int]],
) -> list[Candidate]:
    """Every customer a lifecycle kind of ``chosen`` applies to at ``instant``, with why; counts in ``skipped``."""
    conf = settings.campaigns
    run_day = (instant.astimezone(dt.UTC).date() - dt.date(1970, 1, 1)).days
    picked: list[tuple[str, str, str, float]] = []  # (customer, kind, why, cap order)
    value_kinds = [k for k in campaign_kinds.VALUE_KINDS if k in chosen]
    if value_kinds:
        values = lookup.for_customers(db, settings, None, as_of=run_day - 1)
        for i, kind in enumerate(value_kinds):  # customers without the profiling consent: counted once
            skipped[kind] = _skips(values.not_profiled if i == 0 else 0)
        for cid, v in sorted(values.by_customer.items()):
            if (
                "winback" in value_kinds
                and v.spend_top <= conf.winback_spend_top
                and v.p_active < conf.winback_p_active_below
            ):
                picked.append(
                    (
                        cid,
                        "winback",
                        f"winback: p_active {v.p_active:.2f} < {conf.winback_p_active_below:.2f}; "
                        f"spend so far in the top {_pct(v.spend_top)} (rule: top {_pct(conf.winback_spend_top)})",
                        -v.spend_to_date,
                    )
                )
            if "thank_you" in value_kinds and v.segment in conf.thank_you_segments:
                picked.append(
                    (
                        cid,
                        "thank_you",
                        f"thank_you: segment {v.segment} (rule: segment in {', '.join(conf.thank_you_segments)})",
                        -v.spend_to_date,
                    )
                )
    if "second_purchase" in chosen:
        skipped["second_purchase"] = _skips()
        after, within = conf.second_purchase_after_days, conf.second_purchase_within_days
        for cid, first in store.one_time_buyers(
            db, settings.purchase_events, run_day * DAY, run_day - within, run_day - after
        ):
            picked.append(
                (
                    cid,
                    "second_purchase",
                    f"second_purchase: 1 purchase day, {_iso(first)}, "
                    f"{run_day - first} days before the run (rule: {after} to {within} days)",
                    float(first),
                )
            )
    if not picked:
        return []
    zones = store.customer_timezones(db, sorted({p[0] for p in picked}))
    today, known = occasions.local_today([zones.get(p[0]) for p in picked], instant)
    days = today.astype(np.int64).tolist()
    years = (today.astype("datetime64[Y]").astype(np.int64) + 1970).tolist()
    found = []
    for (cid, kind, why, order), day, year, ok in zip(picked, days, years, known.tolist()):
        if not ok:
            skipped[kind]["unknown_timezone"] += 1
            continue
        found.append(Candidate(cid, kind, day, year, day, why=why, order=order))
    return found


def cap(candidates: list[Candidate], conf: CampaignSettings, skipped: dict[str, dict[str, int]]) -> list[Candidate]:
    """At most ``campaigns.<kind>_max_customers`` per lifecycle kind (0 = no cap): the most valuable (win-back,
    thank-you) or the oldest first order (second purchase) first; the rest counted as ``over_cap``."""
    out = [c for c in candidates if c.occasion not in campaign_kinds.LIFECYCLE]
    for kind in campaign_kinds.LIFECYCLE:
        these = sorted((c for c in candidates if c.occasion == kind), key=lambda c: (c.order, c.customer_id))
        limit = campaign_kinds.max_customers(conf, kind)
        if limit and len(these) > limit:
            skipped.setdefault(kind, _skips())["over_cap"] = (
                skipped.get(kind, {}).get("over_cap", 0) + len(these) - limit
            )
            these = these[:limit]
        out += these
    return out


def hold_out(db: sqlite_utils.Database, conf: CampaignSettings, candidates: list[Candidate]) -> int:
    """Mark the held-out candidates (kinds in ``campaigns.holdout_kinds``); returns how many.

    The keyed hash of :func:`recommender.online.assignment.holdout`: the same customers every
    run, for every kind held out, so a held-out customer is never sent a lifecycle offer.
    """
    ids = sorted({c.customer_id for c in candidates if c.occasion in conf.holdout_kinds})
    held = holdout(db, ids, conf.holdout_share, conf.holdout_salt)
    n = 0
    for c in candidates:
        if c.occasion in conf.holdout_kinds and c.customer_id in held:
            c.held_out = True
            n += 1
    return n
