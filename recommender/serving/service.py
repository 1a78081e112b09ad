"""Answering a storefront: model or fallback, filters, consent — one function per request kind.

A storefront must always get a list to show, so every refusal to personalize
falls back to popular products and says why (``mode`` and ``reason``), never
an error. Consent is read from the database on every request, so a
withdrawal takes effect in every worker at once, without a retrain.

The customer's vector is recomputed from their current history on each
personalized request (one least-squares solve against the item factors, the
same step ALS itself takes). That is what makes an event posted a moment ago
count in the very next list, in whichever worker serves it, with no cache to
invalidate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.errors import ModelError, NotFoundError, ValidationError
from recommender.models import registry
from recommender.models.base import Recommender
from recommender.online import CHALLENGER, CONTROL, MODEL, Assigner, new_list_id
from recommender.privacy import DecisionLog
from recommender.privacy.decisions import ANONYMOUS_REASONS
from recommender.serving import ranking
from recommender.serving.arrange import arrange, pool_size
from recommender.serving.catalogue import RULES, Catalogue, ListFilters
from recommender.serving.context import Context
from recommender.serving.newproducts import NewProducts
from recommender.serving.results import (
    BOUGHT_TOGETHER,
    POPULAR,
    RECOMMENDATIONS,
    RERANK,
    SIMILAR,
    TRENDING,
    Because,
    ServedItem,
    ServedList,
    Short,
    short_of,
)
from recommender.serving.rules import Effects, set_segment_source
from recommender.serving.rulesets import Rulebook, items_space, rows_space
from recommender.store.consents import PERSONALIZATION
from recommender.value.lookup import SegmentSource

POPULAR_TTL = 300.0


class LiveModel:
    """The model a worker serves; follows the registry's ``CURRENT`` pointer.

    The pointer is checked at most every ``check_interval`` seconds (a stat of
    one small file). A version that fails to load is refused and remembered,
    and the model already loaded keeps serving.
    """

    def __init__(
        self, model_dir: str, check_interval: float = 1.0, catalogue_ttl: float = 60.0, settings: Settings | None = None
    ) -> None:
        self.registry = registry.Registry(model_dir)
        self.settings = settings  # for the tombstone key (staleness of withdrawals)
        self.check_interval = check_interval
        self.catalogue_ttl = catalogue_ttl
        self.model: Recommender | None = None
        self.catalogue: Catalogue | None = None
        self.last_error: str | None = None
        self._failed: str | None = None
        self._erasures: int | None = None
        self._checked = -math.inf
        self._lock = threading.Lock()
        # The privacy epoch this worker has followed, the manifest it loaded, staleness.
        self.epoch: int | None = None
        self._manifest_stat: tuple | None = None
        self.stale: dict[str, Any] = {"stale": False, "stale_since": None, "hours": None}
        self._stale_key: tuple | None = None

    def get(self, db: sqlite_utils.Database | None = None) -> Recommender | None:
        """The model to serve; reloads when the pointer moved or a privacy event rewrote the artifact.

        The privacy epoch is read on every request (one indexed query): after an
        erasure or withdrawal, the next request in every worker reloads the
        scrubbed artifact (its manifest is rewritten last) and its signals.
        """
        if time.monotonic() - self._checked >= self.check_interval:
            self.reload()
        if db is not None:
            self._follow_privacy(db)
        return self.model

    def _manifest_signature(self) -> tuple | None:
        version = self.model.version if self.model else None
        if version is None:
            return None
        try:
            st = (self.registry.path(version) / "manifest.json").stat()
        except (OSError, ModelError):
            return None
        return (version, st.st_mtime_ns, st.st_size, st.st_ino)

    def _follow_privacy(self, db: sqlite_utils.Database) -> None:
        epoch = store.privacy_epoch(db)
        if epoch != self.epoch and self.model is not None:
            signature = self._manifest_signature()
            if signature != self._manifest_stat:
                self.reload(force=True)
            from recommender.privacy.reconcile import artifact_epoch

            if self.model is not None and artifact_epoch(self.model.manifest) >= epoch:
                self.epoch = epoch  # the loaded artifact is reconciled with every event so far
        elif self.model is None:
            self.epoch = epoch
        key = (self.model.version if self.model else None, epoch, self._manifest_stat)
        if key != self._stale_key:
            from recommender.privacy.reconcile import staleness

            self.stale = (
                staleness(db, self.model.manifest, self.model.user_index, self.settings)
                if self.model
                else {"stale": False, "stale_since": None, "hours": None}
            )
            self._stale_key = key

    def stale_hours(self) -> float | None:
        """Hours since the served model became stale (None when it is not), by the clock now."""
        since = self.stale.get("stale_since")
        if not since:
            return None
        import datetime as dt

        at = dt.datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        return (dt.datetime.now(dt.UTC) - at).total_seconds() / 3600.0

    def reload(self, force: bool = False) -> str | None:
        """Load the current version if it changed; returns the version now served."""
        with self._lock:
            self._checked = time.monotonic()
            version = self.registry.current_version()
            loaded = self.model.version if self.model else None
            if version is None or (version == loaded and not force) or (version == self._failed and not force):
                return loaded
            if force and version == loaded and self._manifest_signature() == self._manifest_stat:
                return loaded  # nothing rewritten since it was loaded
            try:
                model = self.registry.load(version)
            except ModelError as exc:
                self._failed, self.last_error = version, str(exc)
                return loaded
            if self.settings is not None and hasattr(model, "configure_ann"):
                model.configure_ann(self.settings.ann)  # the serve-time switch of the ANN index
            model.warm_up()  # built here, not in the first request that needs it
            self.model, self._failed, self.last_error = model, None, None
            self._manifest_stat = self._manifest_signature()
            catalogue = Catalogue(model.item_ids, ttl=self.catalogue_ttl, background=True)
            if self.catalogue is not None:
                catalogue.adopt(self.catalogue)  # the products did not change with the model
            self.catalogue = catalogue
            return version


@dataclass
class ListOptions:
    n: int = 10
    filters: ListFilters = field(default_factory=ListFilters)
    exclude_purchased: bool = True
    diversity: float = 0.0
    explain: bool = False


class Service:
    def __init__(self, settings: Settings, live: LiveModel | None = None, decisions: DecisionLog | None = None) -> None:
        self.settings = settings
        self.live = live or LiveModel(str(settings.model_dir), settings=settings)
        self.decisions = decisions or DecisionLog(
            settings.db,
            settings.privacy.decision_log_flush_seconds,
            enabled=settings.privacy.decision_log,
            retention_days=settings.privacy.retention_days,
        )
        self._no_model_catalogue: Catalogue | None = None
        self._popular_cache: dict[tuple, tuple[float, list[tuple[str, int]]]] = {}
        self.assigner = Assigner(settings.online)  # the A/B arm of each customer (recommender.online)
        self._challenger: tuple[tuple, tuple[Recommender, Catalogue] | None, float] | None = None
        self._popular_order: tuple[Any, np.ndarray] | None = None  # (model, its items by popularity)
        # merchandising rules: follows meta.rules_version on every request (recommender.serving.rulesets)
        self.rulebook = Rulebook()
        # audience.segments: the stored customer-value segment (recommender.value.lookup.SegmentSource)
        set_segment_source(SegmentSource(settings))
        # products the model lacks or never saw bought, represented by content (recommender.serving.newproducts)
        self.new_products = NewProducts(settings)

    def context(
        self, db: sqlite_utils.Database, surface: str, customer_id: str | None = None, arm: str | None = None
    ) -> Context:
        """The request the merchandising rules read: surface, and the customer they may profile (None: anonymous)."""
        return Context(surface, customer_id, arm, db, purchase_events=self.settings.purchase_events)

    # --- shared pieces -------------------------------------------------------------

    def warm(self, db: sqlite_utils.Database) -> str | None:
        """Load the current model and read the catalogue now (a server worker, before its first request).

        At a million products the two take tens of seconds; left to the first
        request, a storefront's customer would wait for them. Returns the version.
        """
        model, _ = self._model_and_catalogue(db)
        return model.version if model is not None else None

    def _model_and_catalogue(self, db: sqlite_utils.Database) -> tuple[Recommender | None, Catalogue]:
        model = self.live.get(db)
        if model is not None and self.live.catalogue is not None:
            catalogue = self.live.catalogue
        else:
            if self._no_model_catalogue is None:
                self._no_model_catalogue = Catalogue([], ttl=self.live.catalogue_ttl, background=True)
            catalogue = self._no_model_catalogue
        catalogue.refresh(db)
        return self.new_products.follow(db, model, catalogue, self.live)

    def _popular_ids(
        self, db: sqlite_utils.Database, model: Recommender | None, days: int | None, limit: int
    ) -> list[tuple[str, float]]:
        """Popular products, best first: from the model's signal, or a cached query for a window."""
        if days is None and model is not None and "popularity" in model.signals:
            pop = np.asarray(model.signals["popularity"])
            if self._popular_order is None or self._popular_order[0] is not model:
                # Sorted once per loaded model, not per request (a million products take ~0.1 s).
                self._popular_order = (model, np.argsort(-pop, kind="stable"))
            order = self._popular_order[1][:limit]
            return [(model.item_ids[i], float(pop[i])) for i in order if pop[i] > 0]
        key = (days, limit, self.live.epoch)  # a withdrawal or erasure invalidates it at once
        hit = self._popular_cache.get(key)
        if hit and time.monotonic() - hit[0] < POPULAR_TTL:
            return hit[1]
        since = int(time.time()) - days * 86400 if days else 0
        rows = [(p, float(n)) for p, n in store.popular_since(db, since, limit)]
        if len(self._popular_cache) > 64:  # old epochs' entries
            self._popular_cache.clear()
        self._popular_cache[key] = (time.monotonic(), rows)
        return rows

    def _popular_list(
        self,
        db,
        model,
        catalogue,
        n: int,
        filters: ListFilters,
        source: str,
        days: int | None = None,
        skip: set[str] = frozenset(),
        context: Context | None = None,
    ) -> tuple[tuple[ServedItem, ...], Short | None, Effects]:
        """The ``n`` most popular products ``filters`` allow, why the list is short when it is, and the rules' effects.

        ``source`` names the popular pool when it ran out before the list was
        full (the list's reason: ``popular``, ``trending``, ``no_history``, ...).
        With ``context``, the merchandising rules that apply to it act on a pool of
        popular candidates (:func:`recommender.serving.arrange.arrange`).
        """
        active = self.rulebook.active(db, catalogue, context) if context is not None else None
        want = pool_size(n, active)
        limit = max(1000, want * 50)
        pool = self._popular_ids(db, model, days, limit=limit)
        index, refusals = catalogue.index, catalogue.product_refusals(filters)
        removed = dict.fromkeys((source, *RULES, "exclude"), 0)
        out: list[tuple[int, float]] = []
        read = 0  # products of the catalogue the pool held
        position = 0

        def candidates(mask, k: int, taken) -> list[int]:
            """Up to ``k`` more allowed popular products (``mask``: what the rules allow), by popularity."""
            nonlocal read, position
            found: list[int] = []
            while position < len(pool) and len(found) < k:
                pid, score = pool[position]
                position += 1
                j = index.get(pid)
                if j is None or pid in skip:  # deleted, or the product a similar list is for: never a candidate
                    continue
                read += 1
                code = refusals[j]
                if code:
                    removed[RULES[code - 1]] += 1
                    continue
                if pid in filters.exclude:
                    removed["exclude"] += 1
                    continue
                scores[j] = score
                if j in taken or (mask is not None and not mask[j]):
                    continue
                found.append(j)
            return found

        scores: dict[int, float] = {}
        effects = Effects()
        chosen = candidates(None, want, ())
        if active:
            arranged = arrange(
                active,
                rows_space(catalogue),
                chosen,
                n,
                context,
                fill=candidates,
                allowed=lambda j: (
                    refusals[j] == 0 and catalogue.ids[j] not in filters.exclude and catalogue.ids[j] not in skip
                ),
            )
            chosen, effects = arranged.items, arranged.effects
        out = [(j, scores.get(j)) for j in chosen[:n]]
        items = tuple(ServedItem(**catalogue.describe(catalogue.ids[j]), score=s) for j, s in out)
        # every popular product was read, and the catalogue holds others: they could not be listed
        removed[source] = int(len(pool) < limit and read < len(index) - len(skip))
        if active and active.filters:
            removed["rules"] = 1
        return items, short_of(n, len(items), removed), effects

    def _fallback(
        self, db, model, catalogue, options: ListOptions, reason: str, context: Context | None = None
    ) -> ServedList:
        items, short, effects = self._popular_list(
            db, model, catalogue, options.n, options.filters, reason, context=context
        )
        return ServedList(
            RECOMMENDATIONS,
            "non_personalized",
            reason,
            _version(model),
            items,
            short=short,
            effects=effects or None,
        )

    def _stale(self) -> bool:
        """Whether the served model has been stale longer than ``privacy.max_stale_hours``.

        Past that, nothing learnt from its factors is served (lists fall back to
        popular items with reason ``model_stale``) until a clean model is published.
        """
        hours = self.live.stale_hours()
        return hours is not None and hours > self.settings.privacy.max_stale_hours

    # --- requests --------------------------------------------------------------------

    # --- the A/B arms (recommender.online) ----------------------------------------------

    def _assignable(self, db: sqlite_utils.Database, customer_id: str) -> bool:
        """Only known customers with personalization consent take part in the experiment."""
        exists, consent = store.customer_consent(db, customer_id, PERSONALIZATION)
        return exists and consent

    def _challenger_model(self, db: sqlite_utils.Database) -> tuple[Recommender, Catalogue] | None:
        """The challenger arm's model (``online.challenger``), reloaded after every privacy event.

        None when it cannot be loaded or has been stale longer than the cap;
        its customers then get the current model (and are logged as arm ``model``).
        """
        version = self.settings.online.challenger
        key = (version, store.privacy_epoch(db))
        cached = self._challenger
        if cached is None or cached[0] != key or (cached[1] is None and time.monotonic() - cached[2] > 60):
            served = None
            try:
                model = self.live.registry.load(version)
            except ModelError:
                model = None
            if model is not None:
                from recommender.privacy.reconcile import staleness

                hours = staleness(db, model.manifest, model.user_index, self.settings)["hours"]
                if hours is None or hours <= self.settings.privacy.max_stale_hours:
                    served = (model, Catalogue(model.item_ids, ttl=self.live.catalogue_ttl, background=True))
                    if self.live.catalogue is not None:
                        served[1].adopt(self.live.catalogue)
            self._challenger = (key, served, time.monotonic())
        served = self._challenger[1]
        if served is not None:
            served[1].refresh(db)
        return served

    def _served(self, result: ServedList, customer_id: str | None = None, arm: str | None = None) -> ServedList:
        """Give a list its id and arm, and log it (anonymously for the reasons that require it)."""
        list_id = new_list_id()
        if customer_id is None or result.reason in ANONYMOUS_REASONS:
            arm = None
        rules = result.effects.to_json if result.effects else None  # written with its batch, off the request
        self.decisions.record(
            customer_id,
            result.surface,
            result.model_version,
            result.mode,
            result.reason,
            result.product_ids,
            list_id=list_id,
            arm=arm,
            rules=rules,
        )
        return replace(result, list_id=list_id, arm=arm)

    # --- requests --------------------------------------------------------------------

    def recommend(self, db: sqlite_utils.Database, customer_id: str, options: ListOptions) -> ServedList:
        """Personalized top-n for a customer, or popular items with the reason why not; logged with its id and arm.

        The control arm gets the non-personalized list (reason ``control``);
        the challenger arm is ranked by the challenger model.
        """
        arm = self.assigner.arm(db, customer_id)
        result = None
        if arm != MODEL and self._assignable(db, customer_id):
            if arm == CONTROL:
                model, catalogue = self._model_and_catalogue(db)
                result = self._fallback(
                    db, model, catalogue, options, CONTROL, self.context(db, RECOMMENDATIONS, customer_id, arm)
                )
            else:
                served = self._challenger_model(db)
                if served is None:
                    arm = MODEL
                else:
                    result = self._recommend(db, customer_id, options, served, arm=arm)
        if result is None:
            result = self._recommend(db, customer_id, options, arm=arm)
        return self._served(result, customer_id, arm)

    def _recommend(
        self,
        db: sqlite_utils.Database,
        customer_id: str,
        options: ListOptions,
        served: tuple[Recommender, Catalogue] | None = None,
        *,
        arm: str | None = None,
        rulebook: Rulebook | None = None,
    ) -> ServedList:
        """The storefront face of :func:`recommender.serving.ranking.rank_customer`, the one ranking path.

        ``rulebook`` replaces the worker's rules (a preview of a rule set not yet saved).
        """
        model, catalogue = served or self._model_and_catalogue(db)
        rulebook = rulebook or self.rulebook
        # factors past the stale-model window teach nothing (a challenger is checked when it loads)
        withheld = "model_stale" if model is not None and served is None and self._stale() else None
        context = self.context(db, RECOMMENDATIONS, customer_id, arm)
        reason, ranked = ranking.rank_customer(
            db,
            self.settings,
            model,
            catalogue,
            customer_id,
            options.n,
            options.filters,
            exclude_purchased=options.exclude_purchased,
            diversity=options.diversity,
            explain=options.explain,
            withheld=withheld,
            rulebook=rulebook,
            context=context,
            explore=None if served else self.new_products.exploration(model),
        )
        if reason is not None:
            # an unknown or non-consenting visitor is anonymous to the rules too (no rotation, no profile)
            anonymous = reason in ANONYMOUS_REASONS
            context = self.context(db, RECOMMENDATIONS, None if anonymous else customer_id, None if anonymous else arm)
            if rulebook is self.rulebook:
                return self._fallback(db, model, catalogue, options, reason, context)
            keep, self.rulebook = self.rulebook, rulebook
            try:
                return self._fallback(db, model, catalogue, options, reason, context)
            finally:
                self.rulebook = keep
        items = []
        for i, score in zip(ranked.items, ranked.scores):
            because = None
            if options.explain:
                because = tuple(
                    Because(model.item_ids[j], catalogue.describe(model.item_ids[j])["name"], round(w, 6))
                    for j, w in ranked.because[i]
                )
            items.append(ServedItem(**catalogue.describe(model.item_ids[i]), score=round(score, 6), because=because))
        return ServedList(
            RECOMMENDATIONS,
            "personalized",
            None,
            model.version,
            tuple(items),
            short=short_of(options.n, len(items), ranked.removed),
            effects=ranked.effects or None,
        )

    def rerank(self, db: sqlite_utils.Database, customer_id: str, products: Sequence[str]) -> ServedList:
        """The caller's products, best first for this customer (unchanged order when not personalized).

        Ranked by :func:`recommender.serving.ranking.rerank_customer`, the same
        consent and fold-in as every personal list; the A/B control arm and a
        model stale past its window keep the caller's order.
        """
        unknown = sorted(set(products) - store.existing_of(db, "products", products))
        if unknown:
            raise ValidationError(f"unknown product(s): {', '.join(unknown[:10])}")
        arm = self.assigner.arm(db, customer_id)
        served = self._challenger_model(db) if arm == CHALLENGER and self._assignable(db, customer_id) else None
        if arm == CHALLENGER and served is None:
            arm = MODEL
        model, catalogue = served or self._model_and_catalogue(db)
        withheld = CONTROL if arm == CONTROL else "model_stale" if served is None and self._stale() else None
        reason, ordered = ranking.rerank_customer(db, self.settings, model, customer_id, products, withheld=withheld)
        anonymous = reason in ANONYMOUS_REASONS
        context = self.context(db, RERANK, None if anonymous else customer_id, None if anonymous else arm)
        ordered, effects = self._rerank_rules(db, catalogue, context, list(ordered))
        result = ServedList(
            RERANK,
            "non_personalized" if reason else "personalized",
            reason,
            _version(model),
            tuple(ServedItem(p) for p in ordered),
            effects=effects or None,
        )
        return self._served(result, customer_id, arm)

    def _rerank_rules(
        self, db, catalogue: Catalogue, context: Context, ordered: list[str]
    ) -> tuple[list[str], Effects]:
        """The rules on a re-ranking: they reorder the caller's products, never drop or add one."""
        active = self.rulebook.active(db, catalogue, context)
        if not active:
            return ordered, Effects()
        index = catalogue.index
        known = [index[p] for p in ordered if p in index]
        unknown = [p for p in ordered if p not in index]  # added since the last refresh: keep their place at the end
        arranged = arrange(active, rows_space(catalogue), known, len(known), context, reorder_only=True)
        return [catalogue.ids[j] for j in arranged.items] + unknown, arranged.effects

    def similar(self, db: sqlite_utils.Database, product_id: str, n: int, filters: ListFilters) -> ServedList:
        return self._served(self._similar(db, product_id, n, filters))

    def _similar(self, db: sqlite_utils.Database, product_id: str, n: int, filters: ListFilters) -> ServedList:
        model, catalogue = self._model_and_catalogue(db)
        self._require_product(catalogue, db, product_id)
        if model is not None and product_id not in model.item_index:  # imported since: represented by content
            model, catalogue = self.new_products.follow(db, self.live.model, catalogue, self.live)
        stale = model is not None and self._stale()
        if model is None or product_id not in model.item_index or stale:
            reason = "no_model" if model is None else "model_stale" if stale else "not_in_model"
            items, short, effects = self._same_category_popular(db, model, catalogue, product_id, n, filters, reason)
            return ServedList(
                SIMILAR,
                "non_personalized",
                reason,
                _version(model),
                items,
                short=short,
                effects=effects or None,
            )
        itself = model.item_index[product_id]
        allow, excluded = catalogue.allowed(filters)  # cached mask; the caller's few exclusions dropped after
        context = self.context(db, SIMILAR)
        active = self.rulebook.active(db, catalogue, context)
        depth = pool_size(n, active)
        ranked, scores = model.similar_items(itself, depth + len(excluded), allow=allow)
        keep = ~np.isin(ranked, excluded)
        ranked, scores = ranked[keep][:depth], scores[keep][:depth]
        score_of = dict(zip(ranked.tolist(), scores.tolist()))
        effects = Effects()
        chosen = ranked.tolist()
        if active:
            out = set(excluded.tolist()) | {itself}

            def fill(mask, k: int, taken) -> list[int]:
                found, found_scores = model.similar_items(
                    itself, k + len(taken) + len(out), allow=allow if mask is None else allow & mask
                )
                pairs = [
                    (i, s) for i, s in zip(found.tolist(), found_scores.tolist()) if i not in taken and i not in out
                ][:k]
                score_of.update(pairs)
                return [i for i, _ in pairs]

            arranged = arrange(
                active,
                items_space(catalogue),
                chosen,
                n,
                context,
                fill=fill,
                allowed=lambda i: bool(allow[i]) and i not in out,
            )
            chosen, effects = arranged.items, arranged.effects
        chosen = chosen[:n]
        items = tuple(
            ServedItem(
                **catalogue.describe(model.item_ids[i]), score=round(float(score_of[i]), 6) if i in score_of else None
            )
            for i in chosen
        )
        short = None
        if len(items) < n:
            short = short_of(
                n,
                len(items),
                ranking.removals(
                    catalogue,
                    filters,
                    allow,
                    excluded,
                    n,
                    proposed=len(items),
                    depth=n,
                    itself=itself,
                    rules=bool(active and active.filters),
                ),
            )
        return ServedList(SIMILAR, "model", None, model.version, items, short=short, effects=effects or None)

    def bought_together(self, db: sqlite_utils.Database, product_id: str, n: int, filters: ListFilters) -> ServedList:
        return self._served(self._bought_together(db, product_id, n, filters))

    def _bought_together(self, db: sqlite_utils.Database, product_id: str, n: int, filters: ListFilters) -> ServedList:
        model, catalogue = self._model_and_catalogue(db)
        self._require_product(catalogue, db, product_id)
        if model is None or "together_items" not in model.signals or product_id not in model.item_index:
            reason = "no_model" if model is None else "not_in_model"
            return ServedList(
                BOUGHT_TOGETHER, "non_personalized", reason, _version(model), short=short_of(n, 0, {reason: 1})
            )
        row = model.item_index[product_id]
        allow, excluded = catalogue.allowed(filters)
        refusals = catalogue.item_refusals(filters)
        excluded = set(excluded.tolist())
        removed = dict.fromkeys(("cooccurrence", *RULES, "exclude"), 0)
        context = self.context(db, BOUGHT_TOGETHER)
        active = self.rulebook.active(db, catalogue, context)
        want = pool_size(n, active)
        chosen: list[int] = []
        lifts: dict[int, float] = {}
        together = np.asarray(model.signals["together_items"][row]), np.asarray(model.signals["together_lift"][row])
        for j, lift in zip(*together):
            if j < 0:
                continue
            if not allow[j]:
                code = int(refusals[j])
                if code <= len(RULES):  # else deleted since training: no candidate
                    removed[RULES[code - 1]] += 1
                continue
            if int(j) in excluded:
                removed["exclude"] += 1
                continue
            chosen.append(int(j))
            lifts[int(j)] = float(lift)
            if len(chosen) == want:
                break
        effects = Effects()
        if active:  # only products bought with this one are candidates: a rule reorders or removes them
            arranged = arrange(active, items_space(catalogue), chosen, n, context, allowed=lambda i: i in lifts)
            chosen, effects = arranged.items, arranged.effects
            removed["rules"] = int(bool(active.filters))
        items = [ServedItem(**catalogue.describe(model.item_ids[j]), lift=round(lifts[j], 4)) for j in chosen[:n]]
        removed["cooccurrence"] = 1  # short only when every product bought with this one was read
        return ServedList(
            BOUGHT_TOGETHER,
            "cooccurrence",
            None,
            model.version,
            tuple(items),
            short=short_of(n, len(items), removed),
            effects=effects or None,
        )

    def popular(self, db: sqlite_utils.Database, n: int, filters: ListFilters, days: int | None) -> ServedList:
        """Popular products, or trending over the last ``days`` (surface and reason ``popular`` / ``trending``)."""
        model, catalogue = self._model_and_catalogue(db)
        kind = POPULAR if days is None else TRENDING
        items, short, effects = self._popular_list(
            db, model, catalogue, n, filters, kind, days=days, context=self.context(db, kind)
        )
        return self._served(
            ServedList(
                kind,
                "non_personalized",
                kind,
                _version(model),
                items,
                days=days,
                short=short,
                effects=effects or None,
            )
        )

    def _require_product(self, catalogue: Catalogue, db, product_id: str) -> None:
        """404 for an id the products table lacks; an id added since the last refresh refreshes first.

        The table is asked first (one indexed query), so made-up ids cost no
        refresh and never make a request wait for a background read.
        """
        if product_id not in catalogue.products:
            if not store.existing_of(db, "products", [product_id]):
                raise NotFoundError(f"unknown product {product_id!r}")
            catalogue.refresh(db, force=True)
            if product_id not in catalogue.products:
                raise NotFoundError(f"unknown product {product_id!r}")

    def _same_category_popular(self, db, model, catalogue, product_id, n, filters, reason):
        category = catalogue.products[product_id]["category"]
        narrowed = ListFilters(
            categories=(category,) if category else filters.categories,
            min_price=filters.min_price,
            max_price=filters.max_price,
            in_stock_only=filters.in_stock_only,
            exclude=filters.exclude,
        )
        items, short, effects = self._popular_list(
            db, model, catalogue, n, narrowed, reason, skip={product_id}, context=self.context(db, SIMILAR)
        )
        return items, short, effects


def _version(model: Recommender | None) -> str | None:
    return model.version if model is not None else None
