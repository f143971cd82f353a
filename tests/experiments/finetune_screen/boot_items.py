"""Paired bootstrap over items of a labelled set: topics micro-F1 of B minus A.

    python boot_items.py GOLD.jsonl A.out B.out

GOLD: a set `python -m worker eval` reads (id, topics); A and B: the stdout of `eval` on it
by two models (one JSON line per item: id, topics)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def read(path: str) -> dict[str, set[str]]:
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            out[r["id"]] = set(r.get("topics") or ())
    return out


def main() -> None:
    gold, a, b = (read(p) for p in sys.argv[1:4])
    ids = [i for i in gold if i in a and i in b]

    def counts(p: dict[str, set[str]]) -> np.ndarray:
        return np.array(
            [(len(gold[i] & p[i]), len(p[i] - gold[i]), len(gold[i] - p[i])) for i in ids]
        )

    ca, cb = counts(a), counts(b)

    def f1(c: np.ndarray) -> float:
        tp, fp, fn = c.sum(axis=0)
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0

    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(2000):
        pick = rng.integers(0, len(ids), len(ids))
        diffs.append(f1(cb[pick]) - f1(ca[pick]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    print(
        f"{len(ids)} items: A {f1(ca):.3f} B {f1(cb):.3f} diff {f1(cb) - f1(ca):+.3f} "
        f"95% [{lo:+.3f}, {hi:+.3f}]"
    )


if __name__ == "__main__":
    main()
