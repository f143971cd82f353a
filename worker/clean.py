"""HTML or text in, clean text and metadata out. No I/O.

Three entry points, all plain top-level functions with picklable arguments and results, so
the pipeline can run them in a process pool (``spawn`` is fine: nothing here depends on
state built by the parent process):

- :func:`decode_bytes` turns the bytes of a file or HTTP body into ``str`` (BOM, declared
  charset, ``<meta charset>``, detection) or raises :class:`BinaryContent`.
- :func:`clean_html` runs trafilatura on a page and completes its metadata from the page's
  own markup (JSON-LD/meta publication time with its offset, canonical URL, language).
- :func:`clean_text` cleans an article saved as plain text (site navigation and footer
  still in it) with general layout rules: byline, headline, dateline, date lines,
  navigation, captions, footer.

Decisions (documented here because downstream services depend on them):

- **Time zones.** ``published_at`` is always timezone-aware, with a fixed UTC offset. When
  the page gives an offset (ISO ``+08:00``/``Z``, or a zone abbreviation such as ``EST``),
  it is kept. When it gives a wall-clock time without one, the time is read in the
  outlet's home zone if the outlet is in :data:`OUTLETS` (China Daily -> Asia/Shanghai),
  otherwise as UTC. A bare date becomes midnight of that day in the same zone, so the
  ISO string keeps the calendar date the outlet printed. ``published_tz_source`` says
  which case applied: ``"page"``, ``"site"`` or ``"assumed-utc"``.
- **Which time.** HTML: the page's explicit publication time (JSON-LD ``datePublished``,
  ``article:published_time``, ``itemprop=datePublished``), preferring one that carries an
  offset; else a generic date meta or ``<time datetime>`` whose day agrees with
  trafilatura's (htmldate's) date; else that date. Modification times are never used.
  Text: a ``Published/Posted`` line wins over an
  ``Updated`` line; an ``Updated`` time is used when it is the only time the page prints
  (China Daily labels its publication time that way).
- **Captions.** Photo captions recognised by their form (``FILE PHOTO: ...``,
  ``... [Photo/Agencies]``, ``Photo: ...``, ``(Photo: ...)``) are dropped from the text of
  saved text pages: they describe a picture, not the story, and their places and dates
  (an old G20 photo in Osaka) would be tagged as if the article reported them.
  TAXONOMY.md allows this (JP is expected only when the caption is kept). In HTML,
  trafilatura already leaves figure captions out (``include_images=False``).
- **Text layout.** Paragraphs are joined with one ``"\n"`` in both paths (tagging
  offsets index into that string); the title is not part of ``text``.
- **Authors.** A list of names; ``"A; B"`` from trafilatura is split, case-insensitive
  duplicates dropped, ALL-CAPS names title-cased (``REN QI`` -> ``Ren Qi``), navigation
  junk (``Username``) rejected.
- **Large input.** Input longer than :data:`MAX_CHARS` is not truncated (a cut page is a
  different article and its tags would be wrong without anyone knowing). HTML between
  :data:`MAX_CHARS` and :data:`HARD_MAX_CHARS` first loses its ``<script>``, ``<style>``,
  ``<svg>``, comments and ``data:`` URIs (pages bloated by inline code); if it is still
  too long, or was over the hard limit to start with, :class:`TooLarge` is raised (a
  skip with reason ``too-large``). Plain text over :data:`MAX_CHARS` raises at once.
- **Language.** ISO 639-1. The text itself decides when a cheap stopword/script check is
  confident (a French article in a page declared ``lang="en"`` is ``fr``); otherwise the
  page's declared language (``<html lang>``, ``content-language``, ``og:locale``).
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import charset_normalizer
import dateutil.parser
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.settings import use_config
from trafilatura.utils import load_html

__all__ = [
    "HARD_MAX_CHARS",
    "MAX_CHARS",
    "MIN_TEXT_CHARS",
    "OUTLETS",
    "BinaryContent",
    "CleanDoc",
    "CleanError",
    "EmptyContent",
    "TooLarge",
    "clean",
    "clean_html",
    "clean_text",
    "decode_bytes",
    "sniff_kind",
    "warm_up",
]

log = logging.getLogger(__name__)

#: Longest input (characters) handed to the extractors.
MAX_CHARS = 2_000_000
#: Longest HTML input that is still worth stripping of scripts and styles to fit MAX_CHARS.
HARD_MAX_CHARS = 10 * MAX_CHARS
#: Less clean text than this is not an article (navigation, a paywall stub, an error page).
MIN_TEXT_CHARS = 200


# --- errors and the result ---------------------------------------------------------------


class CleanError(Exception):
    """Base: a page that cannot be cleaned. ``retriable`` is False for all of these."""

    retriable = False
    reason = "clean-error"


class BinaryContent(CleanError):
    """The input is not text (a PDF, an image, an archive, ...)."""

    reason = "binary"


class EmptyContent(CleanError):
    """The page cleaned to nothing worth publishing (a skip, not a failure)."""

    reason = "empty"


class TooLarge(CleanError):
    """The input is longer than :data:`MAX_CHARS` even without scripts and styles (a skip)."""

    reason = "too-large"


TzSource = Literal["page", "site", "assumed-utc"]


@dataclass(frozen=True, slots=True)
class CleanDoc:
    text: str
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None  # timezone-aware, or None
    site_name: str | None = None
    language: str | None = None  # ISO 639-1, e.g. "en"
    url: str | None = None  # canonical URL the page declares, if any
    #: Where published_at's offset comes from: the page itself, the outlet's home zone
    #: (:data:`OUTLETS`), or an assumption of UTC; None when there is no date.
    published_tz_source: TzSource | None = None
    #: The place a byline or the first paragraph names ("Moscow" in "By X in Moscow").
    dateline: str | None = None


# --- outlets: names, hosts and home time zones -------------------------------------------


@dataclass(frozen=True, slots=True)
class Outlet:
    name: str
    hosts: tuple[str, ...] = ()
    tz: str | None = None  # IANA zone of the newsroom; None for wires with no single home
    aliases: tuple[str, ...] = ()


#: Outlets whose home time zone is known. Used to read wall-clock times that carry no
#: offset, and to recognise an outlet's name in a byline. Extend as sources are added.
OUTLETS: tuple[Outlet, ...] = (
    Outlet("China Daily", ("chinadaily.com.cn",), "Asia/Shanghai"),
    Outlet("Xinhua", ("xinhuanet.com", "news.cn"), "Asia/Shanghai", ("Xinhua News Agency",)),
    Outlet("Global Times", ("globaltimes.cn",), "Asia/Shanghai"),
    Outlet("CGTN", ("cgtn.com",), "Asia/Shanghai"),
    Outlet("People's Daily", ("people.com.cn",), "Asia/Shanghai", ("People's Daily Online",)),
    Outlet("South China Morning Post", ("scmp.com",), "Asia/Hong_Kong", ("SCMP",)),
    Outlet("The Japan Times", ("japantimes.co.jp",), "Asia/Tokyo"),
    Outlet("Kyodo News", ("kyodonews.net",), "Asia/Tokyo", ("Kyodo",)),
    Outlet("NHK World", ("nhk.or.jp",), "Asia/Tokyo", ("NHK",)),
    Outlet("Yonhap", ("yna.co.kr",), "Asia/Seoul", ("Yonhap News Agency",)),
    Outlet("The Korea Herald", ("koreaherald.com",), "Asia/Seoul"),
    Outlet("TASS", ("tass.com", "tass.ru"), "Europe/Moscow"),
    Outlet("RIA Novosti", ("ria.ru",), "Europe/Moscow"),
    Outlet("The Moscow Times", ("themoscowtimes.com",), "Europe/Moscow"),
    Outlet("The Times of India", ("timesofindia.indiatimes.com",), "Asia/Kolkata"),
    Outlet("The Hindu", ("thehindu.com",), "Asia/Kolkata"),
    Outlet("Dawn", ("dawn.com",), "Asia/Karachi"),
    Outlet("Al Jazeera", ("aljazeera.com", "aljazeera.net"), "Asia/Qatar"),
    Outlet("The Times of Israel", ("timesofisrael.com",), "Asia/Jerusalem"),
    Outlet("Haaretz", ("haaretz.com",), "Asia/Jerusalem"),
    Outlet("BBC News", ("bbc.co.uk", "bbc.com"), "Europe/London", ("BBC",)),
    Outlet("The Guardian", ("theguardian.com", "guardian.co.uk"), "Europe/London"),
    Outlet("The Telegraph", ("telegraph.co.uk",), "Europe/London"),
    Outlet("Financial Times", ("ft.com",), "Europe/London", ("FT",)),
    Outlet("Le Monde", ("lemonde.fr",), "Europe/Paris"),
    Outlet("Libération", ("liberation.fr",), "Europe/Paris", ("Liberation",)),
    Outlet("France 24", ("france24.com",), "Europe/Paris"),
    Outlet("Deutsche Welle", ("dw.com",), "Europe/Berlin", ("DW",)),
    Outlet("Der Spiegel", ("spiegel.de",), "Europe/Berlin", ("Spiegel",)),
    Outlet("The New York Times", ("nytimes.com",), "America/New_York", ("NYTimes", "NYT")),
    Outlet("The Washington Post", ("washingtonpost.com",), "America/New_York"),
    Outlet("The Wall Street Journal", ("wsj.com",), "America/New_York", ("WSJ",)),
    Outlet("CNN", ("cnn.com",), "America/New_York"),
    Outlet("The Seattle Times", ("seattletimes.com",), "America/Los_Angeles"),
    Outlet("Los Angeles Times", ("latimes.com",), "America/Los_Angeles"),
    Outlet("Folha de S.Paulo", ("folha.uol.com.br",), "America/Sao_Paulo"),
    Outlet("La Nación", ("lanacion.com.ar",), "America/Argentina/Buenos_Aires"),
    Outlet("Herald Sun", ("heraldsun.com.au",), "Australia/Melbourne"),
    Outlet("The Sydney Morning Herald", ("smh.com.au",), "Australia/Sydney"),
    # wire services: recognised as outlets in bylines, but no single home zone
    Outlet("Reuters", ("reuters.com",)),
    Outlet("Associated Press", ("apnews.com",), None, ("AP", "The Associated Press")),
    Outlet("AFP", ("afp.com",), None, ("Agence France-Presse",)),
    Outlet("Bloomberg", ("bloomberg.com",)),
)


def _name_key(name: str) -> str:
    name = unicodedata.normalize("NFKD", name.casefold())
    name = "".join(c for c in name if not unicodedata.combining(c))
    name = re.sub(r"\.(com|co\.uk|fr|de|cn|org|net)$", "", name.strip())
    name = re.sub(r"^the\s+", "", name)
    return re.sub(r"[^a-z0-9]", "", name)


_OUTLET_BY_NAME = {_name_key(alias): o for o in OUTLETS for alias in (o.name, *o.aliases)}


def _outlet_for(site_name: str | None = None, url: str | None = None) -> Outlet | None:
    if url:
        host = (urlsplit(url).hostname or "").lower()
        for o in OUTLETS:
            if any(host == h or host.endswith("." + h) for h in o.hosts):
                return o
    if site_name:
        return _OUTLET_BY_NAME.get(_name_key(site_name))
    return None


# --- bytes -> str --------------------------------------------------------------------------

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "PDF document"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"PK\x03\x04", "ZIP archive (or DOCX/XLSX/EPUB)"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"),
    (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data"),
    (b"Rar!\x1a\x07", "RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "OLE document (DOC/XLS/MSG)"),
    (b"\x7fELF", "ELF executable"),
    (b"MZ", "Windows executable"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"\x00asm", "WebAssembly module"),
    (b"SQLite format 3\x00", "SQLite database"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# bytes that never occur in text: C0 controls except TAB LF VT FF CR ESC (ISO-2022 uses ESC)
_CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 11, 12, 13, 27)) + b"\x7f"
_CONTROL_RATIO = 0.02
_SNIFF_BYTES = 64 * 1024
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
# WHATWG: these labels mean windows-1252 on the web
_WEB_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252", "latin-1": "cp1252", "latin1": "cp1252"}


def _cp1252_or_latin1(err: UnicodeError) -> tuple[str, int]:
    """Decode error handler: the offending bytes as windows-1252 (latin-1 for its holes).

    Used for UTF-8 text with stray single-byte characters (a page assembled from parts
    in two encodings): the UTF-8 parts stay right and the rest is the usual suspect."""
    if not isinstance(err, UnicodeDecodeError):
        raise err
    chunk = err.object[err.start : err.end]
    out = []
    for b in chunk:
        try:
            out.append(bytes([b]).decode("cp1252"))
        except UnicodeDecodeError:
            out.append(bytes([b]).decode("latin-1"))
    return "".join(out), err.end


codecs.register_error("worker-clean-cp1252", _cp1252_or_latin1)


def _magic_kind(head: bytes) -> str | None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            if magic == b"MZ" and len(head) > 64 and b"PE\x00\x00" not in head[:1024]:
                continue  # "MZ" alone is also how some text starts
            return what
    if head[4:8] == b"ftyp":
        return "MP4/QuickTime media"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "RIFF media (WebP/WAV/AVI)"
    return None


def _normalise_charset(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return _WEB_ALIASES.get(name, name)


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le'/'-be' when NULs sit at every other byte, as in ASCII-range UTF-16."""
    sample = head[:4096]
    if len(sample) < 16:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.7 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.7 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _check_not_binary(head: bytes) -> None:
    what = _magic_kind(head)
    if what:
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise BinaryContent(f"binary content: looks like {article} {what}")
    if b"\x00" in head:
        raise BinaryContent("binary content: contains NUL bytes and is not UTF-16/32 text")
    controls = sum(head.count(bytes([c])) for c in _CONTROL_BYTES)
    if head and controls / len(head) > _CONTROL_RATIO:
        raise BinaryContent(
            f"binary content: {controls} control bytes in the first {len(head)} bytes"
        )


def decode_bytes(data: bytes, declared_charset: str | None = None) -> str:
    """Decode a file or HTTP body to text.

    Order: BOM; ``declared_charset`` (HTTP ``Content-Type``); ``<meta charset>`` in the
    first 64 KB; UTF-8; charset_normalizer's guess. Declared UTF-8 with a few invalid
    bytes keeps its UTF-8 and reads the stray bytes as windows-1252; a declared
    single-byte charset is overruled by valid multi-byte UTF-8 (a common mislabel).
    Never fails on bad encodings (replacement characters at worst).

    Raises :class:`BinaryContent` for PDFs, images, archives, executables and other data
    (magic numbers, NUL bytes outside UTF-16/32, many control bytes), and
    :class:`TooLarge` for more than :data:`HARD_MAX_CHARS` bytes.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_bytes() wants bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > HARD_MAX_CHARS:
        raise TooLarge(f"input is {len(data)} bytes, over the {HARD_MAX_CHARS} limit")
    if not data:
        return ""
    head = data[:_SNIFF_BYTES]

    for bom, encoding in _BOMS:
        if data.startswith(bom):
            if _magic_kind(data[len(bom) :][:64]):
                _check_not_binary(data[len(bom) :][:_SNIFF_BYTES])
            return data[len(bom) :].decode(encoding, errors="replace").lstrip("\ufeff")

    utf16 = _utf16_without_bom(head)
    if utf16:
        return data.decode(utf16, errors="replace").lstrip("\ufeff")
    _check_not_binary(head)

    declared = _normalise_charset(declared_charset)
    if declared is None:
        m = _META_CHARSET.search(head)
        declared = _normalise_charset(m.group(1).decode("ascii", "replace")) if m else None
    if declared in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"):
        declared = None  # a <meta> saying UTF-16 in an ASCII-compatible file is wrong

    if declared is not None:
        return _decode_declared(data, declared)

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return data.decode("utf-8", errors="worker-clean-cp1252")
    return _decode_detected(data)


def _decode_detected(data: bytes) -> str:
    """charset_normalizer's guess when it has language evidence, else windows-1252 (the
    usual truth behind a missing or wrong label; short samples fool any detector)."""
    best = charset_normalizer.from_bytes(data[:_SNIFF_BYTES]).best()
    encoding = _normalise_charset(best.encoding) if best is not None else None
    if best is None or encoding is None or best.coherence < 0.1:
        encoding = "cp1252"
    log.debug("detected encoding %s", encoding)
    if encoding == "cp1252":
        return data.decode("cp1252", errors="worker-clean-cp1252")
    return data.decode(encoding, errors="replace")


def _decode_declared(data: bytes, declared: str) -> str:
    if declared == "utf-8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            if _mostly_utf8(data):
                return data.decode("utf-8", errors="worker-clean-cp1252")
            return _decode_detected(data)
    if declared in ("cp1252", "iso8859-15") or declared.startswith(("iso8859", "cp125")):
        # valid UTF-8 with multi-byte sequences is almost never a single-byte text
        if any(b > 0x7F for b in data[:_SNIFF_BYTES]):
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
    if declared == "cp1252":
        return data.decode("cp1252", errors="worker-clean-cp1252")
    return data.decode(declared, errors="replace")


def _mostly_utf8(data: bytes) -> bool:
    """True when non-ASCII bytes in valid UTF-8 sequences are at least as many as the
    invalid ones: UTF-8 text with stray single-byte characters (mixed encodings)."""
    sample = data[: 4 * _SNIFF_BYTES]
    high = sum(1 for b in sample if b > 0x7F)
    if not high:
        return True
    valid_bytes = len(sample.decode("utf-8", errors="ignore").encode("utf-8"))
    invalid = len(sample) - valid_bytes
    return high - invalid >= invalid  # at least as many bytes in valid UTF-8 sequences


# --- what kind of text ----------------------------------------------------------------------

_HTML_START = re.compile(
    r"^\s*(?:<!--.*?-->\s*)*(?:<\?xml[^>]*>\s*)?(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAG = re.compile(
    r"</?(?:html|head|body|div|p|span|a|meta|title|script|style|br|article|section|table|tr|td"
    r"|ul|ol|li|h[1-6]|img|link|header|footer|nav|main|figure|em|strong|b|i)\b[^<>]{0,500}>",
    re.IGNORECASE,
)
_HTML_SUFFIXES = (".html", ".htm", ".xhtml", ".shtml", ".php", ".asp", ".aspx", ".jsp")


def sniff_kind(data_or_text: bytes | str, filename: str | None = None) -> Literal["html", "text"]:
    """``"html"`` when the content is markup, else ``"text"``.

    The content decides: a ``.txt`` that holds a saved web page is HTML. The file name
    only breaks ties (a few tags in a short snippet)."""
    if isinstance(data_or_text, (bytes, bytearray)):
        raw = bytes(data_or_text[:_SNIFF_BYTES])
        for bom, encoding in _BOMS:
            if raw.startswith(bom):
                sample = raw[len(bom) :].decode(encoding, errors="ignore")
                break
        else:
            utf16 = _utf16_without_bom(raw)
            sample = raw.decode(utf16 or "latin-1", errors="ignore")
    else:
        sample = data_or_text[:_SNIFF_BYTES]
    sample = sample.lstrip("\ufeff")
    if _HTML_START.match(sample):
        return "html"
    tags = len(_HTML_TAG.findall(sample))
    if tags >= 6:
        return "html"
    if tags >= 2 and filename and filename.lower().endswith(_HTML_SUFFIXES):
        return "html"
    return "text"


# --- shared guards -----------------------------------------------------------------------------


def _check_input(content: str, kind: str) -> None:
    if not isinstance(content, str):
        raise TypeError(f"{kind} wants str (use decode_bytes first), not {type(content).__name__}")
    head = content[:_SNIFF_BYTES]
    if head.lstrip().startswith("%PDF-"):
        raise BinaryContent("binary content: a PDF document decoded as text")
    if "\x00" in head:
        raise BinaryContent("binary content: NUL characters in the text")
    controls = sum(1 for c in head if ord(c) < 32 and c not in "\t\n\r\x0b\x0c\x1b")
    if head and controls / len(head) > _CONTROL_RATIO:
        raise BinaryContent(f"binary content: {controls} control characters in the text")
    if not content or content.isspace():
        raise EmptyContent("the input is empty")


_STRIP_BLOCKS = (
    ("<script", "</script>"),
    ("<style", "</style>"),
    ("<svg", "</svg>"),
    ("<!--", "-->"),
    ("<noscript", "</noscript>"),
)
_DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]{200,}")


def _strip_bulk(html: str) -> str:
    """Remove scripts, styles, inline SVG, comments and base64 data URIs (linear time)."""
    lower = html.lower()
    out: list[str] = []
    pos = 0
    n = len(html)
    while pos < n:
        nearest, which = n, None
        for start, end in _STRIP_BLOCKS:
            i = lower.find(start, pos)
            if i != -1 and i < nearest:
                nearest, which = i, end
        out.append(html[pos:nearest])
        if which is None:
            break
        j = lower.find(which, nearest)
        pos = n if j == -1 else j + len(which)
    return _DATA_URI.sub("data:,", "".join(out))


def _cap_html(html: str) -> str:
    if len(html) <= MAX_CHARS:
        return html
    if len(html) > HARD_MAX_CHARS:
        raise TooLarge(f"page is {len(html)} characters, over the {HARD_MAX_CHARS} limit")
    slim = _strip_bulk(html)
    if len(slim) > MAX_CHARS:
        raise TooLarge(
            f"page is {len(slim)} characters without scripts and styles, over {MAX_CHARS}"
        )
    log.debug("page shrunk from %d to %d characters before extraction", len(html), len(slim))
    return slim


# --- names --------------------------------------------------------------------------------------

_NAME_PARTICLES = {
    "de",
    "da",
    "das",
    "do",
    "dos",
    "del",
    "della",
    "di",
    "du",
    "des",
    "van",
    "von",
    "der",
    "den",
    "ter",
    "la",
    "le",
    "al",
    "el",
    "bin",
    "ibn",
    "y",
    "st.",
}
_NOT_AUTHORS = {
    "username",
    "user",
    "admin",
    "administrator",
    "editor",
    "staff",
    "guest",
    "anonymous",
    "login",
    "sign in",
    "log in",
    "subscribe",
    "menu",
    "home",
    "search",
    "share",
    "unknown",
    "none",
    "null",
    "by",
}
_ROLE_WORDS = re.compile(
    r"\b(?:correspondent|reporter|writer|editor|columnist|contributor|staff|bureau chief"
    r"|producer|photographer|analyst|journalist)s?\b",
    re.IGNORECASE,
)


def _fix_caps(name: str) -> str:
    """Title-case an ALL-CAPS name; leave mixed case alone (McDonald, DeSantis)."""
    letters = [c for c in name if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 3:
        words: list[str] = []
        for w in name.lower().split():
            words.append(w if w in _NAME_PARTICLES and words else _cap_word(w))
        return " ".join(words)
    return name


def _cap_word(w: str) -> str:
    # "o'brien" -> "O'Brien", "jean-luc" -> "Jean-Luc", "mcdonald" stays "Mcdonald"
    return re.sub(r"(^|[-'’])(\w)", lambda m: m.group(1) + m.group(2).upper(), w)


def _clean_author(name: str) -> str | None:
    name = re.sub(r"\s+", " ", name).strip(" ,;|:-–—\u00a0")
    name = re.sub(r"^(?:by|par|por|von|di|door)\s+", "", name, flags=re.IGNORECASE)
    if not name or len(name) > 80 or name.casefold() in _NOT_AUTHORS:
        return None
    if "@" in name or "://" in name or re.search(r"\d", name) or len(name.split()) > 6:
        return None
    return _fix_caps(name)


def _unique_authors(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: dict[str, int] = {}
    for raw in names:
        name = _clean_author(raw)
        if not name:
            continue
        key = re.sub(r"[^\w]", "", name.casefold())
        if key in seen:
            continue
        seen[key] = len(out)
        out.append(name)
    return out


# --- dates --------------------------------------------------------------------------------------


def _fixed(hours: float) -> timezone:
    return timezone(timedelta(hours=hours))


#: Zone abbreviations seen in datelines. Ambiguous ones take their English-press meaning
#: (CST = US Central; IST = India).
_TZ_ABBREVIATIONS: dict[str, tzinfo] = {
    "UTC": UTC,
    "GMT": UTC,
    "Z": UTC,
    "UT": UTC,
    "EST": _fixed(-5),
    "EDT": _fixed(-4),
    "CST": _fixed(-6),
    "CDT": _fixed(-5),
    "MST": _fixed(-7),
    "MDT": _fixed(-6),
    "PST": _fixed(-8),
    "PDT": _fixed(-7),
    "ET": ZoneInfo("America/New_York"),
    "PT": ZoneInfo("America/Los_Angeles"),
    "BST": _fixed(1),
    "CET": _fixed(1),
    "CEST": _fixed(2),
    "EET": _fixed(2),
    "EEST": _fixed(3),
    "MSK": _fixed(3),
    "IST": _fixed(5.5),
    "PKT": _fixed(5),
    "BJT": _fixed(8),
    "HKT": _fixed(8),
    "SGT": _fixed(8),
    "JST": _fixed(9),
    "KST": _fixed(9),
    "AEST": _fixed(10),
    "AEDT": _fixed(11),
    "NZST": _fixed(12),
    "NZDT": _fixed(13),
}
_YEAR = re.compile(r"(?<!\d)(19[89]\d|20\d\d)(?!\d)")
_TIME = re.compile(
    r"\b\d{1,2}[:h]\d{2}\b|(?<![\d.])\d{1,2}\.\d{2}(?![\d.])|\b\d{1,2}\s*[ap]\.?m\.?\b",
    re.IGNORECASE,
)
_MONTH = re.compile(
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?(?![a-z])", re.IGNORECASE
)
_NUMERIC_DATE = re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}\b")
_DAY = re.compile(r"(?<![\d:])(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?(?![\d:])")


@dataclass(frozen=True, slots=True)
class _Stamp:
    value: datetime  # naive when the source gave no offset
    has_time: bool


def _parse_stamp(text: str) -> _Stamp | None:
    """Parse one date or date-time string, keeping whether it named an offset."""
    s = text.strip()
    if not s or not _YEAR.search(s):
        return None
    compact = re.fullmatch(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})", s)
    if compact:
        try:
            y, mo, d, h, mi, sec = (int(x) for x in compact.groups())
            return _Stamp(datetime(y, mo, d, h, mi, sec), True)  # noqa: DTZ001
        except ValueError:
            return None
    try:
        iso = datetime.fromisoformat(s.replace("Z", "+00:00") if s.endswith("Z") else s)
        return _Stamp(iso, "T" in s or " " in s.strip())
    except ValueError:
        pass
    # a full date needs a day and a month: "2014" or "March 2021" is not a publication day
    if not (_NUMERIC_DATE.search(s) or (_MONTH.search(s) and _DAY.search(_YEAR.sub(" ", s)))):
        return None
    s = re.sub(r"\b(?:at|on|um|à|a las)\b", " ", s, flags=re.IGNORECASE)
    s = re.sub(r"\s+", " ", s.replace("|", " ").replace("·", " ")).strip(" ,")
    s = re.sub(r"\b([ap])\.m\.?", r"\1m", s, flags=re.IGNORECASE)
    s = re.sub(r"(\d)h(\d\d)\b", r"\1:\2", s)
    s = re.sub(r"(?<![\d.])(\d{1,2})\.(\d{2})(?![\d.])", r"\1:\2", s)  # "10.00 GMT"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            default = datetime(2000, 1, 1)  # noqa: DTZ001 - only fills missing fields
            value = dateutil.parser.parse(
                s,
                fuzzy=True,
                tzinfos=_TZ_ABBREVIATIONS,
                default=default,
                dayfirst=bool(re.search(r"\b\d{1,2}\.\d{1,2}\.\d{2,4}\b", s)),
            )
    except (ValueError, OverflowError, TypeError):
        return None
    if str(value.year) not in s:
        return None  # dateutil filled the year in: not a full date
    return _Stamp(value, bool(_TIME.search(s)))


def _as_aware(stamp: _Stamp, outlet: Outlet | None) -> tuple[datetime, TzSource]:
    value = stamp.value
    if value.tzinfo is not None and value.utcoffset() is not None:
        source: TzSource = "page"
    elif outlet is not None and outlet.tz:
        value, source = value.replace(tzinfo=ZoneInfo(outlet.tz)), "site"
    else:
        value, source = value.replace(tzinfo=UTC), "assumed-utc"
    if not stamp.has_time:
        value = value.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = value.utcoffset() or timedelta(0)
    fixed = UTC if not offset else timezone(offset)
    return value.replace(tzinfo=fixed), source


# --- language -----------------------------------------------------------------------------------

_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and of to is that for it was on with as by at from this be are have has "
        "had not but said his her they which an were will would been their who its",
        "fr": "le les des et est une du dans que qui pour pas sur au aux avec il elle sont ont "
        "été cette par mais plus ne ces leur nous vous selon",
        "es": "el los las del y que en un una por con para es se su al lo como más pero sus "
        "fue ha este esta según entre",
        "pt": "o os do da dos das e que em um uma para com não por no na ao mais foi é seu "
        "sua pelo pela ele ela também",
        "de": "der die das und ist nicht ein eine zu den von mit sich auf für im dem des auch "
        "es werden wurde hat sie nach bei aus",
        "it": "il gli di e che è un una per non con del della sono da al nel alla si ma come "
        "più anche dei delle",
        "nl": "de het een en van is dat niet op te zijn voor met die aan er ook als bij wordt "
        "maar om naar",
    }.items()
}
_SCRIPTS: tuple[tuple[str, str], ...] = (
    ("\u3040-\u30ff", "ja"),
    ("\uac00-\ud7af", "ko"),
    ("\u4e00-\u9fff", "zh"),
    ("\u0400-\u04ff", "ru"),
    ("\u0600-\u06ff", "ar"),
    ("\u0590-\u05ff", "he"),
    ("\u0370-\u03ff", "el"),
    ("\u0900-\u097f", "hi"),
    ("\u0e00-\u0e7f", "th"),
)


def _detect_language(text: str) -> str | None:
    """A cheap guess: dominant non-Latin script, else stopword counts. None when unsure."""
    sample = text[:20_000]
    letters = sum(1 for c in sample if c.isalpha())
    if not letters:
        return None
    for chars, lang in _SCRIPTS:
        count = len(re.findall(f"[{chars}]", sample))
        if count > 0.3 * letters or (lang == "ja" and count > 0.05 * letters):
            if lang == "ru" and len(re.findall("[іїєґІЇЄҐ]", sample)) > 0.005 * letters:
                return "uk"
            if lang == "ar" and len(re.findall("[پچژگ]", sample)) > 0.005 * letters:
                return "fa"
            return lang
    words = re.findall(r"[^\W\d_]+", sample.lower())
    if len(words) < 20:
        return None
    scores = sorted(
        (
            (sum(1 for w in words if w in stop) / len(words), lang)
            for lang, stop in _STOPWORDS.items()
        ),
        reverse=True,
    )
    (best, lang), (second, _) = scores[0], scores[1]
    if best >= 0.12 and best >= 1.3 * second:
        return lang
    return None


def _iso639_1(value: str | None) -> str | None:
    if not value:
        return None
    code = re.split(r"[-_,;\s]", value.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None


# --- HTML -----------------------------------------------------------------------------------------

_CONFIG = use_config()
_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # no signal-based timeout in pool workers

_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "blogposting",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "report",
    "webpage",
    "liveblogposting",
}
_PUBLISHED_META = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "datepublished",
    "publishdate",
    "publish-date",
    "publish_date",
    "pubdate",
    "date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "sailthru.date",
    "parsely-pub-date",
    "article.published",
    "ptime",
)
#: Metas that name the publication time explicitly; others must agree with htmldate.
_TRUSTED_META = {
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "datepublished",
}


def _jsonld_objects(tree: HtmlElement) -> Iterator[dict[str, Any]]:
    for script in tree.iterfind('.//script[@type="application/ld+json"]'):
        raw = (script.text or "").strip()
        raw = re.sub(r"^(?://\s*)?<!\[CDATA\[|(?://\s*)?\]\]>$", "", raw).strip()
        if not raw:
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        stack: list[Any] = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                yield item
                graph = item.get("@graph")
                if isinstance(graph, list):
                    stack.extend(graph)


def _ld_types(obj: dict[str, Any]) -> set[str]:
    t = obj.get("@type")
    types = t if isinstance(t, list) else [t]
    return {str(x).lower() for x in types if x}


def _ld_names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        name = value.get("name")
        return [name] if isinstance(name, str) else []
    if isinstance(value, list):
        return [n for v in value for n in _ld_names(v)]
    return []


@dataclass(slots=True)
class _PageFacts:
    stamps: list[_Stamp] = field(default_factory=list)  # explicit publication markup
    weak_stamps: list[_Stamp] = field(default_factory=list)  # generic "date"-like metas
    authors: list[str] = field(default_factory=list)
    canonical: str | None = None
    declared_language: str | None = None


def _page_facts(tree: HtmlElement, url: str | None) -> _PageFacts:
    facts = _PageFacts()
    article_ld = [o for o in _jsonld_objects(tree) if _ld_types(o) & _ARTICLE_TYPES]
    for obj in article_ld:
        value = obj.get("datePublished")
        stamp = _parse_stamp(value) if isinstance(value, str) else None
        if stamp:
            facts.stamps.append(stamp)
        facts.authors.extend(_ld_names(obj.get("author")))

    metas: dict[str, list[str]] = {}
    for meta in tree.iterfind(".//meta"):
        content = (meta.get("content") or "").strip()
        if not content:
            continue
        for attr in ("property", "name", "itemprop", "http-equiv"):
            key = (meta.get(attr) or "").strip().lower()
            if key:
                metas.setdefault(key, []).append(content)
    for key in _PUBLISHED_META:
        for content in metas.get(key, []):
            stamp = _parse_stamp(content)
            if stamp:
                (facts.stamps if key in _TRUSTED_META else facts.weak_stamps).append(stamp)
    for el in tree.xpath(
        './/time[@itemprop="datePublished" or @pubdate][@datetime]'
        ' | .//*[@itemprop="datePublished"][@datetime]'
    ):
        stamp = _parse_stamp(el.get("datetime", ""))
        if stamp:
            facts.stamps.append(stamp)

    # any other <time datetime> (first in the article) only refines the day htmldate found
    times = tree.xpath(".//article//time[@datetime]") or tree.xpath(".//time[@datetime]")
    for el in times[:3]:
        marks = f"{el.get('itemprop', '')} {el.get('class', '')}".lower()
        if not re.search(r"modif|updat", marks):
            stamp = _parse_stamp(el.get("datetime", ""))
            if stamp:
                facts.weak_stamps.append(stamp)

    facts.authors.extend(metas.get("author", []) + metas.get("article:author", []))
    for el in tree.xpath(
        './/*[@rel="author"] | .//*[@itemprop="author"]//*[@itemprop="name"]'
        ' | .//*[contains(concat(" ", normalize-space(@class), " "), " byline ")'
        ' or contains(@class, "-byline") or contains(@class, "byline-")]'
    )[:5]:
        text = " ".join(el.text_content().split())
        if 0 < len(text) <= 80:
            facts.authors.append(text)
    facts.authors = [a for a in facts.authors if not a.startswith(("http://", "https://"))]

    for href in tree.xpath('.//link[@rel="canonical"]/@href') + metas.get("og:url", []):
        href = str(href).strip()
        if href:
            absolute = urljoin(url, href) if url else href
            if absolute.startswith(("http://", "https://")):
                facts.canonical = absolute
                break

    root = tree.getroottree().getroot()
    facts.declared_language = (
        _iso639_1(root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"))
        or _iso639_1(next(iter(metas.get("content-language", [])), None))
        or _iso639_1(next(iter(metas.get("og:locale", [])), None))
    )
    return facts


def _pick_published(
    traf_date: str | None, facts: _PageFacts, outlet: Outlet | None
) -> tuple[datetime | None, TzSource | None]:
    """The page's explicit publication time; else a generic date meta that agrees with
    trafilatura's (htmldate's) day; else that day. Stamps with an offset are preferred."""
    anchor: date | None = None
    if traf_date:
        try:
            anchor = date.fromisoformat(traf_date[:10])
        except ValueError:
            anchor = None

    def agrees(s: _Stamp) -> bool:
        v = s.value
        days = {v.date()}
        if v.tzinfo is not None:
            days.add(v.astimezone(UTC).date())
        return anchor is None or anchor in days

    def best(stamps: list[_Stamp]) -> _Stamp | None:
        return (
            next((s for s in stamps if s.value.tzinfo is not None and s.has_time), None)
            or next((s for s in stamps if s.has_time), None)
            or next(iter(stamps), None)
        )

    chosen = best(facts.stamps) or best([s for s in facts.weak_stamps if agrees(s)])
    if chosen is None and anchor is not None:
        chosen = _Stamp(datetime.combine(anchor, time()), False)  # noqa: DTZ001
    if chosen is None:
        return None, None
    return _as_aware(chosen, outlet)


_LEAD_DATELINE = re.compile(
    r"^([A-Z][A-Z.'’\- ]{1,40}?(?:,\s*[A-Z][A-Za-z.\- ]{1,30})?)"  # PLACE[, Region]
    r"\s*(?:\((?:[A-Za-z ]+)\)\s*)?"  # (Reuters)
    r"[—–-]{1,2}\s"
)


def _lead_dateline(text: str) -> str | None:
    """``LONDON — After ...`` -> ``"London"``; None when the text opens otherwise."""
    m = _LEAD_DATELINE.match(text)
    if not m:
        return None
    place = m.group(1).strip(" ,")
    if not any(c.isalpha() for c in place) or len(place.split()) > 5:
        return None
    return _fix_caps(place) if place.split(",")[0].isupper() else None


def _paragraphs(text: str) -> str:
    lines = (re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def clean_html(html: str, url: str | None = None) -> CleanDoc:
    """Extract the article text and metadata from an HTML page.

    ``url`` is where the page came from (used to resolve a relative canonical URL and to
    look up the outlet's home time zone). Raises :class:`BinaryContent`,
    :class:`EmptyContent` (nothing article-like: under :data:`MIN_TEXT_CHARS` of text)
    and :class:`TooLarge`; all are :class:`CleanError` with ``retriable = False``.
    """
    _check_input(html, "clean_html")
    html = _cap_html(html)
    tree = load_html(html)
    if tree is None:  # a fragment without <html>: give it one
        tree = load_html(f"<html><body>{html}</body></html>")
    if tree is None:
        raise EmptyContent("not parseable as HTML")
    facts = _page_facts(tree, url)

    try:
        doc = bare_extraction(
            tree,
            url=url,
            with_metadata=True,
            output_format="python",
            favor_precision=True,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            deduplicate=False,
            author_blacklist=_NOT_AUTHORS,
            config=_CONFIG,
        )
    except RecursionError as exc:  # pathological nesting depth
        raise EmptyContent(f"extraction failed: {exc}") from exc
    if doc is None or isinstance(doc, dict):
        raise EmptyContent("no article text found")
    text = _paragraphs(doc.text or "")
    if len(text) < MIN_TEXT_CHARS:
        raise EmptyContent(f"only {len(text)} characters of text after cleaning")

    authors = _unique_authors((doc.author or "").split(";"))
    if not authors:
        authors = _unique_authors(a for raw in facts.authors for a in _split_names(raw))
    canonical = facts.canonical
    site_name = (doc.sitename or "").strip() or None
    outlet = _outlet_for(site_name, canonical or url or doc.url)
    if outlet and (site_name is None or _OUTLET_BY_NAME.get(_name_key(site_name)) is outlet):
        site_name = outlet.name  # one spelling per outlet: "NYTimes" -> "The New York Times"
    published_at, tz_source = _pick_published(doc.date, facts, outlet)
    language = _detect_language(text) or facts.declared_language or _iso639_1(doc.language)

    return CleanDoc(
        text=text,
        title=(" ".join((doc.title or "").split()) or None),
        authors=authors,
        published_at=published_at,
        site_name=site_name,
        language=language,
        url=canonical,
        published_tz_source=tz_source,
        dateline=_lead_dateline(text),
    )


def _split_names(raw: str) -> list[str]:
    raw = re.sub(r"^\s*(?:by|par|por|von)\s+", "", raw.strip(), flags=re.IGNORECASE)
    return [p for p in re.split(r"\s*(?:;|,|\band\b|&|\bund\b|\bet\b|\by\b)\s*", raw) if p]


# --- plain text ----------------------------------------------------------------------------------

_BYLINE_START = re.compile(
    r"^(?:by|written by|posted by|reporting by|words by|author:|por|par|von)\s+(?P<rest>\S.*)$",
    re.IGNORECASE,
)
_BY_ALONE = re.compile(r"^(?:by|written by|author|por|par|von)\s*:?$", re.IGNORECASE)
_DATE_LABELS = (
    r"first published|published|posted|last updated|updated|modified|date|publié|mis à jour"
    r"|publicado|actualizado|veröffentlicht|aktualisiert"
)
_DATE_LABEL = re.compile(
    rf"^(?P<label>{_DATE_LABELS})\b\s*(?:on|at)?\s*:?\s*(?P<value>.+)$", re.IGNORECASE
)
_DATE_LABEL_ANYWHERE = re.compile(
    rf"(?:^|\s|\|)({_DATE_LABELS})\b\s*(?:on|at)?\s*:?", re.IGNORECASE
)
_CAPTION = re.compile(
    r"^(?:file\s+)?photo\s*:|^(?:photo|image|picture|pictured|caption)\s*(?:credit)?\s*:"
    r"|\[(?:photo|image|video|picture)\b[^\]]*\]\s*$"
    r"|\((?:photo|image|picture)s?\s*(?::|by|credit|/)[^)]*\)\s*$"
    r"|^(?:photograph|illustration)\s*:",
    re.IGNORECASE,
)
_FOOTER = re.compile(
    r"^(?:©|\(c\)\s*\d{4}|copyright\s*(?:©|\(c\)|\d{4}))"
    r"|^(?=(?:\S+\s+){0,19}\S+$).*all rights reserved"  # short lines only, not a sentence about IP
    r"|^back to (?:the )?top\b"
    r"|^registration number\b"
    r"|^licen[cs]e (?:for|no\.?|number)\b"
    r"|^(?:subscribe|sign up)\b.{0,60}\b(?:newsletter|updates|email|alerts)\b"
    r"|^(?:terms of (?:use|service)|privacy policy|cookie (?:policy|settings)|contact us"
    r"|about us|site map|sitemap)\b",
    re.IGNORECASE,
)
# short lines that end the article when they come after it (at the top they are menus)
_TRAILER = re.compile(
    r"^(?:related(?: stories| articles| coverage| content| news)?|more (?:stories|from|on)\b.*"
    r"|read more|recommended(?: for you)?|most (?:read|popular|viewed)|you (?:may|might) also like"
    r"|trending(?: now)?|latest news|top stories|editor's picks|share this(?: article| story)?"
    r"|follow us\b.*|comments?|leave a comment|newsletter)\s*:?$",
    re.IGNORECASE,
)
_JUNK_LINE = re.compile(
    r"^(?:advertisement|advertising|story continues below(?: advertisement)?|ad|sponsored"
    r"|share|tweet|email|print|facebook|twitter|whatsapp|linkedin|\d+\s*min(?:ute)?s? read"
    r"|listen to (?:this )?article|skip to (?:main )?content|(?:share|send) (?:on|via|to) \w+"
    r"|print (?:this )?(?:article|page|story)|\d* ?comments?|reader comments)\s*$",
    re.IGNORECASE,
)
_NAV_SEP = re.compile(r"\s+(?:\||›|»|>|/|•|·)\s+")
_SENTENCE_END = re.compile(r"[.!?…:;\"”’')\]]$")
_OUTLET_WORDS = re.compile(
    r"\b(?:times|news|post|daily|journal|herald|tribune|press|agency|review|guardian|telegraph"
    r"|gazette|chronicle|observer|magazine|media|network|online|wire|reuters|xinhua|tass|"
    r"bloomberg|associated|express|mail|star|sun|standard|monitor|report|today|weekly|radio|tv"
    r"|television|broadcasting|service)\b|\.com\b",
    re.IGNORECASE,
)
_NAME_TOKEN = re.compile(r"^(?:[A-ZÀ-ÖØ-Þ][\w'’.\-]*|[A-Z]\.)$")


def _words(line: str) -> int:
    return len(line.split())


def _is_nav(line: str) -> bool:
    """``Home | Europe``, ``World › Asia``: short segments joined by separators."""
    parts = [p for p in _NAV_SEP.split(line) if p.strip()]
    return len(parts) >= 2 and all(_words(p) <= 4 for p in parts) and not _SENTENCE_END.search(line)


def _is_paragraph(line: str) -> bool:
    return _words(line) >= 20 or (len(line) >= 120 and bool(_SENTENCE_END.search(line)))


def _is_furniture(line: str) -> bool:
    """A short line that is not a sentence: a menu item, a label, a counter."""
    return _words(line) <= 6 and not re.search(r"[.!?…\"”]$", line)


def _stamps_in(line: str) -> list[tuple[str, _Stamp]]:
    """``(label, stamp)`` for each date in a short line.

    ``April 28, 2019 at 6:01 am Updated April 29, 2019 at 3:33 pm`` gives an unlabelled
    and an ``updated`` stamp; ``Published: 2021-03-03`` one ``published`` stamp."""
    line = line.strip(" -–—|·•")
    if not line or _words(line) > 16 or _is_paragraph(line):
        return []
    parts = _DATE_LABEL_ANYWHERE.split(line)
    pieces = [("", parts[0])] + [
        (parts[i].lower(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)
    ]
    out = []
    for label, value in pieces:
        value = value.strip(" -–—|·•,")
        if value and _words(value) <= 12:
            stamp = _parse_stamp(value)
            if stamp:
                out.append((label, stamp))
    return out


def _is_title_like(line: str) -> bool:
    return (
        2 <= len(line) <= 220
        and 1 <= _words(line) <= 30
        and not line.endswith(".")
        and not _is_nav(line)
        and not _FOOTER.search(line)
        and not _CAPTION.search(line)
        and not _DATE_LABEL.match(line)
        and not _JUNK_LINE.match(line)
        and not _BYLINE_START.match(line)
        and not _BY_ALONE.match(line)
        and not _stamps_in(line)
    )


def _is_outlet(segment: str) -> bool:
    s = segment.strip()
    if _OUTLET_BY_NAME.get(_name_key(s)):
        return True
    return 1 <= _words(s) <= 6 and bool(_OUTLET_WORDS.search(s)) and s[:1].isupper()


_NOT_NAME_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "may june july august september october november december mon tue wed thu fri sat sun "
    "jan feb mar apr jun jul aug sep sept oct nov dec today yesterday updated published "
    "posted home news world sign log menu search share comments the".split()
)


def _is_name(segment: str) -> bool:
    tokens = segment.split()
    if not 1 <= len(tokens) <= 5 or re.search(r"\d", segment):
        return False
    if any(t.strip(".,").lower() in _NOT_NAME_WORDS for t in tokens):
        return False
    if not _NAME_TOKEN.match(tokens[0]):
        return False
    return all(_NAME_TOKEN.match(t) or t.lower() in _NAME_PARTICLES for t in tokens)


@dataclass(slots=True)
class _Byline:
    authors: list[str] = field(default_factory=list)
    site: str | None = None
    place: str | None = None
    stamps: list[tuple[str, _Stamp]] = field(default_factory=list)  # (label, stamp)


def _parse_names(segment: str, out: _Byline) -> bool:
    """Names (and a dateline place: ``REN QI in Moscow``) from one byline segment."""
    segment = segment.strip()
    m = re.match(
        r"^(?P<names>.+?)\s+(?:in|from|reporting from)\s+(?P<place>[A-Z][\w .'’\-]+)$", segment
    )
    place = None
    if m:
        segment, place = m.group("names"), m.group("place").strip()
    parts = [p for p in re.split(r"\s*(?:,|\band\b|&)\s*", segment) if p]
    if not parts or not all(_is_name(p) for p in parts):
        return False
    out.authors.extend(parts)
    if place:
        out.place = _fix_caps(place)
    return True


def _parse_byline(line: str) -> _Byline | None:
    """A byline in one of the common one-line layouts, or None.

    ``By NAME[ in PLACE] | SITE | Updated: DATE``; ``By NAME, SITE``; ``By A and B``;
    ``NAME | SITE[ | DATE]`` (no "By": needs an outlet or a date to be trusted)."""
    if len(line) > 250:
        return None
    m = _BYLINE_START.match(line)
    rest = m.group("rest") if m else line
    segments = [s.strip() for s in re.split(r"\s+[|•·]\s+|\s+[—–]\s+", rest) if s.strip()]
    if not segments:
        return None
    result = _Byline()
    first, *others = segments
    # "By Jane Doe, The Example Times" / "By Jane Doe, Staff Writer" / "By Jane Doe, May 3, 2021"
    commas = [c.strip() for c in first.split(",") if c.strip()]
    date_at = next((i for i in range(1, len(commas)) if _stamps_in(", ".join(commas[i:]))), None)
    if date_at is not None:
        others.insert(0, ", ".join(commas[date_at:]))
        commas = commas[:date_at]
    while len(commas) > 1 and (_is_outlet(commas[-1]) or _ROLE_WORDS.search(commas[-1])):
        others.insert(0, commas.pop())
    if not _parse_names(", ".join(commas), result):
        return None
    for seg in others:
        stamps = _stamps_in(seg)
        if stamps:
            result.stamps.extend(stamps)
        elif _ROLE_WORDS.search(seg):
            continue
        elif result.site is None and _is_outlet(seg):
            result.site = _canonical_site(seg)
        elif result.site is None and m and _words(seg) <= 5:
            result.site = seg  # "By X | Some Site": the segment after names is the site
    if not m and not (result.site and _is_outlet(result.site)) and not result.stamps:
        return None  # "Home | Europe" and friends
    if not m and any(_words(a) < 2 for a in result.authors):
        return None  # without "By", one-word "names" are menu items
    return result


def _canonical_site(segment: str) -> str:
    outlet = _OUTLET_BY_NAME.get(_name_key(segment))
    return outlet.name if outlet and _name_key(outlet.name) == _name_key(segment) else segment


def _next_nonblank(lines: list[str], i: int, within: int = 2) -> int | None:
    for j in range(i + 1, min(len(lines), i + 1 + within + 1)):
        if lines[j]:
            return j
    return None


def _find_byline(lines: list[str], header_end: int) -> tuple[_Byline, int, int] | None:
    """The byline and the first and last line it spans.

    One line (see :func:`_parse_byline`); ``By`` alone followed by the names; or, after a
    headline, a line of only a name followed by a date line (``Dan Goodin`` /
    ``- Apr 16, 2015 8:02 pm UTC``)."""
    for i in range(header_end):
        line = lines[i]
        if not line or _is_paragraph(line):
            continue
        if _BY_ALONE.match(line):
            j = _next_nonblank(lines, i)
            byline = _parse_byline("By " + lines[j]) if j is not None else None
            if byline and j is not None:
                return byline, i, j
            continue
        byline = _parse_byline(line)
        if byline:
            return byline, i, i
    for i in range(header_end):
        line = lines[i]
        if not line or not 2 <= _words(line) <= 4 or not _is_name(line):
            continue
        j = _next_nonblank(lines, i)
        if j is None or not _stamps_in(lines[j]):
            continue
        above = [x for x in lines[max(0, i - 4) : i] if x]
        if any(_is_title_like(x) and _words(x) >= 4 for x in above):
            result = _Byline(stamps=_stamps_in(lines[j]))
            if _parse_names(line, result):
                return result, i, j
    return None


def _choose_stamp(labelled: list[tuple[str, _Stamp]]) -> _Stamp | None:
    """Published/posted before a bare date before updated/modified."""

    def rank(item: tuple[str, _Stamp]) -> int:
        label = item[0]
        if label.startswith(("publi", "posted", "first", "date", "veröff")):
            return 0
        if not label:
            return 1
        return 2

    ordered = sorted(enumerate(labelled), key=lambda x: (rank(x[1]), x[0]))
    return ordered[0][1][1] if ordered else None


def _split_lines(text: str) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    return [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]


def _join_body(lines: list[str]) -> list[str]:
    """Body lines -> paragraphs. Hard-wrapped text (blank-line separated blocks of short
    lines) has its blocks joined; otherwise every line is a paragraph."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    nonblank = [line for b in blocks for line in b]
    multi = sum(1 for b in blocks if len(b) > 1)
    wrapped = (
        multi >= max(1, len(blocks) // 3) and max((len(x) for x in nonblank), default=0) <= 100
    )
    if wrapped:
        return [" ".join(b) for b in blocks]
    return nonblank


def clean_text(text: str) -> CleanDoc:
    """Clean an article saved as plain text (navigation and footer still in it).

    Finds the byline (``By NAME in PLACE | SITE | Updated: ...``, ``By NAME, SITE``,
    ``NAME | SITE | DATE``, ``By`` / ``NAME`` on two lines, ``NAME`` / ``DATE``), the
    headline (the title-like line before it), the publication time (in the byline or on
    ``Published:``/``Updated:``/date lines around it), and keeps the body between the
    header and the footer (``Copyright``, ``All rights reserved``, ``BACK TO THE TOP``,
    newsletter prompts, "Related stories", short trailing lines), without navigation
    lines, photo captions or ad markers. Text that is really HTML goes to
    :func:`clean_html`.

    Raises :class:`BinaryContent`, :class:`EmptyContent`, :class:`TooLarge`.
    """
    _check_input(text, "clean_text")
    if sniff_kind(text) == "html":
        return clean_html(text)
    if len(text) > MAX_CHARS:
        raise TooLarge(f"text is {len(text)} characters, over the {MAX_CHARS} limit")
    lines = _split_lines(text)

    # the header region: up to the third paragraph-like line
    header_end, seen = min(len(lines), 600), 0
    for i, line in enumerate(lines[:header_end]):
        if _is_paragraph(line):
            seen += 1
            if seen == 3:
                header_end = i
                break

    found = _find_byline(lines, header_end)
    byline, byline_at, byline_end = found if found else (None, None, None)

    # the headline: the nearest title-like line before the byline, else the first one
    # followed by paragraphs
    title, title_at = None, None
    if byline_at is not None:
        near = [
            j
            for j in range(byline_at - 1, max(-1, byline_at - 8), -1)
            if lines[j] and _is_title_like(lines[j])
        ]
        # a headline has a few words; "Resize Text" or "Europe" is a menu item
        title_at = next((j for j in near if _words(lines[j]) >= 3), near[0] if near else None)
        title = lines[title_at] if title_at is not None else None
    else:
        for j in range(header_end):
            if lines[j] and _is_title_like(lines[j]) and _words(lines[j]) >= 3:
                if any(_is_paragraph(x) for x in lines[j + 1 : j + 6]):
                    title, title_at = lines[j], j
                    break

    # dates in and around the header, and the start of the body
    stamps = list(byline.stamps) if byline else []
    if title_at is not None:
        for j in range(title_at + 1, byline_at if byline_at is not None else title_at + 1):
            if lines[j]:
                stamps.extend(_stamps_in(lines[j]))  # "Title / March 3, 2021 / By ..."
    header_last = byline_end if byline_end is not None else title_at
    start = header_last + 1 if header_last is not None else 0
    while start < len(lines):
        line = lines[start]
        line_stamps = _stamps_in(line) if line else []
        if line_stamps:
            stamps.extend(line_stamps)
        elif line and _is_paragraph(line):
            break
        elif line and not (
            _is_furniture(line)
            or _JUNK_LINE.match(line)
            or _ROLE_WORDS.search(line)
            and _words(line) <= 8
        ):
            break
        start += 1  # blank, date, role ("Staff writer") and menu lines before the body

    # the footer: the first footer marker or end-of-article trailer after some body
    end, body_chars = len(lines), 0
    for k in range(start, len(lines)):
        line = lines[k]
        if not line:
            continue
        if body_chars >= MIN_TEXT_CHARS // 2 and (
            (_FOOTER.search(line) and _words(line) <= 60) or _TRAILER.match(line)
        ):
            end = k
            break
        if _is_paragraph(line):
            body_chars += len(line)
    body = [
        line
        for line in lines[start:end]
        if not line or not (_CAPTION.search(line) or _is_nav(line) or _JUNK_LINE.match(line))
    ]
    # short trailing lines ("Global Edition", a section name) are page furniture
    while body and (not body[-1] or _words(body[-1]) <= 5 and not _SENTENCE_END.search(body[-1])):
        body.pop()

    clean = "\n".join(_join_body(body))
    if len(clean) < MIN_TEXT_CHARS:
        raise EmptyContent(f"only {len(clean)} characters of text after cleaning")

    site = byline.site if byline else None
    outlet = _outlet_for(site)
    published_at, tz_source = None, None
    chosen = _choose_stamp(stamps)
    if chosen:
        published_at, tz_source = _as_aware(chosen, outlet)
    return CleanDoc(
        text=clean,
        title=title,
        authors=_unique_authors(byline.authors) if byline else [],
        published_at=published_at,
        site_name=site,
        language=_detect_language(clean),
        url=None,
        published_tz_source=tz_source,
        dateline=(byline.place if byline and byline.place else _lead_dateline(clean)),
    )


# --- convenience ---------------------------------------------------------------------------------


def clean(content: str, *, url: str | None = None, filename: str | None = None) -> CleanDoc:
    """Route by content: :func:`clean_html` for markup, :func:`clean_text` otherwise."""
    if sniff_kind(content, filename) == "html":
        return clean_html(content, url)
    return clean_text(content)


_WARM_UP_HTML = (
    "<html lang='en'><head><title>Warm up</title></head><body><article><h1>Warm up</h1>"
    + "".join(
        f"<p>Paragraph {i}: this page exists so that a fresh worker process loads the "
        "extractor, its tables and the date parser once, before the first real article.</p>"
        for i in range(4)
    )
    + "</article></body></html>"
)


def warm_up() -> bool:
    """Run one tiny extraction (imports, lazy tables); for a process pool's first task."""
    try:
        clean_html(_WARM_UP_HTML)
    except CleanError:
        return False
    return True
