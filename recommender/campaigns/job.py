"""One campaign run, start to end: occasions, eligibility, choices, allocation, ledger and export."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns import allocation, choice, eligibility, export, kinds, ledger, lifecycle, occasions
from recommender.campaigns.eligibility import Candidate
from recommender.campaigns.results import CampaignRequest, CampaignResult, Offer
from recommender.config import CampaignSettings, Settings
from recommender.models.base import Recommender
from recommender.serving.catalogue import Catalogue


def run(
    db: sqlite_utils.Database,
    settings: Settings,
    request: CampaignRequest,
    *,
    dry_run: bool = False,
    out: str | Path | None = None,
    model: Recommender | None = None,
    force: bool = False,
    campaign_id: str | None = None,
) -> CampaignResult:
    """Run (or with ``dry_run`` preview) one campaign; see :mod:`recommender.campaigns` for the rules.

    ``model`` defaults to the published model; without one every offer uses
    popular products (``reason: no_model``). ``out`` (``.csv`` or ``.jsonl``)
    receives one row per offer, also in a dry run (marked as a preview); an
    existing file is replaced only with ``force``. ``campaign_id`` names the run (the console names its
    export after it); by default ``<date>-<occasion>-<8 hex>``.
    """
    started = time.perf_counter()
    conf = settings.campaigns
    chosen_occasions, k = eligibility.check(request, conf)
    out_path = export.check_out(out, force)
    instant = occasions.run_instant(request.date, request.at)
    model = model if model is not None else choice.load_model(settings)
    run_at = instant.strftime("%Y-%m-%dT%H:%M:%SZ")
    campaign_id = campaign_id or f"{instant:%Y%m%d}-{request.occasion}-{secrets.token_hex(4)}"
    result = CampaignResult(
        campaign_id, dry_run, run_at, request.days_ahead, chosen_occasions, k, model.version if model else None
    )

    dated = tuple(o for o in chosen_occasions if o in kinds.OCCASIONS)
    found = eligibility.find(db, conf, dated, instant, request.days_ahead, result.skipped) if dated else []
    found += lifecycle.find(
        db, settings, tuple(o for o in chosen_occasions if o in kinds.LIFECYCLE), instant, result.skipped
    )
    found = eligibility.in_segments(db, settings.value.purpose, found, tuple(request.segments), result.skipped)
    eligible = lifecycle.cap(eligibility.eligible(db, found, result.skipped, conf), conf, result.skipped)
    lifecycle.hold_out(db, conf, eligible)
    held = sorted((c for c in eligible if c.held_out), key=lambda c: (c.customer_id, c.occasion))
    eligible = [c for c in eligible if not c.held_out]
    if eligible:
        seed = f"{run_at}|{','.join(chosen_occasions)}|{request.days_ahead}"
        served, choices = _allocate(db, settings, model, eligible, k, request.max_per_product, seed, result)
        for c in eligible:
            if not c.chosen:
                result.skipped[c.occasion]["no_products"] = result.skipped[c.occasion].get("no_products", 0) + 1
        contacts = store.customer_contacts(db, sorted({c.customer_id for c in served}))
        codes = ledger.new_codes([c.occasion for c in served], preview=dry_run)
        result.offers = [
            _offer(c, contacts.get(c.customer_id, (None, None)), conf, choices.catalogue, code)
            for c, code in zip(served, codes)
        ]
    if held:
        contacts = store.customer_contacts(db, [c.customer_id for c in held])
        result.held_out = [_offer(c, contacts.get(c.customer_id, (None, None)), conf, None, None) for c in held]

    if dry_run:
        if out_path is not None:
            export.write(out_path, result.offers, force=force)
    else:
        ledger.record(db, result, out_path, force, conf)
    result.out = str(out_path) if out_path else None
    result.seconds = time.perf_counter() - started
    return result


def _allocate(
    db: sqlite_utils.Database,
    settings: Settings,
    model: Recommender | None,
    eligible: list[Candidate],
    k: int,
    max_per_product: int | None,
    seed: str,
    result: CampaignResult,
) -> tuple[list[Candidate], choice.Choices]:
    """Choices for everyone, then allocation under the caps; returns who got products, in ledger order."""
    choices = choice.choose(db, settings, model, eligible, k)
    catalogue = choices.catalogue
    units, result.outstanding = ledger.outstanding(db, catalogue, choice.iso(min(c.today for c in eligible)))
    hard = allocation.hard_caps(catalogue.stock, max_per_product, units)
    result.product_cap = allocation.spread_cap(settings.campaigns.max_product_share, len(eligible))
    soft = hard if result.product_cap is None else np.minimum(hard, result.product_cap)
    # A seeded random order: reproducible for the same run, favouring no one (ids follow sign-up time).
    base = sorted(eligible, key=lambda c: (c.customer_id, c.occasion))
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "little"))
    fair = [base[i] for i in rng.permutation(len(base))]
    allocation.allocate(
        fair, k, hard.tolist(), soft.tolist(), catalogue.until.tolist(), choices.popular, choices.bought
    )
    served = [c for c in base if c.chosen]
    for c in served:
        if c.first_rank > 1:
            result.capped["2nd" if c.first_rank == 2 else "3rd" if c.first_rank == 3 else "later"] += 1
    result.capped_customers = sum(1 for c in served if c.capped)
    return served, choices


def _offer(
    c: Candidate,
    contact: tuple[str | None, str | None],
    conf: CampaignSettings,
    catalogue: Catalogue | None,
    code: str | None,
) -> Offer:
    """The offer of a served candidate; with ``code`` None, the ledger row of a held-out one (no products)."""
    personalized = c.from_model > 0
    reason = "holdout" if c.held_out else None if personalized else (c.reason or "capped")
    if c.occasion in kinds.LIFECYCLE:  # valid from the customer's local run date for <kind>_valid_days
        valid_from, valid_until = c.today, c.today + kinds.valid_days(conf, c.occasion)
    else:
        valid_from, valid_until = max(c.date - conf.valid_days_before, c.today), c.date + conf.valid_days_after
    chosen = [] if catalogue is None else c.chosen
    return Offer(
        customer_id=c.customer_id,
        email=contact[0],
        name=contact[1],
        occasion=c.occasion,
        date=choice.iso(c.date),
        occasion_year=c.year,
        code=code,
        discount=kinds.discount(conf, c.occasion),
        valid_from=choice.iso(valid_from),
        valid_until=choice.iso(valid_until),
        product_ids=[catalogue.ids[p] for p in chosen] if catalogue is not None else [],
        product_names=[catalogue.names[p] for p in chosen] if catalogue is not None else [],
        mode="held_out" if c.held_out else "personalized" if personalized else "non_personalized",
        reason=reason,
        offered_on=choice.iso(c.today),
        why=c.why,
        held_out=c.held_out,
    )


def offer_dict(offer: Offer) -> dict[str, Any]:
    """An offer as JSON-ready data (previews)."""
    return dataclasses.asdict(offer)
