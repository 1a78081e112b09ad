"""Helpers every command module shares: settings from --db/--config, --json output, one-line errors."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from recommender import store
from recommender.config import Settings, load_settings
from recommender.errors import RecommenderError

DB_HELP = "SQLite database file [default: $RECOMMENDER_DB or ./recommender.db]."
CONFIG_HELP = "TOML settings file [default: $RECOMMENDER_CONFIG or ./recommender.toml if present]."


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a group's ``--db``/``--config`` for the command below it (``ctx.meta`` is shared down the chain)."""
    if value is not None:
        ctx.meta[f"recommender.{param.name}"] = value
    return value


class EngineGroup(click.Group):
    """A command group: takes ``--db``/``--config`` itself and turns the engine's errors into one line.

    ``recommender --db shop.db stats``, ``recommender import --db shop.db customers f.csv`` and
    ``recommender stats --db shop.db`` mean the same; when both a group and the command name
    one, the command's own (the nearer) wins.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        path = click.Path(dir_okay=False, path_type=Path)
        self.params += [
            click.Option(
                ["--db", "db_path"], type=path, default=None, expose_value=False, callback=_remember, help=DB_HELP
            ),
            click.Option(
                ["--config", "config_path"],
                type=path,
                default=None,
                expose_value=False,
                callback=_remember,
                help=CONFIG_HELP,
            ),
        ]

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RecommenderError as exc:
            raise click.ClickException(str(exc)) from None


def with_settings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--db`` and ``--config`` and hand the command a ready :class:`Settings`."""

    @click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=DB_HELP,
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=CONFIG_HELP,
    )
    @functools.wraps(func)
    def wrapper(db_path: Path | None, config_path: Path | None, **kwargs: Any) -> Any:
        meta = click.get_current_context().meta
        db_path = db_path or meta.get("recommender.db_path")
        config_path = config_path or meta.get("recommender.config_path")
        try:
            settings = load_settings(config_path, overrides={"db": db_path} if db_path else None)
        except RecommenderError as exc:
            raise click.ClickException(str(exc)) from None
        return func(settings=settings, **kwargs)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")


def emit(as_json: bool, payload: dict[str, Any], human: str) -> None:
    if as_json:
        click.echo(json.dumps(payload, sort_keys=True, default=str))
    else:
        click.echo(human)


def open_db(settings: Settings):
    return store.connect(settings.db)


def _stderr_log(enabled: bool):
    def log(message: str) -> None:
        if enabled:
            click.echo(message, err=True)

    return log


def confirm_or_refuse(yes: bool, question: str) -> None:
    """Ask before an irreversible change; without a terminal to ask on, ``--yes`` is required.

    A pipe is not a person: ``echo n | recommender forget C1`` must not erase
    because nobody read the question, so anything but a terminal is refused.
    """
    if yes:
        return
    import sys

    if not sys.stdin.isatty():
        raise click.ClickException("this cannot be undone and stdin is not a terminal to confirm on: pass --yes")
    click.confirm(question, abort=True, err=True)
