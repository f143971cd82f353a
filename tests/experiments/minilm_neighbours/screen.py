"""Run a `python -m worker` command (or `outlets`) with the neighbours' vectors taken from
the MiniLM embeddings that embed.py wrote, instead of mean GloVe vectors: a screen.

    EMB=/tmp/minilm SHARP=15 MIX=0.3 python screen.py eval --cv 5 tests/data/corpus/corpus.jsonl
    EMB=/tmp/minilm SHARP=15 python screen.py outlets --gold tests/data/outlets/feed-sample.jsonl

Everything else is the project's own code path: training (`train.prepare` gets the item's
embedding as its vector), the out-of-fold votes, calibration, thresholds, and tagging through
`Tagger.tag` (the model's `Neighbours` get the item's embedding)."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import worker.tagging.model as M
import worker.tagging.train as T

EMB = Path(os.environ.get("EMB", "/tmp/minilm"))
SCALE = float(os.environ.get("SCALE", "3"))  # int8 memory: components x SCALE stay under 1
SHARP = float(os.environ.get("SHARP", "15"))
VECTORS = {
    tuple(k): v * SCALE
    for k, v in zip(
        json.loads((EMB / "keys.json").read_text()), np.load(EMB / "emb.npy"), strict=True
    )
}
if max(float(np.abs(v).max()) for v in VECTORS.values()) >= 1.0:
    sys.exit(f"SCALE {SCALE} overflows the int8 memory: lower it")
T.NEIGHBOURS_SHARPNESS = SHARP / SCALE**2  # the same weights as SHARP on unit vectors
if os.environ.get("MIX"):
    T.NEIGHBOURS_MIX = float(os.environ["MIX"])
_prepare = T.prepare


def prepare(records: Any, tagger: Any, vectors: Any = None) -> Any:
    out = _prepare(records, tagger, vectors)
    for r, ex in zip(records, out, strict=True):
        ex.vector = VECTORS.get((r.get("title") or "", r.get("text") or ""))
    return out


def init(self: Any, spec: dict[str, Any], n_topics: int, vectors: Any) -> None:
    self.k, self.sharpness, self.mix = int(spec["k"]), float(spec["sharpness"]), float(spec["mix"])
    q = np.frombuffer(base64.b64decode(spec["vectors"]), dtype=np.int8)
    bits = np.frombuffer(base64.b64decode(spec["labels"]), dtype="<u2")
    self.vectors = vectors
    self.memory = q.reshape(int(spec["items"]), int(spec["dims"])).astype(np.float32) / 127.0
    self.labels = M.topic_sets(bits, n_topics)


CURRENT: list[tuple[str, str]] = [("", "")]
_predict = M.TopicModel.predict


def predict(self: Any, title: Any, text: Any, mentions: Any = ()) -> Any:
    CURRENT[0] = (title or "", text or "")
    return _predict(self, title, text, mentions)


def mixed(self: Any, probs: np.ndarray, names: Any) -> np.ndarray:
    v = VECTORS.get(CURRENT[0])
    return probs if v is None else (1.0 - self.mix) * probs + self.mix * self.vote(v)


T.prepare = prepare
M.Neighbours.__init__ = init  # type: ignore[method-assign]
M.Neighbours.mixed = mixed  # type: ignore[method-assign]
M.TopicModel.predict = predict  # type: ignore[method-assign]

if __name__ == "__main__":
    if sys.argv[1:2] == ["outlets"]:
        from worker.tagging.outlets import main as outlets_main

        sys.exit(outlets_main(sys.argv[2:]))
    from worker.cli import main

    sys.argv = ["worker", *sys.argv[1:]]
    sys.exit(main())
