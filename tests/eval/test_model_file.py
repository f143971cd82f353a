"""The committed model is reproducible: the committed corpus, silver items and code make it,
byte for byte (training is deterministic). About a minute: an evaluation test, not a unit
test."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "configs" / "topic-model.json"


def first_difference(a: bytes, b: bytes) -> str:
    """Where two model files part, in a line (25 MB each: never a whole diff)."""
    for n, (x, y) in enumerate(zip(a.split(b"\n"), b.split(b"\n"), strict=False), 1):
        if x != y:
            pairs = zip(x, y, strict=False)
            i = next((i for i, (p, q) in enumerate(pairs) if p != q), min(len(x), len(y)))
            return f"line {n}, byte {i}: {x[i - 40 : i + 40]!r} against {y[i - 40 : i + 40]!r}"
    return f"one file is longer ({len(a)} against {len(b)} bytes)"


def test_the_model_is_what_train_makes_from_the_corpus(tmp_path: Path) -> None:
    """`python -m worker train` makes the committed model, byte for byte. It runs in a
    process of its own, as a user runs it: the BLAS kernel is chosen when numpy loads
    (`worker/__init__.py` pins one), which this test process may have done already."""
    out = tmp_path / "model.json"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    run = subprocess.run(
        [sys.executable, "-m", "worker", "train", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    made, committed = out.read_bytes(), MODEL.read_bytes()
    same = hashlib.sha256(made).digest() == hashlib.sha256(committed).digest()
    assert same, "train made another model: " + first_difference(made, committed)
