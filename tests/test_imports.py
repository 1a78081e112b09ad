import gzip

import pytest
from conftest import ONLINE_RETAIL, write_csv

from recommender import store
from recommender.errors import ValidationError
from recommender.ingest import imports

CUSTOMERS = "id,email,name,birth_date,anniversary_date,timezone,created_at"
PRODUCTS = "id,name,category,price,in_stock,hidden,available_until"
EVENTS = "customer_id,product_id,event_type,quantity,occurred_at"
CONSENTS = "customer_id,purpose,granted,updated_at,source"


def test_small_shop_is_imported(small_shop):
    db = small_shop
    assert store.counts(db)["customers"] == 3
    ann = db["customers"].get("c1")
    assert ann["birth_date"] == "1990-02-28" and ann["timezone"] == "Europe/London"
    assert db["customers"].get("c3")["timezone"] == "UTC"
    assert db["products"].get("p3")["hidden"] == 1
    assert db["products"].get("p4")["in_stock"] is None
    events = {(r["customer_id"], r["event_type"]): r for r in db["interactions"].rows}
    assert events["c1", "purchase"]["quantity"] == 2
    assert events["c2", "view"]["quantity"] == 1
    # +02:00 is converted to UTC; a naive time is taken as UTC.
    assert events["c2", "view"]["occurred_at"] == 1740902400
    assert events["c3", "add_to_cart"]["occurred_at"] == 1741003200
    assert store.consenting_customers(db, "personalization") == ["c1", "c2"]
    assert store.consenting_customers(db, "marketing") == []


BAD_ROWS = [
    ("customers", CUSTOMERS, ",x@example.com,X,,,,", "missing id"),
    ("customers", CUSTOMERS, "c9,,,1990-02-30,,,", "no such day"),
    ("customers", CUSTOMERS, "c9,,,31/12/1990,,,", "bad date"),
    ("customers", CUSTOMERS, "c9,,,,,Mars/Olympus,", "unknown time zone"),
    ("customers", CUSTOMERS, "c7,,,,,,", "duplicate id 'c7' (first on line 2)"),
    ("products", PRODUCTS, "p9,Thing,misc,-3,1,0,", "price must be >= 0"),
    ("products", PRODUCTS, "p9,Thing,misc,three,1,0,", "not a number"),
    ("products", PRODUCTS, "p9,,misc,3,1,0,", "missing name"),
    ("products", PRODUCTS, "p9,Thing,misc,3,-1,0,", "in_stock must be >= 0"),
    ("interactions", EVENTS, "ghost,p1,view,1,2025-03-01T00:00:00Z", "unknown customer 'ghost'"),
    ("interactions", EVENTS, "c1,nope,view,1,2025-03-01T00:00:00Z", "unknown product 'nope'"),
    ("interactions", EVENTS, "c1,p1,teleport,1,2025-03-01T00:00:00Z", "unknown event type 'teleport'"),
    ("interactions", EVENTS, "c1,p1,view,1,yesterday", "bad timestamp"),
    ("interactions", EVENTS, "c1,p1,view,0,2025-03-01T00:00:00Z", "quantity must be > 0"),
    ("interactions", EVENTS, ",p1,view,1,2025-03-01T00:00:00Z", "missing customer_id"),
    ("consents", CONSENTS, "c1,telepathy,true,,", "unknown purpose"),
    ("consents", CONSENTS, "c1,marketing,perhaps,,", "not true/false"),
    ("consents", CONSENTS, "ghost,marketing,true,,", "unknown customer"),
]


@pytest.mark.parametrize("kind, header, bad, reason", BAD_ROWS, ids=[r[3] for r in BAD_ROWS])
def test_one_bad_row_fails_the_file_and_writes_nothing(small_shop, settings, tmp_path, kind, header, bad, reason):
    db = small_shop
    before = store.counts(db)
    good = {
        "customers": "c7,g@example.com,Good,,,UTC,",
        "products": "p7,Good,misc,1,1,0,",
        "interactions": "c2,p1,purchase,1,2025-04-01T00:00:00Z",
        "consents": "c2,marketing,true,,",
    }[kind]
    path = write_csv(tmp_path / f"bad_{kind}.csv", header, good, bad, good.replace("7", "8"))
    with pytest.raises(ValidationError) as info:
        imports.import_file(db, kind, path, settings)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ")
    assert reason in message
    assert "\n" not in message
    assert store.counts(db) == before


def test_every_bad_row_is_counted_in_the_message(small_shop, settings, tmp_path):
    path = write_csv(tmp_path / "p.csv", PRODUCTS, "a,,x,1,1,0,", "b,,x,1,1,0,", "c,C,x,1,1,0,")
    with pytest.raises(ValidationError, match=r"p.csv:2: missing name \(and 1 more bad row;"):
        imports.import_file(small_shop, "products", path, settings)


def test_missing_column_names_the_header_line(db, settings, tmp_path):
    path = write_csv(tmp_path / "e.csv", "customer_id,product_id,occurred_at", "c1,p1,2025-01-01")
    with pytest.raises(ValidationError, match=r"e.csv:1: missing column\(s\) event_type"):
        imports.import_file(db, "interactions", path, settings)


def test_missing_file_and_corrupt_gzip(db, settings, tmp_path):
    with pytest.raises(ValidationError, match="no such file"):
        imports.import_file(db, "customers", tmp_path / "absent.csv", settings)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress((CUSTOMERS + "\nc1,,,,,,\n").encode())[:-12])
    with pytest.raises(ValidationError, match="unreadable CSV"):
        imports.import_file(db, "customers", broken, settings)
    assert db["customers"].count == 0


def test_reimport_changes_nothing(small_shop, settings, tmp_path):
    db = small_shop
    before = store.counts(db)
    rows = {t: list(db[t].rows) for t in ("customers", "products", "interactions", "consents")}
    for kind in ("customers", "products", "interactions", "consents"):
        result = imports.import_file(db, kind, tmp_path / f"{kind}.csv", settings)
        assert result.new == 0 and result.changed == 0
    assert store.counts(db) == before
    assert {t: list(db[t].rows) for t in rows} == rows


def test_gzip_csv_and_duplicate_events_within_a_file_are_merged(small_shop, settings, tmp_path):
    path = tmp_path / "more.csv.gz"
    text = "\n".join([EVENTS, "c2,p1,view,1,2025-05-01T00:00:00Z", "c2,p1,view,2,2025-05-01T00:00:00Z"]) + "\n"
    path.write_bytes(gzip.compress(text.encode()))
    result = imports.import_file(small_shop, "interactions", path, settings)
    assert result.new == 1
    row = next(small_shop.query("SELECT quantity FROM interactions WHERE customer_id='c2' AND product_id='p1'"))
    assert row["quantity"] == 3


ORDERS = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def test_transactions_create_customers_products_and_purchases(db, settings, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        ORDERS,
        "1001,A1,RED MUG,6,2011-01-02 10:00:00,2.5,17850.0,UK",
        "1001,A1,RED MUG,2,2011-01-02 10:00:00,2.5,17850.0,UK",
        "1001,B2,BLUE PAN,1,2011-01-02 10:00:00,7.0,17850.0,UK",
        "C1002,A1,RED MUG,-6,2011-01-03 10:00:00,2.5,17850.0,UK",
        "1003,A1,RED MUG,1,2011-01-04 10:00:00,2.75,,UK",
        "1004,B2,,1,2011-02-01 09:00:00,8.0,12000,UK",
        "1005,B2,BLUE PAN,0,2011-02-02 09:00:00,8.0,12000,UK",
    )
    result = imports.import_transactions(db, path, settings, grant=["personalization"])
    assert result.rows == 7
    assert result.skipped == {"cancelled": 1, "no_customer": 1, "non_positive_quantity": 1, "negative_price": 0}
    assert result.created == {"customers": 2, "products": 2}
    assert result.new == 3  # the two A1 lines of one order are one event of quantity 8
    mug = next(db.query("SELECT quantity FROM interactions WHERE customer_id='17850' AND product_id='A1'"))
    assert mug["quantity"] == 8
    assert db["products"].get("B2")["price"] == 8.0  # the latest price wins
    assert db["products"].get("B2")["name"] == "BLUE PAN"
    assert db["customers"].get("12000")["created_at"] == "2011-02-01T09:00:00Z"
    consent_rows = list(db.query("SELECT customer_id, source FROM consents WHERE granted = 1 ORDER BY customer_id"))
    assert consent_rows == [{"customer_id": "12000", "source": "import"}, {"customer_id": "17850", "source": "import"}]

    again = imports.import_transactions(db, path, settings, grant=["personalization"])
    assert again.new == 0 and again.created == {"customers": 0, "products": 0}
    assert db["consent_log"].count == 2


def test_transactions_with_a_custom_mapping_and_a_bad_line(db, settings, tmp_path):
    path = write_csv(
        tmp_path / "shopify.csv",
        "order,sku,email,when,qty",
        "1,S1,x@y.z,2024-01-01T10:00:00Z,1",
        "2,S2,x@y.z,not a date,1",
    )
    mapping = imports.parse_mapping("customer=email,product=sku,occurred_at=when,quantity=qty,order=order,price=,name=")
    with pytest.raises(ValidationError, match=r"shopify.csv:3: when: bad timestamp"):
        imports.import_transactions(db, path, settings, mapping=mapping)
    assert store.counts(db)["interactions"] == 0 and db["customers"].count == 0
    with pytest.raises(ValidationError, match="unknown --map field"):
        imports.parse_mapping("client=email")
    with pytest.raises(ValidationError, match="missing column"):
        imports.import_transactions(db, path, settings)  # default mapping names Online Retail's columns
    with pytest.raises(ValidationError, match="unknown purpose"):
        imports.import_transactions(db, path, settings, mapping=mapping, grant=["telepathy"])


@pytest.mark.dataset
@pytest.mark.skipif(not ONLINE_RETAIL.exists(), reason="shared Online Retail dataset not present")
def test_online_retail_import(db, settings):
    result = imports.import_transactions(db, ONLINE_RETAIL, settings, grant=["personalization"])
    assert result.rows == 541_909
    assert result.created == {"customers": 4339, "products": 3665}
    assert result.skipped["no_customer"] + result.skipped["cancelled"] >= 135_080
    # 397,924 kept lines; lines repeating (customer, product, time) are merged into one event.
    total = db.execute("SELECT count(*), sum(quantity) FROM interactions").fetchone()
    assert 380_000 < total[0] <= 397_924
    assert (
        db.execute("SELECT count(DISTINCT customer_id || '/' || product_id) FROM interactions").fetchone()[0] == 266_802
    )
    assert len(store.consenting_customers(db, "personalization")) == 4339


def test_reimporting_a_customer_without_created_at_keeps_when_they_joined(small_shop, settings, tmp_path):
    # c3's line has no created_at: "now" when the customer is new, never a new time for a known one
    # (the old import rewrote it on every re-import; a test comparing rows caught it only across a second).
    db = small_shop
    db.execute("UPDATE customers SET created_at = '2020-01-01T00:00:00Z' WHERE id = 'c3'")
    result = imports.import_file(db, "customers", tmp_path / "customers.csv", settings)
    assert result.new == 0
    assert db.execute("SELECT created_at FROM customers WHERE id = 'c3'").fetchone()[0] == "2020-01-01T00:00:00Z"
