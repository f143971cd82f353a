"""Score the fine-tuned encoder of one fold against model 1.7's out-of-fold components on
that fold's items. Run from the project root with its .venv. usage: evalft.py FOLD DIR [--grid]
(DIR: ft.py's output; $SCREEN_WORK: oof.py's and rules.py's)."""

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from worker.tagging.model import neighbour_vote
from worker.tagging.train import apply_calibration, calibrate, choose_thresholds, group_folds

fold, d = int(sys.argv[1]), Path(sys.argv[2])
S11 = WORK = Path(os.environ.get("SCREEN_WORK", "/tmp/ftscreen"))
gold = [json.loads(line) for line in open("tests/data/corpus/corpus.jsonl")]
silver = [json.loads(line) for line in open("tests/data/corpus/silver.jsonl")]
TOPICS = [
    "arms-control",
    "nonproliferation",
    "sanctions",
    "trade",
    "leader-contact",
    "negotiations",
    "pandemic",
    "armed-conflict",
    "peace-process",
    "alliances",
    "multilateral",
    "diplomatic-relations",
    "territorial-disputes",
]
Y = np.array([[t in r["topics"] for t in TOPICS] for r in gold])
Ys = np.array([[t in r["topics"] for t in TOPICS] for r in silver], np.float32)
R = np.load(WORK / "R.npy")
groups = [r.get("group") or r["id"] for r in gold]
folds = np.array(group_folds(groups, 5))
te = np.flatnonzero(folds == fold)
tg = {groups[i] for i in te}
tr = np.flatnonzero(folds != fold)
sil = np.array([(r.get("group") or r["id"]) not in tg for r in silver])
L, V = np.load(S11 / "L.npy")[te], np.load(S11 / "V.npy")[te]
E, H = np.load(d / "E.npy"), np.load(d / "P.npy")
Eg, Es = E[: len(gold)], E[len(gold) :]
mem = np.vstack([Eg[tr], Es[sil]])
lab = np.vstack([Y[tr].astype(np.float32), Ys[sil]])
Vf = neighbour_vote(Eg[te] @ mem.T, lab, 25, 15.0)
Hf = H[: len(gold)][te]
Yt, Rt = Y[te], R[te]
shape = np.array([gold[i]["shape"] for i in te])
grp = np.array([groups[i] for i in te])


class Ex:  # what choose_thresholds / calibrate read
    def __init__(self, i):
        self.topics = frozenset(t for t, y in zip(TOPICS, Yt[i], strict=True) if y)
        self.rule_topics = frozenset(t for t, y in zip(TOPICS, Rt[i], strict=True) if y)


exs = [Ex(i) for i in range(len(te))]


def decide(P):
    P = apply_calibration(P, calibrate(P, exs, TOPICS))
    th = np.array(choose_thresholds(P, exs, TOPICS))
    return (P >= th[None]) | Rt


def f1(pred, rows=None):
    rows = np.arange(len(pred)) if rows is None else rows
    p, y = pred[rows], Yt[rows]
    tp = (p & y).sum()
    fp = (p & ~y).sum()
    fn = (~p & y).sum()
    return 2 * tp / (2 * tp + fp + fn)


def report(name, pred):
    pt = []
    for k in range(len(TOPICS)):
        p, y = pred[:, k], Yt[:, k]
        tp = (p & y).sum()
        fp = (p & ~y).sum()
        fn = (~p & y).sum()
        pt.append(2 * tp / (2 * tp + fp + fn))
    sh = {
        s: round(f1(pred, np.flatnonzero(shape == s)), 3)
        for s in ("headline", "headline+summary", "paragraph")
    }
    print(f"{name:28s} {f1(pred):.4f} {sh} dr {pt[11]:.3f} neg {pt[5]:.3f}", flush=True)


variants = {
    "1.7 (L .7 V .3)": 0.7 * L + 0.3 * V,
    "L .7 Vft .3": 0.7 * L + 0.3 * Vf,
    "head alone": Hf,
    "L .5 Vft .5": 0.5 * L + 0.5 * Vf,
}
for mh in (0.2, 0.35, 0.5):
    variants[f"1.7 + head {mh}"] = (1 - mh) * (0.7 * L + 0.3 * V) + mh * Hf
    variants[f"LVft + head {mh}"] = (1 - mh) * (0.7 * L + 0.3 * Vf) + mh * Hf
preds = {}
for n, P in variants.items():
    preds[n] = decide(P)
    report(n, preds[n])

# paired bootstrap over stories: best variant - 1.7
base = preds["1.7 (L .7 V .3)"]
ug = np.unique(grp)
rng = np.random.default_rng(0)
idx_of = {g: np.flatnonzero(grp == g) for g in ug}
for n in preds:
    if n.startswith("1.7 ("):
        continue
    ds = []
    for _ in range(300):
        rows = np.concatenate([idx_of[g] for g in rng.choice(ug, len(ug))])
        ds.append(f1(preds[n], rows) - f1(base, rows))
    print(
        f"  {n:26s} diff {np.mean(ds):+.4f} "
        f"[{np.percentile(ds, 2.5):+.4f}, {np.percentile(ds, 97.5):+.4f}]"
    )

if "--grid" in sys.argv:  # k, sharpness and mixes, with and without the head
    base = decide(0.7 * L + 0.3 * V)
    print("base", round(f1(base), 4))
    for k, sh in ((25, 15.0), (15, 15.0), (40, 15.0), (25, 25.0), (25, 10.0)):
        Vk = neighbour_vote(Eg[te] @ mem.T, lab, k, sh)
        for a, b, c in (
            (0.5, 0.5, 0),
            (0.4, 0.6, 0),
            (0.6, 0.4, 0),
            (0.3, 0.7, 0),
            (0.5, 0.3, 0.2),
            (0.4, 0.4, 0.2),
            (0.35, 0.35, 0.3),
        ):
            p = decide(a * L + b * Vk + c * Hf)
            print(
                k,
                sh,
                (a, b, c),
                round(f1(p), 4),
                {
                    s: round(f1(p, np.flatnonzero(shape == s)), 3)
                    for s in ("headline", "headline+summary", "paragraph")
                },
            )
