"""Embed every labelled item (corpus, silver, feed held-out, outlet sample) once:
``emb.npy`` and ``keys.json`` (title, text) in OUT (default /tmp/minilm)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from encoder import encode

ROOT = Path(__file__).resolve().parents[3]
FILES = [
    "tests/data/corpus/corpus.jsonl",
    "tests/data/corpus/silver.jsonl",
    "tests/data/heldout/feeds-heldout.jsonl",
    "tests/data/outlets/feed-sample.jsonl",
]


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/minilm")
    out.mkdir(parents=True, exist_ok=True)
    keys: list[tuple[str, str]] = []
    texts: list[str] = []
    seen: set[tuple[str, str]] = set()
    for name in FILES:
        for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            key = (r.get("title") or "", r.get("text") or "")
            if key not in seen:
                seen.add(key)
                keys.append(key)
                texts.append("\n".join(x for x in key if x.strip()))
    np.save(out / "emb.npy", encode(texts))
    (out / "keys.json").write_text(json.dumps(keys), encoding="utf-8")


if __name__ == "__main__":
    main()
