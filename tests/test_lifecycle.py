"""Lifecycle campaigns (win-back, second purchase, thank-you), the offers' holdout and the campaign report.

Hand-made shops through the store's own writers. For the value kinds the eligible
customers are written by hand: the value source (``recommender.value.lookup.for_customers``,
the one place campaigns read value from) is replaced by a table of hand-written scores, so
each test states exactly who crosses which threshold. Second purchase reads the real
purchase history. The report's figures are worked out by hand in the test.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re

import pytest

from recommender import campaigns, store
from recommender.campaigns import CampaignRequest, lifecycle, report as campaign_report
from recommender.online.assignment import holdout
from recommender.value.lookup import CustomerValue, Values

CREATED = "2025-01-01T00:00:00Z"
RUN = "2026-06-01"


def epoch(day: str, hour: int = 12) -> int:
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour), dt.UTC).timestamp())


def shift(day: str, days: int) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def make_shop(db, ids, *, marketing=None, birthdays=None, events=()):
    birthdays = birthdays or {}
    store.upsert_customers(
        db,
        [(cid, f"{cid.lower()}@example.com", f"Name {cid}", birthdays.get(cid), None, "UTC", CREATED) for cid in ids],
    )
    store.upsert_products(db, [(f"P{i}", f"Product {i}", "misc", 10.0, None, 0, None) for i in range(1, 6)])
    granted = dict.fromkeys(ids, True) if marketing is None else marketing
    store.set_consents(db, [(cid, "marketing", g, CREATED, "test") for cid, g in granted.items()])
    if events:
        store.upsert_interactions(db, events)


def value(cid, *, top=0.5, p=0.5, segment="loyal", spent=100.0):
    return CustomerValue(cid, segment, p, {90.0: 10.0}, spent, 3, 30, top)


@pytest.fixture
def values(monkeypatch):
    """Hand-written scores: ``values[cid] = value(...)``; everyone else has none (not profiled)."""
    table: dict[str, CustomerValue] = {}

    def for_customers(db, settings, ids=None, as_of=None):
        return Values("2026-05-31", dict(table), len(table), 2)

    monkeypatch.setattr(lifecycle.lookup, "for_customers", for_customers)
    return table


def go(db, settings, occasion, date=RUN, **kw):
    return campaigns.run(db, settings, CampaignRequest(occasion=occasion, date=date), **kw)


def ledger(db):
    return [dict(r) for r in db.query("SELECT * FROM offers ORDER BY customer_id, occasion, id")]


@pytest.fixture
def no_holdout(settings):
    settings.campaigns.holdout_share = 0.0
    return settings


# --- each kind: who, why, discount, validity, consent --------------------------------------------


def test_winback_takes_valuable_customers_whose_chance_fell_and_says_why(db, no_holdout, values):
    settings = no_holdout
    make_shop(db, ["W1", "W2", "W3", "W4"], marketing={"W1": True, "W2": True, "W3": True, "W4": False})
    values["W1"] = value("W1", top=0.05, p=0.10)  # top 5 %, p_active 0.10 < 0.30: win-back
    values["W2"] = value("W2", top=0.05, p=0.50)  # still active
    values["W3"] = value("W3", top=0.50, p=0.10)  # slipping away, but not among the valuable
    values["W4"] = value("W4", top=0.10, p=0.20)  # would be, but no marketing consent
    result = go(db, settings, "winback")
    assert [o.customer_id for o in result.offers] == ["W1"]
    o = result.offers[0]
    assert (o.discount, o.valid_from, o.valid_until) == (20.0, RUN, shift(RUN, 30))
    assert re.fullmatch(r"BACK(-[A-Z2-7]{4}){4}", o.code) and len(o.product_ids) == 3
    s = result.summary()
    assert s["skipped"]["no_marketing_consent"] == 1 and s["skipped"]["not_profiled"] == 2
    why = db.execute("SELECT why FROM decisions WHERE customer_id = 'W1'").fetchone()[0]
    assert why == "winback: p_active 0.10 < 0.30; spend so far in the top 5 % (rule: top 20 %)"


def test_thank_you_goes_to_the_top_segment(db, no_holdout, values):
    make_shop(db, ["T1", "T2", "T3"], marketing={"T1": True, "T2": True, "T3": False})
    values["T1"] = value("T1", segment="champions")
    values["T2"] = value("T2", segment="loyal")
    values["T3"] = value("T3", segment="champions")
    result = go(db, no_holdout, "thank_you")
    assert [(o.customer_id, o.discount, o.valid_until) for o in result.offers] == [("T1", 10.0, shift(RUN, 30))]
    assert result.summary()["skipped"]["no_marketing_consent"] == 1
    assert (
        db.execute("SELECT why FROM decisions").fetchone()[0]
        == "thank_you: segment champions (rule: segment in champions)"
    )


def test_second_purchase_reads_purchase_history_and_needs_only_marketing_consent(db, no_holdout):
    buy = lambda cid, day: (cid, "P1", "purchase", 1.0, epoch(day))  # noqa: E731
    events = [
        buy("A", shift(RUN, -40)),  # one purchase day, 40 days ago: yes
        buy("B", shift(RUN, -10)),  # too early
        buy("C", shift(RUN, -40)),
        buy("C", shift(RUN, -20)),  # two purchase days: not a one-time buyer
        buy("D", shift(RUN, -200)),  # too late
        buy("E", shift(RUN, -45)),  # no marketing consent
        buy("F", shift(RUN, -40)),
        ("F", "P2", "purchase", 1.0, epoch(shift(RUN, -40), 15)),  # one day, 2 lines
        buy("G", shift(RUN, -35)),
        buy("G", shift(RUN, 3)),
    ]  # bought again after the run: not seen
    make_shop(db, list("ABCDEFG"), marketing={c: c != "E" for c in "ABCDEFG"}, events=events)
    # nobody granted personalization (the profiling purpose): second purchase does not need it
    result = go(db, no_holdout, "second_purchase")
    assert sorted(o.customer_id for o in result.offers) == ["A", "F", "G"]
    assert result.summary()["skipped"]["no_marketing_consent"] == 1
    a = next(o for o in result.offers if o.customer_id == "A")
    assert (a.discount, a.valid_until, a.reason) == (10.0, shift(RUN, 21), "no_model")
    assert set(a.product_ids).isdisjoint({"P1"})  # never what they already bought
    why = db.execute("SELECT why FROM decisions WHERE customer_id = 'A'").fetchone()[0]
    assert why == f"second_purchase: 1 purchase day, {shift(RUN, -40)}, 40 days before the run (rule: 30 to 90 days)"


def test_no_value_kind_without_a_score(db, no_holdout, values):
    """Customers without the profiling consent have no score, so they are never win-back or thank-you."""
    make_shop(db, ["N1"])
    assert go(db, no_holdout, "lifecycle").offers == []


# --- the ledger's once-per-period rule ------------------------------------------------------------


def test_each_kind_keeps_its_ledger_period(db, no_holdout, values):
    settings = no_holdout
    make_shop(db, ["W", "T"])
    values["W"] = value("W", top=0.01, p=0.05)
    values["T"] = value("T", segment="champions")
    assert {o.customer_id for o in go(db, settings, "winback").offers} == {"W"}
    assert {o.customer_id for o in go(db, settings, "thank_you").offers} == {"T"}
    again = go(db, settings, "lifecycle", shift(RUN, 1))
    assert again.offers == [] and again.summary()["skipped"]["already_offered"] == 2
    # the offers expired after 30 days; win-back waits 180 days, thank-you 365
    later = go(db, settings, "lifecycle", shift(RUN, 179))
    assert later.offers == [] and later.summary()["skipped"]["already_offered"] == 2
    assert [o.customer_id for o in go(db, settings, "lifecycle", shift(RUN, 180)).offers] == ["W"]
    assert go(db, settings, "thank_you", shift(RUN, 364)).offers == []
    assert [o.customer_id for o in go(db, settings, "thank_you", shift(RUN, 365)).offers] == ["T"]
    assert [(r["customer_id"], r["occasion"], r["offered_on"]) for r in ledger(db)] == [
        ("T", "thank_you", RUN),
        ("T", "thank_you", shift(RUN, 365)),
        ("W", "winback", RUN),
        ("W", "winback", shift(RUN, 180)),
    ]


def test_second_purchase_is_once_ever(db, no_holdout):
    make_shop(db, ["A"], events=[("A", "P1", "purchase", 1.0, epoch(shift(RUN, -31)))])
    no_holdout.campaigns.second_purchase_within_days = 10_000
    assert [o.customer_id for o in go(db, no_holdout, "second_purchase").offers] == ["A"]
    for days in (1, 60, 400, 2000):
        r = go(db, no_holdout, "second_purchase", shift(RUN, days))
        assert r.offers == [] and r.summary()["skipped"]["already_offered"] == 1


# --- caps ------------------------------------------------------------------------------------------


def test_a_cap_on_customers_takes_the_most_valuable_first(db, no_holdout, values):
    settings = no_holdout
    settings.campaigns.winback_max_customers = 2
    make_shop(db, ["A", "B", "C"])
    for cid, spent in (("A", 300.0), ("B", 900.0), ("C", 600.0)):
        values[cid] = value(cid, top=0.1, p=0.1, spent=spent)
    result = go(db, settings, "winback")
    assert sorted(o.customer_id for o in result.offers) == ["B", "C"]
    assert result.summary()["skipped"]["over_cap"] == 1


def test_product_caps_hold_for_lifecycle_kinds(db, no_holdout, values):
    make_shop(db, ["A", "B", "C"])
    for cid in "ABC":
        values[cid] = value(cid, segment="champions")
    result = campaigns.run(db, no_holdout, CampaignRequest(occasion="thank_you", date=RUN, items=1, max_per_product=1))
    products = [p for o in result.offers for p in o.product_ids]
    assert len(result.offers) == 3 and len(set(products)) == 3  # each product to at most one customer


# --- one live offer per customer, with the stated priority ----------------------------------------


def test_one_live_offer_across_kinds_with_the_priority(db, no_holdout, values):
    settings = no_holdout
    assert settings.campaigns.priority == ("birthday", "anniversary", "winback", "second_purchase", "thank_you")
    make_shop(
        db, ["X", "Y"], birthdays={"X": "1990-06-03"}, events=[("Y", "P1", "purchase", 1.0, epoch(shift(RUN, -40)))]
    )
    values["X"] = value("X", top=0.01, p=0.05, segment="champions")  # birthday, win-back and thank-you at once
    values["Y"] = value("Y", top=0.9, p=0.9, segment="champions")  # second purchase and thank-you at once
    first = go(db, settings, "every")
    assert sorted((o.customer_id, o.occasion) for o in first.offers) == [("X", "birthday"), ("Y", "second_purchase")]
    assert first.summary()["skipped"]["lower_priority"] == 3
    # X's birthday code is live until 2026-06-17 and Y's second-purchase code until 2026-06-22: no other
    # offer for them meanwhile, whatever its priority (X: win-back, thank-you; Y: thank-you)
    during = go(db, settings, "lifecycle", "2026-06-10")
    assert during.offers == [] and during.summary()["skipped"]["live_offer"] == 3
    after = go(db, settings, "lifecycle", "2026-06-18")
    assert [(o.customer_id, o.occasion) for o in after.offers] == [("X", "winback")]
    assert after.summary()["skipped"]["lower_priority"] == 1 and after.summary()["skipped"]["live_offer"] == 1


def test_a_held_out_customer_holds_the_slot_like_one_sent(db, settings, values):
    settings.campaigns.holdout_share = 0.999999  # everyone held out
    make_shop(db, ["X"])
    values["X"] = value("X", top=0.01, p=0.05, segment="champions")
    result = go(db, settings, "winback")
    assert result.offers == [] and [o.customer_id for o in result.held_out] == ["X"]
    settings.campaigns.holdout_kinds = ()
    blocked = go(db, settings, "thank_you", shift(RUN, 5))
    assert blocked.offers == [] and blocked.summary()["skipped"]["live_offer"] == 1
    assert [o.customer_id for o in go(db, settings, "thank_you", shift(RUN, 31)).offers] == ["X"]


# --- the holdout ---------------------------------------------------------------------------------------


def test_the_holdout_is_stable_and_its_share_is_within_tolerance(db, settings):
    ids = [f"C{i:06d}" for i in range(20_000)]
    first = holdout(db, ids, 0.1)
    assert first == holdout(db, ids, 0.1)  # same customers every run
    assert first == holdout(db, list(reversed(ids)), 0.1)  # whatever the order
    # 20,000 customers at 0.1: standard error 0.0021; the tolerance ±0.01 is 4.7 of them
    assert abs(len(first) / len(ids) - 0.1) <= 0.01
    assert holdout(db, ids[:100], 0.1) == {c for c in ids[:100] if c in first}  # a customer's draw is their own
    assert holdout(db, ids, 0.1, salt="next") != first  # a new salt is a new draw
    assert holdout(db, ids, 0.0) == set()


def test_held_out_customers_are_recorded_not_sent(db, settings, values, tmp_path):
    settings.campaigns.holdout_share = 0.5
    ids = [f"C{i:02d}" for i in range(40)]
    make_shop(db, ids)
    for cid in ids:
        values[cid] = value(cid, segment="champions")
    preview = go(db, settings, "thank_you", dry_run=True)
    result = go(db, settings, "thank_you", out=tmp_path / "offers.csv")
    held = {o.customer_id for o in result.held_out}
    assert held == {o.customer_id for o in preview.held_out} == holdout(db, ids, 0.5)
    assert 0 < len(held) < 40 and held.isdisjoint(o.customer_id for o in result.offers)
    rows = {r["customer_id"]: r for r in ledger(db)}
    assert all(
        rows[c]["held_out"] == 1 and rows[c]["code"] is None and json.loads(rows[c]["products"]) == [] for c in held
    )
    assert all(rows[c]["held_out"] == 0 and rows[c]["code"] for c in set(ids) - held)
    modes = dict(db.execute("SELECT customer_id, mode FROM decisions").fetchall())
    assert {c for c, m in modes.items() if m == "held_out"} == held
    with (tmp_path / "offers.csv").open(encoding="utf-8", newline="") as fh:
        exported = {row["customer_id"] for row in csv.DictReader(fh)}
    # (whole cells: a held-out id such as C23 may also occur inside a random offer code)
    assert exported == set(ids) - held
    assert result.summary()["held_out"] == {"thank_you": len(held)}
    # a storefront never shows a held-out row
    assert campaigns.active_offers(db, sorted(held)[0], RUN)["offers"] == []


# --- the report --------------------------------------------------------------------------------------


def test_the_report_matches_the_hand_computed_uplift(db, settings):
    """Win-back offers on 2026-03-01: S1, S2, S3 sent, H1, H2 held out; purchases written by hand."""
    make_shop(db, ["S1", "S2", "S3", "H1", "H2", "Z"])
    day = "2026-03-01"
    rows = [
        (
            cid,
            "winback",
            2026,
            None if held else f"BACK-{cid}",
            "[]",
            20.0,
            day,
            "2026-03-31",
            "camp",
            CREATED,
            None,
            held,
            day,
        )
        for cid, held in (("S1", 0), ("S2", 0), ("S3", 0), ("H1", 1), ("H2", 1))
    ]
    store.insert_offers(db, rows)

    def buy(cid, pid, days, qty=1.0, price=None):
        return (cid, pid, "purchase", qty, epoch(shift(day, days), 10), None, price)

    store.upsert_interactions(
        db,
        [
            buy("S1", "P1", 5, 10.0),  # 10 x 10.00 = 100 in both windows
            buy("S3", "P2", 20, 5.0),  # 50 in both windows
            buy("S3", "P3", 60, 1.0),  # +10 in the 90-day window only
            buy("H1", "P1", 29, 2.0),  # 20 in both windows
            buy("H2", "P1", -1, 1.0),  # the day before the offer: counts in neither
            buy("H2", "P4", 95, 1.0),  # after 90 days: neither
            buy("Z", "P1", 5, 1.0),
        ],
    )  # no offer: not in the report
    payload = campaign_report.report(db, settings, as_of=epoch("2026-12-31"))
    [g] = payload["kinds"]
    sent, held = g["arms"]["sent"]["windows"], g["arms"]["held_out"]["windows"]
    # 30 days: sent 100, 0, 50 -> mean 50; Var = ((100-50)² + (0-50)² + (50-50)²) / 3² = 5000/9
    #          held 20, 0 -> mean 10; Var = ((20-10)² + (0-10)²) / 2² = 50
    #          difference 40, SE = sqrt(5000/9 + 50) = sqrt(605.556) = 24.608; 95 %: 40 ± 1.95996 x 24.608
    #          incremental revenue = 40 x 3 customers sent = 120, interval x 3
    assert sent["30"]["revenue_per_customer"] == pytest.approx(50.0)
    assert held["30"]["revenue_per_customer"] == pytest.approx(10.0)
    half = 1.959963984540054 * math.sqrt(5000 / 9 + 50)
    u = g["uplift"]["30"]
    assert u["revenue_per_customer"]["difference"] == pytest.approx(40.0)
    assert u["revenue_per_customer"]["ci95"] == pytest.approx([40 - half, 40 + half])
    assert u["incremental_revenue"] == pytest.approx(120.0)
    assert u["incremental_ci95"] == pytest.approx([3 * (40 - half), 3 * (40 + half)])
    # bought again within 30 days: sent 2/3, held 1/2; Var = p(1-p)/n: 2/27 and 1/8
    assert sent["30"]["repeat_rate"] == pytest.approx(2 / 3) and held["30"]["repeat_rate"] == pytest.approx(0.5)
    rhalf = 1.959963984540054 * math.sqrt((2 / 3) * (1 / 3) / 3 + 0.25 / 2)
    assert u["repeat_rate"]["ci95"] == pytest.approx([1 / 6 - rhalf, 1 / 6 + rhalf])
    # 90 days: sent 100, 0, 60 -> mean 160/3; Var = ((100-160/3)² + (160/3)² + (60-160/3)²) / 9
    m = 160 / 3
    var = ((100 - m) ** 2 + m**2 + (60 - m) ** 2) / 9
    u90 = g["uplift"]["90"]
    assert u90["revenue_per_customer"]["difference"] == pytest.approx(m - 10)
    half90 = 1.959963984540054 * math.sqrt(var + 50)
    assert u90["revenue_per_customer"]["ci95"] == pytest.approx([m - 10 - half90, m - 10 + half90])
    assert u90["incremental_revenue"] == pytest.approx(3 * (m - 10))
    assert payload["measured_kinds"] == ["winback"]
    assert payload["summary"].startswith(
        "In the 90 days after a win-back offer, the 3 customers who got one spent 43.33 more each than the 2 held out"
    )
    # windows not over yet are pending, in both arms alike
    early = campaign_report.report(db, settings, as_of=epoch("2026-04-15"))
    assert early["kinds"][0]["arms"]["sent"]["windows"]["90"]["pending"] == 3
    assert early["kinds"][0]["uplift"]["90"] is None and early["kinds"][0]["uplift"]["30"] is not None
    assert campaign_report.report(db, settings, kind="birthday", as_of=epoch("2026-12-31"))["kinds"] == []


def test_report_cli_and_its_json(runner, settings):
    from recommender.cli import cli

    result = runner.invoke(cli, ["report", "campaigns", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"] == "No campaign offers in the ledger yet."
    bad = runner.invoke(cli, ["report", "campaigns", "--since", "yesterday"])
    assert bad.exit_code != 0 and "since" in bad.output
