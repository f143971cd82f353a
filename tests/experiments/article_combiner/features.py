"""Read labelled long articles by windows and keep what an article-level combination needs
(session 20): per article the rules' topics and scores (a long text's tags before model
1.9), every three-sentence window's calibrated score by the weights alone as the article
reading read them (``window_scores``, as ``TopicModel._windows`` cuts and reads windows), and
each window's score with the neighbours asked (the window tagged as a short item).

    .venv/bin/python tests/experiments/article_combiner/features.py FILE [FILE ...]

Writes ``/tmp/article_combiner/<name>.npz`` per file (cached by the file's and the model's
digest), which ``combine.py`` reads.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "experiments" / "long_windows"))

from windows import read_windows  # noqa: E402

from worker.evaluate import parse_date  # noqa: E402
from worker.tagging.model import (  # noqa: E402
    LONGEST_TEXT,
    WINDOW_SENTENCES,
    Mention,
    TopicModel,
    Window,
    tokens_of,
)
from worker.tagging.tagger import Tagger  # noqa: E402
from worker.tagging.text import sentence_starts  # noqa: E402

OUT = Path("/tmp/article_combiner")


def window_scores(
    model: TopicModel, title: str | None, text: str, mentions: list[Mention]
) -> np.ndarray:
    """Every window's calibrated score of every topic by the weights alone (windows x
    topics), the windows cut and read as the windows opt-in reads them
    (``TopicModel._windows``: the first with the title, the rules' mentions inside each)."""
    starts = sentence_starts(text)
    ends = [*starts[1:], len(text)]
    in_title = [m for m in mentions if m.field == "title"]
    in_text = [m for m in mentions if m.field != "title"]
    rows = []
    for k in range(0, len(starts), WINDOW_SENTENCES):
        a, b = starts[k], ends[min(k + WINDOW_SENTENCES, len(starts)) - 1]
        inside = [
            Mention(m.field, m.start - a, m.end - a, m.kind)
            for m in in_text
            if m.start >= a and m.end <= b
        ]
        wtitle = title if k == 0 and title else None
        if wtitle:
            inside = in_title + inside
        toks = (tokens_of("title", wtitle, inside) if wtitle else []) + tokens_of(
            "text", text[a:b], inside
        )
        if toks:
            probs, _, _ = model._weighed(Window(toks[0].field, tuple(toks), k), inside)
            rows.append(probs)
    if not rows:
        return np.zeros((0, len(model.topics)))
    return model._calibrated(np.stack(rows))


def cache_path(path: Path, tagger: Tagger) -> Path:
    h = hashlib.sha256(path.read_bytes())
    h.update(str(tagger.model.version).encode())  # type: ignore[union-attr]
    return OUT / f"{path.stem}-{h.hexdigest()[:10]}.npz"


def extract(path: Path, tagger: Tagger) -> Path:
    out = cache_path(path, tagger)
    if out.exists():
        return out
    OUT.mkdir(exist_ok=True)
    topics = tagger.model.topics  # type: ignore[union-attr]
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    rows = [
        r
        for r in rows
        if len(sentence_starts(r.get("text") or "", LONGEST_TEXT + 1)) > LONGEST_TEXT
    ]
    t0 = time.perf_counter()
    now, rule_scores, plain = [], [], []
    model = tagger.model
    assert model is not None
    for r in rows:  # the rules alone, and the windows as the article reading reads them
        res = tagger.tag(
            r.get("title"), r.get("text") or "", parse_date(r.get("date")), use_model=False
        )
        now.append([t in res.topic_ids for t in topics])
        rule_scores.append([res.scores.get(t, 0.0) for t in topics])
        plain.append(window_scores(model, r.get("title"), r.get("text") or "", res.mentions))
    t_plain = time.perf_counter() - t0
    # the neighbours asked on every window (each window tagged as a short item): information
    with_nb, t_nb = read_windows(tagger, rows, True)
    lens = [len(w) for w in plain]
    lens_mixed = [len(w) for w in with_nb]
    np.savez(
        out,
        ids=np.array([r["id"] for r in rows]),
        groups=np.array([str(r.get("group") or r["id"]) for r in rows]),
        gold=np.array([[t in r["topics"] for t in topics] for r in rows]),
        now=np.array(now),
        rule_scores=np.array(rule_scores),
        lens=np.array(lens),
        lens_mixed=np.array(lens_mixed),
        mixed=np.concatenate(with_nb) if with_nb else np.zeros((0, len(topics))),
        plain=np.concatenate(plain) if plain else np.zeros((0, len(topics))),
        topics=np.array(topics),
        thresholds=tagger.model.thresholds,  # type: ignore[union-attr]
        seconds=np.array([time.perf_counter() - t0, t_nb, t_plain]),
    )
    print(f"{path}: {len(rows)} long articles, {sum(lens)} windows -> {out}")
    return out


def main() -> int:
    tagger = Tagger.from_config_dir(ROOT / "configs")
    for f in sys.argv[1:]:
        extract(Path(f), tagger)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
