"""A recipe: everything that makes a model besides the data, as one object that can fit itself.

Selection compares recipes, the training job evaluates and publishes one, and
the release gate refits the serving model's recipe from its manifest. Whatever
the family (ALS, EASE^R, an item graph, a blend of ALS and an item model), the
three go through :func:`fit` and :func:`refit`, so a recipe recorded in a
manifest is refitted exactly as it was chosen.

A recipe's ALS section also carries the confidence transform (half-life,
alpha, log scaling) and its event weights: every family learns from that
matrix, and a server must fold a customer in by the same rules
(:func:`serving_settings`), not by whatever the server's config says tonight.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender.config import Settings
from recommender.errors import ConfigError
from recommender.models.base import Recommender
from recommender.training import gate

BLEND = "blend"
# Event-weighting profiles that tune and selection try (the shop's own extra event types are kept).
WEIGHT_PROFILES: list[dict[str, float]] = [
    {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},
    {"view": 1.0, "add_to_cart": 2.0, "purchase": 8.0},
    {"view": 0.5, "add_to_cart": 2.0, "purchase": 4.0},
    {"view": 1.0, "add_to_cart": 1.0, "purchase": 1.0},
]


@dataclass
class Recipe:
    """A family (or a blend of families) with the settings it is fitted with."""

    family: str
    settings: Settings
    parts: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    # A short human label for logs and reports ("als hl=14", "ease λ×1.0").
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self, engine: str) -> dict[str, Any]:
        """The recipe as recorded in manifests (see :func:`recommender.training.gate.recipe`)."""
        blend = {"parts": list(self.parts), "weights": list(self.weights)} if self.family == BLEND else None
        return gate.recipe(self.settings, engine, self.family, blend)

    def id(self, engine: str) -> str:
        return gate.recipe_id(self.params(engine))

    @classmethod
    def from_params(cls, params: dict[str, Any], base: Settings) -> Recipe:
        """Rebuild a recorded recipe on top of ``base`` (a manifest's ``params``)."""
        family = gate.recipe_family(params)
        blend = params.get("blend") or {}
        return cls(
            family,
            gate.settings_for(params, base),
            tuple(blend.get("parts", ())),
            tuple(float(w) for w in blend.get("weights", ())),
            label=family,
        )


def _fit_one(
    name: str,
    matrix: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    settings: Settings,
    *,
    engine: str,
    fitter: Any,
    progress: bool = False,
) -> Recommender:
    if name == "als" and fitter is not None:
        model = fitter.fit(matrix, user_ids, item_ids, settings.als, progress=progress)
        model.manifest.setdefault("engine", engine)
        return model
    from recommender.models import families

    return families.fit(name, matrix, user_ids, item_ids, settings, engine=engine, progress=progress)


def _blend(parts: list[Recommender], weights: tuple[float, ...]) -> Recommender:
    try:
        from recommender.models.families.blend import Blend
    except ImportError:  # pragma: no cover - only before the blend family exists
        raise ConfigError("the blend family is not available in this version") from None
    return Blend(parts, list(weights))


def _parts(recipe: Recipe) -> tuple[str, ...]:
    if recipe.family != BLEND:
        return (recipe.family,)
    if len(recipe.parts) != len(recipe.weights) or len(recipe.parts) < 2:
        raise ConfigError("a blend recipe needs two or more parts, one weight each")
    return recipe.parts


def fit(
    recipe: Recipe,
    matrix: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    *,
    engine: str = "implicit",
    fitter: Any = None,
    progress: bool = False,
) -> Recommender:
    """Fit ``recipe`` on ``matrix`` (a blend fits each part on it)."""
    models = [
        _fit_one(name, matrix, user_ids, item_ids, recipe.settings, engine=engine, fitter=fitter, progress=progress)
        for name in _parts(recipe)
    ]
    if recipe.family != BLEND:
        return models[0]
    return _blend(models, recipe.weights)


def fit_blend_of(recipe: Recipe, fitted: list[Recommender]) -> Recommender:
    """A blend recipe's model from parts already fitted on the same matrix (selection reuses its fits)."""
    return _blend(fitted, recipe.weights)


def refit(
    recipe: Recipe,
    evaluated: Recommender,
    full: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    *,
    engine: str,
    fitter: Any,
    progress: bool = False,
) -> Recommender:
    """The published model: ``evaluated`` (fitted on the past of the split) brought up to all data.

    ALS continues from the evaluated factors for ``als.refit_iterations``
    (warm start; an engine that cannot warm-start refits fully); item models
    are closed form, so they are simply fitted again on all data; a blend
    refits each of its parts that way and keeps its weights.
    """
    if recipe.family == BLEND:
        parts = list(getattr(evaluated, "parts", []))
        names = _parts(recipe)
        if len(parts) != len(names):
            parts = [None] * len(names)  # type: ignore[list-item]
        refitted = [
            _refit_one(
                name, part, full, user_ids, item_ids, recipe.settings, engine=engine, fitter=fitter, progress=progress
            )
            for name, part in zip(names, parts)
        ]
        return _blend(refitted, recipe.weights)
    return _refit_one(
        recipe.family,
        evaluated,
        full,
        user_ids,
        item_ids,
        recipe.settings,
        engine=engine,
        fitter=fitter,
        progress=progress,
    )


def _refit_one(
    name: str,
    evaluated: Recommender | None,
    full: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    settings: Settings,
    *,
    engine: str,
    fitter: Any,
    progress: bool,
) -> Recommender:
    if name == "als":
        if not settings.als.refit_iterations and evaluated is not None:
            return evaluated
        return fitter.fit(
            full,
            user_ids,
            item_ids,
            settings.als,
            progress=progress,
            warm_start=evaluated,
            iterations=settings.als.refit_iterations if evaluated is not None else None,
        )
    return _fit_one(name, full, user_ids, item_ids, settings, engine=engine, fitter=fitter, progress=progress)


def serving_settings(model: Recommender, settings: Settings) -> Settings:
    """``settings`` with the confidence rules of the recipe that trained ``model`` (for fold-in).

    A customer's history must be turned into confidences by the rules the model
    learnt from: selection may have chosen another half-life or event weighting
    than the config's. Models without a recorded recipe use ``settings``.
    Cached on the model, per settings object.
    """
    cached = getattr(model, "_serving_settings", None)
    if cached is not None and cached[0] is settings:
        return cached[1]
    params = model.manifest.get("params")
    if not params or "als" not in params:
        out = settings
    else:
        recorded = gate.settings_for(params, settings)
        out = dataclasses.replace(
            settings,
            als=dataclasses.replace(
                settings.als,
                half_life_days=recorded.als.half_life_days,
                alpha=recorded.als.alpha,
                log_scaling=recorded.als.log_scaling,
            ),
            event_weights=recorded.event_weights,
        )
    model._serving_settings = (settings, out)  # type: ignore[attr-defined]
    return out


def confidence_key(s: Settings) -> tuple:
    """The settings that shape the confidence matrix (half-life, alpha, log scaling, event weights)."""
    return (s.als.half_life_days, s.als.alpha, s.als.log_scaling, tuple(sorted(s.event_weights.items())))


def mean_gram_diagonal(matrix: sp.csr_matrix) -> float:
    """Mean of diag(XᵀX) over items with data: the scale EASE^R's λ is relative to (shop-independent)."""
    squares = np.asarray(matrix.multiply(matrix).sum(axis=0)).ravel()
    active = squares[squares > 0]
    return float(active.mean()) if len(active) else 1.0
