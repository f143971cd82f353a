"""Build the long-article set's items from the copied WikinewsSum sources (session 19).

    .venv/bin/python tests/data/long/make_items.py [--sources DIR] [--out DIR]

``--sources`` (default ``annotation/copied/``) holds ``part-*.txt``: blocks copied by eight
helpers, by hand through the code index (``annotation/copied/prompt-copy.txt``), from
``cleaned_endataset.json`` of github.com/airKlizz/WikinewsSum (MIT; English Wikinews
articles with the news articles they cite): one block per English source article,

    @@@SOURCE / url: / archive_url: / title: / wikinews_title: / categories: / @@@TEXT /
    <the article's text> / @@@END

Keeps the articles of more than 8 sentences (longer than any item the model learnt from)
and at most 12,000 characters, once each (by URL and by text), and writes to ``--out``
(default ``annotation/``) ``items.jsonl``, ``batches/batch-lNN.jsonl`` (batches of BATCH
items, in id order) and ``sources.jsonl`` (every block read, kept or not, with the reason).
``tests/eval/test_fresh.py`` checks that the committed files are what this makes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

from worker.tagging.model import LONGEST_TEXT
from worker.tagging.text import sentence_starts

HERE = Path(__file__).resolve().parent
BATCH = 20
MAX_CHARS = 12_000  # longer: a record, transcript or listing (Congressional Record, a lecture)
_BLOCK = re.compile(r"@@@SOURCE\n(.*?)\n@@@TEXT\n(.*?)\n@@@END", re.S)


def blocks(path: Path) -> list[dict]:
    out = []
    for head, text in _BLOCK.findall(path.read_text(encoding="utf-8")):
        meta = {}
        for line in head.splitlines():
            key, _, value = line.partition(":")
            meta[key.strip()] = value.strip()
        meta["text"] = text.strip()
        meta["part"] = path.name
        out.append(meta)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=Path, default=HERE / "annotation" / "copied")
    ap.add_argument("--out", type=Path, default=HERE / "annotation")
    args = ap.parse_args(argv)
    src, ann = args.sources, args.out
    (ann / "batches").mkdir(parents=True, exist_ok=True)
    dev_titles = {
        json.loads(line)["title"].casefold()
        for line in (HERE.parent / "diplomacy-dev.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    }
    seen_url: set[str] = set()
    seen_text: set[str] = set()
    record, items = [], []
    for part in sorted(src.glob("part-*.txt")):
        for b in blocks(part):
            url, text = b.get("url", ""), b["text"]
            norm = " ".join(text.split()).casefold()
            n = len(sentence_starts(text, LONGEST_TEXT + 1))
            why = "kept"
            if not url or not text:
                why = "no url or no text"
            elif url in seen_url or norm in seen_text:
                why = "a repeat"
            elif n <= LONGEST_TEXT:
                why = f"{n} sentences (not long)"
            elif len(text) > MAX_CHARS:
                why = f"{len(text)} characters (over {MAX_CHARS}: not an article to label)"
            elif b.get("wikinews_title", "").casefold() in dev_titles:
                why = "its Wikinews article is in the dev set"
            seen_url.add(url)
            seen_text.add(norm)
            rid = "wns-" + hashlib.sha256(url.encode()).hexdigest()[:12]
            record.append({"id": rid, "url": url, "part": b["part"], "decision": why})
            if why != "kept":
                continue
            wt = b.get("wikinews_title") or "unknown"
            items.append(
                {
                    "id": rid,
                    "source": "wikinewssum",
                    "shape": "article",
                    "date": None,
                    "title": b.get("title") or None,
                    "text": text,
                    "group": "wn:" + (wt if wt != "unknown" else url),
                    "stratum": "all",
                    "meta": {
                        "url": url,
                        "archive_url": b.get("archive_url"),
                        "wikinews_title": wt,
                        "categories": b.get("categories"),
                    },
                }
            )
    items.sort(key=lambda r: r["id"])
    with open(ann / "items.jsonl", "w", encoding="utf-8") as fh:
        for r in items:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(ann / "sources.jsonl", "w", encoding="utf-8") as fh:
        for r in record:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    for old in (ann / "batches").glob("batch-l*.jsonl"):
        old.unlink()
    for k in range(0, len(items), BATCH):
        with open(
            ann / "batches" / f"batch-l{k // BATCH + 1:02d}.jsonl", "w", encoding="utf-8"
        ) as fh:
            for r in items[k : k + BATCH]:
                fh.write(
                    json.dumps(
                        {x: r[x] for x in ("id", "date", "title", "text")}, ensure_ascii=False
                    )
                    + "\n"
                )
    kept = sum(r["decision"] == "kept" for r in record)
    print(f"{len(record)} source blocks read, {kept} kept -> {ann / 'items.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
