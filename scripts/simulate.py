#!/usr/bin/env python
"""Play N days of a shop through the real CLI and a real server, and check the engine's promises every day.

    python scripts/simulate.py --days 4                 # a small generated shop (1-2 minutes on 2 cores)
    python scripts/simulate.py --days 30 --sample       # the bundled demo shop, a month

Everything goes through the faces an operator and a storefront use: the
``recommender`` command and ``scripts/retrain.py`` as subprocesses, and
``recommender serve`` (gunicorn, 127.0.0.1, started once, with an admin and a
write key) over HTTP. The days are simulated dates ending today, and every
event is dated on its day. Each day:

1. new customers sign up (a customers CSV import, then their consents over the API);
2. shoppers with hidden tastes browse and buy (``POST /v1/events`` in batches);
3. some customers change consent at the preference centre (``PUT .../consents``) and,
   now and then, at the support desk (``recommender consent set``, which the shop's
   own system never hears of);
4. a few customers are erased, alternately ``DELETE /v1/customers/<id>`` and
   ``recommender forget --yes``;
5. the shop's full nightly export (which still holds the erased) is re-imported, with
   ``--skip-erased`` when the CLI has it;
6. the cron retrain runs (exit 0 published, 3 refused by the gate);
7. the daily campaign runs against a few scarce bestsellers;
8. storefront visits: ``--shoppers`` customers are shown recommendations and answer them by
   the shop's stated response model (:meth:`_simulate_shop.Shop.respond`), sending the
   ``list_id`` back with their events. A share ``--control-share`` of customers is the A/B
   control arm (``online.control_share``), so the run ends with
   ``recommender report online --json`` (saved as ``online-report.json`` in the workdir)
   and its uplift of the model over the control arm.

With ``--promotion CATEGORY`` one merchandising rule runs the whole month: it reserves
one of the first five places of every recommendations list for that category
(``recommender rules add``, docs/rules.md), and the report ends with the rule's lines
(lists it touched vs lists it did not, per arm).

On ``--accident-day`` a batch of events dated in 2100 is written straight into
the database (a broken import that bypassed the doors) and removed the next
day: that night's retrain must be refused and the next night's must publish.

After each day the invariants of :mod:`_simulate_checks` are checked and one
line is printed; ``--json`` prints the days as a JSON list instead (the lines
go to stderr). The run ends with a Markdown table and the disk used by model
artifacts, and exits 1 if any invariant failed on any day (2 if the shop could
not even be set up).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _simulate_checks as checks  # noqa: E402
import _simulate_shop as shopmod  # noqa: E402

from recommender.config import load_settings  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent
SAMPLE_DIR = SCRIPTS.parent / "sample_data"
EXIT_FAILED, EXIT_SETUP = 1, 2
ACCIDENT_TIME = int(dt.datetime(2100, 1, 1, tzinfo=dt.UTC).timestamp())
IMPORT_KINDS = ("customers", "interactions", "consents")


class SetupError(Exception):
    """The shop could not be set up (a command failed before day 1)."""


def _recommender_command() -> list[str]:
    entry = Path(sys.executable).parent / "recommender"
    if entry.exists():
        return [str(entry)]
    return [sys.executable, "-c", "from recommender.cli import main; main()"]


class Engine:
    """The engine as an operator reaches it: the CLI and the cron scripts, as subprocesses."""

    def __init__(self, db: Path, workdir: Path) -> None:
        self.db = db
        self.workdir = workdir
        self.env = {k: v for k, v in os.environ.items() if k not in ("RECOMMENDER_DB",)}
        self.base = _recommender_command()
        self.calls = 0

    def _run(self, cmd: list[str]) -> tuple[int, dict[str, Any] | None, str]:
        self.calls += 1
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.workdir, timeout=1800)
        err = (proc.stderr.strip().splitlines() or [""])[-1]
        return proc.returncode, checks.parse_json_line(proc.stdout), err

    def cli(self, *args: str) -> tuple[int, dict[str, Any] | None, str]:
        """``recommender ARGS --db DB``; returns (exit status, the JSON object printed, last stderr line)."""
        return self._run([*self.base, *args, "--db", str(self.db)])

    def must(self, *args: str) -> dict[str, Any]:
        rc, payload, err = self.cli(*args)
        if rc != 0 or payload is None:
            raise SetupError(f"recommender {' '.join(args)}: exit {rc}: {err}")
        return payload

    def retrain(self) -> tuple[int, dict[str, Any] | None, str]:
        return self._run([sys.executable, str(SCRIPTS / "retrain.py"), "--db", str(self.db)])

    def help_texts(self, *commands: tuple[str, ...]) -> list[str]:
        """``--help`` of several commands, run side by side (each start costs about a second)."""
        procs = [
            subprocess.Popen(
                [*self.base, *args, "--help"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=self.env,
                cwd=self.workdir,
            )
            for args in commands
        ]
        self.calls += len(procs)
        return [p.communicate(timeout=120)[0] for p in procs]


class Server:
    """``recommender serve`` under gunicorn on a free loopback port, and a tiny urllib client."""

    def __init__(self, engine: Engine, workers: int) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = engine.workdir / "server.log"
        self._log_fh = open(self.log, "wb")  # noqa: SIM115 - kept open for the server process, closed in stop()
        self.proc = subprocess.Popen(
            [
                *engine.base,
                "serve",
                "--db",
                str(engine.db),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=engine.env,
            cwd=engine.workdir,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SetupError("the server did not become ready: " + self.log.read_text(errors="replace")[-1500:])

    def call(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw or b"null")
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_fh.close()


class Simulation:
    def __init__(self, args: argparse.Namespace, workdir: Path, out) -> None:
        self.args = args
        self.workdir = workdir
        self.out = out
        self.db = workdir / "shop.db"
        self.source = workdir / "source"
        self.source.mkdir(parents=True, exist_ok=True)
        self.engine = Engine(self.db, workdir)
        self.engine.env["RECOMMENDER_ONLINE_CONTROL_SHARE"] = str(args.control_share)
        self.settings = load_settings(overrides={"db": self.db})
        today = dt.datetime.now(dt.UTC).date()
        self.dates = [today - dt.timedelta(args.days - 1 - i) for i in range(args.days)]
        if args.sample:
            self.shop = shopmod.sample_shop(args.seed, SAMPLE_DIR)
        else:
            self.shop = shopmod.small_shop(args.seed, args.customers, args.products, first_day=self.dates[0])
        n = len(self.shop.customers)
        self.per_day = {"consent": max(2, n // 100), "erasures": max(1, n // 1000), "accident": max(20, n // 20)}
        self.gone: set[str] = set()
        self.secrets: list[str] = []
        self.expected: dict[tuple[str, str], bool] = {}
        self.support: list[str] = []
        self.skip_erased: dict[str, bool] = {}
        self.erasures = 0
        self.accident_ids: list[int] = []
        self.seen_versions: set[str] = set()
        self.keys: dict[str, str] = {}
        self.server: Server | None = None
        self.damaged = False
        self.days: list[dict[str, Any]] = []
        self.first_list_at: int | None = None

    # --- setting the shop up --------------------------------------------------------------

    def setup(self) -> None:
        e = self.engine
        e.must("init", "--json")
        files = {"products": self.shop.write_products(self.source / "products.csv")}
        files.update(self.export())
        for kind in ("products", "customers", "interactions", "consents"):
            e.must("import", kind, str(files[kind]), "--json")
        self.plant_old_decisions()
        self.seed_arm_key()
        self.seen_versions.add(e.must("train", "--publish", "--json")["version"])
        if self.args.promotion:
            self.install_promotion(self.args.promotion)
        for role in ("admin", "write"):
            self.keys[role] = e.must("keys", "create", "--role", role, "--name", f"simulate-{role}", "--json")["key"]
        helps = e.help_texts(*(("import", kind) for kind in IMPORT_KINDS))
        self.skip_erased = {kind: "--skip-erased" in text for kind, text in zip(IMPORT_KINDS, helps)}
        self.server = Server(e, self.args.workers)

    def install_promotion(self, category: str) -> None:
        """One promotion rule for the whole run, from a file, as a shop keeps its rules under version control."""
        rule = {
            "name": f"promote-{category}",
            "owner": "simulate",
            "surfaces": ["recommendations"],
            "description": f"one of the first five places for {category}",
            "action": {"type": "promote", "condition": {"categories": [category]}, "slots": 1, "of": 5},
        }
        path = self.source / "promotion.json"
        path.write_text(json.dumps(rule), encoding="utf-8")
        self.engine.must("rules", "add", str(path), "--actor", "simulate", "--json")

    def export(self) -> dict[str, Path]:
        """The shop system's full export, as it holds the data (erased customers included)."""
        return {
            "customers": self.shop.write_customers(self.source / "customers.csv"),
            "interactions": self.shop.write_interactions(self.source / "interactions.csv"),
            "consents": self.shop.write_consents(self.source / "consents.csv"),
        }

    def plant_old_decisions(self) -> None:
        """The engine ran before day 1: its decision log holds rows past the retention, which must go."""
        now = dt.datetime.now(dt.UTC)
        ids = list(self.shop.customers)[:10]
        rows = [
            (
                cid,
                (now - dt.timedelta(days=self.settings.privacy.retention_days + 1 + i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                f"/v1/customers/{cid}/recommendations",
                None,
                "non_personalized",
                "no_model",
                "[]",
            )
            for i, cid in enumerate(ids)
        ]
        with closing(sqlite3.connect(self.db, timeout=30)) as conn, conn:
            conn.executemany(
                "INSERT INTO decisions (customer_id, created_at, endpoint, model_version, mode, reason, "
                "product_ids) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def seed_arm_key(self) -> None:
        """The A/B arms follow from ``--seed`` (the engine makes its arm key at random), so a seed replays them."""
        import hashlib

        key = hashlib.sha256(f"simulate-arms-{self.args.seed}".encode()).hexdigest()[:32]
        with closing(sqlite3.connect(self.db, timeout=30)) as conn, conn:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'online_arm_key'", [key])

    # --- one day --------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, role: str = "admin") -> tuple[int, Any]:
        assert self.server is not None
        return self.server.call(method, path, body, self.keys[role])

    def day(self, number: int, day: dt.date) -> dict[str, Any]:
        started = time.perf_counter()
        now = int(time.time())
        latest = min(shopmod.day_start(day) + 86399, now - 120)
        if self.first_list_at is not None:
            # Simulated days are dated in the past, but every storefront visit is served now: the
            # last day's own shopping must not fall after lists served "earlier" in the run, or it
            # would be attributed to them by the window rule.
            latest = min(latest, self.first_list_at - 1)
        rec: dict[str, Any] = {"day": number, "date": day.isoformat(), "skip_erased": all(self.skip_erased.values())}
        failures: dict[str, list[str]] = {name: [] for name in checks.CHECKS}
        rec["timings"] = {}
        last = [started]

        def lap(name: str) -> None:
            # The file is checked after every step, so a damaged database names the step that did it.
            if not failures["integrity"] and not self.damaged:
                damage = checks.integrity(self.db)
                if damage:
                    self.damaged = True
                    failures["integrity"].append(f"after {name}: " + "; ".join(damage))
            now_ = time.perf_counter()
            rec["timings"][name] = round(now_ - last[0], 2)
            last[0] = now_

        if self.accident_ids:
            rec["accident"] = f"removed {self.remove_accident()}"
            lap("accident removal")

        joined = self.shop.join(day, latest)
        if joined:
            path = self.shop.write_customers(self.source / f"new-{day.isoformat()}.csv", [c for c, _ in joined])
            rc, _, err = self.engine.cli("import", "customers", str(path), "--json")
            if rc != 0:
                failures["imports"].append(f"new customers: {err}")
        for customer, chosen in joined:
            if chosen:
                status, body = self.api(
                    "PUT", f"/v1/customers/{customer.id}/consents", {"consents": chosen, "source": "signup"}
                )
                if status != 200:
                    failures["api"].append(f"sign-up consent of a just-imported customer: HTTP {status} {body}")
                for purpose, granted in chosen.items():
                    self.expected[customer.id, purpose] = granted
        rec["new_customers"] = len(joined)
        lap("join")

        events = self.shop.shop_day(day, latest, self.gone)
        for i in range(0, len(events), 1000):
            batch = [
                {"customer_id": c, "product_id": p, "event_type": t, "quantity": q, "occurred_at": shopmod.iso(s)}
                for c, p, t, q, s in events[i : i + 1000]
            ]
            status, body = self.api("POST", "/v1/events", {"events": batch}, role="write")
            if status != 201:
                failures["api"].append(f"POST /v1/events: HTTP {status} {body}")
        rec["events"] = len(events)
        lap("events")

        changed = self.shop.consent_changes(day, latest, self.gone, self.per_day["consent"])
        for cid, purpose, granted, _ in changed:
            status, body = self.api(
                "PUT", f"/v1/customers/{cid}/consents", {"consents": {purpose: granted}, "source": "preference_centre"}
            )
            if status != 200:
                failures["api"].append(f"PUT consents: HTTP {status} {body}")
            self.expected[cid, purpose] = granted
        rec["consent_changes"] = len(changed)
        rec["support_changes"] = 0
        if number % 2 == 0:  # now and then, the support desk withdraws on the phone
            granted = [
                c
                for (c, p), (g, _, _) in self.shop.consents.items()
                if p == "personalization" and g and c not in self.gone and c not in self.support
            ]
            for cid in self.shop.pick(granted, 1):
                rc, _, err = self.engine.cli(
                    "consent", "set", cid, "personalization", "withdrawn", "--source", "support", "--json"
                )
                if rc != 0:
                    failures["consent"].append(f"consent set: {err}")
                self.expected[cid, "personalization"] = False
                self.support.append(cid)
                rec["support_changes"] += 1

        lap("consent")
        rec["erased"] = {"api": 0, "cli": 0}
        live = [c for c in self.shop.customers if c not in self.gone and c not in self.support]
        for cid in self.shop.pick(live, self.per_day["erasures"]):
            how = "api" if self.erasures % 2 == 0 else "cli"
            if how == "api":
                status, body = self.api("DELETE", f"/v1/customers/{cid}")
                ok, err = status == 200, f"HTTP {status} {body}"
            else:
                rc, _, err = self.engine.cli("forget", cid, "--yes", "--json")
                ok = rc == 0
            if not ok:
                failures["erased"].append(f"erasure ({how}) failed: {err}")
            self.erasures += 1
            rec["erased"][how] += 1
            self.gone.add(cid)
            self.secrets += [cid, self.shop.customers[cid].email]
            for purpose in shopmod.PURPOSES:
                self.expected.pop((cid, purpose), None)

        lap("erase")
        rec["imports"] = {}
        for kind, path in self.export().items():
            flags = ["--skip-erased"] if self.skip_erased.get(kind) else []
            rc, payload, err = self.engine.cli("import", kind, str(path), *flags, "--json")
            if rc != 0:
                failures["imports"].append(f"nightly {kind}: {err}")
            rec["imports"][kind] = (payload or {}).get("skipped", {}) if rc == 0 else "failed"

        lap("imports")
        if number == self.args.accident_day:
            rec["accident"] = f"planted {self.plant_accident()}"
            lap("accident")

        expected = "refused" if number == self.args.accident_day else "published"
        rc, payload, err = self.engine.retrain()
        outcome = {0: "published", 3: "refused"}.get(rc, "error")
        rec.update(
            retrain=outcome,
            expected=expected,
            reason=(payload or {}).get("reason") or (err if outcome == "error" else None),
        )
        if outcome != expected:
            failures["retrain"].append(
                f"expected {expected}, got {outcome}" + (f" ({rec['reason']})" if rec["reason"] else "")
            )
        rec.update(self.tonights_model((payload or {}).get("version")))

        lap("retrain")
        rc, payload, err = self.engine.cli(
            "campaign", "run", "--occasion", "all", "--date", day.isoformat(), "--days-ahead", "7", "--json"
        )
        rec["offers"] = (payload or {}).get("offers_total", 0)
        if rc != 0:
            failures["stock"].append(f"campaign failed: {err}")

        lap("campaign")
        answers = self.serve_lists(number, [c for c, _, _, _ in changed], [c.id for c, _ in joined])
        rec["lists"] = {
            m: sum(1 for _, s, b in answers if isinstance(b, dict) and b.get("mode") == m)
            for m in ("personalized", "non_personalized")
        }

        lap("lists")
        rec["storefront"] = self.storefront(failures)
        lap("storefront")
        at = dt.datetime.now(dt.UTC)
        conf = self.settings
        for name, check in (
            ("stock", lambda: checks.over_promised(self.db, day.isoformat())),
            ("decisions", lambda: checks.stale_decisions(self.db, conf.privacy.retention_days, at)),
            (
                "artifacts",
                lambda: checks.excess_artifacts(
                    self.db, conf.model_dir, conf.models.keep_previous, conf.models.max_age_days, at
                ),
            ),
            ("erased", lambda: checks.erased_traces(self.db, conf.model_dir, self.secrets)),
            ("lists", lambda: checks.unexplained(answers)),
            ("consent", lambda: checks.consent_drift(self.db, self.expected, answers)),
        ):
            try:
                failures[name] += check()
            except sqlite3.DatabaseError as exc:
                failures[name].append(f"cannot be checked: {exc}")
        lap("checks")
        rec["artifact_dirs"] = len(checks.artifact_directories(self.settings.model_dir))
        rec["failures"] = {k: v for k, v in failures.items() if v}
        rec["ok"] = not rec["failures"]
        rec["seconds"] = round(time.perf_counter() - started, 1)
        return rec

    def tonights_model(self, version: str | None) -> dict[str, Any]:
        _, payload, _ = self.engine.cli("models", "--json")
        rows = (payload or {}).get("models", [])
        new = [r for r in rows if r["version"] not in self.seen_versions]
        self.seen_versions |= {r["version"] for r in rows}
        row = next((r for r in rows if r["version"] == version), None) or (
            max(new, key=lambda r: r["version"]) if new else None
        )
        if row is None:
            return {"version": None, "ndcg": None, "popularity_ndcg": None}
        metrics = row.get("metrics") or {}
        return {
            "version": row["version"],
            "ndcg": (metrics.get("model") or {}).get("ndcg"),
            "popularity_ndcg": (metrics.get("popularity") or {}).get("ndcg"),
        }

    def serve_lists(self, number: int, changed: list[str], joined: list[str]) -> list[tuple[str, int, Any]]:
        """Ask for recommendations as a storefront would: changed, new, withdrawn-by-support, random, unknown."""
        live = [c for c in self.shop.customers if c not in self.gone]
        wanted = list(
            dict.fromkeys(
                [*changed[:4], *joined[:2], *self.support[-3:], *self.shop.pick(live, 6), f"visitor-{number}"]
            )
        )
        answers = []
        for cid in wanted:
            if cid in self.gone:
                continue
            status, body = self.api("GET", f"/v1/customers/{cid}/recommendations?n=5", role="write")
            answers.append((cid, status, body))
        return answers

    def storefront(self, failures: dict[str, list[str]]) -> dict[str, int]:
        """Shoppers are shown recommendations and answer them; their events name the list they came from."""
        live = [c for c in self.shop.customers if c not in self.gone]
        out = {"lists": 0, "control": 0, "events": 0, "purchases": 0}
        batch: list[dict[str, Any]] = []
        if self.first_list_at is None:
            self.first_list_at = int(time.time())
        for cid in self.shop.pick(live, self.args.shoppers):
            status, body = self.api("GET", f"/v1/customers/{cid}/recommendations?n=5", role="write")
            if status != 200 or not isinstance(body, dict):
                failures["api"].append(f"storefront list for {cid}: HTTP {status}")
                continue
            out["lists"] += 1
            out["control"] += body.get("arm") == "control"
            t = int(time.time())  # after the list was served: inside its attribution window
            for c, p, kind, q, when, price in self.shop.respond(cid, body.get("items", []), t):
                batch.append(
                    {
                        "customer_id": c,
                        "product_id": p,
                        "event_type": kind,
                        "quantity": q,
                        "occurred_at": shopmod.iso(when),
                        "price": price,
                        "list_id": body["list_id"],
                    }
                )
                self.shop.events.append((c, p, kind, q, when))  # the shop's own system records the sale too
                out["purchases"] += kind == "purchase"
        for i in range(0, len(batch), 1000):
            status, body = self.api("POST", "/v1/events", {"events": batch[i : i + 1000]}, role="write")
            if status != 201:
                failures["api"].append(f"POST /v1/events (storefront): HTTP {status} {body}")
        out["events"] = len(batch)
        return out

    def online_report(self) -> dict[str, Any] | None:
        """``recommender report online --json``, kept in the workdir; one line per uplift for the reader."""
        rc, payload, err = self.engine.cli("report", "online", "--json")
        if rc != 0 or payload is None:
            self.say(f"online report failed: {err}")
            return None
        (self.workdir / "online-report.json").write_text(json.dumps(payload, indent=2, sort_keys=True))
        for u in payload.get("uplift", []):
            lo, hi = u["ci95"]
            self.say(
                f"online uplift {u['surface']} {u['metric']}: {u['treatment']} {u['treatment_value']:.4f} vs "
                f"{u['control']} {u['control_value']:.4f}, difference {u['difference']:+.4f} "
                f"(95 % CI {lo:+.4f} .. {hi:+.4f}; {u['n_treatment']} / {u['n_control']} lists, "
                f"{u['customers_treatment']} / {u['customers_control']} customers)"
            )
        if self.args.promotion:
            from recommender.cli.reports import rule_lines

            for line in rule_lines(payload.get("rules") or []):
                self.say(line)
        return payload

    def granted(self, customer_id: str, purpose: str) -> bool:
        """The customer's last decision: the simulation's own record, else the shop system's."""
        if (customer_id, purpose) in self.expected:
            return self.expected[customer_id, purpose]
        return self.shop.consents.get((customer_id, purpose), (False, 0, ""))[0]

    def plant_accident(self) -> int:
        """A broken import that bypassed every door: purchases dated 2100, written with sqlite3."""
        pool = [c for c in self.shop.customers if c not in self.gone and self.granted(c, "personalization")]
        who = self.shop.pick(pool, self.per_day["accident"])
        products = self.shop.product_ids
        rows = [
            (cid, products[(i * 7) % len(products)], "purchase", 1.0, ACCIDENT_TIME + i)
            for i, cid in enumerate(who * 2)
        ]
        with closing(sqlite3.connect(self.db, timeout=30)) as conn, conn:
            self.accident_ids = [
                conn.execute(
                    "INSERT INTO interactions (customer_id, product_id, event_type, quantity, "
                    "occurred_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                    r,
                ).fetchone()[0]
                for r in rows
            ]
        return len(self.accident_ids)

    def remove_accident(self) -> int:
        with closing(sqlite3.connect(self.db, timeout=30)) as conn, conn:
            conn.executemany("DELETE FROM interactions WHERE id = ?", [(i,) for i in self.accident_ids])
        n, self.accident_ids = len(self.accident_ids), []
        return n

    # --- the whole run ----------------------------------------------------------------------

    def run(self) -> int:
        try:
            self.setup()
        except SetupError as exc:
            print(f"Error: setup failed: {exc}", file=sys.stderr)
            return EXIT_SETUP
        try:
            if not all(self.skip_erased.values()):
                self.say("note: `recommender import` has no --skip-erased here: tombstones not enforced")
            for number, day in enumerate(self.dates, 1):
                record = self.day(number, day)
                self.days.append(record)
                self.say(day_line(record, len(self.dates)))
        finally:
            if self.server is not None:
                self.server.stop()
        self.say("")
        self.online_report()
        self.say(markdown_table(self.days))
        used = checks.disk_usage(self.settings.model_dir)
        self.say(
            f"\nmodel artifacts: {len(checks.artifact_directories(self.settings.model_dir))} directories, "
            f"{used / 2**20:.1f} MiB under {self.settings.model_dir}; {self.engine.calls} CLI calls"
        )
        failed = [(d["day"], name, msgs) for d in self.days for name, msgs in d["failures"].items()]
        for number, name, msgs in failed:
            self.say(f"FAILED day {number} {name}: " + "; ".join(msgs))
        if self.args.json:
            print(json.dumps(self.days, sort_keys=True, default=str))
        return EXIT_FAILED if failed else 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _ndcg(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def day_line(rec: dict[str, Any], days: int) -> str:
    """The one line per day: what happened, the retrain and why, and which invariants failed."""
    erased = rec["erased"]
    retrain = rec["retrain"] + (f": {rec['reason']}" if rec["retrain"] != "published" and rec["reason"] else "")
    checks_text = "checks ok" if rec["ok"] else "FAILED " + ", ".join(rec["failures"])
    accident = f"; accident {rec['accident']}" if rec.get("accident") else ""
    return (
        f"day {rec['day']:>2}/{days} {rec['date']}: {rec['events']} events, {rec['new_customers']} new, "
        f"{rec['consent_changes'] + rec['support_changes']} consent changes, "
        f"{erased['api'] + erased['cli']} erased{accident}; retrain {retrain}; NDCG@10 {_ndcg(rec['ndcg'])} "
        f"vs popularity {_ndcg(rec['popularity_ndcg'])}; {rec['offers']} offers; {checks_text}"
    )


def markdown_table(days: list[dict[str, Any]]) -> str:
    head = (
        "| day | date | events | new | consent | erased | retrain | NDCG@10 | popularity | offers | "
        "artifacts | failed checks |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {d['day']} | {d['date']} | {d['events']} | {d['new_customers']} | "
        f"{d['consent_changes'] + d['support_changes']} | {d['erased']['api'] + d['erased']['cli']} | "
        f"{d['retrain']}{' (accident)' if d['expected'] == 'refused' else ''} | {_ndcg(d['ndcg'])} | "
        f"{_ndcg(d['popularity_ndcg'])} | {d['offers']} | {d['artifact_dirs']} | "
        f"{', '.join(d['failures']) or '–'} |"
        for d in days
    ]
    return "\n".join([head, *rows])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="Days to simulate, ending today (default 30).")
    parser.add_argument(
        "--seed", type=int, default=0, help="Seed of the shop and of everything that happens (default 0)."
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="Play the bundled demo shop (sample_data/) instead of a small generated one.",
    )
    parser.add_argument("--customers", type=int, default=300, help="Customers of the generated shop (default 300).")
    parser.add_argument("--products", type=int, default=60, help="Products of the generated shop (default 60).")
    parser.add_argument(
        "--accident-day",
        type=int,
        default=None,
        help="Day (1..N) of the planted future-dated batch [default: the middle day].",
    )
    parser.add_argument(
        "--shoppers",
        type=int,
        default=60,
        help="Storefront visits per day that answer a recommendation list (default 60).",
    )
    parser.add_argument(
        "--control-share",
        type=float,
        default=0.3,
        help="Share of customers in the A/B control arm (online.control_share; default 0.3).",
    )
    parser.add_argument(
        "--promotion",
        default=None,
        metavar="CATEGORY",
        help="Run one promotion rule all along: one of the first 5 places of every recommendations "
        "list for this category; the report shows the rule's lines [default: no rule].",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers of the server (default 2).")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="Keep the shop (database, models, exports, server log) in this folder "
        "[default: a temporary folder, removed afterwards].",
    )
    parser.add_argument(
        "--json", action="store_true", help="Print the days as one JSON list on stdout (the human lines go to stderr)."
    )
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error("--days must be at least 2 (the accident needs a day after it)")
    if not 0 <= args.control_share <= 1:
        parser.error("--control-share must be between 0 and 1")
    if args.shoppers < 0:
        parser.error("--shoppers must be >= 0")
    if args.accident_day is None:
        args.accident_day = (args.days + 1) // 2
    if not 1 <= args.accident_day < args.days:
        parser.error(f"--accident-day must be in 1..{args.days - 1} (the night after it is checked too)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        if (args.workdir / "shop.db").exists():
            print(f"Error: {args.workdir} already holds a simulated shop; use an empty folder", file=sys.stderr)
            return EXIT_SETUP
        workdir, temporary = args.workdir.resolve(), False
    else:
        workdir, temporary = Path(tempfile.mkdtemp(prefix="recommender-sim-")), True
    try:
        return Simulation(args, workdir, sys.stderr if args.json else sys.stdout).run()
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
