"""Taxonomy loading and matching with evidence. (CONTRACT STUB: to be implemented)

Contract used by the pipeline:

    tagger = Tagger.from_files(topics_yaml, countries_yaml)
    tagger.taxonomy_version  -> str   (from topics.yaml "version")
    result = tagger.tag(title, text)  -> TagResult(topics=[worker.events.TopicTag], countries=[str])

    rules = AlertRules.from_file(alerts_yaml, tagger)
    rules.alerting(result) -> list[TopicTag]   # the topics that pass their alert rule
"""
