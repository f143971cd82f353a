"""What an operator relies on, against the real Kafka broker and Redis: JSON logs from a
real worker, a non-zero exit status when the worker crashes, and `dlq --replay` that
remembers what it replayed."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

from worker.events import DeadLetter, RawRecord, Source
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


# --- JSON logs ----------------------------------------------------------------------------


def test_worker_logs_json_lines_with_the_record_they_concern(worker_env_factory, tmp_path):
    """WORKER_LOG_FORMAT=json: every line the worker writes (its own logs and faust's, from
    start to a SIGTERM) is one JSON object with time, level, logger and message; an
    enriched record's line names the record and the article."""
    w = worker_env_factory(WORKER_LOG_FORMAT="json")
    proc = w.start_worker()
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text((ROOT / "seeds" / "000_f06541f7bef2d985.txt").read_text())
    w.cli("replay", "-q", str(folder), check=True)
    w.wait_for("articles.enriched", 1, proc=proc)
    assert w.stop(proc, signal.SIGTERM) == 0
    lines = proc.log_path.read_text().splitlines()  # type: ignore[attr-defined]
    assert len(lines) > 20
    objs = []
    for line in lines:
        try:
            objs.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    for o in objs:
        assert list(o)[:4] == ["time", "level", "logger", "message"], o
    loggers = {o["logger"] for o in objs}
    assert any(name.startswith("faust") for name in loggers)  # faust's own logs too
    [enriched] = [o for o in objs if o["message"].startswith("enriched ")]
    assert enriched["level"] == "INFO" and enriched["logger"] == "worker.pipeline"
    assert enriched["article_id"] and enriched["record_id"]
    assert not any("ƒaµS†" in o["message"] for o in objs)  # no banner in JSON


# --- exit status after a crash ------------------------------------------------------------


def test_a_worker_that_cannot_bind_its_port_exits_non_zero(worker_env_factory):
    """Another process holds the web port (a second worker on the host): faust's web
    service fails to start, the worker stops and exits non-zero, so a supervisor notices."""
    w = worker_env_factory()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", w.web_port))
        holder.listen()
        proc = w.start_worker(wait=False)
        code = proc.wait(timeout=120)
    assert code != 0, w.log_tail(proc)
    assert "address already in use" in w.log_tail(proc, 400)


def test_a_crashed_worker_exits_non_zero(worker_env_factory):
    """A faust timer that raises (a bug) crashes the worker: faust logs "We experienced a
    crash! Reraising original exception" and the process must exit non-zero. The worker is
    the real `python -m worker worker` with one more timer (tests/integration/
    crashing_worker.py), against the real broker and Redis."""
    w = worker_env_factory()
    log_path = w.log_dir / "crashing.log"
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crashing_worker"],
            env=w.env,
            cwd=ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    w.procs.append(proc)
    code = proc.wait(timeout=120)
    log = log_path.read_text(errors="replace")
    assert "a bug in a timer" in log and "We experienced a crash" in log, log[-3000:]
    assert code != 0, log[-3000:]


# --- dlq --replay remembers -----------------------------------------------------------------


def _letters(n: int, *, start: int = 0, stage: str = "clean") -> list[DeadLetter]:
    out = []
    for i in range(start, start + n):
        rec = RawRecord(
            record_id=f"rec-{i}",
            source=Source(kind="seed", name="t"),
            path=f"{i}.txt",
            content_type="text",
            body=f"article {i}",
        )
        out.append(
            DeadLetter(
                record_id=rec.record_id,
                stage=stage,  # type: ignore[arg-type]
                error_class="EmptyContent",
                message="no text after cleaning",
                retriable=False,
                attempts=1,
                original=rec.model_dump(mode="json"),
            )
        )
    return out


def _publish(w, letters: list[DeadLetter]) -> None:
    from worker import kafka_io

    settings = Settings(kafka_bootstrap_servers=w.bootstrap, topic_prefix=w.prefix)

    async def go() -> None:
        names = settings.topic_names
        await kafka_io.ensure_topics(settings, [names.dlq, names.raw])
        async with kafka_io.producer(settings) as prod:
            futs = [
                await prod.send(names.dlq, d.to_json(), key=d.record_id.encode()) for d in letters
            ]
            await asyncio.gather(*futs)

    asyncio.run(go())


def test_dlq_replay_sends_each_letter_once_unless_all(worker_env_factory):
    """450 dead letters (more than a batch, over every partition) and one that has no raw
    record: the first replay sends the 450, a second sends nothing, a new letter alone is
    sent next, --all sends everything again; --stage keeps its own position."""
    w = worker_env_factory()  # no worker: nothing consumes articles.raw or adds letters
    not_raw = DeadLetter(
        record_id="file:x.bin",
        stage="source",
        error_class="not-text",
        message="not a text file",
        retriable=False,
        attempts=1,
        original={"path": "x.bin"},
    )
    _publish(w, [*_letters(450), not_raw])

    first = w.cli("dlq", "--replay", check=True)
    assert "replayed 450 record(s)" in first.stderr and "1 could not be replayed" in first.stderr
    raw = w.kcat("articles.raw")
    assert len(raw) == 450
    assert {m["value"]["record_id"] for m in raw} == {f"rec-{i}" for i in range(450)}
    assert {m["value"]["attempt"] for m in raw} == {1}

    second = w.cli("dlq", "--replay", check=True)
    assert "replayed 0 record(s)" in second.stderr, second.stderr
    assert "451 seen by an earlier replay were passed over" in second.stderr
    assert second.stdout.strip() == ""  # lists what it replays: nothing
    assert len(w.kcat("articles.raw")) == 450

    _publish(w, _letters(1, start=450, stage="fetch"))
    third = w.cli("dlq", "--replay", check=True)
    assert "replayed 1 record(s)" in third.stderr and "rec-450" not in third.stderr
    raw = w.kcat("articles.raw")
    assert len(raw) == 451 and raw[-1]["value"]["record_id"] == "rec-450"

    again = w.cli("dlq", "--replay", "--all", check=True)
    assert "replayed 451 record(s)" in again.stderr
    assert len(w.kcat("articles.raw")) == 902

    # a stage has its own position: the fetch letter once, then not again
    staged = w.cli("dlq", "--replay", "--stage", "fetch", check=True)
    assert "replayed 1 record(s)" in staged.stderr and "1 dead letter(s)" in staged.stderr
    assert "replayed 0 record(s)" in w.cli("dlq", "--replay", "--stage", "fetch").stderr
    assert len(w.kcat("articles.raw")) == 903

    listed = w.cli("dlq", check=True)  # listing shows every letter, replayed or not
    assert "452 dead letter(s)" in listed.stderr and len(listed.stdout.splitlines()) == 452


def test_dlq_replay_streams_instead_of_loading_the_topic(worker_env_factory):
    """A replay holds one batch at a time: its memory does not grow with the topic. 3,000
    letters of 20 KB each (60 MB on the topic) are replayed with a peak RSS far below that."""
    w = worker_env_factory()
    big = "x" * 20_000
    letters = [
        d.model_copy(update={"original": {**d.original, "body": big}}) for d in _letters(3000)
    ]
    for i in range(0, len(letters), 500):
        _publish(w, letters[i : i + 500])
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, sys; from worker.cli import main; code = main(sys.argv[1:]); "
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
            "file=sys.stderr); sys.exit(code)",
            "dlq",
            "--replay",
            "--json",
        ],
        env=w.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "replayed 3000 record(s)" in res.stderr
    rss_mb = int(res.stderr.split("maxrss_kb ")[1].split()[0]) / 1024
    baseline = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, worker.cli, worker.kafka_io, worker.events, aiokafka; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    base_mb = int(baseline.stdout.strip()) / 1024
    # loading every letter would add >= 60 MB (the JSON alone, before the parsed copies)
    assert rss_mb - base_mb < 45, (rss_mb, base_mb)
