"""Alert rules: which tagged topics are worth an event on ``alerts.<topic-id>``.

``configs/alerts.yaml``::

    version: "1"
    defaults: {alert: true}          # optional; every taxonomy topic not listed uses these
    topics:
      arms-control:
        alert: true
        min_score: 0.5               # default: the topic's tagging threshold
        require_countries_any: [RU, US, CN]
        require_terms_any: ["New START", "nuclear"]   # case-insensitive, in the evidence terms
        per_story: true              # one alert per story, then updates (default: false)

Every topic of the taxonomy alerts at its threshold unless the file says otherwise. An
unknown topic id, country code or key is an error at load time.

``per_story``: the first article of a story that passes the rule alerts (``kind: first``);
a later article of the same story alerts only as an ``update`` when it adds a country, a
topic or a higher score, at most one per ``WORKER_STORY_UPDATE_MIN_S`` (see
:mod:`worker.stories`). Without it every article that passes alerts (``kind: article``).
A republished copy (``duplicate_of``) never alerts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from worker.events import TopicTag
from worker.tagging.config import TaxonomyError
from worker.tagging.tagger import Tagger, TagResult


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alert: bool = True
    min_score: float | None = Field(None, ge=0.0, le=1.0)
    require_countries_any: list[str] = Field(default_factory=list)
    require_terms_any: list[str] = Field(default_factory=list)
    per_story: bool | None = None
    note: str | None = None

    @field_validator("require_countries_any")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        for c in v:
            if not isinstance(c, str) or not re.match(r"^[A-Z]{2}$", c):
                raise ValueError(f"{c!r} is not an ISO 3166-1 alpha-2 code like 'RU'")
        return v


class _DefaultsModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alert: bool = True
    min_score: float | None = Field(None, ge=0.0, le=1.0)
    per_story: bool = False


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "1"
    defaults: _DefaultsModel = Field(default_factory=_DefaultsModel)  # type: ignore[arg-type]
    topics: dict[str, _RuleModel] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int | float) else v


@dataclass(frozen=True, slots=True)
class AlertRule:
    topic: str
    alert: bool
    min_score: float
    require_countries_any: frozenset[str]
    require_terms_any: tuple[str, ...]  # lower-cased
    per_story: bool = False

    def passes(self, tag: TopicTag, countries: list[str]) -> bool:
        if not self.alert or tag.score + 1e-9 < self.min_score:
            return False
        if self.require_countries_any and not self.require_countries_any.intersection(countries):
            return False
        if self.require_terms_any:
            terms = " | ".join(e.term.lower() for e in tag.evidence)
            if not any(t in terms for t in self.require_terms_any):
                return False
        return True


class AlertRules:
    """The alert rule of every taxonomy topic."""

    def __init__(self, rules: dict[str, AlertRule], version: str = "1") -> None:
        self.rules = rules
        self.version = version

    @classmethod
    def default(cls, tagger: Tagger) -> AlertRules:
        """Every topic alerts at its tagging threshold."""
        return cls(
            {
                tid: AlertRule(tid, True, info.threshold, frozenset(), ())
                for tid, info in tagger.topics.items()
            }
        )

    @classmethod
    def from_file(cls, path: Path, tagger: Tagger) -> AlertRules:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TaxonomyError(f"{path}: file not found") from None
        except yaml.YAMLError as exc:
            raise TaxonomyError(f"{path}: not valid YAML: {exc}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise TaxonomyError(f"{path}: expected a mapping at the top level")
        try:
            model = _FileModel.model_validate(data)
        except ValidationError as exc:
            msgs = [
                f"  - {'.'.join(str(p) for p in e['loc'])}: "
                + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
                for e in exc.errors()
            ]
            raise TaxonomyError(f"{path}: invalid\n" + "\n".join(msgs)) from None
        unknown = sorted(set(model.topics) - set(tagger.topics))
        if unknown:
            raise TaxonomyError(
                f"{path}: unknown topic id(s) {unknown}; the taxonomy "
                f"(version {tagger.taxonomy_version}) has {sorted(tagger.topics)}"
            )
        rules: dict[str, AlertRule] = {}
        for tid, info in tagger.topics.items():
            r = model.topics.get(tid)
            if r is None:
                rules[tid] = AlertRule(
                    tid,
                    model.defaults.alert,
                    model.defaults.min_score
                    if model.defaults.min_score is not None
                    else info.threshold,
                    frozenset(),
                    (),
                    model.defaults.per_story,
                )
            else:
                rules[tid] = AlertRule(
                    tid,
                    r.alert,
                    r.min_score if r.min_score is not None else info.threshold,
                    frozenset(r.require_countries_any),
                    tuple(t.lower() for t in r.require_terms_any),
                    r.per_story if r.per_story is not None else model.defaults.per_story,
                )
        return cls(rules, model.version)

    def per_story(self, topic: str) -> bool:
        """Whether ``topic`` alerts once per story (then updates) instead of per article."""
        rule = self.rules.get(topic)
        return rule is not None and rule.per_story

    def alerting(self, result: TagResult) -> list[TopicTag]:
        """The topics of ``result`` that pass their alert rule, in the result's order."""
        out = []
        for tag in result.topics:
            rule = self.rules.get(tag.id)
            if rule is not None and rule.passes(tag, result.countries):
                out.append(tag)
        return out
