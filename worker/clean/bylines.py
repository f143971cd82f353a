"""Names in bylines and author fields, and the place of a dateline."""

from __future__ import annotations

import re
from collections.abc import Iterable

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
