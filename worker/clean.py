"""HTML or text in, clean text and metadata out. No I/O. (CONTRACT STUB: to be implemented)"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class CleanError(Exception):
    """Base: a page that cannot be cleaned. ``retriable`` is False for all of these."""

    retriable = False
    reason = "clean-error"


class BinaryContent(CleanError):
    reason = "binary"


class EmptyContent(CleanError):
    """The page cleaned to nothing worth publishing (a skip, not a failure)."""

    reason = "empty"


@dataclass(frozen=True, slots=True)
class CleanDoc:
    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None  # timezone-aware, or None
    site_name: str | None = None
    language: str | None = None  # ISO 639-1, e.g. "en"
    url: str | None = None  # canonical URL the page declares, if any


def decode_bytes(data: bytes, declared_charset: str | None = None) -> str:
    raise NotImplementedError


def clean_html(html: str, url: str | None = None) -> CleanDoc:
    raise NotImplementedError


def clean_text(text: str) -> CleanDoc:
    raise NotImplementedError
