"""Merge two annotators' labels: agreement, disagreements for the adjudicator, final corpus.

Layout of a labelling run (``--run DIR``):

- ``items.jsonl``, ``batches/batch-NNN.jsonl``: from :mod:`worker.corpus.sample`;
- ``assignment.json``: ``{"batch-000": ["ann-a1", "ann-b4"], ...}``, the two annotators of
  each batch;
- ``ann/<annotator>/batch-NNN.jsonl``: one line per item, ``id, topics, countries, note``;
- ``adj/in/batch-NNN.jsonl``: written here, the items of a batch the two annotators labelled
  differently (topics or countries), with what both chose, what only one chose and notes;
- ``adj/out/batch-NNN.jsonl``: the adjudicator's decisions, ``id, topics, countries, why``.

``python -m worker.corpus.merge disagreements --run DIR`` writes ``adj/in`` for every batch
whose two annotations are in (and prints agreement so far); ``python -m worker.corpus.merge
final --run DIR --out FILE`` writes the labelled corpus (agreed labels, adjudicated where the
annotators differed) and ``agreement.json`` beside it. Both refuse malformed annotations
(unknown topic id, bad country code, a missing or repeated item) with the file and item.

``python -m worker.corpus.merge silver --run DIR --corpus FILE --out FILE`` merges a run
labelled by ONE annotator per batch (``plan.json``: ``[{"annotator", "batches", "control"}]``)
into training-only items: each annotator's run also holds a control batch of corpus items,
unknown to them as such, and their agreement with the corpus's adjudicated labels there is
the measure of the silver labels (``silver.json`` beside the output). Story groups are
mapped onto the corpus's, so that cross-validation keeps a story out of the training folds.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

TOPICS = (
    "arms-control", "nonproliferation", "sanctions", "trade", "leader-contact", "negotiations",
    "pandemic", "armed-conflict", "peace-process", "alliances", "multilateral",
    "diplomatic-relations", "territorial-disputes",
)  # fmt: skip
_CC = re.compile(r"^[A-Z]{2}$")


class AnnotationError(ValueError):
    pass


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AnnotationError(f"{path}:{n}: not JSON: {exc.msg}") from None
    return rows


def read_labels(path: Path, expected_ids: list[str]) -> dict[str, dict[str, Any]]:
    """One valid label line per expected id (order free); raise naming the problem."""
    out: dict[str, dict[str, Any]] = {}
    for r in _read_jsonl(path):
        rid = r.get("id")
        if rid not in expected_ids:
            raise AnnotationError(f"{path}: unexpected id {rid!r}")
        if rid in out:
            raise AnnotationError(f"{path}: {rid} labelled twice")
        topics = r.get("topics")
        countries = r.get("countries")
        if not isinstance(topics, list) or any(t not in TOPICS for t in topics):
            raise AnnotationError(f"{path}: {rid}: bad topics {topics!r}")
        if not isinstance(countries, list) or any(
            not isinstance(c, str) or not _CC.match(c) for c in countries
        ):
            raise AnnotationError(f"{path}: {rid}: bad countries {countries!r}")
        out[rid] = {
            "topics": sorted(set(topics)),
            "countries": sorted(set(countries)),
            "note": r.get("note") or r.get("why") or "",
        }
    missing = [i for i in expected_ids if i not in out]
    if missing:
        raise AnnotationError(f"{path}: {len(missing)} item(s) not labelled, e.g. {missing[0]}")
    return out


# --------------------------------------------------------------------------- agreement


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0


def agreement(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Any]:
    """Agreement of annotator A with annotator B: micro-F1 (symmetric), per-topic F1 and
    Cohen's kappa, exact-match rate of the topic set, countries micro-F1."""
    n = len(pairs)
    per: dict[str, dict[str, Any]] = {}
    tot = [0, 0, 0]
    for t in TOPICS:
        both = only_a = only_b = 0
        for a, b in pairs:
            ia, ib = t in a["topics"], t in b["topics"]
            both += ia and ib
            only_a += ia and not ib
            only_b += ib and not ia
        neither = n - both - only_a - only_b
        po = (both + neither) / n if n else 1.0
        pa, pb = (both + only_a) / n if n else 0, (both + only_b) / n if n else 0
        pe = pa * pb + (1 - pa) * (1 - pb)
        kappa = (po - pe) / (1 - pe) if pe < 1 else 1.0
        per[t] = {
            "f1": round(_f1(both, only_a, only_b), 4),
            "kappa": round(kappa, 4),
            "both": both,
            "only_a": only_a,
            "only_b": only_b,
        }
        tot[0] += both
        tot[1] += only_a
        tot[2] += only_b
    c = [0, 0, 0]
    for a, b in pairs:
        sa, sb = set(a["countries"]), set(b["countries"])
        c[0] += len(sa & sb)
        c[1] += len(sa - sb)
        c[2] += len(sb - sa)
    return {
        "items": n,
        "topics_micro_f1": round(_f1(*tot), 4),
        "topics_exact_match": round(
            sum(a["topics"] == b["topics"] for a, b in pairs) / n if n else 1.0, 4
        ),
        "countries_micro_f1": round(_f1(*c), 4),
        "items_all_agreed": sum(
            a["topics"] == b["topics"] and a["countries"] == b["countries"] for a, b in pairs
        ),
        "per_topic": per,
    }


# ---------------------------------------------------------------------------- the run


class Run:
    """A labelling run: the working folder, or the record kept with the corpus (there the
    items are ``corpus.jsonl`` and the batches' item ids ``batches.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        items = self.root / "items.jsonl"
        if not items.is_file():
            items = self.root.parent / "corpus.jsonl"
        self.items = {r["id"]: r for r in _read_jsonl(items)}
        self.assignment: dict[str, list[str]] = json.loads(
            (self.root / "assignment.json").read_text(encoding="utf-8")
        )
        listing = self.root / "batches.json"
        self._batches: dict[str, list[str]] | None = (
            json.loads(listing.read_text(encoding="utf-8")) if listing.is_file() else None
        )

    def batch_ids(self, batch: str) -> list[str]:
        if self._batches is not None:
            return self._batches[batch]
        return [r["id"] for r in _read_jsonl(self.root / "batches" / f"{batch}.jsonl")]

    def annotations(self, batch: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        a, b = self.assignment[batch]
        pa = self.root / "ann" / a / f"{batch}.jsonl"
        pb = self.root / "ann" / b / f"{batch}.jsonl"
        if not (pa.is_file() and pb.is_file()):
            return None
        ids = self.batch_ids(batch)
        return read_labels(pa, ids), read_labels(pb, ids)

    def disagreements(self, batch: str) -> list[dict[str, Any]] | None:
        ann = self.annotations(batch)
        if ann is None:
            return None
        la, lb = ann
        out = []
        for rid in self.batch_ids(batch):
            a, b = la[rid], lb[rid]
            if a["topics"] == b["topics"] and a["countries"] == b["countries"]:
                continue
            it = self.items[rid]
            ta, tb = set(a["topics"]), set(b["topics"])
            ca, cb = set(a["countries"]), set(b["countries"])
            out.append(
                {
                    "id": rid,
                    "date": it["date"],
                    "title": it["title"],
                    "text": it["text"],
                    "topics_both": sorted(ta & tb),
                    "topics_one_only": sorted(ta ^ tb),
                    "countries_both": sorted(ca & cb),
                    "countries_one_only": sorted(ca ^ cb),
                    "notes": [n for n in (a["note"], b["note"]) if n],
                }
            )
        return out


def cmd_disagreements(run: Run) -> int:
    (run.root / "adj" / "in").mkdir(parents=True, exist_ok=True)
    pairs = []
    done = 0
    for batch in sorted(run.assignment):
        ann = run.annotations(batch)
        if ann is None:
            continue
        done += 1
        la, lb = ann
        pairs += [(la[i], lb[i]) for i in run.batch_ids(batch)]
        path = run.root / "adj" / "in" / f"{batch}.jsonl"
        rows = run.disagreements(batch) or []
        if not path.exists():
            path.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
            print(f"{batch}: {len(rows)} to adjudicate -> {path}")
    ag = agreement(pairs)
    print(
        f"{done}/{len(run.assignment)} batches double-annotated; "
        f"topics micro-F1 {ag['topics_micro_f1']}, exact {ag['topics_exact_match']}, "
        f"countries {ag['countries_micro_f1']}, all agreed {ag['items_all_agreed']}/{ag['items']}"
    )
    return 0


def cmd_final(run: Run, out: Path) -> int:
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    by_shape: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    rows = []
    origin: Counter[str] = Counter()
    adjudicated_pairs = []
    for batch in sorted(run.assignment):
        ann = run.annotations(batch)
        if ann is None:
            raise AnnotationError(f"{batch}: not annotated twice yet")
        la, lb = ann
        ids = run.batch_ids(batch)
        dis = {r["id"] for r in (run.disagreements(batch) or [])}
        adj: dict[str, dict[str, Any]] = {}
        if dis:
            path = run.root / "adj" / "out" / f"{batch}.jsonl"
            if not path.is_file():
                raise AnnotationError(f"{batch}: {len(dis)} disagreement(s), no {path}")
            adj = read_labels(path, sorted(dis))
        for rid in ids:
            it = run.items[rid]
            a, b = la[rid], lb[rid]
            pairs.append((a, b))
            by_shape.setdefault(it["shape"], []).append((a, b))
            if rid in dis:
                final = adj[rid]
                how = "adjudicated"
                adjudicated_pairs.append((a, b, final))
            else:
                final = a
                how = "agreed"
            origin[how] += 1
            rows.append(
                {
                    "id": rid,
                    "source": it["source"],
                    "shape": it["shape"],
                    "date": it["date"],
                    "title": it["title"],
                    "text": it["text"],
                    "topics": final["topics"],
                    "countries": final["countries"],
                    "group": it["group"],
                    "stratum": it["stratum"],
                    "labels": how,
                    "meta": it["meta"],
                }
            )
    rows.sort(key=lambda r: r["id"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    # how often the adjudicator sided with each annotator (on the topic set)
    side: Counter[str] = Counter()
    for a, b, f in adjudicated_pairs:
        side[
            "a" if f["topics"] == a["topics"] else "b" if f["topics"] == b["topics"] else "neither"
        ] += 1
    report = {
        "overall": agreement(pairs),
        "by_shape": {
            s: {k: v for k, v in agreement(p).items() if k != "per_topic"}
            for s, p in sorted(by_shape.items())
        },
        "labels": dict(origin),
        "adjudicator_topic_set_matches": dict(side),
        "gold_positives": {t: sum(t in r["topics"] for r in rows) for t in TOPICS},
        "gold_no_topic": sum(not r["topics"] for r in rows),
        "assignment": run.assignment,
    }
    (out.parent / "agreement.json").write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    ov = agreement(pairs)
    print(
        f"{len(rows)} items -> {out}; agreement topics micro-F1 {ov['topics_micro_f1']}, "
        f"countries {ov['countries_micro_f1']}; {dict(origin)}"
    )
    return 0


def cmd_record(run: Run, dest: Path) -> int:
    """Keep the run's record beside the corpus: who labelled which batch, the batches' item
    ids, every annotator's and the adjudicator's raw labels, and the instructions given."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    (dest / "assignment.json").write_text(json.dumps(run.assignment, indent=1) + "\n", "utf-8")
    batches = {b: run.batch_ids(b) for b in sorted(run.assignment)}
    (dest / "batches.json").write_text(json.dumps(batches, indent=1) + "\n", "utf-8")
    for sub in ("ann", "adj/out"):
        src = run.root / sub
        if src.is_dir():
            shutil.copytree(src, dest / sub, dirs_exist_ok=True)
    for prompt in sorted(run.root.parent.glob("*-prompt.txt")):
        shutil.copy2(prompt, dest / prompt.name)
    print(f"record -> {dest}")
    return 0


def cmd_silver(root: Path, corpus_path: Path, out: Path, record: Path | None) -> int:
    import shutil

    plan: list[dict[str, Any]] = json.loads((root / "plan.json").read_text(encoding="utf-8"))
    corpus = {r["id"]: r for r in _read_jsonl(corpus_path)}
    # the working run has the drawn items and batch files; the record kept with the corpus
    # has the silver file itself (groups already mapped) and the batches' item ids
    listing = root / "batches.json"
    kept_batches: dict[str, list[str]] | None = (
        json.loads(listing.read_text(encoding="utf-8")) if listing.is_file() else None
    )
    corpus_group_of_run_group: dict[str, str] = {}
    if (root / "items.jsonl").is_file():
        items = {r["id"]: r for r in _read_jsonl(root / "items.jsonl")}
        # a silver item's story group: the corpus group of any corpus item in its run group
        for rid, it in items.items():
            if rid in corpus:
                g = corpus_group_of_run_group.get(it["group"])
                cg = corpus[rid]["group"]
                corpus_group_of_run_group[it["group"]] = min(g, cg) if g else cg
    else:
        items = {r["id"]: r for r in _read_jsonl(root.parent / out.name)}
    rows = []
    control: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    assignment: dict[str, str] = {}
    for run in plan:
        name = run["annotator"]
        for batch_path in run["batches"]:
            batch = Path(batch_path).stem
            ids = (
                kept_batches[batch]
                if kept_batches is not None
                else [r["id"] for r in _read_jsonl(Path(batch_path))]
            )
            labels = read_labels(root / "ann" / name / f"{batch}.jsonl", ids)
            assignment[batch] = name
            if Path(batch_path).name == run["control"]:
                control[name] = [(labels[i], corpus[i]) for i in ids]
                continue
            for rid in ids:
                it = items[rid]
                if rid in corpus:
                    raise AnnotationError(f"{batch}: {rid} is a corpus item")
                rows.append(
                    {
                        "id": rid,
                        "source": it["source"],
                        "shape": it["shape"],
                        "date": it["date"],
                        "title": it["title"],
                        "text": it["text"],
                        "topics": labels[rid]["topics"],
                        "countries": labels[rid]["countries"],
                        "group": corpus_group_of_run_group.get(it["group"], it["group"]),
                        "stratum": it["stratum"],
                        "labels": f"single:{name}",
                        "meta": it["meta"],
                    }
                )
    rows.sort(key=lambda r: r["id"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    pairs = [p for ps in control.values() for p in ps]
    cv = agreement(pairs)
    report: dict[str, Any] = {
        "items": len(rows),
        "shapes": dict(Counter(r["shape"] for r in rows)),
        "positives": {t: sum(t in r["topics"] for r in rows) for t in TOPICS},
        "no_topic": sum(not r["topics"] for r in rows),
        "linked_to_corpus_stories": sum(
            r["group"] in corpus_group_of_run_group.values() for r in rows
        ),
        "control_vs_gold": cv,
        "control_vs_gold_by_annotator": {
            name: {k: v for k, v in agreement(ps).items() if k != "per_topic"}
            for name, ps in sorted(control.items())
        },
        "assignment": assignment,
    }
    (out.parent / (out.stem + ".json")).write_text(
        json.dumps(report, indent=2) + "\n", encoding="utf-8"
    )
    if record is not None:
        record.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / "plan.json", record / "plan.json")
        batches = {
            Path(b).stem: [r["id"] for r in _read_jsonl(Path(b))]
            for run in plan
            for b in run["batches"]
        }
        (record / "batches.json").write_text(json.dumps(batches, indent=1) + "\n", "utf-8")
        shutil.copytree(root / "ann", record / "ann", dirs_exist_ok=True)
        shutil.copy2(root / "annotator-prompt.txt", record / "annotator-prompt.txt")
        shutil.copy2(root / "sampling.json", record / "sampling.json")
    print(
        f"{len(rows)} silver items -> {out}; on {cv['items']} control items the single "
        f"annotators agree with gold at topics micro-F1 {cv['topics_micro_f1']}, "
        f"countries {cv['countries_micro_f1']}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m worker.corpus.merge", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("disagreements", help="agreement so far; write adj/in for finished batches")
    d.add_argument("--run", type=Path, required=True)
    f = sub.add_parser("final", help="write the labelled corpus and agreement.json")
    f.add_argument("--run", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument(
        "--record",
        type=Path,
        default=None,
        help="also copy the run's raw labels and batches here (provenance)",
    )
    sv = sub.add_parser("silver", help="merge a one-annotator run into training-only items")
    sv.add_argument("--run", type=Path, required=True)
    sv.add_argument("--corpus", type=Path, required=True)
    sv.add_argument("--out", type=Path, required=True)
    sv.add_argument("--record", type=Path, default=None, help="copy the raw labels here")
    args = p.parse_args(argv)
    try:
        if args.cmd == "silver":
            return cmd_silver(args.run, args.corpus, args.out, args.record)
        run = Run(args.run)
        if args.cmd == "disagreements":
            return cmd_disagreements(run)
        rc = cmd_final(run, args.out)
        if rc == 0 and args.record is not None:
            rc = cmd_record(run, args.record)
        return rc
    except AnnotationError as exc:
        print(f"error: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
