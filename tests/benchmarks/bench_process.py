"""Whole processes: start-up of ``tag``, and ``tag`` over many pages against trafilatura
alone (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_process.py [DIR ...] [--repeat N]

In one run, interleaved (A B A B ...) so that machine noise hits both alike, wall time of:

- start-up: ``python -c "import trafilatura"`` against ``python -m worker tag SMALL`` (the
  seed article, a small text file): what ``tag`` costs beyond importing the library;
- whole process: ``python -m worker tag PAGE...`` (every page of DIR, default
  tests/data/pages) against a script that reads the same files and calls
  ``trafilatura.bare_extraction`` with the worker's options on each (imports included).

Prints medians of N runs (default 5) and the ratios (target: whole process <= 1.10).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "seeds" / "000_f06541f7bef2d985.txt"

# trafilatura alone, called as worker.clean.html.TRAFILATURA_OPTIONS says (kept literal here
# so that the baseline imports nothing of the worker)
BARE = """
import sys
from pathlib import Path
from trafilatura import bare_extraction
from trafilatura.settings import use_config
config = use_config()
config.set("DEFAULT", "EXTRACTION_TIMEOUT", "0")
for p in sys.argv[1:]:
    html = Path(p).read_bytes().decode("utf-8", errors="replace")
    bare_extraction(html, with_metadata=True, output_format="python", favor_precision=True,
                    include_comments=False, include_tables=True, include_images=False,
                    include_links=False, deduplicate=False, config=config)
"""


#: Compiled bytecode for both children, outside the repository: the deployed worker runs from
#: compiled modules (``pip install`` compiles them), so the first (warm-up) run of each command
#: writes its modules' bytecode here and the timed runs read it, as the library's already are.
PYCACHE = tempfile.mkdtemp(prefix="bench-process-pycache-")
atexit.register(shutil.rmtree, PYCACHE, ignore_errors=True)


def wall(cmd: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: some file did not clean (reported, not a crash)
        sys.exit(f"{cmd[:4]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return dt


def pairs(a: list[str], b: list[str], n: int) -> tuple[float, float]:
    wall(a), wall(b)  # warm the file cache and write the bytecode (PYCACHE)
    xs, ys = [], []
    for i in range(n):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t1, t2 = wall(first), wall(second)
        xs.append(t1 if first is a else t2)
        ys.append(t2 if first is a else t1)
    return statistics.median(xs), statistics.median(ys)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="*", type=Path)
    ap.add_argument("--repeat", "-n", type=int, default=5)
    ap.add_argument("--skip-whole", action="store_true", help="start-up only")
    args = ap.parse_args(argv)
    py = sys.executable

    imp, tag1 = pairs(
        [py, "-c", "import trafilatura"], [py, "-m", "worker", "tag", str(SMALL)], args.repeat
    )
    print(f"start-up: import trafilatura {imp:.2f} s; tag on one small file {tag1:.2f} s")
    print(f"ratio tag one small file / import trafilatura : {tag1 / imp:.2f}")
    if args.skip_whole:
        return 0

    dirs = args.dirs or [ROOT / "tests" / "data" / "pages"]
    files = sorted(
        str(p)
        for d in dirs
        for p in d.iterdir()
        if p.suffix.lower() in (".html", ".htm") and p.is_file()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(BARE)
        bare_script = fh.name
    try:
        bare, tag = pairs(
            [py, bare_script, *files], [py, "-m", "worker", "tag", *files], args.repeat
        )
    finally:
        os.unlink(bare_script)
    print(f"whole process over {len(files)} pages: bare trafilatura {bare:.1f} s; tag {tag:.1f} s")
    print(f"ratio whole-process tag / bare trafilatura : {tag / bare:.3f}  (target <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
