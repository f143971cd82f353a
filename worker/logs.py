"""Log set-up for the commands and the faust worker: text for a terminal, JSON for a collector.

``WORKER_LOG_FORMAT=json`` makes every log line one JSON object (python-json-logger):
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``exception`` when there is
one, and whatever the call attached with ``extra=`` (a record's URL, a feed's name).
Either way, a filter on every handler takes secrets out of the line: the password of any
``scheme://user:password@host`` URL, and the secret values of the settings themselves.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
"""The one-shot commands' text lines (the worker keeps faust's own text format)."""

_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")


class JsonLogFormatter(JsonFormatter):
    """One JSON object per record: time, level, logger, message first, then exception and
    the record's extra fields."""

    def __init__(self) -> None:
        super().__init__(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "exc_info": "exception",
                "stack_info": "stack",
            },
            json_ensure_ascii=False,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = (
            datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        head = {key: log_data.pop(key, None) for key in ("time", "level", "logger", "message")}
        return {**head, **log_data}


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and its exception text) without secrets: URL passwords
    and the given secret values become ``***``. Attach it to handlers, so records that
    propagate from any logger pass through it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        text = _URL_PASSWORD.sub(r"\g<head>***@", text)
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: leave it to the formatter
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            # the formatters use exc_text when exc_info is gone: the redacted text is printed
            record.exc_text, record.exc_info = self.redact(text), None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def secret_values(settings: Any) -> list[str]:
    """The secret values of the settings (passwords), to be kept out of every log line."""
    from urllib.parse import urlsplit

    out = []
    if getattr(settings, "kafka_sasl_password", None) is not None:
        out.append(settings.kafka_sasl_password.get_secret_value())
    redis_url = getattr(settings, "redis_url", None)
    if redis_url is not None:
        password = urlsplit(redis_url.get_secret_value()).password
        if password:
            out.append(password)
    return out


def make_formatter(fmt: str) -> logging.Formatter:
    return JsonLogFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure_cli_logging(fmt: str, level: str, secrets: Iterable[str] = ()) -> None:
    """The one-shot commands: one handler on stderr, text or JSON, secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def faust_logging_config(fmt: str) -> dict[str, Any] | None:
    """faust's ``logging_config`` setting (a :func:`logging.config.dictConfig` dict) for
    the worker: None keeps faust's own text format; for JSON, faust's handler is replaced
    by one that writes JSON lines on stderr. ``merge`` keeps faust's root logger, so the
    level given on the command line (``-l``) still applies."""
    if fmt != "json":
        return None
    return {
        "merge": True,
        "formatters": {"json": {"()": "worker.logs.JsonLogFormatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
    }


def redact_root_handlers(secrets: Iterable[str]) -> None:
    """Adds the secrets filter to every handler of the root logger (after faust set them
    up); idempotent."""
    values = list(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets(values))
