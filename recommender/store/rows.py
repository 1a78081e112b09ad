"""Typed rows: the records that cross from the doors into the store, one field per column.

Data used to travel as positional tuples (``r[6]``, ``(*r[:6], ...)``,
``(c, None, None, None, None, "UTC", t)``): a reader had to count commas to
know which cell was the birth date, and a column added in the middle moved
every index silently. These rows name their fields after the columns of
:mod:`recommender.store.schema`, so code reads ``row.created_at`` and a
misspelt field fails at once.

They are :class:`typing.NamedTuple`, not dataclasses, on purpose: a named
tuple *is* a tuple in column order, so the store binds it straight to an
``INSERT`` (``executemany`` takes it as it is, no conversion per row), and
building one costs about what building the old tuple did. That matters at
the doors, which build hundreds of thousands per import. Being tuples, they
are also immutable: a row is changed with ``row._replace(field=value)``.
Optional columns have defaults, so ``CustomerRow("c1", created_at=t)`` says
what the old seven-tuple of ``None`` meant.
"""

from __future__ import annotations

from typing import NamedTuple


class CustomerRow(NamedTuple):
    """A row of ``customers``; dates ``YYYY-MM-DD``, ``created_at`` ISO UTC text (None only before a door fills it)."""

    id: str
    email: str | None = None
    name: str | None = None
    birth_date: str | None = None
    anniversary_date: str | None = None
    timezone: str = "UTC"
    created_at: str | None = None


class ProductRow(NamedTuple):
    """A row of ``products``; ``hidden`` is 0 or 1, ``available_until`` ``YYYY-MM-DD``."""

    id: str
    name: str
    category: str | None = None
    price: float | None = None
    in_stock: int | None = None
    hidden: int = 0
    available_until: str | None = None
    description: str | None = None  # free text for new products' content features


class EventRow(NamedTuple):
    """An interaction event (a row of ``interactions`` less its id); ``occurred_at`` is Unix seconds, UTC.

    ``list_id`` names the served list the event came from and ``price`` is the
    unit price paid; both are optional (imports carry neither).
    """

    customer_id: str
    product_id: str
    event_type: str
    quantity: float
    occurred_at: int
    list_id: str | None = None
    price: float | None = None


class ConsentDecision(NamedTuple):
    """One customer's decision on one purpose, as :func:`recommender.store.apply_consents` records it.

    ``decided_at`` (ISO UTC text) is when the customer decided, which orders
    decisions; ``source`` where it came from (``consents.source``); ``actor``
    who recorded it (``consent_log.actor``).
    """

    customer_id: str
    purpose: str
    granted: bool
    decided_at: str
    source: str
    actor: str | None = None


class DecisionLogRow(NamedTuple):
    """A row of ``decisions``: a list served or an offer made; ``product_ids`` is a JSON array.

    ``customer_id`` is None for an anonymous row (see :mod:`recommender.privacy.decisions`).
    """

    customer_id: str | None
    created_at: str
    endpoint: str
    model_version: str | None
    mode: str
    reason: str | None
    product_ids: str
    list_id: str | None = None
    arm: str | None = None
    # what merchandising rules did to the list: JSON {rule name: {"placed"|"moved"|"removed": [product ids]}}
    # (recommender.serving.rules), None when no rule changed it
    rules: str | None = None
    # an offer decision's inputs, in words: the campaign kind, its rule and the threshold crossed
    # (recommender.campaigns.lifecycle); None for lists and occasion offers
    why: str | None = None


__all__ = ["ConsentDecision", "CustomerRow", "DecisionLogRow", "EventRow", "ProductRow"]
