"""The worker's promises, proven against the real Kafka broker and Redis.

Each test starts and kills real processes (the worker, the broker, the Redis server)
and ends with the accounting: every record accepted on articles.raw is an enriched
event (counted by distinct article id), a dead letter, or a counted skip.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / "tests" / "data" / "diplomacy-dev.jsonl"


def write_articles(
    folder: Path, n: int, *, offset: int = 0, bad: int = 0, html: bool = False
) -> int:
    """n real articles (Wikinews, from the labelled dev set) as ready raw records, plus
    ``bad`` pages that clean to nothing. -> the number of good records written.
    ``html`` wraps each in a page, so that it goes through trafilatura (slower)."""
    from html import escape

    folder.mkdir(parents=True, exist_ok=True)
    every = DEV.read_text().splitlines()
    lines = [every[(offset + i) % len(every)] for i in range(n)]
    for i, line in enumerate(lines):
        art = json.loads(line)
        copy = (offset + i) // len(every)
        if copy:  # past the end of the set: the same article under another URL
            art["url"] = f"{art['url']}?copy={copy}"
            art["id"] = f"{art['id']}-{copy}"
        if html:
            paras = "".join(f"<p>{escape(p)}</p>" for p in art["text"].split("\n") if p.strip())
            record = {
                "url": art["url"],
                "content_type": "html",
                "body": f"<html><head><title>{escape(art['title'])}</title></head><body>"
                f"<nav>Home | World</nav><article><h1>{escape(art['title'])}</h1>"
                f"{paras}</article><footer>Copyright</footer></body></html>",
            }
        else:
            record = {
                "url": art["url"],
                "content_type": "text",
                "body": f"{art['title']}\n\n{art['text']}",
            }
        (folder / f"{offset + i:04d}_{art['id']}.json").write_bytes(orjson.dumps(record))
    for j in range(bad):
        (folder / f"9{j:03d}_empty.html").write_text(
            f"<html><body><nav>Home {j}</nav><footer>Copyright</footer></body></html>"
        )
    return len(lines)


def write_slow_records(folder: Path, pages, n: int, start: int = 0) -> int:
    """n records that point at pages of a slow news site: the worker fetches each one."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (folder / f"{i:04d}.json").write_bytes(orjson.dumps({"url": pages.url(f"/article/{i}")}))
    return n


def distinct_ids(msgs: list[dict]) -> set[str]:
    return {m["value"]["id"] for m in msgs}


def wait_distinct(w, n: int, proc, timeout: float = 240) -> set[str]:
    deadline = time.monotonic() + timeout
    ids: set[str] = set()
    while time.monotonic() < deadline:
        ids = distinct_ids(w.kcat("articles.enriched"))
        if len(ids) >= n:
            return ids
        if proc.poll() is not None:
            pytest.fail(f"worker died ({proc.returncode}):\n{w.log_tail(proc)}")
        time.sleep(1)
    pytest.fail(f"{len(ids)} distinct articles enriched, expected {n}\n{w.log_tail(proc)}")


def test_sigkill_mid_replay_then_restart_loses_nothing(worker_env_factory, pages, tmp_path):
    """Pages from a slow news site (0.2 s each), so the kill surely lands mid-batch."""
    pages.article_delay_s = 0.2
    w = worker_env_factory()
    folder = tmp_path / "in"
    good = write_slow_records(folder, pages, 120)
    for j in range(3):
        (folder / f"9{j:03d}_empty.html").write_text(
            f"<html><body><nav>Home {j}</nav><footer>Copyright</footer></body></html>"
        )
    proc = w.start_worker("first")
    res = w.cli("replay", "-q", str(folder), check=True)
    assert f"{good + 3} published" in res.stderr
    w.wait_stats(lambda s: s["enriched"] >= 3)
    w.stop(proc, signal.SIGKILL)  # mid-batch: no commit, no goodbye
    done_before = len(distinct_ids(w.kcat("articles.enriched")))
    assert 3 <= done_before < good, "the kill came too late to prove anything"

    proc2 = w.start_worker("second")
    ids = wait_distinct(w, good, proc2)
    assert len(ids) == good
    dlq = w.wait_for("articles.dlq", 3, proc=proc2)
    stages = [m["value"]["stage"] for m in dlq]
    assert len({m["value"]["record_id"] for m in dlq}) == 3 and set(stages) == {"clean"}
    # every enriched message is a valid event; repeats are the same article ids
    enriched = w.kcat("articles.enriched")
    assert len(enriched) >= good and distinct_ids(enriched) == ids
    assert {m["value"]["text_origin"] for m in enriched} == {"page"}


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc: the pool's processes and helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # zombies are dead already
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(p)
    return alive


def test_sigkill_leaves_no_extraction_process_behind(worker_env_factory):
    """Only the worker's own pid is killed (not its process group, as a supervisor or the OOM
    killer would): its extraction processes must not live on as orphans."""
    w = worker_env_factory(WORKER_EXTRACT_WORKERS="2")
    proc = w.start_worker()
    deadline = time.monotonic() + 60
    kids: set[int] = set()
    while time.monotonic() < deadline and len(kids) < 2:
        kids = _descendants(proc.pid)
        time.sleep(0.5)
    assert len(kids) >= 2, f"no pool processes found under {proc.pid}"
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(kids):
            time.sleep(0.2)
        assert not _alive(kids), f"orphans left: {_alive(kids)}"
    finally:
        for p in _alive(kids):
            os.kill(p, signal.SIGKILL)


def test_sigterm_finishes_cleanly_within_bound_and_restart_completes(
    worker_env_factory, pages, tmp_path
):
    pages.article_delay_s = 0.2
    w = worker_env_factory()
    good = write_slow_records(tmp_path / "in", pages, 80)
    proc = w.start_worker("first")
    w.cli("replay", "-q", str(tmp_path / "in"), check=True)
    w.wait_stats(lambda s: s["enriched"] >= 5)
    t0 = time.monotonic()
    code = w.stop(proc, signal.SIGTERM, timeout=45)
    took = time.monotonic() - t0
    assert took < 45 and code == 0, w.log_tail(proc)
    assert len(distinct_ids(w.kcat("articles.enriched"))) < good  # it stopped mid-stream
    proc2 = w.start_worker("second")
    assert len(wait_distinct(w, good, proc2)) == good
    assert w.kcat("articles.dlq") == []  # the shutdown dead-lettered nothing


def test_broker_restart_mid_stream(worker_env_factory, services, pages, tmp_path):
    pages.article_delay_s = 0.2
    w = worker_env_factory()
    good = write_slow_records(tmp_path / "in", pages, 80)
    proc = w.start_worker()
    w.cli("replay", "-q", str(tmp_path / "in"), check=True)
    handled = w.wait_stats(lambda s: s["enriched"] >= 5)["handled"]
    services.restart_kafka()
    assert handled < good  # the broker went away mid-stream
    ids = wait_distinct(w, good, proc, timeout=300)
    assert len(ids) == good
    assert proc.poll() is None  # it reconnected, it did not die
    assert w.kcat("articles.dlq") == []


def test_redis_outage_keeps_publishing_then_dedup_resumes(worker_env_factory, services, tmp_path):
    w = worker_env_factory()
    first = write_articles(tmp_path / "a", 5, offset=0)
    second = write_articles(tmp_path / "b", 5, offset=5)
    proc = w.start_worker()
    w.cli("replay", "-q", str(tmp_path / "a"), check=True)
    wait_distinct(w, first, proc)

    services.stop_redis()
    try:
        w.wait_ready(503, proc)  # the worker's live check sees Redis gone
        w.cli("replay", "-q", str(tmp_path / "b"), check=True)
        ids = wait_distinct(w, first + second, proc)  # published although Redis is down
        assert len(ids) == first + second
        h = w.health()
        assert h and h["status"] == "degraded" and h["redis"] == "unavailable"
        assert "dedup store unavailable" in w.log_tail(proc, 400)
    finally:
        services.start_redis()

    # Redis is back (empty: it keeps nothing on disk here): the next records mark again
    w.cli("replay", "-q", str(tmp_path / "b"), check=True)
    w.wait_stats(lambda s: s["handled"] >= first + 2 * second)
    _, h = w.wait_ready(200, proc)  # the live checks see Redis again within a probe interval
    assert h["status"] == "ok", h
    before = len(w.kcat("articles.enriched"))
    w.cli("replay", "-q", str(tmp_path / "b"), check=True)
    stats = w.wait_stats(lambda s: s["handled"] >= first + 3 * second)
    assert stats["skipped"].get("duplicate", 0) >= second
    assert len(w.kcat("articles.enriched")) == before  # dedup works again


def test_dlq_lists_and_replays_dead_letters(worker_env_factory, tmp_path):
    w = worker_env_factory()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_empty.html").write_text("<html><body><p>too short</p></body></html>")
    proc = w.start_worker()
    w.cli("replay", "-q", str(folder))
    w.wait_for("articles.dlq", 1, proc=proc)
    listed = w.cli("dlq", check=True)
    assert "clean" in listed.stdout and "EmptyContent" in listed.stdout
    assert "a_empty.html" in listed.stdout and "1 dead letter(s)" in listed.stderr
    replayed = w.cli("dlq", "--replay", check=True)
    assert "replayed 1 record(s)" in replayed.stderr
    dlq = w.wait_for("articles.dlq", 2, proc=proc)
    assert dlq[-1]["value"]["attempts"] >= 2  # the replayed record came back, counted


def test_sigterm_with_the_broker_gone_still_exits_within_bound(worker_env_factory, services):
    w = worker_env_factory(WORKER_SHUTDOWN_TIMEOUT_S="5")
    proc = w.start_worker()
    services.stop_kafka()
    try:
        time.sleep(2)
        t0 = time.monotonic()
        code = w.stop(proc, signal.SIGTERM, timeout=60)
        took = time.monotonic() - t0
    finally:
        services.start_kafka()
    assert took < 20, f"took {took:.1f}s"
    assert code is not None


def test_ready_follows_redis_and_kafka_live(worker_env_factory, services):
    """/ready answers 503 within a few seconds of a dependency going, with the failing check
    named and its age, and 200 again after it returns; /health stays 200 (alive) and says
    degraded."""
    w = worker_env_factory()
    proc = w.start_worker()
    _, body = w.wait_ready(200, proc, timeout=60)
    assert body["status"] == "ok" and all(c["ok"] for c in body["checks"].values())
    assert all(c["age_s"] is not None and c["age_s"] < 10 for c in body["checks"].values())

    services.stop_redis()
    try:
        took, body = w.wait_ready(503, proc, timeout=15)
        assert took < 8, took
        assert not body["checks"]["redis"]["ok"] and body["checks"]["kafka"]["ok"]
        assert body["status"] == "degraded" and body["redis"] == "unavailable"
        h = w.health()
        assert h is not None and h["status"] == "degraded"  # alive: /health answers 200
    finally:
        services.start_redis()
    w.wait_ready(200, proc, timeout=20)

    services.stop_kafka()
    try:
        took, body = w.wait_ready(503, proc, timeout=15)
        assert took < 8, took
        assert not body["checks"]["kafka"]["ok"] and body["checks"]["redis"]["ok"]
    finally:
        services.start_kafka()
    _, body = w.wait_ready(200, proc, timeout=90)
    assert body["checks"]["kafka"]["ok"] and body["checks"]["partitions"]["ok"]
    assert proc.poll() is None
