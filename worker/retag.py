"""``python -m worker retag``: bring the history on ``articles.enriched`` up to date.

When the taxonomy, the rules or the model change, the events already published keep the tags
of their day. ``retag`` reads the history (from the beginning, or from ``--since DATE`` by the
broker's offsets-for-times), tags each article's stored title and text with the current
tagger, and publishes a **new revision** of every article whose topics or countries changed
(same article id and key, ``revision`` + 1, the current ``taxonomy_version`` and
``model_version``; its story as it was), plus the alerts that newly apply under the current
alert rules (``kind: article``; never for a republished copy). Only the
latest revision of each article counts, so a second run finds everything current and
publishes nothing (idempotent). Scores or evidence that move without changing the topic set
do not make a revision.

Two passes over the same offsets (taken when the run starts, so it never reads its own
output): the first notes each article's latest revision, the second retags those. Memory is
one batch of events plus an id -> revision map.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from worker.events import SCHEMA_VERSION, AlertEvent, EnrichedEvent, alert_for
from worker.settings import Settings


@dataclass(slots=True)
class Revision:
    event: EnrichedEvent
    alerts: list[AlertEvent]
    added: set[str]
    removed: set[str]
    countries_changed: bool


@dataclass(slots=True)
class RetagSummary:
    read: int = 0
    articles: int = 0
    unreadable: int = 0
    revised: int = 0
    alerts: int = 0
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)
    countries_changed: int = 0

    def lines(self) -> list[str]:
        out = [
            f"{self.read} event(s) read, {self.articles} article(s) at their latest revision; "
            f"{self.revised} new revision(s), {self.alerts} new alert(s)"
            + (f"; {self.unreadable} unreadable event(s) left alone" if self.unreadable else "")
        ]
        for t in sorted(set(self.added) | set(self.removed)):
            out.append(f"  {t:<24} +{self.added[t]:<5} -{self.removed[t]}")
        if self.countries_changed:
            out.append(f"  countries changed on {self.countries_changed} article(s)")
        return out


def revise(
    event: EnrichedEvent,
    tagger: Any,
    rules: Any,
    *,
    only_topic: str | None = None,
) -> Revision | None:
    """The next revision of ``event`` under the current tagger, or None when its topics and
    countries stay as they are (with ``only_topic``: when that topic's tag stays)."""
    result = tagger.tag(event.title, event.text, event.published_at)
    old = {t.id for t in event.topics}
    new = {t.id for t in result.topics}
    countries_changed = sorted(event.countries) != sorted(result.countries)
    if only_topic is not None:
        if (only_topic in old) == (only_topic in new):
            return None
    elif old == new and not countries_changed:
        return None
    revision = event.revision + 1
    revised = event.model_copy(
        update={
            "schema_version": SCHEMA_VERSION,
            "topics": list(result.topics),
            "countries": list(result.countries),
            "revision": revision,
            "taxonomy_version": tagger.taxonomy_version,
            "model_version": tagger.model_version,
        }
    )
    alerted_before = {
        t.id
        for t in event.topics
        if (rule := rules.rules.get(t.id)) is not None and rule.passes(t, event.countries)
    }
    alerts = [
        alert_for(revised, t)
        for t in rules.alerting(result)
        if t.id not in alerted_before and (only_topic is None or t.id == only_topic)
        if event.duplicate_of is None  # a republished copy never alerts
    ]
    return Revision(revised, alerts, new - old, old - new, countries_changed)


def _event(value: bytes) -> EnrichedEvent | None:
    try:
        return EnrichedEvent.model_validate(orjson.loads(value))
    except Exception:  # noqa: BLE001 - an event of another schema or garbage: left alone
        return None


async def retag(
    settings: Settings,
    tagger: Any,
    rules: Any,
    *,
    since: datetime | None = None,
    only_topic: str | None = None,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    redis: Any = None,
) -> RetagSummary:
    """Retag the history (see the module's docstring). ``redis``: the dedup store, whose
    seen-marks are moved to the new revision so a later change of the article's text
    continues the numbering."""
    from worker import kafka_io
    from worker.dedup import SeenMark

    names = settings.topic_names
    summary = RetagSummary()
    since_ms = int(since.timestamp() * 1000) if since is not None else None
    latest: dict[str, int] = {}
    async with kafka_io.topic_reader(settings, names.enriched, since_ms=since_ms) as reader:
        total = reader.remaining
        ends, starts = dict(reader.ends), dict(reader.starts)
        async for _tp, msgs in reader.batches():
            for m in msgs:
                ev = _event(m.value)
                summary.read += 1
                if ev is None:
                    summary.unreadable += 1
                    continue
                if ev.revision >= latest.get(ev.id, 0):
                    latest[ev.id] = ev.revision
    summary.articles = len(latest)
    done = 0
    t0 = last = time.monotonic()
    async with kafka_io.topic_reader(settings, names.enriched, starts=starts, ends=ends) as reader:
        async with kafka_io.producer(settings) as prod:
            async for _tp, msgs in reader.batches():
                pending = []
                for m in msgs:
                    done += 1
                    ev = _event(m.value)
                    if ev is None or latest.get(ev.id) != ev.revision:
                        continue
                    latest.pop(ev.id)  # the same revision twice (a redelivery): once
                    rev = revise(ev, tagger, rules, only_topic=only_topic)
                    if rev is None:
                        continue
                    summary.revised += 1
                    summary.alerts += len(rev.alerts)
                    summary.added.update(rev.added)
                    summary.removed.update(rev.removed)
                    summary.countries_changed += rev.countries_changed
                    if dry_run:
                        continue
                    key = ev.id.encode()
                    pending.append(await prod.send(names.enriched, rev.event.to_json(), key=key))
                    for a in rev.alerts:
                        pending.append(await prod.send(names.alert(a.topic), a.to_json(), key=key))
                    if redis is not None:
                        seen = await redis.get(ev.id)
                        if seen is not None and seen.fingerprint == ev.fingerprint:
                            await redis.mark(ev.id, SeenMark(ev.fingerprint, ev.revision + 1))
                for fut in pending:
                    await fut
                now = time.monotonic()
                if progress is not None and (now - last >= 2.0 or done == total):
                    last = now
                    progress(
                        f"retag: {done}/{total} events read, {summary.revised} revised "
                        f"({now - t0:.0f} s)"
                    )
    return summary


def print_summary(summary: RetagSummary, dry_run: bool) -> None:
    for line in summary.lines():
        print(line, file=sys.stderr)
    if dry_run:
        print("dry run: nothing was published", file=sys.stderr)
