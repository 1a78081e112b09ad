"""The invariants the simulation checks after every day, read from outside the engine.

Each check looks at what the engine left behind — the SQLite file (by SQL, read
only), its bytes and its WAL, the model folder — or at what the server
answered, and returns a list of failures (empty = the invariant holds). None
of them calls the engine's own code, so a bug there cannot hide itself.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

CHECKS = ("integrity", "imports", "api", "retrain", "stock", "decisions", "artifacts", "erased", "lists", "consent")


def read_only(db_path: str | Path) -> sqlite3.Connection:
    """A read-only connection that holds no transaction open (so it never blocks a checkpoint)."""
    conn = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True, timeout=30, isolation_level=None)
    return conn


def integrity(db_path: str | Path) -> list[str]:
    """``PRAGMA quick_check`` of the database file: anything but ``ok`` means it is damaged."""
    try:
        with closing(read_only(db_path)) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        return [f"quick_check failed: {exc}"]
    return [] if rows == ["ok"] else [f"quick_check: {'; '.join(rows)}"]


def over_promised(db_path: str | Path, day: str) -> list[str]:
    """Products offered in more still-valid offers (valid until ``day`` or later) than units in stock."""
    sql = """SELECT p.id, p.in_stock, count(*) FROM offers o, json_each(o.products) j
             JOIN products p ON p.id = j.value
             WHERE o.valid_until >= ? AND p.in_stock IS NOT NULL
             GROUP BY p.id HAVING count(*) > p.in_stock ORDER BY p.id"""
    with closing(read_only(db_path)) as conn:
        rows = conn.execute(sql, [day]).fetchall()
    return [f"{pid}: {n} valid offers > {stock} in stock" for pid, stock, n in rows]


def stale_decisions(db_path: str | Path, retention_days: float, now: dt.datetime) -> list[str]:
    """Decision-log rows older than the retention period (there must be none)."""
    cutoff = (now - dt.timedelta(days=retention_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with closing(read_only(db_path)) as conn:
        n = conn.execute("SELECT count(*) FROM decisions WHERE created_at < ?", [cutoff]).fetchone()[0]
    return [f"{n} decision(s) older than {retention_days:g} days"] if n else []


def artifact_directories(model_dir: str | Path) -> list[str]:
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _age_days(created_at: str, now: dt.datetime) -> float:
    when = dt.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    return (now - when).total_seconds() / 86400


def excess_artifacts(
    db_path: str | Path, model_dir: str | Path, keep_previous: int, max_age_days: float, now: dt.datetime
) -> list[str]:
    """Model directories beyond the retention: current + ``keep_previous`` published + young candidates.

    A directory with no row in ``models`` (an orphan), a candidate or rejected
    model older than ``max_age_days``, or more than ``keep_previous`` published
    models besides the current one, is over the retention.
    """
    root = Path(model_dir)
    dirs = artifact_directories(root)
    try:
        current = (root / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        current = ""
    with closing(read_only(db_path)) as conn:
        rows = {v: (s, c) for v, s, c in conn.execute("SELECT version, status, created_at FROM models")}
    failures = []
    orphans = [d for d in dirs if d not in rows]
    if orphans:
        failures.append(f"{len(orphans)} director{'y' if len(orphans) == 1 else 'ies'} with no model row")
    previous = [d for d in dirs if d in rows and d != current and rows[d][0] in ("published", "retired")]
    old = [
        d
        for d in dirs
        if d in rows
        and d != current
        and rows[d][0] not in ("published", "retired")
        and _age_days(rows[d][1], now) > max_age_days
    ]
    young = [d for d in dirs if d in rows and d != current and d not in previous and d not in old]
    allowed = (1 if current in dirs else 0) + keep_previous + len(young)
    if len(previous) > keep_previous or old or len(dirs) > allowed:
        failures.append(
            f"{len(dirs)} directories > {allowed} allowed (current + {keep_previous} previous "
            f"+ {len(young)} young candidates; {len(previous)} previous, {len(old)} too old)"
        )
    return failures


def _text_columns(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    out = []
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        for _cid, column, kind, *_ in conn.execute(f'PRAGMA table_info("{table}")'):
            if kind.upper() in ("TEXT", ""):
                out.append((table, column))
    return out


def erased_traces(db_path: str | Path, model_dir: str | Path, secrets: Sequence[str]) -> list[str]:
    """Where any of ``secrets`` (erased ids and emails) still appears: table rows, db/WAL bytes, model files."""
    if not secrets:
        return []
    found = []
    with closing(read_only(db_path)) as conn:
        marks = ",".join("?" * len(secrets))
        for table, column in _text_columns(conn):
            n = conn.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}" IN ({marks})', list(secrets)).fetchone()[
                0
            ]
            if n:
                found.append(f"{n} row(s) in {table}.{column}")
    pattern = re.compile(b"|".join(re.escape(s.encode()) for s in sorted(secrets, key=len, reverse=True)))
    db = Path(db_path)
    files = [db, db.with_name(db.name + "-wal")]
    root = Path(model_dir)
    if root.is_dir():
        files += sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        hits = {m.group().decode() for m in pattern.finditer(data)}
        if hits:
            where = path.name if path.parent == db.parent else str(path.relative_to(root.parent))
            found.append(f"{len(hits)} erased value(s) in the bytes of {where}")
    return found


def unexplained(answers: Iterable[tuple[str, int, Any]]) -> list[str]:
    """Served lists without a status 200, a mode, or (when non-personalized) a reason."""
    bad = []
    for customer, status, body in answers:
        if status != 200 or not isinstance(body, dict):
            bad.append(f"{customer}: HTTP {status}")
        elif body.get("mode") not in ("personalized", "non_personalized"):
            bad.append(f"{customer}: no mode")
        elif body["mode"] == "non_personalized" and not body.get("reason"):
            bad.append(f"{customer}: non-personalized without a reason")
    return bad


def consent_drift(
    db_path: str | Path, expected: dict[tuple[str, str], bool], answers: Iterable[tuple[str, int, Any]]
) -> list[str]:
    """Consent states that differ from the customer's last decision, and personal lists served without it."""
    bad = []
    if expected:
        with closing(read_only(db_path)) as conn:
            held = {(c, p): bool(g) for c, p, g in conn.execute("SELECT customer_id, purpose, granted FROM consents")}
        wrong = sorted(k for k, v in expected.items() if held.get(k, False) != v)
        if wrong:
            c, p = wrong[0]
            bad.append(
                f"{len(wrong)} consent state(s) differ from the last decision (first: {c} {p} "
                f"should be {'granted' if expected[wrong[0]] else 'withdrawn'})"
            )
    for customer, status, body in answers:
        if (
            status == 200
            and isinstance(body, dict)
            and body.get("mode") == "personalized"
            and expected.get((customer, "personalization")) is False
        ):
            bad.append(f"{customer}: personalized list without personalization consent")
    return bad


def disk_usage(model_dir: str | Path) -> int:
    root = Path(model_dir)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def parse_json_line(text: str) -> dict[str, Any] | None:
    """The last line of ``text`` that is a JSON object (commands print one; logs may precede it)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None
