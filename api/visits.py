"""Lists for a visit, not a person: ``POST /v1/recommendations`` (docs/sessions.md)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, current_app
from pydantic import Field

from recommender import store
from recommender.errors import ValidationError
from recommender.serving.visits import VisitEvent, VisitRequest, Visits
from recommender.values import MAX_ID_LENGTH, TIME_PATTERN, parse_datetime

from .customers import filters_of, listed
from .db import get_db, get_service
from .schema import DATE_TIME, Body, ItemList, RecommendationQuery, endpoint

bp = Blueprint("visits", __name__, url_prefix="/v1")

MAX_VISIT_PRODUCTS = 200


class VisitProduct(Body):
    product_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    event_type: str = Field(
        min_length=1,
        max_length=50,
        description="One of the configured event types (`view`, `add_to_cart`, `purchase` by default).",
    )
    at: str | None = Field(
        None,
        min_length=1,
        pattern=TIME_PATTERN,
        description="When it happened (ISO 8601; no offset = UTC). The visit is read in this "
        "order, products without `at` after those with one, in the order sent.",
        json_schema_extra=DATE_TIME,
    )


class VisitBody(Body):
    products: list[VisitProduct] = Field(
        max_length=MAX_VISIT_PRODUCTS,
        description="The products of the current visit or basket, oldest first. Nothing of it is stored.",
    )
    visitor_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="The storefront's anonymous visitor id. Never stored: the list is "
        "logged anonymously, and an event that names its `list_id` is "
        "attributed to it.",
    )
    customer_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="A signed-in customer. Read for consent only: their stored history "
        "is never read here. With personalization consent the list is "
        "logged under their id and A/B arm; without it, anonymously.",
    )
    n: int = Field(10, ge=1, le=100, description="How many items to return.")
    category: list[str] = Field(default_factory=list, description="Only these categories.")
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    in_stock_only: bool = Field(
        True, description="Leave out products with zero stock (untracked stock counts as available)."
    )
    exclude: list[str] = Field(default_factory=list, description="Product ids to leave out.")
    exclude_visited: bool = Field(True, description="Leave out the visit's own products.")
    diversity: float = Field(0.0, ge=0, le=1, description="0 = pure ranking; 1 = at most one product per category.")
    explain: bool = Field(
        False, description="Add, per item, the visit's products that contributed most (when the model scores)."
    )


class VisitList(ItemList):
    mode: Literal["session", "non_personalized"] = Field(
        description="`session`: scored from the visit by the shop's session scorer; `non_personalized`: popular "
        "products, with the `reason`."
    )


assert set(VisitBody.model_fields) >= set(RecommendationQuery.model_fields) - {"exclude_purchased"}


def visits() -> Visits:
    """The app's visit lists (one per worker, beside the service: it keeps the session index)."""
    found = current_app.extensions.get("recommender.visits")
    if found is None:
        found = current_app.extensions["recommender.visits"] = Visits(get_service())
    return found


def request_of(body: VisitBody, event_types: tuple[str, ...] | list[str]) -> VisitRequest:
    events = []
    for j, p in enumerate(body.products):
        if p.event_type not in event_types:
            raise ValidationError(
                f"products[{j}].event_type: unknown event type {p.event_type!r} (one of {', '.join(event_types)})"
            )
        at = None
        if p.at is not None:
            try:
                at = int(parse_datetime(p.at, what=f"products[{j}].at").timestamp())
            except ValueError as exc:
                raise ValidationError(str(exc)) from None
        events.append(VisitEvent(p.product_id, p.event_type, at))
    return VisitRequest(
        events,
        body.customer_id,
        body.visitor_id,
        body.n,
        filters_of(body),
        body.exclude_visited,
        body.diversity,
        body.explain,
    )


@bp.post("/recommendations")
@endpoint("/v1/recommendations", "POST", body=VisitBody, response=VisitList)
def visit_recommendations(body: VisitBody):
    """A list for the current visit: the products the page sends, no stored identity.

    Scored by the shop's session scorer, chosen on validation by `recommender
    sessions evaluate` (the model itself until it has run), with the filters,
    merchandising rules and diversity of the personal lists. Nothing sent is
    stored. A `customer_id` is read for consent only: their stored history is
    never read here. Unknown product ids are a 422; products the model does not
    know yet are left out of the scoring. A visit with no product the model
    knows gets popular products (`reason: no_history`). Every list has a
    `list_id`: send it back with the events it leads to.
    """
    settings = current_app.config["SETTINGS"]
    db = get_db()
    ids = list(dict.fromkeys(p.product_id for p in body.products))
    unknown = sorted(set(ids) - store.existing_of(db, "products", ids)) if ids else []
    if unknown:
        raise ValidationError(f"products: unknown product(s): {', '.join(unknown[:10])}")
    return listed(visits().recommend(db, request_of(body, tuple(settings.event_types))))
