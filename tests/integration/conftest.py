"""The worker as a real process against the session's real Kafka and Redis.

Each test module gets its own topic namespace (``WORKER_TOPIC_PREFIX``), consumer
group, web port and data folder, so modules never see each other's records.
Outputs are read with kcat, an independent client (librdkafka).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from worker import devservices

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "tests" / "data" / "pages"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerEnv:
    """Settings for one namespace: the env of every process a test starts."""

    env: dict[str, str]
    prefix: str
    bootstrap: str
    web_port: int
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def member(self, **extra: str) -> WorkerEnv:
        """Another worker of the same consumer group (same topics, same WORKER_APP_ID) with
        its own web port and data folder; its processes are stopped with this env's."""
        port = free_port()
        env = {
            **self.env,
            "WORKER_WEB_PORT": str(port),
            "WORKER_DATA_DIR": f"{self.env['WORKER_DATA_DIR']}-{port}",
            **extra,
        }
        return replace(self, env=env, web_port=port, procs=self.procs)

    # --- processes ---------------------------------------------------------------
    def cli(
        self, *args: str, timeout: float = 120, check: bool = False, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [sys.executable, "-m", "worker", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input.decode() if input else None,
        )
        if check and res.returncode != 0:
            pytest.fail(
                f"`worker {' '.join(args)}` exited {res.returncode}:\n"
                f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
            )
        return res

    def start_worker(self, name: str = "worker", wait: bool = True) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as logf:
            # its own session (signals go to the whole group), but it dies with pytest
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "worker"],
                env=self.env,
                cwd=ROOT,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=devservices._die_with_parent,
            )
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)
        if wait:
            self.wait_healthy(proc)
        return proc

    def wait_healthy(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"worker exited with {proc.returncode} during start:\n" + self.log_tail(proc)
                )
            h = self.health()
            # started, and ready once (or past the start-up grace when a dependency is down)
            if h is not None and h.get("stats") != {} and h.get("status") != "starting":
                return h
            time.sleep(0.5)
        pytest.fail("worker did not become healthy:\n" + self.log_tail(proc))

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def ready(self) -> tuple[int, dict[str, Any]] | None:
        """(HTTP status, body) of /ready, or None when nothing answers."""
        url = f"http://127.0.0.1:{self.web_port}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return None

    def wait_ready(
        self, want: int, proc: subprocess.Popen[bytes], timeout: float = 20
    ) -> tuple[float, dict[str, Any]]:
        """Until /ready answers ``want``; returns (seconds it took, body)."""
        t0 = time.monotonic()
        last: Any = None
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                pytest.fail(f"worker exited with {proc.returncode}:\n" + self.log_tail(proc))
            last = self.ready()
            if last is not None and last[0] == want:
                return time.monotonic() - t0, last[1]
            time.sleep(0.25)
        pytest.fail(f"/ready never answered {want} in {timeout} s: {last}")

    def stop(
        self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 60
    ) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return proc.returncode

    def log_tail(self, proc: subprocess.Popen[bytes], n: int = 60) -> str:
        path: Path = proc.log_path  # type: ignore[attr-defined]
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])

    # --- reading topics with kcat -------------------------------------------------
    def kcat(self, topic: str) -> list[dict[str, Any]]:
        """Every message on a topic (prefixed name), via kcat's JSON envelopes."""
        res = subprocess.run(
            [
                "kcat",
                "-b",
                self.bootstrap,
                "-C",
                "-t",
                self.topic(topic),
                "-o",
                "beginning",
                "-e",
                "-J",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if res.returncode != 0 and "Unknown topic" not in res.stderr:
            pytest.fail(f"kcat failed ({res.returncode}): {res.stderr}")
        out = []
        for line in res.stdout.splitlines():
            env = json.loads(line)
            env["value"] = json.loads(env["payload"]) if env.get("payload") else None
            out.append(env)
        return out

    def wait_for(
        self,
        topic: str,
        count: int,
        timeout: float = 120,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        msgs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            msgs = self.kcat(topic)
            if len(msgs) >= count:
                return msgs
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker died (exit {proc.returncode}):\n" + self.log_tail(proc))
            time.sleep(1)
        detail = self.log_tail(proc) if proc is not None else ""
        pytest.fail(f"{self.topic(topic)}: {len(msgs)} message(s), expected {count}\n{detail}")

    def wait_stats(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            h = self.health()
            stats = (h or {}).get("stats") or {}
            if stats and pred(stats):
                return stats
            time.sleep(0.5)
        pytest.fail(f"worker stats never matched: {stats}")


def make_worker_env(kafka_bootstrap: str, redis_url: str, tmp: Path, **extra: str) -> WorkerEnv:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    feeds = tmp / "feeds.yaml"  # no feeds unless a test serves its own: never the internet
    feeds.write_text("feeds: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    env.update(
        {
            "WORKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "WORKER_REDIS_URL": redis_url,
            "WORKER_TOPIC_PREFIX": prefix,
            "WORKER_APP_ID": f"ingest-{prefix.rstrip('.')}",
            "WORKER_WEB_PORT": str(port),
            "WORKER_DATA_DIR": str(tmp / "faust"),
            "WORKER_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
            "WORKER_RETRY_BACKOFF_S": "0.1",
            "WORKER_POLL_TICK_S": "1",
            "WORKER_FEEDS_FILE": str(feeds),
            "WORKER_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return WorkerEnv(env=env, prefix=prefix, bootstrap=kafka_bootstrap, web_port=port, log_dir=tmp)


@pytest.fixture
def worker_env_factory(
    kafka_bootstrap: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., WorkerEnv]]:
    made: list[WorkerEnv] = []

    def make(**extra: str) -> WorkerEnv:
        w = make_worker_env(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("worker"), **extra)
        made.append(w)
        return w

    yield make
    for w in made:
        for p in w.procs:
            w.stop(p, timeout=30)


class PageServer:
    """An aiohttp server in a thread of its own (the tests and the worker are sync/other
    processes)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.article_delay_s = 0.0
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
            return web.Response(
                body=b"%PDF-1.7\n" + bytes(range(256)) * 64, content_type="text/html"
            )

        async def empty(_: web.Request) -> web.Response:
            return web.Response(body=b"", content_type="text/html")

        async def gzip_bomb(_: web.Request) -> web.Response:
            body = gzip.compress(b"<p>" + b"A" * 50_000_000)
            return web.Response(
                body=body, content_type="text/html", headers={"Content-Encoding": "gzip"}
            )

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

        async def article(request: web.Request) -> web.Response:
            """/article/<n>: a real page at a slow news site (distinct URL = distinct id)."""
            await asyncio.sleep(self.article_delay_s)
            n = request.match_info["n"]
            return web.Response(
                body=good.replace(b"<title>", f"<title>[{n}] ".encode(), 1),
                content_type="text/html",
                charset="utf-8",
            )

        app = web.Application()
        app.router.add_get("/article/{n}", article)
        for path, handler in {
            "/ok": ok,
            "/binary": binary,
            "/empty": empty,
            "/gzip-bomb": gzip_bomb,
            "/huge": huge,
            "/slow": slow,
            "/loop-a": loop_a,
            "/loop-b": loop_b,
            "/to-metadata": to_metadata,
            "/mixed-encoding": mixed_encoding,
            "/404": not_found,
        }.items():
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
    """A real HTTP server on loopback with good, bad and slow pages."""
    server = PageServer().start()
    yield server
    server.stop()
