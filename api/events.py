"""What shoppers do: events in, folded into their recommendations at once."""

from __future__ import annotations

from flask import Blueprint

from recommender.ingest import events

from .db import get_db, get_service
from .metrics import EVENTS
from .schema import Accepted, EventsBody, endpoint

bp = Blueprint("events", __name__, url_prefix="/v1")


@bp.post("/events")
@endpoint("/v1/events", "POST", role="write", body=EventsBody, response=Accepted, status=201)
def ingest(body: EventsBody):
    """Store one event or a batch of up to 1,000, all or nothing.

    Unknown customers, products or event types are a 422 naming the first
    offending event. For customers with personalization consent the next
    recommendation already reflects the new events.

    Retries: give each event an `event_id` (your own id, up to 100 characters,
    unique per event). Sending an event whose `event_id` is already stored, or
    repeating one inside a batch, is acknowledged (`duplicates`) and stores
    nothing new, so after a timeout, a dropped connection or a 5xx, send the
    same request again. Events and their ids are stored in one transaction:
    if the request failed, nothing of it was stored. Events without an
    `event_id` are stored every time they are sent.

    Online measurement: send the `list_id` of the served list (or offer) the
    event came from, and `price` (the unit price paid) with purchases; an
    event without `list_id` is attributed to the latest list that showed this
    customer this product within `online.window_hours`. A `list_id` counts only
    for the customer the list was served to; a price far from the catalogue
    price (`online.max_price_factor`) or a quantity above `online.max_quantity`
    is counted at the catalogue price and the cap, and flagged in the report.
    Each event is a row of its own: two events in one second are two events.
    """
    result = events.ingest(get_db(), get_service().settings, [e.model_dump() for e in body.events()])
    EVENTS.inc(result["accepted"])
    return result, 201
