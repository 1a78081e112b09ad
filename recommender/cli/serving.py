"""The HTTP server and its API keys."""

from __future__ import annotations


import click

from .. import store
from ..config import Settings
from .common import EngineGroup, emit, json_option, open_db, with_settings


@click.command()
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


@click.group(cls=EngineGroup)
def keys() -> None:
    """Manage API keys (roles: read < write < admin)."""


@keys.command("create")
@with_settings
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True, help="What the key may do.")
@click.option("--name", default="", help="A label, e.g. the storefront that uses it.")
@json_option
def keys_create(settings: Settings, role: str, name: str, as_json: bool) -> None:
    """Create a key and print it once; only its hash is stored."""
    from .. import keys as api_keys

    key_id, token = api_keys.create(open_db(settings), role, name or role)
    emit(as_json, {"id": key_id, "role": role, "key": token},
         f"{token}\n(key {key_id}, role {role}: store it now, it cannot be shown again)")


@keys.command("list")
@with_settings
@json_option
def keys_list(settings: Settings, as_json: bool) -> None:
    """List keys (never their secrets)."""
    from .. import keys as api_keys

    rows = api_keys.listing(open_db(settings))
    emit(as_json, {"keys": rows}, "\n".join(
        f"{r['id']:>4}  {r['role']:6} {r['name']:24} created {r['created_at']}"
        + (f"  revoked {r['revoked_at']}" if r["revoked_at"] else "") for r in rows) or "no keys (the API runs open)")


@keys.command("revoke")
@with_settings
@click.argument("key_id", type=int)
def keys_revoke(settings: Settings, key_id: int) -> None:
    """Revoke a key by id; it stops working within seconds in every worker."""
    from .. import keys as api_keys

    api_keys.revoke(open_db(settings), key_id)
    click.echo(f"key {key_id} revoked")
