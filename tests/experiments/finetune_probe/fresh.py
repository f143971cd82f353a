"""A second check on items no encoder, model or probe was built with: the fresh sets
(tests/data/fresh/). The final probe (fitted on every corpus and silver item's embedding by
the shipped encoder, $PROBE_WORK/emb-final.npy: ``embed.py final``, or finetune's
``final/embeddings.npy``) mixed into model 1.8's
probabilities, thresholds chosen by halves of each set's stories as in halves.py (the model's
own combination choices kept: veto, headline and summary modes), for the model and the mixes
alike. Project venv.

    python tests/experiments/finetune_probe/fresh.py tests/data/fresh/fresh.jsonl ...
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.tagging import Tagger  # noqa: E402
from worker.tagging.encoder import item_text, load_encoder  # noqa: E402
from worker.tagging.train import DEFAULT_CORPUS, default_extra, read_corpus  # noqa: E402

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
C = 10.0
tagger = Tagger.from_config_dir(ROOT / "configs")
model = tagger.model
topics = list(tagger.topics)
records = read_corpus(DEFAULT_CORPUS) + read_corpus(default_extra(DEFAULT_CORPUS))
y = np.array([[t in (r.get("topics") or ()) for t in topics] for r in records], bool)
E = np.load(WORK / "emb-final.npy").astype(np.float32)
probes = [LogisticRegression(C=C, max_iter=2000).fit(E, y[:, t]) for t in range(len(topics))]
encoder = load_encoder()


def f1(pred, g):
    tp, fp, fn = (pred & g).sum(), (pred & ~g).sum(), (~pred & g).sum()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


GRID = np.arange(0.05, 0.96, 0.025)


def evaluate(path):
    rows = [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("topics") is not None]
    G = np.array([[t in r["topics"] for t in topics] for r in rows])
    R, FIN, PM, alone = [], [], [], []
    for r in rows:
        base = tagger.tag(r.get("title"), r.get("text") or "", use_model=False)
        both = tagger.tag(r.get("title"), r.get("text") or "")
        R.append([t in base.topic_ids for t in topics])
        FIN.append([t in both.topic_ids for t in topics])
        PM.append([both.model_scores.get(t, 0.0) for t in topics])
        shape = r.get("shape")
        alone.append(
            (model.decides_headlines and shape == "headline")
            or (model.decides_summaries and shape == "headline+summary")
        )
    R, FIN, PM, alone = np.array(R), np.array(FIN), np.array(PM), np.array(alone)
    # the model reads nothing of more than 8 sentences: no probability there, nor a probe
    reads = PM.sum(1) > 0
    emb = encoder.encode([item_text(r.get("title"), r.get("text")) for r in rows])
    PP = np.column_stack([p.predict_proba(emb)[:, 1] for p in probes]) * reads[:, None]
    veto = float(model.veto_below)
    grp = [r.get("group") or r["id"] for r in rows]
    half = np.array([int(hashlib.sha256(g.encode()).hexdigest(), 16) % 2 for g in grp])

    def tags(p, ii, t, th, by_alone):
        if by_alone:
            return p[ii, t] >= th
        return (R[ii, t] & ~((p[ii, t] < veto) & reads[ii])) | (p[ii, t] >= th)

    def predict(p):
        pred = np.zeros_like(G)
        for h in (0, 1):
            for a in (True, False):
                tr = np.where((half != h) & (alone == a))[0]
                te = np.where((half == h) & (alone == a))[0]
                for t in range(len(topics)):
                    scores = [f1(tags(p, tr, t, x, a), G[tr, t]) for x in GRID]
                    th = GRID[int(np.argmax(scores))]
                    pred[te, t] = tags(p, te, t, th, a)
        return pred

    print(f"{path}: {len(rows)} items; model 1.8's tags {f1(FIN, G):.4f}")
    print(f"  model (halves)   {f1(predict(PM), G):.4f}")
    for a in (0.15, 0.25, 0.35):
        print(f"  mix {a} (halves) {f1(predict((1 - a) * PM + a * PP), G):.4f}")


for arg in sys.argv[1:]:
    evaluate(arg)
