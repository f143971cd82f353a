"""The command line without services: tag, errors that are one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "seeds" / "000_f06541f7bef2d985.txt"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("WORKER_")}
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=e,
    )


def test_tag_prints_one_event_per_input_in_order_and_errors_on_stderr(tmp_path):
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    res = run(
        "tag",
        str(SEED),
        str(tmp_path / "missing.html"),
        str(binary),
        str(ROOT / "seeds" / "010_nytimes-1.html"),
    )
    assert res.returncode == 1
    events = [orjson.loads(line) for line in res.stdout.splitlines()]
    assert [e["title"] for e in events][0] == "Putin, Trump discuss arms, virus"
    assert len(events) == 2 and "Sudan" in events[1]["title"]
    assert events[0]["source"]["kind"] == "file"
    errors = res.stderr.strip().splitlines()
    assert len(errors) == 2 and "Traceback" not in res.stderr
    assert "missing.html: no such file" in errors[0]
    assert "photo.txt" in errors[1] and "not a text or HTML file" in errors[1]


def test_tag_seed_carries_the_taxonomy_topics():
    res = run("tag", str(SEED))
    assert res.returncode == 0, res.stderr
    event = orjson.loads(res.stdout)
    assert {t["id"] for t in event["topics"]} == {
        "arms-control",
        "nonproliferation",
        "leader-contact",
        "negotiations",
        "pandemic",
        "trade",
        "diplomatic-relations",
    }
    assert event["published_at"] == "2020-07-25T07:45:00+08:00"


def test_tag_explain_says_why_each_topic_is_tagged_on_stderr() -> None:
    res = run("tag", "--explain", str(SEED))
    assert res.returncode == 0, res.stderr
    event = orjson.loads(res.stdout)  # stdout stays one JSON event per input
    lines = res.stderr.splitlines()
    # the seed is longer than any item the model learnt from: the rules alone tag it
    assert lines[0].startswith(f"{SEED}: model ") and "reads nothing" in lines[0]
    assert "longer than any it learnt from" in lines[0]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) >= {t["id"] for t in event["topics"]}
    assert "yes" in rows["arms-control"].split()[1] and "arms control" in rows["arms-control"]
    assert rows["arms-control"].rstrip().endswith(("the rules", "the rules and the model"))


def test_tag_explain_shows_the_neighbours_vote_on_an_item_read_whole(tmp_path: Path) -> None:
    page = tmp_path / "minsk.txt"
    page.write_text(
        "Minsk orders Lithuanian envoy out within 72 hours\n\nBelarus gave the Lithuanian envoy "
        "72 hours to leave the country on Tuesday, the foreign ministry in Minsk said, in a "
        "widening row between the two neighbours over the detention of a Belarusian citizen "
        "in Vilnius last week and what Minsk calls unfriendly steps by the Lithuanian "
        "government.\n"
    )
    res = run("tag", "--explain", str(page))
    assert res.returncode == 0, res.stderr
    lines = res.stderr.splitlines()
    assert "reads the whole item" in lines[0] and lines[1].split()[3] == "nbrs"
    row = next(line.split() for line in lines[2:] if line.split()[0] == "diplomatic-relations")
    assert row[1] == "yes" and 0.0 < float(row[3]) <= 1.0  # the vote of the nearest items


def test_broker_that_does_not_answer_is_one_clear_line(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 300)
    res = run("replay", str(tmp_path), env={"WORKER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert res.returncode == 3
    assert "Traceback" not in res.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in res.stderr
    # one line: aiokafka's own ERROR line no longer comes first, the class is named once
    assert res.stderr.strip().splitlines() == [
        ln for ln in res.stderr.strip().splitlines() if ln.startswith("error: cannot reach")
    ]
    assert "KafkaConnectionError: KafkaConnectionError" not in res.stderr


def test_replay_of_a_missing_folder_and_unknown_alert_topic():
    res = run("replay", "/nonexistent/folder")
    assert res.returncode == 2 and "no such folder" in res.stderr
    res = run("alerts", "not-a-topic")
    assert res.returncode == 2 and "unknown topic id(s): not-a-topic" in res.stderr


def test_invalid_feeds_file_is_reported_without_traceback(tmp_path):
    bad = tmp_path / "feeds.yaml"
    bad.write_text("feeds:\n  - name: x\n    url: ftp://example.com/feed\n")
    res = run(
        "feeds", env={"WORKER_FEEDS_FILE": str(bad), "WORKER_REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr and "feeds[0]" in res.stderr


def test_health_without_a_worker_is_a_clear_error():
    res = run("health", env={"WORKER_WEB_PORT": "1"})
    assert res.returncode == 2 and "no worker answering" in res.stderr


def test_worker_without_a_broker_gives_up_with_a_clear_line():
    res = run(
        "worker",
        env={"WORKER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "WORKER_STARTUP_WAIT_S": "0"},
    )
    assert res.returncode == 3, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in res.stderr


def test_worker_refuses_an_invalid_feeds_file_before_starting(tmp_path):
    """An invalid feeds.yaml stops `worker` at once with every problem listed (it used to
    crash the agent inside faust, which restarted it and polled nothing)."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text("feeds:\n  - name: a\n    url: ftp://x\n  - name: a\n    url: https://x/rss\n")
    res = run(
        "worker",
        env={
            "WORKER_FEEDS_FILE": str(feeds),
            "WORKER_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",  # never reached
            "WORKER_STARTUP_WAIT_S": "0",
        },
    )
    assert res.returncode == 2, res.stderr
    assert str(feeds) in res.stderr and "Traceback" not in res.stderr
    assert "must be an http or https URL" in res.stderr and "ftp://x" in res.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WORKER_CONFIGS_DIR": "/nonexistent"},
            "WORKER_CONFIGS_DIR=/nonexistent: no such directory",
        ),
        (
            {"WORKER_TOPIC_PARTITIONS": "abc"},
            "WORKER_TOPIC_PARTITIONS: Input should be a valid integer",
        ),
        (
            {"WORKER_KAFKA_SECURITY_PROTOCOL": "BOGUS"},
            "'SASL_PLAINTEXT' or 'SASL_SSL' (got 'BOGUS')",
        ),
        (
            {"WORKER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "WORKER_KAFKA_SASL_MECHANISM": "PLAIN"},
            "needs WORKER_KAFKA_SASL_USERNAME, WORKER_KAFKA_SASL_PASSWORD",
        ),
    ],
)
@pytest.mark.parametrize("command", ["tag", "schemas"])
def test_configuration_mistakes_are_one_line_errors(
    env: dict[str, str], message: str, command: str, tmp_path: Path
) -> None:
    args = [command, str(SEED)] if command == "tag" else [command]
    res = run(*args, env=env)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_a_misspelled_variable_is_named_with_the_closest_setting() -> None:
    res = run("tag", str(SEED), env={"WORKER_KAFKA_BOOTSTRAP_SERVER": "x:1"})
    assert res.returncode == 0
    assert (
        "WORKER_KAFKA_BOOTSTRAP_SERVER is not a setting of this worker; "
        "did you mean WORKER_KAFKA_BOOTSTRAP_SERVERS?"
    ) in res.stderr


def test_dlq_stage_is_checked_and_options_have_help() -> None:
    res = run("dlq", "--stage", "bogus")
    assert res.returncode == 2 and "invalid choice: 'bogus'" in res.stderr
    helped = run("dlq", "--help").stdout
    assert "only the dead letters of this stage" in helped and "republish" in helped
    assert "already on the topics" in run("alerts", "--help").stdout


def test_dlq_all_goes_with_replay() -> None:
    res = run("dlq", "--all")
    assert res.returncode == 2 and "--all goes with --replay" in res.stderr
    helped = run("dlq", "--help").stdout
    assert "--all" in helped and "earlier --replay" in helped.replace("\n", " ")


# --- run-local: feed failures on screen ----------------------------------------------------


def _feed(name: str, status: str, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "name": name,
        "configured": True,
        "url": f"https://example.org/{name}.xml",
        "last_status": status,
        "consecutive_errors": 0,
        "last_error": None,
        "next_poll_at": "2026-12-06T03:07:12+00:00",
    }
    row.update(kw)
    return row


def test_run_local_names_each_failing_feed_once_until_it_recovers():
    from worker.cli import FeedFailures

    f = FeedFailures()
    down = _feed("un-news", "error", consecutive_errors=1, last_error="HTTP 503 from https://x")
    rows = [down, _feed("bbc", "ok"), _feed("never", "never polled")]
    [line] = f.changes(rows)
    assert line.startswith("feed un-news failed to poll: HTTP 503 from https://x (1 error(s)")
    assert "next try 03:07:12 UTC" in line and "\n" not in line
    # retried and failing again, many times: nothing more
    for n in range(2, 6):
        assert f.changes([{**down, "consecutive_errors": n, "last_error": "timed out"}]) == []
    assert f.changes([_feed("un-news", "not-modified")]) == ["feed un-news is polled fine again"]
    assert f.changes([_feed("un-news", "ok")]) == []
    [again] = f.changes([down])  # failing again after it recovered: said again
    assert again.startswith("feed un-news failed to poll")
    # an ad-hoc feed (`poll URL`, not in feeds.yaml) is not the worker's business
    assert f.changes([_feed("adhoc", "error", configured=False, last_error="x")]) == []


async def test_run_local_says_once_that_the_feed_state_cannot_be_read():
    from worker.cli import FeedFailures
    from worker.settings import Settings

    class DownRedis:
        def pipeline(self, *a, **k):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")

        async def scan_iter(self, *a, **k):
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")
            yield  # pragma: no cover

    f = FeedFailures()
    settings = Settings()
    [line] = await f.check(settings, DownRedis())
    assert "cannot read the feeds' state" in line and "Error 111" in line
    assert await f.check(settings, DownRedis()) == []
