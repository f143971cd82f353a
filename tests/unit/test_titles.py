"""Titles (issue 10, item 7): the outlet's name glued to the title goes, and the page's own
headline wins over a social-media title that only dresses it up."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from worker.clean import clean_html
from worker.clean.html import pick_title

PAGES = Path(__file__).resolve().parents[2] / "tests" / "data" / "pages"


@pytest.mark.parametrize(
    ("title", "headline", "names", "url", "want"),
    [
        ("Floods cut off Maseru villages - Lesotho Times", None, ["Lesotho Times"], None,
         "Floods cut off Maseru villages"),
        ("Taxi strike ends in Durban | Eyethu News", None, [], "https://www.eyethunews.co.za/x",
         "Taxi strike ends in Durban | Eyethu News"),  # no known name: kept as it is
        ("Taxi strike ends in Durban | Eyethu News", None, ["Eyethu News"], None,
         "Taxi strike ends in Durban"),
        ("Geingob meets Ramaphosa - The Namibian", None, ["The Namibian"], None,
         "Geingob meets Ramaphosa"),
        ("CNET.de - So schützen Sie Ihre Daten", None, ["CNET"], None,
         "So schützen Sie Ihre Daten"),
        ("Die Insel der Klosterzöglinge – kath.ch", None, [], "https://www.kath.ch/a",
         "Die Insel der Klosterzöglinge"),
        ("Infant Abandonment Cases In India: Newborns left in dustbins, drains",
         "Newborns left in dustbins, drains", [], None, "Newborns left in dustbins, drains"),
        # a headline that is not part of the title is not taken blindly
        ("Russia and Ukraine swap prisoners", "Latest news", [], None,
         "Russia and Ukraine swap prisoners"),
        # the outlet's name alone is never the title
        ("Reuters", None, ["Reuters"], None, "Reuters"),
        (None, "Headline only here", [], None, None),
        # The Guardian's og:title glues the byline on; the <h1> is the headline
        ("'What is the sea telling us?': Māori tribes fearful over whale strandings | "
         "Eleanor Ainge Roy",
         "'What is the sea telling us?': Māori tribes fearful over whale strandings",
         ["The Guardian"], "https://www.theguardian.com/world/2019/jan/03/x",
         "'What is the sea telling us?': Māori tribes fearful over whale strandings"),
    ],
)  # fmt: skip
def test_pick_title(title, headline, names, url, want) -> None:
    assert pick_title(title, headline, names, url) == want


def _key(s: str | None) -> str:
    return " ".join(re.findall(r"\w+", (s or "").casefold()))


def test_real_pages_keep_their_headlines() -> None:
    """Mozilla Readability's test pages (tests/data/pages): the title is the page's headline
    on every one."""
    pages = sorted(PAGES.glob("*.html"))
    assert len(pages) >= 13, PAGES
    for page in pages:
        want = json.loads(page.with_suffix("").with_suffix(".expected-metadata.json").read_text())[
            "title"
        ]
        got = clean_html(page.read_text(encoding="utf-8", errors="replace"), None).title
        assert _key(got) == _key(want), (page.stem, got, want)
