"""Who may get an offer: the request's checks, occasions in each customer's window, consent and the ledger.

The rules every kind shares are here (:func:`eligible`): marketing consent; the ledger's
rule per kind (once per occasion year for birthdays and anniversaries, once per
``campaigns.<kind>_every_days`` for the lifecycle kinds, 0 = once ever); one live offer per
customer across all kinds (a ledger row whose ``valid_until`` is on or after the customer's
local today, held-out rows included, blocks every other); and within one run the first kind
of ``campaigns.priority``. Lifecycle candidates come from :mod:`.lifecycle`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns import kinds as campaign_kinds, occasions
from recommender.campaigns.results import MAX_ITEMS, CampaignRequest
from recommender.config import CampaignSettings
from recommender.errors import ConfigError, ValidationError
from recommender.store.consents import MARKETING


def check(request: CampaignRequest, conf: CampaignSettings) -> tuple[tuple[str, ...], int]:
    """The occasions and items per offer a valid request asks for; our errors for anything else."""
    chosen = campaign_kinds.parse(request.occasion)
    items = conf.items if request.items is None else request.items
    if not 1 <= items <= MAX_ITEMS:
        raise ValidationError(f"items must be between 1 and {MAX_ITEMS}, got {items}")
    if request.max_per_product is not None and request.max_per_product < 1:
        raise ValidationError(f"max per product must be >= 1, got {request.max_per_product}")
    if not 0 <= request.days_ahead <= occasions.MAX_DAYS_AHEAD:
        raise ValidationError(f"days ahead must be between 0 and {occasions.MAX_DAYS_AHEAD}, got {request.days_ahead}")
    if conf.feb29_rule not in occasions.FEB29_RULES:
        raise ConfigError(f"campaigns.feb29_rule must be one of {', '.join(occasions.FEB29_RULES)}")
    campaign_kinds.check(conf, chosen)
    if conf.valid_days_before < 0 or conf.valid_days_after < 0:
        raise ConfigError("campaigns.valid_days_before and valid_days_after must be >= 0")
    if conf.min_price < 0 or conf.max_price < 0 or (conf.max_price and conf.max_price < conf.min_price):
        raise ConfigError("campaigns price band: need 0 <= min_price <= max_price (0 = no bound)")
    if not 0 < conf.max_product_share <= 1:
        raise ConfigError("campaigns.max_product_share must be > 0 and <= 1 (1 = no spread rule)")
    return chosen, items


@dataclass
class Candidate:
    """One (customer, occasion) in the window, and what the run decides for it."""

    customer_id: str
    occasion: str
    date: int  # day number (days since 1970-01-01) of the occurrence
    year: int
    today: int  # the customer's local run date, as a day number
    reason: str | None = None  # why not personalized; None = has a personal list
    personal: list[int] = field(default_factory=list)  # catalogue rows, best first
    chosen: list[int] = field(default_factory=list)
    from_model: int = 0
    first_rank: int = 0  # rank (1 = top) of the first product taken, among the choices it could take
    capped: bool = False  # some better choice of theirs was skipped because it was full
    why: str | None = None  # a lifecycle kind's decision inputs (kind, rule, threshold crossed), for the decision log
    order: float = 0.0  # a lifecycle kind's cap order: lower goes first (most valuable, oldest first order)
    held_out: bool = False  # in the offers' holdout: recorded, never sent


def find(
    db: sqlite_utils.Database,
    conf: CampaignSettings,
    chosen: tuple[str, ...],
    instant: dt.datetime,
    days_ahead: int,
    skipped: dict[str, dict[str, int]],
) -> list[Candidate]:
    """Everyone whose occasion falls in their own window; date problems counted in ``skipped``."""
    near = occasions.month_days_near(instant, days_ahead)
    found: list[Candidate] = []
    for occasion in chosen:
        column = occasions.DATE_COLUMNS[occasion]
        ids, zones, dates = store.occasion_candidates(db, column, near)
        up = occasions.upcoming(dates, zones, instant, days_ahead, conf.feb29_rule)
        missing, malformed = store.occasion_date_quality(db, column)  # over all customers, not only those near
        skipped[occasion] = {
            "missing_date": missing,
            "malformed_date": malformed,
            "unknown_timezone": up.skipped["unknown_timezone"],
            "no_marketing_consent": 0,
            "already_offered": 0,
            "no_products": 0,
        }
        found += [
            Candidate(ids[r], occasion, d, y, t)
            for r, d, y, t in zip(
                up.rows.tolist(),
                up.dates.astype(np.int64).tolist(),
                up.years.tolist(),
                up.today.astype(np.int64).tolist(),
            )
        ]
    return found


def eligible(
    db: sqlite_utils.Database,
    found: list[Candidate],
    skipped: dict[str, dict[str, int]],
    conf: CampaignSettings | None = None,
) -> list[Candidate]:
    """Candidates with marketing consent, allowed by the ledger's rule of their kind, holding no live offer,
    and (with ``conf``) only the first kind of ``conf.priority`` per customer; the rest counted by reason."""
    who = sorted({c.customer_id for c in found})
    consenting = store.consented_among(db, who, MARKETING)
    offered = store.offered_keys(db, who)
    last = store.last_offered_on(db, who) if any(c.occasion in campaign_kinds.LIFECYCLE for c in found) else {}
    live = store.live_offers_until(db, who)
    kept = []
    for c in found:
        count = skipped.setdefault(c.occasion, {})
        if c.customer_id not in consenting:
            reason = "no_marketing_consent"
        elif (
            c.occasion in campaign_kinds.OCCASIONS and (c.customer_id, c.occasion, c.year) in offered
        ) or _within_period(c, last, conf):
            reason = "already_offered"
        elif live.get(c.customer_id, "") >= _iso(c.today):
            reason = "live_offer"
        else:
            kept.append(c)
            continue
        count[reason] = count.get(reason, 0) + 1
    if conf is None:
        return kept
    rank = {k: i for i, k in enumerate(conf.priority)}
    first: dict[str, Candidate] = {}
    for c in kept:
        best = first.get(c.customer_id)
        if best is None or rank.get(c.occasion, len(rank)) < rank.get(best.occasion, len(rank)):
            first[c.customer_id] = c
    out = []
    for c in kept:
        if first[c.customer_id] is c:
            out.append(c)
        else:
            count = skipped.setdefault(c.occasion, {})
            count["lower_priority"] = count.get("lower_priority", 0) + 1
    return out


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _iso(day: int) -> str:
    return dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def _within_period(c: Candidate, last: dict[tuple[str, str], str], conf: CampaignSettings | None) -> bool:
    """A lifecycle kind's ledger rule: an earlier row of this kind less than its period ago (0 = ever)."""
    if c.occasion not in campaign_kinds.LIFECYCLE or conf is None:
        return False
    before = last.get((c.customer_id, c.occasion))
    if before is None:
        return False
    period = campaign_kinds.every_days(conf, c.occasion)
    return period == 0 or c.today - (dt.date.fromisoformat(before).toordinal() - _EPOCH_ORDINAL) < period


def in_segments(
    db: sqlite_utils.Database,
    purpose: str,
    found: list[Candidate],
    wanted: tuple[str, ...],
    skipped: dict[str, dict[str, int]],
) -> list[Candidate]:
    """Candidates whose stored customer-value segment is in ``wanted`` (all when empty); the rest counted.

    The segment is the nightly refresh's (``customer_values``), read only for customers who grant
    ``purpose`` (``value.purpose``) now: a customer without a score is in no segment.
    """
    if not wanted:
        return found
    from recommender.value.segments import SEGMENTS

    unknown = [s for s in wanted if s not in SEGMENTS]
    if unknown:
        raise ValidationError(f"unknown segment {unknown[0]!r} (known: {', '.join(SEGMENTS)})")
    segment_of = store.value_segments_of(db, sorted({c.customer_id for c in found}), purpose)
    kept = []
    for c in found:
        if segment_of.get(c.customer_id) in wanted:
            kept.append(c)
        else:
            count = skipped.setdefault(c.occasion, {})
            count["not_in_segment"] = count.get("not_in_segment", 0) + 1
    return kept
