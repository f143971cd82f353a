"""Scale-out: two worker processes in one consumer group (the same WORKER_APP_ID), against
the session's real Kafka and Redis; no mocks.

- both members get partitions of articles.raw and every record is handled exactly once;
- the feeds are polled by the group's leader only, and by the other member once the leader
  has gone;
- a member SIGKILLed while records flow: the survivor takes its partitions within 15 s
  (the default WORKER_KAFKA_SESSION_TIMEOUT_S / _HEARTBEAT_INTERVAL_S) and no record is lost.

Each member has one extraction process (two members on a two-core machine). The broker's
own view of the group (DescribeGroups) is read with an admin client; each member's share
and leadership with its ``/health`` (``group``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request

from tests.integration.conftest import WorkerEnv
from tests.integration.test_feeds_e2e import (
    FEED_PATH,
    OLD,
    POLL_ENV,
    Site,
    feeds_file,
    rewrite,
)
from tests.integration.test_guarantees import write_articles, write_slow_records

PARTITIONS = 4  # WORKER_TOPIC_PARTITIONS' default
MEMBER_ENV = {"WORKER_EXTRACT_WORKERS": "1"}
TAKEOVER_BOUND_S = 15.0


# --- the group as its members and the broker see it ----------------------------------------


def share(member: WorkerEnv) -> list[int] | None:
    """The articles.raw partitions this member holds now (None: it does not answer)."""
    h = member.health()
    if h is None:
        return None
    return (h.get("group") or {}).get("partitions", {}).get(member.topic("articles.raw"), [])


def is_leader(member: WorkerEnv) -> bool:
    h = member.health() or {}
    return bool((h.get("group") or {}).get("leader"))


def wait_leader(
    members: list[tuple[WorkerEnv, subprocess.Popen[bytes]]], timeout: float = 60
) -> int:
    """The index of the one member that holds the leader partition (faust's leader)."""
    deadline = time.monotonic() + timeout
    leaders: list[int] = []
    while time.monotonic() < deadline:
        leaders = [i for i, (m, _) in enumerate(members) if is_leader(m)]
        if len(leaders) == 1:
            return leaders[0]
        time.sleep(0.2)
    pytest.fail(f"not exactly one leader: {leaders}")


def wait_shared(
    members: list[tuple[WorkerEnv, subprocess.Popen[bytes]]], timeout: float = 90
) -> list[list[int]]:
    """Until every member holds some partitions of articles.raw and together they hold each
    exactly once (a rebalance in progress shows overlaps or gaps)."""
    deadline = time.monotonic() + timeout
    shares: list[list[int] | None] = []
    while time.monotonic() < deadline:
        shares = [share(m) for m, _ in members]
        flat = sorted(p for s in shares for p in (s or []))
        if all(shares) and flat == list(range(PARTITIONS)):
            return [s or [] for s in shares]
        for m, proc in members:
            if proc.poll() is not None:
                pytest.fail(f"a member died ({proc.returncode}):\n{m.log_tail(proc)}")
        time.sleep(0.2)
    pytest.fail(f"the partitions were never shared out: {shares}")


def broker_view(w: WorkerEnv) -> tuple[str, list[list[int]]]:
    """(group state, the articles.raw partitions of each member) as the group coordinator
    reports them (DescribeGroups)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

    async def describe() -> Any:
        admin = AIOKafkaAdminClient(bootstrap_servers=w.bootstrap, request_timeout_ms=10000)
        await admin.start()
        try:
            return (await admin.describe_consumer_groups([w.env["WORKER_APP_ID"]]))[0]
        finally:
            await admin.close()

    group = asyncio.run(describe()).to_object()["groups"][0]
    raw = w.topic("articles.raw")
    members = []
    for m in group["members"]:
        assignment = ConsumerProtocolMemberAssignment.decode(m["member_assignment"])
        members.append(sorted(p for t, ps in assignment.assignment for p in ps if t == raw))
    return group["state"], members


def start_members(
    w: WorkerEnv, envs: list[dict[str, str]]
) -> list[tuple[WorkerEnv, subprocess.Popen[bytes]]]:
    """Start the members together (so they start in parallel), then wait for each."""
    out = []
    for i, extra in enumerate(envs):
        m = w.member(**MEMBER_ENV, **extra)
        out.append((m, m.start_worker(f"member-{'ab'[i]}", wait=False)))
    for m, proc in out:
        m.wait_healthy(proc)
    return out


def stats(member: WorkerEnv) -> dict[str, Any]:
    return (member.health() or {}).get("stats") or {}


# --- 1: both members share the work, each record handled once -------------------------------


def test_two_members_share_the_partitions_and_handle_each_record_once(worker_env_factory, tmp_path):
    w = worker_env_factory()
    members = start_members(w, [{}, {}])
    shares = wait_shared(members)
    assert all(len(s) == PARTITIONS // 2 for s in shares), shares
    state, broker_shares = broker_view(w)
    assert state == "Stable" and sorted(broker_shares) == sorted(shares)

    folder = tmp_path / "in"
    good = write_articles(folder, 40, bad=2)
    w.cli("replay", "-q", str(folder), check=True)
    n_in = good + 2

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        handled = [stats(m).get("handled", 0) for m, _ in members]
        if sum(handled) >= n_in:
            break
        time.sleep(0.5)
    per_member = [stats(m) for m, _ in members]
    enriched, dlq, raw = w.kcat("articles.enriched"), w.kcat("articles.dlq"), w.kcat("articles.raw")
    skipped = sum(sum(s["skipped"].values()) for s in per_member)
    # every record has exactly one outcome: in == enriched + skipped + dead letters
    assert len(raw) == n_in
    assert (len(enriched), skipped, len(dlq)) == (good, 0, 2), per_member
    assert len({m["value"]["id"] for m in enriched}) == good
    assert {m["value"]["stage"] for m in dlq} == {"clean"}
    # each member handled the records of its own partitions, and only those
    for mine, st in zip(shares, per_member, strict=True):
        on_mine = sum(1 for r in raw if r["partition"] in mine)
        assert st["received"] == st["handled"] == on_mine > 0, (mine, st)
    assert sum(st["enriched"] for st in per_member) == good
    assert all(proc.poll() is None for _, proc in members)


# --- 2: the feeds are polled by the leader only -------------------------------------------------


@dataclass
class Poll:
    at: float
    user_agent: str
    status: int


@dataclass
class CountingSite(Site):
    """The feed site of test_feeds_e2e, also noting when each feed request came and from
    which member (each member sends its own User-Agent)."""

    polls: list[Poll] = field(default_factory=list)
    poll_lock: threading.Lock = field(default_factory=threading.Lock)

    def _log(self, request: Request, status: int, version: int) -> None:
        super()._log(request, status, version)
        if request.path == FEED_PATH:
            with self.poll_lock:
                self.polls.append(
                    Poll(time.monotonic(), request.headers.get("User-Agent", ""), status)
                )

    def polls_since(self, t: float) -> list[Poll]:
        with self.poll_lock:
            return [p for p in self.polls if p.at >= t]

    def wait_polls(self, since: float, n: int, timeout: float = 45) -> list[Poll]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.polls_since(since)
            if len(got) >= n:
                return got
            time.sleep(0.2)
        pytest.fail(f"{len(self.polls_since(since))} feed poll(s) since, expected {n}")


@pytest.fixture
def counting_site():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    site = CountingSite(server)
    server.expect_request(FEED_PATH).respond_with_handler(site._feed)
    yield site
    server.clear()
    server.stop()


def agent(name: str) -> str:
    return f"diplomacy-ingest-worker/0.1 (test member {name})"


def test_feeds_are_polled_by_the_leader_only_then_by_the_survivor(
    worker_env_factory, counting_site, tmp_path
):
    site = counting_site
    links = [site.add_page(f"/lead/{p}.html", p) for p in ("nytimes-1", "wapo-1", "bbc-1")]
    body, _ = rewrite(OLD, links)
    site.serve_feed(body)  # validators on: after the first poll, 304s
    w = worker_env_factory(WORKER_FEEDS_FILE=feeds_file(tmp_path, site.url(FEED_PATH)), **POLL_ENV)
    members = start_members(w, [{"WORKER_USER_AGENT": agent(n)} for n in "ab"])
    wait_shared(members)
    leader = wait_leader(members)
    other = 1 - leader

    # both members up, each ticking every second (WORKER_POLL_TICK_S=1), the feed due every
    # ~2 s: only the leader's requests arrive
    stable = time.monotonic()
    polls = site.wait_polls(stable, 4)
    assert {p.user_agent for p in polls} == {agent("ab"[leader])}, polls
    # over the whole run, starting alone and the rebalance included: never polled twice
    # in one tick (the poll schedule: ~2 s apart, never less than a tick)
    times = [p.at for p in site.polls_since(0)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 1.0, gaps
    # each entry was published once
    w.wait_for("articles.enriched", 3, proc=members[leader][1])
    assert len(w.kcat("articles.raw")) == 3

    # the leader leaves (SIGTERM): the other member becomes the leader and polls, carrying
    # on from the state in Redis (a conditional request, nothing published again)
    m, proc = members[leader]
    assert m.stop(proc, signal.SIGTERM, timeout=45) == 0, m.log_tail(proc)
    gone = time.monotonic()
    survivor, survivor_proc = members[other]
    after = site.wait_polls(gone, 2)
    assert {p.user_agent for p in after} == {agent("ab"[other])}, after
    assert {p.status for p in after} == {304}
    assert is_leader(survivor)
    assert len(w.kcat("articles.raw")) == 3
    times = [p.at for p in site.polls_since(0)]
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 1.0
    assert survivor_proc.poll() is None


# --- 3: a member SIGKILLed while records flow -------------------------------------------------


def test_sigkilled_member_partitions_move_within_15_s_and_nothing_is_lost(
    worker_env_factory, pages, tmp_path
):
    pages.article_delay_s = 0.5  # a slow news site: records flow for a while
    w = worker_env_factory()
    folder = tmp_path / "in"
    n = write_slow_records(folder, pages, 100)
    members = start_members(w, [{}, {}])
    wait_shared(members)

    w.cli("replay", "-q", str(folder), check=True)
    deadline = time.monotonic() + 60
    while sum(stats(m).get("enriched", 0) for m, _ in members) < 15:
        assert time.monotonic() < deadline, [stats(m) for m, _ in members]
        time.sleep(0.2)
    (victim, victim_proc), (survivor, survivor_proc) = members
    victim_had = stats(victim)
    os.kill(victim_proc.pid, signal.SIGKILL)  # the worker only, as the OOM killer would
    killed = time.monotonic()
    victim_proc.wait(10)
    enriched_at_kill = len({m["value"]["id"] for m in w.kcat("articles.enriched")})
    assert enriched_at_kill < n, "the kill came too late to prove anything"

    # the survivor takes every partition: after the session timeout (8 s) and a heartbeat
    while share(survivor) != list(range(PARTITIONS)):
        assert survivor_proc.poll() is None, survivor.log_tail(survivor_proc)
        took = time.monotonic() - killed
        assert took < TAKEOVER_BOUND_S + 30, f"no takeover after {took:.0f} s"
        time.sleep(0.1)
    took = time.monotonic() - killed
    assert took <= TAKEOVER_BOUND_S, f"the survivor took the partitions after {took:.1f} s"
    state, broker_shares = broker_view(w)
    assert state == "Stable" and broker_shares == [list(range(PARTITIONS))]

    # every record's outcome: each URL enriched (distinct article ids), no dead letter;
    # repeats are the victim's records in flight or not yet committed (at-least-once)
    deadline = time.monotonic() + 120
    ids: set[str] = set()
    while time.monotonic() < deadline:
        enriched = w.kcat("articles.enriched")
        ids = {m["value"]["id"] for m in enriched}
        if len(ids) >= n:
            break
        assert survivor_proc.poll() is None, survivor.log_tail(survivor_proc)
        time.sleep(0.5)
    urls = {m["value"]["url"] for m in enriched}
    assert len(ids) == n and urls == {pages.url(f"/article/{i}") for i in range(n)}
    assert w.kcat("articles.dlq") == []
    after = survivor.wait_stats(lambda s: s["in_flight"] == 0)
    repeats = len(enriched) - n + after["skipped"].get("duplicate", 0)
    # nothing the victim had not started is handled twice: repeats come from what it held
    assert repeats <= victim_had["received"], (repeats, victim_had, after)
    assert len(w.kcat("articles.raw")) == n
    assert survivor_proc.poll() is None


# --- 4: two members agree on the story ids -------------------------------------------------


def _record_id_on(partitions: list[int]) -> str:
    """A record id whose key the producer's default partitioner (murmur2, as Kafka's Java
    client) puts on one of ``partitions`` of articles.raw."""
    import uuid

    from aiokafka.partitioner import murmur2

    while True:
        rid = uuid.uuid4().hex
        if (murmur2(rid.encode()) & 0x7FFFFFFF) % PARTITIONS in partitions:
            return rid


def test_two_members_agree_on_the_story_ids(worker_env_factory, tmp_path):
    """One story told by several outlets, its records alternating between the two members'
    partitions and replayed one after another: every article gets the same story id (the
    first article's), sizes count up across both members, and the copies are duplicates."""
    import orjson

    from tests.integration.test_stories import FOLLOW_UP, REACTION, WARFARE, record

    w = worker_env_factory()
    members = start_members(w, [{}, {}])
    shares = wait_shared(members)
    told = [
        (WARFARE, "outlet-a"),
        (REACTION, "outlet-b"),
        (WARFARE, "outlet-c"),  # the same text under another URL: a duplicate
        (FOLLOW_UP, "outlet-d"),
        (REACTION, "outlet-e"),  # a copy of the reaction
        (WARFARE, "outlet-f"),
    ]
    for i, (item, outlet) in enumerate(told):
        rec = record(item, f"https://{outlet}.example/news/{item}", outlet)
        rec["record_id"] = _record_id_on(shares[i % 2])  # member a, b, a, b, ...
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        (folder / "record.json").write_bytes(orjson.dumps(rec))
        w.cli("replay", "-q", str(folder), check=True)
        w.wait_for("articles.enriched", i + 1)
    evs = [m["value"] for m in w.kcat("articles.enriched")]
    evs.sort(key=lambda e: e["story"]["size"])
    opener = next(e for e in evs if e["story"]["opened"])
    assert {e["story"]["id"] for e in evs} == {opener["id"]}
    assert [e["story"]["size"] for e in evs] == list(range(1, len(told) + 1))
    assert sum(e["story"]["opened"] for e in evs) == 1
    dups = [e for e in evs if e["duplicate_of"]]
    assert len(dups) == 3 and all(e["duplicate_of"] != e["id"] for e in dups)
    # both members did part of it
    per_member = [stats(m) for m, _ in members]
    assert all(st.get("enriched", 0) >= 3 for st in per_member), per_member
