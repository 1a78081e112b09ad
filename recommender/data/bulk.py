"""Bulk read of the interactions table for training and exports, in a child process.

Training reads every event of consenting customers: millions of rows. Python's
row-by-row cursor takes most of a minute for ten million; the ADBC SQLite
driver reads straight into Arrow columns and maps ids to integer codes in
Arrow's C++ kernels, in seconds.

It runs in a child process on purpose. ADBC links its own copy of SQLite, and
two SQLite libraries in one process break each other's POSIX file locks
(closing one's file handle drops the other's locks), which corrupts WAL
databases. One process per library keeps both safe.

The child hands its arrays over in a scratch folder (``/dev/shm`` when there
is one) named ``recommender-read-<pid>-*``: those arrays hold customer ids and
their events, so the folder is removed on every exit path, including SIGTERM
and SIGINT (see :func:`terminate_cleanly`), and a folder left by a process that
was killed outright (SIGKILL, power loss) is removed by the next read.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils

from recommender import store
from recommender.errors import RecommenderError
from recommender.store.consents import PERSONALIZATION

SCRATCH_PREFIX = "recommender-read-"
_OWNED = re.compile(rf"^{SCRATCH_PREFIX}(\d+)-")


class BulkReadError(RecommenderError):
    """The child process that reads the interactions failed; the message carries its last line."""

    code = "bulk_read_failed"


def scratch_root() -> str | None:
    """Where the hand-over folder goes: shared memory when writable, else the system temp folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a folder or file named after it is still in use)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_scratch(root: str | None = None) -> int:
    """Delete hand-over folders whose process is gone (killed before it could clean up)."""
    base = Path(root or scratch_root() or tempfile.gettempdir())
    removed = 0
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            m = _OWNED.match(entry.name)
            if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM (and SIGHUP) into ``SystemExit`` for the block, so ``finally`` clauses and
    temporary folders are cleaned up when cron or systemd stops a job; SIGINT already raises."""

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread: leave the handlers alone
            pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def interaction_arrays(db: sqlite_utils.Database, purpose: str = PERSONALIZATION) -> dict[str, np.ndarray]:
    """Every interaction of customers who granted ``purpose``, as column arrays.

    Customer and product ids come back as integer codes into the returned
    ``customer_ids`` / ``product_ids`` / ``event_types`` arrays, so callers never
    hold millions of Python strings. The scan goes through the ADBC SQLite
    driver straight into Arrow columns, and the id mapping runs in Arrow's C++
    kernels: ten million rows take seconds, where Python's row-by-row cursor
    takes most of a minute.
    """
    remove_stale_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-", dir=scratch_root()) as tmp:
        out = Path(tmp) / "arrays.npz"
        code = "import sys; from recommender.data.bulk import _export_arrays; _export_arrays(*sys.argv[1:])"
        proc = subprocess.run(
            [sys.executable, "-c", code, store.database_path(db), purpose, str(out)], capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise BulkReadError(f"reading interactions failed: {tail}")
        with np.load(out, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    for key in ("customer_ids", "product_ids", "event_types"):
        arrays[key] = arrays[key].astype(object)
    return arrays


def _export_arrays(path: str, purpose: str, out: str) -> None:
    """Child side of :func:`interaction_arrays`: read, map to codes, write an ``.npz``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # Each read is its own autocommit snapshot through the ADBC driver (see :mod:`recommender.store.bulk`).
    customers = store.bulk_consenting_customers(path, purpose)["customer_id"]
    customers = customers.combine_chunks().cast(pa.string())
    customers = customers.take(pc.array_sort_indices(customers))
    products = store.bulk_product_ids(path)["id"].combine_chunks().cast(pa.string())
    lo, hi = store.bulk_interaction_id_range(path)

    def part(bounds: tuple[int, int]) -> dict[str, Any] | None:
        """Fetch one rowid range and map it to codes; pyarrow and the driver release the GIL."""
        events = store.bulk_interactions_between(path, *bounds)
        if events.num_rows == 0 or len(customers) == 0:
            return None
        events = events.combine_chunks()
        user = pc.index_in(events["customer_id"].cast(pa.string()), value_set=customers)
        keep = pc.is_valid(user)
        events, user = events.filter(keep), user.filter(keep)
        encoded = pc.dictionary_encode(events["event_type"].cast(pa.string())).combine_chunks()
        return {
            "user": user.to_numpy(zero_copy_only=False).astype(np.int32),
            "item": pc.index_in(events["product_id"].cast(pa.string()), value_set=products)
            .to_numpy(zero_copy_only=False)
            .astype(np.int32),
            "codes": encoded.indices.to_numpy(zero_copy_only=False),
            "types": encoded.dictionary.to_pylist(),
            "quantity": events["quantity"].to_numpy().astype(np.float32),
            "time": events["occurred_at"].to_numpy().astype(np.int64),
        }

    # The scan is split by rowid range over a few threads.
    workers = max(1, min(os.cpu_count() or 1, 4))
    step = (hi - lo + workers) // workers
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        parts = [p for p in pool.map(part, [(lo + i * step, lo + (i + 1) * step - 1) for i in range(workers)]) if p]
    types: list[str] = []
    for p in parts:  # one event-type numbering across parts
        local = np.array(
            [types.index(t) if t in types else types.append(t) or len(types) - 1 for t in p["types"]], dtype=np.int16
        )
        p["event"] = local[p["codes"]] if len(local) else np.zeros(0, np.int16)

    def joined(key: str, dtype) -> np.ndarray:
        return np.concatenate([p[key] for p in parts]).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    np.savez(
        out,
        user=joined("user", np.int32),
        item=joined("item", np.int32),
        event=joined("event", np.int16),
        quantity=joined("quantity", np.float32),
        time=joined("time", np.int64),
        customer_ids=np.array(customers.to_pylist(), dtype=str),
        product_ids=np.array(products.to_pylist(), dtype=str),
        event_types=np.array(types, dtype=str),
    )
