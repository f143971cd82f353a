"""A built Tagger kept on disk, so that a process starts without re-reading the YAML and the
model JSON or rebuilding the automaton (~3 s of a ``tag`` call, against ~1 s for importing
trafilatura).

The cache file is named by a digest of the input files' paths, sizes and modification times
(the taxonomy, the model, the sentence encoder's weights and tokenizer: as Python's bytecode
cache checks its sources, without reading their 49 MB), of the encoder's folder (a model's
neighbours read the encoder of *this* checkout: two checkouts share ``~/.cache``, and one may
hold another encoder) and of the versions that shape the pickle (the worker, Python,
pyahocorasick, numpy): a changed taxonomy, model or encoder is a new file, never a stale
tagger. Anything wrong with
the cache (unwritable folder, a corrupt or foreign file) means building as before; it never
stops the worker.

The learned model (18 MB, ~40 ms to read) has a file of its own beside the tagger's, read
when an item the model reads first comes (:class:`StoredModel`): a process that tags pages
only (longer than any item the model learnt from) never loads it. Files not used for
:data:`KEEP_DAYS` are removed when a new one is written (every build is ~20 MB).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from worker import __version__
from worker.tagging.encoder import ENCODER_DIR
from worker.tagging.model import ModelError, TopicModel
from worker.tagging.tagger import Tagger

ENCODER_FILE = ENCODER_DIR / "model.safetensors"
TOKENIZER_FILE = ENCODER_DIR / "tokenizer.json"

#: A cache file not used for this many days is removed when another is written.
KEEP_DAYS = 14

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredModel:
    """Where a cached tagger's model is: its own pickle, else the JSON it was built from."""

    path: Path
    source: Path
    version: str
    encoder_dir: str | None  # the folder of the encoder its neighbours read

    def load(self) -> TopicModel:
        try:
            with self.path.open("rb") as fh:
                model = pickle.load(fh)  # noqa: S301 - our own file, named by its inputs
            if isinstance(model, TopicModel) and model.version == self.version:
                return model
            log.warning("tagger cache %s holds another model; reading %s", self.path, self.source)
        except Exception as exc:  # noqa: BLE001 - the JSON is the truth; the cache only a copy
            log.warning("tagger cache %s unreadable (%s); reading %s", self.path, exc, self.source)
        model = TopicModel.from_file(self.source)
        if model.version != self.version:  # events would name one model and carry another's tags
            raise ModelError(
                f"{self.source} changed since the worker started (model {self.version} then, "
                f"{model.version} now): restart the worker"
            )
        return model


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
    versions = (__version__, sys.version, getattr(ahocorasick, "__version__", ""), np.__version__)
    for part in (*versions, where):
        h.update(part.encode() + b"\0")
    for p in paths:
        # each input by its path, size and modification time, as Python's own bytecode cache
        # checks a source: a changed file is a new key, and a start reads ~49 MB less (the
        # model's JSON and the encoder's weights: ~50 ms of hashing, a tenth of start-up)
        if p is None:
            h.update(b"-\0")
            continue
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
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
            _touch(path)
            return tagger
    except FileNotFoundError:
        pass
    except Exception as exc:  # noqa: BLE001 - a bad cache file is rebuilt, never fatal
        log.warning("tagger cache %s unreadable (%s); rebuilding it", path, exc)
    tagger = Tagger.from_files(topics_yaml, countries_yaml, model_json)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stored = tagger
        model = tagger.model
        if model is not None and model_json is not None:
            # the model first: a reader that finds the tagger's file finds the model's
            model_path = path.with_suffix(".model.pickle")
            _write(folder, model_path, model)
            stored = tagger.with_model(None)
            nb = model.neighbours
            stored._model = StoredModel(
                model_path, Path(model_json), model.version, str(nb.encoder_dir) if nb else None
            )
            stored.model_version = model.version
        _write(folder, path, stored)
        _prune(folder, keep=(path, path.with_suffix(".model.pickle")))
    except Exception as exc:  # noqa: BLE001 - no cache is slower, not wrong
        log.info("tagger cache not written to %s: %s", folder, exc)
    return tagger


def _write(folder: Path, path: Path, obj: object) -> None:
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as out:
        pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(out.name, path)  # atomic: a concurrent reader sees all or nothing


def _touch(path: Path) -> None:
    """Mark a cache file used (its model's file too), so that pruning keeps it."""
    for p in (path, path.with_suffix(".model.pickle")):
        try:
            os.utime(p)
        except OSError:
            pass


def _prune(folder: Path, keep: tuple[Path, ...]) -> None:
    """Remove tagger files not used for :data:`KEEP_DAYS` (of older builds, other checkouts)."""
    cutoff = time.time() - KEEP_DAYS * 86400
    for p in folder.glob("tagger-*.pickle"):
        try:
            if p not in keep and p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:
            pass


def _reads_this_encoder(tagger: Tagger) -> bool:
    """Whether a cached tagger's neighbours read this checkout's encoder (a file of an older
    worker, keyed without the encoder's folder, may name another checkout's)."""
    m = tagger._model
    if isinstance(m, StoredModel):
        where = m.encoder_dir
    else:
        where = str(m.neighbours.encoder_dir) if m is not None and m.neighbours else None
    return where is None or Path(where).resolve() == ENCODER_DIR.resolve()
