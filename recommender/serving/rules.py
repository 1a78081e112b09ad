"""Merchandising rules: what a shop may tell the ranking to do, checked once, stored as JSON.

A rule has a ``name`` (its key), an ``owner``, the ``surfaces`` it acts on
(:data:`SURFACES`), an optional ``audience``, an optional ``schedule``, a
``status`` (``active`` / ``paused``), a ``priority`` (higher first; it settles
overlapping pins) and one ``action``:

``boost`` / ``bury``  ``{"type": "boost", "condition": {...}, "amount": 0.2}``
    Rules act on the **rank-normalised score of the candidate list**, never on a
    model's raw scores: the candidate at rank ``r`` (0 = best) of the list the
    model proposes scores ``-r / scale`` with ``scale = max(POOL, n)`` (``POOL``
    = 50 candidates), and every active boost adds its ``amount`` (a bury
    subtracts it). So ``0.1`` moves a product up 5 places of a 50-candidate list,
    whatever family scored it (ALS dot products, EASE^R, item graphs, a blend or
    popularity counts): the same amount means the same everywhere. Amounts of
    several rules add up; ties keep the model's order.
``pin``  ``{"type": "pin", "product": "P0042", "position": 1}``
    The product at that position (1-based, at most :data:`MAX_POSITION`). Pins are
    placed in the order priority (high first), then name; a pin whose position
    an earlier pin took goes to the next free position; the same product pinned
    twice keeps the first. A list shorter than the position ends with the pin.
``promote``  ``{"type": "promote", "condition": {...}, "slots": 2, "of": 10}``
    At least ``slots`` of the first ``of`` positions hold matching products,
    chosen by the model among them (best first); they replace the lowest
    non-matching products of those positions, which move down just past them.
``exclude`` / ``include_only``  ``{"type": "exclude", "condition": {...}}``
    Matching (``exclude``) or non-matching (``include_only``) products leave the
    list; the model fills it from the rest. On ``rerank``, whose answer is the
    products it was sent, they move to the end instead.
``rotate``  ``{"type": "rotate", "after": 5, "days": 7, "amount": 1.0}``
    A product shown to this customer ``after`` times in ``days`` days (read from
    the decision log, so every worker and a restarted one count alike) with no
    event of theirs on it in that window is demoted by ``amount`` (default 1: a
    whole pool). An optional ``condition`` limits it to matching products.

A **condition** matches products that meet every field it gives: ``products``
(ids), ``categories``, ``attribute`` (``{"name": ..., "equals" | "one_of" |
"contains": ...}`` over :data:`ATTRIBUTES`, more by :func:`register_attribute`),
``min_price`` / ``max_price``, ``new_within_days`` (first seen by the engine
that many days ago or less) and ``min_stock`` / ``max_stock`` (untracked stock
matches no stock bound).

An **audience** narrows who a rule applies to: ``arms`` (A/B arms),
``visitors`` (``new``: a known customer with no purchase, ``returning``, or
``anonymous``: an unknown or non-consenting visitor, and every product-page list)
and ``segments`` (read through :func:`set_segment_source`; until a source is set,
a rule that names segments applies to nobody). The **schedule** is ``start`` /
``end`` (ISO local date-times, or with an offset) read in ``timezone`` (IANA;
default UTC); the rule is active from ``start`` up to, not including, ``end``.
A local time a DST change skips is read with the offset before the change.

Hard filters always win: consent, erasure, hidden and expired products, stock,
the caller's filters and the customer's purchases are applied first, and no rule
puts back a product they removed (a pin of such a product is not placed).

The library, in one place (the API, the CLI and the console call these):

* :func:`parse_rule` (dict -> :class:`Rule`, or :class:`RuleError` naming the
  field) and :meth:`Rule.to_dict`;
* :mod:`recommender.serving.merchandising` — ``list_rules``, ``get_rule``,
  ``create_rule``, ``update_rule``, ``set_status`` (pause/resume),
  ``delete_rule``, ``audit``, ``preview`` and ``load_file`` (JSON/YAML);
* :mod:`recommender.serving.rulesets` — :class:`~recommender.serving.rulesets.Rulebook`
  (a worker's rules, following ``meta.rules_version``) and the compiled masks;
* :mod:`recommender.serving.arrange` — :func:`~recommender.serving.arrange.arrange`, the
  step of the one ranking path;
* :class:`Effects` — what the rules did to one list: ``{rule: {"placed" | "moved" |
  "removed": [product ids]}}``, logged in ``decisions.rules`` by rule set
  (:mod:`recommender.online.rulelog`) and shown to an admin key on the served list.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recommender.errors import ValidationError
from recommender.online import rulelog
from recommender.serving.results import BOUGHT_TOGETHER, POPULAR, RECOMMENDATIONS, RERANK, SIMILAR, TRENDING

OFFERS = "offers"
SURFACES = (RECOMMENDATIONS, RERANK, SIMILAR, BOUGHT_TOGETHER, POPULAR, TRENDING, OFFERS)
ACTIONS = ("boost", "bury", "pin", "promote", "exclude", "include_only", "rotate")
VISITORS = ("new", "returning", "anonymous")
STATUSES = ("active", "paused")
# The catalogue columns a condition's ``attribute`` may name (more: register_attribute).
ATTRIBUTES = {"name": "text", "category": "text", "price": "number", "in_stock": "number", "available_until": "text"}
MAX_POSITION = 100  # the longest list the API serves (n <= 100): a pin or promotion beyond it never shows
POOL = 50  # candidates the model proposes for the rules to act on (the scale of an amount)
MAX_RULES = 1000
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,99}$")
EFFECTS = rulelog.EFFECTS

# Extra attributes (e.g. product attributes that a later import brings): name -> reader(catalogue) of
# one value per catalogue row.
_ATTRIBUTE_READERS: dict[str, Callable[[Any], Sequence[Any]]] = {}
# Customer segments (customer value): a callable (db, customer_id) -> segment name or None.
_SEGMENT_SOURCE: list[Callable[[Any, str], str | None]] = []


def register_attribute(name: str, kind: str, reader: Callable[[Any], Sequence[Any]]) -> None:
    """Let conditions name another product attribute: ``reader(catalogue)`` gives one value per catalogue row."""
    ATTRIBUTES[name] = kind
    _ATTRIBUTE_READERS[name] = reader


def attribute_reader(name: str) -> Callable[[Any], Sequence[Any]] | None:
    return _ATTRIBUTE_READERS.get(name)


def set_segment_source(source: Callable[[Any, str], str | None] | None) -> None:
    """Where ``audience.segments`` are read from: ``source(db, customer_id)`` -> the customer's segment."""
    _SEGMENT_SOURCE.clear()
    if source is not None:
        _SEGMENT_SOURCE.append(source)


def segment_of(db: Any, customer_id: str) -> str | None:
    return _SEGMENT_SOURCE[0](db, customer_id) if _SEGMENT_SOURCE and customer_id else None


class RuleError(ValidationError):
    """A rule that cannot be accepted; ``field`` names where (``action.position``), the message starts with it."""

    code = "invalid_rule"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


# --- the rule's parts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    name: str
    op: str  # equals | one_of | contains
    value: Any


@dataclass(frozen=True)
class Condition:
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    attribute: Attribute | None = None
    min_price: float | None = None
    max_price: float | None = None
    new_within_days: int | None = None
    min_stock: float | None = None
    max_stock: float | None = None

    def empty(self) -> bool:
        return self == Condition()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.products:
            out["products"] = list(self.products)
        if self.categories:
            out["categories"] = list(self.categories)
        if self.attribute is not None:
            a = self.attribute
            out["attribute"] = {"name": a.name, a.op: list(a.value) if a.op == "one_of" else a.value}
        for key in ("min_price", "max_price", "new_within_days", "min_stock", "max_stock"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Audience:
    arms: tuple[str, ...] = ()
    visitors: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()

    def everyone(self) -> bool:
        return not (self.arms or self.visitors or self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(getattr(self, k)) for k in ("arms", "visitors", "segments") if getattr(self, k)}


@dataclass(frozen=True)
class Schedule:
    start: str | None = None
    end: str | None = None
    timezone: str = "UTC"
    start_utc: dt.datetime | None = field(default=None, compare=False)
    end_utc: dt.datetime | None = field(default=None, compare=False)

    def active(self, now: dt.datetime) -> bool:
        return (self.start_utc is None or self.start_utc <= now) and (self.end_utc is None or now < self.end_utc)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"timezone": self.timezone}
        if self.start is not None:
            out["start"] = self.start
        if self.end is not None:
            out["end"] = self.end
        return out


@dataclass(frozen=True)
class Action:
    type: str
    condition: Condition = Condition()
    amount: float | None = None
    product: str | None = None
    position: int | None = None
    slots: int | None = None
    of: int | None = None
    after: int | None = None
    days: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if not self.condition.empty():
            out["condition"] = self.condition.to_dict()
        for key in ("amount", "product", "position", "slots", "of", "after", "days"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    owner: str = ""
    surfaces: tuple[str, ...] = SURFACES
    audience: Audience = Audience()
    schedule: Schedule = Schedule()
    status: str = "active"
    priority: int = 0
    description: str = ""
    holdout_share: float = 0.0  # customers held out of the rule (a stable keyed hash), to measure it against none

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "owner": self.owner,
            "description": self.description,
            "surfaces": list(self.surfaces),
            "status": self.status,
            "priority": self.priority,
            "action": self.action.to_dict(),
        }
        if not self.audience.everyone():
            out["audience"] = self.audience.to_dict()
        if self.holdout_share:
            out["holdout_share"] = self.holdout_share
        if self.schedule.start is not None or self.schedule.end is not None or self.schedule.timezone != "UTC":
            out["schedule"] = self.schedule.to_dict()
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @property
    def condition(self) -> Condition:
        return self.action.condition

    def applies_to(self, surface: str) -> bool:
        return surface in self.surfaces

    def with_status(self, status: str) -> Rule:
        return replace(self, status=status)


# --- parsing: one message per field -----------------------------------------------------------


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RuleError(where, "must be an object")
    return value


def _known(data: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for key in data:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise RuleError(f"{prefix}{key}", f"unknown field (known: {', '.join(known)})")


def _text(value: Any, where: str, *, empty: bool = False, limit: int = 200) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()) or len(value) > limit:
        raise RuleError(where, f"must be {'a' if empty else 'a non-empty'} string of at most {limit} characters")
    return value


def _texts(value: Any, where: str, *, choices: Sequence[str] | None = None, limit: int = 10_000) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) > limit:
        raise RuleError(where, "must be a list of strings")
    out = tuple(_text(v, f"{where}[{i}]") for i, v in enumerate(value))
    if choices is not None:
        for i, v in enumerate(out):
            if v not in choices:
                raise RuleError(f"{where}[{i}]", f"unknown value {v!r} (one of {', '.join(choices)})")
    return tuple(dict.fromkeys(out))


def _number(value: Any, where: str, low: float, high: float, *, integer: bool = False, low_open: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
        or not math.isfinite(value)
    ):
        raise RuleError(where, f"must be {'an integer' if integer else 'a number'}")
    if value < low or value > high or (low_open and value == low):
        raise RuleError(where, f"must be {'above' if low_open else 'at least'} {low:g} and at most {high:g}")
    return int(value) if integer else float(value)


def parse_condition(data: Any, where: str = "action.condition") -> Condition:
    data = _object(data, where)
    _known(
        data,
        ("products", "categories", "attribute", "min_price", "max_price", "new_within_days", "min_stock", "max_stock"),
        where,
    )
    kw: dict[str, Any] = {}
    if "products" in data:
        kw["products"] = _texts(data["products"], f"{where}.products")
    if "categories" in data:
        kw["categories"] = _texts(data["categories"], f"{where}.categories")
    if "attribute" in data:
        a = _object(data["attribute"], f"{where}.attribute")
        _known(a, ("name", "equals", "one_of", "contains"), f"{where}.attribute")
        name = _text(a.get("name"), f"{where}.attribute.name")
        if name not in ATTRIBUTES:
            raise RuleError(
                f"{where}.attribute.name", f"unknown attribute {name!r} (known: {', '.join(sorted(ATTRIBUTES))})"
            )
        ops = [op for op in ("equals", "one_of", "contains") if op in a]
        if len(ops) != 1:
            raise RuleError(f"{where}.attribute", "give exactly one of equals, one_of, contains")
        op, value = ops[0], a[ops[0]]
        numeric = ATTRIBUTES[name] == "number"
        if op == "contains":
            if numeric:
                raise RuleError(f"{where}.attribute.contains", f"{name!r} is a number: use equals or one_of")
            value = _text(value, f"{where}.attribute.contains")
        elif op == "one_of":
            if numeric:
                if not isinstance(value, list) or not value:
                    raise RuleError(f"{where}.attribute.one_of", "must be a non-empty list of numbers")
                value = tuple(_number(v, f"{where}.attribute.one_of[{i}]", -1e12, 1e12) for i, v in enumerate(value))
            else:
                value = _texts(value, f"{where}.attribute.one_of")
                if not value:
                    raise RuleError(f"{where}.attribute.one_of", "must not be empty")
        else:
            value = (
                _number(value, f"{where}.attribute.equals", -1e12, 1e12)
                if numeric
                else _text(value, f"{where}.attribute.equals", empty=True)
            )
        kw["attribute"] = Attribute(name, op, value)
    for key in ("min_price", "max_price", "min_stock", "max_stock"):
        if key in data:
            kw[key] = _number(data[key], f"{where}.{key}", 0, 1e12)
    if "new_within_days" in data:
        kw["new_within_days"] = int(_number(data["new_within_days"], f"{where}.new_within_days", 1, 3650, integer=True))
    if kw.get("min_price") is not None and kw.get("max_price") is not None and kw["min_price"] > kw["max_price"]:
        raise RuleError(f"{where}.max_price", "is below min_price: the condition matches nothing")
    if kw.get("min_stock") is not None and kw.get("max_stock") is not None and kw["min_stock"] > kw["max_stock"]:
        raise RuleError(f"{where}.max_stock", "is below min_stock: the condition matches nothing")
    return Condition(**kw)


def _moment(text: str, zone: ZoneInfo, where: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RuleError(where, f"not an ISO 8601 date or date-time: {text[:40]!r}") from None
    if not 1970 <= value.year <= 2100:
        raise RuleError(where, "must be from 1970 to 2100")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)  # fold=0: an ambiguous time is its first occurrence
    return value.astimezone(dt.UTC)


def parse_schedule(data: Any, where: str = "schedule") -> Schedule:
    data = _object(data, where)
    _known(data, ("start", "end", "timezone"), where)
    name = data.get("timezone", "UTC")
    name = _text(name, f"{where}.timezone", limit=64)
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"{where}.timezone", f"unknown time zone {name!r} (an IANA name like Europe/Paris)") from None
    start = _text(data["start"], f"{where}.start", limit=40) if data.get("start") is not None else None
    end = _text(data["end"], f"{where}.end", limit=40) if data.get("end") is not None else None
    start_utc = _moment(start, zone, f"{where}.start") if start else None
    end_utc = _moment(end, zone, f"{where}.end") if end else None
    if start_utc is not None and end_utc is not None and end_utc <= start_utc:
        raise RuleError(f"{where}.end", "the schedule ends before it starts")
    return Schedule(start, end, name, start_utc, end_utc)


def parse_action(data: Any, where: str = "action") -> Action:
    data = _object(data, where)
    kind = data.get("type")
    if kind not in ACTIONS:
        raise RuleError(f"{where}.type", f"unknown action {kind!r} (one of {', '.join(ACTIONS)})")
    fields = {
        "boost": ("condition", "amount"),
        "bury": ("condition", "amount"),
        "pin": ("product", "position"),
        "promote": ("condition", "slots", "of"),
        "exclude": ("condition",),
        "include_only": ("condition",),
        "rotate": ("condition", "after", "days", "amount"),
    }[kind]
    _known(data, ("type", *fields), where)
    kw: dict[str, Any] = {"type": kind}
    if "condition" in fields:
        if "condition" in data:
            kw["condition"] = parse_condition(data["condition"], f"{where}.condition")
        if kind != "rotate" and kw.get("condition", Condition()).empty():
            raise RuleError(f"{where}.condition", f"a {kind} rule needs a condition (which products)")
    if kind in ("boost", "bury"):
        if "amount" not in data:
            raise RuleError(f"{where}.amount", "required: a share of the candidate list, above 0 and at most 1")
        kw["amount"] = _number(data["amount"], f"{where}.amount", 0, 1, low_open=True)
    elif kind == "pin":
        kw["product"] = _text(data.get("product"), f"{where}.product", limit=200)
        if "position" not in data:
            raise RuleError(f"{where}.position", f"required: 1 to {MAX_POSITION}")
        position = data["position"]
        if isinstance(position, int) and not isinstance(position, bool) and position > MAX_POSITION:
            raise RuleError(f"{where}.position", f"beyond the list size: lists hold at most {MAX_POSITION} items")
        kw["position"] = int(_number(position, f"{where}.position", 1, MAX_POSITION, integer=True))
    elif kind == "promote":
        if "of" not in data or "slots" not in data:
            raise RuleError(f"{where}.{'of' if 'of' not in data else 'slots'}", "required")
        of = data["of"]
        if isinstance(of, int) and not isinstance(of, bool) and of > MAX_POSITION:
            raise RuleError(f"{where}.of", f"beyond the list size: lists hold at most {MAX_POSITION} items")
        kw["of"] = int(_number(of, f"{where}.of", 1, MAX_POSITION, integer=True))
        kw["slots"] = int(_number(data["slots"], f"{where}.slots", 1, kw["of"], integer=True))
    elif kind == "rotate":
        for key, high in (("after", 1000), ("days", 365)):
            if key not in data:
                raise RuleError(f"{where}.{key}", "required")
            kw[key] = int(_number(data[key], f"{where}.{key}", 1, high, integer=True))
        kw["amount"] = _number(data.get("amount", 1.0), f"{where}.amount", 0, 10, low_open=True)
    return Action(**kw)


def parse_rule(data: Any, *, name: str | None = None) -> Rule:
    """A :class:`Rule` from its JSON form; :class:`RuleError` names the first field that is wrong.

    ``name`` (a path's name) must match the body's when both are given.
    """
    data = _object(data, "body")
    _known(
        data,
        (
            "name",
            "owner",
            "description",
            "surfaces",
            "audience",
            "schedule",
            "status",
            "priority",
            "action",
            "holdout_share",
        ),
        "",
    )
    rule_name = data.get("name", name)
    rule_name = _text(rule_name, "name", limit=100)
    if not NAME_PATTERN.match(rule_name):
        raise RuleError("name", "letters, digits, space and _ . : - only, starting with a letter or digit")
    if name is not None and rule_name != name:
        raise RuleError("name", f"the body names {rule_name!r}, the path {name!r}")
    if "action" not in data:
        raise RuleError("action", "required")
    kw: dict[str, Any] = {"name": rule_name, "action": parse_action(data["action"])}
    if "owner" in data:
        kw["owner"] = _text(data["owner"], "owner", empty=True)
    if "description" in data:
        kw["description"] = _text(data["description"], "description", empty=True, limit=1000)
    if "surfaces" in data:
        kw["surfaces"] = _texts(data["surfaces"], "surfaces", choices=SURFACES)
        if not kw["surfaces"]:
            raise RuleError("surfaces", "must name at least one surface")
    if "audience" in data:
        a = _object(data["audience"], "audience")
        _known(a, ("arms", "visitors", "segments"), "audience")
        kw["audience"] = Audience(
            arms=_texts(a.get("arms", []), "audience.arms", choices=("model", "control", "challenger")),
            visitors=_texts(a.get("visitors", []), "audience.visitors", choices=VISITORS),
            segments=_texts(a.get("segments", []), "audience.segments"),
        )
    if "schedule" in data:
        kw["schedule"] = parse_schedule(data["schedule"])
    if "status" in data:
        if data["status"] not in STATUSES:
            raise RuleError("status", f"one of {', '.join(STATUSES)}")
        kw["status"] = data["status"]
    if "priority" in data:
        kw["priority"] = int(_number(data["priority"], "priority", -1000, 1000, integer=True))
    if data.get("holdout_share") is not None:
        kw["holdout_share"] = _number(data["holdout_share"], "holdout_share", 0, 0.5)
    return Rule(**kw)


def rule_from_json(text: str) -> Rule:
    return parse_rule(json.loads(text))


# --- what the rules did to one list ----------------------------------------------------------------


@dataclass
class Effects:
    """What the rules did to one list: per effect (``placed``, ``moved``, ``removed``), each product's acting rules
    as bits of the rule set that ran (rule ``r``: ``1 << r``, named by ``names[r]``), named only when read.

    ``rule_set`` is the set's id in the database (:func:`recommender.store.rule_set_id`), so the
    decision log records the bits (:mod:`recommender.online.rulelog`); without one (a preview's
    unsaved rules) it records names.
    """

    names: Sequence[str] = ()
    rule_set: int | None = None
    marks: dict[str, dict[str, int]] = field(default_factory=dict)
    held: int = 0  # the rules whose holdout this customer is in (the list was served without them)

    def mark(self, effect: str, product_id: str, bits: int) -> None:
        got = self.marks.setdefault(effect, {})
        got[product_id] = got.get(product_id, 0) | bits

    def __bool__(self) -> bool:
        return bool(self.held) or any(self.marks.values())

    @property
    def by_rule(self) -> rulelog.ByRule:
        """``{rule: {"placed" | "moved" | "removed": [product ids]}}``, or ``{rule: {"held_out": true}}``."""
        return rulelog.expand(self.marks, self.held, self.names)

    def rules(self) -> list[str]:
        return sorted(self.by_rule)

    def product_ids(self) -> set[str]:
        """Every product a rule placed, moved or removed."""
        return {p for got in self.marks.values() for p in got}

    def payload(self) -> rulelog.ByRule:
        """:attr:`by_rule`, rules sorted by name."""
        found = self.by_rule
        return {r: found[r] for r in sorted(found)}

    def to_json(self) -> str | None:
        """The decision log's record (None when no rule acted)."""
        if not self:
            return None
        if self.rule_set is not None:
            return rulelog.encode(self.rule_set, self.marks, self.held)
        return json.dumps(self.payload(), separators=(",", ":"), ensure_ascii=False)


__all__ = [
    "ACTIONS",
    "ATTRIBUTES",
    "EFFECTS",
    "MAX_POSITION",
    "OFFERS",
    "POOL",
    "SURFACES",
    "VISITORS",
    "Action",
    "Attribute",
    "Audience",
    "Condition",
    "Effects",
    "Rule",
    "RuleError",
    "Schedule",
    "parse_rule",
    "register_attribute",
    "rule_from_json",
    "segment_of",
    "set_segment_source",
]
