"""Shared fixtures.

Real services, no fakes: a single-node Apache Kafka broker (KRaft) and a Redis server,
started once per test session by the project's own ``worker.devservices`` on free
loopback ports in a temp dir, and stopped at the end. They start lazily: only a test
that (indirectly) requests ``services`` pays for them, so ``tests/unit`` runs without.
If they cannot start, the requesting tests FAIL with the log tail; they never skip.

Everything under ``tests/integration`` gets the ``integration`` marker.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from worker import devservices

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------- services


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[devservices.Services]:
    """The session's Kafka broker + Redis (a ``devservices.Services``).

    ``.kafka_bootstrap``, ``.redis_url``, ``.env()`` (WORKER_* variables for a worker
    subprocess), ``.restart_kafka()`` / ``.stop_kafka()`` / ``.start_kafka()`` (same port,
    same log.dirs: data survives), the same for Redis (no persistence: data does not),
    ``graceful=False`` to SIGKILL, ``.log_tail()``. Tests that stop a service must start
    it again before they end: the rest of the session shares it.
    """
    state_dir = tmp_path_factory.mktemp("services")
    try:
        svc = devservices.start_services(state_dir, tie_to_parent=True)
    except devservices.DevServicesError as exc:
        devservices.stop_services(state_dir)
        pytest.fail(f"could not start Kafka/Redis for the tests: {exc}", pytrace=False)
    try:
        yield svc
    finally:
        devservices.stop_services(state_dir)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: devservices.Services) -> str:
    """``"127.0.0.1:<port>"`` of the session's broker."""
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def redis_url(services: devservices.Services) -> str:
    """``"redis://127.0.0.1:<port>/0"`` of the session's Redis."""
    return services.redis_url


# The client must live on the loop the test runs on: tests run on a function-scoped
# loop (pytest-asyncio's default), while async fixtures default to the session loop in
# pyproject.toml. A redis.asyncio connection made on another loop fails in the test.
@pytest_asyncio.fixture(loop_scope="function")
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A ``redis.asyncio.Redis`` (decode_responses=False) on an empty database:
    FLUSHDB before the test, closed after."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushdb()
        yield client
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- names


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-") or "t"


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name(prefix)`` -> ``"<prefix>.<test-name>.<12 hex>"``, new on every call.
    For group ids, app ids, Redis key prefixes, ... Valid as a Kafka topic name."""
    test = _slug(request.node.name)

    def make(prefix: str = "name") -> str:
        return f"{_slug(prefix, 30)}.{test}.{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def topic_factory(unique_name: Callable[[str], str]) -> Callable[..., str]:
    """``topic_factory(prefix="topic")`` -> a topic name no other test uses. It only
    names the topic: create it (admin client) or let the broker auto-create it."""

    def make(prefix: str = "topic") -> str:
        return unique_name(prefix)

    return make
