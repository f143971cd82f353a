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
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

STAGES = ("fetch", "clean", "dedup", "tag", "publish")
"""The stages a record goes through, as the ``stage`` label of the stage histogram."""

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")


def status_class(status: int | None) -> str:
    """``200`` -> ``"2xx"``, ``304`` -> ``"3xx"``; no HTTP answer (timeout, refused, DNS,
    blocked address, body over the cap) -> ``"error"``."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx" if status >= 200 else "error"


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
        self.stage_seconds = Histogram(
            "stage_seconds",
            "Time a record spends in each stage: fetch (its page), clean, dedup, tag, "
            "publish (its outcome, until acknowledged)",
            ["stage"],
            namespace=ns,
            registry=r,
            buckets=_STAGE_BUCKETS,
        )
        self.http_fetches = Counter(
            "http_fetches",
            "HTTP fetches by what they fetched (feed, page) and the answer's status class "
            "(2xx, 3xx, 4xx, 5xx; error: no answer)",
            ["kind", "status_class"],
            namespace=ns,
            registry=r,
        )
        self.extraction_in_flight = Gauge(
            "extraction_in_flight",
            "Pages handed to the extraction pool and not yet cleaned",
            namespace=ns,
            registry=r,
        )
        self.extraction_queue_depth = Gauge(
            "extraction_queue_depth",
            "Pages waiting for a free extraction process (in flight beyond the pool's size)",
            namespace=ns,
            registry=r,
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
        self.consumer_lag = Gauge(
            "consumer_lag",
            "Records on articles.raw not yet committed by the worker's consumer group, per "
            "partition this worker holds (log end offset minus committed offset)",
            ["topic", "partition"],
            namespace=ns,
            registry=r,
        )
        self._lag_series: set[tuple[str, str]] = set()
        self.info = Gauge(
            "build_info",
            "Versions this worker runs (value 1)",
            ["pipeline_version", "taxonomy_version", "model_version"],
            namespace=ns,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(max(0.0, seconds))

    def observe_fetch(self, kind: str, status: int | None) -> None:
        self.http_fetches.labels(kind, status_class(status)).inc()

    def watch_extractor(self, extractor: Any) -> None:
        """The extraction gauges read the extractor's counts at each scrape."""
        self.extraction_in_flight.set_function(lambda: getattr(extractor, "in_flight", 0))
        self.extraction_queue_depth.set_function(lambda: getattr(extractor, "queue_depth", 0))

    def observe_probes(self, snapshot: dict[str, Any], assigned: int) -> None:
        for name, check in snapshot["checks"].items():
            self.dependency_up.labels(name).set(1 if check["ok"] else 0)
        self.partitions.set(assigned)

    def observe_lag(self, topic: str, lag: dict[int, int]) -> None:
        """One series per partition held; those of partitions no longer held go away."""
        now = {(topic, str(p)) for p in lag}
        for gone in self._lag_series - now:
            self.consumer_lag.remove(*gone)
        for p, n in lag.items():
            self.consumer_lag.labels(topic, str(p)).set(n)
        self._lag_series = now
