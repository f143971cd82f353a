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

import re
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
from worker.tagging.text import (
    normalize,
    normalize_term,
    sentence_index,
    sentence_starts,
    sentence_text,
)

Field = Literal["title", "text"]

_ACRONYM = re.compile(r"^[A-Z]{2,5}$")
"""Topic terms spelled as short all-capital words match only in capitals (automatic)."""

# payload kinds
_TOPIC, _COUNTRY, _CTX, _BLOCK = 0, 1, 2, 3
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
    ``scores``: every topic with any evidence, passing or not (for evaluation and tuning).
    """

    topics: list[TopicTag]
    countries: list[str]
    scores: dict[str, float] = field(default_factory=dict)

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


@dataclass(slots=True)
class _Hit:
    field: Field
    start: int
    end: int
    kind: int
    ns: int  # containment namespace: topic index, _COUNTRY_NS, or -2 for context words
    a: Any  # topic: (topic index, rule index, term id); country: _CountryEntry; ctx: group
    sent: int = 0


@dataclass(slots=True)
class _Sentence:
    groups: set[str] = field(default_factory=set)
    states: set[str] = field(default_factory=set)
    countries: set[str] = field(default_factory=set)
    leader: bool = False


class Tagger:
    """Tags diplomacy topics and countries. Build once (``from_files``), call :meth:`tag`."""

    def __init__(self, topics: TopicsFile, countries: CountriesFile) -> None:
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
        self._infos = [self.topics[i] for i in self._topic_ids]
        self._rules: list[list[_Rule]] = [
            [
                _Rule(
                    weight=r.weight,
                    else_weight=r.else_weight,
                    requires=frozenset(r.requires),
                    excludes=frozenset(r.excludes),
                    min_countries=r.min_countries,
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

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_files(cls, topics_yaml: Path, countries_yaml: Path) -> Tagger:
        return cls(load_topics(Path(topics_yaml)), load_countries(Path(countries_yaml)))

    @classmethod
    def from_config_dir(cls, path: Path) -> Tagger:
        path = Path(path)
        return cls.from_files(path / "topics.yaml", path / "countries.yaml")

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

    def tag(self, title: str | None, text: str, published_at: datetime | None = None) -> TagResult:
        """Tag one article. ``published_at`` (optional) resolves leaders' terms of office."""
        fields: list[tuple[Field, str]] = []
        if title and title.strip():
            fields.append(("title", title))
        if text and text.strip():
            fields.append(("text", text))
        if not fields:
            return TagResult(topics=[], countries=[])
        day = published_at.date() if published_at is not None else None

        hits: list[_Hit] = []
        starts: dict[Field, list[int]] = {}
        for fname, value in fields:
            fhits = self._match(fname, value)
            if not fhits:
                continue
            st = [0] if fname == "title" else sentence_starts(value)
            starts[fname] = st
            for h in fhits:
                h.sent = sentence_index(st, h.start)
            hits.extend(fhits)

        countries, sentences = self._countries(hits, fields, day)
        topics, scores = self._score(hits, sentences, dict(fields), starts)
        return TagResult(topics=topics, countries=countries, scores=scores)

    def _match(self, fname: Field, value: str) -> list[_Hit]:
        norm = " " + normalize(value) + " "
        raw: list[tuple[int, int, int, int, int, Any]] = []
        add = raw.append
        i = 0
        for end_idx, (tlen, payloads) in self._auto.iter(norm):
            # the key ends with the padding space at norm[end_idx]; norm is value shifted by 1
            end = end_idx - 1
            start = end - tlen
            for kind, ns, data, check in payloads:
                if check is not None:
                    piece = value[start:end]
                    mode = check[0]
                    if mode == "proper":
                        if not piece[:1].isupper():
                            continue
                    elif mode == "lower":
                        if fname == "text" and not piece[:1].islower():
                            continue
                    elif piece != check[1] and (
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
        kept: list[_Hit] = []
        for start, nend, _, kind, ns, data in raw:
            end = -nend
            if kind == _BLOCK:
                for target in data:
                    c = cover.get(target)
                    if c is None or end >= c[1]:
                        cover[target] = (start, end + 1)  # +1: a blocker also beats equal spans
                continue
            if kind != _CTX:
                c = cover.get(ns)
                if c is not None and c[1] >= end and (c[0] != start or c[1] != end):
                    continue
                if c is None or end > c[1]:
                    cover[ns] = (start, end)
            kept.append(_Hit(fname, start, end, kind, ns, data))
        return kept

    def _countries(
        self, hits: list[_Hit], fields: list[tuple[Field, str]], day: date | None
    ) -> tuple[list[str], dict[tuple[Field, int], _Sentence]]:
        values = dict(fields)
        sentences: dict[tuple[Field, int], _Sentence] = {}
        confirmed: set[str] = set()
        pending: list[_Hit] = []
        valid: list[_Hit] = []
        for h in hits:
            if h.kind == _CTX:
                s = sentences.get((h.field, h.sent))
                if s is None:
                    s = sentences[(h.field, h.sent)] = _Sentence()
                s.groups.add(h.a)
                continue
            if h.kind != _COUNTRY:
                continue
            e: _CountryEntry = h.a
            if day is not None and (
                (e.start is not None and day < e.start) or (e.end is not None and day > e.end)
            ):
                continue
            if e.name_guard and _looks_like_name(values[h.field], h.start, h.end):
                continue
            if e.confirm:
                pending.append(h)
                continue
            confirmed.add(e.code)
            valid.append(h)
        # states per sentence from unambiguous mentions, to confirm ambiguous ones
        sent_states: dict[tuple[Field, int], set[str]] = {}
        for h in valid:
            if h.a.kind in STATE_KINDS:
                sent_states.setdefault((h.field, h.sent), set()).add(h.a.code)
        for h in pending:
            e = h.a
            ok = "document" in e.confirm and e.code in confirmed
            if not ok and "sentence" in e.confirm:
                ok = bool(sent_states.get((h.field, h.sent), set()) - {e.code})
            if ok:
                valid.append(h)
        order: dict[str, tuple[int, int]] = {}
        for h in valid:
            e = h.a
            pos = (0 if h.field == "title" else 1, h.start)
            if e.code not in order or pos < order[e.code]:
                order[e.code] = pos
            s = sentences.get((h.field, h.sent))
            if s is None:
                s = sentences[(h.field, h.sent)] = _Sentence()
            s.countries.add(e.code)
            if e.kind in STATE_KINDS:
                s.states.add(e.code)
            if e.kind == "leader":
                s.leader = True
        return sorted(order, key=order.__getitem__), sentences

    def _score(
        self,
        hits: list[_Hit],
        sentences: dict[tuple[Field, int], _Sentence],
        values: dict[Field, str],
        starts: dict[Field, list[int]],
    ) -> tuple[list[TopicTag], dict[str, float]]:
        empty = _Sentence()
        seen: dict[tuple[int, str], int] = {}
        spans: dict[tuple[int, str, int, int], float] = {}
        accepted: dict[int, list[tuple[float, _Hit]]] = {}
        for h in hits:
            if h.kind != _TOPIC:
                continue
            ti, ri, term_id = h.a
            rule = self._rules[ti][ri]
            s = sentences.get((h.field, h.sent), empty)
            if rule.excludes and _has_any(s, rule.excludes):
                continue
            w = rule.weight
            if (rule.requires and not _has_any(s, rule.requires)) or (
                len(s.states) < rule.min_countries
            ):
                w = rule.else_weight
                if w <= 0:
                    continue
            span = (ti, h.field, h.start, h.end)
            if span in spans:  # one place matched by two rules or spellings: count it once
                continue
            n = seen.get((ti, term_id), 0)
            if n > self._max_repeats:
                continue
            seen[(ti, term_id)] = n + 1
            if n:
                w *= self._repeat_weight
            if h.field == "title":
                w *= self._title_weight
            spans[span] = w
            accepted.setdefault(ti, []).append((w, h))
        # A sentence is one piece of evidence: its strongest match counts in full, the
        # others in it by `same_sentence_weight` (three words of one aside are still an aside).
        units: dict[int, float] = {}
        for ti, items in accepted.items():
            # per sentence, the best match of each rule ("World Health Organization (WHO)" is
            # one mention, not two)
            per_sentence: dict[tuple[str, int], dict[int, float]] = {}
            for w, h in items:
                rules = per_sentence.setdefault((h.field, h.sent), {})
                ri = h.a[1]
                if w > rules.get(ri, 0.0):
                    rules[ri] = w
            total = 0.0
            for by_rule in per_sentence.values():
                ws = by_rule.values()
                top = max(ws)
                total += top + self._same_sentence_weight * (sum(ws) - top)
            units[ti] = total

        tags: list[TopicTag] = []
        scores: dict[str, float] = {}
        for ti, u in units.items():
            info = self._infos[ti]
            score = round(1.0 - 0.5**u, 4)
            scores[info.id] = score
            if score + 1e-9 < info.threshold:
                continue
            best = sorted(accepted[ti], key=lambda wh: -wh[0])[: self._max_evidence]
            best.sort(key=lambda wh: (wh[1].field != "title", wh[1].start))
            evidence = []
            for _, h in best:
                value = values[h.field]
                evidence.append(
                    Evidence(
                        term=value[h.start : h.end],
                        field=h.field,
                        start=h.start,
                        end=h.end,
                        sentence=sentence_text(value, starts[h.field], h.sent, (h.start, h.end)),
                    )
                )
            tags.append(
                TopicTag(
                    id=info.id, label=info.label, score=score, iptc=info.iptc, evidence=evidence
                )
            )
        order = {tid: i for i, tid in enumerate(self._topic_ids)}
        tags.sort(key=lambda t: (-t.score, order[t.id]))
        return tags, scores


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
