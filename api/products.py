"""Per-product and catalogue-wide lists: similar, bought together, popular."""

from __future__ import annotations

from flask import Blueprint

from .customers import filters_of, listed
from .db import get_db, get_service
from .schema import ItemList, ListQuery, PopularQuery, endpoint

bp = Blueprint("products", __name__, url_prefix="/v1/products")


@bp.get("/popular")
@endpoint("/v1/products/popular", query=PopularQuery, response=ItemList)
def popular(query: PopularQuery):
    """Popular products (distinct consenting customers), or trending over the last `days`."""
    return listed(get_service().popular(get_db(), query.n, filters_of(query), query.days))


@bp.get("/<id:product_id>/similar")
@endpoint("/v1/products/<product_id>/similar", query=ListQuery, response=ItemList)
def similar(product_id: str, query: ListQuery):
    """Products nearest to this one in the model's item space (cosine of factors).

    A product the model has not seen yet gets popular products of its category.
    """
    return listed(get_service().similar(get_db(), product_id, query.n, filters_of(query)))


@bp.get("/<id:product_id>/bought-together")
@endpoint("/v1/products/<product_id>/bought-together", query=ListQuery, response=ItemList)
def bought_together(product_id: str, query: ListQuery):
    """Products bought in the same basket (same customer, same day), ranked by lift, not popularity."""
    return listed(get_service().bought_together(get_db(), product_id, query.n, filters_of(query)))
