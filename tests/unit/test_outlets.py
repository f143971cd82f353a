"""Leave-one-outlet-out (``python -m worker.tagging.outlets``): which outlet a feed file is."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

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
