"""``python -m worker eval FILE.jsonl [--config-dir DIR]``: run the tagger on labelled articles.

Input: one JSON object per line with ``id``, ``title``, ``text`` and optionally ``date``
(ISO 8601 or RFC 2822; it resolves leaders' terms of office), gold ``topics`` (ids) and
``countries`` (ISO alpha-2 codes).

Output: one JSON line per input on stdout, ``{"id": ..., "topics": [...], "countries": [...]}``,
tagged by the same :class:`~worker.tagging.Tagger` the service uses (title + text). When the
input carries gold labels, a table on stderr: precision, recall, F1 and support per topic,
micro and macro averages (macro over topics with gold support), and micro P/R/F1 for
countries. Exit status 0, or 2 for a missing file / malformed line (with its line number).

:func:`evaluate_records` returns the metrics as a dict, for tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from worker.tagging import Tagger, TaxonomyError

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
    records: Sequence[Record], tagger: Tagger
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Tag every record; return (one output dict per record, metrics).

    metrics: ``{"articles": n, "labelled": k, "topics": {...}, "countries": {...}}``, the
    last two as :func:`compute_metrics` returns them, over the records with gold labels
    (empty dicts when none has any).
    """
    outputs: list[dict[str, Any]] = []
    gold_t: list[list[str]] = []
    pred_t: list[list[str]] = []
    gold_c: list[list[str]] = []
    pred_c: list[list[str]] = []
    for rec in records:
        result = tagger.tag(rec.title, rec.text, rec.published_at)
        topics = [t.id for t in result.topics]
        outputs.append({"id": rec.id, "topics": topics, "countries": list(result.countries)})
        if rec.topics is not None:
            gold_t.append(rec.topics)
            pred_t.append(topics)
        if rec.countries is not None:
            gold_c.append(rec.countries)
            pred_c.append(list(result.countries))
    metrics: dict[str, Any] = {"articles": len(records), "labelled": len(gold_t)}
    metrics["topics"] = compute_metrics(gold_t, pred_t, tagger.topics) if gold_t else {}
    metrics["countries"] = compute_metrics(gold_c, pred_c) if gold_c else {}
    return outputs, metrics


def evaluate_file(path: Path, config_dir: Path | None = None) -> dict[str, Any]:
    """Convenience for tests: metrics of the tagger in ``config_dir`` on a JSONL file."""
    tagger = Tagger.from_config_dir(config_dir or DEFAULT_CONFIG_DIR)
    return evaluate_records(read_records(path), tagger)[1]


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
        help="directory with topics.yaml and countries.yaml (default: %(default)s)",
    )
    p.add_argument(
        "--errors",
        action="store_true",
        help="also list each article's false positives and negatives on stderr",
    )
    return p


def main(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    try:
        tagger = Tagger.from_config_dir(args.config_dir)
        records = read_records(args.file)
    except (TaxonomyError, EvalInputError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    outputs, metrics = evaluate_records(records, tagger)
    for o in outputs:
        out.write(orjson.dumps(o).decode() + "\n")
    out.flush()
    if args.errors:
        for rec, o in zip(records, outputs, strict=True):
            parts = []
            if rec.topics is not None:
                fp = sorted(set(o["topics"]) - set(rec.topics))
                fn = sorted(set(rec.topics) - set(o["topics"]))
                if fp or fn:
                    parts.append(f"topics +{fp} -{fn}")
            if rec.countries is not None:
                fp = sorted(set(o["countries"]) - set(rec.countries))
                fn = sorted(set(rec.countries) - set(o["countries"]))
                if fp or fn:
                    parts.append(f"countries +{fp} -{fn}")
            if parts:
                print(f"{rec.id}: {'; '.join(parts)}  | {(rec.title or '')[:70]}", file=err)
    if metrics["topics"] or metrics["countries"]:
        print(format_table(metrics, tagger.topics), file=err)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
