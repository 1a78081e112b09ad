"""The serving catalogue follows the products table by its change log, not by re-reading it.

Every expectation is checked against SQL over the products table itself (the
rule written out independently of ``recommender.serving.catalogue``) or against a
catalogue that read everything afresh.
"""

import datetime as dt
import random

import numpy as np
import pytest

from recommender import store
from recommender.serving.catalogue import Catalogue, ListFilters

TODAY = dt.date.today().isoformat()
LATER = (dt.date.today() + dt.timedelta(days=30)).isoformat()
EARLIER = (dt.date.today() - dt.timedelta(days=3)).isoformat()


def product(
    i: int,
    price: float = 10.0,
    stock: int | None = 5,
    hidden: int = 0,
    until: str | None = None,
    category: str | None = "kitchen",
) -> tuple:
    return (f"p{i:04d}", f"Product {i}", category, price, stock, hidden, until)


@pytest.fixture
def db(tmp_path):
    db = store.connect(tmp_path / "shop.db", create=True)
    store.upsert_products(db, [product(i, price=float(i)) for i in range(50)])
    yield db
    db.conn.close()


def allowed_by_sql(db, max_price: float | None = None, category: str | None = None) -> set[str]:
    """The list rules as one SQL query: visible, available today, in stock (or untracked), in the band."""
    sql = (
        "SELECT id FROM products WHERE hidden = 0 AND (available_until IS NULL OR available_until >= ?) "
        "AND (in_stock IS NULL OR in_stock > 0)"
    )
    args: list = [TODAY]
    if max_price is not None:
        sql += " AND price <= ?"
        args.append(max_price)
    if category is not None:
        sql += " AND category = ?"
        args.append(category)
    return {r[0] for r in db.execute(sql, args)}


def allowed_by_catalogue(catalogue: Catalogue, filters: ListFilters) -> set[str]:
    mask = catalogue.product_mask(filters)
    return {p for p in catalogue.products if mask[catalogue.index[p]]}


def test_a_refresh_with_nothing_changed_reads_no_product_and_a_change_reads_only_that_row(db):
    catalogue = Catalogue(["p0001", "p0002"], ttl=0.0)
    catalogue.refresh(db)
    assert catalogue.full_loads == 1 and catalogue.products["p0003"]["price"] == 3.0
    # the same feed again changes nothing: the triggers log only real changes
    store.upsert_products(db, [product(i, price=float(i)) for i in range(50)])
    before = catalogue.seq
    catalogue.refresh(db)
    assert catalogue.seq == before
    store.upsert_products(db, [product(3, price=99.0), product(4, price=4.0, stock=0)])
    catalogue.refresh(db)
    assert catalogue.full_loads == 1  # followed by its changes
    assert catalogue.products["p0003"]["price"] == 99.0
    assert allowed_by_catalogue(catalogue, ListFilters(max_price=10.0)) == allowed_by_sql(db, 10.0)
    assert "p0004" not in allowed_by_catalogue(catalogue, ListFilters())  # out of stock now


def test_added_and_deleted_products_come_and_go_and_model_items_follow(db):
    catalogue = Catalogue(["p0001", "p0010", "p0100"], ttl=0.0)  # p0100 does not exist yet
    catalogue.refresh(db)
    assert catalogue.rows_of_items.tolist()[2] == -1
    store.upsert_products(db, [product(100, price=1.0, category="garden")])
    with db.conn:
        db.conn.execute("DELETE FROM products WHERE id = 'p0010'")
    catalogue.refresh(db)
    assert catalogue.full_loads == 1
    assert "p0100" in catalogue.products and "p0010" not in catalogue.products
    assert catalogue.products["p0100"]["category"] == "garden"
    rows = catalogue.rows_of_items
    assert rows[1] == -1 and rows[2] >= 0 and catalogue.ids[rows[2]] == "p0100"
    assert catalogue.mask(ListFilters()).tolist() == [True, False, True]
    assert allowed_by_catalogue(catalogue, ListFilters(categories=("garden",))) == {"p0100"}
    assert allowed_by_catalogue(catalogue, ListFilters()) == allowed_by_sql(db)


def test_many_changes_at_once_are_read_in_full_and_a_renamed_id_moves(db):
    catalogue = Catalogue([], ttl=0.0)
    catalogue.refresh(db)
    with db.conn:
        db.conn.execute("UPDATE products SET id = 'q0007' WHERE id = 'p0007'")
    catalogue.refresh(db)
    assert catalogue.full_loads == 1 and "q0007" in catalogue.products and "p0007" not in catalogue.products
    store.upsert_products(db, [product(i, price=float(i) + 0.5) for i in range(2000, 3100)])  # 1,100 new rows
    catalogue.refresh(db)
    assert catalogue.full_loads == 2 and len(catalogue.products) == 50 + 1100
    assert catalogue.ids == sorted(catalogue.ids)  # a full load is in id order again


def test_after_a_month_of_random_changes_the_catalogue_equals_the_table(db):
    rng = random.Random(7)
    catalogue = Catalogue([f"p{i:04d}" for i in range(0, 120, 3)], ttl=0.0)
    catalogue.refresh(db)
    alive = set(range(50))
    for day in range(30):
        for _ in range(rng.randrange(1, 12)):
            i = rng.randrange(120)
            roll = rng.random()
            if roll < 0.15 and i in alive:
                with db.conn:
                    db.conn.execute("DELETE FROM products WHERE id = ?", [f"p{i:04d}"])
                alive.discard(i)
            else:
                store.upsert_products(
                    db,
                    [
                        product(
                            i,
                            price=float(rng.randrange(1, 40)),
                            stock=rng.choice([None, 0, 3]),
                            hidden=int(rng.random() < 0.1),
                            until=rng.choice([None, EARLIER, LATER]),
                            category=rng.choice(["kitchen", "garden", None]),
                        )
                    ],
                )
                alive.add(i)
        catalogue.refresh(db)
        assert set(catalogue.products) == {r[0] for r in db.execute("SELECT id FROM products")}, day
        for max_price, category in ((None, None), (20.0, None), (None, "garden"), (15.0, "kitchen")):
            filters = ListFilters(max_price=max_price, categories=(category,) if category else ())
            assert allowed_by_catalogue(catalogue, filters) == allowed_by_sql(db, max_price, category), (day, filters)
        fresh = Catalogue(catalogue.item_ids, ttl=0.0)
        fresh.refresh(db)
        assert np.array_equal(catalogue.mask(ListFilters()), fresh.mask(ListFilters()))
        assert [catalogue.ids[r] if r >= 0 else None for r in catalogue.rows_of_items] == [
            fresh.ids[r] if r >= 0 else None for r in fresh.rows_of_items
        ]
    assert catalogue.full_loads == 1


def test_a_new_models_catalogue_starts_from_the_old_products_without_reading_them(db):
    old = Catalogue(["p0001", "p0002"], ttl=0.0)
    old.refresh(db)
    new = Catalogue(["p0002", "p0003", "p0004"], ttl=0.0)
    new.adopt(old)
    store.upsert_products(db, [product(3, price=0.5)])
    new.refresh(db)
    assert new.full_loads == 0 and new.products["p0003"]["price"] == 0.5
    assert [new.ids[r] for r in new.rows_of_items] == ["p0002", "p0003", "p0004"]


def test_a_database_made_before_the_change_log_starts_it_with_its_products(tmp_path):
    from recommender.store.connection import migrate_schema

    path = tmp_path / "old.db"
    old = store.connect(path, create=True, migrate=False)
    assert migrate_schema(old, 8) == 8  # the schema before the change log
    with old.conn:
        old.conn.execute("INSERT INTO products (id, name) VALUES ('a', 'A'), ('b', 'B')")
    old.conn.close()
    db = store.connect(path)  # migrates to the current version: the log starts empty
    assert db.execute("SELECT count(*) FROM product_changes").fetchone()[0] == 0
    catalogue = Catalogue([], ttl=0.0)
    catalogue.refresh(db)
    with db.conn:
        db.conn.execute("UPDATE products SET hidden = 1 WHERE id = 'b'")
    catalogue.refresh(db)
    assert catalogue.full_loads == 1 and allowed_by_catalogue(catalogue, ListFilters(in_stock_only=False)) == {"a"}


def test_compacting_the_log_keeps_what_every_reader_still_needs(db):
    behind = Catalogue([], ttl=0.0)
    behind.refresh(db)
    for price in (1.0, 2.0, 3.0):
        store.upsert_products(db, [product(5, price=price), product(6, price=price)])
    ahead = Catalogue([], ttl=0.0)
    ahead.refresh(db)
    newest = ahead.seq
    store.upsert_products(db, [product(7, price=70.0)])
    # 50 first rows + 3 x 2 changes + 1 = 57 rows of 50 products: 3 older rows of p0005, 3 of
    # p0006 and the first of p0007 go; one row per product stays, the newest
    assert store.compact_product_changes(db) == 7
    assert db.execute("SELECT count(*), max(seq) FROM product_changes").fetchone() == (50, newest + 1)
    behind.refresh(db)
    ahead.refresh(db)
    for catalogue in (behind, ahead):
        assert catalogue.full_loads == 1
        assert [catalogue.products[f"p000{i}"]["price"] for i in (5, 6, 7)] == [3.0, 3.0, 70.0]


def test_a_warmed_worker_has_its_model_and_products_before_the_first_request(served):
    from recommender.serving.catalogue import ListFilters as Filters
    from recommender.serving.service import ListOptions, Service

    service = Service(served)
    db = store.connect(served.db)
    current = (served.model_dir / "CURRENT").read_text().strip()
    assert service.warm(db) == current
    catalogue = service.live.catalogue
    assert catalogue is not None and catalogue.full_loads == 1 and len(catalogue.products) > 0
    customer = db.execute(
        "SELECT customer_id FROM consents WHERE purpose = 'personalization' AND granted = 1 LIMIT 1"
    ).fetchone()[0]
    body = service.recommend(db, customer, ListOptions(n=3, filters=Filters()))
    assert body.items and service.live.catalogue is catalogue and catalogue.full_loads == 1


def test_a_serving_catalogue_reads_a_large_change_in_the_background_and_never_serves_half_of_it(db):
    from recommender.serving import catalogue as catalogue_module

    # More changed rows than a request reads itself: one stock feed rewriting every price.
    store.upsert_products(db, [product(i, price=float(i)) for i in range(50, 50 + catalogue_module.BACKGROUND_ROWS)])
    serving = Catalogue(["p0001"], ttl=0.0, background=True)
    serving.refresh(db)
    assert serving.full_loads == 1 and serving.background_reads == 0  # the first read is the request's own
    total = 50 + catalogue_module.BACKGROUND_ROWS
    store.upsert_products(db, [product(i, price=1000.0 + i) for i in range(total)])
    serving.refresh(db)  # returns at once; the read runs in a thread of its own
    prices = {serving.products[f"p{i:04d}"]["price"] for i in range(total)}
    # whatever the thread has done by now, a request sees one state or the other, never a mix
    assert prices == {float(i) for i in range(total)} or prices == {1000.0 + i for i in range(total)}
    assert serving.wait(timeout=60)
    assert serving.background_reads == 1
    assert {serving.products[f"p{i:04d}"]["price"] for i in range(total)} == {1000.0 + i for i in range(total)}
    assert allowed_by_catalogue(serving, ListFilters(max_price=1040.0)) == allowed_by_sql(db, 1040.0)
    # a batch job's catalogue (background off) reads the same change in the caller
    batch = Catalogue([], ttl=0.0)
    batch.refresh(db)
    store.upsert_products(db, [product(i, price=5.0) for i in range(total)])
    batch.refresh(db)
    assert batch.background_reads == 0 and batch.wait(timeout=0)
    assert allowed_by_catalogue(batch, ListFilters(max_price=5.0)) == allowed_by_sql(db, 5.0)
    # a forced refresh (an id the catalogue does not know yet) waits for a running read, then reads the rest
    serving.refresh(db)
    store.upsert_products(db, [product(9999, price=2.0)])
    serving.refresh(db, force=True)
    assert serving.wait(timeout=0) and serving.products["p9999"]["price"] == 2.0
    assert allowed_by_catalogue(serving, ListFilters(max_price=5.0)) == allowed_by_sql(db, 5.0)


def test_a_made_up_product_id_is_refused_without_reading_the_catalogue_again(served):
    from recommender.serving.service import Service

    service = Service(served)
    db = store.connect(served.db)
    service.warm(db)
    catalogue = service.live.catalogue
    before = (catalogue.seq, catalogue.loaded_at, catalogue.full_loads)
    with pytest.raises(Exception) as refused:
        service.similar(db, "no-such-product", 5, ListFilters())
    assert type(refused.value).__name__ == "NotFoundError"
    assert (catalogue.seq, catalogue.loaded_at, catalogue.full_loads) == before
    # an id added since the last refresh is found (the refresh it forces reads only that row)
    store.upsert_products(db, [("brand-new", "New", None, 3.0, 1, 0, None)])
    result = service.similar(db, "brand-new", 5, ListFilters())
    # served by the model through its content representation (docs/new-products.md), no full read either
    assert result.mode == "model" and catalogue.full_loads == 1 and service.live.catalogue.full_loads == 0
