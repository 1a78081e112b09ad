"""The ``recommender`` command: a thin face over the library.

Each subcommand parses its options, calls one domain function and prints the
result (a short human summary, or one JSON object with ``--json``). Every
engine error becomes ``Error: <one line>`` and exit status 1.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__, imports, store
from .config import Settings, load_settings
from .errors import RecommenderError


class EngineGroup(click.Group):
    """Turns the engine's own errors into a one-line message and a non-zero exit."""

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
        help="SQLite database file [default: $RECOMMENDER_DB or ./recommender.db].",
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML settings file [default: $RECOMMENDER_CONFIG or ./recommender.toml if present].",
    )
    @functools.wraps(func)
    def wrapper(db_path: Path | None, config_path: Path | None, **kwargs: Any) -> Any:
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


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="recommender")
def cli() -> None:
    """Consent-aware product recommendations for shops.

    Typical first run: init, load-sample (or import your own CSVs), train
    --publish, serve.
    """


@cli.command()
@with_settings
@json_option
def init(settings: Settings, as_json: bool) -> None:
    """Create the database (or migrate it to the current schema)."""
    db = open_db(settings)
    version = store.schema_version(db)
    emit(as_json, {"db": str(settings.db), "schema_version": version},
         f"database {settings.db} ready (schema version {version})")


def _summary(result: imports.ImportResult) -> str:
    parts = [f"{result.kind} from {result.file}: {result.rows} rows"]
    if result.kind == "consents":
        parts.append(f"{result.changed} changes")
    else:
        parts.append(f"{result.new} new")
    for name, n in result.created.items():
        parts.append(f"{n} {name} created")
    skipped = {k: v for k, v in result.skipped.items() if v}
    if skipped:
        parts.append("skipped " + ", ".join(f"{k}={v}" for k, v in skipped.items()))
    parts.append(f"{result.seconds:.1f} s")
    return "; ".join(parts)


@cli.command("load-sample")
@with_settings
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder with the sample CSVs [default: the bundled sample_data/].")
@json_option
def load_sample(settings: Settings, directory: Path | None, as_json: bool) -> None:
    """Load the bundled demo shop: customers, products, events and consents."""
    db = open_db(settings)
    results = imports.load_sample(db, settings, directory)
    emit(as_json, {"imports": [r.to_dict() for r in results], "counts": store.counts(db)},
         "\n".join(_summary(r) for r in results))


@cli.group("import", cls=EngineGroup)
def import_group() -> None:
    """Import a CSV (or .csv.gz) of customers, products, interactions or consents.

    Every row is validated first; one bad row fails the whole file with
    FILE:LINE: reason and nothing is written. Re-importing a file is harmless.
    """


def _make_import_command(kind: str, columns: str) -> None:
    @import_group.command(kind, help=f"Import {kind}. Columns: {columns}.")
    @with_settings
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @json_option
    def command(settings: Settings, file: Path, as_json: bool) -> None:
        db = open_db(settings)
        result = imports.import_file(db, kind, file, settings, progress=not as_json)
        emit(as_json, result.to_dict(), _summary(result))


_make_import_command("customers", "id (required), email, name, birth_date, anniversary_date, timezone, created_at")
_make_import_command("products", "id, name (required), category, price, in_stock, hidden, available_until")
_make_import_command("interactions", "customer_id, product_id, event_type, occurred_at (required), quantity")
_make_import_command("consents", "customer_id, purpose, granted (required), updated_at, source")


@cli.command("import-transactions")
@with_settings
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "mapping", default=None, metavar="FIELD=COLUMN,...",
              help="Column mapping over the defaults customer=CustomerID, product=StockCode, "
                   "quantity=Quantity, occurred_at=InvoiceDate, price=UnitPrice, name=Description, "
                   "order=InvoiceNo. An empty column (price=) ignores that field.")
@click.option("--grant", multiple=True, metavar="PURPOSE",
              help="Record this consent (source 'import') for every customer the file creates. Repeatable.")
@json_option
def import_transactions(settings: Settings, file: Path, mapping: str | None, grant: tuple[str, ...], as_json: bool) -> None:
    """Import a raw order export as customers, products and purchase events.

    Cancelled lines, lines without a customer and zero-quantity lines are
    skipped and counted.
    """
    db = open_db(settings)
    result = imports.import_transactions(
        db, file, settings, mapping=imports.parse_mapping(mapping), grant=grant, progress=not as_json
    )
    emit(as_json, result.to_dict(), _summary(result))


@cli.command()
@with_settings
@json_option
def stats(settings: Settings, as_json: bool) -> None:
    """Row counts of every table."""
    db = open_db(settings)
    counts = store.counts(db)
    emit(as_json, counts, "\n".join(f"{k:14} {v:>10,}" for k, v in counts.items()))


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="recommender")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
