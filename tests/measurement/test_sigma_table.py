"""One per-tensor σ table: the posterior the sampler draws is the posterior whose KL is charged.

Regression: with ``per_tensor_scale`` a tensor whose base RMS is 0 (a bias initialised at zero)
was charged σ · (RMS of all base weights) in the KL, but sampled with no noise at all, so the
certified Gibbs risk was that of another posterior than the one in the KL term.
"""

from __future__ import annotations

import pytest
import torch

from measurement import PosteriorSampler, gaussian_kl, per_tensor_scales, weight_statistics
from tests._tiny import build_tokenizer, finetune_steps, save_model, tiny_llama

pytest_plugins = ["tests.measurement._data_fixtures"]
pytestmark = pytest.mark.usefixtures("one_thread")

SIGMA = 0.05


@pytest.fixture(scope="module")
def zero_bias_pair(tmp_path_factory):
    """A base whose attention biases are exactly 0 (transformers' init), and a real fine-tune."""
    tokenizer = build_tokenizer()
    base = tiny_llama(seed=0, attention_bias=True)
    assert float(base.model.layers[0].self_attn.q_proj.bias.detach().abs().max()) == 0.0
    base_dir = save_model(base, tmp_path_factory.mktemp("zb-base"), tokenizer=tokenizer)
    finetune_steps(base, tokenizer, steps=2)
    ft_dir = save_model(base, tmp_path_factory.mktemp("zb-ft"), tokenizer=tokenizer)
    return base_dir, ft_dir


def _empirical_std(sampler, noise, name, samples=24):
    param = sampler.params[name]
    deltas = []
    for sample in range(samples):
        before = param.detach().clone()
        noise.apply_(sampler.params, sample)
        deltas.append((param.detach() - before).double().flatten())
        sampler.restorer.restore()
    return float(torch.cat(deltas).std())


def test_sampled_variance_matches_the_sigma_charged_for_every_tensor(zero_bias_pair):
    from transformers import AutoModelForCausalLM

    base_dir, ft_dir = zero_bias_pair
    stats = weight_statistics(base_dir, ft_dir)
    kl = gaussian_kl(stats, sigma=SIGMA, per_tensor_scale=True)
    charged = dict(zip(kl.per_tensor["name"], kl.per_tensor["sigma_q"], strict=True))
    model = AutoModelForCausalLM.from_pretrained(ft_dir, dtype=torch.float32).eval()
    sampler = PosteriorSampler(model, space="weight", per_tensor_scale=True, stats=stats)
    noise = sampler.noise(SIGMA, seed=0)
    stds = dict(zip(noise.names, noise.stds, strict=True))
    zero_rms = "model.layers.0.self_attn.q_proj.bias"
    assert charged[zero_rms] > 0  # the KL charges the fallback scale ...
    for name in (zero_rms, "model.layers.0.mlp.up_proj.weight", "model.norm.weight"):
        # ... and the sampler now draws with exactly the σ the KL charged
        assert stds[name] == pytest.approx(charged[name], rel=1e-12)
        assert _empirical_std(sampler, noise, name) == pytest.approx(charged[name], rel=0.1)
    assert all(stds[n] == pytest.approx(charged[n], rel=1e-12) for n in stds if n in charged)


def test_one_scale_table_for_both(zero_bias_pair):
    base_dir, ft_dir = zero_bias_pair
    stats = weight_statistics(base_dir, ft_dir)
    scales, notes = per_tensor_scales(stats.table)
    assert any("base RMS 0" in note for note in notes)
    kl = gaussian_kl(stats, sigma=SIGMA, per_tensor_scale=True)
    for name, sigma_q in zip(kl.per_tensor["name"], kl.per_tensor["sigma_q"], strict=True):
        assert sigma_q == pytest.approx(SIGMA * scales[name], rel=1e-12)
