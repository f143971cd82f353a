"""Candidate pairs for the story / duplicate labelled set (issue 11, ``STORY-PAIRS.md``).

``python -m worker.corpus.pairs sample --out DIR [--seed N]`` reads

- the 2022 news headlines (``--headlines``: some 3,000 outlets over a few weeks, each with its
  outlet's domain and time; syndicated copies kept, they are the duplicates),
- the feed snapshots (``--feeds``) and harvested archived feed items (``--feeds-extra``):
  title and one-line summary, several outlets on the same days,
- the Wikipedia Current Events Portal (``--wcep``): event summaries under one story heading a
  few days apart (different events of one story, or one event's continuation),

and writes ``DIR/pairs.jsonl`` (both items with outlet, time, title and text, the similarity
bin that drew the pair, its provenance), ``DIR/batches/pairs-NNN.jsonl`` (what annotators
see: pair id, A and B, in a shuffled order, 100 a batch) and ``DIR/sampling.json`` (seed,
pool digests, per bin its rule, candidates and pairs drawn).

A pair is two items close in time (at most ``--days`` apart) from different outlets, or the
same outlet under a different URL (republished copies). Pairs are drawn across similarity
levels (tf-idf cosine of title + text): the measure only spreads the sample from obvious to
unrelated pairs; it never decides a label. Deterministic for a given seed.

Two annotators label every batch (``assignment.json``, ``ann/<annotator>/pairs-NNN.jsonl``);
``disagreements --run DIR`` writes ``adj/in/pairs-NNN.jsonl`` for the adjudicator (both
answers and notes), and ``final --run DIR --out FILE`` writes the labelled pairs (agreed
labels, the adjudicator's where the two differed: ``adj/out``) and ``FILE``'s agreement
record beside it (``pairs-agreement.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from worker.corpus.sample import (
    SHARED,
    _digest,
    load_feed_harvest,
    load_feed_snapshots,
    load_wcep,
)

Item = dict[str, Any]

BINS: list[tuple[str, float, float, int]] = [
    # name, lowest cosine, highest cosine (exclusive), quota
    ("sim:0.70-1.00", 0.70, 1.01, 140),
    ("sim:0.45-0.70", 0.45, 0.70, 220),
    ("sim:0.30-0.45", 0.30, 0.45, 240),
    ("sim:0.18-0.30", 0.18, 0.30, 200),
    ("sim:0.08-0.18", 0.08, 0.18, 120),
]
WCEP_QUOTA = 150
"""Pairs of event summaries under one WCEP story heading, 0-3 days apart."""


def load_headlines_all(path: Path) -> list[Item]:
    """Every headline with its outlet and time; repeated headlines kept (syndication)."""
    import gzip

    out: list[Item] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            title = " ".join((r.get("title") or "").split())
            if len(title) < 25:
                continue
            try:
                dt = datetime.strptime(r["published"], "%B %d, %Y %I:%M %p").replace(tzinfo=UTC)
            except (KeyError, TypeError, ValueError):
                continue
            out.append(
                {
                    "id": r["id"],
                    "source": "headlines-2022",
                    "outlet": r.get("domain") or "?",
                    "url": r.get("url"),
                    "time": dt.isoformat(timespec="minutes"),
                    "day": dt.date().toordinal(),
                    "title": title,
                    "text": "",
                }
            )
    return out


def _outlet_of_feed(item: Item) -> str:
    f = str(item["meta"].get("file") or "")
    name = f.split(":")[-1].rsplit("/", 1)[-1]
    for cut in ("_2025", "_2026", ".xml"):
        name = name.split(cut)[0]
    return name


def load_feeds(folder: Path, extra: list[Path]) -> list[Item]:
    raw = load_feed_snapshots(folder)
    for d in extra:
        raw += load_feed_harvest(d)
    out: list[Item] = []
    seen: set[tuple[str, str]] = set()
    for it in raw:
        if not it.get("date"):
            continue
        link = it["meta"].get("link") or ""
        key = (_outlet_of_feed(it), link or it["title"])
        if key in seen:  # the same entry in a later snapshot of the same feed
            continue
        seen.add(key)
        day = datetime.fromisoformat(it["date"]).toordinal()
        out.append(
            {
                "id": it["id"],
                "source": it["source"],
                "outlet": _outlet_of_feed(it),
                "url": link,
                "time": it["date"],
                "day": day,
                "title": it["title"],
                "text": it["text"],
            }
        )
    return out


def candidate_pairs(items: list[Item], days: int) -> list[tuple[int, int, float]]:
    """(i, j, cosine) of items at most ``days`` apart, from different outlets or URLs,
    with cosine >= the lowest bin."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [f"{it['title']} {it['text']}" for it in items]
    x = TfidfVectorizer(stop_words="english", sublinear_tf=True, min_df=1).fit_transform(docs)
    by_day: dict[int, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        by_day[it["day"]].append(i)
    low = min(b[1] for b in BINS)
    out: list[tuple[int, int, float]] = []
    for day in sorted(by_day):
        rows = by_day[day]
        cols = [j for d in range(day, day + days + 1) for j in by_day.get(d, [])]
        sims = (x[rows] @ x[cols].T).tocoo()
        for r, c, v in zip(sims.row, sims.col, sims.data, strict=True):
            i, j = rows[r], cols[c]
            if v < low or i == j:
                continue
            if items[j]["day"] == day and j <= i:  # each same-day pair once
                continue
            a, b = items[i], items[j]
            if a["outlet"] == b["outlet"] and (a["url"] == b["url"] or a["title"] == b["title"]):
                continue
            out.append((i, j, float(v)))
    return out


def wcep_pairs(path: Path, rng: random.Random, quota: int) -> tuple[list[Item], int]:
    events = load_wcep(path)
    by_story: dict[str, list[Item]] = defaultdict(list)
    for e in events:
        story = (e["meta"].get("story") or "").strip()
        if story and len(story) < 120:
            by_story[story.lower()].append(e)
    cands = []
    for group in by_story.values():
        group.sort(key=lambda e: (e["date"], e["id"]))
        for i, a in enumerate(group):
            da = datetime.fromisoformat(a["date"]).toordinal()
            for b in group[i + 1 :]:
                db = datetime.fromisoformat(b["date"]).toordinal()
                if db - da > 3:
                    break
                cands.append((a, b))
    picked = rng.sample(cands, min(quota, len(cands)))

    def as_item(e: Item) -> Item:
        outlets = e["meta"].get("outlets") or []
        return {
            "id": e["id"],
            "source": "wcep",
            "outlet": f"WCEP ({', '.join(outlets[:2])})" if outlets else "WCEP",
            "url": None,
            "time": e["date"],
            "title": None,
            "text": e["text"],
            "story_heading": e["meta"].get("story"),
        }

    return [
        {"a": as_item(a), "b": as_item(b), "bin": "wcep:same-heading-0-3-days", "cosine": None}
        for a, b in picked
    ], len(cands)


def _public(it: Item) -> Item:
    return {k: it[k] for k in ("id", "source", "outlet", "url", "time", "title", "text")}


class PairLabelError(ValueError):
    pass


def read_pair_labels(path: Path, expected: list[str]) -> dict[str, dict[str, Any]]:
    """One valid line per expected pair id; raise naming the problem."""
    out: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PairLabelError(f"{path}:{n}: not JSON: {exc.msg}") from None
        pid = r.get("pair")
        if pid not in expected or pid in out:
            raise PairLabelError(f"{path}:{n}: unexpected or repeated pair {pid!r}")
        same, dup = r.get("same_story"), r.get("duplicate")
        if not isinstance(same, bool) or not isinstance(dup, bool):
            raise PairLabelError(f"{path}:{n}: same_story and duplicate must be booleans")
        out[pid] = {"same_story": same or dup, "duplicate": dup, "note": r.get("note") or ""}
    missing = [p for p in expected if p not in out]
    if missing:
        raise PairLabelError(f"{path}: {len(missing)} pair(s) not labelled, e.g. {missing[0]}")
    return out


def _kappa(a: list[bool], b: list[bool]) -> dict[str, Any]:
    n = len(a)
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    pa, pb = sum(a) / n, sum(b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    po = agree / n
    both = sum(x and y for x, y in zip(a, b, strict=True))
    f1 = 2 * both / (sum(a) + sum(b)) if sum(a) + sum(b) else 1.0
    return {
        "pairs": n,
        "agreement": round(po, 4),
        "kappa": round((po - pe) / (1 - pe), 4) if pe < 1 else 1.0,
        "positive_f1": round(f1, 4),
        "positives_a": sum(a),
        "positives_b": sum(b),
    }


class PairRun:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.assignment: dict[str, list[str]] = json.loads(
            (self.root / "assignment.json").read_text(encoding="utf-8")
        )
        listing = self.root / "batches.json"
        self._batches = (
            json.loads(listing.read_text(encoding="utf-8")) if listing.is_file() else None
        )

    def batch_ids(self, batch: str) -> list[str]:
        if self._batches is not None:
            return list(self._batches[batch])
        path = self.root / "batches" / f"{batch}.jsonl"
        return [json.loads(x)["pair"] for x in path.read_text("utf-8").splitlines() if x]

    def labels(self, batch: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        a, b = self.assignment[batch]
        fa = self.root / "ann" / a / f"{batch}.jsonl"
        fb = self.root / "ann" / b / f"{batch}.jsonl"
        if not fa.is_file() or not fb.is_file():
            return None
        ids = self.batch_ids(batch)
        return read_pair_labels(fa, ids), read_pair_labels(fb, ids)

    def disagreements(self, batch: str) -> list[str] | None:
        got = self.labels(batch)
        if got is None:
            return None
        la, lb = got
        return [
            p
            for p in self.batch_ids(batch)
            if (la[p]["same_story"], la[p]["duplicate"])
            != (lb[p]["same_story"], lb[p]["duplicate"])
        ]


def cmd_disagreements(run: PairRun) -> int:
    shown = {}
    for path in sorted((run.root / "batches").glob("pairs-*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line:
                r = json.loads(line)
                shown[r["pair"]] = r
    (run.root / "adj" / "in").mkdir(parents=True, exist_ok=True)
    total = 0
    for batch in sorted(run.assignment):
        dis = run.disagreements(batch)
        if dis is None:
            print(f"{batch}: not labelled twice yet")
            continue
        got = run.labels(batch)
        assert got is not None
        la, lb = got
        with open(run.root / "adj" / "in" / f"{batch}.jsonl", "w", encoding="utf-8") as fh:
            for p in dis:
                fh.write(json.dumps({**shown[p], "annotator_1": la[p], "annotator_2": lb[p]},
                                    ensure_ascii=False) + "\n")  # fmt: skip
        total += len(dis)
        print(f"{batch}: {len(dis)} disagreement(s)")
    print(f"{total} disagreement(s) in all")
    return 0


def cmd_final(run: PairRun, pairs_file: Path, out: Path) -> int:
    pairs = {
        r["pair"]: r
        for r in (json.loads(x) for x in pairs_file.read_text("utf-8").splitlines() if x)
    }
    same_a: list[bool] = []
    same_b: list[bool] = []
    dup_a: list[bool] = []
    dup_b: list[bool] = []
    rows = []
    origin: dict[str, int] = defaultdict(int)
    for batch in sorted(run.assignment):
        got = run.labels(batch)
        if got is None:
            raise PairLabelError(f"{batch}: not labelled twice yet")
        la, lb = got
        dis = set(run.disagreements(batch) or [])
        adj: dict[str, dict[str, Any]] = {}
        if dis:
            path = run.root / "adj" / "out" / f"{batch}.jsonl"
            if not path.is_file():
                raise PairLabelError(f"{batch}: {len(dis)} disagreement(s), no {path}")
            adj = read_pair_labels(path, sorted(dis))
        for p in run.batch_ids(batch):
            a, b = la[p], lb[p]
            same_a.append(a["same_story"])
            same_b.append(b["same_story"])
            dup_a.append(a["duplicate"])
            dup_b.append(b["duplicate"])
            final, how = (adj[p], "adjudicated") if p in dis else (a, "agreed")
            origin[how] += 1
            rows.append({**pairs[p], "same_story": final["same_story"],
                         "duplicate": final["duplicate"], "labels": how})  # fmt: skip
    rows.sort(key=lambda r: r["pair"])
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    by_bin: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_bin[r["bin"]]["pairs"] += 1
        by_bin[r["bin"]]["same_story"] += r["same_story"]
        by_bin[r["bin"]]["duplicate"] += r["duplicate"]
    report: dict[str, Any] = {
        "pairs": len(rows),
        "same_story": _kappa(same_a, same_b),
        "duplicate": _kappa(dup_a, dup_b),
        "labels": dict(origin),
        "gold": {
            "same_story": sum(r["same_story"] for r in rows),
            "duplicate": sum(r["duplicate"] for r in rows),
        },
        "by_bin": {k: dict(v) for k, v in sorted(by_bin.items())},
        "assignment": run.assignment,
    }
    (out.parent / "pairs-agreement.json").write_text(
        json.dumps(report, indent=1) + "\n", encoding="utf-8"
    )
    print(
        f"{len(rows)} pairs -> {out}; agreement same_story kappa "
        f"{report['same_story']['kappa']}, duplicate kappa {report['duplicate']['kappa']}; "
        f"{dict(origin)}"
    )
    return 0


def cmd_record(run: PairRun, dest: Path) -> int:
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "assignment.json").write_text(json.dumps(run.assignment, indent=1) + "\n", "utf-8")
    batches = {b: run.batch_ids(b) for b in sorted(run.assignment)}
    (dest / "batches.json").write_text(json.dumps(batches, indent=1) + "\n", "utf-8")
    for sub in ("ann", "adj/out"):
        if (run.root / sub).is_dir():
            shutil.copytree(run.root / sub, dest / sub, dirs_exist_ok=True)
    for name in ("annotator-prompt.txt", "adjudicator-prompt.txt", "sampling.json"):
        if (run.root / name).is_file():
            shutil.copy2(run.root / name, dest / name)
    return 0


def main(argv: list[str] | None = None) -> int:
    top = argparse.ArgumentParser(prog="python -m worker.corpus.pairs", description=__doc__)
    sub = top.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("disagreements", help="write adj/in for batches labelled twice")
    d.add_argument("--run", type=Path, required=True)
    f = sub.add_parser("final", help="write the labelled pairs and their agreement record")
    f.add_argument("--run", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--record", type=Path, default=None, help="copy the raw labels here")
    p = sub.add_parser("sample", help="draw candidate pairs and write the batches")
    p.add_argument("--wcep", type=Path, default=SHARED / "pools" / "wcep-events.jsonl.gz")
    p.add_argument("--headlines", type=Path, default=SHARED / "pools" / "headlines-2022.jsonl.gz")
    p.add_argument("--feeds", type=Path, default=SHARED / "feeds")
    p.add_argument("--feeds-extra", type=Path, nargs="*", default=[])
    p.add_argument("--days", type=int, default=2, help="at most this many days apart")
    p.add_argument("--seed", type=int, default=20261211)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--out", type=Path, required=True)
    args = top.parse_args(argv)
    try:
        if args.cmd == "disagreements":
            return cmd_disagreements(PairRun(args.run))
        if args.cmd == "final":
            run = PairRun(args.run)
            rc = cmd_final(run, args.run / "pairs.jsonl", args.out)
            if rc == 0 and args.record is not None:
                rc = cmd_record(run, args.record)
            return rc
    except PairLabelError as exc:
        print(f"error: {exc}")
        return 2
    rng = random.Random(args.seed)

    items = load_headlines_all(args.headlines) + load_feeds(args.feeds, args.feeds_extra)
    cands = candidate_pairs(items, args.days)
    record: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    used: dict[str, int] = defaultdict(int)  # at most 3 pairs per item: spread the sample
    for name, lo, hi, quota in BINS:
        in_bin = sorted((c for c in cands if lo <= c[2] < hi), key=lambda c: (c[0], c[1]))
        rng.shuffle(in_bin)
        drawn = 0
        for i, j, v in in_bin:
            if drawn >= quota:
                break
            a, b = items[i], items[j]
            if used[a["id"]] >= 3 or used[b["id"]] >= 3:
                continue
            used[a["id"]] += 1
            used[b["id"]] += 1
            pairs.append({"a": _public(a), "b": _public(b), "bin": name, "cosine": round(v, 3)})
            drawn += 1
        record.append(
            {"bin": name, "rule": f"{lo} <= tf-idf cosine < {hi}", "quota": quota,
             "candidates": len(in_bin), "drawn": drawn}
        )  # fmt: skip
    wp, wn = wcep_pairs(args.wcep, rng, WCEP_QUOTA)
    pairs += wp
    record.append(
        {"bin": "wcep:same-heading-0-3-days", "rule": "two event summaries under one story "
         "heading, 0-3 days apart", "quota": WCEP_QUOTA, "candidates": wn, "drawn": len(wp)}
    )  # fmt: skip
    for pr in pairs:
        if rng.random() < 0.5:  # A is not always the earlier item
            pr["a"], pr["b"] = pr["b"], pr["a"]
        pr["pair"] = (
            "p-" + hashlib.sha1(f"{pr['a']['id']}|{pr['b']['id']}".encode()).hexdigest()[:10]
        )
    out: Path = args.out
    (out / "batches").mkdir(parents=True, exist_ok=True)
    with open(out / "pairs.jsonl", "w", encoding="utf-8") as fh:
        for pr in pairs:
            fh.write(json.dumps(pr, ensure_ascii=False) + "\n")
    order = pairs[:]
    rng.shuffle(order)
    nb = 0
    for k in range(0, len(order), args.batch_size):
        with open(out / "batches" / f"pairs-{nb:03d}.jsonl", "w", encoding="utf-8") as fh:
            for pr in order[k : k + args.batch_size]:
                shown = {
                    "pair": pr["pair"],
                    "A": {x: pr["a"][x] for x in ("outlet", "time", "title", "text")},
                    "B": {x: pr["b"][x] for x in ("outlet", "time", "title", "text")},
                }
                fh.write(json.dumps(shown, ensure_ascii=False) + "\n")
        nb += 1
    files = [args.wcep, args.headlines, *sorted(Path(args.feeds).glob("*.xml"))]
    for d in args.feeds_extra:
        files += sorted(Path(d).glob("*.jsonl"))
    summary = {
        "seed": args.seed,
        "days": args.days,
        "made": datetime.now(UTC).isoformat(timespec="seconds"),
        "items": len(items),
        "candidates": len(cands),
        "bins": record,
        "pairs": len(pairs),
        "batches": nb,
        "pool_files": {f.name: _digest(f) for f in files},
    }
    (out / "sampling.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("items", "candidates", "pairs", "batches")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
