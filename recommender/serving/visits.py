"""Lists for a visit, not a person: ``POST /v1/recommendations`` (see docs/sessions.md).

The storefront sends the products of the current visit or basket, in order,
with their event types; nothing of it is stored. The list is scored by the
shop's session scorer, chosen on validation by ``recommender sessions
evaluate`` (:mod:`recommender.training.sessions`; the model itself until that
has run), and then goes through the one ranking path every personal list takes
(:func:`recommender.serving.ranking.rank_state`: the catalogue's filters, the
caller's ``exclude``, the merchandising rules of the ``recommendations`` surface,
diversity), is given a ``list_id`` and logged in the decision log.

**Consent.** A visit is served from what the page sends, never from a stored
history: ``customer_id`` is read for consent only (``store.customer_consent``),
and the customer's stored events are never read for scoring. A consenting
customer's list is logged under their id and A/B arm, as a personal list is,
and merchandising rules may profile them; a customer without consent, an
unknown id and a ``visitor_id`` are anonymous (logged with no id, as unknown
visitors' lists are; an event that names the list's ``list_id`` is
attributed to it).

**The session index.** V-SKNN and co-occurrence read past sessions: each worker
builds them from the consent-filtered events (the training door,
:func:`recommender.data.interactions.load`) on the first visit list, and again
when the served model or the privacy epoch changes, so a withdrawal or an
erasure leaves the index on the next request, as it leaves the model.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.data import interactions
from recommender.models.base import Recommender
from recommender.serving import ranking
from recommender.serving.catalogue import ListFilters
from recommender.serving.results import Because, ServedItem, ServedList, short_of
from recommender.store.consents import PERSONALIZATION
from recommender.training import recipes, sessions

VISIT = "visit"  # the surface: the decision log's endpoint, the metrics' surface
RULES_SURFACE = "recommendations"  # visit lists follow the rules of the personal lists
MODE = "session"
INDEX_SESSIONS = 200_000  # the most recent sessions kept per worker


@dataclass
class VisitEvent:
    """One product of the visit, as the page sends it (``at``: unix seconds, None = in the order sent)."""

    product_id: str
    event_type: str
    at: int | None = None


@dataclass
class VisitRequest:
    products: Sequence[VisitEvent]
    customer_id: str | None = None
    visitor_id: str | None = None
    n: int = 10
    filters: ListFilters = field(default_factory=ListFilters)
    exclude_visited: bool = True
    diversity: float = 0.0
    explain: bool = False


def visit_items(model: Recommender, settings: Any, events: Sequence[VisitEvent]) -> tuple[np.ndarray, np.ndarray]:
    """The visit's model items in order of first event (``at``, else the order sent), each with its
    strongest event's weight; products the model does not know and event types without weight are left out."""
    weights = settings.event_weights
    order = sorted(range(len(events)), key=lambda j: (events[j].at is None, events[j].at or 0, j))
    items: dict[int, float] = {}
    for j in order:
        e = events[j]
        i = model.item_index.get(e.product_id)
        w = float(weights.get(e.event_type, 0.0))
        if i is None or w <= 0:
            continue
        items[i] = max(items.get(i, 0.0), w)
    return (
        np.fromiter(items.keys(), dtype=np.int64, count=len(items)),
        np.fromiter(items.values(), dtype=np.float32, count=len(items)),
    )


class Visits:
    """Visit lists on top of a :class:`recommender.serving.service.Service` (its model, catalogue, log, rules)."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._index: tuple[tuple, sessions.SessionIndex] | None = None
        self._choice: tuple[float, dict[str, Any]] | None = None

    # --- what scores a visit ---

    def choice(self, db: sqlite_utils.Database) -> dict[str, Any]:
        """The recorded session scorer (re-read at most every ``serve.model_check_seconds``)."""
        ttl = float(self.service.settings.serve.model_check_seconds)
        now = time.monotonic()
        if self._choice is None or now - self._choice[0] >= ttl:
            self._choice = (now, sessions.current_choice(db))
        return self._choice[1]

    def index(self, db: sqlite_utils.Database, model: Recommender) -> sessions.SessionIndex:
        """Past sessions of consenting customers over the model's items, rebuilt on a new model or privacy epoch."""
        key = (model.version, id(model), self.service.live.epoch)
        with self._lock:
            if self._index is not None and self._index[0] == key:
                return self._index[1]
            data = interactions.load(db, self.service.settings)
            rows = np.array([model.item_index.get(p, -1) for p in data.item_ids], dtype=np.int64)
            mapped = rows[data.item] if len(data.item) else data.item
            keep = mapped >= 0
            data = dataclasses.replace(data, item=mapped, item_ids=np.asarray(model.item_ids, dtype=object))
            index = sessions.SessionIndex(sessions.cut_sessions(data, keep), INDEX_SESSIONS)
            self._index = (key, index)
            return index

    def scorer(self, db: sqlite_utils.Database, model: Recommender) -> sessions.SessionScorer:
        choice = self.choice(db)
        kind = choice.get("scorer", "model")
        settings = recipes.serving_settings(model, self.service.settings)
        index = _popularity_index(model) if kind == "model" else self.index(db, model)
        return sessions.SessionScorer(kind, index, model, choice.get("params") or {}, settings)

    def warm(self, db: sqlite_utils.Database) -> None:
        """Build the session index now (a worker before its first request), when the shop's scorer reads one."""
        model, _ = self.service._model_and_catalogue(db)
        if model is not None and self.choice(db).get("scorer", "model") != "model":
            self.index(db, model)

    # --- a request ---

    def recommend(self, db: sqlite_utils.Database, request: VisitRequest) -> ServedList:
        """The visit's list, logged; a customer without personalization consent is served from the page only."""
        service = self.service
        customer_id, arm = None, None
        if request.customer_id is not None:
            exists, consent = store.customer_consent(db, request.customer_id, PERSONALIZATION)
            if exists and consent:
                customer_id = request.customer_id
                arm = service.assigner.arm(db, customer_id)
        model, catalogue = service._model_and_catalogue(db)
        settings = service.settings
        visited = tuple(e.product_id for e in request.products)
        filters = request.filters
        if request.exclude_visited:
            filters = dataclasses.replace(filters, exclude=tuple(dict.fromkeys((*filters.exclude, *visited))))
        from recommender.online import CONTROL, MODEL

        context = service.context(db, RULES_SURFACE, customer_id, arm)
        options = _Options(request.n, filters, request.diversity)
        if customer_id is not None and arm == CONTROL:
            return service._served(self._popular(db, model, catalogue, options, CONTROL, context), customer_id, arm)
        if arm is not None and arm != MODEL:
            arm = MODEL  # a challenger model has no session scorer of its own: the served one scores
        if model is None:
            return service._served(self._popular(db, model, catalogue, options, "no_model", context), customer_id, arm)
        scorer = self.scorer(db, model)
        items, weights = visit_items(model, recipes.serving_settings(model, settings), request.products)
        if len(items) == 0:
            return service._served(
                self._popular(db, model, catalogue, options, "no_history", context), customer_id, arm
            )
        state = scorer.state(items, weights)
        rules = service.rulebook.active(db, catalogue, context)
        ranked = ranking.rank_state(
            scorer,
            catalogue,
            settings,
            state,
            request.n,
            filters,
            exclude_purchased=False,
            diversity=request.diversity,
            explain=request.explain,
            rules=rules,
            context=context,
        )
        out = []
        for i, score in zip(ranked.items, ranked.scores):
            because = None
            if request.explain:
                because = tuple(
                    Because(model.item_ids[j], catalogue.describe(model.item_ids[j])["name"], round(w, 6))
                    for j, w in ranked.because.get(i, [])
                )
            out.append(
                ServedItem(**catalogue.describe(model.item_ids[i]), score=round(float(score), 6), because=because)
            )
        result = ServedList(
            VISIT,
            MODE,
            None,
            model.version,
            tuple(out),
            short=short_of(request.n, len(out), ranked.removed),
            effects=ranked.effects or None,
        )
        return service._served(result, customer_id, arm)

    def _popular(self, db, model, catalogue, options: _Options, reason: str, context) -> ServedList:
        items, short, effects = self.service._popular_list(
            db, model, catalogue, options.n, options.filters, reason, context=context
        )
        return ServedList(
            VISIT,
            "non_personalized",
            reason,
            model.version if model is not None else None,
            items,
            short=short,
            effects=effects or None,
        )


@dataclass
class _Options:
    n: int
    filters: ListFilters
    diversity: float


def _popularity_index(model: Recommender) -> sessions.SessionIndex:
    """An index with no sessions whose popularity is the model's signal (the model scorer's fill)."""
    cached = getattr(model, "_visit_popularity_index", None)
    if cached is not None:
        return cached
    empty = sessions.Sessions(
        np.zeros(1, np.int64),
        np.zeros(0, np.int64),
        np.zeros(0, np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, np.int64),
        model.n_items,
    )
    index = sessions.SessionIndex(empty)
    pop = model.signals.get("popularity")
    if pop is not None:
        index.popularity = np.asarray(pop, dtype=np.float32)
        index.popular_order = np.argsort(-index.popularity, kind="stable")
    model._visit_popularity_index = index  # type: ignore[attr-defined]
    return index
