"""Score the build command's fold lists like evalft.py: weights 0.5 + the neighbours read
from the fold's lists (the first 25 of each item's 100) 0.5, against model 1.7.
usage (project root, its .venv): evalcmd.py FOLD WORK/fold-FOLD  ($SCREEN_WORK as evalft.py)"""

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

HERE = Path(__file__).parent
fold, d = int(sys.argv[1]), Path(sys.argv[2])
src = (HERE / "evalft.py").read_text()
sys.argv = ["evalft.py", str(fold), str(d)]
exec(src.split("E, H = np.load")[0])  # corpus, folds, L and V of model 1.7, rules
part = load_file(d / "neighbours.safetensors")
assert np.array_equal(part["items"], te), "not this fold's items"  # noqa: F821
Yall = np.vstack([Y.astype(np.float32), Ys])  # noqa: F821
ids, sims = part["ids"][:, :25], part["sims"][:, :25].astype(np.float64)
w = np.exp(15.0 * (sims - sims.max(1, keepdims=True)))
Vc = np.einsum("nk,nkt->nt", w, Yall[ids]) / w.sum(1, keepdims=True)
Yt, Rt = Y[te], R[te]  # noqa: F821
shape = np.array([gold[i]["shape"] for i in te])  # noqa: F821
grp = np.array([groups[i] for i in te])  # noqa: F821
exec("class Ex:" + src.split("class Ex:")[1].split("variants = {")[0])
base = decide(0.7 * L + 0.3 * V)  # noqa: F821
report("1.7", base)  # noqa: F821
cmd = decide(0.5 * L + 0.5 * Vc)  # noqa: F821
report("fold lists, mix 0.5", cmd)  # noqa: F821
report("fold lists, mix 0.3", decide(0.7 * L + 0.3 * Vc))  # noqa: F821
ug = np.unique(grp)
rng = np.random.default_rng(0)
idx_of = {g: np.flatnonzero(grp == g) for g in ug}
ds = []
for _ in range(300):
    rows = np.concatenate([idx_of[g] for g in rng.choice(ug, len(ug))])
    ds.append(f1(cmd, rows) - f1(base, rows))  # noqa: F821
print(f"diff {np.mean(ds):+.4f} [{np.percentile(ds, 2.5):+.4f}, {np.percentile(ds, 97.5):+.4f}]")
