"""Scaling out: the consumer-group settings (validated, handed to faust's consumer as they
are) and what the extraction pool says about how well it is fed."""

from __future__ import annotations

import pytest

from worker.settings import Settings, SettingsError, get_settings


def test_defaults_move_a_dead_members_partitions_well_within_15_s() -> None:
    s = Settings()
    # the coordinator drops a silent member after the session timeout; the survivor hears of
    # the rebalance at its next heartbeat; what is left of 15 s is for rejoining
    assert s.kafka_session_timeout_s + s.kafka_heartbeat_interval_s <= 10.0
    assert s.kafka_heartbeat_interval_s * 3 <= s.kafka_session_timeout_s
    assert s.kafka_session_timeout_s >= 6.0  # the broker's group.min.session.timeout.ms


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"kafka_session_timeout_s": 9, "kafka_heartbeat_interval_s": 4},
            "WORKER_KAFKA_HEARTBEAT_INTERVAL_S=4 must be at most a third of "
            "WORKER_KAFKA_SESSION_TIMEOUT_S=9",
        ),
        ({"kafka_session_timeout_s": 2}, "WORKER_KAFKA_SESSION_TIMEOUT_S: Input should be"),
        ({"kafka_heartbeat_interval_s": 0}, "WORKER_KAFKA_HEARTBEAT_INTERVAL_S: Input should"),
        ({"kafka_rebalance_timeout_s": 0}, "WORKER_KAFKA_REBALANCE_TIMEOUT_S: Input should"),
    ],
)
def test_bad_group_settings_are_one_line_errors(env: dict[str, float], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        get_settings(**env)
    assert message in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_the_faust_consumer_gets_the_group_settings() -> None:
    from worker.app import create_app

    app = create_app(
        Settings(
            kafka_session_timeout_s=12,
            kafka_heartbeat_interval_s=3,
            kafka_rebalance_timeout_s=25,
        )
    )
    assert app.conf.broker_session_timeout == 12
    assert app.conf.broker_heartbeat_interval == 3
    assert app.conf.broker_rebalance_timeout == 25
    assert app.conf.broker_request_timeout >= app.conf.broker_session_timeout

    long_session = create_app(Settings(kafka_session_timeout_s=120))
    # faust refuses a session timeout above its request timeout: raised to match
    assert long_session.conf.broker_request_timeout == 120


async def test_the_extraction_pool_reports_how_well_it_is_fed() -> None:
    """/health's "extraction": pages in flight, and the process-seconds a process had no
    page (what the benchmark reads to tell a starved pool from a busy one)."""
    import asyncio
    import time
    from pathlib import Path

    from worker.bootstrap import PoolExtractor

    html = (Path(__file__).parents[1] / "data" / "pages" / "nytimes-1.html").read_text()
    ex = PoolExtractor(1)
    try:
        await asyncio.to_thread(ex.warm_up)
        idle0 = ex.load()["idle_process_s"]
        await asyncio.sleep(0.3)
        assert ex.load()["idle_process_s"] - idle0 >= 0.25  # nothing handed over: idle
        tasks = [asyncio.create_task(ex.clean_html(html, None)) for _ in range(3)]
        await asyncio.sleep(0)
        assert ex.load()["in_flight"] == 3
        t0, before = time.monotonic(), ex.load()["idle_process_s"]
        await asyncio.gather(*tasks)
        took = time.monotonic() - t0
        assert ex.load()["idle_process_s"] - before < 0.1 * took + 0.01  # fed all along
        load = ex.load()
        assert (load["processes"], load["in_flight"]) == (1, 0)
    finally:
        ex.close()
