"""The HTTP server and its API keys."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

import click

from recommender import store
from recommender.cli.common import EngineGroup, emit, json_option, open_db, with_settings
from recommender.config import Settings
from recommender.values import is_loopback

SERVERS = "recommender.servers"


def _http_server() -> ModuleType:
    """The HTTP server, found by its entry point (``recommender.servers``: ``http``).

    The library never imports the web app: the app package declares itself in
    ``pyproject.toml`` and this command loads it by name, so the import arrows
    all point down and another server could be plugged in the same way.
    """
    found = entry_points(group=SERVERS, name="http")
    if not found:
        raise click.ClickException("the HTTP API is not installed here: pip install -e '.[serve]'")
    return next(iter(found)).load()


@click.command()
@with_settings
@click.option("--host", default=None, help="Interface to bind [default: serve.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port [default: serve.port, 8000].")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="gunicorn worker processes [default: serve.workers, or min(2 x cores + 1, 8)].",
)
@click.option(
    "--open",
    "open_",
    is_flag=True,
    help="Demo only: requests from this machine need no API key (also: serve.open). "
    "Refused unless the host is a loopback address.",
)
def serve(settings: Settings, host: str | None, port: int | None, workers: int | None, open_: bool) -> None:
    """Serve the HTTP API with gunicorn (needs the serve extra: pip install -e '.[serve]').

    Every endpoint but the probes needs an API key (`recommender keys create
    --role admin`); without one the API answers 401, also after the last key is
    revoked. `--open` lets requests from this machine in without a key, for a
    local demo, and is refused on a non-loopback address.
    """
    server = _http_server()
    host = host or settings.serve.host
    port = port or settings.serve.port
    settings.serve.open = bool(open_ or settings.serve.open)
    if settings.serve.open and not is_loopback(host):
        raise click.ClickException(
            f"--open (serve.open) only on a loopback address such as 127.0.0.1, not {host}: "
            "create a key with `recommender keys create --role admin` instead"
        )
    db = open_db(settings)
    live = store.live_api_keys(db)
    db.conn.close()
    if settings.serve.open:
        click.echo(
            "WARNING: --open: requests from this machine need no API key (demo mode). Never expose this server.",
            err=True,
        )
    elif live == 0:
        click.echo(
            "No API key exists, so every API request will get 401. Create one with:\n"
            "    recommender keys create --role admin\n"
            "or, for a local demo, serve without keys on 127.0.0.1: recommender serve --open",
            err=True,
        )
    n = workers or settings.serve.workers or server.default_workers()
    click.echo(f"serving on http://{host}:{port} with {n} workers (docs at /docs, console at /console)", err=True)
    server.run(settings, host, port, n)


@click.group(cls=EngineGroup)
def keys() -> None:
    """Manage API keys (roles: read < write < admin; marketer: campaigns and reports in the console)."""


@keys.command("create")
@with_settings
@click.option(
    "--role", type=click.Choice(["read", "write", "admin", "marketer"]), required=True, help="What the key may do."
)
@click.option("--name", default="", help="A label, e.g. the storefront that uses it.")
@json_option
def keys_create(settings: Settings, role: str, name: str, as_json: bool) -> None:
    """Create a key and print it once; only its hash is stored."""
    from recommender.serving import keys as api_keys

    key_id, token = api_keys.create(open_db(settings), role, name or role)
    emit(
        as_json,
        {"id": key_id, "role": role, "key": token},
        f"{token}\n(key {key_id}, role {role}: store it now, it cannot be shown again)",
    )


@keys.command("list")
@with_settings
@json_option
def keys_list(settings: Settings, as_json: bool) -> None:
    """List keys (never their secrets)."""
    from recommender.serving import keys as api_keys

    rows = api_keys.listing(open_db(settings))
    emit(
        as_json,
        {"keys": rows},
        "\n".join(
            f"{r['id']:>4}  {r['role']:8} {r['name']:24} created {r['created_at']}"
            + (f"  revoked {r['revoked_at']}" if r["revoked_at"] else "")
            for r in rows
        )
        or "no keys (every API request gets 401 until you create one)",
    )


@keys.command("revoke")
@with_settings
@click.argument("key_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when stdin is not a terminal).")
def keys_revoke(settings: Settings, key_id: int, yes: bool) -> None:
    """Revoke a key by id (cannot be undone); it stops working on the next request in every worker.

    Revoking the last key locks the API: requests get 401 until a key is created.
    """
    from recommender.cli.common import confirm_or_refuse
    from recommender.serving import keys as api_keys

    confirm_or_refuse(yes, f"Revoke API key {key_id}? Clients using it get 401 from the next request on.")
    api_keys.revoke(open_db(settings), key_id)
    click.echo(f"key {key_id} revoked")
