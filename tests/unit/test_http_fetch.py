"""The safe fetcher against a real HTTP server on loopback (aiohttp's test server).

No mocks: every case is a real request over a real socket; the server's handlers count
what actually reached them.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import socket
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from worker.settings import Settings
from worker.sources.http import (
    ACCEPT_FEED,
    BlockedAddress,
    ConnectError,
    Fetcher,
    FetchError,
    FetchTimeout,
    GuardedResolver,
    HTTPStatusError,
    InvalidURL,
    TooLarge,
    TooManyRedirects,
    UnsupportedScheme,
    address_problem,
    parse_retry_after,
    safe_url,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
FEED = (DATA / "nyt_econ_20250419T1338.xml").read_bytes()
CAP = 1_000_000


def make_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "fetch_allow_networks": "127.0.0.0/8",
        "fetch_connect_timeout_s": 2.0,
        "fetch_read_timeout_s": 0.5,
        "fetch_max_bytes": CAP,
        "fetch_max_redirects": 3,
        "fetch_per_host": 2,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


@dataclass
class Site:
    server: TestServer = field(init=False)
    hits: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    endless_sent: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def total_hits(self) -> int:
        return sum(self.hits.values())


def build_app(site: Site) -> web.Application:
    routes = web.RouteTableDef()
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        site.hits[request.path] = site.hits.get(request.path, 0) + 1
        return await handler(request)

    @routes.get("/feed.xml")
    async def feed(request: web.Request) -> web.StreamResponse:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(
            body=FEED,
            headers={"ETag": '"v1"', "Last-Modified": "Sat, 19 Apr 2025 11:37:26 GMT"},
            content_type="application/rss+xml",
            charset="utf-8",
        )

    @routes.get("/echo")
    async def echo(request: web.Request) -> web.StreamResponse:
        return web.json_response(dict(request.headers))

    @routes.get("/gzip.xml")
    async def gz(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(FEED), headers={"Content-Encoding": "gzip"}, content_type="text/xml"
        )

    @routes.get("/deflate.xml")
    async def deflate(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=zlib.compress(FEED),
            headers={"Content-Encoding": "deflate"},
            content_type="text/xml",
        )

    @routes.get("/bomb")
    async def gzip_bomb(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=bomb, headers={"Content-Encoding": "gzip"}, content_type="text/xml"
        )

    @routes.get("/big-declared")
    async def big_declared(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * (CAP + 1), content_type="text/xml")

    @routes.get("/endless")
    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"<item>" + b"x" * 65536 + b"</item>"
        try:
            while site.endless_sent < 50 * CAP:
                await resp.write(chunk)
                site.endless_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    @routes.get("/slow-headers")
    async def slow_headers(request: web.Request) -> web.StreamResponse:
        await asyncio.wait_for(site.release.wait(), 10)
        return web.Response(body=FEED)

    @routes.get("/slow-body")
    async def slow_body(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
        await resp.prepare(request)
        await resp.write(FEED[:100])
        await asyncio.wait_for(site.release.wait(), 10)
        return resp

    @routes.get("/drip")
    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/xml"})
        await resp.prepare(request)
        try:
            for _ in range(200):
                await resp.write(b" ")
                await asyncio.sleep(0.1)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    @routes.get("/loop/a")
    async def loop_a(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop/b")

    @routes.get("/loop/b")
    async def loop_b(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop/a")

    @routes.get("/hops/{n}")
    async def hops(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        raise web.HTTPFound(f"/hops/{n - 1}" if n > 1 else "/feed.xml")

    @routes.get("/moved")
    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("/feed.xml")

    @routes.get("/moved308")
    async def moved308(request: web.Request) -> web.StreamResponse:
        raise web.HTTPPermanentRedirect("/moved")

    @routes.get("/temp")
    async def temp(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("feed.xml")  # relative Location

    @routes.get("/moved-then-temp")
    async def moved_then_temp(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("/temp")

    @routes.get("/temp-then-moved")
    async def temp_then_moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/moved")

    @routes.get("/to/{where}")
    async def to(request: web.Request) -> web.StreamResponse:
        target = {
            "private": "http://10.0.0.1/feed.xml",
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "file": "file:///etc/passwd",
            "localhost": f"http://localhost:{site.port}/feed.xml",
        }[request.match_info["where"]]
        raise web.HTTPFound(target)

    @routes.get("/status/{code}")
    async def status(request: web.Request) -> web.StreamResponse:
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.Response(status=int(request.match_info["code"]), headers=headers, text="no")

    @routes.get("/concurrent/{i}")
    async def concurrent(request: web.Request) -> web.StreamResponse:
        site.in_flight += 1
        site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            await asyncio.sleep(0.15)
        finally:
            site.in_flight -= 1
        return web.Response(text="ok")

    app = web.Application(middlewares=[count])
    app.add_routes(routes)
    return app


@pytest_asyncio.fixture(loop_scope="function")
async def site() -> AsyncIterator[Site]:
    s = Site()
    s.server = TestServer(build_app(s), host="127.0.0.1")
    await s.server.start_server()
    try:
        yield s
    finally:
        s.release.set()
        await s.server.close()


@pytest_asyncio.fixture(loop_scope="function")
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(make_settings()) as f:
        yield f


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- plain fetches ---------------------------------------------------------------------------


async def test_fetch_returns_body_headers_charset_and_sends_the_user_agent(
    site: Site, fetcher: Fetcher
) -> None:
    res = await fetcher.get(site.url("/feed.xml"), accept=ACCEPT_FEED)
    assert res.status == 200 and not res.not_modified
    assert res.body == FEED
    assert res.url == site.url("/feed.xml")
    assert res.charset == "utf-8" and res.content_type == "application/rss+xml"
    assert res.headers["etag"] == '"v1"'  # case-insensitive
    assert res.permanent_redirect_to is None and res.redirects == 0
    assert res.elapsed_s > 0

    echo = await fetcher.get(site.url("/echo"), accept=ACCEPT_FEED)
    sent = {k.lower(): v for k, v in json.loads(echo.body).items()}
    assert sent["user-agent"] == make_settings().user_agent
    assert "gzip" in sent["accept-encoding"] and "deflate" in sent["accept-encoding"]
    assert sent["accept"] == ACCEPT_FEED
    assert "cookie" not in sent


async def test_conditional_get_gives_not_modified(site: Site, fetcher: Fetcher) -> None:
    res = await fetcher.get(site.url("/feed.xml"), etag='"v1"')
    assert res.status == 304 and res.not_modified and res.body == b""

    echo = await fetcher.get(
        site.url("/echo"), etag='W/"x"', last_modified="Sat, 19 Apr 2025 11:37:26 GMT"
    )
    sent = json.loads(echo.body)
    assert sent["If-None-Match"] == 'W/"x"'
    assert sent["If-Modified-Since"] == "Sat, 19 Apr 2025 11:37:26 GMT"


@pytest.mark.parametrize("path", ["/gzip.xml", "/deflate.xml"])
async def test_gzip_and_deflate_are_decoded(site: Site, fetcher: Fetcher, path: str) -> None:
    res = await fetcher.get(site.url(path))
    assert res.body == FEED


# --- limits -----------------------------------------------------------------------------------


async def test_slow_response_headers_time_out_as_retriable(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(FetchTimeout) as info:
        await fetcher.get(site.url("/slow-headers"))
    assert info.value.retriable and info.value.reason == "timeout"


async def test_stalled_body_times_out(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(FetchTimeout):
        await fetcher.get(site.url("/slow-body"))


async def test_total_timeout_stops_a_slow_drip(site: Site) -> None:
    # one byte every 0.1 s never trips the 0.5 s read timeout; the total timeout stops it
    async with Fetcher(make_settings(), total_timeout_s=1.0) as f:
        started = asyncio.get_running_loop().time()
        with pytest.raises(FetchTimeout):
            await f.get(site.url("/drip"))
        assert asyncio.get_running_loop().time() - started < 3


async def test_content_length_over_the_cap_is_refused_before_reading(
    site: Site, fetcher: Fetcher
) -> None:
    with pytest.raises(TooLarge) as info:
        await fetcher.get(site.url("/big-declared"))
    assert "Content-Length" in str(info.value)
    assert not info.value.retriable and info.value.reason == "too-large"


async def test_endless_chunked_body_stops_at_the_cap(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(TooLarge):
        await fetcher.get(site.url("/endless"))
    await asyncio.sleep(0.2)
    # the client hung up soon after the cap; the server did not get to send 50x the cap
    assert site.endless_sent < 10 * CAP


async def test_gzip_bomb_is_capped_on_the_decompressed_size(site: Site, fetcher: Fetcher) -> None:
    compressed = len(gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9))
    assert compressed < CAP  # what travels is small ...
    with pytest.raises(TooLarge) as info:  # ... what it inflates to is not
        await fetcher.get(site.url("/bomb"))
    assert "after decompression" in str(info.value)


async def test_per_host_concurrency_is_limited(site: Site, fetcher: Fetcher) -> None:
    await asyncio.gather(*(fetcher.get(site.url(f"/concurrent/{i}")) for i in range(6)))
    assert site.max_in_flight == 2


# --- redirects --------------------------------------------------------------------------------


async def test_redirect_loop_is_detected(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(TooManyRedirects) as info:
        await fetcher.get(site.url("/loop/a"))
    assert info.value.reason == "redirect-loop" and not info.value.retriable
    assert site.hits == {"/loop/a": 1, "/loop/b": 1}


async def test_redirect_limit(site: Site, fetcher: Fetcher) -> None:
    ok = await fetcher.get(site.url("/hops/3"))  # 3 redirects: at the limit
    assert ok.body == FEED and ok.redirects == 3 and ok.permanent_redirect_to is None
    with pytest.raises(TooManyRedirects) as info:
        await fetcher.get(site.url("/hops/4"))
    assert info.value.reason == "too-many-redirects"


async def test_permanent_redirects_are_reported(site: Site, fetcher: Fetcher) -> None:
    res = await fetcher.get(site.url("/moved"))
    assert res.permanent_redirect_to == site.url("/feed.xml") == res.url

    res = await fetcher.get(site.url("/moved308"))  # 308 -> 301 -> feed
    assert res.permanent_redirect_to == site.url("/feed.xml")

    res = await fetcher.get(site.url("/temp"))  # 307, relative Location
    assert res.permanent_redirect_to is None and res.url == site.url("/feed.xml")

    res = await fetcher.get(site.url("/moved-then-temp"))  # the feed moved to /temp
    assert res.permanent_redirect_to == site.url("/temp")

    res = await fetcher.get(site.url("/temp-then-moved"))  # a temporary hop first: no move
    assert res.permanent_redirect_to is None


async def test_redirect_to_a_private_address_is_blocked(site: Site, fetcher: Fetcher) -> None:
    for where in ("private", "metadata"):
        with pytest.raises(BlockedAddress) as info:
            await fetcher.get(site.url(f"/to/{where}"))
        assert not info.value.retriable and info.value.reason == "blocked-address"
    assert "WORKER_FETCH_ALLOW_NETWORKS" in str(info.value)


async def test_redirect_to_another_scheme_is_refused(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(UnsupportedScheme):
        await fetcher.get(site.url("/to/file"))


# --- address guard ----------------------------------------------------------------------------


async def test_loopback_is_refused_unless_allowed(site: Site) -> None:
    async with Fetcher(make_settings(fetch_allow_networks="")) as f:
        with pytest.raises(BlockedAddress) as info:
            await f.get(site.url("/feed.xml"))  # IP literal: checked before connecting
        assert "loopback" in str(info.value)
        with pytest.raises(BlockedAddress):
            await f.get(f"http://localhost:{site.port}/feed.xml")  # a name: checked on resolve
        with pytest.raises(BlockedAddress):
            await f.get(f"http://[::ffff:127.0.0.1]:{site.port}/feed.xml")
    assert site.total_hits() == 0  # nothing ever reached the server

    async with Fetcher(make_settings(fetch_allow_networks="10.0.0.0/8")) as f:
        with pytest.raises(BlockedAddress):
            await f.get(site.url("/feed.xml"))


async def test_redirect_from_an_allowed_host_to_a_refused_name_is_blocked(site: Site) -> None:
    # allow exactly this loopback address; the redirect names "localhost", which the guard
    # resolves and refuses unless every address it resolves to is allowed
    async with Fetcher(make_settings(fetch_allow_networks="127.0.0.1/32")) as f:
        assert (await f.get(site.url("/feed.xml"))).status == 200
    async with Fetcher(make_settings(fetch_allow_networks="")) as f:
        with pytest.raises(BlockedAddress):
            await f.get(site.url("/to/localhost"))


async def test_the_resolver_enforces_the_guard() -> None:
    # what the connector connects to is what this returns: a name cannot be vetted as
    # public and then connected to a private address (no DNS rebinding window)
    with pytest.raises(BlockedAddress):
        await GuardedResolver(()).resolve("localhost", 80)
    allowed = await GuardedResolver((ipaddress.ip_network("127.0.0.0/8"),)).resolve("127.0.0.1", 80)
    assert allowed and all(r["host"] == "127.0.0.1" for r in allowed)


@pytest.mark.parametrize(
    ("ip", "problem"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "private"),  # reserved; Python also files it as private
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_guard(ip: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(ip)) == problem


def test_address_guard_allow_list() -> None:
    allow = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert address_problem(ipaddress.ip_address("10.9.9.9"), allow) is None
    assert address_problem(ipaddress.ip_address("::1"), allow) is None
    assert address_problem(ipaddress.ip_address("192.168.1.1"), allow) == "private"


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "retriable"),
    [(500, True), (502, True), (503, True), (429, True), (408, True), (404, False),
     (403, False), (410, False), (400, False)],
)  # fmt: skip
async def test_http_errors_say_whether_to_retry(
    site: Site, fetcher: Fetcher, code: int, retriable: bool
) -> None:
    with pytest.raises(HTTPStatusError) as info:
        await fetcher.get(site.url(f"/status/{code}"))
    assert info.value.status == code
    assert info.value.retriable is retriable
    assert info.value.reason == f"http-{code}"


async def test_retry_after_is_parsed_from_seconds_and_dates(site: Site, fetcher: Fetcher) -> None:
    with pytest.raises(HTTPStatusError) as info:
        await fetcher.get(site.url("/status/503?retry_after=120"))
    assert info.value.retry_after_s == 120

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    url = str(site.server.make_url("/status/429").with_query(retry_after=when))
    with pytest.raises(HTTPStatusError) as info:
        await fetcher.get(url)
    assert info.value.retry_after_s is not None and 290 <= info.value.retry_after_s <= 300


def test_parse_retry_after() -> None:
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(" 30 ", now=now) == 30.0
    assert parse_retry_after("Thu, 01 May 2025 12:01:30 GMT", now=now) == 90.0
    assert parse_retry_after("Thu, 01 May 2025 11:00:00 GMT", now=now) == 0.0  # past
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None
    assert parse_retry_after("-5", now=now) is None


async def test_connection_refused_is_retriable(fetcher: Fetcher) -> None:
    with pytest.raises(ConnectError) as info:
        await fetcher.get(f"http://127.0.0.1:{free_port()}/feed.xml")
    assert info.value.retriable


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "feed:x"])
async def test_only_http_and_https(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(UnsupportedScheme) as info:
        await fetcher.get(url)
    assert not info.value.retriable


async def test_invalid_urls(fetcher: Fetcher) -> None:
    for url in ("http:///nohost", "http://2130706433/"):  # no host; numeric IPv4 form
        with pytest.raises(InvalidURL):
            await fetcher.get(url)


async def test_credentials_never_appear_in_errors(site: Site, fetcher: Fetcher) -> None:
    url = f"http://reader:s3cret@127.0.0.1:{site.port}/status/404"
    with pytest.raises(FetchError) as info:
        await fetcher.get(url)
    assert "s3cret" not in str(info.value) and "s3cret" not in (info.value.url or "")
    assert safe_url(url) == f"http://127.0.0.1:{site.port}/status/404"
    async with Fetcher(make_settings(fetch_allow_networks="")) as f:
        with pytest.raises(BlockedAddress) as blocked:
            await f.get(url)
    assert "s3cret" not in str(blocked.value) and "s3cret" not in (blocked.value.url or "")


async def test_fetcher_must_be_entered() -> None:
    with pytest.raises(RuntimeError):
        await Fetcher(make_settings()).get("http://127.0.0.1/")
