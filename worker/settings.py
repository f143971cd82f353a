"""One frozen settings object, read from ``WORKER_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.topics import TopicNames

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", frozen=True, extra="ignore")

    # --- services -------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str | None = Field(default=None, description="PLAIN, SCRAM-SHA-256/512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")

    # --- faust ----------------------------------------------------------------
    app_id: str = "diplomacy-ingest"
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="namespace for every topic name, e.g. 'staging.'",
    )
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication: int = Field(default=1, ge=1)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    data_dir: Path = ROOT / ".services" / "faust"
    startup_wait_s: float = Field(
        default=60.0, ge=0, description="how long `worker` waits for Kafka at start"
    )
    shutdown_timeout_s: float = Field(
        default=30.0, gt=0, description="after SIGTERM, exit at the latest after this"
    )

    # --- pipeline -------------------------------------------------------------
    configs_dir: Path = ROOT / "configs"
    agent_concurrency: int = Field(
        default=4, ge=1, le=64, description="records the worker handles at once"
    )
    extract_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=0,
        description="cleaning process pool size; 0 = in a thread",
    )
    stream_buffer_maxsize: int = Field(
        default=64, ge=1, description="raw records read ahead per partition (bounds memory)"
    )
    max_attempts: int = Field(default=3, ge=1, description="tries for a retriable failure")
    retry_backoff_s: float = Field(default=0.5, ge=0)
    seen_ttl_days: int = Field(default=90, ge=1)
    topic_model: bool = Field(
        default=True, description="use the learned topic model beside the rules"
    )
    topic_model_file: Path | None = Field(
        default=None, description="the learned model (default: configs/topic-model.json)"
    )

    # --- HTTP fetching ----------------------------------------------------------
    fetch_connect_timeout_s: float = 5.0
    fetch_read_timeout_s: float = 15.0
    fetch_max_bytes: int = 5 * 1024 * 1024
    fetch_max_redirects: int = 5
    fetch_per_host: int = 2
    fetch_allow_networks: str = Field(
        default="", description="comma-separated CIDRs exempt from the private-address guard"
    )
    user_agent: str = Field(
        default="diplomacy-ingest-worker/0.1 (news monitoring; python-aiohttp)",
        description="sent on every request; add a contact URL or e-mail for your deployment",
    )

    # --- feeds ------------------------------------------------------------------
    feeds_file: Path | None = None
    poll_interval_s: float = 900.0
    poll_min_interval_s: float = 60.0
    poll_max_backoff_s: float = 6 * 3600.0
    poll_tick_s: float = Field(
        default=30.0, gt=0, description="how often the leader checks for due feeds"
    )

    @field_validator("fetch_allow_networks")
    @classmethod
    def _check_networks(cls, v: str) -> str:
        for part in filter(None, (p.strip() for p in v.split(","))):
            ipaddress.ip_network(part, strict=False)
        return v

    @cached_property
    def allow_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(
            ipaddress.ip_network(p.strip(), strict=False)
            for p in self.fetch_allow_networks.split(",")
            if p.strip()
        )

    @property
    def topics_file(self) -> Path:
        return self.configs_dir / "topics.yaml"

    @property
    def countries_file(self) -> Path:
        return self.configs_dir / "countries.yaml"

    @property
    def model_file(self) -> Path | None:
        """The topic model to load, or None for the rules alone."""
        if not self.topic_model:
            return None
        return self.topic_model_file or self.configs_dir / "topic-model.json"

    @property
    def alerts_file(self) -> Path:
        return self.configs_dir / "alerts.yaml"

    @property
    def feeds_path(self) -> Path:
        return self.feeds_file or self.configs_dir / "feeds.yaml"

    @property
    def topic_names(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    def as_dict(self) -> dict[str, Any]:
        """Settings for logs and ``health``: secrets redacted, URLs without passwords."""
        out = self.model_dump(mode="json")
        out["redis_url"] = redact_url(self.redis_url.get_secret_value())
        if self.kafka_sasl_password is not None:
            out["kafka_sasl_password"] = "**********"
        return out


def redact_url(url: str) -> str:
    """``redis://user:pw@host`` -> ``redis://user:***@host``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def get_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
