"""Which products each candidate would like, best first: their personal ranking, then popular ones.

Personal lists come from :mod:`recommender.serving.ranking`, the same path as the
storefront's recommendations (fold-in of the customer's current history,
the model's index search, the catalogue's filter rules, already-bought
products left out), so a banner and a birthday email rank a customer alike,
and a customer who joined after the last retrain is personalized in both.
Campaign rules are :class:`~recommender.serving.catalogue.ListFilters` too: available
on the (earliest) occasion date, the occasion's gift categories, the price band. The
shop's merchandising rules for the ``offers`` surface apply on the same step of the same
path as on the storefront (:mod:`recommender.serving.rulesets`), so a rule on both
surfaces ranks a customer's offer and their list alike.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from recommender import store
from recommender.campaigns.eligibility import Candidate
from recommender.config import CampaignSettings, Settings
from recommender.errors import ModelError
from recommender.models import registry
from recommender.models.base import Recommender
from recommender.online import Assigner
from recommender.serving import ranking
from recommender.serving.catalogue import Catalogue, ListFilters
from recommender.serving.context import Context
from recommender.serving.newproducts import NewProducts
from recommender.serving.rules import OFFERS
from recommender.serving.rulesets import Rulebook
from recommender.store.consents import PERSONALIZATION

_EPOCH = dt.date(1970, 1, 1).toordinal()


def iso(day: int) -> str:
    """``YYYY-MM-DD`` of a day number."""
    return dt.date.fromordinal(_EPOCH + day).isoformat()


def _stale_past_cap(db: sqlite_utils.Database, settings: Settings, model: Recommender) -> bool:
    """The same stale-model window as the API: past ``privacy.max_stale_hours`` no offer ranks on its factors."""
    from recommender.privacy.reconcile import staleness

    hours = staleness(db, model.manifest, model.user_index, settings)["hours"]
    return hours is not None and hours > settings.privacy.max_stale_hours


def load_model(settings: Settings) -> Recommender | None:
    try:
        return registry.Registry(settings.model_dir).load()
    except ModelError:
        return None


def occasion_filters(conf: CampaignSettings, categories: tuple[str, ...], on: str) -> ListFilters:
    """A campaign's rules as list filters: in stock, available on ``on``, in the price band and categories."""
    return ListFilters(
        categories=categories,
        min_price=conf.min_price or None,
        max_price=conf.max_price or None,
        in_stock_only=True,
        available_on=on,
    )


def gift_categories(conf: CampaignSettings, occasion: str) -> tuple[str, ...]:
    return tuple(getattr(conf, f"{occasion}_categories", ()))


@dataclass
class Choices:
    """What allocation needs: the catalogue, each occasion's popular list and what each customer bought."""

    catalogue: Catalogue
    popular: dict[str, list[int]]
    bought: dict[str, set[int]]


def popularity(db: sqlite_utils.Database, model: Recommender | None, catalogue: Catalogue) -> np.ndarray:
    """Popularity per catalogue row: the model's signal, else distinct consenting buyers by SQL."""
    score = np.zeros(len(catalogue.ids), dtype=np.float64)
    if model is not None and "popularity" in model.signals:
        known = catalogue.rows_of_items >= 0
        score[catalogue.rows_of_items[known]] = np.asarray(model.signals["popularity"], dtype=np.float64)[known]
        return score
    for pid, n in store.popular_since(db, 0, -1):
        j = catalogue.index.get(pid)
        if j is not None:
            score[j] = n
    return score


def choose(
    db: sqlite_utils.Database, settings: Settings, model: Recommender | None, eligible: list[Candidate], k: int
) -> Choices:
    """Fill ``personal`` and ``reason`` of every candidate; return the shared lists allocation reads."""
    conf = settings.campaigns
    catalogue = Catalogue(model.item_ids if model is not None else [], ttl=0.0)
    catalogue.refresh(db, force=True)
    # products imported since the retrain, or never bought, ranked by their content (docs/new-products.md)
    model, catalogue = NewProducts(settings).follow(db, model, catalogue)
    on = iso(min(c.date for c in eligible))
    band = catalogue.product_mask(occasion_filters(conf, (), on))
    kinds = sorted({c.occasion for c in eligible})
    preferred = {o: occasion_filters(conf, gift_categories(conf, o), on) for o in kinds}
    score = popularity(db, model, catalogue)
    order = np.lexsort((np.arange(len(catalogue.ids)), -score))  # most popular first, ties by id
    popular = {}
    for o in kinds:
        first = catalogue.product_mask(preferred[o])
        popular[o] = np.concatenate([order[first[order]], order[(band & ~first)[order]]]).tolist()

    ids = sorted({c.customer_id for c in eligible})
    bought: dict[str, set[int]] = {}
    for cid, pid in store.purchased_pairs(db, ids, settings.purchase_events):
        j = catalogue.index.get(pid)
        if j is not None:
            bought.setdefault(cid, set()).add(j)
    stale = model is not None and _stale_past_cap(db, settings, model)
    if model is None or stale:
        for c in eligible:
            c.reason = "model_stale" if stale else "no_model"
        return Choices(catalogue, popular, bought)
    consent = store.consented_among(db, ids, PERSONALIZATION)
    events = store.events_of(db, sorted(consent))
    depth = 4 * k + 8  # room for products that fill up
    rulebook = Rulebook()
    assigner = Assigner(settings.online)  # a rule's audience may name A/B arms: the customer's arm, as the API has it
    for c in eligible:
        if c.customer_id not in consent:
            c.reason = "no_consent"
            continue
        history = events.get(c.customer_id, ())
        context = Context(
            OFFERS,
            c.customer_id,
            assigner.arm(db, c.customer_id),
            db,
            events=history,
            purchase_events=settings.purchase_events,
        )
        ranked = ranking.rank_history(
            model,
            catalogue,
            settings,
            history,
            depth,
            preferred[c.occasion],
            rules=rulebook.active(db, catalogue, context),
            context=context,
        )
        if ranked is None:
            c.reason = "no_history"
        else:
            c.personal = catalogue.rows_of_items[np.asarray(ranked.items, dtype=np.int64)].tolist()
    return Choices(catalogue, popular, bought)
