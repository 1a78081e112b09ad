#!/usr/bin/env python
"""Benchmark: erasure with a running server, and how long derived answers lag behind it.

Against a running ``recommender serve`` (``--url``) on ``--db``: several threads
poll ``GET /v1/products/popular`` (whose scores count distinct consenting
customers) while one active customer is erased through ``DELETE
/v1/customers/{id}`` and then another through ``recommender forget``. For
each erasure it prints the call's wall time, the engine's own time per step,
how many polled answers still counted the customer, when the last of them
ended relative to the call's start, and how many of them started after the
call returned (the window that matters: it should be 0). The API must be
open (demo mode) or ``--key`` an admin key.

    recommender serve --port 18731 --workers 4 &
    python scripts/bench_erasure.py --db shop.db --url http://127.0.0.1:18731 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def _request(url: str, key: str | None, method: str = "GET") -> Any:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(req, timeout=120) as response:
        return json.loads(response.read())


def _active(db: str, offset: int) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT c.customer_id FROM consents c JOIN interactions i ON i.customer_id = c.customer_id "
            "WHERE c.purpose = 'personalization' AND c.granted = 1 GROUP BY c.customer_id HAVING count(*) > 20 "
            "ORDER BY c.customer_id LIMIT 1 OFFSET ?",
            [offset],
        ).fetchone()[0]
    finally:
        conn.close()


def erase_once(args: argparse.Namespace, kind: str, customer: str) -> dict[str, Any]:
    def popular() -> dict[str, float]:
        body = _request(f"{args.url}/v1/products/popular?n=100", args.key)
        return {i["product_id"]: i["score"] for i in body["items"]}

    before, log, stop = popular(), [], threading.Event()
    origin = time.perf_counter()

    def poll() -> None:
        while not stop.is_set():
            started = time.perf_counter() - origin
            same = popular() == before
            log.append((started, time.perf_counter() - origin, same))

    threads = [threading.Thread(target=poll) for _ in range(args.pollers)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    called = time.perf_counter() - origin
    if kind == "api":
        body = _request(f"{args.url}/v1/customers/{customer}", args.key, method="DELETE")
    else:
        out = subprocess.run(
            [str(Path(sys.executable).parent / "recommender"), "forget", customer, "--yes", "--json", "--db", args.db],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        body = json.loads(out)
    returned = time.perf_counter() - origin
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    stale = [(s, e) for s, e, same in log if same and s >= called]
    return {
        "kind": kind,
        "counted_before": popular() != before,
        "seconds": round(returned - called, 3),
        "engine_seconds": body.get("seconds"),
        "wal_checkpoint": body.get("wal_checkpoint"),
        "polls": len(log),
        "stale_answers": len(stale),
        "last_stale_end_s": round(max((e for _, e in stale), default=called) - called, 3),
        "stale_started_after_return": sum(1 for s, _, same in log if same and s >= returned),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="The database the server runs on.")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", default=None, help="An admin API key (none: the API is open).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pollers", type=int, default=4)
    parser.add_argument("--offset", type=int, default=10, help="Erase active customers from this rank on.")
    args = parser.parse_args()
    results = []
    for r in range(args.rounds):
        results.append(erase_once(args, "api", _active(args.db, args.offset + 2 * r)))
        results.append(erase_once(args, "cli", _active(args.db, args.offset + 2 * r + 1)))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
