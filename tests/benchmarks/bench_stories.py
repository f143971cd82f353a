"""Story clustering cost against trafilatura extraction, on real pages. A script, not a test.

    .venv/bin/python tests/benchmarks/bench_stories.py [--repeat N] [--window N] [--redis URL]

Pages: tests/data/pages/*.html (else /work/shared/data/pages). In one run, for each page:
trafilatura ``bare_extraction`` time (best of N), then the clustering work the worker does
for that article (best of N): both MinHash sketches, the LSH bucket keys, the candidate
decision against an index already holding ``--window`` real articles (the dev set and the
held-out feed items, so candidates are found and compared), and the alert decision. The
index is :class:`MemoryStoryBackend`, so this is the CPU the worker spends; ``--redis``
also times the same articles against a real Redis (the Lua scripts and round trips: time
the worker waits, not CPU it burns) and prints it apart. Budget: clustering / extraction
<= 0.02. Exit status 1 if exceeded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import trafilatura

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from worker import stories as S  # noqa: E402

BUDGET = 0.02


def pages_dir() -> Path:
    local = ROOT / "tests" / "data" / "pages"
    if local.is_dir() and any(local.glob("*.html")):
        return local
    return Path("/work/shared/data/pages")


def background() -> list[dict[str, Any]]:
    rows = []
    for name in ("diplomacy-dev.jsonl", "heldout/feeds-heldout.jsonl"):
        path = ROOT / "tests" / "data" / name
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return rows


async def fill(index: S.StoryIndex, rows: list[dict[str, Any]], now: float) -> None:
    n = len(rows)
    for i, r in enumerate(rows):
        await index.assign(
            f"bg-{i}", r["title"], r["text"], r["countries"], r["topics"], now=now - 60 * (n - i)
        )


async def cluster_once(index: S.StoryIndex, aid: str, title: Any, text: str, now: float) -> None:
    a = await index.assign(aid, title, text, ["US", "RU"], ["arms-control"], now=now)
    await index.gate_alert(
        a.story_id,
        "arms-control",
        by=f"{aid}:1",
        countries=["US", "RU"],
        topics=["arms-control"],
        score=0.9,
        now=now,
    )


async def timed_cluster(
    index: S.StoryIndex, title: Any, text: str, now: float, repeat: int
) -> float:
    best = float("inf")
    for _ in range(repeat):
        aid = uuid.uuid4().hex  # a new article each time: nothing is answered from before
        t0 = time.perf_counter()
        await cluster_once(index, aid, title, text, now)
        best = min(best, time.perf_counter() - t0)
    return best


async def run(args: argparse.Namespace) -> int:
    files = sorted((args.pages or pages_dir()).glob("*.html"))
    if not files:
        print("no pages", file=sys.stderr)
        return 2
    now = time.time()
    rows = background()[: args.window]
    index = S.StoryIndex(S.MemoryStoryBackend(lambda: now), window_s=72 * 3600)
    await fill(index, rows, now)
    redis_index = None
    client = None
    if args.redis:
        import redis.asyncio as aioredis

        from worker.storystore import RedisStoryBackend

        client = aioredis.Redis.from_url(args.redis)
        ns = f"bench{uuid.uuid4().hex[:8]}."
        redis_index = S.StoryIndex(RedisStoryBackend(client, ns), window_s=600)
        await fill(redis_index, rows, now)

    await timed_cluster(index, "warm up", "Russia and the United States held talks.", now, 1)
    total_ex = total_cl = total_redis = 0.0
    print(f"pages: {len(files)}, index holding {len(rows)} articles, best of {args.repeat}")
    print(f"{'page':<22}{'extract ms':>11}{'cluster ms':>11}{'ratio':>8}{'redis ms':>10}")
    for f in files:
        html = f.read_text(encoding="utf-8", errors="replace")
        best_ex = float("inf")
        doc = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            doc = trafilatura.bare_extraction(html, with_metadata=True)
            best_ex = min(best_ex, time.perf_counter() - t0)
        title = getattr(doc, "title", None) if doc is not None else None
        text = (getattr(doc, "text", None) if doc is not None else None) or ""
        best_cl = await timed_cluster(index, title, text, now, args.repeat)
        best_redis = (
            await timed_cluster(redis_index, title, text, now, args.repeat) if redis_index else 0.0
        )
        total_ex += best_ex
        total_cl += best_cl
        total_redis += best_redis
        print(
            f"{f.stem:<22}{best_ex * 1000:>11.2f}{best_cl * 1000:>11.3f}"
            f"{best_cl / best_ex:>8.4f}{best_redis * 1000:>10.3f}"
        )
    ratio = total_cl / total_ex
    print(
        f"total: extraction {total_ex * 1000:.1f} ms, clustering {total_cl * 1000:.2f} ms, "
        f"ratio {ratio:.4f} (budget {BUDGET})"
    )
    if redis_index is not None:
        print(
            f"with a real Redis ({args.redis}): {total_redis * 1000:.2f} ms in all, "
            f"{total_redis / len(files) * 1000:.2f} ms per article (mostly waiting on the "
            "round trips: two per article, plus one per per-story alert)"
        )
        if client is not None:
            await client.aclose()
    return 0 if ratio <= BUDGET else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--window", type=int, default=10_000, help="articles already indexed")
    ap.add_argument("--pages", type=Path, default=None)
    ap.add_argument("--redis", default=None, help="also time against this Redis URL")
    return asyncio.run(run(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
