"""Merchandising rules in the shop's words: list, create, edit, preview, pause, resume, delete.

Everything goes through :mod:`recommender.serving.merchandising` (the library the API
and the CLI call), so validation, the audit (who = ``console:<key name>``) and the
rule-set version are the library's. The form's field names are the rule's own paths
(``action.condition.min_price``), so a :class:`~recommender.serving.rules.RuleError`
names the field its message is shown beside. Marketer and admin keys only (the
console's role); ``read`` and ``write`` keys cannot sign in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from flask import g, redirect, request, url_for

from recommender import store
from recommender.errors import NotFoundError, ValidationError
from recommender.serving import merchandising
from recommender.serving.rules import MAX_POSITION, POOL, SURFACES, RuleError, parse_rule

from ..db import get_db, get_service
from .base import bp, page

# The actions in the shop's words (the engine's name is under "Technical details").
ACTION_WORDS = {
    "boost": "Push",
    "bury": "Hold back",
    "pin": "Pin a product",
    "promote": "Reserve slots",
    "exclude": "Hide",
    "include_only": "Show only",
    "rotate": "Show less after being ignored",
}
ACTION_HINTS = {
    "boost": "move matching products up the list",
    "bury": "move matching products down the list",
    "pin": "put one product at a fixed place",
    "promote": "keep some of the first places for matching products (a promotion)",
    "exclude": "take matching products off the list",
    "include_only": "show nothing but matching products",
    "rotate": "show a product less to a customer who saw it often without clicking",
}
SURFACE_WORDS = {
    "recommendations": "recommendations",
    "rerank": "re-sorted lists",
    "similar": "similar products",
    "bought_together": "bought together",
    "popular": "bestsellers",
    "trending": "trending",
    "offers": "campaign offers",
}
VISITOR_WORDS = {
    "new": "customers who have not bought yet",
    "returning": "returning customers",
    "anonymous": "visitors we do not know (and product pages)",
}
ARM_WORDS = {"model": "the model's group", "control": "the comparison group", "challenger": "the trial model's group"}
ATTRIBUTE_OPS = ("contains", "equals", "one_of")
NUMBERS = (
    "action.amount",
    "action.position",
    "action.slots",
    "action.of",
    "action.after",
    "action.days",
    "action.condition.min_price",
    "action.condition.max_price",
    "action.condition.new_within_days",
    "action.condition.min_stock",
    "action.condition.max_stock",
    "priority",
)
FIELDS = (
    "name",
    "owner",
    "description",
    "action.type",
    "action.amount",
    "action.product",
    "action.position",
    "action.slots",
    "action.of",
    "action.after",
    "action.days",
    "action.condition",
    "action.condition.products",
    "action.condition.categories",
    "action.condition.attribute",
    "action.condition.min_price",
    "action.condition.max_price",
    "action.condition.new_within_days",
    "action.condition.min_stock",
    "action.condition.max_stock",
    "surfaces",
    "audience",
    "audience.visitors",
    "audience.arms",
    "audience.segments",
    "schedule.start",
    "schedule.end",
    "schedule.timezone",
    "priority",
    "status",
)
ACTION_FIELDS = {
    "boost": ("condition", "amount"),
    "bury": ("condition", "amount"),
    "pin": ("product", "position"),
    "promote": ("condition", "slots", "of"),
    "exclude": ("condition",),
    "include_only": ("condition",),
    "rotate": ("condition", "after", "days", "amount"),
}
PREVIEW_LISTS = 10
INDEX = re.compile(r"\[\d+\]")


def actor() -> str:
    key = g.get("console_key") or {}
    return f"console:{key.get('name', '?')}"


# --- words ----------------------------------------------------------------------------------------


def _money(v: Any) -> str:
    return f"{float(v):,.2f}".rstrip("0").rstrip(".")


def condition_words(cond: dict[str, Any] | None) -> str:
    """A condition in words: "products in candles, priced 10 to 30"."""
    cond = cond or {}
    parts = []
    if cond.get("products"):
        ids = cond["products"]
        parts.append(
            ("product " if len(ids) == 1 else "products ")
            + ", ".join(ids[:5])
            + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        )
    if cond.get("categories"):
        parts.append(("in " if len(cond["categories"]) == 1 else "in any of ") + ", ".join(cond["categories"]))
    a = cond.get("attribute")
    if a:
        if "contains" in a:
            parts.append(f"{a['name']} contains “{a['contains']}”")
        elif "one_of" in a:
            parts.append(f"{a['name']} is one of {', '.join(str(v) for v in a['one_of'])}")
        else:
            parts.append(f"{a['name']} is “{a.get('equals')}”")
    lo, hi = cond.get("min_price"), cond.get("max_price")
    if lo is not None and hi is not None:
        parts.append(f"priced {_money(lo)} to {_money(hi)}")
    elif lo is not None:
        parts.append(f"priced {_money(lo)} or more")
    elif hi is not None:
        parts.append(f"priced {_money(hi)} or less")
    if cond.get("new_within_days") is not None:
        parts.append(f"new in the last {cond['new_within_days']} days")
    lo, hi = cond.get("min_stock"), cond.get("max_stock")
    if lo is not None and hi is not None:
        parts.append(f"with {_money(lo)} to {_money(hi)} in stock")
    elif lo is not None:
        parts.append(f"with at least {_money(lo)} in stock")
    elif hi is not None:
        parts.append(f"with at most {_money(hi)} in stock")
    return ", ".join(parts) if parts else "every product"


def _places(amount: float) -> str:
    n = max(1, round(amount * POOL))
    return f"about {n} place{'s' if n != 1 else ''}"


def action_words(action: dict[str, Any]) -> str:
    """What the rule does, in one sentence of the shop's words."""
    kind, cond = action.get("type"), condition_words(action.get("condition"))
    if kind == "boost":
        return f"Push products {cond} up {_places(action['amount'])}"
    if kind == "bury":
        return f"Hold back products {cond}: down {_places(action['amount'])}"
    if kind == "pin":
        return f"Pin {action['product']} at place {action['position']}"
    if kind == "promote":
        return f"Reserve {action['slots']} of the first {action['of']} places for products {cond}"
    if kind == "exclude":
        return f"Hide products {cond}"
    if kind == "include_only":
        return f"Show only products {cond}"
    if kind == "rotate":
        scope = "" if not action.get("condition") else f" (products {cond})"
        return (
            f"Show a product less{scope} once a customer has seen it {action['after']} times in "
            f"{action['days']} days without clicking"
        )
    return str(kind)


def surface_words(surfaces: list[str]) -> str:
    if set(surfaces) >= set(SURFACES):
        return "everywhere"
    return ", ".join(SURFACE_WORDS.get(s, s) for s in surfaces)


def audience_words(audience: dict[str, list[str]] | None) -> str:
    if not audience:
        return "everyone"
    parts = [VISITOR_WORDS.get(v, v) for v in audience.get("visitors", [])]
    parts += [ARM_WORDS.get(a, a) for a in audience.get("arms", [])]
    if audience.get("segments"):
        parts.append("segments " + ", ".join(audience["segments"]))
    return "; ".join(parts)


def schedule_words(rule: dict[str, Any]) -> tuple[str, str]:
    """``(when it runs, where it stands now)``: ("from 2 Mar 2026 09:00 to … (Europe/Paris)", "running now")."""
    sched = rule.get("schedule") or {}
    start, end, zone = sched.get("start"), sched.get("end"), sched.get("timezone", "UTC")
    if not start and not end:
        return "always", "running" if rule["status"] == "active" else "paused"

    def local(text: str) -> str:
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        return f"{moment.day} {moment:%b %Y, %H:%M}"

    span = (
        (f"from {local(start)}" if start else "")
        + (" " if start and end else "")
        + (f"until {local(end)}" if end else "")
    )
    span += f" ({zone})"
    if rule["status"] != "active":
        return span, "paused"
    try:
        schedule = parse_rule(rule).schedule
    except RuleError:
        return span, "?"
    now = dt.datetime.now(dt.UTC)
    if schedule.start_utc is not None and now < schedule.start_utc:
        return span, "scheduled"
    if schedule.end_utc is not None and now >= schedule.end_utc:
        return span, "ended"
    return span, "running"


def described(rule: dict[str, Any]) -> dict[str, Any]:
    span, state = schedule_words(rule)
    return {
        **rule,
        "words": action_words(rule["action"]),
        "kind": ACTION_WORDS.get(rule["action"]["type"], ""),
        "where": surface_words(rule["surfaces"]),
        "who": audience_words(rule.get("audience")),
        "when_words": span,
        "state": state,
        "json": json.dumps(rule, indent=2, ensure_ascii=False),
    }


# --- the form -------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"[,\n]", text) if p.strip()]


def _num(name: str, raw: str) -> float | int:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise RuleError(name, f"{raw[:40]!r} is not a number") from None


def form_values(rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """The form's values: from a stored rule (edit) or the defaults (new)."""
    if rule is None:
        return {
            "action.type": "promote",
            "surfaces": list(SURFACES),
            "schedule.timezone": "UTC",
            "priority": "0",
            "owner": (g.get("console_key") or {}).get("name", ""),
            "attribute_op": "contains",
        }
    action, cond = rule["action"], rule["action"].get("condition", {})
    out: dict[str, Any] = {
        "name": rule["name"],
        "owner": rule["owner"],
        "description": rule["description"],
        "action.type": action["type"],
        "surfaces": rule["surfaces"],
        "priority": str(rule["priority"]),
        "attribute_op": "contains",
    }
    for key in ("amount", "product", "position", "slots", "of", "after", "days"):
        if action.get(key) is not None:
            out[f"action.{key}"] = str(action[key])
    for key in ("products", "categories"):
        if cond.get(key):
            out[f"action.condition.{key}"] = ", ".join(cond[key])
    for key in ("min_price", "max_price", "new_within_days", "min_stock", "max_stock"):
        if cond.get(key) is not None:
            out[f"action.condition.{key}"] = f"{cond[key]:g}" if isinstance(cond[key], float) else str(cond[key])
    if cond.get("attribute"):
        a = cond["attribute"]
        op = next(o for o in ATTRIBUTE_OPS if o in a)
        out.update(
            {
                "attribute_name": a["name"],
                "attribute_op": op,
                "attribute_value": ", ".join(map(str, a[op])) if op == "one_of" else str(a[op]),
            }
        )
    audience = rule.get("audience") or {}
    out["audience.visitors"] = audience.get("visitors", [])
    out["audience.arms"] = audience.get("arms", [])
    out["audience.segments"] = ", ".join(audience.get("segments", []))
    sched = rule.get("schedule") or {}
    out["schedule.start"] = (sched.get("start") or "")[:16]
    out["schedule.end"] = (sched.get("end") or "")[:16]
    out["schedule.timezone"] = sched.get("timezone", "UTC")
    return out


def posted_values() -> dict[str, Any]:
    """What the person typed, to show again beside the errors."""
    out: dict[str, Any] = {k: v for k, v in request.form.items() if k != "csrf"}
    for key in ("surfaces", "audience.visitors", "audience.arms"):
        out[key] = request.form.getlist(key)
    return out


def rule_from_form(values: dict[str, Any], status: str) -> dict[str, Any]:
    """The rule's JSON form from the posted fields; a number that is not one is a :class:`RuleError` on its field."""
    text = {k: (v.strip() if isinstance(v, str) else v) for k, v in values.items()}
    kind = text.get("action.type", "")
    action: dict[str, Any] = {"type": kind}
    wanted = ACTION_FIELDS.get(kind, ())
    for key in ("amount", "product", "position", "slots", "of", "after", "days"):
        raw = text.get(f"action.{key}", "")
        if key in wanted and raw:
            action[key] = raw if key == "product" else _num(f"action.{key}", raw)
    if "condition" in wanted:
        cond: dict[str, Any] = {}
        for key in ("products", "categories"):
            if text.get(f"action.condition.{key}"):
                cond[key] = _split(text[f"action.condition.{key}"])
        for key in ("min_price", "max_price", "new_within_days", "min_stock", "max_stock"):
            if text.get(f"action.condition.{key}"):
                cond[key] = _num(f"action.condition.{key}", text[f"action.condition.{key}"])
        if text.get("attribute_name") or text.get("attribute_value"):
            op = text.get("attribute_op") if text.get("attribute_op") in ATTRIBUTE_OPS else "contains"
            value: Any = text.get("attribute_value", "")
            if op == "one_of":
                value = _split(value)
            cond["attribute"] = {"name": text.get("attribute_name", ""), op: value}
        if cond:
            action["condition"] = cond
    data: dict[str, Any] = {
        "name": text.get("name", ""),
        "owner": text.get("owner", ""),
        "description": text.get("description", ""),
        "status": status,
        "action": action,
        "surfaces": list(values.get("surfaces") or []),
    }
    if not data["surfaces"]:
        raise RuleError("surfaces", "tick at least one place where the rule acts")
    audience = {k: list(values.get(f"audience.{k}") or []) for k in ("visitors", "arms")}
    audience["segments"] = _split(text.get("audience.segments", ""))
    if any(audience.values()):
        data["audience"] = {k: v for k, v in audience.items() if v}
    if text.get("schedule.start") or text.get("schedule.end") or text.get("schedule.timezone", "UTC") != "UTC":
        data["schedule"] = {"timezone": text.get("schedule.timezone") or "UTC"}
        for key in ("start", "end"):
            if text.get(f"schedule.{key}"):
                data["schedule"][key] = text[f"schedule.{key}"]
    if text.get("priority"):
        data["priority"] = _num("priority", text["priority"])
    return data


def field_of(name: str) -> str:
    """The form field an error names (``surfaces[2]`` -> ``surfaces``; ``…attribute.contains`` -> its group)."""
    name = INDEX.sub("", name)
    while name and name not in FIELDS:
        name = name.rpartition(".")[0]
    return name or "rule"


def _form(
    values: dict[str, Any],
    *,
    original: str | None,
    errors: dict[str, str] | None = None,
    warnings: list[str] | None = None,
    result: dict[str, Any] | None = None,
    status: int = 200,
):
    title = "Rule preview" if result is not None else (f"Edit rule {original}" if original else "New rule")
    return page(
        "rule_form.html",
        status,
        title=title,
        v=values,
        original=original,
        errors=errors or {},
        warnings=warnings or [],
        result=result,
        actions=ACTION_WORDS,
        hints=ACTION_HINTS,
        surfaces=SURFACE_WORDS,
        visitors=VISITOR_WORDS,
        arms=ARM_WORDS,
        ops=ATTRIBUTE_OPS,
        max_position=MAX_POSITION,
        pool=POOL,
        zones=(
            "UTC",
            "Europe/London",
            "Europe/Paris",
            "Europe/Berlin",
            "America/New_York",
            "America/Los_Angeles",
            "Asia/Tokyo",
            "Australia/Sydney",
            "Pacific/Auckland",
        ),
    )


def _refused(values: dict[str, Any], original: str | None, exc: ValidationError):
    field = field_of(getattr(exc, "field", "rule"))
    message = str(exc)
    prefix = f"{getattr(exc, 'field', '')}: "
    if message.startswith(prefix):
        message = message[len(prefix) :]
    return _form(values, original=original, errors={field: message}, status=422)


# --- the pages ------------------------------------------------------------------------------------


@bp.get("/rules")
def rules_page():
    db = get_db()
    rules = [described(r) for r in merchandising.list_rules(db)]
    changes = merchandising.audit(db, limit=15)
    return page(
        "rules.html",
        title="Rules",
        rules=rules,
        changes=changes,
        actions=ACTION_WORDS,
        saved=request.args.get("saved", ""),
        done=request.args.get("done", ""),
    )


@bp.get("/rules/new")
def rule_new():
    return _form(form_values(), original=None)


@bp.get("/rules/edit/<name>")
def rule_edit(name: str):
    return _form(form_values(merchandising.get_rule(get_db(), name)), original=name)


def _original() -> str | None:
    original = request.form.get("original", "").strip() or None
    if original is not None and store.rule_row(get_db(), original) is None:
        raise NotFoundError(f"no rule named {original!r}: it was deleted meanwhile")
    return original


@bp.post("/rules/save")
def rule_save():
    """One form, three buttons: preview (nothing saved), save paused, save and activate."""
    values, original = posted_values(), _original()
    what = request.form.get("do", "preview")
    db = get_db()
    try:
        data = rule_from_form(values, "paused" if what == "pause" else "active")
        if original is not None and data["name"] != original:
            raise RuleError("name", "a rule keeps its name: make a new rule for another name")
        if what == "preview":
            result = merchandising.preview(
                get_service(), db, data, sample=merchandising.PREVIEW_SAMPLE, n=PREVIEW_LISTS
            )
            warnings = merchandising.check(db, parse_rule(data), merchandising.stored_rules(db))
            return _form(values, original=original, result=with_names(result), warnings=warnings)
        if original is None:
            rule, warnings = merchandising.create_rule(db, data, actor())
        else:
            rule, warnings = merchandising.update_rule(db, original, data, actor())
    except RuleError as exc:
        return _refused(values, original, exc)
    except ValidationError as exc:  # e.g. the most rules a shop may have
        return _form(values, original=original, errors={"rule": str(exc)}, status=422)
    done = "activated" if rule["status"] == "active" else "saved (paused)"
    return redirect(url_for("console.rules_page", saved=rule["name"], done=done), 303)


def with_names(result: dict[str, Any]) -> dict[str, Any]:
    """The preview with product names, and per customer which products the change placed and removed."""
    ids = sorted({p for c in result["customers"] for p in c["before"] + c["after"]})
    names = store.product_names(get_db(), ids)
    for c in result["customers"]:
        before, after = set(c["before"]), set(c["after"])
        c["before_items"] = [{"id": p, "name": names.get(p, p), "gone": p not in after} for p in c["before"]]
        c["after_items"] = [{"id": p, "name": names.get(p, p), "new": p not in before} for p in c["after"]]
    result["customers"].sort(key=lambda c: not c["changed"])
    return result


@bp.post("/rules/status/<name>")
def rule_status(name: str):
    status = request.form.get("status")
    if status not in ("active", "paused"):
        raise ValidationError("status: active or paused")
    try:
        merchandising.set_status(get_db(), name, status, actor())
    except RuleError as exc:
        raise ValidationError(f"cannot resume {name!r}: {exc}") from None
    return redirect(url_for("console.rules_page", saved=name, done="resumed" if status == "active" else "paused"), 303)


@bp.get("/rules/delete/<name>")
def rule_delete_confirm(name: str):
    rule = described(merchandising.get_rule(get_db(), name))
    return page("rule_delete.html", title=f"Delete rule {name}", rule=rule)


@bp.post("/rules/delete/<name>")
def rule_delete(name: str):
    if request.form.get("confirm") != name:
        raise ValidationError(f"confirm: type the rule's name ({name}) to delete it")
    merchandising.delete_rule(get_db(), name, actor())
    return redirect(url_for("console.rules_page", saved=name, done="deleted"), 303)


def overview_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The report's per-rule rows in words, for the overview's card."""
    out = []
    for r in (report or {}).get("rules", []) or []:
        t, u = r["touched"], r["untouched"]
        out.append(
            {
                **r,
                "where": SURFACE_WORDS.get(r["surface"], r["surface"].replace("_", " ")),
                "group": {**ARM_WORDS, "unassigned": "not in the test"}.get(r["arm"], r["arm"]),
                "t": t,
                "u": u,
            }
        )
    return out


__all__ = ["action_words", "condition_words", "overview_rows", "rule_from_form"]
