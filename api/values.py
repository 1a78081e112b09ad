"""Customer value: one customer's expected purchases and spend, chance still active and segment.

Profiling, so for marketer and admin keys only, and only for customers who grant
``value.purpose``: anyone else is ``{"profiled": false, "reason": "no_consent"}``
with every figure null. The scores are those of the last nightly refresh
(:mod:`recommender.value.refresh`).
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint
from pydantic import BaseModel, Field

from recommender.value import stored

from .db import get_db
from .privacy import settings
from .schema import DATE, DATE_TIME, endpoint

bp = Blueprint("values", __name__, url_prefix="/v1/customers")


class ExpectedValue(BaseModel):
    days: float = Field(description="The horizon, in days (`value.horizons`).")
    purchases: float = Field(description="Expected purchase days within the horizon.")
    spend: float = Field(description="Expected spend within the horizon, in the shop's prices.")


class CustomerValue(BaseModel):
    customer_id: str
    profiled: bool = Field(description="False: no score is held (see `reason`); every figure is then null.")
    reason: Literal["no_consent", "not_scored", "no_refresh"] | None = Field(
        description="Why there is no score: `no_consent` (the customer does not grant `purpose`), `not_scored` "
        "(no purchase before the last refresh, or consent given since), `no_refresh` (customer "
        "value was never computed)."
    )
    purpose: str = Field(description="The consent purpose that allows the profiling (`value.purpose`).")
    segment: str | None = Field(
        description="RFM segment (docs/value.md): champions, loyal, promising, new, needs "
        "attention, at risk, can't lose, hibernating, lost."
    )
    segment_rule: str | None = Field(description="The segment's rule in words.")
    p_active: float | None = Field(description="Chance of at least one purchase within the first horizon.")
    expected: list[ExpectedValue]
    recency_days: int | None = Field(description="Days from the last purchase to `as_of`.")
    purchase_days: int | None = Field(description="Days with a purchase so far.")
    spend_to_date: float | None
    as_of: str | None = Field(description="The last purchase day the scores were computed at.", json_schema_extra=DATE)
    computed_at: str | None = Field(description="When the refresh ran (UTC).", json_schema_extra=DATE_TIME)
    estimator: str | None = Field(description="The estimators chosen on validation (technical).")


@bp.get("/<id:customer_id>/value")
@endpoint("/v1/customers/<customer_id>/value", role="marketer", response=CustomerValue)
def customer_value(customer_id: str):
    """A customer's value: expected purchases and spend, chance still active, segment.

    Profiling: only customers who grant `value.purpose` (default
    `personalization`) have a score; anyone else answers `profiled: false`
    with the reason and every figure null. An unknown customer is a 404.
    Marketer and admin keys only.
    """
    return stored.customer_value(get_db(), settings(), customer_id)
