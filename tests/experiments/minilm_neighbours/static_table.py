"""The transformer distilled to a static table (as model2vec does): each word piece's
embedding alone ([CLS] piece [SEP], mean-pooled), and an item's vector the unit mean (or
idf-weighted mean) of its pieces' rows. Writes OUT/{mean,idf}/emb.npy and keys.json for
screen.py (run it with SCALE=2: these vectors' largest component is 0.47).

    python static_table.py /tmp/minilm /tmp/minilm_static
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import encoder as E
import numpy as np


def embed_ids(ids: np.ndarray) -> np.ndarray:
    b, t = ids.shape
    w = E.W
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:t][None]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = E._ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for ly in E.LAYERS:
        q, k, v = np.split(x @ ly["qkv_w"] + ly["qkv_b"], 3, axis=-1)
        q, k, v = (m.reshape(b, t, 12, 32).transpose(0, 2, 1, 3) for m in (q, k, v))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32.0)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, 384)
        x = E._ln(x + ctx @ ly["o_w"] + ly["o_b"], ly["ln1_g"], ly["ln1_b"])
        h = E._gelu(x @ ly["i_w"] + ly["i_b"]) @ ly["o2_w"] + ly["o2_b"]
        x = E._ln(x + h, ly["ln2_g"], ly["ln2_b"])
    s = x.mean(1)
    return s / np.linalg.norm(s, axis=1, keepdims=True)


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    n = E.W["embeddings.word_embeddings.weight"].shape[0]
    table = np.zeros((n, 384), np.float32)
    for lo in range(0, n, 1024):
        ids = np.arange(lo, min(n, lo + 1024))
        table[ids] = embed_ids(np.stack([np.full_like(ids, 101), ids, np.full_like(ids, 102)], 1))
    keys = json.loads((src / "keys.json").read_text())
    E.TOK.no_padding()
    E.TOK.no_truncation()
    pieces = [
        E.TOK.encode("\n".join(x for x in k if x.strip()), add_special_tokens=False).ids
        for k in keys
    ]
    df = np.zeros(n)
    for ids in pieces:
        df[list(set(ids))] += 1
    idf = np.log((1 + len(keys)) / (1 + df)) + 1
    for mode in ("mean", "idf"):
        emb = np.zeros((len(keys), 384), np.float32)
        for i, ids in enumerate(pieces):
            if ids:
                v = (table[ids] * (idf[ids] if mode == "idf" else 1.0)[..., None]).sum(0)
                emb[i] = v / np.linalg.norm(v)
        (out / mode).mkdir(parents=True, exist_ok=True)
        np.save(out / mode / "emb.npy", emb)
        (out / mode / "keys.json").write_text(json.dumps(keys))


if __name__ == "__main__":
    main()
