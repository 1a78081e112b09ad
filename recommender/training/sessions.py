"""Sessions: lists for a visit, and the protocol that chooses how to score them (see docs/sessions.md).

A *session* is what one customer did on one day (UTC), in time order: for a
shop that only has orders, the day's baskets; for a shop with views, the day's
view, cart and purchase sequence. Each product counts once, at its first event.

The protocol (:func:`evaluate`) cuts the shop's own sessions in time: sessions
that start before the 80th percentile of session start times are the training
sessions, the rest the test sessions; the validation split is cut the same way
from the training sessions only. Given the first ``g`` products of a held-out
session (``g`` in :data:`GIVEN`), a scorer ranks ten products (those ``g``
left out) and is judged on the rest of the session: HitRate@10, MRR@10 and
NDCG@10, averaged over the cases.

The scorers (:class:`SessionScorer`), each the exact code a visit list is
served with:

- ``popularity`` — training sessions that hold the product;
- ``cooccurrence`` — "bought together": Σ over the visit's products of how
  many training sessions hold both;
- ``vsknn`` — V-SKNN (Ludewig & Jannach 2018): the visit's products weighted
  by linear position decay (the i-th of L weighs i/L), the ``m`` most recent
  training sessions sharing a product sampled, their similarity the sum of the
  shared products' weights, the ``k`` most similar the neighbours, a product's
  score the sum of the similarities of the neighbours holding it;
- ``model`` — the shop's chosen model (its recipe, fitted on the past of the
  cut) folded in from the visit's products, as a personal list is;
- ``mix`` — ``w`` × the model's top :data:`MODEL_DEPTH` (min-max normalised) +
  (1 − ``w``) × V-SKNN (divided by its best score).

``k`` and ``m`` of V-SKNN and ``w`` of the mix are tuned on validation, and
the shipped scorer is the one with the best validation NDCG@10: the test
period is never read to choose. Lists shorter than asked are filled with
popular products (every scorer alike).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.config import Settings
from recommender.data.interactions import Interactions, confidence
from recommender.models.base import Recommender, as_index_array, top_k

GIVEN = (1, 2, 3)  # products of a held-out session shown to the scorer
K = 10
CUT_QUANTILE = 0.8
MAX_SESSIONS = 5000  # held-out sessions per period (a seeded sample beyond)
SEED = 7
# V-SKNN's grid (neighbours k, most recent sessions sampled m) and the mix's model weights
VSKNN_K = (50, 100, 200, 500)
VSKNN_M = (500, 1000, 2500, 5000)
MIX_WEIGHTS = (0.2, 0.35, 0.5, 0.65, 0.8)
MODEL_DEPTH = 100  # the model's candidates in a mix
SCORERS = ("popularity", "cooccurrence", "vsknn", "model", "mix")
ANCHORS = ("popularity", "cooccurrence", "vsknn")
# What a shop serves before any session evaluation has run: the model, with popular products for a visit it
# cannot read (the personal list's behaviour).
DEFAULT_CHOICE: dict[str, Any] = {"scorer": "model", "params": {}, "evaluated": False}
DAY = 86400
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --- sessions ----------------------------------------------------------------------------------


@dataclass
class Sessions:
    """Sessions in order of their start time (oldest first): products in order of first event.

    ``indptr``/``items``/``weights`` are CSR-like: session ``s`` holds
    ``items[indptr[s]:indptr[s + 1]]`` (each product once), ``weights`` the
    event-type weight × quantity of each product's first event.
    """

    indptr: np.ndarray
    items: np.ndarray
    weights: np.ndarray
    start: np.ndarray  # unix seconds of each session's first event
    user: np.ndarray  # the customer (row of the interactions) of each session
    n_items: int

    def __len__(self) -> int:
        return len(self.start)

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def session(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.indptr[s], self.indptr[s + 1]
        return self.items[lo:hi], self.weights[lo:hi]

    def subset(self, mask: np.ndarray) -> Sessions:
        """The sessions where ``mask`` is True, in the same order."""
        chosen = np.flatnonzero(mask)
        lengths = self.lengths()[chosen]
        indptr = np.zeros(len(chosen) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        take = (
            np.concatenate([np.arange(self.indptr[s], self.indptr[s + 1]) for s in chosen])
            if len(chosen)
            else np.zeros(0, dtype=np.int64)
        )
        return Sessions(
            indptr, self.items[take], self.weights[take], self.start[chosen], self.user[chosen], self.n_items
        )


def cut_sessions(data: Interactions, mask: np.ndarray | None = None) -> Sessions:
    """The sessions of ``data`` (or its events where ``mask``): one per customer and UTC day.

    Events of one customer and day are ordered by time, then by the order they
    were stored (an order's lines share a time); a product repeated in a session
    counts once, at its first event.
    """
    user, item, weight, when = data.user, data.item, data.weight, data.time
    row = np.arange(len(user))
    if mask is not None:
        user, item, weight, when, row = user[mask], item[mask], weight[mask], when[mask], row[mask]
    keep = weight > 0
    user, item, weight, when, row = user[keep], item[keep], weight[keep], when[keep], row[keep]
    n_items = len(data.item_ids)
    if len(user) == 0:
        return Sessions(
            np.zeros(1, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            n_items,
        )
    key = user.astype(np.int64) * 1_000_000 + (when // DAY).astype(np.int64)
    order = np.lexsort((row, when, key))
    key, item, weight, when, user = key[order], item[order], weight[order], when[order], user[order]
    # first event of each (session, product)
    pair = np.unique(key * np.int64(n_items + 1) + item.astype(np.int64), return_index=True)[1]
    first = np.sort(pair)
    key, item, weight, when, user = key[first], item[first], weight[first], when[first], user[first]
    bounds = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    starts = when[bounds]
    lengths = np.diff(np.r_[bounds, len(key)])
    # sessions by start time (then customer and day), products keep their order inside
    by_start = np.lexsort((key[bounds], starts))
    take = np.concatenate([np.arange(bounds[s], bounds[s] + lengths[s]) for s in by_start])
    indptr = np.zeros(len(bounds) + 1, dtype=np.int64)
    np.cumsum(lengths[by_start], out=indptr[1:])
    return Sessions(
        indptr,
        item[take].astype(np.int64),
        weight[take].astype(np.float32),
        starts[by_start].astype(np.int64),
        user[bounds][by_start].astype(np.int64),
        n_items,
    )


def session_cut(sessions: Sessions, quantile: float = CUT_QUANTILE) -> int:
    """Start time at the ``quantile`` of session start times: sessions starting there or later are held out."""
    if len(sessions) == 0:
        raise ValueError("no sessions to split")
    return int(np.quantile(sessions.start, quantile, method="higher"))


# --- the index scorers read ----------------------------------------------------------------------


class SessionIndex:
    """Past sessions as a binary sessions × products matrix (rows oldest first) and its transpose.

    Row order is recency: V-SKNN samples the highest row numbers that share a product.
    """

    def __init__(self, sessions: Sessions, max_sessions: int = 0) -> None:
        if max_sessions and len(sessions) > max_sessions:
            sessions = sessions.subset(np.arange(len(sessions)) >= len(sessions) - max_sessions)
        self.sessions = sessions
        data = np.ones(len(sessions.items), dtype=np.float32)
        self.rows = sp.csr_matrix((data, sessions.items, sessions.indptr), shape=(len(sessions), sessions.n_items))
        self.cols = self.rows.tocsc()
        self.cols.sort_indices()
        self.popularity = np.diff(self.cols.indptr).astype(np.float32)
        self.popular_order = np.argsort(-self.popularity, kind="stable")
        self.n_items = sessions.n_items

    def __len__(self) -> int:
        return self.rows.shape[0]

    def overlap(self, items: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(sessions, similarity)``: every past session holding one of ``items``, oldest first,
        and the sum of the ``weights`` of the items it holds."""
        items = as_index_array(items)
        starts, ends = self.cols.indptr[items], self.cols.indptr[items + 1]
        if len(items) == 0 or int((ends - starts).sum()) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        sessions = np.concatenate([self.cols.indices[a:b] for a, b in zip(starts, ends)])
        each = np.repeat(np.asarray(weights, dtype=np.float64), ends - starts)
        found, inverse = np.unique(sessions, return_inverse=True)
        return found.astype(np.int64), np.bincount(inverse, weights=each, minlength=len(found))

    def spread(self, sessions: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(items, score)``: Σ of ``sims`` of the ``sessions`` holding each item."""
        starts, ends = self.rows.indptr[sessions], self.rows.indptr[sessions + 1]
        if len(sessions) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        items = np.concatenate([self.rows.indices[a:b] for a, b in zip(starts, ends)])
        each = np.repeat(sims, ends - starts)
        found, inverse = np.unique(items, return_inverse=True)
        return found.astype(np.int64), np.bincount(inverse, weights=each, minlength=len(found))

    def vsknn(self, items: np.ndarray, k: int, m: int) -> tuple[np.ndarray, np.ndarray]:
        """V-SKNN's ``(items, scores)`` for a session of ``items`` (oldest first)."""
        n = len(items)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        decay = np.arange(1, n + 1, dtype=np.float64) / n  # linear: the latest weighs 1
        sessions, sims = self.overlap(items, decay)
        if m and len(sessions) > m:  # the m most recent sessions that share a product
            sessions, sims = sessions[-m:], sims[-m:]
        if k and len(sessions) > k:  # the k most similar; ties go to the more recent
            best = np.lexsort((-sessions, -sims))[:k]
            sessions, sims = sessions[best], sims[best]
        return self.spread(sessions, sims)

    def cooccurrence(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(items, scores)``: Σ over ``items`` of the past sessions holding both (co-counts)."""
        sessions, shared = self.overlap(items, np.ones(len(items)))
        return self.spread(sessions, shared)


# --- scorers --------------------------------------------------------------------------------------


@dataclass
class VisitState:
    """A visit: its products (model indices, in order of first event) and each one's event weight."""

    items: np.ndarray
    weights: np.ndarray
    model_state: Any = None
    # what a ranking step reads of a customer state (see recommender.serving.ranking.CustomerState)
    events: Sequence = ()
    index: Mapping = field(default_factory=dict)
    conf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    @property
    def vector(self) -> VisitState:
        return self


class SessionScorer:
    """One way to score a visit, with the interface a ranking step calls on a model.

    ``recommend(state, n, exclude=, allow=)``, ``score(state, items)`` and
    ``explain`` mirror :class:`recommender.models.base.Recommender`, so the one
    ranking path (filters, rules, diversity) serves visit lists too.
    """

    def __init__(
        self,
        kind: str,
        index: SessionIndex,
        model: Recommender | None = None,
        params: Mapping[str, Any] | None = None,
        settings: Settings | None = None,
    ) -> None:
        if kind not in SCORERS:
            raise ValueError(f"unknown session scorer {kind!r}")
        self.kind = kind
        self.index = index
        self.model = model if kind in ("model", "mix") else None
        self.params = dict(params or {})
        self.settings = settings
        self.k = int(self.params.get("k", 100))
        self.m = int(self.params.get("m", 1000))
        self.w = float(self.params.get("w", 0.5))
        self.item_ids = model.item_ids if model is not None else []
        self.item_index = model.item_index if model is not None else {}
        self.manifest = model.manifest if model is not None else {}
        self.n_items = index.n_items

    @property
    def label(self) -> str:
        if self.kind == "vsknn":
            return f"vsknn k={self.k} m={self.m}"
        if self.kind == "mix":
            return f"mix model×{self.w:g} + vsknn k={self.k} m={self.m}"
        return self.kind

    def state(self, items: np.ndarray, weights: np.ndarray) -> VisitState:
        """The visit's state; the model's fold-in (by its recipe's confidence rules) when a model scores."""
        items = as_index_array(items)
        weights = np.asarray(weights, dtype=np.float32)
        state = VisitState(items, weights)
        if self.model is not None and len(items):
            conf = weights if self.settings is None else confidence(weights, self.settings.als)
            state.model_state = self.model.fold_in(items, conf)
            state.conf = conf
        return state

    # -- the scores of one visit --

    def _model_part(
        self, state: VisitState, exclude: np.ndarray, allow: np.ndarray | None, depth: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.model is None or state.model_state is None:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        found, scores = self.model.recommend(state.model_state, depth, exclude=exclude, allow=allow)
        return as_index_array(found), np.asarray(scores, dtype=np.float64)

    def candidates(
        self,
        state: VisitState,
        n: int,
        exclude: np.ndarray,
        allow: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scored candidates (not yet ranked, not filled): what this scorer proposes for the visit."""
        if self.kind == "popularity":
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        if self.kind == "model":
            return self._model_part(state, exclude, allow, n)
        if self.kind == "cooccurrence":
            items, scores = self.index.cooccurrence(state.items)
        else:
            items, scores = self.index.vsknn(state.items, self.k, self.m)
        items, scores = _allowed(items, scores, exclude, allow)
        if self.kind == "mix":
            return self.mix(self._model_part(state, exclude, allow, max(MODEL_DEPTH, n)), (items, scores), self.w)
        return items, scores

    @staticmethod
    def mix(
        model: tuple[np.ndarray, np.ndarray], session: tuple[np.ndarray, np.ndarray], w: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``w`` × the model's candidates (min-max over them) + (1 − ``w``) × V-SKNN / its best."""
        m_items, m_scores = model
        v_items, v_scores = session
        parts = []
        if len(m_items):
            lo, hi = float(m_scores.min()), float(m_scores.max())
            parts.append((m_items, w * ((m_scores - lo) / (hi - lo) if hi > lo else np.ones(len(m_scores)))))
        if len(v_items):
            top = float(v_scores.max())
            parts.append((v_items, (1.0 - w) * (v_scores / top if top > 0 else v_scores)))
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        items = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        found, inverse = np.unique(items, return_inverse=True)
        return found, np.bincount(inverse, weights=scores, minlength=len(found))

    def rank(
        self, items: np.ndarray, scores: np.ndarray, n: int, exclude: np.ndarray, allow: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``n`` of scored candidates, filled with popular products (score 0) when they run out."""
        best = top_k(scores, n) if len(scores) else np.zeros(0, np.int64)
        chosen, values = items[best], scores[best]
        if len(chosen) < n:
            fill = self._popular(n - len(chosen), np.concatenate([exclude, chosen]), allow)
            chosen = np.concatenate([chosen, fill])
            values = np.concatenate([values, np.zeros(len(fill))])
        return chosen.astype(np.int64), values.astype(np.float32)

    def _popular(self, n: int, exclude: np.ndarray, allow: np.ndarray | None) -> np.ndarray:
        out: list[int] = []
        banned = set(exclude.tolist())
        for i in self.index.popular_order:
            if self.index.popularity[i] <= 0:
                break
            i = int(i)
            if i in banned or (allow is not None and not allow[i]):
                continue
            out.append(i)
            if len(out) == n:
                break
        return np.array(out, dtype=np.int64)

    # -- the model interface --

    def recommend(
        self, state: VisitState, n: int = 10, *, exclude: Iterable[int] = (), allow: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        exclude = as_index_array(exclude)
        items, scores = self.candidates(state, n, exclude, allow)
        return self.rank(items, scores, n, exclude, allow)

    def score(self, state: VisitState, items: np.ndarray | None = None) -> np.ndarray:
        wanted = np.arange(self.n_items) if items is None else as_index_array(items)
        found, scores = self.candidates(state, max(len(wanted), 10), np.zeros(0, np.int64), None)
        lookup = dict(zip(found.tolist(), scores.tolist()))
        return np.array([lookup.get(int(i), 0.0) for i in wanted], dtype=np.float32)

    def explain(
        self, items: np.ndarray, confidences: np.ndarray, item_index: int, n: int = 3
    ) -> list[tuple[int, float]]:
        """The visit's products that led to ``item_index`` (the model's explanation when a model scores)."""
        if self.model is not None and len(items):
            return self.model.explain(items, confidences, item_index, n)
        return []


def _allowed(
    items: np.ndarray, scores: np.ndarray, exclude: np.ndarray, allow: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(len(items), dtype=bool)
    if len(exclude):
        keep &= ~np.isin(items, exclude)
    if allow is not None and len(items):
        keep &= allow[items]
    return items[keep], scores[keep]


# --- metrics --------------------------------------------------------------------------------------


def case_metrics(ranked: Sequence[int], relevant: Iterable[int], k: int = K) -> tuple[float, float, float]:
    """``(hit, reciprocal rank, NDCG)`` at ``k`` of one ranked list against the relevant products."""
    relevant = {int(r) for r in relevant}
    hits = [int(i) in relevant for i in list(ranked)[:k]]
    if not relevant or not any(hits):
        return 0.0, 0.0, 0.0
    first = hits.index(True)
    dcg = sum(1.0 / np.log2(pos + 2) for pos, h in enumerate(hits) if h)
    ideal = sum(1.0 / np.log2(pos + 2) for pos in range(min(len(relevant), k)))
    return 1.0, 1.0 / (first + 1), float(dcg / ideal)


@dataclass
class Cases:
    """Held-out cases: the first ``given`` products of a session, and the rest to predict."""

    prefixes: list[tuple[np.ndarray, np.ndarray]]
    rests: list[np.ndarray]
    sessions: int

    def __len__(self) -> int:
        return len(self.prefixes)


def make_cases(
    held_out: Sessions, given: Sequence[int] = GIVEN, max_sessions: int = MAX_SESSIONS, seed: int = SEED
) -> Cases:
    """For each held-out session with more than ``g`` products and each ``g`` of ``given``: a case."""
    usable = np.flatnonzero(held_out.lengths() >= 2)
    if max_sessions and len(usable) > max_sessions:
        usable = np.sort(np.random.default_rng(seed).choice(usable, size=max_sessions, replace=False))
    prefixes, rests = [], []
    for s in usable:
        items, weights = held_out.session(int(s))
        for g in given:
            if len(items) > g:
                prefixes.append((items[:g], weights[:g]))
                rests.append(items[g:])
    return Cases(prefixes, rests, len(usable))


@dataclass
class Result:
    hit: float
    mrr: float
    ndcg: float
    ndcg_se: float
    cases: int
    per_case: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "hit_rate": round(self.hit, 6),
            "mrr": round(self.mrr, 6),
            "ndcg": round(self.ndcg, 6),
            "ndcg_se": round(self.ndcg_se, 6),
            "cases": self.cases,
        }


def _result(rows: list[tuple[float, float, float]]) -> Result:
    if not rows:
        return Result(0.0, 0.0, 0.0, 0.0, 0)
    table = np.array(rows, dtype=np.float64)
    se = float(table[:, 2].std(ddof=1) / np.sqrt(len(table))) if len(table) > 1 else 0.0
    return Result(*(float(x) for x in table.mean(axis=0)), se, len(table), table[:, 2])


def score_cases(
    cases: Cases,
    scorers: Mapping[str, SessionScorer],
    k: int = K,
    mixes: Mapping[str, tuple[str, str, float]] | None = None,
) -> dict[str, Result]:
    """Every scorer on every case; ``mixes`` (name → (model scorer, V-SKNN scorer, w)) reuse their parts' work.

    Each scorer ranks with the visit's own products excluded, as a visit list does.
    """
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in [*scorers, *(mixes or {})]}
    for (items, weights), rest in zip(cases.prefixes, cases.rests):
        exclude = items
        parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        states: dict[int, VisitState] = {}
        for name, scorer in scorers.items():
            key = id(scorer.model)
            if key not in states:
                states[key] = scorer.state(items, weights)
            state = states[key]
            depth = max(MODEL_DEPTH, k) if scorer.kind == "model" else k
            found, scores = scorer.candidates(state, depth, exclude, None)
            parts[name] = (found, scores)
            ranked, _ = scorer.rank(
                found[:k] if scorer.kind == "model" else found,
                scores[:k] if scorer.kind == "model" else scores,
                k,
                exclude,
                None,
            )
            rows[name].append(case_metrics(ranked, rest, k))
        for name, (model_name, session_name, w) in (mixes or {}).items():
            found, scores = SessionScorer.mix(parts[model_name], parts[session_name], w)
            ranked, _ = scorers[session_name].rank(found, scores, k, exclude, None)
            rows[name].append(case_metrics(ranked, rest, k))
    return {name: _result(r) for name, r in rows.items()}


# --- the protocol ---------------------------------------------------------------------------------


@dataclass
class Period:
    """One split: the past's sessions and model, and the held-out cases."""

    name: str
    cut: int
    index: SessionIndex
    model: Recommender | None
    cases: Cases
    train_sessions: int
    held_out_sessions: int


def _fit_model(
    data: Interactions, cut: int, recipe: Any, settings: Settings, fitter: Any, engine: str, log: Log
) -> Recommender | None:
    from recommender.training import recipes

    mask = data.time < cut
    matrix = data.matrix(recipe.settings.als, mask, reference_time=cut)
    if matrix.nnz == 0:
        return None
    started = time.perf_counter()
    model = recipes.fit(recipe, matrix, list(data.user_ids), list(data.item_ids), engine=engine, fitter=fitter)
    model.warm_up()
    log(f"  fitted {recipe.label or recipe.family} on {matrix.nnz:,} pairs in {time.perf_counter() - started:.1f} s")
    return model


def period(
    name: str,
    data: Interactions,
    sessions: Sessions,
    upto: int | None,
    recipe: Any,
    settings: Settings,
    *,
    fitter: Any,
    engine: str,
    given: Sequence[int],
    max_sessions: int,
    log: Log,
) -> Period:
    """Sessions before ``upto`` (all when None) cut again at their 80th percentile of start time."""
    scope = sessions if upto is None else sessions.subset(sessions.start < upto)
    cut = session_cut(scope)
    past = scope.subset(scope.start < cut)
    future = scope.subset(scope.start >= cut)
    # the model sees only the events before the cut (and before the outer cut)
    model = _fit_model(data, cut, recipe, settings, fitter, engine, log) if recipe is not None else None
    cases = make_cases(future, given, max_sessions)
    return Period(name, cut, SessionIndex(past), model, cases, len(past), len(future))


def _scorer(kind: str, p: Period, settings: Settings, **params: Any) -> SessionScorer:
    return SessionScorer(kind, p.index, p.model, params, settings)


def evaluate(
    data: Interactions,
    settings: Settings,
    recipe: Any = None,
    *,
    fitter: Any = None,
    engine: str = "implicit",
    given: Sequence[int] = GIVEN,
    max_sessions: int = MAX_SESSIONS,
    log: Log = _quiet,
) -> dict[str, Any]:
    """The session protocol on ``data``: every scorer on validation and test, and the choice (by validation).

    ``recipe`` is the shop's chosen model recipe (None: no model scorer); it is
    fitted on each period's past only. Returns the JSON of ``recommender
    sessions evaluate``.
    """
    started = time.perf_counter()
    sessions = cut_sessions(data)
    if len(sessions) < 10:
        raise ValueError("too few sessions to evaluate (fewer than 10 customer-days)")
    if recipe is not None:
        data = data.reweighted(recipe.settings.event_weights)
        settings = recipe.settings
    test_cut = session_cut(sessions)
    log(f"{len(sessions):,} sessions (customer-days); test from {_day(test_cut)}")
    log("validation (the training period's own cut):")
    val = period(
        "validation",
        data,
        sessions,
        test_cut,
        recipe,
        settings,
        fitter=fitter,
        engine=engine,
        given=given,
        max_sessions=max_sessions,
        log=log,
    )
    log(f"  {val.train_sessions:,} past sessions, {val.cases.sessions:,} held out ({len(val.cases):,} cases)")
    # 1. V-SKNN's k and m on validation
    grid = {f"vsknn k={k} m={m}": _scorer("vsknn", val, settings, k=k, m=m) for k in VSKNN_K for m in VSKNN_M}
    grid_scores = score_cases(val.cases, grid)
    best_grid = max(grid, key=lambda name: (grid_scores[name].ndcg, -grid[name].m, -grid[name].k))
    k_best, m_best = grid[best_grid].k, grid[best_grid].m
    log(f"  V-SKNN's best on validation: k={k_best} m={m_best} (NDCG@10 {grid_scores[best_grid].ndcg:.4f})")
    # 2. every scorer on validation, the mixes' weight too
    val_scores, names = _all(val, settings, k_best, m_best)
    chosen = max(names, key=lambda name: (val_scores[name].ndcg, name in ANCHORS))
    log(f"  chosen on validation: {names[chosen]['label']}")
    # 3. the same scorers on the test period (for the report: never used to choose)
    log("test:")
    test = period(
        "test",
        data,
        sessions,
        None,
        recipe,
        settings,
        fitter=fitter,
        engine=engine,
        given=given,
        max_sessions=max_sessions,
        log=log,
    )
    log(f"  {test.train_sessions:,} past sessions, {test.cases.sessions:,} held out ({len(test.cases):,} cases)")
    test_scores, _ = _all(test, settings, k_best, m_best)
    rows = []
    for name, what in names.items():
        rows.append(
            {
                "scorer": name,
                "kind": what["kind"],
                "label": what["label"],
                "params": what["params"],
                "anchor": what["kind"] in ANCHORS,
                "validation": val_scores[name].as_dict(),
                "test": test_scores[name].as_dict(),
                "chosen": name == chosen,
            }
        )
    shipped = names[chosen]
    anchors_best = max((r["test"]["ndcg"] for r in rows if r["anchor"]), default=0.0)
    best_anchor = max((r["scorer"] for r in rows if r["anchor"]), key=lambda n: test_scores[n].ndcg)
    chosen_test = test_scores[chosen]
    diff = chosen_test.per_case - test_scores[best_anchor].per_case
    diff_se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    return {
        "k": K,
        "given": list(given),
        "sessions": len(sessions),
        "test_cut": _day(test_cut),
        "validation_cut": _day(val.cut),
        "validation": {
            "past_sessions": val.train_sessions,
            "held_out_sessions": val.cases.sessions,
            "cases": len(val.cases),
        },
        "test": {
            "past_sessions": test.train_sessions,
            "held_out_sessions": test.cases.sessions,
            "cases": len(test.cases),
        },
        "recipe": None if recipe is None else (recipe.label or recipe.family),
        "vsknn_grid": [
            {"k": grid[n].k, "m": grid[n].m, "validation_ndcg": round(grid_scores[n].ndcg, 6)} for n in grid
        ],
        "scorers": rows,
        "choice": {
            "scorer": shipped["kind"],
            "params": shipped["params"],
            "label": shipped["label"],
            "evaluated": True,
            "validation_ndcg": round(val_scores[chosen].ndcg, 6),
            "test_ndcg": round(chosen_test.ndcg, 6),
            "test_ndcg_se": round(chosen_test.ndcg_se, 6),
        },
        "beats_every_anchor_on_test": bool(chosen_test.ndcg > anchors_best),
        # the shipped scorer against the best anchor on test, case by case (paired standard error)
        "against_best_anchor": {
            "anchor": best_anchor,
            "difference": round(float(diff.mean()) if len(diff) else 0.0, 6),
            "paired_se": round(diff_se, 6),
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _all(p: Period, settings: Settings, k: int, m: int) -> tuple[dict[str, Result], dict[str, dict[str, Any]]]:
    """Every scorer (V-SKNN at ``k``, ``m``; each mix weight) on ``p``'s cases, and what each one is."""
    scorers = {
        "popularity": _scorer("popularity", p, settings),
        "cooccurrence": _scorer("cooccurrence", p, settings),
        "vsknn": _scorer("vsknn", p, settings, k=k, m=m),
    }
    names: dict[str, dict[str, Any]] = {
        "popularity": {"kind": "popularity", "params": {}, "label": "popularity"},
        "cooccurrence": {"kind": "cooccurrence", "params": {}, "label": "co-occurrence (bought together)"},
        "vsknn": {"kind": "vsknn", "params": {"k": k, "m": m}, "label": f"V-SKNN k={k} m={m}"},
    }
    mixes: dict[str, tuple[str, str, float]] = {}
    if p.model is not None:
        scorers["model"] = _scorer("model", p, settings)
        names["model"] = {"kind": "model", "params": {}, "label": "the chosen model (fold-in)"}
        for w in MIX_WEIGHTS:
            name = f"mix w={w:g}"
            mixes[name] = ("model", "vsknn", w)
            names[name] = {
                "kind": "mix",
                "params": {"k": k, "m": m, "w": w},
                "label": f"model×{w:g} + V-SKNN×{1 - w:g}",
            }
    return score_cases(p.cases, scorers, mixes=mixes), names


def _day(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d")


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)


# --- the command and the recorded choice -----------------------------------------------------------

CHOICE_KEY = "session_scorer"


def shop_recipe(db: Any, settings: Settings) -> Any:
    """The shop's model recipe: the last search's, else the serving model's, else the configured ALS."""
    from recommender import store
    from recommender.errors import ModelError
    from recommender.models import registry
    from recommender.training import recipes, schedule

    last = store.last_search(db)
    if last and last.get("recipe"):
        return schedule.recipe_of(last, settings)
    reg = registry.Registry(settings.model_dir)
    current = reg.current_version()
    if current:
        try:
            params = reg.manifest(current).get("params")
        except ModelError:
            params = None
        if params:
            recipe = recipes.Recipe.from_params(params, settings)
            recipe.label = f"{recipe.family} (the serving model {current}'s recipe)"
            return recipe
    return recipes.Recipe("als", settings, label="als (configured)")


def run(
    db: Any,
    settings: Settings,
    *,
    given: Sequence[int] = GIVEN,
    max_sessions: int = MAX_SESSIONS,
    record: bool = True,
    log: Log = _quiet,
) -> dict[str, Any]:
    """``recommender sessions evaluate``: the protocol on the shop's consent-filtered events; records the choice."""
    from recommender.errors import ValidationError
    from recommender.models.engines import get_engine
    from recommender.training import run as training_run

    data = training_run.load_data(db, settings)
    recipe = shop_recipe(db, settings)
    log(f"model scorer: {recipe.label or recipe.family}")
    try:
        payload = evaluate(
            data, settings, recipe, fitter=get_engine("implicit"), given=given, max_sessions=max_sessions, log=log
        )
    except ValueError as exc:
        raise ValidationError(f"cannot evaluate sessions: {exc}") from None
    if record:
        record_choice(db, payload)
    payload["recorded"] = record
    return payload


def record_choice(db: Any, payload: Mapping[str, Any]) -> None:
    """Store the shipped scorer (the store's ``meta``): what every worker's visit lists are scored by."""
    import json

    from recommender.store.privacy import set_meta

    choice = dict(payload["choice"])
    choice["chosen_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    choice["recipe"] = payload.get("recipe")
    set_meta(db, CHOICE_KEY, json.dumps(choice, sort_keys=True))


def current_choice(db: Any) -> dict[str, Any]:
    """The recorded scorer, or :data:`DEFAULT_CHOICE` when no session evaluation has run (or it is unreadable)."""
    import json

    from recommender.store.privacy import meta_value

    text = meta_value(db, CHOICE_KEY)
    try:
        choice = json.loads(text) if text else None
    except ValueError:
        choice = None
    if not isinstance(choice, dict) or choice.get("scorer") not in SCORERS:
        return dict(DEFAULT_CHOICE)
    return choice
