"""Choose the items of the labelled corpus from the unlabelled pools, by stratum.

``python -m worker.corpus.sample --out DIR [--seed N]`` reads

- ``--wcep``: Wikipedia Current Events Portal event summaries (1-3 sentences: *paragraph*);
- ``--headlines``: news headlines from Reddit news communities (*headline* only);
- ``--feeds``: RSS snapshots (``*.xml``) and ``--feeds-extra`` items harvested from archived feeds
  (``*.jsonl``): a title and its one-line summary (*headline+summary*);

and writes ``DIR/items.jsonl`` (every chosen item with its source, shape, stratum, story
group and source metadata), ``DIR/batches/batch-NNN.jsonl`` (what annotators see: id, date,
title, text, in a shuffled order, 100 a batch) and ``DIR/sampling.json`` (seed, pool digests,
per stratum its rule, candidates and items drawn).

A stratum is a rule over an item's source metadata (editor category, story heading, the
community a headline was posted in) or over a few search words for rare topics; it decides
only which items get *read*, never a label. Items of the dev set or the feed held-out set,
and items that repeat one of them, are never drawn. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

Item = dict[str, Any]

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
ROOT = Path(__file__).resolve().parents[2]

#: The labelled sets made before the fresh test sets (paths from the project's root): a new
#: set draws none of their items, nor any that repeats one of them (``tests/data/fresh/``'s
#: sampling scripts and ``tests/eval/test_fresh.py`` read this one list).
LABELLED_SETS = (
    "tests/data/corpus/corpus.jsonl",
    "tests/data/corpus/silver.jsonl",
    "tests/data/corpus/annotation-silver-dropped/items.jsonl",
    "tests/data/diplomacy-dev.jsonl",
    "tests/data/heldout/feeds-heldout.jsonl",
    "tests/data/outlets/feed-sample.jsonl",
    "tests/data/longtrain/longtrain.jsonl",
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    """the a an of to in on for and or but with by as at from into over after before about
    amid says said say will would could can may might has have had is are was were be been
    its his her their our new not no more than that this these those who what how why when
    it he she they we you i us up out off -- s""".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def norm_title(title: str) -> str:
    return " ".join(_WORD.findall(title.lower()))


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).date().isoformat()


def _plain(html: str) -> str:
    from w3lib.html import remove_tags, replace_entities

    return " ".join(replace_entities(remove_tags(html or "")).split())


# ------------------------------------------------------------------------------ pools


def load_wcep(path: Path) -> list[Item]:
    out: list[Item] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            text = " ".join((r.get("text") or "").split())
            # the 2002-2003 pages are laid out differently and their fields are often swapped
            if r["date"] < "2004" or len(text) < 50 or len(text.split()) < 8:
                continue
            if text[-1] not in '.!?"”)':
                continue
            out.append(
                {
                    "id": r["id"],
                    "source": "wcep",
                    "shape": "paragraph",
                    "date": r["date"],
                    "title": None,
                    "text": text,
                    "meta": {
                        "category": r.get("category"),
                        "story": r.get("story"),
                        "outlets": r.get("outlets") or [],
                    },
                }
            )
    return out


def load_headlines(path: Path) -> list[Item]:
    out: list[Item] = []
    seen: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            title = " ".join((r.get("title") or "").split())
            key = norm_title(title)
            if len(title) < 25 or len(title) > 300 or key in seen:
                continue
            seen.add(key)
            try:
                dt = datetime.strptime(r["published"], "%B %d, %Y %I:%M %p")  # noqa: DTZ007
                date = dt.date().isoformat()
            except (KeyError, TypeError, ValueError):
                date = None
            out.append(
                {
                    "id": r["id"],
                    "source": "headlines-2022",
                    "shape": "headline",
                    "date": date,
                    "title": title,
                    "text": "",
                    "meta": {"category": r.get("category"), "domain": r.get("domain"),
                             "url": r.get("url")},
                }
            )  # fmt: skip
    return out


def _feed_item(
    source: str,
    file: str,
    guid: str,
    link: str | None,
    date: str | None,
    title: str,
    summary: str,
    extra: dict[str, Any],
) -> Item | None:
    title = " ".join(title.split())
    summary = " ".join(summary.split())
    if not title:
        return None
    # Google News pools repeat the title as the description: that is a headline only
    if jaccard(content_words(summary), content_words(title)) >= 0.6 or len(summary) < 20:
        summary = ""
    digest = hashlib.sha1(f"{file}\n{guid}".encode()).hexdigest()[:12]
    return {
        "id": f"fd-{digest}",
        "source": source,
        "shape": "headline+summary" if summary else "headline",
        "date": date,
        "title": title,
        "text": summary,
        "meta": {"file": file, "guid": guid, "link": link, **extra},
    }


def load_feed_snapshots(folder: Path) -> list[Item]:
    import feedparser

    out: list[Item] = []
    for path in sorted(Path(folder).glob("*.xml")):
        doc = feedparser.parse(path.read_bytes())
        for e in doc.entries:
            guid = e.get("id") or e.get("link") or e.get("title", "")
            dt = None
            if e.get("published"):
                try:
                    dt = parsedate_to_datetime(e["published"])
                except (TypeError, ValueError):
                    dt = None
            item = _feed_item(
                "feeds-local", path.name, guid, e.get("link"), _iso(dt),
                _plain(e.get("title", "")), _plain(e.get("summary", "")), {},
            )  # fmt: skip
            if item:
                out.append(item)
    return out


def load_feed_harvest(folder: Path) -> list[Item]:
    out: list[Item] = []
    for path in sorted(Path(folder).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            dt = None
            try:
                dt = parsedate_to_datetime(r.get("pubDate") or "")
            except (TypeError, ValueError, IndexError):
                dt = None
            item = _feed_item(
                "feeds-archive", f"{r['repo']}:{r['path']}", r.get("guid") or r.get("link"),
                r.get("link"), _iso(dt), _plain(r.get("title", "")),
                _plain(r.get("summary", "")), {"commit": r.get("commit")},
            )  # fmt: skip
            if item:
                out.append(item)
    return out


# ------------------------------------------------------------------------- exclusions


def protected_titles(*jsonl: Path) -> tuple[set[str], list[set[str]], set[tuple[str, str]]]:
    """Titles, title word sets and (snapshot, guid) pairs of the evaluation sets."""
    exact: set[str] = set()
    words: list[set[str]] = []
    guids: set[tuple[str, str]] = set()
    for path in jsonl:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            title = r.get("title") or ""
            exact.add(norm_title(title))
            words.append(content_words(title))
            if r.get("guid"):
                guids.add((r.get("source", ""), r["guid"]))
    return exact, words, guids


def drop_protected(items: list[Item], protected: Path | Iterable[Path]) -> tuple[list[Item], int]:
    paths = [protected] if isinstance(protected, Path) else list(protected)
    exact, words, guids = protected_titles(*paths)
    guid_only = {g for _, g in guids}
    kept, dropped = [], 0
    for it in items:
        title = it.get("title") or ""
        cw = content_words(title)
        hit = norm_title(title) in exact if title else False
        hit = hit or (it["meta"].get("guid") in guid_only)
        hit = hit or (bool(cw) and any(jaccard(cw, w) >= 0.5 for w in words))
        if hit:
            dropped += 1
        else:
            kept.append(it)
    return kept, dropped


# ---------------------------------------------------------------------------- strata


def _rx(pattern: str, flags: int = re.IGNORECASE) -> Callable[[str], bool]:
    rx = re.compile(pattern, flags)
    return lambda s: bool(s and rx.search(s))


# search words that find candidates for rare topics (selection only, never a label)
RARE: dict[str, Callable[[str], bool]] = {
    "arms-control": _rx(
        r"arms control|disarmament|\bNew START\b|\bSTART (I|II|treaty)\b|\bINF\b|Intermediate-Range"
        r"|test[- ]ban|\bCTBT\b|Open Skies|Chemical Weapons Convention|Biological Weapons"
        r"|Arms Trade Treaty|arms race|nuclear arsenal|warheads?\b|strategic stability"
        r"|Strategic (Arms|Offensive)|anti-ballistic|missile defen[cs]e|cluster (munitions|bombs)"
        r"|landmines?|Ottawa Treaty|Treaty on the Prohibition|nuclear weapons"
    ),
    "nonproliferation": _rx(
        r"nuclear program|weapons of mass destruction|\bIAEA\b|International Atomic Energy"
        r"|\bJCPOA\b|Joint Comprehensive Plan|nuclear deal|enrich(ment|ed) uranium|uranium enrich"
        r"|nuclear test|Non-Proliferation|\bNPT\b|Yongbyon|Natanz|Fordow|ballistic missile"
    ),
    "pandemic": _rx(
        r"COVID|coronavirus|pandemic|H1N1|swine flu|avian (flu|influenza)|bird flu|H5N1|Ebola"
        r"|Zika|epidemic|outbreak|mpox|monkeypox|\bSARS\b|\bMERS\b|cholera|measles|polio"
    ),
    "territorial-disputes": _rx(
        r"territorial|border dispute|South China Sea|Kashmir|Crimea|annex|Senkaku|Diaoyu"
        r"|Falkland|Western Sahara|Kuril|Nagorno|Gibraltar|Essequibo|Spratly|Paracel|Dokdo"
        r"|Liancourt|Golan|Abyei|sovereignty|maritime (boundary|border|claims?)|disputed"
    ),
    "multilateral": _rx(
        r"United Nations|\bUN\b|\bU\.N\.|Security Council|General Assembly|\bG20\b|\bG-20\b|\bG7\b"
        r"|\bG8\b|\bASEAN\b|African Union|European Union|European Council|Organization of American"
        r"|Arab League|World Health Organization|\bWHO\b|\bUNESCO\b|\bUNHCR\b|\bUNICEF\b|\bBRICS\b"
        r"|\bOPEC\b|World Trade Organization|\bWTO\b|\bOSCE\b|\bEU\b",
        0,
    ),
    "sanctions": _rx(r"sanction|embargo|blacklist|asset freeze|export control"),
    "alliances": _rx(
        r"\bNATO\b|\bAUKUS\b|allian|\bQuad\b|defen[cs]e (pact|treaty|cooperation)|military aid"
        r"|arms (sale|deal|deliver)|joint (military )?(exercise|drill)|security guarantee|\bCSTO\b"
    ),
    "peace-process": _rx(
        r"peace (process|talks|agreement|deal|plan|accord)|cease-?fire|truce|peacekeep|armistice"
        r"|prisoner (exchange|swap)"
    ),
    "diplomatic-relations": _rx(r"\brelations\b|ambassador|embassy|envoy|consulate|expel|diplomat"),
    "trade": _rx(r"\btrade (deal|agreement|war|talks|dispute|pact)|tariff|free trade|import ban"),
    "leader-contact": _rx(r"summit|state visit|phone call|telephone|\bmeets?\b|\bmet\b|visit"),
    "negotiations": _rx(r"negotiat|\btalks\b"),
}


ARMS_TIGHT = _rx(
    r"arms control|disarmament|New START|\bSTART (I|II|treaty)|INF Treaty"
    r"|Intermediate-Range Nuclear|Test-?Ban|\bCTBT\b|Open Skies|Chemical Weapons Convention"
    r"|Biological Weapons Convention"
    r"|Arms Trade Treaty|arms race|arms reduction|Strategic Arms|Strategic Offensive"
    r"|anti-ballistic|cluster munitions|Ottawa Treaty|Prohibition of Nuclear Weapons"
    r"|nuclear arsenal|reduce.{0,30}(warheads|nuclear weapons)|OPCW"
    r"|Organisation for the Prohibition"
    r"|chemical weapons stockpile|destruction of (its )?chemical"
)


@dataclass(frozen=True)
class Stratum:
    name: str
    source: str
    rule: str  # for the record
    pick: Callable[[Item], bool]
    quota: int


def _meta(key: str) -> Callable[[Item], str]:
    return lambda it: it["meta"].get(key) or ""


def _community(name: str) -> Callable[[Item], bool]:
    return lambda it: it["meta"].get("category") == name


def _cat(*names: str) -> Callable[[Item], bool]:
    want = {n.lower() for n in names}
    return lambda it: (it["meta"].get("category") or "").lower() in want


def _story_or_text(topic: str) -> Callable[[Item], bool]:
    m = RARE[topic]
    return lambda it: m(it["meta"].get("story") or "") or m(it["text"])


def _title(topic: str) -> Callable[[Item], bool]:
    m = RARE[topic]
    return lambda it: m(it.get("title") or "")


def strata() -> list[Stratum]:
    s: list[Stratum] = []
    # paragraphs: WCEP event summaries
    s.append(Stratum("wcep:random", "wcep", "uniform over all events", lambda it: True, 300))
    for cat, names, quota in [
        ("international-relations", ("International relations",), 170),
        ("armed-conflict", ("Armed conflicts and attacks", "Armed conflict and attacks"), 70),
        ("politics", ("Politics and elections", "Politics"), 40),
        ("health", ("Health and environment", "Health", "Health and medicine"), 40),
        ("business", ("Business and economy", "Business and economics"), 50),
        ("law-crime", ("Law and crime",), 25),
        ("disasters", ("Disasters and accidents", "Disasters"), 15),
    ]:
        s.append(
            Stratum(
                f"wcep:category:{cat}", "wcep", f"category in {list(names)}", _cat(*names), quota
            )
        )
    for topic, quota in [
        ("arms-control", 150),
        ("nonproliferation", 60),
        ("pandemic", 90),
        ("territorial-disputes", 150),
        ("multilateral", 100),
        ("sanctions", 50),
        ("alliances", 60),
        ("peace-process", 50),
        ("diplomatic-relations", 60),
        ("trade", 60),
        ("leader-contact", 40),
        ("negotiations", 30),
    ]:
        s.append(
            Stratum(
                f"wcep:search:{topic}",
                "wcep",
                f"story heading or text matches the {topic} search words",
                _story_or_text(topic),
                quota,
            )
        )
    # headlines only
    s.append(Stratum("hl:random", "headlines-2022", "uniform", lambda it: True, 300))
    for cat, quota in [("worldnews", 200), ("ukraine", 60), ("politics", 60), ("news", 50)]:
        s.append(
            Stratum(
                f"hl:community:{cat}",
                "headlines-2022",
                f"category == {cat!r}",
                _community(cat),
                quota,
            )
        )
    for topic, quota in [
        ("arms-control", 60),
        ("nonproliferation", 25),
        ("pandemic", 50),
        ("territorial-disputes", 60),
        ("multilateral", 60),
        ("sanctions", 30),
        ("alliances", 25),
        ("trade", 25),
        ("peace-process", 20),
        ("diplomatic-relations", 25),
    ]:
        s.append(
            Stratum(
                f"hl:search:{topic}",
                "headlines-2022",
                f"title matches the {topic} search words",
                _title(topic),
                quota,
            )
        )
    # rare on purpose: arms-control named precisely (treaties, arms races, the OPCW); quota 0
    # here, drawn by a later part with --only (it stands last so earlier draws do not move)
    s_arms = Stratum(
        "wcep:search:arms-control-treaties",
        "wcep",
        "story heading or text names an arms-control treaty, body or arms race",
        lambda it: ARMS_TIGHT(it["text"]) or ARMS_TIGHT(it["meta"].get("story") or ""),
        0,
    )
    # headline + summary: feed items, all of them up to a cap per feed file
    s.append(
        Stratum(
            "feeds:local",
            "feeds-local",
            "every usable item, at most 60 per snapshot",
            lambda it: True,
            10_000,
        )
    )
    s.append(
        Stratum(
            "feeds:archive",
            "feeds-archive",
            "every usable item, at most 300 per feed",
            lambda it: True,
            10_000,
        )
    )
    s.append(s_arms)
    return s


PER_FILE_CAP = {"feeds-local": 60, "feeds-archive": 300}


def draw(
    pools: dict[str, list[Item]], plan: list[Stratum], seed: int
) -> tuple[list[Item], list[dict[str, Any]]]:
    rng = random.Random(seed)
    chosen: dict[str, Item] = {}
    record: list[dict[str, Any]] = []
    per_file: dict[str, int] = {}
    for st in plan:
        pool = pools.get(st.source, [])
        cands = [it for it in pool if it["id"] not in chosen and st.pick(it)]
        cands.sort(key=lambda it: it["id"])
        rng.shuffle(cands)
        taken = 0
        for it in cands:
            if taken >= st.quota:
                break
            cap = PER_FILE_CAP.get(st.source)
            if cap is not None:
                f = it["meta"]["file"]
                if per_file.get(f, 0) >= cap:
                    continue
                per_file[f] = per_file.get(f, 0) + 1
            chosen[it["id"]] = {**it, "stratum": st.name}
            taken += 1
        record.append(
            {
                "stratum": st.name,
                "source": st.source,
                "rule": st.rule,
                "quota": st.quota,
                "candidates": len(cands),
                "drawn": taken,
            }
        )
    return list(chosen.values()), record


def uncertain_strata(
    pools: dict[str, list[Item]], wanted: list[str], band: float, quota: int
) -> list[Stratum]:
    """One stratum per topic: WCEP events the current model (``configs/``) is unsure of for
    that topic, its log-odds within ``band`` of the threshold's (band 1: p from 0.08 to 0.40
    around a threshold of 0.2). Uncertainty
    sampling: the items nearest the model's decision boundary teach it most per label. The
    model only chooses what is *read*; annotators never see its output. For training-only
    (silver) parts: such a sample is not representative, so it never joins the evaluation
    corpus."""
    from worker.tagging import Tagger

    quotas = {w.split("=")[0]: int(w.split("=")[1]) if "=" in w else quota for w in wanted}
    topics = list(quotas)
    tagger = Tagger.from_config_dir(ROOT / "configs")
    model = tagger.model
    if model is None:
        raise SystemExit("no topic model in configs/: train one first")
    th = dict(zip(model.topics, model.thresholds.tolist(), strict=True))
    unknown = sorted(set(topics) - set(th))
    if unknown:
        raise SystemExit(f"unknown topics: {', '.join(unknown)}")

    def logit(p: float) -> float:
        p = min(max(p, 1e-6), 1 - 1e-6)
        return math.log(p / (1 - p))

    near: dict[str, set[str]] = {t: set() for t in topics}
    for it in pools.get("wcep", []):
        scores = tagger.tag(it.get("title"), it["text"]).model_scores
        for t in topics:
            if abs(logit(scores.get(t, 0.0)) - logit(th[t])) <= band:
                near[t].add(it["id"])
    version = getattr(model, "version", "?")
    return [
        Stratum(
            f"wcep:uncertain:{t}",
            "wcep",
            f"model {version}: logit p({t}) within {band} of its threshold's ({th[t]:.3f})",
            lambda it, ids=near[t]: it["id"] in ids,  # type: ignore[misc]
            quotas[t],
        )
        for t in topics
    ]


# ---------------------------------------------------------------------------- groups


def story_groups(items: list[Item], threshold: float = 0.5, days: int = 3) -> dict[str, str]:
    """Union-find: one WCEP story heading, or near-identical wording within ``days``, is one
    group. Cross-validation folds keep a group together."""
    parent = {it["id"]: it["id"] for it in items}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_story: dict[str, str] = {}
    for it in items:
        story = (it["meta"].get("story") or "").strip().lower()
        if story:
            if story in by_story:
                union(it["id"], by_story[story])
            else:
                by_story[story] = it["id"]
    words = {it["id"]: content_words(f"{it.get('title') or ''} {it['text']}") for it in items}
    ordinal = {
        it["id"]: datetime.fromisoformat(it["date"]).toordinal() if it.get("date") else None
        for it in items
    }
    ids = [it["id"] for it in items]
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            da, db = ordinal[a], ordinal[b]
            if da is not None and db is not None and abs(da - db) > days:
                continue
            if jaccard(words[a], words[b]) >= threshold:
                union(a, b)
    return {i: "g-" + hashlib.sha1(find(i).encode()).hexdigest()[:10] for i in ids}


# ------------------------------------------------------------------------------- main


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pools(args: argparse.Namespace) -> tuple[dict[str, list[Item]], dict[str, int]]:
    pools: dict[str, list[Item]] = {
        "wcep": load_wcep(args.wcep),
        "headlines-2022": load_headlines(args.headlines),
        "feeds-local": load_feed_snapshots(args.feeds),
        "feeds-archive": [it for d in args.feeds_extra for it in load_feed_harvest(d)],
    }
    dropped: dict[str, int] = {}
    for name in ("headlines-2022", "feeds-local", "feeds-archive"):
        pools[name], dropped[name] = drop_protected(pools[name], args.protect)
    # one feed item once, even when several snapshots or feeds carry it
    seen: set[str] = set()
    for name in ("feeds-local", "feeds-archive"):
        uniq = []
        for it in pools[name]:
            key = norm_title(it["title"])
            if key not in seen:
                seen.add(key)
                uniq.append(it)
        pools[name] = uniq
    return pools, dropped


def write_batches(items: list[Item], out: Path, first: int, size: int, seed: int) -> int:
    """Annotation batches: the pools first, then the harvested feed items, each part in a
    shuffled order, numbered from ``first``; returns the next free number."""
    nbatch = first
    for part in (False, True):
        order = sorted(
            (it for it in items if (it["source"] == "feeds-archive") == part),
            key=lambda it: it["id"],
        )
        random.Random(seed + 1).shuffle(order)
        for b in range(0, len(order), size):
            with open(out / "batches" / f"batch-{nbatch:03d}.jsonl", "w", encoding="utf-8") as fh:
                for it in order[b : b + size]:
                    view = {
                        "id": it["id"],
                        "date": it["date"],
                        "title": it["title"],
                        "text": it["text"],
                    }
                    fh.write(json.dumps(view, ensure_ascii=False) + "\n")
            nbatch += 1
    return nbatch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m worker.corpus.sample", description=__doc__)
    p.add_argument("--wcep", type=Path, default=SHARED / "pools" / "wcep-events.jsonl.gz")
    p.add_argument("--headlines", type=Path, default=SHARED / "pools" / "headlines-2022.jsonl.gz")
    p.add_argument("--feeds", type=Path, default=SHARED / "feeds")
    p.add_argument(
        "--feeds-extra",
        type=Path,
        nargs="*",
        default=[],
        help="folders of harvested feed items (*.jsonl)",
    )
    p.add_argument(
        "--protect", type=Path, nargs="*",
        default=[ROOT / "tests/data/diplomacy-dev.jsonl",
                 ROOT / "tests/data/heldout/feeds-heldout.jsonl"],
        help="evaluation sets whose items (and repeats of them) are never drawn",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=20261206)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument(
        "--extend", action="store_true",
        help="add a further part to the run in --out: draw again (new seed, quotas x --scale) "
        "from what is not drawn yet; earlier items and batches stay as they are",
    )  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0, help="quota factor (with --extend)")
    p.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="STRATUM",
        help="draw only from these strata (with --extend)",
    )
    p.add_argument("--quota", type=int, default=None, help="quota of each --only stratum")
    p.add_argument(
        "--uncertain", nargs="*", default=None, metavar="TOPIC",
        help="with --extend: draw instead WCEP events the current model is unsure of for "
        "these topics (TOPIC or TOPIC=QUOTA; --quota otherwise; training-only parts)",
    )  # fmt: skip
    p.add_argument(
        "--band", type=float, default=1.0, help="with --uncertain: |logit p - logit threshold|"
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    pools, dropped = load_pools(args)
    out: Path = args.out
    (out / "batches").mkdir(parents=True, exist_ok=True)
    old: list[Item] = []
    parts: list[dict[str, Any]] = []
    first = 0
    if args.extend:
        old = [json.loads(x) for x in (out / "items.jsonl").read_text("utf-8").splitlines() if x]
        prev = json.loads((out / "sampling.json").read_text("utf-8"))
        parts = prev.get("parts") or [
            {k: prev[k] for k in ("seed", "made", "strata", "items", "batches")}
        ]
        first = sum(x["batches"] for x in parts)
        # numbers after every batch file of the run (control batches were added by hand)
        numbers = [int(f.stem[6:]) for f in (out / "batches").glob("batch-*.jsonl")]
        first = max([first, *(n + 1 for n in numbers if f"{n}".isdigit())])
        taken = {it["id"] for it in old}
        taken_titles = {norm_title(it["title"]) for it in old if it.get("title")}
        for name in pools:
            pools[name] = [
                it
                for it in pools[name]
                if it["id"] not in taken
                and not (it.get("title") and norm_title(it["title"]) in taken_titles)
            ]
    plan = strata()
    if args.scale != 1.0:  # the "every item" strata (10,000) stay whole
        plan = [
            replace(st, quota=st.quota if st.quota >= 10_000 else round(st.quota * args.scale))
            for st in plan
        ]
    if args.uncertain:
        if not args.extend:
            raise SystemExit("--uncertain adds a part to a run: use it with --extend")
        plan = uncertain_strata(pools, args.uncertain, args.band, args.quota or 300)
    elif args.only is not None:
        plan = [
            replace(st, quota=args.quota if args.quota is not None else st.quota)
            for st in plan
            if st.name in args.only
        ]
    new, record = draw(pools, plan, args.seed)
    items = old + new
    groups = story_groups(items)
    for it in items:
        it["group"] = groups[it["id"]]
    with open(out / "items.jsonl", "w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")
    nbatch = write_batches(new, out, first, args.batch_size, args.seed)
    parts.append(
        {
            "seed": args.seed,
            "scale": args.scale,
            "only": args.only,
            "uncertain": args.uncertain,
            "made": datetime.now(UTC).isoformat(timespec="seconds"),
            "strata": record,
            "items": len(new),
            "batches": nbatch - first,
            "first_batch": first,
        }
    )
    pool_files = [args.wcep, args.headlines, *sorted(Path(args.feeds).glob("*.xml"))]
    for d in args.feeds_extra:
        pool_files += sorted(Path(d).glob("*.jsonl"))
    summary = {
        "pools": {name: len(v) for name, v in pools.items()},
        "excluded_as_evaluation_items": dropped,
        "pool_files": {str(f.name): _digest(f) for f in pool_files},
        "parts": parts,
        "items": len(items),
        "shapes": {
            s: sum(1 for it in items if it["shape"] == s)
            for s in ("headline", "headline+summary", "paragraph")
        },
        "groups": len(set(groups.values())),
        "batches": nbatch,
    }
    (out / "sampling.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("items", "shapes", "groups", "batches")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
