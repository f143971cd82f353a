"""Per-feed polling state in Redis, so a restart or a new leader continues where the last
one stopped.

Keys (feed names cannot contain ``:``, see :data:`worker.sources.feeds.NAME_PATTERN`):

- ``feed:<name>`` (hash): :class:`FeedState` — conditional-GET validators, the URL after a
  permanent redirect, schedule, last outcome, error count.
- ``feed:<name>:seen`` (hash): entry id -> ``"<revision> <content hash> <last seen epoch>"``.
  An entry is written here only after ``publish`` returned for it (at-least-once).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from redis.asyncio import Redis

KEY_PREFIX = "feed:"
SEEN_SUFFIX = ":seen"


@dataclass(slots=True)
class FeedState:
    name: str
    config_url: str | None = None  # the URL feeds.yaml gave when this state was written
    url: str | None = None  # where to poll now (differs after a permanent redirect)
    etag: str | None = None
    last_modified: str | None = None
    next_poll_at: float | None = None  # epoch seconds
    last_poll_at: float | None = None
    last_success_at: float | None = None
    last_status: str | None = None  # "ok" | "not-modified" | "error"
    last_http_status: int | None = None
    consecutive_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    ttl_s: float | None = None  # the feed's own <ttl>, kept for polls answered by a 304
    interval_s: float | None = None  # the interval last chosen, before jitter
    pruned_at: float | None = None  # last clean-up of the seen hash

    def to_redis(self) -> tuple[dict[str, str], list[str]]:
        """(fields to set, fields to delete)."""
        put: dict[str, str] = {}
        drop: list[str] = []
        for f in fields(self):
            if f.name == "name":
                continue
            value = getattr(self, f.name)
            if value is None:
                drop.append(f.name)
            else:
                put[f.name] = repr(value) if isinstance(value, float) else str(value)
        return put, drop

    @classmethod
    def from_redis(cls, name: str, raw: dict[Any, Any]) -> FeedState:
        data = {_s(k): _s(v) for k, v in raw.items()}
        state = cls(name=name)
        for f in fields(cls):
            if f.name == "name" or f.name not in data:
                continue
            text = data[f.name]
            value: Any
            if f.name == "consecutive_errors":
                value = int(text)
            elif f.name == "last_http_status":
                value = int(text)
            elif f.name.endswith(("_at", "_s")):
                value = float(text)
            else:
                value = text
            setattr(state, f.name, value)
        return state


@dataclass(frozen=True, slots=True)
class SeenEntry:
    revision: int
    content_hash: str
    last_seen: float

    def encode(self) -> str:
        return f"{self.revision} {self.content_hash} {int(self.last_seen)}"

    @classmethod
    def decode(cls, raw: Any) -> SeenEntry:
        rev, digest, last = _s(raw).split(" ", 2)
        return cls(int(rev), digest, float(last))


class FeedStateStore:
    """Reads and writes :class:`FeedState` and the seen-entry hash of each feed."""

    def __init__(self, redis: Redis, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix

    def key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def seen_key(self, name: str) -> str:
        return f"{self._prefix}{name}{SEEN_SUFFIX}"

    async def load(self, name: str) -> FeedState:
        return FeedState.from_redis(name, await self._redis.hgetall(self.key(name)))  # type: ignore[misc]

    async def load_many(self, names: Iterable[str]) -> dict[str, FeedState]:
        names = list(names)
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.key(name))
            raws = await pipe.execute()
        return {n: FeedState.from_redis(n, raw) for n, raw in zip(names, raws, strict=True)}

    async def save(self, state: FeedState) -> None:
        put, drop = state.to_redis()
        key = self.key(state.name)
        async with self._redis.pipeline(transaction=True) as pipe:
            if drop:
                pipe.hdel(key, *drop)
            if put:
                pipe.hset(key, mapping=put)
            await pipe.execute()

    async def get_seen(self, name: str, entry_ids: list[str]) -> dict[str, SeenEntry]:
        if not entry_ids:
            return {}
        raws = await self._redis.hmget(self.seen_key(name), entry_ids)  # type: ignore[misc]
        return {
            eid: SeenEntry.decode(raw)
            for eid, raw in zip(entry_ids, raws, strict=True)
            if raw is not None
        }

    async def mark_seen(self, name: str, entry_id: str, entry: SeenEntry) -> None:
        await self._redis.hset(self.seen_key(name), entry_id, entry.encode())  # type: ignore[misc]

    async def touch_seen(self, name: str, entries: dict[str, SeenEntry]) -> None:
        if entries:
            mapping = {k: v.encode() for k, v in entries.items()}
            await self._redis.hset(self.seen_key(name), mapping=mapping)  # type: ignore[misc]

    async def prune_seen(self, name: str, *, older_than: float) -> int:
        """Forget entries last seen in the feed before ``older_than`` (epoch seconds)."""
        key = self.seen_key(name)
        stale = [
            _s(field)
            async for field, raw in self._redis.hscan_iter(key, count=500)
            if SeenEntry.decode(raw).last_seen < older_than
        ]
        for i in range(0, len(stale), 500):
            await self._redis.hdel(key, *stale[i : i + 500])  # type: ignore[misc]
        return len(stale)

    async def count_seen(self, name: str) -> int:
        return int(await self._redis.hlen(self.seen_key(name)))  # type: ignore[misc]

    async def names(self) -> list[str]:
        """Every feed with state, configured or ad hoc."""
        out = []
        async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=500):
            rest = _s(key)[len(self._prefix) :]
            if ":" not in rest:
                out.append(rest)
        return sorted(out)


def _s(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
