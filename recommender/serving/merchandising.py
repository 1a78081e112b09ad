"""Managing merchandising rules: the functions the API, the CLI and the console call (one each).

Every change is validated (:func:`recommender.serving.rules.parse_rule`, then against the
catalogue: :func:`check`), written with its audit row and a new rule-set version in one
transaction (:func:`recommender.store.write_rule`), and reaches every worker on its next
request. ``actor`` names who changed it (``key:<id>:<name>``, ``cli:<user>``,
``console:<user>``).

* :func:`list_rules`, :func:`get_rule` — rules as dicts (``Rule.to_dict()`` plus
  ``created_at``, ``updated_at``);
* :func:`create_rule`, :func:`update_rule` — ``(rule dict, warnings)``; a
  :class:`~recommender.serving.rules.RuleError` (HTTP 422) names the field;
* :func:`set_status` (``active`` / ``paused``), :func:`delete_rule`, :func:`audit`;
* :func:`preview` — before/after lists for a sample of real customers, how many lists a
  rule set touches; refuses (422) a rule set that would empty every list;
* :func:`load_file` — rules from a JSON or YAML file (YAML needs PyYAML), for version control.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlite_utils

from recommender import store
from recommender.errors import NotFoundError, ValidationError
from recommender.serving.catalogue import Catalogue, ListFilters
from recommender.serving.context import utc_now
from recommender.serving.rules import Rule, RuleError, parse_rule
from recommender.serving.rulesets import Compiled, Rulebook
from recommender.store.consents import PERSONALIZATION

PREVIEW_SAMPLE = 20
MAX_PREVIEW_SAMPLE = 200


def _row_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    rule = parse_rule(json.loads(row["body"])).with_status(row["status"])
    return {**rule.to_dict(), "created_at": row["created_at"], "updated_at": row["updated_at"]}


def list_rules(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every rule, by name."""
    out = []
    for row in store.rule_rows(db):
        try:
            out.append(_row_dict(row))
        except (RuleError, ValueError):
            continue  # unreadable (an attribute no longer registered): skipped, as workers skip it
    return out


def stored_rules(db: sqlite_utils.Database) -> list[Rule]:
    rules = []
    for row in store.rule_rows(db):
        try:
            rules.append(parse_rule(json.loads(row["body"])).with_status(row["status"]))
        except (RuleError, ValueError):
            continue
    return rules


def get_rule(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    row = store.rule_row(db, name)
    if row is None:
        raise NotFoundError(f"no rule named {name!r}")
    return _row_dict(row)


def _catalogue(db: sqlite_utils.Database) -> Catalogue:
    catalogue = Catalogue([], ttl=0.0)
    catalogue.refresh(db, force=True)
    return catalogue


def check(
    db: sqlite_utils.Database, rule: Rule, others: Sequence[Rule] = (), catalogue: Catalogue | None = None
) -> list[str]:
    """Warnings for a rule that parses but will not do much; :class:`RuleError` for one that cannot work.

    Refused: a pin of a product the shop does not have; exclusions that, with the other
    active rules on a surface, leave no visible product on it. Warned: a condition that
    matches no product now, a pinned product that is hidden or out of stock now, segments
    with no segment source yet.
    """
    catalogue = catalogue or _catalogue(db)
    warnings: list[str] = []
    if rule.action.type == "pin":
        if rule.action.product not in catalogue.index:
            raise RuleError("action.product", f"unknown product {rule.action.product!r}")
        shown = catalogue.product_mask(ListFilters())[catalogue.index[rule.action.product]]
        if not shown:
            warnings.append(
                f"action.product: {rule.action.product!r} is hidden, expired or out of stock now: "
                "the pin shows once it is listable again"
            )
    compiled = Compiled([rule.with_status("active")], catalogue, db, utc_now())
    if rule.action.type != "pin" and not rule.condition.empty() and compiled.matches[0] == 0:
        warnings.append("action.condition: matches no product in the catalogue now")
    if rule.audience.segments and not _has_segment_source():
        warnings.append("audience.segments: no segment source is set up yet: the rule applies to nobody until then")
    if rule.action.type in ("exclude", "include_only") and rule.status == "active":
        live = [
            r
            for r in others
            if r.status == "active" and r.name != rule.name and r.action.type in ("exclude", "include_only")
        ] + [rule]
        together = Compiled(live, catalogue, db, utc_now())
        visible = catalogue.product_mask(ListFilters(in_stock_only=False))
        for surface in rule.surfaces:
            on = [
                k
                for k, r in enumerate(live)
                if surface in r.surfaces and r.audience.everyone() and r.schedule.active(utc_now())
            ]
            keep = visible.copy()
            for k in on:
                col = together.column(k)
                keep &= col if live[k].action.type == "include_only" else ~col
            if on and visible.any() and not keep.any():
                raise RuleError(
                    "action.condition",
                    f"with the other active rules this leaves no product on "
                    f"the {surface!r} surface: every list would be empty",
                )
    return warnings


def _has_segment_source() -> bool:
    from recommender.serving import rules

    return bool(rules._SEGMENT_SOURCE)


def _dump(rule: Rule | None) -> str | None:
    return rule.to_json() if rule is not None else None


def create_rule(db: sqlite_utils.Database, data: Any, actor: str) -> tuple[dict[str, Any], list[str]]:
    """Add a rule; ``(the rule, warnings)``. A name already taken is a :class:`RuleError` on ``name``."""
    rule = parse_rule(data)
    if store.rule_row(db, rule.name) is not None:
        raise RuleError("name", f"a rule named {rule.name!r} exists: update it instead")
    _check_count(db)
    warnings = check(db, rule, stored_rules(db))
    store.write_rule(
        db, rule.name, rule.to_json(), rule.status, actor=actor, action="create", before=None, after=rule.to_json()
    )
    return get_rule(db, rule.name), warnings


def _check_count(db: sqlite_utils.Database) -> None:
    from recommender.serving.rules import MAX_RULES

    if len(store.rule_rows(db)) >= MAX_RULES:
        raise ValidationError(f"a shop may have at most {MAX_RULES} rules: remove some first")


def update_rule(db: sqlite_utils.Database, name: str, data: Any, actor: str) -> tuple[dict[str, Any], list[str]]:
    """Replace a rule's definition (its name stays); ``(the rule, warnings)``."""
    row = store.rule_row(db, name)
    if row is None:
        raise NotFoundError(f"no rule named {name!r}")
    if isinstance(data, Mapping) and "name" not in data:
        data = {**data, "name": name}
    rule = parse_rule(data, name=name)
    warnings = check(db, rule, stored_rules(db))
    store.write_rule(
        db, name, rule.to_json(), rule.status, actor=actor, action="update", before=row["body"], after=rule.to_json()
    )
    return get_rule(db, name), warnings


def upsert_rule(db: sqlite_utils.Database, data: Any, actor: str) -> tuple[dict[str, Any], list[str], str]:
    """Create or update by the body's name (a file under version control); ``(rule, warnings, created|updated|unchanged)``."""
    rule = parse_rule(data)
    row = store.rule_row(db, rule.name)
    if row is None:
        created, warnings = create_rule(db, data, actor)
        return created, warnings, "created"
    if parse_rule(json.loads(row["body"])).with_status(row["status"]) == rule:
        return get_rule(db, rule.name), [], "unchanged"
    updated, warnings = update_rule(db, rule.name, data, actor)
    return updated, warnings, "updated"


def set_status(db: sqlite_utils.Database, name: str, status: str, actor: str) -> dict[str, Any]:
    """Pause (``paused``) or resume (``active``) a rule."""
    row = store.rule_row(db, name)
    if row is None:
        raise NotFoundError(f"no rule named {name!r}")
    rule = parse_rule(json.loads(row["body"])).with_status(row["status"])
    changed = rule.with_status(status)
    if status == "active" and rule.status != "active":
        check(db, changed, stored_rules(db))
    store.write_rule(
        db,
        name,
        changed.to_json(),
        status,
        actor=actor,
        action="resume" if status == "active" else "pause",
        before=rule.to_json(),
        after=changed.to_json(),
    )
    return get_rule(db, name)


def delete_rule(db: sqlite_utils.Database, name: str, actor: str) -> None:
    row = store.rule_row(db, name)
    if row is None:
        raise NotFoundError(f"no rule named {name!r}")
    store.write_rule(db, name, None, None, actor=actor, action="delete", before=row["body"], after=None)


def audit(db: sqlite_utils.Database, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The audit trail, newest first: who changed which rule when, and the rule before and after."""
    return [
        {
            **r,
            "before": json.loads(r["before"]) if r["before"] else None,
            "after": json.loads(r["after"]) if r["after"] else None,
        }
        for r in store.rule_audit(db, name, limit)
    ]


def preview(
    service: Any,
    db: sqlite_utils.Database,
    data: Any = None,
    *,
    remove: str | None = None,
    sample: int = PREVIEW_SAMPLE,
    n: int = 10,
    customers: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What a change to the rule set would do, on a sample of real customers' lists, before and after.

    ``data`` is a rule (new, or replacing the one of its name; it is previewed as active),
    ``remove`` the name of a rule to preview without. The sample is the ``sample`` most
    recently active customers who granted personalization (or ``customers``). Returns
    ``{"lists", "touched", "emptied", "customers": [{customer_id, before, after, rules}]}``;
    a rule set that would leave every list of the sample empty is refused
    (:class:`RuleError`), as a rule the shop could not have meant.
    """
    current = stored_rules(db)
    after_rules = [r for r in current if r.name != remove]
    candidate = None
    if data is not None:
        candidate = parse_rule(data).with_status("active")
        after_rules = [r for r in after_rules if r.name != candidate.name] + [candidate]
    ids = (
        list(customers)
        if customers is not None
        else store.preview_customers(db, PERSONALIZATION, max(1, min(sample, MAX_PREVIEW_SAMPLE)))
    )
    before_book, after_book = Rulebook(current), Rulebook(after_rules)
    from recommender.serving.service import ListOptions

    options = ListOptions(n=n)
    rows, touched, emptied, full_before = [], 0, 0, 0
    for cid in ids:
        arm = service.assigner.arm(db, cid)
        before = service._recommend(db, cid, options, arm=arm, rulebook=before_book)
        after = service._recommend(db, cid, options, arm=arm, rulebook=after_book)
        changed = before.product_ids != after.product_ids
        touched += changed
        emptied += not after.items
        full_before += bool(before.items)
        rows.append(
            {
                "customer_id": cid,
                "before": before.product_ids,
                "after": after.product_ids,
                "changed": changed,
                "rules": after.rules or {},
            }
        )
    if ids and emptied == len(ids) and full_before:
        raise RuleError(
            "action" if candidate is not None else "rules",
            f"this rule set would empty every list of the {len(ids)} customers previewed",
        )
    return {
        "rule": candidate.to_dict() if candidate is not None else None,
        "removed": remove,
        "lists": len(ids),
        "touched": touched,
        "emptied": emptied,
        "n": n,
        "customers": rows,
        "share_touched": round(touched / len(ids), 4) if ids else 0.0,
    }


def load_file(path: str | Path) -> list[Any]:
    """The rules of a JSON or YAML file: one rule object, a list of them, or ``{"rules": [...]}``.

    YAML (``.yaml`` / ``.yml``) needs PyYAML (``pip install pyyaml``); JSON needs nothing.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read ({exc.strerror})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValidationError(
                f"{path}: reading YAML needs PyYAML (pip install pyyaml); or write the rules as JSON"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, Mapping) and "rules" in data and "action" not in data:
        data = data["rules"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ValidationError(f"{path}: holds no rule")
    return items
