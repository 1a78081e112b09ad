#!/usr/bin/env python
"""Benchmark: bytes and server time of every console page, on the demo shop.

In one run: the sample shop in a temporary folder (``init``, ``load-sample``,
``train --publish`` through the library), an admin key, one campaign run from
the console (so the ledger, run and customer pages have data), then each page
requested ``--repeat`` times (default 20) through Flask's test client signed
in as that admin. The test client calls the WSGI app in-process, so the time
is the server's own (routing, the session and key check, queries, Jinja and
the SVG) without network or browser. Reports bytes per page (HTML as sent; a
page loads nothing else: no script, no stylesheet, no image files) and the
median and 90th percentile milliseconds.

    python scripts/bench_console.py [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threadpoolctl import threadpool_limits  # noqa: E402

from api import create_app  # noqa: E402
from recommender import store
from recommender.config import load_settings  # noqa: E402
from recommender.ingest import imports
from recommender.serving import keys
from recommender.training import run as training  # noqa: E402

TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    threadpool_limits(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(environ={}, overrides={"db": Path(tmp) / "shop.db", "model_dir": Path(tmp) / "models"})
        db = store.connect(settings.db, create=True)
        imports.load_sample(db, settings)
        training.train(db, settings, publish=True)
        _, token = keys.create(db, "admin", "bench")
        db.conn.close()
        app = create_app(settings)
        client = app.test_client()
        csrf = TOKEN.search(client.get("/console/sign-in").get_data(as_text=True)).group(1)
        client.post("/console/sign-in", data={"csrf": csrf, "key": token})
        csrf = TOKEN.search(client.get("/console/campaigns").get_data(as_text=True)).group(1)
        today = dt.datetime.now(dt.UTC).date().isoformat()
        form = {"csrf": csrf, "occasion": "all", "date": today, "days_ahead": "7"}
        ran = client.post("/console/campaigns/run", data={**form, "confirm": "yes"})
        run_page = ran.headers["Location"]
        with sqlite3.connect(settings.db) as conn:
            customer = conn.execute("SELECT customer_id FROM offers LIMIT 1").fetchone()[0]
        pages = [
            ("overview", "GET", "/console/", None),
            ("campaigns", "GET", "/console/campaigns", None),
            (
                "campaign preview",
                "POST",
                "/console/campaigns/preview",
                {**form, "date": (dt.date.fromisoformat(today) + dt.timedelta(days=8)).isoformat()},
            ),
            ("campaign run result", "GET", run_page, None),
            ("ledger search", "GET", f"/console/campaigns/ledger?q={customer}", None),
            ("customer", "GET", f"/console/customer?id={customer}", None),
            ("models", "GET", "/console/models", None),
            ("sign-in", "GET", "/console/sign-in", None),
        ]
        rows = []
        for name, method, path, data in pages:
            times, size = [], 0
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.post(path, data=data) if method == "POST" else client.get(path)
                body = response.get_data()
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (name, response.status_code)
                size = len(body)
            times.sort()
            rows.append(
                {
                    "page": name,
                    "path": path.split("?")[0],
                    "bytes": size,
                    "median_ms": round(statistics.median(times), 2),
                    "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
                }
            )
    if args.json:
        print(json.dumps({"repeat": args.repeat, "pages": rows}, indent=2))
        return
    print(f"{'page':22} {'bytes':>8} {'median ms':>10} {'p90 ms':>8}   ({args.repeat} requests each)")
    for r in rows:
        print(f"{r['page']:22} {r['bytes']:>8,} {r['median_ms']:>10.2f} {r['p90_ms']:>8.2f}")


if __name__ == "__main__":
    main()
