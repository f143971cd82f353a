"""Model 1.8's out-of-fold output per corpus item, as ``eval --cv 5`` computes it: the rules'
tags, the final tags, the model's probabilities (``model_scores``) and the fold's choices
(thresholds, veto, headline and summary modes), to $PROBE_WORK/oof.json. Project venv.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.evaluate import read_records  # noqa: E402
from worker.tagging import Tagger  # noqa: E402
from worker.tagging.encoder import item_key  # noqa: E402
from worker.tagging.model import topic_sets  # noqa: E402
from worker.tagging.train import (  # noqa: E402
    as_model,
    cv_folds,
    default_extra,
    fold_neighbours,
    prepare,
    read_corpus,
)

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
WORK.mkdir(parents=True, exist_ok=True)
corpus = ROOT / "tests" / "data" / "corpus" / "corpus.jsonl"
tagger = Tagger.from_config_dir(ROOT / "configs")
labelled = [r for r in read_records(corpus) if r.topics is not None]
rows = [{**(r.raw or {}), "id": r.id, "title": r.title, "text": r.text} for r in labelled]
topics = list(tagger.topics)
examples = prepare(rows, tagger)
extra = prepare(list(read_corpus(default_extra(corpus))), tagger)
folds = cv_folds(examples, topics, k=5, extra=extra)
lists = fold_neighbours()
out = []
for fi, fold in enumerate(folds):
    model = as_model(
        fold.fitted,
        topics,
        fold.thresholds,
        tagger.taxonomy_version,
        fold.decides,
        fold.headlines,
        fold.model_thresholds,
        fold.summaries,
        fold.veto,
    )
    if lists is not None and model.neighbours is not None and fold.fitted.memory_ids:
        labels = topic_sets(fold.fitted.labels, len(topics))
        test = [examples[i] for i in fold.test]
        votes, listed = lists.votes(test, fold.fitted.memory_ids, labels)
        for j, i in enumerate(fold.test):
            if listed[j]:
                key = item_key(rows[i]["title"], rows[i]["text"])
                model.neighbours.votes[key] = votes[j]
    with_model = tagger.with_model(model)
    for i in fold.test:
        r = labelled[i]
        base = tagger.tag(r.title, r.text, r.published_at, use_model=False)
        both = with_model.tag(r.title, r.text, r.published_at)
        out.append(
            {
                "i": i,
                "id": r.id,
                "fold": fi,
                "shape": (r.raw or {}).get("shape"),
                "gold": list(r.topics or []),
                "rules": [t.id for t in base.topics],
                "final": [t.id for t in both.topics],
                "p": both.model_scores,
                "veto": fold.veto,
                "headlines": fold.headlines,
                "summaries": fold.summaries,
            }
        )
(WORK / "oof.json").write_text(json.dumps({"topics": topics, "items": out}))
print("items", len(out), file=sys.stderr)
