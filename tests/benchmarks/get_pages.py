"""Gather ~200 distinct real web pages for the benchmarks, outside the repository.

    .venv/bin/python tests/benchmarks/get_pages.py /tmp/benchpages

Sources (licences: the pages belong to their publishers; the archives are GPL-3.0+ source
distributions, so the pages are not copied into this repository):
trafilatura 1.0.0 and 0.5.2 ``tests/cache/`` and trafilatura 2.3.1 ``tests/resources/``,
htmldate 1.0.0 ``tests/cache/`` (pip download of their sdists from PyPI), plus the Mozilla
Readability test pages in ../shared/data/pages (Apache-2.0). Identical files are kept once.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDISTS = {
    "trafilatura==1.0.0": ("tests/cache/", "traf"),
    "trafilatura==0.5.2": ("tests/cache/", "traf05"),
    "htmldate==1.0.0": ("tests/cache/", "htmldate"),
    "trafilatura==2.3.1": ("tests/resources/", "traf2"),
}
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "pages"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/benchpages")
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()

    def keep(name: str, data: bytes, tag: str) -> None:
        digest = hashlib.sha256(data).hexdigest()
        if digest not in seen:
            seen.add(digest)
            (out / f"{tag}--{name}").write_bytes(data)

    with tempfile.TemporaryDirectory() as tmp:
        for spec, (under, tag) in SDISTS.items():
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                 "--no-binary", ":all:", spec, "-d", tmp],
                check=True,
            )  # fmt: skip
            name = spec.replace("==", "-")
            with tarfile.open(next(Path(tmp).glob(f"{name}.tar.gz"))) as tar:
                for member in sorted(tar.getmembers(), key=lambda m: m.name):
                    base = member.name.rsplit("/", 1)[-1]
                    if under not in member.name or not base.endswith((".html", ".htm", ".html.gz")):
                        continue
                    data = tar.extractfile(member).read()  # type: ignore[union-attr]
                    if base.endswith(".gz"):
                        data, base = gzip.decompress(data), base[:-3]
                    keep(base, data, tag)
    for path in sorted(SHARED.glob("*.html")):
        keep(path.name, path.read_bytes(), "mozilla")
    print(f"{len(seen)} distinct pages in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
