"""Learning curve on one fold (session 16): the weights refitted and the neighbours' memory
with a share (0, 1/4, 1/2, 3/4, all) of the silver items, the fold's fine-tuned encoder fixed
(ft.py's output, which learnt from all of them: the neighbours' curve is a lower bound).
Thresholds and calibration chosen on the fold for every row alike, as evalft.py.
usage (project root, its .venv): curve.py FOLD DIR"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from worker.tagging import Tagger
from worker.tagging.model import neighbour_vote
from worker.tagging.train import (
    DEFAULT_C,
    DEFAULT_CORPUS,
    _matrix,
    apply_calibration,
    calibrate,
    choose_thresholds,
    default_extra,
    fit_with,
    group_folds,
    prepare,
    read_corpus,
)

tagger = Tagger.from_config_dir(Path("configs"), model=False)
topics = list(tagger.topics)
gold_r = read_corpus(DEFAULT_CORPUS)
sil_r = read_corpus(default_extra(DEFAULT_CORPUS))
ex = prepare(gold_r, tagger)
extra = prepare(sil_r, tagger)
folds = np.array(group_folds([e.group for e in ex], 5))
FOLD, DIR = int(sys.argv[1]), Path(sys.argv[2])
E = np.load(DIR / "E.npy")
Eg, Es = E[: len(ex)], E[len(ex) :]
te = np.flatnonzero(folds == FOLD)
tr = np.flatnonzero(folds != FOLD)
tg = {ex[i].group for i in te}
Y = np.array([[t in e.topics for t in topics] for e in ex])
Ys = np.array([[t in e.topics for t in topics] for e in extra], np.float32)
R = np.array([[t in e.rule_topics for t in topics] for e in ex])
ok = np.array([e.group not in tg for e in extra])
rng = np.random.default_rng(0)
perm = rng.permutation(len(extra))
Yt, Rt = Y[te], R[te]


class Ex:
    def __init__(s, i):
        s.topics = ex[te[i]].topics
        s.rule_topics = ex[te[i]].rule_topics


exs = [Ex(i) for i in range(len(te))]


def f1(pred):
    tp = (pred & Yt).sum()
    fp = (pred & ~Yt).sum()
    fn = (~pred & Yt).sum()
    return 2 * tp / (2 * tp + fp + fn)


for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
    keep = np.zeros(len(extra), bool)
    keep[perm[: int(frac * len(extra))]] = True
    sel = np.flatnonzero(keep & ok)
    fitted = fit_with(
        [ex[i] for i in tr], [extra[i] for i in sel], [ex[i] for i in te], topics, DEFAULT_C
    )
    index = {w: i for i, w in enumerate(fitted.vocabulary)}
    L = 1 / (1 + np.exp(-(_matrix([ex[i] for i in te], index) @ fitted.weights + fitted.bias)))
    mem = np.vstack([Eg[tr], Es[sel]])
    lab = np.vstack([Y[tr].astype(np.float32), Ys[sel]])
    V = neighbour_vote(Eg[te] @ mem.T, lab, 25, 15.0)
    out = []
    for name, P in (("L", L), ("V", V), ("mix", 0.5 * L + 0.5 * V)):
        P = apply_calibration(P, calibrate(P, exs, topics))
        th = np.array(choose_thresholds(P, exs, topics))
        out.append(f"{name} {f1((P >= th[None]) | Rt):.4f}")
    print(f"silver {frac:.2f} ({len(sel)} items):", ", ".join(out), flush=True)
