"""Occasion campaigns: who gets an offer, which products, and the ledger that makes reruns harmless.

One call of :func:`run` is one campaign, whichever face starts it (``recommender
campaign run``, ``scripts/run_campaign.py``, the admin preview endpoint):

1. **Occasions** (:mod:`.eligibility`) — customers whose birthday or
   anniversary falls in the window, in their own time zone
   (:mod:`recommender.campaigns.occasions`).
2. **Eligibility**, read at run time: ``marketing`` consent granted, and no
   offer yet in the ledger for (customer, occasion, occasion_year).
3. **Products** (:mod:`.choice`) — the customer's personal ranking from
   :mod:`recommender.serving.ranking`, the same path as the storefront's
   recommendations (fold-in of their current history, so customers newer
   than the model are personalized too), when they have ``personalization``
   consent and history; popular products otherwise, and after their personal
   picks run out. Never hidden, expired on the occasion date, out of stock,
   or already bought (``settings.purchase_events``). Configured gift
   categories come first; other products in the price band only fill what
   the gift categories cannot. The rules are the catalogue's one filter
   definition (:class:`recommender.serving.catalogue.ListFilters`).
4. **Allocation** (:mod:`.allocation`) — caps per product: its stock or
   ``max_per_product`` (the smaller; untracked stock is unlimited) less the
   units that earlier offers still valid already promise, so consecutive
   runs never over-promise; and a **spread rule**: no product joins more than
   ``max(1, ceil(campaigns.max_product_share × customers))`` offers of a run
   while others can fill the slot (only offers that would otherwise stay
   short may exceed it). Customers are served in a seeded random order, in
   rounds (each round everyone takes their best product with room). The
   summary counts customers who got a lower choice because of a cap.
5. **Ledger** (:mod:`.ledger`) — in one transaction: eligibility is checked
   again, offers and their decision-log rows are inserted, and the export
   file (:mod:`.export`) is written and registered as a copy for erasure. Any
   failure rolls all of it back and removes the file. A dry run computes the
   same offers, writes nothing to the database and marks its file as a
   preview (codes ``PREVIEW-...`` that the ledger refuses).

:mod:`.storefront` reads the ledger back for banners (:func:`active_offers`).
"""

from __future__ import annotations

from recommender.campaigns.job import offer_dict, run
from recommender.campaigns.results import (
    CODE_PREFIX,
    EXPORT_COLUMNS,
    EXPORT_FORMATS,
    MAX_ITEMS,
    PREVIEW_PREFIX,
    CampaignRequest,
    CampaignResult,
    Offer,
)
from recommender.campaigns.storefront import active_offers

__all__ = [
    "CODE_PREFIX",
    "EXPORT_COLUMNS",
    "EXPORT_FORMATS",
    "MAX_ITEMS",
    "PREVIEW_PREFIX",
    "CampaignRequest",
    "CampaignResult",
    "Offer",
    "active_offers",
    "offer_dict",
    "run",
]
