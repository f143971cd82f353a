"""Loading and validating ``configs/topics.yaml`` and ``configs/countries.yaml``.

Each file has a strict pydantic model (unknown keys are errors). :func:`load_topics` and
:func:`load_countries` turn any problem into a :class:`TaxonomyError` that names the file and
the place in it, so a bad deploy fails at start-up with a message a human can act on.

Term syntax (both files):

- ``{a,b,c}`` expands alternatives: ``negotiat{e,es,ed,ing,ion,ions}``; ``{,s}`` is optional.
- A leading ``*`` lets the term end a longer word (German compounds: ``*zölle`` matches
  "Autozölle"). Otherwise terms match whole words only.
- Matching ignores case and punctuation ("U.S." is "u s", "Russia's" holds "russia"), unless
  the rule or entry says ``case_sensitive`` ("WHO" is not "who").
"""

from __future__ import annotations

import itertools
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

TOPIC_ID_RE = re.compile(r"^[a-z][a-z0-9-]*$")
GROUP_RE = re.compile(r"^@[a-z][a-z0-9_-]*$")
BUILTIN_GROUPS = frozenset({"@state", "@country", "@leader"})
"""Context groups the tagger computes itself: ``@state`` a country named by name, adjective,
capital, seat of government or leader; ``@country`` any country mention, cities included;
``@leader`` a sitting leader or foreign minister from the gazetteer."""


class TaxonomyError(ValueError):
    """A taxonomy, gazetteer or alert-rules file is missing or invalid."""


# ---------------------------------------------------------------------------- term syntax

_BRACES = re.compile(r"\{([^{}]*)\}")


def expand_term(pattern: str) -> list[str]:
    """Expand ``{a,b}`` alternatives: ``sanction{s,ed}`` -> sanctions, sanctioned."""
    parts = _BRACES.split(pattern)
    # split() alternates literal, group, literal, ...
    choices: list[list[str]] = []
    for i, part in enumerate(parts):
        choices.append(part.split(",") if i % 2 else [part])
    out = ["".join(combo).strip() for combo in itertools.product(*choices)]
    return [t for t in dict.fromkeys(out) if t]


def _check_pattern(pattern: str) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("a term must be a non-empty string")
    if pattern.count("{") != pattern.count("}"):
        raise ValueError(f"unbalanced braces in term {pattern!r}")
    return pattern


# ---------------------------------------------------------------------------- topics.yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scoring(_Strict):
    title_weight: float = Field(2.0, gt=0, description="a title mention counts this many times")
    repeat_weight: float = Field(
        0.5, ge=0, le=1, description="each further mention of the same term counts this much"
    )
    max_repeats: int = Field(3, ge=0, description="further mentions counted per term")
    default_threshold: float = Field(0.5, gt=0, lt=1)
    max_evidence: int = Field(5, ge=1)
    same_sentence_weight: float = Field(
        0.25, ge=0, le=1, description="further matches in one sentence count this much"
    )


class Rule(_Strict):
    """A set of terms with one weight and one set of conditions.

    A match counts ``weight`` units of evidence; score = 1 - 0.5 ** units, so one unit
    gives 0.5 (the default threshold): a weight of 1.0 means "enough on its own".
    """

    terms: list[str] = Field(min_length=1)
    weight: float = Field(1.0, gt=0, le=3)
    case_sensitive: bool = False
    lowercase_only: bool = Field(
        False,
        description="in the body, match only in lower case: 'war', not 'the Iraq War' "
        "(capitalised, it names a past war or a title)",
    )
    lang: str = Field("en", pattern=r"^[a-z]{2}$", description="documentation: the language")
    requires: list[str] = Field(
        default_factory=list, description="the sentence must hold one of these @groups"
    )
    else_weight: float = Field(
        0.0, ge=0, le=3, description="weight when `requires` is not met (0: the match is dropped)"
    )
    excludes: list[str] = Field(
        default_factory=list, description="the match is dropped if the sentence holds one of these"
    )
    min_countries: int = Field(
        0, ge=0, le=5, description="distinct states (@state) the sentence must name"
    )
    followed_by_state: bool = Field(
        False,
        description="the match counts only when a state is named right after it (at most two "
        "words such as 'the', 'against' or 'to' between): 'threatens Oman', 'warned the UK', "
        "'threats against Oman'; not 'an assault that threatened to upset...'",
    )
    note: str | None = None

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        return [_check_pattern(t) for t in v]

    @field_validator("requires", "excludes")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        for g in v:
            if not GROUP_RE.match(g):
                raise ValueError(f"{g!r} is not a context group reference like '@sport'")
        return v


class Topic(_Strict):
    id: str
    label: str = Field(min_length=1)
    iptc: str | list[str]
    gdelt: list[str] = Field(default_factory=list, description="documentation only")
    description: str | None = None
    threshold: float | None = Field(None, gt=0, lt=1)
    rules: list[Rule] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not TOPIC_ID_RE.match(v):
            raise ValueError(f"topic id {v!r} must match {TOPIC_ID_RE.pattern}")
        return v

    @field_validator("iptc")
    @classmethod
    def _iptc(cls, v: str | list[str]) -> str | list[str]:
        codes = [v] if isinstance(v, str) else v
        if not codes:
            raise ValueError("iptc needs at least one code")
        for c in codes:
            if not re.match(r"^medtop:\d{8}$", c):
                raise ValueError(f"{c!r} is not an IPTC Media Topic code like 'medtop:20000641'")
        return v

    @property
    def iptc_code(self) -> str:
        """The one code an event carries: the first listed."""
        return self.iptc if isinstance(self.iptc, str) else self.iptc[0]


class Blocker(_Strict):
    """Phrases that cancel an overlapping match: another sense of a word ("trade union")."""

    terms: list[str] = Field(min_length=1)
    blocks: list[str] = Field(min_length=1, description="topic ids, or 'countries'")
    case_sensitive: bool = False
    note: str | None = None

    @field_validator("terms")
    @classmethod
    def _terms(cls, v: list[str]) -> list[str]:
        return [_check_pattern(t) for t in v]


class TopicsFile(_Strict):
    version: str = Field(min_length=1)
    scoring: Scoring = Field(default_factory=Scoring)  # type: ignore[arg-type]
    contexts: dict[str, list[str]] = Field(default_factory=dict)
    blockers: list[Blocker] = Field(default_factory=list)
    topics: list[Topic] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @field_validator("contexts")
    @classmethod
    def _contexts(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, terms in v.items():
            if not re.match(r"^[a-z][a-z0-9_-]*$", name):
                raise ValueError(f"context group name {name!r} must be lowercase, like 'sport'")
            if "@" + name in BUILTIN_GROUPS:
                raise ValueError(f"context group {name!r} is built in; choose another name")
            if not terms:
                raise ValueError(f"context group {name!r} has no terms")
            for t in terms:
                _check_pattern(t)
        return v

    @model_validator(mode="after")
    def _cross(self) -> TopicsFile:
        seen: set[str] = set()
        for t in self.topics:
            if t.id in seen:
                raise ValueError(f"duplicate topic id {t.id!r}")
            seen.add(t.id)
        known = BUILTIN_GROUPS | {"@" + n for n in self.contexts}
        for t in self.topics:
            for i, r in enumerate(t.rules):
                for g in [*r.requires, *r.excludes]:
                    if g not in known:
                        raise ValueError(
                            f"topic {t.id!r} rule {i + 1}: unknown context group {g!r} "
                            f"(define it under 'contexts:' or use one of {sorted(BUILTIN_GROUPS)})"
                        )
        for b in self.blockers:
            for target in b.blocks:
                if target != "countries" and target not in seen:
                    raise ValueError(
                        f"blocker {b.terms[0]!r}: unknown target {target!r} "
                        "(a topic id or 'countries')"
                    )
        return self


# ---------------------------------------------------------------------------- countries.yaml


class Leader(_Strict):
    name: str = Field(min_length=1, description="full name, e.g. Vladimir Putin")
    aliases: list[str] = Field(default_factory=list, description="e.g. Putin")
    role: str | None = None
    start: date | None = Field(None, description="in office from (inclusive)")
    end: date | None = Field(None, description="in office until (inclusive); none: still")

    @model_validator(mode="after")
    def _range(self) -> Leader:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"leader {self.name!r}: end {self.end} is before start {self.start}")
        return self


class Ambiguity(_Strict):
    """How an ambiguous name ("Jordan", "Georgia", "Chad") must be confirmed."""

    name_guard: bool = Field(
        True, description="reject when a capitalised word stands right before or after it"
    )
    confirm: list[Literal["document", "sentence"]] = Field(
        default_factory=lambda: ["document", "sentence"],  # type: ignore[arg-type]
        description="document: another unambiguous mention of the same state anywhere; "
        "sentence: another state named in the same sentence",
    )


class Country(_Strict):
    code: str = Field(pattern=r"^[A-Z]{2}$")
    name: str = Field(min_length=1)
    names: list[str] = Field(default_factory=list, description="other names, e.g. Britain")
    adjectives: list[str] = Field(
        default_factory=list, description="adjectives and demonyms; plurals in -s added"
    )
    capitals: list[str] = Field(default_factory=list)
    seats: list[str] = Field(default_factory=list, description="seats of government: the Kremlin")
    cities: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list, description="states, provinces, islands")
    foreign: list[str] = Field(
        default_factory=list, description="names in fr/es/pt/de (proper nouns)"
    )
    foreign_adjectives: list[str] = Field(
        default_factory=list, description="lower-case adjectives in fr/es/pt/de"
    )
    leaders: list[Leader] = Field(default_factory=list)
    exact_case: list[str] = Field(
        default_factory=list, description="terms that must match case exactly: US, UK"
    )
    ambiguous: dict[str, Ambiguity] = Field(default_factory=dict)
    note: str | None = None

    @model_validator(mode="after")
    def _ambiguous_known(self) -> Country:
        terms = set(self.all_terms())
        for a in [*self.ambiguous, *self.exact_case]:
            if a not in terms:
                raise ValueError(
                    f"country {self.code}: {a!r} is listed as ambiguous/exact_case "
                    "but is not one of its terms"
                )
        return self

    def all_terms(self) -> list[str]:
        out = [self.name, *self.names, *self.adjectives, *self.capitals, *self.seats]
        out += [*self.cities, *self.regions, *self.foreign, *self.foreign_adjectives]
        for ld in self.leaders:
            out += [ld.name, *ld.aliases]
        return out


class CountryExclusion(_Strict):
    terms: list[str] = Field(min_length=1)
    note: str | None = None


class CountriesFile(_Strict):
    version: str = Field(min_length=1)
    exclusions: list[CountryExclusion] = Field(
        default_factory=list,
        description="phrases that are never a mention of a state (Indian Ocean, Paris Hilton)",
    )
    countries: list[Country] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _unique(self) -> CountriesFile:
        seen: set[str] = set()
        for c in self.countries:
            if c.code in seen:
                raise ValueError(f"duplicate country code {c.code!r}")
            seen.add(c.code)
        return self


# ---------------------------------------------------------------------------- loading


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 10x faster


def _read_yaml(path: Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaxonomyError(f"{path}: file not found") from None
    except OSError as exc:
        raise TaxonomyError(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TaxonomyError(f"{path}: expected a mapping at the top level")
    return data


def _format_errors(path: Path, data: Any, exc: ValidationError) -> str:
    lines = [f"{path}: invalid ({exc.error_count()} error(s))"]
    for err in exc.errors():
        loc = _describe_loc(data, err["loc"])
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  - {loc}: {msg}")
    return "\n".join(lines)


def _describe_loc(data: Any, loc: tuple[Any, ...]) -> str:
    """``topics[3] (id 'trade').rules[0].weight`` rather than ``topics.3.rules.0.weight``."""
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            try:
                node = node[part]
                if isinstance(node, dict):
                    ident = node.get("id") or node.get("code")
                    if ident:
                        label += f" ({ident})"
            except (IndexError, KeyError, TypeError):
                node = None
            out.append(label)
        else:
            out.append(("." if out else "") + str(part))
            try:
                node = node[part] if isinstance(node, dict) else None
            except (KeyError, TypeError):
                node = None
    return "".join(out) or "(top level)"


def load_topics(path: Path) -> TopicsFile:
    data = _read_yaml(path)
    try:
        return TopicsFile.model_validate(data)
    except ValidationError as exc:
        raise TaxonomyError(_format_errors(path, data, exc)) from None


def load_countries(path: Path) -> CountriesFile:
    data = _read_yaml(path)
    try:
        return CountriesFile.model_validate(data)
    except ValidationError as exc:
        raise TaxonomyError(_format_errors(path, data, exc)) from None
