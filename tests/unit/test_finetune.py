"""The encoder's fine-tuning build (worker.tagging.finetune): its pure parts. The torch part
is a build step (hours) that neither the worker nor the suite runs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from worker.tagging import finetune
from worker.tagging.encoder import ENCODER_DIR, dequantised, quantised
from worker.tagging.model import neighbour_vote
from worker.tagging.train import NEIGHBOURS_K, NEIGHBOURS_SHARPNESS, FoldNeighbours


def test_quantised_rows_round_trip_within_half_a_step() -> None:
    rng = np.random.default_rng(3)
    w = {
        "m": rng.normal(0, 0.05, (40, 16)).astype(np.float32),
        "zero": np.zeros((3, 4), np.float32),
        "v": rng.normal(0, 1, 16).astype(np.float32),
    }
    q = quantised(w)
    assert q["m"].dtype == np.int8 and q["m.scale"].shape == (40,)
    assert np.abs(q["m"]).max() == 127  # each row uses the 8 bits' range
    back = dequantised(q)
    assert set(back) == {"m", "zero", "v"}
    step = q["m.scale"][:, None]
    assert np.all(np.abs(back["m"] - w["m"]) <= step / 2 + 1e-7)
    assert np.array_equal(back["zero"], w["zero"]) and np.array_equal(back["v"], w["v"])


def test_the_projects_encoder_file_is_its_own_quantisation() -> None:
    """Quantising what the shipped file stands for gives the file back: the fine-tuned
    encoder is written by the same function as the pretrained one."""
    from safetensors.numpy import load_file

    stored = load_file(ENCODER_DIR / "model.safetensors")
    name = "encoder.layer.0.attention.self.query.weight"
    again = quantised(
        {name: dequantised({name: stored[name], name + ".scale": stored[name + ".scale"]})[name]}
    )
    assert np.array_equal(again[name], stored[name])
    assert np.allclose(again[name + ".scale"], stored[name + ".scale"], rtol=1e-6)


def test_nearest_is_the_brute_force_top_k() -> None:
    rng = np.random.default_rng(5)
    mem = rng.normal(size=(300, 8)).astype(np.float32)
    mem /= np.linalg.norm(mem, axis=1, keepdims=True)
    q = mem[:20] + rng.normal(0, 0.1, (20, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids, sims = finetune.nearest(q, mem, keep=30, chunk=7)
    s = q @ mem.T
    want = np.argsort(-s, axis=1, kind="stable")[:, :30]
    assert np.array_equal(ids, want)
    assert np.allclose(sims.astype(np.float32), np.take_along_axis(s, want, 1), atol=2e-3)
    assert np.all(np.diff(sims.astype(np.float32), axis=1) <= 0)  # most similar first
    assert ids[:, 0].tolist() == list(range(20))  # each query's own item first
    assert finetune.nearest(q, mem[:10], keep=30)[0].shape == (20, 10)  # at most the memory


def test_length_batches_cover_every_item_once_in_like_lengths() -> None:
    rng = np.random.default_rng(9)
    lengths = rng.integers(5, 400, 1000).tolist()
    batches = finetune.length_batches(lengths, rng.permutation(1000), 32)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert all(1 <= len(b) <= 32 for b in batches)
    spread = np.mean([lengths[b[-1]] - lengths[b[0]] for b in batches])
    assert spread < 60  # random batches of 32 spread over ~370 characters


def test_without_torch_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    assert finetune.main(["some.whl"]) == 2
    assert "pip install -e '.[finetune]'" in capsys.readouterr().err


def _fold_lists(tmp_path: Path) -> tuple[FoldNeighbours, np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(11)
    e = rng.normal(size=(120, 16)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = (rng.random((120, 4)) < 0.3).astype(np.float32)
    ids = [f"item-{i:03d}" for i in range(120)]
    listed = np.arange(0, 40)  # the "corpus" items; every item may be a neighbour
    others = np.arange(40, 120)
    lst, sims = finetune.nearest(e[listed], e[others], keep=60)
    fn = FoldNeighbours(ids, listed.astype(np.int32), others[lst].astype(np.int32), sims, {"x": 1})
    fn.save(tmp_path / "n.safetensors")
    return FoldNeighbours.from_file(tmp_path / "n.safetensors"), e, labels, ids


@dataclass
class _Ex:
    id: str


def test_fold_lists_round_trip_and_vote_as_the_embeddings_would(tmp_path: Path) -> None:
    fn, e, labels, ids = _fold_lists(tmp_path)
    assert fn.ids == ids and fn.meta == {"x": 1} and len(fn.listed) == 40
    # a memory of part of the other items: each query reads its first K that are in it
    memory = np.arange(40, 120, 2)
    queries = [_Ex(ids[i]) for i in range(40)] + [_Ex("not-listed")]
    votes, has = fn.votes(queries, [ids[i] for i in memory], labels[memory])  # type: ignore[arg-type]
    assert has[:40].all() and not has[40]
    want = neighbour_vote(e[:40] @ e[memory].T, labels[memory], NEIGHBOURS_K, NEIGHBOURS_SHARPNESS)
    assert np.allclose(votes[:40], want, atol=0.02)  # float16 similarities
    assert np.abs(votes[:40] - want).mean() < 0.002


def test_fold_lists_belong_to_one_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.tagging import train

    fn, *_ = _fold_lists(tmp_path)
    path = tmp_path / "lists.safetensors"
    fn.meta = {"encoder_sha256": "0" * 64, **train.labelled_digests()}
    fn.save(path)
    assert train.fold_neighbours(path) is None  # not the encoder in configs/
    fn.meta["encoder_sha256"] = train.encoder_digest()
    path2 = tmp_path / "lists2.safetensors"
    fn.save(path2)
    assert isinstance(train.fold_neighbours(path2), FoldNeighbours)
    # the project's own lists go with its fine-tuned encoder and cover every corpus item
    shipped = train.fold_neighbours()
    assert isinstance(shipped, FoldNeighbours)
    assert shipped.meta["encoder_sha256"] == train.encoder_digest()
    corpus = [r["id"] for r in train.read_corpus(train.DEFAULT_CORPUS)]
    assert set(corpus) <= set(shipped.listed)


def test_an_unknown_step_is_named_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(finetune.FinetuneError, match="fold-0, fold-1, fold-2, final"):
        finetune.run(tmp_path / "missing.whl", tmp_path / "work", folds=3, only="fold-9")
    assert not (tmp_path / "work").exists()


def test_an_encoder_file_says_whether_it_was_fine_tuned(tmp_path: Path) -> None:
    """The leave-one-outlet-out measure warns when the encoder learnt from the items it holds
    out: the weights file's ``source`` says which build made it."""
    from worker.tagging.encoder import SOURCE, encoder_source, fine_tuned, weights_file
    from worker.tagging.outlets import render

    w = {"m": np.ones((2, 2), np.float32)}
    (tmp_path / "model.safetensors").write_bytes(weights_file(w, SOURCE))
    assert encoder_source(tmp_path) == SOURCE and not fine_tuned(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(
        weights_file(w, f"{SOURCE}, fine-tuned on the topic corpus: final")
    )
    assert fine_tuned(tmp_path)
    res = {
        "model": "x",
        "shape": "headline+summary",
        "labels": "own",
        "items": 1,
        "outlets": {},
        "all": {
            "rules": 0.5,
            "union": 0.6,
            "alone": 0.7,
            "precision_recall": {k: [0.5, 0.5] for k in ("rules", "union", "alone")},
            "alone_minus_union_95": [0.0, 0.2],
        },
    }
    assert "overstates" not in render({**res, "encoder_saw_these_items": False})
    assert "overstates" in render({**res, "encoder_saw_these_items": True})
