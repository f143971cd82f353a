"""Kafka topic names: one place, used by the faust app, the CLI and the tests.

The names are a public contract (``configs/asyncapi.yaml``). ``WORKER_TOPIC_PREFIX``
namespaces all of them at once (e.g. ``staging.``), for shared clusters and tests;
it is empty by default.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

RAW = "articles.raw"
ENRICHED = "articles.enriched"
DLQ = "articles.dlq"
ALERT_PREFIX = "alerts."


def alert_topic(topic_id: str) -> str:
    return f"{ALERT_PREFIX}{topic_id}"


def all_topics(topic_ids: Iterable[str]) -> list[str]:
    return TopicNames().all(topic_ids)


@dataclass(frozen=True, slots=True)
class TopicNames:
    prefix: str = ""

    @property
    def raw(self) -> str:
        return self.prefix + RAW

    @property
    def enriched(self) -> str:
        return self.prefix + ENRICHED

    @property
    def dlq(self) -> str:
        return self.prefix + DLQ

    def alert(self, topic_id: str) -> str:
        return self.prefix + alert_topic(topic_id)

    def all(self, topic_ids: Iterable[str]) -> list[str]:
        return [self.raw, self.enriched, self.dlq, *(self.alert(t) for t in topic_ids)]
