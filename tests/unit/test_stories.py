"""Stories, pure logic: shingles and sketches, the duplicate and story rules on real news
text, the assignment algorithm over the in-memory backend, and the update-alert decision."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from worker import stories as S
from worker.tagging import AlertRules, Tagger, TaxonomyError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
WINDOW = 72 * 3600.0


def _items() -> dict[str, dict]:
    out = {}
    for name in ("diplomacy-dev.jsonl", "heldout/feeds-heldout.jsonl", "corpus/corpus.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out[row["id"]] = row
    return out


ITEMS = _items()


def profile(item_id: str, seen_at: float = 0.0, **kw) -> S.Profile:
    r = ITEMS[item_id]
    return S.Profile(
        article_id=item_id,
        sketch=S.sketch(r["title"], r["text"]),
        countries=frozenset(kw.get("countries", r["countries"])),
        topics=frozenset(kw.get("topics", r["topics"])),
        seen_at=seen_at,
        published_at=kw.get("published_at"),
    )


def republished(text: str) -> str:
    """A syndicated copy: another byline and dateline, a closing line of the partner site."""
    return f"By Partner Wire Staff\nOTTAWA, Aug 22 -\n{text}\n(c) 2026 Partner Site. Reprinted."


# --- shingles and sketches ----------------------------------------------------------------


def test_word_shingles_ignore_case_punctuation_and_spacing():
    a = S.text_shingles("Russia and the United States held arms-control talks in Vienna.")
    b = S.text_shingles("RUSSIA and the  United States held arms control talks, in Vienna")
    assert len(a) and np.array_equal(a, b)
    assert not np.array_equal(a, S.text_shingles("Russia and China held trade talks in Vienna."))


def test_a_long_text_feeds_a_fixed_quarter_of_its_shingles():
    text = ITEMS["wire-046"]["text"]
    words = len(text.split())
    shingles = S.text_shingles(text)
    assert 0 < len(shingles) < words / 2  # sampled mod 4
    assert np.all(shingles % S.SHINGLE_SAMPLE == 0)
    short = S.text_shingles("Iran condemns new sanctions. Talks resume in Oman on Monday.")
    assert len(short) > 0 and not np.all(short % S.SHINGLE_SAMPLE == 0)  # short: all kept


def test_sketches_are_the_same_in_every_process_and_pack_round_trip():
    r = ITEMS["wire-046"]
    a, b = S.sketch(r["title"], r["text"]), S.sketch(r["title"], r["text"])
    assert np.array_equal(a.text, b.text) and np.array_equal(a.lead, b.lead)
    back = S.Sketch.unpack(*a.pack(), a.lead_terms)
    assert np.array_equal(back.text, a.text) and np.array_equal(back.lead, a.lead)
    assert len(a.pack()[0]) == 4 * S.NUM_PERM
    # the buckets: datasketch's bands for each level
    keys = S.band_keys(a)
    assert len(keys) == sum(
        S.lsh_params(t)[0] for t in (S.DUPLICATE_LSH_THRESHOLD, S.STORY_LSH_THRESHOLD)
    )
    assert S.band_keys(b) == keys


def test_lead_terms_are_content_stems_with_numbers():
    terms = S.lead_terms(
        "Ukraine launches 620 drones at Moscow region", "Reuters - The mayor said on Tuesday."
    )
    assert {"ukrain", "launch", "620", "drone", "moscow", "region", "mayor"} <= terms
    assert not terms & {"the", "at", "said", "reuter", "reuters"}


# --- the two levels on real text ------------------------------------------------------------


def test_republished_wire_copy_is_a_duplicate_a_translation_and_a_rewrite_are_not():
    wire = ITEMS["wire-046"]  # Reuters: Canada to impose retaliatory tariffs
    me = S.Profile("a", S.sketch(wire["title"], wire["text"]), frozenset(), frozenset(), 0)
    copy = S.Profile(
        "b",
        S.sketch("Canada hits back with tariffs on US goods", republished(wire["text"])),
        frozenset(),
        frozenset(),
        1,
    )
    assert S.jaccard(me.sketch.text, copy.sketch.text) >= 0.9
    assert S.is_duplicate(me, copy)
    french = profile("wire-075")  # the same Reuters story in French
    other = profile("wire-064")  # Reuters: Quebec and Trump tariffs, another story
    for p in (french, other):
        assert S.jaccard(me.sketch.text, p.sketch.text) < 0.2 and not S.is_duplicate(me, p)


def test_same_event_from_two_articles_is_one_story(monkeypatch: pytest.MonkeyPatch) -> None:
    # Bloomberg: "Trump Says US Is Waging Economic Warfare Against Iran" and the reaction
    # "China Says Trump's Economic Warfare Won't Solve Iran Crisis" (a same-days continuation)
    a, b = profile("ho-bb-039"), profile("ho-bb-036")
    sim = S.same_story(a, b, WINDOW)
    assert sim is not None and sim >= S.STORY_WEAK
    # below the strong level, the tags must agree too: without a shared topic, apart
    monkeypatch.setattr(S, "STORY_STRONG", sim + 0.01)
    assert S.same_story(a, b, WINDOW) is not None
    assert S.same_story(a, profile("ho-bb-036", topics=["trade"]), WINDOW) is None
    # WSJ: two tanker seizures in one embargo campaign
    assert S.same_story(profile("fd-a0881b4e4ff9"), profile("fd-b5141b825738"), WINDOW)


def test_different_events_on_the_same_states_are_apart():
    # Reuters: Ukrainian drones hit an Ozon warehouse (Aug 22) / 620 drones at Moscow (Aug 18)
    assert S.same_story(profile("wire-106"), profile("wire-071"), WINDOW) is None


def test_a_series_months_apart_is_not_one_story_however_similar():
    sept = datetime(2020, 10, 29, tzinfo=UTC).timestamp()
    june = datetime(2020, 7, 25, tzinfo=UTC).timestamp()
    a, b = profile("wn-009", published_at=sept), profile("wn-143", published_at=june)
    assert S.jaccard(a.sketch.lead, b.sketch.lead) >= S.STORY_STRONG
    assert S.same_story(a, b, WINDOW) is None
    assert S.same_story(a, profile("wn-143", published_at=sept - 3600), WINDOW) is not None


def test_choose_prefers_the_first_copy_then_the_most_similar_story():
    wire = ITEMS["wire-046"]
    sk = S.sketch(wire["title"], wire["text"])
    first = S.Profile("first", sk, frozenset(), frozenset(), 10)
    second = S.Profile("second", sk, frozenset(), frozenset(), 20)
    copy = S.sketch(wire["title"], republished(wire["text"]))
    me = S.Profile("me", copy, frozenset(), frozenset(), 30)
    assert S.choose(me, [second, first], WINDOW) == S.Choice(
        "first", "first", S.jaccard(me.sketch.lead, sk.lead)
    )
    a = profile("ho-bb-039", seen_at=1)
    c = profile("ho-bb-036", seen_at=2)
    choice = S.choose(profile("ho-bb-021", seen_at=3), [a, c], WINDOW)
    assert choice.story_of in {"ho-bb-039", "ho-bb-036"} and choice.duplicate_of is None
    assert S.choose(profile("wire-106"), [a, c], WINDOW) == S.Choice()


# --- the algorithm over the in-memory backend --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


async def assign(index: S.StoryIndex, clock: Clock, item_id: str, text: str | None = None, **kw):
    r = ITEMS[item_id]
    aid = kw.pop("aid", item_id)
    return await index.assign(
        aid,
        kw.pop("title", r["title"]),
        text or r["text"],
        kw.pop("countries", r["countries"]),
        kw.pop("topics", r["topics"]),
        now=clock.t,
    )


async def test_a_story_grows_copies_point_to_the_first_and_others_open_their_own():
    clock = Clock()
    index = S.StoryIndex(S.MemoryStoryBackend(clock), window_s=WINDOW)
    a = await assign(index, clock, "ho-bb-039")
    assert (a.story_id, a.size, a.opened, a.duplicate_of) == ("ho-bb-039", 1, True, None)
    clock.t += 60
    b = await assign(index, clock, "ho-bb-036")
    assert (b.story_id, b.size, b.opened) == ("ho-bb-039", 2, False)
    assert b.first_seen == a.first_seen
    clock.t += 60
    wire = await assign(index, clock, "wire-046")
    text = republished(ITEMS["wire-046"]["text"])
    copy = await assign(index, clock, "wire-046", text, aid="copy")
    copy2 = await assign(index, clock, "wire-046", text + "\nMore on our site.", aid="copy2")
    assert wire.opened and wire.duplicate_of is None
    assert (copy.story_id, copy.duplicate_of, copy.size) == ("wire-046", "wire-046", 2)
    assert (copy2.duplicate_of, copy2.size) == ("wire-046", 3)  # the first copy, not "copy"
    other = await assign(index, clock, "wire-106")
    assert other.opened and other.story_id == "wire-106" and other.size == 1
    # a redelivery gets the same answer, and does not grow the story
    again = await assign(index, clock, "ho-bb-036")
    assert (again.story_id, again.size) == ("ho-bb-039", 2)


async def test_after_the_window_the_same_event_opens_a_new_story():
    clock = Clock()
    backend = S.MemoryStoryBackend(clock)
    index = S.StoryIndex(backend, window_s=3600)
    await assign(index, clock, "ho-bb-039")
    clock.t += 3601
    late = await assign(index, clock, "ho-bb-036")
    assert late.opened and late.story_id == "ho-bb-036"
    assert "ho-bb-039" not in backend.docs  # expired: memory stays bounded


async def test_a_match_whose_worker_stopped_half_way_is_claimed_as_the_opener():
    clock = Clock()
    backend = S.MemoryStoryBackend(clock)
    index = S.StoryIndex(backend, window_s=WINDOW, wait_s=0.05)
    r = ITEMS["ho-bb-039"]
    half = S.Profile(
        "ho-bb-039",
        S.sketch(r["title"], r["text"]),
        frozenset(r["countries"]),
        frozenset(r["topics"]),
        clock.t,
    )
    await backend.index(half, S.band_keys(half.sketch), WINDOW)  # indexed, never resolved
    b = await assign(index, clock, "ho-bb-036")
    assert b.story_id == "ho-bb-039" and not b.opened and b.size == 2
    assert backend.docs["ho-bb-039"].story == "ho-bb-039"


# --- the update decision ----------------------------------------------------------------------


def decide(state, *, by="a:1", countries=("IR", "US"), topics=("sanctions",), score=0.8, now=0.0):
    return S.decide_alert(
        state,
        by=by,
        countries=countries,
        topics=topics,
        score=score,
        now=now,
        min_interval_s=600,
    )


def test_first_then_updates_only_when_something_is_added_and_not_too_often():
    first, state = decide(None)
    assert first.kind == "first" and state is not None
    same, none = decide(state, by="b:1", now=700)
    assert same.kind is None and none is None and same.reason == "adds nothing"
    soon, none = decide(state, by="b:1", countries=("IR", "US", "CN"), now=100)
    assert soon.kind is None and none is None and "too soon" in soon.reason
    upd, state2 = decide(state, by="b:1", countries=("IR", "US", "CN"), topics=("trade",), now=700)
    assert upd.kind == "update" and upd.new_countries == ("CN",) and upd.new_topics == ("trade",)
    assert state2 is not None and state2.countries == {"IR", "US", "CN"} and state2.sent_at == 700
    # a higher score counts only by a real step
    assert decide(state2, by="c:1", score=0.82, now=2000)[0].kind is None
    higher, _ = decide(state2, by="c:1", score=0.9, now=2000)
    assert higher.kind == "update" and higher.previous_score == 0.8


def test_a_redelivered_article_gets_the_decision_it_got():
    _, state = decide(None, by="a:1")
    again, unchanged = decide(state, by="a:1", now=5)
    assert again.kind == "first" and unchanged is None
    _, state = decide(state, by="b:1", countries=("CN",), now=700)
    assert decide(state, by="b:1", now=701)[0].kind == "update"
    # a new revision of the first article is a new article for the decision
    assert decide(state, by="a:2", now=702)[0].kind is None


async def test_alert_gate_over_the_memory_backend():
    clock = Clock()
    index = S.StoryIndex(S.MemoryStoryBackend(clock), window_s=WINDOW, update_min_s=600)
    kw = dict(countries=["IR", "US"], topics=["sanctions"], score=0.8, now=clock.t)
    assert (await index.gate_alert("s", "sanctions", by="a:1", **kw)).kind == "first"
    assert (await index.gate_alert("s", "trade", by="a:1", **kw)).kind == "first"
    assert (await index.gate_alert("s", "sanctions", by="b:1", **kw)).kind is None


# --- the alert rule option ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.from_config_dir(ROOT / "configs")


def test_shipped_rules_make_arms_control_per_story(tagger: Tagger):
    rules = AlertRules.from_file(ROOT / "configs" / "alerts.yaml", tagger)
    assert rules.per_story("arms-control")
    assert not rules.per_story("trade") and not rules.per_story("no-such-topic")


def test_per_story_option_is_validated_and_defaults_apply(tagger: Tagger, tmp_path: Path):
    path = tmp_path / "alerts.yaml"
    path.write_text("defaults: {per_story: true}\ntopics:\n  trade: {per_story: false}\n")
    rules = AlertRules.from_file(path, tagger)
    assert rules.per_story("sanctions") and not rules.per_story("trade")
    path.write_text("topics:\n  trade: {per_story: sometimes}\n")
    with pytest.raises(TaxonomyError, match=r"trade\.per_story"):
        AlertRules.from_file(path, tagger)


def test_window_setting_reaches_the_index():
    from worker.bootstrap import make_story_index
    from worker.settings import Settings

    index = make_story_index(Settings(story_window_h=2, story_update_min_s=30))
    assert index.window_s == 7200 and index.update_min_s == 30
    assert isinstance(index.backend, S.MemoryStoryBackend)
    assert timedelta(seconds=index.window_s) == timedelta(hours=2)


def test_minhash_is_datasketchs_value_for_value():
    from datasketch import MinHash, MinHashLSH

    rng = np.random.default_rng(7)
    for n in (0, 1, 5, 300, 5000):
        values = [int(v) for v in rng.integers(0, 1 << 32, n, dtype=np.uint64)]
        ref = MinHash(num_perm=S.NUM_PERM, seed=S.MINHASH_SEED, hashfunc=int, scheme="affine32")
        ref.update_batch(values)
        assert np.array_equal(S.minhash(values), ref.hashvalues), n
    # and on a real article's shingles, through a generator as sketch() passes them
    r = ITEMS["wire-046"]
    shingles = S.text_shingles(S.body_of(r["title"], r["text"])).tolist()
    ref = MinHash(num_perm=S.NUM_PERM, seed=S.MINHASH_SEED, hashfunc=int, scheme="affine32")
    ref.update_batch(shingles)
    assert np.array_equal(S.minhash(v for v in shingles), ref.hashvalues)
    # ... and as the array sketch() now hands over (no round trip through Python ints)
    array = S.text_shingles(S.body_of(r["title"], r["text"]))
    assert np.array_equal(S.minhash(array), ref.hashvalues)
    # the LSH banding datasketch picks for each threshold
    for threshold, params in S.LSH_PARAMS.items():
        lsh = MinHashLSH(threshold=threshold, num_perm=S.NUM_PERM)
        assert params == (lsh.b, lsh.r), threshold
