"""``python -m worker retag`` against the real broker and Redis: after a tagger change it
publishes exactly the revisions whose topics or countries changed, and the alerts that newly
apply; a second run publishes nothing; ``--since`` and ``--topic`` narrow it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from worker.dedup import article_id, fingerprint
from worker.events import EnrichedEvent, Source
from worker.settings import Settings
from worker.tagging import Tagger

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
CORPUS = ROOT / "tests" / "data" / "corpus" / "corpus.jsonl"


def _articles(n: int) -> list[dict[str, Any]]:
    """Labelled paragraph items of the corpus (real event summaries), in file order."""
    rows = [json.loads(x) for x in CORPUS.read_text("utf-8").splitlines() if x]
    return [r for r in rows if r["shape"] == "paragraph"][:n]


def _event(tagger: Tagger, art: dict[str, Any], revision: int = 1) -> EnrichedEvent:
    res = tagger.tag(None, art["text"], None)
    url = f"https://example.org/{art['id']}"
    return EnrichedEvent(
        id=article_id(url, art["text"]),
        url=url,
        source=Source(kind="file", name="retag-test"),
        title=None,
        authors=[],
        published_at=None,
        site_name=None,
        language="en",
        text=art["text"],
        text_origin="file",
        topics=list(res.topics),
        countries=list(res.countries),
        fingerprint=fingerprint(art["text"]),
        revision=revision,
        ingested_at=datetime.now(UTC),
        pipeline_version="test",
        taxonomy_version=tagger.taxonomy_version,
        model_version=tagger.model_version,
    )


async def _publish(settings: Settings, events: list[tuple[EnrichedEvent, int | None]]) -> None:
    from worker import kafka_io

    names = settings.topic_names
    tagger = Tagger.from_config_dir(CONFIGS, model=False)
    await kafka_io.ensure_topics(settings, names.all(tagger.topics))
    async with kafka_io.producer(settings) as prod:
        futs = [
            await prod.send(names.enriched, ev.to_json(), key=ev.id.encode(), timestamp_ms=ts)
            for ev, ts in events
        ]
        for f in futs:
            await f


async def _read_all(settings: Settings, topic: str) -> list[dict[str, Any]]:
    from worker import kafka_io

    out = []
    async with kafka_io.topic_reader(settings, topic) as reader:
        async for _tp, msgs in reader.batches():
            out += [orjson.loads(m.value) for m in msgs]
    return out


def _enriched(settings: Settings) -> list[dict[str, Any]]:
    return asyncio.run(_read_all(settings, settings.topic_names.enriched))


def _retag(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "retag", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture
def setup(worker_env_factory: Any) -> tuple[dict[str, str], Settings]:
    w = worker_env_factory()
    settings = Settings(
        kafka_bootstrap_servers=w.bootstrap,
        topic_prefix=w.prefix,
        redis_url=w.env["WORKER_REDIS_URL"],
    )  # type: ignore[call-arg]
    return w.env, settings


def test_retag_publishes_exactly_the_changed_revisions_then_nothing(
    setup: tuple[dict[str, str], Settings],
) -> None:
    env, settings = setup
    old = Tagger.from_config_dir(CONFIGS, model=False)  # "before": the rules alone
    new = Tagger.from_config_dir(CONFIGS, model=True)  # "after": rules + model
    arts = _articles(60)
    events = [_event(old, a) for a in arts]
    # an article with two revisions on the topic: only the latest counts
    twice = _event(old, arts[0], revision=2)
    asyncio.run(_publish(settings, [(e, None) for e in events] + [(twice, None)]))

    def ids(ev: EnrichedEvent) -> tuple[set[str], list[str]]:
        res = new.tag(ev.title, ev.text, ev.published_at)
        return {t.id for t in res.topics}, sorted(res.countries)

    latest = {e.id: e for e in events} | {twice.id: twice}
    expected = {
        e.id for e in latest.values() if ids(e) != ({t.id for t in e.topics}, sorted(e.countries))
    }
    assert expected, "the model changes nothing on these items: a useless test"
    assert len(expected) < len(latest), "everything changes: the test cannot tell"

    first = _retag(env)
    assert first.returncode == 0, first.stderr
    assert f"{len(expected)} new revision(s)" in first.stderr, first.stderr
    enriched = _enriched(settings)
    # the events published here carry no model version; retag's carry the model's
    revised = [r for r in enriched if r["model_version"] == new.model_version]
    assert {r["id"] for r in revised} == expected
    assert len(revised) == len(expected)
    for r in revised:
        assert r["revision"] == latest[r["id"]].revision + 1
        assert r["model_version"] == new.model_version
        assert {t["id"] for t in r["topics"]} == ids(latest[r["id"]])[0]

    second = _retag(env)
    assert second.returncode == 0, second.stderr
    assert "0 new revision(s)" in second.stderr, second.stderr
    again = _enriched(settings)
    assert len(again) == len(enriched)


def test_retag_since_and_topic_narrow_it(setup: tuple[dict[str, str], Settings]) -> None:
    env, settings = setup
    old = Tagger.from_config_dir(CONFIGS, model=False)
    new = Tagger.from_config_dir(CONFIGS, model=True)
    arts = _articles(120)
    events = [_event(old, a) for a in arts]
    changed = [
        e
        for e in events
        if {t.id for t in new.tag(None, e.text, None).topics} != {t.id for t in e.topics}
    ]
    assert len(changed) >= 4
    early, late = changed[: len(changed) // 2], changed[len(changed) // 2 :]
    two_days_ago = int((time.time() - 2 * 86400) * 1000)
    asyncio.run(_publish(settings, [(e, two_days_ago) for e in early] + [(e, None) for e in late]))
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()

    dry = _retag(env, "--since", since, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{len(late)} event(s) read" in dry.stderr, dry.stderr
    assert "nothing was published" in dry.stderr
    assert len(_enriched(settings)) == len(changed)

    # one topic only: the articles whose tag for it changes, among the late ones
    topic = next(
        t
        for e in late
        for t in {x.id for x in new.tag(None, e.text, None).topics} - {x.id for x in e.topics}
    )
    want = {
        e.id
        for e in late
        if (topic in {t.id for t in e.topics})
        != (topic in {t.id for t in new.tag(None, e.text, None).topics})
    }
    run = _retag(env, "--since", since, "--topic", topic)
    assert run.returncode == 0, run.stderr
    revised = [r for r in _enriched(settings) if r["model_version"] == new.model_version]
    assert {r["id"] for r in revised} == want

    bad = _retag(env, "--topic", "no-such-topic")
    assert bad.returncode != 0 and "not a topic" in bad.stderr
