"""Live checks of what the worker depends on, for ``/health`` and ``/ready``.

A background loop probes every ``WORKER_PROBE_INTERVAL_S``: Redis answers a ``PING`` within a
bound, a Kafka bootstrap server accepts a TCP connection within a bound, and the consumer has
partitions assigned. Each check keeps its state, what it saw and when; a check whose last
probe is older than three intervals counts as failed (the loop itself is stuck). The views
read the snapshot, so a probe never slows an HTTP answer down, and what they say is at most
one interval old, never what the last record happened to see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

PROBE_TIMEOUT_S = 1.0


@dataclass(slots=True)
class Check:
    ok: bool | None = None  # None: not probed yet
    detail: str = "not checked yet"
    checked_at: float = 0.0
    changed_at: float = 0.0


def broker_addresses(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for part in bootstrap.split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":")
        out.append((host.strip("[]") or "127.0.0.1", int(port or 9092)))
    return out


async def tcp_reachable(addrs: Sequence[tuple[str, int]]) -> str:
    """An empty string when one of ``addrs`` accepts a connection within
    :data:`PROBE_TIMEOUT_S`, else why none did."""
    errors = []
    for host, port in addrs:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError) as exc:
            errors.append(f"{host}:{port}: {type(exc).__name__} {exc}".strip())
            continue
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return ""
    return "; ".join(errors) or "no bootstrap server configured"


class Probes:
    """The checks and the probe loop. ``redis_ping``: an awaitable PING (None: no Redis yet);
    ``assigned``: how many partitions the consumer holds."""

    def __init__(
        self,
        *,
        redis_ping: Callable[[], Awaitable[Any]] | None,
        brokers: Sequence[tuple[str, int]],
        assigned: Callable[[], int],
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis_ping = redis_ping
        self.brokers = list(brokers)
        self.assigned = assigned
        self.interval_s = interval_s
        self.clock = clock
        self.checks: dict[str, Check] = {"kafka": Check(), "partitions": Check(), "redis": Check()}
        self.log_change: Callable[[str, bool, str], None] | None = None

    def _set(self, name: str, ok: bool, detail: str) -> None:
        c = self.checks[name]
        now = self.clock()
        if c.ok is not ok:
            c.changed_at = now
            if self.log_change is not None and c.ok is not None:
                self.log_change(name, ok, detail)
        c.ok, c.detail, c.checked_at = ok, detail, now

    async def run_once(self) -> None:
        why = await tcp_reachable(self.brokers)
        self._set("kafka", not why, why or "a bootstrap server accepts connections")
        n = self.assigned()
        self._set("partitions", n > 0, f"{n} partition(s) assigned")
        if self.redis_ping is None:
            self._set("redis", False, "not connected yet")
        else:
            try:
                await asyncio.wait_for(self.redis_ping(), PROBE_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - any failure is "unavailable"
                self._set("redis", False, f"{type(exc).__name__}: {exc}")
            else:
                self._set("redis", True, "answers PING")

    def snapshot(self) -> dict[str, Any]:
        """Every check with its state and age; ``ready`` when all pass and are fresh."""
        now = self.clock()
        stale_after = 3 * self.interval_s
        checks = {}
        ready = True
        for name, c in self.checks.items():
            age = now - c.checked_at if c.checked_at else None
            fresh = age is not None and age <= stale_after
            ok = bool(c.ok) and fresh
            ready = ready and ok
            detail = c.detail if fresh or age is None else f"no probe for {age:.0f} s"
            checks[name] = {
                "ok": ok,
                "detail": detail,
                "age_s": round(age, 1) if age is not None else None,
                "since_s": round(now - c.changed_at, 1) if c.changed_at else None,
            }
        return {"ready": ready, "checks": checks}
