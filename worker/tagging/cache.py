"""A built Tagger kept on disk, so that a process starts without re-reading the YAML and the
model JSON or rebuilding the automaton (~3 s of a ``tag`` call, against ~1 s for importing
trafilatura).

The cache file is named by a digest of the three input files' bytes and of the versions
that shape the pickle (the worker, Python, pyahocorasick): a changed taxonomy or model is a
new file, never a stale tagger. Anything wrong with the cache (unwritable folder, a corrupt
or foreign file) means building as before; it never stops the worker.
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

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``WORKER_CACHE_DIR``, else ``$XDG_CACHE_HOME/diplomacy-worker`` (``~/.cache``)."""
    explicit = os.environ.get("WORKER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "diplomacy-worker"


def _key(paths: list[Path | None]) -> str:
    import ahocorasick

    h = hashlib.sha256()
    for part in (__version__, sys.version, getattr(ahocorasick, "__version__", "")):
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
        if model_json is not None and ENCODER_FILE.is_file():
            inputs.append(ENCODER_FILE)  # the encoder a model with neighbours checks at load
        path = folder / f"tagger-{_key(inputs)}.pickle"
    except OSError:  # an input file is unreadable: let from_files say so
        return Tagger.from_files(topics_yaml, countries_yaml, model_json)
    try:
        with path.open("rb") as fh:
            tagger = pickle.load(fh)  # noqa: S301 - our own file, named by its inputs
        if isinstance(tagger, Tagger):
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
