"""The offers ledger: codes, the all-or-nothing record of a run, and the stock earlier offers still hold."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from pathlib import Path

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns import eligibility, export
from recommender.campaigns.results import CODE_PREFIX, PREVIEW_PREFIX, CampaignResult, Offer
from recommender.config import CampaignSettings
from recommender.errors import ValidationError
from recommender.online.ids import new_list_id
from recommender.serving.catalogue import Catalogue

EXPORT_KIND = "campaign_export"


def new_codes(kinds: list[str], preview: bool = False) -> list[str]:
    """One ``BDAY-XXXX-XXXX-XXXX-XXXX`` code per offer: 80 random bits each from ``secrets``, in base32.

    Guessing one valid code takes ~2⁸⁰ / (offers live) tries. All bits come
    from one call, as a campaign needs tens of thousands of codes. A
    ``preview`` code starts with ``PREVIEW-``, which :func:`record` refuses.
    """
    raw = base64.b32encode(secrets.token_bytes(10 * len(kinds))).decode()  # 10 bytes = exactly 16 characters
    head = PREVIEW_PREFIX if preview else ""
    codes = [
        f"{head}{CODE_PREFIX[kind]}-{raw[i * 16 : i * 16 + 4]}-{raw[i * 16 + 4 : i * 16 + 8]}-"
        f"{raw[i * 16 + 8 : i * 16 + 12]}-{raw[i * 16 + 12 : i * 16 + 16]}"
        for i, kind in enumerate(kinds)
    ]
    if len(set(codes)) != len(codes):  # never in practice; the ledger's UNIQUE would refuse it anyway
        return new_codes(kinds, preview)
    return codes


def outstanding(db: sqlite_utils.Database, catalogue: Catalogue, on: str) -> tuple[np.ndarray, dict[str, int]]:
    """Units promised by offers still valid on ``on``: per catalogue row, and per product id (for the summary)."""
    by_id = store.outstanding_offer_units(db, on)
    units = np.zeros(len(catalogue.ids), dtype=np.float64)
    for pid, n in by_id.items():
        j = catalogue.index.get(pid)
        if j is not None:
            units[j] = n
    return units, by_id


def _day(iso: str | None) -> int:
    return 0 if iso is None else (dt.date.fromisoformat(iso) - dt.date(1970, 1, 1)).days


def record(
    db: sqlite_utils.Database,
    result: CampaignResult,
    out_path: Path | None,
    force: bool = False,
    conf: CampaignSettings | None = None,
) -> None:
    """Re-check eligibility, insert offers, held-out rows and decisions, write and register the export:
    all or nothing.

    Held-out customers (``result.held_out``) get a ledger row without a code or products
    (``held_out`` = 1) and a decision row (mode ``held_out``), so they count for the ledger's
    rule and the one-live-offer rule exactly like those sent, and the report can compare.
    """
    if any(o.preview for o in result.offers):
        raise ValidationError("a preview's offers cannot be recorded in the ledger")
    written = False
    try:
        with store.transaction(db):
            rows: list[Offer] = [*result.offers, *result.held_out]
            again = [
                eligibility.Candidate(o.customer_id, o.occasion, 0, o.occasion_year, _day(o.offered_on)) for o in rows
            ]
            kept = eligibility.eligible(db, again, result.skipped, conf)
            keep = {(c.customer_id, c.occasion) for c in kept}
            result.offers = [o for o in result.offers if (o.customer_id, o.occasion) in keep]
            result.held_out = [o for o in result.held_out if (o.customer_id, o.occasion) in keep]
            now = store.utcnow()
            for o in result.offers:  # the offer's list id: in the ledger, its decision row and the export
                o.list_id = o.list_id or new_list_id()
            rows = [*result.offers, *result.held_out]
            store.insert_offers(
                db,
                [
                    (
                        o.customer_id,
                        o.occasion,
                        o.occasion_year,
                        o.code,
                        json.dumps(o.product_ids),
                        o.discount,
                        o.valid_from,
                        o.valid_until,
                        result.campaign_id,
                        now,
                        o.list_id,
                        int(o.held_out),
                        o.offered_on,
                    )
                    for o in rows
                ],
            )
            store.insert_decisions(
                db,
                [
                    store.DecisionLogRow(
                        customer_id=o.customer_id,
                        created_at=now,
                        endpoint=f"campaign:{o.occasion}",
                        model_version=result.model_version,
                        mode=o.mode,
                        reason=o.reason,
                        product_ids=json.dumps(o.product_ids),
                        list_id=o.list_id,
                        why=o.why,
                    )
                    for o in rows
                ],
            )
            if out_path is not None:
                store.register_copy(db, out_path, EXPORT_KIND)  # so erasure can find and scrub it
                export.write(out_path, result.offers, force=force)
                written = True
    except BaseException:
        if written and out_path is not None:
            out_path.unlink(missing_ok=True)
        raise
