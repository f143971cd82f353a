"""Seed files through a real worker process, a real Kafka broker and a real Redis.

Outputs are read with kcat (librdkafka), a client independent of the worker's.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from worker.events import AlertEvent, DeadLetter, EnrichedEvent
from worker.sources.seeds import list_seed_files
from worker.tagging.train import MODEL_SERIES

ROOT = Path(__file__).resolve().parents[2]
SEED = "000_f06541f7bef2d985.txt"
SEED_TOPICS = {
    "arms-control",
    "nonproliferation",
    "leader-contact",
    "negotiations",
    "pandemic",
    "trade",
    "diplomatic-relations",
}
NOT_SEED_TOPICS = {
    "sanctions",
    "armed-conflict",
    "peace-process",
    "alliances",
    "territorial-disputes",
}


@pytest.fixture(scope="module")
def spine(kafka_bootstrap, redis_url, tmp_path_factory):
    """One worker for the module; seeds/ replayed once."""
    from tests.integration.conftest import make_worker_env

    w = make_worker_env(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("spine"))
    try:
        proc = w.start_worker()
        n_files = len(list_seed_files(ROOT / "seeds")[0])
        res = w.cli("replay", str(ROOT / "seeds"), check=True)
        enriched = w.wait_for("articles.enriched", n_files, proc=proc)
        yield w, proc, res, enriched, n_files
    finally:
        for p in w.procs:  # also when the set-up failed half-way
            w.stop(p)


def _seed_event(enriched):
    for m in enriched:
        if m["value"]["title"] == "Putin, Trump discuss arms, virus":
            return m
    pytest.fail(f"no seed event among {[m['value']['title'] for m in enriched]}")


def test_replay_prints_progress_and_summary(spine):
    _, _, res, _, n_files = spine
    assert f"{SEED} ... published text" in res.stderr
    assert f"{n_files} published to" in res.stderr


def test_seed_enriched_event_field_by_field(spine):
    w, _, _, enriched, _ = spine
    msg = _seed_event(enriched)
    ev = msg["value"]
    EnrichedEvent.model_validate(ev)  # the contract
    assert msg["key"] == ev["id"] and len(ev["id"]) == 32
    assert ev["url"] is None
    assert ev["source"] == {"kind": "seed", "name": "seeds", "feed_url": None}
    assert ev["authors"] == ["Ren Qi"]
    assert ev["site_name"] == "China Daily"
    assert datetime.fromisoformat(ev["published_at"]).isoformat() == "2020-07-25T07:45:00+08:00"
    assert ev["language"] == "en"
    assert ev["text"].startswith("Russian President Vladimir Putin and his US counterpart")
    assert ev["text"].rstrip().endswith("Xinhua contributed to the story.")
    for junk in (
        "Global Edition",
        "BACK TO THE TOP",
        "Copyright",
        "Registration Number",
        "xi's moments",
        "Home | Europe",
    ):
        assert junk not in ev["text"]
    ids = {t["id"] for t in ev["topics"]}
    assert SEED_TOPICS <= ids and not (ids & NOT_SEED_TOPICS)
    assert ids == SEED_TOPICS
    assert {"RU", "US", "CN", "IR", "AT"} <= set(ev["countries"])
    for t in ev["topics"]:
        assert t["iptc"].startswith("medtop:") and 0 < t["score"] <= 1 and t["evidence"]
        for e in t["evidence"]:
            field_text = ev["text"] if e["field"] == "text" else ev["title"]
            assert field_text[e["start"] : e["end"]] == e["term"]
            assert e["term"] in e["sentence"]
    assert ev["schema_version"] == 2 and ev["taxonomy_version"] and ev["pipeline_version"]
    model = json.loads((ROOT / "configs" / "topic-model.json").read_bytes())
    assert ev["model_version"] == model["version"]  # the worker loaded the learned model
    assert ev["text_origin"] == "file" and ev["revision"] == 1
    assert datetime.fromisoformat(ev["ingested_at"]).tzinfo is not None


def test_arms_control_alert_read_by_kcat(spine):
    w, proc, _, enriched, _ = spine
    seed = _seed_event(enriched)["value"]
    alerts = w.wait_for("alerts.arms-control", 1, proc=proc)
    mine = [a for a in alerts if a["value"]["article_id"] == seed["id"]]
    assert len(mine) == 1
    alert = mine[0]
    AlertEvent.model_validate(alert["value"])
    assert alert["key"] == seed["id"]
    a = alert["value"]
    assert a["topic"] == "arms-control" and a["title"] == seed["title"]
    assert a["published_at"] == seed["published_at"] and "RU" in a["countries"]
    assert any("arms control" in s.lower() for s in a["evidence"])
    # non-diplomacy pages in seeds/ get no alert for topics they are not about
    assert not w.kcat("alerts.territorial-disputes") or all(
        m["value"]["article_id"] != seed["id"] for m in w.kcat("alerts.territorial-disputes")
    )


def test_alerts_command_prints_the_seed_alert(spine):
    w, _, _, _, _ = spine
    res = w.cli(
        "alerts", "arms-control", "--from-beginning", "--max", "1", "--timeout", "60", check=True
    )
    assert "[arms-control" in res.stdout and "Putin, Trump discuss arms, virus" in res.stdout


def test_second_replay_publishes_no_duplicate(spine):
    w, proc, _, enriched, n_files = spine
    before = len(enriched)
    w.cli("replay", "-q", str(ROOT / "seeds"), check=True)
    stats = w.wait_stats(lambda s: s["handled"] >= 2 * n_files)
    assert stats["skipped"].get("duplicate", 0) >= n_files
    assert len(w.kcat("articles.enriched")) == before


def test_broken_files_end_as_dead_letters(spine, tmp_path):
    w, proc, _, _, _ = spine
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "001_binary.txt").write_bytes(b"\x00\x01\x02PK\x03\x04" + bytes(range(256)) * 8)
    (folder / "002_empty_page.html").write_text("<html><body><nav>Home</nav></body></html>")
    shutil.copy(ROOT / "seeds" / SEED, folder / "003_good.txt")
    before = len(w.kcat("articles.dlq"))
    res = w.cli("replay", str(folder))
    assert res.returncode == 1  # a file was dead-lettered: the exit status says so
    assert "001_binary.txt ... dead letter (binary)" in res.stderr
    dlq = w.wait_for("articles.dlq", before + 2, proc=proc)[before:]
    by_stage = {m["value"]["stage"]: m["value"] for m in dlq}
    for d in by_stage.values():
        DeadLetter.model_validate(d)
    assert by_stage["source"]["error_class"] == "binary"
    assert by_stage["source"]["original"]["path"].endswith("001_binary.txt")
    assert by_stage["clean"]["error_class"] == "EmptyContent"
    assert by_stage["clean"]["original"]["path"] == "002_empty_page.html"
    assert by_stage["clean"]["original"]["body"].startswith("<html>")
    assert proc.poll() is None  # the worker kept running


def test_garbage_on_raw_topic_is_dead_lettered(spine):
    w, proc, _, _, _ = spine
    import subprocess

    before = len(w.kcat("articles.dlq"))
    subprocess.run(
        ["kcat", "-b", w.bootstrap, "-P", "-t", w.topic("articles.raw"), "-k", "junk"],
        input=b"this is not a record",
        check=True,
        timeout=30,
    )
    dlq = w.wait_for("articles.dlq", before + 1, proc=proc)
    d = dlq[-1]["value"]
    assert d["stage"] == "decode" and d["original"]["payload"] == "this is not a record"
    health = w.health()
    assert health and health["status"] == "ok"
    assert json.dumps(health).count("decode") >= 1


def _big_page(path: Path, n_bytes: int) -> Path:
    """An article page of about ``n_bytes``: a headline and distinct paragraphs (trafilatura
    drops repeated ones)."""
    paras = []
    size = 0
    i = 0
    while size < n_bytes:
        p = (
            f"<p>In round {i}, the delegations met again in Vienna and discussed item {i * 7} "
            f"of the agenda, the sanctions relief schedule number {i * 13}, and the "
            f"inspection calendar for site {i % 97}, the negotiators said on day {i}.</p>\n"
        )
        paras.append(p)
        size += len(p)
        i += 1
    path.write_text(
        "<html><head><title>Talks in Vienna go on</title></head><body><article>"
        "<h1>Talks in Vienna go on</h1>\n" + "".join(paras) + "</article></body></html>",
        encoding="utf-8",
    )
    return path


def test_a_page_over_a_megabyte_is_published_and_enriched(worker_env_factory, tmp_path):
    """Kafka's default limit is 1 MB a record: a 1.5 MB page used to end `replay` with a
    traceback (MessageSizeTooLargeError). Records are compressed (zstd) and topics created
    with WORKER_KAFKA_MAX_MESSAGE_BYTES (16 MiB by default). (Cleaning takes pages of up to
    2 million characters; larger ones are dead letters of their own, see test_bad_input.)"""
    folder = tmp_path / "big"
    folder.mkdir()
    _big_page(folder / "010_big.html", 1_500_000)
    w = worker_env_factory()
    proc = w.start_worker()
    res = w.cli("replay", "-q", str(folder))
    assert res.returncode == 0, res.stderr
    assert "1 published" in res.stderr and "Traceback" not in res.stderr
    [event] = w.wait_for("articles.enriched", 1, proc=proc, timeout=180)
    assert len(event["value"]["text"]) > 1_000_000  # the enriched event is over 1 MB too


def test_a_record_over_the_limit_is_a_dead_letter_and_replay_goes_on(worker_env_factory, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    _big_page(folder / "001_big.html", 600_000)
    shutil.copy(ROOT / "seeds" / "000_f06541f7bef2d985.txt", folder / "002_seed.txt")
    w = worker_env_factory(WORKER_KAFKA_MAX_MESSAGE_BYTES="262144")
    res = w.cli("replay", "-q", str(folder))
    assert res.returncode == 1, res.stderr  # a dead letter: exit 1, not a crash
    assert "1 published" in res.stderr and "1 dead-lettered" in res.stderr
    assert "Traceback" not in res.stderr
    [letter] = w.wait_for("articles.dlq", 1)
    dead = DeadLetter.model_validate(letter["value"])
    assert dead.error_class == "too-large" and dead.stage == "source"
    assert "WORKER_KAFKA_MAX_MESSAGE_BYTES" in dead.message
    assert dead.original["path"].endswith("001_big.html")
    [raw] = w.wait_for("articles.raw", 1)
    assert raw["value"]["source"]["name"] == "mixed"


def _run_local_once(w, seeds: Path, timeout: float = 120) -> tuple[str, str]:
    """`python -m worker run-local` until it listens for alerts, a few seconds more for the
    alerts to arrive, then SIGTERM, as Ctrl-C would."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "run-local", "--seeds", str(seeds)],
        env=w.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    err_lines: list[str] = []
    out_lines: list[str] = []
    readers = [
        threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True),  # type: ignore[arg-type]
        threading.Thread(target=lambda: out_lines.extend(proc.stdout), daemon=True),  # type: ignore[arg-type]
    ]
    for t in readers:
        t.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(line.startswith("listening on") for line in list(err_lines)):
            time.sleep(8)  # the replay's alerts, if any, arrive now
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    for t in readers:
        t.join(10)
    return "".join(out_lines), "".join(err_lines)


def test_a_second_make_run_shows_no_old_alerts_as_new(worker_env_factory, tmp_path):
    """`make run` twice: the second replay's records are duplicates; it must say so and
    show no alert of the first run as if it had just arrived."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ROOT / "seeds" / "000_f06541f7bef2d985.txt", seeds)
    w = worker_env_factory()
    out1, err1 = _run_local_once(w, seeds)
    assert "1 published" in err1, err1[-2000:]
    assert "1 enriched, 0 skipped as already seen" in err1, err1[-2000:]
    assert "[arms-control" in out1
    out2, err2 = _run_local_once(w, seeds)
    assert "0 enriched, 1 skipped as already seen" in err2, err2[-2000:]
    assert "alert(s) from earlier runs stay on the topics" in err2
    assert "[arms-control" not in out2 and out2.strip() == ""


def test_run_local_names_each_failing_feed_once(worker_env_factory, pages, tmp_path):
    """Feed failures used to go only to .services/worker.log: `make run` shows one line per
    feed that fails to poll (here an HTTP 404 and a refused connection), once."""
    from tests.integration.conftest import free_port

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(ROOT / "seeds" / SEED, seeds)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        "feeds:\n"
        f"  - name: gone\n    url: {pages.url('/404')}\n"
        f"  - name: refused\n    url: http://127.0.0.1:{free_port()}/rss.xml\n"
    )
    w = worker_env_factory(WORKER_FEEDS_FILE=str(feeds))
    out, err = _run_local_once(w, seeds)
    lines = [line for line in err.splitlines() if line.startswith("feed ")]
    assert len(lines) == 2, err[-3000:]
    [gone] = [line for line in lines if line.startswith("feed gone failed to poll: ")]
    assert "404" in gone
    [refused] = [line for line in lines if line.startswith("feed refused failed to poll: ")]
    assert "Traceback" not in err and "1 published" in err


def _scrape(w) -> dict[str, float]:
    """The worker's /metrics, as {'name{labels}': value}."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{w.web_port}/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_metrics_count_what_a_replay_sent(spine, pages, tmp_path):
    """/metrics after the spine's replay (7 articles and 3 broken files) and two records
    whose page the worker fetches (one answers 200, one 404): the counters agree with what
    was sent and what came out; every stage was timed once per record that reached it."""
    w, proc, _, _, n_files = spine
    folder = tmp_path / "fetched"
    folder.mkdir()
    (folder / "ok.json").write_text(json.dumps({"url": pages.url("/ok")}))
    (folder / "gone.json").write_text(json.dumps({"url": pages.url("/404")}))
    before = w.wait_stats(lambda s: s["handled"] >= s["received"] > 0)
    w.cli("replay", "-q", str(folder), check=True)
    stats = w.wait_stats(lambda s: s["handled"] >= s["received"] >= before["received"] + 2)
    m = _scrape(w)
    assert m["diplomacy_records_received_total"] == stats["received"]
    assert m["diplomacy_records_enriched_total"] == stats["enriched"] >= n_files
    for reason, n in stats["skipped"].items():
        assert m[f'diplomacy_records_skipped_total{{reason="{reason}"}}'] == n
    dead = sum(v for k, v in m.items() if k.startswith("diplomacy_dead_letters_total{"))
    assert dead == sum(stats["dead_letters"].values())
    alerts = sum(v for k, v in m.items() if k.startswith("diplomacy_alerts_total{"))
    assert alerts == stats["alerts"] == len(w.kcat("alerts.arms-control")) + sum(
        len(w.kcat(f"alerts.{t}"))
        for t in ("nonproliferation", "sanctions", "trade", "leader-contact", "negotiations",
                  "pandemic", "armed-conflict", "peace-process", "alliances", "multilateral",
                  "diplomatic-relations", "territorial-disputes")
    )  # fmt: skip
    assert m['diplomacy_alerts_total{topic="arms-control"}'] >= 1
    assert m["diplomacy_raw_to_enriched_seconds_count"] == stats["enriched"]
    assert m["diplomacy_record_processing_seconds_count"] == stats["handled"] - sum(
        stats["dead_letters"].get(s, 0) for s in ("decode",)
    )
    assert m['diplomacy_dependency_up{dependency="redis"}'] == 1
    assert m['diplomacy_dependency_up{dependency="kafka"}'] == 1
    assert m["diplomacy_partitions_assigned"] == 4  # of articles.raw (not faust's leader topic)
    build = [k for k in m if k.startswith("diplomacy_build_info{")]
    assert len(build) == 1 and f'model_version="{MODEL_SERIES}+' in build[0]

    # per-stage timings: each record counted in each stage it reached
    def stage(name: str) -> float:
        return m.get(f'diplomacy_stage_seconds_count{{stage="{name}"}}', 0.0)

    dead, skipped = stats["dead_letters"], sum(stats["skipped"].values())
    assert stage("tag") == stats["enriched"] + dead.get("tag", 0)
    assert stage("dedup") == stage("tag") + skipped  # past dedup: tagged, or skipped
    assert stage("clean") >= stage("dedup") > 0
    assert stage("publish") == stats["enriched"] + sum(dead.values())  # every outcome but a skip
    assert stage("fetch") == 2  # the two records with only a URL
    for name in ("fetch", "clean", "dedup", "tag", "publish"):
        assert 0 < m[f'diplomacy_stage_seconds_sum{{stage="{name}"}}'] < 60 * stage(name)
        assert m[f'diplomacy_stage_seconds_bucket{{le="+Inf",stage="{name}"}}'] == stage(name)
    assert (
        stage("tag") > 0
        and m['diplomacy_stage_seconds_sum{stage="tag"}']
        < m['diplomacy_stage_seconds_sum{stage="clean"}']
    )  # tagging costs a fraction of cleaning (tests/benchmarks/bench_tagging.py)
    # page fetches by status class
    assert m['diplomacy_http_fetches_total{kind="page",status_class="2xx"}'] == 1
    assert m['diplomacy_http_fetches_total{kind="page",status_class="4xx"}'] == 1
    assert dead.get("fetch", 0) >= 1  # the 404, at once
    # the extraction pool is idle once everything is handled
    assert m["diplomacy_extraction_in_flight"] == 0
    assert m["diplomacy_extraction_queue_depth"] == 0
    # consumer lag: one series per partition of articles.raw held, 0 once all is committed
    m = _wait_metrics(w, lambda m: sum(_lag(w, m).values()) == 0)
    assert sorted(_lag(w, m)) == ["0", "1", "2", "3"]  # WORKER_TOPIC_PARTITIONS, all held
    assert proc.poll() is None


def test_consumer_lag_counts_records_not_yet_handled(spine, pages, tmp_path):
    """Records whose pages are slow to answer are received but not committed: the lag
    shows them while they are in flight, and goes back to 0 once they are handled."""
    w, proc, _, _, _ = spine
    folder = tmp_path / "slow"
    folder.mkdir()
    for n in range(3):
        (folder / f"{n}.json").write_text(json.dumps({"url": pages.url(f"/article/lag-{n}")}))
    w.wait_stats(lambda s: s["handled"] >= s["received"] > 0)
    pages.article_delay_s = 8.0
    w.cli("replay", "-q", str(folder), check=True)
    behind = _wait_metrics(w, lambda m: sum(_lag(w, m).values()) >= 3, timeout=8)
    assert all(v >= 0 for v in _lag(w, behind).values())
    _wait_metrics(w, lambda m: sum(_lag(w, m).values()) == 0, timeout=60)
    assert proc.poll() is None


def _lag(w, m: dict[str, float]) -> dict[str, float]:
    """The diplomacy_consumer_lag series of the worker's raw topic, by partition."""
    import re

    out = {}
    for key, value in m.items():
        if key.startswith("diplomacy_consumer_lag{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
            assert labels["topic"] == w.topic("articles.raw"), key
            out[labels["partition"]] = value
    return out


def _wait_metrics(w, pred, timeout: float = 20) -> dict[str, float]:
    import time

    deadline = time.monotonic() + timeout
    m: dict[str, float] = {}
    while time.monotonic() < deadline:
        m = _scrape(w)
        if pred(m):
            return m
        time.sleep(0.5)
    pytest.fail(f"/metrics never matched: {[(k, v) for k, v in m.items() if 'lag' in k]}")
