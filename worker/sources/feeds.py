"""Feeds: ``configs/feeds.yaml``, polling with state in Redis, entries to raw records.

The poller never gives up on a feed: every failure (network, HTTP status, unreadable
document, refused address, failed publish) is recorded in the feed's state and the feed is
polled again after an exponential back-off capped at ``poll_max_backoff_s``.

Delivery is at-least-once: ``publish`` is awaited for an entry before the entry is marked
seen, and the validators (ETag, Last-Modified) are stored only after every entry of the
document was published, so a failed publish is retried by the next poll.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from redis.asyncio import Redis
from redis.exceptions import RedisError
from w3lib.url import canonicalize_url

from worker.events import FeedEntry, RawRecord, Source
from worker.settings import Settings
from worker.sources.feedparse import FeedParseError, ParsedEntry, parse_feed
from worker.sources.feedstate import KEY_PREFIX, FeedState, FeedStateStore, SeenEntry
from worker.sources.http import ACCEPT_FEED, Fetcher, FetchError, HTTPStatusError, safe_url

log = logging.getLogger(__name__)

Publish = Callable[[RawRecord], Awaitable[None]]
PollStatus = Literal["ok", "not-modified", "error"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
JITTER = 0.10
SEEN_PRUNE_EVERY_S = 24 * 3600.0
DEFAULT_POLL_CONCURRENCY = 8

# --- configuration ------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``900``, ``"900"``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"1d"``."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = list(_DURATION_PART.finditer(text))
        if not text or not parts or "".join(p.group(0) for p in parts) != text:
            raise ValueError(f"not a duration: {value!r} (use seconds or e.g. '15m', '1h30m')")
        seconds = sum(float(p.group(1)) * _UNIT_S[p.group(2).lower()] for p in parts)
    else:
        raise ValueError(f"not a duration: {value!r}")
    if seconds <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return seconds


def _check_feed_url(url: str) -> str:
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"not a URL: {safe_url(url)!r}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"must be an http or https URL, got {safe_url(url)!r}")
    if not parts.hostname:
        raise ValueError(f"has no host: {safe_url(url)!r}")
    if any(c.isspace() for c in url):
        raise ValueError(f"contains whitespace: {safe_url(url)!r}")
    return url


class FeedConfig(BaseModel):
    """One entry of ``configs/feeds.yaml``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str = Field(pattern=NAME_PATTERN, description="unique; letters, digits, . _ -")
    url: str
    interval_s: float | None = Field(
        default=None,
        validation_alias=AliasChoices("interval", "interval_s"),
        description="seconds or '15m'; default: WORKER_POLL_INTERVAL_S",
    )
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("url", mode="before")
    @classmethod
    def _url(cls, v: Any) -> Any:
        return _check_feed_url(v) if isinstance(v, str) else v

    @field_validator("interval_s", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> Any:
        return None if v is None else parse_duration(v)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> Any:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise ValueError("must be a mapping of label: value")
        out = {}
        for key, value in v.items():
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"label {key!r}: value must be a string or number")
            out[str(key)] = str(value)
        return out


class FeedsConfigError(ValueError):
    """feeds.yaml (or a feed given on the command line) is invalid: every problem listed."""

    def __init__(self, source: str | Path, problems: list[str]) -> None:
        self.source = str(source)
        self.problems = problems
        if len(problems) == 1:
            msg = f"{source}: {problems[0]}"
        else:
            msg = f"{source}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(msg)


def _validation_problems(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "interval_s") or "(entry)"
        if err["loc"] and err["loc"][0] == "interval_s":
            loc = "interval"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch":
            msg = "must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        out.append(f"{where}: {loc}: {msg}")
    return out


def load_feeds(path: str | Path) -> list[FeedConfig]:
    """Read and validate feeds.yaml. Raises FeedsConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FeedsConfigError(path, ["file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedsConfigError(path, [f"cannot read: {exc}"]) from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FeedsConfigError(path, [f"not valid YAML: {exc}"]) from exc
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise FeedsConfigError(path, ["the top level must be a mapping with a 'feeds' list"])
    extra = sorted(str(k) for k in doc if k != "feeds")
    problems = [f"unknown top-level key {k!r} (only 'feeds' is allowed)" for k in extra]
    items = doc.get("feeds")
    if items is None:
        items = []
    if not isinstance(items, list):
        raise FeedsConfigError(path, [*problems, "'feeds' must be a list"])

    feeds: list[FeedConfig] = []
    by_name: dict[str, int] = {}
    by_url: dict[str, str] = {}
    for i, item in enumerate(items):
        where = f"feeds[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with name and url")
            continue
        if isinstance(item.get("name"), str):
            where += f" ({item['name']!r})"
        try:
            feed = FeedConfig.model_validate(item)
        except ValidationError as exc:
            problems.extend(_validation_problems(where, exc))
            continue
        if feed.name in by_name:
            problems.append(
                f"{where}: duplicate name {feed.name!r} (also feeds[{by_name[feed.name]}])"
            )
            continue
        if feed.url in by_url:
            problems.append(f"{where}: same url as feed {by_url[feed.url]!r}")
            continue
        by_name[feed.name] = i
        by_url[feed.url] = feed.name
        feeds.append(feed)
    if problems:
        raise FeedsConfigError(path, problems)
    return feeds


def feed_key(url: str) -> str:
    """What identifies a feed URL: w3lib's canonical form (lower-case host, sorted query, no
    fragment), so two spellings of one URL are one feed."""
    url = url.strip()
    try:
        return canonicalize_url(url)
    except ValueError:
        return url


def adhoc_feed(url: str, taken: Iterable[str] = ()) -> FeedConfig:
    """A feed given as a URL on the command line, named ``<host>-<digest>`` from the URL alone
    (the digest is of :func:`feed_key`; a longer one if a configured feed has that name).

    The name keys the feed's state and seen entries in Redis, so it must not depend on what
    else is polled with it or in which order: a name by position (``host``, ``host-2``...)
    gave a feed another feed's seen entries when the same URLs came in another order, and
    every entry was published again."""
    try:
        checked = _check_feed_url(url)
    except ValueError as exc:
        raise FeedsConfigError("command line", [str(exc)]) from exc
    host = (urlsplit(checked).hostname or "feed").lower()
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", host).strip("-._")[:80] or "feed"
    digest = hashlib.sha256(feed_key(checked).encode()).hexdigest()
    taken = set(taken)
    for size in (8, 16):
        name = f"{base}-{digest[:size]}"
        if name not in taken:
            return FeedConfig(name=name, url=checked)
    raise FeedsConfigError(
        "command line", [f"{safe_url(checked)}: its ad-hoc name {name!r} is a configured feed"]
    )


def select_feeds(settings: Settings, refs: Sequence[str]) -> list[FeedConfig]:
    """Feeds named in feeds.yaml, or URLs: a configured feed's URL (in any spelling with the
    same :func:`feed_key`) is that feed; any other URL becomes an ad-hoc feed
    (:func:`adhoc_feed`). A feed given twice is polled once. No refs: every configured feed."""
    path = settings.feeds_path
    configured = load_feeds(path) if path.exists() or not refs else []
    if not refs:
        return configured
    by_name = {f.name: f for f in configured}
    by_url = {feed_key(f.url): f for f in configured}
    out: list[FeedConfig] = []
    for ref in refs:
        if ref in by_name:
            feed = by_name[ref]
        elif "://" in ref:
            feed = by_url.get(feed_key(ref)) or adhoc_feed(ref, by_name)
        else:
            known = ", ".join(sorted(by_name)) or "none"
            raise FeedsConfigError(path, [f"unknown feed {ref!r} (configured: {known})"])
        if all(f.name != feed.name for f in out):
            out.append(feed)
    return out


# --- scheduling -------------------------------------------------------------------------


def cache_hints(headers: Mapping[str, str], now: float) -> tuple[float | None, float | None]:
    """(Cache-Control max-age minus Age, Expires minus Date) in seconds; None when absent,
    zero, or cancelled by no-cache/no-store. max-age wins over Expires (RFC 9111)."""
    cc = headers.get("Cache-Control") or ""
    directives = {}
    for part in cc.split(","):
        key, _, value = part.strip().partition("=")
        directives[key.strip().lower()] = value.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return None, None
    max_age: float | None = None
    if "max-age" in directives:
        try:
            max_age = float(int(directives["max-age"]))
        except ValueError:
            max_age = None
        if max_age is not None:
            try:
                max_age -= float(int(headers.get("Age") or 0))
            except ValueError:
                pass
            return (max_age if max_age > 0 else None), None
    expires = _http_date(headers.get("Expires"))
    if expires is None:
        return None, None
    base = _http_date(headers.get("Date")) or now
    delta = expires - base
    return None, (delta if delta > 0 else None)


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def compute_interval(
    *,
    configured: float | None,
    default: float,
    min_interval: float,
    max_interval: float,
    hints: Iterable[float | None] = (),
) -> float:
    """The feed's interval (else the default), raised by its own hints (max-age, Expires,
    <ttl>), within [min_interval, max(max_interval, the base interval)]."""
    base = configured or default
    interval = max([base, *(h for h in hints if h and h > 0)])
    upper = max(max_interval, base)
    return min(max(interval, min_interval), upper)


def backoff_delay(consecutive_errors: int, *, base: float, cap: float) -> float:
    """``base * 2**(n-1)``, capped: 1 error -> base, 2 -> 2*base, 3 -> 4*base..."""
    n = max(1, consecutive_errors)
    return min(cap, base * 2.0 ** min(n - 1, 60))


def jittered(seconds: float, rng: random.Random, spread: float = JITTER) -> float:
    return seconds * rng.uniform(1.0 - spread, 1.0 + spread)


def is_due(feed: FeedConfig, state: FeedState, now: float) -> bool:
    return (
        state.next_poll_at is None
        or state.next_poll_at <= now
        or (state.config_url is not None and state.config_url != feed.url)
    )


# --- entries to records -------------------------------------------------------------------


def build_record(feed: FeedConfig, entry: ParsedEntry, revision: int) -> RawRecord:
    full = entry.has_full_content
    return RawRecord(
        record_id=uuid.uuid4().hex,
        source=Source(kind="feed", name=feed.name, feed_url=feed.url),
        url=entry.link,
        content_type="html" if full else None,
        body=entry.content if full else None,
        entry=FeedEntry(
            entry_id=entry.entry_id,
            title=entry.title,
            summary=entry.summary,
            content=entry.content,
            authors=entry.authors,
            published_at=entry.published_at,
            updated_at=entry.updated_at,
            revision=revision,
        ),
    )


# --- polling ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PollResult:
    feed: str
    status: PollStatus
    new: int = 0
    updated: int = 0
    error: str | None = None
    next_poll_at: datetime | None = None
    url: str | None = None  # credentials stripped
    reason: str | None = None  # short error class: "http-500", "timeout", "malformed"...
    retriable: bool | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status != "error"

    def summary(self) -> str:
        """One line for the CLI."""
        if self.status == "error":
            return f"{self.feed}: error: {self.error}"
        if self.status == "not-modified":
            return f"{self.feed}: not modified"
        return f"{self.feed}: ok, {self.new} new, {self.updated} updated"


class _PublishFailed(Exception):
    pass


class FeedPoller:
    """Polls feeds, publishes new and changed entries, keeps each feed's state in Redis.

    ``publish`` is awaited for each new/changed entry before the entry is marked seen.
    ``clock`` (epoch seconds) and ``rng`` (jitter) can be given for tests.
    """

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        fetcher: Fetcher,
        publish: Publish,
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._store = FeedStateStore(redis, settings.topic_prefix + KEY_PREFIX)
        self._fetcher = fetcher
        self._publish = publish
        self._clock = clock
        self._rng = rng or random.Random()
        self._in_flight: set[str] = set()
        self.metrics: Any = None  # worker.metrics.Metrics: fetches by status class

    @property
    def store(self) -> FeedStateStore:
        return self._store

    # --- schedule -------------------------------------------------------------------------

    async def due_feeds(
        self, feeds: Sequence[FeedConfig], now: float | None = None
    ) -> list[FeedConfig]:
        """The feeds whose next poll time has come (or that were never polled)."""
        now = self._clock() if now is None else now
        states = await self._store.load_many(f.name for f in feeds)
        return [f for f in feeds if is_due(f, states[f.name], now)]

    async def poll_due(
        self,
        feeds: Sequence[FeedConfig],
        *,
        now: float | None = None,
        concurrency: int = DEFAULT_POLL_CONCURRENCY,
    ) -> list[PollResult]:
        """Poll the due feeds, at most ``concurrency`` at a time; skips feeds this poller
        is already polling. Never raises for a feed's failure."""
        due = [f for f in await self.due_feeds(feeds, now) if f.name not in self._in_flight]
        return await self.poll_many(due, concurrency=concurrency)

    async def poll_many(
        self,
        feeds: Sequence[FeedConfig],
        *,
        concurrency: int = DEFAULT_POLL_CONCURRENCY,
        on_start: Callable[[FeedConfig], None] | None = None,
        on_result: Callable[[PollResult], None] | None = None,
    ) -> list[PollResult]:
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(feed: FeedConfig) -> PollResult:
            async with sem:
                if on_start is not None:
                    on_start(feed)
                result = await self.poll(feed)
                if on_result is not None:
                    on_result(result)
                return result

        return list(await asyncio.gather(*(one(f) for f in feeds)))

    # --- one feed -------------------------------------------------------------------------

    async def poll(self, feed: FeedConfig) -> PollResult:
        """Poll one feed now. Never raises (except on cancellation): failures are results."""
        self._in_flight.add(feed.name)
        try:
            return await self._poll(feed)
        except RedisError as exc:
            log.error(
                "feed %s: state store unavailable: %s", feed.name, exc, extra={"feed": feed.name}
            )
            return self._unsaved_error(feed, f"state store unavailable: {exc}", "redis")
        except Exception as exc:
            log.exception(
                "feed %s: unexpected error while polling", feed.name, extra={"feed": feed.name}
            )
            return self._unsaved_error(
                feed, f"internal error: {type(exc).__name__}: {exc}", "internal"
            )
        finally:
            self._in_flight.discard(feed.name)

    async def _poll(self, feed: FeedConfig) -> PollResult:
        now = self._clock()
        state = await self._store.load(feed.name)
        if state.config_url != feed.url:
            # new feed, or its URL changed in feeds.yaml: forget the old URL's validators
            state.config_url = feed.url
            state.url = state.etag = state.last_modified = None
        url = state.url or feed.url
        state.last_poll_at = now

        try:
            res = await self._fetcher.get(
                url, etag=state.etag, last_modified=state.last_modified, accept=ACCEPT_FEED
            )
        except FetchError as exc:
            if self.metrics is not None:
                self.metrics.observe_fetch("feed", getattr(exc, "status", None))
            return await self._failed(
                feed,
                state,
                now,
                str(exc),
                reason=exc.reason,
                retriable=exc.retriable,
                retry_after=getattr(exc, "retry_after_s", None),
                http_status=exc.status if isinstance(exc, HTTPStatusError) else None,
            )

        if self.metrics is not None:
            self.metrics.observe_fetch("feed", res.status)
        if res.permanent_redirect_to and res.permanent_redirect_to != url:
            log.info(
                "feed %s moved permanently: %s -> %s",
                feed.name,
                safe_url(url),
                safe_url(res.permanent_redirect_to),
            )
            state.url = res.permanent_redirect_to

        if res.not_modified:
            return await self._succeeded(feed, state, now, res.headers, 304, "not-modified")

        try:
            parsed = await asyncio.to_thread(
                parse_feed, res.body, url=res.url, content_type=res.headers.get("Content-Type")
            )
        except FeedParseError as exc:
            return await self._failed(
                feed,
                state,
                now,
                str(exc),
                reason=exc.reason,
                retriable=False,
                http_status=res.status,
            )
        if parsed.warning:
            log.info("feed %s: flawed document accepted: %s", feed.name, parsed.warning)
        state.ttl_s = parsed.ttl_s

        try:
            new, updated = await self._publish_entries(feed, parsed.entries, now)
        except _PublishFailed as exc:
            return await self._failed(
                feed,
                state,
                now,
                str(exc),
                reason="publish",
                retriable=True,
                http_status=res.status,
            )
        await self._maybe_prune(feed, state, now)
        state.etag = res.headers.get("ETag")
        state.last_modified = res.headers.get("Last-Modified")
        return await self._succeeded(feed, state, now, res.headers, res.status, "ok", new, updated)

    async def _publish_entries(
        self, feed: FeedConfig, entries: list[ParsedEntry], now: float
    ) -> tuple[int, int]:
        unique: dict[str, ParsedEntry] = {}
        for entry in entries:
            unique.setdefault(entry.entry_id, entry)
        seen = await self._store.get_seen(feed.name, list(unique))
        current: dict[str, SeenEntry] = {}
        new = updated = 0
        # oldest first: feeds list newest first
        for entry in reversed(list(unique.values())):
            digest = entry.content_hash
            prev = seen.get(entry.entry_id)
            if prev is not None and prev.content_hash == digest:
                current[entry.entry_id] = SeenEntry(prev.revision, digest, now)
                continue
            revision = 1 if prev is None else prev.revision + 1
            record = build_record(feed, entry, revision)
            try:
                await self._publish(record)
            except Exception as exc:
                raise _PublishFailed(
                    f"publish failed for entry {entry.entry_id!r}: {type(exc).__name__}: {exc}"
                ) from exc
            mark = SeenEntry(revision, digest, now)
            await self._store.mark_seen(feed.name, entry.entry_id, mark)
            current[entry.entry_id] = mark
            if prev is None:
                new += 1
            else:
                updated += 1
        await self._store.touch_seen(feed.name, current)
        return new, updated

    async def _maybe_prune(self, feed: FeedConfig, state: FeedState, now: float) -> None:
        if state.pruned_at is not None and now - state.pruned_at < SEEN_PRUNE_EVERY_S:
            return
        horizon = now - self._settings.seen_ttl_days * 86400.0
        dropped = await self._store.prune_seen(feed.name, older_than=horizon)
        if dropped:
            log.info("feed %s: forgot %d entries not in the feed for a while", feed.name, dropped)
        state.pruned_at = now

    def _interval(self, feed: FeedConfig, hints: Iterable[float | None] = ()) -> float:
        s = self._settings
        return compute_interval(
            configured=feed.interval_s,
            default=s.poll_interval_s,
            min_interval=s.poll_min_interval_s,
            max_interval=s.poll_max_backoff_s,
            hints=hints,
        )

    async def _succeeded(
        self,
        feed: FeedConfig,
        state: FeedState,
        now: float,
        headers: Mapping[str, str],
        http_status: int,
        status: PollStatus,
        new: int = 0,
        updated: int = 0,
    ) -> PollResult:
        max_age, expires_in = cache_hints(headers, now)
        interval = self._interval(feed, (max_age, expires_in, state.ttl_s))
        delay = max(self._settings.poll_min_interval_s, jittered(interval, self._rng))
        state.interval_s = interval
        state.next_poll_at = now + delay
        state.last_status = status
        state.last_http_status = http_status
        state.last_success_at = now
        state.consecutive_errors = 0
        await self._store.save(state)
        log.info(
            "feed %s: %s, %d new, %d updated, next poll in %.0fs",
            feed.name,
            status,
            new,
            updated,
            delay,
            extra={"feed": feed.name, "http_status": http_status},
        )
        return PollResult(
            feed=feed.name,
            status=status,
            new=new,
            updated=updated,
            next_poll_at=_dt(state.next_poll_at),
            url=safe_url(state.url or feed.url),
            http_status=http_status,
        )

    async def _failed(
        self,
        feed: FeedConfig,
        state: FeedState,
        now: float,
        message: str,
        *,
        reason: str,
        retriable: bool,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> PollResult:
        s = self._settings
        state.consecutive_errors += 1
        interval = self._interval(feed, (state.ttl_s,))
        # a transient failure is retried soon, a lasting one at the feed's own pace;
        # both double per consecutive error up to the cap, and never stop
        base = s.poll_min_interval_s if retriable else interval
        cap = max(s.poll_max_backoff_s, interval)
        delay = jittered(backoff_delay(state.consecutive_errors, base=base, cap=cap), self._rng)
        delay = max(delay, s.poll_min_interval_s)
        if retry_after is not None:
            delay = max(delay, min(retry_after, cap))
        state.next_poll_at = now + delay
        state.last_status = "error"
        state.last_http_status = http_status
        state.last_error = message
        state.last_error_at = now
        await self._store.save(state)
        log.warning(
            "feed %s (%s): %s [%s, %s, error %d in a row, next poll in %.0fs]",
            feed.name,
            safe_url(state.url or feed.url),
            message,
            reason,
            "retriable" if retriable else "not retriable",
            state.consecutive_errors,
            delay,
            extra={
                "feed": feed.name,
                "url": safe_url(state.url or feed.url),
                "reason": reason,
                "http_status": http_status,
            },
        )
        return PollResult(
            feed=feed.name,
            status="error",
            error=message,
            next_poll_at=_dt(state.next_poll_at),
            url=safe_url(state.url or feed.url),
            reason=reason,
            retriable=retriable,
            http_status=http_status,
        )

    def _unsaved_error(self, feed: FeedConfig, message: str, reason: str) -> PollResult:
        return PollResult(
            feed=feed.name,
            status="error",
            error=message,
            next_poll_at=_dt(self._clock() + self._settings.poll_min_interval_s),
            url=safe_url(feed.url),
            reason=reason,
            retriable=True,
        )


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


# --- for the CLI ----------------------------------------------------------------------------


async def poll_once(
    settings: Settings,
    feed_refs: list[str],
    publish: Publish,
    redis: Redis,
    progress: Callable[[str], None] | None = None,
    *,
    concurrency: int = DEFAULT_POLL_CONCURRENCY,
) -> list[PollResult]:
    """``python -m worker poll [FEED...]``: poll the given feeds (names from feeds.yaml or
    URLs; none = all configured) once, now, whatever their schedule. Raises
    FeedsConfigError for an invalid feeds.yaml or an unknown name; feed failures are in the
    results (``status == "error"``)."""
    feeds = select_feeds(settings, feed_refs)
    async with Fetcher(settings) as fetcher:
        poller = FeedPoller(settings, redis, fetcher, publish)
        return await poller.poll_many(
            feeds,
            concurrency=concurrency,
            on_start=(lambda f: progress(f"polling {f.name} ({safe_url(f.url)})"))
            if progress
            else None,
            # the details of each result are the caller's final report: progress stays short
            on_result=(
                lambda r: progress(f"{r.feed}: {'failed' if r.status == 'error' else 'done'}")
            )
            if progress
            else None,
        )


async def feed_status(settings: Settings, redis: Redis) -> list[dict[str, Any]]:
    """``python -m worker feeds``: each configured feed (then any ad-hoc feed with state)
    with its state. Times are ISO 8601 UTC; URLs without credentials."""
    path = settings.feeds_path
    configured = load_feeds(path) if path.exists() else []
    store = FeedStateStore(redis, settings.topic_prefix + KEY_PREFIX)
    names = [f.name for f in configured]
    extra = [n for n in await store.names() if n not in set(names)]
    states = await store.load_many([*names, *extra])
    now = time.time()
    rows = []
    feeds_by_name = {f.name: f for f in configured}
    for name in [*names, *extra]:
        st = states[name]
        feed = feeds_by_name.get(name)
        url = st.url or (feed.url if feed else st.config_url) or ""
        rows.append(
            {
                "name": name,
                "configured": feed is not None,
                "url": safe_url(url),
                "labels": dict(feed.labels) if feed else {},
                "last_poll_at": _iso(st.last_poll_at),
                "last_status": st.last_status or "never polled",
                "last_http_status": st.last_http_status,
                "next_poll_at": _iso(st.next_poll_at),
                "due": feed is not None and is_due(feed, st, now),
                "consecutive_errors": st.consecutive_errors,
                "last_error": st.last_error,
                "last_error_at": _iso(st.last_error_at),
                "entries_seen": await store.count_seen(name),
            }
        )
    return rows
