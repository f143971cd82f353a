"""Bad input never stops the worker: every bad page ends as a dead letter with its reason,
the good records around it are enriched, and the counts add up.

Records carry only a URL (no body), so the worker fetches each page itself, through the
same guarded fetcher as the feeds, from a real HTTP server on loopback.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "tests" / "data" / "pages"


class PageServer:
    """An aiohttp server in a thread of its own (the tests and the worker are sync/other
    processes)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _app(self) -> web.Application:
        good = (PAGES / "nytimes-1.html").read_bytes()

        async def ok(_: web.Request) -> web.Response:
            return web.Response(body=good, content_type="text/html", charset="utf-8")

        async def binary(_: web.Request) -> web.Response:
            return web.Response(body=b"%PDF-1.7\n" + bytes(range(256)) * 64,
                                content_type="text/html")

        async def empty(_: web.Request) -> web.Response:
            return web.Response(body=b"", content_type="text/html")

        async def gzip_bomb(_: web.Request) -> web.Response:
            body = gzip.compress(b"<p>" + b"A" * 50_000_000)
            return web.Response(body=body, content_type="text/html",
                                headers={"Content-Encoding": "gzip"})

        async def huge(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/html"})
            await resp.prepare(request)
            chunk = b"<p>" + b"x" * 65536 + b"</p>"
            try:
                for _ in range(400):  # ~26 MB unless the client stops reading
                    await resp.write(chunk)
            except (ConnectionResetError, RuntimeError):
                pass
            return resp

        async def slow(_: web.Request) -> web.Response:
            await asyncio.sleep(6)
            return web.Response(body=good, content_type="text/html")

        async def loop_a(_: web.Request) -> web.Response:
            raise web.HTTPFound("/loop-b")

        async def loop_b(_: web.Request) -> web.Response:
            raise web.HTTPFound("/loop-a")

        async def to_metadata(_: web.Request) -> web.Response:
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

        async def mixed_encoding(_: web.Request) -> web.Response:
            html = good.replace(b"Sudan", "Soudan caf\u00e9".encode("latin-1"))
            return web.Response(body=html, headers={"Content-Type": "text/html; charset=utf-8"})

        async def not_found(_: web.Request) -> web.Response:
            return web.Response(status=404, text="gone")

        app = web.Application()
        for path, handler in {"/ok": ok, "/binary": binary, "/empty": empty,
                              "/gzip-bomb": gzip_bomb, "/huge": huge, "/slow": slow,
                              "/loop-a": loop_a, "/loop-b": loop_b, "/to-metadata": to_metadata,
                              "/mixed-encoding": mixed_encoding, "/404": not_found}.items():
            app.router.add_get(path, handler)
        return app

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            self._runner = web.AppRunner(self._app(), shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def start(self) -> PageServer:
        self.thread.start()
        assert self._ready.wait(10), "page server did not start"
        return self

    def stop(self) -> None:
        async def cleanup() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in others:  # handlers still sleeping (the slow page)
                t.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def pages() -> Iterator[PageServer]:
    server = PageServer().start()
    yield server
    server.stop()


EXPECTED_DEAD = {
    # path: (stage, error class) of the dead letter
    "/binary": ("decode", "BinaryContent"),
    "/empty": ("clean", "EmptyContent"),
    "/gzip-bomb": ("fetch", "TooLarge"),
    "/huge": ("fetch", "TooLarge"),
    "/slow": ("fetch", "FetchTimeout"),
    "/loop-a": ("fetch", "TooManyRedirects"),
    "/to-metadata": ("fetch", "BlockedAddress"),
    "/404": ("fetch", "HTTPStatusError"),
}


def test_bad_pages_become_dead_letters_and_good_ones_flow(worker_env_factory, pages, tmp_path):
    w = worker_env_factory(WORKER_FETCH_READ_TIMEOUT_S="1", WORKER_FETCH_MAX_BYTES="2000000",
                           WORKER_MAX_ATTEMPTS="2")
    folder = tmp_path / "records"
    folder.mkdir()
    paths = ["/ok", "/mixed-encoding", *EXPECTED_DEAD]
    for i, path in enumerate(paths):
        (folder / f"{i:02d}.json").write_bytes(orjson.dumps({"url": pages.url(path)}))
    # and a record that points at a private address outright (the guard refuses it)
    (folder / "99.json").write_bytes(orjson.dumps({"url": "http://10.255.255.1/x"}))
    proc = w.start_worker()
    w.cli("replay", "-q", str(folder), check=True)

    n_dead = len(EXPECTED_DEAD) + 1
    dlq = w.wait_for("articles.dlq", n_dead, proc=proc, timeout=180)
    got = {m["value"]["original"]["url"]: m["value"] for m in dlq}
    for path, (stage, error_class) in EXPECTED_DEAD.items():
        letter = got[pages.url(path)]
        assert (letter["stage"], letter["error_class"]) == (stage, error_class), letter
        assert letter["message"]
    private = got["http://10.255.255.1/x"]
    assert private["error_class"] == "BlockedAddress" and "10.255.255.1" in private["message"]
    # a retriable failure (the timeout) was tried again before it was dead-lettered
    assert got[pages.url("/slow")]["attempts"] == 2 and got[pages.url("/slow")]["retriable"]
    assert got[pages.url("/404")]["attempts"] == 1  # a permanent one was not

    enriched = w.wait_for("articles.enriched", 2, proc=proc)
    by_url = {m["value"]["url"]: m["value"] for m in enriched}
    assert by_url[pages.url("/ok")]["text_origin"] == "page"
    assert "sanctions" in {t["id"] for t in by_url[pages.url("/ok")]["topics"]}
    assert "Soudan caf\u00e9" in by_url[pages.url("/mixed-encoding")]["title"] + \
        by_url[pages.url("/mixed-encoding")]["text"]

    stats = w.wait_stats(lambda s: s["handled"] >= len(paths) + 1)
    assert stats["received"] == stats["enriched"] + sum(stats["skipped"].values()) + \
        sum(stats["dead_letters"].values())
    assert proc.poll() is None  # it kept running through all of it
