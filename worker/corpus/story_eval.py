"""Precision and recall of story and duplicate detection on the labelled pairs.

``python -m worker.corpus.story_eval [PAIRS.jsonl] [--json OUT]``

Each pair goes through the service's own story index (:mod:`worker.stories`, in memory,
fresh per pair): A is indexed first, then B, each with the topics and countries the service's
tagger gives it and its publication time; B is predicted *same story* when it lands in A's
story and *duplicate* when its ``duplicate_of`` is A. So the figures include the LSH
candidate step, not only the similarity rule. An item with no text beyond its headline is
given its headline as text (as a feed entry without a page is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PAIRS = ROOT / "tests" / "data" / "stories" / "pairs.jsonl"


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
            "tp": tp, "fp": fp, "fn": fn}  # fmt: skip


class _Clock:
    """The index's clock, set to the items' own time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def predict(pairs: list[dict[str, Any]], tagger: Any) -> list[tuple[bool, bool]]:
    from worker.stories import MemoryStoryBackend, StoryIndex

    out = []
    for pr in pairs:
        # the index's clock is the items' own time: it judges the window as it would have
        clock = _Clock()
        index = StoryIndex(MemoryStoryBackend(clock=clock))
        story_a = None
        first = min(filter(None, (_when(pr[s].get("time")) for s in "ab")), default=None)
        for side in ("a", "b"):
            it = pr[side]
            title, text = it.get("title"), it.get("text") or it.get("title") or ""
            published = _when(it.get("time")) or first
            clock.now = max(clock.now, published.timestamp() if published else 0.0)
            res = tagger.tag(title, text, published)
            got = await index.assign(
                it["id"],
                title,
                text,
                list(res.countries),
                [t.id for t in res.topics],
                published,
                now=clock.now,
            )
            if side == "a":
                story_a = got.story_id
            else:
                out.append((got.story_id == story_a, got.duplicate_of == it_a_id(pr)))
    return out


def it_a_id(pr: dict[str, Any]) -> str:
    return str(pr["a"]["id"])


def measure(pairs: list[dict[str, Any]], preds: list[tuple[bool, bool]]) -> dict[str, Any]:
    cells: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for pr, (same, dup) in zip(pairs, preds, strict=True):
        src = pr["a"]["source"] if pr["a"]["source"] == pr["b"]["source"] else "mixed"
        for scope in ("all", f"source:{src}", f"bin:{pr['bin']}"):
            for name, gold, pred in (
                ("same_story", pr["same_story"], same),
                ("duplicate", pr["duplicate"], dup),
            ):
                c = cells[scope][name]
                c[0] += gold and pred
                c[1] += pred and not gold
                c[2] += gold and not pred
    return {
        scope: {name: _prf(*c) for name, c in by.items()} for scope, by in sorted(cells.items())
    }


def format_table(results: dict[str, Any]) -> str:
    lines = [f"{'pairs':<34}{'':>4}same story P    R     F1   duplicate P    R     F1"]
    for scope, by in results.items():
        s, d = by["same_story"], by["duplicate"]
        lines.append(
            f"{scope:<38}{s['precision']:>8.3f} {s['recall']:>5.3f} {s['f1']:>5.3f}"
            f"{d['precision']:>15.3f} {d['recall']:>5.3f} {d['f1']:>5.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m worker.corpus.story_eval", description=__doc__)
    p.add_argument("pairs", type=Path, nargs="?", default=DEFAULT_PAIRS)
    p.add_argument("--json", type=Path, default=None, metavar="OUT")
    args = p.parse_args(argv)
    from worker.tagging import Tagger

    tagger = Tagger.from_config_dir(ROOT / "configs")
    pairs = [json.loads(x) for x in args.pairs.read_text("utf-8").splitlines() if x]
    preds = asyncio.run(predict(pairs, tagger))
    results = measure(pairs, preds)
    print(format_table(results), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
