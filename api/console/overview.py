"""Overview: the serving model against popularity, recent retrains, activity, consent and online uplift."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from recommender.campaigns import firstweek
from recommender.errors import ModelError
from recommender.models import registry
from recommender.models.registry import Registry
from recommender.store import console as queries

from ..db import get_db
from . import charts
from .base import bp, describe_model, model_parts, page, settings, thousands, version_label

log = logging.getLogger("recommender.api")
METRICS = ("ndcg", "precision", "recall", "map", "coverage")
# The offline metrics in a marketer's words (the metric's own name is under "Technical details").
METRIC_WORDS = {
    "ndcg": "hit rate (what they bought next, near the top of the list)",
    "precision": "share of suggestions they bought",
    "recall": "share of their next purchases we suggested",
    "map": "hits near the top, averaged",
    "coverage": "share of the catalogue we suggest",
}
PLAIN_METRICS = ("ndcg", "precision", "recall", "coverage")
DAYS = 30  # kept for callers of the old per-day window
# Who is in each arm of the online test, in words.
ARM_WORDS = {
    "model": "customers who get the model's picks",
    "challenger": "customers who get a new model on trial",
    "control": "what we compare against: customers who get bestsellers",
    "unassigned": "not in the test: visitors, customers without personalization consent, campaign offers",
}
SURFACE_WORDS = {
    "recommendations": "recommendations",
    "similar": "similar products",
    "rerank": "re-sorted lists",
    "offers": "campaign offers",
    "basket": "basket suggestions",
}
UPLIFT_WORDS = {
    "conversion": "lists that led to a purchase",
    "ctr": "lists that were clicked",
    "revenue_per_list": "revenue per list",
}
CONTROL_SHARE_HINT = 0.1
BUCKET_WORDS = {"day": "Events per day", "week": "Events per week (weeks from Monday)", "month": "Events per month"}


def _day(n: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=n)).isoformat()


def _bucket_label(start: str, bucket: str) -> str:
    return start[:7] if bucket == "month" else start[5:]


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
    ndcg, pop = metrics.get("model", {}).get("ndcg"), metrics.get("popularity", {}).get("ndcg")
    chosen = (metrics.get("selection") or {}).get("chosen") or {}
    gate = m.get("gate") if isinstance(m.get("gate"), dict) else {}
    return {
        "version": version,
        "label": version_label(version, m.get("created_at")),
        "engine": m.get("engine", "implicit"),
        "created_at": m.get("created_at"),
        "describe": describe_model(m.get("params")),
        "parts": model_parts(m.get("params")),
        "recipe": chosen.get("label"),
        "recipe_hash": chosen.get("recipe") or (gate.get("candidate") or {}).get("recipe"),
        "factors": m.get("factors"),
        "k": metrics.get("k"),
        "users": metrics.get("eligible_users"),
        "data": m.get("data", {}),
        "rows": rows,
        "plain": [(METRIC_WORDS[n], mv, pv) for n, mv, pv in rows if n in PLAIN_METRICS],
        "lift": (ndcg / pop - 1) if ndcg is not None and pop else None,
        "error": None,
    }


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
        out.append(
            {
                "version": row["version"],
                "created_at": row["created_at"],
                "status": row["status"],
                "label": version_label(row["version"], row["created_at"]),
                "describe": describe_model(row.get("params")),
                "engine": row["engine"],
                "ndcg": ndcg,
                "popularity": pop,
                "lift": (ndcg / pop - 1) if ndcg is not None and pop else None,
                "why": refusal(row) if row["status"] == "rejected" else "",
            }
        )
    return out


def activity() -> dict[str, Any]:
    """Every event by its own date: per day, or per week or month when the events span more than 60 days.

    A live event sent today does not hide a history imported with older dates: the
    chart runs from the oldest event to the newest, whatever their dates.
    """
    db = get_db()
    span = queries.event_span(db)
    if span is None:
        return {
            "days": [],
            "types": [],
            "bucket": "day",
            "title": "Events per day",
            "chart": charts.bars([], "Events per day: none yet"),
        }
    bucket = queries.bucket_for(*span)
    rows = queries.events_over_time(db, bucket)
    types = sorted({t for _, t, _ in rows})
    table: dict[str, dict[str, int]] = {}
    for start in _bucket_starts(span, bucket):
        table[start] = dict.fromkeys(types, 0)
    for start, kind, n in rows:
        table.setdefault(start, dict.fromkeys(types, 0))[kind] = n
    days = [{"day": d, "counts": [table[d][t] for t in types], "total": sum(table[d].values())} for d in sorted(table)]
    title = BUCKET_WORDS[bucket]
    chart = charts.bars(
        [(_bucket_label(d["day"], bucket), d["total"]) for d in days], f"{title}, {days[0]['day']} to {days[-1]['day']}"
    )
    return {
        "days": days,
        "types": types,
        "chart": chart,
        "bucket": bucket,
        "title": title,
        "total": sum(d["total"] for d in days),
    }


def _bucket_starts(span: tuple[int, int], bucket: str) -> list[str]:
    """Every bucket's first day (ISO) from the oldest to the newest event, so empty ones show as gaps."""
    first = dt.datetime.fromtimestamp(span[0], dt.UTC).date()
    last = dt.datetime.fromtimestamp(span[1], dt.UTC).date()
    if bucket == "week":
        first -= dt.timedelta(days=first.weekday())
    if bucket == "month":
        first = first.replace(day=1)
    out = []
    day = first
    while day <= last:
        out.append(day.isoformat())
        if bucket == "day":
            day += dt.timedelta(days=1)
        elif bucket == "week":
            day += dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return out


def online() -> dict[str, Any] | None:
    """The online report of :mod:`recommender.online`, or None while the decision log holds no served list.

    A report that fails is shown as its error: the rest of the overview still renders.
    """
    from recommender import online as measurement  # at call time: a test may put a hand-made report in its place

    try:
        report = measurement.report(get_db(), settings(), since=None)
    except Exception as exc:  # noqa: BLE001 - one panel's failure must not take the page down
        log.exception("online report failed")
        return {"error": f"the online report failed: {exc}", "arms": [], "uplift": []}
    if not report.get("arms"):
        return None  # nothing served yet (or the decision log is off): an empty table would say nothing
    for arm in report["arms"]:
        arm["who"] = ARM_WORDS.get(arm["arm"], arm["arm"])
        arm["where"] = SURFACE_WORDS.get(arm["surface"], arm["surface"].replace("_", " "))
    for u in report.get("uplift", []):
        u["words"] = UPLIFT_WORDS.get(u["metric"], u["metric"].replace("_", " "))
        u["where"] = SURFACE_WORDS.get(u["surface"], u["surface"].replace("_", " "))
        # the report names the arms (treatment, control) and gives their values; an older shape gave the values
        u["model_value"] = u.get(
            "treatment_value", u.get("treatment") if not isinstance(u.get("treatment"), str) else None
        )
        u["control_value_"] = u.get(
            "control_value", u.get("control") if not isinstance(u.get("control"), str) else None
        )
    report["charts"] = []
    for metric in dict.fromkeys(u["metric"] for u in report.get("uplift", [])):
        rows = [
            (
                f"{u['where']}"
                + (
                    f" ({u['treatment']})"
                    if u.get("treatment") not in (None, "model") and isinstance(u.get("treatment"), str)
                    else ""
                ),
                float(u["difference"]),
                float(u["ci95"][0]),
                float(u["ci95"][1]),
            )
            for u in report["uplift"]
            if u["metric"] == metric and u.get("ci95") and u.get("difference") is not None
        ]
        if rows:
            fmt = (lambda v: f"{v:+,.2f}") if metric == "revenue_per_list" else (lambda v: f"{100 * v:+.2f} pt")
            words = UPLIFT_WORDS.get(metric, metric)
            report["charts"].append(
                charts.intervals(rows, f"Difference in {words}, model minus comparison, with 95% intervals", fmt)
            )
    report["chart"] = report["charts"][0] if report["charts"] else ""
    return report


def measurement_state(report: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the online test is on (a control share is set) and whether it has answered yet."""
    conf = settings()
    share = conf.online.control_share
    uplift = [u for u in (report or {}).get("uplift", []) if u.get("ci95")]
    return {
        "on": share > 0,
        "share": share,
        "hint": CONTROL_SHARE_HINT,
        "decision_log": conf.privacy.decision_log,
        "uplift": uplift,
    }


def headline(model: dict[str, Any] | None, report: dict[str, Any] | None, state: dict[str, Any]) -> list[str]:
    """One or two sentences at the top: is it working (the model beats bestsellers), is it earning (uplift)."""
    out = []
    if model is None:
        out.append("No model is live yet: customers see bestsellers. Train one to start personalizing.")
    elif model.get("error"):
        out.append("The live model cannot be read: customers see bestsellers until it is fixed (see below).")
    elif model.get("lift") is not None:
        better = model["lift"] > 0
        out.append(
            f"It is working: the model {'finds' if better else 'does not find'} what customers buy next "
            f"{abs(model['lift']) * 100:.0f} % {'more' if better else 'less'} often than bestsellers"
            + (" do." if better else "; customers are better served by bestsellers for now.")
        )
    else:
        out.append("A model is live; it has no offline score yet.")
    earning = next(
        (u for u in state["uplift"] if u["metric"] == "revenue_per_list" and u.get("treatment") in ("model", None)),
        None,
    ) or next((u for u in state["uplift"] if u["metric"] == "conversion"), None)
    if not state["on"]:
        out.append(
            "Whether it is earning is not measured yet: nobody is held back for comparison "
            "(how to switch it on is below)."
        )
    elif earning is None:
        out.append(
            f"Earning: measuring ({state['share'] * 100:.0f} % of customers get bestsellers for comparison);"
            " no answer yet."
        )
    else:
        low, high = earning["ci95"]
        if earning["metric"] == "revenue_per_list":
            size = f"{earning['difference']:+,.2f} revenue per list (95 % interval {low:+,.2f} to {high:+,.2f})"
        else:
            size = (
                f"{100 * earning['difference']:+.2f} points of lists that led to a purchase "
                f"(95 % interval {100 * low:+.2f} to {100 * high:+.2f})"
            )
        verdict = "It is earning" if low > 0 else "It is costing" if high < 0 else "Not clear yet whether it earns"
        out.append(f"{verdict}: {size} against bestsellers.")
    return out


def value_panel() -> dict[str, Any]:
    """Customers and revenue share per segment, movement since last month (api/console/values.py)."""
    from . import values

    try:
        return values.overview_panel()
    except Exception as exc:  # noqa: BLE001 - one panel's failure must not take the page down
        log.exception("customer value panel failed")
        return {"computed": False, "error": f"the customer value panel failed: {exc}"}


def campaign_panel() -> dict[str, Any]:
    """The campaign report's one sentence (recommender/campaigns/report.py): sent vs held out, in money."""
    from recommender.campaigns import report as campaign_report

    try:
        payload = campaign_report.report(get_db(), settings())
    except Exception as exc:  # noqa: BLE001 - one panel's failure must not take the page down
        log.exception("campaign report panel failed")
        return {"error": f"the campaign report failed: {exc}"}
    return {
        "summary": payload["summary"],
        "offers": sum(g["arms"]["sent"]["offers"] for g in payload["kinds"]),
        "held_out": sum(g["arms"]["held_out"]["offers"] for g in payload["kinds"]),
    }


def rule_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The online report's per-rule lines in words (api/console/rules.py), for the "What rules earned" card."""
    from . import rules

    return rules.overview_rows(report if report and not report.get("error") else None)


@bp.get("/")
def overview():
    db = get_db()
    model, report = current_model(), online()
    state = measurement_state(report if report and not report.get("error") else None)
    return page(
        "overview.html",
        title="Overview",
        model=model,
        retrains=retrains(),
        first_week=firstweek.checklist(db, settings()),
        activity=activity(),
        consents=queries.consent_rates(db, settings().consent_purposes),
        online=report,
        decision_log=settings().privacy.decision_log,
        measure=state,
        headline=headline(model, report, state),
        thousands=thousands,
        value_panel=value_panel(),
        rule_rows=rule_rows(report),
        campaign_panel=campaign_panel(),
    )
