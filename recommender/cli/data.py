"""Getting data in and out: init, the demo shop, CSV imports, raw order exports, counts, Parquet export."""

from __future__ import annotations

from pathlib import Path

import click

from recommender import store
from recommender.campaigns import firstweek
from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings
from recommender.ingest import customermap, imports


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
    emit(
        as_json,
        {"db": str(settings.db), "schema_version": version},
        f"database {settings.db} ready (schema version {version})",
    )


def _summary(result: imports.ImportResult) -> str:
    """One line that adds up: ``N rows = a new + b updated + c unchanged + d merged ... + e skipped``,
    then the skipped rows by reason, what the file created, and the time."""
    changed = "decisions recorded" if result.kind == "consents" else "updated"
    terms = [(result.new, "new") if result.kind != "consents" else (result.changed, changed)]
    if result.kind != "consents":
        terms.append((result.changed, changed))
    terms += [(result.unchanged, "unchanged"), (result.merged, "merged into an earlier line (same key)")]
    shown = [f"{n:,} {label}" for i, (n, label) in enumerate(terms) if n or i == 0]
    skipped = {k: v for k, v in result.skipped.items() if v or k == "erased"}
    if skipped:
        shown.append(f"{sum(result.skipped.values()):,} skipped")
    parts = [f"{result.kind} from {result.file}: {result.rows:,} rows = " + " + ".join(shown)]
    if skipped:
        parts.append("skipped " + " + ".join(f"{k}={v:,}" for k, v in skipped.items()))
    if result.created:
        parts.append("created " + ", ".join(f"{n:,} {name}" for name, n in result.created.items()))
    parts.append(f"{result.seconds:.1f} s")
    return "; ".join(parts)


@click.command("load-sample")
@with_settings
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with the sample CSVs [default: the bundled sample_data/].",
)
@json_option
def load_sample(settings: Settings, directory: Path | None, as_json: bool) -> None:
    """Load the bundled demo shop: customers, products, events and consents."""
    db = open_db(settings)
    results = imports.load_sample(db, settings, directory)
    emit(
        as_json,
        {"imports": [r.to_dict() for r in results], "counts": store.counts(db)},
        "\n".join(_summary(r) for r in results),
    )


@click.group("import", cls=EngineGroup)
def import_group() -> None:
    """Import a CSV (or .csv.gz) of customers, products, interactions or consents.

    Every row is validated first; one bad row fails the whole file with
    FILE:LINE: reason and nothing is written. Re-importing a file is harmless.
    The summary counts every row once: rows = new + updated + unchanged +
    merged + skipped (by reason); --json gives the same numbers under "outcomes".

    Files are UTF-8, comma-separated, one record per line; ids up to 200
    characters; times from 1970 to 2100 and not in the future (beyond
    time.max_future_seconds). Late and out-of-order events are accepted.
    """


SKIP_ERASED_HELP = (
    "Leave out lines of erased customers and count them (skipped erased=N), e.g. when "
    "re-importing a full export made before an erasure. Without it such lines fail the file."
)


def _make_import_command(kind: str, columns: str) -> None:
    erasable = kind != "products"
    extra = " Lines of erased customers fail the file unless --skip-erased." if erasable else ""
    extra += (
        " A row older than the current decision (updated_at = when the customer decided) is skipped as stale."
        if kind == "consents"
        else ""
    )

    extra += CUSTOMERS_MAP_DOC if kind == "customers" else ""

    @import_group.command(kind, help=f"Import {kind}. Columns: {columns}.{extra}")
    @with_settings
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @json_option
    def command(
        settings: Settings, file: Path, as_json: bool, skip_erased: bool = False, mapping: str | None = None
    ) -> None:
        db = open_db(settings)
        if mapping is not None:
            result = customermap.import_customers(
                db,
                file,
                settings,
                customermap.parse_customer_mapping(mapping, settings),
                progress=not as_json,
                skip_erased=skip_erased,
            )
            emit(as_json, result.to_dict(), _customers_summary(result))
            return
        result = imports.import_file(db, kind, file, settings, progress=not as_json, skip_erased=skip_erased)
        emit(as_json, result.to_dict(), _summary(result))

    if erasable:
        click.option("--skip-erased", is_flag=True, help=SKIP_ERASED_HELP)(command)
    if kind == "customers":
        click.option("--map", "mapping", default=None, metavar="PRESET,FIELD=COLUMN,...", help=CUSTOMERS_MAP_HELP)(
            command
        )


CUSTOMERS_MAP_DOC = (
    " With --map, a shop system's customer export: a preset (shopify, woocommerce, magento) "
    "and/or field=Column pairs; consent columns (marketing=Accepts Email Marketing) are "
    "recorded with the file as source."
)
CUSTOMERS_MAP_HELP = (
    "Read a shop system's customer export: a preset (shopify, woocommerce, magento) and/or "
    "field=Column pairs over it, e.g. 'shopify,birth_date=Birthday'. Fields: id, email, name "
    "(join columns with +: First Name+Last Name), birth_date, anniversary_date, timezone, "
    "created_at, and a consent purpose (marketing=Accepts Email Marketing: yes/true/1/"
    "subscribed grants, no/false/0/unsubscribed refuses, blank or pending records nothing). "
    "Presets key customers by e-mail; see docs/operations.md."
)


def _customers_summary(result: customermap.CustomerImportResult) -> str:
    text = _summary(result)
    used = ", ".join(f"{f}={c}" for f, c in result.columns.items())
    consent = "; ".join(f"{p}: {v['granted']:,} granted, {v['refused']:,} refused" for p, v in result.consents.items())
    if result.stale_consent:
        consent += (
            f"; {result.stale_consent:,} older than a decision recorded since the file was written "
            "(the later decision stays)"
        )
    return "\n".join(x for x in (text, f"columns: {used}", f"consent from the file: {consent}" if consent else "") if x)


_make_import_command("customers", "id (required), email, name, birth_date, anniversary_date, timezone, created_at")
_make_import_command("products", "id, name (required), category, price, in_stock, hidden, available_until")
_make_import_command("interactions", "customer_id, product_id, event_type, occurred_at (required), quantity")
_make_import_command("consents", "customer_id, purpose, granted (required), updated_at, source")


@click.command("import-transactions")
@with_settings
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "mapping",
    default=None,
    metavar="FIELD=COLUMN,...",
    help="Column mapping over the defaults customer=CustomerID, product=StockCode, "
    "quantity=Quantity, occurred_at=InvoiceDate, price=UnitPrice, name=Description, "
    "order=InvoiceNo. An empty column (price=) ignores that field.",
)
@click.option(
    "--grant",
    multiple=True,
    metavar="PURPOSE",
    help="Record this consent (source 'import') for every customer in the file with no decision yet "
    "for it (a refusal or withdrawal stays); only where the shop's terms allow it. Repeatable.",
)
@click.option("--skip-erased", is_flag=True, help=SKIP_ERASED_HELP)
@json_option
def import_transactions(
    settings: Settings,
    file: Path,
    mapping: str | None,
    grant: tuple[str, ...],
    as_json: bool,
    skip_erased: bool = False,
) -> None:
    """Import a raw order export as customers, products and purchase events.

    Cancelled lines, lines without a customer and zero-quantity lines are
    skipped and counted. Lines of erased customers fail the file unless
    --skip-erased. The summary counts every line once and adds up:
    rows = new + updated + unchanged + merged (a line repeating an earlier
    line's customer, product and second: its quantity is added) + skipped
    by reason; --json gives the same numbers under "outcomes".
    """
    db = open_db(settings)
    result = imports.import_transactions(
        db,
        file,
        settings,
        mapping=imports.parse_mapping(mapping),
        grant=grant,
        progress=not as_json,
        skip_erased=skip_erased,
    )
    payload, hints = result.to_dict(), _first_week_hints(db, settings)
    payload.update(hints)
    emit(as_json, payload, _summary(result))
    for line in hints.values():
        if line and not as_json:  # with --json the hints are fields of the one object
            click.echo(f"note: {line}", err=True)


def _first_week_hints(db, settings: Settings) -> dict[str, str]:
    """What the shop still lacks after an order import: customer data for campaigns, consent for training."""
    counts = firstweek.counts(db, settings)
    return {
        "missing_for_campaigns": firstweek.customer_file_hint(counts),
        "missing_for_training": firstweek.consent_hint(counts),
    }


@click.command()
@with_settings
@json_option
def checklist(settings: Settings, as_json: bool) -> None:
    """The first week, step by step: data in, consent, model, first campaign, measurement on.

    Each step says what is there or what is missing, and the command (or console page) that fixes it;
    the console's overview shows the same list until every step is done.
    """
    result = firstweek.checklist(open_db(settings), settings)
    lines = []
    for step in result.steps:
        lines.append(f"[{'x' if step.done else ' '}] {step.title}: {step.status}")
        if step.fix:
            lines.append(
                f"      fix: {step.fix}"
                + (f" (or in the console, {step.page_label}: {step.page})" if step.page else "")
            )
    lines.append("all done" if result.done else f"{sum(not s.done for s in result.steps)} step(s) to go")
    emit(as_json, result.to_dict(), "\n".join(lines))


@click.command()
@with_settings
@json_option
def stats(settings: Settings, as_json: bool) -> None:
    """Row counts: the shop's data first, then the engine's own bookkeeping."""
    db = open_db(settings)
    counts = store.counts(db)
    emit(as_json, counts, stats_text(counts))


# What a shop recognises as its data, in the order a shop thinks of it; every other table is bookkeeping.
SHOP_TABLES = {
    "customers": "customers",
    "products": "products",
    "interactions": "events",
    "consents": "consent decisions",
    "offers": "offers",
    "decisions": "lists and offers served",
    "models": "models",
    "api_keys": "API keys",
}


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
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["parquet"]),
    default="parquet",
    show_default=True,
    help="File format (Parquet, one folder per month of event time).",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Apply only what changed since the export in OUT (new rows by insertion order, quantity "
    "changes, consent grants; withdrawn and erased customers' files rewritten) instead of "
    "rewriting it whole.",
)
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
    from recommender.data import bulk, exports

    with bulk.terminate_cleanly():  # SIGTERM/SIGHUP: the staging folder and scratch files are removed
        result = exports.export_interactions(open_db(settings), settings, out, format=fmt, incremental=incremental)
    emit(
        as_json,
        result,
        f"exported {result['rows']:,} interactions of {result['customers']:,} customers "
        f"in {len(result['months'])} month(s) to {result['path']} ({result['mode']}: "
        f"{result['appended']:,} new rows; {result['seconds']:.1f} s)",
    )
