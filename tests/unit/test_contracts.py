"""The public contract: schemas and the AsyncAPI document match the models; the compose
file agrees with the settings; secrets stay out of what the worker prints."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import orjson
import yaml

from worker.schemas import asyncapi, json_schemas
from worker.settings import Settings, redact_url
from worker.tagging import Tagger

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def test_committed_json_schemas_match_the_models():
    for name, schema in json_schemas().items():
        committed = json.loads((CONFIGS / "schemas" / f"{name}.json").read_text())
        assert committed == json.loads(orjson.dumps(schema)), (
            f"configs/schemas/{name}.json is stale: run `python -m worker schemas`"
        )
        jsonschema.Draft202012Validator.check_schema(committed)


def test_asyncapi_lists_every_topic_of_the_taxonomy():
    tagger = Tagger.from_config_dir(CONFIGS)
    committed = yaml.safe_load((CONFIGS / "asyncapi.yaml").read_text())
    ids = list(tagger.topics)
    assert committed == asyncapi(ids, {t: tagger.topics[t].label for t in ids})
    addresses = {c["address"] for c in committed["channels"].values()}
    assert {"articles.raw", "articles.enriched", "articles.dlq"} <= addresses
    assert {f"alerts.{t}" for t in ids} <= addresses and len(ids) == 13


def test_seed_event_from_tag_validates_against_the_committed_schema(capsysbinary):
    from worker.cli import main

    assert main(["tag", str(ROOT / "seeds" / "000_f06541f7bef2d985.txt")]) == 0
    event = orjson.loads(capsysbinary.readouterr().out)
    schema = json.loads((CONFIGS / "schemas" / "enriched-event.json").read_text())
    jsonschema.validate(event, schema)


def test_compose_file_agrees_with_the_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "redis", "worker", "alerts"} <= set(services)
    for name in ("kafka", "redis", "worker"):
        assert "healthcheck" in services[name], name
    defaults = Settings()
    # the host ports are the settings' defaults, bound to loopback
    kafka_port = defaults.kafka_bootstrap_servers.rsplit(":", 1)[1]
    assert f"127.0.0.1:{kafka_port}:9092" in services["kafka"]["ports"]
    assert "127.0.0.1:6379:6379" in services["redis"]["ports"]
    assert defaults.redis_url.get_secret_value().startswith("redis://127.0.0.1:6379")
    # every WORKER_ variable the compose file sets is a real setting, with a valid value
    fields = {f"WORKER_{n.upper()}" for n in Settings.model_fields} | {"WORKER_LOG_LEVEL"}
    for name in ("worker", "alerts"):
        env = services[name]["environment"]
        assert set(env) <= fields, set(env) - fields
        values = {k[len("WORKER_") :].lower(): v for k, v in env.items() if k != "WORKER_LOG_LEVEL"}
        s = Settings(**values)
        host = s.kafka_bootstrap_servers.split(":")[0]
        assert host == "kafka" and s.redis_url.get_secret_value() == "redis://redis:6379/0"
    # the worker's internal listener is the one the worker is told to use
    kafka_env = services["kafka"]["environment"]
    assert "INTERNAL://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert services["worker"]["environment"]["WORKER_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
    assert services["worker"]["command"][-1] == "worker"
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["alerts"]["depends_on"]["worker"]["condition"] == "service_healthy"


def test_settings_redact_secrets():
    s = Settings(
        redis_url="redis://user:hunter2@redis:6379/0",
        kafka_sasl_password="k-secret",
        kafka_sasl_username="svc",
    )
    dumped = json.dumps(s.as_dict())
    assert "hunter2" not in dumped and "k-secret" not in dumped
    assert "redis://user:***@redis:6379/0" in dumped
    assert "hunter2" not in repr(s) and "k-secret" not in str(s)
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_settings_reject_bad_networks_and_prefixes():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="fetch_allow_networks"):
        Settings(fetch_allow_networks="10.0.0.0/8, not-a-cidr")
    with pytest.raises(ValidationError, match="topic_prefix"):
        Settings(topic_prefix="bad prefix/")
    assert [
        str(n) for n in Settings(fetch_allow_networks="127.0.0.0/8,::1/128").allow_networks
    ] == ["127.0.0.0/8", "::1/128"]
