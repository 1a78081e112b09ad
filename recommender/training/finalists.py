"""Selection's last step: the finalists scored on more validation folds, and the tie rule that picks one.

One validation cut is one draw of "the next weeks". ``scripts/selection_study.py``
measured how well it stands in for the test period: on a thousand customers
the top candidates of different families sit within one standard error of each
other, and which one leads moves from one cut to the next. So the finalists
(each family's best, and the blends) are scored again at more cuts of the
training period (``selection.folds``), each fitted on the past of its own cut,
and compared by their mean NDCG over all cuts. Only the finalists: the search
that found them stays on one cut, which keeps the cost bounded.

The tie rule then picks among the finalists: every finalist whose mean is
within ``selection.tie_standard_errors`` paired standard errors of the best
one's is *tied* with it, and among the tied the one with the most parts wins
(a three-part blend over a two-part one over a single family), then the higher
mean. Why the blend: when validation cannot rank the families, a blend of
families whose mistakes differ is the choice least likely to have led on noise
alone. Across the five shops of docs/quality.md's table this rule's choice scored
best on test on average, not on every shop (on one, RP3beta alone was better).

Nothing here reads the test period: every fold is carved from the events
before the test cut (``base_mask``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.config import Settings
from recommender.data.interactions import Interactions
from recommender.errors import RecommenderError
from recommender.models.base import Recommender
from recommender.training import evaluation, recipes
from recommender.training.evaluation import per_user_ndcg
from recommender.training.recipes import BLEND, Recipe


@dataclass
class FoldScores:
    """Per-customer NDCG@k of one recipe at each validation cut (cut quantile → customers, scores)."""

    users: dict[float, np.ndarray] = field(default_factory=dict)
    scores: dict[float, np.ndarray] = field(default_factory=dict)

    def add(self, quantile: float, users: np.ndarray, scores: np.ndarray) -> None:
        self.users[quantile], self.scores[quantile] = users, scores

    def mean(self) -> float:
        """The mean over cuts of each cut's NDCG@k (each cut counts once, whatever its customer count)."""
        values = [float(s.mean()) if len(s) else 0.0 for s in self.scores.values()]
        return float(np.mean(values)) if values else 0.0

    def by_cut(self) -> dict[str, float]:
        return {f"{q:g}": round(float(s.mean()) if len(s) else 0.0, 6) for q, s in sorted(self.scores.items())}


def standard_error(a: FoldScores, b: FoldScores) -> float:
    """Standard error of ``a.mean() − b.mean()``.

    Per cut, paired when both were scored on the same customers (the standard
    error of the per-customer differences, which removes the customer-to-
    customer variance both share), else unpaired; the cuts' variances are
    added as if independent and divided by the number of cuts squared (the
    mean of the cuts). 0 when a cut has fewer than two customers.
    """
    cuts = [q for q in a.scores if q in b.scores]
    if not cuts:
        return 0.0
    variance = 0.0
    for q in cuts:
        x, y = a.scores[q], b.scores[q]
        if len(x) < 2 or len(y) < 2:
            return 0.0
        if np.array_equal(a.users[q], b.users[q]):
            variance += float(np.var(x - y, ddof=1)) / len(x)
        else:
            variance += float(np.var(x, ddof=1)) / len(x) + float(np.var(y, ddof=1)) / len(y)
    return float(np.sqrt(variance)) / len(cuts)


def pick(finalists: list[tuple[Any, FoldScores, int]], standard_errors: float) -> tuple[int, str, list[int]]:
    """Index of the chosen finalist, why, and the indices tied with the best.

    ``finalists`` are (anything, its fold scores, its number of parts), in
    the order of the search (the first of equals wins).
    """
    if not finalists:
        raise ValueError("no finalist to pick from")
    means = [f[1].mean() for f in finalists]
    best = max(range(len(finalists)), key=lambda i: (means[i], -i))
    if standard_errors <= 0:
        return best, "best mean validation NDCG", [best]
    tied = [
        i
        for i in range(len(finalists))
        if i == best or means[best] - means[i] <= standard_errors * standard_error(finalists[best][1], finalists[i][1])
    ]
    chosen = max(tied, key=lambda i: (finalists[i][2], means[i], -i))
    if chosen == best:
        return best, "best mean validation NDCG", tied
    return (
        chosen,
        (
            f"within {standard_errors:g} paired standard error(s) of the best mean validation NDCG "
            f"({means[best]:.4f}) and has more parts"
        ),
        tied,
    )


def fold_split(data: Interactions, settings: Settings, quantile: float, train_period: np.ndarray) -> evaluation.Split:
    """The validation split at ``quantile`` of the training period (never past the test cut)."""
    ev = dataclasses.replace(settings.evaluation, cut_quantile=float(quantile))
    return evaluation.temporal_split(data, settings.als, ev, base_mask=train_period)


class Cuts:
    """Scores recipes at extra validation cuts; splits and fitted parts are cached per cut."""

    def __init__(self, data: Interactions, train_period: np.ndarray, engine: str, fitter: Any, k: int) -> None:
        self.data, self.train_period, self.engine, self.fitter, self.k = data, train_period, engine, fitter, k
        self.splits: dict[tuple, evaluation.Split] = {}
        self.models: dict[tuple[float, str], Recommender] = {}
        # Set by the search: its progress bar, and its memory check (raises before a fit that would not fit).
        self.progress: Any = None
        self.check_memory: Callable[[Recipe, Any], None] | None = None

    def split(self, s: Settings, quantile: float) -> evaluation.Split:
        key = (float(quantile), recipes.confidence_key(s))
        if key not in self.splits:
            self.splits[key] = fold_split(self.data.reweighted(s.event_weights), s, quantile, self.train_period)
        return self.splits[key]

    def score(self, cand: Any, quantile: float) -> None:
        """Fit ``cand.recipe`` on the past of the cut at ``quantile`` and add its scores to ``cand.folds``.

        A blend's parts are fitted once per cut and shared with the single
        family they equal (same recipe id), so a blend costs one evaluation.
        """
        if quantile in cand.folds.scores:
            return
        recipe: Recipe = cand.recipe
        split = self.split(recipe.settings, quantile)
        parts = []
        for name in recipe.parts if recipe.family == BLEND else (recipe.family,):
            part = Recipe(name, recipe.settings)
            rid = part.id(self.engine)
            if (quantile, rid) not in self.models:
                if self.check_memory is not None:
                    self.check_memory(part, split.train)
                self.models[(quantile, rid)] = recipes.fit(
                    part,
                    split.train,
                    list(self.data.user_ids),
                    list(self.data.item_ids),
                    engine=self.engine,
                    fitter=self.fitter,
                )
            parts.append(self.models[(quantile, rid)])
        model = parts[0] if recipe.family != BLEND else recipes.fit_blend_of(recipe, parts)
        top = model.batch_recommend(split.users, split.train[split.users], self.k)
        cand.folds.add(quantile, split.users, per_user_ndcg(top, split.relevant, split.users, self.k))
        if self.progress is not None:
            self.progress.step(f"cut {quantile:g}")


def finalists_of(candidates: list[Any]) -> list[Any]:
    """The best candidate of each family (blends: of each number of parts), in the order of the search."""
    best: dict[tuple[str, int], Any] = {}
    for c in candidates:
        key = (c.recipe.family, c.parts)
        if key not in best or c.ndcg > best[key].ndcg:
            best[key] = c
    order = {id(c): i for i, c in enumerate(candidates)}
    return sorted(best.values(), key=lambda c: order[id(c)])


def score_cuts(
    cuts: Cuts, final: list[Any], settings: Settings, out_of_time: Callable[[], bool], log: Callable[[str], None]
) -> list[float]:
    """Score every finalist at each extra cut of ``selection.folds``; the cuts all of them were scored at.

    A cut that cannot be completed for every finalist (time budget spent, a
    fit refused) is dropped for all, so that every mean covers the same cuts.
    """
    main = float(settings.evaluation.cut_quantile)
    done = [main]
    for q in dict.fromkeys(float(v) for v in settings.selection.folds):
        if q == main or out_of_time():
            continue
        try:
            for c in final:
                cuts.score(c, q)
                if out_of_time():
                    raise RecommenderError("time budget spent")
        except (RecommenderError, MemoryError) as exc:
            log(f"selection: validation cut at {q:g} of the training period dropped ({exc})")
            for c in final:
                c.folds.scores.pop(q, None)
                c.folds.users.pop(q, None)
            continue
        done.append(q)
        log(
            f"selection: finalists at the cut {q:g} of the training period: "
            + ", ".join(f"{c.recipe.family} {c.folds.scores[q].mean():.4f}" for c in final)
        )
    return done
