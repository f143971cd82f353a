"""Wire the adapters in one place: settings in, pipeline ports out.

The faust app, the CLI and the tests all build their pipeline here; tests pass
in-memory stores or sinks where they need them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import signal
import ssl
import threading
import time
from typing import Any

from worker import clean
from worker.clean import CleanDoc
from worker.pipeline import Ports
from worker.settings import Settings

log = logging.getLogger(__name__)


class InlineExtractor:
    """Cleans in a thread (the GIL still makes it compete with the loop): for the one-shot
    ``tag`` command, unit tests and ``WORKER_EXTRACT_WORKERS=0``."""

    in_flight = 0
    queue_depth = 0  # asyncio's thread pool has room for the agent's concurrency

    async def clean_html(self, html: str, url: str | None) -> CleanDoc:
        return await asyncio.to_thread(clean.clean_html, html, url)

    async def clean_text(self, text: str) -> CleanDoc:
        return await asyncio.to_thread(clean.clean_text, text)

    def close(self) -> None:
        pass


class DirectExtractor(InlineExtractor):
    """Cleans in the caller's thread, blocking the loop: for one-shot sequential runs (the
    ``tag`` command, benchmarks), where nothing else waits on the loop. A hop to another
    thread buys nothing there and costs a wake-up per page, and on a busy machine the
    other thread may be scheduled on a busier core (benchmarks measured 0 to 25 % more)."""

    async def clean_html(self, html: str, url: str | None) -> CleanDoc:
        return clean.clean_html(html, url)

    async def clean_text(self, text: str) -> CleanDoc:
        return clean.clean_text(text)


def _init_pool_process(parent_pid: int, log_format: str = "text") -> None:
    """In a pool process: Ctrl-C and SIGTERM reach the whole process group, but stopping
    is the parent's call (it shuts the pool down after the in-flight records). And the
    process dies with its parent: when the worker is killed (SIGKILL, OOM), nothing shuts
    the pool down, so a watch thread exits the process once it has been re-parented.
    Its warnings are logged in the worker's format (a spawned process starts bare)."""
    from worker.logs import configure_cli_logging

    configure_cli_logging(log_format, "WARNING")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.getppid() != parent_pid:  # the parent died while this process started
        os._exit(0)
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()
    import gc

    from worker import clean  # noqa: F401 - what every task runs, imported once here

    gc.freeze()  # the modules live as long as the process: out of the collector's full passes


def _exit_with_parent(parent_pid: int, interval_s: float = 0.5) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval_s)
    os._exit(0)  # no cleanup to do: the parent is gone, and its records will be redelivered


class PoolExtractor:
    """Cleans in a process pool so trafilatura's ~20 ms of CPU per page never blocks the
    event loop (heartbeats, other agents). A crashed pool is rebuilt and the call is
    reported as retriable."""

    def __init__(
        self, workers: int, max_tasks_per_child: int = 1000, log_format: str = "text"
    ) -> None:
        self.workers = max(1, workers)
        self.max_tasks_per_child = max_tasks_per_child
        self.log_format = log_format
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # how well the hand-off keeps the processes fed: pages handed over and not back yet,
        # and the process-seconds a process had none (idle, or waiting for the worker)
        self.in_flight = 0
        self._idle_s = 0.0
        self._since = time.monotonic()

    def _account(self, change: int) -> None:
        now = time.monotonic()
        self._idle_s += max(0, self.workers - self.in_flight) * (now - self._since)
        self._since = now
        self.in_flight += change

    def load(self) -> dict[str, Any]:
        """For /health: the processes, the pages in flight, and the idle process-seconds
        since the start (a process with no page to clean)."""
        self._account(0)
        return {
            "processes": self.workers,
            "in_flight": self.in_flight,
            "idle_process_s": round(self._idle_s, 3),
        }

    @property
    def queue_depth(self) -> int:
        """Pages waiting for a free process."""
        return max(0, self.in_flight - self.workers)

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_process,
                initargs=(os.getpid(), self.log_format),
                # recycle each process now and then: lxml/trafilatura caches only grow
                max_tasks_per_child=self.max_tasks_per_child,
            )
        return self._pool

    async def _run(self, fn: Any, *args: Any) -> CleanDoc:
        loop = asyncio.get_running_loop()
        self._account(+1)
        try:
            return await loop.run_in_executor(self._get_pool(), fn, *args)
        except concurrent.futures.process.BrokenProcessPool as exc:
            self.close()
            raise ExtractorCrashed(f"extraction process died: {exc}") from exc
        finally:
            self._account(-1)

    async def clean_html(self, html: str, url: str | None) -> CleanDoc:
        return await self._run(clean.clean_html, html, url)

    async def clean_text(self, text: str) -> CleanDoc:
        return await self._run(clean.clean_text, text)

    def warm_up(self) -> None:
        """Start the pool's processes now (they import trafilatura once)."""
        self._get_pool().submit(clean.warm_up).result(timeout=120)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class ExtractorCrashed(Exception):
    retriable = True


def load_tagging(settings: Settings) -> tuple[Any, Any]:
    from worker.tagging import AlertRules, TaxonomyError
    from worker.tagging.cache import cached_tagger

    if not settings.configs_dir.is_dir():
        raise TaxonomyError(f"WORKER_CONFIGS_DIR={settings.configs_dir}: no such directory")
    # built once per taxonomy and model, then loaded from a pickle (start-up: 3 s -> 0.3 s)
    tagger = cached_tagger(settings.topics_file, settings.countries_file, settings.model_file)
    tagger.read_long_texts_by_windows(settings.topic_model_windows)
    rules = AlertRules.from_file(settings.alerts_file, tagger)
    return tagger, rules


def make_extractor(settings: Settings) -> InlineExtractor | PoolExtractor:
    return (
        PoolExtractor(settings.extract_workers, log_format=settings.log_format)
        if settings.extract_workers
        else InlineExtractor()
    )


def make_redis(settings: Settings) -> Any:
    """A redis.asyncio client with timeouts, so a Redis outage is an error, not a hang."""
    import redis.asyncio as aioredis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry

    # A pooled connection that went stale (Redis restarted) fails once, then reconnects:
    # two quick retries hide that, while a Redis that is really down still fails fast.
    return aioredis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=2.0,
        socket_timeout=2.0,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def build_ports(
    settings: Settings,
    *,
    seen: Any,
    extractor: Any = None,
    fetcher: Any = None,
    tagging: tuple[Any, Any] | None = None,
    stories: Any = None,
) -> Ports:
    tagger, rules = tagging or load_tagging(settings)
    return Ports(
        extractor=extractor or make_extractor(settings),
        tagger=tagger,
        alert_rules=rules,
        seen=seen,
        fetcher=fetcher,
        stories=stories,
    )


def make_story_index(settings: Settings, redis: Any = None) -> Any:
    """The story index: in Redis (shared by the group) when given a client, else in memory
    (the one-shot ``tag`` command)."""
    from worker.stories import MemoryStoryBackend, StoryIndex

    backend: Any
    if redis is None:
        backend = MemoryStoryBackend()
    else:
        from worker.storystore import RedisStoryBackend

        backend = RedisStoryBackend(redis, settings.topic_prefix)
    return StoryIndex(
        backend,
        window_s=settings.story_window_h * 3600,
        update_min_s=settings.story_update_min_s,
    )


def kafka_client_kwargs(settings: Settings) -> dict[str, Any]:
    """Security options for aiokafka clients (the CLI's producer and consumer)."""
    kw: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        kw["ssl_context"] = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if settings.kafka_security_protocol.startswith("SASL"):
        kw["sasl_mechanism"] = settings.kafka_sasl_mechanism or "PLAIN"
        kw["sasl_plain_username"] = settings.kafka_sasl_username
        kw["sasl_plain_password"] = (
            settings.kafka_sasl_password.get_secret_value()
            if settings.kafka_sasl_password
            else None
        )
    return kw


def faust_credentials(settings: Settings) -> Any:
    import faust

    proto = settings.kafka_security_protocol
    ctx = None
    if proto in ("SSL", "SASL_SSL"):
        ctx = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    if proto.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=(
                settings.kafka_sasl_password.get_secret_value()
                if settings.kafka_sasl_password
                else None
            ),
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
            ssl_context=ctx,
        )
    if proto == "SSL":
        return faust.SSLCredentials(ctx)
    return None


class HttpPageFetcher:
    """The enrichment agent's page fetcher: the feeds' :class:`Fetcher` (timeouts, size cap,
    redirect limit, per-host limit, address guard), decoded with :func:`clean.decode_bytes`."""

    def __init__(self, fetcher: Any) -> None:
        self._fetcher = fetcher

    @classmethod
    async def open(cls, settings: Settings) -> HttpPageFetcher:
        from worker.sources.http import Fetcher

        fetcher = Fetcher(settings)
        await fetcher.__aenter__()
        return cls(fetcher)

    @property
    def fetcher(self) -> Any:
        return self._fetcher

    async def fetch_page(self, url: str) -> tuple[str, str]:
        from worker.sources.http import ACCEPT_HTML

        res = await self._fetcher.get(url, accept=ACCEPT_HTML)
        return clean.decode_bytes(res.body, res.charset), str(res.url)

    async def close(self) -> None:
        await self._fetcher.__aexit__(None, None, None)


class ScheduledPolling:
    """The leader's feed polling: feeds.yaml validated at start, due feeds polled each tick.

    A tick never raises: faust ends the whole worker when a timer does. When the feed state
    store (Redis) is unreachable, polling pauses (one warning), each later tick tries again,
    and polling resumes by itself when it answers (one info line); the enrichment agent goes
    on publishing meanwhile."""

    def __init__(self, poller: Any, feeds: list[Any]) -> None:
        self.poller = poller
        self.feeds = feeds
        self.last_results: list[Any] = []
        self.paused: str | None = None  # why polling is paused, None while it runs
        self._metrics: Any = None

    @property
    def metrics(self) -> Any:
        """worker.metrics.Metrics (set by the app): poll outcomes here, fetches by the
        poller."""
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: Any) -> None:
        self._metrics = metrics
        self.poller.metrics = metrics

    async def poll_due_once(self) -> list[Any]:
        if not self.feeds:
            return []
        from redis.exceptions import RedisError

        try:
            self.last_results = await self.poller.poll_due(self.feeds)
        except RedisError as exc:
            self._pause(f"feed state store unavailable: {type(exc).__name__}: {exc}")
            if self.metrics is not None:
                self.metrics.feed_polls.labels("paused").inc()
            return []
        except Exception as exc:  # noqa: BLE001 - a tick must not end the worker
            log.exception("feed polling: unexpected error in this tick")
            self._pause(f"internal error: {type(exc).__name__}: {exc}")
            return []
        if self.paused is not None:
            log.info("feed polling resumed (was paused: %s)", self.paused)
            self.paused = None
        if self.metrics is not None:
            for r in self.last_results:
                self.metrics.feed_polls.labels(r.status).inc()
        return self.last_results  # the poller logs each failure with its feed and URL

    def _pause(self, why: str) -> None:
        if self.paused is None:
            log.warning("feed polling paused, retried every tick: %s", why)
        self.paused = why


async def open_fetcher(settings: Settings) -> HttpPageFetcher:
    """The page fetcher with the project's HTTP hygiene (timeouts, size cap, address guard)."""
    return await HttpPageFetcher.open(settings)


async def make_feed_poller(
    settings: Settings, redis: Any, fetcher: HttpPageFetcher, publish: Any
) -> ScheduledPolling:
    """Feeds from feeds.yaml (validated now: a bad file stops the start with its problems);
    no file means no feeds."""
    from worker.sources.feeds import FeedPoller, load_feeds

    path = settings.feeds_path
    feeds = load_feeds(path) if path.exists() else []
    log.info("%d feed(s) from %s", len(feeds), path)
    return ScheduledPolling(FeedPoller(settings, redis, fetcher.fetcher, publish), feeds)
