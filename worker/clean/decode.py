"""Bytes to text, and sniffing: binary or text, HTML or plain text."""

from __future__ import annotations

import codecs
import logging
import re
from typing import Literal

import charset_normalizer

from worker.clean.base import _CONTROL_RATIO, _SNIFF_BYTES, HARD_MAX_CHARS, BinaryContent, TooLarge

log = logging.getLogger(__name__)

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
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
# WHATWG: these labels mean windows-1252 on the web
_HIGH_BYTES = bytes(range(0x80, 0x100))
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
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
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))  # one pass, in C
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
        if _HIGH_BYTE.search(data, 0, _SNIFF_BYTES):
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
    high = len(sample) - len(sample.translate(None, _HIGH_BYTES))
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
