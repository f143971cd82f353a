"""Taxonomy loading and matching with evidence.

Contract used by the pipeline:

    tagger = Tagger.from_files(topics_yaml, countries_yaml)   # or Tagger.from_config_dir(dir)
    tagger.taxonomy_version  -> str   (from topics.yaml "version")
    tagger.topics            -> dict[id, TopicInfo(id, label, iptc, threshold)]
    result = tagger.tag(title, text, published_at=None)
        -> TagResult(topics=[worker.events.TopicTag], countries=[str], scores={id: float})

    rules = AlertRules.from_file(alerts_yaml, tagger)
    rules.alerting(result) -> list[TopicTag]   # the topics that pass their alert rule

Build the tagger once per process (it compiles one automaton); ``tag`` is pure and
thread-safe.
"""

from worker.tagging.alerts import AlertRule, AlertRules
from worker.tagging.config import TaxonomyError
from worker.tagging.tagger import Tagger, TagResult, TopicInfo

__all__ = ["AlertRule", "AlertRules", "TagResult", "Tagger", "TaxonomyError", "TopicInfo"]
