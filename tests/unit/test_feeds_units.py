"""Feeds without services: feeds.yaml validation, schedule arithmetic, entry identity,
safe parsing of the real snapshots and of hostile documents, entries to raw records."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from worker.settings import ROOT, Settings
from worker.sources.feedparse import (
    FeedParseError,
    content_hash,
    entry_identity,
    parse_feed,
)
from worker.sources.feeds import (
    FeedConfig,
    FeedsConfigError,
    adhoc_feed,
    backoff_delay,
    build_record,
    cache_hints,
    compute_interval,
    is_due,
    jittered,
    load_feeds,
    parse_duration,
    select_feeds,
)
from worker.sources.feedstate import FeedState

DATA = Path(__file__).resolve().parents[1] / "data" / "feeds"
URL = "https://feeds.example.org/rss.xml"
# node-feedparser's test feeds (tests/data/feeds/odd/README.md): entries per feed
ODD_FEEDS = {
    "wapowellness.xml": 29,
    "tpm.atom": 20,
    "tpm-with-empty-base.atom": 20,
    "tpm-with-fragment-base.atom": 20,
    "iconv.xml": 10,
    "saxerror.xml": 3,
}


def snapshot(name: str) -> bytes:
    return (DATA / f"{name}.xml").read_bytes()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- feeds.yaml ---------------------------------------------------------------------------


def test_load_feeds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
feeds:
  - name: un-news
    url: https://news.un.org/feed/subscribe/en/news/all/rss.xml
    interval: 15m
    labels: {org: UN, priority: 1}
  - name: state.press
    url: "https://www.state.gov/rss-feed/press-releases/feed/"
    interval: 600
  - name: plain
    url: http://example.org/feed
""",
    )
    feeds = load_feeds(path)
    assert [f.name for f in feeds] == ["un-news", "state.press", "plain"]
    assert [f.interval_s for f in feeds] == [900.0, 600.0, None]
    assert feeds[0].labels == {"org": "UN", "priority": "1"}
    assert feeds[2].labels == {}


def test_the_shipped_feeds_yaml_is_valid() -> None:
    feeds = load_feeds(ROOT / "configs" / "feeds.yaml")
    assert len(feeds) >= 3
    assert all(f.url.startswith("https://") for f in feeds)


def test_an_empty_file_means_no_feeds(tmp_path: Path) -> None:
    assert load_feeds(write(tmp_path, "")) == []
    assert load_feeds(write(tmp_path, "feeds: []\n")) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "feeds:\n  - {name: un, url: 'https://a.org/1'}\n  - {name: un, url: 'https://a.org/2'}",
            "feeds[1] ('un'): duplicate name 'un' (also feeds[0])",
        ),
        (
            "feeds:\n  - {name: a, url: 'https://a.org/1'}\n  - {name: b, url: 'https://a.org/1'}",
            "feeds[1] ('b'): same url as feed 'a'",
        ),
        ("feeds:\n  - {name: a, url: 'ftp://a.org/feed'}", "url: must be an http or https URL"),
        ("feeds:\n  - {name: a, url: 'https:///feed'}", "url: has no host"),
        ("feeds:\n  - {name: a}", "feeds[0] ('a'): url: Field required"),
        ("feeds:\n  - {url: 'https://a.org/'}", "feeds[0]: name: Field required"),
        (
            "feeds:\n  - {name: a, url: 'https://a.org/', interval: soon}",
            "interval: not a duration",
        ),
        ("feeds:\n  - {name: a, url: 'https://a.org/', interval: 0}", "interval: must be positive"),
        ("feeds:\n  - {name: a, url: 'https://a.org/', intervall: 5m}", "intervall: Extra inputs"),
        ("feeds:\n  - {name: 'un news', url: 'https://a.org/'}", "name: must be 1-100 letters"),
        ("feeds:\n  - {name: 'a:b', url: 'https://a.org/'}", "name: must be 1-100 letters"),
        ("feeds:\n  - {name: a, url: 'https://a.org/', labels: [x]}", "labels: must be a mapping"),
        ("feeds:\n  - {name: a, url: 'https://a.org/', labels: {x: [1]}}", "label 'x'"),
        ("feeds:\n  - just-a-string", "feeds[0]: must be a mapping with name and url"),
        ("feeds: {name: a}", "'feeds' must be a list"),
        ("- name: a", "the top level must be a mapping"),
        ("feeds: []\nfeed: []", "unknown top-level key 'feed'"),
        ("feeds:\n  - {name: a, url: [", "not valid YAML"),
    ],
)
def test_feeds_yaml_errors_are_clear(tmp_path: Path, body: str, expected: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(FeedsConfigError) as info:
        load_feeds(path)
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds:\n"
        "  - {name: a, url: 'ftp://x'}\n"
        "  - {name: b, url: 'https://b.org/', interval: -1}\n"
        "  - {name: c, url: 'https://c.org/'}\n",
    )
    with pytest.raises(FeedsConfigError) as info:
        load_feeds(path)
    assert len(info.value.problems) == 2
    assert "2 problems" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FeedsConfigError, match="file not found"):
        load_feeds(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(900, 900.0), (1.5, 1.5), ("900", 900.0), ("90s", 90.0), ("15m", 900.0), ("1h30m", 5400.0),
     ("2h", 7200.0), ("1d", 86400.0), (" 15 m ", 900.0)],
)  # fmt: skip
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "soon", "15x", "m", "-5m", 0, -1, True, None, [1]])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_adhoc_feeds_are_named_by_host_and_url() -> None:
    feed = adhoc_feed("https://News.UN.org/feed/subscribe/en/news/all/rss.xml")
    assert re.fullmatch(r"news\.un\.org-[0-9a-f]{8}", feed.name) and feed.interval_s is None
    # the digest is of the canonical URL: another spelling of it is the same feed
    assert adhoc_feed("https://news.un.org/feed/subscribe/en/news/all/rss.xml#x").name == feed.name
    a, b = adhoc_feed("http://127.0.0.1:8080/a.xml"), adhoc_feed("http://127.0.0.1:8080/b.xml")
    assert a.name.startswith("127.0.0.1-") and b.name.startswith("127.0.0.1-") and a.name != b.name
    # a configured feed with that name: a longer digest, still from the URL alone
    longer = adhoc_feed("http://127.0.0.1:8080/a.xml", taken={a.name}).name
    assert longer.startswith(a.name) and len(longer) == len(a.name) + 8
    assert re.fullmatch(r"1-[0-9a-f]{8}", adhoc_feed("http://[::1]:8080/a.xml").name)
    with pytest.raises(FeedsConfigError, match="http or https"):
        adhoc_feed("file:///etc/passwd")


def test_an_adhoc_feed_keeps_its_name_whatever_is_polled_with_it(tmp_path: Path) -> None:
    # the name keys the feed's seen entries: by position, the same URLs in another order
    # took each other's seen entries and everything was published again
    settings = Settings(feeds_file=tmp_path / "absent.yaml")
    urls = [f"http://127.0.0.1:8080/feeds/{name}" for name in ODD_FEEDS]
    names = {f.url: f.name for f in select_feeds(settings, urls)}
    assert len(set(names.values())) == len(urls)
    for refs in (urls[::-1], urls[3:], [urls[4], urls[0]], urls[2:] + urls[:2]):
        assert {f.url: f.name for f in select_feeds(settings, refs)} == {u: names[u] for u in refs}


def test_select_feeds_by_name_or_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "feeds:\n  - {name: un, url: 'https://un.org/rss'}\n  - {name: fp, url: 'https://fp.com/feed'}\n",
    )
    settings = Settings(feeds_file=path)
    assert [f.name for f in select_feeds(settings, [])] == ["un", "fp"]
    assert [f.name for f in select_feeds(settings, ["fp"])] == ["fp"]
    assert [f.name for f in select_feeds(settings, ["https://un.org/rss"])] == ["un"]
    picked = select_feeds(settings, ["https://other.org/a", "https://other.org/b", "un"])
    assert [f.name for f in picked] == [
        adhoc_feed("https://other.org/a").name,
        adhoc_feed("https://other.org/b").name,
        "un",
    ]
    # a configured feed's URL in another spelling is that feed; a feed given twice is one
    assert [f.name for f in select_feeds(settings, ["HTTPS://UN.org/rss", "un", "fp"])] == [
        "un",
        "fp",
    ]
    with pytest.raises(FeedsConfigError, match=r"unknown feed 'nope' \(configured: fp, un\)"):
        select_feeds(settings, ["nope"])


def test_select_feeds_without_a_feeds_file(tmp_path: Path) -> None:
    settings = Settings(feeds_file=tmp_path / "absent.yaml")
    [feed] = select_feeds(settings, ["https://un.org/rss"])
    assert feed.name == adhoc_feed("https://un.org/rss").name and feed.name.startswith("un.org-")
    with pytest.raises(FeedsConfigError, match="file not found"):
        select_feeds(settings, [])


# --- schedule -------------------------------------------------------------------------------


def interval(configured: float | None = None, *hints: float | None) -> float:
    return compute_interval(
        configured=configured, default=900, min_interval=60, max_interval=6 * 3600, hints=hints
    )


def test_compute_interval() -> None:
    assert interval() == 900  # the default
    assert interval(300) == 300  # the feed's own
    assert interval(300, 1800) == 1800  # raised by a hint (e.g. <ttl>30</ttl>)
    assert interval(None, 120, None) == 900  # a shorter hint does not speed polling up
    assert interval(10) == 60  # never below the minimum
    assert interval(None, 86400 * 7) == 6 * 3600  # a hint is capped ...
    assert interval(86400) == 86400  # ... but the configured interval is not


def test_cache_hints() -> None:
    now = time.time()
    assert cache_hints({"Cache-Control": "public, max-age=1800"}, now) == (1800.0, None)
    assert cache_hints({"Cache-Control": "max-age=1800", "Age": "600"}, now) == (1200.0, None)
    assert cache_hints({"Cache-Control": "no-cache, max-age=1800"}, now) == (None, None)
    assert cache_hints({"Cache-Control": "max-age=0"}, now) == (None, None)
    assert cache_hints({"Cache-Control": "max-age=soon"}, now) == (None, None)
    dated = {"Date": "Sat, 19 Apr 2025 11:00:00 GMT", "Expires": "Sat, 19 Apr 2025 12:00:00 GMT"}
    assert cache_hints(dated, now) == (None, 3600.0)
    assert cache_hints({**dated, "Cache-Control": "max-age=60"}, now) == (60.0, None)
    assert cache_hints({"Expires": "0"}, now) == (None, None)
    assert cache_hints({}, now) == (None, None)


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, base=60, cap=3600) for n in range(1, 10)]
    assert delays[:4] == [60, 120, 240, 480]
    assert delays[-1] == 3600 and max(delays) == 3600
    assert backoff_delay(10_000, base=60, cap=3600) == 3600  # no overflow, never "stop"


def test_jitter_stays_within_ten_percent_and_spreads() -> None:
    rng = random.Random(7)
    values = [jittered(1000, rng) for _ in range(500)]
    assert all(900 <= v <= 1100 for v in values)
    assert min(values) < 950 and max(values) > 1050


def test_is_due() -> None:
    feed = FeedConfig(name="a", url="https://a.org/")
    assert is_due(feed, FeedState(name="a"), 1000)  # never polled
    assert not is_due(feed, FeedState(name="a", config_url=feed.url, next_poll_at=2000), 1000)
    assert is_due(feed, FeedState(name="a", config_url=feed.url, next_poll_at=999), 1000)
    moved = FeedState(name="a", config_url="https://old.org/", next_poll_at=2000)
    assert is_due(feed, moved, 1000)  # its URL changed in feeds.yaml


# --- identity -------------------------------------------------------------------------------


def test_entry_identity_prefers_the_guid() -> None:
    assert entry_identity(" guid-1 ", "https://a.org/x", "t", "s") == "guid-1"


def test_entry_identity_falls_back_to_the_canonical_link() -> None:
    a = entry_identity(None, "https://a.org/story?b=2&a=1#comments", "t", "s")
    b = entry_identity("", "https://a.org/story?a=1&b=2", "other title", "other")
    assert a == b == "https://a.org/story?a=1&b=2"


def test_entry_identity_falls_back_to_a_hash_of_title_and_summary() -> None:
    one = entry_identity(None, None, "Talks resume", "Delegations met in Geneva")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", one)
    assert one == entry_identity("  ", "", "Talks resume", "Delegations met in Geneva")
    assert one != entry_identity(None, None, "Talks resume", "Delegations met in Vienna")


def test_content_hash_covers_title_summary_and_content() -> None:
    base = content_hash("t", "s", "c")
    assert base == content_hash("t", "s", "c")
    assert len({base, content_hash("t2", "s", "c"), content_hash("t", "s2", "c"),
                content_hash("t", "s", "c2"), content_hash("ts", "", "c")}) == 5  # fmt: skip


def test_snapshot_entries_use_their_guids() -> None:
    feed = parse_feed(snapshot("nyt_econ_20250419T1338"), url=URL)
    assert len(feed.entries) == 20
    first = feed.entries[0]
    assert first.entry_id == (
        "https://www.nytimes.com/2025/04/19/us/politics/trump-musk-billionaires-economy.html"
    )
    assert first.link and first.link.startswith("https://archive.is/newest/")
    assert first.authors == ["Elisabeth Bumiller"]
    assert first.published_at is not None and first.published_at.utcoffset() is not None


@pytest.mark.parametrize("name", list(ODD_FEEDS))
def test_the_same_bytes_give_the_same_entry_keys(name: str) -> None:
    body = (DATA / "odd" / name).read_bytes()
    url = f"http://127.0.0.1:8080/feeds/{name}"
    first, second = parse_feed(body, url=url), parse_feed(body, url=url)
    keys = [(e.entry_id, e.content_hash) for e in first.entries]
    assert len(keys) == ODD_FEEDS[name]
    assert keys == [(e.entry_id, e.content_hash) for e in second.entries]
    assert len({entry_id for entry_id, _ in keys}) == len(keys)
    # nor do they depend on where the feed was fetched from (TPM's relative links do)
    moved = parse_feed(body, url=f"https://mirror.example.net:8443/x/{name}?token=1")
    assert [(e.entry_id, e.content_hash) for e in moved.entries] == keys


def test_entries_without_guid_use_the_canonical_link() -> None:
    body = re.sub(rb"<guid[^>]*>.*?</guid>", b"", snapshot("economist_20250509T1614"))
    feed = parse_feed(body, url=URL)
    assert len(feed.entries) == 100
    assert feed.entries[0].entry_id.startswith("https://archive.is/newest/https")
    assert len({e.entry_id for e in feed.entries}) == 100


# --- parsing ------------------------------------------------------------------------------


def test_real_snapshots_parse() -> None:
    counts = {p.stem: len(parse_feed(p.read_bytes(), url=URL).entries) for p in DATA.glob("*.xml")}
    assert counts == {
        "bloomberg_politics_20260818T1614": 20,
        "bloomberg_politics_20260820T1640": 20,
        "economist_20250418T1227": 0,
        "economist_20250509T1614": 100,
        "economist_20250530T1615": 100,
        "google_news_reuters_pool_20260818T1614": 100,
        "nyt_econ_20250419T1338": 20,
        "nyt_econ_20250503T1220": 20,
        "theprint_discovery_20260818T1614": 12,
    }


def test_rss_ttl_is_read() -> None:
    assert parse_feed(snapshot("bloomberg_politics_20260818T1614"), url=URL).ttl_s == 1800.0
    assert parse_feed(snapshot("nyt_econ_20250419T1338"), url=URL).ttl_s is None


def test_an_empty_feed_is_fine() -> None:
    feed = parse_feed(snapshot("economist_20250418T1227"), url=URL)
    assert feed.entries == [] and feed.version == "rss20"


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>t</title>
<item><title>&lol9;</title><guid>a</guid><description>&lol9;</description></item>
</channel></rss>
"""


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(FeedParseError) as info:
        parse_feed(BILLION_LAUGHS, url=URL)
    assert info.value.reason == "unsafe-xml" and "unsafe XML" in str(info.value)
    assert time.monotonic() - started < 1


def test_external_entities_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>\n'
        '<rss version="2.0"><channel><title>t</title>'
        "<item><title>a&x;b</title><guid>1</guid></item></channel></rss>"
    ).encode()
    with pytest.raises(FeedParseError, match="unsafe XML") as info:
        parse_feed(body, url=URL)
    assert "TOP-SECRET" not in str(info.value)


def test_a_legacy_external_doctype_without_entities_is_accepted() -> None:
    body = (
        b'<?xml version="1.0"?>\n'
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
        b'<rss version="0.91"><channel><title>t</title><link>https://a.org/</link>'
        b"<description>d</description><language>en</language>"
        b"<item><title>One</title><link>https://a.org/1</link></item></channel></rss>"
    )
    feed = parse_feed(body, url=URL)
    assert [e.entry_id for e in feed.entries] == ["https://a.org/1"]


def test_a_body_that_looks_like_a_path_is_never_opened(tmp_path: Path) -> None:
    # handed bytes, feedparser would open() them as a file name; we hand it a stream
    secret = tmp_path / "feed.xml"
    secret.write_bytes(snapshot("nyt_econ_20250419T1338"))
    with pytest.raises(FeedParseError, match="malformed feed"):
        parse_feed(str(secret).encode(), url=URL)


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None])
def test_an_html_page_is_not_a_feed(content_type: str | None) -> None:
    page = (DATA / "pages" / "ars-1.html").read_bytes()
    with pytest.raises(FeedParseError) as info:
        parse_feed(page, url=URL, content_type=content_type)
    assert str(info.value) == "not a feed (got text/html page)"
    assert info.value.reason == "not-a-feed"


def test_a_flawed_feed_with_entries_is_accepted() -> None:
    body = snapshot("nyt_econ_20250419T1338")
    body = body.replace(b"</title>", b"</title> & ", 3)  # a bare ampersand: not well-formed
    feed = parse_feed(body, url=URL)
    assert len(feed.entries) == 20 and feed.warning


@pytest.mark.parametrize(
    "body",
    [
        snapshot("nyt_econ_20250419T1338")[:400],  # cut before the first item
        b"\x00\x01\x02 binary",
        b"",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": []}',
    ],
)
def test_unreadable_documents_are_malformed(body: bytes) -> None:
    with pytest.raises(FeedParseError) as info:
        parse_feed(body, url=URL)
    assert str(info.value).startswith("malformed feed: ")
    assert info.value.reason == "malformed"


# --- records --------------------------------------------------------------------------------


def test_records_without_full_content_leave_the_page_to_the_enricher() -> None:
    feed = FeedConfig(name="nyt", url=URL)
    entry = parse_feed(snapshot("nyt_econ_20250419T1338"), url=URL).entries[0]
    record = build_record(feed, entry, 1)
    assert record.source.kind == "feed" and record.source.name == "nyt"
    assert record.source.feed_url == URL
    assert record.url == entry.link
    assert record.body is None and record.content_type is None
    assert record.entry is not None
    assert record.entry.entry_id == entry.entry_id and record.entry.revision == 1
    assert (
        record.entry.title == "The Trump Billionaires Who Run the Economy and the Things They Say"
    )
    assert record.entry.published_at is not None
    assert len(record.record_id) == 32


def test_records_with_full_content_carry_it_as_the_body() -> None:
    feed = FeedConfig(name="theprint", url=URL)
    entries = parse_feed(snapshot("theprint_discovery_20260818T1614"), url=URL).entries
    full = [e for e in entries if e.has_full_content]
    assert full and len(full) < len(entries)
    record = build_record(feed, full[0], 3)
    assert record.content_type == "html" and record.body == full[0].content
    assert record.entry is not None and record.entry.revision == 3
    assert len(record.body or "") > 500
    short = next(e for e in entries if not e.has_full_content)
    assert build_record(feed, short, 1).body is None
