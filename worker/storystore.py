"""The story index's state in Redis, shared by every worker of the group.

Keys (``<ns>`` is the topic prefix, so two deployments sharing a Redis stay apart), all
expiring with the window (``WORKER_STORY_WINDOW_H``) after their last write:

- ``<ns>story:doc:<article id>`` hash: when it was indexed (``ts`` ms, ``iso``), its two
  MinHash signatures (``t``, ``l``, 256 bytes each), ``n`` lead terms, countries ``c``,
  topics ``k``, publication time ``p``, the candidates it was compared with ``cand``, and
  once resolved its ``story`` and ``dup``;
- ``<ns>story:lsh:<bucket>`` sorted set: article id -> indexing time (ms); members older
  than the window are trimmed on every insert, so a busy bucket stays bounded;
- ``<ns>story:s:<story id>`` hash ``first_seen``; ``<ns>story:m:<story id>`` set of
  members (the size, idempotent under redelivery);
- ``<ns>story:a:<story id>:<topic>`` hash: the per-story alert state.

Atomicity: indexing (insert into the buckets, read who was there before) is one Lua
script, so of two articles racing on one new story exactly one sees the other. Resolving
(take the matched article's story, or open one) is a second script; when the matched
article is not resolved yet, the caller waits and asks again, and after a bound claims the
opening for it (HSET only when still unset), so every worker reads the same story id. The
alert state is read, decided in Python (:func:`worker.stories.decide_alert`) and written
in a WATCH/MULTI transaction, retried when another worker wrote in between.

The datasketch Redis storage for MinHashLSH was considered: it has no expiry (its
``keys`` table grows until entries are removed one by one), its async variant opens its own
connections, and insert and query are separate calls, so two workers racing on one story
could both miss each other. The buckets here are the same banding (datasketch's
parameters, :func:`worker.stories.lsh_params`), kept with plain Redis commands.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from worker.stories import (
    CANDIDATE_CAP,
    AlertDecision,
    AlertState,
    Choice,
    Profile,
    Resolution,
    Sketch,
)

BUCKET_READ_CAP = 200
"""At most the newest this many members of one bucket are read (a bucket of a common
wording can hold many; the newest are the likeliest to be the same story)."""

_INDEX = """
local p, aid = ARGV[1], ARGV[2]
local now, win, cap, bcap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6])
local doc = p .. 'doc:' .. aid
local function profiles(joined)
  -- the candidates' stored profiles with the ids, in one reply: no second round trip
  local out = {}
  for m in string.gmatch(joined, '[^,]+') do
    local row = redis.call('HMGET', p .. 'doc:' .. m, 'ts', 't', 'l', 'n', 'c', 'k', 'p')
    if row[1] and row[2] and row[3] then
      out[#out + 1] = {m, row[1], row[2], row[3], row[4], row[5], row[6], row[7]}
    end
  end
  return out
end
local old = redis.call('HGET', doc, 'cand')
if old then
  return profiles(old)
end
local cut = now - win
local hits, order = {}, {}
local nb = tonumber(ARGV[7])
for i = 1, nb do
  local key = p .. 'lsh:' .. ARGV[7 + i]
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. cut)
  local members = redis.call('ZREVRANGEBYSCORE', key, '+inf', cut, 'LIMIT', 0, bcap)
  for _, m in ipairs(members) do
    if m ~= aid then
      if hits[m] == nil then
        hits[m] = 0
        order[#order + 1] = m
      end
      hits[m] = hits[m] + 1
    end
  end
  redis.call('ZADD', key, now, aid)
  redis.call('PEXPIRE', key, win)
end
table.sort(order, function(a, b)
  if hits[a] ~= hits[b] then return hits[a] > hits[b] end
  return a < b
end)
local cand = {}
for i = 1, math.min(cap, #order) do cand[i] = order[i] end
local joined = table.concat(cand, ',')
local f = 8 + nb
redis.call('HSET', doc, 'ts', ARGV[3], 'iso', ARGV[f], 't', ARGV[f + 1], 'l', ARGV[f + 2],
  'n', ARGV[f + 3], 'c', ARGV[f + 4], 'k', ARGV[f + 5], 'p', ARGV[f + 6], 'cand', joined)
redis.call('PEXPIRE', doc, win)
return profiles(joined)
"""

_RESOLVE = """
local p, aid, match, dm = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local win, claim = tonumber(ARGV[5]), ARGV[6] == '1'
local doc = p .. 'doc:' .. aid
local story = redis.call('HGET', doc, 'story')
local dup = ''
if not story then
  story = aid
  local mine = redis.call('HGET', doc, 'iso')
  if match ~= '' and redis.call('EXISTS', p .. 'doc:' .. match) == 1 then
    local mdoc = p .. 'doc:' .. match
    local ms = redis.call('HGET', mdoc, 'story')
    if not ms then
      if not claim then
        return {'wait'}
      end
      -- its worker stopped between index and resolve: the matched article opens the story
      ms = match
      redis.call('HSET', mdoc, 'story', match, 'dup', '')
      redis.call('HSETNX', p .. 's:' .. match, 'first_seen', redis.call('HGET', mdoc, 'iso'))
      redis.call('SADD', p .. 'm:' .. match, match)
    end
    story = ms
    if dm ~= '' then
      local root = redis.call('HGET', p .. 'doc:' .. dm, 'dup')
      if root and root ~= '' then dup = root else dup = dm end
    end
  end
  redis.call('HSET', doc, 'story', story, 'dup', dup)
  if story == aid then
    redis.call('HSETNX', p .. 's:' .. story, 'first_seen', mine)
  end
else
  dup = redis.call('HGET', doc, 'dup') or ''
end
local skey, mkey = p .. 's:' .. story, p .. 'm:' .. story
redis.call('SADD', mkey, aid)
local first = redis.call('HGET', skey, 'first_seen')
if not first then
  first = redis.call('HGET', doc, 'iso')
  redis.call('HSET', skey, 'first_seen', first)
end
redis.call('PEXPIRE', skey, win)
redis.call('PEXPIRE', mkey, win)
redis.call('PEXPIRE', doc, win)
return {story, dup, first, redis.call('SCARD', mkey)}
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _csv(items: Any) -> str:
    return ",".join(sorted(items))


def _set(v: Any) -> frozenset[str]:
    s = _s(v) if v is not None else ""
    return frozenset(x for x in s.split(",") if x)


class RedisStoryBackend:
    """:class:`worker.stories.StoryBackend` in Redis (``redis.asyncio``)."""

    def __init__(self, redis: Any, namespace: str = "") -> None:
        self._redis = redis
        self.prefix = f"{namespace}story:"
        self._index = redis.register_script(_INDEX)
        self._resolve = redis.register_script(_RESOLVE)

    async def index(self, profile: Profile, bands: list[str], window_s: float) -> list[Profile]:
        text, lead = profile.sketch.pack()
        now_ms = int(profile.seen_at * 1000)
        args: list[Any] = [
            self.prefix,
            profile.article_id,
            now_ms,
            int(window_s * 1000),
            CANDIDATE_CAP,
            BUCKET_READ_CAP,
            len(bands),
            *bands,
            datetime.fromtimestamp(profile.seen_at, UTC).isoformat(),
            text,
            lead,
            profile.sketch.lead_terms,
            _csv(profile.countries),
            _csv(profile.topics),
            "" if profile.published_at is None else repr(profile.published_at),
        ]
        rows = await self._index(args=args)
        out = []
        for aid, ts, t, lead, n, c, k, p in rows:  # the script skips the expired
            out.append(
                Profile(
                    article_id=_s(aid),
                    sketch=Sketch.unpack(t, lead, int(n or 0)),
                    countries=_set(c),
                    topics=_set(k),
                    seen_at=int(ts) / 1000,
                    published_at=float(_s(p)) if p not in (None, b"", "") else None,
                )
            )
        return out

    async def resolve(
        self, article_id: str, choice: Choice, window_s: float, claim: bool
    ) -> Resolution | None:
        res = await self._resolve(
            args=[
                self.prefix,
                article_id,
                choice.story_of or "",
                choice.duplicate_of or "",
                int(window_s * 1000),
                "1" if claim else "0",
            ]
        )
        if len(res) == 1:  # ["wait"]
            return None
        story, dup, first, size = res
        return Resolution(
            story_id=_s(story),
            duplicate_of=_s(dup) or None,
            first_seen=datetime.fromisoformat(_s(first)),
            size=int(size),
        )

    async def alert_transaction(
        self,
        story_id: str,
        topic: str,
        decide: Callable[[AlertState | None], tuple[AlertDecision, AlertState | None]],
        window_s: float,
    ) -> AlertDecision:
        from redis.exceptions import WatchError

        key = f"{self.prefix}a:{story_id}:{topic}"
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(50):
                try:
                    await pipe.watch(key)
                    raw = await pipe.hgetall(key)
                    decision, new = decide(_alert_state(raw))
                    pipe.multi()
                    if new is not None:
                        pipe.delete(key)
                        pipe.hset(key, mapping=_alert_mapping(new))
                        pipe.pexpire(key, int(window_s * 1000))
                    await pipe.execute()
                    return decision
                except WatchError:
                    continue
        raise RuntimeError(f"alert state {key}: too much contention")


def _alert_state(raw: dict[Any, Any]) -> AlertState | None:
    if not raw:
        return None
    d = {_s(k): _s(v) for k, v in raw.items()}
    return AlertState(
        countries=_set(d.get("c")),
        topics=_set(d.get("k")),
        score=float(d.get("s", 0)),
        sent_at=float(d.get("at", 0)),
        sent={k[3:]: v for k, v in d.items() if k.startswith("by:")},
    )


def _alert_mapping(state: AlertState) -> dict[str, str]:
    out = {
        "c": _csv(state.countries),
        "k": _csv(state.topics),
        "s": repr(state.score),
        "at": repr(state.sent_at),
    }
    out.update({f"by:{k}": v for k, v in state.sent.items()})
    return out
