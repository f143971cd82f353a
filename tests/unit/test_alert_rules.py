"""Alert rules: which tagged topics go to alerts.<topic-id>."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.events import Evidence, TopicTag
from worker.tagging import AlertRules, Tagger, TagResult, TaxonomyError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.from_config_dir(CONFIGS)


def tag(topic: str, score: float, term: str = "arms control") -> TopicTag:
    ev = Evidence(term=term, field="text", start=0, end=len(term), sentence=term + ".")
    return TopicTag(id=topic, label=topic, score=score, iptc="medtop:20000641", evidence=[ev])


def result(countries: list[str], *tags: TopicTag) -> TagResult:
    return TagResult(topics=list(tags), countries=countries)


def test_shipped_rules_load_and_scope_arms_control(tagger: Tagger) -> None:
    rules = AlertRules.from_file(CONFIGS / "alerts.yaml", tagger)
    assert set(rules.rules) == set(tagger.topics)
    arms = tag("arms-control", 0.9)
    trade = tag("trade", 0.9, "tariffs")
    assert rules.alerting(result(["FR", "DE"], arms, trade)) == [trade]
    for big in ("RU", "US", "CN"):
        assert rules.alerting(result(["FR", big], arms)) == [arms]


def test_every_topic_alerts_at_its_threshold_by_default(tagger: Tagger) -> None:
    rules = AlertRules.default(tagger)
    threshold = tagger.topics["pandemic"].threshold
    assert rules.alerting(result([], tag("pandemic", threshold))) != []
    assert rules.alerting(result([], tag("pandemic", threshold - 0.01))) == []


def test_end_to_end_with_the_tagger(tagger: Tagger) -> None:
    rules = AlertRules.from_file(CONFIGS / "alerts.yaml", tagger)
    text = (
        "Russia and the United States agreed to extend New START, their last arms control "
        "treaty, during talks in Geneva."
    )
    alerting = {t.id for t in rules.alerting(tagger.tag("Arms control talks", text))}
    assert "arms-control" in alerting
    other = "France and Germany called for arms control talks on conventional weapons in Europe."
    assert "arms-control" in {t.id for t in tagger.tag("Arms control", other).topics}
    assert "arms-control" not in {t.id for t in rules.alerting(tagger.tag("Arms control", other))}


def test_min_score_alert_off_and_required_terms(tagger: Tagger, tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "topics:\n"
        "  trade: {min_score: 0.8}\n"
        "  pandemic: {alert: false}\n"
        "  arms-control: {require_terms_any: [New START]}\n",
        encoding="utf-8",
    )
    rules = AlertRules.from_file(path, tagger)
    assert rules.alerting(result([], tag("trade", 0.7, "tariffs"))) == []
    assert rules.alerting(result([], tag("trade", 0.85, "tariffs"))) != []
    assert rules.alerting(result([], tag("pandemic", 0.99, "COVID-19"))) == []
    assert rules.alerting(result([], tag("arms-control", 0.9, "arms race"))) == []
    assert rules.alerting(result([], tag("arms-control", 0.9, "new start"))) != []
    # topics not listed keep the default: alert at their threshold
    assert rules.alerting(result([], tag("sanctions", 0.6, "sanctions"))) != []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("topics:\n  arms-contol: {alert: true}\n", "unknown topic id(s) ['arms-contol']"),
        ("topics:\n  trade: {alert: true, colour: red}\n", "unknown key"),
        ("topics:\n  trade: {require_countries_any: [Russia]}\n", "alpha-2"),
        ("topics:\n  trade: {min_score: 2}\n", "min_score"),
        ("topics: [trade]\n", "topics"),
        ("- just a list\n", "mapping"),
    ],
)
def test_invalid_alert_rules(tagger: Tagger, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaxonomyError) as exc:
        AlertRules.from_file(path, tagger)
    assert message in str(exc.value)


def test_missing_file(tagger: Tagger, tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="file not found"):
        AlertRules.from_file(tmp_path / "nope.yaml", tagger)
