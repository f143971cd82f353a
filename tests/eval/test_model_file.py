"""The committed model is reproducible: the committed corpus, silver items and code make it,
byte for byte (training is deterministic). About a minute and a half: an evaluation test,
not a unit test."""

from __future__ import annotations

from pathlib import Path

from worker.tagging.train import DEFAULT_CORPUS, default_extra, train_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
MODEL = CONFIGS / "topic-model.json"


def test_the_model_is_what_train_makes_from_the_corpus(tmp_path: Path) -> None:
    """The committed model is reproducible: the committed corpus and code make it, byte for
    byte (training is deterministic)."""
    out = tmp_path / "model.json"
    train_model(DEFAULT_CORPUS, out, CONFIGS, extra=default_extra(DEFAULT_CORPUS))
    assert out.read_bytes() == MODEL.read_bytes()
