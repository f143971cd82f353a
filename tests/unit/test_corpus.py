"""The labelled corpus: its size and make-up, its provenance, and that its labels are exactly
what the two annotators and the adjudicator said (recomputed from their raw files)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from worker.corpus.merge import Run, cmd_final
from worker.corpus.sample import content_words, jaccard, norm_title

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = ROOT / "tests" / "data" / "corpus"
CORPUS = CORPUS_DIR / "corpus.jsonl"
RECORD = CORPUS_DIR / "annotation"
TOPICS = (
    "arms-control", "nonproliferation", "sanctions", "trade", "leader-contact", "negotiations",
    "pandemic", "armed-conflict", "peace-process", "alliances", "multilateral",
    "diplomatic-relations", "territorial-disputes",
)  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in CORPUS.read_text(encoding="utf-8").splitlines() if x]


def test_size_shapes_and_positives(rows: list[dict]) -> None:  # type: ignore[type-arg]
    assert len(rows) >= 3000
    assert len({r["id"] for r in rows}) == len(rows)
    shapes = Counter(r["shape"] for r in rows)
    assert shapes["headline"] >= 800
    assert shapes["headline+summary"] >= 300 and shapes["paragraph"] >= 800
    positives = Counter(t for r in rows for t in r["topics"])
    low = {t: positives[t] for t in TOPICS if positives[t] < 80}
    assert not low, f"topics with fewer than 80 positives: {low}"
    # the random strata keep the "no topic" majority of real news in
    assert sum(1 for r in rows if not r["topics"]) >= len(rows) // 4


def test_rows_are_well_formed(rows: list[dict]) -> None:  # type: ignore[type-arg]
    for r in rows:
        assert set(r["topics"]) <= set(TOPICS), r["id"]
        assert all(re.fullmatch(r"[A-Z]{2}", c) for c in r["countries"]), r["id"]
        assert r["labels"] in ("agreed", "adjudicated")
        assert r["group"].startswith("g-") and r["stratum"] and r["source"]
        if r["shape"] == "headline":
            assert r["title"] and not r["text"]
        elif r["shape"] == "paragraph":
            assert r["text"] and not r["title"]
        else:
            assert r["title"] and r["text"]
        # where each item came from
        if r["source"] == "wcep":
            assert r["meta"].get("outlets") is not None
        elif r["source"] == "headlines-2022":
            assert r["meta"]["url"].startswith("http")
        else:
            assert r["meta"]["file"] and r["meta"]["guid"]


def test_no_evaluation_item_is_in_the_corpus(rows: list[dict]) -> None:  # type: ignore[type-arg]
    """The dev set and the feed held-out set stay out of training, repeats included."""
    protected = []
    for path in (
        ROOT / "tests/data/diplomacy-dev.jsonl",
        ROOT / "tests/data/heldout/feeds-heldout.jsonl",
    ):
        protected += [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    titles = {norm_title(p["title"]) for p in protected if p.get("title")}
    words = [content_words(p["title"]) for p in protected if p.get("title")]
    for r in rows:
        if not r["title"]:
            continue
        assert norm_title(r["title"]) not in titles, r["id"]
        cw = content_words(r["title"])
        assert not any(jaccard(cw, w) >= 0.5 for w in words), r["id"]


def test_labels_are_the_annotators_and_adjudicators(rows: list[dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Recompute the corpus from the raw labels kept in annotation/: agreed labels where the
    two annotators agreed, the adjudicator's elsewhere; every batch read by two people."""
    run = Run(RECORD)
    for batch, who in run.assignment.items():
        assert len(who) == 2 and who[0] != who[1], batch
    out = tmp_path / "corpus.jsonl"
    assert cmd_final(run, out) == 0
    again = {r["id"]: r for r in (json.loads(x) for x in out.read_text("utf-8").splitlines())}
    assert set(again) == {r["id"] for r in rows}
    for r in rows:
        a = again[r["id"]]
        assert (a["topics"], a["countries"], a["labels"]) == (
            sorted(r["topics"]),
            sorted(r["countries"]),
            r["labels"],
        ), r["id"]
    agreement = json.loads((tmp_path / "agreement.json").read_text("utf-8"))
    kept = json.loads((CORPUS_DIR / "agreement.json").read_text("utf-8"))
    assert agreement["overall"] == kept["overall"]
    assert agreement["overall"]["topics_micro_f1"] >= 0.85


def test_provenance_is_kept() -> None:
    readme = (CORPUS_DIR / "README.md").read_text(encoding="utf-8")
    for needed in ("CC BY-SA", "agreement", "adjudicat", "python -m worker.corpus.sample"):
        assert needed in readme
    sampling = json.loads((CORPUS_DIR / "sampling.json").read_text(encoding="utf-8"))
    assert sampling["parts"] and all(p["strata"] for p in sampling["parts"])
    assert (RECORD / "annotator-prompt.txt").is_file()
    assert (RECORD / "adjudicator-prompt.txt").is_file()


# ----------------------------------------------------------------------- the silver set

SILVER = CORPUS_DIR / "silver.jsonl"
SILVER_RECORD = CORPUS_DIR / "annotation-silver"


@pytest.fixture(scope="module")
def silver() -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in SILVER.read_text(encoding="utf-8").splitlines() if x]


def test_silver_items_are_training_only_and_apart(silver: list[dict], rows: list[dict]) -> None:  # type: ignore[type-arg]
    """The one-annotator items never repeat a corpus item or an evaluation item."""
    assert len(silver) >= 3000
    corpus_ids = {r["id"] for r in rows}
    corpus_titles = {norm_title(r["title"]) for r in rows if r["title"]}
    assert not corpus_ids & {s["id"] for s in silver}
    assert not corpus_titles & {norm_title(s["title"]) for s in silver if s["title"]}
    protected = []
    for path in (
        ROOT / "tests/data/diplomacy-dev.jsonl",
        ROOT / "tests/data/heldout/feeds-heldout.jsonl",
    ):
        protected += [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]
    titles = {norm_title(p["title"]) for p in protected if p.get("title")}
    for s in silver:
        assert s["labels"].startswith("single:"), s["id"]
        assert set(s["topics"]) <= set(TOPICS), s["id"]
        if s["title"]:
            assert norm_title(s["title"]) not in titles, s["id"]


def test_silver_labels_are_the_annotators_and_measured_on_gold(
    silver: list[dict], tmp_path: Path
) -> None:  # type: ignore[type-arg]
    """Recompute the silver set from the raw labels kept in annotation-silver/: every label is
    its annotator's, and on the hidden control items the annotators agree with the corpus's
    adjudicated labels as the README says."""
    from worker.corpus.merge import cmd_silver

    out = tmp_path / "silver.jsonl"
    assert cmd_silver(SILVER_RECORD, CORPUS, out, None) == 0
    again = {r["id"]: r for r in (json.loads(x) for x in out.read_text("utf-8").splitlines())}
    assert set(again) == {s["id"] for s in silver}
    for s in silver:
        a = again[s["id"]]
        assert (a["topics"], a["countries"], a["labels"]) == (
            s["topics"],
            s["countries"],
            s["labels"],
        ), s["id"]
    report = json.loads((tmp_path / "silver.json").read_text("utf-8"))
    kept = json.loads((CORPUS_DIR / "silver.json").read_text("utf-8"))
    assert report["control_vs_gold"] == kept["control_vs_gold"]
    assert report["control_vs_gold"]["items"] >= 500
    assert report["control_vs_gold"]["topics_micro_f1"] >= 0.9


def test_uncertain_strata_pick_what_the_model_is_unsure_of() -> None:
    import math

    from worker.corpus.sample import uncertain_strata
    from worker.tagging import Tagger

    texts = [
        "Minsk orders the Lithuanian ambassador out within 72 hours after a spy row.",
        "The two governments restore full diplomatic relations and reopen embassies.",
        "Heavy rain floods the city centre; schools stay closed on Monday.",
        "China expresses its resolute opposition to North Korea's nuclear test.",
        "The football club signs a new striker from Brazil.",
    ]
    pool = {"wcep": [{"id": f"w{i}", "title": None, "text": t} for i, t in enumerate(texts)]}
    [st] = uncertain_strata(pool, ["diplomatic-relations=3"], band=1.0, quota=9)
    assert st.name == "wcep:uncertain:diplomatic-relations" and st.quota == 3
    model = Tagger.from_config_dir(Path("configs")).model
    assert model is not None and model.version in st.rule
    th = dict(zip(model.topics, model.thresholds.tolist(), strict=True))["diplomatic-relations"]
    tagger = Tagger.from_config_dir(Path("configs"))

    def logit(p: float) -> float:
        p = min(max(p, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    picked = []
    for it in pool["wcep"]:
        p = tagger.tag(None, it["text"]).model_scores["diplomatic-relations"]
        assert st.pick(it) == (abs(logit(p) - logit(th)) <= 1.0), (it["text"], p)
        picked.append(st.pick(it))
    # the sure ones (relations restored; floods, football) are not read; a wide band takes all
    assert not any(picked[1:3]) and not picked[4]
    [wide] = uncertain_strata(pool, ["diplomatic-relations"], band=50.0, quota=9)
    assert all(wide.pick(it) for it in pool["wcep"]) and wide.quota == 9
    with pytest.raises(SystemExit, match="unknown topics"):
        uncertain_strata(pool, ["diplomacy"], band=1.0, quota=1)
