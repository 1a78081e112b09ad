"""Numbers a shop can bet on (issue 23): events are a log, and attribution cannot be gamed.

The two attacks of the issue are replayed against the real server (`recommender serve`
under gunicorn, loopback): another customer's `list_id` with an absurd price and
quantity, and a same-second second purchase naming another list with price 5e11. The
rule they meet (README, "Online measurement"): a list belongs to the customer it was
served to; an event's price counts only within `online.max_price_factor` of the
catalogue price, its quantity only up to `online.max_quantity`; beyond that the
catalogue price and the cap count and the event is *flagged*; the stored event is kept
as it was sent. Expected values are worked out by hand (or read with plain SQL), never
from the report's own helpers.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from recommender import online, store
from recommender.config import validate
from recommender.errors import ConfigError
from recommender.serving import keys
from recommender.values import MAX_PRICE

# --- the real server -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`recommender serve` (2 gunicorn workers) on a loopback port, spoken to with an admin key."""

    def __init__(self, settings) -> None:
        self.settings = settings
        _, self.token = keys.create(store.connect(settings.db), "admin", "attribution-test")
        self.port = _free_port()
        env = {**os.environ, "RECOMMENDER_DB": str(settings.db), "RECOMMENDER_MODEL_DIR": str(settings.model_dir)}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from recommender.cli import main; main()",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                "2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        pytest.fail("server did not become ready: " + self.proc.stderr.read().decode()[-2000:])

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body), "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def events(self, *events: dict) -> dict:
        status, answer = self.call("POST", "/v1/events", {"events": list(events)})
        assert status == 201, answer
        return answer

    def attack(self, event: dict) -> dict:
        """Send ``event`` as the issue did; when the door refuses its price (the API's bound,
        ``values.MAX_PRICE``), nothing is stored, and it is sent again at the largest price the door
        takes, which is still absurd. Returns the event that was stored."""
        status, answer = self.call("POST", "/v1/events", {"events": [event]})
        if status == 422 and ".price" in answer["error"]["message"]:
            event = {**event, "price": MAX_PRICE}
            status, answer = self.call("POST", "/v1/events", {"events": [event]})
        assert status == 201 and answer == {"accepted": 1, "duplicates": 0}, answer
        return event

    def report(self, list_ids) -> dict:
        """The online report, once every list in ``list_ids`` is in the decision log (either worker's)."""
        deadline = time.time() + 10
        while time.time() < deadline:
            with sqlite3.connect(self.settings.db) as conn:
                marks = ",".join("?" * len(list_ids))
                n = conn.execute(f"SELECT count(*) FROM decisions WHERE list_id IN ({marks})", list(list_ids))
                if n.fetchone()[0] == len(list_ids):
                    break
            time.sleep(0.2)
        status, body = self.call("GET", "/v1/admin/metrics/online")
        assert status == 200, body
        return body

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def server(served):
    s = Server(served)
    yield s
    s.stop()


def consenting(settings, n: int) -> list[str]:
    with sqlite3.connect(settings.db) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT customer_id FROM consents WHERE purpose = 'personalization' AND granted = 1 "
                "ORDER BY customer_id LIMIT ?",
                [n],
            )
        ]


def catalogue_price(settings, product: str) -> float:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute("SELECT price FROM products WHERE id = ?", [product]).fetchone()[0]


def rows_of(settings, customer: str, product: str) -> list[tuple]:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute(
            "SELECT event_type, quantity, occurred_at, list_id, price FROM interactions "
            "WHERE customer_id = ? AND product_id = ? AND event_type = 'purchase' ORDER BY id",
            [customer, product],
        ).fetchall()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_flags(report: dict) -> dict:
    """The report less what may change when an event is flagged (and when it was made)."""
    out = json.loads(json.dumps(report))
    out.pop("generated_at")
    for arm in out["arms"]:
        arm.pop("flagged"), arm.pop("flagged_share")
    out["events"].pop("flagged")
    return out


def priced_product(settings, server: Server) -> str:
    """The first product of the popular list that has a catalogue price."""
    status, popular = server.call("GET", "/v1/products/popular?n=20")
    assert status == 200, popular
    product = next(i["product_id"] for i in popular["items"] if catalogue_price(settings, i["product_id"]))
    return product


# --- attack 1: another customer's list, an absurd price and quantity -------------------------


def test_another_customers_list_id_with_an_absurd_price_changes_nothing_but_a_flag(server, served):
    victim, attacker = consenting(served, 2)
    product = priced_product(served, server)
    price = catalogue_price(served, product)
    status, listed = server.call("POST", f"/v1/customers/{victim}/rerank", {"products": [product]})
    assert status == 200 and listed["products"] == [product], listed
    victims_list = listed["list_id"]
    when = now_iso()
    server.events(
        {
            "customer_id": victim,
            "product_id": product,
            "event_type": "purchase",
            "quantity": 1,
            "price": price,
            "list_id": victims_list,
            "occurred_at": when,
        }
    )
    before = server.report([victims_list])
    rerank = next(a for a in before["arms"] if a["surface"] == "rerank")
    assert rerank["purchases"] == 1 and rerank["revenue"] == round(price, 2) and rerank["flagged"] == 0

    # The attack of the issue: a write key puts an absurd purchase on the victim's list.
    sent = server.attack(
        {
            "customer_id": attacker,
            "product_id": product,
            "event_type": "purchase",
            "quantity": 1000000,
            "price": 999999999999,
            "list_id": victims_list,
            "occurred_at": when,
        }
    )
    after = server.report([victims_list])

    # Every arm, every uplift: unchanged (the attacker was shown no list, so their event is nobody's).
    assert after["arms"] == before["arms"] and after["uplift"] == before["uplift"]
    assert after["events"] == {
        **before["events"],
        "flagged": before["events"]["flagged"] + 1,
        "list_id_of_another_customer": before["events"]["list_id_of_another_customer"] + 1,
        "unattributed": before["events"]["unattributed"] + 1,
    }
    # Nothing is silently dropped: the raw event is stored as it was sent.
    assert rows_of(served, attacker, product) == [
        ("purchase", 1000000.0, rows_of(served, victim, product)[0][2], victims_list, float(sent["price"]))
    ]
    # The CLI says the same, and shows the flag.
    from recommender.cli import cli as main

    env = {"RECOMMENDER_DB": str(served.db), "RECOMMENDER_MODEL_DIR": str(served.model_dir)}
    cli = CliRunner().invoke(main, ["report", "online", "--json"], env=env)
    assert cli.exit_code == 0, cli.output
    assert without_flags(json.loads(cli.output)) == without_flags(after)
    text = CliRunner().invoke(main, ["report", "online"], env=env)
    assert text.exit_code == 0 and "events flagged" in text.output and "list_id of another customer" in text.output


# --- attack 2: a same-second second purchase naming another list, price 5e11 ----------------


def test_a_same_second_second_purchase_is_its_own_row_and_cannot_rewrite_the_first(server, served):
    victim = consenting(served, 1)[0]
    product = priced_product(served, server)
    price = catalogue_price(served, product)
    status, popular = server.call("GET", "/v1/products/popular?n=20")
    assert status == 200 and product in [i["product_id"] for i in popular["items"]]
    status, listed = server.call("POST", f"/v1/customers/{victim}/rerank", {"products": [product]})
    assert status == 200, listed
    own, other = listed["list_id"], popular["list_id"]
    when = now_iso()
    legit = {
        "customer_id": victim,
        "product_id": product,
        "event_type": "purchase",
        "quantity": 1,
        "price": price,
        "list_id": own,
        "occurred_at": when,
        "event_id": "order-1-line-1",
    }
    server.events(legit)
    before = server.report([own, other])

    attack = {
        "customer_id": victim,
        "product_id": product,
        "event_type": "purchase",
        "quantity": 1,
        "price": 5e11,
        "list_id": other,
        "occurred_at": when,
    }
    attack = server.attack(attack)
    # A retry of the legitimate event is still a duplicate ...
    assert server.events(legit) == {"accepted": 0, "duplicates": 1}
    # ... and there was nothing to repair: two rows, each with its own list and price.
    first, second = rows_of(served, victim, product)[-2:]
    assert first == ("purchase", 1.0, second[2], own, price)
    assert second == ("purchase", 1.0, first[2], other, float(attack["price"]))

    after = server.report([own, other])
    arms = {(a["surface"], a["arm"]): a for a in after["arms"]}
    old = {(a["surface"], a["arm"]): a for a in before["arms"]}
    # The first purchase keeps its list and price: the rerank list is exactly as before.
    rerank = next(k for k in arms if k[0] == "rerank")
    assert arms[rerank] == old[rerank] and arms[rerank]["revenue"] == round(price, 2)
    # The second one is a second purchase (events are a log), at the catalogue price and flagged:
    # never 5e11, never 1e12.
    pop = arms["popular", "unassigned"]
    assert pop["purchases"] == 1 and pop["revenue"] == round(price, 2) and pop["flagged"] == 1
    assert pop["flagged_share"] == round(1 / pop["events"], 6)
    assert max(a["revenue"] for a in after["arms"]) < 1e6
    assert after["events"]["flagged"] == before["events"]["flagged"] + 1
    # Had the attacker sent the catalogue price, the report would read the same but for the flag.
    with sqlite3.connect(served.db) as conn:
        conn.execute(
            "UPDATE interactions SET price = ? WHERE list_id = ? AND price = ?", [price, other, attack["price"]]
        )
    honest = online.report(store.connect(served.db), served)
    assert without_flags(honest) == without_flags(after)
    assert honest["events"]["flagged"] == after["events"]["flagged"] - 1


# --- a hand-made shop, revenue computed by hand ----------------------------------------------

T0 = dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC)
LA, LB, LP = "a" * 32, "b" * 32, "c" * 32


def at(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(minutes: float) -> int:
    return int((T0 + dt.timedelta(minutes=minutes)).timestamp())


@pytest.fixture
def shop(db, settings):
    """Customers a, b, c; pA (10.00), pB (20.00), pN (no price); a's and b's lists, and an anonymous popular one."""
    store.upsert_customers(db, [(c, None, None, None, None, "UTC", "2026-01-01T00:00:00Z") for c in "abc"])
    store.upsert_products(
        db,
        [
            ("pA", "A", "x", 10.0, None, 0, None),
            ("pB", "B", "x", 20.0, None, 0, None),
            ("pN", "N", "x", None, None, 0, None),
        ],
    )
    store.insert_decisions(
        db,
        [
            ("a", at(0), "recommendations", "v1", "personalized", None, json.dumps(["pA", "pB", "pN"]), LA, "model"),
            ("b", at(0), "recommendations", "v1", "personalized", None, json.dumps(["pA"]), LB, "model"),
            (None, at(0), "popular", "v1", "non_personalized", "popular", json.dumps(["pA"]), LP, None),
        ],
    )
    return db, settings


def test_the_revenue_of_a_hand_made_shop_with_one_implausible_price(shop):
    db, settings = shop
    assert (settings.online.max_price_factor, settings.online.max_quantity) == (3.0, 100.0)
    # (customer, product, type, quantity, time, list_id, price)
    store.add_interactions(
        db,
        [
            ("a", "pA", "view", 1, epoch(1), LA, None),
            ("a", "pA", "purchase", 2, epoch(2), LA, 9.5),  # 9.5 in [10/3, 30]: 2 x 9.50 = 19.00
            ("a", "pB", "purchase", 1, epoch(2), LA, 5e11),  # implausible: flagged, 1 x 20.00 = 20.00
            ("b", "pA", "purchase", 1, epoch(3), None, None),  # by window to LB, no price: 1 x 10.00
            ("b", "pA", "purchase", 3, epoch(4), LP, 7.0),  # the anonymous popular list: 3 x 7.00 = 21.00
        ],
    )
    got = online.report(db, settings)
    arms = {(a["surface"], a["arm"]): a for a in got["arms"]}
    model, popular = arms["recommendations", "model"], arms["popular", "unassigned"]
    assert model["revenue"] == 19.0 + 20.0 + 10.0 == 49.0
    assert (model["purchases"], model["events"], model["flagged"], model["flagged_share"]) == (2, 4, 1, 0.25)
    assert model["revenue_per_list"] == 24.5
    assert (popular["revenue"], popular["purchases"], popular["flagged"]) == (21.0, 1, 0)
    assert got["events"] == {
        "attributed_by_list_id": 4,
        "attributed_by_window": 1,
        "unattributed": 0,
        "flagged": 1,
        "list_id_of_another_customer": 0,
    }
    # The stored event keeps what was sent.
    assert db.execute("SELECT price FROM interactions WHERE product_id = 'pB'").fetchone()[0] == 5e11


def test_the_quantity_cap_a_missing_catalogue_price_and_a_foreign_list(shop):
    db, settings = shop
    store.add_interactions(
        db,
        [
            ("a", "pA", "purchase", 500, epoch(1), LA, None),  # above the cap: 100 x 10.00 = 1000.00, flagged
            ("a", "pN", "purchase", 1, epoch(2), LA, 4.0),  # no catalogue price to check 4.00: 0, flagged
            ("a", "pN", "purchase", 2, epoch(3), LA, None),  # no price at all: 0, not flagged
            # c names a's list: not theirs; c was shown nothing, so the event is nobody's (flagged all the same)
            ("c", "pA", "purchase", 1000000, epoch(4), LA, 999999999999),
            # b names a's list for pA, which b's own list LB showed: attributed to LB by window, at 10.00
            ("b", "pA", "purchase", 1, epoch(5), LA, 10.0),
        ],
    )
    got = online.report(db, settings)
    arms = {(a["surface"], a["arm"]): a for a in got["arms"]}
    model = arms["recommendations", "model"]
    assert model["revenue"] == 1000.0 + 0.0 + 0.0 + 10.0
    assert (model["purchases"], model["events"], model["flagged"]) == (2, 4, 2)
    assert got["events"] == {
        "attributed_by_list_id": 3,
        "attributed_by_window": 1,
        "unattributed": 1,
        "flagged": 3,
        "list_id_of_another_customer": 2,
    }
    assert db.execute("SELECT count(*) FROM interactions").fetchone()[0] == 5


def test_a_stricter_or_looser_rule_is_configurable_and_checked(shop):
    db, settings = shop
    store.add_interactions(db, [("a", "pA", "purchase", 2, epoch(2), LA, 25.0)])
    model = next(a for a in online.report(db, settings)["arms"] if a["surface"] == "recommendations")
    assert (model["revenue"], model["flagged"]) == (50.0, 0)  # 25 in [10 / 3, 30]
    settings.online.max_price_factor = 2.0
    model = next(a for a in online.report(db, settings)["arms"] if a["surface"] == "recommendations")
    assert (model["revenue"], model["flagged"]) == (20.0, 1)  # 25 > 2 x 10: the catalogue price
    settings.online.max_quantity = 1
    model = next(a for a in online.report(db, settings)["arms"] if a["surface"] == "recommendations")
    assert (model["revenue"], model["flagged"]) == (10.0, 1)
    for bad in ({"max_price_factor": 0.5}, {"max_quantity": 0}):
        for key, value in bad.items():
            old = getattr(settings.online, key)
            setattr(settings.online, key, value)
            with pytest.raises(ConfigError, match=key):
                validate(settings)
            setattr(settings.online, key, old)
