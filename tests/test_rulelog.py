"""The decision log's record of what rules did to a list: written by rule set, read back by name everywhere."""

from __future__ import annotations

import json

from recommender import privacy, store
from recommender.online import measure, rulelog
from recommender.store.rows import CustomerRow, DecisionLogRow

NAMES = ["boost-garden", "pin-p10", "rotate", "bury-returns"]  # rule r is bit 1 << r


def test_a_record_reads_back_by_name():
    # P1: rules 0 and 2 (bits 1 + 4 = 5); P2: rule 1 (2); P3 removed by rule 3 (8); held out of none
    marks = {"placed": {"P1": 5}, "moved": {"P2": 2}, "removed": {"P3": 8}}
    text = rulelog.encode(7, marks, 0)
    assert json.loads(text) == {"set": 7, "placed": {"P1": "5"}, "moved": {"P2": "2"}, "removed": {"P3": "8"}}
    assert rulelog.decode(text, {7: NAMES}.get) == {
        "boost-garden": {"placed": ["P1"]},
        "rotate": {"placed": ["P1"]},
        "pin-p10": {"moved": ["P2"]},
        "bury-returns": {"removed": ["P3"]},
    }


def test_a_holdout_and_a_rule_past_the_sixty_fourth():
    names = [f"r{k}" for k in range(70)]
    text = rulelog.encode(1, {"moved": {"P9": 1 << 69}}, 1 << 3)
    assert json.loads(text) == {"set": 1, "moved": {"P9": "2" + "0" * 17}, "held_out": "8"}
    assert rulelog.decode(text, {1: names}.get) == {"r69": {"moved": ["P9"]}, "r3": {"held_out": True}}


def test_records_by_name_unknown_sets_and_garbage():
    by_name = {"push": {"placed": ["P1"]}}
    assert rulelog.decode(json.dumps(by_name), {}.get) == by_name  # a row from before rule sets
    assert rulelog.decode('{"set": 99, "placed": {"P1": "1"}}', {}.get) == {}  # a set this database never wrote
    assert rulelog.decode('{"set": 1, "placed": {"P1": "zz"}}', {1: NAMES}.get) == {}
    assert rulelog.decode('{"set": 1, "placed": {"P1": "100"}}', {1: NAMES}.get) == {}  # bit 8 of a 4-rule set
    assert rulelog.decode("not json", {}.get) == {}
    assert rulelog.decode("[1, 2]", {}.get) == {}
    assert rulelog.decode(None, {}.get) == {}


def test_the_report_and_a_customers_export_read_records_by_set(db, settings):
    set_id = store.rule_set_id(db, NAMES)
    assert store.rule_set_id(db, NAMES) == set_id  # written once
    assert store.rule_set_id(db, NAMES[:2]) != set_id  # another order or membership is another set
    store.upsert_customers(db, [CustomerRow("c1", created_at="2026-01-01T00:00:00Z")])
    record = rulelog.encode(set_id, {"placed": {"P1": 0b11}}, 0)
    store.insert_decisions(
        db,
        [
            DecisionLogRow(
                "c1",
                "2026-11-01T10:00:00Z",
                "recommendations",
                "v1",
                "personalized",
                None,
                '["P1"]',
                "a" * 32,
                "model",
                record,
            )
        ],
    )
    expected = {"boost-garden": {"placed": ["P1"]}, "pin-p10": {"placed": ["P1"]}}
    assert measure.rule_effects(db, None) == {"a" * 32: expected}
    (row,) = privacy.export(db, settings, "c1")["decisions"]
    assert row["rules"] == expected and row["product_ids"] == ["P1"]
