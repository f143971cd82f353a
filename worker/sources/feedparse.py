"""Feed bytes in, entries out: safe parsing, entry identity, content hashes. No I/O.

feedparser is only ever given the bytes the :class:`~worker.sources.http.Fetcher` read,
wrapped in a stream: handed a ``str`` it would fetch a URL itself, and handed ``bytes`` it
first tries to ``open()`` them as a local path.

XML entities: before feedparser sees a document, defusedxml's expat reader refuses any
entity declaration, internal or external (billion laughs, quadratic blow-up, XXE). Behind
that, feedparser itself drops unsafe entity declarations and does not resolve external
entities, and expat >= 2.4 caps entity amplification.
"""

from __future__ import annotations

import hashlib
import io
import time
import xml.sax
import xml.sax.handler
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import defusedxml
import defusedxml.expatreader
import feedparser
from w3lib.url import canonicalize_url

FULL_CONTENT_MIN_CHARS = 500
"""``content:encoded`` longer than this (and than the summary) is sent as the page body."""

_HTML_TYPES = ("text/html", "application/xhtml+xml")
# bozo exceptions that do not mean the document is broken
_BENIGN_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class FeedParseError(Exception):
    """A fetched document that yields no usable feed. Not retriable (same bytes, same
    result); the poller still polls the feed again later."""

    retriable = False

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "unsafe-xml" | "not-a-feed" | "malformed"


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    entry_id: str
    link: str | None
    title: str | None
    summary: str | None
    content: str | None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(self.title, self.summary, self.content)

    @property
    def has_full_content(self) -> bool:
        return (
            self.content is not None
            and len(self.content) > FULL_CONTENT_MIN_CHARS
            and len(self.content) >= len(self.summary or "")
        )


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    version: str  # feedparser's, e.g. "rss20", "atom10"
    title: str | None
    ttl_s: float | None  # RSS <ttl>, in seconds
    entries: list[ParsedEntry]
    warning: str | None = None  # why feedparser flagged the document, if it still parsed


# --- identity ---------------------------------------------------------------------------


def entry_identity(
    guid: str | None, link: str | None, title: str | None, summary: str | None
) -> str:
    """The GUID (Atom id); else the canonical link; else ``sha256:`` of title + summary."""
    if guid and guid.strip():
        return guid.strip()
    if link and link.strip():
        try:
            return canonicalize_url(link.strip())
        except ValueError:
            pass
    digest = hashlib.sha256(f"{title or ''}\n{summary or ''}".encode()).hexdigest()
    return f"sha256:{digest}"


def content_hash(title: str | None, summary: str | None, content: str | None) -> str:
    """What "the entry changed" means: its title, summary or content changed."""
    data = "\x1f".join((title or "", summary or "", content or ""))
    return hashlib.sha256(data.encode()).hexdigest()[:32]


# --- parsing ----------------------------------------------------------------------------


def check_xml_safety(body: bytes) -> None:
    """Refuse entity declarations and external references (FeedParseError "unsafe-xml").

    Documents that are not well-formed pass: feedparser decides what to make of them.
    """
    # forbid_entities refuses every <!ENTITY>, internal or SYSTEM/PUBLIC. An external DTD
    # subset alone (RSS 0.91's Netscape DOCTYPE) is harmless: nothing here fetches it.
    parser = defusedxml.expatreader.create_parser(
        forbid_dtd=False, forbid_entities=True, forbid_external=False
    )
    parser.setContentHandler(xml.sax.handler.ContentHandler())
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setFeature(xml.sax.handler.feature_external_pes, False)
    try:
        parser.parse(io.BytesIO(body))
    except defusedxml.EntitiesForbidden as exc:
        raise FeedParseError(
            f"unsafe XML: entity declaration {exc.name!r} refused", reason="unsafe-xml"
        ) from exc
    except defusedxml.DefusedXmlException as exc:
        raise FeedParseError(f"unsafe XML: {exc}", reason="unsafe-xml") from exc
    except (xml.sax.SAXException, ValueError, LookupError):
        return


def looks_like_html(body: bytes, content_type: str | None) -> bool:
    if content_type and content_type.split(";", 1)[0].strip().lower() in _HTML_TYPES:
        return True
    head = body[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html"))


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse fetched bytes. Raises FeedParseError: unsafe XML, an HTML page, or a document
    with no entries that feedparser could not read. A document that is flawed but yields
    entries is accepted (``warning`` says what was wrong); an empty feed is fine."""
    check_xml_safety(body)
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    parsed = feedparser.parse(
        io.BytesIO(body), response_headers=headers, resolve_relative_uris=True, sanitize_html=True
    )
    version = parsed.get("version") or ""
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if isinstance(problem, _BENIGN_BOZO):
        problem = None
    raw_entries = parsed.get("entries") or []
    if not raw_entries:
        if not version and looks_like_html(body, content_type):
            shown = (content_type or "text/html").split(";", 1)[0].strip().lower()
            if shown not in _HTML_TYPES:
                shown = "text/html"
            raise FeedParseError(f"not a feed (got {shown} page)", reason="not-a-feed")
        if not version or problem is not None:
            why = _describe(problem) if problem is not None else "no RSS or Atom document found"
            raise FeedParseError(f"malformed feed: {why}", reason="malformed")
    entries = [_entry(e) for e in raw_entries]
    meta = parsed.get("feed") or {}
    return ParsedFeed(
        version=version,
        title=meta.get("title"),
        ttl_s=_ttl_seconds(meta.get("ttl")),
        entries=entries,
        warning=_describe(problem) if problem is not None else None,
    )


def _entry(e: Any) -> ParsedEntry:
    title = _text(e.get("title"))
    summary = _text(e.get("summary"))
    content = _pick_content(e.get("content"))
    link = _http_link(e.get("link"))
    guid = e.get("id") if isinstance(e.get("id"), str) else None
    authors = [a["name"].strip() for a in e.get("authors") or [] if (a.get("name") or "").strip()]
    if not authors and _text(e.get("author")):
        authors = [e["author"].strip()]
    return ParsedEntry(
        entry_id=entry_identity(guid, link, title, summary),
        link=link,
        title=title,
        summary=summary,
        content=content,
        authors=authors,
        published_at=_datetime(e.get("published_parsed")),
        updated_at=_datetime(e.get("updated_parsed")),
    )


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _pick_content(items: Any) -> str | None:
    """The longest HTML (else any) ``content`` value: RSS content:encoded, Atom content."""
    if not items:
        return None
    html = [
        c for c in items if (c.get("type") or "").lower() in ("text/html", "application/xhtml+xml")
    ]
    values = [_text(c.get("value")) for c in (html or items)]
    return max((v for v in values if v), key=len, default=None)


def _http_link(link: Any) -> str | None:
    if not isinstance(link, str) or not link.strip():
        return None
    link = link.strip()
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    return link if parts.scheme in ("http", "https") and parts.netloc else None


def _datetime(value: Any) -> datetime | None:
    """feedparser's ``*_parsed`` struct_time is UTC."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _ttl_seconds(value: Any) -> float | None:
    try:
        minutes = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60.0 if minutes > 0 else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    return str(exc) or type(exc).__name__
