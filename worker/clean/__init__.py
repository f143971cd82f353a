"""HTML or text in, clean text and metadata out. No I/O.

One concern per module: :mod:`~worker.clean.decode` (bytes to text, sniffing),
:mod:`~worker.clean.html` (pages, with trafilatura), :mod:`~worker.clean.text` (articles saved
as plain text), :mod:`~worker.clean.dates` and :mod:`~worker.clean.bylines` (times, names,
datelines), :mod:`~worker.clean.outlets`, :mod:`~worker.clean.language`; the errors and the
result live in :mod:`~worker.clean.base`. Everything public is imported here.

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

from worker.clean.base import (
    HARD_MAX_CHARS,
    MAX_CHARS,
    MIN_TEXT_CHARS,
    BinaryContent,
    CleanDoc,
    CleanError,
    EmptyContent,
    TooLarge,
    TzSource,
)
from worker.clean.decode import decode_bytes, sniff_kind
from worker.clean.html import clean_html
from worker.clean.outlets import OUTLETS, Outlet, _name_key
from worker.clean.text import clean_text

__all__ = [
    "HARD_MAX_CHARS",
    "MAX_CHARS",
    "MIN_TEXT_CHARS",
    "OUTLETS",
    "BinaryContent",
    "CleanDoc",
    "CleanError",
    "EmptyContent",
    "Outlet",
    "TooLarge",
    "TzSource",
    "_name_key",
    "clean",
    "clean_html",
    "clean_text",
    "decode_bytes",
    "sniff_kind",
    "warm_up",
]

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
