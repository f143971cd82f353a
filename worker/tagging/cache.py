"""A built Tagger kept on disk, so that a process starts without re-reading the YAML and the
model JSON or rebuilding the automaton (~3 s of a ``tag`` call, against ~1 s for importing
trafilatura).

The cache file is named by a digest of the input files' bytes (the taxonomy, the model, the
sentence encoder's weights and tokenizer), of the encoder's folder (a model's neighbours read
the encoder of *this* checkout: two checkouts share ``~/.cache``, and one may hold another
encoder) and of the versions that shape the pickle (the worker, Python, pyahocorasick): a
changed taxonomy, model or encoder is a new file, never a stale tagger. Anything wrong with
the cache (unwritable folder, a corrupt or foreign file) means building as before; it never
stops the worker.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
from pathlib import Path

from worker import __version__
from worker.tagging.encoder import ENCODER_DIR
from worker.tagging.tagger import Tagger

ENCODER_FILE = ENCODER_DIR / "model.safetensors"
TOKENIZER_FILE = ENCODER_DIR / "tokenizer.json"

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``WORKER_CACHE_DIR``, else ``$XDG_CACHE_HOME/diplomacy-worker`` (``~/.cache``)."""
    explicit = os.environ.get("WORKER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "diplomacy-worker"


def _key(paths: list[Path | None], encoder_dir: Path | None = None) -> str:
    import ahocorasick

    h = hashlib.sha256()
    where = str(encoder_dir.resolve()) if encoder_dir is not None else "-"
    for part in (__version__, sys.version, getattr(ahocorasick, "__version__", ""), where):
        h.update(part.encode() + b"\0")
    for p in paths:
        h.update(p.read_bytes() if p is not None else b"-")
        h.update(b"\0")
    return h.hexdigest()[:32]


def cached_tagger(
    topics_yaml: Path,
    countries_yaml: Path,
    model_json: Path | None,
    cache_dir: Path | None = None,
) -> Tagger:
    """``Tagger.from_files(...)``, from the cache when it holds this exact build."""
    folder = cache_dir or default_cache_dir()
    try:
        inputs = [topics_yaml, countries_yaml, model_json]
        encoder = None
        if model_json is not None and ENCODER_FILE.is_file():
            # the encoder a model with neighbours checks at load and reads on every short item
            inputs += [ENCODER_FILE, TOKENIZER_FILE if TOKENIZER_FILE.is_file() else None]
            encoder = ENCODER_DIR
        path = folder / f"tagger-{_key(inputs, encoder)}.pickle"
    except OSError:  # an input file is unreadable: let from_files say so
        return Tagger.from_files(topics_yaml, countries_yaml, model_json)
    try:
        with path.open("rb") as fh:
            tagger = pickle.load(fh)  # noqa: S301 - our own file, named by its inputs
        if isinstance(tagger, Tagger) and _reads_this_encoder(tagger):
            return tagger
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - a bad cache file is rebuilt, never fatal
        log.warning("tagger cache %s unreadable (%s); rebuilding it", path, exc)
    tagger = Tagger.from_files(topics_yaml, countries_yaml, model_json)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as out:
            pickle.dump(tagger, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(out.name, path)  # atomic: a concurrent reader sees all or nothing
    except Exception as exc:  # noqa: BLE001 - no cache is slower, not wrong
        log.info("tagger cache not written to %s: %s", folder, exc)
    return tagger


def _reads_this_encoder(tagger: Tagger) -> bool:
    """Whether a cached tagger's neighbours read this checkout's encoder (a file of an older
    worker, keyed without the encoder's folder, may name another checkout's)."""
    nb = tagger.model.neighbours if tagger.model is not None else None
    return nb is None or Path(nb.encoder_dir).resolve() == ENCODER_DIR.resolve()
