# ruff: noqa: F821 - the names come from evalft.py, run by exec below
"""Two fine-tuned encoders of one fold (ft.py outputs A and B) as the neighbours beside the
weights' out-of-fold probability (oof.py), on that fold's items: B's vote at a few settings,
and the two votes averaged (an ensemble), against A's, each mixed 0.5, with a paired bootstrap
over stories. Session 16: B = ft.py --supcon 1 --temp 0.1, then the build's fold-0 step (README).
usage (project root, its .venv): cmp_encoders.py FOLD A B ($SCREEN_WORK as evalft.py); B may
also be a build step's folder (`WORK/fold-F`: its fold lists, k 25 and sharpness 15 only)."""

import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from worker.tagging.model import neighbour_vote

HERE = Path(__file__).parent
fold, a, b = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
src = (HERE / "evalft.py").read_text()
sys.argv = ["evalft.py", str(fold), str(a)]
exec(src.split("variants = {")[0])  # corpus, folds, L, rules, A's vote Vf, decide, f1, report
if (b / "neighbours.safetensors").exists():  # a build step's fold lists (as evalcmd.py)
    part = load_file(b / "neighbours.safetensors")
    assert np.array_equal(part["items"], te), "not this fold's items"
    ids, sims = part["ids"][:, :25], part["sims"][:, :25].astype(np.float64)
    w = np.exp(15.0 * (sims - sims.max(1, keepdims=True)))
    Yall = np.vstack([Y.astype(np.float32), Ys])
    vote = np.einsum("nk,nkt->nt", w, Yall[ids]) / w.sum(1, keepdims=True)
    Vb = {(25, 15.0): vote}
else:
    E2 = np.load(b / "E.npy")
    Eg2, Es2 = E2[: len(gold)], E2[len(gold) :]
    mem2 = np.vstack([Eg2[tr], Es2[sil]])
    Vb = {
        (k, s): neighbour_vote(Eg2[te] @ mem2.T, lab, k, s) for k in (25, 40) for s in (15.0, 25.0)
    }
V = Vb[(25, 15.0)]
variants = {
    "A: L .5 VA .5": 0.5 * L + 0.5 * Vf,
    "B: L .5 VB .5": 0.5 * L + 0.5 * V,
    "B: L .4 VB .6": 0.4 * L + 0.6 * V,
    "B: L .6 VB .4": 0.6 * L + 0.4 * V,
    "A and B: L .5 (VA + VB) / 2": 0.5 * L + 0.25 * Vf + 0.25 * V,
    "A and B: L .4 (VA + VB) .3": 0.4 * L + 0.3 * Vf + 0.3 * V,
    "A's vote alone": Vf,
    "B's vote alone": V,
}
if (40, 15.0) in Vb:
    variants["B: k 40"] = 0.5 * L + 0.5 * Vb[(40, 15.0)]
    variants["B: sharpness 25"] = 0.5 * L + 0.5 * Vb[(25, 25.0)]
preds = {n: decide(P) for n, P in variants.items()}
for n, p in preds.items():
    report(n, p)
ug = np.unique(grp)
idx_of = {g: np.flatnonzero(grp == g) for g in ug}
for n, p in preds.items():
    if n.startswith("A:"):
        continue
    rng = np.random.default_rng(0)
    ds = []
    for _ in range(500):
        rows = np.concatenate([idx_of[g] for g in rng.choice(ug, len(ug))])
        ds.append(f1(p, rows) - f1(preds["A: L .5 VA .5"], rows))
    lo, hi = np.percentile(ds, 2.5), np.percentile(ds, 97.5)
    print(f"  {n:30s} - A: {np.mean(ds):+.4f} [{lo:+.4f}, {hi:+.4f}]")
