"""The public contract as documents: a JSON Schema per event and an AsyncAPI 3.0 file.

Generated from :mod:`worker.events` (``python -m worker schemas``); a unit test
fails when the committed files drift from the models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from worker import topics
from worker.events import EVENT_MODELS, SCHEMA_VERSION

ID_BASE = "https://diplomacy-ingest.invalid/schemas"


def json_schemas() -> dict[str, dict[str, Any]]:
    out = {}
    for name, model in EVENT_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{ID_BASE}/{name}.v{SCHEMA_VERSION}.json",
            **schema,
        }
        out[name] = schema
    return out


def asyncapi(topic_ids: list[str], labels: dict[str, str]) -> dict[str, Any]:
    def msg(name: str, summary: str) -> dict[str, Any]:
        return {
            "name": name,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"./schemas/{name}.json"},
        }

    key_doc = (
        "Kafka key: the stable article id (hash of the canonical URL, else of the "
        "text); all events of one article share it and stay in order."
    )
    channels: dict[str, Any] = {
        "articlesRaw": {
            "address": topics.RAW,
            "description": "Raw records from the sources (feeds, seed folder). Key: record id.",
            "messages": {"rawRecord": msg("raw-record", "One article as a source saw it")},
        },
        "articlesEnriched": {
            "address": topics.ENRICHED,
            "description": "Every accepted article, cleaned and tagged. " + key_doc,
            "messages": {"enrichedEvent": msg("enriched-event", "Full event")},
        },
        "articlesDlq": {
            "address": topics.DLQ,
            "description": "Records that failed, with the "
            "stage, error and the original record. Key: record id.",
            "messages": {"deadLetter": msg("dead-letter", "A failed record")},
        },
    }
    for tid in topic_ids:
        cname = "alerts" + "".join(w.capitalize() for w in tid.split("-"))
        channels[cname] = {
            "address": topics.alert_topic(tid),
            "description": f"Alerts for '{labels[tid]}'. " + key_doc,
            "messages": {"alertEvent": msg("alert-event", "Small alert event")},
        }
    operations = {
        f"publish{c[0].upper()}{c[1:]}": {"action": "send", "channel": {"$ref": f"#/channels/{c}"}}
        for c in channels
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Diplomacy news ingest worker",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": "Topics the worker publishes. Delivery is at-least-once; "
            "deduplicate on the key (article id) and `revision`.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }


def write_all(configs_dir: Path) -> list[Path]:
    from worker.bootstrap import load_tagging
    from worker.settings import Settings

    tagger, _ = load_tagging(Settings(configs_dir=configs_dir))
    out_dir = configs_dir / "schemas"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        path = out_dir / f"{name}.json"
        path.write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        written.append(path)
    ids = list(tagger.topics)
    labels = {t: tagger.topics[t].label for t in ids}
    path = configs_dir / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(asyncapi(ids, labels), sort_keys=False, width=100))
    written.append(path)
    return written
