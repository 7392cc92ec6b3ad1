"""Posterior training against the bound, and its Monte-Carlo certificate, on a real tiny Llama."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import pacbound
from measurement import (
    PRIOR_LABELS,
    PosteriorConfig,
    TokenData,
    certify_posterior,
    check_disjoint,
    evaluate_model,
    load_prior_centre,
    mc_sample_risks,
    train_posterior,
)
from measurement._certify import certificate_bounds
from measurement._posterior_training import _gaussian_kl, _prior_scales
from pacbound.exceptions import InvalidParameterError
from tests._tiny import save_model, tiny_llama


def _data(n: int = 24, seed: int = 0) -> TokenData:
    """A copy task: prompt a b c | completion a b c (token ids 10..40)."""
    rng = np.random.default_rng(seed)
    prompts, comps = [], []
    for _ in range(n):
        toks = rng.integers(10, 40, size=3).tolist()
        prompts.append([1, *toks, 5])
        comps.append([*toks, 2])
    return TokenData.from_ids(prompts, comps, pad_id=0)


def _centre(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _cfg(**kw):
    base = dict(steps=12, batch_size=8, mc_samples=6, eval_batch_size=16, lr=0.05, lr_mean=0.02)
    base.update(kw)
    return PosteriorConfig(**base)


def test_kl_matches_pacbound_diagonal_gaussian_kl():
    torch.manual_seed(0)
    names = ("a", "b")
    mu = {"a": torch.randn(5, 3), "b": torch.randn(4)}
    centre = {"a": torch.randn(5, 3), "b": torch.zeros(4)}  # b's RMS is 0: global RMS used
    log_s = {"a": torch.randn(5, 3) * 0.1 - 2, "b": torch.tensor([-1.5])}
    scales = _prior_scales(centre, names, "rms")
    lam = 0.3
    ours = float(
        _gaussian_kl(
            mu, log_s, centre, scales, torch.tensor(math.log(lam), dtype=torch.float64), names
        )
    )
    ref = 0.0
    for n in names:
        var_p = (lam * scales[n]) ** 2
        var_q = np.broadcast_to(np.exp(2 * log_s[n].double().numpy()), mu[n].shape)
        ref += pacbound.gaussian_kl_diagonal(mu[n].numpy(), var_q, centre[n].numpy(), var_p)
    assert ours == pytest.approx(ref, rel=1e-9)
    glob = math.sqrt(float(centre["a"].double().pow(2).sum()) / 19)
    assert scales["b"] == pytest.approx(glob)


def test_zero_one_is_greedy_decoding_mismatch():
    model = tiny_llama(seed=1)
    data = _data(6)
    ev = evaluate_model(model, data)
    for i in range(len(data)):
        keep = data.labels[i] != -100
        plen = int(keep.nonzero()[0].item())  # first completion token
        prompt = data.input_ids[i, :plen].unsqueeze(0)
        ref = data.input_ids[i, keep]
        out = model.generate(
            prompt, max_new_tokens=len(ref), do_sample=False, pad_token_id=0, eos_token_id=None
        )
        wrong = not torch.equal(out[0, plen:], ref)
        assert ev["zero_one"][i] == float(wrong)
    assert np.all((ev["nll_clipped"] >= 0) & (ev["nll_clipped"] <= 1))
    # the model's own greedy completions are, by definition, reproduced: error 0 on each
    prompts = [[1, 11, 12, 5], [1, 20, 30, 5], [1, 7, 8, 9]]
    comps = []
    for p in prompts:
        out = model.generate(
            torch.tensor([p]), max_new_tokens=4, do_sample=False, pad_token_id=0,
            eos_token_id=None,
        )  # fmt: skip
        comps.append(out[0, len(p) :].tolist())
    own = evaluate_model(model, TokenData.from_ids(prompts, comps, pad_id=0))
    np.testing.assert_array_equal(own["zero_one"], 0.0)


def test_training_lowers_the_bound_and_rounds_lambda_to_the_grid():
    model = tiny_llama(seed=0)
    data = _data()
    centre = _centre(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # a large n makes the risk term matter: training must lower the (noisy) objective
    post = train_posterior(
        model,
        data,
        prior_centre=centre,
        n_bound=10**6,
        provenance="base",
        config=_cfg(steps=30, per_tensor_sigma=True, prior_scale_init=0.3),
        log_every=1,
    )
    obj = [c["objective"] for c in post.curve]
    assert np.mean(obj[-5:]) < np.mean(obj[:5])
    assert post.lam in post.grid
    # the model itself is untouched; the KL is recomputed at the grid value
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n])
    kl = _gaussian_kl(
        post.mean,
        post.log_sigma,
        centre,
        post.prior_scales,
        torch.tensor(math.log(post.lam), dtype=torch.float64),
        post.names,
    )
    assert post.kl == pytest.approx(float(kl), rel=1e-9)
    assert "base-centred" in str(post)


def test_per_tensor_sigma_is_one_scale_per_tensor():
    model = tiny_llama(seed=0)
    post = train_posterior(
        model,
        _data(),
        prior_centre=_centre(model),
        n_bound=24,
        provenance="base",
        config=_cfg(per_tensor_sigma=True, steps=2, train_mean=False),
    )
    assert all(post.log_sigma[n].numel() == 1 for n in post.names)
    assert all(torch.equal(post.mean[n], _centre(model)[n]) for n in post.names)


def test_certificate_is_the_standard_two_step_bound_and_vmap_matches_loop(tmp_path):
    model = tiny_llama(seed=0)
    data = _data()
    post = train_posterior(
        model,
        data,
        prior_centre=_centre(model),
        n_bound=len(data),
        provenance="base",
        config=_cfg(steps=3, loss="nll_clipped"),
    )
    cert = certify_posterior(model, post, data)
    q_upper, bounds = certificate_bounds(
        cert.q_mc,
        cert.m,
        post.kl,
        len(data),
        delta=0.025,
        delta_mc=0.01,
        union={"prior scale grid": len(post.grid)},
    )
    assert cert.q_upper == pytest.approx(q_upper)
    assert cert.value == pytest.approx(min(bounds["kl"].value, bounds["catoni"].value))
    assert cert.value >= cert.q_upper >= cert.q_mc
    assert PRIOR_LABELS["base"] in str(cert)
    loop = mc_sample_risks(model, post, data, m=4, loss="zero_one", seed=3, batch_size=7)
    attention = model.config._attn_implementation
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batched = mc_sample_risks(
            model, post, data, m=4, loss="zero_one", seed=3, batch_size=7, samples_per_call=3
        )
    np.testing.assert_allclose(batched, loop)
    # vmapped samples run eager attention (no per-sample fallback), and the model keeps its own
    assert not [w for w in caught if "performance drop" in str(w.message)]
    assert model.config._attn_implementation == attention
    post.save(tmp_path)
    meta = json.loads((tmp_path / "posterior.json").read_text())
    assert meta["kl"] == pytest.approx(post.kl)
    saved = load_prior_centre(tmp_path / "posterior.safetensors")
    assert torch.equal(saved[f"mean.{post.names[0]}"], post.mean[post.names[0]])


def test_learnt_prior_needs_a_disjoint_split(tmp_path):
    model = tiny_llama(seed=0)
    data = _data()
    prior_part, bound_part = data.subset(range(12)), data.subset(range(12, 24))
    path = save_model(model, tmp_path / "prior", max_shard_size=None)
    centre = load_prior_centre(path)
    post = train_posterior(
        model,
        data,
        prior_centre=centre,
        n_bound=len(bound_part),
        provenance="learnt",
        config=_cfg(steps=1, mc_samples=2),
    )
    with pytest.raises(InvalidParameterError, match="prior_keys"):
        certify_posterior(model, post, bound_part)
    with pytest.raises(InvalidParameterError, match="disjoint"):
        certify_posterior(model, post, bound_part, prior_keys=data.keys)
    cert = certify_posterior(model, post, bound_part, prior_keys=prior_part.keys)
    assert cert.n == 12 and "learnt prior" in cert.label
    check_disjoint(["a"], ["b"])


def test_bad_inputs_are_one_line_errors():
    model = tiny_llama(seed=0)
    other = {n: torch.zeros(3) for n, _ in model.named_parameters()}
    with pytest.raises(InvalidParameterError, match="architecture"):
        train_posterior(model, _data(), prior_centre=other, n_bound=4, provenance="base")
    with pytest.raises(InvalidParameterError, match="delta"):
        PosteriorConfig(delta=0.6, delta_mc=0.5)
    with pytest.raises(InvalidParameterError, match="provenance"):
        train_posterior(model, _data(), prior_centre=_centre(model), n_bound=4, provenance="x")


def test_base_model_certificate_is_the_binomial_tail_of_its_errors():
    from measurement import base_model_certificate

    model = tiny_llama(seed=2)
    data = _data(16)
    ev = evaluate_model(model, data)
    out = base_model_certificate(model, data, loss="zero_one", delta=0.05)
    k = int(ev["zero_one"].sum())
    assert out["value"] == pytest.approx(float(pacbound.test_set_bound(k, 16, 0.05).value))
    assert out["label"] == PRIOR_LABELS["base-model"]
    with pytest.raises(InvalidParameterError, match="loss"):
        base_model_certificate(model, data, loss="mse")


def test_rounding_lambda_to_the_grid_rescales_the_posterior_not_the_kl():
    model = tiny_llama(seed=0)
    cfg = _cfg(steps=1, lr=1e-9, train_mean=False, prior_scale_init=0.0105)
    post = train_posterior(
        model, _data(), prior_centre=_centre(model), n_bound=24, provenance="base", config=cfg
    )
    assert post.lam == pytest.approx(0.01) and post.lam_trained == pytest.approx(0.0105)
    # s was λ_l at λ = 0.0105; kept proportional to λ, the KL stays ~0 (not numel * 1e-3)
    assert post.kl < 1e-3
    name = post.names[0]
    expected = math.log(0.01 * post.prior_scales[name])
    assert float(post.log_sigma[name].flatten()[0]) == pytest.approx(expected, rel=1e-5)
