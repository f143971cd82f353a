"""Screen (session 17): what the model would add to the dev set's long articles if it read
every three-sentence window of them (the first with the title), which it does not: since
model 1.8 a text of more than 8 sentences is the rules' alone.

    .venv/bin/python tests/experiments/long_windows/windows.py

The dev set is a *dev* set: the rules were tuned on it, and every margin below is chosen on
it, so these figures show what such a reading could do at best, not what it would do on
unseen articles. For each policy it prints topics micro-F1 of the rules + model 1.8 as they
tag now, plus the topics the windows add (and what the encoder would cost).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import worker.tagging.model as model_module
from worker.evaluate import parse_date
from worker.tagging.model import LONGEST_TEXT
from worker.tagging.tagger import Tagger
from worker.tagging.text import sentence_starts

ROOT = Path(__file__).resolve().parents[3]
DEV = ROOT / "tests" / "data" / "diplomacy-dev.jsonl"
WINDOW = 3


def windows(text: str) -> list[tuple[int, int]]:
    st = sentence_starts(text)
    ends = [*st[1:], len(text)]
    return [(st[i], ends[min(i + WINDOW, len(st)) - 1]) for i in range(0, len(st), WINDOW)]


def read_windows(tagger: Tagger, rows: list[dict], neighbours: bool) -> tuple[list, float]:
    """Per long article (more than LONGEST_TEXT sentences), the model's calibrated score of
    every topic in every window (windows x topics); None for the others. And the seconds."""
    orig = model_module.TopicModel._asks_neighbours
    if not neighbours:
        model_module.TopicModel._asks_neighbours = lambda self, window, lead: False  # type: ignore[method-assign]
    topics = tagger.model.topics  # type: ignore[union-attr]
    out: list = []
    t0 = time.perf_counter()
    try:
        for r in rows:
            text = r.get("text") or ""
            if len(sentence_starts(text, LONGEST_TEXT + 1)) <= LONGEST_TEXT:
                out.append(None)
                continue
            scores = []
            for i, (a, b) in enumerate(windows(text)):
                title = r.get("title") if i == 0 else None
                res = tagger.tag(title, text[a:b], parse_date(r.get("date")))
                ms = res.model_scores or {}
                scores.append([ms.get(t, 0.0) for t in topics])
            out.append(np.asarray(scores))
    finally:
        model_module.TopicModel._asks_neighbours = orig  # type: ignore[method-assign]
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "file", nargs="?", type=Path, default=DEV, help="labelled JSON lines (default: the dev set)"
    )
    args = ap.parse_args()
    tagger = Tagger.from_config_dir(ROOT / "configs")
    model = tagger.model
    assert model is not None
    topics, th = model.topics, model.thresholds
    rows = [json.loads(line) for line in args.file.read_text(encoding="utf-8").splitlines() if line]
    gold = [set(r["topics"]) for r in rows]
    now = [
        {
            t.id
            for t in tagger.tag(
                r.get("title"), r.get("text") or "", parse_date(r.get("date"))
            ).topics
        }
        for r in rows
    ]
    with_nb, t_nb = read_windows(tagger, rows, True)
    plain, t_plain = read_windows(tagger, rows, False)
    n_windows = sum(len(w) for w in plain if w is not None)
    n_long = sum(w is not None for w in plain)
    print(
        f"{n_long} long articles, {n_windows} windows; reading them: {t_plain:.1f} s with the "
        f"weights alone, {t_nb:.1f} s with the neighbours too (one thread, this machine)"
    )

    def f1(add: Callable[[int, np.ndarray, np.ndarray], set[str]],
           drop: Callable[[int, np.ndarray], set[str]] | None = None) -> str:  # fmt: skip
        tp = fp = fn = 0
        for i, (g, p0) in enumerate(zip(gold, now, strict=True)):
            p = set(p0)
            if with_nb[i] is not None and len(with_nb[i]):
                p |= add(i, with_nb[i], plain[i])
                if drop is not None:
                    p -= drop(i, with_nb[i])
            tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
        return f"{2 * tp / (2 * tp + fp + fn):.3f} (tp {tp}, fp {fp}, fn {fn})"

    def over(w: np.ndarray, m: float, need: int = 1) -> set[str]:
        return {t for j, t in enumerate(topics) if (w[:, j] >= min(0.95, th[j] + m)).sum() >= need}

    print("as tagged now (rules + model 1.8):", f1(lambda i, w, q: set()))
    for m in (0.0, 0.1, 0.2, 0.3, 0.4):
        any_nb = f1(lambda i, w, q, m=m: over(w, m))
        any_plain = f1(lambda i, w, q, m=m: over(q, m))
        two_nb = f1(lambda i, w, q, m=m: over(w, m, 2))
        first = f1(lambda i, w, q, m=m: over(w[:1], m))
        print(
            f"margin {m:.1f}: any window, neighbours {any_nb}; weights alone {any_plain}; "
            f"two windows, neighbours {two_nb}; the first window only {first}"
        )
    # the encoder asked only where the weights alone give an untagged topic at least `floor`
    for floor in (0.05, 0.1, 0.2, 0.3, 0.4, 0.5):
        for cap in (0, 1):
            calls = 0

            def gated(
                i: int, w: np.ndarray, q: np.ndarray, floor: float = floor, cap: int = cap
            ) -> set[str]:
                nonlocal calls
                untagged = np.array([t not in now[i] for t in topics])
                best = np.where(untagged[None, :], q, 0.0).max(axis=1)
                ask = best >= floor
                if cap and ask.sum() > cap:  # only the window(s) the weights rate highest
                    keep = np.argsort(-best, kind="stable")[:cap]
                    ask = np.zeros_like(ask)
                    ask[keep] = True
                calls += int(ask.sum())
                return over(np.where(ask[:, None], w, 0.0), 0.2)

            res = f1(gated)
            print(
                f"margin 0.2, the encoder asked where the weights give an untagged topic >= "
                f"{floor}{f' (at most {cap} window an article)' if cap else ''}: {res}; "
                f"{calls} of {n_windows} windows encoded"
            )
    for v in (0.005, 0.01, 0.05):

        def unsupported(i: int, w: np.ndarray, v: float = v) -> set[str]:
            return {t for j, t in enumerate(topics) if w[:, j].max() < v}

        print(
            f"a rules' tag dropped when no window gives it {v}: "
            f"{f1(lambda i, w, q: set(), unsupported)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
