"""Articles saved as plain text: layout rules for header, byline, body and footer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from worker.clean.base import (
    MAX_CHARS,
    MIN_TEXT_CHARS,
    CleanDoc,
    EmptyContent,
    TooLarge,
    _check_input,
)
from worker.clean.bylines import (
    _NAME_PARTICLES,
    _ROLE_WORDS,
    _fix_caps,
    _lead_dateline,
    _unique_authors,
)
from worker.clean.dates import _as_aware, _parse_stamp, _Stamp
from worker.clean.decode import sniff_kind
from worker.clean.html import clean_html
from worker.clean.language import _detect_language
from worker.clean.outlets import _OUTLET_BY_NAME, _name_key, _outlet_for

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
