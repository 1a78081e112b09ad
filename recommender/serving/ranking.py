"""The one path from a customer's current history to their filtered personal top-k.

The storefront (``GET /v1/customers/<id>/recommendations`` and ``/rerank``) and
the occasion campaigns all rank here, so a customer sees the same personal
ranking in a banner and in a birthday email, and a customer who joined after
the last retrain is personalized in both as soon as they have history:

1. **consent** — ``personalization`` read from the database now, in one place
   (:func:`customer_state`, behind :func:`rank_customer` and
   :func:`rerank_customer`; a batch job checks it for all its customers at
   once and calls :func:`rank_history`);
2. **fold-in** — the customer's vector is solved from their current events
   (:func:`recommender.data.interactions.confidences_of` + ``recalculate_user``),
   so an event posted a moment ago counts, and a customer unknown to the model
   is ranked like a known one;
3. **filters** — :meth:`recommender.serving.catalogue.Catalogue.allowed`, the single
   definition of the catalogue rules (a cached mask per filter set), plus the
   products they already bought (the event types in ``settings.purchase_events``);
4. **search** — the model's ``recommend``: for factor models exact top-k through
   :class:`~recommender.models.topk.NormIndex`, or the ANN index of a large catalogue
   (:mod:`recommender.models.ann`), with every filter re-checked; when merchandising
   rules apply, a pool of ``max(rules.POOL, n)`` candidates;
5. **merchandising rules** — :func:`recommender.serving.arrange.arrange` on that pool:
   exclude / include-only, boost / bury / rotate on the rank-normalised score, promote,
   pin (a rule never brings back what steps 1–3 removed);
6. **diversity, list size and explanations** on request (pins keep their positions).

A list that comes out shorter than asked counts what each step removed
(:func:`removals`; ``ServedList.short``): the catalogue rules from the counts
kept with the filter set's mask, the rest from the few ids each step drops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.data import interactions
from recommender.models.base import Recommender
from recommender.models.factor import rank_items
from recommender.serving.arrange import arrange, pool_size
from recommender.serving.catalogue import RULES, Catalogue, ListFilters
from recommender.serving.context import Context
from recommender.serving.newproducts import Exploration
from recommender.serving.rules import Effects
from recommender.serving.rulesets import ActiveSet, Rulebook, items_space
from recommender.store.consents import PERSONALIZATION
from recommender.training import recipes

Event = tuple[str, str, float, int]


@dataclass
class Ranked:
    """A personal list: model item indices best first, their scores, and (on request) why."""

    items: list[int]
    scores: list[float]
    because: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    # when fewer than asked: candidates removed per step, in the order the steps ran (see removals)
    removed: dict[str, int] = field(default_factory=dict)
    # what merchandising rules did to the list (empty when none applied)
    effects: Effects = field(default_factory=Effects)


def fold_in(
    model: Recommender, settings: Settings, events: Sequence[Event], index: Mapping[str, int | None] | None = None
) -> tuple[object | None, np.ndarray, np.ndarray]:
    """The customer's model state from their events (``None`` when no event touches a known product).

    ``index`` is :func:`recommender.data.interactions.local_index` of the events when the caller has it.
    """
    reference = model.manifest.get("data", {}).get("reference_time")
    # By the confidence rules the model was trained with (selection may have chosen its own).
    items, conf = interactions.confidences_of(
        list(events), recipes.serving_settings(model, settings), model.item_index if index is None else index, reference
    )
    if len(items) == 0:
        return None, items, conf
    return model.fold_in(items, conf), items, conf


def purchased_items(
    model: Recommender,
    events: Sequence[Event],
    purchase_events: Sequence[str],
    index: Mapping[str, int | None] | None = None,
) -> np.ndarray:
    """Model indices of the products these events bought (event types that mean "bought" in settings)."""
    kinds = set(purchase_events)
    index = model.item_index if index is None else index
    idx = {index.get(p) for p, e, _, _ in events if e in kinds}
    idx.discard(None)
    return np.array(sorted(idx), dtype=np.int64)


@dataclass
class CustomerState:
    """A customer's current model state: their events, folded into the model (what every score starts from)."""

    events: Sequence[Event]
    index: Mapping[str, int | None]  # the model rows of the products they touched
    vector: object
    items: np.ndarray
    conf: np.ndarray


def history_state(model: Recommender, settings: Settings, events: Sequence[Event]) -> CustomerState | None:
    """The model state of a customer with these events; ``None`` when no event touches a known product.

    The caller has checked consent.
    """
    index = interactions.local_index(events, model.item_index)  # each product looked up once per request
    vector, items, conf = fold_in(model, settings, events, index)
    if vector is None:
        return None
    return CustomerState(events, index, vector, items, conf)


def customer_state(
    db: sqlite_utils.Database,
    settings: Settings,
    model: Recommender | None,
    customer_id: str,
    *,
    withheld: str | None = None,
) -> tuple[str | None, CustomerState | None]:
    """``(None, state)`` when this customer may be scored now, else ``(reason, None)``: the one consent check.

    Reasons, in this order: ``unknown_customer``, ``no_consent``
    (personalization not granted now), ``no_model``, then ``withheld`` (the
    caller's reason not to score with ``model`` although it may: the A/B
    control arm, a model stale past its window), then ``no_history``.
    """
    exists, consent = store.customer_consent(db, customer_id, PERSONALIZATION)
    if not exists:
        return "unknown_customer", None
    if not consent:
        return "no_consent", None
    if model is None:
        return "no_model", None
    if withheld is not None:
        return withheld, None
    state = history_state(model, settings, store.customer_events(db, customer_id))
    return ("no_history", None) if state is None else (None, state)


def rank_state(
    model: Recommender,
    catalogue: Catalogue,
    settings: Settings,
    state: CustomerState,
    n: int,
    filters: ListFilters,
    *,
    exclude_purchased: bool = True,
    diversity: float = 0.0,
    explain: bool = False,
    rules: ActiveSet | None = None,
    context: Context | None = None,
    explore: Exploration | None = None,
) -> Ranked:
    """Top-``n`` of the catalogue for a customer state, under ``filters``, with the merchandising ``rules`` that apply.

    ``catalogue`` must be aligned with ``model`` (built from its ``item_ids``) and refreshed.
    ``rules`` (:meth:`recommender.serving.rulesets.Rulebook.active`) act on the model's
    candidates after every filter and before diversity; ``context`` is the request they read
    (rotation reads the customer's impressions through it).
    """
    # The catalogue's cached mask plus the few items this request leaves out: nothing per
    # request is as large as the catalogue (see Catalogue.allowed).
    allow, excluded = catalogue.allowed(filters)
    banned, purchased = excluded, None
    if exclude_purchased:
        purchased = purchased_items(model, state.events, settings.purchase_events, state.index)
        banned = np.concatenate([banned, purchased])
    depth = n if diversity <= 0 else n * 10
    if rules:
        depth = max(depth, pool_size(n, rules))
    ranked, scores = model.recommend(state.vector, depth, exclude=banned, allow=allow)
    score_of = dict(zip(ranked.tolist(), scores.tolist()))
    skipped: list[int] = []
    effects = Effects()
    if rules:

        def finish(order: list[int], k: int) -> list[int]:
            skipped.clear()  # the last call is the served list's
            return catalogue.diversify(order, k, diversity, skipped)

        def fill(mask: np.ndarray | None, k: int, taken) -> list[int]:
            more = np.fromiter(taken, dtype=np.int64, count=len(taken))
            found, found_scores = model.recommend(
                state.vector, k, exclude=np.concatenate([banned, more]), allow=allow if mask is None else allow & mask
            )
            score_of.update(zip(found.tolist(), found_scores.tolist()))
            return found.tolist()

        out = set(banned.tolist())
        arranged = arrange(
            rules,
            items_space(catalogue),
            ranked.tolist(),
            n,
            context or Context("recommendations"),
            fill=fill,
            finish=finish,
            allowed=lambda i: allow.item(i) and i not in out,
        )
        chosen, effects = arranged.items, arranged.effects
        missing = [i for i in chosen if i not in score_of]  # pinned products the search did not propose
        if missing:
            score_of.update(zip(missing, np.asarray(model.score(state.vector, np.array(missing))).tolist()))
    else:
        chosen = catalogue.diversify(ranked.tolist(), n, diversity, skipped)
    if explore is not None:  # new products' exploration slots (recommender.serving.newproducts)
        protected = {model.item_index[p] for p in effects.product_ids() if p in model.item_index}
        chosen, _ = explore.apply(
            model, state.vector, chosen, score_of, n, allow, banned, protected, rules.allow("items") if rules else None
        )
    because = {i: model.explain(state.items, state.conf, i, n=3) for i in chosen} if explain else {}
    removed = (
        {}
        if len(chosen) >= n
        else removals(
            catalogue,
            filters,
            allow,
            excluded,
            n,
            purchased=purchased,
            proposed=len(ranked),
            depth=depth,
            diversity=len(skipped),
            rules=bool(rules and rules.filters),
        )
    )
    return Ranked(chosen, [float(score_of[i]) for i in chosen], because, removed, effects)


def removals(
    catalogue: Catalogue,
    filters: ListFilters,
    allow: np.ndarray,
    excluded: np.ndarray,
    n: int,
    *,
    purchased: np.ndarray | None = None,
    proposed: int,
    depth: int,
    diversity: int = 0,
    itself: int | None = None,
    rules: bool = False,
) -> dict[str, int]:
    """What each step removed of a model list that came out shorter than ``n``, in the order the steps ran.

    ``catalogue`` (the model knows fewer than ``n`` products still in the
    catalogue, ``itself`` aside: the product a similar list is for), the
    rules of :data:`~recommender.serving.catalogue.RULES` (counted when the
    filter set's mask was made), ``exclude`` and ``purchased`` (of the products
    the rules allowed), ``model`` (the model proposed fewer of the remaining
    products than it was asked for), ``rules`` (a merchandising rule's exclusion or
    include-only applied) and ``diversity`` (left out by the cap).
    Only the few ids of the request are read here, never the catalogue.
    """
    pool, by_rule = catalogue.removed_items(filters)
    by_rule = dict(by_rule)  # the catalogue's counts are shared: never written
    if itself is not None:
        pool -= 1
        code = int(catalogue.item_refusals(filters)[itself])
        if 0 < code <= len(RULES):
            by_rule[RULES[code - 1]] -= 1
    out = {"catalogue": int(pool < n), **by_rule}
    dropped = np.unique(excluded)
    dropped = dropped[allow[dropped]]
    if itself is not None:
        dropped = dropped[dropped != itself]
    out["exclude"] = len(dropped)
    if purchased is not None:
        bought = np.setdiff1d(purchased, dropped)
        out["purchased"] = int(allow[bought].sum())
    available = pool - sum(by_rule.values()) - out["exclude"] - out.get("purchased", 0)
    out["model"] = int(proposed < min(depth, available))
    out["rules"] = int(rules)
    out["diversity"] = diversity
    return out


def rank_history(
    model: Recommender,
    catalogue: Catalogue,
    settings: Settings,
    events: Sequence[Event],
    n: int,
    filters: ListFilters,
    *,
    exclude_purchased: bool = True,
    diversity: float = 0.0,
    explain: bool = False,
    rules: ActiveSet | None = None,
    context: Context | None = None,
) -> Ranked | None:
    """Top-``n`` for a customer with these events, under ``filters``; ``None`` when there is no usable history.

    The caller has checked consent. ``catalogue`` must be aligned with
    ``model`` (built from its ``item_ids``) and refreshed.
    """
    state = history_state(model, settings, events)
    if state is None:
        return None
    return rank_state(
        model,
        catalogue,
        settings,
        state,
        n,
        filters,
        exclude_purchased=exclude_purchased,
        diversity=diversity,
        explain=explain,
        rules=rules,
        context=context,
    )


def rank_customer(
    db: sqlite_utils.Database,
    settings: Settings,
    model: Recommender | None,
    catalogue: Catalogue,
    customer_id: str,
    n: int,
    filters: ListFilters,
    *,
    exclude_purchased: bool = True,
    diversity: float = 0.0,
    explain: bool = False,
    withheld: str | None = None,
    rulebook: Rulebook | None = None,
    context: Context | None = None,
    explore: Exploration | None = None,
) -> tuple[str | None, Ranked | None]:
    """``(None, ranked)`` for a personal list, else ``(reason, None)`` saying why a caller must fall back.

    Reasons as :func:`customer_state`. ``rulebook`` holds the merchandising rules;
    the ones that apply to ``context`` (surface, customer, arm) are chosen here, once
    the customer's events are read.
    """
    reason, state = customer_state(db, settings, model, customer_id, withheld=withheld)
    if state is None:
        return reason, None
    rules = None
    if rulebook is not None:
        context = context or Context("recommendations", customer_id, db=db, purchase_events=settings.purchase_events)
        context.events = state.events
        rules = rulebook.active(db, catalogue, context)
    return None, rank_state(
        model,
        catalogue,
        settings,
        state,
        n,
        filters,
        exclude_purchased=exclude_purchased,
        diversity=diversity,
        explain=explain,
        rules=rules,
        context=context,
        explore=explore,
    )


def rerank_customer(
    db: sqlite_utils.Database,
    settings: Settings,
    model: Recommender | None,
    customer_id: str,
    products: Sequence[str],
    *,
    withheld: str | None = None,
) -> tuple[str | None, list[str]]:
    """``(None, products best first)`` for this customer, else ``(reason, products unchanged)``.

    Reasons as :func:`customer_state`. Products the model does not know keep
    their order after the ones it scores.
    """
    reason, state = customer_state(db, settings, model, customer_id, withheld=withheld)
    if state is None:
        return reason, list(products)
    return None, rank_items(list(products), model, state.vector)
