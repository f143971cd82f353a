"""Memory over many articles: is the process's RSS flat? (a script, not a test)

    .venv/bin/python tests/benchmarks/bench_memory.py [DIR ...] [--articles 10000]

Runs what one extraction process and the enrichment agent run for each record, in one
process: ``worker.pipeline.enrich`` (clean_html or clean_text, tagging, alert rules, the
event and its JSON) over ``--articles`` records made from the pages in DIR (default
tests/data/pages and seeds/), each page copy made distinct (a marker in its text) so that
nothing is a duplicate. The seen-store is fresh for each record (in the service it is
Redis, outside the process). Prints RSS at 10 % of the run and at the end, and their ratio
(target <= 1.15).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.bootstrap import DirectExtractor  # noqa: E402
from worker.dedup import MemorySeenStore  # noqa: E402
from worker.events import RawRecord, Source  # noqa: E402
from worker.pipeline import Enriched, Ports, enrich  # noqa: E402
from worker.tagging import AlertRules, Tagger  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def load_pages(dirs: list[Path]) -> list[tuple[str, str]]:
    out = []
    for d in dirs:
        for path in sorted(d.iterdir()):
            suffix = path.suffix.lower()
            if suffix in (".html", ".htm", ".txt") and not path.name.startswith("README"):
                kind = "text" if suffix == ".txt" else "html"
                out.append((kind, path.read_bytes().decode("utf-8", errors="replace")))
    return out


def distinct(kind: str, content: str, i: int) -> str:
    """The page with a marker sentence of its own, so that its fingerprint is new."""
    marker = f"Copy {i} of this page, made for the memory benchmark."
    if kind == "text":
        return content + "\n" + marker
    at = content.lower().rfind("</p>")
    return content if at < 0 else content[:at] + " " + marker + content[at:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--articles", "-n", type=int, default=10_000)
    args = ap.parse_args(argv)
    dirs = args.dirs or [ROOT / "tests" / "data" / "pages", ROOT / "seeds"]
    pages = load_pages([d for d in dirs if d.is_dir()])
    if not pages:
        print(f"no pages in {dirs}", file=sys.stderr)
        return 2
    tagger = Tagger.from_config_dir(ROOT / "configs")
    rules = AlertRules.from_file(ROOT / "configs" / "alerts.yaml", tagger)
    extractor = DirectExtractor()
    source = Source(kind="seed", name="bench-memory")
    loop = asyncio.new_event_loop()
    tenth = max(1, args.articles // 10)
    rss_tenth = 0.0
    enriched = 0
    started = time.perf_counter()
    print(f"{len(pages)} pages from {', '.join(map(str, dirs))}; {args.articles} articles")
    print(f"RSS at start: {rss_mib():.0f} MiB")
    for i in range(args.articles):
        kind, content = pages[i % len(pages)]
        record = RawRecord.model_validate(
            {
                "record_id": f"mem-{i}",
                "source": source,
                "path": f"page-{i}",
                "content_type": kind,
                "body": distinct(kind, content, i),
            }
        )
        ports = Ports(extractor=extractor, tagger=tagger, alert_rules=rules, seen=MemorySeenStore())
        outcome = loop.run_until_complete(enrich(record, ports))
        if isinstance(outcome, Enriched):
            enriched += 1
            outcome.event.to_json()
            for a in outcome.alerts:
                a.to_json()
        if i + 1 == tenth:
            gc.collect()
            rss_tenth = rss_mib()
            print(f"RSS at 10 % ({i + 1} articles): {rss_tenth:.0f} MiB", flush=True)
        elif (i + 1) % (2 * tenth) == 0:
            print(f"RSS after {i + 1} articles: {rss_mib():.0f} MiB", flush=True)
    loop.close()
    gc.collect()
    rss_end = rss_mib()
    print(f"RSS at the end ({args.articles} articles, {enriched} enriched): {rss_end:.0f} MiB")
    print(f"time: {time.perf_counter() - started:.0f} s")
    print(f"ratio RSS end / RSS at 10 % : {rss_end / rss_tenth:.3f}  (target <= 1.15)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
