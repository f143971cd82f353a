"""Prometheus metrics (prometheus_client), served by the worker at ``/metrics``.

Names follow the Prometheus conventions: a ``diplomacy_`` namespace, ``_total`` for
counters, base units (seconds). One registry per worker (not the library's global one), so
tests and several apps in one process do not share counts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4"
"""The text exposition format (UTF-8; aiohttp will not take a charset in content_type)."""

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ns = "diplomacy"
        self.received = Counter(
            "records_received", "Raw records taken from articles.raw", namespace=ns, registry=r
        )
        self.enriched = Counter(
            "records_enriched", "Articles published to articles.enriched", namespace=ns, registry=r
        )
        self.skipped = Counter(
            "records_skipped", "Records skipped, by reason", ["reason"], namespace=ns, registry=r
        )
        self.dead_letters = Counter(
            "dead_letters",
            "Dead letters published, by stage and error class",
            ["stage", "error_class"],
            namespace=ns,
            registry=r,
        )
        self.retries = Counter(
            "retries", "Retries of a retriable failure", namespace=ns, registry=r
        )
        self.alerts = Counter(
            "alerts", "Alerts published, by taxonomy topic", ["topic"], namespace=ns, registry=r
        )
        self.record_seconds = Histogram(
            "record_processing_seconds",
            "Time from taking a record to publishing its outcome (fetch, clean, tag, publish)",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.raw_to_enriched = Histogram(
            "raw_to_enriched_seconds",
            "Time from a record's arrival on articles.raw to its enriched event's ack",
            namespace=ns,
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.feed_polls = Counter(
            "feed_polls", "Feed polls, by outcome", ["outcome"], namespace=ns, registry=r
        )
        self.dependency_up = Gauge(
            "dependency_up",
            "1 when the live check of a dependency passes (kafka, partitions, redis)",
            ["dependency"],
            namespace=ns,
            registry=r,
        )
        self.partitions = Gauge(
            "partitions_assigned", "Partitions of articles.raw held", namespace=ns, registry=r
        )
        self.info = Gauge(
            "build_info",
            "Versions this worker runs (value 1)",
            ["pipeline_version", "taxonomy_version", "model_version"],
            namespace=ns,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe_probes(self, snapshot: dict[str, Any], assigned: int) -> None:
        for name, check in snapshot["checks"].items():
            self.dependency_up.labels(name).set(1 if check["ok"] else 0)
        self.partitions.set(assigned)
