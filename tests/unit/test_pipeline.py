"""The pure pipeline with fake ports: outcomes, dedup, revisions, fallbacks, retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from worker import topics
from worker.clean import CleanDoc, EmptyContent
from worker.dedup import MemorySeenStore
from worker.events import (
    SCHEMA_VERSION,
    AlertEvent,
    DeadLetter,
    EnrichedEvent,
    Evidence,
    FeedEntry,
    RawRecord,
    Source,
    TopicTag,
)
from worker.pipeline import Enriched, Failed, Ports, Processor, Skipped, enrich

ROOT = Path(__file__).resolve().parents[2]

BODY = "Russia and the United States discussed arms control on Thursday. " * 5


class FakeExtractor:
    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls = 0

    async def clean_html(self, html: str, url: str | None) -> CleanDoc:
        self.calls += 1
        if self.fail:
            raise self.fail
        return CleanDoc(text=html, title="A title", site_name="Site", language="en")

    async def clean_text(self, text: str) -> CleanDoc:
        return await self.clean_html(text, None)


@dataclass
class FakeResult:
    topics: list[TopicTag]
    countries: list[str]


class FakeTagger:
    taxonomy_version = "test-1"
    model_version = "test-model-1"

    def runs_encoder(self, title, text):
        return len(text) < 200  # as a model with neighbours says of a short item

    def tag(self, title, text, published_at=None):
        start = text.find("arms control")
        tags = []
        if start >= 0:
            ev = Evidence(
                term="arms control",
                start=start,
                end=start + 12,
                sentence=text[: text.find(".") + 1],
            )
            tags.append(
                TopicTag(
                    id="arms-control",
                    label="Arms control",
                    score=0.9,
                    iptc="medtop:20000641",
                    evidence=[ev, ev],
                )
            )
        return FakeResult(tags, ["RU", "US"] if tags else [])


class AllRules:
    def alerting(self, result):
        return list(result.topics)

    def per_story(self, topic):
        return False


class FakeFetcher:
    def __init__(self, errors: list[Exception] | None = None, html: str = BODY) -> None:
        self.errors = list(errors or [])
        self.html = html
        self.calls = 0

    async def fetch_page(self, url: str) -> tuple[str, str]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.html, url


@dataclass
class ListSink:
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    fail_times: int = 0

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise ConnectionError("broker away")
        self.sent.append((topic, key, value))

    def on(self, topic: str) -> list[dict]:
        return [orjson.loads(v) for t, _, v in self.sent if t == topic]


class Retriable(Exception):
    retriable = True


class Permanent(Exception):
    retriable = False


def ports(**kw) -> Ports:
    base = dict(
        extractor=FakeExtractor(),
        tagger=FakeTagger(),
        alert_rules=AllRules(),
        seen=MemorySeenStore(),
        fetcher=FakeFetcher(),
    )
    base.update(kw)
    return Ports(**base)


def seed(body: str = BODY, **kw) -> RawRecord:
    return RawRecord(
        record_id="r1",
        source=Source(kind="seed", name="seeds"),
        path="a.txt",
        content_type="text",
        body=body,
        **kw,
    )


def feed_record(**entry_kw) -> RawRecord:
    entry = FeedEntry(
        entry_id="guid-1",
        title="Feed title",
        summary="<p>Feed summary about arms control.</p>",
        **entry_kw,
    )
    return RawRecord(
        record_id="f1",
        source=Source(kind="feed", name="f", feed_url="http://f/"),
        url="https://example.com/story?utm_source=rss",
        entry=entry,
    )


async def test_seed_record_becomes_enriched_event_with_alert():
    out = await enrich(seed(), ports())
    assert isinstance(out, Enriched)
    ev = out.event
    assert ev.text_origin == "file" and ev.title == "A title" and ev.countries == ["RU", "US"]
    assert [t.id for t in ev.topics] == ["arms-control"]
    assert ev.url is None and len(ev.id) == 32 and ev.taxonomy_version == "test-1"
    assert ev.model_version == "test-model-1"
    assert ev.ingested_at.tzinfo is not None
    [alert] = out.alerts
    assert alert.article_id == ev.id and alert.topic == "arms-control"
    assert alert.model_version == "test-model-1"
    assert alert.evidence == [ev.topics[0].evidence[0].sentence]  # de-duplicated sentences


async def test_same_text_twice_is_a_duplicate_after_delivery():
    p = ports()
    sink = ListSink()
    proc = Processor(p, sink)
    first = await proc.handle(seed())
    second = await proc.handle(seed().model_copy(update={"record_id": "r2"}))
    assert isinstance(first, Enriched)
    assert isinstance(second, Skipped) and second.reason == "duplicate"
    assert len(sink.on(topics.ENRICHED)) == 1
    assert len(sink.on(topics.alert_topic("arms-control"))) == 1
    assert proc.stats.as_dict()["skipped"] == {"duplicate": 1}


async def test_seen_mark_written_only_after_ack():
    seen = MemorySeenStore()
    sink = ListSink(fail_times=2)
    proc = Processor(ports(seen=seen), sink, backoff_s=0.001)
    out = await proc.handle(seed())
    assert isinstance(out, Enriched)
    # two refused publishes were retried; the mark exists and the event was sent once
    assert len(sink.on(topics.ENRICHED)) == 1
    assert await seen.get(out.event.id) is not None


async def test_changed_content_same_url_is_a_new_revision():
    p = ports()
    sink = ListSink()
    proc = Processor(p, sink)
    rec = seed().model_copy(update={"url": "https://example.com/a"})
    await proc.handle(rec)
    changed = rec.model_copy(update={"record_id": "r2", "body": BODY + " Updated."})
    out = await proc.handle(changed)
    assert isinstance(out, Enriched) and out.event.revision == 2
    ids = {e["id"] for e in sink.on(topics.ENRICHED)}
    assert len(ids) == 1  # same article, same key


async def test_feed_entry_without_body_fetches_the_page():
    fetcher = FakeFetcher()
    out = await enrich(feed_record(), ports(fetcher=fetcher))
    assert isinstance(out, Enriched)
    assert fetcher.calls == 1 and out.event.text_origin == "page"
    assert out.event.url == "https://example.com/story?utm_source=rss"


async def test_permanent_fetch_failure_falls_back_to_feed_text():
    out = await enrich(feed_record(), ports(fetcher=FakeFetcher([Permanent("404")])))
    assert isinstance(out, Enriched)
    assert out.event.text_origin == "feed"
    assert out.event.text == "Feed summary about arms control."
    assert out.event.title == "Feed title"


async def test_retriable_fetch_failure_is_retried_then_succeeds():
    fetcher = FakeFetcher([Retriable("timeout")])
    sink = ListSink()
    proc = Processor(ports(fetcher=fetcher), sink, backoff_s=0.001)
    out = await proc.handle(feed_record())
    assert isinstance(out, Enriched) and out.event.text_origin == "page"
    assert fetcher.calls == 2 and proc.stats.retries == 1


async def test_retriable_failure_without_fallback_ends_in_dead_letter():
    rec = RawRecord(record_id="x", source=Source(kind="feed", name="f"), url="https://e.com/a")
    sink = ListSink()
    fetcher = FakeFetcher([Retriable("t1"), Retriable("t2"), Retriable("t3")])
    proc = Processor(ports(fetcher=fetcher), sink, max_attempts=3, backoff_s=0.001)
    out = await proc.handle(rec)
    assert isinstance(out, Failed) and out.retriable
    [letter] = sink.on(topics.DLQ)
    DeadLetter.model_validate(letter)
    assert letter["stage"] == "fetch" and letter["attempts"] == 3
    assert letter["original"]["record_id"] == "x" and letter["error_class"] == "Retriable"
    assert sink.on(topics.ENRICHED) == []


async def test_empty_page_is_a_dead_letter_at_once():
    sink = ListSink()
    ext = FakeExtractor(fail=EmptyContent("nothing left"))
    proc = Processor(ports(extractor=ext), sink, backoff_s=0.001)
    out = await proc.handle(seed())
    assert isinstance(out, Failed) and out.stage == "clean" and not out.retriable
    assert ext.calls == 1  # a permanent failure is not retried
    assert sink.on(topics.DLQ)[0]["error_class"] == "EmptyContent"


async def test_a_short_item_is_tagged_off_the_event_loop():
    """The sentence encoder (tens of milliseconds) must not hold the loop: an item the tagger
    says runs it is tagged in a thread, a page on the loop itself."""
    import threading

    class Recording(FakeTagger):
        def __init__(self):
            self.threads = []

        def tag(self, title, text, published_at=None):
            self.threads.append(threading.current_thread().name)
            return super().tag(title, text, published_at)

    tagger = Recording()
    sink = ListSink()
    short = seed(body="Talks on arms control resume in Geneva.")
    out = await Processor(ports(tagger=tagger), sink).handle(short)
    assert isinstance(out, Enriched) and out.event.topics[0].id == "arms-control"
    long = seed()
    assert len(long.body) >= 200
    await Processor(ports(tagger=tagger), sink).handle(long)
    loop_thread = threading.current_thread().name
    assert tagger.threads[0] != loop_thread and tagger.threads[1] == loop_thread


def test_the_tagger_says_which_items_run_its_encoder() -> None:
    from worker.tagging import Tagger

    tagger = Tagger.from_config_dir(ROOT / "configs")
    assert tagger.runs_encoder("Minsk orders Lithuanian envoy out within 72 hours", "")
    assert tagger.runs_encoder("Envoy expelled", "Minsk gave him 72 hours. He left.")
    lead = " ".join(f"Sentence number {i} of a longer text." for i in range(6))
    assert not tagger.runs_encoder("A text of six sentences", lead)  # its lead, no neighbours
    page = " ".join(f"Sentence number {i} of a longer text." for i in range(12))
    assert not tagger.runs_encoder("A page", page)  # the rules' alone
    tagger.read_long_texts_by_windows()  # WORKER_TOPIC_MODEL_WINDOWS
    assert tagger.runs_encoder("A page", page)  # by windows, some of which the encoder reads
    rules = Tagger.from_config_dir(ROOT / "configs", model=False)
    assert not rules.runs_encoder("Minsk orders Lithuanian envoy out within 72 hours", "")


async def test_tagger_bug_becomes_dead_letter_not_crash():
    class Broken(FakeTagger):
        def tag(self, *a, **k):
            raise ValueError("boom")

    sink = ListSink()
    out = await Processor(ports(tagger=Broken()), sink).handle(seed())
    assert isinstance(out, Failed) and out.stage == "tag"
    assert sink.on(topics.DLQ)[0]["message"] == "boom"


async def test_dedup_store_down_still_publishes():
    class DownStore:
        async def get(self, aid):
            raise ConnectionError("redis away")

        async def mark(self, aid, mark):
            raise ConnectionError("redis away")

    sink = ListSink()
    proc = Processor(ports(seen=DownStore()), sink)
    out = await proc.handle(seed())
    assert isinstance(out, Enriched)
    assert len(sink.on(topics.ENRICHED)) == 1
    assert proc.redis_ok is False and proc.stats.dedup_errors == 1


async def test_undecodable_payload_is_dead_lettered():
    sink = ListSink()
    proc = Processor(ports(), sink)
    await proc.handle_undecodable(b"\xff not json", ValueError("bad"))
    [letter] = sink.on(topics.DLQ)
    assert letter["stage"] == "decode" and "not json" in letter["original"]["payload"]


async def test_record_with_nothing_to_enrich_is_dead_lettered():
    rec = RawRecord(record_id="n", source=Source(kind="feed", name="f"))
    out = await enrich(rec, ports(fetcher=None))
    assert isinstance(out, Failed) and out.stage == "source"


def test_event_models_roundtrip_and_reject_unknown_fields():
    ev = EnrichedEvent(
        id="a",
        url=None,
        source=Source(kind="seed", name="s"),
        title=None,
        authors=[],
        published_at=datetime(2020, 7, 25, 7, 45, tzinfo=UTC),
        site_name=None,
        language="en",
        text="t",
        text_origin="file",
        topics=[],
        countries=[],
        fingerprint="f",
        ingested_at=datetime.now(UTC),
        pipeline_version="0",
        taxonomy_version="1",
    )
    back = EnrichedEvent.from_json(ev.to_json())
    assert back == ev and back.schema_version == SCHEMA_VERSION == 2
    data = orjson.loads(ev.to_json())
    data["surprise"] = 1
    with pytest.raises(ValueError):
        EnrichedEvent.model_validate(data)
    with pytest.raises(ValueError):  # naive datetimes are refused: offsets are the contract
        AlertEvent(
            article_id="a",
            topic="t",
            label="l",
            score=1,
            title=None,
            url=None,
            published_at=datetime(2020, 1, 1),  # noqa: DTZ001 - naive on purpose
            source=Source(kind="seed", name="s"),
            countries=[],
            evidence=[],
            taxonomy_version="1",
        )


async def test_crashed_extractor_is_retried_not_dead_lettered():
    from worker.bootstrap import ExtractorCrashed

    class FlakyExtractor(FakeExtractor):
        async def clean_text(self, text):
            self.calls += 1
            if self.calls == 1:
                raise ExtractorCrashed("extraction process died")
            return CleanDoc(text=text, title="t")

    ext = FlakyExtractor()
    sink = ListSink()
    out = await Processor(ports(extractor=ext), sink, backoff_s=0.001).handle(seed())
    assert isinstance(out, Enriched) and ext.calls == 2
    assert sink.on(topics.DLQ) == []
