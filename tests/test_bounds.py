"""One price bound and one quantity bound for every door (``recommender/values.py``).

A unit price of 1,000,000,000 and a quantity of 1,000,000 are taken; a price of
1,000,000,001 or a quantity of 1,000,001 is refused, naming the field, by a CSV
import, by the API (a 422) and by the events door called directly. The values
are written by hand, not read from the constants, so moving a bound in one place
only fails here.
"""

from __future__ import annotations

import pytest
from conftest import write_csv

from recommender import store
from recommender.errors import ValidationError
from recommender.ingest import events, imports

PRODUCTS = "id,name,category,price,in_stock,hidden,available_until"
INTERACTIONS = "customer_id,product_id,event_type,quantity,occurred_at"


@pytest.fixture
def client(small_shop, settings):
    from api import create_app

    settings.serve.open = True
    settings.privacy.decision_log = False
    app = create_app(settings)
    app.config["TESTING"] = True
    return app.test_client()


def test_the_constants_are_the_ones_the_docs_state():
    from recommender import values

    assert values.MAX_PRICE == 1_000_000_000 and values.MAX_QUANTITY == 1_000_000
    assert imports.MAX_PRICE is values.MAX_PRICE and imports.MAX_QUANTITY is values.MAX_QUANTITY


def test_a_price_at_the_bound_is_taken_and_one_over_is_refused_by_a_csv_import(small_shop, settings, tmp_path):
    ok = write_csv(tmp_path / "ok.csv", PRODUCTS, "p9,Gold Mug,kitchen,1000000000,1,0,")
    imports.import_file(small_shop, "products", ok, settings)
    assert store.catalogue_rows_of(small_shop, ["p9"])[0][3] == 1_000_000_000
    over = write_csv(tmp_path / "over.csv", PRODUCTS, "p10,Gold Pan,kitchen,1000000001,1,0,")
    with pytest.raises(ValidationError, match=r"over\.csv:2.*price must be <= 1e\+09, got '1000000001'"):
        imports.import_file(small_shop, "products", over, settings)
    assert store.catalogue_rows_of(small_shop, ["p10"]) == []


def test_a_quantity_at_the_bound_is_taken_and_one_over_is_refused_by_a_csv_import(small_shop, settings, tmp_path):
    before = small_shop["interactions"].count
    ok = write_csv(tmp_path / "ok.csv", INTERACTIONS, "c1,p2,purchase,1000000,2025-04-01T10:00:00Z")
    imports.import_file(small_shop, "interactions", ok, settings)
    assert small_shop["interactions"].count == before + 1
    over = write_csv(tmp_path / "over.csv", INTERACTIONS, "c1,p2,purchase,1000001,2025-04-02T10:00:00Z")
    with pytest.raises(ValidationError, match=r"over\.csv:2.*quantity must be <= 1e\+06, got '1000001'"):
        imports.import_file(small_shop, "interactions", over, settings)
    assert small_shop["interactions"].count == before + 1


EVENT = {"customer_id": "c1", "product_id": "p2", "event_type": "purchase"}


@pytest.mark.parametrize(
    "field, at, over, bound",
    [
        ("price", 1000000000, 1000000001, "1000000000"),
        ("price", 1e9, 1.000000001e9, "1000000000"),
        ("quantity", 1000000, 1000001, "1000000"),
    ],
)
def test_the_api_takes_the_bound_and_refuses_just_over_it(client, small_shop, field, at, over, bound):
    before = small_shop["interactions"].count
    assert client.post("/v1/events", json={**EVENT, field: at}).status_code == 201
    refused = client.post("/v1/events", json={**EVENT, field: over})
    assert refused.status_code == 422
    message = refused.get_json()["error"][
        "message"
    ]  # e.g. "body.event.price: Input should be less than or equal to 1000000000"
    assert f"body.event.{field}: " in message and f"less than or equal to {bound}" in message
    assert small_shop["interactions"].count == before + 1
    document = client.get("/openapi.json").get_json()["components"]["schemas"]["Event"]["properties"][field]
    assert next(s for s in document["anyOf"] if s.get("type") == "number")["maximum"] == at


@pytest.mark.parametrize("field, at, over", [("price", 1000000000, 1000000001), ("quantity", 1000000, 1000001)])
def test_the_events_door_itself_refuses_just_over_the_bound(small_shop, settings, field, at, over):
    before = small_shop["interactions"].count
    assert events.ingest(small_shop, settings, [{**EVENT, field: at}])["accepted"] == 1
    with pytest.raises(ValidationError, match=rf"events\[1\]\.{field}: must be a number"):
        events.ingest(small_shop, settings, [{**EVENT, field: at}, {**EVENT, field: over}])
    assert small_shop["interactions"].count == before + 1  # all or nothing
