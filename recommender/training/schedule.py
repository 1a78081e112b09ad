"""When the model search runs, and what a retrain refits when it does not.

The search (:mod:`recommender.training.selection`) costs tens of fits; the
recipe it chooses (family + settings) is what changes slowly, the data is what
changes every night. So a retrain refits the recipe chosen by the **last
search** on tonight's data, and the search runs again only when:

1. **asked** — ``recommender select``, ``recommender train --select``,
   ``recommender evaluate --select``;
2. **first** — no search has been recorded in this database yet;
3. **cadence** — the last search is ``selection.every_days`` days old or older
   (default 7: weekly; 0 = every retrain, as before);
4. **settings changed** — the selection settings, the configured model
   settings (``als``, ``ease``, ``itemgraph``, event weights) or the evaluation
   settings differ from those the last search ran with;
5. **losing ground** — tonight's test NDCG@k of the refitted recipe is below
   the value recorded for it at the last search by more than
   ``selection.losing_ground_share`` of that value (default 10 %) **and** by
   more than ``selection.losing_ground_standard_errors`` (default 2) standard
   errors of tonight's mean (per-customer NDCG over tonight's test customers);
   then the same run searches, and evaluates, gates and publishes the new
   choice instead.

``evaluate`` never searches unless asked: it scores the recipe of the last
search (or, before any, the serving model's recipe, else the configured ALS)
and shows the last search's table.

The last search is one record in the store (:mod:`recommender.store.searches`):
when it ran and why, the recipe it adopted, that recipe's test NDCG and the
whole selection record (every family's best, every candidate). When the release
gate refuses the search's choice because the serving recipe scores better on
the same split, the record adopts the serving recipe instead (with its NDCG
from that comparison), so later nights refit what the gate kept rather than
being refused night after night.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from recommender import store
from recommender.config import Settings
from recommender.training import gate, recipes

DAY = 86400.0
# Selection settings that decide when to search, not what is searched: changing them starts no search.
SCHEDULE_FIELDS = (
    "enabled",
    "every_days",
    "losing_ground_share",
    "losing_ground_standard_errors",
    "max_memory_bytes",
    "max_seconds",
)


@dataclass
class Plan:
    """Whether this run searches, why, and the last search's record (None before the first)."""

    search: bool
    reason: str  # asked | first | cadence | settings_changed | losing_ground | scheduled | none_yet
    message: str
    last: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"searched": self.search, "reason": self.reason, "message": self.message}
        if self.last:
            out["last_search_at"] = self.last.get("searched_at")
            out["recipe"] = self.last.get("label")
        return out


def settings_hash(settings: Settings) -> str:
    """A short hash of what a search depends on besides the data (see rule 4 of the module docstring)."""
    sel = {k: v for k, v in dataclasses.asdict(settings.selection).items() if k not in SCHEDULE_FIELDS}
    what: dict[str, Any] = {
        "selection": sel,
        "als": dataclasses.asdict(settings.als),
        "event_weights": dict(settings.event_weights),
        "evaluation": {"k": settings.evaluation.k, "cut_quantile": settings.evaluation.cut_quantile},
    }
    for section in ("ease", "itemgraph"):
        if hasattr(settings, section):
            what[section] = dataclasses.asdict(getattr(settings, section))
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def searched_at(record: dict[str, Any]) -> float | None:
    """When the recorded search ran, in Unix seconds (None if unreadable)."""
    try:
        return dt.datetime.fromisoformat(str(record["searched_at"]).replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError, TypeError):
        return None


def plan(db: sqlite_utils.Database, settings: Settings, *, asked: bool | None, now: float | None = None) -> Plan:
    """Decide for this run. ``asked``: True = search (asked for), False = never (``evaluate``), None = the schedule."""
    now = time.time() if now is None else now
    last = store.last_search(db)
    if asked:
        return Plan(True, "asked", "search asked for", last)
    if last is None or not last.get("recipe"):
        if asked is False:
            return Plan(False, "none_yet", "no search has been run yet (recommender select runs one)", None)
        return Plan(True, "first", "no search has been run yet", None)
    when = searched_at(last)
    age = (now - when) / DAY if when is not None else float("inf")
    every = float(settings.selection.every_days)
    if asked is None:
        if age >= every:
            return Plan(
                True, "cadence", f"the last search is {age:.1f} days old (selection.every_days = {every:g})", last
            )
        if last.get("settings") != settings_hash(settings):
            return Plan(True, "settings_changed", "the selection or model settings changed since the last search", last)
    left = max(every - age, 0.0)
    return Plan(
        False,
        "scheduled",
        f"refitting the recipe chosen {age:.1f} days ago ({last.get('reason')}); "
        f"next search in {left:.1f} days unless it loses ground",
        last,
    )


def recipe_of(last: dict[str, Any], settings: Settings) -> recipes.Recipe:
    """The recipe the last search adopted, rebuilt on ``settings``."""
    recipe = recipes.Recipe.from_params(last["recipe"], settings)
    recipe.label = last.get("label") or recipe.family
    return recipe


def losing_ground(
    last: dict[str, Any] | None, payload: dict[str, Any], standard_error: float | None, settings: Settings
) -> str | None:
    """Why the adopted recipe is losing ground tonight (rule 5), or None when it is not (or the rule is off)."""
    share = float(settings.selection.losing_ground_share)
    if not last or share <= 0:
        return None
    recorded = (last.get("test") or {}).get("ndcg")
    if recorded is None or gate.recipe_id(last["recipe"]) != gate.recipe_id(payload["params"]):
        return None
    tonight = float(payload["model"]["ndcg"])
    drop = float(recorded) - tonight
    ses = float(settings.selection.losing_ground_standard_errors)
    se = float(standard_error or 0.0)
    if drop > share * float(recorded) and drop > ses * se:
        return (
            f"the recipe is losing ground: test NDCG@{payload['k']} {tonight:.4f} tonight against {recorded:.4f} "
            f"when it was chosen ({drop / float(recorded):.0%} lower, {drop / se if se else float('inf'):.1f} "
            f"standard errors; limits {share:.0%} and {ses:g})"
        )
    return None


def new_record(
    selection: dict[str, Any],
    params: dict[str, Any],
    label: str,
    payload: dict[str, Any],
    standard_error: float | None,
    reason: str,
    settings: Settings,
    engine: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The record of a search that just ran and the test evaluation of its choice."""
    now = time.time() if now is None else now
    return {
        "searched_at": _iso(now),
        "reason": reason,
        "engine": engine,
        "settings": settings_hash(settings),
        "recipe": params,
        "label": label,
        "test": {
            "ndcg": payload["model"]["ndcg"],
            "standard_error": standard_error,
            "cut_time": payload["cut_time"],
            "users": payload["users"],
            "k": payload["k"],
        },
        "selection": selection,
    }


def record(db: sqlite_utils.Database, entry: dict[str, Any]) -> None:
    store.record_search(db, entry)


def adopt_incumbent(
    db: sqlite_utils.Database,
    last: dict[str, Any],
    gate_record: dict[str, Any],
    incumbent_params: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """After the gate refused the search's choice for scoring below the serving recipe: adopt the serving one.

    Returns the amended record (also stored), or None when the refusal was for another reason.
    """
    failed = [c for c in gate_record.get("checks", []) if c.get("name") == "settings_vs_current" and not c["passed"]]
    theirs = gate_record.get("incumbent") or {}
    if not failed or not incumbent_params or theirs.get("ndcg") is None:
        return None
    amended = {
        **last,
        "recipe": incumbent_params,
        "label": f"{gate.recipe_family(incumbent_params)} (serving recipe "
        f"{theirs.get('version')}, kept by the release gate)",
        "test": {
            "ndcg": theirs["ndcg"],
            "standard_error": None,
            "cut_time": theirs.get("cut_time"),
            "users": (gate_record.get("split") or {}).get("users"),
            "k": (gate_record.get("split") or {}).get("k"),
        },
        "refused_choice": {
            "label": last.get("label"),
            "recipe": gate.recipe_id(last["recipe"]),
            "ndcg": (gate_record.get("candidate") or {}).get("ndcg"),
            "message": gate_record.get("refusal"),
        },
    }
    store.record_search(db, amended)
    return amended
