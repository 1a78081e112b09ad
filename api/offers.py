"""Occasion offers: what a storefront shows a customer, and an admin preview of a campaign."""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint
from pydantic import BaseModel, Field, field_validator

from recommender import campaigns
from recommender.campaigns import occasions, report as campaign_report
from recommender.errors import ValidationError

from .db import get_db, get_service
from .schema import Body, Query, endpoint

bp = Blueprint("offers", __name__)


class OffersQuery(Query):
    date: str | None = Field(
        None,
        description="Offers valid on this date (YYYY-MM-DD) instead of the customer's local today.",
        json_schema_extra={"format": "date"},
    )


class OfferProduct(BaseModel):
    product_id: str
    name: str | None


Kind = Literal["birthday", "anniversary", "winback", "second_purchase", "thank_you"]


class ActiveOffer(BaseModel):
    occasion: Kind
    occasion_year: int
    code: str
    discount: float = Field(description="Percent off.")
    valid_from: str = Field(json_schema_extra={"format": "date"})
    valid_until: str = Field(json_schema_extra={"format": "date"})
    products: list[OfferProduct]
    list_id: str | None = Field(
        None, description="The offer's id for online measurement: send it back with the events it leads to (`list_id`)."
    )


class OfferList(BaseModel):
    customer_id: str
    on: str | None = Field(
        description="The date the offers are valid on; null when there are none to show.",
        json_schema_extra={"format": "date"},
    )
    offers: list[ActiveOffer]


class PreviewBody(Body):
    occasion: Literal[
        "birthday", "anniversary", "winback", "second_purchase", "thank_you", "all", "lifecycle", "every"
    ] = Field(
        description="A kind; all = birthday and anniversary, lifecycle = winback, "
        "second_purchase and thank_you, every = all five."
    )
    date: str = Field(
        description="Run date YYYY-MM-DD (1970-01-01 to 2100-12-31), read as 12:00 UTC.",
        json_schema_extra={"format": "date"},
    )
    days_ahead: int = Field(ge=0, le=366, description="Window: each customer's local run date + this many days.")
    items: int | None = Field(None, ge=1, le=campaigns.MAX_ITEMS, description="Products per offer.")
    max_per_product: int | None = Field(None, ge=1, description="Cap per product [default: its stock].")
    limit: int = Field(100, ge=0, le=10000, description="Return at most this many offers; the summary counts all.")
    segments: list[
        Literal[
            "champions", "loyal", "promising", "new", "needs attention", "at risk", "can't lose", "hibernating", "lost"
        ]
    ] = Field(
        default_factory=list,
        max_length=9,
        description="Only customers in these customer-value segments (the nightly refresh's; customers without "
        "a score are in none); the others are counted as `not_in_segment`. Empty: no filter.",
    )

    @field_validator("date")
    @classmethod
    def date_in_range(cls, value: str) -> str:
        """The same rule as `campaign run --date`, so the API answers 422 naming `date`."""
        try:
            occasions.run_instant(date=value)
        except ValidationError as exc:
            raise ValueError(str(exc).removeprefix("--date: ")) from None
        return value


class PreviewOffer(BaseModel):
    customer_id: str
    email: str | None
    name: str | None
    occasion: Kind
    date: str = Field(json_schema_extra={"format": "date"})
    occasion_year: int
    code: str = Field(description="Illustrative only: a preview's codes start with PREVIEW- and are never stored.")
    discount: float
    valid_from: str = Field(json_schema_extra={"format": "date"})
    valid_until: str = Field(json_schema_extra={"format": "date"})
    product_ids: list[str]
    product_names: list[str | None]
    mode: Literal["personalized", "non_personalized"]
    reason: str | None
    why: str | None = Field(None, description="A lifecycle offer's decision inputs: kind, rule, threshold crossed.")


class CampaignSummary(BaseModel):
    campaign_id: str
    dry_run: bool
    written: bool
    run_at: str
    days_ahead: int
    items: int
    model_version: str | None
    offers: dict[str, int]
    offers_total: int
    held_out: dict[str, int] = Field(
        default_factory=dict, description="Eligible customers held out (not sent), per kind (campaigns.holdout_share)."
    )
    held_out_total: int = 0
    short_offers: int
    modes: dict[str, int]
    skipped: dict[str, int]
    skipped_by_occasion: dict[str, dict[str, int]]
    out: str | None
    capped_choices: int = Field(0, description="Customers who got a lower choice because a better product was full.")
    capped_first_pick: dict[str, int] = Field(
        default_factory=dict,
        description="Of those whose top choice was full: their first product was their 2nd, 3rd or a later choice.",
    )
    outstanding_units: int = Field(0, description="Units already promised by earlier offers still valid.")
    product_cap: int | None = Field(None, description="The spread rule's most offers per product in this run.")
    seconds: float


class CampaignPreview(BaseModel):
    summary: CampaignSummary
    offers: list[PreviewOffer]


@bp.get("/v1/customers/<id:customer_id>/offers")
@endpoint("/v1/customers/<customer_id>/offers", query=OffersQuery, response=OfferList)
def customer_offers(customer_id: str, query: OffersQuery):
    """Active occasion offers of a customer, for a storefront banner.

    Valid on the customer's local today (or `date`). Customers without
    marketing consent, and unknown customers, get an empty list.
    """
    return campaigns.active_offers(get_db(), customer_id, query.date)


@bp.post("/v1/admin/campaigns/preview")
@endpoint("/v1/admin/campaigns/preview", "POST", role="marketer", body=PreviewBody, response=CampaignPreview)
def preview(body: PreviewBody):
    """Preview a campaign: the offers a run would make now, with nothing written.

    The same rules and allocation as `recommender campaign run --dry-run`.
    """
    db = get_db()
    request = campaigns.CampaignRequest(
        occasion=body.occasion,
        date=body.date,
        days_ahead=body.days_ahead,
        items=body.items,
        max_per_product=body.max_per_product,
        segments=tuple(body.segments),
    )
    model = get_service().live.get(db)
    result = campaigns.run(db, get_service().settings, request, dry_run=True, model=model)
    return {"summary": result.summary(), "offers": [campaigns.offer_dict(o) for o in result.offers[: body.limit]]}


class CampaignReportQuery(Query):
    since: str | None = Field(
        None, description="Only offers made on or after this date (YYYY-MM-DD).", json_schema_extra={"format": "date"}
    )
    kind: Kind | None = Field(None, description="Only offers of this kind.")


class CampaignReport(BaseModel):
    since: str | None
    kind: str | None
    as_of: str
    windows: list[int]
    holdout_share: float
    method: str
    kinds: list[dict[str, Any]] = Field(
        description="Per kind: per arm (sent, held_out) and window (30, 90 days) "
        "offers, revenue per customer and the share who bought again "
        "with 95 % intervals; the uplift and incremental revenue."
    )
    total: dict[str, Any] = Field(description="The kinds with a holdout, pooled.")
    measured_kinds: list[str]
    summary: str = Field(description="One sentence a marketer can repeat.")


@bp.get("/v1/admin/metrics/campaigns")
@endpoint("/v1/admin/metrics/campaigns", role="marketer", query=CampaignReportQuery, response=CampaignReport)
def campaigns_report(query: CampaignReportQuery):
    """Campaign offers in customer terms: sent against held out, 30 and 90 days after the offer.

    The same object as `recommender report campaigns --json` (docs/campaigns.md, "The report").
    """
    return campaign_report.report(get_db(), get_service().settings, since=query.since, kind=query.kind)
