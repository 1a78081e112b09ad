"""Authentication is explicit: no key means no access, unless the operator opened a loopback server."""

import pytest

from recommender import store
from recommender.cli import cli
from recommender.serving import keys

EVENT = {"customer_id": "C0001", "product_id": "P0001", "event_type": "view"}


def auth(key, scheme="Bearer"):
    return {"Authorization": f"{scheme} {key}"}


@pytest.fixture
def closed_app(served):
    """The app as `recommender serve` (without --open) builds it."""
    from api import create_app

    served.serve.open = False
    app = create_app(served)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def closed(closed_app):
    return closed_app.test_client()


def test_without_any_key_nothing_is_open(closed, served):
    db = store.connect(served.db)
    assert store.live_api_keys(db) == 0
    for method, url, body in [
        ("get", "/v1/products/popular", None),
        ("post", "/v1/events", EVENT),
        ("get", "/v1/customers/C0005/export", None),
        ("delete", "/v1/customers/C0005", None),
    ]:
        response = getattr(closed, method)(url, json=body)
        assert response.status_code == 401, url
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert "X-Recommender-Auth" not in response.headers
    assert db.execute("SELECT count(*) FROM customers WHERE id = 'C0005'").fetchone()[0] == 1
    assert closed.get("/healthz").status_code == 200  # probes need no key


def test_roles_nest_and_only_hashes_are_stored(closed, served):
    db = store.connect(served.db)
    _, read_key = keys.create(db, "read", "shop")
    _, write_key = keys.create(db, "write", "tracker")
    _, admin_key = keys.create(db, "admin", "ops")
    assert closed.get("/v1/products/popular", headers=auth("rk_wrong")).status_code == 401
    assert closed.get("/v1/products/popular", headers=auth(read_key)).status_code == 200
    assert closed.post("/v1/events", json=EVENT, headers=auth(read_key)).status_code == 403
    assert closed.post("/v1/events", json=EVENT, headers=auth(write_key)).status_code == 201
    assert closed.get("/v1/products/popular", headers=auth(write_key)).status_code == 200
    assert closed.post("/v1/admin/reload", headers=auth(write_key)).status_code == 403
    assert closed.post("/v1/admin/reload", headers=auth(admin_key)).status_code == 200
    assert closed.get("/v1/customers/C0005/export", headers=auth(write_key)).status_code == 403
    stored = [r["key_hash"] for r in db.query("SELECT key_hash FROM api_keys")]
    assert len(stored) == 3 and all(len(h) == 64 for h in stored)
    assert not {read_key, write_key, admin_key} & set(stored)


def test_revoking_the_last_key_locks_the_api(closed, served):
    db = store.connect(served.db)
    key_id, admin_key = keys.create(db, "admin", "ops")
    assert closed.get("/v1/customers/C0005/export", headers=auth(admin_key)).status_code == 200
    keys.revoke(db, key_id)
    assert store.live_api_keys(db) == 0
    assert closed.get("/v1/customers/C0005/export", headers=auth(admin_key)).status_code == 401
    assert closed.get("/v1/customers/C0005/export").status_code == 401
    assert closed.post("/v1/events", json=EVENT).status_code == 401
    assert closed.delete("/v1/customers/C0005").status_code == 401


def test_key_changes_reach_every_worker_on_the_next_request(served):
    """Two apps on one database stand for two gunicorn workers; neither caches what the table says."""
    from api import create_app

    served.serve.open = False
    workers = [create_app(served).test_client() for _ in range(2)]
    db = store.connect(served.db)
    for worker in workers:  # each has served a request (and would have cached, if it did)
        assert worker.get("/v1/products/popular").status_code == 401
    key_id, key = keys.create(db, "read", "shop")
    assert [w.get("/v1/products/popular", headers=auth(key)).status_code for w in workers] == [200, 200]
    keys.revoke(db, key_id)
    assert [w.get("/v1/products/popular", headers=auth(key)).status_code for w in workers] == [401, 401]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(closed, served, scheme):
    _, key = keys.create(store.connect(served.db), "read", "shop")
    assert closed.get("/v1/products/popular", headers=auth(key, scheme)).status_code == 200
    assert closed.get("/v1/products/popular", headers={"Authorization": f"  {scheme}   {key}  "}).status_code == 200


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", "rk_only_a_token", "Token abc"])
def test_other_authorization_headers_are_refused(closed, served, header):
    keys.create(store.connect(served.db), "read", "shop")
    response = closed.get("/v1/products/popular", headers={"Authorization": header})
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_open_mode_is_loud_and_for_this_machine_only(client, served):
    local = client.get("/v1/products/popular")
    assert local.status_code == 200
    assert local.headers["X-Recommender-Auth"].startswith("open")
    remote = client.get("/v1/products/popular", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert remote.status_code == 401
    # A key that is given is checked, open or not.
    assert client.get("/v1/products/popular", headers=auth("rk_wrong")).status_code == 401
    _, read_key = keys.create(store.connect(served.db), "read", "shop")
    assert client.post("/v1/events", json=EVENT, headers=auth(read_key)).status_code == 403


@pytest.mark.parametrize(
    "args, env",
    [
        (["--open", "--host", "0.0.0.0"], {}),
        (["--open", "--host", "shop.example.com"], {}),
        (["--host", "0.0.0.0"], {"RECOMMENDER_SERVE_OPEN": "true"}),
    ],
)
def test_serve_refuses_open_on_a_public_address(runner, monkeypatch, args, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, ["serve", *args])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "loopback" in lines[0], result.output


@pytest.mark.parametrize("args, opened", [([], False), (["--open"], True), (["--open", "--host", "::1"], True)])
def test_serve_says_how_to_get_in(runner, monkeypatch, args, opened):
    """What `recommender serve` prints, and that it hands the open flag to the server (gunicorn not started)."""
    from api import server

    calls = []
    monkeypatch.setattr(server, "run", lambda settings, host, port, workers: calls.append((settings.serve.open, host)))
    result = runner.invoke(cli, ["serve", *args])
    assert result.exit_code == 0, result.output
    assert calls and calls[0][0] is opened
    if opened:
        assert "need no API key" in result.output
    else:
        assert "recommender keys create --role admin" in result.output and "recommender serve --open" in result.output


def test_is_loopback():
    from api.auth import is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "shop.example.com", "", None]))
