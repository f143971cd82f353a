"""Dates and times as pages print them, and the time zone each is read in."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import dateutil.parser

from worker.clean.base import TzSource
from worker.clean.outlets import Outlet

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
