"""Run the API under gunicorn, the way `recommender serve` does.

Each worker builds its own app (and memory-maps the model, so the factors'
pages are shared between workers by the OS). Workers follow the ``CURRENT``
pointer on their own, so a newly published model is picked up by all of them
within a second without a restart.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable

from recommender.config import Settings


def default_workers() -> int:
    return min(2 * (os.cpu_count() or 1) + 1, 8)


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The gunicorn settings of `recommender serve` (the serving benchmark reuses them)."""
    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync", "timeout": 60,
            "graceful_timeout": 30, "keepalive": 5, "accesslog": None}


def run_wsgi(factory: Callable[[], Any], options: dict[str, Any]) -> None:
    """Run ``factory()`` (called in each worker) under gunicorn with ``options``."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        from recommender.errors import ConfigError

        raise ConfigError("gunicorn is not installed: pip install -e '.[serve]'") from None

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            # One request at a time per worker: keep BLAS from spawning threads that
            # fight the other workers for the same cores.
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
            return factory()

    Server().run()


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    from . import create_app

    metrics_dir = tempfile.mkdtemp(prefix="recommender-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def child_exit(server, worker) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    try:
        run_wsgi(lambda: create_app(settings), {**gunicorn_options(host, port, workers), "child_exit": child_exit})
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
