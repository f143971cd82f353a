"""``python -m worker train``: learn the topic model from the labelled corpus.

One logistic regression per topic (scikit-learn, liblinear: deterministic) over the features
of :mod:`worker.tagging.model`, on every corpus item as one window. The decision threshold of
each topic is chosen on out-of-fold predictions (folds keep a story's items together) to give
the best F1 of what the service reports: the rules' topics plus the model's. The result is a
JSON file of vocabulary, weights, biases and thresholds; the same corpus and settings give the
same file, byte for byte.

``cross_validate`` measures the whole tagger (rules, model, both) on items it was not trained
on, fold by fold; ``python -m worker eval --cv K`` prints it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from worker.tagging.encoder import EMBEDDING_SCALE, Embeddings, embed_items, fine_tuned
from worker.tagging.model import (
    FORMAT,
    FORMAT_VERSION,
    TopicModel,
    calibrated,
    corpus_digest,
    feature_names,
    neighbour_vote,
    topic_sets,
    window_of,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = ROOT / "tests" / "data" / "corpus" / "corpus.jsonl"
DEFAULT_EMBEDDINGS = DEFAULT_CORPUS.with_name("embeddings.safetensors")
"""The labelled items' sentence embeddings (:class:`worker.tagging.encoder.Embeddings`, by the
hash of the item's text): ``train`` encodes only the items it lacks and writes them back, so
that a retrain takes minutes, not the ~20 minutes that encoding 28,000 items takes here."""
EXTRA_NAME = "silver.jsonl"
"""Beside the corpus: training-only items labelled by one annotator each. They join every
training fold (less those of the test fold's stories) and are never scored."""
EXTRA_WEIGHT = 1.0
DEFAULT_OUT = ROOT / "configs" / "topic-model.json"
MODEL_SERIES = "1.8"
"""Bumped by hand when the features or the training method change; the model's version is
this plus a digest of its weights."""

DEFAULT_C = 32.0
MIN_DF = 2
NB_MIX = 0.5
"""Each topic's features are scaled, before fitting, by ``(1 - NB_MIX) + NB_MIX * |r|`` where
``r`` is the feature's log-count ratio between the topic's positives and negatives (NBSVM,
Wang and Manning 2012, interpolated): words that tell the classes apart start with a larger
share of the regularisation budget. The scale folds into the stored weights, so inference is
unchanged. Measured on grouped out-of-fold predictions: +0.004 micro-F1, headlines +0.01."""
THRESHOLD_GRID = tuple(round(0.20 + 0.025 * i, 3) for i in range(29))  # 0.20 .. 0.90
NEIGHBOURS_K = 25
NEIGHBOURS_SHARPNESS = 15.0
NEIGHBOURS_MIX = 0.5
"""The neighbours' vote (:class:`worker.tagging.model.Neighbours`): the 25 training items
nearest an item by the cosine of their sentence embeddings, each weighted
``exp(15 x similarity)``; the probability is 0.5 x the weights' logistic + 0.5 x the vote.
The embeddings are all-MiniLM-L6-v2's, fine-tuned on the labelled items since model 1.8
(``python -m worker.tagging.finetune``; cross-validation reads each fold's own encoder's
lists, :class:`FoldNeighbours`). Screened on fold 0 (session 12): on the fine-tuned encoder
mixes 0.3-0.7, k 15-40 and sharpness 10-25 all gave 0.853-0.861 micro-F1 (mix 0.5: 0.860;
0.3: 0.849); on the pretrained one (model 1.7, session 10) sharpness 10-30 and mix 0.3-0.45
gave 0.820-0.823 against 0.814 with the mean GloVe vectors of model 1.6."""


@dataclass(slots=True)
class Example:
    id: str
    group: str
    shape: str
    topics: frozenset[str]
    rule_topics: frozenset[str]
    features: set[str]
    n_features: int
    vector: np.ndarray | None = None  # the item's embedding as stored: int8, x scale x 127


def shape_of(rec: dict[str, Any]) -> str:
    """The record's shape: its ``shape`` field, else inferred from what it has."""
    if rec.get("shape"):
        return str(rec["shape"])
    title = (rec.get("title") or "").strip()
    text = (rec.get("text") or "").strip()
    if not text:
        return "headline"
    if len(text) > 800:
        return "article"
    return "headline+summary" if title else "paragraph"


class EmbeddingCache:
    """The labelled items' embeddings (:data:`DEFAULT_EMBEDDINGS`), extended in memory with
    those of items it lacks (encoded on first need); :meth:`save` writes them back."""

    def __init__(self, path: Path = DEFAULT_EMBEDDINGS) -> None:
        self.path = path
        self.store = (
            Embeddings.from_file(path) if path.is_file() else Embeddings.empty(encoder_digest())
        )
        self.dirty = False

    def rows(self, items: Sequence[tuple[str | None, str | None]]) -> list[int]:
        rows, store = embed_items(items, self.store)
        if store is not self.store:
            self.store, self.dirty = store, True
        return rows

    def save(self) -> bool:
        """Write the file if items were added; whether it did."""
        if not self.dirty:
            return False
        self.store.digest = self.store.save(self.path)
        self.dirty = False
        return True


def encoder_digest() -> str:
    from worker.tagging.encoder import ENCODER_DIR, file_digest

    return file_digest(ENCODER_DIR / "model.safetensors")


class FoldNeighbours:
    """Cross-validation's neighbours when the encoder is fine-tuned on the labelled items
    (:mod:`worker.tagging.finetune`): for each corpus item, its nearest items (most similar
    first) by the encoder fine-tuned without the item's fold, which has never seen its label.
    An item's vote reads the first :data:`NEIGHBOURS_K` of them that are in the memory of the
    model being scored (an inner fold leaves some out), weighted as
    :func:`~worker.tagging.model.neighbour_vote` weights them.

    The file (:data:`DEFAULT_FOLD_NEIGHBOURS`): safetensors with ``ids`` (uint8, items x 32:
    every item's id, ASCII, zero-padded), ``items`` (int32: the rows of ``ids`` that have a
    list), ``lists`` (int32, listed x keep: rows of ``ids``), ``sims`` (float16, the same
    shape) and the metadata ``neighbours``: JSON of the encoder it goes with
    (``encoder_sha256``: the one fine-tuned on everything), the corpus it was made from
    (``corpus_sha256``) and how."""

    def __init__(
        self,
        ids: list[str],
        items: np.ndarray,
        lists: np.ndarray,
        sims: np.ndarray,
        meta: dict[str, Any],
    ) -> None:
        if lists.shape != sims.shape or lists.shape[0] != len(items):
            raise ValueError(f"neighbour lists of shapes {lists.shape}, {sims.shape}")
        self.ids = ids
        self.row = {x: i for i, x in enumerate(ids)}
        self.listed = {ids[r]: j for j, r in enumerate(items.tolist())}
        self.lists = lists
        self.sims = sims
        self.meta = meta

    WIDTH = 32

    @classmethod
    def from_file(cls, path: Path) -> FoldNeighbours:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads((f.metadata() or {})["neighbours"])
            raw = f.get_tensor("ids")
            ids = [bytes(r).rstrip(b"\0").decode("ascii") for r in raw]
            return cls(
                ids, f.get_tensor("items"), f.get_tensor("lists"), f.get_tensor("sims"), meta
            )

    def save(self, path: Path) -> str:
        from safetensors.numpy import save

        raw = np.zeros((len(self.ids), self.WIDTH), np.uint8)
        for i, x in enumerate(self.ids):
            b = x.encode("ascii")
            if len(b) > self.WIDTH:
                raise ValueError(f"item id longer than {self.WIDTH} characters: {x}")
            raw[i, : len(b)] = np.frombuffer(b, np.uint8)
        items = np.array([self.row[x] for x in self.listed], np.int32)
        data = save(
            {"ids": raw, "items": items, "lists": self.lists, "sims": self.sims},
            metadata={"neighbours": json.dumps(self.meta, sort_keys=True)},
        )
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest()

    def votes(
        self, examples: Sequence[Example], memory_ids: Sequence[str], labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per example, the vote of its first :data:`NEIGHBOURS_K` listed neighbours that are
        in the memory (``memory_ids``, their topics ``labels``: items x topics 0/1), and
        whether it has one (a list, and a neighbour of it in the memory)."""
        pos = np.full(len(self.ids) + 1, -1, np.int64)  # last: ids the memory lacks
        mem_rows = np.array([self.row.get(x, len(self.ids)) for x in memory_ids], np.int64)
        pos[mem_rows] = np.arange(len(memory_ids))
        pos[len(self.ids)] = -1
        q = np.array([self.listed.get(ex.id, -1) for ex in examples], np.int64)
        has = q >= 0
        out = np.zeros((len(examples), labels.shape[1]))
        if not has.any():
            return out, has
        idx = np.flatnonzero(has)
        p = pos[self.lists[q[idx]]]
        ok = p >= 0
        sel = ok & (np.cumsum(ok, axis=1) <= NEIGHBOURS_K)
        s = self.sims[q[idx]].astype(np.float64)
        top = np.where(sel, s, -np.inf).max(axis=1, keepdims=True)
        w = np.where(
            sel,
            np.exp(NEIGHBOURS_SHARPNESS * (s - np.where(sel.any(1, keepdims=True), top, 0.0))),
            0.0,
        )
        total = w.sum(axis=1)
        v = np.einsum("nk,nkt->nt", w, labels[np.maximum(p, 0)])
        out[idx] = v / np.where(total > 0, total, 1.0)[:, None]
        has[idx[total <= 0]] = False
        return out, has


DEFAULT_FOLD_NEIGHBOURS = DEFAULT_CORPUS.with_name("neighbours-folds.safetensors")
_FOLD_NEIGHBOURS: dict[Path, FoldNeighbours | None] = {}


def fold_neighbours(path: Path | None = None) -> FoldNeighbours | None:
    """The fine-tuned encoder's fold lists (read once), when they go with the encoder the
    model reads (``configs/sentence-encoder/``); None otherwise (the pretrained encoder: it
    never saw a label, so cross-validation reads the items' embeddings)."""
    path = path or DEFAULT_FOLD_NEIGHBOURS
    if path not in _FOLD_NEIGHBOURS:
        found = FoldNeighbours.from_file(path) if path.is_file() else None
        if found is not None and found.meta.get("encoder_sha256") != encoder_digest():
            found = None
        digests = labelled_digests()
        if found is not None and any(found.meta.get(k) != v for k, v in digests.items()):
            print(
                f"warning: {path.name} was made from another version of the corpus: items it "
                "lacks are scored by the fine-tuned encoder, which may have seen them (figures "
                "optimistic); run `python -m worker.tagging.finetune` again",
                file=sys.stderr,
            )
        _FOLD_NEIGHBOURS[path] = found
    return _FOLD_NEIGHBOURS[path]


def labelled_digests(corpus: Path = DEFAULT_CORPUS) -> dict[str, str | None]:
    """:func:`~worker.tagging.model.corpus_digest` of the corpus and of its training-only
    items, as the model file and the fold lists record them."""
    extra = default_extra(corpus)
    return {
        "corpus_sha256": corpus_digest(read_corpus(corpus)),
        "extra_sha256": corpus_digest(read_corpus(extra)) if extra is not None else None,
    }


_CACHE: dict[Path, EmbeddingCache] = {}


def embedding_cache(path: Path = DEFAULT_EMBEDDINGS) -> EmbeddingCache:
    """The process's cache of the embeddings at ``path`` (read once)."""
    if path not in _CACHE:
        _CACHE[path] = EmbeddingCache(path)
    return _CACHE[path]


def prepare(
    records: Sequence[dict[str, Any]], tagger: Any, cache: EmbeddingCache | None = None
) -> list[Example]:
    """Features (one window per item), its sentence embedding and the rules' topics of every
    labelled record."""
    from worker.evaluate import parse_date

    cache = cache or embedding_cache()
    rows = cache.rows([(r.get("title"), r.get("text")) for r in records])
    out = []
    for r, row in zip(records, rows, strict=True):
        title, text = r.get("title"), r.get("text") or ""
        res = tagger.tag(title, text, parse_date(r.get("date")), use_model=False)
        window, _, inside = window_of(title, text, res.mentions)
        feats = set(feature_names(window.tokens, inside))
        out.append(
            Example(
                id=r["id"],
                group=r.get("group") or r["id"],
                shape=shape_of(r),
                topics=frozenset(r.get("topics") or ()),
                rule_topics=frozenset(t.id for t in res.topics),
                features=feats,
                n_features=len(feats),
                vector=cache.store.q[row],
            )
        )
    return out


# ------------------------------------------------------------------------------ fitting


@dataclass(slots=True)
class Fitted:
    vocabulary: list[str]
    weights: np.ndarray  # (features, topics)
    bias: np.ndarray  # (topics,)
    memory: np.ndarray | None = None  # (items, dims) int8: training items' embeddings as stored
    labels: np.ndarray | None = None  # (items,) uint16: their topics as bit sets
    calibration: np.ndarray | None = None  # (topics, 2): a, b of sigmoid(a logit(p) + b)
    memory_ids: list[str] | None = None  # the memory's items' ids, row for row


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def calibrate(probs: np.ndarray, examples: Sequence[Example], topics: Sequence[str]) -> np.ndarray:
    """Per topic, ``a`` and ``b`` so that ``sigmoid(a logit(p) + b)`` is the share of items
    with that out-of-fold probability that carry the topic (Platt scaling, fitted on the
    out-of-fold probabilities): a score then means what it says, as the rules' scores and the
    alerts' ``min_score`` (default 0.5) assume. Monotone: decisions at re-chosen thresholds
    are the same."""
    from sklearn.linear_model import LogisticRegression

    out = np.tile([1.0, 0.0], (len(topics), 1))
    for ti, t in enumerate(topics):
        y = np.array([t in ex.topics for ex in examples], dtype=int)
        if 0 < y.sum() < len(y):
            clf = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
            clf.fit(_logit(probs[:, ti])[:, None], y)
            out[ti] = (round(float(clf.coef_[0][0]), 5), round(float(clf.intercept_[0]), 5))
    return out


apply_calibration = calibrated  # the service's own function (worker.tagging.model)


def neighbour_memory(
    examples: Sequence[Example], topics: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The training items' embeddings, as the model file keeps them (int8, as stored), their
    topic bit sets and their ids."""
    if len(topics) > 16:
        raise ValueError(f"{len(topics)} topics do not fit the neighbours' 16-bit label sets")
    keep = [ex for ex in examples if ex.vector is not None]
    if not keep:
        return np.zeros((0, 0), np.int8), np.zeros(0, np.uint16), []
    q = np.vstack([ex.vector for ex in keep if ex.vector is not None]).astype(np.int8)
    bit = {t: 1 << i for i, t in enumerate(topics)}
    labels = np.array([sum(bit[t] for t in ex.topics if t in bit) for ex in keep], np.uint16)
    return q, labels, [ex.id for ex in keep]


def neighbour_votes(
    fitted: Fitted, examples: Sequence[Example], n_topics: int, chunk: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Per example, the neighbours' vote (as :meth:`Neighbours.vote` computes it) and whether
    it has one (an example with no known word has none)."""
    votes = np.zeros((len(examples), n_topics))
    has = np.array([ex.vector is not None for ex in examples])
    if fitted.memory is None or not len(fitted.memory) or not has.any():
        return votes, np.zeros(len(examples), bool)
    labels = topic_sets(fitted.labels, n_topics)  # type: ignore[arg-type]
    lists = fold_neighbours()
    listed = np.zeros(len(examples), bool)
    if lists is not None and fitted.memory_ids is not None:
        v, listed = lists.votes(examples, fitted.memory_ids, labels)
        votes[listed] = v[listed]
    unit = np.float32(127.0 * EMBEDDING_SCALE)
    mem = fitted.memory.astype(np.float32) / unit
    rows = np.flatnonzero(has & ~listed)
    for lo in range(0, len(rows), chunk):
        part = rows[lo : lo + chunk]
        v = np.vstack([examples[i].vector for i in part]).astype(np.float32) / unit  # type: ignore[misc]
        votes[part] = neighbour_vote(v @ mem.T, labels, NEIGHBOURS_K, NEIGHBOURS_SHARPNESS)
    return votes, has


def _matrix(examples: Sequence[Example], index: dict[str, int]) -> Any:
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for i, ex in enumerate(examples):
        scale = 1.0 / math.sqrt(ex.n_features) if ex.n_features else 0.0
        for f in ex.features:
            j = index.get(f)
            if j is not None:
                rows.append(i)
                cols.append(j)
                vals.append(scale)
    return csr_matrix((vals, (rows, cols)), shape=(len(examples), len(index)), dtype=np.float64)


def fit(
    examples: Sequence[Example],
    topics: Sequence[str],
    c: float = DEFAULT_C,
    class_weight: Any = None,
    weights: Sequence[float] | None = None,
) -> Fitted:
    from scipy.sparse import diags
    from sklearn.linear_model import LogisticRegression

    df: dict[str, int] = {}
    for ex in examples:
        for f in ex.features:
            df[f] = df.get(f, 0) + 1
    vocab = sorted(f for f, n in df.items() if n >= MIN_DF)
    index = {f: i for i, f in enumerate(vocab)}
    x = _matrix(examples, index)
    present = (x > 0).astype(np.float64)
    w = np.zeros((len(vocab), len(topics)))
    b = np.zeros(len(topics))
    for ti, t in enumerate(topics):
        y = np.array([t in ex.topics for ex in examples], dtype=int)
        if y.sum() == 0:
            b[ti] = -10.0
            continue
        if y.sum() == len(y):
            b[ti] = 10.0
            continue
        clf = LogisticRegression(
            C=c, solver="liblinear", max_iter=1000, random_state=0, class_weight=class_weight
        )
        scale = nb_scale(present, y)
        clf.fit(x @ diags(scale), y, sample_weight=None if weights is None else np.asarray(weights))
        w[:, ti] = clf.coef_[0] * scale
        b[ti] = clf.intercept_[0]
    memory, labels, ids = neighbour_memory(examples, topics)
    return Fitted(vocab, w, b, memory, labels, memory_ids=ids)


def nb_scale(present: Any, y: np.ndarray) -> np.ndarray:
    """Per feature, ``(1 - NB_MIX) + NB_MIX * |log-count ratio|`` of the positives (``y``) over
    the negatives, add-one smoothed (see :data:`NB_MIX`)."""
    p = np.asarray(present[y == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(present[y == 0].sum(axis=0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    return (1.0 - NB_MIX) + NB_MIX * np.abs(r)


def predict(fitted: Fitted, examples: Sequence[Example]) -> np.ndarray:
    """Every topic's probability, as the service computes it: the weights' logistic, mixed
    with the neighbours' vote where the example has a vector."""
    index = {f: i for i, f in enumerate(fitted.vocabulary)}
    z = _matrix(examples, index) @ fitted.weights + fitted.bias
    probs = 1.0 / (1.0 + np.exp(-z))
    votes, has = neighbour_votes(fitted, examples, probs.shape[1])
    if has.any():
        probs[has] = (1.0 - NEIGHBOURS_MIX) * probs[has] + NEIGHBOURS_MIX * votes[has]
    return apply_calibration(probs, fitted.calibration)


def group_folds(groups: Sequence[str], k: int) -> list[int]:
    """Fold of each item; a group's items share a fold; folds balanced by item count
    (largest groups first, each to the smallest fold; ties by fold number). Deterministic."""
    size: dict[str, int] = {}
    for g in groups:
        size[g] = size.get(g, 0) + 1
    load = [0] * k
    fold_of: dict[str, int] = {}
    for g in sorted(size, key=lambda g: (-size[g], hashlib.sha1(g.encode()).hexdigest())):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[g] = f
        load[f] += size[g]
    return [fold_of[g] for g in groups]


def decide(probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    return probs >= np.asarray(thresholds)[None, :]


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def choose_thresholds(
    probs: np.ndarray, examples: Sequence[Example], topics: Sequence[str], combine: bool = True
) -> list[float]:
    """Per topic, the grid threshold with the best F1 of (rules or model >= t) on these
    out-of-fold probabilities; ties to the higher threshold (fewer false alarms)."""
    return [th for th, _ in _best_thresholds(probs, examples, topics, combine)]


DECIDE_MARGIN = 0.01
"""The model alone must beat rules-or-model by at least this F1 (out of fold) to decide, and
beat it in every fold: on a tie, or a gain that holds in some folds only, the rules keep
their tags and their exact evidence."""

#: The corpus's shape of a headline with its feed summary: the second shape the model may be
#: handed whole (see :func:`choose_headline_mode`).
SUMMARY_SHAPE = "headline+summary"

SUMMARY_DECISIONS = "test"
"""Whether the model decides every topic of a headline with a short text (a feed entry's
summary), as it may of a headline alone: ``"always"``, ``"test"`` (when
:func:`choose_headline_mode` finds it better on the corpus's headline + summary items out of
fold, in every fold) or ``"never"``.

``"test"`` since model 1.5. Model 1.4 had ``"always"``, on leave-one-outlet-out (``python -m
worker.tagging.outlets``: 3,293 training-only feed items of 16 outlets, each outlet scored by
a model trained without it): the model alone 0.742 against rules-or-model 0.708. With the veto
(:func:`choose_veto`) rules-or-model scores 0.740 there (interval of the difference -0.008 to
+0.011), 0.741 against 0.763 on a random 300 of them labelled again and adjudicated
(``tests/data/outlets/``; -0.008 to +0.051), 0.771 against 0.767 on the corpus's 677 such
items and 0.846 against 0.823 on the feed held-out set: a tie, on which the rules keep their
tags and their exact evidence unless the fold test says otherwise."""

PER_TOPIC_DECISIONS = False
"""Whether the model may decide single topics on short items (veto the rules' tags of them).
Off since model 1.3: measured three times (1.3 with and without the margin, and with the
headline + summary silver items), it gained at most 0.005 on the corpus, flipped between
runs, and each time took armed-conflict and cost the feed held-out set 0.03-0.08 (tags of
wars named in market news, which that set's annotator kept). See the README."""


def choose_combination(
    probs: np.ndarray,
    examples: Sequence[Example],
    topics: Sequence[str],
    folds: Sequence[int] | None = None,
    per_topic: bool | None = None,
) -> tuple[list[float], list[str]]:
    """Per topic, how the rules and the model combine on short items, chosen on out-of-fold
    predictions: rules-or-model (the default), or the model alone when its best F1 beats the
    union's by :data:`DECIDE_MARGIN` overall and, with those thresholds, in every one of
    ``folds`` (the fold of each example) too. The model reads the rules' finds as features,
    so it may have learnt how far to trust them; the fold test asks that this holds across
    stories, not on average. Returns the thresholds (the union's, or the model-alone one for
    the topics the model decides) and the topics it decides: none unless ``per_topic``
    (default :data:`PER_TOPIC_DECISIONS`)."""
    if per_topic is None:
        per_topic = PER_TOPIC_DECISIONS
    union = _best_thresholds(probs, examples, topics, True)
    if not per_topic:
        return [th for th, _ in union], []
    alone = _best_thresholds(probs, examples, topics, False)
    gold, rules = label_matrices(examples, topics)
    fold_of = np.asarray(folds if folds is not None else [0] * len(examples))
    thresholds, decides = [], []
    for ti, (t, (th_u, f_u), (th_m, f_m)) in enumerate(zip(topics, union, alone, strict=True)):
        steady = all(
            _f1_of(probs[m, ti] >= th_m, gold[m, ti])
            > _f1_of(rules[m, ti] | (probs[m, ti] >= th_u), gold[m, ti])
            for m in (fold_of == f for f in np.unique(fold_of))
        )
        if f_m >= f_u + DECIDE_MARGIN and steady:
            thresholds.append(th_m)
            decides.append(t)
        else:
            thresholds.append(th_u)
    return thresholds, decides


VETO_GRID = (0.0, 0.025, 0.05, 0.075, 0.1)
"""Candidate probabilities under which the model rejects a rules' tag (see :func:`choose_veto`).
Up to 0.1: "all but rules out". Out of fold, 0.125-0.2 scored the same overall (0.810 against
0.811 with 0.1) and dropped more of the rules' right arms-control tags (the alert: 52 right
pages against 55, the rules alone 54)."""


def choose_veto(
    probs: np.ndarray,
    examples: Sequence[Example],
    topics: Sequence[str],
    thresholds: Sequence[float],
    folds: Sequence[int] | None = None,
    whole_shapes: Sequence[str] = (),
) -> float:
    """The probability under which the model rejects a rules' tag on an item it reads whole
    (a short item whose combination is rules-or-model; not the lead of a long article, not an
    item of ``whole_shapes``, which the model decides alone): the grid value of
    :data:`VETO_GRID` whose topics micro-F1 on these out-of-fold predictions is best among
    those that beat no veto (0.0) in every fold; 0.0 when none does. The rules' terms also
    fire on a war named in a subordinate clause ("amid the war", "if Russia invades") or a
    sense they do not exclude, and the model, which reads the rules' finds as features, has
    learnt where that goes with no topic; only a low probability overrules them."""
    items = np.array([ex.shape not in whole_shapes for ex in examples], dtype=bool)
    if not items.any():
        return 0.0
    gold, rules = label_matrices(examples, topics)
    gold, rules = gold[items], rules[items]
    p = probs[items]
    added = p >= np.asarray(thresholds)[None, :]
    fold_of = np.asarray(folds if folds is not None else [0] * len(examples))[items]
    masks = [fold_of == f for f in np.unique(fold_of)]

    def scores(v: float) -> tuple[float, list[float]]:
        pred = (rules & ~(p < v)) | added
        return _f1_of(pred.ravel(), gold.ravel()), [
            _f1_of(pred[m].ravel(), gold[m].ravel()) for m in masks
        ]

    base, base_folds = scores(0.0)
    best, best_v = base, 0.0
    for v in VETO_GRID[1:]:
        f, per_fold = scores(v)
        if f > best and all(a > b for a, b in zip(per_fold, base_folds, strict=True)):
            best, best_v = f, v
    return best_v


def label_matrices(
    examples: Sequence[Example], topics: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(items x topics) booleans: the gold labels, and the rules' tags."""
    gold = np.array([[t in ex.topics for t in topics] for ex in examples], dtype=bool)
    rules = np.array([[t in ex.rule_topics for t in topics] for ex in examples], dtype=bool)
    return gold, rules


def _f1_of(pred: np.ndarray, gold: np.ndarray) -> float:
    return _f1(int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum()))


def choose_headline_mode(
    probs: np.ndarray,
    examples: Sequence[Example],
    topics: Sequence[str],
    thresholds: Sequence[float],
    decides: Sequence[str],
    alone_thresholds: Sequence[float],
    folds: Sequence[int] | None = None,
    shape: str = "headline",
    veto: float = 0.0,
) -> bool:
    """Whether the model alone should decide every topic of a headline alone (a title, no
    text; or of the items of another ``shape``, "headline+summary"), with
    ``alone_thresholds``: when, on the items of that shape among these out-of-fold
    predictions, its topics micro-F1 beats that of the combination chosen per topic
    (``thresholds``, ``decides``, the rules' tags under ``veto`` dropped) by
    :data:`DECIDE_MARGIN`, and beats it in every fold too.
    A headline is the item the rules read worst (their terms are written for sentences); the
    model has learnt from thousands of them."""
    heads = np.array([ex.shape == shape for ex in examples], dtype=bool)
    if not heads.any():
        return False
    gold, rules = label_matrices(examples, topics)
    union = rules & ~np.isin(np.asarray(topics), list(decides))[None, :] & ~(probs < veto)
    combined = union | (probs >= np.asarray(thresholds)[None, :])
    alone = probs >= np.asarray(alone_thresholds)[None, :]
    fold_of = np.asarray(folds if folds is not None else [0] * len(examples))

    def micro(pred: np.ndarray, m: np.ndarray) -> float:
        return _f1_of(pred[m].ravel(), gold[m].ravel())

    if micro(alone, heads) < micro(combined, heads) + DECIDE_MARGIN:
        return False
    return all(
        micro(alone, m) > micro(combined, m)
        for m in (heads & (fold_of == f) for f in np.unique(fold_of[heads]))
    )


def summary_mode(
    probs: np.ndarray,
    examples: Sequence[Example],
    topics: Sequence[str],
    thresholds: Sequence[float],
    decides: Sequence[str],
    alone_thresholds: Sequence[float],
    folds: Sequence[int] | None = None,
    veto: float = 0.0,
) -> bool:
    """Whether the model decides headline + summary items whole (see
    :data:`SUMMARY_DECISIONS`)."""
    if SUMMARY_DECISIONS == "always":
        return True
    if SUMMARY_DECISIONS == "never":
        return False
    return choose_headline_mode(
        probs, examples, topics, thresholds, decides, alone_thresholds, folds, SUMMARY_SHAPE, veto
    )


def _best_thresholds(
    probs: np.ndarray, examples: Sequence[Example], topics: Sequence[str], combine: bool
) -> list[tuple[float, float]]:
    out = []
    for ti, t in enumerate(topics):
        gold = np.array([t in ex.topics for ex in examples])
        rule = np.array([combine and t in ex.rule_topics for ex in examples])
        best = (-1.0, 0.5)
        for th in THRESHOLD_GRID:
            pred = rule | (probs[:, ti] >= th)
            tp = int((pred & gold).sum())
            fp = int((pred & ~gold).sum())
            fn = int((~pred & gold).sum())
            f = _f1(tp, fp, fn)
            if f >= best[0]:
                best = (f, th)
        out.append((best[1], best[0]))
    return out


def with_extra(
    train: Sequence[Example], extra: Sequence[Example], held_out: Sequence[Example]
) -> tuple[list[Example], list[float] | None]:
    """The training items plus the extra ones that share no story with the held-out items,
    and their sample weights (None without extra items)."""
    if not extra:
        return list(train), None
    groups = {ex.group for ex in held_out}
    add = [ex for ex in extra if ex.group not in groups]
    return [*train, *add], [1.0] * len(train) + [EXTRA_WEIGHT] * len(add)


def fit_with(
    train: Sequence[Example],
    extra: Sequence[Example],
    held_out: Sequence[Example],
    topics: Sequence[str],
    c: float,
) -> Fitted:
    items, weights = with_extra(train, extra, held_out)
    return fit(items, topics, c, weights=weights)


def oof_probs(
    examples: Sequence[Example],
    topics: Sequence[str],
    k: int,
    c: float,
    extra: Sequence[Example] = (),
) -> np.ndarray:
    folds = group_folds([ex.group for ex in examples], k)
    probs = np.zeros((len(examples), len(topics)))
    for f in range(k):
        train = [ex for ex, g in zip(examples, folds, strict=True) if g != f]
        test_idx = [i for i, g in enumerate(folds) if g == f]
        test = [examples[i] for i in test_idx]
        probs[test_idx] = predict(fit_with(train, extra, test, topics, c), test)
    return probs


@dataclass(slots=True)
class Fold:
    index: int
    test: list[int]  # indices of the fold's items
    fitted: Fitted  # trained on the other folds
    thresholds: list[float]  # as the service combines, chosen on the other folds only
    model_thresholds: list[float]  # for the model alone, likewise
    decides: list[str]  # topics the model alone decides on short items
    headlines: bool  # whether the model alone decides every topic of a headline alone
    summaries: bool = False  # likewise of a headline with a short text (a feed summary)
    veto: float = 0.0  # under this probability the model rejects a rules' tag (short items)


def cv_folds(
    examples: Sequence[Example],
    topics: Sequence[str],
    k: int = 5,
    c: float = DEFAULT_C,
    inner: int = 5,
    progress: Callable[[str], None] | None = None,
    extra: Sequence[Example] = (),
) -> list[Fold]:
    """Grouped k-fold: each fold's model and thresholds see only the other folds (thresholds
    and the combination by an inner grouped CV on them with as many folds as ``train`` uses,
    so that the fold test of :func:`choose_combination` asks the same), so every figure is on
    items never trained or tuned on.
    ``extra`` items join every training set, less those of the test fold's stories."""
    folds = group_folds([ex.group for ex in examples], k)
    out = []
    for f in range(k):
        t0 = time.monotonic()
        train = [ex for ex, g in zip(examples, folds, strict=True) if g != f]
        test_idx = [i for i, g in enumerate(folds) if g == f]
        test = [examples[i] for i in test_idx]
        held = {ex.group for ex in test}
        extra_f = [ex for ex in extra if ex.group not in held]
        inner_probs = oof_probs(train, topics, inner, c, extra_f)
        cal = calibrate(inner_probs, train, topics)
        inner_probs = apply_calibration(inner_probs, cal)
        inner_folds = group_folds([ex.group for ex in train], inner)
        thresholds, decides = choose_combination(inner_probs, train, topics, inner_folds)
        alone = choose_thresholds(inner_probs, train, topics, combine=False)
        veto = choose_veto(inner_probs, train, topics, thresholds, inner_folds)
        headlines = choose_headline_mode(
            inner_probs, train, topics, thresholds, decides, alone, inner_folds, veto=veto
        )
        summaries = summary_mode(
            inner_probs, train, topics, thresholds, decides, alone, inner_folds, veto
        )
        fitted = fit_with(train, extra_f, test, topics, c)
        fitted.calibration = cal
        out.append(
            Fold(
                f,
                test_idx,
                fitted,
                thresholds,
                alone,
                decides,
                headlines,
                summaries,
                veto,
            )
        )
        if progress:
            progress(
                f"fold {f + 1}/{k}: {len(train)} + {len(extra_f)} train, "
                f"{len(test_idx)} test items, {time.monotonic() - t0:.1f} s; the model "
                f"decides {', '.join(decides) or 'no topic'} on short items"
                f"{' and every topic on headlines' if headlines else ''}"
                f"{' and on headlines with a summary' if summaries else ''}"
                f"; it rejects a rules' tag under {veto:g}"
            )
    return out


def as_model(
    fitted: Fitted,
    topics: Sequence[str],
    thresholds: Sequence[float],
    taxonomy_version: str,
    decides: Sequence[str] = (),
    headlines: bool = False,
    alone_thresholds: Sequence[float] | None = None,
    summaries: bool = False,
    veto: float = 0.0,
) -> TopicModel:
    """An in-memory model, exactly as its file would load; its neighbours look the items of
    the process's :func:`embedding_cache` up instead of encoding them."""
    long_thresholds = [min(0.95, round(t + LONG_THRESHOLD_MARGIN, 3)) for t in thresholds]
    data = model_json(
        fitted,
        topics,
        thresholds,
        long_thresholds,
        taxonomy_version,
        {},
        decides=decides,
        headlines=headlines,
        alone_thresholds=alone_thresholds,
        summaries=summaries,
        veto=veto,
    )
    return TopicModel(orjson.loads(data), embeddings=embedding_cache().store)


# ------------------------------------------------------------------------------ writing


def model_json(
    fitted: Fitted,
    topics: Sequence[str],
    thresholds: Sequence[float],
    long_thresholds: Sequence[float],
    taxonomy_version: str,
    training: dict[str, Any],
    decides: Sequence[str] = (),
    headlines: bool = False,
    alone_thresholds: Sequence[float] | None = None,
    summaries: bool = False,
    veto: float = 0.0,
) -> bytes:
    keep = [i for i in range(len(fitted.vocabulary)) if np.abs(fitted.weights[i]).max() >= 1e-4]
    weights = [[round(float(x), 5) for x in fitted.weights[i]] for i in keep]
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "topics": list(topics),
        "taxonomy_version": taxonomy_version,
        "thresholds": {t: float(v) for t, v in zip(topics, thresholds, strict=True)},
        "long_thresholds": {t: float(v) for t, v in zip(topics, long_thresholds, strict=True)},
        "model_decides": sorted(decides),
        "model_decides_headlines": headlines,
        "model_decides_summaries": summaries,
        "veto_below": float(veto),
        "alone_thresholds": {
            t: float(v) for t, v in zip(topics, alone_thresholds or thresholds, strict=True)
        },
        "bias": [round(float(x), 5) for x in fitted.bias],
        "neighbours": _neighbours_json(fitted),
        "calibration": None
        if fitted.calibration is None
        else {
            t: [float(a), float(b)] for t, (a, b) in zip(topics, fitted.calibration, strict=True)
        },
        "training": training,
        "vocabulary": [fitted.vocabulary[i] for i in keep],
        "weights": weights,
    }
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:10]
    body = {"version": f"{MODEL_SERIES}+{digest}", **body}
    # one feature per line: diffs stay readable, the file stays plain JSON
    head = {k: v for k, v in body.items() if k not in ("vocabulary", "weights", "neighbours")}
    lines = [orjson.dumps(head, option=orjson.OPT_SORT_KEYS).decode()[:-1] + ","]
    if body["neighbours"] is not None:  # its two long base64 strings on a line of their own
        lines.append(
            '"neighbours": '
            + orjson.dumps(body["neighbours"], option=orjson.OPT_SORT_KEYS).decode()
            + ","
        )
    lines.append('"vocabulary": [')
    vocab = [fitted.vocabulary[i] for i in keep]
    lines += [
        orjson.dumps(v).decode() + ("," if i < len(vocab) - 1 else "") for i, v in enumerate(vocab)
    ]
    lines.append('], "weights": [')
    lines += [
        orjson.dumps(w).decode() + ("," if i < len(weights) - 1 else "")
        for i, w in enumerate(weights)
    ]
    lines.append("]}")
    return ("\n".join(lines) + "\n").encode()


def _neighbours_json(fitted: Fitted) -> dict[str, Any] | None:
    if fitted.memory is None or not len(fitted.memory):
        return None
    return {
        "k": NEIGHBOURS_K,
        "sharpness": NEIGHBOURS_SHARPNESS,
        "mix": NEIGHBOURS_MIX,
        "items": int(fitted.memory.shape[0]),
        "dims": int(fitted.memory.shape[1]),
        "scale": EMBEDDING_SCALE,
        "encoder_sha256": encoder_digest(),
        "vectors": base64.b64encode(fitted.memory.tobytes()).decode("ascii"),
        "labels": base64.b64encode(fitted.labels.astype("<u2").tobytes()).decode("ascii"),  # type: ignore[union-attr]
    }


LONG_THRESHOLD_MARGIN = 0.3
"""Of a long article the model reads the lead only, and the rules read all of it; the model's
thresholds there are the short-item ones plus this margin (capped at 0.95), chosen on the dev
set's long articles (see the README: the model adds little to what the rules find in them)."""


def read_corpus(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def default_extra(corpus: Path) -> Path | None:
    """The training-only items beside a corpus file, if there are any."""
    path = Path(corpus).with_name(EXTRA_NAME)
    return path if path.is_file() and path != Path(corpus) else None


def resolve_extra(value: str | None, corpus: Path) -> Path | None:
    """``auto`` (the file beside the corpus, if any), ``none``, or a path."""
    if value is None or value == "none":
        return None
    if value == "auto":
        return default_extra(corpus)
    return Path(value)


def train_model(
    corpus: Path,
    out: Path,
    config_dir: Path,
    *,
    c: float = DEFAULT_C,
    k: int = 5,
    extra: Path | None = None,
    progress: Callable[[str], None] | None = None,
    save_embeddings: bool = False,
) -> TopicModel:
    """Train on ``corpus`` (and ``extra``), write the model file ``out``, return it loaded.
    ``save_embeddings``: write the embeddings of items :data:`DEFAULT_EMBEDDINGS` lacked
    back to it."""
    from worker.tagging import Tagger

    rows = read_corpus(corpus)
    extra_rows = read_corpus(extra) if extra is not None else []
    tagger = Tagger.from_config_dir(config_dir, model=False)
    topics = list(tagger.topics)
    t0 = time.monotonic()
    examples = prepare(rows, tagger)
    extra_ex = prepare(extra_rows, tagger)
    if progress:
        progress(
            f"{len(examples)} + {len(extra_ex)} items prepared in {time.monotonic() - t0:.1f} s"
        )
    cache = embedding_cache()
    if save_embeddings and cache.save() and progress:
        progress(f"wrote {cache.path} ({len(cache.store)} items' embeddings)")
    probs = oof_probs(examples, topics, k, c, extra_ex)
    cal = calibrate(probs, examples, topics)
    probs = apply_calibration(probs, cal)
    folds = group_folds([ex.group for ex in examples], k)
    thresholds, decides = choose_combination(probs, examples, topics, folds)
    alone = choose_thresholds(probs, examples, topics, combine=False)
    veto = choose_veto(probs, examples, topics, thresholds, folds)
    headlines = choose_headline_mode(
        probs, examples, topics, thresholds, decides, alone, folds, veto=veto
    )
    summaries = summary_mode(probs, examples, topics, thresholds, decides, alone, folds, veto)
    long_thresholds = [min(0.95, round(t + LONG_THRESHOLD_MARGIN, 3)) for t in thresholds]
    if progress:
        progress(
            f"thresholds from {k}-fold out-of-fold predictions; the model rejects a rules' "
            f"tag under {veto:g}"
        )
    fitted = fit_with(examples, extra_ex, [], topics, c)
    fitted.calibration = cal
    training = {
        "corpus": corpus.name,
        "corpus_sha256": corpus_digest(rows),
        "items": len(rows),
        "extra": extra.name if extra is not None else None,
        "extra_sha256": corpus_digest(extra_rows) if extra is not None else None,
        "extra_items": len(extra_rows),
        "extra_weight": EXTRA_WEIGHT,
        "positives": {t: sum(t in ex.topics for ex in examples) for t in topics},
        "c": c,
        "min_df": MIN_DF,
        "nb_mix": NB_MIX,
        "threshold_folds": k,
        "long_threshold_margin": LONG_THRESHOLD_MARGIN,
        "method": "one-vs-rest logistic regression (liblinear, L2) over words, word pairs and "
        "state mentions, features scaled by their interpolated log-count ratio (NBSVM), mixed "
        "with the vote of the training items nearest in sentence embedding (all-MiniLM-L6-v2"
        + (", fine-tuned on the labelled items" if fine_tuned() else "")
        + "; neighbours) and "
        "calibrated per topic on out-of-fold predictions (Platt); per "
        "topic rules-or-model or (on short items) the model alone, the probability under which "
        "the model rejects a rules' tag on an item it reads whole, on a headline alone and on "
        "a headline with a short text the model alone or not, and the thresholds, chosen on "
        "grouped out-of-fold predictions",
        "decide_margin": DECIDE_MARGIN,
    }
    data = model_json(
        fitted,
        topics,
        thresholds,
        long_thresholds,
        tagger.taxonomy_version,
        training,
        decides,
        headlines,
        alone,
        summaries,
        veto,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return TopicModel.from_file(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m worker train",
        description="Train the topic model on the labelled corpus and write its JSON file.",
    )
    p.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="labelled JSONL (default: %(default)s)"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default: %(default)s")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=ROOT / "configs",
        help="taxonomy and gazetteer (default: %(default)s)",
    )
    p.add_argument(
        "--c",
        type=float,
        default=DEFAULT_C,
        help="inverse regularisation strength (default: %(default)s)",
    )
    p.add_argument(
        "--extra",
        default="auto",
        metavar="FILE",
        help=f"training-only labelled items ('auto': {EXTRA_NAME} beside the corpus if "
        "present; 'none': without)",
    )
    args = p.parse_args(argv)
    if not args.corpus.is_file():
        print(f"error: {args.corpus}: no such corpus file", file=sys.stderr)
        return 2
    extra = resolve_extra(args.extra, args.corpus)
    if extra is not None and not extra.is_file():
        print(f"error: {extra}: no such file", file=sys.stderr)
        return 2
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    model = train_model(
        args.corpus,
        args.out,
        args.config_dir,
        c=args.c,
        extra=extra,
        progress=say,
        save_embeddings=True,
    )
    say(
        f"wrote {args.out} (model {model.version}, {len(model.vocabulary)} features, "
        f"{args.out.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
