"""Prometheus metrics. With several worker processes each writes its samples to
PROMETHEUS_MULTIPROC_DIR and /metrics aggregates them (prometheus_client multiprocess mode)."""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    PLATFORM_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# /metrics answers without a token: it says nothing of the interpreter and its version.
REGISTRY.unregister(PLATFORM_COLLECTOR)

REQUESTS = Counter(
    "esms_http_requests_total",
    "HTTP requests by route, method and status",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "esms_http_request_duration_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_ROWS = Counter(
    "esms_batch_rows_total", "Rows of stored batches, by kind and outcome", ["kind", "outcome"]
)
BATCH_REJECTIONS = Counter(
    "esms_batch_rejections_total",
    "Reasons rows of stored batches were refused, by kind and error code",
    ["kind", "code"],
)
# The extract series from before batches of other kinds were counted, kept for the dashboards
# and alerts built on them.
EXTRACT_ROWS = Counter("esms_extract_rows_total", "Extract rows received, by outcome", ["outcome"])
EXTRACT_REJECTIONS = Counter(
    "esms_extract_rejections_total", "Reasons extract rows were refused, by error code", ["code"]
)
POOL_IN_USE = Gauge(
    "esms_db_pool_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "esms_db_pool_size", "Database connections held by the pool", multiprocess_mode="livesum"
)


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def record_batch(kind: str, outcomes: Mapping[str, int], codes: Iterable[str]) -> None:
    """Count a stored batch's rows by outcome, and its refusals by error code."""
    legacy = kind == "extracts"
    for outcome, count in outcomes.items():
        BATCH_ROWS.labels(kind, outcome).inc(count)
        if legacy:
            EXTRACT_ROWS.labels(outcome).inc(count)
    for code, count in Tally(codes).items():
        BATCH_REJECTIONS.labels(kind, code).inc(count)
        if legacy:
            EXTRACT_REJECTIONS.labels(code).inc(count)
