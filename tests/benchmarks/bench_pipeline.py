"""Where the time of one article goes: trafilatura vs. clean vs. the whole pure pipeline.

    .venv/bin/python tests/benchmarks/bench_pipeline.py [--repeat N] [DIR ...]

A script, not a test. Pages: tests/data/pages/*.html and seeds/ (*.html, *.txt), files with
identical bytes counted once. In ONE run, interleaved page by page so that machine noise
hits every stage alike, it times for each page:

- ``bare``: ``trafilatura.bare_extraction(html, **TRAFILATURA_OPTIONS)``, the library alone
  doing the worker's extraction (same options: precision, no comments, no images, ...);
- ``lib``: ``trafilatura.bare_extraction(html, with_metadata=True)``, the library's defaults
  (which also run its fallback extractors): printed for reference, not the baseline;
- ``clean``: ``worker.clean.clean_html`` (``clean_text`` for a ``.txt``): parse, page facts,
  trafilatura with the project's options, dates, authors, language;
- ``tag``: the real Tagger + AlertRules (configs/) on the cleaned title and text;
- ``pipeline``: ``worker.pipeline.enrich`` on a raw seed record, with DirectExtractor
  (cleans in the calling thread, as ``tag`` does), the real Tagger/AlertRules and a fresh
  MemorySeenStore (so nothing is a duplicate), plus the JSON serialisation of the event
  and its alerts (what the service publishes).

The stages of one page run in a different order on each repeat (rotated), so that caches
warmed by one stage do not favour the next. Each figure is the median of N repeats
(default 3). Ratios are computed over the HTML pages
(a ``.txt`` has no trafilatura baseline) from the sums of per-page medians, in this run:
speed claims are ratios, never absolute times (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import statistics
import sys
import time
from pathlib import Path

import trafilatura

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.bootstrap import DirectExtractor  # noqa: E402
from worker.clean import CleanError, clean_html, clean_text, warm_up  # noqa: E402
from worker.clean.html import TRAFILATURA_OPTIONS  # noqa: E402
from worker.dedup import MemorySeenStore  # noqa: E402
from worker.events import RawRecord, Source  # noqa: E402
from worker.pipeline import Enriched, Ports, enrich  # noqa: E402
from worker.tagging import AlertRules, Tagger  # noqa: E402

STAGES = ("bare", "lib", "clean", "tag", "pipeline")


def collect(dirs: list[Path]) -> dict[str, tuple[str, str]]:
    """name -> (kind, content); identical files (seeds/ copies of test pages) once."""
    out: dict[str, tuple[str, str]] = {}
    digests: set[str] = set()
    for d in dirs:
        for path in sorted(d.iterdir()):
            suffix = path.suffix.lower()
            if suffix not in (".html", ".htm", ".txt") or path.name.startswith("README"):
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in digests:
                continue
            digests.add(digest)
            kind = "text" if suffix == ".txt" else "html"
            out[f"{d.name}/{path.stem}"] = (kind, data.decode("utf-8", errors="replace"))
    return out


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--repeat", "-n", type=int, default=3, help="repeats per measurement (median)")
    ap.add_argument(
        "--library-defaults",
        action="store_true",
        help="also time bare_extraction with the library's defaults (for reference)",
    )
    args = ap.parse_args(argv)
    dirs = args.dirs or [ROOT / "tests" / "data" / "pages", ROOT / "seeds"]
    pages = collect([d for d in dirs if d.is_dir()])
    if not pages:
        print(f"no pages in {dirs}", file=sys.stderr)
        return 2

    tagger = Tagger.from_config_dir(ROOT / "configs")
    rules = AlertRules.from_file(ROOT / "configs" / "alerts.yaml", tagger)
    extractor = DirectExtractor()
    source = Source(kind="seed", name="bench")
    records = {
        name: RawRecord.model_validate(
            {
                "record_id": f"bench-{i}",
                "source": source,
                "path": name,
                "content_type": kind,
                "body": content,
            }
        )
        for i, (name, (kind, content)) in enumerate(pages.items())
    }

    # warm every stage once (imports, lazy tables, the automaton), outside the timings
    warm_up()
    tagger.tag("warm up", "Russia and the United States held arms control talks in Vienna.")
    trafilatura.bare_extraction(
        next(c for k, c in pages.values() if k == "html"), with_metadata=True
    )

    loop = asyncio.new_event_loop()
    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in STAGES} for n in pages}
    notes: dict[str, str] = {}

    def run_bare(t: dict[str, list[float]], content: str) -> None:
        dt, _doc = timed(trafilatura.bare_extraction, content, **TRAFILATURA_OPTIONS)
        t["bare"].append(dt)

    def run_lib(t: dict[str, list[float]], content: str) -> None:
        dt, _doc = timed(trafilatura.bare_extraction, content, with_metadata=True)
        t["lib"].append(dt)

    def run_clean_and_tag(t: dict[str, list[float]], name: str, kind: str, content: str) -> None:
        try:
            dt, doc = timed(clean_html if kind == "html" else clean_text, content)
            t["clean"].append(dt)
        except CleanError as exc:
            notes[name] = f"clean: {type(exc).__name__}: {exc}"
            return
        t0 = time.perf_counter()
        result = tagger.tag(doc.title, doc.text, doc.published_at)
        rules.alerting(result)
        t["tag"].append(time.perf_counter() - t0)

    def run_pipeline(t: dict[str, list[float]], name: str) -> None:
        ports = Ports(extractor=extractor, tagger=tagger, alert_rules=rules, seen=MemorySeenStore())
        t0 = time.perf_counter()
        outcome = loop.run_until_complete(enrich(records[name], ports))
        if isinstance(outcome, Enriched):
            outcome.event.to_json()
            for a in outcome.alerts:
                a.to_json()
        else:
            notes[name] = f"pipeline: {outcome!r}"[:120]
        t["pipeline"].append(time.perf_counter() - t0)

    for rep in range(args.repeat):
        for i, (name, (kind, content)) in enumerate(pages.items()):
            t = times[name]
            steps = [
                lambda: run_clean_and_tag(t, name, kind, content),  # noqa: B023
                lambda: run_pipeline(t, name),  # noqa: B023
            ]
            if kind == "html":
                steps.append(lambda: run_bare(t, content))  # noqa: B023
                if args.library_defaults:
                    steps.append(lambda: run_lib(t, content))  # noqa: B023
            k = (rep + i) % len(steps)
            for step in steps[k:] + steps[:k]:
                step()
    loop.close()

    def med(name: str, stage: str) -> float | None:
        xs = times[name][stage]
        return statistics.median(xs) if xs else None

    def ms(x: float | None, w: int = 9, p: int = 1) -> str:
        return f"{'-':>{w}}" if x is None else f"{x * 1e3:>{w}.{p}f}"

    print(
        f"{len(pages)} distinct pages from {', '.join(str(d) for d in dirs)}; "
        f"median of {args.repeat} per figure (ms)"
    )
    print(f"{'page':<30}{'KB':>6}{'bare':>9}{'clean':>9}{'tag':>9}{'pipeline':>9}{'pipe/bare':>10}")
    sums = dict.fromkeys(STAGES, 0.0)
    n_html = 0
    for name, (kind, content) in pages.items():
        m = {s: med(name, s) for s in STAGES}
        bare, pipe = m["bare"], m["pipeline"]
        ratio = f"{pipe / bare:>10.2f}" if bare and pipe else f"{'-':>10}"
        kb = len(content.encode("utf-8", "replace")) / 1024
        print(
            f"{name:<30}{kb:>6.0f}{ms(m['bare'])}{ms(m['clean'])}{ms(m['tag'], p=2)}"
            f"{ms(m['pipeline'])}{ratio}"
        )
        if kind == "html" and all(m[s] is not None for s in STAGES if s != "lib"):
            n_html += 1
            for s in STAGES:
                sums[s] += m[s] or 0.0
    print("-" * 82)
    print(
        f"{'total, ' + str(n_html) + ' HTML pages':<36}{ms(sums['bare'])}{ms(sums['clean'])}"
        f"{ms(sums['tag'], p=2)}{ms(sums['pipeline'])}"
    )
    if not sums["bare"]:
        print("no HTML page went through every stage: no ratios", file=sys.stderr)
        return 1
    print()
    print(
        f"ratio pipeline / bare trafilatura : {sums['pipeline'] / sums['bare']:.3f}  "
        "(target <= 1.08)"
    )
    print(
        f"ratio clean    / bare trafilatura : {sums['clean'] / sums['bare']:.3f}  (target <= 1.05)"
    )
    if sums["lib"]:
        print(
            f"ratio clean    / trafilatura with its defaults: {sums['clean'] / sums['lib']:.3f}"
            "  (reference: the defaults also run the fallback extractors)"
        )
    # the same ratios pass by pass: how far this machine's noise moves them within one run.
    # The first pass is not comparable: trafilatura and htmldate memoise per string, so on it
    # whichever stage reads a page first pays that page's cold caches (the order rotates).
    complete = [
        n
        for n, (kind, _) in pages.items()
        if kind == "html" and all(len(times[n][s]) == args.repeat for s in STAGES if s != "lib")
    ]
    if args.repeat > 1 and complete:
        passes = [
            {s: sum(times[n][s][r] for n in complete) for s in ("bare", "clean", "pipeline")}
            for r in range(args.repeat)
        ]
        for stage in ("clean", "pipeline"):
            each = " ".join(f"{p[stage] / p['bare']:.3f}" for p in passes)
            print(f"  {stage + ' / bare, pass by pass':<32}: {each}  (the first one cold)")
    print(f"ratio tagging  / bare trafilatura : {sums['tag'] / sums['bare']:.4f}  (budget <= 0.03)")
    print(f"ratio tagging  / clean            : {sums['tag'] / sums['clean']:.4f}")
    print(
        f"ratio pipeline / clean            : {sums['pipeline'] / sums['clean']:.3f}  "
        f"(what enrich adds on top of cleaning: ids, tagging, event, JSON)"
    )
    print(
        f"pipeline throughput, one core     : {n_html / sums['pipeline']:.1f} HTML pages/s "
        f"(this run, this machine)"
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS of this process          : {rss:.0f} MiB")
    for name, why in notes.items():
        print(f"NOTE {name}: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
