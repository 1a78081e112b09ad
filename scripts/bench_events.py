"""Events ingest throughput: `POST /v1/events` in batches under concurrency, one checkout or two side by side.

For each checkout (a folder holding ``recommender/`` and ``api/``, run with
``PYTHONPATH`` set to it) the script makes a fresh shop in a temporary folder
(customers, products, a write key: that checkout's own code writes it, so its
own schema), starts ``recommender serve`` (gunicorn, loopback only, a free port)
and sends ``--batches`` batches of ``--batch-size`` events from ``--concurrency``
threads, each with a keep-alive connection and bodies encoded before the clock
starts. Events name random customers and products, are stamped by the server
(no ``occurred_at``) and carry an ``event_id`` with ``--event-ids``. The number
is events stored per second of wall time, after ``--warmup`` batches.

With ``--base`` the two checkouts are measured alternately (base, this, base,
this, ...) ``--rounds`` times on fresh shops, so a busy machine slows both
alike; the median of each is reported, and the ratio this / base.

    python scripts/bench_events.py --base /work/base            # before / after, side by side
    python scripts/bench_events.py --event-ids --rounds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

SETUP = """
import sys
from recommender import store
try:  # the checkout's own keys module: flat before the layers, in serving after
    from recommender import keys
except ImportError:
    from recommender.serving import keys
db = store.connect(sys.argv[1], create=True)
n_c, n_p = int(sys.argv[2]), int(sys.argv[3])
store.upsert_customers(db, [(f"C{i:06d}", None, None, None, None, "UTC", "2025-01-01T00:00:00Z") for i in range(n_c)])
store.upsert_products(db, [(f"P{i:06d}", f"Product {i}", "x", 10.0, None, 0, None) for i in range(n_p)])
print(keys.create(db, "write", "bench")[1])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bodies(n_batches: int, size: int, customers: int, products: int, event_ids: bool, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    kinds = ("view", "view", "view", "add_to_cart", "purchase")
    out = []
    for b in range(n_batches):
        events = []
        for k in range(size):
            e = {
                "customer_id": f"C{rng.randrange(customers):06d}",
                "product_id": f"P{rng.randrange(products):06d}",
                "event_type": rng.choice(kinds),
            }
            if event_ids:
                e["event_id"] = f"s{seed}-b{b}-e{k}"
            events.append(e)
        out.append(json.dumps({"events": events}).encode())
    return out


def measure(checkout: Path, args: argparse.Namespace, seed: int) -> float:
    """Events per second for one fresh shop served by ``checkout``."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "RECOMMENDER_SELECTION_ENABLED": "0"}
    env.pop("RECOMMENDER_CONFIG", None)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "shop.db"
        token = subprocess.run(
            [sys.executable, "-c", SETUP, str(db), str(args.customers), str(args.products)],
            env=env,
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        port = free_port()
        env.update(RECOMMENDER_DB=str(db), RECOMMENDER_MODEL_DIR=str(Path(tmp) / "models"))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from recommender.cli import main; main()",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.time() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("server did not start: " + proc.stderr.read().decode()[-2000:])
                time.sleep(0.2)
            work = bodies(
                args.warmup + args.batches, args.batch_size, args.customers, args.products, args.event_ids, seed
            )
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            errors: list[str] = []

            def run(chunk: list[bytes]) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                for body in chunk:
                    conn.request("POST", "/v1/events", body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.read()
                    if response.status != 201:
                        errors.append(f"{response.status} {answer[:200]!r}")
                conn.close()

            run(work[: args.warmup])
            timed = work[args.warmup :]
            threads = [
                threading.Thread(target=run, args=(timed[i :: args.concurrency],)) for i in range(args.concurrency)
            ]
            started = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - started
            if errors:
                raise SystemExit(f"{len(errors)} failed request(s), first: {errors[0]}")
            return len(timed) * args.batch_size / seconds
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkout", type=Path, default=HERE, help="the code to measure [default: this one]")
    parser.add_argument("--base", type=Path, default=None, help="a second checkout, measured alternately")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--event-ids", action="store_true", help="give every event an event_id")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    runs: dict[str, list[float]] = {"base": [], "this": []} if args.base else {"this": []}
    for r in range(args.rounds):
        for name in runs:
            checkout = args.base if name == "base" else args.checkout
            rate = measure(checkout.resolve(), args, seed=r)
            runs[name].append(rate)
            print(f"round {r + 1} {name:<4} {checkout}: {rate:,.0f} events/s", file=sys.stderr)
    result = {
        name: {"median_events_per_s": round(statistics.median(v)), "runs": [round(x) for x in v]}
        for name, v in runs.items()
    }
    result["setup"] = {
        "batches": args.batches,
        "batch_size": args.batch_size,
        "concurrency": args.concurrency,
        "workers": args.workers,
        "event_ids": args.event_ids,
        "cpus": os.cpu_count(),
    }
    if args.base:
        result["ratio_this_over_base"] = round(
            result["this"]["median_events_per_s"] / result["base"]["median_events_per_s"], 3
        )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in runs:
            print(
                f"{name}: median {result[name]['median_events_per_s']:,} events/s "
                f"(runs: {', '.join(f'{x:,}' for x in result[name]['runs'])})"
            )
        if args.base:
            print(f"this / base = {result['ratio_this_over_base']}")


if __name__ == "__main__":
    main()
