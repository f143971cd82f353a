"""HTML pages: trafilatura, completed from the page's own markup."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml import etree
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.settings import use_config
from trafilatura.utils import load_html

from worker.clean.base import (
    HARD_MAX_CHARS,
    MAX_CHARS,
    MIN_TEXT_CHARS,
    CleanDoc,
    EmptyContent,
    TooLarge,
    TzSource,
    _check_input,
)
from worker.clean.bylines import _NOT_AUTHORS, _lead_dateline, _unique_authors
from worker.clean.dates import _as_aware, _parse_stamp, _Stamp
from worker.clean.language import _detect_language, _iso639_1
from worker.clean.outlets import _OUTLET_BY_NAME, Outlet, _name_key, _outlet_for

log = logging.getLogger(__name__)

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


# --- HTML -----------------------------------------------------------------------------------------

_CONFIG = use_config()
_CONFIG.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")  # no signal-based timeout in pool workers

#: How the worker calls ``trafilatura.bare_extraction`` (the benchmarks call it the same way,
#: so that "bare trafilatura" means the library doing the worker's extraction alone).
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "with_metadata": True,
    "output_format": "python",
    "favor_precision": True,
    "include_comments": False,
    "include_tables": True,
    "include_images": False,
    "include_links": False,
    "deduplicate": False,
    "author_blacklist": _NOT_AUTHORS,
    "config": _CONFIG,
}

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


def _jsonld_objects(scripts: list[HtmlElement]) -> Iterator[dict[str, Any]]:
    for script in scripts:
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
    site_names: list[str] = field(default_factory=list)  # og:site_name, application-name
    headline: str | None = None  # the page's first <h1>, in the article if there is one


#: The elements the page's facts come from, found in one walk of the tree (five XPath
#: walks cost ~1.5 % of an extraction): JSON-LD scripts, metas, canonical links, headlines,
#: and the elements that carry a ``datetime`` (HTML allows it on the last three; microdata
#: puts it on a meta now and then).
_FACT_TAGS = ("script", "meta", "link", "h1", "time", "ins", "del")


def _page_facts(tree: HtmlElement, url: str | None) -> _PageFacts:
    facts = _PageFacts()
    scripts: list[HtmlElement] = []
    meta_els: list[HtmlElement] = []
    canonical_links: list[str] = []
    h1s: list[HtmlElement] = []
    dated: list[HtmlElement] = []
    for el in tree.iter(_FACT_TAGS):
        tag = el.tag
        if tag == "meta":
            meta_els.append(el)
            if el.get("datetime") is not None:  # <meta itemprop=datePublished datetime=...>
                dated.append(el)
        elif tag == "script":
            if el.get("type") == "application/ld+json":
                scripts.append(el)
        elif tag == "link":
            if el.get("rel") == "canonical" and el.get("href") is not None:
                canonical_links.append(el.get("href"))
        elif tag == "h1":
            h1s.append(el)
        elif el.get("datetime") is not None:
            dated.append(el)

    article_ld = [o for o in _jsonld_objects(scripts) if _ld_types(o) & _ARTICLE_TYPES]
    for obj in article_ld:
        value = obj.get("datePublished")
        stamp = _parse_stamp(value) if isinstance(value, str) else None
        if stamp:
            facts.stamps.append(stamp)
        facts.authors.extend(_ld_names(obj.get("author")))

    metas: dict[str, list[str]] = {}
    for meta in meta_els:
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
    # one walk for every element with a datetime: explicit publication marks are trusted;
    # any other <time datetime> (the first three, in the article if there is one) only
    # refines the day htmldate found
    for el in dated:
        if el.get("itemprop") == "datePublished" or (
            el.tag == "time" and el.get("pubdate") is not None
        ):
            stamp = _parse_stamp(el.get("datetime", ""))
            if stamp:
                facts.stamps.append(stamp)
    times = [el for el in dated if el.tag == "time"]
    in_article = [el for el in times if next(el.iterancestors("article"), None) is not None]
    for el in (in_article or times)[:3]:
        marks = f"{el.get('itemprop', '')} {el.get('class', '')}".lower()
        if not re.search(r"modif|updat", marks):
            stamp = _parse_stamp(el.get("datetime", ""))
            if stamp:
                facts.weak_stamps.append(stamp)

    facts.authors.extend(metas.get("author", []) + metas.get("article:author", []))
    facts.authors = [a for a in facts.authors if not a.startswith(("http://", "https://"))]

    for href in canonical_links + metas.get("og:url", []):
        href = str(href).strip()
        if href:
            absolute = urljoin(url, href) if url else href
            if absolute.startswith(("http://", "https://")):
                facts.canonical = absolute
                break

    facts.site_names = metas.get("og:site_name", []) + metas.get("application-name", [])
    in_article_h1 = [el for el in h1s if next(el.iterancestors("article"), None) is not None]
    h1s = in_article_h1 or h1s
    if h1s:
        facts.headline = " ".join(" ".join(h1s[0].itertext()).split()) or None

    root = tree.getroottree().getroot()
    facts.declared_language = (
        _iso639_1(root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang"))
        or _iso639_1(next(iter(metas.get("content-language", [])), None))
        or _iso639_1(next(iter(metas.get("og:locale", [])), None))
    )
    return facts


_BYLINE_XPATH = etree.XPath(
    './/*[@rel="author" or contains(@class, "byline")'
    ' or (@itemprop="name" and ancestor::*[@itemprop="author"])]'
)
_BYLINE_CLASS = re.compile(r"(?:^|\s)byline(?:\s|$)|-byline|byline-")


def _markup_authors(tree: HtmlElement) -> list[str]:
    """Names in byline markup (``rel=author``, ``itemprop=author``, a ``byline`` class): a
    walk of the whole tree, so only when neither trafilatura nor the metadata found one. One
    compiled XPath with a plain ``contains``; the class is checked word-wise here (an XPath
    ``normalize-space(@class)`` on every element cost 2 % of an extraction)."""
    out = []
    for el in _BYLINE_XPATH(tree):
        cls = el.get("class")
        if cls is not None and el.get("rel") != "author" and el.get("itemprop") != "name":
            if not _BYLINE_CLASS.search(cls):
                continue
        text = " ".join(el.text_content().split())
        if 0 < len(text) <= 80 and not text.startswith(("http://", "https://")):
            out.append(text)
        if len(out) >= 5:
            break
    return out


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


_SPACES = re.compile(r"[ \t\u00a0]+")

_TITLE_SEPARATOR = re.compile(r"\s+[-|\u2013\u2014\u00b7\u00bb:]{1,2}\s+")
_KEY = re.compile(r"[^\w]+")


def _title_key(text: str) -> str:
    return _KEY.sub(" ", text.casefold()).strip()


def _is_site_name(segment: str, names: list[str]) -> bool:
    """A title segment that is the outlet's name: equal to a known name, or to it without
    a ".com"/".de" or a leading "www." ("CNET.de" for "CNET", "kath.ch")."""
    key = _title_key(segment)
    if not key:
        return False
    for name in names:
        n = _title_key(name)
        if not n:
            continue
        bare = re.sub(r"^www | (com|de|ch|org|net|co uk|co|uk|fr|it|es|in|za)$", "", n).strip()
        if key in (n, bare) or (bare and _title_key(re.sub(r"\.\w{2,3}$", "", segment)) == bare):
            return True
    return False


def pick_title(
    title: str | None, headline: str | None, names: list[str], url: str | None = None
) -> str | None:
    """The article's headline: ``title`` (trafilatura's, from og:title / <title>) without
    the outlet's name glued to either end ("... - Lesotho Times", "ADAC | ..."), and the
    page's own ``headline`` (its <h1>) where the title only dresses it up ("Infant Abandonment
    Cases In India: Newborns left in dustbins..." for the headline "Newborns left in
    dustbins...")."""
    title = " ".join((title or "").split()) or None
    if url:
        host = urlsplit(url).hostname or ""
        names = [*names, host.removeprefix("www.")]
    if title:
        parts = _TITLE_SEPARATOR.split(title)
        seps = _TITLE_SEPARATOR.findall(title)
        while len(parts) > 1 and _is_site_name(parts[-1], names):
            parts.pop()
            seps.pop()
        while len(parts) > 1 and _is_site_name(parts[0], names):
            parts.pop(0)
            seps.pop(0)
        rebuilt = parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
        title = rebuilt.strip() or title
    head = " ".join((headline or "").split())
    if head and title and 3 <= len(head.split()) <= 40 and not _is_site_name(head, names):
        h, t = _title_key(head), _title_key(title)
        if h != t and h and f" {h} " in f" {t} ":
            return head  # the title is the headline dressed up: the headline
    return title


def _paragraphs(text: str) -> str:
    """One paragraph a line, runs of spaces as one: one regex over the text, not one a line."""
    lines = (line.strip() for line in _SPACES.sub(" ", text).splitlines())
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
        doc = bare_extraction(tree, url=url, **TRAFILATURA_OPTIONS)
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
    if not authors:
        markup = _markup_authors(tree)
        authors = _unique_authors(a for raw in markup for a in _split_names(raw))
    canonical = facts.canonical
    site_name = (doc.sitename or "").strip() or None
    outlet = _outlet_for(site_name, canonical or url or doc.url)
    if outlet and (site_name is None or _OUTLET_BY_NAME.get(_name_key(site_name)) is outlet):
        site_name = outlet.name  # one spelling per outlet: "NYTimes" -> "The New York Times"
    published_at, tz_source = _pick_published(doc.date, facts, outlet)
    language = _detect_language(text) or facts.declared_language or _iso639_1(doc.language)

    return CleanDoc(
        text=text,
        title=pick_title(
            doc.title,
            facts.headline,
            [n for n in (doc.sitename, site_name, *facts.site_names) if n],
            canonical or url or doc.url,
        ),
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
