"""The ``recommender`` command: a thin face over the library.

Each subcommand parses its options, calls one domain function and prints the
result (a short human summary, or one JSON object with ``--json``). Every
engine error becomes ``Error: <one line>`` and exit status 1.
"""

from __future__ import annotations

import dataclasses
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


def _stderr_log(enabled: bool):
    def log(message: str) -> None:
        if enabled:
            click.echo(message, err=True)

    return log


def engine_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--engine`` plus the Spark engine's options, handed to the command as ``engine_options``."""

    @click.option("--engine", type=click.Choice(["implicit", "spark"]), default="implicit", show_default=True,
                  help="Training engine.")
    @click.option("--spark-master", default=None, metavar="URL",
                  help="With --engine spark: local[*], spark://host:7077, yarn, ... [default: local[*]].")
    @click.option("--spark-conf", multiple=True, metavar="KEY=VALUE",
                  help="With --engine spark: a Spark setting (repeatable), e.g. spark.executor.memory=8g.")
    @click.option("--interactions", "interactions_path", default=None, metavar="PATH",
                  help="With --engine spark: the Parquet written by export-interactions, read by the cluster.")
    @functools.wraps(func)
    def wrapper(engine: str, spark_master: str | None, spark_conf: tuple[str, ...], interactions_path: str | None,
                **kwargs: Any) -> Any:
        options: dict[str, Any] = {}
        if engine == "spark":
            conf = {}
            for item in spark_conf:
                if "=" not in item:
                    raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--spark-conf")
                key, value = item.split("=", 1)
                conf[key.strip()] = value.strip()
            options = {"master": spark_master, "conf": conf, "interactions_path": interactions_path}
        elif spark_master or spark_conf or interactions_path:
            raise click.BadParameter("only with --engine spark", param_hint="--spark-*")
        return func(engine=engine, engine_options=options, **kwargs)

    return wrapper


def _metrics_table(payload: dict[str, Any]) -> str:
    k = payload["k"]
    lines = [f"{'':12}{'precision':>11}{'recall':>9}{'ndcg':>9}{'map':>9}{'coverage':>10}   @{k}, {payload['users']:,} customers"]
    for name in ("model", "popularity"):
        m = payload[name]
        lines.append(f"{name:12}{m['precision']:>11.4f}{m['recall']:>9.4f}{m['ndcg']:>9.4f}{m['map']:>9.4f}{m['coverage']:>10.4f}")
    return "\n".join(lines)


@cli.command()
@with_settings
@engine_option
@click.option("--publish", is_flag=True, help="Publish the new model if it passes the release gate.")
@click.option("--force", is_flag=True, help="With --publish: publish even if the gate refuses.")
@json_option
def train(settings: Settings, engine: str, engine_options: dict[str, Any], publish: bool, force: bool,
          as_json: bool) -> None:
    """Retrain: build the matrix, fit, evaluate, gate, and (with --publish) publish.

    The release gate publishes only a model whose NDCG@k is above the
    popularity baseline's and at least the current model's; a refusal exits
    with status 1 and both numbers, and the current model keeps serving.
    """
    from . import training

    db = open_db(settings)
    result = training.train(db, settings, engine=engine, publish=publish, force=force,
                            progress=not as_json and sys.stderr.isatty(), log=_stderr_log(not as_json),
                            engine_options=engine_options)
    state = "published" if result.published else f"saved as candidate (gate: {result.gate or 'would publish'})"
    emit(as_json, result.to_dict(),
         f"model {result.version} {state}\n{_metrics_table(result.metrics)}\n{result.seconds['total']:.1f} s")


@cli.command()
@with_settings
@engine_option
@click.option("--k", "k", type=click.IntRange(1, 100), default=None, help="Cut-off of the ranking metrics [default: 10].")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write report.md, metrics.json and a plot of the metrics at k = 1..20 to this folder.")
@json_option
def evaluate(settings: Settings, engine: str, engine_options: dict[str, Any], k: int | None,
             report_dir: Path | None, as_json: bool) -> None:
    """Score the current settings on the temporal split, next to the popularity baseline."""
    from . import report, training

    if k is not None:
        settings.evaluation.k = k
    db = open_db(settings)
    result = training.evaluate(db, settings, engine=engine, progress=not as_json and sys.stderr.isatty(),
                               curve_k=20 if report_dir else 0, log=_stderr_log(not as_json),
                               engine_options=engine_options)
    payload = result.payload
    human = _metrics_table(payload)
    if report_dir:
        written = report.write(report_dir, payload, result.curves)
        payload = {**payload, "report": str(written)}
        human += f"\nreport: {written}"
    emit(as_json, payload, human)


@cli.command()
@with_settings
@engine_option
@click.option("--trials", type=click.IntRange(1, 500), default=24, show_default=True,
              help="Candidates to try (the first is the current settings).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random search.")
@click.option("--max-seconds", type=click.FloatRange(min=1), default=None, help="Stop after this much time.")
@click.option("--write", "write_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the chosen settings as TOML to this file (use it with --config or as recommender.toml).")
@json_option
def tune(settings: Settings, engine: str, engine_options: dict[str, Any], trials: int, seed: int,
         max_seconds: float | None, write_path: Path | None, as_json: bool) -> None:
    """Search hyper-parameters on a validation split carved from the training period only.

    The test period of `recommender evaluate` is never looked at, so its
    numbers stay honest after tuning.
    """
    from . import config, tuning

    db = open_db(settings)
    best, trials_run, cut = tuning.tune(db, settings, trials=trials, seed=seed, engine=engine,
                                        max_seconds=max_seconds, log=_stderr_log(not as_json),
                                        engine_options=engine_options)
    toml_text = config.to_toml(best)
    if write_path:
        write_path.write_text(toml_text)
    ranked = sorted(trials_run, key=lambda t: -t.ndcg)
    payload = {
        "best": {"als": dataclasses.asdict(best.als), "event_weights": best.event_weights},
        "validation_ndcg": ranked[0].ndcg,
        "baseline_validation_ndcg": trials_run[0].ndcg,
        "validation_cut_time": cut,
        "trials": [dataclasses.asdict(t) for t in trials_run],
        "written": str(write_path) if write_path else None,
    }
    human = (f"best validation NDCG@{settings.evaluation.k} {ranked[0].ndcg:.4f} "
             f"(current settings {trials_run[0].ndcg:.4f}, {len(trials_run)} trials)\n" + toml_text)
    if write_path:
        human += f"written to {write_path}"
    emit(as_json, payload, human.rstrip())


@cli.command()
@with_settings
@click.option("--customer", default=None,
              help="Also say, per model, whether this customer was in its training data.")
@json_option
def models(settings: Settings, customer: str | None, as_json: bool) -> None:
    """List trained models: status, metrics and the consent snapshot each was trained under."""
    from . import privacy, registry

    db = open_db(settings)
    rows = registry.list_models(db)
    current = registry.Registry(settings.model_dir).current_version()
    trained_on = set(privacy.models_containing(settings, customer)) if customer else set()
    for row in rows:
        row["current"] = row["version"] == current
        if customer:
            row["trained_on_customer"] = row["version"] in trained_on
    lines = [f"{'version':28}{'status':11}{'engine':10}{'ndcg':>8}{'customers':>11}"
             + (f"  trained on {customer}" if customer else "")]
    for r in rows:
        ndcg = r["metrics"].get("model", {}).get("ndcg")
        lines.append(f"{r['version'] + (' *' if r['current'] else ''):28}{r['status']:11}{r['engine']:10}"
                     f"{(ndcg if ndcg is not None else float('nan')):>8.4f}{r['consent_snapshot'].get('customers', 0):>11,}"
                     + (("  yes" if r["trained_on_customer"] else "  no") if customer else ""))
    emit(as_json, {"current": current, "customer": customer, "models": rows}, "\n".join(lines))


@cli.command()
@with_settings
@click.option("--host", default=None, help="Interface to bind [default: serve.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port [default: serve.port, 8000].")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="gunicorn worker processes [default: serve.workers, or min(2 x cores + 1, 8)].")
def serve(settings: Settings, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API with gunicorn (needs the serve extra: pip install -e '.[serve]').

    With no API key created the API is open (demo mode) and says so; create
    one with `recommender keys create --role admin`.
    """
    from api import server

    db = open_db(settings)
    if store.live_api_keys(db) == 0:
        click.echo("WARNING: no API keys exist, so the API is OPEN to anyone who can reach it (demo mode).\n"
                   "         Create one with: recommender keys create --role admin", err=True)
    db.conn.close()
    n = workers or settings.serve.workers or server.default_workers()
    click.echo(f"serving on http://{host or settings.serve.host}:{port or settings.serve.port} with {n} workers "
               f"(docs at /docs)", err=True)
    server.run(settings, host or settings.serve.host, port or settings.serve.port, n)


@cli.group(cls=EngineGroup)
def keys() -> None:
    """Manage API keys (roles: read < write < admin)."""


@keys.command("create")
@with_settings
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True, help="What the key may do.")
@click.option("--name", default="", help="A label, e.g. the storefront that uses it.")
@json_option
def keys_create(settings: Settings, role: str, name: str, as_json: bool) -> None:
    """Create a key and print it once; only its hash is stored."""
    from . import keys as api_keys

    key_id, token = api_keys.create(open_db(settings), role, name or role)
    emit(as_json, {"id": key_id, "role": role, "key": token},
         f"{token}\n(key {key_id}, role {role}: store it now, it cannot be shown again)")


@keys.command("list")
@with_settings
@json_option
def keys_list(settings: Settings, as_json: bool) -> None:
    """List keys (never their secrets)."""
    from . import keys as api_keys

    rows = api_keys.listing(open_db(settings))
    emit(as_json, {"keys": rows}, "\n".join(
        f"{r['id']:>4}  {r['role']:6} {r['name']:24} created {r['created_at']}"
        + (f"  revoked {r['revoked_at']}" if r["revoked_at"] else "") for r in rows) or "no keys (the API runs open)")


@keys.command("revoke")
@with_settings
@click.argument("key_id", type=int)
def keys_revoke(settings: Settings, key_id: int) -> None:
    """Revoke a key by id; it stops working within seconds in every worker."""
    from . import keys as api_keys

    api_keys.revoke(open_db(settings), key_id)
    click.echo(f"key {key_id} revoked")


@cli.group(cls=EngineGroup)
def consent() -> None:
    """Show and change consent per customer and purpose (every change is logged)."""


@consent.command("set")
@with_settings
@click.argument("customer")
@click.argument("purpose")
@click.argument("state", type=click.Choice(["granted", "withdrawn"]))
@click.option("--source", default="cli", show_default=True, help="Who or what made the change (kept in the log).")
@json_option
def consent_set(settings: Settings, customer: str, purpose: str, state: str, source: str, as_json: bool) -> None:
    """Grant or withdraw PURPOSE for CUSTOMER; effective on their next request."""
    from . import consent as consents

    result = consents.set_consents(open_db(settings), settings, customer, {purpose: state == "granted"}, source)
    emit(as_json, result, _consent_lines(result))


def _consent_lines(result: dict[str, Any]) -> str:
    return "\n".join(f"{p:16} {'granted' if c['granted'] else 'not granted':12} "
                     f"{(c['source'] or '-'):18} {c['updated_at'] or '(never recorded)'}"
                     for p, c in result["consents"].items())


@consent.command("show")
@with_settings
@click.argument("customer")
@json_option
def consent_show(settings: Settings, customer: str, as_json: bool) -> None:
    """Every configured purpose for CUSTOMER (unrecorded = not granted)."""
    from . import consent as consents

    result = consents.current(open_db(settings), settings, customer)
    emit(as_json, result, _consent_lines(result))


@consent.command("history")
@with_settings
@click.argument("customer")
@json_option
def consent_history(settings: Settings, customer: str, as_json: bool) -> None:
    """Every consent change of CUSTOMER, oldest first."""
    from . import consent as consents

    result = consents.history(open_db(settings), settings, customer)
    emit(as_json, result, "\n".join(f"{h['changed_at']}  {h['purpose']:16} {h['old']} -> {h['new']}  ({h['source']})"
                                     for h in result["history"]) or "no consent changes recorded")


@cli.command()
@with_settings
@click.argument("customer")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def forget(settings: Settings, customer: str, yes: bool, as_json: bool) -> None:
    """Erase CUSTOMER everywhere (tables and model artifacts); keeps a salted-hash tombstone."""
    from . import privacy

    if not yes and not as_json and sys.stdin.isatty():
        click.confirm(f"Erase customer {customer} and everything about them?", abort=True)
    result = privacy.forget(open_db(settings), settings, customer)
    emit(as_json, result, f"erased {customer}: removed " + ", ".join(f"{n} {t}" for t, n in result["deleted_rows"].items())
         + f"; scrubbed {len(result['models_scrubbed'])} model(s); tombstone {result['tombstone'][:16]}...")


@cli.command("export-customer")
@with_settings
@click.argument("customer")
def export_customer(settings: Settings, customer: str) -> None:
    """Print everything held about CUSTOMER as one JSON object (access / portability)."""
    from . import privacy

    click.echo(json.dumps(privacy.export(open_db(settings), settings, customer), indent=2, sort_keys=True, default=str))


@cli.command()
@with_settings
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Keep this many days of decision log [default: privacy.retention_days, 90].")
@json_option
def prune(settings: Settings, days: int | None, as_json: bool) -> None:
    """Delete decision-log entries older than the retention period."""
    from . import privacy

    result = privacy.prune(open_db(settings), settings, days)
    emit(as_json, result, f"deleted {result['deleted']} decision(s) older than {result['before']}")


@cli.command("export-interactions")
@with_settings
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["parquet"]), default="parquet", show_default=True,
              help="File format (Parquet, one folder per month of event time).")
@json_option
def export_interactions(settings: Settings, out: Path, fmt: str, as_json: bool) -> None:
    """Write the consent-filtered, weighted interactions to the folder OUT for a Spark cluster.

    Only customers with personalization consent are exported, exactly the
    events training uses. Put OUT on storage the cluster reads and train with
    `recommender train --engine spark --interactions OUT`. An earlier export
    in OUT is replaced; any other existing non-empty OUT is refused.
    """
    from . import exports

    result = exports.export_interactions(open_db(settings), settings, out, format=fmt)
    emit(as_json, result, f"exported {result['rows']:,} interactions of {result['customers']:,} customers "
                          f"in {len(result['months'])} month(s) to {result['path']} ({result['seconds']:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="recommender")


# Subcommand groups that live in their own modules (they import the helpers above).
from .campaign_cli import campaign  # noqa: E402

cli.add_command(campaign)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
