"""The API document is complete and true: statuses, formats, examples, Allow on 405, and a usable /docs page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from api.examples import EXAMPLES
from api.schema import OPERATIONS

PROBES = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture
def spec(client):
    return client.get("/openapi.json").get_json()


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            yield path, method, op


def test_every_operation_lists_every_status_it_can_answer(spec):
    ops = list(operations(spec))
    assert len(ops) == 29 and {path for path, _, _ in ops} >= PROBES
    for path, method, op in ops:
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        assert {"400", "503"} <= codes, where
        secured = path not in PROBES
        assert ("401" in codes) is secured, where
        role = re.search(r"Role: `(\w+)`", op["description"])
        assert (role is not None) is secured, where
        assert ("403" in codes) is (secured and role.group(1) != "read"), where
        assert ("404" in codes) is ("{" in path), where
        assert ("413" in codes) is ("requestBody" in op), where
        assert ("422" in codes) is secured, where
        for code, response in op["responses"].items():
            if not code.startswith("2"):
                assert "application/json" in response["content"], (where, code)
    assert set(spec["paths"]["/readyz"]["get"]["responses"]) == {"200", "400", "503"}
    assert set(spec["paths"]["/v1/events"]["post"]["responses"]) == {"201", "400", "401", "403", "413", "422", "503"}
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def test_dates_have_formats(spec):
    schemas = spec["components"]["schemas"]
    occurred = schemas["Event"]["properties"]["occurred_at"]
    assert occurred["format"] == "date-time"
    assert schemas["PreviewBody"]["properties"]["date"]["format"] == "date"
    offers_date = next(
        p for p in spec["paths"]["/v1/customers/{customer_id}/offers"]["get"]["parameters"] if p["name"] == "date"
    )
    assert offers_date["schema"]["format"] == "date"
    assert schemas["ActiveOffer"]["properties"]["valid_until"]["format"] == "date"


def key_of(op):
    return op.method + " " + re.sub(r"<(\w+)>", r"{\1}", op.path)


def test_every_operation_has_an_example_that_fits_its_models(spec):
    assert {key_of(o) for o in OPERATIONS} == set(EXAMPLES)
    for op in OPERATIONS:
        example = EXAMPLES[key_of(op)]
        assert "response" in example, op.path
        if op.response is not None:
            op.response.model_validate(example["response"])
        if op.body is not None:
            op.body.model_validate(example["request"])
        for name in re.findall(r"<(\w+)>", op.path):
            assert name in example["path"], (op.path, name)
    events = spec["paths"]["/v1/events"]["post"]
    assert events["requestBody"]["content"]["application/json"]["example"]["events"][0]["event_id"]
    assert events["responses"]["201"]["content"]["application/json"]["example"] == {"accepted": 2, "duplicates": 0}


def test_the_example_requests_work_on_the_demo_shop(client):
    """Each documented read example, sent as written, answers with the documented status."""
    # the rule the rules' read examples name, created as its own example says
    created = client.post("/v1/admin/rules", json=EXAMPLES["POST /v1/admin/rules"]["request"])
    assert created.status_code == 201, created.get_json()
    for key, example in EXAMPLES.items():
        method, path = key.split(" ", 1)
        if method != "GET" or path == "/metrics":
            continue
        url = path
        for name, value in example.get("path", {}).items():
            url = url.replace("{" + name + "}", value)
        response = client.get(url + ("?" + example["query"] if "query" in example else ""))
        assert response.status_code == 200, (key, response.get_json())
        assert set(response.get_json()) == set(example["response"]), key


@pytest.mark.parametrize(
    "method, url, allowed",
    [
        ("post", "/healthz", {"GET", "HEAD", "OPTIONS"}),
        ("delete", "/v1/events", {"POST", "OPTIONS"}),
        ("post", "/v1/products/popular", {"GET", "HEAD", "OPTIONS"}),
        # An id may hold '/', so this path also names customer "C0001/consents", whom DELETE would erase.
        ("patch", "/v1/customers/C0001/consents", {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}),
    ],
)
def test_405_says_what_is_allowed(client, method, url, allowed):
    response = getattr(client, method)(url)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
    assert response.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "method, url, kwargs",
    [
        ("get", "/v1/products/popular?n=2", {}),
        ("get", "/healthz", {}),
        ("get", "/openapi.json", {}),
        ("get", "/v1/products/NOPE/similar", {}),
        ("post", "/healthz", {}),
        ("post", "/v1/events", {"data": b"{", "content_type": "application/json"}),
        ("post", "/v1/events", {"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"}),
        ("get", "/v1/customers/C0001/recommendations?n=0", {}),
    ],
)
def test_json_answers_end_with_a_newline(client, method, url, kwargs):
    response = getattr(client, method)(url, **kwargs)
    assert response.mimetype == "application/json"
    assert response.data.endswith(b"}\n")
    json.loads(response.data)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.text, self.stack, self.code = set(), [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href", "").startswith("#"):
            self.links.append(attrs["href"][1:])
        if tag not in ("meta", "br", "html"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag == "html":
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack and self.stack[-1] == "code":
            self.code.append(data)


def test_the_docs_page_is_enough_to_integrate_from(client, spec):
    response = client.get("/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = _Page()
    page.feed(response.data.decode())
    text = "".join(page.text)
    assert set(page.links) <= page.ids  # every link to a type or operation lands somewhere
    for path, method, op in operations(spec):
        assert op["operationId"] in page.ids and f"{method.upper()} {path}" in text
    assert text.count("curl -X ") == 29
    assert "Request body (JSON)" in text and "event_id" in page.code
    assert "Example response (201, application/json)" in text and '"duplicates": 0' in text
    assert "string | null (date-time)" in text  # a readable nullable type, with its format
    assert "integer, ≥ 1, ≤ 100" in text
    assert "`" not in text  # Markdown and reST backticks became <code>
    assert "{'" not in text and "anyOf" not in text  # no Python dicts or raw schema keywords
    assert "No API key needed." in text and "/healthz" in text and "/metrics" in text
    assert "Allow" in text and "405" in text
