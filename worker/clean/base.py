"""Limits, errors, the result type and the guard every entry point runs first."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

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


_CONTROL_RATIO = 0.02
_SNIFF_BYTES = 64 * 1024
#: C0 controls that never occur in text (TAB LF VT FF CR ESC do). Counted with one regex scan
#: in C: ``str.translate`` with a table, tried before, cost ~2 ms on a 64 KB head (5 % of an
#: extraction), the regex a few hundredths of that when, as in text, there are none.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f]")
#: Characters of a str whose control characters are counted: binary data decoded as text is
#: binary from its first bytes (a 16 KB head costs a quarter of the 64 KB one, ~0.6 % of an
#: extraction; NULs are still looked for in the whole 64 KB head, in a fraction of that).
_CONTROL_SNIFF = 16 * 1024

# --- shared guards -----------------------------------------------------------------------------


def _check_input(content: str, kind: str) -> None:
    if not isinstance(content, str):
        raise TypeError(f"{kind} wants str (use decode_bytes first), not {type(content).__name__}")
    head = content[:_SNIFF_BYTES]
    if head.lstrip().startswith("%PDF-"):
        raise BinaryContent("binary content: a PDF document decoded as text")
    if "\x00" in head:
        raise BinaryContent("binary content: NUL characters in the text")
    sample = head[:_CONTROL_SNIFF]
    controls = len(_CONTROLS.findall(sample))
    if sample and controls / len(sample) > _CONTROL_RATIO:
        raise BinaryContent(f"binary content: {controls} control characters in the text")
    if not content or content.isspace():
        raise EmptyContent("the input is empty")
