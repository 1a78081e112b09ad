"""Occasion offers: what a storefront shows a customer, and an admin preview of a campaign."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, Field, field_validator

from recommender import campaigns
from recommender.campaigns import occasions
from recommender.errors import ValidationError

from .db import get_db, get_service
from .schema import Body, Query, endpoint

bp = Blueprint("offers", __name__)


class OffersQuery(Query):
    date: str | None = Field(None, description="Offers valid on this date (YYYY-MM-DD) instead of the "
                                               "customer's local today.", json_schema_extra={"format": "date"})


class OfferProduct(BaseModel):
    product_id: str
    name: str | None


class ActiveOffer(BaseModel):
    occasion: Literal["birthday", "anniversary"]
    occasion_year: int
    code: str
    discount: float = Field(description="Percent off.")
    valid_from: str = Field(json_schema_extra={"format": "date"})
    valid_until: str = Field(json_schema_extra={"format": "date"})
    products: list[OfferProduct]
    list_id: str | None = Field(None, description="The offer's id for online measurement: send it back with the "
                                                  "events it leads to (`list_id`).")


class OfferList(BaseModel):
    customer_id: str
    on: str | None = Field(description="The date the offers are valid on; null when there are none to show.",
                           json_schema_extra={"format": "date"})
    offers: list[ActiveOffer]


class PreviewBody(Body):
    occasion: Literal["birthday", "anniversary", "all"]
    date: str = Field(description="Run date YYYY-MM-DD (1970-01-01 to 2100-12-31), read as 12:00 UTC.",
                      json_schema_extra={"format": "date"})
    days_ahead: int = Field(ge=0, le=366, description="Window: each customer's local run date + this many days.")
    items: int | None = Field(None, ge=1, le=campaigns.MAX_ITEMS, description="Products per offer.")
    max_per_product: int | None = Field(None, ge=1, description="Cap per product [default: its stock].")
    limit: int = Field(100, ge=0, le=10000, description="Return at most this many offers; the summary counts all.")

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
    occasion: Literal["birthday", "anniversary"]
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
    short_offers: int
    modes: dict[str, int]
    skipped: dict[str, int]
    skipped_by_occasion: dict[str, dict[str, int]]
    out: str | None
    capped_choices: int = Field(0, description="Customers who got a lower choice because a better product was full.")
    capped_first_pick: dict[str, int] = Field(default_factory=dict, description="Of those whose top choice was "
                                              "full: their first product was their 2nd, 3rd or a later choice.")
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
    request = campaigns.CampaignRequest(occasion=body.occasion, date=body.date, days_ahead=body.days_ahead,
                                        items=body.items, max_per_product=body.max_per_product)
    model = get_service().live.get(db)
    result = campaigns.run(db, get_service().settings, request, dry_run=True, model=model)
    return {"summary": result.summary(), "offers": [campaigns.offer_dict(o) for o in result.offers[:body.limit]]}
