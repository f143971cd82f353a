"""Model 1.8's probabilities against mixes with the probe, with thresholds chosen honestly
for both alike: each test fold's stories split in two halves, the thresholds (per topic, for
the items the fold's model decides alone and for the others) chosen on one half and applied to
the other, both ways; the decision as the fold's model takes it (its veto, its headline and
summary modes). Then a paired bootstrap over stories. Project venv.

    python tests/experiments/finetune_probe/halves.py 0,1,2,3,4
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.tagging.train import DEFAULT_CORPUS, read_corpus  # noqa: E402

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
MIXES = (0.15, 0.25, 0.35, 0.5)
oof = json.loads((WORK / "oof.json").read_text())
topics = oof["topics"]
items = sorted(oof["items"], key=lambda it: it["i"])
gold = read_corpus(DEFAULT_CORPUS)
assert all(gold[it["i"]]["id"] == it["id"] for it in items)
grp = np.array([gold[it["i"]].get("group") or it["id"] for it in items])
half = np.array([int(hashlib.sha256(g.encode()).hexdigest(), 16) % 2 for g in grp])
T = len(topics)
G = np.array([[t in it["gold"] for t in topics] for it in items])
R = np.array([[t in it["rules"] for t in topics] for it in items])
FIN = np.array([[t in it["final"] for t in topics] for it in items])
PM = np.array([[it["p"].get(t, 0.0) for t in topics] for it in items])
fold = np.array([it["fold"] for it in items])
shape = np.array([it["shape"] for it in items])
folds = [int(f) for f in sys.argv[1].split(",")]
PP = np.zeros_like(PM)
for f in folds:
    PP[fold == f] = np.load(WORK / f"pprobe-{f}.npy")
keep = np.isin(fold, folds)
alone = np.array(
    [
        (it["headlines"] and it["shape"] == "headline")
        or (it["summaries"] and it["shape"] == "headline+summary")
        for it in items
    ]
)
veto = np.array([it["veto"] for it in items])
GRID = np.arange(0.05, 0.96, 0.025)


def f1(pred, g):
    tp, fp, fn = (pred & g).sum(), (pred & ~g).sum(), (~pred & g).sum()
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def tags(p, ii, t, th, by_model_alone):
    if by_model_alone:
        return p[ii, t] >= th
    return (R[ii, t] & ~(p[ii, t] < veto[ii])) | (p[ii, t] >= th)


def choose(p, idx):
    th = {True: np.zeros(T), False: np.zeros(T)}
    for t in range(T):
        for a in (True, False):
            ii = idx[alone[idx] == a]
            scores = [f1(tags(p, ii, t, x, a), G[ii, t]) for x in GRID]
            th[a][t] = GRID[int(np.argmax(scores))]
    return th


def predict(p):
    pred = np.zeros_like(G)
    for f in folds:
        for h in (0, 1):
            tr = np.where((fold == f) & (half != h))[0]
            th = choose(p, tr)
            for a in (True, False):
                te = np.where((fold == f) & (half == h) & (alone == a))[0]
                for t in range(T):
                    pred[te, t] = tags(p, te, t, th[a][t], a)
    return pred


def report(name, pred):
    shapes = " ".join(
        f"{s} {f1(pred[keep & (shape == s)], G[keep & (shape == s)]):.3f}"
        for s in ("headline", "headline+summary", "paragraph")
    )
    per_fold = " ".join(f"{f1(pred[fold == f], G[fold == f]):.3f}" for f in folds)
    print(f"{name:22s} {f1(pred[keep], G[keep]):.4f}  {shapes}  folds {per_fold}", flush=True)


report("model 1.8's tags", FIN)
base = predict(PM)
report("model (halves)", base)
report("probe (halves)", predict(PP))
alts = {a: predict((1 - a) * PM + a * PP) for a in MIXES}
for a, pred in alts.items():
    report(f"mix {a} (halves)", pred)

# paired bootstrap over stories: each mix against the model, the same predictions
stories, inv = np.unique(grp[keep], return_inverse=True)
rng = np.random.default_rng(0)


def counts(pred):
    k = np.where(keep)[0]
    return [
        np.bincount(inv, weights=x[k], minlength=len(stories))
        for x in ((pred & G).sum(1), (pred & ~G).sum(1), (~pred & G).sum(1))
    ]


cb = counts(base)
for a in (0.25, 0.35):
    ca = counts(alts[a])
    diffs = []
    for _ in range(2000):
        w = np.bincount(rng.integers(0, len(stories), len(stories)), minlength=len(stories))
        tb, pb, nb = (float((x * w).sum()) for x in cb)
        ta, pa, na = (float((x * w).sum()) for x in ca)
        diffs.append(2 * ta / (2 * ta + pa + na) - 2 * tb / (2 * tb + pb + nb))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    print(
        f"mix {a} - model: {np.mean(diffs):+.4f} (95 % {lo:+.4f} to {hi:+.4f}), "
        f"{len(stories)} stories"
    )
