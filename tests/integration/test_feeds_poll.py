"""Feed polling against real HTTP servers on loopback (serving the real snapshots in
tests/data/feeds/) and the session's real Redis (``redis_client`` from tests/conftest.py).

``publish`` is an in-memory sink: what these tests check is what the poller hands to it,
and what it keeps in Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from worker.events import RawRecord
from worker.settings import Settings
from worker.sources.feeds import (
    FeedConfig,
    FeedPoller,
    PollResult,
    adhoc_feed,
    feed_status,
    poll_once,
)
from worker.sources.feedstate import FeedState, FeedStateStore
from worker.sources.http import Fetcher

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
MAX_BYTES = 2_000_000
# node-feedparser's test feeds (tests/data/feeds/odd/README.md): entries per feed
ODD_FEEDS = {
    "wapowellness.xml": 29,
    "tpm.atom": 20,
    "tpm-with-empty-base.atom": 20,
    "tpm-with-fragment-base.atom": 20,
    "iconv.xml": 10,
    "saxerror.xml": 3,
}


def snapshot(name: str) -> bytes:
    return (DATA / f"{name}.xml").read_bytes()


def serve_odd(site: FeedSite, name: str) -> str:
    """An odd feed with no validators: every poll is a full 200, so only the seen entries
    can tell that nothing changed."""
    kind = "atom" if name.endswith(".atom") else "rss"
    body = (DATA / "odd" / name).read_bytes()
    return site.serve(f"/odd/{name}", body, content_type=f"application/{kind}+xml", etag=False)


def guids(body: bytes) -> list[str]:
    return [g.decode() for g in re.findall(rb"<guid[^>]*>(.*?)</guid>", body)]


def make_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "fetch_allow_networks": "127.0.0.0/8",
        "fetch_connect_timeout_s": 2.0,
        "fetch_read_timeout_s": 0.5,
        "fetch_max_bytes": MAX_BYTES,
        "fetch_max_redirects": 3,
        "poll_interval_s": 900.0,
        "poll_min_interval_s": 60.0,
        "poll_max_backoff_s": 3600.0,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


# --- a small feed server ----------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True  # send an ETag and answer If-None-Match with 304
    location: str | None = None
    delay_s: float = 0.0


@dataclass
class FeedSite:
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: TestServer | None = None

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def serve(self, path: str, body: bytes = b"", **kw: object) -> str:
        self.routes[path] = Route(body=body, **kw)  # type: ignore[arg-type]
        return self.url(path)

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path, dict(request.headers)))
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="no such feed")
        if route.delay_s:
            await asyncio.sleep(route.delay_s)
        headers = dict(route.headers)
        if route.location is not None:
            headers["Location"] = route.location
        if route.etag and route.status == 200:
            tag = '"' + hashlib.sha1(route.body).hexdigest()[:16] + '"'
            headers["ETag"] = tag
            if request.headers.get("If-None-Match") == tag:
                return web.Response(status=304, headers=headers)
        headers["Content-Type"] = route.content_type
        return web.Response(status=route.status, body=route.body, headers=headers)


@pytest_asyncio.fixture(loop_scope="function")
async def site() -> AsyncIterator[FeedSite]:
    s = FeedSite()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", s.handle)
    s.server = TestServer(app, host="127.0.0.1")
    await s.server.start_server()
    try:
        yield s
    finally:
        await s.server.close()


class Sink:
    """publish(): collects records; can be told to fail."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.records: list[RawRecord] = []
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.check: Callable[[RawRecord], object] | None = None

    async def __call__(self, record: RawRecord) -> None:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise ConnectionError("broker unavailable")
        if self.check is not None:
            result = self.check(record)
            if asyncio.iscoroutine(result):
                await result
        self.records.append(record)

    def ids(self) -> list[str]:
        return [r.entry.entry_id for r in self.records if r.entry is not None]

    def clear(self) -> None:
        self.records.clear()


@pytest_asyncio.fixture(loop_scope="function")
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(make_settings()) as f:
        yield f


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def poller(redis_client: aioredis.Redis, fetcher: Fetcher, sink: Sink) -> FeedPoller:
    return FeedPoller(make_settings(), redis_client, fetcher, sink)


async def state_of(redis_client: aioredis.Redis, name: str) -> FeedState:
    return await FeedStateStore(redis_client).load(name)


def delay_of(state: FeedState) -> float:
    assert state.next_poll_at is not None and state.last_poll_at is not None
    return state.next_poll_at - state.last_poll_at


# --- the normal flow ------------------------------------------------------------------------


async def test_first_poll_publishes_every_entry_and_records_state(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    body = snapshot("nyt_econ_20250419T1338")
    feed = FeedConfig(name="nyt", url=site.serve("/nyt.xml", body))
    store = FeedStateStore(redis_client)

    async def not_yet_seen(record: RawRecord) -> None:  # at-least-once: publish, then mark
        assert record.entry is not None
        assert not await redis_client.hexists(store.seen_key("nyt"), record.entry.entry_id)  # type: ignore[misc]

    sink.check = not_yet_seen
    before = time.time()
    result = await poller.poll(feed)

    assert (result.status, result.new, result.updated, result.error) == ("ok", 20, 0, None)
    assert sorted(sink.ids()) == sorted(guids(body))
    assert sink.ids()[0] == guids(body)[-1]  # oldest first
    rec = sink.records[-1]
    assert (
        rec.source.kind == "feed" and rec.source.name == "nyt" and rec.source.feed_url == feed.url
    )
    assert rec.entry is not None and rec.entry.revision == 1
    assert rec.entry.title == "The Trump Billionaires Who Run the Economy and the Things They Say"
    assert rec.entry.published_at == datetime(2025, 4, 19, 9, 1, 22, tzinfo=UTC)
    assert rec.url and rec.url.startswith("https://archive.is/newest/")
    assert rec.body is None  # no content:encoded: the enrichment agent fetches the page

    state = await state_of(redis_client, "nyt")
    assert state.etag and state.etag.startswith('"')
    assert state.last_status == "ok" and state.last_http_status == 200
    assert state.consecutive_errors == 0 and state.last_poll_at is not None
    assert state.last_poll_at >= before
    assert 810 <= delay_of(state) <= 990  # 900 s +- 10 %
    assert result.next_poll_at == datetime.fromtimestamp(state.next_poll_at or 0, UTC)
    assert await store.count_seen("nyt") == 20


async def test_an_unchanged_feed_costs_a_304_and_publishes_nothing(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    feed = FeedConfig(name="nyt", url=site.serve("/nyt.xml", snapshot("nyt_econ_20250419T1338")))
    await poller.poll(feed)
    etag = (await state_of(redis_client, "nyt")).etag
    sink.clear()

    result = await poller.poll(feed)
    assert (result.status, result.new, result.updated) == ("not-modified", 0, 0)
    assert sink.records == []
    assert site.hits("/nyt.xml")[-1]["If-None-Match"] == etag
    state = await state_of(redis_client, "nyt")
    assert state.last_status == "not-modified" and state.last_http_status == 304


@pytest.mark.parametrize("name", list(ODD_FEEDS))
async def test_a_second_poll_of_an_unchanged_odd_feed_publishes_nothing(
    site: FeedSite, poller: FeedPoller, sink: Sink, name: str
) -> None:
    feed = FeedConfig(name="odd", url=serve_odd(site, name))
    first = await poller.poll(feed)
    assert (first.status, first.new, len(sink.records)) == ("ok", ODD_FEEDS[name], ODD_FEEDS[name])
    sink.clear()

    second = await poller.poll(feed)
    assert (second.status, second.http_status, second.new, second.updated) == ("ok", 200, 0, 0)
    assert sink.records == []


async def test_adhoc_feeds_polled_again_in_another_order_publish_nothing(
    site: FeedSite, redis_client: aioredis.Redis, sink: Sink, tmp_path: Path
) -> None:
    # `poll URL...` twice, the URLs in another order or fewer of them: each feed keeps its
    # name, so its own seen entries (it used to be named by its place on the command line)
    settings = make_settings(feeds_file=tmp_path / "absent.yaml")
    urls = [serve_odd(site, name) for name in ODD_FEEDS]
    first = await poll_once(settings, urls, sink, redis_client)
    assert [(r.status, r.new) for r in first] == [("ok", n) for n in ODD_FEEDS.values()]
    sink.clear()

    for refs in (urls[::-1], urls[3:], urls[2:] + urls[:2]):
        results = await poll_once(settings, refs, sink, redis_client)
        assert [(r.status, r.new, r.updated) for r in results] == [("ok", 0, 0)] * len(refs)
        assert [r.feed for r in results] == [adhoc_feed(u).name for u in refs]
    assert sink.records == []


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("economist_20250509T1614", "economist_20250530T1615"),
        ("nyt_econ_20250419T1338", "nyt_econ_20250503T1220"),
        ("bloomberg_politics_20260818T1614", "bloomberg_politics_20260820T1640"),
    ],
)
async def test_a_later_snapshot_publishes_only_the_new_entries(
    site: FeedSite, poller: FeedPoller, sink: Sink, first: str, second: str
) -> None:
    feed = FeedConfig(name="f", url=site.serve("/f.xml", snapshot(first)))
    assert (await poller.poll(feed)).new == len(set(guids(snapshot(first))))
    sink.clear()

    site.serve("/f.xml", snapshot(second))
    result = await poller.poll(feed)
    expected = set(guids(snapshot(second))) - set(guids(snapshot(first)))
    assert result.status == "ok" and result.updated == 0
    assert result.new == len(expected) and set(sink.ids()) == expected
    if first.startswith("economist"):
        assert len(expected) == 21  # 79 entries carried over were not re-published


async def test_a_changed_entry_becomes_a_revision(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    body = snapshot("nyt_econ_20250419T1338")
    feed = FeedConfig(name="nyt", url=site.serve("/nyt.xml", body))
    await poller.poll(feed)
    sink.clear()
    old_title = b"The Trump Billionaires Who Run the Economy and the Things They Say"
    first_guid = guids(body)[0]

    site.serve("/nyt.xml", body.replace(old_title, old_title + b" (Updated)"))
    result = await poller.poll(feed)
    assert (result.status, result.new, result.updated) == ("ok", 0, 1)
    [rec] = sink.records
    assert rec.entry is not None and rec.entry.entry_id == first_guid
    assert rec.entry.revision == 2 and rec.entry.title and rec.entry.title.endswith("(Updated)")

    sink.clear()
    site.serve("/nyt.xml", body.replace(b"one Republican pollster said", b"a pollster said"))
    result = await poller.poll(feed)
    assert (result.new, result.updated) == (0, 1)
    assert sink.records[0].entry is not None and sink.records[0].entry.revision == 3
    seen = await FeedStateStore(redis_client).get_seen("nyt", [first_guid])
    assert seen[first_guid].revision == 3


async def test_full_content_feeds_carry_the_body(
    site: FeedSite, poller: FeedPoller, sink: Sink
) -> None:
    body = snapshot("theprint_discovery_20260818T1614")
    feed = FeedConfig(name="theprint", url=site.serve("/p.xml", body))
    assert (await poller.poll(feed)).new == 12
    with_body = [r for r in sink.records if r.body]
    assert with_body and len(with_body) < 12
    assert all(r.content_type == "html" and len(r.body or "") > 500 for r in with_body)
    assert all(r.body is None and r.content_type is None for r in sink.records if not r.body)


async def test_the_feeds_ttl_slows_polling_even_on_304(
    site: FeedSite, poller: FeedPoller, redis_client: aioredis.Redis
) -> None:
    feed = FeedConfig(
        name="bb", url=site.serve("/bb.xml", snapshot("bloomberg_politics_20260818T1614"))
    )
    await poller.poll(feed)  # <ttl>30</ttl>: 1800 s, more than the 900 s default
    assert 1620 <= delay_of(await state_of(redis_client, "bb")) <= 1980
    assert (await poller.poll(feed)).status == "not-modified"
    assert 1620 <= delay_of(await state_of(redis_client, "bb")) <= 1980


async def test_cache_control_raises_the_interval(
    site: FeedSite, poller: FeedPoller, redis_client: aioredis.Redis
) -> None:
    url = site.serve(
        "/cc.xml", snapshot("nyt_econ_20250419T1338"), headers={"Cache-Control": "max-age=2400"}
    )
    await poller.poll(FeedConfig(name="cc", url=url))
    assert 2160 <= delay_of(await state_of(redis_client, "cc")) <= 2640


# --- failures -------------------------------------------------------------------------------


async def test_server_errors_back_off_and_recover(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    feed = FeedConfig(name="flaky", url=site.serve("/flaky.xml", b"oops", status=500))
    delays = []
    for n in (1, 2, 3, 4):
        result = await poller.poll(feed)
        assert result.status == "error" and result.retriable is True
        assert result.reason == "http-500" and result.http_status == 500
        assert result.error == f"HTTP 500 from {feed.url}"
        state = await state_of(redis_client, "flaky")
        assert state.consecutive_errors == n and state.last_error == result.error
        assert state.last_status == "error"
        delays.append(delay_of(state))
    # 60, 120, 240, 480 s, each +- 10 %: growing
    for delay, base in zip(delays, (60, 120, 240, 480), strict=True):
        assert base * 0.9 <= delay <= base * 1.1
    assert sink.records == []

    site.serve("/flaky.xml", snapshot("nyt_econ_20250419T1338"))
    result = await poller.poll(feed)
    assert (result.status, result.new) == ("ok", 20)
    state = await state_of(redis_client, "flaky")
    assert state.consecutive_errors == 0 and state.last_status == "ok"
    assert 810 <= delay_of(state) <= 990


async def test_back_off_is_capped_and_never_stops(
    site: FeedSite, poller: FeedPoller, redis_client: aioredis.Redis
) -> None:
    feed = FeedConfig(name="down", url=site.serve("/down.xml", b"", status=502))
    for _ in range(12):
        await poller.poll(feed)
    state = await state_of(redis_client, "down")
    assert state.consecutive_errors == 12
    assert state.next_poll_at is not None  # still scheduled
    assert 3600 * 0.9 <= delay_of(state) <= 3600 * 1.1  # poll_max_backoff_s


async def test_a_timeout_is_a_retriable_error(
    site: FeedSite, poller: FeedPoller, redis_client: aioredis.Redis
) -> None:
    url = site.serve("/slow.xml", snapshot("nyt_econ_20250419T1338"), delay_s=1.5)
    result = await poller.poll(FeedConfig(name="slow", url=url))
    assert result.status == "error" and result.reason == "timeout" and result.retriable
    state = await state_of(redis_client, "slow")
    assert state.consecutive_errors == 1 and 54 <= delay_of(state) <= 66


async def test_retry_after_is_honoured(
    site: FeedSite, poller: FeedPoller, redis_client: aioredis.Redis
) -> None:
    url = site.serve("/busy.xml", b"slow down", status=429, headers={"Retry-After": "1800"})
    result = await poller.poll(FeedConfig(name="busy", url=url))
    assert result.status == "error" and "HTTP 429" in (result.error or "")
    assert delay_of(await state_of(redis_client, "busy")) >= 1800

    when = format_datetime(datetime.now(UTC) + timedelta(minutes=40), usegmt=True)
    url = site.serve("/maint.xml", b"", status=503, headers={"Retry-After": when})
    result = await poller.poll(FeedConfig(name="maint", url=url))
    assert result.reason == "http-503"
    assert 2390 <= delay_of(await state_of(redis_client, "maint")) <= 2401


async def test_bad_feeds_fail_clearly_while_the_others_flow(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    nyt = snapshot("nyt_econ_20250419T1338")
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b']><rss version="2.0"><channel><title>&c;</title><item><title>&c;</title>'
        b"<guid>1</guid></item></channel></rss>"
    )
    site.serve("/loop-a", location=site.url("/loop-b"), status=302)
    site.serve("/loop-b", location=site.url("/loop-a"), status=302)
    feeds = {
        "good": site.serve("/good.xml", nyt),
        "malformed": site.serve("/malformed.xml", nyt[:400]),
        "html": site.serve(
            "/page.html",
            (DATA / "pages" / "ars-1.html").read_bytes(),
            content_type="text/html; charset=utf-8",
        ),
        "empty": site.serve("/empty.xml", snapshot("economist_20250418T1227")),
        "huge": site.serve("/huge.xml", b"<rss>" + b" " * (MAX_BYTES + 10) + b"</rss>"),
        "loop": site.url("/loop-a"),
        "private": "http://10.0.0.1/feed.xml",
        "to-metadata": site.serve(
            "/meta", location="http://169.254.169.254/latest/meta-data/", status=302
        ),
        "laughs": site.serve("/laughs.xml", laughs),
        "gone": site.serve("/gone.xml", b"", status=410),
    }
    configs = [FeedConfig(name=name, url=url) for name, url in feeds.items()]
    results = {r.feed: r for r in await poller.poll_due(configs)}
    assert set(results) == set(feeds)

    assert (results["good"].status, results["good"].new) == ("ok", 20)
    assert len(sink.records) == 20 and {r.source.name for r in sink.records} == {"good"}
    assert (results["empty"].status, results["empty"].new, results["empty"].error) == (
        "ok",
        0,
        None,
    )

    expected = {
        "malformed": ("malformed", "malformed feed: "),
        "html": ("not-a-feed", "not a feed (got text/html page)"),
        "huge": ("too-large", f"over the {MAX_BYTES}-byte cap"),
        "loop": ("redirect-loop", "redirect loop"),
        "private": ("blocked-address", "refused to connect to 10.0.0.1: private address"),
        "to-metadata": ("blocked-address", "169.254.169.254: link-local address"),
        "laughs": ("unsafe-xml", "unsafe XML"),
        "gone": ("http-410", "HTTP 410"),
    }
    for name, (reason, text) in expected.items():
        r = results[name]
        assert r.status == "error" and r.reason == reason, (name, r)
        assert r.error and text in r.error, (name, r.error)
        assert r.retriable is False
        state = await state_of(redis_client, name)
        assert state.last_error == r.error and state.consecutive_errors == 1
        # a lasting failure is retried at the feed's own pace, not forgotten
        assert state.next_poll_at is not None and 810 <= delay_of(state) <= 990


async def test_a_permanent_redirect_is_followed_and_recorded(
    site: FeedSite, poller: FeedPoller, sink: Sink, redis_client: aioredis.Redis
) -> None:
    new_url = site.serve("/new.xml", snapshot("nyt_econ_20250419T1338"))
    feed = FeedConfig(name="moved", url=site.serve("/old.xml", status=301, location="/new.xml"))
    result = await poller.poll(feed)
    assert (result.status, result.new, result.url) == ("ok", 20, new_url)
    assert (await state_of(redis_client, "moved")).url == new_url

    assert (await poller.poll(feed)).status == "not-modified"
    assert len(site.hits("/old.xml")) == 1  # the second poll went straight to the new URL
    assert len(site.hits("/new.xml")) == 2
    assert all(r.source.feed_url == feed.url for r in sink.records)


async def test_state_survives_a_new_poller(
    site: FeedSite, redis_client: aioredis.Redis, sink: Sink
) -> None:
    body = snapshot("economist_20250509T1614")
    feed = FeedConfig(name="eco", url=site.serve("/eco.xml", body, etag=False))
    async with Fetcher(make_settings()) as f1:
        assert (await FeedPoller(make_settings(), redis_client, f1, sink).poll(feed)).new == 100

    # a restart (or a new leader): new fetcher, new poller, same Redis; the server sends
    # no validators, so the whole document is fetched and parsed again
    later = Sink()
    async with Fetcher(make_settings()) as f2:
        restarted = FeedPoller(make_settings(), redis_client, f2, later)
        assert await restarted.due_feeds([feed]) == []  # it knows the schedule
        result = await restarted.poll(feed)
    assert (result.status, result.new, result.updated) == ("ok", 0, 0)
    assert later.records == []


async def test_a_failed_publish_is_retried_by_the_next_poll(
    site: FeedSite, fetcher: Fetcher, redis_client: aioredis.Redis
) -> None:
    body = snapshot("nyt_econ_20250419T1338")
    feed = FeedConfig(name="nyt", url=site.serve("/nyt.xml", body))
    failing = Sink(fail_on_call=5)
    result = await FeedPoller(make_settings(), redis_client, fetcher, failing).poll(feed)
    assert result.status == "error" and result.reason == "publish" and result.retriable
    assert "broker unavailable" in (result.error or "")
    assert len(failing.records) == 4
    state = await state_of(redis_client, "nyt")
    assert state.etag is None  # not stored: the next poll must get the whole feed again
    assert await FeedStateStore(redis_client).count_seen("nyt") == 4

    working = Sink()
    result = await FeedPoller(make_settings(), redis_client, fetcher, working).poll(feed)
    assert (result.status, result.new) == ("ok", 16)
    assert sorted(failing.ids() + working.ids()) == sorted(guids(body))


async def test_poll_due_follows_the_schedule(
    site: FeedSite, poller: FeedPoller, sink: Sink
) -> None:
    feeds = [
        FeedConfig(name="a", url=site.serve("/a.xml", snapshot("nyt_econ_20250419T1338"))),
        FeedConfig(
            name="b", url=site.serve("/b.xml", snapshot("bloomberg_politics_20260818T1614"))
        ),
    ]
    assert {r.feed for r in await poller.poll_due(feeds)} == {"a", "b"}
    assert await poller.poll_due(feeds) == []  # nothing due yet
    later = time.time() + 2000
    assert [f.name for f in await poller.due_feeds(feeds, later)] == ["a", "b"]
    results = await poller.poll_due(feeds, now=later)
    assert {r.status for r in results} == {"not-modified"}
    assert len(sink.records) == 40


# --- the CLI helpers --------------------------------------------------------------------------


async def test_poll_once_and_feed_status(
    site: FeedSite, redis_client: aioredis.Redis, sink: Sink, tmp_path: Path
) -> None:
    nyt = site.serve("/nyt.xml", snapshot("nyt_econ_20250419T1338"))
    broken = site.serve("/broken.xml", b"", status=500)
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(
        f"feeds:\n  - {{name: nyt, url: '{nyt}', interval: 10m, labels: {{country: US}}}}\n"
        f"  - {{name: broken, url: '{broken}'}}\n"
    )
    settings = make_settings(feeds_file=feeds_file)
    lines: list[str] = []

    results = await poll_once(settings, [], sink, redis_client, lines.append)
    by_name = {r.feed: r for r in results}
    assert (by_name["nyt"].status, by_name["nyt"].new) == ("ok", 20)
    assert by_name["broken"].status == "error"
    # progress is short; the details are the results' own one-line summaries
    assert "nyt: done" in lines and "broken: failed" in lines
    assert by_name["nyt"].summary() == "nyt: ok, 20 new, 0 updated"
    assert by_name["broken"].summary() == f"broken: error: HTTP 500 from {broken}"
    assert any(line.startswith("polling nyt (") for line in lines)

    # once more, by name and an ad-hoc URL: polled now whatever the schedule says
    adhoc = site.serve("/eco.xml", snapshot("economist_20250418T1227"))
    results = await poll_once(settings, ["nyt", adhoc], sink, redis_client, None)
    name = adhoc_feed(adhoc).name  # "127.0.0.1-" and a digest of the URL
    assert [(r.feed, r.status) for r in results] == [("nyt", "not-modified"), (name, "ok")]

    rows = {row["name"]: row for row in await feed_status(settings, redis_client)}
    assert list(rows) == ["nyt", "broken", name]
    assert rows["nyt"]["last_status"] == "not-modified" and rows["nyt"]["labels"] == {
        "country": "US"
    }
    assert rows["nyt"]["entries_seen"] == 20 and rows["nyt"]["due"] is False
    assert rows["nyt"]["next_poll_at"] and rows["nyt"]["last_poll_at"]
    assert rows["broken"]["consecutive_errors"] == 1
    assert rows["broken"]["last_error"] == f"HTTP 500 from {broken}"
    assert rows[name]["configured"] is False and rows[name]["url"] == adhoc


async def test_poll_results_are_plain_values(site: FeedSite, poller: FeedPoller) -> None:
    url = site.serve("/nyt.xml", snapshot("nyt_econ_20250419T1338"))
    result = await poller.poll(FeedConfig(name="nyt", url=url))
    assert isinstance(result, PollResult) and result.ok
    assert result.next_poll_at is not None and result.next_poll_at.tzinfo is not None
    assert result.summary() == "nyt: ok, 20 new, 0 updated"


async def test_feed_fetches_are_counted_by_status_class(site: FeedSite, poller: FeedPoller) -> None:
    """diplomacy_http_fetches_total{kind="feed"}: a 200, then a 304 for the same document,
    a 404, a 503, and a timeout (no answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    from worker.metrics import Metrics

    m = Metrics()
    poller.metrics = m
    ok = FeedConfig(name="ok", url=site.serve("/ok.xml", snapshot("nyt_econ_20250419T1338")))
    await poller.poll(ok)
    await poller.poll(ok)  # unchanged: 304
    await poller.poll(FeedConfig(name="gone", url=site.url("/gone.xml")))
    await poller.poll(FeedConfig(name="busy", url=site.serve("/busy.xml", b"", status=503)))
    slow = site.serve("/slow.xml", b"", delay_s=1.5)
    await poller.poll(FeedConfig(name="slow", url=slow))
    counts = {
        s.labels["status_class"]: s.value
        for fam in text_string_to_metric_families(m.render().decode())
        for s in fam.samples
        if s.name == "diplomacy_http_fetches_total" and s.labels["kind"] == "feed"
    }
    assert counts == {"2xx": 1, "3xx": 1, "4xx": 1, "5xx": 1, "error": 1}
