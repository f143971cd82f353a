"""Benchmark worker.clean.clean_html on saved pages (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_clean.py [PAGES_DIR ...] [--repeat N]

Default pages: tests/data/pages, plus /work/shared/data/pages when it exists. Prints
ms/page (median and max per page, overall mean and p95) and the peak Python memory
(tracemalloc, during one pass) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker.clean import CleanError, clean_html, warm_up  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    dirs = args.dirs or [
        d for d in (ROOT / "tests/data/pages", Path("/work/shared/data/pages")) if d.is_dir()
    ]
    pages: dict[str, str] = {}
    for d in dirs:
        for path in sorted(d.glob("*.html")):
            pages.setdefault(path.name, path.read_text(encoding="utf-8", errors="replace"))
    if not pages:
        print("no pages found", file=sys.stderr)
        return 1

    warm_up()
    timings: dict[str, list[float]] = {name: [] for name in pages}
    failures: dict[str, str] = {}
    for _ in range(args.repeat):
        for name, html in pages.items():
            t0 = time.perf_counter()
            try:
                clean_html(html)
            except CleanError as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
            timings[name].append((time.perf_counter() - t0) * 1000)

    tracemalloc.start()
    for html in pages.values():
        try:
            clean_html(html)
        except CleanError:
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"{'page':28s} {'KB':>6s} {'median ms':>10s} {'max ms':>8s}")
    for name, ts in timings.items():
        kb = len(pages[name].encode("utf-8", "replace")) / 1024
        print(f"{name:28s} {kb:6.0f} {statistics.median(ts):10.1f} {max(ts):8.1f}")
    every = sorted(t for ts in timings.values() for t in ts)
    p95 = every[min(len(every) - 1, int(0.95 * len(every)))]
    print(
        f"\n{len(pages)} pages x {args.repeat}: mean {statistics.mean(every):.1f} ms/page, "
        f"median {statistics.median(every):.1f}, p95 {p95:.1f}"
    )
    print(f"peak traced Python memory during one pass: {peak / 2**20:.1f} MiB")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS of this process: {rss:.0f} MiB")
    for name, why in failures.items():
        print(f"FAILED {name}: {why}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
