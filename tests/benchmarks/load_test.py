"""Load test (issue 5): several thousand articles through ONE real worker process.

    .venv/bin/python tests/benchmarks/load_test.py [--articles 3000] [--html-share 0.5]
        [--duplicates 20] [--bad-pages 10] [--bad-json 10] [--timeout 1200] [--use-running]
        [--keep]

A script, not a test. It starts its own Kafka broker and Redis (``worker.devservices``, free
ports, in a temp dir), or with ``--use-running`` uses WORKER_KAFKA_BOOTSTRAP_SERVERS and
WORKER_REDIS_URL. Then:

1. starts one worker (``python -m worker worker``) in its own namespace: unique
   WORKER_TOPIC_PREFIX and WORKER_APP_ID, a free WORKER_WEB_PORT, a temp WORKER_DATA_DIR,
   an empty feeds file (never the internet);
2. generates N distinct articles as raw records: the 260 real articles of
   tests/data/diplomacy-dev.jsonl (as text) and the real pages of tests/data/pages and
   seeds/ (as HTML), cycled, each copy with its own URL and its own sentence/paragraph, so
   every record is a distinct article id; plus a known number of exact duplicates (same URL
   and body again: counted skips), pages that clean to nothing and payloads that are not a
   raw record (dead letters);
3. publishes them all to the raw topic (aiokafka, batched), shuffled with a fixed seed;
4. watches until every record is accounted for, consuming articles.enriched and
   articles.dlq, polling the worker's /health, and sampling the RSS of the worker and its
   children (the extraction pool) from /proc every second;
5. prints the counts, the accounting check ``in == enriched + skipped + dlq``, throughput,
   and RSS at 10/50/90/100 % of progress, to show memory is flat.

Everything it started (worker, broker, Redis, temp dir) is stopped or removed at the end,
also on Ctrl-C, SIGTERM, a failure or the ``--timeout`` (default 1200 s).
Exit status: 0 when the accounting passes, 1 when it does not, 2 on a set-up error.
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
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker import devservices  # noqa: E402

VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
EMPTY_PAGE = (
    "<html lang='en'><head><title>Subscribe to continue</title></head><body>"
    "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
    "<div class='paywall'><p>Subscribe to keep reading. Copy {n}.</p></div>"
    "<footer>(c) Example News</footer></body></html>"
)
BAD_PAYLOADS = (
    b"{this is not json",
    b'{"hello": "a JSON object that is not a raw record"}',
    b"\xff\xfe\x00binary garbage\x00",
    b"",
)


def say(msg: str) -> None:
    print(f"\r\x1b[K{msg}" if sys.stderr.isatty() else msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of all its descendants) in KiB."""
    kids = _children()
    todo, seen = list(kids.get(pid, [])), []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return rss_kib(pid), sum(rss_kib(p) for p in seen)


# --------------------------------------------------------------------------- records


@dataclass
class Plan:
    records: list[tuple[bytes, bytes]]  # (key, value)
    good: int
    duplicates: int
    bad_pages: int
    bad_json: int
    html: int
    text: int
    html_bytes: int = 0
    text_bytes: int = 0


PAGE_DIRS = (ROOT / "tests/data/pages", ROOT / "seeds")


def page_templates(dirs: tuple[Path, ...] | list[Path] = PAGE_DIRS) -> dict[str, str]:
    """The distinct real pages of ``dirs`` (identical bytes counted once) that clean to an
    article, by name, so that the expected counts are known."""
    from worker.clean import CleanError, clean_html

    pages: dict[str, str] = {}
    seen: set[str] = set()
    for d in dirs:
        for p in sorted(d.glob("*.html")):
            html = p.read_text(encoding="utf-8", errors="replace")
            if html in seen:
                continue
            seen.add(html)
            name = p.stem if p.stem not in pages else f"{d.name}-{p.stem}"
            try:
                clean_html(html)
            except CleanError as exc:
                say(f"page {name} does not clean ({exc}); not used as a good template")
                continue
            pages[name] = html
    return pages


def page_copy(name: str, html: str, i: int, source: Any, host: str = "loadtest.example") -> Any:
    """Copy ``i`` of a real page as a distinct article: its own URL, and its own paragraph
    after the first one (so its own text)."""
    from worker.events import RawRecord

    tag = f"LT-{i:06d}"
    para = (
        f"<p>Load-test copy {i} of this page, reference {tag}, was republished "
        f"for the ingest load test with its own paragraph.</p>"
    )
    cut = html.find("</p>")
    body = html[: cut + 4] + para + html[cut + 4 :] if cut >= 0 else html + para
    return RawRecord(
        record_id=uuid.uuid4().hex,
        source=source,
        url=f"https://{host}/{name}/{i}",
        path=f"{name}.html",
        content_type="html",
        body=body,
    )


def build_plan(
    n: int, html_share: float, duplicates: int, bad_pages: int, bad_json: int, seed: int
) -> Plan:
    from worker.events import RawRecord, Source

    rng = random.Random(seed)
    source = Source(kind="file", name="load-test")
    articles = [
        json.loads(line)
        for line in (ROOT / "tests/data/diplomacy-dev.jsonl").read_text().splitlines()
        if line.strip()
    ]
    usable = page_templates()
    names = sorted(usable)

    plan = Plan([], good=0, duplicates=0, bad_pages=0, bad_json=0, html=0, text=0)
    good_records: list[RawRecord] = []
    n_html = round(n * html_share)
    for i in range(n):
        tag = f"LT-{i:06d}"
        if i < n_html:
            name = names[i % len(names)]
            rec = page_copy(name, usable[name], i, source)
            plan.html += 1
            plan.html_bytes += len(rec.body or "")
        else:
            a = articles[i % len(articles)]
            body = (
                f"{a['title']}\n\n{a['text']}\n\nLoad-test copy {i} of this dispatch, "
                f"reference {tag}, was filed for the ingest load test."
            )
            rec = RawRecord(
                record_id=uuid.uuid4().hex,
                source=source,
                url=f"https://loadtest.example/{a['id']}/{i}",
                path=f"{a['id']}.txt",
                content_type="text",
                body=body,
            )
            plan.text += 1
            plan.text_bytes += len(body)
        good_records.append(rec)
    plan.good = len(good_records)
    rng.shuffle(good_records)
    out = [(r.record_id.encode(), r.to_json()) for r in good_records]
    # exact duplicates: same URL and body, a new record id -> one of the two is skipped
    for r in rng.sample(good_records, min(duplicates, len(good_records))):
        dup = r.model_copy(update={"record_id": uuid.uuid4().hex})
        out.insert(rng.randrange(len(out) + 1), (dup.record_id.encode(), dup.to_json()))
        plan.duplicates += 1
    for j in range(bad_pages):
        bad = RawRecord(
            record_id=uuid.uuid4().hex,
            source=source,
            url=f"https://loadtest.example/paywall/{j}",
            path="paywall.html",
            content_type="html",
            body=EMPTY_PAGE.format(n=j),
        )
        out.insert(rng.randrange(len(out) + 1), (bad.record_id.encode(), bad.to_json()))
        plan.bad_pages += 1
    for j in range(bad_json):
        out.insert(
            rng.randrange(len(out) + 1), (f"bad-{j}".encode(), BAD_PAYLOADS[j % len(BAD_PAYLOADS)])
        )
        plan.bad_json += 1
    plan.records = out
    return plan


# --------------------------------------------------------------------------- the run


@dataclass
class Observed:
    enriched_msgs: int = 0
    enriched_ids: set[bytes] = field(default_factory=set)
    dlq_msgs: int = 0
    dlq_stages: Counter[str] = field(default_factory=Counter)
    health: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, done, main, kids


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:  # noqa: S310
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def processed(stats: dict[str, Any]) -> int:
    return (
        int(stats.get("enriched", 0))
        + sum((stats.get("skipped") or {}).values())
        + sum((stats.get("dead_letters") or {}).values())
    )


async def consume(
    bootstrap: str, topics: dict[str, str], obs: Observed, stop: asyncio.Event
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    cons = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        metadata_max_age_ms=5000,
    )
    await cons.start()
    try:
        tps = []
        for t in topics.values():
            parts = cons.partitions_for_topic(t)
            while not parts:
                await cons._client.force_metadata_update()  # noqa: SLF001
                parts = cons.partitions_for_topic(t)
            tps += [TopicPartition(t, p) for p in parts]
        cons.assign(tps)
        await cons.seek_to_beginning(*tps)
        while not stop.is_set():
            batch = await cons.getmany(timeout_ms=500, max_records=2000)
            for tp, msgs in batch.items():
                for m in msgs:
                    if tp.topic == topics["enriched"]:
                        obs.enriched_msgs += 1
                        obs.enriched_ids.add(m.key)
                    else:
                        obs.dlq_msgs += 1
                        try:
                            obs.dlq_stages[json.loads(m.value)["stage"]] += 1
                        except (ValueError, KeyError, TypeError):
                            obs.dlq_stages["?"] += 1
    finally:
        await cons.stop()


async def publish(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    from aiokafka import AIOKafkaProducer

    prod = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
        request_timeout_ms=30000,
    )
    await prod.start()
    t0 = time.monotonic()
    try:
        pending = []
        for i, (key, value) in enumerate(records, 1):
            pending.append(await prod.send(topic, value=value, key=key))
            if len(pending) >= 500 or i == len(records):
                await asyncio.gather(*pending)
                pending.clear()
                say(f"published {i}/{len(records)}")
    finally:
        await prod.stop()
    return time.monotonic() - t0


async def run(
    args: argparse.Namespace,
    bootstrap: str,
    redis_url: str,
    tmp: Path,
    worker_holder: list[subprocess.Popen[bytes]],
    deadline: float,
) -> int:
    """``deadline``: time.monotonic() by which the report must be printed."""
    from worker.kafka_io import ensure_topics
    from worker.settings import Settings
    from worker.tagging import Tagger

    prefix = f"lt{uuid.uuid4().hex[:8]}."
    port = devservices.free_port()
    feeds = tmp / "feeds.yaml"
    feeds.write_text("feeds: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    env.update(
        {
            "WORKER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "WORKER_REDIS_URL": redis_url,
            "WORKER_TOPIC_PREFIX": prefix,
            "WORKER_APP_ID": f"ingest-{prefix.rstrip('.')}",
            "WORKER_WEB_PORT": str(port),
            "WORKER_DATA_DIR": str(tmp / "faust"),
            "WORKER_FEEDS_FILE": str(feeds),
            "WORKER_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if args.extract_workers is not None:
        env["WORKER_EXTRACT_WORKERS"] = str(args.extract_workers)
    for item in args.worker_env:  # e.g. STREAM_BUFFER_MAXSIZE=64 (faust reads its env)
        k, _, v = item.partition("=")
        env[k] = v
    settings = Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix)
    names = settings.topic_names
    tagger = Tagger.from_config_dir(ROOT / "configs")
    await ensure_topics(settings, names.all(tagger.topics))

    say(f"generating {args.articles} articles ...")
    plan = build_plan(
        args.articles, args.html_share, args.duplicates, args.bad_pages, args.bad_json, args.seed
    )
    n_in = len(plan.records)

    log_path = tmp / "worker.log"
    with log_path.open("ab") as logf:
        # one short, non-blocking call: Popen returns at once
        proc = subprocess.Popen(  # noqa: ASYNC220
            [PY, "-m", "worker", "worker"],  # noqa: S603
            env=env,
            cwd=ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker_holder.append(proc)
    say(f"worker pid {proc.pid}, web port {port}, topics {prefix}*, log {log_path}")
    start_by = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"worker exited {proc.returncode} during start:\n"
                + "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
            )
        h = health(port)
        if h is not None and h.get("stats"):
            break
        if time.monotonic() > start_by:
            raise RuntimeError("worker not healthy within 180 s; see " + str(log_path))
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # let the pool settle after warm-up
    idle_main, idle_kids = tree_rss(proc.pid)

    obs = Observed()
    stop = asyncio.Event()
    consumer = asyncio.create_task(
        consume(bootstrap, {"enriched": names.enriched, "dlq": names.dlq}, obs, stop)
    )
    t_start = time.monotonic()
    hard_deadline = deadline
    pub_task = asyncio.create_task(publish(bootstrap, names.raw, plan.records))

    async def sample_loop() -> None:
        while True:
            h = await asyncio.to_thread(health, port)
            if h is not None:
                obs.health = h.get("stats") or obs.health
            main, kids = tree_rss(proc.pid)
            done = processed(obs.health)
            obs.samples.append((time.monotonic() - t_start, done, main, kids))
            if pub_task.done():
                el = time.monotonic() - t_start
                say(
                    f"[{el:6.0f}s] {done}/{n_in} processed ({100 * done / n_in:5.1f}%)  "
                    f"enriched ids {len(obs.enriched_ids)}  dlq {obs.dlq_msgs}  "
                    f"rate {done / max(el, 1e-9):5.1f}/s  RSS {(main + kids) / 1024:.0f} MiB "
                    f"(worker {main / 1024:.0f} + pool {kids / 1024:.0f})"
                )
            await asyncio.sleep(1.0)

    sampler = asyncio.create_task(sample_loop())
    status = "timeout"
    try:
        publish_s = await pub_task
        while time.monotonic() < hard_deadline:
            if proc.poll() is not None:
                status = f"worker died (exit {proc.returncode})"
                break
            skipped = sum((obs.health.get("skipped") or {}).values())
            if processed(obs.health) >= n_in and obs.enriched_msgs + skipped + obs.dlq_msgs >= n_in:
                status = "done"
                break
            await asyncio.sleep(0.5)
        t_done = time.monotonic() - t_start
        await asyncio.sleep(2)  # anything extra (a redelivery) shows up now
        h = health(port)
        if h is not None:
            obs.health = h.get("stats") or obs.health
    finally:
        sampler.cancel()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sampler
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer, 15)

    return report(
        args, plan, obs, n_in, status, publish_s, t_done, (idle_main, idle_kids), log_path
    )


def report(
    args: argparse.Namespace,
    plan: Plan,
    obs: Observed,
    n_in: int,
    status: str,
    publish_s: float,
    t_done: float,
    idle: tuple[int, int],
    log_path: Path,
) -> int:
    st = obs.health
    skipped = sum((st.get("skipped") or {}).values())
    h_dlq = sum((st.get("dead_letters") or {}).values())
    # per record: each record that ended enriched published one event, so the messages on
    # articles.enriched count records; distinct ids count articles (none may be missing)
    enriched = obs.enriched_msgs
    distinct = len(obs.enriched_ids)
    exp_enriched = plan.good
    exp_skipped = plan.duplicates
    exp_dlq = plan.bad_pages + plan.bad_json
    balanced = n_in == enriched + skipped + obs.dlq_msgs
    none_lost = distinct == plan.good
    ok = balanced and none_lost
    print()
    print(
        f"load test: {plan.good} distinct articles ({plan.html} HTML "
        f"{plan.html_bytes / 2**20:.0f} MiB, {plan.text} text {plan.text_bytes / 2**20:.1f} MiB)"
        f" + {plan.duplicates} duplicates + {plan.bad_pages} pages that clean to nothing"
        f" + {plan.bad_json} undecodable payloads; one worker; status: {status}"
    )
    print(f"{'':32}{'observed':>10}{'expected':>10}{'/health':>10}")
    print(f"{'articles in (raw records)':32}{n_in:>10}{n_in:>10}{st.get('received', '-'):>10}")
    print(
        f"{'enriched (messages = records)':32}{enriched:>10}{exp_enriched:>10}"
        f"{st.get('enriched', '-'):>10}"
    )
    print(f"{'enriched distinct article ids':32}{distinct:>10}{exp_enriched:>10}")
    reasons = ", ".join(f"{k} {v}" for k, v in (st.get("skipped") or {}).items())
    print(f"{'skipped':32}{skipped:>10}{exp_skipped:>10}{skipped:>10}  {reasons}")
    stages = ", ".join(f"{k} {v}" for k, v in sorted(obs.dlq_stages.items()))
    print(f"{'dead letters':32}{obs.dlq_msgs:>10}{exp_dlq:>10}{h_dlq:>10}  {stages}")
    print(f"{'alerts published':32}{st.get('alerts', '-'):>10}")
    print(
        f"{'retries, dedup errors':32}{st.get('retries', '-'):>10}{st.get('dedup_errors', '-'):>10}"
    )
    print(
        f"accounting in == enriched + skipped + dlq: {n_in} == {enriched} + {skipped} + "
        f"{obs.dlq_msgs} -> {'PASS' if balanced else 'FAIL'}; every article enriched: "
        f"{distinct}/{plan.good} -> {'PASS' if none_lost else 'FAIL'}"
    )
    exact = (enriched, skipped, obs.dlq_msgs) == (exp_enriched, exp_skipped, exp_dlq)
    agrees = (st.get("received"), st.get("enriched"), h_dlq) == (n_in, enriched, obs.dlq_msgs)
    print(
        f"each count as expected: {'yes' if exact else 'NO'}"
        + (
            ""
            if exact
            else " (a duplicate handled concurrently with its original is "
            "enriched twice, same id: allowed)"
        )
        + f"; /health agrees: {'yes' if agrees else 'NO'}"
    )
    print(f"publish: {n_in} records in {publish_s:.1f} s ({n_in / publish_s:.0f}/s)")
    print(
        f"throughput: {n_in} records accounted for in {t_done:.1f} s -> "
        f"{n_in / t_done:.1f} articles/s end to end"
    )
    samples = obs.samples
    if samples:

        def at(frac: float) -> tuple[float, int, int, int] | None:
            return next((s for s in samples if s[1] >= frac * n_in), None)

        p10, p90 = at(0.10), at(0.90)
        if p10 and p90 and p90[0] > p10[0]:
            print(f"steady rate 10%->90%: {(p90[1] - p10[1]) / (p90[0] - p10[0]):.1f} articles/s")
        print(
            "RSS (MiB) of the worker process and its children (*pool process, resource "
            "tracker), sampled 1/s"
        )
        print(f"{'progress':>10}{'t s':>8}{'done':>7}{'worker':>8}{'pool*':>7}{'total':>7}")
        print(
            f"{'idle':>10}{'-':>8}{0:>7}{idle[0] / 1024:>8.0f}{idle[1] / 1024:>7.0f}"
            f"{sum(idle) / 1024:>7.0f}"
        )
        rows = {}
        for frac in (0.10, 0.50, 0.90, 1.00):
            s = at(frac) or samples[-1]
            rows[frac] = s
            print(
                f"{int(frac * 100):>9}%{s[0]:>8.0f}{s[1]:>7}{s[2] / 1024:>8.0f}"
                f"{s[3] / 1024:>7.0f}{(s[2] + s[3]) / 1024:>7.0f}"
            )
        peak = max(samples, key=lambda s: s[2] + s[3])
        print(
            f"{'peak':>10}{peak[0]:>8.0f}{peak[1]:>7}{peak[2] / 1024:>8.0f}{peak[3] / 1024:>7.0f}"
            f"{(peak[2] + peak[3]) / 1024:>7.0f}"
        )
        r10, r100 = rows[0.10], rows[1.00]
        print(
            f"RSS@100% / RSS@10%: {(r100[2] + r100[3]) / max(1, r10[2] + r10[3]):.2f} total, "
            f"{r100[2] / max(1, r10[2]):.2f} worker, {r100[3] / max(1, r10[3]):.2f} pool "
            f"({len(samples)} samples)"
        )
        print(
            f"peak / idle: {(peak[2] + peak[3]) / max(1, sum(idle)):.2f} total, "
            f"{peak[2] / max(1, idle[0]):.2f} worker; raw backlog published at once: "
            f"{(plan.html_bytes + plan.text_bytes) / 2**20:.0f} MiB"
        )
    if not ok or status != "done":
        print(f"worker log: {log_path}" + (" (kept with --keep)" if args.keep else ""))
    return 0 if ok and status == "done" else 1


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=3000, help="distinct good articles")
    ap.add_argument("--html-share", type=float, default=0.5, help="share of HTML pages")
    ap.add_argument("--duplicates", type=int, default=20, help="exact re-sends (skips)")
    ap.add_argument("--bad-pages", type=int, default=10, help="pages that clean to nothing")
    ap.add_argument("--bad-json", type=int, default=10, help="payloads that are no raw record")
    ap.add_argument("--extract-workers", type=int, default=None, help="WORKER_EXTRACT_WORKERS")
    ap.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the worker, e.g. STREAM_BUFFER_MAXSIZE=64",
    )
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds, whole run")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument(
        "--use-running",
        action="store_true",
        help="use WORKER_KAFKA_BOOTSTRAP_SERVERS / WORKER_REDIS_URL",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = ap.parse_args(argv)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="load-test-"))
    state_dir = tmp / "services"
    started = False
    worker: list[subprocess.Popen[bytes]] = []
    t0 = time.monotonic()
    rc = 2
    try:
        if args.use_running:
            bootstrap = os.environ.get("WORKER_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
            redis_url = os.environ.get("WORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
        else:
            say(f"starting Kafka and Redis in {state_dir} ...")
            started = True
            svc = devservices.start_services(state_dir)
            bootstrap, redis_url = svc.kafka_bootstrap, svc.redis_url
            say(f"Kafka {bootstrap}, Redis {redis_url} (took {time.monotonic() - t0:.0f} s)")
        # the watch loop gives up 30 s before the end so the report still prints;
        # wait_for is the hard bound
        deadline = t0 + args.timeout
        rc = asyncio.run(
            asyncio.wait_for(
                run(args, bootstrap, redis_url, tmp, worker, deadline - 30),
                max(deadline - time.monotonic(), 1),
            )
        )
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
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip clean-up
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in worker:
            say(f"stopping the worker (pid {p.pid}) ...")
            stop_worker(p)
            if rc != 0 and (tmp / "worker.log").exists():
                tail = (tmp / "worker.log").read_text(errors="replace").splitlines()[-15:]
                print("--- worker log tail ---\n" + "\n".join(tail), file=sys.stderr)
        if started:
            say("stopping Kafka and Redis ...")
            with contextlib.suppress(Exception):
                devservices.stop_services(state_dir)
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
