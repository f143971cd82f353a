"""The probes an honest cross-validation's inner folds need: for fold encoder G and each other
fold F, a logistic regression per topic fitted on the items outside both folds' stories (by
G's embeddings), applied to fold G's corpus items: what an item of fold G reads while outer
fold F is held out (as the fold lists drop F's items from the neighbours). To
$PROBE_WORK/pair-G-F.npy. Project venv; ~1 minute a pair.

    python tests/experiments/finetune_probe/pairs.py G
"""

import os
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from worker.tagging import Tagger  # noqa: E402
from worker.tagging.train import (  # noqa: E402
    DEFAULT_CORPUS,
    default_extra,
    group_folds,
    read_corpus,
)

WORK = Path(os.environ.get("PROBE_WORK", "/tmp/ftprobe"))
C = 10.0
g = int(sys.argv[1])
gold = read_corpus(DEFAULT_CORPUS)
records = gold + read_corpus(default_extra(DEFAULT_CORPUS))
topics = list(Tagger.from_config_dir(ROOT / "configs", model=False).topics)
y = np.array([[t in (r.get("topics") or ()) for t in topics] for r in records], bool)
groups = [r.get("group") or r["id"] for r in records]
fold_of = group_folds(groups[: len(gold)], 5)
test = np.array([i for i, x in enumerate(fold_of) if x == g])
E = np.load(WORK / f"emb-fold-{g}.npy").astype(np.float32)
for f in range(5):
    if f == g:
        continue
    held = {groups[i] for i, x in enumerate(fold_of) if x in (g, f)}
    train = np.array([i for i in range(len(records)) if groups[i] not in held])
    P = np.zeros((len(test), len(topics)))
    for t in range(len(topics)):
        lr = LogisticRegression(C=C, max_iter=2000).fit(E[train], y[train, t])
        P[:, t] = lr.predict_proba(E[test])[:, 1]
    np.save(WORK / f"pair-{g}-{f}.npy", P)
    print(f"pair {g}-{f}: {len(train)} training items", file=sys.stderr, flush=True)
