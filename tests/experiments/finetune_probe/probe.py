"""The probe of fold F: a logistic regression per topic (C, default 10) on the embeddings by
fold F's encoder of the items fold F's encoder was trained on (the other folds' corpus items and
the silver items outside fold F's stories), applied to fold F's corpus items; to
$PROBE_WORK/pprobe-F.npy. Prints, on fold F alone, each score's F1 at the best threshold per
topic on the fold itself (rules or model; every row alike optimistic: a screen, not a result).
Project venv (scikit-learn).
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.tagging.train import (  # noqa: E402
    DEFAULT_CORPUS,
    default_extra,
    group_folds,
    read_corpus,
)

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
F = int(sys.argv[1])
C = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
gold = read_corpus(DEFAULT_CORPUS)
records = gold + read_corpus(default_extra(DEFAULT_CORPUS))
oof = json.loads((WORK / "oof.json").read_text())
topics = oof["topics"]
y = np.array([[t in (r.get("topics") or ()) for t in topics] for r in records], bool)
groups = [r.get("group") or r["id"] for r in records]
fold_of = group_folds(groups[: len(gold)], 5)  # as finetune.run assigns them
held = {groups[i] for i, g in enumerate(fold_of) if g == F}
train = np.array([i for i in range(len(records)) if groups[i] not in held])
test = np.array([i for i, g in enumerate(fold_of) if g == F])
E = np.load(WORK / f"emb-fold-{F}.npy").astype(np.float32)
P = np.zeros((len(test), len(topics)))
for t in range(len(topics)):
    lr = LogisticRegression(C=C, max_iter=2000).fit(E[train], y[train, t])
    P[:, t] = lr.predict_proba(E[test])[:, 1]
np.save(WORK / f"pprobe-{F}.npy", P)

items = {it["i"]: it for it in oof["items"]}
assert all(items[i]["fold"] == F for i in test), "the folds differ from eval --cv's"
G = y[test]
R = np.array([[t in items[i]["rules"] for t in topics] for i in test])
FIN = np.array([[t in items[i]["final"] for t in topics] for i in test])
PM = np.array([[items[i]["p"].get(t, 0.0) for t in topics] for i in test])
shape = np.array([items[i]["shape"] for i in test])


def f1(pred, g):
    tp, fp, fn = (pred & g).sum(), (pred & ~g).sum(), (~pred & g).sum()
    return 2 * tp / (2 * tp + fp + fn)


def oracle(p):
    pred = np.zeros_like(G)
    for t in range(len(topics)):
        best = -1.0
        for th in np.arange(0.05, 0.96, 0.025):
            cand = R[:, t] | (p[:, t] >= th)
            s = f1(cand, G[:, t])
            if s > best:
                best, pred[:, t] = s, cand
    return pred


print(f"fold {F} (C {C}): {len(test)} test items; model 1.8's tags {f1(FIN, G):.4f}")
for name, p in [("model", PM), ("probe", P)] + [
    (f"mix {a}", (1 - a) * PM + a * P) for a in (0.15, 0.25, 0.35)
]:
    o = oracle(p)
    shapes = " ".join(
        f"{s} {f1(o[shape == s], G[shape == s]):.3f}"
        for s in ("headline", "headline+summary", "paragraph")
    )
    print(f"  {name:10s} best-threshold rules or model {f1(o, G):.4f}  {shapes}")
