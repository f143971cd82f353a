"""The worker as a real process against the session's real Kafka and Redis.

Each test module gets its own topic namespace (``WORKER_TOPIC_PREFIX``), consumer
group, web port and data folder, so modules never see each other's records.
Outputs are read with kcat, an independent client (librdkafka).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from worker import devservices

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerEnv:
    """Settings for one namespace: the env of every process a test starts."""

    env: dict[str, str]
    prefix: str
    bootstrap: str
    web_port: int
    log_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def topic(self, name: str) -> str:
        return self.prefix + name

    # --- processes ---------------------------------------------------------------
    def cli(self, *args: str, timeout: float = 120, check: bool = False,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "worker", *args], env=self.env, cwd=ROOT,
                             capture_output=True, text=True, timeout=timeout,
                             input=input.decode() if input else None)
        if check and res.returncode != 0:
            pytest.fail(f"`worker {' '.join(args)}` exited {res.returncode}:\n"
                        f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        return res

    def start_worker(self, name: str = "worker", wait: bool = True) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as logf:
            # its own session (signals go to the whole group), but it dies with pytest
            proc = subprocess.Popen([sys.executable, "-m", "worker", "worker"], env=self.env,
                                    cwd=ROOT, stdout=logf, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    preexec_fn=devservices._die_with_parent)
        proc.log_path = log_path  # type: ignore[attr-defined]
        self.procs.append(proc)
        if wait:
            self.wait_healthy(proc)
        return proc

    def wait_healthy(self, proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"worker exited with {proc.returncode} during start:\n"
                            + self.log_tail(proc))
            h = self.health()
            if h is not None and h.get("stats") != {}:
                return h
            time.sleep(0.5)
        pytest.fail("worker did not become healthy:\n" + self.log_tail(proc))

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health",
                                        timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
             timeout: float = 60) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return proc.returncode

    def log_tail(self, proc: subprocess.Popen[bytes], n: int = 60) -> str:
        path: Path = proc.log_path  # type: ignore[attr-defined]
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])

    # --- reading topics with kcat -------------------------------------------------
    def kcat(self, topic: str) -> list[dict[str, Any]]:
        """Every message on a topic (prefixed name), via kcat's JSON envelopes."""
        res = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", self.topic(topic),
                              "-o", "beginning", "-e", "-J", "-q"],
                             capture_output=True, text=True, timeout=60)
        if res.returncode != 0 and "Unknown topic" not in res.stderr:
            pytest.fail(f"kcat failed ({res.returncode}): {res.stderr}")
        out = []
        for line in res.stdout.splitlines():
            env = json.loads(line)
            env["value"] = json.loads(env["payload"]) if env.get("payload") else None
            out.append(env)
        return out

    def wait_for(self, topic: str, count: int, timeout: float = 120,
                 proc: subprocess.Popen[bytes] | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        msgs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            msgs = self.kcat(topic)
            if len(msgs) >= count:
                return msgs
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"worker died (exit {proc.returncode}):\n" + self.log_tail(proc))
            time.sleep(1)
        detail = self.log_tail(proc) if proc is not None else ""
        pytest.fail(f"{self.topic(topic)}: {len(msgs)} message(s), expected {count}\n{detail}")

    def wait_stats(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 120
                   ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        stats: dict[str, Any] = {}
        while time.monotonic() < deadline:
            h = self.health()
            stats = (h or {}).get("stats") or {}
            if stats and pred(stats):
                return stats
            time.sleep(0.5)
        pytest.fail(f"worker stats never matched: {stats}")


def make_worker_env(kafka_bootstrap: str, redis_url: str, tmp: Path, **extra: str) -> WorkerEnv:
    prefix = f"t{uuid.uuid4().hex[:8]}."
    port = free_port()
    feeds = tmp / "feeds.yaml"  # no feeds unless a test serves its own: never the internet
    feeds.write_text("feeds: []\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    env.update({
        "WORKER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "WORKER_REDIS_URL": redis_url,
        "WORKER_TOPIC_PREFIX": prefix,
        "WORKER_APP_ID": f"ingest-{prefix.rstrip('.')}",
        "WORKER_WEB_PORT": str(port),
        "WORKER_DATA_DIR": str(tmp / "faust"),
        "WORKER_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "WORKER_RETRY_BACKOFF_S": "0.1",
        "WORKER_POLL_TICK_S": "1",
        "WORKER_FEEDS_FILE": str(feeds),
        "WORKER_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return WorkerEnv(env=env, prefix=prefix, bootstrap=kafka_bootstrap, web_port=port,
                     log_dir=tmp)


@pytest.fixture
def worker_env_factory(kafka_bootstrap: str, redis_url: str,
                       tmp_path_factory: pytest.TempPathFactory
                       ) -> Iterator[Callable[..., WorkerEnv]]:
    made: list[WorkerEnv] = []

    def make(**extra: str) -> WorkerEnv:
        w = make_worker_env(kafka_bootstrap, redis_url, tmp_path_factory.mktemp("worker"), **extra)
        made.append(w)
        return w

    yield make
    for w in made:
        for p in w.procs:
            w.stop(p, timeout=30)
