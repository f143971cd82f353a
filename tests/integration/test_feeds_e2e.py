"""Feeds end to end: a real worker process, the session's real Kafka and Redis, and a
real HTTP server on loopback (pytest-httpserver, bound to 127.0.0.1) serving real feed
snapshots (tests/data/feeds/) whose item links are rewritten to real saved pages
(tests/data/pages/) on the same server, to a path that 404s, or to private addresses the
fetch guard refuses (the harness allows only 127.0.0.0/8).

No CLI drives the worker here except in the `poll`/`feeds` test: the leader polls on its
own every WORKER_POLL_TICK_S (1 s in the harness). Outputs are read with kcat.
"""

from __future__ import annotations

import hashlib
import html
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from worker import clean
from worker.events import AlertEvent, DeadLetter, EnrichedEvent
from worker.sources.feeds import adhoc_feed

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
FEEDS = DATA / "feeds"
PAGES = DATA / "pages"
OLD = "nyt_econ_20250419T1338"  # no <ttl>: the schedule is ours
NEW = "nyt_econ_20250503T1220"  # a later snapshot of the same feed, no entry in common
FEED_NAME = "nyt-econ"
FEED_PATH = "/rss/economy.xml"
POLL_ENV = {"WORKER_POLL_INTERVAL_S": "2", "WORKER_POLL_MIN_INTERVAL_S": "1"}
BLOCKED_PRIVATE = "http://10.255.255.1/world/africa/story.html"
BLOCKED_METADATA = "http://169.254.169.254/latest/meta-data/"
ITEM_RE = re.compile(rb"<item>.*?</item>", re.DOTALL)


# --- the site -----------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int
    version: int


@dataclass
class Site:
    """One loopback HTTP server: the feed (swappable, with or without validators), pages."""

    server: HTTPServer
    feed_body: bytes = b""
    feed_version: int = 0
    validators: bool = True  # send ETag + Last-Modified, answer conditional GETs with 304
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.server.url_for(path)

    def serve_feed(self, body: bytes, *, validators: bool = True) -> None:
        with self.lock:
            self.feed_body = body
            self.feed_version += 1
            self.validators = validators

    def _feed(self, request: Request) -> Response:
        with self.lock:
            body, version, validators = self.feed_body, self.feed_version, self.validators
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        last_modified = "Sat, 19 Apr 2025 11:37:26 GMT"
        if validators and (
            request.headers.get("If-None-Match") == etag
            or request.headers.get("If-Modified-Since") == last_modified
        ):
            resp = Response(status=304, headers={"ETag": etag})
        else:
            headers = {"ETag": etag, "Last-Modified": last_modified} if validators else {}
            resp = Response(
                body, status=200, headers=headers, content_type="application/rss+xml; charset=utf-8"
            )
        self._log(request, resp.status_code, version)
        return resp

    def _static(
        self, body: bytes, content_type: str, status: int = 200
    ) -> Callable[[Request], Response]:
        def handler(request: Request) -> Response:
            self._log(request, status, 0)
            return Response(body, status=status, content_type=content_type)

        return handler

    def _log(self, request: Request, status: int, version: int) -> None:
        with self.lock:
            self.requests.append(Seen(request.path, dict(request.headers), status, version))

    def add_page(self, path: str, page: str) -> str:
        self.server.expect_request(path).respond_with_handler(
            self._static((PAGES / f"{page}.html").read_bytes(), "text/html")
        )
        return self.url(path)

    def add_404(self, path: str) -> str:
        self.server.expect_request(path).respond_with_handler(
            self._static(b"<html><body>Not Found</body></html>", "text/html", 404)
        )
        return self.url(path)

    def add_html(self, path: str, body: bytes) -> str:
        self.server.expect_request(path).respond_with_handler(
            self._static(body, "text/html; charset=utf-8")
        )
        return self.url(path)

    def feed_requests(self) -> list[Seen]:
        with self.lock:
            return [r for r in self.requests if r.path == FEED_PATH]

    def wait_feed_requests(
        self,
        pred: Callable[[list[Seen]], bool],
        timeout: float = 45,
        proc: Any = None,
        w: Any = None,
    ) -> list[Seen]:
        deadline = time.monotonic() + timeout
        seen: list[Seen] = []
        while time.monotonic() < deadline:
            seen = self.feed_requests()
            if pred(seen):
                return seen
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker died ({proc.returncode}):\n{w.log_tail(proc)}")
            time.sleep(0.2)
        detail = w.log_tail(proc) if proc is not None else ""
        pytest.fail(
            f"the feed server never saw the expected requests: "
            f"{[(r.status, r.version) for r in seen]}\n{detail}"
        )


def make_site() -> Site:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    site = Site(server)
    server.expect_request(FEED_PATH).respond_with_handler(site._feed)
    return site


@pytest.fixture
def site() -> Iterator[Site]:
    s = make_site()
    yield s
    s.server.clear()
    s.server.stop()


# --- feed documents -------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """An item taken from a real snapshot, its link rewritten."""

    guid: str
    title: str
    description: str | None
    link: str


def rewrite(
    snapshot: str, links: list[str | tuple[str, bool]], *, skip: int = 0
) -> tuple[bytes, list[Item]]:
    """The snapshot with its first items (after ``skip``) kept, one per link, each link
    replaced; ``(link, False)`` also drops the item's description (no feed text)."""
    doc = (FEEDS / f"{snapshot}.xml").read_bytes()
    found = ITEM_RE.findall(doc)[skip : skip + len(links)]
    assert len(found) == len(links)
    first, last = ITEM_RE.search(doc), list(ITEM_RE.finditer(doc))[-1]
    assert first is not None
    items: list[Item] = []
    kept: list[bytes] = []
    for raw, spec in zip(found, links, strict=True):
        link, with_text = (spec, True) if isinstance(spec, str) else spec
        raw = re.sub(
            rb"<link>.*?</link>",
            b"<link>" + html.escape(link).encode() + b"</link>",
            raw,
            count=1,
            flags=re.DOTALL,
        )
        if not with_text:
            raw = re.sub(rb"<description>.*?</description>", b"", raw, flags=re.DOTALL)
        kept.append(raw)
        desc = re.search(rb"<description>(.*?)</description>", raw, re.DOTALL)
        items.append(
            Item(
                guid=html.unescape(re.search(rb"<guid[^>]*>(.*?)</guid>", raw).group(1).decode()),
                title=html.unescape(re.search(rb"<title>(.*?)</title>", raw).group(1).decode()),
                description=html.unescape(desc.group(1).decode()).strip() if desc else None,
                link=link,
            )
        )
    body = doc[: first.start()] + b"".join(kept) + doc[last.end() :]
    return body, items


def feeds_file(tmp: Path, url: str) -> str:
    path = tmp / "feeds.e2e.yaml"
    path.write_text(f"feeds:\n  - name: {FEED_NAME}\n    url: {url}\n    labels: {{outlet: NYT}}\n")
    return str(path)


# --- reading the outputs ----------------------------------------------------------------------


def by_url(msgs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["value"]["url"]: m["value"] for m in msgs}


def distinct(msgs: list[dict[str, Any]]) -> set[str]:
    return {m["value"]["id"] for m in msgs}


def wait_accounted(
    w: Any, proc: Any, enriched: int, dead: int, timeout: float = 60
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Until ``enriched`` distinct articles and ``dead`` dead letters are on the topics."""
    deadline = time.monotonic() + timeout
    e: list[dict[str, Any]] = []
    d: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        e, d = w.kcat("articles.enriched"), w.kcat("articles.dlq")
        if len(distinct(e)) >= enriched and len(d) >= dead:
            return e, d
        if proc.poll() is not None:
            pytest.fail(f"worker died ({proc.returncode}):\n{w.log_tail(proc)}")
        time.sleep(0.5)
    pytest.fail(
        f"{len(distinct(e))} enriched / {len(d)} dead letters, expected "
        f"{enriched} / {dead}\n{w.log_tail(proc)}"
    )


def feed_state(redis_url: str, w: Any, name: str = FEED_NAME) -> dict[str, str]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return client.hgetall(f"{w.prefix}feed:{name}")
    finally:
        client.close()


def expected_page_text(page: str, url: str) -> str:
    return clean.clean_html(clean.decode_bytes((PAGES / f"{page}.html").read_bytes()), url).text


# --- 1 + 2: the leader polls on its own --------------------------------------------------------

PAGES_SERVED = ["nytimes-1", "wapo-2", "telegraph", "cnn"]


@pytest.fixture(scope="class")
def polled(kafka_bootstrap, redis_url, tmp_path_factory):
    """A worker whose feeds.yaml lists one served feed: 4 items linking to real pages, one
    to a 404 (feed text kept), one to a refused private address (feed text kept), one to
    the metadata address with no feed text, one to a 404 with no feed text."""
    from tests.integration.conftest import make_worker_env

    s = make_site()
    tmp = tmp_path_factory.mktemp("feeds-e2e")
    links: list[str | tuple[str, bool]] = [
        s.add_page(f"/2025/04/{i}/{p}.html", p) for i, p in enumerate(PAGES_SERVED)
    ]
    links += [
        s.add_404("/2025/04/gone.html"),
        BLOCKED_PRIVATE,
        (BLOCKED_METADATA, False),
        (s.add_404("/2025/04/gone-too.html"), False),
    ]
    body, items = rewrite(OLD, links)
    s.serve_feed(body)
    w = make_worker_env(
        kafka_bootstrap,
        redis_url,
        tmp,
        WORKER_FEEDS_FILE=feeds_file(tmp, s.url(FEED_PATH)),
        **POLL_ENV,
    )
    proc = w.start_worker()
    try:
        yield s, w, proc, items
    finally:
        w.stop(proc)
        s.server.clear()
        s.server.stop()


class TestLeaderPolling:
    """One worker for both tests (torn down after them), polling on its own."""

    def test_entries_become_enriched_page_text_alerts_and_dead_letters(self, polled):
        check_first_poll(polled)

    def test_unchanged_feed_polled_again_with_validators_publishes_nothing(self, polled, redis_url):
        check_conditional_polls(polled, redis_url)


def check_first_poll(polled: Any) -> None:
    s, w, proc, items = polled
    pages, gone, private, metadata, gone_bare = items[:4], items[4], items[5], items[6], items[7]
    enriched, dlq = wait_accounted(w, proc, enriched=6, dead=2)

    # every entry became one raw record, and is accounted for exactly once
    raw = w.kcat("articles.raw")
    assert sorted(m["value"]["entry"]["entry_id"] for m in raw) == sorted(i.guid for i in items)
    stats = w.wait_stats(lambda st: st["handled"] >= len(items))
    assert stats["received"] == len(items) == 8
    assert stats["enriched"] == 6 and stats["dead_letters"] == {"fetch": 2}
    assert len(distinct(enriched)) + len(dlq) == len(items)
    assert len(enriched) == 6 and len({m["value"]["record_id"] for m in dlq}) == 2

    events = by_url(enriched)
    assert set(events) == {i.link for i in items[:6]}
    for m in enriched:
        EnrichedEvent.model_validate(m["value"])
        assert m["key"] == m["value"]["id"]
        assert m["value"]["source"] == {
            "kind": "feed",
            "name": FEED_NAME,
            "feed_url": s.url(FEED_PATH),
        }
        assert m["value"]["revision"] == 1

    # the linked pages were fetched and cleaned: the full page text, not the feed's blurb
    for item, page in zip(pages, PAGES_SERVED, strict=True):
        ev = events[item.link]
        assert ev["text_origin"] == "page", (page, ev["text_origin"])
        assert ev["text"] == expected_page_text(page, item.link)
        assert len(ev["text"]) > 5 * len(item.description or "")
    sudan = events[pages[0].link]
    assert sudan["title"] == "United States to Lift Sudan Sanctions"
    assert sudan["text"].startswith("LONDON — After nearly 20 years of hostile relations")
    assert {"sanctions", "diplomatic-relations"} <= {t["id"] for t in sudan["topics"]}
    assert {"US", "SD"} <= set(sudan["countries"])

    # a 404 and a refused private address fall back to the feed's own text
    for item in (gone, private):
        ev = events[item.link]
        assert ev["text_origin"] == "feed" and ev["text"] == item.description
        assert ev["title"] == item.title

    # no feed text to fall back on: a dead letter at the fetch stage, with the reason
    letters = {d["value"]["original"]["url"]: d["value"] for d in dlq}
    assert set(letters) == {metadata.link, gone_bare.link}
    for d in letters.values():
        DeadLetter.model_validate(d)
        assert d["stage"] == "fetch" and d["retriable"] is False and d["attempts"] == 1
        assert d["original"]["source"]["name"] == FEED_NAME
    blocked = letters[metadata.link]
    assert blocked["error_class"] == "BlockedAddress"
    assert "169.254.169.254" in blocked["message"] and "link-local" in blocked["message"]
    assert blocked["original"]["entry"]["entry_id"] == metadata.guid
    missing = letters[gone_bare.link]
    assert missing["error_class"] == "HTTPStatusError" and "HTTP 404" in missing["message"]

    # nothing was requested from the refused addresses (the guard stops before connecting);
    # each served page was fetched once
    page_hits = [r.path for r in s.requests if r.path != FEED_PATH]
    assert sorted(page_hits) == sorted(
        [f"/2025/04/{i}/{p}.html" for i, p in enumerate(PAGES_SERVED)]
        + ["/2025/04/gone.html", "/2025/04/gone-too.html"]
    )

    # alerts: one per alerting topic of each article, keyed by the article id
    cache: dict[str, list[dict[str, Any]]] = {}

    def alerts(topic: str) -> list[dict[str, Any]]:
        if topic not in cache:
            cache[topic] = w.kcat(f"alerts.{topic}")
        return cache[topic]

    w.wait_for("alerts.sanctions", 1, timeout=30, proc=proc)
    for ev in events.values():
        for t in ev["topics"]:
            mine = [a for a in alerts(t["id"]) if a["value"]["article_id"] == ev["id"]]
            if t["id"] == "arms-control" and not {"RU", "US", "CN"} & set(ev["countries"]):
                assert mine == []  # the scoped rule in configs/alerts.yaml
                continue
            assert len(mine) == 1, (ev["url"], t["id"])
            AlertEvent.model_validate(mine[0]["value"])
            assert mine[0]["key"] == ev["id"]
    sanction = [a["value"] for a in alerts("sanctions") if a["value"]["article_id"] == sudan["id"]]
    assert len(sanction) == 1
    a = sanction[0]
    assert a["topic"] == "sanctions" and a["title"] == sudan["title"]
    assert a["url"] == pages[0].link and a["source"]["kind"] == "feed"
    assert a["evidence"] and any("sanction" in e.lower() for e in a["evidence"])
    assert proc.poll() is None


def check_conditional_polls(polled: Any, redis_url: str) -> None:
    s, w, proc, items = polled
    wait_accounted(w, proc, enriched=6, dead=2)
    # the leader keeps polling on its schedule (2 s here): wait for two conditional polls
    seen = s.wait_feed_requests(lambda rs: sum(r.status == 304 for r in rs) >= 2, proc=proc, w=w)
    first = seen[0]
    assert first.status == 200
    assert "If-None-Match" not in first.headers and "If-Modified-Since" not in first.headers
    assert first.headers["User-Agent"].startswith("diplomacy-ingest-worker/")
    assert "gzip" in first.headers["Accept-Encoding"]
    etag = '"' + hashlib.sha1(s.feed_body).hexdigest()[:16] + '"'
    for r in seen[1:]:
        assert r.status == 304
        assert r.headers.get("If-None-Match") == etag
        assert r.headers.get("If-Modified-Since") == "Sat, 19 Apr 2025 11:37:26 GMT"
    # a 304 is only answered after the previous poll finished: every publish is in
    assert len(w.kcat("articles.raw")) == len(items)
    state = feed_state(redis_url, w)
    assert state["etag"] == etag and state["last_status"] == "not-modified"
    assert state["last_http_status"] == "304" and state["consecutive_errors"] == "0"
    assert float(state["next_poll_at"]) > float(state["last_poll_at"])
    stats = w.wait_stats(lambda st: st["handled"] >= len(items))
    assert stats["received"] == len(items) and stats["enriched"] == 6
    e = w.kcat("articles.enriched")
    assert len(e) == 6 and len(distinct(e)) == 6
    assert len(w.kcat("articles.dlq")) == 2


# --- 3: state survives a restart ---------------------------------------------------------------


def test_feed_state_survives_restart_then_only_new_entries_arrive(
    site, worker_env_factory, tmp_path, redis_url
):
    old_links = [site.add_page(f"/old/{p}.html", p) for p in ("nytimes-1", "wapo-1", "bbc-1")]
    body_a, old = rewrite(OLD, old_links)
    # no validators: every poll parses the document, so only the seen-entry state in
    # Redis (not a 304) stands between an old entry and its re-publication
    site.serve_feed(body_a, validators=False)
    w = worker_env_factory(WORKER_FEEDS_FILE=feeds_file(tmp_path, site.url(FEED_PATH)), **POLL_ENV)
    proc = w.start_worker("first")
    enriched, _ = wait_accounted(w, proc, enriched=3, dead=0)
    assert {e["value"]["text_origin"] for e in enriched} == {"page"}
    # a second poll of the same document published nothing
    site.wait_feed_requests(lambda rs: len(rs) >= 2, proc=proc, w=w)

    assert w.stop(proc, signal.SIGTERM, timeout=45) == 0, w.log_tail(proc)
    stopped_at = time.time()
    # (kcat reads partition by partition: compare sets of ids, never list positions)
    raw_ids = {m["value"]["record_id"] for m in w.kcat("articles.raw")}
    raw_before = len(raw_ids)
    enriched_ids = distinct(w.kcat("articles.enriched"))
    enriched_before = len(w.kcat("articles.enriched"))
    assert raw_before == 3 and len(enriched_ids) == 3
    n_requests = len(site.feed_requests())

    proc2 = w.start_worker("second")
    # two polls by the new leader: the first one finished before the second was sent
    site.wait_feed_requests(lambda rs: len(rs) >= n_requests + 2, proc=proc2, w=w)
    state = feed_state(redis_url, w)
    assert float(state["last_poll_at"]) > stopped_at
    assert state["last_status"] == "ok" and state["last_http_status"] == "200"
    assert "etag" not in state
    assert len(w.kcat("articles.raw")) == raw_before  # no re-publication
    assert len(w.kcat("articles.enriched")) == enriched_before
    listed = w.cli("feeds", check=True)
    assert FEED_NAME in listed.stdout and " ok " in listed.stdout

    # a later snapshot: 2 new entries on top of the old ones, as a live feed rolls
    new_links = [site.add_page(f"/new/{p}.html", p) for p in ("telegraph", "wapo-2")]
    body_new, new = rewrite(NEW, new_links)
    body_b = body_new.replace(
        b"</item></channel>", b"</item>" + b"".join(ITEM_RE.findall(body_a)) + b"</channel>", 1
    )
    assert len(ITEM_RE.findall(body_b)) == 5
    site.serve_feed(body_b, validators=False)
    version = site.feed_version
    # the first poll of the new document, and one more after it
    site.wait_feed_requests(lambda rs: sum(r.version == version for r in rs) >= 2, proc=proc2, w=w)
    raw = w.kcat("articles.raw")
    assert len(raw) == raw_before + 2
    assert {
        m["value"]["entry"]["entry_id"] for m in raw if m["value"]["record_id"] not in raw_ids
    } == {i.guid for i in new}
    enriched, _ = wait_accounted(w, proc2, enriched=5, dead=0)
    assert len(enriched) == enriched_before + 2
    fresh = by_url([m for m in enriched if m["value"]["id"] not in enriched_ids])
    assert set(fresh) == {i.link for i in new}
    assert {e["text_origin"] for e in fresh.values()} == {"page"}
    assert {e["revision"] for e in fresh.values()} == {1}
    assert feed_state(redis_url, w)["consecutive_errors"] == "0"
    assert proc2.poll() is None


# --- 3b: Redis goes away while feeds are configured (issue 9, failure 1) --------------------------


def test_redis_outage_with_feeds_configured_never_stops_the_worker(
    site, worker_env_factory, services, tmp_path
):
    """The failure as reported: with feeds configured, the leader's next poll tick raised
    redis.ConnectionError out of the faust timer and the worker exited. Now: Redis dead for
    several poll ticks, the worker keeps running and publishing, pauses polling once, and
    polls again by itself when Redis is back."""
    links = [site.add_page(f"/a/{p}.html", p) for p in ("nytimes-1", "wapo-1")]
    body_a, _ = rewrite(OLD, links)
    site.serve_feed(body_a, validators=False)
    w = worker_env_factory(WORKER_FEEDS_FILE=feeds_file(tmp_path, site.url(FEED_PATH)), **POLL_ENV)
    proc = w.start_worker()
    wait_accounted(w, proc, enriched=2, dead=0)

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ROOT / "seeds" / "000_f06541f7bef2d985.txt", seeds)
    services.stop_redis()
    try:
        time.sleep(8)  # eight poll ticks (WORKER_POLL_TICK_S=1) with the feed state gone
        assert proc.poll() is None, w.log_tail(proc)
        w.cli("replay", "-q", str(seeds), check=True)  # records still flow meanwhile
        wait_accounted(w, proc, enriched=3, dead=0)
        # a new document while Redis is down: not polled until the state store is back
        new_links = [site.add_page(f"/b/{p}.html", p) for p in ("telegraph", "wapo-2")]
        body_b, new = rewrite(NEW, new_links)
        site.serve_feed(body_b, validators=False)
        version = site.feed_version
        time.sleep(3)
        assert proc.poll() is None, w.log_tail(proc)
        assert not any(r.version == version for r in site.feed_requests())
    finally:
        services.start_redis()

    site.wait_feed_requests(lambda rs: any(r.version == version for r in rs), proc=proc, w=w)
    enriched, _ = wait_accounted(w, proc, enriched=5, dead=0)
    assert {i.link for i in new} <= {m["value"]["url"] for m in enriched}
    log = w.log_tail(proc, 2000)
    assert log.count("feed polling paused") == 1, log
    assert log.count("feed polling resumed") == 1, log
    assert "Traceback" not in log and proc.poll() is None


def test_broker_gone_for_a_minute_with_feeds_configured_never_stops_the_worker(
    site, worker_env_factory, services, tmp_path
):
    """Issue 9's second outage: the broker gone for a minute while the leader polls feeds.
    The worker never exits; a new feed document published meanwhile is enriched after the
    broker is back, and nothing accepted is lost."""
    links = [site.add_page(f"/a/{p}.html", p) for p in ("nytimes-1", "wapo-1")]
    body_a, _ = rewrite(OLD, links)
    site.serve_feed(body_a, validators=False)
    w = worker_env_factory(WORKER_FEEDS_FILE=feeds_file(tmp_path, site.url(FEED_PATH)), **POLL_ENV)
    proc = w.start_worker()
    wait_accounted(w, proc, enriched=2, dead=0)

    services.stop_kafka()
    try:
        # a new document while the broker is away: its entries cannot be published yet
        new_links = [site.add_page(f"/b/{p}.html", p) for p in ("telegraph", "wapo-2")]
        body_b, new = rewrite(NEW, new_links)
        site.serve_feed(body_b, validators=False)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, w.log_tail(proc)
            time.sleep(2)
    finally:
        services.start_kafka()

    enriched, _ = wait_accounted(w, proc, enriched=4, dead=0, timeout=240)
    assert {i.link for i in new} <= {m["value"]["url"] for m in enriched}
    assert proc.poll() is None, w.log_tail(proc)
    assert "We experienced a crash" not in w.log_tail(proc, 5000)


# --- 4: the poll and feeds commands ------------------------------------------------------------


def test_poll_and_feeds_commands(site, worker_env_factory, tmp_path):
    links = [site.add_page(f"/p/{i}/{p}.html", p) for i, p in enumerate(PAGES_SERVED)]
    body, items = rewrite(OLD, links + [BLOCKED_PRIVATE])
    site.serve_feed(body)
    feed_url = site.url(FEED_PATH)
    w = worker_env_factory(WORKER_FEEDS_FILE=feeds_file(tmp_path, feed_url))

    res = w.cli("poll", feed_url)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.splitlines() == [f"{FEED_NAME}: ok, {len(items)} new, 0 updated"]
    assert f"polling {FEED_NAME} ({feed_url})" in res.stderr
    assert "polled 1 feed(s): 1 ok, 0 failed" in res.stderr
    raw = w.kcat("articles.raw")
    assert sorted(m["value"]["entry"]["entry_id"] for m in raw) == sorted(i.guid for i in items)
    assert {m["value"]["source"]["name"] for m in raw} == {FEED_NAME}
    assert {m["value"]["url"] for m in raw} == {i.link for i in items}

    again = w.cli("poll", FEED_NAME)  # by name: the same feed, now answered with a 304
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines() == [f"{FEED_NAME}: not modified"]
    assert site.feed_requests()[-1].status == 304
    assert len(w.kcat("articles.raw")) == len(items)

    not_feed = site.add_html("/news/front.html", (FEEDS / "pages" / "ars-1.html").read_bytes())
    name = adhoc_feed(not_feed).name  # "127.0.0.1-" and a digest of the URL
    bad = w.cli("poll", not_feed)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [f"FAILED {name}: error: not a feed (got text/html page)"]
    assert "Traceback" not in bad.stderr and "Traceback" not in bad.stdout
    # reported once (it was a warning, an error line and the FAILED line)
    assert (bad.stdout + bad.stderr).count("not a feed (got text/html page)") == 1
    assert f"{name}: failed" in bad.stderr
    assert "polled 1 feed(s): 0 ok, 1 failed" in bad.stderr
    assert len(w.kcat("articles.raw")) == len(items)

    listed = w.cli("feeds")
    assert listed.returncode == 0, listed.stderr[-3000:]
    lines = listed.stdout.splitlines()
    mine = [ln for ln in lines if ln.startswith(FEED_NAME + " ")]
    assert len(mine) == 1
    row = mine[0]
    assert "not-modified" in row and "errors=0" in row and feed_url in row
    assert "last=20" in row and "next=20" in row
    adhoc = [i for i, ln in enumerate(lines) if ln.startswith(name + " ")]
    assert len(adhoc) == 1
    assert "error" in lines[adhoc[0]] and "errors=1" in lines[adhoc[0]]
    assert not_feed in lines[adhoc[0]]
    assert lines[adhoc[0] + 1].strip() == "last error: not a feed (got text/html page)"
    assert "Traceback" not in listed.stderr
