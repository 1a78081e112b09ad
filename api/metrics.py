"""Prometheus metrics: requests and latency by endpoint, events ingested, model served.

Under gunicorn, ``recommender serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` so the
``/metrics`` of any worker reports the sum over all workers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REQUESTS = Counter("recommender_http_requests_total", "HTTP requests", ["endpoint", "method", "status"])
LATENCY = Histogram(
    "recommender_http_request_seconds",
    "HTTP request latency",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
EVENTS = Counter("recommender_events_ingested_total", "Events stored through the API")
LISTS = Counter(
    "recommender_lists_served_total",
    "Lists served, by surface and A/B arm (arm 'none' = not assigned)",
    ["surface", "arm"],
)
MODEL = Gauge(
    "recommender_model_info", "The model version a worker serves (value 1)", ["version"], multiprocess_mode="liveall"
)


def register(app: Flask) -> None:
    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def record(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        if "started" in g:
            LATENCY.labels(endpoint).observe(time.perf_counter() - g.started)
        return response


def served(surface: str, result: dict) -> dict:
    """Count one served list under its surface and arm; returns the result unchanged."""
    LISTS.labels(surface, result.get("arm") or "none").inc()
    return result


def exposition(model_version: str | None) -> tuple[bytes, str]:
    if model_version:
        MODEL.labels(model_version).set(1)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
