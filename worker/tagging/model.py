"""The learned half of the tagger: a linear model over words, word pairs and what the rules see.

The model reads one *window*: a short item whole (a headline, a headline with its summary, a
paragraph of up to three sentences), and of a text of up to :data:`LONGEST_TEXT` sentences its
title and first three sentences, the lead, which is where news says what it is about; the rules
read every sentence of it. A longer text (a page) it reads only where asked to
(``WORKER_TOPIC_MODEL_WINDOWS``): every window of :data:`WINDOW_SENTENCES` sentences as a short
item (:meth:`TopicModel.predict`). A window becomes a
bag of features, and each topic's probability is a logistic function of the summed weights of
the window's features. The features:

- its words, lower-cased (``envoy``), their Snowball stems (``~order``), and pairs of
  neighbouring words (``envoy out``); function words have no feature of their own;
- a state mention (a name, adjective, capital, seat of government or sitting leader that the
  gazetteer resolved) also stands as ``<state>`` or ``<leader>`` in the word sequence, so
  "Seoul and Tokyo agree" gives ``<state> and``, ``and <state>``, ``<state> agree``; and
  ``<states:2>`` when the window names two states or more;
- what the rules' matcher found: a context word of a group (``<ctx:military>``), a term of a
  topic's rules (``<term:sanctions>``), and the evidence of a topic the rules tagged
  (``<rule:sanctions>``). The model learns how far to trust each.

Beside the weights, the model asks the labelled items it was trained on (**neighbours**):
each is kept as its sentence embedding (all-MiniLM-L6-v2, :mod:`worker.tagging.encoder`),
with its topics; a short item's topics by vote of the :data:`~worker.tagging.train.NEIGHBOURS_K`
items nearest in meaning (cosine), each weighted ``exp(sharpness x similarity)``, and the
probability is ``(1 - mix) x logistic + mix x vote``, calibrated per topic. An item that
says a topic in words the weights learnt little of finds the items that said it in others
("Minsk orders Lithuanian envoy out" near "expels the ambassador").

Weights, vocabulary, thresholds and the neighbours (the training items' embeddings as 8-bit
integers, and their topics) live in a JSON file (``configs/topic-model.json``) that ``python -m
worker train`` writes, and the encoder in ``configs/sentence-encoder/`` (plain arrays, named in
the model by their SHA-256): data, not code. Inference needs numpy, and for the neighbours
the ``tokenizers`` and ``safetensors`` packages.

Evidence: the features that contributed most to a topic, as spans of the title or text with
their sentence, like the rules' evidence.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import Stemmer  # PyStemmer: the Snowball stemmers in C

from worker.tagging.encoder import (
    DIMS,
    ENCODER_DIR,
    Embeddings,
    EncoderError,
    file_digest,
    item_key,
    item_text,
    load_encoder,
)
from worker.tagging.text import sentence_starts

FORMAT = "diplomacy-topic-model"
FORMAT_VERSION = 1

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

STATE, LEADER = "<state>", "<leader>"
LEAD_SENTENCES = 3
"""The model reads a text of at most this many sentences whole (as the corpus items were
labelled), and of a longer text its title and first sentences."""

LONGEST_TEXT = 8
"""The model reads a text of at most this many sentences as one window (of one over
:data:`LEAD_SENTENCES`, the lead): the longest items it learnt from have 7 (the corpus) and 8
(the silver items; ``tests/unit/test_topic_model.py`` checks). A longer text, a page or a wire
story, is the rules' alone, unless the model is asked to read it by windows (below; its lead
alone had changed no tag on the dev set's 231 articles of more than 8 sentences)."""

WINDOW_SENTENCES = 3
"""Asked to (``predict(..., windows=True)``: ``WORKER_TOPIC_MODEL_WINDOWS``, ``eval
--windows``), the model reads every window of this many sentences of a text longer than
:data:`LONGEST_TEXT` (the first with the title) as it reads a short item, and adds a topic that
a window gives at least its threshold + :data:`WINDOW_MARGIN`. Measured (session 19): on the
long-article set (``tests/data/long/``, 154 articles no rule or model was tuned on) topics
micro-F1 0.639 with the rules alone -> 0.681 (95 % +0.012 to +0.075); on the dev set 0.859 ->
0.870. Not the default: it adds two topics to the seed article that ``TAXONOMY.md`` rules out,
and it costs (``tests/experiments/long_windows/README.md``)."""

WINDOW_MARGIN = 0.2
"""A window adds a topic at the short items' threshold plus this (at most 0.95): three
sentences of a long article often name a topic the article is not about, and the annotators
label the article. Chosen on the dev set (session 17: +0 0.830, +0.1 0.849, +0.2 0.870, +0.3
0.868); fixed before the long-article set was labelled, which confirmed it."""

WINDOW_ASK = 0.2
"""The neighbours (the sentence encoder, ~40 ms a window) are asked on a window only where the
weights alone give a topic the rules did not tag at least this; a window they are not asked on
adds nothing. About 2 % of a long text's windows (41 of 2,434 on the dev set, 41 of 1,705 on
the long-article set); chosen with the margin, before the long-article set was labelled."""

MIN_KNOWN = 0.6
"""The share of a window's words (content words, not states or numbers) that must be in the
model's vocabulary for the model to overrule the rules there (its veto, or deciding an item
alone): the model learnt English news, the rules' terms cover more languages. Of the corpus's
4,809 items 99.5 % have at least 0.67 (4 under 0.6); headlines in German, French, Spanish or
Portuguese mostly under 0.5."""


class ModelError(ValueError):
    """The model file is missing, malformed or made for another taxonomy."""


class Mention(NamedTuple):
    """What the rules' matcher found in the text: a state (``kind`` "name", "adjective",
    "capital", "seat", "foreign" or "leader"), a context word of a group ("ctx:military"), a
    term of a topic's rules ("term:sanctions"), or a rule topic's evidence ("rule:sanctions")."""

    field: str  # "title" | "text"
    start: int
    end: int
    kind: str = "name"


class Token(NamedTuple):
    word: str  # the feature word: lower-cased, "<num>", "<state>", "<leader>"
    surface: str  # the plain lower-cased word, for the unigram
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Window:
    field: str  # where the window's first token is ("title" or "text")
    tokens: tuple[Token, ...]
    sentence: int  # index of the window's first text sentence (-1: starts at the title)


_PLACE_KINDS = {
    "name": STATE,
    "adjective": STATE,
    "capital": STATE,
    "seat": STATE,
    "foreign": STATE,
    "state": STATE,
    "leader": LEADER,
}


def tokens_of(field: str, value: str, mentions: Sequence[Mention]) -> list[Token]:
    """Word tokens with offsets; the tokens of one state mention collapse to one token whose
    ``word`` is ``<state>``/``<leader>`` (its ``surface`` keeps the first word)."""
    n = len(value)
    spans = sorted(
        (m.start, m.end, _PLACE_KINDS[m.kind])
        for m in mentions
        if m.start < n and m.field == field and m.kind in _PLACE_KINDS
    )
    out: list[Token] = []
    add = out.append
    si = 0
    ns = len(spans)
    for m in _TOKEN.finditer(value):
        s, e = m.span()
        low = m.group().lower()
        if "'" in low or "’" in low:
            low = low.replace("’", "'")
            if low.endswith("'s"):
                low = low[:-2]
        elif low.isdigit():
            low = "<num>"
        if si < ns:
            while si < ns and spans[si][1] <= s:
                si += 1
            if si < ns and spans[si][0] <= s:
                ms, me, word = spans[si]
                if not (out and out[-1].field == field and out[-1].start == ms):
                    add(Token(word, low, field, ms, me))
                continue  # the rest of a multi-word mention
        add(Token(low, low, field, s, e))
    return out


def window_of(
    title: str | None, text: str, mentions: Sequence[Mention] = ()
) -> tuple[Window, bool, list[Mention]]:
    """The window the model reads, whether it is the lead of a longer text, and the mentions
    that fall inside it."""
    lead = False
    if text:
        starts = sentence_starts(text, LEAD_SENTENCES + 1)
        if len(starts) > LEAD_SENTENCES:
            text = text[: starts[LEAD_SENTENCES]]
            lead = True
    n = len(text)
    inside = [m for m in mentions if m.field == "title" or m.end <= n]
    toks = (tokens_of("title", title, inside) if title else []) + (
        tokens_of("text", text, inside) if text else []
    )
    return Window("title" if title else "text", tuple(toks), -1), lead, inside


def model_reads(text: str) -> bool:
    """Whether the model reads an item with this text at all: at most :data:`LONGEST_TEXT`
    sentences (of a longer text, the rules alone decide)."""
    return not text or len(sentence_starts(text, LONGEST_TEXT + 1)) <= LONGEST_TEXT


def reads_whole(text: str) -> bool:
    """Whether the model reads an item with this text whole (at most :data:`LEAD_SENTENCES`
    sentences), not its lead: the items its neighbours are asked about."""
    return not text or len(sentence_starts(text, LEAD_SENTENCES + 1)) <= LEAD_SENTENCES


Span = tuple[str, int, int]

STOPWORDS = frozenset(
    """a an the of to in on at by for from with without into onto over under about above
    below between among through during before after since until as than then and or but nor
    so yet if while because though although whether that which who whom whose what when
    where why how this these those it its it's he him his she her hers they them their
    theirs we us our ours you your yours i me my mine is are was were be been being am has
    have had having do does did done will would shall should can could may might must not
    no also just only very more most some any all each every both either neither other
    such own same there here out up down off again once one said says say""".split()
)
"""Function words: no feature of their own, and never a pair of two of them."""

_STEMMERS = threading.local()  # a PyStemmer object is not to be shared between threads


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The word's Snowball (Porter 2) English stem: "sanctioned", "sanctions" -> "sanction".
    PyStemmer runs the Snowball project's own C code (~1 us a word; the pure-Python
    ``snowballstemmer`` took ~22 us and gives the same stem for every one of the 42,155
    distinct words of the corpus, silver, dev and held-out sets). Memoised all the same: news
    repeats words."""
    st = getattr(_STEMMERS, "english", None)
    if st is None:
        st = _STEMMERS.english = Stemmer.Stemmer("english")
    return str(st.stemWord(word))


def features_of(
    tokens: Sequence[Token], mentions: Sequence[Mention] = ()
) -> list[tuple[str, Span | None]]:
    """(feature, where it stands) of a window, in order, repeats kept. ``mentions``: the
    context words and rule terms inside the window become ``<ctx:...>``/``<term:...>``."""
    out: list[tuple[str, Span | None]] = []
    states: set[str] = set()
    prev: Token | None = None
    for t in tokens:
        span = (t.field, t.start, t.end)
        stop = t.word in STOPWORDS
        place = t.word != t.surface  # a state mention: which state is not why a topic applies
        if not stop:
            out.append((t.word, None if place else span))
        if place:
            out.append((t.surface, None))
            if t.word in (STATE, LEADER):
                states.add(t.surface)
        elif not stop:
            st = stem(t.word)
            if st != t.word:
                out.append(("~" + st, span))
        if prev is not None and prev.field == t.field and not (stop and prev.word in STOPWORDS):
            out.append((prev.word + " " + t.word, (t.field, prev.start, t.end)))
        prev = t
    if len(states) >= 2:
        out.append(("<states:2>", None))
    out += _kind_features(tokens, mentions)
    return out


def _kind_features(tokens: Sequence[Token], mentions: Sequence[Mention]) -> list[tuple[str, Span]]:
    """``<ctx:...>``, ``<term:...>``, ``<rule:...>``, ``<veto:...>`` for the matcher's finds
    that lie inside the window's tokens."""
    if not mentions or not tokens:
        return []
    bounds: dict[str, tuple[int, int]] = {}
    for t in tokens:
        b = bounds.get(t.field)
        bounds[t.field] = (t.start, t.end) if b is None else (min(b[0], t.start), max(b[1], t.end))
    out = []
    for m in mentions:
        if m.kind in _PLACE_KINDS:
            continue
        b = bounds.get(m.field)
        if b is not None and b[0] <= m.start and m.end <= b[1]:
            out.append(("<" + m.kind + ">", (m.field, m.start, m.end)))
    return out


def feature_names(tokens: Sequence[Token], mentions: Sequence[Mention] = ()) -> list[str]:
    """The names :func:`features_of` gives, in the same order, without their places: the
    scoring path (places are needed only for the evidence of a topic found)."""
    out: list[str] = []
    add = out.append
    states: set[str] = set()
    prev = ""
    prev_field = ""
    for t in tokens:
        word = t.word
        stop = word in STOPWORDS
        if not stop:
            add(word)
        if word != t.surface:
            add(t.surface)
            if word is STATE or word is LEADER:
                states.add(t.surface)
        elif not stop:
            st = stem(word)
            if st != word:
                add("~" + st)
        if prev_field == t.field and not (stop and prev in STOPWORDS):
            add(prev + " " + word)
        prev, prev_field = word, t.field
    if len(states) >= 2:
        add("<states:2>")
    out += [f for f, _ in _kind_features(tokens, mentions)]
    return out


# --------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class ModelHit:
    """A topic the model finds, with its probability and the spans that carried it."""

    topic: str
    probability: float
    spans: list[tuple[str, int, int]]  # (field, start, end), strongest first
    sentence: int  # window's first text sentence, -1 for the title window


def topic_sets(bits: np.ndarray, n_topics: int) -> np.ndarray:
    """16-bit topic sets (bit i: the i-th topic) as a 0/1 float32 matrix, items x topics."""
    return ((bits[:, None].astype(np.int64) >> np.arange(n_topics)) & 1).astype(np.float32)


def neighbour_vote(sims: np.ndarray, labels: np.ndarray, k: int, sharpness: float) -> np.ndarray:
    """The vote of the ``k`` items most similar to each query: per topic, the weighted share
    of them that carry it, weights ``exp(sharpness x similarity)``. ``sims``: queries x items
    (or one query's row); ``labels``: items x topics. What ``train`` computes out of fold and
    the service per window."""
    one = sims.ndim == 1
    s2 = sims[None, :] if one else sims
    k = min(k, s2.shape[1])
    idx = np.argpartition(-s2, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(s2, idx, axis=1).astype(np.float64)
    w = np.exp(sharpness * (s - s.max(axis=1, keepdims=True)))
    votes = np.einsum("nk,nkt->nt", w, labels[idx]) / w.sum(axis=1, keepdims=True)
    return votes[0] if one else votes


def calibrated(probs: np.ndarray, cal: np.ndarray | None) -> np.ndarray:
    """``sigmoid(a logit(p) + b)`` per topic (``cal``: topics x (a, b); Platt scaling, as
    ``train`` fits it); ``probs`` as they are without one."""
    if cal is None:
        return probs
    q = np.clip(probs, 1e-6, 1 - 1e-6)
    return 1.0 / (1.0 + np.exp(-(cal[:, 0] * np.log(q / (1 - q)) + cal[:, 1])))


class Neighbours:
    """The training items' sentence embeddings with their topics; :meth:`vote` per item.

    In the model file: ``k``, ``sharpness``, ``mix``, ``items``, ``dims`` and ``scale``, the
    embeddings as base64 of int8 (each component x scale x 127, rounded), their topics as
    base64 of little-endian uint16 bit sets (bit i: the model's i-th topic), and the SHA-256
    of the encoder's weights (:mod:`worker.tagging.encoder`): checked when the model loads and
    again when the encoder is read, on the first item that asks it (a tagger from the start-up
    cache, :mod:`worker.tagging.cache`, was loaded elsewhere)."""

    def __init__(
        self,
        spec: dict[str, Any],
        n_topics: int,
        encoder_dir: Path = ENCODER_DIR,
        store: Embeddings | None = None,
    ) -> None:
        try:
            self.k = int(spec["k"])
            self.sharpness = float(spec["sharpness"])
            self.mix = float(spec["mix"])
            n, dims, scale = int(spec["items"]), int(spec["dims"]), float(spec["scale"])
            q = np.frombuffer(base64.b64decode(spec["vectors"]), dtype=np.int8)
            bits = np.frombuffer(base64.b64decode(spec["labels"]), dtype="<u2")
            want = str(spec["encoder_sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed neighbours: {exc!r}") from None
        if q.size != n * dims or bits.size != n or dims != DIMS or self.k < 1 or scale <= 0:
            raise ModelError(
                f"neighbours do not fit: {q.size} values for {n} x {dims} (the encoder's: "
                f"{DIMS}), {bits.size} label sets, k={self.k}, scale {scale}"
            )
        try:
            got = file_digest(encoder_dir / "model.safetensors")
        except OSError as exc:
            raise ModelError(
                f"{encoder_dir}: cannot read the sentence encoder: {exc.strerror or exc}"
            ) from None
        if got != want:
            raise ModelError(
                f"the sentence encoder ({got[:12]}) is not the one the model was trained with "
                f"({want[:12]}): retrain with `python -m worker train`"
            )
        self.encoder_dir = encoder_dir
        self.encoder_sha256 = want
        self.q = q.reshape(n, dims)  # as stored: a quarter of float32's memory
        self.scale = scale
        self._memory: np.ndarray | None = None
        self.labels = topic_sets(bits, n_topics)
        #: embeddings to look items up in before encoding them (cross-validation's)
        self.store = store if store is not None and store.encoder == want else None
        #: the vote of items by key (:func:`item_key`), given instead of asking the memory:
        #: cross-validation's, from the fold lists of an encoder that never saw the item
        self.votes: dict[bytes, np.ndarray] = {}

    @property
    def memory(self) -> np.ndarray:
        """The training items' embeddings as float32 (items x dims), made on first use."""
        if self._memory is None:
            self._memory = self.q.astype(np.float32) / np.float32(127.0 * self.scale)
        return self._memory

    def __getstate__(self) -> dict[str, Any]:  # the tagger cache keeps the int8 rows only
        return {**self.__dict__, "_memory": None}

    def vector(self, title: str | None, text: str | None) -> np.ndarray:
        """The item's unit embedding (the encoder's; the store's, where it has the item)."""
        if self.store is not None:
            row = self.store.index.get(item_key(title, text))
            if row is not None:
                return self.store.vectors([row])[0]
        try:
            encoder = load_encoder(self.encoder_dir)
        except EncoderError as exc:  # checked at load: only a file changed since would do
            raise ModelError(str(exc)) from None
        if encoder.digest != self.encoder_sha256:
            # never embed with another encoder than the memory's: the votes would be noise
            raise ModelError(
                f"{self.encoder_dir}: the sentence encoder ({encoder.digest[:12]}) is not the one "
                f"the model was trained with ({self.encoder_sha256[:12]}): retrain with "
                "`python -m worker train`"
            )
        return encoder.encode([item_text(title, text)])[0]

    def vote(self, v: np.ndarray) -> np.ndarray:
        """Per topic, the share of the ``k`` nearest items (by cosine, weighted
        ``exp(sharpness x similarity)``) that carry it."""
        return neighbour_vote(self.memory @ v, self.labels, self.k, self.sharpness)

    def mixed(self, probs: np.ndarray, title: str | None, text: str | None) -> np.ndarray:
        """``(1 - mix) x probs + mix x vote``."""
        given = self.votes.get(item_key(title, text)) if self.votes else None
        vote = given if given is not None else self.vote(self.vector(title, text))
        return (1.0 - self.mix) * probs + self.mix * vote


class _Decision(NamedTuple):
    whole: bool  # the model decides every topic of the item alone
    thresholds: np.ndarray  # the thresholds that apply to the model's own topics
    veto: float  # a rules' tag the model gives less than this is dropped (0: none)
    overrule: bool  # the model may drop a rules' tag here at all


class TopicModel:
    """Load once (:meth:`from_file`), then :meth:`predict` per article. Thread-safe."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        digest: str = "",
        encoder_dir: Path | None = None,
        embeddings: Embeddings | None = None,
    ) -> None:
        """``encoder_dir``: the sentence encoder a model with neighbours reads (default: the
        project's); ``embeddings``: items' embeddings the neighbours look up before encoding
        (for evaluation on the labelled items)."""
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"not a {FORMAT} file of format_version {FORMAT_VERSION} "
                f"(format={data.get('format')!r}, format_version={data.get('format_version')!r})"
            )
        try:
            self.version: str = str(data["version"])
            self.topics: list[str] = list(data["topics"])
            self.taxonomy_version: str = str(data["taxonomy_version"])
            vocab: list[str] = list(data["vocabulary"])
            weights = np.asarray(data["weights"], dtype=np.float32)
            self.bias = np.asarray(data["bias"], dtype=np.float64)
            self.thresholds = np.asarray(
                [float(data["thresholds"][t]) for t in self.topics], dtype=np.float64
            )
            self.long_thresholds = np.asarray(
                [float(data.get("long_thresholds", data["thresholds"])[t]) for t in self.topics],
                dtype=np.float64,
            )
            #: topics the model alone decides on a short item (rules-or-model elsewhere)
            self.decides: frozenset[str] = frozenset(data.get("model_decides") or ())
            #: on a headline alone (a title, no text) the model decides every topic, with
            #: the thresholds chosen for the model alone
            self.decides_headlines = bool(data.get("model_decides_headlines", False))
            #: likewise on a headline with a short text (a feed entry's summary: a title and
            #: no more than the model's window of text)
            self.decides_summaries = bool(data.get("model_decides_summaries", False))
            #: on an item the model reads whole and does not decide alone, a rules' tag whose
            #: topic the model gives less than this is dropped (0: never)
            self.veto_below = float(data.get("veto_below", 0.0))
            self.alone_thresholds = np.asarray(
                [float(data.get("alone_thresholds", data["thresholds"])[t]) for t in self.topics],
                dtype=np.float64,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed model: {exc!r}") from None
        if weights.shape != (len(vocab), len(self.topics)) or self.bias.shape != (
            len(self.topics),
        ):
            raise ModelError(
                f"weights {weights.shape} do not fit {len(vocab)} features x "
                f"{len(self.topics)} topics"
            )
        self.index: dict[str, int] = {f: i for i, f in enumerate(vocab)}
        self.vocabulary = vocab
        self.weights = weights
        self.digest = digest
        self.neighbours: Neighbours | None = None
        spec = data.get("neighbours")
        if spec:
            if not isinstance(spec, dict):
                raise ModelError("malformed neighbours: not an object")
            self.neighbours = Neighbours(
                spec, len(self.topics), Path(encoder_dir or ENCODER_DIR), embeddings
            )
        cal = data.get("calibration")
        try:
            self.calibration: np.ndarray | None = (
                None
                if cal is None
                else np.asarray([[float(x) for x in cal[t]] for t in self.topics], np.float64)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed calibration: {exc!r}") from None
        if self.calibration is not None and self.calibration.shape != (len(self.topics), 2):
            raise ModelError(f"calibration of shape {self.calibration.shape}, not (topics, 2)")
        self.meta: dict[str, Any] = {
            k: v for k, v in data.items() if k not in ("vocabulary", "weights", "neighbours")
        }
        if spec:
            self.meta["neighbours"] = {
                k: v for k, v in spec.items() if k not in ("vectors", "labels")
            }

    @classmethod
    def from_file(cls, path: Path) -> TopicModel:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(
                f"{path}: cannot read the model: {exc.strerror or exc} (train one with "
                "`python -m worker train`, or set WORKER_TOPIC_MODEL=false for the rules alone)"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ModelError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ModelError(f"{path}: expected a JSON object")
        try:
            return cls(data, digest=hashlib.sha256(raw).hexdigest())
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None

    # ---------------------------------------------------------------------- scoring

    def window_logits(
        self, tokens: Sequence[Token], mentions: Sequence[Mention] = ()
    ) -> np.ndarray:
        """The logit of every topic for a window (the weights alone, without neighbours)."""
        return self._logits(set(feature_names(tokens, mentions)))

    def _logits(self, names: set[str]) -> np.ndarray:
        get = self.index.get
        idx = [j for j in map(get, names) if j is not None]
        if not idx:
            return self.bias.copy()
        scale = 1.0 / math.sqrt(len(names))
        return self.bias + self.weights[idx].sum(axis=0, dtype=np.float64) * scale

    def _calibrated(self, probs: np.ndarray) -> np.ndarray:
        return calibrated(probs, self.calibration)

    def predict(
        self,
        title: str | None,
        text: str,
        mentions: Sequence[Mention] = (),
        *,
        windows: bool = False,
    ) -> tuple[dict[str, float], list[ModelHit], frozenset[str]]:
        """Every topic's probability, the topics over their threshold with the spans that
        carried them, and the topics the model decides (:attr:`decides`, or every topic on a
        headline alone when :attr:`decides_headlines`, on a headline with a short text when
        :attr:`decides_summaries`) that it rejects here (a short item under the threshold):
        the rules' tags of those do not stand. A text of more than :data:`LONGEST_TEXT`
        sentences: nothing, or with ``windows`` the topics its windows find (no veto)."""
        if not model_reads(text):  # longer than any item it learnt from
            if not windows:
                return {}, [], frozenset()  # the rules' alone
            best, by_window, _, _ = self._windows(title, text, mentions)
            scores = {
                t: round(float(p), 4) for t, p in zip(self.topics, best.tolist(), strict=True)
            }
            hits = [
                ModelHit(self.topics[ti], prob, spans, sentence)
                for ti, (prob, spans, sentence) in sorted(by_window.items())
            ]
            return scores, hits, frozenset()  # no veto: deep in a page the rules read better
        window, lead, inside = window_of(title, text, mentions)
        if not window.tokens:
            return {}, [], frozenset()
        probs, idx, where = self._weighed(window, inside)
        if self._asks_neighbours(window, lead):
            probs = self.neighbours.mixed(probs, title, text)  # type: ignore[union-attr]
        probs = self._calibrated(probs)
        whole, thresholds, veto, overrule = self._decision(window, lead)
        decides = frozenset(self.topics) if whole else self.decides if overrule else frozenset()
        plist = probs.tolist()
        scores = {t: round(p, 4) for t, p in zip(self.topics, plist, strict=True)}
        # the rules' exclusions bind the model too: a topic whose term the rules dropped for
        # another sense ("sanctions" by a football league, a ceasefire between gangs) and that
        # they did not tag on other evidence is not added by the model from the same window
        # (a topic the rules tagged anyway is the model's to confirm where it decides)
        vetoed = {m.kind[5:] for m in inside if m.kind.startswith("veto:")}
        if vetoed:
            vetoed -= {m.kind[5:] for m in inside if m.kind.startswith("rule:")}
        found = [
            ti
            for ti, (p, th) in enumerate(zip(plist, thresholds.tolist(), strict=True))
            if p >= th and self.topics[ti] not in vetoed
        ]
        rejected = decides - {self.topics[ti] for ti in found} if decides else frozenset()
        if veto > 0.0:
            # the model reads this item whole and is all but sure a topic is not there
            low = {t for t, p in zip(self.topics, plist, strict=True) if p < veto}
            rejected = rejected | low if low else rejected
        if not found:
            return scores, [], rejected
        hits = [
            ModelHit(self.topics[ti], plist[ti], self._evidence(idx, where, ti), -1) for ti in found
        ]
        return scores, hits, rejected

    def _weighed(
        self, window: Window, inside: Sequence[Mention]
    ) -> tuple[np.ndarray, list[int], list[Span | None]]:
        """The weights' probability of every topic for a window, in one pass over its features:
        their names score it, their places (``idx``, ``where``) give the evidence."""
        get = self.index.get
        idx: list[int] = []
        where: list[Span | None] = []
        seen: set[int] = set()
        names: set[str] = set()
        for f, span in features_of(window.tokens, inside):
            names.add(f)
            j = get(f)
            if j is not None and j not in seen:
                seen.add(j)
                idx.append(j)
                where.append(span)
        z = self.bias.copy()
        if idx:
            z += self.weights[idx].sum(axis=0, dtype=np.float64) / math.sqrt(len(names))
        return 1.0 / (1.0 + np.exp(-z)), idx, where

    def _windows(
        self, title: str | None, text: str, mentions: Sequence[Mention]
    ) -> tuple[np.ndarray, dict[int, tuple[float, list[Span], int]], int, int]:
        """A long text read by windows of :data:`WINDOW_SENTENCES` sentences (the first with
        the title), each as a short item: the weights, and where they give a topic the rules
        did not tag at least :data:`WINDOW_ASK` the neighbours too, calibrated. Returns each
        topic's highest score over the windows, the topics a window the neighbours were asked
        on gives at least threshold + :data:`WINDOW_MARGIN` (by topic index: probability,
        evidence spans in the title's or the whole text's offsets, the window's first
        sentence), the number of windows and of windows the neighbours were asked on."""
        ruled = {m.kind[5:] for m in mentions if m.kind.startswith("rule:")}
        untagged = np.array([t not in ruled for t in self.topics])
        limits = np.minimum(self.thresholds + WINDOW_MARGIN, 0.95)
        starts = sentence_starts(text)
        ends = [*starts[1:], len(text)]
        in_title = [m for m in mentions if m.field == "title"]
        in_text = sorted((m for m in mentions if m.field != "title"), key=lambda m: m.start)
        nb = self.neighbours
        best = np.zeros(len(self.topics))
        found: dict[int, tuple[float, list[Span], int]] = {}
        n_windows = n_asked = 0
        mi = 0
        for k in range(0, len(starts), WINDOW_SENTENCES):
            a, b = starts[k], ends[min(k + WINDOW_SENTENCES, len(starts)) - 1]
            while mi < len(in_text) and in_text[mi].start < a:
                mi += 1
            inside = []  # the text's mentions inside the window, in the window's offsets
            for m in islice(in_text, mi, None):
                if m.start >= b:
                    break
                if m.end <= b:
                    inside.append(Mention(m.field, m.start - a, m.end - a, m.kind))
            wtitle = title if k == 0 and title else None
            if wtitle:
                inside = in_title + inside
            wtext = text[a:b]
            toks = (tokens_of("title", wtitle, inside) if wtitle else []) + tokens_of(
                "text", wtext, inside
            )
            if not toks:
                continue
            n_windows += 1
            window = Window(toks[0].field, tuple(toks), k)
            probs, idx, where = self._weighed(window, inside)
            ask = (
                nb is not None
                and bool((probs[untagged] >= WINDOW_ASK).any())
                and self.known_share(window) >= MIN_KNOWN
            )
            if ask:
                n_asked += 1
                probs = nb.mixed(probs, wtitle, wtext)  # type: ignore[union-attr]
            p = self._calibrated(probs)
            if not ask:  # adds nothing; its scores stand for the rules' topics only
                np.maximum(best, np.where(untagged, 0.0, p), out=best)
                continue
            np.maximum(best, p, out=best)
            vetoed = {m.kind[5:] for m in inside if m.kind.startswith("veto:")}
            for ti in np.flatnonzero((p >= limits) & untagged).tolist():
                if self.topics[ti] in vetoed or (ti in found and found[ti][0] >= p[ti]):
                    continue
                spans = [
                    (f, s + a, e + a) if f == "text" else (f, s, e)
                    for f, s, e in self._evidence(idx, where, ti)
                ]
                found[ti] = (float(p[ti]), spans, -1 if wtitle else k)
        return best, found, n_windows, n_asked

    def _asks_neighbours(self, window: Window, lead: bool) -> bool:
        """Whether the neighbours vote on this window: one the model reads whole (not a long
        text's lead: the neighbours are short items) and in words it knows (:data:`MIN_KNOWN`:
        the neighbours are English news, which a French headline would find anyway)."""
        return self.neighbours is not None and not lead and self.known_share(window) >= MIN_KNOWN

    def known_share(self, window: Window) -> float:
        """The share of the window's content words the model has a feature for (1.0 for a
        window of none): see :data:`MIN_KNOWN`."""
        index = self.index
        words = [
            t.word
            for t in window.tokens
            if t.word == t.surface and t.word not in STOPWORDS and t.word != "<num>"
        ]
        return sum(w in index for w in words) / len(words) if words else 1.0

    def _decision(self, window: Window, lead: bool) -> _Decision:
        """How this window is decided: whether the model decides the whole item alone (a
        headline alone, or a headline with a short text, as the file says), the thresholds
        that apply (a long text's lead, the model alone's, or rules-or-model's), the
        probability under which a rules' tag is dropped, and whether the model may overrule
        the rules at all: not on a long text's lead (the rules read more than the model does)
        nor where it knows too few of the words (:data:`MIN_KNOWN`)."""
        if lead:
            return _Decision(False, self.long_thresholds, 0.0, False)
        overrules = self.decides_headlines or self.decides_summaries or self.veto_below > 0.0
        if (overrules or self.decides) and self.known_share(window) < MIN_KNOWN:
            return _Decision(False, self.thresholds, 0.0, False)  # another language
        first, last = window.tokens[0].field, window.tokens[-1].field
        whole = (self.decides_headlines and last == "title") or (
            self.decides_summaries and first == "title" and last == "text"
        )
        if whole:
            return _Decision(True, self.alone_thresholds, 0.0, True)
        return _Decision(False, self.thresholds, self.veto_below, True)

    def explain(
        self,
        title: str | None,
        text: str,
        mentions: Sequence[Mention] = (),
        *,
        windows: bool = False,
    ) -> dict[str, Any]:
        """How the model reads an item and what it would decide, for a person: ``reads``
        ("lead", "whole item, decided by the model alone", "whole item"), and per topic its
        probability, the threshold that applies and the veto (see :meth:`predict`)."""
        if not model_reads(text) and not windows:
            return {
                "reads": f"nothing: a text of more than {LONGEST_TEXT} sentences, longer than any "
                "it learnt from (the rules alone)",
                "alone": False,
                "veto_below": 0.0,
                "topics": {},
            }
        if not model_reads(text):
            best, _, n_windows, n_asked = self._windows(title, text, mentions)
            limits = np.minimum(self.thresholds + WINDOW_MARGIN, 0.95)
            return {
                "reads": f"{n_windows} windows of {WINDOW_SENTENCES} sentences of a text of more "
                f"than {LONGEST_TEXT}, the neighbours asked on {n_asked} (where the weights give "
                f"a topic the rules did not tag at least {WINDOW_ASK:g}); a window adds a topic "
                f"at its threshold + {WINDOW_MARGIN:g}",
                "alone": False,
                "veto_below": 0.0,
                "topics": {
                    t: {"probability": round(float(p), 4), "threshold": round(float(th), 4)}
                    for t, p, th in zip(self.topics, best.tolist(), limits.tolist(), strict=True)
                },
            }
        window, lead, inside = window_of(title, text, mentions)
        if not window.tokens:
            return {"reads": "nothing (no words)", "alone": False, "veto_below": 0.0, "topics": {}}
        names = set(feature_names(window.tokens, inside))
        weights_p = 1.0 / (1.0 + np.exp(-self._logits(names)))
        vote = None
        mixed = weights_p
        nb = self.neighbours
        if nb is not None and self._asks_neighbours(window, lead):
            vote = nb.vote(nb.vector(title, text))
            mixed = (1 - nb.mix) * weights_p + nb.mix * vote
        probs = self._calibrated(mixed).tolist()
        whole, thresholds, veto, _ = self._decision(window, lead)
        known = self.known_share(window)
        reads = (
            f"the lead (title and first {LEAD_SENTENCES} sentences) of a longer text"
            if lead
            else "the whole item, which the model alone decides"
            if whole
            else f"the whole item, knowing {known:.0%} of its words (too few to overrule the rules)"
            if known < MIN_KNOWN
            else "the whole item"
        )
        return {
            "reads": reads,
            "alone": whole,
            "veto_below": veto,
            "topics": {
                t: {
                    "probability": round(p, 4),
                    "threshold": float(th),
                    **({"neighbours": round(float(vote[i]), 4)} if vote is not None else {}),
                }
                for i, (t, p, th) in enumerate(
                    zip(self.topics, probs, thresholds.tolist(), strict=True)
                )
            },
        }

    def _evidence(
        self, idx: list[int], where: list[Span | None], ti: int, k: int = 3
    ) -> list[Span]:
        contrib = self.weights[idx, ti] if idx else np.zeros(0)
        order = np.argsort(-contrib, kind="stable")
        spans: list[Span] = []
        for j in order.tolist():
            if contrib[j] <= 0 or len(spans) >= k:
                break
            span = where[j]
            if span is None:  # a window-level feature (two states named): no place of its own
                continue
            if any(f == span[0] and s < span[2] and span[1] < e for f, s, e in spans):
                continue
            spans.append(span)
        return spans


def corpus_digest(rows: Iterable[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(orjson.dumps([r.get("id"), r.get("title"), r.get("text"), r.get("topics")]))
    return h.hexdigest()
