"""An erased customer leaves no bytes in the database file once the nightly housekeeping ran.

A multi-row DELETE rebalances b-tree pages as it goes; a rebalanced page keeps
stale copies of the cells that moved (the erased customer's later rows among
them) in its unallocated space, which ``secure_delete`` does not zero. The
shop below (300 customers, 30 days of 400 events) leaves such copies with
this SQLite; the housekeeping's VACUUM after an erasure removes them.
"""

from __future__ import annotations

import random

from recommender import store
from recommender.privacy import erasure
from recommender.store.rows import CustomerRow, EventRow, ProductRow
from recommender.training import maintenance


def test_housekeeping_after_an_erasure_leaves_no_erased_id_in_the_file(db, settings):
    ids = [f"S{n:05d}" for n in range(300)]
    store.upsert_customers(db, [CustomerRow(c, created_at="2026-01-01T00:00:00Z") for c in ids])
    store.upsert_products(db, [ProductRow(f"P{n:03d}", "x", category="c", price=1.0) for n in range(60)])
    rng = random.Random(2)
    t = 1_700_000_000
    for _ in range(30):
        rows = []
        for c in rng.sample(ids, 100):
            for _ in range(4):
                t += 7
                kind = rng.choice(["view", "add_to_cart", "purchase"])
                rows.append(EventRow(c, f"P{rng.randrange(60):03d}", kind, 1.0, t))
        store.add_interactions(db, rows)
    victims = ids[::10]
    for v in victims:
        erasure.forget(db, settings, v)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def left() -> list[str]:
        data = settings.db.read_bytes() + (
            settings.db.with_name(settings.db.name + "-wal").read_bytes()
            if settings.db.with_name(settings.db.name + "-wal").exists()
            else b""
        )
        return [v for v in victims if v.encode() in data]

    assert left(), "this SQLite left no stale copy: the case no longer exercises the rebalance"
    done = maintenance.run(db, settings)
    assert done["vacuum"]["vacuumed"] and done["wal"]["truncated"]
    assert left() == []
    assert maintenance.run(db, settings)["vacuum"] == {"vacuumed": False}  # nothing erased since
