"""Kafka topic names: one place, used by the faust app, the CLI and the tests."""

from __future__ import annotations

from collections.abc import Iterable

RAW = "articles.raw"
ENRICHED = "articles.enriched"
DLQ = "articles.dlq"
ALERT_PREFIX = "alerts."


def alert_topic(topic_id: str) -> str:
    return f"{ALERT_PREFIX}{topic_id}"


def all_topics(topic_ids: Iterable[str]) -> list[str]:
    return [RAW, ENRICHED, DLQ, *(alert_topic(t) for t in topic_ids)]
