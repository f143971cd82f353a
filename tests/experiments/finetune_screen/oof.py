"""Model 1.7's out-of-fold components on the corpus (grouped 5 folds, as train's): the
weights' probability L and the pretrained-encoder neighbours' vote V, per item, written to
$SCREEN_WORK/L.npy and V.npy for evalft.py. Run from the project root with its .venv."""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from worker.tagging import Tagger
from worker.tagging.train import (
    DEFAULT_C,
    DEFAULT_CORPUS,
    _matrix,
    default_extra,
    fit_with,
    group_folds,
    neighbour_votes,
    prepare,
    read_corpus,
)

WORK = Path(os.environ.get("SCREEN_WORK", "/tmp/ftscreen"))
WORK.mkdir(exist_ok=True)
tagger = Tagger.from_config_dir(Path("configs"), model=False)
topics = list(tagger.topics)
ex = prepare(read_corpus(DEFAULT_CORPUS), tagger)
extra = prepare(read_corpus(default_extra(DEFAULT_CORPUS)), tagger)
folds = group_folds([e.group for e in ex], 5)
L = np.zeros((len(ex), len(topics)))
V = np.zeros_like(L)
for f in range(5):
    tr = [e for e, g in zip(ex, folds, strict=True) if g != f]
    ti = [i for i, g in enumerate(folds) if g == f]
    te = [ex[i] for i in ti]
    fitted = fit_with(tr, extra, te, topics, DEFAULT_C)
    index = {w: i for i, w in enumerate(fitted.vocabulary)}
    z = _matrix(te, index) @ fitted.weights + fitted.bias
    L[ti] = 1 / (1 + np.exp(-z))
    V[ti], _ = neighbour_votes(fitted, te, len(topics))
    print("fold", f, file=sys.stderr, flush=True)
np.save(WORK / "L.npy", L)
np.save(WORK / "V.npy", V)
