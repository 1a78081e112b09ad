"""Getting data in and out: init, the demo shop, CSV imports, raw order exports, counts, Parquet export."""

from __future__ import annotations

from pathlib import Path

import click

from recommender import store
from recommender.ingest import imports
from recommender.config import Settings
from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings


@click.command()
@with_settings
@json_option
def init(settings: Settings, as_json: bool) -> None:
    """Create the database (or migrate it to the current schema).

    The only command that creates a database; every other one refuses a path
    that does not exist, so a typo in --db cannot start an empty shop.
    """
    db = store.connect(settings.db, create=True)
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
    skipped = {k: v for k, v in result.skipped.items() if v or k == "erased"}
    if skipped:
        parts.append("skipped " + ", ".join(f"{k}={v}" for k, v in skipped.items()))
    parts.append(f"{result.seconds:.1f} s")
    return "; ".join(parts)


@click.command("load-sample")
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


@click.group("import", cls=EngineGroup)
def import_group() -> None:
    """Import a CSV (or .csv.gz) of customers, products, interactions or consents.

    Every row is validated first; one bad row fails the whole file with
    FILE:LINE: reason and nothing is written. Re-importing a file is harmless.

    Files are UTF-8, comma-separated, one record per line; ids up to 200
    characters; times from 1970 to 2100 and not in the future (beyond
    time.max_future_seconds). Late and out-of-order events are accepted.
    """


SKIP_ERASED_HELP = ("Leave out lines of erased customers and count them (skipped erased=N), e.g. when "
                    "re-importing a full export made before an erasure. Without it such lines fail the file.")


def _make_import_command(kind: str, columns: str) -> None:
    erasable = kind != "products"
    extra = (" Lines of erased customers fail the file unless --skip-erased." if erasable else "")
    extra += (" A row older than the current decision (updated_at = when the customer decided) is skipped "
              "as stale." if kind == "consents" else "")

    @import_group.command(kind, help=f"Import {kind}. Columns: {columns}.{extra}")
    @with_settings
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @json_option
    def command(settings: Settings, file: Path, as_json: bool, skip_erased: bool = False) -> None:
        db = open_db(settings)
        result = imports.import_file(db, kind, file, settings, progress=not as_json, skip_erased=skip_erased)
        emit(as_json, result.to_dict(), _summary(result))

    if erasable:
        click.option("--skip-erased", is_flag=True, help=SKIP_ERASED_HELP)(command)


_make_import_command("customers", "id (required), email, name, birth_date, anniversary_date, timezone, created_at")
_make_import_command("products", "id, name (required), category, price, in_stock, hidden, available_until")
_make_import_command("interactions", "customer_id, product_id, event_type, occurred_at (required), quantity")
_make_import_command("consents", "customer_id, purpose, granted (required), updated_at, source")


@click.command("import-transactions")
@with_settings
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--map", "mapping", default=None, metavar="FIELD=COLUMN,...",
              help="Column mapping over the defaults customer=CustomerID, product=StockCode, "
                   "quantity=Quantity, occurred_at=InvoiceDate, price=UnitPrice, name=Description, "
                   "order=InvoiceNo. An empty column (price=) ignores that field.")
@click.option("--grant", multiple=True, metavar="PURPOSE",
              help="Record this consent (source 'import') for every customer the file creates. Repeatable.")
@click.option("--skip-erased", is_flag=True, help=SKIP_ERASED_HELP)
@json_option
def import_transactions(settings: Settings, file: Path, mapping: str | None, grant: tuple[str, ...], as_json: bool,
                        skip_erased: bool = False) -> None:
    """Import a raw order export as customers, products and purchase events.

    Cancelled lines, lines without a customer and zero-quantity lines are
    skipped and counted. Lines of erased customers fail the file unless
    --skip-erased.
    """
    db = open_db(settings)
    result = imports.import_transactions(
        db, file, settings, mapping=imports.parse_mapping(mapping), grant=grant, progress=not as_json,
        skip_erased=skip_erased,
    )
    emit(as_json, result.to_dict(), _summary(result))


@click.command()
@with_settings
@json_option
def stats(settings: Settings, as_json: bool) -> None:
    """Row counts: the shop's data first, then the engine's own bookkeeping."""
    db = open_db(settings)
    counts = store.counts(db)
    emit(as_json, counts, stats_text(counts))


# What a shop recognises as its data, in the order a shop thinks of it; every other table is bookkeeping.
SHOP_TABLES = {"customers": "customers", "products": "products", "interactions": "events",
               "consents": "consent decisions", "offers": "offers", "decisions": "lists and offers served",
               "models": "models", "api_keys": "API keys"}


def stats_text(counts: dict[str, int]) -> str:
    """Two aligned blocks (labels padded to the longest, counts right-aligned with separators)."""
    shop = [(label, counts[table]) for table, label in SHOP_TABLES.items() if table in counts]
    engine = [(table, n) for table, n in counts.items() if table not in SHOP_TABLES]
    width = max(len(label) for label, _ in [*shop, *engine])
    digits = max(len(f"{n:,}") for _, n in [*shop, *engine])

    def block(rows: list[tuple[str, int]]) -> list[str]:
        return [f"  {label:<{width}}  {n:>{digits},}" for label, n in rows]

    return "\n".join(["shop data", *block(shop), "engine bookkeeping", *block(engine)])


@click.command("export-interactions")
@with_settings
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet"]), default="parquet", show_default=True,
              help="File format (Parquet, one folder per month of event time).")
@click.option("--incremental", is_flag=True,
              help="Apply only what changed since the export in OUT (new rows by insertion order, quantity "
                   "changes, consent grants; withdrawn and erased customers' files rewritten) instead of "
                   "rewriting it whole.")
@json_option
def export_interactions(settings: Settings, out: Path, fmt: str, incremental: bool, as_json: bool) -> None:
    """Write the consent-filtered, weighted interactions to the folder OUT for a Spark cluster.

    Only customers with personalization consent are exported, exactly the
    events training uses. Put OUT on storage the cluster reads and train with
    `recommender train --engine spark --interactions OUT`. An earlier export
    in OUT is replaced (with --incremental: brought up to date in place);
    any other existing non-empty OUT is refused. The
    export is registered as a copy: erasing a customer later rewrites it
    without their rows.
    """
    from recommender.data import exports

    from recommender.data import bulk

    with bulk.terminate_cleanly():  # SIGTERM/SIGHUP: the staging folder and scratch files are removed
        result = exports.export_interactions(open_db(settings), settings, out, format=fmt, incremental=incremental)
    emit(as_json, result, f"exported {result['rows']:,} interactions of {result['customers']:,} customers "
                          f"in {len(result['months'])} month(s) to {result['path']} ({result['mode']}: "
                          f"{result['appended']:,} new rows; {result['seconds']:.1f} s)")
