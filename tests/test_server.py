"""The real server: `recommender serve` under gunicorn on loopback, hot-swapping a model under load."""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from recommender import store
from recommender.serving import keys
from recommender.training import run as training

pytest.importorskip("gunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HEADERS: dict[str, str] = {}


def get(port, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=HEADERS if headers is None else headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def raw(port, data: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no client library trims them) and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def start_server(served, **env_extra) -> tuple[int, subprocess.Popen]:
    """`recommender serve` with 2 workers on a free loopback port, once /readyz answers."""
    _, token = keys.create(store.connect(served.db), "read", "load-test")
    HEADERS["Authorization"] = f"Bearer {token}"
    port = free_port()
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(served.db),
        "RECOMMENDER_MODEL_DIR": str(served.model_dir),
        "RECOMMENDER_SERVE_MODEL_CHECK_SECONDS": "0.2",
        **env_extra,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from recommender.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if get(port, "/readyz")[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("server did not become ready: " + proc.stderr.read().decode()[-2000:])
    return port, proc


@pytest.fixture
def server(served):
    port, proc = start_server(served)
    yield port
    proc.terminate()
    proc.wait(timeout=30)
    HEADERS.clear()


def test_lists_served_just_before_a_restart_are_still_in_the_decision_log(served):
    # The writer waits an hour between batches here, so every row below can only have been
    # written by the worker on its way out (gunicorn's SIGTERM), not by the periodic flush.
    port, proc = start_server(served, RECOMMENDER_PRIVACY_DECISION_LOG_FLUSH_SECONDS="3600")
    try:
        ids = []
        for customer in ("C0002", "C0003", "C0004", "C0005"):
            status, body = get(port, f"/v1/customers/{customer}/recommendations?n=3")
            assert status == 200, body
            ids.append(body["list_id"])
        before = store.connect(served.db).execute("SELECT count(*) FROM decisions").fetchone()[0]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()[-2000:]
        HEADERS.clear()
    assert before == 0  # nothing was written while the server ran
    rows = store.connect(served.db).execute("SELECT list_id FROM decisions").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ids)


def test_hot_swap_under_load_drops_no_request(server, served):
    port = server
    status, body = get(port, "/v1/customers/C0002/recommendations?n=5")
    assert status == 200 and body["items"]
    old = body["model_version"]
    results = []
    stop = threading.Event()

    def hammer():
        while not stop.is_set() and len(results) < 2000:
            try:
                results.append(get(port, "/v1/products/popular?n=5"))
            except OSError as exc:
                results.append((None, str(exc)))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    new = training.train(store.connect(served.db), served, publish=True, force=True).version
    deadline = time.time() + 10
    while time.time() < deadline and not any(b and b.get("model_version") == new for _, b in results[-20:]):
        time.sleep(0.1)
    time.sleep(1.0)  # every worker has had its chance to swap
    stop.set()
    for t in threads:
        t.join()
    assert results and all(status == 200 for status, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [b["model_version"] for _, b in results]
    assert old in versions and new in versions
    assert all(v == new for v in versions[-6:])
    metrics = http.client.HTTPConnection("127.0.0.1", port)
    metrics.request("GET", "/metrics")
    text = metrics.getresponse().read().decode()
    assert "recommender_http_requests_total" in text


def test_keys_are_required_and_gunicorn_refusals_are_json(server):
    port = server
    assert get(port, "/v1/products/popular?n=1", headers={})[0] == 401
    assert get(port, "/v1/products/popular?n=1")[0] == 200
    assert get(port, "/healthz", headers={})[0] == 200
    status, headers, body = raw(
        port, b"GET /v1/products/popular?exclude=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    assert status == 414 and headers["Content-Type"] == "application/json" and body.endswith(b"\n")
    assert json.loads(body)["error"]["code"] == "uri_too_long"
    crowded = b"".join(b"X-H%d: 1\r\n" % i for i in range(101))
    status, headers, body = raw(port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + crowded + b"\r\n")
    assert status == 431 and json.loads(body)["error"]["code"] == "headers_too_large"
    status, _, body = raw(port, b"GET /healthz?\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert status == 400 and json.loads(body)["error"]["code"] == "bad_request"
