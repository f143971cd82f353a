"""faust wiring only: topics, the enrichment agent, the feed-poll timer, web views.

The agent is thin: it decodes a record and hands it to the pure pipeline
(:class:`worker.pipeline.Processor`). ``faust -A worker.app worker -l info``
works, and so does ``python -m worker worker``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from typing import Any, NoReturn

import faust
from pydantic import ValidationError

from worker import bootstrap
from worker.dedup import RedisSeenStore
from worker.events import RawRecord
from worker.lag import read_lag
from worker.logs import faust_logging_config, redact_root_handlers, secret_values
from worker.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from worker.metrics import Metrics
from worker.pipeline import PIPELINE_VERSION, Failed, Processor, dead_letter
from worker.probes import Probes, broker_addresses
from worker.settings import Settings, get_settings

log = logging.getLogger("worker.app")


def exit_status(code: Any, crash: BaseException | None) -> int:
    """The process's exit status from faust's ``SystemExit`` code and the crash the worker
    saw, if any: a crash is never 0, so that a supervisor restarts the worker."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): Python prints it and exits 1
        status = 1
    if crash is not None and status == 0:
        return 1
    return status


class BoundedShutdownWorker(faust.Worker):
    """faust's worker with a bound on shutdown, an exit status that tells a crash, and
    logs without secrets.

    SIGTERM normally stops the consumer, flushes and exits in a few seconds. When the
    broker is gone, faust can wait on it for ever; after ``WORKER_SHUTDOWN_TIMEOUT_S``
    this exits anyway. Nothing is lost: records not yet committed are redelivered.

    The exit status comes from mode's ``Worker.execute_from_commandline``: a crash (a
    service or timer raised, "We experienced a crash! Reraising original exception") is
    re-raised from the worker's recorded ``crash_reason`` after the loop closes, and mode
    turns it into status 1. That depends on the reason still being recorded at the very
    end (a service restart clears it) and on it being an ``Exception``; the first crash
    this worker saw is kept here too, and :func:`exit_status` makes sure it is not 0.
    """

    first_crash: BaseException | None = None

    def _crash(self, reason: BaseException) -> None:
        if self.first_crash is None:
            self.first_crash = reason
        super()._crash(reason)

    def execute_from_commandline(self) -> NoReturn:
        try:
            super().execute_from_commandline()
        except SystemExit as exc:
            status = exit_status(exc.code, self.first_crash or self.crash_reason)
            if status != exc.code:
                log.critical(
                    "the worker crashed (%r); exit status %d so that it is restarted",
                    self.first_crash or self.crash_reason,
                    status,
                )
            raise SystemExit(status) from None
        raise SystemExit(exit_status(0, self.first_crash))  # pragma: no cover

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """After faust configured logging (text, or WORKER_LOG_FORMAT=json through the
        app's ``logging_config``): every handler drops secrets; in JSON no spinner."""
        if getattr(self.app, "log_format", "text") == "json":
            self.spinner = None
        super().on_setup_root_logger(logger, level)
        redact_root_handlers(getattr(self.app, "log_secrets", ()))

    async def on_stop(self) -> None:
        timeout = getattr(self.app, "shutdown_timeout_s", 30.0)

        def force_exit() -> None:
            log.error(
                "shutdown took longer than %.0fs; exiting now (uncommitted records "
                "will be redelivered to the next worker)",
                timeout,
            )
            logging.shutdown()
            os._exit(1)

        timer = threading.Timer(timeout, force_exit)
        timer.daemon = True
        timer.start()
        await super().on_stop()


class FaustSink:
    """Publishes through the app's producer and waits for the broker's ack."""

    def __init__(self, app: faust.App, partitions: int) -> None:
        self.app = app
        self.partitions = partitions
        self._topics: dict[str, Any] = {}

    def topic(self, name: str) -> Any:
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=self.partitions,
            )
        return self._topics[name]

    async def send(self, topic: str, key: bytes, value: bytes) -> None:
        t = self.topic(topic)
        fut = t.as_future_message(key=key, value=value)
        await t.publish_message(fut, wait=True)


class Runtime:
    """What the agent needs at run time; built on worker start, not at import."""

    def __init__(self, settings: Settings, app: faust.App) -> None:
        self.settings = settings
        self.app = app
        self.sink = FaustSink(app, settings.topic_partitions)
        self.processor: Processor | None = None
        self.tagger: Any = None
        self.extractor: Any = None
        self.redis: Any = None
        self.fetcher: Any = None
        self.feeds: Any = None
        self.started_at = time.time()
        self._lock = asyncio.Lock()
        self.probes = Probes(
            redis_ping=self._redis_ping,
            brokers=broker_addresses(settings.kafka_bootstrap_servers),
            assigned=self._assigned,
            interval_s=settings.probe_interval_s,
        )
        self.probes.log_change = self._log_change
        self.ever_ready = False
        self._probe_task: asyncio.Task[None] | None = None
        self.metrics = Metrics()

    async def _probe_loop(self) -> None:
        """Probe now, then every interval (a faust timer would wait an interval first)."""
        while True:
            try:
                await self.probes.run_once()
                snapshot = self.probes.snapshot()
                raw = self.settings.topic_names.raw
                self.metrics.observe_probes(snapshot, self._assigned(raw))
                await self._observe_lag(ask_broker=snapshot["checks"]["kafka"]["ok"])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a probe must not end the worker
                log.exception("dependency probe failed")
            await asyncio.sleep(self.probes.interval_s)

    async def _redis_ping(self) -> Any:
        if self.redis is None:
            raise ConnectionError("not connected yet")
        return await self.redis.ping()

    async def _observe_lag(self, *, ask_broker: bool) -> None:
        """diplomacy_consumer_lag per partition of articles.raw held (worker/lag.py)."""
        raw = self.settings.topic_names.raw
        try:
            lag = await read_lag(self.app.consumer, raw, ask_broker=ask_broker)
        except Exception:  # noqa: BLE001 - no consumer yet
            lag = {}
        self.metrics.observe_lag(raw, lag)

    def _assigned(self, topic: str | None = None) -> int:
        """Partitions held (of ``topic`` only: faust's own leader topic is one more)."""
        try:
            return sum(1 for tp in self.app.consumer.assignment() if topic in (None, tp.topic))
        except Exception:  # noqa: BLE001 - no consumer yet
            return 0

    def group(self) -> dict[str, Any]:
        """This member's share of the consumer group: the partitions it holds now, per
        topic, and whether it is the leader (the one member that polls the feeds)."""
        try:
            assignment = self.app.consumer.assignment()
            leader = self.app.is_leader()
        except Exception:  # noqa: BLE001 - no consumer yet
            return {"leader": False, "partitions": {}}
        partitions: dict[str, list[int]] = {}
        for tp in assignment:
            partitions.setdefault(tp.topic, []).append(tp.partition)
        return {
            "leader": leader,
            "partitions": {t: sorted(ps) for t, ps in sorted(partitions.items())},
        }

    @staticmethod
    def _log_change(name: str, ok: bool, detail: str) -> None:
        if ok:
            log.info("%s is back: %s", name, detail)
        else:
            log.warning("%s check failing: %s", name, detail)

    async def ensure_started(self) -> Processor:
        async with self._lock:
            if self.processor is None:
                await self.start()
        assert self.processor is not None
        return self.processor

    async def start(self) -> None:
        s = self.settings
        tagging = bootstrap.load_tagging(s)
        self.tagger = tagging[0]
        self.redis = bootstrap.make_redis(s)
        self.extractor = bootstrap.make_extractor(s)
        self.metrics.watch_extractor(self.extractor)
        if hasattr(self.extractor, "warm_up"):  # start the pool before the first record
            await asyncio.to_thread(self.extractor.warm_up)
        self.fetcher = await bootstrap.open_fetcher(s)
        ports = bootstrap.build_ports(
            s,
            seen=RedisSeenStore(self.redis, s.seen_ttl_days * 86400, s.topic_prefix),
            extractor=self.extractor,
            fetcher=self.fetcher,
            tagging=tagging,
            stories=bootstrap.make_story_index(s, self.redis),
        )
        self.processor = Processor(
            ports,
            self.sink,
            max_attempts=s.max_attempts,
            backoff_s=s.retry_backoff_s,
            names=s.topic_names,
            metrics=self.metrics,
        )
        self.metrics.info.labels(
            PIPELINE_VERSION, self.tagger.taxonomy_version, self.tagger.model_version or "none"
        ).set(1)
        self.feeds = await bootstrap.make_feed_poller(s, self.redis, self.fetcher, self.publish_raw)
        self.feeds.metrics = self.metrics
        gc.freeze()  # start-up's objects (modules, the tagger) stay: out of full collections
        self._probe_task = asyncio.create_task(self._probe_loop(), name="probe-dependencies")
        try:
            await self.redis.ping()
        except Exception as exc:  # noqa: BLE001 - degraded, not down
            self.processor.redis_ok = False
            log.error("Redis unavailable at start (%s): publishing without dedup", exc)
        log.info(
            "worker ready: settings=%s taxonomy=%s model=%s",
            s.as_dict(),
            tagging[0].taxonomy_version,
            tagging[0].model_version or "none (rules only)",
        )

    async def stop(self) -> None:
        if self._probe_task is not None:
            self._probe_task.cancel()
        if self.extractor is not None:
            self.extractor.close()
        if self.fetcher is not None:
            await self.fetcher.close()
        if self.redis is not None:
            await self.redis.aclose()

    async def publish_raw(self, record: RawRecord) -> None:
        await self.sink.send(
            self.settings.topic_names.raw, record.record_id.encode(), record.to_json()
        )

    def health(self) -> dict[str, Any]:
        """What ``/health`` and ``/ready`` answer: the live checks (at most one probe
        interval old), ``status`` ok / starting / degraded, and the record counts."""
        p = self.processor
        snap = self.probes.snapshot()
        checks = snap["checks"]
        ready = snap["ready"] and p is not None
        uptime = time.time() - self.started_at
        if ready:
            self.ever_ready = True
            status = "ok"
        elif not self.ever_ready and uptime < STARTING_GRACE_S:
            status = "starting"
        else:
            status = "degraded"
        return {
            "status": status,
            "ready": ready,
            "redis": "ok" if checks["redis"]["ok"] else "unavailable",
            "checks": checks,
            "uptime_s": round(uptime, 1),
            "group": self.group(),
            "extraction": self.extractor.load() if hasattr(self.extractor, "load") else {},
            "stats": p.stats.as_dict() if p else {},
        }


class RetriedCoordinatorLookup(logging.Filter):
    """aiokafka logs the coordinator lookup that fails while a fresh broker loads its group
    coordinator ("GroupCoordinatorNotAvailableError") at ERROR, on every start, then retries
    and succeeds: that is INFO. Other coordinator errors keep their level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.ERROR
            and "GroupCoordinatorNotAvailable" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(RetriedCoordinatorLookup())


STARTING_GRACE_S = 60.0
"""Until the worker has been ready once (or for this long), not ready is "starting"."""


def create_app(settings: Settings | None = None) -> faust.App:
    s = settings or get_settings()
    app = faust.App(
        s.app_id,
        broker=[f"kafka://{hp.strip()}" for hp in s.kafka_bootstrap_servers.split(",")],
        broker_credentials=bootstrap.faust_credentials(s),
        store="memory://",
        datadir=str(s.data_dir),
        topic_partitions=s.topic_partitions,
        topic_replication_factor=s.topic_replication,
        key_serializer="raw",
        value_serializer="raw",
        web_host=s.web_host,
        web_port=s.web_port,
        web_bind=s.web_host,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_compression_type=s.compression_type,
        producer_max_request_size=s.kafka_max_message_bytes,
        broker_commit_every=50,
        broker_commit_interval=1.0,
        stream_wait_empty=True,
        stream_buffer_maxsize=s.stream_buffer_maxsize,
        # notice new or re-created topics within 30 s (aiokafka's default is 5 minutes)
        consumer_metadata_max_age_ms=30_000,
        # the consumer group: a killed member's partitions move after the session timeout
        # (faust's default, 60 s, would leave them unread for a minute)
        broker_session_timeout=s.kafka_session_timeout_s,
        broker_heartbeat_interval=s.kafka_heartbeat_interval_s,
        broker_rebalance_timeout=s.kafka_rebalance_timeout_s,
        # faust refuses a session timeout above the request timeout (90 s by default)
        broker_request_timeout=max(90.0, s.kafka_session_timeout_s),
        # None: faust's own text lines; json: one object per line (worker/logs.py)
        logging_config=faust_logging_config(s.log_format),
        Worker=BoundedShutdownWorker,
    )
    app.shutdown_timeout_s = s.shutdown_timeout_s  # type: ignore[attr-defined]
    app.log_format = s.log_format  # type: ignore[attr-defined]
    app.log_secrets = secret_values(s)  # type: ignore[attr-defined]
    rt = Runtime(s, app)
    app.runtime = rt  # type: ignore[attr-defined]

    names = s.topic_names
    # internal=True: faust creates the source topic before it subscribes (otherwise a
    # fresh cluster leaves the agent without partitions until the next metadata refresh)
    raw_topic = app.topic(
        names.raw, key_type=bytes, value_type=bytes, partitions=s.topic_partitions, internal=True
    )

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def _on_shutdown(app: faust.App, **kwargs: Any) -> None:
        await rt.stop()

    @app.task
    async def declare_topics() -> None:
        await rt.ensure_started()  # the runtime's tagger: the taxonomy is loaded once
        tagger = rt.tagger
        for name in names.all(tagger.topics):
            if name != names.raw:
                await rt.sink.topic(name).maybe_declare()

    # Several actors share the stream, so one slow page (a fetch that times out and is
    # retried) does not hold up the records behind it. faust commits an offset only when
    # every record before it was handled, so at-least-once still holds.
    # Several actors share the stream, so one slow page (a fetch that times out and is
    # retried) does not hold up the records behind it. Acks are manual (noack): a record
    # is acked only once its outcome is published, so a record cut short by a shutdown
    # or a crash is never committed and comes back (faust's default acks it on the way
    # out, which would lose it). faust commits an offset only when every record before
    # it was acked, so at-least-once holds with any concurrency.
    @app.agent(raw_topic, name="enrich", concurrency=s.agent_concurrency)
    async def enrich(stream: Any) -> None:
        processor = await rt.ensure_started()
        manual = stream.noack()
        async for event in manual.events():
            await handle_event(processor, event.value)
            await manual.ack(event)

    async def handle_event(processor: Processor, payload: bytes) -> None:
        try:
            record = RawRecord.from_json(payload)
        except (ValidationError, ValueError) as exc:
            await processor.handle_undecodable(payload, exc)
            return
        try:
            await processor.handle(record)
        except Exception as exc:  # a bug in our own code: the record must not vanish
            log.exception("unexpected error handling record %s", record.record_id)
            await processor.send_dead_letter(
                dead_letter(record, Failed("internal", exc, retriable=True), 1)
            )

    @app.timer(interval=s.poll_tick_s, on_leader=True)
    async def poll_feeds() -> None:
        # an exception out of a faust timer ends the worker: a tick logs and waits for the next
        try:
            await rt.ensure_started()
            if rt.feeds is not None:
                await rt.feeds.poll_due_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001
            log.exception("feed polling: this tick failed; the next one tries again")

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        """Liveness: 200 while the worker answers; the body says ok, starting or degraded."""
        return web.json(rt.health())

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        """Prometheus exposition (text format 0.0.4)."""
        return web.bytes(rt.metrics.render(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        """Readiness: 200 when it can do its job now (Kafka reachable, partitions assigned,
        Redis answering), else 503; the body lists each check with its state and age."""
        body = rt.health()
        return web.json(body, status=200 if body["ready"] else 503)

    return app


app = create_app()
