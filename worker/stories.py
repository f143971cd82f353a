"""Stories: which articles are copies of one text, and which tell one event.

Two levels, decided as each article arrives:

- **duplicate**: the same text republished (wire copy, syndication, URL variants). The
  MinHash Jaccard of the cleaned texts' word 5-shingles is at least
  :data:`DUPLICATE_JACCARD`; ``duplicate_of`` names the first copy seen.
- **story**: the same event told again, by another outlet or in a follow-up. Decided on
  the title and lead (:data:`LEAD_WORDS` first words of the text) as a set of content-word
  stems, plus the countries and topics the tagger found (:func:`same_story`). A story's id
  is the id of the article that opened it.

This module is pure: sketches, the rules, the update-alert decision, and the algorithm that
assigns an article (:class:`StoryIndex`) over a small storage port
(:class:`StoryBackend`). :class:`MemoryStoryBackend` implements the port in memory (unit
tests, the ``tag`` command); :mod:`worker.storystore` implements it in Redis, shared by
every worker of the group, bounded by the window.

Cost: the MinHash sketches are datasketch's ``affine32`` MinHash (64 permutations),
computed here in numpy value for value (a unit test compares them) so that the worker does
not import datasketch, whose package imports scipy (~0.5 s of start-up); the shingle
hashes they are fed are computed with numpy in a few vectorised passes, and a
long text feeds a fixed quarter of its shingles (:data:`SHINGLE_SAMPLE`, the same quarter
for every copy), so sketching a page costs a small fraction of extracting it
(``tests/benchmarks/bench_stories.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

import numpy as np

from worker.tagging.model import STOPWORDS, stem

# --- parameters ------------------------------------------------------------------------

NUM_PERM = 64
"""Permutations per MinHash: the Jaccard estimate's standard error is sqrt(J(1-J)/64),
0.05 at J = 0.8 and 0.05 at J = 0.3: enough to tell a copy (J > 0.9) from a rewrite
(J < 0.5), at 256 bytes a sketch."""

SHINGLE_WORDS = 5
"""Word shingle length for the duplicate level: five words rarely repeat by chance in
news prose, while a changed byline, dateline or sentence changes few shingles."""

SHINGLE_SAMPLE = 4
"""A text with at least :data:`SHINGLE_SAMPLE_MIN` sampled shingles feeds only the shingles
whose hash is 0 mod 4 (Broder's mod-m sampling: two copies keep the same quarter, so the
Jaccard estimate is unbiased). It makes sketching a long page four times cheaper."""

SHINGLE_SAMPLE_MIN = 16
"""Below this many sampled shingles (a text under ~70 words: a feed summary) every
shingle is used."""

DUPLICATE_JACCARD = 0.8
"""Duplicate when the text sketches agree this much. Republished wire copy measures
0.9-1.0 (a changed byline, dateline or closing line costs a few shingles of several
hundred); two outlets' write-ups of one event measure below 0.2 even when they quote the
same statement. 0.8 keeps a copy with an added paragraph or a trimmed end a duplicate."""

LEAD_WORDS = 30
"""Words of the text that join the title in the story sketch: a news lead (who, what,
where) is one sentence; more words bring in the background that every article on the same
subject shares, and a long lead set is far from a feed item's short one. On pairs read from
the project's data (five same-event pairs: CNA's and Reuters' Iran ultimatum, two Kim Jong
Un replies, two tanker seizures...; five different-event pairs sharing countries), 30 words
separated them better than 20 or 50."""

STORY_STRONG = 0.25
"""Title + lead similarity that alone makes one story, whatever the tags.

Chosen on the labelled story pairs (``tests/data/stories``, 1,070 pairs read by two
annotators; ``python -m worker.corpus.story_eval``): over a grid of (strong, weak) pairs,
the one with the best F0.5 (precision counts double: two stories merged hide one from the
desk, one story split costs an extra page), chosen on one random half of the pairs and
measured on the other: (0.25, 0.20) chosen on one half gives precision 0.86, recall 0.75 on
the other; the other half chose (0.20, 0.20), 0.82 / 0.82 on the first. The first version
(0.45 / 0.25, set by reading a few dozen pairs) found 0.48 of the same-story pairs at
precision 0.91: headlines of one event by two outlets share fewer stems than it assumed."""

STORY_WEAK = 0.20
"""Title + lead similarity that makes one story when the tags agree too: a shared country
and a shared topic (or both without topics). Chosen with :data:`STORY_STRONG` (see there);
below it, same-event and different-event pairs about the same states measure alike."""

STORY_LSH_THRESHOLD = 0.15
"""Candidates are looked up with MinHash LSH tuned (by datasketch) for this Jaccard, below
:data:`STORY_WEAK`, so that most pairs at the weak threshold are found as candidates."""

DUPLICATE_LSH_THRESHOLD = 0.5
"""A second LSH over the text sketches finds copies whose headline and lead were
rewritten; tuned below :data:`DUPLICATE_JACCARD` so a copy at 0.8 is found ~100%."""

CANDIDATE_CAP = 32
"""At most this many candidates (those sharing the most LSH buckets) are compared."""

SCORE_STEP = 0.05
"""An update alert for a higher score needs at least this much more than the last alert
sent: 0.875 -> 0.9375 is new evidence, 0.9907 -> 0.9912 is noise."""

_WORD = re.compile(r"[^\W_]+")
_NEWS_STOPWORDS = frozenset(
    """advertisement reuters afp ap bloomberg xinhua photo file updated update read more
    subscribe minutes ago""".split()
)
"""Bylines and page furniture that lead many articles of one outlet whatever the story."""


LSH_PARAMS = {DUPLICATE_LSH_THRESHOLD: (14, 4), STORY_LSH_THRESHOLD: (32, 2)}
"""(bands, rows) per LSH threshold: what datasketch's ``MinHashLSH(threshold, NUM_PERM)``
picks (it minimises the weighted false positive and negative probabilities); a unit test
recomputes them with datasketch, whose import costs ~0.5 s (scipy) the worker need not pay."""

MINHASH_SEED = 20261206
"""Seed of the permutations: the same in every worker, so sketches compare across them."""

_FMIX32 = (16, np.uint32(0x85EBCA6B), 13, np.uint32(0xC2B2AE35), 16)
"""MurmurHash3's 32-bit finalizer (shifts and multipliers), as datasketch applies it."""


def lsh_params(threshold: float) -> tuple[int, int]:
    """(bands, rows) for ``threshold``: :data:`LSH_PARAMS`, else datasketch's choice."""
    if threshold in LSH_PARAMS:
        return LSH_PARAMS[threshold]
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return int(lsh.b), int(lsh.r)


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's ``affine32`` permutations for :data:`MINHASH_SEED`: h -> a*h + b mod
    2^32 with odd ``a``, drawn as ``MinHash._init_permutations`` draws them."""
    gen = np.random.RandomState(MINHASH_SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a, b


def minhash(hashes: Iterable[int] | np.ndarray) -> np.ndarray:
    """The MinHash signature of already-hashed 32-bit values: exactly datasketch's
    ``MinHash(num_perm=NUM_PERM, seed=MINHASH_SEED, scheme="affine32")`` with an identity
    hash function and ``update_batch`` (a unit test compares them value for value), in
    numpy without datasketch's per-value Python call or its scipy import."""
    hv: np.ndarray = (
        hashes.astype(np.uint32)  # text_shingles' array: no round trip through Python ints
        if isinstance(hashes, np.ndarray)
        else np.fromiter(hashes, dtype=np.uint32)
    )
    if not hv.size:
        return np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
    s1, m1, s2, m2, s3 = _FMIX32
    hv ^= hv >> s1
    hv *= m1
    hv ^= hv >> s2
    hv *= m2
    hv ^= hv >> s3
    a, b = _permutations()
    return np.asarray((hv[:, None] * a + b).min(axis=0), dtype=np.uint32)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """MinHash's Jaccard estimate (``MinHash.jaccard``): the share of equal slots."""
    return float(np.count_nonzero(a == b)) / len(a)


# --- text features -----------------------------------------------------------------------

_M64 = (1 << 64) - 1
_B = 0x100000001B3  # FNV prime: odd, so invertible mod 2^64
_B_INV = pow(_B, -1, 1 << 64)
_MIX = np.uint64(0x9E3779B97F4A7C15)
_pow_cache: dict[str, np.ndarray] = {}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B^i and B^-i mod 2^64 for i < n (cached, grown by doubling)."""
    have = _pow_cache.get("fwd")
    if have is None or len(have) < n:
        size = max(n, 2 * len(have) if have is not None else 1 << 14)
        with np.errstate(over="ignore"):
            fwd = np.cumprod(np.full(size, _B, dtype=np.uint64), dtype=np.uint64)
            inv = np.cumprod(np.full(size, _B_INV, dtype=np.uint64), dtype=np.uint64)
        # cumprod starts at B^1: shift so index i holds B^i
        _pow_cache["fwd"] = np.concatenate(([np.uint64(1)], fwd[:-1]))
        _pow_cache["inv"] = np.concatenate(([np.uint64(1)], inv[:-1]))
    return _pow_cache["fwd"][:n], _pow_cache["inv"][:n]


_WORD_BYTE = np.zeros(256, dtype=bool)
_WORD_BYTE[ord("0") : ord("9") + 1] = True
_WORD_BYTE[ord("a") : ord("z") + 1] = True
_WORD_BYTE[128:] = True  # UTF-8 bytes of non-ASCII letters (and of curly quotes: harmless)
_BYTE_VALUE = np.arange(1, 257, dtype=np.uint64)  # byte + 1: no byte hashes to zero


def _word_hashes(text: str) -> np.ndarray:
    """A 64-bit hash per word of ``text`` (lower-cased; a word is a run of ASCII letters,
    digits or non-ASCII characters), in order, computed without a Python loop: a
    polynomial hash over the UTF-8 bytes from prefix sums (B is odd, so B^-i exists mod
    2^64 and a word's hash is a difference of two prefix sums)."""
    data = np.frombuffer(text.lower().encode("utf-8", "replace"), dtype=np.uint8)
    if not len(data):
        return np.zeros(0, dtype=np.uint64)
    is_word = _WORD_BYTE[data]
    edges = np.flatnonzero(is_word[1:] != is_word[:-1]) + 1
    if is_word[0]:
        edges = np.concatenate(([0], edges))
    if is_word[-1]:
        edges = np.concatenate((edges, [len(data)]))
    if not len(edges):
        return np.zeros(0, dtype=np.uint64)
    starts, ends = edges[0::2], edges[1::2]  # [start, end) of each word
    fwd, inv = _powers(len(data) + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(data) + 1, dtype=np.uint64)
        np.cumsum(_BYTE_VALUE[data] * inv[1:], dtype=np.uint64, out=prefix[1:])
        return (prefix[ends] - prefix[starts]) * fwd[ends]


def text_shingles(text: str) -> np.ndarray:
    """32-bit hashes of the text's word :data:`SHINGLE_WORDS`-shingles, sampled mod
    :data:`SHINGLE_SAMPLE` for a long text, distinct."""
    words = _word_hashes(text)
    k = SHINGLE_WORDS
    if len(words) == 0:
        return np.zeros(0, dtype=np.uint64)
    if len(words) < k:
        k = len(words)
    n = len(words) - k + 1
    with np.errstate(over="ignore"):
        h = np.zeros(n, dtype=np.uint64)
        for j in range(k):
            h = h * _MIX + words[j : j + n]
        h ^= h >> np.uint64(29)
        h *= _MIX
        h32 = (h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF))
    sampled = h32[h32 % np.uint64(SHINGLE_SAMPLE) == 0]
    if len(sampled) >= SHINGLE_SAMPLE_MIN:
        h32 = sampled
    return np.unique(h32)


def body_of(title: str | None, text: str) -> str:
    """The text without the headline when it opens with it (cleaned pages often repeat the
    ``<h1>``): a copy under another headline is still the same text, and the lead is the
    lead, not the title twice."""
    if title:
        head = text.lstrip()
        t = title.strip()
        if t and head[: len(t)].casefold() == t.casefold():
            return head[len(t) :].lstrip()
    return text


def lead_terms(title: str | None, text: str) -> set[str]:
    """The story level's set: content-word stems of the title and the lead (stop words out,
    numbers in: "620 drones", "120 warheads" are what an event is told by)."""
    lead = " ".join(body_of(title, text).split(None, LEAD_WORDS)[:LEAD_WORDS])
    words = _WORD.findall(f"{title or ''} {lead}".casefold())
    return {
        stem(w)
        for w in words
        if w not in STOPWORDS and w not in _NEWS_STOPWORDS and (len(w) > 1 or w.isdigit())
    }


def _term_hash(term: str) -> int:
    return zlib.crc32(term.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class Sketch:
    """What the index keeps of an article's wording: two MinHash signatures."""

    text: np.ndarray  # uint32[NUM_PERM]: word shingles of the whole text
    lead: np.ndarray  # uint32[NUM_PERM]: content-word stems of title + lead
    lead_terms: int  # how many distinct lead terms (0: nothing to match a story on)

    @property
    def empty_text(self) -> bool:
        """No text beyond the headline: the text signature is the empty set's, which every
        other empty text shares (Jaccard 1.0), so it must never make a duplicate."""
        return bool(np.array_equal(self.text, _EMPTY_SIGNATURE))

    def pack(self) -> tuple[bytes, bytes]:
        return self.text.astype("<u4").tobytes(), self.lead.astype("<u4").tobytes()

    @classmethod
    def unpack(cls, text: bytes, lead: bytes, lead_terms: int) -> Sketch:
        return cls(
            np.frombuffer(text, dtype="<u4").astype(np.uint32),
            np.frombuffer(lead, dtype="<u4").astype(np.uint32),
            lead_terms,
        )


_EMPTY_SIGNATURE = minhash([])


def sketch(title: str | None, text: str) -> Sketch:
    terms = lead_terms(title, text)
    # an item with nothing beyond its headline (a feed entry without summary or page) is
    # compared by its headline: syndicated copies keep it word for word
    body = body_of(title, text) or (title or "")
    return Sketch(
        text=minhash(text_shingles(body)),
        lead=minhash(_term_hash(t) for t in terms),
        lead_terms=len(terms),
    )


def band_keys(sk: Sketch) -> list[str]:
    """The LSH buckets of a sketch: ``d<band>:<hash>`` for the text (duplicate level) and
    ``s<band>:<hash>`` for the title + lead (story level), rows per band from datasketch."""
    keys = []
    for tag, sig, threshold in (
        ("d", sk.text, DUPLICATE_LSH_THRESHOLD),
        ("s", sk.lead, STORY_LSH_THRESHOLD),
    ):
        if (tag == "s" and sk.lead_terms == 0) or (tag == "d" and sk.empty_text):
            continue
        b, r = lsh_params(threshold)
        raw = sig.astype("<u4").tobytes()
        for i in range(b):
            digest = hashlib.blake2b(raw[i * r * 4 : (i + 1) * r * 4], digest_size=8)
            keys.append(f"{tag}{i}:{digest.hexdigest()}")
    return keys


# --- the rules ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """An article as the story index sees it."""

    article_id: str
    sketch: Sketch
    countries: frozenset[str]
    topics: frozenset[str]
    seen_at: float  # epoch seconds when it was indexed
    published_at: float | None = None  # epoch seconds, when the article says


def is_duplicate(a: Profile, b: Profile) -> bool:
    """The same text: sketches of the text (headline aside) agree at least
    :data:`DUPLICATE_JACCARD`; never when either has no text beyond its headline."""
    if a.sketch.empty_text or b.sketch.empty_text:
        return False
    return jaccard(a.sketch.text, b.sketch.text) >= DUPLICATE_JACCARD


def same_story(a: Profile, b: Profile, window_s: float) -> float | None:
    """The title + lead similarity when ``a`` and ``b`` tell one story, else None.

    One story when the title + lead sketches agree at least :data:`STORY_STRONG`, or at
    least :data:`STORY_WEAK` with a shared country and a shared topic (or no topic on
    either side). Never when both carry publication times further apart than the window.
    """
    if a.published_at is not None and b.published_at is not None:
        if abs(a.published_at - b.published_at) > window_s:
            return None
    if a.sketch.lead_terms == 0 or b.sketch.lead_terms == 0:
        return None
    sim = jaccard(a.sketch.lead, b.sketch.lead)
    if sim >= STORY_STRONG:
        return sim
    if sim >= STORY_WEAK and a.countries & b.countries:
        if (a.topics & b.topics) or not (a.topics or b.topics):
            return sim
    return None


@dataclass(frozen=True, slots=True)
class Choice:
    """Which earlier article this one joins (``story_of``) and copies (``duplicate_of``)."""

    story_of: str | None = None
    duplicate_of: str | None = None
    similarity: float = 0.0


def choose(me: Profile, candidates: Sequence[Profile], window_s: float) -> Choice:
    """The decision, deterministic for a given candidate set: a duplicate joins the
    earliest copy (and its story); otherwise the article joins the story of the most
    similar candidate that passes :func:`same_story` (ties: the earliest)."""
    others = sorted(
        (c for c in candidates if c.article_id != me.article_id),
        key=lambda c: (c.seen_at, c.article_id),
    )
    for c in others:
        if is_duplicate(me, c):
            return Choice(c.article_id, c.article_id, jaccard(me.sketch.lead, c.sketch.lead))
    best: Choice = Choice()
    for c in others:
        sim = same_story(me, c, window_s)
        if sim is not None and sim > best.similarity:
            best = Choice(c.article_id, None, sim)
    return best


# --- the update-alert decision ----------------------------------------------------------

AlertKind = Literal["first", "update", "article"]


@dataclass(frozen=True, slots=True)
class AlertState:
    """What was sent for one story and topic: the union of what the alerts carried."""

    countries: frozenset[str]
    topics: frozenset[str]
    score: float
    sent_at: float  # epoch seconds of the last alert sent
    sent: dict[str, str] = field(default_factory=dict)  # "<article id>:<revision>" -> kind


@dataclass(frozen=True, slots=True)
class AlertDecision:
    kind: Literal["first", "update"] | None  # None: no alert
    new_countries: tuple[str, ...] = ()
    new_topics: tuple[str, ...] = ()
    previous_score: float | None = None
    reason: str = ""


def decide_alert(
    state: AlertState | None,
    *,
    by: str,
    countries: Sequence[str],
    topics: Sequence[str],
    score: float,
    now: float,
    min_interval_s: float,
) -> tuple[AlertDecision, AlertState | None]:
    """Whether an article of a story alerts on a per-story topic, and the new state.

    The first article that alerts opens it (``first``); a later one sends an ``update``
    only when it adds a country, a topic or a score higher by :data:`SCORE_STEP`, and at
    most one per ``min_interval_s``. What a suppressed article added is not recorded, so a
    later article that brings it again, after the interval, announces it. The same article
    and revision again (a redelivery) gets the decision it got the first time.
    """
    if state is None:
        new = AlertState(frozenset(countries), frozenset(topics), score, now, {by: "first"})
        return AlertDecision("first", reason="first article of the story"), new
    if by in state.sent:
        kind = state.sent[by]
        again: Literal["first", "update"] = "update" if kind == "update" else "first"
        return AlertDecision(again, reason="the same article again (a redelivery)"), None
    new_countries = tuple(c for c in countries if c not in state.countries)
    new_topics = tuple(t for t in topics if t not in state.topics)
    higher = score >= state.score + SCORE_STEP
    if not (new_countries or new_topics or higher):
        return AlertDecision(None, reason="adds nothing"), None
    if now - state.sent_at < min_interval_s:
        return AlertDecision(None, reason="too soon after the last alert"), None
    new = AlertState(
        state.countries | set(countries),
        state.topics | set(topics),
        max(state.score, score),
        now,
        {**state.sent, by: "update"},
    )
    what = AlertDecision(
        "update",
        new_countries=new_countries,
        new_topics=new_topics,
        previous_score=state.score if higher else None,
        reason="adds "
        + ", ".join([*new_countries, *new_topics, *(["a higher score"] if higher else [])]),
    )
    return what, new


# --- the port and the algorithm ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    story_id: str
    duplicate_of: str | None
    first_seen: datetime
    size: int


class StoryBackend(Protocol):
    """Storage for the story index: Redis in the service (:mod:`worker.storystore`)."""

    async def index(self, profile: Profile, bands: list[str], window_s: float) -> list[Profile]:
        """Record the article and its buckets; return the profiles of the articles that
        shared a bucket with it before and are still in the window (at most
        :data:`CANDIDATE_CAP`, most shared buckets first). Atomic, one round trip. An
        article indexed before gets the candidates it got then (those still in the window)."""
        ...

    async def resolve(
        self, article_id: str, choice: Choice, window_s: float, claim: bool
    ) -> Resolution | None:
        """Atomically give the article its story: a new one it opens, or the story of
        ``choice.story_of``. None when that article has no story yet (its worker is between
        its own index and resolve); with ``claim`` it is then made to open it. An article
        resolved before keeps its story."""
        ...

    async def alert_transaction(
        self,
        story_id: str,
        topic: str,
        decide: Callable[[AlertState | None], tuple[AlertDecision, AlertState | None]],
        window_s: float,
    ) -> AlertDecision:
        """Apply ``decide`` to the story and topic's alert state atomically."""
        ...


@dataclass(frozen=True, slots=True)
class Assignment:
    story_id: str
    size: int
    first_seen: datetime
    opened: bool
    duplicate_of: str | None


class StoryIndex:
    """Assigns each article its story and duplicate status, over a :class:`StoryBackend`."""

    def __init__(
        self,
        backend: StoryBackend,
        *,
        window_s: float = 72 * 3600,
        update_min_s: float = 900.0,
        wait_s: float = 2.0,
    ) -> None:
        self.backend = backend
        self.window_s = window_s
        self.update_min_s = update_min_s
        self.wait_s = wait_s

    async def assign(
        self,
        article_id: str,
        title: str | None,
        text: str,
        countries: Sequence[str],
        topics: Sequence[str],
        published_at: datetime | None = None,
        now: float | None = None,
    ) -> Assignment:
        now = time.time() if now is None else now
        sk = sketch(title, text)
        me = Profile(
            article_id,
            sk,
            frozenset(countries),
            frozenset(topics),
            now,
            published_at.timestamp() if published_at is not None else None,
        )
        candidates = await self.backend.index(me, band_keys(sk), self.window_s)
        choice = choose(me, candidates, self.window_s)
        deadline = time.monotonic() + self.wait_s
        while True:
            res = await self.backend.resolve(
                article_id, choice, self.window_s, claim=time.monotonic() >= deadline
            )
            if res is not None:
                return Assignment(
                    story_id=res.story_id,
                    size=res.size,
                    first_seen=res.first_seen,
                    opened=res.story_id == article_id,
                    duplicate_of=res.duplicate_of,
                )
            await asyncio.sleep(0.02)

    async def gate_alert(
        self,
        story_id: str,
        topic: str,
        *,
        by: str,
        countries: Sequence[str],
        topics: Sequence[str],
        score: float,
        now: float | None = None,
    ) -> AlertDecision:
        """Whether this article's alert on a per-story ``topic`` goes out, and as what."""
        at = time.time() if now is None else now

        def decide(state: AlertState | None) -> tuple[AlertDecision, AlertState | None]:
            return decide_alert(
                state,
                by=by,
                countries=countries,
                topics=topics,
                score=score,
                now=at,
                min_interval_s=self.update_min_s,
            )

        return await self.backend.alert_transaction(story_id, topic, decide, self.window_s)


# --- in memory -------------------------------------------------------------------------------


def _iso(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@dataclass
class _Doc:
    profile: Profile
    candidates: list[str]
    story: str | None = None
    duplicate_of: str | None = None


class MemoryStoryBackend:
    """The port in one process (unit tests, ``tag``, the benchmark); the same semantics as
    Redis. The window is applied as Redis does it: expired articles leave in indexing order
    (a queue), a bucket drops its expired members when it is read, a story or alert state
    not written within the window is gone."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.docs: dict[str, _Doc] = {}
        self._order: deque[tuple[float, str]] = deque()
        self.buckets: dict[str, dict[str, float]] = {}
        self.stories: dict[str, tuple[datetime, set[str], float]] = {}  # id -> first, members, t
        self.alerts: dict[tuple[str, str], tuple[AlertState, float]] = {}

    def _expire(self, window_s: float) -> float:
        cut = self.clock() - window_s
        while self._order and self._order[0][0] < cut:
            _, aid = self._order.popleft()
            doc = self.docs.get(aid)
            if doc is not None and doc.profile.seen_at < cut:
                del self.docs[aid]
        return cut

    async def index(self, profile: Profile, bands: list[str], window_s: float) -> list[Profile]:
        cut = self._expire(window_s)
        doc = self.docs.get(profile.article_id)
        if doc is not None:
            return self._profiles(doc.candidates)
        hits: dict[str, int] = {}
        for key in bands:
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = {}
            elif any(t < cut for t in bucket.values()):
                bucket = self.buckets[key] = {a: t for a, t in bucket.items() if t >= cut}
            for aid in bucket:
                hits[aid] = hits.get(aid, 0) + 1
            bucket[profile.article_id] = profile.seen_at
        ranked = sorted(hits, key=lambda a: (-hits[a], a))[:CANDIDATE_CAP]
        self.docs[profile.article_id] = _Doc(profile, ranked)
        self._order.append((profile.seen_at, profile.article_id))
        return self._profiles(ranked)

    def _profiles(self, ids: list[str]) -> list[Profile]:
        return [self.docs[a].profile for a in ids if a in self.docs]

    async def resolve(
        self, article_id: str, choice: Choice, window_s: float, claim: bool
    ) -> Resolution | None:
        now = self.clock()
        doc = self.docs[article_id]
        if doc.story is None:
            story, dup = article_id, None
            match = self.docs.get(choice.story_of) if choice.story_of else None
            if match is not None:
                if match.story is None:
                    if not claim:
                        return None
                    match.story = match.profile.article_id
                    self.stories.setdefault(
                        match.story, (_iso(match.profile.seen_at), {match.story}, now)
                    )
                story = match.story
                if choice.duplicate_of:
                    root = self.docs.get(choice.duplicate_of)
                    dup = (root.duplicate_of if root else None) or choice.duplicate_of
            doc.story, doc.duplicate_of = story, dup
            if story == article_id:
                self.stories.setdefault(story, (_iso(doc.profile.seen_at), set(), now))
        story = doc.story
        first, members, last = self.stories.get(story, (_iso(now), set(), now))
        if last < now - window_s:  # not written within the window: gone, as in Redis
            first, members = _iso(now), set()
        members.add(article_id)
        self.stories[story] = (first, members, now)
        return Resolution(story, doc.duplicate_of, first, len(members))

    async def alert_transaction(
        self,
        story_id: str,
        topic: str,
        decide: Callable[[AlertState | None], tuple[AlertDecision, AlertState | None]],
        window_s: float,
    ) -> AlertDecision:
        cut = self._expire(window_s)
        held = self.alerts.get((story_id, topic))
        if held is not None and held[1] < cut:
            held = None
        decision, new = decide(held[0] if held else None)
        if new is not None:
            self.alerts[(story_id, topic)] = (new, self.clock())
        return decision


def memory_index(**kw: Any) -> StoryIndex:
    """A story index in memory (``tag``, unit tests)."""
    return StoryIndex(MemoryStoryBackend(), **kw)


__all__ = [
    "AlertDecision",
    "AlertState",
    "Assignment",
    "Choice",
    "MemoryStoryBackend",
    "Profile",
    "Resolution",
    "Sketch",
    "StoryBackend",
    "StoryIndex",
    "band_keys",
    "choose",
    "decide_alert",
    "is_duplicate",
    "jaccard",
    "lead_terms",
    "memory_index",
    "same_story",
    "sketch",
    "text_shingles",
]
