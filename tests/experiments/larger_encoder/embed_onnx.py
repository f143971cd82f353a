"""Embed every corpus and silver item (in file order, as ft.py's E.npy) with an ONNX BERT
encoder: the first 64 word pieces of the item's title and text, CLS and mean pooling, unit
length; writes OUTDIR/cls/ and OUTDIR/mean/ (E.npy, and a P.npy of zeros for evalft.py).
Needs onnxruntime and tokenizers (the fine-tuning venv). usage: embed_onnx.py MODEL.onnx
TOKENIZER.json OUTDIR"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[3]
model, tokfile, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
rows = [
    json.loads(line)
    for f in ("corpus.jsonl", "silver.jsonl")
    for line in open(ROOT / "tests/data/corpus" / f)
]
texts = [
    "\n".join(x for x in (r.get("title") or "", r.get("text") or "") if x.strip()) for r in rows
]
tok = Tokenizer.from_file(tokfile)
tok.no_padding()
tok.enable_truncation(64)
enc = [tok.encode(t) for t in texts]
order = np.argsort([len(e.ids) for e in enc], kind="stable")
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
opts.inter_op_num_threads = 1
sess = ort.InferenceSession(model, opts)
cls = np.zeros((len(texts), 384), np.float32)
mean = np.zeros((len(texts), 384), np.float32)
t0 = time.time()
B = 64
for bi in range(0, len(order), B):
    idx = order[bi : bi + B]
    n = max(len(enc[i].ids) for i in idx)
    ids = np.zeros((len(idx), n), np.int64)
    mask = np.zeros((len(idx), n), np.int64)
    for j, i in enumerate(idx):
        e = enc[i].ids
        ids[j, : len(e)] = e
        mask[j, : len(e)] = 1
    h = sess.run(
        None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    )[0]
    cls[idx] = h[:, 0]
    m = mask[:, :, None].astype(np.float32)
    mean[idx] = (h * m).sum(1) / m.sum(1)
    if bi // B % 50 == 0:
        print(f"{bi}/{len(order)} {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
for name, e in (("cls", cls), ("mean", mean)):
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    (out / name).mkdir(exist_ok=True)
    np.save(out / name / "E.npy", e)
    np.save(out / name / "P.npy", np.zeros((len(texts), 13), np.float32))
print(f"done {len(texts)} items in {time.time() - t0:.0f} s", file=sys.stderr)
