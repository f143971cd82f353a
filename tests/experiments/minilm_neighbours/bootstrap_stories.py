"""Paired bootstrap over the corpus's stories: topics micro-F1 of B minus A, per shape.

    python bootstrap_stories.py A.out B.out

A and B: the stdout of two `eval --cv` runs (one JSON line per item: id, topics)."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "data" / "corpus" / "corpus.jsonl"


def predictions(path: str) -> dict[str, set[str]]:
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            out[r["id"]] = set(r["topics"])
    return out


def f1(c: np.ndarray) -> float:
    return float(2 * c[0] / (2 * c[0] + c[1] + c[2]))


def main() -> None:
    rows = [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x.strip()]
    gold = {r["id"]: set(r.get("topics") or []) for r in rows}
    group = {r["id"]: r.get("group") or r["id"] for r in rows}
    shape = {r["id"]: r["shape"] for r in rows}
    a, b = predictions(sys.argv[1]), predictions(sys.argv[2])
    groups: dict[str, list[str]] = {}
    for i in gold:
        if i in a and i in b:
            groups.setdefault(group[i], []).append(i)
    names = list(groups)

    def counts(p: dict[str, set[str]], items: list[str]) -> np.ndarray:
        c = np.zeros(3)
        for i in items:
            c += (len(gold[i] & p[i]), len(p[i] - gold[i]), len(gold[i] - p[i]))
        return c

    for label in ("all", "headline", "headline+summary", "paragraph"):
        part = {g: [i for i in groups[g] if label == "all" or shape[i] == label] for g in names}
        ca = {g: counts(a, part[g]) for g in names}
        cb = {g: counts(b, part[g]) for g in names}
        fa, fb = f1(sum(ca.values())), f1(sum(cb.values()))
        rng = random.Random(0)
        diffs = []
        for _ in range(2000):
            pick = [names[rng.randrange(len(names))] for _ in names]
            diffs.append(f1(sum(cb[g] for g in pick)) - f1(sum(ca[g] for g in pick)))
        diffs.sort()
        print(
            f"{label:18s} A {fa:.3f} B {fb:.3f} diff {fb - fa:+.3f} "
            f"95% [{diffs[50]:+.3f}, {diffs[1949]:+.3f}]"
        )


if __name__ == "__main__":
    main()
