"""The command line: ``python -m worker COMMAND`` (or the ``diplomacy-worker`` script).

tag PATH...            enrich files locally, no services; JSON lines on stdout
eval FILE.jsonl        measure the tagger against gold labels (--cv K: grouped cross-validation)
train                  train the topic model on the labelled corpus (configs/topic-model.json)
worker                 the service (faust worker)
replay DIR             publish a folder of saved articles to articles.raw, then exit
poll [FEED...]         poll feeds once, publish new entries, exit
feeds                  list configured feeds and their polling state
alerts [TOPIC...]      print alerts as they arrive (a downstream consumer)
dlq [--replay]         list dead letters; replay them after a fix
health                 ask a running worker how it is
schemas                write configs/schemas/*.json and configs/asyncapi.yaml
run-local              the local demo: worker + replay seeds/ + alerts, until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import orjson

from worker.events import DeadLetter
from worker.settings import ROOT, Settings, SettingsError, get_settings, unknown_variables
from worker.tagging.config import TaxonomyError

log = logging.getLogger("worker.cli")


class CliError(Exception):
    """An error the user can act on: printed as one line, exit status 2."""


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _progress(i: int, n: int, label: str, status: str) -> None:
    width = len(str(n))
    print(f"[{i:>{width}}/{n}] {label} ... {status}", file=sys.stderr, flush=True)


# --- tag ------------------------------------------------------------------------------


def _explain(label: str, tagger: Any, event: Any) -> None:
    """``tag --explain``: why each topic is or is not tagged, on stderr."""
    info = tagger.explain(event.title, event.text, event.published_at)
    out = [f"{label}: model {info['model'] or '(none)'}; it reads {info['reads']}"]
    if info["veto_below"]:
        out[0] += f"; a rules' tag it gives under {info['veto_below']:g} is dropped"
    out.append(
        f"  {'topic':<22}{'tagged':<8}{'model':>6}{'nbrs':>6}{'threshold':>10}  rules' terms; why"
    )
    for r in info["topics"]:
        p = "-" if r["probability"] is None else f"{r['probability']:.2f}"
        nb = "-" if r.get("neighbours") is None else f"{r['neighbours']:.2f}"
        th = "-" if r["threshold"] is None else f"{r['threshold']:.2f}"
        terms = ", ".join(dict.fromkeys(r["rules"])) or "-"
        if len(terms) > 40:
            terms = terms[:39] + "…"
        out.append(
            f"  {r['topic']:<22}{'yes' if r['tagged'] else 'no':<8}{p:>6}{nb:>6}{th:>10}  "
            f"{terms}; {r['why']}"
        )
    if not info["topics"]:
        out.append("  (no topic tagged, found by the rules or near the model's threshold)")
    print("\n".join(out), file=sys.stderr, flush=True)


async def _tag(paths: list[str], settings: Settings, explain: bool = False) -> int:
    from worker.bootstrap import DirectExtractor, build_ports, make_story_index
    from worker.dedup import MemorySeenStore
    from worker.pipeline import Enriched, Failed, Skipped, enrich
    from worker.sources.seeds import SeedError, read_seed

    ports = build_ports(
        settings,
        seen=MemorySeenStore(),
        extractor=DirectExtractor(),  # one file at a time: no thread hop
        stories=make_story_index(settings),  # the files of one call cluster together
    )
    # what start-up built (modules, the taxonomy's automaton) lives as long as the process:
    # out of the collector's sight, so that its full passes over a page's garbage do not walk
    # it again each time (~1 % of the run over pages)
    gc.freeze()
    failures = 0
    for p in paths:
        path = Path(p)
        try:
            record = read_seed(path, source_kind="file", source_name=path.parent.name or ".")
        except SeedError as exc:
            _err(str(exc))
            failures += 1
            continue
        outcome = await enrich(record, ports)
        if isinstance(outcome, Enriched):
            sys.stdout.buffer.write(outcome.event.to_json() + b"\n")
            sys.stdout.flush()
            if explain:
                _explain(str(path), ports.tagger, outcome.event)
        elif isinstance(outcome, Failed):
            _err(f"{path}: {outcome.stage}: {outcome.error.__class__.__name__}: {outcome.message}")
            failures += 1
        elif isinstance(outcome, Skipped):  # pragma: no cover - no dedup store state here
            _err(f"{path}: skipped ({outcome.reason})")
    return 1 if failures else 0


# --- replay -----------------------------------------------------------------------------


async def _replay(folder: str, settings: Settings, quiet: bool) -> int:
    from aiokafka.errors import MessageSizeTooLargeError

    from worker import kafka_io
    from worker.bootstrap import load_tagging
    from worker.sources.seeds import SeedError, file_facts, list_seed_files, read_seed

    root = Path(folder)
    try:
        files, ignored = list_seed_files(root)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise CliError(str(exc)) from exc
    tagger, _ = load_tagging(settings)
    await kafka_io.ensure_topics(settings, settings.topic_names.all(tagger.topics))
    counts: Counter[str] = Counter()
    started = time.monotonic()
    source_name = os.path.basename(os.path.abspath(folder))  # noqa: ASYNC240 - no I/O

    async def dead(prod: Any, i: int, path: Path, record_id: str, reason: str, msg: str) -> None:
        """A file that does not reach articles.raw: a dead letter with its reason."""
        letter = DeadLetter(
            record_id=record_id,
            stage="source",
            error_class=reason,
            message=msg,
            retriable=False,
            attempts=1,
            original={**file_facts(path), "source": {"kind": "seed", "name": root.name}},
        )
        await prod.send_and_wait(
            settings.topic_names.dlq, letter.to_json(), key=letter.record_id.encode()
        )
        counts["dead-lettered"] += 1
        if not quiet:
            _progress(i, len(files), path.name, f"dead letter ({reason})")

    async with kafka_io.producer(settings) as prod:
        for i, path in enumerate(files, 1):
            try:
                record = read_seed(path, source_kind="seed", source_name=source_name)
            except SeedError as exc:
                await dead(prod, i, path, f"file:{path.name}", exc.reason, str(exc))
                continue
            try:
                await prod.send_and_wait(
                    settings.topic_names.raw, record.to_json(), key=record.record_id.encode()
                )
            except MessageSizeTooLargeError as exc:
                # over WORKER_KAFKA_MAX_MESSAGE_BYTES (or the topic's max.message.bytes): a
                # dead letter with its reason, and the replay goes on with the next file
                message = (
                    f"record over the {settings.kafka_max_message_bytes}-byte limit "
                    f"(WORKER_KAFKA_MAX_MESSAGE_BYTES): {exc}"
                )
                await dead(prod, i, path, record.record_id, "too-large", message)
                continue
            counts["published"] += 1
            if not quiet:
                _progress(i, len(files), path.name, f"published {record.content_type}")
    took = time.monotonic() - started
    print(
        f"replayed {root}: {counts['published']} published to {settings.topic_names.raw}, "
        f"{counts['dead-lettered']} dead-lettered to {settings.topic_names.dlq}, "
        f"{len(ignored)} ignored (not an article format) in {took:.1f}s",
        file=sys.stderr,
    )
    return 1 if counts["dead-lettered"] else 0


# --- alerts -----------------------------------------------------------------------------


def format_alert(topic: str, alert: dict[str, Any]) -> str:
    when = alert.get("published_at") or "?"
    countries = ",".join(alert.get("countries") or []) or "-"
    head = (
        f"[{alert.get('topic', topic)} {alert.get('score', 0):.2f}] {alert.get('title')!s}"
        f"  ({countries}; {when})"
    )
    lines = [head]
    if alert.get("url"):
        lines.append(f"    {alert['url']}")
    for sentence in (alert.get("evidence") or [])[:3]:
        lines.append(f"    > {sentence}")
    return "\n".join(lines)


def _added(alert: dict[str, Any]) -> str:
    parts = [f"+{c}" for c in alert.get("new_countries") or []]
    parts += [f"+{t}" for t in alert.get("new_topics") or []]
    if alert.get("previous_score") is not None:
        parts.append(f"score {alert['previous_score']:.2f}->{alert.get('score', 0):.2f}")
    return ", ".join(parts) or "new"


class StoryGroups:
    """Prints alerts grouped by story: a story's first alert under a ``story`` line, its
    updates indented beneath with what they add; alerts not gated by story as before."""

    def __init__(self) -> None:
        self.stories: dict[tuple[str, str], dict[str, Any]] = {}

    def format(self, topic: str, alert: dict[str, Any]) -> str:
        story = alert.get("story_id")
        kind = alert.get("kind") or "article"
        if not story or kind == "article":
            return format_alert(topic, alert)
        key = (story, alert.get("topic", topic))
        group = self.stories.get(key)
        if group is None or kind == "first":
            self.stories[key] = {"title": alert.get("title"), "updates": 0}
            return f"story {story[:12]} ({alert.get('topic', topic)}):\n" + "\n".join(
                "  " + line for line in format_alert(topic, alert).splitlines()
            )
        group["updates"] += 1
        body = format_alert(topic, alert).splitlines()
        first = f"  update {group['updates']} to story {story[:12]} ({_added(alert)}): " + body[0]
        return "\n".join([first, *("    " + line for line in body[1:])])

    def summary(self) -> str | None:
        if not self.stories:
            return None
        rows = [
            f"  {sid[:12]} {topic}: {g['title']!s} (first + {g['updates']} update(s))"
            for (sid, topic), g in self.stories.items()
        ]
        return f"{len(self.stories)} story alert group(s):\n" + "\n".join(rows)


async def _alerts(
    ids: list[str],
    settings: Settings,
    *,
    from_beginning: bool,
    as_json: bool,
    max_messages: int | None,
    timeout_s: float | None,
    skip_before: dict[tuple[str, int], int] | None = None,
    every: tuple[float, Callable[[], Awaitable[None]]] | None = None,
) -> int:
    """Print alerts as they arrive; ``skip_before``: per partition, the offset before which
    alerts are old (``run-local`` shows only the ones its own replay caused); ``every``:
    (seconds, callback) awaited at once and then at that pace between batches
    (``run-local``'s feed failures)."""
    from worker import kafka_io
    from worker.bootstrap import load_tagging

    tagger, _ = load_tagging(settings)
    known = list(tagger.topics)
    unknown = [t for t in ids if t not in known]
    if unknown:
        raise CliError(f"unknown topic id(s): {', '.join(unknown)}; known: {', '.join(known)}")
    names = [settings.topic_names.alert(t) for t in (ids or known)]
    await kafka_io.ensure_topics(settings, names)
    seen = 0
    deadline = time.monotonic() + timeout_s if timeout_s else None
    if not as_json:
        print(
            f"listening on {len(names)} alert topic(s) at {settings.kafka_bootstrap_servers}"
            f"{' from the beginning' if from_beginning and not skip_before else ''}; "
            "Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
    groups = StoryGroups()
    next_call = time.monotonic()
    async with kafka_io.consumer(settings, names, from_beginning=from_beginning) as cons:
        while max_messages is None or seen < max_messages:
            if deadline and time.monotonic() > deadline:
                break
            if every is not None and time.monotonic() >= next_call:
                await every[1]()
                next_call = time.monotonic() + every[0]
            batch = await cons.getmany(timeout_ms=500)
            for _tp, msgs in batch.items():
                for msg in msgs:
                    if skip_before and msg.offset < skip_before.get((msg.topic, msg.partition), 0):
                        continue
                    seen += 1
                    if as_json:
                        sys.stdout.buffer.write(msg.value + b"\n")
                    else:
                        print(groups.format(msg.topic, orjson.loads(msg.value)))
                    sys.stdout.flush()
    summary = groups.summary()
    if summary and not as_json:
        print(summary, file=sys.stderr)
    return 0


# --- retag --------------------------------------------------------------------------------


def parse_since(value: str) -> datetime:
    """An ISO 8601 date or time; UTC when it has no offset."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f"--since {value!r}: not an ISO 8601 date or time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


async def _retag(settings: Settings, since: str | None, topic: str | None, dry_run: bool) -> int:
    from worker import bootstrap
    from worker.dedup import RedisSeenStore
    from worker.retag import print_summary, retag

    tagger, rules = bootstrap.load_tagging(settings)
    if topic is not None and topic not in tagger.topics:
        raise CliError(f"--topic {topic!r}: not a topic ({', '.join(tagger.topics)})")
    redis = bootstrap.make_redis(settings)
    store = RedisSeenStore(redis, settings.seen_ttl_days * 86400, settings.topic_prefix)
    try:
        summary = await retag(
            settings,
            tagger,
            rules,
            since=parse_since(since) if since else None,
            only_topic=topic,
            dry_run=dry_run,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
            redis=None if dry_run else store,
        )
    finally:
        await redis.aclose()
    print_summary(summary, dry_run)
    return 0


# --- dlq ----------------------------------------------------------------------------------


def dlq_replay_group(settings: Settings, stage: str | None) -> str:
    """The consumer group whose committed offsets on articles.dlq say how far ``dlq
    --replay`` got (one per ``--stage``, so replaying one stage does not pass over the
    letters of the others)."""
    return f"{settings.app_id}.dlq-replay" + (f".{stage}" if stage else "")


def _describe_letter(d: dict[str, Any]) -> str:
    orig = d.get("original") or {}
    what = orig.get("url") or orig.get("path") or d.get("record_id")
    return (
        f"{d.get('failed_at', '?')}  {d.get('stage'):<7} {d.get('error_class')}: "
        f"{d.get('message')}  [{what}] attempts={d.get('attempts')}"
    )


async def _dlq(
    settings: Settings,
    *,
    replay: bool,
    stage: str | None,
    as_json: bool,
    replay_all: bool = False,
    max_records: int = 200,
) -> int:
    """List dead letters, or replay their original records to articles.raw. Streams: one
    batch of letters in memory at a time. A replay commits its position under
    :func:`dlq_replay_group` after each batch is acknowledged, so the next replay starts
    after the letters this one sent (``--all``: from the beginning again)."""
    from worker import kafka_io
    from worker.events import RawRecord

    topic, raw_topic = settings.topic_names.dlq, settings.topic_names.raw
    listed = replayed = not_replayable = 0
    group = dlq_replay_group(settings, stage) if replay else None
    async with contextlib.AsyncExitStack() as stack:
        reader = await stack.enter_async_context(
            kafka_io.topic_reader(
                settings,
                topic,
                group_id=group,
                resume=replay and not replay_all,
                max_records=max_records,
            )
        )
        prod = await stack.enter_async_context(kafka_io.producer(settings)) if replay else None
        async for tp, msgs in reader.batches():
            pending = []
            for m in msgs:
                try:
                    d = orjson.loads(m.value)
                except orjson.JSONDecodeError:
                    d = {"stage": "?", "message": "not a dead letter (invalid JSON)"}
                if stage and d.get("stage") != stage:
                    continue
                listed += 1
                print(orjson.dumps(d).decode() if as_json else _describe_letter(d), flush=True)
                if prod is None:
                    continue
                try:
                    rec = RawRecord.model_validate(d.get("original") or {})
                except Exception:  # noqa: BLE001 - not a raw record (e.g. an unreadable file)
                    not_replayable += 1
                    continue
                rec = rec.model_copy(update={"attempt": rec.attempt + 1})
                pending.append(
                    await prod.send(raw_topic, rec.to_json(), key=rec.record_id.encode())
                )
            if prod is not None:
                await asyncio.gather(*pending)  # acknowledged, then the position moves on
                replayed += len(pending)
                await reader.commit(tp, msgs[-1].offset + 1)
    print(f"{listed} dead letter(s) on {topic}", file=sys.stderr)
    if replay:
        earlier = (
            f"; {reader.before} seen by an earlier replay were passed over "
            "(--all replays them again)"
            if reader.before
            else ""
        )
        print(
            f"replayed {replayed} record(s) to {raw_topic}; {not_replayable} could not be "
            "replayed (no raw record: fix the source file and replay the folder)" + earlier,
            file=sys.stderr,
        )
    return 0


# --- health -------------------------------------------------------------------------------


def _health(settings: Settings, ready: bool = False) -> int:
    import urllib.error
    import urllib.request

    url = f"http://{settings.web_host}:{settings.web_port}/{'ready' if ready else 'health'}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback, ours
            body = orjson.loads(resp.read(1_000_000))
    except urllib.error.HTTPError as exc:  # /ready answers 503 with the checks
        body = orjson.loads(exc.read(1_000_000))
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"no worker answering at {url}: {exc}") from exc
    print(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())
    return 0 if body.get("status") == "ok" else 1


# --- worker / run-local -----------------------------------------------------------------


def _run_worker(settings: Settings, loglevel: str) -> int:
    """Create every topic first and wait until the cluster shows them (so the consumer is
    assigned the source topic at once), then hand over to faust, whose exit status is
    never 0 after a crash (``worker.app.BoundedShutdownWorker``)."""
    from worker.bootstrap import load_tagging
    from worker.kafka_io import BrokerUnavailable, ensure_topics
    from worker.sources.feeds import FeedsConfigError, load_feeds

    tagger, _ = load_tagging(settings)
    # feeds.yaml too is checked before anything starts: a bad file stops the worker here,
    # every problem listed (inside faust it only crashed the agent, which faust restarted)
    if settings.feeds_path.exists():
        try:
            load_feeds(settings.feeds_path)
        except FeedsConfigError as exc:
            raise CliError(str(exc)) from exc
    deadline = time.monotonic() + settings.startup_wait_s
    while True:
        try:
            asyncio.run(ensure_topics(settings, settings.topic_names.all(tagger.topics)))
            break
        except BrokerUnavailable as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for Kafka: %s", exc)
            time.sleep(2)
    from worker.app import app

    # -q in JSON: no banner and no spinner, so that every line of the log is an object
    quiet = ["-q"] if settings.log_format == "json" else []
    sys.argv = ["worker", *quiet, "worker", "-l", loglevel]
    app.main()  # raises SystemExit with the worker's exit status
    return 0  # pragma: no cover - app.main() never returns


def _wait_healthy(
    settings: Settings, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120.0
) -> None:
    import urllib.request

    url = f"http://{settings.web_host}:{settings.web_port}/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            raise CliError("the worker exited during start-up:\n" + "\n".join(tail))
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.5)
    raise CliError(f"the worker did not answer on {url} within {timeout_s:.0f}s; see {log_path}")


def _report_handled(settings: Settings, proc: subprocess.Popen[bytes], wait_s: float = 60) -> None:
    """After the replay: once the worker has handled what it received (or after ``wait_s``),
    say what became of it, so a second run's duplicates are not mistaken for silence."""
    import urllib.request

    url = f"http://{settings.web_host}:{settings.web_port}/health"
    deadline = time.monotonic() + wait_s
    stats: dict[str, Any] = {}
    last = -1
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback, ours
                stats = orjson.loads(resp.read(1_000_000)).get("stats") or {}
        except OSError:
            stats = {}
        received, handled = stats.get("received", 0), stats.get("handled", 0)
        if received and handled >= received and received == last:
            break
        last = received
        time.sleep(1.0)
    if not stats:
        return
    skipped = sum((stats.get("skipped") or {}).values())
    dead = sum((stats.get("dead_letters") or {}).values())
    print(
        f"the worker handled {stats.get('handled', 0)} record(s): "
        f"{stats.get('enriched', 0)} enriched, {skipped} skipped as already seen, "
        f"{dead} dead-lettered",
        file=sys.stderr,
    )


FEED_CHECK_EVERY_S = 5.0
"""How often ``run-local`` reads the feeds' state for failures to show."""


class FeedFailures:
    """``run-local``'s view of feed polling: one line when a configured feed fails to poll
    (unreachable, an HTTP error, not a feed), one when it is polled fine again, nothing in
    between however often it is retried; reads the state the worker keeps in Redis
    (``python -m worker feeds`` shows the same)."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.state_error: str | None = None

    def changes(self, rows: list[dict[str, Any]]) -> list[str]:
        lines = []
        for r in rows:
            name = r["name"]
            if not r.get("configured", True):
                continue
            if r.get("last_status") == "error":
                if name not in self.failing:
                    self.failing.add(name)
                    n = r.get("consecutive_errors") or 1
                    nxt = (r.get("next_poll_at") or "")[11:19]
                    lines.append(
                        f"feed {name} failed to poll: {r.get('last_error') or '?'} "
                        f"({n} error(s) in a row; next try {nxt or 'soon'} UTC; "
                        "`python -m worker feeds` for all)"
                    )
            elif name in self.failing and r.get("last_status") in ("ok", "not-modified"):
                self.failing.discard(name)
                lines.append(f"feed {name} is polled fine again")
        return lines

    def unreadable(self, exc: BaseException) -> list[str]:
        """The state cannot be read (Redis down, a bad feeds.yaml): said once, until it can."""
        why = f"{type(exc).__name__}: {exc}"
        if self.state_error is not None:
            return []
        self.state_error = why
        return [f"cannot read the feeds' state to show their failures ({why})"]

    async def check(self, settings: Settings, redis: Any) -> list[str]:
        from worker.sources.feeds import feed_status

        try:
            rows = await feed_status(settings, redis)
        except Exception as exc:  # noqa: BLE001 - shown once; the alerts go on
            return self.unreadable(exc)
        self.state_error = None
        return self.changes(rows)


def _run_local(settings: Settings, seeds: str) -> int:
    from worker.bootstrap import load_tagging
    from worker.kafka_io import ensure_topics

    tagger, _ = load_tagging(settings)
    asyncio.run(ensure_topics(settings, settings.topic_names.all(tagger.topics)))
    log_dir = ROOT / ".services"
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / "worker.log"
    print(f"starting the worker (log: {log_path}) ...", file=sys.stderr, flush=True)
    with log_path.open("ab") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "worker"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _terminate(signum: int, frame: Any) -> None:  # SIGTERM/SIGHUP: stop like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        _wait_healthy(settings, proc, log_path)
        from worker.kafka_io import end_offsets

        alert_topics = [settings.topic_names.alert(t) for t in tagger.topics]
        before = asyncio.run(end_offsets(settings, alert_topics))
        print(f"worker up (pid {proc.pid}); replaying {seeds} ...", file=sys.stderr, flush=True)
        asyncio.run(_replay(seeds, settings, quiet=False))
        _report_handled(settings, proc)
        old = sum(before.values())
        if old:
            print(
                f"{old} alert(s) from earlier runs stay on the topics "
                "(`python -m worker alerts --from-beginning` shows them); new ones below.",
                file=sys.stderr,
            )
        print(
            "alerts (Ctrl-C stops the worker; `make down` stops Kafka and Redis); "
            "feeds that fail to poll are named once:",
            file=sys.stderr,
            flush=True,
        )
        asyncio.run(_alerts_and_feed_failures(settings, before))
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        print("worker stopped.", file=sys.stderr)
    return 0


async def _alerts_and_feed_failures(settings: Settings, before: dict[tuple[str, int], int]) -> None:
    from worker.bootstrap import make_redis

    redis = make_redis(settings)
    failures = FeedFailures()

    async def show_feed_failures() -> None:
        for line in await failures.check(settings, redis):
            print(line, file=sys.stderr, flush=True)

    try:
        await _alerts(
            [],
            settings,
            from_beginning=True,
            as_json=False,
            max_messages=None,
            timeout_s=None,
            skip_before=before,
            every=(FEED_CHECK_EVERY_S, show_feed_failures),
        )
    finally:
        await redis.aclose()


# --- feeds / poll ---------------------------------------------------------------------------


async def _feeds(settings: Settings) -> int:
    from worker.bootstrap import make_redis
    from worker.sources.feeds import FeedsConfigError, feed_status

    redis = make_redis(settings)
    try:
        rows = await feed_status(settings, redis)
    except FeedsConfigError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await redis.aclose()
    for r in rows:
        print(
            f"{r['name']:<24} {r.get('last_status') or 'never polled':<13} "
            f"last={r.get('last_poll_at') or '-'} next={r.get('next_poll_at') or 'due'} "
            f"errors={r.get('consecutive_errors', 0)} {r['url']}"
            + (f"\n    last error: {r['last_error']}" if r.get("last_error") else "")
        )
    print(f"{len(rows)} feed(s) in {settings.feeds_path}", file=sys.stderr)
    return 0


async def _poll(settings: Settings, refs: list[str]) -> int:
    from worker import kafka_io
    from worker.bootstrap import load_tagging, make_redis
    from worker.sources.feeds import FeedsConfigError, poll_once

    tagger, _ = load_tagging(settings)
    await kafka_io.ensure_topics(settings, settings.topic_names.all(tagger.topics))
    # each failure is reported once, in the FAILED line below (the poller also logs it,
    # which is what the service's log needs, and here only repeats it)
    logging.getLogger("worker.sources.feeds").setLevel(logging.ERROR)
    redis = make_redis(settings)
    try:
        async with kafka_io.producer(settings) as prod:

            async def publish(record: Any) -> None:
                await prod.send_and_wait(
                    settings.topic_names.raw, record.to_json(), key=record.record_id.encode()
                )

            def progress(msg: str) -> None:
                print(msg, file=sys.stderr, flush=True)

            results = await poll_once(settings, refs, publish, redis, progress)
    except FeedsConfigError as exc:
        raise CliError(str(exc)) from exc
    finally:
        await redis.aclose()
    failed = [r for r in results if r.status == "error"]
    for r in results:
        print(r.summary() if r.ok else f"FAILED {r.summary()}")
    print(
        f"polled {len(results)} feed(s): {len(results) - len(failed)} ok, {len(failed)} failed",
        file=sys.stderr,
    )
    return 1 if failed else 0


# --- main -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m worker",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    s = sub.add_parser("tag", help="enrich files locally (no services); JSON lines out")
    s.add_argument("paths", nargs="+", metavar="PATH")
    s.add_argument(
        "--explain",
        action="store_true",
        help="also say on stderr why each topic is or is not tagged (rules' terms, the "
        "model's probability and threshold)",
    )

    s = sub.add_parser("eval", help="measure the tagger on a labelled JSONL file (--cv K)")
    s.add_argument("args", nargs=argparse.REMAINDER)
    s = sub.add_parser("train", help="train the topic model on the labelled corpus")
    s.add_argument("args", nargs=argparse.REMAINDER)

    s = sub.add_parser("worker", help="run the service (faust worker)")
    s.add_argument("-l", "--loglevel", default="info")

    s = sub.add_parser("replay", help="publish a folder of saved articles, then exit")
    s.add_argument("folder", metavar="DIR")
    s.add_argument("-q", "--quiet", action="store_true", help="no per-file progress")

    s = sub.add_parser("poll", help="poll feeds once (names from feeds.yaml, or URLs)")
    s.add_argument("feeds", nargs="*", metavar="FEED")

    sub.add_parser("feeds", help="list configured feeds and their state")

    s = sub.add_parser("alerts", help="print alerts as they arrive")
    s.add_argument("topic_ids", nargs="*", metavar="TOPIC-ID")
    s.add_argument(
        "--from-beginning",
        action="store_true",
        help="also print the alerts already on the topics (default: only new ones)",
    )
    s.add_argument("--json", action="store_true", help="raw alert events, one per line")
    s.add_argument("--max", type=int, default=None, help="exit after N alerts")
    s.add_argument("--timeout", type=float, default=None, help="exit after N seconds")

    s = sub.add_parser("dlq", help="list dead letters; --replay republishes them")
    s.add_argument(
        "--replay",
        action="store_true",
        help="republish to articles.raw the original records of the dead letters that no "
        "earlier --replay sent (the position is kept in Kafka, per --stage)",
    )
    s.add_argument(
        "--all",
        dest="replay_all",
        action="store_true",
        help="with --replay: every dead letter again, also those replayed before",
    )
    s.add_argument(
        "--stage",
        default=None,
        choices=list(get_args(DeadLetter.model_fields["stage"].annotation)),
        help="only the dead letters of this stage",
    )
    s.add_argument("--json", action="store_true")

    s = sub.add_parser(
        "retag",
        help="retag the history on articles.enriched with the current taxonomy and model; "
        "publish new revisions of what changed",
    )
    s.add_argument(
        "--since",
        default=None,
        metavar="DATE",
        help="only events published to articles.enriched at or after DATE (ISO 8601, e.g. "
        "2026-12-01 or 2026-12-01T12:00Z; UTC when no offset)",
    )
    s.add_argument(
        "--topic",
        default=None,
        metavar="ID",
        help="only articles whose tag for this topic changes (taxonomy id)",
    )
    s.add_argument(
        "--dry-run", action="store_true", help="count what would change; publish nothing"
    )

    s = sub.add_parser("health", help="ask a running worker how it is (exit 1 unless ok)")
    s.add_argument(
        "--ready",
        action="store_true",
        help="ask /ready (Kafka reachable, partitions assigned, Redis answering) not /health",
    )
    sub.add_parser("schemas", help="write the JSON Schemas and the AsyncAPI document")

    s = sub.add_parser("run-local", help="worker + replay seeds/ + alerts, until Ctrl-C")
    s.add_argument("--seeds", default=str(ROOT / "seeds"))
    return p


def _setup_logging(settings: Settings, level: str | None = None) -> None:
    """Text or JSON lines on stderr (``WORKER_LOG_FORMAT``), secrets redacted. The worker
    calls this for what it logs before faust starts; faust then sets up its own."""
    from worker.logs import configure_cli_logging, secret_values

    level = (level or os.environ.get("WORKER_LOG_LEVEL", "WARNING")).upper()
    configure_cli_logging(settings.log_format, level, secret_values(settings))
    if level not in ("DEBUG", "INFO"):
        # the commands say what went wrong with the broker in one line of their own;
        # aiokafka's own ERROR line would say it first, a second time
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # eval and train parse their own options (so `eval --errors FILE` and `eval --help` work)
    if argv and argv[0] in ("eval", "train"):
        if argv[0] == "eval":
            from worker.evaluate import main as eval_main

            return eval_main(argv[1:])
        from worker.tagging.train import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    warnings = unknown_variables()
    try:
        settings = get_settings()
    except SettingsError as exc:
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for line in str(exc).splitlines():
            _err(line)
        return 2
    _setup_logging(settings, args.loglevel if args.cmd == "worker" else None)
    for warning in warnings:
        if settings.log_format == "json":
            log.warning("%s", warning)
        else:
            print(f"warning: {warning}", file=sys.stderr)
    try:
        if args.cmd == "worker":
            return _run_worker(settings, args.loglevel)
        if args.cmd == "tag":
            return asyncio.run(_tag(args.paths, settings, args.explain))
        if args.cmd == "eval":
            from worker.evaluate import main as eval_main

            return eval_main(args.args)
        if args.cmd == "replay":
            return asyncio.run(_replay(args.folder, settings, args.quiet))
        if args.cmd == "alerts":
            return asyncio.run(
                _alerts(
                    args.topic_ids,
                    settings,
                    from_beginning=args.from_beginning,
                    as_json=args.json,
                    max_messages=args.max,
                    timeout_s=args.timeout,
                )
            )
        if args.cmd == "dlq":
            if args.replay_all and not args.replay:
                raise CliError("--all goes with --replay (dlq --replay --all)")
            return asyncio.run(
                _dlq(
                    settings,
                    replay=args.replay,
                    replay_all=args.replay_all,
                    stage=args.stage,
                    as_json=args.json,
                )
            )
        if args.cmd == "retag":
            return asyncio.run(_retag(settings, args.since, args.topic, args.dry_run))
        if args.cmd == "poll":
            return asyncio.run(_poll(settings, args.feeds))
        if args.cmd == "feeds":
            return asyncio.run(_feeds(settings))
        if args.cmd == "health":
            return _health(settings, ready=args.ready)
        if args.cmd == "schemas":
            from worker.schemas import write_all

            for path in write_all(settings.configs_dir):
                print(path)
            return 0
        if args.cmd == "run-local":
            return _run_local(settings, args.seeds)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        _err(str(exc))
        return 2
    except TaxonomyError as exc:  # a bad topics.yaml, countries.yaml, alerts.yaml or model
        _err(str(exc))
        return 2
    except SettingsError as exc:
        for line in str(exc).splitlines():
            _err(line)
        return 2
    except Exception as exc:
        from worker.kafka_io import BrokerUnavailable

        if isinstance(exc, BrokerUnavailable):
            _err(str(exc))
            return 3
        if exc.__class__.__name__ in (
            "ConnectionError",
            "TimeoutError",
        ) or exc.__class__.__module__.startswith("redis"):
            _err(f"Redis: {exc} (is it running? `make up`)")
            return 3
        raise
    return 2
