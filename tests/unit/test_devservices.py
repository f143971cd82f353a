"""The pure parts of worker.devservices: no broker, no Redis, no downloads."""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker import devservices as ds


def _props(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def test_server_properties_single_node_kraft_on_loopback(tmp_path: Path) -> None:
    props = _props(
        ds.render_server_properties(port=19092, controller_port=19093, log_dir=tmp_path / "d")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"  # static quorum
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "d")
    # small-box settings
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["offsets.topic.num.partitions"] == "4"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["share.coordinator.state.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.cleaner.dedupe.buffer.size"] == str(16 * 1024 * 1024)
    assert props["num.network.threads"] == props["num.io.threads"] == "2"
    assert "localhost" not in ds.render_server_properties(port=1, controller_port=2, log_dir="/x")


def test_cluster_id_is_16_random_bytes_base64url_unpadded() -> None:
    ids = {ds.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    for cid in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid), cid
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = ds.free_ports(3)
    assert len(set(ports)) == 3
    for p in ports:
        assert 1024 < p < 65536
        assert ds.port_is_free(p)


def test_a_listening_port_is_not_free() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert not ds.port_is_free(s.getsockname()[1])


def test_port_in_use_is_a_one_line_error_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(ds.DevServicesError, match=rf"port 127\.0\.0\.1:{busy} is in use"):
            ds.start_redis(tmp_path, busy)
        with pytest.raises(ds.DevServicesError, match=rf"port 127\.0\.0\.1:{busy} is in use"):
            ds.start_kafka(tmp_path, busy)
    assert not (tmp_path / "redis.pid").exists()
    assert not (tmp_path / "kafka.pid").exists()


def test_metadata_request_frame() -> None:
    frame = ds._kafka_metadata_request(correlation_id=7, client_id="c")
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    api_key, version, corr, clen = struct.unpack_from(">hhih", frame, 4)
    assert (api_key, version, corr, clen) == (3, 4, 7, 1)
    assert frame[14:] == b"c" + struct.pack(">ib", -1, 0)


def test_metadata_response_parsing() -> None:
    host = b"127.0.0.1"
    body = struct.pack(">ii", 0, 1)  # throttle, 1 broker
    body += struct.pack(">ih", 1, len(host)) + host + struct.pack(">ih", 9092, -1)
    body += struct.pack(">h", 4) + b"abcd" + struct.pack(">ii", 1, 0)
    assert ds._parse_metadata_brokers(body) == (1, "abcd")


@pytest.fixture
def fake_redis() -> Iterator[int]:
    """A one-connection server answering +PONG, to test the probe without Redis."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"+PONG\r\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    t.join(5)
    srv.close()


def test_probes(fake_redis: int) -> None:
    assert ds.probe_redis(fake_redis)
    closed = ds.free_port()
    assert not ds.probe_redis(closed, timeout=0.5)
    assert not ds.probe_kafka(closed, timeout=0.5)


def test_a_process_that_dies_on_start_reports_its_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    code = "import sys; print('boom: bad config', flush=True); sys.exit(3)"
    proc = ds._spawn([sys.executable, "-c", code], log, tie_to_parent=False, env=None)
    with pytest.raises(ds.DevServicesError) as err:
        ds._wait_ready(ds.REDIS, proc.pid, ds.free_port(), 10, [log])
    assert "died on start with exit code 3" in str(err.value).splitlines()[0]
    assert "boom: bad config" in err.value.log_tail
    assert proc.pid not in ds._CHILDREN


def test_cli_status_and_env_without_services(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ds._cli(["status", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "kafka: stopped" in out and "redis: stopped" in out
    assert ds._cli(["env", "--dir", str(tmp_path)]) == 1
    assert "not running" in capsys.readouterr().err


def test_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    (tmp_path / "redis.pid").write_text("999999999\n")
    assert ds.status(tmp_path)["redis"]["running"] is False
    assert not (tmp_path / "redis.pid").exists()
    assert ds.stop_redis(tmp_path) is False


def test_a_recorded_pid_reused_by_another_process_is_never_signalled(tmp_path: Path) -> None:
    (tmp_path / "kafka.pid").write_text(f"{os.getpid()}\n")  # this pytest is no broker
    assert ds.stop_kafka(tmp_path) is False
    assert ds.status(tmp_path)["kafka"]["running"] is False


def test_missing_java_and_mvn_are_one_line_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(ds.shutil, "which", lambda name: None)
    with pytest.raises(ds.DevServicesError, match=r"^java not found") as err:
        ds._java()
    assert "\n" not in str(err.value)
    with pytest.raises(ds.DevServicesError, match=r"^mvn not found"):
        ds.ensure_kafka_jars(tmp_path / "kafka-home")  # nothing there: would download


def _fake_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, fail_on: str = "") -> Path:
    """An apt-get on PATH as talkative as the real one: ~60 lines of progress, then it
    'installs' each package as an executable of that name (or fails on ``fail_on``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    apt = bin_dir / "apt-get"
    apt.write_text(
        "#!/bin/sh\n"
        'for i in $(seq 1 30); do echo "Get:$i http://deb.debian.org bookworm pkg $i"; done\n'
        'for i in $(seq 1 30); do echo "Selecting previously unselected package p$i."; done\n'
        f'case "$*" in *"{fail_on or "@@"}"*) echo "E: Unable to locate package {fail_on}" >&2;'
        " exit 100;; esac\n"
        'for a in "$@"; do case "$a" in fake-*) printf "#!/bin/sh\\n" > '
        f'"{bin_dir}/$a"; chmod +x "{bin_dir}/$a";; esac; done\n'
    )
    apt.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(ds.os, "geteuid", lambda: 0)
    monkeypatch.setattr(ds, "POLICY_RC_D", tmp_path / "policy-rc.d")
    return bin_dir


def test_installing_missing_packages_is_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    bin_dir = _fake_apt(tmp_path, monkeypatch)
    ds.ensure_system_packages(["fake-redis-server"])
    assert (bin_dir / "fake-redis-server").exists()
    out, err = capfd.readouterr()
    lines = (out + err).splitlines()
    assert len(lines) == 2, lines  # what it does, and that it is done
    assert "installing fake-redis-server with apt-get" in lines[0]
    assert "installed fake-redis-server" in lines[1]
    assert not (tmp_path / "policy-rc.d").exists()  # removed again


def test_a_failed_install_shows_what_apt_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _fake_apt(tmp_path, monkeypatch, fail_on="fake-kcat")
    with pytest.raises(ds.DevServicesError) as err:
        ds.ensure_system_packages(["fake-kcat"])
    assert "failed (exit 100)" in str(err.value).splitlines()[0]
    assert "E: Unable to locate package fake-kcat" in err.value.log_tail
    out, err_text = capfd.readouterr()
    assert "Selecting previously" not in out + err_text  # shown in the error, not streamed
