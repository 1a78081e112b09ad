"""Overview: the serving model against popularity, recent retrains, activity, consent and online uplift."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from recommender.models import registry
from recommender.errors import ModelError
from recommender.models.registry import Registry
from recommender.store import console as queries

from ..db import get_db
from . import charts
from .base import bp, page, settings

log = logging.getLogger("recommender.api")
METRICS = ("ndcg", "precision", "recall", "map", "coverage")
DAYS = 30


def _day(n: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=n)).isoformat()


def current_model() -> dict[str, Any] | None:
    """The serving version's manifest facts, or None when nothing is published."""
    reg = Registry(settings().model_dir)
    version = reg.current_version()
    if version is None:
        return None
    try:
        m = reg.manifest(version, verify=False)
    except ModelError as exc:
        return {"version": version, "error": str(exc)}
    metrics = m.get("metrics", {})
    rows = [(name, metrics.get("model", {}).get(name), metrics.get("popularity", {}).get(name)) for name in METRICS]
    return {"version": version, "engine": m.get("engine", "implicit"), "created_at": m.get("created_at"),
            "factors": m.get("factors"), "k": metrics.get("k"), "users": metrics.get("eligible_users"),
            "data": m.get("data", {}), "rows": rows, "error": None}


def refusal(row: dict[str, Any]) -> str:
    """Why the gate refused a model, in the gate's own words."""
    gate = row.get("gate") or {}
    if gate.get("refusal"):
        return str(gate["refusal"])
    failed = [c.get("message", c.get("name", "")) for c in gate.get("checks", []) if not c.get("passed", True)]
    return "; ".join(failed) or "no reason recorded"


def retrains(limit: int = 8) -> list[dict[str, Any]]:
    out = []
    for row in registry.list_models(get_db())[:limit]:
        ndcg = row["metrics"].get("model", {}).get("ndcg")
        pop = row["metrics"].get("popularity", {}).get("ndcg")
        out.append({"version": row["version"], "created_at": row["created_at"], "status": row["status"],
                    "engine": row["engine"], "ndcg": ndcg, "popularity": pop,
                    "why": refusal(row) if row["status"] == "rejected" else ""})
    return out


def activity() -> dict[str, Any]:
    """Events per day over the 30 days ending with the newest event (the demo shop's data is not dated today)."""
    db = get_db()
    newest = queries.newest_event(db)
    if newest is None:
        return {"days": [], "types": [], "chart": charts.bars([], "Events per day: none yet")}
    rows = queries.events_per_day(db, newest, DAYS)
    first = newest // queries.DAY - DAYS + 1
    types = sorted({t for _, t, _ in rows})
    table = {first + i: {t: 0 for t in types} for i in range(DAYS)}
    for day, kind, n in rows:
        table[day][kind] = n
    days = [{"day": _day(d), "counts": [table[d][t] for t in types], "total": sum(table[d].values())}
            for d in sorted(table)]
    chart = charts.bars([(d["day"][5:], d["total"]) for d in days],
                        f"Events per day, {days[0]['day']} to {days[-1]['day']}")
    return {"days": days, "types": types, "chart": chart}


def online() -> dict[str, Any] | None:
    """The online report of :mod:`recommender.online` when that module exists, else None.

    A report that fails is shown as its error: the rest of the overview still renders.
    """
    try:
        from recommender import online as measurement  # type: ignore[attr-defined]
    except ImportError:
        return None
    try:
        report = measurement.report(get_db(), settings(), since=None)
    except Exception as exc:  # noqa: BLE001 - one panel's failure must not take the page down
        log.exception("online report failed")
        return {"error": f"the online report failed: {exc}", "arms": [], "uplift": []}
    rows = [(f"{u['surface']} {u['metric']}", float(u["difference"]), float(u["ci95"][0]), float(u["ci95"][1]))
            for u in report.get("uplift", []) if u.get("ci95") and u.get("difference") is not None]
    report["chart"] = charts.intervals(rows, "Uplift of the model over control, with 95% intervals")
    return report


@bp.get("/")
def overview():
    db = get_db()
    return page("overview.html", title="Overview", model=current_model(), retrains=retrains(),
                activity=activity(), consents=queries.consent_rates(db, settings().consent_purposes),
                online=online())
