"""``recommender rules``: merchandising rules from files kept under version control (docs/rules.md)."""

from __future__ import annotations

import getpass

import click

from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings


def _actor(source: str | None) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{source or user}"


@click.group("rules", cls=EngineGroup)
def rules() -> None:
    """Merchandising rules: boost, bury, pin, promote, exclude, include-only, rotate (docs/rules.md)."""


@rules.command("list")
@json_option
@with_settings
def list_rules(settings: Settings, as_json: bool) -> None:
    """Every rule with its status, surfaces and action."""
    from recommender.serving import merchandising

    db = open_db(settings)
    try:
        found = merchandising.list_rules(db)
    finally:
        db.conn.close()
    lines = [
        f"{r['name']:<28} {r['status']:<7} {r['action']['type']:<12} {','.join(r['surfaces'])}" for r in found
    ] or ["no rules"]
    emit(as_json, {"rules": found}, "\n".join(lines))


# Who makes a change, for the audit: every command that changes a rule takes it.
actor_option = click.option(
    "--actor",
    "source",
    default=None,
    metavar="NAME",
    help="Who makes the change, for the audit [default: the user running the command].",
)


@rules.command("add")
@click.argument("file", type=click.Path(dir_okay=False))
@actor_option
@json_option
@with_settings
def add(settings: Settings, file: str, source: str | None, as_json: bool) -> None:
    """Create or update the rules of a JSON (or YAML, with PyYAML) file: one rule, a list, or {"rules": [...]}.

    Every rule is checked before any is written; a rule equal to the stored one is left alone.
    """
    from recommender.serving import merchandising
    from recommender.serving.rules import parse_rule

    items = merchandising.load_file(file)
    for item in items:
        parse_rule(item)  # all or nothing: a bad rule anywhere in the file changes nothing
    db = open_db(settings)
    out = []
    try:
        for item in items:
            rule, warnings, what = merchandising.upsert_rule(db, item, _actor(source))
            out.append({"name": rule["name"], "result": what, "warnings": warnings})
    finally:
        db.conn.close()
    lines = [f"{r['name']}: {r['result']}" + "".join(f"\n  warning: {w}" for w in r["warnings"]) for r in out]
    emit(as_json, {"rules": out}, "\n".join(lines))


def _status_command(name: str, status: str, doc: str):
    @rules.command(name)
    @click.argument("rule_name", metavar="NAME")
    @actor_option
    @json_option
    @with_settings
    def command(settings: Settings, rule_name: str, source: str | None, as_json: bool) -> None:
        from recommender.serving import merchandising

        db = open_db(settings)
        try:
            rule = merchandising.set_status(db, rule_name, status, _actor(source))
        finally:
            db.conn.close()
        emit(as_json, rule, f"{rule_name}: {status}")

    command.__doc__ = doc
    command.help = doc
    return command


pause = _status_command("pause", "paused", "Pause a rule: it stops applying from every worker's next request.")
resume = _status_command("resume", "active", "Resume a paused rule.")


@rules.command("remove")
@click.argument("rule_name", metavar="NAME")
@actor_option
@json_option
@with_settings
def remove(settings: Settings, rule_name: str, source: str | None, as_json: bool) -> None:
    """Delete a rule (the audit keeps what it was)."""
    from recommender.serving import merchandising

    db = open_db(settings)
    try:
        merchandising.delete_rule(db, rule_name, _actor(source))
    finally:
        db.conn.close()
    emit(as_json, {"deleted": rule_name}, f"{rule_name}: removed")
