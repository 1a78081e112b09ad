"""Every import summary adds up: each row read is counted once, under one named outcome.

The files here are written by hand with the outcome of every line beside it, so the
expected counts are read off the file, not computed by the code under test.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import ONLINE_RETAIL, write_csv

from recommender import privacy, store
from recommender.cli import cli
from recommender.ingest import imports
from recommender.store import events as store_events

ORDERS = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID"


def adds_up(result: imports.ImportResult) -> None:
    outcomes = result.outcomes()
    assert sum(outcomes.values()) == result.rows, (outcomes, result.rows)
    assert result.to_dict()["outcomes"] == outcomes and result.to_dict()["rows"] == result.rows


@pytest.fixture
def orders(db, settings, tmp_path):
    """A shop that imported one order file, then erased customer 12000; and a second file (every outcome)."""
    first = write_csv(
        tmp_path / "first.csv",
        ORDERS,
        "999,B2,BLUE PAN,1,2011-01-01 10:00:00,7.0,12000",
        "1001,A1,RED MUG,6,2011-01-02 10:00:00,2.5,17850",
        "1002,B2,BLUE PAN,1,2011-01-03 10:00:00,7.0,17850",
    )
    imports.import_transactions(db, first, settings)
    privacy.forget(db, settings, "12000")
    return write_csv(
        tmp_path / "second.csv",
        ORDERS,
        "1001,A1,RED MUG,6,2011-01-02 10:00:00,2.5,17850",  # unchanged
        "1002,B2,BLUE PAN,3,2011-01-03 10:00:00,7.0,17850",  # changed (1 -> 3)
        "1003,A1,RED MUG,1,2011-01-04 10:00:00,2.5,17850",  # new
        "1003,A1,RED MUG,2,2011-01-04 10:00:00,2.5,17850",  # merged into the line above
        "C1004,A1,RED MUG,-1,2011-01-05 10:00:00,2.5,17850",  # cancelled (order number)
        "1005,A1,RED MUG,-2,2011-01-05 11:00:00,2.5,17850",  # cancelled (negative quantity)
        "1006,A1,RED MUG,1,2011-01-05 12:00:00,2.5,",  # no customer
        "1007,A1,RED MUG,0,2011-01-05 13:00:00,2.5,17850",  # non-positive quantity
        "1008,A1,RED MUG,1,2011-01-05 14:00:00,-2.5,17850",  # negative price
        "1009,B2,BLUE PAN,1,2011-01-06 10:00:00,7.0,12000",  # erased
        "1009,A1,RED MUG,1,2011-01-06 10:00:00,2.5,12000",  # erased
        "1010,C3,GREEN POT,1,2011-01-07 10:00:00,3.0,13000",
    )  # new (new customer and product)


def test_every_line_of_an_order_export_is_one_outcome(db, settings, orders):
    result = imports.import_transactions(db, orders, settings, skip_erased=True)
    assert result.rows == 12
    assert (result.new, result.changed, result.unchanged, result.merged) == (2, 1, 1, 1)
    assert result.skipped == {
        "cancelled": 2,
        "no_customer": 1,
        "non_positive_quantity": 1,
        "negative_price": 1,
        "erased": 2,
    }
    assert result.created == {"customers": 1, "products": 1}
    adds_up(result)
    quantities = dict(db.execute("SELECT occurred_at, quantity FROM interactions WHERE customer_id = '17850'"))
    assert sorted(quantities.values()) == [3.0, 3.0, 6.0]  # changed to 3; 1 + 2 merged
    assert db.execute("SELECT count(*) FROM interaction_updates").fetchone()[0] == 1  # the one real change
    again = imports.import_transactions(db, orders, settings, skip_erased=True)
    assert (again.new, again.changed, again.unchanged, again.merged) == (0, 0, 4, 1)
    adds_up(again)


def test_the_order_summary_prints_the_sum_and_json_gives_the_same_numbers(runner, settings, orders):
    human = runner.invoke(cli, ["import-transactions", str(orders), "--skip-erased"])
    assert human.exit_code == 0, human.output
    assert (
        "12 rows = 2 new + 1 updated + 1 unchanged + 1 merged into an earlier line (same key) + 7 skipped; "
        "skipped cancelled=2 + no_customer=1 + non_positive_quantity=1 + negative_price=1 + erased=2; "
        "created 1 customers, 1 products;"
    ) in human.stdout
    as_json = runner.invoke(cli, ["import-transactions", str(orders), "--skip-erased", "--json"])
    body = json.loads(as_json.stdout)
    assert body["rows"] == 12 and sum(body["outcomes"].values()) == 12
    assert body["outcomes"] == {
        "new": 0,
        "changed": 0,
        "unchanged": 4,
        "merged": 1,
        "skipped_cancelled": 2,
        "skipped_no_customer": 1,
        "skipped_non_positive_quantity": 1,
        "skipped_negative_price": 1,
        "skipped_erased": 2,
    }


def test_every_row_of_the_four_csv_kinds_is_one_outcome(small_shop, settings, tmp_path):
    db = small_shop
    privacy.forget(db, settings, "c3")
    changes_before = db.execute("SELECT count(*) FROM product_changes").fetchone()[0]
    files = {
        "customers": write_csv(
            tmp_path / "c.csv",
            "id,email,name,birth_date,anniversary_date,timezone,created_at",
            "c1,a@example.com,Ann,1990-02-28,,Europe/London,2025-01-01T00:00:00Z",  # unchanged
            "c2,b@example.com,Robert,1992-02-29,2015-06-01,Pacific/Auckland,2025-01-02T00:00:00Z",  # changed
            "c3,,Cy,,,,",  # erased
            "c4,d@example.com,Di,,,,2025-02-01T00:00:00Z",
        ),  # new
        "products": write_csv(
            tmp_path / "p.csv",
            "id,name,category,price,in_stock,hidden,available_until",
            "p1,Mug,kitchen,9.5,10,0,",  # unchanged
            "p2,Pan,kitchen,30,0,0,",  # changed (price)
            "p5,Bowl,kitchen,5,1,0,",
        ),  # new
        "interactions": write_csv(
            tmp_path / "i.csv",
            "customer_id,product_id,event_type,quantity,occurred_at",
            "c1,p1,view,1,2025-03-01T10:00:00Z",  # unchanged
            "c1,p1,purchase,5,2025-03-01T10:05:00Z",  # changed (2 -> 5)
            "c2,p1,view,1,2025-04-01T00:00:00Z",  # new
            "c2,p1,view,2,2025-04-01T00:00:00Z",  # merged into the line above
            "c3,p4,add_to_cart,1,2025-03-03 12:00:00",
        ),  # erased
        "consents": write_csv(
            tmp_path / "k.csv",
            "customer_id,purpose,granted,updated_at,source",
            "c1,personalization,true,2025-01-01T00:00:00Z,signup",  # unchanged (the same decision)
            "c1,marketing,true,2025-02-01T00:00:00Z,email",  # recorded (a change)
            "c2,personalization,false,2020-01-01T00:00:00Z,old",  # stale (older than the current one)
            "c2,marketing,false,2025-02-01T00:00:00Z,email",  # recorded (a first decision)
            "c3,marketing,true,2025-02-01T00:00:00Z,email",
        ),  # erased
    }
    expected = {  # (rows, new, changed, unchanged, merged, skipped), read off the files above
        "customers": (4, 1, 1, 1, 0, {"erased": 1}),
        "products": (3, 1, 1, 1, 0, {}),
        "interactions": (5, 1, 1, 1, 1, {"erased": 1}),
        "consents": (5, 0, 2, 1, 0, {"erased": 1, "stale": 1}),
    }
    for kind, path in files.items():
        result = imports.import_file(db, kind, path, settings, skip_erased=kind != "products")
        got = (result.rows, result.new, result.changed, result.unchanged, result.merged, result.skipped)
        assert got == expected[kind], kind
        adds_up(result)
    # The change log holds the real changes only: p2's price and the new p5, not the unchanged p1.
    assert db.execute("SELECT count(*) FROM product_changes").fetchone()[0] == changes_before + 2
    merged = db.execute("SELECT quantity FROM interactions WHERE customer_id = 'c2' AND product_id = 'p1'")
    assert merged.fetchone()[0] == 3


def test_a_bulk_import_sets_indexes_aside_and_stores_the_same(db, settings, tmp_path, monkeypatch):
    lines = [
        f"{1000 + i},P{i % 7},Thing {i % 7},{1 + i % 3},2011-01-{1 + i % 28:02d} 10:{i % 60:02d}:00,1.5,C{i % 11}"
        for i in range(300)
    ]
    path = write_csv(tmp_path / "bulk.csv", ORDERS, *lines)

    def stored(database):
        return {
            t: database.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("interactions", "customers", "products", "product_changes")
        }

    def indexes(database):
        return database.execute(
            "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'interactions' ORDER BY name"
        ).fetchall()

    plain = imports.import_transactions(db, path, settings)
    other = store.connect(tmp_path / "bulk.db", create=True)
    monkeypatch.setattr(store_events, "BULK_IMPORT_ROWS", 10)
    bulk = imports.import_transactions(other, path, settings)
    assert bulk.to_dict() | {"seconds": 0} == plain.to_dict() | {"seconds": 0}
    assert stored(other) == stored(db) and indexes(other) == indexes(db)
    assert other.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert other.execute("PRAGMA cache_size").fetchone()[0] == db.execute("PRAGMA cache_size").fetchone()[0]

    # A failure after the indexes were set aside leaves them (and the rows) as they were.
    third = store.connect(tmp_path / "third.db", create=True)
    before = indexes(third)
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), store.transaction(third):
        store.import_interactions(third, [("ghost", "P1", "purchase", 1.0, 100)] * 20, expected=20)
    assert indexes(third) == before and third.execute("SELECT count(*) FROM interactions").fetchone()[0] == 0


@pytest.mark.dataset
@pytest.mark.skipif(not ONLINE_RETAIL.exists(), reason="shared Online Retail dataset not present")
def test_online_retail_summary_adds_up(db, settings):
    result = imports.import_transactions(db, ONLINE_RETAIL, settings, grant=["personalization"])
    assert result.rows == 541_909
    adds_up(result)
    # 541,909 = 387,797 events + 10,127 lines repeating an event's customer, product and second
    #           + 10,624 cancelled + 133,361 without a customer (the 10,127 "unaccounted" rows)
    assert (result.new, result.merged) == (387_797, 10_127)
    assert (result.skipped["cancelled"], result.skipped["no_customer"]) == (10_624, 133_361)
