"""Draw the fresh test set: news items no labelled set of the project holds, chosen after
model 1.8's recipe was fixed (2026-12-07), to be labelled and then scored once.

    python tests/data/fresh/make_sample.py

Two random strata, no search word (the set measures the tagger as news comes, so no stratum
favours what the rules match):

- ``wcep:latest``: 250 Wikipedia Current Events Portal events dated 2025-12-01 to
  2026-03-31 (the pool's newest four months; paragraph shape);
- ``hl:rest``: 150 of the 2022 news headlines (headline shape).

An item is never drawn when its id, or its text or title normalised, is in the corpus, the
training-only items (kept or dropped), the dev set or the feed held-out set. Writes
``annotation/items.jsonl`` (every drawn item with its source metadata and stratum),
``annotation/batches/batch-fNN.jsonl`` (what annotators see: id, date, title, text; 100 a
batch, shuffled), ``annotation/assignment.json`` (two annotators a batch, ``ann/first/`` and
``ann/second/``: ``python -m worker.corpus.merge`` reads the run) and
``annotation/sampling.json``. Deterministic (seed 20261207).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from datetime import datetime
from pathlib import Path

from worker.corpus.sample import LABELLED_SETS

ROOT = Path(__file__).resolve().parents[3]
POOLS = ROOT.parent / "shared" / "data" / "pools"
OUT = Path(__file__).resolve().parent / "annotation"
SEED = 20261207
USED = [*LABELLED_SETS]
_WORD = re.compile(r"[a-z0-9]+")


def norm(s: str | None) -> str:
    return " ".join(_WORD.findall((s or "").lower()))


def iso_date(published: str | None) -> str | None:
    """The pool's ``July 11, 2022 12:18 AM`` as ``2022-07-11``."""
    try:
        return datetime.strptime(published or "", "%B %d, %Y %I:%M %p").date().isoformat()  # noqa: DTZ007
    except ValueError:
        return None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ids: set[str] = set()
    texts: set[str] = set()
    for f in USED:
        for line in (ROOT / f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                ids.add(r["id"])
                texts.update(x for x in (norm(r.get("title")), norm(r.get("text"))) if x)

    def fresh(r: dict, key: str) -> bool:
        return r["id"] not in ids and norm(r.get(key)) not in texts

    wcep_path, hl_path = POOLS / "wcep-events.jsonl.gz", POOLS / "headlines-2022.jsonl.gz"
    with gzip.open(wcep_path, "rt", encoding="utf-8") as fh:
        wcep = [json.loads(x) for x in fh]
    with gzip.open(hl_path, "rt", encoding="utf-8") as fh:
        hl = [json.loads(x) for x in fh]
    latest = [r for r in wcep if "2025-12-01" <= (r["date"] or "") <= "2026-03-31"]
    wcep_c = [r for r in latest if fresh(r, "text")]
    hl_c = [r for r in hl if fresh(r, "title")]
    # one item per normalised text within the pools too
    for pool, key in ((wcep_c, "text"), (hl_c, "title")):
        seen: set[str] = set()
        pool[:] = [r for r in pool if not (norm(r[key]) in seen or seen.add(norm(r[key])))]
    rng = random.Random(SEED)
    wcep_pick = rng.sample(sorted(wcep_c, key=lambda r: r["id"]), 250)
    hl_pick = rng.sample(sorted(hl_c, key=lambda r: r["id"]), 150)
    items = []
    for r in wcep_pick:
        items.append({
            "id": r["id"], "source": "wcep", "shape": "paragraph", "date": r["date"],
            "title": None, "text": r["text"], "stratum": "wcep:latest", "group": r["id"],
            "meta": {"category": r.get("category"), "story": r.get("story"),
                     "outlets": r.get("outlets")},
        })  # fmt: skip
    for r in hl_pick:
        items.append({
            "id": r["id"], "source": "headlines-2022", "shape": "headline",
            "date": iso_date(r.get("published")), "title": r["title"], "text": "",
            "stratum": "hl:rest", "group": r["id"],
            "meta": {"category": r.get("category"), "domain": r.get("domain"), "url": r.get("url")},
        })  # fmt: skip
    items.sort(key=lambda r: r["id"])
    (OUT / "batches").mkdir(parents=True, exist_ok=True)
    with open(OUT / "items.jsonl", "w", encoding="utf-8") as fh:
        for r in items:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    order = list(items)
    random.Random(SEED + 1).shuffle(order)
    for b in range(0, len(order), 100):
        batch = OUT / "batches" / f"batch-f{b // 100 + 1:02d}.jsonl"
        with open(batch, "w", encoding="utf-8") as fh:
            for r in order[b : b + 100]:
                view = {"id": r["id"], "date": r["date"], "title": r["title"], "text": r["text"]}
                fh.write(json.dumps(view, ensure_ascii=False) + "\n")
    record = {
        "seed": SEED,
        "made": "2026-12-07",
        "pools": {wcep_path.name: digest(wcep_path), hl_path.name: digest(hl_path)},
        "excluded": USED,
        "strata": {
            "wcep:latest": {
                "rule": "WCEP events dated 2025-12-01..2026-03-31, at random",
                "candidates": len(wcep_c),
                "drawn": 250,
            },
            "hl:rest": {"rule": "2022 headlines, at random", "candidates": len(hl_c), "drawn": 150},
        },  # fmt: skip
        "batches": (len(order) + 99) // 100,
    }
    assignment = {f"batch-f{n:02d}": ["first", "second"] for n in range(1, record["batches"] + 1)}
    (OUT / "assignment.json").write_text(json.dumps(assignment, indent=1) + "\n", "utf-8")
    (OUT / "sampling.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(record["strata"]))


if __name__ == "__main__":
    main()
