"""Screen (session 17): each topic's threshold chosen for the micro-F1 over all topics
(coordinate ascent from the per-topic choice, three passes) instead of the topic's own best
F1, which is what ``train`` does. For calibrated probabilities the micro-F1 optimum puts every
topic's threshold near half the overall F1, so a weak topic's threshold should rise and a
strong one's fall. Runs the grouped cross-validation with the patch:

    .venv/bin/python tests/experiments/train_screens/micro_thresholds.py \
        eval --cv 5 tests/data/corpus/corpus.jsonl
"""

import sys
from collections.abc import Sequence

import numpy as np

import worker.tagging.train as T
from worker.cli import main

PASSES = 3
per_topic = T._best_thresholds


def micro_best(
    probs: np.ndarray, examples: Sequence[T.Example], topics: Sequence[str], combine: bool
) -> list[tuple[float, float]]:
    start = per_topic(probs, examples, topics, combine)
    if not combine:  # the model alone's thresholds (headline mode) stay as they are
        return start
    gold, rules = T.label_matrices(examples, topics)
    th = [s[0] for s in start]

    def counts(ti: int, t: float) -> np.ndarray:
        pred = rules[:, ti] | (probs[:, ti] >= t)
        g = gold[:, ti]
        return np.array([(pred & g).sum(), (pred & ~g).sum(), (~pred & g).sum()])

    cur = [counts(ti, t) for ti, t in enumerate(th)]
    for _ in range(PASSES):
        changed = False
        for ti in range(len(topics)):
            rest = sum(c for j, c in enumerate(cur) if j != ti)
            best_f, best_t = -1.0, th[ti]
            for t in T.THRESHOLD_GRID:
                tp, fp, fn = rest + counts(ti, t)
                f = 2 * tp / (2 * tp + fp + fn)
                if f > best_f + 1e-12 or (abs(f - best_f) <= 1e-12 and t == th[ti]):
                    best_f, best_t = f, t
            changed |= best_t != th[ti]
            th[ti], cur[ti] = best_t, counts(ti, best_t)
        if not changed:
            break
    print(f"thresholds for micro-F1: {dict(zip(topics, th, strict=True))}", file=sys.stderr)
    return [(t, s[1]) for t, s in zip(th, start, strict=True)]


T._best_thresholds = micro_best

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
