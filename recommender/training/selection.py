"""Per-shop model selection on a validation split carved from the training period only.

No family and no setting wins on every shop: on one shop time decay is worth
a tenth of the NDCG, on another it costs as much; on some EASE^R beats ALS, on
others it loses. So every retrain finds out, for this shop, on data the test
period never touches:

1. the test period of the standard protocol (after the global cut,
   :func:`recommender.training.evaluation.cut_time`) is removed; the remaining training
   period is split again at its own cut (the *validation* split, as ``tune``
   does);
2. candidates are fitted on the past of the validation split and scored by
   NDCG@k on its future, in stages (a greedy coordinate search keeps the count
   small): first every family once with its configured settings (so a time
   budget that runs out early has still compared families), then ALS with each
   decay half-life, then each event-weighting profile,
   then a few ALS settings as multiples of the configured ones; then each item
   family (EASE^R with λ relative to the data's own scale, item graphs on a
   small K/α/β grid) on the best data settings, then at the other half-lives;
   last, blends of the best ALS and the best item model, and ALS + EASE^R +
   the best item graph;
3. the finalists (each family's best, the best two- and three-part blends)
   are scored again at more cuts of the training period and the choice is
   made on their mean, with a tie rule that prefers the blend when validation
   cannot separate them (:mod:`recommender.training.finalists`, which says why). The
   training job then runs the usual evaluation on the test period, the gate and
   the publish with it.

Nothing here reads an event at or after the test cut, which
``tests/test_selection.py`` checks by corrupting that period. Grids are
relative (multiples, shop-independent half-lives), never tuned to a dataset.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.config import Settings
from recommender.data.interactions import Interactions
from recommender.errors import RecommenderError
from recommender.models.base import Recommender
from recommender.training import evaluation, finalists, memory, recipes
from recommender.training.finalists import FoldScores
from recommender.training.progress import Progress
from recommender.training.recipes import BLEND, Recipe

Log = Callable[[str], None]
ITEM_FAMILIES = ("ease", "rp3beta", "itemknn")


@dataclass
class Candidate:
    recipe: Recipe
    ndcg: float  # at the search's cut (selection's first validation split)
    seconds: float
    # Per validation customer at the search's cut (for the tie rule), then at every cut once a finalist.
    folds: FoldScores = field(default_factory=FoldScores, repr=False)

    @property
    def parts(self) -> int:
        return len(self.recipe.parts) if self.recipe.family == BLEND else 1

    @property
    def validation(self) -> float:
        """What the choice compares: the mean NDCG over the cuts this candidate was scored at."""
        return self.folds.mean() if self.folds.scores else self.ndcg

    def to_dict(self, engine: str) -> dict[str, Any]:
        out = {
            "label": self.recipe.label,
            "family": self.recipe.family,
            "validation_ndcg": round(self.ndcg, 6),
            "seconds": round(self.seconds, 3),
            "recipe": self.recipe.id(engine),
        }
        if len(self.folds.scores) > 1:
            out["validation_by_cut"] = self.folds.by_cut()
        return out


@dataclass
class Choice:
    """What selection tried and chose; ``record`` goes into the manifest."""

    recipe: Recipe
    candidates: list[Candidate]
    best_by_family: dict[str, Candidate]
    validation: dict[str, Any]
    seconds: float
    stopped_early: bool = False
    skipped: dict[str, str] = field(default_factory=dict)
    rule: str = "best validation NDCG"
    chosen: Candidate | None = None

    def record(self, engine: str) -> dict[str, Any]:
        chosen = self.chosen or max(self.candidates, key=lambda c: c.ndcg)
        return {
            "validation": self.validation,
            "chosen": {
                "family": self.recipe.family,
                "label": self.recipe.label,
                "validation_ndcg": round(chosen.validation, 6),
                "recipe": self.recipe.id(engine),
                "rule": self.rule,
            },
            "families": {
                name: {
                    "label": c.recipe.label,
                    "validation_ndcg": round(c.validation, 6),
                    "validation_by_cut": c.folds.by_cut(),
                    "recipe": c.recipe.id(engine),
                }
                for name, c in self.best_by_family.items()
            },
            "candidates": [c.to_dict(engine) for c in self.candidates],
            "skipped": dict(self.skipped),
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }


def available_families(settings: Settings) -> list[str]:
    """The configured families this version can fit (ALS always)."""
    from recommender.models import families

    names = ["als"] + [f for f in settings.selection.families if f != "als"]
    return [f for f in dict.fromkeys(names) if f in families.FAMILY_NAMES]


_data_key = recipes.confidence_key


def _weights_label(weights: dict[str, float]) -> str:
    return ",".join(f"{k}:{v:g}" for k, v in weights.items())


class _Search:
    """One selection run: caches validation splits per confidence rules, keeps the best fitted models."""

    def __init__(
        self,
        data: Interactions,
        settings: Settings,
        train_period: np.ndarray,
        engine: str,
        fitter: Any,
        progress: Progress,
    ) -> None:
        self.data, self.base, self.train_period = data, settings, train_period
        self.engine, self.fitter, self.progress = engine, fitter, progress
        self.log, self.detail = progress.log, progress.detail
        self.memory_limit = memory.limit(settings)
        self.k = settings.evaluation.k
        self.splits: dict[tuple, evaluation.Split] = {}
        self.candidates: list[Candidate] = []
        self.seen: set[str] = set()
        # Best fitted model per (family, confidence rules): blends reuse them.
        self.fitted: dict[tuple[str, tuple], tuple[Candidate, Recommender]] = {}
        self.started = time.perf_counter()
        self.stopped = False
        self.skipped: dict[str, str] = {}
        # The confidence rules of the best ALS, once the ALS stage is done.
        self.als_key: tuple | None = None
        # The finalists' extra validation cuts (splits and fits cached per cut).
        self.cuts = finalists.Cuts(data, train_period, engine, fitter, self.k)
        self.cuts.progress, self.cuts.check_memory = progress, self.check_memory

    def check_memory(self, recipe: Recipe, matrix: Any) -> None:
        """Raise :class:`MemoryBudget` when fitting ``recipe`` on ``matrix`` is predicted above the limit.

        The prediction is the fit's peak (:func:`recommender.training.memory.predict`) plus the
        arrays of the fitted models the search holds (for blends and the extra cuts).
        """
        if self.memory_limit <= 0:
            return
        need = memory.predict(recipe, matrix)
        held = memory.held_bytes([m for _, m in self.fitted.values()] + list(self.cuts.models.values()))
        if need + held > self.memory_limit:
            raise MemoryBudget(
                f"predicted peak memory {memory.describe(need + held)} (fit {memory.describe(need)} "
                f"+ models held {memory.describe(held)}) is above selection.max_memory_bytes "
                f"{memory.describe(self.memory_limit)}"
            )

    def _prune(self, family: str) -> None:
        """Keep an item family's models only where a blend may use them (a dense EASE^R is large)."""
        if family == "als":
            return
        best = self.best(family)
        keep = {self.als_key, None if best is None else _data_key(best.recipe.settings)}
        for key in [k for k in self.fitted if k[0] == family and k[1] not in keep]:
            del self.fitted[key]

    def split(self, s: Settings) -> evaluation.Split:
        key = _data_key(s)
        if key not in self.splits:
            data = self.data.reweighted(s.event_weights)
            self.splits[key] = evaluation.temporal_split(data, s.als, s.evaluation, base_mask=self.train_period)
        return self.splits[key]

    def out_of_time(self) -> bool:
        if (
            not self.stopped
            and self.candidates
            and time.perf_counter() - self.started > self.base.selection.max_seconds
        ):
            self.stopped = True
            self.log(
                f"selection: time budget of {self.base.selection.max_seconds:g} s reached after "
                f"{len(self.candidates)} candidate(s)"
            )
        return self.stopped

    def best(self, family: str | None = None, key: tuple | None = None) -> Candidate | None:
        pool = [
            c
            for c in self.candidates
            if (family is None or c.recipe.family == family) and (key is None or _data_key(c.recipe.settings) == key)
        ]
        # The first of equals wins: candidates start from the configured settings.
        return max(pool, key=lambda c: c.ndcg, default=None)

    def score(self, recipe: Recipe, model: Recommender | None = None) -> Candidate | None:
        """Fit (unless given) and score one candidate on the validation split; None if skipped."""
        rid = recipe.id(self.engine)
        if rid in self.seen or self.out_of_time():
            return None
        self.seen.add(rid)
        split = self.split(recipe.settings)
        started = time.perf_counter()
        try:
            if model is None:
                self.check_memory(recipe, split.train)
                model = recipes.fit(
                    recipe,
                    split.train,
                    list(self.data.user_ids),
                    list(self.data.item_ids),
                    engine=self.engine,
                    fitter=self.fitter,
                )
        except (RecommenderError, MemoryError) as exc:
            self.skipped.setdefault(recipe.family, str(exc))
            self.log(f"selection: {recipe.label} skipped: {exc}")
            self.progress.step("skipped")
            return None
        top = model.batch_recommend(split.users, split.train[split.users], self.k)
        per_user = finalists.per_user_ndcg(top, split.relevant, split.users, self.k)
        ndcg = float(per_user.mean()) if len(per_user) else 0.0
        cand = Candidate(recipe, ndcg, time.perf_counter() - started)
        cand.folds.add(self.base.evaluation.cut_quantile, split.users, per_user)
        self.candidates.append(cand)
        key = (recipe.family, _data_key(recipe.settings))
        if recipe.family != BLEND and (key not in self.fitted or ndcg > self.fitted[key][0].ndcg):
            self.fitted[key] = (cand, model)
            self._prune(recipe.family)
        self.detail(
            f"selection {len(self.candidates)}: {recipe.label}: validation NDCG@{self.k} {ndcg:.4f} "
            f"({cand.seconds:.1f} s)"
        )
        self.progress.step(f"best {max(c.ndcg for c in self.candidates):.4f}")
        return cand


class MemoryBudget(RecommenderError):
    """A candidate's predicted peak memory is above ``selection.max_memory_bytes``: it is skipped."""

    code = "memory_budget"


def estimate_fits(settings: Settings, names: list[str], event_types: int) -> int:
    """About how many fits a search makes (for the progress bar's ETA; the greedy stages decide the rest)."""
    from recommender.training.recipes import WEIGHT_PROFILES

    sel = settings.selection
    items = [f for f in names if f in ITEM_FAMILIES]
    n = 1 + len(items) + len(sel.half_lives) + 2 * len(sel.als_scales)
    n += len(WEIGHT_PROFILES) if sel.weight_profiles and event_types > 1 else 0
    for family in items:
        if family == "ease":
            grid = len(sel.ease_scales)
        elif family == "rp3beta":
            grid = len(sel.graph_neighbours) * len(sel.graph_alphas) * len(sel.graph_betas)
        else:
            grid = len(sel.graph_neighbours)
        n += grid + len(sel.half_lives) + 1
    if sel.blend_weights:
        n += 2 * (len(sel.blend_weights) + (1 if sel.three_part_blend else 0))
    return n + len(sel.folds) * (len(items) + 3)


def _variant(base: Settings, **als: Any) -> Settings:
    out = copy.deepcopy(base)
    weights = als.pop("event_weights", None)
    if weights is not None:
        out.event_weights = dict(weights)
    for name, value in als.items():
        if "." in name:
            section, attr = name.split(".", 1)
            setattr(getattr(out, section), attr, value)
        else:
            setattr(out.als, name, value)
    return out


def _als_label(s: Settings) -> str:
    a = s.als
    return (
        f"als hl={a.half_life_days:g} reg={a.regularization:g} alpha={a.alpha:g} f={a.factors} "
        f"w={_weights_label(s.event_weights)}"
    )


def _stage_als(search: _Search, settings: Settings) -> None:
    sel = settings.selection
    search.score(Recipe("als", settings, label=_als_label(settings) + " (configured)"))
    for hl in sel.half_lives:
        s = _variant(settings, half_life_days=float(hl))
        search.score(Recipe("als", s, label=_als_label(s)))
    best = search.best("als")
    if sel.weight_profiles and len(np.unique(search.data.event)) > 1 and best is not None:
        from recommender.training.recipes import WEIGHT_PROFILES

        for profile in WEIGHT_PROFILES:
            weights = {
                **best.recipe.settings.event_weights,
                **{k: v for k, v in profile.items() if k in best.recipe.settings.event_weights},
            }
            s = _variant(best.recipe.settings, event_weights=weights)
            search.score(Recipe("als", s, label=_als_label(s)))
    for name in ("regularization", "alpha"):
        best = search.best("als")
        if best is None:
            return
        for scale in sel.als_scales:
            s = _variant(best.recipe.settings, **{name: getattr(best.recipe.settings.als, name) * scale})
            search.score(Recipe("als", s, label=_als_label(s)))


def _item_label(family: str, s: Settings) -> str:
    hl = f"hl={s.als.half_life_days:g} alpha={s.als.alpha:g}"
    if family == "ease":
        return f"ease lambda={s.ease.regularization:.4g} {hl}"
    g = s.itemgraph
    if family == "itemknn":
        return f"itemknn K={g.neighbours} {hl}"
    return f"rp3beta K={g.neighbours} a={g.alpha:g} b={g.beta:g} {hl}"


def _item_grid(family: str, s: Settings, search: _Search) -> list[Recipe]:
    sel = s.selection
    out = []
    if family == "ease":
        scale = recipes.mean_gram_diagonal(search.split(s).train)
        for r in sel.ease_scales:
            out.append(_variant(s, **{"ease.regularization": float(r * scale)}))
    elif family == "itemknn":
        for k in sel.graph_neighbours:
            out.append(_variant(s, **{"itemgraph.method": "itemknn", "itemgraph.neighbours": int(k)}))
    elif family == "rp3beta":
        for k in sel.graph_neighbours:
            for a in sel.graph_alphas:
                for b in sel.graph_betas:
                    out.append(
                        _variant(
                            s,
                            **{
                                "itemgraph.method": "rp3beta",
                                "itemgraph.neighbours": int(k),
                                "itemgraph.alpha": float(a),
                                "itemgraph.beta": float(b),
                            },
                        )
                    )
    return [Recipe(family, v, label=_item_label(family, v)) for v in out]


# Per family: (setting, how to step beyond the grid's edge). A best value on the edge of its grid
# says the grid was too narrow for this shop; one step further out is tried, and more while it helps.
EDGES: dict[str, list[tuple[str, Callable[[float, int], float]]]] = {
    "ease": [("ease.regularization", lambda v, d: v * 3.0**d)],
    "rp3beta": [
        ("itemgraph.alpha", lambda v, d: v * 2.0**d),
        ("itemgraph.beta", lambda v, d: max(v + 0.3 * d, 0.0)),
        ("itemgraph.neighbours", lambda v, d: max(int(v * 2.0**d), 1)),
    ],
    "itemknn": [("itemgraph.neighbours", lambda v, d: max(int(v * 2.0**d), 1))],
}
MAX_EDGE_STEPS = 3


def _get(s: Settings, name: str) -> float:
    section, attr = name.split(".", 1)
    return getattr(getattr(s, section), attr)


def _widen(search: _Search, family: str) -> None:
    """Step past the edge of each grid dimension where the family's best sits on it."""
    for name, step in EDGES.get(family, []):
        best = search.best(family)
        if best is None:
            return
        tried = sorted({_get(c.recipe.settings, name) for c in search.candidates if c.recipe.family == family})
        value = _get(best.recipe.settings, name)
        if len(tried) < 2 or value not in (tried[0], tried[-1]):
            continue
        direction = 1 if value == tried[-1] else -1
        current = best
        for _ in range(MAX_EDGE_STEPS):
            s = _variant(current.recipe.settings, **{name: step(_get(current.recipe.settings, name), direction)})
            cand = search.score(Recipe(family, s, label=_item_label(family, s)))
            if cand is None or cand.ndcg <= current.ndcg:
                break
            current = cand


def _stage_items(search: _Search, settings: Settings, names: list[str]) -> None:
    best_als = search.best("als")
    if best_als is None:
        return
    data_settings = best_als.recipe.settings
    search.als_key = _data_key(data_settings)
    for family in names:
        if (family == "ease" and not hasattr(data_settings, "ease")) or (
            family != "ease" and not hasattr(data_settings, "itemgraph")
        ):
            continue
        for recipe in _item_grid(family, data_settings, search):
            search.score(recipe)
            if family in search.skipped:
                break
        best = search.best(family)
        if best is None:
            continue
        # The half-life that suits ALS need not suit an item model.
        for hl in settings.selection.half_lives:
            s = _variant(best.recipe.settings, half_life_days=float(hl))
            search.score(Recipe(family, s, label=_item_label(family, s)))
        _configured_confidence(search, settings, family)
        _widen(search, family)


def _configured_confidence(search: _Search, settings: Settings, family: str) -> None:
    """The item family's best once more with the configured alpha and log scaling, then at every half-life.

    The ALS stage may have moved alpha (a factorisation setting) and the item
    families inherit its confidence rules; on a sub-shop of Online Retail the
    study found RP3beta's test NDCG 0.098 at ALS's alpha 0.6 against 0.108 at
    the configured 2. One extra fit per family, more only when it helps.
    """
    best = search.best(family)
    conf = settings.als
    if best is None or (best.recipe.settings.als.alpha, best.recipe.settings.als.log_scaling) == (
        conf.alpha,
        conf.log_scaling,
    ):
        return
    s = _variant(best.recipe.settings, alpha=conf.alpha, log_scaling=conf.log_scaling)
    if family == "ease":  # λ stays relative to the data's own scale
        ratio = recipes.mean_gram_diagonal(search.split(s).train) / recipes.mean_gram_diagonal(
            search.split(best.recipe.settings).train
        )
        s.ease.regularization = float(s.ease.regularization * ratio)
    cand = search.score(Recipe(family, s, label=_item_label(family, s)))
    if cand is None or cand.ndcg <= best.ndcg:
        return
    for hl in settings.selection.half_lives:
        v = _variant(s, half_life_days=float(hl))
        search.score(Recipe(family, v, label=_item_label(family, v)))


def _stage_blend(search: _Search, settings: Settings, names: list[str]) -> None:
    """Blends of the best ALS and the best item model fitted on the same confidence rules (one fold-in).

    Tried at the confidence rules of the best ALS and at those of the best
    item model (where ALS was fitted too): the two families may prefer
    different half-lives. With ``selection.three_part_blend``, also ALS +
    EASE^R + the best item graph, equal weights. Fits are reused: a blend
    costs one evaluation.
    """
    if not settings.selection.blend_weights:
        return
    keys = []
    for family in ("als", *names):
        best = search.best(family)
        if best is not None and _data_key(best.recipe.settings) not in keys:
            keys.append(_data_key(best.recipe.settings))
    for key in keys:
        items = [search.fitted[(f, key)] for f in names if (f, key) in search.fitted]
        if not items or ("als", key) not in search.fitted:
            continue
        als = search.fitted[("als", key)]
        item = max(items, key=lambda cm: cm[0].ndcg)
        combos = [([als, item], (float(w), 1.0 - float(w))) for w in settings.selection.blend_weights]
        ease = search.fitted.get(("ease", key))
        graphs = [search.fitted[(f, key)] for f in names if f in ("rp3beta", "itemknn") and (f, key) in search.fitted]
        if settings.selection.three_part_blend and ease is not None and graphs:
            combos.append(([als, ease, max(graphs, key=lambda cm: cm[0].ndcg)], (1 / 3, 1 / 3, 1 / 3)))
        for parts, weights in combos:
            cands = [c for c, _ in parts]
            label = "blend " + " + ".join(f"{w:.2g} x [{c.recipe.label}]" for c, w in zip(cands, weights))
            recipe = Recipe(
                BLEND, _merged(cands), parts=tuple(c.recipe.family for c in cands), weights=weights, label=label
            )
            try:
                model = recipes.fit_blend_of(recipe, [m for _, m in parts])
            except RecommenderError as exc:
                search.skipped.setdefault(BLEND, str(exc))
                return
            search.score(recipe, model)


def _merged(cands: list[Candidate]) -> Settings:
    """One settings object holding every part's section (the parts share the confidence rules)."""
    merged = copy.deepcopy(cands[0].recipe.settings)
    for cand in cands[1:]:
        section = "ease" if cand.recipe.family == "ease" else "itemgraph"
        if hasattr(cand.recipe.settings, section):
            setattr(merged, section, copy.deepcopy(getattr(cand.recipe.settings, section)))
    return merged


def select(
    data: Interactions,
    settings: Settings,
    *,
    engine: str = "implicit",
    fitter: Any = None,
    log: Log = lambda _: None,
    incumbent: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Choice:
    """Choose the recipe for this shop by validation NDCG; never reads an event at or after the test cut.

    ``incumbent`` is the serving model's recorded recipe (its manifest's
    ``params``). It is scored like any candidate and kept unless the best one
    beats it by more than ``selection.switch_margin`` (relative): night-to-night
    noise on the validation split must not swap recipes, which the release gate
    would then judge on the test split and, as often as not, refuse.

    ``progress`` shows a bar with an ETA on a terminal (see :mod:`recommender.training.progress`);
    without one, ``log`` hears the skips, the time budget and one summary line, and each
    candidate's line goes to the progress's ``detail`` (``--verbose``).
    """
    started = time.perf_counter()
    test_cut = evaluation.cut_time(data.time, settings.evaluation)
    train_period = data.time < test_cut
    if fitter is None:
        from recommender.models.engines import get_engine

        fitter = get_engine(engine)
    names = available_families(settings)
    own = progress is None
    progress = progress or Progress("selection", estimate_fits(settings, names, len(np.unique(data.event))), log=log)
    try:
        return _select(data, settings, engine, fitter, incumbent, progress, names, train_period, test_cut, started)
    finally:
        if own:
            progress.close()


def _select(
    data: Interactions,
    settings: Settings,
    engine: str,
    fitter: Any,
    incumbent: dict[str, Any] | None,
    progress: Progress,
    names: list[str],
    train_period: np.ndarray,
    test_cut: int,
    started: float,
) -> Choice:
    log = progress.log
    search = _Search(data, settings, train_period, engine, fitter, progress)
    first = search.split(settings)
    if len(first.users) == 0:
        raise RecommenderError(
            "selection: no customer has history before the validation cut and new items after "
            "it; retrain with --no-select"
        )
    search.detail(
        f"selection: validation split of the training period at {first.cut_time} "
        f"({len(first.users):,} customers); families {', '.join(names)}"
    )
    items = [f for f in names if f in ITEM_FAMILIES]
    # Breadth first: every family once with its configured settings, so that a shop whose
    # time budget runs out early has still compared the families, not only ALS variants.
    search.score(Recipe("als", settings, label=_als_label(settings) + " (configured)"))
    for family in items:
        s = _variant(settings, **({"itemgraph.method": family} if family in ("rp3beta", "itemknn") else {}))
        search.score(Recipe(family, s, label=_item_label(family, s) + " (configured)"))
    _stage_als(search, settings)
    _stage_items(search, settings, items)
    _stage_blend(search, settings, items)
    final = finalists.finalists_of(search.candidates)
    cuts = finalists.score_cuts(search.cuts, final, settings, search.out_of_time, search.detail)
    index, rule, tied = finalists.pick([(c, c.folds, c.parts) for c in final], settings.selection.tie_standard_errors)
    chosen = final[index]
    kept = _sticky(search, settings, chosen, incumbent, search.detail, cuts)
    if kept is not None:
        chosen, rule = kept, f"the serving recipe, not beaten by more than {settings.selection.switch_margin:.0%}"
    popularity = evaluation.evaluate_popularity(first, search.k).metrics["ndcg"]
    by_family: dict[str, Candidate] = {}
    for c in final:
        f = c.recipe.family
        if f not in by_family or c.validation > by_family[f].validation:
            by_family[f] = c
    by_family[chosen.recipe.family] = chosen
    validation = {
        "cut_time": int(first.cut_time),
        "test_cut_time": int(test_cut),
        "users": len(first.users),
        "k": search.k,
        "popularity_ndcg": round(popularity, 6),
        "cuts": [float(q) for q in cuts],
        "tied": [final[i].recipe.label for i in tied],
    }
    seconds = time.perf_counter() - started
    log(
        f"selection: chose {chosen.recipe.label} (mean validation NDCG@{search.k} {chosen.validation:.4f} over "
        f"{len(cuts)} cut(s), {rule}; popularity {popularity:.4f}; {len(search.candidates)} candidates"
        f"{f', {len(search.skipped)} famil(ies) skipped' if search.skipped else ''} in {seconds:.1f} s)"
    )
    return Choice(
        chosen.recipe, search.candidates, by_family, validation, seconds, search.stopped, search.skipped, rule, chosen
    )


def _sticky(
    search: _Search,
    settings: Settings,
    chosen: Candidate,
    incumbent: dict[str, Any] | None,
    log: Log,
    cuts: list[float] | tuple[float, ...] = (),
) -> Candidate | None:
    """The incumbent's candidate when the chosen one does not clearly beat it on validation, else None.

    Both are compared by their mean over the same validation ``cuts`` (the
    incumbent is scored at any it was not scored at yet).
    """
    if not incumbent or incumbent.get("engine", search.engine) != search.engine:
        return None
    try:
        recipe = recipes.Recipe.from_params(incumbent, search.base)
        rid = recipe.id(search.engine)
    except (RecommenderError, KeyError, TypeError, ValueError):
        return None
    mine = next((c for c in search.candidates if c.recipe.id(search.engine) == rid), None)
    if mine is None:
        search.stopped = False  # the serving recipe is always scored, even past the budget
        recipe.label = f"{recipe.label or recipe.family} (serving)"
        mine = search.score(recipe)
    if mine is None or mine is chosen:
        return None
    try:
        for q in cuts:
            if q not in mine.folds.scores:
                search.cuts.score(mine, q)
    except (RecommenderError, MemoryError):
        return None
    margin = settings.selection.switch_margin
    if chosen.validation > mine.validation * (1.0 + margin):
        log(
            f"selection: {chosen.recipe.label} beats the serving recipe ({mine.validation:.4f}) by more than "
            f"{margin:.0%}: switching"
        )
        return None
    log(
        f"selection: keeping the serving recipe {mine.recipe.label} (validation {mine.validation:.4f}; chosen "
        f"{chosen.validation:.4f} is within {margin:.0%})"
    )
    return mine


def describe(settings: Settings) -> dict[str, Any]:
    """The selection settings, for reports."""
    return dataclasses.asdict(settings.selection)
