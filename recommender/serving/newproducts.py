"""New products in a worker: the served model extended with what the catalogue has and the model lacks.

A worker follows the product change log through its :class:`~recommender.serving.catalogue.Catalogue`.
When a refresh brings products the loaded model does not know (imported after the last retrain),
:meth:`NewProducts.follow` gives the model their representation from their attributes
(:func:`recommender.models.content.extend`, the mapping learned at retrain) together with the products
of the model that had no interactions, and re-aligns the catalogue with the extended model. From
then on every surface — personal lists, visit lists, similar products, campaigns — ranks them like
any other product, without a retrain (docs/new-products.md).

:class:`Exploration` is the stated share of slots that lets them earn first interactions: a list of
``n`` gets ``floor(n · share)`` exploration slots plus one more with probability ``frac(n · share)``
(``serve.new_product_share``, 0.05 by default: one slot in half of the lists of 10). Each slot goes to
the eligible product with the best content score for the customer that every filter and rule of
the list allows and that is not already in it; eligible = no interactions in the model's training
data and arrived (``product_arrivals``) within ``serve.new_product_days``. Slots are the last
positions of the list, never over a product a merchandising rule placed or moved; a new product
that made the list on its own score counts as one of them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.models import content
from recommender.models.base import Recommender
from recommender.serving.catalogue import Catalogue


def product_texts(db: sqlite_utils.Database, ids: Sequence[str] | None = None) -> dict[str, content.ProductText]:
    """Content of products by id (all products when ``ids`` is None)."""
    return {r[0]: content.ProductText(*r) for r in store.product_texts(db, ids)}


@dataclass
class Exploration:
    """The exploration share of one list: eligible model items and the random draw."""

    share: float
    eligible: np.ndarray  # model item indices (sorted)
    rng: np.random.Generator

    def slots(self, n: int) -> int:
        expected = max(0.0, self.share) * n
        whole = int(np.floor(expected))
        return whole + int(self.rng.random() < expected - whole)

    def apply(
        self,
        model: Recommender,
        state: Any,
        chosen: list[int],
        score_of: dict[int, float],
        n: int,
        allow: np.ndarray,
        banned: np.ndarray,
        protected: set[int] = frozenset(),
        rules_allow: np.ndarray | None = None,
    ) -> tuple[list[int], list[int]]:
        """``(list, explored items)``: ``chosen`` with its last slots given to the best eligible new products."""
        if not len(self.eligible) or n <= 0:
            return chosen, []
        slots = self.slots(n)
        already = sum(1 for i in chosen if _in(self.eligible, i))
        wanted = min(slots - already, n)
        if wanted <= 0:
            return chosen, []
        candidates = self.eligible[np.asarray(allow)[self.eligible]]
        if rules_allow is not None:
            candidates = candidates[np.asarray(rules_allow)[candidates]]
        taken = set(chosen) | set(np.asarray(banned).tolist())
        candidates = np.array([i for i in candidates.tolist() if i not in taken], dtype=np.int64)
        if not len(candidates):
            return chosen, []
        scores = np.asarray(model.score(state, candidates), dtype=np.float64)
        order = np.lexsort((candidates, -scores))[:wanted]
        picks = candidates[order].tolist()
        for i, s in zip(picks, scores[order].tolist()):
            score_of[i] = s
        out = list(chosen)
        replaceable = [
            p for p in range(len(out) - 1, -1, -1) if out[p] not in protected and not _in(self.eligible, out[p])
        ]
        explored = []
        for pick in picks:
            if len(out) < n:
                out.append(pick)
            elif replaceable:
                out[replaceable.pop(0)] = pick
            else:
                break
            explored.append(pick)
        return out, explored


def _in(sorted_items: np.ndarray, i: int) -> bool:
    j = int(np.searchsorted(sorted_items, i))
    return j < len(sorted_items) and int(sorted_items[j]) == i


class NewProducts:
    """One worker's view of new products: the extended model for the loaded one, and who may explore."""

    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        self.settings = settings
        self.rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._base: Recommender | None = None
        self._served: Recommender | None = None
        self._generation: object = None
        self._texts: dict[str, content.ProductText] = {}
        self._arrivals: dict[str, str | None] = {}
        self.eligible = np.zeros(0, dtype=np.int64)

    def follow(
        self, db: sqlite_utils.Database, model: Recommender | None, catalogue: Catalogue, live: Any = None
    ) -> tuple[Recommender | None, Catalogue]:
        """The model to serve with ``catalogue`` (refreshed), extended with the products it lacks.

        When the model's item axis grows, a catalogue aligned with it is returned (and handed to
        ``live``, the worker's :class:`~recommender.serving.service.LiveModel`, for the next request).
        """
        if model is None or not self.settings.serve.represent_new_products or content.ContentMapping.of(model) is None:
            return model, catalogue
        with self._lock:
            if self._base is not model:
                self._base, self._served, self._generation = model, None, None
                self._texts, self._arrivals = {}, {}
            if self._served is not None and catalogue.generation is self._generation:
                return self._served, catalogue
            served = self._served or model
            missing = catalogue.index.keys() - served.item_index.keys()
            if self._served is None or missing:
                mapping = content.ContentMapping.of(model)
                new_ids = sorted(catalogue.index.keys() - model.item_index.keys())
                wanted = [p for p in [model.item_ids[int(i)] for i in mapping.cold] + new_ids if p not in self._texts]
                if wanted:
                    self._texts.update(product_texts(db, wanted))
                served = content.extend(
                    model, [self._texts[p] for p in new_ids if p in self._texts], base_products=self._texts
                )
                if served.item_ids != catalogue.item_ids:
                    aligned = Catalogue(served.item_ids, ttl=catalogue.ttl, background=catalogue.background)
                    aligned.adopt(catalogue)
                    if live is not None and getattr(live, "catalogue", None) is catalogue:
                        live.catalogue = aligned
                    catalogue = aligned
                self._served = served
            self._generation = catalogue.generation
            self.eligible = self._recent(db, self._served)
            return self._served, catalogue

    def _recent(self, db: sqlite_utils.Database, model: Recommender) -> np.ndarray:
        """Cold items of ``model`` that arrived within ``serve.new_product_days``."""
        cold = content.cold_items(model)
        if not len(cold):
            return np.zeros(0, dtype=np.int64)
        ids = [model.item_ids[int(i)] for i in cold]
        unknown = [p for p in ids if p not in self._arrivals]
        if unknown:
            found = store.product_arrivals_of(db, unknown)
            self._arrivals.update({p: found.get(p) for p in unknown})
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=self.settings.serve.new_product_days)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        recent = np.array([(self._arrivals.get(p) or "") >= since for p in ids], dtype=bool)
        return np.sort(cold[recent])

    def exploration(self, model: Recommender | None) -> Exploration | None:
        """The exploration of a personal list ranked by ``model`` (None when off or nothing is eligible)."""
        share = self.settings.serve.new_product_share
        if model is None or model is not self._served or share <= 0 or not len(self.eligible):
            return None
        return Exploration(share, self.eligible, self.rng)
