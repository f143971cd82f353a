"""Secrets never reach logs, events, health or error messages; HTTP binds to loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_PW = "s3cr3t-redis-pw"
KAFKA_PW = "s3cr3t-kafka-pw"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp{,6})."""
    import ipaddress

    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            # /proc stores each 32-bit word in host (little-endian) order
            fixed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(str(ipaddress.ip_address(fixed)))
    return found


@pytest.fixture
def auth_redis(tmp_path):
    """A second real Redis that requires a password (AUTH)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            REDIS_PW,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        ping = subprocess.run(
            ["redis-cli", "-p", str(port), "-a", REDIS_PW, "--no-auth-warning", "ping"],
            capture_output=True,
            text=True,
        )
        if ping.stdout.strip() == "PONG":
            break
        subprocess.run(["sleep", "0.1"])
    else:
        proc.kill()
        pytest.fail("password-protected redis-server did not start")
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_stay_out_of_logs_events_and_health(worker_env_factory, auth_redis, log_format):
    w = worker_env_factory(
        WORKER_REDIS_URL=f"redis://:{REDIS_PW}@127.0.0.1:{auth_redis}/0",
        WORKER_KAFKA_SASL_USERNAME="svc",
        WORKER_KAFKA_SASL_PASSWORD=KAFKA_PW,
        WORKER_LOG_FORMAT=log_format,
    )
    proc = w.start_worker()
    w.cli("replay", "-q", str(ROOT / "seeds"), check=True)
    w.wait_stats(lambda s: s["enriched"] >= 7)
    health = w.health()
    assert health is not None and health["status"] == "ok"  # AUTH worked: dedup is on
    assert listening_addresses(w.web_port) == {"127.0.0.1"}  # HTTP binds to loopback only
    w.stop(proc)
    log = proc.log_path.read_text(errors="replace")  # type: ignore[attr-defined]
    assert "worker ready" in log and "redis://:***@127.0.0.1" in log
    if log_format == "json":
        assert all(line.startswith('{"time": ') for line in log.splitlines())
    outputs = [log, str(health)] + [
        str(m) for t in ("articles.enriched", "articles.dlq") for m in w.kcat(t)
    ]
    for text in outputs:
        assert REDIS_PW not in text and KAFKA_PW not in text


def test_wrong_redis_password_is_reported_without_echoing_it(worker_env_factory, auth_redis):
    wrong = "wr0ng-pw-123"
    w = worker_env_factory(WORKER_REDIS_URL=f"redis://:{wrong}@127.0.0.1:{auth_redis}/0")
    res = w.cli("feeds")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert wrong not in res.stderr + res.stdout
    assert "Redis" in res.stderr
