"""Posterior noise in place and exact restoration of the weights."""

from __future__ import annotations

import pytest
import torch

from measurement._perturb import (
    PosteriorNoise,
    WeightRestorer,
    by_parameter_name,
    select_parameters,
)
from pacbound.exceptions import InvalidParameterError

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")


def load(path, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()


def snapshot(params):
    return {n: p.detach().clone() for n, p in params.items()}


def test_weight_space_selects_every_parameter_once(llama_dir):
    model = load(llama_dir)
    named = select_parameters(model, "weight")
    names = [n for n, _ in named]
    assert names == sorted(names)
    assert "lm_head.weight" not in names  # tied to the embedding: counted once
    assert sum(p.numel() for _, p in named) == sum(p.numel() for p in model.parameters())
    with pytest.raises(InvalidParameterError, match="`space` must be 'weight' for a model"):
        select_parameters(model, "adapter")


def test_adapter_space_selects_only_the_adapter(llama_dir, adapter_dir):
    from peft import PeftModel

    model = PeftModel.from_pretrained(load(llama_dir), adapter_dir)
    named = select_parameters(model, "adapter")
    assert named and all(".lora_A." in n or ".lora_B." in n for n, _ in named)


def test_noise_is_seeded_per_sample_and_has_the_right_scale(llama_dir):
    model = load(llama_dir)
    params = dict(select_parameters(model, "weight"))
    original = snapshot(params)
    restorer = WeightRestorer(params)
    assert restorer.source == "copy"
    noise = PosteriorNoise.isotropic(list(params), 0.05, seed=3)
    noise.apply_(params, sample=1)
    first = snapshot(params)
    name = "model.embed_tokens.weight"
    delta = first[name] - original[name]
    assert delta.std().item() == pytest.approx(0.05, rel=0.05)
    assert delta.mean().abs().item() < 0.005
    restorer.restore()
    assert all(torch.equal(params[n], original[n]) for n in params)
    noise.apply_(params, sample=2)
    assert not torch.equal(params[name], first[name])  # another sample, other noise
    restorer.restore()
    noise.apply_(params, sample=1)  # sample 1 again: identical, whatever ran before
    assert all(torch.equal(params[n], first[n]) for n in params)
    restorer.restore()
    assert all(torch.equal(params[n], original[n]) for n in params)


def test_per_tensor_scale_uses_the_rms(llama_dir):
    import pandas as pd

    model = load(llama_dir)
    params = dict(select_parameters(model, "weight"))
    table = pd.DataFrame(
        {
            "name": list(params),
            "numel": [p.numel() for p in params.values()],
            "sq_base": [float(p.detach().double().square().sum()) for p in params.values()],
        }
    )
    rms = by_parameter_name(
        {n: (sb / m) ** 0.5 for n, sb, m in zip(table["name"], table["sq_base"], table["numel"], strict=True)},
        list(params),
    )
    noise = PosteriorNoise.per_tensor(list(params), 0.1, rms)
    name = "model.embed_tokens.weight"
    assert noise.stds[noise.names.index(name)] == pytest.approx(
        0.1 * params[name].double().square().mean().sqrt().item()
    )
    with pytest.raises(InvalidParameterError, match="needs the scale of every perturbed"):
        PosteriorNoise.per_tensor(list(params), 0.1, {})
    with pytest.raises(InvalidParameterError, match="`sigma` must be in"):
        PosteriorNoise.isotropic(list(params), 0.0)


def test_bf16_restore_from_files_is_exact_where_subtracting_is_not(llama_dir):
    model = load(llama_dir, dtype=torch.bfloat16)
    params = dict(select_parameters(model, "weight"))
    original = snapshot(params)
    restorer = WeightRestorer(params, source=llama_dir)
    assert restorer.source == "files"
    noise = PosteriorNoise.isotropic(list(params), 1e-3, seed=0)
    # the trap: w + e - e in bf16 does not give w back
    name = "model.layers.0.mlp.up_proj.weight"
    w = original[name]
    e = torch.randn(w.shape, generator=torch.Generator().manual_seed(0)).mul_(1e-3)
    naive = (w + e.bfloat16()) - e.bfloat16()
    assert not torch.equal(naive, w)
    noise.apply_(params, sample=0)
    assert not torch.equal(params[name], w)
    restorer.restore()
    assert all(torch.equal(params[n], original[n]) for n in params)
    restorer.close()


def test_adapter_restore_from_the_adapter_file(llama_dir, adapter_dir):
    from peft import PeftModel

    model = PeftModel.from_pretrained(load(llama_dir), adapter_dir)
    params = dict(select_parameters(model, "adapter"))
    original = snapshot(params)
    restorer = WeightRestorer(params, source=adapter_dir)
    assert restorer.source == "files"
    PosteriorNoise.isotropic(list(params), 0.1).apply_(params, sample=0)
    restorer.restore()
    assert all(torch.equal(params[n], original[n]) for n in params)


def test_a_source_with_other_values_falls_back_to_a_copy(llama_dir, finetuned_dir):
    model = load(llama_dir)
    params = dict(select_parameters(model, "weight"))
    original = snapshot(params)
    restorer = WeightRestorer(params, source=finetuned_dir)  # other weights: not a source
    assert restorer.source in ("copy", "files+copy")
    PosteriorNoise.isotropic(list(params), 0.1).apply_(params, sample=0)
    restorer.restore()
    assert all(torch.equal(params[n], original[n]) for n in params)
