"""The tagger: diplomacy topics with evidence, and the states an article refers to.

One Aho-Corasick automaton holds every term of the taxonomy and the gazetteer (topic terms,
context words, blockers, country names), built once at load. :meth:`Tagger.tag` then:

1. normalises title and text (lower case, punctuation to spaces, same length) and runs the
   automaton over each; keys are padded with spaces, so matches sit on word boundaries;
2. checks case where a term asks for it ("WHO", "US"; country names must be capitalised);
3. drops matches covered by a longer match of the same kind ("New Mexico" covers "Mexico",
   "New START" covers "START") or by a blocker ("trade union" covers "trade");
4. resolves countries (leader terms of office against the publication date; ambiguous
   names like "Jordan" need confirmation) and collects, per sentence, the context groups,
   the states and the leaders it names;
5. scores each topic: every match that meets its rule's sentence conditions adds its weight
   (title x ``title_weight``; further mentions of one term x ``repeat_weight``), and
   score = 1 - 0.5 ** units. A topic is reported when its score reaches its threshold.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import ahocorasick

from worker.events import Evidence, TopicTag
from worker.tagging.config import (
    CountriesFile,
    TaxonomyError,
    TopicsFile,
    expand_term,
    load_countries,
    load_topics,
)
from worker.tagging.model import (
    Mention,
    ModelError,
    ModelHit,
    TopicModel,
    model_reads,
    reads_whole,
)
from worker.tagging.text import (
    normalize,
    normalize_term,
    sentence_index,
    sentence_starts,
    sentence_text,
)

MODEL_FILE = "topic-model.json"
WINDOWS_SUFFIX = "+windows"  # model_version of events tagged with long texts read by windows
"""The learned model's file name in the configs directory."""

Field = Literal["title", "text"]

_ACRONYM = re.compile(r"^[A-Z]{2,5}$")
"""Topic terms spelled as short all-capital words match only in capitals (automatic)."""

# payload kinds
_TOPIC, _COUNTRY, _CTX, _BLOCK, _VETO = 0, 1, 2, 3, 4
# _VETO: a topic term that a blocker covered ("trade union"): kept aside, so the learned model
# does not add the topic the rules' blockers rule out
_COUNTRY_NS = -1  # namespace of country matches (topics use their index)

STATE_KINDS = frozenset({"name", "adjective", "capital", "seat", "leader", "foreign"})
"""Country mentions that name the state itself (``@state``); cities and regions do not."""

# Capitalised words that may stand next to an ambiguous name without making it a person's
# name: "In Jordan", "King of Jordan", "Jordan Foreign Minister".
_NAME_GUARD_STOP = frozenset(
    """a an the in on at of to from for and or but with by as into near after before since
    during via across against between within without about over under says said say
    neighbouring neighboring visit visits visited north south east west central northern
    southern eastern western king queen prince princess emir sultan president prime minister
    foreign government army military embassy ambassador republic kingdom state people
    parliament capital border officials authorities police forces troops when while if
    both all also then this that these those its his her their our""".split()
)


@dataclass(frozen=True, slots=True)
class TopicInfo:
    id: str
    label: str
    iptc: str
    threshold: float


@dataclass(frozen=True, slots=True)
class TagResult:
    """What :meth:`Tagger.tag` finds.

    ``topics``: the topics whose score reached their threshold, highest score first.
    ``countries``: ISO 3166-1 alpha-2 codes in order of first mention (title, then text).
    ``scores``: every topic with any rule evidence, passing or not (for evaluation and tuning).
    ``model_scores``: the learned model's probability per topic (empty without a model).
    ``mentions``: where the text names a state (name, adjective, capital, seat, leader).
    """

    topics: list[TopicTag]
    countries: list[str]
    scores: dict[str, float] = field(default_factory=dict)
    model_scores: dict[str, float] = field(default_factory=dict)
    mentions: list[Mention] = field(default_factory=list)

    @property
    def topic_ids(self) -> list[str]:
        return [t.id for t in self.topics]


@dataclass(frozen=True, slots=True)
class _Rule:
    weight: float
    else_weight: float
    requires: frozenset[str]
    excludes: frozenset[str]
    min_countries: int
    followed_by_state: bool = False


@dataclass(frozen=True, slots=True)
class _CountryEntry:
    code: str
    kind: str
    start: date | None = None
    end: date | None = None
    name_guard: bool = False
    confirm: frozenset[str] = frozenset()

    @property
    def ambiguous(self) -> bool:
        return bool(self.confirm) or self.name_guard


_Hit = tuple[Field, int, int, int, Any, int]
"""A match: (field, start, end, kind, data, sentence key). data: topic -> (topic index, rule
index, term id); country -> _CountryEntry; context word -> its group. Sentence key: -1 for
the title, else the sentence's index in the text."""


@dataclass(slots=True)
class _Sentence:
    groups: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    leader: bool = False


class Tagger:
    """Tags diplomacy topics and countries. Build once (``from_files``), call :meth:`tag`."""

    long_text_windows: bool = False
    """Whether the model reads a text of more than ``LONGEST_TEXT`` sentences by windows
    (``WORKER_TOPIC_MODEL_WINDOWS``; see ``worker.tagging.model.WINDOW_SENTENCES``); by default
    such a text is the rules' alone. Set by :meth:`read_long_texts_by_windows`."""

    def __init__(
        self, topics: TopicsFile, countries: CountriesFile, model: TopicModel | None = None
    ) -> None:
        self._topics_cfg = topics
        self.taxonomy_version: str = topics.version
        self.gazetteer_version: str = countries.version
        self.topics: dict[str, TopicInfo] = {
            t.id: TopicInfo(
                id=t.id,
                label=t.label,
                iptc=t.iptc_code,
                threshold=t.threshold or topics.scoring.default_threshold,
            )
            for t in topics.topics
        }
        self._topic_ids = [t.id for t in topics.topics]
        self._topic_index = {tid: i for i, tid in enumerate(self._topic_ids)}
        self._infos = [self.topics[i] for i in self._topic_ids]
        self._rules: list[list[_Rule]] = [
            [
                _Rule(
                    weight=r.weight,
                    else_weight=r.else_weight,
                    requires=frozenset(r.requires),
                    excludes=frozenset(r.excludes),
                    min_countries=r.min_countries,
                    followed_by_state=r.followed_by_state,
                )
                for r in t.rules
            ]
            for t in topics.topics
        ]
        sc = topics.scoring
        self._title_weight = sc.title_weight
        self._repeat_weight = sc.repeat_weight
        self._max_repeats = sc.max_repeats
        self._max_evidence = sc.max_evidence
        self._same_sentence_weight = sc.same_sentence_weight
        self._auto = self._build(topics, countries)
        unknown = sorted(set(model.topics) - set(self.topics)) if model else []
        if unknown:
            raise TaxonomyError(
                f"the topic model knows topics the taxonomy does not: {', '.join(unknown)}"
            )
        # a TopicModel, None, or a stand-in that loads it (``cache.StoredModel``: a process
        # that tags pages only never reads the model; see :attr:`model`)
        self._model: Any = model
        self.model_version: str | None = model.version if model else None

    def read_long_texts_by_windows(self, on: bool = True) -> None:
        """Have the model read (or not) a text of more than ``LONGEST_TEXT`` sentences by
        windows. The events then name the model ``<version>+windows``: a consumer, and
        ``retag``, can tell which reading tagged an article."""
        base = (self.model_version or "").removesuffix(WINDOWS_SUFFIX) or None
        self.long_text_windows = bool(on) and self._model is not None
        self.model_version = f"{base}{WINDOWS_SUFFIX}" if base and self.long_text_windows else base

    @property
    def model(self) -> TopicModel | None:
        """The learned model (None: the rules alone). A tagger from the start-up cache holds a
        stand-in until an item the model reads first needs it: ``tag`` over pages never loads
        it (~40 ms and 18 MB of a process's start), unless it reads them by windows."""
        m = self._model
        if m is None or isinstance(m, TopicModel):
            return m
        loaded: TopicModel = m.load()
        self._model = loaded  # a race of two threads loads it twice, both alike
        return loaded

    # ------------------------------------------------------------------ construction

    def with_model(self, model: TopicModel | None) -> Tagger:
        """The same taxonomy with another model (or none): for cross-validation."""
        other = copy.copy(self)
        other._model = model
        other.model_version = model.version if model else None
        other.read_long_texts_by_windows(self.long_text_windows)  # and name it so
        return other

    @classmethod
    def from_files(
        cls, topics_yaml: Path, countries_yaml: Path, model_json: Path | None = None
    ) -> Tagger:
        """``model_json``: the learned model (``python -m worker train``); None: rules only."""
        topics = load_topics(Path(topics_yaml))
        countries = load_countries(Path(countries_yaml))
        model = None
        if model_json is not None:
            try:
                model = TopicModel.from_file(Path(model_json))
            except ModelError as exc:
                raise TaxonomyError(str(exc)) from None
        return cls(topics, countries, model)

    @classmethod
    def from_config_dir(cls, path: Path, *, model: bool = True) -> Tagger:
        """The taxonomy in ``path``, with ``topic-model.json`` when it is there and ``model``."""
        path = Path(path)
        model_json = path / MODEL_FILE
        return cls.from_files(
            path / "topics.yaml",
            path / "countries.yaml",
            model_json if model and model_json.is_file() else None,
        )

    def _build(self, topics: TopicsFile, countries: CountriesFile) -> ahocorasick.Automaton:
        # key (padded normalised term) -> list of (payload kind, data, case check)
        # case check: None (any case), ("exact", {variants}) or ("proper", None)
        keys: dict[str, list[tuple[int, int, Any, Any]]] = {}

        def add(pattern: str, kind: int, data: Any, case: str | None) -> None:
            for term in expand_term(pattern):
                suffix = term.startswith("*")
                if suffix:
                    term = term[1:]
                norm = normalize_term(term)
                if not norm:
                    raise TaxonomyError(f"term {pattern!r} has no letters or digits")
                key = (norm if suffix else " " + norm) + " "
                check: Any = None
                tcase = case
                if tcase is None and _ACRONYM.match(term):
                    tcase = "exact"  # "WHO", "UN", "EU", "START": never the common word
                if tcase == "exact":
                    check = ("exact", normalize_term(term, lower=False))
                elif tcase == "proper":
                    check = ("proper", None)
                elif tcase == "lower":
                    check = ("lower", None)
                if kind == _TOPIC:
                    ns = data[0]
                elif kind == _COUNTRY:
                    ns = _COUNTRY_NS
                elif kind == _CTX:
                    ns = -2
                else:
                    ns = -3
                keys.setdefault(key, []).append((kind, ns, data, check))

        for ti, t in enumerate(topics.topics):
            for ri, r in enumerate(t.rules):
                for pattern in r.terms:
                    # term id: the pattern, so inflections of one term count as repeats
                    case = "exact" if r.case_sensitive else "lower" if r.lowercase_only else None
                    add(pattern, _TOPIC, (ti, ri, pattern), case)
        for name, terms in topics.contexts.items():
            for pattern in terms:
                add(pattern, _CTX, "@" + name, None)
        index = {tid: i for i, tid in enumerate(self._topic_ids)}
        for b in topics.blockers:
            targets = frozenset(_COUNTRY_NS if x == "countries" else index[x] for x in b.blocks)
            for pattern in b.terms:
                add(pattern, _BLOCK, targets, "exact" if b.case_sensitive else None)
        for ex in countries.exclusions:
            for pattern in ex.terms:
                add(pattern, _BLOCK, frozenset({_COUNTRY_NS}), None)

        owner: dict[str, str] = {}
        for c in countries.countries:
            exact = set(c.exact_case)
            groups: list[tuple[str, list[str]]] = [
                ("name", [c.name, *c.names]),
                ("adjective", _with_plurals(c.adjectives)),
                ("capital", c.capitals),
                ("seat", c.seats),
                ("city", c.cities),
                ("region", c.regions),
                ("foreign", c.foreign),
                ("foreign_adj", c.foreign_adjectives),
            ]
            entries: list[tuple[str, str, _CountryEntry]] = []
            for kind, terms in groups:
                for term in terms:
                    entries.append((term, kind, self._country_entry(c, term, kind)))
            for ld in c.leaders:
                for term in [ld.name, *ld.aliases]:
                    e = self._country_entry(c, term, "leader")
                    entries.append(
                        (
                            term,
                            "leader",
                            _CountryEntry(
                                c.code, "leader", ld.start, ld.end, e.name_guard, e.confirm
                            ),
                        )
                    )
            for term, kind, entry in entries:
                for variant in expand_term(term):
                    norm = normalize_term(variant)
                    prev = owner.get(norm)
                    if prev is not None and prev != c.code:
                        raise TaxonomyError(
                            f"countries.yaml: {variant!r} is listed for both {prev} and {c.code}"
                        )
                    owner[norm] = c.code
                case = "exact" if term in exact else None if kind == "foreign_adj" else "proper"
                add(term, _COUNTRY, entry, case)

        auto = ahocorasick.Automaton()
        for key, payloads in keys.items():
            auto.add_word(
                key, (len(key) - 1 - (0 if not key.startswith(" ") else 1), tuple(payloads))
            )
        auto.make_automaton()
        return auto

    @staticmethod
    def _country_entry(c: Any, term: str, kind: str) -> _CountryEntry:
        amb = c.ambiguous.get(term)
        if amb is None:
            return _CountryEntry(c.code, kind)
        return _CountryEntry(
            c.code, kind, name_guard=amb.name_guard, confirm=frozenset(amb.confirm)
        )

    # ------------------------------------------------------------------ tagging

    def runs_encoder(self, title: str | None, text: str) -> bool:
        """Whether :meth:`tag` may run the model's sentence encoder on this item: a model
        with neighbours, and an item it reads whole (a headline, a feed summary, a short
        paragraph) or, with :attr:`long_text_windows`, by windows (a text of more than
        ``LONGEST_TEXT`` sentences, where the encoder reads ~2 % of the windows); not a 4-8
        sentence text, of which the model reads the lead without them. Tens of milliseconds
        where it runs: callers on an event loop tag such items in a thread."""
        m = self._model
        if m is None:
            return False
        if not reads_whole(text) and (model_reads(text) or not self.long_text_windows):
            return False  # a 4-8 sentence text's lead; a page the model does not read
        if isinstance(m, TopicModel):
            return m.neighbours is not None
        return m.encoder_dir is not None  # a stand-in from the start-up cache: not read here

    def tag(
        self,
        title: str | None,
        text: str,
        published_at: datetime | None = None,
        *,
        use_model: bool = True,
    ) -> TagResult:
        """Tag one article. ``published_at`` (optional) resolves leaders' terms of office.

        The rules tag first; the learned model (when loaded and ``use_model``) adds the topics
        it finds over its threshold, with the words that carried them as evidence."""
        fields: list[tuple[Field, str]] = []
        if title and title.strip():
            fields.append(("title", title))
        if text and text.strip():
            fields.append(("text", text))
        if not fields:
            return TagResult(topics=[], countries=[])
        day = published_at.date() if published_at is not None else None

        # Hits are plain tuples (field, start, end, kind, data, sentence key), split by kind
        # and kept in text order; the sentence key is -1 for the title, else the index of
        # the sentence in the text. (Tuples, not objects: tagging cost is per match.)
        ctx: list[_Hit] = []
        places: list[_Hit] = []
        topical: list[_Hit] = []
        vetoes: list[tuple[Field, int, int, int]] = []  # (field, start, end, topic index)
        by_kind = {
            _CTX: ctx.append,
            _COUNTRY: places.append,
            _TOPIC: topical.append,
            _VETO: lambda h: vetoes.append((h[0], h[1], h[2], h[4][0])),
        }
        starts: dict[Field, list[int]] = {}
        for fname, value in fields:
            kept = self._match(fname, value)
            if not kept:
                continue
            if fname == "title":
                starts[fname] = [0]
                for start, end, kind, data in kept:
                    by_kind[kind]((fname, start, end, kind, data, -1))
                continue
            st = starts[fname] = sentence_starts(value)
            # kept is sorted by start: walk the sentence starts once (no bisect per hit)
            si = 0
            last = len(st) - 1
            nxt = st[1] if last else _NO_END
            for start, end, kind, data in kept:
                while start >= nxt:
                    si += 1
                    nxt = st[si + 1] if si < last else _NO_END
                by_kind[kind]((fname, start, end, kind, data, si))

        countries, sentences, state_starts, mentions = self._countries(ctx, places, fields, day)
        topics, scores = self._score(topical, sentences, dict(fields), starts, state_starts, vetoes)
        # what the model reads besides words: context words and rule terms, by kind
        ids = self._topic_ids
        mentions += [Mention(f, a, b, "veto:" + ids[ti]) for f, a, b, ti in vetoes]
        mentions += [Mention(h[0], h[1], h[2], "ctx:" + h[4][1:]) for h in ctx]
        mentions += [Mention(h[0], h[1], h[2], "term:" + ids[h[4][0]]) for h in topical]
        mentions += [
            Mention(e.field, e.start, e.end, "rule:" + t.id) for t in topics for e in t.evidence
        ]
        if (
            self._model is None
            or not use_model
            or not (self.long_text_windows or model_reads(text))
        ):
            # (a text longer than any the model learnt from is the rules' alone, unless the
            # model is to read it by windows: the model is not even loaded for it)
            return TagResult(topics=topics, countries=countries, scores=scores, mentions=mentions)
        model_scores, hits, rejected = self.model.predict(  # type: ignore[union-attr]
            title, text, mentions, windows=self.long_text_windows
        )
        if rejected:  # short items: topics the model decides, and rejects here
            topics = [t for t in topics if t.id not in rejected]
        if hits:
            topics = self._add_model_topics(topics, hits, dict(fields), starts)
        return TagResult(
            topics=topics,
            countries=countries,
            scores=scores,
            model_scores=model_scores,
            mentions=mentions,
        )

    def explain(
        self,
        title: str | None,
        text: str,
        published_at: datetime | None = None,
        include: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Why each topic is or is not tagged, for a person (``tag --explain``, ``eval
        --errors``): what the model reads, and for every topic that is tagged, that the rules
        found, that the model gives at least half its threshold, or in ``include``: the rules'
        terms, the model's probability, the threshold that applies, and the reason. Tags
        exactly as :meth:`tag` does."""
        wanted = set(include)
        rules = self.tag(title, text, published_at, use_model=False)
        final = self.tag(title, text, published_at)
        model = (
            self.model.explain(title, text, rules.mentions, windows=self.long_text_windows)
            if self.model
            else None
        )
        ruled = {t.id: [e.term for e in t.evidence] for t in rules.topics}
        tagged = {t.id for t in final.topics}
        excluded = {m.kind[5:] for m in rules.mentions if m.kind.startswith("veto:")}
        rows = []
        for tid in self.topics:
            m = model["topics"].get(tid) if model else None
            p, th = (m["probability"], m["threshold"]) if m else (None, None)
            veto = model["veto_below"] if model else 0.0
            near = p is not None and th is not None and p >= th / 2
            if not (tid in tagged or tid in ruled or near or tid in wanted):
                continue
            if tid in tagged:
                why = (
                    "the rules and the model"
                    if tid in ruled and p is not None and th is not None and p >= th
                    else "the rules"
                    if tid in ruled
                    else "the model"
                )
            elif tid in ruled:
                why = (
                    f"dropped: the model gives it {p:.2f}, under its veto ({veto:g})"
                    if p is not None and p < veto
                    else f"dropped: the model decides this item alone, {p:.2f} < {th:.2f}"
                    if model and model.get("alone")
                    else "dropped: the model decides this topic on short items"
                )
            elif tid in excluded:
                why = "not tagged: the rules read its term in another sense here"
            elif p is None:
                why = (
                    "not tagged: no rule term (the model does not read this text)"
                    if model
                    else "not tagged: no rule term (no model)"
                )
            else:
                why = f"not tagged: the model gives it {p:.2f}, under {th:.2f}"
            rows.append(
                {
                    "topic": tid,
                    "tagged": tid in tagged,
                    "rules": ruled.get(tid, []),
                    "probability": p,
                    "neighbours": m.get("neighbours") if m else None,
                    "threshold": th,
                    "why": why,
                }
            )
        return {
            "model": self.model_version,
            "reads": model["reads"] if model else "(no model: the rules alone)",
            "veto_below": model["veto_below"] if model else 0.0,
            "topics": rows,
        }

    def _add_model_topics(
        self,
        topics: list[TopicTag],
        hits: list[ModelHit],
        values: dict[Field, str],
        starts: dict[Field, list[int]],
    ) -> list[TopicTag]:
        """The rules' tags, plus the model's topics the rules did not tag (a topic both find
        keeps the rules' evidence and the higher score). ``starts``: the sentence starts the
        rules found, per field (extended here where they had none)."""
        by_id = {t.id: t for t in topics}
        starts_cache = starts
        for h in hits:
            have = by_id.get(h.topic)
            if have is not None:
                if h.probability > have.score:
                    by_id[h.topic] = have.model_copy(update={"score": round(h.probability, 4)})
                continue
            evidence = []
            for fname, start, end in h.spans:
                value = values.get(fname)  # type: ignore[call-overload]
                if value is None:
                    continue
                st = starts_cache.get(fname)  # type: ignore[call-overload]
                if st is None:
                    st = starts_cache[fname] = [0] if fname == "title" else sentence_starts(value)  # type: ignore[index]
                evidence.append(
                    Evidence(
                        term=value[start:end],
                        field=fname,  # type: ignore[arg-type]
                        start=start,
                        end=end,
                        sentence=sentence_text(value, st, sentence_index(st, start), (start, end)),
                    )
                )
            info = self.topics[h.topic]
            by_id[h.topic] = TopicTag(
                id=info.id,
                label=info.label,
                score=round(h.probability, 4),
                iptc=info.iptc,
                evidence=evidence,
            )
        tags = list(by_id.values())
        tags.sort(key=self._tag_order)
        return tags

    def _match(self, fname: Field, value: str) -> list[tuple[int, int, int, Any]]:
        """(start, end, kind, data) of the matches that survive case checks, containment and
        blockers, sorted by start (then longest first)."""
        norm = " " + normalize(value) + " "
        raw: list[tuple[int, int, int, int, int, Any]] = []
        add = raw.append
        i = 0
        is_text = fname == "text"
        for end_idx, (tlen, payloads) in self._auto.iter(norm):
            # the key ends with the padding space at norm[end_idx]; norm is value shifted by 1
            end = end_idx - 1
            start = end - tlen
            for kind, ns, data, check in payloads:
                if check is not None:
                    mode = check[0]
                    if mode == "proper":
                        if not value[start].isupper():
                            continue
                    elif mode == "lower":
                        if is_text and not value[start].islower():
                            continue
                    else:
                        piece = value[start:end]
                        if piece != check[1] and (
                            piece.isalnum() or normalize_term(piece, lower=False) != check[1]
                        ):
                            continue
                i += 1
                add((start, -end, i, kind, ns, data))
        if not raw:
            return []
        # Longest match wins within a namespace; blockers cover the namespaces they name.
        raw.sort()
        cover: dict[int, tuple[int, int]] = {}  # ns -> (start, end) of the widest so far
        blocked: dict[int, int] = {}  # ns -> end of the last blocker naming it
        kept: list[tuple[int, int, int, Any]] = []
        keep = kept.append
        for start, nend, _, kind, ns, data in raw:
            end = -nend
            if kind == _CTX:
                keep((start, end, kind, data))
                continue
            if kind == _BLOCK:
                for target in data:
                    c = cover.get(target)
                    if c is None or end >= c[1]:
                        cover[target] = (start, end + 1)  # +1: a blocker also beats equal spans
                    blocked[target] = max(blocked.get(target, -1), end)
                continue
            c = cover.get(ns)
            if c is not None:
                cend = c[1]
                if cend >= end and (c[0] != start or cend != end):
                    if kind == _TOPIC and blocked.get(ns, -1) >= end:
                        keep((start, end, _VETO, data))
                    continue
                if end > cend:
                    cover[ns] = (start, end)
            else:
                cover[ns] = (start, end)
            keep((start, end, kind, data))
        return kept

    def _countries(
        self,
        ctx: list[_Hit],
        places: list[_Hit],
        fields: list[tuple[Field, str]],
        day: date | None,
    ) -> tuple[list[str], dict[int, _Sentence], dict[Field, set[int]], list[Mention]]:
        """The article's countries in order of first mention, the context of each sentence,
        where each field names a state (start offsets, for ``followed_by_state``), and the
        state mentions (for the learned model)."""
        sentences: dict[int, _Sentence] = {}
        for _, _, _, _, group, sk in ctx:
            s = sentences.get(sk)
            if s is None:
                s = sentences[sk] = _Sentence()
            s.groups.add(group)
        if not places:
            return [], sentences, {}, []
        values = dict(fields)
        confirmed: set[str] = set()
        pending: list[_Hit] = []
        valid: list[_Hit] = []
        for h in places:
            e: _CountryEntry = h[4]
            if day is not None and (
                (e.start is not None and day < e.start) or (e.end is not None and day > e.end)
            ):
                continue
            if e.name_guard and _looks_like_name(values[h[0]], h[1], h[2]):
                continue
            if e.confirm:
                pending.append(h)
                continue
            confirmed.add(e.code)
            valid.append(h)
        if pending:
            # states per sentence from unambiguous mentions, to confirm ambiguous ones
            sent_states: dict[int, set[str]] = {}
            for h in valid:
                if h[4].kind in STATE_KINDS:
                    sent_states.setdefault(h[5], set()).add(h[4].code)
            for h in pending:
                e = h[4]
                ok = "document" in e.confirm and e.code in confirmed
                if not ok and "sentence" in e.confirm:
                    ok = bool(sent_states.get(h[5], _NO_STATES) - {e.code})
                if ok:
                    valid.append(h)
        order: dict[str, tuple[int, int]] = {}
        state_starts: dict[Field, set[int]] = {}
        mentions: list[Mention] = []
        for fname, start, end, _, e, sk in valid:
            code = e.code
            pos = (0 if fname == "title" else 1, start)
            prev = order.get(code)
            if prev is None or pos < prev:
                order[code] = pos
            s = sentences.get(sk)
            if s is None:
                s = sentences[sk] = _Sentence()
            s.countries.add(code)
            kind = e.kind
            if kind in STATE_KINDS:
                s.states.add(code)
                st = state_starts.get(fname)
                if st is None:
                    state_starts[fname] = {start}
                else:
                    st.add(start)
                mentions.append(Mention(fname, start, end, kind))
                if kind == "leader":
                    s.leader = True
        return sorted(order, key=order.__getitem__), sentences, state_starts, mentions

    def _score(
        self,
        hits: list[_Hit],
        sentences: dict[int, _Sentence],
        values: dict[Field, str],
        starts: dict[Field, list[int]],
        state_starts: dict[Field, set[int]],
        vetoes: list[tuple[Field, int, int, int]],
    ) -> tuple[list[TopicTag], dict[str, float]]:
        """Rule scores and tags; a term dropped for another sense (``excludes``) is added to
        ``vetoes``."""
        empty = _EMPTY_SENTENCE
        rules_of = self._rules
        max_repeats = self._max_repeats
        seen: dict[tuple[int, str], int] = {}
        spans: set[tuple[int, str, int, int]] = set()
        accepted: dict[int, list[tuple[float, _Hit]]] = {}
        for h in hits:
            fname, start, end, _, (ti, ri, term_id), sk = h
            rule = rules_of[ti][ri]
            s = sentences.get(sk, empty)
            if rule.excludes and _has_any(s, rule.excludes):
                vetoes.append((fname, start, end, ti))
                continue
            w = rule.weight
            if (
                (rule.requires and not _has_any(s, rule.requires))
                or len(s.states) < rule.min_countries
                or (
                    rule.followed_by_state
                    and not _state_follows(values[fname], end, state_starts.get(fname))
                )
            ):
                w = rule.else_weight
                if w <= 0:
                    continue
            span = (ti, fname, start, end)
            if span in spans:  # one place matched by two rules or spellings: count it once
                continue
            key = (ti, term_id)
            n = seen.get(key, 0)
            if n > max_repeats:
                continue
            seen[key] = n + 1
            if n:
                w *= self._repeat_weight
            if sk < 0:  # the title
                w *= self._title_weight
            spans.add(span)
            items = accepted.get(ti)
            if items is None:
                accepted[ti] = [(w, h)]
            else:
                items.append((w, h))
        if not accepted:
            return [], {}
        # A sentence is one piece of evidence: its strongest match counts in full, the
        # others in it by `same_sentence_weight` (three words of one aside are still an aside).
        same = self._same_sentence_weight
        tags: list[TopicTag] = []
        scores: dict[str, float] = {}
        for ti, items in accepted.items():
            # per sentence, the best match of each rule ("World Health Organization (WHO)" is
            # one mention, not two)
            per_sentence: dict[int, dict[int, float]] = {}
            for w, h in items:
                ri = h[4][1]
                by_rule = per_sentence.get(h[5])
                if by_rule is None:
                    per_sentence[h[5]] = {ri: w}
                elif w > by_rule.get(ri, 0.0):
                    by_rule[ri] = w
            total = 0.0
            for by_rule in per_sentence.values():
                if len(by_rule) == 1:
                    for top in by_rule.values():
                        total += top  # top + same * 0.0
                    continue
                ws = by_rule.values()
                top = max(ws)
                total += top + same * (sum(ws) - top)

            info = self._infos[ti]
            score = round(1.0 - 0.5**total, 4)
            scores[info.id] = score
            if score + 1e-9 < info.threshold:
                continue
            best = sorted(items, key=_neg_weight)[: self._max_evidence]
            best.sort(key=_evidence_order)
            evidence = []
            for _, (fname, start, end, _, _, sk) in best:
                value = values[fname]
                evidence.append(
                    Evidence(
                        term=value[start:end],
                        field=fname,
                        start=start,
                        end=end,
                        sentence=sentence_text(value, starts[fname], max(sk, 0), (start, end)),
                    )
                )
            tags.append(
                TopicTag(
                    id=info.id, label=info.label, score=score, iptc=info.iptc, evidence=evidence
                )
            )
        tags.sort(key=self._tag_order)
        return tags, scores

    def _tag_order(self, t: TopicTag) -> tuple[float, int]:
        return (-t.score, self._topic_index[t.id])


_NO_END = 1 << 62
_EMPTY_SENTENCE = _Sentence()  # read only
_NO_STATES: frozenset[str] = frozenset()


# Words allowed between a term and the state it is about: "warned the UK", "threats against Oman".
_LINK_WORDS = frozenset(
    "the a an against to on over at with toward towards its his her their fellow neighbouring "
    "neighboring".split()
)


def _state_follows(value: str, end: int, states: set[int] | None) -> bool:
    """True when a state mention starts right after ``end``, at most two link words between."""
    if not states:
        return False
    n = len(value)
    i = end
    for _ in range(3):
        while i < n and not value[i].isalnum():
            i += 1
        if i in states:
            return True
        j = i
        while j < n and value[j].isalnum():
            j += 1
        if j == i or value[i:j].lower() not in _LINK_WORDS:
            return False
        i = j
    return False


def _neg_weight(wh: tuple[float, _Hit]) -> float:
    return -wh[0]


def _evidence_order(wh: tuple[float, _Hit]) -> tuple[bool, int]:
    h = wh[1]
    return (h[0] != "title", h[1])


def _has_any(s: _Sentence, groups: frozenset[str]) -> bool:
    for g in groups:
        if g == "@state":
            if s.states:
                return True
        elif g == "@country":
            if s.countries:
                return True
        elif g == "@leader":
            if s.leader:
                return True
        elif g in s.groups:
            return True
    return False


def _with_plurals(adjectives: list[str]) -> list[str]:
    """Demonyms in -an/-i take a plural in -s: Afghan(s), Iraqi(s), Russian(s)."""
    out: list[str] = []
    for a in adjectives:
        out.append(a)
        if "{" not in a and (a.endswith("n") or a.endswith("i")):
            out.append(a + "s")
    return out


def _looks_like_name(value: str, start: int, end: int) -> bool:
    """True when a capitalised word sits right next to the match: "Michael Jordan",
    "Paris Hilton", "Georgia Tech" (function words and titles do not count)."""
    # word before: skip one space only; a comma or other punctuation breaks the name
    i = start - 1
    if i > 0 and value[i] == " ":
        j = i
        while j > 0 and value[j - 1].isalpha():
            j -= 1
        word = value[j:i]
        if word[:1].isupper() and word.lower() not in _NAME_GUARD_STOP and len(word) > 1:
            # a sentence start before it ("Jordan said" at the start) is not a name
            k = j - 1
            while k >= 0 and value[k] == " ":
                k -= 1
            if k >= 0 and value[k] not in '.!?\n"“':
                return True
    if end + 1 < len(value) and value[end] == " " and value[end + 1].isupper():
        k = end + 1
        while k < len(value) and value[k].isalpha():
            k += 1
        word = value[end + 1 : k]
        if word.lower() not in _NAME_GUARD_STOP and len(word) > 1:
            return True
    return False
