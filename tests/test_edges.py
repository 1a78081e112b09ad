"""The last open edges of issue 23, each tried the way a hostile or a careful client would.

- a chunked body is limited like any other (413 past 1 MiB, whatever the framing), and a
  chunked body within the limit is read whole (against a real gunicorn server);
- a control character in the console's ``next`` leads to the default page, never a 500;
- every id the importer accepts (``/``, ``%``, ``?``, ``#``, spaces, unicode) can be used
  in every path of the API and the console;
- one id rule for every door: ``17850.0`` and ``1.785E+4`` are ``17850`` everywhere, and an
  erased person cannot come back through another rendering of their id or their e-mail;
- the OpenAPI document and the validators agree both ways (strict JSON types, shared bounds,
  duplicate keys, empty times, event types), and a key without ``Bearer `` is told to add it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from recommender import store

try:
    from recommender.ingest import imports
    from recommender.serving import keys
except ImportError:  # the flat layout before the layers (to replay these tests on older code)
    from recommender import imports, keys  # type: ignore[no-redef]


# --- a real server ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn_server(served):
    """`recommender serve` (gunicorn, 1 worker) on the demo shop, with a write key."""
    pytest.importorskip("gunicorn")
    _, token = keys.create(store.connect(served.db), "write", "edge-test")
    port = _free_port()
    env = {
        **os.environ,
        "RECOMMENDER_DB": str(served.db),
        "RECOMMENDER_MODEL_DIR": str(served.model_dir),
        "RECOMMENDER_PRIVACY_DECISION_LOG": "0",
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
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("server did not start: " + proc.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield port, token
    proc.terminate()
    proc.wait(timeout=30)


def _chunked(port: int, token: str, body: bytes, chunk: int = 64 << 10) -> tuple[int, dict]:
    """POST /v1/events with ``body`` sent as chunks (no Content-Length); the status and the JSON answer."""
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    framed = bytearray(head)
    for start in range(0, len(body), chunk):
        piece = body[start : start + chunk]
        framed += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    framed += b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(bytes(framed))
        answer = bytearray()
        while block := sock.recv(65536):
            answer += block
    status_line, _, rest = bytes(answer).partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload or b"null")


def _customers_and_products(settings, n: int = 1) -> tuple[list[str], list[str]]:
    db = store.connect(settings.db)
    try:
        customers = [r[0] for r in db.execute("SELECT id FROM customers ORDER BY id LIMIT ?", [n]).fetchall()]
        products = [r[0] for r in db.execute("SELECT id FROM products ORDER BY id LIMIT ?", [n]).fetchall()]
    finally:
        db.conn.close()
    return customers, products


def _event_count(settings) -> int:
    db = store.connect(settings.db)
    try:
        return db.execute("SELECT count(*) FROM interactions").fetchone()[0]
    finally:
        db.conn.close()


def test_a_chunked_body_over_the_limit_gets_413_and_one_within_it_is_read_whole(gunicorn_server, served):
    port, token = gunicorn_server
    (customer,), (product,) = _customers_and_products(served)
    event = {"customer_id": customer, "product_id": product, "event_type": "view"}
    before = _event_count(served)

    # One valid event and 3 MiB of spaces: cut at 1 MiB it would still be valid JSON (it was stored).
    status, body = _chunked(port, token, json.dumps(event).encode() + b" " * (3 << 20))
    assert status == 413 and body["error"]["code"] == "payload_too_large", body
    # A valid batch of 1.6 MB: over the limit whatever the framing, so 413 (it was "400 malformed JSON").
    big = json.dumps({"events": [{**event, "event_id": f"big-{i}"} for i in range(1000)]}).encode()
    big += b" " * (1_600_000 - len(big))
    status, body = _chunked(port, token, big)
    assert status == 413, body
    assert _event_count(served) == before

    # The same events under the limit, chunked in small and in large pieces: read whole and stored.
    batch = {"events": [{**event, "event_type": "view", "event_id": f"ok-{i}"} for i in range(1000)]}
    small = json.dumps(batch).encode()
    padded = small + b" " * ((1 << 20) - len(small))  # exactly 1 MiB is still within the limit
    assert len(padded) == 1 << 20
    status, body = _chunked(port, token, padded, chunk=1000)
    assert status == 201 and body == {"accepted": 1000, "duplicates": 0}, body
    status, body = _chunked(port, token, small, chunk=1 << 20)
    assert status == 201 and body == {"accepted": 0, "duplicates": 1000}, body


# --- the console's way back after sign-in ----------------------------------------------------

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def console(served):
    from api import create_app

    db = store.connect(served.db)
    tokens = {role: keys.create(db, role, f"{role}-edge")[1] for role in ("read", "admin", "marketer")}
    db.conn.close()
    return create_app(served), tokens, served


def _csrf(client, path="/console/sign-in") -> str:
    return TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


@pytest.mark.parametrize(
    "target",
    [
        "/console/models\r\nSet-Cookie: evil=1",
        "/console/\nx",
        "/console/\rx",
        "/console/\x00",
        "/console/\tx",
        "/console/\x7f",
        "/console/\x85",
        "/console/\u2028",
        "/console/\x1b[31m",
        "/console\\..\\x",
    ],
)
def test_a_control_character_in_next_leads_to_the_default_page(console, target):
    app, tokens, _ = console
    client = app.test_client()
    page = client.get("/console/sign-in", query_string={"next": target})
    assert page.status_code == 200
    assert 'name="next" value="/console/"' in page.get_data(as_text=True)
    response = client.post("/console/sign-in", data={"csrf": _csrf(client), "key": tokens["admin"], "next": target})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"] == "/console/"
    assert "evil" not in str(response.headers)


def test_next_keeps_a_console_page_of_any_customer(console):
    app, tokens, _ = console
    for target, expected in (
        ("/console/models", "/console/models"),
        ("/console/customer?id=J%C3%BCrgen", "/console/customer?id=J%C3%BCrgen"),
        ("/console/customer/Jürgen 2/export.json", "/console/customer/J%C3%BCrgen%202/export.json"),
        ("/consolex", "/console/"),
        ("/console//evil.example", "/console//evil.example"),
    ):
        client = app.test_client()
        response = client.post("/console/sign-in", data={"csrf": _csrf(client), "key": tokens["admin"], "next": target})
        assert response.status_code == 303 and response.headers["Location"] == expected, target


# --- every id the importer accepts works in every path ----------------------------------------

ODD_CUSTOMERS = [
    "SLASH/2",
    "PCT%2",
    "PCT%2F",
    "Q?x=1&y",
    "HASH#3",
    "SP ACE",
    "Jürgen",
    "日本/顧客",
    "A//B",
    "/lead",
    "trail/",
    "+plus;semi",
    "..x",
    'it\'s "quoted" <b>',
]
ODD_PRODUCTS = ["P/1", "P%20", "P?#", "Pé ñ", "P//2"]


def _write(path, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


@pytest.fixture
def odd_shop(served, tmp_path):
    """The demo shop plus customers and products whose ids need encoding in a URL, imported the usual way."""
    db = store.connect(served.db)
    _, catalogue = _customers_and_products(served, 3)
    imports.import_file(
        db,
        "customers",
        _write(
            tmp_path / "c.csv",
            [["id", "email", "name"], *[[c, f"odd{i}@example.com", f"Odd {i}"] for i, c in enumerate(ODD_CUSTOMERS)]],
        ),
        served,
    )
    imports.import_file(
        db,
        "products",
        _write(
            tmp_path / "p.csv",
            [["id", "name", "category", "price"], *[[p, f"Odd {i}", "odd", "5"] for i, p in enumerate(ODD_PRODUCTS)]],
        ),
        served,
    )
    imports.import_file(
        db,
        "interactions",
        _write(
            tmp_path / "i.csv",
            [
                ["customer_id", "product_id", "event_type", "quantity", "occurred_at"],
                *[
                    [c, p, "purchase", "1", "2025-03-01T10:00:00Z"]
                    for c in ODD_CUSTOMERS
                    for p in ODD_PRODUCTS[:2] + catalogue
                ],
            ],
        ),
        served,
    )
    imports.import_file(
        db,
        "consents",
        _write(
            tmp_path / "k.csv",
            [["customer_id", "purpose", "granted"], *[[c, "personalization", "true"] for c in ODD_CUSTOMERS]],
        ),
        served,
    )
    stored = {r[0] for r in db.execute("SELECT id FROM customers").fetchall()}
    db.conn.close()
    assert set(ODD_CUSTOMERS) <= stored  # the importer took every one of them as written
    return served


def _path(value: str) -> str:
    return quote(value, safe="")


@pytest.mark.parametrize("customer", ODD_CUSTOMERS)
def test_every_api_path_takes_any_imported_customer_id(client, odd_shop, customer):
    c = _path(customer)
    body = client.get(f"/v1/customers/{c}/recommendations?n=3").get_json()
    assert body["reason"] != "unknown_customer", body
    assert client.get(f"/v1/customers/{c}/offers").status_code == 200
    rerank = client.post(f"/v1/customers/{c}/rerank", json={"products": ODD_PRODUCTS})
    assert rerank.status_code == 200 and sorted(rerank.get_json()["products"]) == sorted(ODD_PRODUCTS)
    consents = client.get(f"/v1/customers/{c}/consents")
    assert consents.status_code == 200 and consents.get_json()["customer_id"] == customer
    assert consents.get_json()["consents"]["personalization"]["granted"] is True
    changed = client.put(f"/v1/customers/{c}/consents", json={"consents": {"marketing": True}, "source": "test"})
    assert changed.status_code == 200 and changed.get_json()["customer_id"] == customer, changed.get_json()
    history = client.get(f"/v1/customers/{c}/consents/history")
    assert history.status_code == 200 and len(history.get_json()["history"]) == 2
    export = client.get(f"/v1/customers/{c}/export")
    assert export.status_code == 200 and export.get_json()["profile"]["id"] == customer
    assert len(export.get_json()["interactions"]) == 5
    event = client.post(
        "/v1/events", json={"customer_id": customer, "product_id": ODD_PRODUCTS[0], "event_type": "view"}
    )
    assert event.status_code == 201, event.get_json()
    gone = client.delete(f"/v1/customers/{c}")
    assert gone.status_code == 200 and gone.get_json()["erased"] is True, gone.get_json()
    assert client.get(f"/v1/customers/{c}/export").status_code == 404
    assert client.delete(f"/v1/customers/{c}").status_code == 404


@pytest.mark.parametrize("product", ODD_PRODUCTS)
def test_every_product_path_takes_any_imported_product_id(client, odd_shop, product):
    for path in ("similar", "bought-together"):
        response = client.get(f"/v1/products/{_path(product)}/{path}?n=3")
        assert response.status_code == 200, (path, response.get_json())
    assert client.get(f"/v1/products/{_path(product + 'x')}/similar").status_code == 404  # a real lookup


def _attribute(html: str, element_id: str, attribute: str) -> str:
    import html as markup

    match = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html) if element_id != "erase-form" else None
    if element_id == "erase-form":
        match = re.search(r'<form method="post" action="([^"]+/erase)"', html)
        return markup.unescape(match.group(1))
    return markup.unescape(re.search(rf'{attribute}="([^"]+)"', match.group(0)).group(1))


@pytest.mark.parametrize("customer", ODD_CUSTOMERS)
def test_the_console_customer_page_exports_and_erases_any_imported_id(console, odd_shop, customer):
    from urllib.parse import unquote, urlsplit

    app, tokens, _ = console
    client = app.test_client()
    client.post("/console/sign-in", data={"csrf": _csrf(client), "key": tokens["admin"]})
    page = client.get("/console/customer", query_string={"id": customer})
    html = page.get_data(as_text=True)
    assert page.status_code == 200, html[:300]
    export_url = _attribute(html, "export", "href")
    erase_url = _attribute(html, "erase-form", "action")
    for url in (export_url, erase_url):
        # The id is one percent-encoded path segment: no '/', '?', '#' or space left raw in it.
        segment = urlsplit(url).path.split("/")[3]
        assert unquote(segment) == customer and urlsplit(url).query == "" and not urlsplit(url).fragment
    export = client.get(export_url)
    assert export.status_code == 200 and json.loads(export.get_data(as_text=True))["profile"]["id"] == customer
    csrf = _csrf(client, "/console/campaigns")
    done = client.post(erase_url, data={"confirm": customer, "csrf": csrf})
    assert done.status_code == 200 and "Customer erased" in done.get_data(as_text=True)
    db = store.connect(odd_shop.db)
    try:
        assert db.execute("SELECT count(*) FROM customers WHERE id = ?", [customer]).fetchone()[0] == 0
    finally:
        db.conn.close()


# --- one id rule at every door -----------------------------------------------------------------


@pytest.mark.parametrize(
    "written, read",
    [
        ("17850", "17850"),
        (" 17850 ", "17850"),
        ("17850.0", "17850"),
        ("17850.00", "17850"),
        ("17850.", "17850"),
        ("1.785E+4", "17850"),
        ("1.785e4", "17850"),
        ("1.785E+04", "17850"),
        ("2E+04", "20000"),
        ("0.0", "0"),
        ("007", "007"),
        ("007.0", "007.0"),
        ("12E4", "12E4"),
        ("1E-1", "1E-1"),
        ("17850.5", "17850.5"),
        ("-5.0", "-5.0"),
        ("C0834.0", "C0834.0"),
        ("c0834", "c0834"),
        ("Cafe\u0301", "Caf\u00e9"),
        ("9.9E+999", "9.9E+999"),
    ],
)
def test_the_id_rule(written, read):
    from recommender.values import normalise_id, parse_id

    assert normalise_id(written) == read
    assert parse_id(written) == read
    assert normalise_id(read) == read  # the normal form is a fixed point


@pytest.mark.parametrize("bad", [".", "..", " .. ", "", " ", "a\nb"])
def test_ids_a_path_cannot_carry_are_refused_at_import(bad):
    from recommender.values import parse_id

    with pytest.raises(ValueError, match="missing|control character|cannot be an id"):
        parse_id(bad)


def _import(db, settings, tmp_path, kind, rows, **kwargs):
    return imports.import_file(
        db, kind, _write(tmp_path / f"{kind}-{time.monotonic_ns()}.csv", rows), settings, **kwargs
    )


@pytest.fixture
def spreadsheet_shop(served, tmp_path):
    """The demo shop plus numeric customers as a spreadsheet writes them, and one with leading zeros."""
    db = store.connect(served.db)
    _import(
        db,
        served,
        tmp_path,
        "customers",
        [
            ["id", "email", "name"],
            ["17850.0", "ann@example.com", "Ann"],
            ["007", "bond@example.com", "Bond"],
            ["7", "seven@example.com", "7"],
        ],
    )
    _, (product, *_) = _customers_and_products(served, 1)
    _import(
        db,
        served,
        tmp_path,
        "interactions",
        [
            ["customer_id", "product_id", "event_type", "occurred_at"],
            ["1.785E+4", product, "purchase", "2025-03-01T10:00:00Z"],
        ],
    )
    _import(
        db, served, tmp_path, "consents", [["customer_id", "purpose", "granted"], ["17850", "personalization", "true"]]
    )
    yield db, product
    db.conn.close()


def test_every_door_reads_a_spreadsheet_id_alike(client, served, spreadsheet_shop, tmp_path):
    db, product = spreadsheet_shop
    ids = {r[0] for r in db.execute("SELECT id FROM customers WHERE name IN ('Ann', 'Bond', '7')")}
    assert ids == {"17850", "007", "7"}  # leading zeros kept: 007 and 7 are two customers
    for rendering in ("17850", "17850.0", "1.785E+4", " 17850 "):
        c = _path(rendering)
        body = client.get(f"/v1/customers/{c}/recommendations?n=2").get_json()
        assert body["reason"] != "unknown_customer", (rendering, body)
        consents = client.get(f"/v1/customers/{c}/consents").get_json()
        assert consents["customer_id"] == "17850" and consents["consents"]["personalization"]["granted"]
        assert client.get(f"/v1/customers/{c}/export").get_json()["profile"]["id"] == "17850"
    assert client.get("/v1/customers/007/export").get_json()["profile"]["email"] == "bond@example.com"
    assert client.get("/v1/customers/7/export").get_json()["profile"]["email"] == "seven@example.com"
    event = client.post("/v1/events", json={"customer_id": "1.785E+4", "product_id": product, "event_type": "view"})
    assert event.status_code == 201, event.get_json()
    assert db.execute("SELECT count(*) FROM interactions WHERE customer_id = '17850'").fetchone()[0] == 2


def test_an_erased_person_cannot_come_back_through_another_rendering_of_their_id(
    client, served, spreadsheet_shop, tmp_path
):
    from recommender.errors import ErasedCustomerError

    db, product = spreadsheet_shop
    assert client.delete(f"/v1/customers/{_path('1.785E+4')}").status_code == 200  # erases 17850
    assert db.execute("SELECT count(*) FROM customers WHERE id = '17850'").fetchone()[0] == 0
    for rendering in ("17850", "17850.0", "1.785E+4", "1.785e4"):
        with pytest.raises(ErasedCustomerError):
            _import(db, served, tmp_path, "customers", [["id", "email"], [rendering, "new@example.com"]])
        with pytest.raises(ErasedCustomerError):
            _import(
                db,
                served,
                tmp_path,
                "consents",
                [["customer_id", "purpose", "granted"], [rendering, "personalization", "true"]],
            )
        event = client.post("/v1/events", json={"customer_id": rendering, "product_id": product, "event_type": "view"})
        assert event.status_code == 422 and "erased" in event.get_json()["error"]["message"], event.get_json()
        change = client.put(
            f"/v1/customers/{_path(rendering)}/consents", json={"consents": {"marketing": True}, "source": "test"}
        )
        assert change.status_code == 422 and "erased" in change.get_json()["error"]["message"]
    assert db.execute("SELECT count(*) FROM customers WHERE id IN ('17850', '17850.0', '1.785E+4')").fetchone()[0] == 0


def test_an_erased_persons_email_cannot_come_back_under_a_new_id(client, served, tmp_path):
    from recommender.errors import ErasedCustomerError
    from recommender.ingest import signup

    db = store.connect(served.db)
    _import(db, served, tmp_path, "customers", [["id", "email"], ["C0834", "Ann.Lee@Example.com"]])
    assert client.delete("/v1/customers/C0834").status_code == 200
    # The erased person's e-mail under another id (any case, any padding) is refused, naming nothing of them.
    for other, email in (("C0834.0", "Ann.Lee@Example.com"), ("X1", " ann.lee@example.com ")):
        with pytest.raises(ErasedCustomerError, match="e-mail of a customer erased on") as refused:
            _import(db, served, tmp_path, "customers", [["id", "email"], ["fresh1", "f@example.com"], [other, email]])
        assert "ann" not in str(refused.value).lower()
    assert db.execute("SELECT count(*) FROM customers WHERE id IN ('fresh1', 'C0834.0', 'X1')").fetchone()[0] == 0
    # --skip-erased leaves that line out and imports the rest; another e-mail is another person.
    result = _import(
        db,
        served,
        tmp_path,
        "customers",
        [["id", "email"], ["fresh1", "f@example.com"], ["C0834.0", "ann.lee@example.com"]],
        skip_erased=True,
    )
    assert result.skipped["erased"] == 1
    _import(db, served, tmp_path, "customers", [["id", "email"], ["C0834.0", "someone.else@example.com"]])
    stored = dict(db.execute("SELECT id, email FROM customers WHERE id IN ('fresh1', 'C0834.0')").fetchall())
    assert stored == {"fresh1": "f@example.com", "C0834.0": "someone.else@example.com"}
    # No e-mail stored in the clear anywhere for the erased person; a real sign-up again frees it.
    dump = "\n".join(db.conn.iterdump())
    assert "ann.lee@example.com" not in dump.lower()
    signup.resignup(db, served, "C0834", ["personalization"], "signup", actor="test", email="ann.lee@example.com")
    _import(db, served, tmp_path, "customers", [["id", "email"], ["X2", "ann.lee@example.com"]])
    db.conn.close()


def test_every_customer_and_product_route_reads_ids_with_the_id_converter(app):
    from api.ids import IdConverter

    for rule in app.url_map.iter_rules():
        for name, converter in rule._converters.items():
            if name.endswith("_id"):
                assert isinstance(converter, IdConverter), rule.rule


# --- the contract, both ways ----------------------------------------------------------------------


@pytest.fixture
def open_client(client, served):
    _, (product, *_) = _customers_and_products(served, 1)
    (customer,), _ = _customers_and_products(served, 1)
    return client, {"customer_id": customer, "product_id": product, "event_type": "purchase"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("price", "12"),
        ("price", True),
        ("price", [12]),
        ("quantity", True),
        ("quantity", "2"),
        ("customer_id", 5),
        ("event_type", ["view"]),
        ("list_id", 7),
        ("occurred_at", 1_700_000_000),
    ],
)
def test_a_json_value_of_the_wrong_type_is_a_422_naming_the_field(open_client, served, field, value):
    client, event = open_client
    before = _event_count(served)
    response = client.post("/v1/events", json={**event, field: value})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["message"].startswith(f"body.event.{field}:")
    batch = client.post("/v1/events", json={"events": [event, {**event, field: value}]})
    assert batch.status_code == 422, batch.get_json()
    assert f".events.1.{field}:" in batch.get_json()["error"]["message"]
    assert _event_count(served) == before


def test_booleans_and_numbers_are_strict_in_every_body(open_client):
    client, event = open_client
    preview = client.post(
        "/v1/admin/campaigns/preview", json={"occasion": "all", "date": "2026-01-01", "days_ahead": 7, "limit": False}
    )
    assert preview.status_code == 422 and "limit" in preview.get_json()["error"]["message"]
    consent = client.put(
        f"/v1/customers/{event['customer_id']}/consents", json={"consents": {"marketing": 1}, "source": "test"}
    )
    assert consent.status_code == 422 and "consents.marketing" in consent.get_json()["error"]["message"]
    rerank = client.post(f"/v1/customers/{event['customer_id']}/rerank", json={"products": [""]})
    assert rerank.status_code == 422 and "products.0" in rerank.get_json()["error"]["message"]


def test_the_price_bound_is_one_constant_of_the_schema_and_the_check(open_client, served):
    from recommender.values import MAX_PRICE, MAX_QUANTITY

    client, event = open_client
    spec = client.get("/openapi.json").get_json()
    props = spec["components"]["schemas"]["Event"]["properties"]
    price = next(s for s in props["price"]["anyOf"] if s.get("type") == "number")
    quantity = next(s for s in props["quantity"]["anyOf"] if s.get("type") == "number")
    assert price["maximum"] == MAX_PRICE and quantity["maximum"] == MAX_QUANTITY
    assert client.post("/v1/events", json={**event, "price": MAX_PRICE}).status_code == 201
    over = client.post("/v1/events", json={**event, "price": MAX_PRICE * 1.0001})
    assert over.status_code == 422 and "body.event.price:" in over.get_json()["error"]["message"]
    assert client.post("/v1/events", json={**event, "price": 1e12}).status_code == 422


@pytest.mark.parametrize(
    "when, accepted",
    [
        ("2025-03-01T10:00:00Z", True),
        ("2025-03-01T10:00:00", True),
        ("2101-01-01T00:00:00Z", False),
        ("1969-12-31T23:59:59Z", False),
        ("9999-12-31T23:59:59Z", False),
        ("", False),
        ("   ", False),
    ],
)
def test_times_the_document_allows_are_the_times_the_api_takes(open_client, when, accepted):
    client, event = open_client
    spec = client.get("/openapi.json").get_json()
    occurred = next(
        s
        for s in spec["components"]["schemas"]["Event"]["properties"]["occurred_at"]["anyOf"]
        if s.get("type") == "string"
    )
    since = next(p for p in spec["paths"]["/v1/admin/metrics/online"]["get"]["parameters"] if p["name"] == "since")
    since = next(s for s in since["schema"]["anyOf"] if s.get("type") == "string")
    for documented_as in (occurred, since):  # minLength and pattern, as a JSON Schema validator reads them
        documented = len(when) >= documented_as["minLength"] and bool(re.search(documented_as["pattern"], when))
        assert documented == accepted, documented_as
    response = client.post("/v1/events", json={**event, "event_type": "view", "occurred_at": when})
    assert (response.status_code == 201) == accepted, response.get_json()
    report = client.get("/v1/admin/metrics/online", query_string={"since": when})
    assert (report.status_code == 200) == accepted, report.get_json()


def test_duplicate_keys_and_non_json_numbers_are_a_400(open_client, served):
    client, event = open_client
    before = _event_count(served)
    body = json.dumps(event)[:-1] + ', "price": 10, "price": 999999}'
    response = client.post("/v1/events", data=body, content_type="application/json")
    assert response.status_code == 400 and "'price' given twice" in response.get_json()["error"]["message"]
    nested = json.dumps({"events": [event]})[:-2] + ', "quantity": 1, "quantity": 2}]}'
    assert client.post("/v1/events", data=nested, content_type="application/json").status_code == 400
    nan = json.dumps(event)[:-1] + ', "price": NaN}'
    assert client.post("/v1/events", data=nan, content_type="application/json").status_code == 400
    assert _event_count(served) == before


def test_the_event_types_of_the_schema_are_the_configured_ones(open_client, served):
    client, event = open_client
    spec = client.get("/openapi.json").get_json()
    assert spec["components"]["schemas"]["Event"]["properties"]["event_type"]["enum"] == list(served.event_types)
    assert client.post("/v1/events", json={**event, "event_type": "dance"}).status_code == 422


@pytest.mark.parametrize(
    "header, hint",
    [
        ("{token}", "add 'Bearer '"),
        ("Token {token}", "must be Bearer"),
        ("Basic {token}", "must be Bearer"),
        ("Bearer", "missing API key"),
        ("", "missing API key"),
    ],
)
def test_a_key_without_bearer_is_told_to_add_it(served, header, hint):
    from api import create_app

    _, token = keys.create(store.connect(served.db), "read", "bearer-test")
    client = create_app(served).test_client()
    response = client.get("/v1/products/popular", headers={"Authorization": header.format(token=token)})
    assert response.status_code == 401 and hint in response.get_json()["error"]["message"]
    assert client.get("/v1/products/popular", headers={"Authorization": f"bearer {token}"}).status_code == 200
