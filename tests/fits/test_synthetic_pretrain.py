"""Pre-training a (tiny) synthetic base: a real HF folder, cached and reused by its hash."""

from __future__ import annotations

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from fits import PretrainConfig, SyntheticModelConfig, ensure_synthetic_base, find_synthetic_base
from fits.synthetic._pretrain import pretrain_synthetic_base

pytestmark = pytest.mark.usefixtures("sweep_env")

TINY = PretrainConfig(
    ops=(1, 2),
    max_ops=3,
    steps=4,
    batch_size=8,
    warmup_steps=1,
    model=SyntheticModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
)


def test_pretrain_writes_a_loadable_folder_with_its_meta(tmp_path):
    seen = []
    out = pretrain_synthetic_base(
        TINY, tmp_path / "base", eval_per_op=2, progress=lambda s, n, loss: seen.append((s, loss))
    )
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    meta = json.loads((out / "pretrain_meta.json").read_text())
    assert meta["config_hash"] == TINY.config_hash() and meta["n_parameters"] > 0
    assert {"ops1_accuracy", "ops3_accuracy", "inrange_loss", "extrap_loss"} <= set(meta["eval"])
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.hidden_size == 32 and tok.eos_token_id == 2
    assert oct((out / "model.safetensors").stat().st_mode)[-3:] == "644"


def test_ensure_pretrains_once_into_the_cache_then_reuses():
    assert find_synthetic_base(TINY) is None
    first = ensure_synthetic_base(TINY)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert find_synthetic_base(TINY) == first
    assert ensure_synthetic_base(TINY) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
