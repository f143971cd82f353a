"""The labelled story / duplicate pairs: their make-up, and that the labels are exactly what
the two annotators and the adjudicator said (recomputed from the raw files)."""

from __future__ import annotations

import json
from pathlib import Path

from worker.corpus.pairs import PairRun, cmd_final

DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "stories"


def _rows(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def test_pairs_make_up() -> None:
    rows = _rows(DIR / "pairs.jsonl")
    assert len(rows) >= 1000
    assert len({r["pair"] for r in rows}) == len(rows)
    same = sum(r["same_story"] for r in rows)
    dup = sum(r["duplicate"] for r in rows)
    assert 0.25 * len(rows) < same < 0.75 * len(rows)  # both answers well represented
    assert dup >= 30
    assert all(r["same_story"] for r in rows if r["duplicate"])  # a duplicate is one story
    for r in rows:
        assert r["a"]["id"] != r["b"]["id"]
        assert r["labels"] in ("agreed", "adjudicated")


def test_labels_are_the_annotators_and_adjudicators(tmp_path: Path) -> None:
    record = DIR / "annotation"
    run = PairRun(record)
    for batch, who in run.assignment.items():
        assert len(who) == 2 and who[0] != who[1], batch
    out = tmp_path / "pairs.jsonl"
    assert cmd_final(run, DIR / "pairs.jsonl", out) == 0
    kept = {r["pair"]: r for r in _rows(DIR / "pairs.jsonl")}
    again = {r["pair"]: r for r in _rows(out)}
    assert again == kept
    agreement = json.loads((tmp_path / "pairs-agreement.json").read_text("utf-8"))
    stored = json.loads((DIR / "pairs-agreement.json").read_text("utf-8"))
    assert agreement["same_story"] == stored["same_story"]
    assert agreement["same_story"]["kappa"] >= 0.8
