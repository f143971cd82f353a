"""The dependency probes behind /health and /ready: live state, age, staleness."""

from __future__ import annotations

import asyncio
import socket

from worker.probes import Probes, broker_addresses, tcp_reachable


def test_broker_addresses() -> None:
    assert broker_addresses("a:1, b:2,[::1]:3") == [("a", 1), ("b", 2), ("::1", 3)]


async def test_tcp_reachable_on_a_real_listener_and_a_closed_port() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    try:
        assert await tcp_reachable([("127.0.0.1", closed), ("127.0.0.1", port)]) == ""
        why = await tcp_reachable([("127.0.0.1", closed)])
        assert f"127.0.0.1:{closed}" in why and "Connect" in why
    finally:
        server.close()
        await server.wait_closed()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_checks_follow_the_dependencies_and_go_stale() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis_up = True
    assigned = 0

    async def ping() -> bool:
        if not redis_up:
            raise ConnectionError("Connection refused")
        return True

    clock = Clock()
    changes: list[tuple[str, bool]] = []
    probes = Probes(
        redis_ping=ping,
        brokers=[("127.0.0.1", port)],
        assigned=lambda: assigned,
        interval_s=2.0,
        clock=clock,
    )
    probes.log_change = lambda name, ok, detail: changes.append((name, ok))
    try:
        snap = probes.snapshot()
        assert not snap["ready"] and snap["checks"]["redis"]["age_s"] is None
        await probes.run_once()
        snap = probes.snapshot()
        assert not snap["ready"]  # no partition assigned yet
        assert snap["checks"]["kafka"]["ok"] and snap["checks"]["redis"]["ok"]
        assigned = 4
        await probes.run_once()
        assert probes.snapshot()["ready"]

        redis_up = False
        clock.now += 2
        await probes.run_once()
        snap = probes.snapshot()
        assert not snap["ready"] and not snap["checks"]["redis"]["ok"]
        assert "Connection refused" in snap["checks"]["redis"]["detail"]
        assert snap["checks"]["redis"]["since_s"] == 0.0
        redis_up = True
        clock.now += 2
        await probes.run_once()
        assert probes.snapshot()["ready"]
        assert changes == [("partitions", True), ("redis", False), ("redis", True)]

        clock.now += 7  # no probe for more than three intervals: the loop is stuck
        snap = probes.snapshot()
        assert not snap["ready"] and "no probe for 7 s" in snap["checks"]["kafka"]["detail"]
    finally:
        server.close()
        await server.wait_closed()


def test_the_retried_coordinator_lookup_is_not_an_error() -> None:
    import logging

    from worker.app import RetriedCoordinatorLookup

    f = RetriedCoordinatorLookup()
    transient = logging.LogRecord(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "x", 1,
        "Group Coordinator Request failed: %s", ("[Error 15] GroupCoordinatorNotAvailableError",),
        None,
    )  # fmt: skip
    assert f.filter(transient) and transient.levelno == logging.INFO
    other = logging.LogRecord(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "x", 1,
        "Group Coordinator Request failed: %s", ("[Error 30] GroupAuthorizationFailedError",),
        None,
    )  # fmt: skip
    assert f.filter(other) and other.levelno == logging.ERROR
