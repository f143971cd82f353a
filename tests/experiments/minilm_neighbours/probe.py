"""Screen (session 11, model 1.7): a logistic regression per topic on the sentence embedding
(a "probe"), mixed with the model's out-of-fold probabilities (weights + neighbours).

Grouped 5-fold out-of-fold probabilities of both, mixed at several weights, calibrated, and
scored with per-topic thresholds chosen on the same out-of-fold probabilities (optimistic
alike for every weight): the model alone, and rules-or-model. ``python probe.py [C]``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from worker.tagging import Tagger
from worker.tagging.encoder import EMBEDDING_SCALE
from worker.tagging.train import (
    DEFAULT_C,
    DEFAULT_CORPUS,
    Example,
    apply_calibration,
    calibrate,
    choose_thresholds,
    default_extra,
    fit_with,
    group_folds,
    predict,
    prepare,
    read_corpus,
    with_extra,
)

ROOT = Path(__file__).resolve().parents[3]


def f1(tp: int, fp: int, fn: int) -> float:
    return round(2 * tp / (2 * tp + fp + fn), 4)


def micro(
    probs: np.ndarray, ex: list[Example], topics: list[str], combine: bool
) -> tuple[float, dict[str, float]]:
    th = choose_thresholds(probs, ex, topics, combine=combine)
    total = [0, 0, 0]
    shapes: dict[str, list[int]] = {}
    for i, e in enumerate(ex):
        pred = {t for k, t in enumerate(topics) if probs[i, k] >= th[k]}
        if combine:
            pred |= set(e.rule_topics)
        counts = (len(pred & e.topics), len(pred - e.topics), len(e.topics - pred))
        s = shapes.setdefault(e.shape, [0, 0, 0])
        for j, n in enumerate(counts):
            total[j] += n
            s[j] += n
    return f1(*total), {k: f1(*v) for k, v in shapes.items()}


def main() -> None:
    c_probe = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    tagger = Tagger.from_config_dir(ROOT / "configs", model=False)
    topics = list(tagger.topics)
    ex = prepare(read_corpus(DEFAULT_CORPUS), tagger)
    extra_path = default_extra(DEFAULT_CORPUS)
    extra = prepare(read_corpus(extra_path), tagger) if extra_path else []
    unit = 127.0 * EMBEDDING_SCALE
    folds = group_folds([e.group for e in ex], 5)
    p = np.zeros((len(ex), len(topics)))
    q = np.zeros_like(p)
    t0 = time.time()
    for f in range(5):
        train = [e for e, g in zip(ex, folds, strict=True) if g != f]
        idx = [i for i, g in enumerate(folds) if g == f]
        test = [ex[i] for i in idx]
        p[idx] = predict(fit_with(train, extra, test, topics, DEFAULT_C), test)
        items, _ = with_extra(train, extra, test)
        x = np.vstack([e.vector for e in items]).astype(np.float32) / unit
        xt = np.vstack([e.vector for e in test]).astype(np.float32) / unit
        for k, t in enumerate(topics):
            y = np.array([t in e.topics for e in items], int)
            clf = LogisticRegression(C=c_probe, max_iter=2000).fit(x, y)
            q[idx, k] = clf.predict_proba(xt)[:, 1]
        print(f"fold {f}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    for w in (0.0, 0.15, 0.3, 0.45, 0.6, 1.0):
        m = (1 - w) * p + w * q
        m = apply_calibration(m, calibrate(m, ex, topics))
        alone, union = micro(m, ex, topics, False), micro(m, ex, topics, True)
        print(f"C={c_probe} w={w}: alone {alone}  union {union}", flush=True)


if __name__ == "__main__":
    main()
