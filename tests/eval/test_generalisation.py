"""How the tagger does on news it was not trained or tuned on: grouped cross-validation on
the labelled corpus (each fold tagged by the service's own tagger with a model trained, and
thresholded, on the other folds only; a story's items stay in one fold).

Every training fold also gets the one-annotator items of ``silver.jsonl`` (less those of the
test fold's stories), as ``train`` does; they are never scored.

Model 1.8 (neighbours by an encoder fine-tuned on the corpus; each test fold's neighbours
from its own fold's encoder, which never saw the fold: ``FoldNeighbours``): 0.841, headlines
0.829, headline + summary 0.819, paragraphs 0.848, every topic >= 0.721
(diplomatic-relations), the arms-control alert 74 pages at precision 0.865, 64 right.
Floors sit a little under that. Before (model 1.7, corpus of 4,809 items plus
22,933 silver items: `python -m worker eval --cv 5 tests/data/corpus/corpus.jsonl`): topics
micro-F1 0.823 (the rules alone: 0.524; model 1.0 without the silver items: 0.763; model 1.6,
neighbours by mean GloVe vector: 0.814), headlines 0.806, headline + summary 0.779,
paragraphs 0.834, every topic >= 0.667, the arms-control alert 75 pages at precision 0.853, 64
of them right (the rules alone: 63 at 0.857, 54 right; model 1.6: 75 at 0.867, 65 right).
Issue 8 asks for 0.85 (not reached) and every topic >= 0.70 (reached with 1.8; see the
README, "What the model cannot do"); raise the floors as the tagger improves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from worker.evaluate import cross_validate_records, read_records
from worker.tagging import Tagger
from worker.tagging.train import default_extra, read_corpus

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "corpus" / "corpus.jsonl"

MICRO_F1 = 0.835
HEADLINE_F1 = 0.82  # issue 8's bar for headlines alone: 0.80
SUMMARY_F1 = 0.81
PARAGRAPH_F1 = 0.84
TOPIC_F1 = 0.71  # issue 8's bar: 0.70
MODEL_GAIN = 0.22  # rules + model over the rules alone, micro-F1
ARMS_ALERT_PRECISION = 0.85  # model 1.8: 0.865 (1.7: 0.853, 1.6: 0.867); rules 0.857


@pytest.fixture(scope="module")
def cv() -> dict[str, Any]:
    tagger = Tagger.from_config_dir(ROOT / "configs")
    extra_path = default_extra(CORPUS)
    assert extra_path is not None, "silver.jsonl beside the corpus is part of the training"
    extra = read_corpus(extra_path)
    return cross_validate_records(read_records(CORPUS), tagger, k=5, extra=extra)[1]


def test_cross_validated_floors(cv: dict[str, Any]) -> None:
    both = cv["combined"]
    assert both["labelled"] >= 3000
    assert both["topics"]["micro"]["f1"] >= MICRO_F1
    weak = {
        t: round(m["f1"], 3) for t, m in both["topics"]["per_label"].items() if m["f1"] < TOPIC_F1
    }
    assert not weak, weak


def test_cross_validated_floors_by_shape(cv: dict[str, Any]) -> None:
    shapes = cv["combined"]["shapes"]
    assert shapes["headline"]["topics"]["micro"]["f1"] >= HEADLINE_F1
    assert shapes["headline+summary"]["topics"]["micro"]["f1"] >= SUMMARY_F1
    assert shapes["paragraph"]["topics"]["micro"]["f1"] >= PARAGRAPH_F1


def test_the_model_adds_what_the_rules_miss(cv: dict[str, Any]) -> None:
    rules = cv["rules"]["topics"]["micro"]
    both = cv["combined"]["topics"]["micro"]
    assert both["f1"] >= rules["f1"] + MODEL_GAIN
    assert both["recall"] >= rules["recall"] + 0.25


def test_the_arms_control_alert_is_not_noisier(cv: dict[str, Any]) -> None:
    """Recall rose; the arms-control desk must not be paged more often for nothing, nor miss
    a page the rules alone would have sent it (counted: right pages, not pages)."""
    rules = cv["alerts"]["rules"]["arms-control"]
    both = cv["alerts"]["combined"]["arms-control"]
    assert both["correct"] >= rules["correct"]
    assert both["precision"] >= ARMS_ALERT_PRECISION
    assert both["precision"] >= rules["precision"] - 0.02
