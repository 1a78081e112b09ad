"""A shop whose "bought" event is called ``order``: exclude-purchased, bought-together and campaigns keep working.

The demo shop is imported with every ``purchase`` renamed ``order`` (the
file is rewritten, then read through the real importer), trained by the real
retrain job under ``event_weights = view/add_to_cart/order`` and
``purchase_events = ("order",)``, and asked through the real Flask app.
"""

from __future__ import annotations

import gzip
import shutil

import pytest
from conftest import SAMPLE_DIR, write_csv

from recommender import campaigns, store
from recommender.config import load_settings
from recommender.errors import ValidationError
from recommender.ingest import imports
from recommender.training import run as training

ORDER_WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "order": 5.0}


def order_settings(root):
    settings = load_settings(
        environ={},
        overrides={
            "db": root / "shop.db",
            "model_dir": root / "models",
            "event_weights": ORDER_WEIGHTS,
            "purchase_events": ["order"],
        },
    )
    settings.als.factors = 16
    settings.serve.model_check_seconds = 0.0
    settings.serve.catalogue_ttl_seconds = 0.0
    return settings


@pytest.fixture(scope="module")
def order_shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("order-shop")
    sample = root / "sample"
    shutil.copytree(SAMPLE_DIR, sample)
    with gzip.open(SAMPLE_DIR / "interactions.csv.gz", "rt", encoding="utf-8") as fh:
        text = fh.read()
    assert ",purchase," in text
    with gzip.open(sample / "interactions.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(text.replace(",purchase,", ",order,"))
    settings = order_settings(root)
    db = store.connect(settings.db, create=True)
    imports.load_sample(db, settings, sample)
    assert db.execute("SELECT count(*) FROM interactions WHERE event_type = 'purchase'").fetchone()[0] == 0
    training.train(db, settings, publish=True, force=True)
    db.conn.close()
    return settings


@pytest.fixture
def order_client(order_shop):
    from api import create_app

    order_shop.serve.open = True
    app = create_app(order_shop)
    app.config["TESTING"] = True
    return app.test_client()


def ordered_by(settings, customer_id):
    db = store.connect(settings.db)
    return {
        r[0]
        for r in db.execute(
            "SELECT product_id FROM interactions WHERE customer_id = ? AND event_type = 'order'", [customer_id]
        )
    }


def busy_orderers(settings, n=5):
    db = store.connect(settings.db)
    return [
        r[0]
        for r in db.execute(
            "SELECT i.customer_id FROM interactions i JOIN consents c ON c.customer_id = i.customer_id "
            "AND c.purpose = 'personalization' AND c.granted = 1 WHERE i.event_type = 'order' "
            "GROUP BY i.customer_id ORDER BY count(*) DESC, i.customer_id LIMIT ?",
            [n],
        )
    ]


def test_exclude_purchased_reads_the_shops_order_event(order_client, order_shop):
    leaked_without_filter = 0
    for cid in busy_orderers(order_shop):
        ordered = ordered_by(order_shop, cid)
        assert ordered
        url = f"/v1/customers/{cid}/recommendations?n=100&in_stock_only=false"
        body = order_client.get(url).get_json()
        assert body["mode"] == "personalized"
        assert not ordered & {i["product_id"] for i in body["items"]}
        unfiltered = order_client.get(url + "&exclude_purchased=false").get_json()
        leaked_without_filter += len(ordered & {i["product_id"] for i in unfiltered["items"]})
    # The filter does real work: what these customers ordered ranks high when it is not applied.
    assert leaked_without_filter > 0


def test_bought_together_is_computed_from_orders(order_client, order_shop):
    db = store.connect(order_shop.db)
    product = db.execute(
        "SELECT product_id FROM interactions WHERE event_type = 'order' "
        "GROUP BY product_id ORDER BY count(*) DESC, product_id LIMIT 1"
    ).fetchone()[0]
    body = order_client.get(f"/v1/products/{product}/bought-together?n=5&in_stock_only=false").get_json()
    assert body["mode"] == "cooccurrence" and body["items"]
    assert body["items"][0]["lift"] > 1


def test_campaign_offers_leave_out_what_was_ordered(order_shop):
    db = store.connect(order_shop.db)
    result = campaigns.run(
        db, order_shop, campaigns.CampaignRequest(occasion="all", date="2026-06-01", days_ahead=30), dry_run=True
    )
    assert result.offers
    buyers = 0
    for o in result.offers:
        ordered = ordered_by(order_shop, o.customer_id)
        buyers += bool(ordered)
        assert not ordered & set(o.product_ids)
    assert buyers > 0


def test_import_transactions_writes_the_first_purchase_event(db, settings, tmp_path):
    settings.event_weights = ORDER_WEIGHTS
    settings.purchase_events = ("order", "purchase")
    path = write_csv(
        tmp_path / "orders.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country",
        "1001,A1,RED MUG,2,2011-01-02 10:00:00,2.5,17850,UK",
    )
    imports.import_transactions(db, path, settings)
    assert [tuple(r) for r in db.execute("SELECT customer_id, product_id, event_type FROM interactions")] == [
        ("17850", "A1", "order")
    ]
    settings.purchase_events = ()
    with pytest.raises(ValidationError, match="purchase_events is empty"):
        imports.import_transactions(db, path, settings)
