"""The rights of the people in the data: consent, erasure, access, decision-log retention."""

from __future__ import annotations

import json
from typing import Any

import click

from recommender import store
from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings


@click.group(cls=EngineGroup)
def consent() -> None:
    """Show and change consent per customer and purpose (every change is logged)."""


def cli_actor(source: str) -> str:
    """The consent log's actor for a CLI change: ``cli:<--source>``."""
    return f"cli:{source}"


@consent.command("set")
@with_settings
@click.argument("customer")
@click.argument("purpose")
@click.argument("state", type=click.Choice(["granted", "withdrawn"]))
@click.option(
    "--source",
    default="cli",
    show_default=True,
    help="Who or what made the change; kept in the log, whose actor is cli:SOURCE.",
)
@click.option(
    "--decided-at",
    default=None,
    metavar="TIME",
    help="When the customer decided (ISO 8601) [default: now]. A decision older than the current "
    "state's is not applied (reported as stale).",
)
@json_option
def consent_set(
    settings: Settings, customer: str, purpose: str, state: str, source: str, decided_at: str | None, as_json: bool
) -> None:
    """Grant or withdraw PURPOSE for CUSTOMER; effective on their next request.

    Consent is last-writer-wins by the time the customer decided: a change
    dated before the current decision is skipped and reported as stale.
    """
    from recommender.ingest import consent as consents

    result = consents.set_consents(
        open_db(settings),
        settings,
        customer,
        {purpose: state == "granted"},
        source,
        decided_at=decided_at,
        actor=cli_actor(source),
    )
    lines = _consent_lines(result)
    if result["stale"]:
        lines += (
            f"\nstale: not applied to {', '.join(result['stale'])} (decided {result['decided_at']}, "
            "before the current decision)"
        )
    emit(as_json, result, lines)


def _consent_lines(result: dict[str, Any]) -> str:
    return "\n".join(
        f"{p:16} {'granted' if c['granted'] else 'not granted':12} "
        f"{(c['source'] or '-'):18} {c['updated_at'] or '(never recorded)'}"
        for p, c in result["consents"].items()
    )


@consent.command("show")
@with_settings
@click.argument("customer")
@json_option
def consent_show(settings: Settings, customer: str, as_json: bool) -> None:
    """Every configured purpose for CUSTOMER (unrecorded = not granted)."""

    result = store.consent_state(open_db(settings), settings, customer)
    emit(as_json, result, _consent_lines(result))


@consent.command("history")
@with_settings
@click.argument("customer")
@json_option
def consent_history(settings: Settings, customer: str, as_json: bool) -> None:
    """Every consent change of CUSTOMER in the order recorded: decided, recorded, source and actor."""

    result = store.consent_timeline(open_db(settings), settings, customer)
    emit(
        as_json,
        result,
        "\n".join(
            f"decided {h['decided_at']}  recorded {h['changed_at']}  {h['purpose']:16} {h['old']} -> {h['new']}  "
            f"source {h['source']}  actor {h['actor'] or '-'}"
            for h in result["history"]
        )
        or "no consent changes recorded",
    )


@click.command()
@with_settings
@click.argument("customer")
@click.option(
    "--grant",
    multiple=True,
    metavar="PURPOSE",
    help="A purpose the person grants at this sign-up (repeatable); every other purpose is recorded as not granted.",
)
@click.option("--source", required=True, help="Where the sign-up came from (e.g. signup, support); actor cli:SOURCE.")
@click.option("--email", default=None, help="Their email address.")
@click.option("--name", default=None, help="Their name.")
@click.option("--timezone", default="UTC", show_default=True, help="Their IANA time zone.")
@json_option
def resignup(
    settings: Settings,
    customer: str,
    grant: tuple[str, ...],
    source: str,
    email: str | None,
    name: str | None,
    timezone: str,
    as_json: bool,
) -> None:
    """Bring back an erased CUSTOMER who really signs up again.

    Every import and the API refuse an erased id; this is the one explicit way
    back. It removes their tombstone, creates the customer afresh (nothing of
    the erased record returns) and records their consent decided now.
    """
    from recommender.ingest.signup import resignup as sign_up_again

    result = sign_up_again(
        open_db(settings),
        settings,
        customer,
        grant,
        source,
        actor=cli_actor(source),
        email=email,
        name=name,
        timezone=timezone,
    )
    emit(as_json, result, f"{result['customer_id']} signed up again (tombstone removed)\n" + _consent_lines(result))


@click.command()
@with_settings
@click.argument("customer")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when stdin is not a terminal).")
@json_option
def forget(settings: Settings, customer: str, yes: bool, as_json: bool) -> None:
    """Erase CUSTOMER everywhere (tables, model artifacts, registered exports); keeps a salted-hash tombstone.

    The database transaction commits first, so a retrain or export running now
    removes them before it publishes; then every artifact and registered copy
    is rewritten without them and the WAL is truncated.
    """
    from recommender import privacy
    from recommender.cli.common import confirm_or_refuse

    confirm_or_refuse(yes, f"Erase customer {customer} and everything about them? This cannot be undone.")
    result = privacy.forget(open_db(settings), settings, customer)
    emit(
        as_json,
        result,
        f"erased {customer}: removed "
        + ", ".join(f"{n} {t}" for t, n in result["deleted_rows"].items())
        + f"; scrubbed {len(result['models_scrubbed'])} model(s)"
        + f", {len(result.get('copies', {}).get('rows_removed', {}))} export(s)"
        + f"; tombstone {result['tombstone'][:16]}...",
    )


@click.command("export-customer")
@with_settings
@click.argument("customer")
def export_customer(settings: Settings, customer: str) -> None:
    """Print everything held about CUSTOMER as one JSON object (access / portability)."""
    from recommender import privacy

    click.echo(json.dumps(privacy.export(open_db(settings), settings, customer), indent=2, sort_keys=True, default=str))


@click.command()
@with_settings
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=None,
    help="Keep this many days of decision log [default: privacy.retention_days, 90].",
)
@json_option
def prune(settings: Settings, days: int | None, as_json: bool) -> None:
    """Delete decision-log entries older than the retention period."""
    from recommender import privacy

    result = privacy.prune(open_db(settings), settings, days)
    emit(as_json, result, f"deleted {result['deleted']} decision(s) older than {result['before']}")
