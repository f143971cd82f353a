"""The shipped encoder's fold lists (tests/data/corpus/neighbours-folds.safetensors, written by
`python -m worker.tagging.finetune`) as a build step's folder, so that cmp_encoders.py and
evalcmd.py can score a screened encoder against what model 1.8 ships without fine-tuning a
MiniLM of the fold again: the fold's items and, for each, the first 25 of its listed
neighbours that are in the fold's memory (gold items of the other folds, silver items outside
the fold's stories), as rows of gold + silver.
usage (project root, its .venv): shipped_lists.py FOLD OUT   (then `evalcmd.py FOLD OUT` gives
the build's fold-0 figure, 0.854, or `cmp_encoders.py FOLD A OUT`)"""

import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from worker.tagging.train import DEFAULT_FOLD_NEIGHBOURS, group_folds

fold, out = int(sys.argv[1]), Path(sys.argv[2])
gold = [json.loads(line) for line in open("tests/data/corpus/corpus.jsonl")]
silver = [json.loads(line) for line in open("tests/data/corpus/silver.jsonl")]
groups = [r.get("group") or r["id"] for r in gold]
folds = np.array(group_folds(groups, 5))
te = np.flatnonzero(folds == fold)
tg = {groups[i] for i in te}
d = load_file(DEFAULT_FOLD_NEIGHBOURS)
ids = [bytes(r).rstrip(b"\0").decode() for r in d["ids"]]
pos = {r["id"]: i for i, r in enumerate(gold + silver)}
memory = np.concatenate([folds != fold, [(r.get("group") or r["id"]) not in tg for r in silver]])
row_of = {ids[r]: j for j, r in enumerate(d["items"].tolist())}
lists, sims = [], []
for i in te:
    j = row_of[gold[i]["id"]]
    kept = [(pos[ids[r]], s) for r, s in zip(d["lists"][j], d["sims"][j], strict=True)]
    kept = [(p, s) for p, s in kept if memory[p]][:25]
    assert len(kept) == 25, (gold[i]["id"], len(kept))
    lists.append([p for p, _ in kept])
    sims.append([s for _, s in kept])
out.mkdir(parents=True, exist_ok=True)
save_file(
    {"items": te.astype(np.int64), "ids": np.array(lists), "sims": np.array(sims, np.float32)},
    str(out / "neighbours.safetensors"),
)
print(f"fold {fold}: {len(te)} items -> {out / 'neighbours.safetensors'}")
