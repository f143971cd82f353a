"""One frozen settings object, read from ``WORKER_*`` environment variables."""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from worker.topics import TopicNames

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", frozen=True, extra="ignore")

    # --- services -------------------------------------------------------------
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256/512"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    kafka_compression: Literal["zstd", "lz4", "gzip", "snappy", "none"] = Field(
        default="zstd", description="producer compression (pages compress about 5 to 1)"
    )
    kafka_max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="largest record the worker and replay publish; topics are created with it",
    )

    # --- consumer group (every worker with the same app_id shares the partitions) -----
    kafka_session_timeout_s: float = Field(
        default=8.0,
        ge=6.0,
        le=300.0,
        description=(
            "a member not heard from for this long is dropped from the group and its "
            "partitions go to the others (the broker accepts 6 s to 30 min by default)"
        ),
    )
    kafka_heartbeat_interval_s: float = Field(
        default=2.0,
        gt=0,
        description="how often a member tells the group coordinator it is alive",
    )
    kafka_rebalance_timeout_s: float = Field(
        default=60.0,
        ge=1.0,
        le=600.0,
        description=(
            "how long the coordinator waits for every member to rejoin a rebalance (a member "
            "first finishes the records it holds)"
        ),
    )

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
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text (for a terminal) or json (one object per line, for a collector)",
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
    story_window_h: float = Field(
        default=72.0,
        gt=0,
        description="how long an article can start or join a story, and how long the story "
        "state stays in Redis after the story's last article",
    )
    story_update_min_s: float = Field(
        default=900.0,
        ge=0,
        description="at most one update alert per story and topic in this many seconds",
    )
    probe_interval_s: float = Field(
        default=2.0, gt=0, description="how often /health and /ready re-check Kafka and Redis"
    )
    topic_model: bool = Field(
        default=True, description="use the learned topic model beside the rules"
    )
    topic_model_file: Path | None = Field(
        default=None, description="the learned model (default: configs/topic-model.json)"
    )
    topic_model_windows: bool = Field(
        default=False,
        description="the model also reads a text of more than 8 sentences (a page), by "
        "three-sentence windows: more topics found on long articles (topics micro-F1 0.639 -> "
        "0.681 on 154 unseen ones), for more CPU a page and a few more wrong topics (the seed "
        "article gains two)",
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

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                f"WORKER_KAFKA_SASL_{name.upper()}"
                for name, value in (
                    ("mechanism", self.kafka_sasl_mechanism),
                    ("username", self.kafka_sasl_username),
                    ("password", self.kafka_sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"WORKER_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    f"{', '.join(missing)}"
                )
        return self

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> Settings:
        # Kafka's rule is heartbeat < session; a third leaves room for two late heartbeats
        # before a healthy member is dropped (and its partitions moved) by mistake.
        if self.kafka_heartbeat_interval_s * 3 > self.kafka_session_timeout_s:
            raise ValueError(
                f"WORKER_KAFKA_HEARTBEAT_INTERVAL_S={self.kafka_heartbeat_interval_s:g} must be "
                f"at most a third of WORKER_KAFKA_SESSION_TIMEOUT_S="
                f"{self.kafka_session_timeout_s:g}"
            )
        return self

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
    def compression_type(self) -> str | None:
        return None if self.kafka_compression == "none" else self.kafka_compression

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


class SettingsError(ValueError):
    """The environment's WORKER_* variables do not make valid settings; the message names each
    variable and what is wrong with it, one line each."""


def get_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = "_".join(str(x) for x in err["loc"]).upper()
            name = f"WORKER_{loc}" if loc else "settings"
            msg = err["msg"].removeprefix("Value error, ")
            value = os.environ.get(name)
            shown = (
                "" if value is None or "PASSWORD" in name or "URL" in name else f" (got {value!r})"
            )
            lines.append(f"{name}: {msg}{shown}" if loc else msg)
        raise SettingsError("\n".join(lines)) from None


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """Warnings for WORKER_* variables no setting reads, each naming the closest real one
    (a misspelled variable is otherwise silently ignored)."""
    import difflib

    env = os.environ if environ is None else environ
    known = {f"WORKER_{name.upper()}" for name in Settings.model_fields}
    known |= {"WORKER_LOG_LEVEL", "WORKER_CACHE_DIR"}  # CLI logging; worker.tagging.cache
    out = []
    for name in sorted(k for k in env if k.startswith("WORKER_") and k not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        out.append(f"{name} is not a setting of this worker{hint}")
    return out
