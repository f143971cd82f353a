"""A raw record in, an enriched event (plus alerts), a skip or a failure out.

Free of faust and Kafka: the service, the ``tag`` command and the unit tests
run this same code, each with its own ports (see :func:`worker.bootstrap`).

Delivery rule: the enriched event and its alerts are published and
acknowledged by the broker *before* the article is marked seen, so a crash in
between produces a duplicate (same key), never a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from worker import __version__
from worker.clean import CleanDoc, CleanError, EmptyContent
from worker.dedup import SeenMark, SeenStore, identify
from worker.events import (
    AlertEvent,
    DeadLetter,
    EnrichedEvent,
    RawRecord,
    StoryRef,
    TextOrigin,
    alert_for,
    utcnow,
)
from worker.stories import AlertDecision, Assignment, StoryIndex
from worker.topics import TopicNames

log = logging.getLogger(__name__)

PIPELINE_VERSION = __version__


# --- ports --------------------------------------------------------------------------


class Extractor(Protocol):
    """Runs the CPU-heavy cleaning off the event loop."""

    async def clean_html(self, html: str, url: str | None) -> CleanDoc: ...

    async def clean_text(self, text: str) -> CleanDoc: ...


class PageFetcher(Protocol):
    """Fetches an article page with the project's HTTP hygiene; returns decoded HTML."""

    async def fetch_page(self, url: str) -> tuple[str, str]:
        """-> (html, final_url). Raises an exception with a ``retriable`` attribute."""
        ...


class Sink(Protocol):
    """Publishes to Kafka; returns only after the broker acknowledged the message."""

    async def send(self, topic: str, key: bytes, value: bytes) -> None: ...


class TaggerPort(Protocol):
    taxonomy_version: str
    model_version: str | None

    def tag(self, title: str | None, text: str, published_at: datetime | None = None) -> Any: ...

    def runs_encoder(self, title: str | None, text: str) -> bool:
        """Whether tagging this item runs the sentence encoder (tens of milliseconds of
        numpy, which releases the GIL): the pipeline then tags in a thread, off the loop."""
        ...


class AlertRulesPort(Protocol):
    def alerting(self, result: Any) -> list[Any]: ...

    def per_story(self, topic: str) -> bool: ...


class Observer(Protocol):
    """Where stage timings and page fetches are counted (:class:`worker.metrics.Metrics`)."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def observe_fetch(self, kind: str, status: int | None) -> None: ...


@contextlib.contextmanager
def _timed(observer: Observer | None, stage: str) -> Iterator[None]:
    """Times the block (also when it raises) as ``stage``."""
    if observer is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        observer.observe_stage(stage, time.perf_counter() - started)


# --- outcomes -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enriched:
    event: EnrichedEvent
    alerts: list[AlertEvent]
    held: int = 0  # alerts not sent: a republished copy, or a story update adding nothing


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str  # "duplicate", ...
    article_id: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    stage: str
    error: BaseException
    retriable: bool

    @property
    def message(self) -> str:
        return str(self.error) or self.error.__class__.__name__


Outcome = Enriched | Skipped | Failed


@dataclass
class Ports:
    extractor: Extractor
    tagger: TaggerPort
    alert_rules: AlertRulesPort
    seen: SeenStore
    fetcher: PageFetcher | None = None
    stories: StoryIndex | None = None


class NoContent(Exception):
    """A record with no body, no URL and no feed text: nothing to enrich."""

    retriable = False


class NotFetched(Exception):
    retriable = False


def _is_retriable(exc: BaseException) -> bool:
    flag = getattr(exc, "retriable", None)
    if flag is not None:
        return bool(flag)
    return isinstance(exc, (TimeoutError, ConnectionError, OSError))


def _feed_text(raw: RawRecord) -> str:
    """The feed's own text for the entry (content, else summary), as plain text."""
    entry = raw.entry
    if entry is None:
        return ""
    html = entry.content or entry.summary or ""
    if not html.strip():
        return ""
    if "<" not in html:
        return html.strip()
    import lxml.html

    try:
        tree = lxml.html.fromstring(html)
    except Exception:  # noqa: BLE001 - malformed fragment: fall back to the raw string
        return html.strip()
    for br in tree.iter("br", "p", "div", "li"):
        br.tail = "\n" + (br.tail or "")
    return "\n".join(line.strip() for line in tree.text_content().splitlines() if line.strip())


class _LazyFeedText:
    """The feed's text for a record, computed on first use: the entry's HTML is parsed only
    when the page itself yields nothing (most records never need it)."""

    __slots__ = ("_raw", "_text")

    def __init__(self, raw: RawRecord) -> None:
        self._raw = raw
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = _feed_text(self._raw)
        return self._text

    def __bool__(self) -> bool:
        return bool(str(self))


# --- the pipeline -------------------------------------------------------------------


async def _fetch_page(fetcher: PageFetcher, url: str, observer: Observer | None) -> tuple[str, str]:
    """The page, timed as stage ``fetch`` and counted by how the server answered."""
    status: int | None = 200
    try:
        with _timed(observer, "fetch"):
            return await fetcher.fetch_page(url)
    except CleanError:  # it answered (2xx), but the body is not text
        raise
    except Exception as exc:
        status = getattr(exc, "status", None)  # an HTTP status, or none (timeout, refused)
        raise
    finally:
        if observer is not None:
            observer.observe_fetch("page", status)


async def _clean(
    raw: RawRecord, ports: Ports, last_attempt: bool, observer: Observer | None = None
) -> tuple[CleanDoc, TextOrigin] | Failed:
    """Pick the text source and clean it; feed text is the fallback for feed entries."""
    origin: TextOrigin
    feed_text = _LazyFeedText(raw)  # parsed only when it is needed: a fallback
    if raw.body is not None:
        origin = "file" if raw.source.kind in ("seed", "file") else "feed"
        if raw.entry is None and raw.source.kind == "feed":
            origin = "record"
        try:
            with _timed(observer, "clean"):
                if raw.content_type == "text":
                    return await ports.extractor.clean_text(raw.body), origin
                return await ports.extractor.clean_html(raw.body, raw.url), origin
        except CleanError as exc:
            if feed_text:
                return CleanDoc(text=str(feed_text)), "feed"
            return Failed("clean", exc, retriable=False)
        except Exception as exc:  # noqa: BLE001 - the extractor itself failed (pool died)
            return Failed("clean", exc, retriable=_is_retriable(exc))
    if raw.url and ports.fetcher is not None:
        try:
            html, final_url = await _fetch_page(ports.fetcher, raw.url, observer)
        except CleanError as exc:  # fetched, but not text (binary, undecodable, too large)
            if feed_text:
                return CleanDoc(text=str(feed_text)), "feed"
            return Failed("decode", exc, retriable=False)
        except Exception as exc:  # noqa: BLE001 - classified below
            if _is_retriable(exc) and not last_attempt:
                return Failed("fetch", exc, retriable=True)
            if feed_text:
                log.info(
                    "page not fetched, using the feed's text",
                    extra={"url": raw.url, "reason": str(exc)},
                )
                return CleanDoc(text=str(feed_text)), "feed"
            return Failed("fetch", exc, retriable=_is_retriable(exc))
        try:
            with _timed(observer, "clean"):
                return await ports.extractor.clean_html(html, final_url), "page"
        except CleanError as exc:
            if feed_text:
                return CleanDoc(text=str(feed_text)), "feed"
            return Failed("clean", exc, retriable=False)
        except Exception as exc:  # noqa: BLE001 - the extractor itself failed (pool died)
            return Failed("clean", exc, retriable=_is_retriable(exc))
    if feed_text:
        return CleanDoc(text=str(feed_text)), "feed"
    return Failed(
        "source",
        NoContent("record has no body, no fetchable URL and no feed text"),
        retriable=False,
    )


async def enrich(
    raw: RawRecord, ports: Ports, *, last_attempt: bool = True, observer: Observer | None = None
) -> Outcome:
    """Raw record -> outcome. Never raises for a bad record; returns :class:`Failed`.

    A retriable page-fetch failure is returned as such unless ``last_attempt``, when a
    feed entry falls back to the feed's own text instead. ``observer`` is told how long
    each stage took (fetch, clean, dedup, tag) and how each page fetch answered."""
    cleaned = await _clean(raw, ports, last_attempt, observer)
    if isinstance(cleaned, Failed):
        return cleaned
    doc, origin = cleaned
    if not doc.text.strip():
        return Failed("clean", EmptyContent("no text after cleaning"), retriable=False)

    entry = raw.entry
    url = raw.url or doc.url
    title = doc.title or (entry.title if entry else None)
    authors = doc.authors or (entry.authors if entry else [])
    published_at = doc.published_at or (entry.published_at if entry else None)
    aid, fp = identify(url, doc.text)

    try:
        with _timed(observer, "dedup"):
            seen = await ports.seen.get(aid)
    except Exception as exc:  # noqa: BLE001 - dedup is best effort: duplicates beat loss
        log.warning("dedup store unavailable, publishing without dedup: %s", exc)
        seen = None
    if seen is not None and seen.fingerprint == fp:
        return Skipped("duplicate", aid)
    revision = max(entry.revision if entry else 1, (seen.revision + 1) if seen else 1)

    def tag_and_alert() -> tuple[Any, list[Any]]:
        result = ports.tagger.tag(title, doc.text, published_at)
        return result, ports.alert_rules.alerting(result)

    try:
        with _timed(observer, "tag"):
            if ports.tagger.runs_encoder(title, doc.text):  # short item, page: ~2-45 ms
                result, alerting = await asyncio.to_thread(tag_and_alert)
            else:  # a 4-8 sentence text's lead: ~1 ms, less than a hop to a thread would cost
                result, alerting = tag_and_alert()
    except Exception as exc:  # noqa: BLE001 - a tagger bug must not lose the record
        return Failed("tag", exc, retriable=False)

    topic_ids = [t.id for t in result.topics]
    story = await _story(ports, aid, title, doc.text, result.countries, topic_ids, published_at)
    event = EnrichedEvent(
        id=aid,
        url=url,
        source=raw.source,
        title=title,
        authors=list(authors),
        published_at=published_at,
        site_name=doc.site_name,
        language=doc.language,
        text=doc.text,
        text_origin=origin,
        topics=list(result.topics),
        countries=list(result.countries),
        fingerprint=fp,
        revision=revision,
        ingested_at=utcnow(),
        pipeline_version=PIPELINE_VERSION,
        taxonomy_version=ports.tagger.taxonomy_version,
        model_version=ports.tagger.model_version,
        story=(
            StoryRef(
                id=story.story_id,
                size=story.size,
                first_seen=story.first_seen,
                opened=story.opened,
            )
            if story is not None
            else None
        ),
        duplicate_of=story.duplicate_of if story is not None else None,
    )
    if event.duplicate_of is not None:  # a republished copy never alerts
        return Enriched(event, [], held=len(alerting))
    alerts = []
    held = 0
    for t in alerting:
        decision = await _gate(ports, story, t, event)
        if decision is not None and decision.kind is None:
            held += 1
            log.info(
                "no %s alert for %s: story %s %s",
                t.id,
                aid,
                story.story_id if story else None,
                decision.reason,
            )
            continue
        alerts.append(
            alert_for(
                event,
                t,
                kind=_alert_kind(ports, t.id, decision),
                new_countries=list(decision.new_countries) if decision else [],
                new_topics=list(decision.new_topics) if decision else [],
                previous_score=decision.previous_score if decision else None,
            )
        )
    return Enriched(event, alerts, held=held)


async def _story(
    ports: Ports,
    aid: str,
    title: str | None,
    text: str,
    countries: list[str],
    topics: list[str],
    published_at: datetime | None,
) -> Assignment | None:
    """The article's story and duplicate status; None without a story store or while it is
    unavailable (the event goes out without a story: a duplicate page beats a loss)."""
    if ports.stories is None:
        return None
    try:
        return await ports.stories.assign(aid, title, text, countries, topics, published_at)
    except Exception as exc:  # noqa: BLE001 - stories are best effort, like dedup
        log.warning("story store unavailable, publishing %s without a story: %s", aid, exc)
        return None


async def _gate(
    ports: Ports, story: Assignment | None, tag: Any, event: EnrichedEvent
) -> AlertDecision | None:
    """For a per-story topic: first, update or nothing. None: the topic alerts per article,
    or the story is unknown (then the alert goes out as the story's first)."""
    if story is None or ports.stories is None or not ports.alert_rules.per_story(tag.id):
        return None
    try:
        return await ports.stories.gate_alert(
            story.story_id,
            tag.id,
            by=f"{event.id}:{event.revision}",
            countries=event.countries,
            topics=[t.id for t in event.topics],
            score=tag.score,
        )
    except Exception as exc:  # noqa: BLE001 - an alert too many beats a lost one
        log.warning("story alert state unavailable, alerting %s as first: %s", event.id, exc)
        return None


def _alert_kind(ports: Ports, topic: str, decision: AlertDecision | None) -> Any:
    if decision is not None and decision.kind is not None:
        return decision.kind
    return "first" if ports.alert_rules.per_story(topic) else "article"


def dead_letter(raw: RawRecord | dict[str, Any], failure: Failed, attempts: int) -> DeadLetter:
    original = raw.model_dump(mode="json") if isinstance(raw, RawRecord) else raw
    return DeadLetter(
        record_id=str(original.get("record_id") or "unknown"),
        stage=failure.stage,  # type: ignore[arg-type]
        error_class=failure.error.__class__.__name__,
        message=failure.message[:2000],
        retriable=failure.retriable,
        attempts=attempts,
        original=original,
    )


@dataclass
class Stats:
    """Counters for logs, health and the accounting checks: in = enriched + skipped + dlq."""

    received: int = 0
    enriched: int = 0
    alerts: int = 0
    alerts_held: int = 0
    duplicates_of: int = 0
    retries: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    dedup_errors: int = 0

    def as_dict(self) -> dict[str, Any]:
        handled = self.enriched + sum(self.skipped.values()) + sum(self.dead_letters.values())
        return {
            "received": self.received,
            "handled": handled,
            "in_flight": self.received - handled,
            "enriched": self.enriched,
            "alerts": self.alerts,
            "alerts_held": self.alerts_held,
            "duplicates_of": self.duplicates_of,
            "retries": self.retries,
            "skipped": dict(self.skipped),
            "dead_letters": dict(self.dead_letters),
            "dedup_errors": self.dedup_errors,
        }


class Processor:
    """Runs :func:`enrich` with bounded retries and delivers the outcome to the sink."""

    def __init__(
        self,
        ports: Ports,
        sink: Sink,
        *,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        publish_retry_cap_s: float = 30.0,
        names: TopicNames | None = None,
        metrics: Any = None,
    ) -> None:
        self.ports = ports
        self.metrics = metrics  # worker.metrics.Metrics, or None
        self.names = names or TopicNames()
        self.sink = sink
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.publish_retry_cap_s = publish_retry_cap_s
        self.stats = Stats()
        self.redis_ok = True

    async def handle(self, raw: RawRecord) -> Outcome:
        self.stats.received += 1
        m = self.metrics
        if m is not None:
            m.received.inc()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            outcome = await enrich(
                raw, self.ports, last_attempt=attempt >= self.max_attempts, observer=m
            )
            if isinstance(outcome, Failed) and outcome.retriable and attempt < self.max_attempts:
                self.stats.retries += 1
                if m is not None:
                    m.retries.inc()
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "retrying record %s after %s failure (%s), attempt %d/%d in %.1fs",
                    raw.record_id,
                    outcome.stage,
                    outcome.message,
                    attempt,
                    self.max_attempts,
                    delay,
                    extra={"record_id": raw.record_id, "stage": outcome.stage},
                )
                await asyncio.sleep(delay)
                continue
            break
        await self.deliver(raw, outcome, attempt + raw.attempt)
        if m is not None:
            m.record_seconds.observe(time.monotonic() - started)
        return outcome

    async def handle_undecodable(self, payload: bytes, error: Exception) -> None:
        """A message on articles.raw that is not a valid raw record."""
        self.stats.received += 1
        if self.metrics is not None:
            self.metrics.received.inc()
        original: dict[str, Any] = {"payload": payload[:65536].decode("utf-8", "replace")}
        failure = Failed("decode", error, retriable=False)
        await self.send_dead_letter(dead_letter(original, failure, 1))

    async def deliver(self, raw: RawRecord, outcome: Outcome, attempts: int) -> None:
        if isinstance(outcome, Skipped):
            self.stats.skipped[outcome.reason] += 1
            if self.metrics is not None:
                self.metrics.skipped.labels(outcome.reason).inc()
            log.info(
                "skipped record %s (%s) article=%s",
                raw.record_id,
                outcome.reason,
                outcome.article_id,
                extra={"record_id": raw.record_id, "article_id": outcome.article_id},
            )
            return
        if isinstance(outcome, Failed):
            await self.send_dead_letter(dead_letter(raw, outcome, attempts))
            return
        event = outcome.event
        key = event.id.encode()
        # the event and its alerts in flight together; all acknowledged before the mark
        with _timed(self.metrics, "publish"):
            await asyncio.gather(
                self._publish(self.names.enriched, key, event.to_json()),
                *(
                    self._publish(self.names.alert(a.topic), key, a.to_json())
                    for a in outcome.alerts
                ),
            )
        self.stats.enriched += 1
        self.stats.alerts += len(outcome.alerts)
        self.stats.alerts_held += outcome.held
        self.stats.duplicates_of += event.duplicate_of is not None
        if self.metrics is not None:
            self.metrics.enriched.inc()
            for a in outcome.alerts:
                self.metrics.alerts.labels(a.topic).inc()
            age = (utcnow() - raw.received_at).total_seconds()
            self.metrics.raw_to_enriched.observe(max(0.0, age))
        log.info(
            "enriched %s topics=%s countries=%s alerts=%s story=%s duplicate_of=%s title=%r",
            event.id,
            [t.id for t in event.topics],
            event.countries,
            [f"{a.topic}:{a.kind}" for a in outcome.alerts],
            event.story.id if event.story else None,
            event.duplicate_of,
            event.title,
            extra={"record_id": raw.record_id, "article_id": event.id},
        )
        try:
            await self.ports.seen.mark(event.id, SeenMark(event.fingerprint, event.revision))
            if not self.redis_ok:
                log.warning("dedup store is back")
            self.redis_ok = True
        except Exception as exc:  # noqa: BLE001 - a lost seen-mark means a duplicate later
            self.stats.dedup_errors += 1
            if self.redis_ok:
                log.error("dedup store unavailable; publishing without dedup: %s", exc)
            self.redis_ok = False

    async def send_dead_letter(self, letter: DeadLetter) -> None:
        with _timed(self.metrics, "publish"):
            await self._publish(self.names.dlq, letter.record_id.encode(), letter.to_json())
        self.stats.dead_letters[letter.stage] += 1
        if self.metrics is not None:
            self.metrics.dead_letters.labels(letter.stage, letter.error_class).inc()
        log.warning(
            "dead letter for record %s: stage=%s %s: %s",
            letter.record_id,
            letter.stage,
            letter.error_class,
            letter.message,
            extra={"record_id": letter.record_id, "stage": letter.stage},
        )

    async def _publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Publish and wait for the ack; while the broker is away, keep trying (capped
        back-off): the source offset is not committed until this returns."""
        delay = self.backoff_s or 0.1
        while True:
            try:
                await self.sink.send(topic, key, value)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every publish error is retried
                log.error(
                    "publish to %s failed (%s: %s); retrying in %.1fs",
                    topic,
                    exc.__class__.__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.publish_retry_cap_s)
