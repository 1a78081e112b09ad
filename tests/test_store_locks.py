"""A process that opens the database twice must keep the first connection's locks.

POSIX releases every lock a process holds on a file when that process closes any
descriptor of the file. If opening a connection peeks at the file with a plain
open()/close(), a server worker's earlier connection silently loses its locks; the
next process to close the database then believes it was the last user and resets the
WAL under the worker, which goes on reading a stale snapshot (and writing into a
file that is no longer its WAL). Found by scripts/simulate.py, where a worker kept
answering 404 for customers imported by the CLI and the database ended up malformed.
"""

import subprocess
import sys

from recommender import store

WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO customers (id, created_at) VALUES (?, '2026-01-01T00:00:00Z')", [sys.argv[2]])
conn.close()
"""


def other_process_adds(path, customer_id):
    subprocess.run([sys.executable, "-c", WRITER, str(path), customer_id], check=True, timeout=60)


def test_a_second_connection_in_the_same_process_keeps_the_first_one_current(tmp_path):
    path = tmp_path / "shop.db"
    store.connect(path, create=True).conn.close()
    first = store.connect(path)
    other_process_adds(path, "C1")
    assert store.get_customer(first, "C1") is not None
    second = store.connect(path)  # e.g. a worker's decision-log thread opening its own connection
    for n in range(2, 6):
        other_process_adds(path, f"C{n}")
        assert store.get_customer(first, f"C{n}") is not None, f"first connection stale after C{n}"
        assert store.get_customer(second, f"C{n}") is not None
    assert first.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    second.conn.close()
    first.conn.close()
