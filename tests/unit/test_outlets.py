"""Leave-one-outlet-out (``python -m worker.tagging.outlets``): which outlet a feed file is."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.labels import read_by_id
from worker.tagging.outlets import MIN_OUTLET, item_outlet, outlet_of

SILVER = Path(__file__).resolve().parents[2] / "tests" / "data" / "corpus" / "silver.jsonl"


@pytest.mark.parametrize(
    ("feed", "outlet"),
    [
        ("laapy/reuters-bloomberg-news-rss-pool:data/feeds/bloomberg_politics.xml", "bloomberg"),
        ("data/feeds/bnn_bloomberg_discovery.xml", "bloomberg"),
        ("data/feeds/reuters_official_msn.xml", "reuters"),
        ("data/feeds/business_standard_discovery.xml", "business_standard"),
        ("data/feeds/yahoo_finance_global.xml", "yahoo_finance"),
        ("data/feeds/ft-home.xml", "ft"),
        ("data/feeds/wsj_world.xml", "wsj"),
        ("wsj_econ.xml", "wsj"),
    ],
)
def test_outlet_of_a_feed_file(feed: str, outlet: str) -> None:
    assert outlet_of(feed) == outlet


def test_the_training_feed_items_fall_into_enough_outlets() -> None:
    """The measurement needs outlets to leave out: every headline + summary training item names
    its feed, and at least ten outlets have enough items to be scored on their own."""
    outlets: Counter[str] = Counter()
    for line in SILVER.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("shape") == "headline+summary":
            outlets[outlet_of(r["meta"]["file"])] += 1
    assert sum(outlets.values()) >= 3000
    assert sum(1 for n in outlets.values() if n >= MIN_OUTLET) >= 10


def test_a_headline_item_s_outlet_is_its_page_s_domain() -> None:
    assert item_outlet({"meta": {"domain": "www.dw.com"}}) == "dw.com"
    assert item_outlet({"meta": {"file": "x/data/feeds/wsj_world.xml"}}) == "wsj"
    assert item_outlet({"meta": {"category": None}}) is None  # an event summary: no outlet


def test_restricting_to_a_sample_keeps_each_outlet_s_rows() -> None:
    from worker.tagging.outlets import _restrict

    rows = {"a": slice(0, 3), "b": slice(3, 5), "c": slice(5, 9)}
    # keep rows 1, 2 (a), none of b, 6 and 8 (c)
    assert _restrict(rows, [1, 2, 6, 8]) == {"a": slice(0, 2), "c": slice(2, 4)}


def test_the_feed_sample_is_its_adjudicated_annotations() -> None:
    """Provenance of ``tests/data/outlets/feed-sample.jsonl``: each item's labels are what its
    first (silver) and second annotators both chose, or the adjudicator's decision."""
    root = SILVER.parents[1] / "outlets"

    sample = read_by_id(root / "feed-sample.jsonl")
    ids = json.loads((root / "annotation" / "sample.json").read_text(encoding="utf-8"))["ids"]
    assert list(sample) == ids and len(ids) == 300
    silver = {i: r for i, r in read_by_id(SILVER).items() if i in sample}
    second = read_by_id(*sorted((root / "annotation" / "second").glob("*.jsonl")))
    asked = read_by_id(*sorted((root / "annotation" / "adjudication").glob("in-*.jsonl")))
    decided = read_by_id(*sorted((root / "annotation" / "adjudication").glob("out-*.jsonl")))
    assert set(second) == set(sample) and set(asked) == set(decided)
    for i, r in sample.items():
        first, other = silver[i], second[i]
        agree = set(first["topics"]) == set(other["topics"]) and set(first["countries"]) == set(
            other["countries"]
        )
        assert agree == (i not in decided), i
        src = other if agree else decided[i]
        assert r["topics"] == sorted(src["topics"]) and r["countries"] == sorted(src["countries"])
        assert first["shape"] == "headline+summary" and r["first"] == first["labels"]
