"""Draw the fresh by-topic test set: items of stories no labelled set of the project holds,
chosen by the corpus's own search strata so that every topic has positives; drawn after
model 1.8's recipe was fixed (2026-12-07), labelled, then scored once per model.

    python tests/data/fresh/by-topic/make_sample.py

Strata (the search words of :data:`worker.corpus.sample.RARE`, which choose what is read,
never a label): per topic 40 Wikipedia Current Events Portal events whose story heading or
text matches the topic's search words; 60 events at random; per topic up to 6 of the 2022
headlines whose title matches. An item is never drawn when its id or its text (normalised)
is in any labelled set of the project, when its story heading is one a labelled item has,
or when it shares half its content words with a labelled item dated within 3 days (the
corpus's own story grouping): the set's stories are new to the model. Writes
``annotation/items.jsonl``, ``annotation/batches/batch-tNN.jsonl`` (100 a batch, shuffled),
``annotation/assignment.json`` and ``annotation/sampling.json``. Deterministic (seed
20261208).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from worker.corpus.sample import (
    LABELLED_SETS,
    RARE,
    content_words,
    jaccard,
    load_headlines,
    load_wcep,
)

ROOT = Path(__file__).resolve().parents[4]
POOLS = ROOT.parent / "shared" / "data" / "pools"
OUT = Path(__file__).resolve().parent / "annotation"
SEED = 20261208
LABELLED = [*LABELLED_SETS, "tests/data/fresh/fresh.jsonl"]
WCEP_QUOTA, RANDOM_QUOTA, HEADLINE_QUOTA = 40, 60, 6
_WORD = re.compile(r"[a-z0-9]+")


def norm(s: str | None) -> str:
    return " ".join(_WORD.findall((s or "").lower()))


def main() -> None:
    ids: set[str] = set()
    texts: set[str] = set()
    stories: set[str] = set()
    by_day: dict[str, list[set[str]]] = defaultdict(list)
    for f in LABELLED:
        for line in (ROOT / f).read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            ids.add(r["id"])
            texts.update(x for x in (norm(r.get("title")), norm(r.get("text"))) if x)
            story = norm((r.get("meta") or {}).get("story"))
            if story:
                stories.add(story)
            if r.get("date"):
                words = content_words(f"{r.get('title') or ''} {r.get('text') or ''}")
                by_day[str(r["date"])[:10]].append(words)

    def near_labelled(it: dict) -> bool:
        if not it.get("date"):
            return False
        words = content_words(f"{it.get('title') or ''} {it['text']}")
        d0 = date.fromisoformat(it["date"][:10])
        for k in range(-3, 4):
            for other in by_day.get((d0 + timedelta(days=k)).isoformat(), ()):
                if jaccard(words, other) >= 0.5:
                    return True
        return False

    def new(it: dict) -> bool:
        return (
            it["id"] not in ids
            and norm(it.get("title")) not in texts
            and norm(it["text"]) not in texts
            and norm(it["meta"].get("story")) not in stories
        )

    wcep_path, hl_path = POOLS / "wcep-events.jsonl.gz", POOLS / "headlines-2022.jsonl.gz"
    wcep = sorted((it for it in load_wcep(wcep_path) if new(it)), key=lambda it: it["id"])
    hl = sorted((it for it in load_headlines(hl_path) if new(it)), key=lambda it: it["id"])
    rng = random.Random(SEED)
    taken: set[str] = set()
    seen_text: set[str] = set()
    items: list[dict] = []
    record: dict[str, dict] = {}

    def draw(name: str, pool: list[dict], pick, quota: int, rule: str) -> None:
        cands = [
            it
            for it in pool
            if it["id"] not in taken and norm(it.get("title") or it["text"]) not in seen_text
            and pick(it)
        ]  # fmt: skip
        rng.shuffle(cands)
        got = 0
        for it in cands:
            if got == quota:
                break
            if near_labelled(it):
                continue
            taken.add(it["id"])
            seen_text.add(norm(it.get("title") or it["text"]))
            items.append({**it, "stratum": name, "group": it["id"]})
            got += 1
        record[name] = {"rule": rule, "candidates": len(cands), "drawn": got}

    for topic, m in RARE.items():
        draw(
            f"wcep:search:{topic}",
            wcep,
            lambda it, m=m: m(it["meta"].get("story") or "") or m(it["text"]),
            WCEP_QUOTA,
            f"story heading or text matches the {topic} search words",
        )
    draw("wcep:random", wcep, lambda it: True, RANDOM_QUOTA, "uniform over the new events")
    for topic, m in RARE.items():
        draw(
            f"hl:search:{topic}",
            hl,
            lambda it, m=m: m(it.get("title") or ""),
            HEADLINE_QUOTA,
            f"title matches the {topic} search words",
        )
    items.sort(key=lambda r: r["id"])
    (OUT / "batches").mkdir(parents=True, exist_ok=True)
    with open(OUT / "items.jsonl", "w", encoding="utf-8") as fh:
        for r in items:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    order = list(items)
    random.Random(SEED + 1).shuffle(order)
    nb = (len(order) + 99) // 100
    for b in range(nb):
        with open(OUT / "batches" / f"batch-t{b + 1:02d}.jsonl", "w", encoding="utf-8") as fh:
            for r in order[b * 100 : (b + 1) * 100]:
                view = {"id": r["id"], "date": r["date"], "title": r["title"], "text": r["text"]}
                fh.write(json.dumps(view, ensure_ascii=False) + "\n")
    assignment = {f"batch-t{n:02d}": ["first", "second"] for n in range(1, nb + 1)}
    (OUT / "assignment.json").write_text(json.dumps(assignment, indent=1) + "\n", "utf-8")
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (wcep_path, hl_path)}
    (OUT / "sampling.json").write_text(
        json.dumps(
            {"seed": SEED, "made": "2026-12-07", "pools": digest, "excluded": LABELLED,
             "strata": record, "items": len(items), "batches": nb},
            indent=1,
        ) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    print(len(items), "items;", {k: v["drawn"] for k, v in record.items()})


if __name__ == "__main__":
    main()
