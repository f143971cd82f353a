"""Plain aiokafka clients for the command line (replay, alerts, dlq): no faust app needed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from worker.bootstrap import kafka_client_kwargs
from worker.settings import Settings

CONNECT_TIMEOUT_S = 20.0


class BrokerUnavailable(Exception):
    """The broker did not answer: a clear message for the CLI, not a stack trace."""

    retriable = True


def _unavailable(settings: Settings, exc: BaseException) -> BrokerUnavailable:
    name = exc.__class__.__name__
    what = str(exc) or "timed out"
    what = what if what.startswith(name) else f"{name}: {what}"
    return BrokerUnavailable(
        f"cannot reach Kafka at {settings.kafka_bootstrap_servers} ({what}). Is it running? "
        "`make up` starts a local broker; WORKER_KAFKA_BOOTSTRAP_SERVERS points elsewhere."
    )


async def _start(client: Any, settings: Settings) -> None:
    try:
        await asyncio.wait_for(client.start(), CONNECT_TIMEOUT_S)
    except (KafkaConnectionError, KafkaError, OSError, TimeoutError) as exc:
        with contextlib.suppress(Exception):
            await client.close() if hasattr(client, "close") else await client.stop()
        raise _unavailable(settings, exc) from exc


async def ensure_topics(
    settings: Settings, names: Iterable[str], *, visible_within_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet and wait until the cluster's metadata shows
    every one with a leader for each partition (a consumer that subscribes earlier can be
    assigned nothing). -> the names created."""
    wanted = list(names)
    admin = AIOKafkaAdminClient(request_timeout_ms=15000, **kafka_client_kwargs(settings))
    await _start(admin, settings)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            n,
                            num_partitions=settings.topic_partitions,
                            replication_factor=settings.topic_replication,
                            topic_configs={
                                "max.message.bytes": str(settings.kafka_max_message_bytes)
                            },
                        )
                        for n in missing
                    ]
                )
        deadline = asyncio.get_running_loop().time() + visible_within_s
        while True:
            described = await admin.describe_topics(wanted)
            ready = {
                t["topic"]
                for t in described
                if t.get("error_code", 0) == 0
                and t.get("partitions")
                and all(p.get("leader", -1) >= 0 for p in t["partitions"])
            }
            if ready >= set(wanted):
                return missing
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailable(
                    f"topics not ready after {visible_within_s:.0f}s: "
                    f"{', '.join(sorted(set(wanted) - ready))}"
                )
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15000,
        linger_ms=5,
        compression_type=settings.compression_type,
        max_request_size=settings.kafka_max_message_bytes,
        **kafka_client_kwargs(settings),
    )
    await _start(prod, settings)
    try:
        yield prod
    finally:
        await prod.stop()


@contextlib.asynccontextmanager
async def consumer(
    settings: Settings, topics: list[str], *, from_beginning: bool, group_id: str | None = None
) -> AsyncIterator[AIOKafkaConsumer]:
    cons = AIOKafkaConsumer(
        *topics,
        group_id=group_id,
        enable_auto_commit=group_id is not None,
        auto_offset_reset="earliest" if from_beginning else "latest",
        metadata_max_age_ms=5000,
        **kafka_client_kwargs(settings),
    )
    await _start(cons, settings)
    try:
        yield cons
    finally:
        await cons.stop()


class TopicReader:
    """A topic read batch by batch, partition by partition, from a start position up to the
    end offsets it had when opened: memory stays bounded by one batch, however long the
    topic. With a consumer group, reading resumes where the group's committed offsets say
    (``resume``) and :meth:`commit` records how far it got."""

    def __init__(
        self,
        cons: AIOKafkaConsumer,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        before: int,
        max_records: int,
    ) -> None:
        self._cons = cons
        self.starts = starts
        self.ends = ends
        self.before = before
        """Messages before the start positions (read by an earlier run of this group)."""
        self._max_records = max_records

    @property
    def remaining(self) -> int:
        return sum(self.ends[tp] - self.starts[tp] for tp in self.starts)

    async def batches(self) -> AsyncIterator[tuple[TopicPartition, list[Any]]]:
        for tp in sorted(self.starts, key=lambda t: t.partition):
            end = self.ends[tp]
            if self.starts[tp] >= end:
                continue
            self._cons.assign([tp])
            self._cons.seek(tp, self.starts[tp])
            while await self._cons.position(tp) < end:
                got = await self._cons.getmany(tp, timeout_ms=1000, max_records=self._max_records)
                msgs = [m for m in got.get(tp, []) if m.offset < end]
                if msgs:
                    yield tp, msgs

    async def commit(self, tp: TopicPartition, next_offset: int) -> None:
        """Record that every message of ``tp`` before ``next_offset`` is done."""
        await self._cons.commit({tp: next_offset})


@contextlib.asynccontextmanager
async def topic_reader(
    settings: Settings,
    topic: str,
    *,
    group_id: str | None = None,
    resume: bool = False,
    max_records: int = 200,
    since_ms: int | None = None,
    starts: dict[TopicPartition, int] | None = None,
    ends: dict[TopicPartition, int] | None = None,
) -> AsyncIterator[TopicReader]:
    """A :class:`TopicReader` over ``topic``: from the beginning, or with ``resume`` (needs
    ``group_id``) from the group's committed offsets, or from the first message at or after
    ``since_ms`` (broker timestamps, offsets-for-times), or between given ``starts`` and
    ``ends`` (positions an earlier reader reported, to read the same range again)."""
    cons = AIOKafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=5000,
        **kafka_client_kwargs(settings),
    )
    await _start(cons, settings)
    try:
        parts = cons.partitions_for_topic(topic)
        if parts is None:
            await cons._client.force_metadata_update()  # noqa: SLF001 - no public refresh
            parts = cons.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        firsts = await cons.beginning_offsets(tps) if tps else {}
        if ends is None:
            ends = await cons.end_offsets(tps) if tps else {}
        if starts is not None:
            starts = {tp: starts.get(tp, ends[tp]) for tp in tps}
        else:
            starts = dict(firsts)
        if since_ms is not None and tps:
            found = await cons.offsets_for_times({tp: since_ms for tp in tps})
            for tp in tps:
                hit = found.get(tp)
                starts[tp] = hit.offset if hit is not None else ends[tp]
        if resume and group_id is not None:
            for tp in tps:
                committed = await cons.committed(tp)
                if committed is not None:
                    starts[tp] = min(max(committed, firsts[tp]), ends[tp])
        before = sum(starts[tp] - firsts[tp] for tp in tps)
        yield TopicReader(cons, starts, ends, before, max_records)
    finally:
        await cons.stop()


async def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """The end offset of every partition of ``topics`` now: what is already on them."""
    async with consumer(settings, [], from_beginning=True) as cons:
        await cons._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        tps = [
            TopicPartition(t, p) for t in topics for p in sorted(cons.partitions_for_topic(t) or ())
        ]
        if not tps:
            return {}
        ends = await cons.end_offsets(tps)
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}
