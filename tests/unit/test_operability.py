"""Operability without services: JSON logs and their redaction, the worker's exit status
after a crash, the stage and fetch metrics of the pipeline, the Grafana dashboard."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.test_pipeline import FakeFetcher, ListSink, Permanent, feed_record, ports, seed
from worker.logs import (
    JsonLogFormatter,
    RedactSecrets,
    configure_cli_logging,
    faust_logging_config,
    secret_values,
)
from worker.metrics import Metrics, status_class
from worker.pipeline import Processor
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "seeds" / "000_f06541f7bef2d985.txt"


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("worker.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


# --- JSON logs ------------------------------------------------------------------------


def test_json_line_has_time_level_logger_message_first_then_extra():
    line = JsonLogFormatter().format(_record("fetched %s\nin %d s", "u", 3, feed="un-news"))
    assert "\n" not in line  # one line per record, whatever the message holds
    obj = json.loads(line)
    assert list(obj)[:4] == ["time", "level", "logger", "message"]
    assert obj["level"] == "WARNING" and obj["logger"] == "worker.test"
    assert obj["message"] == "fetched u\nin 3 s" and obj["feed"] == "un-news"
    assert obj["time"].endswith("Z") and obj["time"][:4].isdigit() and "T" in obj["time"]
    assert "exception" not in obj


def test_json_line_carries_the_exception_text():
    obj = json.loads(JsonLogFormatter().format(_record("it failed", exc=True)))
    assert obj["message"] == "it failed"
    assert obj["exception"].startswith("Traceback") and "ValueError: bad value" in obj["exception"]


def test_redaction_removes_url_passwords_and_known_secrets_also_from_tracebacks():
    f = RedactSecrets(["k-secret"])
    rec = _record("connect to %s as svc/%s", "redis://:hunter2@redis:6379/0", "k-secret")
    rec.exc_info = None
    assert f.filter(rec)
    assert rec.getMessage() == "connect to redis://:***@redis:6379/0 as svc/***"
    try:
        raise ConnectionError("amqp://user:pw1@mq:5672 refused; token k-secret")
    except ConnectionError:
        rec = _record("lost it")
        rec.exc_info = sys.exc_info()
    f.filter(rec)
    for formatter in (JsonLogFormatter(), logging.Formatter("%(message)s")):
        out = formatter.format(rec)
        assert "pw1" not in out and "k-secret" not in out and "user:***@mq" in out, out
    assert f.redact("http://example.org/a:b@c") == "http://example.org/a:b@c"  # a path


def test_secret_values_come_from_the_settings():
    s = Settings(
        redis_url="redis://u:r-pass@h:1/0",
        kafka_sasl_password="k-pass",
        kafka_sasl_username="svc",
    )
    assert sorted(secret_values(s)) == ["k-pass", "r-pass"]
    assert secret_values(Settings()) == []


def test_cli_logging_in_json_writes_objects_to_stderr(capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_cli_logging("json", "INFO", ["s3cret"])
        logging.getLogger("worker.x").info("password s3cret", extra={"record_id": "r1"})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    obj = json.loads(capsys.readouterr().err)
    assert obj["message"] == "password ***" and obj["record_id"] == "r1"


def test_faust_gets_a_json_handler_only_in_json():
    assert faust_logging_config("text") is None
    cfg = faust_logging_config("json")
    assert cfg is not None and cfg["merge"] is True  # faust's root and -l level are kept
    assert cfg["formatters"]["json"]["()"] == "worker.logs.JsonLogFormatter"
    assert cfg["handlers"]["default"]["formatter"] == "json"


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=e,
    )


def test_a_bad_log_format_is_a_one_line_error():
    res = _run("tag", str(SEED), WORKER_LOG_FORMAT="xml")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "error: WORKER_LOG_FORMAT: Input should be 'text' or 'json' (got 'xml')"
    )


def test_cli_in_json_logs_objects_only_and_keeps_its_output():
    res = _run(
        "tag",
        str(SEED),
        WORKER_LOG_FORMAT="json",
        WORKER_LOG_LEVEL="DEBUG",
        WORKER_KAFKA_BOOTSTRAP_SERVER="x:1",  # misspelled: warned, as a JSON object too
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout)["title"] == "Putin, Trump discuss arms, virus"
    lines = res.stderr.splitlines()
    objs = [json.loads(line) for line in lines]  # every line parses
    assert all({"time", "level", "logger", "message"} <= set(o) for o in objs)
    assert any("did you mean WORKER_KAFKA_BOOTSTRAP_SERVERS" in o["message"] for o in objs)


# --- exit status ----------------------------------------------------------------------


def test_a_crash_never_exits_0():
    from worker.app import exit_status

    boom = ConnectionError("Redis gone")
    assert exit_status(0, boom) == 1
    assert exit_status(None, boom) == 1
    assert exit_status(1, boom) == 1 and exit_status(71, boom) == 71
    assert exit_status(0, None) == 0 and exit_status(None, None) == 0
    assert exit_status("a message", None) == 1


# --- metrics --------------------------------------------------------------------------


def _samples(m: Metrics) -> dict[str, float]:
    out = {}
    for fam in text_string_to_metric_families(m.render().decode()):
        for s in fam.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (204, "2xx"), (304, "3xx"), (404, "4xx"), (429, "4xx"), (503, "5xx")]
    + [(None, "error"), (0, "error"), (700, "error"), (101, "error")],
)
def test_status_class(status, expected):
    assert status_class(status) == expected


async def test_stage_timings_and_page_fetches_are_observed():
    class Status(Exception):
        retriable = False

        def __init__(self, status: int) -> None:
            super().__init__(f"HTTP {status}")
            self.status = status

    m = Metrics()
    sink = ListSink()
    proc = Processor(ports(), sink, backoff_s=0, metrics=m)
    await proc.handle(seed())  # clean, dedup, tag, publish
    await proc.handle(feed_record())  # fetch (200) too
    proc404 = Processor(ports(fetcher=FakeFetcher([Status(404)])), sink, metrics=m)
    rec = feed_record().model_copy(update={"entry": None, "record_id": "f2"})
    await proc404.handle(rec)  # fetch 404, then a dead letter
    timeout = Processor(ports(fetcher=FakeFetcher([Permanent("refused")])), sink, metrics=m)
    await timeout.handle(rec.model_copy(update={"record_id": "f3"}))
    s = _samples(m)
    for stage, n in (("clean", 2), ("dedup", 2), ("tag", 2), ("fetch", 3), ("publish", 4)):
        assert s[f'diplomacy_stage_seconds_count{{stage="{stage}"}}'] == n, stage
        assert s[f'diplomacy_stage_seconds_sum{{stage="{stage}"}}'] >= 0
    assert s['diplomacy_http_fetches_total{kind="page",status_class="2xx"}'] == 1
    assert s['diplomacy_http_fetches_total{kind="page",status_class="4xx"}'] == 1
    assert s['diplomacy_http_fetches_total{kind="page",status_class="error"}'] == 1


def test_extraction_gauges_read_the_pool_at_scrape_time():
    from worker.bootstrap import PoolExtractor

    m = Metrics()
    pool = PoolExtractor(2)
    m.watch_extractor(pool)
    assert _samples(m)["diplomacy_extraction_queue_depth"] == 0
    pool.in_flight = 5
    s = _samples(m)
    assert s["diplomacy_extraction_in_flight"] == 5
    assert s["diplomacy_extraction_queue_depth"] == 3  # two are being cleaned


class FakeConsumer:
    """What :func:`worker.lag.read_lag` uses of faust's consumer."""

    def __init__(self, ends, committed, *, earliest=None, broker_up=True):
        from collections import defaultdict

        from faust.types import TP

        self.TP = TP
        self.ends = {TP(t, p): v for (t, p), v in ends.items()}
        self._committed_offset = defaultdict(lambda: None)
        self._committed_offset.update({TP(t, p): v for (t, p), v in committed.items()})
        self.earliest = {TP(t, p): v for (t, p), v in (earliest or {}).items()}
        self.broker_up = broker_up
        self.requests = 0

    def assignment(self):
        return set(self.ends)

    async def highwaters(self, *tps):
        self.requests += 1
        if not self.broker_up:
            raise ConnectionError("broker gone")
        return {tp: self.ends[tp] for tp in tps}

    def highwater(self, tp):
        return self.ends[tp] - 1  # what the last fetch saw: a little behind

    async def earliest_offsets(self, *tps):
        self.requests += 1
        return {tp: self.earliest.get(tp, 0) for tp in tps}


async def test_consumer_lag_is_end_minus_committed_per_partition_of_the_raw_topic():
    from worker.lag import read_lag

    c = FakeConsumer(
        {("raw", 0): 10, ("raw", 1): 7, ("raw", 2): 5, ("other", 0): 99},
        {("raw", 0): 10, ("raw", 1): 3},
        earliest={("raw", 2): 2},  # never committed: counted from the earliest offset
    )
    assert await read_lag(c, "raw") == {0: 0, 1: 4, 2: 3}
    # the broker does not answer: the end offsets the last fetches carried
    c.broker_up = False
    assert await read_lag(c, "raw") == {0: 0, 1: 3, 2: 2}
    requests = c.requests
    assert await read_lag(c, "raw", ask_broker=False) == {0: 0, 1: 3, 2: 4}
    assert c.requests == requests  # no request when the broker is known to be down
    assert await read_lag(FakeConsumer({}, {}), "raw") == {}


def test_consumer_lag_series_follow_the_partitions_held():
    m = Metrics()
    m.observe_lag("p.articles.raw", {0: 3, 1: 0})
    s = _samples(m)
    assert s['diplomacy_consumer_lag{partition="0",topic="p.articles.raw"}'] == 3
    assert s['diplomacy_consumer_lag{partition="1",topic="p.articles.raw"}'] == 0
    m.observe_lag("p.articles.raw", {1: 2})  # partition 0 went to another worker
    s = _samples(m)
    assert 'diplomacy_consumer_lag{partition="0",topic="p.articles.raw"}' not in s
    assert s['diplomacy_consumer_lag{partition="1",topic="p.articles.raw"}'] == 2


# --- the Grafana dashboard ------------------------------------------------------------

DASHBOARD = ROOT / "configs" / "grafana" / "diplomacy-worker.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _series() -> dict[str, set[str]]:
    """Every series name the worker's registry exposes, with the labels it can carry."""
    from prometheus_client.metrics import MetricWrapperBase

    m = Metrics()
    labels = {
        fam.name: set(obj._labelnames)
        for obj in vars(m).values()
        if isinstance(obj, MetricWrapperBase)
        for fam in obj.describe()
    }
    out = {}
    for fam in m.registry.collect():
        for suffix in _SUFFIXES[fam.type]:
            out[fam.name + suffix] = labels[fam.name] | ({"le"} if suffix == "_bucket" else set())
    return out


def _queries(dash: dict) -> list[str]:
    exprs = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            exprs.extend(t["expr"] for t in p.get("targets", []))
            walk(p.get("panels", []))

    walk(dash["panels"])
    for var in dash["templating"]["list"]:
        q = var.get("query")
        if isinstance(q, dict):
            exprs.append(q["query"])
    return exprs


def test_dashboard_queries_only_metrics_the_worker_exposes():
    import re

    dash = json.loads(DASHBOARD.read_text())
    series = _series()
    exprs = _queries(dash)
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\bdiplomacy_[a-z0-9_]+", expr))
        assert names, expr
        unknown = names - set(series)
        assert not unknown, f"{expr}: not in worker/metrics.py: {unknown}"
        used |= names
        # a label grouped or matched on is one those series carry (or the scrape's own)
        allowed = set().union(*(series[n] for n in names)) | {"instance", "job"}
        for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in allowed, f"{expr}: no label {label!r}"
        assert expr.count("(") == expr.count(")"), expr
    # what the dashboard is for: throughput, dead letters by stage, latency, feeds, health
    for name in (
        "diplomacy_records_received_total",
        "diplomacy_records_enriched_total",
        "diplomacy_dead_letters_total",
        "diplomacy_raw_to_enriched_seconds_bucket",
        "diplomacy_stage_seconds_bucket",
        "diplomacy_feed_polls_total",
        "diplomacy_http_fetches_total",
        "diplomacy_extraction_queue_depth",
        "diplomacy_dependency_up",
        "diplomacy_consumer_lag",
    ):
        assert name in used, name


def test_dashboard_is_a_grafana_dashboard_with_a_datasource_variable():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert "datasource" in {v["name"] for v in dash["templating"]["list"]}
    for p in dash["panels"]:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
            assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] < 24
    quantiles = [e for e in _queries(dash) if "histogram_quantile(0.99" in e]
    assert any("raw_to_enriched" in e for e in quantiles)
