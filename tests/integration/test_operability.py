"""What an operator relies on, against the real Kafka broker and Redis: JSON logs from a
real worker, and a non-zero exit status when the worker crashes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

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
