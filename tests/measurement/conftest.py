"""Shared fixtures for the measurement tests: real tiny checkpoints, built once per session.

Every model is a genuine transformers Llama or GPT-2 from ``tests/_tiny.py`` saved in Hugging
Face format; adapters are genuine peft LoRA adapters with ``init_lora_weights=False`` (B ≠ 0),
and their reference deltas come from peft's own ``merge_and_unload``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_gpt2, tiny_llama

torch.set_num_threads(1)


# --------------------------------------------------------------------------- weights (issue 3)


def state_dict_of(model) -> dict[str, torch.Tensor]:
    """A detached float64 copy of a model's state dict (the reference for totals)."""
    return {k: v.detach().double().clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="session")
def weights_tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def sharded_base(tmp_path_factory) -> Path:
    """Tiny Llama base (tied embeddings, attention biases) saved in several shards."""
    path = save_model(tiny_llama(seed=0, attention_bias=True), tmp_path_factory.mktemp("base"))
    assert (path / "model.safetensors.index.json").is_file()
    return path


@pytest.fixture(scope="session")
def full_finetune(tmp_path_factory, weights_tokenizer) -> Path:
    """The base after a few real AdamW steps, saved as one file (no index)."""
    model = finetune_steps(
        tiny_llama(seed=0, attention_bias=True), weights_tokenizer, steps=2, lr=1e-3
    )
    path = save_model(model, tmp_path_factory.mktemp("ft"), max_shard_size=None)
    assert (path / "model.safetensors").is_file()
    return path


@pytest.fixture(scope="session")
def bf16_pair(tmp_path_factory, weights_tokenizer) -> tuple[Path, Path]:
    """Base and fine-tune saved in bfloat16 (base sharded, fine-tune single file)."""
    base = tiny_llama(seed=0, attention_bias=True).to(torch.bfloat16)
    ft = finetune_steps(
        tiny_llama(seed=0, attention_bias=True), weights_tokenizer, steps=1, lr=1e-4
    )
    root = tmp_path_factory.mktemp("bf16")
    save_model(base, root / "base")
    save_model(ft.to(torch.bfloat16), root / "ft", max_shard_size=None)
    return root / "base", root / "ft"


@pytest.fixture(scope="session")
def untied_finetune(tmp_path_factory) -> Path:
    """A fine-tune whose head was untied from the embedding: it has lm_head, the base has not."""
    base = tiny_llama(seed=0, attention_bias=True)
    model = tiny_llama(seed=0, attention_bias=True, tie=False)
    model.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        model.lm_head.weight.copy_(base.model.embed_tokens.weight)
        model.lm_head.weight.add_(0.01)
        model.model.layers[0].mlp.up_proj.weight.mul_(1.5)
    return save_model(model, tmp_path_factory.mktemp("untied"), max_shard_size=None)


@pytest.fixture(scope="session")
def resized_finetune(tmp_path_factory) -> Path:
    """The base with 8 tokens added (resize_token_embeddings, mean resizing) and one change."""
    model = tiny_llama(seed=0, attention_bias=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.resize_token_embeddings(328)
    with torch.no_grad():
        model.model.layers[1].self_attn.o_proj.weight.add_(0.02)
    return save_model(model, tmp_path_factory.mktemp("resized"), max_shard_size=None)


@dataclass(frozen=True)
class LoraCase:
    """A saved adapter with its base and peft's merged weights (the reference)."""

    adapter: Path
    base: Path
    base_sd: dict[str, torch.Tensor]
    merged_sd: dict[str, torch.Tensor]

    def dense_sq_delta(self, name: str) -> float:
        """‖merged − base‖² of one tensor from peft's merge_and_unload, in float64."""
        merged = self.merged_sd[name]
        base = self.base_sd.get(name)
        delta = merged if base is None else merged - base
        return float(delta.square().sum())


LORA_CONFIGS = {
    "plain": dict(target_modules=["q_proj", "v_proj", "down_proj"]),
    "rslora": dict(target_modules=["q_proj", "v_proj"], use_rslora=True, r=8, lora_alpha=16),
    "pattern": dict(
        target_modules=["q_proj", "v_proj", "down_proj"],
        rank_pattern={"q_proj": 2, "layers.1.self_attn.v_proj": 6},
        alpha_pattern={"v_proj": 3},
    ),
    "dora": dict(target_modules=["q_proj", "v_proj"], use_dora=True),
    "modules_to_save": dict(target_modules=["q_proj"], modules_to_save=["lm_head"]),
    "embedding": dict(target_modules=["embed_tokens", "k_proj"]),
    "lora_bias": dict(target_modules=["q_proj", "k_proj"], lora_bias=True),
}


def build_lora_case(root: Path, base_dir: Path, name: str, model, **config) -> LoraCase:
    from peft import LoraConfig, get_peft_model

    base_sd = state_dict_of(model)
    kw = {"r": 4, "lora_alpha": 8, "init_lora_weights": False, **config}
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(model, LoraConfig(**kw))
        peft_model.save_pretrained(root / name)
        merged = peft_model.merge_and_unload()
    return LoraCase(root / name, base_dir, base_sd, state_dict_of(merged))


@pytest.fixture(scope="session")
def lora_cases(tmp_path_factory, sharded_base) -> dict[str, LoraCase]:
    """Real peft adapters on the sharded base: one per LoRA variant in :data:`LORA_CONFIGS`."""
    root = tmp_path_factory.mktemp("adapters")
    return {
        name: build_lora_case(
            root, sharded_base, name, tiny_llama(seed=0, attention_bias=True), **cfg
        )
        for name, cfg in LORA_CONFIGS.items()
    }


@pytest.fixture(scope="session")
def gpt2_lora(tmp_path_factory) -> LoraCase:
    """GPT-2 (Conv1D layers, fan_in_fan_out) with a LoRA on c_attn and c_fc."""
    root = tmp_path_factory.mktemp("gpt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base_dir = save_model(tiny_gpt2(seed=0), root / "base")
    return build_lora_case(
        root,
        base_dir,
        "adapter",
        tiny_gpt2(seed=0),
        target_modules=["c_attn", "c_fc"],
        fan_in_fan_out=True,
    )
