"""The synthetic base: config hash, cache folder, and lookup of the shipped checkpoint."""

from __future__ import annotations

import json

import pytest

from fits import PretrainConfig, SyntheticModelConfig, cache_root, find_synthetic_base
from fits.synthetic._model import base_cache_dir, build_synthetic_model, shipped_base_dir
from pacbound.exceptions import InvalidParameterError


def test_hash_is_stable_and_covers_every_field():
    a = PretrainConfig()
    assert a.config_hash() == PretrainConfig().config_hash() == "24990077e12b"
    changed = [
        PretrainConfig(steps=600),
        PretrainConfig(ops=(2, 6)),
        PretrainConfig(seed=1),
        PretrainConfig(lr=1e-3),
        PretrainConfig(model=SyntheticModelConfig(num_layers=3)),
    ]
    assert len({c.config_hash() for c in changed} | {a.config_hash()}) == len(changed) + 1
    assert PretrainConfig.from_dict(a.to_dict()) == a
    assert a.name == "synthetic-ops1-4-24990077e12b"


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SFT_TRADEOFF_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "sft-tradeoff"
    monkeypatch.setenv("SFT_TRADEOFF_CACHE", str(tmp_path / "own"))
    cfg = PretrainConfig(steps=7)
    assert base_cache_dir(cfg) == tmp_path / "own" / "bases" / cfg.name
    assert find_synthetic_base(cfg) is None


def test_shipped_base_is_found_and_matches_its_config():
    folder = find_synthetic_base()
    assert folder == shipped_base_dir()
    meta = json.loads((folder / "pretrain_meta.json").read_text())
    assert meta["config"] == PretrainConfig().to_dict()
    assert meta["eval"]["inrange_accuracy"] == 1.0  # the base solves its pre-training range
    assert meta["eval"]["extrap_accuracy"] < 0.5
    assert (folder / "model.safetensors").stat().st_size < 3_000_000


def test_model_shape_and_bad_configs():
    model, tok = build_synthetic_model(PretrainConfig())
    assert sum(p.numel() for p in model.parameters()) == 530_560
    assert model.config.vocab_size == len(tok) and model.config.tie_word_embeddings
    with pytest.raises(InvalidParameterError, match="`ops` must satisfy"):
        PretrainConfig(ops=(1, 9))
    with pytest.raises(InvalidParameterError, match="`lr` must be positive"):
        PretrainConfig(lr=0)


def test_calibrated_base_is_shipped_too_and_found_by_its_config():
    from fits.synthetic._model import shipped_base_dirs

    cfg = PretrainConfig(ops=(1, 2), max_ops=6, steps=800)
    folder = find_synthetic_base(cfg)
    assert folder is not None and folder in shipped_base_dirs() and folder != shipped_base_dir()
    meta = json.loads((folder / "pretrain_meta.json").read_text())
    assert meta["config_hash"] == cfg.config_hash()
    per_op = [meta["eval"][f"ops{k}_accuracy"] for k in range(1, 7)]
    assert min(per_op[:2]) >= 0.95 and max(per_op[2:]) <= 0.30  # knows k <= 2 only
    assert (folder / "model.safetensors").stat().st_size < 3_000_000
