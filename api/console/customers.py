"""Customer: consents and their history, recent lists and offers with their reasons, export and erasure.

Reading the page needs the console role (a marketer answering "why did I
get this?"); the data export and the erasure need ``admin``, checked on the
server whatever the page shows. Erasure goes through
:func:`recommender.privacy.forget`, the same code as ``recommender forget`` and
``DELETE /v1/customers/ID``, behind a confirmation in which the id is typed again.
"""

from __future__ import annotations

import json

from flask import Response, request

from recommender import privacy, store
from recommender.store import console as queries
from recommender.values import MAX_ID_LENGTH, normalise_id

from ..db import get_db
from . import session as auth, values
from .base import bp, page, settings

# Why a list or an offer was not personal, in words (reasons as the ranking and campaigns record them).
REASONS = {
    None: "personal: ranked by the model from their own history",
    "no_consent": "not personal: no personalization consent",
    "no_history": "not personal: no history yet",
    "no_model": "not personal: no model was published",
    "model_stale": "not personal: the model was too stale after an erasure or withdrawal",
    "not_in_model": "not personal: they were not in the model",
    "unknown_customer": "not personal: unknown customer",
    "capped": "personal picks were full; popular products filled the offer",
    "popular": "popular products",
    "trending": "trending products",
}


def why(mode: str | None, reason: str | None) -> str:
    if mode == "personalized" and reason is None:
        return REASONS[None]
    return REASONS.get(reason, f"{mode or ''} {reason or ''}".strip())


def profile(customer_id: str) -> dict:
    """Everything the page shows about one customer; NotFound (404 page) once erased or never known."""
    db, conf = get_db(), settings()
    customer = store.get_customer(db, customer_id)
    if customer is None:
        erased_on = privacy.erased_on(db, conf, [customer_id]).get(customer_id)
        return {"customer": None, "erased_on": erased_on}
    decisions = queries.recent_decisions(db, customer_id)
    offers = store.customer_rows(db, "offers", customer_id)
    names = store.product_names(
        db,
        sorted(
            {p for d in decisions for p in json.loads(d["product_ids"])}
            | {p for o in offers for p in json.loads(o["products"])}
        ),
    )
    for d in decisions:
        d["products"] = [(p, names.get(p)) for p in json.loads(d["product_ids"])]
        d["why"] = why(d["mode"], d["reason"])
    by_campaign = {(d["endpoint"], tuple(p for p, _ in d["products"])): d["why"] for d in decisions}
    for o in offers:
        ids = json.loads(o["products"])
        o["products"] = [(p, names.get(p)) for p in ids]
        o["why"] = by_campaign.get((f"campaign:{o['occasion']}", tuple(ids)), "see the decision log")
    return {
        "customer": customer,
        "consents": store.consent_state(db, conf, customer_id)["consents"],
        "history": store.consent_timeline(db, conf, customer_id)["history"],
        "decisions": decisions,
        "offers": sorted(offers, key=lambda o: o["created_at"], reverse=True),
        "trained_on": privacy.trained_on(conf, customer_id),
        "value": values.customer_card(customer_id),
    }


@bp.get("/customer")
def customer():
    customer_id = normalise_id(request.args.get("id", ""))[:MAX_ID_LENGTH]
    if not customer_id:
        return page("customer.html", title="Customer", customer_id="", data=None)
    data = profile(customer_id)
    status = 200 if data["customer"] is not None else 404
    return page("customer.html", status, title=f"Customer {customer_id}", customer_id=customer_id, data=data)


@bp.get("/customer/<id:customer_id>/export.json")
@auth.needs("admin")
def export(customer_id: str):
    body = json.dumps(privacy.export(get_db(), settings(), customer_id), indent=2, ensure_ascii=False)
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in customer_id)[:80]
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="customer-{safe}.json"', "Cache-Control": "no-store"},
    )


@bp.post("/customer/<id:customer_id>/erase")
@auth.needs("admin")
def erase(customer_id: str):
    if normalise_id(request.form.get("confirm", "")) != customer_id:
        # back on the customer's page, with the form and what went wrong (not a dead-end error page)
        message = (
            "confirm: nothing was erased: type the customer id exactly to confirm the erasure "
            f"(expected {customer_id!r})"
        )
        return page(
            "customer.html",
            422,
            title=f"Customer {customer_id}",
            customer_id=customer_id,
            data=profile(customer_id),
            erase_error=message,
        )
    result = privacy.forget(get_db(), settings(), customer_id)
    return page("erased.html", title="Erased", customer_id=customer_id, result=result)
