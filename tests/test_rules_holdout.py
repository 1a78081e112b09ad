"""Merchandising rules (issue 26): a rule tested against no rule on a holdout share, and segments as an audience.

The hand-made shop of tests/test_rules.py: the list of five without rules is
[P01, P02, P03, P04, P05]; a pin of P10 at 1 makes it [P10, P01, P02, P03, P04].
"""

from __future__ import annotations

import json
import time

import pytest
from test_rules import (
    BASE,
    F,
    served,
    shop as shop,  # noqa: F401  (the hand-made shop fixture)
)

from recommender import store
from recommender.online import measure
from recommender.serving import merchandising
from recommender.serving.catalogue import Catalogue
from recommender.serving.context import Context
from recommender.serving.rules import parse_rule
from recommender.serving.rulesets import Rulebook
from recommender.serving.service import Service

PIN = {"type": "pin", "product": "P10", "position": 1}
PINNED = ["P10", "P01", "P02", "P03", "P04"]


def _customers(db, ids):
    store.upsert_customers(db, [(c, None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for c in ids])
    store.set_consents(db, [(c, "personalization", True, "2025-01-01T00:00:00Z", "test") for c in ids])
    store.upsert_interactions(db, [(c, "H0", "view", 1.0, int(time.time()) - 3600) for c in ids])


def _held(db, catalogue, book, ids):
    out = set()
    for cid in ids:
        active = book.active(db, catalogue, Context("recommendations", cid, db=db))
        if active is not None and "pin" in active.held_out:
            out.add(cid)
    return out


def test_holdout_is_stable_and_near_its_share(shop):
    _, db = shop
    catalogue = Catalogue(list(F), ttl=0)
    catalogue.refresh(db, force=True)
    ids = [f"X{k:05d}" for k in range(4000)]
    rule = parse_rule({"name": "pin", "action": PIN, "holdout_share": 0.2})
    first = _held(db, catalogue, Rulebook([rule]), ids)
    # the same customers in another worker (a new rule book) and after a restart
    assert _held(db, catalogue, Rulebook([rule]), ids) == first
    # share within 3 standard errors: sqrt(0.2 * 0.8 / 4000) = 0.0063
    assert abs(len(first) / len(ids) - 0.2) < 0.019
    # anonymous visitors are never held out (nothing stable to key on)
    assert Rulebook([rule]).active(db, catalogue, Context("recommendations", None, db=db)).held_out == []


def test_a_held_out_customer_gets_the_list_without_the_rule_and_is_logged(shop):
    settings, db = shop
    ids = [f"H{k:03d}" for k in range(40)]
    _customers(db, ids)
    # the no-rule list, computed independently: before the rule exists
    without = {cid: served(settings, db, customer=cid).product_ids for cid in ids[:12]}
    merchandising.create_rule(db, {"name": "pin", "action": PIN, "holdout_share": 0.5}, "test")
    catalogue = Catalogue(list(F), ttl=0)
    catalogue.refresh(db, force=True)
    held = _held(db, catalogue, Rulebook([parse_rule({"name": "pin", "action": PIN, "holdout_share": 0.5})]), ids)
    assert 0 < len(held) < len(ids)
    out_ids = [c for c in ids[:12] if c in held]
    in_ids = [c for c in ids[:12] if c not in held]
    assert out_ids and in_ids
    service = Service(settings)
    for cid in out_ids:
        result = served(settings, db, customer=cid, service=service)
        assert result.product_ids == without[cid] == BASE
        assert result.rules == {"pin": {"held_out": True}}
        logged = db.execute("SELECT rules FROM decisions WHERE list_id = ?", [result.list_id]).fetchone()[0]
        # rule 0 ("pin") of the worker's one rule set: bit 1
        assert json.loads(logged) == {"set": 1, "held_out": "1"}
        assert measure.rule_effects(db, None)[result.list_id] == {"pin": {"held_out": True}}
    for cid in in_ids:
        result = served(settings, db, customer=cid, service=service)
        assert result.product_ids == PINNED and result.rules == {"pin": {"placed": ["P10"]}}
    # the rule's JSON keeps the share
    assert merchandising.get_rule(db, "pin")["holdout_share"] == 0.5


def test_a_holdout_share_beyond_a_half_is_refused(shop):
    _, db = shop
    with pytest.raises(Exception) as raised:
        merchandising.create_rule(db, {"name": "x", "action": PIN, "holdout_share": 0.9}, "test")
    assert getattr(raised.value, "field", None) == "holdout_share"


def _segments(db, rows):
    run = {
        "computed_at": "2026-01-01T00:00:00Z",
        "as_of": "2026-01-01",
        "purpose": "personalization",
        "estimator": "test",
        "horizons": [90],
        "summary": {},
        "seconds": 0.0,
    }
    store.replace_customer_values(
        db, run, [(cid, seg, 0.5, "{}", "{}", 1, 1, 10.0) for cid, seg in rows], "2026-01", {}
    )


def test_a_segment_audience_applies_to_that_segment_only_and_never_without_consent(shop):
    settings, db = shop
    _segments(db, [("C1", "champions"), ("C2", "at_risk"), ("BUYER", "champions")])
    merchandising.create_rule(db, {"name": "vip", "action": PIN, "audience": {"segments": ["champions"]}}, "test")
    service = Service(settings)
    assert served(settings, db, customer="C1", service=service).product_ids == PINNED
    assert served(settings, db, customer="C2", service=service).product_ids == BASE
    # withdrawn consent: no profile, so no segment (the stored row goes with it) and no segment rule
    store.set_consents(db, [("C1", "personalization", False, "2026-01-02T00:00:00Z", "test")])
    fresh = Service(settings)
    assert served(settings, db, customer="C1", service=fresh).product_ids[0] != "P10"
    # a customer with no stored score has no segment
    _customers(db, ["NEW1"])
    assert served(settings, db, customer="NEW1", service=fresh).product_ids == BASE
