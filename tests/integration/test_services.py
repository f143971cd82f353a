"""The real local services the other integration tests stand on: Apache Kafka + Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from worker import devservices
from worker.devservices import PROJECT_ROOT, Services


async def _create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in items:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, group: str, n: int, wait_s: float = 30.0
) -> list[tuple[bytes | None, bytes | None]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[tuple[bytes | None, bytes | None]] = []
    try:
        async with asyncio.timeout(wait_s):
            while len(got) < n:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    got += [(r.key, r.value) for r in records]
    finally:
        await consumer.stop()
    return got


async def test_redis_answers_and_roundtrips(redis_client: aioredis.Redis) -> None:
    assert await redis_client.ping() is True
    assert await redis_client.dbsize() == 0  # flushed for this test
    await redis_client.set("seen:abc", "1", ex=60)
    assert await redis_client.get("seen:abc") == b"1"


async def test_kafka_roundtrip_with_aiokafka(
    kafka_bootstrap: str, topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = topic_factory("roundtrip")
    await _create_topic(kafka_bootstrap, topic)
    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(3)]
    await _produce(kafka_bootstrap, topic, sent)
    got = await _consume(kafka_bootstrap, topic, unique_name("group"), n=3)
    assert got == sent


async def test_kcat_lists_the_topic(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("kcat")
    await _create_topic(kafka_bootstrap, topic, partitions=2)
    proc = await asyncio.create_subprocess_exec(
        "kcat", "-b", kafka_bootstrap, "-L", "-J", "-t", topic,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    meta = json.loads(out)
    [listed] = [t for t in meta["topics"] if t["topic"] == topic]
    assert len(listed["partitions"]) == 2
    assert [b["name"] for b in meta["brokers"]] == [kafka_bootstrap]


def test_up_is_idempotent(services: Services) -> None:
    again = devservices.start_services(services.state_dir)
    assert (again.kafka_pid, again.redis_pid) == (services.kafka_pid, services.redis_pid)
    assert (again.kafka_bootstrap, again.redis_url) == (
        services.kafka_bootstrap,
        services.redis_url,
    )
    cli = subprocess.run(
        [sys.executable, "-m", "worker.devservices", "up", "--dir", str(services.state_dir)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert "kafka: already running, reused" in cli.stderr
    assert "redis: already running, reused" in cli.stderr
    assert f"WORKER_KAFKA_BOOTSTRAP_SERVERS={services.kafka_bootstrap}" in cli.stdout
    assert f"WORKER_REDIS_URL={services.redis_url}" in cli.stdout
    st = devservices.status(services.state_dir)
    assert st["kafka"]["pid"] == services.kafka_pid and st["kafka"]["answering"]
    assert st["redis"]["pid"] == services.redis_pid and st["redis"]["answering"]


async def test_broker_restart_on_the_same_port_keeps_messages(
    services: Services, topic_factory: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    bootstrap, old_pid = services.kafka_bootstrap, services.kafka_pid
    topic = topic_factory("durable")
    await _create_topic(bootstrap, topic)
    await _produce(bootstrap, topic, [(b"a1", b"before restart")])

    services.restart_kafka()  # SIGTERM (controlled shutdown), same port, same log.dirs

    assert services.kafka_pid != old_pid
    assert services.kafka_bootstrap == bootstrap
    got = await _consume(bootstrap, topic, unique_name("group"), n=1)
    assert got == [(b"a1", b"before restart")]


async def test_redis_killed_and_restarted_on_the_same_port(
    services: Services, redis_client: aioredis.Redis
) -> None:
    old_pid = services.redis_pid
    await redis_client.set("k", "v")
    services.stop_redis(graceful=False)  # SIGKILL: a crash
    assert not services.redis_running()
    services.start_redis()
    assert services.redis_pid != old_pid
    # A pooled connection from before the crash is dead: redis-py raises once on it
    # (callers must retry), then reconnects to the same URL.
    try:
        await redis_client.ping()
    except redis.exceptions.ConnectionError:
        pass
    assert await redis_client.ping() is True
    assert await redis_client.get("k") is None  # no persistence, by design
