"""Screen (session 20): an article-level combination of a long article's window scores,
learnt from labelled long articles, against the rules alone and the windows opt-in.

    .venv/bin/python tests/experiments/article_combiner/combine.py TRAIN.npz [...] \
        [--test NAME=FILE.npz ...]

The npz files are ``features.py``'s. Per article and topic the features are what the
tagger knows after reading every three-sentence window (``FEATURES``); one logistic
regression over all topics' rows (pooled: a few hundred articles hold too few positives of a
topic for a model of its own). Choices are made by grouped cross-validation on the training
files only; ``--test`` scores the chosen one on other files once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

EPS = 1e-3


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


FEATURES = {
    "rules": "the tagger's topic as it tags now (rules alone on a long text)",
    "rule_score": "the rules' score of the topic (0 without evidence)",
    "max": "logit of the highest window score (neighbours asked)",
    "second": "logit of the second highest window score",
    "first": "logit of the first window's score (with the title)",
    "share": "share of windows at or over the topic's threshold",
    "mean": "logit of the mean window score",
    "max_plain": "the same five by the weights alone (no encoder)",
    "second_plain": "",
    "first_plain": "",
    "share_plain": "",
    "mean_plain": "",
    "n": "log of the number of windows",
    "threshold": "logit of the topic's threshold",
}
PLAIN = ["max_plain", "second_plain", "first_plain", "share_plain", "mean_plain"]
MIXED = ["max", "second", "first", "share", "mean"]
VARIANTS = {
    "weights alone (no encoder)": ["rules", "rule_score", *PLAIN, "n", "threshold"],
    "weights alone, max only": ["rules", "rule_score", "max_plain", "n", "threshold"],
    "neighbours on every window": ["rules", "rule_score", *MIXED, "max_plain", "n", "threshold"],
}


def summary(m: np.ndarray, th: np.ndarray) -> list[np.ndarray]:
    t = m.shape[1]
    srt = np.sort(m, axis=0)
    second = srt[-2] if len(m) > 1 else np.full(t, EPS)
    return [
        logit(m.max(axis=0)),
        logit(second),
        logit(m[0]),
        (m >= th[None, :]).mean(axis=0),
        logit(m.mean(axis=0)),
    ]


class Set:
    def __init__(self, path: Path) -> None:
        z = np.load(path)
        self.name = path.stem
        self.ids, self.groups = z["ids"], z["groups"]
        self.gold, self.now = z["gold"].astype(bool), z["now"].astype(bool)
        self.topics, self.th = list(z["topics"]), z["thresholds"]
        cut = np.cumsum(z["lens"])[:-1]
        self.plain = np.split(z["plain"], cut)
        self.mixed = np.split(z["mixed"], np.cumsum(z["lens_mixed"])[:-1])
        n, t = self.gold.shape
        rows = []
        for i in range(n):
            m, q = self.mixed[i], self.plain[i]
            if len(m) == 0:
                m = np.zeros((1, t))
            if len(q) == 0:
                q = np.zeros((1, t))
            rows.append(
                np.stack(
                    [
                        self.now[i].astype(float),
                        np.minimum(z["rule_scores"][i], 3.0),
                        *summary(m, self.th),
                        *summary(q, self.th),
                        np.full(t, np.log(len(q))),
                        logit(self.th),
                    ],
                    axis=1,
                )
            )
        self.x = np.stack(rows)  # articles x topics x features
        self.seconds = z["seconds"]

    def windows_opt_in(self, margin: float = 0.2) -> np.ndarray:
        """The shipped opt-in's decision (approximately: every window's neighbours asked)."""
        lim = np.minimum(self.th + margin, 0.95)
        add = np.stack([(m >= lim[None, :]).any(axis=0) for m in self.mixed])
        return self.now | add


def micro(gold: np.ndarray, pred: np.ndarray) -> tuple[float, float, float, int, int, int]:
    tp = int((gold & pred).sum())
    fp = int((~gold & pred).sum())
    fn = int((gold & ~pred).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return f, p, r, tp, fp, fn


def fmt(gold: np.ndarray, pred: np.ndarray) -> str:
    f, p, r, tp, fp, fn = micro(gold, pred)
    return f"{f:.3f} (P {p:.3f}, R {r:.3f}; tp {tp}, fp {fp}, fn {fn})"


def columns(names: list[str]) -> list[int]:
    keys = list(FEATURES)
    return [keys.index(n) for n in names]


def fit(x: np.ndarray, y: np.ndarray, cols: list[int], c: float) -> LogisticRegression:
    flat = x[:, :, cols].reshape(-1, len(cols))
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit(flat, y.reshape(-1))
    return lr


def prob(lr: LogisticRegression, x: np.ndarray, cols: list[int]) -> np.ndarray:
    n, t = x.shape[:2]
    return lr.predict_proba(x[:, :, cols].reshape(-1, len(cols)))[:, 1].reshape(n, t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train", nargs="+", type=Path)
    ap.add_argument("--test", nargs="*", type=Path, default=[])
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    train = [Set(p) for p in args.train]
    x = np.concatenate([s.x for s in train])
    y = np.concatenate([s.gold for s in train])
    now = np.concatenate([s.now for s in train])
    groups = np.concatenate([s.groups for s in train])
    opt = np.concatenate([s.windows_opt_in() for s in train])
    score_col = list(FEATURES).index("rule_score")
    print(f"training: {len(x)} long articles, {int(y.sum())} gold topics")
    print("  rules alone (as tagged before model 1.9):", fmt(y, now))
    print("  windows opt-in (margin 0.2, neighbours on every window):", fmt(y, opt))
    taus = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]
    gkf = GroupKFold(n_splits=args.folds)
    tests = [Set(p) for p in args.test]
    for vname, names in VARIANTS.items():
        cols = columns(names)
        for evidence in (True, False):
            best = None
            for c in (0.1, 1.0, 10.0):
                oof = np.zeros(y.shape)
                for tr, te in gkf.split(x, groups=groups):
                    oof[te] = prob(fit(x[tr], y[tr], cols, c), x[te], cols)
                may = x[:, :, score_col] > 0 if evidence else np.ones_like(now)
                for tau in taus:
                    f = micro(y, now | ((oof >= tau) & may))[0]
                    if best is None or f > best[0] + 1e-12:
                        best = (f, c, tau)
            assert best is not None
            f, c, tau = best
            label = f"{vname}, {'a rules term needed' if evidence else 'any topic'}"
            print(f"  {label}: C {c}, threshold {tau}: cross-validated {f:.3f}")
            lr = fit(x, y, cols, c)
            for s in tests:
                p = prob(lr, s.x, cols)
                may = s.x[:, :, score_col] > 0 if evidence else np.ones_like(s.now)
                print(f"    test {s.name}: {fmt(s.gold, s.now | ((p >= tau) & may))}")
    for s in tests:
        print(
            f"test {s.name}: {len(s.x)} long articles, {int(s.gold.sum())} gold topics; "
            f"rules alone {fmt(s.gold, s.now)}; windows opt-in {fmt(s.gold, s.windows_opt_in())}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
