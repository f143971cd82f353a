"""Consumer-group settings: validated, and handed to faust's consumer as they are."""

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
