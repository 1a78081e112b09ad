"""Run the API under gunicorn, the way `recommender serve` does.

Each worker builds its own app (and memory-maps the model, so the factors'
pages are shared between workers by the OS). Workers follow the ``CURRENT``
pointer on their own, so a newly published model is picked up by all of them
within a second without a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

from recommender.config import Settings


def default_workers() -> int:
    return min(2 * (os.cpu_count() or 1) + 1, 8)


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """The gunicorn settings of `recommender serve` (the serving benchmark reuses them).

    The request-line and header limits are gunicorn's (documented in docs/api.md);
    :class:`JSONErrorWorker` answers a request over them in the API's JSON shape.
    """
    from .limits import LIMIT_FIELD_SIZE, LIMIT_REQUEST_FIELDS, LIMIT_REQUEST_LINE

    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "api.server.JSONErrorWorker",
        "timeout": 60,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": None,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_FIELD_SIZE,
    }


def _json_error(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


try:
    from gunicorn.http import errors as _http_errors
    from gunicorn.workers.sync import SyncWorker
except ImportError:  # the serve extra is not installed; run_wsgi says so
    SyncWorker = object  # type: ignore[assignment,misc]


class JSONErrorWorker(SyncWorker):  # type: ignore[misc,valid-type]
    """gunicorn's sync worker, answering requests it refuses before the app (too long, malformed) as JSON."""

    def handle_error(self, req, client, addr, exc):  # noqa: ANN001 - gunicorn's signature
        if isinstance(exc, _http_errors.LimitRequestLine):
            answer = _json_error(
                414, "URI Too Long", "uri_too_long", "request line longer than the server accepts (limit_request_line)"
            )
        elif isinstance(exc, _http_errors.LimitRequestHeaders):
            answer = _json_error(
                431,
                "Request Header Fields Too Large",
                "headers_too_large",
                "too many or too large request headers (limit_request_fields)",
            )
        elif isinstance(
            exc,
            (
                _http_errors.InvalidRequestLine,
                _http_errors.InvalidRequestMethod,
                _http_errors.InvalidHTTPVersion,
                _http_errors.InvalidHeader,
                _http_errors.InvalidHeaderName,
            ),
        ) and not isinstance(exc, (_http_errors.InvalidResponseHeader, _http_errors.InvalidResponseHeaderName)):
            answer = _json_error(400, "Bad Request", "bad_request", f"malformed HTTP request: {exc}")
        else:
            return super().handle_error(req, client, addr, exc)
        self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            client.sendall(answer)
        except OSError:
            self.log.debug("Failed to send error message.")
        return None


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
    master = os.getpid()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def child_exit(server, worker) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    def worker_app():
        # Each worker loads the model and the catalogue as it boots, not in its first request.
        import logging

        from recommender import store

        app = create_app(settings)
        try:
            db = store.connect(settings.db, migrate=False)
            try:
                app.extensions["recommender"].warm(db)
                app.extensions["recommender.visits"].warm(db)  # the session index, when the shop's scorer reads one
            finally:
                db.conn.close()
        except Exception:  # noqa: BLE001 - the first request loads and reports it instead
            logging.getLogger("recommender.serve").exception("worker warm-up failed")
        return app

    try:
        run_wsgi(worker_app, {**gunicorn_options(host, port, workers), "child_exit": child_exit})
    finally:
        # A worker leaves through here too (gunicorn forks inside run_wsgi and the worker exits
        # with SystemExit): only the master may remove the directory the others still write to.
        if os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)
