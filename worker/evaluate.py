"""``python -m worker eval FILE.jsonl [--cv K] [--rules-only] [--windows]``: measure the tagger.

Input: one JSON object per line with ``id``, ``title``, ``text`` and optionally ``date``
(ISO 8601 or RFC 2822; it resolves leaders' terms of office), gold ``topics`` (ids) and
``countries`` (ISO alpha-2 codes), ``shape`` and ``group`` (the corpus has them).

Output: one JSON line per input on stdout, ``{"id": ..., "topics": [...], "countries": [...]}``,
tagged by the same :class:`~worker.tagging.Tagger` the service uses (title + text, rules and
the learned model). When the input carries gold labels, tables on stderr: precision, recall,
F1 and support per topic, micro and macro averages (macro over topics with gold support),
micro P/R/F1 for countries, and the micro figures per shape (headline, headline+summary,
paragraph, article: the record's ``shape``, else inferred from its length).

``--cv K`` measures generalisation on a labelled corpus: grouped K-fold cross-validation (a
story's items stay in one fold), the model and its thresholds trained on the other folds
only; stdout has the out-of-fold predictions of rules + model, stderr the tables for the
rules alone, the model alone and both. Exit status 0, or 2 for a missing or empty file or a
malformed line (with its line number).

:func:`evaluate_records` returns the metrics as a dict, for tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from worker.tagging import Tagger, TaxonomyError
from worker.tagging.train import shape_of

DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class EvalInputError(ValueError):
    """The evaluation file is missing or a line of it is malformed."""


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    title: str | None
    text: str
    published_at: datetime | None
    topics: list[str] | None  # gold, if labelled
    countries: list[str] | None
    shape: str = ""
    raw: dict[str, Any] | None = None


# ---------------------------------------------------------------------------- input


def parse_date(value: Any) -> datetime | None:
    """ISO 8601 date or datetime, or RFC 2822 ("Tue, 18 Aug 2026 05:12:57 +0000"); None if empty."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"date must be a string, not {type(value).__name__}")
    v = value.strip()
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        try:
            d = date.fromisoformat(v)
            dt = datetime(d.year, d.month, d.day, tzinfo=UTC)
        except ValueError:
            try:
                dt = parsedate_to_datetime(v)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"unrecognised date {value!r}") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _labels(obj: dict[str, Any], key: str, lineno: int) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise EvalInputError(f"line {lineno}: {key!r} must be a list of strings")
    return value


def read_records(path: Path) -> list[Record]:
    """Read and validate a JSONL file; raise :class:`EvalInputError` naming the line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalInputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot read: {exc}") from None
    out: list[Record] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalInputError(f"{path}: line {lineno}: not valid JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise EvalInputError(f"{path}: line {lineno}: expected a JSON object")
        missing = [k for k in ("id", "text") if k not in obj]
        if missing:
            raise EvalInputError(f"{path}: line {lineno}: missing {', '.join(missing)}")
        if not isinstance(obj["text"], str):
            raise EvalInputError(f"{path}: line {lineno}: 'text' must be a string")
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            raise EvalInputError(f"{path}: line {lineno}: 'title' must be a string")
        try:
            published = parse_date(obj.get("date"))
        except ValueError as exc:
            raise EvalInputError(f"{path}: line {lineno}: {exc}") from None
        try:
            out.append(
                Record(
                    id=str(obj["id"]),
                    title=title,
                    text=obj["text"],
                    published_at=published,
                    topics=_labels(obj, "topics", lineno),
                    countries=_labels(obj, "countries", lineno),
                    shape=shape_of(obj),
                    raw=obj,
                )
            )
        except EvalInputError as exc:
            raise EvalInputError(f"{path}: {exc}") from None
    return out


# ---------------------------------------------------------------------------- metrics


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "support": tp + fn, "tp": tp, "fp": fp, "fn": fn}


def compute_metrics(
    gold: Sequence[Iterable[str]],
    pred: Sequence[Iterable[str]],
    labels: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Per-label and micro/macro P/R/F1 for multi-label sets (macro: labels with support)."""
    counts: dict[str, list[int]] = {lab: [0, 0, 0] for lab in (labels or [])}
    for g, p in zip(gold, pred, strict=True):
        gs, ps = set(g), set(p)
        for lab in gs | ps:
            c = counts.setdefault(lab, [0, 0, 0])
            if lab in gs and lab in ps:
                c[0] += 1
            elif lab in ps:
                c[1] += 1
            else:
                c[2] += 1
    per = {lab: _prf(*c) for lab, c in counts.items()}
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    supported = [m for m in per.values() if m["support"]]
    macro = {
        k: (sum(m[k] for m in supported) / len(supported) if supported else 0.0)
        for k in ("precision", "recall", "f1")
    }
    macro["support"] = sum(int(m["support"]) for m in supported)
    return {"per_label": per, "micro": _prf(tp, fp, fn), "macro": macro}


def evaluate_records(
    records: Sequence[Record], tagger: Tagger, *, use_model: bool = True
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tag every record; return (one output dict per record, metrics).

    metrics: ``{"articles": n, "labelled": k, "topics": {...}, "countries": {...},
    "shapes": {shape: {"articles": n, "topics": {...}}}}``, the metric dicts as
    :func:`compute_metrics` returns them, over the records with gold labels (empty dicts when
    none has any).
    """
    outputs: list[dict[str, Any]] = []
    for rec in records:
        result = tagger.tag(rec.title, rec.text, rec.published_at, use_model=use_model)
        topics = [t.id for t in result.topics]
        outputs.append({"id": rec.id, "topics": topics, "countries": list(result.countries)})
    return outputs, metrics_of(records, outputs, tagger.topics)


def metrics_of(
    records: Sequence[Record], outputs: Sequence[dict[str, Any]], labels: Iterable[str]
) -> dict[str, Any]:
    labels = list(labels)
    gold_t: list[list[str]] = []
    pred_t: list[list[str]] = []
    gold_c: list[list[str]] = []
    pred_c: list[list[str]] = []
    by_shape: dict[str, tuple[list[list[str]], list[list[str]]]] = {}
    for rec, out in zip(records, outputs, strict=True):
        if rec.topics is not None:
            gold_t.append(rec.topics)
            pred_t.append(out["topics"])
            g, p = by_shape.setdefault(
                rec.shape or shape_of({"title": rec.title, "text": rec.text}), ([], [])
            )
            g.append(rec.topics)
            p.append(out["topics"])
        if rec.countries is not None:
            gold_c.append(rec.countries)
            pred_c.append(out["countries"])
    metrics: dict[str, Any] = {"articles": len(records), "labelled": len(gold_t)}
    metrics["topics"] = compute_metrics(gold_t, pred_t, labels) if gold_t else {}
    metrics["countries"] = compute_metrics(gold_c, pred_c) if gold_c else {}
    metrics["shapes"] = {
        shape: {"articles": len(g), "topics": compute_metrics(g, p, labels)}
        for shape, (g, p) in sorted(by_shape.items(), key=lambda kv: SHAPES.get(kv[0], 9))
    }
    return metrics


SHAPES = {"headline": 0, "headline+summary": 1, "paragraph": 2, "article": 3}


def evaluate_file(
    path: Path, config_dir: Path | None = None, *, use_model: bool = True, windows: bool = False
) -> dict[str, Any]:
    """Convenience for tests: metrics of the tagger in ``config_dir`` on a JSONL file."""
    tagger = Tagger.from_config_dir(config_dir or DEFAULT_CONFIG_DIR)
    tagger.read_long_texts_by_windows(windows)
    return evaluate_records(read_records(path), tagger, use_model=use_model)[1]


def cross_validate_records(
    records: Sequence[Record],
    tagger: Tagger,
    k: int = 5,
    progress: Any = None,
    alerts_file: Path | None = None,
    extra: Sequence[dict[str, Any]] = (),
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Grouped k-fold CV on labelled records (see :mod:`worker.tagging.train`): each fold's
    items are tagged by the service's own tagger with a model trained (and thresholded) on the
    other folds. Returns the out-of-fold outputs of rules + model and metrics for "rules",
    "model", "combined", plus "alerts": per alert topic, how many items alerted and how many of
    them carry the topic in gold, for the rules alone and for rules + model. ``extra``: rows of
    training-only items (see ``train.EXTRA_NAME``), added to every fold's training set."""
    from worker.tagging import AlertRules
    from worker.tagging.train import as_model, cv_folds, prepare

    labelled = [r for r in records if r.topics is not None]
    if len(labelled) < k * 10:
        raise EvalInputError(f"--cv {k} needs at least {k * 10} labelled records")
    rows = [{**(r.raw or {}), "id": r.id, "title": r.title, "text": r.text} for r in labelled]
    topics = list(tagger.topics)
    examples = prepare(rows, tagger)
    extra_ex = prepare(list(extra), tagger)
    folds = cv_folds(examples, topics, k=k, progress=progress, extra=extra_ex)
    rules = AlertRules.from_file(alerts_file or DEFAULT_CONFIG_DIR / "alerts.yaml", tagger)
    outs: dict[str, list[dict[str, Any]]] = {
        n: [{}] * len(labelled) for n in ("rules", "model", "combined")
    }
    alerted: dict[str, Counter[str]] = {"rules": Counter(), "combined": Counter()}
    correct: dict[str, Counter[str]] = {"rules": Counter(), "combined": Counter()}
    # an encoder fine-tuned on the corpus (worker.tagging.finetune) has seen every item's
    # label: a test item's neighbours are then its fold list's, by the encoder of its fold
    from worker.tagging.encoder import item_key
    from worker.tagging.model import topic_sets
    from worker.tagging.train import fold_neighbours

    lists = fold_neighbours()
    for fold in folds:
        model = as_model(
            fold.fitted,
            topics,
            fold.thresholds,
            tagger.taxonomy_version,
            fold.decides,
            fold.headlines,
            fold.model_thresholds,
            fold.summaries,
            fold.veto,
        )
        if lists is not None and model.neighbours is not None and fold.fitted.memory_ids:
            test = [examples[i] for i in fold.test]
            labels = topic_sets(fold.fitted.labels, len(topics))  # type: ignore[arg-type]
            votes, listed = lists.votes(test, fold.fitted.memory_ids, labels)
            for j, i in enumerate(fold.test):
                if listed[j]:
                    model.neighbours.votes[item_key(rows[i]["title"], rows[i]["text"])] = votes[j]
        with_model = tagger.with_model(model)
        th_model = dict(zip(topics, fold.model_thresholds, strict=True))
        for i in fold.test:
            r = labelled[i]
            base = tagger.tag(r.title, r.text, r.published_at, use_model=False)
            both = with_model.tag(r.title, r.text, r.published_at)
            countries = list(base.countries)
            alone = [t for t in topics if both.model_scores.get(t, 0.0) >= th_model[t]]
            outs["rules"][i] = {
                "id": r.id,
                "topics": [t.id for t in base.topics],
                "countries": countries,
            }
            outs["model"][i] = {"id": r.id, "topics": alone, "countries": countries}
            outs["combined"][i] = {
                "id": r.id,
                "topics": [t.id for t in both.topics],
                "countries": countries,
            }
            for name, res in (("rules", base), ("combined", both)):
                for tag in rules.alerting(res):
                    alerted[name][tag.id] += 1
                    correct[name][tag.id] += tag.id in (r.topics or [])
    results: dict[str, dict[str, Any]] = {
        name: metrics_of(labelled, outs[name], topics) for name in outs
    }
    results["alerts"] = {
        name: {
            t: {
                "alerts": alerted[name][t],
                "correct": correct[name][t],
                "precision": round(correct[name][t] / alerted[name][t], 4)
                if alerted[name][t]
                else None,
            }
            for t in topics
            if alerted[name][t]
        }
        for name in alerted
    }
    return outs["combined"], results


def format_alerts(alerts: dict[str, dict[str, Any]]) -> str:
    lines = [
        f"{'alert topic':<24}{'rules: alerts':>14}{'precision':>10}"
        f"{'rules+model: alerts':>21}{'precision':>10}"
    ]
    names = sorted(set(alerts["rules"]) | set(alerts["combined"]))
    for t in names:
        a = alerts["rules"].get(t) or {"alerts": 0, "precision": None}
        b = alerts["combined"].get(t) or {"alerts": 0, "precision": None}
        pa = f"{a['precision']:.3f}" if a["precision"] is not None else "-"
        pb = f"{b['precision']:.3f}" if b["precision"] is not None else "-"
        lines.append(f"{t:<24}{a['alerts']:>14}{pa:>10}{b['alerts']:>21}{pb:>10}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- report


def format_table(metrics: dict[str, Any], topic_order: Iterable[str] = ()) -> str:
    lines: list[str] = []
    t = metrics.get("topics") or {}
    if t:
        lines.append(f"topics ({metrics['labelled']} labelled articles)")
        lines.append(
            f"{'topic':<24}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}{'tp':>5}{'fp':>5}{'fn':>5}"
        )
        order = list(topic_order) or sorted(t["per_label"])
        order += [k for k in sorted(t["per_label"]) if k not in order]
        for lab in order:
            m = t["per_label"].get(lab)
            if m is None:
                continue
            lines.append(
                f"{lab:<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
                f"{m['support']:>9}{m['tp']:>5}{m['fp']:>5}{m['fn']:>5}"
            )
        for name in ("micro", "macro"):
            m = t[name]
            lines.append(
                f"{name + ' avg':<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
                f"{m['support']:>9}"
            )
    c = metrics.get("countries") or {}
    if c:
        m = c["micro"]
        lines.append(
            f"{'countries micro':<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
            f"{m['support']:>9}{m['tp']:>5}{m['fp']:>5}{m['fn']:>5}"
        )
    shapes = metrics.get("shapes") or {}
    if len(shapes) > 1 or (shapes and not t):
        lines.append(
            f"{'topics micro by shape':<24}{'P':>7}{'R':>7}{'F1':>7}{'support':>9}{'items':>7}"
        )
        for shape, sm in shapes.items():
            m = sm["topics"]["micro"]
            lines.append(
                f"{'  ' + shape:<24}{m['precision']:>7.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}"
                f"{m['support']:>9}{sm['articles']:>7}"
            )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m worker eval",
        description="Tag a JSONL file of articles; print predictions, and metrics if labelled.",
    )
    p.add_argument("file", type=Path, help="JSONL: id, title, text[, date, topics, countries]")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=DEFAULT_CONFIG_DIR,
        help="directory with topics.yaml, countries.yaml and topic-model.json "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--errors",
        action="store_true",
        help="also list each article's false positives and negatives on stderr",
    )
    p.add_argument(
        "--rules-only", action="store_true", help="the rules alone, without the learned model"
    )
    p.add_argument(
        "--windows",
        action="store_true",
        help="the model also reads a text of more than 8 sentences by three-sentence windows "
        "(as WORKER_TOPIC_MODEL_WINDOWS=true)",
    )
    p.add_argument(
        "--cv",
        type=int,
        metavar="K",
        default=None,
        help="grouped K-fold cross-validation on a labelled corpus (trains K models)",
    )
    p.add_argument(
        "--train-extra",
        default="auto",
        metavar="FILE",
        help="with --cv: training-only labelled items added to every fold ('auto': "
        "silver.jsonl beside FILE if present, as `train` does; 'none': without)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="OUT",
        help="also write the metrics as JSON to OUT",
    )
    return p


def _why(tagger: Tagger, rec: Record, fp: list[str], fn: list[str]) -> list[str]:
    """For ``--errors``: why each wrongly tagged (+) or missed (-) topic came out as it did."""
    info = tagger.explain(rec.title, rec.text, rec.published_at, include=[*fp, *fn])
    rows = {r["topic"]: r for r in info["topics"]}
    out = []
    for sign, topics in (("+", fp), ("-", fn)):
        for t in topics:
            r = rows.get(t)
            if r is None:
                continue
            terms = ", ".join(dict.fromkeys(r["rules"]))
            model = (
                f"; model {r['probability']:.2f}"
                if r["probability"] is not None and "gives it" not in r["why"]
                else ""
            )
            out.append(f"{sign}{t}: {r['why']}{f' ({terms})' if terms else ''}{model}")
    return out


def main(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if args.cv is not None and args.cv < 2:
        print("error: --cv needs K >= 2", file=err)
        return 2
    try:
        tagger = Tagger.from_config_dir(args.config_dir, model=not args.rules_only)
        tagger.read_long_texts_by_windows(args.windows)
        records = read_records(args.file)
        if not records:
            raise EvalInputError(f"{args.file}: no records")
        if args.cv:
            from worker.tagging.train import read_corpus, resolve_extra

            extra_path = resolve_extra(args.train_extra, args.file)
            if extra_path is not None and not extra_path.is_file():
                raise EvalInputError(f"{extra_path}: no such file")
            extra = read_corpus(extra_path) if extra_path is not None else []
            if extra_path is not None:
                print(f"training folds also get {len(extra)} items of {extra_path}", file=err)
            outputs, results = cross_validate_records(
                records,
                tagger,
                args.cv,
                progress=lambda m: print(m, file=err, flush=True),
                extra=extra,
            )
            records = [r for r in records if r.topics is not None]
        else:
            outputs, metrics = evaluate_records(records, tagger, use_model=not args.rules_only)
    except (TaxonomyError, EvalInputError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    for o in outputs:
        out.write(orjson.dumps(o).decode() + "\n")
    out.flush()
    if args.errors:
        for rec, o in zip(records, outputs, strict=True):
            parts = []
            why: list[str] = []
            if rec.topics is not None:
                fp = sorted(set(o["topics"]) - set(rec.topics))
                fn = sorted(set(rec.topics) - set(o["topics"]))
                if fp or fn:
                    parts.append(f"topics +{fp} -{fn}")
                    if not args.cv:  # cross-validation tags with each fold's model, not this one
                        why = _why(tagger, rec, fp, fn)
            if rec.countries is not None:
                fp = sorted(set(o["countries"]) - set(rec.countries))
                fn = sorted(set(rec.countries) - set(o["countries"]))
                if fp or fn:
                    parts.append(f"countries +{fp} -{fn}")
            if parts:
                label = rec.title or rec.text
                print(f"{rec.id}: {'; '.join(parts)}  | {label[:70]}", file=err)
                for line in why:
                    print(f"    {line}", file=err)
    if args.cv:
        for name in ("rules", "model", "combined"):
            title = {
                "rules": "the rules alone",
                "model": "the model alone",
                "combined": "rules + model (what the service reports)",
            }[name]
            print(f"\n== {args.cv}-fold grouped cross-validation: {title}", file=err)
            print(format_table(results[name], tagger.topics), file=err)
        print("\n== alerts (alerts.yaml) on the same folds: how many, and how many right", file=err)
        print(format_alerts(results["alerts"]), file=err)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        return 0
    if metrics["topics"] or metrics["countries"]:
        model = tagger.model_version if not args.rules_only else "none (rules only)"
        print(f"taxonomy {tagger.taxonomy_version}, model {model}", file=err)
        print(format_table(metrics, tagger.topics), file=err)
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
