"""Per-customer endpoints: recommendations and re-ranking."""

from __future__ import annotations

from flask import Blueprint, g

from recommender.serving.catalogue import ListFilters
from recommender.serving.results import ServedList
from recommender.serving.service import ListOptions

from .db import get_db, get_service
from .metrics import served
from .schema import ItemList, RecommendationQuery, RerankBody, Reranked, endpoint

bp = Blueprint("customers", __name__, url_prefix="/v1/customers")


def filters_of(query) -> ListFilters:
    return ListFilters(
        categories=tuple(query.category),
        min_price=query.min_price,
        max_price=query.max_price,
        in_stock_only=query.in_stock_only,
        exclude=tuple(query.exclude),
    )


def listed(result: ServedList) -> dict:
    """A served list as its response body, counted under its surface and arm.

    An admin key also sees ``rules``: which merchandising rule placed, moved or removed which product.
    """
    key = g.get("api_key")
    return served(result.surface, result.payload(show_rules=bool(key and key["role"] == "admin")))


@bp.get("/<id:customer_id>/recommendations")
@endpoint("/v1/customers/<customer_id>/recommendations", query=RecommendationQuery, response=ItemList)
def recommendations(customer_id: str, query: RecommendationQuery):
    """Personalized top-n for a customer.

    Unknown customers, customers without personalization consent, customers
    without history and a server without a model get popular products instead
    (`mode: non_personalized` with the `reason`), never an error. Hidden and
    expired products never appear. Customers in the A/B control arm
    (`online.control_share`) get popular products with reason `control`.
    Every list has a `list_id`: send it back with the events it leads to.
    A list with fewer than `n` items names in `short` the filters and steps
    that removed the candidates (`null` when the list is full).
    """
    options = ListOptions(
        n=query.n,
        filters=filters_of(query),
        exclude_purchased=query.exclude_purchased,
        diversity=query.diversity,
        explain=query.explain,
    )
    return listed(get_service().recommend(get_db(), customer_id, options))


@bp.post("/<id:customer_id>/rerank")
@endpoint("/v1/customers/<customer_id>/rerank", "POST", body=RerankBody, response=Reranked)
def rerank(customer_id: str, body: RerankBody):
    """The caller's products, ordered for this customer.

    Without personalization the order is returned unchanged. Unknown product
    ids are a 422.
    """
    return listed(get_service().rerank(get_db(), customer_id, body.products))
