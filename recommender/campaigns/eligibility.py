"""Who may get an offer: the request's checks, occasions in each customer's window, consent and the ledger."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns import occasions
from recommender.config import CampaignSettings
from recommender.store.consents import MARKETING
from recommender.errors import ConfigError, ValidationError
from recommender.campaigns.results import MAX_ITEMS, CampaignRequest


def check(request: CampaignRequest, conf: CampaignSettings) -> tuple[tuple[str, ...], int]:
    """The occasions and items per offer a valid request asks for; our errors for anything else."""
    if request.occasion == "all":
        chosen = occasions.OCCASIONS
    elif request.occasion in occasions.OCCASIONS:
        chosen = (request.occasion,)
    else:
        raise ValidationError(f"occasion must be birthday, anniversary or all, got {request.occasion!r}")
    items = conf.items if request.items is None else request.items
    if not 1 <= items <= MAX_ITEMS:
        raise ValidationError(f"items must be between 1 and {MAX_ITEMS}, got {items}")
    if request.max_per_product is not None and request.max_per_product < 1:
        raise ValidationError(f"max per product must be >= 1, got {request.max_per_product}")
    if not 0 <= request.days_ahead <= occasions.MAX_DAYS_AHEAD:
        raise ValidationError(f"days ahead must be between 0 and {occasions.MAX_DAYS_AHEAD}, got {request.days_ahead}")
    if conf.feb29_rule not in occasions.FEB29_RULES:
        raise ConfigError(f"campaigns.feb29_rule must be one of {', '.join(occasions.FEB29_RULES)}")
    for o in chosen:
        if not 0 < conf.discounts.get(o, 0) < 100:
            raise ConfigError(f"campaigns.discounts needs a {o} discount between 0 and 100 (percent)")
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


def find(db: sqlite_utils.Database, conf: CampaignSettings, chosen: tuple[str, ...], instant: dt.datetime,
         days_ahead: int, skipped: dict[str, dict[str, int]]) -> list[Candidate]:
    """Everyone whose occasion falls in their own window; date problems counted in ``skipped``."""
    near = occasions.month_days_near(instant, days_ahead)
    found: list[Candidate] = []
    for occasion in chosen:
        column = occasions.DATE_COLUMNS[occasion]
        ids, zones, dates = store.occasion_candidates(db, column, near)
        up = occasions.upcoming(dates, zones, instant, days_ahead, conf.feb29_rule)
        missing, malformed = store.occasion_date_quality(db, column)  # over all customers, not only those near
        skipped[occasion] = {"missing_date": missing, "malformed_date": malformed,
                             "unknown_timezone": up.skipped["unknown_timezone"],
                             "no_marketing_consent": 0, "already_offered": 0, "no_products": 0}
        found += [Candidate(ids[r], occasion, d, y, t) for r, d, y, t in zip(
            up.rows.tolist(), up.dates.astype(np.int64).tolist(), up.years.tolist(),
            up.today.astype(np.int64).tolist())]
    return found


def eligible(db: sqlite_utils.Database, found: list[Candidate], skipped: dict[str, dict[str, int]]) -> list[Candidate]:
    """Candidates with marketing consent and no offer yet for this occasion-year; the rest counted."""
    who = sorted({c.customer_id for c in found})
    consenting = store.consented_among(db, who, MARKETING)
    offered = store.offered_keys(db, who)
    kept = []
    for c in found:
        if c.customer_id not in consenting:
            skipped[c.occasion]["no_marketing_consent"] += 1
        elif (c.customer_id, c.occasion, c.year) in offered:
            skipped[c.occasion]["already_offered"] += 1
        else:
            kept.append(c)
    return kept
