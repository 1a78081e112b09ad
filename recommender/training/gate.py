"""The release gate: may tonight's model replace the one that is serving?

Two kinds of question, answered without ever comparing numbers from two splits
and without ever scoring a model on a period it was trained on:

1. **Is tonight's model healthy?** Checks on tonight's data and fit alone:
   it beats the popularity baseline on tonight's split; no more than a sliver
   of events is dated after the training time (rows no door would accept: a
   broken import, a bad clock); most trained customers and products got a
   non-zero factor row (a collapsed fit or a wrecked time reference zeroes
   them); the history did not shrink by more than a set share since the
   current model (withdrawals and erasures shrink it a little, a broken import
   a lot).
2. **Are tonight's settings at least as good as the current model's?** Only
   asked when the settings differ (after ``tune``, a config change, another
   engine). The current model's *recipe* — engine, ALS settings, event weights,
   read from its manifest — is fitted on tonight's training period and scored
   on tonight's test period, beside tonight's. The current model's own factors
   are never scored: they were refitted on all data, test period included, so
   they would be rewarded for having seen the answers. With unchanged settings
   the two recipes are the same, so a routine retrain on changed data is judged
   by the health checks alone.

What was compared is returned as a record that goes into the manifest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.config import ALSSettings, GateSettings, Settings
from recommender.data.interactions import Interactions
from recommender.models.base import Recommender

# A factor row with a norm below this is "zero": it scores every product alike.
ZERO_NORM = 1e-6


# Settings sections that belong to one family (present once that family exists in config).
FAMILY_SECTIONS = {"ease": ("ease",), "rp3beta": ("itemgraph",), "itemknn": ("itemgraph",)}


def recipe(settings: Settings, engine: str, family: str = "als", blend: dict[str, Any] | None = None) -> dict[str, Any]:
    """What makes a model besides the data: family, engine, its settings, the event weights.

    The ALS section is always recorded: its half-life, alpha and log scaling
    shape the confidence matrix every family learns from. An item family adds
    its own section; a blend names its parts and their weights.
    """
    out: dict[str, Any] = {
        "engine": engine,
        "als": dataclasses.asdict(settings.als),
        "event_weights": dict(settings.event_weights),
    }
    if family != "als":
        out["family"] = family
    names = [family] if blend is None else list(blend["parts"])
    for name in names:
        for section in FAMILY_SECTIONS.get(name, ()):
            if hasattr(settings, section):
                out[section] = dataclasses.asdict(getattr(settings, section))
    if blend is not None:
        out["blend"] = {"parts": list(blend["parts"]), "weights": [float(w) for w in blend["weights"]]}
    return out


def recipe_family(params: dict[str, Any]) -> str:
    """The family a recorded recipe names (recipes from before families existed are ALS)."""
    return params.get("family") or "als"


def recipe_id(params: dict[str, Any]) -> str:
    """A short stable hash of a recipe; ``random_state`` and the iteration split are part of it.

    An ALS recipe hashes exactly as before families existed, so an upgrade does
    not by itself count as a change of settings.
    """
    keys = ["engine", "als", "event_weights"]
    if recipe_family(params) != "als":
        keys += ["family", "ease", "itemgraph", "blend"]
    text = json.dumps({k: params.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _section(cls: Any, recorded: dict[str, Any] | None, current: Any) -> Any:
    recorded = recorded or {}
    return cls(**{f.name: recorded.get(f.name, getattr(current, f.name)) for f in dataclasses.fields(cls)})


def settings_for(params: dict[str, Any], base: Settings) -> Settings:
    """``base`` with the settings sections and event weights of a recorded recipe (for refitting or serving it)."""
    changes: dict[str, Any] = {
        "als": _section(ALSSettings, params.get("als"), base.als),
        "event_weights": dict(params.get("event_weights") or base.event_weights),
    }
    for section in ("ease", "itemgraph"):
        current = getattr(base, section, None)
        if current is not None and params.get(section):
            changes[section] = _section(type(current), params[section], current)
    return dataclasses.replace(base, **changes)


@dataclass
class Check:
    name: str
    passed: bool
    value: float
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Decision:
    """The gate's answer: ``refusal`` is None when the new model may be published."""

    refusal: str | None
    record: dict[str, Any] = field(default_factory=dict)


def _iso(seconds: int | None) -> str | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trained_rows(full_matrix: Any) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the customers and products with a pair: from the matrix, or as given by a trainer
    whose matrix never reached this process (Spark with an export computes them where the data is)."""
    if isinstance(full_matrix, tuple):
        return full_matrix
    return (np.flatnonzero(np.diff(full_matrix.indptr) > 0), np.flatnonzero(np.diff(full_matrix.tocsc().indptr) > 0))


def health_checks(
    payload: dict[str, Any],
    data: Interactions,
    model: Recommender,
    full_matrix: Any,
    incumbent: dict[str, Any] | None,
    conf: GateSettings,
) -> list[Check]:
    """The checks on tonight's data and fit alone (see the module docstring)."""
    k = payload["k"]
    ndcg, baseline = payload["model"]["ndcg"], payload["popularity"]["ndcg"]
    checks = [
        Check(
            "beats_popularity",
            ndcg > baseline,
            ndcg,
            baseline,
            f"new model NDCG@{k} {ndcg:.4f} is not above the popularity baseline's {baseline:.4f} on the same split",
        )
    ]
    total = len(data) + data.future_events
    share = data.future_events / total if total else 0.0
    checks.append(
        Check(
            "future_events",
            share <= conf.max_future_share,
            share,
            conf.max_future_share,
            f"{data.future_events:,} of {total:,} events ({share:.2%}) are dated after the training "
            f"time (newest {_iso(data.newest_future)}): a data accident (an import that bypassed "
            f"the time check, a wrong clock); fix or delete them and retrain",
        )
    )
    trained_users, trained_items = trained_rows(full_matrix)
    shares = model.health(trained_users, trained_items)
    users, items = shares["users"], shares["items"]
    checks.append(
        Check(
            "nonzero_customers",
            users >= conf.min_nonzero_share,
            users,
            conf.min_nonzero_share,
            f"only {users:.1%} of the {len(trained_users):,} trained customers got a non-zero factor row "
            f"(the fit collapsed: check the data's time stamps and the ALS settings)",
        )
    )
    checks.append(
        Check(
            "nonzero_products",
            items >= conf.min_nonzero_share,
            items,
            conf.min_nonzero_share,
            f"only {items:.1%} of the {len(trained_items):,} trained products got a non-zero factor row "
            f"(the fit collapsed: check the data's time stamps and the ALS settings)",
        )
    )
    before = (incumbent or {}).get("data", {}).get("interactions")
    if before:
        drop = 1.0 - len(data) / before
        checks.append(
            Check(
                "data_drop",
                drop <= conf.max_data_drop,
                drop,
                conf.max_data_drop,
                f"the history shrank from {before:,} to {len(data):,} interactions ({drop:.0%}) since the "
                f"current model: a broken or partial import? (withdrawals and erasures shrink it a little)",
            )
        )
    return checks


def judge(
    payload: dict[str, Any],
    params: dict[str, Any],
    data: Interactions,
    model: Recommender,
    full_matrix: Any,
    incumbent: dict[str, Any] | None,
    incumbent_version: str | None,
    conf: GateSettings,
    refit_incumbent: Callable[[dict[str, Any]], dict[str, Any]],
) -> Decision:
    """Decide on tonight's model; ``refit_incumbent(params)`` fits and scores a recipe on tonight's split.

    ``payload`` is tonight's evaluation (model and popularity on tonight's
    split), ``incumbent`` the serving model's manifest (or None).
    """
    checks = health_checks(payload, data, model, full_matrix, incumbent, conf)
    record: dict[str, Any] = {
        "split": {"cut_time": payload["cut_time"], "users": payload["users"], "k": payload["k"]},
        "candidate": {
            "recipe": recipe_id(params),
            "ndcg": payload["model"]["ndcg"],
            "popularity_ndcg": payload["popularity"]["ndcg"],
        },
        "incumbent": None,
    }
    refusal = next((c.message for c in checks if not c.passed), None)
    if incumbent is not None:
        theirs = incumbent.get("params") or {}
        same = recipe_id(theirs) == recipe_id(params)
        entry: dict[str, Any] = {
            "version": incumbent_version,
            "recipe": recipe_id(theirs),
            "same_recipe": same,
            "ndcg": None,
            "cut_time": None,
        }
        if not same and refusal is None:
            try:
                scored = refit_incumbent(theirs)
            except Exception as exc:  # noqa: BLE001 - an unusable old recipe must not block a healthy model
                entry["note"] = f"the current model's settings could not be refitted ({exc}); health checks only"
            else:
                entry.update(ndcg=scored["model"]["ndcg"], cut_time=scored["cut_time"])
                theirs_ndcg, ours = scored["model"]["ndcg"], payload["model"]["ndcg"]
                limit = theirs_ndcg * (1.0 - conf.tolerance)
                passed = scored["cut_time"] == payload["cut_time"] and ours >= limit
                checks.append(
                    Check(
                        "settings_vs_current",
                        passed,
                        ours,
                        limit,
                        f"new settings score NDCG@{payload['k']} {ours:.4f}, below the current model "
                        f"{incumbent_version}'s settings ({theirs_ndcg:.4f}) fitted and scored on the "
                        f"same split; keep the current settings or tune again",
                    )
                )
                if not passed:
                    refusal = checks[-1].message
        record["incumbent"] = entry
    record["checks"] = [c.to_dict() for c in checks]
    record["refusal"] = refusal
    return Decision(refusal, record)
