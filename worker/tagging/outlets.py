"""``python -m worker.tagging.outlets``: how the tagger does on feed outlets it never trained on.

Leave-one-outlet-out over the training-only feed items (the ``headline+summary`` items of
``silver.jsonl``, each with the feed file it came from in ``meta.file``): for each outlet, a
model is trained exactly as ``train`` fits it, on the corpus and every other training item
less the outlet's items (and their stories), and scores the outlet's items. Thresholds are the
shipped model's (chosen on the corpus's out-of-fold predictions). Per outlet and overall it
prints topics micro-F1 of the rules alone, of rules-or-model (``union``: what the service does
on a short item, the rules' tags the model gives under ``veto_below`` dropped) and of the model
alone (``alone``: what it does on an item it hands the model
whole), with a bootstrap interval of alone minus union.

``--shape headline`` does the same for the 7,393 training-only headlines (a title alone): they
come from some 3,000 outlets (``meta.domain``; a feed's outlet for the few from feeds), so the
outlets are dealt into five folds, balanced by items, and each fold is scored by a model
trained without its outlets' items.

It is the largest measurement on the shape feeds deliver (3,293 items of 16 outlets against
the corpus's 677), and the only one by outlet; its labels are single annotators' (hidden
controls: 0.948 micro-F1 against adjudicated labels), so it informs choices rather than
replacing the corpus's cross-validation. One to two minutes on this machine.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from worker.tagging.train import (
    DEFAULT_C,
    DEFAULT_CORPUS,
    EXTRA_NAME,
    SUMMARY_SHAPE,
    fit,
    group_folds,
    predict,
    prepare,
    read_corpus,
)

ROOT = Path(__file__).resolve().parents[2]
MIN_OUTLET = 30
"""Outlets with fewer items are scored together, as "other"."""

_FEED_SUFFIX = re.compile(
    r"(_discovery|_world|_econ|_economics|_latest|_global|_official_msn|_politics|_markets"
    r"|_opinion|_business|-home)+$"
)


def outlet_of(feed_file: str) -> str:
    """The outlet of a feed file: ``.../bloomberg_politics.xml`` -> ``bloomberg`` (BNN Bloomberg
    too), ``reuters_official_msn.xml`` -> ``reuters``, ``business_standard_discovery.xml`` ->
    ``business_standard``."""
    stem = feed_file.rsplit("/", 1)[-1].split(":")[-1]
    stem = stem[:-4] if stem.endswith(".xml") else stem
    stem = _FEED_SUFFIX.sub("", stem)
    if stem.startswith(("bloomberg", "bnn")):
        return "bloomberg"
    return stem


def _f1(gold: np.ndarray, pred: np.ndarray) -> float:
    tp = int((gold & pred).sum())
    d = 2 * tp + int((pred & ~gold).sum()) + int((gold & ~pred).sum())
    return 2 * tp / d if d else 0.0


def _pr(gold: np.ndarray, pred: np.ndarray) -> list[float]:
    tp = int((gold & pred).sum())
    return [tp / max(1, int(pred.sum())), tp / max(1, int(gold.sum()))]


def item_outlet(rec: dict[str, Any]) -> str | None:
    """The outlet of a training item: its feed's (:func:`outlet_of`), else its page's domain."""
    meta = rec.get("meta") or {}
    if meta.get("file"):
        return outlet_of(str(meta["file"]))
    if meta.get("domain"):
        return str(meta["domain"]).lower().removeprefix("www.")
    return None


def leave_one_outlet_out(
    corpus: Path,
    extra: Path,
    model_file: Path,
    progress: Any = None,
    shape: str = SUMMARY_SHAPE,
    folds: int = 0,
    gold_file: Path | None = None,
) -> dict[str, Any]:
    """Scores of the ``shape`` items of ``extra`` by models trained without their outlet
    (``folds``: deal the outlets into that many folds instead of one model per outlet).
    ``gold_file``: labels (JSONL ``id``, ``topics``) to score against instead of the training
    items' own, for the items it names only (a double-annotated sample of them)."""
    from worker.tagging import Tagger

    model = orjson.loads(model_file.read_bytes())
    topics: list[str] = list(model["topics"])
    union_th = np.array([model["thresholds"][t] for t in topics])
    alone_th = np.array([model["alone_thresholds"][t] for t in topics])
    veto = float(model.get("veto_below", 0.0))
    cal = model.get("calibration")
    calibration = np.array([cal[t] for t in topics]) if cal else None
    tagger = Tagger.from_config_dir(ROOT / "configs", model=False)
    rows = read_corpus(corpus)
    extra_rows = read_corpus(extra)
    examples = prepare(rows, tagger)
    extra_ex = prepare(extra_rows, tagger)
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(extra_rows):
        outlet = item_outlet(r)
        if r.get("shape") == shape and outlet:
            by[outlet].append(i)
    if folds:
        names = sorted(by)
        fold_of = group_folds([o for o in names for _ in by[o]], folds)
        dealt: dict[str, list[int]] = defaultdict(list)
        at = 0
        for o in names:
            f = fold_of[at]
            dealt[f"fold {f + 1}"] += by[o]
            at += len(by[o])
        by = dealt
    else:
        small = [o for o, items in by.items() if len(items) < MIN_OUTLET]
        for o in small:
            by["other"] += by.pop(o)
    if not by:
        raise SystemExit(f"no {shape} items with a known outlet in {extra}")
    order = sorted(by, key=lambda o: (o == "other", -len(by[o]), o))
    scored: list[int] = []
    probs: list[np.ndarray] = []
    outlet_rows: dict[str, slice] = {}
    t0 = time.monotonic()
    for n, o in enumerate(order, 1):
        items = by[o]
        out = set(items)
        groups = {extra_ex[i].group for i in items}
        train = [*examples] + [
            ex for j, ex in enumerate(extra_ex) if j not in out and ex.group not in groups
        ]
        fitted = fit(train, topics, DEFAULT_C, weights=[1.0] * len(train))
        outlet_rows[o] = slice(len(scored), len(scored) + len(items))
        scored += items
        fitted.calibration = calibration  # the shipped model's, as its thresholds
        probs.append(predict(fitted, [extra_ex[i] for i in items]))
        if progress:
            progress(f"{n}/{len(order)} {o}: {len(items)} items, {time.monotonic() - t0:.0f} s")
    p = np.vstack(probs)
    labels = {i: extra_ex[i].topics for i in scored}
    if gold_file is not None:
        relabel = {r["id"]: frozenset(r.get("topics") or ()) for r in read_corpus(gold_file)}
        keep = [k for k, i in enumerate(scored) if extra_ex[i].id in relabel]
        missing = set(relabel) - {extra_ex[i].id for i in scored}
        if missing:
            raise SystemExit(f"{gold_file}: {len(missing)} ids are not {shape} items here")
        p = p[keep]
        scored = [scored[k] for k in keep]
        labels = {i: relabel[extra_ex[i].id] for i in scored}
        outlet_rows = _restrict(outlet_rows, keep)
    gold = np.array([[t in labels[i] for t in topics] for i in scored])
    rules = np.array([[t in extra_ex[i].rule_topics for t in topics] for i in scored])
    # rules-or-model as the service combines on an item it does not hand the model whole: the
    # rules' tags the model all but rules out (under ``veto_below``) do not stand
    union = (rules & ~(p < veto)) | (p >= union_th[None, :])
    alone = p >= alone_th[None, :]
    per = {
        o: {
            "items": s.stop - s.start,
            "rules": _f1(gold[s], rules[s]),
            "union": _f1(gold[s], union[s]),
            "alone": _f1(gold[s], alone[s]),
        }
        for o, s in outlet_rows.items()
    }
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(1000):
        pick = rng.integers(0, len(scored), len(scored))
        diffs.append(_f1(gold[pick], alone[pick]) - _f1(gold[pick], union[pick]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    from worker.tagging.encoder import fine_tuned

    return {
        "model": model.get("version"),
        "shape": shape,
        # the neighbours read every item's embedding by the shipped encoder: fine-tuned, it
        # learnt from the held-out outlets' labels too, so the model's figures overstate
        "encoder_saw_these_items": fine_tuned(),
        "labels": str(gold_file) if gold_file is not None else "the training items' own",
        "items": len(scored),
        "outlets": per,
        "all": {
            "rules": _f1(gold, rules),
            "union": _f1(gold, union),
            "alone": _f1(gold, alone),
            "precision_recall": {
                "rules": _pr(gold, rules),
                "union": _pr(gold, union),
                "alone": _pr(gold, alone),
            },
            "alone_minus_union_95": [float(lo), float(hi)],
        },
    }


def _restrict(rows: dict[str, slice], keep: list[int]) -> dict[str, slice]:
    """The outlets' row ranges after keeping the rows ``keep`` (sorted) of the stacked ones."""
    out = {}
    for o, sl in rows.items():
        inside = [k for k in keep if sl.start <= k < sl.stop]
        if inside:
            first = keep.index(inside[0])
            out[o] = slice(first, first + len(inside))
    return out


def render(res: dict[str, Any]) -> str:
    lines = [
        f"leave-one-outlet-out, {res['items']} items of the shape {res['shape']} "
        f"(model {res['model']}'s thresholds; labels: {res['labels']})",
        f"{'outlet':20s} {'items':>6s} {'rules':>7s} {'union':>7s} {'alone':>7s}",
    ]
    for o, v in res["outlets"].items():
        lines.append(
            f"{o:20s} {v['items']:6d} {v['rules']:7.3f} {v['union']:7.3f} {v['alone']:7.3f}"
        )
    a = res["all"]
    lo, hi = a["alone_minus_union_95"]
    lines.append(
        f"{'all':20s} {res['items']:6d} {a['rules']:7.3f} {a['union']:7.3f} {a['alone']:7.3f}"
    )
    pr = a["precision_recall"]
    lines.append(
        f"{'  precision, recall':20s} {'':6s} "
        + " ".join(f"{pr[k][0]:.2f},{pr[k][1]:.2f}" for k in ("rules", "union", "alone"))
    )
    lines.append(
        f"alone - union: {a['alone'] - a['union']:+.3f} (95% bootstrap interval {lo:+.3f} "
        f"to {hi:+.3f})"
    )
    if res.get("encoder_saw_these_items"):
        lines.append(
            "mind: the sentence encoder was fine-tuned on every labelled item, these outlets' "
            "too: the neighbours' share of union and alone overstates (an upper bound)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m worker.tagging.outlets",
        description="Leave-one-outlet-out on the training-only feed items.",
    )
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    p.add_argument("--extra", type=Path, default=DEFAULT_CORPUS.with_name(EXTRA_NAME))
    p.add_argument("--model", type=Path, default=ROOT / "configs" / "topic-model.json")
    p.add_argument(
        "--shape",
        choices=[SUMMARY_SHAPE, "headline"],
        default=SUMMARY_SHAPE,
        help="which training items to score (default: %(default)s)",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=None,
        help="deal the outlets into this many folds (default: one model per outlet for "
        "headline+summary, 5 folds for headline)",
    )
    p.add_argument(
        "--gold",
        type=Path,
        default=None,
        metavar="FILE",
        help="score against these labels (JSONL id, topics) for the items they name only",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = p.parse_args(argv)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    folds = args.folds if args.folds is not None else (5 if args.shape == "headline" else 0)
    res = leave_one_outlet_out(
        args.corpus, args.extra, args.model, say, args.shape, folds, args.gold
    )
    print(orjson.dumps(res).decode() if args.json else render(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
