"""End to end through Kafka (issue 10): pages per second with N worker processes in one
consumer group, against bare trafilatura on the same pages in the same run; then
raw->enriched and raw->alert latency under a steady load at half that rate.

    .venv/bin/python tests/benchmarks/bench_e2e.py [--workers 1] [--extract-workers 1]
        [--pages 400] [--page-dir DIR ...] [--warm-up 100] [--latency-s 30] [--partitions 4]
        [--worker-env KEY=VALUE ...] [--use-running] [--keep] [--timeout 1800] [--json OUT]

``--workers 1,2`` runs both set-ups, one after the other, in one run, and also prints the
second's throughput over the first's.

A script, not a test. It starts its own Kafka broker and Redis (``worker.devservices``, free
ports, in a temp dir), or with ``--use-running`` uses WORKER_KAFKA_BOOTSTRAP_SERVERS and
WORKER_REDIS_URL. Then:

1. the pages: every distinct real page of tests/data/pages, seeds/ and the shared
   development pages (``../shared/data/pages`` or ``/work/shared/data/pages`` when there;
   ``--page-dir`` for others), each copied with its own URL and its own paragraph until there
   are ``--pages`` distinct articles (load_test.py's copies), in a shuffled order;
2. bare trafilatura: ``trafilatura.bare_extraction(html, with_metadata=True)`` over the same
   pages in this one process, timed before every set-up and once after the last;
3. per set-up, in a namespace of its own (WORKER_TOPIC_PREFIX, WORKER_APP_ID), with its topics
   created with ``message.timestamp.type=LogAppendTime`` (every timestamp is the broker's):
   N workers (``python -m worker worker``, WORKER_EXTRACT_WORKERS each) are started and
   waited for until the group has shared out the partitions; ``--warm-up`` other pages go
   through first, unmeasured (the broker's JIT compiler, the workers' caches: a fresh
   broker spends seconds of CPU compiling); then the backlog is published
   to articles.raw at once (round-robin over the partitions, so that no worker gets more
   pages than another) and throughput is the number of outcomes over the time from the
   first outcome to the last (articles.enriched and articles.dlq timestamps);
4. latency: new pages published one by one at half the measured rate for ``--latency-s``
   seconds; raw->enriched is the enriched event's timestamp minus its raw record's,
   raw->alert the same for each alert (matched by article id), p50 and p99;
5. where the CPU went: CPU seconds of each worker process, of its extraction processes, of
   the broker and Redis (when started here) and of the rest of the machine (/proc), per
   page; over the throughput window, how busy the extraction processes were (their CPU)
   and how well they were fed (the share of the time they had a page handed over: each
   worker's /health "extraction"), which tells a starved pool from a CPU-bound machine.

The workers are started before the backlog is published, so that the rebalance of a member
joining is not inside the measured window (a running group that is given a backlog).
Everything it started is stopped or removed at the end, also on Ctrl-C or ``--timeout``.
Exit status: 0 when every page had its outcome in every set-up, 1 otherwise, 2 on a set-up
error. The machine is usually shared: compare ratios measured in one run, not absolute
rates across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.load_test import (  # noqa: E402
    PAGE_DIRS,
    PY,
    _children,
    health,
    page_copy,
    page_templates,
    processed,
    say,
    stop_worker,
)
from worker import devservices  # noqa: E402

SHARED_PAGES = (ROOT.parent / "shared" / "data" / "pages", Path("/work/shared/data/pages"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- pages


@dataclass
class Pages:
    templates: dict[str, str]
    backlog: list[Any]  # RawRecord, shuffled
    warm: list[Any]  # RawRecord, other copies, for the warm-up
    seed: int
    next_index: int = 0

    def more(self, n: int) -> list[Any]:
        """``n`` more distinct copies (new URLs), the templates in a shuffled order."""
        from worker.events import Source

        rng = random.Random(self.seed + self.next_index)
        names = sorted(self.templates)
        source = Source(kind="file", name="bench-e2e")
        out = []
        for i in range(self.next_index, self.next_index + n):
            name = names[i % len(names)]
            out.append(page_copy(name, self.templates[name], i, source, host="bench.example"))
        self.next_index += n
        rng.shuffle(out)
        return out


def page_dirs(extra: list[Path]) -> list[Path]:
    dirs = list(PAGE_DIRS)
    shared = next((d for d in SHARED_PAGES if d.is_dir()), None)
    if shared is not None:
        dirs.append(shared)
    return dirs + extra


@dataclass
class Bare:
    rate: float  # pages per second
    took_s: float
    cpu_per_page: float  # CPU seconds (of the thread that ran it)


def bare_rate(bodies: list[str]) -> Bare:
    """Trafilatura alone, in this process, over ``bodies``."""
    import trafilatura

    t0, c0 = time.perf_counter(), time.thread_time()
    for body in bodies:
        trafilatura.bare_extraction(body, with_metadata=True)
    took, cpu = time.perf_counter() - t0, time.thread_time() - c0
    return Bare(len(bodies) / took, took, cpu / len(bodies))


# --------------------------------------------------------------------------- CPU


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def running_service_pids(state_dir: Path) -> list[int]:
    """The live Kafka and Redis processes recorded in a devservices state folder."""
    out = []
    for name in ("kafka.pid", "redis.pid"):
        try:
            pid = int((state_dir / name).read_text())
        except (OSError, ValueError):
            continue
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
    return out


def descendants(pid: int, kids: dict[int, list[int]] | None = None) -> list[int]:
    kids = _children() if kids is None else kids
    todo, out = list(kids.get(pid, [])), []
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs, /proc/stat)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return (sum(parts[:8]) - idle) / CLK_TCK


@dataclass
class CpuSample:
    t: float  # time.time()
    workers: list[float]  # the main process of each worker
    extraction: list[float]  # the descendants of each worker (its pool)
    services: float  # broker + Redis, when started here
    bench: float
    machine: float
    idle: list[float]  # each worker's idle extraction process-seconds (its /health)


class CpuMeter:
    """CPU seconds of the processes that do the work, sampled along the run."""

    def __init__(self, worker_pids: list[int], service_pids: list[int]) -> None:
        self.worker_pids = worker_pids
        self.service_pids = service_pids
        self.samples: list[CpuSample] = []
        # a recycled pool process takes its CPU time with it: keep the last seen of each
        self._kid_cpu: dict[int, float] = {}
        self._owner: dict[int, int] = {}

    def sample(self, idle: list[float]) -> CpuSample:
        kids = _children()
        extraction = []
        for pid in self.worker_pids:
            for k in descendants(pid, kids):
                self._owner[k] = pid
                self._kid_cpu[k] = max(self._kid_cpu.get(k, 0.0), cpu_s(k))
            extraction.append(sum(v for k, v in self._kid_cpu.items() if self._owner[k] == pid))
        s = CpuSample(
            t=time.time(),
            workers=[cpu_s(p) for p in self.worker_pids],
            extraction=extraction,
            services=sum(cpu_s(p) for p in self.service_pids),
            bench=cpu_s(os.getpid()),
            machine=machine_busy_s(),
            idle=idle,
        )
        self.samples.append(s)
        return s

    def at(self, t: float) -> CpuSample:
        """The sample nearest to ``t`` (epoch seconds)."""
        return min(self.samples, key=lambda s: abs(s.t - t))


# --------------------------------------------------------------------------- Kafka


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """The namespace's topics, every timestamp the broker's (LogAppendTime)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    n,
                    num_partitions=partitions,
                    replication_factor=1,
                    topic_configs={
                        "message.timestamp.type": "LogAppendTime",
                        "max.message.bytes": str(16 * 1024 * 1024),
                    },
                )
                for n in names
            ]
        )
        for _ in range(150):
            described = await admin.describe_topics(names)
            if all(
                t.get("error_code", 0) == 0
                and t.get("partitions")
                and all(p.get("leader", -1) >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("topics not ready after 30 s")
    finally:
        await admin.close()


@dataclass
class Out:
    topic: str
    key: bytes
    ts: float  # broker time, epoch seconds


async def read_topics(bootstrap: str, topics: list[str]) -> list[Out]:
    """Every message on ``topics`` up to their end now: read after a phase, not during it,
    so that this script takes no CPU from the workers while they are measured."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    cons = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await cons.start()
    out: list[Out] = []
    try:
        await cons._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(t, p) for t in topics for p in cons.partitions_for_topic(t) or ()]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        end = await cons.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await cons.getmany(*remaining, timeout_ms=1000, max_records=5000)
            for tp, msgs in batch.items():
                out.extend(Out(tp.topic, m.key or b"", m.timestamp / 1000) for m in msgs)
            for tp in list(remaining):
                if await cons.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await cons.stop()
    return out


def serialise(records: list[Any]) -> list[tuple[bytes, bytes, str]]:
    """(key, value, url) of each record, serialised before anything is timed."""
    return [(r.record_id.encode(), r.to_json(), r.url) for r in records]


async def publish_backlog(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes, str]], partitions: int
) -> float:
    """Everything at once, round-robin over the partitions; -> seconds it took."""
    from aiokafka import AIOKafkaProducer

    prod = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=16 * 1024 * 1024,
        compression_type="zstd",
        request_timeout_ms=60000,
    )
    await prod.start()
    t0 = time.monotonic()
    try:
        futs = [
            await prod.send(topic, value=v, key=k, partition=i % partitions)
            for i, (k, v, _) in enumerate(records)
        ]
        await asyncio.gather(*futs)
    finally:
        await prod.stop()
    return time.monotonic() - t0


async def publish_steady(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes, bytes, str]],
    partitions: int,
    rate: float,
) -> dict[str, float]:
    """One record every 1/rate s; -> url -> the raw record's broker timestamp."""
    from aiokafka import AIOKafkaProducer

    prod = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=0,
        max_request_size=16 * 1024 * 1024,
        compression_type="zstd",
    )
    await prod.start()
    sent: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        pending = []
        for i, (k, v, url) in enumerate(records):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            fut = await prod.send(topic, value=v, key=k, partition=i % partitions)
            pending.append((url, fut))
        for url, fut in pending:
            md = await fut
            sent[url] = md.timestamp / 1000
    finally:
        await prod.stop()
    return sent


# --------------------------------------------------------------------------- one set-up


@dataclass
class Result:
    workers: int
    extract_workers: int
    pages: int
    rate: float = 0.0  # pages/s, first outcome to last, broker time
    window_s: float = 0.0
    publish_s: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    ok: bool = False
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s per page, by part
    extraction_busy: float = 0.0  # share of the window the extraction processes had CPU
    extraction_starved: float = 0.0  # share of it they had no page to clean (the hand-off)
    machine_other_cpus: float = 0.0  # CPUs used by everything else on the machine
    steady_rate: float = 0.0
    steady_pages: int = 0
    enriched_ms: dict[str, float] = field(default_factory=dict)
    alert_ms: dict[str, float] = field(default_factory=dict)
    alerts: int = 0
    shares: list[list[int]] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (linear between closest ranks)."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def start_workers(
    n: int,
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    prefix: str,
    tmp: Path,
    holder: list[subprocess.Popen[bytes]],
) -> list[tuple[subprocess.Popen[bytes], int]]:
    feeds = tmp / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    base.update(
        {
            "WORKER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "WORKER_REDIS_URL": redis_url,
            "WORKER_TOPIC_PREFIX": prefix,
            "WORKER_APP_ID": f"bench-{prefix.rstrip('.')}",
            "WORKER_TOPIC_PARTITIONS": str(args.partitions),
            "WORKER_FEEDS_FILE": str(feeds),
            "WORKER_EXTRACT_WORKERS": str(args.extract_workers),
            # the pages are copies of 20 real pages, near-duplicates of each other: with the
            # default 72 h story window every copy after the first is a republished copy,
            # which never alerts, and raw->alert would have nothing to measure. A window of
            # about a second keeps the stories' Redis work per article but lets a copy that
            # arrives seconds after its original count as new (--worker-env overrides it).
            "WORKER_STORY_WINDOW_H": "0.0003",
            "PYTHONUNBUFFERED": "1",
        }
    )
    for item in args.worker_env:
        k, _, v = item.partition("=")
        base[k] = v
    out = []
    for i in range(n):
        port = devservices.free_port()
        env = {
            **base,
            "WORKER_WEB_PORT": str(port),
            "WORKER_DATA_DIR": str(tmp / f"faust-{i}"),
        }
        with (tmp / f"worker-{i}.log").open("ab") as logf:
            proc = subprocess.Popen(
                [PY, "-m", "worker", "worker"],  # noqa: S603
                env=env,
                cwd=ROOT,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        holder.append(proc)
        out.append((proc, port))
    return out


def raw_share(port: int, raw_topic: str) -> list[int] | None:
    h = health(port)
    if h is None or not h.get("stats"):
        return None
    return (h.get("group") or {}).get("partitions", {}).get(raw_topic, [])


async def wait_group(
    workers: list[tuple[subprocess.Popen[bytes], int]],
    raw_topic: str,
    partitions: int,
    tmp: Path,
    within_s: float = 240,
) -> list[list[int]]:
    """Until every worker is started and the group has shared out the partitions of the
    raw topic (each held by exactly one member; every member holds some when it can)."""
    deadline = time.monotonic() + within_s
    shares: list[list[int] | None] = []
    while time.monotonic() < deadline:
        for i, (proc, _) in enumerate(workers):
            if proc.poll() is not None:
                tail = (tmp / f"worker-{i}.log").read_text(errors="replace").splitlines()[-30:]
                raise RuntimeError(f"worker {i} exited {proc.returncode}:\n" + "\n".join(tail))
        shares = [await asyncio.to_thread(raw_share, port, raw_topic) for _, port in workers]
        flat = sorted(p for s in shares for p in (s or []))
        everyone = all(shares) or len(workers) > partitions
        if all(s is not None for s in shares) and everyone and flat == list(range(partitions)):
            return [s or [] for s in shares]
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the group never shared out the partitions: {shares}")


async def run_setup(
    n_workers: int,
    args: argparse.Namespace,
    pages: Pages,
    bare: float,
    bootstrap: str,
    redis_url: str,
    service_pids: list[int],
    tmp: Path,
    holder: list[subprocess.Popen[bytes]],
) -> Result:
    from worker.dedup import article_id
    from worker.settings import Settings
    from worker.tagging import Tagger

    res = Result(n_workers, args.extract_workers, len(pages.backlog))
    prefix = f"be{uuid.uuid4().hex[:8]}."
    names = Settings(topic_prefix=prefix).topic_names
    tagger = Tagger.from_config_dir(ROOT / "configs")
    alert_topics = [names.alert(t) for t in tagger.topics]
    await create_topics(bootstrap, names.all(tagger.topics), args.partitions)

    say(f"[{n_workers} worker(s)] starting, topics {prefix}*, logs in {tmp}")
    workers = start_workers(n_workers, args, bootstrap, redis_url, prefix, tmp, holder)
    res.shares = await wait_group(workers, names.raw, args.partitions, tmp)
    say(f"[{n_workers} worker(s)] the group holds the partitions: {res.shares}")
    await asyncio.sleep(2)  # let the pools settle after their warm-up

    meter = CpuMeter([p.pid for p, _ in workers], service_pids)
    sampling = True

    def idle_s() -> list[float]:
        return [
            float(((health(p) or {}).get("extraction") or {}).get("idle_process_s", 0.0))
            for p in ports
        ]

    async def sample_loop() -> None:
        while sampling:
            meter.sample(await asyncio.to_thread(idle_s))
            await asyncio.sleep(0.5)

    ports = [port for _, port in workers]
    sampler = asyncio.create_task(sample_loop())

    def stats() -> list[dict[str, Any]]:
        return [(health(p) or {}).get("stats") or {} for p in ports]

    async def wait_handled(total: int, within_s: float = 600) -> None:
        """Until the workers have handled ``total`` records since they started."""
        deadline = time.monotonic() + within_s
        while True:
            done = sum(processed(s) for s in await asyncio.to_thread(stats))
            say(f"[{n_workers} worker(s)] {done}/{total} handled")
            if done >= total:
                return
            for i, (proc, _) in enumerate(workers):
                if proc.poll() is not None:
                    raise RuntimeError(f"worker {i} died (exit {proc.returncode})")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{done}/{total} handled after {within_s:.0f} s")
            await asyncio.sleep(0.5)

    try:
        # --- warm-up: the broker's JIT, the workers' caches (not measured)
        warm = len(pages.warm)
        if warm:
            say(f"[{n_workers} worker(s)] warming up with {warm} other pages")
            await publish_backlog(bootstrap, names.raw, serialise(pages.warm), args.partitions)
            await wait_handled(warm)

        # --- throughput: the backlog at once
        backlog = serialise(pages.backlog)
        n = len(backlog)
        mine = {k for k, _, _ in backlog} | {article_id(u, "").encode() for _, _, u in backlog}
        say(f"[{n_workers} worker(s)] publishing the backlog: {n} pages")
        res.publish_s = await publish_backlog(bootstrap, names.raw, backlog, args.partitions)
        await wait_handled(warm + n)
        await asyncio.sleep(1.0)  # a redelivery would show now
        outs = [
            o for o in await read_topics(bootstrap, [names.enriched, names.dlq]) if o.key in mine
        ]
        st = await asyncio.to_thread(stats)
        res.outcomes = {
            "enriched": sum(1 for m in outs if m.topic == names.enriched),
            "enriched_distinct": len({m.key for m in outs if m.topic == names.enriched}),
            "dead_letters": sum(1 for m in outs if m.topic == names.dlq),
            "skipped": sum(sum((s.get("skipped") or {}).values()) for s in st),
        }
        res.ok = (
            res.outcomes["enriched_distinct"] == n
            and res.outcomes["enriched"] + res.outcomes["skipped"] + res.outcomes["dead_letters"]
            == n
        )
        first, last = min(m.ts for m in outs), max(m.ts for m in outs)
        res.window_s = last - first
        res.rate = (len(outs) - 1) / res.window_s if res.window_s > 0 else float("nan")
        a, b = meter.at(first), meter.at(last)
        span = max(b.t - a.t, 1e-9)
        per_page = max(len(outs), 1)
        res.cpu = {
            "worker": (sum(b.workers) - sum(a.workers)) / per_page,
            "extraction": (sum(b.extraction) - sum(a.extraction)) / per_page,
            "broker+redis": (b.services - a.services) / per_page,
            "bench": (b.bench - a.bench) / per_page,
        }
        ours = sum(res.cpu.values()) * per_page
        res.machine_other_cpus = max(0.0, (b.machine - a.machine) - ours) / span
        procs = n_workers * max(1, args.extract_workers)
        res.extraction_busy = (sum(b.extraction) - sum(a.extraction)) / (span * procs)
        res.extraction_starved = (sum(b.idle) - sum(a.idle)) / (span * procs)
        say(
            f"[{n_workers} worker(s)] {res.rate:.1f} pages/s ({res.rate / bare:.2f} x bare); "
            f"latency at half that rate next"
        )

        # --- latency: half the measured rate, one page at a time
        res.steady_rate = res.rate / 2
        m = max(20, round(res.steady_rate * args.latency_s))
        steady = serialise(pages.more(m))
        res.steady_pages = m
        sent = await publish_steady(bootstrap, names.raw, steady, args.partitions, res.steady_rate)
        ids = {article_id(url, ""): url for _, _, url in steady}
        await wait_handled(warm + n + m)
        await asyncio.sleep(1.0)  # the last alerts
        enriched_lat: list[float] = []
        alert_lat: list[float] = []
        for o in await read_topics(bootstrap, [names.enriched, *alert_topics]):
            url = ids.get(o.key.decode())
            if url is None:
                continue
            if o.topic == names.enriched:
                enriched_lat.append(o.ts - sent[url])
            elif o.topic in alert_topics:
                alert_lat.append(o.ts - sent[url])
        res.alerts = len(alert_lat)
        res.enriched_ms = {
            "p50": pct(enriched_lat, 50) * 1000,
            "p99": pct(enriched_lat, 99) * 1000,
            "max": max(enriched_lat, default=float("nan")) * 1000,
            "n": len(enriched_lat),
        }
        res.alert_ms = {
            "p50": pct(alert_lat, 50) * 1000,
            "p99": pct(alert_lat, 99) * 1000,
            "max": max(alert_lat, default=float("nan")) * 1000,
            "n": len(alert_lat),
        }
        res.ok = res.ok and len(enriched_lat) == m
    finally:
        sampling = False
        with contextlib.suppress(Exception):
            await sampler
        for proc, _ in workers:
            await asyncio.to_thread(stop_worker, proc)
    return res


# --------------------------------------------------------------------------- report


def report(
    results: list[Result], bares: list[Bare], pages: Pages, args: argparse.Namespace
) -> None:
    total_mb = sum(len(r.body or "") for r in pages.backlog) / 2**20
    print()
    print(
        f"bench_e2e: {len(pages.backlog)} distinct pages ({len(pages.templates)} real pages, "
        f"copied with their own URL and paragraph; {total_mb:.0f} MiB of HTML), "
        f"{args.partitions} partitions, {os.cpu_count()} CPUs"
    )
    bare = statistics.mean(b.rate for b in bares)
    bare_cpu = statistics.mean(b.cpu_per_page for b in bares)
    print(
        "bare trafilatura, one process: "
        + ", ".join(f"{b.rate:.1f}" for b in bares)
        + f" pages/s (timed before each set-up and after the last) -> {bare:.1f}; "
        f"{bare_cpu * 1000:.1f} ms of CPU per page"
    )
    print()
    head = (
        f"{'workers x extraction':>22}{'pages/s':>9}{'/ bare':>8}{'/ bare/proc':>12}"
        f"{'busy':>6}{'fed':>6}{'raw->enriched p50/p99 ms':>26}{'raw->alert p50/p99 ms':>23}"
    )
    print(head)
    print(
        f"{'':>57}(busy: the extraction processes' CPU over the window; fed: the share of it "
        "they had a page handed over)"
    )
    for r in results:
        procs = r.workers * max(1, r.extract_workers)
        print(
            f"{f'{r.workers} x {r.extract_workers}':>22}{r.rate:>9.1f}{r.rate / bare:>8.2f}"
            f"{r.rate / bare / procs:>12.2f}{r.extraction_busy:>6.0%}"
            f"{1 - r.extraction_starved:>6.0%}"
            f"{r.enriched_ms['p50']:>15.0f} / {r.enriched_ms['p99']:<8.0f}"
            f"{r.alert_ms['p50']:>12.0f} / {r.alert_ms['p99']:<8.0f}"
        )
    print()
    for r in results:
        o = r.outcomes
        print(
            f"{r.workers} worker(s): partitions {r.shares}; backlog published in "
            f"{r.publish_s:.1f} s; {r.pages} in -> {o['enriched']} enriched "
            f"({o['enriched_distinct']} distinct) + {o['skipped']} skipped + "
            f"{o['dead_letters']} dead letters: {'PASS' if r.ok else 'FAIL'}; first to last "
            f"outcome {r.window_s:.1f} s"
        )
        cpu = ", ".join(f"{k} {v * 1000:.1f}" for k, v in r.cpu.items())
        total = sum(r.cpu.values())
        cores = os.cpu_count() or 1
        ceiling = (cores - r.machine_other_cpus) / total if total else float("nan")
        print(
            f"    CPU ms per page: {cpu}; total {total * 1000:.1f}, so {r.rate * total:.2f} of "
            f"{cores} CPUs in use; the rest of the machine used {r.machine_other_cpus:.2f} CPU"
        )
        print(
            f"    the CPUs left would do at most {ceiling:.1f} pages/s at this CPU per page: "
            f"{r.rate / ceiling:.0%} of that reached"
        )
        worker_side = r.cpu.get("worker", 0) + r.cpu.get("extraction", 0)
        with_services = worker_side + r.cpu.get("broker+redis", 0)
        print(
            f"    CPU per page over bare trafilatura's: extraction "
            f"{r.cpu.get('extraction', 0) / bare_cpu:.2f}, the worker's processes "
            f"{worker_side / bare_cpu:.2f}, with the broker and Redis "
            f"{with_services / bare_cpu:.2f}"
        )
        print(
            f"    latency at {r.steady_rate:.1f} pages/s ({r.steady_pages} pages): "
            f"raw->enriched p50 {r.enriched_ms['p50']:.0f} p99 {r.enriched_ms['p99']:.0f} max "
            f"{r.enriched_ms['max']:.0f} ms (n={r.enriched_ms['n']:.0f}); raw->alert p50 "
            f"{r.alert_ms['p50']:.0f} p99 {r.alert_ms['p99']:.0f} max {r.alert_ms['max']:.0f} "
            f"ms (n={r.alert_ms['n']:.0f})"
        )
    by_n: dict[int, list[float]] = {}
    for r in results:
        by_n.setdefault(r.workers, []).append(r.rate)
    if len(by_n) > 1:
        base = min(by_n)
        for n, rates in sorted(by_n.items()):
            if n == base:
                continue
            # each set-up against the one run just before it (the machine's load drifts)
            pairs = [
                b.rate / a.rate
                for a, b in zip(results, results[1:], strict=False)
                if a.workers == base and b.workers == n
            ]
            ratio = statistics.median(rates) / statistics.median(by_n[base])
            print(
                f"{n} workers / {base}: {ratio:.2f}"
                f" x (medians of {len(rates)} and {len(by_n[base])} runs"
                + (f"; run after run: {', '.join(f'{x:.2f}' for x in pairs)}" if pairs else "")
                + f"; {results[0].extract_workers} extraction process(es) each)"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "--workers", default="1", help="worker processes; a list (1,2) runs each set-up"
    )
    ap.add_argument("--extract-workers", type=int, default=1, help="WORKER_EXTRACT_WORKERS")
    ap.add_argument("--pages", type=int, default=400, help="distinct pages in the backlog")
    ap.add_argument("--page-dir", type=Path, action="append", default=[], help="more pages")
    ap.add_argument(
        "--warm-up", type=int, default=100, help="pages through each set-up before measuring"
    )
    ap.add_argument("--latency-s", type=float, default=30.0, help="steady-load phase length")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument(
        "--worker-env", action="append", default=[], metavar="KEY=VALUE", help="worker env"
    )
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds, whole run")
    ap.add_argument(
        "--use-running", action="store_true", help="use WORKER_KAFKA_BOOTSTRAP_SERVERS/_REDIS_URL"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (worker logs)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    setups = [int(x) for x in args.workers.split(",")]

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    state_dir = tmp / "services"
    started = False
    holder: list[subprocess.Popen[bytes]] = []
    rc = 2
    t0 = time.monotonic()
    try:
        say("reading the pages ...")
        templates = page_templates(page_dirs(args.page_dir))
        pages = Pages(templates, [], [], args.seed)
        pages.backlog = pages.more(args.pages)
        pages.warm = pages.more(args.warm_up)
        bodies = [r.body for r in pages.backlog]
        bare_rate(bodies[:5])  # imports and first-call costs, as a warm worker has paid them

        if args.use_running:
            bootstrap = os.environ.get("WORKER_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
            redis_url = os.environ.get("WORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
            # services that `python -m worker.devservices up` started: their CPU is counted
            service_pids = running_service_pids(devservices.DEFAULT_STATE_DIR)
            if not service_pids:
                say("the broker's and Redis's processes are not known: their CPU is not counted")
        else:
            say(f"starting Kafka and Redis in {state_dir} ...")
            started = True
            svc = devservices.start_services(state_dir)
            bootstrap, redis_url = svc.kafka_bootstrap, svc.redis_url
            service_pids = running_service_pids(state_dir)

        async def all_setups() -> tuple[list[Result], list[float]]:
            results: list[Result] = []
            bares: list[Bare] = []
            for n in setups:
                b = await asyncio.to_thread(bare_rate, bodies)
                say(f"bare trafilatura: {b.rate:.1f} pages/s ({b.took_s:.1f} s)")
                bares.append(b)
                sub = tmp / f"w{n}-{len(results)}"
                sub.mkdir()
                results.append(
                    await run_setup(
                        n, args, pages, b.rate, bootstrap, redis_url, service_pids, sub, holder
                    )
                )
            b = await asyncio.to_thread(bare_rate, bodies)
            say(f"bare trafilatura: {b.rate:.1f} pages/s ({b.took_s:.1f} s)")
            bares.append(b)
            return results, bares

        results, bares = asyncio.run(
            asyncio.wait_for(all_setups(), max(t0 + args.timeout - time.monotonic(), 1))
        )
        report(results, bares, pages, args)
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "bare": [b.__dict__ for b in bares],
                        "results": [r.__dict__ for r in results],
                    },
                    indent=2,
                    default=str,
                )
            )
        rc = 0 if all(r.ok for r in results) else 1
    except KeyboardInterrupt:
        say("interrupted")
        rc = 130
    except TimeoutError:
        say(f"timed out after {args.timeout:.0f} s")
        rc = 1
    except Exception as exc:  # noqa: BLE001 - one line, then clean up
        say(f"error: {exc.__class__.__name__}: {exc}")
        rc = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in holder:
            stop_worker(p)
        if started:
            say("stopping Kafka and Redis ...")
            with contextlib.suppress(Exception):
                devservices.stop_services(state_dir)
        if args.keep or rc not in (0, 130):
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
