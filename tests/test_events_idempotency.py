"""Events with a client `event_id` are stored once, however often they are sent."""

import threading

import pytest

from recommender import store

EVENT = {
    "customer_id": "C0001",
    "product_id": "P0001",
    "event_type": "purchase",
    "quantity": 1,
    "occurred_at": "2026-11-01T10:00:00Z",
}


def stored(settings, **where):
    db = store.connect(settings.db)
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    rows = db.execute(
        f"SELECT count(*), coalesce(sum(quantity), 0) FROM interactions WHERE {clause}", list(where.values())
    ).fetchone()
    db.conn.close()
    return tuple(rows)


def pair(event):
    return {"customer_id": event["customer_id"], "product_id": event["product_id"], "event_type": event["event_type"]}


def test_the_same_event_sent_twice_is_stored_once(client, served):
    before = stored(served)
    event = {**EVENT, "event_id": "order-77-line-1"}
    first = client.post("/v1/events", json=event)
    assert first.status_code == 201 and first.get_json() == {"accepted": 1, "duplicates": 0}
    again = client.post("/v1/events", json=event)
    assert again.status_code == 201 and again.get_json() == {"accepted": 0, "duplicates": 1}
    assert stored(served) == (before[0] + 1, before[1] + 1)
    # The same time, customer, product and type without an id: a second event, a row of its own
    # (events are a log: never merged with another).
    plain = client.post("/v1/events", json=EVENT)
    assert plain.get_json() == {"accepted": 1, "duplicates": 0}
    assert stored(served, **pair(EVENT), occurred_at=1793527200) == (2, 2.0)


def test_an_id_without_a_time_is_still_stored_once(client, served):
    """A retry of an event stamped "now" by the server comes later, yet is the same event."""
    event = {"customer_id": "C0002", "product_id": "P0003", "event_type": "view", "event_id": "v-1"}
    before = stored(served, **pair(event))
    for _ in range(3):
        client.post("/v1/events", json=event)
    assert stored(served, **pair(event)) == (before[0] + 1, before[1] + 1)


def test_a_batch_with_a_repeated_id_counts_it_once(client, served):
    before = stored(served)
    a = {**EVENT, "quantity": 2, "event_id": "a"}
    b = {**EVENT, "product_id": "P0002", "event_id": "b"}
    response = client.post("/v1/events", json={"events": [a, a, b, a]})
    assert response.status_code == 201 and response.get_json() == {"accepted": 2, "duplicates": 2}
    assert stored(served) == (before[0] + 2, before[1] + 3)  # 2 (a, once) + 1 (b)
    retry = client.post("/v1/events", json={"events": [b, {**a, "event_id": "c"}]})
    assert retry.get_json() == {"accepted": 1, "duplicates": 1}


def test_a_retry_after_a_server_side_failure_is_safe(client, served):
    db = store.connect(served.db)
    before = stored(served)
    # A real failure inside the storing transaction, after the event row was written.
    db.execute(
        "CREATE TRIGGER fail_key BEFORE INSERT ON event_keys WHEN NEW.event_id = 'flaky' "
        "BEGIN SELECT RAISE(ABORT, 'disk hiccup'); END"
    )
    event = {**EVENT, "event_id": "flaky"}
    failed = client.post("/v1/events", json=event)
    assert failed.status_code == 500 and failed.get_json()["error"]["code"] == "internal_error"
    assert stored(served) == before  # neither the event nor its key
    db.execute("DROP TRIGGER fail_key")
    db.conn.close()
    retried = client.post("/v1/events", json=event)
    assert retried.get_json() == {"accepted": 1, "duplicates": 0}
    # And the answer to that one was lost on the way (client timeout): the next retry is a duplicate.
    lost_answer = client.post("/v1/events", json=event)
    assert lost_answer.get_json() == {"accepted": 0, "duplicates": 1}
    assert stored(served) == (before[0] + 1, before[1] + 1)


def test_two_workers_given_the_same_retry_store_it_once(served):
    from api import create_app

    served.serve.open = True
    clients = [create_app(served).test_client() for _ in range(4)]
    before = stored(served)
    start = threading.Barrier(len(clients))
    answers = []

    def post(c):
        start.wait()
        answers.append(c.post("/v1/events", json={**EVENT, "event_id": "race"}).get_json())

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["accepted"] for a in answers) == [0, 0, 0, 1]
    assert sum(a["duplicates"] for a in answers) == 3
    assert stored(served) == (before[0] + 1, before[1] + 1)


def test_erasing_an_event_removes_its_key(client, served):
    client.post("/v1/events", json={**EVENT, "event_id": "gone"})
    db = store.connect(served.db)
    assert db.execute("SELECT count(*) FROM event_keys WHERE event_id = 'gone'").fetchone()[0] == 1
    with store.transaction(db):
        db.execute("DELETE FROM interactions WHERE customer_id = 'C0001' AND occurred_at = 1793527200")
    assert db.execute("SELECT count(*) FROM event_keys WHERE event_id = 'gone'").fetchone()[0] == 0


@pytest.mark.parametrize("event_id, fragment", [("x" * 101, "at most 100"), ("", "at least 1"), (7, "string")])
def test_bad_event_ids_are_422_naming_the_field(client, served, event_id, fragment):
    before = stored(served)
    response = client.post("/v1/events", json={**EVENT, "event_id": event_id})
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert "event_id" in message and fragment in message
    assert stored(served) == before
