"""Screen (session 17): confident learning on the single-annotator silver items.

In each outer fold of the grouped cross-validation, the fold's training part (the gold items
of the other folds and the silver items outside the fold's stories) is first cross-predicted
over five grouped folds (weights and neighbours mixed as the service mixes them, before
calibration). A silver item whose label the others' model contradicts with confidence (a
topic it was given at p < LO, or one it was not given at p > HI) is dropped (MODE=drop) or has
those topics flipped (MODE=flip) before the fold's model is trained; the gold items, which
are what is scored, are never touched. Nothing of the test fold decides what is dropped.

    MODE=drop LO=0.05 HI=0.95 .venv/bin/python tests/experiments/train_screens/confident.py \
        eval --cv 5 tests/data/corpus/corpus.jsonl
"""

import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

import worker.tagging.train as T
from worker.cli import main

LO = float(os.environ.get("LO", "0.05"))
HI = float(os.environ.get("HI", "0.95"))
MODE = os.environ.get("MODE", "drop")
real_cv, real_oof, real_fit = T.cv_folds, T.oof_probs, T.fit_with


def cleaned(train: list[T.Example], extra: list[T.Example], topics: Sequence[str], c: float):
    probs = real_oof([*train, *extra], topics, 5, c)[len(train) :]
    given = np.array([[t in ex.topics for t in topics] for ex in extra], bool)
    miss, add = given & (probs < LO), ~given & (probs > HI)
    out = []
    for ex, m, a in zip(extra, miss, add, strict=True):
        if not (m.any() or a.any()):
            out.append(ex)
        elif MODE == "flip":
            gone = {t for t, x in zip(topics, m, strict=True) if x}
            new = {t for t, x in zip(topics, a, strict=True) if x}
            out.append(dataclasses.replace(ex, topics=frozenset((set(ex.topics) - gone) | new)))
    flagged = int((miss | add).any(axis=1).sum())
    print(
        f"silver {len(extra)}: {flagged} items flagged ({int(miss.sum())} topics given under "
        f"{LO}, {int(add.sum())} not given over {HI}); {MODE}",
        file=sys.stderr,
    )
    return out


def cv_folds(examples: Sequence[T.Example], topics: Sequence[str], *args: Any, **kw: Any):
    current: dict[str, Any] = {"train": None, "extra": None}

    def oof(train, topics_, inner, c, extra=()):  # the outer fold's inner cross-validation
        current["train"], current["extra"] = train, cleaned(train, list(extra), topics_, c)
        return real_oof(train, topics_, inner, c, current["extra"])

    def fit_with(train, extra, held_out, topics_, c):  # the outer fold's own model
        return real_fit(
            train, current["extra"] if train is current["train"] else extra, held_out, topics_, c
        )

    T.oof_probs, T.fit_with = oof, fit_with
    try:
        return real_cv(examples, topics, *args, **kw)
    finally:
        T.oof_probs, T.fit_with = real_oof, real_fit


T.cv_folds = cv_folds

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
