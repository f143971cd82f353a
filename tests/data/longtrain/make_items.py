"""Build the long training articles' items from their sources (session 20).

    .venv/bin/python tests/data/longtrain/make_items.py [--out DIR]

Sources (``annotation/source/``):

- ``lee_background.cor``: the Lee corpus's 300 background documents, as gensim 4.3.3's
  source distribution on PyPI carries them (``gensim/test/test_data/lee_background.cor``,
  SHA-256 below; gensim is LGPL-2.1; the documents are news stories of the Australian
  Broadcasting Corporation's news mail service of December 2001 and January 2002, gathered by
  Lee, Pincombe and Welsh, "An empirical evaluation of models of text document similarity",
  2005). One document per line, no title, no date.
- ``wikinews-2019/``, ``wikinews-2020/``: ``data/wikinews_2019.csv`` and
  ``wikinews_2020.csv`` of github.com/vanatteveldt/wikinews (English Wikinews articles of
  2019 and 2020, CC BY 2.5; columns ``url, date, title, text``), copied by hand through the
  code index in chunks of 16,000 characters (``chunk-NNNNNN.txt``, NNNNNN the offset;
  ``prompt-copy.txt``). The dev set's 150 Wikinews articles come from the same pages: those
  are left out by URL and by title.

Keeps the documents of more than 8 sentences (longer than any item the model learnt from)
and at most 12,000 characters, once each, not interviews (Wikinews marks the speakers' turns
``((WN))``), and of a Wikinews article drops the dateline its text opens with, and writes
to ``--out`` (default ``annotation/``)
``items.jsonl``, ``batches/batch-{t,w,x}NN.jsonl`` (batches of BATCH items, in source
order: ``t`` the Lee corpus, ``w`` Wikinews 2019, ``x`` Wikinews 2020) and
``sources.jsonl`` (every document read, kept or not, with the reason).
``tests/eval/test_fresh.py`` checks that the committed files are what this makes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
from pathlib import Path

from worker.tagging.model import LONGEST_TEXT
from worker.tagging.text import sentence_starts

HERE = Path(__file__).resolve().parent
BATCH = 18
MAX_CHARS = 12_000
LEE = "lee_background.cor"
LEE_SHA256 = "5d78d6dafd953bbf65797bef09a9ffb9ec430583381be705f8fd460000f370fb"
WIKINEWS = {  # folder: (file, characters, commit)
    "wikinews-2019": (
        "data/wikinews_2019.csv",
        442_660,
        "b134aa9d261fe904f5c50a82b4d3cb001f8771bf",
    ),
    "wikinews-2020": ("wikinews_2020.csv", 913_309, "ebb25d3c66507269b14c437b5f4b04bf26b3b056"),
}
CHUNK = 16_000
_DATELINE = re.compile(
    r"\A\s*(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \w+ \d{1,2}, \d{4}\s*\n"
)


def wikinews_rows(folder: Path, chars: int) -> list[dict[str, str]]:
    """The CSV's rows from its copied chunks (each CHUNK characters but the last)."""
    chunks = sorted(folder.glob("chunk-*.txt"))
    want = [f"chunk-{o:06d}.txt" for o in range(0, chars, CHUNK)]
    if [c.name for c in chunks] != want:
        missing = sorted(set(want) - {c.name for c in chunks})
        raise SystemExit(f"{folder}: chunks missing or extra (missing: {missing[:5]})")
    text = "".join(c.read_text(encoding="utf-8") for c in chunks)
    if len(text) != chars:
        raise SystemExit(f"{folder}: {len(text)} characters, not {chars}")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "annotation")
    args = ap.parse_args(argv)
    ann = args.out
    (ann / "batches").mkdir(parents=True, exist_ok=True)
    raw = (HERE / "annotation" / "source" / LEE).read_bytes()
    if hashlib.sha256(raw).hexdigest() != LEE_SHA256:
        raise SystemExit(f"{LEE}: not the file gensim 4.3.3 carries (SHA-256 differs)")
    dev = [
        json.loads(line)
        for line in (HERE.parent / "diplomacy-dev.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]
    dev_urls = {r.get("url") for r in dev}
    dev_titles = {r["title"].casefold() for r in dev if r.get("title")}
    seen: set[str] = set()
    record: list[dict] = []
    batches: dict[str, list[dict]] = {"t": [], "w": [], "x": []}

    def check(rid: str, text: str) -> str:
        norm = " ".join(text.split()).casefold()
        n = len(sentence_starts(text, LONGEST_TEXT + 1))
        why = "kept"
        if not text:
            why = "empty"
        elif norm in seen:
            why = "a repeat"
        elif n <= LONGEST_TEXT:
            why = f"{n} sentences (not long)"
        elif len(text) > MAX_CHARS:
            why = f"{len(text)} characters (over {MAX_CHARS})"
        elif "((WN))" in text:
            why = "an interview"
        seen.add(norm)
        return why

    for line_no, text in enumerate(raw.decode("utf-8").splitlines(), start=1):
        text = text.strip()
        rid = f"lee-{line_no:03d}"
        why = check(rid, text)
        record.append({"id": rid, "source": LEE, "line": line_no, "decision": why})
        if why == "kept":
            batches["t"].append(
                {
                    "id": rid,
                    "source": "lee-background",
                    "shape": "article",
                    "date": None,
                    "title": None,
                    "text": text,
                    "group": rid,
                    "stratum": "all",
                    "meta": {"file": f"gensim-4.3.3/gensim/test/test_data/{LEE}", "line": line_no},
                }
            )
    for (folder, (name, chars, commit)), prefix in zip(WIKINEWS.items(), "wx", strict=True):
        if not any((HERE / "annotation" / "source" / folder).glob("chunk-*.txt")):
            print(f"{folder}: not copied yet, left out")
            continue
        for row in wikinews_rows(HERE / "annotation" / "source" / folder, chars):
            url = row["url"]
            rid = "wn-" + hashlib.sha256(url.encode()).hexdigest()[:12]
            text = _DATELINE.sub("", row["text"].lstrip("\n"), count=1).strip()
            if url in dev_urls or row["title"].casefold() in dev_titles:
                why = "in the dev set"
            else:
                why = check(rid, text)
            record.append({"id": rid, "source": folder, "url": url, "decision": why})
            if why == "kept":
                batches[prefix].append(
                    {
                        "id": rid,
                        "source": folder,
                        "shape": "article",
                        "date": row["date"],
                        "title": row["title"],
                        "text": text,
                        "group": rid,
                        "stratum": "all",
                        "meta": {
                            "url": url,
                            "file": f"github.com/vanatteveldt/wikinews/{name}@{commit[:12]}",
                            "licence": "CC BY 2.5",
                        },
                    }
                )
    items = batches["t"] + batches["w"] + batches["x"]
    with open(ann / "items.jsonl", "w", encoding="utf-8") as fh:
        for r in items:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(ann / "sources.jsonl", "w", encoding="utf-8") as fh:
        for r in record:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    for old in (ann / "batches").glob("batch-*.jsonl"):
        old.unlink()
    for prefix, rows in batches.items():
        for k in range(0, len(rows), BATCH):
            with open(
                ann / "batches" / f"batch-{prefix}{k // BATCH + 1:02d}.jsonl", "w", encoding="utf-8"
            ) as fh:
                for r in rows[k : k + BATCH]:
                    fh.write(
                        json.dumps(
                            {x: r[x] for x in ("id", "date", "title", "text")}, ensure_ascii=False
                        )
                        + "\n"
                    )
    kept = sum(r["decision"] == "kept" for r in record)
    print(f"{len(record)} documents read, {kept} kept -> {ann / 'items.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
