"""The one result type of a served list, and the JSON it is sent as.

Every list the service answers with — recommendations, a re-ranking, similar
products, bought together, popular or trending — is a :class:`ServedList` of
:class:`ServedItem`; :meth:`ServedList.payload` is the single place that turns
one into the response body (the shapes ``ItemList`` and ``Reranked`` in
``api/schema.py`` document), so the faces only format and the decision log
reads the same products the customer is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The surfaces a list is served on: the decision log's ``endpoint`` and the metrics' ``surface``.
RECOMMENDATIONS = "recommendations"
RERANK = "rerank"
SIMILAR = "similar"
BOUGHT_TOGETHER = "bought_together"
POPULAR = "popular"
TRENDING = "trending"


@dataclass(frozen=True)
class Because:
    """One product of the customer's history that led to an item, and how much."""

    product_id: str
    name: str | None
    weight: float

    def payload(self) -> dict[str, Any]:
        return {"product_id": self.product_id, "name": self.name, "weight": self.weight}


@dataclass(frozen=True)
class ServedItem:
    """A product in a served list: what the storefront shows of it, and why it is there.

    ``score`` (model or popularity) and ``lift`` (bought together) appear in the
    payload only when set; ``because`` only when explanations were asked for.
    """

    product_id: str
    name: str | None = None
    category: str | None = None
    price: float | None = None
    in_stock: int | None = None
    score: float | None = None
    lift: float | None = None
    because: tuple[Because, ...] | None = None

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "product_id": self.product_id,
            "name": self.name,
            "category": self.category,
            "price": self.price,
            "in_stock": self.in_stock,
        }
        if self.score is not None:
            out["score"] = self.score
        if self.lift is not None:
            out["lift"] = self.lift
        if self.because is not None:
            out["because"] = [b.payload() for b in self.because]
        return out


@dataclass(frozen=True)
class Short:
    """Why a list holds fewer items than asked: ``because`` names each step that removed candidates.

    The names, in the order a list is made (see ``docs/api.md``, *Short lists*):
    where the candidates come from ran out (``catalogue``: the model knows fewer
    products; a non-personalized list's ``reason``, e.g. ``no_history``: only
    popular products could fill it; ``cooccurrence``: too few products bought with
    this one), then the filters of :data:`recommender.serving.catalogue.RULES`
    (``category``, ``min_price``, ``max_price``, ``in_stock``, ``hidden``,
    ``expired``), then ``exclude``, ``purchased``, ``model`` (it proposed fewer
    than the filters allow) and ``diversity``. A candidate refused by several is
    counted once, by the first of them.
    """

    asked: int
    returned: int
    because: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        return {"asked": self.asked, "returned": self.returned, "because": list(self.because)}


def short_of(asked: int, returned: int, removed: dict[str, int]) -> Short | None:
    """The :class:`Short` of a list of ``returned`` items for ``asked`` (None when full).

    ``removed`` maps each step to the candidates it removed, in the order the
    steps ran; steps that removed nothing are left out.
    """
    if returned >= asked:
        return None
    return Short(asked, returned, tuple(step for step, count in removed.items() if count > 0))


@dataclass(frozen=True)
class ServedList:
    """A list served on one surface, best first, with how it was made (``mode``) and why not personal (``reason``).

    ``list_id`` and ``arm`` are set when the list is logged (its decision-log
    row). ``days`` is the window of a trending list (``None`` for popular).
    ``short`` says why a list holds fewer than the ``n`` asked (``None`` when
    it is full; a re-ranking returns what it was given and never has one).
    ``effects`` is what merchandising rules did to it (:class:`recommender.serving.rules.Effects`),
    logged with it; :attr:`rules` names them (``{rule: {"placed" | "moved" | "removed": [product
    ids]}}``), shown only to an admin key (``payload(show_rules=True)``).
    """

    surface: str
    mode: str
    reason: str | None
    model_version: str | None
    items: tuple[ServedItem, ...] = ()
    days: int | None = None
    list_id: str | None = None
    arm: str | None = None
    short: Short | None = None
    effects: Any = None  # recommender.serving.rules.Effects (which imports this module); None when no rule acted

    @property
    def rules(self) -> dict[str, dict[str, Any]] | None:
        return self.effects.payload() if self.effects else None

    @property
    def product_ids(self) -> list[str]:
        return [item.product_id for item in self.items]

    def payload(self, show_rules: bool = False) -> dict[str, Any]:
        """The response body: ``Reranked`` for a re-ranking (the ids only), else ``ItemList``.

        ``show_rules`` (an admin key) adds ``rules``: what each rule did to the list.
        """
        out: dict[str, Any] = {"mode": self.mode, "reason": self.reason, "model_version": self.model_version}
        if self.surface == RERANK:
            out["products"] = self.product_ids
        else:
            if self.surface in (POPULAR, TRENDING):
                out["days"] = self.days
            out["items"] = [item.payload() for item in self.items]
            out["short"] = self.short.payload() if self.short is not None else None
        out["list_id"], out["arm"] = self.list_id, self.arm
        if show_rules:
            out["rules"] = dict(self.rules or {})
        return out
